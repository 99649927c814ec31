/*
 * session.c - the two-phase acknowledgement, initiator and responder
 * halves (see session.h and the exchange described in ivshmem_abi.h).
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"

#define RESPONDER_IDLE_POLL_NS 1000000ull /* polling: look for a session every 1 ms */
#define RESPONDER_IDLE_SLICE_NS 1000000000ull /* doorbell: look at least once a second */

const char *ivb_outcome_name(uint32_t error)
{
	switch (error) {
	case IVB_ERR_TIMEOUT: return "timeout";
	case IVB_ERR_INTERRUPTED: return "interrupted";
	case IVB_ERR_BAD_PROOF: return "bad_proof";
	case IVB_ERR_BAD_ACK: return "bad_ack";
	}
	return ivb_error_name(error);
}

/* ------------------------------------------------------------------ */
/* Initiator                                                           */
/* ------------------------------------------------------------------ */

void ivb_initiator_init(struct ivb_initiator *ini, void *base, size_t map_size,
			struct ivb_waiter *w, uint64_t timeout_ns)
{
	*ini = (struct ivb_initiator){
		.hdr = base, .map_size = map_size, .payload = (uint8_t *)base + IVB_PAYLOAD_OFFSET,
		.capacity = map_size - IVB_PAYLOAD_OFFSET, .waiter = w, .peer = IVB_NO_PEER,
		.timeout_ns = timeout_ns,
	};
}

struct attach_wait {
	const struct ivb_header *hdr;
	uint64_t session;
};

static int responder_attached(void *arg)
{
	const struct attach_wait *a = arg;

	return ivb_load_acquire(&a->hdr->attached_session) == a->session;
}

int ivb_initiator_open(struct ivb_initiator *ini)
{
	struct ivb_header *h = ini->hdr;
	struct attach_wait a = { .hdr = h };
	uint64_t deadline;
	int rc;

	do {
		if (ivb_random(&ini->session, sizeof(ini->session))) {
			snprintf(ini->status, sizeof(ini->status), "OpenSSL RAND_bytes failed");
			return -1;
		}
	} while (ini->session == 0);
	ivb_store_release(&h->session_id, 0);
	ivb_store_release(&h->seq, 0);
	ini->seq = 0;
	ini->taken = ivb_ack_make(0, IVB_STATE_NONE); /* what attaching stores */
	h->magic = IVB_MAGIC;
	h->layout_version = IVB_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->shm_size = ini->map_size;
	h->payload_offset = IVB_PAYLOAD_OFFSET;
	h->payload_capacity = ini->capacity;
	h->mode = ivb_waiter_mode(ini->waiter);
	h->host_peer_id = ini->waiter->self_id;
	h->command = IVB_CMD_NONE;
	h->payload_size = 0;
	ivb_store_release(&h->session_id, ini->session);
	/* A responder asleep waiting for a session looks at the header when rung. */
	ivb_notify(ini->waiter, IVB_ALL_PEERS);

	a.session = ini->session;
	deadline = ivb_now_ns() + ini->timeout_ns;
	rc = ivb_wait_until(ini->waiter, responder_attached, &a, deadline);
	if (rc == -EINTR) {
		snprintf(ini->status, sizeof(ini->status), "interrupted");
		return -1;
	}
	if (rc) {
		snprintf(ini->status, sizeof(ini->status),
			 "no guest attached within %.1f s (is guest_reader running? "
			 "./setup.sh status shows the VM)", (double)ini->timeout_ns / 1e9);
		return -1;
	}
	if (ivb_ack_state(ivb_load_acquire(&h->ack)) == IVB_STATE_ERROR) {
		snprintf(ini->status, sizeof(ini->status), "guest refused the session: %s",
			 ivb_error_name(h->error_code));
		return -1;
	}
	ini->attached = 1;
	ini->responder_pid = h->guest_pid;
	ini->responder_wait = h->guest_wait;
	ini->peer = h->guest_peer_id;
	if (ini->waiter->ops && !ivb_peer_known(ini->waiter, ini->peer)) {
		snprintf(ini->status, sizeof(ini->status),
			 "the guest says it is peer %u, which the server does not know", ini->peer);
		return -1;
	}
	return 0;
}

