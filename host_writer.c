/*
 * host_writer - the host side of ivshmem-bench.
 *
 * Opens a session in the shared memory that QEMU's ivshmem device exposes to
 * the guest, waits for guest_reader to attach, then runs two tests with the
 * two-phase acknowledgement described in common/ivshmem_abi.h:
 *
 *   latency:   N round trips of an empty message (after a warm-up), timing
 *              post -> RECEIVED and post -> PROCESSED for each;
 *   bandwidth: frames of random bytes (1080p, 1440p, 4K RGB by default),
 *              each copied into shared memory, handed over and verified by
 *              the guest with SHA-256; copy, hand-off and verification are
 *              timed separately.
 *
 * In doorbell mode (--doorbell SOCKET) host_writer is a peer of the
 * ivshmem server like QEMU: it gets the shared memory and the eventfds from
 * the server, rings the guest's MSI-X vector after each post and sleeps on
 * its own eventfd, which the guest rings through its Doorbell register.
 *
 * Results go to CSV files in the results directory as they are measured,
 * with a run.json describing the run (version, mode, host, settings, and
 * whatever the caller adds with --meta). Every wait has a deadline: on a
 * timeout the program names the message and the state it saw, writes what
 * it measured so far, and exits with status 1. Exit status 2 means bad
 * options or sizes that do not fit.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "digest.h"
#include "ivshmem_abi.h"
#include "ivshmem_client.h"
#include "shm_map.h"
#include "stats.h"
#include "timing.h"
#include "units.h"
#include "version.h"

#define PROG "host_writer"

/* Defaults, printed by --help. */
#define DEFAULT_SHM "/dev/shm/ivshmem"
#define DEFAULT_RESULTS "results"
#define DEFAULT_ITERATIONS 1000
#define DEFAULT_WARMUP 100
#define DEFAULT_FRAME_ITERATIONS 5
#define DEFAULT_FRAMES "1080p,1440p,4k"
#define DEFAULT_TIMEOUT "10s"
#define DEFAULT_CPU 0
#define DEFAULT_VECTORS 2
#define MAX_FRAMES 16
#define MAX_META 32
#define SPIN_CHECK_EVERY 1024 /* spins between clock reads in a wait */

/* Host-side outcome codes, beyond the guest's enum ivb_error. */
#define HOST_ERR_TIMEOUT 100
#define HOST_ERR_INTERRUPTED 101

struct frame_spec {
	char name[32];    /* "1080p", or "WxH" */
	unsigned width;   /* pixels */
	unsigned height;  /* pixels */
	uint64_t bytes;   /* width * height * 3 */
};

struct config {
	const char *shm_path;       /* shared-memory file */
	const char *results_dir;    /* where CSV and JSON files go */
	long iterations;            /* measured latency round trips */
	long warmup;                /* unmeasured round trips before them */
	uint64_t gap_ns;            /* pause between latency messages */
	long frame_iterations;      /* transfers per frame size */
	struct frame_spec frames[MAX_FRAMES]; /* frame sizes, in order */
	int nframes;
	int run_latency;            /* run the latency test */
	int run_bandwidth;          /* run the bandwidth test */
	uint64_t timeout_ns;        /* deadline of every wait */
	int cpu;                    /* pin to this CPU, -1 for none */
	long corrupt_frame;         /* fault injection: corrupt this frame (1-based), 0 off */
	const char *server_socket;  /* doorbell mode: the ivshmem server's socket */
	unsigned vectors;           /* doorbell mode: vectors per peer */
	int watch_tid;              /* thread (QEMU vCPU) whose idle CPU time to record, 0 off */
	const char *meta[MAX_META]; /* KEY=VALUE pairs for run.json */
	int nmeta;
	int quiet;                  /* no progress output */
};

/* One latency sample. */
struct rtt {
	uint64_t done_ns;     /* post -> PROCESSED */
	uint64_t received_ns; /* post -> RECEIVED observed */
};

/* Per frame size totals, for the printed summary. */
struct frame_stats {
	long attempts;      /* transfers tried */
	long verified;      /* transfers PROCESSED */
	double copy_gbps;   /* sum over verified transfers of bytes / copy time */
	double total_gbps;  /* sum over verified transfers of bytes / total time */
	double total_ms;    /* sum over verified transfers of total time */
};

/* What a wait for an acknowledgement saw. */
struct ack_result {
	uint64_t received_ns; /* post -> first sight of RECEIVED (or later) */
	uint64_t done_ns;     /* post -> final state */
	enum ivb_state state; /* final state, or the last one seen on timeout */
	uint64_t seen_seq;    /* sequence of the last ack seen */
	uint32_t error;       /* guest error code, or HOST_ERR_* */
};

