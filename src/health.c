/* The health thread: one epoll loop that probes every backend at once every health_frequency_ms with
 * a non-blocking TCP connect, bounded by health_timeout_ms, keeps a HAProxy-style rise/fall counter
 * per backend and publishes a new snapshot (rh_runtime_publish) only in rounds where some backend
 * changed.
 *
 * With TLS probes (cfg->health_tls, h->tls set) a connected probe goes on to a client handshake
 * (rh_tls_probe_start/step), its fd's epoll interest switched between EPOLLIN and EPOLLOUT as the
 * handshake asks, all within the same deadline; it succeeds only at RH_TLS_DONE. What the handshake
 * showed of the certificate goes into h->certs (under h->cert_lock, for rh_health_cert readers in
 * other threads); the expiry and verify warnings are decided here, with per-backend "already
 * warned" state that only this thread touches.
 *
 * The thread is the RCU writer and is never registered as a QSBR reader: urcu_qsbr_synchronize_rcu()
 * from a registered online thread would wait for itself.
 *
 * Probe sockets are closed with a plain close() once the result is known. A connected probe thus
 * leaves a TIME_WAIT socket on our side (not on the backend's), which is harmless at one probe per
 * backend per round; we do not RST with SO_LINGER {1, 0} because backends would then log a reset for
 * every check. */
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
#include <sys/socket.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/log.h"
#include "roundhouse/runtime.h"
#include "roundhouse/timer.h"
#include "roundhouse/tls.h"

#define STOP_TAG UINT64_MAX /* epoll data of the stop eventfd; probes use their backend index */
#define MAX_EVENTS 64
#define DAY_S 86400
#define DAY_MS (DAY_S * UINT64_C(1000))

enum {
	PROBE_PENDING = -1, /* connect or TLS handshake in flight */
	PROBE_TIMEOUT = -2, /* not done within health_timeout_ms */
	PROBE_TLS = -3,     /* the TLS handshake failed: probe.why says why */
	/* 0: connected (and handshake done); > 0: the errno of the failure */
};

struct probe {
	int fd;          /* -1 when no probe is in flight */
	int result;      /* PROBE_*, 0 or an errno */
	uint32_t interest;   /* the fd's epoll events, 0 while it is not registered */
	struct ssl_st *ssl;  /* the probe's TLS handshake, once connected; else NULL */
	char why[192];       /* with PROBE_TLS: "TLS handshake: ..." */

	/* warnings already given for this backend's certificate */
	bool expiry_warned;
	time_t expiry_not_after;  /* of the certificate warned about */
	uint64_t expiry_warned_ms; /* when (rh_clock_ms) */
	bool unverified_warned;
	time_t unverified_not_after;
};

struct rh_health {
	struct rh_runtime *rt; /* its one writer: every snapshot after the first is published here */
	size_t n;              /* backends in the live snapshot (the set is fixed while this runs) */
	const struct rh_config *cfg;
	const struct rh_tls_upstream *tls; /* NULL: plain TCP probes */
	unsigned rise, fall;
	int epfd;
	int stopfd; /* eventfd: rh_health_stop writes it */
	pthread_t thread;
	bool running; /* a thread was started and not yet joined; main thread only */

	/* health thread only, while it runs */
	struct probe *probes;
	bool dirty;       /* the backends' health differs from the live snapshot (a publication failed) */
	size_t pending;   /* probes in flight this round */

	atomic_uint_fast64_t publications;

	/* What the last completed handshake with each backend showed; certs[i].checked_at == 0: none.
	 * Written by the health thread, read by rh_health_cert from any thread, both under cert_lock. */
	pthread_mutex_t cert_lock;
	struct rh_health_cert *certs;
};




