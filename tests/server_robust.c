/* server_robust: hundreds of connect cycles with misbehaving clients; a steady peer is unaffected, ids come back only when safe, no fd leaks. */
/* timeout: 120 */
#include "check.h"
#include "ivshmem_client.h"
#include "ivshmem_server.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define VECTORS 2
#define WAIT_MS 3000
#define DEFAULT_CYCLES 500
#define MAX_PEERS 8

static struct ivs_server server;
static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stop_server;
static char sock[256];
static struct ivs_client steady;          /* the well-behaved peer G */
static unsigned seen[IVS_CLIENT_MAX_PEER_ID + 1]; /* G's view: eventfds per peer */
static bool left[IVS_CLIENT_MAX_PEER_ID + 1]; /* G saw this id leave */
static int steady_errors;


/* Only this thread changes the server; the lock lets main read its peer count. */
static void *server_thread(void *arg)
{
	struct pollfd fds[MAX_PEERS + 1];
	int n;

	(void)arg;
	while (!atomic_load(&stop_server)) {
		n = ivs_server_get_fds(&server, fds, MAX_PEERS + 1);
		if (n > 0 && poll(fds, (nfds_t)n, 20) > 0) {
			pthread_mutex_lock(&server_lock);
			ivs_server_handle_fds(&server, fds, (size_t)n);
			pthread_mutex_unlock(&server_lock);
		}
	}
	return NULL;
}

static unsigned peer_count(void)
{
	unsigned n;

	pthread_mutex_lock(&server_lock);
	n = ivs_server_peer_count(&server);
	pthread_mutex_unlock(&server_lock);
	return n;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n - 3; /* ".", ".." and the DIR's own fd */
}

/* G applies every notice waiting for it; any error counts against it. */
static void steady_drain(int timeout_ms)
{
	struct ivs_client_event ev;
	int ret;

	if (steady.state == IVS_CLIENT_CLOSED) /* closed by us at the end */
		return;
	while ((ret = ivs_client_next_event(&steady, &ev, timeout_ms)) == 1) {
		timeout_ms = 0;
		if (ev.type == IVS_CLIENT_EV_PEER_VECTOR) {
			/* What QEMU cannot survive: an id back after its disconnect. */
			if (left[ev.peer_id] && ++steady_errors)
				printf("FAIL id %u reused though G saw it leave\n", ev.peer_id);
			seen[ev.peer_id]++;
			continue;
		}
		if (seen[ev.peer_id] != VECTORS && ++steady_errors)
			printf("FAIL peer %u left after %u of %d eventfds\n", ev.peer_id, seen[ev.peer_id], VECTORS);
		seen[ev.peer_id] = 0;
		left[ev.peer_id] = true;
	}
	if (ret < 0 && ++steady_errors)
		printf("FAIL steady peer: %s\n", ivs_client_error(&steady));
}

