/* What the selection algorithms share: the ops lookup, the key hash, the per-thread generator and
 * the request's hash key. */
#include "roundhouse/lb.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

const struct rh_lb_ops *
rh_lb_ops_of(enum rh_lb_algorithm a)
{
	switch (a) {
	case RH_LB_WEIGHTED_ROUND_ROBIN: return &rh_lb_weighted_round_robin;
	case RH_LB_RANDOM:               return &rh_lb_random;
	case RH_LB_LEAST_CONN:           return &rh_lb_least_conn;
	case RH_LB_CONSISTENT_HASH:      return &rh_lb_consistent_hash;
	case RH_LB_ROUND_ROBIN:          break;
	}
	return &rh_lb_round_robin;
}

static inline uint64_t
fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

uint64_t
rh_lb_hash(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	h = fmix64(h ^ len);
	return h == RH_LB_NO_KEY ? 1 : h;
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna), seeded by splitmix64 from the clock and a per-process count of
 * threads that asked, so two workers never share a sequence. */
uint64_t
rh_lb_rand(void)
{
	static atomic_uint_fast64_t threads;
	static _Thread_local uint64_t s[4];
	static _Thread_local bool seeded;

	if (__builtin_expect(!seeded, 0)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			     (atomic_fetch_add(&threads, 1) * UINT64_C(0x9e3779b97f4a7c15));
		for (int i = 0; i < 4; i++)
			s[i] = splitmix64(&x);
		seeded = true;
	}
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static bool
name_eq(struct rh_span a, const char *b, size_t blen)
{
	if (a.len != blen)
		return false;
	for (size_t i = 0; i < blen; i++) {
		unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

/* Finds cookie <name> in one Cookie field value ("a=1; b=2", RFC 6265 5.4): true with its value
 * (possibly empty) in *<out>, false when it is not there. */
static bool
cookie_value(struct rh_span v, const char *name, size_t name_len, struct rh_span *out)
{
	size_t i = 0;

	while (i < v.len) {
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ';'))
			i++;
		size_t start = i;
		while (i < v.len && v.p[i] != ';')
			i++;
		const char *pair = v.p + start;
		size_t len = i - start;
		const char *eq = memchr(pair, '=', len);
		if (eq && (size_t)(eq - pair) == name_len && memcmp(pair, name, name_len) == 0) {
			struct rh_span val = {eq + 1, len - name_len - 1};
			while (val.len && (val.p[val.len - 1] == ' ' || val.p[val.len - 1] == '\t'))
				val.len--;
			*out = val;
			return true;
		}
	}
	return false;
}

/* The hash of <path> as it is forwarded: an absolute-form target's empty path or bare query gets
 * the '/' the serializer puts before it, so "GET http://h" and "GET /" are one key. */
static uint64_t
path_hash(const char *p, size_t len)
{
	char buf[256];

	if (len > 0 && p[0] == '/')
		return rh_lb_hash(p, len);
	if (len + 1 > sizeof(buf)) /* a long bare query: hash it as is (rare, and still stable) */
		return rh_lb_hash(p, len);
	buf[0] = '/';
	memcpy(buf + 1, p, len);
	return rh_lb_hash(buf, len + 1);
}

uint64_t
rh_lb_request_key(const struct rh_hash_key *hk, const struct rh_http_request *req,
		  struct rh_span client_ip)
{
	struct rh_span k = {NULL, 0};
	bool found = false;

	switch (hk->kind) {
	case RH_HASH_URI:
		return path_hash(req->path.p, req->path.len);
	case RH_HASH_PATH: {
		const char *q = memchr(req->path.p, '?', req->path.len);
		return path_hash(req->path.p, q ? (size_t)(q - req->path.p) : req->path.len);
	}
	case RH_HASH_CLIENT_IP:
		return rh_lb_hash(client_ip.p, client_ip.len);
	case RH_HASH_HEADER:
		/* the first line of that name decides, even when its value is empty */
		for (size_t i = 0; i < req->num_headers && !found; i++)
			if (name_eq(req->headers[i].name, hk->name, hk->name_len)) {
				k = req->headers[i].value;
				found = true;
			}
		break;
	case RH_HASH_COOKIE:
		for (size_t i = 0; i < req->num_headers && !found; i++)
			if (name_eq(req->headers[i].name, "cookie", 6))
				found = cookie_value(req->headers[i].value, hk->name, hk->name_len, &k);
		break;
	}
	/* a missing (or empty) header or cookie: no key, spread like round robin (as HAProxy does) */
	return k.len ? rh_lb_hash(k.p, k.len) : RH_LB_NO_KEY;
}
