/* Unit tests for http1_serialize (the canonical heads the proxy sends) and for the stricter parser
 * rules they rely on: framing, Host and target checks, untrusted fields, chunked limits, and the
 * parse -> serialize -> parse round trip. */
#include "http1_check_helpers.h"
#include "roundhouse/http1.h"
#include "roundhouse/http1_serialize.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct rh_http_limits lim = { .max_head = 8192, .max_uri = 2048, .max_headers = 100 };

/* Length of a string literal, which may contain NUL. */
#define LIT(s) (s), (sizeof(s) - 1)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct rh_span span_of(const char *s)
{
	struct rh_span sp = { .p = s, .len = s ? strlen(s) : 0 };

	return sp;
}

static bool span_is(struct rh_span sp, const char *want)
{
	return sp.len == strlen(want) && memcmp(sp.p, want, sp.len) == 0;
}

static bool span_eq(struct rh_span a, struct rh_span b)
{
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* <s>[0..<n>) printable, for messages: CR, LF, TAB, NUL and non-ASCII as escapes. A few rotating
 * static buffers, so several may appear in one message. */
static const char *esc(const char *s, size_t n)
{
	static char bufs[4][16384];
	static unsigned next;
	char *b = bufs[next++ % 4];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < sizeof(bufs[0]); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			o += (size_t)snprintf(b + o, 8, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(b + o, 8, "\\n");
		else if (c == '\t')
			o += (size_t)snprintf(b + o, 8, "\\t");
		else if (c == '\\')
			o += (size_t)snprintf(b + o, 8, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(b + o, 8, "\\x%02x", c);
		else
			b[o++] = (char)c;
	}
	b[o] = '\0';
	return b;
}

#define ck_assert_span(sp, want) \
	ck_assert_msg(span_is((sp), (want)), "span \"%s\" != \"%s\"", esc((sp).p, (sp).len), esc((want), strlen(want)))

/* --- parser helpers --- */

static int resp_split(const char *s, size_t n, bool head)
{
	struct rh_http_response resp;
	int whole = resp_parse_copy(s, n, &lim, head, &resp);

	for (size_t i = 0; i < n; i++) {
		int r = resp_parse_copy(s, i, &lim, head, &resp);

		if (whole > 0 && i >= (size_t)whole)
			ck_assert_int_eq(r, whole);
		else if (whole > 0)
			ck_assert_msg(r == RH_HTTP_PARTIAL, "\"%s\" prefix %zu: got %d, want partial", esc(s, n), i, r);
		else
			ck_assert_msg(r == RH_HTTP_PARTIAL || r == RH_HTTP_INVALID, "prefix %zu: got %d", i, r);
	}
	return whole;
}

/* Asserts that request <s> is rejected with <status> under <l>, consistently for all its prefixes. */
static void req_err_lim(const char *s, size_t n, const struct rh_http_limits *l, int status)
{
	int st = 0;
	int r = req_split(s, n, l, &st);

	ck_assert_msg(r == RH_HTTP_INVALID && st == status, "\"%s\": got %d/%d, want -1/%d", esc(s, n), r, st,
		      status);
}

static void req_err(const char *s, size_t n, int status)
{
	req_err_lim(s, n, &lim, status);
}

/* Asserts that request <s> is accepted under <l> as a head of its whole length; fills <req>. */
static void req_ok_lim(const char *s, size_t n, const struct rh_http_limits *l, struct rh_http_request *req)
{
	int st = 0;
	int r = req_split(s, n, l, &st);

	ck_assert_msg(r == (int)n, "\"%s\": got %d (status %d), want %zu", esc(s, n), r, st, n);
	ck_assert_int_eq(rh_http_parse_request(s, n, l, req), (int)n);
}

static void req_ok(const char *s, size_t n, struct rh_http_request *req)
{
	req_ok_lim(s, n, &lim, req);
}

static void resp_ok(const char *s, size_t n, bool head, struct rh_http_response *resp)
{
	int r = resp_split(s, n, head);

	ck_assert_msg(r == (int)n, "\"%s\": got %d, want %zu", esc(s, n), r, n);
	ck_assert_int_eq(rh_http_parse_response(s, n, &lim, head, resp), (int)n);
}

static void resp_err(const char *s, size_t n, bool head)
{
	struct rh_http_response resp;
	int r = rh_http_parse_response(s, n, &lim, head, &resp);

	ck_assert_msg(r == RH_HTTP_INVALID, "\"%s\" (head %d): got %d, want -1", esc(s, n), head, r);
	resp_split(s, n, head);
}

/* --- serializer helpers --- */

typedef ssize_t (*ser_fn)(const void *msg, const void *rw, char *dst, size_t cap);

static ssize_t ser_req(const void *msg, const void *rw, char *dst, size_t cap)
{
	return rh_http1_serialize_request(msg, rw, dst, cap);
}

static ssize_t ser_resp(const void *msg, const void *rw, char *dst, size_t cap)
{
	return rh_http1_serialize_response(msg, rw, dst, cap);
}

#define CANARY 16

/* Serializes with every cap from 0 to <want_len> + 2 into a buffer of cap + CANARY bytes: below
 * <want_len> the result must be -1, from it on <want_len> with exactly <want> in dst, and the bytes
 * past cap must never be touched. */
static void check_caps(ser_fn fn, const void *msg, const void *rw, const char *want, size_t want_len,
		       const char *name)
{
	for (size_t cap = 0; cap <= want_len + 2; cap++) {
		unsigned char *b = malloc(cap + CANARY);
		ssize_t r;

		ck_assert_ptr_nonnull(b);
		memset(b, 0xa5, cap + CANARY);
		r = fn(msg, rw, (char *)b, cap);
		if (cap < want_len)
			ck_assert_msg(r == -1, "%s: cap %zu < %zu: got %zd, want -1", name, cap, want_len, r);
		else {
			ck_assert_msg(r == (ssize_t)want_len, "%s: cap %zu >= %zu: got %zd", name, cap, want_len, r);
			ck_assert_msg(memcmp(b, want, want_len) == 0, "%s: cap %zu: got \"%s\"", name, cap,
				      esc((char *)b, want_len));
		}
		for (size_t i = cap; i < cap + CANARY; i++)
			ck_assert_msg(b[i] == 0xa5, "%s: cap %zu: byte %zu past cap written", name, cap, i - cap);
		free(b);
	}
}

/* True when every CR in <s> is followed by LF and every LF preceded by CR. */
static bool crlf_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
			return false;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return false;
	}
	return true;
}

/* Lines of head <s> whose name (before ':') equals <lower>, case-insensitively. */
static int count_lines(const char *s, size_t n, const char *lower)
{
	size_t ln = strlen(lower);
	int count = 0;

	for (size_t i = 0; i < n;) {
		const char *eol = memchr(s + i, '\n', n - i);
		size_t end = eol ? (size_t)(eol - s) + 1 : n;
		struct rh_span name = { .p = s + i, .len = 0 };

		while (i + name.len < end && s[i + name.len] != ':')
			name.len++;
		if (i + name.len < end && name.len == ln && rh_span_eq_lower(name, lower))
			count++;
		i = end;
	}
	return count;
}

/* The request rewrite of a table row. */
struct rw_spec {
	const char *host;    /* NULL: the request's own */
	enum rh_xff_mode xff;
	const char *ip;      /* NULL: 127.0.0.1 */
	bool https;
};

static struct rh_request_rewrite make_rw(const struct rw_spec *s)
{
	struct rh_request_rewrite rw = {
		.host = span_of(s->host),
		.xff = s->xff,
		.client_ip = span_of(s->ip ? s->ip : "127.0.0.1"),
		.https = s->https,
	};

	return rw;
}

/* Parses request <in>, serializes it with <rw>, and checks the bytes against <want>, every cap, and
 * the size bound. */
