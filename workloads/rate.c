/*
 * rate.c - latency under load: an open-loop sender at a fixed offered rate,
 * latency timed from each message's scheduled send time (so queueing counts:
 * no coordinated omission, as wrk2 does it), a log-linear histogram beside
 * exact percentiles, a sweep of rates up to saturation that finds the knee,
 * and interference from stress-ng co-runners, each paired with a quiet run.
 *
 * Initiator, one point (an offered rate, with or without co-runners): the
 * messages' send times are laid out in advance, evenly (--arrivals constant)
 * or with exponential gaps (poisson); each message carries its scheduled
 * time in bytes 8..15 (its sequence number is in 0..7) and goes out on the
 * channel's first ring; the responder echoes it on the second
 * (ivb_channel_serve, IVB_STREAM_ECHO). One loop sends whatever is due and
 * takes whatever echoes are there, never waiting for an answer before the
 * next send; latency = when the echo was seen - the scheduled time, so a
 * stall delays every message queued behind it, not just one. When the
 * sender falls behind its schedule (the ring is full, or it was descheduled)
 * it records by how much (sender lag; a message sent more than one mean gap
 * late is "late") and sends the message as soon as it can, never fewer:
 * except that a point whose sender is so far behind that its sending would
 * take more than twice its schedule stops sending there, and the messages
 * never sent are counted as unsent. The first tenth of each point's
 * messages (at least 10) is warm-up, sent on the same schedule but not
 * counted. --arrivals closed is the closed loop, for comparison only: the
 * next message waits for the last echo and goes one gap after the last send
 * at the earliest (it never catches up), and latency is timed from the
 * actual send: a stall delays one message, and the loop sends less.
 *
 * Sweep: first a quiet run at a low rate (the first rate, 1,000/s at most)
 * for 1 s; p99's bound is 10 times its p99.9 unless --p99-bound gives one
 * (baseline() says why). Then offered rates on a 1-2-5 ladder from
 * --sweep-from. A point is sustained when achieved >= 99 % of offered and
 * p99 <= the bound; the sweep stops at the second of two points in a row
 * not sustained, or at --sweep-to, never on one noisy point. The knee is the
 * highest rate sustained below where it stopped; a lone point not sustained
 * below it does not lower it (rate_rule(), which run.json's knee_rule and
 * stop_reason spell out).
 *
 * Interference: each set given (cpu, membw, cache, or several joined by '+')
 * runs beside the measurement (corunner.h: the CPU hog on the responder's
 * CPU, the others on another CPU), right after the quiet point of the same
 * rate; its row gives its percentiles' ratios to that quiet point's.
 *
 * Files:
 *   rate_results.csv     one row per offered rate and interference set
 *                        (columns in rate_csv below; "none" is the quiet run)
 *   rate_histograms.csv  each point's histogram: one row per non-empty
 *                        bucket, keyed by interference and offered_per_s,
 *                        with the bucket's lowest and highest value in ns,
 *                        its count, the running count and the percentile
 *                        reached at its end (100 * running / total); hist.h
 *                        gives the buckets (1/128 of a value wide, exact
 *                        below 128 ns)
 *
 * Counters (counters.h): each row ends with what the kernel counted for the
 * initiator's thread (and --watch-thread's) from the point's first
 * measured send to its last echo, and the context switches per 1000
 * messages received, which the printed line puts beside p99: a tail that
 * comes with them is the sender descheduled, not the channel.
 *
 * Fault injection (tests only): --rate-stall M:DUR makes the responder pause
 * DUR once, after the M-th measured message of each point.
 */
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "cli.h"
#include "corunner.h"
#include "counters.h"
#include "cpu.h"
#include "hist.h"
#include "stats.h"
#include "timing.h"
#include "units.h"
#include "workload.h"

#define DEFAULT_RATE "10k"
#define DEFAULT_DURATION "1s"
#define DEFAULT_SIZE "64"
#define DEFAULT_SLOTS "4096"
#define DEFAULT_SWEEP_FROM "1k"
#define DEFAULT_SWEEP_TO "100M"
#define DEFAULT_REFINE "2"
#define RATE_MAX_REFINE 8              /* --refine at most */
#define RATE_MAX 100000000ull          /* 100M messages/s: far beyond any channel here */
#define RATE_MIN_MESSAGES 10           /* measured messages a point needs at least */
#define RATE_EXACT_MAX 10000000ull     /* samples kept for exact percentiles (80 MB) */
#define RATE_MAX_SETS 8                /* interference sets */
#define RATE_MAX_POINTS 64             /* rows kept for the summary */
#define RATE_SUSTAINED 0.99            /* achieved / offered, at least */
/*
 * The default p99 bound: RATE_BOUND_FACTOR times the quiet run's p99.9 (a
 * run of BASELINE_NS at the first rate, BASELINE_RATE at most). Not its
 * p50: a few microseconds on a polling channel, which a busy machine's
 * scheduling alone exceeds, so that the sweep stopped at a few thousand
 * messages/s where the channel carries millions. The quiet tail over a
 * whole second holds what the machine does to a point that the channel
 * does not: here (2 CPUs, both taken by the polling sides), any other task
 * preempts one of them for 0.3-5 ms, a few percent of the time, and that
 * sets the p99 of every point below saturation. Ten times that tail is
 * headroom for the noise varying from one second to the next (4x was not:
 * a burst of load after the quiet run put p99 at 8x its p99.9 at 20,000/s
 * here); a p99 beyond it is queueing the quiet run never saw, and queueing
 * at saturation is hundreds of milliseconds. On a quiet machine the p99.9
 * is microseconds, and so is the bound.
 */
#define RATE_BOUND_FACTOR 10
#define RATE_BOUND_PCT 99.9
#define RATE_BOUND_TEXT "10x the quiet p99.9"
#define BASELINE_RATE 1000ull          /* the quiet run: messages/s at most, */
#define BASELINE_NS 1000000000ull      /* for this long, */
#define BASELINE_MESSAGES 1000ull      /* or as long as this many take (at most */
#define BASELINE_MAX_NS 10000000000ull /* this long) */
#define RATE_STOP_AFTER 2              /* points in a row not sustained end a sweep */
#define RATE_MAX_LADDER 32             /* points of one set in a sweep (1..100M: 25) */
/* Doorbell waiters sleep in whole milliseconds: the sender sleeps only when
 * its next send is further than RATE_SLEEP_MIN_NS away, and wakes
 * RATE_WAKE_EARLY_NS before it to spin the rest. */
#define RATE_SLEEP_MIN_NS 4000000ull
#define RATE_WAKE_EARLY_NS 2500000ull
#define CORUNNER_START_NS 5000000000ull /* a co-runner has this long to start its worker */

static const struct ivb_csv_schema rate_csv = {
	"rate_results.csv",
	"interference,arrivals,offered_per_s,achieved_per_s,message_bytes,verify,wait,duration_s,"
	"messages,sent,received,unsent,late,sender_lag_p99_ns,sender_lag_max_ns,percentiles,"
	"min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,p9999_ns,max_ns,errors,p99_bound_ns,"
	"sustained,p50_ratio,p99_ratio,p999_ratio," IVB_COUNTERS_COLUMNS,
};
#define RATE_COUNTED "from each point's first measured send to its last echo"

static const struct ivb_csv_schema hist_csv = {
	"rate_histograms.csv",
	"interference,offered_per_s,bucket_low_ns,bucket_high_ns,count,cumulative_count,percentile",
};

enum arrivals { ARRIVALS_CONSTANT, ARRIVALS_POISSON, ARRIVALS_CLOSED };
static const char *const arrivals_names[] = { "constant", "poisson", "closed" };

/* What one point measured. */
struct point {
	uint64_t offered;         /* messages/s */
	int set;                  /* interference set, -1 quiet */
	uint64_t messages;        /* measured messages scheduled */
	uint64_t sent, received;  /* of them */
	uint64_t late;            /* sent more than one mean gap after their time */
	uint64_t errors;          /* echoes that failed a check, both sides */
	double achieved;          /* messages/s received */
	double min, mean, p50, p90, p99, p999, p9999, max; /* ns */
	double lag_p99, lag_max;  /* sender lag, ns */
	int exact;                /* percentiles from every sample (else the histogram) */
	int sustained;            /* achieved >= 99 % of offered and p99 <= bound */
	struct ivb_counts host_ctr, vcpu_ctr; /* over the measured messages (counters.h) */
};

