/* server_protocol: message order, connect/disconnect notices, doorbells and shared memory with three peers. */
/* timeout: 30 */
#include "check.h"
#include "ivshmem_client.h"
#include "ivshmem_server.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VECTORS 2
#define SHM_SIZE (1u << 20)
#define WAIT_MS 2000

static struct ivs_server server;
static atomic_bool stop_server;


static void *server_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_server))
		ivs_server_poll_once(&server, 20);
	return NULL;
}

/* A client that reads the raw protocol, to check the exact messages. */
static int raw_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(addr.sun_path))
		exit(1);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("raw connect");
		exit(1);
	}
	return fd;
}

/* One 8-byte message and its fd (-1 if none); returns 0, or -1 on timeout/EOF. */
static int raw_recv(int sock, int64_t *value, int *fd, int timeout_ms)
{
	char control[CMSG_SPACE(sizeof(int))];
	uint64_t wire;
	struct iovec iov = { .iov_base = &wire, .iov_len = sizeof(wire) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control, .msg_controllen = sizeof(control) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cmsg;

	*fd = -1;
	if (poll(&p, 1, timeout_ms) != 1 || recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != sizeof(wire))
		return -1;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (cmsg && cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	*value = (int64_t)le64toh(wire);
	return 0;
}

/* Expect the raw message (value, with or without fd); returns the fd. */
static int raw_expect(int sock, int64_t want, int want_fd, const char *what)
{
	int64_t v = -99;
	int fd = -1, ret = raw_recv(sock, &v, &fd, WAIT_MS);

	CHECKF(ret == 0 && v == want && (fd >= 0) == want_fd, "raw peer gets %s: %lld %s fd (got %lld%s)",
	      what, (long long)want, want_fd ? "with" : "without", (long long)v,
	      ret ? ", nothing" : fd >= 0 ? " with fd" : " without fd");
	return fd;
}

static void expect_event(struct ivs_client *c, const char *who, enum ivs_client_event_type type,
			 unsigned peer, unsigned vector)
{
	struct ivs_client_event ev;
	int ret = ivs_client_next_event(c, &ev, WAIT_MS);

	CHECKF(ret == 1 && ev.type == type && ev.peer_id == peer &&
	      (type != IVS_CLIENT_EV_PEER_VECTOR || ev.vector == vector),
	      "%s sees %s of peer %u vector %u (ret %d: %s %u/%u) %s", who,
	      ivs_client_event_name(type), peer, vector, ret, ivs_client_event_name(ev.type),
	      ev.peer_id, ev.vector, ret < 0 ? ivs_client_error(c) : "");
}

int main(void)
{
	char dir[] = "/tmp/ivs_protocol.XXXXXX", sock[256], shm[256];
	struct ivs_server_options opts;
	struct ivs_client a, c, d, e, f;
	struct ivs_client_event ev;
	int b, b_shm, b_a[VECTORS], b_own[VECTORS], fd, v;
	uint64_t one = 1, count = 0;
	unsigned ids[4];
	char *map_a, *map_c;
	pthread_t thread;
	struct stat st;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(shm, sizeof(shm), "%s/shm", dir);
	ivs_server_options_default(&opts);
	opts.socket_path = sock;
	opts.shm = shm;
	opts.shm_size = SHM_SIZE;
	opts.n_vectors = VECTORS;
	if (ivs_server_init(&server, &opts) < 0 || ivs_server_start(&server) < 0)
		return 1;
	pthread_create(&thread, NULL, server_thread, NULL);

	printf("# peer A (client library) connects first\n");
	CHECKF(ivs_client_connect(&a, sock, VECTORS, WAIT_MS) == 0, "A connects %s", ivs_client_error(&a));
	CHECKF(ivs_client_id(&a) == 0, "A gets id 0 (got %u)", ivs_client_id(&a));
	CHECKF(ivs_client_shm_size(&a) == SHM_SIZE, "A's shm is %u bytes", SHM_SIZE);
	CHECKF(ivs_client_peers(&a, ids, 4) == 0, "A sees no other peer");
	CHECKF(ivs_client_eventfd(&a, VECTORS - 1) >= 0, "A has its own %d eventfds", VECTORS);

	printf("# peer B reads the raw protocol: version, id, shm, A's eventfds, its own\n");
	b = raw_connect(sock);
	raw_expect(b, 0, 0, "version");
	raw_expect(b, 1, 0, "its id");
	b_shm = raw_expect(b, -1, 1, "the shm");
	CHECKF(b_shm >= 0 && fstat(b_shm, &st) == 0 && st.st_size == SHM_SIZE, "B's shm fd is %u bytes", SHM_SIZE);
	for (v = 0; v < VECTORS; v++)
		b_a[v] = raw_expect(b, 0, 1, "A's eventfd");
	for (v = 0; v < VECTORS; v++)
		b_own[v] = raw_expect(b, 1, 1, "its own eventfd");
	CHECKF(raw_recv(b, &(int64_t){ 0 }, &fd, 100) < 0, "B gets nothing more");
	for (v = 0; v < VECTORS; v++)
		expect_event(&a, "A", IVS_CLIENT_EV_PEER_VECTOR, 1, (unsigned)v);

	printf("# peer C connects\n");
	CHECKF(ivs_client_connect(&c, sock, VECTORS, WAIT_MS) == 0, "C connects %s", ivs_client_error(&c));
	CHECKF(ivs_client_id(&c) == 2, "C gets id 2 (got %u)", ivs_client_id(&c));
	CHECKF(ivs_client_peers(&c, ids, 4) == 2 && ids[0] == 0 && ids[1] == 1 &&
	      ivs_client_peer_vectors(&c, 0) == VECTORS && ivs_client_peer_vectors(&c, 1) == VECTORS,
	      "C knows peers 0 and 1 with %d eventfds each", VECTORS);
	for (v = 0; v < VECTORS; v++) {
		expect_event(&a, "A", IVS_CLIENT_EV_PEER_VECTOR, 2, (unsigned)v);
		fd = raw_expect(b, 2, 1, "C's eventfd");
		close(fd);
	}

	printf("# doorbells\n");
	CHECKF(ivs_client_notify(&a, 2, 1) == 0, "A rings C vector 1");
	CHECKF(ivs_client_wait(&c, 1, WAIT_MS, &count) == 1 && count == 1, "C gets vector 1 once");
	CHECKF(ivs_client_wait(&c, 0, 0, NULL) == 0, "C's vector 0 stays quiet");
	CHECKF(ivs_client_notify(&c, 0, 0) == 0 && ivs_client_wait(&a, 0, WAIT_MS, NULL) == 1,
	      "C rings A vector 0, A gets it");
	CHECKF(write(b_a[1], &one, sizeof(one)) == sizeof(one) && ivs_client_wait(&a, 1, WAIT_MS, NULL) == 1,
	      "B rings A vector 1 through the eventfd the server gave it");
	CHECKF(ivs_client_notify(&a, 1, 0) == 0 && read(b_own[0], &count, sizeof(count)) == sizeof(count),
	      "A rings B vector 0, B reads it");
	CHECKF(ivs_client_notify(&a, 7, 0) == -ENOENT, "ringing an unknown peer is -ENOENT");

	printf("# shared memory\n");
	map_a = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ivs_client_shm_fd(&a), 0);
	map_c = mmap(NULL, SHM_SIZE, PROT_READ, MAP_SHARED, ivs_client_shm_fd(&c), 0);
	CHECKF(map_a != MAP_FAILED && map_c != MAP_FAILED, "A and C map the shm");
	strcpy(map_a + SHM_SIZE - 64, "hello from A");
	CHECKF(strcmp(map_c + SHM_SIZE - 64, "hello from A") == 0, "C reads what A wrote");
	munmap(map_a, SHM_SIZE);
	munmap(map_c, SHM_SIZE);

	printf("# disconnects\n");
	ivs_client_close(&c);
	expect_event(&a, "A", IVS_CLIENT_EV_PEER_GONE, 2, 0);
	raw_expect(b, 2, 0, "C's disconnect");
	CHECKF(ivs_client_peer_vectors(&a, 2) == 0, "A forgot C's eventfds");
	close(b);
	expect_event(&a, "A", IVS_CLIENT_EV_PEER_GONE, 1, 0);
	CHECKF(ivs_client_next_event(&a, &ev, 100) == 0, "A gets nothing more");

	printf("# ids: not reused while a peer that saw them leave is connected (QEMU would corrupt its heap)\n");
	CHECKF(ivs_client_connect(&d, sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&d) == 3,
	      "D gets id 3: A saw 1 and 2 leave (got %u)", ivs_client_id(&d));
	for (v = 0; v < VECTORS; v++)
		expect_event(&a, "A", IVS_CLIENT_EV_PEER_VECTOR, 3, (unsigned)v);
	CHECKF(ivs_client_connect(&e, sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&e) == 4,
	      "E gets id 4 (got %u)", ivs_client_id(&e));
	ivs_client_close(&d);
	expect_event(&e, "E", IVS_CLIENT_EV_PEER_GONE, 3, 0);
	ivs_client_close(&a);
	expect_event(&e, "E", IVS_CLIENT_EV_PEER_GONE, 0, 0);
	CHECKF(ivs_client_connect(&f, sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&f) == 1,
	      "with A gone, F gets id 1: only E is left, and E saw 0 and 3 leave, not 1 (got %u)",
	      ivs_client_id(&f));
	CHECKF(ivs_client_connect(&c, sock, 1, 300) == -EPROTO,
	      "a client expecting 1 vector from a %d-vector server fails: %s", VECTORS,
	      ivs_client_error(&c));
	ivs_client_close(&f);
	ivs_client_close(&e);

	atomic_store(&stop_server, true);
	pthread_join(thread, NULL);
	ivs_server_close(&server);
	CHECKF(access(sock, F_OK) < 0 && access(shm, F_OK) < 0, "close removed the socket and the shm it created");
	for (v = 0; v < VECTORS; v++) {
		close(b_a[v]);
		close(b_own[v]);
	}
	close(b_shm);
	rmdir(dir);
	return check_done("server_protocol");
}
