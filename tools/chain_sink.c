/*
 * chain_sink - the remote receiver of the forwarding chain (chain.h): it
 * maps the shared memory, and for every point an initiator runs with
 * --chain-receiver remote it measures the offset between the two clocks,
 * takes ring B, verifies and times every message, and leaves its counts
 * and latency summary in the shared memory for the initiator's row. In a
 * vm-vm run the host starts it beside the pair (run_test.sh): guest A
 * sends, guest B forwards, the host receives.
 *
 * Where it shares a CPU with a thread that never sleeps (in a vm-vm run,
 * guest A's vCPU), it sleeps 20 us whenever ring B is empty rather than
 * yield: the vCPU then runs, and the scheduler gives the sink the CPU back
 * soon after each wake-up. A yielding sink waits out the vCPU's whole time
 * slice instead (milliseconds): under TCG here, 64 B messages in batches of
 * 16 went from 66,000 to 1.6 million a second, and a single message in
 * flight from 141 to 11,800.
 *
 * Exit statuses: 0 after a stop signal or --idle without a point, 1 when
 * the shared memory cannot be mapped or holds no chain, 2 bad usage.
 */
#include <getopt.h>
#include <stdlib.h>

#include "chain.h"
#include "cli.h"
#include "cpu.h"
#include "shm_map.h"
#include "timing.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: chain_sink --shm PATH [options]\n"
		"The receiving end of a chain run elsewhere with --chain-receiver remote.\n"
		"  -s, --shm PATH        the shared-memory file (plain mode)\n"
		"      --cpu N|none      receive on CPU N (default none)\n"
		"      --probe-cpu N|none  measure the clocks' offset on CPU N, one where the sender\n"
		"                        can answer at once (default none: where it receives)\n"
		"      --idle DUR        exit after this long without a point (default 0: only on a signal)\n"
		"      --timeout DUR     longest wait within a point (default 30s)\n"
		"      --idle-sleep DUR  sleep DUR each time ring B is empty (default 20us), so a\n"
		"                        busy thread it shares a CPU with runs, and it is woken soon\n"
		"                        after; 0: yield the CPU instead (with --no-yield: spin)\n"
		"      --no-yield        with --idle-sleep 0, spin while ring B is empty\n"
		"  -q, --quiet           no line per point\n"
		"  -h, --help            this help\n"
		"  -V, --version         the version\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "probe-cpu", required_argument, NULL, 'p' },
		{ "idle", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-yield", no_argument, NULL, 'y' },
		{ "idle-sleep", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		IVB_CLI_OPTIONS,
		{ 0 },
	};
	struct ivb_chain_sink_opts o = { .timeout_ns = 30000000000ull, .poll_ns = 200000,
					 .yield = 1, .idle_sleep_ns = 20000, .say = stdout, .cpu = -1,
					 .probe_cpu = -1 };
	const char *shm = NULL;
	struct ivb_map m;
	char err[512];
	int c, n;

	ivb_cli_init("chain_sink");
	while ((c = getopt_long(argc, argv, "s:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': shm = optarg; break;
		case 'c': o.cpu = ivb_opt_cpu("--cpu", optarg, 1); break;
		case 'p': o.probe_cpu = ivb_opt_cpu("--probe-cpu", optarg, 1); break;
		case 'i':
			o.idle_ns = ivb_opt_duration("--idle", optarg, 1000000000ull, 0, 86400000000000ull,
						     "0..24h (e.g. 60s)");
			break;
		case 't':
			o.timeout_ns = ivb_opt_duration("--timeout", optarg, 1000000000ull, 1000000ull,
							3600000000000ull, "1ms..1h (e.g. 30s)");
			break;
		case 'y': o.yield = 0; break;
		case 'l':
			o.idle_sleep_ns = ivb_opt_duration("--idle-sleep", optarg, 1000ull, 0,
							   1000000000ull, "0..1s (e.g. 20us)");
			break;
		case 'q': o.say = NULL; break;
		default: ivb_cli_option(c, usage);
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	if (!shm)
		ivb_die_usage("--shm PATH is required (the plain-mode shared-memory file)");
	ivb_cli_catch_signals();
	if (o.cpu >= 0 && ivb_pin_self(o.cpu))
		ivb_warn("cannot pin to CPU %d: left where the kernel puts it", o.cpu);
	if (ivb_map_file(shm, 0, 0, &m, err, sizeof(err)))
		ivb_die("%s", err);
	n = ivb_chain_sink(m.base, m.size, &o);
	ivb_unmap(&m);
	if (n < 0)
		ivb_die("%s: %zu bytes cannot hold a chain", shm, m.size);
	if (o.say)
		fprintf(o.say, "chain_sink: %d point(s) served; %s\n", n,
			ivb_interrupted ? "stopped by a signal" : "idle");
	return 0;
}
