/*
 * limits.c - what each side's CPU can do at the stream's message sizes,
 * measured in the same run: the bound a stream figure is a fraction of.
 * Under TCG a guest copies and hashes ten times slower than the host, and
 * the stream's GB/s in the guest says nothing about why until its own copy
 * speed stands beside it.
 *
 * Three loops, each over one buffer of the message's size, for a fixed
 * time after a fifth more of warm-up, counted between two clock reads of
 * the side that runs them:
 *   copy      ivb_copy() (copy.h: the routine the stream's receiver copies a
 *             message out with) from one private buffer to another;
 *   copy_shm  the same out of the shared memory (the payload area after the
 *             set-up page) into a private buffer: what the stream's receiver
 *             really reads, through the BAR in a guest;
 *   xxh3      the XXH3-64 the stream verifies each message with (verify.h),
 *             over a private buffer.
 *
 * Initiator: per size, random bytes into the shared memory; per loop, the
 * loop run here (its "initiator" row), then a LIMITS message asking the
 * responder to run it (its "responder" row). The responder's figures are
 * claims: a row is written only when the XXH3 of the buffer its loop left
 * (the copy's destination, the hashed buffer) matches the bytes posted, and
 * its measured time fits the time the point took here.
 * Responder: copy the set-up once, check it against its own mapping, run
 * the loop with its own clock, and write the counts after the set-up. It
 * stops early, unanswered, when the session changes (a new initiator wins
 * over a dead one) or a stop signal arrives, and never runs longer than its
 * own silence limit, whatever the set-up asks.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cpu.h"
#include "copy.h"
#include "digest.h"
#include "sizes.h"
#include "timing.h"
#include "verify.h"
#include "workload.h"

#define DEFAULT_SIZES "64,4k,64k,1M"
#define DEFAULT_DURATION "200ms"
#define DEFAULT_LOOPS "copy,copy_shm,xxh3"
#define LIMITS_SETUP_BYTES 4096u  /* set-up and result, before the source buffer */
#define LIMITS_SRC_OFFSET (IVB_PAYLOAD_OFFSET + LIMITS_SETUP_BYTES) /* from the mapping's start */
#define CLOCK_BYTES (64u << 10)   /* bytes a loop moves between clock reads */
#define CLOCK_SLACK_NS 50000000ull /* responder's time may exceed ours by this (two clocks) */
#define MAX_BYTES_PER_NS 1000.0   /* 1 TB/s: more than any core copies or hashes, so a forged count */

enum limits_loop {
	LOOP_COPY = 0,     /* private -> private */
	LOOP_COPY_SHM = 1, /* shared memory -> private */
	LOOP_XXH3 = 2,     /* hash a private buffer */
	LOOP__COUNT
};

static const char *const loop_names[LOOP__COUNT] = { "copy", "copy_shm", "xxh3" };

/* Set-up of one point, at the payload offset; initiator-written. */
struct limits_params {
	uint32_t loop;        /* enum limits_loop */
	uint32_t len;         /* bytes of the buffer */
	uint64_t warmup_ns;   /* run this long before counting */
	uint64_t duration_ns; /* then count this long */
	uint8_t pad[40];
};

/* What the responder measured, the line after; responder-written. */
struct limits_result {
	uint64_t iterations; /* loops counted */
	uint64_t ns;         /* between the two clock reads that counted them */
	uint64_t cpu_ns;     /* its thread's CPU time over the same interval */
	uint64_t proof;      /* XXH3-64 (seed 0) of the buffer the loop left */
	char impl[32];       /* its copy per size class or XXH3 build, NUL-terminated */
};

_Static_assert(sizeof(struct limits_params) == IVB_CACHE_LINE, "params are one line");
_Static_assert(sizeof(struct limits_result) == IVB_CACHE_LINE, "result is one line");
_Static_assert(offsetof(struct limits_params, warmup_ns) == 8, "warmup_ns");
_Static_assert(offsetof(struct limits_params, duration_ns) == 16, "duration_ns");
_Static_assert(offsetof(struct limits_result, proof) == 24, "proof");
_Static_assert(offsetof(struct limits_result, impl) == 32, "impl");

