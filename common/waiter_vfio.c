/*
 * waiter_vfio.c - sleeping on MSI-X vector 0 and ringing peers from a
 * guest (see waiter_vfio.h).
 */
#include "waiter_vfio.h"

static int vfio_sleep(void *ctx, uint64_t timeout_ns)
{
	return ivb_vfio_wait(ctx, 0, (int)(timeout_ns / 1000000ull) + 1);
}

static void vfio_notify(void *ctx, uint32_t peer)
{
	/* The device cannot name every peer (IVB_ALL_PEERS): a responder
	 * waiting for a session looks at the header at least once a second. */
	if (peer <= 0xffff)
		ivb_vfio_ring(ctx, peer, 0);
}

/* The device cannot tell which peers exist: a ring to an unknown one is dropped. */
static int vfio_peer_known(void *ctx, uint32_t peer)
{
	(void)ctx;
	return peer <= 0xffff;
}

static const struct ivb_waiter_ops vfio_ops = {
	.name = "vfio-msix", .sleep = vfio_sleep, .notify = vfio_notify,
	.peer_known = vfio_peer_known,
};

void ivb_waiter_vfio(struct ivb_waiter *w, struct ivb_vfio *v)
{
	*w = (struct ivb_waiter){ .ops = &vfio_ops, .ctx = v, .self_id = ivb_vfio_peer_id(v) };
}
