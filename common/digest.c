/*
 * digest.c - OpenSSL wrappers. The EVP interface picks the fastest SHA-256
 * the CPU offers (SHA-NI where present). RAND_bytes is OpenSSL's DRBG;
 * frames larger than its per-call limit are filled in chunks.
 */
#include "digest.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int ivb_sha256(const void *buf, size_t len, uint8_t out[32])
{
	unsigned int outlen = 0;

	if (!EVP_Digest(buf, len, out, &outlen, EVP_sha256(), NULL) || outlen != 32)
		return -1;
	return 0;
}

int ivb_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		size_t chunk = len > (1u << 20) ? (1u << 20) : len;

		if (RAND_bytes(p, (int)chunk) != 1)
			return -1;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

void ivb_hex(const uint8_t *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = 0;
}
