/* Pure parsers for config values. No I/O, no allocation: Check tests call them directly.
 * Each returns 0 on success and -1 on error, leaving a short reason in <why> (a static string). */
#ifndef RH_PARSE_H
#define RH_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "250ms", "5s", "2m" (a bare number is seconds) -> milliseconds in [0, UINT32_MAX]. */
int rh_parse_duration_ms(const char *s, uint32_t *ms, const char **why);

/* Decimal integer in [min, max]; no sign, no trailing garbage. */
int rh_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why);

/* A byte count as nginx's client_max_body_size writes it: digits, then optionally k, m or g (KiB,
 * MiB, GiB; either case), at most RH_PARSE_SIZE_MAX (2^53: what a framing number may be). */
#define RH_PARSE_SIZE_MAX (UINT64_C(1) << 53)
int rh_parse_size(const char *s, uint64_t *out, const char **why);

/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
int rh_parse_bool(const char *s, bool *out, const char **why);

/* "host:port" or "[v6addr]:port"; port 1-65535. <host> gets the host without brackets,
 * NUL-terminated (fails if it does not fit in <hostlen>). */
int rh_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, const char **why);

#endif