struct rh_health *
rh_health_create(struct rh_runtime *rt, const struct rh_config *cfg,
		 const struct rh_tls_upstream *tls, char *err, size_t errlen)
{
	struct rh_health *h;
	/* the writer may read the live snapshot without being a reader: only it replaces snapshots */
	size_t n = rt->live ? rt->live->n : 0;
	int rc;

	if (cfg->health_tls && tls == NULL && cfg->health_type != RH_HEALTH_NONE) {
		snprintf(err, errlen, "health: [health_check] tls = true but no upstream TLS context "
				      "was given (rh_health_create called without it)");
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto fail_nomem;
	h->rt = rt;
	h->n = n;
	h->cfg = cfg;
	h->tls = cfg->health_tls ? tls : NULL;
	h->rise = cfg->rise > 0 ? cfg->rise : 1;
	h->fall = cfg->fall > 0 ? cfg->fall : 1;
	h->epfd = -1;
	h->stopfd = -1;
	atomic_init(&h->publications, 0);

	h->probes = calloc(n > 0 ? n : 1, sizeof(h->probes[0]));
	h->certs = calloc(n > 0 ? n : 1, sizeof(h->certs[0]));
	if (h->probes == NULL || h->certs == NULL) {
		snprintf(err, errlen, "health: out of memory");
		goto fail_arrays;
	}
	for (size_t i = 0; i < n; i++)
		h->probes[i].fd = -1;
	rc = pthread_mutex_init(&h->cert_lock, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "health: pthread_mutex_init: %s", strerror(rc));
		goto fail_arrays;
	}

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd == -1) {
		snprintf(err, errlen, "health: epoll_create1: %s", strerror(errno));
		goto fail_epoll;
	}
	h->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->stopfd == -1) {
		snprintf(err, errlen, "health: eventfd: %s", strerror(errno));
		goto fail_eventfd;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TAG};
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->stopfd, &ev) == -1) {
		snprintf(err, errlen, "health: epoll_ctl: %s", strerror(errno));
		goto fail_register;
	}
	return h;

fail_register:
	close(h->stopfd);
fail_eventfd:
	close(h->epfd);
fail_epoll:
	pthread_mutex_destroy(&h->cert_lock);
fail_arrays:
	free(h->certs);
	free(h->probes);
	free(h);
	return NULL;
fail_nomem:
	snprintf(err, errlen, "health: out of memory");
	return NULL;
}


/* Backend <i> of the live snapshot (read by its writer, which needs no read-side section). */
static struct rh_backend *
backend_at(const struct rh_health *h, size_t i)
{
	return h->rt->live->backends[i];
}


/* Ends the in-flight probe <i> with <result>: frees its TLS handshake if any and closes the fd,
 * which also removes it from the epoll set. */
static void
probe_end(struct rh_health *h, size_t i, int result)
{
	struct probe *p = &h->probes[i];

	if (p->fd == -1)
		return;
	if (p->ssl != NULL) {
		rh_tls_probe_free(p->ssl);
		p->ssl = NULL;
	}
	close(p->fd);
	p->fd = -1;
	p->interest = 0;
	p->result = result;
	h->pending--;
}


/* Ends probe <i> as a failed TLS handshake. */
static void
tls_fail(struct rh_health *h, size_t i, const char *why)
{
	struct probe *p = &h->probes[i];

	snprintf(p->why, sizeof(p->why), "TLS handshake: %s", why);
	probe_end(h, i, PROBE_TLS);
}


/* Sets the epoll interest of in-flight probe <i> to <events> (registering the fd if it is not yet).
 * Returns 0 or -1 (errno set). */
static int
probe_watch(struct rh_health *h, size_t i, uint32_t events)
{
	struct probe *p = &h->probes[i];
	struct epoll_event ev = {.events = events, .data.u64 = i};

	if (p->interest == events)
		return 0;
	if (epoll_ctl(h->epfd, p->interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, p->fd, &ev) == -1)
		return -1;
	p->interest = events;
	return 0;
}


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


/* Probe <i>'s handshake completed with <peer>: records it for rh_health_cert and gives the
 * certificate warnings that are due. */
static void
cert_record(struct rh_health *h, size_t i, const struct rh_tls_peer *peer)
{
	struct probe *p = &h->probes[i];
	const char *name = backend_at(h, i)->name;
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


/* Advances probe <i>'s handshake after <events> on its fd (0 right after the connect): done,
 * failed, or waiting for the event it asks for. */
static void
tls_step(struct rh_health *h, size_t i, uint32_t events)
{
	struct probe *p = &h->probes[i];
	bool want_write = false;
	char why[160] = "";

	switch (rh_tls_probe_step(p->ssl, &want_write, why, sizeof(why))) {
	case RH_TLS_DONE: {
		struct rh_tls_peer peer;

		memset(&peer, 0, sizeof(peer));
		rh_tls_probe_peer(p->ssl, &peer);
		cert_record(h, i, &peer);
		probe_end(h, i, 0);
		return;
	}
	case RH_TLS_FAIL:
		tls_fail(h, i, why[0] ? why : "failed");
		return;
	case RH_TLS_WAIT:
		break;
	}
	if (events & EPOLLERR) {
		/* A socket error the handshake did not notice: do not spin on it until the deadline. */
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr == 0)
			soerr = ECONNRESET;
		tls_fail(h, i, strerror(soerr));
		return;
	}
	if (probe_watch(h, i, want_write ? EPOLLOUT : EPOLLIN) == -1) {
		snprintf(why, sizeof(why), "epoll_ctl: %s", strerror(errno));
		tls_fail(h, i, why);
	}
}


