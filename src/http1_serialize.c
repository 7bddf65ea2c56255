/* http1_serialize: canonical request and response heads from parsed ones (see the header for the
 * exact shape). Every byte written comes from a parsed span or a constant: the raw lines of the
 * peer never pass through, so a quirk the parser tolerated (a lone LF, odd whitespace, a list in an
 * unusual form) reaches the other side only as its one canonical reading. */
#include "roundhouse/http1_serialize.h"

#include <string.h>

/* A bounded writer: once something does not fit, everything after is dropped and the result is -1. */
struct out {
	char *p;
	char *end;
	bool overflow;
};

static inline void put(struct out *o, const void *src, size_t len)
{
	if (o->overflow || (size_t)(o->end - o->p) < len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p, src, len);
	o->p += len;
}

#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)

static void put_span(struct out *o, struct rh_span s)
{
	put(o, s.p, s.len);
}

static void put_u64(struct out *o, uint64_t n)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	put(o, tmp + i, sizeof(tmp) - i);
}

/* Field lines are written as "name: value\r\n". A line that already has exactly that form in the
 * peer's bytes (the usual case) is the same bytes, so runs of such lines that lie next to each other
 * there are copied as one block rather than four pieces each: <run> is the pending block. */
struct run {
	const char *p, *end;
};

static inline void run_flush(struct out *o, struct run *r)
{
	if (r->p) {
		put(o, r->p, (size_t)(r->end - r->p));
		r->p = NULL;
	}
}

static inline void put_field(struct out *o, struct run *r, const struct rh_http_header *h)
{
	const char *line = h->name.p, *colon = line + h->name.len, *vend = h->value.p + h->value.len;

	/* the parser put the colon right after the name and a line end (or OWS) after the value */
	if (h->value.p == colon + 2 && colon[1] == ' ' && vend[0] == '\r' && vend[1] == '\n') {
		if (r->p && r->end == line) {
			r->end = vend + 2;
		} else {
			run_flush(o, r);
			r->p = line;
			r->end = vend + 2;
		}
		return;
	}
	run_flush(o, r);
	put_span(o, h->name);
	PUT_LIT(o, ": ");
	put_span(o, h->value);
	PUT_LIT(o, "\r\n");
}

static ssize_t finish(struct out *o, char *dst)
{
	return o->overflow ? -1 : (ssize_t)(o->p - dst);
}

/* Each field line grows by at most 2 bytes (": " for ":", CRLF for LF); the rest is the lines the
 * serializer adds, all shorter than this together. */
#define ADDED_LINES_MAX 192

size_t rh_http1_request_size_bound(const struct rh_http_request *req, size_t head_len,
				   const struct rh_request_rewrite *rw)
{
	return head_len + 2 * req->num_headers + req->authority.len + rw->host.len + rw->client_ip.len +
	       ADDED_LINES_MAX;
}

size_t rh_http1_response_size_bound(const struct rh_http_response *resp, size_t head_len)
{
	size_t codings = 0; /* "a,b" becomes "a, b": one more byte per comma at most */

	for (size_t i = 0; i < resp->num_headers; i++) {
		if (resp->headers[i].kind == RH_HDR_TRANSFER_ENCODING)
			codings += resp->headers[i].value.len;
	}
	return head_len + 2 * resp->num_headers + codings + ADDED_LINES_MAX;
}

/* The Host the backend gets: the rewrite's, else the authority of an absolute target (which a
 * backend must prefer to any Host line, RFC 9112 3.2.2: so the two can never disagree), else the
 * client's Host line. len 0 when there is none (HTTP/1.0 without Host). */
static struct rh_span request_host(const struct rh_http_request *req, const struct rh_request_rewrite *rw)
{
	if (rw->host.len)
		return rw->host;
	if (req->target_form == RH_TARGET_ABSOLUTE)
		return req->authority;
	if (req->host_index >= 0)
		return req->headers[req->host_index].value;
	return (struct rh_span){ "", 0 };
}

static void put_forwarded_for(struct out *o, const struct rh_http_request *req,
			      const struct rh_request_rewrite *rw)
{
	if (rw->xff == RH_XFF_OFF)
		return;
	PUT_LIT(o, "X-Forwarded-For: ");
	if (rw->xff == RH_XFF_APPEND) {
		/* every line the client sent, in order, merged into one list: a backend reading the
		 * first line and one reading the last see the same chain */
		for (size_t i = 0; i < req->num_headers; i++) {
			const struct rh_http_header *h = &req->headers[i];
			if (h->kind != RH_HDR_X_FORWARDED_FOR || h->value.len == 0)
				continue;
			put_span(o, h->value);
			PUT_LIT(o, ", ");
		}
	}
	put_span(o, rw->client_ip);
	PUT_LIT(o, "\r\n");
}

