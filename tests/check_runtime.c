/* Unit tests for src/runtime.c and the backend object lifetime (src/backend.c): building snapshots
 * from a config and from new health, stable backend objects across snapshots, their references and
 * the retired flag, and QSBR readers running against a writer that publishes snapshots whose
 * backend sets change. Meant to run under ASan and TSan too (scripts/test): a snapshot or backend
 * freed before its last reader is done shows up there, not in an assertion. */
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
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"

#define MAX_TEST_BACKENDS 8

/* A hand-built config: backends are added with add_backend, algorithm weighted round robin. */
struct fixture {
	struct rh_config cfg;
	struct rh_backend_conf bc[MAX_TEST_BACKENDS];
};

static void
fixture_init(struct fixture *f, enum rh_lb_algorithm algorithm)
{
	memset(f, 0, sizeof(*f));
	f->cfg.backends = f->bc;
	f->cfg.max_iterations = 256;
	f->cfg.algorithm = algorithm;
}

/* Appends 127.0.0.1:<port> ("localhost:<port>" as written) with <weight>. */
static void
add_backend(struct fixture *f, unsigned port, unsigned weight)
{
	struct rh_backend_conf *bc;
	struct sockaddr_in *sin;

	ck_assert_uint_lt(f->cfg.n_backends, MAX_TEST_BACKENDS);
	bc = &f->bc[f->cfg.n_backends];
	memset(bc, 0, sizeof(*bc));
	sin = (struct sockaddr_in *)&bc->addr.ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bc->addr.len = sizeof(*sin);
	snprintf(bc->addr.text, sizeof(bc->addr.text), "127.0.0.1:%u", port);
	snprintf(bc->spec, sizeof(bc->spec), "localhost:%u", port);
	bc->weight = weight;
	bc->line = (unsigned)f->cfg.n_backends + 1;
	f->cfg.n_backends++;
}

static struct rh_snapshot *
build(struct rh_runtime *rt, const struct fixture *f, const struct rh_snapshot *prev, bool up)
{
	char err[RH_CONFIG_ERR_LEN] = "";
	struct rh_snapshot *s = rh_snapshot_from_config(rt, &f->cfg, prev, up, err, sizeof(err));

	ck_assert_msg(s != NULL, "rh_snapshot_from_config: %s", err);
	return s;
}

static unsigned
refs(const struct rh_backend *b)
{
	return (unsigned)atomic_load(&b->refs);
}

static bool
retired(const struct rh_backend *b)
{
	return atomic_load(&b->retired);
}

static struct rh_backend *
pick(const struct rh_snapshot *s)
{
	return s->lb->pick(s, s->lb_table, RH_LB_NO_KEY, NULL, s->settings.max_iterations);
}

/* ---- building ---- */

