/*
 * fuzz_server - libFuzzer target: the doorbell server (server/ivshmem_server.c)
 * against anything its clients can do: connect, send bytes (with or
 * without fds), half-close, vanish, read slowly or not at all.
 *
 * One server runs for the whole fuzzing session (3 peers at most, 2
 * vectors, a send that finds a full socket drops that peer at once), in
 * this thread: the script decides when it runs. Its socket and shm file
 * live in a directory under $TMPDIR (/tmp), removed at exit. The input is that script,
 * a byte per step (and the bytes some steps take):
 *   bits 0-2  what: 0 connect, 1 send data, 2 send data with an fd,
 *             3 shut down writing, 4 close, 5 read what came, 6 let the
 *             server run, 7 shrink the receive buffer (a slow reader)
 *   bits 3-4  which of 4 client slots (one more than the server takes)
 *   bit 5     (first byte only) the server logs connects and disconnects
 * Sending takes a length byte (0..16) and that many data bytes.
 *
 * Every client checks what it reads against the protocol (ivshmem_proto.h)
 * and against what QEMU needs: version, id, shm first; then for every peer
 * at most one eventfd per vector; a disconnect only for a peer whose
 * eventfds all came, never for itself; an id it saw leave never again.
 * After the script every client closes, the server runs until it is idle,
 * and it must then hold no peer and this process no fd more than before.
 * A violation aborts, which libFuzzer reports as a crash.
 */
#include "../fds.h"
#include "ivshmem_proto.h"
#include "ivshmem_server.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FUZZ_SLOTS 4
#define FUZZ_MAX_PEERS 3
#define FUZZ_VECTORS 2
#define FUZZ_IDLE_ROUNDS 1000   /* server runs at the end, at most */

/* What one client has read so far. */
struct fuzz_slot {
	int sock;                   /* -1: slot empty */
	int stage;                  /* 0 version, 1 id, 2 shm, 3 notices */
	bool eof;                   /* the server closed it */
	int64_t id;                 /* its own id, from stage 2 on */
	uint8_t vectors[IVS_PROTO_N_IDS]; /* eventfds received per peer id */
	bool left[IVS_PROTO_N_IDS]; /* it was told this id left */
};

static struct ivs_server server;
static struct fuzz_slot slots[FUZZ_SLOTS];
static char dir[PATH_MAX];       /* private directory for socket and shm */

static void fuzz_fail(const struct fuzz_slot *s, const char *what, int64_t value, int fd)
{
	fprintf(stderr, "fuzz_server: slot %d (id %lld, stage %d) got %lld %s fd: %s\n",
		(int)(s - slots), (long long)s->id, s->stage, (long long)value,
		fd >= 0 ? "with" : "without", what);
	abort();
}

/* Remove the server's files when libFuzzer exits. */
static void fuzz_cleanup(void)
{
	ivs_server_close(&server);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ivs_server_options opts;
	static char sock[PATH_MAX + 8], shm[PATH_MAX + 8];
	char tmpl[PATH_MAX];
	FILE *quiet = fopen("/dev/null", "we");

	(void)argc;
	(void)argv;
	/* Absolute: a shm name that does not start with '/' is a shm_open name. */
	snprintf(tmpl, sizeof(tmpl), "%s/ivs_fuzz.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
		fprintf(stderr, "fuzz_server: cannot make %s: %s\n", tmpl, strerror(errno));
		exit(1);
	}
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(shm, sizeof(shm), "%s/shm", dir);
	ivs_server_options_default(&opts);
	opts.socket_path = sock;
	opts.shm = shm;
	opts.shm_size = IVS_SERVER_MIN_SHM_SIZE;
	opts.n_vectors = FUZZ_VECTORS;
	opts.max_peers = FUZZ_MAX_PEERS;
	opts.send_timeout_ms = 0;
	if (!quiet || ivs_server_init(&server, &opts) < 0 || ivs_server_start(&server) < 0) {
		fprintf(stderr, "fuzz_server: the server does not start in %s (see above)\n", dir);
		rmdir(dir);
		exit(1);
	}
	atexit(fuzz_cleanup);
	/* Its complaints about the clients are the point here, not news. */
	server.opts.log = quiet;
	return 0;
}

