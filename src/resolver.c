/* Name lookups (rh_resolve_name) and the resolver thread that repeats them (see resolver.h).
 *
 * The nameserver path uses glibc's libresolv on a private struct __res_state: res_ninit reads
 * resolv.conf into it, then we replace its server list with the one nameserver and its timing with
 * ours (1 s, 2 tries), and res_nquery sends the query, retransmits, matches the answer's ID,
 * question and source address, and falls back to TCP on a truncated answer. We only read the
 * answer, with ns_initparse/ns_parserr, which check every count and length against the message;
 * what they hand back (a record's type, class, owner and rdata) is checked again here before use.
 *
 * glibc's __res_state keeps IPv4 servers in nsaddr_list[] and IPv6 ones in malloc'd
 * _u._ext.nsaddrs[] (with nsaddr_list[i].sin_family = 0), and res_nclose frees the latter for
 * i < nscount. So before narrowing the list to our one server we free every nsaddrs[] entry
 * res_ninit made, and an IPv6 nameserver gets a malloc'd copy there for res_nclose to free.
 * RES_NORELOAD keeps glibc from reloading resolv.conf over our changes.
 *
 * The thread: a mutex and a condition variable (on CLOCK_MONOTONIC) for its schedule, stop and
 * "resolve now" requests, a one-round slot for its newest result, an eventfd to tell the control
 * thread. The thread and the owner each hold a reference to the struct, so that a stop which
 * gives up on a blocked lookup (RH_RESOLVER_STOP_WAIT_MS) can leave the thread to finish and free
 * it alone. */
#include "roundhouse/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/eventfd.h>
#include <sys/socket.h>

#include "roundhouse/log.h"
#include "roundhouse/timer.h" /* rh_clock_ms */

#define DNS_NAME_MAX 253      /* presentation form, without the trailing dot */
#define DNS_LABEL_MAX 63
#define DNS_MSG_MAX 65536     /* a DNS message (even over TCP) is at most 65535 bytes */
#define MAX_CHAIN 8           /* CNAMEs followed from the name asked */
#define NEVER UINT64_MAX

static void
set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}


/* ---- address lists ---- */


/* Appends <addr> to *<v> (*<n> entries) unless it is there already. The array grows by doubling
 * from 4, so its capacity follows from *<n> alone. An address that cannot be printed is skipped,
 * as config.c skips it. Returns 0 or -1 with <why>. */
static int
push_addr(struct rh_sockaddr **v, size_t *n, const struct sockaddr *addr, socklen_t len, char *why, size_t whylen)
{
	struct rh_sockaddr a;

	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
		return 0;
	if (rh_sockaddr_set(&a, addr, len) < 0)
		return 0;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].text, a.text) == 0)
			return 0;
	if (*n >= RH_RESOLVE_MAX_ADDRS) {
		set_why(why, whylen, "too many addresses (more than %d)", RH_RESOLVE_MAX_ADDRS);
		return -1;
	}
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
		size_t cap = *n == 0 ? 4 : *n * 2;
		struct rh_sockaddr *grown = realloc(*v, cap * sizeof(*grown));

		if (grown == NULL) {
			set_why(why, whylen, "out of memory");
			return -1;
		}
		*v = grown;
	}
	(*v)[(*n)++] = a;
	return 0;
}

/* IPv4 before IPv6, then by address, scope and port: a stable order whatever order DNS used. */
static int
addr_cmp(const void *pa, const void *pb)
{
	const struct rh_sockaddr *a = pa, *b = pb;
	int c;

	if (a->ss.ss_family != b->ss.ss_family)
		return a->ss.ss_family == AF_INET ? -1 : 1;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;

		c = memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr));
		if (c == 0)
			c = (int)ntohs(x->sin_port) - (int)ntohs(y->sin_port);
	} else {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;

		c = memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
		if (c == 0 && x->sin6_scope_id != y->sin6_scope_id)
			c = x->sin6_scope_id < y->sin6_scope_id ? -1 : 1;
		if (c == 0)
			c = (int)ntohs(x->sin6_port) - (int)ntohs(y->sin6_port);
	}
	return c != 0 ? c : strcmp(a->text, b->text);
}

