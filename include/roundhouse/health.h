/* The control thread (src/health.c): the only writer of the runtime snapshot after #1. Its epoll
 * loop runs the active checks of every backend every `frequency` (+-jitter), each bounded by
 * `timeout`, through probe.c (TCP connect; TLS handshake with [health_check] tls; type = http: a GET
 * of `path` whose status must be within `expect`), takes the workers' passive failure reports, and
 * applies the resolver thread's DNS rounds ([upstream] resolve). One state machine per backend
 * (backend.h: unknown, up, down, draining), HAProxy's rise/fall counter; a new snapshot is
 * published only when some backend's routing changes, and each transition is counted on the
 * backend and logged once with its reason:
 *   "backend 127.0.0.1:343 down: Connection refused (1 of 1)"  /  "backend 127.0.0.1:8081 up"
 *   "backend 10.0.0.7:8080 down: HTTP 503 from /healthz (3 of 3)"
 *   "backend 10.0.0.7:8080 down: 3 failures while proxying (last: connect failed: Connection refused) (3 of 3)"
 *
 * Each completed TLS handshake records the backend's certificate (rh_health_cert) and logs, once per
 * certificate and at most once a day, a warning `cert_warn_days` before it expires (or after it
 * has), and, with verify = false, that its chain or name do not verify.
 *
 * With type = none nothing is probed (every backend is up) and passive reports are ignored (only a
 * probe could bring a backend back); the thread still runs for DNS. */
#ifndef RH_HEALTH_H
#define RH_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct rh_runtime;
struct rh_config;
struct rh_health;
struct rh_tls_upstream;

/* Allocates the checker for the backends of <rt>'s live snapshot with the [health_check] settings
 * of <cfg> (both must outlive it). The checker's thread becomes <rt>'s one writer once started.
 * <tls> is the upstream TLS context the probes use when cfg->health_tls is set (it must outlive the
 * checker too); pass NULL for plain TCP probes (it is ignored when cfg->health_tls is false).
 * cfg->health_tls with a NULL <tls> is a programming error and fails (unless type = none, where
 * nothing probes). Returns NULL with a message in <err> on failure. Main thread. */
struct rh_health *rh_health_create(struct rh_runtime *rt, const struct rh_config *cfg,
				   const struct rh_tls_upstream *tls, char *err, size_t errlen);

/* Starts the thread (and the resolver's, with [upstream] resolve); the first round of probes begins
 * at once. Returns 0 or -1 (errno set). */
int rh_health_start(struct rh_health *h);

/* Asks the thread to stop, wakes it and joins it (promptly, even mid-round). Safe if never started.
 * Main thread; the caller must not be an online QSBR reader (the health thread may be waiting in
 * urcu_qsbr_synchronize_rcu for it). */
void rh_health_stop(struct rh_health *h);

/* Frees <h> (stopped first). Accepts NULL. */
void rh_health_destroy(struct rh_health *h);

/* (addition) How many snapshots the health thread has published so far: one per round in which some
 * backend's health changed. Any thread; for tests and stats. */
uint64_t rh_health_publications(const struct rh_health *h);

#define RH_HEALTH_VERIFY_ERROR_LEN 96

/* What the last completed TLS probe of a backend learned about its certificate. */
struct rh_health_cert {
	bool verified;         /* chain and name verify (whatever `verify` says) */
	char verify_error[RH_HEALTH_VERIFY_ERROR_LEN]; /* why not, when !verified; else "" */
	time_t not_after;      /* the leaf certificate's expiry (Unix time), 0 if unknown */
	time_t checked_at;     /* when that handshake completed (Unix time) */
};

/* Copies into *<out> what the last completed TLS handshake with backend <backend> (its index in
 * the live snapshot's backends) showed. False when there is none yet (plain TCP probes, no handshake has
 * completed, or <backend> is out of range). A failed handshake leaves the previous record in place
 * (its checked_at tells how old it is). Any thread, any time between create and destroy (a short
 * mutex against the health thread; not for the request path). */
bool rh_health_cert(const struct rh_health *h, size_t backend, struct rh_health_cert *out);

/* The expiry-warning decision, pure: true when <warn_days> > 0, <not_after> != 0 and the
 * certificate expires less than <warn_days> days after <now>; then <buf> gets the text that follows
 * "backend NAME " in the log line:
 *   "certificate expires in 2 days (2026-11-29 10:00:00 UTC)"   (or "in 1 day", "in 5 hours",
 *                                                                  "in less than an hour")
 *   "certificate expired on 2026-11-29 10:00:00 UTC"           (not_after <= now)
 * False (and <buf> untouched) otherwise. */
bool rh_health_cert_warning(time_t now, time_t not_after, unsigned warn_days, char *buf,
			    size_t len);

/* ---- what else the control thread's loop serves ---- */

/* A service on the control thread's epoll loop (the admin listener, admin.c): <attach> registers
 * its endpoints on <epfd> when the thread starts, <tick> runs once per loop turn and returns the
 * rh_clock_ms time it wants to run again (UINT64_MAX: only on its events), <detach> runs as the
 * thread ends. All three on the control thread. */
struct rh_control_service {
	void *arg;
	int (*attach)(void *arg, int epfd);
	uint64_t (*tick)(void *arg, uint64_t now_ms);
	void (*detach)(void *arg);
};

/* Wakes the control thread's loop (a service has something to do at its next tick). Any thread. */
void rh_health_wake(struct rh_health *h);

/* Adds <svc> (one at most; it must outlive <h>). Before rh_health_start. */
void rh_health_set_service(struct rh_health *h, const struct rh_control_service *svc);

/* The last completed check of a backend, for GET /status. */
struct rh_health_check {
	bool done;        /* some check completed */
	bool ok;
	time_t at;        /* when (Unix time) */
	char why[192];    /* why it failed ("Connection refused", "HTTP 503 from /healthz") */
};

/* Copies the last check of backend <i> of the live snapshot. False when out of range. Control
 * thread only (a service's handler). */
bool rh_health_last_check(const struct rh_health *h, size_t i, struct rh_health_check *out);

/* ---- reloads ---- */

#define RH_HEALTH_RELOAD_ERR_LEN 512

struct rh_health_reload_status {
	uint64_t generation;  /* 1 at start, +1 per applied reload */
	uint64_t ok, failed;  /* reloads applied / refused */
	bool last_ok;         /* the last attempt was applied (true before any) */
	time_t last_at;       /* when the last attempt ended (Unix time); 0: none yet */
	time_t last_ok_at;    /* when the config in force was loaded (start or the last good reload) */
	char last_error[RH_HEALTH_RELOAD_ERR_LEN]; /* of the last failed attempt, "" if none */
};

/* Hands a loaded and checked config to the control thread, which applies it (when no round of
 * probes is in flight) and owns it from then on: a new snapshot with its settings, algorithm and
 * backends (those that stay keep their state, connections and TLS sessions; removed ones drain),
 * its health settings and its names to resolve. Main thread. */
void rh_health_reload(struct rh_health *h, struct rh_config *cfg);

/* A reload that failed with <error> (the config in force stays): recorded for the metrics, the
 * status and POST /reload. Main thread. */
void rh_health_reload_failed(struct rh_health *h, const char *error);

/* The reload counters and the last result. Any thread. */
void rh_health_reload_status(struct rh_health *h, struct rh_health_reload_status *out);

/* +1 for each reload result recorded (applied or failed). Any thread. */
uint64_t rh_health_reload_seq(const struct rh_health *h);

/* The config in force (the control thread's view). Control thread only. */
const struct rh_config *rh_health_config(const struct rh_health *h);

#endif
