/* least_conn: the power of two random choices (Mitzenmacher), weighted. Two different selectable
 * backends are drawn from the same weighted distribution as random (lb_weights.h; the second one
 * conditioned on missing the first), and the one with fewer exchanges in flight per unit of weight
 * wins: a beats b when inflight(a) * weight(b) < inflight(b) * weight(a), in 64 bits. On a tie the
 * first draw wins, so with no load (or load proportional to weight) picks follow the weights
 * exactly.
 *
 * In-flight counts are the sum of the per-worker counters (rh_backend_inflight, relaxed reads): a
 * pick writes no shared memory, and the two-choice rule keeps working on slightly stale counts
 * where "the least loaded of all" would herd every worker onto the same backend.
 *
 * Every candidate drawn counts against max_iterations; one this request already failed on is
 * skipped. With max_iterations == 1 (or when the budget runs out after one usable candidate) that
 * one is returned without a comparison. */
#include <stddef.h>
#include <stdint.h>

#include "lb_weights.h"
#include "roundhouse/backend.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

#define NONE SIZE_MAX

static struct rh_backend *
least_conn_pick(const struct rh_snapshot *s, const void *table, uint64_t key,
		const struct rh_lb_tried *tried, unsigned max_iterations)
{
	const struct lb_weights *w = table;
	size_t first = NONE; /* index into up[] of the first usable candidate */

	(void)key;
	if (s->n_up == 0 || w == NULL)
		return NULL;
	for (unsigned k = 0; k < max_iterations; k++) {
		size_t j = first != NONE && w->n >= 2 ? lb_weights_draw_other(w, first)
						      : lb_weights_draw(w);
		struct rh_backend *b = s->backends[s->up[j]];
		if (rh_lb_tried_has(tried, b))
			continue;
		if (first == NONE) {
			first = j;
			if (w->n == 1)
				return b;
			continue;
		}
		struct rh_backend *a = s->backends[s->up[first]];
		uint64_t load_a = (uint64_t)rh_backend_inflight(a) * s->weights[s->up[j]];
		uint64_t load_b = (uint64_t)rh_backend_inflight(b) * s->weights[s->up[first]];
		return load_b < load_a ? b : a;
	}
	return first != NONE ? s->backends[s->up[first]] : NULL;
}

const struct rh_lb_ops rh_lb_least_conn = {
	.name = "least_conn",
	.build = lb_weights_build,
	.pick = least_conn_pick,
};
