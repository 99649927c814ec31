/*
 * chain.c - a forwarding chain (Rx -> NF -> Tx, the NFV service chain):
 * the initiator's sender puts messages on ring A, the responder forwards
 * each one onto ring B, touching it or not, and a second thread of the
 * initiator takes them off ring B and verifies every one. What is reported
 * is the rate through the chain and the latency through the middle stage,
 * by message size, batch and touch.
 *
 *   sender    (the initiator's own thread, its CPU): stamps each message
 *             with its sequence number and the time just before its copy
 *             into ring A, then publishes it (ivb_channel_try_send()).
 *   responder (guest_reader, in the guest or on the host): copies slot A,
 *             header and message, into slot B, then per --chain-touch:
 *             none  nothing more (one copy is the least a forward costs);
 *             read  checks the message's XXH3 in its new slot first;
 *             write checks it, increments the hop counter in the message
 *                   and computes the check again.
 *             A message that fails is counted and forwarded with a sequence
 *             number that cannot pass, so the receiver counts it too.
 *   receiver  (a second thread of the initiator, --chain-rx-cpu): copies
 *             each message out of ring B, checks its sequence number and
 *             check (ivb_channel_poll()), its stamp (the sequence number
 *             again, a send time no later than now and never before the
 *             previous one, the hop count the touch must leave) and, after
 *             a write, every other byte against what was sent; then
 *             records now - send time. A bad message is counted, never
 *             timed, and fails the run, as in the stream.
 *
 * The layout is the stream channel's (channel.h): its set-up (kind
 * IVB_STREAM_ECHO: every message of ring 0 goes out again on ring 1) and
 * result blocks, then the chain's own line, then the two rings; the
 * initiator uses the channel's send, poll, close and abort. The responder
 * is this file's: its message is IVB_CMD_CHAIN.
 *
 * The point: the receiver counts arrivals between two of its clock reads,
 * a fifth of --chain-duration after the first send and --chain-duration
 * apart, and keeps the latency of every whole message in that window
 * (exact percentiles, stats.h; past CHAIN_MAX_SAMPLES a histogram, hist.h,
 * within 1/256, and the row says so). Then it tells the sender to stop;
 * the sender ends ring A, the responder drains it into ring B and ends it,
 * the receiver drains ring B, and ivb_channel_close() checks that every
 * count agrees.
 *
 * The receiver can be another process instead (--chain-receiver remote):
 * in a vm-vm run, guest A sends, guest B forwards and the host's chain_sink
 * (tools/chain_sink.c, ivb_chain_sink() below) receives: guest A -> guest
 * B -> host. The two then meet on the chain's remote lines after the set-up
 * (struct chain_remote): the sender announces the point there, the
 * receiver measures the offset between their clocks (probes answered by
 * the sender: the offset of the fastest round trip, within half of it),
 * says it is ready, closes its window, measures the offset again when ring
 * B has ended (the error bound grows by the drift), and leaves its counts
 * and latency summary there for the sender's row. The message
 * bytes come from a seed on that line, so a remote receiver can compare
 * what a write kept. It polls: remote is plain mode only.
 *
 * Two CPUs: the sender has the writer's CPU and the responder the other.
 * The receiver shares the sender's by default: the middle stage is what is
 * measured and keeps a CPU of its own (in a VM, its vCPU), and the two
 * ends are the host's cheap half (a vSwitch's Rx and Tx on one core). The
 * two host threads then yield to each other whenever they wait, and a
 * latency includes the time a message waits for the receiver's turn.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attach.h"
#include "chain.h"
#include "channel.h"
#include "cli.h"
#include "copy.h"
#include "cpu.h"
#include "digest.h"
#include "hist.h"
#include "sizes.h"
#include "stats.h"
#include "timing.h"
#include "workload.h"

#define DEFAULT_SIZES "64,4k,64k"
#define DEFAULT_BATCHES "1,16"
#define DEFAULT_SLOTS "256"
#define DEFAULT_TOUCH "none,read,write"
#define DEFAULT_DURATION "200ms"
#define DEFAULT_RX_CPU "writer"
#define DEFAULT_INFLIGHT "0"
#define DEFAULT_RECEIVER "local"
#define CHAIN_MAX_BATCHES 8
#define CHAIN_MIN_MESSAGE 24u       /* sequence number, send time, hop count */
#define CHAIN_STAMP_AT 8u           /* message bytes 8..15: the sender's clock */
#define CHAIN_HOPS_AT 16u           /* message bytes 16..23: the hop counter a write increments */
#define CHAIN_MAX_SAMPLES (1u << 24) /* latencies kept exactly (128 MiB, touched as used); then a histogram */
#define CHAIN_WAIT_SLICE_NS 10000000ull /* longest single wait of the sender: it looks at the receiver */
#define CHAIN_RX_WRITER (-2)        /* --chain-rx-cpu writer */
#define CHAIN_PROBES 64             /* clock probes a remote receiver makes per point, at least */
#define CHAIN_PROBE_GOOD_NS 20000ull /* ... and more until one comes back this fast ... */
#define CHAIN_PROBE_NS 100000000ull /* ... for up to this long */
#define CHAIN_REMOTE_MAGIC 0x3158522d4e494843ull /* "CHIN-RX1": a point wants a remote receiver */

enum chain_touch {
	CHAIN_TOUCH_NONE = 0,  /* forward as it is */
	CHAIN_TOUCH_READ = 1,  /* check, then forward */
	CHAIN_TOUCH_WRITE = 2, /* check, increment the hop counter, check again */
	CHAIN_TOUCH__COUNT
};

static const char *const touch_names[CHAIN_TOUCH__COUNT] = { "none", "read", "write" };

/* The chain's line of the set-up, after the channel's params and result; initiator-written. */
struct chain_setup {
	uint32_t touch;   /* enum chain_touch */
	uint32_t pad0;
	uint8_t pad[56];
};

#define CHAIN_SETUP_AT (sizeof(struct ivb_stream_params) + sizeof(struct ivb_stream_result))

_Static_assert(sizeof(struct chain_setup) == 64, "the chain's set-up is one line");
_Static_assert(offsetof(struct chain_setup, touch) == 0, "touch");
_Static_assert(CHAIN_SETUP_AT == 256, "after the channel's params and result");
_Static_assert(CHAIN_SETUP_AT + sizeof(struct chain_setup) <= IVB_CHANNEL_SETUP_BYTES,
	       "the set-up fits before the rings");

/*
 * The remote receiver's lines (--chain-receiver remote), after the chain's
 * set-up: one the sender writes, three the receiver writes. The sender
 * clears the receiver's lines and writes its own before it sets point
 * (release); the receiver acts on a point number it has not seen, and
 * writes nothing after done (release) until the next one.
 */
struct chain_remote {
	/* ---- line 0: sender-written ---- */
	uint64_t magic;          /* CHAIN_REMOTE_MAGIC while a point wants a remote receiver */
	uint64_t point;          /* the point's number (random, never 0) */
	uint64_t seed;           /* the message's bytes: chain_fill(seed) */
	uint64_t probe_ack;      /* the last probe answered ... */
	uint64_t probe_time;     /* ... and the sender's clock when it did */
	uint64_t duration_ns;    /* the window (a fifth of it first, warming up) */
	uint64_t inflight;       /* --chain-inflight: received must follow each message */
	uint64_t quit;           /* the sender gave the point up */
	/* ---- line 1: receiver-written, during the point ---- */
	uint64_t probe;          /* a probe asked (its number) */
	uint64_t ready;          /* the receiver takes ring B: the sender may start */
	uint64_t measured;       /* its window is over: the sender stops */
	uint64_t done;           /* it has ended: the rest is valid */
	uint64_t received;       /* ring B messages taken (with --chain-inflight, as they go) */
	int64_t rc;              /* 0, or why it stopped: -errno */
	uint64_t errors, first_bad;
	/* ---- line 2: receiver-written, its window ---- */
	uint64_t t0, t1, c0, c1; /* its clock reads and ring B counts */
	int64_t offset_ns;       /* the sender's clock minus the receiver's */
	uint64_t offset_err_ns;  /* within this (half the fastest probe's round trip) */
	uint64_t count;          /* latencies in the summary */
	uint64_t histogram;      /* 1: past CHAIN_MAX_SAMPLES, the summary is the histogram's */
	/* ---- line 3: receiver-written, the summary ---- */
	double min, mean, p50, p90, p99, p999, max;
	uint64_t pid;            /* the receiver's process: it claims the point with it */
};

#define CHAIN_REMOTE_AT (CHAIN_SETUP_AT + sizeof(struct chain_setup))

