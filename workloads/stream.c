/*
 * stream.c - sustained throughput by message size: each point streams
 * messages of one size through a channel (channel.h) for a while, in one
 * direction or both, with several in flight; the rate is counted at the
 * receiving end between two clock reads after a warm-up, and every message
 * is copied out and checked on arrival.
 *
 * Initiator: for each direction and size, open a point, move messages
 * until the duration has passed, close it, and write one row with the rate,
 * the CPU each side spent per message, the doorbells rung, and what the
 * kernel counted for the initiator's thread (and --watch-thread's) over the
 * measured interval (counters.h). The rate and the counters cover the
 * measured interval (seconds); the CPU figures cover the whole point
 * (point_seconds: opening, warm-up, interval, draining and closing), the
 * only span both sides can time, so a thread descheduled outside the
 * interval has a lower host_cpu_percent than its task clock's share.
 * Responder: ivb_channel_serve() (channel.c).
 */
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "cli.h"
#include "copy.h"
#include "counters.h"
#include "cpu.h"
#include "sizes.h"
#include "timing.h"
#include "workload.h"

#define DEFAULT_SIZES "64,4k,64k,1M"
#define DEFAULT_SLOTS "256"
#define DEFAULT_BATCH "16"
#define DEFAULT_DURATION "200ms"
#define DEFAULT_DIRECTIONS "h2g,g2h,bidir"
#define CLOCK_EVERY 256 /* messages between clock reads */

static const struct ivb_csv_schema stream_csv = {
	"stream_results.csv",
	"direction,message_bytes,slots,batch,verify,wait,messages,bytes,seconds,msgs_per_s,gbps,"
	"errors,host_cpu_us_per_msg,guest_cpu_us_per_msg,vcpu_cpu_us_per_msg,host_cpu_percent,"
	"guest_cpu_percent,doorbells_per_msg,host_doorbells,guest_doorbells,host_sleeps,guest_sleeps,"
	"point_seconds," IVB_COUNTERS_COLUMNS,
};
#define STREAM_COUNTED "each point's measured interval, after its warm-up (its messages and seconds)"

struct stream {
	struct ivb_sizes sizes;   /* message sizes */
	uint64_t slots;           /* most slots per ring */
	uint32_t batch;           /* messages per head store */
	uint64_t duration_ns;     /* measured time per point (a fifth more of warm-up first) */
	int dir[3];               /* run h2g, g2h, bidir */
	enum ivb_verify verify;
	long points, failed;      /* points run, points with bad messages */
	char guest_impl[16];      /* the responder's XXH3 build, as it said */
	char guest_copy[32];      /* the responder's copy per size class, as it said */
	struct ivb_counters ctr;  /* the initiator's thread and --watch-thread's */
};

static void set_sizes(void *st, const char *arg)
{
	ivb_sizes_parse("--sizes", arg, &((struct stream *)st)->sizes);
}

static void set_slots(void *st, const char *arg)
{
	uint64_t v = ivb_opt_count("--slots", arg, 1, 1u << 20);

	if (v & (v - 1))
		ivb_die_usage("--slots: '%s' is not a power of two", arg);
	((struct stream *)st)->slots = v;
}

static void set_batch(void *st, const char *arg)
{
	((struct stream *)st)->batch = (uint32_t)ivb_opt_count("--batch", arg, 1, 1u << 20);
}

static void set_duration(void *st, const char *arg)
{
	((struct stream *)st)->duration_ns = ivb_opt_duration("--duration", arg, 1000000000ull,
							       1000000ull, 600000000000ull,
							       "1ms..10m (e.g. 500ms)");
}

static void set_directions(void *st, const char *arg)
{
	struct stream *s = st;
	char buf[64], *tok, *save;
	int k;

	if (strlen(arg) >= sizeof(buf))
		ivb_die_usage("--direction: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	memset(s->dir, 0, sizeof(s->dir));
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < 3 && strcmp(tok, ivb_stream_kind_name((uint32_t)k)); k++)
			;
		if (k == 3)
			ivb_die_usage("--direction: '%s' is not h2g, g2h or bidir", tok);
		s->dir[k] = 1;
	}
}

static void set_verify(void *st, const char *arg)
{
	int v = ivb_verify_parse(arg);

	if (v < 0)
		ivb_die_usage("--verify: '%s' is not xxh3, sha256 or none", arg);
	((struct stream *)st)->verify = (enum ivb_verify)v;
}

