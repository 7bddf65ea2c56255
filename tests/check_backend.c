/* Unit tests for src/backend.c: pool construction, round-robin selection, publication, and RCU
 * readers running against a publishing writer. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"

#define MAX_TEST_BACKENDS 8

/* A hand-built config with <n> backends 127.0.0.1:9001.. with weights 1, 2, 3, ... */
struct fixture {
	struct rh_config cfg;
	struct rh_backend_conf bc[MAX_TEST_BACKENDS];
	struct rh_pool pool;
};

static void
fixture_init(struct fixture *f, size_t n)
{
	char err[RH_CONFIG_ERR_LEN] = "";

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&f->bc[i].addr.ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)(9001 + i));
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f->bc[i].addr.len = sizeof(*sin);
		snprintf(f->bc[i].addr.text, sizeof(f->bc[i].addr.text), "127.0.0.1:%zu", 9001 + i);
		snprintf(f->bc[i].spec, sizeof(f->bc[i].spec), "localhost:%zu", 9001 + i);
		f->bc[i].weight = (unsigned)i + 1;
		f->bc[i].line = (unsigned)i + 1;
	}
	f->cfg.backends = n > 0 ? f->bc : NULL;
	f->cfg.n_backends = n;
	f->cfg.max_iterations = 256;
	ck_assert_int_eq(rh_pool_init(&f->pool, &f->cfg, err, sizeof(err)), 0);
}

static void
publish(struct fixture *f, const char *pattern)
{
	uint8_t healthy[MAX_TEST_BACKENDS];

	ck_assert_uint_eq(strlen(pattern), f->pool.n_backends);
	for (size_t i = 0; i < f->pool.n_backends; i++)
		healthy[i] = pattern[i] == '1';
	ck_assert_int_eq(rh_pool_publish(&f->pool, healthy), 0);
}

static uint64_t
counter(struct fixture *f)
{
	return atomic_load(&f->pool.rr_counter);
}

START_TEST(test_init)
{
	struct fixture f;
	const struct rh_backend_view *v;

	fixture_init(&f, 3);
	ck_assert_uint_eq(f.pool.n_backends, 3);
	ck_assert_uint_eq(counter(&f), 0);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_uint_eq(f.pool.backends[i].id, i);
		ck_assert_uint_eq(f.pool.backends[i].weight, i + 1);
		ck_assert_uint_eq(atomic_load(&f.pool.backends[i].tls_failure_logged), 0);
		ck_assert_int_eq(memcmp(&f.pool.backends[i].addr, &f.bc[i].addr, sizeof(f.bc[i].addr)), 0);
	}
	ck_assert_str_eq(f.pool.backends[0].name, "127.0.0.1:9001");
	ck_assert_str_eq(f.pool.backends[2].name, "127.0.0.1:9003");

	v = rh_pool_view(&f.pool);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->generation, 1);
	ck_assert_uint_eq(v->n, 3);
	ck_assert_uint_eq(v->n_healthy, 3);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_ptr_eq(v->backends[i], &f.pool.backends[i]);
		ck_assert_uint_eq(v->healthy[i], 1);
	}
	rh_pool_finish(&f.pool);
	ck_assert_ptr_null(f.pool.live);
	ck_assert_ptr_null(f.pool.backends);
}
END_TEST

