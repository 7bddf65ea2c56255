/* The runtime snapshot: building one (from a config, or from the live one with new health),
 * publishing it with RCU, and freeing the one it replaces after a grace period.
 *
 * A snapshot is one allocation: the struct, then the backend pointers, the weights, the selectable
 * indexes, the health bytes and the Host override's bytes. */
#include "roundhouse/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urcu/urcu-qsbr.h>

#include "roundhouse/backend.h"
#include "roundhouse/buf.h"
#include "roundhouse/lb.h"

#define MAX_URI 8192

/* An algorithm's table and the snapshots using it. Snapshots are built and freed by the writer
 * alone, so the count needs no atomics. */
struct rh_lb_table_ref {
	unsigned refs;
	void *table;
};

/* ThreadSanitizer cannot see liburcu's synchronisation: the library is not instrumented, so neither
 * the publication (rcu_xchg_pointer -> rcu_dereference) nor the grace period (reader quiescent state
 * -> writer's synchronize_rcu returns) is a happens-before edge for TSan. We state both edges with
 * __tsan_release/__tsan_acquire, which is exactly what liburcu guarantees:
 *   publication: release on &rt->live before the exchange, acquire after rcu_dereference;
 *   grace period: every reader releases <grace> before each quiescent/offline point, and the writer
 *                 acquires it after synchronize_rcu, before freeing the old snapshot.
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

int
rh_runtime_init(struct rh_runtime *rt, unsigned n_workers)
{
	memset(rt, 0, sizeof(*rt));
	rt->n_workers = n_workers ? n_workers : 1;
	rt->next_uid = 1;
	rt->report_fd = -1;
	atomic_init(&rt->report_pending, false);
	atomic_init(&rt->rr_counter, 0);
	rt->load = aligned_alloc(64, rt->n_workers * sizeof(rt->load[0]));
	if (!rt->load)
		return -1;
	for (unsigned i = 0; i < rt->n_workers; i++)
		atomic_init(&rt->load[i].inflight, 0);
	return 0;
}

void
rh_runtime_finish(struct rh_runtime *rt)
{
	/* no reader is left, so a plain read of the pointer is enough */
	rh_snapshot_free(rt->live);
	rt->live = NULL;
	free(rt->load);
	rt->load = NULL;
}

static uint64_t
gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* A snapshot with room for <n> backends and <host_len> bytes of Host, its arrays laid out. */
static struct rh_snapshot *
snapshot_alloc(size_t n, size_t host_len)
{
	struct rh_snapshot *s;
	size_t size = sizeof(*s) + n * (sizeof(s->backends[0]) + sizeof(s->weights[0]) +
					sizeof(s->up[0]) + sizeof(s->healthy[0])) + host_len + 1;

	s = calloc(1, size);
	if (!s)
		return NULL;
	/* pointers first, then 4-byte arrays, then bytes: each array is aligned for its type */
	s->backends = (struct rh_backend **)(s + 1);
	s->weights = (unsigned *)(s->backends + n);
	s->up = (uint32_t *)(s->weights + n);
	s->healthy = (uint8_t *)(s->up + n);
	char *host = (char *)(s->healthy + n);
	s->settings.host_header.p = host;
	s->settings.host_header.len = host_len;
	s->n = n;
	return s;
}

/* Everything after the backends, weights and settings are in place: weights reduced by their GCD,
 * health read from the backends, the selectable list, the generation and the algorithm's table
 * (<share>'s, when <share> has the same backends and weights and the table does not depend on
 * health; else built). Returns <s>, or NULL (and frees it) when memory ran out. */
