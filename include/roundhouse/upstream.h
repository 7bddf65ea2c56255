/* Upstream connections: non-blocking connects to backends and the worker's keep-alive pool of idle
 * ones (per backend, most recently used first, bounded by `keepalive`). An idle connection stays
 * registered in epoll: any event on it (the backend closed it or sent bytes nobody asked for) closes
 * it at once, so a dead one is never handed to a request. */
#ifndef RH_UPSTREAM_H
#define RH_UPSTREAM_H

#include <stdbool.h>

#include "roundhouse/timer.h"
#include "roundhouse/worker.h"

struct rh_backend;

struct rh_upconn {
	struct rh_ep ep; /* first: epoll data.ptr */
	struct rh_backend *backend;
	struct rh_conn *owner;     /* the client connection using it; NULL while idle */
	struct rh_upconn *next;    /* idle list, free list or closed list */
	struct rh_upconn *prev;    /* idle list */
	struct rh_timer timer;     /* idle expiry while pooled */
	bool idle;                 /* in the worker's idle list */
	bool connecting;
	bool reused;               /* came from the pool for the current request */
	bool wrote;                /* a byte of the current request reached it */
};

/* An upstream connection to <backend> for <owner>: a pooled one if any, else a new non-blocking
 * connect (<up>->connecting set while it completes). NULL with errno when the connect failed at once.
 * Worker thread. */
struct rh_upconn *rh_upstream_acquire(struct rh_worker *w, struct rh_backend *backend,
				      struct rh_conn *owner, bool fresh_only);

/* Gives <up> back after a complete exchange: pooled if there is room, else closed. */
void rh_upstream_release(struct rh_worker *w, struct rh_upconn *up);

/* Closes <up> (whatever its state) and recycles it after the current event batch. */
void rh_upstream_close(struct rh_worker *w, struct rh_upconn *up);

/* Closes every idle connection (shutdown). */
void rh_upstream_close_idle(struct rh_worker *w);

/* Recycles upconns closed during the batch. */
void rh_upstream_reap(struct rh_worker *w);

#endif
