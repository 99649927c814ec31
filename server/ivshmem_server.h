/*
 * ivshmem_server.h - the doorbell server for QEMU's ivshmem-doorbell device,
 * as a library.
 *
 * Debian's QEMU ships no ivshmem-server, so the project brings its own. The
 * server owns one shared-memory object and one UNIX stream socket. Every
 * client (a QEMU ivshmem-doorbell device, or a host process using
 * ivshmem_client.h) is a "peer": it gets a peer id, the shared-memory fd,
 * and one eventfd per vector for itself and for every other peer, in the
 * order ivshmem_proto.h gives.
 * A peer id without an fd is a disconnect notice. A peer whose socket turns
 * readable (data, EOF, error) is disconnected: clients never talk.
 *
 * Choices that differ from QEMU's example server:
 * - Every send is checked. Peer sockets are non-blocking; a send that
 *   fails, or cannot proceed within opts.send_timeout_ms, drops that peer
 *   (with a disconnect notice to the others) and nobody else.
 * - Peer ids: a new peer gets the lowest id that is free AND that no
 *   connected peer has seen disconnect. QEMU's device (7.2, and still
 *   current master) frees a peer's eventfd array on the disconnect notice
 *   but keeps the dangling pointer, and writes the next connect notice for
 *   that id into it: reusing an id while a QEMU that saw it leave is alive
 *   corrupts that QEMU's heap (seen here as "malloc_consolidate(): unaligned
 *   fastbin chunk detected" and an abort). So ids are reused only once every
 *   peer that was told of the departure has gone too; each peer carries a
 *   connect serial and each id the serial at which it was freed, which is
 *   all that takes. QEMU's example server hands ids out round-robin, which
 *   only postpones the problem to the 65536th connect. Low ids also keep
 *   QEMU's peer table (sized by the highest id seen) small. If all 65536
 *   ids are taken or tainted, a new client is refused (logged).
 * - At most opts.max_peers peers: a client beyond that is accepted and
 *   closed at once, so it sees EOF instead of hanging in the backlog.
 * - Every fd is CLOEXEC; nothing outlives a peer's disconnect.
 *
 * Use: ivs_server_init(), ivs_server_start(), then either
 * ivs_server_poll_once() in a loop, or ivs_server_get_fds() + poll() +
 * ivs_server_handle_fds() to add fds of one's own; ivs_server_close() at
 * the end. Functions return 0 or -errno and never exit. The library is not
 * thread-safe: one thread drives a server. Messages (errors always, peer
 * events when opts.verbose) go to opts.log, stderr by default. A send to a
 * closed peer must not kill the process: sends use MSG_NOSIGNAL.
 */
#ifndef IVS_SERVER_H
#define IVS_SERVER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ivshmem_proto.h"

#define IVS_SERVER_MAX_PEERS_LIMIT IVS_PROTO_N_IDS /* one id each */
#define IVS_SERVER_ID_IN_USE UINT64_MAX
#define IVS_SERVER_MIN_SHM_SIZE (4ull << 10)
#define IVS_SERVER_MAX_SHM_SIZE (1ull << 40)

#define IVS_SERVER_DEFAULT_SOCKET "/tmp/ivshmem_socket"
#define IVS_SERVER_DEFAULT_SHM "ivshmem"
#define IVS_SERVER_DEFAULT_SHM_SIZE (64ull << 20)
#define IVS_SERVER_DEFAULT_VECTORS 1
#define IVS_SERVER_DEFAULT_MAX_PEERS 64
#define IVS_SERVER_DEFAULT_SEND_TIMEOUT_MS 500

struct ivs_server_options {
	const char *socket_path;   /* UNIX socket to listen on (copied) */
	const char *shm;           /* "/file/path", or a shm_open name (copied) */
	uint64_t shm_size;         /* bytes; a power of two in MIN..MAX_SHM_SIZE */
	unsigned n_vectors;        /* eventfds per peer, 1..IVS_PROTO_MAX_VECTORS */
	unsigned max_peers;        /* peers at once, 1..IVS_SERVER_MAX_PEERS_LIMIT */
	int send_timeout_ms;       /* how long a full peer socket may stall a send */
	bool verbose;              /* log connects and disconnects */
	FILE *log;                 /* where messages go; NULL means stderr */
};