START_TEST(test_order)
{
	struct fixture f;
	const char *want = "ABCABCABC";

	fixture_init(&f, 3);
	for (size_t i = 0; i < strlen(want); i++) {
		struct rh_backend *b = rh_pool_select(&f.pool, rh_pool_view(&f.pool), 0, 256);

		ck_assert_ptr_nonnull(b);
		ck_assert_uint_eq(b->id, (unsigned)(want[i] - 'A'));
	}
	ck_assert_uint_eq(counter(&f), strlen(want));
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_dead_skipped_equal_share)
{
	struct fixture f;
	unsigned count[3] = {0};

	fixture_init(&f, 3);
	publish(&f, "110");
	for (int i = 0; i < 3000; i++) {
		struct rh_backend *b = rh_pool_select(&f.pool, rh_pool_view(&f.pool), 0, 256);

		ck_assert_ptr_nonnull(b);
		count[b->id]++;
	}
	ck_assert_uint_eq(count[0], 1500);
	ck_assert_uint_eq(count[1], 1500);
	ck_assert_uint_eq(count[2], 0);
	/* ticks A, B, C(skipped), A, ...: the last select took B, so the final C tick is not taken yet */
	ck_assert_uint_eq(counter(&f), 4499);
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_all_down)
{
	struct fixture f;
	const struct rh_backend_view *v;

	fixture_init(&f, 3);
	publish(&f, "000");
	v = rh_pool_view(&f.pool);
	ck_assert_uint_eq(v->n_healthy, 0);
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(rh_pool_select(&f.pool, v, 0, 256));
	/* fast path: no healthy backend, no ticks */
	ck_assert_uint_eq(counter(&f), 0);
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_max_iterations_bound)
{
	struct fixture f;
	const struct rh_backend_view *v;
	struct rh_backend *b;

	fixture_init(&f, 5);
	publish(&f, "00001");
	v = rh_pool_view(&f.pool);

	atomic_store(&f.pool.rr_counter, 0);
	ck_assert_ptr_null(rh_pool_select(&f.pool, v, 0, 3));
	ck_assert_uint_eq(counter(&f), 3);

	atomic_store(&f.pool.rr_counter, 0);
	b = rh_pool_select(&f.pool, v, 0, 5);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->id, 4);
	ck_assert_uint_eq(counter(&f), 5);

	atomic_store(&f.pool.rr_counter, 0);
	b = rh_pool_select(&f.pool, v, 0, 4);
	ck_assert_ptr_null(b);
	ck_assert_uint_eq(counter(&f), 4);
	b = rh_pool_select(&f.pool, v, 0, 1); /* counter at 4: #4 is the first candidate */
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->id, 4);
	ck_assert_uint_eq(counter(&f), 5);

	atomic_store(&f.pool.rr_counter, 0);
	ck_assert_ptr_null(rh_pool_select(&f.pool, v, 0, 0));
	ck_assert_uint_eq(counter(&f), 0);
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_counter_counts_candidates)
{
	struct fixture f;
	const struct rh_backend_view *v;
	struct rh_backend *b;

	fixture_init(&f, 4);
	publish(&f, "1001");
	v = rh_pool_view(&f.pool);
	b = rh_pool_select(&f.pool, v, 0, 256); /* looks at #0 */
	ck_assert_uint_eq(b->id, 0);
	ck_assert_uint_eq(counter(&f), 1);
	b = rh_pool_select(&f.pool, v, 0, 256); /* #1, #2 dead, #3 */
	ck_assert_uint_eq(b->id, 3);
	ck_assert_uint_eq(counter(&f), 4);
	b = rh_pool_select(&f.pool, v, 0, 256); /* wraps to #0 */
	ck_assert_uint_eq(b->id, 0);
	ck_assert_uint_eq(counter(&f), 5);
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_counter_wraps)
{
	struct fixture f;
	struct rh_backend *b;

	fixture_init(&f, 3);
	atomic_store(&f.pool.rr_counter, UINT_FAST64_MAX);
	b = rh_pool_select(&f.pool, rh_pool_view(&f.pool), 0, 256);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->id, (unsigned)(UINT_FAST64_MAX % 3));
	ck_assert_uint_eq(counter(&f), 0);
	b = rh_pool_select(&f.pool, rh_pool_view(&f.pool), 0, 256);
	ck_assert_uint_eq(b->id, 0);
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_empty_pool)
{
	struct fixture f;
	const struct rh_backend_view *v;

	fixture_init(&f, 0);
	v = rh_pool_view(&f.pool);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->n, 0);
	ck_assert_uint_eq(v->n_healthy, 0);
	ck_assert_uint_eq(v->generation, 1);
	ck_assert_ptr_null(rh_pool_select(&f.pool, v, 0, 256));
	ck_assert_uint_eq(counter(&f), 0);
	ck_assert_int_eq(rh_pool_publish(&f.pool, NULL), 0);
	ck_assert_uint_eq(rh_pool_view(&f.pool)->generation, 2);
	rh_pool_finish(&f.pool);
}
END_TEST

