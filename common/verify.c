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
#include "timing.h"

uint64_t ivb_xxh3_scalar(const void *buf, size_t len, uint64_t seed);

static uint64_t xxh3_vector(const void *buf, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(buf, len, seed);
}

static uint64_t (*xxh3_impl)(const void *, size_t, uint64_t);
static const char *xxh3_impl_name = "xxh3 (not used yet)";

/* Time fn over buf a few times; the best of them, in ns. */
static uint64_t time_xxh3(uint64_t (*fn)(const void *, size_t, uint64_t), const void *buf,
			  size_t len)
{
	uint64_t best = UINT64_MAX, sink = 0;
	int i;

	for (i = 0; i < 5; i++) {
		uint64_t t0 = ivb_now_ns(), t;

		sink += fn(buf, len, (uint64_t)i);
		t = ivb_now_ns() - t0;
		if (t < best)
			best = t;
	}
	__asm__ volatile("" : : "r"(sink));
	return best;
}

/* Choose the faster XXH3 build for this machine (emulated or not), once. */
static void choose_xxh3(void)
{
	static uint8_t probe[16384];
	uint64_t vec, sca;

	memset(probe, 0xa5, sizeof(probe));
	vec = time_xxh3(xxh3_vector, probe, sizeof(probe));
	sca = time_xxh3(ivb_xxh3_scalar, probe, sizeof(probe));
	xxh3_impl = sca < vec ? ivb_xxh3_scalar : xxh3_vector;
	xxh3_impl_name = sca < vec ? "xxh3-scalar" : "xxh3-vector";
}

const char *ivb_verify_impl(void)
{
	if (!xxh3_impl)
		choose_xxh3();
	return xxh3_impl_name;
}

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
		if (!xxh3_impl)
			choose_xxh3();
		h = xxh3_impl(buf, len, seq);
		memcpy(out, &h, sizeof(h));
		return 0;
	case IVB_VERIFY_SHA256:
		/* The sequence number is checked beside it, in the slot header. */
		return ivb_sha256(buf, len, out) ? -1 : 0;
	default:
		return 0;
	}
}
