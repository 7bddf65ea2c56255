/* Unit tests for include/roundhouse/access_log.h: the line format, buffering, rotation, failures. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "roundhouse/access_log.h"

#define T0 1796053722 /* 2026-11-30T15:48:42Z */

/* A complete entry: GET /a?b=1 from 127.0.0.1:54321 through 127.0.0.1:8081. */
static struct rh_access_entry
full_entry(void)
{
	return (struct rh_access_entry){
		.time = {T0, 123456789},
		.client = "127.0.0.1", .client_len = 9, .client_port = 54321,
		.method = "GET", .method_len = 3,
		.target = "/a?b=1", .target_len = 6,
		.status = 200,
		.backend = "127.0.0.1:8081",
		.bytes_in = 78, .bytes_out = 230,
		.duration_us = 412, .connect_us = 101,
		.retries = 0,
		.end = NULL,
	};
}

static struct rh_access_buf buf;

static void
setup(void)
{
	memset(&buf, 0, sizeof(buf));
	ck_assert_int_eq(rh_access_buf_init(&buf, 4096), 0);
}

static void
teardown(void)
{
	rh_access_buf_free(&buf);
}

/* Formats <e> into a static string (NUL-terminated); "" when it does not fit. */
static const char *
fmt(const struct rh_access_entry *e)
{
	static char line[2048];
	size_t n = rh_access_log_format(e, &buf, line, sizeof(line) - 1);

	line[n] = '\0';
	return line;
}

START_TEST(test_full)
{
	struct rh_access_entry e = full_entry();

	ck_assert_str_eq(fmt(&e), "2026-11-30T15:48:42.123Z client=127.0.0.1:54321 method=GET "
				  "target=\"/a?b=1\" status=200 backend=127.0.0.1:8081 in=78 out=230 "
				  "duration=0.000412 connect=0.000101 retries=0 end=-\n");
	/* the same second from the cache, another one formatted again */
	e.time.tv_nsec = 7000000;
	ck_assert(strncmp(fmt(&e), "2026-11-30T15:48:42.007Z ", 25) == 0);
	e.time = (struct timespec){T0 + 86400 + 3600, 999999999};
	ck_assert(strncmp(fmt(&e), "2026-12-01T16:48:42.999Z ", 25) == 0);
}
END_TEST

START_TEST(test_ipv6_and_absent)
{
	struct rh_access_entry e = full_entry();

	e.client = "::1";
	e.client_len = 3;
	e.client_port = 80;
	e.method_len = 0;
	e.target_len = 0;
	e.status = 0;
	e.backend = NULL;
	e.bytes_in = 0;
	e.bytes_out = 0;
	e.duration_us = 5;
	e.connect_us = -1;
	e.retries = 2;
	e.end = "client_closed";
	ck_assert_str_eq(fmt(&e), "2026-11-30T15:48:42.123Z client=[::1]:80 method=- target=\"\" "
				  "status=- backend=- in=0 out=0 duration=0.000005 connect=- retries=2 "
				  "end=client_closed\n");
	e.end = "";
	ck_assert(strstr(fmt(&e), " end=-\n") != NULL);
}
END_TEST

START_TEST(test_escaping)
{
	static const char target[] = "/x\"y\\z a\r\nb\x7f\xff" "c";
	struct rh_access_entry e = full_entry();

	e.target = target;
	e.target_len = sizeof(target) - 1;
	e.method = "G T\n";
	e.method_len = 4;
	ck_assert(strstr(fmt(&e), " method=G\\x20T\\x0a target=\"/x\\x22y\\x5cz\\x20a\\x0d\\x0ab\\x7f"
				  "\\xffc\" status=200 ") != NULL);
	/* nothing the client sent can end the line early */
	ck_assert(strchr(fmt(&e), '\n') == fmt(&e) + strlen(fmt(&e)) - 1);

	e = full_entry();
	e.target_truncated = true;
	ck_assert(strstr(fmt(&e), " target=\"/a?b=1...\" status=200 ") != NULL);
}
END_TEST

