/* The runtime snapshot: everything a request reads, in one immutable object published with RCU
 * (liburcu QSBR).
 *
 * A snapshot holds the settings an exchange uses, the backend set (stable backend objects, each with
 * its weight and health in this snapshot) and the selection algorithm's precomputed table. It is
 * never edited: the control thread, the only writer, builds a new one (from a config, or from the
 * live one with new health) and publishes it with rh_runtime_publish, which frees the old one after a
 * grace period. Workers read the live one with rh_runtime_snapshot at the start of a loop turn and
 * keep no pointer into it past the turn (their quiescent state is the epoll_wait between turns).
 *
 * State that must outlive snapshots lives in struct rh_runtime (the round-robin counter, each
 * worker's in-flight total) or on the backend objects (backend.h). */
#ifndef RH_RUNTIME_H
#define RH_RUNTIME_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roundhouse/config.h"
#include "roundhouse/http1.h"
#include "roundhouse/http1_serialize.h"

struct rh_backend;
struct rh_lb_ops;
struct rh_lb_table_ref;

/* The settings a request uses: a copy of what the config says, owned by the snapshot. */
struct rh_settings {
	unsigned max_iterations;        /* candidates one pick may look at */
	unsigned keepalive;             /* idle upstream connections per worker per backend */
	struct rh_span host_header;     /* len 0: keep the client's Host */
	enum rh_xff_mode x_forwarded_for;
	struct rh_http_limits limits;
	struct rh_hash_key hash_key;
	unsigned hash_balance_factor;   /* percent of the mean in-flight load; 0 = unbounded */
	uint32_t connect_ms, client_header_ms, upstream_read_ms, idle_ms;
	unsigned retries;               /* other backends one request may go to after a failure */
	uint32_t queue_timeout_ms;      /* how long a request waits for a max_conns slot */
	bool splice;                    /* known-length plain bodies through a pipe (splice(2)) */
};

struct rh_snapshot {
	uint64_t generation;     /* 1 for the first, +1 per snapshot built (published or not) */
	struct rh_runtime *rt;   /* the counters that outlive snapshots */
	struct rh_settings settings;

	size_t n;                      /* backends in the set */
	struct rh_backend **backends;  /* [n], config order; the snapshot holds a reference to each */
	unsigned *weights;             /* [n], reduced by their GCD (weight 0 stays 0: draining) */
	uint8_t *healthy;              /* [n] */

	/* The selectable backends: healthy with weight > 0, in config order. */
	size_t n_up;
	uint32_t *up;                  /* [n_up]: indexes into backends[] */
	uint64_t up_weight;            /* sum of their weights */

	const struct rh_lb_ops *lb;
	void *lb_table;                /* lb->build's */
	struct rh_lb_table_ref *lb_ref; /* owns lb_table, shared by the snapshots that differ only in
	                                   health when lb->table_ignores_health (writer only) */
};

/* Exchanges in flight on one worker, all backends together (for bounded-load hashing). */
struct rh_worker_load {
	alignas(64) atomic_uint_fast32_t inflight;
};

struct rh_runtime {
	struct rh_snapshot *live; /* RCU-protected: rh_runtime_snapshot / rh_runtime_publish only */
	unsigned n_workers;
	uint64_t generation;      /* of the last snapshot built (writer only) */
	uint64_t next_uid;        /* backend uids (writer only) */
	uint64_t mark_seq;        /* values for backend marks (writer only) */
	struct rh_worker_load *load; /* [n_workers] */
	alignas(64) atomic_uint_fast64_t rr_counter; /* drives round robin and the smooth schedule */

	/* Passive health: workers count failures on the backend (rh_runtime_report_failure) and wake
	 * the control thread through <report_fd> (an eventfd it owns; -1: no control thread, or
	 * [health_check] passive = false). <report_pending> makes one wake-up serve a burst. */
	int report_fd;
	alignas(64) atomic_bool report_pending;
};

/* Worker <worker> saw <b> fail while proxying (<kind>, <err> an errno or 0): counted for the
 * control thread, which is woken once per burst. No lock; one syscall per burst of failures. */
void rh_runtime_report_failure(struct rh_runtime *rt, struct rh_backend *b, unsigned worker,
			       int kind, int err);

/* Sets up <rt> for <n_workers> workers, with no snapshot yet. 0, or -1 when memory ran out. */
int rh_runtime_init(struct rh_runtime *rt, unsigned n_workers);

/* Frees the live snapshot (and with it the last references to the backends no upstream connection
 * holds). After every reader has stopped. */
void rh_runtime_finish(struct rh_runtime *rt);

/* A snapshot of <cfg>: its settings, algorithm and backends. A backend of <prev> (may be NULL) with
 * the same address and spec is the same object in the new one (keeping its state and health), the
 * others are new, up as <initially_up> says. The weights come from <cfg>. NULL with a message in
 * <err> when memory ran out. Writer only. */
struct rh_snapshot *rh_snapshot_from_config(struct rh_runtime *rt, const struct rh_config *cfg,
					    const struct rh_snapshot *prev, bool initially_up,
					    char *err, size_t errlen);

/* The same with the backend entries <backends>[0..<n>) in place of cfg->backends (the control
 * thread's, after names resolved to new addresses). */
struct rh_snapshot *rh_snapshot_from_backends(struct rh_runtime *rt, const struct rh_config *cfg,
					      const struct rh_backend_conf *backends, size_t n,
					      const struct rh_snapshot *prev, bool initially_up,
					      char *err, size_t errlen);

/* A copy of <prev> (same settings, backends, weights and algorithm) with each backend's health read
 * again from its <up> field. NULL when memory ran out. Writer only. */
struct rh_snapshot *rh_snapshot_with_health(struct rh_runtime *rt, const struct rh_snapshot *prev);

/* Frees a snapshot that was never published (drops its backend references). */
void rh_snapshot_free(struct rh_snapshot *s);

/* Makes <s> the live snapshot: backends of the old one that <s> does not list are marked retired
 * first, then <s> is swapped in, then, after a grace period (every registered reader has passed a
 * quiescent state), the old one is freed. The first publication has no old one. Writer only; the
 * writer must not be an online registered reader (the grace period would wait for itself). */
void rh_runtime_publish(struct rh_runtime *rt, struct rh_snapshot *s);

/* The live snapshot. Caller: a registered QSBR reader that is online (or the only thread running). */
const struct rh_snapshot *rh_runtime_snapshot(struct rh_runtime *rt);

/* QSBR reader-side calls. Each does what urcu_qsbr_<same name> does; readers (workers, tests) use
 * these, because in a ThreadSanitizer build they also tell TSan about the grace period: liburcu is
 * not instrumented, so without them TSan cannot see that a reader's last use of a snapshot happens
 * before the writer frees it. Offline/quiescent/unregister: only once done with every snapshot
 * pointer the thread holds. */
void rh_rcu_reader_register(void);
void rh_rcu_reader_unregister(void);
void rh_rcu_reader_quiescent(void);
void rh_rcu_reader_offline(void);
void rh_rcu_reader_online(void);

#endif
