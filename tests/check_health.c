/* Unit tests for src/health.c with real sockets on 127.0.0.1: a listening socket is a live backend,
 * a port nothing listens on is a dead one, and a listener whose accept queue is full is a black hole
 * (SYNs are dropped, so the probe times out).
 *
 * TLS probes run against small BoringSSL servers in threads of this process, with a CA and leaf
 * certificates made here (any expiry date a test needs, nothing on disk but the CA's PEM). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "roundhouse/backend.h"
#include "roundhouse/config.h"
#include "roundhouse/health.h"
#include "roundhouse/log.h"
#include "roundhouse/probe.h"
#include "roundhouse/runtime.h"
#include "roundhouse/tls.h"

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
	struct rh_runtime rt;
	struct rh_health *h;
	struct rh_tls_upstream *tls; /* TLS probes only */
	int lfd[MAX_TEST_BACKENDS]; /* listeners to drain, -1 for none */
	int saved_stderr;
	char logpath[64];
};

/* The config; fixture_health then makes snapshot #1 and the checker. */
static void
fixture_config(struct fixture *f, const uint16_t *ports, size_t n, uint32_t freq, uint32_t timeout,
	       unsigned rise, unsigned fall)
{

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
}

static void
fixture_health(struct fixture *f, const struct rh_tls_upstream *tls)
{
	char err[RH_CONFIG_ERR_LEN] = "";

	/* snapshot #1 from the finished config (the backends take their TLS names from it) */
	ck_assert_int_eq(rh_runtime_init(&f->rt, 1), 0);
	struct rh_snapshot *s = rh_snapshot_from_config(&f->rt, &f->cfg, NULL, true, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	rh_runtime_publish(&f->rt, s);
	f->h = rh_health_create(&f->rt, &f->cfg, tls, err, sizeof(err));
	ck_assert_msg(f->h != NULL, "rh_health_create: %s", err);

	/* This thread reads views, so it is a QSBR reader; it stays offline except while peeking. */
	rh_rcu_reader_register();
	rh_rcu_reader_offline();
}

static void
fixture_init(struct fixture *f, const uint16_t *ports, size_t n, uint32_t freq, uint32_t timeout,
	     unsigned rise, unsigned fall)
{
	fixture_config(f, ports, n, freq, timeout, rise, fall);
	fixture_health(f, NULL);
}

static void
fixture_finish(struct fixture *f)
{
	rh_health_destroy(f->h);
	rh_tls_upstream_destroy(f->tls);
	rh_rcu_reader_unregister();
	rh_runtime_finish(&f->rt);
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

/* The live snapshot's health as a string of '0'/'1' (at most <size> - 1 of them), and its generation. */
static uint64_t
peek_n(struct fixture *f, char *out, size_t size)
{
	const struct rh_snapshot *v;
	uint64_t gen;
	size_t n;

	rh_rcu_reader_online();
	v = rh_runtime_snapshot(&f->rt);
	n = v->n < size - 1 ? v->n : size - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = v->healthy[i] ? '1' : '0';
	out[n] = '\0';
	gen = v->generation;
	rh_rcu_reader_offline();
	return gen;
}

#define peek(f, out) peek_n((f), (out), sizeof(out))

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

	/* "(1 of 1)": consecutive failed checks of fall */
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: Connection refused (1 of 1)\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u up\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u ", ports[0]);
	ck_assert_uint_eq(count(log, line), 0); /* the live one never changed */
	ck_assert_uint_eq(count(log, "[control] warn: backend"), 1);
	ck_assert_uint_eq(count(log, "[control] info: backend"), 1);
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

/* Waits up to <ms> for the next probe to reach listener <lfd> (accepts and closes it). Returns the
 * time it was seen (now_ms), or 0 if none came. */
static uint64_t
next_probe(int lfd, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	drain(lfd); /* only a probe that arrives from now on counts */
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		int c;

		if (now >= end)
			return 0;
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		if ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			close(c);
			return now_ms();
		}
	}
}

/* Whether the view reads <want> at every look during the next <ms>. */
static bool
stays(struct fixture *f, const char *want, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	char got[MAX_TEST_BACKENDS + 1];

	do {
		peek(f, got);
		if (strcmp(got, want) != 0)
			return false;
		sleep_ms(2);
	} while (now_ms() < end);
	return true;
}

/* The backend (listening on <port>, f->lfd[0]) fails exactly <n> rounds: the listener closes right
 * after a successful probe and listens again half a period after the <n>th failed round. It must
 * stay up throughout (fall = 3 > n). Returns the time of the successful probe that follows, with
 * the listener open again. */
