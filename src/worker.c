/* The worker thread: one epoll loop over its listeners, client and upstream connections, with the
 * timer queues deciding how long epoll_wait may sleep. The thread is a QSBR reader: it is online
 * while it handles events (reading the runtime snapshot) and offline while it sleeps, so the control
 * thread's grace periods never wait for an idle worker. When a new generation appears it applies its
 * timeouts and closes its idle connections to backends that left. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/conn.h"
#include "roundhouse/log.h"
#include "roundhouse/net.h"
#include "roundhouse/runtime.h"
#include "roundhouse/tls.h"
#include "roundhouse/upstream.h"
#include "roundhouse/worker.h"

#define MAX_EVENTS 256
#define LISTEN_BACKLOG 4096

void
rh_worker_close_ep(struct rh_ep *ep)
{
	/* closing the fd removes it from epoll; events already fetched for it are skipped */
	rh_tls_close(ep); /* abortive unless the caller sent close_notify before */
	close(ep->fd);
	ep->fd = -1;
	ep->closed = true;
	ep->readable = ep->writable = false;
}

/* Gives back everything <w> owns; its thread is not running. Also undoes a half-done
 * rh_worker_init, so the error path and rh_worker_finish share it. */
static void
worker_release(struct rh_worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++)
		if (!w->listeners[i].ep.closed)
			close(w->listeners[i].ep.fd);
	w->n_listeners = 0;
	while (w->free_upconns) {
		struct rh_upconn *up = w->free_upconns;
		w->free_upconns = up->next;
		free(up);
	}
	rh_buf_pool_finish(&w->bufs);
	if (w->wake.fd != -1)
		close(w->wake.fd);
	if (w->epfd != -1)
		close(w->epfd);
	w->wake.fd = w->epfd = -1;
	free(w->tls_scratch);
	free(w->listeners);
	w->tls_scratch = NULL;
	w->listeners = NULL;
}

int
rh_worker_init(struct rh_worker *w, unsigned id, struct rh_server *srv, char *err, size_t errlen)
{
	const struct rh_config *cfg = srv->cfg;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->srv = srv;
	w->epfd = -1;
	w->wake.fd = -1;
	snprintf(w->tag, sizeof(w->tag), "w%u", id);
	w->now = rh_clock_ms();
	w->bufs.large.max_free = 1024;
	w->bufs.small.max_free = 4096;

	/* durations come from the snapshot's settings, at the first loop turn (apply_generation),
	 * before any timer is armed */
	rh_timer_queue_init(&w->tq_header, 0, false);
	rh_timer_queue_init(&w->tq_client_body, 0, true);
	rh_timer_queue_init(&w->tq_idle, 0, false);
	rh_timer_queue_init(&w->tq_send, 0, true);
	rh_timer_queue_init(&w->tq_connect, 0, false);
	rh_timer_queue_init(&w->tq_upstream, 0, true);
	rh_timer_queue_init(&w->tq_pool, 0, false);
	rh_timer_queue_init(&w->tq_linger, 5000, false); /* as nginx's lingering_timeout */

	w->listeners = calloc(cfg->n_listens + cfg->n_listens_tls, sizeof(*w->listeners));
	if (srv->tls_up || srv->tls_edge)
		w->tls_scratch = malloc(RH_TLS_RECORD);
	if (!w->listeners || ((srv->tls_up || srv->tls_edge) && !w->tls_scratch)) {
		snprintf(err, errlen, "worker %u: out of memory", id);
		goto fail;
	}
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd == -1) {
		snprintf(err, errlen, "worker %u: epoll_create1: %s", id, strerror(errno));
		goto fail;
	}
	w->wake = (struct rh_ep){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .kind = RH_EP_WAKE};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake};
	if (w->wake.fd == -1 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake.fd, &ev) == -1) {
		snprintf(err, errlen, "worker %u: eventfd: %s", id, strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_listens + cfg->n_listens_tls; i++) {
		bool tls = i >= cfg->n_listens;
		const struct rh_sockaddr *addr = tls ? &cfg->listens_tls[i - cfg->n_listens] : &cfg->listens[i];
		struct rh_listener *l = &w->listeners[i];
		int fd = rh_net_listen(addr, LISTEN_BACKLOG, err, errlen);
		if (fd == -1)
			goto fail;
		l->ep = (struct rh_ep){.fd = fd, .kind = RH_EP_LISTENER};
		l->tls = tls ? srv->tls_edge : NULL;
		w->n_listeners++;
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &l->ep};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			snprintf(err, errlen, "listen %s: epoll_ctl: %s", addr->text, strerror(errno));
			goto fail;
		}
	}
	return 0;
fail:
	worker_release(w);
	return -1;
}

static void
set_accepting(struct rh_worker *w, bool on)
{
	for (size_t i = 0; i < w->n_listeners; i++) {
		struct rh_listener *l = &w->listeners[i];
		struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = &l->ep};
		if (!l->ep.closed && epoll_ctl(w->epfd, EPOLL_CTL_MOD, l->ep.fd, &ev) == -1)
			rh_log_error("listener %zu: epoll_ctl: %s", i, strerror(errno));
	}
	w->accept_paused = !on;
}

void
rh_worker_pause_accept(struct rh_worker *w, unsigned retry_ms)
{
	if (!w->accept_paused)
		set_accepting(w, false);
	w->accept_resume_at = w->now + retry_ms;
}

