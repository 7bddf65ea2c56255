/* Helpers shared by the Check suites of the HTTP parser and serializer (check_http1.c,
 * check_serialize.c). */
#ifndef RH_HTTP1_CHECK_HELPERS_H
#define RH_HTTP1_CHECK_HELPERS_H

#include <check.h>
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

#endif