static uint64_t
fail_rounds(struct fixture *f, uint16_t port, unsigned freq, unsigned n)
{
	uint64_t t_ok, t_back;
	unsigned missed;

	t_ok = next_probe(f->lfd[0], 3 * freq);
	ck_assert_msg(t_ok != 0, "no probe within 3 periods");
	close(f->lfd[0]);
	f->lfd[0] = -1;
	ck_assert_msg(stays(f, "1", n * freq + freq / 2),
		      "fall = 3: a recovered backend went down after %u failed probe(s)", n);
	f->lfd[0] = listener(&port, 64);
	t_back = next_probe(f->lfd[0], 3 * freq);
	ck_assert_msg(t_back != 0, "no probe within 3 periods of listening again");
	/* rounds start every freq, so the gap between the two successful probes tells how many
	 * failed in between; a late round (a loaded machine) would make this test meaningless */
	missed = (unsigned)((t_back - t_ok + freq / 2) / freq) - 1;
	ck_assert_msg(missed == n, "timing: %u rounds failed (%llu ms between successes), wanted %u",
		      missed, (unsigned long long)(t_back - t_ok), n);
	ck_assert_msg(stays(f, "1", 20), "fall = 3: down after %u failures and a success", n);
	return t_back;
}

/* rise = 2, fall = 3: a recovered backend must again fail 3 times in a row before it is down — its
 * counter goes back to the top on recovery, and each success forgets the failure streak — not once
 * (a counter left at rise) or twice (a failure streak remembered across one success). */
