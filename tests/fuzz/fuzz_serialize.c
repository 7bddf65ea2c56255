/* libFuzzer target: parse, serialize (http1_serialize.h), parse again. The first input byte chooses
 * request or response and the rewrite; the rest is the head (and whatever follows it).
 * For a head that parses, the serialized bytes:
 *  - fit the size bound, and a buffer one byte short is refused;
 *  - contain no bare CR or LF (every LF after a CR, every CR before an LF);
 *  - parse again as exactly one head with the same method, the same target in origin form, the same
 *    version (requests) or HTTP/1.1 with the same status and reason (responses), the same body
 *    framing and length, at most one framing header, and the same forwarded fields in the same order
 *    (every field but those the serializer drops or owns: hop-by-hop, framing, and for requests Host,
 *    X-Forwarded-For and untrusted claims, which are checked against the rewrite instead). */
#include <strings.h>

#include "fuzz_common.h"
#include "roundhouse/http1_serialize.h"

/* Option byte, requests:  bit0 = 0, bit1 host override, bits2-3 xff mode, bit4 https, bit5 IPv6 client.
 *               responses: bit0 = 1, bit1 HEAD request, bit2 re-frame a close-delimited body as
 *                          chunked, bits3-4 Connection header (none, close, keep-alive, close). */
#define OPT_RESPONSE 0x01

static const char rewrite_host[] = "backend.example:8080";
static const char client_v4[] = "192.0.2.7";
static const char client_v6[] = "2001:db8::7";

static bool span_eq(struct rh_span a, const char *p, size_t len)
{
	return a.len == len && (len == 0 || memcmp(a.p, p, len) == 0);
}

static bool span_eq_span(struct rh_span a, struct rh_span b)
{
	return span_eq(a, b.p, b.len);
}

static bool name_is(struct rh_span n, const char *name)
{
	return n.len == strlen(name) && strncasecmp(n.p, name, n.len) == 0;
}

/* No bare CR or LF, no NUL, and the head ends with its empty line. */
static void check_bytes(const char *s, size_t n)
{
	CHECK(n >= 4 && memcmp(s + n - 4, "\r\n\r\n", 4) == 0);
	for (size_t i = 0; i < n; i++) {
		CHECK(s[i] != '\0');
		if (s[i] == '\n')
			CHECK(i > 0 && s[i - 1] == '\r');
		if (s[i] == '\r')
			CHECK(i + 1 < n && s[i + 1] == '\n');
	}
}

static size_t count_framing(const struct rh_http_header *h, size_t n)
{
	size_t framing = 0;

	for (size_t i = 0; i < n; i++)
		if (h[i].kind == RH_HDR_CONTENT_LENGTH || h[i].kind == RH_HDR_TRANSFER_ENCODING ||
		    name_is(h[i].name, "content-length") || name_is(h[i].name, "transfer-encoding"))
			framing++;
	return framing;
}

/* The fields in <a> for which <keep> holds appear in <b> (filtered the same way) in the same order
 * with the same name and value. */
static void check_same_fields(const struct rh_http_header *a, size_t na, const struct rh_http_header *b, size_t nb,
			      bool (*keep)(enum rh_hdr_kind))
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < na && !keep(a[i].kind))
			i++;
		while (j < nb && !keep(b[j].kind))
			j++;
		if (i == na || j == nb)
			break;
		CHECK(span_eq_span(a[i].name, b[j].name));
		CHECK(span_eq_span(a[i].value, b[j].value));
		i++;
		j++;
	}
	CHECK(i == na && j == nb);
}

static bool request_keeps(enum rh_hdr_kind k)
{
	return k == RH_HDR_OTHER || k == RH_HDR_EXPECT;
}

static bool response_keeps(enum rh_hdr_kind k)
{
	return k != RH_HDR_HOP && k != RH_HDR_CONNECTION && k != RH_HDR_CONTENT_LENGTH &&
	       k != RH_HDR_TRANSFER_ENCODING;
}

static struct rh_http_limits reparse_limits(size_t n)
{
	struct rh_http_limits lim = {
		.max_head = n + 1,
		.max_uri = SIZE_MAX,
		.max_headers = RH_HTTP_MAX_HEADERS,
		.max_body = 0,
	};
	return lim;
}