static struct rh_snapshot *
snapshot_finish(struct rh_runtime *rt, struct rh_snapshot *s, const struct rh_lb_ops *lb,
		const struct rh_snapshot *share)
{
	uint64_t g = 0;

	for (size_t i = 0; i < s->n; i++)
		g = gcd(g, s->weights[i]);
	for (size_t i = 0; i < s->n; i++) {
		if (g > 1)
			s->weights[i] = (unsigned)(s->weights[i] / g);
		s->healthy[i] = s->backends[i]->up;
		if (s->healthy[i] && s->weights[i] > 0) {
			s->up[s->n_up++] = (uint32_t)i;
			s->up_weight += s->weights[i];
		}
	}
	s->rt = rt;
	s->generation = ++rt->generation;
	s->lb = lb;
	if (share && share->lb == lb && lb->table_ignores_health) {
		s->lb_ref = share->lb_ref;
		s->lb_ref->refs++;
	} else {
		s->lb_ref = malloc(sizeof(*s->lb_ref));
		if (!s->lb_ref || lb->build(s, &s->lb_ref->table) == -1) {
			free(s->lb_ref);
			s->lb_ref = NULL;
			rh_snapshot_free(s);
			return NULL;
		}
		s->lb_ref->refs = 1;
	}
	s->lb_table = s->lb_ref->table;
	return s;
}

static void
settings_from_config(struct rh_settings *st, const struct rh_config *cfg)
{
	if (st->host_header.len)
		memcpy((char *)st->host_header.p, cfg->host_header, st->host_header.len);
	st->max_iterations = cfg->max_iterations;
	st->keepalive = cfg->keepalive;
	st->x_forwarded_for = cfg->x_forwarded_for;
	st->limits = (struct rh_http_limits){
		.max_head = RH_BUF_SIZE,
		.max_uri = MAX_URI,
		.max_headers = RH_HTTP_MAX_HEADERS,
		.max_body = cfg->max_body_size,
	};
	st->hash_key = cfg->hash_key;
	st->hash_balance_factor = cfg->hash_balance_factor;
	st->connect_ms = cfg->connect_ms;
	st->client_header_ms = cfg->client_header_ms;
	st->upstream_read_ms = cfg->upstream_read_ms;
	st->idle_ms = cfg->idle_ms;
	st->retries = cfg->retries;
	st->queue_timeout_ms = cfg->queue_timeout_ms;
	st->splice = cfg->splice;
}

struct rh_snapshot *
rh_snapshot_from_config(struct rh_runtime *rt, const struct rh_config *cfg,
			const struct rh_snapshot *prev, bool initially_up, char *err, size_t errlen)
{
	return rh_snapshot_from_backends(rt, cfg, cfg->backends, cfg->n_backends, prev, initially_up, err,
					 errlen);
}

struct rh_snapshot *
rh_snapshot_from_backends(struct rh_runtime *rt, const struct rh_config *cfg,
			  const struct rh_backend_conf *backends, size_t n,
			  const struct rh_snapshot *prev, bool initially_up, char *err, size_t errlen)
{
	size_t host_len = cfg->host_header ? strlen(cfg->host_header) : 0;
	struct rh_snapshot *s = snapshot_alloc(n, host_len);
	/* marks the backends of <prev> already matched; a fresh value per attempt, so that marks left
	 * by an attempt that ran out of memory mean nothing to the next one */
	uint64_t taken = ++rt->mark_seq;

	if (!s)
		goto nomem;
	settings_from_config(&s->settings, cfg);
	for (size_t i = 0; i < n; i++) {
		const struct rh_backend_conf *bc = &backends[i];
		struct rh_backend *b = NULL;

		for (size_t j = 0; prev && j < prev->n && !b; j++) {
			struct rh_backend *o = prev->backends[j];
			if (o->mark != taken && strcmp(o->name, bc->addr.text) == 0 &&
			    strcmp(o->spec, bc->spec) == 0)
				b = o;
		}
		if (b) {
			rh_backend_ref(b);
		} else {
			b = rh_backend_create(bc, cfg->sni, rt->n_workers, initially_up);
			if (!b) {
				s->n = i; /* free what was taken so far */
				rh_snapshot_free(s);
				goto nomem;
			}
			b->uid = rt->next_uid++;
		}
		b->mark = taken;
		atomic_store_explicit(&b->max_conns, bc->max_conns, memory_order_relaxed);
		s->backends[i] = b;
		s->weights[i] = bc->weight;
	}
	s = snapshot_finish(rt, s, rh_lb_ops_of(cfg->algorithm), NULL);
	if (s)
		return s;
nomem:
	snprintf(err, errlen, "runtime: out of memory building a snapshot of %zu backends", n);
	return NULL;
}

