/*
 * ivshmem_client.c - a host-side peer of the ivshmem doorbell server (see
 * ivshmem_client.h).
 *
 * Receiving: the socket is non-blocking and every read waits in poll() for
 * at most the time left to the caller's deadline. A message is 8 bytes and
 * may come in pieces (it never does from our server, but stream sockets
 * allow it), so the partial message and its fd live in the struct and a
 * later call finishes it. Fds arrive with MSG_CMSG_CLOEXEC; a message with
 * more than one fd, or with its control data truncated, is a protocol
 * error and every fd in it is closed.
 *
 * The peer table is indexed by peer id and grows to the highest id seen;
 * our own eventfds sit in it under our own id.
 */
#include "ivshmem_client.h"
#include "timing.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_CONNECT_RETRY_NS 10000000L /* 10 ms between connect attempts */
#define CLIENT_MAX_FDS_PER_MSG 4          /* room to receive (and reject) extras */

const char *ivs_client_state_name(enum ivs_client_state state)
{
	switch (state) {
	case IVS_CLIENT_CLOSED: return "closed";
	case IVS_CLIENT_CONNECTING: return "connecting";
	case IVS_CLIENT_WAIT_VERSION: return "waiting for the protocol version";
	case IVS_CLIENT_WAIT_ID: return "waiting for our peer id";
	case IVS_CLIENT_WAIT_SHM: return "waiting for the shared memory";
	case IVS_CLIENT_WAIT_OWN_VECTORS: return "waiting for our own eventfds";
	case IVS_CLIENT_READY: return "ready";
	case IVS_CLIENT_SERVER_GONE: return "server gone";
	}
	return "unknown state";
}

const char *ivs_client_event_name(enum ivs_client_event_type type)
{
	switch (type) {
	case IVS_CLIENT_EV_NONE: return "none";
	case IVS_CLIENT_EV_PEER_VECTOR: return "peer-vector";
	case IVS_CLIENT_EV_PEER_GONE: return "peer-gone";
	}
	return "unknown event";
}

static void client_error(struct ivs_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record the last error, prefixed with the state it happened in. */
static void client_error(struct ivs_client *c, const char *fmt, ...)
{
	int n;
	va_list ap;

	n = snprintf(c->error, sizeof(c->error), "%s: ", ivs_client_state_name(c->state));
	if (n < 0 || (size_t)n >= sizeof(c->error))
		return;
	va_start(ap, fmt);
	vsnprintf(c->error + n, sizeof(c->error) - (size_t)n, fmt, ap);
	va_end(ap);
}

static int64_t client_now_ms(void)
{
	return (int64_t)(ivb_now_ns() / 1000000u);
}

/* A deadline from a timeout; -1 stays "never". */
static int64_t client_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms;
}

/* Milliseconds left to a deadline for poll(): -1 forever, 0 when past. */
static int client_left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - client_now_ms();
	return left <= 0 ? 0 : left > 1000000000 ? 1000000000 : (int)left;
}

/* ------------------------------------------------------------------ */
/* Receiving one message                                               */
/* ------------------------------------------------------------------ */

/* Take the fds out of a received message's control data. */
static int client_take_fds(struct ivs_client *c, struct msghdr *msg)
{
	struct cmsghdr *cmsg;
	bool extra = false;
	size_t i, n;
	int fd;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (c->rx_fd < 0) {
				c->rx_fd = fd;
			} else {
				close(fd);
				extra = true;
			}
		}
	}
	if (msg->msg_flags & MSG_CTRUNC) {
		client_error(c, "file descriptor from the server truncated (out of fds?)");
		return -EPROTO;
	}
	if (extra) {
		client_error(c, "server sent more than one fd in one message");
		return -EPROTO;
	}
	return 0;
}

/*
 * Receive one whole message until deadline. Returns 1 with *value and *fd
 * (-1 if none; the caller owns it), 0 if the deadline passed first (a
 * partial message is kept for the next call), or -errno.
 */
