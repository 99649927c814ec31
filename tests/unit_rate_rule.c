/*
 * unit_rate_rule - the rate sweep's rule (rate_rule() in workloads/rate.c)
 * on fixed points: one noisy point below the true knee does not stop the
 * sweep nor lower the knee; two points in a row not sustained stop it, for
 * either cause, and the knee is the highest rate sustained below them;
 * --sweep-to ends it; the reasons name the points and the causes; the
 * refinement picks the geometric middle between the knee and the rate above
 * it, to two digits, and stops when there is nothing to refine.
 *
 * A deliberate shortcut: the rule is static in rate.c, so this test
 * includes rate.c itself (its ivb_wl_rate then comes from here, and the
 * linker takes none of rate.o from the library).
 * timeout: 30
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "rate.c"

#define BOUND 1000000ull /* 1 ms */
#define TO 100000000ull  /* --sweep-to's default */

/* The fixture: a ladder of points, each "ok", "slow" (p99 over the bound),
 * "behind" (achieved short of offered) or "both", as a string of letters. */
static struct point pts[RATE_MAX_LADDER];
static struct rate_verdict v;

static const uint64_t ladder[] = { 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000,
				   500000, 1000000, 2000000, 5000000, 10000000 };

/* Points at ladder[0..] from a string: o ok, s slow, b behind, x both. Returns how many. */
static int fixture(const char *shape)
{
	int n = (int)strlen(shape), i;

	for (i = 0; i < n; i++) {
		struct point *p = &pts[i];

		memset(p, 0, sizeof(*p));
		p->offered = ladder[i];
		p->achieved = shape[i] == 'b' || shape[i] == 'x' ? 0.7 * (double)ladder[i] :
			      (double)ladder[i];
		p->p99 = shape[i] == 's' || shape[i] == 'x' ? 2.5e6 : 20e3;
	}
	return n;
}

