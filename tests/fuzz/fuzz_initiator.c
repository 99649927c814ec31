/*
 * fuzz_initiator - libFuzzer on the initiator's receive path: a stream
 * channel (workloads/channel.c) set up, driven and closed by this side
 * against a responder that is a script. The input writes, whenever the
 * initiator waits (its waiter's sleep: one step of the script per sleep),
 * and between the calls the input chooses, what a responder may write and
 * more: the started flag, the ack word and error code, the result block,
 * ring 1's head, end marker and slots, ring 0's tail; or it behaves like
 * an honest responder (valid messages on ring 1, a tail on ring 0 that
 * frees what was published, an honest end, PROCESSED).
 *
 * The input: one byte of set-up (direction, message length, check, slots,
 * batch), then script steps of one byte and their operands (responder_step()),
 * interleaved with the initiator's calls (drive()): send (with and without
 * waiting for room), poll, wait, the stream's received count
 * (ivb_ring_consumed() on ring 0), until an operation says to close; the
 * rest of the input is the script while ivb_channel_close() runs.
 *
 * What must hold, besides no crash and no sanitizer report (a violation
 * names itself in a SUMMARY line and aborts):
 *   - ring 1: the initiator's view of the head is a value the head held,
 *     never behind the one before, never more than a ring ahead of what it
 *     took; a message counted as whole (poll returns 1) has the sequence
 *     number, length and check asked for; "the responder finished"
 *     (-EPIPE) only at an end marker equal to what was taken;
 *   - ring 0: the received count is a tail the responder wrote, never
 *     behind the one before, never ahead of what was sent;
 *   - a broken ring stays broken, and no message is taken from it;
 *   - ivb_channel_close() says clean (0) only when the script answered
 *     PROCESSED for the point, no message taken was bad, and the counts
 *     add up: ring 0's tail and the result's consumed are what was sent,
 *     the result's produced is what was taken;
 *   - every call returns: a watchdog aborts an input that runs for
 *     FUZZ_INI_LIMIT_S seconds (every wait has a deadline of
 *     FUZZ_INI_TIMEOUT_NS; a loop bounded only by what the responder
 *     claims never ends).
 * The responder's region is static, as in fuzz_responder.c.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "session.h"

#define REGION (256u << 10)
#define FUZZ_INI_TIMEOUT_NS 300000ull /* every wait's deadline: 0.3 ms */
#define FUZZ_INI_LIMIT_S 10           /* one input may run this long */
#define FUZZ_INI_MAX_VALUES 8192      /* index values remembered per ring */
#define FUZZ_INI_MAX_CALLS 512        /* initiator calls per input */

void __sanitizer_report_error_summary(const char *error_summary);

static void violated(const char *what)
{
	char line[256];

	snprintf(line, sizeof(line), "fuzz_initiator: invariant violated: %s", what);
	__sanitizer_report_error_summary(line);
	abort();
}

#define MUST(cond, what) do { if (!(cond)) violated(what); } while (0)

static volatile time_t input_started;
static pthread_t main_thread;

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		time_t t = input_started;

		sleep(1);
		if (t && t == input_started && time(NULL) - t > FUZZ_INI_LIMIT_S) {
			__sanitizer_report_error_summary("fuzz_initiator: a call did not return (a loop "
							 "bounded only by the responder's claims)");
			pthread_kill(main_thread, SIGABRT);
			return NULL;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The script and what the shared words have held                      */
/* ------------------------------------------------------------------ */

struct values {
	uint64_t v[FUZZ_INI_MAX_VALUES];
	size_t n;
};

static void remember(struct values *s, uint64_t v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == v)
			return;
	if (s->n < FUZZ_INI_MAX_VALUES)
		s->v[s->n++] = v;
}

static int held(const struct values *s, uint64_t v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == v)
			return 1;
	return s->n == FUZZ_INI_MAX_VALUES;
}

