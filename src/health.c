/* The health thread: one epoll loop that probes every backend at once every health_frequency_ms with
 * a non-blocking TCP connect, bounded by health_timeout_ms, keeps a HAProxy-style rise/fall counter
 * per backend and publishes a new view (rh_pool_publish) only in rounds where some backend changed.
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

#define STOP_TAG UINT64_MAX /* epoll data of the stop eventfd; probes use their backend index */
#define MAX_EVENTS 64

enum {
	PROBE_PENDING = -1, /* connect in flight */
	PROBE_TIMEOUT = -2, /* not done within health_timeout_ms */
	/* 0: connected; > 0: the errno of the failure */
};

struct probe {
	int fd;          /* -1 when no connect is in flight */
	int result;      /* PROBE_*, 0 or an errno */
	unsigned health; /* HAProxy's counter, in [0, rise + fall - 1]; the backend is up iff >= rise */
};

struct rh_health {
	struct rh_pool *pool;
	const struct rh_config *cfg;
	unsigned rise, fall;
	int epfd;
	int stopfd; /* eventfd: rh_health_stop writes it */
	pthread_t thread;
	bool running; /* a thread was started and not yet joined; main thread only */

	/* health thread only, while it runs */
	struct probe *probes;
	uint8_t *healthy; /* what we last tried to publish */
	bool dirty;       /* healthy[] differs from the live view (a publication failed) */
	size_t pending;   /* probes in flight this round */

	atomic_uint_fast64_t publications;
};


static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


struct rh_health *
rh_health_create(struct rh_pool *pool, const struct rh_config *cfg, char *err, size_t errlen)
{
	struct rh_health *h;
	size_t n = pool->n_backends;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto fail_nomem;
	h->pool = pool;
	h->cfg = cfg;
	h->rise = cfg->rise > 0 ? cfg->rise : 1;
	h->fall = cfg->fall > 0 ? cfg->fall : 1;
	h->epfd = -1;
	h->stopfd = -1;
	atomic_init(&h->publications, 0);

	h->probes = calloc(n > 0 ? n : 1, sizeof(h->probes[0]));
	h->healthy = calloc(n > 0 ? n : 1, sizeof(h->healthy[0]));
	if (h->probes == NULL || h->healthy == NULL)
		goto fail_arrays;
	for (size_t i = 0; i < n; i++)
		h->probes[i].fd = -1;

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
fail_arrays:
	free(h->healthy);
	free(h->probes);
	free(h);
	return NULL;
fail_nomem:
	snprintf(err, errlen, "health: out of memory");
	return NULL;
}


/* Starts a connect to backend <i>. Either the probe is in flight (registered for EPOLLOUT, counted
 * in h->pending) or its result is already known. */
static void
probe_start(struct rh_health *h, size_t i)
{
	const struct rh_sockaddr *a = &h->pool->backends[i].addr;
	struct probe *p = &h->probes[i];
	int fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		p->result = errno;
		return;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
		p->result = 0; /* loopback may connect at once */
		goto done;
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
	p->result = PROBE_PENDING;
	h->pending++;
	return;

done:
	close(fd);
}


/* Ends the in-flight probe <i> with <result>. Closing the fd also removes it from the epoll set. */
static void
probe_end(struct rh_health *h, size_t i, int result)
{
	struct probe *p = &h->probes[i];

	if (p->fd == -1)
		return;
	close(p->fd);
	p->fd = -1;
	p->result = result;
	h->pending--;
}


