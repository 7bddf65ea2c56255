/* Unit tests for src/resolver.c, loopback only.
 *
 * The nameserver path is tested against a small DNS server that runs in a thread of the test: a
 * UDP socket on 127.0.0.1 (or ::1) answering A and AAAA queries from a table the test changes,
 * NXDOMAIN for names it does not know, and on demand SERVFAIL, silence, or a crafted answer section
 * (hostile input). The answer parser is also fed crafted and random messages directly. The
 * system path is only asked about "localhost" (/etc/hosts), so nothing leaves the machine. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "roundhouse/config.h"
#include "roundhouse/resolver.h"

#define T_A 1
#define T_CNAME 5
#define T_TXT 16
#define T_AAAA 28

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- DNS messages ---- */

struct msg {
	unsigned char b[65536];
	size_t len;
};

static void
put8(struct msg *m, unsigned v)
{
	ck_assert_uint_lt(m->len, sizeof(m->b));
	m->b[m->len++] = (unsigned char)v;
}

static void
put16(struct msg *m, unsigned v)
{
	put8(m, (v >> 8) & 0xff);
	put8(m, v & 0xff);
}

static void
put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

static void
put_bytes(struct msg *m, const void *p, size_t n)
{
	ck_assert_uint_le(m->len + n, sizeof(m->b));
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

/* "a.b.c" as labels, uncompressed. */
static void
put_name(struct msg *m, const char *name)
{
	while (*name != '\0') {
		size_t l = strcspn(name, ".");

		put8(m, (unsigned)l);
		put_bytes(m, name, l);
		name += l;
		if (*name == '.')
			name++;
	}
	put8(m, 0);
}

static void
put_header(struct msg *m, uint16_t id, uint16_t flags, unsigned qd, unsigned an)
{
	put16(m, id);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
}

/* A record whose owner is a pointer to the question's name (offset 12). */
static void
put_rr_ptr(struct msg *m, unsigned type, unsigned rdlen, const void *rdata, size_t n)
{
	put16(m, 0xc00c);
	put16(m, type);
	put16(m, 1);
	put32(m, 1);
	put16(m, rdlen);
	put_bytes(m, rdata, n);
}

static void
put_rr(struct msg *m, const char *owner, unsigned type, const void *rdata, size_t n)
{
	put_name(m, owner);
	put16(m, type);
	put16(m, 1);
	put32(m, 1);
	put16(m, (unsigned)n);
	put_bytes(m, rdata, n);
}

/* A response to a query for <name>/<qtype>: header and question, no records yet. */
static void
start_answer(struct msg *m, const char *name, unsigned qtype, unsigned an)
{
	m->len = 0;
	put_header(m, 0x1234, 0x8180, 1, an);
	put_name(m, name);
	put16(m, qtype);
	put16(m, 1);
}

/* ---- the test's DNS server ---- */

enum dns_mode {
	DNS_TABLE,    /* answers from the table */
	DNS_SILENT,   /* never answers */
	DNS_SERVFAIL, /* rcode 2 */
	DNS_RAW,      /* header (an = raw_an) and question of the query, then raw[] as the answer section */
	DNS_RANDOM,   /* header and question, then random bytes with a random answer count */
};

struct dns_record {
	char name[128]; /* lower case, no trailing dot */
	int type;       /* T_A, T_AAAA, T_CNAME, T_TXT */
	unsigned char data[64];
	size_t len;
};

struct dns_server {
	int fd, stopfd;
	int family;
	uint16_t port;
	pthread_t thread;
	pthread_mutex_t lock;
	struct dns_record rec[64];
	size_t n_rec;
	enum dns_mode mode;
	struct msg raw; /* DNS_RAW */
	unsigned raw_an;
	uint64_t rng;
	atomic_uint queries;
};

static struct dns_server dns;

static void
dns_clear(void)
{
	pthread_mutex_lock(&dns.lock);
	dns.n_rec = 0;
	pthread_mutex_unlock(&dns.lock);
}

/* Adds "name A|AAAA address" or "name CNAME target" or "name TXT text". */
static void
dns_add(const char *name, int type, const char *value)
{
	struct dns_record *r;

	pthread_mutex_lock(&dns.lock);
	ck_assert_uint_lt(dns.n_rec, sizeof(dns.rec) / sizeof(dns.rec[0]));
	r = &dns.rec[dns.n_rec++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->type = type;
	if (type == T_A) {
		ck_assert_int_eq(inet_pton(AF_INET, value, r->data), 1);
		r->len = 4;
	} else if (type == T_AAAA) {
		ck_assert_int_eq(inet_pton(AF_INET6, value, r->data), 1);
		r->len = 16;
	} else if (type == T_CNAME) {
		struct msg m = {.len = 0};

		put_name(&m, value);
		ck_assert_uint_le(m.len, sizeof(r->data));
		memcpy(r->data, m.b, m.len);
		r->len = m.len;
	} else {
		r->len = strlen(value);
		r->data[0] = (unsigned char)r->len;
		memcpy(r->data + 1, value, r->len);
		r->len++;
	}
	pthread_mutex_unlock(&dns.lock);
}

static void
dns_set_mode(enum dns_mode mode)
{
	pthread_mutex_lock(&dns.lock);
	dns.mode = mode;
	pthread_mutex_unlock(&dns.lock);
}

static uint64_t
rng_next(uint64_t *s)
{
	/* splitmix64: enough for garbage */
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* The records of <name> (and, through CNAMEs, of their targets) of type <qtype>, as the answer. */
static unsigned
dns_lookup(struct msg *out, const char *qname, int qtype, bool *known)
{
	char name[256];
	unsigned an = 0;

	snprintf(name, sizeof(name), "%s", qname);
	*known = false;
	for (int depth = 0; depth < 8; depth++) {
		char next[256] = "";

		for (size_t i = 0; i < dns.n_rec; i++) {
			struct dns_record *r = &dns.rec[i];

			if (strcasecmp(r->name, name) != 0)
				continue;
			*known = true;
			if (r->type == T_CNAME) {
				/* the target as text, for the next turn */
				size_t p = 0, o = 0;

				while (r->data[p] != 0 && o + r->data[p] + 2 < sizeof(next)) {
					if (o > 0)
						next[o++] = '.';
					memcpy(next + o, r->data + p + 1, r->data[p]);
					o += r->data[p];
					p += (size_t)r->data[p] + 1;
				}
				next[o] = '\0';
			}
			if (r->type == qtype || r->type == T_CNAME) {
				put_rr(out, r->name, (unsigned)r->type, r->data, r->len);
				an++;
			}
		}
		if (next[0] == '\0')
			break;
		snprintf(name, sizeof(name), "%s", next);
	}
	return an;
}

static void
dns_answer(const unsigned char *q, size_t qlen, const struct sockaddr *from, socklen_t fromlen)
{
	static struct msg out; /* the server thread's own */
	char qname[256];
	size_t p = 12, o = 0, qend;
	int qtype;
	unsigned an = 0, rcode = 0;
	bool known;

	if (qlen < 12 || q[4] != 0 || q[5] != 1)
		return;
	while (p < qlen && q[p] != 0) {
		size_t l = q[p];

		if (l > 63 || p + 1 + l >= qlen || o + l + 2 >= sizeof(qname))
			return;
		if (o > 0)
			qname[o++] = '.';
		memcpy(qname + o, q + p + 1, l);
		o += l;
		p += l + 1;
	}
	qname[o] = '\0';
	if (p + 5 > qlen)
		return;
	qtype = q[p + 1] << 8 | q[p + 2];
	qend = p + 5;

	out.len = 0;
	put_bytes(&out, q, qend); /* header and question, fixed up below */
	out.b[4] = 0;
	out.b[5] = 1; /* one question (an EDNS OPT in the query is not echoed) */
	memset(out.b + 6, 0, 6);
	pthread_mutex_lock(&dns.lock);
	switch (dns.mode) {
	case DNS_SILENT:
		pthread_mutex_unlock(&dns.lock);
		return;
	case DNS_SERVFAIL:
		rcode = 2;
		break;
	case DNS_RAW:
		put_bytes(&out, dns.raw.b, dns.raw.len);
		an = dns.raw_an;
		break;
	case DNS_RANDOM: {
		size_t n = rng_next(&dns.rng) % 200;

		an = (unsigned)(rng_next(&dns.rng) % 8);
		for (size_t i = 0; i < n; i++)
			put8(&out, (unsigned)(rng_next(&dns.rng) & 0xff));
		break;
	}
	case DNS_TABLE:
		an = dns_lookup(&out, qname, qtype, &known);
		if (!known)
			rcode = 3; /* NXDOMAIN */
		break;
	}
	pthread_mutex_unlock(&dns.lock);
	out.b[2] = 0x84 | (q[2] & 0x01); /* QR, AA, the query's RD */
	out.b[3] = (unsigned char)(0x80 | rcode);
	out.b[6] = (unsigned char)(an >> 8);
	out.b[7] = (unsigned char)(an & 0xff);
	sendto(dns.fd, out.b, out.len, 0, from, fromlen);
}

static void *
dns_main(void *arg)
{
	unsigned char q[4096];

	(void)arg;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = dns.fd, .events = POLLIN}, {.fd = dns.stopfd, .events = POLLIN}};
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n;

		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents)
			return NULL;
		n = recvfrom(dns.fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
		if (n <= 0)
			continue;
		atomic_fetch_add(&dns.queries, 1);
		dns_answer(q, (size_t)n, (struct sockaddr *)&from, fromlen);
	}
}