struct writer {
	struct config cfg;      /* settings */
	struct ivb_map map;     /* shared memory */
	struct ivb_header *hdr; /* = map.base */
	enum ivb_mode mode;     /* plain, or doorbell with a server */
	struct ivs_client peer; /* doorbell mode: our connection to the server */
	uint32_t guest_peer;    /* doorbell mode: the guest's peer id */
	double idle_cpu_pct;    /* CPU use of watch_tid while the guest waits, -1 unknown */
	uint64_t session;       /* current session id */
	uint64_t seq;           /* last message posted */
	char start_time[32];    /* ISO 8601, UTC */
	char status[256];       /* "complete", or what went wrong */
	struct ivb_summary lat; /* latency summary once measured */
	struct ivb_summary rcv; /* post -> RECEIVED summary */
	long frames_ok;         /* verified frames */
	long frames_failed;     /* frames with an error */
	FILE *bw_csv;           /* bandwidth_results.csv, written as it goes */
	struct frame_stats fstats[MAX_FRAMES]; /* per frame size, for the summary */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options]\n"
		"Measure latency and frame bandwidth to guest_reader over ivshmem shared memory.\n\n"
		"  -s, --shm PATH            shared-memory file (default " DEFAULT_SHM ")\n"
		"  -o, --output DIR          results directory (default " DEFAULT_RESULTS ")\n"
		"  -t, --test WHICH          latency, bandwidth or all (default all)\n"
		"  -n, --iterations N        measured latency round trips (default %d)\n"
		"  -w, --warmup N            unmeasured round trips first (default %d)\n"
		"  -g, --gap DUR             pause between latency messages (default 0)\n"
		"  -b, --frame-iterations N  transfers per frame size (default %d)\n"
		"  -f, --frames LIST         comma-separated 1080p, 1440p, 4k or WxH\n"
		"                            (default " DEFAULT_FRAMES "; 3 bytes per pixel)\n"
		"  -T, --timeout DUR         deadline of every wait (default " DEFAULT_TIMEOUT ")\n"
		"  -c, --cpu N|none          pin to CPU N (default %d; the VM's vCPU runs elsewhere)\n"
		"  -d, --doorbell SOCKET     doorbell mode: be a peer of the ivshmem server at\n"
		"                            SOCKET (shared memory comes from it; --shm unused)\n"
		"      --vectors N           vectors per peer the server uses (default %d)\n"
		"      --watch-thread TID    record the CPU use of thread TID (the VM's vCPU)\n"
		"                            during one idle second in the session\n"
		"  -m, --meta KEY=VALUE      add to run.json (repeatable)\n"
		"      --corrupt-frame N     fault injection: corrupt frame N (1-based) after hashing\n"
		"  -q, --quiet               no progress output\n"
		"  -h, --help                this text\n"
		"  -V, --version             print the version\n"
		"Durations take ns, us, ms, s, m suffixes (default unit: seconds, 0 for --gap).\n"
		"Exit status: 0 all verified, 1 timeout or failed frames, 2 bad options.\n",
		DEFAULT_ITERATIONS, DEFAULT_WARMUP, DEFAULT_FRAME_ITERATIONS, DEFAULT_CPU,
		DEFAULT_VECTORS);
}

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	exit(2);
}

/* A whole number in [lo, hi], or exit naming the option and the range. */
static long parse_count(const char *opt, const char *arg, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || end == arg || v < lo || v > hi)
		die_usage("%s: '%s' is not a whole number in %ld..%ld", opt, arg, lo, hi);
	return v;
}

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

