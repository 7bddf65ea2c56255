/* Counters and histograms for the metrics (admin.c's GET /metrics).
 *
 * Each counter has exactly one writer (a worker, for its own entry; the control thread for
 * backend states), which updates it with a relaxed load and store: a plain add on x86, no locked
 * instruction, no cache line shared with another writer. The scrape, on the control thread, reads
 * them relaxed and sums the per-worker entries. No lock anywhere, and no data race for TSan. */
#ifndef RH_STATS_H
#define RH_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef atomic_uint_fast64_t rh_stat;

static inline void
rh_stat_add(rh_stat *s, uint64_t n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n, memory_order_relaxed);
}

/* A gauge kept by one writer: may go down. */
static inline void
rh_stat_sub(rh_stat *s, uint64_t n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) - n, memory_order_relaxed);
}

static inline uint64_t
rh_stat_get(const rh_stat *s)
{
	return atomic_load_explicit((rh_stat *)s, memory_order_relaxed);
}

/* Upper bounds of the histogram buckets, in microseconds (Prometheus "le" in seconds: 0.0001 to
 * 10); a last bucket takes what is above. */
#define RH_HIST_BOUNDS 16
extern const uint64_t rh_hist_bounds_us[RH_HIST_BOUNDS];

/* A latency histogram with one writer. Buckets are not cumulative here; the scrape makes them so. */
struct rh_histogram {
	rh_stat bucket[RH_HIST_BOUNDS + 1];
	rh_stat sum_us;
	rh_stat count;
};

static inline void
rh_histogram_add(struct rh_histogram *h, uint64_t us)
{
	size_t i = 0;

	while (i < RH_HIST_BOUNDS && us > rh_hist_bounds_us[i])
		i++;
	rh_stat_add(&h->bucket[i], 1);
	rh_stat_add(&h->sum_us, us);
	rh_stat_add(&h->count, 1);
}

/* Responses by status class: [0] 1xx ... [4] 5xx. */
#define RH_STATUS_CLASSES 5

static inline size_t
rh_status_class(int status)
{
	return status >= 100 && status < 600 ? (size_t)(status / 100 - 1) : RH_STATUS_CLASSES - 1;
}

#endif
