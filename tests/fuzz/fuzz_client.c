/*
 * fuzz_client - libFuzzer target: the doorbell client (server/ivshmem_client.c)
 * against anything a server could send it.
 *
 * The input is a script for the server's end of a socketpair:
 *   byte 0        the vectors the client expects: 1..4 mostly, sometimes
 *                 0, 64 or 65 (out of range, refused)
 *   then records of 9 bytes: a flag byte and an 8-byte little-endian message
 *     flag bit 0  send an fd with it (an eventfd)
 *     flag bit 1  send a second fd with it (the client must refuse both)
 *     flag bit 2  send it in two pieces, split after 1..7 bytes
 *     flag bit 3  the message is the flag's high nibble minus 2 (-2..13),
 *                 not the 8 bytes: small ids and -1 come often
 * Every record is written before the client runs (at most FUZZ_MAX_RECORDS,
 * which fit in a socket buffer), then the server's end is closed. The client
 * runs its handshake (ivs_client_attach), then takes notices until the end
 * of the stream, ringing every peer it knows after each one.
 *
 * What must hold, besides no crash and no sanitizer report: once the client
 * is closed no fd it received is left open. A violation aborts, which
 * libFuzzer reports as a crash.
 */
#include "../fds.h"
#include "ivshmem_client.h"
#include "ivshmem_proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_RECORD 9
#define FUZZ_MAX_RECORDS 96      /* ~1 KiB of socket buffer each, with its fd */
#define FUZZ_MAX_EVENTS 1000     /* notices taken per input, at most */

/* Write the records of the script to the server's end. */
static void fuzz_play_server(int sock, const uint8_t *data, size_t size)
{
	size_t n = 0;

	for (; size >= FUZZ_RECORD && n < FUZZ_MAX_RECORDS; data += FUZZ_RECORD, size -= FUZZ_RECORD, n++) {
		uint8_t flags = data[0];
		unsigned n_fds = (flags & 1) + ((flags & 1) && (flags & 2));
		uint64_t wire;
		size_t split;

		if (flags & 8)
			wire = ivs_proto_encode((int64_t)(flags >> 4) - 2);
		else
			memcpy(&wire, data + 1, sizeof(wire));
		if (flags & 4) {
			split = 1 + (size_t)(flags >> 4) % 7;
			if (fds_send(sock, &wire, split, n_fds) < 0 ||
			    fds_send(sock, (char *)&wire + split, sizeof(wire) - split, 0) < 0)
				return;
		} else if (fds_send(sock, &wire, sizeof(wire), n_fds) < 0) {
			return;
		}
	}
}

/* What a program does with a client: look at its peers, ring them, wait. */
static void fuzz_use_client(struct ivs_client *c)
{
	unsigned ids[8], v;
	size_t n, i;

	n = ivs_client_peers(c, ids, 8);
	for (i = 0; i < n && i < 8; i++)
		for (v = 0; v < ivs_client_peer_vectors(c, ids[i]); v++)
			ivs_client_notify(c, ids[i], v);
	ivs_client_notify(c, ivs_client_id(c), 0);
	ivs_client_wait(c, 0, 0, NULL);
	(void)ivs_client_eventfd(c, c->n_vectors - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ivs_client c;
	struct ivs_client_event ev;
	unsigned n_vectors;
	int sv[2], fds_before, ret, i;

	if (size < 1)
		return 0;
	n_vectors = data[0] == 0xff ? 65 : data[0] == 0xfe ? 64 : data[0] == 0xfd ? 0 : 1u + data[0] % 4;
	fds_before = fds_count();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fprintf(stderr, "fuzz_client: socketpair: %s\n", strerror(errno));
		abort();
	}
	fuzz_play_server(sv[0], data + 1, size - 1);
	close(sv[0]); /* the client sees the end of the stream after the script */

	if (ivs_client_attach(&c, sv[1], n_vectors, 0) == 0) {
		fuzz_use_client(&c);
		for (i = 0; i < FUZZ_MAX_EVENTS; i++) {
			ret = ivs_client_next_event(&c, &ev, 0);
			if (ret == 1 || ret == -EPROTO) {
				fuzz_use_client(&c);
				continue;
			}
			break;
		}
	}
	ivs_client_close(&c);
	if (fds_count() != fds_before) {
		fprintf(stderr, "fuzz_client: %d fds open after the client closed, %d before\n",
			fds_count(), fds_before);
		abort();
	}
	return 0;
}
