/*
 * check.h - the assertion macros of the C tests.
 *
 *   CHECK(cond)              counts a check; prints the condition if it fails
 *   CHECKF(cond, fmt, ...)   counts a check; prints "ok" or "FAIL" and the message
 *   RUN(test_x)              runs the case test_x (a void function); its name
 *                            heads its output and every failure inside it
 *   check_done(name)         prints the totals and the failed cases; returns
 *                            the exit status (0 or 1)
 */
#ifndef IVB_TESTS_CHECK_H
#define IVB_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int checks, failures;
static const char *check_case;          /* the case RUN is running, or NULL */
static const char *check_failed_cases[64]; /* cases with a failure, in order */
static int check_n_failed_cases;

__attribute__((format(printf, 5, 6))) static inline void
check_report(int ok, int quiet_ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok && quiet_ok)
		return;
	if (!ok) {
		failures++;
		printf("FAIL %s%s%s:%d: ", check_case ? check_case : "", check_case ? " " : "",
		       file, line);
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

/* Run one case; a case that failed a check is named again at the end. */
static inline void check_run(const char *name, void (*fn)(void))
{
	int before = failures;

	printf("# %s\n", name);
	fflush(stdout);
	check_case = name;
	fn();
	check_case = NULL;
	if (failures != before) {
		printf("FAIL %s: %d check%s failed\n", name, failures - before,
		       failures - before == 1 ? "" : "s");
		if (check_n_failed_cases < (int)(sizeof(check_failed_cases) / sizeof(check_failed_cases[0])))
			check_failed_cases[check_n_failed_cases++] = name;
	}
	fflush(stdout);
}
#define RUN(fn) check_run(#fn, fn)

static inline int check_done(const char *name)
{
	int i;

	if (check_n_failed_cases) {
		printf("%s: failed cases:", name);
		for (i = 0; i < check_n_failed_cases; i++)
			printf(" %s", check_failed_cases[i]);
		printf("\n");
	}
	printf("%s: %d checks, %d passed, %d failed\n", name, checks, checks - failures, failures);
	return failures ? 1 : 0;
}

#endif