START_TEST(test_fall_after_recovery)
{
	struct fixture f;
	const unsigned freq = 250;
	uint16_t ports[1] = {dead_port()};
	uint64_t t0, t_down, t_listen, t_up, t_ok, t_down2;
	char *log;
	char line[128];

	fixture_init(&f, ports, 1, freq, 100, 2, 3);
	rh_log_set_level(RH_LOG_INFO);
	log_begin(&f);

	/* dead from the start: down at the third failed round (rounds at 0, freq, 2 freq) */
	t0 = now_ms();
	ck_assert_int_eq(rh_health_start(f.h), 0);
	t_down = wait_for(&f, "0", 3000);
	ck_assert_msg(t_down != 0, "dead backend not marked down within 3 s");
	ck_assert_uint_ge(t_down - t0, 2 * freq);
	ck_assert_uint_eq(rh_health_publications(f.h), 1);

	/* listening: up after two successes */
	t_listen = now_ms();
	f.lfd[0] = listener(&ports[0], 64);
	t_up = wait_for(&f, "1", 3000);
	ck_assert_msg(t_up != 0, "backend not marked up within 3 s");
	ck_assert_uint_ge(t_up - t_listen, freq / 2);
	ck_assert_uint_eq(rh_health_publications(f.h), 2);

	/* one failure, then a success; two failures, then a success: still up all along */
	fail_rounds(&f, ports[0], freq, 1);
	t_ok = fail_rounds(&f, ports[0], freq, 2);
	ck_assert_uint_eq(rh_health_publications(f.h), 2);

	/* now it dies for good right after that one success: down at the third failure, three rounds
	 * after the success, not at the first or second */
	close(f.lfd[0]);
	f.lfd[0] = -1;
	t_down2 = wait_for(&f, "0", 3000);
	ck_assert_msg(t_down2 != 0, "backend not marked down within 3 s of dying");
	ck_assert_msg(t_down2 - t_ok >= 3 * freq - freq / 2,
		      "fall = 3: down %llu ms after the last success, before the third failed round",
		      (unsigned long long)(t_down2 - t_ok));
	ck_assert_uint_eq(rh_health_publications(f.h), 3);

	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: Connection refused (3 of 3)\n", ports[0]);
	ck_assert_uint_eq(count(log, line), 2);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u up\n", ports[0]);
	ck_assert_uint_eq(count(log, line), 1);
	free(log);
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
	ck_assert_uint_eq(count(log, "down: timeout after 200 ms (1 of 1)\n"), 1);
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

/* ---- the expiry-warning decision ---- */

START_TEST(test_cert_warning)
{
	const time_t now = 1794995200; /* 2026-11-18T09:46:40Z */
	char buf[128];

	/* expired: at the second of expiry and after */
	strcpy(buf, "untouched");
	ck_assert(rh_health_cert_warning(now, now - 86400, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expired on 2026-11-17 09:46:40 UTC");
	ck_assert(rh_health_cert_warning(now, now, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expired on 2026-11-18 09:46:40 UTC");
	ck_assert(rh_health_cert_warning(now, now - 3 * 365 * 86400, 1, buf, sizeof(buf)));

	/* within the window */
	ck_assert(rh_health_cert_warning(now, now + 2 * 86400 + 3600, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expires in 2 days (2026-11-20 10:46:40 UTC)");
	ck_assert(rh_health_cert_warning(now, now + 86400, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expires in 1 day (2026-11-19 09:46:40 UTC)");
	ck_assert(rh_health_cert_warning(now, now + 5 * 3600 + 59, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expires in 5 hours (2026-11-18 14:47:39 UTC)");
	ck_assert(rh_health_cert_warning(now, now + 3600, 1, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expires in 1 hour (2026-11-18 10:46:40 UTC)");
	ck_assert(rh_health_cert_warning(now, now + 1, 1, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expires in less than an hour (2026-11-18 09:46:41 UTC)");
	ck_assert(rh_health_cert_warning(now, now + 14 * 86400 - 1, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "certificate expires in 13 days (2026-12-02 09:46:39 UTC)");

	/* outside the window (it ends exactly warn_days from now), off, unknown expiry */
	strcpy(buf, "untouched");
	ck_assert(!rh_health_cert_warning(now, now + 14 * 86400, 14, buf, sizeof(buf)));
	ck_assert(!rh_health_cert_warning(now, now + 365 * 86400, 14, buf, sizeof(buf)));
	ck_assert(!rh_health_cert_warning(now, now + 86400, 0, buf, sizeof(buf)));
	ck_assert(!rh_health_cert_warning(now, now - 86400, 0, buf, sizeof(buf)));
	ck_assert(!rh_health_cert_warning(now, 0, 14, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "untouched");

	/* a short buffer is truncated, not overrun */
	char small[16];
	ck_assert(rh_health_cert_warning(now, now - 1, 14, small, sizeof(small)));
	ck_assert_str_eq(small, "certificate exp");
}
END_TEST

/* ---- set-up errors and the accessor without TLS ---- */

START_TEST(test_create_checks)
{
	struct fixture f;
	uint16_t ports[1] = {dead_port()};
	char err[RH_CONFIG_ERR_LEN] = "";
	struct rh_health_cert c;
	struct rh_health *h;

	fixture_config(&f, ports, 1, 50, 50, 1, 1);
	f.cfg.health_tls = true;
	h = rh_health_create(&f.rt, &f.cfg, NULL, err, sizeof(err));
	ck_assert_ptr_null(h);
	ck_assert_msg(strstr(err, "tls = true") != NULL, "%s", err);

	/* type = none probes nothing: no context needed */
	f.cfg.health_type = RH_HEALTH_NONE;
	h = rh_health_create(&f.rt, &f.cfg, NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(h);
	ck_assert(!rh_health_cert(h, 0, &c));
	rh_health_destroy(h);

	/* plain TCP probes record no certificate */
	f.cfg.health_type = RH_HEALTH_TCP;
	f.cfg.health_tls = false;
	fixture_health(&f, NULL);
	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert(wait_for(&f, "0", 1000) != 0);
	ck_assert(!rh_health_cert(f.h, 0, &c));
	ck_assert(!rh_health_cert(f.h, 1, &c));
	fixture_finish(&f);
}
END_TEST

/* ---- TLS probes ---- */

/* A P-256 key. */
static EVP_PKEY *
new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_new();
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);

	ck_assert(k != NULL && ec != NULL);
	ck_assert(EC_KEY_generate_key(ec));
	ck_assert(EVP_PKEY_assign_EC_KEY(k, ec));
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	ck_assert_ptr_nonnull(e);
	ck_assert(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
}

/* A certificate for <key> named <cn>, valid from an hour ago until <not_after>: a CA when <san> is
 * NULL, else a server certificate for <san> ("DNS:backend.test"). Self-signed when <issuer> is
 * NULL. */
static X509 *
new_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *issuer_key,
	 time_t not_after)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;

	ck_assert_ptr_nonnull(x);
	ck_assert(X509_set_version(x, X509_VERSION_3));
	ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(x), time(NULL) - 3600));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x), not_after));
	ck_assert(X509_set_pubkey(x, key));
	name = X509_get_subject_name(x);
	ck_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					     -1, 0));
	ck_assert(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name));
	if (san == NULL) {
		add_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer ? issuer : x, NID_ext_key_usage, "serverAuth");
		add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
	}
	ck_assert(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()));
	return x;
}

/* The test CA, its PEM in a temporary file. */
struct test_ca {
	EVP_PKEY *key;
	X509 *cert;
	char path[64];
};

static void
ca_init(struct test_ca *ca)
{
	FILE *fp;
	int fd;

	ca->key = new_key();
	ca->cert = new_cert(ca->key, "check_health CA", NULL, NULL, NULL, time(NULL) + 30 * 86400);
	snprintf(ca->path, sizeof(ca->path), "/tmp/check_health_ca.XXXXXX");
	fd = mkstemp(ca->path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert(PEM_write_X509(fp, ca->cert));
	ck_assert_int_eq(fclose(fp), 0);
}

static void
ca_finish(struct test_ca *ca)
{
	unlink(ca->path);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
}

/* A TLS server thread on a listener: handshakes each connection (blocking, bounded by socket
 * timeouts), then closes it. */
struct tls_server {
	int lfd;
	int stopfd;
	SSL_CTX *ctx;
	pthread_t thread;
	atomic_uint handshakes;
};

static void *
tls_server_main(void *arg)
{
	struct tls_server *s = arg;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = s->lfd, .events = POLLIN},
					{.fd = s->stopfd, .events = POLLIN}};
		struct timeval tv = {.tv_sec = 1};
		SSL *ssl;
		int c;

		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0)
			break;
		c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		ssl = SSL_new(s->ctx);
		if (ssl != NULL && SSL_set_fd(ssl, c) && SSL_accept(ssl) == 1)
			atomic_fetch_add(&s->handshakes, 1);
		SSL_free(ssl);
		ERR_clear_error();
		close(c);
	}
	return NULL;
}

/* Starts a server on 127.0.0.1 (its port in *<port>) presenting a certificate for <san> that
 * expires at <not_after>, issued by <ca> (self-signed when NULL). */
static void
tls_server_start(struct tls_server *s, uint16_t *port, const struct test_ca *ca, const char *san,
		 time_t not_after)
{
	EVP_PKEY *key = new_key();
	X509 *cert = new_cert(key, "backend", san, ca ? ca->cert : NULL, ca ? ca->key : NULL,
			      not_after);

	memset(s, 0, sizeof(*s));
	atomic_init(&s->handshakes, 0);
	s->ctx = SSL_CTX_new(TLS_method());
	ck_assert_ptr_nonnull(s->ctx);
	ck_assert(SSL_CTX_use_certificate(s->ctx, cert));
	ck_assert(SSL_CTX_use_PrivateKey(s->ctx, key));
	X509_free(cert);
	EVP_PKEY_free(key);
	*port = 0;
	s->lfd = listener(port, 64);
	s->stopfd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(s->stopfd, 0);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, tls_server_main, s), 0);
}