struct rh_snapshot *
rh_snapshot_with_health(struct rh_runtime *rt, const struct rh_snapshot *prev)
{
	struct rh_snapshot *s = snapshot_alloc(prev->n, prev->settings.host_header.len);

	if (!s)
		return NULL;
	struct rh_span host = s->settings.host_header;
	s->settings = prev->settings;
	s->settings.host_header = host;
	memcpy((char *)host.p, prev->settings.host_header.p, host.len);
	for (size_t i = 0; i < prev->n; i++) {
		s->backends[i] = prev->backends[i];
		rh_backend_ref(s->backends[i]);
		s->weights[i] = prev->weights[i];
	}
	return snapshot_finish(rt, s, prev->lb, prev);
}

void
rh_runtime_report_failure(struct rh_runtime *rt, struct rh_backend *b, unsigned worker, int kind,
			  int err)
{
	struct rh_backend_local *l = &b->local[worker];

	if (rt->report_fd == -1)
		return;
	atomic_store_explicit(&l->last_failure, (uint_fast32_t)kind << 16 | ((unsigned)err & 0xffff),
			      memory_order_relaxed);
	/* release: the control thread that reads the count also sees the kind */
	atomic_store_explicit(&l->failures, atomic_load_explicit(&l->failures, memory_order_relaxed) + 1,
			      memory_order_release);
	if (atomic_exchange_explicit(&rt->report_pending, true, memory_order_seq_cst))
		return; /* a wake-up is on its way; the control thread reads every count when it comes */
	uint64_t one = 1;
	ssize_t r = write(rt->report_fd, &one, sizeof(one));
	(void)r; /* a full eventfd (it never is: the count saturates) wakes the reader anyway */
}

void
rh_snapshot_free(struct rh_snapshot *s)
{
	if (!s)
		return;
	if (s->lb_ref && --s->lb_ref->refs == 0) {
		free(s->lb_ref->table);
		free(s->lb_ref);
	}
	for (size_t i = 0; i < s->n; i++)
		rh_backend_unref(s->backends[i]);
	free(s);
}

void
rh_runtime_publish(struct rh_runtime *rt, struct rh_snapshot *s)
{
	/* only the (single) writer replaces or frees snapshots, so it may read the live one unregistered */
	struct rh_snapshot *old = rcu_dereference(rt->live);

	if (old) {
		uint64_t listed = ++rt->mark_seq;

		for (size_t i = 0; i < s->n; i++)
			s->backends[i]->mark = listed;
		for (size_t i = 0; i < old->n; i++)
			if (old->backends[i]->mark != listed)
				atomic_store_explicit(&old->backends[i]->retired, true,
						      memory_order_relaxed);
	}
	/* the release of the exchange orders the retired flags before the new generation */
	tsan_release(&rt->live);
	old = rcu_xchg_pointer(&rt->live, s);
	if (!old)
		return;
	/* wait until every registered reader has passed a quiescent state: none can still hold <old>.
	 * The writer is not a registered reader, so this cannot wait on itself. */
	urcu_qsbr_synchronize_rcu();
	tsan_acquire(&grace);
	rh_snapshot_free(old);
}

const struct rh_snapshot *
rh_runtime_snapshot(struct rh_runtime *rt)
{
	const struct rh_snapshot *s = rcu_dereference(rt->live);

	tsan_acquire(&rt->live);
	return s;
}

void
rh_rcu_reader_register(void)
{
	urcu_qsbr_register_thread();
}

void
rh_rcu_reader_unregister(void)
{
	tsan_release(&grace);
	urcu_qsbr_unregister_thread();
}

void
rh_rcu_reader_quiescent(void)
{
	tsan_release(&grace);
	urcu_qsbr_quiescent_state();
}

void
rh_rcu_reader_offline(void)
{
	tsan_release(&grace);
	urcu_qsbr_thread_offline();
}

void
rh_rcu_reader_online(void)
{
	urcu_qsbr_thread_online();
}