/* Starts the server on 127.0.0.1 (or ::1 with <family> AF_INET6). False when that family is not
 * available. */
static bool
dns_start(int family)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(&dns, 0, sizeof(dns));
	pthread_mutex_init(&dns.lock, NULL);
	dns.family = family;
	dns.rng = 42;
	dns.fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (dns.fd < 0)
		return false;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	}
	if (bind(dns.fd, (struct sockaddr *)&ss, len) < 0) {
		close(dns.fd);
		return false;
	}
	ck_assert_int_eq(getsockname(dns.fd, (struct sockaddr *)&ss, &len), 0);
	dns.port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					    : ((struct sockaddr_in *)&ss)->sin_port);
	dns.stopfd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(dns.stopfd, 0);
	ck_assert_int_eq(pthread_create(&dns.thread, NULL, dns_main, NULL), 0);
	return true;
}

static void
dns_stop(void)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(dns.stopfd, &one, sizeof(one)), (ssize_t)sizeof(one));
	pthread_join(dns.thread, NULL);
	close(dns.fd);
	close(dns.stopfd);
	pthread_mutex_destroy(&dns.lock);
}

/* An rh_sockaddr for <text> ("127.0.0.1" or "::1") and <port>, as config.c would make it. */
static struct rh_sockaddr
nameserver(int family, uint16_t port)
{
	struct rh_sockaddr ns;

	memset(&ns, 0, sizeof(ns));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ns.ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(port);
		ns.len = sizeof(*s6);
		snprintf(ns.text, sizeof(ns.text), "[::1]:%u", (unsigned)port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ns.ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons(port);
		ns.len = sizeof(*s4);
		snprintf(ns.text, sizeof(ns.text), "127.0.0.1:%u", (unsigned)port);
	}
	return ns;
}

