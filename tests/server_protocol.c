/* server_protocol: message order, connect/disconnect notices, doorbells, shared memory and id reuse, with client-library and raw peers. */
/* timeout: 30 */
#include "check.h"
#include "ivshmem_client.h"
#include "server_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define VECTORS FIXTURE_VECTORS
#define WAIT_MS FIXTURE_WAIT_MS
#define QUIET_MS 100 /* how long "nothing more comes" is watched */

/* A peer that reads the raw protocol, with the fds it was given. */
struct raw_peer {
	int sock;                    /* connection to the server */
	int shm;                     /* the shared-memory fd */
	int first[VECTORS];          /* eventfds of the first peer already there */
	int own[VECTORS];            /* its own eventfds */
};

/* Expect the raw message (value, with or without fd); returns the fd. */
static int raw_expect(int sock, int64_t want, int want_fd, const char *what)
{
	int64_t v = -99;
	int fd = -1, ret = fixture_raw_recv(sock, &v, &fd, WAIT_MS);

	CHECKF(ret == 1 && v == want && (fd >= 0) == want_fd,
	       "raw peer gets %s: %lld %s fd (got %lld%s)", what, (long long)want,
	       want_fd ? "with" : "without", (long long)v,
	       ret != 1 ? ", nothing" : fd >= 0 ? " with fd" : " without fd");
	return fd;
}

/*
 * Connect a raw peer and read its handshake, checking every message: it
 * expects id, and the peers in others[] (n of them) to be there already.
 * The first one's eventfds are kept, the others' closed.
 */
static void raw_join(struct raw_peer *r, struct fixture *fx, unsigned id, const unsigned *others,
		     unsigned n)
{
	struct stat st;
	unsigned i, v;
	int fd;

	memset(r, -1, sizeof(*r)); /* every fd -1 */
	r->sock = fixture_raw_connect(fx);
	raw_expect(r->sock, IVS_PROTO_VERSION, 0, "the version");
	raw_expect(r->sock, id, 0, "its id");
	r->shm = raw_expect(r->sock, IVS_PROTO_SHM_VALUE, 1, "the shm");
	CHECKF(r->shm >= 0 && fstat(r->shm, &st) == 0 && st.st_size == FIXTURE_SHM_SIZE,
	       "the shm fd is %u bytes", FIXTURE_SHM_SIZE);
	for (i = 0; i < n; i++) {
		for (v = 0; v < VECTORS; v++) {
			fd = raw_expect(r->sock, others[i], 1, "an earlier peer's eventfd");
			if (i == 0)
				r->first[v] = fd;
			else if (fd >= 0)
				close(fd);
		}
	}
	for (v = 0; v < VECTORS; v++)
		r->own[v] = raw_expect(r->sock, id, 1, "its own eventfd");
}

static void raw_leave(struct raw_peer *r)
{
	unsigned v;

	for (v = 0; v < VECTORS; v++) {
		if (r->first[v] >= 0)
			close(r->first[v]);
		if (r->own[v] >= 0)
			close(r->own[v]);
	}
	if (r->shm >= 0)
		close(r->shm);
	if (r->sock >= 0)
		close(r->sock);
	memset(r, -1, sizeof(*r));
}

/* Expect the next notice of a client-library peer. */
static void expect_event(struct ivs_client *c, const char *who, enum ivs_client_event_type type,
			 unsigned peer, unsigned vector)
{
	struct ivs_client_event ev = { 0 };
	int ret = ivs_client_next_event(c, &ev, WAIT_MS);

	CHECKF(ret == 1 && ev.type == type && ev.peer_id == peer &&
	       (type != IVS_CLIENT_EV_PEER_VECTOR || ev.vector == vector),
	       "%s sees %s of peer %u vector %u (ret %d: %s %u/%u) %s", who,
	       ivs_client_event_name(type), peer, vector, ret, ivs_client_event_name(ev.type),
	       ev.peer_id, ev.vector, ret < 0 ? ivs_client_error(c) : "");
}

