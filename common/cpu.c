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

/*
 * Watch thread tid for a second (while the guest it runs has nothing to
 * do): the share of that second it spent on a CPU (from /proc, in clock
 * ticks), or -1 when it cannot be read.
 */
double ivb_thread_cpu_percent(int tid)
{
	char path[64];
	unsigned long long t[2];
	uint64_t start = 0, elapsed = 1;
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