/* "a b c": the texts of a list, for comparisons in one assertion. */
static const char *
texts(const struct rh_sockaddr *v, size_t n)
{
	static char buf[4096];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", v[i].text);
	return buf;
}

/* rh_resolve_name against the test server; returns its result, the list's texts in *<got>. */
static int
ask(const char *host, uint16_t port, const char **got, char *why, size_t whylen)
{
	struct rh_sockaddr ns = nameserver(dns.family, dns.port);
	struct rh_sockaddr *v = (struct rh_sockaddr *)1;
	size_t n = 99;
	int rc = rh_resolve_name(host, port, &ns, &v, &n, why, whylen);

	if (rc == 0) {
		ck_assert_ptr_nonnull(v);
		ck_assert_uint_ge(n, 1);
		*got = texts(v, n);
	} else {
		ck_assert_ptr_null(v);
		ck_assert_uint_eq(n, 0);
		*got = "";
	}
	free(v);
	return rc;
}

/* ---- rh_resolve_name ---- */

START_TEST(numeric_hosts)
{
	struct rh_sockaddr *v;
	size_t n;
	char why[RH_RESOLVE_WHY_LEN];

	ck_assert_int_eq(rh_resolve_name("127.0.0.1", 8081, NULL, &v, &n, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].text, "127.0.0.1:8081");
	ck_assert_int_eq(v[0].ss.ss_family, AF_INET);
	ck_assert_uint_eq(v[0].len, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&v[0].ss)->sin_port), 8081);
	ck_assert_str_eq(why, "");
	free(v);

	ck_assert_int_eq(rh_resolve_name("::1", 80, NULL, &v, &n, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].text, "[::1]:80");
	ck_assert_uint_eq(v[0].len, sizeof(struct sockaddr_in6));
	free(v);

	/* A numeric host never asks the nameserver, even a silent one. */
	ck_assert(dns_start(AF_INET));
	dns_set_mode(DNS_SILENT);
	struct rh_sockaddr ns = nameserver(AF_INET, dns.port);
	uint64_t t0 = now_ms();

	ck_assert_int_eq(rh_resolve_name("10.1.2.3", 443, &ns, &v, &n, why, sizeof(why)), 0);
	ck_assert_str_eq(texts(v, n), "10.1.2.3:443");
	free(v);
	ck_assert_int_eq(rh_resolve_name("2001:db8::7", 443, &ns, &v, &n, why, sizeof(why)), 0);
	ck_assert_str_eq(texts(v, n), "[2001:db8::7]:443");
	free(v);
	ck_assert_uint_lt(now_ms() - t0, 500);
	ck_assert_uint_eq(atomic_load(&dns.queries), 0);
	dns_stop();
}
END_TEST