uint64_t ivb_post(struct ivb_initiator *ini, enum ivb_command cmd)
{
	ini->hdr->command = cmd;
	ini->seq++;
	ivb_store_release(&ini->hdr->seq, ini->seq);
	ivb_notify(ini->waiter, ini->peer);
	return ini->seq;
}

/* The condition of ivb_wait_ack(), noting when RECEIVED was first seen. */
struct ack_wait {
	const struct ivb_header *hdr;
	uint64_t seq;         /* message waited for */
	uint64_t t0;          /* start of the interval */
	uint64_t received_ns; /* first sight of RECEIVED, 0 until then */
	uint64_t taken;       /* the last final ack taken before this message */
	uint64_t ack;         /* last ack word read */
	int ahead;            /* it acknowledged a message not yet posted */
	int back;             /* it went back from the last ack taken */
};

static int ack_final(void *arg)
{
	struct ack_wait *a = arg;
	enum ivb_state st;

	a->ack = ivb_load_acquire(&a->hdr->ack);
	if (ivb_ack_seq(a->ack) > a->seq)
		return a->ahead = 1; /* no responder answers what it has not been sent */
	if (ivb_ack_seq(a->ack) != a->seq) {
		/* Between the last answer taken and this message, only late answers
		 * of messages that timed out: one writer's word never goes back
		 * to an older message, or to another state of the one taken. */
		if (ivb_ack_seq(a->ack) < ivb_ack_seq(a->taken) ||
		    (ivb_ack_seq(a->ack) == ivb_ack_seq(a->taken) && a->ack != a->taken))
			return a->back = 1;
		return 0;
	}
	st = ivb_ack_state(a->ack);
	if (st == IVB_STATE_PROCESSED || st == IVB_STATE_ERROR)
		return 1;
	if (!a->received_ns && st == IVB_STATE_RECEIVED)
		a->received_ns = ivb_now_ns() - a->t0;
	return 0;
}

int ivb_wait_ack(struct ivb_initiator *ini, uint64_t seq, uint64_t t0, const char *what,
		 struct ivb_ack *r)
{
	struct ack_wait a = { .hdr = ini->hdr, .seq = seq, .t0 = t0, .taken = ini->taken };
	int rc = ivb_wait_until(ini->waiter, ack_final, &a, t0 + ini->timeout_ns);
	uint64_t now = ivb_now_ns();

	memset(r, 0, sizeof(*r));
	r->state = ivb_ack_state(a.ack);
	r->seen_seq = ivb_ack_seq(a.ack);
	if (rc == 0 && a.ahead) {
		r->error = IVB_ERR_BAD_ACK;
		snprintf(ini->status, sizeof(ini->status), "an acknowledgement of message %llu (%s) "
			 "while %s message %llu was the last one posted: a forged or corrupt ack",
			 (unsigned long long)r->seen_seq, ivb_state_name(r->state), what,
			 (unsigned long long)seq);
		return -1;
	}
	if (rc == 0 && a.back) {
		r->error = IVB_ERR_BAD_ACK;
		snprintf(ini->status, sizeof(ini->status), "the acknowledgement went back to message "
			 "%llu (%s) after message %llu (%s) had been answered, waiting for %s message "
			 "%llu: a second writer (%s)",
			 (unsigned long long)r->seen_seq, ivb_state_name(r->state),
			 (unsigned long long)ivb_ack_seq(a.taken), ivb_state_name(ivb_ack_state(a.taken)),
			 what, (unsigned long long)seq,
			 a.ack == ivb_ack_make(0, IVB_STATE_NONE)
			 ? "the responder attached to another session: the session id was changed"
			 : "a forged or corrupt ack, perhaps one already taken");
		return -1;
	}
	if (rc == 0) {
		ini->taken = a.ack;
		r->done_ns = now - t0;
		r->received_ns = a.received_ns ? a.received_ns : r->done_ns;
		r->error = r->state == IVB_STATE_ERROR ? ini->hdr->error_code : IVB_OK;
		return 0;
	}
	r->error = rc == -EINTR ? IVB_ERR_INTERRUPTED : IVB_ERR_TIMEOUT;
	if (rc == -EINTR)
		snprintf(ini->status, sizeof(ini->status), "interrupted during %s message %llu",
			 what, (unsigned long long)seq);
	else
		snprintf(ini->status, sizeof(ini->status),
			 "timeout after %.1f s waiting for PROCESSED of %s message %llu; "
			 "last ack seen: message %llu %s", (double)ini->timeout_ns / 1e9, what,
			 (unsigned long long)seq, (unsigned long long)r->seen_seq,
			 ivb_state_name(r->state));
	return -1;
}

