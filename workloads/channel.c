/*
 * channel.c - a stream channel's two halves (see channel.h).
 */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "copy.h"
#include "cpu.h"
#include "digest.h"
#include "sizes.h"

#define CHANNEL_CLOCK_EVERY 256 /* messages between clock reads in a busy loop */
#define CHANNEL_BIDIR_WAIT_NS 1000000ull /* bidir: longest sleep on one ring while the other may move */
#define STR_(x) #x
#define STR(x) STR_(x)

const char *ivb_stream_kind_name(uint32_t kind)
{
	switch (kind) {
	case IVB_STREAM_H2G: return "h2g";
	case IVB_STREAM_G2H: return "g2h";
	case IVB_STREAM_BIDIR: return "bidir";
	case IVB_STREAM_ECHO: return "echo";
	}
	return "invalid";
}

static uint64_t pow2_floor(uint64_t x)
{
	uint64_t p = 1;

	if (!x)
		return 0;
	while (p <= x / 2)
		p *= 2;
	return p;
}

/* Stamp seq into the first bytes of a message, so no two are alike. */
static void stamp(uint8_t *buf, uint32_t len, uint64_t seq)
{
	memcpy(buf, &seq, len < sizeof(seq) ? len : sizeof(seq));
}

/* ------------------------------------------------------------------ */
/* Initiator                                                           */
/* ------------------------------------------------------------------ */

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

int ivb_channel_layout(size_t map_size, uint32_t len, uint64_t slots,
		       struct ivb_ring_geometry ring[2])
{
	uint64_t base = IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES, half, slot_size, nslots;
	int i;

	if (map_size < base + 2 * (IVB_RING_CTL_SIZE + 4096))
		return 1;
	half = ((map_size - base) / 2) & ~4095ull;
	slot_size = ((uint64_t)len + IVB_SLOT_HEADER + IVB_CACHE_LINE - 1) & ~(uint64_t)(IVB_CACHE_LINE - 1);
	nslots = pow2_floor((half - IVB_RING_CTL_SIZE) / slot_size);
	if (nslots == 0)
		return 1;
	if (nslots > slots)
		nslots = pow2_floor(slots);
	for (i = 0; i < 2; i++)
		ring[i] = (struct ivb_ring_geometry){ .offset = base + (uint64_t)i * half,
						      .nslots = nslots, .slot_size = slot_size };
	return 0;
}

int ivb_channel_post(struct ivb_channel *ch, uint32_t cmd)
{
	struct ivb_initiator *ini = ch->ini;
	struct started_wait sw;

	ini->hdr->payload_size = IVB_CHANNEL_SETUP_BYTES;
	ch->post_t0 = ivb_now_ns();
	ch->post_seq = ivb_post(ini, cmd);
	sw = (struct started_wait){ ch->result, ini->hdr, ch->post_seq };
	return ivb_wait_until(ini->waiter, started_or_refused, &sw, ch->post_t0 + ini->timeout_ns);
}

int ivb_channel_open(struct ivb_channel *ch, struct ivb_initiator *ini, enum ivb_stream_kind kind,
		     uint32_t len, uint64_t slots, uint32_t batch, enum ivb_verify v,
		     uint64_t responder_spin_ns)
{
	return ivb_channel_open_fault(ch, ini, kind, len, slots, batch, v, responder_spin_ns, NULL);
}

int ivb_channel_prepare(struct ivb_channel *ch, struct ivb_initiator *ini,
			enum ivb_stream_kind kind, uint32_t len, uint64_t slots, uint32_t batch,
			enum ivb_verify v, uint64_t responder_spin_ns)
{
	struct ivb_stream_params *p = (struct ivb_stream_params *)ini->payload;
	struct ivb_stream_result *res = (struct ivb_stream_result *)(ini->payload + sizeof(*p));
	struct ivb_ring_geometry ring[2];