START_TEST(test_from_config)
{
	struct fixture f;
	struct rh_runtime rt;
	struct rh_snapshot *a, *down, *b;

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN);
	add_backend(&f, 9001, 10);
	add_backend(&f, 9002, 20);
	add_backend(&f, 9003, 30);
	add_backend(&f, 9004, 0); /* draining */
	f.cfg.keepalive = 17;
	f.cfg.host_header = "backend.example";
	f.cfg.x_forwarded_for = RH_XFF_REPLACE;
	f.cfg.hash_key.kind = RH_HASH_HEADER;
	f.cfg.hash_key.name_len = 6;
	memcpy(f.cfg.hash_key.name, "X-User", 7);
	f.cfg.hash_balance_factor = 125;
	f.cfg.connect_ms = 1001;
	f.cfg.client_header_ms = 1002;
	f.cfg.upstream_read_ms = 1003;
	f.cfg.idle_ms = 1004;
	f.cfg.max_body_size = 123456;
	ck_assert_int_eq(rh_runtime_init(&rt, 3), 0);
	ck_assert_uint_eq(rt.n_workers, 3);

	a = build(&rt, &f, NULL, true);
	ck_assert_uint_eq(a->generation, 1);
	ck_assert_ptr_eq(a->rt, &rt);
	ck_assert_ptr_eq(a->lb, &rh_lb_weighted_round_robin);
	ck_assert_ptr_nonnull(a->lb_table);
	ck_assert_uint_eq(a->n, 4);
	for (unsigned i = 0; i < 4; i++) {
		struct rh_backend *be = a->backends[i];

		ck_assert_uint_eq(a->weights[i], i < 3 ? i + 1 : 0); /* 10,20,30,0 -> 1,2,3,0 */
		ck_assert_uint_eq(a->healthy[i], 1);
		ck_assert_str_eq(be->name, f.bc[i].addr.text);
		ck_assert_str_eq(be->spec, f.bc[i].spec);
		ck_assert_str_eq(be->tls_name, "localhost");
		ck_assert(!be->tls_name_is_ip);
		ck_assert_int_eq(memcmp(&be->addr, &f.bc[i].addr, sizeof(be->addr)), 0);
		ck_assert_uint_eq(be->uid, i + 1);
		ck_assert_uint_eq(be->n_local, 3);
		ck_assert(be->up);
		ck_assert_uint_eq(refs(be), 1);
		ck_assert(!retired(be));
		ck_assert_uint_eq(rh_backend_inflight(be), 0);
	}
	/* the draining backend is in the set but not selectable */
	ck_assert_uint_eq(a->n_up, 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_uint_eq(a->up[i], i);
	ck_assert_uint_eq(a->up_weight, 6);

	/* settings are copied, the Host override into the snapshot's own bytes */
	ck_assert_uint_eq(a->settings.max_iterations, 256);
	ck_assert_uint_eq(a->settings.keepalive, 17);
	ck_assert_uint_eq(a->settings.host_header.len, strlen("backend.example"));
	ck_assert_ptr_ne(a->settings.host_header.p, f.cfg.host_header);
	ck_assert_int_eq(memcmp(a->settings.host_header.p, "backend.example", 15), 0);
	ck_assert_int_eq(a->settings.x_forwarded_for, RH_XFF_REPLACE);
	ck_assert_int_eq(a->settings.hash_key.kind, RH_HASH_HEADER);
	ck_assert_uint_eq(a->settings.hash_key.name_len, 6);
	ck_assert_str_eq(a->settings.hash_key.name, "X-User");
	ck_assert_uint_eq(a->settings.hash_balance_factor, 125);
	ck_assert_uint_eq(a->settings.connect_ms, 1001);
	ck_assert_uint_eq(a->settings.client_header_ms, 1002);
	ck_assert_uint_eq(a->settings.upstream_read_ms, 1003);
	ck_assert_uint_eq(a->settings.idle_ms, 1004);
	ck_assert_uint_eq(a->settings.limits.max_body, 123456);
	ck_assert_uint_gt(a->settings.limits.max_head, 0);
	ck_assert_uint_gt(a->settings.limits.max_uri, 0);
	ck_assert_uint_gt(a->settings.limits.max_headers, 0);

	/* initially down: the same config without a previous snapshot gives new objects, all down */
	f.cfg.host_header = NULL;
	f.cfg.algorithm = RH_LB_ROUND_ROBIN;
	down = build(&rt, &f, NULL, false);
	ck_assert_uint_eq(down->generation, 2);
	ck_assert_ptr_eq(down->lb, &rh_lb_round_robin);
	ck_assert_uint_eq(down->settings.host_header.len, 0);
	ck_assert_uint_eq(down->n, 4);
	ck_assert_uint_eq(down->n_up, 0);
	ck_assert_uint_eq(down->up_weight, 0);
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_ptr_ne(down->backends[i], a->backends[i]);
		ck_assert_uint_eq(down->backends[i]->uid, 5 + i);
		ck_assert_uint_eq(down->healthy[i], 0);
		ck_assert(!down->backends[i]->up);
	}
	ck_assert_ptr_null(pick(down));

	/* with <a> as prev: its three objects are kept (up), the new one starts down */
	f.cfg.n_backends = 0;
	add_backend(&f, 9005, 4);  /* new */
	add_backend(&f, 9003, 6);  /* kept */
	add_backend(&f, 9001, 0);  /* kept, now draining */
	add_backend(&f, 9002, 8);  /* kept */
	b = build(&rt, &f, a, false);
	ck_assert_uint_eq(b->generation, 3);
	ck_assert_uint_eq(b->n, 4);
	ck_assert_uint_eq(b->backends[0]->uid, 9);
	ck_assert_ptr_eq(b->backends[1], a->backends[2]);
	ck_assert_ptr_eq(b->backends[2], a->backends[0]);
	ck_assert_ptr_eq(b->backends[3], a->backends[1]);
	ck_assert_uint_eq(b->weights[0], 2); /* 4,6,0,8 -> 2,3,0,4 */
	ck_assert_uint_eq(b->weights[1], 3);
	ck_assert_uint_eq(b->weights[2], 0);
	ck_assert_uint_eq(b->weights[3], 4);
	ck_assert_uint_eq(b->healthy[0], 0);
	ck_assert_uint_eq(b->healthy[1], 1);
	ck_assert_uint_eq(b->healthy[2], 1);
	ck_assert_uint_eq(b->healthy[3], 1);
	ck_assert_uint_eq(b->n_up, 2); /* not the down one, not the draining one */
	ck_assert_uint_eq(b->up[0], 1);
	ck_assert_uint_eq(b->up[1], 3);
	ck_assert_uint_eq(b->up_weight, 7);
	ck_assert_uint_eq(rt.generation, 3);
	for (unsigned i = 0; i < 10; i++) {
		struct rh_backend *p = pick(b);

		ck_assert(p == b->backends[1] || p == b->backends[3]);
	}

	rh_snapshot_free(a);
	rh_snapshot_free(down);
	rh_snapshot_free(b);
	rh_runtime_finish(&rt);
	ck_assert_ptr_null(rt.live);
}
END_TEST