static void test_all_sustained_goes_on(void)
{
	rate_rule(pts, fixture("oooo"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_GO_ON && v.knee == 10000 && v.nlone == 0, "go on, knee %llu so far",
	       (unsigned long long)v.knee);
}

static void test_one_noisy_point_below_the_knee(void)
{
	/* 5000/s failed alone, once: not the channel; the knee is where it really is. */
	rate_rule(pts, fixture("oos"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_GO_ON, "one point not sustained does not stop the sweep");
	rate_rule(pts, fixture("oosooooooss"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_STOP_NOT_SUSTAINED, "stopped by the pair at the top");
	CHECKF(v.knee == 500000, "knee %llu, want 500000 (not 2000)", (unsigned long long)v.knee);
	CHECKF(v.nlone == 1 && v.lone[0] == 5000, "the noisy point listed: %d, %llu", v.nlone,
	       (unsigned long long)v.lone[0]);
}

static void test_two_in_a_row_stop(void)
{
	rate_rule(pts, fixture("ooooss"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_STOP_NOT_SUSTAINED && v.knee == 10000, "slow pair: stop, knee %llu",
	       (unsigned long long)v.knee);
	CHECKF(strstr(v.reason, "2 consecutive points not sustained: 20000/s (p99 2.500 ms over "
			  "the 1.000 ms bound) and 50000/s (p99 2.500 ms over the 1.000 ms bound)") != NULL,
	       "reason: %s", v.reason);
	/* Mixed causes count together. */
	rate_rule(pts, fixture("ooooooooobx"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_STOP_NOT_SUSTAINED && v.knee == 500000, "behind then both: knee %llu",
	       (unsigned long long)v.knee);
	CHECKF(strstr(v.reason, "1000000/s (achieved 700000/s, 70.0 % of offered)") &&
	       strstr(v.reason, "and 2000000/s (p99 2.500 ms over the 1.000 ms bound; achieved "
			  "1400000/s, 70.0 % of offered)"), "reason: %s", v.reason);
}

static void test_stop_at_the_first_pair(void)
{
	/* A one-point gap, then the pair: the points after the pair are not looked at. */
	rate_rule(pts, fixture("osobbo"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_STOP_NOT_SUSTAINED && v.knee == 5000 && v.nlone == 1 &&
	       v.lone[0] == 2000, "knee %llu, lone %d", (unsigned long long)v.knee, v.nlone);
}

static void test_no_knee(void)
{
	rate_rule(pts, fixture("ss"), BOUND, TO, &v);
	CHECKF(v.stop == RATE_STOP_NOT_SUSTAINED && v.knee == 0 && v.nlone == 0,
	       "not even the first: knee %llu", (unsigned long long)v.knee);
	/* The first alone failed, then one sustained, then the pair: 2000 is the knee. */
	rate_rule(pts, fixture("soss"), BOUND, TO, &v);
	CHECKF(v.knee == 2000 && v.nlone == 1 && v.lone[0] == 1000, "knee %llu",
	       (unsigned long long)v.knee);
}

static void test_sweep_to(void)
{
	rate_rule(pts, fixture("ooo"), BOUND, 5000, &v);
	CHECKF(v.stop == RATE_STOP_SWEEP_TO && v.knee == 5000 &&
	       strstr(v.reason, "reached --sweep-to (5000/s), sustained there"), "%s", v.reason);
	/* The last point alone not sustained: the knee is below it, and the reason says why. */
	rate_rule(pts, fixture("oob"), BOUND, 5000, &v);
	CHECKF(v.stop == RATE_STOP_SWEEP_TO && v.knee == 2000 && v.nlone == 0 &&
	       strstr(v.reason, "not sustained there (achieved 3500/s, 70.0 % of offered)"), "%s",
	       v.reason);
}

static void test_bound_and_fraction_edges(void)
{
	/* p99 exactly at the bound and achieved exactly 99 %: sustained. */
	fixture("oo");
	pts[1].p99 = (double)BOUND;
	pts[1].achieved = 0.99 * (double)pts[1].offered;
	rate_rule(pts, 2, BOUND, TO, &v);
	CHECKF(v.knee == 2000 && v.stop == RATE_GO_ON, "at the limits: knee %llu",
	       (unsigned long long)v.knee);
	pts[1].p99 = (double)BOUND + 1;
	rate_rule(pts, 2, BOUND, TO, &v);
	CHECKF(v.knee == 1000, "1 ns over: not sustained, knee %llu", (unsigned long long)v.knee);
}

/* Insert a point of rate r, sustained or slow, into pts[0..n) in the order of rates. */
static int insert(int n, uint64_t r, int ok)
{
	int i = n;

	while (i > 0 && pts[i - 1].offered > r) {
		pts[i] = pts[i - 1];
		i--;
	}
	memset(&pts[i], 0, sizeof(pts[i]));
	pts[i].offered = r;
	pts[i].achieved = (double)r;
	pts[i].p99 = ok ? 20e3 : 2.5e6;
	return n + 1;
}

static void test_refine(void)
{
	uint64_t above, mid;
	int n;

	/* Between two digits' worth: the geometric middle, to two digits. */
	CHECKF(rate_between(2000000, 5000000) == 3200000, "2M..5M: %llu",
	       (unsigned long long)rate_between(2000000, 5000000));
	CHECKF(rate_between(5000, 10000) == 7100 && rate_between(7100, 10000) == 8400 &&
	       rate_between(1000000, 2000000) == 1400000, "5k..10k, 7.1k..10k, 1M..2M");
	CHECKF(rate_between(99, 100) == 0 && rate_between(1000, 1000) == 0 &&
	       rate_between(1000, 1010) == 0, "nothing strictly between: 0");
	/* Knee 1000/s, stopped by 2000 and 5000/s: 1400/s, then by what it gave. */
	n = fixture("oss");
	rate_rule(pts, n, BOUND, TO, &v);
	mid = refine_rate(pts, n, &v, &above);
	CHECKF(mid == 1400 && above == 2000, "first: %llu above %llu", (unsigned long long)mid,
	       (unsigned long long)above);
	n = insert(n, mid, 1);
	rate_rule(pts, n, BOUND, TO, &v);
	mid = refine_rate(pts, n, &v, &above);
	CHECKF(v.knee == 1400 && v.stop == RATE_STOP_NOT_SUSTAINED && mid == 1700 && above == 2000,
	       "sustained: knee %llu, next %llu", (unsigned long long)v.knee,
	       (unsigned long long)mid);
	n = insert(n, mid, 0);
	rate_rule(pts, n, BOUND, TO, &v);
	mid = refine_rate(pts, n, &v, &above);
	CHECKF(v.knee == 1400 && mid == 1500 && above == 1700 &&
	       strstr(v.reason, "2 consecutive points not sustained: 1700/s") != NULL,
	       "not sustained: knee %llu, next %llu, %s", (unsigned long long)v.knee,
	       (unsigned long long)mid, v.reason);
	/* Nothing to refine: still going, no knee, or --sweep-to. */
	rate_rule(pts, fixture("oo"), BOUND, TO, &v);
	CHECKF(refine_rate(pts, 2, &v, &above) == 0, "going on: none");
	rate_rule(pts, fixture("ss"), BOUND, TO, &v);
	CHECKF(refine_rate(pts, 2, &v, &above) == 0, "no knee: none");
	rate_rule(pts, fixture("oos"), BOUND, 5000, &v);
	CHECKF(refine_rate(pts, 3, &v, &above) == 0, "--sweep-to: none");
}

static void test_pure(void)
{
	struct point copy[RATE_MAX_LADDER];
	int n = fixture("oosooss");

	memcpy(copy, pts, sizeof(copy));
	rate_rule(pts, n, BOUND, TO, &v);
	CHECKF(memcmp(copy, pts, sizeof(copy)) == 0 && v.knee == 20000,
	       "the points are left as they were; knee %llu", (unsigned long long)v.knee);
}

int main(void)
{
	RUN(test_all_sustained_goes_on);
	RUN(test_one_noisy_point_below_the_knee);
	RUN(test_two_in_a_row_stop);
	RUN(test_stop_at_the_first_pair);
	RUN(test_no_knee);
	RUN(test_sweep_to);
	RUN(test_bound_and_fraction_edges);
	RUN(test_refine);
	RUN(test_pure);
	return check_done("unit_rate_rule");
}
