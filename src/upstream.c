/* Upstream connections and the per-worker, per-backend keep-alive pool (see upstream.h). Plain and
 * TLS connections differ only in their transport (set by rh_tls_connect_start). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/net.h"
#include "roundhouse/runtime.h"
#include "roundhouse/tls.h"
#include "roundhouse/transport.h"
#include "roundhouse/upstream.h"
#include "roundhouse/worker.h"

static inline struct rh_backend_local *
local_of(struct rh_worker *w, const struct rh_upconn *up)
{
	return &up->backend->local[w->id];
}

/* <up> starts or stops counting as an exchange in flight on its backend (and on this worker). */
static void
set_in_flight(struct rh_worker *w, struct rh_upconn *up, bool on)
{
	if (up->in_flight == on)
		return;
	up->in_flight = on;
	if (!on && up->slot) {
		up->slot = false;
		rh_backend_slot_put(up->backend);
	}
	rh_counter_add(&local_of(w, up)->inflight, on ? 1 : -1);
	rh_counter_add(&w->srv->rt->load[w->id].inflight, on ? 1 : -1);
}

static void
idle_unlink(struct rh_worker *w, struct rh_upconn *up)
{
	struct rh_backend_local *l = local_of(w, up);

	if (up->prev)
		up->prev->next = up->next;
	else
		l->idle_head = up->next;
	if (up->next)
		up->next->prev = up->prev;
	up->next = up->prev = NULL;
	up->idle = false;
	rh_stat_sub(&l->idle_count, 1);
}

static void
idle_expired(struct rh_timer *t)
{
	struct rh_upconn *up = (struct rh_upconn *)((char *)t - offsetof(struct rh_upconn, timer));

	rh_ep_shutdown(&up->ep); /* a clean end of an idle connection */
	rh_upstream_close(up->w, up);
}

/* An event on an idle (pooled) connection: the backend closed it or sent something nobody asked
 * for, unless it was only transport housekeeping (a TLS session ticket). */
static void
idle_event(struct rh_ep *ep, uint32_t events)
{
	struct rh_upconn *up = (struct rh_upconn *)ep;

	rh_ep_note_events(ep, events);
	if (ep->readable && !rh_ep_idle_ok(ep))
		rh_upstream_close(up->w, up);
}

/* After the batch it was closed in: the backend reference goes, the object is kept for reuse. */
static void
release_closed(struct rh_worker *w, struct rh_deferred *d)
{
	struct rh_upconn *up = (struct rh_upconn *)((char *)d - offsetof(struct rh_upconn, closed));

	rh_backend_unref(up->backend); /* may be the last reference: a backend that left */
	up->backend = NULL;
	up->next = w->free_upconns;
	w->free_upconns = up;
}

struct rh_upconn *
rh_upstream_acquire(struct rh_worker *w, struct rh_backend *backend, struct rh_conn *owner,
		    rh_ep_handler *handler, bool fresh_only)
{
	struct rh_backend_local *l = &backend->local[w->id];
	struct rh_upconn *up = l->idle_head;
	int in_progress;

	if (up && !fresh_only) {
		idle_unlink(w, up);
		rh_timer_cancel(&up->timer);
		up->owner = owner;
		up->ep.handler = handler;
		up->reused = true;
		up->wrote = false;
		up->ep.readable = false;
		set_in_flight(w, up, true);
		rh_stat_add(&w->stats.upstream_reused, 1);
		return up;
	}

	int fd = rh_net_connect(&backend->addr, &in_progress);
	if (fd == -1)
		return NULL;

	up = w->free_upconns;
	if (up)
		w->free_upconns = up->next;
	else if (!(up = malloc(sizeof(*up)))) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	*up = (struct rh_upconn){
		.ep = {.fd = fd, .tp = &rh_transport_tcp, .handler = handler, .writable = !in_progress},
		.w = w,
		.backend = backend,
		.owner = owner,
		.connecting = true, /* until the TCP connect (and TLS handshake) completes */
		.timer = {.fire = idle_expired},
	};
	if (w->srv->tls_up && !rh_tls_connect_start(w->srv->tls_up, backend, &up->ep, &l->tls_session)) {
		rh_ep_close(&up->ep);
		up->next = w->free_upconns;
		w->free_upconns = up;
		errno = ENOMEM;
		return NULL;
	}
	if (rh_ep_watch(w->epfd, &up->ep, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1) {
		int saved = errno;
		rh_ep_close(&up->ep);
		up->next = w->free_upconns;
		w->free_upconns = up;
		errno = saved;
		return NULL;
	}
	rh_backend_ref(backend); /* dropped when the connection is reaped */
	set_in_flight(w, up, true);
	rh_stat_add(&w->stats.upstream_connects, 1);
	return up;
}

void
rh_upstream_release(struct rh_worker *w, struct rh_upconn *up, unsigned keepalive)
{
	struct rh_backend_local *l = local_of(w, up);

	set_in_flight(w, up, false);
	if (rh_stat_get(&l->idle_count) >= keepalive || w->draining ||
	    atomic_load_explicit(&up->backend->retired, memory_order_relaxed) ||
	    (rh_ep_can_read(&up->ep) && !rh_ep_idle_ok(&up->ep))) {
		/* full pool, shutting down, a backend that left, or the backend already said
		 * something (close) */
		rh_ep_shutdown(&up->ep);
		rh_upstream_close(w, up);
		return;
	}
	up->owner = NULL;
	up->ep.handler = idle_event;
	up->reused = false;
	up->prev = NULL;
	up->next = l->idle_head;
	if (l->idle_head)
		l->idle_head->prev = up;
	l->idle_head = up;
	rh_stat_add(&l->idle_count, 1);
	up->idle = true;
	rh_timer_arm(&up->timer, &w->tq_pool, w->now);
}

void
rh_upstream_close(struct rh_worker *w, struct rh_upconn *up)
{
	if (up->ep.closed)
		return;
	if (up->idle)
		idle_unlink(w, up);
	set_in_flight(w, up, false);
	rh_timer_cancel(&up->timer);
	rh_ep_close(&up->ep);
	up->owner = NULL;
	rh_worker_defer(w, &up->closed, release_closed);
}

void
rh_upstream_close_idle(struct rh_worker *w, bool retired_only)
{
	/* every idle connection waits in tq_pool, so its list is the worker's list of idle ones */
	struct rh_timer *head = &w->tq_pool.head, *t = head->next;

	while (t != head) {
		struct rh_timer *next = t->next;
		struct rh_upconn *up = (struct rh_upconn *)((char *)t - offsetof(struct rh_upconn, timer));

		if (!retired_only || atomic_load_explicit(&up->backend->retired, memory_order_relaxed))
			rh_upstream_close(w, up);
		t = next;
	}
}

void
rh_upstream_free_cached(struct rh_worker *w)
{
	while (w->free_upconns) {
		struct rh_upconn *up = w->free_upconns;
		w->free_upconns = up->next;
		free(up);
	}
}
