/* http1: HTTP/1.1 request and response heads, chunked framing (RFC 9112, RFC 9110).
 *
 * The head parsers make one pass over the bytes with a character-class table (and SSE2 compares of
 * 16 bytes at a time where the CPU has them) and no allocation.
 * They are stateless, so after RH_HTTP_PARTIAL the caller parses again from the start with more
 * bytes. Every error is found at a byte position and the scan stops at the first one, so any prefix
 * of an input gives either RH_HTTP_PARTIAL or the same result as the whole input. The head limit is
 * applied by never looking past <max_head> bytes: a head that does not end inside them is 431. */
#include "roundhouse/http1.h"

#include <limits.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_LEADING_EMPTY 8   /* empty lines skipped before a request line (RFC 9112 2.2) */
#define CHUNK_LINE_MAX 4096   /* chunk-size line, extensions included */
#define TRAILER_LINE_MAX 4096 /* one trailer field line */
#define TRAILERS_MAX 8192     /* the whole trailer section */

enum {
	C_TCHAR = 1, /* token (RFC 9110 5.6.2): method, field name, list elements */
	C_VCHAR = 2, /* visible ASCII but '#': request target (a fragment is refused, RFC 9112 3.2) */
	C_FIELD = 4, /* field value: VCHAR, SP, HTAB, obs-text */
	C_REGNAME = 8, /* RFC 3986 reg-name: unreserved / sub-delims ('%' is checked apart) */
};

static const uint8_t ctab[256] = {
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	 4, 15,  6,  5, 15,  7, 15, 15, 14, 14, 15, 15, 14, 15, 15,  6,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6, 14,  6, 14,  6,  6,
	 6, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  6,  6,  7, 15,
	 7, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  7,  6, 15,  0,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
};

static inline bool is_class(char c, int cls)
{
	return ctab[(unsigned char)c] & cls;
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline struct rh_span span(const char *p, const char *end)
{
	return (struct rh_span){ .p = p, .len = (size_t)(end - p) };
}

/* Unaligned loads for comparing a few bytes at once (memcpy: no alignment or aliasing assumption,
 * compiled to one mov). */
static inline uint64_t load64(const char *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

static inline uint32_t load32(const char *p)
{
	uint32_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

static inline uint16_t load16(const char *p)
{
	uint16_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

/* <p>[0..<len>) equals <lit>[0..<len>), each byte of <p> first ORed with <fold> (0 or 0x20). Compares
 * words rather than bytes, the last one overlapping the one before: 8 bytes or more are 8-byte words,
 * 4-7 two 4-byte words, 2-3 two 2-byte words. Reads nothing outside either. <len> and <fold> are
 * constants at every use, so this compiles to a few loads and compares against immediates. */
static inline __attribute__((always_inline)) bool words_eq(const char *p, const char *lit, size_t len, uint8_t fold)
{
	if (len >= 8) {
		const uint64_t f = fold * UINT64_C(0x0101010101010101);
		uint64_t d = 0;

		for (size_t i = 0; i + 8 < len; i += 8)
			d |= (load64(p + i) | f) ^ load64(lit + i);
		return (d | ((load64(p + len - 8) | f) ^ load64(lit + len - 8))) == 0;
	}
	if (len >= 4) {
		const uint32_t f = fold * UINT32_C(0x01010101);

		return (((load32(p) | f) ^ load32(lit)) | ((load32(p + len - 4) | f) ^ load32(lit + len - 4))) == 0;
	}
	if (len >= 2) {
		const uint16_t f = (uint16_t)(fold * 0x0101u);

		return (((load16(p) | f) ^ load16(lit)) | ((load16(p + len - 2) | f) ^ load16(lit + len - 2))) == 0;
	}
	return len == 0 || (unsigned char)(p[0] | fold) == (unsigned char)lit[0];
}

/* Span <s> is exactly the string literal <lit>. */
#define SPAN_IS(s, lit) ((s).len == sizeof(lit) - 1 && words_eq((s).p, "" lit, sizeof(lit) - 1, 0))

/* Span <s> is <lit> ignoring case, where <lit> holds only lowercase letters, digits and '-', and <s>
 * no CTL but HTAB: a field name, a list element, a field value. ORing 0x20 into each byte of <s> is
 * then exact: c | 0x20 == x only for c == x and c == x - 0x20, which for a lowercase letter is its
 * uppercase, for a digit a CTL (0x10-0x19), for '-' CR (0x0d). (On other bytes it is not: '[' | 0x20
 * is '{'.) eq_lower is the general comparison. */
#define NOCASE_IS(s, lit) ((s).len == sizeof(lit) - 1 && words_eq((s).p, "" lit, sizeof(lit) - 1, 0x20))

#if defined(__SSE2__)
/* The SSE2 scans below test 16 bytes at once where that many remain before <end>, and stop at the
 * first byte outside the class (the lowest set bit of the movemask of the bytes outside it); the
 * scalar loops after them take the last bytes. No load reaches past <end>. */
static inline __m128i load128(const char *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Bit i set when byte i of <v> is SP to '~' or obs-text (0x80-0xff): a field value byte, except
 * HTAB, which is rare enough to be left to the caller. */
static inline unsigned field_bytes(__m128i v)
{
	/* v >= 0x20 as unsigned bytes: max(v, 0x20) == v */
	__m128i ok = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x20)), v);

	return (unsigned)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)), ok));
}

