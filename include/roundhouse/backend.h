/* Backend objects: one per backend address, stable for as long as the backend stays configured.
 *
 * A backend that stays from one runtime snapshot to the next (runtime.h) is the same object, so it
 * keeps its idle connections, TLS sessions, health counter and in-flight counts. What each worker
 * keeps of a backend lives in local[worker id], one cache line per worker: only that worker writes
 * it. An object is freed when its last reference goes: each snapshot that lists it holds one, and so
 * does each upstream connection to it (open or idle), never a request. */
#ifndef RH_BACKEND_H
#define RH_BACKEND_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roundhouse/config.h"
#include "roundhouse/stats.h"

struct rh_upconn;
struct ssl_session_st;

/* A backend's health state, decided by the control thread (health.c). */
enum rh_backend_state {
	RH_BACKEND_UNKNOWN,  /* no check result yet: routed to unless [health_check] initial = down */
	RH_BACKEND_UP,
	RH_BACKEND_DOWN,
	RH_BACKEND_DRAINING, /* weight 0: no new requests, whatever its health */
	RH_BACKEND_STATES
};

/* "unknown", "up", "down", "draining". */
const char *rh_backend_state_name(enum rh_backend_state s);

/* What went wrong with a backend while proxying (a passive health report). */
enum rh_backend_failure {
	RH_FAIL_CONNECT,  /* the connect (or the TLS handshake) failed */
	RH_FAIL_RESET,    /* the connection closed or reset before the response was complete */
	RH_FAIL_TIMEOUT,  /* connect or upstream_read timed out */
	RH_FAIL_INVALID,  /* the response could not be parsed or framed */
	RH_FAIL_KINDS
};

/* "connect failed", "connection closed or reset", "timeout", "invalid response". */
const char *rh_backend_failure_name(enum rh_backend_failure f);

/* What one worker keeps of one backend. Written by that worker only; <inflight> is also read (relaxed)
 * by the others' least_conn and bounded-load picks. */
struct rh_backend_local {
	alignas(64) struct rh_upconn *idle_head; /* idle upstream connections, most recently used first */
	rh_stat idle_count;                  /* their number (a gauge for the metrics too) */
	atomic_uint_fast32_t inflight;       /* this worker's exchanges on this backend now */
	struct ssl_session_st *tls_session;  /* the last TLS session the backend gave this worker */
	/* passive health: failures this worker saw while proxying (only ever grows; the control thread
	 * reads the growth) and what the last one was */
	atomic_uint_fast32_t failures;
	atomic_uint_fast32_t last_failure;   /* enum rh_backend_failure << 16 | errno (low 16 bits) */
	uint32_t failures_seen;              /* the control thread's: <failures> it has applied */
	/* for the metrics (stats.h): this worker's exchanges with the backend */
	rh_stat responses[RH_STATUS_CLASSES]; /* complete responses from it, by status class */
	rh_stat connect_failures;            /* connects (and TLS handshakes) that failed */
	rh_stat retries;                     /* requests that went elsewhere after failing on it */
	rh_stat retries_denied;              /* ... that the retry budget kept from going elsewhere */
};

struct rh_backend {
	uint64_t uid;               /* never reused within the process: identity for logs and tests */
	struct rh_sockaddr addr;    /* where to connect */
	char name[RH_ADDR_TEXT_LEN]; /* the numeric address, "127.0.0.1:8081": logs, the hash ring */
	char spec[RH_ADDR_TEXT_LEN]; /* as written in the file, "localhost:8081" */
	char *tls_name;             /* TLS: the SNI sent and the name verified ([upstream] sni, else the
	                               host of <spec>); no SNI is sent when it is an IP address */
	bool tls_name_is_ip;

	/* The control thread's own (no other thread reads these). */
	unsigned health_counter; /* HAProxy's rise/fall counter, see health.c */
	bool up;                 /* routed to: up, or unknown with initial = up */
	bool adopted;            /* the control thread has set up its counter and state */
	bool seen_ok, seen_fail; /* some check passed / failed since it appeared */
	unsigned fail_streak;    /* failed checks in a row (for "3 of 3" in the log) */
	uint64_t mark;           /* scratch for building snapshots */

	/* Written by the control thread, read by anyone (status, metrics, tests). */
	_Atomic uint8_t state;   /* enum rh_backend_state */
	_Atomic int64_t state_since; /* when it entered <state> (Unix time, s) */
	atomic_uint_fast64_t transitions[RH_BACKEND_STATES]; /* times it entered each state */
	/* max_conns: concurrent requests on it, all workers together; 0 = no limit. <active> is only
	 * counted when there is a limit (one shared atomic per request on such backends only) */
	atomic_uint max_conns;
	alignas(64) atomic_uint_fast32_t active;

	atomic_uint_fast32_t refs;
	atomic_bool retired; /* left the live snapshot: workers close their idle connections to it */
	/* hash of the last TLS failure logged (0: none since the last success), so a broken backend
	 * is logged once per distinct reason, not once per request; any worker writes it */
	alignas(64) atomic_uint_fast32_t tls_failure_logged;

	unsigned n_local;
	struct rh_backend_local local[]; /* [n_local]: one per worker */
};

/* A new backend for <bc> with one reference (the caller's) and room for <n_workers> workers, up as
 * <initially_up> says. <sni>: [upstream] sni or NULL. NULL when memory ran out. Any thread. */
struct rh_backend *rh_backend_create(const struct rh_backend_conf *bc, const char *sni,
				     unsigned n_workers, bool initially_up);

static inline void
rh_backend_ref(struct rh_backend *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

/* Drops a reference; the last one frees <b> (and the TLS sessions it holds). Any thread; the caller
 * must not touch <b> afterwards. */
void rh_backend_unref(struct rh_backend *b);

/* Exchanges in flight on <b>, summed over the workers (each count read relaxed: a snapshot in time,
 * good enough for balancing). */
static inline uint32_t
rh_backend_inflight(const struct rh_backend *b)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < b->n_local; i++)
		sum += (uint32_t)atomic_load_explicit(&b->local[i].inflight, memory_order_relaxed);
	return sum;
}

/* Slots given back so far, all backends and workers together: a worker with requests waiting for a
 * slot looks at it each turn and retries them only when it moved (or the snapshot changed). */
extern atomic_uint_fast64_t rh_backend_slots_freed;

/* Takes a max_conns slot on <b>: true when it has no limit (nothing counted) or the limit is not
 * reached; then rh_backend_slot_put must follow when the request ends. Any worker. */
static inline bool
rh_backend_slot_take(struct rh_backend *b, bool *counted)
{
	unsigned max = atomic_load_explicit(&b->max_conns, memory_order_relaxed);

	*counted = false;
	if (max == 0)
		return true;
	if (atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed) >= max) {
		atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
		return false;
	}
	*counted = true;
	return true;
}

static inline void
rh_backend_slot_put(struct rh_backend *b)
{
	atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rh_backend_slots_freed, 1, memory_order_relaxed);
}

/* Single-writer counter updates: a relaxed load and store, no locked instruction. */
static inline void
rh_counter_add(atomic_uint_fast32_t *c, int32_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint_fast32_t)d,
			      memory_order_relaxed);
}

#endif