bool
rh_resolver_same_addrs(const struct rh_sockaddr *a, size_t na, const struct rh_sockaddr *b, size_t nb)
{
	if (na != nb)
		return false;
	/* Quadratic, but at most RH_RESOLVE_MAX_ADDRS short strings once a round, and no allocation
	 * (so no failure) on the control thread. Both directions, so duplicates cannot fool it. */
	for (size_t i = 0; i < na; i++) {
		bool found = false;

		for (size_t j = 0; j < nb && !found; j++)
			found = strcmp(a[i].text, b[j].text) == 0;
		if (!found)
			return false;
	}
	for (size_t j = 0; j < nb; j++) {
		bool found = false;

		for (size_t i = 0; i < na && !found; i++)
			found = strcmp(a[i].text, b[j].text) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* ---- getaddrinfo ---- */

static void
gai_why(int rc, char *why, size_t whylen)
{
	switch (rc) {
	case EAI_NONAME:
		set_why(why, whylen, "no such name");
		break;
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		set_why(why, whylen, "no addresses");
		break;
	case EAI_AGAIN:
		set_why(why, whylen, "temporary failure (server failure or timed out)");
		break;
	case EAI_FAIL:
		set_why(why, whylen, "server failure");
		break;
	case EAI_MEMORY:
		set_why(why, whylen, "out of memory");
		break;
	case EAI_SYSTEM:
		set_why(why, whylen, "%s", strerror(errno));
		break;
	default:
		set_why(why, whylen, "%s", gai_strerror(rc));
		break;
	}
}

/* getaddrinfo(<host>, <port>) with config.c's hints plus <flags>, its IPv4 and IPv6 addresses
 * appended to *<v>. Returns 0, or getaddrinfo's EAI_ code with <why> set (EAI_MEMORY too when an
 * address cannot be added: <why> then says why). */
static int
lookup_gai(const char *host, uint16_t port, int flags, struct rh_sockaddr **v, size_t *n, char *why, size_t whylen)
{
	struct addrinfo hints, *res, *ai;
	char serv[8];
	int rc;

	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* no AI_ADDRCONFIG: it hides ::1 and 127.0.0.1 when no interface has a routable address */
	hints.ai_flags = AI_NUMERICSERV | flags;
	rc = getaddrinfo(host, serv, &hints, &res);
	if (rc != 0) {
		gai_why(rc, why, whylen);
		return rc;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (push_addr(v, n, ai->ai_addr, ai->ai_addrlen, why, whylen) < 0) {
			freeaddrinfo(res);
			return EAI_MEMORY; /* or too many: <why> says which */
		}
	}
	freeaddrinfo(res);
	return 0;
}

/* ---- one nameserver, through libresolv ---- */

/* <host> as a query name: LDH labels (and '_', which service registries use) of 1..63 bytes, at
 * most 253 bytes, one trailing dot allowed and dropped. Anything else would be refused by
 * res_nmkquery with a vaguer error, or mean something else (a backslash escape). */
static int
dns_qname(const char *host, char *out, size_t outlen)
{
	size_t len = strlen(host), label = 0;

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX || len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_'))
			return -1;
		if (++label > DNS_LABEL_MAX)
			return -1;
	}
	memcpy(out, host, len);
	out[len] = '\0';
	return 0;
}

/* Drops a trailing dot (ns_name_ntop's root is "."). */
static void
strip_dot(char *name)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		name[len - 1] = '\0';
}

static bool
is_owner(char (*owners)[NS_MAXDNAME], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(owners[i], name) == 0)
			return true;
	return false;
}

