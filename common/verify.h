/*
 * verify.h - the check each streamed message carries: XXH3-64 (xxHash,
 * tens of GB/s, so checking does not hide the channel), SHA-256 (the frame
 * test's strength, through OpenSSL) or none (the bare channel, and the
 * results say so). XXH3 is seeded with the sequence number.
 */
#ifndef IVB_VERIFY_H
#define IVB_VERIFY_H

#include <stddef.h>
#include <stdint.h>

enum ivb_verify {
	IVB_VERIFY_XXH3 = 0,
	IVB_VERIFY_SHA256 = 1,
	IVB_VERIFY_NONE = 2,
	IVB_VERIFY__COUNT
};

#define IVB_VERIFY_MAX_LEN 32 /* bytes of the longest check */

/*
 * Which XXH3 build this process uses: "xxh3-vector" or "xxh3-scalar",
 * whichever ran faster here when first needed (emulated vector
 * instructions are slow under TCG).
 */
const char *ivb_verify_impl(void);

/* "xxh3", "sha256", "none". */
const char *ivb_verify_name(uint32_t v);
/* The enum for a name, or -1. */
int ivb_verify_parse(const char *name);

/* The check of message seq with payload buf[len] into out[IVB_VERIFY_MAX_LEN]; -1 if OpenSSL failed. */
int ivb_verify_compute(enum ivb_verify v, uint64_t seq, const void *buf, size_t len,
		       uint8_t out[IVB_VERIFY_MAX_LEN]);

#endif