	memset(ch, 0, sizeof(*ch));
	if (ivb_channel_layout(ini->map_size, len, slots, ring))
		return 1;
	ch->ini = ini;
	ch->params = p;
	ch->result = res;
	ch->len = len;
	ch->verify = v;
	ch->src = malloc(len ? len : 1);
	ch->dst = malloc(len ? len : 1);
	if (!ch->src || !ch->dst || ivb_random(ch->src, len)) {
		snprintf(ini->status, sizeof(ini->status), "out of memory or OpenSSL failed for "
			 "%u-byte messages", len);
		ivb_channel_free(ch);
		return -1;
	}
	memset(p, 0, sizeof(*p));
	memset(res, 0, sizeof(*res));
	p->kind = kind;
	p->verify = v;
	p->msg_len = len;
	p->batch = batch;
	p->spin_ns = responder_spin_ns;
	p->timeout_ns = ini->timeout_ns;
	p->ring[0] = ring[0];
	p->ring[1] = ring[1];
	ivb_ring_init(&ch->tx, ini->hdr, &p->ring[0], ini->waiter, ini->peer, batch, 1);
	ivb_ring_init(&ch->rx, ini->hdr, &p->ring[1], ini->waiter, ini->peer,
		      kind == IVB_STREAM_ECHO ? 1 : batch, 1);
	return 0;
}

int ivb_channel_open_fault(struct ivb_channel *ch, struct ivb_initiator *ini,
			   enum ivb_stream_kind kind, uint32_t len, uint64_t slots, uint32_t batch,
			   enum ivb_verify v, uint64_t responder_spin_ns,
			   const struct ivb_channel_fault *fault)
{
	int rc = ivb_channel_prepare(ch, ini, kind, len, slots, batch, v, responder_spin_ns);

	if (rc)
		return rc;
	if (fault) {
		ch->params->stall_after = fault->stall_after;
		ch->params->stall_ns = fault->stall_ns;
	}
	rc = ivb_channel_post(ch, IVB_CMD_STREAM);
	if (rc || !ivb_load_acquire(&ch->result->started)) {
		struct ivb_ack a;

		if (rc == 0 && ivb_wait_ack(ini, ch->post_seq, ch->post_t0, "stream", &a) == 0)
			snprintf(ini->status, sizeof(ini->status), "the responder refused a %s stream "
				 "of %u-byte messages: %s", ivb_stream_kind_name(kind), len,
				 ivb_error_name(a.error));
		else if (rc)
			snprintf(ini->status, sizeof(ini->status), "%s waiting for the responder to start "
				 "a %s stream of %u-byte messages", rc == -EINTR ? "interrupted" :
				 "timeout", ivb_stream_kind_name(kind), len);
		ivb_channel_free(ch);
		return -1;
	}
	return 0;
}

void ivb_channel_free(struct ivb_channel *ch)
{
	free(ch->src);
	free(ch->dst);
	ch->src = ch->dst = NULL;
}

int ivb_channel_try_send(struct ivb_channel *ch)
{
	struct ivb_slot_header *s = ivb_ring_reserve(&ch->tx);

	if (!s)
		return ivb_ring_broken(&ch->tx) ? -EPROTO : 0;
	stamp(ch->src, ch->len, ch->tx.local);
	if (ivb_message_write(s, ch->tx.local, ch->src, ch->len, ch->verify))
		return -EIO;
	ivb_ring_commit(&ch->tx);
	return 1;
}

/* 1 once the responder has answered the point's STREAM message: it stopped. */
static int responder_done(const struct ivb_channel *ch)
{
	uint64_t ack = ivb_load_acquire(&ch->ini->hdr->ack);
	enum ivb_state st = ivb_ack_state(ack);

	return ivb_ack_seq(ack) == ch->post_seq && (st == IVB_STATE_PROCESSED || st == IVB_STATE_ERROR);
}

