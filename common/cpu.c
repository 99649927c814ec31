/*
 * cpu.c - thread pinning and CPU description.
 */
#include "cpu.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
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

double ivb_thread_cpu_ticks(int tid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
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
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st);
}

long ivb_clock_ticks_per_s(void)
{
	return sysconf(_SC_CLK_TCK);
}

double ivb_thread_cpu_percent(int tid)
{
	double t0 = ivb_thread_cpu_ticks(tid), t1;
	uint64_t start = ivb_now_ns(), elapsed;

	if (t0 < 0)
		return -1;
	ivb_sleep_ns(1000000000ull);
	elapsed = ivb_now_ns() - start;
	t1 = ivb_thread_cpu_ticks(tid);
	if (t1 < 0)
		return -1;
	return 100.0 * (t1 - t0) / (double)ivb_clock_ticks_per_s() / ((double)elapsed / 1e9);
}
