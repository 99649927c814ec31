/*
 * ring.h - a single-producer single-consumer ring of messages in shared
 * memory, one per direction (the streaming workloads' channel).
 *
 * Layout: a control block of four cache lines, then nslots slots (a power
 * of two) of slot_size bytes (whole cache lines). The producer's index (head) and
 * the consumer's (tail) are free-running 64-bit counts on cache lines of
 * their own with a guard line between them, so neither side's stores
 * disturb the line the other writes. Each side caches the other's index and
 * reads it again only when the ring looks full (producer) or empty
 * (consumer). The producer publishes a batch of messages with one release
 * store of head; the consumer frees a batch with one release store of tail
 * (and always before it waits, so an empty ring never hides free room).
 *
 * A slot holds a 64-byte header (sequence number, length, the check of
 * verify.h) and the message after it. Messages larger than a slot's
 * capacity are refused by the caller's set-up, never split.
 *
 * Doorbells: a side about to sleep sets its *_sleeping flag (waiter.h's
 * ivb_wait_flagged()); the other side rings only when it sees that flag
 * after a full barrier, so a busy stream rings rarely or never.
 *
 * Everything a consumer reads from a slot is untrusted: it copies the
 * header once, checks the length against the slot, copies the message out,
 * and checks the sequence number and the check on its copy.
 *
 * So is every index loaded from the other side. A consumer takes the
 * producer's head only when it is no more than a ring ahead of what it has
 * consumed and not behind what it saw before; a producer takes the
 * consumer's tail only when it is not ahead of what it has published and
 * not behind what it saw before; an end marker below what was already
 * published is refused too. Any other value cannot come from a real peer:
 * the ring is marked broken for good, the last good value is kept, and
 * every call after that reports no progress (NULL) and every wait ends at
 * once with -EPROTO, so the caller stops the point with an error instead
 * of counting or consuming garbage.
 *
 * A ring's waits can also watch one 64-bit word of the shared memory (the
 * session id): when it changes, the wait ends with -ECANCELED, so a
 * responder leaves a point as soon as a new initiator opens a session.
 */
#ifndef IVB_RING_H
#define IVB_RING_H

#include <stddef.h>
#include <stdint.h>

#include "ivshmem_abi.h"
#include "verify.h"
#include "waiter.h"

#define IVB_RING_CTL_SIZE 256u
#define IVB_SLOT_HEADER 64u

struct ivb_ring_ctl {
	/* ---- line 0: producer-written ---- */
	uint64_t head;               /* messages published (release) */
	uint64_t end;                /* messages the producer will publish in all; UINT64_MAX until known (release) */
	uint32_t producer_sleeping;  /* the producer waits for room and wants a ring */
	uint32_t pad0;
	uint8_t pad1[40];
	/* ---- line 1: guard ---- */
	uint8_t guard0[64];
	/* ---- line 2: consumer-written ---- */
	uint64_t tail;               /* messages consumed (release) */
	uint32_t consumer_sleeping;  /* the consumer waits for messages and wants a ring */
	uint32_t pad2;
	uint64_t errors;             /* messages that failed their check */
	uint64_t first_bad_seq;      /* sequence number of the first of them */
	uint8_t pad3[32];
	/* ---- line 3: guard ---- */
	uint8_t guard1[64];
};

_Static_assert(sizeof(struct ivb_ring_ctl) == IVB_RING_CTL_SIZE, "ring control is four lines");
_Static_assert(offsetof(struct ivb_ring_ctl, head) == 0, "head");
_Static_assert(offsetof(struct ivb_ring_ctl, end) == 8, "end");
_Static_assert(offsetof(struct ivb_ring_ctl, producer_sleeping) == 16, "producer_sleeping");
_Static_assert(offsetof(struct ivb_ring_ctl, tail) == 128, "tail");
_Static_assert(offsetof(struct ivb_ring_ctl, consumer_sleeping) == 136, "consumer_sleeping");
_Static_assert(offsetof(struct ivb_ring_ctl, errors) == 144, "errors");
_Static_assert(offsetof(struct ivb_ring_ctl, first_bad_seq) == 152, "first_bad_seq");

struct ivb_slot_header {
	uint64_t seq;                         /* message number, from 0 */
	uint32_t len;                         /* message bytes */
	uint32_t verify;                      /* enum ivb_verify */
	uint8_t check[IVB_VERIFY_MAX_LEN];    /* verify.h's check of the message */
	uint8_t pad[16];
};

_Static_assert(sizeof(struct ivb_slot_header) == IVB_SLOT_HEADER, "slot header is one line");
_Static_assert(offsetof(struct ivb_slot_header, check) == 16, "check");