/* ------------------------------------------------------------------ */
/* The sweep's rule                                                    */
/* ------------------------------------------------------------------ */

enum rate_stop {
	RATE_GO_ON,               /* measure the next rate */
	RATE_STOP_NOT_SUSTAINED,  /* RATE_STOP_AFTER points in a row were not */
	RATE_STOP_SWEEP_TO,       /* the last point was at --sweep-to */
	RATE_STOP_OTHER,          /* set by the caller: the quiet sweep stopped, or the run */
};

/* What rate_rule() decided about one set's points. */
struct rate_verdict {
	enum rate_stop stop;
	uint64_t knee;            /* highest rate sustained below the stop; 0: none */
	uint64_t lone[RATE_MAX_LADDER]; /* rates not sustained below the knee: noise */
	int nlone;
	char reason[384];         /* why it stopped (or goes on), for people */
};

/* Sustained: achieved >= 99 % of offered and p99 <= bound. */
static int rate_sustained(const struct point *p, uint64_t bound_ns)
{
	return p->achieved >= RATE_SUSTAINED * (double)p->offered && p->p99 <= (double)bound_ns;
}

/* Why p was not sustained, into buf: "p99 2.1 ms over the 1.0 ms bound; achieved 73.4 %". */
static void rate_why_not(const struct point *p, uint64_t bound_ns, char *buf, size_t len)
{
	int n = 0;

	buf[0] = 0;
	if (p->p99 > (double)bound_ns)
		n = snprintf(buf, len, "p99 %.3f ms over the %.3f ms bound", p->p99 / 1e6,
			     (double)bound_ns / 1e6);
	if (p->achieved < RATE_SUSTAINED * (double)p->offered && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "%sachieved %.0f/s, %.1f %% of offered",
			 n ? "; " : "", p->achieved, 100 * p->achieved / (double)p->offered);
}

/*
 * The sweep's rule, on one set's points so far (rates rising, in the order
 * measured), the p99 bound and --sweep-to: whether to go on, why not, and
 * the knee. Pure: reads only pts[k].offered, .achieved and .p99, and writes
 * only *v.
 *
 * It stops at the first RATE_STOP_AFTER points in a row not sustained (a
 * channel that cannot carry a rate cannot carry the next one up either;
 * one point alone is one sample of a noisy machine: a task scheduled on a
 * polling side's CPU for a few milliseconds fails a point and not the
 * next), or when the last point was at sweep_to. The knee is the highest
 * rate sustained before the failing run (all points, when it did not stop
 * on one). A point not sustained below the knee does not lower it: the
 * rates above it were carried, so it was the machine, not the channel; it
 * is listed in v->lone, and run.json says which.
 */
static void rate_rule(const struct point *pts, int n, uint64_t bound_ns, uint64_t sweep_to,
		      struct rate_verdict *v)
{
	char a[160], b[160];
	int i, run = 0, end = n;

	memset(v, 0, sizeof(*v));
	v->stop = RATE_GO_ON;
	for (i = 0; i < n; i++) {
		run = rate_sustained(&pts[i], bound_ns) ? 0 : run + 1;
		if (run == RATE_STOP_AFTER) {
			v->stop = RATE_STOP_NOT_SUSTAINED;
			end = i + 1 - RATE_STOP_AFTER;
			break;
		}
	}
	for (i = 0; i < end; i++)
		if (rate_sustained(&pts[i], bound_ns))
			v->knee = pts[i].offered;
	for (i = 0; i < end && pts[i].offered < v->knee; i++)
		if (!rate_sustained(&pts[i], bound_ns) && v->nlone < RATE_MAX_LADDER)
			v->lone[v->nlone++] = pts[i].offered;
	if (v->stop == RATE_STOP_NOT_SUSTAINED) {
		/* RATE_STOP_AFTER is 2: the pair, each with its reason. */
		rate_why_not(&pts[end], bound_ns, a, sizeof(a));
		rate_why_not(&pts[end + 1], bound_ns, b, sizeof(b));
		snprintf(v->reason, sizeof(v->reason), "%d consecutive points not sustained: "
			 "%llu/s (%s) and %llu/s (%s)", RATE_STOP_AFTER,
			 (unsigned long long)pts[end].offered, a,
			 (unsigned long long)pts[end + 1].offered, b);
	} else if (n > 0 && pts[n - 1].offered >= sweep_to) {
		v->stop = RATE_STOP_SWEEP_TO;
		if (rate_sustained(&pts[n - 1], bound_ns)) {
			snprintf(v->reason, sizeof(v->reason), "reached --sweep-to (%llu/s), "
				 "sustained there", (unsigned long long)sweep_to);
		} else {
			rate_why_not(&pts[n - 1], bound_ns, a, sizeof(a));
			snprintf(v->reason, sizeof(v->reason), "reached --sweep-to (%llu/s), "
				 "not sustained there (%s)", (unsigned long long)sweep_to, a);
		}
	} else {
		snprintf(v->reason, sizeof(v->reason), "not stopped: %d point(s) in a row not "
			 "sustained at the last", run);
	}
	_Static_assert(RATE_STOP_AFTER == 2, "the reason names the pair");
}

struct rate {
	/* settings */
	uint64_t rate;             /* offered messages/s, without --rate-sweep */
	int rate_given;            /* --rate was given */
	int sweep;                 /* --rate-sweep */
	uint64_t sweep_from, sweep_to;
	int refine;                /* rates measured between the knee and the rate above it */
	enum arrivals arrivals;
	uint64_t seed;             /* poisson gaps */
	uint64_t duration_ns;      /* measured schedule of a point */
	uint32_t size;             /* message bytes */
	uint64_t slots;            /* most slots per ring */
	enum ivb_verify verify;
	uint64_t bound_ns;         /* p99 bound, 0: RATE_BOUND_FACTOR * the quiet p50 */
	unsigned sets[RATE_MAX_SETS]; /* interference sets: bit k = corunner kind k */
	int nsets;
	int intf_cpu, other_cpu;   /* -1: chosen at run time */
	struct ivb_channel_fault stall; /* fault injection; stall_after counts measured messages */
	/* results */
	uint64_t quiet_rate, quiet_ns; /* the baseline run: messages/s, for this long */
	double quiet_p50, quiet_p99, quiet_p999; /* its percentiles, ns (0 when the bound was given) */
	uint64_t bound_used_ns;
	int resp_cpu, others_cpu;  /* the CPUs the co-runners used */
	char commands[IVB_CORUNNER__COUNT][256];
	uint64_t knee[RATE_MAX_SETS + 1]; /* [0] quiet, [1 + s] set s: highest rate sustained */
	struct point seen[RATE_MAX_SETS + 1][RATE_MAX_LADDER]; /* each set's sweep points, in order */
	int nseen[RATE_MAX_SETS + 1];
	struct rate_verdict verdict[RATE_MAX_SETS + 1]; /* each set's, after its last point */
	struct point pts[RATE_MAX_POINTS];
	int npts;
	long rows;
	char guest_copy[32];
	struct ivb_counters ctr;   /* the initiator's thread and --watch-thread's */
};

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static uint64_t parse_rate(const char *opt, const char *arg)
{
	uint64_t v;

	if (ivb_parse_count(arg, &v) || v < 1 || v > RATE_MAX)
		ivb_die_usage("%s: '%s' is not a rate in 1..100M messages/s (e.g. 100k)", opt, arg);
	return v;
}

static void set_rate(void *st, const char *arg)
{
	struct rate *r = st;

	r->rate = parse_rate("--rate", arg);
	r->rate_given = 1;
}

static void set_sweep(void *st, const char *arg)
{
	(void)arg;
	((struct rate *)st)->sweep = 1;
}

static void set_refine(void *st, const char *arg)
{
	((struct rate *)st)->refine = (int)ivb_opt_count("--refine", arg, 0, RATE_MAX_REFINE);
}

static void set_sweep_from(void *st, const char *arg)
{
	((struct rate *)st)->sweep_from = parse_rate("--sweep-from", arg);
}

