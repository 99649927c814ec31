/*
 * ring.c - the SPSC message ring in shared memory (see ring.h).
 */
#include "ring.h"

#include <string.h>

#include "copy.h"
#include "shm_map.h"

int ivb_ring_geometry_ok(const struct ivb_ring_geometry *g, size_t map_size)
{
	if (!ivb_is_pow2(g->nslots) || g->slot_size % IVB_CACHE_LINE ||
	    g->slot_size < IVB_SLOT_HEADER + IVB_CACHE_LINE || g->nslots > (1ull << 32))
		return -1;
	if (g->offset % IVB_CACHE_LINE || g->offset < IVB_PAYLOAD_OFFSET || g->offset > map_size)
		return -1;
	if (g->slot_size > map_size || g->nslots > map_size / g->slot_size)
		return -1;
	return ivb_ring_bytes(g) <= map_size - g->offset ? 0 : -1;
}

void ivb_ring_init(struct ivb_ring *r, void *base, const struct ivb_ring_geometry *g,
		   struct ivb_waiter *w, uint32_t peer, uint32_t batch, int reset)
{
	*r = (struct ivb_ring){
		.ctl = (struct ivb_ring_ctl *)((uint8_t *)base + g->offset),
		.slots = (uint8_t *)base + g->offset + IVB_RING_CTL_SIZE,
		.mask = g->nslots - 1, .slot_size = g->slot_size, .batch = batch ? batch : 1,
		.waiter = w, .peer = peer,
	};
	if (reset) {
		memset(r->ctl, 0, sizeof(*r->ctl));
		r->ctl->end = UINT64_MAX;
	}
}

static struct ivb_slot_header *slot(const struct ivb_ring *r, uint64_t i)
{
	return (struct ivb_slot_header *)(r->slots + (i & r->mask) * r->slot_size);
}

/* ---- the other side's indices ---- */

/*
 * Load the producer's head into r->other (consumer side). 0, or -1 when it
 * is behind what we saw before or more than a ring ahead of what we have
 * consumed: the ring is broken and r->other keeps its last good value.
 */
static int load_head(struct ivb_ring *r)
{
	uint64_t h = ivb_load_acquire(&r->ctl->head);

	if (r->broken)
		return -1;
	if (h - r->local > r->mask + 1 || h - r->local < r->other - r->local) {
		r->broken = 1;
		return -1;
	}
	r->other = h;
	return 0;
}

/*
 * Load the consumer's tail into r->other (producer side). 0, or -1 when it
 * is ahead of what we have published or behind what we saw before: broken.
 */
static int load_tail(struct ivb_ring *r)
{
	uint64_t t = ivb_load_acquire(&r->ctl->tail);

	if (r->broken)
		return -1;
	if (r->published - t > r->published - r->other) {
		r->broken = 1;
		return -1;
	}
	r->other = t;
	return 0;
}

/* 1 when the watched word has changed (r->cancelled is set). */
static int watch_changed(struct ivb_ring *r)
{
	if (r->watch && ivb_load_acquire(r->watch) != r->watch_value)
		r->cancelled = 1;
	return r->cancelled;
}

/* What a wait's 0 means once its condition gave way to a broken ring or a changed word. */
static int wait_outcome(struct ivb_ring *r, int rc)
{
	if (rc == 0 && r->broken)
		return -EPROTO;
	if (rc == 0 && r->cancelled)
		return -ECANCELED;
	return rc;
}

void ivb_ring_watch(struct ivb_ring *r, const uint64_t *word, uint64_t value)
{
	r->watch = word;
	r->watch_value = value;
	r->cancelled = 0;
}

int ivb_ring_broken(const struct ivb_ring *r)
{
	return r->broken;
}

/* ---- producer ---- */

struct ivb_slot_header *ivb_ring_reserve(struct ivb_ring *r)
{
	if (r->broken)
		return NULL;
	if (r->local - r->other > r->mask) {
		if (load_tail(r))
			return NULL;
		if (r->local - r->other > r->mask) {
			/* Full: what is committed must be visible, or we wait for ever. */
			ivb_ring_flush(r);
			return NULL;
		}
	}
	/* Ask for the next slots' lines now: the consumer read them last, and
	 * taking them back one store at a time stalls on every message. */
	__builtin_prefetch(slot(r, r->local + 4), 1);
	__builtin_prefetch((uint8_t *)slot(r, r->local + 4) + 64, 1);
	return slot(r, r->local);
}

void ivb_ring_flush(struct ivb_ring *r)
{
	if (r->published == r->local)
		return;
	ivb_store_release(&r->ctl->head, r->local);
	r->published = r->local;
	r->rings += (uint64_t)ivb_wake_if_sleeping(r->waiter, &r->ctl->consumer_sleeping, r->peer);
}

