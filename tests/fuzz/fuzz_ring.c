/*
 * fuzz_ring - libFuzzer on the message ring (common/ring.c) with a hostile
 * peer: both halves of this side, the consumer of one ring and the
 * producer of another, called in an order the input chooses, while the
 * input also writes, between any two calls, whatever it likes into either
 * ring's control block and slots (the other side's indices, its end marker,
 * slot headers; even our own words), or behaves like an honest peer
 * (valid messages and a head on the first ring, a tail that frees what was
 * published on the second).
 *
 * The input: two bytes of geometry (slot count 1..32, slot size 128..320,
 * where the indices start: 0, or 16 short of 2^64 so that they wrap;
 * batch, message length, check kind), then operations of one byte and the
 * operands they read (see op() below). Each ring lives in a buffer of its
 * exact size, so ASan reports any access past it.
 *
 * What must hold, besides no crash and no sanitizer report (checked after
 * every call; a violation names itself in a SUMMARY line and aborts):
 *   - the consumer's view of the producer's head is a value the head held
 *     (a validated load), never behind the one before, never more than a
 *     ring ahead of what it has consumed; it hands out a slot only below it;
 *   - the producer's view of the consumer's tail is a value the tail held,
 *     never behind the one before, never ahead of what it published; it
 *     hands out a slot only when that tail leaves room; ivb_ring_consumed()
 *     says the same (a stream's "received" count never exceeds what was
 *     sent and never goes backwards);
 *   - a broken ring stays broken: no slot, waits end at once with -EPROTO,
 *     drained;
 *   - a message read as whole has the sequence number, length and kind of
 *     check asked for, and its check is right for the bytes copied out;
 *   - every call returns: waits have a deadline of now (a watchdog aborts
 *     an input that runs for FUZZ_RING_LIMIT_S seconds).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

#define FUZZ_RING_MAX_VALUES 8192 /* index values remembered per ring */
#define FUZZ_RING_LIMIT_S 10      /* one input may run this long */
#define FUZZ_RING_MAX_LEN 256     /* largest message */

void __sanitizer_report_error_summary(const char *error_summary);

/* ------------------------------------------------------------------ */
/* Failing, and the watchdog                                           */
/* ------------------------------------------------------------------ */

static void violated(const char *what)
{
	char line[256];

	snprintf(line, sizeof(line), "fuzz_ring: invariant violated: %s", what);
	__sanitizer_report_error_summary(line);
	abort();
}

#define MUST(cond, what) do { if (!(cond)) violated(what); } while (0)

static volatile time_t input_started; /* 0 between inputs */
static pthread_t main_thread;

/* Abort the main thread (its stack shows the loop) when an input runs too long. */
static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		time_t t = input_started;

		sleep(1);
		if (t && t == input_started && time(NULL) - t > FUZZ_RING_LIMIT_S) {
			__sanitizer_report_error_summary("fuzz_ring: a call did not return (a loop bounded "
							 "only by the peer's indices)");
			pthread_kill(main_thread, SIGABRT);
			return NULL;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The input                                                           */
/* ------------------------------------------------------------------ */

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t byte(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t word(struct input *in)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t)byte(in) << (8 * i);
	return v;
}

/*
 * An index value: sometimes any 64 bits, mostly near a reference (the
 * honest value, or the other side's own), where the interesting edges are.
 */
static uint64_t index_value(struct input *in, uint64_t ref, uint64_t nslots)
{
	uint8_t b = byte(in);

	switch (b & 7) {
	case 0: return word(in);
	case 1: return ref + nslots + (b >> 3);       /* just past a ring ahead */
	case 2: return ref - 1 - (b >> 3);            /* behind */
	case 3: return ref + (1ull << 63);            /* half the space away */
	case 4: return UINT64_MAX - (b >> 3);
	default: return ref + (int8_t)byte(in);       /* near */
	}
}

/* ------------------------------------------------------------------ */
/* The rings and what their words have held                            */
/* ------------------------------------------------------------------ */

struct values {
	uint64_t v[FUZZ_RING_MAX_VALUES];
	size_t n;
};

static void remember(struct values *s, uint64_t v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == v)
			return;
	if (s->n < FUZZ_RING_MAX_VALUES)
		s->v[s->n++] = v;
}