static struct fuzz {
	const uint8_t *p;           /* the input not yet read */
	size_t left;
	uint8_t *mem;               /* the shared region */
	struct ivb_channel *ch;     /* once set up (rings valid), else NULL */
	struct ivb_stream_params *params;
	struct ivb_stream_result *result;
	uint64_t post_seq;          /* the STREAM message, once posted */
	uint32_t len;
	enum ivb_verify verify;
	enum ivb_stream_kind kind;
	uint64_t r1_honest;         /* the honest producer's head on ring 1 */
	uint64_t r0_honest;         /* the honest consumer's tail on ring 0 */
	struct values heads1;       /* every value ring 1's head held */
	struct values tails0;       /* every value ring 0's tail held */
	uint8_t msg[512];
} fz;

static uint8_t byte(void)
{
	if (!fz.left)
		return 0;
	fz.left--;
	return *fz.p++;
}

static uint64_t word(void)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t)byte() << (8 * i);
	return v;
}

static uint64_t index_value(uint64_t ref, uint64_t nslots)
{
	uint8_t b = byte();

	switch (b & 7) {
	case 0: return word();
	case 1: return ref + nslots + (b >> 3);
	case 2: return ref - 1 - (b >> 3);
	case 3: return ref + (1ull << 63);
	case 4: return UINT64_MAX - (b >> 3);
	default: return ref + (int8_t)byte();
	}
}

static struct ivb_ring_ctl *ring_ctl(int k)
{
	return (struct ivb_ring_ctl *)(fz.mem + fz.params->ring[k].offset);
}

static uint8_t *ring_slot(int k, uint64_t i)
{
	const struct ivb_ring_geometry *g = &fz.params->ring[k];

	return fz.mem + g->offset + IVB_RING_CTL_SIZE + (i & (g->nslots - 1)) * g->slot_size;
}

/* Note what the words the initiator loads hold now. */
static void snapshot(void)
{
	if (!fz.ch)
		return;
	remember(&fz.heads1, ring_ctl(1)->head);
	remember(&fz.tails0, ring_ctl(0)->tail);
}

/* Write the next honest message on ring 1 (not yet published); 0 when it is full. */
static int honest_message(void)
{
	uint64_t seq = fz.r1_honest;

	if (seq - ivb_load_acquire(&ring_ctl(1)->tail) >= fz.params->ring[1].nslots)
		return 0; /* never over what the initiator has not freed */
	memset(fz.msg, (int)(seq * 13 + 5), fz.len);
	if (ivb_message_write((struct ivb_slot_header *)ring_slot(1, seq), seq, fz.msg, fz.len,
			      fz.verify))
		abort();
	fz.r1_honest++;
	return 1;
}

