/* Shared by the libFuzzer targets in tests/fuzz/ (see meson.build there). Checks abort(), which
 * libFuzzer reports as a crash and saves the input. */
#ifndef RH_FUZZ_COMMON_H
#define RH_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roundhouse/buf.h"
#include "roundhouse/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                            \
	do {                                                                                                   \
		if (!(cond)) {                                                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
			abort();                                                                               \
		}                                                                                              \
	} while (0)

/* What src/main.c gives the workers: heads up to one buffer, 8 KiB targets (main.c's MAX_URI), every
 * header slot. max_body is a configured [limits] max_body_size of 1 MiB, so 413 is reachable. */
static inline struct rh_http_limits fuzz_proxy_limits(void)
{
	struct rh_http_limits lim = {
		.max_head = RH_BUF_SIZE,
		.max_uri = 8192,
		.max_headers = RH_HTTP_MAX_HEADERS,
		.max_body = 1024 * 1024,
	};
	return lim;
}

/* A span lies inside <base>[0..<len>) (an empty one anywhere in it, or at its end). */
static inline int span_inside(struct rh_span s, const char *base, size_t len)
{
	uintptr_t b = (uintptr_t)base, p = (uintptr_t)s.p;

	if (s.len == 0)
		return s.p == NULL || (p >= b && p <= b + len);
	return s.p != NULL && p >= b && s.len <= len && p - b <= len - s.len;
}

/* Checks the headers a parser returned: spans inside the head, names non-empty. */
static inline void check_headers(const struct rh_http_header *h, size_t n, const char *head, size_t head_len)
{
	CHECK(n <= RH_HTTP_MAX_HEADERS);
	for (size_t i = 0; i < n; i++) {
		CHECK(h[i].name.len > 0);
		CHECK(span_inside(h[i].name, head, head_len));
		CHECK(span_inside(h[i].value, head, head_len));
		CHECK(h[i].kind >= RH_HDR_OTHER && h[i].kind <= RH_HDR_EXPECT);
		/* values are trimmed */
		if (h[i].value.len > 0) {
			char first = h[i].value.p[0], last = h[i].value.p[h[i].value.len - 1];

			CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
		}
	}
}

/* Prefix lengths worth re-parsing: every one for short inputs, else a sample (the whole quadratic
 * walk would make long inputs crawl) that always includes the bytes around <mark>, the end of the
 * head. Returns how many it wrote to <out> (at most 64). */
static inline size_t prefix_points(size_t len, size_t mark, size_t *out)
{
	size_t n = 0;

	if (len <= 48) {
		for (size_t k = 0; k < len; k++)
			out[n++] = k;
		return n;
	}
	for (size_t k = 0; k < 8; k++)
		out[n++] = k; /* the request or status line being read */
	for (size_t k = 1; k < 32; k++)
		out[n++] = k * len / 32;
	for (size_t d = 0; d < 8; d++)
		if (mark >= d && mark - d < len)
			out[n++] = mark - d;
	for (size_t d = 1; d < 8; d++)
		if (mark + d < len)
			out[n++] = mark + d;
	return n;
}

/* Feeds a chunked body three ways: whole, in two pieces split at <split>, and byte by byte when short.
 * All must agree on the bytes consumed (or -1) and on whether the body ended. */
static inline void check_chunked(const char *body, size_t len, size_t split)
{
	struct rh_chunked c;
	ssize_t whole, a, b, total;
	bool done_whole, done_split;

	rh_chunked_init(&c);
	whole = rh_chunked_feed(&c, body, len);
	CHECK(whole >= -1 && whole <= (ssize_t)len);
	done_whole = rh_chunked_done(&c);
	if (whole >= 0 && (size_t)whole < len)
		CHECK(done_whole); /* less than all only when the message ended */
	if (whole >= 0 && done_whole)
		CHECK(rh_chunked_feed(&c, body, len) == 0); /* nothing more after the end */
	if (whole < 0)
		CHECK(rh_chunked_feed(&c, body, len) == -1); /* errors stick */

	if (split > len)
		split = len;
	rh_chunked_init(&c);
	a = rh_chunked_feed(&c, body, split);
	CHECK(a >= -1 && a <= (ssize_t)split);
	if (a < 0) {
		total = -1;
	} else if ((size_t)a < split || rh_chunked_done(&c)) {
		total = a;
	} else {
		b = rh_chunked_feed(&c, body + split, len - split);
		CHECK(b >= -1 && b <= (ssize_t)(len - split));
		total = b < 0 ? -1 : a + b;
	}
	done_split = total >= 0 && rh_chunked_done(&c);
	CHECK(total == whole);
	CHECK(done_split == (whole >= 0 && done_whole));

	if (len <= 512) {
		rh_chunked_init(&c);
		total = 0;
		for (size_t i = 0; i < len && !rh_chunked_done(&c); i++) {
			ssize_t r = rh_chunked_feed(&c, body + i, 1);

			if (r < 0) {
				total = -1;
				break;
			}
			CHECK(r == 1);
			total++;
		}
		CHECK(total == whole);
		CHECK((total >= 0 && rh_chunked_done(&c)) == (whole >= 0 && done_whole));
	}
}

/* A copy of <data>[0..<len>) in an allocation of exactly <len> bytes, so that any read past the end
 * is an ASan heap-buffer-overflow. (Prefixes are parsed in place: a parser reading past a prefix
 * would read past the same bytes as a whole input, which libFuzzer tries too.) */
static inline char *exact_copy(const uint8_t *data, size_t len)
{
	char *p = malloc(len ? len : 1);

	CHECK(p != NULL);
	if (len)
		memcpy(p, data, len);
	return p;
}

#endif
