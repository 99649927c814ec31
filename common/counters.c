/*
 * counters.c - a thread's perf_event_open(2) counters over an interval
 * (see counters.h).
 */
#include "counters.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Each counter: its event and its name for people (its column: IVB_COUNTERS_COLUMNS). */
static const struct {
	uint32_t type;
	uint64_t config;
	const char *name;
} ctr_table[IVB_CTR__COUNT] = {
	[IVB_CTR_CTX_SWITCHES] = { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, "context switches" },
	[IVB_CTR_MIGRATIONS] = { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, "CPU migrations" },
	[IVB_CTR_PAGE_FAULTS] = { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, "page faults" },
	[IVB_CTR_TASK_CLOCK_NS] = { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, "task clock" },
	[IVB_CTR_CYCLES] = { PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, "cycles" },
	[IVB_CTR_INSTRUCTIONS] = { PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, "instructions" },
	[IVB_CTR_CACHE_MISSES] = { PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES, "cache misses" },
};

static enum ivb_ctr_kind ctr_kind(int k)
{
	return ctr_table[k].type == PERF_TYPE_HARDWARE ? IVB_CTR_HARDWARE : IVB_CTR_SOFTWARE;
}

/* A counter's read(2), with both times. */
struct one_read {
	uint64_t value, enabled, running;
};

/* ------------------------------------------------------------------ */
/* Opening, and why not                                                */
/* ------------------------------------------------------------------ */

static const char *errno_name(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ESRCH: return "ESRCH";
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case EBUSY: return "EBUSY";
	}
	return strerror(e);
}

/* Why perf_event_open of counter k for tid failed with e, into buf. */
static void why_not(char *buf, size_t len, int k, int tid, int e)
{
	const char *type = ctr_kind(k) == IVB_CTR_HARDWARE ? "PERF_TYPE_HARDWARE" : "PERF_TYPE_SOFTWARE";
	char reason[96];
	int paranoid = -9;
	FILE *f;

	switch (e) {
	case ENOENT:
	case ENODEV:
	case EOPNOTSUPP:
		snprintf(reason, sizeof(reason), "%s", ctr_kind(k) == IVB_CTR_HARDWARE ?
			 "no hardware PMU" : "the kernel does not count it");
		break;
	case EACCES:
	case EPERM:
		f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
		if (!f || fscanf(f, "%d", &paranoid) != 1)
			snprintf(reason, sizeof(reason), "not permitted");
		else
			snprintf(reason, sizeof(reason), "not permitted at perf_event_paranoid %d",
				 paranoid);
		if (f)
			fclose(f);
		break;
	case ESRCH:
		snprintf(reason, sizeof(reason), "no thread %d", tid);
		break;
	case ENOSYS:
		snprintf(reason, sizeof(reason), "the kernel has no perf events");
		break;
	default:
		snprintf(reason, sizeof(reason), "%s", strerror(e));
	}
	snprintf(buf, len, "%s (perf_event_open %s %s: %s)", reason, type, ctr_table[k].name,
		 errno_name(e));
}

