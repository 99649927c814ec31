/*
 * unit_ring - the message ring of common/ring.c: indices that wrap past
 * 2^64, a one-slot ring, message sizes that are not multiples of 8,
 * impossible indices from a broken or hostile other side (in every load:
 * peek, reserve, the waits, the consumed count, the end marker), a wait
 * that ends when the watched session word changes,
 * corruption by a third process detected with its sequence number, and
 * notification suppression that never loses a wake-up (two threads on real
 * eventfds, alternating sleep and burst thousands of times, under a
 * deadline).
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ring.h"

#define MAP_BYTES (1u << 20)

static uint8_t *region(void)
{
	void *p = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static const struct ivb_ring_geometry small = { .offset = IVB_PAYLOAD_OFFSET, .nslots = 4,
						.slot_size = 128 };

static int send_one(struct ivb_ring *tx, uint64_t seq, uint32_t len)
{
	uint8_t msg[64];
	struct ivb_slot_header *s = ivb_ring_reserve(tx);

	if (!s)
		return -1;
	memset(msg, (int)(seq & 0xff), sizeof(msg));
	if (ivb_message_write(s, seq, msg, len, IVB_VERIFY_XXH3))
		return -1;
	ivb_ring_commit(tx);
	return 0;
}

static int recv_one(struct ivb_ring *rx, uint32_t len)
{
	uint8_t msg[64];
	const struct ivb_slot_header *s = ivb_ring_peek(rx);
	int rc;

	if (!s)
		return -1;
	rc = ivb_message_read(s, rx->slot_size, rx->local, len, IVB_VERIFY_XXH3, msg, sizeof(msg));
	ivb_ring_release(rx);
	return rc;
}

static void test_geometry(void)
{
	struct ivb_ring_geometry g = small;

	CHECK(ivb_ring_geometry_ok(&g, MAP_BYTES) == 0);
	g.nslots = 3;
	CHECK(ivb_ring_geometry_ok(&g, MAP_BYTES) == -1);
	g = small;
	g.slot_size = 100;
	CHECK(ivb_ring_geometry_ok(&g, MAP_BYTES) == -1);
	g = small;
	g.offset = MAP_BYTES - 256;
	CHECK(ivb_ring_geometry_ok(&g, MAP_BYTES) == -1);
	g = small;
	g.nslots = 1ull << 40;
	CHECK(ivb_ring_geometry_ok(&g, MAP_BYTES) == -1);
	g = small;
	g.offset = 0; /* over the session header */
	CHECK(ivb_ring_geometry_ok(&g, MAP_BYTES) == -1);
}

static void test_wrap_around(void)
{
	uint8_t *base = region();
	struct ivb_waiter w;
	struct ivb_ring tx, rx;
	uint64_t start = UINT64_MAX - 9, i;
	int bad = 0;

	ivb_waiter_poll(&w);
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 2, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	/* Both sides as if 2^64 - 10 messages had gone through already. */
	tx.ctl->head = tx.ctl->tail = start;
	tx.local = tx.published = tx.other = start;
	rx.local = rx.other = start;
	for (i = 0; i < 40; i++) {
		bad |= send_one(&tx, tx.local, 16) != 0;
		ivb_ring_flush(&tx);
		bad |= recv_one(&rx, 16) != 0;
	}
	CHECK(!bad);
	CHECK(tx.ctl->head == start + 40 && tx.ctl->tail == start + 40); /* wrapped past zero */
	/* Full detection across the wrap: four slots, then no room. */
	for (i = 0; i < 4; i++)
		bad |= send_one(&tx, tx.local, 16) != 0;
	CHECK(!bad && ivb_ring_reserve(&tx) == NULL);
	CHECK(recv_one(&rx, 16) == 0 && ivb_ring_reserve(&tx) != NULL);
	munmap(base, MAP_BYTES);
}

