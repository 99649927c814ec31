/*
 * cpu.h - pinning and host description for the results' provenance.
 */
#ifndef IVB_CPU_H
#define IVB_CPU_H

#include <stddef.h>
#include <stdint.h>

/* Pin the calling thread to cpu. Returns 0 or -errno. */
int ivb_pin_self(int cpu);

/* Number of online CPUs. */
int ivb_cpu_count(void);

/* The CPU model name from /proc/cpuinfo into buf, or "unknown". */
void ivb_cpu_model(char *buf, size_t len);

/*
 * CPU time (user + system) thread tid has used so far, in ns; -1 when it
 * cannot be read (no such thread). The one reader of a thread's CPU time:
 *   tid 0 (or the caller's own tid): the calling thread, from
 *     CLOCK_THREAD_CPUTIME_ID, to the nanosecond;
 *   another thread, of this process or another (QEMU's vCPU): from
 *     /proc/TID/stat, in clock ticks (10 ms at USER_HZ 100) turned into
 *     ns. A thread CPU clock (clock_getcpuclockid) cannot serve: Linux
 *     reads those only for threads of the caller's own process.
 */
int64_t ivb_thread_cpu_ns(int tid);

/*
 * The share of one CPU thread tid used over the next second
 * (ivb_thread_cpu_ns), in percent; -1 when it cannot be read. Sleeps that
 * second.
 */
double ivb_thread_cpu_percent(int tid);

#endif