/* Wait until the server holds want peers; G keeps reading meanwhile. */
static int settle(unsigned want)
{
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += WAIT_MS / 1000;
	do {
		if (steady.state == IVS_CLIENT_CLOSED)
			poll(NULL, 0, 10);
		steady_drain(10);
		if (peer_count() == want) {
			steady_drain(0); /* notices are sent before the count drops */
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	return -1;
}

static int raw_connect(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(addr.sun_path, sock, strlen(sock) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* Read (closing any fds received) until EOF; 0 at EOF, -1 on timeout. */
static int raw_read(int fd, int max_msgs, int timeout_ms)
{
	char control[CMSG_SPACE(sizeof(int))], buf[8];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (int i = 0; i < max_msgs; i++) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control, .msg_controllen = sizeof(control) };
		struct cmsghdr *cmsg;
		int rfd;

		if (poll(&p, 1, timeout_ms) != 1)
			return -1;
		ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		/* Hung up on with our bytes unread, the kernel says ECONNRESET. */
		if (n <= 0)
			return n == 0 || errno == ECONNRESET ? 0 : -1;
		cmsg = CMSG_FIRSTHDR(&msg);
		if (cmsg && cmsg->cmsg_type == SCM_RIGHTS) {
			memcpy(&rfd, CMSG_DATA(cmsg), sizeof(int));
			close(rfd);
		}
	}
	return 1;
}

/* One cycle of client behaviour number kind; returns 0 if it went as expected. */
static int cycle(int kind)
{
	struct ivs_client c;
	int fd, ok = 0;

	switch (kind) {
	case 0: /* well-behaved peer */
		if (ivs_client_connect(&c, sock, VECTORS, WAIT_MS) < 0)
			ok = -1;
		ivs_client_close(&c);
		break;
	case 1: /* gone before reading anything */
		close(raw_connect());
		break;
	case 2: /* sends garbage: the server must hang up on it */
		fd = raw_connect();
		ok = write(fd, "garbage!", 8) == 8 && raw_read(fd, 1000, WAIT_MS) == 0 ? 0 : -1;
		close(fd);
		break;
	case 3: /* half-close: same */
		fd = raw_connect();
		shutdown(fd, SHUT_WR);
		ok = raw_read(fd, 1000, WAIT_MS) == 0 ? 0 : -1;
		close(fd);
		break;
	case 4: /* leaves in the middle of the handshake */
		fd = raw_connect();
		ok = raw_read(fd, 2, WAIT_MS) == 1 ? 0 : -1;
		close(fd);
		break;
	default: /* vanishes while another peer connects */
		fd = raw_connect();
		if (ivs_client_connect(&c, sock, VECTORS, WAIT_MS) < 0)
			ok = -1;
		close(fd);
		ivs_client_close(&c);
		break;
	}
	steady_drain(0);
	return ok;
}

int main(void)
{
	char dir[] = "/tmp/ivs_robust.XXXXXX", shm[256];
	const char *env = getenv("IVS_ROBUST_CYCLES");
	int cycles = env ? atoi(env) : DEFAULT_CYCLES, bad = 0, fds_before, fds_steady, stuck, i;
	unsigned old_id;
	struct ivs_server_options opts;
	struct ivs_client c[3], many[MAX_PEERS], ringer;
	pthread_t thread;
	struct timespec t0, t1;

	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(shm, sizeof(shm), "%s/shm", dir);
	ivs_server_options_default(&opts);
	opts.socket_path = sock;
	opts.shm = shm;
	opts.shm_size = 1 << 20;
	opts.n_vectors = VECTORS;
	opts.send_timeout_ms = 100;
	opts.max_peers = MAX_PEERS;
	fds_before = count_fds();
	if (ivs_server_init(&server, &opts) < 0 || ivs_server_start(&server) < 0)
		return 1;
	pthread_create(&thread, NULL, server_thread, NULL);
	CHECKF(ivs_client_connect(&steady, sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&steady) == 0,
	      "steady peer G connects as id 0");
	fds_steady = count_fds();

	printf("# %d cycles of six client behaviours\n", cycles);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < cycles; i++)
		if (cycle(i % 6) < 0 && ++bad <= 5)
			printf("     cycle %d (kind %d) misbehaved\n", i, i % 6);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECKF(bad == 0, "every cycle went as expected (%d did not), %.2f s", bad,
	      (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	CHECKF(settle(1) == 0, "server is back to one peer");

	printf("# a peer that never reads is dropped when its socket fills, nobody else\n");
	stuck = raw_connect();
	CHECKF(settle(2) == 0, "stuck peer is in");
	for (i = 0; i < 5000; i++) {
		cycle(0);
		if (peer_count() == 1) /* G and the stuck one are the floor */
			break;
	}
	CHECKF(i < 5000, "stuck peer dropped after %d connect cycles", i + 1);
	close(stuck);
	steady_drain(100);

	printf("# ids\n");
	for (i = 0; i < 3; i++)
		ivs_client_connect(&c[i], sock, VECTORS, WAIT_MS);
	old_id = ivs_client_id(&c[1]);
	ivs_client_close(&c[1]);
	settle(3);
	CHECKF(ivs_client_connect(&c[1], sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&c[1]) != old_id &&
	      ivs_client_id(&c[1]) == ivs_client_id(&c[2]) + 1,
	      "a peer leaves; the next one gets a new id (%u, not %u), as G, %u and %u saw it go",
	      ivs_client_id(&c[1]), old_id, ivs_client_id(&c[0]), ivs_client_id(&c[2]));
	for (i = 0; i < 3; i++)
		ivs_client_close(&c[i]);

	printf("# max-peers %d\n", MAX_PEERS);
	settle(1);
	for (i = 0; i < MAX_PEERS - 1; i++)
		if (ivs_client_connect(&many[i], sock, VECTORS, WAIT_MS) < 0)
			break;
	CHECKF(i == MAX_PEERS - 1, "%d peers fit (with G)", i + 1);
	CHECKF(ivs_client_connect(&c[0], sock, VECTORS, WAIT_MS) == -ECONNRESET,
	      "one more is turned away at once: %s", ivs_client_error(&c[0]));
	ivs_client_close(&many[3]);
	settle(MAX_PEERS - 1);
	CHECKF(ivs_client_connect(&c[0], sock, VECTORS, WAIT_MS) == 0,
	      "after one leaves, the next gets in %s", ivs_client_error(&c[0]));
	ivs_client_close(&c[0]);
	for (i = 0; i < MAX_PEERS - 1; i++)
		ivs_client_close(&many[i]);

	printf("# the steady peer is unaffected\n");
	CHECKF(settle(1) == 0, "server is back to one peer");
	steady_drain(50);
	CHECKF(steady_errors == 0, "G never saw an error or a half-announced peer");
	CHECKF(ivs_client_peers(&steady, (unsigned[1]){ 0 }, 1) == 0, "G knows no other peer now");
	CHECKF(ivs_client_connect(&ringer, sock, VECTORS, WAIT_MS) == 0 && ivs_client_notify(&ringer, 0, 1) == 0 &&
	      ivs_client_wait(&steady, 1, WAIT_MS, NULL) == 1, "a new peer rings G and G hears it");
	ivs_client_close(&ringer);
	CHECKF(settle(1) == 0 && count_fds() == fds_steady, "no fd leaked: %d open, %d at the start",
	      count_fds(), fds_steady);

	printf("# ids come back once nobody who saw them leave is connected\n");
	ivs_client_close(&steady);
	CHECKF(settle(0) == 0, "server has no peer");
	CHECKF(ivs_client_connect(&c[0], sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&c[0]) == 0 &&
	      ivs_client_connect(&c[1], sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&c[1]) == 1,
	      "two new peers get ids 0 and 1 (got %u and %u)", ivs_client_id(&c[0]), ivs_client_id(&c[1]));
	ivs_client_close(&c[0]);
	ivs_client_close(&c[1]);
	settle(0);

	atomic_store(&stop_server, true);
	pthread_join(thread, NULL);
	ivs_server_close(&server);
	CHECKF(count_fds() == fds_before, "after close: %d fds open, %d before the server", count_fds(), fds_before);
	rmdir(dir);
	return check_done("server_robust");
}
