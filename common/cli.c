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
#include "results.h"
#include "units.h"
#include "version.h"

volatile sig_atomic_t ivb_interrupted;
static const char *prog_name = "ivshmem-bench";

void ivb_cli_init(const char *prog)
{
	prog_name = prog;
	/* Progress lines reach a pipe or a log as they are printed (`| tee log`),
	 * not in blocks when the program exits. */
	setvbuf(stdout, NULL, _IOLBF, 0);
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

uint64_t ivb_opt_wait_policy(const char *opt, const char *arg)
{
	if (!strcmp(arg, "spin"))
		return UINT64_MAX; /* waiter.h's IVB_SPIN_FOREVER */
	if (!strcmp(arg, "sleep"))
		return 0;
	if (!strncmp(arg, "hybrid:", 7)) {
		uint64_t ns;

		if (ivb_parse_duration(arg + 7, 1000, &ns) == 0 && ns >= 1 && ns <= 10000000000ull)
			return ns;
		ivb_die_usage("%s: '%s': the spin time is not a duration in 1ns..10s (e.g. hybrid:50us)",
			      opt, arg);
	}
	ivb_die_usage("%s: '%s' is not spin, sleep or hybrid:DUR", opt, arg);
}

void ivb_opt_meta(const char *opt, const char *arg, const char *const *const *reserved)
{
	size_t n = strcspn(arg, "=");

	if (!arg[n] || n == 0 || n > 63 || strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		ivb_die_usage("%s: '%s' is not KEY=VALUE with a KEY of a-z, 0-9 and _", opt, arg);
	if (ivb_json_keys_have(reserved, arg, n))
		ivb_die_usage("%s: '%.*s' is a key run.json has of its own", opt, (int)n, arg);
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
	sigaction(SIGHUP, &sa, NULL);
}
