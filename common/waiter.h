/*
 * waiter.h - how a side waits for the other and tells it something
 * changed: the one place that knows about polling and doorbells.
 *
 * A workload never asks which mode it runs in. It publishes with a release
 * store and calls ivb_notify(); it waits with ivb_wait_until() for a
 * condition it reads with acquire loads. What that costs depends on the
 * waiter it was given:
 *
 *   polling   ivb_wait_until() spins on the condition, reading the clock
 *             only every IVB_SPIN_CHECK_EVERY tries; ivb_notify() does
 *             nothing (the other side is spinning too).
 *   doorbell  ivb_wait_until() checks the condition, then sleeps until the
 *             other side rings (host: the eventfd the ivshmem server gave
 *             us; guest: the MSI-X vector VFIO routes to an eventfd) and
 *             checks again; ivb_notify() rings the peer. A ring that
 *             arrives between the check and the sleep is counted by the
 *             eventfd, so no wake-up is lost as long as the other side
 *             rings after every store this side waits for.
 *
 * Every wait has a deadline and returns early when SIGINT or SIGTERM
 * arrived (cli.h's ivb_interrupted). The backends (waiter_server.c for a
 * host peer of the server, waiter_vfio.c for a guest) live in their own
 * files so a program links only the ones it uses.
 */
#ifndef IVB_WAITER_H
#define IVB_WAITER_H

#include <errno.h>
#include <stdint.h>

#include "cli.h"
#include "ivshmem_abi.h"
#include "timing.h"

#define IVB_SPIN_CHECK_EVERY 1024 /* condition checks between clock reads when spinning */
#define IVB_SLEEP_SLICE_NS 200000000ull /* longest single sleep: how soon a signal is noticed */
#define IVB_ALL_PEERS 0xfffffffeu /* ivb_notify(): every peer the backend knows */
#define IVB_SPIN_FOREVER UINT64_MAX /* spin_ns of a waiter that never sleeps */

/* What a doorbell backend does; NULL ops is polling. */
struct ivb_waiter_ops {
	const char *name;                                     /* "eventfd", "vfio-msix" */
	int (*sleep)(void *ctx, uint64_t timeout_ns);         /* 1 rung, 0 timed out, -errno */
	void (*notify)(void *ctx, uint32_t peer);             /* ring vector 0 of peer (or all) */
	int (*peer_known)(void *ctx, uint32_t peer);          /* 1 when peer can be rung */
};

struct ivb_waiter {
	const struct ivb_waiter_ops *ops; /* NULL: poll */
	uint64_t spin_ns;                 /* doorbell: spin this long before sleeping
					   * (0: sleep at once, IVB_SPIN_FOREVER: never sleep) */
	void *ctx;                        /* the backend's state */
	uint32_t self_id;                 /* our peer id, IVB_NO_PEER when polling */
	uint64_t sleeps;                  /* times this side went to sleep */
	uint64_t rings;                   /* doorbells this side rang */
};

/* A waiter that polls. */
static inline void ivb_waiter_poll(struct ivb_waiter *w)
{
	*w = (struct ivb_waiter){ .self_id = IVB_NO_PEER };
}

/* The mode this waiter implements, as the header records it. */
static inline enum ivb_mode ivb_waiter_mode(const struct ivb_waiter *w)
{
	return w->ops ? IVB_MODE_DOORBELL : IVB_MODE_PLAIN;
}

/* "poll", or the backend's name. */
static inline const char *ivb_waiter_name(const struct ivb_waiter *w)
{
	return w->ops ? w->ops->name : "poll";
}

/* Tell peer something changed (a no-op when polling). */
static inline void ivb_notify(struct ivb_waiter *w, uint32_t peer)
{
	if (w->ops && peer != IVB_NO_PEER) {
		w->ops->notify(w->ctx, peer);
		w->rings++;
	}
}

/* 1 when peer can be rung (always, when polling). */
static inline int ivb_peer_known(const struct ivb_waiter *w, uint32_t peer)
{
	return !w->ops || w->ops->peer_known(w->ctx, peer);
}

/*
 * Sleep until rung or timeout_ns pass, for callers with nothing to spin on
 * (a side waiting for a session): polling sleeps min(timeout, idle_ns).
 */
void ivb_wait_idle(struct ivb_waiter *w, uint64_t timeout_ns, uint64_t idle_ns);

/* The slow path of ivb_wait_until(): sleep once, up to the deadline. */
int ivb_wait_sleep(struct ivb_waiter *w, uint64_t deadline_ns);

/*
 * Wait until ready(arg) returns non-zero or deadline_ns passes, telling
 * the other side through *sleeping (if not NULL) when this side is about to
 * sleep, so that it rings only then (notification suppression, as io_uring's
 * NEED_WAKEUP and virtio's EVENT_IDX do): this side sets the flag, then
 * (a full barrier between) checks ready() once more before it sleeps; the
 * other side publishes, then a full barrier (ivb_wake_if_sleeping()), then
 * reads the flag. One of the two always sees the other's store, so no
 * wake-up is lost. A doorbell waiter spins spin_ns first (hybrid).
 * Returns 0 when ready, -ETIMEDOUT, -EINTR after a stop signal.
 */
static inline __attribute__((always_inline)) int
ivb_wait_flagged(struct ivb_waiter *w, int (*ready)(void *), void *arg,
				   uint64_t deadline_ns, uint32_t *sleeping)
{
	uint64_t spin_until = 0;
	unsigned spins = 0;

	if (w->ops && w->spin_ns)
		spin_until = w->spin_ns == IVB_SPIN_FOREVER ? UINT64_MAX : ivb_now_ns() + w->spin_ns;
	for (;;) {
		uint64_t now;

		if (ready(arg))
			return 0;
		if (++spins % IVB_SPIN_CHECK_EVERY && (!w->ops || spin_until))
			continue;
		if (ivb_interrupted)
			return -EINTR;
		now = ivb_now_ns();
		if (now > deadline_ns)
			return ready(arg) ? 0 : -ETIMEDOUT;
		if (!w->ops || now < spin_until)
			continue;
		spin_until = 0;
		if (sleeping) {
			__atomic_store_n(sleeping, 1, __ATOMIC_SEQ_CST);
			if (ready(arg)) {
				__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
				return 0;
			}
		}
		ivb_wait_sleep(w, deadline_ns);
		if (sleeping)
			__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
	}
}

/*
 * The other half of ivb_wait_flagged(): after publishing with a release
 * store, ring peer if it said it is about to sleep. The flag is cleared by
 * whoever rings, so a sleeper is rung once however many messages pass
 * before it wakes (it sets the flag again before it sleeps again). Returns
 * 1 when it rang.
 */
static inline int ivb_wake_if_sleeping(struct ivb_waiter *w, uint32_t *sleeping, uint32_t peer)
{
	if (!w->ops)
		return 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(sleeping, __ATOMIC_RELAXED) ||
	    !__atomic_exchange_n(sleeping, 0, __ATOMIC_SEQ_CST))
		return 0;
	ivb_notify(w, peer);
	return 1;
}

/*
 * Wait until ready(arg) returns non-zero or deadline_ns (ivb_now_ns()
 * time) passes. Returns 0 when ready, -ETIMEDOUT, -EINTR after a stop
 * signal. Inline, so the condition is inlined into the spin loop.
 */
static inline __attribute__((always_inline)) int
ivb_wait_until(struct ivb_waiter *w, int (*ready)(void *), void *arg,
				 uint64_t deadline_ns)
{
	return ivb_wait_flagged(w, ready, arg, deadline_ns, NULL);
}

#endif