/* A client-library peer connects; expects id. */
static void join(struct ivs_client *c, struct fixture *fx, const char *who, unsigned id)
{
	CHECKF(ivs_client_connect(c, fx->sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(c) == id,
	       "%s connects as id %u (got %u) %s", who, id, ivs_client_id(c), ivs_client_error(c));
}

/* A client-library peer sees the vectors of a peer that connected. */
static void expect_connect(struct ivs_client *c, const char *who, unsigned peer)
{
	unsigned v;

	for (v = 0; v < VECTORS; v++)
		expect_event(c, who, IVS_CLIENT_EV_PEER_VECTOR, peer, v);
}

/* Three peers in a row: A (client library), B (raw), C (client library). */
struct trio {
	struct fixture fx;
	struct ivs_client a;         /* id 0, up to date with B's and C's eventfds */
	struct raw_peer b;           /* id 1; C's eventfds wait unread in its socket */
	struct ivs_client c;         /* id 2 */
};

/* Start a server and connect A, B, C; -1 if the server did not start. */
static int trio_start(struct trio *t)
{
	struct ivs_server_options opts;

	fixture_options(&opts);
	if (fixture_start(&t->fx, &opts, true) < 0)
		return -1;
	join(&t->a, &t->fx, "A", 0);
	raw_join(&t->b, &t->fx, 1, (unsigned[]){ 0 }, 1);
	expect_connect(&t->a, "A", 1);
	join(&t->c, &t->fx, "C", 2);
	expect_connect(&t->a, "A", 2);
	return 0;
}

/* Whoever of the three is still connected leaves; the server stops. */
static void trio_stop(struct trio *t)
{
	ivs_client_close(&t->c);
	raw_leave(&t->b);
	ivs_client_close(&t->a);
	fixture_stop(&t->fx);
}

/* ------------------------------------------------------------------ */

static void test_first_peer_alone(void)
{
	struct ivs_server_options opts;
	struct ivs_client a;
	struct fixture fx;
	unsigned ids[4];

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, true) < 0)
		return;
	join(&a, &fx, "A", 0);
	CHECKF(ivs_client_shm_size(&a) == FIXTURE_SHM_SIZE, "A's shm is %u bytes", FIXTURE_SHM_SIZE);
	CHECKF(ivs_client_peers(&a, ids, 4) == 0, "A sees no other peer");
	CHECKF(ivs_client_eventfd(&a, VECTORS - 1) >= 0, "A has its own %d eventfds", VECTORS);
	ivs_client_close(&a);
	fixture_stop(&fx);
}

static void test_message_order(void)
{
	struct ivs_server_options opts;
	struct ivs_client a;
	struct raw_peer b;
	struct fixture fx;
	int fd;

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, true) < 0)
		return;
	join(&a, &fx, "A", 0);
	/* version, id, shm, A's eventfds, its own eventfds: checked inside */
	raw_join(&b, &fx, 1, (unsigned[]){ 0 }, 1);
	CHECKF(fixture_raw_recv(b.sock, &(int64_t){ 0 }, &fd, QUIET_MS) < 0, "B gets nothing more");
	expect_connect(&a, "A", 1);
	raw_leave(&b);
	expect_event(&a, "A", IVS_CLIENT_EV_PEER_GONE, 1, 0);
	ivs_client_close(&a);
	fixture_stop(&fx);
}

static void test_third_peer_learns_both(void)
{
	struct trio t;
	unsigned ids[4], v;
	int fd;

	if (trio_start(&t) < 0)
		return;
	CHECKF(ivs_client_peers(&t.c, ids, 4) == 2 && ids[0] == 0 && ids[1] == 1 &&
	       ivs_client_peer_vectors(&t.c, 0) == VECTORS &&
	       ivs_client_peer_vectors(&t.c, 1) == VECTORS,
	       "C knows peers 0 and 1 with %d eventfds each", VECTORS);
	for (v = 0; v < VECTORS; v++) {
		fd = raw_expect(t.b.sock, 2, 1, "C's eventfd");
		if (fd >= 0)
			close(fd);
	}
	trio_stop(&t);
}