static void test_one_slot(void)
{
	struct ivb_ring_geometry g = { .offset = IVB_PAYLOAD_OFFSET, .nslots = 1, .slot_size = 128 };
	uint8_t *base = region();
	struct ivb_waiter w;
	struct ivb_ring tx, rx;
	int i, ok = 1;

	ivb_waiter_poll(&w);
	ivb_ring_init(&tx, base, &g, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &g, &w, IVB_NO_PEER, 1, 0);
	for (i = 0; i < 100; i++) {
		ok &= send_one(&tx, tx.local, 64) == 0;
		ok &= ivb_ring_reserve(&tx) == NULL; /* full with one message */
		ok &= recv_one(&rx, 64) == 0;
		ok &= ivb_ring_peek(&rx) == NULL;
	}
	CHECK(ok);
	munmap(base, MAP_BYTES);
}

static void test_odd_sizes(void)
{
	static const uint32_t sizes[] = { 1, 3, 7, 13, 33, 61, 64 };
	uint8_t *base = region();
	struct ivb_waiter w;
	struct ivb_ring tx, rx;
	size_t i;

	ivb_waiter_poll(&w);
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECKF(send_one(&tx, tx.local, sizes[i]) == 0 && recv_one(&rx, sizes[i]) == 0,
		       "%u-byte message goes through", sizes[i]);
		/* The last byte, not a multiple of 8 in, is covered by the check. */
		send_one(&tx, tx.local, sizes[i]);
		((uint8_t *)ivb_ring_peek(&rx))[IVB_SLOT_HEADER + sizes[i] - 1] ^= 0x40;
		CHECKF(recv_one(&rx, sizes[i]) == -1, "%u-byte message with its last byte flipped is caught",
		       sizes[i]);
	}
	/* A wrong length, sequence number or kind of check is refused too. */
	send_one(&tx, tx.local, 16);
	CHECK(recv_one(&rx, 17) == -1);
	send_one(&tx, tx.local + 1, 16);
	CHECK(recv_one(&rx, 16) == -1);
	munmap(base, MAP_BYTES);
}

static void test_impossible_index(void)
{
	uint8_t *base = region();
	struct ivb_waiter w;
	struct ivb_ring tx, rx;

	ivb_waiter_poll(&w);
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	tx.ctl->head = 1000; /* far more than a ring ahead: no producer wrote that */
	CHECK(ivb_ring_peek(&rx) == NULL && ivb_ring_broken(&rx));
	tx.ctl->head = 0;
	send_one(&tx, 0, 8);
	send_one(&tx, 1, 8);
	send_one(&tx, 2, 8);
	send_one(&tx, 3, 8);
	tx.ctl->tail = 77; /* a consumer ahead of the producer */
	CHECK(ivb_ring_reserve(&tx) == NULL && ivb_ring_broken(&tx));
	munmap(base, MAP_BYTES);
}