/* The same address and spec twice in one config: two objects, not one shared. */
START_TEST(test_duplicate_entries)
{
	struct fixture f;
	struct rh_runtime rt;
	struct rh_snapshot *a, *b;

	fixture_init(&f, RH_LB_ROUND_ROBIN);
	add_backend(&f, 9001, 1);
	add_backend(&f, 9001, 1);
	ck_assert_int_eq(rh_runtime_init(&rt, 1), 0);
	a = build(&rt, &f, NULL, true);
	ck_assert_ptr_ne(a->backends[0], a->backends[1]);
	b = build(&rt, &f, a, true);
	ck_assert_ptr_eq(b->backends[0], a->backends[0]);
	ck_assert_ptr_eq(b->backends[1], a->backends[1]);
	ck_assert_uint_eq(refs(a->backends[0]), 2);
	ck_assert_uint_eq(refs(a->backends[1]), 2);
	rh_snapshot_free(a);
	rh_snapshot_free(b);
	rh_runtime_finish(&rt);
}
END_TEST

/* ---- stable objects, references and retirement ---- */

START_TEST(test_stable_objects)
{
	struct fixture fa, fb;
	struct rh_runtime rt;
	struct rh_snapshot *a, *b;
	struct rh_backend *kept, *removed, *added;

	fixture_init(&fa, RH_LB_ROUND_ROBIN);
	add_backend(&fa, 9001, 1); /* kept */
	add_backend(&fa, 9002, 1); /* removed in b */
	fixture_init(&fb, RH_LB_ROUND_ROBIN);
	add_backend(&fb, 9003, 1); /* added in b */
	add_backend(&fb, 9001, 1);
	ck_assert_int_eq(rh_runtime_init(&rt, 2), 0);

	a = build(&rt, &fa, NULL, true);
	rh_runtime_publish(&rt, a);
	ck_assert_ptr_eq(rh_runtime_snapshot(&rt), a);
	kept = a->backends[0];
	removed = a->backends[1];
	/* state the control thread keeps on the object */
	kept->health_counter = 7;
	kept->up = false;

	b = build(&rt, &fb, a, true);
	added = b->backends[0];
	ck_assert_ptr_eq(b->backends[1], kept);
	ck_assert_ptr_ne(added, kept);
	ck_assert_ptr_ne(added, removed);
	ck_assert_uint_eq(kept->uid, 1);
	ck_assert_uint_eq(removed->uid, 2);
	ck_assert_uint_eq(added->uid, 3);
	ck_assert_uint_eq(kept->health_counter, 7);
	ck_assert(!kept->up);
	ck_assert_uint_eq(b->healthy[1], 0); /* its own health, not initially_up */
	ck_assert_uint_eq(b->healthy[0], 1);
	ck_assert(added->up);
	ck_assert_uint_eq(b->n_up, 1);
	ck_assert_uint_eq(refs(kept), 2); /* a and b */
	ck_assert_uint_eq(refs(removed), 1);
	ck_assert_uint_eq(refs(added), 1);
	/* building is not publishing: nothing is retired yet */
	ck_assert(!retired(removed));

	/* an extra reference, so the removed object can be looked at after a is freed */
	rh_backend_ref(removed);
	ck_assert_uint_eq(refs(removed), 2);
	rh_runtime_publish(&rt, b); /* a is freed here */
	ck_assert_ptr_eq(rh_runtime_snapshot(&rt), b);
	ck_assert(retired(removed));
	ck_assert_uint_eq(refs(removed), 1);
	ck_assert(!retired(kept));
	ck_assert(!retired(added));
	ck_assert_uint_eq(refs(kept), 1);
	ck_assert_uint_eq(refs(added), 1);
	ck_assert_uint_eq(kept->health_counter, 7);
	rh_backend_unref(removed); /* the last reference: freed (ASan: exactly once) */

	rh_runtime_finish(&rt);
	ck_assert_ptr_null(rt.live);
}
END_TEST

