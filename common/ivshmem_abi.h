/*
 * ivshmem_abi.h - the shared-memory layout between host_writer and
 * guest_reader.
 *
 * The first 256 bytes of the shared memory hold a header of four cache lines;
 * the payload (a frame) starts at payload_offset (one page in). Every field
 * is fixed-width and every offset is pinned below with _Static_assert, so
 * the host binary and the statically linked guest binary cannot disagree.
 *
 * Ownership: lines 0 and 1 are written only by the host, lines 2 and 3 only
 * by the guest. Every hand-off between the sides is a release store of one
 * 64-bit word (session_id or seq by the host, attached_session or ack by the
 * guest) matched by an acquire load on the other side, through the helpers
 * at the bottom of this file. The fields a side writes before such a store
 * are visible to the other side once it has loaded the word.
 *
 * A message exchange (the "two-phase acknowledgement"):
 *   host : write command, payload_size, check (and the payload),
 *          then release-store seq = N
 *   guest: acquire-load seq, copy the message fields once,
 *          release-store ack = N << 8 | RECEIVED
 *   guest: do the work (read and hash the payload),
 *          write error_code, timings and the digest it computed,
 *          release-store ack = N << 8 | PROCESSED (or ERROR)
 *   host : acquire-load ack until it carries N and a final state.
 * The sequence and the state share one word so neither side ever sees a
 * state belonging to another message. After answering a STOP the guest
 * writes closed_flags, then release-stores closed_session = the session,
 * and the host waits for it (guests that do so set IVB_GUEST_CLOSES in
 * guest_flags when attaching).
 *
 * Everything the guest reads from here is untrusted: it copies what it
 * needs once and checks sizes against its own mapping, never against the
 * sizes this header claims.
 *
 * A frame's proof of work: the host publishes only the first half of the
 * payload's SHA-256 (check, enough for the guest to verify the payload),
 * and the guest returns the whole digest it computed (guest_digest). An
 * ack of PROCESSED whose digest's second half does not match cannot have
 * come from a side that read and hashed the payload, so the host rejects
 * it; whoever can write the shared memory can still disturb a run, but can
 * no longer make it report a frame it never moved as verified.
 */
#ifndef IVSHMEM_ABI_H
#define IVSHMEM_ABI_H

#include <stddef.h>
#include <stdint.h>

#define IVB_MAGIC 0x3148434e45425649ULL /* "IVBENCH1" read as little-endian */
#define IVB_LAYOUT_VERSION 2u /* 2: check and guest_digest replace sha256 */
#define IVB_CACHE_LINE 64u
#define IVB_PAYLOAD_OFFSET 4096u /* payload starts one page in */
#define IVB_SHA256_LEN 32u
#define IVB_CHECK_LEN 16u /* bytes of the SHA-256 the host publishes */

/* PCI identity of both ivshmem devices (plain and doorbell). */
#define IVB_PCI_VENDOR 0x1af4u
#define IVB_PCI_DEVICE 0x1110u

/* Ack states, written by the guest. */
enum ivb_state {
	IVB_STATE_NONE = 0,      /* nothing acknowledged yet */
	IVB_STATE_RECEIVED = 1,  /* guest has the message, work not done */
	IVB_STATE_PROCESSED = 2, /* work done and verified */
	IVB_STATE_ERROR = 3,     /* work failed: error_code says why */
};

/* Commands, written by the host. */
enum ivb_command {
	IVB_CMD_NONE = 0,
	IVB_CMD_PING = 1,  /* latency probe: no payload */
	IVB_CMD_FRAME = 2, /* payload_size bytes at payload_offset, check SHA-256 */
	IVB_CMD_STOP = 3,  /* end of session: guest acks and detaches */
	IVB_CMD_STREAM = 4, /* a stream point: set-up in the payload area, rings after it */
	IVB_CMD_LIMITS = 5, /* a copy or hash loop run by the responder (workloads/limits.c) */
	IVB_CMD_CHAIN = 6,  /* a chain point: forward ring 0 onto ring 1 (workloads/chain.c) */
	IVB_CMD__COUNT
};

