/* The client connection state machine: read and parse a request head, pick a backend, stream the
 * request to it and the response back, then the next (pipelined) request. See docs/architecture.md. */
#ifndef RH_CONN_H
#define RH_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "roundhouse/worker.h"

/* Builds the static error responses. Main thread, before workers start; 0 or -1 (no memory). */
int rh_conn_global_init(void);

/* Accepts one connection from <l> (level-triggered: called once per readiness report), pausing
 * the listeners at the connection limit. Worker thread. */
void rh_conn_accept(struct rh_worker *w, struct rh_listener *l);

/* An epoll event (<events>) on a client socket. */
void rh_conn_event(struct rh_ep *ep, uint32_t events);

/* Drives <c> after an event on its client or upstream socket. */
void rh_conn_run(struct rh_conn *c);

/* Shutdown: closes <c> now if it is between requests, else lets the current exchange finish and
 * closes it afterwards. */
void rh_conn_drain(struct rh_conn *c);

/* Recycles connections closed during the batch. */
void rh_conn_reap(struct rh_worker *w);

/* Frees everything kept on the worker's free lists (worker exit). */
void rh_conn_free_all(struct rh_worker *w);

/* Next connection in the worker's list (iteration during shutdown). */
struct rh_conn *rh_conn_next(struct rh_conn *c);

#endif