/* In-flight probe <i> is connected: starts its handshake. */
static void
tls_begin(struct rh_health *h, size_t i)
{
	struct probe *p = &h->probes[i];

	p->ssl = rh_tls_probe_start(h->tls, backend_at(h, i), p->fd);
	if (p->ssl == NULL) {
		tls_fail(h, i, "out of memory");
		return;
	}
	tls_step(h, i, 0);
}


/* Starts a connect to backend <i>. Either the probe is in flight (its fd registered with epoll,
 * counted in h->pending) or its result is already known. */
static void
probe_start(struct rh_health *h, size_t i)
{
	const struct rh_sockaddr *a = &backend_at(h, i)->addr;
	struct probe *p = &h->probes[i];
	int fd;

	p->why[0] = '\0';
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		p->result = errno;
		return;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
		/* loopback may connect at once */
		if (h->tls == NULL) {
			p->result = 0;
			goto done;
		}
		p->fd = fd;
		p->interest = 0;
		p->result = PROBE_PENDING;
		h->pending++;
		tls_begin(h, i);
		return;
	}
	if (errno != EINPROGRESS && errno != EINTR) { /* EINTR: the connect goes on asynchronously */
		p->result = errno;
		goto done;
	}
	struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = i};
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		p->result = errno;
		goto done;
	}
	p->fd = fd;
	p->interest = EPOLLOUT;
	p->result = PROBE_PENDING;
	h->pending++;
	return;

done:
	close(fd);
}


/* Something happened on in-flight probe <i>: a connect that finished (SO_ERROR says how), or a step
 * of its TLS handshake. */