int ivb_channel_send(struct ivb_channel *ch)
{
	struct ivb_slot_header *s;

	while (!(s = ivb_ring_reserve(&ch->tx))) {
		int rc;

		if (ivb_ring_broken(&ch->tx))
			return -EPROTO;
		if (responder_done(ch))
			return -EPIPE;
		rc = ivb_ring_wait_room(&ch->tx, ivb_now_ns() + ch->ini->timeout_ns);
		if (rc == -EPROTO)
			return rc;
		if (rc)
			return responder_done(ch) ? -EPIPE : rc;
	}
	stamp(ch->src, ch->len, ch->tx.local);
	if (ivb_message_write(s, ch->tx.local, ch->src, ch->len, ch->verify))
		return -EIO;
	ivb_ring_commit(&ch->tx);
	return 0;
}

int ivb_channel_poll(struct ivb_channel *ch)
{
	const struct ivb_slot_header *s = ivb_ring_peek(&ch->rx);

	if (!s) {
		if (ivb_ring_drained(&ch->rx))
			return ivb_ring_broken(&ch->rx) ? -EPROTO : -EPIPE;
		return 0;
	}
	if (ivb_message_read(s, ch->rx.slot_size, ch->rx.local, ch->len, ch->verify, ch->dst,
			     ch->len)) {
		if (ch->errors++ == 0)
			ch->first_bad_seq = ch->rx.local;
		ivb_ring_release(&ch->rx);
		return ch->errors > IVB_CHANNEL_MAX_BAD ? -EBADMSG : 2;
	}
	ivb_ring_release(&ch->rx);
	return 1;
}

int ivb_channel_wait(struct ivb_channel *ch)
{
	int rc = ivb_ring_wait_message(&ch->rx, ivb_now_ns() + ch->ini->timeout_ns);

	if (rc == -EPROTO || rc == -EINTR)
		return rc;
	return rc && responder_done(ch) ? -EPIPE : rc;
}

const char *ivb_channel_error(int rc)
{
	switch (rc) {
	case -EINTR: return "interrupted";
	case -ETIMEDOUT: return "timeout";
	case -EPIPE: return "the responder stopped";
	case -EPROTO: return "a ring index no real responder could have written (a forged or corrupt ring)";
	case -EBADMSG: return "more than " STR(IVB_CHANNEL_MAX_BAD) " bad messages: the rest cannot be trusted";
	case -EIO: return "a check could not be computed";
	}
	return "failure";
}

void ivb_channel_abort(struct ivb_channel *ch)
{
	if (ch->params) {
		ivb_ring_finish(&ch->tx, ch->tx.local);
		ivb_store_release(&ch->params->stop, 1);
		ivb_notify(ch->ini->waiter, ch->ini->peer);
	}
	ivb_channel_free(ch);
}

const char *ivb_channel_responder_error(struct ivb_channel *ch)
{
	uint32_t e;

	if (!responder_done(ch)) /* its ring said it had finished: it did not say so itself */
		return "it has not answered: the end marker of its ring is forged or corrupt";
	if (ivb_ack_state(ivb_load_acquire(&ch->ini->hdr->ack)) == IVB_STATE_PROCESSED)
		/* A responder ends a point well only when asked to (the end marker). */
		return "a PROCESSED answer before the point was asked to end: a forged or corrupt ack";
	e = ch->ini->hdr->error_code;
	if ((e == IVB_ERR_DIGEST || e == IVB_ERR_TOO_MANY_BAD) && ch->result->errors)
		snprintf(ch->why, sizeof(ch->why), "%s (%llu bad message(s), the first with sequence "
			 "number %llu)", ivb_error_name(e), (unsigned long long)ch->result->errors,
			 (unsigned long long)ch->result->first_bad_seq);
	else
		snprintf(ch->why, sizeof(ch->why), "%s", ivb_error_name(e));
	return ch->why;
}

