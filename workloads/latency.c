/*
 * latency.c - the round trip of an empty message.
 *
 * Initiator: after a warm-up, N round trips of a PING; for each, the time
 * from the post to the first sight of RECEIVED and to PROCESSED. Every
 * sample is written to latency_results.csv as it is measured (in batches,
 * between round trips) and kept for exact percentiles.
 * Responder: nothing to do beyond the acknowledgements the session gives.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stats.h"
#include "timing.h"
#include "workload.h"

#define DEFAULT_ITERATIONS "1000"
#define DEFAULT_WARMUP "100"
#define GAP_SPIN_LIMIT_NS 1000000ull /* gaps below 1 ms are spun: sleeping adds its own wake-up */

static const struct ivb_csv_schema latency_csv = {
	"latency_results.csv", "iteration,latency_ns,latency_us,received_ns,received_us",
};

struct latency {
	long iterations;         /* measured round trips */
	long warmup;             /* unmeasured round trips before them */
	uint64_t gap_ns;         /* pause between messages */
	struct ivb_summary lat;  /* post -> PROCESSED, once measured */
	struct ivb_summary rcv;  /* post -> RECEIVED */
};

static void set_iterations(void *st, const char *arg)
{
	((struct latency *)st)->iterations = (long)ivb_opt_count("--iterations", arg, 1, 100000000);
}

static void set_warmup(void *st, const char *arg)
{
	((struct latency *)st)->warmup = (long)ivb_opt_count("--warmup", arg, 0, 100000000);
}

static void set_gap(void *st, const char *arg)
{
	((struct latency *)st)->gap_ns = ivb_opt_duration("--gap", arg, 1, 0, 60000000000ull,
							  "0..60s (e.g. 10us)");
}

static const struct ivb_wl_option latency_opts[] = {
	{ "iterations", 'n', "N", "measured latency round trips (default %s)", DEFAULT_ITERATIONS, set_iterations },
	{ "warmup", 'w', "N", "unmeasured round trips first (default %s)", DEFAULT_WARMUP, set_warmup },
	{ "gap", 'g', "DUR", "pause between latency messages (default %s)", "0", set_gap },
	{ 0 },
};

static void latency_defaults(void *st)
{
	struct latency *l = st;

	set_iterations(l, DEFAULT_ITERATIONS);
	set_warmup(l, DEFAULT_WARMUP);
}

static void pause_gap(uint64_t ns)
{
	uint64_t end;

	if (!ns)
		return;
	if (ns >= GAP_SPIN_LIMIT_NS) {
		ivb_sleep_ns(ns);
		return;
	}
	end = ivb_now_ns() + ns;
	while (ivb_now_ns() < end)
		;
}

static enum ivb_wl_outcome latency_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct latency *l = st;
	struct ivb_initiator *ini = ctx->ini;
	long total = l->warmup + l->iterations, i, n = 0;
	uint64_t *done = calloc((size_t)l->iterations, sizeof(*done));
	uint64_t *rcvd = calloc((size_t)l->iterations, sizeof(*rcvd));
	struct ivb_csv *csv = ivb_csv_open(ctx->res, &latency_csv);
	enum ivb_wl_outcome out = IVB_WL_COMPLETE;
	struct ivb_ack r;

	if (!done || !rcvd)
		ivb_die("out of memory for %ld samples", l->iterations);
	if (!csv) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		out = IVB_WL_STOPPED;
		total = 0;
	}
	ini->hdr->payload_size = 0;
	for (i = 0; i < total; i++) {
		uint64_t t0 = ivb_now_ns(), seq = ivb_post(ini, IVB_CMD_PING);

		if (ivb_wait_ack(ini, seq, t0, "latency", &r)) {
			snprintf(ctx->status, ctx->status_len, "%s", ini->status);
			out = IVB_WL_STOPPED;
			break;
		}
		if (r.state == IVB_STATE_ERROR) {
			snprintf(ctx->status, ctx->status_len, "guest answered ping %llu with ERROR %s",
				 (unsigned long long)seq, ivb_error_name(r.error));
			out = IVB_WL_STOPPED;
			break;
		}
		if (i >= l->warmup) {
			done[n] = r.done_ns;
			rcvd[n] = r.received_ns;
			if (ivb_csv_row(csv, "%ld,%llu,%.3f,%llu,%.3f", n, (unsigned long long)r.done_ns,
					(double)r.done_ns / 1e3, (unsigned long long)r.received_ns,
					(double)r.received_ns / 1e3)) {
				snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
				out = IVB_WL_STOPPED;
				break;
			}
			n++;
		}
		pause_gap(l->gap_ns);
	}
	if (csv && ivb_csv_close(csv) && out == IVB_WL_COMPLETE) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		out = IVB_WL_STOPPED;
	}
	ivb_summarize(done, (size_t)n, &l->lat);
	ivb_summarize(rcvd, (size_t)n, &l->rcv);
	free(done);
	free(rcvd);
	return out;
}

static void latency_json(const void *st, struct ivb_json *j, int selected)
{
	const struct latency *l = st;

	ivb_json_int(j, "latency_iterations", selected ? l->iterations : 0);
	ivb_json_int(j, "warmup", l->warmup);
	ivb_json_uint(j, "gap_ns", l->gap_ns);
	if (l->lat.count)
		ivb_json_summary(j, "latency", &l->lat);
	if (l->rcv.count)
		ivb_json_summary(j, "received", &l->rcv);
}

static void print_row(const char *name, const struct ivb_summary *s)
{
	printf("  %-10s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", name, s->min / 1e3,
	       s->p50 / 1e3, s->p90 / 1e3, s->p99 / 1e3, s->p999 / 1e3, s->max / 1e3, s->mean / 1e3);
}

static void latency_print(const void *st, const char *results_dir)
{
	const struct latency *l = st;

	(void)results_dir;
	if (!l->lat.count)
		return;
	printf("\nLatency: round trip post -> PROCESSED, %zu samples (warm-up %ld excluded)\n",
	       l->lat.count, l->warmup);
	printf("  %-10s %10s %10s %10s %10s %10s %10s %10s\n", "", "min", "p50", "p90", "p99",
	       "p99.9", "max", "mean");
	print_row("RTT us", &l->lat);
	print_row("RECEIVED", &l->rcv);
}

static const char *const latency_json_keys[] = {
	"latency_iterations", "warmup", "gap_ns", "latency", "received", NULL,
};

const struct ivb_workload ivb_wl_latency = {
	.name = "latency",
	.summary = "round trips of an empty message, post -> RECEIVED and -> PROCESSED",
	.by_default = 1,
	.command = IVB_CMD_PING,
	.csv = &latency_csv,
	.opts = latency_opts,
	.state_size = sizeof(struct latency),
	.defaults = latency_defaults,
	.run = latency_run,
	.serve = NULL, /* a PING needs no work beyond the acknowledgements */
	.json = latency_json,
	.json_keys = latency_json_keys,
	.print = latency_print,
};
