/* Unit tests for the selection algorithms (src/lb_*.c), driven through real runtime snapshots
 * (rh_snapshot_from_config, rh_snapshot_with_health, rh_runtime_publish). They measure: shares over
 * many picks, the longest run of one backend in the weighted round-robin cycle (across the wrap),
 * counter ticks per pick, and how picks move away from loaded or already-tried backends. The
 * measured numbers are printed so that they appear in the test log. Single-threaded: the test is
 * the only thread, so it reads the live snapshot without registering as an RCU reader. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

#define MAX_TEST_BACKENDS 8
#define N_WORKERS 2
#define PICKS 100000

struct fixture {
	struct rh_runtime rt;
	struct rh_config cfg;
	struct rh_backend_conf bc[MAX_TEST_BACKENDS];
};

static const enum rh_lb_algorithm all_algorithms[] = {
	RH_LB_ROUND_ROBIN,
	RH_LB_WEIGHTED_ROUND_ROBIN,
	RH_LB_RANDOM,
	RH_LB_LEAST_CONN,
};

static const struct rh_snapshot *
live(struct fixture *f)
{
	return rh_runtime_snapshot(&f->rt);
}

/* Sets the config's weights to <w>[0..n) (backends 127.0.0.1:9001..) and publishes a snapshot of it
 * (the backends of the live one are kept). */
static void
publish_weights(struct fixture *f, size_t n, const unsigned *w)
{
	char err[RH_CONFIG_ERR_LEN] = "";

	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&f->bc[i].addr.ss;

		memset(&f->bc[i], 0, sizeof(f->bc[i]));
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)(9001 + i));
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f->bc[i].addr.len = sizeof(*sin);
		snprintf(f->bc[i].addr.text, sizeof(f->bc[i].addr.text), "127.0.0.1:%zu", 9001 + i);
		snprintf(f->bc[i].spec, sizeof(f->bc[i].spec), "localhost:%zu", 9001 + i);
		f->bc[i].weight = w[i];
		f->bc[i].line = (unsigned)i + 1;
	}
	f->cfg.backends = n > 0 ? f->bc : NULL;
	f->cfg.n_backends = n;
	struct rh_snapshot *s = rh_snapshot_from_config(&f->rt, &f->cfg, f->rt.live, true, err,
							sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	rh_runtime_publish(&f->rt, s);
}

static void
fixture_init(struct fixture *f, enum rh_lb_algorithm a, size_t n, const unsigned *w)
{
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(rh_runtime_init(&f->rt, N_WORKERS), 0);
	f->cfg.algorithm = a;
	f->cfg.max_iterations = 256;
	publish_weights(f, n, w);
	ck_assert_str_eq(live(f)->lb->name, rh_lb_ops_of(a)->name);
}

static void
fixture_finish(struct fixture *f)
{
	rh_runtime_finish(&f->rt);
}

/* Health as <pattern> says ('1' up, '0' down), published as a new snapshot. */
static void
set_health(struct fixture *f, const char *pattern)
{
	const struct rh_snapshot *s = live(f);

	ck_assert_uint_eq(strlen(pattern), s->n);
	for (size_t i = 0; i < s->n; i++)
		s->backends[i]->up = pattern[i] == '1';
	struct rh_snapshot *next = rh_snapshot_with_health(&f->rt, s);
	ck_assert_ptr_nonnull(next);
	rh_runtime_publish(&f->rt, next);
}

static struct rh_backend *
pick(struct fixture *f, const struct rh_lb_tried *tried)
{
	const struct rh_snapshot *s = live(f);

	return s->lb->pick(s, s->lb_table, RH_LB_NO_KEY, tried, s->settings.max_iterations);
}

/* The config index of <b> in the live snapshot, -1 for NULL. */
static int
index_of(struct fixture *f, const struct rh_backend *b)
{
	const struct rh_snapshot *s = live(f);

	if (!b)
		return -1;
	for (size_t i = 0; i < s->n; i++)
		if (s->backends[i] == b)
			return (int)i;
	ck_abort_msg("picked a backend not in the snapshot");
	return -1;
}