static void set_sweep_to(void *st, const char *arg)
{
	((struct rate *)st)->sweep_to = parse_rate("--sweep-to", arg);
}

static void set_arrivals(void *st, const char *arg)
{
	int k;

	for (k = 0; k < 3 && strcmp(arg, arrivals_names[k]); k++)
		;
	if (k == 3)
		ivb_die_usage("--arrivals: '%s' is not constant, poisson or closed", arg);
	((struct rate *)st)->arrivals = (enum arrivals)k;
}

static void set_seed(void *st, const char *arg)
{
	((struct rate *)st)->seed = ivb_opt_count("--rate-seed", arg, 0, UINT64_MAX >> 2);
}

static void set_duration(void *st, const char *arg)
{
	((struct rate *)st)->duration_ns = ivb_opt_duration("--rate-duration", arg, 1000000000ull,
							     10000000ull, 600000000000ull,
							     "10ms..10m (e.g. 2s)");
}

static void set_size(void *st, const char *arg)
{
	/* 16 bytes at least: the sequence number and the scheduled time. */
	((struct rate *)st)->size = (uint32_t)ivb_opt_size("--rate-size", arg, 16, 1u << 20);
}

static void set_slots(void *st, const char *arg)
{
	uint64_t v = ivb_opt_count("--rate-slots", arg, 2, 1u << 20);

	if (v & (v - 1))
		ivb_die_usage("--rate-slots: '%s' is not a power of two", arg);
	((struct rate *)st)->slots = v;
}

static void set_verify(void *st, const char *arg)
{
	int v = ivb_verify_parse(arg);

	if (v < 0)
		ivb_die_usage("--rate-verify: '%s' is not xxh3, sha256 or none", arg);
	((struct rate *)st)->verify = (enum ivb_verify)v;
}

static void set_bound(void *st, const char *arg)
{
	((struct rate *)st)->bound_ns = ivb_opt_duration("--p99-bound", arg, 1000000000ull, 1,
							  100000000000ull, "1ns..100s (e.g. 20us)");
}

/* --interference cpu,membw,cache: each item a set, kinds in a set joined by '+'. */
static void set_interference(void *st, const char *arg)
{
	struct rate *r = st;
	char buf[256], *item, *save, *kind, *save2;

	if (strlen(arg) >= sizeof(buf))
		ivb_die_usage("--interference: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	r->nsets = 0;
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		unsigned set = 0;

		if (r->nsets == RATE_MAX_SETS)
			ivb_die_usage("--interference: at most %d sets", RATE_MAX_SETS);
		for (kind = strtok_r(item, "+", &save2); kind; kind = strtok_r(NULL, "+", &save2)) {
			int k = ivb_corunner_parse(kind);

			if (k < 0)
				ivb_die_usage("--interference: '%s' is not cpu, membw or cache "
					      "(several joined by '+' run together)", kind);
			set |= 1u << k;
		}
		if (!set)
			ivb_die_usage("--interference: an empty set in '%s'", arg);
		r->sets[r->nsets++] = set;
	}
	if (!r->nsets)
		ivb_die_usage("--interference: empty list (cpu, membw, cache)");
}

static void set_intf_cpu(void *st, const char *arg)
{
	((struct rate *)st)->intf_cpu = ivb_opt_cpu("--interference-cpu", arg, 0);
}

static void set_other_cpu(void *st, const char *arg)
{
	((struct rate *)st)->other_cpu = ivb_opt_cpu("--hog-cpu", arg, 0);
}

/* --rate-stall M:DUR (fault injection). */
static void set_stall(void *st, const char *arg)
{
	struct rate *r = st;
	const char *colon = strchr(arg, ':');
	char count[32];
	uint64_t m, ns;

	if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof(count))
		ivb_die_usage("--rate-stall: '%s' is not M:DUR (pause DUR after message M)", arg);
	snprintf(count, sizeof(count), "%.*s", (int)(colon - arg), arg);
	if (ivb_parse_count(count, &m) ||
	    ivb_parse_duration(colon + 1, 1000000ull, &ns) || ns == 0 || ns > 60000000000ull)
		ivb_die_usage("--rate-stall: '%s' is not M:DUR with DUR in 1ns..60s (e.g. 5000:50ms)",
			      arg);
	r->stall = (struct ivb_channel_fault){ .stall_after = m, .stall_ns = ns };
}

static const struct ivb_wl_option rate_opts[] = {
	{ "rate", 0, "R", "offered messages/s, open loop (default %s)", DEFAULT_RATE, set_rate },
	{ "rate-sweep", 0, NULL, "offered rates on a 1-2-5 ladder up to saturation; finds the knee", NULL, set_sweep },
	{ "sweep-from", 0, "R", "the sweep's first rate (default %s)", DEFAULT_SWEEP_FROM, set_sweep_from },
	{ "sweep-to", 0, "R", "the sweep's last rate at most (default %s)", DEFAULT_SWEEP_TO, set_sweep_to },
	{ "refine", 0, "N", "rates measured between the quiet knee and the next rung, halving the gap each time, 0..8 (default %s)", DEFAULT_REFINE, set_refine },
	{ "arrivals", 0, "KIND", "constant, poisson, or closed (the closed loop, to compare) (default %s)", "constant", set_arrivals },
	{ "rate-seed", 0, "N", "seed of the poisson gaps (default %s)", "1", set_seed },
	{ "rate-duration", 0, "DUR", "measured time per rate, after a tenth more of warm-up (default %s)", DEFAULT_DURATION, set_duration },
	{ "rate-size", 0, "N", "message bytes, 16..1M (default %s)", DEFAULT_SIZE, set_size },
	{ "rate-slots", 0, "N", "most slots per ring, a power of two (default %s)", DEFAULT_SLOTS, set_slots },
	{ "rate-verify", 0, "KIND", "check of each message: xxh3, sha256, none (default %s)", "xxh3", set_verify },
	{ "p99-bound", 0, "DUR", "p99 a rate must stay under to count as sustained (default: %s at the first rate over 1 s)", RATE_BOUND_TEXT, set_bound },
	{ "interference", 0, "LIST", "co-runners beside each rate: cpu, membw, cache; a+b together (stress-ng)%s", "", set_interference },
	{ "interference-cpu", 0, "N", "the responder's CPU, for the cpu hog (default: %s)", "--watch-thread's, else the last", set_intf_cpu },
	{ "hog-cpu", 0, "N", "CPU of the membw and cache co-runners (default: %s)", "another than the responder's", set_other_cpu },
	{ "rate-stall", 0, "M:DUR", "fault injection: the responder pauses DUR after message M%s", "", set_stall },
	{ 0 },
};

static void rate_defaults(void *st)
{
	struct rate *r = st;

	set_rate(st, DEFAULT_RATE);
	r->rate_given = 0;
	set_sweep_from(st, DEFAULT_SWEEP_FROM);
	set_sweep_to(st, DEFAULT_SWEEP_TO);
	set_refine(st, DEFAULT_REFINE);
	set_seed(st, "1");
	set_duration(st, DEFAULT_DURATION);
	set_size(st, DEFAULT_SIZE);
	set_slots(st, DEFAULT_SLOTS);
	r->intf_cpu = r->other_cpu = -1;
}

/* Measured messages of a point at rate messages/s. */
static uint64_t point_messages(const struct rate *r, uint64_t rate)
{
	return (uint64_t)llround((double)rate * (double)r->duration_ns / 1e9);
}

/* Warm-up messages before them. */
static uint64_t warmup_messages(uint64_t n)
{
	return n / 10 > 10 ? n / 10 : 10;
}

