/* libFuzzer target: rh_http_parse_response. The first input byte says whether the request was HEAD
 * (its low bit) and where to split the body; the rest is what the backend sent.
 *  - no crash, no read outside the input; a parsed head lies inside it;
 *  - a prefix gives RH_HTTP_PARTIAL or the same result;
 *  - framing is consistent (no body for HEAD, 1xx, 204, 304; a close-delimited body never keeps the
 *    connection);
 *  - a chunked body after the head is consumed the same whole as in two pieces split at a point
 *    taken from the first byte, and byte by byte. */
#include "fuzz_common.h"

static void check_response(const struct rh_http_response *resp, int rc, bool head_req, const char *buf, size_t len,
			   const struct rh_http_limits *lim)
{
	size_t head = (size_t)rc;
	int s = resp->status;

	if (rc == RH_HTTP_PARTIAL) {
		CHECK(len < lim->max_head);
		return;
	}
	if (rc == RH_HTTP_INVALID)
		return;
	CHECK(rc > 0 && head <= len && head <= lim->max_head);
	CHECK(buf[head - 1] == '\n');
	CHECK(s >= 100 && s <= 999);
	CHECK(resp->minor_version == 0 || resp->minor_version == 1);
	CHECK(span_inside(resp->reason, buf, head));
	CHECK(resp->framing == RH_BODY_LENGTH || resp->framing == RH_BODY_CHUNKED ||
	      resp->framing == RH_BODY_UNTIL_CLOSE);
	if (head_req || s < 200 || s == 204 || s == 304)
		CHECK(resp->body == RH_BODY_NONE);
	else
		CHECK(resp->body == resp->framing);
	if (resp->framing == RH_BODY_LENGTH)
		CHECK(resp->content_length <= RH_HTTP_MAX_LENGTH);
	else
		CHECK(resp->content_length == 0);
	if (resp->framing == RH_BODY_CHUNKED)
		CHECK(resp->minor_version == 1);
	if (resp->body == RH_BODY_UNTIL_CLOSE)
		CHECK(!resp->keep_alive);
	CHECK(resp->num_headers <= lim->max_headers);
	check_headers(resp->headers, resp->num_headers, buf, head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rh_http_response resp, sub;
	struct rh_http_limits lim = fuzz_proxy_limits();
	size_t points[64], n;
	bool head_req;
	uint8_t flags;
	char *buf;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	head_req = flags & 1;
	data++;
	size--;
	buf = exact_copy(data, size);

	rc = rh_http_parse_response(buf, size, &lim, head_req, &resp);
	check_response(&resp, rc, head_req, buf, size, &lim);

	n = prefix_points(size, rc > 0 ? (size_t)rc : size, points);
	for (size_t i = 0; i < n; i++) {
		size_t k = points[i];
		const char *p = buf;
		int r;

		r = rh_http_parse_response(p, k, &lim, head_req, &sub);
		check_response(&sub, r, head_req, p, k, &lim);
		if (r == RH_HTTP_PARTIAL)
			continue;
		CHECK(r == rc);
		if (r > 0)
			CHECK(sub.status == resp.status && sub.num_headers == resp.num_headers && sub.body == resp.body &&
			      sub.framing == resp.framing && sub.content_length == resp.content_length &&
			      sub.keep_alive == resp.keep_alive);
	}

	if (rc > 0 && resp.body == RH_BODY_CHUNKED) {
		size_t body_len = size - (size_t)rc;

		check_chunked(buf + rc, body_len, body_len ? (size_t)(flags >> 1) * body_len / 127 : 0);
	}
	free(buf);
	return 0;
}
