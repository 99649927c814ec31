/*
 * timing.c - sleeping, and the cost and source of the clock.
 */
#include "timing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ivb_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void ivb_clock_cost(uint64_t *read_ns, uint64_t *resolution_ns)
{
	enum { N = 1001 };
	uint64_t gap[N], prev = ivb_now_ns(), smallest = UINT64_MAX;
	size_t i, j;

	for (i = 0; i < N; i++) {
		uint64_t now = ivb_now_ns();

		gap[i] = now - prev;
		if (gap[i] && gap[i] < smallest)
			smallest = gap[i];
		prev = now;
	}
	/* Insertion sort: N is small and this runs once. */
	for (i = 1; i < N; i++)
		for (j = i; j > 0 && gap[j - 1] > gap[j]; j--) {
			uint64_t t = gap[j];

			gap[j] = gap[j - 1];
			gap[j - 1] = t;
		}
	*read_ns = gap[N / 2];
	*resolution_ns = smallest == UINT64_MAX ? 0 : smallest;
}

void ivb_clocksource(char *buf, size_t len)
{
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}
