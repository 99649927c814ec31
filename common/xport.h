/*
 * xport.h - framed, verified messages over a byte stream: the one layer
 * every socket-like transport shares (a pipe, a UNIX or TCP socket, a
 * virtio-serial port, AF_VSOCK), so the only difference between the rows
 * of the transport comparison is the channel.
 *
 * A frame is a 56-byte header (magic, type, kind of check, payload length,
 * sequence number, the check of verify.h over sequence number and payload)
 * and the payload. Both ends are little-endian x86 here; the header is
 * pinned field by field like the shared-memory ABI.
 *
 * Every call takes a deadline (CLOCK_MONOTONIC ns, ivb_now_ns()) and works
 * on non-blocking descriptors through poll(), so a peer that stops in the
 * middle of a frame is a timeout, never a hang; short reads and writes are
 * carried on; a peer that closes mid-frame is -EPIPE; a stop signal is
 * -EINTR. What arrives is untrusted: the header is checked (magic, type,
 * length against the caller's buffer) before the payload is read, and the
 * payload's check is computed again on the copy.
 */
#ifndef IVB_XPORT_H
#define IVB_XPORT_H

#include <stddef.h>
#include <stdint.h>

#include "verify.h"

#define IVB_XPORT_MAGIC 0x74726278u /* "xbrt" */
#define IVB_XPORT_HEADER 56u

enum ivb_xport_type {
	IVB_XF_SETUP = 1,  /* initiator: a test begins (payload: struct ivb_xport_setup) */
	IVB_XF_READY = 2,  /* responder: set-up accepted (or refused: flags = 1) */
	IVB_XF_DATA = 3,   /* a message */
	IVB_XF_SYNC = 4,   /* initiator: answer when everything before has been read */
	IVB_XF_END = 5,    /* initiator: no more messages in this test */
	IVB_XF_RESULT = 6, /* responder: its counts (payload: struct ivb_xport_result) */
	IVB_XF__COUNT
};

struct ivb_xport_hdr {
	uint32_t magic;   /* IVB_XPORT_MAGIC */
	uint16_t type;    /* enum ivb_xport_type */
	uint8_t verify;   /* enum ivb_verify of check */
	uint8_t flags;    /* READY: 1 refused; DATA echo: 1 the responder found it bad */
	uint32_t len;     /* payload bytes after the header */
	uint32_t pad;
	uint64_t seq;     /* message number */
	uint8_t check[IVB_VERIFY_MAX_LEN]; /* verify.h over seq and payload (DATA) */
};

_Static_assert(sizeof(struct ivb_xport_hdr) == IVB_XPORT_HEADER, "frame header");
_Static_assert(__builtin_offsetof(struct ivb_xport_hdr, len) == 8, "len");
_Static_assert(__builtin_offsetof(struct ivb_xport_hdr, seq) == 16, "seq");
_Static_assert(__builtin_offsetof(struct ivb_xport_hdr, check) == 24, "check");

enum ivb_xport_test {
	IVB_XT_ECHO = 1, /* every DATA frame comes back: the round trip */
	IVB_XT_SINK = 2, /* DATA frames are read and checked: the stream */
};

struct ivb_xport_setup {
	uint32_t test;     /* enum ivb_xport_test */
	uint32_t verify;   /* enum ivb_verify of the DATA frames */
	uint32_t msg_len;  /* bytes per message */
	uint32_t pad;
	uint64_t token;    /* random, returned in READY's seq: a stale answer is never taken */
};

struct ivb_xport_result {
	uint64_t received; /* DATA frames read */
	uint64_t errors;   /* of which bad */
	uint64_t first_bad_seq;
	uint64_t cpu_ns;   /* the responder thread's CPU time in the test */
};

/* Largest payload a frame may carry (a message of the size sweep's top). */
#define IVB_XPORT_MAX_PAYLOAD (64u << 20)

/* Make fd non-blocking (every call below needs it). 0 or -errno. */
int ivb_xport_nonblock(int fd);

/*
 * Wait until fd is ready for events (POLLIN, POLLOUT) or the deadline, in
 * looks of a second at most at the stop flag. 0, -ETIMEDOUT, -EINTR,
 * -EPIPE (hung up with nothing to read).
 */
int ivb_xport_wait(int fd, short events, uint64_t deadline_ns);

/* Write/read exactly len bytes before the deadline. 0, -ETIMEDOUT, -EPIPE (closed), -EINTR, -errno. */
int ivb_xport_write_all(int fd, const void *buf, size_t len, uint64_t deadline_ns);
int ivb_xport_read_all(int fd, void *buf, size_t len, uint64_t deadline_ns);

/*
 * Send one frame: the header (with the check of payload when type is DATA
 * and v is not none) and the payload, in one writev where it fits. flags
 * go in the header as they are. 0 or a -errno of ivb_xport_write_all().
 */
int ivb_xport_send(int fd, enum ivb_xport_type type, uint8_t flags, uint64_t seq,
		   const void *payload, uint32_t len, enum ivb_verify v, uint64_t deadline_ns);

/*
 * Receive one frame into h and buf (cap bytes). Returns 0 when it is whole
 * (a DATA frame's check matches its payload), -EBADMSG when the header is
 * not a frame (bad magic or type: the stream is lost), -EMSGSIZE when the
 * payload is longer than cap (the stream is lost), 1 when a DATA frame's
 * check does not match (the frame was read: the stream goes on), or a
 * -errno of ivb_xport_read_all().
 */
int ivb_xport_recv(int fd, struct ivb_xport_hdr *h, void *buf, size_t cap, uint64_t deadline_ns);

/* A sentence for a negative return of the calls above. */
const char *ivb_xport_error(int rc);

#endif
