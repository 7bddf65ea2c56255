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
	RH_HDR_HOP,            /* hop-by-hop: Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, and every
	                          header a Connection line names. Never forwarded. */
	RH_HDR_CONNECTION,     /* Connection: hop-by-hop too, and names more hop-by-hop fields */
	RH_HDR_HOST,
	RH_HDR_CONTENT_LENGTH,
	RH_HDR_TRANSFER_ENCODING,
	RH_HDR_X_FORWARDED_FOR,
	RH_HDR_UNTRUSTED,      /* a claim about the connection that only the proxy may make, dropped from
	                          requests: X-Forwarded-Proto (ours replaces it), X-Forwarded-Host,
	                          Forwarded, X-Real-IP, and
	                          any name that reads as a header of this list with '_' for '-'
	                          (X-Forwarded_Proto, Transfer_Encoding: CGI-style backends map both to
	                          the same variable) */
	RH_HDR_EXPECT,
};

struct rh_http_header {
	struct rh_span name;
	struct rh_span value; /* leading and trailing whitespace trimmed */
	enum rh_hdr_kind kind;
};

enum rh_body_kind {
	RH_BODY_NONE,        /* no body: no framing header, or HEAD/1xx/204/304 response */
	RH_BODY_LENGTH,      /* Content-Length: <content_length> bytes */
	RH_BODY_CHUNKED,     /* Transfer-Encoding ending in chunked: use struct rh_chunked */
	RH_BODY_UNTIL_CLOSE, /* responses only: the body ends when the server closes */
};

/* Framing numbers above this are refused whatever the limits say (a backend parsing lengths as a
 * double or in 53 bits would read another length). */
#define RH_HTTP_MAX_LENGTH (UINT64_C(1) << 53)

struct rh_http_limits {
	size_t max_head;    /* bytes in the whole head (request line + headers + CRLF); over it: 431 */
	size_t max_uri;     /* bytes in the request target; over it: 414 */
	size_t max_headers; /* header lines, at most RH_HTTP_MAX_HEADERS; over it: 431 */
	uint64_t max_body;  /* request Content-Length above this: 413; 0 = no limit ([limits] max_body_size) */
};

/* The form of a request target (RFC 9112 3.2). Authority form is CONNECT's, which is refused. */
enum rh_target_form {
	RH_TARGET_ORIGIN,   /* "/path?query" */
	RH_TARGET_ABSOLUTE, /* "http://authority/path?query": forwarded in origin form, authority as Host */
	RH_TARGET_ASTERISK, /* "*", OPTIONS only */
};

struct rh_http_request {
	struct rh_span method;
	struct rh_span target;       /* as sent */
	enum rh_target_form target_form;
	struct rh_span path;         /* the target to forward: origin form as sent; for absolute form what
	                                follows the authority (may be empty or start with '?': the
	                                serializer puts a '/' before it); "*" */
	struct rh_span authority;    /* absolute form: "host[:port]" (checked like Host); else len 0 */
	int minor_version;           /* HTTP/1.<minor>; only 1.0 and 1.1 are accepted */
	bool is_head;                /* method is HEAD */
	bool keep_alive;             /* 1.1 without "Connection: close", or 1.0 with "Connection: keep-alive" */
	bool expect_continue;        /* "Expect: 100-continue" */
	bool is_idempotent;          /* GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 9.2.2): may be
	                                sent again after it may have reached a backend */
	enum rh_body_kind body;      /* NONE, LENGTH or CHUNKED (never UNTIL_CLOSE) */
	bool has_content_length;     /* a Content-Length line was sent (also "Content-Length: 0") */
	uint64_t content_length;     /* when body == RH_BODY_LENGTH */
	int host_index;              /* index in headers[] of the Host line, or -1 */
	size_t num_headers;
	struct rh_http_header headers[RH_HTTP_MAX_HEADERS];
	int error_status;            /* when the parser returns -1: the status to answer (400, 413, 414,
	                                431, 501 for a transfer coding other than chunked, 505 for the
	                                version) */
};

