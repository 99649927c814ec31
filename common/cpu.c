/*
 * cpu.c - thread pinning and CPU description.
 */
#include "cpu.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

int ivb_pin_self(int cpu)
{
	cpu_set_t set;
	int rc;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return rc ? -rc : 0;
}

int ivb_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

void ivb_cpu_model(char *buf, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = 0;
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

/* Thread tid's CPU time from /proc/TID/stat (user + system, clock ticks) in ns; -1 if unknown. */
static int64_t proc_thread_cpu_ns(int tid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	p = ok ? strrchr(buf, ')') : NULL;
	/* fields after "(comm)": state is 3rd, utime 14th, stime 15th */
	if (!p || hz <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)hz));
}

int64_t ivb_thread_cpu_ns(int tid)
{
	struct timespec ts;

	if (tid && tid != (int)gettid())
		return proc_thread_cpu_ns(tid);
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double ivb_thread_cpu_percent(int tid)
{
	int64_t t0 = ivb_thread_cpu_ns(tid), t1;
	uint64_t start = ivb_now_ns(), elapsed;

	if (t0 < 0)
		return -1;
	ivb_sleep_ns(1000000000ull);
	elapsed = ivb_now_ns() - start;
	t1 = ivb_thread_cpu_ns(tid);
	if (t1 < 0)
		return -1;
	return 100.0 * (double)(t1 - t0) / (double)elapsed;
}
