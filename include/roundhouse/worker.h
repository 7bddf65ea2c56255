/* A worker: one thread, one epoll loop, its own SO_REUSEPORT listener per listen address, its own
 * connections, buffers and timers. Nothing here is shared between workers except struct rh_server
 * (read-only after start, plus the stop flag) and the RCU-published runtime snapshot; what a worker
 * keeps of a backend (idle connections, TLS session, in-flight count) is its own entry on the
 * backend object (backend.h).
 *
 * Layering, as nginx's event module is below its http module (ngx_listening_t->handler is set by
 * the http module): worker.c is the loop at the bottom and knows no HTTP. It dispatches every epoll
 * event to the endpoint's own handler (ep->handler: its listeners' and wake eventfd's are its own,
 * client and upstream connections' are conn.c's and upstream.c's), runs the timer queues, releases
 * what was closed during the batch, and calls the layer above through struct rh_worker_hooks, which
 * main.c sets. conn.c and upstream.c include this header and call down into it; worker.c includes
 * neither of theirs. So the loop reads without the proxy, and what the proxy keeps per thread
 * (timer queues, buffers, statistics, its free lists) lives here, in the context it runs in. */
#ifndef RH_WORKER_H
#define RH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "roundhouse/access_log.h"
#include "roundhouse/buf.h"
#include "roundhouse/config.h"
#include "roundhouse/http1.h"
#include "roundhouse/retry_budget.h"
#include "roundhouse/stats.h"
#include "roundhouse/timer.h"
#include "roundhouse/transport.h"
#include "roundhouse/upgrade.h"

struct rh_config;
struct rh_runtime;
struct rh_snapshot;
struct rh_tls_upstream;
struct rh_tls_edge;
struct rh_conn;
struct rh_conn_io;
struct rh_upconn;
struct rh_worker;
struct rh_listener;

/* Something closed during an event batch and released only after it: events fetched in the same
 * epoll_wait may still point at it (its endpoint is marked closed, so they are skipped). Embedded
 * in what it releases. */
struct rh_deferred {
	struct rh_deferred *next;
	void (*release)(struct rh_worker *w, struct rh_deferred *d);
};

/* What the loop asks of the layer above it (the proxy: conn.c's rh_conn_hooks). Each is called on
 * the worker's thread, online (RCU) unless said otherwise. */
struct rh_worker_hooks {
	/* <l> accepted <fd> from <addr>: the hook owns <fd> from here on (set up a connection on it,
	 * or close it) */
	void (*accepted)(struct rh_worker *w, const struct rh_listener *l, int fd,
			 const struct sockaddr *addr);
	/* the snapshot's generation changed; its timeouts are applied already */
	void (*generation)(struct rh_worker *w);
	/* shutdown began and the listeners are closed: close what is idle, let the rest finish */
	void (*drain)(struct rh_worker *w);
	/* the loop has ended: close everything still open and free what is kept for reuse */
	void (*exit)(struct rh_worker *w);
	/* once per loop turn, after the events and timers: work that waits on something other than a
	 * socket (requests queued for a max_conns slot). Returns how long the loop may sleep at most
	 * (ms), or -1 for no limit */
	int (*turn)(struct rh_worker *w);
};

/* While draining, an idle keep-alive client connection is closed after this long without a request
 * (its next request, if it comes, is answered with "Connection: close"). */
#define RH_DRAIN_IDLE_MS 1000

/* Empty pipes a worker keeps for splicing bodies (two descriptors each). */
#define RH_WORKER_PIPES 16

/* Shared by all threads; read-only once workers run, except <stopping>. */
struct rh_server {
	const struct rh_config *cfg; /* what cannot change while running: listeners, threads, shutdown */
	struct rh_runtime *rt;       /* the live snapshot: everything a request reads */
	unsigned conns_per_worker; /* max_connections split across workers */
	struct rh_tls_upstream *tls_up; /* TLS to the backends, or NULL */
	struct rh_tls_edge *tls_edge;   /* certificates for listen_tls, or NULL */
	const struct rh_worker_hooks *hooks; /* the layer above the loops */
	struct rh_access_log *access_log; /* [log] access, or NULL */
	struct rh_inherited *inherited;   /* binary upgrade: the old process's listeners, taken by */
	size_t n_inherited;               /* rh_worker_init for their addresses */
	atomic_bool stopping;
};

/* Listeners are level-triggered: one accept per readiness report, so no accept ever fails with
 * EAGAIN and a busy port cannot starve the other events; at the connection limit they are paused
 * (removed from the interest set) instead of being left readable. */
struct rh_listener {
	struct rh_ep ep; /* first: epoll data.ptr */
	struct rh_worker *w;
	const struct rh_tls_edge *tls; /* a listen_tls address: clients start with a handshake */
	char addr[RH_ADDR_TEXT_LEN];   /* the address it listens on (handed over by a binary upgrade) */
};