int
rh_resolve_parse_answer(const unsigned char *msg, size_t len, const char *qname, int qtype, uint16_t port,
			struct rh_sockaddr **addrs, size_t *n, char *why, size_t whylen)
{
	char owners[MAX_CHAIN + 1][NS_MAXDNAME]; /* qname and the CNAME targets reached from it */
	size_t n_owners = 1, count;
	ns_msg m;
	ns_rr rr;
	bool grew;

	if ((qtype != ns_t_a && qtype != ns_t_aaaa) || strlen(qname) >= sizeof(owners[0])) {
		set_why(why, whylen, "bad query");
		return -1;
	}
	/* ns_initparse walks every section, checking each record against the end of the message (and
	 * rejects bytes after the last one), so the counts it leaves are true ones. */
	if (len > DNS_MSG_MAX - 1 || ns_initparse(msg, (int)len, &m) < 0)
		goto malformed;
	snprintf(owners[0], sizeof(owners[0]), "%s", qname);
	strip_dot(owners[0]);
	count = ns_msg_count(m, ns_s_an);

	/* The CNAME chain first, in whatever order the records come: each pass may add one link. */
	do {
		grew = false;
		for (size_t i = 0; i < count && n_owners <= MAX_CHAIN; i++) {
			char target[NS_MAXDNAME];

			if (ns_parserr(&m, ns_s_an, (int)i, &rr) < 0)
				goto malformed;
			if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in ||
			    !is_owner(owners, n_owners, ns_rr_name(rr)))
				continue;
			/* ns_parserr checked that rdata lies within the message; the name in it is expanded
			 * with bounds against the whole message, as compression may point anywhere in it */
			if (ns_rr_rdlen(rr) == 0 ||
			    ns_name_uncompress(ns_msg_base(m), ns_msg_end(m), ns_rr_rdata(rr), target, sizeof(target)) < 0)
				goto malformed;
			strip_dot(target);
			if (is_owner(owners, n_owners, target))
				continue;
			memcpy(owners[n_owners++], target, sizeof(target));
			grew = true;
		}
	} while (grew && n_owners <= MAX_CHAIN);

	for (size_t i = 0; i < count; i++) {
		if (ns_parserr(&m, ns_s_an, (int)i, &rr) < 0)
			goto malformed;
		if ((int)ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in || !is_owner(owners, n_owners, ns_rr_name(rr)))
			continue;
		if (qtype == ns_t_a && ns_rr_rdlen(rr) == 4) {
			struct sockaddr_in sin;

			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_port = htons(port);
			memcpy(&sin.sin_addr, ns_rr_rdata(rr), 4);
			if (push_addr(addrs, n, (const struct sockaddr *)&sin, sizeof(sin), why, whylen) < 0)
				return -1;
		} else if (qtype == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
			struct sockaddr_in6 sin6;

			memset(&sin6, 0, sizeof(sin6));
			sin6.sin6_family = AF_INET6;
			sin6.sin6_port = htons(port);
			memcpy(&sin6.sin6_addr, ns_rr_rdata(rr), 16);
			if (push_addr(addrs, n, (const struct sockaddr *)&sin6, sizeof(sin6), why, whylen) < 0)
				return -1;
		}
		/* an A or AAAA record of another length is not one: skipped */
	}
	return 0;

malformed:
	set_why(why, whylen, "malformed answer");
	return -1;
}

/* Makes <ns> the one server of <st> (after res_ninit). Returns 0, or -1 when out of memory. */
static int
use_nameserver(struct __res_state *st, const struct rh_sockaddr *ns)
{
	for (int i = 0; i < MAXNS; i++) {
		free(st->_u._ext.nsaddrs[i]);
		st->_u._ext.nsaddrs[i] = NULL;
		st->_u._ext.nssocks[i] = -1;
	}
	st->_u._ext.nscount = 0; /* res_send builds its private copy of the list again */
	memset(st->nsaddr_list, 0, sizeof(st->nsaddr_list));
	if (ns->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = malloc(sizeof(*sin6));

		if (sin6 == NULL)
			return -1;
		memcpy(sin6, &ns->ss, sizeof(*sin6));
		st->nsaddr_list[0].sin_family = 0; /* glibc: "the address is in _u._ext.nsaddrs[0]" */
		st->_u._ext.nsaddrs[0] = sin6;
	} else {
		memcpy(&st->nsaddr_list[0], &ns->ss, sizeof(st->nsaddr_list[0]));
	}
	st->nscount = 1;
	return 0;
}