START_TEST(test_durations)
{
	static const struct {
		uint64_t us;
		const char *text;
	} cases[] = {
		{0, " duration=0.000000 connect=0.000000 "},
		{999999, " duration=0.999999 connect=0.999999 "},
		{1000000, " duration=1.000000 connect=1.000000 "},
		{12345678, " duration=12.345678 connect=12.345678 "},
	};
	struct rh_access_entry e = full_entry();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e.duration_us = cases[i].us;
		e.connect_us = (int64_t)cases[i].us;
		ck_assert_msg(strstr(fmt(&e), cases[i].text) != NULL, "%s", fmt(&e));
	}
}
END_TEST

START_TEST(test_too_small)
{
	struct rh_access_entry e = full_entry();
	char out[256];
	size_t n = rh_access_log_format(&e, &buf, out, sizeof(out));

	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(rh_access_log_format(&e, &buf, out, n), n); /* exactly enough */
	ck_assert_uint_eq(rh_access_log_format(&e, &buf, out, n - 1), 0);
	ck_assert_uint_eq(rh_access_log_format(&e, &buf, out, 10), 0);
	ck_assert_uint_eq(rh_access_log_format(&e, &buf, out, 0), 0);
}
END_TEST

/* A fresh file in /tmp; its name in <path>. */
static void
temp_path(char *path, size_t len)
{
	int fd;

	snprintf(path, len, "/tmp/check_access_log.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	close(fd);
}

/* The whole file <path>, NUL-terminated; free() it. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Entry number <i>: a distinct target "/<i>" so the order can be checked. */
static struct rh_access_entry
numbered(unsigned i, char *target, size_t len)
{
	struct rh_access_entry e = full_entry();

	e.target_len = (size_t)snprintf(target, len, "/%u", i);
	e.target = target;
	return e;
}

/* Appends entries first..last-1 to <log> and the same lines to <expect>. */
static void
append_range(struct rh_access_log *log, unsigned first, unsigned last, char *expect, size_t len)
{
	char target[32];

	for (unsigned i = first; i < last; i++) {
		struct rh_access_entry e = numbered(i, target, sizeof(target));

		strncat(expect, fmt(&e), len - strlen(expect) - 1);
		rh_access_log_append(log, &buf, &e, 5000);
	}
}

START_TEST(test_append_flush)
{
	char path[64], err[256];
	struct rh_access_log *log;
	char *expect = calloc(1, 1 << 20), *got;

	temp_path(path, sizeof(path));
	log = rh_access_log_open(path, err, sizeof(err));
	ck_assert_msg(log != NULL, "%s", err);

	append_range(log, 0, 3, expect, 1 << 20);
	got = slurp(path);
	ck_assert_str_eq(got, ""); /* buffered, not written yet */
	free(got);
	rh_access_log_flush(log, &buf, 6000);
	got = slurp(path);
	ck_assert_str_eq(got, expect);
	free(got);
	ck_assert_uint_eq(atomic_load(&buf.lines), 3);

	/* ~150 bytes a line, 4 KiB buffer: many flushes on the way */
	append_range(log, 3, 2000, expect, 1 << 20);
	rh_access_log_flush(log, &buf, 7000);
	got = slurp(path);
	ck_assert_str_eq(got, expect);
	free(got);
	ck_assert_uint_eq(atomic_load(&buf.lines), 2000);
	ck_assert_uint_eq(atomic_load(&buf.dropped), 0);

	/* a line longer than the whole buffer is dropped, the next one is not */
	{
		static char huge[8192];
		struct rh_access_entry e = full_entry();

		memset(huge, 'a', sizeof(huge));
		e.target = huge;
		e.target_len = sizeof(huge);
		rh_access_log_append(log, &buf, &e, 8000);
		ck_assert_uint_eq(atomic_load(&buf.dropped), 1);
		append_range(log, 2000, 2001, expect, 1 << 20);
		rh_access_log_flush(log, &buf, 8000);
		got = slurp(path);
		ck_assert_str_eq(got, expect);
		free(got);
	}

	rh_access_log_close(log);
	unlink(path);
	free(expect);
}
END_TEST

START_TEST(test_reopen)
{
	char path[64], moved[80], err[256];
	char *before = calloc(1, 1 << 16), *after = calloc(1, 1 << 16), *got;
	struct rh_access_log *log;
	int fd, found = 0;

	temp_path(path, sizeof(path));
	snprintf(moved, sizeof(moved), "%s.1", path);
	log = rh_access_log_open(path, err, sizeof(err));
	ck_assert_msg(log != NULL, "%s", err);

	append_range(log, 0, 10, before, 1 << 16);
	rh_access_log_flush(log, &buf, 1000);
	append_range(log, 10, 20, before, 1 << 16); /* still buffered during the rename */
	ck_assert_int_eq(rename(path, moved), 0);
	rh_access_log_flush(log, &buf, 2000); /* a worker that has not seen the reopen yet */
	ck_assert_int_eq(rh_access_log_reopen(log, err, sizeof(err)), 0);
	append_range(log, 20, 30, after, 1 << 16);
	rh_access_log_flush(log, &buf, 3000);

	got = slurp(moved);
	ck_assert_str_eq(got, before);
	free(got);
	got = slurp(path);
	ck_assert_str_eq(got, after);
	free(got);
	ck_assert_uint_eq(atomic_load(&buf.lines), 30);

	/* the fd keeps close-on-exec after dup3 */
	fd = open(path, O_RDONLY);
	ck_assert_int_ne(fd, -1);
	close(fd);
	for (fd = 3; fd < 1024; fd++) {
		char link[64], target[128];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0) {
			ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
			found++;
		}
	}
	ck_assert_int_eq(found, 1);

	rh_access_log_close(log);
	unlink(path);
	unlink(moved);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_open_error)
{
	char err[256];

	ck_assert_ptr_null(rh_access_log_open("/nonexistent/dir/access.log", err, sizeof(err)));
	ck_assert_str_eq(err, "access log /nonexistent/dir/access.log: No such file or directory");
	rh_access_log_close(NULL);
}
END_TEST

