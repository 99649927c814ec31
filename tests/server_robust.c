/* server_robust: hundreds of connect cycles with misbehaving clients; a steady peer is unaffected, stuck peers are dropped, ids come back only when safe, no fd leaks. */
/* timeout: 120 */
#include "check.h"
#include "ivshmem_client.h"
#include "server_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VECTORS FIXTURE_VECTORS
#define WAIT_MS FIXTURE_WAIT_MS
#define DEFAULT_CYCLES 500
#define MAX_PEERS 8
#define SEND_TIMEOUT_MS 100
#define MAX_STUCK_CYCLES 5000

/*
 * Every case runs beside a well-behaved peer G that connects first and
 * checks each notice it gets: what QEMU would choke on (an id back after
 * its disconnect, a peer gone before all its eventfds came) is an error.
 */
static struct fixture fx;
static struct ivs_client steady;             /* G */
static unsigned seen[IVS_PROTO_N_IDS];       /* G's view: eventfds per peer */
static bool left[IVS_PROTO_N_IDS];           /* G saw this id leave */
static int steady_errors;                    /* what G found wrong */

/* G applies every notice waiting for it; any error counts against it. */
static void steady_drain(int timeout_ms)
{
	struct ivs_client_event ev;
	int ret;

	if (steady.state == IVS_CLIENT_CLOSED) /* G has left already */
		return;
	while ((ret = ivs_client_next_event(&steady, &ev, timeout_ms)) == 1) {
		timeout_ms = 0;
		if (ev.type == IVS_CLIENT_EV_PEER_VECTOR) {
			if (left[ev.peer_id] && ++steady_errors)
				printf("FAIL id %u reused though G saw it leave\n", ev.peer_id);
			seen[ev.peer_id]++;
			continue;
		}
		if (seen[ev.peer_id] != VECTORS && ++steady_errors)
			printf("FAIL peer %u left after %u of %d eventfds\n", ev.peer_id,
			       seen[ev.peer_id], VECTORS);
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
		if (fixture_peer_count(&fx) == want) {
			steady_drain(0); /* notices are sent before the count drops */
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	return -1;
}

/* A server for up to MAX_PEERS peers and G as its peer 0. */
static int robust_begin(void)
{
	struct ivs_server_options opts;

	fixture_options(&opts);
	opts.max_peers = MAX_PEERS;
	opts.send_timeout_ms = SEND_TIMEOUT_MS;
	if (fixture_start(&fx, &opts, true) < 0)
		return -1;
	memset(seen, 0, sizeof(seen));
	memset(left, 0, sizeof(left));
	steady_errors = 0;
	CHECKF(ivs_client_connect(&steady, fx.sock, VECTORS, WAIT_MS) == 0 &&
	       ivs_client_id(&steady) == 0, "steady peer G connects as id 0 %s",
	       ivs_client_error(&steady));
	return 0;
}

/* G must have seen nothing wrong; then G leaves and the server stops. */
static void robust_end(void)
{
	steady_drain(0);
	CHECKF(steady_errors == 0, "G never saw an error or a half-announced peer (%d)",
	       steady_errors);
	ivs_client_close(&steady);
	fixture_stop(&fx);
}

/* One cycle of client behaviour number kind; returns 0 if it went as expected. */
static int cycle(int kind)
{
	struct ivs_client c;
	int fd, ok = 0;

	switch (kind) {
	case 0: /* well-behaved peer */
		if (ivs_client_connect(&c, fx.sock, VECTORS, WAIT_MS) < 0)
			ok = -1;
		ivs_client_close(&c);
		break;
	case 1: /* gone before reading anything */
		fd = fixture_raw_connect(&fx);
		if (fd >= 0)
			close(fd);
		break;
	case 2: /* sends garbage: the server must hang up on it */
		fd = fixture_raw_connect(&fx);
		ok = write(fd, "garbage!", 8) == 8 && fixture_raw_drain(fd, 1000, WAIT_MS) == 0 ? 0 : -1;
		close(fd);
		break;
	case 3: /* half-close: same */
		fd = fixture_raw_connect(&fx);
		shutdown(fd, SHUT_WR);
		ok = fixture_raw_drain(fd, 1000, WAIT_MS) == 0 ? 0 : -1;
		close(fd);
		break;
	case 4: /* leaves in the middle of the handshake */
		fd = fixture_raw_connect(&fx);
		ok = fixture_raw_drain(fd, 2, WAIT_MS) == 1 ? 0 : -1;
		close(fd);
		break;
	default: /* vanishes while another peer connects */
		fd = fixture_raw_connect(&fx);
		if (ivs_client_connect(&c, fx.sock, VECTORS, WAIT_MS) < 0)
			ok = -1;
		close(fd);
		ivs_client_close(&c);
		break;
	}
	steady_drain(0);
	return ok;
}

/* ------------------------------------------------------------------ */

static void test_misbehaving_clients(void)
{
	const char *env = getenv("IVS_ROBUST_CYCLES");
	int cycles = env ? atoi(env) : DEFAULT_CYCLES, bad = 0, fds_with_g, i;
	struct timespec t0, t1;

	if (robust_begin() < 0)
		return;
	fds_with_g = fds_count();
	printf("# %d cycles of six client behaviours\n", cycles);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < cycles; i++)
		if (cycle(i % 6) < 0 && ++bad <= 5)
			printf("     cycle %d (kind %d) misbehaved\n", i, i % 6);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECKF(bad == 0, "every cycle went as expected (%d did not), %.2f s", bad,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	CHECKF(settle(1) == 0, "server is back to one peer");
	CHECKF(ivs_client_peers(&steady, (unsigned[1]){ 0 }, 1) == 0, "G knows no other peer now");
	CHECKF(fds_count() == fds_with_g, "no fd leaked while G stays: %d open, %d before",
	       fds_count(), fds_with_g);
	robust_end();
}

static void test_stuck_peer_dropped(void)
{
	int stuck, i;

	if (robust_begin() < 0)
		return;
	stuck = fixture_raw_connect(&fx);
	CHECKF(settle(2) == 0, "a peer that never reads is in");
	for (i = 0; i < MAX_STUCK_CYCLES; i++) {
		cycle(0);
		if (fixture_peer_count(&fx) == 1) /* G and the stuck one are the floor */
			break;
	}
	CHECKF(i < MAX_STUCK_CYCLES, "it is dropped when its socket fills, after %d connect cycles",
	       i + 1);
	close(stuck);
	steady_drain(100);
	robust_end();
}

static void test_new_id_after_leave(void)
{
	struct ivs_client c[3];
	unsigned old_id;
	int i;

	if (robust_begin() < 0)
		return;
	for (i = 0; i < 3; i++)
		CHECKF(ivs_client_connect(&c[i], fx.sock, VECTORS, WAIT_MS) == 0, "peer %d connects", i);
	old_id = ivs_client_id(&c[1]);
	ivs_client_close(&c[1]);
	CHECK(settle(3) == 0);
	CHECKF(ivs_client_connect(&c[1], fx.sock, VECTORS, WAIT_MS) == 0 &&
	       ivs_client_id(&c[1]) != old_id && ivs_client_id(&c[1]) == ivs_client_id(&c[2]) + 1,
	       "a peer leaves; the next one gets a new id (%u, not %u), as G, %u and %u saw it go",
	       ivs_client_id(&c[1]), old_id, ivs_client_id(&c[0]), ivs_client_id(&c[2]));
	for (i = 0; i < 3; i++)
		ivs_client_close(&c[i]);
	CHECK(settle(1) == 0);
	robust_end();
}

static void test_max_peers(void)
{
	struct ivs_client many[MAX_PEERS], extra;
	int i;

	if (robust_begin() < 0)
		return;
	for (i = 0; i < MAX_PEERS - 1; i++)
		if (ivs_client_connect(&many[i], fx.sock, VECTORS, WAIT_MS) < 0)
			break;
	CHECKF(i == MAX_PEERS - 1, "%d peers fit (with G)", i + 1);
	CHECKF(ivs_client_connect(&extra, fx.sock, VECTORS, WAIT_MS) == -ECONNRESET,
	       "one more is turned away at once: %s", ivs_client_error(&extra));
	ivs_client_close(&many[3]);
	CHECK(settle(MAX_PEERS - 1) == 0);
	CHECKF(ivs_client_connect(&extra, fx.sock, VECTORS, WAIT_MS) == 0,
	       "after one leaves, the next gets in %s", ivs_client_error(&extra));
	ivs_client_close(&extra);
	for (i = 0; i < MAX_PEERS - 1; i++)
		ivs_client_close(&many[i]);
	CHECK(settle(1) == 0);
	robust_end();
}

static void test_steady_peer_hears_rings(void)
{
	struct ivs_client ringer;

	if (robust_begin() < 0)
		return;
	CHECKF(ivs_client_connect(&ringer, fx.sock, VECTORS, WAIT_MS) == 0 &&
	       ivs_client_notify(&ringer, 0, 1) == 0 && ivs_client_wait(&steady, 1, WAIT_MS, NULL) == 1,
	       "a new peer rings G and G hears it");
	ivs_client_close(&ringer);
	CHECK(settle(1) == 0);
	robust_end();
}

static void test_ids_come_back_when_safe(void)
{
	struct ivs_client c[2];
	int i;

	if (robust_begin() < 0)
		return;
	for (i = 0; i < 2; i++) {
		CHECK(ivs_client_connect(&c[i], fx.sock, VECTORS, WAIT_MS) == 0);
		ivs_client_close(&c[i]);
		CHECK(settle(1) == 0); /* G saw ids 1, then 2 leave */
	}
	steady_drain(0);
	CHECKF(steady_errors == 0, "G saw the two come and go (%d errors)", steady_errors);
	ivs_client_close(&steady);
	CHECKF(settle(0) == 0, "with G gone, the server has no peer");
	CHECKF(ivs_client_connect(&c[0], fx.sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&c[0]) == 0 &&
	       ivs_client_connect(&c[1], fx.sock, VECTORS, WAIT_MS) == 0 && ivs_client_id(&c[1]) == 1,
	       "two new peers get ids 0 and 1 again (got %u and %u)", ivs_client_id(&c[0]),
	       ivs_client_id(&c[1]));
	ivs_client_close(&c[0]);
	ivs_client_close(&c[1]);
	CHECK(settle(0) == 0);
	fixture_stop(&fx);
}

int main(void)
{
	RUN(test_misbehaving_clients);
	RUN(test_stuck_peer_dropped);
	RUN(test_new_id_after_leave);
	RUN(test_max_peers);
	RUN(test_steady_peer_hears_rings);
	RUN(test_ids_come_back_when_safe);
	return check_done("server_robust");
}
