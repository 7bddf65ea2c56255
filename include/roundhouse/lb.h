/* Backend selection: one ops table per algorithm (src/lb_<name>.c), in the manner of HAProxy's
 * lbprm callbacks.
 *
 *   build  control thread, when a snapshot is made: precomputes what pick needs from the snapshot's
 *          selectable backends (healthy, weight > 0) into a table the snapshot owns.
 *   pick   request path, any worker, no lock, no allocation: a backend for <key> that is not in
 *          <tried>, looking at no more than <max_iterations> candidates; NULL when none of those is
 *          usable (the caller answers 502).
 *
 * <tried> holds the backends this request already failed on, so a retry goes elsewhere whatever the
 * algorithm. Keys come from rh_lb_request_key (consistent_hash only); RH_LB_NO_KEY means the request
 * has none (its header or cookie is missing) and the pick spreads it as round robin would. */
#ifndef RH_LB_H
#define RH_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roundhouse/config.h"
#include "roundhouse/http1.h"

struct rh_backend;
struct rh_snapshot;

#define RH_LB_NO_KEY UINT64_C(0) /* rh_lb_hash never returns 0 */
#define RH_LB_MAX_TRIED 8

/* The backends one request already failed on (compared by address, never dereferenced). */
struct rh_lb_tried {
	unsigned n;
	const struct rh_backend *b[RH_LB_MAX_TRIED];
};

static inline bool
rh_lb_tried_has(const struct rh_lb_tried *t, const struct rh_backend *b)
{
	for (unsigned i = 0; t != NULL && i < t->n; i++)
		if (t->b[i] == b)
			return true;
	return false;
}

static inline void
rh_lb_tried_add(struct rh_lb_tried *t, const struct rh_backend *b)
{
	if (t->n < RH_LB_MAX_TRIED && !rh_lb_tried_has(t, b))
		t->b[t->n++] = b;
}

struct rh_lb_ops {
	const char *name; /* as in [upstream] algorithm */
	bool uses_key;    /* the request's hash key is computed only for these */
	/* The table depends on the backend set and weights only, not on health: a snapshot that only
	 * changes health shares its predecessor's table instead of building it again. */
	bool table_ignores_health;
	/* 0 with *<table> set (NULL is a valid table), or -1 when memory ran out. A table is one
	 * allocation: the snapshot gives it back with free(). */
	int (*build)(const struct rh_snapshot *s, void **table);
	struct rh_backend *(*pick)(const struct rh_snapshot *s, const void *table, uint64_t key,
				   const struct rh_lb_tried *tried, unsigned max_iterations);
};

extern const struct rh_lb_ops rh_lb_round_robin;
extern const struct rh_lb_ops rh_lb_weighted_round_robin;
extern const struct rh_lb_ops rh_lb_random;
extern const struct rh_lb_ops rh_lb_least_conn;
extern const struct rh_lb_ops rh_lb_consistent_hash;

/* Points on consistent_hash's ring <table> (for tests: the ring is capped, see lb_consistent_hash.c). */
size_t rh_lb_consistent_hash_points(const void *table);

/* The ops of <a>. */
const struct rh_lb_ops *rh_lb_ops_of(enum rh_lb_algorithm a);

/* ---- helpers the algorithms share ---- */

/* A 64-bit hash of <len> bytes (FNV-1a, then a murmur3 finalizer so that the low and high bits are
 * both well mixed). Never RH_LB_NO_KEY. */
uint64_t rh_lb_hash(const void *p, size_t len);

/* The calling thread's pseudo-random generator (xoshiro-style, seeded once per thread): no shared
 * state, so random and least_conn picks never write a shared cache line. */
uint64_t rh_lb_rand(void);

/* A uniform number in [0, n), n > 0. */
static inline uint32_t
rh_lb_rand_below(uint32_t n)
{
	return (uint32_t)(((rh_lb_rand() >> 32) * (uint64_t)n) >> 32);
}

/* The request's key for consistent hashing, as <hk> says: the target ("uri"), the target without
 * its query ("path"), <client_ip> (text), the first value of header NAME, or the value of cookie NAME.
 * RH_LB_NO_KEY when the header or cookie is missing. <req> as parsed (its spans still valid). */
uint64_t rh_lb_request_key(const struct rh_hash_key *hk, const struct rh_http_request *req,
			   struct rh_span client_ip);

#endif