/* 0xff in each byte of <v> that lies in [lo, lo + n) (n <= 128). SSE2 compares only signed bytes:
 * adding 0x80 - lo (mod 256) moves the range to the bottom, [-128, -128 + n), and every other byte
 * above it. */
#define IN_RANGE(v, lo, n) \
	_mm_cmplt_epi8(_mm_add_epi8((v), _mm_set1_epi8((char)(0x80 - (lo)))), _mm_set1_epi8((char)(-128 + (n))))

/* Bit i set when byte i of <v> is a letter or a digit. ORing 0x20 folds 'A'-'Z' onto 'a'-'z' and
 * moves no other byte into that range. */
static inline __m128i alnum(__m128i v)
{
	return _mm_or_si128(IN_RANGE(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26), IN_RANGE(v, '0', 10));
}

/* Bit i set when byte i of <v> is a letter, a digit or '-': what most field names are made of. */
static inline unsigned name_bytes(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(alnum(v), _mm_cmpeq_epi8(v, _mm_set1_epi8('-'))));
}

/* Bit i set when byte i of <v> is a letter, a digit, '-' or '.': what most hosts are made of. */
static inline unsigned host_bytes(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(alnum(v), IN_RANGE(v, '-', 2)));
}

/* Bit i set when byte i of <v> is C_VCHAR: '!' to '~' but '#'. */
static inline unsigned vchar_bytes(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('#')), IN_RANGE(v, '!', 94)));
}
#endif

#if defined(__SSE2__)
/* Skips 16 bytes at a time while <in_class> says all 16 are in its class and 16 remain before
 * <end>: returns the first byte outside the class, or where fewer than 16 remain. */
static inline __attribute__((always_inline)) const char *skip16(const char *p, const char *end,
								 unsigned (*in_class)(__m128i))
{
	for (; end - p >= 16; p += 16) {
		unsigned other = ~in_class(load128(p)) & 0xffff;

		if (other)
			return p + (unsigned)__builtin_ctz(other);
	}
	return p;
}
#endif

/* Returns the first byte from <p> that is not C_FIELD, or <end>. */
static inline const char *skip_field(const char *p, const char *end)
{
#if defined(__SSE2__)
	while (end - p >= 16) {
		unsigned stop = ~field_bytes(load128(p)) & 0xffff;

		if (!stop) {
			p += 16;
			continue;
		}
		p += (unsigned)__builtin_ctz(stop);
		if (*p != '\t')
			return p;
		p++; /* HTAB is a value byte too */
	}
#endif
	while (p < end && is_class(*p, C_FIELD))
		p++;
	return p;
}

/* Returns the first byte from <p> that is not C_VCHAR, or <end>. */
static inline const char *skip_vchar(const char *p, const char *end)
{
#if defined(__SSE2__)
	p = skip16(p, end, vchar_bytes);
#endif
	while (p < end && is_class(*p, C_VCHAR))
		p++;
	return p;
}

/* How many of the first <len> bytes at <p> are letters, digits, '-' or '.' (all C_REGNAME): where the
 * reg-name scan of valid_authority can start. Bytes up to <limit> may be read, as the authority is
 * in a buffer, but only those inside it count. 0 without SSE2. */
static inline size_t skip_host(const char *p, size_t len, const char *limit)
{
	size_t i = 0;

#if defined(__SSE2__)
	for (; i < len && limit - (p + i) >= 16; i += 16) {
		unsigned other = ~host_bytes(load128(p + i)) & 0xffff;

		if (other) {
			i += (unsigned)__builtin_ctz(other);
			break;
		}
	}
#else
	(void)p;
	(void)limit;
#endif
	return i < len ? i : len;
}

/* Skips letters, digits and '-' from <p>, 16 bytes at a time while that many remain before <end>:
 * returns the first other byte, or where fewer than 16 remain. What most field names are made of, a
 * subset of tchar, so a tchar loop can go on from there. Without SSE2 it returns <p>. */
static inline const char *skip_name(const char *p, const char *end)
{
#if defined(__SSE2__)
	return skip16(p, end, name_bytes);
#else
	(void)end;
	return p;
#endif
}

/* The <n> (<= 16) bytes at <p> are all digits. Bytes up to <limit> may be read, as in skip_host. */
static inline bool all_digits(const char *p, size_t n, const char *limit)
{
#if defined(__SSE2__)
	if (limit - p >= 16) {
		unsigned want = (1u << n) - 1;

		return ((unsigned)_mm_movemask_epi8(IN_RANGE(load128(p), '0', 10)) & want) == want;
	}
#else
	(void)limit;
#endif
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
	}
	return true;
}

/* Returns the first byte from <p> that is not C_TCHAR, or <end>. */
static inline const char *skip_token(const char *p, const char *end)
{
	p = skip_name(p, end);
	while (p < end && is_class(*p, C_TCHAR))
		p++;
	return p;
}

/* Case-insensitive comparison with a lowercase string, for any bytes (NOCASE_IS is the faster one for
 * names and values). */
static inline bool eq_lower(struct rh_span s, const char *lower_str)
{
	size_t i;

	for (i = 0; i < s.len; i++) {
		if (lower_str[i] == '\0' || lower((unsigned char)s.p[i]) != (unsigned char)lower_str[i])
			return false;
	}
	return lower_str[i] == '\0';
}

bool rh_span_eq_lower(struct rh_span s, const char *lower_str)
{
	return eq_lower(s, lower_str);
}

