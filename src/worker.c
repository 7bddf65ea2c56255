/* The worker thread: one epoll loop over its endpoints (listeners, the wake eventfd, and the client
 * and upstream connections of the layer above), each event handed to the endpoint's own handler,
 * with the timer queues deciding how long epoll_wait may sleep. The listeners are the loop's own:
 * it accepts, pauses at the connection limit and hands each new socket to the hooks (worker.h says
 * why the loop sits below the proxy). The thread is a QSBR reader: it is online while it handles
 * events (reading the runtime snapshot) and offline while it sleeps, so the control thread's grace
 * periods never wait for an idle worker. When a new generation appears it applies its timeouts and
 * tells the hooks (which close idle connections to backends that left). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "roundhouse/config.h"
#include "roundhouse/log.h"
#include "roundhouse/net.h"
#include "roundhouse/runtime.h"
#include "roundhouse/tls.h"
#include "roundhouse/transport.h"
#include "roundhouse/worker.h"

#define MAX_EVENTS 256
#define LISTEN_BACKLOG 4096

static void listener_event(struct rh_ep *ep, uint32_t events);
static void wake_event(struct rh_ep *ep, uint32_t events);

/* Gives back everything <w> owns; its thread is not running. Also undoes a half-done
 * rh_worker_init, so the error path and rh_worker_finish share it. */
static void
worker_release(struct rh_worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++)
		if (!w->listeners[i].ep.closed)
			rh_ep_close(&w->listeners[i].ep);
	w->n_listeners = 0;
	rh_buf_pool_finish(&w->bufs);
	if (w->wake.fd != -1)
		rh_ep_close(&w->wake);
	if (w->epfd != -1)
		close(w->epfd);
	w->epfd = -1;
	free(w->listeners);
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
	w->bufs.body.max_free = 64; /* 4 MiB kept per worker at most */

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
	rh_timer_queue_init(&w->tq_queue, 0, false);

	/* room for the handed-over listeners a worker may take beyond its own (binary upgrade) */
	w->listeners = calloc(cfg->n_listens + cfg->n_listens_tls + srv->n_inherited, sizeof(*w->listeners));
	if (!w->listeners) {
		snprintf(err, errlen, "worker %u: out of memory", id);
		goto fail;
	}
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd == -1) {
		snprintf(err, errlen, "worker %u: epoll_create1: %s", id, strerror(errno));
		goto fail;
	}
	w->wake = (struct rh_ep){
		.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
		.tp = &rh_transport_tcp, /* a plain fd: only closed through it */
		.handler = wake_event,
	};
	if (w->wake.fd == -1 || rh_ep_watch(w->epfd, &w->wake, EPOLLIN) == -1) {
		snprintf(err, errlen, "worker %u: eventfd: %s", id, strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_listens + cfg->n_listens_tls; i++) {
		bool tls = i >= cfg->n_listens;
		const struct rh_sockaddr *addr = tls ? &cfg->listens_tls[i - cfg->n_listens] : &cfg->listens[i];
		/* a socket the old process handed over, when there is one left for this address */
		int fd = -1;
		for (size_t k = 0; k < srv->n_inherited && fd == -1; k++) {
			struct rh_inherited *in = &srv->inherited[k];
			if (!in->taken && in->kind == (tls ? RH_INHERITED_LISTEN_TLS : RH_INHERITED_LISTEN) &&
			    strcmp(in->addr, addr->text) == 0) {
				in->taken = true;
				fd = in->fd;
			}
		}
		if (fd == -1 && (fd = rh_net_listen(addr, LISTEN_BACKLOG, err, errlen)) == -1)
			goto fail;
		if (rh_worker_adopt_listener(w, fd, tls, addr->text) == -1) {
			snprintf(err, errlen, "listen %s: epoll_ctl: %s", addr->text, strerror(errno));
			goto fail;
		}
	}
	return 0;
fail:
	worker_release(w);
	return -1;
}

