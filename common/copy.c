/*
 * copy.c - the faster of memcpy and a 64-byte loop, per size class (see
 * copy.h).
 */
#include "copy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"

#define CLASSES 3
#define SMALL_COPY 1024 /* below this, memcpy is never the problem */

static const size_t class_probe[CLASSES] = { 4096, 65536, 1u << 20 };
static int class_choice[CLASSES]; /* 0 unknown, 1 memcpy, 2 loop */
static char impl[64];

static void copy_loop(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	while (n >= 64) {
		uint64_t w[8];

		memcpy(w, s, sizeof(w)); /* fixed-size: plain moves, never rep movsb */
		memcpy(d, w, sizeof(w));
		d += 64;
		s += 64;
		n -= 64;
	}
	memcpy(d, s, n);
}

static void copy_libc(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

static int class_of(size_t n)
{
	return n < 16384 ? 0 : n < 262144 ? 1 : 2;
}

static uint64_t time_copy(void (*fn)(void *, const void *, size_t), void *d, const void *s,
			  size_t n)
{
	uint64_t best = UINT64_MAX;
	int i;

	for (i = 0; i < 4; i++) {
		uint64_t t0 = ivb_now_ns(), t;

		fn(d, s, n);
		t = ivb_now_ns() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

static void choose(int c)
{
	size_t n = class_probe[c];
	uint8_t *a = malloc(n), *b = malloc(n);
	int i;

	class_choice[c] = 1;
	if (a && b) {
		memset(a, 0x5a, n);
		memset(b, 0xa5, n);
		if (time_copy(copy_loop, b, a, n) < time_copy(copy_libc, b, a, n))
			class_choice[c] = 2;
	}
	free(a);
	free(b);
	impl[0] = 0;
	for (i = 0; i < CLASSES; i++) {
		size_t len = strlen(impl);

		snprintf(impl + len, sizeof(impl) - len, "%s%s", i ? "," : "",
			 class_choice[i] == 2 ? "loop" : class_choice[i] == 1 ? "memcpy" : "-");
	}
}

void ivb_copy(void *dst, const void *src, size_t n)
{
	int c;

	if (n < SMALL_COPY) {
		memcpy(dst, src, n);
		return;
	}
	c = class_of(n);
	if (!class_choice[c])
		choose(c);
	if (class_choice[c] == 2)
		copy_loop(dst, src, n);
	else
		memcpy(dst, src, n);
}

const char *ivb_copy_impl(void)
{
	return impl;
}