static void
tls_server_stop(struct tls_server *s)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(s->stopfd, &one, sizeof(one)), (ssize_t)sizeof(one));
	pthread_join(s->thread, NULL);
	close(s->stopfd);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
}

/* fixture_config, then an upstream TLS context (SNI and name backend.test, CA <ca_path>) and the
 * checker with TLS probes. */
static void
fixture_init_tls(struct fixture *f, const uint16_t *ports, size_t n, uint32_t freq,
		 uint32_t timeout, bool verify, const char *ca_path, unsigned warn_days)
{
	static char path[] = "check_health.ini", sni[] = "backend.test";
	char err[RH_CONFIG_ERR_LEN] = "";

	fixture_config(f, ports, n, freq, timeout, 1, 1);
	f->cfg.path = path;
	f->cfg.tls = true;
	f->cfg.tls_line = 1;
	f->cfg.sni = sni;
	f->cfg.verify = verify;
	f->cfg.ca_file = (char *)ca_path;
	f->cfg.ca_file_line = 2;
	f->cfg.health_tls = true;
	f->cfg.cert_warn_days = warn_days;
	ck_assert_msg(rh_tls_upstream_create(&f->cfg, &f->tls, err, sizeof(err)) == 0,
		      "rh_tls_upstream_create: %s", err);
	ck_assert_ptr_nonnull(f->tls);
	fixture_health(f, f->tls);
}

/* Backends: a good TLS server, a plain TCP listener that closes every connection, a listener that
 * accepts (in the kernel) and never answers. Only the first stays up; the others go down with a
 * TLS reason and a timeout. */
START_TEST(test_tls_probes)
{
	struct fixture f;
	struct test_ca ca;
	struct tls_server srv;
	uint16_t ports[3] = {0, 0, 0};
	time_t expiry = time(NULL) + 300 * 86400;
	struct rh_health_cert c;
	char line[160], state[8];
	int plain, silent;
	time_t t0;
	char *log;

	ca_init(&ca);
	tls_server_start(&srv, &ports[0], &ca, "DNS:backend.test", expiry);
	plain = listener(&ports[1], 64);
	silent = listener(&ports[2], 64);
	fixture_init_tls(&f, ports, 3, 100, 800, true, ca.path, 14);
	f.lfd[1] = plain;
	rh_log_set_level(RH_LOG_INFO);
	log_begin(&f);

	t0 = time(NULL);
	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert_msg(wait_for(&f, "100", 4000) != 0, "not 100 within 4 s");
	idle(&f, 400); /* a few more rounds: nothing changes, nothing more is logged */
	ck_assert_uint_eq(peek(&f, state), 2);
	ck_assert_str_eq(state, "100");
	ck_assert_uint_ge(atomic_load(&srv.handshakes), 2);

	ck_assert(rh_health_cert(f.h, 0, &c));
	ck_assert(c.verified);
	ck_assert_str_eq(c.verify_error, "");
	ck_assert_int_eq((long long)c.not_after, (long long)expiry);
	ck_assert_int_ge((long long)c.checked_at, (long long)t0);
	ck_assert_int_le((long long)c.checked_at, (long long)time(NULL));
	ck_assert(!rh_health_cert(f.h, 1, &c));
	ck_assert(!rh_health_cert(f.h, 2, &c));
	ck_assert(!rh_health_cert(f.h, 3, &c));

	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: TLS handshake: ", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: timeout after 800 ms (1 of 1)\n", ports[2]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u ", ports[0]);
	ck_assert_uint_eq(count(log, line), 0);
	ck_assert_uint_eq(count(log, "certificate"), 0);
	free(log);
	fixture_finish(&f);
	close(silent);
	tls_server_stop(&srv);
	ca_finish(&ca);
}
END_TEST