static const struct ivb_csv_schema limits_csv = {
	"limits_results.csv",
	"message_bytes,loop,side,iterations,bytes,seconds,bytes_per_s,gbps,cpu_percent",
};

struct limits {
	struct ivb_sizes sizes;     /* buffer sizes */
	uint64_t duration_ns;       /* counted time per loop and side (a fifth more of warm-up first) */
	int loop[LOOP__COUNT];      /* run this loop */
	long points, failed;        /* loops measured on both sides, loops whose figures were refused */
	long skipped;               /* ladder sizes that do not fit the shared memory */
	char responder_copy[32];    /* the responder's copy per size class, as it said */
	char responder_xxh3[32];    /* its XXH3 build, as it said */
};

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void set_sizes(void *st, const char *arg)
{
	ivb_sizes_parse("--limit-sizes", arg, &((struct limits *)st)->sizes);
}

static void set_duration(void *st, const char *arg)
{
	((struct limits *)st)->duration_ns = ivb_opt_duration("--limit-duration", arg, 1000000000ull,
							      1000000ull, 60000000000ull,
							      "1ms..1m (e.g. 200ms)");
}

static void set_loops(void *st, const char *arg)
{
	struct limits *l = st;
	char buf[64], *tok, *save;
	int k;

	if (strlen(arg) >= sizeof(buf))
		ivb_die_usage("--limit-loops: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	memset(l->loop, 0, sizeof(l->loop));
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < LOOP__COUNT && strcmp(tok, loop_names[k]); k++)
			;
		if (k == LOOP__COUNT)
			ivb_die_usage("--limit-loops: '%s' is not copy, copy_shm or xxh3", tok);
		l->loop[k] = 1;
	}
	for (k = 0; k < LOOP__COUNT && !l->loop[k]; k++)
		;
	if (k == LOOP__COUNT)
		ivb_die_usage("--limit-loops: empty list (copy, copy_shm, xxh3)");
}

static const struct ivb_wl_option limits_opts[] = {
	{ "limit-sizes", 0, "LIST", "buffer sizes, or ladder (default %s)", DEFAULT_SIZES, set_sizes },
	{ "limit-duration", 0, "DUR", "counted time per loop and side, after a fifth more of warm-up (default %s)", DEFAULT_DURATION, set_duration },
	{ "limit-loops", 0, "LIST", "copy, copy_shm (out of the shared memory), xxh3 (default %s)", DEFAULT_LOOPS, set_loops },
	{ 0 },
};

static void limits_defaults(void *st)
{
	set_sizes(st, DEFAULT_SIZES);
	set_duration(st, DEFAULT_DURATION);
	set_loops(st, DEFAULT_LOOPS);
}

/* Bytes of source buffer a mapping of map_size bytes holds after the set-up (0: none). */
static uint64_t room(uint64_t map_size)
{
	return map_size > LIMITS_SRC_OFFSET ? map_size - LIMITS_SRC_OFFSET : 0;
}

static void limits_check(const void *st, uint64_t capacity, const char *shm_name)
{
	const struct limits *l = st;
	uint64_t most = room(capacity + IVB_PAYLOAD_OFFSET);
	int i;

	if (l->sizes.ladder) /* the sweep is ours: what does not fit is skipped and said so */
		return;
	for (i = 0; i < l->sizes.n; i++)
		if (l->sizes.v[i] > most)
			ivb_die_usage("--limit-sizes: a %u-byte buffer cannot fit %s after the set-up "
				      "page (at most %llu bytes there); use a larger IVSHMEM_SHM_SIZE",
				      l->sizes.v[i], shm_name, (unsigned long long)most);
}

/* ------------------------------------------------------------------ */
/* The loops, for both halves                                          */
/* ------------------------------------------------------------------ */

