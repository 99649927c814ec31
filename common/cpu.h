/*
 * cpu.h - pinning and host description for the results' provenance.
 */
#ifndef IVB_CPU_H
#define IVB_CPU_H

#include <stddef.h>

/* Pin the calling thread to cpu. Returns 0 or -errno. */
int ivb_pin_self(int cpu);

/* Number of online CPUs. */
int ivb_cpu_count(void);

/* The CPU model name from /proc/cpuinfo into buf, or "unknown". */
void ivb_cpu_model(char *buf, size_t len);

/*
 * The share of one CPU thread tid used over the next second (from
 * /proc/TID/stat, in clock ticks), in percent; -1 when it cannot be read.
 * Sleeps that second.
 */
double ivb_thread_cpu_percent(int tid);

/* CPU time thread tid has used so far (user + system), in clock ticks; -1 if unknown. */
double ivb_thread_cpu_ticks(int tid);
long ivb_clock_ticks_per_s(void);

#endif
