/*
 * xport.c - framed, verified messages over a byte stream (see xport.h).
 */
#include "xport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "timing.h"

int ivb_xport_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int ivb_xport_wait(int fd, short events, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = ivb_now_ns();
		int ms, rc;

		if (ivb_interrupted)
			return -EINTR;
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		ms = (int)((deadline_ns - now + 999999) / 1000000);
		rc = poll(&p, 1, ms > 1000 ? 1000 : ms); /* a second at most: look at the stop flag */
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc > 0) {
			if (p.revents & events)
				return 0;
			if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
				return -EPIPE;
		}
	}
}

int ivb_xport_write_all(int fd, const void *buf, size_t len, uint64_t deadline_ns)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EPIPE)
			return -EPIPE;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if ((n = ivb_xport_wait(fd, POLLOUT, deadline_ns)) != 0)
			return (int)n;
	}
	return 0;
}

int ivb_xport_read_all(int fd, void *buf, size_t len, uint64_t deadline_ns)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE; /* the peer closed */
		if (errno != EAGAIN && errno != EINTR)
			return errno == ECONNRESET ? -EPIPE : -errno;
		if ((n = ivb_xport_wait(fd, POLLIN, deadline_ns)) != 0)
			return (int)n;
	}
	return 0;
}

int ivb_xport_send(int fd, enum ivb_xport_type type, uint8_t flags, uint64_t seq,
		   const void *payload, uint32_t len, enum ivb_verify v, uint64_t deadline_ns)
{
	struct ivb_xport_hdr h = { .magic = IVB_XPORT_MAGIC, .type = (uint16_t)type,
				   .verify = (uint8_t)v, .flags = flags, .len = len, .seq = seq };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, len } };
	ssize_t n;

	if (type == IVB_XF_DATA && v != IVB_VERIFY_NONE &&
	    ivb_verify_compute(v, seq, payload, len, h.check))
		return -EIO;
	/* Header and payload in one call where the channel takes them (small
	 * messages: one system call a message, as any real user would). */
	n = writev(fd, iov, len ? 2 : 1);
	if (n < 0) {
		if (errno == EPIPE)
			return -EPIPE;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		n = 0;
	}
	if ((size_t)n < sizeof(h)) {
		int rc = ivb_xport_write_all(fd, (uint8_t *)&h + n, sizeof(h) - (size_t)n, deadline_ns);

		if (rc)
			return rc;
		n = 0;
	} else {
		n -= (ssize_t)sizeof(h);
	}
	return ivb_xport_write_all(fd, (const uint8_t *)payload + n, len - (size_t)n, deadline_ns);
}

int ivb_xport_recv(int fd, struct ivb_xport_hdr *h, void *buf, size_t cap, uint64_t deadline_ns)
{
	uint8_t check[IVB_VERIFY_MAX_LEN];
	int rc = ivb_xport_read_all(fd, h, sizeof(*h), deadline_ns);

	if (rc)
		return rc;
	if (h->magic != IVB_XPORT_MAGIC || h->type == 0 || h->type >= IVB_XF__COUNT ||
	    h->verify >= IVB_VERIFY__COUNT)
		return -EBADMSG;
	if (h->len > cap || h->len > IVB_XPORT_MAX_PAYLOAD)
		return -EMSGSIZE;
	if ((rc = ivb_xport_read_all(fd, buf, h->len, deadline_ns)) != 0)
		return rc;
	if (h->type != IVB_XF_DATA || h->verify == IVB_VERIFY_NONE)
		return 0;
	if (ivb_verify_compute((enum ivb_verify)h->verify, h->seq, buf, h->len, check))
		return -EIO;
	return memcmp(check, h->check, sizeof(check)) ? 1 : 0;
}

const char *ivb_xport_error(int rc)
{
	switch (rc) {
	case -ETIMEDOUT: return "timeout";
	case -EPIPE: return "the peer closed the channel";
	case -EINTR: return "interrupted";
	case -EBADMSG: return "a frame header that is not one (the stream is lost)";
	case -EMSGSIZE: return "a frame longer than expected (the stream is lost)";
	case -EIO: return "a check could not be computed";
	}
	return rc < 0 ? strerror(-rc) : "a bad message";
}
