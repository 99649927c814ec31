/*
 * server_fixture.h - one doorbell server per test case, for the server
 * tests (server_protocol.c, server_robust.c).
 *
 * fixture_start() gives the case a private directory holding the server's
 * socket and shared-memory file, and runs the server library in a thread
 * of its own (or not: the case then drives it itself). fixture_stop()
 * stops it and checks that nothing is left behind: no socket, no shm
 * file, and no fd beyond those open before the server started. So every
 * case must close the peers it opened; a leak fails the case.
 *
 * Raw peers read the wire protocol message by message (fixture_raw_*), to
 * check exact messages and to misbehave in ways the client library never
 * would. Everything here is static inline: a test uses what it needs.
 */
#ifndef IVB_TESTS_SERVER_FIXTURE_H
#define IVB_TESTS_SERVER_FIXTURE_H

#include "check.h"
#include "fds.h"
#include "ivshmem_proto.h"
#include "ivshmem_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FIXTURE_VECTORS 2
#define FIXTURE_SHM_SIZE (1u << 20)
#define FIXTURE_WAIT_MS 3000        /* for anything that should come at once */
#define FIXTURE_POLL_MS 20          /* the server thread's look at its stop flag */

struct fixture {
	char dir[64];                /* private directory, removed by fixture_stop */
	char sock[128];              /* the server's socket in it */
	char shm[128];               /* its shared-memory file in it */
	struct ivs_server server;    /* changed only by the server thread once it runs */
	pthread_t thread;            /* drives the server when threaded */
	pthread_mutex_t lock;        /* held while the thread changes the server */
	atomic_bool stop;            /* tells the thread to return */
	bool threaded;               /* the thread runs */
	int fds_before;              /* fds open before the server started */
};

/* Options every case starts from: the library's defaults, 1 MiB, 2 vectors. */
static inline void fixture_options(struct ivs_server_options *opts)
{
	ivs_server_options_default(opts);
	opts->shm_size = FIXTURE_SHM_SIZE;
	opts->n_vectors = FIXTURE_VECTORS;
}

/* The only thread that changes the server; the lock lets others read it. */
static inline void *fixture_thread(void *arg)
{
	struct fixture *fx = arg;
	struct pollfd *fds = calloc((size_t)fx->server.opts.max_peers + 1, sizeof(*fds));
	int n;

	while (fds && !atomic_load(&fx->stop)) {
		n = ivs_server_get_fds(&fx->server, fds, (size_t)fx->server.opts.max_peers + 1);
		if (n > 0 && poll(fds, (nfds_t)n, FIXTURE_POLL_MS) > 0) {
			pthread_mutex_lock(&fx->lock);
			ivs_server_handle_fds(&fx->server, fds, (size_t)n);
			pthread_mutex_unlock(&fx->lock);
		}
	}
	free(fds);
	return NULL;
}

/*
 * Start a server with opts (the paths are filled in here) and, if
 * threaded, its thread. Returns 0, or -1 after a failed check.
 */
static inline int fixture_start(struct fixture *fx, struct ivs_server_options *opts, bool threaded)
{
	memset(fx, 0, sizeof(*fx));
	pthread_mutex_init(&fx->lock, NULL);
	fx->fds_before = fds_count();
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/ivs_test.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		CHECKF(0, "mkdtemp %s: %s", fx->dir, strerror(errno));
		return -1;
	}
	snprintf(fx->sock, sizeof(fx->sock), "%s/sock", fx->dir);
	snprintf(fx->shm, sizeof(fx->shm), "%s/shm", fx->dir);
	opts->socket_path = fx->sock;
	opts->shm = fx->shm;
	if (ivs_server_init(&fx->server, opts) < 0 || ivs_server_start(&fx->server) < 0) {
		CHECKF(0, "the server starts in %s (its log says why not)", fx->dir);
		ivs_server_close(&fx->server);
		rmdir(fx->dir);
		return -1;
	}
	if (threaded) {
		if (pthread_create(&fx->thread, NULL, fixture_thread, fx) != 0) {
			CHECKF(0, "pthread_create for the server thread");
			ivs_server_close(&fx->server);
			rmdir(fx->dir);
			return -1;
		}
		fx->threaded = true;
	}
	return 0;
}

/* Peers connected now, read under the server thread's lock. */
static inline unsigned fixture_peer_count(struct fixture *fx)
{
	unsigned n;

	pthread_mutex_lock(&fx->lock);
	n = ivs_server_peer_count(&fx->server);
	pthread_mutex_unlock(&fx->lock);
	return n;
}

/* Stop the thread and the server; check that nothing was left behind. */
static inline void fixture_stop(struct fixture *fx)
{
	if (fx->threaded) {
		atomic_store(&fx->stop, true);
		pthread_join(fx->thread, NULL);
		fx->threaded = false;
	}
	ivs_server_close(&fx->server);
	CHECKF(access(fx->sock, F_OK) < 0 && access(fx->shm, F_OK) < 0,
	       "close removed the socket and the shm it created");
	rmdir(fx->dir);
	pthread_mutex_destroy(&fx->lock);
	CHECKF(fds_count() == fx->fds_before, "no fd left open: %d, %d before the server",
	       fds_count(), fx->fds_before);
}

/* A connected socket to the server, not yet read from; -1 after a failed check. */
static inline int fixture_raw_connect(const struct fixture *fx)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(addr.sun_path, fx->sock, strlen(fx->sock) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		CHECKF(0, "raw connect to %s: %s", fx->sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * Receive one message and its fd (-1 if none; the caller owns it) within
 * timeout_ms. Returns 1, 0 at the end of the stream (a server that hung up
 * with our bytes unread makes it ECONNRESET, also 0), -1 on a timeout or
 * anything else.
 */
static inline int fixture_raw_recv(int sock, int64_t *value, int *fd, int timeout_ms)
{
	char control[CMSG_SPACE(sizeof(int))];
	uint64_t wire;
	struct iovec iov = { .iov_base = &wire, .iov_len = sizeof(wire) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control, .msg_controllen = sizeof(control) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cmsg;
	ssize_t n;

	*fd = -1;
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	cmsg = CMSG_FIRSTHDR(&msg);
	if (n > 0 && cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n != (ssize_t)sizeof(wire)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -1;
	}
	*value = ivs_proto_decode(wire);
	return 1;
}

/*
 * Read up to max_msgs messages, closing the fds that come with them.
 * Returns 0 at the end of the stream, 1 if max_msgs came first, -1 on a
 * timeout.
 */
static inline int fixture_raw_drain(int sock, int max_msgs, int timeout_ms)
{
	int64_t value;
	int i, fd, ret;

	for (i = 0; i < max_msgs; i++) {
		ret = fixture_raw_recv(sock, &value, &fd, timeout_ms);
		if (fd >= 0)
			close(fd);
		if (ret <= 0)
			return ret;
	}
	return 1;
}

#endif /* IVB_TESTS_SERVER_FIXTURE_H */