/* /dev/full: every write fails with ENOSPC. */
START_TEST(test_write_failure)
{
	char err[256], expect[1 << 16] = "";
	struct rh_access_log *log = rh_access_log_open("/dev/full", err, sizeof(err));

	ck_assert_msg(log != NULL, "%s", err);
	append_range(log, 0, 100, expect, sizeof(expect)); /* overflows the buffer a few times */
	rh_access_log_flush(log, &buf, 9000);
	ck_assert_uint_eq(atomic_load(&buf.dropped), 100);
	ck_assert_uint_eq(atomic_load(&buf.lines), 0);
	ck_assert_uint_eq(buf.len, 0);
	rh_access_log_close(log);
}
END_TEST

START_TEST(test_due)
{
	char err[256], expect[4096] = "";
	struct rh_access_log *log = rh_access_log_open("/dev/null", err, sizeof(err));

	ck_assert_msg(log != NULL, "%s", err);
	rh_access_log_flush(log, &buf, 10000);
	ck_assert(!rh_access_log_due(&buf, 10000));
	ck_assert(!rh_access_log_due(&buf, 11000)); /* empty */
	append_range(log, 0, 1, expect, sizeof(expect));
	ck_assert(!rh_access_log_due(&buf, 10000));
	ck_assert(!rh_access_log_due(&buf, 10999));
	ck_assert(rh_access_log_due(&buf, 11000));
	rh_access_log_flush(log, &buf, 11000);
	ck_assert(!rh_access_log_due(&buf, 11000));
	ck_assert(!rh_access_log_due(&buf, 20000)); /* empty */
	rh_access_log_close(log);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("access_log");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_ipv6_and_absent);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_too_small);
	tcase_add_test(tc, test_append_flush);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_open_error);
	tcase_add_test(tc, test_write_failure);
	tcase_add_test(tc, test_due);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