static void rate_check(const void *st, uint64_t capacity, const char *shm_name)
{
	const struct rate *r = st;
	uint64_t lowest = r->sweep ? r->sweep_from : r->rate;
	char path[4096];

	if (r->size > ivb_channel_max_message(capacity + IVB_PAYLOAD_OFFSET))
		ivb_die_usage("--rate-size: a %u-byte message cannot fit a ring in %s (at most %llu "
			      "bytes there); use a larger IVSHMEM_SHM_SIZE", r->size, shm_name,
			      (unsigned long long)ivb_channel_max_message(capacity + IVB_PAYLOAD_OFFSET));
	if (r->sweep && r->rate_given)
		ivb_die_usage("--rate and --rate-sweep exclude each other");
	if (r->sweep && r->sweep_from > r->sweep_to)
		ivb_die_usage("--sweep-from %llu is above --sweep-to %llu",
			      (unsigned long long)r->sweep_from, (unsigned long long)r->sweep_to);
	if (point_messages(r, lowest) < RATE_MIN_MESSAGES)
		ivb_die_usage("--rate-duration: %.3f s at %llu messages/s is fewer than %d messages",
			      (double)r->duration_ns / 1e9, (unsigned long long)lowest, RATE_MIN_MESSAGES);
	if (r->stall.stall_ns && r->stall.stall_after >= point_messages(r, lowest))
		ivb_die_usage("--rate-stall: message %llu is beyond the %llu of a point",
			      (unsigned long long)r->stall.stall_after,
			      (unsigned long long)point_messages(r, lowest));
	if (r->nsets && ivb_corunner_find(path, sizeof(path)))
		ivb_die("--interference needs %s, which is not installed (Debian package %s)",
			IVB_CORUNNER_PROGRAM, IVB_CORUNNER_PACKAGE);
}

/* ------------------------------------------------------------------ */
/* One point                                                           */
/* ------------------------------------------------------------------ */

/* splitmix64, for the poisson gaps: reproducible from the seed. */
static uint64_t next_random(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The schedule: when message k is due, from the start, in ns. */
struct schedule {
	enum arrivals arrivals;
	double gap_ns;    /* mean gap */
	double at;        /* offset of the next message */
	uint64_t rng;
};

static void schedule_next(struct schedule *s)
{
	if (s->arrivals == ARRIVALS_POISSON) {
		double u = (double)(next_random(&s->rng) >> 11) / 9007199254740992.0;

		s->at += -log1p(-u) * s->gap_ns;
	} else {
		s->at += s->gap_ns;
	}
}

/* What the sending loop needs besides the channel. */
struct drive {
	uint64_t total, warm;     /* messages to send in all, of which warm-up first */
	uint64_t *when;           /* the scheduled (or, closed loop, actual) send time of
				   * message seq, at when[seq & mask]: at most two rings in flight */
	uint64_t mask;
	uint64_t *samples;        /* measured latencies, for exact percentiles (NULL: too many) */
	uint64_t nsamples;
	struct ivb_hist *lat, *lag;
	uint64_t sent, received;  /* all, warm-up included */
	uint64_t late, bad_echo;
	uint64_t t0, last_send;   /* the schedule's start; the last message's actual send */
	double measured_at;       /* the first measured message's offset in the schedule */
	uint64_t tail_from;       /* the last tenth of the messages starts here, */
	uint64_t tail_lag_min;    /* and the least sender lag among them */
	struct ivb_counters *ctr; /* started as the first measured message is due */
};

/* Sleep (doorbell) or spin until something may move. 0, or -ETIMEDOUT/-EINTR of a real wait. */
static int idle(struct ivb_channel *ch, uint64_t next_due, int more_to_send, uint64_t stale_at)
{
	struct ivb_waiter *w = ch->ini->waiter;
	uint64_t now, until;
	int rc;

	if (!w->ops || w->spin_ns == IVB_SPIN_FOREVER)
		return 0; /* polling: the loop spins */
	now = ivb_now_ns();
	if (!more_to_send) {
		rc = ivb_ring_wait_message(&ch->rx, stale_at);
		return rc == -ETIMEDOUT ? 0 : rc; /* the caller names the timeout */
	}
	if (next_due < now + RATE_SLEEP_MIN_NS)
		return 0;
	until = next_due - RATE_WAKE_EARLY_NS;
	rc = ivb_ring_wait_message(&ch->rx, until < stale_at ? until : stale_at);
	return rc == -EINTR || rc == -EPROTO ? rc : 0;
}

/*
 * Send d->total messages on schedule s and take their echoes, in one loop
 * that never blocks on an answer. Returns 0, or -ETIMEDOUT (no echo for the
 * timeout while some were due), -EINTR, -EPIPE (the responder stopped), -EIO,
 * -EPROTO (an impossible ring index), -EBADMSG (too many bad echoes).
 */
static int drive_point(struct ivb_channel *ch, struct schedule *s, struct drive *d,
		       uint64_t timeout_ns, uint64_t span_ns)
{
	int closed = s->arrivals == ARRIVALS_CLOSED;
	/* A sender more than a whole schedule behind stops sending: the point is saturated. */
	uint64_t stop_sending = d->t0 + (closed ? span_ns : 2 * span_ns +
					 (timeout_ns < 1000000000ull ? timeout_ns : 1000000000ull));
	uint64_t progress = ivb_now_ns(), late_ns = (uint64_t)s->gap_ns;
	int rc;

	for (;;) {
		uint64_t now = ivb_now_ns(), due = d->t0 + (uint64_t)s->at;
		int sending = d->sent < d->total && now < stop_sending, got = 0;

		/* Send what is due (closed loop: one at a time). */
		while (sending && now >= due && (!closed || d->sent == d->received)) {
			uint64_t when = closed ? now : due;

			memcpy(ch->src + 8, &when, sizeof(when));
			if ((rc = ivb_channel_try_send(ch)) < 0)
				return rc;
			if (rc == 0)
				break; /* full: the lag grows, and is recorded when it goes */
			d->when[d->sent & d->mask] = when;
			d->last_send = now;
			if (d->sent >= d->warm) {
				ivb_hist_record(d->lag, now - due);
				d->late += now - due > late_ns;
			}
			if (d->sent >= d->tail_from && now - due < d->tail_lag_min)
				d->tail_lag_min = now - due;
			if (d->sent == d->received)
				progress = now; /* the timeout runs from the oldest message out */
			d->sent++;
			if (closed) /* the next one gap after this one, however late: no catching up */
				s->at = (double)(now - d->t0) + s->gap_ns;
			else
				schedule_next(s);
			if (d->sent == d->warm) {
				d->measured_at = s->at;
				ivb_counters_start(d->ctr);
			}
			due = d->t0 + (uint64_t)s->at;
			now = ivb_now_ns();
			sending = d->sent < d->total && now < stop_sending;
		}
		/* Take the echoes there are. */
		while (d->received < d->sent) {
			uint64_t errors = ch->errors, seq = d->received, carried, t;

			if ((got = ivb_channel_poll(ch)) <= 0)
				break;
			t = ivb_now_ns();
			memcpy(&carried, ch->dst + 8, sizeof(carried));
			d->received++;
			progress = t;
			if (ch->errors != errors)
				continue; /* counted by the channel */
			if (carried != d->when[seq & d->mask]) {
				d->bad_echo++; /* whole, but not our message's time */
				continue;
			}
			if (seq < d->warm)
				continue;
			if (d->samples)
				d->samples[d->nsamples++] = t - carried;
			ivb_hist_record(d->lat, t > carried ? t - carried : 0);
		}
		if (got < 0)
			return got; /* -EPIPE: it said it finished before echoing them all */
		if (d->received == d->sent && (d->sent == d->total || ivb_now_ns() >= stop_sending))
			return 0;
		if (ivb_interrupted)
			return -EINTR;
		if (d->received == d->sent)
			progress = ivb_now_ns(); /* nothing out: nothing to time out */
		else if (ivb_now_ns() - progress > timeout_ns)
			return -ETIMEDOUT;
		if ((rc = idle(ch, due, sending && (!closed || d->sent == d->received),
			       progress + timeout_ns)) != 0)
			return rc;
	}
}

/* Percentile p of sorted samples, or of the histogram. */
static double pct(const struct drive *d, double p)
{
	return d->samples ? ivb_percentile(d->samples, d->nsamples, p) : ivb_hist_percentile(d->lat, p);
}

/* Write the point's histogram rows. 0 or -1. */
static int write_hist(struct ivb_csv *csv, const char *set, uint64_t offered, const struct ivb_hist *h)
{
	uint64_t run = 0;
	unsigned i;

	for (i = 0; i < IVB_HIST_BUCKETS; i++) {
		if (!h->bucket[i])
			continue;
		run += h->bucket[i];
		if (ivb_csv_row(csv, "%s,%llu,%llu,%llu,%llu,%llu,%.6f", set, (unsigned long long)offered,
				(unsigned long long)ivb_hist_bucket_low(i),
				(unsigned long long)ivb_hist_bucket_high(i),
				(unsigned long long)h->bucket[i], (unsigned long long)run,
				100.0 * (double)run / (double)h->count))
			return -1;
	}
	return ivb_csv_flush(csv);
}

/* The set's name: "none", "cpu", "cpu+membw". */
static const char *set_name(const struct rate *r, int set, char *buf, size_t len)
{
	int k;

	buf[0] = 0;
	if (set < 0)
		return "none";
	for (k = 0; k < IVB_CORUNNER__COUNT; k++)
		if (r->sets[set] & (1u << k))
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "+" : "",
				 ivb_corunner_name((enum ivb_corunner_kind)k));
	return buf;
}