/* Error codes, in error_code when the state is ERROR. */
enum ivb_error {
	IVB_OK = 0,
	IVB_ERR_BAD_COMMAND = 1, /* unknown command */
	IVB_ERR_BAD_SIZE = 2,    /* payload does not fit the mapping */
	IVB_ERR_DIGEST = 3,      /* SHA-256 of the payload does not match */
	IVB_ERR_NO_MEMORY = 4,   /* guest could not allocate a frame buffer */
	IVB_ERR_CRYPTO = 5,      /* OpenSSL failed */
	IVB_ERR_BAD_HEADER = 6,  /* header fields inconsistent */
	IVB_ERR_MODE = 7,        /* host and guest disagree on plain/doorbell */
	IVB_ERR_STALLED = 8,     /* the other side stopped in the middle of a stream */
	IVB_ERR_BAD_INDEX = 9,   /* a ring index no real peer could have written */
	IVB_ERR_TOO_MANY_BAD = 10, /* so many bad messages that the rest cannot be trusted */
	IVB_ERR_SECOND_WRITER = 11, /* the ack word held a value this guest did not write */
	IVB_ERR__COUNT
};

/* Modes, in header.mode. */
enum ivb_mode {
	IVB_MODE_PLAIN = 0,    /* both sides poll */
	IVB_MODE_DOORBELL = 1, /* both sides block on interrupts / eventfds */
};

#define IVB_NO_PEER 0xffffffffu

struct ivb_header {
	/* ---- line 0: identity, host-written when a session starts ---- */
	uint64_t magic;            /* IVB_MAGIC */
	uint32_t layout_version;   /* IVB_LAYOUT_VERSION */
	uint32_t header_size;      /* sizeof(struct ivb_header) */
	uint64_t shm_size;         /* size of the shared memory, as the host maps it */
	uint64_t payload_offset;   /* IVB_PAYLOAD_OFFSET */
	uint64_t payload_capacity; /* shm_size - payload_offset */
	uint32_t mode;             /* enum ivb_mode */
	uint32_t host_peer_id;     /* doorbell: host's peer id, else IVB_NO_PEER */
	uint8_t pad0[16];

	/* ---- line 1: session and message, host-written ---- */
	uint64_t session_id;       /* non-zero while a session runs (release) */
	uint64_t seq;              /* message number, posted last (release) */
	uint32_t command;          /* enum ivb_command */
	uint32_t host_flags;       /* reserved, 0 */
	uint64_t payload_size;     /* bytes of payload for IVB_CMD_FRAME */
	uint8_t check[IVB_CHECK_LEN]; /* first half of the payload's SHA-256 */
	uint8_t pad1[16];

	/* ---- line 2: acknowledgement, guest-written ---- */
	uint64_t ack;              /* seq << 8 | enum ivb_state (release) */
	uint32_t error_code;       /* enum ivb_error for the acked message */
	uint32_t guest_flags;      /* IVB_GUEST_* bits, set when attaching */
	uint64_t guest_read_ns;    /* time to copy the payload out of shm */
	uint64_t guest_hash_ns;    /* time to hash the copied payload */
	uint8_t guest_digest[IVB_SHA256_LEN]; /* SHA-256 the guest computed (proof) */

	/* ---- line 3: guest identity, guest-written ---- */
	uint64_t attached_session; /* session the guest serves (release) */
	uint32_t guest_version;    /* layout version the guest speaks */
	uint32_t guest_peer_id;    /* doorbell: guest's IVPosition, else IVB_NO_PEER */
	uint64_t guest_map_size;   /* bytes the guest has mapped */
	uint32_t guest_pid;        /* process id of guest_reader, for logs */
	uint32_t guest_wait;       /* how the guest waits: enum ivb_mode */
	uint64_t closed_session;   /* the session whose STOP it answered (release, after closed_flags) */
	uint32_t closed_flags;     /* IVB_CLOSED_* for that session */
	uint8_t pad3[20];
};

