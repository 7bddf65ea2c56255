/* The client connection state machine: read and parse a request head, pick a backend, stream the
 * request to it and the response back, then the next (pipelined) request. See docs/architecture.md.
 *
 * This is the layer above the worker's loop: the loop hands it new sockets and its turning points
 * through rh_conn_hooks (main.c puts them in struct rh_server), and its endpoints carry their own
 * handlers. It uses upstream connections through upstream.h only. */
#ifndef RH_CONN_H
#define RH_CONN_H

#include "roundhouse/worker.h"

/* Builds the static error responses. Main thread, before workers start; 0 or -1 (no memory). */
int rh_conn_global_init(void);

/* The worker hooks of the HTTP proxy: accepted (a client connection, TLS first on a listen_tls
 * address), generation (idle connections to backends that left are closed), drain (connections
 * between requests close now, the others after their exchange) and exit. */
extern const struct rh_worker_hooks rh_conn_hooks;

#endif