static int held(const struct values *s, uint64_t v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == v)
			return 1;
	return s->n == FUZZ_RING_MAX_VALUES; /* forgot some: cannot tell */
}

struct side {
	uint8_t *buf;               /* control block and slots, exactly */
	size_t size;
	struct ivb_ring_geometry g;
	struct ivb_ring r;          /* this side's view */
	struct values seen;         /* every value the other side's index held */
	uint64_t prev_other;        /* r.other after the last call */
	int was_broken;
	uint64_t honest;            /* the honest peer's own index (head, or tail) */
};

static uint64_t ctl_word(const struct side *s, size_t off)
{
	uint64_t v;

	memcpy(&v, s->buf + off, sizeof(v));
	return v;
}

static void ctl_set(struct side *s, size_t off, uint64_t v)
{
	memcpy(s->buf + off, &v, sizeof(v));
}

/* ------------------------------------------------------------------ */
/* Invariants                                                          */
/* ------------------------------------------------------------------ */

static void check_consumer(struct side *c)
{
	struct ivb_ring *r = &c->r;
	uint64_t n = r->mask + 1;

	MUST(held(&c->seen, r->other), "the consumer took a head the producer never wrote");
	MUST(r->other - r->local <= n, "the consumer's head is more than a ring ahead of it");
	MUST(r->other - c->prev_other <= UINT64_MAX / 2, "the consumer's head went backwards");
	MUST(!c->was_broken || ivb_ring_broken(r), "a broken ring (consumer) was repaired");
	c->prev_other = r->other;
	c->was_broken = ivb_ring_broken(r);
}

static void check_producer(struct side *p)
{
	struct ivb_ring *r = &p->r;
	uint64_t n = r->mask + 1;

	MUST(held(&p->seen, r->other), "the producer took a tail the consumer never wrote");
	MUST(r->local - r->other <= n, "the producer is more than a ring ahead of the tail it saw");
	MUST(r->published - r->other <= n, "the producer took a tail ahead of what it published");
	MUST(r->other - p->prev_other <= UINT64_MAX / 2, "the producer's tail went backwards");
	MUST(!p->was_broken || ivb_ring_broken(r), "a broken ring (producer) was repaired");
	p->prev_other = r->other;
	p->was_broken = ivb_ring_broken(r);
}

/* A message ivb_message_read() accepted: is it what it asked for? */
static void check_accepted(const struct ivb_slot_header *s, uint64_t seq, uint32_t len,
			   enum ivb_verify v, const uint8_t *dst)
{
	uint8_t check[IVB_VERIFY_MAX_LEN];
	struct ivb_slot_header h;

	memcpy(&h, s, sizeof(h));
	MUST(h.seq == seq && h.len == len && h.verify == (uint32_t)v,
	     "a message with another sequence number, length or check kind was accepted");
	MUST(!memcmp(dst, (const uint8_t *)s + IVB_SLOT_HEADER, len),
	     "the bytes copied out are not the slot's");
	if (v != IVB_VERIFY_NONE) {
		MUST(ivb_verify_compute(v, seq, dst, len, check) == 0, "no check computed");
		MUST(!memcmp(check, h.check, sizeof(check)), "a message with a wrong check was accepted");
	}
}

/* ------------------------------------------------------------------ */
/* One operation                                                       */
/* ------------------------------------------------------------------ */

struct state {
	struct side c, p;           /* we consume c, produce on p */
	struct ivb_waiter w;
	uint32_t len;               /* message bytes */
	enum ivb_verify verify;
	const struct ivb_slot_header *peeked; /* what the consumer's last peek handed out */
	uint8_t msg[FUZZ_RING_MAX_LEN], dst[FUZZ_RING_MAX_LEN];
};

