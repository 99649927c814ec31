/*
 * stats.h - exact order statistics over a run's samples.
 *
 * Every sample is kept; percentiles are computed from the sorted samples by
 * linear interpolation between the two nearest ranks (numpy's default
 * "linear" method), so analyze_results.py reports the same figures.
 */
#ifndef IVB_STATS_H
#define IVB_STATS_H

#include <stddef.h>
#include <stdint.h>

struct ivb_summary {
	size_t count;  /* number of samples */
	double min;    /* smallest sample */
	double max;    /* largest sample */
	double mean;   /* arithmetic mean */
	double stddev; /* sample standard deviation (n - 1) */
	double p50;    /* median */
	double p90;
	double p99;
	double p999;   /* 99.9th percentile */
};

/* Sort v in place (ascending). */
void ivb_sort_u64(uint64_t *v, size_t n);

/* Percentile p (0..100) of sorted samples; 0 when n == 0. */
double ivb_percentile(const uint64_t *sorted, size_t n, double p);

/* Summary of n samples; v is sorted in place as a side effect. */
void ivb_summarize(uint64_t *v, size_t n, struct ivb_summary *out);

#endif
