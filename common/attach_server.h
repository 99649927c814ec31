/*
 * attach_server.h - attaching as a peer of the ivshmem server: the shared
 * memory and the eventfds come from the server (see attach.h). Kept apart
 * from attach.c so that programs that never talk to the server do not link
 * its client.
 */
#ifndef IVB_ATTACH_SERVER_H
#define IVB_ATTACH_SERVER_H

#include "attach.h"

/*
 * Connect to the server at socket_path (retrying until timeout_ms while it
 * starts), map the shared memory it sends (at least min_size bytes) and set
 * up the doorbell waiter. Returns 0, or -1 with a message in err.
 */
int ivb_attach_server(const char *socket_path, unsigned vectors, int timeout_ms, size_t min_size,
		      struct ivb_endpoint *ep, char *err, size_t errlen);

#endif