START_TEST(bad_names)
{
	struct rh_sockaddr *v = NULL;
	size_t n = 0;
	char why[RH_RESOLVE_WHY_LEN];
	char longname[300];
	const char *got;

	ck_assert_int_eq(rh_resolve_name("", 80, NULL, &v, &n, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "bad name");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(rh_resolve_name(longname, 80, NULL, &v, &n, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "bad name");

	/* With a nameserver, what cannot be a DNS name is refused before anything is sent. */
	ck_assert(dns_start(AF_INET));
	ck_assert_int_eq(ask("a..b", 80, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "bad name");
	ck_assert_int_eq(ask("we b.test", 80, &got, why, sizeof(why)), -1);
	ck_assert_int_eq(ask("a\\.b", 80, &got, why, sizeof(why)), -1);
	memset(longname, 'a', 64);
	strcpy(longname + 64, ".test");
	ck_assert_int_eq(ask(longname, 80, &got, why, sizeof(why)), -1); /* a 64-byte label */
	ck_assert_int_eq(ask(".", 80, &got, why, sizeof(why)), -1);
	ck_assert_uint_eq(atomic_load(&dns.queries), 0);
	/* A short <why> buffer is cut, not overrun. */
	char tiny[4];
	ck_assert_int_eq(rh_resolve_name("", 80, NULL, &v, &n, tiny, sizeof(tiny)), -1);
	ck_assert_str_eq(tiny, "bad");
	dns_stop();
}
END_TEST

START_TEST(system_localhost)
{
	struct rh_sockaddr *v;
	size_t n;
	char why[RH_RESOLVE_WHY_LEN];

	ck_assert_msg(rh_resolve_name("localhost", 8080, NULL, &v, &n, why, sizeof(why)) == 0, "localhost: %s", why);
	ck_assert_uint_ge(n, 1);
	ck_assert_str_eq(v[0].text, "127.0.0.1:8080"); /* IPv4 first */
	for (size_t i = 0; i < n; i++) {
		ck_assert(v[i].ss.ss_family == AF_INET || v[i].ss.ss_family == AF_INET6);
		for (size_t j = i + 1; j < n; j++)
			ck_assert_str_ne(v[i].text, v[j].text);
		if (v[i].ss.ss_family == AF_INET6)
			ck_assert_str_eq(v[i].text, "[::1]:8080");
	}
	free(v);
}
END_TEST

START_TEST(dns_addresses)
{
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;

	ck_assert(dns_start(AF_INET));
	dns_add("web.test", T_A, "10.0.0.10");
	dns_add("web.test", T_A, "10.0.0.2");
	dns_add("web.test", T_AAAA, "2001:db8::1");
	dns_add("web.test", T_A, "10.0.0.2"); /* twice in the answer: once in the list */
	dns_add("v4.test", T_A, "192.0.2.1");
	dns_add("v6.test", T_AAAA, "2001:db8::2");
	dns_add("txt.test", T_TXT, "hello");

	ck_assert_msg(ask("web.test", 8080, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(got, "10.0.0.2:8080 10.0.0.10:8080 [2001:db8::1]:8080");
	ck_assert_str_eq(why, "");
	/* case and a trailing dot do not matter */
	ck_assert_msg(ask("WEB.Test.", 80, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(got, "10.0.0.2:80 10.0.0.10:80 [2001:db8::1]:80");
	/* one family only is fine (the other query is NODATA) */
	ck_assert_msg(ask("v4.test", 80, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(got, "192.0.2.1:80");
	ck_assert_msg(ask("v6.test", 80, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(got, "[2001:db8::2]:80");
	/* a name with neither */
	ck_assert_int_eq(ask("txt.test", 80, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "no addresses");

	/* NXDOMAIN: one query (A), not two */
	unsigned before = atomic_load(&dns.queries);
	ck_assert_int_eq(ask("nope.test", 80, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "no such name");
	ck_assert_uint_eq(atomic_load(&dns.queries) - before, 1);
	dns_stop();
}
END_TEST

START_TEST(dns_cname)
{
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;

	ck_assert(dns_start(AF_INET));
	dns_add("alias.test", T_CNAME, "mid.test");
	dns_add("mid.test", T_CNAME, "real.test");
	dns_add("real.test", T_A, "10.9.9.9");
	dns_add("real.test", T_AAAA, "2001:db8::9");
	ck_assert_msg(ask("alias.test", 80, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(got, "10.9.9.9:80 [2001:db8::9]:80");

	/* A record for a name the question did not lead to is ignored. */
	struct msg *m = calloc(1, sizeof(*m));
	unsigned char a[4] = {6, 6, 6, 6};

	put_rr(m, "evil.test", T_A, a, 4);
	dns.raw = *m;
	dns.raw_an = 1;
	dns_set_mode(DNS_RAW);
	ck_assert_int_eq(ask("victim.test", 80, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "no addresses");
	free(m);
	dns_stop();
}
END_TEST

START_TEST(dns_servfail_and_refused)
{
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;
	uint64_t t0;

	ck_assert(dns_start(AF_INET));
	dns_add("web.test", T_A, "10.0.0.1");
	dns_set_mode(DNS_SERVFAIL);
	t0 = now_ms();
	ck_assert_int_eq(ask("web.test", 80, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "server failure (SERVFAIL, REFUSED or NOTIMP)");
	ck_assert_uint_lt(now_ms() - t0, 1000);
	dns_stop();

	/* Nothing listening: ICMP port unreachable, at once. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);

	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, len), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	struct rh_sockaddr ns = nameserver(AF_INET, ntohs(sin.sin_port));
	struct rh_sockaddr *v;
	size_t n;

	t0 = now_ms();
	ck_assert_int_eq(rh_resolve_name("web.test", 80, &ns, &v, &n, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "nameserver unreachable (connection refused)");
	ck_assert_uint_lt(now_ms() - t0, 1000);
}
END_TEST

START_TEST(dns_timeout)
{
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;
	uint64_t t0, took;

	ck_assert(dns_start(AF_INET));
	dns_set_mode(DNS_SILENT);
	t0 = now_ms();
	ck_assert_int_eq(ask("web.test", 80, &got, why, sizeof(why)), -1);
	took = now_ms() - t0;
	ck_assert_str_eq(why, "timed out");
	/* 2 tries of 1 s for A; no AAAA query after a timeout */
	ck_assert_msg(took >= RH_RESOLVE_QUERY_TIMEOUT_MS - 200 && took <= RH_RESOLVE_QUERY_TIMEOUT_MS + 500,
		      "took %llu ms", (unsigned long long)took);
	ck_assert_uint_eq(atomic_load(&dns.queries), 2);
	dns_stop();
}
END_TEST

START_TEST(dns_ipv6_nameserver)
{
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;

	if (!dns_start(AF_INET6)) {
		fprintf(stderr, "dns_ipv6_nameserver: no IPv6 loopback, skipped\n");
		return;
	}
	dns_add("web.test", T_A, "10.0.0.1");
	ck_assert_msg(ask("web.test", 80, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(got, "10.0.0.1:80");
	ck_assert_uint_eq(atomic_load(&dns.queries), 2);
	dns_stop();
}
END_TEST

/* ---- hostile answers ---- */

static int
parse(const struct msg *m, const char *qname, int qtype, const char **got, char *why, size_t whylen)
{
	struct rh_sockaddr *v = NULL;
	size_t n = 0;
	int rc = rh_resolve_parse_answer(m->b, m->len, qname, qtype, 80, &v, &n, why, whylen);

	*got = texts(v, n);
	free(v);
	return rc;
}

START_TEST(hostile_answers)
{
	struct msg *m = calloc(1, sizeof(*m));
	unsigned char a[16] = {10, 0, 0, 1};
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;

	/* well-formed, for reference */
	start_answer(m, "x.test", T_A, 1);
	put_rr_ptr(m, T_A, 4, a, 4);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), 0);
	ck_assert_str_eq(got, "10.0.0.1:80");
	/* the same asked as AAAA: nothing (the type differs) */
	ck_assert_int_eq(parse(m, "x.test", T_AAAA, &got, why, sizeof(why)), 0);
	ck_assert_str_eq(got, "");

	/* rdlength beyond the end of the message */
	start_answer(m, "x.test", T_A, 1);
	put_rr_ptr(m, T_A, 200, a, 4);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "malformed answer");

	/* more records announced than present */
	start_answer(m, "x.test", T_A, 5);
	put_rr_ptr(m, T_A, 4, a, 4);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);

	/* a record cut in the middle */
	start_answer(m, "x.test", T_A, 1);
	put_rr_ptr(m, T_A, 4, a, 4);
	m->len -= 6;
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);

	/* bytes after the last record */
	start_answer(m, "x.test", T_A, 1);
	put_rr_ptr(m, T_A, 4, a, 4);
	put16(m, 0xdead);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);

	/* an A record of 3 or 16 bytes is not one: skipped */
	start_answer(m, "x.test", T_A, 2);
	put_rr_ptr(m, T_A, 3, a, 3);
	put_rr_ptr(m, T_A, 16, a, 16);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), 0);
	ck_assert_str_eq(got, "");
	start_answer(m, "x.test", T_AAAA, 1);
	put_rr_ptr(m, T_AAAA, 4, a, 4);
	ck_assert_int_eq(parse(m, "x.test", T_AAAA, &got, why, sizeof(why)), 0);
	ck_assert_str_eq(got, "");

	/* an owner name that points at itself (compression loop) */
	start_answer(m, "x.test", T_A, 1);
	put16(m, 0xc000 | (unsigned)m->len);
	put16(m, T_A);
	put16(m, 1);
	put32(m, 1);
	put16(m, 4);
	put_bytes(m, a, 4);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);

	/* a pointer past the end */
	start_answer(m, "x.test", T_A, 1);
	put16(m, 0xc000 | 0x3fff);
	put16(m, T_A);
	put16(m, 1);
	put32(m, 1);
	put16(m, 4);
	put_bytes(m, a, 4);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);

	/* a CNAME whose target points past the end, and one with empty rdata */
	start_answer(m, "x.test", T_A, 1);
	put_rr_ptr(m, T_CNAME, 2, "\xff\xff", 2);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);
	start_answer(m, "x.test", T_A, 1);
	put_rr_ptr(m, T_CNAME, 0, "", 0);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);

	/* CNAMEs in any order, a loop among them, and a class other than IN */
	start_answer(m, "x.test", T_A, 5);
	put_rr(m, "b.test", T_A, a, 4);
	put_rr(m, "a.test", T_CNAME, "\001b\004test\000", 8);
	put_rr_ptr(m, T_CNAME, 8, "\001a\004test\000", 8);
	put_rr(m, "b.test", T_CNAME, "\001x\004test\000", 8); /* back to the start */
	put_name(m, "x.test");
	put16(m, T_A);
	put16(m, 3); /* CHAOS */
	put32(m, 1);
	put16(m, 4);
	put_bytes(m, "\x07\x07\x07\x07", 4);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), 0);
	ck_assert_str_eq(got, "10.0.0.1:80");

	/* a chain longer than followed: its end is not reached */
	start_answer(m, "c0.test", T_A, 11);
	for (int i = 0; i < 10; i++) {
		char owner[16], target[16];
		struct msg t = {.len = 0};

		snprintf(owner, sizeof(owner), "c%d.test", i);
		snprintf(target, sizeof(target), "c%d.test", i + 1);
		put_name(&t, target);
		put_rr(m, owner, T_CNAME, t.b, t.len);
	}
	put_rr(m, "c10.test", T_A, a, 4);
	ck_assert_int_eq(parse(m, "c0.test", T_A, &got, why, sizeof(why)), 0);
	ck_assert_str_eq(got, "");
	ck_assert_int_eq(parse(m, "c3.test", T_A, &got, why, sizeof(why)), 0); /* 7 links: followed */
	ck_assert_str_eq(got, "10.0.0.1:80");

	/* too many addresses */
	start_answer(m, "x.test", T_A, RH_RESOLVE_MAX_ADDRS + 1);
	for (unsigned i = 0; i <= RH_RESOLVE_MAX_ADDRS; i++) {
		unsigned char ip[4] = {10, 1, (unsigned char)(i >> 8), (unsigned char)i};

		put_rr_ptr(m, T_A, 4, ip, 4);
	}
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "too many addresses (more than 1024)");

	/* a message longer than DNS allows, and an empty one */
	m->len = sizeof(m->b);
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);
	m->len = 0;
	ck_assert_int_eq(parse(m, "x.test", T_A, &got, why, sizeof(why)), -1);
	free(m);
}
END_TEST

/* Random mutations of a valid answer, and random bytes after a valid question: no crash, no
 * overread (ASan, valgrind), and anything accepted is a well-formed list. */
START_TEST(random_answers)
{
	struct msg *base = calloc(1, sizeof(*base)), *m = calloc(1, sizeof(*m));
	unsigned char a[4] = {10, 0, 0, 1}, a6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	uint64_t s = 7;
	char why[RH_RESOLVE_WHY_LEN];

	start_answer(base, "x.test", T_A, 4);
	put_rr_ptr(base, T_CNAME, 8, "\001y\004test\000", 8);
	put_rr(base, "y.test", T_A, a, 4);
	put_rr_ptr(base, T_A, 4, a, 4);
	put_rr_ptr(base, T_AAAA, 16, a6, 16);
	for (int iter = 0; iter < 10000; iter++) {
		struct rh_sockaddr *v = NULL;
		size_t n = 0;
		int rc;

		memcpy(m, base, sizeof(*base));
		if (iter % 4 == 0) {
			/* garbage after the question */
			m->len = 24;
			m->b[7] = (unsigned char)(rng_next(&s) % 16);
			for (size_t i = 0, k = rng_next(&s) % 120; i < k; i++)
				put8(m, (unsigned)(rng_next(&s) & 0xff));
		} else {
			for (int k = 1 + (int)(rng_next(&s) % 4); k > 0; k--)
				m->b[rng_next(&s) % m->len] = (unsigned char)rng_next(&s);
			if (rng_next(&s) % 4 == 0)
				m->len = rng_next(&s) % (m->len + 1);
		}
		rc = rh_resolve_parse_answer(m->b, m->len, "x.test", (iter & 1) ? T_A : T_AAAA, 80, &v, &n, why,
					     sizeof(why));
		ck_assert(rc == 0 || rc == -1);
		ck_assert_uint_le(n, RH_RESOLVE_MAX_ADDRS);
		for (size_t i = 0; i < n; i++)
			ck_assert(v[i].text[0] != '\0' && strlen(v[i].text) < sizeof(v[i].text));
		free(v);
	}
	free(base);
	free(m);
}
END_TEST

/* Garbage from the server, end to end: rh_resolve_name fails or gives addresses, quickly. */
START_TEST(dns_garbage_server)
{
	char why[RH_RESOLVE_WHY_LEN];
	const char *got;
	uint64_t t0 = now_ms();
	int ok = 0;

	ck_assert(dns_start(AF_INET));
	dns_set_mode(DNS_RANDOM);
	for (int i = 0; i < 300; i++)
		ok += ask("x.test", 80, &got, why, sizeof(why)) == 0;
	ck_assert_uint_lt(now_ms() - t0, 5000);
	ck_assert_int_lt(ok, 300); /* garbage is mostly refused */

	/* and one lying rdlength through the whole path */
	struct msg *m = calloc(1, sizeof(*m));

	put_rr_ptr(m, T_A, 300, "\x0a\x00\x00\x01", 4);
	pthread_mutex_lock(&dns.lock);
	dns.raw = *m;
	dns.raw_an = 1;
	dns.mode = DNS_RAW;
	pthread_mutex_unlock(&dns.lock);
	ck_assert_int_eq(ask("x.test", 80, &got, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "malformed answer");
	free(m);
	dns_stop();
}
END_TEST

/* ---- rh_resolver_same_addrs ---- */

static struct rh_sockaddr
addr_text(const char *text)
{
	struct rh_sockaddr a;

	memset(&a, 0, sizeof(a));
	snprintf(a.text, sizeof(a.text), "%s", text);
	return a;
}

START_TEST(same_addrs)
{
	struct rh_sockaddr x[3] = {addr_text("10.0.0.1:80"), addr_text("10.0.0.2:80"), addr_text("[::1]:80")};
	struct rh_sockaddr y[3] = {addr_text("[::1]:80"), addr_text("10.0.0.1:80"), addr_text("10.0.0.2:80")};
	struct rh_sockaddr z[3] = {addr_text("10.0.0.1:80"), addr_text("10.0.0.2:80"), addr_text("10.0.0.3:80")};
	struct rh_sockaddr d[3] = {addr_text("10.0.0.1:80"), addr_text("10.0.0.1:80"), addr_text("10.0.0.2:80")};
	struct rh_sockaddr e[3] = {addr_text("10.0.0.1:80"), addr_text("10.0.0.2:80"), addr_text("10.0.0.2:80")};
	struct rh_sockaddr p[1] = {addr_text("10.0.0.1:81")};

	ck_assert(rh_resolver_same_addrs(x, 3, y, 3));
	ck_assert(rh_resolver_same_addrs(y, 3, x, 3));
	ck_assert(rh_resolver_same_addrs(x, 3, x, 3));
	ck_assert(!rh_resolver_same_addrs(x, 3, z, 3));
	ck_assert(!rh_resolver_same_addrs(x, 3, y, 2));
	ck_assert(!rh_resolver_same_addrs(x, 2, x, 3));
	ck_assert(rh_resolver_same_addrs(NULL, 0, NULL, 0));
	ck_assert(!rh_resolver_same_addrs(NULL, 0, x, 1));
	ck_assert(!rh_resolver_same_addrs(d, 3, x, 3));
	ck_assert(!rh_resolver_same_addrs(x, 3, d, 3));
	ck_assert(rh_resolver_same_addrs(d, 3, e, 3)); /* as sets: documented */
	ck_assert(!rh_resolver_same_addrs(x, 1, p, 1)); /* the port counts */
}
END_TEST

/* ---- the periodic resolver ---- */

/* Waits up to <ms> for the resolver's eventfd and takes the round. NULL on timeout. */
static struct rh_resolver_round *
wait_round(struct rh_resolver *r, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;

	for (;;) {
		struct pollfd pfd = {.fd = rh_resolver_fd(r), .events = POLLIN};
		uint64_t now = now_ms();
		struct rh_resolver_round *round;

		if (now >= deadline)
			return NULL;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		round = rh_resolver_take(r);
		if (round != NULL)
			return round;
	}
}

static struct rh_resolver *
make_resolver(const char *const *hosts, size_t n, uint32_t interval_ms)
{
	struct rh_resolver_name names[4];
	struct rh_sockaddr ns = nameserver(AF_INET, dns.port);
	struct rh_resolver *r;
	char err[256];

	ck_assert_uint_le(n, 4);
	memset(names, 0, sizeof(names));
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i].host, sizeof(names[i].host), "%s", hosts[i]);
		names[i].port = (uint16_t)(8000 + i);
	}
	r = rh_resolver_create(names, n, interval_ms, &ns, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	return r;
}

START_TEST(periodic_change)
{
	const char *hosts[] = {"svc.test", "127.0.0.1", "gone.test"};
	struct rh_resolver *r;
	struct rh_resolver_round *round;
	uint64_t t0;

	ck_assert(dns_start(AF_INET));
	dns_add("svc.test", T_A, "10.0.0.1");
	r = make_resolver(hosts, 3, 150);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	ck_assert_int_eq(rh_resolver_start(r), 0); /* twice: nothing more */

	/* nothing before the first interval */
	ck_assert_ptr_null(wait_round(r, 50));
	round = wait_round(r, 2000);
	ck_assert_ptr_nonnull(round);
	ck_assert_uint_eq(round->n, 3);
	ck_assert(round->answers[0].ok);
	ck_assert_str_eq(texts(round->answers[0].addrs, round->answers[0].n_addrs), "10.0.0.1:8000");
	ck_assert(round->answers[1].ok);
	ck_assert_str_eq(texts(round->answers[1].addrs, round->answers[1].n_addrs), "127.0.0.1:8001");
	ck_assert(!round->answers[2].ok);
	ck_assert_str_eq(round->answers[2].why, "no such name");
	ck_assert_ptr_null(round->answers[2].addrs);
	ck_assert_uint_eq(round->answers[2].n_addrs, 0);
	struct rh_sockaddr *first = round->answers[0].addrs;
	size_t n_first = round->answers[0].n_addrs;

	/* the same set again: rounds keep coming, same_addrs says "no change" */
	struct rh_resolver_round *again = wait_round(r, 2000);
	ck_assert_ptr_nonnull(again);
	ck_assert(rh_resolver_same_addrs(first, n_first, again->answers[0].addrs, again->answers[0].n_addrs));
	rh_resolver_round_free(again);

	/* a change is picked up within a couple of intervals */
	dns_add("svc.test", T_AAAA, "2001:db8::5");
	dns_add("svc.test", T_A, "10.0.0.3");
	t0 = now_ms();
	for (;;) {
		struct rh_resolver_round *next = wait_round(r, 2000);

		ck_assert_ptr_nonnull(next);
		ck_assert(next->answers[0].ok);
		if (!rh_resolver_same_addrs(first, n_first, next->answers[0].addrs, next->answers[0].n_addrs)) {
			ck_assert_str_eq(texts(next->answers[0].addrs, next->answers[0].n_addrs),
					 "10.0.0.1:8000 10.0.0.3:8000 [2001:db8::5]:8000");
			rh_resolver_round_free(next);
			break;
		}
		rh_resolver_round_free(next);
		ck_assert_uint_lt(now_ms() - t0, 2000);
	}

	/* the name goes away: the answer says so (the caller keeps the last addresses) */
	dns_clear();
	dns_add("gone.test", T_A, "10.0.0.9");
	t0 = now_ms();
	for (;;) {
		struct rh_resolver_round *next = wait_round(r, 2000);

		ck_assert_ptr_nonnull(next);
		if (!next->answers[0].ok) {
			ck_assert_str_eq(next->answers[0].why, "no such name");
			ck_assert(next->answers[2].ok);
			ck_assert_str_eq(texts(next->answers[2].addrs, next->answers[2].n_addrs), "10.0.0.9:8002");
			rh_resolver_round_free(next);
			break;
		}
		rh_resolver_round_free(next);
		ck_assert_uint_lt(now_ms() - t0, 2000);
	}
	rh_resolver_round_free(round);

	/* an idle stop is immediate */
	t0 = now_ms();
	rh_resolver_stop(r);
	ck_assert_uint_lt(now_ms() - t0, 300);
	rh_resolver_stop(r); /* twice is fine */
	ck_assert_int_eq(rh_resolver_start(r), -1);
	rh_resolver_destroy(r);
	dns_stop();
}
END_TEST

START_TEST(resolve_now_and_newest)
{
	const char *hosts[] = {"svc.test"};
	struct rh_resolver *r;
	struct rh_resolver_round *round;

	ck_assert(dns_start(AF_INET));
	dns_add("svc.test", T_A, "10.0.0.1");

	/* interval 0: no rounds unless asked */
	r = make_resolver(hosts, 1, 0);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	ck_assert_ptr_null(wait_round(r, 300));
	ck_assert_uint_eq(rh_resolver_rounds(r), 0);
	rh_resolver_resolve_now(r);
	round = wait_round(r, 1000);
	ck_assert_ptr_nonnull(round);
	ck_assert(round->answers[0].ok);
	rh_resolver_round_free(round);
	ck_assert_ptr_null(wait_round(r, 300)); /* and only one */
	rh_resolver_destroy(r);

	/* asked before start: the first round comes at once, not after the interval */
	r = make_resolver(hosts, 1, 60000);
	rh_resolver_resolve_now(r);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	round = wait_round(r, 1000);
	ck_assert_ptr_nonnull(round);
	rh_resolver_round_free(round);
	rh_resolver_destroy(r);

	/* rounds not taken: only the newest is kept */
	r = make_resolver(hosts, 1, 30);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	for (uint64_t t0 = now_ms(); rh_resolver_rounds(r) < 4; sleep_ms(10))
		ck_assert_uint_lt(now_ms() - t0, 3000);
	round = rh_resolver_take(r);
	ck_assert_ptr_nonnull(round);
	rh_resolver_round_free(round);
	rh_resolver_stop(r);
	ck_assert_ptr_null(rh_resolver_take(r));
	rh_resolver_destroy(r); /* after stop: fine */

	/* a round that was never taken is freed by destroy (valgrind/ASan check the leak) */
	r = make_resolver(hosts, 1, 10);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	for (uint64_t t0 = now_ms(); rh_resolver_rounds(r) < 1; sleep_ms(5))
		ck_assert_uint_lt(now_ms() - t0, 3000);
	rh_resolver_destroy(r);

	/* never started */
	r = make_resolver(hosts, 1, 10);
	rh_resolver_stop(r);
	rh_resolver_destroy(r);
	rh_resolver_destroy(NULL);
	rh_resolver_round_free(NULL);
	dns_stop();
}
END_TEST

START_TEST(stop_mid_lookup)
{
	const char *hosts[] = {"svc.test", "other.test"};
	struct rh_resolver *r;
	uint64_t t0, took, asked;

	ck_assert(dns_start(AF_INET));
	dns_set_mode(DNS_SILENT);
	r = make_resolver(hosts, 2, 0);
	rh_resolver_resolve_now(r);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	for (t0 = now_ms(); atomic_load(&dns.queries) == 0; sleep_ms(5))
		ck_assert_uint_lt(now_ms() - t0, 2000);
	asked = now_ms();
	/* The lookup has up to 2 s to go: stop gives up after RH_RESOLVER_STOP_WAIT_MS and leaves the
	 * thread to finish it; destroy then leaves the struct to the thread. */
	t0 = now_ms();
	rh_resolver_destroy(r);
	took = now_ms() - t0;
	ck_assert_msg(took >= RH_RESOLVER_STOP_WAIT_MS - 50 && took < RH_RESOLVER_STOP_WAIT_MS + 300, "took %llu ms",
		      (unsigned long long)took);
	/* Let the lookup end: the thread must not go on to the second name, and frees the resolver
	 * (ASan and valgrind see a use after free or a leak otherwise). */
	sleep_ms((unsigned)(asked + RH_RESOLVE_QUERY_TIMEOUT_MS + 300 - now_ms()));
	ck_assert_uint_eq(atomic_load(&dns.queries), 2); /* A for svc.test, retransmitted once */
	dns_stop();
}
END_TEST

START_TEST(create_errors)
{
	struct rh_resolver_name name;
	struct rh_sockaddr ns;
	struct rh_resolver *r;
	char err[256];

	memset(&name, 'a', sizeof(name));
	r = rh_resolver_create(&name, 1, 1000, NULL, err, sizeof(err));
	ck_assert_ptr_null(r);
	ck_assert_str_eq(err, "resolver: name 0 is not NUL-terminated");

	memset(&name, 0, sizeof(name));
	memset(&ns, 0, sizeof(ns));
	ns.ss.ss_family = AF_UNIX;
	r = rh_resolver_create(&name, 1, 1000, &ns, err, sizeof(err));
	ck_assert_ptr_null(r);

	/* no names at all: rounds are empty */
	r = rh_resolver_create(NULL, 0, 0, NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(r);
	rh_resolver_resolve_now(r);
	ck_assert_int_eq(rh_resolver_start(r), 0);
	struct rh_resolver_round *round = wait_round(r, 1000);
	ck_assert_ptr_nonnull(round);
	ck_assert_uint_eq(round->n, 0);
	rh_resolver_round_free(round);
	rh_resolver_destroy(r);
}
END_TEST

static Suite *
resolver_suite(void)
{
	Suite *s = suite_create("resolver");
	TCase *tc = tcase_create("lookup");

	tcase_add_test(tc, numeric_hosts);
	tcase_add_test(tc, bad_names);
	tcase_add_test(tc, system_localhost);
	tcase_add_test(tc, dns_addresses);
	tcase_add_test(tc, dns_cname);
	tcase_add_test(tc, dns_servfail_and_refused);
	tcase_add_test(tc, dns_timeout);
	tcase_add_test(tc, dns_ipv6_nameserver);
	tcase_add_test(tc, same_addrs);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_test(tc, hostile_answers);
	tcase_add_test(tc, random_answers);
	tcase_add_test(tc, dns_garbage_server);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("thread");
	tcase_add_test(tc, periodic_change);
	tcase_add_test(tc, resolve_now_and_newest);
	tcase_add_test(tc, stop_mid_lookup);
	tcase_add_test(tc, create_errors);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(resolver_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
