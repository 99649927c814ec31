/*
 * eventfd_pingpong - the floor for any interrupt-style wake-up on this
 * host: two threads, pinned to two CPUs, hand a token back and forth
 * through a pair of eventfds, each sleeping in read() until woken. A
 * doorbell round trip (guest interrupt + host eventfd wake-up) cannot be
 * faster than this. Prints the usual summary and, with -o DIR, writes
 * DIR/run.json with the same "latency" object host_writer writes, so the
 * benchmark can put them side by side.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cli.h"
#include "cpu.h"
#include "results.h"
#include "stats.h"
#include "timing.h"
#include "version.h"

#define PROG "eventfd_pingpong"

struct pingpong {
	int ping;   /* main thread -> partner */
	int pong;   /* partner -> main thread */
	long total; /* round trips including warm-up */
	int cpu;    /* partner's CPU */
};

static void die(const char *what)
{
	fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
	exit(1);
}

static void wait_fd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) != sizeof(v))
		if (errno != EINTR)
			die("read");
}

static void ring_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		die("write");
}

static void *partner(void *arg)
{
	struct pingpong *p = arg;
	long i;

	ivb_pin_self(p->cpu);
	for (i = 0; i < p->total; i++) {
		wait_fd(p->ping);
		ring_fd(p->pong);
	}
	return NULL;
}

/* run.json: provenance, the CPUs and the same "latency" object host_writer writes. */
struct report {
	int cpu_a, cpu_b;
	const struct ivb_summary *s;
};

static void report_json(struct ivb_json *j, void *arg)
{
	const struct report *r = arg;
	long long cpus[2] = { r->cpu_a, r->cpu_b };
	char now[32];

	ivb_utc_now(now, sizeof(now));
	ivb_json_provenance(j);
	ivb_json_str(j, "target", "eventfd-pingpong");
	ivb_json_str(j, "status", "complete");
	ivb_json_str(j, "end_time", now);
	ivb_json_ints(j, "cpus", cpus, 2);
	ivb_json_summary(j, "latency", r->s);
}

int main(int argc, char **argv)
{
	long n = 100000, warmup = 1000, i;
	int cpu_a = 0, cpu_b = ivb_cpu_count() > 1 ? 1 : 0, c;
	const char *out = NULL;
	struct pingpong p;
	struct ivb_summary s;
	pthread_t t;
	uint64_t *v;

	ivb_cli_init(PROG);
	while ((c = getopt(argc, argv, "n:w:a:b:o:hV")) != -1) {
		switch (c) {
		case 'n': n = (long)ivb_opt_count("-n", optarg, 1, 1000000000); break;
		case 'w': warmup = (long)ivb_opt_count("-w", optarg, 0, 1000000000); break;
		case 'a': cpu_a = ivb_opt_cpu("-a", optarg, 0); break;
		case 'b': cpu_b = ivb_opt_cpu("-b", optarg, 0); break;
		case 'o': out = optarg; break;
		case 'V': printf(PROG " " IVB_VERSION "\n"); return 0;
		case 'h':
			printf("Usage: " PROG " [-n ROUND_TRIPS (100000)] [-w WARMUP (1000)] "
			       "[-a CPU (0)] [-b CPU (1)] [-o DIR]\n");
			return 0;
		default: ivb_bad_option();
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	v = calloc((size_t)n, sizeof(*v));
	p.ping = eventfd(0, EFD_CLOEXEC);
	p.pong = eventfd(0, EFD_CLOEXEC);
	if (!v || p.ping < 0 || p.pong < 0)
		die("setup");
	p.total = warmup + n;
	p.cpu = cpu_b;
	ivb_pin_self(cpu_a);
	if (pthread_create(&t, NULL, partner, &p))
		die("pthread_create");
	for (i = 0; i < p.total; i++) {
		uint64_t t0 = ivb_now_ns();

		ring_fd(p.ping);
		wait_fd(p.pong);
		if (i >= warmup)
			v[i - warmup] = ivb_now_ns() - t0;
	}
	pthread_join(t, NULL);
	ivb_summarize(v, (size_t)n, &s);
	printf("eventfd round trip, CPUs %d and %d, %ld samples: min %.2f p50 %.2f p90 %.2f "
	       "p99 %.2f p99.9 %.2f max %.2f us\n", cpu_a, cpu_b, n, s.min / 1e3, s.p50 / 1e3,
	       s.p90 / 1e3, s.p99 / 1e3, s.p999 / 1e3, s.max / 1e3);
	if (out) {
		struct ivb_results res;
		struct report r = { cpu_a, cpu_b, &s };

		if (ivb_results_open(&res, out, NULL) || ivb_results_write_json(&res, report_json, &r))
			ivb_die("%s", ivb_results_error(&res));
	}
	free(v);
	return 0;
}