static bool span_eq_nocase(struct rh_span a, struct rh_span b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
			return false;
	}
	return true;
}

static bool is_token(struct rh_span s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (!is_class(s.p[i], C_TCHAR))
			return false;
	}
	return true;
}

bool rh_http_list_next(struct rh_span v, size_t *pos, struct rh_span *elem)
{
	if (*pos > v.len)
		return false;
	const char *p = v.p + *pos, *end = v.p + v.len;
	const char *comma = memchr(p, ',', (size_t)(end - p));
	const char *e = comma ? comma : end;

	*pos = comma ? (size_t)(comma - v.p) + 1 : v.len + 1;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*elem = span(p, e);
	return true;
}

/* Looks at a CR or LF at <p> (< <end>): returns the terminator length (1 for LF, 2 for CRLF), 0 when
 * the buffer ends right after a CR, -1 for a bare CR. A lone LF is a terminator (RFC 9112 2.2). */
static inline int eol(const char *p, const char *end)
{
	if (*p == '\n')
		return 1;
	if (p + 1 == end)
		return 0;
	return p[1] == '\n' ? 2 : -1;
}

/* Where a line must end (<p> <= <end>): 0 with the terminator's length in <*len>, RH_HTTP_PARTIAL
 * when the buffer ends first, 400 for any other byte or a bare CR (NUL, DEL and CTLs other than
 * HTAB in a field value end up here). */
static inline int line_end(const char *p, const char *end, int *len)
{
	if (p == end)
		return RH_HTTP_PARTIAL;
	if (*p != '\r' && *p != '\n')
		return 400;
	*len = eol(p, end);
	return *len == 0 ? RH_HTTP_PARTIAL : *len < 0 ? 400 : 0;
}

/* What the field lines say about framing and the connection, gathered while they are parsed. */
struct fields {
	bool is_request;
	bool has_cl;
	bool has_te;
	bool te_last_chunked; /* the last transfer coding so far is chunked */
	bool te_other;        /* a coding other than chunked was seen */
	unsigned te_chunked;  /* how many times chunked was seen */
	bool conn_close;
	bool conn_keep_alive;
	unsigned conn_other;  /* options naming other headers, which are hop-by-hop too */
	bool expect_continue;
	int host_index;
	uint64_t content_length;
};