_Static_assert(sizeof(struct chain_remote) == 256, "the remote lines are four lines");
_Static_assert(offsetof(struct chain_remote, probe) == 64, "receiver's line");
_Static_assert(offsetof(struct chain_remote, t0) == 128, "receiver's window line");
_Static_assert(offsetof(struct chain_remote, min) == 192, "receiver's summary line");
_Static_assert(CHAIN_REMOTE_AT + sizeof(struct chain_remote) <= IVB_CHANNEL_SETUP_BYTES,
	       "the remote lines fit before the rings");

static const struct ivb_csv_schema chain_csv = {
	"chain_results.csv",
	"message_bytes,batch,slots,inflight,touch,verify,wait,messages,seconds,msgs_per_s,gbps,latency_count,"
	"latency_method,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,errors,nf_errors,"
	"nf_cpu_us_per_msg,receiver,clock_error_ns",
};

struct chain {
	struct ivb_sizes sizes;           /* message sizes */
	uint32_t batch[CHAIN_MAX_BATCHES]; /* messages per index store, each a point */
	int nbatch;
	uint64_t slots;                   /* most slots per ring */
	int touch[CHAIN_TOUCH__COUNT];    /* touch modes to run */
	uint64_t duration_ns;             /* measured time per point (a fifth more of warm-up first) */
	int rx_cpu_opt;                   /* --chain-rx-cpu: a CPU, -1 none, CHAIN_RX_WRITER */
	uint64_t inflight;                /* most messages sent and not yet received, 0: what the rings hold */
	int remote;                       /* --chain-receiver remote: another process receives */
	/* What the run saw, for run.json. */
	int writer_cpu;                   /* the sender's CPU (its affinity), -1 unpinned */
	int rx_cpu;                       /* the receiver's, -1 unpinned */
	int rx_yields;                    /* the host threads yield when they wait */
	long points, failed;              /* points run, points with bad messages */
	char guest_impl[16];              /* the responder's XXH3 build, as it said */
	char guest_copy[32];              /* the responder's copy per size class, as it said */
};

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void set_sizes(void *st, const char *arg)
{
	ivb_sizes_parse("--chain-sizes", arg, &((struct chain *)st)->sizes);
}

static void set_batch(void *st, const char *arg)
{
	struct chain *c = st;
	char buf[128], *tok, *save;

	if (strlen(arg) >= sizeof(buf))
		ivb_die_usage("--chain-batch: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	c->nbatch = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (c->nbatch == CHAIN_MAX_BATCHES)
			ivb_die_usage("--chain-batch: at most %d batches", CHAIN_MAX_BATCHES);
		c->batch[c->nbatch++] = (uint32_t)ivb_opt_count("--chain-batch", tok, 1, 1u << 20);
	}
	if (!c->nbatch)
		ivb_die_usage("--chain-batch: empty list (counts such as 1,16)");
}

static void set_slots(void *st, const char *arg)
{
	uint64_t v = ivb_opt_count("--chain-slots", arg, 1, 1u << 20);

	if (v & (v - 1))
		ivb_die_usage("--chain-slots: '%s' is not a power of two", arg);
	((struct chain *)st)->slots = v;
}

static void set_touch(void *st, const char *arg)
{
	struct chain *c = st;
	char buf[64], *tok, *save;
	int k, any = 0;

	if (strlen(arg) >= sizeof(buf))
		ivb_die_usage("--chain-touch: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	memset(c->touch, 0, sizeof(c->touch));
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < CHAIN_TOUCH__COUNT && strcmp(tok, touch_names[k]); k++)
			;
		if (k == CHAIN_TOUCH__COUNT)
			ivb_die_usage("--chain-touch: '%s' is not none, read or write", tok);
		c->touch[k] = any = 1;
	}
	if (!any)
		ivb_die_usage("--chain-touch: empty list (none, read, write)");
}

static void set_duration(void *st, const char *arg)
{
	((struct chain *)st)->duration_ns = ivb_opt_duration("--chain-duration", arg, 1000000000ull,
							      1000000ull, 600000000000ull,
							      "1ms..10m (e.g. 500ms)");
}

static void set_rx_cpu(void *st, const char *arg)
{
	((struct chain *)st)->rx_cpu_opt = !strcmp(arg, "writer") ? CHAIN_RX_WRITER :
					   ivb_opt_cpu("--chain-rx-cpu", arg, 1);
}

static void set_inflight(void *st, const char *arg)
{
	((struct chain *)st)->inflight = ivb_opt_count("--chain-inflight", arg, 0, 1u << 21);
}

static void set_receiver(void *st, const char *arg)
{
	if (strcmp(arg, "local") && strcmp(arg, "remote"))
		ivb_die_usage("--chain-receiver: '%s' is not local or remote", arg);
	((struct chain *)st)->remote = !strcmp(arg, "remote");
}

static const struct ivb_wl_option chain_opts[] = {
	{ "chain-sizes", 0, "LIST", "message sizes, at least 24 B, or ladder (default %s)", DEFAULT_SIZES, set_sizes },
	{ "chain-batch", 0, "LIST", "messages published per index store, each a point, <= slots (default %s)", DEFAULT_BATCHES, set_batch },
	{ "chain-slots", 0, "N", "most slots per ring, a power of two (default %s)", DEFAULT_SLOTS, set_slots },
	{ "chain-touch", 0, "LIST", "what the middle stage does: none, read (check), write (check, modify, check again) (default %s)", DEFAULT_TOUCH, set_touch },
	{ "chain-inflight", 0, "N", "most messages in the chain at once, 0: as many as the rings hold (default %s)", DEFAULT_INFLIGHT, set_inflight },
	{ "chain-duration", 0, "DUR", "measured time per point, after a fifth more of warm-up (default %s)", DEFAULT_DURATION, set_duration },
	{ "chain-rx-cpu", 0, "CPU", "the receiving thread's CPU: N, writer or none (default %s: the sender's, so the middle stage keeps its own)", DEFAULT_RX_CPU, set_rx_cpu },
	{ "chain-receiver", 0, "WHERE", "local (a thread of this process) or remote (another process, such as the host's chain_sink; plain mode) (default %s)", DEFAULT_RECEIVER, set_receiver },
	{ 0 },
};

static void chain_defaults(void *st)
{
	struct chain *c = st;

	set_sizes(st, DEFAULT_SIZES);
	set_batch(st, DEFAULT_BATCHES);
	set_slots(st, DEFAULT_SLOTS);
	set_touch(st, DEFAULT_TOUCH);
	set_duration(st, DEFAULT_DURATION);
	set_rx_cpu(st, DEFAULT_RX_CPU);
	set_inflight(st, DEFAULT_INFLIGHT);
	set_receiver(st, DEFAULT_RECEIVER);
	c->writer_cpu = c->rx_cpu = -1;
}

static void chain_check(const void *st, uint64_t capacity, const char *shm_name)
{
	const struct chain *c = st;
	int i;

	for (i = 0; i < c->sizes.n && !c->sizes.ladder; i++)
		if (c->sizes.v[i] < CHAIN_MIN_MESSAGE)
			ivb_die_usage("--chain-sizes: %u bytes is below %u: a chain message carries its "
				      "sequence number, send time and hop count", c->sizes.v[i],
				      CHAIN_MIN_MESSAGE);
	ivb_sizes_check("--chain-sizes", &c->sizes, capacity, shm_name);
	for (i = 0; i < c->nbatch; i++)
		if (c->batch[i] > c->slots)
			ivb_die_usage("--chain-batch: %u is more than --chain-slots %llu: a batch must "
				      "fit the ring", c->batch[i], (unsigned long long)c->slots);
}

/* ------------------------------------------------------------------ */
/* Responder: forward ring A onto ring B                               */
/* ------------------------------------------------------------------ */

/* Check the set-up copied from shared memory against this side's mapping. */
static enum ivb_error check_setup(const struct ivb_stream_params *p, const struct chain_setup *cs,
				  size_t map_size)
{
	const struct ivb_ring_geometry *a = &p->ring[0], *b = &p->ring[1];

	if (p->kind != IVB_STREAM_ECHO || p->verify >= IVB_VERIFY__COUNT || p->batch == 0 ||
	    cs->touch >= CHAIN_TOUCH__COUNT)
		return IVB_ERR_BAD_HEADER;
	if (ivb_ring_geometry_ok(a, map_size) || ivb_ring_geometry_ok(b, map_size))
		return IVB_ERR_BAD_HEADER;
	if (a->offset < IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES ||
	    b->offset < a->offset + ivb_ring_bytes(a))
		return IVB_ERR_BAD_HEADER; /* overlapping rings */
	if (p->msg_len < CHAIN_MIN_MESSAGE || (uint64_t)p->msg_len + IVB_SLOT_HEADER > a->slot_size ||
	    (uint64_t)p->msg_len + IVB_SLOT_HEADER > b->slot_size)
		return IVB_ERR_BAD_SIZE;
	return IVB_OK;
}