static void parse_frames(const char *list, struct config *cfg)
{
	char buf[512], *tok, *save;

	if (strlen(list) >= sizeof(buf))
		die_usage("--frames: list too long");
	snprintf(buf, sizeof(buf), "%s", list);
	cfg->nframes = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg->nframes == MAX_FRAMES)
			die_usage("--frames: at most %d sizes", MAX_FRAMES);
		if (parse_frame(tok, &cfg->frames[cfg->nframes++]))
			die_usage("--frames: '%s' is not 1080p, 1440p, 4k or WxH (1..65536 each)", tok);
	}
	if (!cfg->nframes)
		die_usage("--frames: empty list");
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "test", required_argument, NULL, 't' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "gap", required_argument, NULL, 'g' },
		{ "frame-iterations", required_argument, NULL, 'b' },
		{ "frames", required_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "meta", required_argument, NULL, 'm' },
		{ "doorbell", required_argument, NULL, 'd' },
		{ "vectors", required_argument, NULL, 'N' },
		{ "watch-thread", required_argument, NULL, 'W' },
		{ "corrupt-frame", required_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c;

	*cfg = (struct config){
		.shm_path = DEFAULT_SHM, .results_dir = DEFAULT_RESULTS,
		.iterations = DEFAULT_ITERATIONS, .warmup = DEFAULT_WARMUP,
		.frame_iterations = DEFAULT_FRAME_ITERATIONS, .run_latency = 1,
		.run_bandwidth = 1, .cpu = DEFAULT_CPU, .vectors = DEFAULT_VECTORS,
	};
	parse_frames(DEFAULT_FRAMES, cfg);
	ivb_parse_duration(DEFAULT_TIMEOUT, 1000000000ull, &cfg->timeout_ns);
	while ((c = getopt_long(argc, argv, "s:o:t:n:w:g:b:f:T:c:m:d:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 's': cfg->shm_path = optarg; break;
		case 'o': cfg->results_dir = optarg; break;
		case 't':
			cfg->run_latency = !strcmp(optarg, "latency") || !strcmp(optarg, "all");
			cfg->run_bandwidth = !strcmp(optarg, "bandwidth") || !strcmp(optarg, "all");
			if (!cfg->run_latency && !cfg->run_bandwidth)
				die_usage("--test: '%s' is not latency, bandwidth or all", optarg);
			break;
		case 'n': cfg->iterations = parse_count("--iterations", optarg, 1, 100000000); break;
		case 'w': cfg->warmup = parse_count("--warmup", optarg, 0, 100000000); break;
		case 'g':
			if (ivb_parse_duration(optarg, 1, &cfg->gap_ns) || cfg->gap_ns > 60000000000ull)
				die_usage("--gap: '%s' is not a duration in 0..60s (e.g. 10us)", optarg);
			break;
		case 'b': cfg->frame_iterations = parse_count("--frame-iterations", optarg, 1, 1000000); break;
		case 'f': parse_frames(optarg, cfg); break;
		case 'T':
			if (ivb_parse_duration(optarg, 1000000000ull, &cfg->timeout_ns) ||
			    cfg->timeout_ns < 1000000ull || cfg->timeout_ns > 3600000000000ull)
				die_usage("--timeout: '%s' is not a duration in 1ms..1h (e.g. 10s)", optarg);
			break;
		case 'c':
			cfg->cpu = !strcmp(optarg, "none") ? -1 :
				(int)parse_count("--cpu", optarg, 0, ivb_cpu_count() - 1);
			break;
		case 'm':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				die_usage("--meta: '%s' is not KEY=VALUE", optarg);
			if (cfg->nmeta == MAX_META)
				die_usage("--meta: at most %d entries", MAX_META);
			cfg->meta[cfg->nmeta++] = optarg;
			break;
		case 'd': cfg->server_socket = optarg; break;
		case 'N': cfg->vectors = (unsigned)parse_count("--vectors", optarg, 1, IVS_CLIENT_MAX_VECTORS); break;
		case 'W': cfg->watch_tid = (int)parse_count("--watch-thread", optarg, 1, 1 << 30); break;
		case 'C': cfg->corrupt_frame = parse_count("--corrupt-frame", optarg, 1, 100000000); break;
		case 'q': cfg->quiet = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf(PROG " " IVB_VERSION "\n"); exit(0);
		default: fprintf(stderr, "Try '" PROG " --help'.\n"); exit(2);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
}

/* ------------------------------------------------------------------ */
/* Results files                                                       */
/* ------------------------------------------------------------------ */

/* Write s as a JSON string literal. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_summary(FILE *f, const char *name, const struct ivb_summary *s)
{
	fprintf(f, "  \"%s\": {\"count\": %zu, \"min_ns\": %.0f, \"mean_ns\": %.1f, "
		"\"stddev_ns\": %.1f, \"p50_ns\": %.1f, \"p90_ns\": %.1f, \"p99_ns\": %.1f, "
		"\"p999_ns\": %.1f, \"max_ns\": %.0f},\n",
		name, s->count, s->min, s->mean, s->stddev, s->p50, s->p90, s->p99, s->p999, s->max);
}

/*
 * Write run.json (through a temporary file, so a reader never sees half of
 * it): provenance, settings, status, and summaries measured so far.
 */
static void write_run_json(const struct writer *w)
{
	const struct config *c = &w->cfg;
	char path[4096], tmp[4200], cpu[256], clk[64], now[32];
	uint64_t clock_read, clock_res;
	struct utsname un;
	time_t t = time(NULL);
	FILE *f;
	int i;

	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(path, sizeof(path), "%s/run.json", c->results_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
		return;
	}
	ivb_cpu_model(cpu, sizeof(cpu));
	ivb_clocksource(clk, sizeof(clk));
	uname(&un);
	fprintf(f, "{\n  \"tool\": \"ivshmem-bench\",\n  \"version\": ");
	json_string(f, IVB_VERSION);
	fprintf(f, ",\n  \"mode\": \"%s\",\n  \"status\": ", ivb_mode_name(w->mode));
	json_string(f, w->status);
	fprintf(f, ",\n  \"start_time\": \"%s\",\n  \"end_time\": \"%s\",\n", w->start_time, now);
	fprintf(f, "  \"host_cpu\": ");
	json_string(f, cpu);
	fprintf(f, ",\n  \"host_kernel\": ");
	json_string(f, un.release);
	fprintf(f, ",\n  \"clocksource\": ");
	json_string(f, clk);
	ivb_clock_cost(&clock_read, &clock_res);
	fprintf(f, ",\n  \"clock_read_ns\": %llu,\n  \"clock_resolution_ns\": %llu",
		(unsigned long long)clock_read, (unsigned long long)clock_res);
	fprintf(f, ",\n  \"shm_path\": ");
	json_string(f, c->shm_path);
	fprintf(f, ",\n  \"shm_size\": %zu,\n", w->map.size);
	fprintf(f, "  \"writer_cpu\": %d,\n", c->cpu);
	fprintf(f, "  \"latency_iterations\": %ld,\n  \"warmup\": %ld,\n  \"gap_ns\": %llu,\n",
		c->run_latency ? c->iterations : 0, c->warmup, (unsigned long long)c->gap_ns);
	fprintf(f, "  \"bandwidth_iterations\": %ld,\n  \"frames\": [",
		c->run_bandwidth ? c->frame_iterations : 0);
	for (i = 0; i < c->nframes; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", c->frames[i].name);
	fprintf(f, "],\n  \"timeout_ns\": %llu,\n", (unsigned long long)c->timeout_ns);
	fprintf(f, "  \"guest_pid\": %u,\n", w->hdr ? w->hdr->guest_pid : 0);
	fprintf(f, "  \"guest_wait\": \"%s\",\n",
		w->hdr && w->hdr->attached_session == w->session ? ivb_mode_name(w->hdr->guest_wait) : "unknown");
	if (w->mode == IVB_MODE_DOORBELL) {
		fprintf(f, "  \"server_socket\": ");
		json_string(f, c->server_socket);
		fprintf(f, ",\n  \"vectors\": %u,\n  \"host_peer_id\": %u,\n  \"guest_peer_id\": %u,\n",
			c->vectors, ivs_client_id(&w->peer), w->guest_peer);
	}
	if (w->idle_cpu_pct >= 0)
		fprintf(f, "  \"vcpu_idle_cpu_percent\": %.1f,\n", w->idle_cpu_pct);
	if (w->lat.count)
		json_summary(f, "latency", &w->lat);
	if (w->rcv.count)
		json_summary(f, "received", &w->rcv);
	fprintf(f, "  \"frames_verified\": %ld,\n  \"frames_failed\": %ld", w->frames_ok,
		w->frames_failed);
	for (i = 0; i < c->nmeta; i++) {
		const char *eq = strchr(c->meta[i], '=');

		fprintf(f, ",\n  ");
		fputc('"', f);
		fwrite(c->meta[i], 1, (size_t)(eq - c->meta[i]), f);
		fprintf(f, "\": ");
		json_string(f, eq + 1);
	}
	fprintf(f, "\n}\n");
	if (fclose(f) || rename(tmp, path))
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
}

static FILE *open_csv(const struct writer *w, const char *name, const char *header)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", w->cfg.results_dir, name);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fprintf(f, "%s\n", header);
	fflush(f);
	return f;
}

static void write_latency_csv(const struct writer *w, const struct rtt *v, long n)
{
	FILE *f = open_csv(w, "latency_results.csv",
			   "iteration,latency_ns,latency_us,received_ns,received_us");
	long i;

	for (i = 0; i < n; i++)
		fprintf(f, "%ld,%llu,%.3f,%llu,%.3f\n", i, (unsigned long long)v[i].done_ns,
			(double)v[i].done_ns / 1e3, (unsigned long long)v[i].received_ns,
			(double)v[i].received_ns / 1e3);
	if (fclose(f))
		fprintf(stderr, PROG ": latency_results.csv: %s\n", strerror(errno));
}

/* ------------------------------------------------------------------ */
/* Protocol                                                            */
/* ------------------------------------------------------------------ */

static const char *outcome_name(uint32_t error)
{
	if (error == HOST_ERR_TIMEOUT)
		return "timeout";
	if (error == HOST_ERR_INTERRUPTED)
		return "interrupted";
	return ivb_error_name(error);
}

static void ring_all_peers(struct writer *w);

/*
 * Open a new session: reset the message counter, write the identity line,
 * then publish the session id. Wait for guest_reader to attach.
 * Returns 0, or -1 with w->status saying why.
 */
static int open_session(struct writer *w)
{
	struct ivb_header *h = w->hdr;
	uint64_t deadline, ack;

	do {
		if (ivb_random(&w->session, sizeof(w->session))) {
			snprintf(w->status, sizeof(w->status), "OpenSSL RAND_bytes failed");
			return -1;
		}
	} while (w->session == 0);
	ivb_store_release(&h->session_id, 0);
	ivb_store_release(&h->seq, 0);
	w->seq = 0;
	h->magic = IVB_MAGIC;
	h->layout_version = IVB_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->shm_size = w->map.size;
	h->payload_offset = IVB_PAYLOAD_OFFSET;
	h->payload_capacity = w->map.size - IVB_PAYLOAD_OFFSET;
	h->mode = w->mode;
	h->host_peer_id = w->mode == IVB_MODE_DOORBELL ? ivs_client_id(&w->peer) : IVB_NO_PEER;
	h->command = IVB_CMD_NONE;
	h->payload_size = 0;
	ivb_store_release(&h->session_id, w->session);
	ring_all_peers(w);

	deadline = ivb_now_ns() + w->cfg.timeout_ns;
	while (ivb_load_acquire(&h->attached_session) != w->session) {
		if (interrupted) {
			snprintf(w->status, sizeof(w->status), "interrupted");
			return -1;
		}
		if (ivb_now_ns() > deadline) {
			snprintf(w->status, sizeof(w->status),
				 "no guest attached within %.1f s (is guest_reader running? "
				 "./setup.sh status shows the VM)", (double)w->cfg.timeout_ns / 1e9);
			return -1;
		}
		if (w->mode == IVB_MODE_DOORBELL)
			ivs_client_wait(&w->peer, 0, 100, NULL);
		else
			ivb_sleep_ns(100000);
	}
	ack = ivb_load_acquire(&h->ack);
	if (ivb_ack_state(ack) == IVB_STATE_ERROR) {
		snprintf(w->status, sizeof(w->status), "guest refused the session: %s",
			 ivb_error_name(h->error_code));
		return -1;
	}
	if (w->mode == IVB_MODE_DOORBELL) {
		w->guest_peer = h->guest_peer_id;
		if (w->guest_peer > IVS_CLIENT_MAX_PEER_ID ||
		    ivs_client_peer_vectors(&w->peer, w->guest_peer) == 0) {
			snprintf(w->status, sizeof(w->status),
				 "the guest says it is peer %u, which the server does not know",
				 w->guest_peer);
			return -1;
		}
	}
	return 0;
}

/*
 * Doorbell mode: take in the server's connect and disconnect notices that
 * arrived so far, then ring vector 0 of every other peer, so a guest asleep
 * waiting for a session looks at the header.
 */
static void ring_all_peers(struct writer *w)
{
	struct ivs_client_event ev;
	unsigned ids[256];
	size_t i, n;

	if (w->mode != IVB_MODE_DOORBELL)
		return;
	while (ivs_client_next_event(&w->peer, &ev, 0) > 0)
		;
	n = ivs_client_peers(&w->peer, ids, sizeof(ids) / sizeof(ids[0]));
	for (i = 0; i < n; i++)
		ivs_client_notify(&w->peer, ids[i], 0);
}

/*
 * Watch thread tid for a second while the attached guest has nothing to
 * do: the share of that second it spent on a CPU (from /proc, in clock
 * ticks), or -1 when it cannot be read.
 */
static double idle_cpu_percent(int tid)
{
	char path[64];
	unsigned long long t[2];
	uint64_t start, elapsed;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	for (i = 0; i < 2; i++) {
		unsigned long long ut, st;
		FILE *f = fopen(path, "r");
		char buf[1024], *p;
		int ok;

		if (!f)
			return -1;
		ok = fgets(buf, sizeof(buf), f) != NULL;
		fclose(f);
		p = ok ? strrchr(buf, ')') : NULL;
		/* fields after "(comm)": state is 3rd, utime 14th, stime 15th */
		if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				 &ut, &st) != 2)
			return -1;
		t[i] = ut + st;
		if (i == 0) {
			start = ivb_now_ns();
			ivb_sleep_ns(1000000000ull);
			elapsed = ivb_now_ns() - start;
		}
	}
	return 100.0 * (double)(t[1] - t[0]) / (double)sysconf(_SC_CLK_TCK) / ((double)elapsed / 1e9);
}

/* Post message seq (the fields are written already): the release store. */
static uint64_t post(struct writer *w, enum ivb_command cmd)
{
	w->hdr->command = cmd;
	w->seq++;
	ivb_store_release(&w->hdr->seq, w->seq);
	if (w->mode == IVB_MODE_DOORBELL)
		ivs_client_notify(&w->peer, w->guest_peer, 0);
	return w->seq;
}

/*
 * Wait until the guest's ack for message seq reaches a final state,
 * noting when RECEIVED (or anything later) was first seen. t0 is the post
 * time. Returns 0 when a final state arrived, -1 on timeout or interrupt
 * (r->error says which, r->state and r->seen_seq what was seen).
 */
static int wait_ack(struct writer *w, uint64_t seq, uint64_t t0, struct ack_result *r)
{
	uint64_t deadline = t0 + w->cfg.timeout_ns, now;
	unsigned spins = 0;
	int received = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		uint64_t ack = ivb_load_acquire(&w->hdr->ack);

		if (ivb_ack_seq(ack) == seq) {
			enum ivb_state st = ivb_ack_state(ack);

			if (st == IVB_STATE_PROCESSED || st == IVB_STATE_ERROR) {
				now = ivb_now_ns();
				r->done_ns = now - t0;
				if (!received)
					r->received_ns = r->done_ns;
				r->state = st;
				r->seen_seq = seq;
				r->error = st == IVB_STATE_ERROR ? w->hdr->error_code : IVB_OK;
				return 0;
			}
			if (!received && st == IVB_STATE_RECEIVED) {
				r->received_ns = ivb_now_ns() - t0;
				received = 1;
			}
		}
		if (w->mode == IVB_MODE_DOORBELL) {
			/* Sleep until the guest rings; a ring that came before this
			 * call is still counted in the eventfd, so none is lost. */
			now = ivb_now_ns();
			if (!interrupted && now < deadline)
				ivs_client_wait(&w->peer, 0,
						(int)((deadline - now) / 1000000ull) + 1, NULL);
		} else if (++spins % SPIN_CHECK_EVERY) {
			continue;
		}
		if (interrupted || ivb_now_ns() > deadline) {
			r->state = ivb_ack_state(ack);
			r->seen_seq = ivb_ack_seq(ack);
			r->error = interrupted ? HOST_ERR_INTERRUPTED : HOST_ERR_TIMEOUT;
			return -1;
		}
	}
}

