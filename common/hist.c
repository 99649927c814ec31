/*
 * hist.c - the log-linear latency histogram (see hist.h for its buckets and
 * its error bound).
 */
#include "hist.h"

#include <string.h>

void ivb_hist_reset(struct ivb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint64_t ivb_hist_bucket_low(unsigned i)
{
	unsigned octave, sub;

	if (i < IVB_HIST_SUB)
		return i;
	octave = i / IVB_HIST_SUB - 1; /* 0 for [128, 256) */
	sub = i % IVB_HIST_SUB;
	return (uint64_t)(IVB_HIST_SUB + sub) << octave;
}

uint64_t ivb_hist_bucket_high(unsigned i)
{
	if (i < IVB_HIST_SUB)
		return i;
	return ivb_hist_bucket_low(i) + (1ull << (i / IVB_HIST_SUB - 1)) - 1;
}

/* Bucket i's midpoint, clamped to what was recorded: the value it stands for. */
static double middle(const struct ivb_hist *h, unsigned i)
{
	double m = ((double)ivb_hist_bucket_low(i) + (double)ivb_hist_bucket_high(i)) / 2;

	if (m < (double)h->min)
		return (double)h->min;
	if (m > (double)h->max)
		return (double)h->max;
	return m;
}

double ivb_hist_percentile(const struct ivb_hist *h, double p)
{
	double rank, frac, a = 0, b = 0;
	uint64_t lo, seen = 0;
	unsigned i;
	int have_a = 0;

	if (!h->count)
		return 0;
	if (p <= 0)
		return (double)h->min;
	if (p >= 100)
		return (double)h->max;
	rank = p / 100.0 * (double)(h->count - 1);
	lo = (uint64_t)rank;
	frac = rank - (double)lo;
	/* Order statistics lo and lo + 1 (0-based): the buckets where the
	 * running count first passes them. */
	for (i = 0; i < IVB_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (!have_a && seen > lo) {
			a = middle(h, i);
			have_a = 1;
		}
		if (have_a && (seen > lo + 1 || lo + 1 >= h->count)) {
			b = lo + 1 >= h->count ? a : middle(h, i);
			break;
		}
	}
	return a + frac * (b - a);
}

double ivb_hist_mean(const struct ivb_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0;
}

uint64_t ivb_hist_count_from(const struct ivb_hist *h, uint64_t v)
{
	uint64_t n = 0;
	unsigned i;

	for (i = ivb_hist_index(v); i < IVB_HIST_BUCKETS; i++)
		if (ivb_hist_bucket_low(i) >= v)
			n += h->bucket[i];
	return n;
}

void ivb_hist_add(struct ivb_hist *dst, const struct ivb_hist *src)
{
	unsigned i;

	for (i = 0; i < IVB_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->overflow += src->overflow;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}