enum { Q_OK, Q_NODATA, Q_FAIL };

/* One query of type <qtype> for <qname>: Q_OK with addresses appended to *<v>, Q_NODATA (the name
 * exists, no such records), or Q_FAIL with <why>. */
static int
query(struct __res_state *st, const char *qname, int qtype, uint16_t port, unsigned char *ans,
      struct rh_sockaddr **v, size_t *n, char *why, size_t whylen)
{
	size_t before = *n;
	uint64_t t0 = rh_clock_ms();
	int len;

	errno = 0;
	len = res_nquery(st, qname, ns_c_in, qtype, ans, DNS_MSG_MAX);
	if (len < 0) {
		switch (st->res_h_errno) {
		case NO_DATA:
			return Q_NODATA;
		case HOST_NOT_FOUND:
			set_why(why, whylen, "no such name");
			break;
		case TRY_AGAIN:
			/* glibc 2.36's res_send leaves ETIMEDOUT both when the server never answered and when it
			 * answered SERVFAIL, REFUSED or NOTIMP (it then tries the next server, and there is
			 * none), ECONNREFUSED when the query could not be delivered (ICMP unreachable). Only a
			 * real timeout takes the first retransmission interval. */
			if (errno == ETIMEDOUT && rh_clock_ms() - t0 >= (uint64_t)st->retrans * 1000)
				set_why(why, whylen, "timed out");
			else if (errno == ETIMEDOUT)
				set_why(why, whylen, "server failure (SERVFAIL, REFUSED or NOTIMP)");
			else if (errno == ECONNREFUSED)
				set_why(why, whylen, "nameserver unreachable (connection refused)");
			else
				set_why(why, whylen, "no answer: %s", errno != 0 ? strerror(errno) : "unknown error");
			break;
		case NO_RECOVERY:
			set_why(why, whylen, "server failure (FORMERR)");
			break;
		default:
			set_why(why, whylen, "lookup failed");
			break;
		}
		return Q_FAIL;
	}
	if (len > DNS_MSG_MAX - 1) { /* res_nquery gives an answer's full length even when it did not fit */
		set_why(why, whylen, "malformed answer");
		return Q_FAIL;
	}
	if (rh_resolve_parse_answer(ans, (size_t)len, qname, qtype, port, v, n, why, whylen) < 0)
		return Q_FAIL;
	return *n > before ? Q_OK : Q_NODATA;
}

static int
lookup_dns(const char *host, uint16_t port, const struct rh_sockaddr *ns, struct rh_sockaddr **v, size_t *n,
	   char *why, size_t whylen)
{
	char qname[RH_RESOLVE_HOST_LEN];
	struct __res_state st;
	unsigned char *ans;
	int rc = -1, q;

	if (ns->ss.ss_family != AF_INET && ns->ss.ss_family != AF_INET6) {
		set_why(why, whylen, "bad nameserver address");
		return -1;
	}
	if (dns_qname(host, qname, sizeof(qname)) < 0) {
		set_why(why, whylen, "bad name");
		return -1;
	}
	ans = malloc(DNS_MSG_MAX);
	if (ans == NULL) {
		set_why(why, whylen, "out of memory");
		return -1;
	}
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0) {
		set_why(why, whylen, "cannot set up the DNS resolver");
		free(ans);
		return -1;
	}
	if (use_nameserver(&st, ns) < 0) {
		set_why(why, whylen, "out of memory");
		goto out;
	}
	st.retrans = 1; /* seconds before the one retransmission */
	st.retry = 2;
	st.options &= ~(unsigned long)(RES_USEVC | RES_STAYOPEN | RES_ROTATE | RES_DEBUG);
