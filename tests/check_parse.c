/* Unit tests for the pure value parsers (src/parse.c). */
#include "roundhouse/parse.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Duration that must parse to <want> ms. */
static void dur_ok(const char *s, uint32_t want)
{
	const char *why = NULL;
	uint32_t ms = 12345;

	ck_assert_msg(rh_parse_duration_ms(s, &ms, &why) == 0, "'%s' rejected: %s", s, why);
	ck_assert_msg(ms == want, "'%s' gave %u, want %u", s, ms, want);
}

static void dur_bad(const char *s)
{
	const char *why = NULL;
	uint32_t ms = 12345;

	ck_assert_msg(rh_parse_duration_ms(s, &ms, &why) == -1, "'%s' accepted as %u", s, ms);
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0] != '\0');
	ck_assert_uint_eq(ms, 12345);
}

START_TEST(duration_valid)
{
	dur_ok("250ms", 250);
	dur_ok("0ms", 0);
	dur_ok("0", 0);
	dur_ok("5s", 5000);
	dur_ok("2m", 120000);
	dur_ok("5", 5000);
	dur_ok("1h", 3600000);
	dur_ok("007s", 7000);
	dur_ok("4294967295ms", UINT32_MAX);
	dur_ok("4294967s", 4294967000u);
	dur_ok("71582m", 71582u * 60000u);
	dur_ok("1193h", 1193u * 3600000u);
}
END_TEST

START_TEST(duration_invalid)
{
	dur_bad("");
	dur_bad("-1");
	dur_bad("-5s");
	dur_bad("+5s");
	dur_bad("s");
	dur_bad("ms");
	dur_bad("abc");
	dur_bad("5x");
	dur_bad("5sec");
	dur_bad("5 s");
	dur_bad(" 5s");
	dur_bad("5s ");
	dur_bad("5S");
	dur_bad("1.5s");
	dur_bad("5ms5");
	dur_bad("4294967296ms");
	dur_bad("4294968s");
	dur_bad("71583m");
	dur_bad("1194h");
	dur_bad("4294967296");
	dur_bad("99999999999999999999999999ms");
	dur_bad(NULL);
}
END_TEST

static void uint_ok(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	const char *why = NULL;
	uint64_t v = 777;

	ck_assert_msg(rh_parse_uint(s, min, max, &v, &why) == 0, "'%s' rejected: %s", s, why);
	ck_assert_msg(v == want, "'%s' gave %llu", s, (unsigned long long)v);
}

static void uint_bad(const char *s, uint64_t min, uint64_t max)
{
	const char *why = NULL;
	uint64_t v = 777;

	ck_assert_msg(rh_parse_uint(s, min, max, &v, &why) == -1, "'%s' accepted", s);
	ck_assert_ptr_nonnull(why);
	ck_assert_uint_eq(v, 777);
}

START_TEST(uint_valid)
{
	uint_ok("0", 0, 10, 0);
	uint_ok("10", 0, 10, 10);
	uint_ok("1", 1, 1, 1);
	uint_ok("0042", 0, 100, 42);
	uint_ok("65536", 1, 10000000, 65536);
	uint_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
}
END_TEST

START_TEST(uint_invalid)
{
	uint_bad("", 0, 10);
	uint_bad("11", 0, 10);
	uint_bad("0", 1, 10);
	uint_bad("-1", 0, 10);
	uint_bad("+1", 0, 10);
	uint_bad(" 1", 0, 10);
	uint_bad("1 ", 0, 10);
	uint_bad("1a", 0, 10);
	uint_bad("0x10", 0, 100);
	uint_bad("1.0", 0, 10);
	uint_bad("18446744073709551616", 0, UINT64_MAX);
	uint_bad("99999999999999999999999", 0, UINT64_MAX);
	uint_bad(NULL, 0, 10);
}
END_TEST

START_TEST(bool_valid)
{
	static const char *const yes[] = {"true", "TRUE", "True", "yes", "YES", "on", "On", "1"};
	static const char *const no[] = {"false", "FALSE", "no", "No", "off", "OFF", "0"};
	const char *why;
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		ck_assert_msg(rh_parse_bool(yes[i], &b, &why) == 0 && b, "%s", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		ck_assert_msg(rh_parse_bool(no[i], &b, &why) == 0 && !b, "%s", no[i]);
	}
}
END_TEST

START_TEST(bool_invalid)
{
	static const char *const bad[] = {"", "2", "tru", "truee", "y", "n", "enable", " true", "true ", "00"};
	const char *why;
	bool b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ck_assert_msg(rh_parse_bool(bad[i], &b, &why) == -1, "'%s' accepted", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
	ck_assert_int_eq(rh_parse_bool(NULL, &b, &why), -1);
}
END_TEST

static void hp_ok(const char *s, const char *want_host, uint16_t want_port)
{
	char host[64];
	const char *why = NULL;
	uint16_t port = 0;

	ck_assert_msg(rh_parse_hostport(s, host, sizeof(host), &port, &why) == 0, "'%s' rejected: %s", s, why);
	ck_assert_str_eq(host, want_host);
	ck_assert_uint_eq(port, want_port);
}

static void hp_bad(const char *s)
{
	char host[64] = "untouched";
	const char *why = NULL;
	uint16_t port = 0;

	ck_assert_msg(rh_parse_hostport(s, host, sizeof(host), &port, &why) == -1, "'%s' accepted", s);
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0] != '\0');
}