static int client_recv(struct ivs_client *c, int64_t *value, int *fd, int64_t deadline)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(CLIENT_MAX_FDS_PER_MSG * sizeof(int))];
	} control;
	struct pollfd pfd = { .fd = c->sock_fd, .events = POLLIN };
	uint64_t wire;
	ssize_t n;
	int ret;

	while (c->rx_len < sizeof(c->rx_buf)) {
		struct iovec iov = {
			.iov_base = c->rx_buf + c->rx_len,
			.iov_len = sizeof(c->rx_buf) - c->rx_len,
		};
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};

		ret = poll(&pfd, 1, client_left_ms(deadline));
		if (ret < 0 && errno != EINTR) {
			ret = -errno;
			client_error(c, "poll on the server socket: %s", strerror(-ret));
			return ret;
		}
		if (ret <= 0) {
			if (client_left_ms(deadline) == 0)
				return 0;
			continue;
		}
		n = recvmsg(c->sock_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			ret = -errno;
			client_error(c, "receive from the server: %s", strerror(-ret));
			return ret;
		}
		ret = client_take_fds(c, &msg);
		if (ret < 0)
			goto err_drop;
		if (n == 0) {
			client_error(c, "the server closed the connection%s",
				     c->rx_len ? " in the middle of a message" :
				     c->state == IVS_CLIENT_WAIT_VERSION ? " (server full?)" : "");
			c->state = IVS_CLIENT_SERVER_GONE;
			ret = -ECONNRESET;
			goto err_drop;
		}
		c->rx_len += (size_t)n;
	}
	memcpy(&wire, c->rx_buf, sizeof(wire));
	*value = ivs_proto_decode(wire);
	*fd = c->rx_fd;
	c->rx_len = 0;
	c->rx_fd = -1;
	return 1;

err_drop:
	if (c->rx_fd >= 0)
		close(c->rx_fd);
	c->rx_fd = -1;
	c->rx_len = 0;
	return ret;
}

/* ------------------------------------------------------------------ */
/* The peer table                                                      */
/* ------------------------------------------------------------------ */

/* Make room for peer id; returns its entry or NULL (out of memory). */
static struct ivs_client_peer *client_peer_slot(struct ivs_client *c, unsigned id)
{
	struct ivs_client_peer *p;
	unsigned len;

	if (id >= c->peers_len) {
		len = id + 1 > c->peers_len * 2 ? id + 1 : c->peers_len * 2;
		p = realloc(c->peers, len * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + c->peers_len, 0, (len - c->peers_len) * sizeof(*p));
		c->peers = p;
		c->peers_len = len;
	}
	p = &c->peers[id];
	if (!p->eventfds) {
		p->eventfds = calloc(c->n_vectors, sizeof(int));
		if (!p->eventfds)
			return NULL;
	}
	return p;
}

static void client_forget_peer(struct ivs_client_peer *p)
{
	unsigned v;

	for (v = 0; v < p->n_eventfds; v++)
		close(p->eventfds[v]);
	p->n_eventfds = 0;
}

/*
 * Apply one message received after the first three: a peer id with an fd
 * (that peer's next eventfd) or without (that peer left); anything else,
 * the shared memory again included, is -EPROTO. Owns fd.
 */
