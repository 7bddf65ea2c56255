/* consistent_hash: a Ketama ring (libketama's points, as HAProxy's lb_chash and nginx's hash
 * consistent) with optional bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing
 * with Bounded Loads", as HAProxy's hash-balance-factor).
 *
 * The ring holds 160 points per unit of (GCD-reduced) weight for every backend with weight > 0,
 * healthy or not: a backend that goes down keeps its points and pick steps over them, so only its
 * keys move (each to the next healthy point clockwise), and they come back to it when it recovers.
 * A draining backend (weight 0) has no points, so again only its keys move. The ring depends on the
 * backend set and the weights only, so a snapshot that only changes health shares it
 * (table_ignores_health): a backend going down costs no MD5 and no sort.
 *
 * The ring is capped at RING_MAX_POINTS (16 MiB): a file with thousands of heavy backends would
 * otherwise ask for 160 points per unit of weight each (1000 backends of weight 1000: 160 million
 * points, 1.3 GB). Above the cap every backend keeps the same share of points, weight for weight,
 * and its points are the first ones of its own sequence, so a backend's points do not depend on
 * which other backends exist beyond the scale. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/md5.h>

#include "roundhouse/backend.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

#define DIGESTS_PER_WEIGHT 40 /* libketama: 40 MD5 digests per unit of weight, 4 points each */
#define POINTS_PER_DIGEST 4
#define RING_MAX_POINTS (UINT32_C(1) << 21)
#define RING_MAX_DIGESTS (RING_MAX_POINTS / POINTS_PER_DIGEST)

/* Spreads keyless requests: t * this visits the ring like a Weyl sequence (odd, 2^64 / phi). */
#define KEYLESS_STEP UINT64_C(0x9e3779b97f4a7c15)

struct chash_point {
	uint32_t hash;
	uint32_t index; /* into s->backends */
};

struct chash_ring {
	size_t n;
	struct chash_point p[]; /* [n], by hash, then by index */
};

static int
point_cmp(const void *a, const void *b)
{
	const struct chash_point *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

/* MD5 digests (4 points each) for a backend of weight <w> when the weights add up to <total>
 * (DIGESTS_PER_WEIGHT per unit, scaled down to fit RING_MAX_DIGESTS; at least one for w > 0). */
static uint64_t
digests_of(unsigned w, uint64_t total)
{
	uint64_t d = (uint64_t)w * DIGESTS_PER_WEIGHT;

	if (w == 0 || total * DIGESTS_PER_WEIGHT <= RING_MAX_DIGESTS)
		return d;
	d = d * RING_MAX_DIGESTS / (total * DIGESTS_PER_WEIGHT);
	return d ? d : 1;
}

/* The ring of <s>'s backends with weight > 0 (healthy or not) into *<table>: 0, or -1 when memory
 * ran out. Control thread, when the snapshot is built. */
static int
chash_build(const struct rh_snapshot *s, void **table)
{
	uint64_t total = 0, n = 0;

	*table = NULL;
	if (s->n > UINT32_MAX)
		return -1;
	for (size_t i = 0; i < s->n; i++)
		total += s->weights[i]; /* at most 1000 each */
	for (size_t i = 0; i < s->n; i++)
		n += digests_of(s->weights[i], total) * POINTS_PER_DIGEST;
	if (n == 0)
		return 0; /* nothing selectable: pick answers NULL from n_up */

	struct chash_ring *r = malloc(sizeof(*r) + n * sizeof(r->p[0]));
	if (!r)
		return -1;
	r->n = n;
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		size_t digests = (size_t)digests_of(s->weights[i], total);

		for (size_t d = 0; d < digests; d++) {
			char text[RH_ADDR_TEXT_LEN + 24];
			uint8_t md[MD5_DIGEST_LENGTH];
			int len = snprintf(text, sizeof(text), "%s-%zu", s->backends[i]->name, d);

			MD5((const uint8_t *)text, (size_t)len, md);
			for (unsigned j = 0; j < POINTS_PER_DIGEST; j++) {
				const uint8_t *q = md + 4 * j;
				r->p[k].hash = (uint32_t)q[0] | (uint32_t)q[1] << 8 |
					       (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
				r->p[k].index = (uint32_t)i;
				k++;
			}
		}
	}
	qsort(r->p, n, sizeof(r->p[0]), point_cmp);
	*table = r;
	return 0;
}

size_t
rh_lb_consistent_hash_points(const void *table)
{
	return table ? ((const struct chash_ring *)table)->n : 0;
}

/* The first point of <r> at or after <pos>, clockwise (wrapping to 0). */
static size_t
ring_find(const struct chash_ring *r, uint32_t pos)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->p[mid].hash < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == r->n ? 0 : lo;
}

/* How many exchanges a backend of weight <w> may have in flight under balance factor <f> percent
 * when <total> are in flight in all: ceil(f/100 * (total + 1) * w / <up_weight>), at least 1
 * (saturating: no bound when the product does not fit). */
static uint64_t
capacity(unsigned f, uint64_t total, unsigned w, uint64_t up_weight)
{
	uint64_t num, den;

	if (__builtin_mul_overflow((uint64_t)f, total + 1, &num) ||
	    __builtin_mul_overflow(num, (uint64_t)w, &num) ||
	    __builtin_mul_overflow(up_weight, UINT64_C(100), &den))
		return UINT64_MAX;
	uint64_t c = num / den + (num % den != 0);
	return c ? c : 1;
}

/* The backend for <key>: the first point clockwise from the key's position whose backend is healthy,
 * is not in <tried> and (with a balance factor) is below its capacity. Each point
 * looked at counts against <max_iterations>. Any worker, within its RCU read side; no allocation,
 * no write to shared memory except the round-robin counter for keyless requests. */
static struct rh_backend *
chash_pick(const struct rh_snapshot *s, const void *table, uint64_t key,
	   const struct rh_lb_tried *tried, unsigned max_iterations)
{
	const struct chash_ring *r = table;
	uint32_t pos;

	if (s->n_up == 0 || r == NULL || max_iterations == 0)
		return NULL;
	if (key == RH_LB_NO_KEY) {
		uint64_t t = atomic_fetch_add_explicit(&s->rt->rr_counter, 1, memory_order_relaxed);
		pos = (uint32_t)((t * KEYLESS_STEP) >> 32);
	} else {
		pos = (uint32_t)(key >> 32);
	}

	unsigned f = s->settings.hash_balance_factor;
	uint64_t total = 0;
	if (f != 0) {
		const struct rh_runtime *rt = s->rt;
		for (unsigned w = 0; w < rt->n_workers; w++)
			total += atomic_load_explicit(&rt->load[w].inflight, memory_order_relaxed);
	}

	size_t i = ring_find(r, pos);
	for (size_t k = 0; k < max_iterations && k < r->n; k++) {
		uint32_t idx = r->p[i].index;
		struct rh_backend *b = s->backends[idx];

		if (++i == r->n)
			i = 0;
		if (!s->healthy[idx] || rh_lb_tried_has(tried, b)) /* weight 0 has no points */
			continue;
		if (f != 0 && rh_backend_inflight(b) >= capacity(f, total, s->weights[idx], s->up_weight))
			continue;
		return b;
	}
	return NULL;
}

const struct rh_lb_ops rh_lb_consistent_hash = {
	.name = "consistent_hash",
	.uses_key = true,
	.table_ignores_health = true,
	.build = chash_build,
	.pick = chash_pick,
};