struct ivs_server_peer;

struct ivs_server {
	struct ivs_server_options opts; /* copy; the strings point into paths below */
	char socket_path[108];     /* sizeof(sun_path) */
	char shm[4096];            /* shm name or file path */
	bool shm_is_file;          /* shm names a file (it starts with '/') */
	bool shm_created;          /* this server created it: close() removes it */
	bool socket_bound;         /* socket_path is ours: close() unlinks it */
	int listen_fd;             /* listening socket, -1 when not started */
	int shm_fd;                /* shared memory, -1 when not started */
	int spare_fd;              /* /dev/null, given up to refuse a client on EMFILE */
	struct ivs_server_peer **peers; /* live peers in connect order */
	unsigned n_peers;          /* entries used in peers[] */
	uint64_t *id_freed_at;     /* per id (65536): IVS_SERVER_ID_IN_USE, else the
				    * serial of the first peer that never saw it
				    * leave (0: never used) */
	uint64_t next_serial;      /* connect serial for the next peer, from 1 */
	struct pollfd *pfds;       /* max_peers + 1 entries for ivs_server_poll_once() */
	uint64_t n_accepted;       /* connections accepted since start (statistics) */
	uint64_t n_dropped;        /* peers dropped after a failed send */
};

/* Defaults for every option (the macros above); the strings are static. */
void ivs_server_options_default(struct ivs_server_options *opts);

/* Check opts (ranges, power-of-two size). Writes why into err on failure. */
int ivs_server_options_check(const struct ivs_server_options *opts, char *err, size_t errlen);

/*
 * Copy the options into server, check them; opens nothing. Returns 0, or
 * -EINVAL (with the reason logged) when an option is out of range.
 */
int ivs_server_init(struct ivs_server *server, const struct ivs_server_options *opts);

/*
 * Create or open the shared memory (mode 0600, sized to shm_size; an
 * existing non-empty one of another size is refused with -EEXIST, since
 * resizing memory a QEMU maps crashes it) and
 * listen on the socket (mode 0600). A stale socket file (nobody listening)
 * is replaced; a live one, or a non-socket at that path, is an error
 * (-EADDRINUSE / -EEXIST). Raises RLIMIT_NOFILE towards what max_peers
 * needs. On failure everything opened is closed again.
 */
int ivs_server_start(struct ivs_server *server);

/*
 * Fill fds[] with the fds to poll for input (the listening socket, then
 * every peer socket) and return how many; at most max (max_peers + 1 is
 * always enough). Returns -ENOSPC if fds is too small.
 */
int ivs_server_get_fds(const struct ivs_server *server, struct pollfd *fds, size_t max);

/*
 * Act on poll's results for fds filled by ivs_server_get_fds(): drop peers
 * whose socket became readable, then accept new clients. Entries with
 * other fds are ignored, so callers may poll fds of their own in the same
 * array. Returns 0, or -errno for a failure of the server itself (not of a
 * peer).
 */
int ivs_server_handle_fds(struct ivs_server *server, const struct pollfd *fds, size_t n);

/*
 * Wait up to timeout_ms (-1: forever) for activity and handle it. Returns
 * 0 (also on timeout and EINTR) or -errno.
 */
int ivs_server_poll_once(struct ivs_server *server, int timeout_ms);

/* Number of peers connected now. */
unsigned ivs_server_peer_count(const struct ivs_server *server);

/*
 * Disconnect every peer, close all fds, unlink the socket, and remove the
 * shared memory if this server created it. Safe after a failed start and
 * twice in a row.
 */
void ivs_server_close(struct ivs_server *server);

#endif /* IVS_SERVER_H */