/* Describe a failed wait into w->status. */
static void describe_failure(struct writer *w, const char *what, uint64_t seq,
			     const struct ack_result *r)
{
	if (r->error == HOST_ERR_INTERRUPTED)
		snprintf(w->status, sizeof(w->status), "interrupted during %s message %llu", what,
			 (unsigned long long)seq);
	else
		snprintf(w->status, sizeof(w->status),
			 "timeout after %.1f s waiting for PROCESSED of %s message %llu; "
			 "last ack seen: message %llu %s", (double)w->cfg.timeout_ns / 1e9, what,
			 (unsigned long long)seq, (unsigned long long)r->seen_seq,
			 ivb_state_name(r->state));
}

/* Busy-wait gaps below 1 ms (sleeping would add its own wake-up latency). */
static void pause_gap(uint64_t ns)
{
	uint64_t end;

	if (!ns)
		return;
	if (ns >= 1000000ull) {
		ivb_sleep_ns(ns);
		return;
	}
	end = ivb_now_ns() + ns;
	while (ivb_now_ns() < end)
		;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static int run_latency(struct writer *w)
{
	const struct config *c = &w->cfg;
	long total = c->warmup + c->iterations, i, n = 0;
	struct rtt *v = calloc((size_t)c->iterations, sizeof(*v));
	uint64_t *tmp = calloc((size_t)c->iterations, sizeof(*tmp));
	struct ack_result r;
	int rc = 0;

	if (!v || !tmp) {
		fprintf(stderr, PROG ": out of memory for %ld samples\n", c->iterations);
		exit(1);
	}
	w->hdr->payload_size = 0;
	for (i = 0; i < total; i++) {
		uint64_t t0 = ivb_now_ns(), seq = post(w, IVB_CMD_PING);

		if (wait_ack(w, seq, t0, &r)) {
			describe_failure(w, "latency", seq, &r);
			rc = -1;
			break;
		}
		if (r.state == IVB_STATE_ERROR) {
			snprintf(w->status, sizeof(w->status), "guest answered ping %llu with ERROR %s",
				 (unsigned long long)seq, ivb_error_name(r.error));
			rc = -1;
			break;
		}
		if (i >= c->warmup) {
			v[n].done_ns = r.done_ns;
			v[n].received_ns = r.received_ns;
			n++;
		}
		pause_gap(c->gap_ns);
	}
	write_latency_csv(w, v, n);
	for (i = 0; i < n; i++)
		tmp[i] = v[i].done_ns;
	ivb_summarize(tmp, (size_t)n, &w->lat);
	for (i = 0; i < n; i++)
		tmp[i] = v[i].received_ns;
	ivb_summarize(tmp, (size_t)n, &w->rcv);
	free(tmp);
	free(v);
	return rc;
}

/*
 * One frame transfer: random bytes, digest, copy into shared memory, post,
 * wait. Writes its CSV row. Returns 0 when the exchange finished (verified
 * or not), -1 when waiting failed and the run must stop.
 */
static int transfer_frame(struct writer *w, const struct frame_spec *f, long iter,
			  uint8_t *frame, long frame_number, struct frame_stats *fs)
{
	uint8_t *payload = (uint8_t *)w->map.base + IVB_PAYLOAD_OFFSET;
	uint64_t t0, t1, seq, total = 0;
	struct ack_result r;
	int rc = 0;

	if (ivb_random(frame, f->bytes) || ivb_sha256(frame, f->bytes, w->hdr->sha256)) {
		fprintf(stderr, PROG ": OpenSSL failed to make frame %s\n", f->name);
		exit(1);
	}
	w->hdr->payload_size = f->bytes;
	t0 = ivb_now_ns();
	memcpy(payload, frame, f->bytes);
	t1 = ivb_now_ns();
	if (frame_number == w->cfg.corrupt_frame)
		payload[f->bytes / 2] ^= 0x01;
	seq = post(w, IVB_CMD_FRAME);
	if (wait_ack(w, seq, t1, &r)) {
		describe_failure(w, "frame", seq, &r);
		rc = -1;
	}
	fprintf(w->bw_csv, "%s,%u,%u,%llu,%ld,%d,%u,%s,", f->name, f->width, f->height,
		(unsigned long long)f->bytes, iter, r.state == IVB_STATE_PROCESSED, r.error,
		outcome_name(r.error));
	if (rc == 0) {
		total = (t1 - t0) + r.done_ns;
		fprintf(w->bw_csv, "%llu,%llu,%llu,%llu,%llu,%llu,%.4f,%.4f\n",
			(unsigned long long)(t1 - t0), (unsigned long long)r.received_ns,
			(unsigned long long)(r.done_ns - r.received_ns), (unsigned long long)total,
			(unsigned long long)w->hdr->guest_read_ns,
			(unsigned long long)w->hdr->guest_hash_ns,
			(double)f->bytes / (double)(t1 - t0 ? t1 - t0 : 1),
			(double)f->bytes / (double)total);
	} else {
		fprintf(w->bw_csv, "%llu,,,,,,%.4f,\n", (unsigned long long)(t1 - t0),
			(double)f->bytes / (double)(t1 - t0 ? t1 - t0 : 1));
	}
	fflush(w->bw_csv);
	fs->attempts++;
	if (r.state == IVB_STATE_PROCESSED) {
		w->frames_ok++;
		fs->verified++;
		fs->copy_gbps += (double)f->bytes / (double)(t1 - t0 ? t1 - t0 : 1);
		fs->total_gbps += (double)f->bytes / (double)total;
		fs->total_ms += (double)total / 1e6;
	} else {
		w->frames_failed++;
		fprintf(stderr, PROG ": frame %s #%ld: %s (%s)\n", f->name, iter,
			r.state == IVB_STATE_ERROR ? "ERROR" : "no answer", outcome_name(r.error));
	}
	return rc;
}

static int run_bandwidth(struct writer *w)
{
	const struct config *c = &w->cfg;
	uint64_t largest = 0;
	long number = 0;
	uint8_t *frame;
	int i, rc = 0;

	for (i = 0; i < c->nframes; i++)
		if (c->frames[i].bytes > largest)
			largest = c->frames[i].bytes;
	frame = malloc(largest);
	if (!frame) {
		fprintf(stderr, PROG ": out of memory for a %llu-byte frame\n",
			(unsigned long long)largest);
		exit(1);
	}
	w->bw_csv = open_csv(w, "bandwidth_results.csv",
			     "frame,width,height,bytes,iteration,success,error_code,error_name,"
			     "copy_ns,handoff_ns,verify_ns,total_ns,guest_read_ns,guest_hash_ns,"
			     "transfer_gbps,bandwidth_gbps");
	for (i = 0; i < c->nframes && rc == 0; i++) {
		long it;

		for (it = 0; it < c->frame_iterations && rc == 0; it++)
			rc = transfer_frame(w, &c->frames[i], it, frame, ++number, &w->fstats[i]);
		if (!c->quiet)
			printf("  %-9s %ld transfers done\n", c->frames[i].name, it);
	}
	fclose(w->bw_csv);
	w->bw_csv = NULL;
	free(frame);
	return rc;
}

/* Tell the guest the session is over; it detaches. Best effort. */
static void close_session(struct writer *w)
{
	struct ack_result r;
	uint64_t t0 = ivb_now_ns(), seq = post(w, IVB_CMD_STOP);

	wait_ack(w, seq, t0, &r);
	ivb_store_release(&w->hdr->session_id, 0);
}

/* ------------------------------------------------------------------ */
/* Summary                                                             */
/* ------------------------------------------------------------------ */

static void print_summary(const struct writer *w)
{
	const struct config *c = &w->cfg;
	const struct ivb_summary *s = &w->lat;
	char path[4096];
	int i;

	if (s->count) {
		printf("\nLatency: round trip post -> PROCESSED, %zu samples (warm-up %ld excluded)\n",
		       s->count, c->warmup);
		printf("  %-10s %10s %10s %10s %10s %10s %10s %10s\n", "", "min", "p50", "p90",
		       "p99", "p99.9", "max", "mean");
		printf("  %-10s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", "RTT us",
		       s->min / 1e3, s->p50 / 1e3, s->p90 / 1e3, s->p99 / 1e3, s->p999 / 1e3,
		       s->max / 1e3, s->mean / 1e3);
		s = &w->rcv;
		printf("  %-10s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", "RECEIVED",
		       s->min / 1e3, s->p50 / 1e3, s->p90 / 1e3, s->p99 / 1e3, s->p999 / 1e3,
		       s->max / 1e3, s->mean / 1e3);
	}
	if (c->run_bandwidth && w->frames_ok + w->frames_failed > 0) {
		snprintf(path, sizeof(path), "%s/bandwidth_results.csv", c->results_dir);
		printf("\nBandwidth: frames verified %ld, failed %ld (details in %s)\n",
		       w->frames_ok, w->frames_failed, path);
		printf("  %-9s %10s %8s %12s %12s %10s\n", "frame", "bytes", "ok/N", "copy GB/s",
		       "total GB/s", "total ms");
		for (i = 0; i < c->nframes; i++) {
			const struct frame_stats *fs = &w->fstats[i];
			double n = fs->verified ? (double)fs->verified : 1;

			if (!fs->attempts)
				continue;
			printf("  %-9s %10llu %3ld/%-4ld %12.3f %12.3f %10.2f\n", c->frames[i].name,
			       (unsigned long long)c->frames[i].bytes, fs->verified, fs->attempts,
			       fs->copy_gbps / n, fs->total_gbps / n, fs->total_ms / n);
		}
		printf("  (copy: host memcpy into shared memory; total: copy + hand-off + guest\n"
		       "   copy-out and SHA-256 check; means over verified frames, GB = 1e9 bytes)\n");
	}
	printf("\nResults in %s/\n", c->results_dir);
}

int main(int argc, char **argv)
{
	struct writer w = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t capacity;
	char err[512];
	time_t t = time(NULL);
	int i, rc, failed = 0;

	parse_args(argc, argv, &w.cfg);
	w.idle_cpu_pct = -1;
	if (w.cfg.server_socket) {
		w.mode = IVB_MODE_DOORBELL;
		rc = ivs_client_connect(&w.peer, w.cfg.server_socket, w.cfg.vectors,
					(int)(w.cfg.timeout_ns / 1000000ull));
		if (rc < 0) {
			fprintf(stderr, PROG ": ivshmem server %s: %s\n", w.cfg.server_socket,
				ivs_client_error(&w.peer));
			return 1;
		}
		if (ivs_client_shm_size(&w.peer) < IVB_PAYLOAD_OFFSET * 2 ||
		    ivb_map_fd(ivs_client_shm_fd(&w.peer), ivs_client_shm_size(&w.peer),
			       w.cfg.server_socket, &w.map, err, sizeof(err))) {
			fprintf(stderr, PROG ": shared memory from %s: %s\n", w.cfg.server_socket,
				ivs_client_shm_size(&w.peer) < IVB_PAYLOAD_OFFSET * 2 ? "too small" : err);
			return 1;
		}
		w.cfg.shm_path = "(from the ivshmem server)";
	} else if (ivb_map_file(w.cfg.shm_path, IVB_PAYLOAD_OFFSET, &w.map, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	w.hdr = w.map.base;
	capacity = w.map.size - IVB_PAYLOAD_OFFSET;
	for (i = 0; w.cfg.run_bandwidth && i < w.cfg.nframes; i++) {
		if (w.cfg.frames[i].bytes > capacity)
			die_usage("frame %s (%llu bytes) does not fit in %s: %zu bytes of shared memory "
				  "leave %llu for a frame; use a larger IVSHMEM_SHM_SIZE",
				  w.cfg.frames[i].name, (unsigned long long)w.cfg.frames[i].bytes,
				  w.cfg.shm_path, w.map.size, (unsigned long long)capacity);
	}
	if (mkdir(w.cfg.results_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, PROG ": %s: %s\n", w.cfg.results_dir, strerror(errno));
		return 1;
	}
	if (w.cfg.cpu >= 0 && (rc = ivb_pin_self(w.cfg.cpu)) < 0)
		fprintf(stderr, PROG ": cannot pin to CPU %d: %s (continuing unpinned)\n", w.cfg.cpu,
			strerror(-rc));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	strftime(w.start_time, sizeof(w.start_time), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(w.status, sizeof(w.status), "running");
	write_run_json(&w);

	if (open_session(&w)) {
		fprintf(stderr, PROG ": %s\n", w.status);
		write_run_json(&w);
		return 1;
	}
	if (!w.cfg.quiet)
		printf(PROG " %s, %s mode: guest_reader attached (guest pid %u), shared memory %s, "
		       "%zu bytes\n", IVB_VERSION, ivb_mode_name(w.mode), w.hdr->guest_pid,
		       w.cfg.shm_path, w.map.size);
	snprintf(w.status, sizeof(w.status), "complete");
	if (w.cfg.watch_tid) {
		w.idle_cpu_pct = idle_cpu_percent(w.cfg.watch_tid);
		if (!w.cfg.quiet)
			printf("vCPU thread %d while the guest waits: %.1f%% of a CPU\n", w.cfg.watch_tid,
			       w.idle_cpu_pct);
	}
	if (w.cfg.run_latency) {
		if (!w.cfg.quiet)
			printf("latency: %ld round trips after %ld warm-up\n", w.cfg.iterations,
			       w.cfg.warmup);
		failed = run_latency(&w) != 0;
	}
	if (!failed && w.cfg.run_bandwidth) {
		if (!w.cfg.quiet)
			printf("bandwidth: %ld transfers per frame size\n", w.cfg.frame_iterations);
		failed = run_bandwidth(&w) != 0;
		if (!failed && w.frames_failed)
			snprintf(w.status, sizeof(w.status), "%ld of %ld frames failed verification",
				 w.frames_failed, w.frames_failed + w.frames_ok);
	}
	if (!failed)
		close_session(&w);
	write_run_json(&w);
	if (!w.cfg.quiet) {
		print_summary(&w);
	}
	if (failed || w.frames_failed) {
		fprintf(stderr, PROG ": %s\n", w.status);
		return interrupted ? 130 : 1;
	}
	ivb_unmap(&w.map);
	ivs_client_close(&w.peer);
	return 0;
}