/* XXH3-64, seed 0, of buf: what each side proves its buffer held. */
static uint64_t proof_of(const void *buf, size_t len)
{
	uint8_t h[IVB_VERIFY_MAX_LEN];
	uint64_t v;

	ivb_verify_compute(IVB_VERIFY_XXH3, 0, buf, len, h); /* XXH3 cannot fail */
	memcpy(&v, h, sizeof(v));
	return v;
}

/* What one loop measured. */
struct measured {
	uint64_t iterations; /* between t0 and t1 */
	uint64_t ns;         /* t1 - t0 */
	uint64_t cpu_ns;     /* this thread's CPU time over the same interval */
};

/* When to give a loop up: a stop signal, or (responder) a session not ours any more. */
struct stop_when {
	const uint64_t *session_id; /* NULL: no session to watch */
	uint64_t session;
};

static int should_stop(const struct stop_when *w)
{
	return ivb_interrupted || (w->session_id && ivb_load_acquire(w->session_id) != w->session);
}

/*
 * Run loop over len bytes (copy src to dst, or hash src) for warm_ns, then
 * count iterations for dur_ns, reading the clock once every CLOCK_BYTES
 * bytes (every iteration above that). Returns 0, or -1 when told to stop.
 */
static int measure(enum limits_loop loop, uint8_t *dst, const uint8_t *src, uint32_t len,
		   uint64_t warm_ns, uint64_t dur_ns, const struct stop_when *w, struct measured *out)
{
	uint64_t per = len >= CLOCK_BYTES ? 1 : CLOCK_BYTES / len;
	uint64_t start = ivb_now_ns(), t0 = 0, c0 = 0, n = 0, n0 = 0, sink = 0;
	uint8_t h[IVB_VERIFY_MAX_LEN];
	int measuring = 0;

	for (;;) {
		uint64_t i, now;

		if (loop == LOOP_XXH3) {
			for (i = 0; i < per; i++) {
				/* seeded with the count, as the stream seeds with the sequence number */
				ivb_verify_compute(IVB_VERIFY_XXH3, n + i, src, len, h);
				sink += h[0];
			}
		} else {
			for (i = 0; i < per; i++)
				ivb_copy(dst, src, len);
		}
		n += per;
		now = ivb_now_ns();
		if (should_stop(w))
			return -1;
		if (!measuring && now - start >= warm_ns) {
			measuring = 1;
			t0 = now;
			n0 = n;
			c0 = (uint64_t)ivb_thread_cpu_ns(0);
		} else if (measuring && now - t0 >= dur_ns) {
			out->iterations = n - n0;
			out->ns = now - t0;
			out->cpu_ns = (uint64_t)ivb_thread_cpu_ns(0) - c0;
			__asm__ volatile("" : : "r"(sink)); /* the hashes are used */
			return 0;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Initiator                                                           */
/* ------------------------------------------------------------------ */

static int write_row(struct ivb_csv *csv, uint32_t size, enum limits_loop loop, const char *side,
		     const struct measured *m)
{
	double secs = (double)m->ns / 1e9, bytes = (double)m->iterations * size;

	return ivb_csv_row(csv, "%u,%s,%s,%llu,%.0f,%.6f,%.1f,%.4f,%.1f", size, loop_names[loop], side,
			   (unsigned long long)m->iterations, bytes, secs, bytes / secs,
			   bytes / (double)m->ns, 100.0 * (double)m->cpu_ns / (double)m->ns);
}

/*
 * Ask the responder to run loop over size bytes (the source is in the
 * shared memory already, whose XXH3 is want). 0 with *m filled, 1 when its
 * figures cannot be taken (ctx->status says why; nothing is recorded), -1
 * when the run must stop (ctx->status set).
 */
static int ask_responder(struct limits *l, struct ivb_wl_ctx *ctx, uint32_t size,
			 enum limits_loop loop, uint64_t want, struct measured *m)
{
	struct ivb_initiator *ini = ctx->ini;
	struct limits_params *p = (struct limits_params *)ini->payload;
	struct limits_result *shared = (struct limits_result *)(ini->payload + sizeof(*p));
	struct limits_result res;
	uint64_t warm = l->duration_ns / 5, t0, seq, took;
	struct ivb_ack a;

	memset(p, 0, sizeof(*p));
	memset(shared, 0, sizeof(*shared));
	p->loop = loop;
	p->len = size;
	p->warmup_ns = warm;
	p->duration_ns = l->duration_ns;
	ini->hdr->payload_size = LIMITS_SETUP_BYTES;
	t0 = ivb_now_ns();
	seq = ivb_post(ini, IVB_CMD_LIMITS);
	/* The deadline: the loop's own time, and then the usual timeout. */
	if (ivb_wait_ack(ini, seq, t0 + warm + l->duration_ns, "limits", &a)) {
		snprintf(ctx->status, ctx->status_len, "%s (the responder's %s loop over %u bytes)",
			 ini->status, loop_names[loop], size);
		return -1;
	}
	took = ivb_now_ns() - t0;
	if (a.state != IVB_STATE_PROCESSED) {
		snprintf(ctx->status, ctx->status_len, "the responder answered the %s loop over %u "
			 "bytes with ERROR %s%s", loop_names[loop], size, ivb_error_name(a.error),
			 a.error == IVB_ERR_BAD_COMMAND ? " (a guest_reader older than the limits "
			 "workload? ./setup.sh rebuilds the guest's initramfs)" : "");
		return -1;
	}
	memcpy(&res, shared, sizeof(res)); /* once: the other side may change it under us */
	res.impl[sizeof(res.impl) - 1] = 0;
	snprintf(loop == LOOP_XXH3 ? l->responder_xxh3 : l->responder_copy,
		 sizeof(l->responder_copy), "%s", res.impl);
	if (res.proof != want) {
		snprintf(ctx->status, ctx->status_len, "the responder's %s loop over %u bytes left a "
			 "buffer whose XXH3 is %016llx, not the posted bytes' %016llx: its figures are "
			 "not recorded", loop_names[loop], size, (unsigned long long)res.proof,
			 (unsigned long long)want);
		return 1;
	}
	if (!res.iterations || !res.ns || res.ns > took + CLOCK_SLACK_NS ||
	    (double)res.iterations * size > (double)res.ns * MAX_BYTES_PER_NS) {
		snprintf(ctx->status, ctx->status_len, "the responder claims %llu iterations of its %s "
			 "loop over %u bytes in %.6f s, in a point that took %.6f s here: not recorded",
			 (unsigned long long)res.iterations, loop_names[loop], size,
			 (double)res.ns / 1e9, (double)took / 1e9);
		return 1;
	}
	m->iterations = res.iterations;
	m->ns = res.ns;
	m->cpu_ns = res.cpu_ns <= res.ns + CLOCK_SLACK_NS ? res.cpu_ns : res.ns;
	return 0;
}

/* One size, every loop on both sides. 0, 1 (a loop's figures refused), or -1 (stop; status set). */
static int run_size(struct limits *l, struct ivb_wl_ctx *ctx, uint32_t size, struct ivb_csv *csv)
{
	struct ivb_initiator *ini = ctx->ini;
	uint8_t *shm_src = (uint8_t *)ini->hdr + LIMITS_SRC_OFFSET;
	uint8_t *priv = malloc(size), *dst = malloc(size);
	struct stop_when here = { NULL, 0 };
	uint64_t want;
	int k, rc = 0, bad = 0;

	if (!priv || !dst || ivb_random(priv, size)) {
		snprintf(ctx->status, ctx->status_len, "out of memory or OpenSSL failed for %u-byte "
			 "buffers", size);
		free(priv);
		free(dst);
		return -1;
	}
	memcpy(shm_src, priv, size);
	want = proof_of(priv, size);
	for (k = 0; k < LOOP__COUNT && rc >= 0; k++) {
		struct measured mine = { 0 }, theirs = { 0 };
		const uint8_t *src = k == LOOP_COPY_SHM ? shm_src : priv;

		if (!l->loop[k])
			continue;
		if (measure((enum limits_loop)k, dst, src, size, l->duration_ns / 5, l->duration_ns,
			    &here, &mine)) {
			snprintf(ctx->status, ctx->status_len, "interrupted during the %s loop over %u "
				 "bytes", loop_names[k], size);
			rc = -1;
			break;
		}
		if (proof_of(k == LOOP_XXH3 ? priv : dst, size) != want) {
			snprintf(ctx->status, ctx->status_len, "the %s loop over %u bytes left a buffer "
				 "that is not the bytes it started from (has a third process written to "
				 "the shared memory?)", loop_names[k], size);
			bad = 1;
			l->failed++;
			ivb_warn("%s", ctx->status);
			continue;
		}
		rc = ask_responder(l, ctx, size, (enum limits_loop)k, want, &theirs);
		if (rc > 0) {
			ivb_warn("%s", ctx->status);
			bad = 1;
			l->failed++;
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (write_row(csv, size, (enum limits_loop)k, "initiator", &mine) ||
		    write_row(csv, size, (enum limits_loop)k, "responder", &theirs)) {
			snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
			rc = -1;
			break;
		}
		l->points++;
		if (!ctx->quiet) {
			double g0 = (double)mine.iterations * size / (double)mine.ns;
			double g1 = (double)theirs.iterations * size / (double)theirs.ns;

			printf("  %9u B  %-8s  initiator %9.3f GB/s  responder %9.3f GB/s  (%.2fx)\n",
			       size, loop_names[k], g0, g1, g1 / g0);
		}
	}
	free(priv);
	free(dst);
	return rc < 0 ? -1 : bad;
}

static enum ivb_wl_outcome limits_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct limits *l = st;
	struct ivb_csv *csv = ivb_csv_open(ctx->res, &limits_csv);
	uint64_t most = room(ctx->ini->map_size);
	int i, rc = 0, bad = 0;

	if (!csv) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return IVB_WL_STOPPED;
	}
	for (i = 0; i < l->sizes.n && rc >= 0; i++) {
		if (l->sizes.v[i] > most) { /* a ladder's; limits_check() refused any other */
			if (!ctx->quiet)
				printf("  %9u B: does not fit the shared memory; skipped\n", l->sizes.v[i]);
			l->skipped++;
			continue;
		}
		rc = run_size(l, ctx, l->sizes.v[i], csv);
		bad |= rc > 0;
		if (rc >= 0 && ivb_csv_flush(csv)) {
			snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
			rc = -1;
		}
	}
	if (ivb_csv_close(csv) && rc >= 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	if (rc < 0)
		return IVB_WL_STOPPED;
	return bad ? IVB_WL_ERRORS : IVB_WL_COMPLETE;
}

static void limits_json(const void *st, struct ivb_json *j, int selected)
{
	const struct limits *l = st;
	long long sizes[IVB_MAX_SIZES];
	const char *loops[LOOP__COUNT];
	int i, n = 0;

	if (!selected)
		return;
	for (i = 0; i < l->sizes.n; i++)
		sizes[i] = l->sizes.v[i];
	for (i = 0; i < LOOP__COUNT; i++)
		if (l->loop[i])
			loops[n++] = loop_names[i];
	ivb_json_begin(j, "limits");
	ivb_json_ints(j, "sizes", sizes, l->sizes.n);
	ivb_json_strs(j, "loops", loops, n);
	ivb_json_uint(j, "duration_ns", l->duration_ns);
	ivb_json_uint(j, "warmup_ns", l->duration_ns / 5);
	ivb_json_str(j, "copy", "ivb_copy (copy.h), the stream receiver's copy of a message");
	ivb_json_str(j, "copy_shm_source", "the shared memory's payload area after a 4 KiB set-up "
		     "page, where the stream's rings are");
	ivb_json_str(j, "hash", "XXH3-64 (verify.h), the stream's check of each message");
	ivb_json_str(j, "initiator_copy_impl", ivb_copy_impl());
	ivb_json_str(j, "responder_copy_impl", l->responder_copy);
	ivb_json_str(j, "initiator_xxh3_impl", ivb_verify_impl());
	ivb_json_str(j, "responder_xxh3_impl", l->responder_xxh3);
	ivb_json_int(j, "loops_measured", l->points);
	ivb_json_int(j, "loops_refused", l->failed);
	ivb_json_int(j, "sizes_skipped", l->skipped);
	ivb_json_end(j);
}

/* ------------------------------------------------------------------ */
/* Responder                                                           */
/* ------------------------------------------------------------------ */

static enum ivb_error limits_serve(struct ivb_responder *r, const struct ivb_message *m,
				   struct ivb_reply *reply)
{
	uint8_t *payload = (uint8_t *)r->hdr + IVB_PAYLOAD_OFFSET;
	const uint8_t *shm_src = (const uint8_t *)r->hdr + LIMITS_SRC_OFFSET;
	struct limits_result *res = (struct limits_result *)(payload + sizeof(struct limits_params));
	struct stop_when w = { &r->hdr->session_id, r->session };
	struct limits_params p;
	struct measured got = { 0 };
	uint8_t *dst, *priv;
	const uint8_t *src;
	uint64_t warm, dur;

	(void)m, (void)reply;
	if (r->map_size < LIMITS_SRC_OFFSET)
		return IVB_ERR_BAD_SIZE;
	memcpy(&p, payload, sizeof(p)); /* once: the other side may change it under us */
	if (p.loop >= LOOP__COUNT || p.duration_ns == 0)
		return IVB_ERR_BAD_HEADER;
	if (p.len == 0 || p.len > IVB_MAX_MESSAGE || p.len > room(r->map_size))
		return IVB_ERR_BAD_SIZE;
	/* The times come from the other side: never run longer than our own limit. */
	dur = p.duration_ns < r->silence_ns ? p.duration_ns : r->silence_ns;
	warm = p.warmup_ns < r->silence_ns - dur ? p.warmup_ns : r->silence_ns - dur;
	dst = ivb_responder_scratch(r, p.len);
	priv = malloc(p.len);
	if (!dst || !priv) {
		free(priv);
		return IVB_ERR_NO_MEMORY;
	}
	ivb_copy(priv, shm_src, p.len);
	src = p.loop == LOOP_COPY_SHM ? shm_src : priv;
	if (measure((enum limits_loop)p.loop, dst, src, p.len, warm, dur, &w, &got)) {
		free(priv);
		return IVB_ERR_STALLED; /* a new session is not answered (session.c) */
	}
	res->iterations = got.iterations;
	res->ns = got.ns;
	res->cpu_ns = got.cpu_ns;
	res->proof = proof_of(p.loop == LOOP_XXH3 ? priv : dst, p.len);
	snprintf(res->impl, sizeof(res->impl), "%s",
		 p.loop == LOOP_XXH3 ? ivb_verify_impl() : ivb_copy_impl());
	free(priv);
	return IVB_OK;
}

static const char *const limits_json_keys[] = { "limits", NULL };

const struct ivb_workload ivb_wl_limits = {
	.name = "limits",
	.summary = "each side's copy and XXH3 speed at the message sizes: what bounds a stream",
	.command = IVB_CMD_LIMITS,
	.csv = &limits_csv,
	.opts = limits_opts,
	.state_size = sizeof(struct limits),
	.defaults = limits_defaults,
	.check = limits_check,
	.run = limits_run,
	.serve = limits_serve,
	.json = limits_json,
	.json_keys = limits_json_keys,
};
