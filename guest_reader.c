/*
 * guest_reader - the responder of ivshmem-bench.
 *
 * Runs inside the VM on BAR2 of the ivshmem device (found by PCI vendor and
 * device id), or on the host against the shared-memory file (--shm), so the
 * protocol can be tested, and a host-only baseline measured, without a VM.
 *
 * It is a small server: it waits for an initiator to open a session in the
 * shared-memory header, attaches to it, answers every message with the
 * two-phase acknowledgement (common/session.h: RECEIVED at once, then
 * PROCESSED or ERROR), handing each message to the workload that serves
 * its command (workloads/), and goes back to waiting when the initiator
 * sends STOP or falls silent.
 *
 * In doorbell mode (--doorbell, or --vfio) the device is opened through
 * VFIO: the guest sleeps on an eventfd that MSI-X vector 0 signals, and
 * rings the initiator's peer id through the Doorbell register after each
 * acknowledgement, so no side spins.
 *
 * Shared memory is untrusted input: the header fields of each message are
 * copied once, every size is checked against this side's own mapping, and
 * anything inconsistent is answered with an ERROR state rather than used.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "cli.h"
#include "cpu.h"
#include "session.h"
#include "version.h"
#include "workload.h"

#define PROG "guest_reader"
#define DEFAULT_SILENCE "60s" /* detach when an attached initiator says nothing this long */
#define READY_TOKEN "IVB-GUEST-READY"
#define FAILED_TOKEN "IVB-GUEST-FAILED"
#define EXIT_NO_ATTACH 4 /* cannot attach as asked: starting again will not help */

struct config {
	struct ivb_attach_opts attach; /* where the shared memory is */
	uint64_t silence_ns;    /* initiator silence before detaching */
	uint64_t idle_limit_ns; /* exit when no session opens this long (0: never) */
	int cpu;                /* pin to this CPU, or -1 */
	int once;               /* exit after one session */
	long exit_after;        /* fault injection: exit after this many messages (-1: off) */
	int verbose;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options]\n"
		"Answer ivshmem-bench messages from the initiator in shared memory.\n\n"
		"  -s, --shm PATH          map this file instead of the ivshmem PCI device\n"
		"      --shm-any-fs        accept a --shm file outside tmpfs and hugetlbfs\n"
		"      --shm-fd N          map inherited descriptor N (a memfd) instead\n"
		"  -d, --device BDF        PCI address of the device (default: first %04x:%04x)\n"
		"      --bar-map uc|wc|vfio  how to map the device's BAR2: resource2, uncached (uc,\n"
		"                          the default), resource2_wc, write-combining (wc), or\n"
		"                          VFIO's region 2 (vfio: the device bound to vfio-pci)\n"
		"      --sysfs DIR         PCI device directory (default " IVB_DEFAULT_SYSFS ")\n"
		"  -S, --silence DUR       detach after the initiator is silent this long (default " DEFAULT_SILENCE ")\n"
		"  -i, --idle-exit DUR     exit with status 3 when no session opens this long\n"
		"                          (default: wait for ever)\n"
		"  -1, --once              exit after serving one session\n"
		"      --doorbell, --vfio  open the device through VFIO and wait for MSI-X\n"
		"                          interrupts instead of polling (ivshmem-doorbell)\n"
		"      --vectors N         MSI-X vectors to enable (default: all, at most %d)\n"
		"  -c, --cpu N             pin to CPU N (default: no pinning)\n"
		"      --exit-after N      fault injection: exit after answering N messages\n"
		"  -v, --verbose           log every session and error\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"Durations take ns, us, ms, s, m suffixes (default unit: seconds).\n"
		"Exit status: 0 done, 1 an error, 2 bad options, 3 idle, 4 cannot attach (after\n"
		"a line " FAILED_TOKEN " and why on stdout).\n",
		IVB_PCI_VENDOR, IVB_PCI_DEVICE, IVB_VFIO_MAX_VECTORS);
}

enum { OPT_EXIT_AFTER = 1000 };

