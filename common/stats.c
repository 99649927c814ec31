/*
 * stats.c - sorting, percentiles and summaries; see stats.h for the
 * percentile definition.
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

void ivb_sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
}

double ivb_percentile(const uint64_t *sorted, size_t n, double p)
{
	double rank, frac;
	size_t lo;

	if (n == 0)
		return 0;
	if (p <= 0)
		return (double)sorted[0];
	if (p >= 100)
		return (double)sorted[n - 1];
	rank = p / 100.0 * (double)(n - 1);
	lo = (size_t)rank;
	frac = rank - (double)lo;
	if (lo + 1 >= n)
		return (double)sorted[n - 1];
	return (double)sorted[lo] + frac * ((double)sorted[lo + 1] - (double)sorted[lo]);
}

void ivb_summarize(uint64_t *v, size_t n, struct ivb_summary *out)
{
	double sum = 0, sq = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return;
	ivb_sort_u64(v, n);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
	out->count = n;
	out->mean = sum / (double)n;
	for (i = 0; i < n; i++)
		sq += ((double)v[i] - out->mean) * ((double)v[i] - out->mean);
	out->stddev = n > 1 ? sqrt(sq / (double)(n - 1)) : 0;
	out->min = (double)v[0];
	out->max = (double)v[n - 1];
	out->p50 = ivb_percentile(v, n, 50);
	out->p90 = ivb_percentile(v, n, 90);
	out->p99 = ivb_percentile(v, n, 99);
	out->p999 = ivb_percentile(v, n, 99.9);
}