START_TEST(hostport_valid)
{
	hp_ok("127.0.0.1:8081", "127.0.0.1", 8081);
	hp_ok("localhost:8082", "localhost", 8082);
	hp_ok("[::1]:6188", "::1", 6188);
	hp_ok("[::]:1", "::", 1);
	hp_ok("0.0.0.0:65535", "0.0.0.0", 65535);
	hp_ok("[fe80::1%eth0]:80", "fe80::1%eth0", 80);
	hp_ok("[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80);
	hp_ok("a.b-c.example:443", "a.b-c.example", 443);
}
END_TEST

START_TEST(hostport_invalid)
{
	hp_bad("");
	hp_bad("127.0.0.1");         /* missing port */
	hp_bad("127.0.0.1:");        /* missing port */
	hp_bad("localhost");         /* missing port */
	hp_bad(":8080");             /* empty host */
	hp_bad("[]:8080");           /* empty host */
	hp_bad("127.0.0.1:0");       /* port 0 */
	hp_bad("127.0.0.1:65536");   /* port too big */
	hp_bad("127.0.0.1:99999999999999999999");
	hp_bad("127.0.0.1:-1");
	hp_bad("127.0.0.1:+80");
	hp_bad("127.0.0.1:80x");
	hp_bad("127.0.0.1:http");
	hp_bad("::1:80");            /* v6 without brackets */
	hp_bad("::1");
	hp_bad("[::1:80");           /* unbalanced */
	hp_bad("::1]:80");           /* unbalanced */
	hp_bad("[::1]");             /* missing port */
	hp_bad("[::1]:");            /* missing port */
	hp_bad("[::1]80");           /* no colon after ] */
	hp_bad("[localhost]:80");    /* brackets around a name */
	hp_bad("[[::1]]:80");
	hp_bad("local host:80");
	hp_bad("localhost:80 weight=2");
	hp_bad(NULL);
}
END_TEST

START_TEST(hostport_host_buffer)
{
	char host[10];
	const char *why = NULL;
	uint16_t port = 0;

	/* "123456789" + NUL fits exactly; one more character does not */
	ck_assert_int_eq(rh_parse_hostport("123456789:1", host, sizeof(host), &port, &why), 0);
	ck_assert_str_eq(host, "123456789");
	ck_assert_int_eq(rh_parse_hostport("1234567890:1", host, sizeof(host), &port, &why), -1);
	ck_assert_int_eq(rh_parse_hostport("[::1]:1", host, 3, &port, &why), -1);
	ck_assert_int_eq(rh_parse_hostport("[::1]:1", host, 4, &port, &why), 0);
	ck_assert_str_eq(host, "::1");
}
END_TEST

START_TEST(size_valid)
{
	static const struct {
		const char *s;
		uint64_t want;
	} ok[] = {
		{"0", 0}, {"100", 100}, {"1k", 1024}, {"1K", 1024}, {"10m", 10485760}, {"2G", 2147483648ULL},
		{"9007199254740992", UINT64_C(1) << 53}, {"8388608g", UINT64_C(1) << 53},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 1;
		const char *why = NULL;

		ck_assert_msg(rh_parse_size(ok[i].s, &v, &why) == 0, "'%s' rejected: %s", ok[i].s, why);
		ck_assert_uint_eq(v, ok[i].want);
	}
}
END_TEST

START_TEST(size_invalid)
{
	static const char *const bad[] = {
		"", "-1", "+5", "k", "1.5m", "10mb", "10 m", "0x10", "9007199254740993", "8388609g",
		"18446744073709551617", "99999999999999999999999999999999k",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 7;
		const char *why = NULL;

		ck_assert_msg(rh_parse_size(bad[i], &v, &why) == -1, "'%s' accepted", bad[i]);
		ck_assert_ptr_nonnull(why);
		ck_assert_uint_eq(v, 7);
	}
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc;

	tc = tcase_create("duration");
	tcase_add_test(tc, duration_valid);
	tcase_add_test(tc, duration_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("uint");
	tcase_add_test(tc, uint_valid);
	tcase_add_test(tc, uint_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("size");
	tcase_add_test(tc, size_valid);
	tcase_add_test(tc, size_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("bool");
	tcase_add_test(tc, bool_valid);
	tcase_add_test(tc, bool_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostport");
	tcase_add_test(tc, hostport_valid);
	tcase_add_test(tc, hostport_invalid);
	tcase_add_test(tc, hostport_host_buffer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(parse_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