/* One step of the responder's script (while the initiator waits, or between its calls). */
static void responder_step(void)
{
	struct ivb_header *h = (struct ivb_header *)fz.mem;
	uint8_t o;

	if (!fz.left)
		return;
	o = byte();
	switch (o % 12) {
	case 0:
		ivb_store_release(&fz.result->started, 1);
		break;
	case 1: { /* an ack word: for the point, or near it, in any state */
		uint8_t b = byte();

		h->error_code = b >> 4;
		ivb_store_release(&h->ack, ivb_ack_make(fz.post_seq + (uint64_t)((b >> 2) & 3) - 1,
							(enum ivb_state)(b & 3)));
		break;
	}
	case 2: /* the honest end of the point: take (and echo) what ring 0 holds, finish ring 1, PROCESSED */
		if (fz.ch) {
			uint64_t head0 = ivb_load_acquire(&ring_ctl(0)->head);

			while (fz.kind != IVB_STREAM_G2H && fz.r0_honest != head0 &&
			       head0 - fz.r0_honest <= fz.params->ring[0].nslots) {
				if (fz.kind == IVB_STREAM_ECHO && !honest_message())
					break;
				fz.r0_honest++;
			}
			ivb_store_release(&ring_ctl(0)->tail, fz.r0_honest);
			ivb_store_release(&ring_ctl(1)->head, fz.r1_honest);
			ivb_store_release(&ring_ctl(1)->end, fz.r1_honest);
			fz.result->consumed = fz.r0_honest;
			fz.result->produced = fz.r1_honest;
			h->error_code = IVB_OK;
			ivb_store_release(&h->ack, ivb_ack_make(fz.post_seq, IVB_STATE_PROCESSED));
		}
		break;
	case 3: { /* honest messages on ring 1 */
		unsigned k = 1 + byte() % 8, i;

		if (!fz.ch)
			break;
		for (i = 0; i < k && honest_message(); i++)
			;
		ivb_store_release(&ring_ctl(1)->head, fz.r1_honest);
		break;
	}
	case 4: { /* an honest tail on ring 0: free what was published */
		uint64_t head;
		unsigned k = 1 + byte() % 16;

		if (!fz.ch)
			break;
		head = ivb_load_acquire(&ring_ctl(0)->head);
		if (head - fz.r0_honest <= fz.params->ring[0].nslots)
			fz.r0_honest += head - fz.r0_honest < k ? head - fz.r0_honest : k;
		ivb_store_release(&ring_ctl(0)->tail, fz.r0_honest);
		break;
	}
	case 5: /* ring 1's head, forged */
		if (fz.ch)
			ivb_store_release(&ring_ctl(1)->head, index_value(fz.r1_honest,
									  fz.params->ring[1].nslots));
		break;
	case 6: /* ring 1's end marker, forged */
		if (fz.ch)
			ivb_store_release(&ring_ctl(1)->end, index_value(fz.r1_honest,
									 fz.params->ring[1].nslots));
		break;
	case 7: /* ring 0's tail, forged */
		if (fz.ch)
			ivb_store_release(&ring_ctl(0)->tail, index_value(fz.r0_honest,
									  fz.params->ring[0].nslots));
		break;
	case 8: { /* 8 bytes of a ring 1 slot: its header or its message */
		uint64_t slot = byte(), v = word();
		size_t off = byte() % (IVB_SLOT_HEADER + 8);

		if (fz.ch)
			memcpy(ring_slot(1, slot) + off, &v, sizeof(v));
		break;
	}
	case 9: /* the result block */
		fz.result->consumed = word();
		fz.result->errors = byte();
		fz.result->cpu_ns = word();
		break;
	case 10: { /* any 8 bytes of either ring's control block */
		int k = byte() & 1;
		size_t off = byte() % (IVB_RING_CTL_SIZE - 7);
		uint64_t v = word();

		if (fz.ch)
			memcpy((uint8_t *)ring_ctl(k) + off, &v, sizeof(v));
		break;
	}
	case 11: /* nothing this time */
		break;
	}
	snapshot();
}

/* The waiter: each sleep of the initiator is one step of the script. */
static int fuzz_sleep(void *ctx, uint64_t timeout_ns)
{
	(void)ctx, (void)timeout_ns;
	responder_step();
	return 1;
}

static void fuzz_notify(void *ctx, uint32_t peer)
{
	(void)ctx, (void)peer;
}

static int fuzz_peer_known(void *ctx, uint32_t peer)
{
	(void)ctx, (void)peer;
	return 1;
}

static const struct ivb_waiter_ops fuzz_ops = {
	.name = "fuzz", .sleep = fuzz_sleep, .notify = fuzz_notify, .peer_known = fuzz_peer_known,
};

/* ------------------------------------------------------------------ */
/* Invariants                                                          */
/* ------------------------------------------------------------------ */

struct view {
	uint64_t rx_other, tx_other, received;
	int rx_broken, tx_broken;
};