/* Check one message against what the slot has seen so far. */
static void fuzz_check(struct fuzz_slot *s, int64_t value, int fd)
{
	switch (s->stage) {
	case 0:
		if (value != IVS_PROTO_VERSION || fd >= 0)
			fuzz_fail(s, "not the version", value, fd);
		break;
	case 1:
		if (value < 0 || value > IVS_PROTO_MAX_PEER_ID || fd >= 0)
			fuzz_fail(s, "not an id", value, fd);
		s->id = value;
		break;
	case 2:
		if (value != IVS_PROTO_SHM_VALUE || fd < 0)
			fuzz_fail(s, "not the shm", value, fd);
		break;
	default:
		if (value < 0 || value > IVS_PROTO_MAX_PEER_ID)
			fuzz_fail(s, "not a peer id", value, fd);
		if (fd >= 0 && s->left[value])
			fuzz_fail(s, "an id it saw leave comes back", value, fd);
		if (fd >= 0 && ++s->vectors[value] > FUZZ_VECTORS)
			fuzz_fail(s, "more eventfds than vectors", value, fd);
		if (fd < 0 && (value == s->id || s->vectors[value] != FUZZ_VECTORS))
			fuzz_fail(s, "a disconnect of a peer not (fully) announced", value, fd);
		if (fd < 0) {
			s->vectors[value] = 0;
			s->left[value] = true;
		}
		return;
	}
	s->stage++;
}

/* Read whatever has come for a slot, checking each message, closing its fd. */
static void fuzz_read(struct fuzz_slot *s)
{
	char control[CMSG_SPACE(sizeof(int))];
	uint64_t wire;
	ssize_t n;

	while (!s->eof) {
		struct iovec iov = { .iov_base = &wire, .iov_len = sizeof(wire) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control, .msg_controllen = sizeof(control) };
		struct cmsghdr *cmsg;
		int fd = -1;

		n = recvmsg(s->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) { /* end of stream, or reset with our bytes unread */
			s->eof = true;
			return;
		}
		cmsg = CMSG_FIRSTHDR(&msg);
		if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
		if (fd >= 0)
			close(fd);
		/* Our server sends each message whole, with its fd, in one go. */
		if (n != (ssize_t)sizeof(wire) || (msg.msg_flags & MSG_CTRUNC))
			fuzz_fail(s, "a message cut short", n, fd);
		fuzz_check(s, ivs_proto_decode(wire), fd);
	}
}

static void fuzz_connect(struct fuzz_slot *s)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memset(s, 0, sizeof(*s));
	s->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memcpy(addr.sun_path, server.socket_path, strlen(server.socket_path) + 1);
	if (s->sock >= 0 && connect(s->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(s->sock); /* the backlog is full: no connection */
		s->sock = -1;
	}
}

static void fuzz_close(struct fuzz_slot *s)
{
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
}

/* Let the server act on everything ready now; false when nothing was. */
static bool fuzz_server_step(void)
{
	struct pollfd fds[FUZZ_MAX_PEERS + 1];
	int n = ivs_server_get_fds(&server, fds, FUZZ_MAX_PEERS + 1);

	if (n < 0 || poll(fds, (nfds_t)n, 0) <= 0)
		return false;
	if (ivs_server_handle_fds(&server, fds, (size_t)n) < 0) {
		fprintf(stderr, "fuzz_server: the server failed\n");
		abort();
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds_before = fds_count(), small = 1, i;
	size_t pos = 0, len;

	for (i = 0; i < FUZZ_SLOTS; i++)
		slots[i].sock = -1;
	server.opts.verbose = size > 0 && (data[0] & 0x20);
	while (pos < size) {
		uint8_t step = data[pos++];
		struct fuzz_slot *s = &slots[(step >> 3) & 3];

		if ((step & 7) == 6) {
			fuzz_server_step();
			continue;
		}
		if ((step & 7) == 0) {
			if (s->sock < 0)
				fuzz_connect(s);
			continue;
		}
		if (s->sock < 0)
			continue;
		switch (step & 7) {
		case 1:
		case 2:
			len = pos < size ? data[pos++] % 17 : 0;
			len = len < size - pos ? len : size - pos;
			fds_send(s->sock, data + pos, len, (step & 7) == 2);
			pos += len;
			break;
		case 3:
			shutdown(s->sock, SHUT_WR);
			break;
		case 4:
			fuzz_close(s);
			break;
		case 5:
			fuzz_read(s);
			break;
		default:
			setsockopt(s->sock, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
			break;
		}
	}
	/* Everyone reads what is left, then leaves; the server catches up. */
	for (i = 0; i < FUZZ_SLOTS; i++)
		if (slots[i].sock >= 0)
			fuzz_read(&slots[i]);
	for (i = 0; i < FUZZ_SLOTS; i++)
		fuzz_close(&slots[i]);
	for (i = 0; i < FUZZ_IDLE_ROUNDS && fuzz_server_step(); i++)
		;
	if (ivs_server_peer_count(&server) != 0) {
		fprintf(stderr, "fuzz_server: %u peers left after every client closed\n",
			ivs_server_peer_count(&server));
		abort();
	}
	if (fds_count() != fds_before) {
		fprintf(stderr, "fuzz_server: %d fds open after the script, %d before\n",
			fds_count(), fds_before);
		abort();
	}
	return 0;
}