START_TEST(test_publish)
{
	struct fixture f;
	const struct rh_backend_view *v;
	struct rh_backend *b;

	fixture_init(&f, 3);
	publish(&f, "010");
	v = rh_pool_view(&f.pool);
	ck_assert_uint_eq(v->generation, 2);
	ck_assert_uint_eq(v->n, 3);
	ck_assert_uint_eq(v->n_healthy, 1);
	ck_assert_uint_eq(v->healthy[0], 0);
	ck_assert_uint_eq(v->healthy[1], 1);
	ck_assert_uint_eq(v->healthy[2], 0);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_ptr_eq(v->backends[i], &f.pool.backends[i]); /* backends outlive views */
	b = rh_pool_select(&f.pool, v, 0, 256);
	ck_assert_uint_eq(b->id, 1);

	/* the counter survives the swap: it is at 2, so the next candidate is #2 (dead), then #0 */
	publish(&f, "101");
	v = rh_pool_view(&f.pool);
	ck_assert_uint_eq(v->generation, 3);
	ck_assert_uint_eq(v->n_healthy, 2);
	ck_assert_uint_eq(counter(&f), 2);
	b = rh_pool_select(&f.pool, v, 0, 256);
	ck_assert_uint_eq(b->id, 2);
	b = rh_pool_select(&f.pool, v, 0, 256);
	ck_assert_uint_eq(b->id, 0);

	publish(&f, "111");
	ck_assert_uint_eq(rh_pool_view(&f.pool)->generation, 4);
	ck_assert_uint_eq(rh_pool_view(&f.pool)->n_healthy, 3);
	rh_pool_finish(&f.pool);
}
END_TEST

/* ---- concurrency: 4 QSBR readers against a writer publishing 2000 views ---- */

#define N_READERS 4
#define N_PUBLISH 2000
#define CONC_BACKENDS 4

/* The health bits every view of generation <gen> must have: all up for view #1, then a pattern
 * that changes every generation and is all-down every fifth. */
static unsigned
expected_bits(uint64_t gen)
{
	if (gen == 1)
		return 0xf;
	if (gen % 5 == 0)
		return 0;
	return (unsigned)((gen * 7) & 0xf) | 1u << (gen % 4); /* never 0 */
}

struct conc {
	struct rh_pool *pool;
	atomic_bool done;
	atomic_uint errors;
	atomic_uint_fast64_t reads;
	atomic_uint started; /* readers that finished their first iteration */
	char first_error[256];
	atomic_flag error_taken;
};

struct reader_arg {
	struct conc *c;
	unsigned long iterations, selected, nulls;
	uint64_t last_generation;
};

static void
reader_fail(struct conc *c, const char *msg, uint64_t gen)
{
	if (!atomic_flag_test_and_set(&c->error_taken))
		snprintf(c->first_error, sizeof(c->first_error), "generation %llu: %s",
			 (unsigned long long)gen, msg);
	atomic_fetch_add(&c->errors, 1);
}

