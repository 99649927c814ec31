/*
 * check.h - the assertion macros of the C tests.
 *
 *   CHECK(cond)              counts a check; prints the condition if it fails
 *   CHECKF(cond, fmt, ...)   counts a check; prints "ok" or "FAIL" and the message
 *   check_done(name)         prints the totals; returns the exit status (0 or 1)
 */
#ifndef IVB_TESTS_CHECK_H
#define IVB_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int checks, failures;

__attribute__((format(printf, 5, 6))) static inline void
check_report(int ok, int quiet_ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok && quiet_ok)
		return;
	if (!ok) {
		failures++;
		printf("FAIL %s:%d: ", file, line);
	} else {
		printf("ok   ");
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* The condition is evaluated before the message's arguments, which may
 * read what it computed. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		int check_ok_ = !!(cond);                                      \
		check_report(check_ok_, 1, __FILE__, __LINE__, "%s", #cond);   \
	} while (0)
#define CHECKF(cond, ...)                                                      \
	do {                                                                   \
		int check_ok_ = !!(cond);                                      \
		check_report(check_ok_, 0, __FILE__, __LINE__, __VA_ARGS__);   \
	} while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d checks, %d passed, %d failed\n", name, checks, checks - failures, failures);
	return failures ? 1 : 0;
}

#endif
