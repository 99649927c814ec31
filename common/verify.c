/*
 * verify.c - message checks (see verify.h). xxHash is compiled in from
 * Debian's libxxhash-dev header (XXH_INLINE_ALL), so the statically linked
 * guest programs need no library for it. Every kind is checked together
 * with the sequence number in the slot header (ring.h); XXH3 is also
 * seeded with it.
 */
#include "verify.h"

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "digest.h"

const char *ivb_verify_name(uint32_t v)
{
	switch (v) {
	case IVB_VERIFY_XXH3: return "xxh3";
	case IVB_VERIFY_SHA256: return "sha256";
	case IVB_VERIFY_NONE: return "none";
	}
	return "invalid";
}

int ivb_verify_parse(const char *name)
{
	int v;

	for (v = 0; v < IVB_VERIFY__COUNT; v++)
		if (!strcmp(name, ivb_verify_name((uint32_t)v)))
			return v;
	return -1;
}

int ivb_verify_compute(enum ivb_verify v, uint64_t seq, const void *buf, size_t len,
		       uint8_t out[IVB_VERIFY_MAX_LEN])
{
	uint64_t h;

	memset(out, 0, IVB_VERIFY_MAX_LEN);
	switch (v) {
	case IVB_VERIFY_XXH3:
		h = XXH3_64bits_withSeed(buf, len, seq);
		memcpy(out, &h, sizeof(h));
		return 0;
	case IVB_VERIFY_SHA256:
		/* The sequence number is checked beside it, in the slot header. */
		return ivb_sha256(buf, len, out) ? -1 : 0;
	default:
		return 0;
	}
}
