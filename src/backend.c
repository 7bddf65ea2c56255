/* Backends, the RCU-protected view of their health, and round-robin selection.
 *
 * The view is immutable once published: rh_pool_publish() builds a new one, swaps it in with
 * rcu_xchg_pointer() and frees the old one after urcu_qsbr_synchronize_rcu(). Readers (workers) are
 * registered QSBR threads and hold a view pointer only until their next quiescent point. */
#include "roundhouse/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

/* ThreadSanitizer cannot see liburcu's synchronisation: the library is not instrumented, so neither
 * the publication (rcu_xchg_pointer -> rcu_dereference) nor the grace period (reader quiescent state
 * -> writer's synchronize_rcu returns) is a happens-before edge for TSan. We state both edges with
 * __tsan_release/__tsan_acquire, which is exactly what liburcu guarantees:
 *   publication: release on &pool->live before the exchange, acquire after rcu_dereference;
 *   grace period: every reader releases <grace> before each quiescent/offline point, and the writer
 *                 acquires it after synchronize_rcu, before freeing the old view.
 * TSan's release merges clocks, so all readers' releases accumulate in <grace>. */
#if defined(__SANITIZE_THREAD__)
#define RH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RH_TSAN 1
#endif
#endif

#ifdef RH_TSAN
#include <sanitizer/tsan_interface.h>
static char grace;
#define tsan_acquire(addr) __tsan_acquire((void *)(addr))
#define tsan_release(addr) __tsan_release((void *)(addr))
#else
#define tsan_acquire(addr) ((void)0)
#define tsan_release(addr) ((void)0)
#endif

/* One allocation: the struct, then n backend pointers, then n health bytes. The struct's size is a
 * multiple of pointer alignment, so the pointer array right after it is aligned. Returns NULL if
 * memory ran out. */
static struct rh_backend_view *
view_alloc(struct rh_pool *pool, const uint8_t *healthy, uint64_t generation)
{
	size_t n = pool->n_backends;
	struct rh_backend_view *v;

	v = malloc(sizeof(*v) + n * sizeof(v->backends[0]) + n);
	if (v == NULL)
		return NULL;
	v->generation = generation;
	v->n = n;
	v->n_healthy = 0;
	v->backends = (struct rh_backend **)(v + 1);
	v->healthy = (uint8_t *)(v->backends + n);
	for (size_t i = 0; i < n; i++) {
		v->backends[i] = &pool->backends[i];
		v->healthy[i] = healthy == NULL || healthy[i] ? 1 : 0;
		v->n_healthy += v->healthy[i];
	}
	return v;
}


int
rh_pool_init(struct rh_pool *pool, const struct rh_config *cfg, char *err, size_t errlen)
{
	struct rh_backend_view *v;

	memset(pool, 0, sizeof(*pool));
	atomic_init(&pool->rr_counter, 0);
	pool->n_backends = cfg->n_backends;

	if (pool->n_backends > 0) {
		pool->backends = calloc(pool->n_backends, sizeof(pool->backends[0]));
		if (pool->backends == NULL)
			goto fail_nomem;
	}
	for (size_t i = 0; i < pool->n_backends; i++) {
		struct rh_backend *b = &pool->backends[i];
		const struct rh_backend_conf *bc = &cfg->backends[i];

		b->id = (unsigned)i;
		b->addr = bc->addr;
		memcpy(b->name, bc->addr.text, sizeof(b->name));
		b->name[sizeof(b->name) - 1] = '\0';
		b->weight = bc->weight;
		atomic_init(&b->tls_failure_logged, 0);
	}

	v = view_alloc(pool, NULL, 1);
	if (v == NULL)
		goto fail_view;
	tsan_release(&pool->live);
	rcu_set_pointer(&pool->live, v);
	return 0;

fail_view:
	free(pool->backends);
	pool->backends = NULL;
fail_nomem:
	snprintf(err, errlen, "backends: out of memory (%zu backends)", cfg->n_backends);
	pool->n_backends = 0;
	return -1;
}


void
rh_pool_finish(struct rh_pool *pool)
{
	/* No reader is left, so a plain read of the pointer is enough. */
	free(pool->live);
	pool->live = NULL;
	free(pool->backends);
	pool->backends = NULL;
	pool->n_backends = 0;
}


const struct rh_backend_view *
rh_pool_view(struct rh_pool *pool)
{
	const struct rh_backend_view *v = rcu_dereference(pool->live);

	tsan_acquire(&pool->live);
	return v;
}


int
rh_pool_publish(struct rh_pool *pool, const uint8_t *healthy)
{
	struct rh_backend_view *old, *v;

	/* Only the (single) writer replaces or frees views, so it may read the live one unregistered. */
	old = rcu_dereference(pool->live);
	v = view_alloc(pool, healthy, (old != NULL ? old->generation : 0) + 1);
	if (v == NULL)
		return -1;

	tsan_release(&pool->live);
	old = rcu_xchg_pointer(&pool->live, v);
	/* Wait until every registered reader has passed a quiescent state: none can still hold <old>.
	 * The writer is not a registered reader, so this cannot wait on itself. */
	urcu_qsbr_synchronize_rcu();
	tsan_acquire(&grace);
	free(old);
	return 0;
}


struct rh_backend *
rh_pool_select(struct rh_pool *pool, const struct rh_backend_view *view, uint64_t key,
	       unsigned max_iterations)
{
	(void)key;

	/* Fast path: nothing to find, so do not walk (or tick) at all. max_iterations is only a bound. */
	if (view->n == 0 || view->n_healthy == 0)
		return NULL;

	/* Each candidate looked at takes one tick, so with A, B and a dead C the dead one's ticks do not
	 * fall to its successor: A and B each get exactly half. */
	for (unsigned i = 0; i < max_iterations; i++) {
		uint_fast64_t t = atomic_fetch_add_explicit(&pool->rr_counter, 1, memory_order_relaxed);
		size_t idx = (size_t)(t % view->n);

		if (view->healthy[idx])
			return view->backends[idx];
	}
	return NULL;
}


void
rh_pool_reader_register(void)
{
	urcu_qsbr_register_thread();
}


void
rh_pool_reader_unregister(void)
{
	tsan_release(&grace);
	urcu_qsbr_unregister_thread();
}


void
rh_pool_reader_quiescent(void)
{
	tsan_release(&grace);
	urcu_qsbr_quiescent_state();
}


void
rh_pool_reader_offline(void)
{
	tsan_release(&grace);
	urcu_qsbr_thread_offline();
}


void
rh_pool_reader_online(void)
{
	urcu_qsbr_thread_online();
}