/* guest_flags: what this guest does beyond layout 2's first form. */
#define IVB_GUEST_CLOSES 1u          /* it publishes closed_session after each STOP */
/* closed_flags */
#define IVB_CLOSED_SECOND_WRITER 1u  /* someone else answered for it in the session */

_Static_assert(sizeof(struct ivb_header) == 4 * IVB_CACHE_LINE, "header is four cache lines");
_Static_assert(offsetof(struct ivb_header, magic) == 0, "magic");
_Static_assert(offsetof(struct ivb_header, layout_version) == 8, "layout_version");
_Static_assert(offsetof(struct ivb_header, header_size) == 12, "header_size");
_Static_assert(offsetof(struct ivb_header, shm_size) == 16, "shm_size");
_Static_assert(offsetof(struct ivb_header, payload_offset) == 24, "payload_offset");
_Static_assert(offsetof(struct ivb_header, payload_capacity) == 32, "payload_capacity");
_Static_assert(offsetof(struct ivb_header, mode) == 40, "mode");
_Static_assert(offsetof(struct ivb_header, host_peer_id) == 44, "host_peer_id");
_Static_assert(offsetof(struct ivb_header, session_id) == 64, "session_id");
_Static_assert(offsetof(struct ivb_header, seq) == 72, "seq");
_Static_assert(offsetof(struct ivb_header, command) == 80, "command");
_Static_assert(offsetof(struct ivb_header, host_flags) == 84, "host_flags");
_Static_assert(offsetof(struct ivb_header, payload_size) == 88, "payload_size");
_Static_assert(offsetof(struct ivb_header, check) == 96, "check");
_Static_assert(offsetof(struct ivb_header, ack) == 128, "ack");
_Static_assert(offsetof(struct ivb_header, error_code) == 136, "error_code");
_Static_assert(offsetof(struct ivb_header, guest_flags) == 140, "guest_flags");
_Static_assert(offsetof(struct ivb_header, guest_read_ns) == 144, "guest_read_ns");
_Static_assert(offsetof(struct ivb_header, guest_hash_ns) == 152, "guest_hash_ns");
_Static_assert(offsetof(struct ivb_header, guest_digest) == 160, "guest_digest");
_Static_assert(offsetof(struct ivb_header, attached_session) == 192, "attached_session");
_Static_assert(offsetof(struct ivb_header, guest_version) == 200, "guest_version");
_Static_assert(offsetof(struct ivb_header, guest_peer_id) == 204, "guest_peer_id");
_Static_assert(offsetof(struct ivb_header, guest_map_size) == 208, "guest_map_size");
_Static_assert(offsetof(struct ivb_header, guest_pid) == 216, "guest_pid");
_Static_assert(offsetof(struct ivb_header, guest_wait) == 220, "guest_wait");
_Static_assert(offsetof(struct ivb_header, closed_session) == 224, "closed_session");
_Static_assert(offsetof(struct ivb_header, closed_flags) == 232, "closed_flags");
_Static_assert(sizeof(struct ivb_header) <= IVB_PAYLOAD_OFFSET, "header fits before payload");

/* The ack word: sequence number and state in one atomic store. */
static inline uint64_t ivb_ack_make(uint64_t seq, enum ivb_state state)
{
	return (seq << 8) | (uint64_t)state;
}
static inline uint64_t ivb_ack_seq(uint64_t ack) { return ack >> 8; }
static inline enum ivb_state ivb_ack_state(uint64_t ack) { return (enum ivb_state)(ack & 0xff); }

/*
 * Release/acquire helpers: the only way either side touches a hand-off
 * word. They are GCC/Clang __atomic builtins on plain fixed-width fields, so
 * the struct keeps a layout both compilers pin down exactly.
 */
static inline void ivb_store_release(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t ivb_load_acquire(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Human-readable names, for messages and CSV files. */
const char *ivb_state_name(uint32_t state);
const char *ivb_command_name(uint32_t command);
const char *ivb_error_name(uint32_t error);
const char *ivb_mode_name(uint32_t mode);

#endif /* IVSHMEM_ABI_H */
