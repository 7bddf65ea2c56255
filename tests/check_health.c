/* Unit tests for src/health.c with real sockets on 127.0.0.1: a listening socket is a live backend,
 * a port nothing listens on is a dead one, and a listener whose accept queue is full is a black hole
 * (SYNs are dropped, so the probe times out). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/health.h"
#include "roundhouse/log.h"

#define MAX_TEST_BACKENDS 4

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct sockaddr_in
loopback(uint16_t port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* A non-blocking listener on 127.0.0.1:<port> (0: ephemeral); *<port> gets the port bound. */
static int
listener(uint16_t *port, int backlog)
{
	struct sockaddr_in sin = loopback(*port);
	socklen_t len = sizeof(sin);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind %u: %s", *port,
		      strerror(errno));
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port on 127.0.0.1 that nothing listens on: bound once to learn it, then closed. */
static uint16_t
dead_port(void)
{
	uint16_t port = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = loopback(0);
	socklen_t len = sizeof(sin);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Accepts and closes whatever the probes left in the accept queue, so it never fills up. */
static void
drain(int lfd)
{
	int c;

	if (lfd < 0)
		return;
	while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(c);
}

struct fixture {
	struct rh_config cfg;
	struct rh_backend_conf bc[MAX_TEST_BACKENDS];
	struct rh_pool pool;
	struct rh_health *h;
	int lfd[MAX_TEST_BACKENDS]; /* listeners to drain, -1 for none */
	int saved_stderr;
	char logpath[64];
};

static void
fixture_init(struct fixture *f, const uint16_t *ports, size_t n, uint32_t freq, uint32_t timeout,
	     unsigned rise, unsigned fall)
{
	char err[RH_CONFIG_ERR_LEN] = "";

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < MAX_TEST_BACKENDS; i++)
		f->lfd[i] = -1;
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in sin = loopback(ports[i]);

		memcpy(&f->bc[i].addr.ss, &sin, sizeof(sin));
		f->bc[i].addr.len = sizeof(sin);
		snprintf(f->bc[i].addr.text, sizeof(f->bc[i].addr.text), "127.0.0.1:%u", ports[i]);
		snprintf(f->bc[i].spec, sizeof(f->bc[i].spec), "127.0.0.1:%u", ports[i]);
		f->bc[i].weight = 1;
	}
	f->cfg.backends = f->bc;
	f->cfg.n_backends = n;
	f->cfg.max_iterations = 256;
	f->cfg.health_type = RH_HEALTH_TCP;
	f->cfg.health_frequency_ms = freq;
	f->cfg.health_timeout_ms = timeout;
	f->cfg.rise = rise;
	f->cfg.fall = fall;
	f->saved_stderr = -1;
	ck_assert_int_eq(rh_pool_init(&f->pool, &f->cfg, err, sizeof(err)), 0);
	f->h = rh_health_create(&f->pool, &f->cfg, err, sizeof(err));
	ck_assert_msg(f->h != NULL, "rh_health_create: %s", err);

	/* This thread reads views, so it is a QSBR reader; it stays offline except while peeking. */
	rh_pool_reader_register();
	rh_pool_reader_offline();
}

static void
fixture_finish(struct fixture *f)
{
	rh_health_destroy(f->h);
	rh_pool_reader_unregister();
	rh_pool_finish(&f->pool);
	for (size_t i = 0; i < MAX_TEST_BACKENDS; i++)
		if (f->lfd[i] >= 0)
			close(f->lfd[i]);
}

