/*
 * hist.h - a log-linear latency histogram (in the manner of HdrHistogram),
 * for runs of millions of samples where keeping every one costs too much.
 *
 * Values are nanoseconds. Below 128 ns every value has a bucket of its own
 * (exact). From 128 ns up, each power-of-two octave [2^e, 2^(e+1)) is split
 * into 128 buckets of equal width 2^(e-7): a bucket is at most 1/128 of its
 * lowest value wide, and a bucket's midpoint is within 1/256 (0.4 %) of any
 * value in it. The top octave ends at 2^37 ns (137 s); larger values are
 * counted in the last bucket and in overflow (min and max stay exact).
 * 3,968 buckets of 8 bytes: 31 KiB whatever the run's length.
 *
 * Percentiles use the same definition as stats.h (numpy's "linear": the
 * order statistics around rank p/100 * (n - 1), interpolated), with each
 * order statistic taken as its bucket's midpoint, clamped to [min, max].
 * Since each midpoint is within 1/256 of the value it stands for, so is the
 * interpolation: |histogram - exact| <= exact / 256 (and exact below 128 ns).
 */
#ifndef IVB_HIST_H
#define IVB_HIST_H

#include <stdint.h>

#define IVB_HIST_SUB_BITS 7                      /* 2^7 linear buckets per octave */
#define IVB_HIST_SUB (1u << IVB_HIST_SUB_BITS)
#define IVB_HIST_TOP_BITS 37                     /* values below 2^37 ns (137 s) */
#define IVB_HIST_BUCKETS ((IVB_HIST_TOP_BITS - IVB_HIST_SUB_BITS + 1) * IVB_HIST_SUB)
#define IVB_HIST_MAX_NS ((1ull << IVB_HIST_TOP_BITS) - 1) /* the largest value binned exactly */
#define IVB_HIST_REL_ERROR (1.0 / 256)           /* the stated bound of a percentile's error */

struct ivb_hist {
	uint64_t count;    /* values recorded */
	uint64_t overflow; /* of them, above IVB_HIST_MAX_NS (binned in the last bucket) */
	uint64_t min, max; /* exact; min is UINT64_MAX while empty */
	double sum;        /* for the mean */
	uint64_t bucket[IVB_HIST_BUCKETS];
};

/* Empty the histogram. */
void ivb_hist_reset(struct ivb_hist *h);

/* The bucket holding value v. */
static inline unsigned ivb_hist_index(uint64_t v)
{
	unsigned e;

	if (v < IVB_HIST_SUB)
		return (unsigned)v;
	if (v > IVB_HIST_MAX_NS)
		return IVB_HIST_BUCKETS - 1;
	e = 63u - (unsigned)__builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= 7 */
	return (e - IVB_HIST_SUB_BITS + 1) * IVB_HIST_SUB +
	       (unsigned)((v >> (e - IVB_HIST_SUB_BITS)) - IVB_HIST_SUB);
}

/* Record one value. */
static inline void ivb_hist_record(struct ivb_hist *h, uint64_t v)
{
	h->bucket[ivb_hist_index(v)]++;
	h->count++;
	h->overflow += v > IVB_HIST_MAX_NS;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* The lowest and the highest value bucket i holds. */
uint64_t ivb_hist_bucket_low(unsigned i);
uint64_t ivb_hist_bucket_high(unsigned i);

/* Percentile p (0..100), as above; 0 when empty. p 0 is min, p 100 max. */
double ivb_hist_percentile(const struct ivb_hist *h, double p);

/* The mean; 0 when empty. */
double ivb_hist_mean(const struct ivb_hist *h);

/* Values recorded in buckets whose lowest value is at least v (so, all >= v, near enough). */
uint64_t ivb_hist_count_from(const struct ivb_hist *h, uint64_t v);

/* Add src's counts into dst. */
void ivb_hist_add(struct ivb_hist *dst, const struct ivb_hist *src);

#endif
