/* One interface for every socket: client and upstream connections in the workers, health probes
 * (and later the admin listener) in the control thread. An endpoint (struct rh_ep) carries its
 * transport (plain TCP or TLS, in the manner of redis's ConnectionType) and its event handler, so an
 * event loop dispatches an epoll event with ep->handler(ep, events) without knowing what is behind
 * it, and the code above reads and writes the same way with and without TLS.
 *
 * Readiness is tracked on the endpoint (edge-triggered: each flag is set by an event and cleared
 * when a read or write would block, or came back short). Every call returns at once; "would block"
 * means: wait for the next event on the socket.
 *
 * The plain transport is transport.c's (rh_transport_tcp, also used for listeners and the eventfd:
 * a plain fd). TLS is tls.c's (rh_tls_transport, set by rh_tls_connect_start, rh_tls_accept_start
 * and rh_tls_probe_connect). An endpoint belongs to one thread: the one whose loop watches it. */
#ifndef RH_TRANSPORT_H
#define RH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <sys/uio.h>

struct rh_ep;
struct rh_buf;
struct ssl_st;

/* What an endpoint's owner does with an epoll event. */
typedef void rh_ep_handler(struct rh_ep *ep, uint32_t events);

/* Result of a step that may take several events: a handshake, a clean shutdown. */
enum rh_io_step {
	RH_IO_DONE,
	RH_IO_WAIT, /* would block: call again after the next event on the socket */
	RH_IO_FAIL, /* see rh_ep_failure */
};

struct rh_transport {
	const char *name; /* "tcp", "tls" */
	/* >0 bytes read, 0 at the peer's end of stream, -1 would block, -2 error (errno set) */
	ssize_t (*read)(struct rh_ep *ep, void *buf, size_t len);
	/* bytes taken from <iov> (<cnt> entries), -1 would block, -2 error (errno set). After -1 the
	 * next call must present the same bytes (TLS may have committed them to a record). A count
	 * shorter than asked with the writable flag still set is not a full socket: call again. */
	ssize_t (*writev)(struct rh_ep *ep, const struct iovec *iov, int cnt);
	/* bytes are buffered inside the transport: a read can progress without a new event */
	bool (*pending)(const struct rh_ep *ep);
	/* the connection's handshake (TCP: nothing to do) */
	enum rh_io_step (*handshake)(struct rh_ep *ep);
	/* a clean end of the stream before the close (TLS: close_notify; TCP: nothing). RH_IO_WAIT:
	 * the socket is full, call again once writable */
	enum rh_io_step (*shutdown)(struct rh_ep *ep);
	/* frees the transport's state and closes the fd (no close_notify: a clean end calls shutdown
	 * first, so the peer can tell a cut-off stream from a complete one) */
	void (*close)(struct rh_ep *ep);
	/* an endpoint nobody reads from (a pooled upstream connection) became readable: consumes what
	 * is the transport's own housekeeping (TLS 1.3 session tickets). True when that was all and the
	 * connection stays usable; false when the peer closed it or sent data (TCP: always false) */
	bool (*idle_ok)(struct rh_ep *ep);
	/* see rh_ep_failure */
	const char *(*failure)(const struct rh_ep *ep, int err, char *buf, size_t len);
	/* after -1 from writev some of the bytes may already be on their way (TLS: a record partly
	 * sent), so a caller deciding whether a request can be sent again counts them as sent */
	bool wait_commits;
};

struct rh_ep {
	int fd;
	const struct rh_transport *tp;
	rh_ep_handler *handler;
	struct ssl_st *tls;    /* TLS state (tls.c's), NULL for plain TCP */
	struct rh_buf *tls_in; /* TLS read-ahead: bytes read from the socket, not yet decrypted */
	/* false only once a read found the socket drained (short read or EAGAIN): the next bytes then
	 * bring an epoll edge. The TLS BIO relies on it (no read() while false), so whatever clears it
	 * without draining the socket would stall a TLS connection. */
	bool readable;
	bool writable;
	bool eof;    /* the peer shut its side (EPOLLRDHUP): a short read no longer means "drained" */
	bool closed; /* closed during this batch: later events for it are stale */
};

/* Plain TCP (and any plain fd). */
extern const struct rh_transport rh_transport_tcp;

/* Records what an epoll event (<events>) says about <ep>'s readiness. Error and hang-up count as
 * readable and writable: the next read or write then reports what happened. */
static inline void
rh_ep_note_events(struct rh_ep *ep, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		ep->readable = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		ep->eof = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		ep->writable = true;
}

static inline ssize_t
rh_ep_read(struct rh_ep *ep, void *buf, size_t len)
{
	return ep->tp->read(ep, buf, len);
}

static inline ssize_t
rh_ep_writev(struct rh_ep *ep, const struct iovec *iov, int cnt)
{
	return ep->tp->writev(ep, iov, cnt);
}

/* Whether a read on <ep> may make progress: the socket was not drained, or the transport holds bytes. */
static inline bool
rh_ep_can_read(const struct rh_ep *ep)
{
	return ep->readable || ep->tp->pending(ep);
}

static inline enum rh_io_step
rh_ep_handshake(struct rh_ep *ep)
{
	return ep->tp->handshake(ep);
}

static inline enum rh_io_step
rh_ep_shutdown(struct rh_ep *ep)
{
	return ep->tp->shutdown(ep);
}

static inline bool
rh_ep_idle_ok(struct rh_ep *ep)
{
	return ep->tp->idle_ok(ep);
}

/* Closes <ep> (transport state and fd; the fd leaves epoll with it) and marks it stale for the rest
 * of the event batch. */
void rh_ep_close(struct rh_ep *ep);

/* Why the last failed step on <ep> failed ("Connection reset by peer", "certificate verify failed:
 * ..."), written to <buf>, which is returned. <err>: the errno the step left (or SO_ERROR of a
 * failed connect); TLS gives its own reason instead when that step was TLS's. */
const char *rh_ep_failure(const struct rh_ep *ep, int err, char *buf, size_t len);

/* Registers <ep> (fd set) with <epfd> for <events> (EPOLLET or not, as given), data.ptr = <ep>. 0
 * or -1 (errno). */
int rh_ep_watch(int epfd, struct rh_ep *ep, uint32_t events);

#endif