static void parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		IVB_ATTACH_OPTIONS,
		{ "doorbell", no_argument, NULL, IVB_OPT_VFIO },
		{ "silence", required_argument, NULL, 'S' },
		{ "idle-exit", required_argument, NULL, 'i' },
		{ "once", no_argument, NULL, '1' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "exit-after", required_argument, NULL, OPT_EXIT_AFTER },
		{ "verbose", no_argument, NULL, 'v' },
		IVB_CLI_OPTIONS,
		{ 0 }
	};
	int c;

	*cfg = (struct config){ .attach.sysfs_root = IVB_DEFAULT_SYSFS, .cpu = -1, .exit_after = -1 };
	cfg->silence_ns = ivb_opt_duration("--silence", DEFAULT_SILENCE, 1000000000ull, 1, ~0ull, "");
	while ((c = getopt_long(argc, argv, "s:d:S:i:1c:vhV", opts, NULL)) != -1) {
		if (ivb_attach_option(&cfg->attach, c == 'd' ? IVB_OPT_DEVICE : c, optarg))
			continue;
		if (cfg->attach.vectors > IVB_VFIO_MAX_VECTORS)
			ivb_die_usage("--vectors: at most %d in a guest", IVB_VFIO_MAX_VECTORS);
		switch (c) {
		case 'S':
			cfg->silence_ns = ivb_opt_duration("--silence", optarg, 1000000000ull, 1,
							   1000000000000000000ull, "1ns..31y (e.g. 60s)");
			break;
		case 'i':
			cfg->idle_limit_ns = ivb_opt_duration("--idle-exit", optarg, 1000000000ull, 1,
							      1000000000000000000ull, "1ns..31y (e.g. 30s)");
			break;
		case '1': cfg->once = 1; break;
		case 'c': cfg->cpu = ivb_opt_cpu("--cpu", optarg, 0); break;
		case OPT_EXIT_AFTER:
			cfg->exit_after = (long)ivb_opt_count("--exit-after", optarg, 0, 1000000000000ull);
			break;
		case 'v': cfg->verbose = 1; break;
		default: ivb_cli_option(c, usage);
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	if (cfg->attach.shm_path && cfg->attach.bdf)
		ivb_die_usage("--shm and --device exclude each other");
	if (cfg->attach.shm_fd_given && (cfg->attach.shm_path || cfg->attach.bdf || cfg->attach.vfio))
		ivb_die_usage("--shm-fd excludes --shm, --device and --doorbell");
	if (cfg->attach.bar_map_given && (cfg->attach.shm_path || cfg->attach.shm_fd_given))
		ivb_die_usage("--bar-map is how a guest maps the PCI device's BAR2; not with --shm or --shm-fd");
	if (cfg->attach.shm_path && cfg->attach.vfio)
		ivb_die_usage("--doorbell needs the PCI device; it excludes --shm");
}

struct reader {
	struct config cfg;
	struct ivb_responder r;
	int status; /* exit status of serve_sessions() */
};

/* Serve sessions until a stop signal, --once, or the idle limit. */
static int serve_sessions(void *arg)
{
	struct reader *rd = arg;

	for (;;) {
		uint64_t s = ivb_responder_wait_session(&rd->r, rd->cfg.idle_limit_ns);

		if (!s && !ivb_interrupted) {
			ivb_warn("no session opened for %.0f s; exiting",
				 (double)rd->cfg.idle_limit_ns / 1e9);
			rd->status = 3;
			return 0;
		}
		if (!s)
			return 0;
		ivb_responder_serve(&rd->r, s);
		if (rd->cfg.once || ivb_interrupted)
			return 0;
	}
}

int main(int argc, char **argv)
{
	static struct reader rd;
	struct ivb_endpoint ep;
	long long shrunk_to = -1;
	char err[1200];
	int i, rc;

	ivb_cli_init(PROG);
	parse_args(argc, argv, &rd.cfg);
	if (rd.cfg.cpu >= 0 && (rc = ivb_pin_self(rd.cfg.cpu)) < 0)
		ivb_warn("cannot pin to CPU %d: %s (continuing unpinned)", rd.cfg.cpu, strerror(-rc));
	ivb_cli_catch_signals();
	if (ivb_attach(&rd.cfg.attach, IVB_PAYLOAD_OFFSET, &ep, err, sizeof(err))) {
		/* On the console too, for the host waiting for readiness: what
		 * cannot attach now will not attach later. */
		printf(FAILED_TOKEN " %s\n", err);
		fflush(stdout);
		ivb_warn("%s", err);
		return EXIT_NO_ATTACH;
	}
	ivb_responder_init(&rd.r, ep.map.base, ep.map.size, &ep.waiter);
	rd.r.silence_ns = rd.cfg.silence_ns;
	rd.r.exit_after = rd.cfg.exit_after;
	rd.r.verbose = rd.cfg.verbose;
	for (i = 0; ivb_workloads[i]; i++) {
		uint32_t cmd = ivb_workloads[i]->command;

		if (cmd < IVB_CMD__COUNT) {
			rd.r.serve[cmd] = ivb_workloads[i]->serve;
			rd.r.accepts[cmd] = 1;
		}
	}
	/* The host records how the guest mapped the memory from this line. */
	printf(READY_TOKEN " %s %zu bytes bar_map %s\n", ep.map.source, ep.map.size, ep.bar_map);
	fflush(stdout);
	if (ivb_guarded_run(&ep, serve_sessions, &rd, &shrunk_to))
		ivb_die("shared memory shrank to %lld bytes under message %llu; exiting", shrunk_to,
			(unsigned long long)rd.r.last_seq + 1);
	free(rd.r.scratch);
	ivb_detach(&ep);
	return rd.status;
}