/*
 * Measure one point at rate for duration_ns (and a tenth more of warm-up):
 * open the channel, drive it, close it, fill pt and the histograms of its
 * latency and of the sender's lag. 0, 1 when echoes were bad (status set,
 * pt filled), -1 when it stopped (status set).
 */
static int measure(struct rate *r, struct ivb_wl_ctx *ctx, uint64_t rate, uint64_t duration_ns,
		   struct point *pt, struct ivb_hist *lat, struct ivb_hist *lag)
{
	struct ivb_initiator *ini = ctx->ini;
	uint64_t n = (uint64_t)llround((double)rate * (double)duration_ns / 1e9);
	uint64_t warm = warmup_messages(n), span, inflight;
	struct schedule s = { r->arrivals, 1e9 / (double)rate, 0, r->seed };
	struct ivb_channel_fault fault = r->stall;
	struct drive d = { .total = n + warm, .warm = warm, .lat = lat, .lag = lag,
			   .tail_from = n + warm - (n / 10 ? n / 10 : 1), .tail_lag_min = UINT64_MAX,
			   .ctr = &r->ctr };
	struct ivb_channel ch;
	int rc;

	memset(pt, 0, sizeof(*pt));
	pt->offered = rate;
	pt->messages = n;
	ivb_hist_reset(lat);
	ivb_hist_reset(lag);
	fault.stall_after += warm;
	rc = ivb_channel_open_fault(&ch, ini, IVB_STREAM_ECHO, r->size, r->slots, 1, r->verify,
				    ctx->responder_spin_ns, r->stall.stall_ns ? &fault : NULL);
	if (rc == 1) {
		snprintf(ctx->status, ctx->status_len, "a %u-byte message does not fit the shared "
			 "memory", r->size);
		return -1;
	}
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		return -1;
	}
	/* In flight at most: both rings full, and one in the responder's hands. */
	for (inflight = 4; inflight < 2 * (ch.tx.mask + 1) + 2; inflight *= 2)
		;
	d.mask = inflight - 1;
	d.when = calloc(inflight, sizeof(*d.when));
	d.samples = n <= RATE_EXACT_MAX ? malloc((n ? n : 1) * sizeof(*d.samples)) : NULL;
	if (!d.when || (n <= RATE_EXACT_MAX && !d.samples))
		ivb_die("out of memory for %llu samples", (unsigned long long)n);
	span = (uint64_t)((double)d.total * s.gap_ns);
	d.t0 = ivb_now_ns();
	rc = drive_point(&ch, &s, &d, ini->timeout_ns, span);
	ivb_counters_stop(&r->ctr, &pt->host_ctr, &pt->vcpu_ctr);
	if (rc) {
		snprintf(ctx->status, ctx->status_len, "%s at %llu messages/s (message %llu of %llu, "
			 "%llu echoed)", rc == -ETIMEDOUT ? "timeout waiting for an echo" :
			 rc == -EPIPE ? "the responder stopped early" : ivb_channel_error(rc),
			 (unsigned long long)rate, (unsigned long long)d.sent,
			 (unsigned long long)d.total, (unsigned long long)d.received);
		ivb_channel_abort(&ch);
		free(d.when);
		free(d.samples);
		return -1;
	}
	rc = ivb_channel_close(&ch);
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		free(d.when);
		free(d.samples);
		return -1;
	}
	memcpy(r->guest_copy, ch.result->copy_impl, sizeof(r->guest_copy));
	r->guest_copy[sizeof(r->guest_copy) - 1] = 0;
	if (d.samples)
		ivb_sort_u64(d.samples, d.nsamples);
	pt->exact = d.samples != NULL;
	pt->sent = d.sent > warm ? d.sent - warm : 0;
	pt->received = d.received > warm ? d.received - warm : 0;
	pt->late = d.late;
	pt->errors = ch.errors + ch.result->errors + d.bad_echo;
	/*
	 * Achieved: what was received over the measured part of the schedule,
	 * lengthened by how far behind it the sender stayed at the end: the
	 * least lag among the last tenth of the messages, which grows with the
	 * run when the channel cannot keep up (once the ring is full the sender
	 * goes at the channel's pace), and is near 0 when the sender was only
	 * descheduled now and then (that is latency, which the percentiles
	 * give). A closed loop, or a point cut short, by its real length.
	 * Poisson gaps: the measured part's own length.
	 */
	{
		double planned = (double)n * s.gap_ns, took;

		if (r->arrivals == ARRIVALS_POISSON && d.sent == d.total)
			planned = s.at - d.measured_at;
		if (r->arrivals == ARRIVALS_CLOSED || d.sent < d.total)
			took = (double)d.last_send + s.gap_ns - ((double)d.t0 + d.measured_at);
		else
			took = planned + (double)d.tail_lag_min;
		if (took < planned)
			took = planned;
		pt->achieved = took > 0 ? (double)pt->received * 1e9 / took : 0;
	}
	if (lat->count == 0) {
		/* No measured round trip: there is no latency to report, not a latency of 0. */
		snprintf(ctx->status, ctx->status_len, "no measured message was echoed at %llu "
			 "messages/s: %llu of %llu went out in the point's %.1f s, the first %llu of "
			 "them warm-up%s", (unsigned long long)rate, (unsigned long long)d.sent,
			 (unsigned long long)d.total, (double)(ivb_now_ns() - d.t0) / 1e9,
			 (unsigned long long)warm, r->arrivals == ARRIVALS_CLOSED ?
			 " (a closed loop waits for each echo: round trips were too slow for the "
			 "point; a longer --rate-duration or a lower rate)" : "");
		free(d.when);
		free(d.samples);
		return -1;
	}
	pt->min = pct(&d, 0);
	pt->max = pct(&d, 100);
	pt->mean = ivb_hist_mean(lat);
	pt->p50 = pct(&d, 50);
	pt->p90 = pct(&d, 90);
	pt->p99 = pct(&d, 99);
	pt->p999 = pct(&d, 99.9);
	pt->p9999 = pct(&d, 99.99);
	pt->lag_p99 = ivb_hist_percentile(lag, 99);
	pt->lag_max = (double)(lag->count ? lag->max : 0);
	free(d.when);
	free(d.samples);
	if (rc > 0 || d.bad_echo) {
		if (rc == 0)
			snprintf(ini->status, sizeof(ini->status), "%llu echo(es) at %llu messages/s "
				 "carried another message's time", (unsigned long long)d.bad_echo,
				 (unsigned long long)rate);
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		ivb_warn("%s", ini->status);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Interference                                                        */
/* ------------------------------------------------------------------ */

/* The CPU thread tid last ran on (or is confined to); -1 if unknown. */
static int thread_cpu(int tid)
{
	char path[64], line[1024], *p, *save;
	cpu_set_t set;
	int i, cpu = -1;
	FILE *f;

	if (sched_getaffinity(tid, sizeof(set), &set) == 0 && CPU_COUNT(&set) == 1)
		for (i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				return i;
	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	if (!(f = fopen(path, "r")))
		return -1;
	/* Field 39, "processor"; fields after the last ')' start at 3. */
	if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')'))) {
		for (i = 3, p = strtok_r(p + 1, " ", &save); p && i < 39; i++)
			p = strtok_r(NULL, " ", &save);
		if (p)
			cpu = atoi(p);
	}
	fclose(f);
	return cpu;
}