static void check_ser_request(const char *name, const char *in, size_t in_len, const struct rh_request_rewrite *rw,
			      const char *want)
{
	static struct rh_http_request req;
	size_t want_len = strlen(want);
	char out[8192];
	int r = rh_http_parse_request(in, in_len, &lim, &req);
	size_t bound;
	ssize_t n;

	ck_assert_msg(r == (int)in_len, "%s: parse \"%s\": got %d (status %d), want %zu", name, esc(in, in_len), r,
		      req.error_status, in_len);
	n = rh_http1_serialize_request(&req, rw, out, sizeof(out));
	ck_assert_msg(n == (ssize_t)want_len && memcmp(out, want, want_len) == 0,
		      "%s:\n  in   \"%s\"\n  got  \"%s\" (%zd)\n  want \"%s\"", name, esc(in, in_len),
		      n > 0 ? esc(out, (size_t)n) : "", n, esc(want, want_len));
	bound = rh_http1_request_size_bound(&req, (size_t)r, rw);
	ck_assert_msg(bound >= want_len, "%s: request_size_bound %zu < %zu", name, bound, want_len);
	check_caps(ser_req, &req, rw, want, want_len, name);
}

static void check_ser_response(const char *name, const char *in, size_t in_len, bool head,
			       const struct rh_response_rewrite *rw, const char *want)
{
	static struct rh_http_response resp;
	size_t want_len = strlen(want);
	char out[8192];
	int r = rh_http_parse_response(in, in_len, &lim, head, &resp);
	size_t bound;
	ssize_t n;

	ck_assert_msg(r == (int)in_len, "%s: parse \"%s\": got %d, want %zu", name, esc(in, in_len), r, in_len);
	n = rh_http1_serialize_response(&resp, rw, out, sizeof(out));
	ck_assert_msg(n == (ssize_t)want_len && memcmp(out, want, want_len) == 0,
		      "%s:\n  in   \"%s\"\n  got  \"%s\" (%zd)\n  want \"%s\"", name, esc(in, in_len),
		      n > 0 ? esc(out, (size_t)n) : "", n, esc(want, want_len));
	bound = rh_http1_response_size_bound(&resp, (size_t)r);
	ck_assert_msg(bound >= want_len, "%s: response_size_bound %zu < %zu", name, bound, want_len);
	check_caps(ser_resp, &resp, rw, want, want_len, name);
}

/* --- serializer: requests --- */

#define XFF_LOCAL "X-Forwarded-For: 127.0.0.1\r\n"
#define XFP_HTTP "X-Forwarded-Proto: http\r\n"
#define TAIL XFF_LOCAL XFP_HTTP "\r\n"

struct ser_req_case {
	const char *name;
	const char *in;
	struct rw_spec rw;
	const char *want;
};

