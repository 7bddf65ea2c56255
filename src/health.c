/* The control thread: one epoll loop, the only writer of the runtime snapshot after #1.
 *
 * - Active checks: every health_frequency_ms (varied by +-jitter/2 percent, so many proxies' probes do
 *   not land together) every backend is probed at once (probe.c: TCP connect, TLS handshake, HTTP
 *   status), each bounded by health_timeout_ms.
 * - Passive checks: workers count failures on the backend while proxying and wake this thread
 *   (rh_runtime_report_failure); each failure counts like a failed probe, and reaching `fall` takes
 *   the backend out at once, through a new snapshot. Only probes bring it back.
 * - DNS: with [upstream] resolve, resolver.c's thread re-resolves the names and hands its rounds
 *   over; when a name's addresses change, a new snapshot keeps the backends whose address stays
 *   (their health, counters, idle connections and TLS sessions), adds the new ones as unknown and
 *   retires the others (they drain).
 *
 * One state machine per backend (rh_backend_state): unknown until a check confirms or refutes the
 * initial state, then up or down by HAProxy's rise/fall counter, draining while its weight is 0.
 * Each transition is counted on the backend and logged once with its reason:
 *   "backend 10.0.0.7:8080 down: HTTP 503 from /healthz (3 of 3)"
 * A new snapshot is published only when some backend's routing changes.
 *
 * The thread is the RCU writer and is never registered as a QSBR reader:
 * urcu_qsbr_synchronize_rcu() from a registered online thread would wait for itself. It reads the
 * live snapshot without a read-side section, as only it replaces snapshots. */
#include "roundhouse/health.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/lb.h"
#include "roundhouse/log.h"
#include "roundhouse/probe.h"
#include "roundhouse/resolver.h"
#include "roundhouse/runtime.h"
#include "roundhouse/timer.h"
#include "roundhouse/tls.h"
#include "roundhouse/transport.h"

#define MAX_EVENTS 64
#define DAY_S 86400
#define DAY_MS (DAY_S * UINT64_C(1000))

/* What the thread keeps for one backend of the live snapshot (same index). */
struct slot {
	struct rh_probe probe; /* first: its endpoint is what epoll reports */
	struct rh_health *h;
	struct rh_backend *b;
	bool in_flight;
	bool discard; /* passive failures took it out during this round: its probe result is stale */
	struct rh_health_check last; /* the last completed check, for GET /status */

	/* warnings already given for this backend's certificate */
	bool expiry_warned;
	time_t expiry_not_after;   /* of the certificate warned about */
	uint64_t expiry_warned_ms; /* when (rh_clock_ms) */
	bool unverified_warned;
	time_t unverified_not_after;
};

struct rh_health {
	struct rh_runtime *rt; /* its one writer: every snapshot after the first is published here */
	const struct rh_config *cfg; /* the one in force: the main thread's, or a reload's (<owned>) */
	struct rh_config *owned;     /* a reloaded config this thread owns (freed when replaced) */
	const struct rh_tls_upstream *tls; /* NULL: plain TCP probes */
	struct rh_probe_conf probe_conf;
	unsigned rise, fall;
	bool probing;  /* type != none */
	bool passive;  /* failures while proxying count (needs probing: only probes bring a backend back) */
	int epfd;
	struct rh_ep stop_ep;   /* eventfd: rh_health_stop writes it */
	struct rh_ep report_ep; /* eventfd: workers' passive reports (rt->report_fd) */
	struct rh_ep dns_ep;    /* the resolver's eventfd */
	struct rh_ep reload_ep; /* eventfd: rh_health_reload / rh_health_reload_failed wrote the mailbox */
	const struct rh_control_service *service; /* the admin listener, or NULL */
	pthread_t thread;
	bool running; /* a thread was started and not yet joined; main thread only */

	/* health thread only, while it runs */
	struct slot *slots;    /* [n], parallel to the live snapshot's backends */
	size_t n;
	bool stop;
	bool dirty;       /* the backends' health differs from the live snapshot (a publication failed) */
	size_t pending;   /* probes in flight this round */
	bool in_round;

	/* DNS: the address list the live snapshot was built from, and per name whether its failure
	 * was logged */
	struct rh_resolver *resolver;
	struct rh_backend_conf *confs;
	size_t n_confs;
	bool *dns_failing; /* [cfg->n_names] */
	struct rh_resolver_round *dns_waiting; /* came in during a round: applied after it */

	atomic_uint_fast64_t publications;

	/* Reloads. The mailbox (under reload_lock) takes a checked config, or the error of one that
	 * failed, from the main thread; the control thread applies it when no round is in flight. */
	pthread_mutex_t reload_lock;
	struct rh_config *reload_cfg;          /* mailbox: the newest good config */
	char reload_error[RH_HEALTH_RELOAD_ERR_LEN]; /* mailbox: "" or the newest failure */
	struct rh_config *reload_waiting;      /* taken from the mailbox during a round */
	struct rh_health_reload_status reload; /* this thread's; readers use rh_health_reload_status */
	atomic_uint_fast64_t reload_seq;       /* +1 per reload result (status copy under reload_lock) */

	/* What the last completed handshake with each backend showed; certs[i].checked_at == 0: none.
	 * Written by the health thread, read by rh_health_cert from any thread, both under cert_lock. */
	pthread_mutex_t cert_lock;
	struct rh_health_cert *certs; /* [n] */
};


/* The live snapshot (read by its writer, which needs no read-side section). */
static const struct rh_snapshot *
live(const struct rh_health *h)
{
	return h->rt->live;
}

static void
on_stop(struct rh_ep *ep, uint32_t events)
{
	struct rh_health *h = (struct rh_health *)((char *)ep - offsetof(struct rh_health, stop_ep));

	(void)events;
	h->stop = true;
}

static void passive_intake(struct rh_health *h);
static int install_backends(struct rh_health *h, const struct rh_config *cfg,
			    struct rh_backend_conf *confs, size_t n, const char *gone);