/* The responder's state during one point. */
struct forwarding {
	struct ivb_stream_params p;  /* a private copy of the set-up */
	uint32_t touch;              /* enum chain_touch, from the private copy */
	const uint64_t *stop;        /* the initiator gave the point up (abort) */
	struct ivb_ring a, b;        /* consumed, produced */
	uint64_t errors, first_bad;  /* messages that failed their check here */
};

/*
 * Forward message seq from slot in (ring A) to slot out (ring B): header
 * and message in one copy, of the length this side was told at set-up,
 * never the slot's. Reading and writing work on the new slot, which no one
 * else is meant to write before it is published; the receiver checks it
 * again anyway. 0, 1 when the message was bad (counted, and its sequence
 * number spoilt so the receiver counts it), -1 when a check could not be
 * computed.
 */
static int forward(struct forwarding *f, const struct ivb_slot_header *in,
		   struct ivb_slot_header *out, uint64_t seq)
{
	uint8_t *msg = (uint8_t *)out + IVB_SLOT_HEADER, check[IVB_VERIFY_MAX_LEN];
	enum ivb_verify v = (enum ivb_verify)f->p.verify;
	struct ivb_slot_header h;
	uint64_t hops;

	ivb_copy(out, in, IVB_SLOT_HEADER + f->p.msg_len);
	if (f->touch == CHAIN_TOUCH_NONE)
		return 0;
	memcpy(&h, out, sizeof(h));
	if (h.seq != seq || h.len != f->p.msg_len || h.verify != f->p.verify)
		goto bad;
	if (ivb_verify_compute(v, seq, msg, f->p.msg_len, check))
		return -1;
	if (v != IVB_VERIFY_NONE && memcmp(check, h.check, sizeof(check)))
		goto bad;
	if (f->touch == CHAIN_TOUCH_WRITE) {
		memcpy(&hops, msg + CHAIN_HOPS_AT, sizeof(hops));
		hops++;
		memcpy(msg + CHAIN_HOPS_AT, &hops, sizeof(hops));
		if (ivb_verify_compute(v, seq, msg, f->p.msg_len, out->check))
			return -1;
	}
	return 0;
bad:
	if (f->errors++ == 0)
		f->first_bad = seq;
	out->seq = ~seq;
	return 1;
}

/* What a ring wait's -errno means for the answer; *cancelled set for a new session. */
static enum ivb_error wait_error(int rc, int *cancelled)
{
	if (rc == -ECANCELED)
		*cancelled = 1;
	return rc == -EPROTO ? IVB_ERR_BAD_INDEX : IVB_ERR_STALLED;
}

/*
 * Forward until ring A ends and everything on it is on ring B (then end
 * ring B), a wait passes its deadline, an index is impossible, too many
 * messages are bad, the session changes, the initiator gives the point up
 * or a stop signal arrives. Side effects: the result block after the
 * set-up gets its counts whatever happened.
 */
static enum ivb_error chain_serve(struct ivb_responder *r, const struct ivb_message *m,
				  struct ivb_reply *reply)
{
	uint8_t *payload = (uint8_t *)r->hdr + IVB_PAYLOAD_OFFSET;
	struct ivb_stream_result *res = (struct ivb_stream_result *)(payload + sizeof(struct ivb_stream_params));
	uint64_t cpu0 = (uint64_t)ivb_thread_cpu_ns(0), rings0, sleeps0, spin0 = r->waiter->spin_ns;
	enum ivb_error e = IVB_OK;
	struct forwarding f = { 0 };
	struct chain_setup cs;
	int cancelled = 0, done = 0;

	(void)m, (void)reply;
	if (r->map_size < IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES)
		return IVB_ERR_BAD_SIZE;
	memcpy(&f.p, payload, sizeof(f.p));
	memcpy(&cs, payload + CHAIN_SETUP_AT, sizeof(cs));
	if ((e = check_setup(&f.p, &cs, r->map_size)) != IVB_OK)
		return e;
	f.touch = cs.touch;
	f.stop = &((const struct ivb_stream_params *)payload)->stop;
	/* The deadline comes from the other side: never wait longer than our own limit. */
	if (f.p.timeout_ns > r->silence_ns)
		f.p.timeout_ns = r->silence_ns;
	ivb_ring_init(&f.a, r->hdr, &f.p.ring[0], r->waiter, r->peer, f.p.batch, 0);
	ivb_ring_init(&f.b, r->hdr, &f.p.ring[1], r->waiter, r->peer, f.p.batch, 0);
	/* A new session ends every wait of the point: its initiator wins. */
	ivb_ring_watch(&f.a, &r->hdr->session_id, r->session);
	ivb_ring_watch(&f.b, &r->hdr->session_id, r->session);
	r->waiter->spin_ns = f.p.spin_ns;
	rings0 = r->waiter->rings;
	sleeps0 = r->waiter->sleeps;
	ivb_store_release(&res->started, 1);
	ivb_notify(r->waiter, r->peer);

	while (e == IVB_OK && !cancelled && !ivb_interrupted) {
		const struct ivb_slot_header *in = ivb_ring_peek(&f.a);
		struct ivb_slot_header *out;
		int rc;

		if (!in) {
			ivb_ring_flush(&f.b); /* ring A ran dry: what is forwarded must be visible */
			if (ivb_ring_drained(&f.a)) {
				if (ivb_ring_broken(&f.a))
					e = IVB_ERR_BAD_INDEX;
				done = 1;
				break;
			}
			if ((rc = ivb_ring_wait_message(&f.a, ivb_now_ns() + f.p.timeout_ns)) != 0)
				e = wait_error(rc, &cancelled);
			continue;
		}
		while (e == IVB_OK && !(out = ivb_ring_reserve(&f.b))) {
			if (ivb_ring_broken(&f.b))
				e = IVB_ERR_BAD_INDEX;
			else if (ivb_load_acquire(f.stop))
				e = IVB_ERR_STALLED; /* given up, and nobody takes ring B any more */
			else if ((rc = ivb_ring_wait_room(&f.b, ivb_now_ns() + f.p.timeout_ns)) != 0)
				e = wait_error(rc, &cancelled);
		}
		if (e != IVB_OK)
			break;
		if (forward(&f, in, out, f.a.local) < 0) {
			e = IVB_ERR_CRYPTO;
			break;
		}
		ivb_ring_release(&f.a);
		ivb_ring_commit(&f.b);
		if (f.errors > IVB_CHANNEL_MAX_BAD)
			e = IVB_ERR_TOO_MANY_BAD;
	}
	if (e == IVB_OK && ivb_ring_broken(&f.b))
		e = IVB_ERR_BAD_INDEX;
	ivb_ring_finish(&f.b, f.b.local);
	r->waiter->spin_ns = spin0;
	res->consumed = f.a.local;
	res->produced = f.b.local;
	res->errors = f.errors;
	res->first_bad_seq = f.first_bad;
	res->cpu_ns = (uint64_t)ivb_thread_cpu_ns(0) - cpu0;
	res->rings = r->waiter->rings - rings0;
	res->sleeps = r->waiter->sleeps - sleeps0;
	snprintf(res->verify_impl, sizeof(res->verify_impl), "%s", ivb_verify_impl());
	snprintf(res->copy_impl, sizeof(res->copy_impl), "%s", ivb_copy_impl());
	if (cancelled)
		return IVB_ERR_STALLED; /* not answered: the session is gone (session.c) */
	if (e != IVB_OK)
		return e;
	if (!done)
		return IVB_ERR_STALLED; /* a stop signal */
	return f.errors ? IVB_ERR_DIGEST : IVB_OK;
}

/* ------------------------------------------------------------------ */
/* Initiator: set a point up                                           */
/* ------------------------------------------------------------------ */

/* A message's bytes from a seed (splitmix64), with no hop yet: a remote
 * receiver makes the same from the seed on the remote line. */
static void chain_fill(uint8_t *msg, uint32_t len, uint64_t seed)
{
	uint32_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(msg + i, &z, len - i < 8 ? len - i : 8);
	}
	memset(msg + CHAIN_HOPS_AT, 0, sizeof(uint64_t));
}

static struct chain_remote *remote_lines(void *payload)
{
	return (struct chain_remote *)((uint8_t *)payload + CHAIN_REMOTE_AT);
}