static void test_doorbells(void)
{
	struct trio t;
	uint64_t one = 1, count = 0;

	if (trio_start(&t) < 0)
		return;
	CHECKF(ivs_client_notify(&t.a, 2, 1) == 0, "A rings C vector 1");
	CHECKF(ivs_client_wait(&t.c, 1, WAIT_MS, &count) == 1 && count == 1, "C gets vector 1 once");
	CHECKF(ivs_client_wait(&t.c, 0, 0, NULL) == 0, "C's vector 0 stays quiet");
	CHECKF(ivs_client_notify(&t.c, 0, 0) == 0 && ivs_client_wait(&t.a, 0, WAIT_MS, NULL) == 1,
	       "C rings A vector 0, A gets it");
	CHECKF(write(t.b.first[1], &one, sizeof(one)) == sizeof(one) &&
	       ivs_client_wait(&t.a, 1, WAIT_MS, NULL) == 1,
	       "B rings A vector 1 through the eventfd the server gave it");
	CHECKF(ivs_client_notify(&t.a, 1, 0) == 0 &&
	       read(t.b.own[0], &count, sizeof(count)) == sizeof(count) && count == 1,
	       "A rings B vector 0, B reads it");
	CHECKF(ivs_client_notify(&t.a, 7, 0) == -ENOENT, "ringing an unknown peer is -ENOENT");
	CHECKF(ivs_client_notify(&t.a, 2, VECTORS) == -EINVAL, "ringing vector %d is -EINVAL",
	       VECTORS);
	trio_stop(&t);
}

static void test_shared_memory(void)
{
	struct ivs_server_options opts;
	struct ivs_client a, c;
	struct fixture fx;
	char *map_a, *map_c;

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, true) < 0)
		return;
	join(&a, &fx, "A", 0);
	join(&c, &fx, "C", 1);
	map_a = mmap(NULL, FIXTURE_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ivs_client_shm_fd(&a), 0);
	map_c = mmap(NULL, FIXTURE_SHM_SIZE, PROT_READ, MAP_SHARED, ivs_client_shm_fd(&c), 0);
	CHECKF(map_a != MAP_FAILED && map_c != MAP_FAILED, "A and C map the shm");
	if (map_a != MAP_FAILED && map_c != MAP_FAILED) {
		strcpy(map_a + FIXTURE_SHM_SIZE - 64, "hello from A");
		CHECKF(strcmp(map_c + FIXTURE_SHM_SIZE - 64, "hello from A") == 0,
		       "C reads what A wrote");
	}
	if (map_a != MAP_FAILED)
		munmap(map_a, FIXTURE_SHM_SIZE);
	if (map_c != MAP_FAILED)
		munmap(map_c, FIXTURE_SHM_SIZE);
	ivs_client_close(&c);
	ivs_client_close(&a);
	fixture_stop(&fx);
}

static void test_disconnect_notices(void)
{
	struct ivs_client_event ev;
	struct trio t;

	if (trio_start(&t) < 0)
		return;
	CHECK(fixture_raw_drain(t.b.sock, VECTORS, WAIT_MS) == 1); /* C's eventfds */
	ivs_client_close(&t.c);
	expect_event(&t.a, "A", IVS_CLIENT_EV_PEER_GONE, 2, 0);
	raw_expect(t.b.sock, 2, 0, "C's disconnect");
	CHECKF(ivs_client_peer_vectors(&t.a, 2) == 0, "A forgot C's eventfds");
	raw_leave(&t.b);
	expect_event(&t.a, "A", IVS_CLIENT_EV_PEER_GONE, 1, 0);
	CHECKF(ivs_client_next_event(&t.a, &ev, QUIET_MS) == 0, "A gets nothing more");
	trio_stop(&t);
}