static struct rh_backend *
backend(struct fixture *f, size_t i)
{
	return live(f)->backends[i];
}

/* <picks> picks into count[] (per config index; count[MAX_TEST_BACKENDS]: NULL picks). */
static void
count_picks(struct fixture *f, unsigned picks, const struct rh_lb_tried *tried, unsigned *count)
{
	memset(count, 0, (MAX_TEST_BACKENDS + 1) * sizeof(*count));
	for (unsigned k = 0; k < picks; k++) {
		int i = index_of(f, pick(f, tried));
		count[i < 0 ? MAX_TEST_BACKENDS : i]++;
	}
}

static double
pct(unsigned part, unsigned whole)
{
	return 100.0 * part / whole;
}

/* Prints the shares and checks each is within <tol> percentage points of <want>[i] percent. */
static void
check_shares(const char *what, const unsigned *count, size_t n, unsigned picks, const double *want,
	     double tol)
{
	printf("%-50s", what);
	for (size_t i = 0; i < n; i++)
		printf(" b%zu %6.2f%% (want %6.2f)", i, pct(count[i], picks), want[i]);
	printf("\n");
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		double d = pct(count[i], picks) - want[i];
		ck_assert_msg(d <= tol && d >= -tol, "%s: backend %zu got %.2f%%, want %.2f%% +- %.1f", what,
			      i, pct(count[i], picks), want[i], tol);
	}
}

/* The weights' shares in percent. */
static void
weight_shares(const unsigned *w, size_t n, double *out)
{
	unsigned total = 0;

	for (size_t i = 0; i < n; i++)
		total += w[i];
	for (size_t i = 0; i < n; i++)
		out[i] = 100.0 * w[i] / total;
}

/* ---- every algorithm ---- */

START_TEST(test_all_down)
{
	static const unsigned w[] = {1, 2, 3};
	struct fixture f;

	fixture_init(&f, all_algorithms[_i], 3, w);
	ck_assert_ptr_nonnull(pick(&f, NULL));
	set_health(&f, "000");
	ck_assert_uint_eq(live(&f)->n_up, 0);
	for (int k = 0; k < 100; k++)
		ck_assert_ptr_null(pick(&f, NULL));
	set_health(&f, "010");
	for (int k = 0; k < 100; k++)
		ck_assert_int_eq(index_of(&f, pick(&f, NULL)), 1);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_empty_up)
{
	static const unsigned drained[] = {0, 0, 0};
	struct fixture f;

	/* every backend drained: healthy but none selectable */
	fixture_init(&f, all_algorithms[_i], 3, drained);
	ck_assert_uint_eq(live(&f)->n_up, 0);
	for (int k = 0; k < 100; k++)
		ck_assert_ptr_null(pick(&f, NULL));
	fixture_finish(&f);

	/* no backend at all */
	fixture_init(&f, all_algorithms[_i], 0, NULL);
	ck_assert_uint_eq(live(&f)->n, 0);
	ck_assert_ptr_null(pick(&f, NULL));
	fixture_finish(&f);
}
END_TEST

START_TEST(test_tried_covers_up)
{
	static const unsigned w[] = {5, 1, 1, 0};
	struct fixture f;
	struct rh_lb_tried tried = {0};

	fixture_init(&f, all_algorithms[_i], 4, w);
	set_health(&f, "1101"); /* up: 0 and 1 (2 down, 3 drained) */
	rh_lb_tried_add(&tried, backend(&f, 0));
	for (int k = 0; k < 1000; k++)
		ck_assert_int_eq(index_of(&f, pick(&f, &tried)), 1);
	rh_lb_tried_add(&tried, backend(&f, 1));
	for (int k = 0; k < 1000; k++)
		ck_assert_ptr_null(pick(&f, &tried));
	fixture_finish(&f);
}
END_TEST

