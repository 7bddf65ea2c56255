/* A worker: one thread, one epoll loop, its own SO_REUSEPORT listener per listen address, its own
 * connections, buffers and timers. Nothing here is shared between workers except struct rh_server
 * (read-only after start, plus the stop flag) and the RCU-published runtime snapshot; what a worker
 * keeps of a backend (idle connections, TLS session, in-flight count) is its own entry on the
 * backend object (backend.h). */
#ifndef RH_WORKER_H
#define RH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "roundhouse/buf.h"
#include "roundhouse/http1.h"
#include "roundhouse/timer.h"

struct rh_config;
struct rh_runtime;
struct rh_snapshot;
struct rh_tls_upstream;
struct rh_tls_edge;
struct ssl_session_st;
struct rh_conn;
struct rh_conn_io;
struct rh_upconn;

/* What an epoll event's data.ptr points at. Readiness is tracked here (edge-triggered: each flag is
 * set by an event and cleared when a read or write would block). */
enum rh_ep_kind {
	RH_EP_LISTENER,
	RH_EP_CLIENT,
	RH_EP_UPSTREAM,
	RH_EP_WAKE,
};

struct ssl_st;

struct rh_ep {
	int fd;
	struct ssl_st *tls;    /* NULL for plain TCP; see tls.h */
	struct rh_buf *tls_in; /* TLS read-ahead: bytes read from the socket, not yet decrypted */
	uint8_t kind;
	bool readable;
	bool writable;
	bool eof;    /* the peer shut its side (EPOLLRDHUP): a short read no longer means "drained" */
	bool closed; /* closed during this batch: later events for it are stale */
};

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

/* Shared by all threads; read-only once workers run, except <stopping>. */
struct rh_server {
	const struct rh_config *cfg; /* what cannot change while running: listeners, threads, shutdown */
	struct rh_runtime *rt;       /* the live snapshot: everything a request reads */
	unsigned conns_per_worker; /* max_connections split across workers */
	struct rh_tls_upstream *tls_up; /* TLS to the backends, or NULL */
	struct rh_tls_edge *tls_edge;   /* certificates for listen_tls, or NULL */
	atomic_bool stopping;
};

/* Listeners are level-triggered: one accept per readiness report, so no accept ever fails with
 * EAGAIN and a busy port cannot starve the other events; at the connection limit they are paused
 * (removed from the interest set) instead of being left readable. */
struct rh_listener {
	struct rh_ep ep;
	const struct rh_tls_edge *tls; /* a listen_tls address: clients start with a handshake */
};

struct rh_worker_stats {
	uint64_t accepted;
	uint64_t requests;
	uint64_t upstream_connects;
	uint64_t upstream_reused;
	uint64_t responses_local; /* errors answered by the proxy itself */
	uint64_t aborted;         /* exchanges cut off: client gone, response not completable */
	uint64_t upstream_tls_full;    /* upstream handshakes without / with session resumption */
	uint64_t upstream_tls_resumed;
	uint64_t edge_tls_full;        /* client handshakes on listen_tls */
	uint64_t edge_tls_resumed;
	uint64_t edge_tls_failed;
};

struct rh_worker {
	unsigned id;
	char tag[16];
	struct rh_server *srv;
	pthread_t thread;
	bool started;
	int epfd;
	struct rh_ep wake; /* eventfd: main thread -> worker (stop) */

	struct rh_listener *listeners;
	size_t n_listeners;

	uint64_t now; /* ms, refreshed once per loop turn */
	/* The live snapshot, read once per loop turn while the thread is online; never kept past the
	 * turn (the quiescent state is the epoll_wait between turns). */
	const struct rh_snapshot *snap;
	uint64_t generation; /* of the last snapshot whose settings were applied */

	/* one queue per kind of timeout, see timer.h */
	struct rh_timer_queue tq_header;      /* client_header: whole head must arrive (408) */
	struct rh_timer_queue tq_client_body; /* client_header, per read: request body stalls */
	struct rh_timer_queue tq_idle;        /* idle: keep-alive client between requests */
	struct rh_timer_queue tq_send;        /* idle, per write: client not reading the response */
	struct rh_timer_queue tq_connect;     /* connect */
	struct rh_timer_queue tq_upstream;    /* upstream_read, per read or write */
	struct rh_timer_queue tq_pool;        /* idle: idle upstream connection expiry */
	struct rh_timer_queue tq_linger;      /* after an error response, before the close */

	struct rh_buf_pool bufs;
	struct rh_http_request req;   /* parser scratch: valid only within one call */
	struct rh_http_response resp; /* likewise */

	struct rh_conn *conns;     /* all open client connections (for shutdown) */
	unsigned n_conns;
	struct rh_conn *free_conns;
	struct rh_conn_io *free_io;       /* write vectors of finished exchanges, for the next ones */
	struct rh_upconn *free_upconns;
	struct rh_conn *closed_conns;     /* closed during this batch, recycled after it */
	struct rh_upconn *closed_upconns;

	bool accept_paused;
	uint64_t accept_resume_at; /* after an accept error (out of descriptors): retry from then */
	bool draining;
	uint64_t drain_deadline;
	uint64_t last_connect_log; /* rate limit for upstream failure logs */

	char *tls_scratch;                    /* RH_TLS_RECORD bytes: small spans gathered for a write */

	struct rh_worker_stats stats;
};

/* Sets up <w> (epoll, eventfd, listeners for every listen address) before its thread starts, so
 * that a bind error stops start-up with a message. Returns 0 or -1 with <err>. Main thread. */
int rh_worker_init(struct rh_worker *w, unsigned id, struct rh_server *srv, char *err, size_t errlen);

/* Starts the thread. Returns 0 or an errno value. */
int rh_worker_start(struct rh_worker *w);

/* Wakes the worker so it notices srv->stopping. Any thread. */
void rh_worker_wake(struct rh_worker *w);

/* Joins the thread (if it was started) and frees everything the worker owns. Main thread. */
void rh_worker_finish(struct rh_worker *w);

/* Stops accepting until the connection count is below the limit again and <retry_ms> passed. */
void rh_worker_pause_accept(struct rh_worker *w, unsigned retry_ms);

/* Closes <fd> and marks <ep> stale for the rest of the event batch. */
void rh_worker_close_ep(struct rh_ep *ep);

#endif
