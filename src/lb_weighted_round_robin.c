/* weighted_round_robin: a precomputed repeating schedule (HAProxy's lb_map idea) as long as the
 * total weight of the selectable backends (healthy, weight > 0; weights already reduced by their
 * GCD), in which each backend has as many turns as its weight. A request takes the next turn with
 * one relaxed fetch_add on the runtime's counter (the one round_robin uses):
 * schedule[counter % length].
 *
 * The schedule is smooth cyclically, across the wrap too (nginx's smooth WRR is not: for weights
 * 5,1,1 its order a a b a c a a repeats into a run of four a). It is a nested maximally-even
 * (Euclidean, as in Bjorklund's rhythms) distribution:
 *   - backends are grouped by weight, heaviest group first; a group of m backends of weight w has
 *     c = m * w turns, its backends alternating (turn r goes to its (r mod m)-th backend, config
 *     order);
 *   - each group, in that order, takes c of the R slots still free, spread as evenly as possible:
 *     its r-th turn (r = 0..c-1) takes the floor((r + 1/2) * R / c)-th free slot (0-based, in cycle
 *     order); the last group takes all that is left.
 * A set of the form { floor((r + 1/2) * R / c) } is maximally even round the circle, so is its
 * complement, and the slots left to the lighter groups are themselves spread evenly. With W turns
 * in all, the heaviest backend's longest run (across the wrap) is the least possible,
 * ceil(w / (W - w)), when it is alone in its group (5,1,1: 3; 100,1,1: 50; 100,2,1: 34, where
 * placing each backend's turns at its own ideal positions (k + phase) / w gives 50), and a backend
 * that shares its weight with m - 1 others has its turns at least m slots apart. The price is paid
 * by the lighter groups, which fill the slots the heavier ones left: in 100,2,1 the two turns of b
 * are 69 and 34 slots apart rather than 51 and 52. Against per-backend ideal positions, over 2000
 * random weight sets of 2 to 6 backends, this never had a longer worst run and had a shorter one in
 * a third of them.
 *
 * Building costs O(W log W) for W turns (a Fenwick tree finds the k-th free slot; the last group
 * just fills what is left, so equal weights cost O(W)) and up to 8 bytes per turn while building, 4
 * per turn kept: 1000 backends of weight 1000 make 4 MB, built in about 0.1 s. A backend this
 * request already failed on is stepped over along the schedule, without another tick, each turn
 * looked at counting against max_iterations. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "roundhouse/backend.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

/* (2r + 1) * R must fit in 64 bits */
#define MAX_TURNS UINT32_C(0x7fffffff)
#define FREE UINT32_MAX /* a slot no group has taken yet */

struct wrr {
	uint32_t len;     /* s->up_weight */
	uint32_t turn[];  /* [len]: indexes into s->backends */
};

struct member {
	unsigned weight;
	uint32_t index; /* into s->backends */
};

/* heaviest first, then config order */
static int
member_cmp(const void *pa, const void *pb)
{
	const struct member *a = pa, *b = pb;

	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* The 0-based <rank>-th free slot in the Fenwick tree <t> ([1..len], counts of free slots),
 * rank < free slots. <top>: the highest power of two <= len. */
static uint32_t
kth_free(const uint32_t *t, uint32_t len, uint32_t top, uint32_t rank)
{
	uint32_t pos = 0;

	for (uint32_t step = top; step; step >>= 1)
		if (pos + step <= len && t[pos + step] <= rank) {
			pos += step;
			rank -= t[pos];
		}
	return pos; /* tree position pos + 1, slot pos */
}

static void
take_slot(uint32_t *t, uint32_t len, uint32_t slot)
{
	for (uint32_t i = slot + 1; i <= len; i += i & -i)
		t[i]--;
}

static int
wrr_build(const struct rh_snapshot *s, void **table)
{
	struct wrr *w;
	struct member *m;
	uint32_t *tree = NULL;

	*table = NULL;
	if (s->n_up == 0)
		return 0;
	if (s->up_weight > MAX_TURNS)
		return -1;
	uint32_t len = (uint32_t)s->up_weight;
	w = malloc(sizeof(*w) + (size_t)len * sizeof(w->turn[0]));
	m = malloc(s->n_up * sizeof(*m));
	if (!w || !m)
		goto nomem;
	w->len = len;
	memset(w->turn, 0xff, (size_t)len * sizeof(w->turn[0])); /* FREE */
	for (size_t j = 0; j < s->n_up; j++)
		m[j] = (struct member){s->weights[s->up[j]], s->up[j]};
	qsort(m, s->n_up, sizeof(*m), member_cmp);

	/* a Fenwick tree of the free slots, for every group but the last: node i counts the free slots
	 * in (i - lowbit(i), i], all of them to begin with */
	uint32_t top = 1;
	if (m[0].weight != m[s->n_up - 1].weight) {
		tree = malloc(((size_t)len + 1) * sizeof(*tree));
		if (!tree)
			goto nomem;
		for (uint32_t i = 1; i <= len; i++)
			tree[i] = i & -i;
		while (top <= len / 2)
			top <<= 1;
	}

	uint32_t free_slots = len;
	for (size_t g = 0; g < s->n_up;) {
		size_t end = g;
		while (end < s->n_up && m[end].weight == m[g].weight)
			end++;
		uint32_t members = (uint32_t)(end - g);
		uint32_t c = members * m[g].weight; /* <= free_slots */
		if (end == s->n_up) {
			/* the last group takes every slot left, in order (rank r for turn r): one pass */
			uint32_t r = 0;
			for (uint32_t slot = 0; slot < len; slot++)
				if (w->turn[slot] == FREE)
					w->turn[slot] = m[g + r++ % members].index;
			break;
		}
		/* last turn first: taking a slot shifts the ranks above it only */
		for (uint32_t r = c; r-- > 0;) {
			uint32_t rank = (uint32_t)(((2 * (uint64_t)r + 1) * free_slots) / (2 * (uint64_t)c));
			uint32_t slot = kth_free(tree, len, top, rank);
			take_slot(tree, len, slot);
			w->turn[slot] = m[g + r % members].index;
		}
		free_slots -= c;
		g = end;
	}
	free(tree);
	free(m);
	*table = w;
	return 0;
nomem:
	free(tree);
	free(m);
	free(w);
	return -1;
}

static struct rh_backend *
wrr_pick(const struct rh_snapshot *s, const void *table, uint64_t key,
	 const struct rh_lb_tried *tried, unsigned max_iterations)
{
	const struct wrr *w = table;

	(void)key;
	if (s->n_up == 0 || w == NULL || max_iterations == 0)
		return NULL;
	uint64_t t = atomic_fetch_add_explicit(&s->rt->rr_counter, 1, memory_order_relaxed);
	uint32_t i = (uint32_t)(t % w->len);
	for (unsigned k = 0; k < max_iterations && k < w->len; k++) {
		struct rh_backend *b = s->backends[w->turn[i]];
		if (!rh_lb_tried_has(tried, b))
			return b;
		if (++i == w->len)
			i = 0;
	}
	return NULL;
}

const struct rh_lb_ops rh_lb_weighted_round_robin = {
	.name = "weighted_round_robin",
	.build = wrr_build,
	.pick = wrr_pick,
};
