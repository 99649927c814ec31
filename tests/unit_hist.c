/*
 * unit_hist - the log-linear histogram against exact percentiles of the
 * same samples (stats.h), within the error hist.h states (1/256 of the
 * value, exact below 128 ns), over 10 ns .. 100 s; its buckets tile the
 * range without gaps; overflow, counting from a value, adding.
 * timeout: 60
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hist.h"
#include "stats.h"

static struct ivb_hist h, h2;

/* splitmix64: reproducible samples. */
static uint64_t rng_state = 0x1234567;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static double unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static const double pcts[] = { 0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100 };

/* Every percentile of the histogram within the stated bound of the exact one. */
static void compare(uint64_t *v, size_t n, const char *what)
{
	size_t i;
	double worst = 0;

	ivb_hist_reset(&h);
	for (i = 0; i < n; i++)
		ivb_hist_record(&h, v[i]);
	ivb_sort_u64(v, n);
	for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		double e = ivb_percentile(v, n, pcts[i]), g = ivb_hist_percentile(&h, pcts[i]);
		double err = fabs(g - e), bound = e * IVB_HIST_REL_ERROR + 1e-9 * e;

		if (e > 0 && err / e > worst)
			worst = err / e;
		CHECKF(err <= bound || (e < IVB_HIST_SUB && err < 1e-9),
		       "%s: p%g exact %.1f histogram %.1f (error %.4f%%, bound %.4f%%)", what,
		       pcts[i], e, g, 100 * err / (e ? e : 1), 100 * IVB_HIST_REL_ERROR);
	}
	printf("     %s: %zu samples, worst relative error %.4f%%\n", what, n, 100 * worst);
	CHECK(h.count == n && h.min == v[0] && h.max == v[n - 1]);
}

static void test_log_uniform_10ns_to_100s(void)
{
	size_t n = 2000000, i;
	uint64_t *v = malloc(n * sizeof(*v));

	for (i = 0; i < n; i++) /* exp(uniform(ln 10, ln 1e11)) */
		v[i] = (uint64_t)exp(log(10.0) + unit() * (log(1e11) - log(10.0)));
	compare(v, n, "log-uniform 10 ns..100 s");
	free(v);
}

/* A latency-like mixture: a narrow mode, a tail, and rare stalls. */
static void test_latency_mixture(void)
{
	size_t n = 1000000, i;
	uint64_t *v = malloc(n * sizeof(*v));

	for (i = 0; i < n; i++) {
		double u = unit();

		if (u < 0.98)
			v[i] = 180 + (uint64_t)(unit() * 60);              /* 180..240 ns */
		else if (u < 0.9995)
			v[i] = 1000 + (uint64_t)(-log(1 - unit()) * 20000); /* exponential tail */
		else
			v[i] = 50000000 - (uint64_t)(unit() * 49000000);    /* a stall's backlog */
	}
	compare(v, n, "latency mixture");
	free(v);
}

static void test_small_and_exact(void)
{
	uint64_t v[] = { 7, 3, 127, 0, 12, 12, 99 };
	size_t n = sizeof(v) / sizeof(v[0]);

	compare(v, n, "below 128 ns");
	ivb_hist_reset(&h);
	ivb_hist_record(&h, 42);
	CHECK(ivb_hist_percentile(&h, 50) == 42 && ivb_hist_percentile(&h, 99.999) == 42);
	ivb_hist_reset(&h);
	CHECK(h.count == 0 && ivb_hist_percentile(&h, 50) == 0 && ivb_hist_mean(&h) == 0);
}

/* Buckets tile 0..2^37 without gap or overlap, each at most 1/128 of its value wide. */
static void test_buckets_tile_the_range(void)
{
	unsigned i;
	int ok = 1;

	CHECK(ivb_hist_bucket_low(0) == 0);
	for (i = 1; i < IVB_HIST_BUCKETS; i++) {
		uint64_t lo = ivb_hist_bucket_low(i), hi = ivb_hist_bucket_high(i);

		if (lo != ivb_hist_bucket_high(i - 1) + 1 || hi < lo ||
		    (lo >= IVB_HIST_SUB && (double)(hi - lo + 1) > (double)lo / IVB_HIST_SUB) ||
		    ivb_hist_index(lo) != i || ivb_hist_index(hi) != i)
			ok = 0;
	}
	CHECKF(ok, "%u buckets tile the range, each at most 1/128 wide", IVB_HIST_BUCKETS);
	CHECK(ivb_hist_bucket_high(IVB_HIST_BUCKETS - 1) == IVB_HIST_MAX_NS);
	CHECK(ivb_hist_index(IVB_HIST_MAX_NS + 1) == IVB_HIST_BUCKETS - 1);
	CHECK(ivb_hist_index(UINT64_MAX) == IVB_HIST_BUCKETS - 1);
}

static void test_overflow_keeps_max(void)
{
	ivb_hist_reset(&h);
	ivb_hist_record(&h, 100);
	ivb_hist_record(&h, 200000000000ull); /* 200 s */
	CHECK(h.overflow == 1 && h.count == 2);
	CHECK(ivb_hist_percentile(&h, 100) == 200000000000.0);
	CHECK(ivb_hist_percentile(&h, 0) == 100);
}

static void test_count_from_and_add(void)
{
	unsigned i;

	ivb_hist_reset(&h);
	ivb_hist_reset(&h2);
	for (i = 0; i < 1000; i++)
		ivb_hist_record(&h, 200 + i % 50);        /* fast */
	for (i = 0; i < 500; i++)
		ivb_hist_record(&h2, 10000000 + i * 10000); /* 10..15 ms */
	CHECK(ivb_hist_count_from(&h, 1000000) == 0);
	CHECK(ivb_hist_count_from(&h2, 1000000) == 500);
	ivb_hist_add(&h, &h2);
	CHECK(h.count == 1500 && h.min == 200 && h.max == 10000000 + 499 * 10000);
	CHECK(ivb_hist_count_from(&h, 1000000) == 500);
	CHECK(ivb_hist_count_from(&h, 0) == 1500);
	CHECK(fabs(ivb_hist_mean(&h) - (1000 * 224.5 + 500 * (10000000 + 249.5 * 10000)) / 1500) < 1e-3);
}

int main(void)
{
	RUN(test_buckets_tile_the_range);
	RUN(test_small_and_exact);
	RUN(test_log_uniform_10ns_to_100s);
	RUN(test_latency_mixture);
	RUN(test_overflow_keeps_max);
	RUN(test_count_from_and_add);
	return check_done("unit_hist");
}