/* QEMU corrupts its heap when an id it saw leave comes back (ivshmem_server.h). */
static void test_ids_not_reused_while_seen(void)
{
	struct ivs_server_options opts;
	struct ivs_client a, b, c, d, e, f;
	struct fixture fx;

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, true) < 0)
		return;
	join(&a, &fx, "A", 0);
	join(&b, &fx, "B", 1);
	join(&c, &fx, "C", 2);
	ivs_client_close(&b);
	ivs_client_close(&c);
	expect_connect(&a, "A", 1);
	expect_connect(&a, "A", 2);
	expect_event(&a, "A", IVS_CLIENT_EV_PEER_GONE, 1, 0);
	expect_event(&a, "A", IVS_CLIENT_EV_PEER_GONE, 2, 0);
	join(&d, &fx, "D (not 1 or 2: A saw them leave)", 3);
	expect_connect(&a, "A", 3);
	join(&e, &fx, "E", 4);
	ivs_client_close(&d);
	expect_event(&e, "E", IVS_CLIENT_EV_PEER_GONE, 3, 0);
	ivs_client_close(&a);
	expect_event(&e, "E", IVS_CLIENT_EV_PEER_GONE, 0, 0);
	join(&f, &fx, "F (only E is left, and E saw 0 and 3 leave, not 1)", 1);
	ivs_client_close(&f);
	ivs_client_close(&e);
	fixture_stop(&fx);
}

static void test_client_with_wrong_vector_count(void)
{
	struct ivs_server_options opts;
	struct ivs_client a, c;
	struct fixture fx;

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, true) < 0)
		return;
	join(&a, &fx, "A", 0);
	CHECKF(ivs_client_connect(&c, fx.sock, 1, WAIT_MS) == -EPROTO,
	       "a client expecting 1 vector fails on A's second eventfd: %s", ivs_client_error(&c));
	expect_connect(&a, "A", 1);
	expect_event(&a, "A", IVS_CLIENT_EV_PEER_GONE, 1, 0);
	ivs_client_close(&a);
	fixture_stop(&fx);
}

/* The simplest way to drive a server, without a thread: ivs_server_poll_once. */
static void test_poll_once(void)
{
	struct ivs_server_options opts;
	struct fixture fx;
	int64_t value = -99;
	int sock, fd;

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, false) < 0)
		return;
	CHECKF(ivs_server_poll_once(&fx.server, 0) == 0 && ivs_server_peer_count(&fx.server) == 0,
	       "nothing to do: poll_once returns 0 at once");
	sock = fixture_raw_connect(&fx);
	CHECKF(ivs_server_poll_once(&fx.server, WAIT_MS) == 0 &&
	       ivs_server_peer_count(&fx.server) == 1, "poll_once accepts the peer");
	CHECKF(fixture_raw_recv(sock, &value, &fd, WAIT_MS) == 1 && value == IVS_PROTO_VERSION &&
	       fd < 0, "it got the version (%lld)", (long long)value);
	close(sock);
	CHECKF(ivs_server_poll_once(&fx.server, WAIT_MS) == 0 &&
	       ivs_server_peer_count(&fx.server) == 0, "poll_once drops it once it hangs up");
	fixture_stop(&fx);
}

/* A socket connected by the caller: ivs_client_attach runs the same handshake. */
static void test_attach_connected_socket(void)
{
	struct ivs_server_options opts;
	struct ivs_client a, b;
	struct fixture fx;
	int fd;

	fixture_options(&opts);
	if (fixture_start(&fx, &opts, true) < 0)
		return;
	fd = fixture_raw_connect(&fx);
	CHECKF(ivs_client_attach(&a, fd, VECTORS, WAIT_MS) == 0 && ivs_client_id(&a) == 0 &&
	       ivs_client_eventfd(&a, VECTORS - 1) >= 0, "A attaches as id 0 with its eventfds %s",
	       ivs_client_error(&a));
	fd = fixture_raw_connect(&fx);
	CHECKF(ivs_client_attach(&b, fd, 0, WAIT_MS) == -EINVAL,
	       "attaching with 0 vectors is refused (and closes the socket): %s",
	       ivs_client_error(&b));
	ivs_client_close(&a);
	fixture_stop(&fx);
}

int main(void)
{
	RUN(test_first_peer_alone);
	RUN(test_message_order);
	RUN(test_third_peer_learns_both);
	RUN(test_doorbells);
	RUN(test_shared_memory);
	RUN(test_disconnect_notices);
	RUN(test_ids_not_reused_while_seen);
	RUN(test_client_with_wrong_vector_count);
	RUN(test_poll_once);
	RUN(test_attach_connected_socket);
	return check_done("server_protocol");
}