int ivb_channel_close(struct ivb_channel *ch)
{
	struct ivb_initiator *ini = ch->ini;
	struct ivb_ack a;
	int rc = 0;

	ivb_ring_finish(&ch->tx, ch->tx.local);
	ivb_store_release(&ch->params->stop, 1);
	ivb_notify(ini->waiter, ini->peer);
	/* Take what the responder still sends, until it says it has finished. */
	for (;;) {
		int got = ivb_channel_poll(ch);

		if (got == -EPIPE)
			break; /* the end it announced */
		if (got < 0) {
			rc = got;
			break;
		}
		if (got == 0 && (rc = ivb_channel_wait(ch)) != 0)
			break;
	}
	if (rc) {
		snprintf(ini->status, sizeof(ini->status), "%s waiting for the responder to finish a "
			 "%s stream of %u-byte messages (message %llu)", ivb_channel_error(rc),
			 ivb_stream_kind_name(ch->params->kind), ch->len, (unsigned long long)ch->rx.local);
		ivb_channel_abort(ch);
		return -1;
	}
	ivb_channel_free(ch);
	if (ivb_wait_ack(ini, ch->post_seq, ch->post_t0, "stream", &a) &&
	    ivb_wait_ack(ini, ch->post_seq, ivb_now_ns(), "stream", &a))
		return -1;
	if (ch->errors) {
		snprintf(ini->status, sizeof(ini->status), "%llu bad message(s) from the responder in a "
			 "%s stream of %u-byte messages, the first with sequence number %llu",
			 (unsigned long long)ch->errors, ivb_stream_kind_name(ch->params->kind), ch->len,
			 (unsigned long long)ch->first_bad_seq);
		return 1;
	}
	if (a.state != IVB_STATE_PROCESSED) {
		if (ch->result->errors)
			snprintf(ini->status, sizeof(ini->status), "the responder found %llu bad "
				 "message(s) in a %s stream of %u-byte messages, the first with sequence "
				 "number %llu", (unsigned long long)ch->result->errors,
				 ivb_stream_kind_name(ch->params->kind), ch->len,
				 (unsigned long long)ch->result->first_bad_seq);
		else
			snprintf(ini->status, sizeof(ini->status), "the responder answered a %s stream "
				 "of %u-byte messages with ERROR %s", ivb_stream_kind_name(ch->params->kind),
				 ch->len, ivb_error_name(a.error));
		/* Bad messages are a result (the row says how many); any other
		 * error means the point's figures cannot be trusted. */
		return ch->result->errors && (a.error == IVB_ERR_DIGEST || a.error == IVB_ERR_TOO_MANY_BAD) ?
		       1 : -1;
	}
	/* Ring 0's tail must have come to what we sent, and the responder's own
	 * counts must agree with what moved: anything else did not happen. */
	if (ivb_ring_consumed(&ch->tx) != ch->tx.local || ivb_ring_broken(&ch->tx) ||
	    ch->result->consumed != ch->tx.local || ch->result->produced != ch->rx.local) {
		snprintf(ini->status, sizeof(ini->status), "the counts of a %s stream of %u-byte "
			 "messages do not add up: sent %llu, the responder's index says %llu consumed%s, "
			 "its result %llu consumed and %llu produced, received %llu",
			 ivb_stream_kind_name(ch->params->kind), ch->len,
			 (unsigned long long)ch->tx.local, (unsigned long long)ch->tx.other,
			 ivb_ring_broken(&ch->tx) ? " (an impossible index)" : "",
			 (unsigned long long)ch->result->consumed, (unsigned long long)ch->result->produced,
			 (unsigned long long)ch->rx.local);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Responder                                                           */
/* ------------------------------------------------------------------ */

/* Check the set-up copied from shared memory against this side's mapping. */
static enum ivb_error check_params(const struct ivb_stream_params *p, size_t map_size)
{
	const struct ivb_ring_geometry *a = &p->ring[0], *b = &p->ring[1];

	if (p->kind >= IVB_STREAM__COUNT || p->verify >= IVB_VERIFY__COUNT || p->batch == 0)
		return IVB_ERR_BAD_HEADER;
	if (ivb_ring_geometry_ok(a, map_size) || ivb_ring_geometry_ok(b, map_size))
		return IVB_ERR_BAD_HEADER;
	if (a->offset < IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES ||
	    b->offset < a->offset + ivb_ring_bytes(a))
		return IVB_ERR_BAD_HEADER; /* overlapping rings */
	if ((uint64_t)p->msg_len + IVB_SLOT_HEADER > a->slot_size ||
	    (uint64_t)p->msg_len + IVB_SLOT_HEADER > b->slot_size)
		return IVB_ERR_BAD_SIZE;
	return IVB_OK;
}

/* The responder's state during one point. */
struct serving {
	struct ivb_stream_params p;      /* a private copy */
	volatile struct ivb_stream_params *shared; /* for stop */
	struct ivb_stream_result *res;
	struct ivb_ring rx, tx;
	uint8_t *buf;                    /* a message copied out (and sent back, echo) */
	uint8_t *src;                    /* a message to send (g2h, bidir) */
	uint64_t errors, first_bad;
	int rx_on, tx_on;                /* still consuming, still producing */
	enum ivb_error error;            /* why the point ended early (IVB_OK: it did not) */
	int cancelled;                   /* the session changed: a new initiator, answer nothing */
};

/* Note why a ring call failed (its -errno); returns -1. */
static int serve_failed(struct serving *s, int rc)
{
	if (rc == -ECANCELED)
		s->cancelled = 1;
	else if (rc == -EPROTO)
		s->error = IVB_ERR_BAD_INDEX;
	else if (rc == -EBADMSG)
		s->error = IVB_ERR_TOO_MANY_BAD;
	else if (rc == -EIO)
		s->error = IVB_ERR_CRYPTO;
	else
		s->error = IVB_ERR_STALLED;
	return -1;
}

/* Consume what ring 0 holds (a few dozen at most, to give tx its turn). */
static int serve_rx(struct serving *s, uint64_t timeout_ns)
{
	const struct ivb_slot_header *m;
	int n = 0;

	while (n < 64 && (m = ivb_ring_peek(&s->rx))) {
		uint64_t seq = s->rx.local;
		int bad = ivb_message_read(m, s->rx.slot_size, seq, s->p.msg_len, s->p.verify, s->buf,
					   s->p.msg_len);

		if (bad && s->errors++ == 0)
			s->first_bad = seq;
		ivb_ring_release(&s->rx);
		n++;
		if (s->errors > IVB_CHANNEL_MAX_BAD)
			return serve_failed(s, -EBADMSG);
		if (s->p.kind == IVB_STREAM_ECHO) {
			struct ivb_slot_header *out;
			int rc;

			while (!(out = ivb_ring_reserve(&s->tx))) {
				if (ivb_ring_broken(&s->tx))
					return serve_failed(s, -EPROTO);
				if ((rc = ivb_ring_wait_room(&s->tx, ivb_now_ns() + timeout_ns)) != 0)
					return serve_failed(s, rc);
			}
			if (ivb_message_write(out, seq, s->buf, s->p.msg_len, s->p.verify))
				return serve_failed(s, -EIO);
			/* A bad message is echoed with a sequence number that cannot
			 * pass, so the initiator counts it too and never times a
			 * round trip on it. */
			if (bad)
				out->seq = ~seq;
			ivb_ring_commit(&s->tx);
			ivb_ring_flush(&s->tx);
		}
		if (s->p.stall_ns && seq == s->p.stall_after) /* fault injection */
			ivb_sleep_ns(s->p.stall_ns < timeout_ns ? s->p.stall_ns : timeout_ns);
	}
	if (!n && ivb_ring_drained(&s->rx)) {
		s->rx_on = 0;
		if (s->p.kind == IVB_STREAM_ECHO)
			ivb_ring_finish(&s->tx, s->tx.local);
	}
	return n;
}

/* Produce on ring 1 until it is full, a batch is out, or the initiator says stop. */
static int serve_tx(struct serving *s)
{
	struct ivb_slot_header *m;
	int n = 0;

	while (n < (int)s->p.batch && (m = ivb_ring_reserve(&s->tx))) {
		if ((s->tx.local % CHANNEL_CLOCK_EVERY) == 0 &&
		    ivb_load_acquire((const uint64_t *)&s->shared->stop))
			break;
		stamp(s->src, s->p.msg_len, s->tx.local);
		if (ivb_message_write(m, s->tx.local, s->src, s->p.msg_len, s->p.verify))
			return serve_failed(s, -EIO);
		ivb_ring_commit(&s->tx);
		n++;
	}
	if (ivb_load_acquire((const uint64_t *)&s->shared->stop)) {
		ivb_ring_finish(&s->tx, s->tx.local);
		s->tx_on = 0;
	}
	return n;
}

/* Sleep (or spin) until something can move. */
static int serve_wait(struct serving *s, uint64_t deadline)
{
	uint64_t until = deadline;

	if (s->rx_on && s->tx_on) {
		/* bidir: the other ring may move meanwhile; never sleep long on one */
		uint64_t soon = ivb_now_ns() + CHANNEL_BIDIR_WAIT_NS;

		until = soon < deadline ? soon : deadline;
		int rc = ivb_ring_wait_message(&s->rx, until);

		if (rc == -EINTR || rc == -EPROTO || rc == -ECANCELED)
			return rc;
		return ivb_now_ns() > deadline ? -ETIMEDOUT : 0;
	}
	if (s->rx_on)
		return ivb_ring_wait_message(&s->rx, until);
	return ivb_ring_wait_room(&s->tx, until);
}

enum ivb_error ivb_channel_serve(struct ivb_responder *r, const struct ivb_message *m,
				 struct ivb_reply *reply)
{
	struct serving s = { 0 };
	uint8_t *payload = (uint8_t *)r->hdr + IVB_PAYLOAD_OFFSET;
	uint64_t cpu0 = (uint64_t)ivb_thread_cpu_ns(0), rings0, sleeps0, spin0 = r->waiter->spin_ns;
	uint64_t idle_since = 0;
	enum ivb_error e;

	(void)m, (void)reply;
	if (r->map_size < IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES)
		return IVB_ERR_BAD_SIZE;
	memcpy(&s.p, payload, sizeof(s.p));
	s.shared = (volatile struct ivb_stream_params *)payload;
	s.res = (struct ivb_stream_result *)(payload + sizeof(s.p));
	if ((e = check_params(&s.p, r->map_size)) != IVB_OK)
		return e;
	/* The deadline comes from the other side: never wait longer than our own limit. */
	if (s.p.timeout_ns > r->silence_ns)
		s.p.timeout_ns = r->silence_ns;
	s.buf = ivb_responder_scratch(r, s.p.msg_len ? s.p.msg_len : 1);
	s.src = malloc(s.p.msg_len ? s.p.msg_len : 1);
	if (!s.buf || !s.src || ivb_random(s.src, s.p.msg_len)) {
		free(s.src);
		return IVB_ERR_NO_MEMORY;
	}
	ivb_ring_init(&s.rx, r->hdr, &s.p.ring[0], r->waiter, r->peer,
		      s.p.kind == IVB_STREAM_ECHO ? 1 : s.p.batch, 0);
	ivb_ring_init(&s.tx, r->hdr, &s.p.ring[1], r->waiter, r->peer,
		      s.p.kind == IVB_STREAM_ECHO ? 1 : s.p.batch, 0);
	/* A new session ends every wait of the point: its initiator wins. */
	ivb_ring_watch(&s.rx, &r->hdr->session_id, r->session);
	ivb_ring_watch(&s.tx, &r->hdr->session_id, r->session);
	s.rx_on = s.p.kind != IVB_STREAM_G2H;
	s.tx_on = s.p.kind == IVB_STREAM_G2H || s.p.kind == IVB_STREAM_BIDIR;
	if (s.p.kind == IVB_STREAM_H2G)
		ivb_ring_finish(&s.tx, 0);
	r->waiter->spin_ns = s.p.spin_ns;
	rings0 = r->waiter->rings;
	sleeps0 = r->waiter->sleeps;
	ivb_store_release(&s.res->started, 1);
	ivb_notify(r->waiter, r->peer);

	while ((s.rx_on || s.tx_on) && !ivb_interrupted) {
		int moved = 0, n;
		uint64_t now;

		if (s.rx_on) {
			if ((n = serve_rx(&s, s.p.timeout_ns)) < 0)
				break;
			moved += n;
		}
		if (s.tx_on) {
			if ((n = serve_tx(&s)) < 0)
				break;
			moved += n;
		}
		if (ivb_ring_broken(&s.rx) || ivb_ring_broken(&s.tx)) {
			serve_failed(&s, -EPROTO);
			break;
		}
		if (moved) {
			idle_since = 0;
			continue;
		}
		/* Nothing moved: a new session ends the point, and so does silence for the timeout. */
		if (ivb_load_acquire(&r->hdr->session_id) != r->session) {
			s.cancelled = 1;
			break;
		}
		now = ivb_now_ns();
		if (!idle_since)
			idle_since = now;
		else if (now - idle_since > s.p.timeout_ns)
			break;
		n = serve_wait(&s, idle_since + s.p.timeout_ns);
		if (n == -EINTR)
			break;
		if (n == -EPROTO || n == -ECANCELED) {
			serve_failed(&s, n);
			break;
		}
	}
	if (s.tx_on || s.p.kind == IVB_STREAM_ECHO)
		ivb_ring_finish(&s.tx, s.tx.local);
	r->waiter->spin_ns = spin0;
	s.res->consumed = s.rx.local;
	s.res->produced = s.tx.local;
	s.res->errors = s.errors;
	s.res->first_bad_seq = s.first_bad;
	s.res->cpu_ns = (uint64_t)ivb_thread_cpu_ns(0) - cpu0;
	s.res->rings = r->waiter->rings - rings0;
	s.res->sleeps = r->waiter->sleeps - sleeps0;
	snprintf(s.res->verify_impl, sizeof(s.res->verify_impl), "%s", ivb_verify_impl());
	snprintf(s.res->copy_impl, sizeof(s.res->copy_impl), "%s", ivb_copy_impl());
	free(s.src);
	if (s.cancelled)
		return IVB_ERR_STALLED; /* not answered: the session is gone (session.c) */
	if (s.error != IVB_OK)
		return s.error;
	if (s.rx_on || s.tx_on)
		return IVB_ERR_STALLED;
	return s.errors ? IVB_ERR_DIGEST : IVB_OK;
}

/* ------------------------------------------------------------------ */
/* Size lists that must fit the shared memory                         */
/* ------------------------------------------------------------------ */

uint64_t ivb_channel_max_message(uint64_t map_size)
{
	uint64_t base = IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES, half;

	/* ivb_channel_open()'s layout: each ring gets half the rest, in whole
	 * pages, and holds at least one slot of header and message. */
	if (map_size < base + 2 * (IVB_RING_CTL_SIZE + 4096))
		return 0;
	half = ((map_size - base) / 2) & ~4095ull;
	return ((half - IVB_RING_CTL_SIZE) & ~(uint64_t)(IVB_CACHE_LINE - 1)) - IVB_SLOT_HEADER;
}

void ivb_sizes_check(const char *opt, const struct ivb_sizes *s, uint64_t capacity,
		     const char *shm_name)
{
	uint64_t most = ivb_channel_max_message(capacity + IVB_PAYLOAD_OFFSET);
	int i;

	if (s->ladder) /* the sweep is ours: what does not fit is skipped and said so */
		return;
	for (i = 0; i < s->n; i++)
		if (s->v[i] > most)
			ivb_die_usage("%s: a %u-byte message cannot fit a ring in %s (at most %llu "
				      "bytes there); use a larger IVSHMEM_SHM_SIZE", opt, s->v[i],
				      shm_name, (unsigned long long)most);
}