#ifdef RES_NOAAAA
	st.options &= ~(unsigned long)RES_NOAAAA;
#endif
#ifdef RES_NORELOAD
	st.options |= RES_NORELOAD;
#endif

	/* A first. A name that does not exist, or a server that does not answer, is not asked again
	 * for AAAA: that would only double the wait. Any other failure of either query fails the name
	 * as a whole, since half an address set would retire the other half. */
	q = query(&st, qname, ns_t_a, port, ans, v, n, why, whylen);
	if (q == Q_FAIL)
		goto out;
	q = query(&st, qname, ns_t_aaaa, port, ans, v, n, why, whylen);
	if (q == Q_FAIL)
		goto out;
	rc = 0;
out:
	res_nclose(&st);
	free(ans);
	return rc;
}

int
rh_resolve_name(const char *host, uint16_t port, const struct rh_sockaddr *nameserver,
		struct rh_sockaddr **out, size_t *n_out, char *why, size_t whylen)
{
	struct rh_sockaddr *v = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (host == NULL || host[0] == '\0' || strnlen(host, RH_RESOLVE_HOST_LEN) >= RH_RESOLVE_HOST_LEN) {
		set_why(why, whylen, "bad name");
		return -1;
	}
	/* A numeric host is its own answer: never DNS, not even with a nameserver. */
	rc = lookup_gai(host, port, AI_NUMERICHOST, &v, &n, why, whylen);
	if (rc == EAI_NONAME) {
		if (nameserver == NULL)
			rc = lookup_gai(host, port, 0, &v, &n, why, whylen);
		else
			rc = lookup_dns(host, port, nameserver, &v, &n, why, whylen);
	}
	if (rc == 0 && n == 0) {
		set_why(why, whylen, "no addresses");
		rc = -1;
	}
	if (rc != 0) {
		free(v);
		return -1;
	}
	qsort(v, n, sizeof(*v), addr_cmp);
	*out = v;
	*n_out = n;
	if (whylen > 0)
		why[0] = '\0';
	return 0;
}

/* ---- the resolver thread ---- */

struct rh_resolver {
	struct rh_resolver_name *names; /* [n] */
	size_t n;
	uint32_t interval_ms;
	bool has_nameserver;
	struct rh_sockaddr nameserver;
	int fd; /* eventfd: a round is ready */
	pthread_t thread;
	atomic_bool stop_flag;  /* read between names, without the lock */
	_Atomic uint64_t rounds;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast for every change below */
	/* under lock: */
	bool started;  /* a thread was created */
	bool stopping; /* stop asked; final */
	bool finished; /* the thread joined or detached (by rh_resolver_stop) */
	bool exited;   /* the thread is past its last use of anything but the lock and refs */
	bool now;      /* rh_resolver_resolve_now asked for a round */
	unsigned refs; /* the owner, and the thread while it runs */
	struct rh_resolver_round *ready; /* the newest round, not yet taken */
};

static void
resolver_free(struct rh_resolver *r)
{
	rh_resolver_round_free(r->ready);
	close(r->fd);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->names);
	free(r);
}