static void check_rings(const struct ivb_channel *ch, struct view *v)
{
	const struct ivb_ring *rx = &ch->rx, *tx = &ch->tx;

	MUST(held(&fz.heads1, rx->other), "the initiator took a ring 1 head the responder never wrote");
	MUST(rx->other - rx->local <= rx->mask + 1, "the initiator's ring 1 head is more than a ring ahead");
	MUST(rx->other - v->rx_other <= UINT64_MAX / 2, "the initiator's ring 1 head went backwards");
	MUST(held(&fz.tails0, tx->other), "the initiator took a ring 0 tail the responder never wrote");
	MUST(tx->published - tx->other <= tx->mask + 1, "the initiator took a ring 0 tail ahead of what it sent");
	MUST(tx->local - tx->other <= tx->mask + 1, "the initiator sent more than a ring past the tail it saw");
	MUST(tx->other - v->tx_other <= UINT64_MAX / 2, "the initiator's ring 0 tail went backwards");
	MUST(!v->rx_broken || ivb_ring_broken(rx), "a broken ring 1 was repaired");
	MUST(!v->tx_broken || ivb_ring_broken(tx), "a broken ring 0 was repaired");
	v->rx_other = rx->other;
	v->tx_other = tx->other;
	v->rx_broken = ivb_ring_broken(rx);
	v->tx_broken = ivb_ring_broken(tx);
}

/* poll() said it took message seq whole: is it? */
static void check_taken(struct ivb_channel *ch, uint64_t seq)
{
	const struct ivb_slot_header *s = (const struct ivb_slot_header *)ring_slot(1, seq);
	uint8_t check[IVB_VERIFY_MAX_LEN];

	MUST(s->seq == seq && s->len == ch->len && s->verify == (uint32_t)ch->verify,
	     "a message with another sequence number, length or check kind counted as whole");
	MUST(!memcmp(ch->dst, (const uint8_t *)s + IVB_SLOT_HEADER, ch->len),
	     "the bytes copied out are not the slot's");
	if (ch->verify != IVB_VERIFY_NONE) {
		MUST(ivb_verify_compute(ch->verify, seq, ch->dst, ch->len, check) == 0, "no check computed");
		MUST(!memcmp(check, s->check, sizeof(check)), "a message with a wrong check counted as whole");
	}
}

/* ------------------------------------------------------------------ */
/* The initiator's side                                                */
/* ------------------------------------------------------------------ */