static const char second_writer_said[] =
	"the responder found that a second writer answered for it during the session "
	"(guest_reader's log says when): answers taken during the run may have been forged";

static int session_closed(void *arg)
{
	const struct ivb_initiator *ini = arg;

	return ivb_load_acquire(&ini->hdr->closed_session) == ini->session;
}

/*
 * After the STOP's answer: the responder's own word that it ended the
 * session, and whether a second writer answered for it. The STOP's answer
 * alone is not enough: a forger can answer it as well as any other.
 */
static int closed(struct ivb_initiator *ini)
{
	int rc = ivb_wait_until(ini->waiter, session_closed, ini, ivb_now_ns() + ini->timeout_ns);

	if (rc == -EINTR)
		return 0; /* the figures are in; a stop signal is not a forger */
	if (rc) {
		snprintf(ini->status, sizeof(ini->status), "the responder did not confirm the end of "
			 "the session within %.1f s of the STOP's answer: that answer, and perhaps "
			 "others, came from a second writer", (double)ini->timeout_ns / 1e9);
		return -1;
	}
	if (ini->hdr->closed_flags & IVB_CLOSED_SECOND_WRITER) {
		snprintf(ini->status, sizeof(ini->status), "%s", second_writer_said);
		return -1;
	}
	return 0;
}

int ivb_initiator_close(struct ivb_initiator *ini)
{
	struct ivb_ack r;
	uint64_t t0, seq, id;
	int rc = 0, waited;

	if (!ini->session)
		return 0;
	t0 = ivb_now_ns();
	seq = ivb_post(ini, IVB_CMD_STOP);
	id = ivb_load_acquire(&ini->hdr->session_id);
	waited = ivb_wait_ack(ini, seq, t0, "stop", &r);
	if (id != ini->session) {
		snprintf(ini->status, sizeof(ini->status), "the session id in the shared memory "
			 "changed during the run (to %016llx; a second writer): the responder may "
			 "have left the session and answered another", (unsigned long long)id);
		rc = -1;
	} else if (waited) {
		/* Unanswered: not an error here. Went back or ahead: ini->status says how. */
		rc = r.error == IVB_ERR_BAD_ACK ? -1 : 0;
	} else if (r.error == IVB_ERR_SECOND_WRITER) {
		snprintf(ini->status, sizeof(ini->status), "%s", second_writer_said);
		rc = -1;
	} else if (ini->hdr->guest_flags & IVB_GUEST_CLOSES) {
		rc = closed(ini);
	}
	ivb_store_release(&ini->hdr->session_id, 0);
	ini->session = 0;
	return rc;
}

void ivb_initiator_abort(struct ivb_initiator *ini)
{
	if (!ini->session)
		return;
	ivb_store_release(&ini->hdr->session_id, 0);
	ivb_notify(ini->waiter, ini->peer);
	ini->session = 0;
}

/* ------------------------------------------------------------------ */
/* Responder                                                           */
/* ------------------------------------------------------------------ */

