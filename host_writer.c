/*
 * host_writer - the initiator of ivshmem-bench.
 *
 * Attaches to the shared memory (attach.h: a file QEMU's ivshmem-plain
 * device shares, the ivshmem server as a doorbell peer, or, inside a guest,
 * the PCI device itself), opens a session, waits for a responder
 * (guest_reader) to attach, and runs the chosen workloads (workloads/: the
 * latency ping-pong and the verified frame transfers) through the
 * two-phase acknowledgement of common/session.h.
 *
 * Results go to the results directory as they are measured (results.h):
 * one CSV file per workload and run.json, describing the run (version,
 * mode, host, settings, the --meta pairs the caller adds) and whether it
 * completed. Every wait has a deadline: on a timeout the program names the
 * message and the state it saw, keeps what it measured, and exits 1; so it
 * does when the shared memory shrinks under it or a result cannot be
 * written. Exit status 2 means bad options or sizes that do not fit.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "attach_server.h"
#include "cli.h"
#include "cpu.h"
#include "ivshmem_client.h"
#include "results.h"
#include "session.h"
#include "timing.h"
#include "version.h"
#include "workload.h"

#define PROG "host_writer"

/* Defaults, printed by --help. */
#define DEFAULT_SHM "/dev/shm/ivshmem"
#define DEFAULT_RESULTS "results"
#define DEFAULT_TIMEOUT "10s"
#define DEFAULT_CPU "0"
#define DEFAULT_VECTORS "2"
#define MAX_WORKLOADS 16
#define MAX_META 32
#define MAX_OPTIONS 64

struct config {
	struct ivb_attach_opts attach; /* where the shared memory is */
	const char *server_socket;  /* doorbell on the host: the ivshmem server's socket */
	unsigned vectors;           /* doorbell: vectors per peer */
	const char *results_dir;    /* where CSV and JSON files go */
	int selected[MAX_WORKLOADS]; /* run workload i */
	void *state[MAX_WORKLOADS]; /* workload i's settings and results */
	uint64_t timeout_ns;        /* deadline of every wait */
	int cpu;                    /* pin to this CPU, -1 for none */
	int watch_tid;              /* thread (QEMU vCPU) whose idle CPU time to record, 0 off */
	const char *meta[MAX_META]; /* KEY=VALUE pairs for run.json */
	int nmeta;
	int quiet;                  /* no progress output */
	const char *wait;           /* wait policy: spin, sleep, hybrid:DUR */
	uint64_t spin_ns;           /* its waiter.h spin_ns */
};

