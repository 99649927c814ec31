/*
 * attach_server.c - a host process as a peer of the ivshmem server (see
 * attach_server.h).
 */
#include "attach_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivshmem_client.h"
#include "waiter_server.h"

static void release_client(struct ivb_endpoint *ep)
{
	ivs_client_close(ep->client);
	free(ep->client);
	ep->client = NULL;
}

int ivb_attach_server(const char *socket_path, unsigned vectors, int timeout_ms, size_t min_size,
		      struct ivb_endpoint *ep, char *err, size_t errlen)
{
	struct ivs_client *c = calloc(1, sizeof(*c));

	memset(ep, 0, sizeof(*ep));
	ep->map.fd = -1;
	ivb_waiter_poll(&ep->waiter);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ivs_client_connect(c, socket_path, vectors, timeout_ms) < 0) {
		snprintf(err, errlen, "ivshmem server %s: %s", socket_path, ivs_client_error(c));
		free(c);
		return -1;
	}
	if (ivs_client_shm_size(c) < min_size) {
		snprintf(err, errlen, "shared memory from %s: too small: %llu bytes, need at least %zu",
			 socket_path, (unsigned long long)ivs_client_shm_size(c), min_size);
		goto fail;
	}
	if (ivb_map_fd(ivs_client_shm_fd(c), ivs_client_shm_size(c), socket_path, &ep->map, err,
		       errlen))
		goto fail;
	ep->client = c;
	ep->release = release_client;
	ivb_waiter_server(&ep->waiter, c);
	snprintf(ep->describe, sizeof(ep->describe), "(from the ivshmem server)");
	return 0;

fail:
	ivs_client_close(c);
	free(c);
	return -1;
}
