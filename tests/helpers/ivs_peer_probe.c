/*
 * ivs_peer_probe.c - a host peer for tests/server_qemu.sh: connects to the
 * doorbell server and prints one line per thing it learns, flushed, so a
 * shell script can wait on them:
 *   id N                  our own peer id
 *   peer P VECTORS        a peer already there when we connected
 *   connect P V           peer P's eventfd for vector V arrived
 *   gone P                peer P disconnected
 *   consumed P V          (with --ring) we rang P's vector V and P read it
 *   unconsumed P V        ... and P did not read it within a second
 *   error TEXT            and exit 1
 * With --ring, every peer whose last vector arrives gets each vector rung
 * once; a QEMU peer reads its own eventfds in its main loop even while
 * paused (-S), which is what "consumed" shows. Runs until killed or for
 * SECONDS. Built by the Makefile into build/tests/helpers/; not a test of
 * its own.
 *
 * Usage: ivs_peer_probe SOCKET VECTORS SECONDS [--ring]
 */
#include "ivshmem_client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_RING_WAIT_MS 1000

/* Ring vector v of peer p and wait until p has read its eventfd. */
static void probe_ring(struct ivs_client *c, unsigned p, unsigned v)
{
	struct pollfd pfd = { .fd = c->peers[p].eventfds[v], .events = POLLIN };
	int i;

	if (ivs_client_notify(c, p, v) < 0) {
		printf("error %s\n", ivs_client_error(c));
		exit(1);
	}
	for (i = 0; i < PROBE_RING_WAIT_MS / 10; i++) {
		if (poll(&pfd, 1, 0) == 0) {
			printf("consumed %u %u\n", p, v);
			return;
		}
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	printf("unconsumed %u %u\n", p, v);
}

int main(int argc, char **argv)
{
	struct ivs_client c;
	struct ivs_client_event ev;
	unsigned ids[256], vectors;
	time_t end;
	size_t n, i;
	int ret, ring;

	if (argc < 4) {
		fprintf(stderr, "usage: %s SOCKET VECTORS SECONDS [--ring]\n", argv[0]);
		return 2;
	}
	vectors = (unsigned)atoi(argv[2]);
	end = time(NULL) + atoi(argv[3]);
	ring = argc > 4 && strcmp(argv[4], "--ring") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (ivs_client_connect(&c, argv[1], vectors, 5000) < 0) {
		printf("error %s\n", ivs_client_error(&c));
		return 1;
	}
	printf("id %u\n", ivs_client_id(&c));
	n = ivs_client_peers(&c, ids, 256);
	for (i = 0; i < n && i < 256; i++)
		printf("peer %u %u\n", ids[i], ivs_client_peer_vectors(&c, ids[i]));
	while (time(NULL) < end) {
		ret = ivs_client_next_event(&c, &ev, 200);
		if (ret < 0) {
			printf("error %s\n", ivs_client_error(&c));
			return 1;
		}
		if (ret == 0)
			continue;
		if (ev.type == IVS_CLIENT_EV_PEER_GONE) {
			printf("gone %u\n", ev.peer_id);
			continue;
		}
		printf("connect %u %u\n", ev.peer_id, ev.vector);
		if (ring && ev.vector == vectors - 1)
			for (i = 0; i < vectors; i++)
				probe_ring(&c, ev.peer_id, (unsigned)i);
	}
	ivs_client_close(&c);
	return 0;
}
