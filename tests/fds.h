/*
 * fds.h - file-descriptor helpers shared by the server tests and the
 * fuzzers: counting this process's open fds (for leak checks) and sending
 * bytes with fresh eventfds riding along, as a misbehaving peer would.
 */
#ifndef IVB_TESTS_FDS_H
#define IVB_TESTS_FDS_H

#include "ivshmem_proto.h"

#include <dirent.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FDS_MAX_SENT 2 /* eventfds fds_send() can attach to one message */

/* Open fds of this process, from /proc/self/fd. */
static inline int fds_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n - 3; /* ".", ".." and the DIR's own fd */
}

/*
 * Send len bytes (at least one when n_fds > 0: an fd travels with data)
 * without blocking, with n_fds (0..FDS_MAX_SENT) new eventfds. Our copies
 * are closed: those in flight belong to the receiver. Returns 0 when all
 * went, -1 otherwise (a full socket, a closed peer, no eventfd).
 */
static inline int fds_send(int sock, const void *buf, size_t len, unsigned n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(FDS_MAX_SENT * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[FDS_MAX_SENT], ret = -1;
	unsigned i, made = 0;

	if (n_fds > FDS_MAX_SENT || (n_fds && !len))
		return -1;
	for (; made < n_fds; made++) {
		fds[made] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[made] < 0)
			goto out;
	}
	if (n_fds)
		ivs_proto_attach_fds(&msg, control.buf, fds, n_fds);
	ret = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
out:
	for (i = 0; i < made; i++)
		close(fds[i]);
	return ret;
}

#endif /* IVB_TESTS_FDS_H */
