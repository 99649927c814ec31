/*
 * unit_stats - percentiles, summaries and the parsing of durations and
 * sizes, against values worked out by hand (and by numpy's default
 * "linear" percentile, which analyze_results.py uses).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "stats.h"
#include "timing.h"



static int close_to(double a, double b) { return fabs(a - b) < 1e-9 * (fabs(b) + 1); }

int main(void)
{
	uint64_t v[1000], one = 42;
	struct ivb_summary s;
	size_t i;

	/* 1..1000 shuffled: numpy.percentile gives p50 500.5, p90 900.1,
	 * p99 990.01, p99.9 999.001. */
	for (i = 0; i < 1000; i++)
		v[i] = (uint64_t)((i * 379) % 1000) + 1;
	ivb_summarize(v, 1000, &s);
	CHECK(s.count == 1000);
	CHECK(close_to(s.min, 1) && close_to(s.max, 1000));
	CHECK(close_to(s.mean, 500.5));
	CHECK(close_to(s.p50, 500.5));
	CHECK(close_to(s.p90, 900.1));
	CHECK(close_to(s.p99, 990.01));
	CHECK(close_to(s.p999, 999.001));
	CHECK(fabs(s.stddev - 288.8194360957494) < 1e-6);
	for (i = 1; i < 1000; i++)
		CHECK(v[i - 1] <= v[i]);

	/* One sample: every percentile is that sample, no deviation. */
	ivb_summarize(&one, 1, &s);
	CHECK(close_to(s.p50, 42) && close_to(s.p999, 42) && s.stddev == 0);
	/* No samples: zeros, no crash. */
	ivb_summarize(v, 0, &s);
	CHECK(s.count == 0 && s.p50 == 0);
	CHECK(close_to(ivb_percentile(v, 1000, 0), 1) && close_to(ivb_percentile(v, 1000, 100), 1000));

	/* The clock: a read costs something, but far less than a round trip. */
	{
		uint64_t read_ns = 0, res_ns = 0;

		ivb_clock_cost(&read_ns, &res_ns);
		CHECK(read_ns < 10000 && res_ns > 0 && res_ns < 10000);
	}

	return check_done("unit_stats");
}