static void *
reader_main(void *arg)
{
	struct reader_arg *r = arg;
	struct conc *c = r->c;

	rh_pool_reader_register();
	while (!atomic_load(&c->done)) {
		const struct rh_backend_view *v = rh_pool_view(c->pool);
		uint64_t gen = v->generation;
		unsigned bits = expected_bits(gen), n_healthy = 0;
		struct rh_backend *b;

		if (gen < r->last_generation)
			reader_fail(c, "generation went backwards", gen);
		r->last_generation = gen;
		if (v->n != CONC_BACKENDS)
			reader_fail(c, "wrong n", gen);
		for (size_t i = 0; i < CONC_BACKENDS; i++) {
			if (v->healthy[i] != ((bits >> i) & 1))
				reader_fail(c, "healthy[] does not match the generation", gen);
			if (v->backends[i] != &c->pool->backends[i])
				reader_fail(c, "wrong backend pointer", gen);
			n_healthy += (bits >> i) & 1;
		}
		if (v->n_healthy != n_healthy)
			reader_fail(c, "wrong n_healthy", gen);

		b = rh_pool_select(c->pool, v, 0, 256);
		if (b != NULL) {
			r->selected++;
			if (b->id >= CONC_BACKENDS || !v->healthy[b->id] || v->backends[b->id] != b)
				reader_fail(c, "selected a backend that is not healthy in its view", gen);
		} else {
			/* Other readers tick the shared counter too, so NULL with a healthy backend is
			 * possible in theory (256 candidates all landing on dead ones); only count it. */
			r->nulls++;
		}
		/* the view is also still readable right before the quiescent point */
		if (v->generation != gen)
			reader_fail(c, "view changed under the reader", gen);

		if (r->iterations++ == 0)
			atomic_fetch_add(&c->started, 1);
		atomic_fetch_add_explicit(&c->reads, 1, memory_order_relaxed);
		if (r->iterations % 64 == 0) {
			rh_pool_reader_offline();
			sched_yield();
			rh_pool_reader_online();
		} else {
			rh_pool_reader_quiescent();
		}
	}
	rh_pool_reader_offline();
	rh_pool_reader_unregister();
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	struct fixture f;
	struct conc c;
	struct reader_arg ra[N_READERS];
	pthread_t th[N_READERS];

	fixture_init(&f, CONC_BACKENDS);
	memset(&c, 0, sizeof(c));
	c.pool = &f.pool;
	atomic_init(&c.done, false);
	atomic_init(&c.errors, 0);
	atomic_init(&c.reads, 0);
	atomic_init(&c.started, 0);
	atomic_flag_clear(&c.error_taken);

	for (int i = 0; i < N_READERS; i++) {
		memset(&ra[i], 0, sizeof(ra[i]));
		ra[i].c = &c;
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
	}
	/* every reader is running before the first publication */
	while (atomic_load(&c.started) < N_READERS)
		sched_yield();

	for (uint64_t gen = 2; gen <= N_PUBLISH + 1; gen++) {
		uint8_t healthy[CONC_BACKENDS];
		unsigned bits = expected_bits(gen);

		for (size_t i = 0; i < CONC_BACKENDS; i++)
			healthy[i] = (bits >> i) & 1;
		ck_assert_int_eq(rh_pool_publish(&f.pool, healthy), 0);
	}
	atomic_store(&c.done, true);
	for (int i = 0; i < N_READERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);

	ck_assert_msg(atomic_load(&c.errors) == 0, "%u reader errors, first: %s",
		      atomic_load(&c.errors), c.first_error);
	ck_assert_uint_eq(rh_pool_view(&f.pool)->generation, N_PUBLISH + 1);
	ck_assert_uint_ge(atomic_load(&c.reads), N_READERS);
	for (int i = 0; i < N_READERS; i++) {
		ck_assert_uint_gt(ra[i].iterations, 0);
		ck_assert_uint_le(ra[i].last_generation, N_PUBLISH + 1);
	}
	rh_pool_finish(&f.pool);
}
END_TEST

static Suite *
backend_suite(void)
{
	Suite *s = suite_create("backend");
	TCase *tc = tcase_create("select");
	TCase *tc_rcu = tcase_create("rcu");

	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_dead_skipped_equal_share);
	tcase_add_test(tc, test_all_down);
	tcase_add_test(tc, test_max_iterations_bound);
	tcase_add_test(tc, test_counter_counts_candidates);
	tcase_add_test(tc, test_counter_wraps);
	tcase_add_test(tc, test_empty_pool);
	tcase_add_test(tc, test_publish);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tc_rcu, 120);
	tcase_add_test(tc_rcu, test_concurrent_readers);
	suite_add_tcase(s, tc_rcu);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(backend_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
