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
 * Connections run through a BIO of our own over the socket, which keeps struct rh_ep's readiness
 * flags exactly as the plain read/writev paths do (a short read means drained, EAGAIN clears the
 * flag), so the edge-triggered state machine works the same with and without TLS. It also reads
 * ahead: BoringSSL asks for each record's 5-byte header and then its body, and one read() into a
 * buffer borrowed from the worker (given back as soon as it is drained) serves both. Nothing here
 * blocks: every call returns "would block" and the caller waits for the next epoll event. */
#ifndef RH_TLS_H
#define RH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

struct rh_config;
struct rh_backend;
struct rh_ep;
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

/* ---- connections in a worker's epoll loop (owning worker thread only) ---- */

/* Called once by each worker thread: read-ahead buffers are taken from and given back to <bufs>. */
struct rh_buf_pool;
void rh_tls_worker_init(struct rh_buf_pool *bufs);

enum rh_tls_step {
	RH_TLS_DONE,
	RH_TLS_WAIT, /* would block: call again after the next event on the socket */
	RH_TLS_FAIL,
};

/* Starts a client handshake on <ep> (connected or connecting) to <b>. <session_slot> is the
 * worker's saved session for <b>: offered for resumption and replaced by each new session the
 * backend issues. Sets ep->tls; returns false when out of memory. */
bool rh_tls_connect_start(const struct rh_tls_upstream *u, const struct rh_backend *b,
			  struct rh_ep *ep, struct ssl_session_st **session_slot);

/* Starts a server handshake on an accepted <ep>. Sets ep->tls; false when out of memory. */
bool rh_tls_accept_start(const struct rh_tls_edge *e, struct rh_ep *ep);

/* Advances the handshake. On RH_TLS_FAIL, rh_tls_failure() says why. */
enum rh_tls_step rh_tls_handshake(struct rh_ep *ep);

/* Why the last handshake or I/O on <ep> failed, e.g. "certificate verify failed: self-signed
 * certificate" (written to <buf>, which is returned). */
const char *rh_tls_failure(const struct rh_ep *ep, char *buf, size_t len);

/* Whether the finished handshake resumed a session. */
bool rh_tls_resumed(const struct rh_ep *ep);

/* Reads decrypted bytes: >0, 0 at the peer's close (close_notify or EOF), -1 would block, -2 error. */
ssize_t rh_tls_read(struct rh_ep *ep, void *buf, size_t len);

/* Writes from <iov> (<cnt> entries), at most one record's worth (RH_TLS_RECORD bytes) per call:
 * small spans are gathered into <scratch> (RH_TLS_RECORD bytes) so a rewritten head does not
 * become a dozen tiny records. Returns bytes taken, -1 would block, -2 error. After -1 the next
 * call must present the same bytes (the caller's iovecs unchanged), which a write queue that only
 * advances on success does. */
ssize_t rh_tls_writev(struct rh_ep *ep, const struct iovec *iov, int cnt, char *scratch);

/* Decrypted or raw bytes are buffered inside the TLS object: a read can make progress without a
 * new event on the socket. */
bool rh_tls_pending(const struct rh_ep *ep);

/* An idle pooled connection became readable: processes what arrived. True when it was only TLS
 * housekeeping (a TLS 1.3 session ticket) and the connection can stay pooled; false when the peer
 * closed it or sent data. */
bool rh_tls_idle_ok(struct rh_ep *ep);

/* Sends close_notify, if the handshake finished: RH_TLS_WAIT when the socket is full (call again once
 * writable; the close must wait, or the alert is lost), else RH_TLS_DONE (sent, or given up on). */
enum rh_tls_step rh_tls_notify(struct rh_ep *ep);

/* Frees ep->tls (the fd stays). Sends nothing: a clean end calls rh_tls_notify first, an abortive
 * one leaves close_notify out so the peer can tell a cut-off stream from a complete one. */
void rh_tls_close(struct rh_ep *ep);

/* ---- health probes (health thread; plain fd, its own readiness) ---- */

/* A client SSL for a probe of <b> on non-blocking socket <fd>: same SNI, name and ALPN as requests,
 * but never resumed, and verification errors are recorded rather than fatal when verify = false. */
struct ssl_st *rh_tls_probe_start(const struct rh_tls_upstream *u, const struct rh_backend *b,
				  int fd);

/* Advances a probe's handshake: RH_TLS_DONE, RH_TLS_WAIT with *<want_write> telling which event to
 * wait for (else readable), or RH_TLS_FAIL with the reason in <why>. */
enum rh_tls_step rh_tls_probe_step(struct ssl_st *ssl, bool *want_write, char *why, size_t whylen);

/* What a finished probe learned about the backend's certificate. */
struct rh_tls_peer {
	bool verified;      /* chain and name verify (whatever `verify` says) */
	char verify_error[96]; /* why not, when !verified */
	time_t not_after;   /* the leaf certificate's expiry, 0 if unknown */
};
void rh_tls_probe_peer(struct ssl_st *ssl, struct rh_tls_peer *out);

/* Frees a probe's SSL (the caller closes the fd). */
void rh_tls_probe_free(struct ssl_st *ssl);

#endif
