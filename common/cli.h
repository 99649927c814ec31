/*
 * cli.h - what every program's main() shares: its name in messages, usage
 * errors (exit 2, one line naming the option and the accepted range, then a
 * pointer to --help), option values through the one parser of units.h, and
 * SIGINT/SIGTERM turned into a flag that every wait looks at.
 *
 * Exit statuses: 0 success, 1 a failure at run time (ivb_die), 2 bad usage
 * (ivb_die_usage and the ivb_opt_* parsers).
 */
#ifndef IVB_CLI_H
#define IVB_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* Name the program for every message; call first in main(). */
void ivb_cli_init(const char *prog); /* also makes stdout line-buffered */
const char *ivb_cli_prog(void);

/* "prog: MESSAGE" and "Try 'prog --help'." on stderr, exit 2. */
__attribute__((format(printf, 1, 2), noreturn)) void ivb_die_usage(const char *fmt, ...);

/* "prog: MESSAGE" on stderr, exit 1. */
__attribute__((format(printf, 1, 2), noreturn)) void ivb_die(const char *fmt, ...);

/* "prog: MESSAGE" on stderr. */
__attribute__((format(printf, 1, 2))) void ivb_warn(const char *fmt, ...);

/* getopt_long returned '?': it has said what was wrong; point to --help, exit 2. */
__attribute__((noreturn)) void ivb_bad_option(void);

/* --help (-h) and --version (-V), for every program's getopt_long table. */
#define IVB_CLI_OPTIONS                                                        \
	{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' }

/*
 * Handle what every program answers the same way: -h prints usage to
 * stdout and exits 0, -V the version, anything getopt rejected exits 2.
 * Returns for any other option.
 */
void ivb_cli_option(int c, void (*usage)(FILE *));

/*
 * Option values: each returns the value, or exits 2 with
 * "prog: OPT: 'ARG' is not ..." naming the accepted range.
 */
uint64_t ivb_opt_count(const char *opt, const char *arg, uint64_t lo, uint64_t hi);
uint64_t ivb_opt_size(const char *opt, const char *arg, uint64_t lo, uint64_t hi);
/* range names the accepted range for the message, e.g. "1ms..1h (e.g. 10s)". */
uint64_t ivb_opt_duration(const char *opt, const char *arg, uint64_t default_unit_ns,
			  uint64_t lo_ns, uint64_t hi_ns, const char *range);
/*
 * A wait policy (waiter.h): spin, sleep or hybrid:DUR; returns its spin_ns
 * (IVB_SPIN_FOREVER for spin, 0 for sleep, DUR for hybrid).
 */
uint64_t ivb_opt_wait_policy(const char *opt, const char *arg);

/*
 * A KEY=VALUE pair for run.json: KEY in a-z, 0-9 and _, never one of the
 * reserved keys, NULL-ended lists of NULL-ended lists (run.json's own
 * members, the lists it is checked against as it is written: a second
 * "status" would make the file say two things).
 */
void ivb_opt_meta(const char *opt, const char *arg, const char *const *const *reserved);

/* An online CPU number; "none" gives -1 when allow_none. */
int ivb_opt_cpu(const char *opt, const char *arg, int allow_none);

/*
 * The signal that asked the program to stop (SIGINT, SIGTERM or SIGHUP), 0 until
 * one arrives. ivb_cli_catch_signals() installs the handlers (without
 * SA_RESTART, so a blocking wait returns EINTR and looks at the flag).
 */
extern volatile sig_atomic_t ivb_interrupted;
void ivb_cli_catch_signals(void);

#endif