START_TEST(test_with_health)
{
	struct fixture f;
	struct rh_runtime rt;
	struct rh_snapshot *a, *h;

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN);
	add_backend(&f, 9001, 3);
	add_backend(&f, 9002, 6);
	add_backend(&f, 9003, 9);
	f.cfg.host_header = "h.example";
	f.cfg.keepalive = 5;
	ck_assert_int_eq(rh_runtime_init(&rt, 1), 0);
	a = build(&rt, &f, NULL, true);
	rh_runtime_publish(&rt, a);
	ck_assert_uint_eq(a->n_up, 3);

	a->backends[1]->up = false;
	h = rh_snapshot_with_health(&rt, a);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->generation, 2);
	ck_assert_ptr_eq(h->rt, &rt);
	ck_assert_ptr_eq(h->lb, a->lb);
	ck_assert_ptr_ne(h->lb_table, a->lb_table);
	ck_assert_uint_eq(h->n, 3);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_ptr_eq(h->backends[i], a->backends[i]);
		ck_assert_uint_eq(h->weights[i], a->weights[i]);
		ck_assert_uint_eq(h->weights[i], i + 1);
		ck_assert_uint_eq(h->healthy[i], i != 1);
		ck_assert_uint_eq(a->healthy[i], 1); /* a is immutable */
		ck_assert_uint_eq(refs(h->backends[i]), 2);
	}
	ck_assert_uint_eq(h->n_up, 2);
	ck_assert_uint_eq(h->up[0], 0);
	ck_assert_uint_eq(h->up[1], 2);
	ck_assert_uint_eq(h->up_weight, 4);
	ck_assert_uint_eq(h->settings.keepalive, 5);
	ck_assert_uint_eq(h->settings.max_iterations, 256);
	ck_assert_uint_eq(h->settings.host_header.len, 9);
	ck_assert_ptr_ne(h->settings.host_header.p, a->settings.host_header.p);
	ck_assert_int_eq(memcmp(h->settings.host_header.p, "h.example", 9), 0);
	for (unsigned i = 0; i < 20; i++)
		ck_assert_ptr_ne(pick(h), h->backends[1]);

	rh_runtime_publish(&rt, h); /* frees a */
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_uint_eq(refs(h->backends[i]), 1);
		ck_assert(!retired(h->backends[i])); /* same set: none left */
	}
	/* and back up */
	h->backends[1]->up = true;
	a = rh_snapshot_with_health(&rt, h);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->generation, 3);
	ck_assert_uint_eq(a->n_up, 3);
	ck_assert_uint_eq(a->up_weight, 6);
	rh_runtime_publish(&rt, a);
	rh_runtime_finish(&rt);
}
END_TEST

/* A health change shares a table that does not depend on health (the hash ring: no MD5 and no
 * sort again) and builds again one that does (the smooth schedule); a config change builds anew. */
START_TEST(test_table_sharing)
{
	struct fixture f;
	struct rh_runtime rt;
	struct rh_snapshot *a, *h, *h2, *c;

	fixture_init(&f, RH_LB_CONSISTENT_HASH);
	f.cfg.hash_key.kind = RH_HASH_URI;
	add_backend(&f, 9001, 1);
	add_backend(&f, 9002, 1);
	add_backend(&f, 9003, 1);
	ck_assert_int_eq(rh_runtime_init(&rt, 1), 0);
	a = build(&rt, &f, NULL, true);
	rh_runtime_publish(&rt, a);
	a->backends[1]->up = false;
	h = rh_snapshot_with_health(&rt, a);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(h->lb_table);
	ck_assert_ptr_eq(h->lb_table, a->lb_table);
	rh_runtime_publish(&rt, h); /* frees a: the ring stays, h holds it */
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t key = rh_lb_hash(&i, sizeof(i));
		struct rh_backend *b = h->lb->pick(h, h->lb_table, key, NULL, 256);
		ck_assert_ptr_nonnull(b);
		ck_assert_ptr_ne(b, h->backends[1]);
	}
	h->backends[1]->up = true;
	h2 = rh_snapshot_with_health(&rt, h);
	ck_assert_ptr_nonnull(h2);
	ck_assert_ptr_eq(h2->lb_table, h->lb_table);
	rh_runtime_publish(&rt, h2);
	c = build(&rt, &f, h2, true); /* same file again: a new ring, h2's stays until h2 goes */
	ck_assert_ptr_ne(c->lb_table, h2->lb_table);
	rh_runtime_publish(&rt, c);
	rh_runtime_finish(&rt);

	fixture_init(&f, RH_LB_WEIGHTED_ROUND_ROBIN);
	add_backend(&f, 9001, 2);
	add_backend(&f, 9002, 1);
	ck_assert_int_eq(rh_runtime_init(&rt, 1), 0);
	a = build(&rt, &f, NULL, true);
	rh_runtime_publish(&rt, a);
	a->backends[0]->up = false;
	h = rh_snapshot_with_health(&rt, a);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_ne(h->lb_table, a->lb_table); /* the schedule lists live backends only */
	rh_runtime_publish(&rt, h);
	for (unsigned i = 0; i < 10; i++)
		ck_assert_ptr_eq(pick(h), h->backends[1]);
	rh_runtime_finish(&rt);
}
END_TEST