/* Sends stderr (where rh_log writes) to a temporary file until log_end(). */
static void
log_begin(struct fixture *f)
{
	int fd;

	snprintf(f->logpath, sizeof(f->logpath), "/tmp/check_health.XXXXXX");
	fd = mkstemp(f->logpath);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	f->saved_stderr = dup(2);
	ck_assert_int_ge(f->saved_stderr, 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	close(fd);
}

/* Restores stderr and returns what was logged (malloc'd). */
static char *
log_end(struct fixture *f)
{
	FILE *fp;
	char *text;
	long size;

	fflush(stderr);
	dup2(f->saved_stderr, 2);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	fp = fopen(f->logpath, "r");
	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	text = calloc(1, (size_t)size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	unlink(f->logpath);
	fputs(text, stderr); /* still shown in the test output */
	return text;
}

static unsigned
count(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* The live view's health as a string of '0'/'1', and its generation. */
static uint64_t
peek(struct fixture *f, char *out)
{
	const struct rh_backend_view *v;
	uint64_t gen;

	rh_pool_reader_online();
	v = rh_pool_view(&f->pool);
	for (size_t i = 0; i < v->n; i++)
		out[i] = v->healthy[i] ? '1' : '0';
	out[v->n] = '\0';
	gen = v->generation;
	rh_pool_reader_offline();
	return gen;
}

/* Waits up to <ms> for the view to read <want>, draining the listeners meanwhile. Returns the time
 * it happened (now_ms), or 0 if it did not. */
static uint64_t
wait_for(struct fixture *f, const char *want, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	char got[MAX_TEST_BACKENDS + 1];

	for (;;) {
		for (size_t i = 0; i < MAX_TEST_BACKENDS; i++)
			drain(f->lfd[i]);
		peek(f, got);
		if (strcmp(got, want) == 0)
			return now_ms();
		if (now_ms() >= end)
			return 0;
		sleep_ms(5);
	}
}

/* Sleeps <ms> while draining the listeners. */
static void
idle(struct fixture *f, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		for (size_t i = 0; i < MAX_TEST_BACKENDS; i++)
			drain(f->lfd[i]);
		sleep_ms(5);
	}
}

static uint64_t
timed_stop(struct fixture *f)
{
	uint64_t t0 = now_ms();

	rh_health_stop(f->h);
	return now_ms() - t0;
}

START_TEST(test_up_down_and_back)
{
	struct fixture f;
	uint16_t ports[2] = {0, dead_port()};
	char line[128], state[8];
	char *log;
	int up_fd;

	up_fd = listener(&ports[0], 64);
	fixture_init(&f, ports, 2, 50, 200, 1, 1);
	f.lfd[0] = up_fd;
	rh_log_set_level(RH_LOG_INFO);
	log_begin(&f);

	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert_msg(wait_for(&f, "10", 1000) != 0, "dead backend not marked down within 1 s");
	ck_assert_uint_eq(rh_health_publications(f.h), 1);
	ck_assert_uint_eq(peek(&f, state), 2);

	/* ~6 more rounds with no change: nothing is published */
	idle(&f, 300);
	ck_assert_uint_eq(rh_health_publications(f.h), 1);
	ck_assert_uint_eq(peek(&f, state), 2);
	ck_assert_str_eq(state, "10");

	/* the dead port starts listening: back within a couple of rounds */
	f.lfd[1] = listener(&ports[1], 64);
	ck_assert_msg(wait_for(&f, "11", 1000) != 0, "revived backend not marked up within 1 s");
	ck_assert_uint_eq(rh_health_publications(f.h), 2);
	ck_assert_uint_eq(peek(&f, state), 3);
	idle(&f, 200);
	ck_assert_uint_eq(rh_health_publications(f.h), 2);

	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);

	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: Connection refused\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u up\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u ", ports[0]);
	ck_assert_uint_eq(count(log, line), 0); /* the live one never changed */
	ck_assert_uint_eq(count(log, "[health] warn: backend"), 1);
	ck_assert_uint_eq(count(log, "[health] info: backend"), 1);
	free(log);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_goes_down_when_listener_closes)
{
	struct fixture f;
	uint16_t ports[1] = {0};
	char state[4];
	int fd = listener(&ports[0], 64);

	fixture_init(&f, ports, 1, 50, 200, 1, 1);
	f.lfd[0] = fd;
	ck_assert_int_eq(rh_health_start(f.h), 0);
	idle(&f, 200);
	ck_assert_uint_eq(rh_health_publications(f.h), 0); /* healthy from view #1 on: no change */
	ck_assert_uint_eq(peek(&f, state), 1);

	close(f.lfd[0]);
	f.lfd[0] = -1;
	ck_assert(wait_for(&f, "0", 1000) != 0);
	ck_assert_uint_eq(rh_health_publications(f.h), 1);
	ck_assert_uint_lt(timed_stop(&f), 100);
	fixture_finish(&f);
}
END_TEST

/* rise = fall = 2, frequency 150 ms: going down takes two failed rounds, so a backend dead from the
 * start cannot be marked down before one full period has passed; coming up needs two successes,
 * so again at least one period after it starts listening. With fall = 1 it would be ~0 ms. */
START_TEST(test_rise_fall)
{
	struct fixture f;
	const unsigned freq = 150;
	uint16_t ports[2] = {0, dead_port()};
	uint64_t t0, t_down, t_listen, t_up, t_close, t_down2;
	int fd;

	fd = listener(&ports[0], 64);
	fixture_init(&f, ports, 2, freq, 100, 2, 2);
	f.lfd[0] = fd;

	t0 = now_ms();
	ck_assert_int_eq(rh_health_start(f.h), 0);
	t_down = wait_for(&f, "10", 2000);
	ck_assert(t_down != 0);
	ck_assert_uint_ge(t_down - t0, freq);
	ck_assert_uint_eq(rh_health_publications(f.h), 1);

	t_listen = now_ms();
	f.lfd[1] = listener(&ports[1], 64);
	t_up = wait_for(&f, "11", 2000);
	ck_assert(t_up != 0);
	ck_assert_uint_ge(t_up - t_listen, freq);
	ck_assert_uint_eq(rh_health_publications(f.h), 2);

	/* the first backend stays up through all of this; now it dies: down after two failures */
	t_close = now_ms();
	close(f.lfd[0]);
	f.lfd[0] = -1;
	t_down2 = wait_for(&f, "01", 2000);
	ck_assert(t_down2 != 0);
	ck_assert_uint_ge(t_down2 - t_close, freq);
	ck_assert_uint_eq(rh_health_publications(f.h), 3);

	ck_assert_uint_lt(timed_stop(&f), 100);
	fixture_finish(&f);
}
END_TEST

/* A listener with a full accept queue drops SYNs: the connect neither succeeds nor fails. */
static int
black_hole(uint16_t *port, int *filler)
{
	int lfd = listener(port, 0);
	struct sockaddr_in sin = loopback(*port);

	*filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*filler, 0);
	ck_assert_int_eq(connect(*filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return lfd;
}

START_TEST(test_timeout)
{
	struct fixture f;
	uint16_t ports[1] = {0};
	int filler, lfd;
	uint64_t t0, t_down;
	char *log;

	lfd = black_hole(&ports[0], &filler);
	fixture_init(&f, ports, 1, 1000, 200, 1, 1);
	rh_log_set_level(RH_LOG_INFO);
	log_begin(&f);

	t0 = now_ms();
	ck_assert_int_eq(rh_health_start(f.h), 0);
	t_down = wait_for(&f, "0", 1500);
	ck_assert(t_down != 0);
	ck_assert_uint_ge(t_down - t0, 200);
	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	ck_assert_uint_eq(count(log, "down: timeout after 200 ms\n"), 1);
	free(log);
	fixture_finish(&f);
	close(filler);
	close(lfd);
}
END_TEST

/* Stop while a probe is in flight (the black hole, with a 10 s timeout) returns at once. */
START_TEST(test_stop_mid_round)
{
	struct fixture f;
	uint16_t ports[2] = {0, 0};
	int filler, lfd, up_fd;
	char state[4];

	lfd = black_hole(&ports[0], &filler);
	up_fd = listener(&ports[1], 64);
	fixture_init(&f, ports, 2, 20000, 10000, 1, 1);
	f.lfd[1] = up_fd;
	ck_assert_int_eq(rh_health_start(f.h), 0);
	idle(&f, 100);
	ck_assert_uint_eq(peek(&f, state), 1);
	ck_assert_str_eq(state, "11"); /* the round is still waiting for the black hole */
	ck_assert_uint_lt(timed_stop(&f), 100);
	ck_assert_uint_eq(rh_health_publications(f.h), 0);
	fixture_finish(&f);
	close(filler);
	close(lfd);
}
END_TEST

START_TEST(test_type_none)
{
	struct fixture f;
	uint16_t ports[2] = {dead_port(), dead_port()};
	char state[4];

	fixture_init(&f, ports, 2, 20, 20, 1, 1);
	f.cfg.health_type = RH_HEALTH_NONE;
	ck_assert_int_eq(rh_health_start(f.h), 0);
	idle(&f, 150);
	ck_assert_uint_eq(peek(&f, state), 1);
	ck_assert_str_eq(state, "11");
	ck_assert_uint_eq(rh_health_publications(f.h), 0);
	ck_assert_uint_lt(timed_stop(&f), 100);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_lifecycle)
{
	struct fixture f;
	uint16_t ports[1] = {0};
	char state[4];
	int fd = listener(&ports[0], 64);

	rh_health_destroy(NULL);
	fixture_init(&f, ports, 1, 30, 100, 1, 1);
	f.lfd[0] = fd;
	rh_health_stop(f.h); /* never started */
	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert_int_eq(rh_health_start(f.h), 0); /* already running: no second thread */
	idle(&f, 100);
	ck_assert_uint_lt(timed_stop(&f), 100);
	rh_health_stop(f.h); /* twice */

	/* restartable: the stop signal was consumed */
	close(f.lfd[0]);
	f.lfd[0] = -1;
	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert(wait_for(&f, "0", 1000) != 0);
	ck_assert_uint_eq(peek(&f, state), 2);
	fixture_finish(&f); /* destroy stops it */
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("tcp");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_up_down_and_back);
	tcase_add_test(tc, test_goes_down_when_listener_closes);
	tcase_add_test(tc, test_rise_fall);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_stop_mid_round);
	tcase_add_test(tc, test_type_none);
	tcase_add_test(tc, test_lifecycle);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(health_suite());
	int failed;

	rh_log_set_thread_tag("test");
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
