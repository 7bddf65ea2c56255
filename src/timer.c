#include <time.h>

#include "roundhouse/timer.h"

void
rh_timer_queue_init(struct rh_timer_queue *q, uint32_t duration_ms, bool touch_on_activity)
{
	q->head.prev = q->head.next = &q->head;
	q->head.queue = q;
	q->duration_ms = duration_ms;
	q->touch_on_activity = touch_on_activity;
}

static void
unlink_timer(struct rh_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->queue = NULL;
}

static void
append(struct rh_timer_queue *q, struct rh_timer *t)
{
	t->prev = q->head.prev;
	t->next = &q->head;
	q->head.prev->next = t;
	q->head.prev = t;
	t->queue = q;
}

void
rh_timer_arm(struct rh_timer *t, struct rh_timer_queue *q, uint64_t now)
{
	if (t->queue)
		unlink_timer(t);
	t->deadline = now + q->duration_ms;
	append(q, t);
}

void
rh_timer_cancel(struct rh_timer *t)
{
	if (t->queue)
		unlink_timer(t);
}

int64_t
rh_timer_queue_run(struct rh_timer_queue *q, uint64_t now)
{
	while (q->head.next != &q->head) {
		struct rh_timer *t = q->head.next;

		if (t->deadline > now)
			return (int64_t)(t->deadline - now);
		unlink_timer(t);
		t->fire(t);
	}
	return -1;
}

uint64_t
rh_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
rh_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
rh_timer_queue_set_duration(struct rh_timer_queue *q, uint32_t duration_ms, uint64_t now)
{
	uint32_t old = q->duration_ms;

	q->duration_ms = duration_ms;
	if (duration_ms >= old)
		return;
	/* min(deadline, now + d) of a non-decreasing list is non-decreasing: the order holds */
	for (struct rh_timer *t = q->head.next; t != &q->head; t = t->next)
		if (t->deadline > now + duration_ms)
			t->deadline = now + duration_ms;
}
