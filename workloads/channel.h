/*
 * channel.h - a stream channel: two message rings (ring.h) in the payload
 * area, one per direction, that the stream and size-latency workloads use.
 *
 * The initiator sets a point up: it lays the rings out, resets them, writes
 * the parameters at the start of the payload area and posts one STREAM
 * message through the session. The responder's serve() (ivb_channel_serve)
 * checks the parameters against its own mapping, says it has started, and
 * moves messages until the point ends: it consumes ring 0 (initiator to
 * responder), produces on ring 1, or echoes each message of ring 0 back on
 * ring 1; then it answers PROCESSED (or ERROR) with its counts in the result
 * block. Ring 0 is "h2g" and ring 1 "g2h" because the initiator is usually
 * the host; nothing here depends on it.
 *
 * Every message carries its sequence number (its index in the ring) and a
 * check (verify.h); the receiver copies it out of shared memory and checks
 * both. A single bad message is counted, with the sequence number of the
 * first, and fails the point; after IVB_CHANNEL_MAX_BAD of them either side
 * ends the point, the rest being garbage. A ring index no real peer could
 * have written (ring.h) ends it at once, with no figures. The responder
 * leaves a point as soon as the session id changes (a new initiator wins
 * over a dead one).
 */
#ifndef IVB_CHANNEL_H
#define IVB_CHANNEL_H

#include <stdint.h>

#include "ring.h"
#include "session.h"
#include "verify.h"

enum ivb_stream_kind {
	IVB_STREAM_H2G = 0,   /* initiator produces, responder consumes */
	IVB_STREAM_G2H = 1,   /* responder produces, initiator consumes */
	IVB_STREAM_BIDIR = 2, /* both at once */
	IVB_STREAM_ECHO = 3,  /* responder sends every message back (ping-pong) */
	IVB_STREAM__COUNT
};

/* Set-up of a point, at the payload offset; initiator-written. */
struct ivb_stream_params {
	uint32_t kind;          /* enum ivb_stream_kind */
	uint32_t verify;        /* enum ivb_verify */
	uint32_t msg_len;       /* bytes per message */
	uint32_t batch;         /* messages per head store */
	uint64_t spin_ns;       /* responder's wait policy (waiter.h spin_ns) */
	uint64_t timeout_ns;    /* give up after this long without progress */
	struct ivb_ring_geometry ring[2]; /* 0: initiator -> responder, 1: back */
	uint64_t stop;          /* responder: stop producing (release) */
	/* Fault injection, for tests only (0: off): after it has consumed
	 * message stall_after (and, echoing, sent it back), the responder
	 * pauses stall_ns once, capped by its timeout. */
	uint64_t stall_after;
	uint64_t stall_ns;
	uint8_t pad[24];
};

/* What the responder reports, the line after; responder-written. */
struct ivb_stream_result {
	uint64_t started;       /* 1 once the parameters were accepted (release) */
	uint64_t consumed;      /* messages it consumed */
	uint64_t produced;      /* messages it produced */
	uint64_t errors;        /* messages that failed their check */
	uint64_t first_bad_seq; /* sequence number of the first */
	uint64_t cpu_ns;        /* its thread's CPU time during the point */
	uint64_t rings;         /* doorbells it rang */
	uint64_t sleeps;        /* times it slept on its doorbell */
	char verify_impl[16];   /* its XXH3 build (verify.h), NUL-terminated */
	char copy_impl[32];     /* its copy per size class (copy.h), NUL-terminated */
	uint8_t pad[16];
};

_Static_assert(sizeof(struct ivb_stream_params) == 128, "params are two lines");
_Static_assert(sizeof(struct ivb_stream_result) == 128, "result is two lines");
_Static_assert(offsetof(struct ivb_stream_params, ring) == 32, "ring");
_Static_assert(offsetof(struct ivb_stream_params, stop) == 80, "stop");
_Static_assert(offsetof(struct ivb_stream_params, stall_after) == 88, "stall_after");

#define IVB_CHANNEL_SETUP_BYTES 4096u /* params and result, before the rings */
#define IVB_CHANNEL_MAX_BAD 64 /* bad messages after which a point ends */

const char *ivb_stream_kind_name(uint32_t kind);

/* The initiator's side of one point. */
struct ivb_channel {
	struct ivb_initiator *ini;
	struct ivb_stream_params *params;
	const struct ivb_stream_result *result;
	struct ivb_ring tx;         /* ring 0: we produce */
	struct ivb_ring rx;         /* ring 1: we consume */
	uint64_t post_seq;          /* the STREAM message's session sequence number */
	uint64_t post_t0;           /* when it was posted */
	uint32_t len;               /* bytes per message */
	enum ivb_verify verify;
	uint8_t *src;               /* a message to send (random bytes) */
	uint8_t *dst;               /* where received messages are copied */
	uint64_t errors;            /* bad messages we received */
	uint64_t first_bad_seq;     /* the first of them */
	char why[160];              /* ivb_channel_responder_error()'s text */
};

