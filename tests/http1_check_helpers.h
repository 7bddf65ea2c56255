/* Helpers shared by the Check suites of the HTTP parser and serializer (check_http1.c,
 * check_serialize.c). */
#ifndef RH_HTTP1_CHECK_HELPERS_H
#define RH_HTTP1_CHECK_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#include "roundhouse/http1.h"

/* Parses a copy of <s>[0..<n>) in a buffer of exactly <n> bytes, so ASan sees any read past the end.
 * Spans in <req> are dangling afterwards; only the result and error_status are meant to be used. */
static inline int req_parse_copy(const char *s, size_t n, const struct rh_http_limits *l,
				 struct rh_http_request *req)
{
	char *b = malloc(n ? n : 1);
	int r;

	ck_assert_ptr_nonnull(b);
	memcpy(b, s, n);
	r = rh_http_parse_request(b, n, l, req);
	free(b);
	return r;
}

static inline int resp_parse_copy(const char *s, size_t n, const struct rh_http_limits *l, bool head,
				  struct rh_http_response *resp)
{
	char *b = malloc(n ? n : 1);
	int r;

	ck_assert_ptr_nonnull(b);
	memcpy(b, s, n);
	r = rh_http_parse_response(b, n, l, head, resp);
	free(b);
	return r;
}

/* Parses <s> whole, then every prefix of it: each prefix must give PARTIAL, or the whole result when
 * the head ends inside the prefix, or (for invalid input) the same error. Returns the whole result
 * and its error_status in <*status>. */
static inline int req_split(const char *s, size_t n, const struct rh_http_limits *l, int *status)
{
	struct rh_http_request req;
	int whole = req_parse_copy(s, n, l, &req);
	int whole_status = req.error_status;
	int shown = n > 120 ? 120 : (int)n;

	for (size_t i = 0; i < n; i++) {
		int r = req_parse_copy(s, i, l, &req);

		if (whole > 0 && i >= (size_t)whole)
			ck_assert_int_eq(r, whole);
		else if (whole > 0)
			ck_assert_msg(r == RH_HTTP_PARTIAL, "prefix %zu of %zu of \"%.*s\": got %d, want partial", i, n,
				      shown, s, r);
		else
			ck_assert_msg(r == RH_HTTP_PARTIAL || (r == RH_HTTP_INVALID && req.error_status == whole_status),
				      "prefix %zu of %zu of \"%.*s\": got %d/%d, whole gives %d/%d", i, n, shown, s, r,
				      req.error_status, whole, whole_status);
	}
	if (status)
		*status = whole_status;
	return whole;
}

/* Feeds <s> in one call; returns the result and leaves the decoder in <c>. */
static inline ssize_t chunked_all(struct rh_chunked *c, const char *s, size_t n)
{
	rh_chunked_init(c);
	return rh_chunked_feed(c, s, n);
}

/* Feeds <s> in pieces cut at <cuts> (ascending offsets); stops at the first error. Returns the total
 * consumed or -1. Each piece is a separate exact-size copy so ASan sees overreads. */
static inline ssize_t chunked_pieces(struct rh_chunked *c, const char *s, size_t n, const size_t *cuts, size_t ncuts)
{
	size_t at = 0;
	ssize_t total = 0;

	rh_chunked_init(c);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : n;
		char *b = malloc(to - at ? to - at : 1);
		ssize_t r;

		ck_assert_ptr_nonnull(b);
		memcpy(b, s + at, to - at);
		r = rh_chunked_feed(c, b, to - at);
		free(b);
		if (r < 0)
			return -1;
		ck_assert_msg(r == (ssize_t)(to - at) || rh_chunked_done(c), "short consume %zd of %zu before the end",
			      r, to - at);
		total += r;
		at = to;
		if (rh_chunked_done(c))
			break;
	}
	return total;
}

#endif