static const struct ivb_wl_option stream_opts[] = {
	{ "sizes", 0, "LIST", "message sizes, or ladder: 8 B..16 MiB (default %s)", DEFAULT_SIZES, set_sizes },
	{ "slots", 0, "N", "most slots per ring, a power of two (default %s)", DEFAULT_SLOTS, set_slots },
	{ "batch", 0, "N", "messages published per index store, <= slots (default %s)", DEFAULT_BATCH, set_batch },
	{ "direction", 0, "LIST", "h2g, g2h, bidir (default %s)", DEFAULT_DIRECTIONS, set_directions },
	{ "duration", 0, "DUR", "measured time per point, after a fifth more of warm-up (default %s)", DEFAULT_DURATION, set_duration },
	{ "verify", 0, "KIND", "check of each message: xxh3, sha256, none (default %s)", "xxh3", set_verify },
	{ 0 },
};

static void stream_defaults(void *st)
{
	set_sizes(st, DEFAULT_SIZES);
	set_slots(st, DEFAULT_SLOTS);
	set_batch(st, DEFAULT_BATCH);
	set_duration(st, DEFAULT_DURATION);
	set_directions(st, DEFAULT_DIRECTIONS);
}

static void stream_check(const void *st, uint64_t capacity, const char *shm_name)
{
	const struct stream *s = st;

	ivb_sizes_check("--sizes", &s->sizes, capacity, shm_name);
	if (s->batch > s->slots)
		ivb_die_usage("--batch: %u is more than --slots %llu: a batch must fit the ring",
			      s->batch, (unsigned long long)s->slots);
}

/* What one point measured. */
struct point {
	uint64_t messages;     /* received between t0 and t1, both directions */
	uint64_t ns;           /* t1 - t0 */
	uint64_t moved;        /* every message of the point, warm-up included (for CPU per message) */
	uint64_t wall_ns;      /* the whole point */
	uint64_t host_cpu_ns, guest_cpu_ns;
	int64_t vcpu_cpu_ns;   /* the responder's vCPU thread, -1 unknown */
	struct ivb_counts host_ctr, vcpu_ctr; /* between t0 and t1 (counters.h) */
	uint64_t host_rings, guest_rings, host_sleeps, guest_sleeps;
	uint64_t errors;
};

/*
 * Received so far: ring 0 by the responder (its tail, checked: never past
 * what we published nor backwards; an impossible one breaks the ring and
 * the point), ring 1 by us.
 */
static uint64_t received(struct ivb_channel *ch, enum ivb_stream_kind k)
{
	uint64_t n = 0;

	if (k != IVB_STREAM_G2H)
		n += ivb_ring_consumed(&ch->tx);
	if (k != IVB_STREAM_H2G)
		n += ch->rx.local;
	return n;
}

/* Move messages for one point, counting ctr between t0 and t1. 0, or -1 (status set). */
static int move(const struct stream *s, struct ivb_channel *ch, enum ivb_stream_kind k,
		struct ivb_counters *ctr, struct point *pt, char *status, size_t len)
{
	uint64_t start = ivb_now_ns(), t0 = 0, c0 = 0, warm = s->duration_ns / 5, now, count = 0;
	int measuring = 0, rc = 0;

	for (;;) {
		int moved = 0, i, n = 0;

		if (k == IVB_STREAM_H2G) {
			for (i = 0; i < (int)s->batch && !(rc = ivb_channel_send(ch)); i++)
				moved++;
		} else {
			if (k == IVB_STREAM_BIDIR) {
				for (i = 0; i < (int)s->batch && (n = ivb_channel_try_send(ch)) > 0; i++)
					moved++;
				rc = n < 0 ? n : 0;
			}
			for (i = 0; !rc && i < (int)s->batch && (n = ivb_channel_poll(ch)) > 0; i++)
				moved++;
			if (!rc && n < 0)
				rc = n; /* -EPIPE: the responder finished before we asked it to */
			if (!rc && !moved)
				rc = ivb_channel_wait(ch);
		}
		if (rc && ivb_interrupted)
			rc = -EINTR; /* the stop signal is why, whatever the responder did since */
		if (rc == -EPIPE) {
			snprintf(status, len, "the responder stopped moving %u-byte messages %s at "
				 "message %llu: %s", ch->len, ivb_stream_kind_name(k),
				 (unsigned long long)(ch->tx.local + ch->rx.local),
				 ivb_channel_responder_error(ch));
			return -1;
		}
		if (!rc && (ivb_ring_broken(&ch->tx) || ivb_ring_broken(&ch->rx)))
			rc = -EPROTO; /* an impossible index seen while counting */
		if (rc) {
			snprintf(status, len, "%s moving %u-byte messages %s (message %llu)",
				 ivb_channel_error(rc), ch->len, ivb_stream_kind_name(k),
				 (unsigned long long)(ch->tx.local + ch->rx.local));
			return -1;
		}
		count += (uint64_t)moved;
		if (count < CLOCK_EVERY && moved)
			continue;
		count = 0;
		now = ivb_now_ns();
		if (!measuring && now - start >= warm) {
			measuring = 1;
			t0 = now;
			c0 = received(ch, k);
			ivb_counters_start(ctr);
		} else if (measuring && now - t0 >= s->duration_ns) {
			pt->messages = received(ch, k) - c0;
			pt->ns = now - t0;
			ivb_counters_stop(ctr, &pt->host_ctr, &pt->vcpu_ctr);
			return 0;
		}
	}
}

