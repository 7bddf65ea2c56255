/* Backends, the RCU-protected view of their health, and backend selection.
 *
 * struct rh_backend objects live as long as the process. The view (struct rh_backend_view) is an
 * immutable snapshot that the health thread replaces whole with rh_pool_publish(); workers read it
 * with rh_pool_view() inside a QSBR read-side section (any time their thread is online) and must not
 * keep the pointer past their next quiescent state. */
#ifndef RH_BACKEND_H
#define RH_BACKEND_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roundhouse/config.h"

struct rh_backend {
	unsigned id;             /* index in rh_pool.backends, 0..n-1 */
	struct rh_sockaddr addr; /* where to connect */
	char name[RH_ADDR_TEXT_LEN]; /* shown in logs: the numeric address, "127.0.0.1:8081" */
	unsigned weight;
	/* hash of the last TLS failure logged for this backend (0: none since the last success), so
	 * a broken backend is logged once per distinct reason, not once per request. Its own cache
	 * line: the fields above are read on every request. */
	alignas(64) atomic_uint_fast32_t tls_failure_logged;
};

struct rh_backend_view {
	uint64_t generation;   /* 1 for the first view, +1 per publication */
	size_t n;              /* == pool->n_backends */
	size_t n_healthy;
	struct rh_backend **backends; /* all backends, in config order */
	uint8_t *healthy;             /* healthy[i] for backends[i] */
};

struct rh_pool {
	struct rh_backend *backends;
	size_t n_backends;
	struct rh_backend_view *live; /* RCU-protected: rcu_dereference / rcu_xchg_pointer only */
	alignas(64) atomic_uint_fast64_t rr_counter; /* survives view swaps */
};

/* Builds the backends from <cfg> and publishes view #1 with every backend healthy. Returns 0, or -1
 * with a message in <err>. Main thread, before workers start. */
int rh_pool_init(struct rh_pool *pool, const struct rh_config *cfg, char *err, size_t errlen);

/* Frees the backends and the live view. After every reader has stopped (workers joined). */
void rh_pool_finish(struct rh_pool *pool);

/* The current view. Caller: a registered QSBR thread that is online (or the only thread running). */
const struct rh_backend_view *rh_pool_view(struct rh_pool *pool);

/* Publishes a new view where backend i is healthy iff <healthy>[i] (n_backends entries), then waits
 * for a grace period (urcu_qsbr_synchronize_rcu) and frees the old view. Returns 0, or -1 if memory
 * ran out (the old view stays). Writer thread only (the health thread; never a registered reader).
 * One writer at a time. */
int rh_pool_publish(struct rh_pool *pool, const uint8_t *healthy);

/* Round-robin selection: looks at no more than <max_iterations> candidates, each taking one tick of
 * the shared counter (so a skipped dead backend does not skew the share of the others), and returns
 * the first healthy one, or NULL when none of those looked at is healthy (or the view is empty).
 * <max_iterations> is an upper bound: a view with no healthy backend returns NULL at once without
 * touching the counter. <key> is for hashing algorithms (ignored by round-robin). Any reader thread;
 * lock-free, no allocation. */
struct rh_backend *rh_pool_select(struct rh_pool *pool, const struct rh_backend_view *view,
				  uint64_t key, unsigned max_iterations);

/* (addition) QSBR reader-side calls. Each does what urcu_qsbr_<same name> does; readers (workers,
 * tests) should prefer these, because in a ThreadSanitizer build they also tell TSan about the grace
 * period: liburcu is not instrumented, so without them TSan cannot see that a reader's last use of a
 * view happens before rh_pool_publish() frees it, and reports a false race. In other builds they are
 * plain calls into liburcu. rh_pool_reader_offline/quiescent/unregister must be called by a thread
 * that has finished with every view pointer it holds. */
void rh_pool_reader_register(void);
void rh_pool_reader_unregister(void);
void rh_pool_reader_quiescent(void);
void rh_pool_reader_offline(void);
void rh_pool_reader_online(void);

#endif