/* An upstream connection's reference keeps a backend alive after the last snapshot listing it. */
START_TEST(test_connection_reference)
{
	struct fixture fa, fb;
	struct rh_runtime rt;
	struct rh_snapshot *a, *b;
	struct rh_backend *conn_backend;

	fixture_init(&fa, RH_LB_ROUND_ROBIN);
	add_backend(&fa, 9001, 1);
	add_backend(&fa, 9002, 1);
	fixture_init(&fb, RH_LB_ROUND_ROBIN);
	add_backend(&fb, 9001, 1);
	ck_assert_int_eq(rh_runtime_init(&rt, 2), 0);
	a = build(&rt, &fa, NULL, true);
	rh_runtime_publish(&rt, a);

	conn_backend = a->backends[1];
	rh_backend_ref(conn_backend); /* as an upstream connection takes one */
	rh_counter_add(&conn_backend->local[1].inflight, 1);

	b = build(&rt, &fb, a, true);
	rh_runtime_publish(&rt, b); /* a, the last snapshot listing it, is freed */
	ck_assert(retired(conn_backend));
	ck_assert_uint_eq(refs(conn_backend), 1);
	/* still a whole object */
	ck_assert_str_eq(conn_backend->name, "127.0.0.1:9002");
	ck_assert_str_eq(conn_backend->spec, "localhost:9002");
	ck_assert_uint_eq(rh_backend_inflight(conn_backend), 1);
	rh_counter_add(&conn_backend->local[1].inflight, -1);
	ck_assert_uint_eq(rh_backend_inflight(conn_backend), 0);
	rh_backend_unref(conn_backend); /* the connection closes: freed */

	/* the same address configured again is a new object */
	a = build(&rt, &fa, b, true);
	ck_assert_ptr_eq(a->backends[0], b->backends[0]);
	ck_assert_uint_eq(a->backends[1]->uid, 3);
	ck_assert(!retired(a->backends[1]));
	rh_runtime_publish(&rt, a);
	rh_runtime_finish(&rt);
}
END_TEST

/* ---- picks that find nothing ---- */

START_TEST(test_pick_nothing)
{
	static const enum rh_lb_algorithm algs[] = {RH_LB_ROUND_ROBIN, RH_LB_WEIGHTED_ROUND_ROBIN};

	for (unsigned k = 0; k < 2; k++) {
		struct fixture f;
		struct rh_runtime rt;
		struct rh_snapshot *s;
		struct rh_lb_tried tried = {0};

		fixture_init(&f, algs[k]);
		ck_assert_int_eq(rh_runtime_init(&rt, 1), 0);

		/* empty set */
		f.cfg.backends = NULL;
		s = build(&rt, &f, NULL, true);
		ck_assert_uint_eq(s->n, 0);
		ck_assert_uint_eq(s->n_up, 0);
		ck_assert_ptr_null(pick(s));
		rh_runtime_publish(&rt, s);
		ck_assert_ptr_null(pick(rh_runtime_snapshot(&rt)));

		/* max_iterations = 0 */
		f.cfg.backends = f.bc;
		add_backend(&f, 9001, 1);
		add_backend(&f, 9002, 2);
		f.cfg.max_iterations = 0;
		s = build(&rt, &f, rh_runtime_snapshot(&rt), true);
		ck_assert_uint_eq(s->settings.max_iterations, 0);
		ck_assert_uint_eq(s->n_up, 2);
		rh_runtime_publish(&rt, s);
		atomic_store(&rt.rr_counter, 0);
		for (unsigned i = 0; i < 5; i++)
			ck_assert_ptr_null(pick(s));

		/* every backend already tried */
		f.cfg.max_iterations = 256;
		s = build(&rt, &f, rh_runtime_snapshot(&rt), true);
		rh_runtime_publish(&rt, s);
		ck_assert_ptr_nonnull(pick(s));
		rh_lb_tried_add(&tried, s->backends[0]);
		rh_lb_tried_add(&tried, s->backends[1]);
		for (unsigned i = 0; i < 5; i++)
			ck_assert_ptr_null(s->lb->pick(s, s->lb_table, RH_LB_NO_KEY, &tried, 256));

		/* all down, all draining */
		s->backends[0]->up = false;
		s->backends[1]->up = false;
		s = rh_snapshot_with_health(&rt, s);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(s->n_up, 0);
		rh_runtime_publish(&rt, s);
		ck_assert_ptr_null(pick(s));
		f.bc[0].weight = 0;
		f.bc[1].weight = 0;
		s = build(&rt, &f, NULL, true);
		ck_assert_uint_eq(s->n_up, 0);
		ck_assert_uint_eq(s->weights[0], 0);
		ck_assert_ptr_null(pick(s));
		rh_runtime_publish(&rt, s);
		rh_runtime_finish(&rt);
	}
}
END_TEST