static int client_apply(struct ivs_client *c, int64_t value, int fd, struct ivs_client_event *ev)
{
	struct ivs_client_peer *p;
	int ret;

	if (value == IVS_PROTO_SHM_VALUE && fd >= 0) {
		client_error(c, "server sent the shared memory again");
		ret = -EPROTO;
		goto err_close;
	}
	if (value < 0 || value > IVS_PROTO_MAX_PEER_ID) {
		client_error(c, "server sent %lld%s, not a peer id", (long long)value,
			     fd >= 0 ? " with an fd" : "");
		ret = -EPROTO;
		goto err_close;
	}
	if (fd < 0) {
		if ((unsigned)value == c->id) {
			client_error(c, "server announced our own disconnect (id %u)", c->id);
			return -EPROTO;
		}
		if ((unsigned)value >= c->peers_len || !c->peers[value].n_eventfds) {
			client_error(c, "server announced the disconnect of unknown peer %lld",
				     (long long)value);
			return -EPROTO;
		}
		client_forget_peer(&c->peers[value]);
		*ev = (struct ivs_client_event){ .type = IVS_CLIENT_EV_PEER_GONE,
						 .peer_id = (unsigned)value };
		return 0;
	}
	p = client_peer_slot(c, (unsigned)value);
	if (!p) {
		client_error(c, "out of memory for peer %lld", (long long)value);
		ret = -ENOMEM;
		goto err_close;
	}
	if (p->n_eventfds >= c->n_vectors) {
		client_error(c, "peer %lld has more than %u eventfds: the server uses more vectors "
			     "than this client was told", (long long)value, c->n_vectors);
		ret = -EPROTO;
		goto err_close;
	}
	p->eventfds[p->n_eventfds++] = fd;
	*ev = (struct ivs_client_event){ .type = IVS_CLIENT_EV_PEER_VECTOR,
					 .peer_id = (unsigned)value,
					 .vector = p->n_eventfds - 1 };
	return 0;

err_close:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */
/* ------------------------------------------------------------------ */

/* connect() until it works or the deadline passes, for a starting server. */
static int client_connect_socket(struct ivs_client *c, const char *path, int64_t deadline)
{
	struct timespec pause = { 0, CLIENT_CONNECT_RETRY_NS };
	struct sockaddr_un addr;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		client_error(c, "socket path %s is longer than %zu characters", path,
			     sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, strlen(path) + 1);

	c->sock_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->sock_fd < 0) {
		ret = -errno;
		client_error(c, "socket: %s", strerror(-ret));
		return ret;
	}
	for (;;) {
		if (connect(c->sock_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return 0;
		ret = -errno;
		if (ret != -ENOENT && ret != -ECONNREFUSED && ret != -EAGAIN && ret != -EINTR)
			break;
		if (client_left_ms(deadline) == 0)
			break;
		nanosleep(&pause, NULL);
	}
	client_error(c, "cannot connect to %s: %s%s", path, strerror(-ret),
		     ret == -ENOENT || ret == -ECONNREFUSED ? " (is the server running?)" : "");
	close(c->sock_fd);
	c->sock_fd = -1;
	return ret;
}

/*
 * Receive one handshake message; a timeout becomes -ETIMEDOUT with the
 * state named in the error text.
 */
static int client_recv_setup(struct ivs_client *c, int64_t *value, int *fd, int64_t deadline)
{
	int ret = client_recv(c, value, fd, deadline);

	if (ret == 0) {
		client_error(c, "no message from the server before the deadline");
		return -ETIMEDOUT;
	}
	return ret < 0 ? ret : 0;
}

/*
 * Enter state and receive one handshake message that carries no fd and a
 * value in lo..hi (what names it in the error). A stray fd is closed.
 */
static int client_expect_plain(struct ivs_client *c, enum ivs_client_state state,
			       const char *what, int64_t lo, int64_t hi, int64_t *value,
			       int64_t deadline)
{
	int fd, ret;

	c->state = state;
	ret = client_recv_setup(c, value, &fd, deadline);
	if (ret < 0)
		return ret;
	if (fd >= 0)
		close(fd);
	if (*value < lo || *value > hi || fd >= 0) {
		client_error(c, "server sent %lld%s as %s, expected %lld..%lld without fd",
			     (long long)*value, fd >= 0 ? " with an fd" : "", what,
			     (long long)lo, (long long)hi);
		return -EPROTO;
	}
	return 0;
}

/* A fresh client for n_vectors vectors, not connected; -EINVAL if out of range. */
static int client_init(struct ivs_client *c, unsigned n_vectors)
{
	memset(c, 0, sizeof(*c));
	c->sock_fd = -1;
	c->shm_fd = -1;
	c->rx_fd = -1;
	c->n_vectors = n_vectors;
	c->state = IVS_CLIENT_CONNECTING;
	if (n_vectors < 1 || n_vectors > IVS_PROTO_MAX_VECTORS) {
		client_error(c, "vectors %u must be 1..%d", n_vectors, IVS_PROTO_MAX_VECTORS);
		return -EINVAL;
	}
	return 0;
}

/*
 * Everything from the version to our own last eventfd, on c->sock_fd.
 * Returns 0 in state READY, or -errno with the error text set (the caller
 * cleans up).
 */
static int client_handshake(struct ivs_client *c, int64_t deadline)
{
	struct ivs_client_event ev;
	struct stat st;
	int64_t value;
	int fd, ret;

	ret = client_expect_plain(c, IVS_CLIENT_WAIT_VERSION, "version", IVS_PROTO_VERSION,
				  IVS_PROTO_VERSION, &value, deadline);
	if (ret < 0)
		return ret;
	ret = client_expect_plain(c, IVS_CLIENT_WAIT_ID, "our id", 0, IVS_PROTO_MAX_PEER_ID,
				  &value, deadline);
	if (ret < 0)
		return ret;
	c->id = (unsigned)value;

	/* Our server sends the shm next; take peers' eventfds before it too. */
	c->state = IVS_CLIENT_WAIT_SHM;
	while (c->shm_fd < 0) {
		ret = client_recv_setup(c, &value, &fd, deadline);
		if (ret < 0)
			return ret;
		if (value == IVS_PROTO_SHM_VALUE && fd >= 0) {
			c->shm_fd = fd;
			break;
		}
		ret = client_apply(c, value, fd, &ev);
		if (ret < 0)
			return ret;
	}
	if (fstat(c->shm_fd, &st) < 0) {
		ret = -errno;
		client_error(c, "fstat on the shared memory: %s", strerror(-ret));
		return ret;
	}
	c->shm_size = (uint64_t)st.st_size;

	c->state = IVS_CLIENT_WAIT_OWN_VECTORS;
	while (ivs_client_peer_vectors(c, c->id) < c->n_vectors) {
		ret = client_recv(c, &value, &fd, deadline);
		if (ret == 0) {
			client_error(c, "got %u of %u own eventfds before the deadline "
				     "(does the server use fewer vectors?)",
				     ivs_client_peer_vectors(c, c->id), c->n_vectors);
			ret = -ETIMEDOUT;
		}
		if (ret < 0)
			return ret;
		ret = client_apply(c, value, fd, &ev);
		if (ret < 0)
			return ret;
	}
	c->state = IVS_CLIENT_READY;
	c->error[0] = '\0';
	return 0;
}

/* Close everything after a failed connect, keeping the error text; returns ret. */
static int client_fail(struct ivs_client *c, int ret)
{
	char saved[sizeof(c->error)];

	memcpy(saved, c->error, sizeof(saved));
	ivs_client_close(c);
	memcpy(c->error, saved, sizeof(saved));
	return ret;
}

int ivs_client_connect(struct ivs_client *c, const char *socket_path, unsigned n_vectors,
		       int timeout_ms)
{
	int64_t deadline = client_deadline(timeout_ms);
	int ret;

	ret = client_init(c, n_vectors);
	if (ret == 0)
		ret = client_connect_socket(c, socket_path, deadline);
	if (ret == 0)
		ret = client_handshake(c, deadline);
	return ret < 0 ? client_fail(c, ret) : 0;
}

int ivs_client_attach(struct ivs_client *c, int sock_fd, unsigned n_vectors, int timeout_ms)
{
	int64_t deadline = client_deadline(timeout_ms);
	int flags, ret;

	ret = client_init(c, n_vectors);
	if (ret < 0) {
		close(sock_fd);
		return client_fail(c, ret);
	}
	c->sock_fd = sock_fd;
	/* Every receive waits in poll() with a deadline, never in recvmsg(). */
	flags = fcntl(sock_fd, F_GETFL);
	if (flags < 0 || fcntl(sock_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(sock_fd, F_SETFD, FD_CLOEXEC) < 0) {
		ret = -errno;
		client_error(c, "cannot make the socket non-blocking: %s", strerror(-ret));
		return client_fail(c, ret);
	}
	ret = client_handshake(c, deadline);
	return ret < 0 ? client_fail(c, ret) : 0;
}

/* ------------------------------------------------------------------ */
/* After the handshake                                                 */
/* ------------------------------------------------------------------ */

int ivs_client_next_event(struct ivs_client *c, struct ivs_client_event *ev, int timeout_ms)
{
	int64_t value;
	int fd, ret;

	ev->type = IVS_CLIENT_EV_NONE;
	if (c->state != IVS_CLIENT_READY) {
		client_error(c, "no connection to receive notices on");
		return c->state == IVS_CLIENT_SERVER_GONE ? -ECONNRESET : -ENOTCONN;
	}
	ret = client_recv(c, &value, &fd, client_deadline(timeout_ms));
	if (ret <= 0)
		return ret;
	ret = client_apply(c, value, fd, ev);
	return ret < 0 ? ret : 1;
}

int ivs_client_notify(struct ivs_client *c, unsigned peer_id, unsigned vector)
{
	uint64_t one = 1;
	int ret;

	if (vector >= c->n_vectors) {
		client_error(c, "vector %u out of range 0..%u", vector, c->n_vectors - 1);
		return -EINVAL;
	}
	if (ivs_client_peer_vectors(c, peer_id) <= vector) {
		client_error(c, "peer %u has no eventfd for vector %u", peer_id, vector);
		return -ENOENT;
	}
	for (;;) {
		if (write(c->peers[peer_id].eventfds[vector], &one, sizeof(one)) == sizeof(one))
			return 0;
		if (errno != EINTR)
			break;
	}
	ret = -errno;
	client_error(c, "ring peer %u vector %u: %s", peer_id, vector, strerror(-ret));
	return ret;
}

int ivs_client_wait(struct ivs_client *c, unsigned vector, int timeout_ms, uint64_t *count)
{
	int64_t deadline = client_deadline(timeout_ms);
	struct pollfd pfd = { .fd = ivs_client_eventfd(c, vector), .events = POLLIN };
	uint64_t value;
	ssize_t n;
	int ret;

	if (pfd.fd < 0) {
		client_error(c, "no own eventfd for vector %u", vector);
		return -EINVAL;
	}
	for (;;) {
		/* Other holders of this eventfd may read it first: loop on EAGAIN. */
		n = read(pfd.fd, &value, sizeof(value));
		if (n == sizeof(value)) {
			if (count)
				*count = value;
			return 1;
		}
		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			ret = n < 0 ? -errno : -EIO;
			client_error(c, "read own eventfd %u: %s", vector, strerror(-ret));
			return ret;
		}
		ret = poll(&pfd, 1, client_left_ms(deadline));
		if (ret < 0 && errno != EINTR) {
			ret = -errno;
			client_error(c, "poll own eventfd %u: %s", vector, strerror(-ret));
			return ret;
		}
		if (ret == 0 && client_left_ms(deadline) == 0)
			return 0;
	}
}

int ivs_client_eventfd(const struct ivs_client *c, unsigned vector)
{
	if (vector >= ivs_client_peer_vectors(c, c->id))
		return -1;
	return c->peers[c->id].eventfds[vector];
}

unsigned ivs_client_peer_vectors(const struct ivs_client *c, unsigned peer_id)
{
	if (peer_id >= c->peers_len)
		return 0;
	return c->peers[peer_id].n_eventfds;
}

size_t ivs_client_peers(const struct ivs_client *c, unsigned *ids, size_t max)
{
	size_t n = 0;
	unsigned id;

	for (id = 0; id < c->peers_len; id++) {
		if (id == c->id || !c->peers[id].n_eventfds)
			continue;
		if (n < max)
			ids[n] = id;
		n++;
	}
	return n;
}

void ivs_client_close(struct ivs_client *c)
{
	unsigned id;

	if (c->state == IVS_CLIENT_CLOSED)
		return;
	for (id = 0; id < c->peers_len; id++) {
		client_forget_peer(&c->peers[id]);
		free(c->peers[id].eventfds);
	}
	free(c->peers);
	c->peers = NULL;
	c->peers_len = 0;
	if (c->rx_fd >= 0)
		close(c->rx_fd);
	if (c->shm_fd >= 0)
		close(c->shm_fd);
	if (c->sock_fd >= 0)
		close(c->sock_fd);
	c->rx_fd = c->shm_fd = c->sock_fd = -1;
	c->rx_len = 0;
	c->state = IVS_CLIENT_CLOSED;
	c->error[0] = '\0';
}