void ivb_responder_init(struct ivb_responder *r, void *base, size_t map_size,
			struct ivb_waiter *w)
{
	*r = (struct ivb_responder){ .hdr = base, .map_size = map_size, .waiter = w,
				     .peer = IVB_NO_PEER, .exit_after = -1 };
	/* A session left open by an initiator that is gone is not served again. */
	r->last_session = ivb_load_acquire(&r->hdr->attached_session);
}

uint8_t *ivb_responder_scratch(struct ivb_responder *r, size_t size)
{
	if (size > r->scratch_size) {
		uint8_t *nb = realloc(r->scratch, size);

		if (!nb)
			return NULL;
		r->scratch = nb;
		r->scratch_size = size;
	}
	return r->scratch;
}

uint64_t ivb_responder_wait_session(struct ivb_responder *r, uint64_t idle_limit_ns)
{
	uint64_t start = ivb_now_ns();

	/* No one waits on us here: sleep between looks instead of spinning. */
	while (!ivb_interrupted) {
		uint64_t s = ivb_load_acquire(&r->hdr->session_id);

		if (s != 0 && s != r->last_session)
			return s;
		if (idle_limit_ns && ivb_now_ns() - start > idle_limit_ns)
			return 0;
		ivb_wait_idle(r->waiter, RESPONDER_IDLE_SLICE_NS, RESPONDER_IDLE_POLL_NS);
	}
	return 0;
}

/* Publish ack (seq, state); the release store is last, then the ring. */
static void answer(struct ivb_responder *r, uint64_t seq, enum ivb_state state,
		   enum ivb_error error, const struct ivb_reply *reply)
{
	if (reply) {
		r->hdr->error_code = error;
		r->hdr->guest_read_ns = reply->read_ns;
		r->hdr->guest_hash_ns = reply->hash_ns;
		if (reply->has_digest)
			memcpy(r->hdr->guest_digest, reply->digest, sizeof(reply->digest));
	}
	ivb_store_release(&r->hdr->ack, ivb_ack_make(seq, state));
	ivb_notify(r->waiter, r->peer);
}

/*
 * A second writer answered for this side (a forged or corrupt ack the
 * initiator may have taken): say so once; from then on every final answer
 * of the session is ERROR forged_ack, and the session's end (closed_flags)
 * says so, so an initiator that took a forged answer and moved on cannot
 * end the session believing it. The signs (handle_message()):
 *   - a message's seq does not follow the last one answered: the
 *     initiator moved on from a message this side never saw;
 *   - the initiator posted the next message before this side answered the
 *     current one: it took an answer this side had not given yet;
 *   - at the STOP, the ack word is not this side's RECEIVED.
 * (A workload posts again only after a final answer; after a timeout it
 * ends the session instead, so none of these happens in a fair run.)
 * The initiator checks the rest: the word going back or ahead (ack_final())
 * and the session id. What is not seen: a writer that stores exactly the
 * answer this side is about to store, a little before it, and wins the race
 * to the initiator; that round trip comes out short. Seeing it needs an
 * atomic exchange on every answer, which under TCG made the plain-mode
 * round trip 150 -> 230 ns (a helper call per exchange); a load of the ack
 * word before each answer cost as much (README, "Who must be trusted").
 */
enum second_writer_sign { SKIPPED, OVERTAKEN, STOP_WORD };

static __attribute__((noinline, cold)) void second_writer(struct ivb_responder *r, uint64_t seq,
							   enum second_writer_sign sign, uint64_t seen)
{
	if (r->forged)
		return;
	r->forged = 1;
	if (sign == SKIPPED)
		ivb_warn("session %016llx: message %llu follows message %llu: the initiator took an "
			 "answer this side never gave (a second writer in the shared memory); "
			 "answering ERROR forged_ack from now on", (unsigned long long)r->session,
			 (unsigned long long)seq, (unsigned long long)r->last_seq);
	else if (sign == OVERTAKEN)
		ivb_warn("session %016llx: message %llu was followed by the next before this side "
			 "answered it: the initiator took an answer this side had not given (a second "
			 "writer in the shared memory); answering ERROR forged_ack from now on",
			 (unsigned long long)r->session, (unsigned long long)seq);
	else
		ivb_warn("session %016llx: at its STOP (message %llu) the ack word holds message "
			 "%llu %s, not the RECEIVED this side had just written: a second writer in the "
			 "shared memory; answering ERROR forged_ack", (unsigned long long)r->session,
			 (unsigned long long)seq, (unsigned long long)ivb_ack_seq(seen),
			 ivb_state_name(ivb_ack_state(seen)));
}