static void dns_arrived(struct rh_health *h);
static void probe_done(struct slot *s);

static void
on_report(struct rh_ep *ep, uint32_t events)
{
	struct rh_health *h = (struct rh_health *)((char *)ep - offsetof(struct rh_health, report_ep));
	uint64_t v;

	(void)events;
	if (read(ep->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rh_log_warn("control: report eventfd: %s", strerror(errno));
	passive_intake(h);
}

static void
on_dns(struct rh_ep *ep, uint32_t events)
{
	struct rh_health *h = (struct rh_health *)((char *)ep - offsetof(struct rh_health, dns_ep));

	(void)events;
	dns_arrived(h);
}

static void
on_probe(struct rh_ep *ep, uint32_t events)
{
	struct slot *s = (struct slot *)ep; /* the probe's endpoint is the slot's first member */

	if (s->in_flight && !rh_probe_event(&s->probe, events))
		probe_done(s);
}

/* An eventfd endpoint registered for reading with <handler>. */
static int
watch_eventfd(struct rh_health *h, struct rh_ep *ep, int fd, rh_ep_handler *handler)
{
	*ep = (struct rh_ep){.fd = fd, .tp = &rh_transport_tcp, .handler = handler};
	return fd == -1 ? -1 : rh_ep_watch(h->epfd, ep, EPOLLIN);
}

/* ---- the state machine ---- */

/* <b> enters state <st>: counted, and timed for GET /status. */
static void
enter_state(struct rh_backend *b, enum rh_backend_state st)
{
	atomic_store_explicit(&b->state_since, (int64_t)time(NULL), memory_order_relaxed);
	atomic_store_explicit(&b->state, st, memory_order_relaxed);
	atomic_fetch_add_explicit(&b->transitions[st], 1, memory_order_relaxed);
}

/* The backend's state from its counter, its weight in the live snapshot and what was seen. */
static enum rh_backend_state
state_of(const struct rh_health *h, const struct rh_backend *b, unsigned weight)
{
	if (weight == 0)
		return RH_BACKEND_DRAINING;
	if (b->health_counter >= h->rise)
		return b->seen_ok ? RH_BACKEND_UP : RH_BACKEND_UNKNOWN;
	return b->seen_fail ? RH_BACKEND_DOWN : RH_BACKEND_UNKNOWN;
}

/* Sets backend <i>'s routing and state from its counter; logs and counts a state change with <why>
 * (for down). Returns whether its routing changed (a new snapshot is due). */
static bool
settle(struct rh_health *h, size_t i, const char *why)
{
	const struct rh_snapshot *s = live(h);
	struct rh_backend *b = s->backends[i];
	bool up = b->health_counter >= h->rise;
	bool changed = up != b->up;
	enum rh_backend_state st = state_of(h, b, s->weights[i]);
	enum rh_backend_state was = atomic_load_explicit(&b->state, memory_order_relaxed);

	b->up = up;
	if (st == was)
		return changed;
	enter_state(b, st);
	switch (st) {
	case RH_BACKEND_UP:
		if (changed) /* a first check confirming the initial state is not news */
			rh_log_info("backend %s up", b->name);
		break;
	case RH_BACKEND_DOWN:
		if (!changed && was == RH_BACKEND_UNKNOWN) /* initial = down: it was never routed to */
			rh_log_warn("backend %s down: %s (initial = down)", b->name,
				    why ? why : "check failed");
		else
			rh_log_warn("backend %s down: %s (%u of %u)", b->name, why ? why : "check failed",
				    b->fail_streak < h->fall ? b->fail_streak : h->fall, h->fall);
		break;
	case RH_BACKEND_DRAINING:
		rh_log_info("backend %s draining (weight 0)", b->name);
		break;
	default:
		break;
	}
	return changed;
}

/* Feeds one check result into backend <b>'s counter as HAProxy does (check.c,
 * set_server_check_status): a failure decrements, and a counter falling below <rise> drops to 0
 * (down, success streak lost); a success increments, and reaching <rise> jumps to rise + fall - 1
 * (up, failure streak forgotten). So a down backend comes up after <rise> consecutive successes and
 * an up one goes down after <fall> consecutive failures. */
static void
count_result(const struct rh_health *h, struct rh_backend *b, bool ok)
{
	unsigned top = h->rise + h->fall - 1;

	if (ok) {
		b->seen_ok = true;
		b->fail_streak = 0;
		if (b->health_counter < top) {
			b->health_counter++;
			if (b->health_counter >= h->rise)
				b->health_counter = top;
		}
	} else {
		b->seen_fail = true;
		b->fail_streak++;
		if (b->health_counter > 0) {
			b->health_counter--;
			if (b->health_counter < h->rise)
				b->health_counter = 0;
		}
	}
}

/* A backend this thread has not seen before: an up one starts with a full counter (so it takes
 * `fall` failures to go down), a down one (initial = down) with an empty one; unknown either way
 * until a check says. With type = none nothing will ever check: it is up from the start. */
static bool
adopt(struct rh_health *h, size_t i)
{
	struct rh_backend *b = live(h)->backends[i];

	if (b->adopted)
		return false;
	b->adopted = true;
	b->health_counter = h->cfg->initial_down && h->probing ? 0 : h->rise + h->fall - 1;
	for (unsigned w = 0; w < b->n_local; w++)
		b->local[w].failures_seen =
			(uint32_t)atomic_load_explicit(&b->local[w].failures, memory_order_acquire);
	if (!h->probing && live(h)->weights[i] > 0) {
		/* nothing will ever check it: up from the start, without a log line per backend */
		b->seen_ok = true;
		enter_state(b, RH_BACKEND_UP);
	}
	return settle(h, i, NULL);
}

/* Publishes the live snapshot again with the backends' current routing. */
static void
publish_health(struct rh_health *h)
{
	struct rh_snapshot *s = rh_snapshot_with_health(h->rt, h->rt->live);

	if (!s) {
		rh_log_error("control: cannot build a new snapshot: out of memory; retrying next round");
		h->dirty = true;
		return;
	}
	/* counted before the snapshot becomes visible (publication is a release), so whoever sees
	 * the new snapshot also sees the count */
	atomic_fetch_add_explicit(&h->publications, 1, memory_order_relaxed);
	rh_runtime_publish(h->rt, s);
	h->dirty = false;
}

/* ---- passive reports ---- */

static void
passive_intake(struct rh_health *h)
{
	const struct rh_snapshot *s = live(h);
	bool changed = false;
	size_t routable = 0;

	/* cleared before the counts are read (the fence orders the clear before the loads, against
	 * the workers' count-then-exchange): a failure counted after this wakes the thread again */
	atomic_store_explicit(&h->rt->report_pending, false, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	for (size_t i = 0; i < s->n; i++)
		routable += s->backends[i]->up && s->weights[i] > 0;
	for (size_t i = 0; i < s->n; i++) {
		struct rh_backend *b = s->backends[i];
		uint32_t delta = 0;
		uint_fast32_t last = 0;

		for (unsigned w = 0; w < b->n_local; w++) {
			struct rh_backend_local *l = &b->local[w];
			uint32_t n = (uint32_t)atomic_load_explicit(&l->failures, memory_order_acquire);

			if (n == l->failures_seen)
				continue;
			delta += n - l->failures_seen; /* wraps correctly */
			l->failures_seen = n;
			last = atomic_load_explicit(&l->last_failure, memory_order_relaxed);
		}
		if (delta == 0 || !h->passive || !b->up)
			continue; /* nothing new, or already out of rotation: only probes matter now */
		if (routable <= 1 && s->weights[i] > 0) {
			/* the last backend in rotation stays: taking it out would turn failures into an
			 * outage (nginx ignores max_fails for a single server); probes still decide */
			continue;
		}
		char why[160];
		enum rh_backend_failure kind = (enum rh_backend_failure)(last >> 16);
		int err = (int)(last & 0xffff);
		bool say_err = err && kind != RH_FAIL_TIMEOUT;
		snprintf(why, sizeof(why), "%u failure%s while proxying (last: %s%s%s)", delta,
			 delta == 1 ? "" : "s", rh_backend_failure_name(kind), say_err ? ": " : "",
			 say_err ? strerror(err) : "");
		for (uint32_t k = 0; k < delta && k <= h->fall; k++)
			count_result(h, b, false);
		if (settle(h, i, why)) {
			changed = true;
			routable--;
			/* a probe of this round that started before these failures must not bring it
			 * straight back */
			if (h->in_round && i < h->n && h->slots[i].b == b)
				h->slots[i].discard = true;
		}
	}
	if (changed || h->dirty)
		publish_health(h);
}

/* ---- certificates ---- */

bool
rh_health_cert_warning(time_t now, time_t not_after, unsigned warn_days, char *buf, size_t len)
{
	int64_t left = (int64_t)not_after - (int64_t)now;
	char when[64];
	struct tm tm;

	if (warn_days == 0 || not_after == 0 || left >= (int64_t)warn_days * DAY_S)
		return false;
	if (gmtime_r(&not_after, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(when, sizeof(when), "@%lld", (long long)not_after);
	if (left <= 0)
		snprintf(buf, len, "certificate expired on %s", when);
	else if (left >= DAY_S)
		snprintf(buf, len, "certificate expires in %lld day%s (%s)", (long long)(left / DAY_S),
			 left / DAY_S == 1 ? "" : "s", when);
	else if (left >= 3600)
		snprintf(buf, len, "certificate expires in %lld hour%s (%s)", (long long)(left / 3600),
			 left / 3600 == 1 ? "" : "s", when);
	else
		snprintf(buf, len, "certificate expires in less than an hour (%s)", when);
	return true;
}


/* Slot <s>'s handshake completed with <peer>: records it for rh_health_cert and gives the
 * certificate warnings that are due. */
static void
cert_record(struct rh_health *h, size_t i, const struct rh_tls_peer *peer)
{
	struct slot *p = &h->slots[i];
	const char *name = p->b->name;
	time_t now = time(NULL);
	char msg[160];

	pthread_mutex_lock(&h->cert_lock);
	h->certs[i].verified = peer->verified;
	snprintf(h->certs[i].verify_error, sizeof(h->certs[i].verify_error), "%s",
		 peer->verified ? "" : peer->verify_error);
	h->certs[i].not_after = peer->not_after;
	h->certs[i].checked_at = now > 0 ? now : 1; /* 0 means "none" */
	pthread_mutex_unlock(&h->cert_lock);

	/* Once per certificate, and again a day later if it is still the one served. */
	if (rh_health_cert_warning(now, peer->not_after, h->cfg->cert_warn_days, msg, sizeof(msg))) {
		uint64_t t = rh_clock_ms();

		if (!p->expiry_warned || p->expiry_not_after != peer->not_after ||
		    t - p->expiry_warned_ms >= DAY_MS) {
			rh_log_warn("backend %s %s", name, msg);
			p->expiry_warned = true;
			p->expiry_not_after = peer->not_after;
			p->expiry_warned_ms = t;
		}
	} else {
		p->expiry_warned = false;
	}

	/* With verify = true a certificate that does not verify fails the handshake instead. */
	if (!peer->verified && !h->cfg->verify) {
		if (!p->unverified_warned || p->unverified_not_after != peer->not_after) {
			const char *why = peer->verify_error[0] ? peer->verify_error : "unknown reason";

			rh_log_warn("backend %s certificate does not verify: %s "
				    "(verify = false, so it is still used)", name, why);
			p->unverified_warned = true;
			p->unverified_not_after = peer->not_after;
		}
	} else {
		p->unverified_warned = false;
	}
}

/* ---- rounds of probes ---- */

static void
probe_done(struct slot *s)
{
	struct rh_health *h = s->h;

	s->in_flight = false;
	h->pending--;
	if (s->probe.have_peer)
		cert_record(h, (size_t)(s - h->slots), &s->probe.peer);
}

static void
round_start(struct rh_health *h)
{
	h->pending = 0;
	h->in_round = true;
	for (size_t i = 0; i < h->n; i++) {
		struct slot *s = &h->slots[i];

		s->in_flight = true;
		h->pending++;
		if (!rh_probe_start(&s->probe, &h->probe_conf, s->b, h->epfd, on_probe))
			probe_done(s);
	}
}

/* Every probe of the round has a result: feed them to the state machine and publish a new
 * snapshot if some backend's routing changed (or a previous publication failed). */
static void
round_finish(struct rh_health *h)
{
	bool changed = h->dirty;

	h->in_round = false;
	time_t now = time(NULL);
	for (size_t i = 0; i < h->n; i++) {
		struct slot *s = &h->slots[i];

		s->last.done = true;
		s->last.ok = s->probe.ok;
		s->last.at = now;
		snprintf(s->last.why, sizeof(s->last.why), "%s", s->probe.ok ? "" : s->probe.why);
		if (s->discard) {
			s->discard = false;
			continue;
		}
		count_result(h, s->b, s->probe.ok);
		changed |= settle(h, i, s->probe.why);
	}
	if (changed)
		publish_health(h);
}

/* Room for the slots of a snapshot of <n> backends, taken before that snapshot is published (so
 * running out of memory leaves everything as it was). 0 or -1. */
static int
slots_alloc(size_t n, struct slot **slots, struct rh_health_cert **certs)
{
	*slots = calloc(n ? n : 1, sizeof(**slots));
	*certs = calloc(n ? n : 1, sizeof(**certs));
	if (*slots && *certs)
		return 0;
	free(*slots);
	free(*certs);
	return -1;
}

/* Makes <slots> and <certs> (from slots_alloc, for the live snapshot's size) the slots of the live
 * snapshot's backends (after a publication that changed the set; never during a round), keeping
 * what a staying backend's slot knew. */
static void
slots_install(struct rh_health *h, struct slot *slots, struct rh_health_cert *certs)
{
	const struct rh_snapshot *s = live(h);
	size_t n = s->n;

	pthread_mutex_lock(&h->cert_lock);
	for (size_t i = 0; i < n; i++) {
		slots[i] = (struct slot){.h = h, .b = s->backends[i]};
		slots[i].probe.ep.fd = -1;
		for (size_t j = 0; j < h->n; j++)
			if (h->slots[j].b == s->backends[i]) {
				slots[i].expiry_warned = h->slots[j].expiry_warned;
				slots[i].expiry_not_after = h->slots[j].expiry_not_after;
				slots[i].expiry_warned_ms = h->slots[j].expiry_warned_ms;
				slots[i].unverified_warned = h->slots[j].unverified_warned;
				slots[i].unverified_not_after = h->slots[j].unverified_not_after;
				slots[i].last = h->slots[j].last;
				certs[i] = h->certs[j];
				break;
			}
	}
	free(h->certs);
	h->certs = certs;
	h->n = n;
	pthread_mutex_unlock(&h->cert_lock);
	free(h->slots);
	h->slots = slots;
}

/* ---- DNS ---- */

/* The entries of h->confs that came from name <name>. */
static size_t
addrs_of(const struct rh_health *h, size_t name, struct rh_sockaddr *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_confs; i++)
		if (h->confs[i].name == name) {
			if (n < max)
				out[n] = h->confs[i].addr;
			n++;
		}
	return n;
}

/* A resolver round: names whose address set changed get a new snapshot (backends that stay keep
 * their state, new ones start unknown, the others are retired and drain); a name that stopped
 * resolving keeps its last addresses and is logged once until it resolves again. */
static void
dns_apply(struct rh_health *h, struct rh_resolver_round *r)
{
	const struct rh_config *cfg = h->cfg;
	bool changed = false;
	size_t total = 0;

	for (size_t i = 0; i < cfg->n_names && i < r->n; i++) {
		const struct rh_backend_name *nm = &cfg->names[i];
		const struct rh_resolver_answer *a = &r->answers[i];
		size_t have = addrs_of(h, i, NULL, 0);
		struct rh_sockaddr *cur = calloc(have ? have : 1, sizeof(*cur));

		if (!cur)
			return;
		addrs_of(h, i, cur, have);
		if (nm->numeric) {
			total += have;
		} else if (!a->ok) {
			if (!h->dns_failing[i])
				rh_log_warn("backend %s: %s; %s", nm->spec, a->why,
					    have ? "keeping its last addresses" : "no addresses yet, still trying");
			h->dns_failing[i] = true;
			total += have;
		} else {
			if (h->dns_failing[i])
				rh_log_info("backend %s resolves again", nm->spec);
			h->dns_failing[i] = false;
			if (!rh_resolver_same_addrs(cur, have, a->addrs, a->n_addrs)) {
				changed = true;
				rh_log_info("backend %s: %zu address%s now (was %zu)", nm->spec, a->n_addrs,
					    a->n_addrs == 1 ? "" : "es", have);
			}
			total += a->n_addrs;
		}
		free(cur);
	}
	if (!changed)
		return;

	struct rh_backend_conf *confs = calloc(total ? total : 1, sizeof(*confs));
	size_t n = 0;
	if (!confs) {
		rh_log_error("control: out of memory applying DNS changes; retrying next time");
		return;
	}
	for (size_t i = 0; i < cfg->n_names; i++) {
		const struct rh_backend_name *nm = &cfg->names[i];
		const struct rh_resolver_answer *a = i < r->n ? &r->answers[i] : NULL;

		if (nm->numeric || !a || !a->ok) {
			for (size_t j = 0; j < h->n_confs; j++)
				if (h->confs[j].name == i)
					confs[n++] = h->confs[j];
			continue;
		}
		for (size_t j = 0; j < a->n_addrs; j++) {
			struct rh_backend_conf *bc = &confs[n++];

			*bc = (struct rh_backend_conf){
				.addr = a->addrs[j],
				.weight = nm->weight,
				.max_conns = nm->max_conns,
				.line = nm->line,
				.name = i,
			};
			memcpy(bc->spec, nm->spec, sizeof(bc->spec));
		}
	}

	if (install_backends(h, cfg, confs, n, "no longer in DNS") == -1) {
		rh_log_error("control: DNS changes retried next time");
		free(confs);
	}
}

/* Publishes a snapshot of <cfg> with the backends <confs>[0..<n>) (taken over on success): those of
 * the live one with the same address and name stay the same objects, new ones start as `initial`
 * says, the others are retired and drain (logged with <gone>). Then every backend's state is
 * settled again (a new weight may drain one or bring it back). 0, or -1 (out of memory; nothing
 * changed, <confs> still the caller's). Not during a round. */
static int
install_backends(struct rh_health *h, const struct rh_config *cfg, struct rh_backend_conf *confs,
		 size_t n, const char *gone)
{
	char err[128];
	const struct rh_snapshot *old = live(h);
	struct rh_snapshot *s = rh_snapshot_from_backends(h->rt, cfg, confs, n, old,
							  !(cfg->initial_down && h->probing), err,
							  sizeof(err));
	struct slot *slots;
	struct rh_health_cert *certs;
	if (!s || slots_alloc(s->n, &slots, &certs) == -1) {
		rh_log_error("control: %s", s ? "out of memory for the new backends' probes" : err);
		rh_snapshot_free(s);
		return -1;
	}
	/* backends that leave drain: their state says so until the last reference goes */
	uint64_t listed = ++h->rt->mark_seq;
	for (size_t i = 0; i < s->n; i++)
		s->backends[i]->mark = listed;
	for (size_t i = 0; i < old->n; i++) {
		struct rh_backend *b = old->backends[i];
		if (b->mark == listed)
			continue;
		rh_log_info("backend %s (%s) removed: %s, in-flight requests finish", b->name, b->spec,
			    gone);
		enter_state(b, RH_BACKEND_DRAINING);
	}
	atomic_fetch_add_explicit(&h->publications, 1, memory_order_relaxed);
	rh_runtime_publish(h->rt, s);
	free(h->confs);
	h->confs = confs;
	h->n_confs = n;
	slots_install(h, slots, certs);
	bool routing = false;
	for (size_t i = 0; i < h->n; i++)
		routing |= h->slots[i].b->adopted ? settle(h, i, NULL) : adopt(h, i);
	if (routing)
		publish_health(h); /* initial = down: the new ones are out until a probe passes */
	return 0;
}

static void
dns_arrived(struct rh_health *h)
{
	struct rh_resolver_round *r;

	if (!h->resolver) /* a reload stopped it; its last event was already fetched */
		return;
	if (!(r = rh_resolver_take(h->resolver)))
		return;
	if (h->in_round) {
		/* the slots must not change under probes in flight: the newest round waits */
		rh_resolver_round_free(h->dns_waiting);
		h->dns_waiting = r;
		return;
	}
	dns_apply(h, r);
	rh_resolver_round_free(r);
}

/* ---- reloads ---- */

/* The [health_check] settings of <cfg> (the TLS context stays the one the process started with). */
static void
health_settings(struct rh_health *h, const struct rh_config *cfg)
{
	unsigned old_rise = h->rise, old_fall = h->fall;

	h->rise = cfg->rise > 0 ? cfg->rise : 1;
	h->fall = cfg->fall > 0 ? cfg->fall : 1;
	h->probing = cfg->health_type != RH_HEALTH_NONE;
	h->passive = cfg->passive && h->probing;
	h->probe_conf.type = cfg->health_type;
	h->probe_conf.path = cfg->health_path ? cfg->health_path : "/";
	h->probe_conf.host = cfg->health_host;
	h->probe_conf.expect_lo = cfg->expect_lo;
	h->probe_conf.expect_hi = cfg->expect_hi;
	/* new rise/fall: a backend keeps its side (up: a full counter, else empty); with type = none
	 * nothing will probe again, so every backend is up, as adopt() makes new ones */
	const struct rh_snapshot *s = live(h);
	for (size_t i = 0; s && i < s->n; i++) {
		struct rh_backend *b = s->backends[i];
		if (!b->adopted)
			continue;
		if (!h->probing) {
			b->health_counter = h->rise + h->fall - 1;
			b->seen_ok = true;
		} else if (old_rise != h->rise || old_fall != h->fall) {
			b->health_counter = b->health_counter >= old_rise ? h->rise + h->fall - 1 : 0;
		}
	}
}

/* Whether <a> and <b> resolve the same names the same way (the resolver can stay). */
static bool
same_resolving(const struct rh_config *a, const struct rh_config *b)
{
	if (a->resolve_ms != b->resolve_ms || a->n_names != b->n_names ||
	    strcmp(a->resolver.text, b->resolver.text) != 0)
		return false;
	for (size_t i = 0; i < a->n_names; i++)
		if (strcmp(a->names[i].host, b->names[i].host) != 0 || a->names[i].port != b->names[i].port)
			return false;
	return true;
}

/* The resolver for <cfg>'s names (a new one: names, interval or nameserver may have changed), or
 * none when it has no `resolve`. The old one is stopped first; 0 or -1 (the old one is gone then
 * too, logged: the backends keep their addresses). */
static int
resolver_for(struct rh_health *h, const struct rh_config *cfg)
{
	char err[256];

	if (h->resolver) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, rh_resolver_fd(h->resolver), NULL);
		rh_resolver_destroy(h->resolver);
		h->resolver = NULL;
	}
	rh_resolver_round_free(h->dns_waiting);
	h->dns_waiting = NULL;
	if (cfg->resolve_ms == 0)
		return 0;
	struct rh_resolver_name *names = calloc(cfg->n_names ? cfg->n_names : 1, sizeof(*names));
	if (!names) {
		rh_log_error("control: out of memory for the resolver; names are no longer re-resolved");
		return -1;
	}
	for (size_t i = 0; i < cfg->n_names; i++) {
		snprintf(names[i].host, sizeof(names[i].host), "%s", cfg->names[i].host);
		names[i].port = cfg->names[i].port;
	}
	h->resolver = rh_resolver_create(names, cfg->n_names, cfg->resolve_ms,
					 cfg->resolver.len ? &cfg->resolver : NULL, err, sizeof(err));
	free(names);
	if (h->resolver && rh_resolver_start(h->resolver) == 0 &&
	    watch_eventfd(h, &h->dns_ep, rh_resolver_fd(h->resolver), on_dns) == 0) {
		h->dns_ep.fd = -1; /* the resolver's own */
		return 0;
	}
	rh_log_error("control: resolver: %s; names are no longer re-resolved",
		     h->resolver ? strerror(errno) : err);
	h->dns_ep.fd = -1;
	rh_resolver_destroy(h->resolver);
	h->resolver = NULL;
	return -1;
}

/* Records the end of a reload attempt for the status, the metrics and POST /reload. */
static void
reload_record(struct rh_health *h, bool ok, const char *error)
{
	pthread_mutex_lock(&h->reload_lock);
	h->reload.last_ok = ok;
	h->reload.last_at = time(NULL);
	if (ok) {
		h->reload.ok++;
		h->reload.generation++;
		h->reload.last_ok_at = h->reload.last_at;
	} else {
		h->reload.failed++;
		snprintf(h->reload.last_error, sizeof(h->reload.last_error), "%s", error);
	}
	pthread_mutex_unlock(&h->reload_lock);
	atomic_fetch_add_explicit(&h->reload_seq, 1, memory_order_release);
}

/* Puts <cfg> in force (between rounds): health settings, resolver, then one snapshot with the new
 * settings, algorithm and backends. The config it replaces is freed unless it is the main thread's. */
static void
reload_apply(struct rh_health *h, struct rh_config *cfg)
{
	struct rh_backend_conf *confs = calloc(cfg->n_backends ? cfg->n_backends : 1, sizeof(*confs));
	bool *failing = calloc(cfg->n_names ? cfg->n_names : 1, sizeof(*failing));

	if (!confs || !failing) {
		free(confs);
		free(failing);
		rh_log_error("reload: out of memory; keeping the running configuration");
		reload_record(h, false, "out of memory");
		rh_config_finish(cfg);
		free(cfg);
		return;
	}
	if (cfg->n_backends)
		memcpy(confs, cfg->backends, cfg->n_backends * sizeof(*confs));
	/* in force before the backends are installed: adopt() reads `initial` from h->cfg */
	const struct rh_config *prev = h->cfg;
	bool keep_resolver = same_resolving(prev, cfg);
	h->cfg = cfg;
	health_settings(h, cfg);
	if (install_backends(h, cfg, confs, cfg->n_backends, "no longer in the configuration") == -1) {
		free(confs);
		free(failing);
		h->cfg = prev;
		health_settings(h, prev);
		reload_record(h, false, "out of memory building the new snapshot");
		rh_config_finish(cfg);
		free(cfg);
		return;
	}
	for (size_t i = 0; i < cfg->n_names; i++)
		failing[i] = cfg->names[i].unresolved[0] != '\0';
	free(h->dns_failing);
	h->dns_failing = failing;
	if (h->owned) {
		rh_config_finish(h->owned);
		free(h->owned);
	}
	h->owned = cfg;
	if (!keep_resolver && resolver_for(h, cfg) == 0 && h->resolver)
		for (size_t i = 0; i < cfg->n_names; i++)
			if (cfg->names[i].unresolved[0]) {
				rh_resolver_resolve_now(h->resolver);
				break;
			}
	reload_record(h, true, NULL);
	rh_log_info("reload: configuration %s generation %llu in force: %zu backend%s, %s", cfg->path,
		    (unsigned long long)h->reload.generation, live(h)->n, live(h)->n == 1 ? "" : "s",
		    rh_lb_ops_of(cfg->algorithm)->name);
}

/* The mailbox has something: a failure is recorded at once, a config applied now or, during a
 * round, after it. */
static void
on_reload(struct rh_ep *ep, uint32_t events)
{
	struct rh_health *h = (struct rh_health *)((char *)ep - offsetof(struct rh_health, reload_ep));
	char error[RH_HEALTH_RELOAD_ERR_LEN];
	struct rh_config *cfg;
	uint64_t v;

	(void)events;
	if (read(ep->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rh_log_warn("control: reload eventfd: %s", strerror(errno));
	pthread_mutex_lock(&h->reload_lock);
	cfg = h->reload_cfg;
	h->reload_cfg = NULL;
	memcpy(error, h->reload_error, sizeof(error));
	h->reload_error[0] = '\0';
	pthread_mutex_unlock(&h->reload_lock);
	if (error[0])
		reload_record(h, false, error);
	if (!cfg)
		return;
	if (h->reload_waiting) { /* superseded before it was applied */
		rh_config_finish(h->reload_waiting);
		free(h->reload_waiting);
	}
	h->reload_waiting = cfg;
	if (!h->in_round) {
		h->reload_waiting = NULL;
		reload_apply(h, cfg);
	}
}

static void
mailbox_post(struct rh_health *h)
{
	uint64_t one = 1;

	while (write(h->reload_ep.fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

void
rh_health_wake(struct rh_health *h)
{
	mailbox_post(h);
}

void
rh_health_reload(struct rh_health *h, struct rh_config *cfg)
{
	pthread_mutex_lock(&h->reload_lock);
	if (h->reload_cfg) {
		rh_config_finish(h->reload_cfg);
		free(h->reload_cfg);
	}
	h->reload_cfg = cfg;
	pthread_mutex_unlock(&h->reload_lock);
	mailbox_post(h);
}

void
rh_health_reload_failed(struct rh_health *h, const char *error)
{
	pthread_mutex_lock(&h->reload_lock);
	snprintf(h->reload_error, sizeof(h->reload_error), "%s", error && *error ? error : "failed");
	pthread_mutex_unlock(&h->reload_lock);
	mailbox_post(h);
}

void
rh_health_reload_status(struct rh_health *h, struct rh_health_reload_status *out)
{
	pthread_mutex_lock(&h->reload_lock);
	*out = h->reload;
	pthread_mutex_unlock(&h->reload_lock);
}

uint64_t
rh_health_reload_seq(const struct rh_health *h)
{
	return atomic_load_explicit(&h->reload_seq, memory_order_acquire);
}

const struct rh_config *
rh_health_config(const struct rh_health *h)
{
	return h->cfg;
}

void
rh_health_set_service(struct rh_health *h, const struct rh_control_service *svc)
{
	h->service = svc;
}

bool
rh_health_last_check(const struct rh_health *h, size_t i, struct rh_health_check *out)
{
	if (i >= h->n)
		return false;
	*out = h->slots[i].last;
	return true;
}

/* ---- the thread ---- */

/* The start of the next round after one that started at <start>: the frequency, varied by up to
 * +-jitter/2 percent. */
static uint64_t
next_round_after(const struct rh_health *h, uint64_t start)
{
	uint64_t freq = h->cfg->health_frequency_ms > 0 ? h->cfg->health_frequency_ms : 1;
	uint64_t span = freq * h->cfg->jitter_pct / 100;

	if (span == 0)
		return start + freq;
	return start + freq - span / 2 + rh_lb_rand_below(span + 1);
}

static void *
health_main(void *arg)
{
	struct rh_health *h = arg;
	uint64_t timeout = h->cfg->health_timeout_ms;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t next_round = rh_clock_ms(), deadline = 0;

	rh_log_set_thread_tag("control");
	if (h->service && h->service->attach(h->service->arg, h->epfd) == -1)
		rh_log_error("control: the admin listener cannot be served: %s", strerror(errno));
	for (size_t i = 0; i < h->n; i++)
		h->dirty |= adopt(h, i);
	if (h->dirty)
		publish_health(h);

	while (!h->stop) {
		uint64_t now = rh_clock_ms();
		uint64_t wake = UINT64_MAX;

		if (h->probing && !h->in_round && now >= next_round && h->n > 0) {
			timeout = h->cfg->health_timeout_ms; /* a reload may have changed it */
			round_start(h);
			deadline = now + timeout;
			next_round = next_round_after(h, now); /* measured start to start */
		}
		if (h->in_round && h->pending > 0 && now >= deadline) {
			char why[64];
			snprintf(why, sizeof(why), "timeout after %u ms", (unsigned)timeout);
			for (size_t i = 0; i < h->n; i++)
				if (h->slots[i].in_flight) {
					rh_probe_abort(&h->slots[i].probe, why);
					probe_done(&h->slots[i]);
				}
		}
		if (h->in_round && h->pending == 0) {
			round_finish(h);
			if (h->dns_waiting) {
				dns_apply(h, h->dns_waiting);
				rh_resolver_round_free(h->dns_waiting);
				h->dns_waiting = NULL;
			}
			if (h->reload_waiting) {
				struct rh_config *cfg = h->reload_waiting;
				h->reload_waiting = NULL;
				reload_apply(h, cfg);
			}
			now = rh_clock_ms(); /* a publication waits for a grace period */
			if (next_round <= now)
				next_round = now; /* the round outlasted freq: start the next one at once */
			continue;
		}

		if (h->in_round)
			wake = deadline;
		else if (h->probing && h->n > 0)
			wake = next_round;
		if (h->service) {
			uint64_t t = h->service->tick(h->service->arg, now);
			if (t < wake)
				wake = t;
		}
		int ms = wake == UINT64_MAX ? -1
			 : wake <= now      ? 0
			 : wake - now > INT_MAX ? INT_MAX
						: (int)(wake - now);
		int n = epoll_wait(h->epfd, evs, MAX_EVENTS, ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			rh_log_error("control: epoll_wait: %s; health checks stop", strerror(errno));
			break;
		}
		for (int k = 0; k < n && !h->stop; k++) {
			struct rh_ep *ep = evs[k].data.ptr;
			ep->handler(ep, evs[k].events);
		}
	}

	for (size_t i = 0; i < h->n; i++)
		if (h->slots[i].in_flight) {
			rh_probe_cancel(&h->slots[i].probe);
			h->slots[i].in_flight = false;
		}
	h->in_round = false;
	h->pending = 0;
	if (h->service)
		h->service->detach(h->service->arg);
	return NULL;
}

/* ---- set-up and the API ---- */

struct rh_health *
rh_health_create(struct rh_runtime *rt, const struct rh_config *cfg,
		 const struct rh_tls_upstream *tls, char *err, size_t errlen)
{
	struct rh_health *h;
	int rc;

	if (cfg->health_tls && tls == NULL && cfg->health_type != RH_HEALTH_NONE) {
		snprintf(err, errlen, "health: [health_check] tls = true but no upstream TLS context "
				      "was given (rh_health_create called without it)");
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "health: out of memory");
		return NULL;
	}
	h->rt = rt;
	h->cfg = cfg;
	h->tls = cfg->health_tls ? tls : NULL;
	h->rise = cfg->rise > 0 ? cfg->rise : 1;
	h->fall = cfg->fall > 0 ? cfg->fall : 1;
	h->probing = cfg->health_type != RH_HEALTH_NONE;
	h->passive = cfg->passive && h->probing;
	h->probe_conf = (struct rh_probe_conf){
		.type = cfg->health_type,
		.tls = h->tls,
		.path = cfg->health_path ? cfg->health_path : "/",
		.host = cfg->health_host,
		.expect_lo = cfg->expect_lo,
		.expect_hi = cfg->expect_hi,
	};
	h->epfd = -1;
	h->stop_ep.fd = h->report_ep.fd = h->dns_ep.fd = h->reload_ep.fd = -1;
	atomic_init(&h->publications, 0);
	atomic_init(&h->reload_seq, 0);
	h->reload = (struct rh_health_reload_status){.generation = 1, .last_ok = true,
						      .last_ok_at = time(NULL)};
	rc = pthread_mutex_init(&h->cert_lock, NULL);
	if (rc == 0 && (rc = pthread_mutex_init(&h->reload_lock, NULL)) != 0)
		pthread_mutex_destroy(&h->cert_lock);
	if (rc != 0) {
		snprintf(err, errlen, "health: pthread_mutex_init: %s", strerror(rc));
		free(h);
		return NULL;
	}
	h->dns_failing = calloc(cfg->n_names ? cfg->n_names : 1, sizeof(*h->dns_failing));
	h->n_confs = cfg->n_backends;
	h->confs = calloc(h->n_confs ? h->n_confs : 1, sizeof(*h->confs));
	struct slot *slots;
	struct rh_health_cert *certs;
	if (!h->dns_failing || !h->confs || (rt->live && slots_alloc(rt->live->n, &slots, &certs) == -1)) {
		snprintf(err, errlen, "health: out of memory");
		goto fail;
	}
	if (rt->live)
		slots_install(h, slots, certs);
	if (h->n_confs)
		memcpy(h->confs, cfg->backends, h->n_confs * sizeof(*h->confs));
	for (size_t i = 0; i < cfg->n_names; i++)
		h->dns_failing[i] = cfg->names[i].unresolved[0] != '\0';

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd == -1) {
		snprintf(err, errlen, "health: epoll_create1: %s", strerror(errno));
		goto fail;
	}
	/* the report eventfd is there even with passive checks off: a reload may turn them on */
	if (watch_eventfd(h, &h->stop_ep, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), on_stop) == -1 ||
	    watch_eventfd(h, &h->report_ep, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), on_report) == -1 ||
	    watch_eventfd(h, &h->reload_ep, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), on_reload) == -1) {
		snprintf(err, errlen, "health: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (cfg->resolve_ms > 0) {
		struct rh_resolver_name *names = calloc(cfg->n_names ? cfg->n_names : 1, sizeof(*names));
		if (!names) {
			snprintf(err, errlen, "health: out of memory");
			goto fail;
		}
		for (size_t i = 0; i < cfg->n_names; i++) {
			snprintf(names[i].host, sizeof(names[i].host), "%s", cfg->names[i].host);
			names[i].port = cfg->names[i].port;
		}
		h->resolver = rh_resolver_create(names, cfg->n_names, cfg->resolve_ms,
						 cfg->resolver.len ? &cfg->resolver : NULL, err, errlen);
		free(names);
		if (!h->resolver)
			goto fail;
		if (watch_eventfd(h, &h->dns_ep, rh_resolver_fd(h->resolver), on_dns) == -1) {
			h->dns_ep.fd = -1; /* the resolver's own */
			snprintf(err, errlen, "health: epoll_ctl: %s", strerror(errno));
			goto fail;
		}
		h->dns_ep.fd = -1; /* closed by the resolver, not here (the endpoint stays registered) */
	}
	rt->report_fd = h->report_ep.fd;
	return h;

fail:
	rh_health_destroy(h);
	return NULL;
}

int
rh_health_start(struct rh_health *h)
{
	sigset_t all, old;
	int rc;

	if (h->running)
		return 0;
	if (h->resolver) {
		if (rh_resolver_start(h->resolver) == -1)
			return -1;
		/* names that did not resolve at load are asked again at once (then retried every few
		 * seconds until they do), not after a whole interval */
		for (size_t i = 0; i < h->cfg->n_names; i++)
			if (h->cfg->names[i].unresolved[0]) {
				rh_resolver_resolve_now(h->resolver);
				break;
			}
	}
	/* The thread inherits a full signal mask: signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	h->stop = false;
	h->probing = h->cfg->health_type != RH_HEALTH_NONE; /* read again: tests change it after create */
	rc = pthread_create(&h->thread, NULL, health_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	h->running = true;
	return 0;
}

void
rh_health_stop(struct rh_health *h)
{
	uint64_t one = 1, drain;

	if (h == NULL || !h->running)
		return;
	while (write(h->stop_ep.fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
	pthread_join(h->thread, NULL);
	h->running = false;
	/* Reset the eventfd so that a later start runs again. */
	while (read(h->stop_ep.fd, &drain, sizeof(drain)) == -1 && errno == EINTR)
		;
}

void
rh_health_destroy(struct rh_health *h)
{
	if (h == NULL)
		return;
	rh_health_stop(h);
	if (h->rt->report_fd == h->report_ep.fd)
		h->rt->report_fd = -1;
	if (h->resolver) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, rh_resolver_fd(h->resolver), NULL);
		rh_resolver_destroy(h->resolver);
	}
	rh_resolver_round_free(h->dns_waiting);
	if (h->stop_ep.fd != -1)
		close(h->stop_ep.fd);
	if (h->report_ep.fd != -1)
		close(h->report_ep.fd);
	if (h->reload_ep.fd != -1)
		close(h->reload_ep.fd);
	struct rh_config *left[] = {h->owned, h->reload_cfg, h->reload_waiting};
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
		if (left[i]) {
			rh_config_finish(left[i]);
			free(left[i]);
		}
	pthread_mutex_destroy(&h->reload_lock);
	if (h->epfd != -1)
		close(h->epfd);
	pthread_mutex_destroy(&h->cert_lock);
	free(h->certs);
	free(h->slots);
	free(h->confs);
	free(h->dns_failing);
	free(h);
}

uint64_t
rh_health_publications(const struct rh_health *h)
{
	return atomic_load_explicit(&h->publications, memory_order_relaxed);
}

bool
rh_health_cert(const struct rh_health *h, size_t backend, struct rh_health_cert *out)
{
	/* The lock is state, not value: h is const only to the caller. */
	pthread_mutex_t *lock = (pthread_mutex_t *)&h->cert_lock;
	bool have;

	pthread_mutex_lock(lock);
	have = backend < h->n && h->certs[backend].checked_at != 0;
	if (have)
		*out = h->certs[backend];
	pthread_mutex_unlock(lock);
	return have;
}