static void fuzz_request(uint8_t opt, const char *buf, size_t len)
{
	static struct rh_http_request req, again;
	struct rh_http_limits lim = fuzz_proxy_limits();
	struct rh_request_rewrite rw;
	struct rh_http_limits relim;
	struct rh_span want_target, want_host = {NULL, 0};
	size_t bound, n_xff = 0, n_xfp = 0, n_host = 0;
	ssize_t n;
	char *out;
	int rc;

	/* room for the lines the serializer adds, so that the result still fits RH_HTTP_MAX_HEADERS */
	lim.max_headers = RH_HTTP_MAX_HEADERS - 8;
	rc = rh_http_parse_request(buf, len, &lim, &req);
	if (rc <= 0)
		return;

	memset(&rw, 0, sizeof(rw));
	if (opt & 0x02)
		rw.host = (struct rh_span){rewrite_host, sizeof(rewrite_host) - 1};
	rw.xff = (opt >> 2 & 3) == 1 ? RH_XFF_REPLACE : (opt >> 2 & 3) == 2 ? RH_XFF_OFF : RH_XFF_APPEND;
	rw.https = opt & 0x10;
	rw.client_ip = opt & 0x20 ? (struct rh_span){client_v6, sizeof(client_v6) - 1}
				  : (struct rh_span){client_v4, sizeof(client_v4) - 1};

	bound = rh_http1_request_size_bound(&req, (size_t)rc, &rw);
	out = malloc(bound ? bound : 1);
	CHECK(out != NULL);
	n = rh_http1_serialize_request(&req, &rw, out, bound);
	CHECK(n > 0 && (size_t)n <= bound);
	/* the exact size fits, one byte less does not (an exact allocation: ASan sees any overrun) */
	{
		char *exact = malloc((size_t)n);

		CHECK(exact != NULL);
		CHECK(rh_http1_serialize_request(&req, &rw, exact, (size_t)n) == n);
		CHECK(memcmp(exact, out, (size_t)n) == 0);
		CHECK(rh_http1_serialize_request(&req, &rw, exact, (size_t)n - 1) == -1);
		free(exact);
	}
	check_bytes(out, (size_t)n);

	relim = reparse_limits((size_t)n);
	rc = rh_http_parse_request(out, (size_t)n, &relim, &again);
	if (rc != n)
		fprintf(stderr, "re-parse: %d (status %d) for %zd bytes:\n%.*s\n", rc, again.error_status, n, (int)n, out);
	CHECK(rc == n);

	CHECK(span_eq_span(again.method, req.method));
	CHECK(again.minor_version == req.minor_version);
	switch (req.target_form) {
	case RH_TARGET_ORIGIN:
		want_target = req.path;
		CHECK(again.target_form == RH_TARGET_ORIGIN && span_eq_span(again.target, want_target));
		break;
	case RH_TARGET_ABSOLUTE:
		/* "/" before an empty path or one starting with '?' */
		CHECK(again.target_form == RH_TARGET_ORIGIN);
		if (req.path.len > 0 && req.path.p[0] == '/') {
			CHECK(span_eq_span(again.target, req.path));
		} else {
			CHECK(again.target.len == req.path.len + 1 && again.target.p[0] == '/');
			CHECK(span_eq(req.path, again.target.p + 1, again.target.len - 1));
		}
		break;
	case RH_TARGET_ASTERISK:
		CHECK(again.target_form == RH_TARGET_ASTERISK);
		break;
	}
	CHECK(again.body == req.body);
	CHECK(again.content_length == req.content_length);
	CHECK(again.has_content_length == req.has_content_length);
	CHECK(again.expect_continue == req.expect_continue);
	CHECK(again.keep_alive); /* the upstream connection may be kept, whatever the client said */
	CHECK(count_framing(again.headers, again.num_headers) <= 1);
	check_same_fields(req.headers, req.num_headers, again.headers, again.num_headers, request_keeps);

	/* Host: the rewrite's, else an absolute target's authority, else the client's */
	if (rw.host.len > 0)
		want_host = rw.host;
	else if (req.target_form == RH_TARGET_ABSOLUTE)
		want_host = req.authority;
	else if (req.host_index >= 0)
		want_host = req.headers[req.host_index].value;
	for (size_t i = 0; i < again.num_headers; i++) {
		const struct rh_http_header *h = &again.headers[i];

		if (h->kind == RH_HDR_HOST)
			n_host++;
		if (h->kind == RH_HDR_X_FORWARDED_FOR) {
			n_xff++;
			CHECK(h->value.len >= rw.client_ip.len &&
			      memcmp(h->value.p + h->value.len - rw.client_ip.len, rw.client_ip.p, rw.client_ip.len) == 0);
			if (rw.xff == RH_XFF_REPLACE)
				CHECK(span_eq_span(h->value, rw.client_ip));
		}
		if (name_is(h->name, "x-forwarded-proto")) {
			n_xfp++;
			CHECK(rh_span_eq_lower(h->value, rw.https ? "https" : "http"));
		}
		/* claims only the proxy may make are gone, but for its own */
		if (h->kind == RH_HDR_UNTRUSTED)
			CHECK(name_is(h->name, "x-forwarded-proto"));
	}
	if (want_host.len > 0)
		CHECK(again.host_index >= 0 && span_eq_span(again.headers[again.host_index].value, want_host));
	CHECK(n_host <= 1);
	CHECK(n_xff == (rw.xff == RH_XFF_OFF ? 0u : 1u));
	CHECK(n_xfp == 1);
	free(out);
}

