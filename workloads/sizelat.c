/*
 * sizelat.c - round-trip latency by message size (osu_latency's
 * semantics): a message of S bytes goes out on the channel's first ring,
 * the responder copies it out, checks it and sends it back on the second,
 * and the initiator copies the echo out and checks it; the round trip is
 * timed from before the copy in to after the check of the echo. Every
 * sample is kept; percentiles are exact.
 *
 * Initiator: per size, a warm-up then N round trips (N/10, at least 10,
 * above 64 KiB, where one round trip copies megabytes), one row per size in
 * size_latency_results.csv.
 * Responder: ivb_channel_serve() in echo mode (channel.c).
 */
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "cli.h"
#include "sizes.h"
#include "stats.h"
#include "timing.h"
#include "workload.h"

#define DEFAULT_SIZES "8,64,512,4k,32k,256k,1M"
#define DEFAULT_ITERATIONS "1000"
#define LARGE_MESSAGE (64u << 10)

static const struct ivb_csv_schema sizelat_csv = {
	"size_latency_results.csv",
	"message_bytes,verify,wait,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,errors",
};

struct sizelat {
	struct ivb_sizes sizes;  /* message sizes */
	long iterations;         /* round trips per size (a tenth above 64 KiB) */
	enum ivb_verify verify;
	long rows;               /* sizes measured */
};

static void set_sizes(void *st, const char *arg)
{
	ivb_sizes_parse("--lat-sizes", arg, &((struct sizelat *)st)->sizes);
}

static void set_iterations(void *st, const char *arg)
{
	((struct sizelat *)st)->iterations = (long)ivb_opt_count("--lat-iterations", arg, 10, 100000000);
}

static void set_verify(void *st, const char *arg)
{
	int v = ivb_verify_parse(arg);

	if (v < 0)
		ivb_die_usage("--lat-verify: '%s' is not xxh3, sha256 or none", arg);
	((struct sizelat *)st)->verify = (enum ivb_verify)v;
}

static const struct ivb_wl_option sizelat_opts[] = {
	{ "lat-sizes", 0, "LIST", "message sizes, or ladder (default %s)", DEFAULT_SIZES, set_sizes },
	{ "lat-iterations", 0, "N", "round trips per size, a tenth above 64 KiB (default %s)", DEFAULT_ITERATIONS, set_iterations },
	{ "lat-verify", 0, "KIND", "check of each message: xxh3, sha256, none (default %s)", "xxh3", set_verify },
	{ 0 },
};

static void sizelat_defaults(void *st)
{
	set_sizes(st, DEFAULT_SIZES);
	set_iterations(st, DEFAULT_ITERATIONS);
}

static void sizelat_check(const void *st, uint64_t capacity, const char *shm_name)
{
	ivb_sizes_check("--lat-sizes", &((const struct sizelat *)st)->sizes, capacity, shm_name);
}