struct rh_resolver *
rh_resolver_create(const struct rh_resolver_name *names, size_t n, uint32_t interval_ms,
		   const struct rh_sockaddr *nameserver, char *err, size_t errlen)
{
	struct rh_resolver *r;
	pthread_condattr_t ca;
	int rc;

	for (size_t i = 0; i < n; i++)
		if (memchr(names[i].host, '\0', sizeof(names[i].host)) == NULL) {
			snprintf(err, errlen, "resolver: name %zu is not NUL-terminated", i);
			return NULL;
		}
	if (nameserver != NULL && ((nameserver->ss.ss_family != AF_INET && nameserver->ss.ss_family != AF_INET6) ||
				   nameserver->len > sizeof(nameserver->ss))) {
		snprintf(err, errlen, "resolver: the nameserver is not an IPv4 or IPv6 address");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto nomem;
	r->names = calloc(n ? n : 1, sizeof(*r->names));
	if (r->names == NULL) {
		free(r);
		goto nomem;
	}
	if (n > 0)
		memcpy(r->names, names, n * sizeof(*names));
	r->n = n;
	r->interval_ms = interval_ms;
	if (nameserver != NULL) {
		r->has_nameserver = true;
		r->nameserver = *nameserver;
	}
	atomic_init(&r->stop_flag, false);
	atomic_init(&r->rounds, 0);
	r->refs = 1;

	r->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->fd == -1) {
		snprintf(err, errlen, "resolver: eventfd: %s", strerror(errno));
		goto fail_fd;
	}
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "resolver: pthread_mutex_init: %s", strerror(rc));
		goto fail_mutex;
	}
	/* Monotonic, so that a clock step never makes a round early or late by hours. */
	rc = pthread_condattr_init(&ca);
	if (rc == 0) {
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (rc == 0)
			rc = pthread_cond_init(&r->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc != 0) {
		snprintf(err, errlen, "resolver: pthread_cond_init: %s", strerror(rc));
		goto fail_cond;
	}
	return r;

fail_cond:
	pthread_mutex_destroy(&r->lock);
fail_mutex:
	close(r->fd);
fail_fd:
	free(r->names);
	free(r);
	return NULL;
nomem:
	snprintf(err, errlen, "resolver: out of memory");
	return NULL;
}


int
rh_resolver_fd(const struct rh_resolver *r)
{
	return r->fd;
}


void
rh_resolver_round_free(struct rh_resolver_round *round)
{
	if (round == NULL)
		return;
	for (size_t i = 0; i < round->n; i++)
		free(round->answers[i].addrs);
	free(round->answers);
	free(round);
}

/* Every name once. NULL when stopped in the middle, or out of memory (*<failed> then set). */
static struct rh_resolver_round *
run_round(struct rh_resolver *r, bool *failed)
{
	struct rh_resolver_round *round = calloc(1, sizeof(*round));

	*failed = false;
	if (round == NULL || (round->answers = calloc(r->n ? r->n : 1, sizeof(*round->answers))) == NULL) {
		free(round);
		*failed = true;
		return NULL;
	}
	round->n = r->n;
	for (size_t i = 0; i < r->n; i++) {
		struct rh_resolver_answer *a = &round->answers[i];

		if (atomic_load_explicit(&r->stop_flag, memory_order_relaxed)) {
			rh_resolver_round_free(round);
			return NULL;
		}
		a->ok = rh_resolve_name(r->names[i].host, r->names[i].port, r->has_nameserver ? &r->nameserver : NULL,
					&a->addrs, &a->n_addrs, a->why, sizeof(a->why)) == 0;
		if (!a->ok)
			*failed = true;
	}
	return round;
}

/* When the round after one that ends now starts. */
static uint64_t
next_round_at(const struct rh_resolver *r, bool failed)
{
	uint32_t d = r->interval_ms;

	if (failed && (d == 0 || d > RH_RESOLVER_RETRY_MS))
		d = RH_RESOLVER_RETRY_MS;
	return d == 0 ? NEVER : rh_clock_ms() + d;
}

/* pthread_cond_timedwait until <deadline_ms> (monotonic), or an untimed wait for NEVER. */
static void
wait_until(struct rh_resolver *r, uint64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms == NEVER) {
		pthread_cond_wait(&r->cond, &r->lock);
		return;
	}
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000;
	pthread_cond_timedwait(&r->cond, &r->lock, &ts);
}

