/*
 * frames.c - video frames moved through shared memory and verified.
 *
 * Initiator: for each frame size (1080p, 1440p, 4K RGB by default), fresh
 * random bytes from OpenSSL each time, their SHA-256, a copy into the
 * payload area, a post. Timed apart: the copy, the hand-off until RECEIVED,
 * and the responder's copy-out and verification until PROCESSED. The
 * responder returns the digest it computed; a PROCESSED whose digest is
 * not the payload's is rejected as bad_proof (see ivshmem_abi.h).
 * Responder: copy the payload out once (the shared memory is untrusted and
 * may change under it), hash the copy, compare with the posted check.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "copy.h"
#include "digest.h"
#include "timing.h"
#include "workload.h"

#define DEFAULT_FRAME_ITERATIONS "5"
#define DEFAULT_FRAMES "1080p,1440p,4k"
#define MAX_FRAMES 16

static const struct ivb_csv_schema frames_csv = {
	"bandwidth_results.csv",
	"frame,width,height,bytes,iteration,success,error_code,error_name,copy_ns,handoff_ns,"
	"verify_ns,total_ns,guest_read_ns,guest_hash_ns,transfer_gbps,bandwidth_gbps",
};

struct frame_spec {
	char name[32];    /* "1080p", or "WxH" */
	unsigned width;   /* pixels */
	unsigned height;  /* pixels */
	uint64_t bytes;   /* width * height * 3 */
};

/* Per frame size totals, for the printed summary. */
struct frame_stats {
	long attempts;      /* transfers tried */
	long verified;      /* transfers PROCESSED with a genuine digest */
	double copy_gbps;   /* sum over verified transfers of bytes / copy time */
	double total_gbps;  /* sum over verified transfers of bytes / total time */
	double total_ms;    /* sum over verified transfers of total time */
};

struct frames {
	long iterations;                      /* transfers per frame size */
	struct frame_spec spec[MAX_FRAMES];   /* frame sizes, in order */
	int n;
	long corrupt;                         /* fault injection: corrupt this frame (1-based), 0 off */
	long ok, failed;                      /* verified and failed transfers */
	struct frame_stats stats[MAX_FRAMES]; /* per frame size */
};

static int parse_frame(const char *tok, struct frame_spec *f)
{
	static const struct frame_spec named[] = {
		{ "1080p", 1920, 1080, 0 }, { "1440p", 2560, 1440, 0 }, { "4k", 3840, 2160, 0 },
	};
	unsigned w, h;
	char tail;
	size_t i;

	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (!strcasecmp(tok, named[i].name)) {
			*f = named[i];
			f->bytes = (uint64_t)f->width * f->height * 3;
			return 0;
		}
	}
	if (sscanf(tok, "%ux%u%c", &w, &h, &tail) != 2 || !w || !h || w > 65536 || h > 65536)
		return -1;
	snprintf(f->name, sizeof(f->name), "%ux%u", w, h);
	f->width = w;
	f->height = h;
	f->bytes = (uint64_t)w * h * 3;
	return 0;
}

static void set_frames(void *st, const char *list)
{
	struct frames *fr = st;
	char buf[512], *tok, *save;

	if (strlen(list) >= sizeof(buf))
		ivb_die_usage("--frames: list too long");
	snprintf(buf, sizeof(buf), "%s", list);
	fr->n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (fr->n == MAX_FRAMES)
			ivb_die_usage("--frames: at most %d sizes", MAX_FRAMES);
		if (parse_frame(tok, &fr->spec[fr->n++]))
			ivb_die_usage("--frames: '%s' is not 1080p, 1440p, 4k or WxH (1..65536 each)", tok);
	}
	if (!fr->n)
		ivb_die_usage("--frames: empty list");
}

static void set_iterations(void *st, const char *arg)
{
	((struct frames *)st)->iterations = (long)ivb_opt_count("--frame-iterations", arg, 1, 1000000);
}

static void set_corrupt(void *st, const char *arg)
{
	((struct frames *)st)->corrupt = (long)ivb_opt_count("--corrupt-frame", arg, 1, 100000000);
}

static const struct ivb_wl_option frames_opts[] = {
	{ "frame-iterations", 'b', "N", "transfers per frame size (default %s)", DEFAULT_FRAME_ITERATIONS, set_iterations },
	{ "frames", 'f', "LIST", "frame sizes: 1080p, 1440p, 4k, WxH (default %s)", DEFAULT_FRAMES, set_frames },
	{ "corrupt-frame", 0, "N", "fault injection: corrupt frame N (1-based) after hashing", NULL, set_corrupt },
	{ 0 },
};

static void frames_defaults(void *st)
{
	set_iterations(st, DEFAULT_FRAME_ITERATIONS);
	set_frames(st, DEFAULT_FRAMES);
}