static void drive(struct ivb_channel *ch)
{
	struct view v = { 0 };
	int calls = 0;

	while (fz.left && calls++ < FUZZ_INI_MAX_CALLS) {
		uint8_t o = byte();
		uint64_t before = ch->rx.local, errors = ch->errors, n;
		int was_broken = ivb_ring_broken(&ch->rx), rc;

		switch (o % 8) {
		case 0:
		case 1: /* a step of the script */
			responder_step();
			break;
		case 6: /* send, waiting for room */
			rc = ivb_channel_send(ch);
			MUST(rc == 0 || rc == -ETIMEDOUT || rc == -EPROTO || rc == -EPIPE || rc == -EIO ||
			     rc == -EINTR, "send: unexpected return");
			break;
		case 7: /* enough: the rest of the input is the script during close() */
			return;
		case 2:
			rc = ivb_channel_try_send(ch);
			MUST(rc == 1 || rc == 0 || rc == -EPROTO || rc == -EIO, "try_send: unexpected return");
			break;
		case 3:
			rc = ivb_channel_poll(ch);
			MUST(rc <= 0 || !was_broken, "a message taken from a broken ring");
			if (rc == 1) {
				MUST(ch->rx.local == before + 1 && ch->errors == errors,
				     "poll() said whole but counted otherwise");
				check_taken(ch, before);
			} else if (rc == 2) {
				MUST(ch->rx.local == before + 1 && ch->errors == errors + 1,
				     "poll() said bad but did not count it");
			} else if (rc == -EPIPE) {
				MUST(!ivb_ring_broken(&ch->rx) && ring_ctl(1)->end == ch->rx.local,
				     "\"the responder finished\" at an end marker that is not what was taken");
			} else {
				MUST(rc == 0 || rc == -EPROTO || rc == -EBADMSG, "poll: unexpected return");
				MUST(ch->rx.local == before, "poll() took a message and said it did not");
			}
			break;
		case 4:
			rc = ivb_channel_wait(ch);
			MUST(rc == 0 || rc == -ETIMEDOUT || rc == -EPROTO || rc == -EPIPE || rc == -EINTR,
			     "wait: unexpected return");
			break;
		case 5: /* what stream.c counts as received on ring 0 */
			n = ivb_ring_consumed(&ch->tx);
			MUST(held(&fz.tails0, n), "the received count is a tail the responder never wrote");
			MUST(ch->tx.published - n <= ch->tx.mask + 1, "the received count exceeds what was sent");
			MUST(n - v.received <= UINT64_MAX / 2, "the received count went backwards");
			v.received = n;
			break;
		}
		check_rings(ch, &v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ivb_channel ch;
	static int started;
	struct ivb_initiator ini;
	struct ivb_waiter w;
	uint8_t cfg, cfg2;
	enum ivb_stream_kind kind;
	uint64_t slots;
	uint32_t batch;
	int rc;


	if (!started) {
		pthread_t t;

		fz.mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		main_thread = pthread_self();
		if (fz.mem == MAP_FAILED || pthread_create(&t, NULL, watchdog, NULL))
			abort();
		pthread_detach(t);
		started = 1;
	}
	input_started = time(NULL);
	memset(fz.mem, 0, REGION);
	fz.p = data;
	fz.left = size;
	fz.ch = NULL;
	fz.r1_honest = fz.r0_honest = 0;
	fz.heads1.n = fz.tails0.n = 0;
	remember(&fz.heads1, 0);
	remember(&fz.tails0, 0);
	cfg = byte();
	cfg2 = byte();
	kind = fz.kind = (enum ivb_stream_kind)(cfg & 3);
	fz.len = 8 + (uint32_t)(cfg2 % 8) * 17;
	fz.verify = (enum ivb_verify)((cfg >> 2) % 3);
	slots = 1ull << ((cfg >> 4) % 5);
	batch = 1 + (uint32_t)((cfg2 >> 3) % slots);

	w = (struct ivb_waiter){ .ops = &fuzz_ops, .spin_ns = 0, .self_id = 0 };
	ivb_initiator_init(&ini, fz.mem, REGION, &w, FUZZ_INI_TIMEOUT_NS);
	ini.session = 1;
	ini.attached = 1;
	ini.peer = 1;
	((struct ivb_header *)fz.mem)->session_id = 1;
	fz.params = (struct ivb_stream_params *)ini.payload;
	fz.result = (struct ivb_stream_result *)(ini.payload + sizeof(*fz.params));
	fz.post_seq = ini.seq + 1; /* what ivb_channel_open() will post */

	rc = ivb_channel_open(&ch, &ini, kind, fz.len, slots, batch, fz.verify, 0);
	if (rc == 0) {
		uint64_t errors;

		fz.ch = &ch;
		snapshot();
		drive(&ch);
		errors = ch.errors;
		rc = ivb_channel_close(&ch);
		MUST(rc != 0 || (((struct ivb_header *)fz.mem)->ack ==
				 ivb_ack_make(fz.post_seq, IVB_STATE_PROCESSED) && ch.errors == 0 && errors == 0),
		     "close() said clean without PROCESSED from the responder, or with bad messages");
		MUST(rc != 0 || (ring_ctl(0)->tail == ch.tx.local && fz.result->consumed == ch.tx.local &&
				 fz.result->produced == ch.rx.local),
		     "close() said clean though the counts do not add up (sent, consumed, produced, taken)");
	}
	input_started = 0;
	return 0;
}
