/* round_robin: the selectable backends (healthy, weight > 0, kept by the snapshot) in turn, driven
 * by one relaxed fetch_add on the runtime's counter per request, however many backends are down:
 * the snapshot lists only the live ones. Weights are ignored (weighted_round_robin honours them).
 * A backend this request already failed on is stepped over without another tick. No table. */
#include <stdatomic.h>

#include "roundhouse/backend.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

static int
rr_build(const struct rh_snapshot *s, void **table)
{
	(void)s;
	*table = NULL;
	return 0;
}

static struct rh_backend *
rr_pick(const struct rh_snapshot *s, const void *table, uint64_t key,
	const struct rh_lb_tried *tried, unsigned max_iterations)
{
	size_t n = s->n_up;

	(void)table;
	(void)key;
	if (n == 0 || max_iterations == 0)
		return NULL;
	uint64_t t = atomic_fetch_add_explicit(&s->rt->rr_counter, 1, memory_order_relaxed);
	size_t i = (size_t)(t % n);
	for (unsigned k = 0; k < max_iterations && k < n; k++) {
		struct rh_backend *b = s->backends[s->up[i]];
		if (!rh_lb_tried_has(tried, b))
			return b;
		if (++i == n)
			i = 0;
	}
	return NULL;
}

const struct rh_lb_ops rh_lb_round_robin = {
	.name = "round_robin",
	.build = rr_build,
	.pick = rr_pick,
};