int
rh_worker_adopt_listener(struct rh_worker *w, int fd, bool tls, const char *addr)
{
	struct rh_listener *l = &w->listeners[w->n_listeners];

	l->ep = (struct rh_ep){.fd = fd, .tp = &rh_transport_tcp, .handler = listener_event};
	l->w = w;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	l->tls = tls ? w->srv->tls_edge : NULL;
	w->n_listeners++; /* released with the worker from here on */
	return rh_ep_watch(w->epfd, &l->ep, EPOLLIN);
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

/* A listener is readable (level-triggered: one accept per report). The new socket goes to the
 * hooks; at the connection limit, and after an error that leaves the rest queued in the kernel,
 * the listeners are paused. */
static void
listener_event(struct rh_ep *ep, uint32_t events)
{
	struct rh_listener *l = (struct rh_listener *)ep;
	struct rh_worker *w = l->w;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	(void)events;
	if (w->n_conns >= w->srv->conns_per_worker || w->draining) {
		rh_worker_pause_accept(w, 0);
		return;
	}
	int fd = accept4(ep->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return; /* another worker's listener took it, or the client gave up */
		/* out of descriptors or memory: leave the rest queued in the kernel for a while */
		rh_log_error("accept: %s (pausing accepts for 100 ms)", strerror(errno));
		rh_worker_pause_accept(w, 100);
		return;
	}
	w->srv->hooks->accepted(w, l, fd, (struct sockaddr *)&ss);
}

/* The main thread wrote to the eventfd (stop): the wake-up itself is the message. */
static void
wake_event(struct rh_ep *ep, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(ep->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rh_log_warn("eventfd read: %s", strerror(errno));
}

void
rh_worker_release_closed(struct rh_worker *w)
{
	while (w->closed) {
		struct rh_deferred *d = w->closed;
		w->closed = d->next;
		d->release(w, d);
	}
}

/* Milliseconds epoll_wait may sleep: until the nearest timer. */
static int
run_timers(struct rh_worker *w)
{
	struct rh_timer_queue *queues[] = {
		&w->tq_header, &w->tq_client_body, &w->tq_idle, &w->tq_send,
		&w->tq_connect, &w->tq_upstream, &w->tq_pool, &w->tq_linger, &w->tq_queue,
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
	if (w->tq_idle.duration_ms > RH_DRAIN_IDLE_MS) /* idle keep-alive clients: one last chance */
		rh_timer_queue_set_duration(&w->tq_idle, RH_DRAIN_IDLE_MS, w->now);
	/* stop accepting: with SO_REUSEPORT the kernel sends new connections to the other
	 * listeners of the group until they are closed too */
	for (size_t i = 0; i < w->n_listeners; i++)
		if (!w->listeners[i].ep.closed) {
			/* explicitly: after a binary upgrade the new process holds the same socket, so
			 * closing this descriptor would not take it out of this epoll set */
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].ep.fd, NULL);
			rh_ep_close(&w->listeners[i].ep);
		}
	w->srv->hooks->drain(w);
	rh_log_info("draining %u connection(s), at most %u ms", w->n_conns, w->srv->cfg->shutdown_ms);
}

/* The snapshot changed generation: its timeouts apply to timers armed from now on, and the hooks
 * close idle connections to backends that left (each holds a reference that keeps the backend
 * object alive). */
static void
apply_generation(struct rh_worker *w)
{
	const struct rh_settings *st = &w->snap->settings;

	uint64_t now = w->now;

	w->generation = w->snap->generation;
	/* a reload may shorten one: the timers already armed follow (rh_timer_queue_set_duration) */
	rh_timer_queue_set_duration(&w->tq_header, st->client_header_ms, now);
	rh_timer_queue_set_duration(&w->tq_client_body, st->client_header_ms, now);
	rh_timer_queue_set_duration(&w->tq_idle, w->draining && st->idle_ms > RH_DRAIN_IDLE_MS
							 ? RH_DRAIN_IDLE_MS : st->idle_ms, now);
	rh_timer_queue_set_duration(&w->tq_send, st->idle_ms, now);
	rh_timer_queue_set_duration(&w->tq_connect, st->connect_ms, now);
	rh_timer_queue_set_duration(&w->tq_upstream, st->upstream_read_ms, now);
	rh_timer_queue_set_duration(&w->tq_pool, st->idle_ms, now);
	rh_timer_queue_set_duration(&w->tq_queue, st->queue_timeout_ms, now);
	w->srv->hooks->generation(w);
}

static void *
worker_main(void *arg)
{
	struct rh_worker *w = arg;
	struct epoll_event events[MAX_EVENTS];
	int timeout = 0;

	rh_log_set_thread_tag(w->tag);
	if (w->srv->tls_up || w->srv->tls_edge)
		rh_tls_thread_init(&w->bufs);
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

			if (!ep->closed) /* else closed by an earlier event of this batch */
				ep->handler(ep, events[i].events);
		}

		/* the turn hook first: what it starts arms timers that run_timers then counts in */
		int most = w->srv->hooks->turn ? w->srv->hooks->turn(w) : -1;
		timeout = run_timers(w);
		if (most >= 0 && most < timeout)
			timeout = most;
		if (w->accept_paused && !w->draining) {
			if (w->n_conns < w->srv->conns_per_worker && w->now >= w->accept_resume_at)
				set_accepting(w, true);
			else if (timeout > 100)
				timeout = 100; /* come back for the retry after an accept error */
		}

		rh_worker_release_closed(w);

		if (!w->draining && atomic_load_explicit(&w->srv->stopping, memory_order_acquire))
			start_draining(w);
		if (w->draining && timeout > 100)
			timeout = 100;
	}

	if (w->n_conns)
		rh_log_warn("shutdown grace period over: closing %u connection(s)", w->n_conns);
	w->srv->hooks->exit(w);
	rh_tls_thread_finish();
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