/* verify = true: an untrusted certificate fails the handshake, so the backend is down. */
START_TEST(test_tls_verify_fails)
{
	struct fixture f;
	struct test_ca ca;
	struct tls_server srv;
	uint16_t ports[1] = {0};
	struct rh_health_cert c;
	char line[160];
	char *log;

	ca_init(&ca);
	tls_server_start(&srv, &ports[0], NULL, "DNS:backend.test", time(NULL) + 300 * 86400);
	fixture_init_tls(&f, ports, 1, 100, 2000, true, ca.path, 14);
	rh_log_set_level(RH_LOG_INFO);
	log_begin(&f);

	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert(wait_for(&f, "0", 2000) != 0);
	ck_assert(!rh_health_cert(f.h, 0, &c));
	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	snprintf(line, sizeof(line),
		 "backend 127.0.0.1:%u down: TLS handshake: certificate verify failed: ", ports[0]);
	ck_assert_uint_eq(count(log, line), 1);
	free(log);
	fixture_finish(&f);
	tls_server_stop(&srv);
	ca_finish(&ca);
}
END_TEST

/* verify = false: certificates that do not verify are still used, with a warning each, once; the
 * expiry warnings too, once per certificate however many rounds see it. */
START_TEST(test_tls_cert_warnings)
{
	struct fixture f;
	struct test_ca ca;
	struct tls_server soon, expired;
	uint16_t ports[2] = {0, 0};
	time_t now = time(NULL);
	time_t soon_at = now + 2 * 86400 + 3600, expired_at = now - 86400;
	struct rh_health_cert c;
	char line[256], text[128], state[4];
	char *log;

	ca_init(&ca);
	/* by the CA but for another name, expiring in two days */
	tls_server_start(&soon, &ports[0], &ca, "DNS:other.test", soon_at);
	/* the right name, by the CA, expired yesterday */
	tls_server_start(&expired, &ports[1], &ca, "DNS:backend.test", expired_at);
	fixture_init_tls(&f, ports, 2, 30, 2000, false, ca.path, 14);
	rh_log_set_level(RH_LOG_INFO);
	log_begin(&f);

	ck_assert_int_eq(rh_health_start(f.h), 0);
	/* ~10 rounds, reading the records while the health thread writes them */
	for (int k = 0; k < 60; k++) {
		if (rh_health_cert(f.h, 0, &c))
			ck_assert(!c.verified);
		idle(&f, 5);
	}
	ck_assert_uint_ge(atomic_load(&soon.handshakes), 3);
	ck_assert_uint_ge(atomic_load(&expired.handshakes), 3);
	ck_assert_uint_eq(peek(&f, state), 1);
	ck_assert_str_eq(state, "11");
	ck_assert_uint_eq(rh_health_publications(f.h), 0);

	ck_assert(rh_health_cert(f.h, 0, &c));
	ck_assert(!c.verified);
	ck_assert_str_ne(c.verify_error, "");
	ck_assert_int_eq((long long)c.not_after, (long long)soon_at);
	ck_assert(rh_health_cert(f.h, 1, &c));
	ck_assert(!c.verified);
	ck_assert_msg(strstr(c.verify_error, "expired") != NULL, "%s", c.verify_error);
	ck_assert_int_eq((long long)c.not_after, (long long)expired_at);

	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);

	ck_assert(rh_health_cert_warning(time(NULL), soon_at, 14, text, sizeof(text)));
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u %s\n", ports[0], text);
	ck_assert_uint_eq(count(log, line), 1);
	ck_assert(rh_health_cert_warning(time(NULL), expired_at, 14, text, sizeof(text)));
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u %s\n", ports[1], text);
	ck_assert_uint_eq(count(log, line), 1);
	for (size_t i = 0; i < 2; i++) {
		snprintf(line, sizeof(line), "backend 127.0.0.1:%u certificate does not verify: ",
			 ports[i]);
		ck_assert_uint_eq(count(log, line), 1);
		snprintf(line, sizeof(line), "backend 127.0.0.1:%u certificate ", ports[i]);
		ck_assert_uint_eq(count(log, line), 2);
	}
	ck_assert_uint_eq(count(log, "(verify = false, so it is still used)\n"), 2);
	ck_assert_uint_eq(count(log, " down"), 0);
	free(log);
	fixture_finish(&f);
	tls_server_stop(&soon);
	tls_server_stop(&expired);
	ca_finish(&ca);
}
END_TEST

