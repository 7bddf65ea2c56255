/* Unit tests for src/lb_consistent_hash.c and the request keys of src/lb.c: snapshots built through
 * the real runtime API (rh_snapshot_from_config, rh_snapshot_with_health, rh_runtime_publish), then
 * the keys of 100,000 requests mapped and compared across changes of the backend set, health and
 * weights. The figures measured are printed so they appear in the test log. Single-threaded: the
 * test publishes without registering as an RCU reader (no reader exists, so the grace period is
 * immediate). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/http1.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

#define MAX_BACKENDS 16
#define N_KEYS 100000
#define FIRST_PORT 8081

struct fixture {
	struct rh_runtime rt;
	struct rh_config cfg;
	struct rh_backend_conf bc[MAX_BACKENDS];
};

static uint64_t keys[N_KEYS];

/* rh_lb_hash("/key/<i>") for every i: what rh_lb_request_key gives for "GET /key/<i>" with uri. */
static void
keys_init(void)
{
	for (unsigned i = 0; i < N_KEYS; i++) {
		char k[32];
		int len = snprintf(k, sizeof(k), "/key/%u", i);
		keys[i] = rh_lb_hash(k, (size_t)len);
	}
}

static void
conf_backend(struct rh_backend_conf *bc, unsigned port, unsigned weight)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&bc->addr.ss;

	memset(bc, 0, sizeof(*bc));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bc->addr.len = sizeof(*sin);
	snprintf(bc->addr.text, sizeof(bc->addr.text), "127.0.0.1:%u", port);
	snprintf(bc->spec, sizeof(bc->spec), "localhost:%u", port);
	bc->weight = weight;
	bc->line = port - FIRST_PORT + 1;
}

/* A config of <n> backends 127.0.0.1:8081.. with weight 1, consistent_hash on the uri, and a runtime
 * of <n_workers> workers with nothing published yet. */
static void
fixture_init(struct fixture *f, size_t n, unsigned n_workers)
{
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(rh_runtime_init(&f->rt, n_workers), 0);
	for (size_t i = 0; i < n; i++)
		conf_backend(&f->bc[i], FIRST_PORT + (unsigned)i, 1);
	f->cfg.backends = f->bc;
	f->cfg.n_backends = n;
	f->cfg.algorithm = RH_LB_CONSISTENT_HASH;
	f->cfg.max_iterations = 256;
	f->cfg.hash_key.kind = RH_HASH_URI;
	keys_init();
}

static const struct rh_snapshot *
live(struct fixture *f)
{
	return rh_runtime_snapshot(&f->rt);
}

/* Publishes a snapshot of f->cfg; the backends of the live one that it lists again stay the same
 * objects (with their health). */
static const struct rh_snapshot *
publish_config(struct fixture *f)
{
	char err[RH_CONFIG_ERR_LEN] = "";
	struct rh_snapshot *s = rh_snapshot_from_config(&f->rt, &f->cfg, f->rt.live, true, err,
							sizeof(err));

	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_ptr_eq(s->lb, &rh_lb_consistent_hash);
	rh_runtime_publish(&f->rt, s);
	return live(f);
}

/* Sets backend <i> of the live snapshot up or down and publishes the health change. */
static const struct rh_snapshot *
set_up(struct fixture *f, size_t i, bool up)
{
	live(f)->backends[i]->up = up;
	struct rh_snapshot *s = rh_snapshot_with_health(&f->rt, live(f));
	ck_assert_ptr_nonnull(s);
	rh_runtime_publish(&f->rt, s);
	return live(f);
}

static struct rh_backend *
pick(const struct rh_snapshot *s, uint64_t key, const struct rh_lb_tried *tried)
{
	return s->lb->pick(s, s->lb_table, key, tried, s->settings.max_iterations);
}

/* The uid of the backend every key goes to in the live snapshot (uids, not pointers: a backend
 * removed from the set is freed, and a later one could reuse its address). */
