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
 *
 * Every parser rejects what it does not fully understand (spaces, signs,
 * trailing text, overflow, a fraction that does not come out whole) and
 * returns -1; callers turn that into a message naming the option.
 */
#ifndef IVB_UNITS_H
#define IVB_UNITS_H

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

#endif