/* ---- HTTP checks, passive reports, initial = down ---- */

START_TEST(test_probe_parse_status)
{
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1 200 OK\r\n", 17), 200);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.0 503\r\n", 14), 503);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1 404", 12), 404);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1 20", 11), 0);  /* more bytes needed */
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1", 6), 0);
	ck_assert_int_eq(rh_probe_parse_status("", 0), 0);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/2 200 OK\r\n", 15), -1);
	ck_assert_int_eq(rh_probe_parse_status("SSH-2.0-OpenSSH\r\n", 17), -1);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1 2000 OK", 16), -1);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1 099 X", 14), -1);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1 2x0 X", 14), -1);
	ck_assert_int_eq(rh_probe_parse_status("HTTP/1.1  200", 13), -1);
}
END_TEST

START_TEST(test_probe_request)
{
	struct rh_backend_conf bc = {.spec = "app.internal:8080", .weight = 1};
	struct rh_backend *b = rh_backend_create(&bc, NULL, 1, true);
	struct rh_probe_conf pc = {.type = RH_HEALTH_HTTP, .path = "/healthz?full=1"};
	char buf[RH_PROBE_REQ_LEN];
	size_t n;

	ck_assert_ptr_nonnull(b);
	n = rh_probe_request(&pc, b, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "GET /healthz?full=1 HTTP/1.1\r\nHost: app.internal:8080\r\n"
			      "User-Agent: roundhouse-health\r\nAccept: */*\r\nConnection: close\r\n\r\n");
	pc.host = "health.example";
	n = rh_probe_request(&pc, b, buf, sizeof(buf));
	buf[n] = '\0';
	ck_assert(strstr(buf, "\r\nHost: health.example\r\n") != NULL);
	ck_assert_uint_eq(rh_probe_request(&pc, b, buf, 20), 0); /* does not fit: refused, not cut */
	rh_backend_unref(b);
}
END_TEST

/* A tiny HTTP backend in a thread: each connection reads a request head and gets "HTTP/1.1
 * <status>" and a close. */
struct http_server {
	int lfd;
	uint16_t port;
	atomic_int status;
	atomic_uint requests;
	atomic_bool stop;
	char last_head[512]; /* under no lock: read only after stop */
	pthread_t thread;
};

static void *
http_server_main(void *arg)
{
	struct http_server *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		int c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char head[512];
		size_t got = 0;
		uint64_t end = now_ms() + 500;
		while (got < sizeof(head) - 1 && now_ms() < end) {
			struct pollfd cp = {.fd = c, .events = POLLIN};
			if (poll(&cp, 1, 50) <= 0)
				continue;
			ssize_t n = recv(c, head + got, sizeof(head) - 1 - got, 0);
			if (n <= 0)
				break;
			got += (size_t)n;
			head[got] = '\0';
			if (strstr(head, "\r\n\r\n"))
				break;
		}
		head[got] = '\0';
		if (got) {
			memcpy(s->last_head, head, got + 1);
			atomic_fetch_add(&s->requests, 1);
			char resp[128];
			int n = snprintf(resp, sizeof(resp),
					 "HTTP/1.1 %d Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
					 atomic_load(&s->status));
			ssize_t w = send(c, resp, (size_t)n, MSG_NOSIGNAL);
			(void)w;
		}
		close(c);
	}
	return NULL;
}

static void
http_server_start(struct http_server *s, int status)
{
	memset(s, 0, sizeof(*s));
	s->port = 0;
	s->lfd = listener(&s->port, 64);
	atomic_init(&s->status, status);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, http_server_main, s), 0);
}