static inline int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = lower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* host[:port] (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name or IPv4 address, or an IPv6 (or IPvFuture)
 * literal in brackets, then optionally ':' and 1-5 digits. No userinfo, no path, not empty: a Host
 * that a backend might split differently (at '@', '/', '?', a space) never reaches it. <limit>: the
 * end of the buffer <a> lies in, up to where bytes may be read (never decides anything). */
static bool valid_authority(struct rh_span a, const char *limit)
{
	size_t i = 0;

	if (a.len == 0)
		return false;
	if (a.p[0] == '[') {
		for (i = 1; i < a.len && a.p[i] != ']'; i++) {
			unsigned char c = (unsigned char)a.p[i];
			if (hex_value(c) < 0 && c != ':' && c != '.' && c != 'v' && c != 'V')
				return false;
		}
		if (i == a.len || i == 1)
			return false;
		i++;
	} else {
		i = skip_host(a.p, a.len, limit);
		for (;;) {
			while (i < a.len && is_class(a.p[i], C_REGNAME))
				i++;
			if (i == a.len || a.p[i] != '%')
				break;
			if (i + 2 >= a.len || hex_value((unsigned char)a.p[i + 1]) < 0 ||
			    hex_value((unsigned char)a.p[i + 2]) < 0)
				return false;
			i += 3;
		}
		if (i == 0)
			return false;
	}
	if (i == a.len)
		return true;
	if (a.p[i] != ':' || a.len - i - 1 == 0 || a.len - i - 1 > 5)
		return false;
	return all_digits(a.p + i + 1, a.len - i - 1, limit);
}

/* Content-Length: exactly one line holding 1*DIGIT, at most RH_HTTP_MAX_LENGTH. RFC 9110 8.6 lets a
 * recipient accept a list of equal values or repeated lines; a proxy that does forwards a message
 * that another parser may read differently, so both are refused. Returns 0 or 400. */
static int field_content_length(struct rh_span v, struct fields *f)
{
	uint64_t n = 0;

	if (f->has_cl || v.len == 0)
		return 400;
	for (size_t i = 0; i < v.len; i++) {
		if (!is_digit(v.p[i]))
			return 400;
		n = n * 10 + (unsigned)(v.p[i] - '0');
		if (n > RH_HTTP_MAX_LENGTH)
			return 400;
	}
	f->has_cl = true;
	f->content_length = n;
	return 0;
}

/* Transfer-Encoding: the codings in order, across all lines, each a token (parameters are refused
 * with the coding: only chunked is implemented and it has none). An empty element (",chunked",
 * "chunked,", an empty line) is refused: parsers disagree on what it means. Whether the list is
 * acceptable is decided when the head is complete. Returns 0 or 400. */
static int field_transfer_encoding(struct rh_span v, struct fields *f)
{
	struct rh_span e;
	size_t pos = 0;

	f->has_te = true;
	while (rh_http_list_next(v, &pos, &e)) {
		if (e.len == 0 || !is_token(e))
			return 400;
		if (NOCASE_IS(e, "chunked")) {
			f->te_chunked++;
			f->te_last_chunked = true;
		} else {
			f->te_other = true;
			f->te_last_chunked = false;
		}
	}
	return 0;
}

/* Connection: "close", "keep-alive", or the names of more hop-by-hop headers. A request that makes
 * a framing or routing header hop-by-hop is refused rather than forwarded without it. Returns 0 or
 * 400. */
static int field_connection(struct rh_span v, struct fields *f)
{
	struct rh_span e;
	size_t pos = 0;

	/* the usual value, one option, needs no splitting (<v> is trimmed) */
	if (NOCASE_IS(v, "keep-alive")) {
		f->conn_keep_alive = true;
		return 0;
	}
	if (NOCASE_IS(v, "close")) {
		f->conn_close = true;
		return 0;
	}
	while (rh_http_list_next(v, &pos, &e)) {
		if (e.len == 0)
			continue;
		if (!is_token(e))
			return 400;
		if (NOCASE_IS(e, "close"))
			f->conn_close = true;
		else if (NOCASE_IS(e, "keep-alive"))
			f->conn_keep_alive = true;
		else if (NOCASE_IS(e, "content-length") || NOCASE_IS(e, "transfer-encoding") || NOCASE_IS(e, "host"))
			return 400;
		else if (++f->conn_other > RH_HTTP_MAX_CONNECTION_OPTIONS)
			return 400; /* marking them costs options x headers: keep that small */
	}
	return 0;
}

/* What the proxy does with a field named <n> (case-insensitive), from its name alone. Inlined into
 * the parse of every field line (the compilers leave it out of line otherwise). <n> holds no CTL, as
 * NOCASE_IS needs: a field name, or one with each '_' turned into '-'. */
static inline __attribute__((always_inline)) enum rh_hdr_kind name_kind(struct rh_span n)
{
	switch (n.len) {
	case 2:
		return NOCASE_IS(n, "te") ? RH_HDR_HOP : RH_HDR_OTHER;
	case 4:
		return NOCASE_IS(n, "host") ? RH_HDR_HOST : RH_HDR_OTHER;
	case 6:
		return NOCASE_IS(n, "expect") ? RH_HDR_EXPECT : RH_HDR_OTHER;
	case 7:
		return NOCASE_IS(n, "trailer") || NOCASE_IS(n, "upgrade") ? RH_HDR_HOP : RH_HDR_OTHER;
	case 9:
		return NOCASE_IS(n, "forwarded") || NOCASE_IS(n, "x-real-ip") ? RH_HDR_UNTRUSTED : RH_HDR_OTHER;
	case 10:
		if (NOCASE_IS(n, "connection"))
			return RH_HDR_CONNECTION;
		return NOCASE_IS(n, "keep-alive") ? RH_HDR_HOP : RH_HDR_OTHER;
	case 14:
		return NOCASE_IS(n, "content-length") ? RH_HDR_CONTENT_LENGTH : RH_HDR_OTHER;
	case 15:
		return NOCASE_IS(n, "x-forwarded-for") ? RH_HDR_X_FORWARDED_FOR : RH_HDR_OTHER;
	case 16:
		if (NOCASE_IS(n, "proxy-connection"))
			return RH_HDR_HOP;
		return NOCASE_IS(n, "x-forwarded-host") ? RH_HDR_UNTRUSTED : RH_HDR_OTHER;
	case 17:
		if (NOCASE_IS(n, "transfer-encoding"))
			return RH_HDR_TRANSFER_ENCODING;
		return NOCASE_IS(n, "x-forwarded-proto") ? RH_HDR_UNTRUSTED : RH_HDR_OTHER;
	default:
		return RH_HDR_OTHER;
	}
}

/* The lengths name_kind has cases for (bit n for length n): only a name of one of them can be known. */
#define NAME_KIND_LENGTHS \
	((1u << 2) | (1u << 4) | (1u << 6) | (1u << 7) | (1u << 9) | (1u << 10) | (1u << 14) | (1u << 15) | \
	 (1u << 16) | (1u << 17))

/* A name holding '_' that reads as one of the names above once each '_' is taken for '-'
 * ("X-Forwarded_Proto", "Transfer_Encoding") is an untrusted claim: CGI-style backends (PHP, WSGI,
 * Rack) map both spellings to one variable, so it would override what the proxy sends or removes. */
static enum rh_hdr_kind underscore_kind(struct rh_span n)
{
	char folded[24];

	/* the length first: most names are of no length name_kind knows, and then there is no search */
	if (n.len >= 32 || !(NAME_KIND_LENGTHS >> n.len & 1) || !memchr(n.p, '_', n.len))
		return RH_HDR_OTHER;
	for (size_t i = 0; i < n.len; i++)
		folded[i] = n.p[i] == '_' ? '-' : n.p[i];
	return name_kind((struct rh_span){ folded, n.len }) == RH_HDR_OTHER ? RH_HDR_OTHER : RH_HDR_UNTRUSTED;
}

/* Sets <h>->kind from its name and records what it means in <f>. <idx>: its index in the header
 * array. <plain>: the name is only letters, digits and '-' (skip_name), so it has no '_'. <end>:
 * the end of the buffer. Returns 0 or an error status. */
static int field_semantics(struct rh_http_header *h, int idx, bool plain, const char *end, struct fields *f)
{
	h->kind = name_kind(h->name);
	switch (h->kind) {
	case RH_HDR_HOST:
		if (f->is_request) {
			if (f->host_index >= 0 || !valid_authority(h->value, end))
				return 400;
			f->host_index = idx;
		}
		return 0;
	case RH_HDR_EXPECT:
		if (NOCASE_IS(h->value, "100-continue"))
			f->expect_continue = true;
		return 0;
	case RH_HDR_CONNECTION:
		return field_connection(h->value, f);
	case RH_HDR_CONTENT_LENGTH:
		return field_content_length(h->value, f);
	case RH_HDR_TRANSFER_ENCODING:
		return field_transfer_encoding(h->value, f);
	case RH_HDR_OTHER:
		if (!plain)
			h->kind = underscore_kind(h->name);
		return 0;
	default:
		return 0;
	}
}

/* Marks every header named by a Connection option as hop-by-hop. Only runs when some Connection line
 * has an option other than close/keep-alive; at most RH_HTTP_MAX_CONNECTION_OPTIONS of them, so
 * the work is bounded by that many passes over the headers. */
static void mark_connection_options(struct rh_http_header *hdrs, size_t num)
{
	for (size_t i = 0; i < num; i++) {
		struct rh_span e;
		size_t pos = 0;

		if (hdrs[i].kind != RH_HDR_CONNECTION)
			continue;
		while (rh_http_list_next(hdrs[i].value, &pos, &e)) {
			if (e.len == 0 || eq_lower(e, "close") || eq_lower(e, "keep-alive"))
				continue;
			for (size_t j = 0; j < num; j++) {
				if (hdrs[j].kind != RH_HDR_HOP && hdrs[j].kind != RH_HDR_CONNECTION &&
				    span_eq_nocase(hdrs[j].name, e))
					hdrs[j].kind = RH_HDR_HOP;
			}
		}
	}
}

/* Parses field lines from <*pp> through the empty line that ends the head, into <hdrs> (room for
 * <max_headers>), and advances <*pp> past that line. Returns 0, RH_HTTP_PARTIAL when <end> comes
 * first, or an error status (400; 431 for too many lines). */
static int parse_fields(const char **pp, const char *end, struct rh_http_header *hdrs, size_t max_headers,
			size_t *num_headers, struct fields *f)
{
	const char *p = *pp;
	size_t n = 0;

	for (;;) {
		const char *line, *v, *ve;
		bool plain;
		int t, st;

		if (p == end)
			return RH_HTTP_PARTIAL;
		/* the compare first: one branch for the usual line, which starts with a letter */
		if (__builtin_expect((unsigned char)*p <= '\r', 0) && (*p == '\r' || *p == '\n')) {
			t = eol(p, end);
			if (t == 0)
				return RH_HTTP_PARTIAL;
			if (t < 0)
				return 400;
			p += t;
			break;
		}
		/* A line starting with SP or HTAB (obs-fold, or whitespace before the first field line,
		 * RFC 9112 2.2, 5.2) is 400: here, before the 431 for one line too many, and below
		 * because SP and HTAB are no tchar, so the name comes out empty. */
		if (n == max_headers)
			return *p == ' ' || *p == '\t' ? 400 : 431;

		line = p;
		p = skip_name(p, end);
		plain = true;
		if (p == end || *p != ':') {
			/* the rarer tchars, or an error: the tchar loop goes on where skip_name stopped */
			const char *q = p;

			while (p < end && is_class(*p, C_TCHAR))
				p++;
			plain = p == q;
			if (p == end)
				return RH_HTTP_PARTIAL;
			if (*p != ':') /* includes whitespace before the colon (RFC 9112 5.1) */
				return 400;
		}
		if (p == line)
			return 400;
		hdrs[n].name = span(line, p);
		/* one scan from the colon to the line end: the OWS around the value are field bytes too */
		v = ++p;
		p = skip_field(p, end);
		if (end - p >= 2 && load16(p) == load16("\r\n")) { /* the usual line end, at once */
			t = 2;
		} else if ((st = line_end(p, end, &t)) != 0) {
			return st;
		}
		/* trim: the only value bytes <= ' ' are SP and HTAB */
		ve = p;
		while (v < ve && (unsigned char)*v <= ' ')
			v++;
		while (ve > v && (unsigned char)ve[-1] <= ' ')
			ve--;
		p += t;
		hdrs[n].value = span(v, ve);
		st = field_semantics(&hdrs[n], (int)n, plain, end, f);
		if (st != 0)
			return st;
		n++;
	}
	if (f->conn_other)
		mark_connection_options(hdrs, n);
	*num_headers = n;
	*pp = p;
	return 0;
}

/* Parses HTTP-version = "HTTP/" DIGIT "." DIGIT at <*pp>: stores the digits and advances past it.
 * Returns 0 for any well-formed version (the caller decides which it supports), RH_HTTP_PARTIAL or
 * 400. Inline: it is on the path of every head. */
static inline int parse_version(const char **pp, const char *end, int *major, int *minor)
{
	static const char name[] = "HTTP/";
	const char *p = *pp;

	/* all 8 bytes there: compared at once (with fewer, the loop tells PARTIAL from 400) */
	if (end - p >= 8) {
		if (!words_eq(p, name, 5, 0) || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7]))
			return 400;
		p += 8;
	}
	for (int i = (int)(p - *pp); i < 8; i++, p++) {
		bool ok;

		if (p == end)
			return RH_HTTP_PARTIAL;
		if (i < 5)
			ok = *p == name[i];
		else if (i == 6)
			ok = *p == '.';
		else
			ok = is_digit(*p);
		if (!ok)
			return 400;
	}
	*major = (*pp)[5] - '0';
	*minor = (*pp)[7] - '0';
	*pp = p;
	return 0;
}

