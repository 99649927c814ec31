/*
 * units.h - the one parser for values given on command lines and in
 * settings, used by every program, so "64M", "10us" and "100k" mean the same
 * everywhere (in the manner of wrk's units.c).
 *
 *   sizes      bytes, with k, M, G, T suffixes (powers of 1024), upper or
 *              lower case, optionally followed by B or iB: 4096, 4k, 64M, 1GiB
 *   durations  ns, us, ms, s, m, h suffixes; a bare number is taken in the
 *              caller's default unit: 250us, 1.5ms, 10s
 *   counts     whole numbers with k, M, G suffixes (powers of 1000): 1000,
 *              100k, 1M (also rates in messages per second)
 *   size lists message sizes for the workloads that sweep them: "64,4k,1M",
 *              or "ladder" for powers of 4 from 8 B to 8 MiB and then
 *              16 MiB; each 1 B .. IVB_MAX_MESSAGE
 *
 * Every parser rejects what it does not fully understand (spaces, signs,
 * trailing text, overflow, a fraction that does not come out whole) and
 * returns -1; callers turn that into a message naming the option. The size
 * list has its exiting wrapper here too (ivb_sizes_parse), since every
 * program that takes one words the message the same way.
 */
#ifndef IVB_UNITS_H
#define IVB_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* A size in bytes into *out. Returns 0, or -1 when malformed or too large. */
int ivb_parse_size(const char *s, uint64_t *out);

/*
 * A duration into nanoseconds; a bare number is in default_unit_ns units.
 * Returns 0, or -1 when malformed or beyond 10^18 ns (31 years).
 */
int ivb_parse_duration(const char *s, uint64_t default_unit_ns, uint64_t *out_ns);

/* A whole count (k, M, G = 10^3, 10^6, 10^9). Returns 0, or -1. */
int ivb_parse_count(const char *s, uint64_t *out);

#define IVB_MAX_SIZES 32
#define IVB_MAX_MESSAGE (64u << 20) /* 64 MiB: a 4K RGB frame (24.9 MB) fits */

/* A list of message sizes. */
struct ivb_sizes {
	uint32_t v[IVB_MAX_SIZES]; /* bytes, in the order given */
	int n;                     /* how many */
	int ladder;                /* the list was "ladder" */
};

/*
 * A size list into *s. Returns 0, or -1 with why (without the option's
 * name) in err: "'0' is not a size in 1..67108864 bytes (suffixes k, M, G,
 * T)", "empty list (...)", "at most 32 sizes", "list too long". Empty
 * items are skipped ("64,,4k" is two sizes).
 */
int ivb_parse_size_list(const char *list, struct ivb_sizes *s, char *err, size_t err_len);

/* The same for option opt; exits 2 with "prog: OPT: <why>" when it is bad (cli.h). */
void ivb_sizes_parse(const char *opt, const char *list, struct ivb_sizes *s);

#endif