static void fuzz_response(uint8_t opt, const char *buf, size_t len)
{
	static struct rh_http_response resp, again;
	struct rh_http_limits lim = fuzz_proxy_limits();
	struct rh_response_rewrite rw;
	struct rh_http_limits relim;
	bool head_req = opt & 0x02;
	enum rh_body_kind want_body, want_framing;
	size_t bound;
	ssize_t n;
	char *out;
	int rc;

	lim.max_headers = RH_HTTP_MAX_HEADERS - 8;
	rc = rh_http_parse_response(buf, len, &lim, head_req, &resp);
	if (rc <= 0)
		return;

	memset(&rw, 0, sizeof(rw));
	/* as the proxy does: only a close-delimited body is re-framed */
	rw.chunked = (opt & 0x04) && resp.body == RH_BODY_UNTIL_CLOSE;
	switch (opt >> 3 & 3) {
	case 0:
		rw.connection = RH_CONN_NONE;
		break;
	case 2:
		rw.connection = RH_CONN_KEEP_ALIVE;
		break;
	default:
		rw.connection = RH_CONN_CLOSE;
		break;
	}

	bound = rh_http1_response_size_bound(&resp, (size_t)rc);
	out = malloc(bound ? bound : 1);
	CHECK(out != NULL);
	n = rh_http1_serialize_response(&resp, &rw, out, bound);
	CHECK(n > 0 && (size_t)n <= bound);
	{
		char *exact = malloc((size_t)n);

		CHECK(exact != NULL);
		CHECK(rh_http1_serialize_response(&resp, &rw, exact, (size_t)n) == n);
		CHECK(memcmp(exact, out, (size_t)n) == 0);
		CHECK(rh_http1_serialize_response(&resp, &rw, exact, (size_t)n - 1) == -1);
		free(exact);
	}
	check_bytes(out, (size_t)n);

	relim = reparse_limits((size_t)n);
	rc = rh_http_parse_response(out, (size_t)n, &relim, head_req, &again);
	if (rc != n)
		fprintf(stderr, "re-parse: %d for %zd bytes:\n%.*s\n", rc, n, (int)n, out);
	CHECK(rc == n);

	CHECK(again.minor_version == 1);
	CHECK(again.status == resp.status);
	CHECK(span_eq_span(again.reason, resp.reason));
	if (resp.status < 200 || resp.status == 204) {
		want_framing = RH_BODY_UNTIL_CLOSE; /* no framing line at all */
		want_body = RH_BODY_NONE;
	} else if (rw.chunked) {
		want_framing = want_body = RH_BODY_CHUNKED;
	} else {
		want_framing = resp.framing;
		want_body = resp.body;
	}
	CHECK(again.framing == want_framing);
	CHECK(again.body == want_body);
	if (want_framing == RH_BODY_LENGTH)
		CHECK(again.content_length == resp.content_length);
	CHECK(count_framing(again.headers, again.num_headers) <= 1);
	CHECK(again.keep_alive == (rw.connection != RH_CONN_CLOSE && again.body != RH_BODY_UNTIL_CLOSE));
	check_same_fields(resp.headers, resp.num_headers, again.headers, again.num_headers, response_keeps);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;

	if (size < 1)
		return 0;
	buf = exact_copy(data + 1, size - 1);
	if (data[0] & OPT_RESPONSE)
		fuzz_response(data[0], buf, size - 1);
	else
		fuzz_request(data[0], buf, size - 1);
	free(buf);
	return 0;
}