/* The CPUs: the responder's (the cpu hog's), and another (membw, cache). */
static void choose_cpus(struct rate *r, const struct ivb_wl_ctx *ctx)
{
	int n = ivb_cpu_count(), me = sched_getcpu(), c;

	r->resp_cpu = r->intf_cpu;
	if (r->resp_cpu < 0 && ctx->watch_tid)
		r->resp_cpu = thread_cpu(ctx->watch_tid);
	if (r->resp_cpu < 0)
		r->resp_cpu = n - 1; /* where setup.sh pins the vCPU */
	r->others_cpu = r->other_cpu;
	/* Another CPU than the responder's, and than ours when there is one more. */
	for (c = 0; r->others_cpu < 0 && c < n; c++)
		if (c != r->resp_cpu && (c != me || n <= 2))
			r->others_cpu = c;
	if (r->others_cpu < 0)
		r->others_cpu = r->resp_cpu;
}

/* Start set's co-runners. 0, or -1 (status set; none left running). */
static int start_set(struct rate *r, struct ivb_wl_ctx *ctx, int set, unsigned max_s,
		     struct ivb_corunner run[IVB_CORUNNER__COUNT])
{
	char err[512];
	int k, j;

	for (k = 0; k < IVB_CORUNNER__COUNT; k++) {
		int cpu = k == IVB_CORUNNER_CPU ? r->resp_cpu : r->others_cpu;

		run[k].pid = 0;
		if (!(r->sets[set] & (1u << k)))
			continue;
		if (ivb_corunner_start(&run[k], (enum ivb_corunner_kind)k, cpu, max_s,
				       ivb_now_ns() + CORUNNER_START_NS, err, sizeof(err))) {
			for (j = 0; j < k; j++)
				ivb_corunner_stop(&run[j]);
			snprintf(ctx->status, ctx->status_len, "interference %s: %s",
				 ivb_corunner_name((enum ivb_corunner_kind)k), err);
			return -1;
		}
		snprintf(r->commands[k], sizeof(r->commands[k]), "%s", run[k].command);
		if (!ctx->quiet)
			printf("  interference %s: %s pid %d (worker %d) on CPU %d\n",
			       ivb_corunner_name((enum ivb_corunner_kind)k), IVB_CORUNNER_PROGRAM,
			       (int)run[k].pid, (int)run[k].worker, cpu);
		fflush(stdout);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Rows and the run                                                    */
/* ------------------------------------------------------------------ */

struct outputs {
	struct ivb_csv *csv, *hist;
	struct ivb_hist lat, lag;
};

/* One point, with set's co-runners around it (set -1: quiet), and its rows. */
static int point(struct rate *r, struct ivb_wl_ctx *ctx, struct outputs *o, uint64_t rate, int set,
		 const struct point *quiet, struct point *pt)
{
	struct ivb_corunner run[IVB_CORUNNER__COUNT];
	/* stress-ng's own deadline, should every other way to stop it fail. */
	unsigned max_s = (unsigned)((3 * (r->duration_ns + r->duration_ns / 5) +
				     ctx->ini->timeout_ns) / 1000000000ull) + 10;
	char buf[64], ctr_cells[512], ctr_say[64];
	const char *name = set_name(r, set, buf, sizeof(buf));
	int rc, k;

	if (set >= 0 && start_set(r, ctx, set, max_s, run))
		return -1;
	rc = measure(r, ctx, rate, r->duration_ns, pt, &o->lat, &o->lag);
	if (set >= 0)
		for (k = 0; k < IVB_CORUNNER__COUNT; k++)
			ivb_corunner_stop(&run[k]);
	if (rc < 0)
		return -1;
	pt->set = set;
	pt->sustained = rate_sustained(pt, r->bound_used_ns);
	if (r->npts < RATE_MAX_POINTS)
		r->pts[r->npts++] = *pt;
	r->rows++;
	if (ivb_counters_csv(ctr_cells, sizeof(ctr_cells), &pt->host_ctr, &pt->vcpu_ctr,
			     pt->received)) {
		snprintf(ctx->status, ctx->status_len, "the counters' cells do not fit %zu bytes",
			 sizeof(ctr_cells));
		return -1;
	}
	ivb_counters_say(ctr_say, sizeof(ctr_say), &pt->host_ctr, &pt->vcpu_ctr, pt->received);
	if (ivb_csv_row(o->csv, "%s,%s,%llu,%.1f,%u,%s,%s,%.3f,%llu,%llu,%llu,%llu,%llu,%.0f,%.0f,%s,"
			"%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f,%llu,%llu,%d,%.3f,%.3f,%.3f,%s",
			name, arrivals_names[r->arrivals], (unsigned long long)rate, pt->achieved,
			r->size, ivb_verify_name(r->verify), ctx->wait_name,
			(double)r->duration_ns / 1e9, (unsigned long long)pt->messages,
			(unsigned long long)pt->sent, (unsigned long long)pt->received,
			(unsigned long long)(pt->messages - pt->sent), (unsigned long long)pt->late,
			pt->lag_p99, pt->lag_max, pt->exact ? "exact" : "histogram", pt->min, pt->mean,
			pt->p50, pt->p90, pt->p99, pt->p999, pt->p9999, pt->max,
			(unsigned long long)pt->errors, (unsigned long long)r->bound_used_ns,
			pt->sustained, quiet && quiet->p50 > 0 ? pt->p50 / quiet->p50 : 1.0,
			quiet && quiet->p99 > 0 ? pt->p99 / quiet->p99 : 1.0,
			quiet && quiet->p999 > 0 ? pt->p999 / quiet->p999 : 1.0, ctr_cells) ||
	    ivb_csv_flush(o->csv) || write_hist(o->hist, name, rate, &o->lat)) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return -1;
	}
	if (!ctx->quiet) {
		printf("  %10llu/s %-16s achieved %12.0f/s  p50 %9.3f  p99 %9.3f  %s  p99.9 %9.3f  "
		       "max %9.3f us  late %llu  unsent %llu%s%s\n", (unsigned long long)rate, name,
		       pt->achieved, pt->p50 / 1e3, pt->p99 / 1e3, ctr_say, pt->p999 / 1e3,
		       pt->max / 1e3, (unsigned long long)pt->late,
		       (unsigned long long)(pt->messages - pt->sent),
		       pt->sustained ? "" : "  NOT SUSTAINED", pt->errors ? "  BAD ECHOES" : "");
		if (quiet && quiet->p50 > 0 && quiet->p99 > 0 && quiet->p999 > 0)
			printf("  %10s %-16s p50 %.2fx  p99 %.2fx  p99.9 %.2fx the quiet run's\n", "",
			       name, pt->p50 / quiet->p50, pt->p99 / quiet->p99, pt->p999 / quiet->p999);
		fflush(stdout);
	}
	return rc;
}

/*
 * The quiet run, for the default bound: the first rate (BASELINE_RATE at
 * most) for BASELINE_NS, or for as long as BASELINE_MESSAGES take when the
 * rate is lower (BASELINE_MAX_NS at most), without the injected stall; the
 * bound is RATE_BOUND_FACTOR times its p99.9 (see RATE_BOUND_FACTOR for
 * why). Not written as a row. 0 or -1.
 */
static int baseline(struct rate *r, struct ivb_wl_ctx *ctx, struct outputs *o)
{
	uint64_t rate = r->sweep ? r->sweep_from : r->rate, saved = r->duration_ns, ns;
	struct ivb_channel_fault stall = r->stall;
	struct point pt;
	int rc;

	if (r->bound_ns) {
		r->bound_used_ns = r->bound_ns;
		return 0;
	}
	if (rate > BASELINE_RATE)
		rate = BASELINE_RATE;
	ns = BASELINE_NS;
	if (point_messages(r, rate) < BASELINE_MESSAGES)
		ns = (uint64_t)((double)BASELINE_MESSAGES * 1e9 / (double)rate);
	if (ns > BASELINE_MAX_NS)
		ns = BASELINE_MAX_NS;
	r->duration_ns = ns;
	r->stall.stall_ns = 0;
	rc = measure(r, ctx, rate, ns, &pt, &o->lat, &o->lag);
	r->duration_ns = saved;
	r->stall = stall;
	if (rc < 0)
		return -1;
	r->quiet_rate = rate;
	r->quiet_ns = ns;
	r->quiet_p50 = pt.p50;
	r->quiet_p99 = pt.p99;
	r->quiet_p999 = pt.p999;
	r->bound_used_ns = (uint64_t)llround(RATE_BOUND_FACTOR * pt.p999);
	if (r->bound_used_ns < 1)
		r->bound_used_ns = 1;
	if (!ctx->quiet)
		printf("  quiet run at %llu/s for %.1f s: p50 %.3f  p99 %.3f  p99.9 %.3f us; "
		       "p99 bound %.3f us (%s)\n", (unsigned long long)rate, (double)ns / 1e9,
		       pt.p50 / 1e3, pt.p99 / 1e3, pt.p999 / 1e3, (double)r->bound_used_ns / 1e3,
		       RATE_BOUND_TEXT);
	return rc;
}

/* The next rate on the 1-2-5 ladder above v. */
static uint64_t ladder_next(uint64_t v)
{
	uint64_t decade = 1;

	while (decade * 10 <= v)
		decade *= 10;
	if (v < 2 * decade)
		return 2 * decade;
	if (v < 5 * decade)
		return 5 * decade;
	return 10 * decade;
}

/*
 * Set k's point pt (k 0 quiet, 1 + s set s) into its sweep history, kept in
 * the order of rates (a refinement's rates fall between the ladder's, and
 * the analysis reads the rows in that order too), and rate_rule()'s verdict
 * on them into r->verdict[k] and r->knee[k].
 */
static void judge(struct rate *r, int k, const struct point *pt)
{
	int i;

	if (r->nseen[k] < RATE_MAX_LADDER) {
		for (i = r->nseen[k]; i > 0 && r->seen[k][i - 1].offered > pt->offered; i--)
			r->seen[k][i] = r->seen[k][i - 1];
		r->seen[k][i] = *pt;
		r->nseen[k]++;
	}
	rate_rule(r->seen[k], r->nseen[k], r->bound_used_ns, r->sweep ? r->sweep_to : pt->offered,
		  &r->verdict[k]);
	r->knee[k] = r->verdict[k].knee;
}

/*
 * The rate halfway (geometrically) between lo and hi, to two significant
 * digits so that it reads as a rate (3,200,000/s, not 3,162,278/s); 0 when
 * no such rate lies strictly between them.
 */
static uint64_t rate_between(uint64_t lo, uint64_t hi)
{
	double mid = sqrt((double)lo * (double)hi), unit = 1;
	uint64_t v;

	while (mid / unit >= 100)
		unit *= 10;
	v = (uint64_t)(floor(mid / unit + 0.5) * unit);
	return v > lo && v < hi ? v : 0;
}

/*
 * The next rate to refine a knee with: halfway (rate_between()) from the
 * knee v->knee to the first rate above it in pts (sorted by rate; rate_rule()
 * found it not sustained, or the knee would be higher), put in *above; 0
 * when the sweep did not stop on two points not sustained, had no knee, or
 * no rate lies between. Pure.
 */
static uint64_t refine_rate(const struct point *pts, int n, const struct rate_verdict *v,
			    uint64_t *above)
{
	int i;

	*above = 0;
	if (v->stop != RATE_STOP_NOT_SUSTAINED || !v->knee)
		return 0;
	for (i = 0; i < n && pts[i].offered <= v->knee; i++)
		;
	if (i == n)
		return 0;
	*above = pts[i].offered;
	return rate_between(v->knee, *above);
}

/*
 * After the quiet sweep stopped on two rates not sustained: r->refine more
 * quiet points between its knee and the first rate not sustained above it,
 * each at the geometric middle of the gap left (the 1-2-5 ladder's steps
 * are 2x and 2.5x; two halvings leave 1.26x at most). The knee and the stop
 * reason are rate_rule()'s on all the points, in the order of rates. The
 * interference sets keep the ladder's resolution. Returns point()'s worst.
 */
static int refine(struct rate *r, struct ivb_wl_ctx *ctx, struct outputs *o, int *bad)
{
	struct point p;
	uint64_t above, mid;
	int i, rc = 0;

	for (i = 0; i < r->refine; i++) {
		mid = refine_rate(r->seen[0], r->nseen[0], &r->verdict[0], &above);
		if (!mid)
			break;
		if (!ctx->quiet)
			printf("  refining the knee: %llu/s, between %llu/s (sustained) and %llu/s (not)\n",
			       (unsigned long long)mid, (unsigned long long)r->verdict[0].knee,
			       (unsigned long long)above);
		rc = point(r, ctx, o, mid, -1, NULL, &p);
		if (rc < 0)
			break;
		*bad |= rc > 0;
		judge(r, 0, &p);
	}
	return rc;
}

/* Print set k's stop reason (not quiet). */
static void say_stop(const struct rate *r, const struct ivb_wl_ctx *ctx, int k)
{
	char name[64];

	if (!ctx->quiet && r->sweep)
		printf("  %10s %-16s stopped: %s\n", "", set_name(r, k - 1, name, sizeof(name)),
		       r->verdict[k].reason);
}

static enum ivb_wl_outcome rate_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct rate *r = st;
	struct outputs *o = calloc(1, sizeof(*o));
	uint64_t rate = r->sweep ? r->sweep_from : r->rate;
	int rc = 0, bad = 0, s, k;

