/* Timer queues: FIFO per duration, arm/re-arm/cancel/touch, expiry order and the next timeout. */
#include <check.h>
#include <stdlib.h>

#include "roundhouse/timer.h"

static int fired[16];
static int n_fired;

struct owner {
	struct rh_timer t;
	int id;
};

static void
on_fire(struct rh_timer *t)
{
	fired[n_fired++] = ((struct owner *)t)->id;
}

static void
setup_owners(struct owner *o, int n)
{
	n_fired = 0;
	for (int i = 0; i < n; i++)
		o[i] = (struct owner){.t = {.fire = on_fire}, .id = i};
}

START_TEST(test_expiry_order_and_next)
{
	struct rh_timer_queue q;
	struct owner o[3];

	setup_owners(o, 3);
	rh_timer_queue_init(&q, 100, false);
	ck_assert_int_eq(rh_timer_queue_run(&q, 0), -1);
	rh_timer_arm(&o[0].t, &q, 0);
	rh_timer_arm(&o[1].t, &q, 10);
	rh_timer_arm(&o[2].t, &q, 20);
	ck_assert_int_eq(rh_timer_queue_run(&q, 50), 50);
	ck_assert_int_eq(n_fired, 0);
	ck_assert_int_eq(rh_timer_queue_run(&q, 110), 10);
	ck_assert_int_eq(n_fired, 2);
	ck_assert_int_eq(fired[0], 0);
	ck_assert_int_eq(fired[1], 1);
	ck_assert(!rh_timer_armed(&o[0].t));
	ck_assert_int_eq(rh_timer_queue_run(&q, 1000), -1);
	ck_assert_int_eq(n_fired, 3);
}
END_TEST

/* A reload shortens a timeout from 60 s to 5 s: the timers already armed must not keep the 60 s (the
 * queue is a FIFO, so one old deadline would hold back every new timer behind it). */
START_TEST(test_shorter_duration_applies_to_armed_timers)
{
	struct rh_timer_queue q;
	struct owner o[3];

	setup_owners(o, 3);
	rh_timer_queue_init(&q, 60000, false);
	rh_timer_arm(&o[0].t, &q, 0);     /* due at 60000 */
	rh_timer_arm(&o[1].t, &q, 1000);  /* due at 61000 */
	rh_timer_queue_set_duration(&q, 5000, 2000);
	rh_timer_arm(&o[2].t, &q, 2000);  /* due at 7000, behind the other two */
	ck_assert_int_eq(rh_timer_queue_run(&q, 6999), 1);
	ck_assert_int_eq(n_fired, 0);
	ck_assert_int_eq(rh_timer_queue_run(&q, 7000), -1);
	ck_assert_int_eq(n_fired, 3);
	ck_assert_int_eq(fired[2], 2);
	/* longer again: only timers armed from now on wait longer */
	rh_timer_queue_set_duration(&q, 60000, 8000);
	rh_timer_arm(&o[0].t, &q, 8000);
	ck_assert_int_eq(rh_timer_queue_run(&q, 8000), 60000);
}
END_TEST

START_TEST(test_cancel_and_rearm_moves_between_queues)
{
	struct rh_timer_queue a, b;
	struct owner o[2];

	setup_owners(o, 2);
	rh_timer_queue_init(&a, 100, false);
	rh_timer_queue_init(&b, 1000, false);
	rh_timer_arm(&o[0].t, &a, 0);
	rh_timer_arm(&o[1].t, &a, 0);
	rh_timer_cancel(&o[0].t);
	rh_timer_cancel(&o[0].t); /* twice is fine */
	rh_timer_arm(&o[1].t, &b, 0);
	ck_assert_ptr_eq(o[1].t.queue, &b);
	ck_assert_int_eq(rh_timer_queue_run(&a, 500), -1);
	ck_assert_int_eq(n_fired, 0);
	ck_assert_int_eq(rh_timer_queue_run(&b, 999), 1);
	ck_assert_int_eq(rh_timer_queue_run(&b, 1000), -1);
	ck_assert_int_eq(n_fired, 1);
	ck_assert_int_eq(fired[0], 1);
}
END_TEST

START_TEST(test_touch_only_on_idle_style_queues)
{
	struct rh_timer_queue idle, whole;
	struct owner o[2];

	setup_owners(o, 2);
	rh_timer_queue_init(&idle, 100, true);
	rh_timer_queue_init(&whole, 100, false);
	rh_timer_arm(&o[0].t, &idle, 0);
	rh_timer_arm(&o[1].t, &whole, 0);
	rh_timer_touch(&o[0].t, 90); /* activity pushes the idle deadline to 190 */
	rh_timer_touch(&o[1].t, 90); /* but not a whole-phase deadline (slow header) */
	ck_assert_int_eq(rh_timer_queue_run(&whole, 100), -1);
	ck_assert_int_eq(n_fired, 1);
	ck_assert_int_eq(rh_timer_queue_run(&idle, 100), 90);
	ck_assert_int_eq(rh_timer_queue_run(&idle, 190), -1);
	ck_assert_int_eq(n_fired, 2);
	ck_assert_int_eq(fired[1], 0);
}
END_TEST

/* a callback may re-arm its own timer on the same queue without looping forever */
static struct rh_timer_queue *rearm_q;
static void
rearm_fire(struct rh_timer *t)
{
	n_fired++;
	rh_timer_arm(t, rearm_q, t->deadline);
}

START_TEST(test_rearm_in_callback)
{
	struct rh_timer_queue q;
	struct rh_timer t = {.fire = rearm_fire};

	n_fired = 0;
	rearm_q = &q;
	rh_timer_queue_init(&q, 10, false);
	rh_timer_arm(&t, &q, 0);
	ck_assert_int_eq(rh_timer_queue_run(&q, 25), 5);
	ck_assert_int_eq(n_fired, 2);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("timer");
	TCase *tc = tcase_create("queues");
	tcase_add_test(tc, test_expiry_order_and_next);
	tcase_add_test(tc, test_cancel_and_rearm_moves_between_queues);
	tcase_add_test(tc, test_touch_only_on_idle_style_queues);
	tcase_add_test(tc, test_rearm_in_callback);
	tcase_add_test(tc, test_shorter_duration_applies_to_armed_timers);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