/* Honest producer on c: k valid messages after what it published, then its head. */
static void honest_produce(struct state *st, unsigned k)
{
	struct side *c = &st->c;
	unsigned i;

	for (i = 0; i < k; i++) {
		uint64_t seq = c->honest;
		struct ivb_slot_header *s = (struct ivb_slot_header *)(c->buf + IVB_RING_CTL_SIZE +
					    (seq & (c->g.nslots - 1)) * c->g.slot_size);

		/* Never over a message the consumer has not freed (as it says). */
		if (seq - ctl_word(c, offsetof(struct ivb_ring_ctl, tail)) >= c->g.nslots)
			break;
		memset(st->msg, (int)(seq * 7 + 1), st->len);
		if (ivb_message_write(s, seq, st->msg, st->len, st->verify))
			abort();
		c->honest++;
	}
	ivb_store_release(&c->r.ctl->head, c->honest);
}

static void op(struct state *st, struct input *in)
{
	struct side *c = &st->c, *p = &st->p;
	uint8_t o = byte(in);
	uint64_t now = ivb_now_ns(), v;
	int rc;

	switch (o % 17) {
	/* ---- the peer ---- */
	case 0: /* c's head */
		ctl_set(c, offsetof(struct ivb_ring_ctl, head), index_value(in, c->honest, c->g.nslots));
		break;
	case 1: /* c's end marker */
		ctl_set(c, offsetof(struct ivb_ring_ctl, end), index_value(in, c->honest, c->g.nslots));
		break;
	case 2: { /* bytes of a slot header of c (or of its message) */
		uint64_t slot = byte(in) % c->g.nslots;
		size_t off = byte(in) % (IVB_SLOT_HEADER + 8);

		v = word(in);
		memcpy(c->buf + IVB_RING_CTL_SIZE + slot * c->g.slot_size + off, &v, sizeof(v));
		break;
	}
	case 3: /* an honest producer on c */
		honest_produce(st, 1 + byte(in) % 8);
		break;
	case 4: /* an honest end on c */
		ivb_store_release(&c->r.ctl->end, c->honest);
		break;
	case 5: /* p's tail */
		ctl_set(p, offsetof(struct ivb_ring_ctl, tail), index_value(in, p->honest, p->g.nslots));
		break;
	case 6: { /* an honest consumer on p: free up to what p published */
		uint64_t head = ctl_word(p, offsetof(struct ivb_ring_ctl, head));
		unsigned k = 1 + byte(in) % 8;

		if (head - p->honest < p->g.nslots + 1)
			p->honest += head - p->honest < k ? head - p->honest : k;
		ivb_store_release(&p->r.ctl->tail, p->honest);
		break;
	}
	case 7: { /* any 8 bytes of either control block, ours included */
		struct side *s = byte(in) & 1 ? c : p;
		size_t off = byte(in) % (IVB_RING_CTL_SIZE - 7);

		v = word(in);
		memcpy(s->buf + off, &v, sizeof(v));
		break;
	}

	/* ---- this side, consumer of c ---- */
	case 8:
	case 9: /* peek (again: it hands out the same slot until a release), read, release */
		st->peeked = ivb_ring_peek(&c->r);
		if (st->peeked) {
			uint64_t seq = c->r.local;

			MUST(!c->was_broken, "a broken ring handed out a message");
			MUST(c->r.other != seq, "a message handed out from an empty ring");
			MUST((const uint8_t *)st->peeked >= c->buf + IVB_RING_CTL_SIZE &&
			     (const uint8_t *)st->peeked + c->g.slot_size <= c->buf + c->size,
			     "a slot outside the ring");
			if (ivb_message_read(st->peeked, c->g.slot_size, seq, st->len, st->verify, st->dst,
					     sizeof(st->dst)) == 0)
				check_accepted(st->peeked, seq, st->len, st->verify, st->dst);
			if (o % 17 == 9) {
				ivb_ring_release(&c->r);
				st->peeked = NULL;
			}
		}
		break;
	case 10: /* wait for a message, no later than now */
		rc = ivb_ring_wait_message(&c->r, now);
		MUST(!c->was_broken || rc == -EPROTO, "a wait on a broken ring (consumer) did not say so");
		MUST(rc == 0 || rc == -ETIMEDOUT || rc == -EPROTO, "an unexpected wait outcome (consumer)");
		break;
	case 11:
		rc = ivb_ring_drained(&c->r);
		MUST(!c->was_broken || rc, "a broken ring is not drained");
		break;

	/* ---- this side, producer on p ---- */
	case 12:
	case 13: { /* reserve, write, commit */
		struct ivb_slot_header *s = ivb_ring_reserve(&p->r);

		if (!s)
			break;
		MUST(!p->was_broken, "a broken ring handed out a slot");
		MUST((uint8_t *)s >= p->buf + IVB_RING_CTL_SIZE &&
		     (uint8_t *)s + p->g.slot_size <= p->buf + p->size, "a slot outside the ring");
		MUST(p->r.local - p->r.other < p->r.mask + 1, "a slot handed out with the ring full");
		memset(st->msg, (int)p->r.local, st->len);
		if (ivb_message_write(s, p->r.local, st->msg, st->len, st->verify))
			abort();
		ivb_ring_commit(&p->r);
		if (o % 17 == 13)
			ivb_ring_flush(&p->r);
		break;
	}
	case 14:
		rc = ivb_ring_wait_room(&p->r, now);
		MUST(!p->was_broken || rc == -EPROTO, "a wait on a broken ring (producer) did not say so");
		MUST(rc == 0 || rc == -ETIMEDOUT || rc == -EPROTO, "an unexpected wait outcome (producer)");
		break;
	case 15:
		ivb_ring_finish(&p->r, p->r.local);
		break;
	case 16: { /* what a stream counts as received */
		uint64_t before = p->prev_other, n = ivb_ring_consumed(&p->r);

		MUST(n == p->r.other, "consumed() is not the tail the producer holds");
		MUST(held(&p->seen, n), "consumed() is a tail the consumer never wrote");
		MUST(p->r.published - n <= p->r.mask + 1, "consumed() exceeds what was published");
		MUST(n - before <= UINT64_MAX / 2, "consumed() went backwards");
		break;
	}
	}
	/* What the other side's words hold now is what a later load may see. */
	remember(&c->seen, ctl_word(c, offsetof(struct ivb_ring_ctl, head)));
	remember(&p->seen, ctl_word(p, offsetof(struct ivb_ring_ctl, tail)));
	check_consumer(c);
	check_producer(p);
}