/* The request target's form (RFC 9112 3.2): origin form "/...", absolute form with an http or https
 * scheme (case-insensitive) and an authority checked like Host, or "*" for OPTIONS. Anything else,
 * authority form included (CONNECT only, refused before this), is 400. Sets target_form, path and
 * authority. */
static int parse_target(struct rh_http_request *req, const char *end)
{
	struct rh_span t = req->target;
	size_t i = 0, a;

	req->authority = (struct rh_span){ t.p, 0 };
	req->path = t;
	if (t.p[0] == '/') {
		req->target_form = RH_TARGET_ORIGIN;
		return 0;
	}
	if (t.len == 1 && t.p[0] == '*') {
		req->target_form = RH_TARGET_ASTERISK;
		return SPAN_IS(req->method, "OPTIONS") ? 0 : 400;
	}
	if (t.len > 7 && eq_lower((struct rh_span){ t.p, 7 }, "http://"))
		i = 7;
	else if (t.len > 8 && eq_lower((struct rh_span){ t.p, 8 }, "https://"))
		i = 8;
	else
		return 400;
	for (a = i; a < t.len && t.p[a] != '/' && t.p[a] != '?'; a++)
		;
	req->authority = span(t.p + i, t.p + a);
	req->path = span(t.p + a, t.p + t.len);
	req->target_form = RH_TARGET_ABSOLUTE;
	return valid_authority(req->authority, end) ? 0 : 400; /* '@' (userinfo) is not a reg-name char */
}