/* One size: n round trips after a warm-up. 0, or -1 (ctx->status set). */
static int run_size(struct sizelat *sl, struct ivb_wl_ctx *ctx, uint32_t size, struct ivb_csv *csv)
{
	struct ivb_initiator *ini = ctx->ini;
	long n = size > LARGE_MESSAGE ? sl->iterations / 10 : sl->iterations, warm, i;
	struct ivb_channel ch;
	struct ivb_summary s;
	uint64_t *v;
	size_t nv = 0;
	int rc, got;

	if (n < 10)
		n = 10;
	warm = n / 10 > 10 ? n / 10 : 10;
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		ivb_die("out of memory for %ld samples", n);
	rc = ivb_channel_open(&ch, ini, IVB_STREAM_ECHO, size, 16, 1, sl->verify, ctx->responder_spin_ns);
	if (rc == 1) {
		if (!ctx->quiet)
			printf("  %9u B: does not fit the shared memory; skipped\n", size);
		free(v);
		return 0;
	}
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		free(v);
		return -1;
	}
	/* A round trip counts only once its echo, with the right sequence
	 * number and check, has been read: an end marker or an index from
	 * the other side is never taken for one, and a bad echo is counted
	 * as an error, not timed. */
	for (i = 0, got = 0; rc == 0 && i < warm + n; i++) {
		uint64_t t0 = ivb_now_ns();

		rc = ivb_channel_send(&ch);
		while (rc == 0 && (got = ivb_channel_poll(&ch)) == 0)
			rc = ivb_channel_wait(&ch);
		if (rc == 0 && got < 0)
			rc = got;
		if (rc == 0 && got == 1) {
			uint64_t t = ivb_now_ns() - t0;

			/* The echo must be the message sent, byte for byte: the
			 * responder's check covers only what it sends back. Compared
			 * after the clock read, so the figure is the channel's. */
			if (memcmp(ch.dst, ch.src, size)) {
				if (ch.errors++ == 0)
					ch.first_bad_seq = ch.rx.local - 1;
			} else if (i >= warm) {
				v[nv++] = t;
			}
		}
	}
	if (rc) {
		snprintf(ctx->status, ctx->status_len, "%s during the round trip of a %u-byte message "
			 "(%ld of %ld)%s%s", ivb_channel_error(rc), size, i, warm + n,
			 rc == -EPIPE ? ": " : "", rc == -EPIPE ? ivb_channel_responder_error(&ch) : "");
		ivb_channel_abort(&ch);
		free(v);
		return -1;
	}
	rc = ivb_channel_close(&ch);
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		free(v);
		return -1;
	}
	if (nv == 0) { /* every echo was bad: nothing to time */
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		free(v);
		return -1;
	}
	ivb_summarize(v, nv, &s);
	free(v);
	sl->rows++;
	if (ivb_csv_row(csv, "%u,%s,%s,%zu,%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f,%llu", size,
			ivb_verify_name(sl->verify), ctx->wait_name, s.count, s.min, s.mean, s.p50, s.p90,
			s.p99, s.p999, s.max,
			(unsigned long long)(ch.errors + ch.result->errors))) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return -1;
	}
	if (!ctx->quiet)
		printf("  %9u B  round trip p50 %10.3f  p99 %10.3f  p99.9 %10.3f  max %10.3f us\n", size,
		       s.p50 / 1e3, s.p99 / 1e3, s.p999 / 1e3, s.max / 1e3);
	if (rc > 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		ivb_warn("%s", ini->status);
		return 1;
	}
	return 0;
}

static enum ivb_wl_outcome sizelat_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct sizelat *sl = st;
	struct ivb_csv *csv = ivb_csv_open(ctx->res, &sizelat_csv);
	int i, rc = 0, bad = 0;

	if (!csv) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return IVB_WL_STOPPED;
	}
	for (i = 0; i < sl->sizes.n && rc >= 0; i++) {
		rc = run_size(sl, ctx, sl->sizes.v[i], csv);
		bad |= rc > 0;
	}
	if (ivb_csv_close(csv) && rc >= 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	if (rc < 0)
		return IVB_WL_STOPPED;
	return bad ? IVB_WL_ERRORS : IVB_WL_COMPLETE;
}

static void sizelat_json(const void *st, struct ivb_json *j, int selected)
{
	const struct sizelat *sl = st;
	long long sizes[IVB_MAX_SIZES];
	int i;

	if (!selected)
		return;
	for (i = 0; i < sl->sizes.n; i++)
		sizes[i] = sl->sizes.v[i];
	ivb_json_begin(j, "size_latency");
	ivb_json_ints(j, "sizes", sizes, sl->sizes.n);
	ivb_json_int(j, "iterations", sl->iterations);
	ivb_json_int(j, "iterations_above_64k", sl->iterations / 10 > 10 ? sl->iterations / 10 : 10);
	ivb_json_str(j, "verify", ivb_verify_name(sl->verify));
	ivb_json_int(j, "sizes_measured", sl->rows);
	ivb_json_end(j);
}

static const char *const sizelat_json_keys[] = { "size_latency", NULL };

const struct ivb_workload ivb_wl_sizelat = {
	.name = "sizelat",
	.summary = "round-trip latency by message size, copied in, echoed and checked both ways",
	.command = IVB_CMD_STREAM,
	.csv = &sizelat_csv,
	.opts = sizelat_opts,
	.state_size = sizeof(struct sizelat),
	.defaults = sizelat_defaults,
	.check = sizelat_check,
	.run = sizelat_run,
	.serve = ivb_channel_serve,
	.json = sizelat_json,
	.json_keys = sizelat_json_keys,
};