/*
 * Set a point up and start it: slots is the most slots per ring (fewer when
 * the messages do not fit so many). Returns 0 once the responder has
 * started, 1 when a message of len bytes cannot fit the shared memory
 * (nothing was posted), -1 on failure (ini->status says why).
 */
int ivb_channel_open(struct ivb_channel *ch, struct ivb_initiator *ini, enum ivb_stream_kind kind,
		     uint32_t len, uint64_t slots, uint32_t batch, enum ivb_verify v,
		     uint64_t responder_spin_ns);

/*
 * Fault injection (tests only): ivb_channel_open() with a responder that
 * pauses stall_ns once, after message stall_after (struct ivb_stream_params).
 */
struct ivb_channel_fault {
	uint64_t stall_after; /* message number (ring 0's sequence) */
	uint64_t stall_ns;    /* 0: no stall */
};
int ivb_channel_open_fault(struct ivb_channel *ch, struct ivb_initiator *ini,
			   enum ivb_stream_kind kind, uint32_t len, uint64_t slots, uint32_t batch,
			   enum ivb_verify v, uint64_t responder_spin_ns,
			   const struct ivb_channel_fault *fault);

/* Send the next message on ring 0 if there is room: 1 sent, 0 full, -EIO (check failed), -EPROTO (broken ring). */
int ivb_channel_try_send(struct ivb_channel *ch);

/*
 * Send the next message on ring 0, waiting for room. 0, -ETIMEDOUT, -EINTR,
 * -EIO (check failed), -EPROTO (an impossible index on ring 0), -EPIPE
 * (the responder has answered: it stopped; ivb_channel_responder_error()
 * says why).
 */
int ivb_channel_send(struct ivb_channel *ch);

/*
 * Take the next message of ring 1 if there is one, without waiting:
 * 1 taken and whole, 2 taken and bad (counted in ch->errors), 0 none yet,
 * -EPIPE the responder announced its end, -EPROTO an impossible index or
 * end marker on ring 1, -EBADMSG more than IVB_CHANNEL_MAX_BAD bad ones.
 */
int ivb_channel_poll(struct ivb_channel *ch);

/* Wait for a message on ring 1: 0, -ETIMEDOUT, -EINTR, -EPROTO, -EPIPE (the responder stopped). */
int ivb_channel_wait(struct ivb_channel *ch);

/* What a negative return of the calls above means, for a status line. */
const char *ivb_channel_error(int rc);

/* The error the responder answered the point with, once it has (before: a forged end marker). */
const char *ivb_channel_responder_error(struct ivb_channel *ch);

/*
 * End the point: announce the end of ring 0, tell the responder to stop
 * producing, take what is left on ring 1, and wait for the responder's
 * answer. Returns 0 when it answered PROCESSED and no message was bad,
 * 1 when messages were bad or it answered ERROR (ini->status says which),
 * -1 when it did not answer (ini->status says why).
 */
int ivb_channel_close(struct ivb_channel *ch);

/* The largest message a channel's rings can hold in a mapping of map_size bytes (0: none). */
uint64_t ivb_channel_max_message(uint64_t map_size);

/* Free the point's buffers when it is given up without ivb_channel_close() (which frees them). */
void ivb_channel_free(struct ivb_channel *ch);

/*
 * The two rings of a point for a mapping of map_size bytes: each half of
 * what follows the set-up page, in whole pages, with at most slots slots
 * (a power of two) of len-byte messages. 0, or 1 when such a message does
 * not fit. (ivb_channel_open's layout, for a workload with a set-up of its
 * own, such as chain.c.)
 */
int ivb_channel_layout(size_t map_size, uint32_t len, uint64_t slots,
		       struct ivb_ring_geometry ring[2]);

/*
 * ivb_channel_open() up to the post: the rings laid out and reset, the
 * messages' buffers (src random), the set-up written. 0, 1 when a message
 * of len bytes cannot fit, -1 on failure (ini->status says why). For a
 * workload that adds to the set-up (chain.c), then ivb_channel_post()s.
 */
int ivb_channel_prepare(struct ivb_channel *ch, struct ivb_initiator *ini,
			enum ivb_stream_kind kind, uint32_t len, uint64_t slots, uint32_t batch,
			enum ivb_verify v, uint64_t responder_spin_ns);

/*
 * Post cmd with the set-up already in place (ch's ini, result and rings
 * set) and wait for the responder to start or refuse: ivb_wait_until()'s
 * result (0 when one of the two happened; res->started says which).
 */
int ivb_channel_post(struct ivb_channel *ch, uint32_t cmd);

/*
 * Give a point up: announce the end of ring 0, tell the responder to stop,
 * ring it, and free the buffers, so a responder never waits out its
 * timeout on a point nobody will finish. Does not wait.
 */
void ivb_channel_abort(struct ivb_channel *ch);

/* The responder's half, for every workload that uses a channel. */
enum ivb_error ivb_channel_serve(struct ivb_responder *r, const struct ivb_message *m,
				 struct ivb_reply *reply);

#endif
