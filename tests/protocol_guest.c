/*
 * protocol_guest - guest_reader's protocol state machine, driven message by
 * message from this process acting as the host, over a shared-memory file:
 * the two-phase acknowledgement, every error state, garbage in the header,
 * and that the guest survives all of it and serves the next session.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "check.h"
#include "ivshmem_abi.h"
#include "shm_map.h"
#include "timing.h"

#define SHM_SIZE (4u << 20)
#define WAIT_NS 5000000000ull

static struct ivb_header *hdr;
static uint8_t *base;
static uint64_t seq;


/* Open session s with a valid identity line; wait for the attach. */
static uint64_t attach_session(uint64_t s, uint64_t payload_offset, uint32_t mode)
{
	uint64_t end = ivb_now_ns() + WAIT_NS;

	ivb_store_release(&hdr->session_id, 0);
	ivb_store_release(&hdr->seq, 0);
	seq = 0;
	hdr->magic = IVB_MAGIC;
	hdr->layout_version = IVB_LAYOUT_VERSION;
	hdr->header_size = sizeof(*hdr);
	hdr->shm_size = SHM_SIZE;
	hdr->payload_offset = payload_offset;
	hdr->payload_capacity = SHM_SIZE - payload_offset;
	hdr->mode = mode;
	hdr->host_peer_id = IVB_NO_PEER;
	ivb_store_release(&hdr->session_id, s);
	while (ivb_load_acquire(&hdr->attached_session) != s)
		if (ivb_now_ns() > end)
			return 0;
	return ivb_load_acquire(&hdr->ack);
}

/* Post a message and return the final ack state (NONE on timeout). */
static enum ivb_state send(uint32_t command, uint64_t size, const uint8_t *digest)
{
	uint64_t end = ivb_now_ns() + WAIT_NS;

	hdr->command = command;
	hdr->payload_size = size;
	if (digest)
		memcpy(hdr->check, digest, IVB_CHECK_LEN);
	ivb_store_release(&hdr->seq, ++seq);
	while (ivb_now_ns() < end) {
		uint64_t a = ivb_load_acquire(&hdr->ack);

		if (ivb_ack_seq(a) == seq && ivb_ack_state(a) >= IVB_STATE_PROCESSED)
			return ivb_ack_state(a);
	}
	return IVB_STATE_NONE;
}

int main(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char shm[] = "/dev/shm/ivb-test-XXXXXX", reader[512], err[256];
	uint8_t digest[32], garbage[128];
	struct ivb_map map;
	pid_t pid;
	int fd, status;

	fd = mkstemp(shm);
	if (fd < 0 || ftruncate(fd, SHM_SIZE) < 0)
		return perror("shm"), 1;
	close(fd);
	if (ivb_map_file(shm, SHM_SIZE, 0, &map, err, sizeof(err)))
		return printf("%s\n", err), 1;
	hdr = map.base;
	base = map.base;
	snprintf(reader, sizeof(reader), "%s/guest_reader", build);
	pid = fork();
	if (pid == 0) {
		execl(reader, reader, "--shm", shm, "--silence", "20s", "--idle-exit", "30s", (char *)NULL);
		perror(reader);
		_exit(127);
	}

	/* A normal session: ping, a verified frame, then every error. */
	CHECK(ivb_ack_state(attach_session(0x1111, IVB_PAYLOAD_OFFSET, IVB_MODE_PLAIN)) == IVB_STATE_NONE);
	CHECK(hdr->guest_version == IVB_LAYOUT_VERSION && hdr->guest_map_size == SHM_SIZE);
	CHECK(hdr->guest_pid == (uint32_t)pid);
	CHECK(send(IVB_CMD_PING, 0, NULL) == IVB_STATE_PROCESSED && hdr->error_code == IVB_OK);
	ivb_random(base + IVB_PAYLOAD_OFFSET, 100000);
	ivb_sha256(base + IVB_PAYLOAD_OFFSET, 100000, digest);
	CHECK(send(IVB_CMD_FRAME, 100000, digest) == IVB_STATE_PROCESSED);
	CHECK(hdr->guest_hash_ns > 0);
	/* The whole digest comes back as proof that the payload was hashed. */
	CHECK(memcmp(hdr->guest_digest, digest, sizeof(digest)) == 0);
	base[IVB_PAYLOAD_OFFSET + 5000] ^= 0x80; /* one flipped bit */
	CHECK(send(IVB_CMD_FRAME, 100000, digest) == IVB_STATE_ERROR && hdr->error_code == IVB_ERR_DIGEST);
	CHECK(send(IVB_CMD_FRAME, 0, digest) == IVB_STATE_ERROR && hdr->error_code == IVB_ERR_BAD_SIZE);
	CHECK(send(IVB_CMD_FRAME, SHM_SIZE - IVB_PAYLOAD_OFFSET + 1, digest) == IVB_STATE_ERROR &&
	      hdr->error_code == IVB_ERR_BAD_SIZE);
	CHECK(send(IVB_CMD_FRAME, UINT64_MAX, digest) == IVB_STATE_ERROR &&
	      hdr->error_code == IVB_ERR_BAD_SIZE);
	CHECK(send(77, 0, NULL) == IVB_STATE_ERROR && hdr->error_code == IVB_ERR_BAD_COMMAND);
	CHECK(send(IVB_CMD_PING, 0, NULL) == IVB_STATE_PROCESSED);
	CHECK(send(IVB_CMD_STOP, 0, NULL) == IVB_STATE_PROCESSED);

	/* Garbage over the whole header: refused with bad_header, no crash. */
	ivb_random(garbage, sizeof(garbage));
	memcpy(hdr, garbage, sizeof(garbage));
	{
		uint64_t s = hdr->session_id, end = ivb_now_ns() + WAIT_NS;

		while (s && ivb_load_acquire(&hdr->attached_session) != s && ivb_now_ns() < end)
			;
		CHECK(!s || (ivb_ack_state(hdr->ack) == IVB_STATE_ERROR &&
			     hdr->error_code == IVB_ERR_BAD_HEADER));
	}
	/* A payload offset outside the mapping is refused too. */
	CHECK(ivb_ack_state(attach_session(0x2222, SHM_SIZE + 4096, IVB_MODE_PLAIN)) == IVB_STATE_ERROR);
	CHECK(hdr->error_code == IVB_ERR_BAD_HEADER);
	/* A doorbell session offered to a polling guest: mode mismatch. */
	CHECK(ivb_ack_state(attach_session(0x2223, IVB_PAYLOAD_OFFSET, IVB_MODE_DOORBELL)) == IVB_STATE_ERROR);
	CHECK(hdr->error_code == IVB_ERR_MODE);
	CHECK(kill(pid, 0) == 0);

	/* And the next valid session is served as if nothing happened. */
	CHECK(ivb_ack_state(attach_session(0x3333, IVB_PAYLOAD_OFFSET, IVB_MODE_PLAIN)) == IVB_STATE_NONE);
	CHECK(send(IVB_CMD_PING, 0, NULL) == IVB_STATE_PROCESSED);
	CHECK(send(IVB_CMD_STOP, 0, NULL) == IVB_STATE_PROCESSED);

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	munmap(map.base, map.size);
	unlink(shm);
	return check_done("protocol_guest");
}
