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
#include <sys/stat.h>
#include <unistd.h>

#include "cpu.h"
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

int main(int argc, char **argv)
{
	long n = 100000, warmup = 1000, i;
	int cpu_a = 0, cpu_b = ivb_cpu_count() > 1 ? 1 : 0, c;
	const char *out = NULL;
	struct pingpong p;
	struct ivb_summary s;
	pthread_t t;
	uint64_t *v;

	while ((c = getopt(argc, argv, "n:w:a:b:o:hV")) != -1) {
		switch (c) {
		case 'n': n = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 'a': cpu_a = atoi(optarg); break;
		case 'b': cpu_b = atoi(optarg); break;
		case 'o': out = optarg; break;
		case 'V': printf(PROG " " IVB_VERSION "\n"); return 0;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"Usage: " PROG " [-n ROUND_TRIPS (100000)] [-w WARMUP (1000)] "
				"[-a CPU (0)] [-b CPU (1)] [-o DIR]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (n < 1 || warmup < 0 || cpu_a < 0 || cpu_b < 0 || cpu_a >= ivb_cpu_count() ||
	    cpu_b >= ivb_cpu_count()) {
		fprintf(stderr, PROG ": -n must be >= 1, -w >= 0, CPUs online\n");
		return 2;
	}
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
		char path[4096];
		FILE *f;

		mkdir(out, 0755);
		snprintf(path, sizeof(path), "%s/run.json", out);
		f = fopen(path, "w");
		if (!f)
			die(path);
		fprintf(f, "{\n  \"tool\": \"ivshmem-bench\",\n  \"version\": \"%s\",\n"
			"  \"target\": \"eventfd-pingpong\",\n  \"cpus\": [%d, %d],\n"
			"  \"latency\": {\"count\": %zu, \"min_ns\": %.0f, \"mean_ns\": %.1f, "
			"\"stddev_ns\": %.1f, \"p50_ns\": %.1f, \"p90_ns\": %.1f, \"p99_ns\": %.1f, "
			"\"p999_ns\": %.1f, \"max_ns\": %.0f}\n}\n", IVB_VERSION, cpu_a, cpu_b, s.count,
			s.min, s.mean, s.stddev, s.p50, s.p90, s.p99, s.p999, s.max);
		fclose(f);
	}
	free(v);
	return 0;
}