static void frames_check(const void *st, uint64_t capacity, const char *shm_name)
{
	const struct frames *fr = st;
	int i;

	for (i = 0; i < fr->n; i++)
		if (fr->spec[i].bytes > capacity)
			ivb_die_usage("frame %s (%llu bytes) does not fit in %s: its shared memory "
				      "leaves %llu bytes for a frame; use a larger IVSHMEM_SHM_SIZE",
				      fr->spec[i].name, (unsigned long long)fr->spec[i].bytes, shm_name,
				      (unsigned long long)capacity);
}

static double gbps(uint64_t bytes, uint64_t ns)
{
	return (double)bytes / (double)(ns ? ns : 1);
}

/*
 * One transfer: random bytes, digest, copy into shared memory, post, wait,
 * check the proof, write the row. Returns 0 when the exchange finished
 * (verified or not), -1 when the run must stop (ctx->status says why).
 */
static int transfer(struct frames *fr, struct ivb_wl_ctx *ctx, struct ivb_csv *csv, int size,
		    long iter, uint8_t *frame, long number)
{
	const struct frame_spec *f = &fr->spec[size];
	struct frame_stats *fs = &fr->stats[size];
	struct ivb_initiator *ini = ctx->ini;
	uint8_t digest[IVB_SHA256_LEN];
	uint64_t t0, t1, seq, total = 0;
	struct ivb_ack r;
	int rc = 0, row;

	if (ivb_random(frame, f->bytes) || ivb_sha256(frame, f->bytes, digest))
		ivb_die("OpenSSL failed to make frame %s", f->name);
	memcpy(ini->hdr->check, digest, IVB_CHECK_LEN);
	ini->hdr->payload_size = f->bytes;
	t0 = ivb_now_ns();
	ivb_copy(ini->payload, frame, f->bytes);
	t1 = ivb_now_ns();
	if (number == fr->corrupt)
		ini->payload[f->bytes / 2] ^= 0x01;
	seq = ivb_post(ini, IVB_CMD_FRAME);
	if (ivb_wait_ack(ini, seq, t1, "frame", &r)) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		rc = -1;
	} else if (r.state == IVB_STATE_PROCESSED &&
		   memcmp(ini->hdr->guest_digest, digest, sizeof(digest))) {
		/* Only a side that hashed the payload knows the digest's second half. */
		r.state = IVB_STATE_ERROR;
		r.error = IVB_ERR_BAD_PROOF;
	}
	if (rc == 0) {
		total = (t1 - t0) + r.done_ns;
		row = ivb_csv_row(csv, "%s,%u,%u,%llu,%ld,%d,%u,%s,%llu,%llu,%llu,%llu,%llu,%llu,%.4f,%.4f",
				  f->name, f->width, f->height, (unsigned long long)f->bytes, iter,
				  r.state == IVB_STATE_PROCESSED, r.error, ivb_outcome_name(r.error),
				  (unsigned long long)(t1 - t0), (unsigned long long)r.received_ns,
				  (unsigned long long)(r.done_ns - r.received_ns),
				  (unsigned long long)total,
				  (unsigned long long)ini->hdr->guest_read_ns,
				  (unsigned long long)ini->hdr->guest_hash_ns,
				  gbps(f->bytes, t1 - t0), gbps(f->bytes, total));
	} else {
		row = ivb_csv_row(csv, "%s,%u,%u,%llu,%ld,0,%u,%s,%llu,,,,,,%.4f,", f->name, f->width,
				  f->height, (unsigned long long)f->bytes, iter, r.error,
				  ivb_outcome_name(r.error), (unsigned long long)(t1 - t0),
				  gbps(f->bytes, t1 - t0));
	}
	if (row) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	fs->attempts++;
	if (r.state == IVB_STATE_PROCESSED) {
		fr->ok++;
		fs->verified++;
		fs->copy_gbps += gbps(f->bytes, t1 - t0);
		fs->total_gbps += gbps(f->bytes, total);
		fs->total_ms += (double)total / 1e6;
	} else {
		fr->failed++;
		ivb_warn("frame %s #%ld: %s (%s)", f->name, iter,
			 r.state == IVB_STATE_ERROR ? "ERROR" : "no answer", ivb_outcome_name(r.error));
	}
	return rc;
}

