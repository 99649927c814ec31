/*
 * unit_xport - the framing of the other transports (common/xport.c) over
 * real UNIX sockets and pipes: a frame many times the socket buffer carried
 * whole through short writes and reads, a corrupted payload detected, a
 * peer that closes mid-frame, a header that is not one, a length beyond the
 * buffer, and a silent peer that is a timeout, never a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"
#include "xport.h"

#define BIG (4u << 20)

struct reader {
	int fd;
	uint8_t *buf;
	struct ivb_xport_hdr h;
	int rc;
};

static void *read_one(void *arg)
{
	struct reader *r = arg;

	r->rc = ivb_xport_recv(r->fd, &r->h, r->buf, BIG, ivb_now_ns() + 10000000000ull);
	return NULL;
}

static void pair(int sv[2], int sndbuf)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		exit(1);
	if (sndbuf)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	ivb_xport_nonblock(sv[0]);
	ivb_xport_nonblock(sv[1]);
}

static void test_big_frame(void)
{
	int sv[2];
	uint8_t *src = malloc(BIG);
	struct reader r = { .buf = malloc(BIG) };
	pthread_t t;
	uint32_t i;

	pair(sv, 4096);
	for (i = 0; i < BIG; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	r.fd = sv[1];
	pthread_create(&t, NULL, read_one, &r);
	CHECKF(ivb_xport_send(sv[0], IVB_XF_DATA, 0, 42, src, BIG, IVB_VERIFY_XXH3,
			      ivb_now_ns() + 10000000000ull) == 0, "a 4 MiB frame written through a 4 KiB buffer");
	pthread_join(t, NULL);
	CHECKF(r.rc == 0 && r.h.seq == 42 && r.h.len == BIG && !memcmp(src, r.buf, BIG),
	       "read whole, its check matching (rc %d)", r.rc);
	close(sv[0]);
	close(sv[1]);
	free(src);
	free(r.buf);
}

static void test_corrupt_payload(void)
{
	int sv[2];
	uint8_t msg[100], out[100];
	struct ivb_xport_hdr h = { .magic = IVB_XPORT_MAGIC, .type = IVB_XF_DATA,
				   .verify = IVB_VERIFY_XXH3, .len = sizeof(msg), .seq = 5 };

	pair(sv, 0);
	memset(msg, 0x33, sizeof(msg));
	ivb_verify_compute(IVB_VERIFY_XXH3, 5, msg, sizeof(msg), h.check);
	msg[60] ^= 1; /* a byte flipped on the way */
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h) && write(sv[0], msg, sizeof(msg)) == sizeof(msg));
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == 1,
	       "a flipped payload byte fails the check, and the frame is read");
	/* The stream goes on: the next frame is whole. */
	msg[60] ^= 1;
	CHECK(ivb_xport_send(sv[0], IVB_XF_DATA, 0, 6, msg, sizeof(msg), IVB_VERIFY_XXH3,
			     ivb_now_ns() + 1000000000ull) == 0);
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == 0 &&
	       h.seq == 6, "the next frame arrives whole");
	close(sv[0]);
	close(sv[1]);
}

static void test_close_mid_frame(void)
{
	int sv[2];
	uint8_t msg[1000] = { 0 }, out[1000];
	struct ivb_xport_hdr h = { .magic = IVB_XPORT_MAGIC, .type = IVB_XF_DATA,
				   .verify = IVB_VERIFY_NONE, .len = sizeof(msg) };

	pair(sv, 0);
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h) && write(sv[0], msg, 10) == 10);
	close(sv[0]);
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == -EPIPE,
	       "a peer that closes after 10 of 1000 bytes: -EPIPE");
	close(sv[1]);
	/* Writing to a closed peer: -EPIPE, not SIGPIPE. */
	pair(sv, 0);
	close(sv[1]);
	CHECKF(ivb_xport_send(sv[0], IVB_XF_DATA, 0, 0, msg, sizeof(msg), IVB_VERIFY_NONE,
			      ivb_now_ns() + 1000000000ull) == -EPIPE, "writing to a closed peer: -EPIPE");
	close(sv[0]);
}

static void test_bad_headers(void)
{
	int sv[2];
	uint8_t out[64];
	struct ivb_xport_hdr h = { .magic = 0x12345678, .type = IVB_XF_DATA, .len = 8 };

	pair(sv, 0);
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h));
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == -EBADMSG,
	       "a bad magic: -EBADMSG");
	h = (struct ivb_xport_hdr){ .magic = IVB_XPORT_MAGIC, .type = 99 };
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h));
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == -EBADMSG,
	       "an unknown type: -EBADMSG");
	h = (struct ivb_xport_hdr){ .magic = IVB_XPORT_MAGIC, .type = IVB_XF_DATA, .len = 65 };
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h));
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == -EMSGSIZE,
	       "a length beyond the buffer: -EMSGSIZE, nothing read past it");
	h = (struct ivb_xport_hdr){ .magic = IVB_XPORT_MAGIC, .type = IVB_XF_DATA, .len = UINT32_MAX };
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h));
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), ivb_now_ns() + 1000000000ull) == -EMSGSIZE,
	       "a 4 GiB length: -EMSGSIZE");
	close(sv[0]);
	close(sv[1]);
}

static void test_silent_peer(void)
{
	int sv[2];
	uint8_t out[64];
	struct ivb_xport_hdr h;
	uint64_t t0 = ivb_now_ns();
	int rc;

	pair(sv, 0);
	rc = ivb_xport_recv(sv[1], &h, out, sizeof(out), t0 + 200000000ull);
	CHECKF(rc == -ETIMEDOUT && ivb_now_ns() - t0 < 1500000000ull,
	       "a silent peer: -ETIMEDOUT at the deadline (%.0f ms)", (double)(ivb_now_ns() - t0) / 1e6);
	/* Half a header, then silence: still a timeout. */
	CHECK(write(sv[0], "xbrt", 4) == 4);
	t0 = ivb_now_ns();
	CHECKF(ivb_xport_recv(sv[1], &h, out, sizeof(out), t0 + 200000000ull) == -ETIMEDOUT,
	       "half a header then silence: -ETIMEDOUT");
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_big_frame);
	RUN(test_corrupt_payload);
	RUN(test_close_mid_frame);
	RUN(test_bad_headers);
	RUN(test_silent_peer);
	return check_done("unit_xport");
}