struct writer {
	struct config cfg;
	struct ivb_endpoint ep;     /* shared memory and waiter */
	struct ivb_initiator ini;   /* the session */
	struct ivb_results res;     /* the results directory */
	double idle_cpu_pct;        /* CPU use of watch_tid while the guest waits, -1 unknown */
	char start_time[32];        /* ISO 8601, UTC */
	char status[600];           /* run.json's: "running" until the end, then "complete" or failure */
	char failure[600];          /* what went wrong first, "" while nothing has */
	int outcome;                /* worst enum ivb_wl_outcome so far */
	int save_failed;            /* run.json could not be written: said once */
};

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options]\n"
		"Measure latency and frame bandwidth to guest_reader over ivshmem shared memory.\n\n"
		"  -s, --shm PATH            shared-memory file (default " DEFAULT_SHM ")\n"
		"      --shm-any-fs          accept a --shm file outside tmpfs and hugetlbfs\n"
		"  -d, --doorbell SOCKET     doorbell mode on the host: be a peer of the ivshmem\n"
		"                            server at SOCKET (shared memory and eventfds from it)\n"
		"      --vectors N           doorbell: vectors per peer (default " DEFAULT_VECTORS ")\n"
		"      --shm-fd N            map inherited descriptor N (a memfd) instead\n"
		"      --device BDF          in a guest: the ivshmem PCI device (default: the first)\n"
		"      --bar-map uc|wc|vfio  in a guest: map BAR2 through resource2 (uc, the default),\n"
		"                            resource2_wc (wc, write-combining) or VFIO (vfio)\n"
		"      --vfio                in a guest: the doorbell device through VFIO\n"
		"      --sysfs DIR           PCI device directory (default " IVB_DEFAULT_SYSFS ")\n"
		"  -o, --output DIR          results directory (default " DEFAULT_RESULTS ")\n"
		"  -t, --test WHICH          workloads to run, comma-separated, default or all\n"
		"                            (default: default, the latency and frames tests)\n"
		"  -T, --timeout DUR         deadline of every wait (default " DEFAULT_TIMEOUT ")\n"
		"  -c, --cpu N|none          pin to CPU N (default " DEFAULT_CPU ")\n"
		"      --wait POLICY         doorbell mode: spin, sleep or hybrid:DUR (spin DUR, then\n"
		"                            sleep) on both sides (default sleep; polling spins)\n"
		"      --watch-thread TID    record the CPU use of thread TID (QEMU's vCPU) while\n"
		"                            the guest waits\n"
		"  -m, --meta KEY=VALUE      add to run.json (repeatable)\n"
		"  -q, --quiet               no progress output\n"
		"      --schema              print each workload's results file and columns, and exit\n"
		"  -h, --help                this text\n"
		"  -V, --version             print the version\n");
	ivb_workloads_usage(out);
	fprintf(out, "\nSizes take k, M, G suffixes; counts k, M; durations ns, us, ms, s, m "
		"(default unit: seconds, ns for --gap).\n"
		"Exit status: 0 all verified, 1 timeout, failed frames or unwritable results,\n"
		"2 bad options, 128+N stopped by signal N (INT 130, HUP 129, TERM 143).\n");
}

enum { OPT_WATCH = 1000, OPT_SCHEMA, OPT_WAIT };

/* Keys run.json has of its own, which --meta may not repeat. */
/* run.json's top-level members written in run_json() below. */
static const char *const writer_json_keys[] = {
	"mode", "status", "start_time", "end_time", "shm_path", "shm_size", "writer_cpu", "wait",
	"wait_policy", "timeout_ns", "guest_pid", "guest_wait", "server_socket", "vectors",
	"host_peer_id", "guest_peer_id", "vcpu_idle_cpu_percent", NULL,
};

/* Every member run.json has of its own: those of results.c, these and each
 * workload's. run.json is checked against them as it is written (struct
 * ivb_json), and --meta may not take one. */
