/* Unit tests for http1: request and response heads, chunked framing. */
#include "http1_check_helpers.h"
#include "roundhouse/http1.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct rh_http_limits lim = { .max_head = 8192, .max_uri = 2048, .max_headers = 100 };

/* Length of a string literal, which may contain NUL. */
#define LIT(s) (s), (sizeof(s) - 1)

static int req_parse(const char *s, size_t n, struct rh_http_request *req)
{
	return rh_http_parse_request(s, n, &lim, req);
}

static int resp_split(const char *s, size_t n, bool head)
{
	struct rh_http_response resp;
	int whole = resp_parse_copy(s, n, &lim, head, &resp);

	for (size_t i = 0; i < n; i++) {
		int r = resp_parse_copy(s, i, &lim, head, &resp);

		if (whole > 0 && i >= (size_t)whole)
			ck_assert_int_eq(r, whole);
		else if (whole > 0)
			ck_assert_msg(r == RH_HTTP_PARTIAL, "prefix %zu of %zu: got %d, want partial", i, n, r);
		else
			ck_assert_msg(r == RH_HTTP_PARTIAL || r == RH_HTTP_INVALID, "prefix %zu: got %d", i, r);
	}
	return whole;
}

/* Asserts that request <s> is rejected with <status>, consistently for all its prefixes. */
static void req_err(const char *s, size_t n, int status)
{
	int st = 0;
	int r = req_split(s, n, &lim, &st);

	ck_assert_msg(r == RH_HTTP_INVALID && st == status, "\"%.*s\": got %d/%d, want -1/%d", (int)n, s, r,
		      st, status);
}

/* Asserts that request <s> is accepted as a head of its whole length; fills <req>. */
static void req_ok(const char *s, size_t n, struct rh_http_request *req)
{
	int st = 0;
	int r = req_split(s, n, &lim, &st);

	ck_assert_msg(r == (int)n, "\"%.*s\": got %d (status %d), want %zu", (int)n, s, r, st, n);
	ck_assert_int_eq(req_parse(s, n, req), (int)n);
}

static bool span_is(struct rh_span sp, const char *want)
{
	return sp.len == strlen(want) && memcmp(sp.p, want, sp.len) == 0;
}

#define ck_assert_span(sp, want) \
	ck_assert_msg(span_is((sp), (want)), "span \"%.*s\" != \"%s\"", (int)(sp).len, (sp).p, (want))

/* --- requests: basics --- */