/* Check a new session's identity line against this side. IVB_OK or the error. */
static enum ivb_error check_identity(const struct ivb_responder *r, const struct ivb_header *id)
{
	if (id->magic != IVB_MAGIC || id->layout_version != IVB_LAYOUT_VERSION)
		return IVB_ERR_BAD_HEADER;
	if (id->header_size != sizeof(struct ivb_header))
		return IVB_ERR_BAD_HEADER;
	if (id->payload_offset < sizeof(struct ivb_header) || id->payload_offset >= r->map_size)
		return IVB_ERR_BAD_HEADER;
	if (id->mode != ivb_waiter_mode(r->waiter))
		return IVB_ERR_MODE;
	if (r->waiter->ops && id->host_peer_id > 0xffff)
		return IVB_ERR_BAD_HEADER;
	return IVB_OK;
}

/*
 * Attach to session s: check the identity line, fill in the guest line and
 * publish attached_session. A bad identity is answered with an ERROR ack
 * (seq 0) so the initiator learns why; returns -1 then.
 */
static int attach(struct ivb_responder *r, uint64_t s)
{
	struct ivb_header id;
	enum ivb_error e;

	memcpy(&id, r->hdr, offsetof(struct ivb_header, session_id));
	e = check_identity(r, &id);
	r->last_session = s;
	r->peer = e == IVB_OK && r->waiter->ops ? id.host_peer_id : IVB_NO_PEER;
	r->hdr->guest_version = IVB_LAYOUT_VERSION;
	r->hdr->guest_peer_id = r->waiter->self_id;
	r->hdr->guest_map_size = r->map_size;
	r->hdr->guest_pid = (uint32_t)getpid();
	r->hdr->guest_wait = ivb_waiter_mode(r->waiter);
	r->hdr->error_code = e;
	r->hdr->guest_flags = IVB_GUEST_CLOSES;
	ivb_store_release(&r->hdr->ack, ivb_ack_make(0, e == IVB_OK ? IVB_STATE_NONE : IVB_STATE_ERROR));
	ivb_store_release(&r->hdr->attached_session, s);
	ivb_notify(r->waiter, r->peer);
	if (e != IVB_OK) {
		ivb_warn("refusing session %016llx: %s (magic %016llx, layout %u, payload offset %llu, "
			 "mapping %zu bytes)", (unsigned long long)s, ivb_error_name(e),
			 (unsigned long long)id.magic, id.layout_version,
			 (unsigned long long)id.payload_offset, r->map_size);
		return -1;
	}
	r->session = s;
	r->last_seq = 0;
	r->forged = 0;
	if (r->verbose)
		ivb_warn("attached to session %016llx", (unsigned long long)s);
	return 0;
}