/* Ring geometry: what the set-up message carries (and a side checks). */
struct ivb_ring_geometry {
	uint64_t offset;     /* of the control block, from the start of the shared memory */
	uint64_t nslots;     /* a power of two */
	uint64_t slot_size;  /* whole cache lines, >= IVB_SLOT_HEADER + message bytes */
};

/* One side's view of a ring. */
struct ivb_ring {
	struct ivb_ring_ctl *ctl;
	uint8_t *slots;
	uint64_t mask;        /* nslots - 1 */
	uint64_t slot_size;
	uint64_t local;       /* producer: next to publish; consumer: next to consume */
	uint64_t published;   /* head last stored (producer), tail last stored (consumer) */
	uint64_t other;       /* cached index of the other side (tail or head) */
	uint32_t batch;       /* messages per index store (head, or tail) */
	struct ivb_waiter *waiter;
	uint32_t peer;        /* whom to ring */
	uint64_t rings;       /* doorbells this side rang for this ring */
	const uint64_t *watch; /* waits end when this word stops being watch_value (NULL: none) */
	uint64_t watch_value;
	int broken;           /* the other side's index was impossible: garbage, stop */
	int cancelled;        /* the watched word changed during a wait */
};

/* Bytes a ring of this geometry takes. */
static inline uint64_t ivb_ring_bytes(const struct ivb_ring_geometry *g)
{
	return IVB_RING_CTL_SIZE + g->nslots * g->slot_size;
}

/*
 * Check a geometry against a mapping of map_size bytes: a power-of-two slot
 * count, whole cache lines, after the header, inside the mapping. 0 or -1.
 */
int ivb_ring_geometry_ok(const struct ivb_ring_geometry *g, size_t map_size);

/* Attach to a ring at base + g->offset; the initiator also resets it (reset = 1). */
void ivb_ring_init(struct ivb_ring *r, void *base, const struct ivb_ring_geometry *g,
		   struct ivb_waiter *w, uint32_t peer, uint32_t batch, int reset);

/* ---- producer ---- */

/* The next free slot, or NULL when the ring is full (the consumer's index is read again first). */
struct ivb_slot_header *ivb_ring_reserve(struct ivb_ring *r);
/* Publish the reserved slot; the head store happens every batch messages. */
void ivb_ring_commit(struct ivb_ring *r);
/* Publish whatever is reserved and committed but not yet stored. */
void ivb_ring_flush(struct ivb_ring *r);
/* Say that no message after n will come (and flush). */
void ivb_ring_finish(struct ivb_ring *r, uint64_t n);
/*
 * Wait until a slot is free (or deadline). 0, -ETIMEDOUT, -EINTR, -EPROTO
 * (broken), -ECANCELED (the watched word changed).
 */
int ivb_ring_wait_room(struct ivb_ring *r, uint64_t deadline_ns);
/*
 * Messages the consumer has freed, its tail, checked as above (the last
 * good value once the ring is broken): never more than were published.
 */
uint64_t ivb_ring_consumed(struct ivb_ring *r);

/* ---- consumer ---- */

/*
 * The next message, or NULL when the ring is empty (the producer's index is
 * read again first) or broken (an impossible index, see above).
 */
const struct ivb_slot_header *ivb_ring_peek(struct ivb_ring *r);
/* Free the message peek() returned (stored every batch, and when the ring runs empty). */
void ivb_ring_release(struct ivb_ring *r);
/*
 * Wait until a message is there or the producer said it has finished.
 * 0, -ETIMEDOUT, -EINTR, -EPROTO (broken), -ECANCELED (the watched word changed).
 */
int ivb_ring_wait_message(struct ivb_ring *r, uint64_t deadline_ns);
/* 1 when the other side's index was impossible (see above). */
int ivb_ring_broken(const struct ivb_ring *r);

/*
 * 1 once every message the producer announced has been consumed, or when
 * the ring is broken (an end below what was published breaks it): the
 * caller tells the two apart with ivb_ring_broken().
 */
int ivb_ring_drained(struct ivb_ring *r);

/* End every later wait on r with -ECANCELED once *word != value (word in the shared memory). */
void ivb_ring_watch(struct ivb_ring *r, const uint64_t *word, uint64_t value);

/* ---- messages ---- */

/*
 * Write message seq of len bytes from src into slot s with its check.
 * Returns 0, or -1 when the check could not be computed.
 */
int ivb_message_write(struct ivb_slot_header *s, uint64_t seq, const void *src, uint32_t len,
		      enum ivb_verify v);

/*
 * Copy the message in slot s out into dst (cap bytes) and check it against
 * the expected sequence number, length and kind of check. Returns 0 when
 * it is whole, or -1 (a corrupt or unexpected message).
 */
int ivb_message_read(const struct ivb_slot_header *s, uint64_t slot_size, uint64_t want_seq,
		     uint32_t want_len, enum ivb_verify v, void *dst, size_t cap);

#endif
