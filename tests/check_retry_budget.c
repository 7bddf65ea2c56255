/* Unit tests for include/roundhouse/retry_budget.h (the per-worker retry budget) and the max_conns
 * slots of backend.h. */
#include <check.h>
#include <stdlib.h>

#include "roundhouse/backend.h"
#include "roundhouse/retry_budget.h"

/* A quiet worker may still retry: at least RH_RETRY_BUDGET_MIN per window. */
START_TEST(test_minimum)
{
	struct rh_retry_budget b = {0};

	rh_retry_budget_request(&b, 1000);
	for (int i = 0; i < RH_RETRY_BUDGET_MIN; i++)
		ck_assert(rh_retry_budget_take(&b, 1000));
	ck_assert(!rh_retry_budget_take(&b, 1000));
}
END_TEST

/* A busy worker: 20% of its requests, however many fail. */
START_TEST(test_percent)
{
	struct rh_retry_budget b = {0};
	unsigned granted = 0;

	for (int i = 0; i < 1000; i++) {
		rh_retry_budget_request(&b, 5000 + (uint64_t)i);
		/* every request fails and asks for two retries */
		granted += rh_retry_budget_take(&b, 5000 + (uint64_t)i);
		granted += rh_retry_budget_take(&b, 5000 + (uint64_t)i);
	}
	ck_assert_uint_eq(granted, 1000 * RH_RETRY_BUDGET_PERCENT / 100);
}
END_TEST

/* The window: what counted 10-20 s ago still counts, what is older does not. */
START_TEST(test_window)
{
	struct rh_retry_budget b = {0};
	uint64_t t = 100000;

	for (int i = 0; i < 100; i++)
		rh_retry_budget_request(&b, t);
	for (int i = 0; i < 20; i++)
		ck_assert(rh_retry_budget_take(&b, t));
	ck_assert(!rh_retry_budget_take(&b, t));
	/* the next bucket: the last one's requests and retries still count */
	t += RH_RETRY_BUDGET_WINDOW_MS;
	ck_assert(!rh_retry_budget_take(&b, t));
	for (int i = 0; i < 10; i++)
		rh_retry_budget_request(&b, t);
	ck_assert(rh_retry_budget_take(&b, t)); /* 110 requests: 22 allowed, 20 used */
	ck_assert(rh_retry_budget_take(&b, t));
	ck_assert(!rh_retry_budget_take(&b, t));
	/* two windows later everything before is forgotten: back to the minimum */
	t += 2 * RH_RETRY_BUDGET_WINDOW_MS;
	for (int i = 0; i < RH_RETRY_BUDGET_MIN; i++)
		ck_assert(rh_retry_budget_take(&b, t));
	ck_assert(!rh_retry_budget_take(&b, t));
}
END_TEST

/* max_conns: slots are counted only with a limit, never beyond it, and come back. */
START_TEST(test_slots)
{
	struct rh_backend_conf bc = {.spec = "127.0.0.1:1", .weight = 1, .max_conns = 2};
	struct rh_backend *b = rh_backend_create(&bc, NULL, 2, true);
	bool counted;

	ck_assert_ptr_nonnull(b);
	ck_assert(rh_backend_slot_take(b, &counted) && counted);
	ck_assert(rh_backend_slot_take(b, &counted) && counted);
	ck_assert(!rh_backend_slot_take(b, &counted));
	ck_assert(!counted);
	ck_assert_uint_eq(atomic_load(&b->active), 2);
	rh_backend_slot_put(b);
	ck_assert(rh_backend_slot_take(b, &counted) && counted);
	rh_backend_slot_put(b);
	rh_backend_slot_put(b);
	ck_assert_uint_eq(atomic_load(&b->active), 0);

	/* no limit: nothing counted, nothing to give back */
	atomic_store(&b->max_conns, 0);
	for (int i = 0; i < 100; i++) {
		ck_assert(rh_backend_slot_take(b, &counted));
		ck_assert(!counted);
	}
	ck_assert_uint_eq(atomic_load(&b->active), 0);
	rh_backend_unref(b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("retry_budget");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_minimum);
	tcase_add_test(tc, test_percent);
	tcase_add_test(tc, test_window);
	tcase_add_test(tc, test_slots);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
