/*
 * digest.h - SHA-256 through OpenSSL's EVP interface, and random bytes
 * from OpenSSL's generator.
 */
#ifndef IVB_DIGEST_H
#define IVB_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of buf into out[32]. Returns 0, or -1 when OpenSSL fails. */
int ivb_sha256(const void *buf, size_t len, uint8_t out[32]);

/* Fill buf with len random bytes. Returns 0, or -1 when OpenSSL fails. */
int ivb_random(void *buf, size_t len);

/* Hex of the first n bytes of d into out (2n + 1 bytes). */
void ivb_hex(const uint8_t *d, size_t n, char *out);

#endif