static int run_point(struct stream *s, struct ivb_wl_ctx *ctx, enum ivb_stream_kind k,
		     uint32_t size, struct ivb_csv *csv)
{
	struct ivb_initiator *ini = ctx->ini;
	struct ivb_waiter *w = ini->waiter;
	struct ivb_channel ch;
	struct point pt = { 0 };
	uint64_t cpu0, wall0, rings0 = w->rings, sleeps0 = w->sleeps;
	int64_t v0 = ctx->watch_tid ? ivb_thread_cpu_ns(ctx->watch_tid) : -1, v1;
	double bytes;
	char ctr_cells[512], ctr_say[64];
	int rc;

	wall0 = ivb_now_ns();
	cpu0 = (uint64_t)ivb_thread_cpu_ns(0);
	rc = ivb_channel_open(&ch, ini, k, size, s->slots, s->batch, s->verify, ctx->responder_spin_ns);
	if (rc == 1) {
		if (!ctx->quiet)
			printf("  %-5s %9u B: does not fit the shared memory; skipped\n",
			       ivb_stream_kind_name(k), size);
		return 0;
	}
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		return -1;
	}
	if (move(s, &ch, k, &s->ctr, &pt, ini->status, sizeof(ini->status))) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		ivb_channel_abort(&ch);
		return -1;
	}
	rc = ivb_channel_close(&ch);
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		return -1;
	}
	if (rc > 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		ivb_warn("%s", ini->status);
		s->failed++;
	}
	pt.errors = ch.errors + ch.result->errors;
	pt.moved = ch.tx.local + ch.rx.local;
	pt.wall_ns = ivb_now_ns() - wall0;
	pt.host_cpu_ns = (uint64_t)ivb_thread_cpu_ns(0) - cpu0;
	pt.guest_cpu_ns = ch.result->cpu_ns;
	v1 = v0 >= 0 ? ivb_thread_cpu_ns(ctx->watch_tid) : -1;
	pt.vcpu_cpu_ns = v1 >= 0 ? v1 - v0 : -1;
	pt.host_rings = w->rings - rings0;
	pt.host_sleeps = w->sleeps - sleeps0;
	pt.guest_rings = ch.result->rings;
	pt.guest_sleeps = ch.result->sleeps;
	memcpy(s->guest_impl, ch.result->verify_impl, sizeof(s->guest_impl));
	s->guest_impl[sizeof(s->guest_impl) - 1] = 0;
	memcpy(s->guest_copy, ch.result->copy_impl, sizeof(s->guest_copy));
	s->guest_copy[sizeof(s->guest_copy) - 1] = 0;
	s->points++;
	bytes = (double)pt.messages * size;
	{
		double moved = pt.moved ? (double)pt.moved : 1, secs = (double)pt.ns / 1e9;
		double vcpu_us = pt.vcpu_cpu_ns >= 0 ? (double)pt.vcpu_cpu_ns / 1e3 / moved : -1;
		char vcpu[32] = "";

		if (vcpu_us >= 0)
			snprintf(vcpu, sizeof(vcpu), "%.4f", vcpu_us);
		if (ivb_counters_csv(ctr_cells, sizeof(ctr_cells), &pt.host_ctr, &pt.vcpu_ctr,
				     pt.messages)) {
			snprintf(ctx->status, ctx->status_len, "the counters' cells do not fit %zu "
				 "bytes", sizeof(ctr_cells));
			return -1;
		}
		ivb_counters_say(ctr_say, sizeof(ctr_say), &pt.host_ctr, &pt.vcpu_ctr, pt.messages);
		if (ivb_csv_row(csv, "%s,%u,%llu,%u,%s,%s,%llu,%.0f,%.6f,%.1f,%.4f,%llu,%.4f,%.4f,%s,"
				"%.1f,%.1f,%.5f,%llu,%llu,%llu,%llu,%.6f,%s",
				ivb_stream_kind_name(k), size, (unsigned long long)(ch.tx.mask + 1),
				s->batch, ivb_verify_name(s->verify), ctx->wait_name,
				(unsigned long long)pt.messages, bytes, secs, (double)pt.messages / secs,
				bytes / (double)pt.ns, (unsigned long long)pt.errors,
				(double)pt.host_cpu_ns / 1e3 / moved, (double)pt.guest_cpu_ns / 1e3 / moved,
				vcpu, 100.0 * (double)pt.host_cpu_ns / (double)pt.wall_ns,
				100.0 * (double)pt.guest_cpu_ns / (double)pt.wall_ns,
				(double)(pt.host_rings + pt.guest_rings) / moved,
				(unsigned long long)pt.host_rings, (unsigned long long)pt.guest_rings,
				(unsigned long long)pt.host_sleeps, (unsigned long long)pt.guest_sleeps,
				(double)pt.wall_ns / 1e9, ctr_cells)) {
			snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
			return -1;
		}
		if (!ctx->quiet)
			printf("  %-5s %9u B  %12.0f msg/s  %8.3f GB/s  %6.2f doorbells/msg  "
			       "host %.3f us/msg  guest %.3f us/msg  %s%s\n", ivb_stream_kind_name(k),
			       size, (double)pt.messages / secs, bytes / (double)pt.ns,
			       (double)(pt.host_rings + pt.guest_rings) / moved,
			       (double)pt.host_cpu_ns / 1e3 / moved, (double)pt.guest_cpu_ns / 1e3 / moved,
			       ctr_say, pt.errors ? "  BAD MESSAGES" : "");
	}
	return 0;
}

