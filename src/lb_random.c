/* random: each request draws a selectable backend (healthy, weight > 0) with probability
 * weight / total weight, from the calling thread's generator: no shared state is read-modified, so
 * workers never contend. The table is the snapshot's cumulative weights (lb_weights.h), searched in
 * O(log n_up). A backend this request already failed on is drawn again; every draw counts against
 * max_iterations. */
#include <stddef.h>

#include "lb_weights.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

static struct rh_backend *
random_pick(const struct rh_snapshot *s, const void *table, uint64_t key,
	    const struct rh_lb_tried *tried, unsigned max_iterations)
{
	const struct lb_weights *w = table;

	(void)key;
	if (s->n_up == 0 || w == NULL)
		return NULL;
	for (unsigned k = 0; k < max_iterations; k++) {
		struct rh_backend *b = s->backends[s->up[lb_weights_draw(w)]];
		if (!rh_lb_tried_has(tried, b))
			return b;
	}
	return NULL;
}

const struct rh_lb_ops rh_lb_random = {
	.name = "random",
	.build = lb_weights_build,
	.pick = random_pick,
};