START_TEST(test_simple_get)
{
	static const char s[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
	struct rh_http_request req;

	req_ok(LIT(s), &req);
	ck_assert_span(req.method, "GET");
	ck_assert_span(req.target, "/index.html?q=1");
	ck_assert_int_eq(req.target_form, RH_TARGET_ORIGIN);
	ck_assert_span(req.path, "/index.html?q=1");
	ck_assert(req.is_idempotent);
	ck_assert_int_eq(req.minor_version, 1);
	ck_assert(!req.is_head);
	ck_assert(req.keep_alive);
	ck_assert(!req.expect_continue);
	ck_assert_int_eq(req.body, RH_BODY_NONE);
	ck_assert_uint_eq(req.content_length, 0);
	ck_assert_uint_eq(req.num_headers, 1);
	ck_assert_int_eq(req.host_index, 0);
	ck_assert_span(req.headers[0].name, "Host");
	ck_assert_span(req.headers[0].value, "example.com");
	ck_assert_int_eq(req.headers[0].kind, RH_HDR_HOST);
}
END_TEST

START_TEST(test_header_kinds)
{
	static const char s[] = "POST /p HTTP/1.1\r\n"
				"Accept: */*\r\n"
				"hOST: a\r\n"
				"content-LENGTH: 3\r\n"
				"Connection: keep-alive\r\n"
				"Keep-Alive: timeout=5\r\n"
				"Proxy-Connection: keep-alive\r\n"
				"TE: trailers\r\n"
				"Trailer: X-Sum\r\n"
				"Upgrade: h2c\r\n"
				"X-Forwarded-For: 10.0.0.1\r\n"
				"x-forwarded-PROTO: https\r\n"
				"Expect: 100-continue\r\n"
				"X-Host: b\r\n"
				"Hosts: c\r\n"
				"\r\n";
	static const enum rh_hdr_kind want[] = {
		RH_HDR_OTHER, RH_HDR_HOST, RH_HDR_CONTENT_LENGTH, RH_HDR_CONNECTION, RH_HDR_HOP, RH_HDR_HOP, RH_HDR_HOP,
		RH_HDR_HOP, RH_HDR_HOP, RH_HDR_X_FORWARDED_FOR, RH_HDR_UNTRUSTED, RH_HDR_EXPECT,
		RH_HDR_OTHER, RH_HDR_OTHER,
	};
	struct rh_http_request req;

	req_ok(LIT(s), &req);
	ck_assert_uint_eq(req.num_headers, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < req.num_headers; i++)
		ck_assert_msg(req.headers[i].kind == want[i], "header %zu: kind %d want %d", i,
			      req.headers[i].kind, want[i]);
	ck_assert_int_eq(req.host_index, 1);
	ck_assert_int_eq(req.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 3);
	ck_assert(req.expect_continue);

	static const char te[] = "POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-encoding: chunked\r\n\r\n";
	req_ok(LIT(te), &req);
	ck_assert_int_eq(req.headers[1].kind, RH_HDR_TRANSFER_ENCODING);
	ck_assert_int_eq(req.body, RH_BODY_CHUNKED);
}
END_TEST

START_TEST(test_spans_trimmed)
{
	static const char s[] = "PUT /x HTTP/1.1\r\n"
				"Host:a\r\n"
				"X-Trim: \t  spaced  value \t \r\n"
				"X-Empty:\r\n"
				"X-Empty2:   \r\n"
				"X-LF: lf\n"
				"Content-Length: 0\r\n"
				"\r\n";
	struct rh_http_request req;

	ck_assert_int_eq(rh_http_parse_request(LIT(s), NULL, &req), (int)sizeof(s) - 1);
	ck_assert_span(req.headers[0].value, "a");
	ck_assert_span(req.headers[1].value, "spaced  value");
	ck_assert_span(req.headers[2].value, "");
	ck_assert_span(req.headers[3].value, "");
	ck_assert_span(req.headers[4].name, "X-LF");
	ck_assert(req.has_content_length);
	ck_assert_span(req.headers[4].value, "lf");
	ck_assert_int_eq(req.body, RH_BODY_NONE);
}
END_TEST

START_TEST(test_lf_only)
{
	static const char s[] = "GET / HTTP/1.1\nHost: a\nX: y\n\n";
	struct rh_http_request req;

	req_ok(LIT(s), &req);
	ck_assert_span(req.method, "GET");
	ck_assert_span(req.headers[1].name, "X");
	ck_assert_span(req.headers[1].value, "y");
}
END_TEST

START_TEST(test_leading_empty_lines)
{
	static const char s[] = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char many[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct rh_http_request req;

	req_ok(LIT(s), &req);
	ck_assert_span(req.method, "GET");
	ck_assert_ptr_eq(req.method.p, s + 5);
	/* a cap keeps a client from sending endless empty lines */
	req_err(LIT(many), 400);
	req_err(LIT("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_pipelined)
{
	static const char s[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
				"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	static const size_t first = sizeof("GET /a HTTP/1.1\r\nHost: a\r\n\r\n") - 1;
	struct rh_http_request req;
	int r;

	r = req_parse(LIT(s), &req);
	ck_assert_int_eq(r, (int)first);
	ck_assert_span(req.target, "/a");
	ck_assert(req.keep_alive);
	r = req_parse(s + first, sizeof(s) - 1 - first, &req);
	ck_assert_int_eq(r, (int)(sizeof(s) - 1 - first));
	ck_assert_span(req.target, "/b");
	ck_assert(!req.keep_alive);
	/* the split helper also checks every prefix, including those that end inside the second head */
	ck_assert_int_eq(req_split(LIT(s), &lim, NULL), (int)first);
}
END_TEST

START_TEST(test_methods)
{
	struct rh_http_request req;

	req_ok(LIT("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert(req.is_head);
	/* methods are case-sensitive: "head" is some other method */
	req_ok(LIT("head / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert(!req.is_head);
	req_ok(LIT("M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert_span(req.method, "M-SEARCH");
	ck_assert_span(req.target, "/x");
	/* CONNECT asks for a tunnel, which is not proxied: 501 (its authority-form target parses) */
	req_err(LIT("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 501);
	/* methods are case-sensitive: "connect" is some other method, and authority form is CONNECT's */
	req_err(LIT("connect example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 400);
	req_err(LIT("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT(" / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_request_line_errors)
{
	req_err(LIT("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET /\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / \r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), 400);
	/* a method that merely starts with CONNECT is proxied */
	struct rh_http_request req;
	req_ok(LIT("CONNECTX / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
}
END_TEST

START_TEST(test_versions)
{
	struct rh_http_request req;

	req_ok(LIT("GET / HTTP/1.0\r\n\r\n"), &req);
	ck_assert_int_eq(req.minor_version, 0);
	ck_assert_int_eq(req.host_index, -1);
	req_err(LIT("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
	req_err(LIT("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505);
	req_err(LIT("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505);
	req_err(LIT("GET / HTTP/3.0\n\n"), 505);
	req_err(LIT("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / http/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/x.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/2.0x\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / FTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_expect)
{
	struct rh_http_request req;

	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-CONTINUE\r\nContent-Length: 9\r\n\r\n"), &req);
	ck_assert(req.expect_continue);
	ck_assert_int_eq(req.headers[1].kind, RH_HDR_EXPECT);
	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n"), &req);
	ck_assert(!req.expect_continue);
	ck_assert_int_eq(req.headers[1].kind, RH_HDR_EXPECT);
	/* RFC 9110 10.1.1: ignored in HTTP/1.0 */
	req_ok(LIT("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), &req);
	ck_assert(!req.expect_continue);
}
END_TEST

/* --- field line syntax --- */

START_TEST(test_field_syntax)
{
	struct rh_http_request req;

	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\xff\r\nX-Tab: a\tb\r\n\r\n"), &req);
	ck_assert_span(req.headers[1].value, "caf\xc3\xa9\xff");
	ck_assert_span(req.headers[2].value, "a\tb");
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nX-Odd: \"q\" (c) <>?,;=@[]{}\\/\r\n\r\n"), &req);

	/* obs-fold, and whitespace before the first field line */
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
	/* whitespace between name and colon (RFC 9112 5.1) */
	req_err(LIT("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n"), 400);
	/* empty name, no colon, non-token name */
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n"), 400);
	/* CTLs in the value */
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f" "b\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_nul)
{
	req_err(LIT("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\0\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\n\0\r\n\r\n"), 400);
	req_err(LIT("\0GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_bare_cr)
{
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX\r: a\r\n\r\n"), 400);
	req_err(LIT("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET\r/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_host)
{
	struct rh_http_request req;

	req_ok(LIT("GET / HTTP/1.1\r\nAccept: x\r\nHost: a.example:8080\r\n\r\n"), &req);
	ck_assert_int_eq(req.host_index, 1);
	ck_assert_span(req.headers[1].value, "a.example:8080");
	req_ok(LIT("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), &req);
	ck_assert_int_eq(req.host_index, 0);
	req_err(LIT("GET / HTTP/1.1\r\nAccept: x\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhOsT: b\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}
END_TEST

/* --- Connection and keep-alive --- */

START_TEST(test_keep_alive_rules)
{
	struct rh_http_request req;

	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	req_ok(LIT("GET / HTTP/1.0\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	/* close wins, also across lines */
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	/* the Keep-Alive header itself is not a Connection option */
	req_ok(LIT("GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	/* empty list elements are allowed (RFC 9110 5.6.1) */
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: , keep-alive ,,\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
}
END_TEST

START_TEST(test_connection_marks_hop)
{
	static const char s[] = "GET / HTTP/1.1\r\n"
				"X-Before: 1\r\n"
				"Host: a\r\n"
				"Connection: x-before, close\r\n"
				"X-Keep: 2\r\n"
				"x-after: 3\r\n"
				"X-Forwarded-For: 1.2.3.4\r\n"
				"Connection: X-AFTER,x-forwarded-for\r\n"
				"X-Before: 4\r\n"
				"\r\n";
	static const enum rh_hdr_kind want[] = {
		RH_HDR_HOP, RH_HDR_HOST, RH_HDR_CONNECTION, RH_HDR_OTHER, RH_HDR_HOP, RH_HDR_HOP, RH_HDR_CONNECTION,
		RH_HDR_HOP,
	};
	struct rh_http_request req;

	req_ok(LIT(s), &req);
	ck_assert_uint_eq(req.num_headers, 8);
	for (size_t i = 0; i < req.num_headers; i++)
		ck_assert_msg(req.headers[i].kind == want[i], "header %zu: kind %d want %d", i,
			      req.headers[i].kind, want[i]);
	ck_assert(!req.keep_alive);
	ck_assert_int_eq(req.host_index, 1);
}
END_TEST

START_TEST(test_connection_errors)
{
	/* a Connection option must not strip framing or routing headers */
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Transfer-Encoding\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close x\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n"), 400);

	/* options naming other headers: each costs a pass over the headers, so at most 16, counted
	 * across lines (close and keep-alive do not count) */
	struct rh_http_request req;
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, a,b,c,d,e,f,g,h\r\n"
		   "Connection: i,j,k,l,m,n,o,p, keep-alive\r\n\r\n"), &req);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: a,b,c,d,e,f,g,h\r\n"
		    "Connection: i,j,k,l,m,n,o,p,q\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a\r\n\r\n"), 400);
}
END_TEST

/* --- Content-Length / Transfer-Encoding --- */

START_TEST(test_content_length)
{
	struct rh_http_request req;

	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 5);
	/* RFC 9110 8.6 lets a recipient take equal duplicates; a proxy that does forwards what another
	 * parser may read differently: one number on one line only */
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5 ,\t5\r\nContent-Length: 005\r\n\r\n"), 400);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n"), &req);
	ck_assert_uint_eq(req.content_length, 5);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_NONE);
	ck_assert_uint_eq(req.content_length, 0);
	ck_assert(req.has_content_length);
	/* framing numbers stop at 2^53 */
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n"), &req);
	ck_assert_uint_eq(req.content_length, 9007199254740992ULL);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), 400);
	req_ok(LIT("POST / HTTP/1.0\r\nContent-Length: 12\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 12);

	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_transfer_encoding)
{
	struct rh_http_request req;

	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_CHUNKED);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_CHUNKED);
	/* empty list elements are refused: parsers disagree on them */
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n"),
		400);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tCHUNKED\t\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_CHUNKED);

	/* Our choice: codings that do not end in exactly one chunked are 400 (RFC 9112 6.3, the length
	 * cannot be determined); chunked last with any other coding before it is 501 (RFC 9112 6.1, a
	 * coding we do not implement). */
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
		501);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n"), 501);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
		400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), 400);

	/* both framings, in either order, and TE in HTTP/1.0 */
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"), 400);
	req_err(LIT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}
END_TEST

/* --- limits --- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

START_TEST(test_uri_limit)
{
	struct rh_http_limits l = { .max_head = 8192, .max_uri = 64, .max_headers = 100 };
	char buf[512];
	char *t = repeat('a', 63);
	struct rh_http_request req;
	int n, st;

	n = snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", t);
	ck_assert_int_eq(req_split(buf, (size_t)n, &l, NULL), n);
	ck_assert_int_eq(rh_http_parse_request(buf, (size_t)n, &l, &req), n);
	ck_assert_uint_eq(req.target.len, 64);
	free(t);

	t = repeat('a', 64);
	n = snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", t);
	ck_assert_int_eq(req_split(buf, (size_t)n, &l, &st), -1);
	ck_assert_int_eq(st, 414);
	/* seen as soon as the 65th target byte is there, long before the request line ends */
	ck_assert_int_eq(rh_http_parse_request(buf, 4 + 65, &l, &req), -1);
	ck_assert_int_eq(req.error_status, 414);
	ck_assert_int_eq(rh_http_parse_request(buf, 4 + 64, &l, &req), RH_HTTP_PARTIAL);
	free(t);
}
END_TEST

START_TEST(test_head_limit)
{
	static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\n";
	size_t n = sizeof(s) - 1;
	struct rh_http_limits l = { .max_head = n, .max_uri = 64, .max_headers = 100 };
	struct rh_http_request req;
	int st;

	/* exactly max_head: fine */
	ck_assert_int_eq(req_split(s, n, &l, NULL), (int)n);
	/* one byte over, complete: 431 */
	l.max_head = n - 1;
	ck_assert_int_eq(req_split(s, n, &l, &st), -1);
	ck_assert_int_eq(st, 431);
	/* incomplete with len >= max_head: 431 at once; below max_head: partial */
	l.max_head = 20;
	ck_assert_int_eq(rh_http_parse_request(s, 20, &l, &req), -1);
	ck_assert_int_eq(req.error_status, 431);
	ck_assert_int_eq(rh_http_parse_request(s, 30, &l, &req), -1);
	ck_assert_int_eq(req.error_status, 431);
	ck_assert_int_eq(rh_http_parse_request(s, 19, &l, &req), RH_HTTP_PARTIAL);
	/* an error inside the first max_head bytes still has its own status */
	l.max_head = 25;
	ck_assert_int_eq(rh_http_parse_request(LIT("GET / HTTP/1.1\r\nHost : a\r\nX-Pad: 0123456789\r\n\r\n"),
					       &l, &req), -1);
	ck_assert_int_eq(req.error_status, 400);
	/* a head that ends within max_head is fine even with body bytes after it */
	l.max_head = n;
	char with_body[256];
	memcpy(with_body, s, n);
	memset(with_body + n, 'b', 100);
	ck_assert_int_eq(rh_http_parse_request(with_body, n + 100, &l, &req), (int)n);
}
END_TEST

static int many_headers(char *buf, size_t size, int count)
{
	int n = snprintf(buf, size, "GET / HTTP/1.1\r\nHost: a\r\n");

	for (int i = 1; i < count; i++)
		n += snprintf(buf + n, size - (size_t)n, "X-H%d: %d\r\n", i, i);
	n += snprintf(buf + n, size - (size_t)n, "\r\n");
	return n;
}

START_TEST(test_header_count_limit)
{
	static char buf[16384];
	struct rh_http_limits l = { .max_head = sizeof(buf), .max_uri = 64, .max_headers = 3 };
	struct rh_http_request req;
	int n, st;

	n = many_headers(buf, sizeof(buf), 3);
	ck_assert_int_eq(req_split(buf, (size_t)n, &l, NULL), n);
	n = many_headers(buf, sizeof(buf), 4);
	ck_assert_int_eq(req_split(buf, (size_t)n, &l, &st), -1);
	ck_assert_int_eq(st, 431);

	/* more than RH_HTTP_MAX_HEADERS is capped at it */
	l.max_headers = 1000;
	n = many_headers(buf, sizeof(buf), RH_HTTP_MAX_HEADERS);
	ck_assert_int_eq(rh_http_parse_request(buf, (size_t)n, &l, &req), n);
	ck_assert_uint_eq(req.num_headers, RH_HTTP_MAX_HEADERS);
	n = many_headers(buf, sizeof(buf), RH_HTTP_MAX_HEADERS + 1);
	ck_assert_int_eq(rh_http_parse_request(buf, (size_t)n, &l, &req), -1);
	ck_assert_int_eq(req.error_status, 431);
	/* NULL limits: only RH_HTTP_MAX_HEADERS */
	ck_assert_int_eq(rh_http_parse_request(buf, (size_t)n, NULL, &req), -1);
	ck_assert_int_eq(req.error_status, 431);
	n = many_headers(buf, sizeof(buf), 50);
	ck_assert_int_eq(rh_http_parse_request(buf, (size_t)n, NULL, &req), n);
}
END_TEST

/* --- every split point --- */

static const char *const valid_requests[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"\r\n\r\nGET /x?y=z HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0\r\nAccept: */*\r\n\r\n",
	"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: x-a, close\r\nX-A: 1\r\n\r\n",
	"GET / HTTP/1.0\nConnection: keep-alive\nX-Empty:\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: \x80\xff\tz  \r\n\r\n",
};

static const char *const invalid_requests[] = {
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a@b/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET /p#frag HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a/p#frag HTTP/1.1\r\nHost: a\r\n\r\n",
};

START_TEST(test_split_valid_requests)
{
	for (size_t i = 0; i < sizeof(valid_requests) / sizeof(valid_requests[0]); i++) {
		size_t n = strlen(valid_requests[i]);

		ck_assert_msg(req_split(valid_requests[i], n, &lim, NULL) == (int)n, "request %zu", i);
	}
}
END_TEST

START_TEST(test_split_invalid_requests)
{
	for (size_t i = 0; i < sizeof(invalid_requests) / sizeof(invalid_requests[0]); i++)
		ck_assert_msg(req_split(invalid_requests[i], strlen(invalid_requests[i]), &lim, NULL) == -1,
			      "request %zu", i);
}
END_TEST

static const char *const valid_responses[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
	"HTTP/1.0 200\r\nServer: x\r\n\r\n",
	"HTTP/1.1 204 \r\nDate: now\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 404 Not \x80 Found\nContent-Length: 0\n\n",
};

START_TEST(test_split_responses)
{
	for (size_t i = 0; i < sizeof(valid_responses) / sizeof(valid_responses[0]); i++) {
		size_t n = strlen(valid_responses[i]);

		ck_assert_msg(resp_split(valid_responses[i], n, false) == (int)n, "response %zu", i);
	}
	ck_assert_int_eq(resp_split(LIT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
				    false), -1);
	ck_assert_int_eq(resp_split(LIT("HTTP/1.1 2000 OK\r\n\r\n"), false), -1);
}
END_TEST

/* --- responses --- */

static void resp_ok(const char *s, size_t n, bool head, struct rh_http_response *resp)
{
	ck_assert_int_eq(resp_split(s, n, head), (int)n);
	ck_assert_int_eq(rh_http_parse_response(s, n, &lim, head, resp), (int)n);
}

static void resp_err(const char *s, size_t n, bool head)
{
	struct rh_http_response resp;

	ck_assert_msg(rh_http_parse_response(s, n, &lim, head, &resp) == -1, "\"%.*s\" accepted", (int)n, s);
	resp_split(s, n, head);
}

START_TEST(test_response_basic)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\n";
	struct rh_http_response resp;

	resp_ok(LIT(s), false, &resp);
	ck_assert_span(resp.reason, "OK");
	ck_assert_int_eq(resp.minor_version, 1);
	ck_assert_int_eq(resp.status, 200);
	ck_assert(resp.keep_alive);
	ck_assert_int_eq(resp.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(resp.content_length, 12);
	ck_assert_uint_eq(resp.num_headers, 2);
	ck_assert_int_eq(resp.headers[0].kind, RH_HDR_CONTENT_LENGTH);
	ck_assert_span(resp.headers[1].value, "x");

	resp_ok(LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_LENGTH);
	ck_assert_uint_eq(resp.content_length, 0);
	resp_ok(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_CHUNKED);
	ck_assert(resp.keep_alive);
	resp_ok(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_CHUNKED);
	resp_ok(LIT("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_UNTIL_CLOSE);
	ck_assert(!resp.keep_alive);
}
END_TEST

START_TEST(test_response_status_line)
{
	struct rh_http_response resp;

	resp_ok(LIT("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_span(resp.reason, "");
	resp_ok(LIT("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), false, &resp);
	resp_ok(LIT("HTTP/1.1 999 Whatever\tyou \xe2\x9c\x93 like\r\nContent-Length: 0\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.status, 999);
	resp_ok(LIT("HTTP/1.0 100 Continue\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.status, 100);
	ck_assert_int_eq(resp.minor_version, 0);

	resp_err(LIT("HTTP/1.1 099 Low\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 20 Short\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 2000 Long\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 2x0 Bad\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1  200 OK\r\n\r\n"), false);
	resp_err(LIT("HTTP/2.0 200 OK\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.2 200 OK\r\n\r\n"), false);
	resp_err(LIT("http/1.1 200 OK\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 O\x01K\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\rX\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\0\r\n\r\n"), false);
	resp_err(LIT("\r\nHTTP/1.1 200 OK\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), false);
}
END_TEST

START_TEST(test_response_no_body)
{
	struct rh_http_response resp;

	resp_ok(LIT("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"), true, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	ck_assert_uint_eq(resp.content_length, 42);
	ck_assert(resp.keep_alive);
	resp_ok(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), true, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	/* HEAD without framing headers does not make the connection close-delimited */
	resp_ok(LIT("HTTP/1.1 200 OK\r\n\r\n"), true, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	ck_assert(resp.keep_alive);
	resp_ok(LIT("HTTP/1.1 204 No Content\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	ck_assert(resp.keep_alive);
	resp_ok(LIT("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	ck_assert_uint_eq(resp.content_length, 100);
	resp_ok(LIT("HTTP/1.1 100 Continue\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	resp_ok(LIT("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_NONE);
	ck_assert_int_eq(resp.status, 103);
}
END_TEST

START_TEST(test_response_framing_errors)
{
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false);
	resp_err(LIT("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 1\r\n\r\n"), false);
	/* ambiguity is refused even where there is no body */
	resp_err(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), true);
	resp_err(LIT("HTTP/1.1 204 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), false);
}
END_TEST

START_TEST(test_response_keep_alive)
{
	struct rh_http_response resp;

	resp_ok(LIT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"), false, &resp);
	ck_assert(!resp.keep_alive);
	resp_ok(LIT("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), false, &resp);
	ck_assert(!resp.keep_alive);
	resp_ok(LIT("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n"), false, &resp);
	ck_assert(resp.keep_alive);
	resp_ok(LIT("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"), false, &resp);
	ck_assert_int_eq(resp.body, RH_BODY_UNTIL_CLOSE);
	ck_assert(!resp.keep_alive);
	resp_ok(LIT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: X-Secret\r\nX-Secret: s\r\n\r\n"), false,
		&resp);
	ck_assert(resp.keep_alive);
	ck_assert_int_eq(resp.headers[2].kind, RH_HDR_HOP);
}
END_TEST

START_TEST(test_response_limits)
{
	static char buf[16384];
	struct rh_http_limits l = { .max_head = sizeof(buf), .max_uri = 0, .max_headers = 3 };
	struct rh_http_response resp;
	int n;

	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
	ck_assert_int_eq(rh_http_parse_response(buf, (size_t)n, &l, false, &resp), n);
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
	ck_assert_int_eq(rh_http_parse_response(buf, (size_t)n, &l, false, &resp), -1);
	l.max_headers = 100;
	l.max_head = (size_t)n - 1;
	ck_assert_int_eq(rh_http_parse_response(buf, (size_t)n, &l, false, &resp), -1);
	l.max_head = 10;
	ck_assert_int_eq(rh_http_parse_response(buf, 10, &l, false, &resp), -1);
	ck_assert_int_eq(rh_http_parse_response(buf, 9, &l, false, &resp), RH_HTTP_PARTIAL);
	l.max_head = (size_t)n;
	ck_assert_int_eq(rh_http_parse_response(buf, (size_t)n, &l, false, &resp), n);
}
END_TEST

/* --- chunked --- */


static ssize_t chunked_bytewise(struct rh_chunked *c, const char *s, size_t n)
{
	size_t *cuts = malloc(n * sizeof(*cuts) + 1);
	ssize_t r;

	for (size_t i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	r = chunked_pieces(c, s, n, cuts, n ? n - 1 : 0);
	free(cuts);
	return r;
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

/* Asserts that <s> gives <want> consumed (or -1) and <done>, in one piece, byte by byte and in 50
 * random splits, and that the data byte count is <data> when it succeeds. */
static void chunked_check(const char *s, size_t n, ssize_t want, bool done, uint64_t data)
{
	struct rh_chunked c;
	ssize_t r;

	r = chunked_all(&c, s, n);
	ck_assert_msg(r == want, "whole: got %zd want %zd", r, want);
	ck_assert(rh_chunked_done(&c) == done);
	if (want >= 0)
		ck_assert_uint_eq(c.total, data);

	r = chunked_bytewise(&c, s, n);
	ck_assert_msg(r == want, "bytewise: got %zd want %zd", r, want);
	ck_assert(rh_chunked_done(&c) == done);
	if (want >= 0)
		ck_assert_uint_eq(c.total, data);

	for (int k = 0; k < 50; k++) {
		size_t cuts[8], ncuts = rng() % 8;

		for (size_t i = 0; i < ncuts; i++)
			cuts[i] = n ? rng() % n : 0;
		/* sort the few cut points */
		for (size_t i = 1; i < ncuts; i++)
			for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t t = cuts[j];
				cuts[j] = cuts[j - 1];
				cuts[j - 1] = t;
			}
		r = chunked_pieces(&c, s, n, cuts, ncuts);
		ck_assert_msg(r == want, "split %d: got %zd want %zd", k, r, want);
		ck_assert(rh_chunked_done(&c) == done);
	}
}

#define CHUNKED_OK(lit, data) chunked_check(LIT(lit), (ssize_t)(sizeof(lit) - 1), true, (data))
#define CHUNKED_BAD(lit) chunked_check(LIT(lit), -1, false, 0)

START_TEST(test_chunked_simple)
{
	CHUNKED_OK("5\r\nhello\r\n0\r\n\r\n", 5);
	CHUNKED_OK("0\r\n\r\n", 0);
	CHUNKED_OK("5\r\nhello\r\n6\r\n world\r\na\r\n0123456789\r\nF\r\n0123456789abcde\r\n0\r\n\r\n", 36);
	CHUNKED_OK("000005\r\nhello\r\n000\r\n\r\n", 5);
	/* data may contain CR, LF and NUL */
	CHUNKED_OK("4\r\n\r\n\0\r\r\n0\r\n\r\n", 4);
}
END_TEST

START_TEST(test_chunked_extensions)
{
	CHUNKED_OK("5;name=value\r\nhello\r\n0;last\r\n\r\n", 5);
	CHUNKED_OK("5;a=\"quoted ; , value\";b\r\nhello\r\n0\r\n\r\n", 5);
	CHUNKED_OK("5 ;a=b\r\nhello\r\n0\t\r\n\r\n", 5);
	CHUNKED_OK("5;\xc3\xa9\r\nhello\r\n0\r\n\r\n", 5);
	CHUNKED_BAD("5;a\0\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5;a\x01\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5;a\rb\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5 5\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD(";a\r\nhello\r\n0\r\n\r\n");
}
END_TEST

START_TEST(test_chunked_trailers)
{
	CHUNKED_OK("5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other: 1\r\n\r\n", 5);
	CHUNKED_OK("0\r\nX: \xff\r\n\r\n", 0);
	CHUNKED_BAD("0\r\nX: a\0b\r\n\r\n");
	CHUNKED_BAD("0\r\nX: a\rb\r\n\r\n");
	CHUNKED_BAD("0\r\nX: a\r\r\n\r\n");
	CHUNKED_BAD("0\r\nX: a\r\n\rX");
	CHUNKED_BAD("0\r\r\n\r\n");
}
END_TEST

/* the chunked framing is forwarded byte for byte, so a bare LF, which a backend may read
 * differently (inside an extension, say), is refused rather than passed on: CRLF only */
START_TEST(test_chunked_lf_only)
{
	CHUNKED_BAD("5\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5;x\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5\r\nhello\n0\r\n\r\n");
	CHUNKED_BAD("0\r\nT: 1\nU: 2\r\n\r\n");
	CHUNKED_BAD("0\r\n\n");
	CHUNKED_OK("5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n", 5);
}
END_TEST

START_TEST(test_chunked_stops_at_end)
{
	static const char body[] = "5\r\nhello\r\n0\r\nT: x\r\n\r\n";
	static const char s[] = "5\r\nhello\r\n0\r\nT: x\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct rh_chunked c;
	ssize_t r;

	r = chunked_all(&c, LIT(s));
	ck_assert_int_eq(r, (ssize_t)(sizeof(body) - 1));
	ck_assert(rh_chunked_done(&c));
	/* nothing more is consumed once done */
	ck_assert_int_eq(rh_chunked_feed(&c, s + r, sizeof(s) - 1 - (size_t)r), 0);
	ck_assert(rh_chunked_done(&c));
	/* the same when split anywhere */
	r = chunked_bytewise(&c, LIT(s));
	ck_assert_int_eq(r, (ssize_t)(sizeof(body) - 1));
	for (size_t cut = 0; cut <= sizeof(s) - 1; cut++) {
		r = chunked_pieces(&c, LIT(s), &cut, 1);
		ck_assert_int_eq(r, (ssize_t)(sizeof(body) - 1));
		ck_assert(rh_chunked_done(&c));
	}
	/* an LF-only final line is refused, whatever follows */
	r = chunked_all(&c, LIT("0\r\n\nX"));
	ck_assert_int_eq(r, -1);
	/* an empty feed consumes nothing */
	rh_chunked_init(&c);
	ck_assert_int_eq(rh_chunked_feed(&c, "", 0), 0);
	ck_assert(!rh_chunked_done(&c));
}
END_TEST

START_TEST(test_chunked_incomplete)
{
	static const char s[] = "5\r\nhello\r\n0\r\nT: 1\r\n\r\n";
	struct rh_chunked c;

	for (size_t i = 0; i < sizeof(s) - 1; i++) {
		ck_assert_int_eq(chunked_all(&c, s, i), (ssize_t)i);
		ck_assert(!rh_chunked_done(&c));
	}
}
END_TEST

START_TEST(test_chunked_bulk_data)
{
	size_t size = 1 << 20;
	char *data = malloc(size);
	struct rh_chunked c;

	memset(data, 'x', size);
	rh_chunked_init(&c);
	ck_assert_int_eq(rh_chunked_feed(&c, LIT("100000\r\n")), 8);
	ck_assert_int_eq(rh_chunked_feed(&c, data, 1000), 1000);
	ck_assert_uint_eq(c.remaining, size - 1000);
	ck_assert_int_eq(rh_chunked_feed(&c, data, size - 1000), (ssize_t)(size - 1000));
	ck_assert_int_eq(rh_chunked_feed(&c, LIT("\r\n0\r\n\r\n")), 7);
	ck_assert(rh_chunked_done(&c));
	ck_assert_uint_eq(c.total, size);
	free(data);

	/* sizes up to 2^53 are accepted (its data just never ends here); above, refused */
	rh_chunked_init(&c);
	ck_assert_int_eq(rh_chunked_feed(&c, LIT("20000000000000\r\nabc")), 19);
	ck_assert_uint_eq(c.remaining, (UINT64_C(1) << 53) - 3);
	rh_chunked_init(&c);
	ck_assert_int_eq(rh_chunked_feed(&c, LIT("20000000000001\r\n")), -1);
	rh_chunked_init(&c);
	ck_assert_int_eq(rh_chunked_feed(&c, LIT("ffffffffffffffff\r\n")), -1);
}
END_TEST

START_TEST(test_chunked_errors)
{
	struct rh_chunked c;

	CHUNKED_BAD("g\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("0x5\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("-5\r\nhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5\r\nhelloX\r\n0\r\n\r\n");
	CHUNKED_BAD("5\r\nhello\rX0\r\n\r\n");
	CHUNKED_BAD("5\r\nhello0\r\n\r\n");
	CHUNKED_BAD("5\rhello\r\n0\r\n\r\n");
	CHUNKED_BAD("5\r\nhello\r\n0\r\n\r\r");
	/* 17 digits overflow, even with leading zeros */
	CHUNKED_BAD("10000000000000000\r\n");
	CHUNKED_BAD("00000000000000005\r\nhello\r\n0\r\n\r\n");

	/* trailers are field lines: token ":" value, CRLF */
	CHUNKED_BAD("0\r\nX\r\n\r\n");
	CHUNKED_BAD("0\r\nX Y: v\r\n\r\n");
	CHUNKED_BAD("0\r\n: v\r\n\r\n");
	CHUNKED_BAD("0\r\nX: v\n\r\n");
	CHUNKED_BAD("0\r\n X: v\r\n\r\n");
	CHUNKED_BAD("5\nhello\r\n0\r\n\r\n");

	/* errors are sticky */
	ck_assert_int_eq(chunked_all(&c, LIT("z")), -1);
	ck_assert_int_eq(rh_chunked_feed(&c, LIT("0\r\n\r\n")), -1);
	ck_assert(!rh_chunked_done(&c));
}
END_TEST

START_TEST(test_chunked_line_limits)
{
	static char buf[20000];
	struct rh_chunked c;
	size_t n;

	/* size line: 4096 bytes before the CRLF are fine, 4097 are not */
	buf[0] = '5';
	buf[1] = ';';
	memset(buf + 2, 'x', 4094);
	n = 4096;
	memcpy(buf + n, "\r\nhello\r\n0\r\n\r\n", 14);
	ck_assert_int_eq(chunked_all(&c, buf, n + 14), (ssize_t)(n + 14));
	ck_assert(rh_chunked_done(&c));
	memset(buf + 2, 'x', 4095);
	n = 4097;
	memcpy(buf + n, "\r\nhello\r\n0\r\n\r\n", 14);
	ck_assert_int_eq(chunked_all(&c, buf, n + 14), -1);
	chunked_check(buf, n + 14, -1, false, 0);

	/* a trailer line of 4096 bytes is fine, 4097 is not */
	memcpy(buf, "0\r\nX:", 5);
	memset(buf + 5, 'v', 4094);
	n = 5 + 4094;
	memcpy(buf + n, "\r\n\r\n", 4);
	ck_assert_int_eq(chunked_all(&c, buf, n + 4), (ssize_t)(n + 4));
	ck_assert(rh_chunked_done(&c));
	memset(buf + 5, 'v', 4095);
	n = 5 + 4095;
	memcpy(buf + n, "\r\n\r\n", 4);
	ck_assert_int_eq(chunked_all(&c, buf, n + 4), -1);

	/* trailers over 8 KiB in total, in lines each under the line limit */
	memcpy(buf, "0\r\n", 3);
	n = 3;
	for (int i = 0; i < 3; i++) {
		memcpy(buf + n, "X:", 2);
		memset(buf + n + 2, 'v', 2998);
		memcpy(buf + n + 3000, "\r\n", 2);
		n += 3002;
	}
	memcpy(buf + n, "\r\n", 2);
	ck_assert_int_eq(chunked_all(&c, buf, n + 2), -1);
	chunked_check(buf, n + 2, -1, false, 0);
	/* two such lines (6004 bytes) are fine */
	ck_assert_int_eq(chunked_all(&c, buf, 3 + 2 * 3002), 3 + 2 * 3002);
	memcpy(buf + 3 + 2 * 3002, "\r\n", 2);
	ck_assert_int_eq(chunked_all(&c, buf, 3 + 2 * 3002 + 2), 3 + 2 * 3002 + 2);
	ck_assert(rh_chunked_done(&c));
}
END_TEST

/* A line starting with SP or HTAB is 400 (obs-fold) also when it is one line too many (431). */
START_TEST(test_obs_fold_at_header_limit)
{
	struct rh_http_limits l = { .max_head = 8192, .max_uri = 2048, .max_headers = 1 };
	int st = 0;

	ck_assert_int_eq(req_split(LIT("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), &l, &st), -1);
	ck_assert_int_eq(st, 400);
	ck_assert_int_eq(req_split(LIT("GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n"), &l, &st), -1);
	ck_assert_int_eq(st, 400);
	ck_assert_int_eq(req_split(LIT("GET / HTTP/1.1\r\nHost: a\r\nX: folded\r\n\r\n"), &l, &st), -1);
	ck_assert_int_eq(st, 431);
	l.max_headers = 0;
	ck_assert_int_eq(req_split(LIT("GET / HTTP/1.0\r\n Host: a\r\n\r\n"), &l, &st), -1);
	ck_assert_int_eq(st, 400);
	ck_assert_int_eq(req_split(LIT("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), &l, &st), -1);
	ck_assert_int_eq(st, 431);
}
END_TEST

/* --- every byte at every position: the 16-byte (SSE2) scans must stop exactly where the byte-wise
 * ones would, whatever the block boundaries. Positions 0-40 put the byte in the first, second and
 * third block of a scan; the references below are written out apart from the parser's table. --- */

static bool ref_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field-vchar, SP, HTAB, obs-text */
static bool ref_field(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* visible ASCII but '#': a request target byte */
static bool ref_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#';
}

/* RFC 3986 unreserved and sub-delims: a reg-name byte */
static bool ref_regname(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL);
}

static bool ref_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 45 bytes of letters, digits, '-' and '.': what the fast scans take in every class tested here */
static const char base45[] = "Abc-def.0123456789-GHIJ-klmnop.qrstu-vwxyz-AB";

#define POSITIONS 41 /* 0..40 */

/* Writes <pre>, base45 with <c> at <at> (the first <len> bytes of it), then <post> into <buf>; returns
 * the length. */
static size_t with_byte_at(char *buf, size_t size, const char *pre, size_t len, size_t at, unsigned char c,
			   const char *post)
{
	size_t a = strlen(pre), b = strlen(post);

	ck_assert(a + len + b <= size && len <= sizeof(base45) - 1 && at < len);
	memcpy(buf, pre, a);
	memcpy(buf + a, base45, len);
	buf[a + at] = (char)c;
	memcpy(buf + a + len, post, b);
	return a + len + b;
}

START_TEST(test_value_byte_at_every_position)
{
	/* the value starts at a different offset for each name length, so also in its 16-byte block */
	static const char *const names[] = { "X", "X-Value", "X-Value-Padding", "X-Value-Padding-Longer" };
	struct rh_http_request req;
	char buf[256], pre[128];

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		snprintf(pre, sizeof(pre), "GET / HTTP/1.1\r\nHost: a\r\n%s: ", names[k]);
		for (unsigned c = 0; c < 256; c++) {
			for (size_t at = 0; at < POSITIONS; at++) {
				size_t n = with_byte_at(buf, sizeof(buf), pre, 45, at, (unsigned char)c, "\r\n\r\n");
				int r = req_parse_copy(buf, n, &lim, &req);

				if (!ref_field((unsigned char)c)) {
					ck_assert_msg(r == -1 && req.error_status == 400, "byte 0x%02x at %zu: got %d/%d", c,
						      at, r, req.error_status);
					continue;
				}
				ck_assert_msg(r == (int)n, "byte 0x%02x at %zu: got %d, want %zu", c, at, r, n);
				r = rh_http_parse_request(buf, n, &lim, &req); /* spans into buf */
				ck_assert_uint_eq(req.num_headers, 2);
				/* OWS at the start is trimmed, anywhere else it is part of the value */
				size_t skip = at == 0 && (c == ' ' || c == '\t');
				ck_assert_ptr_eq(req.headers[1].value.p, buf + strlen(pre) + skip);
				ck_assert_uint_eq(req.headers[1].value.len, 45 - skip);
			}
		}
	}
}
END_TEST

/* The same bytes, each prefix of the request too (req_split: every prefix in a buffer of its exact
 * size, so a scan that read past the end would show under ASan). */
START_TEST(test_value_byte_split)
{
	static const unsigned char bytes[] = { 0x00, 0x01, 0x08, '\t', 0x0b, 0x1f, ' ', '~', 0x7f, 0x80, 0xc3, 0xff };
	char buf[256];

	for (size_t i = 0; i < sizeof(bytes); i++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			size_t n = with_byte_at(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX-Value: ", 45, at,
						bytes[i], "\r\nX-After: 1\r\n\r\n");
			int st = 0, r = req_split(buf, n, &lim, &st);

			if (ref_field(bytes[i]))
				ck_assert_int_eq(r, (int)n);
			else
				ck_assert(r == -1 && st == 400);
		}
	}
}
END_TEST

START_TEST(test_response_value_byte_at_every_position)
{
	char buf[256];

	for (unsigned c = 0; c < 256; c++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			struct rh_http_response resp;
			size_t n = with_byte_at(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nServer: ", 45, at, (unsigned char)c,
						"\r\nContent-Length: 0\r\n\r\n");
			int r = resp_parse_copy(buf, n, &lim, false, &resp);

			ck_assert_msg(r == (ref_field((unsigned char)c) ? (int)n : -1), "byte 0x%02x at %zu: got %d", c,
				      at, r);
			/* and in the reason phrase */
			n = with_byte_at(buf, sizeof(buf), "HTTP/1.1 200 ", 45, at, (unsigned char)c,
					 "\r\nContent-Length: 0\r\n\r\n");
			r = resp_parse_copy(buf, n, &lim, false, &resp);
			ck_assert_msg(r == (ref_field((unsigned char)c) ? (int)n : -1), "reason byte 0x%02x at %zu: got %d",
				      c, at, r);
		}
	}
}
END_TEST

START_TEST(test_name_byte_at_every_position)
{
	struct rh_http_request req;
	char buf[256];

	for (unsigned c = 0; c < 256; c++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\n";
			size_t n = with_byte_at(buf, sizeof(buf), pre, 45, at, (unsigned char)c, ": v\r\n\r\n");
			int r = req_parse_copy(buf, n, &lim, &req);

			if (c == '\n' && at == 0) {
				/* an empty line: the head ends there */
				ck_assert_int_eq(r, (int)sizeof(pre));
			} else if (c == ':' && at > 0) {
				/* the name ends there, the rest is the value */
				ck_assert_int_eq(r, (int)n);
				rh_http_parse_request(buf, n, &lim, &req);
				ck_assert_uint_eq(req.headers[1].name.len, at);
			} else if (ref_tchar((unsigned char)c)) {
				ck_assert_msg(r == (int)n, "byte 0x%02x at %zu: got %d/%d", c, at, r, req.error_status);
				rh_http_parse_request(buf, n, &lim, &req);
				ck_assert_ptr_eq(req.headers[1].name.p, buf + sizeof(pre) - 1);
				ck_assert_uint_eq(req.headers[1].name.len, 45);
				ck_assert_int_eq(req.headers[1].kind, RH_HDR_OTHER);
				ck_assert_span(req.headers[1].value, "v");
			} else {
				ck_assert_msg(r == -1 && req.error_status == 400, "byte 0x%02x at %zu: got %d/%d", c, at,
					      r, req.error_status);
			}
		}
	}
}
END_TEST

/* Names made of the rarer tchars, or holding one at each position, around block boundaries, and the
 * prefixes of each head. */
START_TEST(test_name_rare_tchars)
{
	static const char rare[] = "!#$%&'*+.^_`|~";
	struct rh_http_request req;
	char buf[256];

	for (size_t i = 0; rare[i]; i++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			size_t n = with_byte_at(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n", 42, at,
						(unsigned char)rare[i], ":v\r\n\r\n");

			ck_assert_int_eq(req_split(buf, n, &lim, NULL), (int)n);
		}
		/* only rare tchars, 1 to 40 of them */
		for (size_t len = 1; len < POSITIONS; len++) {
			int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%.*s: x\r\nHost: a\r\n\r\n", (int)len,
					 "~!#$%&'*+.^_`|~!#$%&'*+.^_`|~!#$%&'*+.^_`|~");

			buf[16] = rare[i];
			ck_assert_int_eq(req_split(buf, (size_t)n, &lim, NULL), n);
			rh_http_parse_request(buf, (size_t)n, &lim, &req);
			ck_assert_uint_eq(req.headers[0].name.len, len);
			ck_assert_int_eq(req.headers[0].kind, RH_HDR_OTHER);
		}
	}
}
END_TEST

static const struct {
	const char *name; /* lowercase */
	enum rh_hdr_kind kind;
} known_names[] = {
	{ "te", RH_HDR_HOP },
	{ "host", RH_HDR_HOST },
	{ "expect", RH_HDR_EXPECT },
	{ "trailer", RH_HDR_HOP },
	{ "upgrade", RH_HDR_HOP },
	{ "forwarded", RH_HDR_UNTRUSTED },
	{ "x-real-ip", RH_HDR_UNTRUSTED },
	{ "connection", RH_HDR_CONNECTION },
	{ "keep-alive", RH_HDR_HOP },
	{ "content-length", RH_HDR_CONTENT_LENGTH },
	{ "x-forwarded-for", RH_HDR_X_FORWARDED_FOR },
	{ "proxy-connection", RH_HDR_HOP },
	{ "x-forwarded-host", RH_HDR_UNTRUSTED },
	{ "transfer-encoding", RH_HDR_TRANSFER_ENCODING },
	{ "x-forwarded-proto", RH_HDR_UNTRUSTED },
};

/* The kind the response parser gives a field named <name> (len bytes), or -1 if refused. The value
 * suits every kind: Transfer-Encoding gets chunked, the others 0. */
static int response_kind(const char *name, size_t len, enum rh_hdr_kind want)
{
	struct rh_http_response resp;
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%.*s: %s\r\n\r\n", (int)len, name,
			 want == RH_HDR_TRANSFER_ENCODING ? "chunked" : "0");

	ck_assert_int_eq(resp_split(buf, (size_t)n, false), n);
	rh_http_parse_response(buf, (size_t)n, &lim, false, &resp);
	ck_assert_uint_eq(resp.num_headers, 1);
	return (int)resp.headers[0].kind;
}

START_TEST(test_known_names_any_case)
{
	for (size_t k = 0; k < sizeof(known_names) / sizeof(known_names[0]); k++) {
		const char *name = known_names[k].name;
		size_t len = strlen(name);
		char s[32];

		for (int variant = 0; variant < 4; variant++) {
			for (size_t i = 0; i < len; i++) {
				char c = name[i];
				bool up = variant == 1 || (variant == 2 && (i == 0 || name[i - 1] == '-')) ||
					  (variant == 3 && i % 2);

				s[i] = up && c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
			}
			ck_assert_msg(response_kind(s, len, known_names[k].kind) == (int)known_names[k].kind, "%.*s",
				      (int)len, s);
		}
	}
}
END_TEST

/* A name one byte away from a known name is no known name, except that '_' for '-' makes it an
 * untrusted claim (and a letter's other case is the same name). */
START_TEST(test_known_names_one_byte_off)
{
	static const char subst[] = "qQz0_-.~!|`^#";

	for (size_t k = 0; k < sizeof(known_names) / sizeof(known_names[0]); k++) {
		const char *name = known_names[k].name;
		size_t len = strlen(name);

		for (size_t i = 0; i < len; i++) {
			for (size_t j = 0; subst[j]; j++) {
				char s[32];
				int want;

				memcpy(s, name, len);
				if (subst[j] == name[i])
					continue;
				s[i] = subst[j];
				want = subst[j] == '_' && name[i] == '-' ? RH_HDR_UNTRUSTED : RH_HDR_OTHER;
				ck_assert_msg(response_kind(s, len, RH_HDR_OTHER) == want, "%.*s: want kind %d", (int)len, s,
					      want);
			}
			/* the byte that differs by 0x20: the other case of a letter; CR for '-' */
			if (name[i] == '-') {
				struct rh_http_response resp;
				char buf[128];
				int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%.*s\r%s: 0\r\n\r\n", (int)i, name,
						 name + i + 1);

				ck_assert_int_eq(rh_http_parse_response(buf, (size_t)n, &lim, false, &resp), -1);
			} else {
				char s[32];

				memcpy(s, name, len);
				s[i] = (char)(s[i] ^ 0x20);
				ck_assert_int_eq(response_kind(s, len, known_names[k].kind), (int)known_names[k].kind);
			}
		}
		/* its prefixes, and one byte more */
		for (size_t l = 1; l < len; l++)
			ck_assert_int_eq(response_kind(name, l, RH_HDR_OTHER), RH_HDR_OTHER);
		{
			char s[32];

			memcpy(s, name, len);
			s[len] = 's';
			ck_assert_int_eq(response_kind(s, len + 1, RH_HDR_OTHER), RH_HDR_OTHER);
		}
	}
}
END_TEST

START_TEST(test_underscore_names)
{
	struct rh_http_request req;

	/* every known name with '-' in it, spelled with '_' in each place and in all */
	for (size_t k = 0; k < sizeof(known_names) / sizeof(known_names[0]); k++) {
		const char *name = known_names[k].name;
		size_t len = strlen(name);
		char all[32];

		memcpy(all, name, len);
		for (size_t i = 0; i < len; i++) {
			char s[32];

			if (name[i] != '-')
				continue;
			memcpy(s, name, len);
			s[i] = '_';
			all[i] = '_';
			ck_assert_int_eq(response_kind(s, len, RH_HDR_OTHER), RH_HDR_UNTRUSTED);
		}
		ck_assert_int_eq(response_kind(all, len, RH_HDR_OTHER),
				 memchr(name, '-', len) ? RH_HDR_UNTRUSTED : (int)known_names[k].kind);
	}
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded_For: 1.2.3.4\r\nCONTENT_LENGTH: 5\r\n"
		   "Transfer_Encoding: chunked\r\nX_Other_Name: 1\r\n\r\n"),
	       &req);
	ck_assert_int_eq(req.headers[1].kind, RH_HDR_UNTRUSTED);
	ck_assert_int_eq(req.headers[2].kind, RH_HDR_UNTRUSTED);
	ck_assert_int_eq(req.headers[3].kind, RH_HDR_UNTRUSTED);
	ck_assert_int_eq(req.headers[4].kind, RH_HDR_OTHER);
	/* neither is framing */
	ck_assert_int_eq(req.body, RH_BODY_NONE);
	ck_assert(!req.has_content_length);
	/* mixed case, as names come */
	req_ok(LIT("POST / HTTP/1.1\r\nhOsT: a\r\nCONTENT-LENGTH: 5\r\nx-FORWARDED-for: 1.2.3.4\r\n\r\n"), &req);
	ck_assert_int_eq(req.host_index, 0);
	ck_assert_int_eq(req.headers[1].kind, RH_HDR_CONTENT_LENGTH);
	ck_assert_uint_eq(req.content_length, 5);
	ck_assert_int_eq(req.headers[2].kind, RH_HDR_X_FORWARDED_FOR);
	req_ok(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), &req);
	ck_assert_int_eq(req.body, RH_BODY_CHUNKED);
}
END_TEST

/* Connection and Expect values compared whole, in any case. */
START_TEST(test_token_values_any_case)
{
	struct rh_http_request req;

	req_ok(LIT("GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: \tKeep-Alive \t\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: keep-alivf\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.0\r\nConnection: keep_alive\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: clos\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"), &req);
	ck_assert(req.keep_alive);
	req_ok(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Keep-Alive\r\n\r\n"), &req);
	ck_assert(!req.keep_alive);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: Content-LENGTH\r\n\r\n"), 400);
	req_err(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: HOST\r\n\r\n"), 400);
	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-CONTINUE\r\n\r\n"), &req);
	ck_assert(req.expect_continue);
	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuE\r\n\r\n"), &req);
	ck_assert(req.expect_continue);
	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continu\r\n\r\n"), &req);
	ck_assert(!req.expect_continue);
	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100\tcontinue\r\n\r\n"), &req);
	ck_assert(!req.expect_continue);
	req_ok(LIT("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 101-continue\r\n\r\n"), &req);
	ck_assert(!req.expect_continue);
}
END_TEST

START_TEST(test_target_byte_at_every_position)
{
	struct rh_http_request req;
	char buf[256];

	for (unsigned c = 0; c < 256; c++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			size_t n = with_byte_at(buf, sizeof(buf), "GET /", 45, at, (unsigned char)c,
						" HTTP/1.1\r\nHost: a\r\n\r\n");
			int r = req_parse_copy(buf, n, &lim, &req);

			if (ref_vchar((unsigned char)c)) {
				ck_assert_msg(r == (int)n, "byte 0x%02x at %zu: got %d/%d", c, at, r, req.error_status);
				rh_http_parse_request(buf, n, &lim, &req);
				ck_assert_uint_eq(req.target.len, 46);
			} else {
				ck_assert_msg(r == -1 && req.error_status == 400, "byte 0x%02x at %zu: got %d/%d", c, at,
					      r, req.error_status);
			}
		}
	}
}
END_TEST

/* 414 exactly when the target is longer than max_uri, for lengths around the 16-byte blocks. */
START_TEST(test_uri_limit_every_length)
{
	char buf[256];

	for (size_t max = 1; max < 40; max++) {
		struct rh_http_limits l = { .max_head = 8192, .max_uri = max, .max_headers = 100 };

		for (size_t len = 1; len < 42; len++) {
			int st = 0, n = snprintf(buf, sizeof(buf), "GET /%.*s HTTP/1.1\r\nHost: a\r\n\r\n", (int)len - 1,
						 base45);
			int r = req_split(buf, (size_t)n, &l, &st);

			if (len > max)
				ck_assert_msg(r == -1 && st == 414, "target %zu, max %zu: got %d/%d", len, max, r, st);
			else
				ck_assert_int_eq(r, n);
		}
	}
}
END_TEST

START_TEST(test_method_byte_at_every_position)
{
	struct rh_http_request req;
	char buf[256];

	for (unsigned c = 0; c < 256; c++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			size_t n = with_byte_at(buf, sizeof(buf), "", 45, at, (unsigned char)c,
						" / HTTP/1.1\r\nHost: a\r\n\r\n");
			int r = req_parse_copy(buf, n, &lim, &req);

			if (ref_tchar((unsigned char)c) || (c == '\n' && at == 0)) /* LF first: an empty line */
				ck_assert_msg(r == (int)n, "byte 0x%02x at %zu: got %d/%d", c, at, r, req.error_status);
			else
				ck_assert_msg(r == -1 && req.error_status == 400, "byte 0x%02x at %zu: got %d/%d", c, at,
					      r, req.error_status);
		}
	}
	req_ok(LIT("M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert_span(req.method, "M-SEARCH");
	ck_assert(!req.is_idempotent);
	req_ok(LIT("X_Y!#$%&'*+.^_`|~ / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
	ck_assert_span(req.method, "X_Y!#$%&'*+.^_`|~");
}
END_TEST

/* Host: every byte at every position of a 45-byte reg-name, and ports of every length, with the
 * authority at the very end of the buffer and with bytes after it. */
START_TEST(test_host_byte_at_every_position)
{
	struct rh_http_request req;
	char buf[256];

	for (unsigned c = 0; c < 256; c++) {
		for (size_t at = 0; at < POSITIONS; at++) {
			size_t n = with_byte_at(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: ", 45, at, (unsigned char)c,
						"\r\n\r\n");
			int r = req_parse_copy(buf, n, &lim, &req);
			bool ok = ref_regname((unsigned char)c) ||
				  (c == '%' && ref_hex((unsigned char)base45[at + 1]) &&
				   ref_hex((unsigned char)base45[at + 2])) ||
				  (at == 0 && (c == ' ' || c == '\t')); /* OWS, trimmed */

			if (ok)
				ck_assert_msg(r == (int)n, "byte 0x%02x at %zu: got %d/%d", c, at, r, req.error_status);
			else
				ck_assert_msg(r == -1 && req.error_status == 400, "byte 0x%02x at %zu: got %d/%d", c, at,
					      r, req.error_status);
		}
	}
}
END_TEST

START_TEST(test_host_port_lengths)
{
	static const char *const ends[] = { "\r\n\r\n", "\r\nX-Pad: 0123456789abcdefghijklmnopqrstuvwxyz\r\n\r\n" };
	static const char *const ports[] = { "1", "12", "123", "1234", "12345" };
	static const char *const bad_ports[] = { "", "123456", "1x", "x1", "1234x", "12 34", "-1", "+1", "1.2" };
	char buf[256];

	for (size_t e = 0; e < 2; e++) {
		for (size_t hl = 1; hl < POSITIONS; hl++) {
			int st, n;

			for (size_t i = 0; i < 5; i++) {
				n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %.*s:%s%s", (int)hl, base45,
					     ports[i], ends[e]);
				ck_assert_int_eq(req_split(buf, (size_t)n, &lim, NULL), n);
				n = snprintf(buf, sizeof(buf), "GET http://%.*s:%s/p HTTP/1.1\r\nHost: a%s", (int)hl,
					     base45, ports[i], ends[e]);
				ck_assert_int_eq(req_split(buf, (size_t)n, &lim, NULL), n);
			}
			for (size_t i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++) {
				n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %.*s:%s%s", (int)hl, base45,
					     bad_ports[i], ends[e]);
				ck_assert_msg(req_split(buf, (size_t)n, &lim, &st) == -1 && st == 400, "%s", buf);
			}
			n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %.*s%s", (int)hl, base45, ends[e]);
			ck_assert_int_eq(req_split(buf, (size_t)n, &lim, NULL), n);
		}
	}
}
END_TEST

/* --- helpers --- */

START_TEST(test_span_eq_lower)
{
	struct rh_span s = { .p = "Content-LENGTH", .len = 14 };

	ck_assert(rh_span_eq_lower(s, "content-length"));
	ck_assert(!rh_span_eq_lower(s, "content-lengt"));
	ck_assert(!rh_span_eq_lower(s, "content-lengths"));
	s.len = 7;
	ck_assert(rh_span_eq_lower(s, "content"));
	s.len = 0;
	ck_assert(rh_span_eq_lower(s, ""));
	ck_assert(!rh_span_eq_lower(s, "a"));
	/* only ASCII letters fold: '[' is not '{' */
	s.p = "[";
	s.len = 1;
	ck_assert(!rh_span_eq_lower(s, "{"));
	s.p = "a\0b";
	s.len = 3;
	ck_assert(!rh_span_eq_lower(s, "a"));
}
END_TEST

static Suite *http1_suite(void)
{
	Suite *s = suite_create("http1");
	TCase *tc;

	tc = tcase_create("request");
	tcase_add_test(tc, test_simple_get);
	tcase_add_test(tc, test_header_kinds);
	tcase_add_test(tc, test_spans_trimmed);
	tcase_add_test(tc, test_lf_only);
	tcase_add_test(tc, test_leading_empty_lines);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_methods);
	tcase_add_test(tc, test_request_line_errors);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_expect);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_field_syntax);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_bare_cr);
	tcase_add_test(tc, test_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("connection");
	tcase_add_test(tc, test_keep_alive_rules);
	tcase_add_test(tc, test_connection_marks_hop);
	tcase_add_test(tc, test_connection_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_test(tc, test_content_length);
	tcase_add_test(tc, test_transfer_encoding);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_uri_limit);
	tcase_add_test(tc, test_head_limit);
	tcase_add_test(tc, test_header_count_limit);
	tcase_add_test(tc, test_obs_fold_at_header_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("split");
	tcase_add_test(tc, test_split_valid_requests);
	tcase_add_test(tc, test_split_invalid_requests);
	tcase_add_test(tc, test_split_responses);
	suite_add_tcase(s, tc);

	tc = tcase_create("response");
	tcase_add_test(tc, test_response_basic);
	tcase_add_test(tc, test_response_status_line);
	tcase_add_test(tc, test_response_no_body);
	tcase_add_test(tc, test_response_framing_errors);
	tcase_add_test(tc, test_response_keep_alive);
	tcase_add_test(tc, test_response_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("chunked");
	tcase_add_test(tc, test_chunked_simple);
	tcase_add_test(tc, test_chunked_extensions);
	tcase_add_test(tc, test_chunked_trailers);
	tcase_add_test(tc, test_chunked_lf_only);
	tcase_add_test(tc, test_chunked_stops_at_end);
	tcase_add_test(tc, test_chunked_incomplete);
	tcase_add_test(tc, test_chunked_bulk_data);
	tcase_add_test(tc, test_chunked_errors);
	tcase_add_test(tc, test_chunked_line_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("bytes");
	tcase_add_test(tc, test_value_byte_at_every_position);
	tcase_add_test(tc, test_value_byte_split);
	tcase_add_test(tc, test_response_value_byte_at_every_position);
	tcase_add_test(tc, test_name_byte_at_every_position);
	tcase_add_test(tc, test_name_rare_tchars);
	tcase_add_test(tc, test_known_names_any_case);
	tcase_add_test(tc, test_known_names_one_byte_off);
	tcase_add_test(tc, test_underscore_names);
	tcase_add_test(tc, test_token_values_any_case);
	tcase_add_test(tc, test_target_byte_at_every_position);
	tcase_add_test(tc, test_uri_limit_every_length);
	tcase_add_test(tc, test_method_byte_at_every_position);
	tcase_add_test(tc, test_host_byte_at_every_position);
	tcase_add_test(tc, test_host_port_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_span_eq_lower);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http1_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
