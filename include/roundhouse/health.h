/* The health thread: its own epoll loop, TCP-connect probes of every backend in parallel every
 * `frequency`, each bounded by `timeout`; rise/fall counters; a new view is published only when some
 * backend's health changes, and each transition is logged once:
 *   "backend 127.0.0.1:343 down: Connection refused"  /  "backend 127.0.0.1:8081 up"
 * (the reason is strerror() of the connect error, or "timeout after N ms").
 * With type = none no thread is started and every backend stays healthy. */
#ifndef RH_HEALTH_H
#define RH_HEALTH_H

#include <stddef.h>
#include <stdint.h>

struct rh_pool;
struct rh_config;
struct rh_health;

/* Allocates the checker for <pool> with the [health_check] settings of <cfg> (both must outlive it).
 * Returns NULL with a message in <err> on failure. Main thread. */
struct rh_health *rh_health_create(struct rh_pool *pool, const struct rh_config *cfg, char *err,
				   size_t errlen);

/* Starts the thread; the first round of probes begins at once. Returns 0 or -1 (errno set). */
int rh_health_start(struct rh_health *h);

/* Asks the thread to stop, wakes it and joins it (promptly, even mid-round). Safe if never started.
 * Main thread; the caller must not be an online QSBR reader (the health thread may be waiting in
 * urcu_qsbr_synchronize_rcu for it). */
void rh_health_stop(struct rh_health *h);

/* Frees <h> (stopped first). Accepts NULL. */
void rh_health_destroy(struct rh_health *h);

/* (addition) How many views the health thread has published so far: one per round in which some
 * backend's health changed. Any thread; for tests and stats. */
uint64_t rh_health_publications(const struct rh_health *h);

#endif