/* ---- round_robin ---- */

START_TEST(test_rr_equal_shares)
{
	static const unsigned w[] = {1, 5, 1};
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_ROUND_ROBIN, 3, w);
	count_picks(&f, 30000, NULL, count);
	check_shares("round_robin 1,5,1 (weights ignored)", count, 3, 30000,
		     (double[]){100.0 / 3, 100.0 / 3, 100.0 / 3}, 0.0);
	for (size_t i = 0; i < 3; i++)
		ck_assert_uint_eq(count[i], 10000);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_rr_dead_one_tick)
{
	static const unsigned w[] = {1, 1, 1};
	struct fixture f;

	fixture_init(&f, RH_LB_ROUND_ROBIN, 3, w);
	set_health(&f, "010");
	uint64_t before = atomic_load(&f.rt.rr_counter);
	for (int k = 0; k < 1000; k++)
		ck_assert_int_eq(index_of(&f, pick(&f, NULL)), 1);
	uint64_t ticks = atomic_load(&f.rt.rr_counter) - before;
	printf("round_robin 2 of 3 dead: 1000 picks cost %llu counter ticks\n",
	       (unsigned long long)ticks);
	fflush(stdout);
	ck_assert_uint_eq(ticks, 1000);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_rr_tried_skipped)
{
	static const unsigned w[] = {1, 1, 1};
	struct fixture f;

	fixture_init(&f, RH_LB_ROUND_ROBIN, 3, w);
	for (int k = 0; k < 30; k++) {
		struct rh_lb_tried tried = {0};
		uint64_t t = atomic_load(&f.rt.rr_counter);
		size_t due = (size_t)(t % 3);

		rh_lb_tried_add(&tried, backend(&f, due));
		ck_assert_int_eq(index_of(&f, pick(&f, &tried)), (int)((due + 1) % 3));
		ck_assert_uint_eq(atomic_load(&f.rt.rr_counter), t + 1);
	}
	fixture_finish(&f);
}
END_TEST

START_TEST(test_rr_max_iterations)
{
	static const unsigned w[] = {1, 1, 1};
	struct fixture f;

	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(rh_runtime_init(&f.rt, N_WORKERS), 0);
	f.cfg.algorithm = RH_LB_ROUND_ROBIN;
	f.cfg.max_iterations = 1;
	publish_weights(&f, 3, w);
	for (int k = 0; k < 30; k++) {
		struct rh_lb_tried tried = {0};
		size_t due = (size_t)(atomic_load(&f.rt.rr_counter) % 3);

		rh_lb_tried_add(&tried, backend(&f, due));
		ck_assert_ptr_null(pick(&f, &tried)); /* the one candidate allowed was tried */
		ck_assert_ptr_nonnull(pick(&f, NULL));
	}
	f.cfg.max_iterations = 2;
	publish_weights(&f, 3, w);
	for (int k = 0; k < 30; k++) {
		struct rh_lb_tried tried = {0};
		size_t due = (size_t)(atomic_load(&f.rt.rr_counter) % 3);

		rh_lb_tried_add(&tried, backend(&f, due));
		rh_lb_tried_add(&tried, backend(&f, (due + 1) % 3));
		ck_assert_ptr_null(pick(&f, &tried)); /* the third one is a candidate too far */
	}
	fixture_finish(&f);
}
END_TEST

START_TEST(test_rr_drain)
{
	static const unsigned w[] = {1, 0, 1};
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_ROUND_ROBIN, 3, w);
	count_picks(&f, 10000, NULL, count);
	check_shares("round_robin 1,0,1 (b1 drained)", count, 3, 10000, (double[]){50, 0, 50}, 0.0);
	fixture_finish(&f);
}
END_TEST

/* ---- weighted_round_robin ---- */

struct wrr_case {
	unsigned w[3];
	unsigned cycle;    /* after GCD reduction */
	unsigned run_max;  /* longest cyclic run of backend 0 */
	const char *name;
};