/* Each index the other side writes, forged every way a hostile peer could. */
static void test_forged_indices(void)
{
	uint8_t *base = region();
	struct ivb_waiter w;
	struct ivb_ring tx, rx;
	uint64_t session = 42;

	ivb_waiter_poll(&w);

	/* A huge head while the consumer waits: the wait ends at once, nothing is consumed. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	tx.ctl->head = UINT64_MAX / 3;
	CHECK(ivb_ring_wait_message(&rx, ivb_now_ns() + 2000000000ull) == -EPROTO);
	CHECK(ivb_ring_broken(&rx) && rx.other == 0 && ivb_ring_peek(&rx) == NULL);
	tx.ctl->head = 1; /* a good value afterwards does not mend it */
	CHECK(ivb_ring_peek(&rx) == NULL && ivb_ring_wait_message(&rx, 0) == -EPROTO);

	/* A head that goes backwards. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	send_one(&tx, 0, 8);
	send_one(&tx, 1, 8);
	CHECK(recv_one(&rx, 8) == 0);
	tx.ctl->head = 1; /* we saw 2 */
	CHECK(recv_one(&rx, 8) == 0); /* message 1 was seen published: still ours */
	CHECK(ivb_ring_peek(&rx) == NULL && ivb_ring_broken(&rx));

	/* A head exactly one ring ahead is fine; one more is not. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	tx.ctl->head = small.nslots;
	CHECK(ivb_ring_peek(&rx) != NULL && !ivb_ring_broken(&rx));
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	tx.ctl->head = small.nslots + 1;
	CHECK(ivb_ring_peek(&rx) == NULL && ivb_ring_broken(&rx));

	/* An end marker below what was published, or below what was consumed. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	send_one(&tx, 0, 8);
	send_one(&tx, 1, 8);
	CHECK(recv_one(&rx, 8) == 0);
	tx.ctl->end = 1; /* two were published */
	CHECK(ivb_ring_drained(&rx) == 1 && ivb_ring_broken(&rx));
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	send_one(&tx, 0, 8);
	CHECK(recv_one(&rx, 8) == 0);
	tx.ctl->end = 1; /* the true end: drained, not broken */
	CHECK(ivb_ring_drained(&rx) == 1 && !ivb_ring_broken(&rx));

	/* The consumer's tail backwards, or beyond what was published: the count never moves wrongly. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	send_one(&tx, 0, 8);
	send_one(&tx, 1, 8);
	CHECK(recv_one(&rx, 8) == 0 && recv_one(&rx, 8) == 0 && ivb_ring_peek(&rx) == NULL);
	CHECK(ivb_ring_consumed(&tx) == 2);
	tx.ctl->tail = 1;
	CHECK(ivb_ring_consumed(&tx) == 2 && ivb_ring_broken(&tx));
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	send_one(&tx, 0, 8);
	tx.ctl->tail = UINT64_MAX - 5; /* "consumed" ~2^64 messages */
	CHECK(ivb_ring_consumed(&tx) == 0 && ivb_ring_broken(&tx));
	CHECK(ivb_ring_wait_room(&tx, ivb_now_ns() + 2000000000ull) == -EPROTO);

	/* A tail forged while the producer waits for room. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	while (send_one(&tx, tx.local, 8) == 0)
		;
	tx.ctl->tail = 1000;
	CHECK(ivb_ring_wait_room(&tx, ivb_now_ns() + 2000000000ull) == -EPROTO);

	/* The watched word: a wait with nothing to come ends when it changes. */
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	ivb_ring_watch(&rx, &session, 42);
	CHECK(ivb_ring_wait_message(&rx, ivb_now_ns() + 1000000ull) == -ETIMEDOUT);
	session = 43;
	CHECK(ivb_ring_wait_message(&rx, ivb_now_ns() + 2000000000ull) == -ECANCELED);
	munmap(base, MAP_BYTES);
}

static void test_third_process(void)
{
	uint8_t *base = region();
	struct ivb_waiter w;
	struct ivb_ring tx, rx;
	uint64_t bad_seq = UINT64_MAX, i;
	pid_t pid;
	int status;

	ivb_waiter_poll(&w);
	ivb_ring_init(&tx, base, &small, &w, IVB_NO_PEER, 1, 1);
	ivb_ring_init(&rx, base, &small, &w, IVB_NO_PEER, 1, 0);
	for (i = 0; i < 3; i++)
		send_one(&tx, tx.local, 48);
	pid = fork();
	if (pid == 0) { /* a third process with the memory mapped: flip a byte of message 1 */
		base[small.offset + IVB_RING_CTL_SIZE + 1 * small.slot_size + IVB_SLOT_HEADER + 20] ^= 1;
		_exit(0);
	}
	waitpid(pid, &status, 0);
	for (i = 0; i < 3; i++)
		if (recv_one(&rx, 48) && bad_seq == UINT64_MAX)
			bad_seq = i;
	CHECKF(bad_seq == 1, "the corrupted message is found, with its sequence number (%llu)",
	       (unsigned long long)bad_seq);
	munmap(base, MAP_BYTES);
}

/* ---- suppression: a doorbell backend over two real eventfds ---- */

struct efd_pair {
	int mine, theirs;
};

static int efd_sleep(void *ctx, uint64_t timeout_ns)
{
	struct efd_pair *p = ctx;
	struct pollfd pfd = { .fd = p->mine, .events = POLLIN };
	uint64_t v;

	if (poll(&pfd, 1, (int)(timeout_ns / 1000000ull) + 1) <= 0)
		return 0;
	return read(p->mine, &v, sizeof(v)) == sizeof(v);
}

static void efd_notify(void *ctx, uint32_t peer)
{
	struct efd_pair *p = ctx;
	uint64_t one = 1;

	(void)peer;
	if (write(p->theirs, &one, sizeof(one)) != sizeof(one))
		abort();
}