static const char *const *const *json_keys(void)
{
	static const char *const *lists[4 + MAX_WORKLOADS];
	int n = 0, i;

	if (!lists[0]) {
		lists[n++] = ivb_json_own_keys;
		lists[n++] = ivb_json_provenance_keys;
		lists[n++] = writer_json_keys;
		for (i = 0; ivb_workloads[i]; i++)
			lists[n++] = ivb_workloads[i]->json_keys;
		lists[n] = NULL;
	}
	return lists;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option base[] = {
		IVB_ATTACH_OPTIONS,
		{ "doorbell", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "test", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "watch-thread", required_argument, NULL, OPT_WATCH },
		{ "meta", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "schema", no_argument, NULL, OPT_SCHEMA },
		{ "wait", required_argument, NULL, OPT_WAIT },
		IVB_CLI_OPTIONS,
	};
	struct option opts[MAX_OPTIONS];
	char shorts[128] = "s:d:o:t:T:c:m:qhV";
	size_t nopts = sizeof(base) / sizeof(base[0]);
	int c;

	*cfg = (struct config){ .results_dir = DEFAULT_RESULTS };
	cfg->attach.sysfs_root = IVB_DEFAULT_SYSFS;
	cfg->vectors = (unsigned)ivb_opt_count("--vectors", DEFAULT_VECTORS, 1, IVS_CLIENT_MAX_VECTORS);
	cfg->cpu = ivb_opt_cpu("--cpu", DEFAULT_CPU, 1);
	cfg->timeout_ns = ivb_opt_duration("--timeout", DEFAULT_TIMEOUT, 1000000000ull, 0, ~0ull, "");
	memcpy(opts, base, sizeof(base));
	ivb_workloads_init(cfg->state, cfg->selected);
	ivb_workloads_options(opts, &nopts, MAX_OPTIONS, shorts, sizeof(shorts));
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (ivb_attach_option(&cfg->attach, c, optarg)) {
			if (c == IVB_OPT_VECTORS)
				cfg->vectors = (unsigned)cfg->attach.vectors;
			continue;
		}
		switch (c) {
		case 'd': cfg->server_socket = optarg; break;
		case 'o': cfg->results_dir = optarg; break;
		case 't': ivb_workloads_select(optarg, cfg->selected); break;
		case 'T':
			cfg->timeout_ns = ivb_opt_duration("--timeout", optarg, 1000000000ull, 1000000ull,
							   3600000000000ull, "1ms..1h (e.g. 10s)");
			break;
		case 'c': cfg->cpu = ivb_opt_cpu("--cpu", optarg, 1); break;
		case OPT_WATCH: cfg->watch_tid = (int)ivb_opt_count("--watch-thread", optarg, 1, 1 << 30); break;
		case 'm':
			ivb_opt_meta("--meta", optarg, json_keys());
			if (cfg->nmeta == MAX_META)
				ivb_die_usage("--meta: at most %d entries", MAX_META);
			cfg->meta[cfg->nmeta++] = optarg;
			break;
		case 'q': cfg->quiet = 1; break;
		case OPT_SCHEMA: ivb_workloads_schema(stdout); exit(0);
		case OPT_WAIT:
			cfg->wait = optarg;
			cfg->spin_ns = ivb_opt_wait_policy("--wait", optarg);
			break;
		default:
			ivb_cli_option(c, usage);
			if (ivb_workloads_option(c, optarg, cfg->state))
				break;
			ivb_bad_option();
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	if (!!cfg->attach.shm_path + !!cfg->attach.shm_fd_given + !!cfg->server_socket +
	    (cfg->attach.bdf || cfg->attach.vfio) > 1)
		ivb_die_usage("--shm, --shm-fd, --doorbell and --device/--vfio exclude each other");
	if (cfg->attach.bar_map_given && !cfg->attach.bdf && !cfg->attach.vfio && cfg->server_socket)
		ivb_die_usage("--bar-map is how a guest maps the PCI device's BAR2; not with --doorbell");
	if (!cfg->server_socket && !cfg->attach.bdf && !cfg->attach.vfio && !cfg->attach.shm_path &&
	    !cfg->attach.shm_fd_given && !cfg->attach.bar_map_given)
		cfg->attach.shm_path = DEFAULT_SHM;
	if (!cfg->wait) {
		cfg->wait = cfg->server_socket || cfg->attach.vfio ? "sleep" : "spin";
		cfg->spin_ns = ivb_opt_wait_policy("--wait", cfg->wait);
	} else if (!cfg->server_socket && !cfg->attach.vfio && strcmp(cfg->wait, "spin"))
		ivb_die_usage("--wait %s needs a doorbell (--doorbell or --vfio); polling only spins",
			      cfg->wait);
}

/* ------------------------------------------------------------------ */
/* run.json                                                            */
/* ------------------------------------------------------------------ */

static void run_json(struct ivb_json *j, void *arg)
{
	const struct writer *w = arg;
	const struct config *c = &w->cfg;
	char now[32];
	int i;

	ivb_utc_now(now, sizeof(now));
	ivb_json_provenance(j);
	ivb_json_str(j, "mode", ivb_mode_name(ivb_waiter_mode(&w->ep.waiter)));
	ivb_json_str(j, "status", w->status);
	ivb_json_str(j, "start_time", w->start_time);
	ivb_json_str(j, "end_time", now);
	ivb_json_str(j, "shm_path", w->ep.describe);
	ivb_json_uint(j, "shm_size", w->ep.map.size);
	ivb_json_int(j, "writer_cpu", c->cpu);
	ivb_json_str(j, "wait", ivb_waiter_name(&w->ep.waiter));
	ivb_json_str(j, "wait_policy", c->wait);
	for (i = 0; ivb_workloads[i]; i++)
		ivb_workloads[i]->json(c->state[i], j, c->selected[i]);
	ivb_json_uint(j, "timeout_ns", c->timeout_ns);
	ivb_json_uint(j, "guest_pid", w->ini.attached ? w->ini.responder_pid : 0);
	ivb_json_str(j, "guest_wait", w->ini.attached ? ivb_mode_name(w->ini.responder_wait) : "unknown");
	if (w->ep.waiter.ops) {
		if (c->server_socket)
			ivb_json_str(j, "server_socket", c->server_socket);
		ivb_json_uint(j, "vectors", c->vectors);
		ivb_json_uint(j, "host_peer_id", w->ep.waiter.self_id);
		ivb_json_uint(j, "guest_peer_id", w->ini.peer);
	}
	if (w->idle_cpu_pct >= 0)
		ivb_json_num(j, "vcpu_idle_cpu_percent", w->idle_cpu_pct, 1);
	for (i = 0; i < c->nmeta; i++)
		ivb_json_meta(j, c->meta[i]);
}

/* Write run.json; a failure ends the run with status 1 (the caller's exit). */
static int save(struct writer *w)
{
	if (ivb_results_write_json(&w->res, run_json, w) == 0)
		return 0;
	if (!w->save_failed++) /* once: a full disk is one line, however often it is retried */
		ivb_warn("cannot write the results: %s", ivb_results_error(&w->res));
	if (!w->failure[0])
		snprintf(w->failure, sizeof(w->failure), "cannot write the results: %s",
			 ivb_results_error(&w->res));
	return -1;
}

/* A new results file: list it in run.json now, so a run that dies mid-phase owns it. */
static void save_quietly(void *arg)
{
	struct writer *w = arg;

	ivb_results_write_json(&w->res, run_json, w); /* an error is kept; the phase's end reports it */
}

/* The end of a phase: its rows are on disk, and run.json lists them. */
static int save_phase(void *arg)
{
	return save(arg);
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

/* The session and its workloads; run under the bus-error guard. */
static int run_session(void *arg)
{
	struct writer *w = arg;
	struct config *c = &w->cfg;
	struct ivb_wl_ctx ctx = { .ini = &w->ini, .res = &w->res, .quiet = c->quiet,
				  .status = w->failure, .status_len = sizeof(w->failure),
				  .responder_spin_ns = c->spin_ns, .wait_name = c->wait,
				  .watch_tid = c->watch_tid };

	if (ivb_initiator_open(&w->ini)) {
		snprintf(w->failure, sizeof(w->failure), "%s", w->ini.status);
		ivb_initiator_abort(&w->ini);
		w->outcome = IVB_WL_STOPPED;
		return -1;
	}
	if (!c->quiet)
		printf(PROG " %s, %s mode: guest_reader attached (guest pid %u), shared memory %s, "
		       "%zu bytes\n", IVB_VERSION, ivb_mode_name(ivb_waiter_mode(&w->ep.waiter)),
		       w->ini.hdr->guest_pid, w->ep.describe, w->ep.map.size);
	if (c->watch_tid) {
		w->idle_cpu_pct = ivb_thread_cpu_percent(c->watch_tid);
		if (!c->quiet)
			printf("vCPU thread %d while the guest waits: %.1f%% of a CPU\n", c->watch_tid,
			       w->idle_cpu_pct);
	}
	w->outcome = ivb_workloads_run(c->state, c->selected, &ctx, save_phase, w);
	if (w->outcome == IVB_WL_STOPPED) {
		ivb_initiator_abort(&w->ini); /* the responder must not wait out a dead point */
		return 0;
	}
	if (ivb_initiator_close(&w->ini)) {
		/* Every row is on disk, but a second writer was in the session:
		 * the run cannot say "complete". */
		size_t n = strlen(w->failure);

		snprintf(w->failure + n, sizeof(w->failure) - n, "%s%s", n ? "; and " : "",
			 w->ini.status);
		w->outcome = IVB_WL_ERRORS;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct writer w;
	const char *stale[2 * MAX_WORKLOADS + 1] = { 0 };
	char err[1200];
	long long shrunk_to = -1;
	int i, rc;

	ivb_cli_init(PROG);
	/* Before anything is attached or removed: a signal from here on ends
	 * the run through its status, never half-way through a set-up. */
	ivb_cli_catch_signals();
	parse_args(argc, argv, &w.cfg);
	w.idle_cpu_pct = -1;
	if (w.cfg.server_socket)
		rc = ivb_attach_server(w.cfg.server_socket, w.cfg.vectors,
				       (int)(w.cfg.timeout_ns / 1000000ull), IVB_PAYLOAD_OFFSET * 2,
				       &w.ep, err, sizeof(err));
	else
		rc = ivb_attach(&w.cfg.attach, IVB_PAYLOAD_OFFSET, &w.ep, err, sizeof(err));
	if (rc)
		ivb_die("%s", err);
	w.ep.waiter.spin_ns = w.cfg.spin_ns;
	ivb_initiator_init(&w.ini, w.ep.map.base, w.ep.map.size, &w.ep.waiter, w.cfg.timeout_ns);
	for (i = 0; ivb_workloads[i]; i++) {
		if (w.cfg.selected[i] && ivb_workloads[i]->check)
			ivb_workloads[i]->check(w.cfg.state[i], w.ini.capacity, w.ep.describe);
		stale[2 * i] = ivb_workloads[i]->csv->file;
		stale[2 * i + 1] = ivb_workloads[i]->csv2 ? ivb_workloads[i]->csv2->file : "";
	}
	if (ivb_results_open(&w.res, w.cfg.results_dir, stale))
		ivb_die("%s", ivb_results_error(&w.res));
	w.res.json_keys = json_keys();
	w.res.on_new_file = save_quietly;
	w.res.on_new_file_arg = &w;
	if (w.cfg.cpu >= 0 && (rc = ivb_pin_self(w.cfg.cpu)) < 0)
		ivb_warn("cannot pin to CPU %d: %s (continuing unpinned)", w.cfg.cpu, strerror(-rc));
	ivb_utc_now(w.start_time, sizeof(w.start_time));
	snprintf(w.status, sizeof(w.status), "running");
	if (save(&w))
		return 1;

	if (ivb_guarded_run(&w.ep, run_session, &w, &shrunk_to)) {
		if (shrunk_to >= 0) {
			snprintf(w.failure, sizeof(w.failure), "shared memory shrank to %lld bytes during "
				 "message %llu", shrunk_to, (unsigned long long)w.ini.seq);
			w.outcome = IVB_WL_STOPPED;
			/* The rows measured so far are still in the workload's buffer;
			 * what reached the disk is what run.json lists. */
			for (i = 0; i < w.res.ncsv; i++)
				ivb_csv_close(&w.res.csv[i]);
		}
	}
	snprintf(w.status, sizeof(w.status), "%s",
		 w.outcome == IVB_WL_COMPLETE ? "complete" : w.failure[0] ? w.failure : "failed");
	if (save(&w))
		return 1;
	if (!w.cfg.quiet) {
		for (i = 0; ivb_workloads[i]; i++)
			if (w.cfg.selected[i] && ivb_workloads[i]->print)
				ivb_workloads[i]->print(w.cfg.state[i], w.cfg.results_dir);
		printf("\nResults in %s/\n", w.cfg.results_dir);
	}
	if (w.outcome != IVB_WL_COMPLETE) {
		/* A results failure was said when it happened. */
		if (!w.save_failed || strncmp(w.status, "cannot write the results", 24))
			ivb_warn("%s", w.status);
		return ivb_interrupted ? 128 + ivb_interrupted : 1;
	}
	ivb_detach(&w.ep);
	for (i = 0; ivb_workloads[i]; i++)
		free(w.cfg.state[i]);
	return 0;
}
