/* One active health check of one backend, in the control thread's epoll loop: a non-blocking
 * connect, then (with TLS) a handshake, then (type = http) a GET of [health_check] path whose status
 * line decides. Every step goes through the transport interface (transport.h), as requests do.
 *
 * A probe is started, advanced by its endpoint's events and ended either by itself (a result) or by
 * its owner (the round's deadline). Probe sockets are closed with a plain close() once the result is
 * known: a connected probe leaves a TIME_WAIT socket on our side (not the backend's), harmless at one
 * probe per backend per round; no RST with SO_LINGER {1, 0}, or backends would log a reset per check. */
#ifndef RH_PROBE_H
#define RH_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "roundhouse/config.h"
#include "roundhouse/tls.h"
#include "roundhouse/transport.h"

struct rh_backend;
struct rh_tls_upstream;

/* What every probe of the thread does. */
struct rh_probe_conf {
	enum rh_health_type type;          /* RH_HEALTH_TCP or RH_HEALTH_HTTP */
	const struct rh_tls_upstream *tls; /* NULL: plain TCP */
	const char *path;                  /* http: the request target */
	const char *host;                  /* http: Host; NULL = the backend's spec ("name:port") */
	unsigned expect_lo, expect_hi;     /* http: statuses that pass */
};

enum rh_probe_state {
	RH_PROBE_IDLE,    /* no probe in flight; <ok>/<why> hold the last result */
	RH_PROBE_CONNECT,
	RH_PROBE_HANDSHAKE,
	RH_PROBE_SEND,
	RH_PROBE_RECV,
};

#define RH_PROBE_WHY_LEN 192
#define RH_PROBE_REQ_LEN 640

struct rh_probe {
	struct rh_ep ep;                 /* fd -1 while idle; ep.handler = the owner's */
	const struct rh_probe_conf *conf;
	struct rh_backend *backend;
	int epfd;
	enum rh_probe_state state;
	bool ok;                         /* the last result */
	char why[RH_PROBE_WHY_LEN];      /* why it failed: "Connection refused", "HTTP 503 from /healthz" */
	bool have_peer;                  /* TLS: the handshake completed and <peer> says what it showed */
	struct rh_tls_peer peer;
	size_t req_len, sent;
	char req[RH_PROBE_REQ_LEN];
	size_t resp_len;
	char resp[256];                  /* the start of the response: its status line */
};

/* Starts a probe of <b> on <epfd>; the endpoint is registered with <handler>, whose events go to
 * rh_probe_event. Returns true while it is in flight, false when the result is known at once
 * (p->ok / p->why). */
bool rh_probe_start(struct rh_probe *p, const struct rh_probe_conf *conf, struct rh_backend *b,
		    int epfd, rh_ep_handler *handler);

/* Advances the probe after <events> on its endpoint. True while it is still in flight. */
bool rh_probe_event(struct rh_probe *p, uint32_t events);

/* Ends an in-flight probe as failed with <why> (the round's deadline). */
void rh_probe_abort(struct rh_probe *p, const char *why);

/* Frees what an in-flight probe holds (shutdown). */
void rh_probe_cancel(struct rh_probe *p);

/* The probe's HTTP request for <b> into <buf>: its length, or 0 when it does not fit. Pure. */
size_t rh_probe_request(const struct rh_probe_conf *conf, const struct rh_backend *b, char *buf,
			size_t len);

/* Reads the status code from the start of a response, <len> bytes at <p>: the code (100..999), 0
 * when more bytes are needed, -1 when it is not an HTTP/1.x status line. Pure. */
int rh_probe_parse_status(const char *p, size_t len);

#endif