/* ---- concurrency: QSBR readers against a writer publishing changing backend sets ----
 *
 * Generation g has variant (g - 1) % 8 of the schedule below: config A or B (B drops 9003, adds
 * 9005 and re-weights 9002), or one of them with a backend down (a with_health snapshot of the one
 * just before). So 9003 and 9005 are created and freed again every few generations while the
 * readers use them; 9001, 9002 and 9004 are the same objects throughout. The test holds no extra
 * reference: that each removed object is freed once, after its last reader, is for ASan (use after
 * free, double free) and TSan (a reader's access racing the free) to check. */

#define N_READERS 4
#define CONC_N 4
#ifndef N_GENERATIONS
#define N_GENERATIONS 2000
#endif

struct variant {
	unsigned port[CONC_N];
	unsigned weight[CONC_N];    /* reduced */
	uint8_t healthy[CONC_N];
	size_t n_up;
	bool health;                /* a with_health snapshot of the generation before */
	unsigned bit;               /* in conc.variants_seen */
};

/* A: 2,4,6,2 -> 1,2,3,1; B: 2,4,10,2 -> 1,2,5,1 */
static const struct variant var_a = {
	{9001, 9002, 9003, 9004}, {1, 2, 3, 1}, {1, 1, 1, 1}, 4, false, 1,
};
static const struct variant var_a_down = {
	{9001, 9002, 9003, 9004}, {1, 2, 3, 1}, {1, 1, 0, 1}, 3, true, 2,
};
static const struct variant var_b = {
	{9001, 9005, 9002, 9004}, {1, 2, 5, 1}, {1, 1, 1, 1}, 4, false, 4,
};
static const struct variant var_b_down = {
	{9001, 9005, 9002, 9004}, {1, 2, 5, 1}, {1, 1, 0, 1}, 3, true, 8,
};
static const struct variant *const schedule[8] = {
	&var_a, &var_b, &var_a, &var_b, &var_a, &var_a_down, &var_b, &var_b_down,
};

static const struct variant *
variant_of(uint64_t gen)
{
	return schedule[(gen - 1) % 8];
}

static void
fixture_of(struct fixture *f, const struct variant *v)
{
	fixture_init(f, RH_LB_WEIGHTED_ROUND_ROBIN);
	for (unsigned i = 0; i < CONC_N; i++)
		add_backend(f, v->port[i], v->weight[i] * 2); /* the GCD takes the 2 off again */
}

struct conc {
	struct rh_runtime rt;
	atomic_uint errors;
	atomic_uint started;       /* readers that finished their first iteration */
	atomic_uint variants_seen; /* variant.bit of each variant read */
	atomic_flag error_taken;
	char first_error[256];
};

struct reader_arg {
	struct conc *c;
	unsigned id;
	unsigned long iterations, picks;
	uint64_t last_generation, generations_seen;
	atomic_uint_fast64_t seen; /* last_generation, for the writer's pacing */
	const struct rh_backend *stable[3]; /* 9001, 9002, 9004: the same object in every snapshot */
	uint64_t last_uid[2];               /* 9003, 9005: a new object each time they come back */
};