static enum ivb_wl_outcome stream_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct stream *s = st;
	struct ivb_csv *csv = ivb_csv_open(ctx->res, &stream_csv);
	int k, i, rc = 0;

	if (!csv) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return IVB_WL_STOPPED;
	}
	ivb_counters_open(&s->ctr, ctx->watch_tid);
	for (k = 0; k < 3 && rc == 0; k++) {
		if (!s->dir[k])
			continue;
		for (i = 0; i < s->sizes.n && rc == 0; i++)
			rc = run_point(s, ctx, (enum ivb_stream_kind)k, s->sizes.v[i], csv);
		if (rc == 0 && ivb_csv_flush(csv)) {
			snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
			rc = -1;
		}
	}
	ivb_counters_close(&s->ctr);
	if (ivb_csv_close(csv) && rc == 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	if (rc)
		return IVB_WL_STOPPED;
	return s->failed ? IVB_WL_ERRORS : IVB_WL_COMPLETE;
}

static void stream_json(const void *st, struct ivb_json *j, int selected)
{
	const struct stream *s = st;
	long long sizes[IVB_MAX_SIZES];
	const char *dirs[3];
	int i, n = 0;

	if (!selected)
		return;
	for (i = 0; i < s->sizes.n; i++)
		sizes[i] = s->sizes.v[i];
	for (i = 0; i < 3; i++)
		if (s->dir[i])
			dirs[n++] = ivb_stream_kind_name((uint32_t)i);
	ivb_json_begin(j, "stream");
	ivb_json_ints(j, "sizes", sizes, s->sizes.n);
	ivb_json_strs(j, "directions", dirs, n);
	ivb_json_uint(j, "slots", s->slots);
	ivb_json_uint(j, "batch", s->batch);
	ivb_json_uint(j, "duration_ns", s->duration_ns);
	ivb_json_uint(j, "warmup_ns", s->duration_ns / 5);
	ivb_json_str(j, "verify", ivb_verify_name(s->verify));
	if (s->verify == IVB_VERIFY_XXH3) {
		ivb_json_str(j, "host_verify_impl", ivb_verify_impl());
		ivb_json_str(j, "guest_verify_impl", s->guest_impl);
	}
	ivb_json_str(j, "host_copy_impl", ivb_copy_impl());
	ivb_json_str(j, "guest_copy_impl", s->guest_copy);
	ivb_json_int(j, "points", s->points);
	ivb_json_int(j, "points_with_bad_messages", s->failed);
	ivb_counters_json(&s->ctr, j, STREAM_COUNTED);
	ivb_json_end(j);
}

static const char *const stream_json_keys[] = { "stream", NULL };

const struct ivb_workload ivb_wl_stream = {
	.name = "stream",
	.summary = "sustained throughput by message size through SPSC rings, each message checked",
	.command = IVB_CMD_STREAM,
	.csv = &stream_csv,
	.opts = stream_opts,
	.state_size = sizeof(struct stream),
	.defaults = stream_defaults,
	.check = stream_check,
	.run = stream_run,
	.serve = ivb_channel_serve,
	.json = stream_json,
	.json_keys = stream_json_keys,
};
