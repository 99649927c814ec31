/*
 * session.h - the two-phase acknowledgement of ivshmem_abi.h, both halves:
 * the initiator opens a session, posts messages and waits for their acks;
 * the responder attaches to a session, copies each message once, answers
 * RECEIVED, hands the message to the workload that serves its command and
 * answers PROCESSED or ERROR.
 *
 * Neither half knows which side of the VM boundary it runs on: each gets
 * the mapped shared memory and a waiter (waiter.h) for waiting and ringing.
 */
#ifndef IVB_SESSION_H
#define IVB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "ivshmem_abi.h"
#include "waiter.h"

/* Outcomes the initiator adds to the responder's enum ivb_error. */
#define IVB_ERR_TIMEOUT 100     /* no final ack before the deadline */
#define IVB_ERR_INTERRUPTED 101 /* SIGINT, SIGTERM or SIGHUP while waiting */
#define IVB_ERR_BAD_PROOF 102   /* PROCESSED, but the digest returned is not the payload's */
#define IVB_ERR_BAD_ACK 103     /* an ack no responder wrote: of a message not yet
				   * posted, or going back from one already taken */

/* ---- initiator ---------------------------------------------------------- */

struct ivb_initiator {
	struct ivb_header *hdr;   /* start of the shared memory */
	size_t map_size;          /* bytes mapped */
	uint8_t *payload;         /* = base + IVB_PAYLOAD_OFFSET */
	uint64_t capacity;        /* payload bytes available */
	struct ivb_waiter *waiter; /* how to wait and ring */
	uint32_t peer;            /* the responder's peer id (doorbell), else IVB_NO_PEER */
	uint64_t timeout_ns;      /* deadline of every wait */
	uint64_t session;         /* current session id, 0 before open */
	uint64_t seq;             /* last message posted */
	uint64_t taken;           /* the last final ack word taken (its message's answer) */
	uint32_t responder_pid;   /* what the responder said when it attached, */
	uint32_t responder_wait;  /* for run.json: its pid and enum ivb_mode */
	int attached;             /* a responder attached to a session of ours */
	char status[512];         /* why the last call failed */
};

/* What a wait for an acknowledgement saw. */
struct ivb_ack {
	uint64_t received_ns; /* post -> first sight of RECEIVED (or later) */
	uint64_t done_ns;     /* post -> final state */
	enum ivb_state state; /* final state, or the last one seen on failure */
	uint64_t seen_seq;    /* sequence number of the last ack seen */
	uint32_t error;       /* responder's enum ivb_error, or IVB_ERR_TIMEOUT/INTERRUPTED */
};

/* Set up over a mapping of map_size bytes at base. */
void ivb_initiator_init(struct ivb_initiator *ini, void *base, size_t map_size,
			struct ivb_waiter *w, uint64_t timeout_ns);

/*
 * Open a new session (a fresh random id) and wait for a responder to
 * attach. Returns 0, or -1 with ini->status saying why.
 */
int ivb_initiator_open(struct ivb_initiator *ini);

/* Post message cmd (its fields are written already): the release store, then the ring. */
uint64_t ivb_post(struct ivb_initiator *ini, enum ivb_command cmd);

/*
 * Wait until the ack of message seq reaches a final state; t0 is when the
 * interval began. Returns 0 when it did, -1 on timeout, signal, or an ack
 * of a later message than seq (a->error says which; ini->status describes
 * it, naming what).
 */
int ivb_wait_ack(struct ivb_initiator *ini, uint64_t seq, uint64_t t0, const char *what,
		 struct ivb_ack *a);

/*
 * Tell the responder the session is over and close it. Returns 0, or -1
 * with ini->status saying why the session's answers cannot be trusted: a
 * second writer showed itself (the session id changed under us, an ack
 * went back or ahead, the responder said someone answered for it, or it
 * never confirmed the end of the session after the STOP's answer). A STOP
 * that goes unanswered is not an error here: every figure was taken by then.
 */
int ivb_initiator_close(struct ivb_initiator *ini);

/*
 * End the session at once, without a STOP message or a wait: the session
 * id goes to 0, which ends whatever the responder is waiting on (a point
 * in the middle of a stream included), and the responder is rung. For a
 * run that failed or was interrupted.
 */
void ivb_initiator_abort(struct ivb_initiator *ini);

/* "timeout", "interrupted", "bad_proof" or the responder's error name. */
const char *ivb_outcome_name(uint32_t error);

/* ---- responder ---------------------------------------------------------- */

/* One message as the responder copied it out of the header (untrusted). */
struct ivb_message {
	uint64_t seq;           /* its sequence number */
	uint32_t command;       /* enum ivb_command */
	uint64_t payload_size;  /* bytes the initiator says it wrote */
	uint8_t check[IVB_CHECK_LEN]; /* the initiator's check on the payload */
};

/* What the serving workload reports back, beside its error code. */
struct ivb_reply {
	uint64_t read_ns;                 /* time to copy the payload out */
	uint64_t hash_ns;                 /* time to hash it */
	uint8_t digest[IVB_SHA256_LEN];   /* the digest it computed, returned as proof */
	int has_digest;                   /* digest is set (a frame) */
};

struct ivb_responder;
/* Serve one message of a workload's command; returns IVB_OK or the error to answer. */
typedef enum ivb_error (*ivb_serve_fn)(struct ivb_responder *r, const struct ivb_message *m,
					struct ivb_reply *reply);

struct ivb_responder {
	struct ivb_header *hdr;   /* start of the shared memory */
	size_t map_size;          /* bytes mapped: every size is checked against this */
	struct ivb_waiter *waiter; /* how to wait and ring */
	uint32_t peer;            /* whom to ring: the initiator's peer id from the header */
	uint64_t session;         /* session being served, 0 when detached */
	uint64_t last_session;    /* last session served or refused */
	uint64_t last_seq;        /* last message answered in this session */
	int forged;               /* a second writer answered for this side in this session */
	long messages;            /* messages answered since start */
	uint64_t silence_ns;      /* detach after the initiator is silent this long */
	long exit_after;          /* fault injection: exit after this many messages (-1 off) */
	int verbose;              /* log sessions and errors to stderr */
	ivb_serve_fn serve[IVB_CMD__COUNT]; /* the workload serving each command, NULL: no work */
	uint8_t accepts[IVB_CMD__COUNT];    /* a workload serves the command */
	uint8_t *scratch;         /* private buffer a workload copies payloads into */
	size_t scratch_size;      /* its size */
};

/* Set up over a mapping; serve[] is filled by the caller from the workload table. */
void ivb_responder_init(struct ivb_responder *r, void *base, size_t map_size,
			struct ivb_waiter *w);

/*
 * Wait for a session not yet seen, up to idle_limit_ns (0: no limit).
 * Returns its id, or 0 after the limit or a stop signal.
 */
uint64_t ivb_responder_wait_session(struct ivb_responder *r, uint64_t idle_limit_ns);

/*
 * Attach to session s and answer its messages until STOP, a new session,
 * initiator silence or a stop signal. Returns 0, or -1 when the session
 * was refused (its identity line does not fit this side).
 */
int ivb_responder_serve(struct ivb_responder *r, uint64_t s);

/* A private buffer of at least size bytes, or NULL. */
uint8_t *ivb_responder_scratch(struct ivb_responder *r, size_t size);

#endif
