/* libFuzzer target: rh_http_parse_request on the input, with the proxy's limits.
 *  - no crash, no read outside the input (ASan: the input is in an allocation of its exact size);
 *  - a parsed head lies inside the input: every span, the head length <= the input length;
 *  - the result is a property of the head alone: a prefix of the input gives RH_HTTP_PARTIAL or the
 *    same result (the same head length, or INVALID with the same status);
 *  - a chunked body after the head decodes the same whole, in two pieces and byte by byte. */
#include "fuzz_common.h"

static void check_request(const struct rh_http_request *req, int rc, const char *buf, size_t len,
			  const struct rh_http_limits *lim)
{
	size_t head = (size_t)rc;

	if (rc == RH_HTTP_PARTIAL) {
		CHECK(len < lim->max_head);
		return;
	}
	if (rc == RH_HTTP_INVALID) {
		int s = req->error_status;

		CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
		return;
	}
	CHECK(rc > 0 && head <= len && head <= lim->max_head);
	CHECK(buf[head - 1] == '\n');
	CHECK(req->method.len > 0 && span_inside(req->method, buf, head));
	CHECK(req->target.len > 0 && span_inside(req->target, buf, head));
	CHECK(req->target.len <= lim->max_uri);
	CHECK(memchr(req->target.p, '#', req->target.len) == NULL); /* fragments are refused */
	CHECK(span_inside(req->path, buf, head));
	CHECK(span_inside(req->authority, buf, head));
	CHECK(req->minor_version == 0 || req->minor_version == 1);
	switch (req->target_form) {
	case RH_TARGET_ORIGIN:
		CHECK(req->path.len > 0 && req->path.p[0] == '/' && req->authority.len == 0);
		break;
	case RH_TARGET_ABSOLUTE:
		CHECK(req->authority.len > 0);
		CHECK(req->path.len == 0 || req->path.p[0] == '/' || req->path.p[0] == '?');
		break;
	case RH_TARGET_ASTERISK:
		CHECK(req->target.len == 1 && req->target.p[0] == '*' && req->authority.len == 0);
		break;
	default:
		CHECK(!"target_form");
	}
	CHECK(req->body == RH_BODY_NONE || req->body == RH_BODY_LENGTH || req->body == RH_BODY_CHUNKED);
	if (req->body == RH_BODY_LENGTH)
		CHECK(req->has_content_length && req->content_length > 0 && req->content_length <= lim->max_body &&
		      req->content_length <= RH_HTTP_MAX_LENGTH);
	if (req->body == RH_BODY_CHUNKED)
		CHECK(!req->has_content_length && req->minor_version == 1);
	if (req->body == RH_BODY_NONE)
		CHECK(req->content_length == 0);
	CHECK(req->num_headers <= lim->max_headers);
	check_headers(req->headers, req->num_headers, buf, head);
	CHECK(req->host_index >= -1 && req->host_index < (int)req->num_headers);
	if (req->host_index >= 0)
		CHECK(req->headers[req->host_index].kind == RH_HDR_HOST);
	if (req->minor_version == 1)
		CHECK(req->host_index >= 0);
	if (req->expect_continue)
		CHECK(req->minor_version == 1);
	CHECK(req->is_head == (req->method.len == 4 && memcmp(req->method.p, "HEAD", 4) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rh_http_request req, sub; /* about 4 KiB each: not on the stack per call */
	struct rh_http_limits lim = fuzz_proxy_limits();
	char *buf = exact_copy(data, size);
	size_t points[64], n;
	int rc;

	rc = rh_http_parse_request(buf, size, &lim, &req);
	check_request(&req, rc, buf, size, &lim);

	/* prefixes: every one of a short input, a sample of a long one */
	n = prefix_points(size, rc > 0 ? (size_t)rc : size, points);
	for (size_t i = 0; i < n; i++) {
		size_t k = points[i];
		const char *p = buf;
		int r;

		r = rh_http_parse_request(p, k, &lim, &sub);
		check_request(&sub, r, p, k, &lim);
		if (r == RH_HTTP_PARTIAL)
			continue;
		CHECK(r == rc);
		if (r == RH_HTTP_INVALID)
			CHECK(sub.error_status == req.error_status);
		else
			CHECK(sub.num_headers == req.num_headers && sub.body == req.body &&
			      sub.content_length == req.content_length);
	}

	if (rc > 0 && req.body == RH_BODY_CHUNKED) {
		size_t body_len = size - (size_t)rc;

		check_chunked(buf + rc, body_len, body_len ? (size_t)data[size - 1] * 131 % (body_len + 1) : 0);
	}
	free(buf);
	return 0;
}
