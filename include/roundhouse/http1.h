/* HTTP/1.1 message heads and body framing (RFC 9112). No I/O, no allocation: the head is parsed in
 * place and every field is a span (pointer, length) into the caller's buffer, valid as long as the
 * buffer is. Parsers are stateless: call again with more bytes after -2 (picohttpparser style). */
#ifndef RH_HTTP1_H
#define RH_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RH_HTTP_MAX_HEADERS 100 /* more header lines than this: 431 */
#define RH_HTTP_MAX_CONNECTION_OPTIONS 16 /* Connection options naming other headers; more: 400 */

/* Parser results (besides >0, the length of the head including its final CRLF). */
#define RH_HTTP_PARTIAL (-2)
#define RH_HTTP_INVALID (-1)

struct rh_span {
	const char *p;
	size_t len;
};

/* What the proxy does with a header line when it forwards the head. */
enum rh_hdr_kind {
	RH_HDR_OTHER = 0,
	RH_HDR_HOP,            /* hop-by-hop: Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
	                          and every header the Connection header names. Never forwarded. */
	RH_HDR_HOST,
	RH_HDR_CONTENT_LENGTH,
	RH_HDR_TRANSFER_ENCODING,
	RH_HDR_X_FORWARDED_FOR,
	RH_HDR_X_FORWARDED_PROTO, /* replaced by the proxy's own: a client must not claim https */
	RH_HDR_EXPECT,
};

struct rh_http_header {
	struct rh_span name;
	struct rh_span value; /* leading and trailing whitespace trimmed */
	struct rh_span line;  /* the whole field line including its CRLF (or LF): what gets forwarded */
	enum rh_hdr_kind kind;
};

enum rh_body_kind {
	RH_BODY_NONE,        /* no body: no framing header, or HEAD/1xx/204/304 response */
	RH_BODY_LENGTH,      /* Content-Length: <content_length> bytes */
	RH_BODY_CHUNKED,     /* Transfer-Encoding ending in chunked: use struct rh_chunked */
	RH_BODY_UNTIL_CLOSE, /* responses only: the body ends when the server closes */
};

struct rh_http_limits {
	size_t max_head;    /* bytes in the whole head (request line + headers + CRLF); over it: 431 */
	size_t max_uri;     /* bytes in the request target; over it: 414 */
	size_t max_headers; /* header lines, at most RH_HTTP_MAX_HEADERS; over it: 431 */
};

struct rh_http_request {
	struct rh_span method;
	struct rh_span target;
	struct rh_span request_line; /* "GET / HTTP/1.1\r\n", terminator included */
	int minor_version;           /* HTTP/1.<minor>; only 1.0 and 1.1 are accepted */
	bool is_head;                /* method is HEAD */
	bool keep_alive;             /* 1.1 without "Connection: close", or 1.0 with "Connection: keep-alive" */
	bool expect_continue;        /* "Expect: 100-continue" */
	enum rh_body_kind body;      /* NONE, LENGTH or CHUNKED (never UNTIL_CLOSE) */
	uint64_t content_length;     /* when body == RH_BODY_LENGTH */
	int host_index;              /* index in headers[] of the Host line, or -1 */
	size_t num_headers;
	struct rh_http_header headers[RH_HTTP_MAX_HEADERS];
	int error_status;            /* when the parser returns -1: the status to answer (400, 414, 431,
	                                501 for a transfer coding other than chunked, 505 for the version) */
};

struct rh_http_response {
	struct rh_span status_line; /* "HTTP/1.1 200 OK\r\n", terminator included */
	int minor_version;
	int status;                 /* 100-999 */
	bool keep_alive;            /* the server will keep the connection open after this response */
	enum rh_body_kind body;     /* NONE, LENGTH, CHUNKED or UNTIL_CLOSE */
	uint64_t content_length;
	size_t num_headers;
	struct rh_http_header headers[RH_HTTP_MAX_HEADERS];
};

/* Parses a request head from <buf>[0..<len>).
 * Returns the head length (>0) when complete; RH_HTTP_PARTIAL when more bytes are needed (and the
 * limits are not yet exceeded); RH_HTTP_INVALID with <req>->error_status set otherwise.
 * Rejected with 400: malformed request line or field line, obs-fold (a line starting with SP/HTAB),
 * NUL, bare CR, whitespace between field name and colon, both Content-Length and Transfer-Encoding,
 * Content-Length that is not a decimal number or several that differ (equal duplicates are fine, also
 * as a list "5, 5"), Transfer-Encoding in an HTTP/1.0 request, several Host lines, no Host in 1.1.
 * Also 400: Transfer-Encoding whose codings do not end in exactly one chunked (RFC 9112 6.3).
 * 501: chunked last but another coding before it ("gzip, chunked"): codings we do not implement.
 * 505: a version other than HTTP/1.0 or HTTP/1.1. 414/431: limits. Leading empty lines (CRLF) before
 * the request line are skipped, as RFC 9112 2.2 allows, and count towards the returned length. */
int rh_http_parse_request(const char *buf, size_t len, const struct rh_http_limits *lim,
			  struct rh_http_request *req);

/* Parses a response head. <request_is_head>: the request was HEAD (no body whatever the headers say).
 * Same conventions; any framing ambiguity (both CL and TE, differing CL, TE not ending in chunked)
 * returns RH_HTTP_INVALID (the proxy then answers 502). 1xx responses parse like others, with
 * body == RH_BODY_NONE: the caller forwards them and parses the next head. */
int rh_http_parse_response(const char *buf, size_t len, const struct rh_http_limits *lim,
			   bool request_is_head, struct rh_http_response *resp);

/* Incremental chunked body decoder: finds where a chunked body (with trailers) ends, so the proxy can
 * pass it through unchanged. Keeps its state across calls; input may be split at any byte. */
struct rh_chunked {
	uint8_t state;
	uint8_t digits;        /* hex digits in the current size line */
	uint16_t line_len;     /* bytes in the current size line or trailer line */
	uint32_t trailer_len;  /* bytes of trailers so far */
	uint64_t remaining;    /* data bytes left in the current chunk */
	uint64_t total;        /* data bytes so far */
};

void rh_chunked_init(struct rh_chunked *c);

/* Consumes bytes of <buf>[0..<len>) up to the end of the message. Returns how many it consumed
 * (<= len; less than len only when the message ended inside <buf>), or -1 on a framing error (bad hex,
 * size overflow, size line or trailers over 4 KiB / 8 KiB, missing CRLF after data). */
ssize_t rh_chunked_feed(struct rh_chunked *c, const char *buf, size_t len);

/* True once the last chunk, the trailers and the final CRLF have been consumed. */
bool rh_chunked_done(const struct rh_chunked *c);

/* Case-insensitive comparison of a span with a NUL-terminated lowercase token. */
bool rh_span_eq_lower(struct rh_span s, const char *lower);

#endif