static const struct wrr_case wrr_cases[] = {
	{{5, 1, 1}, 7, 3, "5,1,1"},
	{{100, 1, 1}, 102, 50, "100,1,1"},
	{{10, 2, 2}, 7, 3, "10,2,2 (= 5,1,1 after GCD)"},
	{{100, 2, 1}, 103, 34, "100,2,1"},
};

/* The longest run of each value in <seq>[0..n) read as a circle (across the wrap) into <out>. */
static void
cyclic_runs(const int *seq, size_t n, unsigned *out)
{
	size_t start = 0;

	memset(out, 0, MAX_TEST_BACKENDS * sizeof(*out));
	while (start < n && seq[start] == seq[0])
		start++;
	if (start == n) {
		out[seq[0]] = (unsigned)n;
		return;
	}
	/* start at a boundary, so no run is cut by the wrap */
	unsigned run = 0;
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n, prev = (start + k + n - 1) % n;
		run = k > 0 && seq[i] == seq[prev] ? run + 1 : 1;
		if (run > out[seq[i]])
			out[seq[i]] = run;
	}
}

START_TEST(test_wrr_shares)
{
	const struct wrr_case *c = &wrr_cases[_i];
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];
	double want[3];
	char what[80];

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN, 3, c->w);
	weight_shares(c->w, 3, want);
	count_picks(&f, PICKS, NULL, count);
	snprintf(what, sizeof(what), "weighted_round_robin %s", c->name);
	check_shares(what, count, 3, PICKS, want, 1.0);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_wrr_cycle)
{
	const struct wrr_case *c = &wrr_cases[_i];
	struct fixture f;
	int seq[4 * 1024];
	unsigned runs[MAX_TEST_BACKENDS], per_cycle[3] = {0};

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN, 3, c->w);
	ck_assert_uint_eq(live(&f)->up_weight, c->cycle);
	/* start anywhere: the runs of a circle do not depend on where it is cut */
	for (int k = 0; k < 1234; k++)
		pick(&f, NULL);
	for (unsigned k = 0; k < 4 * c->cycle; k++)
		seq[k] = index_of(&f, pick(&f, NULL));
	/* the schedule repeats with period exactly <cycle> */
	unsigned period = 1;
	while (period < 4 * c->cycle) {
		unsigned k = period;
		while (k < 4 * c->cycle && seq[k] == seq[k - period])
			k++;
		if (k == 4 * c->cycle)
			break;
		period++;
	}
	for (unsigned k = 0; k < c->cycle; k++)
		per_cycle[seq[k]]++;
	cyclic_runs(seq, c->cycle, runs);
	printf("weighted_round_robin %-26s cycle %u, turns %u/%u/%u, longest cyclic run b0 %u b1 %u "
	       "b2 %u\n", c->name, period, per_cycle[0], per_cycle[1], per_cycle[2], runs[0], runs[1],
	       runs[2]);
	if (c->cycle <= 7) {
		printf("  one cycle:");
		for (unsigned k = 0; k < c->cycle; k++)
			printf(" %c", 'a' + seq[k]);
		printf("\n");
	}
	fflush(stdout);
	ck_assert_uint_eq(period, c->cycle);
	for (size_t i = 0; i < 3; i++)
		ck_assert_uint_eq(per_cycle[i] * (c->w[0] / per_cycle[0]), c->w[i]);
	ck_assert_uint_eq(runs[0], c->run_max);
	ck_assert_uint_eq(runs[1], 1);
	ck_assert_uint_eq(runs[2], 1);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_wrr_one_tick_and_tried)
{
	static const unsigned w[] = {100, 1, 1};
	struct fixture f;
	struct rh_lb_tried tried = {0};
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN, 3, w);
	rh_lb_tried_add(&tried, backend(&f, 0));
	uint64_t before = atomic_load(&f.rt.rr_counter);
	count_picks(&f, 10200, &tried, count);
	ck_assert_uint_eq(atomic_load(&f.rt.rr_counter) - before, 10200);
	/* a tried: its turns fall to whichever of b and c comes next in the schedule */
	check_shares("weighted_round_robin 100,1,1 a tried", count, 3, 10200, (double[]){0, 50, 50},
		     1.0);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_wrr_max_iterations)
{
	static const unsigned w[] = {100, 1, 1};
	struct fixture f;
	struct rh_lb_tried tried = {0};
	unsigned count[MAX_TEST_BACKENDS + 1];

	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(rh_runtime_init(&f.rt, N_WORKERS), 0);
	f.cfg.algorithm = RH_LB_WEIGHTED_ROUND_ROBIN;
	f.cfg.max_iterations = 10;
	publish_weights(&f, 3, w);
	rh_lb_tried_add(&tried, backend(&f, 0));
	/* a has runs of up to 50 turns: only the picks that land within 10 turns of b or c succeed,
	 * 2 * 10 of every 102 */
	count_picks(&f, 10200, &tried, count);
	printf("weighted_round_robin 100,1,1 a tried, max_iterations 10: %.2f%% NULL (want %.2f)\n",
	       pct(count[MAX_TEST_BACKENDS], 10200), 100.0 * 82 / 102);
	fflush(stdout);
	ck_assert_uint_eq(count[0], 0);
	ck_assert_uint_eq(count[MAX_TEST_BACKENDS], 8200);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_wrr_dead_and_drain)
{
	static const unsigned w[] = {5, 1, 1};
	static const unsigned drained[] = {5, 0, 1};
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN, 3, w);
	set_health(&f, "101");
	count_picks(&f, PICKS, NULL, count);
	check_shares("weighted_round_robin 5,1,1 b dead", count, 3, PICKS,
		     (double[]){500.0 / 6, 0, 100.0 / 6}, 1.0);
	set_health(&f, "110");
	count_picks(&f, PICKS, NULL, count);
	check_shares("weighted_round_robin 5,1,1 c dead", count, 3, PICKS,
		     (double[]){500.0 / 6, 100.0 / 6, 0}, 1.0);
	set_health(&f, "111");
	publish_weights(&f, 3, drained);
	count_picks(&f, PICKS, NULL, count);
	check_shares("weighted_round_robin 5,0,1 (b drained)", count, 3, PICKS,
		     (double[]){500.0 / 6, 0, 100.0 / 6}, 1.0);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_wrr_config_change)
{
	static const unsigned a[] = {5, 1, 1};
	static const unsigned b[] = {1, 3, 6};
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];
	double want[3];

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN, 3, a);
	uint64_t uid = backend(&f, 0)->uid;
	count_picks(&f, 12345, NULL, count);
	publish_weights(&f, 3, b);
	ck_assert_uint_eq(backend(&f, 0)->uid, uid); /* the same backend objects */
	weight_shares(b, 3, want);
	count_picks(&f, PICKS, NULL, count);
	check_shares("weighted_round_robin 5,1,1 -> 1,3,6", count, 3, PICKS, want, 1.0);
	fixture_finish(&f);
}
END_TEST