/* What a worker counts (stats.h: one writer, relaxed; the metrics and the exit totals sum them). */
struct rh_worker_stats {
	rh_stat accepted;
	rh_stat requests;
	rh_stat upstream_connects;
	rh_stat upstream_reused;
	rh_stat responses_local; /* errors answered by the proxy itself */
	rh_stat aborted;         /* exchanges cut off: client gone, response not completable */
	rh_stat upstream_tls_full;    /* upstream handshakes without / with session resumption */
	rh_stat upstream_tls_resumed;
	rh_stat edge_tls_full;        /* client handshakes on listen_tls */
	rh_stat edge_tls_resumed;
	rh_stat edge_tls_failed;
	rh_stat retries;         /* requests sent again to another backend (or a fresh connection) */
	rh_stat retries_denied;  /* retries the retry budget refused */
	rh_stat queued;          /* requests that waited for a max_conns slot */
	rh_stat queue_timeouts;  /* of those, answered 503 after queue_timeout */
	rh_stat local_by_class[RH_STATUS_CLASSES]; /* the proxy's own answers by status class */
	rh_stat bytes_in, bytes_out; /* client side */
	rh_stat spliced;         /* responses whose body went through a pipe (splice) */
	rh_stat clients_open;    /* gauges: client connections open, and of those in an exchange */
	rh_stat clients_active;
	struct rh_histogram duration;   /* exchange start (head parsed) to end */
	struct rh_histogram connect;    /* upstream connect (and TLS handshake) time, fresh connections */
};

struct rh_worker {
	unsigned id;
	char tag[16];
	struct rh_server *srv;
	pthread_t thread;
	bool started;
	int epfd;
	struct rh_ep wake; /* eventfd: main thread -> worker (stop); only wakes the loop */

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
	struct rh_timer_queue tq_queue;       /* queue_timeout: waiting for a max_conns slot (503) */

	struct rh_buf_pool bufs;
	struct rh_http_request req;   /* parser scratch: valid only within one call */
	struct rh_http_response resp; /* likewise */
	const struct rh_http_request *refused_req; /* while a refused head is answered: its parse, for
	                                              the access log */
	int free_pipes[RH_WORKER_PIPES][2]; /* empty pipes kept for the next spliced body */
	unsigned n_free_pipes;

	/* conn.c's and upstream.c's (the loop reads only n_conns: accept limit, drain) */
	struct rh_conn *conns;     /* all open client connections (for shutdown) */
	unsigned n_conns;
	struct rh_conn *free_conns;
	struct rh_conn_io *free_io;       /* blocks of finished exchanges, for the next ones */
	struct rh_upconn *free_upconns;
	struct rh_conn *queue_head, *queue_tail; /* requests waiting for a max_conns slot, FIFO */
	unsigned n_queued;
	uint64_t queue_seen_freed;  /* rh_backend_slots_freed when the queue was last walked */
	uint64_t queue_seen_generation; /* and the snapshot generation then */
	struct rh_retry_budget budget;

	struct rh_deferred *closed; /* closed during this batch, released after it */

	bool accept_paused;
	uint64_t accept_resume_at; /* after an accept error (out of descriptors): retry from then */
	bool draining;
	uint64_t drain_deadline;
	uint64_t last_connect_log; /* rate limit for upstream failure logs */

	struct rh_worker_stats stats;
	struct rh_access_buf access; /* this worker's access log lines, until written */
};

/* Sets up <w> (epoll, eventfd, listeners for every listen address) before its thread starts, so
 * that a bind error stops start-up with a message. Returns 0 or -1 with <err>. Main thread. */
int rh_worker_init(struct rh_worker *w, unsigned id, struct rh_server *srv, char *err, size_t errlen);

/* Adds the listening socket <fd> (owned from here on; <tls>: a listen_tls address) to <w>: a
 * handed-over listener no worker took for its own (the old process had more workers). 0 or -1.
 * Main thread, before the worker starts. */
int rh_worker_adopt_listener(struct rh_worker *w, int fd, bool tls, const char *addr);

/* Starts the thread. Returns 0 or an errno value. */
int rh_worker_start(struct rh_worker *w);

/* Wakes the worker so it notices srv->stopping. Any thread. */
void rh_worker_wake(struct rh_worker *w);

/* Joins the thread (if it was started) and frees everything the worker owns. Main thread. */
void rh_worker_finish(struct rh_worker *w);

/* Stops accepting until the connection count is below the limit again and <retry_ms> passed.
 * Worker thread. */
void rh_worker_pause_accept(struct rh_worker *w, unsigned retry_ms);

/* Queues <d> to be released by <release> after the current event batch (its endpoint is closed
 * already). Worker thread. */
static inline void
rh_worker_defer(struct rh_worker *w, struct rh_deferred *d,
		void (*release)(struct rh_worker *w, struct rh_deferred *d))
{
	d->release = release;
	d->next = w->closed;
	w->closed = d;
}

/* Releases what was closed during the batch (the loop does this after each one; the exit hook
 * before it frees what the releases put on the free lists). Worker thread. */
void rh_worker_release_closed(struct rh_worker *w);

#endif
