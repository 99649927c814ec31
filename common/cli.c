/*
 * cli.c - program name, usage errors, option values and stop signals
 * (see cli.h).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "units.h"
#include "version.h"

volatile sig_atomic_t ivb_interrupted;
static const char *prog_name = "ivshmem-bench";

void ivb_cli_init(const char *prog)
{
	prog_name = prog;
}

const char *ivb_cli_prog(void)
{
	return prog_name;
}

static void vsay(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prog_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void ivb_die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help'.\n", prog_name);
	exit(2);
}

void ivb_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(1);
}

void ivb_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

void ivb_bad_option(void)
{
	fprintf(stderr, "Try '%s --help'.\n", prog_name);
	exit(2);
}

void ivb_cli_option(int c, void (*usage)(FILE *))
{
	switch (c) {
	case 'h':
		usage(stdout);
		exit(0);
	case 'V':
		printf("%s %s\n", prog_name, IVB_VERSION);
		exit(0);
	case '?':
		ivb_bad_option();
	}
}

uint64_t ivb_opt_count(const char *opt, const char *arg, uint64_t lo, uint64_t hi)
{
	uint64_t v;

	if (ivb_parse_count(arg, &v) || v < lo || v > hi)
		ivb_die_usage("%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64, opt, arg,
			      lo, hi);
	return v;
}

uint64_t ivb_opt_size(const char *opt, const char *arg, uint64_t lo, uint64_t hi)
{
	uint64_t v;

	if (ivb_parse_size(arg, &v) || v < lo || v > hi)
		ivb_die_usage("%s: '%s' is not a size in %" PRIu64 "..%" PRIu64
			      " bytes (suffixes k, M, G, T)", opt, arg, lo, hi);
	return v;
}

uint64_t ivb_opt_duration(const char *opt, const char *arg, uint64_t default_unit_ns,
			  uint64_t lo_ns, uint64_t hi_ns, const char *range)
{
	uint64_t v;

	if (ivb_parse_duration(arg, default_unit_ns, &v) || v < lo_ns || v > hi_ns)
		ivb_die_usage("%s: '%s' is not a duration in %s", opt, arg, range);
	return v;
}

int ivb_opt_cpu(const char *opt, const char *arg, int allow_none)
{
	uint64_t v;
	int n = ivb_cpu_count();

	if (allow_none && !strcmp(arg, "none"))
		return -1;
	if (ivb_parse_count(arg, &v) || v >= (uint64_t)n || strpbrk(arg, "kMG"))
		ivb_die_usage("%s: '%s' is not an online CPU number (0..%d%s)", opt, arg, n - 1,
			      allow_none ? ", or none" : "");
	return (int)v;
}

static void on_stop_signal(int sig)
{
	ivb_interrupted = sig;
}

void ivb_cli_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