/* request-line = method SP request-target SP HTTP-version CRLF, after at most MAX_LEADING_EMPTY empty
 * lines. Returns 0 with <*pp> past the line, RH_HTTP_PARTIAL, or 400/414/505. */
static int parse_request_line(const char **pp, const char *end, size_t max_uri, struct rh_http_request *req)
{
	const char *p = *pp, *line, *target, *tend;
	int empty = 0, major, minor, t, st;

	for (;;) {
		if (p == end)
			return RH_HTTP_PARTIAL;
		if (*p != '\r' && *p != '\n')
			break;
		t = eol(p, end);
		if (t == 0)
			return RH_HTTP_PARTIAL;
		if (t < 0 || ++empty > MAX_LEADING_EMPTY)
			return 400;
		p += t;
	}

	line = p;
	p = skip_token(p, end);
	if (p == end)
		return RH_HTTP_PARTIAL;
	if (p == line || *p != ' ')
		return 400;
	req->method = span(line, p);
	p++;

	/* the target stops at <tend> so an over-long one is 414 as soon as its max_uri+1th byte shows */
	target = p;
	tend = (size_t)(end - target) > max_uri ? target + max_uri : end;
	p = skip_vchar(p, tend);
	if (p == end)
		return RH_HTTP_PARTIAL;
	if (p == tend && is_class(*p, C_VCHAR))
		return 414;
	if (p == target || *p != ' ')
		return 400;
	req->target = span(target, p);
	p++;

	st = parse_version(&p, end, &major, &minor);
	if (st != 0)
		return st;
	if ((st = line_end(p, end, &t)) != 0)
		return st;
	if (major != 1 || minor > 1)
		return 505;
	p += t;
	req->minor_version = minor;
	req->is_head = SPAN_IS(req->method, "HEAD");
	/* a tunnel is not proxied: forwarded, its 2xx would turn the connection into raw bytes */
	if (SPAN_IS(req->method, "CONNECT"))
		return 501;
	req->is_idempotent = req->is_head || SPAN_IS(req->method, "GET") || SPAN_IS(req->method, "OPTIONS") ||
			     SPAN_IS(req->method, "TRACE") || SPAN_IS(req->method, "PUT") ||
			     SPAN_IS(req->method, "DELETE");
	st = parse_target(req, end);
	if (st != 0)
		return st;
	*pp = p;
	return 0;
}

/* Request framing and connection semantics once the whole head is in (RFC 9112 6.1, 6.3, 9.3).
 * Transfer-Encoding whose codings do not end in a single chunked is 400 (the length cannot be
 * determined, 6.3); chunked last with other codings before it is 501 (codings we do not implement). */
static int finish_request(struct rh_http_request *req, const struct fields *f, uint64_t max_body)
{
	if (req->minor_version == 1 && f->host_index < 0)
		return 400;
	req->host_index = f->host_index;
	req->has_content_length = f->has_cl;
	req->content_length = f->has_cl ? f->content_length : 0;
	if (f->has_te) {
		if (f->has_cl || req->minor_version == 0)
			return 400;
		if (!f->te_last_chunked || f->te_chunked > 1)
			return 400;
		if (f->te_other)
			return 501;
		req->body = RH_BODY_CHUNKED;
	} else {
		if (max_body && req->content_length > max_body)
			return 413;
		req->body = req->content_length > 0 ? RH_BODY_LENGTH : RH_BODY_NONE;
	}
	if (req->minor_version == 1)
		req->keep_alive = !f->conn_close;
	else
		req->keep_alive = f->conn_keep_alive && !f->conn_close;
	/* a 100-continue expectation in HTTP/1.0 is ignored (RFC 9110 10.1.1) */
	req->expect_continue = f->expect_continue && req->minor_version == 1;
	return 0;
}

