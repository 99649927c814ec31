/*
 * unit_abi - the shared-memory ABI: layout, ack word packing and names.
 * The offsets are pinned at compile time too; this checks them at run time
 * against what a reader of the header expects, and that host-written and
 * guest-written fields never share a cache line.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ivshmem_abi.h"



static unsigned line_of(size_t offset) { return (unsigned)(offset / IVB_CACHE_LINE); }

int main(void)
{
	/* Host-written fields are on lines 0-1, guest-written on lines 2-3. */
	size_t host[] = { offsetof(struct ivb_header, magic), offsetof(struct ivb_header, host_peer_id),
			  offsetof(struct ivb_header, session_id), offsetof(struct ivb_header, seq),
			  offsetof(struct ivb_header, check) + IVB_CHECK_LEN - 1 };
	size_t guest[] = { offsetof(struct ivb_header, ack), offsetof(struct ivb_header, guest_hash_ns),
			   offsetof(struct ivb_header, guest_digest) + IVB_SHA256_LEN - 1,
			   offsetof(struct ivb_header, attached_session),
			   offsetof(struct ivb_header, guest_wait) };
	size_t i;

	CHECK(sizeof(struct ivb_header) == 256);
	for (i = 0; i < sizeof(host) / sizeof(host[0]); i++)
		CHECK(line_of(host[i]) <= 1);
	for (i = 0; i < sizeof(guest) / sizeof(guest[0]); i++)
		CHECK(line_of(guest[i]) >= 2);
	/* Every hand-off word is naturally aligned, so its stores are atomic. */
	CHECK(offsetof(struct ivb_header, session_id) % 8 == 0);
	CHECK(offsetof(struct ivb_header, seq) % 8 == 0);
	CHECK(offsetof(struct ivb_header, ack) % 8 == 0);
	CHECK(offsetof(struct ivb_header, attached_session) % 8 == 0);
	CHECK(IVB_PAYLOAD_OFFSET % 4096 == 0);

	/* The ack word keeps sequence and state apart, for large sequences too. */
	CHECK(ivb_ack_seq(ivb_ack_make(1, IVB_STATE_RECEIVED)) == 1);
	CHECK(ivb_ack_state(ivb_ack_make(1, IVB_STATE_RECEIVED)) == IVB_STATE_RECEIVED);
	CHECK(ivb_ack_seq(ivb_ack_make(0xffffffffffffull, IVB_STATE_ERROR)) == 0xffffffffffffull);
	CHECK(ivb_ack_state(ivb_ack_make(0xffffffffffffull, IVB_STATE_ERROR)) == IVB_STATE_ERROR);
	CHECK(ivb_ack_make(7, IVB_STATE_PROCESSED) != ivb_ack_make(7, IVB_STATE_RECEIVED));

	/* Release/acquire helpers store and load the whole word. */
	{
		uint64_t word = 0;

		ivb_store_release(&word, 0x0123456789abcdefull);
		CHECK(ivb_load_acquire(&word) == 0x0123456789abcdefull);
	}

	/* Every enum value has a name; out-of-range values are marked. */
	CHECK(!strcmp(ivb_state_name(IVB_STATE_PROCESSED), "PROCESSED"));
	CHECK(!strcmp(ivb_state_name(99), "INVALID"));
	CHECK(!strcmp(ivb_error_name(IVB_ERR_DIGEST), "digest"));
	CHECK(!strcmp(ivb_error_name(1234), "invalid"));
	for (i = 0; i < IVB_ERR__COUNT; i++)
		CHECK(strcmp(ivb_error_name((uint32_t)i), "invalid") != 0);
	CHECK(!strcmp(ivb_command_name(IVB_CMD_FRAME), "frame"));
	CHECK(!strcmp(ivb_mode_name(IVB_MODE_DOORBELL), "doorbell"));

	return check_done("unit_abi");
}