/* ---- random ---- */

START_TEST(test_random_shares)
{
	static const unsigned w1[] = {5, 1, 1}, w2[] = {100, 1, 1};
	const unsigned *w = _i == 0 ? w1 : w2;
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];
	double want[3];

	fixture_init(&f, RH_LB_RANDOM, 3, w);
	uint64_t before = atomic_load(&f.rt.rr_counter);
	weight_shares(w, 3, want);
	count_picks(&f, PICKS, NULL, count);
	check_shares(_i == 0 ? "random 5,1,1" : "random 100,1,1", count, 3, PICKS, want, 1.0);
	ck_assert_uint_eq(atomic_load(&f.rt.rr_counter), before); /* no shared counter */
	fixture_finish(&f);
}
END_TEST

START_TEST(test_random_tried)
{
	static const unsigned w[] = {5, 1, 1};
	struct fixture f;
	struct rh_lb_tried tried = {0};
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_RANDOM, 3, w);
	rh_lb_tried_add(&tried, backend(&f, 0));
	count_picks(&f, PICKS, &tried, count);
	check_shares("random 5,1,1 a tried", count, 3, PICKS, (double[]){0, 50, 50}, 1.0);
	ck_assert_uint_eq(count[MAX_TEST_BACKENDS], 0);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_random_max_iterations)
{
	static const unsigned w[] = {5, 1, 1};
	struct fixture f;
	struct rh_lb_tried tried = {0};
	unsigned count[MAX_TEST_BACKENDS + 1];

	for (unsigned iters = 1; iters <= 2; iters++) {
		memset(&f, 0, sizeof(f));
		ck_assert_int_eq(rh_runtime_init(&f.rt, N_WORKERS), 0);
		f.cfg.algorithm = RH_LB_RANDOM;
		f.cfg.max_iterations = iters;
		publish_weights(&f, 3, w);
		memset(&tried, 0, sizeof(tried));
		rh_lb_tried_add(&tried, backend(&f, 0));
		/* each draw hits the tried a with probability 5/7: NULL takes <iters> such draws */
		count_picks(&f, PICKS, &tried, count);
		double want = iters == 1 ? 100.0 * 5 / 7 : 100.0 * 25 / 49;
		printf("random 5,1,1 a tried, max_iterations %u: %.2f%% NULL (want %.2f)\n", iters,
		       pct(count[MAX_TEST_BACKENDS], PICKS), want);
		fflush(stdout);
		ck_assert_uint_eq(count[0], 0);
		ck_assert(pct(count[MAX_TEST_BACKENDS], PICKS) > want - 1.0);
		ck_assert(pct(count[MAX_TEST_BACKENDS], PICKS) < want + 1.0);
		fixture_finish(&f);
	}
}
END_TEST

