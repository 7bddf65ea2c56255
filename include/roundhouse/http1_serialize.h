/* The canonical heads roundhouse sends: a pure function from a parsed head (http1.h) and the rewrite
 * settings to bytes. Nothing the client or the backend sent is passed through as raw line bytes:
 * every line is rebuilt as "name: value\r\n" from the parsed spans, so whatever line-ending or
 * whitespace quirk the parser tolerated cannot reach the other side. No allocation, no I/O.
 *
 * Request head, in this order:
 *   METHOD SP origin-form-target SP HTTP/1.x CRLF   (absolute form becomes origin form, RFC 9112 3.2.2)
 *   Host: <rewrite host | authority of an absolute target | the client's Host>
 *   every other field in the client's order, except hop-by-hop ones, Content-Length,
 *   Transfer-Encoding, X-Forwarded-For, and untrusted claims (X-Forwarded-Proto, X-Forwarded-Host,
 *   Forwarded, X-Real-IP, and names that read as a proxy-owned header with '_' for '-')
 *   exactly one framing line: "Content-Length: N" or "Transfer-Encoding: chunked" (none without a body,
 *   unless the client sent "Content-Length: 0")
 *   X-Forwarded-For per the mode (append: the client's lines merged into one, client address last)
 *   X-Forwarded-Proto: http|https
 *   Connection: keep-alive  (HTTP/1.0 requests only: the backend may keep the connection)
 *   CRLF
 *
 * Response head:
 *   HTTP/1.1 SP status SP reason CRLF      (our own version, RFC 9110 6.2)
 *   every field except hop-by-hop ones, Content-Length and Transfer-Encoding
 *   one framing line as the backend framed it ("Content-Length: N" also on HEAD and 304 answers;
 *   none on 1xx and 204; no Transfer-Encoding to an HTTP/1.0 client), or
 *   "Transfer-Encoding: chunked" when the proxy re-frames the body
 *   Connection: close | keep-alive per the rewrite
 *   CRLF
 */
#ifndef RH_HTTP1_SERIALIZE_H
#define RH_HTTP1_SERIALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "roundhouse/http1.h"

/* [upstream] x_forwarded_for */
enum rh_xff_mode {
	RH_XFF_APPEND,  /* all the client's X-Forwarded-For lines merged into one, client address last */
	RH_XFF_REPLACE, /* only the client address: for the outermost proxy, which trusts nobody */
	RH_XFF_OFF,     /* no X-Forwarded-For at all (the client's lines are dropped too) */
};

struct rh_request_rewrite {
	struct rh_span host;      /* Host to send ([upstream] host_header); len 0: the request's own */
	enum rh_xff_mode xff;
	struct rh_span client_ip; /* the peer address, as text */
	bool https;               /* the request reached us over TLS: X-Forwarded-Proto: https */
};

/* Connection header toward the client. */
enum rh_conn_header {
	RH_CONN_NONE,       /* HTTP/1.1 client, connection stays open: nothing to say */
	RH_CONN_CLOSE,
	RH_CONN_KEEP_ALIVE, /* HTTP/1.0 client whose connection stays open */
};

struct rh_response_rewrite {
	bool chunked; /* a close-delimited body is re-framed as chunked (HTTP/1.1 client) */
	bool http10;  /* the client speaks HTTP/1.0: no Transfer-Encoding (RFC 9112 6.1), which can then
	                 only be the framing of a HEAD or 304 answer, as no chunked body reaches it */
	enum rh_conn_header connection;
};

/* Upper bound of a serialized head's size given the parsed head's length: a buffer of this many
 * bytes always suffices (request: plus the rewrite's host and client address). */
size_t rh_http1_request_size_bound(const struct rh_http_request *req, size_t head_len,
				   const struct rh_request_rewrite *rw);
size_t rh_http1_response_size_bound(const struct rh_http_response *resp, size_t head_len);

/* Writes the upstream request head for <req> (parsed by rh_http_parse_request, so valid) into
 * <dst>[0..<cap>). Returns its length, or -1 when it does not fit (nothing useful in <dst>). */
ssize_t rh_http1_serialize_request(const struct rh_http_request *req, const struct rh_request_rewrite *rw,
				   char *dst, size_t cap);

/* Writes the client response head for <resp> (parsed by rh_http_parse_response). Same returns. */
ssize_t rh_http1_serialize_response(const struct rh_http_response *resp,
				    const struct rh_response_rewrite *rw, char *dst, size_t cap);

#endif