static void
http_server_stop(struct http_server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

/* The state of backend <i> of the live snapshot. */
static enum rh_backend_state
state_at(struct fixture *f, size_t i)
{
	rh_rcu_reader_online();
	const struct rh_snapshot *v = rh_runtime_snapshot(&f->rt);
	enum rh_backend_state st = atomic_load(&v->backends[i]->state);
	rh_rcu_reader_offline();
	return st;
}

static uint64_t
transitions_at(struct fixture *f, size_t i, enum rh_backend_state st)
{
	rh_rcu_reader_online();
	const struct rh_snapshot *v = rh_runtime_snapshot(&f->rt);
	uint64_t n = atomic_load(&v->backends[i]->transitions[st]);
	rh_rcu_reader_offline();
	return n;
}

/* type = http, rise 2, fall 2, every 100 ms: a backend answering 503 goes down after two failed
 * checks with the status in the log, and comes back after two passing ones; the request is a GET
 * of the path with the backend's Host. */
START_TEST(test_http_checks)
{
	struct fixture f;
	struct http_server a, b;
	uint16_t ports[2];
	char line[160], *log;
	uint64_t t0, t;

	http_server_start(&a, 200);
	http_server_start(&b, 200);
	ports[0] = a.port;
	ports[1] = b.port;
	fixture_config(&f, ports, 2, 100, 100, 2, 2);
	f.cfg.health_type = RH_HEALTH_HTTP;
	f.cfg.health_path = (char *)"/healthz";
	f.cfg.expect_lo = 200;
	f.cfg.expect_hi = 299;
	fixture_health(&f, NULL);
	log_begin(&f);
	ck_assert_int_eq(rh_health_start(f.h), 0);

	/* the first passing checks confirm the initial state: up, no publication needed */
	t = now_ms() + 2000;
	while ((state_at(&f, 0) != RH_BACKEND_UP || state_at(&f, 1) != RH_BACKEND_UP) && now_ms() < t)
		sleep_ms(5);
	ck_assert_int_eq(state_at(&f, 1), RH_BACKEND_UP);
	ck_assert_uint_eq(rh_health_publications(f.h), 0);

	atomic_store(&b.status, 503);
	t0 = now_ms();
	t = wait_for(&f, "10", 2000);
	ck_assert(t != 0);
	ck_assert_uint_ge(t - t0, 100); /* two failed checks, one interval apart */
	ck_assert_int_eq(state_at(&f, 1), RH_BACKEND_DOWN);
	ck_assert_uint_eq(transitions_at(&f, 1, RH_BACKEND_DOWN), 1);
	ck_assert_uint_eq(rh_health_publications(f.h), 1);

	atomic_store(&b.status, 204);
	t = wait_for(&f, "11", 2000);
	ck_assert(t != 0);
	ck_assert_int_eq(state_at(&f, 1), RH_BACKEND_UP);
	ck_assert_uint_eq(transitions_at(&f, 1, RH_BACKEND_UP), 2);
	ck_assert_uint_eq(rh_health_publications(f.h), 2);

	/* a 302 is outside 200-299 */
	atomic_store(&b.status, 302);
	ck_assert(wait_for(&f, "10", 2000) != 0);

	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: HTTP 503 from /healthz (2 of 2)\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: HTTP 302 from /healthz (2 of 2)\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u up\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1); /* the return; the first check confirming it is not news */
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down", ports[0]);
	ck_assert_uint_eq(count(log, line), 0);
	free(log);
	fixture_finish(&f);
	http_server_stop(&a);
	http_server_stop(&b);
	ck_assert_uint_gt(atomic_load(&b.requests), 4);
	ck_assert_msg(strncmp(b.last_head, "GET /healthz HTTP/1.1\r\n", 23) == 0, "%s", b.last_head);
	snprintf(line, sizeof(line), "\r\nHost: 127.0.0.1:%u\r\n", ports[1]);
	ck_assert_msg(strstr(b.last_head, line) != NULL, "%s", b.last_head);
}
END_TEST

/* Passive reports: with a frequency far beyond the test, only the first round of probes runs (all
 * pass); then <fall> failures reported by a worker take a backend out at once, and nothing but a
 * probe brings it back. With passive = false the same reports change nothing. */
static void
passive_case(bool passive)
{
	struct fixture f;
	uint16_t ports[2] = {0, 0};
	char state[4], line[200], *log;

	int fd0 = listener(&ports[0], 64);
	int fd1 = listener(&ports[1], 64);
	fixture_config(&f, ports, 2, 60000, 200, 1, 3);
	f.lfd[0] = fd0;
	f.lfd[1] = fd1;
	f.cfg.passive = passive;
	fixture_health(&f, NULL);
	log_begin(&f);
	ck_assert_int_eq(rh_health_start(f.h), 0);
	uint64_t t = now_ms() + 2000;
	while (state_at(&f, 1) != RH_BACKEND_UP && now_ms() < t)
		idle(&f, 5);
	ck_assert_int_eq(state_at(&f, 1), RH_BACKEND_UP);

	rh_rcu_reader_online();
	struct rh_backend *b = rh_runtime_snapshot(&f.rt)->backends[1];
	rh_backend_ref(b);
	rh_rcu_reader_offline();
	uint64_t t0 = now_ms();
	for (int k = 0; k < 3; k++) {
		rh_runtime_report_failure(&f.rt, b, 0, RH_FAIL_CONNECT, ECONNREFUSED);
		sleep_ms(k < 2 ? 20 : 0);
	}
	if (passive) {
		t = wait_for(&f, "10", 1000);
		ck_assert(t != 0);
		ck_assert_uint_lt(t - t0, 500); /* at once, not at the next probe a minute later */
		ck_assert_int_eq(state_at(&f, 1), RH_BACKEND_DOWN);
		ck_assert(stays(&f, "10", 300)); /* failures never bring it back */
		ck_assert_uint_eq(rh_health_publications(f.h), 1);
	} else {
		ck_assert(stays(&f, "11", 300));
		ck_assert_uint_eq(rh_health_publications(f.h), 0);
	}
	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: ", ports[1]);
	ck_assert_uint_eq(count(log, line), passive ? 1 : 0);
	if (passive) {
		ck_assert_uint_eq(count(log, " while proxying (last: connect failed: Connection refused) (3 of 3)\n"),
				  1);
	}
	(void)state;
	free(log);
	rh_backend_unref(b);
	fixture_finish(&f);
}