/*
 * Prepare the point as ivb_channel_open() does (ivb_channel_prepare(), kind
 * IVB_STREAM_ECHO), with the message from the seed, then write the chain's
 * set-up, the touch (and, for a remote receiver, its line: remote), post IVB_CMD_CHAIN
 * and wait for the responder to start. Ring B's consumer side gets
 * rx_waiter, the receiving thread's own. Returns 0,
 * 1 when a message of len bytes cannot fit (nothing posted), -1 on failure
 * (ini->status says why).
 */
static int chain_open(struct ivb_channel *ch, struct ivb_initiator *ini, uint32_t len,
		      uint64_t slots, uint32_t batch, uint32_t touch, uint64_t responder_spin_ns,
		      struct ivb_waiter *rx_waiter, const struct chain_remote *remote)
{
	struct chain_setup *cs = (struct chain_setup *)(ini->payload + CHAIN_SETUP_AT);
	int rc = ivb_channel_prepare(ch, ini, IVB_STREAM_ECHO, len, slots, batch, IVB_VERIFY_XXH3,
				     responder_spin_ns);

	if (rc)
		return rc;
	chain_fill(ch->src, len, remote->seed);
	memset(cs, 0, sizeof(*cs));
	cs->touch = touch;
	/* Ring B's consumer is the receiving thread, which publishes per batch. */
	ivb_ring_init(&ch->rx, ini->hdr, &ch->params->ring[1], rx_waiter, ini->peer, batch, 1);
	{
		/* The remote lines: the receiver's cleared, then ours, the point last. */
		struct chain_remote *rl = remote_lines(ini->payload);

		memset(rl, 0, sizeof(*rl));
		if (remote->magic) {
			rl->seed = remote->seed;
			rl->duration_ns = remote->duration_ns;
			rl->inflight = remote->inflight;
			rl->magic = CHAIN_REMOTE_MAGIC;
			ivb_store_release(&rl->point, remote->point);
		}
	}
	rc = ivb_channel_post(ch, IVB_CMD_CHAIN);
	if (rc || !ivb_load_acquire(&ch->result->started)) {
		struct ivb_ack a;

		if (rc == 0 && ivb_wait_ack(ini, ch->post_seq, ch->post_t0, "chain", &a) == 0)
			snprintf(ini->status, sizeof(ini->status), "the responder refused a chain of "
				 "%u-byte messages: %s", len, ivb_error_name(a.error));
		else if (rc)
			snprintf(ini->status, sizeof(ini->status), "%s waiting for the responder to start "
				 "a chain of %u-byte messages", rc == -EINTR ? "interrupted" : "timeout", len);
		ivb_channel_free(ch);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Initiator: the receiving thread                                     */
/* ------------------------------------------------------------------ */

/* One point, shared by the sender (the run's thread) and the receiver. */
struct chain_point {
	struct ivb_channel ch;     /* sender: tx, src; receiver: rx, dst, errors */
	struct ivb_waiter rx_waiter; /* the receiver's: rings the responder, never sleeps */
	uint32_t touch;
	uint8_t *ref;              /* the message as sent, for the bytes a write must keep */
	uint64_t start;            /* when sending began: the warm-up counts from here */
	uint64_t warm_ns, duration_ns;
	int rx_cpu, yield;
	uint64_t inflight;         /* most messages sent and not received, 0: no limit */
	uint64_t timeout_ns;       /* the receiver's longest wait for a message */
	int64_t offset;            /* the sender's clock minus the receiver's (remote) */
	uint64_t slack;            /* how far off that may be: a stamp may be this much ahead */
	uint64_t idle_sleep_ns;    /* sleep this long when ring B is empty (0: yield or spin) */
	/* Written by the receiver, read after the join. */
	uint64_t t0, t1, c0, c1;   /* the window: its clock reads and ring B counts */
	uint64_t *samples;         /* latencies in the window, exactly */
	size_t nsamples, cap;
	struct ivb_hist *hist;     /* the rest, past CHAIN_MAX_SAMPLES (NULL until then) */
	uint64_t last_stamp;       /* send time of the last whole message */
	int rx_rc;                 /* 0, or why it stopped: -errno */
	/* Between the threads (release/acquire); a remote receiver's are on its lines. */
	uint64_t measured;         /* the window is over: the sender stops */
	uint64_t rx_done;          /* the receiver has ended */
	uint64_t quit;             /* the sender gave up: the receiver ends too */
	uint64_t received;         /* with inflight: messages taken off ring B so far */
	uint64_t *measured_p, *rx_done_p, *received_p, *quit_p; /* where each of them is */
};

/* The words between sender and receiver: this struct's (a thread). */
static void local_words(struct chain_point *pt)
{
	pt->measured_p = &pt->measured;
	pt->rx_done_p = &pt->rx_done;
	pt->received_p = &pt->received;
	pt->quit_p = &pt->quit;
}

/* Count the message just taken as bad (not timed). */
static void rx_bad(struct chain_point *pt)
{
	if (pt->ch.errors++ == 0)
		pt->ch.first_bad_seq = pt->ch.rx.local - 1;
}

/*
 * Keep one latency: exactly, or in the histogram once the array is full.
 * The array is allocated whole before the point (its pages are touched as
 * it fills): growing it in the window would stall the receiver there.
 */
static void rx_record(struct chain_point *pt, uint64_t ns)
{
	if (pt->nsamples < pt->cap) {
		pt->samples[pt->nsamples++] = ns;
		return;
	}
	if (!pt->hist && (pt->hist = malloc(sizeof(*pt->hist))))
		ivb_hist_reset(pt->hist);
	if (pt->hist)
		ivb_hist_record(pt->hist, ns);
}

/*
 * Check the stamp of the whole message in ch.dst (its check passed): the
 * sequence number again, a send time not before the previous message's nor
 * after now, the hop count its touch leaves, and after a write the bytes
 * after the stamp as sent. 1 when it holds.
 */
static int rx_stamp_ok(struct chain_point *pt, uint64_t now, uint64_t *sent)
{
	const uint8_t *d = pt->ch.dst;
	uint64_t seq, hops;

	memcpy(&seq, d, sizeof(seq));
	memcpy(sent, d + CHAIN_STAMP_AT, sizeof(*sent));
	memcpy(&hops, d + CHAIN_HOPS_AT, sizeof(hops));
	if (seq != pt->ch.rx.local - 1 || *sent < pt->last_stamp ||
	    hops != (pt->touch == CHAIN_TOUCH_WRITE ? 1u : 0u))
		return 0;
	pt->last_stamp = *sent;
	*sent -= (uint64_t)pt->offset; /* on the receiver's clock (wrapping: stamps are input) */
	if (*sent > now && *sent - now > pt->slack)
		return 0; /* sent after it arrived, by more than the clocks can be apart */
	if (*sent > now)
		*sent = now; /* within the offset's uncertainty: no time at all */
	return 1;
}

/*
 * The receiving thread: take ring B until its end marker, counting
 * arrivals in the window and timing every whole message in it; set
 * measured when the window closes (its rx_done when it ends is the
 * caller's to set; rx_rc says why).
 * It waits by polling (the host's one doorbell is the sender's to sleep
 * on), yielding its CPU when it shares the sender's.
 */
static int chain_rx_loop(void *arg)
{
	struct chain_point *pt = arg;
	struct ivb_channel *ch = &pt->ch;
	uint64_t idle_since = 0, now;
	int window = 0; /* 0 warming up, 1 measuring, 2 measured */

	for (;;) {
		int got = ivb_channel_poll(ch);
		uint64_t sent;

		now = ivb_now_ns();
		if (got == 1) {
			/* Timed first, checked after: the figure is the chain's, not the memcmp's. */
			if (!rx_stamp_ok(pt, now, &sent) ||
			    (pt->touch == CHAIN_TOUCH_WRITE &&
			     memcmp(ch->dst + CHAIN_MIN_MESSAGE, pt->ref + CHAIN_MIN_MESSAGE,
				    ch->len - CHAIN_MIN_MESSAGE)))
				rx_bad(pt);
			else if (window == 1)
				rx_record(pt, now - sent);
			if (ch->errors > IVB_CHANNEL_MAX_BAD) {
				pt->rx_rc = -EBADMSG;
				break;
			}
		} else if (got == -EPIPE) {
			break; /* ring B's end: the responder has finished */
		} else if (got < 0) {
			pt->rx_rc = got;
			break;
		}
		if (window == 0 && now - pt->start >= pt->warm_ns) {
			window = 1;
			pt->t0 = now;
			pt->c0 = ch->rx.local;
		} else if (window == 1 && now - pt->t0 >= pt->duration_ns && ch->rx.local > pt->c0) {
			/* (a window in which nothing arrived, the machine busy elsewhere,
			 * goes on until something does, or the deadline ends the point) */
			window = 2;
			pt->t1 = now;
			pt->c1 = ch->rx.local;
			ivb_store_release(pt->measured_p, 1);
		}
		if (got > 0) {
			if (pt->inflight) /* whole or bad, it has left the chain */
				ivb_store_release(pt->received_p, ch->rx.local);
			idle_since = 0;
			continue;
		}
		/* Nothing there: a deadline, a stop signal, the sender giving up. */
		if (!idle_since) {
			idle_since = now;
		} else if (now - idle_since > pt->timeout_ns) {
			pt->rx_rc = -ETIMEDOUT;
			break;
		}
		if (ivb_interrupted) {
			pt->rx_rc = -EINTR;
			break;
		}
		if (ivb_load_acquire(pt->quit_p)) {
			pt->rx_rc = -ECANCELED;
			break;
		}
		if (pt->idle_sleep_ns)
			ivb_sleep_ns(pt->idle_sleep_ns);
		else if (pt->yield)
			sched_yield();
	}
	return 0;
}

/* The receiving thread; a bus error on the shared memory (its file cut
 * short under us) ends it with -EFAULT rather than the process. */
static void *chain_rx(void *arg)
{
	struct chain_point *pt = arg;

	if (pt->rx_cpu >= 0)
		ivb_pin_self(pt->rx_cpu); /* a failure leaves it where the sender is */
	if (ivb_guarded_thread(chain_rx_loop, pt) == -EFAULT)
		pt->rx_rc = -EFAULT;
	ivb_store_release(&pt->rx_done, 1);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Initiator: one point                                                */
/* ------------------------------------------------------------------ */

/* 1 once the responder has answered the point's CHAIN message: it stopped. */
static int responder_answered(const struct ivb_channel *ch)
{
	uint64_t ack = ivb_load_acquire(&ch->ini->hdr->ack);
	enum ivb_state st = ivb_ack_state(ack);

	return ivb_ack_seq(ack) == ch->post_seq && (st == IVB_STATE_PROCESSED || st == IVB_STATE_ERROR);
}

/*
 * Send until the receiver's window is over or it stops: stamp, copy in,
 * publish; wait for room when ring A is full. 0, or -errno (-EPIPE: the
 * responder answered early; ivb_channel_responder_error() says why).
 */
static int chain_send(struct chain_point *pt)
{
	struct ivb_channel *ch = &pt->ch;
	struct ivb_waiter *w = ch->ini->waiter;
	uint64_t idle_since = 0;

	for (;;) {
		uint64_t now = ivb_now_ns();
		int rc;

		if (ivb_load_acquire(pt->measured_p) || ivb_load_acquire(pt->rx_done_p))
			return 0;
		if (pt->inflight && ch->tx.local - ivb_load_acquire(pt->received_p) >= pt->inflight) {
			ivb_ring_flush(&ch->tx); /* what is in flight must be visible */
			rc = 0;
		} else {
			memcpy(ch->src + CHAIN_STAMP_AT, &now, sizeof(now));
			rc = ivb_channel_try_send(ch);
		}
		if (rc < 0)
			return rc;
		if (rc == 1) {
			idle_since = 0;
			continue;
		}
		/* Ring A is full, or the chain holds --chain-inflight messages. */
		if (responder_answered(ch))
			return -EPIPE;
		if (ivb_interrupted)
			return -EINTR;
		if (!idle_since)
			idle_since = now;
		else if (now - idle_since > ch->ini->timeout_ns)
			return -ETIMEDOUT;
		if (pt->inflight || (pt->yield && !(w->ops && w->spin_ns != IVB_SPIN_FOREVER))) {
			if (pt->yield)
				sched_yield(); /* the receiver's turn on this CPU */
			continue;
		}
		rc = ivb_ring_wait_room(&ch->tx, now + CHAIN_WAIT_SLICE_NS);
		if (rc && rc != -ETIMEDOUT)
			return rc;
	}
}

/* The sender's CPU: the only one its affinity allows, or -1. */
static int own_cpu(void)
{
	cpu_set_t set;
	int i, cpu = -1;

	if (sched_getaffinity(0, sizeof(set), &set) || CPU_COUNT(&set) != 1)
		return -1;
	for (i = 0; i < CPU_SETSIZE && cpu < 0; i++)
		if (CPU_ISSET(i, &set))
			cpu = i;
	return cpu;
}

/* The receiver's latencies summarised; 1 when it is the histogram's. */
static int chain_summary(struct chain_point *pt, struct ivb_summary *s)
{
	memset(s, 0, sizeof(*s));
	if (pt->hist) { /* past CHAIN_MAX_SAMPLES: everything into the histogram */
		size_t i;

		for (i = 0; i < pt->nsamples; i++)
			ivb_hist_record(pt->hist, pt->samples[i]);
		pt->nsamples = 0;
		s->count = pt->hist->count;
		s->min = (double)pt->hist->min;
		s->max = (double)pt->hist->max;
		s->mean = ivb_hist_mean(pt->hist);
		s->p50 = ivb_hist_percentile(pt->hist, 50);
		s->p90 = ivb_hist_percentile(pt->hist, 90);
		s->p99 = ivb_hist_percentile(pt->hist, 99);
		s->p999 = ivb_hist_percentile(pt->hist, 99.9);
		return 1;
	}
	if (pt->nsamples)
		ivb_summarize(pt->samples, pt->nsamples, s);
	return 0;
}

/* Write the point's row (latencies s, from one clock or two within
 * clock_err ns) and print its line. 0, or -1 (ctx->status set). */
static int chain_row(struct chain *c, struct ivb_wl_ctx *ctx, struct chain_point *pt,
		     uint32_t batch, const struct ivb_summary *sum, int histogram,
		     uint64_t clock_err, struct ivb_csv *csv)
{
	struct ivb_channel *ch = &pt->ch;
	uint64_t messages = pt->c1 - pt->c0, ns = pt->t1 - pt->t0, moved = ch->rx.local;
	double secs = (double)ns / 1e9, bytes = (double)messages * ch->len;
	const struct ivb_summary s = *sum;
	const char *method = histogram ? "histogram" : "exact";
	char lat[160] = ",,,,,,"; /* no whole message in the window: no latency */

	if (s.count)
		snprintf(lat, sizeof(lat), "%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f", s.min, s.mean, s.p50,
			 s.p90, s.p99, s.p999, s.max);
	if (ivb_csv_row(csv, "%u,%u,%llu,%llu,%s,%s,%s,%llu,%.6f,%.1f,%.4f,%zu,%s,%s,%llu,%llu,%.4f,%s,%llu",
			ch->len, batch, (unsigned long long)(ch->tx.mask + 1),
			(unsigned long long)pt->inflight, touch_names[pt->touch],
			ivb_verify_name(ch->verify), ctx->wait_name,
			(unsigned long long)messages, secs, (double)messages / secs, bytes / (double)ns,
			s.count, method, lat,
			(unsigned long long)ch->errors, (unsigned long long)ch->result->errors,
			(double)ch->result->cpu_ns / 1e3 / (double)(moved ? moved : 1),
			c->remote ? "remote" : "local", (unsigned long long)clock_err)) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return -1;
	}
	if (!ctx->quiet)
		printf("  %-5s batch %-4u %9u B  %12.0f msg/s  %8.3f GB/s  p50 %9.3f  p99 %9.3f  "
		       "max %9.3f us%s%s\n", touch_names[pt->touch], batch, ch->len,
		       (double)messages / secs, bytes / (double)ns, s.p50 / 1e3, s.p99 / 1e3,
		       s.max / 1e3, c->remote ? "  (two clocks)" : "",
		       ch->errors || ch->result->errors ? "  BAD MESSAGES" : "");
	memcpy(c->guest_impl, ch->result->verify_impl, sizeof(c->guest_impl));
	c->guest_impl[sizeof(c->guest_impl) - 1] = 0;
	memcpy(c->guest_copy, ch->result->copy_impl, sizeof(c->guest_copy));
	c->guest_copy[sizeof(c->guest_copy) - 1] = 0;
	return 0;
}

/*
 * A remote receiver's start: answer its clock probes until it says it is
 * ready. 0, or -errno (-ENOTCONN: no receiver came within the deadline;
 * -EPIPE: it or the responder gave the point up).
 */
/* Answer a remote receiver's clock probe, if one is waiting: 1 if so. */
static int answer_probe(struct chain_remote *rl)
{
	uint64_t probe = ivb_load_acquire(&rl->probe);

	if (probe == rl->probe_ack)
		return 0;
	rl->probe_time = ivb_now_ns();
	ivb_store_release(&rl->probe_ack, probe);
	return 1;
}

static int remote_ready(struct chain_point *pt, struct chain_remote *rl)
{
	uint64_t t0 = ivb_now_ns();

	for (;;) {
		if (answer_probe(rl))
			continue;
		if (ivb_load_acquire(&rl->ready))
			return 0;
		if (ivb_load_acquire(&rl->done) || responder_answered(&pt->ch))
			return -EPIPE;
		if (ivb_interrupted)
			return -EINTR;
		if (ivb_now_ns() - t0 > pt->timeout_ns)
			return -ENOTCONN;
	}
}

/*
 * Wait for a remote receiver to end (ring B's end, or the sender's quit),
 * answering its second round of clock probes, then take its window,
 * counts, errors and latency summary as a local receiver's (ring B's
 * consumer index becomes the count it took), once, checked: shared memory
 * is input. 0, or -ETIMEDOUT, -EINTR, -EBADE (a report no receiver could
 * have made).
 */
static int remote_done(struct chain_point *pt, struct chain_remote *rl, struct ivb_summary *sum,
		       int *histogram, uint64_t *clock_err)
{
	uint64_t t0 = ivb_now_ns();
	struct ivb_ring *rx = &pt->ch.rx;
	struct chain_remote r;
	int ordered;

	while (!ivb_load_acquire(&rl->done)) {
		if (answer_probe(rl))
			continue;
		if (ivb_interrupted)
			return -EINTR;
		if (ivb_now_ns() - t0 > pt->timeout_ns)
			return -ETIMEDOUT;
	}
	memcpy(&r, rl, sizeof(r));
	*sum = (struct ivb_summary){ .count = r.count, .min = r.min, .mean = r.mean, .p50 = r.p50,
				     .p90 = r.p90, .p99 = r.p99, .p999 = r.p999, .max = r.max };
	ordered = r.count == 0 || (r.min >= 0 && r.min <= r.p50 && r.p50 <= r.p90 &&
				   r.p90 <= r.p99 && r.p99 <= r.p999 && r.p999 <= r.max &&
				   r.min <= r.mean && r.mean <= r.max);
	if (r.rc > 0 || r.rc < -4095 || r.measured > 1 || r.histogram > 1 ||
	    r.received > pt->ch.tx.local || r.errors > r.received || !ordered ||
	    (r.measured && (r.c0 > r.c1 || r.c1 > r.received || r.t0 >= r.t1 ||
			    r.count > r.c1 - r.c0)))
		return -EBADE;
	pt->rx_rc = (int)r.rc;
	pt->measured = r.measured;
	pt->t0 = r.t0, pt->t1 = r.t1, pt->c0 = r.c0, pt->c1 = r.c1;
	pt->ch.errors = r.errors;
	pt->ch.first_bad_seq = r.first_bad;
	*histogram = r.histogram != 0;
	*clock_err = r.offset_err_ns;
	rx->local = rx->published = rx->other = r.received;
	return 0;
}

/*
 * One point: open, start the receiver (a thread, or a remote one's
 * handshake), send until its window is over, end ring A, wait for the
 * receiver, close, write the row. 0, 1 (bad messages: a row that says so,
 * and the run fails), -1 (stopped; ctx->status says why).
 */
static int run_point(struct chain *c, struct ivb_wl_ctx *ctx, uint32_t size, uint32_t batch,
		     uint32_t touch, struct ivb_csv *csv)
{
	struct ivb_initiator *ini = ctx->ini;
	struct chain_point *pt = calloc(1, sizeof(*pt));
	struct chain_remote want = { 0 }, *rl = remote_lines(ini->payload);
	struct ivb_summary sum = { 0 };
	uint64_t clock_err = 0;
	pthread_t rx;
	int rc, prc, histogram = 0, ret = -1;

	if (!pt)
		ivb_die("out of memory");
	pt->rx_waiter = *ini->waiter;
	pt->rx_waiter.spin_ns = IVB_SPIN_FOREVER;
	pt->rx_waiter.rings = pt->rx_waiter.sleeps = 0;
	pt->touch = touch;
	pt->rx_cpu = c->rx_cpu;
	pt->yield = c->rx_yields;
	pt->warm_ns = c->duration_ns / 5;
	pt->duration_ns = c->duration_ns;
	pt->inflight = c->inflight;
	pt->timeout_ns = ini->timeout_ns;
	local_words(pt);
	if (ivb_random(&want.seed, sizeof(want.seed)) ||
	    (c->remote && ivb_random(&want.point, sizeof(want.point)))) {
		snprintf(ctx->status, ctx->status_len, "OpenSSL's random bytes failed");
		free(pt);
		return -1;
	}
	if (c->remote) {
		want.magic = CHAIN_REMOTE_MAGIC;
		want.point |= 1; /* never 0 */
		want.duration_ns = c->duration_ns;
		want.inflight = c->inflight;
		pt->measured_p = &rl->measured;
		pt->rx_done_p = &rl->done;
		pt->received_p = &rl->received;
		pt->quit_p = &rl->quit;
	} else {
		pt->samples = malloc(CHAIN_MAX_SAMPLES * sizeof(*pt->samples));
		pt->cap = pt->samples ? CHAIN_MAX_SAMPLES : 0; /* without it, the histogram */
	}
	rc = chain_open(&pt->ch, ini, size, c->slots, batch, touch, ctx->responder_spin_ns,
			&pt->rx_waiter, &want);
	if (rc == 1) {
		if (!ctx->quiet)
			printf("  %-5s batch %-4u %9u B: does not fit the shared memory; skipped\n",
			       touch_names[touch], batch, size);
		free(pt->samples);
		free(pt);
		return 0;
	}
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		free(pt->samples);
		free(pt);
		return -1;
	}
	pt->ref = malloc(size);
	if (!pt->ref)
		ivb_die("out of memory");
	memcpy(pt->ref, pt->ch.src, size);
	if (c->remote) {
		if ((rc = remote_ready(pt, rl)) != 0) {
			if (rc == -ENOTCONN)
				snprintf(ctx->status, ctx->status_len, "no remote receiver took ring B within "
					 "%.0f s (--chain-receiver remote: in a vm-vm run the host's "
					 "chain_sink takes it)", (double)pt->timeout_ns / 1e9);
			else if (rc == -EPIPE && ivb_load_acquire(&rl->done))
				snprintf(ctx->status, ctx->status_len, "the remote receiver refused the "
					 "point: %s", ivb_channel_error((int)rl->rc));
			else
				snprintf(ctx->status, ctx->status_len, "%s waiting for the remote receiver "
					 "of a chain of %u-byte messages", ivb_channel_error(rc), size);
			ivb_store_release(&rl->quit, 1);
			ivb_channel_abort(&pt->ch);
			goto out;
		}
		pt->start = ivb_now_ns();
		rc = chain_send(pt);
		ivb_ring_finish(&pt->ch.tx, pt->ch.tx.local);
		if (rc)
			ivb_store_release(&rl->quit, 1);
		prc = remote_done(pt, rl, &sum, &histogram, &clock_err);
		if (!rc)
			rc = prc;
	} else {
		pt->start = ivb_now_ns();
		pt->last_stamp = pt->start;
		if ((prc = pthread_create(&rx, NULL, chain_rx, pt)) != 0) {
			snprintf(ctx->status, ctx->status_len, "cannot start the receiving thread: %s",
				 strerror(prc));
			ivb_channel_abort(&pt->ch);
			goto out;
		}
		rc = chain_send(pt);
		/* The end of ring A: the responder forwards what is left and ends ring B. */
		ivb_ring_finish(&pt->ch.tx, pt->ch.tx.local);
		if (rc)
			ivb_store_release(&pt->quit, 1);
		pthread_join(rx, NULL);
	}
	if (!rc && pt->rx_rc)
		rc = pt->rx_rc;
	if (!rc && !pt->measured)
		rc = -EPIPE; /* ring B ended before the window did: the responder stopped */
	if (rc && ivb_interrupted)
		rc = -EINTR; /* the stop signal is why, whatever the responder did since */
	if (rc) {
		if (rc == -EPIPE)
			snprintf(ctx->status, ctx->status_len, "the responder stopped forwarding %u-byte "
				 "messages (touch %s, batch %u) at message %llu: %s", size,
				 touch_names[touch], batch, (unsigned long long)pt->ch.rx.local,
				 ivb_channel_responder_error(&pt->ch));
		else
			snprintf(ctx->status, ctx->status_len, "%s in a chain of %u-byte messages "
				 "(touch %s, batch %u; sent %llu, received %llu)",
				 rc == -ECANCELED ? "the receiver was stopped" :
				 rc == -EFAULT ? "a bus error in the receiver (the shared memory was cut short)" :
				 rc == -ETIMEDOUT && c->remote ? "timeout (the remote receiver did not end)" :
				 rc == -EBADE ? "an impossible report from the remote receiver (its lines "
						"are forged or corrupt)" :
				 ivb_channel_error(rc), size,
				 touch_names[touch], batch, (unsigned long long)pt->ch.tx.local,
				 (unsigned long long)pt->ch.rx.local);
		ivb_channel_abort(&pt->ch);
		goto out;
	}
	if (!c->remote)
		histogram = chain_summary(pt, &sum);
	rc = ivb_channel_close(&pt->ch);
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		goto out;
	}
	c->points++;
	if (chain_row(c, ctx, pt, batch, &sum, histogram, clock_err, csv))
		goto out;
	ret = 0;
	if (rc > 0 || pt->ch.errors) {
		snprintf(ctx->status, ctx->status_len, "%llu bad message(s) at the end of a chain of "
			 "%u-byte messages (touch %s, batch %u), %llu found by the middle stage; the "
			 "first with sequence number %llu", (unsigned long long)pt->ch.errors, size,
			 touch_names[touch], batch, (unsigned long long)pt->ch.result->errors,
			 (unsigned long long)(pt->ch.errors ? pt->ch.first_bad_seq :
					      pt->ch.result->first_bad_seq));
		ivb_warn("%s", ctx->status);
		c->failed++;
		ret = 1;
	}
out:
	if (c->remote)
		ivb_store_release(&rl->magic, 0); /* no receiver acts on this point again */
	free(pt->ref);
	free(pt->samples);
	free(pt->hist);
	free(pt);
	return ret;
}

