/* One active health check: connect, TLS handshake, HTTP request and status line (see probe.h). */
#include "roundhouse/probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "roundhouse/backend.h"
#include "roundhouse/net.h"

size_t
rh_probe_request(const struct rh_probe_conf *conf, const struct rh_backend *b, char *buf, size_t len)
{
	/* Connection: close, so a backend that keeps connections does not wait for a second request;
	 * the probe reads only the status line and closes anyway */
	int n = snprintf(buf, len,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: roundhouse-health\r\n"
			 "Accept: */*\r\nConnection: close\r\n\r\n",
			 conf->path ? conf->path : "/", conf->host ? conf->host : b->spec);

	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

int
rh_probe_parse_status(const char *p, size_t len)
{
	static const char prefix[] = "HTTP/1.";
	const size_t need = sizeof(prefix) - 1 + 5; /* "HTTP/1.x NNN" */

	for (size_t i = 0; i < len && i < sizeof(prefix) - 1; i++)
		if (p[i] != prefix[i])
			return -1;
	if (len < need)
		return 0;
	if (p[7] < '0' || p[7] > '9' || p[8] != ' ')
		return -1;
	int code = 0;
	for (size_t i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		code = code * 10 + (p[i] - '0');
	}
	if (code < 100)
		return -1;
	/* a fourth digit would be a different code */
	if (len > 12 && p[12] != ' ' && p[12] != '\r' && p[12] != '\n')
		return -1;
	return code;
}

/* Ends the probe with a result. */
static bool
finish(struct rh_probe *p, bool ok, const char *why)
{
	if (p->ep.fd != -1)
		rh_ep_close(&p->ep);
	p->ep.fd = -1;
	p->state = RH_PROBE_IDLE;
	p->ok = ok;
	if (why && why != p->why)
		snprintf(p->why, sizeof(p->why), "%s", why);
	else if (!why)
		p->why[0] = '\0';
	return false;
}

static bool
fail_errno(struct rh_probe *p, const char *what, int err)
{
	char why[RH_PROBE_WHY_LEN];

	if (what)
		snprintf(why, sizeof(why), "%s: %s", what, strerror(err ? err : ECONNRESET));
	else
		snprintf(why, sizeof(why), "%s", strerror(err ? err : ECONNRESET));
	return finish(p, false, why);
}

static bool
fail_transport(struct rh_probe *p, const char *what)
{
	char buf[RH_PROBE_WHY_LEN - 32], why[RH_PROBE_WHY_LEN];
	int saved = errno;

	snprintf(why, sizeof(why), "%s: %s", what, rh_ep_failure(&p->ep, saved, buf, sizeof(buf)));
	return finish(p, false, why);
}

/* Runs the probe as far as its endpoint's readiness allows. True while it is in flight. */
static bool
advance(struct rh_probe *p)
{
	for (;;) {
		switch (p->state) {
		case RH_PROBE_CONNECT: {
			if (!p->ep.writable)
				return true;
			int e = rh_net_socket_error(p->ep.fd);
			if (e)
				return fail_errno(p, NULL, e);
			if (p->conf->tls) {
				if (!rh_tls_probe_connect(p->conf->tls, p->backend, &p->ep))
					return finish(p, false, "TLS handshake: out of memory");
				p->state = RH_PROBE_HANDSHAKE;
				continue;
			}
			if (p->conf->type != RH_HEALTH_HTTP)
				return finish(p, true, NULL);
			p->state = RH_PROBE_SEND;
			continue;
		}
		case RH_PROBE_HANDSHAKE:
			switch (rh_ep_handshake(&p->ep)) {
			case RH_IO_WAIT:
				return true;
			case RH_IO_FAIL:
				return fail_transport(p, "TLS handshake");
			case RH_IO_DONE:
				break;
			}
			rh_tls_probe_peer_ep(&p->ep, &p->peer);
			p->have_peer = true;
			if (p->conf->type != RH_HEALTH_HTTP)
				return finish(p, true, NULL);
			p->state = RH_PROBE_SEND;
			continue;
		case RH_PROBE_SEND: {
			if (!p->ep.writable)
				return true;
			struct iovec iov = {p->req + p->sent, p->req_len - p->sent};
			ssize_t n = rh_ep_writev(&p->ep, &iov, 1);
			if (n == -1)
				return true;
			if (n < 0)
				return fail_transport(p, "sending the check");
			p->sent += (size_t)n;
			if (p->sent == p->req_len)
				p->state = RH_PROBE_RECV;
			continue;
		}
		case RH_PROBE_RECV: {
			if (!rh_ep_can_read(&p->ep))
				return true;
			ssize_t n = rh_ep_read(&p->ep, p->resp + p->resp_len, sizeof(p->resp) - p->resp_len);
			if (n == -1)
				return true;
			if (n == -2) {
				char what[RH_PROBE_WHY_LEN / 2];
				snprintf(what, sizeof(what), "no response from %.60s", p->conf->path);
				return fail_transport(p, what);
			}
			if (n > 0)
				p->resp_len += (size_t)n;
			int status = rh_probe_parse_status(p->resp, p->resp_len);
			if (status == 0 && n > 0 && p->resp_len < sizeof(p->resp))
				continue;
			char why[RH_PROBE_WHY_LEN];
			if (status <= 0) {
				snprintf(why, sizeof(why), "%s from %s",
					 n == 0 && p->resp_len == 0 ? "connection closed before a response"
								    : "not an HTTP response",
					 p->conf->path);
				return finish(p, false, why);
			}
			if ((unsigned)status < p->conf->expect_lo || (unsigned)status > p->conf->expect_hi) {
				snprintf(why, sizeof(why), "HTTP %d from %s", status, p->conf->path);
				return finish(p, false, why);
			}
			return finish(p, true, NULL);
		}
		default:
			return false;
		}
	}
}

bool
rh_probe_start(struct rh_probe *p, const struct rh_probe_conf *conf, struct rh_backend *b, int epfd,
	       rh_ep_handler *handler)
{
	int in_progress = 0;

	p->conf = conf;
	p->backend = b;
	p->epfd = epfd;
	p->have_peer = false;
	p->sent = p->resp_len = 0;
	p->why[0] = '\0';
	p->ep = (struct rh_ep){.fd = -1, .tp = &rh_transport_tcp, .handler = handler};
	if (conf->type == RH_HEALTH_HTTP) {
		p->req_len = rh_probe_request(conf, b, p->req, sizeof(p->req));
		if (p->req_len == 0)
			return finish(p, false, "the check request does not fit (path or host too long)");
	}
	int fd = rh_net_connect(&b->addr, &in_progress);
	if (fd == -1)
		return fail_errno(p, NULL, errno);
	p->ep.fd = fd;
	p->ep.writable = !in_progress;
	p->state = RH_PROBE_CONNECT;
	if (rh_ep_watch(epfd, &p->ep, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1)
		return fail_errno(p, "epoll_ctl", errno);
	return advance(p);
}

bool
rh_probe_event(struct rh_probe *p, uint32_t events)
{
	if (p->state == RH_PROBE_IDLE)
		return false;
	rh_ep_note_events(&p->ep, events);
	return advance(p);
}

void
rh_probe_abort(struct rh_probe *p, const char *why)
{
	if (p->state != RH_PROBE_IDLE)
		finish(p, false, why);
}

void
rh_probe_cancel(struct rh_probe *p)
{
	if (p->state != RH_PROBE_IDLE)
		finish(p, false, "cancelled");
}