static void
probe_ready(struct rh_health *h, size_t i, uint32_t events)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (i >= h->n || h->probes[i].fd == -1)
		return;
	if (h->probes[i].ssl != NULL) {
		tls_step(h, i, events);
		return;
	}
	if (getsockopt(h->probes[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	else if (soerr == 0 && !(events & EPOLLOUT))
		soerr = ECONNRESET; /* EPOLLERR/EPOLLHUP without an error code */
	if (soerr == 0 && h->tls != NULL) {
		tls_begin(h, i);
		return;
	}
	probe_end(h, i, soerr);
}


static void
round_start(struct rh_health *h)
{
	h->pending = 0;
	for (size_t i = 0; i < h->n; i++)
		probe_start(h, i);
}


/* Applies probe <p>'s result to backend <b>'s counter as HAProxy does (check.c,
 * set_server_check_status): a failure decrements, and a counter falling below <rise> drops to 0
 * (down, success streak lost); a success increments, and reaching <rise> jumps to rise + fall - 1
 * (up, failure streak forgotten). So a down backend comes up after <rise> consecutive successes and
 * an up one goes down after <fall> consecutive failures. The counter lives on the backend object, so
 * it survives snapshots. Returns the new up/down state. */
static bool
counter_apply(const struct rh_health *h, const struct probe *p, struct rh_backend *b)
{
	unsigned top = h->rise + h->fall - 1;

	if (p->result == 0) {
		if (b->health_counter < top) {
			b->health_counter++;
			if (b->health_counter >= h->rise)
				b->health_counter = top;
		}
	} else if (b->health_counter > 0) {
		b->health_counter--;
		if (b->health_counter < h->rise)
			b->health_counter = 0;
	}
	return b->health_counter >= h->rise;
}


/* Every probe of the round has a result: update the counters, log each transition once and publish
 * a new snapshot if anything changed (or a previous publication failed). */
static void
round_finish(struct rh_health *h)
{
	bool changed = h->dirty;

	for (size_t i = 0; i < h->n; i++) {
		struct probe *p = &h->probes[i];
		struct rh_backend *b = backend_at(h, i);
		bool up = counter_apply(h, p, b);

		if (up == b->up)
			continue;
		b->up = up;
		changed = true;
		if (up)
			rh_log_info("backend %s up", b->name);
		else if (p->result == PROBE_TIMEOUT)
			rh_log_warn("backend %s down: timeout after %u ms", b->name,
				    (unsigned)h->cfg->health_timeout_ms);
		else if (p->result == PROBE_TLS)
			rh_log_warn("backend %s down: %s", b->name, p->why);
		else
			rh_log_warn("backend %s down: %s", b->name, strerror(p->result));
	}
	if (!changed)
		return;
	struct rh_snapshot *s = rh_snapshot_with_health(h->rt, h->rt->live);
	if (!s) {
		rh_log_error("health: cannot build a new snapshot: out of memory; retrying next round");
		h->dirty = true;
		return;
	}
	/* counted before the snapshot becomes visible (publication is a release), so whoever sees
	 * the new snapshot also sees the count */
	atomic_fetch_add_explicit(&h->publications, 1, memory_order_relaxed);
	rh_runtime_publish(h->rt, s);
	h->dirty = false;
}


/* Initial state from the live snapshot (#1: every backend up): an up
 * backend starts with a full counter, so with fall = 1 a dead backend goes down on the first round. */
static void
state_init(struct rh_health *h)
{
	unsigned top = h->rise + h->fall - 1;

	for (size_t i = 0; i < h->n; i++) {
		struct rh_backend *b = backend_at(h, i);

		b->health_counter = b->up ? top : 0;
		h->probes[i].fd = -1;
		h->probes[i].ssl = NULL;
		h->probes[i].interest = 0;
	}
	h->dirty = false;
	h->pending = 0;
}


static void *
health_main(void *arg)
{
	struct rh_health *h = arg;
	const uint64_t freq = h->cfg->health_frequency_ms > 0 ? h->cfg->health_frequency_ms : 1;
	const uint64_t timeout = h->cfg->health_timeout_ms;
	struct epoll_event evs[MAX_EVENTS];
	bool in_round = false;
	uint64_t next_round = rh_clock_ms(), deadline = 0;

	rh_log_set_thread_tag("health");
	state_init(h);

	for (;;) {
		uint64_t now = rh_clock_ms();
		uint64_t wake;

		if (!in_round && now >= next_round) {
			round_start(h);
			in_round = true;
			deadline = now + timeout;
			next_round = now + freq; /* rounds start every freq, measured start to start */
		}
		if (in_round && h->pending > 0 && now >= deadline) {
			for (size_t i = 0; i < h->n; i++)
				probe_end(h, i, PROBE_TIMEOUT);
		}
		if (in_round && h->pending == 0) {
			round_finish(h);
			in_round = false;
			now = rh_clock_ms(); /* a publication waits for a grace period */
			if (next_round <= now)
				next_round = now; /* the round outlasted freq: start the next one at once */
			continue;
		}

		wake = in_round ? deadline : next_round;
		int ms = wake <= now ? 0 : wake - now > INT_MAX ? INT_MAX : (int)(wake - now);
		int n = epoll_wait(h->epfd, evs, MAX_EVENTS, ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			rh_log_error("health: epoll_wait: %s; health checks stop", strerror(errno));
			break;
		}
		for (int k = 0; k < n; k++) {
			if (evs[k].data.u64 == STOP_TAG)
				goto out;
			probe_ready(h, (size_t)evs[k].data.u64, evs[k].events);
		}
	}

out:
	for (size_t i = 0; i < h->n; i++)
		probe_end(h, i, PROBE_PENDING);
	return NULL;
}


int
rh_health_start(struct rh_health *h)
{
	sigset_t all, old;
	int rc;

	if (h->running)
		return 0;
	/* type = none: nobody probes, every backend stays as snapshot #1 has it (healthy). */
	if (h->cfg->health_type == RH_HEALTH_NONE || h->n == 0)
		return 0;

	/* The thread inherits a full signal mask: signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
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
	while (write(h->stopfd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
	pthread_join(h->thread, NULL);
	h->running = false;
	/* Reset the eventfd so that a later start runs again. */
	while (read(h->stopfd, &drain, sizeof(drain)) == -1 && errno == EINTR)
		;
}


void
rh_health_destroy(struct rh_health *h)
{
	if (h == NULL)
		return;
	rh_health_stop(h);
	close(h->stopfd);
	close(h->epfd);
	pthread_mutex_destroy(&h->cert_lock);
	free(h->certs);
	free(h->probes);
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

	if (backend >= h->n)
		return false;
	pthread_mutex_lock(lock);
	have = h->certs[backend].checked_at != 0;
	if (have)
		*out = h->certs[backend];
	pthread_mutex_unlock(lock);
	return have;
}
