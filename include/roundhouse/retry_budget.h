/* The retry budget: a worker sends at most 20% extra requests as retries over a 10 s window (at
 * least 3, so a quiet worker can still retry), so retries cannot multiply the load on a pool that is
 * already failing (Envoy's and Finagle's retry budgets, in their simplest form).
 *
 * The window is two fixed 10 s buckets, the current one and the one before, so what counts is the
 * last 10 to 20 seconds. Single-threaded: each worker has its own. Pure: the caller passes the time. */
#ifndef RH_RETRY_BUDGET_H
#define RH_RETRY_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#define RH_RETRY_BUDGET_WINDOW_MS 10000
#define RH_RETRY_BUDGET_PERCENT 20
#define RH_RETRY_BUDGET_MIN 3

struct rh_retry_budget {
	uint64_t bucket_start;  /* ms, start of the current bucket */
	uint32_t requests[2];   /* [0] current bucket, [1] the one before */
	uint32_t retries[2];
};

/* Moves the buckets forward to <now>. */
static inline void
rh_retry_budget_roll(struct rh_retry_budget *b, uint64_t now)
{
	if (now - b->bucket_start < RH_RETRY_BUDGET_WINDOW_MS)
		return;
	if (now - b->bucket_start < 2 * RH_RETRY_BUDGET_WINDOW_MS) {
		b->requests[1] = b->requests[0];
		b->retries[1] = b->retries[0];
	} else {
		b->requests[1] = b->retries[1] = 0;
	}
	b->requests[0] = b->retries[0] = 0;
	b->bucket_start = now;
}

/* A new request (not a retry) started at <now>. */
static inline void
rh_retry_budget_request(struct rh_retry_budget *b, uint64_t now)
{
	rh_retry_budget_roll(b, now);
	b->requests[0]++;
}

/* Whether one more retry fits at <now>; when it does, it is counted. */
static inline bool
rh_retry_budget_take(struct rh_retry_budget *b, uint64_t now)
{
	rh_retry_budget_roll(b, now);
	uint64_t requests = (uint64_t)b->requests[0] + b->requests[1];
	uint64_t allowed = requests * RH_RETRY_BUDGET_PERCENT / 100;

	if (allowed < RH_RETRY_BUDGET_MIN)
		allowed = RH_RETRY_BUDGET_MIN;
	if ((uint64_t)b->retries[0] + b->retries[1] >= allowed)
		return false;
	b->retries[0]++;
	return true;
}

#endif