void ivb_ring_commit(struct ivb_ring *r)
{
	r->local++;
	if (r->local - r->published >= r->batch)
		ivb_ring_flush(r);
}

void ivb_ring_finish(struct ivb_ring *r, uint64_t n)
{
	ivb_ring_flush(r);
	ivb_store_release(&r->ctl->end, n);
	r->rings += (uint64_t)ivb_wake_if_sleeping(r->waiter, &r->ctl->consumer_sleeping, r->peer);
}

uint64_t ivb_ring_consumed(struct ivb_ring *r)
{
	load_tail(r);
	return r->other;
}

static int has_room(void *arg)
{
	struct ivb_ring *r = arg;

	if (load_tail(r) || watch_changed(r))
		return 1;
	return r->local - r->other <= r->mask;
}

int ivb_ring_wait_room(struct ivb_ring *r, uint64_t deadline_ns)
{
	if (r->broken)
		return -EPROTO;
	ivb_ring_flush(r);
	return wait_outcome(r, ivb_wait_flagged(r->waiter, has_room, r, deadline_ns,
						&r->ctl->producer_sleeping));
}

/* ---- consumer ---- */

/* Store the consumer's index: the messages freed since the last store. */
static void release_flush(struct ivb_ring *r)
{
	if (r->published == r->local)
		return;
	ivb_store_release(&r->ctl->tail, r->local);
	r->published = r->local;
	r->rings += (uint64_t)ivb_wake_if_sleeping(r->waiter, &r->ctl->producer_sleeping, r->peer);
}

/*
 * Free a message. The index is stored every batch messages, and whenever
 * the ring runs empty, not after each one: a producer waiting for room
 * reads that cache line, and a store per message would make it bounce
 * between the cores on every message.
 */
void ivb_ring_release(struct ivb_ring *r)
{
	r->local++;
	if (r->local - r->published >= r->batch)
		release_flush(r);
}

const struct ivb_slot_header *ivb_ring_peek(struct ivb_ring *r)
{
	if (r->broken)
		return NULL;
	if (r->local == r->other) {
		if (load_head(r))
			return NULL;
		if (r->local == r->other) {
			release_flush(r); /* empty: the producer may be waiting for room */
			return NULL;
		}
	}
	if (r->other - r->local > 4) {
		__builtin_prefetch(slot(r, r->local + 4), 0);
		__builtin_prefetch((uint8_t *)slot(r, r->local + 4) + 64, 0);
	}
	return slot(r, r->local);
}

int ivb_ring_drained(struct ivb_ring *r)
{
	uint64_t end = ivb_load_acquire(&r->ctl->end);

	if (r->broken)
		return 1;
	if (end == UINT64_MAX)
		return 0;
	/* An end below what the producer had already published is impossible. */
	if (end - r->local > UINT64_MAX / 2 || end - r->local < r->other - r->local) {
		r->broken = 1;
		return 1;
	}
	return r->local == end;
}

static int has_message(void *arg)
{
	struct ivb_ring *r = arg;

	if (load_head(r) || watch_changed(r))
		return 1;
	return r->local != r->other || ivb_ring_drained(r);
}

int ivb_ring_wait_message(struct ivb_ring *r, uint64_t deadline_ns)
{
	if (r->broken)
		return -EPROTO;
	release_flush(r);
	return wait_outcome(r, ivb_wait_flagged(r->waiter, has_message, r, deadline_ns,
						&r->ctl->consumer_sleeping));
}

/* ---- messages ---- */

int ivb_message_write(struct ivb_slot_header *s, uint64_t seq, const void *src, uint32_t len,
		      enum ivb_verify v)
{
	uint8_t check[IVB_VERIFY_MAX_LEN];

	if (ivb_verify_compute(v, seq, src, len, check))
		return -1;
	ivb_copy((uint8_t *)s + IVB_SLOT_HEADER, src, len);
	s->seq = seq;
	s->len = len;
	s->verify = v;
	memcpy(s->check, check, sizeof(check));
	return 0;
}

int ivb_message_read(const struct ivb_slot_header *s, uint64_t slot_size, uint64_t want_seq,
		     uint32_t want_len, enum ivb_verify v, void *dst, size_t cap)
{
	struct ivb_slot_header h;
	uint8_t check[IVB_VERIFY_MAX_LEN];

	memcpy(&h, s, sizeof(h)); /* once: the other side may change it under us */
	if (h.seq != want_seq || h.len != want_len || h.verify != (uint32_t)v ||
	    h.len > slot_size - IVB_SLOT_HEADER || h.len > cap)
		return -1;
	ivb_copy(dst, (const uint8_t *)s + IVB_SLOT_HEADER, h.len);
	if (v == IVB_VERIFY_NONE)
		return 0;
	if (ivb_verify_compute(v, h.seq, dst, h.len, check))
		return -1;
	return memcmp(check, h.check, sizeof(check)) ? -1 : 0;
}