static void
reader_fail(struct conc *c, const char *msg, uint64_t gen)
{
	if (!atomic_flag_test_and_set(&c->error_taken))
		snprintf(c->first_error, sizeof(c->first_error), "generation %llu: %s",
			 (unsigned long long)gen, msg);
	atomic_fetch_add(&c->errors, 1);
}

/* The checks on one snapshot, everything read through it (a freed one shows under ASan/TSan). */
static void
reader_check(struct reader_arg *r, const struct rh_snapshot *s)
{
	struct conc *c = r->c;
	uint64_t gen = s->generation;
	const struct variant *v;
	struct rh_backend *b;
	char name[RH_ADDR_TEXT_LEN];

	if (gen < r->last_generation)
		reader_fail(c, "generation went backwards", gen);
	if (gen > r->last_generation)
		r->generations_seen++;
	r->last_generation = gen;
	if (gen == 0 || gen > N_GENERATIONS) {
		reader_fail(c, "generation out of range", gen);
		return;
	}
	v = variant_of(gen);
	atomic_fetch_or_explicit(&c->variants_seen, v->bit, memory_order_relaxed);
	if (s->n != CONC_N || s->n_up != v->n_up || s->rt != &c->rt ||
	    s->lb != &rh_lb_weighted_round_robin || s->settings.max_iterations != 256) {
		reader_fail(c, "snapshot does not match its generation's config", gen);
		return;
	}
	for (unsigned i = 0; i < CONC_N; i++) {
		const struct rh_backend *o = s->backends[i];

		snprintf(name, sizeof(name), "127.0.0.1:%u", v->port[i]);
		if (strcmp(o->name, name) != 0)
			reader_fail(c, "backends[] does not match the generation's config", gen);
		if (s->weights[i] != v->weight[i])
			reader_fail(c, "weights[] do not match the generation's config", gen);
		if (s->healthy[i] != v->healthy[i])
			reader_fail(c, "healthy[] does not match the generation", gen);
		switch (v->port[i]) {
		case 9001:
		case 9002:
		case 9004: {
			unsigned k = v->port[i] == 9001 ? 0 : v->port[i] == 9002 ? 1 : 2;

			if (r->stable[k] == NULL)
				r->stable[k] = o;
			else if (r->stable[k] != o)
				reader_fail(c, "a kept backend is not the same object", gen);
			break;
		}
		default: {
			unsigned k = v->port[i] == 9003 ? 0 : 1;

			if (o->uid < r->last_uid[k])
				reader_fail(c, "a re-added backend has an older uid", gen);
			r->last_uid[k] = o->uid;
			break;
		}
		}
	}

	b = pick(s);
	if (b == NULL) {
		reader_fail(c, "no pick from a snapshot with selectable backends", gen);
		return;
	}
	r->picks++;
	size_t i = 0;
	while (i < s->n && s->backends[i] != b)
		i++;
	if (i == s->n)
		reader_fail(c, "picked a backend that is not in the snapshot", gen);
	else if (!s->healthy[i] || s->weights[i] == 0)
		reader_fail(c, "picked a backend that is not selectable", gen);
	if (strncmp(b->name, "127.0.0.1:900", 13) != 0)
		reader_fail(c, "picked backend's name is garbage", gen);
	/* an exchange on it, in this reader's own worker slot */
	rh_counter_add(&b->local[r->id].inflight, 1);
	if (atomic_load_explicit(&b->local[r->id].inflight, memory_order_relaxed) != 1)
		reader_fail(c, "in-flight count of the reader's own slot is not 1", gen);
	rh_counter_add(&b->local[r->id].inflight, -1);

	/* the snapshot is still whole right before the quiescent point */
	if (s->generation != gen)
		reader_fail(c, "snapshot changed under the reader", gen);
}