/* Milliseconds epoll_wait may sleep: until the nearest timer. */
static int
run_timers(struct rh_worker *w)
{
	struct rh_timer_queue *queues[] = {
		&w->tq_header, &w->tq_client_body, &w->tq_idle, &w->tq_send,
		&w->tq_connect, &w->tq_upstream, &w->tq_pool, &w->tq_linger,
	};
	int64_t next = 1000; /* wake at least once a second (drain deadline, stop flag backstop) */

	for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
		int64_t t = rh_timer_queue_run(queues[i], w->now);
		if (t >= 0 && t < next)
			next = t;
	}
	return (int)next;
}

static void
start_draining(struct rh_worker *w)
{
	w->draining = true;
	w->drain_deadline = w->now + w->srv->cfg->shutdown_ms;
	/* stop accepting: with SO_REUSEPORT the kernel sends new connections to the other
	 * listeners of the group until they are closed too */
	for (size_t i = 0; i < w->n_listeners; i++)
		if (!w->listeners[i].ep.closed)
			rh_worker_close_ep(&w->listeners[i].ep);
	rh_upstream_close_idle(w, false);
	struct rh_conn *c = w->conns;
	while (c) {
		struct rh_conn *next = rh_conn_next(c);
		rh_conn_drain(c);
		c = next;
	}
	rh_log_info("draining %u connection(s), at most %u ms", w->n_conns, w->srv->cfg->shutdown_ms);
}

/* The snapshot changed generation: its timeouts apply to timers armed from now on, and idle
 * connections to backends that left are closed (each holds a reference that keeps the backend
 * object alive). */
static void
apply_generation(struct rh_worker *w)
{
	const struct rh_settings *st = &w->snap->settings;

	w->generation = w->snap->generation;
	w->tq_header.duration_ms = st->client_header_ms;
	w->tq_client_body.duration_ms = st->client_header_ms;
	w->tq_idle.duration_ms = st->idle_ms;
	w->tq_send.duration_ms = st->idle_ms;
	w->tq_connect.duration_ms = st->connect_ms;
	w->tq_upstream.duration_ms = st->upstream_read_ms;
	w->tq_pool.duration_ms = st->idle_ms;
	rh_upstream_close_idle(w, true);
}

static void *
worker_main(void *arg)
{
	struct rh_worker *w = arg;
	struct epoll_event events[MAX_EVENTS];
	int timeout = 0;

	rh_log_set_thread_tag(w->tag);
	rh_tls_worker_init(&w->bufs);
	rh_rcu_reader_register();

	for (;;) {
		if (w->draining && (w->n_conns == 0 || w->now >= w->drain_deadline))
			break;

		w->snap = NULL; /* nothing of the snapshot survives the quiescent state */
		rh_rcu_reader_offline();
		int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);
		rh_rcu_reader_online();
		w->now = rh_clock_ms();
		w->snap = rh_runtime_snapshot(w->srv->rt);
		if (w->snap->generation != w->generation)
			apply_generation(w);
		if (n == -1 && errno != EINTR) {
			rh_log_error("epoll_wait: %s", strerror(errno));
			break;
		}

		for (int i = 0; i < n; i++) {
			struct rh_ep *ep = events[i].data.ptr;
			uint32_t e = events[i].events;

			if (ep->closed)
				continue;
			switch (ep->kind) {
			case RH_EP_CLIENT:
				rh_conn_event(ep, e);
				break;
			case RH_EP_UPSTREAM: {
				struct rh_upconn *up = (struct rh_upconn *)ep;
				rh_ep_note_events(ep, e);
				if (up->owner)
					rh_conn_run(up->owner);
				else if (ep->readable && !(ep->tls && rh_tls_idle_ok(ep)))
					rh_upstream_close(w, up); /* the backend closed an idle one */
				break;
			}
			case RH_EP_LISTENER:
				rh_conn_accept(w, (struct rh_listener *)ep);
				break;
			case RH_EP_WAKE: {
				uint64_t v;
				if (read(ep->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					rh_log_warn("eventfd read: %s", strerror(errno));
				break;
			}
			}
		}

		timeout = run_timers(w);
		if (w->accept_paused && !w->draining) {
			if (w->n_conns < w->srv->conns_per_worker && w->now >= w->accept_resume_at)
				set_accepting(w, true);
			else if (timeout > 100)
				timeout = 100; /* come back for the retry after an accept error */
		}

		rh_conn_reap(w);
		rh_upstream_reap(w);

		if (!w->draining && atomic_load_explicit(&w->srv->stopping, memory_order_acquire))
			start_draining(w);
		if (w->draining && timeout > 100)
			timeout = 100;
	}

	if (w->n_conns)
		rh_log_warn("shutdown grace period over: closing %u connection(s)", w->n_conns);
	rh_conn_free_all(w);
	rh_upstream_close_idle(w, false);
	rh_upstream_reap(w);
	w->snap = NULL;
	rh_rcu_reader_unregister();
	return NULL;
}

int
rh_worker_start(struct rh_worker *w)
{
	int e = pthread_create(&w->thread, NULL, worker_main, w);

	w->started = e == 0;
	return e;
}

void
rh_worker_wake(struct rh_worker *w)
{
	uint64_t one = 1;

	if (write(w->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rh_log_warn("worker wake: %s", strerror(errno));
}

void
rh_worker_finish(struct rh_worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	worker_release(w);
}