/* Answer message seq. Returns 1 when the session ends (STOP, or a new session), else 0. */
static int handle_message(struct ivb_responder *r, uint64_t seq)
{
	struct ivb_message m;
	struct ivb_reply reply;
	enum ivb_error e = IVB_OK;
	uint64_t seen;

	/* Only what every message needs is set: under TCG each store costs. */
	reply.read_ns = reply.hash_ns = 0;
	reply.has_digest = 0;
	/* Copy the message once: the other side may change it under us. */
	m.seq = seq;
	m.command = r->hdr->command;
	m.payload_size = r->hdr->payload_size;
	memcpy(m.check, r->hdr->check, sizeof(m.check));
	if (seq != r->last_seq + 1)
		second_writer(r, seq, SKIPPED, 0);
	answer(r, seq, IVB_STATE_RECEIVED, IVB_OK, NULL);
	/* A command whose workload has no work beyond the acknowledgements
	 * (a PING) makes no call: under TCG a call and its return cost more
	 * than the rest of the exchange. */
	if (m.command == IVB_CMD_STOP) {
		/* RECEIVED of the STOP is this side's last store so far. */
		seen = ivb_load_acquire(&r->hdr->ack);
		if (seen != ivb_ack_make(seq, IVB_STATE_RECEIVED))
			second_writer(r, seq, STOP_WORD, seen);
	} else if (m.command >= IVB_CMD__COUNT || !r->accepts[m.command])
		e = IVB_ERR_BAD_COMMAND;
	else if (r->serve[m.command])
		e = r->serve[m.command](r, &m, &reply);
	if (e != IVB_OK && r->verbose)
		ivb_warn("message %llu (%s, %llu bytes): %s", (unsigned long long)seq,
			 ivb_command_name(m.command), (unsigned long long)m.payload_size,
			 ivb_error_name(e));
	/* A new initiator took the memory while we served (the old one died):
	 * the header is its now, so nothing is answered; the session ends. */
	if (ivb_load_acquire(&r->hdr->session_id) != r->session) {
		if (r->verbose)
			ivb_warn("the session ended (its initiator gave up, or a new one opened) during "
				 "message %llu; not answering it",
				 (unsigned long long)seq);
		return 1;
	}
	/* The initiator posts again only once this answer is out. */
	if (__atomic_load_n(&r->hdr->seq, __ATOMIC_RELAXED) != seq)
		second_writer(r, seq, OVERTAKEN, 0);
	if (r->forged)
		e = IVB_ERR_SECOND_WRITER;
	answer(r, seq, e == IVB_OK ? IVB_STATE_PROCESSED : IVB_STATE_ERROR, e, &reply);
	r->last_seq = seq;
	r->messages++;
	if (m.command == IVB_CMD_STOP) {
		/* The end of the session, in words no answer shares: an initiator
		 * that took a forged answer of the STOP itself still hears it. */
		r->hdr->closed_flags = r->forged ? IVB_CLOSED_SECOND_WRITER : 0;
		ivb_store_release(&r->hdr->closed_session, r->session);
		ivb_notify(r->waiter, r->peer);
	}
	if (r->exit_after >= 0 && r->messages >= r->exit_after) {
		ivb_warn("exiting after %ld messages (--exit-after)", r->messages);
		exit(0);
	}
	return m.command == IVB_CMD_STOP;
}

/* The condition the responder waits for: a new message, or a new session. */
struct message_wait {
	const struct ivb_header *hdr;
	uint64_t session;  /* session served */
	uint64_t last_seq; /* last message answered */
	uint64_t seq;      /* the sequence number seen */
	int ended;         /* the session changed */
};

static int message_or_session(void *arg)
{
	struct message_wait *w = arg;

	if (ivb_load_acquire(&w->hdr->session_id) != w->session)
		return w->ended = 1;
	w->seq = ivb_load_acquire(&w->hdr->seq);
	return w->seq != w->last_seq && w->seq != 0;
}

int ivb_responder_serve(struct ivb_responder *r, uint64_t s)
{
	struct message_wait w = { .hdr = r->hdr };

	if (attach(r, s))
		return -1;
	w.session = r->session;
	for (;;) {
		int rc;

		w.last_seq = r->last_seq;
		rc = ivb_wait_until(r->waiter, message_or_session, &w, ivb_now_ns() + r->silence_ns);
		if (rc == -EINTR)
			break;
		if (rc == -ETIMEDOUT) {
			ivb_warn("host silent for %.0f s; detaching from session %016llx",
				 (double)r->silence_ns / 1e9, (unsigned long long)r->session);
			break;
		}
		if (w.ended)
			break;
		if (handle_message(r, w.seq))
			break;
	}
	if (r->verbose)
		ivb_warn("session %016llx ended after message %llu", (unsigned long long)r->session,
			 (unsigned long long)r->last_seq);
	r->session = 0;
	return 0;
}