static void *
reader_main(void *arg)
{
	struct reader_arg *r = arg;
	struct conc *c = r->c;

	rh_rcu_reader_register();
	/* run until the last generation was seen, so every reader overlaps every publication */
	while (r->last_generation < N_GENERATIONS && atomic_load(&c->errors) == 0) {
		reader_check(r, rh_runtime_snapshot(&c->rt));
		atomic_store_explicit(&r->seen, r->last_generation, memory_order_relaxed);
		if (r->iterations++ == 0)
			atomic_fetch_add(&c->started, 1);
		if (r->iterations % 64 == 0) {
			rh_rcu_reader_offline();
			sched_yield();
			rh_rcu_reader_online();
		} else {
			rh_rcu_reader_quiescent();
		}
	}
	if (r->iterations == 0)
		atomic_fetch_add(&c->started, 1);
	rh_rcu_reader_offline();
	rh_rcu_reader_unregister();
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	struct conc *c = calloc(1, sizeof(*c));
	struct reader_arg ra[N_READERS];
	pthread_t th[N_READERS];
	struct fixture fa, fb;
	struct rh_snapshot *cur;
	char err[RH_CONFIG_ERR_LEN] = "";

	ck_assert_ptr_nonnull(c);
	atomic_init(&c->errors, 0);
	atomic_init(&c->started, 0);
	atomic_init(&c->variants_seen, 0);
	atomic_flag_clear(&c->error_taken);
	ck_assert_int_eq(rh_runtime_init(&c->rt, N_READERS), 0);
	fixture_of(&fa, &var_a);
	fixture_of(&fb, &var_b);

	cur = build(&c->rt, &fa, NULL, true);
	ck_assert_uint_eq(cur->generation, 1);
	rh_runtime_publish(&c->rt, cur);

	for (unsigned i = 0; i < N_READERS; i++) {
		memset(&ra[i], 0, sizeof(ra[i]));
		atomic_init(&ra[i].seen, 0);
		ra[i].c = c;
		ra[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
	}
	/* every reader is running before the second publication */
	while (atomic_load(&c->started) < N_READERS)
		sched_yield();

	/* Most publications wait until every reader has read the new snapshot, so readers are in the
	 * middle of reading it when the next publication retires it (with 4 readers on 2 CPUs the
	 * writer would otherwise run far ahead of them). Generations 8k + 3 and 8k + 4 (A then B,
	 * both also at other slots) are published back to back, without waiting. */

	for (uint64_t gen = 2; gen <= N_GENERATIONS; gen++) {
		const struct variant *v = variant_of(gen);
		struct rh_snapshot *s;

		if (v->health) {
			/* the control thread's view of one backend changes; the snapshot records it */
			struct rh_backend *victim = cur->backends[2];

			victim->up = false;
			s = rh_snapshot_with_health(&c->rt, cur);
			victim->up = true;
		} else {
			s = rh_snapshot_from_config(&c->rt, v == &var_a ? &fa.cfg : &fb.cfg, cur, true,
						    err, sizeof(err));
		}
		ck_assert_msg(s != NULL, "generation %llu: %s", (unsigned long long)gen, err);
		ck_assert_uint_eq(s->generation, gen);
		rh_runtime_publish(&c->rt, s); /* frees cur after the grace period */
		cur = s;
		for (unsigned i = 0; gen % 8 != 3 && gen % 8 != 4 && i < N_READERS; i++)
			while (atomic_load_explicit(&ra[i].seen, memory_order_relaxed) < gen &&
			       atomic_load(&c->errors) == 0)
				sched_yield();
	}
	for (unsigned i = 0; i < N_READERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);

	ck_assert_msg(atomic_load(&c->errors) == 0, "%u reader errors, first: %s",
		      atomic_load(&c->errors), c->first_error);
	ck_assert_uint_eq(c->rt.generation, N_GENERATIONS);
	ck_assert_uint_eq(atomic_load(&c->variants_seen), 0xf); /* all four variants */
	for (unsigned i = 0; i < N_READERS; i++) {
		ck_assert_uint_eq(ra[i].last_generation, N_GENERATIONS);
		ck_assert_msg(ra[i].generations_seen >= N_GENERATIONS / 2,
			      "reader %u saw %llu generations", i,
			      (unsigned long long)ra[i].generations_seen);
		ck_assert_uint_eq(ra[i].picks, ra[i].iterations);
	}
	/* every exchange was ended in the slot that began it */
	for (unsigned i = 0; i < cur->n; i++) {
		ck_assert_uint_eq(rh_backend_inflight(cur->backends[i]), 0);
		ck_assert(!retired(cur->backends[i]));
		ck_assert_uint_eq(refs(cur->backends[i]), 1);
	}
	rh_runtime_finish(&c->rt);
	free(c);
}
END_TEST

static Suite *
runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("snapshot");
	TCase *tc_rcu = tcase_create("rcu");

	tcase_add_test(tc, test_from_config);
	tcase_add_test(tc, test_duplicate_entries);
	tcase_add_test(tc, test_stable_objects);
	tcase_add_test(tc, test_with_health);
	tcase_add_test(tc, test_table_sharing);
	tcase_add_test(tc, test_connection_reference);
	tcase_add_test(tc, test_pick_nothing);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tc_rcu, 120);
	tcase_add_test(tc_rcu, test_concurrent_readers);
	suite_add_tcase(s, tc_rcu);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(runtime_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
