/*
 * ivshmem_proto.h - the doorbell protocol between the ivshmem server and
 * its peers (QEMU's ivshmem-doorbell devices, or host processes using
 * ivshmem_client.h), in one place for both ends. The protocol is QEMU's
 * (docs/specs/ivshmem-spec.rst).
 *
 * Every message is one 8-byte little-endian signed integer, sent alone in
 * one sendmsg, with at most one SCM_RIGHTS fd. Peers never send anything.
 * On connect the new peer P receives, in this order:
 *   1. IVS_PROTO_VERSION, no fd;
 *   2. P's id, no fd;
 *   3. IVS_PROTO_SHM_VALUE (-1) with the shared-memory fd;
 *   4. (every existing peer receives P's id N times, with P's eventfds for
 *      vectors 0..N-1);
 *   5. each existing peer's id N times with that peer's eventfds;
 *   6. its own id N times with its own eventfds.
 * Afterwards a peer id with an fd is that peer's next eventfd (a connect)
 * and a peer id without an fd is a disconnect notice.
 *
 * N (vectors per peer) is not on the wire: server and peers must agree on
 * it beforehand (QEMU's "vectors=" device property).
 */
#ifndef IVS_PROTO_H
#define IVS_PROTO_H

#include <endian.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define IVS_PROTO_VERSION 0          /* the first message of every connection */
#define IVS_PROTO_SHM_VALUE (-1)     /* the value sent with the shared-memory fd */
#define IVS_PROTO_MSG_SIZE 8         /* bytes per message */
/* QEMU's device takes at most 64 MSI-X vectors, so at most 64 eventfds. */
#define IVS_PROTO_MAX_VECTORS 64
/* The guest rings peer p through its doorbell as (p << 16) | vector. */
#define IVS_PROTO_MAX_PEER_ID 65535
#define IVS_PROTO_N_IDS (IVS_PROTO_MAX_PEER_ID + 1)

/* A message's value as it goes on the wire, and back. */
static inline uint64_t ivs_proto_encode(int64_t value)
{
	return htole64((uint64_t)value);
}

static inline int64_t ivs_proto_decode(uint64_t wire)
{
	return (int64_t)le64toh(wire);
}

/*
 * Make msg carry the n fds (one SCM_RIGHTS block, as the server sends one
 * fd with a message), in control: CMSG_SPACE(n * sizeof(int)) bytes aligned
 * for struct cmsghdr, which the caller provides.
 */
static inline void ivs_proto_attach_fds(struct msghdr *msg, void *control, const int *fds,
					unsigned n)
{
	size_t len = n * sizeof(int);
	struct cmsghdr *cmsg;

	memset(control, 0, CMSG_SPACE(len));
	msg->msg_control = control;
	msg->msg_controllen = CMSG_SPACE(len);
	cmsg = CMSG_FIRSTHDR(msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(cmsg), fds, len);
}

#endif /* IVS_PROTO_H */