static int efd_known(void *ctx, uint32_t peer)
{
	(void)ctx, (void)peer;
	return 1;
}

static const struct ivb_waiter_ops efd_ops = { "test-eventfd", efd_sleep, efd_notify, efd_known };

#define BURSTS 3000

struct consumer {
	uint8_t *base;
	struct efd_pair fds;
	uint64_t got, bad;
	int rc;
};

static void *consume(void *arg)
{
	struct consumer *c = arg;
	struct ivb_waiter w = { .ops = &efd_ops, .ctx = &c->fds, .spin_ns = 0, .self_id = 1 };
	struct ivb_ring rx;
	uint8_t msg[64];

	ivb_ring_init(&rx, c->base, &small, &w, 0, 1, 0);
	for (;;) {
		const struct ivb_slot_header *s = ivb_ring_peek(&rx);

		if (!s) {
			if (ivb_ring_drained(&rx))
				return NULL;
			if ((c->rc = ivb_ring_wait_message(&rx, ivb_now_ns() + 5000000000ull)) != 0)
				return NULL;
			continue;
		}
		c->bad += ivb_message_read(s, rx.slot_size, rx.local, 24, IVB_VERIFY_XXH3, msg,
					   sizeof(msg)) != 0;
		ivb_ring_release(&rx);
		c->got++;
	}
}

static void test_no_lost_wakeup(void)
{
	struct consumer c = { .base = region() };
	struct efd_pair mine;
	struct ivb_waiter w = { .ops = &efd_ops, .ctx = &mine, .spin_ns = 0, .self_id = 0 };
	struct ivb_ring tx;
	uint64_t sent = 0, t0 = ivb_now_ns();
	pthread_t t;
	int i, k, rc = 0;

	c.fds.mine = eventfd(0, EFD_NONBLOCK);
	c.fds.theirs = eventfd(0, EFD_NONBLOCK);
	mine = (struct efd_pair){ c.fds.theirs, c.fds.mine };
	ivb_ring_init(&tx, c.base, &small, &w, 1, 2, 1);
	pthread_create(&t, NULL, consume, &c);
	srand(7);
	for (i = 0; i < BURSTS && !rc; i++) {
		int n = 1 + rand() % 9; /* bursts longer than the ring make the producer wait too */

		for (k = 0; k < n && !rc; k++) {
			while (!ivb_ring_reserve(&tx) && !rc)
				rc = ivb_ring_wait_room(&tx, ivb_now_ns() + 5000000000ull);
			if (!rc) {
				uint8_t msg[24] = { 0 };
				struct ivb_slot_header *s = ivb_ring_reserve(&tx);

				ivb_message_write(s, tx.local, msg, sizeof(msg), IVB_VERIFY_XXH3);
				ivb_ring_commit(&tx);
				sent++;
			}
		}
		ivb_ring_flush(&tx);
		if (rand() % 2)
			usleep((useconds_t)(rand() % 50)); /* let the consumer fall asleep */
	}
	ivb_ring_finish(&tx, tx.local);
	pthread_join(t, NULL);
	CHECKF(rc == 0 && c.rc == 0, "no side timed out waiting (producer %d, consumer %d)", rc, c.rc);
	CHECKF(c.got == sent && c.bad == 0, "all %llu messages arrived whole (%llu, %llu bad)",
	       (unsigned long long)sent, (unsigned long long)c.got, (unsigned long long)c.bad);
	CHECKF(w.rings < sent, "the producer rang %llu times for %llu messages (suppressed)",
	       (unsigned long long)w.rings, (unsigned long long)sent);
	printf("    %d bursts, %llu messages in %.2f s, %llu rings from the producer\n", BURSTS,
	       (unsigned long long)sent, (double)(ivb_now_ns() - t0) / 1e9,
	       (unsigned long long)w.rings);
	close(c.fds.mine);
	close(c.fds.theirs);
	munmap(c.base, MAP_BYTES);
}

int main(void)
{
	RUN(test_geometry);
	RUN(test_wrap_around);
	RUN(test_one_slot);
	RUN(test_odd_sizes);
	RUN(test_impossible_index);
	RUN(test_forged_indices);
	RUN(test_third_process);
	RUN(test_no_lost_wakeup);
	return check_done("unit_ring");
}
