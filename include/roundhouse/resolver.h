/* Backend names, resolved again while the proxy runs ([upstream] resolve = 30s, and optionally
 * [upstream] resolver = host:port, the nameserver to ask instead of the system resolver).
 *
 * rh_resolve_name is the one lookup, for config load and for the periodic rounds alike. The
 * periodic resolver runs it from a thread of its own, one round of every name each interval, and
 * hands each finished round to the control thread through an eventfd and a one-round slot. The
 * control thread compares a round with what it published (rh_resolver_same_addrs) and publishes a
 * new snapshot only when some name's address set changed; a failed name keeps its last addresses.
 *
 * Why a thread and not the control thread's epoll loop: getaddrinfo blocks, and it is the one call
 * that honours /etc/hosts, nsswitch.conf and the search domains the way operators expect (glibc's
 * getaddrinfo_a is a thread underneath too). The other path, asking one nameserver directly, goes
 * through glibc's libresolv (res_nquery), which blocks as well; no asynchronous DNS library is
 * part of Debian's base system, and parsing DNS by hand on the control thread is not worth it for
 * a lookup every few seconds. So the lookups block a thread that does nothing else, and the
 * control thread's loop (health probes, snapshot publication) never waits for DNS.
 *
 * Lookups are bounded:
 *  - with a nameserver: each query (A, then AAAA) is retransmitted once after 1 s and given up
 *    after RH_RESOLVE_QUERY_TIMEOUT_MS; a name is two queries one after the other, so at most
 *    RH_RESOLVE_NAME_TIMEOUT_MS (a timed-out A query is not followed by an AAAA query). An answer
 *    with the TC bit set is asked again over TCP (glibc does this), which has no timeout of its
 *    own: a server that truncates and then stalls its TCP side can hold a lookup longer.
 *  - with the system resolver: whatever resolv.conf says (timeout:5 attempts:2 by default), plus
 *    whatever NSS modules do. Not ours to shorten.
 * That is why rh_resolver_stop waits at most RH_RESOLVER_STOP_WAIT_MS and then leaves a lookup
 * that still blocks behind (the thread frees what it uses when it returns).
 */
#ifndef RH_RESOLVER_H
#define RH_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roundhouse/sockaddr.h"

#define RH_RESOLVE_WHY_LEN 128
#define RH_RESOLVE_HOST_LEN 256 /* a DNS name is at most 253 bytes, one more for a trailing dot */
#define RH_RESOLVE_MAX_ADDRS 1024 /* distinct addresses per name; more is an error */
#define RH_RESOLVE_QUERY_TIMEOUT_MS 2000 /* nameserver path: one query, 2 tries of 1 s */
#define RH_RESOLVE_NAME_TIMEOUT_MS (2 * RH_RESOLVE_QUERY_TIMEOUT_MS) /* A, then AAAA */
#define RH_RESOLVER_RETRY_MS 5000     /* after a round with a failed name: next round in min(this, interval) */
#define RH_RESOLVER_STOP_WAIT_MS 1000 /* rh_resolver_stop waits this long for a lookup in progress */

/* Resolves <host> for TCP port <port>. A numeric host (IPv4, IPv6, "fe80::1%eth0") never asks DNS.
 * With <nameserver> NULL it is getaddrinfo (AF_UNSPEC, SOCK_STREAM, AI_NUMERICSERV, no
 * AI_ADDRCONFIG: /etc/hosts, nsswitch and search domains apply). With a <nameserver> (IPv4 or
 * IPv6, port included) that server alone is asked, over UDP, for A and AAAA records of <host> as
 * written: no /etc/hosts, no search domains, CNAMEs followed within the answer.
 * Only IPv4 and IPv6 addresses are kept, each once, sorted (IPv4 first, then by address), each
 * rh_sockaddr filled by rh_sockaddr_set ("1.2.3.4:80", "[::1]:80").
 * Returns 0 with *<out> (malloc'd, the caller frees it) and *<n_out> >= 1, or -1 with *<out> NULL
 * and a short reason in <why>: "no such name", "no addresses", "timed out", "server failure
 * (SERVFAIL, REFUSED or NOTIMP)", "nameserver unreachable (connection refused)", "malformed
 * answer", "bad name", "too many addresses (more than 1024)", "out of memory", or for the system
 * resolver "temporary failure (server failure or timed out)" (EAI_AGAIN) or getaddrinfo's own
 * text. Any thread; blocks (see above). */
int rh_resolve_name(const char *host, uint16_t port, const struct rh_sockaddr *nameserver,
		    struct rh_sockaddr **out, size_t *n_out, char *why, size_t whylen);