static size_t clamp_head(const struct rh_http_limits *lim)
{
	size_t max = lim ? lim->max_head : SIZE_MAX;

	return max > INT_MAX ? INT_MAX : max;
}

static size_t clamp_headers(const struct rh_http_limits *lim)
{
	size_t max = lim ? lim->max_headers : RH_HTTP_MAX_HEADERS;

	return max > RH_HTTP_MAX_HEADERS ? RH_HTTP_MAX_HEADERS : max;
}

/* <lim> NULL means no limits besides RH_HTTP_MAX_HEADERS (heads are still capped at INT_MAX bytes).
 * The fields of <req> are meaningful only when the result is > 0, error_status only when it is -1. */
int rh_http_parse_request(const char *buf, size_t len, const struct rh_http_limits *lim,
			  struct rh_http_request *req)
{
	size_t max_head = clamp_head(lim);
	size_t max_uri = lim ? lim->max_uri : SIZE_MAX;
	const char *p = buf, *end = buf + (len < max_head ? len : max_head);
	struct fields f = { .is_request = true, .host_index = -1 };
	int st;

	req->method = req->target = (struct rh_span){0}; /* what a refused request shows in the log */
	req->num_headers = 0;
	req->host_index = -1;
	req->error_status = 0;
	req->keep_alive = false;
	req->expect_continue = false;
	req->is_idempotent = false;
	req->body = RH_BODY_NONE;
	req->has_content_length = false;
	req->content_length = 0;

