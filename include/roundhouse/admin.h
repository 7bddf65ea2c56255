/* The admin listener ([admin] listen): a small HTTP/1.1 server on the control thread's loop
 * (health.h's struct rh_control_service), off the request path, so a scrape never costs a worker
 * anything but the relaxed counter stores it makes anyway.
 *
 *   GET /metrics   Prometheus text format 0.0.4: requests by backend and status class, failures,
 *                  retries, queue timeouts, backend states and transitions, connections, bytes,
 *                  latency histograms, TLS handshakes, the config generation and last reload
 *   GET /status    JSON: every backend with its address, name, weight, state and since when, last
 *                  check, certificate expiry, in-flight and idle connections; the reload status
 *   GET /healthz   200 "ok" while accepting traffic, 503 "draining" once a stop or upgrade began
 *   POST /reload   what SIGHUP does; answers once the reload is applied (200) or refused (400,
 *                  with the error)
 *
 * Every answer closes the connection. A client has 5 s to send its head (at most 8 KiB) and read the
 * answer; at most 32 admin connections at once, the others are closed at accept. */
#ifndef RH_ADMIN_H
#define RH_ADMIN_H

#include <stddef.h>
#include <time.h>

struct rh_admin;
struct rh_health;
struct rh_server;
struct rh_worker;
struct rh_control_service;

/* What the pages read. All must outlive the admin listener. */
struct rh_admin_sources {
	struct rh_server *srv;       /* the runtime (backends), the stop flag, the access log */
	struct rh_worker *workers;   /* [n_workers]: their counters */
	unsigned n_workers;
	struct rh_health *health;    /* checks, certificates, reloads */
	const char *config_path;
	time_t started;              /* process start (Unix time) */
};

/* The admin server on <listen_fd> (listening, non-blocking; owned from here on). NULL with <err>
 * when memory ran out. Main thread, before the control thread starts. */
struct rh_admin *rh_admin_create(int listen_fd, const struct rh_admin_sources *src, char *err,
				 size_t errlen);

/* Its service for rh_health_set_service. */
const struct rh_control_service *rh_admin_service(struct rh_admin *a);

/* The listening socket (for a binary upgrade to hand over). */
int rh_admin_listen_fd(const struct rh_admin *a);

/* Stops accepting admin connections (a binary upgrade: the new process answers on the port now);
 * the control thread closes its listener at its next loop turn (wake it with rh_health_wake).
 * Any thread. */
void rh_admin_stop_listening(struct rh_admin *a);

/* Closes everything (after the control thread stopped). NULL ok. */
void rh_admin_destroy(struct rh_admin *a);

#endif