static void
map_keys(struct fixture *f, uint64_t *uid)
{
	const struct rh_snapshot *s = live(f);

	for (unsigned i = 0; i < N_KEYS; i++) {
		struct rh_backend *b = pick(s, keys[i], NULL);
		ck_assert_ptr_nonnull(b);
		uid[i] = b->uid;
	}
}

static unsigned
count_uid(const uint64_t *uid, uint64_t u)
{
	unsigned c = 0;

	for (unsigned i = 0; i < N_KEYS; i++)
		c += uid[i] == u;
	return c;
}

static double
pct(unsigned part, unsigned whole)
{
	return 100.0 * part / whole;
}

static uint64_t before[N_KEYS], after[N_KEYS], again[N_KEYS];

/* The ring spreads keys evenly: every one of 10 backends gets 10% +- 3%. */
START_TEST(test_spread)
{
	struct fixture f;

	fixture_init(&f, 10, 1);
	const struct rh_snapshot *s = publish_config(&f);
	map_keys(&f, before);
	printf("lb_hash spread over 10 backends:");
	for (size_t i = 0; i < 10; i++) {
		double p = pct(count_uid(before, s->backends[i]->uid), N_KEYS);
		printf(" %.2f%%", p);
		ck_assert_double_ge(p, 7.0);
		ck_assert_double_le(p, 13.0);
	}
	printf("\n");
	rh_runtime_finish(&f.rt);
}
END_TEST