/* The in-flight probe <i> became writable or failed: SO_ERROR says which. */
static void
probe_ready(struct rh_health *h, size_t i, uint32_t events)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (i >= h->pool->n_backends || h->probes[i].fd == -1)
		return;
	if (getsockopt(h->probes[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	else if (soerr == 0 && !(events & EPOLLOUT))
		soerr = ECONNRESET; /* EPOLLERR/EPOLLHUP without an error code */
	probe_end(h, i, soerr);
}


static void
round_start(struct rh_health *h)
{
	h->pending = 0;
	for (size_t i = 0; i < h->pool->n_backends; i++)
		probe_start(h, i);
}


/* Applies probe <p>'s result to its counter as HAProxy does (check.c, set_server_check_status): a
 * failure decrements, and a counter falling below <rise> drops to 0 (down, success streak lost); a
 * success increments, and reaching <rise> jumps to rise + fall - 1 (up, failure streak forgotten).
 * So a down backend comes up after <rise> consecutive successes and an up one goes down after
 * <fall> consecutive failures. Returns the new up/down state. */
static bool
counter_apply(const struct rh_health *h, struct probe *p)
{
	unsigned top = h->rise + h->fall - 1;

	if (p->result == 0) {
		if (p->health < top) {
			p->health++;
			if (p->health >= h->rise)
				p->health = top;
		}
	} else if (p->health > 0) {
		p->health--;
		if (p->health < h->rise)
			p->health = 0;
	}
	return p->health >= h->rise;
}


/* Every probe of the round has a result: update the counters, log each transition once and publish
 * a new view if anything changed (or a previous publication failed). */
static void
round_finish(struct rh_health *h)
{
	bool changed = h->dirty;

	for (size_t i = 0; i < h->pool->n_backends; i++) {
		struct probe *p = &h->probes[i];
		const char *name = h->pool->backends[i].name;
		bool up = counter_apply(h, p);

		if (up == (h->healthy[i] != 0))
			continue;
		h->healthy[i] = up;
		changed = true;
		if (up)
			rh_log_info("backend %s up", name);
		else if (p->result == PROBE_TIMEOUT)
			rh_log_warn("backend %s down: timeout after %u ms", name,
				    (unsigned)h->cfg->health_timeout_ms);
		else
			rh_log_warn("backend %s down: %s", name, strerror(p->result));
	}
	if (!changed)
		return;
	if (rh_pool_publish(h->pool, h->healthy) == -1) {
		rh_log_error("health: cannot publish the new view: out of memory; retrying next round");
		h->dirty = true;
		return;
	}
	h->dirty = false;
	atomic_fetch_add_explicit(&h->publications, 1, memory_order_relaxed);
}


/* Initial state from the live view (view #1: all healthy): an up backend starts with a full counter,
 * so with fall = 1 a dead backend goes down on the first round. */
static void
state_init(struct rh_health *h)
{
	/* The writer may read the live view without being a reader: only it replaces views. */
	const struct rh_backend_view *v = rh_pool_view(h->pool);
	unsigned top = h->rise + h->fall - 1;

	for (size_t i = 0; i < h->pool->n_backends; i++) {
		h->healthy[i] = v->healthy[i];
		h->probes[i].health = v->healthy[i] ? top : 0;
		h->probes[i].fd = -1;
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
	uint64_t next_round = now_ms(), deadline = 0;

	rh_log_set_thread_tag("health");
	state_init(h);

	for (;;) {
		uint64_t now = now_ms();
		uint64_t wake;

		if (!in_round && now >= next_round) {
			round_start(h);
			in_round = true;
			deadline = now + timeout;
			next_round = now + freq; /* rounds start every freq, measured start to start */
		}
		if (in_round && h->pending > 0 && now >= deadline) {
			for (size_t i = 0; i < h->pool->n_backends; i++)
				probe_end(h, i, PROBE_TIMEOUT);
		}
		if (in_round && h->pending == 0) {
			round_finish(h);
			in_round = false;
			now = now_ms(); /* a publication waits for a grace period */
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
	for (size_t i = 0; i < h->pool->n_backends; i++)
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
	/* type = none: nobody probes, every backend stays as view #1 has it (healthy). */
	if (h->cfg->health_type == RH_HEALTH_NONE || h->pool->n_backends == 0)
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
	free(h->healthy);
	free(h->probes);
	free(h);
}


uint64_t
rh_health_publications(const struct rh_health *h)
{
	return atomic_load_explicit(&h->publications, memory_order_relaxed);
}
