/*
 * units.c - parsing sizes, durations and counts (see units.h).
 */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Split "12.5ms" into 12.5 and "ms"; -1 when there is no plain number. */
static int split_number(const char *s, double *value, const char **unit)
{
	char *end;

	/* strtod would accept spaces, signs, hex, "inf" and "nan": only digits may start. */
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*value = strtod(s, &end);
	if (errno || end == s || *value < 0)
		return -1;
	if (strpbrk(s, "xXpP") && strpbrk(s, "xXpP") < end)
		return -1; /* hex floats */
	*unit = end;
	return 0;
}

/* value * scale as a whole number below 2^63, or -1. */
static int whole(double value, double scale, uint64_t *out)
{
	double v = value * scale;

	if (v >= 9.2e18 || v != (double)(uint64_t)v)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* A suffix letter and what it multiplies by. */
struct suffix {
	char letter;
	double scale;
};

/* A number with an optional one-letter suffix from table, then the rest of the unit. */
static int parse_scaled(const char *s, const struct suffix *table, const char **rest,
			double *value, double *scale)
{
	const char *unit;

	if (split_number(s, value, &unit))
		return -1;
	*scale = 1;
	for (; table->letter; table++)
		if (*unit == table->letter) {
			*scale = table->scale;
			unit++;
			break;
		}
	*rest = unit;
	return 0;
}

int ivb_parse_size(const char *s, uint64_t *out)
{
	static const struct suffix binary[] = {
		{ 'k', 0x1p10 }, { 'K', 0x1p10 }, { 'm', 0x1p20 }, { 'M', 0x1p20 },
		{ 'g', 0x1p30 }, { 'G', 0x1p30 }, { 't', 0x1p40 }, { 'T', 0x1p40 }, { 0, 0 },
	};
	const char *unit;
	double value, scale;

	if (parse_scaled(s, binary, &unit, &value, &scale))
		return -1;
	if (scale > 1 && unit[0] == 'i' && unit[1] == 'B')
		unit += 2;
	else if (*unit == 'B') /* "512B", "4kB" */
		unit++;
	if (*unit)
		return -1;
	return whole(value, scale, out);
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
	/* Durations round to the nanosecond: "1.5ns" is 2 ns, never an error. */
	*out_ns = (uint64_t)(ns + 0.5);
	return 0;
}

int ivb_parse_count(const char *s, uint64_t *out)
{
	static const struct suffix decimal[] = {
		{ 'k', 1e3 }, { 'K', 1e3 }, { 'M', 1e6 }, { 'G', 1e9 }, { 0, 0 },
	};
	const char *unit;
	double value, scale;

	if (parse_scaled(s, decimal, &unit, &value, &scale) || *unit)
		return -1;
	return whole(value, scale, out);
}

int ivb_parse_size_list(const char *list, struct ivb_sizes *s, char *err, size_t err_len)
{
	char buf[512], *tok, *save;
	uint64_t v;

	s->n = 0;
	s->ladder = !strcmp(list, "ladder");
	if (s->ladder) {
		uint32_t b;

		for (b = 8; b <= (8u << 20); b *= 4)
			s->v[s->n++] = b;
		s->v[s->n++] = 16u << 20;
		return 0;
	}
	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, err_len, "list too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (s->n == IVB_MAX_SIZES) {
			snprintf(err, err_len, "at most %d sizes", IVB_MAX_SIZES);
			return -1;
		}
		/* The words of cli.h's ivb_opt_size(), which parsed each item before. */
		if (ivb_parse_size(tok, &v) || v < 1 || v > IVB_MAX_MESSAGE) {
			snprintf(err, err_len, "'%s' is not a size in %" PRIu64 "..%" PRIu64
				 " bytes (suffixes k, M, G, T)", tok, (uint64_t)1, (uint64_t)IVB_MAX_MESSAGE);
			return -1;
		}
		s->v[s->n++] = (uint32_t)v;
	}
	if (!s->n) {
		snprintf(err, err_len, "empty list (sizes such as 64,4k,1M, or ladder)");
		return -1;
	}
	return 0;
}

void ivb_sizes_parse(const char *opt, const char *list, struct ivb_sizes *s)
{
	char err[640];

	if (ivb_parse_size_list(list, s, err, sizeof(err)))
		ivb_die_usage("%s: %s", opt, err);
}