/* Removing one of 10 backends from the config moves only its keys, about 10% of them. */
START_TEST(test_remove_backend)
{
	struct fixture f;

	fixture_init(&f, 10, 1);
	const struct rh_snapshot *s = publish_config(&f);
	uint64_t gone = s->backends[4]->uid;
	map_keys(&f, before);

	memmove(&f.bc[4], &f.bc[5], 5 * sizeof(f.bc[0]));
	f.cfg.n_backends = 9;
	s = publish_config(&f);
	ck_assert_uint_eq(s->n, 9);
	map_keys(&f, after);

	unsigned moved = 0, wrong = 0;
	for (unsigned i = 0; i < N_KEYS; i++) {
		moved += before[i] != after[i];
		wrong += before[i] != gone && before[i] != after[i];
		ck_assert_uint_ne(after[i], gone);
	}
	printf("lb_hash remove 1 of 10: %.2f%% of keys moved (%u), %u between remaining backends\n",
	       pct(moved, N_KEYS), moved, wrong);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_eq(moved, count_uid(before, gone));
	ck_assert_double_ge(pct(moved, N_KEYS), 8.0);
	ck_assert_double_le(pct(moved, N_KEYS), 12.0);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* Adding an 11th backend moves only keys onto it, about 1/11 of them. */
START_TEST(test_add_backend)
{
	struct fixture f;

	fixture_init(&f, 10, 1);
	publish_config(&f);
	map_keys(&f, before);
	conf_backend(&f.bc[10], FIRST_PORT + 10, 1);
	f.cfg.n_backends = 11;
	const struct rh_snapshot *s = publish_config(&f);
	uint64_t added = s->backends[10]->uid;
	map_keys(&f, after);

	unsigned moved = 0, wrong = 0;
	for (unsigned i = 0; i < N_KEYS; i++) {
		moved += before[i] != after[i];
		wrong += before[i] != after[i] && after[i] != added;
	}
	printf("lb_hash add an 11th backend: %.2f%% of keys moved, %u elsewhere than to it\n",
	       pct(moved, N_KEYS), wrong);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_double_ge(pct(moved, N_KEYS), 100.0 / 11 - 2);
	ck_assert_double_le(pct(moved, N_KEYS), 100.0 / 11 + 2);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* A backend that goes down loses only its own keys, and gets every one of them back when it
 * recovers: its points stay on the ring while it is down. */
START_TEST(test_down_and_back)
{
	struct fixture f;

	fixture_init(&f, 10, 1);
	const struct rh_snapshot *s = publish_config(&f);
	uint64_t down = s->backends[3]->uid;
	map_keys(&f, before);

	s = set_up(&f, 3, false);
	ck_assert_uint_eq(s->n_up, 9);
	map_keys(&f, after);
	unsigned moved = 0, wrong = 0;
	for (unsigned i = 0; i < N_KEYS; i++) {
		moved += before[i] != after[i];
		wrong += before[i] != down && before[i] != after[i];
		ck_assert_uint_ne(after[i], down);
	}
	ck_assert_uint_eq(moved, count_uid(before, down));

	set_up(&f, 3, true);
	map_keys(&f, again);
	unsigned back = 0;
	for (unsigned i = 0; i < N_KEYS; i++)
		back += again[i] == before[i];
	printf("lb_hash 1 of 10 down: %.2f%% of keys moved, %u between healthy backends; "
	       "after recovery %u of %u keys where they were\n",
	       pct(moved, N_KEYS), wrong, back, N_KEYS);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_eq(back, N_KEYS);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* With every backend down there is nothing to pick. */
START_TEST(test_all_down)
{
	struct fixture f;

	fixture_init(&f, 3, 1);
	publish_config(&f);
	for (size_t i = 0; i < 3; i++)
		set_up(&f, i, false);
	ck_assert_uint_eq(live(&f)->n_up, 0);
	ck_assert_ptr_null(pick(live(&f), keys[0], NULL));
	ck_assert_ptr_null(pick(live(&f), RH_LB_NO_KEY, NULL));
	rh_runtime_finish(&f.rt);
}
END_TEST

/* A backend of weight 2 among nine of weight 1 gets about twice a peer's share (2/11 of the keys). */
START_TEST(test_weight)
{
	struct fixture f;

	fixture_init(&f, 10, 1);
	f.bc[0].weight = 2;
	const struct rh_snapshot *s = publish_config(&f);
	map_keys(&f, before);
	unsigned heavy = count_uid(before, s->backends[0]->uid);
	double peers = (double)(N_KEYS - heavy) / 9;
	double ratio = heavy / peers;
	printf("lb_hash weight 2 among 9 of weight 1: %.2f%% of keys (expected %.2f%%), "
	       "a weight-1 peer %.2f%% on average, ratio %.2f\n",
	       pct(heavy, N_KEYS), 200.0 / 11, 100.0 * peers / N_KEYS, ratio);
	ck_assert_double_ge(ratio, 1.7);
	ck_assert_double_le(ratio, 2.3);

	/* the same weights scaled (GCD 10): the same ring, the same picks */
	for (size_t i = 0; i < 10; i++)
		f.bc[i].weight *= 10;
	publish_config(&f);
	map_keys(&f, after);
	ck_assert_int_eq(memcmp(before, after, sizeof(before)), 0);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* A draining backend (weight 0) gets no keys, and only its keys move; back at weight 1 it gets them
 * all again. */
START_TEST(test_drain)
{
	struct fixture f;

	fixture_init(&f, 10, 1);
	const struct rh_snapshot *s = publish_config(&f);
	uint64_t drained = s->backends[5]->uid;
	map_keys(&f, before);

	f.bc[5].weight = 0;
	s = publish_config(&f);
	ck_assert_uint_eq(s->backends[5]->uid, drained); /* the same object, kept */
	ck_assert_uint_eq(s->n_up, 9);
	map_keys(&f, after);
	unsigned moved = 0, wrong = 0;
	for (unsigned i = 0; i < N_KEYS; i++) {
		moved += before[i] != after[i];
		wrong += before[i] != drained && before[i] != after[i];
	}
	unsigned on_drained = count_uid(after, drained);
	printf("lb_hash drain 1 of 10: it gets %u keys; %.2f%% of keys moved, %u between others\n",
	       on_drained, pct(moved, N_KEYS), wrong);
	ck_assert_uint_eq(on_drained, 0);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_eq(moved, count_uid(before, drained));

	f.bc[5].weight = 1;
	publish_config(&f);
	map_keys(&f, again);
	ck_assert_int_eq(memcmp(before, again, sizeof(before)), 0);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* Requests without a key are spread over every backend, as round robin would. */
START_TEST(test_no_key_spread)
{
	struct fixture f;
	unsigned count[10] = {0};
	const unsigned n = 10000;

	fixture_init(&f, 10, 1);
	const struct rh_snapshot *s = publish_config(&f);
	for (unsigned i = 0; i < n; i++) {
		struct rh_backend *b = pick(s, RH_LB_NO_KEY, NULL);
		ck_assert_ptr_nonnull(b);
		for (size_t j = 0; j < 10; j++)
			count[j] += b == s->backends[j];
	}
	printf("lb_hash %u keyless requests over 10 backends:", n);
	for (size_t j = 0; j < 10; j++) {
		printf(" %.2f%%", pct(count[j], n));
		ck_assert_double_ge(pct(count[j], n), 5.0);
		ck_assert_double_le(pct(count[j], n), 15.0);
	}
	printf("\n");
	ck_assert_uint_eq(atomic_load(&f.rt.rr_counter), n);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* Sets the in-flight counts of the live snapshot's backends (worker 0) and the total. */
static void
set_load(struct fixture *f, const unsigned *inflight, size_t n)
{
	const struct rh_snapshot *s = live(f);
	unsigned total = 0;

	for (size_t i = 0; i < n; i++) {
		atomic_store(&s->backends[i]->local[0].inflight, inflight[i]);
		total += inflight[i];
	}
	atomic_store(&f->rt.load[0].inflight, total);
}

static size_t
index_of(const struct rh_snapshot *s, const struct rh_backend *b)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->backends[i] == b)
			return i;
	ck_abort_msg("backend not in the snapshot");
	return 0;
}

/* Bounded loads, factor 125: with 100 exchanges in flight over 10 backends of weight 1, a backend may
 * take ceil(1.25 * 101 / 10) = 13. The key's home at 13 is skipped for the next backend on the ring;
 * at 12 (99 in all: capacity still 13) it is chosen; with factor 0 the load is not looked at. */
START_TEST(test_bounded_load)
{
	struct fixture f;
	struct rh_lb_tried tried = {0};
	unsigned load[10];

	fixture_init(&f, 10, 1);
	f.cfg.hash_balance_factor = 125;
	const struct rh_snapshot *s = publish_config(&f);
	const uint64_t key = keys[42];
	struct rh_backend *home = pick(s, key, NULL);
	ck_assert_ptr_nonnull(home);
	rh_lb_tried_add(&tried, home);
	struct rh_backend *next = pick(s, key, &tried); /* the next backend clockwise */
	ck_assert_ptr_nonnull(next);
	ck_assert_ptr_ne(next, home);
	size_t h = index_of(s, home);

	/* 13 on home, 87 on the nine others (six at 10, three at 9): all below capacity but home */
	for (size_t i = 0, j = 0; i < 10; i++)
		load[i] = i == h ? 13 : j++ < 6 ? 10 : 9;
	set_load(&f, load, 10);
	ck_assert_uint_eq(atomic_load(&f.rt.load[0].inflight), 100);
	ck_assert_ptr_eq(pick(s, key, NULL), next);

	load[h] = 12;
	set_load(&f, load, 10);
	ck_assert_ptr_eq(pick(s, key, NULL), home);

	/* the whole ring at capacity: nothing */
	for (size_t i = 0; i < 10; i++)
		load[i] = 13;
	set_load(&f, load, 10);
	atomic_store(&f.rt.load[0].inflight, 100);
	ck_assert_ptr_null(pick(s, key, NULL));

	/* factor 0: the same overload is ignored, and the loads are not even read */
	f.cfg.hash_balance_factor = 0;
	s = publish_config(&f);
	ck_assert_ptr_eq(pick(s, key, NULL), home);
	struct rh_worker_load *saved = f.rt.load;
	f.rt.load = NULL; /* a read would crash */
	ck_assert_ptr_eq(pick(s, key, NULL), home);
	f.rt.load = saved;
	printf("lb_hash bounded load 125%%: home %s at capacity 13 -> %s; at 12 -> home; factor 0 -> home\n",
	       home->name, next->name);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* Bounded loads under a hot key set: 1000 exchanges over 5 keys that never complete. Unbounded, the
 * 5 keys' homes take everything; at factor 125 no backend ever exceeds its capacity at the time of
 * its pick, and the last capacity is ceil(1.25 * 1000 / 10) = 125. */
static unsigned
hot_keys_max(struct fixture *f, unsigned factor, unsigned *used)
{
	unsigned load[10] = {0};

	f->cfg.hash_balance_factor = factor;
	const struct rh_snapshot *s = publish_config(f);
	set_load(f, load, 10);
	for (unsigned i = 0; i < 1000; i++) {
		struct rh_backend *b = pick(s, keys[i % 5], NULL);
		ck_assert_ptr_nonnull(b);
		load[index_of(s, b)]++;
		set_load(f, load, 10);
	}
	unsigned max = 0;
	*used = 0;
	for (size_t i = 0; i < 10; i++) {
		max = load[i] > max ? load[i] : max;
		*used += load[i] > 0;
	}
	return max;
}

START_TEST(test_bounded_load_hot_keys)
{
	struct fixture f;
	unsigned used0, used125;

	fixture_init(&f, 10, 1);
	unsigned max0 = hot_keys_max(&f, 0, &used0);
	unsigned max125 = hot_keys_max(&f, 125, &used125);
	printf("lb_hash 1000 in flight on 5 hot keys: factor 0 max %u on one backend (%u backends used), "
	       "factor 125 max %u (%u used)\n", max0, used0, max125, used125);
	ck_assert_uint_ge(max0, 200);
	ck_assert_uint_le(used0, 5);
	ck_assert_uint_le(max125, 125);
	ck_assert_uint_eq(used125, 10);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* A retry for the same key goes to the next backend on the ring (where the key goes when its home is
 * down); max_iterations bounds the points looked at. */
START_TEST(test_tried)
{
	struct fixture f;
	struct rh_lb_tried tried = {0};

	fixture_init(&f, 10, 1);
	const struct rh_snapshot *s = publish_config(&f);
	unsigned differs = 0;
	for (unsigned i = 0; i < 1000; i++) {
		struct rh_lb_tried t = {0};
		struct rh_backend *home = pick(s, keys[i], NULL);
		rh_lb_tried_add(&t, home);
		struct rh_backend *retry = pick(s, keys[i], &t);
		ck_assert_ptr_nonnull(retry);
		differs += retry != home;
	}
	ck_assert_uint_eq(differs, 1000);

	const uint64_t key = keys[7];
	struct rh_backend *home = pick(s, key, NULL);
	rh_lb_tried_add(&tried, home);
	struct rh_backend *retry = pick(s, key, &tried);
	ck_assert_ptr_eq(s->lb->pick(s, s->lb_table, key, NULL, 1), home);

	s = set_up(&f, index_of(s, home), false);
	ck_assert_ptr_eq(pick(s, key, NULL), retry); /* next on the ring: the same as the retry's */
	ck_assert_ptr_null(s->lb->pick(s, s->lb_table, key, NULL, 1));
	ck_assert_ptr_null(s->lb->pick(s, s->lb_table, key, NULL, 0));

	/* eight backends tried and home down: one of the last two */
	struct rh_lb_tried all = {0};
	for (size_t i = 0; i < RH_LB_MAX_TRIED; i++)
		rh_lb_tried_add(&all, s->backends[i]);
	struct rh_backend *b = pick(s, key, &all);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_ge(index_of(s, b), RH_LB_MAX_TRIED);
	printf("lb_hash retry: home %s, retry %s (= where the key goes with home down)\n", home->name,
	       retry->name);
	rh_runtime_finish(&f.rt);
}
END_TEST

/* ---- rh_lb_request_key ---- */

static const struct rh_http_limits limits = {.max_head = 16384, .max_uri = 8192, .max_headers = 100};

/* The key of request head <raw> under <kind>/<name>, client address <ip>. */
static uint64_t
key_of(enum rh_hash_key_kind kind, const char *name, const char *raw, const char *ip)
{
	struct rh_http_request req;
	struct rh_hash_key hk = {.kind = kind};

	if (name) {
		hk.name_len = (unsigned)strlen(name);
		memcpy(hk.name, name, hk.name_len + 1);
	}
	ck_assert_int_eq(rh_http_parse_request(raw, strlen(raw), &limits, &req), (int)strlen(raw));
	return rh_lb_request_key(&hk, &req, (struct rh_span){ip, strlen(ip)});
}

static uint64_t
hash_str(const char *s)
{
	return rh_lb_hash(s, strlen(s));
}

START_TEST(test_key_uri_path)
{
	const char *q1 = "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *q2 = "GET /a/b?x=2 HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *nq = "GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *abs = "GET http://h/a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";

	ck_assert_uint_eq(key_of(RH_HASH_URI, NULL, q1, "10.0.0.1"), hash_str("/a/b?x=1"));
	ck_assert_uint_ne(key_of(RH_HASH_URI, NULL, q1, "10.0.0.1"), key_of(RH_HASH_URI, NULL, q2, "10.0.0.1"));
	ck_assert_uint_ne(key_of(RH_HASH_URI, NULL, q1, "10.0.0.1"), key_of(RH_HASH_URI, NULL, nq, "10.0.0.1"));
	ck_assert_uint_eq(key_of(RH_HASH_URI, NULL, abs, "10.0.0.1"), hash_str("/a/b?x=1"));
	/* path: the query is ignored */
	ck_assert_uint_eq(key_of(RH_HASH_PATH, NULL, q1, "10.0.0.1"), hash_str("/a/b"));
	ck_assert_uint_eq(key_of(RH_HASH_PATH, NULL, q2, "10.0.0.1"), hash_str("/a/b"));
	ck_assert_uint_eq(key_of(RH_HASH_PATH, NULL, nq, "10.0.0.1"), hash_str("/a/b"));
	ck_assert_uint_eq(key_of(RH_HASH_PATH, NULL, abs, "10.0.0.1"), hash_str("/a/b"));
	ck_assert_uint_eq(key_of(RH_HASH_URI, NULL, nq, "10.0.0.1"), key_of(RH_HASH_PATH, NULL, nq, "10.0.0.2"));
	/* an absolute target with an empty path or a bare query is the "/" it is forwarded as */
	const char *root = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *abs_empty = "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *abs_query = "GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n";
	ck_assert_uint_eq(key_of(RH_HASH_URI, NULL, abs_empty, "10.0.0.1"), key_of(RH_HASH_URI, NULL, root, "10.0.0.1"));
	ck_assert_uint_eq(key_of(RH_HASH_URI, NULL, abs_query, "10.0.0.1"), hash_str("/?q=1"));
	ck_assert_uint_eq(key_of(RH_HASH_PATH, NULL, abs_query, "10.0.0.1"), hash_str("/"));
}
END_TEST

START_TEST(test_key_client_ip)
{
	const char *r = "GET /a?x HTTP/1.1\r\nHost: h\r\n\r\n";

	ck_assert_uint_eq(key_of(RH_HASH_CLIENT_IP, NULL, r, "10.0.0.1"), hash_str("10.0.0.1"));
	ck_assert_uint_ne(key_of(RH_HASH_CLIENT_IP, NULL, r, "10.0.0.1"),
			  key_of(RH_HASH_CLIENT_IP, NULL, r, "10.0.0.2"));
	ck_assert_uint_eq(key_of(RH_HASH_CLIENT_IP, NULL, r, "10.0.0.1"),
			  key_of(RH_HASH_CLIENT_IP, NULL, "GET /other HTTP/1.1\r\nHost: h\r\n\r\n", "10.0.0.1"));
}
END_TEST

START_TEST(test_key_header)
{
	const char *one = "GET / HTTP/1.1\r\nHost: h\r\nx-user: alice\r\n\r\n";
	const char *two = "GET / HTTP/1.1\r\nHost: h\r\nX-USER: alice\r\nX-User: bob\r\n\r\n";
	const char *bob = "GET /x HTTP/1.1\r\nX-User:  bob \r\nHost: h\r\n\r\n";
	const char *none = "GET / HTTP/1.1\r\nHost: h\r\nX-Users: alice\r\nX-Use: alice\r\n\r\n";

	ck_assert_uint_eq(key_of(RH_HASH_HEADER, "X-User", one, "10.0.0.1"), hash_str("alice"));
	ck_assert_uint_eq(key_of(RH_HASH_HEADER, "X-User", two, "10.0.0.1"), hash_str("alice"));
	ck_assert_uint_eq(key_of(RH_HASH_HEADER, "x-user", bob, "10.0.0.1"), hash_str("bob"));
	ck_assert_uint_eq(key_of(RH_HASH_HEADER, "X-User", none, "10.0.0.1"), RH_LB_NO_KEY);
	/* the first line decides even when empty: no key, not the second line's */
	const char *empty_first = "GET / HTTP/1.1\r\nHost: h\r\nX-User:\r\nX-User: bob\r\n\r\n";
	ck_assert_uint_eq(key_of(RH_HASH_HEADER, "X-User", empty_first, "10.0.0.1"), RH_LB_NO_KEY);
}
END_TEST

START_TEST(test_key_cookie)
{
	const char *among = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; sid=xyz; b=2\r\n\r\n";
	const char *alone = "GET /other HTTP/1.1\r\nHost: h\r\ncookie: sid=xyz\r\n\r\n";
	const char *last = "GET / HTTP/1.1\r\nHost: h\r\nCookie: xsid=1;sidx=2; sid=xyz\r\n\r\n";
	const char *second = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: sid=xyz\r\n\r\n";
	const char *other = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; SID=xyz; xsid=2\r\n\r\n";
	const char *no_cookie = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *empty = "GET / HTTP/1.1\r\nHost: h\r\nCookie: sid=; a=1\r\n\r\n";

	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", among, "10.0.0.1"), hash_str("xyz"));
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", alone, "10.0.0.2"), hash_str("xyz"));
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", last, "10.0.0.1"), hash_str("xyz"));
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", second, "10.0.0.1"), hash_str("xyz"));
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", other, "10.0.0.1"), RH_LB_NO_KEY);
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", no_cookie, "10.0.0.1"), RH_LB_NO_KEY);
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", empty, "10.0.0.1"), RH_LB_NO_KEY);
	/* the first sid found decides, even when empty */
	const char *empty_then = "GET / HTTP/1.1\r\nHost: h\r\nCookie: sid=\r\nCookie: sid=x\r\n\r\n";
	ck_assert_uint_eq(key_of(RH_HASH_COOKIE, "sid", empty_then, "10.0.0.1"), RH_LB_NO_KEY);
}
END_TEST

/* A file of many heavy backends: the ring stays within its cap (2^21 points, 16 MiB) instead of
 * 160 points per unit of weight (50 backends of weight 1000 and 50 of 499: 12 million points,
 * 96 MB), and keys still follow the weights. */
START_TEST(test_ring_cap)
{
	enum { N = 100 };
	struct rh_runtime rt;
	struct rh_config cfg;
	struct rh_backend_conf *bc = calloc(N, sizeof(*bc));
	char err[RH_CONFIG_ERR_LEN] = "";
	unsigned heavy = 0;

	ck_assert_ptr_nonnull(bc);
	keys_init();
	memset(&cfg, 0, sizeof(cfg));
	for (unsigned i = 0; i < N; i++)
		conf_backend(&bc[i], FIRST_PORT + i, i % 2 ? 499 : 1000);
	cfg.backends = bc;
	cfg.n_backends = N;
	cfg.algorithm = RH_LB_CONSISTENT_HASH;
	cfg.max_iterations = 256;
	cfg.hash_key.kind = RH_HASH_URI;
	ck_assert_int_eq(rh_runtime_init(&rt, 1), 0);
	struct rh_snapshot *s = rh_snapshot_from_config(&rt, &cfg, NULL, true, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	size_t points = rh_lb_consistent_hash_points(s->lb_table);
	ck_assert_uint_le(points, (size_t)1 << 21);
	ck_assert_uint_ge(points, ((size_t)1 << 21) - N * 4);
	for (unsigned i = 0; i < N_KEYS; i++) {
		struct rh_backend *b = pick(s, keys[i], NULL);
		ck_assert_ptr_nonnull(b);
		for (unsigned j = 0; j < N; j += 2)
			heavy += b == s->backends[j];
	}
	double share = pct(heavy, N_KEYS), want = 100.0 * 1000 / 1499;
	printf("lb_hash ring cap: 100 backends of weight 1000/499 -> %zu points (uncapped %u); "
	       "weight-1000 half %.2f%% of keys (want %.2f%%)\n",
	       points, 50 * 1499 * 160, share, want);
	ck_assert_msg(share > want - 1.5 && share < want + 1.5, "heavy share %.2f%%", share);
	rh_runtime_publish(&rt, s);
	rh_runtime_finish(&rt);
	free(bc);
}
END_TEST

/* A request without the cookie is spread (NO_KEY), one with it always goes to the same backend. */
START_TEST(test_key_pick_end_to_end)
{
	struct fixture f;
	const char *with = "GET /p HTTP/1.1\r\nHost: h\r\nCookie: sid=session-42\r\n\r\n";

	fixture_init(&f, 10, 1);
	f.cfg.hash_key.kind = RH_HASH_COOKIE;
	f.cfg.hash_key.name_len = 3;
	memcpy(f.cfg.hash_key.name, "sid", 4);
	const struct rh_snapshot *s = publish_config(&f);
	ck_assert(s->lb->uses_key);
	ck_assert_int_eq(s->settings.hash_key.kind, RH_HASH_COOKIE);
	uint64_t k = key_of(s->settings.hash_key.kind, s->settings.hash_key.name, with, "10.0.0.1");
	struct rh_backend *b = pick(s, k, NULL);
	for (unsigned i = 0; i < 100; i++)
		ck_assert_ptr_eq(pick(s, k, NULL), b);
	rh_runtime_finish(&f.rt);
}
END_TEST

static Suite *
lb_hash_suite(void)
{
	Suite *s = suite_create("lb_hash");
	TCase *ring = tcase_create("ring");
	TCase *key = tcase_create("key");

	tcase_set_timeout(ring, 120);
	tcase_add_test(ring, test_spread);
	tcase_add_test(ring, test_remove_backend);
	tcase_add_test(ring, test_add_backend);
	tcase_add_test(ring, test_down_and_back);
	tcase_add_test(ring, test_all_down);
	tcase_add_test(ring, test_weight);
	tcase_add_test(ring, test_drain);
	tcase_add_test(ring, test_no_key_spread);
	tcase_add_test(ring, test_bounded_load);
	tcase_add_test(ring, test_bounded_load_hot_keys);
	tcase_add_test(ring, test_ring_cap);
	tcase_add_test(ring, test_tried);
	suite_add_tcase(s, ring);

	tcase_add_test(key, test_key_uri_path);
	tcase_add_test(key, test_key_client_ip);
	tcase_add_test(key, test_key_header);
	tcase_add_test(key, test_key_cookie);
	tcase_add_test(key, test_key_pick_end_to_end);
	suite_add_tcase(s, key);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(lb_hash_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