/* ---- least_conn ---- */

/* <per_backend>[i] exchanges in flight on backend i, split over the workers. */
static void
set_inflight(struct fixture *f, size_t n, const unsigned *per_backend)
{
	for (size_t i = 0; i < n; i++) {
		struct rh_backend *b = backend(f, i);
		atomic_store(&b->local[0].inflight, per_backend[i] / 2);
		atomic_store(&b->local[1].inflight, per_backend[i] - per_backend[i] / 2);
		ck_assert_uint_eq(rh_backend_inflight(b), per_backend[i]);
	}
}

START_TEST(test_lc_loaded_avoided)
{
	static const unsigned w[] = {1, 1, 1};
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_LEAST_CONN, 3, w);
	set_inflight(&f, 3, (unsigned[]){40, 0, 0});
	count_picks(&f, 30000, NULL, count);
	check_shares("least_conn 1,1,1 b0 40 in flight", count, 3, 30000, (double[]){0, 50, 50}, 5.0);
	set_inflight(&f, 3, (unsigned[]){40, 2, 0});
	count_picks(&f, 30000, NULL, count);
	/* b2 wins every pair it is in (2/3 of them), b1 the pair {b0,b1} */
	check_shares("least_conn 1,1,1 in flight 40,2,0", count, 3, 30000,
		     (double[]){0, 100.0 / 3, 200.0 / 3}, 2.0);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_lc_weights)
{
	static const unsigned w[] = {5, 1, 1};
	struct fixture f;
	unsigned count[MAX_TEST_BACKENDS + 1];
	double want[3];

	fixture_init(&f, RH_LB_LEAST_CONN, 3, w);
	weight_shares(w, 3, want);
	count_picks(&f, PICKS, NULL, count);
	check_shares("least_conn 5,1,1 idle", count, 3, PICKS, want, 1.0);
	/* load in proportion to the weights: a tie everywhere, so the weights decide */
	set_inflight(&f, 3, (unsigned[]){50, 10, 10});
	count_picks(&f, PICKS, NULL, count);
	check_shares("least_conn 5,1,1 in flight 50,10,10", count, 3, PICKS, want, 1.0);
	/* the same load on each: a carries the least per unit of weight and wins every pair it is in,
	 * 1 - (2/7)(1/6) = 40/42 of them */
	set_inflight(&f, 3, (unsigned[]){10, 10, 10});
	count_picks(&f, PICKS, NULL, count);
	check_shares("least_conn 5,1,1 in flight 10,10,10", count, 3, PICKS,
		     (double[]){100.0 * 40 / 42, 100.0 / 42, 100.0 / 42}, 1.0);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_lc_tried_and_max_iterations)
{
	static const unsigned w[] = {1, 1, 1};
	struct fixture f;
	struct rh_lb_tried tried = {0};
	unsigned count[MAX_TEST_BACKENDS + 1];

	fixture_init(&f, RH_LB_LEAST_CONN, 3, w);
	set_inflight(&f, 3, (unsigned[]){40, 0, 0});
	rh_lb_tried_add(&tried, backend(&f, 1));
	count_picks(&f, 30000, &tried, count);
	check_shares("least_conn 1,1,1 b0 loaded, b1 tried", count, 3, 30000, (double[]){0, 0, 100},
		     1.0);
	fixture_finish(&f);

	/* max_iterations 1: one candidate, no comparison, so the loaded one keeps its third */
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(rh_runtime_init(&f.rt, N_WORKERS), 0);
	f.cfg.algorithm = RH_LB_LEAST_CONN;
	f.cfg.max_iterations = 1;
	publish_weights(&f, 3, w);
	set_inflight(&f, 3, (unsigned[]){40, 0, 0});
	count_picks(&f, 30000, NULL, count);
	check_shares("least_conn 1,1,1 b0 loaded, max_iterations 1", count, 3, 30000,
		     (double[]){100.0 / 3, 100.0 / 3, 100.0 / 3}, 1.5);
	fixture_finish(&f);
}
END_TEST

