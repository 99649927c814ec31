/*
 * counters.h - what the kernel counted for a thread over a measured
 * interval, from perf_event_open(2): so that a tail can be told apart from
 * descheduling, and a rate from the cycles it cost.
 *
 * Software counters, which every kernel with perf events keeps for any
 * thread: context switches, CPU migrations, page faults and the task clock
 * (the thread's time on a CPU, ns). Hardware counters where the machine
 * has a PMU and perf_event_paranoid allows them: cycles, instructions and
 * cache misses (a VM without a virtual PMU has none: ENOENT).
 *
 * Each thread is counted wherever it runs (pid = tid, cpu = -1, no
 * inheritance): the calling thread (the initiator) and, when a tid is
 * given, another thread, such as QEMU's vCPU thread seen from the host
 * (root may count any thread). Counters run from open to close; an
 * interval is the difference of two reads, one read(2) per counter, so it
 * holds exactly what happened between them. Each counter is read on its
 * own, not as a group (PERF_FORMAT_GROUP): here (Linux 6.18) a group read
 * did not bring a running thread's task clock up to date until the thread
 * was next switched out, so a thread that polled without being descheduled
 * read 0 ns; a counter read alone is updated on the spot.
 *
 * What cannot be counted is not: its value is unknown (its CSV cell
 * empty), never 0, and why is kept, once, for run.json ("not available:
 * no hardware PMU (perf_event_open PERF_TYPE_HARDWARE: ENOENT)").
 */
#ifndef IVB_COUNTERS_H
#define IVB_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "results.h"

enum ivb_ctr {
	IVB_CTR_CTX_SWITCHES,  /* software */
	IVB_CTR_MIGRATIONS,
	IVB_CTR_PAGE_FAULTS,
	IVB_CTR_TASK_CLOCK_NS,
	IVB_CTR_CYCLES,        /* hardware */
	IVB_CTR_INSTRUCTIONS,
	IVB_CTR_CACHE_MISSES,
	IVB_CTR__COUNT
};

enum ivb_ctr_kind { IVB_CTR_SOFTWARE, IVB_CTR_HARDWARE, IVB_CTR__KINDS };

/*
 * The columns ivb_counters_csv() fills, in its order: the initiator's
 * thread (host_), --watch-thread's (vcpu_), and the initiator's context
 * switches per 1000 messages received in the interval.
 */
#define IVB_COUNTERS_COLUMNS                                                          \
	"host_ctx_switches,host_migrations,host_page_faults,host_task_clock_ns,"      \
	"host_cycles,host_instructions,host_cache_misses,"                            \
	"vcpu_ctx_switches,vcpu_migrations,vcpu_page_faults,vcpu_task_clock_ns,"      \
	"vcpu_cycles,vcpu_instructions,vcpu_cache_misses,ctx_switches_per_kmsg"

/* One thread's open counters. */
struct ivb_thread_counters {
	int tid;                        /* the thread: 0 the one that opened them */
	int asked;                      /* counting it was asked for */
	int fd[IVB_CTR__COUNT];         /* each counter, -1: not counted (or closed) */
	unsigned counted;               /* bit k: counter k was opened (kept after close) */
	char why[IVB_CTR__KINDS][192];  /* why (some of) a kind is not counted, "" when all are */
};

/* Every counter of one thread at one moment, as read. */
struct ivb_counter_reading {
	uint64_t v[IVB_CTR__COUNT];
	uint64_t enabled[IVB_CTR__COUNT], running[IVB_CTR__COUNT]; /* each counter's times, ns */
	unsigned have;                  /* bit k: v[k] was read */
};

/* What one thread's counters counted over an interval. */
struct ivb_counts {
	uint64_t v[IVB_CTR__COUNT];     /* hardware: scaled to the interval when multiplexed */
	unsigned have;                  /* bit k: v[k] was counted; else unknown, not 0 */
};

/* The counters a workload keeps: the initiator's thread and --watch-thread's. */
struct ivb_counters {
	struct ivb_thread_counters host, vcpu;
	struct ivb_counter_reading host0, vcpu0; /* at the interval's start */
	int started;                    /* an interval is open */
	int opened;                     /* opened at least once: run.json may say what was counted */
};

/*
 * Open the calling thread's counters, and vcpu_tid's unless it is 0. Never
 * fails: what cannot be opened is recorded with why. Call it from the
 * thread to count; ivb_counters_close() closes them (the reasons stay).
 */
void ivb_counters_open(struct ivb_counters *c, int vcpu_tid);
void ivb_counters_close(struct ivb_counters *c);

/* An interval starts: read every counter now (one read(2) each). */
void ivb_counters_start(struct ivb_counters *c);

/*
 * The interval ends: what each thread's counters counted since
 * ivb_counters_start(), into *host and *vcpu (nothing counted when it was
 * not started).
 */
void ivb_counters_stop(struct ivb_counters *c, struct ivb_counts *host, struct ivb_counts *vcpu);

/* Counter k per 1000 messages, or -1 when it was not counted or no message was. */
double ivb_counts_per_kmsg(const struct ivb_counts *n, enum ivb_ctr k, uint64_t messages);

/*
 * The cells of IVB_COUNTERS_COLUMNS (without a leading comma) into buf,
 * empty where not counted. Returns 0, or -1 when buf is too short.
 */
int ivb_counters_csv(char *buf, size_t len, const struct ivb_counts *host,
		     const struct ivb_counts *vcpu, uint64_t messages);

/* For a printed line: "ctx-sw/kmsg 1.23", "ctx-sw/kmsg - (vCPU 512.00)". */
void ivb_counters_say(char *buf, size_t len, const struct ivb_counts *host,
		      const struct ivb_counts *vcpu, uint64_t messages);

/*
 * run.json's "counters" member, once opened: what each kind counted for
 * each thread, or "not available: <why>", and the interval (the
 * workload's words).
 */
void ivb_counters_json(const struct ivb_counters *c, struct ivb_json *j, const char *interval);

#endif
