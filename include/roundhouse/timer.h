/* Per-worker timeouts. Every timeout of one kind has the same duration, so a FIFO list per kind is
 * already sorted by deadline: arming appends at the tail, expiry pops from the head, all O(1), no heap.
 * "Touching" a timer (activity extends the deadline) moves it to the tail: a few pointer writes. */
#ifndef RH_TIMER_H
#define RH_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct rh_timer;
typedef void (*rh_timer_fn)(struct rh_timer *t);

struct rh_timer {
	struct rh_timer *prev, *next; /* NULL when not queued */
	uint64_t deadline;
	struct rh_timer_queue *queue;
	rh_timer_fn fire;
	void *fire_arg;
};

struct rh_timer_queue {
	struct rh_timer head; /* sentinel of a circular list */
	uint32_t duration_ms;
	bool touch_on_activity; /* activity pushes the deadline back (idle-style) or not (whole-phase) */
};

void rh_timer_queue_init(struct rh_timer_queue *q, uint32_t duration_ms, bool touch_on_activity);

/* A new duration for <q> (a reload changed a timeout). A shorter one also pulls the deadlines of
 * the timers already queued in to now + duration, which keeps the list in deadline order (and the
 * new timeout honoured at once); a longer one applies to timers armed from now on. O(n) only when
 * it shrinks. */
void rh_timer_queue_set_duration(struct rh_timer_queue *q, uint32_t duration_ms, uint64_t now);

/* (Re)arms <t> on <q> with deadline now + q->duration_ms, moving it from any other queue. */
void rh_timer_arm(struct rh_timer *t, struct rh_timer_queue *q, uint64_t now);

/* Activity on <t>: extends its deadline if its queue says so. */
static inline void
rh_timer_touch(struct rh_timer *t, uint64_t now)
{
	if (t->queue && t->queue->touch_on_activity && t->deadline != now + t->queue->duration_ms)
		rh_timer_arm(t, t->queue, now);
}

void rh_timer_cancel(struct rh_timer *t);

static inline bool rh_timer_armed(const struct rh_timer *t) { return t->queue != NULL; }

/* Fires every timer of <q> whose deadline is <= now (each is unlinked before its callback, which may
 * re-arm it or free its owner). Returns ms until the next deadline in <q>, or -1 if empty. */
int64_t rh_timer_queue_run(struct rh_timer_queue *q, uint64_t now);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t rh_clock_ms(void);

/* CLOCK_MONOTONIC in microseconds (a vDSO call, no syscall): request durations. */
uint64_t rh_clock_us(void);

#endif
