/*
 * timing.h - monotonic nanosecond clock, sleeping, and the clock's cost.
 *
 * All measurements use CLOCK_MONOTONIC through the vDSO (about 20 ns a read
 * with the TSC clocksource). ivb_clocksource() names the kernel's clock
 * source so results can say when that assumption does not hold.
 */
#ifndef IVB_TIMING_H
#define IVB_TIMING_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>

static inline uint64_t ivb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep for ns nanoseconds (restarting after signals). */
void ivb_sleep_ns(uint64_t ns);

/*
 * Cost of one ivb_now_ns() call: the median gap between back-to-back
 * reads, and their resolution: the smallest non-zero gap. Every measured
 * interval includes about one such read.
 */
void ivb_clock_cost(uint64_t *read_ns, uint64_t *resolution_ns);

/* The current clocksource ("tsc", "kvm-clock", ...) into buf, or "unknown". */
void ivb_clocksource(char *buf, size_t len);

#endif