struct rh_http_response {
	int minor_version;
	int status;                 /* 100-999 */
	struct rh_span reason;      /* reason phrase, possibly empty */
	bool keep_alive;            /* the server will keep the connection open after this response */
	enum rh_body_kind body;     /* what follows the head: NONE, LENGTH, CHUNKED or UNTIL_CLOSE */
	enum rh_body_kind framing;  /* what the framing headers say, also when no body follows (HEAD, 304):
	                               LENGTH, CHUNKED or UNTIL_CLOSE (no framing header) */
	uint64_t content_length;    /* when framing == RH_BODY_LENGTH */
	size_t num_headers;
	struct rh_http_header headers[RH_HTTP_MAX_HEADERS];
};

/* Parses a request head from <buf>[0..<len>).
 * Returns the head length (>0) when complete; RH_HTTP_PARTIAL when more bytes are needed (and the
 * limits are not yet exceeded); RH_HTTP_INVALID with <req>->error_status set otherwise.
 * Line ends are CRLF or a lone LF (RFC 9112 2.2); the serializer sends CRLF whatever came.
 * Rejected with 400, never forwarded (RFC 9112 6, 11.2, 3.2):
 *   - a request line that is not exactly METHOD SP target SP version; a field line that is not
 *     token ":" value; obs-fold (a line starting with SP/HTAB); NUL, bare CR or another CTL;
 *     whitespace between field name and colon;
 *   - Content-Length that is not one decimal number on one line ("5, 5", two lines, "+5", empty), or
 *     above RH_HTTP_MAX_LENGTH; Content-Length together with Transfer-Encoding; Transfer-Encoding in
 *     an HTTP/1.0 request, with an empty list element (",chunked", "chunked,", an empty line), a
 *     non-token element, or codings that do not end in exactly one chunked;
 *   - no Host in HTTP/1.1, several Host lines, a Host (or an absolute target's authority) that is
 *     not host[:port] (reg-name, IPv4 or [IPv6]; no userinfo, no path);
 *   - a target that is not origin form ("/..."), absolute form (http or https), or "*" with OPTIONS;
 *     a target with a fragment ('#').
 * 413: Content-Length above <lim>->max_body (when set). 501: chunked last but another coding before
 * it ("gzip, chunked"), or CONNECT (tunnels are not proxied). 505: a version other than HTTP/1.0 or
 * HTTP/1.1. 414/431: limits. Leading empty lines before the request line are skipped, as RFC 9112
 * 2.2 allows, and count towards the returned length. */
int rh_http_parse_request(const char *buf, size_t len, const struct rh_http_limits *lim,
			  struct rh_http_request *req);

/* Parses a response head. <request_is_head>: the request was HEAD (no body whatever the headers say).
 * Same conventions and the same framing rules as requests: any ambiguity (both CL and TE, CL not one
 * number on one line, TE list not ending in exactly one chunked, TE in HTTP/1.0, lengths above
 * RH_HTTP_MAX_LENGTH) returns RH_HTTP_INVALID (the proxy then answers 502). 1xx responses parse like others, with
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
 * a chunk size above RH_HTTP_MAX_LENGTH, size line or trailers over 4 KiB / 8 KiB, a line not ended
 * by CRLF, missing CRLF after data, a trailer line that is not token ":" value). Chunk bytes pass
 * through the proxy unchanged, so here, unlike in heads, a lone LF is an error. */
ssize_t rh_chunked_feed(struct rh_chunked *c, const char *buf, size_t len);

/* True once the last chunk, the trailers and the final CRLF have been consumed. */
bool rh_chunked_done(const struct rh_chunked *c);

/* Iterates over the elements of a comma-separated list (RFC 9110 5.6.1) in <v>: stores the next
 * element, OWS trimmed and possibly empty, in <*elem> and returns true; false when <*pos> is past
 * the last element. Start with *pos == 0. An empty value yields one empty element. */
bool rh_http_list_next(struct rh_span v, size_t *pos, struct rh_span *elem);

/* Case-insensitive comparison of a span with a NUL-terminated lowercase token. */
bool rh_span_eq_lower(struct rh_span s, const char *lower);

#endif
