/*
 * ivshmem_server.c - the doorbell server library (see ivshmem_server.h for
 * the protocol and the choices made).
 *
 * State: an array of live peers in connect order, and a byte per possible
 * id saying whether it is taken. Nothing is ever sent or freed in the
 * middle of walking that array: a peer that must go (its socket turned
 * readable, or a send to it failed) is only marked dead, and
 * server_reap() removes dead peers afterwards, telling the living ones.
 * Telling them can fail in turn, which marks more peers dead; reaping runs
 * until none is left.
 *
 * Invariant: every peer in the array has been sent the eventfds of every
 * other peer in the array, or is marked dead. So each disconnect notice
 * goes exactly to the peers that saw the matching connect notices, which
 * is what QEMU's device checks ("invalid peer" otherwise).
 */
#include "ivshmem_server.h"
#include "shm_map.h"
#include "timing.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SERVER_LISTEN_BACKLOG 16
#define SERVER_ACCEPTS_PER_CALL 32  /* so a connect storm cannot starve peers */
#define SERVER_FDS_SPARE 64         /* fds beyond the peers' that we may need */

struct ivs_server_peer {
	unsigned id;               /* peer id, 0..65535 */
	int sock_fd;               /* connection to the peer */
	unsigned n_eventfds;       /* entries of eventfds[] that are open */
	int eventfds[IVS_PROTO_MAX_VECTORS]; /* one per vector, ours to close */
	uint64_t serial;           /* connect order, from 1: who saw which departures */
	bool dead;                 /* to be removed by server_reap() */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static FILE *server_log_file(const struct ivs_server *s)
{
	return s->opts.log ? s->opts.log : stderr;
}

static void server_log(const struct ivs_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line to the log, prefixed with the program name, flushed. */
static void server_log(const struct ivs_server *s, const char *fmt, ...)
{
	FILE *f = server_log_file(s);
	va_list ap;

	fputs("ivshmem_server: ", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
}

static int64_t server_now_ms(void)
{
	return (int64_t)(ivb_now_ns() / 1000000u);
}

/* Remove the shared memory if this server created it. */
static void server_remove_shm(struct ivs_server *s)
{
	if (!s->shm_created)
		return;
	if (s->shm_is_file)
		unlink(s->shm);
	else
		shm_unlink(s->shm);
	s->shm_created = false;
}

/* The tables ivs_server_start() allocates; NULL again afterwards. */
static void server_free_tables(struct ivs_server *s)
{
	free(s->pfds);
	free(s->id_freed_at);
	free(s->peers);
	s->pfds = NULL;
	s->id_freed_at = NULL;
	s->peers = NULL;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

void ivs_server_options_default(struct ivs_server_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->socket_path = IVS_SERVER_DEFAULT_SOCKET;
	opts->shm = IVS_SERVER_DEFAULT_SHM;
	opts->shm_size = IVS_SERVER_DEFAULT_SHM_SIZE;
	opts->n_vectors = IVS_SERVER_DEFAULT_VECTORS;
	opts->max_peers = IVS_SERVER_DEFAULT_MAX_PEERS;
	opts->send_timeout_ms = IVS_SERVER_DEFAULT_SEND_TIMEOUT_MS;
	opts->verbose = false;
	opts->log = NULL;
}

int ivs_server_options_check(const struct ivs_server_options *opts, char *err, size_t errlen)
{
	if (!opts->socket_path || !opts->socket_path[0] ||
	    strlen(opts->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "socket path must be 1..%zu characters",
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -EINVAL;
	}
	if (!opts->shm || !opts->shm[0] || strlen(opts->shm) >= sizeof(((struct ivs_server *)0)->shm)) {
		snprintf(err, errlen, "shm name or path must be 1..%zu characters",
			 sizeof(((struct ivs_server *)0)->shm) - 1);
		return -EINVAL;
	}
	if (opts->shm[0] != '/' && strchr(opts->shm, '/')) {
		snprintf(err, errlen, "shm name '%s' must not contain '/' (a file path starts with '/')",
			 opts->shm);
		return -EINVAL;
	}
	if (!ivb_is_pow2(opts->shm_size) || opts->shm_size < IVS_SERVER_MIN_SHM_SIZE ||
	    opts->shm_size > IVS_SERVER_MAX_SHM_SIZE) {
		snprintf(err, errlen, "shm size %llu must be a power of two from %llu to %llu bytes",
			 (unsigned long long)opts->shm_size, IVS_SERVER_MIN_SHM_SIZE,
			 IVS_SERVER_MAX_SHM_SIZE);
		return -EINVAL;
	}
	if (opts->n_vectors < 1 || opts->n_vectors > IVS_PROTO_MAX_VECTORS) {
		snprintf(err, errlen, "vectors %u must be 1..%d", opts->n_vectors,
			 IVS_PROTO_MAX_VECTORS);
		return -EINVAL;
	}
	if (opts->max_peers < 1 || opts->max_peers > IVS_SERVER_MAX_PEERS_LIMIT) {
		snprintf(err, errlen, "max peers %u must be 1..%d", opts->max_peers,
			 IVS_SERVER_MAX_PEERS_LIMIT);
		return -EINVAL;
	}
	if (opts->send_timeout_ms < 0) {
		snprintf(err, errlen, "send timeout %d ms must not be negative", opts->send_timeout_ms);
		return -EINVAL;
	}
	return 0;
}

int ivs_server_init(struct ivs_server *server, const struct ivs_server_options *opts)
{
	char err[256];
	int ret;

	memset(server, 0, sizeof(*server));
	server->listen_fd = -1;
	server->shm_fd = -1;
	server->spare_fd = -1;
	server->opts = *opts;

	ret = ivs_server_options_check(opts, err, sizeof(err));
	if (ret < 0) {
		server_log(server, "%s", err);
		return ret;
	}
	snprintf(server->socket_path, sizeof(server->socket_path), "%s", opts->socket_path);
	snprintf(server->shm, sizeof(server->shm), "%s", opts->shm);
	server->opts.socket_path = server->socket_path;
	server->opts.shm = server->shm;
	server->shm_is_file = server->shm[0] == '/';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Start: shared memory, socket, fd limit                              */
/* ------------------------------------------------------------------ */

/*
 * Open the shared memory, creating it (mode 0600) when it does not exist,
 * and size it. Sets shm_fd and shm_created.
 */
static int server_open_shm(struct ivs_server *s)
{
	const char *what = s->shm_is_file ? "file" : "shm object";
	struct stat st;
	int fd, ret;

	s->shm_created = true;
	if (s->shm_is_file)
		fd = open(s->shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	else
		fd = shm_open(s->shm, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST) {
		s->shm_created = false;
		if (s->shm_is_file)
			fd = open(s->shm, O_RDWR | O_CLOEXEC);
		else
			fd = shm_open(s->shm, O_RDWR, 0600);
	}
	if (fd < 0) {
		ret = -errno;
		server_log(s, "cannot open %s %s: %s", what, s->shm, strerror(-ret));
		return ret;
	}
	/* A created object gets exactly 0600, whatever the umask says. */
	if (s->shm_created && fchmod(fd, 0600) < 0) {
		ret = -errno;
		server_log(s, "cannot chmod %s %s: %s", what, s->shm, strerror(-ret));
		goto err_close;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		server_log(s, "cannot stat %s %s: %s", what, s->shm, strerror(-ret));
		goto err_close;
	}
	/*
	 * Resizing memory somebody maps (a running QEMU) would crash them:
	 * only size what we created or what is still empty.
	 */
	if (st.st_size != 0 && (uint64_t)st.st_size != s->opts.shm_size) {
		ret = -EEXIST;
		server_log(s, "%s %s exists with %lld bytes, not %llu: use that size or remove it",
			   what, s->shm, (long long)st.st_size, (unsigned long long)s->opts.shm_size);
		goto err_close;
	}
	if (st.st_size == 0 && ftruncate(fd, (off_t)s->opts.shm_size) < 0) {
		ret = -errno;
		server_log(s, "cannot size %s %s to %llu bytes: %s", what, s->shm,
			   (unsigned long long)s->opts.shm_size, strerror(-ret));
		goto err_close;
	}
	s->shm_fd = fd;
	return 0;

err_close:
	close(fd);
	server_remove_shm(s);
	return ret;
}

/*
 * Make sure socket_path is free: nothing there, or a socket nobody listens
 * on (left by a server that died), which is removed. A live server or a
 * file that is not a socket is left alone and reported.
 */
static int server_clear_stale_socket(struct ivs_server *s, const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(s->socket_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		server_log(s, "%s exists and is not a socket; not replacing it", s->socket_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	if (ret == 0) {
		close(fd);
		server_log(s, "another server is listening on %s", s->socket_path);
		return -EADDRINUSE;
	}
	ret = errno;
	close(fd);
	if (ret != ECONNREFUSED) {
		server_log(s, "cannot probe %s: %s", s->socket_path, strerror(ret));
		return -ret;
	}
	if (unlink(s->socket_path) < 0 && errno != ENOENT) {
		ret = -errno;
		server_log(s, "cannot remove stale socket %s: %s", s->socket_path, strerror(-ret));
		return ret;
	}
	if (s->opts.verbose)
		server_log(s, "removed stale socket %s", s->socket_path);
	return 0;
}

/* Create, bind (mode 0600) and listen. Sets listen_fd and socket_bound. */
static int server_listen(struct ivs_server *s)
{
	struct sockaddr_un addr;
	int fd, ret;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, s->socket_path, strlen(s->socket_path) + 1);

	ret = server_clear_stale_socket(s, &addr);
	if (ret < 0)
		return ret;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		server_log(s, "cannot create socket: %s", strerror(-ret));
		return ret;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		server_log(s, "cannot bind %s: %s", s->socket_path, strerror(-ret));
		goto err_close;
	}
	s->socket_bound = true;
	/* Nobody can connect before listen(), so there is no window at 0755. */
	if (chmod(s->socket_path, 0600) < 0) {
		ret = -errno;
		server_log(s, "cannot chmod %s: %s", s->socket_path, strerror(-ret));
		goto err_unlink;
	}
	if (listen(fd, SERVER_LISTEN_BACKLOG) < 0) {
		ret = -errno;
		server_log(s, "cannot listen on %s: %s", s->socket_path, strerror(-ret));
		goto err_unlink;
	}
	s->listen_fd = fd;
	return 0;

err_unlink:
	unlink(s->socket_path);
	s->socket_bound = false;
err_close:
	close(fd);
	return ret;
}

/*
 * Each peer costs 1 + n_vectors fds here, and the fds in flight to peers
 * count against the same limit: raise the soft limit towards the hard one
 * if max_peers needs it. Not being able to is only worth a warning.
 */
static void server_raise_fd_limit(struct ivs_server *s)
{
	rlim_t need = (rlim_t)s->opts.max_peers * (s->opts.n_vectors + 1) + SERVER_FDS_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
		server_log(s, "warning: %u peers need %llu fds, the limit is %llu",
			   s->opts.max_peers, (unsigned long long)need,
			   (unsigned long long)rl.rlim_cur);
}

int ivs_server_start(struct ivs_server *s)
{
	unsigned max = s->opts.max_peers;
	int ret;

	if (s->listen_fd >= 0)
		return -EALREADY;
	server_raise_fd_limit(s);

	s->peers = calloc(max, sizeof(*s->peers));
	s->id_freed_at = calloc(IVS_PROTO_N_IDS, sizeof(*s->id_freed_at));
	s->pfds = calloc((size_t)max + 1, sizeof(*s->pfds));
	s->next_serial = 1;
	if (!s->peers || !s->id_freed_at || !s->pfds) {
		ret = -ENOMEM;
		server_log(s, "out of memory for %u peers", max);
		goto err_free;
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s->spare_fd < 0) {
		ret = -errno;
		server_log(s, "cannot open /dev/null: %s", strerror(-ret));
		goto err_free;
	}
	ret = server_open_shm(s);
	if (ret < 0)
		goto err_spare;
	ret = server_listen(s);
	if (ret < 0)
		goto err_shm;
	if (s->opts.verbose)
		server_log(s, "%s %s (%llu bytes), %u vectors, at most %u peers",
			   s->shm_created ? "created" : "opened", s->shm,
			   (unsigned long long)s->opts.shm_size, s->opts.n_vectors, max);
	return 0;

err_shm:
	close(s->shm_fd);
	s->shm_fd = -1;
	server_remove_shm(s);
err_spare:
	close(s->spare_fd);
	s->spare_fd = -1;
err_free:
	server_free_tables(s);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

/*
 * Send one message (value, and fd unless it is -1) to a peer. The socket
 * is non-blocking: when it is full, wait for room up to send_timeout_ms.
 * On failure the peer is marked dead and -errno returned; the caller goes
 * on with the others.
 */
static int server_send(struct ivs_server *s, struct ivs_server_peer *peer, int64_t value, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	uint64_t wire = ivs_proto_encode(value);
	struct iovec iov = { .iov_base = &wire, .iov_len = sizeof(wire) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int64_t deadline = server_now_ms() + s->opts.send_timeout_ms, left;
	struct pollfd pfd = { .fd = peer->sock_fd, .events = POLLOUT };
	ssize_t n;
	int ret;

	if (peer->dead)
		return -EPIPE;
	if (fd >= 0)
		ivs_proto_attach_fds(&msg, control.buf, &fd, 1);
	for (;;) {
		n = sendmsg(peer->sock_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)sizeof(wire))
			return 0;
		if (n >= 0) {
			/* The stream would be out of step with the peer now. */
			ret = -EIO;
			break;
		}
		ret = -errno;
		if (ret == -EINTR)
			continue;
		if (ret != -EAGAIN && ret != -EWOULDBLOCK)
			break;
		left = deadline - server_now_ms();
		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
	}
	peer->dead = true;
	s->n_dropped++;
	/* A client that left is no news; one that stalls or errs is. */
	if (s->opts.verbose || (ret != -EPIPE && ret != -ECONNRESET))
		server_log(s, "peer %u: cannot send %lld%s: %s; dropping it", peer->id,
			   (long long)value, fd >= 0 ? " with fd" : "",
			   ret == -ETIMEDOUT ? "it does not read its socket" : strerror(-ret));
	return ret;
}

/* ------------------------------------------------------------------ */
/* Peers                                                               */
/* ------------------------------------------------------------------ */

/*
 * Close everything a peer owns, give its id back, free it. If the others
 * were told it left, the id stays unusable while any of them is connected:
 * every peer with a serial below next_serial got that notice.
 */
static void server_free_peer(struct ivs_server *s, struct ivs_server_peer *peer, bool announced)
{
	unsigned v;

	for (v = 0; v < peer->n_eventfds; v++)
		close(peer->eventfds[v]);
	if (peer->sock_fd >= 0)
		close(peer->sock_fd);
	s->id_freed_at[peer->id] = announced ? s->next_serial : 0;
	free(peer);
}

/*
 * Remove every dead peer, sending its disconnect notice (its id, no fd) to
 * the living. A failed notice marks that peer dead too, so loop until the
 * array holds living peers only. The id is freed after the notices.
 */
static void server_reap(struct ivs_server *s)
{
	unsigned i = 0, j;

	while (i < s->n_peers) {
		struct ivs_server_peer *gone = s->peers[i];

		if (!gone->dead) {
			i++;
			continue;
		}
		memmove(&s->peers[i], &s->peers[i + 1], (s->n_peers - i - 1) * sizeof(*s->peers));
		s->n_peers--;
		for (j = 0; j < s->n_peers; j++)
			server_send(s, s->peers[j], gone->id, -1);
		if (s->opts.verbose)
			server_log(s, "peer %u disconnected (%u peers left)", gone->id, s->n_peers);
		server_free_peer(s, gone, true);
		i = 0; /* the notices may have killed peers before i */
	}
}

/*
 * The lowest id that is free and that no connected peer saw leave (see
 * ivshmem_server.h on QEMU). peers[] is in connect order, so peers[0] has
 * the lowest serial: if it did not see the departure, nobody did.
 * Returns -1 when there is none.
 */
static int server_alloc_id(struct ivs_server *s)
{
	uint64_t oldest = s->n_peers ? s->peers[0]->serial : UINT64_MAX - 1;
	unsigned id;

	for (id = 0; id < IVS_PROTO_N_IDS; id++) {
		if (s->id_freed_at[id] <= oldest) {
			s->id_freed_at[id] = IVS_SERVER_ID_IN_USE;
			return (int)id;
		}
	}
	return -1;
}

/*
 * The socket limit is reached: give up the spare fd for a moment to accept
 * the client and close it at once, so it sees EOF and the listening socket
 * stops waking us.
 */
static void server_refuse_on_emfile(struct ivs_server *s)
{
	int fd;

	if (s->spare_fd >= 0) {
		close(s->spare_fd);
		s->spare_fd = -1;
	}
	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	server_log(s, "out of file descriptors: refused a client");
}

/*
 * Hand a new peer its version, id and shared memory, introduce it to the
 * others and the others to it, then give it its own eventfds (the order of
 * ivshmem_server.h). Failures of the new peer or of others only mark them
 * dead; running out of ids, memory or fds only turns this client away.
 */
static void server_add_peer(struct ivs_server *s, int sock_fd)
{
	struct ivs_server_peer *peer;
	unsigned v, i;
	int id;

	peer = calloc(1, sizeof(*peer));
	if (!peer) {
		server_log(s, "refused a client: out of memory");
		goto err_close;
	}
	id = server_alloc_id(s);
	if (id < 0) {
		server_log(s, "refused a client: every peer id is taken or was seen leaving by a "
			   "connected peer");
		goto err_free_struct;
	}
	peer->sock_fd = sock_fd;
	peer->id = (unsigned)id;
	peer->serial = s->next_serial++;
	for (v = 0; v < s->opts.n_vectors; v++) {
		int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

		if (efd < 0) {
			server_log(s, "refused a client: cannot create eventfd: %s", strerror(errno));
			goto err_free_peer;
		}
		peer->eventfds[peer->n_eventfds++] = efd;
	}

	/* 1-3: not yet known to anyone, so a failure just frees it. */
	if (server_send(s, peer, IVS_PROTO_VERSION, -1) < 0 ||
	    server_send(s, peer, peer->id, -1) < 0 ||
	    server_send(s, peer, IVS_PROTO_SHM_VALUE, s->shm_fd) < 0)
		goto err_free_peer;
	s->peers[s->n_peers++] = peer;

	/* 4: the others learn the new peer's eventfds. */
	for (i = 0; i + 1 < s->n_peers; i++)
		for (v = 0; v < peer->n_eventfds && !s->peers[i]->dead; v++)
			server_send(s, s->peers[i], peer->id, peer->eventfds[v]);
	/* 5: the new peer learns theirs, dead or not (reaping tells it). */
	for (i = 0; i + 1 < s->n_peers; i++)
		for (v = 0; v < s->peers[i]->n_eventfds && !peer->dead; v++)
			server_send(s, peer, s->peers[i]->id, s->peers[i]->eventfds[v]);
	/* 6: and its own, last. */
	for (v = 0; v < peer->n_eventfds && !peer->dead; v++)
		server_send(s, peer, peer->id, peer->eventfds[v]);

	if (s->opts.verbose && !peer->dead)
		server_log(s, "peer %u connected (%u peers)", peer->id, s->n_peers);
	server_reap(s);
	return;

err_free_peer:
	server_free_peer(s, peer, false); /* closes sock_fd too */
	return;
err_free_struct:
	free(peer);
err_close:
	close(sock_fd);
}

/*
 * Accept one client. Returns 1 if one was handled (accepted, refused or
 * lost), 0 when the backlog is empty, -errno on a server failure.
 */
static int server_accept_one(struct ivs_server *s)
{
	int fd, ret;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		switch (errno) {
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			return 0;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
		case ENOBUFS:
		case ENOMEM:
			return 1;
		case EMFILE:
		case ENFILE:
			server_refuse_on_emfile(s);
			return 1;
		default:
			ret = -errno;
			server_log(s, "accept failed: %s", strerror(-ret));
			return ret;
		}
	}
	s->n_accepted++;
	if (s->n_peers >= s->opts.max_peers) {
		server_log(s, "refused a client: %u peers connected already (max-peers)",
			   s->n_peers);
		close(fd);
		return 1;
	}
	server_add_peer(s, fd);
	return 1;
}

/* Say why a peer's socket woke us, for the log: data, EOF or an error. */
static const char *server_hangup_reason(int sock_fd)
{
	char c;
	ssize_t n = recv(sock_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0)
		return "sent data";
	if (n == 0)
		return "closed the connection";
	return "socket error";
}

/* ------------------------------------------------------------------ */
/* Event loop pieces                                                   */
/* ------------------------------------------------------------------ */

int ivs_server_get_fds(const struct ivs_server *s, struct pollfd *fds, size_t max)
{
	unsigned i;

	if (s->listen_fd < 0)
		return 0;
	if (max < (size_t)s->n_peers + 1)
		return -ENOSPC;
	fds[0] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
	for (i = 0; i < s->n_peers; i++)
		fds[i + 1] = (struct pollfd){ .fd = s->peers[i]->sock_fd, .events = POLLIN };
	return (int)s->n_peers + 1;
}

/* The live peer whose socket is fd; hint is where get_fds put it. */
static struct ivs_server_peer *server_peer_by_fd(struct ivs_server *s, int fd, size_t hint)
{
	unsigned i;

	if (hint < s->n_peers && s->peers[hint]->sock_fd == fd)
		return s->peers[hint];
	for (i = 0; i < s->n_peers; i++)
		if (s->peers[i]->sock_fd == fd)
			return s->peers[i];
	return NULL;
}

int ivs_server_handle_fds(struct ivs_server *s, const struct pollfd *fds, size_t n)
{
	bool listen_ready = false;
	size_t i;
	int ret;

	if (s->listen_fd < 0)
		return -EBADF;
	/* Peers first: accepting could reuse a closed peer's fd number. */
	for (i = 0; i < n; i++) {
		struct ivs_server_peer *peer;

		if (!fds[i].revents || fds[i].fd < 0)
			continue;
		if (fds[i].fd == s->listen_fd) {
			listen_ready = true;
			continue;
		}
		peer = server_peer_by_fd(s, fds[i].fd, i - 1);
		if (!peer || peer->dead)
			continue;
		if (s->opts.verbose)
			server_log(s, "peer %u %s", peer->id, server_hangup_reason(peer->sock_fd));
		peer->dead = true;
	}
	server_reap(s);

	if (!listen_ready)
		return 0;
	for (i = 0; i < SERVER_ACCEPTS_PER_CALL; i++) {
		ret = server_accept_one(s);
		if (ret <= 0)
			return ret;
	}
	return 0;
}

int ivs_server_poll_once(struct ivs_server *s, int timeout_ms)
{
	int n, ret;

	n = ivs_server_get_fds(s, s->pfds, (size_t)s->opts.max_peers + 1);
	if (n <= 0)
		return n < 0 ? n : -EBADF;
	ret = poll(s->pfds, (nfds_t)n, timeout_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	if (ret == 0)
		return 0;
	return ivs_server_handle_fds(s, s->pfds, (size_t)n);
}

unsigned ivs_server_peer_count(const struct ivs_server *s)
{
	return s->n_peers;
}

void ivs_server_close(struct ivs_server *s)
{
	unsigned i;

	for (i = 0; i < s->n_peers; i++)
		server_free_peer(s, s->peers[i], false);
	s->n_peers = 0;
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	if (s->socket_bound) {
		unlink(s->socket_path);
		s->socket_bound = false;
	}
	if (s->shm_fd >= 0) {
		close(s->shm_fd);
		s->shm_fd = -1;
	}
	server_remove_shm(s);
	if (s->spare_fd >= 0) {
		close(s->spare_fd);
		s->spare_fd = -1;
	}
	server_free_tables(s);
}