START_TEST(test_passive)
{
	passive_case(true);
}
END_TEST

/* The last backend in rotation is never taken out by passive reports (nginx ignores max_fails for a
 * single server): failures of the only backend would otherwise turn into an outage until a probe. */
START_TEST(test_passive_last_backend)
{
	struct fixture f;
	uint16_t ports[1] = {0};

	int fd = listener(&ports[0], 64);
	fixture_config(&f, ports, 1, 60000, 200, 1, 1);
	f.lfd[0] = fd;
	f.cfg.passive = true;
	fixture_health(&f, NULL);
	ck_assert_int_eq(rh_health_start(f.h), 0);
	uint64_t t = now_ms() + 2000;
	while (state_at(&f, 0) != RH_BACKEND_UP && now_ms() < t)
		idle(&f, 5);
	rh_rcu_reader_online();
	struct rh_backend *b = rh_runtime_snapshot(&f.rt)->backends[0];
	rh_backend_ref(b);
	rh_rcu_reader_offline();
	for (int k = 0; k < 5; k++)
		rh_runtime_report_failure(&f.rt, b, 0, RH_FAIL_TIMEOUT, ETIMEDOUT);
	ck_assert(stays(&f, "1", 300));
	ck_assert_int_eq(state_at(&f, 0), RH_BACKEND_UP);
	ck_assert_uint_eq(rh_health_publications(f.h), 0);
	ck_assert_uint_lt(timed_stop(&f), 100);
	rh_backend_unref(b);
	fixture_finish(&f);
}
END_TEST

START_TEST(test_passive_off)
{
	passive_case(false);
}
END_TEST

/* initial = down: snapshot #1 routes to both, the control thread takes them out until a probe
 * passes; the live one comes in after its first passing check, the dead one is logged down. */
START_TEST(test_initial_down)
{
	struct fixture f;
	uint16_t ports[2] = {0, dead_port()};
	char *log, line[160];

	f.lfd[0] = -1;
	int fd = listener(&ports[0], 64);
	fixture_config(&f, ports, 2, 100, 100, 1, 1);
	f.lfd[0] = fd;
	f.cfg.initial_down = true;
	fixture_health(&f, NULL);
	log_begin(&f);
	ck_assert_int_eq(rh_health_start(f.h), 0);
	ck_assert(wait_for(&f, "10", 2000) != 0);
	ck_assert_int_eq(state_at(&f, 0), RH_BACKEND_UP);
	ck_assert_int_eq(state_at(&f, 1), RH_BACKEND_DOWN);
	ck_assert_uint_eq(transitions_at(&f, 1, RH_BACKEND_UP), 0);
	ck_assert_uint_lt(timed_stop(&f), 100);
	log = log_end(&f);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u up\n", ports[0]);
	ck_assert_uint_eq(count(log, line), 1);
	snprintf(line, sizeof(line), "backend 127.0.0.1:%u down: Connection refused (initial = down)\n", ports[1]);
	ck_assert_uint_eq(count(log, line), 1);
	free(log);
	fixture_finish(&f);
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
	tcase_add_test(tc, test_fall_after_recovery);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_stop_mid_round);
	tcase_add_test(tc, test_type_none);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_create_checks);
	suite_add_tcase(s, tc);

	tc = tcase_create("http_passive");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_probe_parse_status);
	tcase_add_test(tc, test_probe_request);
	tcase_add_test(tc, test_http_checks);
	tcase_add_test(tc, test_passive);
	tcase_add_test(tc, test_passive_off);
	tcase_add_test(tc, test_passive_last_backend);
	tcase_add_test(tc, test_initial_down);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cert_warning);
	tcase_add_test(tc, test_tls_probes);
	tcase_add_test(tc, test_tls_verify_fails);
	tcase_add_test(tc, test_tls_cert_warnings);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(health_suite());
	int failed;

	rh_log_set_thread_tag("test");
	signal(SIGPIPE, SIG_IGN); /* the test TLS servers write to probes that went away */
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