/* ------------------------------------------------------------------ */
/* The target                                                          */
/* ------------------------------------------------------------------ */

static void side_init(struct side *s, uint8_t geo, struct ivb_waiter *w, uint32_t batch)
{
	/* Half the inputs start both sides 16 messages short of 2^64: the indices wrap. */
	uint64_t start = geo & 0x80 ? UINT64_MAX - 15 : 0;

	s->g = (struct ivb_ring_geometry){ .offset = 0, .nslots = 1ull << (geo % 6),
					   .slot_size = IVB_SLOT_HEADER + 64 * (1 + (geo >> 3) % 4) };
	s->size = ivb_ring_bytes(&s->g);
	s->buf = malloc(s->size);
	if (!s->buf)
		abort();
	memset(s->buf, 0, s->size);
	/* Both sides start at the same index: ours, and the peer's words. */
	ivb_ring_init(&s->r, s->buf, &s->g, w, IVB_NO_PEER, batch, 1);
	s->r.ctl->head = s->r.ctl->tail = start;
	s->r.local = s->r.published = s->r.other = start;
	s->seen.n = 0;
	remember(&s->seen, start);
	s->prev_other = start;
	s->was_broken = 0;
	s->honest = start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	static int started;
	struct input in = { data, size };
	uint8_t geo, cfg;
	uint32_t batch;
	int ops = 0;

	if (!started) {
		pthread_t t;

		main_thread = pthread_self();
		if (pthread_create(&t, NULL, watchdog, NULL))
			abort();
		pthread_detach(t);
		started = 1;
	}
	input_started = time(NULL);
	geo = byte(&in);
	cfg = byte(&in);
	memset(&st, 0, sizeof(st));
	ivb_waiter_poll(&st.w);
	st.len = 1 + (uint32_t)(cfg * 37u) % 64u;
	st.verify = (enum ivb_verify)(cfg % 3);
	batch = 1 + (cfg >> 5);
	side_init(&st.c, geo, &st.w, batch);
	side_init(&st.p, geo ^ 0x2a, &st.w, batch);
	while (in.left && ops++ < 4096)
		op(&st, &in);
	free(st.c.buf);
	free(st.p.buf);
	input_started = 0;
	return 0;
}