static Suite *
lb_suite(void)
{
	Suite *s = suite_create("lb");
	TCase *tc;
	int n_alg = (int)(sizeof(all_algorithms) / sizeof(all_algorithms[0]));
	int n_wrr = (int)(sizeof(wrr_cases) / sizeof(wrr_cases[0]));

	tc = tcase_create("all");
	tcase_add_loop_test(tc, test_all_down, 0, n_alg);
	tcase_add_loop_test(tc, test_empty_up, 0, n_alg);
	tcase_add_loop_test(tc, test_tried_covers_up, 0, n_alg);
	suite_add_tcase(s, tc);

	tc = tcase_create("round_robin");
	tcase_add_test(tc, test_rr_equal_shares);
	tcase_add_test(tc, test_rr_dead_one_tick);
	tcase_add_test(tc, test_rr_tried_skipped);
	tcase_add_test(tc, test_rr_max_iterations);
	tcase_add_test(tc, test_rr_drain);
	suite_add_tcase(s, tc);

	tc = tcase_create("weighted_round_robin");
	tcase_add_loop_test(tc, test_wrr_shares, 0, n_wrr);
	tcase_add_loop_test(tc, test_wrr_cycle, 0, n_wrr);
	tcase_add_test(tc, test_wrr_one_tick_and_tried);
	tcase_add_test(tc, test_wrr_max_iterations);
	tcase_add_test(tc, test_wrr_dead_and_drain);
	tcase_add_test(tc, test_wrr_config_change);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_loop_test(tc, test_random_shares, 0, 2);
	tcase_add_test(tc, test_random_tried);
	tcase_add_test(tc, test_random_max_iterations);
	suite_add_tcase(s, tc);

	tc = tcase_create("least_conn");
	tcase_add_test(tc, test_lc_loaded_avoided);
	tcase_add_test(tc, test_lc_weights);
	tcase_add_test(tc, test_lc_tried_and_max_iterations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(lb_suite());

	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