/* Open counter k of thread tid (0: the caller). fd, or -errno. */
static int open_one(int k, int tid)
{
	struct perf_event_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = ctr_table[k].type;
	a.config = ctr_table[k].config;
	a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	/* Counting from open to close (never disabled): an interval is two reads.
	 * No group: see counters.h. */
	fd = syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

static void thread_open(struct ivb_thread_counters *t, int tid, int asked)
{
	int k, fd;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->asked = asked;
	for (k = 0; k < IVB_CTR__COUNT; k++) {
		enum ivb_ctr_kind kind = ctr_kind(k);

		t->fd[k] = -1;
		if (!asked)
			continue;
		fd = open_one(k, tid);
		if (fd < 0) {
			if (!t->why[kind][0]) /* the first failure says why */
				why_not(t->why[kind], sizeof(t->why[kind]), k, tid, -fd);
			continue;
		}
		t->fd[k] = fd;
		t->counted |= 1u << k;
	}
}

static void thread_close(struct ivb_thread_counters *t)
{
	int k;

	for (k = 0; k < IVB_CTR__COUNT; k++) {
		if (t->fd[k] >= 0)
			close(t->fd[k]);
		t->fd[k] = -1;
	}
}

/* ------------------------------------------------------------------ */
/* Intervals                                                           */
/* ------------------------------------------------------------------ */

/* Every open counter of t now. One that cannot be read is left unread. */
static void thread_read(const struct ivb_thread_counters *t, struct ivb_counter_reading *r)
{
	struct one_read one;
	int k;

	memset(r, 0, sizeof(*r));
	for (k = 0; k < IVB_CTR__COUNT; k++) {
		if (t->fd[k] < 0 || read(t->fd[k], &one, sizeof(one)) != (ssize_t)sizeof(one))
			continue;
		r->v[k] = one.value;
		r->enabled[k] = one.enabled;
		r->running[k] = one.running;
		r->have |= 1u << k;
	}
}

/*
 * b - a into n. A hardware counter that was on the PMU only part of the
 * interval (multiplexed) is scaled to the whole, as perf stat does; one
 * that was never on is not counted.
 */
static void thread_delta(const struct ivb_counter_reading *a, const struct ivb_counter_reading *b,
			 struct ivb_counts *n)
{
	int k;

	memset(n, 0, sizeof(*n));
	for (k = 0; k < IVB_CTR__COUNT; k++) {
		uint64_t en = b->enabled[k] - a->enabled[k];
		uint64_t run = b->running[k] - a->running[k];
		uint64_t d = b->v[k] - a->v[k];

		if (!(a->have & b->have & (1u << k)) || b->v[k] < a->v[k])
			continue;
		if (ctr_kind(k) == IVB_CTR_HARDWARE) {
			if (run == 0)
				continue;
			if (run < en)
				d = (uint64_t)((double)d * (double)en / (double)run + 0.5);
		}
		n->v[k] = d;
		n->have |= 1u << k;
	}
}

void ivb_counters_open(struct ivb_counters *c, int vcpu_tid)
{
	thread_open(&c->host, 0, 1);
	thread_open(&c->vcpu, vcpu_tid, vcpu_tid != 0);
	c->started = 0;
	c->opened = 1;
}

void ivb_counters_close(struct ivb_counters *c)
{
	thread_close(&c->host);
	thread_close(&c->vcpu);
	c->started = 0;
}

void ivb_counters_start(struct ivb_counters *c)
{
	thread_read(&c->host, &c->host0);
	thread_read(&c->vcpu, &c->vcpu0);
	c->started = 1;
}

void ivb_counters_stop(struct ivb_counters *c, struct ivb_counts *host, struct ivb_counts *vcpu)
{
	struct ivb_counter_reading h, v;

	memset(host, 0, sizeof(*host));
	memset(vcpu, 0, sizeof(*vcpu));
	if (!c->started)
		return;
	thread_read(&c->host, &h);
	thread_read(&c->vcpu, &v);
	thread_delta(&c->host0, &h, host);
	thread_delta(&c->vcpu0, &v, vcpu);
	c->started = 0;
}

/* ------------------------------------------------------------------ */
/* Rows, lines and run.json                                            */
/* ------------------------------------------------------------------ */

double ivb_counts_per_kmsg(const struct ivb_counts *n, enum ivb_ctr k, uint64_t messages)
{
	if (!(n->have & (1u << k)) || !messages)
		return -1;
	return 1000.0 * (double)n->v[k] / (double)messages;
}

int ivb_counters_csv(char *buf, size_t len, const struct ivb_counts *host,
		     const struct ivb_counts *vcpu, uint64_t messages)
{
	const struct ivb_counts *side[2] = { host, vcpu };
	double per = ivb_counts_per_kmsg(host, IVB_CTR_CTX_SWITCHES, messages);
	size_t at = 0;
	int s, k, n;

	for (s = 0; s < 2; s++)
		for (k = 0; k < IVB_CTR__COUNT; k++) {
			if (side[s]->have & (1u << k))
				n = snprintf(buf + at, len - at, "%llu,", (unsigned long long)side[s]->v[k]);
			else
				n = snprintf(buf + at, len - at, ",");
			if (n < 0 || (size_t)n >= len - at)
				return -1;
			at += (size_t)n;
		}
	n = per >= 0 ? snprintf(buf + at, len - at, "%.3f", per) : snprintf(buf + at, len - at, "%s", "");
	return n < 0 || (size_t)n >= len - at ? -1 : 0;
}

void ivb_counters_say(char *buf, size_t len, const struct ivb_counts *host,
		      const struct ivb_counts *vcpu, uint64_t messages)
{
	double h = ivb_counts_per_kmsg(host, IVB_CTR_CTX_SWITCHES, messages);
	double v = ivb_counts_per_kmsg(vcpu, IVB_CTR_CTX_SWITCHES, messages);
	int n;

	/* Three decimals below 1 (a polling stream: a few switches in millions). */
	n = h >= 0 ? snprintf(buf, len, "ctx-sw/kmsg %.*f", h < 1 ? 3 : 1, h) :
		     snprintf(buf, len, "ctx-sw/kmsg -");
	if (v >= 0 && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " (vCPU %.*f)", v < 1 ? 3 : 1, v);
}

/* What thread t counted of kind, in words, into buf. */
static void describe(const struct ivb_thread_counters *t, enum ivb_ctr_kind kind, const char *who,
		     char *buf, size_t len)
{
	char on[160] = "", off[160] = "";
	int k, non = 0, noff = 0;

	if (!t->asked) {
		snprintf(buf, len, "not counted: no --watch-thread");
		return;
	}
	for (k = 0; k < IVB_CTR__COUNT; k++) {
		int yes = !!(t->counted & (1u << k));
		char *list = yes ? on : off;
		int *count = yes ? &non : &noff;

		if (ctr_kind(k) != kind)
			continue;
		snprintf(list + strlen(list), sizeof(on) - strlen(list), "%s%s", *count ? ", " : "",
			 ctr_table[k].name);
		++*count;
	}
	if (!non)
		snprintf(buf, len, "not available: %s", t->why[kind]);
	else if (!noff)
		snprintf(buf, len, "perf_event_open, %s: %s%s", who, on, kind == IVB_CTR_HARDWARE ?
			 " (scaled to the interval when multiplexed)" : "");
	else
		snprintf(buf, len, "perf_event_open, %s: %s; %s not available: %s", who, on, off,
			 t->why[kind]);
}

void ivb_counters_json(const struct ivb_counters *c, struct ivb_json *j, const char *interval)
{
	char buf[512], who[64];

	if (!c->opened)
		return;
	ivb_json_begin(j, "counters");
	describe(&c->host, IVB_CTR_SOFTWARE, "per host thread (the initiator's)", buf, sizeof(buf));
	ivb_json_str(j, "software", buf);
	describe(&c->host, IVB_CTR_HARDWARE, "per host thread (the initiator's)", buf, sizeof(buf));
	ivb_json_str(j, "hardware", buf);
	snprintf(who, sizeof(who), "thread %d (--watch-thread)", c->vcpu.tid);
	describe(&c->vcpu, IVB_CTR_SOFTWARE, who, buf, sizeof(buf));
	ivb_json_str(j, "vcpu_software", buf);
	describe(&c->vcpu, IVB_CTR_HARDWARE, who, buf, sizeof(buf));
	ivb_json_str(j, "vcpu_hardware", buf);
	ivb_json_str(j, "interval", interval);
	ivb_json_str(j, "ctx_switches_per_kmsg", "the initiator thread's context switches per "
		     "1000 messages received in the interval");
	ivb_json_end(j);
}
