/* Upstream connections: non-blocking connects to backends and the worker's keep-alive pool of idle
 * ones (on the backend object, this worker's entry: most recently used first, bounded by
 * `keepalive`). An idle connection stays registered in epoll: any event on it (the backend closed it
 * or sent bytes nobody asked for) closes it at once, so a dead one is never handed to a request.
 *
 * Each upstream connection holds a reference to its backend, so a backend that left the snapshot
 * lives until its last connection is gone. A connection with an owner counts as one exchange in
 * flight on its backend (least_conn, bounded-load hashing).
 *
 * The owner of a connection in use drives it: rh_upstream_acquire installs the owner's handler on
 * the endpoint (as nginx's upstream module sets the peer connection's handlers), and the pool puts
 * its own back (an event on an idle connection closes it). This module calls nothing of its owner's,
 * so it sits between the client side (conn.c, above) and the loop (worker.h, below). */
#ifndef RH_UPSTREAM_H
#define RH_UPSTREAM_H

#include <stdbool.h>

#include "roundhouse/timer.h"
#include "roundhouse/transport.h"
#include "roundhouse/worker.h"

struct rh_backend;

struct rh_upconn {
	struct rh_ep ep; /* first: epoll data.ptr */
	struct rh_worker *w;
	struct rh_backend *backend;
	struct rh_conn *owner;     /* the client connection using it; NULL while idle */
	struct rh_upconn *next;    /* idle list or free list */
	struct rh_upconn *prev;    /* idle list */
	struct rh_deferred closed; /* released after the batch it was closed in */
	bool in_flight;            /* counted in the backend's and the worker's in-flight numbers */
	bool slot;                 /* holds one of the backend's max_conns slots (the owner took it
				      with rh_backend_slot_take; given back when it stops being in flight) */
	struct rh_timer timer;     /* idle expiry while pooled */
	bool idle;                 /* in the worker's idle list */
	bool connecting;
	bool reused;               /* came from the pool for the current request */
	bool wrote;                /* a byte of the current request reached it */
};

/* An upstream connection to <backend> for <owner>: a pooled one if any (unless <fresh_only>), else
 * a new non-blocking connect (<up>->connecting set while it completes; with TLS to the backends,
 * its handshake is still to be driven with rh_ep_handshake). Its events go to <handler> until it
 * is released or closed. NULL with errno when the connect failed at once. Worker thread. */
struct rh_upconn *rh_upstream_acquire(struct rh_worker *w, struct rh_backend *backend,
				      struct rh_conn *owner, rh_ep_handler *handler, bool fresh_only);

/* Gives <up> back after a complete exchange: pooled if there is room (<keepalive> per backend on
 * this worker), else closed. */
void rh_upstream_release(struct rh_worker *w, struct rh_upconn *up, unsigned keepalive);

/* Closes <up> (whatever its state) and recycles it after the current event batch, dropping its
 * backend reference then. */
void rh_upstream_close(struct rh_worker *w, struct rh_upconn *up);

/* Closes the worker's idle connections: all of them (shutdown), or with <retired_only> those to
 * backends that left the snapshot. */
void rh_upstream_close_idle(struct rh_worker *w, bool retired_only);

/* Frees the connections kept for reuse (worker exit, after the closed ones were released). */
void rh_upstream_free_cached(struct rh_worker *w);

#endif
