/*
 * ivshmem_client.h - a host process as a peer of the ivshmem doorbell
 * server, next to QEMU's ivshmem-doorbell devices.
 *
 * A peer connects to the server's UNIX socket and receives (protocol in
 * ivshmem_proto.h and QEMU's docs/specs/ivshmem-spec.rst): the protocol
 * version, its own peer id, the shared-memory fd, then one
 * eventfd per vector for every other peer and finally its own. Afterwards
 * the server sends notices: a peer id with an fd (one of that peer's
 * eventfds, vectors in order: a connect) or without (a disconnect).
 *
 * To ring vector v of peer p: write 1 to p's eventfd v (ivs_client_notify;
 * for a QEMU peer that raises MSI-X vector v in its guest). Others ring us
 * through our own eventfds: poll ivs_client_eventfd(c, v), or call
 * ivs_client_wait(). The guest rings us by writing (our_id << 16) | v to
 * its doorbell register, so it has to learn our id (ivs_client_id) from
 * somewhere, for example the shared-memory header.
 *
 * The client must be told how many vectors the server uses: the handshake
 * ends when that many own eventfds have arrived, and a peer with more is a
 * configuration error reported as such. Every receive has a deadline;
 * every error leaves a sentence in ivs_client_error() naming the state it
 * happened in. Functions return -errno on failure. Not thread-safe.
 */
#ifndef IVS_CLIENT_H
#define IVS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ivshmem_proto.h"

/* The protocol's limits, under the names the client's users know. */
#define IVS_CLIENT_MAX_VECTORS IVS_PROTO_MAX_VECTORS
#define IVS_CLIENT_MAX_PEER_ID IVS_PROTO_MAX_PEER_ID

/* Where the client is in its life; named in error messages. */
enum ivs_client_state {
	IVS_CLIENT_CLOSED = 0,       /* not connected (or ivs_client_close()d) */
	IVS_CLIENT_CONNECTING,       /* connect() to the socket */
	IVS_CLIENT_WAIT_VERSION,     /* expecting the protocol version */
	IVS_CLIENT_WAIT_ID,          /* expecting our peer id */
	IVS_CLIENT_WAIT_SHM,         /* expecting -1 with the shared-memory fd */
	IVS_CLIENT_WAIT_OWN_VECTORS, /* expecting our own eventfds */
	IVS_CLIENT_READY,            /* handshake done; notices may follow */
	IVS_CLIENT_SERVER_GONE,      /* the server closed the connection */
};

/* What a notice from the server meant. */
enum ivs_client_event_type {
	IVS_CLIENT_EV_NONE = 0,
	IVS_CLIENT_EV_PEER_VECTOR,   /* a peer's eventfd for one vector arrived */
	IVS_CLIENT_EV_PEER_GONE,     /* a peer disconnected; its eventfds are closed */
};

struct ivs_client_event {
	enum ivs_client_event_type type; /* what happened */
	unsigned peer_id;            /* to which peer */
	unsigned vector;             /* PEER_VECTOR: the vector whose eventfd came;
				      * the peer is complete at n_vectors - 1 */
};

/* What we know about one peer id (including our own). */
struct ivs_client_peer {
	unsigned n_eventfds;         /* eventfds received; 0: not connected */
	int *eventfds;               /* n_vectors slots, NULL until the first one */
};

struct ivs_client {
	enum ivs_client_state state; /* see the enum */
	int sock_fd;                 /* connection to the server, -1 if none */
	unsigned id;                 /* our peer id (valid from WAIT_SHM on) */
	unsigned n_vectors;          /* vectors per peer the server is expected to use */
	int shm_fd;                  /* shared memory from the server, -1 if none */
	uint64_t shm_size;           /* its size (fstat) */
	struct ivs_client_peer *peers; /* indexed by peer id, own id included */
	unsigned peers_len;          /* entries in peers[] */
	unsigned char rx_buf[IVS_PROTO_MSG_SIZE];     /* message being received */
	size_t rx_len;               /* bytes of it so far */
	int rx_fd;                   /* fd that came with it, -1 if none */
	char error[256];             /* last error, for humans */
};

const char *ivs_client_state_name(enum ivs_client_state state);
const char *ivs_client_event_name(enum ivs_client_event_type type);

/*
 * Connect to the server at socket_path and run the handshake, all within
 * timeout_ms (-1: no limit). While the socket does not exist or refuses,
 * retry until the deadline (a server that is just starting). Other peers'
 * eventfds received meanwhile are in the table (ivs_client_peers()), not
 * reported as events. On failure c holds no fds and the error text says
 * in which state it failed.
 */
int ivs_client_connect(struct ivs_client *c, const char *socket_path, unsigned n_vectors,
		       int timeout_ms);

/*
 * The same handshake on a stream socket already connected to a server by
 * other means (a socketpair, an inherited fd). c owns sock_fd from here
 * on, also when this fails: it is made non-blocking and close-on-exec.
 */
int ivs_client_attach(struct ivs_client *c, int sock_fd, unsigned n_vectors, int timeout_ms);

/*
 * Receive and apply one notice, waiting up to timeout_ms (0: just look,
 * -1: forever). Returns 1 with *ev filled, 0 on timeout, -ECONNRESET when
 * the server went away, -EPROTO for a notice that makes no sense (the
 * message is consumed and the connection stays usable), other -errno.
 */
int ivs_client_next_event(struct ivs_client *c, struct ivs_client_event *ev, int timeout_ms);

/* Ring vector of peer_id (our own id rings ourselves). -ENOENT if unknown. */
int ivs_client_notify(struct ivs_client *c, unsigned peer_id, unsigned vector);

/*
 * Wait up to timeout_ms for our own vector to be rung and consume it.
 * Returns 1 (with the number of rings since the last wait in *count, if
 * count is not NULL), 0 on timeout, -errno.
 */
int ivs_client_wait(struct ivs_client *c, unsigned vector, int timeout_ms, uint64_t *count);

/* Our eventfd for vector (to poll for POLLIN), or -1. */
int ivs_client_eventfd(const struct ivs_client *c, unsigned vector);

/* Eventfds known for peer_id: n_vectors when connected, 0 when not. */
unsigned ivs_client_peer_vectors(const struct ivs_client *c, unsigned peer_id);

/* Ids of the other connected peers, ascending, at most max; returns their number. */
size_t ivs_client_peers(const struct ivs_client *c, unsigned *ids, size_t max);

static inline unsigned ivs_client_id(const struct ivs_client *c) { return c->id; }
static inline int ivs_client_shm_fd(const struct ivs_client *c) { return c->shm_fd; }
static inline uint64_t ivs_client_shm_size(const struct ivs_client *c) { return c->shm_size; }
static inline int ivs_client_sock_fd(const struct ivs_client *c) { return c->sock_fd; }
static inline const char *ivs_client_error(const struct ivs_client *c) { return c->error; }

/* Close the connection and every fd received; c can be connected again. */
void ivs_client_close(struct ivs_client *c);

#endif /* IVS_CLIENT_H */
