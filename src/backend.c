/* Backend objects: creation, references, and what the last reference frees. */
#include "roundhouse/backend.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

atomic_uint_fast64_t rh_backend_slots_freed;

/* The host part of "name:port" or "[v6]:port" into <out>. */
static void
spec_host(const char *spec, char *out, size_t len)
{
	const char *end;

	if (spec[0] == '[') {
		spec++;
		end = strchr(spec, ']');
	} else {
		end = strrchr(spec, ':');
	}
	size_t n = end ? (size_t)(end - spec) : strlen(spec);
	if (n >= len)
		n = len - 1;
	memcpy(out, spec, n);
	out[n] = '\0';
}

static bool
is_ip_text(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

struct rh_backend *
rh_backend_create(const struct rh_backend_conf *bc, const char *sni, unsigned n_workers,
		  bool initially_up)
{
	struct rh_backend *b;
	char host[RH_ADDR_TEXT_LEN];

	if (n_workers == 0)
		n_workers = 1;
	/* aligned_alloc: local[] entries are cache-line aligned */
	size_t size = sizeof(*b) + (size_t)n_workers * sizeof(b->local[0]);
	size = (size + 63) & ~(size_t)63;
	b = aligned_alloc(64, size);
	if (!b)
		return NULL;
	memset(b, 0, size);
	b->addr = bc->addr;
	memcpy(b->name, bc->addr.text, sizeof(b->name));
	b->name[sizeof(b->name) - 1] = '\0';
	memcpy(b->spec, bc->spec, sizeof(b->spec));
	b->spec[sizeof(b->spec) - 1] = '\0';
	spec_host(b->spec, host, sizeof(host));
	b->tls_name = strdup(sni ? sni : host);
	if (!b->tls_name) {
		free(b);
		return NULL;
	}
	b->tls_name_is_ip = is_ip_text(b->tls_name);
	b->up = initially_up;
	atomic_init(&b->state, RH_BACKEND_UNKNOWN);
	atomic_init(&b->state_since, (int64_t)time(NULL));
	atomic_init(&b->max_conns, bc->max_conns);
	atomic_init(&b->active, 0);
	for (int i = 0; i < RH_BACKEND_STATES; i++)
		atomic_init(&b->transitions[i], 0);
	b->n_local = n_workers;
	atomic_init(&b->refs, 1);
	atomic_init(&b->retired, false);
	atomic_init(&b->tls_failure_logged, 0);
	for (unsigned i = 0; i < n_workers; i++) {
		atomic_init(&b->local[i].inflight, 0);
		atomic_init(&b->local[i].failures, 0);
		atomic_init(&b->local[i].last_failure, 0);
	}
	return b;
}

void
rh_backend_unref(struct rh_backend *b)
{
	/* acq_rel: every use of <b> by the other holders happens before the free */
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < b->n_local; i++)
		SSL_SESSION_free(b->local[i].tls_session);
	free(b->tls_name);
	free(b);
}

const char *
rh_backend_state_name(enum rh_backend_state s)
{
	static const char *const names[] = {"unknown", "up", "down", "draining"};

	return (unsigned)s < RH_BACKEND_STATES ? names[s] : "?";
}

const char *
rh_backend_failure_name(enum rh_backend_failure f)
{
	static const char *const names[] = {"connect failed", "connection closed or reset", "timeout",
					    "invalid response"};

	return (unsigned)f < RH_FAIL_KINDS ? names[f] : "?";
}
