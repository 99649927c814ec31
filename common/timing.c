/*
 * timing.c - sleeping, and parsing of durations and sizes given on command
 * lines ("10s", "64M"), in the manner of wrk's units.c.
 */
#include "timing.h"

#include <ctype.h>
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

/* Split "12.5ms" into 12.5 and "ms"; -1 when there is no number. */
static int split_number(const char *s, double *value, const char **unit)
{
	char *end;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-')
		return -1;
	errno = 0;
	*value = strtod(s, &end);
	if (errno || end == s || *value < 0)
		return -1;
	*unit = end;
	return 0;
}

int ivb_parse_duration(const char *s, uint64_t default_unit_ns, uint64_t *out_ns)
{
	static const struct { const char *name; double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
		{ "m", 60e9 }, { "h", 3600e9 },
	};
	const char *unit;
	double value, scale = (double)default_unit_ns, ns;

	if (split_number(s, &value, &unit))
		return -1;
	if (*unit) {
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(unit, units[i].name))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -1;
		scale = units[i].ns;
	}
	ns = value * scale;
	if (ns > 1e18)
		return -1;
	*out_ns = (uint64_t)(ns + 0.5);
	return 0;
}

int ivb_parse_size(const char *s, uint64_t *out)
{
	const char *unit;
	double value, scale = 1, bytes;

	if (split_number(s, &value, &unit))
		return -1;
	switch (toupper((unsigned char)*unit)) {
	case 0: break;
	case 'K': scale = 1024.0; unit++; break;
	case 'M': scale = 1024.0 * 1024; unit++; break;
	case 'G': scale = 1024.0 * 1024 * 1024; unit++; break;
	default: return -1;
	}
	if (*unit == 'i' && unit[1] == 'B')
		unit += 2;
	else if (*unit == 'B')
		unit++;
	if (*unit)
		return -1;
	bytes = value * scale;
	if (bytes > 9e18 || bytes != (double)(uint64_t)bytes)
		return -1;
	*out = (uint64_t)bytes;
	return 0;
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
