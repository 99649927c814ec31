/*
 * unit_units - the one parser of sizes, durations, counts and size lists:
 * what each accepts, that it rejects everything it does not fully
 * understand, and that a bad size list given to an option exits 2 naming it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "units.h"

static void test_sizes(void)
{
	uint64_t b;

	CHECK(!ivb_parse_size("64M", &b) && b == 64ull << 20);
	CHECK(!ivb_parse_size("4k", &b) && b == 4096);
	CHECK(!ivb_parse_size("4K", &b) && b == 4096);
	CHECK(!ivb_parse_size("1GiB", &b) && b == 1ull << 30);
	CHECK(!ivb_parse_size("2T", &b) && b == 2ull << 40);
	CHECK(!ivb_parse_size("1.5k", &b) && b == 1536);
	CHECK(!ivb_parse_size("4096", &b) && b == 4096);
	CHECK(!ivb_parse_size("512B", &b) && b == 512);
	CHECK(!ivb_parse_size("0", &b) && b == 0);
}

static void test_bad_sizes(void)
{
	static const char *bad[] = { "", "12X", "1.3", "-1", "+1", " 1", "1 ", "0x10", "inf",
				     "nan", "1e30", "16777216T", "4iB", "k", "4kk", "4MiBx" };
	uint64_t b;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECKF(ivb_parse_size(bad[i], &b) == -1, "size '%s' rejected", bad[i]);
	CHECK(ivb_parse_size(NULL, &b) == -1);
}

static void test_durations(void)
{
	uint64_t ns;

	CHECK(!ivb_parse_duration("10s", 1, &ns) && ns == 10000000000ull);
	CHECK(!ivb_parse_duration("250us", 1, &ns) && ns == 250000);
	CHECK(!ivb_parse_duration("1.5ms", 1, &ns) && ns == 1500000);
	CHECK(!ivb_parse_duration("3", 1000000000ull, &ns) && ns == 3000000000ull);
	CHECK(!ivb_parse_duration("2m", 1, &ns) && ns == 120000000000ull);
	CHECK(!ivb_parse_duration("1h", 1, &ns) && ns == 3600000000000ull);
	CHECK(!ivb_parse_duration("100ns", 1000000000ull, &ns) && ns == 100);
}

static void test_bad_durations(void)
{
	static const char *bad[] = { "", "-1s", "10 s", "5parsecs", "s", "1e19s", "inf", "nan",
				     "+5s", "0x1p3s", "1ss" };
	uint64_t ns;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECKF(ivb_parse_duration(bad[i], 1, &ns) == -1, "duration '%s' rejected", bad[i]);
}

static void test_counts(void)
{
	uint64_t n;

	CHECK(!ivb_parse_count("1000", &n) && n == 1000);
	CHECK(!ivb_parse_count("100k", &n) && n == 100000);
	CHECK(!ivb_parse_count("2.5M", &n) && n == 2500000);
	CHECK(!ivb_parse_count("1G", &n) && n == 1000000000);
	CHECK(!ivb_parse_count("0", &n) && n == 0);
	CHECK(ivb_parse_count("1.5", &n) == -1);
	CHECK(ivb_parse_count("abc", &n) == -1);
	CHECK(ivb_parse_count("10m", &n) == -1); /* milli is not a count */
	CHECK(ivb_parse_count("-3", &n) == -1);
	CHECK(ivb_parse_count("1e300", &n) == -1);
	CHECK(ivb_parse_count("99999999999999999999", &n) == -1);
}

static void test_size_lists(void)
{
	struct ivb_sizes s;
	char err[640];

	CHECK(!ivb_parse_size_list("64,4k,1M", &s, err, sizeof(err)) && s.n == 3 && !s.ladder &&
	      s.v[0] == 64 && s.v[1] == 4096 && s.v[2] == 1u << 20);
	CHECK(!ivb_parse_size_list("64,,4k", &s, err, sizeof(err)) && s.n == 2); /* empty items skipped */
	CHECK(!ivb_parse_size_list("64M", &s, err, sizeof(err)) && s.n == 1 && s.v[0] == IVB_MAX_MESSAGE);
	/* ladder: 8 B, then powers of 4 to 8 MiB, then 16 MiB. */
	CHECK(!ivb_parse_size_list("ladder", &s, err, sizeof(err)) && s.ladder && s.n == 12);
	CHECK(s.v[0] == 8 && s.v[1] == 32 && s.v[10] == 8u << 20 && s.v[11] == 16u << 20);
}

static void test_bad_size_lists(void)
{
	static const struct { const char *list, *why; } bad[] = {
		{ "0", "'0' is not a size in 1..67108864 bytes (suffixes k, M, G, T)" },
		{ "64,65M", "'65M' is not a size in 1..67108864 bytes" },
		{ "64,abc", "'abc' is not a size" },
		{ "64, 4k", "' 4k' is not a size" },
		{ "", "empty list (sizes such as 64,4k,1M, or ladder)" },
		{ ",,", "empty list" },
		{ "Ladder", "'Ladder' is not a size" },
	};
	struct ivb_sizes s;
	char err[640], many[200] = "1", longer[600];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECKF(ivb_parse_size_list(bad[i].list, &s, err, sizeof(err)) == -1 &&
		       !strncmp(err, bad[i].why, strlen(bad[i].why)), "size list '%s': %s", bad[i].list, err);
	for (i = 1; i <= IVB_MAX_SIZES; i++) /* 33 sizes */
		strcat(many, ",1");
	CHECK(ivb_parse_size_list(many, &s, err, sizeof(err)) == -1 && !strcmp(err, "at most 32 sizes"));
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	CHECK(ivb_parse_size_list(longer, &s, err, sizeof(err)) == -1 && !strcmp(err, "list too long"));
}

/* ivb_sizes_parse() on bad input: exit 2 and "prog: --sizes: ..." on stderr. */
static void test_size_list_option_exits_2(void)
{
	char out[512] = "";
	int fds[2], status = 0;
	size_t len;
	ssize_t n;
	pid_t pid;

	if (pipe(fds)) {
		CHECKF(0, "pipe");
		return;
	}
	pid = fork();
	if (pid == 0) {
		struct ivb_sizes s;

		dup2(fds[1], 2);
		ivb_cli_init("unit_units");
		ivb_sizes_parse("--sizes", "64,0", &s);
		_exit(0); /* not reached */
	}
	close(fds[1]);
	for (len = 0; len < sizeof(out) - 1 && (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0;)
		len += (size_t)n;
	out[len] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	CHECKF(strstr(out, "\nTry 'unit_units --help'.\n") != NULL, "then the pointer to --help");
	out[strcspn(out, "\n")] = 0;
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit status 2 (got 0x%x)", status);
	CHECKF(!strncmp(out, "unit_units: --sizes: '0' is not a size in 1..67108864 bytes", 59),
	       "the message names the option: %s", out);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_bad_sizes);
	RUN(test_durations);
	RUN(test_bad_durations);
	RUN(test_counts);
	RUN(test_size_lists);
	RUN(test_bad_size_lists);
	RUN(test_size_list_option_exits_2);
	return check_done("unit_units");
}
