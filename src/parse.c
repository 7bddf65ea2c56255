/* Pure value parsers for the config loader (see parse.h). No I/O, no allocation, any thread. */
#include "roundhouse/parse.h"

#include <string.h>
#include <strings.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads the leading run of decimal digits of <s> into <v>. Returns the number of digits, or -1 if
 * there are none or the value does not fit in 64 bits. */
static int read_digits(const char *s, uint64_t *v)
{
	uint64_t acc = 0;
	int n = 0;

	for (; is_digit(s[n]); n++) {
		unsigned d = (unsigned)(s[n] - '0');
		if (acc > (UINT64_MAX - d) / 10)
			return -1;
		acc = acc * 10 + d;
	}
	if (n == 0)
		return -1;
	*v = acc;
	return n;
}

int rh_parse_duration_ms(const char *s, uint32_t *ms, const char **why)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{"", 1000}, /* bare number: seconds */
		{"ms", 1},
		{"s", 1000},
		{"m", 60 * 1000},
		{"h", 60 * 60 * 1000},
	};
	uint64_t v;
	int n;

	if (s == NULL || *s == '\0') {
		*why = "empty duration";
		return -1;
	}
	if (*s == '-') {
		*why = "negative duration";
		return -1;
	}
	if (!is_digit(*s)) {
		*why = "not a number (expected e.g. 250ms, 5s, 2m)";
		return -1;
	}
	n = read_digits(s, &v);
	if (n < 0) {
		*why = "too large (max 4294967295ms)";
		return -1;
	}
	if (s[n] == '.' || s[n] == ',') {
		*why = "fractions are not supported (use ms)";
		return -1;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].suffix) != 0)
			continue;
		/* v * unit must stay within UINT32_MAX milliseconds */
		if (v > UINT32_MAX / units[i].ms) {
			*why = "too large (max 4294967295ms)";
			return -1;
		}
		*ms = (uint32_t)(v * units[i].ms);
		return 0;
	}
	*why = "unknown unit (use ms, s, m or h)";
	return -1;
}

int rh_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why)
{
	uint64_t v;
	int n;

	if (s == NULL || *s == '\0') {
		*why = "empty number";
		return -1;
	}
	if (*s == '-') {
		*why = "negative number";
		return -1;
	}
	if (!is_digit(*s)) {
		*why = "not a number";
		return -1;
	}
	n = read_digits(s, &v);
	if (n < 0) {
		*why = "out of range";
		return -1;
	}
	if (s[n] != '\0') {
		*why = "not a number (trailing characters)";
		return -1;
	}
	if (v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int rh_parse_bool(const char *s, bool *out, const char **why)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	if (s == NULL || *s == '\0') {
		*why = "empty boolean";
		return -1;
	}
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	*why = "not a boolean (use true/false, yes/no, on/off, 1/0)";
	return -1;
}

/* Port part of a host:port: 1-65535, digits only. */
static int parse_port(const char *s, uint16_t *port, const char **why)
{
	uint64_t v;

	if (*s == '\0') {
		*why = "missing port";
		return -1;
	}
	if (rh_parse_uint(s, 1, 65535, &v, why) < 0) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

int rh_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, const char **why)
{
	const char *h, *colon;
	size_t len;

	if (s == NULL || *s == '\0') {
		*why = "empty address (expected host:port)";
		return -1;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			*why = "space or control character in address";
			return -1;
		}
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL) {
			*why = "unbalanced '[' (expected [v6addr]:port)";
			return -1;
		}
		h = s + 1;
		len = (size_t)(close - h);
		if (len == 0) {
			*why = "empty host";
			return -1;
		}
		/* brackets only make sense around an IPv6 literal */
		if (memchr(h, ':', len) == NULL || memchr(h, '[', len) != NULL) {
			*why = "brackets must hold an IPv6 address";
			return -1;
		}
		if (close[1] != ':') {
			*why = close[1] == '\0' ? "missing port" : "expected ':' after ']'";
			return -1;
		}
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*why = "missing port (expected host:port)";
			return -1;
		}
		h = s;
		len = (size_t)(colon - h);
		if (len == 0) {
			*why = "empty host";
			return -1;
		}
		if (memchr(h, ':', len) != NULL) {
			*why = "IPv6 address needs brackets, e.g. [::1]:80";
			return -1;
		}
		if (memchr(s, '[', (size_t)(colon - s)) != NULL || memchr(s, ']', (size_t)(colon - s)) != NULL) {
			*why = "unbalanced brackets";
			return -1;
		}
	}
	if (parse_port(colon + 1, port, why) < 0)
		return -1;
	if (len + 1 > hostlen) {
		*why = "host too long";
		return -1;
	}
	memcpy(host, h, len);
	host[len] = '\0';
	return 0;
}

/* A byte count as nginx's client_max_body_size writes it: digits, then optionally one of k, m, g
 * (KiB, MiB, GiB; either case). At most RH_PARSE_SIZE_MAX; no wrap-around on the way. */
int rh_parse_size(const char *s, uint64_t *out, const char **why)
{
	uint64_t v = 0, unit = 1;
	const char *p = s;

	if (*p == '-') {
		*why = "negative size";
		return -1;
	}
	if (*p < '0' || *p > '9') {
		*why = "not a number (expected bytes, or a number with k, m or g, e.g. 10m)";
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > RH_PARSE_SIZE_MAX) {
			*why = "too large (at most 9007199254740992 bytes, 8388608g)";
			return -1;
		}
	}
	if (*p == '.' || *p == ',') {
		*why = "fractions are not supported (use a smaller unit)";
		return -1;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		unit = UINT64_C(1) << 10;
		p++;
		break;
	case 'm':
	case 'M':
		unit = UINT64_C(1) << 20;
		p++;
		break;
	case 'g':
	case 'G':
		unit = UINT64_C(1) << 30;
		p++;
		break;
	default:
		*why = "unknown unit (use k, m or g, or none for bytes)";
		return -1;
	}
	if (*p != '\0') {
		*why = "unknown unit (use k, m or g, or none for bytes)";
		return -1;
	}
	if (v > RH_PARSE_SIZE_MAX / unit) {
		*why = "too large (at most 9007199254740992 bytes, 8388608g)";
		return -1;
	}
	*out = v * unit;
	return 0;
}
