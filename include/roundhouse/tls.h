/* TLS with BoringSSL, both directions.
 *
 * Upstream (client side): one SSL_CTX for all backends and workers (TLS 1.2-1.3, ALPN http/1.1,
 * verification against ca_file or the system store, with the name from `sni` or the backend's host
 * name). Each worker keeps the last session per backend, so a new connection resumes instead of
 * doing a full handshake.
 *
 * Edge (server side): one SSL_CTX per certificate; the first is the default and the client's SNI
 * picks another whose names match. Session tickets use BoringSSL's own keys, which the process
 * generates at start and rotates every 48 hours; there is no server-side session cache.
 *
 * Connections are endpoints with the TLS transport (rh_tls_transport, see transport.h): the code
 * above reads, writes, shakes hands and closes through rh_ep_* as it does over plain TCP. They run
 * through a BIO of our own over the socket, which keeps struct rh_ep's readiness flags exactly as
 * the plain transport does (a short read means drained, EAGAIN clears the flag), so the
 * edge-triggered state machines work the same with and without TLS. It also reads ahead: BoringSSL
 * asks for each record's 5-byte header and then its body, and one read() into a buffer borrowed
 * from the thread's pool (given back as soon as it is drained) serves both. Nothing here blocks:
 * every call returns "would block" and the caller waits for the next epoll event. */
#ifndef RH_TLS_H
#define RH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "roundhouse/transport.h"

struct rh_config;
struct rh_backend;
struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;

#define RH_TLS_RECORD 16384 /* largest TLS plaintext record: the unit writes are gathered into */

/* ---- contexts (main thread, at start-up) ---- */

/* The upstream side: NULL in *<out> when cfg->tls is false. Errors (unreadable ca_file, ...) name
 * "FILE:LINE: upstream.KEY:". Returns 0 or -1 with <err>. */
struct rh_tls_upstream;
int rh_tls_upstream_create(const struct rh_config *cfg, struct rh_tls_upstream **out, char *err,
			   size_t errlen);
void rh_tls_upstream_destroy(struct rh_tls_upstream *u);

/* The edge side: NULL in *<out> when there is no listen_tls. Loads every cert/key pair and checks
 * that each key matches its certificate; errors name "FILE:LINE: server.cert:" (or server.key). */
struct rh_tls_edge;
int rh_tls_edge_create(const struct rh_config *cfg, struct rh_tls_edge **out, char *err,
		       size_t errlen);
void rh_tls_edge_destroy(struct rh_tls_edge *e);

/* ---- endpoints (the thread whose loop watches the endpoint) ---- */

/* The TLS transport (transport.h). Its read, writev and handshake never block; close frees the SSL
 * and closes the fd without close_notify (rh_ep_shutdown sends that: RH_IO_WAIT while the socket is
 * full, then RH_IO_DONE, also when it was given up on or the handshake never finished). */
extern const struct rh_transport rh_tls_transport;

/* Per-thread state of the transport, for a thread that does a lot of TLS (the workers): read-ahead
 * buffers are taken from and given back to <bufs> (may be NULL: no read-ahead), and small spans of
 * a write are gathered into one record through a scratch buffer of RH_TLS_RECORD bytes, allocated
 * here. A thread that never calls this (the control thread's probes) works too: it reads without
 * read-ahead and writes one record per iovec, which a probe writing its request from one buffer
 * does not notice. The scratch being out of memory is logged and leaves this thread in that mode. */
struct rh_buf_pool;
void rh_tls_thread_init(struct rh_buf_pool *bufs);

/* Frees the calling thread's scratch and forgets its pool; every TLS endpoint of the thread must
 * be closed (their read-ahead buffers go back to the pool). */
void rh_tls_thread_finish(void);

/* Whether <ep> talks TLS (rh_tls_transport): e.g. a client on a listen_tls address. */
static inline bool
rh_ep_is_tls(const struct rh_ep *ep)
{
	return ep->tp == &rh_tls_transport;
}

/* Starts a client handshake on <ep> (connected or connecting) to <b> and makes ep->tp TLS.
 * <session_slot> is the worker's saved session for <b>: offered for resumption and replaced by each
 * new session the backend issues. Returns false when out of memory (<ep> is then unchanged). */
bool rh_tls_connect_start(const struct rh_tls_upstream *u, const struct rh_backend *b,
			  struct rh_ep *ep, struct ssl_session_st **session_slot);

/* Starts a server handshake on an accepted <ep> and makes ep->tp TLS; false when out of memory. */
bool rh_tls_accept_start(const struct rh_tls_edge *e, struct rh_ep *ep);

/* A health probe's client handshake on <ep> (fd set, connected or connecting) to <b>: the same SNI,
 * name and ALPN as requests, but never resumed (no session is offered or kept), and with
 * verify = false a failed verification is recorded (rh_tls_probe_peer_ep), not fatal. Makes
 * ep->tp TLS; false when out of memory. Any thread (no rh_tls_thread_init needed). */
bool rh_tls_probe_connect(const struct rh_tls_upstream *u, const struct rh_backend *b,
			  struct rh_ep *ep);

/* Whether the finished handshake on <ep> (a TLS endpoint) resumed a session. */
bool rh_tls_resumed(const struct rh_ep *ep);

/* What a finished probe learned about the backend's certificate. */
struct rh_tls_peer {
	bool verified;      /* chain and name verify (whatever `verify` says) */
	char verify_error[96]; /* why not, when !verified */
	time_t not_after;   /* the leaf certificate's expiry, 0 if unknown */
};

/* What the finished handshake of a probe on <ep> (rh_tls_probe_connect) learned. */
void rh_tls_probe_peer_ep(const struct rh_ep *ep, struct rh_tls_peer *out);

#endif