	if (!o)
		ivb_die("out of memory");
	memset(r->knee, 0, sizeof(r->knee));
	memset(r->nseen, 0, sizeof(r->nseen));
	memset(r->verdict, 0, sizeof(r->verdict));
	r->npts = 0;
	r->rows = 0;
	choose_cpus(r, ctx);
	o->csv = ivb_csv_open(ctx->res, &rate_csv);
	o->hist = o->csv ? ivb_csv_open(ctx->res, &hist_csv) : NULL;
	if (!o->csv || !o->hist) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		if (o->csv)
			ivb_csv_close(o->csv);
		free(o);
		return IVB_WL_STOPPED;
	}
	ivb_counters_open(&r->ctr, ctx->watch_tid);
	rc = baseline(r, ctx, o);
	while (rc >= 0) {
		struct point quiet, loaded;

		rc = point(r, ctx, o, rate, -1, NULL, &quiet);
		if (rc < 0)
			break;
		bad |= rc > 0;
		judge(r, 0, &quiet);
		/* A set goes on until its own rule stops it, or the quiet one's does. */
		for (s = 0; s < r->nsets && rc >= 0; s++) {
			if (r->verdict[1 + s].stop != RATE_GO_ON)
				continue;
			rc = point(r, ctx, o, rate, s, &quiet, &loaded);
			bad |= rc > 0;
			if (rc < 0)
				break;
			judge(r, 1 + s, &loaded);
			if (r->verdict[1 + s].stop != RATE_GO_ON)
				say_stop(r, ctx, 1 + s);
		}
		if (rc < 0 || !r->sweep || r->verdict[0].stop != RATE_GO_ON)
			break;
		rate = ladder_next(rate);
		if (rate > r->sweep_to)
			rate = r->sweep_to;
	}
	if (rc >= 0 && r->sweep)
		rc = refine(r, ctx, o, &bad);
	/* Why each set still going stopped: the quiet sweep's end, or the run's. */
	for (k = 0; k <= r->nsets; k++) {
		struct rate_verdict *v = &r->verdict[k];

		if (v->stop != RATE_GO_ON && !(k == 0 && rc < 0))
			continue;
		if (rc < 0)
			snprintf(v->reason, sizeof(v->reason), "the run stopped: %s", ctx->status);
		else
			snprintf(v->reason, sizeof(v->reason), "the quiet sweep stopped at %llu/s",
				 (unsigned long long)rate);
		v->stop = RATE_STOP_OTHER;
	}
	for (k = 0; k <= r->nsets && rc >= 0; k++)
		if (k == 0 || r->verdict[k].stop == RATE_STOP_OTHER)
			say_stop(r, ctx, k);
	fflush(stdout);
	ivb_counters_close(&r->ctr);
	s = ivb_csv_close(o->csv);
	if ((ivb_csv_close(o->hist) || s) && rc >= 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	free(o);
	if (rc < 0)
		return IVB_WL_STOPPED;
	return bad ? IVB_WL_ERRORS : IVB_WL_COMPLETE;
}