static enum ivb_wl_outcome chain_run(void *st, struct ivb_wl_ctx *ctx)
{
	struct chain *c = st;
	struct ivb_csv *csv = ivb_csv_open(ctx->res, &chain_csv);
	int t, b, i, rc = 0;

	if (!csv) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return IVB_WL_STOPPED;
	}
	c->writer_cpu = own_cpu();
	if (c->remote && ctx->ini->waiter->ops) {
		/* The middle stage would sleep on ring B with no one to ring it. */
		snprintf(ctx->status, ctx->status_len, "--chain-receiver remote needs plain mode: a "
			 "remote receiver polls, and has no doorbell to wake the middle stage");
		ivb_csv_close(csv);
		return IVB_WL_STOPPED;
	}
	c->rx_cpu = c->remote ? -1 : c->rx_cpu_opt == CHAIN_RX_WRITER ? c->writer_cpu : c->rx_cpu_opt;
	/* Sharing a CPU (the sender's; on two CPUs, else the responder's) or
	 * not pinned at all: wait by yielding, or the two spinning threads
	 * take turns of a whole time slice (milliseconds a message). */
	c->rx_yields = !c->remote &&
		       (c->rx_cpu < 0 || c->rx_cpu == c->writer_cpu || ivb_cpu_count() <= 2);
	if (!ctx->quiet && c->remote)
		printf("  sender on CPU %d, receiver remote (another process: its clock is not "
		       "ours, each point measures the offset)\n", c->writer_cpu);
	else if (!ctx->quiet)
		printf("  sender on CPU %d, receiver on CPU %d%s\n", c->writer_cpu, c->rx_cpu,
		       c->rx_yields ? " (it yields its CPU while it waits)" : "");
	for (t = 0; t < CHAIN_TOUCH__COUNT && rc >= 0; t++) {
		if (!c->touch[t])
			continue;
		for (b = 0; b < c->nbatch && rc >= 0; b++) {
			for (i = 0; i < c->sizes.n && rc >= 0; i++) {
				if (c->sizes.v[i] < CHAIN_MIN_MESSAGE) { /* a ladder's smallest */
					if (!ctx->quiet)
						printf("  %u B: below the chain's %u-byte stamp; skipped\n",
						       c->sizes.v[i], CHAIN_MIN_MESSAGE);
					continue;
				}
				rc = run_point(c, ctx, c->sizes.v[i], c->batch[b], (uint32_t)t, csv);
			}
			if (rc >= 0 && ivb_csv_flush(csv)) {
				snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
				rc = -1;
			}
		}
	}
	if (ivb_csv_close(csv) && rc >= 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		rc = -1;
	}
	if (rc < 0)
		return IVB_WL_STOPPED;
	return c->failed ? IVB_WL_ERRORS : IVB_WL_COMPLETE;
}

