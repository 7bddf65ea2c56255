/* The plain TCP transport and what every endpoint shares (see transport.h). Readiness rules: a
 * short read means the socket was drained (unless the peer already shut its side: then the read
 * that returns 0 is still to come), a short write that it is full, and EAGAIN either way clears the
 * flag until the next edge-triggered event. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "roundhouse/transport.h"

static ssize_t
tcp_read(struct rh_ep *ep, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(ep->fd, buf, len);
		if (n > 0) {
			if ((size_t)n < len && !ep->eof)
				ep->readable = false; /* short read: the socket is drained */
			return n;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			ep->readable = false;
			return -1;
		}
		return -2;
	}
}

static ssize_t
tcp_writev(struct rh_ep *ep, const struct iovec *iov, int cnt)
{
	for (;;) {
		ssize_t n = writev(ep->fd, iov, cnt);
		if (n >= 0) {
			size_t asked = 0;
			for (int i = 0; i < cnt; i++)
				asked += iov[i].iov_len;
			if ((size_t)n < asked)
				ep->writable = false; /* a short write means the socket buffer is full */
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			ep->writable = false;
			return -1;
		}
		return -2;
	}
}

static bool
tcp_pending(const struct rh_ep *ep)
{
	(void)ep;
	return false;
}

static enum rh_io_step
tcp_step_done(struct rh_ep *ep)
{
	(void)ep;
	return RH_IO_DONE;
}

static void
tcp_close(struct rh_ep *ep)
{
	close(ep->fd);
}

static bool
tcp_idle_ok(struct rh_ep *ep)
{
	(void)ep;
	return false; /* HTTP/1.1: a backend says nothing unasked, so any byte or EOF ends it */
}

static const char *
tcp_failure(const struct rh_ep *ep, int err, char *buf, size_t len)
{
	(void)ep;
	snprintf(buf, len, "%s", strerror(err));
	return buf;
}

const struct rh_transport rh_transport_tcp = {
	.name = "tcp",
	.read = tcp_read,
	.writev = tcp_writev,
	.pending = tcp_pending,
	.handshake = tcp_step_done,
	.shutdown = tcp_step_done,
	.close = tcp_close,
	.idle_ok = tcp_idle_ok,
	.failure = tcp_failure,
	.wait_commits = false,
};

void
rh_ep_close(struct rh_ep *ep)
{
	/* closing the fd removes it from epoll; events already fetched for it are skipped */
	ep->tp->close(ep); /* abortive unless the caller ended the stream with rh_ep_shutdown */
	ep->tp = &rh_transport_tcp; /* what is left is a plain endpoint without a socket */
	ep->fd = -1;
	ep->closed = true;
	ep->readable = ep->writable = false;
}

const char *
rh_ep_failure(const struct rh_ep *ep, int err, char *buf, size_t len)
{
	return ep->tp->failure(ep, err, buf, len);
}

int
rh_ep_watch(int epfd, struct rh_ep *ep, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = ep};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, ep->fd, &ev);
}
