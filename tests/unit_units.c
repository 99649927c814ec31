/*
 * unit_units - the one parser of sizes, durations and counts: what each
 * accepts, and that it rejects everything it does not fully understand.
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
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

int main(void)
{
	test_sizes();
	test_bad_sizes();
	test_durations();
	test_bad_durations();
	test_counts();
	return check_done("unit_units");
}
