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
#define CHAIN_MAX_BATCHES 8
#define CHAIN_MIN_MESSAGE 24u       /* sequence number, send time, hop count */
#define CHAIN_STAMP_AT 8u           /* message bytes 8..15: the sender's clock */
#define CHAIN_HOPS_AT 16u           /* message bytes 16..23: the hop counter a write increments */
#define CHAIN_MAX_SAMPLES (1u << 24) /* latencies kept exactly (128 MiB, touched as used); then a histogram */
#define CHAIN_WAIT_SLICE_NS 10000000ull /* longest single wait of the sender: it looks at the receiver */
#define CHAIN_RX_WRITER (-2)        /* --chain-rx-cpu writer */

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

static const struct ivb_csv_schema chain_csv = {
	"chain_results.csv",
	"message_bytes,batch,slots,inflight,touch,verify,wait,messages,seconds,msgs_per_s,gbps,latency_count,"
	"latency_method,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,errors,nf_errors,"
	"nf_cpu_us_per_msg",
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

static const struct ivb_wl_option chain_opts[] = {
	{ "chain-sizes", 0, "LIST", "message sizes, at least 24 B, or ladder (default %s)", DEFAULT_SIZES, set_sizes },
	{ "chain-batch", 0, "LIST", "messages published per index store, each a point, <= slots (default %s)", DEFAULT_BATCHES, set_batch },
	{ "chain-slots", 0, "N", "most slots per ring, a power of two (default %s)", DEFAULT_SLOTS, set_slots },
	{ "chain-touch", 0, "LIST", "what the middle stage does: none, read (check), write (check, modify, check again) (default %s)", DEFAULT_TOUCH, set_touch },
	{ "chain-inflight", 0, "N", "most messages in the chain at once, 0: as many as the rings hold (default %s)", DEFAULT_INFLIGHT, set_inflight },
	{ "chain-duration", 0, "DUR", "measured time per point, after a fifth more of warm-up (default %s)", DEFAULT_DURATION, set_duration },
	{ "chain-rx-cpu", 0, "CPU", "the receiving thread's CPU: N, writer or none (default %s: the sender's, so the middle stage keeps its own)", DEFAULT_RX_CPU, set_rx_cpu },
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

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
	uint64_t cpu0 = thread_cpu_ns(), rings0, sleeps0, spin0 = r->waiter->spin_ns;
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
	res->cpu_ns = thread_cpu_ns() - cpu0;
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

static uint64_t pow2_floor(uint64_t x)
{
	uint64_t p = 1;

	if (!x)
		return 0;
	while (p <= x / 2)
		p *= 2;
	return p;
}

struct started_wait {
	const struct ivb_stream_result *res;
	const struct ivb_header *hdr;
	uint64_t seq;
};

static int started_or_refused(void *arg)
{
	struct started_wait *s = arg;
	uint64_t ack = ivb_load_acquire(&s->hdr->ack);

	return ivb_load_acquire(&s->res->started) ||
	       (ivb_ack_seq(ack) == s->seq && ivb_ack_state(ack) == IVB_STATE_ERROR);
}

/*
 * Lay the two rings out as ivb_channel_open() does (each half of what
 * follows the set-up page, in whole pages), write the set-up with the
 * touch, post IVB_CMD_CHAIN and wait for the responder to start. Ring B's
 * consumer side gets rx_waiter, the receiving thread's own. Returns 0,
 * 1 when a message of len bytes cannot fit (nothing posted), -1 on failure
 * (ini->status says why).
 */
static int chain_open(struct ivb_channel *ch, struct ivb_initiator *ini, uint32_t len,
		      uint64_t slots, uint32_t batch, uint32_t touch, uint64_t responder_spin_ns,
		      struct ivb_waiter *rx_waiter)
{
	uint64_t base = IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES, half, slot_size, nslots;
	struct ivb_stream_params *p = (struct ivb_stream_params *)ini->payload;
	struct ivb_stream_result *res = (struct ivb_stream_result *)(ini->payload + sizeof(*p));
	struct chain_setup *cs = (struct chain_setup *)(ini->payload + CHAIN_SETUP_AT);
	struct started_wait sw;
	int i, rc;

	memset(ch, 0, sizeof(*ch));
	if (ini->map_size < base + 2 * (IVB_RING_CTL_SIZE + 4096))
		return 1;
	half = ((ini->map_size - base) / 2) & ~4095ull;
	slot_size = ((uint64_t)len + IVB_SLOT_HEADER + IVB_CACHE_LINE - 1) & ~(uint64_t)(IVB_CACHE_LINE - 1);
	nslots = pow2_floor((half - IVB_RING_CTL_SIZE) / slot_size);
	if (nslots == 0)
		return 1;
	if (nslots > slots)
		nslots = pow2_floor(slots);
	ch->ini = ini;
	ch->params = p;
	ch->result = res;
	ch->len = len;
	ch->verify = IVB_VERIFY_XXH3;
	ch->src = malloc(len);
	ch->dst = malloc(len);
	if (!ch->src || !ch->dst || ivb_random(ch->src, len)) {
		snprintf(ini->status, sizeof(ini->status), "out of memory or OpenSSL failed for "
			 "%u-byte messages", len);
		ivb_channel_free(ch);
		return -1;
	}
	memset(ch->src + CHAIN_HOPS_AT, 0, sizeof(uint64_t)); /* no hop yet */
	memset(p, 0, sizeof(*p));
	memset(res, 0, sizeof(*res));
	memset(cs, 0, sizeof(*cs));
	p->kind = IVB_STREAM_ECHO;
	p->verify = ch->verify;
	p->msg_len = len;
	p->batch = batch;
	p->spin_ns = responder_spin_ns;
	p->timeout_ns = ini->timeout_ns;
	cs->touch = touch;
	for (i = 0; i < 2; i++)
		p->ring[i] = (struct ivb_ring_geometry){ .offset = base + (uint64_t)i * half,
							 .nslots = nslots, .slot_size = slot_size };
	ivb_ring_init(&ch->tx, ini->hdr, &p->ring[0], ini->waiter, ini->peer, batch, 1);
	ivb_ring_init(&ch->rx, ini->hdr, &p->ring[1], rx_waiter, ini->peer, batch, 1);
	ini->hdr->payload_size = IVB_CHANNEL_SETUP_BYTES;
	ch->post_t0 = ivb_now_ns();
	ch->post_seq = ivb_post(ini, IVB_CMD_CHAIN);
	sw = (struct started_wait){ res, ini->hdr, ch->post_seq };
	rc = ivb_wait_until(ini->waiter, started_or_refused, &sw, ch->post_t0 + ini->timeout_ns);
	if (rc || !ivb_load_acquire(&res->started)) {
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
	/* Written by the receiver, read after the join. */
	uint64_t t0, t1, c0, c1;   /* the window: its clock reads and ring B counts */
	uint64_t *samples;         /* latencies in the window, exactly */
	size_t nsamples, cap;
	struct ivb_hist *hist;     /* the rest, past CHAIN_MAX_SAMPLES (NULL until then) */
	uint64_t last_stamp;       /* send time of the last whole message */
	int rx_rc;                 /* 0, or why it stopped: -errno */
	/* Between the threads (release/acquire). */
	uint64_t measured;         /* the window is over: the sender stops */
	uint64_t rx_done;          /* the receiver has ended */
	uint64_t quit;             /* the sender gave up: the receiver ends too */
	uint64_t received;         /* with inflight: messages taken off ring B so far */
};

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
	if (seq != pt->ch.rx.local - 1 || *sent > now || *sent < pt->last_stamp ||
	    hops != (pt->touch == CHAIN_TOUCH_WRITE ? 1u : 0u))
		return 0;
	pt->last_stamp = *sent;
	return 1;
}

/*
 * The receiving thread: take ring B until its end marker, counting
 * arrivals in the window and timing every whole message in it; set
 * measured when the window closes, rx_done when it ends (rx_rc says why).
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
			ivb_store_release(&pt->measured, 1);
		}
		if (got > 0) {
			if (pt->inflight) /* whole or bad, it has left the chain */
				ivb_store_release(&pt->received, ch->rx.local);
			idle_since = 0;
			continue;
		}
		/* Nothing there: a deadline, a stop signal, the sender giving up. */
		if (!idle_since) {
			idle_since = now;
		} else if (now - idle_since > ch->ini->timeout_ns) {
			pt->rx_rc = -ETIMEDOUT;
			break;
		}
		if (ivb_interrupted) {
			pt->rx_rc = -EINTR;
			break;
		}
		if (ivb_load_acquire(&pt->quit)) {
			pt->rx_rc = -ECANCELED;
			break;
		}
		if (pt->yield)
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

		if (ivb_load_acquire(&pt->measured) || ivb_load_acquire(&pt->rx_done))
			return 0;
		if (pt->inflight && ch->tx.local - ivb_load_acquire(&pt->received) >= pt->inflight) {
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

/* Write the point's row and print its line. 0, or -1 (ctx->status set). */
static int chain_row(struct chain *c, struct ivb_wl_ctx *ctx, struct chain_point *pt,
		     uint32_t batch, struct ivb_csv *csv)
{
	struct ivb_channel *ch = &pt->ch;
	uint64_t messages = pt->c1 - pt->c0, ns = pt->t1 - pt->t0, moved = ch->rx.local;
	double secs = (double)ns / 1e9, bytes = (double)messages * ch->len;
	struct ivb_summary s = { 0 };
	const char *method = "exact";
	char lat[160] = ",,,,,,"; /* no whole message in the window: no latency */

	if (pt->hist) { /* past CHAIN_MAX_SAMPLES: everything into the histogram */
		size_t i;

		for (i = 0; i < pt->nsamples; i++)
			ivb_hist_record(pt->hist, pt->samples[i]);
		method = "histogram";
		s.count = pt->hist->count;
		s.min = (double)pt->hist->min;
		s.max = (double)pt->hist->max;
		s.mean = ivb_hist_mean(pt->hist);
		s.p50 = ivb_hist_percentile(pt->hist, 50);
		s.p90 = ivb_hist_percentile(pt->hist, 90);
		s.p99 = ivb_hist_percentile(pt->hist, 99);
		s.p999 = ivb_hist_percentile(pt->hist, 99.9);
	} else if (pt->nsamples) {
		ivb_summarize(pt->samples, pt->nsamples, &s);
	}
	if (s.count)
		snprintf(lat, sizeof(lat), "%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f", s.min, s.mean, s.p50,
			 s.p90, s.p99, s.p999, s.max);
	if (ivb_csv_row(csv, "%u,%u,%llu,%llu,%s,%s,%s,%llu,%.6f,%.1f,%.4f,%zu,%s,%s,%llu,%llu,%.4f",
			ch->len, batch, (unsigned long long)(ch->tx.mask + 1),
			(unsigned long long)pt->inflight, touch_names[pt->touch],
			ivb_verify_name(ch->verify), ctx->wait_name,
			(unsigned long long)messages, secs, (double)messages / secs, bytes / (double)ns,
			s.count, method, lat,
			(unsigned long long)ch->errors, (unsigned long long)ch->result->errors,
			(double)ch->result->cpu_ns / 1e3 / (double)(moved ? moved : 1))) {
		snprintf(ctx->status, ctx->status_len, "%s", ivb_results_error(ctx->res));
		return -1;
	}
	if (!ctx->quiet)
		printf("  %-5s batch %-4u %9u B  %12.0f msg/s  %8.3f GB/s  p50 %9.3f  p99 %9.3f  "
		       "max %9.3f us%s\n", touch_names[pt->touch], batch, ch->len,
		       (double)messages / secs, bytes / (double)ns, s.p50 / 1e3, s.p99 / 1e3,
		       s.max / 1e3, ch->errors || ch->result->errors ? "  BAD MESSAGES" : "");
	memcpy(c->guest_impl, ch->result->verify_impl, sizeof(c->guest_impl));
	c->guest_impl[sizeof(c->guest_impl) - 1] = 0;
	memcpy(c->guest_copy, ch->result->copy_impl, sizeof(c->guest_copy));
	c->guest_copy[sizeof(c->guest_copy) - 1] = 0;
	return 0;
}

/*
 * One point: open, start the receiver, send until its window is over, end
 * ring A, join it, close, write the row. 0, 1 (bad messages: a row that
 * says so, and the run fails), -1 (stopped; ctx->status says why).
 */
static int run_point(struct chain *c, struct ivb_wl_ctx *ctx, uint32_t size, uint32_t batch,
		     uint32_t touch, struct ivb_csv *csv)
{
	struct ivb_initiator *ini = ctx->ini;
	struct chain_point *pt = calloc(1, sizeof(*pt));
	pthread_t rx;
	int rc, prc, ret = -1;

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
	pt->samples = malloc(CHAIN_MAX_SAMPLES * sizeof(*pt->samples));
	pt->cap = pt->samples ? CHAIN_MAX_SAMPLES : 0; /* without it, the histogram */
	rc = chain_open(&pt->ch, ini, size, c->slots, batch, touch, ctx->responder_spin_ns,
			&pt->rx_waiter);
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
				 ivb_channel_error(rc), size,
				 touch_names[touch], batch, (unsigned long long)pt->ch.tx.local,
				 (unsigned long long)pt->ch.rx.local);
		ivb_channel_abort(&pt->ch);
		goto out;
	}
	rc = ivb_channel_close(&pt->ch);
	if (rc < 0) {
		snprintf(ctx->status, ctx->status_len, "%s", ini->status);
		goto out;
	}
	c->points++;
	if (chain_row(c, ctx, pt, batch, csv))
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
	c->rx_cpu = c->rx_cpu_opt == CHAIN_RX_WRITER ? c->writer_cpu : c->rx_cpu_opt;
	/* Sharing a CPU (the sender's; on two CPUs, else the responder's) or
	 * not pinned at all: wait by yielding, or the two spinning threads
	 * take turns of a whole time slice (milliseconds a message). */
	c->rx_yields = c->rx_cpu < 0 || c->rx_cpu == c->writer_cpu || ivb_cpu_count() <= 2;
	if (!ctx->quiet)
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
	ivb_json_str(j, "receiver_cpu_choice", c->rx_cpu_opt == CHAIN_RX_WRITER ? "writer" :
		     c->rx_cpu_opt < 0 ? "none" : "given");
	ivb_json_str(j, "receiver_cpu_reason",
		     c->rx_cpu_opt == CHAIN_RX_WRITER ?
		     "shares the sender's CPU so the middle stage (responder, vCPU) keeps a CPU of its own" :
		     "--chain-rx-cpu");
	ivb_json_str(j, "receiver_wait", c->rx_yields ? "poll, yielding the CPU while it waits" :
		     "poll (a CPU of its own)");
	ivb_json_str(j, "latency", "sender's clock before its copy into ring A -> receiver's clock "
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