/* ------------------------------------------------------------------ */
/* A remote receiver (chain.h): the host's end of guest A -> guest B    */
/* ------------------------------------------------------------------ */

/*
 * Measure the offset between the sender's clock and ours: probes, each
 * answered with the sender's clock; the fastest round trip's midpoint is
 * taken, within half of that round trip. CHAIN_PROBES of them, and more
 * (for up to CHAIN_PROBE_NS) while none came back within
 * CHAIN_PROBE_GOOD_NS: a descheduled side makes every probe of a short
 * burst slow. 0, or -errno.
 */
static int sink_offset(struct chain_remote *rl, uint64_t timeout_ns, int yield, int64_t *offset,
		       uint64_t *err)
{
	uint64_t best = UINT64_MAX, k, start = ivb_now_ns(), base = rl->probe; /* ours */

	for (k = 1; k <= CHAIN_PROBES || (best > CHAIN_PROBE_GOOD_NS &&
					  ivb_now_ns() - start < CHAIN_PROBE_NS); k++) {
		uint64_t t1 = ivb_now_ns(), t2;

		ivb_store_release(&rl->probe, base + k);
		while (ivb_load_acquire(&rl->probe_ack) != base + k) {
			if (ivb_interrupted)
				return -EINTR;
			if (ivb_load_acquire(&rl->quit))
				return -ECANCELED;
			if (ivb_now_ns() - t1 > timeout_ns)
				return -ETIMEDOUT;
			if (yield)
				sched_yield();
		}
		t2 = ivb_now_ns();
		if (t2 - t1 < best) {
			best = t2 - t1;
			/* Unsigned, then as signed: the sender's clock is input. */
			*offset = (int64_t)(rl->probe_time - (t1 + best / 2));
		}
	}
	*err = best / 2 + 1;
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* sink_offset() where the sender can answer at once (o->probe_cpu: a CPU
 * of its own, or the middle stage's for these few microseconds), then
 * back where we receive. */
static int sink_probe(struct chain_remote *rl, uint64_t timeout_ns, int yield,
		      const struct ivb_chain_sink_opts *o, int64_t *offset, uint64_t *err)
{
	cpu_set_t own;
	int rc, moved = o->probe_cpu >= 0 && o->probe_cpu != o->cpu &&
			!pthread_getaffinity_np(pthread_self(), sizeof(own), &own) &&
			!ivb_pin_self(o->probe_cpu);

	rc = sink_offset(rl, timeout_ns, moved ? 0 : yield, offset, err);
	if (moved)
		pthread_setaffinity_np(pthread_self(), sizeof(own), &own);
	return rc;
}

/* One point as its remote receiver; the outcome is on the lines (done). */
static void sink_point(uint8_t *base, size_t map_size, struct chain_remote *rl,
		       const struct ivb_chain_sink_opts *o)
{
	uint8_t *payload = base + IVB_PAYLOAD_OFFSET;
	struct chain_point *pt = calloc(1, sizeof(*pt));
	struct ivb_stream_params p;
	struct chain_setup cs;
	struct ivb_waiter w;
	struct ivb_summary s;
	int64_t after;
	uint64_t after_err;
	int rc = 0, measured = 0;

	ivb_waiter_poll(&w);
	memcpy(&p, payload, sizeof(p));
	memcpy(&cs, payload + CHAIN_SETUP_AT, sizeof(cs));
	if (!pt || check_setup(&p, &cs, map_size) != IVB_OK) {
		rc = pt ? -EPROTO : -ENOMEM;
		goto done;
	}
	pt->ch.len = p.msg_len;
	pt->ch.verify = (enum ivb_verify)p.verify;
	pt->ch.dst = malloc(p.msg_len);
	pt->ref = malloc(p.msg_len);
	pt->samples = malloc(CHAIN_MAX_SAMPLES * sizeof(*pt->samples));
	pt->cap = pt->samples ? CHAIN_MAX_SAMPLES : 0;
	if (!pt->ch.dst || !pt->ref) {
		rc = -ENOMEM;
		goto done;
	}
	chain_fill(pt->ref, p.msg_len, rl->seed);
	ivb_ring_init(&pt->ch.rx, base, &p.ring[1], &w, IVB_NO_PEER, p.batch, 0);
	pt->touch = cs.touch;
	pt->duration_ns = rl->duration_ns;
	pt->warm_ns = pt->duration_ns / 5;
	pt->inflight = rl->inflight;
	pt->timeout_ns = p.timeout_ns < o->timeout_ns ? p.timeout_ns : o->timeout_ns;
	pt->yield = o->yield;
	pt->idle_sleep_ns = o->idle_sleep_ns;
	pt->measured_p = &rl->measured;
	pt->rx_done_p = &rl->done;
	pt->received_p = &rl->received;
	pt->quit_p = &rl->quit;
	/* Probing where the sender's CPU is free to answer (a CPU of its own,
	 * or the middle stage's for these few microseconds), then back. */
	if ((rc = sink_probe(rl, pt->timeout_ns, pt->yield, o, &pt->offset, &pt->slack)) != 0)
		goto done;
	measured = 1;
	pt->start = ivb_now_ns();
	ivb_store_release(&rl->ready, 1);
	if (ivb_guarded_thread(chain_rx_loop, pt) == -EFAULT)
		pt->rx_rc = -EFAULT;
	rc = pt->rx_rc;
	/* Again after the point (the sender answers while it waits for done):
	 * the clocks may drift apart, and the error bound says by how much. */
	if (!rc && !(rc = sink_probe(rl, pt->timeout_ns, pt->yield, o, &after, &after_err))) {
		uint64_t drift = (uint64_t)after - (uint64_t)pt->offset;

		if ((int64_t)drift < 0)
			drift = -drift;

		pt->slack = sat_add(sat_add(pt->slack, after_err), drift);
	}
	rl->histogram = (uint64_t)chain_summary(pt, &s);
	rl->count = s.count;
	rl->min = s.min, rl->mean = s.mean, rl->p50 = s.p50, rl->p90 = s.p90;
	rl->p99 = s.p99, rl->p999 = s.p999, rl->max = s.max;
	rl->t0 = pt->t0, rl->t1 = pt->t1, rl->c0 = pt->c0, rl->c1 = pt->c1;
	rl->offset_ns = pt->offset;
	rl->offset_err_ns = pt->slack;
	rl->errors = pt->ch.errors;
	rl->first_bad = pt->ch.first_bad_seq;
	rl->received = pt->ch.rx.local;
	if (o->say) {
		double secs = (double)(pt->t1 - pt->t0) / 1e9;

		fprintf(o->say, "chain_sink: %u B, touch %s, batch %u: %llu received, %.0f msg/s "
			"in its window, p50 %.3f us, clock offset %lld ns +- %llu, %llu bad%s%s\n",
			p.msg_len, touch_names[pt->touch], p.batch,
			(unsigned long long)pt->ch.rx.local,
			secs > 0 ? (double)(pt->c1 - pt->c0) / secs : 0.0, s.p50 / 1e3,
			(long long)pt->offset, (unsigned long long)pt->slack,
			(unsigned long long)pt->ch.errors, rc ? ": " : "", rc ? ivb_channel_error(rc) : "");
		fflush(o->say);
	}
done:
	if (!measured && o->say) {
		fprintf(o->say, "chain_sink: a point not received: %s\n",
			rc == -EPROTO ? "its set-up is impossible (forged or corrupt)" :
			rc == -ENOMEM ? "out of memory" : ivb_channel_error(rc));
		fflush(o->say);
	}
	rl->rc = rc;
	ivb_store_release(&rl->done, 1);
	if (pt) {
		free(pt->ch.dst);
		free(pt->ref);
		free(pt->samples);
		free(pt->hist);
		free(pt);
	}
}

int ivb_chain_sink(void *base, size_t map_size, const struct ivb_chain_sink_opts *o)
{
	const struct ivb_header *hdr = base;
	struct chain_remote *rl = remote_lines((uint8_t *)base + IVB_PAYLOAD_OFFSET);
	uint64_t last = 0, idle = ivb_now_ns();
	long points = 0;

	if (map_size < IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES)
		return -1;
	while (!ivb_interrupted) {
		uint64_t point = ivb_load_acquire(&rl->point);

		if (ivb_load_acquire(&hdr->magic) == IVB_MAGIC &&
		    ivb_load_acquire(&rl->magic) == CHAIN_REMOTE_MAGIC && point && point != last &&
		    !ivb_load_acquire(&rl->ready) && !ivb_load_acquire(&rl->done)) {
			uint64_t free = 0;

			last = point;
			/* One receiver per point: a second chain_sink on the same memory
			 * (the sender clears pid with the rest) leaves it alone. */
			if (!__atomic_compare_exchange_n(&rl->pid, &free, (uint64_t)getpid(), 0,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				if (o->say)
					fprintf(o->say, "chain_sink: a point taken by process %llu; "
						"left to it\n", (unsigned long long)free);
				continue;
			}
			sink_point(base, map_size, rl, o);
			points++;
			idle = ivb_now_ns();
			continue;
		}
		if (o->idle_ns && ivb_now_ns() - idle > o->idle_ns)
			break;
		ivb_sleep_ns(o->poll_ns);
	}
	return (int)(points > INT32_MAX ? INT32_MAX : points);
}

static void chain_json(const void *st, struct ivb_json *j, int selected)
{
	const struct chain *c = st;
	long long sizes[IVB_MAX_SIZES], batches[CHAIN_MAX_BATCHES];
	const char *touches[CHAIN_TOUCH__COUNT];
	int i, n = 0;

	if (!selected)
		return;
	for (i = 0; i < c->sizes.n; i++)
		sizes[i] = c->sizes.v[i];
	for (i = 0; i < c->nbatch; i++)
		batches[i] = c->batch[i];
	for (i = 0; i < CHAIN_TOUCH__COUNT; i++)
		if (c->touch[i])
			touches[n++] = touch_names[i];
	ivb_json_begin(j, "chain");
	ivb_json_ints(j, "sizes", sizes, c->sizes.n);
	ivb_json_ints(j, "batches", batches, c->nbatch);
	ivb_json_strs(j, "touch", touches, n);
	ivb_json_uint(j, "slots", c->slots);
	ivb_json_uint(j, "inflight", c->inflight);
	ivb_json_uint(j, "duration_ns", c->duration_ns);
	ivb_json_uint(j, "warmup_ns", c->duration_ns / 5);
	ivb_json_str(j, "verify", ivb_verify_name(IVB_VERIFY_XXH3));
	ivb_json_int(j, "sender_cpu", c->writer_cpu);
	ivb_json_int(j, "receiver_cpu", c->rx_cpu);
	ivb_json_str(j, "receiver", c->remote ? "remote: another process (in a vm-vm run, the host's "
		     "chain_sink)" : "local: a thread of host_writer");
	ivb_json_str(j, "receiver_cpu_choice", c->remote ? "remote" : c->rx_cpu_opt == CHAIN_RX_WRITER ? "writer" :
		     c->rx_cpu_opt < 0 ? "none" : "given");
	ivb_json_str(j, "receiver_cpu_reason", c->remote ? "another process: it chooses its own" :
		     c->rx_cpu_opt == CHAIN_RX_WRITER ?
		     "shares the sender's CPU so the middle stage (responder, vCPU) keeps a CPU of its own" :
		     "--chain-rx-cpu");
	ivb_json_str(j, "receiver_wait", c->remote ? "its own" : c->rx_yields ?
		     "poll, yielding the CPU while it waits" : "poll (a CPU of its own)");
	ivb_json_str(j, "latency", c->remote ?
		     "sender's clock before its copy into ring A -> the remote receiver's clock after "
		     "its copy out of ring B and its check, less the clocks' offset (measured each "
		     "point from at least 64 probes: the fastest round trip's midpoint; clock_error_ns "
		     "bounds the error: half the fastest round trip before the point and after it, "
		     "plus how far the offset moved between the two)" :
		     "sender's clock before its copy into ring A -> receiver's clock "
		     "after its copy out of ring B and its check");
	ivb_json_str(j, "host_verify_impl", ivb_verify_impl());
	ivb_json_str(j, "guest_verify_impl", c->guest_impl);
	ivb_json_str(j, "host_copy_impl", ivb_copy_impl());
	ivb_json_str(j, "guest_copy_impl", c->guest_copy);
	ivb_json_int(j, "points", c->points);
	ivb_json_int(j, "points_with_bad_messages", c->failed);
	ivb_json_end(j);
}

static const char *const chain_json_keys[] = { "chain", NULL };

const struct ivb_workload ivb_wl_chain = {
	.name = "chain",
	.summary = "a forwarding chain: ring A -> responder -> ring B -> a second host thread, every message checked",
	.command = IVB_CMD_CHAIN,
	.csv = &chain_csv,
	.opts = chain_opts,
	.state_size = sizeof(struct chain),
	.defaults = chain_defaults,
	.check = chain_check,
	.run = chain_run,
	.serve = chain_serve,
	.json = chain_json,
	.json_keys = chain_json_keys,
};
