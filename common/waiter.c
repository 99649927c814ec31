/*
 * waiter.c - the sleeping half of waiter.h, shared by every backend.
 */
#include "waiter.h"

int ivb_wait_sleep(struct ivb_waiter *w, uint64_t deadline_ns)
{
	uint64_t now = ivb_now_ns(), left;
	int rc;

	if (ivb_interrupted)
		return -EINTR;
	if (now > deadline_ns)
		return -ETIMEDOUT;
	left = deadline_ns - now;
	/* Sleep in slices, so a stop signal is seen within one slice even
	 * where the backend restarts its poll() after EINTR. */
	if (left > IVB_SLEEP_SLICE_NS)
		left = IVB_SLEEP_SLICE_NS;
	w->sleeps++;
	rc = w->ops->sleep(w->ctx, left);
	if (rc < 0 && rc != -EINTR) {
		/* Not expected (the eventfd went bad): look again shortly
		 * rather than spin on the error or give up the deadline. */
		ivb_sleep_ns(left < 100000000ull ? left : 100000000ull);
	}
	return 0;
}

void ivb_wait_idle(struct ivb_waiter *w, uint64_t timeout_ns, uint64_t idle_ns)
{
	if (w->ops) {
		ivb_wait_sleep(w, ivb_now_ns() + timeout_ns);
		return;
	}
	ivb_sleep_ns(timeout_ns < idle_ns ? timeout_ns : idle_ns);
}
