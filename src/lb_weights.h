/* A cumulative-weight table over a snapshot's selectable backends, shared by random and least_conn
 * (internal to src/lb_*.c): build it once per snapshot, then draw backends in proportion to their
 * weights with the calling thread's generator, O(log n_up) per draw and no shared write. */
#ifndef RH_LB_WEIGHTS_H
#define RH_LB_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

/* cum[j]: the weights of up[0..j] summed, so backend up[j] owns the draws [cum[j-1], cum[j]). */
struct lb_weights {
	size_t n;          /* s->n_up */
	uint64_t total;    /* s->up_weight */
	uint64_t cum[];    /* [n] */
};

/* The table for <s> into *<table>: NULL when nothing is selectable. 0, or -1 when memory ran out.
 * Control thread (lb->build). */
static inline int
lb_weights_build(const struct rh_snapshot *s, void **table)
{
	struct lb_weights *w;
	uint64_t sum = 0;

	*table = NULL;
	if (s->n_up == 0)
		return 0;
	w = malloc(sizeof(*w) + s->n_up * sizeof(w->cum[0]));
	if (!w)
		return -1;
	w->n = s->n_up;
	for (size_t j = 0; j < s->n_up; j++) {
		sum += s->weights[s->up[j]];
		w->cum[j] = sum;
	}
	w->total = sum;
	*table = w;
	return 0;
}

/* A uniform number in [0, <n>), n > 0. */
static inline uint64_t
lb_weights_rand_below(uint64_t n)
{
	/* weights are at most 1000 each, so <n> passes 2^32 only with millions of backends; the modulo
	 * bias is then below 2^-31 */
	return n <= UINT32_MAX ? rh_lb_rand_below((uint32_t)n) : rh_lb_rand() % n;
}

/* The index j into up[] owning draw <r> (r < w->total): the first j with cum[j] > r. */
static inline size_t
lb_weights_find(const struct lb_weights *w, uint64_t r)
{
	size_t lo = 0, hi = w->n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* An index into up[] drawn with probability weight / total. <w> not NULL (n_up > 0). */
static inline size_t
lb_weights_draw(const struct lb_weights *w)
{
	return lb_weights_find(w, lb_weights_rand_below(w->total));
}

/* An index into up[] other than <not>, drawn with probability weight / (total - weight of <not>):
 * the draw conditioned on missing <not>, exactly and in one go. Needs w->n >= 2. */
static inline size_t
lb_weights_draw_other(const struct lb_weights *w, size_t not)
{
	uint64_t lo = not ? w->cum[not - 1] : 0;
	uint64_t r = lb_weights_rand_below(w->total - (w->cum[not] - lo));

	return lb_weights_find(w, r < lo ? r : r + (w->cum[not] - lo));
}

#endif