static void *
resolver_main(void *arg)
{
	struct rh_resolver *r = arg;
	uint64_t next = r->interval_ms > 0 ? rh_clock_ms() + r->interval_ms : NEVER;
	bool last;

	rh_log_set_thread_tag("resolver");
	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct rh_resolver_round *round;
		bool failed;

		while (!r->stopping && !r->now && (next == NEVER || rh_clock_ms() < next))
			wait_until(r, next);
		if (r->stopping)
			break;
		r->now = false;
		pthread_mutex_unlock(&r->lock);

		round = run_round(r, &failed);

		pthread_mutex_lock(&r->lock);
		if (r->stopping) {
			rh_resolver_round_free(round);
			break;
		}
		if (round != NULL) {
			uint64_t one = 1;

			rh_resolver_round_free(r->ready); /* not taken in time: this one is newer */
			r->ready = round;
			atomic_fetch_add_explicit(&r->rounds, 1, memory_order_relaxed);
			/* Cannot fail short of 2^64 - 1 rounds not taken. */
			while (write(r->fd, &one, sizeof(one)) == -1 && errno == EINTR)
				;
		}
		next = next_round_at(r, failed);
	}
	r->exited = true;
	pthread_cond_broadcast(&r->cond);
	last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (last) /* rh_resolver_stop gave up waiting and the owner is gone: ours to free */
		resolver_free(r);
	return NULL;
}


int
rh_resolver_start(struct rh_resolver *r)
{
	sigset_t all, old;
	int rc;

	pthread_mutex_lock(&r->lock);
	if (r->stopping) {
		pthread_mutex_unlock(&r->lock);
		errno = EINVAL;
		return -1;
	}
	if (r->started) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	r->refs++; /* the thread's */
	/* The thread inherits a full signal mask: signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&r->thread, NULL, resolver_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		r->refs--;
		pthread_mutex_unlock(&r->lock);
		errno = rc;
		return -1;
	}
	r->started = true;
	pthread_mutex_unlock(&r->lock);
	return 0;
}


void
rh_resolver_resolve_now(struct rh_resolver *r)
{
	pthread_mutex_lock(&r->lock);
	r->now = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}


struct rh_resolver_round *
rh_resolver_take(struct rh_resolver *r)
{
	struct rh_resolver_round *round;
	uint64_t count;

	/* Drain first: a round stored after this read signals again, so none is missed (at worst a
	 * later wake-up finds the slot empty). */
	while (read(r->fd, &count, sizeof(count)) == -1 && errno == EINTR)
		;
	pthread_mutex_lock(&r->lock);
	round = r->ready;
	r->ready = NULL;
	pthread_mutex_unlock(&r->lock);
	return round;
}


void
rh_resolver_stop(struct rh_resolver *r)
{
	uint64_t deadline;
	bool exited;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	atomic_store_explicit(&r->stop_flag, true, memory_order_relaxed);
	if (!r->started || r->finished) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	pthread_cond_broadcast(&r->cond);
	deadline = rh_clock_ms() + RH_RESOLVER_STOP_WAIT_MS;
	while (!r->exited && rh_clock_ms() < deadline)
		wait_until(r, deadline);
	exited = r->exited;
	r->finished = true;
	pthread_mutex_unlock(&r->lock);
	if (exited) {
		pthread_join(r->thread, NULL);
	} else {
		/* A lookup is still blocked (resolver.h: how long one can take). The thread holds its own
		 * reference and frees the struct if it outlives rh_resolver_destroy. */
		pthread_detach(r->thread);
		rh_log_warn("resolver: a lookup still blocks after %d ms; not waiting for it", RH_RESOLVER_STOP_WAIT_MS);
	}
}


void
rh_resolver_destroy(struct rh_resolver *r)
{
	bool last;

	if (r == NULL)
		return;
	rh_resolver_stop(r);
	pthread_mutex_lock(&r->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (last)
		resolver_free(r);
}


uint64_t
rh_resolver_rounds(const struct rh_resolver *r)
{
	return atomic_load_explicit(&r->rounds, memory_order_relaxed);
}