static void rate_json(const void *st, struct ivb_json *j, int selected)
{
	const struct rate *r = st;
	char name[64];
	int s, k;

	if (!selected)
		return;
	ivb_json_begin(j, "rate");
	ivb_json_str(j, "mode", r->sweep ? "sweep" : "single");
	if (r->sweep) {
		ivb_json_uint(j, "sweep_from", r->sweep_from);
		ivb_json_uint(j, "sweep_to", r->sweep_to);
		ivb_json_str(j, "ladder", "1-2-5");
		ivb_json_int(j, "refine", r->refine);
	} else {
		ivb_json_uint(j, "offered_per_s", r->rate);
	}
	ivb_json_str(j, "arrivals", arrivals_names[r->arrivals]);
	if (r->arrivals == ARRIVALS_POISSON)
		ivb_json_uint(j, "seed", r->seed);
	ivb_json_uint(j, "duration_ns", r->duration_ns);
	ivb_json_str(j, "warmup", "a tenth of the messages, at least 10, not counted");
	ivb_json_uint(j, "message_bytes", r->size);
	ivb_json_uint(j, "slots", r->slots);
	ivb_json_str(j, "verify", ivb_verify_name(r->verify));
	ivb_json_str(j, "latency_from", r->arrivals == ARRIVALS_CLOSED ? "actual send time" :
		     "scheduled send time");
	ivb_json_uint(j, "exact_samples_max", RATE_EXACT_MAX);
	ivb_json_uint(j, "histogram_sub_buckets", IVB_HIST_SUB);
	ivb_json_uint(j, "histogram_max_ns", IVB_HIST_MAX_NS);
	ivb_json_num(j, "histogram_relative_error", IVB_HIST_REL_ERROR, 6);
	ivb_json_str(j, "p99_bound_source", r->bound_ns ? "given" : RATE_BOUND_TEXT);
	if (!r->bound_ns) {
		ivb_json_begin(j, "quiet_run");
		ivb_json_uint(j, "offered_per_s", r->quiet_rate);
		ivb_json_uint(j, "duration_ns", r->quiet_ns);
		ivb_json_num(j, "p50_ns", r->quiet_p50, 1);
		ivb_json_num(j, "p99_ns", r->quiet_p99, 1);
		ivb_json_num(j, "p99_9_ns", r->quiet_p999, 1);
		ivb_json_end(j);
		ivb_json_num(j, "p99_bound_factor", RATE_BOUND_FACTOR, 1);
		ivb_json_num(j, "p99_bound_of_quiet_percentile", RATE_BOUND_PCT, 1);
	}
	ivb_json_uint(j, "p99_bound_ns", r->bound_used_ns);
	ivb_json_num(j, "sustained_fraction", RATE_SUSTAINED, 2);
	if (r->sweep) {
		ivb_json_int(j, "stop_after_consecutive", RATE_STOP_AFTER);
		ivb_json_str(j, "knee_rule", "the highest rate sustained (achieved >= 99 % of offered "
			     "and p99 <= the bound) below the first 2 consecutive points not sustained "
			     "(all points when the sweep reached --sweep-to); a lone point not sustained "
			     "below the knee does not lower it (not_sustained_below_knee); 0: none");
	}
	if (r->nsets) {
		ivb_json_begin(j, "interference");
		ivb_json_int(j, "responder_cpu", r->resp_cpu);
		ivb_json_int(j, "other_cpu", r->others_cpu);
		for (k = 0; k < IVB_CORUNNER__COUNT; k++)
			if (r->commands[k][0])
				ivb_json_str(j, ivb_corunner_name((enum ivb_corunner_kind)k), r->commands[k]);
		ivb_json_end(j);
	}
	ivb_json_begin(j, "knee_per_s");
	ivb_json_uint(j, "none", r->knee[0]);
	for (s = 0; s < r->nsets; s++)
		ivb_json_uint(j, set_name(r, s, name, sizeof(name)), r->knee[1 + s]);
	ivb_json_end(j);
	if (r->sweep) {
		ivb_json_begin(j, "stop_reason");
		for (s = -1; s < r->nsets; s++)
			ivb_json_str(j, set_name(r, s, name, sizeof(name)), r->verdict[1 + s].reason);
		ivb_json_end(j);
		ivb_json_begin(j, "not_sustained_below_knee");
		for (s = -1; s < r->nsets; s++) {
			const struct rate_verdict *v = &r->verdict[1 + s];
			long long lone[RATE_MAX_LADDER];
			int i;

			for (i = 0; i < v->nlone; i++)
				lone[i] = (long long)v->lone[i];
			ivb_json_ints(j, set_name(r, s, name, sizeof(name)), lone, v->nlone);
		}
		ivb_json_end(j);
	}
	if (r->stall.stall_ns) {
		ivb_json_begin(j, "fault_injection");
		ivb_json_uint(j, "stall_after_message", r->stall.stall_after);
		ivb_json_uint(j, "stall_ns", r->stall.stall_ns);
		ivb_json_end(j);
	}
	if (r->guest_copy[0])
		ivb_json_str(j, "guest_copy_impl", r->guest_copy);
	ivb_json_int(j, "points", r->rows);
	ivb_counters_json(&r->ctr, j, RATE_COUNTED);
	ivb_json_end(j);
}

static void rate_print(const void *st, const char *results_dir)
{
	const struct rate *r = st;
	char name[64];
	int i, s;

	(void)results_dir;
	printf("\nLatency under load (%s arrivals, %u-byte messages, from the %s send; p99 bound "
	       "%.3f us", arrivals_names[r->arrivals], r->size,
	       r->arrivals == ARRIVALS_CLOSED ? "actual" : "scheduled", (double)r->bound_used_ns / 1e3);
	if (r->bound_ns)
		printf(", given):\n");
	else
		printf(", %s: %.3f us at %llu/s over %.1f s):\n", RATE_BOUND_TEXT, r->quiet_p999 / 1e3,
		       (unsigned long long)r->quiet_rate, (double)r->quiet_ns / 1e9);
	if (r->sweep) {
		for (s = -1; s < r->nsets; s++) {
			const struct rate_verdict *v = &r->verdict[1 + s];

			printf("  knee %-16s %s%llu messages/s; stopped: %s\n",
			       set_name(r, s, name, sizeof(name)),
			       r->knee[1 + s] ? "" : "below the first rate, ",
			       (unsigned long long)(r->knee[1 + s] ? r->knee[1 + s] : r->sweep_from),
			       v->reason);
			for (i = 0; i < v->nlone; i++)
				printf("  %4s %-16s %llu/s not sustained, below the knee: not counted\n", "",
				       "", (unsigned long long)v->lone[i]);
		}
		return;
	}
	for (i = 0; i < r->npts; i++) {
		const struct point *p = &r->pts[i];
		char say[64];

		ivb_counters_say(say, sizeof(say), &p->host_ctr, &p->vcpu_ctr, p->received);
		printf("  %10llu/s %-16s p50 %9.3f  p99 %9.3f  %s  p99.9 %9.3f  max %9.3f us%s\n",
		       (unsigned long long)p->offered, set_name(r, p->set, name, sizeof(name)),
		       p->p50 / 1e3, p->p99 / 1e3, say, p->p999 / 1e3, p->max / 1e3,
		       p->sustained ? "" : "  not sustained");
	}
}

static const char *const rate_json_keys[] = { "rate", NULL };

const struct ivb_workload ivb_wl_rate = {
	.name = "rate",
	.summary = "latency under load: open-loop messages at a fixed rate, timed from their "
		   "scheduled send, with co-runners",
	.command = IVB_CMD_STREAM,
	.csv = &rate_csv,
	.csv2 = &hist_csv,
	.opts = rate_opts,
	.state_size = sizeof(struct rate),
	.defaults = rate_defaults,
	.check = rate_check,
	.run = rate_run,
	.serve = ivb_channel_serve,
	.json = rate_json,
	.json_keys = rate_json_keys,
	.print = rate_print,
};