	st = parse_request_line(&p, end, max_uri, req);
	if (st == 0)
		st = parse_fields(&p, end, req->headers, clamp_headers(lim), &req->num_headers, &f);
	if (st == 0)
		st = finish_request(req, &f, lim ? lim->max_body : 0);
	if (st == 0)
		return (int)(p - buf);
	if (st == RH_HTTP_PARTIAL) {
		if (len < max_head)
			return RH_HTTP_PARTIAL;
		st = 431;
	}
	req->error_status = st;
	return RH_HTTP_INVALID;
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF; "HTTP/1.1 200" CRLF without the
 * second SP is accepted too. Returns 0, RH_HTTP_PARTIAL or -1. */
static int parse_status_line(const char **pp, const char *end, struct rh_http_response *resp)
{
	const char *p = *pp, *reason;
	int major, minor, status = 0, t, st;

	st = parse_version(&p, end, &major, &minor);
	if (st == RH_HTTP_PARTIAL)
		return st;
	if (st != 0 || major != 1 || minor > 1)
		return -1;
	if (p == end)
		return RH_HTTP_PARTIAL;
	if (*p++ != ' ')
		return -1;
	for (int i = 0; i < 3; i++, p++) {
		if (p == end)
			return RH_HTTP_PARTIAL;
		if (!is_digit(*p) || (i == 0 && *p == '0'))
			return -1;
		status = status * 10 + (*p - '0');
	}
	if (p == end)
		return RH_HTTP_PARTIAL;
	reason = p;
	if (*p == ' ') {
		reason = ++p;
		p = skip_field(p, end);
		if (p == end)
			return RH_HTTP_PARTIAL;
	}
	resp->reason = span(reason, p);
	if (*p != '\r' && *p != '\n')
		return -1;
	t = eol(p, end);
	if (t == 0)
		return RH_HTTP_PARTIAL;
	if (t < 0)
		return -1;
	p += t;
	resp->minor_version = minor;
	resp->status = status;
	*pp = p;
	return 0;
}

/* Response framing (RFC 9112 6.3): anything a proxy could read two ways is -1. */
static int finish_response(struct rh_http_response *resp, const struct fields *f, bool request_is_head)
{
	int s = resp->status;

	resp->content_length = f->has_cl ? f->content_length : 0;
	if (f->has_te) {
		if (f->has_cl || resp->minor_version == 0 || !f->te_last_chunked || f->te_chunked > 1)
			return -1;
		resp->framing = RH_BODY_CHUNKED;
	} else {
		resp->framing = f->has_cl ? RH_BODY_LENGTH : RH_BODY_UNTIL_CLOSE;
	}
	resp->body = resp->framing;
	if (request_is_head || s < 200 || s == 204 || s == 304)
		resp->body = RH_BODY_NONE;
	if (resp->minor_version == 1)
		resp->keep_alive = !f->conn_close;
	else
		resp->keep_alive = f->conn_keep_alive && !f->conn_close;
	if (resp->body == RH_BODY_UNTIL_CLOSE)
		resp->keep_alive = false;
	return 0;
}

/* Same conventions as rh_http_parse_request; every error is RH_HTTP_INVALID and <lim>->max_uri is
 * unused. No empty lines are skipped before the status line: from a server they mean lost framing. */
int rh_http_parse_response(const char *buf, size_t len, const struct rh_http_limits *lim,
			   bool request_is_head, struct rh_http_response *resp)
{
	size_t max_head = clamp_head(lim);
	const char *p = buf, *end = buf + (len < max_head ? len : max_head);
	struct fields f = { .is_request = false, .host_index = -1 };
	int st;

	resp->num_headers = 0;
	resp->keep_alive = false;
	resp->body = RH_BODY_NONE;
	resp->framing = RH_BODY_UNTIL_CLOSE;
	resp->content_length = 0;

	st = parse_status_line(&p, end, resp);
	if (st == 0)
		st = parse_fields(&p, end, resp->headers, clamp_headers(lim), &resp->num_headers, &f);
	if (st == 0)
		st = finish_response(resp, &f, request_is_head);
	if (st == 0)
		return (int)(p - buf);
	if (st == RH_HTTP_PARTIAL && len < max_head)
		return RH_HTTP_PARTIAL;
	return RH_HTTP_INVALID;
}

/* Chunked decoder states (RFC 9112 7.1). */
enum {
	CK_SIZE = 0,    /* chunk-size hex digits */
	CK_SIZE_WS,     /* BWS after the size: only more of it, ';' or the line end */
	CK_EXT,         /* chunk extensions, skipped to the line end */
	CK_SIZE_LF,     /* CR seen at the end of the size line */
	CK_DATA,        /* <remaining> data bytes */
	CK_DATA_CR,     /* the CRLF after the data */
	CK_DATA_LF,
	CK_TRAILER_BOL, /* start of a trailer line or of the final empty line */
	CK_TRAILER_NAME, /* inside a trailer field name, up to its colon */
	CK_TRAILER,     /* inside a trailer field value */
	CK_TRAILER_LF,
	CK_FINAL_LF,    /* CR of the final empty line seen */
	CK_DONE,
	CK_ERROR,
};

void rh_chunked_init(struct rh_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CK_SIZE;
}

bool rh_chunked_done(const struct rh_chunked *c)
{
	return c->state == CK_DONE;
}

/* The size line is complete: start the data, or the trailers after the last chunk. */
static void size_line_done(struct rh_chunked *c)
{
	c->state = c->remaining ? CK_DATA : CK_TRAILER_BOL;
	c->digits = 0;
	c->line_len = 0;
}

/* A bare LF ends a line as in heads; a CR must be followed by LF. Once an error has been returned
 * every later call returns -1 too; after the end of the message calls consume nothing. */
ssize_t rh_chunked_feed(struct rh_chunked *c, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	if (c->state == CK_ERROR)
		return -1;
	while (p < end) {
		unsigned char ch;
		int h;

		if (c->state == CK_DATA) {
			size_t n = (size_t)(end - p);

			if (n > c->remaining)
				n = (size_t)c->remaining;
			p += n;
			c->remaining -= n;
			c->total += n;
			if (c->remaining == 0)
				c->state = CK_DATA_CR;
			continue;
		}
		if (c->state == CK_DONE)
			break;

		ch = (unsigned char)*p++;
		switch (c->state) {
		case CK_SIZE:
		case CK_SIZE_WS:
		case CK_EXT:
			if (ch == '\r') {
				if (c->digits == 0)
					goto fail;
				c->state = CK_SIZE_LF;
				break;
			}
			if (++c->line_len > CHUNK_LINE_MAX)
				goto fail;
			if (c->state == CK_EXT) {
				if (!is_class((char)ch, C_FIELD))
					goto fail;
			} else if (ch == ';') {
				if (c->digits == 0)
					goto fail;
				c->state = CK_EXT;
			} else if (ch == ' ' || ch == '\t') {
				if (c->digits == 0)
					goto fail;
				c->state = CK_SIZE_WS;
			} else if (c->state == CK_SIZE && (h = hex_value(ch)) >= 0) {
				/* leading zeros count: a backend that stops at 16 digits
				 * would read "00000000000000005" as 0, the last chunk */
				if (c->digits == 16)
					goto fail;
				c->digits++;
				c->remaining = c->remaining << 4 | (uint64_t)h;
				if (c->remaining > RH_HTTP_MAX_LENGTH)
					goto fail;
			} else {
				goto fail;
			}
			break;
		case CK_SIZE_LF:
			if (ch != '\n')
				goto fail;
			size_line_done(c);
			break;
		case CK_DATA_CR:
			if (ch != '\r')
				goto fail;
			c->state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (ch != '\n')
				goto fail;
			c->state = CK_SIZE;
			break;
		case CK_TRAILER_BOL:
			if (ch == '\r') {
				c->state = CK_FINAL_LF;
				break;
			}
			/* a trailer field line, checked as in a head (token ":" value), since it passes
			 * through unchanged: no empty name, no space before the colon, no obs-fold */
			if (!is_class((char)ch, C_TCHAR))
				goto fail;
			c->state = CK_TRAILER_NAME;
			/* fall through */
		case CK_TRAILER_NAME:
		case CK_TRAILER:
			if (++c->trailer_len > TRAILERS_MAX)
				goto fail;
			if (c->state == CK_TRAILER && ch == '\r') {
				c->state = CK_TRAILER_LF;
				break;
			}
			if (++c->line_len > TRAILER_LINE_MAX)
				goto fail;
			if (c->state == CK_TRAILER_NAME) {
				if (ch == ':')
					c->state = CK_TRAILER;
				else if (!is_class((char)ch, C_TCHAR))
					goto fail;
			} else if (!is_class((char)ch, C_FIELD)) {
				goto fail;
			}
			break;
		case CK_TRAILER_LF:
			if (ch != '\n' || ++c->trailer_len > TRAILERS_MAX)
				goto fail;
			c->state = CK_TRAILER_BOL;
			c->line_len = 0;
			break;
		case CK_FINAL_LF:
			if (ch != '\n')
				goto fail;
			c->state = CK_DONE;
			break;
		default:
			goto fail;
		}
	}
	return p - buf;

fail:
	c->state = CK_ERROR;
	return -1;
}
