/*
 * waiter_server.c - sleeping on our eventfd and ringing peers as a peer of
 * the ivshmem server (see waiter_server.h).
 */
#include "waiter_server.h"

static int server_sleep(void *ctx, uint64_t timeout_ns)
{
	return ivs_client_wait(ctx, 0, (int)(timeout_ns / 1000000ull) + 1, NULL);
}

/* Take in the connect and disconnect notices that arrived so far. */
static void server_refresh(struct ivs_client *c)
{
	struct ivs_client_event ev;

	while (ivs_client_next_event(c, &ev, 0) > 0)
		;
}

static void server_notify(void *ctx, uint32_t peer)
{
	struct ivs_client *c = ctx;
	unsigned ids[256];
	size_t i, n;

	if (peer != IVB_ALL_PEERS) {
		ivs_client_notify(c, peer, 0);
		return;
	}
	server_refresh(c);
	n = ivs_client_peers(c, ids, sizeof(ids) / sizeof(ids[0]));
	for (i = 0; i < n; i++)
		ivs_client_notify(c, ids[i], 0);
}

static int server_peer_known(void *ctx, uint32_t peer)
{
	struct ivs_client *c = ctx;

	server_refresh(c);
	return peer <= IVS_CLIENT_MAX_PEER_ID && ivs_client_peer_vectors(c, peer) > 0;
}

static const struct ivb_waiter_ops server_ops = {
	.name = "eventfd", .sleep = server_sleep, .notify = server_notify,
	.peer_known = server_peer_known,
};

void ivb_waiter_server(struct ivb_waiter *w, struct ivs_client *c)
{
	*w = (struct ivb_waiter){ .ops = &server_ops, .ctx = c, .self_id = ivs_client_id(c) };
}