ssize_t rh_http1_serialize_request(const struct rh_http_request *req, const struct rh_request_rewrite *rw,
				   char *dst, size_t cap)
{
	struct out o = { dst, dst + cap, false };
	struct run run = { NULL, NULL };
	struct rh_span host = request_host(req, rw);

	put_span(&o, req->method);
	PUT_LIT(&o, " ");
	if (req->target_form == RH_TARGET_ABSOLUTE && (req->path.len == 0 || req->path.p[0] != '/'))
		PUT_LIT(&o, "/"); /* "http://a?x" is "/?x" in origin form */
	put_span(&o, req->path);
	if (req->minor_version == 0)
		PUT_LIT(&o, " HTTP/1.0\r\n");
	else
		PUT_LIT(&o, " HTTP/1.1\r\n");
	if (host.len) {
		PUT_LIT(&o, "Host: ");
		put_span(&o, host);
		PUT_LIT(&o, "\r\n");
	}
	for (size_t i = 0; i < req->num_headers; i++) {
		switch (req->headers[i].kind) {
		case RH_HDR_HOP:
		case RH_HDR_CONNECTION:
		case RH_HDR_HOST:
		case RH_HDR_CONTENT_LENGTH:
		case RH_HDR_TRANSFER_ENCODING:
		case RH_HDR_X_FORWARDED_FOR:
		case RH_HDR_UNTRUSTED:
			break;
		default:
			put_field(&o, &run, &req->headers[i]);
		}
	}
	run_flush(&o, &run);
	if (req->body == RH_BODY_CHUNKED) {
		PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
	} else if (req->has_content_length) {
		PUT_LIT(&o, "Content-Length: ");
		put_u64(&o, req->content_length);
		PUT_LIT(&o, "\r\n");
	}
	put_forwarded_for(&o, req, rw);
	if (rw->https)
		PUT_LIT(&o, "X-Forwarded-Proto: https\r\n");
	else
		PUT_LIT(&o, "X-Forwarded-Proto: http\r\n");
	if (req->minor_version == 0)
		PUT_LIT(&o, "Connection: keep-alive\r\n"); /* so the backend may keep it for the pool */
	PUT_LIT(&o, "\r\n");
	return finish(&o, dst);
}

/* "Transfer-Encoding: " and the codings of every Transfer-Encoding line in order, one list (the
 * parser made sure each element is a token and the last is the only chunked: "gzip, chunked"). */
static void put_codings(struct out *o, const struct rh_http_response *resp)
{
	bool first = true;

	PUT_LIT(o, "Transfer-Encoding: ");
	for (size_t i = 0; i < resp->num_headers; i++) {
		struct rh_span e;
		size_t pos = 0;

		if (resp->headers[i].kind != RH_HDR_TRANSFER_ENCODING)
			continue;
		while (rh_http_list_next(resp->headers[i].value, &pos, &e)) {
			if (!first)
				PUT_LIT(o, ", ");
			put_span(o, e);
			first = false;
		}
	}
	PUT_LIT(o, "\r\n");
}

ssize_t rh_http1_serialize_response(const struct rh_http_response *resp,
				    const struct rh_response_rewrite *rw, char *dst, size_t cap)
{
	struct out o = { dst, dst + cap, false };
	struct run run = { NULL, NULL };
	char status[3] = { (char)('0' + resp->status / 100), (char)('0' + resp->status / 10 % 10),
			   (char)('0' + resp->status % 10) };
	/* 1xx and 204 carry no framing at all (RFC 9110 8.6, 6.4.1) */
	bool no_framing = resp->status < 200 || resp->status == 204;

	PUT_LIT(&o, "HTTP/1.1 ");
	put(&o, status, sizeof(status));
	PUT_LIT(&o, " ");
	put_span(&o, resp->reason);
	PUT_LIT(&o, "\r\n");
	for (size_t i = 0; i < resp->num_headers; i++) {
		switch (resp->headers[i].kind) {
		case RH_HDR_HOP:
		case RH_HDR_CONNECTION:
		case RH_HDR_CONTENT_LENGTH:
		case RH_HDR_TRANSFER_ENCODING:
			break;
		default:
			put_field(&o, &run, &resp->headers[i]);
		}
	}
	run_flush(&o, &run);
	if (rw->chunked) {
		PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
	} else if (!no_framing && resp->framing == RH_BODY_CHUNKED) {
		if (!rw->http10)
			put_codings(&o, resp);
	} else if (!no_framing && resp->framing == RH_BODY_LENGTH) {
		PUT_LIT(&o, "Content-Length: ");
		put_u64(&o, resp->content_length);
		PUT_LIT(&o, "\r\n");
	}
	if (rw->connection == RH_CONN_CLOSE)
		PUT_LIT(&o, "Connection: close\r\n");
	else if (rw->connection == RH_CONN_KEEP_ALIVE)
		PUT_LIT(&o, "Connection: keep-alive\r\n");
	PUT_LIT(&o, "\r\n");
	return finish(&o, dst);
}