static enum ivb_wl_outcome frames_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct frames *fr = st;
	struct ivb_csv *csv = ivb_csv_open(ctx->res, &frames_csv);
	uint64_t largest = 0;
	long number = 0;
	uint8_t *frame;
	int i, rc = 0;

	if (!csv) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return IVB_WL_STOPPED;
	}
	for (i = 0; i < fr->n; i++)
		if (fr->spec[i].bytes > largest)
			largest = fr->spec[i].bytes;
	frame = malloc(largest);
	if (!frame)
		ivb_die("out of memory for a %llu-byte frame", (unsigned long long)largest);
	for (i = 0; i < fr->n && rc == 0; i++) {
		long it;

		for (it = 0; it < fr->iterations && rc == 0; it++)
			rc = transfer(fr, ctx, csv, i, it, frame, ++number);
		if (rc == 0 && ivb_csv_flush(csv)) {
			snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
			rc = -1;
		}
		if (!ctx->quiet)
			printf("  %-9s %ld transfers done\n", fr->spec[i].name, it);
	}
	free(frame);
	if (ivb_csv_close(csv) && rc == 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	if (rc)
		return IVB_WL_STOPPED;
	if (fr->failed) {
		snprintf(ctx->status, ctx->status_len, "%ld of %ld frames failed verification",
			 fr->failed, fr->failed + fr->ok);
		return IVB_WL_ERRORS;
	}
	return IVB_WL_COMPLETE;
}

/* Responder: check, copy out and hash one frame; the digest goes back as proof. */
static enum ivb_error frames_serve(struct ivb_responder *r, const struct ivb_message *m,
				   struct ivb_reply *reply)
{
	uint64_t offset = r->hdr->payload_offset, t0, t1, t2;
	uint8_t *buf;

	if (offset < sizeof(struct ivb_header) || offset >= r->map_size)
		return IVB_ERR_BAD_HEADER;
	if (m->payload_size == 0 || m->payload_size > r->map_size - offset)
		return IVB_ERR_BAD_SIZE;
	buf = ivb_responder_scratch(r, m->payload_size);
	if (!buf)
		return IVB_ERR_NO_MEMORY;
	t0 = ivb_now_ns();
	ivb_copy(buf, (const uint8_t *)r->hdr + offset, m->payload_size);
	t1 = ivb_now_ns();
	if (ivb_sha256(buf, m->payload_size, reply->digest))
		return IVB_ERR_CRYPTO;
	reply->has_digest = 1;
	t2 = ivb_now_ns();
	reply->read_ns = t1 - t0;
	reply->hash_ns = t2 - t1;
	return memcmp(reply->digest, m->check, IVB_CHECK_LEN) ? IVB_ERR_DIGEST : IVB_OK;
}

static void frames_json(const void *st, struct ivb_json *j, int selected)
{
	const struct frames *fr = st;
	const char *names[MAX_FRAMES];
	int i;

	for (i = 0; i < fr->n; i++)
		names[i] = fr->spec[i].name;
	ivb_json_int(j, "bandwidth_iterations", selected ? fr->iterations : 0);
	ivb_json_strs(j, "frames", names, fr->n);
	ivb_json_int(j, "frames_verified", fr->ok);
	ivb_json_int(j, "frames_failed", fr->failed);
}

static void frames_print(const void *st, const char *results_dir)
{
	const struct frames *fr = st;
	int i;

	if (fr->ok + fr->failed == 0)
		return;
	printf("\nBandwidth: frames verified %ld, failed %ld (details in %s/%s)\n", fr->ok,
	       fr->failed, results_dir, frames_csv.file);
	printf("  %-9s %10s %8s %12s %12s %10s\n", "frame", "bytes", "ok/N", "copy GB/s",
	       "total GB/s", "total ms");
	for (i = 0; i < fr->n; i++) {
		const struct frame_stats *fs = &fr->stats[i];
		double n = fs->verified ? (double)fs->verified : 1;

		if (!fs->attempts)
			continue;
		printf("  %-9s %10llu %3ld/%-4ld %12.3f %12.3f %10.2f\n", fr->spec[i].name,
		       (unsigned long long)fr->spec[i].bytes, fs->verified, fs->attempts,
		       fs->copy_gbps / n, fs->total_gbps / n, fs->total_ms / n);
	}
	printf("  (copy: host memcpy into shared memory; total: copy + hand-off + guest\n"
	       "   copy-out and SHA-256 check; means over verified frames, GB = 1e9 bytes)\n");
}

static const char *const frames_json_keys[] = {
	"bandwidth_iterations", "frames", "frames_verified", "frames_failed", NULL,
};

const struct ivb_workload ivb_wl_frames = {
	.name = "frames",
	.alias = "bandwidth",
	.summary = "frames of random bytes copied in, handed over and verified with SHA-256",
	.by_default = 1,
	.command = IVB_CMD_FRAME,
	.csv = &frames_csv,
	.opts = frames_opts,
	.state_size = sizeof(struct frames),
	.defaults = frames_defaults,
	.check = frames_check,
	.run = frames_run,
	.serve = frames_serve,
	.json = frames_json,
	.json_keys = frames_json_keys,
	.print = frames_print,
};