static const struct ser_req_case ser_req_cases[] = {
	{ "basic GET",
	  "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", { 0 },
	  "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n" TAIL },
	{ "Host moved first, other fields and duplicates in order",
	  "GET /x HTTP/1.1\r\nAccept: */*\r\nCookie: a=1\r\nHost: a\r\nUser-Agent: t\r\nCookie: b=2\r\n\r\n", { 0 },
	  "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nCookie: a=1\r\nUser-Agent: t\r\nCookie: b=2\r\n" TAIL },
	{ "bare LF and odd whitespace, names keep their case",
	  "GET /x HTTP/1.1\nHost:   a \t\nX:   y  \nCamel-CASE:\tv\t\nlower: w\n\n", { 0 },
	  "GET /x HTTP/1.1\r\nHost: a\r\nX: y\r\nCamel-CASE: v\r\nlower: w\r\n" TAIL },
	{ "mixed line ends and leading empty lines",
	  "\r\n\nGET / HTTP/1.1\r\nHost: a\nX: y\r\n\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n" TAIL },
	{ "inner whitespace and obs-text kept",
	  "GET / HTTP/1.1\r\nHost: a\r\nX: a \t b\r\nY: caf\xc3\xa9\r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\nX: a \t b\r\nY: caf\xc3\xa9\r\n" TAIL },
	{ "empty values as \"name: \" (the header's \"name: value\")",
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Sp:   \r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Empty: \r\nX-Sp: \r\n" TAIL },
	{ "the Host line is ours: \"Host\"",
	  "GET / HTTP/1.1\r\nhOST: a\r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\n" TAIL },
	{ "absolute form: origin form, authority replaces the client's Host",
	  "GET http://evil.example/admin?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", { 0 },
	  "GET /admin?q=1 HTTP/1.1\r\nHost: evil.example\r\n" TAIL },
	{ "absolute form with rw.host",
	  "GET http://evil.example/admin?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", { .host = "backend.internal:81" },
	  "GET /admin?q=1 HTTP/1.1\r\nHost: backend.internal:81\r\n" TAIL },
	{ "origin form with rw.host",
	  "GET /p HTTP/1.1\r\nX: 1\r\nHost: client\r\n\r\n", { .host = "b" },
	  "GET /p HTTP/1.1\r\nHost: b\r\nX: 1\r\n" TAIL },
	{ "absolute form, query right after the authority",
	  "GET http://a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", { 0 },
	  "GET /?x=1 HTTP/1.1\r\nHost: a\r\n" TAIL },
	{ "absolute form, no path",
	  "GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\n" TAIL },
	{ "absolute form, https with port",
	  "GET https://x:8443/p HTTP/1.1\r\nHost: x:8443\r\n\r\n", { 0 },
	  "GET /p HTTP/1.1\r\nHost: x:8443\r\n" TAIL },
	{ "absolute form, upper-case scheme",
	  "GET HTTP://X/ HTTP/1.1\r\nHost: x\r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: X\r\n" TAIL },
	{ "absolute form, IPv6 authority",
	  "GET http://[::1]:8080/p?q HTTP/1.1\r\nHost: y\r\n\r\n", { 0 },
	  "GET /p?q HTTP/1.1\r\nHost: [::1]:8080\r\n" TAIL },
	{ "OPTIONS * stays *",
	  "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", { 0 },
	  "OPTIONS * HTTP/1.1\r\nHost: a\r\n" TAIL },
	{ "Content-Length: one canonical line after the other fields",
	  "POST /p HTTP/1.1\r\nHost: a\r\ncontent-length:   5 \r\nX: 1\r\n\r\n", { 0 },
	  "POST /p HTTP/1.1\r\nHost: a\r\nX: 1\r\nContent-Length: 5\r\n" TAIL },
	{ "Content-Length: 0 from the client is kept",
	  "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", { 0 },
	  "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n" TAIL },
	{ "Content-Length: 2^53",
	  "PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n", { 0 },
	  "PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n" TAIL },
	{ "leading zeros of Content-Length are not forwarded",
	  "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", { 0 },
	  "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n" TAIL },
	{ "Transfer-Encoding: canonical chunked",
	  "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tCHUNKED\t\r\nX: 1\r\n\r\n", { 0 },
	  "POST /p HTTP/1.1\r\nHost: a\r\nX: 1\r\nTransfer-Encoding: chunked\r\n" TAIL },
	{ "hop-by-hop fields dropped, also one named in Connection",
	  "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, foo\r\nKeep-Alive: timeout=5\r\n"
	  "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nFoo: 1\r\nBar: 2\r\n\r\n",
	  { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\nBar: 2\r\n" TAIL },
	{ "Connection: foo drops Foo before and after it",
	  "GET / HTTP/1.1\r\nfoo: 0\r\nHost: a\r\nConnection: Foo\r\nFOO: 1\r\nBar: 2\r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\nBar: 2\r\n" TAIL },
	{ "Connection: close in 1.1 is dropped, nothing added",
	  "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\n" TAIL },
	{ "X-Forwarded-For append: client lines merged, address last",
	  "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\nx-forwarded-for:  2.2.2.2 \r\nX: 1\r\n\r\n",
	  { .xff = RH_XFF_APPEND },
	  "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 127.0.0.1\r\n" XFP_HTTP "\r\n" },
	{ "X-Forwarded-For replace",
	  "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n",
	  { .xff = RH_XFF_REPLACE },
	  "GET / HTTP/1.1\r\nHost: a\r\n" TAIL },
	{ "X-Forwarded-For replace, IPv6 client",
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n", { .xff = RH_XFF_REPLACE, .ip = "::1" },
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ::1\r\n" XFP_HTTP "\r\n" },
	{ "X-Forwarded-For off: none at all",
	  "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\n\r\n", { .xff = RH_XFF_OFF },
	  "GET / HTTP/1.1\r\nHost: a\r\n" XFP_HTTP "\r\n" },
	{ "append without client lines",
	  "GET / HTTP/1.1\r\nHost: a\r\n\r\n", { .xff = RH_XFF_APPEND, .ip = "10.0.0.7" },
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.7\r\n" XFP_HTTP "\r\n" },
	{ "https: X-Forwarded-Proto: https",
	  "GET / HTTP/1.1\r\nHost: a\r\n\r\n", { .https = true },
	  "GET / HTTP/1.1\r\nHost: a\r\n" XFF_LOCAL "X-Forwarded-Proto: https\r\n\r\n" },
	{ "untrusted claims dropped",
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4;proto=https\r\n"
	  "X-Real-IP: 1.2.3.4\r\nX-Forwarded_Proto: https\r\nX_Forwarded_For: 6.6.6.6\r\n"
	  "Transfer_Encoding: chunked\r\nContent_Length: 5\r\nx_real_ip: 5.5.5.5\r\nX-Keep: k\r\n\r\n",
	  { 0 },
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Keep: k\r\n" TAIL },
	{ "Expect is an end-to-end field",
	  "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", { 0 },
	  "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n" TAIL },
	{ "HTTP/1.0: version kept, Connection: keep-alive last",
	  "GET / HTTP/1.0\r\nHost: a\r\n\r\n", { 0 },
	  "GET / HTTP/1.0\r\nHost: a\r\n" XFF_LOCAL XFP_HTTP "Connection: keep-alive\r\n\r\n" },
	{ "HTTP/1.0 with the client's keep-alive and a body",
	  "POST / HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\nContent-Length: 2\r\n\r\n", { 0 },
	  "POST / HTTP/1.0\r\nHost: a\r\nContent-Length: 2\r\n" XFF_LOCAL XFP_HTTP "Connection: keep-alive\r\n\r\n" },
	{ "HTTP/1.0 without Host, rw.host given",
	  "GET /z HTTP/1.0\r\nX: 1\r\n\r\n", { .host = "b" },
	  "GET /z HTTP/1.0\r\nHost: b\r\nX: 1\r\n" XFF_LOCAL XFP_HTTP "Connection: keep-alive\r\n\r\n" },
	{ "everything in order",
	  "POST http://h.example/up HTTP/1.0\r\nX-Forwarded-For: 9.9.9.9\r\nA: 1\r\nHost: ignored\r\n"
	  "Content-Length: 3\r\nConnection: close\r\nX-Forwarded-Proto: http\r\nB: 2\r\n\r\n",
	  { .xff = RH_XFF_APPEND, .ip = "10.0.0.7", .https = true },
	  "POST /up HTTP/1.0\r\nHost: h.example\r\nA: 1\r\nB: 2\r\nContent-Length: 3\r\n"
	  "X-Forwarded-For: 9.9.9.9, 10.0.0.7\r\nX-Forwarded-Proto: https\r\nConnection: keep-alive\r\n\r\n" },
};

START_TEST(test_ser_request)
{
	const struct ser_req_case *c = &ser_req_cases[_i];
	struct rh_request_rewrite rw = make_rw(&c->rw);

	check_ser_request(c->name, c->in, strlen(c->in), &rw, c->want);
}
END_TEST

/* A head near the limits: a hundred fields, long values, a long client address list. The bound
 * must hold and every cap below the length must fail cleanly. */
START_TEST(test_ser_request_big)
{
	static char in[8192], want[16384];
	struct rh_request_rewrite rw = {
		.host = span_of("backend.example.internal:8080"),
		.xff = RH_XFF_APPEND,
		.client_ip = span_of("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
		.https = true,
	};
	int n = 0, w = 0;

	n += snprintf(in + n, sizeof(in) - (size_t)n, "POST http://c/%s HTTP/1.0\nHost: c\nContent-Length: 12\n",
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	w += snprintf(want + w, sizeof(want) - (size_t)w, "POST /%s HTTP/1.0\r\nHost: %s\r\n",
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "backend.example.internal:8080");
	for (int i = 0; i < 90; i++) {
		n += snprintf(in + n, sizeof(in) - (size_t)n, "X-%d:%s\n", i, i % 2 ? "v" : " \t w \t");
		w += snprintf(want + w, sizeof(want) - (size_t)w, "X-%d: %s\r\n", i, i % 2 ? "v" : "w");
	}
	for (int i = 0; i < 8; i++)
		n += snprintf(in + n, sizeof(in) - (size_t)n, "X-Forwarded-For:%d\n", i);
	n += snprintf(in + n, sizeof(in) - (size_t)n, "\n");
	w += snprintf(want + w, sizeof(want) - (size_t)w,
		      "Content-Length: 12\r\nX-Forwarded-For: 0, 1, 2, 3, 4, 5, 6, 7, %s\r\n"
		      "X-Forwarded-Proto: https\r\nConnection: keep-alive\r\n\r\n",
		      "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
	check_ser_request("big head", in, (size_t)n, &rw, want);
}
END_TEST

/* The heads that grow most when serialized: bare LF everywhere, "name:value" without a space,
 * nothing the serializer drops, and every line it adds. The bound must hold for each, and a buffer
 * of the bound's size must take the head. */
START_TEST(test_ser_request_bound_worst)
{
	static const char *const lines[] = { "GET http://a HTTP/1.0\n", "GET http://a?q HTTP/1.0\n", "GET * HTTP/1.1\nHost:a\n",
					     "OPTIONS * HTTP/1.1\nHost:a\n", "GET / HTTP/1.0\n" };
	static char in[8192], out[16384];
	static struct rh_http_request req;
	const struct rw_spec rws[] = {
		{ .xff = RH_XFF_APPEND, .https = true, .ip = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" },
		{ .xff = RH_XFF_REPLACE, .https = true, .host = "h", .ip = "1" },
		{ .xff = RH_XFF_OFF },
	};

	for (size_t li = 0; li < NELEM(lines); li++)
		for (int fields = 0; fields <= 97; fields += 97)
			for (int body = 0; body < 3; body++)
				for (size_t k = 0; k < NELEM(rws); k++) {
					struct rh_request_rewrite rw = make_rw(&rws[k]);
					int n = snprintf(in, sizeof(in), "%s", lines[li]);
					int r;
					ssize_t w;
					size_t bound;

					if (li == 2) /* GET * is refused */
						continue;
					for (int i = 0; i < fields; i++)
						n += snprintf(in + n, sizeof(in) - (size_t)n, "A:b\n");
					if (body == 1)
						n += snprintf(in + n, sizeof(in) - (size_t)n, "Content-Length:9\n");
					if (body == 2 && strstr(lines[li], "1.1"))
						n += snprintf(in + n, sizeof(in) - (size_t)n, "Transfer-Encoding:chunked\n");
					n += snprintf(in + n, sizeof(in) - (size_t)n, "\n");
					r = rh_http_parse_request(in, (size_t)n, &lim, &req);
					ck_assert_msg(r == n, "\"%s\": %d (status %d)", esc(in, (size_t)n), r, req.error_status);
					w = rh_http1_serialize_request(&req, &rw, out, sizeof(out));
					ck_assert_int_gt(w, 0);
					bound = rh_http1_request_size_bound(&req, (size_t)r, &rw);
					ck_assert_msg(bound >= (size_t)w, "\"%s\" rw %zu: serialized %zd > bound %zu",
						      esc(in, (size_t)n), k, w, bound);
					ck_assert_int_eq(rh_http1_serialize_request(&req, &rw, out, bound), w);
				}
}
END_TEST

START_TEST(test_ser_response_bound_worst)
{
	static char in[8192], out[16384];
	static struct rh_http_response resp;
	static const char *const firsts[] = { "HTTP/1.0 200\n", "HTTP/1.1 304\nContent-Length:9\n",
					      "HTTP/1.1 200\nContent-Length:9\n", "HTTP/1.1 200\nTransfer-Encoding:chunked\n",
					      "HTTP/1.1 100\n" };

	for (size_t fi = 0; fi < NELEM(firsts); fi++)
		for (int fields = 0; fields <= 98; fields += 98)
			for (int k = 0; k < 4; k++) {
				struct rh_response_rewrite rw = {
					.chunked = k & 1,
					.connection = k & 2 ? RH_CONN_KEEP_ALIVE : RH_CONN_NONE,
				};
				int n = snprintf(in, sizeof(in), "%s", firsts[fi]);
				int r;
				ssize_t w;
				size_t bound;

				for (int i = 0; i < fields; i++)
					n += snprintf(in + n, sizeof(in) - (size_t)n, "A:\n");
				n += snprintf(in + n, sizeof(in) - (size_t)n, "\n");
				r = rh_http_parse_response(in, (size_t)n, &lim, false, &resp);
				ck_assert_msg(r == n, "\"%s\": %d", esc(in, (size_t)n), r);
				w = rh_http1_serialize_response(&resp, &rw, out, sizeof(out));
				ck_assert_int_gt(w, 0);
				bound = rh_http1_response_size_bound(&resp, (size_t)r);
				ck_assert_msg(bound >= (size_t)w, "\"%s\": serialized %zd > bound %zu", esc(in, (size_t)n), w,
					      bound);
				ck_assert_int_eq(rh_http1_serialize_response(&resp, &rw, out, bound), w);
			}
}
END_TEST

/* --- serializer: responses --- */

struct ser_resp_case {
	const char *name;
	const char *in;
	bool head;
	bool chunked;
	enum rh_conn_header conn;
	const char *want;
	bool http10; /* the client speaks HTTP/1.0 */
};

static const struct ser_resp_case ser_resp_cases[] = {
	{ "no Transfer-Encoding to an HTTP/1.0 client (HEAD)",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n", true, false, RH_CONN_CLOSE,
	  "HTTP/1.1 200 OK\r\nX: 1\r\nConnection: close\r\n\r\n", true },
	{ "no Transfer-Encoding to an HTTP/1.0 client (304)",
	  "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, RH_CONN_KEEP_ALIVE,
	  "HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n\r\n", true },
	{ "Content-Length kept for an HTTP/1.0 client (HEAD)",
	  "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true, false, RH_CONN_CLOSE,
	  "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n", true },
	{ "basic", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n", false, false, RH_CONN_NONE,
	  "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\n" },
	{ "HTTP/1.0 backend gets our version", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false, false,
	  RH_CONN_NONE, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" },
	{ "reason with spaces", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, false, RH_CONN_NONE,
	  "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" },
	{ "empty reason: SP kept", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, false, RH_CONN_NONE,
	  "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n" },
	{ "empty reason after SP", "HTTP/1.0 200 \r\nContent-Length: 0\r\n\r\n", false, false, RH_CONN_NONE,
	  "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n" },
	{ "hop-by-hop dropped",
	  "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: s\r\n"
	  "Upgrade: h2c\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nServer: x\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n",
	  false, false, RH_CONN_NONE, "HTTP/1.1 200 OK\r\nServer: x\r\nTransfer-Encoding: chunked\r\n\r\n" },
	{ "Content-Length: one canonical line", "HTTP/1.1 200 OK\r\ncontent-LENGTH:  012 \r\nA: b\r\n\r\n", false,
	  false, RH_CONN_NONE, "HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 12\r\n\r\n" },
	{ "Content-Length kept on a HEAD response", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true, false,
	  RH_CONN_NONE, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n" },
	{ "Transfer-Encoding kept on a HEAD response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true,
	  false, RH_CONN_NONE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" },
	{ "Content-Length kept on 304",
	  "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 100\r\n\r\n", false, false, RH_CONN_NONE,
	  "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 100\r\n\r\n" },
	{ "no Content-Length on 204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nDate: d\r\n\r\n", false, false,
	  RH_CONN_NONE, "HTTP/1.1 204 No Content\r\nDate: d\r\n\r\n" },
	{ "204 without framing", "HTTP/1.1 204 No Content\r\n\r\n", false, false, RH_CONN_NONE,
	  "HTTP/1.1 204 No Content\r\n\r\n" },
	{ "100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", false, false, RH_CONN_NONE, "HTTP/1.1 100 Continue\r\n\r\n" },
	{ "103 keeps its fields", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", false, false,
	  RH_CONN_NONE, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" },
	{ "chunked as framed", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \tchunked\t\r\nX: 1\r\n\r\n", false, false,
	  RH_CONN_NONE, "HTTP/1.1 200 OK\r\nX: 1\r\nTransfer-Encoding: chunked\r\n\r\n" },
	{ "close-delimited re-framed as chunked", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", false, true, RH_CONN_NONE,
	  "HTTP/1.1 200 OK\r\nServer: x\r\nTransfer-Encoding: chunked\r\n\r\n" },
	{ "close-delimited, not re-framed, close", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false, false,
	  RH_CONN_CLOSE, "HTTP/1.1 200 OK\r\nServer: x\r\nConnection: close\r\n\r\n" },
	{ "Connection: close", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false,
	  false, RH_CONN_CLOSE, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n" },
	{ "Connection: keep-alive", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, false,
	  RH_CONN_KEEP_ALIVE, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n" },
	{ "no Connection line", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false,
	  false, RH_CONN_NONE, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" },
	{ "chunked re-framing and keep-alive", "HTTP/1.0 200 OK\r\n\r\n", false, true, RH_CONN_KEEP_ALIVE,
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" },
	{ "bare LF head comes out CRLF", "HTTP/1.1 200 OK\nServer:   x \nContent-Length: 1\n\n", false, false,
	  RH_CONN_NONE, "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 1\r\n\r\n" },
	{ "request-only kinds pass in responses",
	  "HTTP/1.1 200 OK\r\nX-Forwarded-For: 1.1.1.1\r\nX-Real-IP: 2.2.2.2\r\nExpect: x\r\nContent-Length: 0\r\n\r\n",
	  false, false, RH_CONN_NONE,
	  "HTTP/1.1 200 OK\r\nX-Forwarded-For: 1.1.1.1\r\nX-Real-IP: 2.2.2.2\r\nExpect: x\r\nContent-Length: 0\r\n\r\n" },
};

START_TEST(test_ser_response)
{
	const struct ser_resp_case *c = &ser_resp_cases[_i];
	struct rh_response_rewrite rw = { .chunked = c->chunked, .connection = c->conn, .http10 = c->http10 };

	check_ser_response(c->name, c->in, strlen(c->in), c->head, &rw, c->want);
}
END_TEST

/* A response whose transfer codings are more than chunked must not lose them: either the parser
 * refuses it, or the head sent on still names the other coding. Dropping "gzip" would hand the
 * client gzip bytes as if they were the content. */
START_TEST(test_ser_response_keeps_codings)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
	static struct rh_http_response resp;
	struct rh_response_rewrite rw = { .chunked = false, .connection = RH_CONN_NONE };
	char out[512];
	int r = rh_http_parse_response(LIT(s), &lim, false, &resp);
	ssize_t n;

	if (r == RH_HTTP_INVALID)
		return;
	ck_assert_int_eq(r, (int)(sizeof(s) - 1));
	n = rh_http1_serialize_response(&resp, &rw, out, sizeof(out));
	ck_assert_int_gt(n, 0);
	ck_assert_msg(memmem(out, (size_t)n, "gzip", 4) != NULL,
		      "\"gzip, chunked\" response accepted, but sent on as \"%s\"", esc(out, (size_t)n));
}
END_TEST

/* The backend's codings are sent on as it framed them (coding names are case-insensitive, so the
 * case may stay): one Transfer-Encoding line, whitespace trimmed, no Content-Length. */
START_TEST(test_ser_response_codings_case)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: \tCHUNKED\t\r\nX: 1\r\n\r\n";
	static const char pre[] = "HTTP/1.1 200 OK\r\nX: 1\r\nTransfer-Encoding: ";
	static struct rh_http_response resp;
	struct rh_response_rewrite rw = { .chunked = false, .connection = RH_CONN_NONE };
	char out[512];
	ssize_t n;

	resp_ok(LIT(s), false, &resp);
	n = rh_http1_serialize_response(&resp, &rw, out, sizeof(out));
	ck_assert_msg(n == (ssize_t)(sizeof(pre) - 1 + strlen("chunked\r\n\r\n")) && memcmp(out, pre, sizeof(pre) - 1) == 0 &&
			      strncasecmp(out + sizeof(pre) - 1, "chunked\r\n\r\n", 11) == 0,
		      "got \"%s\"", n > 0 ? esc(out, (size_t)n) : "");
}
END_TEST

/* The response size bound must hold however the backend spelled its coding list: a list written
 * with bare commas ("x,x,chunked") comes out with ", " between the codings. */
START_TEST(test_ser_response_bound_codings)
{
	static char in[8192], out[16384];
	static struct rh_http_response resp;
	struct rh_response_rewrite rw = { .chunked = false, .connection = RH_CONN_CLOSE };
	const int counts[] = { 1, 10, 100, 1000, 3000 };

	for (size_t k = 0; k < NELEM(counts); k++) {
		int n = snprintf(in, sizeof(in), "HTTP/1.1 200 OK\nTransfer-Encoding:");
		int r;
		ssize_t w;
		size_t bound;

		for (int i = 0; i < counts[k]; i++)
			n += snprintf(in + n, sizeof(in) - (size_t)n, "x,");
		n += snprintf(in + n, sizeof(in) - (size_t)n, "chunked\n\n");
		r = rh_http_parse_response(in, (size_t)n, &lim, false, &resp);
		if (r == RH_HTTP_INVALID)
			continue; /* refusing such a list is fine too */
		ck_assert_int_eq(r, n);
		w = rh_http1_serialize_response(&resp, &rw, out, sizeof(out));
		ck_assert_int_gt(w, 0);
		bound = rh_http1_response_size_bound(&resp, (size_t)r);
		ck_assert_msg(bound >= (size_t)w, "%d codings: head %d bytes, serialized %zd, bound %zu", counts[k] + 1, n,
			      w, bound);
		/* and a buffer of the bound's size is enough */
		ck_assert_int_eq(rh_http1_serialize_response(&resp, &rw, out, bound), w);
	}
}
END_TEST

/* Responses: parse -> serialize -> parse gives the same status, reason, fields and framing. */
static const char *const rt_responses[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n",
	"HTTP/1.0 200 OK\nServer:   x \nContent-Length:  007\nKeep-Alive: 5\n\n",
	"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\nConnection: close, X-S\r\nX-S: 1\r\nY: \x80\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 100\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nDate: d\r\n\r\n",
	"HTTP/1.1 103 Early Hints\nLink: </s.css>; rel=preload\n\n",
	"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n",
	"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nX-Real-IP: 1\r\n\r\n",
};

START_TEST(test_response_round_trip)
{
	static struct rh_http_response a, b;
	static char s1[8192];
	const char *in = rt_responses[_i];
	size_t in_len = strlen(in);
	int r = rh_http_parse_response(in, in_len, &lim, false, &a);

	if (r == RH_HTTP_INVALID && strstr(in, "gzip"))
		return; /* refusing codings other than chunked is fine */
	ck_assert_msg(r == (int)in_len, "parse \"%s\": %d", esc(in, in_len), r);
	for (int k = 0; k < 4; k++) {
		struct rh_response_rewrite rw = {
			.chunked = k == 3 && a.body == RH_BODY_UNTIL_CLOSE,
			.connection = k == 0 ? RH_CONN_NONE : k == 1 ? RH_CONN_CLOSE : RH_CONN_KEEP_ALIVE,
		};
		bool no_framing = a.status < 200 || a.status == 204;
		enum rh_body_kind want_framing = rw.chunked ? RH_BODY_CHUNKED : no_framing ? RH_BODY_UNTIL_CLOSE : a.framing;
		ssize_t n1 = rh_http1_serialize_response(&a, &rw, s1, sizeof(s1));
		size_t oa = 0, ob = 0;
		int r2;

		ck_assert_msg(n1 > 0, "\"%s\" rw %d: serialize %zd", esc(in, in_len), k, n1);
		ck_assert_msg(rh_http1_response_size_bound(&a, (size_t)r) >= (size_t)n1, "\"%s\": bound", esc(in, in_len));
		ck_assert_msg(crlf_only(s1, (size_t)n1), "\"%s\": bare CR or LF in \"%s\"", esc(in, in_len),
			      esc(s1, (size_t)n1));
		ck_assert_msg(count_lines(s1, (size_t)n1, "content-length") + count_lines(s1, (size_t)n1, "transfer-encoding") <= 1,
			      "\"%s\": several framing lines in \"%s\"", esc(in, in_len), esc(s1, (size_t)n1));
		ck_assert_int_eq(count_lines(s1, (size_t)n1, "connection"), k == 0 ? 0 : 1);
		r2 = rh_http_parse_response(s1, (size_t)n1, &lim, false, &b);
		ck_assert_msg(r2 == (int)n1, "\"%s\" rw %d: serialized \"%s\" reparses as %d", esc(in, in_len), k,
			      esc(s1, (size_t)n1), r2);
		ck_assert_int_eq(b.minor_version, 1);
		ck_assert_int_eq(b.status, a.status);
		ck_assert(span_eq(b.reason, a.reason));
		ck_assert_msg(b.framing == want_framing, "\"%s\" rw %d: framing %d want %d", esc(in, in_len), k, b.framing,
			      want_framing);
		if (want_framing == RH_BODY_LENGTH)
			ck_assert_uint_eq(b.content_length, a.content_length);
		if (k == 1)
			ck_assert(!b.keep_alive);
		for (;;) {
			while (oa < a.num_headers && a.headers[oa].kind != RH_HDR_OTHER)
				oa++;
			while (ob < b.num_headers && b.headers[ob].kind != RH_HDR_OTHER)
				ob++;
			if (oa == a.num_headers || ob == b.num_headers)
				break;
			ck_assert_msg(span_eq(a.headers[oa].name, b.headers[ob].name) &&
					      span_eq(a.headers[oa].value, b.headers[ob].value),
				      "\"%s\": field %zu differs in \"%s\"", esc(in, in_len), oa, esc(s1, (size_t)n1));
			oa++;
			ob++;
		}
		ck_assert_msg(oa == a.num_headers && ob == b.num_headers, "\"%s\": fields differ: \"%s\"",
			      esc(in, in_len), esc(s1, (size_t)n1));
	}
}
END_TEST

/* --- strict parser rules: requests --- */

struct err_case {
	const char *in;
	int status;
};

static const struct err_case strict_errs[] = {
	/* Transfer-Encoding lists */
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:  \r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400 },
	{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
	/* Content-Length: one decimal number on one line, at most 2^53 */
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:   \r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 400 },
	/* Host */
	{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: u:p@b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: x:80x\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: x:80:81\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost:   \r\n\r\n", 400 },
	{ "GET / HTTP/1.0\r\nHost: a@b\r\n\r\n", 400 },
	/* targets */
	{ "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n", 400 },
	{ "GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http://u:p@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http://x:80x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http:/x HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http://a/p HTTP/1.1\r\n\r\n", 400 }, /* the authority does not stand for Host in 1.1 */
	{ "GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET ?q HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	/* request line */
	{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501 },
};

START_TEST(test_strict_errors)
{
	const struct err_case *c = &strict_errs[_i];

	req_err(c->in, strlen(c->in), c->status);
}
END_TEST

static const char *const strict_oks[] = {
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tCHUNKED\t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: EXAMPLE.com\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: 1.2.3.4\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: 1.2.3.4:1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: my-host_1.example\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET HTTP://X/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET https://x:8443/p HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
};

START_TEST(test_strict_oks)
{
	static struct rh_http_request req;
	const char *s = strict_oks[_i];

	req_ok(s, strlen(s), &req);
}
END_TEST

START_TEST(test_request_targets)
{
	static struct rh_http_request req;

	req_ok(LIT("GET /a/b?c HTTP/1.1\r\nHost: h\r\n\r\n"), &req);
	ck_assert_int_eq(req.target_form, RH_TARGET_ORIGIN);
	ck_assert_span(req.target, "/a/b?c");
	ck_assert_span(req.path, "/a/b?c");
	ck_assert_uint_eq(req.authority.len, 0);

	req_ok(LIT("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), &req);
	ck_assert_int_eq(req.target_form, RH_TARGET_ASTERISK);
	ck_assert_span(req.path, "*");
	ck_assert_uint_eq(req.authority.len, 0);

	req_ok(LIT("GET https://x:8443/p HTTP/1.1\r\nHost: x\r\n\r\n"), &req);
	ck_assert_int_eq(req.target_form, RH_TARGET_ABSOLUTE);
	ck_assert_span(req.target, "https://x:8443/p");
	ck_assert_span(req.authority, "x:8443");
	ck_assert_span(req.path, "/p");

	req_ok(LIT("GET HTTP://X/ HTTP/1.1\r\nHost: x\r\n\r\n"), &req);
	ck_assert_int_eq(req.target_form, RH_TARGET_ABSOLUTE);
	ck_assert_span(req.authority, "X");
	ck_assert_span(req.path, "/");

	req_ok(LIT("GET http://a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert_int_eq(req.target_form, RH_TARGET_ABSOLUTE);
	ck_assert_span(req.authority, "a");
	ck_assert_span(req.path, "?x=1");

	req_ok(LIT("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert_span(req.authority, "a");
	ck_assert_uint_eq(req.path.len, 0);

	req_ok(LIT("GET http://[::1]:8080/p HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert_span(req.authority, "[::1]:8080");
	ck_assert_span(req.path, "/p");

	/* an absolute target needs no Host in 1.0 */
	req_ok(LIT("GET http://a/p HTTP/1.0\r\n\r\n"), &req);
	ck_assert_int_eq(req.host_index, -1);
	ck_assert_span(req.authority, "a");
}
END_TEST

START_TEST(test_max_body)
{
	static struct rh_http_request req;
	struct rh_http_limits l = lim;

	l.max_body = 100;
	req_err_lim(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"), &l, 413);
	req_err_lim(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n"), &l, 413);
	req_ok_lim(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"), &l, &req);
	ck_assert_int_eq(req.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 100);
	req_ok_lim(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &l, &req);
	l.max_body = 0;
	req_ok_lim(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"), &l, &req);
	req_ok_lim(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n"), &l, &req);
	ck_assert_uint_eq(req.content_length, UINT64_C(9007199254740992));
	/* NULL limits: no body limit either */
	ck_assert_int_eq(rh_http_parse_request(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"), NULL,
					       &req), (int)sizeof("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n") - 1);
}
END_TEST

START_TEST(test_idempotent)
{
	static const struct {
		const char *method;
		bool idempotent;
	} m[] = {
		{ "GET", true },     { "HEAD", true },    { "OPTIONS", true }, { "TRACE", true },
		{ "PUT", true },     { "DELETE", true },  { "POST", false },   { "PATCH", false },
		{ "get", false },    { "GETX", false },   { "PUTS", false },   { "DELET", false },
		{ "LOCK", false },   { "PROPFIND", false },
	};
	static struct rh_http_request req;
	char buf[128];

	for (size_t i = 0; i < NELEM(m); i++) {
		int n = snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", m[i].method);

		ck_assert_msg(rh_http_parse_request(buf, (size_t)n, &lim, &req) == n, "%s: not parsed", m[i].method);
		ck_assert_msg(req.is_idempotent == m[i].idempotent, "%s: is_idempotent %d", m[i].method,
			      req.is_idempotent);
	}
}
END_TEST

START_TEST(test_has_content_length)
{
	static struct rh_http_request req;

	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &req);
	ck_assert(req.has_content_length);
	ck_assert_int_eq(req.body, RH_BODY_NONE);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), &req);
	ck_assert(req.has_content_length);
	ck_assert_int_eq(req.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 5);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert(!req.has_content_length);
	ck_assert_int_eq(req.body, RH_BODY_NONE);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), &req);
	ck_assert(!req.has_content_length);
	ck_assert_int_eq(req.body, RH_BODY_CHUNKED);
}
END_TEST

START_TEST(test_untrusted_kinds)
{
	static const char s[] = "GET / HTTP/1.1\r\n"
				"Host: a\r\n"
				"X-Forwarded-Proto: https\r\n"
				"Forwarded: for=1.2.3.4\r\n"
				"X-Real-IP: 1.2.3.4\r\n"
				"X-Forwarded_Proto: https\r\n"
				"X_Forwarded_For: 1\r\n"
				"Transfer_Encoding: chunked\r\n"
				"Content_Length: 5\r\n"
				"x_forwarded_proto: https\r\n"
				"X_Real_IP: 1\r\n"
				"X-Forwarded-For: 2\r\n"
				"X-Forwarded: 3\r\n"
				"X-Forwarded-Host: h\r\n"
				"\r\n";
	static const enum rh_hdr_kind want[] = {
		RH_HDR_HOST,      RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED,
		RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED, RH_HDR_UNTRUSTED,
		RH_HDR_X_FORWARDED_FOR, RH_HDR_OTHER, RH_HDR_UNTRUSTED,
	};
	static struct rh_http_request req;

	req_ok(LIT(s), &req);
	ck_assert_uint_eq(req.num_headers, NELEM(want));
	for (size_t i = 0; i < req.num_headers; i++)
		ck_assert_msg(req.headers[i].kind == want[i], "header %zu (%s): kind %d want %d", i,
			      esc(req.headers[i].name.p, req.headers[i].name.len), req.headers[i].kind, want[i]);
	/* the underscore spellings do not frame anything */
	ck_assert_int_eq(req.body, RH_BODY_NONE);
	ck_assert(!req.has_content_length);
}
END_TEST

/* --- strict parser rules: responses --- */

START_TEST(test_response_strict)
{
	static struct rh_http_response resp;

	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), true);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 9007199254740993\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 304 Not Modified\r\nContent-Length: 9007199254740993\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), false);

	resp_ok(LIT("HTTP/1.1 200 OK\r\nContent-Length: 9007199254740992\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(resp.content_length, UINT64_C(9007199254740992));
}
END_TEST

START_TEST(test_response_framing_field)
{
	static const struct {
		const char *in;
		bool head;
		enum rh_body_kind body, framing;
		uint64_t cl;
	} c[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true, RH_BODY_NONE, RH_BODY_LENGTH, 42 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", false, RH_BODY_LENGTH, RH_BODY_LENGTH, 42 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, RH_BODY_LENGTH, RH_BODY_LENGTH, 0 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, RH_BODY_NONE, RH_BODY_CHUNKED, 0 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, RH_BODY_CHUNKED, RH_BODY_CHUNKED, 0 },
		{ "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", true, RH_BODY_NONE, RH_BODY_UNTIL_CLOSE, 0 },
		{ "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false, RH_BODY_UNTIL_CLOSE, RH_BODY_UNTIL_CLOSE, 0 },
		{ "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, RH_BODY_NONE, RH_BODY_LENGTH, 100 },
		{ "HTTP/1.1 204 No Content\r\n\r\n", false, RH_BODY_NONE, RH_BODY_UNTIL_CLOSE, 0 },
		{ "HTTP/1.1 100 Continue\r\n\r\n", false, RH_BODY_NONE, RH_BODY_UNTIL_CLOSE, 0 },
	};
	static struct rh_http_response resp;

	for (size_t i = 0; i < NELEM(c); i++) {
		size_t n = strlen(c[i].in);

		resp_ok(c[i].in, n, c[i].head, &resp);
		ck_assert_msg(resp.body == c[i].body && resp.framing == c[i].framing,
			      "\"%s\" head %d: body %d framing %d, want %d %d", esc(c[i].in, n), c[i].head, resp.body,
			      resp.framing, c[i].body, c[i].framing);
		if (c[i].framing == RH_BODY_LENGTH)
			ck_assert_msg(resp.content_length == c[i].cl, "\"%s\": content_length %" PRIu64 " want %" PRIu64,
				      esc(c[i].in, n), resp.content_length, c[i].cl);
	}
}
END_TEST

START_TEST(test_response_reason)
{
	static struct rh_http_response resp;

	resp_ok(LIT("HTTP/1.1 200 OK\r\n\r\n"), true, &resp);
	ck_assert_span(resp.reason, "OK");
	resp_ok(LIT("HTTP/1.1 404 Not Found\r\n\r\n"), true, &resp);
	ck_assert_span(resp.reason, "Not Found");
	ck_assert_int_eq(resp.status, 404);
	resp_ok(LIT("HTTP/1.1 200\r\n\r\n"), true, &resp);
	ck_assert_uint_eq(resp.reason.len, 0);
	resp_ok(LIT("HTTP/1.1 200 \r\n\r\n"), true, &resp);
	ck_assert_uint_eq(resp.reason.len, 0);
	resp_ok(LIT("HTTP/1.0 503 Service Unavailable\n\n"), true, &resp);
	ck_assert_span(resp.reason, "Service Unavailable");
	ck_assert_int_eq(resp.minor_version, 0);
}
END_TEST

/* --- chunked decoder --- */


/* Asserts that <s> gives <want> consumed (or -1) and <done>, in one piece and byte by byte. */
static void chunked_check(const char *s, size_t n, ssize_t want, bool done)
{
	struct rh_chunked c;
	size_t *cuts = malloc(n * sizeof(*cuts) + 1);
	ssize_t r;

	ck_assert_ptr_nonnull(cuts);
	r = chunked_all(&c, s, n);
	ck_assert_msg(r == want, "\"%s\" whole: got %zd want %zd", esc(s, n), r, want);
	ck_assert_msg(rh_chunked_done(&c) == done, "\"%s\" whole: done %d", esc(s, n), rh_chunked_done(&c));
	for (size_t i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	r = chunked_pieces(&c, s, n, cuts, n ? n - 1 : 0);
	ck_assert_msg(r == want, "\"%s\" bytewise: got %zd want %zd", esc(s, n), r, want);
	ck_assert(rh_chunked_done(&c) == done);
	free(cuts);
}

#define CHUNKED_OK(lit) chunked_check(LIT(lit), (ssize_t)(sizeof(lit) - 1), true)
#define CHUNKED_BAD(lit) chunked_check(LIT(lit), -1, false)

START_TEST(test_chunked_size_limit)
{
	struct rh_chunked c;

	/* 2^53 + 1 */
	CHUNKED_BAD("20000000000001\r\n");
	CHUNKED_BAD("20000000000001\r\nx\r\n0\r\n\r\n");
	CHUNKED_BAD("0020000000000001\r\n");
	CHUNKED_BAD("ffffffffffffffff\r\n");
	CHUNKED_BAD("40000000000000\r\n");
	/* 2^53 itself is fine; its data just never ends here */
	ck_assert_int_eq(chunked_all(&c, LIT("20000000000000\r\nabc")), 19);
	ck_assert_uint_eq(c.remaining, (UINT64_C(1) << 53) - 3);
	ck_assert_int_eq(chunked_all(&c, LIT("0020000000000000\r\nabc")), 21);
	ck_assert_uint_eq(c.remaining, (UINT64_C(1) << 53) - 3);
}
END_TEST

START_TEST(test_chunked_trailer_syntax)
{
	CHUNKED_OK("0\r\nX-T: v\r\n\r\n");
	CHUNKED_OK("5\r\nhello\r\n0\r\nX-T: v\r\nY:w\r\nZ:\r\n\r\n");
	CHUNKED_BAD("0\r\nNoColon\r\n\r\n");
	CHUNKED_BAD("0\r\nX T: v\r\n\r\n");
	CHUNKED_BAD("0\r\nX-T : v\r\n\r\n");
	CHUNKED_BAD("0\r\n: v\r\n\r\n");
	CHUNKED_BAD("0\r\nX(T): v\r\n\r\n");
	CHUNKED_BAD("0\r\nX-T: v\r\n folded\r\n\r\n");
	CHUNKED_BAD("0\r\n\tX-T: v\r\n\r\n");
	CHUNKED_BAD("0\r\nX-T: v\n\r\n");
	CHUNKED_BAD("0\r\nX-T: v\r\nY: w\n\r\n");
	CHUNKED_BAD("0\r\nX-T: v\r\n\n");
}
END_TEST

START_TEST(test_chunked_bare_lf)
{
	CHUNKED_BAD("5\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5;ext\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("0\n\r\n");
	CHUNKED_BAD("5\r\nhello\n0\r\n\r\n");
	CHUNKED_OK("5\r\nhello\r\n0\r\n\r\n");
}
END_TEST

/* --- round trip --- */

static const char *const rt_requests[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x?y=z HTTP/1.1\nHost:   example.com  \nUser-Agent:\tt/1\t\nAccept: */*\n\n",
	"\r\n\nPOST /up HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \r\nExpect: 100-continue\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tCHUNKED\t\r\nConnection: x-a, close\r\nX-A: 1\r\n\r\n",
	"GET / HTTP/1.0\nConnection: keep-alive\nX-Empty:\n\n",
	"GET http://evil.example/admin?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
	"GET http://a?x=1 HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET HTTP://X HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET https://[::1]:8443 HTTP/1.0\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	("DELETE /r HTTP/1.1\r\nHost: [::1]:8080\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"
	 "X-Real-IP: 3\r\nContent-Length: 0\r\n\r\n"),
	"PUT /u HTTP/1.0\r\nHost: a\r\nContent-Length: 12\r\nCookie: a=b; c=d\r\nKeep-Alive: 5\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: \x80\xff\tz  \r\nX_Forwarded_For: 1\r\n\r\n",
	"PATCH /p HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nFoo: bar\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n",
	"POST /p HTTP/1.1\r\nX: 1\nHost: a\r\nContent-Length: 007\nY:2\r\n\n",
};

static const struct rw_spec rt_rewrites[] = {
	{ .xff = RH_XFF_APPEND },
	{ .xff = RH_XFF_REPLACE, .https = true, .ip = "::1" },
	{ .xff = RH_XFF_OFF, .host = "backend:81" },
	{ .xff = RH_XFF_OFF },
};

/* The path the backend should see: absolute form's rest gets a leading '/'. */
static void expected_path(const struct rh_http_request *req, char *out, size_t size)
{
	const char *slash = req->target_form == RH_TARGET_ABSOLUTE && (req->path.len == 0 || req->path.p[0] == '?')
				    ? "/" : "";

	snprintf(out, size, "%s%.*s", slash, (int)req->path.len, req->path.p);
}

START_TEST(test_round_trip)
{
	static struct rh_http_request a, b, c;
	static char s1[8192], s2[8192];
	const char *in = rt_requests[_i];
	size_t in_len = strlen(in);
	int r = rh_http_parse_request(in, in_len, &lim, &a);

	ck_assert_msg(r == (int)in_len, "parse \"%s\": %d (status %d)", esc(in, in_len), r, a.error_status);
	for (size_t k = 0; k < NELEM(rt_rewrites); k++) {
		struct rh_request_rewrite rw = make_rw(&rt_rewrites[k]);
		char path[4096];
		ssize_t n1, n2;
		int r2;
		size_t bound = rh_http1_request_size_bound(&a, (size_t)r, &rw);
		size_t oa = 0, ob = 0;

		n1 = rh_http1_serialize_request(&a, &rw, s1, sizeof(s1));
		ck_assert_msg(n1 > 0, "\"%s\" rw %zu: serialize %zd", esc(in, in_len), k, n1);
		ck_assert_msg(bound >= (size_t)n1, "\"%s\" rw %zu: bound %zu < %zd", esc(in, in_len), k, bound, n1);
		ck_assert_msg(crlf_only(s1, (size_t)n1), "\"%s\" rw %zu: bare CR or LF in \"%s\"", esc(in, in_len), k,
			      esc(s1, (size_t)n1));
		ck_assert_msg(n1 >= 4 && memcmp(s1 + n1 - 4, "\r\n\r\n", 4) == 0, "\"%s\": ends \"%s\"",
			      esc(in, in_len), esc(s1, (size_t)n1));
		ck_assert_msg(count_lines(s1, (size_t)n1, "content-length") +
					      count_lines(s1, (size_t)n1, "transfer-encoding") <= 1,
			      "\"%s\": several framing lines in \"%s\"", esc(in, in_len), esc(s1, (size_t)n1));
		ck_assert_msg(count_lines(s1, (size_t)n1, "x-forwarded-for") <= 1, "\"%s\": \"%s\"", esc(in, in_len),
			      esc(s1, (size_t)n1));
		ck_assert_int_eq(count_lines(s1, (size_t)n1, "x-forwarded-proto"), 1);

		r2 = rh_http_parse_request(s1, (size_t)n1, &lim, &b);
		ck_assert_msg(r2 == (int)n1, "\"%s\" rw %zu: serialized \"%s\" reparses as %d (status %d)",
			      esc(in, in_len), k, esc(s1, (size_t)n1), r2, b.error_status);
		ck_assert(span_eq(a.method, b.method));
		expected_path(&a, path, sizeof(path));
		ck_assert_span(b.path, path);
		ck_assert_span(b.target, path);
		ck_assert_int_eq(b.target_form, a.target_form == RH_TARGET_ASTERISK ? RH_TARGET_ASTERISK : RH_TARGET_ORIGIN);
		ck_assert_int_eq(b.minor_version, a.minor_version);
		ck_assert_int_eq(b.body, a.body);
		ck_assert_uint_eq(b.has_content_length, a.has_content_length);
		if (a.body == RH_BODY_LENGTH)
			ck_assert_uint_eq(b.content_length, a.content_length);
		ck_assert(b.is_idempotent == a.is_idempotent);
		/* Host: ours, the authority, the client's, or none */
		if (rw.host.len)
			ck_assert(b.host_index >= 0 && span_eq(b.headers[b.host_index].value, rw.host));
		else if (a.target_form == RH_TARGET_ABSOLUTE)
			ck_assert(b.host_index >= 0 && span_eq(b.headers[b.host_index].value, a.authority));
		else if (a.host_index >= 0)
			ck_assert(b.host_index >= 0 &&
				  span_eq(b.headers[b.host_index].value, a.headers[a.host_index].value));
		else
			ck_assert_int_eq(b.host_index, -1);
		/* the end-to-end fields, in order, with the same values */
		for (;;) {
			while (oa < a.num_headers && a.headers[oa].kind != RH_HDR_OTHER && a.headers[oa].kind != RH_HDR_EXPECT)
				oa++;
			while (ob < b.num_headers && b.headers[ob].kind != RH_HDR_OTHER && b.headers[ob].kind != RH_HDR_EXPECT)
				ob++;
			if (oa == a.num_headers || ob == b.num_headers)
				break;
			ck_assert_msg(span_eq(a.headers[oa].name, b.headers[ob].name) &&
					      span_eq(a.headers[oa].value, b.headers[ob].value),
				      "\"%s\": field %zu \"%s: %s\" came out as \"%s: %s\"", esc(in, in_len), oa,
				      esc(a.headers[oa].name.p, a.headers[oa].name.len),
				      esc(a.headers[oa].value.p, a.headers[oa].value.len),
				      esc(b.headers[ob].name.p, b.headers[ob].name.len),
				      esc(b.headers[ob].value.p, b.headers[ob].value.len));
			oa++;
			ob++;
		}
		ck_assert_msg(oa == a.num_headers && ob == b.num_headers, "\"%s\": end-to-end fields differ: \"%s\"",
			      esc(in, in_len), esc(s1, (size_t)n1));

		/* Without X-Forwarded-For (which append grows by one address a pass), serializing the
		 * serialized head again changes nothing. */
		if (rw.xff == RH_XFF_OFF) {
			n2 = rh_http1_serialize_request(&b, &rw, s2, sizeof(s2));
			ck_assert_msg(n2 == n1 && memcmp(s1, s2, (size_t)n1) == 0,
				      "\"%s\": not a fixpoint:\n  first  \"%s\"\n  second \"%s\"", esc(in, in_len),
				      esc(s1, (size_t)n1), n2 > 0 ? esc(s2, (size_t)n2) : "");
			ck_assert_int_eq(rh_http_parse_request(s2, (size_t)n2, &lim, &c), (int)n2);
		}
	}
}
END_TEST

static Suite *serialize_suite(void)
{
	Suite *s = suite_create("serialize");
	TCase *tc;

	tc = tcase_create("request");
	tcase_add_loop_test(tc, test_ser_request, 0, (int)NELEM(ser_req_cases));
	tcase_add_test(tc, test_ser_request_big);
	tcase_add_test(tc, test_ser_request_bound_worst);
	suite_add_tcase(s, tc);

	tc = tcase_create("response");
	tcase_add_loop_test(tc, test_ser_response, 0, (int)NELEM(ser_resp_cases));
	tcase_add_test(tc, test_ser_response_keeps_codings);
	tcase_add_test(tc, test_ser_response_codings_case);
	tcase_add_test(tc, test_ser_response_bound_codings);
	tcase_add_test(tc, test_ser_response_bound_worst);
	tcase_add_loop_test(tc, test_response_round_trip, 0, (int)NELEM(rt_responses));
	suite_add_tcase(s, tc);

	tc = tcase_create("strict");
	tcase_add_loop_test(tc, test_strict_errors, 0, (int)NELEM(strict_errs));
	tcase_add_loop_test(tc, test_strict_oks, 0, (int)NELEM(strict_oks));
	tcase_add_test(tc, test_request_targets);
	tcase_add_test(tc, test_max_body);
	tcase_add_test(tc, test_idempotent);
	tcase_add_test(tc, test_has_content_length);
	tcase_add_test(tc, test_untrusted_kinds);
	tcase_add_test(tc, test_response_strict);
	tcase_add_test(tc, test_response_framing_field);
	tcase_add_test(tc, test_response_reason);
	suite_add_tcase(s, tc);

	tc = tcase_create("chunked");
	tcase_add_test(tc, test_chunked_size_limit);
	tcase_add_test(tc, test_chunked_trailer_syntax);
	tcase_add_test(tc, test_chunked_bare_lf);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_loop_test(tc, test_round_trip, 0, (int)NELEM(rt_requests));
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(serialize_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