/* True when <a>[0..<na>) and <b>[0..<nb>) hold the same addresses, in any order (compared by
 * text; lists as rh_resolve_name gives them, without duplicates). Pure. */
bool rh_resolver_same_addrs(const struct rh_sockaddr *a, size_t na, const struct rh_sockaddr *b, size_t nb);

/* --- the periodic resolver ------------------------------------------------------------------ */

struct rh_resolver_name {
	char host[RH_RESOLVE_HOST_LEN]; /* NUL-terminated */
	uint16_t port;
};

struct rh_resolver_answer {
	bool ok;                       /* false: the lookup failed, <why> says why, no addresses */
	char why[RH_RESOLVE_WHY_LEN];  /* "" when ok */
	struct rh_sockaddr *addrs;     /* as rh_resolve_name gives them; NULL when !ok */
	size_t n_addrs;
};

/* One round: every name looked up once. */
struct rh_resolver_round {
	size_t n;                          /* the number of names */
	struct rh_resolver_answer *answers; /* [n], in the order of the names given to create */
};

struct rh_resolver;

/* A resolver for <names>[0..<n>) (copied; with n = 0 its rounds are empty), a round every <interval_ms> (0: no periodic
 * rounds, only those asked for with rh_resolver_resolve_now, and the retries below), asking
 * <nameserver> (copied; NULL: the system resolver). A round in which some name failed is followed
 * by another after min(interval_ms, RH_RESOLVER_RETRY_MS) (RH_RESOLVER_RETRY_MS when interval_ms is
 * 0), until a round where every name resolves. Returns NULL with a message in <err> on failure.
 * Main thread. */
struct rh_resolver *rh_resolver_create(const struct rh_resolver_name *names, size_t n, uint32_t interval_ms,
				       const struct rh_sockaddr *nameserver, char *err, size_t errlen);

/* The eventfd (non-blocking) that becomes readable when a round is ready: add it to an epoll set
 * (level-triggered), call rh_resolver_take when it fires. Owned by the resolver: do not close it;
 * rh_resolver_destroy closes it (after that no event comes from it). */
int rh_resolver_fd(const struct rh_resolver *r);

/* Starts the thread (every signal blocked). The first round comes after interval_ms (the names
 * were resolved at load), or at once after rh_resolver_resolve_now. Returns 0, or -1 with errno
 * set. A second call does nothing; a stopped resolver does not start again (-1, EINVAL). */
int rh_resolver_start(struct rh_resolver *r);

/* Asks for a round now (or as soon as the round in progress ends; before start: as soon as the
 * thread starts). For names that failed at load: call it once at start and the failure retries
 * take over. Any thread. */
void rh_resolver_resolve_now(struct rh_resolver *r);

/* The newest finished round not yet taken, or NULL (a round that was not taken before a newer one
 * finished is dropped: each round has every name). Drains the eventfd. The caller owns the
 * result: rh_resolver_round_free. The control thread. */
struct rh_resolver_round *rh_resolver_take(struct rh_resolver *r);

/* Frees a round from rh_resolver_take. Accepts NULL. */
void rh_resolver_round_free(struct rh_resolver_round *round);

/* Stops the thread: at once when it waits between rounds; a round in progress stops before its
 * next name. A lookup in progress is waited for at most RH_RESOLVER_STOP_WAIT_MS; if it still
 * blocks then, the thread is detached with a warning, finishes that lookup on its own and frees
 * what it shares with <r> then (nothing it finishes is delivered). Safe if never started; a
 * stopped resolver is not started again. Main or control thread. */
void rh_resolver_stop(struct rh_resolver *r);

/* Stops <r> and frees it (with any round not taken). Accepts NULL. */
void rh_resolver_destroy(struct rh_resolver *r);

/* (for tests and stats) Rounds finished so far, delivered or not. Any thread. */
uint64_t rh_resolver_rounds(const struct rh_resolver *r);

/* (for tests and the fuzzer) The addresses of type <qtype> (1: A, 28: AAAA) that the DNS message
 * <msg>[0..<len>) gives for <qname>, following CNAMEs from <qname> within the answer section, as
 * rh_resolve_name would use them: appended to *<addrs> (realloc'd; *<n> entries, both start as
 * NULL/0 or as a previous call left them), without duplicates. The message is untrusted network
 * input: every length in it is checked. Returns 0 (perhaps with nothing appended: records of other
 * types, owners or classes are skipped), or -1 with <why> ("malformed answer", "too many
 * addresses (more than 1024)", "out of memory"); *<addrs> stays the caller's to free either way. */
int rh_resolve_parse_answer(const unsigned char *msg, size_t len, const char *qname, int qtype, uint16_t port,
			    struct rh_sockaddr **addrs, size_t *n, char *why, size_t whylen);

#endif
