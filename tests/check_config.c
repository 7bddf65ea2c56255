/* Unit tests for the config loader (src/config.c). Each test writes its INI text to a temp file;
 * error messages are compared exactly, with the temp path filled in. */
#include "roundhouse/config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RH_TEST_DATA
#error "RH_TEST_DATA must name tests/data"
#endif

#define BACKEND "[upstream]\nbackend = 127.0.0.1:8081\n"

/* Writes <len> bytes of <text> to a new temp file; returns its path (caller frees and unlinks). */
static char *write_tmp_n(const char *text, size_t len)
{
	char *path = strdup("/tmp/rh_check_config_XXXXXX.ini");
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemps(path, 4);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static char *write_tmp(const char *text)
{
	return write_tmp_n(text, strlen(text));
}

/* Loads <text>, which must succeed, into <cfg>. */
static void load_ok(const char *text, struct rh_config *cfg)
{
	char err[RH_CONFIG_ERR_LEN] = "";
	char *path = write_tmp(text);
	int rc = rh_config_load(cfg, path, err, sizeof(err));

	unlink(path);
	free(path);
	ck_assert_msg(rc == 0, "load failed: %s", err);
}

/* Loads <text>, which must fail with exactly "<tmppath><suffix>". */
static void load_err(const char *text, const char *suffix)
{
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";
	char want[RH_CONFIG_ERR_LEN + 64];
	char *path = write_tmp(text);
	int rc;

	memset(&cfg, 0xa5, sizeof(cfg));
	rc = rh_config_load(&cfg, path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	unlink(path);
	free(path);
	ck_assert_msg(rc == -1, "load succeeded, expected '%s'", want);
	ck_assert_str_eq(err, want);
	/* on error nothing is left to free */
	ck_assert_ptr_null(cfg.path);
	ck_assert_ptr_null(cfg.backends);
	ck_assert_ptr_null(cfg.listens);
	ck_assert_ptr_null(cfg.listens_tls);
	ck_assert_ptr_null(cfg.certs);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_URI);
	ck_assert_uint_eq(cfg.hash_key.name_len, 0);
	rh_config_finish(&cfg);
}

/* Like load_err, for messages with a system-dependent tail: compares only the start. */
static void load_err_prefix(const char *text, const char *suffix)
{
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";
	char want[RH_CONFIG_ERR_LEN + 64];
	char *path = write_tmp(text);
	int rc;

	rc = rh_config_load(&cfg, path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	unlink(path);
	free(path);
	ck_assert_msg(rc == -1, "load succeeded, expected '%s...'", want);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0 && strlen(err) > strlen(want), "got '%s', want '%s...'", err,
		      want);
}

START_TEST(minimal_defaults)
{
	struct rh_config cfg;
	struct sockaddr_in *sin;

	load_ok(BACKEND, &cfg);
	ck_assert_ptr_nonnull(cfg.path);
	ck_assert_uint_eq(cfg.n_listens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:6188");
	sin = (struct sockaddr_in *)&cfg.listens[0].ss;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 6188);
	ck_assert_uint_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_uint_eq(cfg.listens[0].len, sizeof(struct sockaddr_in));
	ck_assert_uint_gt(cfg.threads, 0);
	ck_assert_uint_eq(cfg.threads, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	ck_assert_uint_eq(cfg.max_connections, 65536);

	ck_assert_int_eq(cfg.algorithm, RH_LB_ROUND_ROBIN);
	ck_assert_uint_eq(cfg.n_backends, 1);
	ck_assert_str_eq(cfg.backends[0].addr.text, "127.0.0.1:8081");
	ck_assert_str_eq(cfg.backends[0].spec, "127.0.0.1:8081");
	ck_assert_uint_eq(cfg.backends[0].weight, 1);
	ck_assert_uint_eq(cfg.backends[0].line, 2);
	ck_assert_uint_eq(cfg.max_iterations, 256);
	ck_assert_uint_eq(cfg.keepalive, 64);
	ck_assert_ptr_null(cfg.host_header);
	ck_assert(!cfg.tls);
	ck_assert_uint_eq(cfg.tls_line, 0);
	ck_assert_ptr_null(cfg.sni);
	ck_assert(cfg.verify);
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_uint_eq(cfg.ca_file_line, 0);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_URI);
	ck_assert_uint_eq(cfg.hash_key.name_len, 0);
	ck_assert_str_eq(cfg.hash_key.name, "");
	ck_assert_uint_eq(cfg.hash_balance_factor, 0);
	ck_assert_uint_eq(cfg.n_listens_tls, 0);
	ck_assert_ptr_null(cfg.listens_tls);
	ck_assert_uint_eq(cfg.listen_tls_line, 0);
	ck_assert_uint_eq(cfg.n_certs, 0);
	ck_assert_ptr_null(cfg.certs);
	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_APPEND);

	ck_assert_int_eq(cfg.health_type, RH_HEALTH_TCP);
	ck_assert_uint_eq(cfg.health_frequency_ms, 5000);
	ck_assert_uint_eq(cfg.health_timeout_ms, 1000);
	ck_assert_uint_eq(cfg.rise, 1);
	ck_assert_uint_eq(cfg.fall, 1);
	ck_assert_str_eq(cfg.health_path, "/");
	ck_assert_uint_eq(cfg.expect_lo, 200);
	ck_assert_uint_eq(cfg.expect_hi, 399);
	ck_assert(!cfg.health_tls);
	ck_assert_uint_eq(cfg.cert_warn_days, 14);
	ck_assert_ptr_null(cfg.health_host);
	ck_assert(cfg.passive);
	ck_assert(!cfg.initial_down);
	ck_assert_uint_eq(cfg.jitter_pct, 5);
	ck_assert_uint_eq(cfg.retries, 2);
	ck_assert_uint_eq(cfg.queue_timeout_ms, 1000);
	ck_assert_uint_eq(cfg.resolve_ms, 0);
	ck_assert_uint_eq(cfg.resolver.len, 0);
	ck_assert_uint_eq(cfg.n_names, 1);
	ck_assert_uint_eq(cfg.backends[0].max_conns, 0);
	ck_assert_uint_eq(cfg.backends[0].name, 0);

	ck_assert_uint_eq(cfg.connect_ms, 3000);
	ck_assert_uint_eq(cfg.client_header_ms, 10000);
	ck_assert_uint_eq(cfg.upstream_read_ms, 30000);
	ck_assert_uint_eq(cfg.idle_ms, 60000);
	ck_assert_uint_eq(cfg.shutdown_ms, 10000);

	ck_assert_uint_eq(cfg.max_body_size, 0);

	ck_assert_uint_eq(cfg.admin_listen.len, 0);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(every_key)
{
	static const char text[] =
		"# every key with a non-default value\n"
		"[server]\n"
		"listen = 127.0.0.1:7000\n"
		"listen = [::1]:7001\n"
		"threads = 3\n"
		"max_connections = 1000\n"
		"[upstream]\n"
		"algorithm = consistent_hash\n"
		"hash_key = header:X-User\n"
		"backend = 127.0.0.1:8081\n"
		"backend = [::1]:8082 weight=7\n"
		"backend = 10.0.0.1:80\tweight=1000 ; inline comment\n"
		"max_iterations = 1000000\n"
		"keepalive = 0\n"
		"host_header = example.com:8080\n"
		"tls = false\n"
		"sni = backend.example\n"
		"verify = no\n"
		"ca_file = /etc/ssl/ca.pem\n"
		"[health_check]\n"
		"type = none\n"
		"frequency = 250ms\n"
		"timeout = 2m\n"
		"rise = 3\n"
		"fall = 1000\n"
		"path = /healthz?full=1\n"
		"expect = 200-399\n"
		"tls = yes\n"
		"cert_warn_days = 30\n"
		"[timeouts]\n"
		"connect = 1ms\n"
		"client_header = 2s\n"
		"upstream_read = 3\n"
		"idle = 1h\n"
		"shutdown = 4s\n"
		"[admin]\n"
		"listen = 127.0.0.1:6189\n"
		"[server]\n"
		"listen_tls = 127.0.0.1:7443\n"
		"cert = /etc/rh/a.pem\n"
		"key = /etc/rh/a.key\n"
		"[upstream]\n"
		"x_forwarded_for = replace\n"
		"hash_balance_factor = 125\n"
		"backend = 10.0.0.2:80 weight=0\n"
		"[limits]\n"
		"max_body_size = 10m\n";
	struct rh_config cfg;

	load_ok(text, &cfg);
	ck_assert_uint_eq(cfg.n_listens, 2);
	ck_assert_str_eq(cfg.listens[0].text, "127.0.0.1:7000");
	ck_assert_str_eq(cfg.listens[1].text, "[::1]:7001");
	ck_assert_int_eq(cfg.listens[1].ss.ss_family, AF_INET6);
	ck_assert_uint_eq(cfg.listens[1].len, sizeof(struct sockaddr_in6));
	ck_assert_uint_eq(cfg.threads, 3);
	ck_assert_uint_eq(cfg.max_connections, 1000);

	ck_assert_int_eq(cfg.algorithm, RH_LB_CONSISTENT_HASH);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_HEADER);
	ck_assert_str_eq(cfg.hash_key.name, "X-User");
	ck_assert_uint_eq(cfg.hash_key.name_len, 6);
	ck_assert_uint_eq(cfg.hash_balance_factor, 125);
	ck_assert_uint_eq(cfg.n_backends, 4);
	ck_assert_str_eq(cfg.backends[0].addr.text, "127.0.0.1:8081");
	ck_assert_uint_eq(cfg.backends[0].line, 10);
	ck_assert_str_eq(cfg.backends[1].addr.text, "[::1]:8082");
	ck_assert_str_eq(cfg.backends[1].spec, "[::1]:8082");
	ck_assert_uint_eq(cfg.backends[1].weight, 7);
	ck_assert_uint_eq(cfg.backends[1].line, 11);
	ck_assert_str_eq(cfg.backends[2].addr.text, "10.0.0.1:80");
	ck_assert_uint_eq(cfg.backends[2].weight, 1000);
	ck_assert_str_eq(cfg.backends[3].addr.text, "10.0.0.2:80");
	ck_assert_uint_eq(cfg.backends[3].weight, 0);
	ck_assert_uint_eq(cfg.backends[3].line, 45);
	ck_assert_uint_eq(cfg.max_iterations, 1000000);
	ck_assert_uint_eq(cfg.keepalive, 0);
	ck_assert_str_eq(cfg.host_header, "example.com:8080");
	ck_assert(!cfg.tls);
	ck_assert_uint_eq(cfg.tls_line, 16);
	ck_assert_str_eq(cfg.sni, "backend.example");
	ck_assert(!cfg.verify);
	ck_assert_str_eq(cfg.ca_file, "/etc/ssl/ca.pem");
	ck_assert_uint_eq(cfg.ca_file_line, 19);

	ck_assert_int_eq(cfg.health_type, RH_HEALTH_NONE);
	ck_assert_uint_eq(cfg.health_frequency_ms, 250);
	ck_assert_uint_eq(cfg.health_timeout_ms, 120000);
	ck_assert_uint_eq(cfg.rise, 3);
	ck_assert_uint_eq(cfg.fall, 1000);
	ck_assert_str_eq(cfg.health_path, "/healthz?full=1");
	ck_assert_uint_eq(cfg.expect_lo, 200);
	ck_assert_uint_eq(cfg.expect_hi, 399);
	ck_assert(cfg.health_tls);
	ck_assert_uint_eq(cfg.cert_warn_days, 30);

	ck_assert_uint_eq(cfg.connect_ms, 1);
	ck_assert_uint_eq(cfg.client_header_ms, 2000);
	ck_assert_uint_eq(cfg.upstream_read_ms, 3000);
	ck_assert_uint_eq(cfg.idle_ms, 3600000);
	ck_assert_uint_eq(cfg.shutdown_ms, 4000);

	ck_assert_uint_eq(cfg.admin_listen.len, sizeof(struct sockaddr_in));
	ck_assert_str_eq(cfg.admin_listen.text, "127.0.0.1:6189");

	ck_assert_uint_eq(cfg.n_listens_tls, 1);
	ck_assert_str_eq(cfg.listens_tls[0].text, "127.0.0.1:7443");
	ck_assert_uint_eq(cfg.listen_tls_line, 39);
	ck_assert_uint_eq(cfg.n_certs, 1);
	ck_assert_str_eq(cfg.certs[0].cert, "/etc/rh/a.pem");
	ck_assert_uint_eq(cfg.certs[0].cert_line, 40);
	ck_assert_str_eq(cfg.certs[0].key, "/etc/rh/a.key");
	ck_assert_uint_eq(cfg.certs[0].key_line, 41);

	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_REPLACE);
	ck_assert_uint_eq(cfg.max_body_size, 10 * 1024 * 1024);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(x_forwarded_for)
{
	static const struct {
		const char *value;
		enum rh_xff_mode mode;
	} cases[] = {
		{"append", RH_XFF_APPEND},
		{"replace", RH_XFF_REPLACE},
		{"off", RH_XFF_OFF},
		{"off ; inline comment", RH_XFF_OFF},
	};
	char text[256];
	struct rh_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "x_forwarded_for = %s\n", cases[i].value);
		load_ok(text, &cfg);
		ck_assert_msg(cfg.x_forwarded_for == cases[i].mode, "%s: %d", cases[i].value, (int)cfg.x_forwarded_for);
		rh_config_finish(&cfg);
	}
	/* the last one wins, also back to the default */
	load_ok(BACKEND "x_forwarded_for = off\nx_forwarded_for = append\n", &cfg);
	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_APPEND);
	rh_config_finish(&cfg);
	load_ok("[upstream]\nx_forwarded_for = replace\n[server]\nthreads = 1\n" BACKEND, &cfg);
	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_REPLACE);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(max_body_size)
{
	static const struct {
		const char *value;
		uint64_t bytes;
	} cases[] = {
		{"0", 0}, /* unlimited */
		{"1", 1},
		{"007", 7},
		{"1048576", 1048576},
		{"1k", 1024},
		{"1K", 1024},
		{"10m", 10485760},
		{"10M", 10485760},
		{"0g", 0},
		{"2g", UINT64_C(2147483648)},
		{"2G", UINT64_C(2147483648)},
		{"1000000g", UINT64_C(1000000) << 30},
		/* the top, 2^53, in each unit */
		{"9007199254740992", UINT64_C(9007199254740992)},
		{"8796093022208k", UINT64_C(9007199254740992)},
		{"8589934592m", UINT64_C(9007199254740992)},
		{"8388608g", UINT64_C(9007199254740992)},
		{"9007199254740991", UINT64_C(9007199254740991)},
	};
	char text[256];
	struct rh_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "[limits]\nmax_body_size = %s\n", cases[i].value);
		load_ok(text, &cfg);
		ck_assert_msg(cfg.max_body_size == cases[i].bytes, "%s: %llu", cases[i].value,
			      (unsigned long long)cfg.max_body_size);
		rh_config_finish(&cfg);
	}
	ck_assert_uint_eq(RH_CONFIG_MAX_BODY_SIZE, UINT64_C(9007199254740992));

	/* [limits] before the backends, the last one wins, an inline comment */
	load_ok("[limits]\nmax_body_size = 1g\nmax_body_size = 64k ; uploads\n" BACKEND, &cfg);
	ck_assert_uint_eq(cfg.max_body_size, 65536);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(other_values)
{
	struct rh_config cfg;

	/* hash keys, single expect, tcp, empty optional strings, last-one-wins, CRLF, tabs, colon syntax */
	load_ok("[upstream]\r\n"
		"hash_key = client_ip\r\n"
		"hash_key = cookie:session_id\r\n"
		"backend\t=\t127.0.0.1:1\r\n"
		"host_header = x\r\n"
		"host_header =\r\n"
		"ca_file =\r\n"
		"sni =\r\n"
		"verify = off\r\n"
		"verify = YES\r\n"
		"[health_check]\r\n"
		"type = none\r\n"
		"type = tcp\r\n"
		"expect = 204\r\n"
		"expect = 100-599\r\n"
		"expect = 302\r\n"
		"[server]\r\n"
		"threads: 1\r\n",
		&cfg);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_COOKIE);
	ck_assert_str_eq(cfg.hash_key.name, "session_id");
	ck_assert_uint_eq(cfg.hash_key.name_len, 10);
	ck_assert_ptr_null(cfg.host_header);
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_ptr_null(cfg.sni);
	ck_assert(cfg.verify);
	ck_assert_int_eq(cfg.health_type, RH_HEALTH_TCP);
	ck_assert_uint_eq(cfg.expect_lo, 302);
	ck_assert_uint_eq(cfg.expect_hi, 302);
	ck_assert_uint_eq(cfg.threads, 1);
	rh_config_finish(&cfg);

	/* ';' only starts a comment after whitespace */
	load_ok(BACKEND "host_header = a;b ; comment\n", &cfg);
	ck_assert_str_eq(cfg.host_header, "a;b");
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(threads_zero)
{
	struct rh_config cfg;

	load_ok("[server]\nthreads = 0\n" BACKEND, &cfg);
	ck_assert_uint_gt(cfg.threads, 0);
	ck_assert_uint_le(cfg.threads, 1024);
	rh_config_finish(&cfg);
	load_ok("[server]\nthreads = 1024\n" BACKEND, &cfg);
	ck_assert_uint_eq(cfg.threads, 1024);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(backend_localhost)
{
	struct rh_config cfg;

	load_ok("[upstream]\nbackend = localhost:8082 weight=3\nbackend = 127.0.0.1:9\n", &cfg);
	ck_assert_uint_ge(cfg.n_backends, 2);
	for (size_t i = 0; i + 1 < cfg.n_backends; i++) {
		const char *t = cfg.backends[i].addr.text;

		ck_assert_str_eq(cfg.backends[i].spec, "localhost:8082");
		ck_assert_uint_eq(cfg.backends[i].weight, 3);
		ck_assert_uint_eq(cfg.backends[i].line, 2);
		ck_assert_msg(strcmp(t, "127.0.0.1:8082") == 0 || strcmp(t, "[::1]:8082") == 0, "%s", t);
		/* each address once */
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(cfg.backends[j].addr.text, t);
	}
	ck_assert_str_eq(cfg.backends[cfg.n_backends - 1].addr.text, "127.0.0.1:9");
	ck_assert_uint_eq(cfg.backends[cfg.n_backends - 1].line, 3);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(listen_forms)
{
	struct rh_config cfg;

	load_ok("[server]\nlisten = [::]:6188\nlisten = 0.0.0.0:6188\nlisten = localhost:7\n" BACKEND, &cfg);
	ck_assert_uint_eq(cfg.n_listens, 3);
	ck_assert_str_eq(cfg.listens[0].text, "[::]:6188");
	ck_assert_str_eq(cfg.listens[1].text, "0.0.0.0:6188");
	/* a name gives its first address only */
	ck_assert_msg(strcmp(cfg.listens[2].text, "127.0.0.1:7") == 0 || strcmp(cfg.listens[2].text, "[::1]:7") == 0,
		      "%s", cfg.listens[2].text);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(shipped_example)
{
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";
	const char *path = RH_TEST_DATA "/../../etc/roundhouse.ini";

	ck_assert_msg(rh_config_load(&cfg, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.n_listens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:6188");
	ck_assert_uint_eq(cfg.n_backends, 2);
	ck_assert_str_eq(cfg.backends[0].addr.text, "127.0.0.1:8081");
	ck_assert_str_eq(cfg.backends[1].addr.text, "127.0.0.1:8082");
	/* everything else is at its default */
	ck_assert_uint_eq(cfg.max_connections, 65536);
	ck_assert_uint_eq(cfg.health_frequency_ms, 5000);
	ck_assert_uint_eq(cfg.shutdown_ms, 10000);
	ck_assert_uint_eq(cfg.admin_listen.len, 0);
	ck_assert(!cfg.tls);
	ck_assert(!cfg.health_tls);
	ck_assert(cfg.verify);
	ck_assert_ptr_null(cfg.sni);
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_uint_eq(cfg.n_listens_tls, 0);
	ck_assert_uint_eq(cfg.n_certs, 0);
	ck_assert_uint_eq(cfg.cert_warn_days, 14);
	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_APPEND);
	ck_assert_uint_eq(cfg.max_body_size, 0);
	ck_assert_int_eq(cfg.algorithm, RH_LB_ROUND_ROBIN);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_URI);
	ck_assert_uint_eq(cfg.hash_balance_factor, 0);
	ck_assert_uint_eq(cfg.backends[0].weight, 1);
	ck_assert_uint_eq(cfg.backends[1].weight, 1);
	rh_config_finish(&cfg);
}
END_TEST

/* tests/data/contract.ini is the example from CONFIG-CONTRACT.md, which must load as written. */
START_TEST(contract_example)
{
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";

	ck_assert_msg(rh_config_load(&cfg, RH_TEST_DATA "/contract.ini", err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:6188");
	ck_assert_uint_ge(cfg.n_backends, 2);
	ck_assert_uint_eq(cfg.backends[1].weight, 3);
	ck_assert_str_eq(cfg.sni, "one.one.one.one");
	ck_assert(!cfg.tls);
	ck_assert(cfg.verify);
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_uint_eq(cfg.ca_file_line, 0);
	ck_assert_ptr_null(cfg.host_header);
	ck_assert_str_eq(cfg.admin_listen.text, "127.0.0.1:6189");
	ck_assert_int_eq(cfg.algorithm, RH_LB_ROUND_ROBIN);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_URI);
	ck_assert_uint_eq(cfg.hash_key.name_len, 0);
	ck_assert_uint_eq(cfg.hash_balance_factor, 0);
	ck_assert_uint_eq(cfg.backends[0].weight, 1);
	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_APPEND);
	ck_assert_uint_eq(cfg.max_body_size, 0);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(listen_tls_forms)
{
	struct rh_config cfg;

	/* only listen_tls: no default plain listener */
	load_ok("[server]\n\nlisten_tls = 127.0.0.1:8443\nlisten_tls = [::1]:8443\ncert = /c.pem\n" BACKEND, &cfg);
	ck_assert_uint_eq(cfg.n_listens, 0);
	ck_assert_ptr_null(cfg.listens);
	ck_assert_uint_eq(cfg.n_listens_tls, 2);
	ck_assert_str_eq(cfg.listens_tls[0].text, "127.0.0.1:8443");
	ck_assert_str_eq(cfg.listens_tls[1].text, "[::1]:8443");
	ck_assert_int_eq(cfg.listens_tls[1].ss.ss_family, AF_INET6);
	ck_assert_uint_eq(cfg.listens_tls[1].len, sizeof(struct sockaddr_in6));
	/* the line of the first */
	ck_assert_uint_eq(cfg.listen_tls_line, 3);
	rh_config_finish(&cfg);

	/* both kinds, in any order, the same port on other hosts; names resolve, passive */
	load_ok("[server]\nlisten_tls = 0.0.0.0:443\ncert = /c.pem\nlisten = 0.0.0.0:80\nlisten_tls = localhost:8443\n"
		BACKEND, &cfg);
	ck_assert_uint_eq(cfg.n_listens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:80");
	ck_assert_uint_eq(cfg.n_listens_tls, 2);
	ck_assert_str_eq(cfg.listens_tls[0].text, "0.0.0.0:443");
	ck_assert_msg(strcmp(cfg.listens_tls[1].text, "127.0.0.1:8443") == 0 ||
			      strcmp(cfg.listens_tls[1].text, "[::1]:8443") == 0,
		      "%s", cfg.listens_tls[1].text);
	ck_assert_uint_eq(cfg.listen_tls_line, 2);
	rh_config_finish(&cfg);

	/* neither: the default plain listener, no TLS one */
	load_ok("[server]\nthreads = 1\n" BACKEND, &cfg);
	ck_assert_uint_eq(cfg.n_listens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:6188");
	ck_assert_uint_eq(cfg.n_listens_tls, 0);
	rh_config_finish(&cfg);

	/* a cert without listen_tls is accepted (and unused) */
	load_ok("[server]\ncert = /c.pem\n" BACKEND, &cfg);
	ck_assert_uint_eq(cfg.n_listens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:6188");
	ck_assert_uint_eq(cfg.n_listens_tls, 0);
	ck_assert_uint_eq(cfg.n_certs, 1);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(cert_pairs)
{
	struct rh_config cfg;

	/* two pairs, a cert without key in between and at the end; keys follow their cert even across
	 * sections; the files are not read */
	load_ok("[server]\n"
		"cert = /etc/rh/default.crt\n"
		"key = /etc/rh/default.key\n"
		"cert = /etc/rh/both.pem\n"
		"listen_tls = 127.0.0.1:8443\n"
		"cert = /etc/rh/other.crt\n"
		BACKEND
		"[server]\n"
		"key = /etc/rh/other.key\n"
		"cert = /nonexistent/last.pem\n",
		&cfg);
	ck_assert_uint_eq(cfg.n_certs, 4);
	ck_assert_str_eq(cfg.certs[0].cert, "/etc/rh/default.crt");
	ck_assert_str_eq(cfg.certs[0].key, "/etc/rh/default.key");
	ck_assert_uint_eq(cfg.certs[0].cert_line, 2);
	ck_assert_uint_eq(cfg.certs[0].key_line, 3);
	ck_assert_str_eq(cfg.certs[1].cert, "/etc/rh/both.pem");
	ck_assert_str_eq(cfg.certs[1].key, "/etc/rh/both.pem");
	ck_assert_ptr_ne(cfg.certs[1].key, cfg.certs[1].cert); /* each owned */
	ck_assert_uint_eq(cfg.certs[1].cert_line, 4);
	ck_assert_uint_eq(cfg.certs[1].key_line, 4);
	ck_assert_str_eq(cfg.certs[2].cert, "/etc/rh/other.crt");
	ck_assert_str_eq(cfg.certs[2].key, "/etc/rh/other.key");
	ck_assert_uint_eq(cfg.certs[2].cert_line, 6);
	ck_assert_uint_eq(cfg.certs[2].key_line, 10);
	ck_assert_str_eq(cfg.certs[3].cert, "/nonexistent/last.pem");
	ck_assert_str_eq(cfg.certs[3].key, "/nonexistent/last.pem");
	ck_assert_uint_eq(cfg.certs[3].cert_line, 11);
	ck_assert_uint_eq(cfg.certs[3].key_line, 11);
	ck_assert_uint_eq(cfg.n_listens_tls, 1);
	ck_assert_uint_eq(cfg.n_listens, 0);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(upstream_tls)
{
	struct rh_config cfg;

	load_ok(BACKEND "sni = api.example.com\n\ntls = true\nverify = false\nca_file = /etc/rh/ca.pem\n", &cfg);
	ck_assert(cfg.tls);
	ck_assert_uint_eq(cfg.tls_line, 5);
	ck_assert_str_eq(cfg.sni, "api.example.com");
	ck_assert(!cfg.verify);
	ck_assert_str_eq(cfg.ca_file, "/etc/rh/ca.pem");
	ck_assert_uint_eq(cfg.ca_file_line, 7);
	/* health_check tls follows upstream tls */
	ck_assert(cfg.health_tls);
	ck_assert_uint_eq(cfg.cert_warn_days, 14);
	rh_config_finish(&cfg);

	/* the last tls wins, and its line is kept; an empty ca_file is the system store again; sni may
	 * be an IP address */
	load_ok(BACKEND "tls = on\nca_file = /x.pem\ntls = 0\nca_file =\nsni = 192.0.2.1\n", &cfg);
	ck_assert(!cfg.tls);
	ck_assert_uint_eq(cfg.tls_line, 5);
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_uint_eq(cfg.ca_file_line, 0);
	ck_assert_str_eq(cfg.sni, "192.0.2.1");
	ck_assert(!cfg.health_tls);
	rh_config_finish(&cfg);

	load_ok(BACKEND "sni = 2001:db8::1\n", &cfg);
	ck_assert_str_eq(cfg.sni, "2001:db8::1");
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(health_tls)
{
	struct rh_config cfg;

	/* [health_check] before [upstream]: still follows upstream tls */
	load_ok("[health_check]\ntype = tcp\n" BACKEND "tls = true\n", &cfg);
	ck_assert(cfg.tls);
	ck_assert(cfg.health_tls);
	rh_config_finish(&cfg);

	/* [health_check] after [upstream] */
	load_ok(BACKEND "tls = true\n[health_check]\nrise = 2\n", &cfg);
	ck_assert(cfg.health_tls);
	rh_config_finish(&cfg);

	/* explicit false wins over upstream tls = true, in both orders */
	load_ok(BACKEND "tls = true\n[health_check]\ntls = false\n", &cfg);
	ck_assert(cfg.tls);
	ck_assert(!cfg.health_tls);
	rh_config_finish(&cfg);
	load_ok("[health_check]\ntls = no\n" BACKEND "tls = yes\n", &cfg);
	ck_assert(cfg.tls);
	ck_assert(!cfg.health_tls);
	rh_config_finish(&cfg);

	/* explicit true without upstream tls is refused (err_cert_key), unless nothing probes */
	load_ok(BACKEND "[health_check]\ntype = none\ntls = true\n", &cfg);
	ck_assert(!cfg.tls);
	ck_assert(cfg.health_tls);
	rh_config_finish(&cfg);

	/* cert_warn_days: 0 disables, 3650 is the top */
	load_ok(BACKEND "[health_check]\ncert_warn_days = 0\n", &cfg);
	ck_assert_uint_eq(cfg.cert_warn_days, 0);
	rh_config_finish(&cfg);
	load_ok(BACKEND "[health_check]\ncert_warn_days = 3650\n", &cfg);
	ck_assert_uint_eq(cfg.cert_warn_days, 3650);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(finish_is_idempotent)
{
	struct rh_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	rh_config_finish(&cfg);
	rh_config_finish(NULL);
	load_ok(BACKEND, &cfg);
	rh_config_finish(&cfg);
	ck_assert_ptr_null(cfg.path);
	ck_assert_ptr_null(cfg.backends);
	ck_assert_uint_eq(cfg.n_backends, 0);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(algorithms)
{
	static const struct {
		const char *value;
		enum rh_lb_algorithm algorithm;
	} cases[] = {
		{"round_robin", RH_LB_ROUND_ROBIN},
		{"weighted_round_robin", RH_LB_WEIGHTED_ROUND_ROBIN},
		{"random", RH_LB_RANDOM},
		{"consistent_hash", RH_LB_CONSISTENT_HASH},
		{"least_conn", RH_LB_LEAST_CONN},
		{"least_conn ; inline comment", RH_LB_LEAST_CONN},
		{"random\t; tab before the comment", RH_LB_RANDOM},
	};
	char text[256];
	struct rh_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "algorithm = %s\n", cases[i].value);
		load_ok(text, &cfg);
		ck_assert_msg(cfg.algorithm == cases[i].algorithm, "%s: %d", cases[i].value, (int)cfg.algorithm);
		/* the hash settings stay at their defaults whatever the algorithm */
		ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_URI);
		ck_assert_uint_eq(cfg.hash_balance_factor, 0);
		rh_config_finish(&cfg);
		/* [upstream] before or after other sections, algorithm before the backends */
		snprintf(text, sizeof(text), "[server]\nthreads = 1\n[upstream]\nalgorithm = %s\nbackend = 127.0.0.1:1\n",
			 cases[i].value);
		load_ok(text, &cfg);
		ck_assert_int_eq(cfg.algorithm, cases[i].algorithm);
		rh_config_finish(&cfg);
	}
	/* the last one wins, back to the default too */
	load_ok(BACKEND "algorithm = least_conn\nalgorithm = consistent_hash\n", &cfg);
	ck_assert_int_eq(cfg.algorithm, RH_LB_CONSISTENT_HASH);
	rh_config_finish(&cfg);
	load_ok(BACKEND "algorithm = random\n[server]\nthreads = 2\n[upstream]\nalgorithm = round_robin\n", &cfg);
	ck_assert_int_eq(cfg.algorithm, RH_LB_ROUND_ROBIN);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(hash_key_values)
{
	static const struct {
		const char *value;
		enum rh_hash_key_kind kind;
		const char *name;
	} cases[] = {
		{"uri", RH_HASH_URI, ""},
		{"path", RH_HASH_PATH, ""},
		{"client_ip", RH_HASH_CLIENT_IP, ""},
		{"header:X-User", RH_HASH_HEADER, "X-User"},
		{"header:x-user", RH_HASH_HEADER, "x-user"}, /* kept as written */
		{"header:Host", RH_HASH_HEADER, "Host"},
		{"header:a", RH_HASH_HEADER, "a"},
		{"header:X-User ; inline comment", RH_HASH_HEADER, "X-User"},
		{"header:!#$%&'*+-.^_`|~09azAZ", RH_HASH_HEADER, "!#$%&'*+-.^_`|~09azAZ"},
		{"cookie:session_id", RH_HASH_COOKIE, "session_id"},
		{"cookie:SID", RH_HASH_COOKIE, "SID"},
		{"cookie:__Host-id", RH_HASH_COOKIE, "__Host-id"},
		{"cookie:uri", RH_HASH_COOKIE, "uri"},
		{"header:cookie", RH_HASH_HEADER, "cookie"},
	};
	char text[256];
	char name[RH_HASH_KEY_NAME_MAX];
	struct rh_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "algorithm = consistent_hash\nhash_key = %s\n", cases[i].value);
		load_ok(text, &cfg);
		ck_assert_int_eq(cfg.algorithm, RH_LB_CONSISTENT_HASH);
		ck_assert_msg(cfg.hash_key.kind == cases[i].kind, "%s: %d", cases[i].value, (int)cfg.hash_key.kind);
		ck_assert_str_eq(cfg.hash_key.name, cases[i].name);
		ck_assert_uint_eq(cfg.hash_key.name_len, strlen(cases[i].name));
		rh_config_finish(&cfg);
	}

	/* the longest name, RH_HASH_KEY_NAME_MAX - 1 bytes, NUL-terminated */
	memset(name, 'N', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(text, sizeof(text), BACKEND "hash_key = cookie:%s\n", name);
	load_ok(text, &cfg);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_COOKIE);
	ck_assert_uint_eq(cfg.hash_key.name_len, RH_HASH_KEY_NAME_MAX - 1);
	ck_assert_str_eq(cfg.hash_key.name, name);
	rh_config_finish(&cfg);

	/* the last one wins, and leaves nothing of an earlier name behind */
	load_ok(BACKEND "hash_key = header:X-Long-Header-Name\nhash_key = cookie:id\n", &cfg);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_COOKIE);
	ck_assert_uint_eq(cfg.hash_key.name_len, 2);
	ck_assert_mem_eq(cfg.hash_key.name, "id\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 19);
	rh_config_finish(&cfg);
	load_ok(BACKEND "hash_key = header:X-User\nhash_key = path\n", &cfg);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_PATH);
	ck_assert_uint_eq(cfg.hash_key.name_len, 0);
	ck_assert_str_eq(cfg.hash_key.name, "");
	rh_config_finish(&cfg);

	/* accepted whatever the algorithm, before or after it: switching is a one-line change */
	load_ok(BACKEND "hash_key = client_ip\n", &cfg);
	ck_assert_int_eq(cfg.algorithm, RH_LB_ROUND_ROBIN);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_CLIENT_IP);
	rh_config_finish(&cfg);
	load_ok(BACKEND "hash_key = header:X-User\nalgorithm = least_conn\n", &cfg);
	ck_assert_int_eq(cfg.algorithm, RH_LB_LEAST_CONN);
	ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_HEADER);
	ck_assert_str_eq(cfg.hash_key.name, "X-User");
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(hash_balance_factor)
{
	static const struct {
		const char *value;
		unsigned factor;
	} cases[] = {
		{"0", 0}, {"000", 0}, {"101", 101}, {"125", 125}, {"150 ; inline comment", 150}, {"200", 200},
		{"0125", 125}, {"9999", 9999}, {"10000", 10000},
	};
	char text[256];
	struct rh_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "algorithm = consistent_hash\nhash_balance_factor = %s\n",
			 cases[i].value);
		load_ok(text, &cfg);
		ck_assert_msg(cfg.hash_balance_factor == cases[i].factor, "%s: %u", cases[i].value,
			      cfg.hash_balance_factor);
		rh_config_finish(&cfg);
	}
	/* the last one wins, also back to off */
	load_ok(BACKEND "hash_balance_factor = 125\nhash_balance_factor = 0\n", &cfg);
	ck_assert_uint_eq(cfg.hash_balance_factor, 0);
	rh_config_finish(&cfg);
	/* accepted whatever the algorithm */
	static const char *const others[] = {"round_robin", "weighted_round_robin", "random", "least_conn"};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "hash_balance_factor = 150\nhash_key = cookie:sid\nalgorithm = %s\n",
			 others[i]);
		load_ok(text, &cfg);
		ck_assert_uint_eq(cfg.hash_balance_factor, 150);
		ck_assert_int_eq(cfg.hash_key.kind, RH_HASH_COOKIE);
		ck_assert_int_ne(cfg.algorithm, RH_LB_CONSISTENT_HASH);
		rh_config_finish(&cfg);
	}
}
END_TEST

START_TEST(backend_weights)
{
	struct rh_config cfg;

	/* 0 drains (no new requests) and is kept; 1000 is the top; options after spaces or tabs */
	load_ok("[upstream]\n"
		"backend = 127.0.0.1:1 weight=0\n"
		"backend = 127.0.0.1:2 weight=1000\n"
		"backend = 127.0.0.1:3\tweight=00\n"
		"backend = 127.0.0.1:4  \t weight=5 ; comment\n"
		"backend = [::1]:5 weight=1\n"
		"backend = 127.0.0.1:6\n",
		&cfg);
	ck_assert_uint_eq(cfg.n_backends, 6);
	ck_assert_uint_eq(cfg.backends[0].weight, 0);
	ck_assert_str_eq(cfg.backends[0].addr.text, "127.0.0.1:1");
	ck_assert_str_eq(cfg.backends[0].spec, "127.0.0.1:1");
	ck_assert_uint_eq(cfg.backends[0].line, 2);
	ck_assert_uint_eq(cfg.backends[1].weight, 1000);
	ck_assert_uint_eq(cfg.backends[2].weight, 0);
	ck_assert_uint_eq(cfg.backends[3].weight, 5);
	ck_assert_str_eq(cfg.backends[3].spec, "127.0.0.1:4");
	ck_assert_uint_eq(cfg.backends[4].weight, 1);
	ck_assert_uint_eq(cfg.backends[5].weight, 1);
	rh_config_finish(&cfg);

	/* every backend drained is a legitimate state, with any algorithm */
	load_ok("[upstream]\nalgorithm = weighted_round_robin\nbackend = 127.0.0.1:1 weight=0\n"
		"backend = 127.0.0.1:2 weight=0\n",
		&cfg);
	ck_assert_uint_eq(cfg.n_backends, 2);
	ck_assert_uint_eq(cfg.backends[0].weight, 0);
	ck_assert_uint_eq(cfg.backends[1].weight, 0);
	rh_config_finish(&cfg);
	load_ok("[upstream]\nalgorithm = consistent_hash\nbackend = 127.0.0.1:1 weight=0\n", &cfg);
	ck_assert_uint_eq(cfg.n_backends, 1);
	ck_assert_uint_eq(cfg.backends[0].weight, 0);
	rh_config_finish(&cfg);

	/* a name drains each of its addresses */
	load_ok("[upstream]\nbackend = localhost:8082 weight=0\n", &cfg);
	ck_assert_uint_ge(cfg.n_backends, 1);
	for (size_t i = 0; i < cfg.n_backends; i++) {
		ck_assert_uint_eq(cfg.backends[i].weight, 0);
		ck_assert_str_eq(cfg.backends[i].spec, "localhost:8082");
	}
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(err_unknown_key)
{
	load_err("[server]\nthreads = 2\nbogus = 1\n" BACKEND,
		 ":3: server.bogus: unknown key (valid in [server]: listen, threads, max_connections, listen_tls, cert, "
		 "key, user, group)");
	load_err(BACKEND "[health_check]\ncert_warn = 1\n",
		 ":4: health_check.cert_warn: unknown key (valid in [health_check]: type, frequency, timeout, rise, fall, "
		 "path, expect, tls, cert_warn_days, host, passive, initial, jitter)");
	load_err(BACKEND "weight = 2\n",
		 ":3: upstream.weight: unknown key (valid in [upstream]: algorithm, hash_key, hash_balance_factor, "
		 "backend, max_iterations, keepalive, host_header, tls, sni, verify, ca_file, x_forwarded_for, retries, splice, queue_timeout, resolve, resolver)");
	load_err(BACKEND "[limits]\nmax_body = 1m\n",
		 ":4: limits.max_body: unknown key (valid in [limits]: max_body_size)");
	/* names are case-sensitive */
	load_err(BACKEND "[timeouts]\nConnect = 1s\n",
		 ":4: timeouts.Connect: unknown key (valid in [timeouts]: connect, client_header, upstream_read, idle, "
		 "shutdown)");
}
END_TEST

START_TEST(err_unknown_section)
{
	load_err(BACKEND "\n[bogus]\nx = 1\n",
		 ":4: [bogus]: unknown section (valid: server, upstream, health_check, timeouts, limits, admin, log)");
	/* caught at the header even without keys */
	load_err(BACKEND "[health-check] ; typo\n",
		 ":3: [health-check]: unknown section (valid: server, upstream, health_check, timeouts, limits, admin, log)");
	/* an indented header is reported at its first key */
	load_err("  [bogus]\n\nx = 1\n" BACKEND,
		 ":3: [bogus]: unknown section (valid: server, upstream, health_check, timeouts, limits, admin, log)");
}
END_TEST

START_TEST(err_key_outside_section)
{
	load_err("threads = 2\n" BACKEND, ":1: threads: key outside any [section]");
	load_err("; comment\n\nbackend = 127.0.0.1:1\n", ":3: backend: key outside any [section]");
}
END_TEST

START_TEST(err_bad_duration)
{
	load_err(BACKEND "[timeouts]\nconnect = 5x\n",
		 ":4: timeouts.connect: bad duration '5x': unknown unit (use ms, s, m or h)");
	load_err(BACKEND "[timeouts]\nidle = -1s\n", ":4: timeouts.idle: bad duration '-1s': negative duration");
	load_err(BACKEND "[timeouts]\nshutdown = 0\n", ":4: timeouts.shutdown: '0' is too short (at least 1ms)");
	load_err(BACKEND "[timeouts]\nupstream_read = 5000000s\n",
		 ":4: timeouts.upstream_read: bad duration '5000000s': too large (max 4294967295ms)");
	load_err(BACKEND "[health_check]\nfrequency = 9ms\n",
		 ":4: health_check.frequency: '9ms' is too short (at least 10ms)");
	load_err(BACKEND "[health_check]\ntimeout = 0ms\n",
		 ":4: health_check.timeout: '0ms' is too short (at least 1ms)");
	load_err(BACKEND "[timeouts]\nclient_header =\n", ":4: timeouts.client_header: missing value");
}
END_TEST

START_TEST(err_bad_bool)
{
	load_err(BACKEND "verify = maybe\n",
		 ":3: upstream.verify: 'maybe': not a boolean (use true/false, yes/no, on/off, 1/0)");
	load_err(BACKEND "tls = 2\n", ":3: upstream.tls: '2': not a boolean (use true/false, yes/no, on/off, 1/0)");
	load_err(BACKEND "tls =\n", ":3: upstream.tls: missing value");
	load_err(BACKEND "[health_check]\ntls = sometimes\n",
		 ":4: health_check.tls: 'sometimes': not a boolean (use true/false, yes/no, on/off, 1/0)");
	load_err(BACKEND "[health_check]\ntls =\n", ":4: health_check.tls: missing value");
}
END_TEST

START_TEST(err_int_range)
{
	load_err("[server]\nthreads = 1025\n" BACKEND, ":2: server.threads: '1025': out of range (0..1024)");
	load_err("[server]\nmax_connections = 0\n" BACKEND,
		 ":2: server.max_connections: '0': out of range (1..10000000)");
	load_err("[server]\nmax_connections = 10000001\n" BACKEND,
		 ":2: server.max_connections: '10000001': out of range (1..10000000)");
	load_err(BACKEND "max_iterations = 0\n", ":3: upstream.max_iterations: '0': out of range (1..1000000)");
	load_err(BACKEND "keepalive = 100001\n", ":3: upstream.keepalive: '100001': out of range (0..100000)");
	load_err(BACKEND "keepalive = -1\n", ":3: upstream.keepalive: '-1': negative number (0..100000)");
	load_err(BACKEND "keepalive = 12abc\n",
		 ":3: upstream.keepalive: '12abc': not a number (trailing characters) (0..100000)");
	load_err(BACKEND "[health_check]\nrise = 0\n", ":4: health_check.rise: '0': out of range (1..1000)");
	load_err(BACKEND "[health_check]\nfall = 1001\n", ":4: health_check.fall: '1001': out of range (1..1000)");
	load_err(BACKEND "[health_check]\ncert_warn_days = 3651\n",
		 ":4: health_check.cert_warn_days: '3651': out of range (0..3650)");
	load_err(BACKEND "[health_check]\ncert_warn_days = -1\n",
		 ":4: health_check.cert_warn_days: '-1': negative number (0..3650)");
	load_err(BACKEND "[health_check]\ncert_warn_days =\n", ":4: health_check.cert_warn_days: missing value");
	load_err("[server]\nthreads =\n" BACKEND, ":2: server.threads: missing value");
}
END_TEST

START_TEST(err_bad_hostport)
{
	load_err("[server]\nlisten = ::1:80\n" BACKEND,
		 ":2: server.listen: bad address '::1:80': IPv6 address needs brackets, e.g. [::1]:80");
	load_err("[server]\nlisten = 0.0.0.0\n" BACKEND,
		 ":2: server.listen: bad address '0.0.0.0': missing port (expected host:port)");
	load_err("[server]\nlisten = 0.0.0.0:0\n" BACKEND,
		 ":2: server.listen: bad address '0.0.0.0:0': port must be a number from 1 to 65535");
	load_err("[server]\nlisten = [::1:80\n" BACKEND,
		 ":2: server.listen: bad address '[::1:80': unbalanced '[' (expected [v6addr]:port)");
	load_err("[server]\nlisten =\n" BACKEND, ":2: server.listen: missing value");
	load_err("[upstream]\nbackend = :8081\n", ":2: upstream.backend: bad address ':8081': empty host");
	load_err("[upstream]\nbackend = 127.0.0.1:65536\n",
		 ":2: upstream.backend: bad address '127.0.0.1:65536': port must be a number from 1 to 65535");
	load_err(BACKEND "[admin]\nlisten = localhost\n",
		 ":4: admin.listen: bad address 'localhost': missing port (expected host:port)");
	load_err("[server]\nlisten = 127.0.0.1:80\nlisten = 127.0.0.1:80\n" BACKEND,
		 ":3: server.listen: duplicate listen address 127.0.0.1:80");
	load_err_prefix("[server]\nlisten = 256.0.0.1:80\n" BACKEND, ":2: server.listen: cannot resolve '256.0.0.1': ");
}
END_TEST

START_TEST(err_unresolvable)
{
	load_err_prefix("[upstream]\nbackend = 127.0.0.1:1\n\nbackend = nohost.invalid:80\n",
			":4: upstream.backend: cannot resolve 'nohost.invalid': ");
	load_err_prefix(BACKEND "[admin]\nlisten = nohost.invalid:80\n",
			":4: admin.listen: cannot resolve 'nohost.invalid': ");
}
END_TEST

/* With [upstream] resolve set (before or after the backend lines) a name that does not resolve does
 * not stop the load: it is recorded with the reason, without addresses, and the others load. */
START_TEST(resolve_tolerates_unresolved_names)
{
	struct rh_config cfg;

	load_ok("[upstream]\nbackend = nohost.invalid:80 weight=3 max_conns=7\nbackend = 127.0.0.1:1\n"
		"resolve = 30s\n",
		&cfg);
	ck_assert_uint_eq(cfg.resolve_ms, 30000);
	ck_assert_uint_eq(cfg.n_names, 2);
	ck_assert_uint_eq(cfg.n_backends, 1);
	ck_assert_str_eq(cfg.backends[0].addr.text, "127.0.0.1:1");
	ck_assert_uint_eq(cfg.backends[0].name, 1);
	ck_assert_str_eq(cfg.names[0].host, "nohost.invalid");
	ck_assert_uint_eq(cfg.names[0].port, 80);
	ck_assert_uint_eq(cfg.names[0].weight, 3);
	ck_assert_uint_eq(cfg.names[0].max_conns, 7);
	ck_assert_uint_eq(cfg.names[0].line, 2);
	ck_assert(!cfg.names[0].numeric);
	ck_assert_msg(strncmp(cfg.names[0].unresolved, "cannot resolve 'nohost.invalid': ", 33) == 0, "%s",
		      cfg.names[0].unresolved);
	ck_assert(cfg.names[1].numeric);
	ck_assert_str_eq(cfg.names[1].unresolved, "");
	rh_config_finish(&cfg);

	/* every name unresolved: the proxy starts with no backend and keeps asking */
	load_ok("[upstream]\nresolve = 1s\nbackend = nohost.invalid:80\n", &cfg);
	ck_assert_uint_eq(cfg.n_backends, 0);
	ck_assert_uint_eq(cfg.n_names, 1);
	rh_config_finish(&cfg);

	load_ok("[upstream]\nbackend = 127.0.0.1:1 max_conns=2\nresolver = 127.0.0.1:5353\n"
		"[health_check]\ntype = http\nhost = app.example\npassive = false\ninitial = down\njitter = 0\n",
		&cfg);
	ck_assert_uint_eq(cfg.backends[0].max_conns, 2);
	ck_assert_str_eq(cfg.resolver.text, "127.0.0.1:5353");
	ck_assert_int_eq(cfg.health_type, RH_HEALTH_HTTP);
	ck_assert_str_eq(cfg.health_host, "app.example");
	ck_assert(!cfg.passive);
	ck_assert(cfg.initial_down);
	ck_assert_uint_eq(cfg.jitter_pct, 0);
	rh_config_finish(&cfg);
}
END_TEST

/* rh_config_print (roundhouse -T) writes a file this loader reads back to the same configuration:
 * printing what the printed text loads gives the same text again, and the values survive. */
static char *
print_to_string(const struct rh_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	rh_config_print(cfg, f);
	ck_assert_int_eq(fclose(f), 0);
	return text;
}

START_TEST(print_round_trip)
{
	static const char *const files[] = {
		"[upstream]\nbackend = 127.0.0.1:1\n",
		("[server]\nlisten = 127.0.0.1:7000\nlisten = [::1]:7001\nthreads = 3\nmax_connections = 900\n"
		 "[upstream]\nalgorithm = consistent_hash\nhash_key = header:X-User\nhash_balance_factor = 150\n"
		 "backend = localhost:8081 weight=3 max_conns=40\nbackend = 127.0.0.1:8082 weight=0\n"
		 "max_iterations = 9\nkeepalive = 0\nhost_header = example.com\ntls = true\nsni = b.example\n"
		 "verify = false\nca_file = /etc/ssl/x.pem\nx_forwarded_for = replace\nretries = 5\n"
		 "queue_timeout = 2500ms\nresolve = 30s\nresolver = 127.0.0.1:8600\n"
		 "[health_check]\ntype = http\nfrequency = 1s\ntimeout = 300ms\nrise = 2\nfall = 3\n"
		 "path = /healthz?x=1\nexpect = 204\nhost = h.example\npassive = false\ninitial = down\n"
		 "jitter = 0\ntls = true\ncert_warn_days = 30\n"
		 "[timeouts]\nconnect = 1s\nclient_header = 2s\nupstream_read = 3s\nidle = 4s\nshutdown = 5s\n"
		 "[limits]\nmax_body_size = 1m\n[admin]\nlisten = 127.0.0.1:6189\n"),
		("[upstream]\nhash_key = cookie:sid\nbackend = nohost.invalid:80\nbackend = 127.0.0.1:1\n"
		 "resolve = 1s\n"),
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct rh_config a, b;
		char err[RH_CONFIG_ERR_LEN];

		load_ok(files[i], &a);
		char *first = print_to_string(&a);
		ck_assert_msg(rh_config_load_buffer(&b, "printed", first, strlen(first), 0, err, sizeof(err)) == 0,
			      "file %zu: the printed configuration does not load: %s\n%s", i, err, first);
		char *second = print_to_string(&b);
		/* the first line names the file printed from */
		ck_assert_str_eq(strchr(first, '\n'), strchr(second, '\n'));
		ck_assert_uint_eq(a.n_backends, b.n_backends);
		ck_assert_uint_eq(a.n_names, b.n_names);
		ck_assert_uint_eq(a.resolve_ms, b.resolve_ms);
		ck_assert_uint_eq(a.health_type, b.health_type);
		ck_assert_uint_eq(a.max_body_size, b.max_body_size);
		for (size_t j = 0; j < a.n_backends; j++) {
			ck_assert_str_eq(a.backends[j].addr.text, b.backends[j].addr.text);
			ck_assert_uint_eq(a.backends[j].weight, b.backends[j].weight);
			ck_assert_uint_eq(a.backends[j].max_conns, b.backends[j].max_conns);
		}
		if (i == 1) {
			ck_assert(strstr(first, "backend = localhost:8081 weight=3 max_conns=40  ; 127.0.0.1:8081") != NULL ||
				  strstr(first, "backend = localhost:8081 weight=3 max_conns=40  ; ") != NULL);
			ck_assert(strstr(first, "\nhash_key = header:X-User\n") != NULL);
			ck_assert(strstr(first, "\nexpect = 204\n") != NULL);
			ck_assert(strstr(first, "\nmax_body_size = 1048576\n") != NULL);
		}
		if (i == 2)
			ck_assert(strstr(first, "backend = nohost.invalid:80 weight=1  ; cannot resolve 'nohost.invalid'") !=
				  NULL);
		free(first);
		free(second);
		rh_config_finish(&a);
		rh_config_finish(&b);
	}
}
END_TEST

START_TEST(err_weight)
{
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=1001\n",
		 ":2: upstream.backend: bad weight '1001': out of range (0..1000, 0 drains)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=\n",
		 ":2: upstream.backend: bad weight '': empty number (0..1000, 0 drains)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=-1\n",
		 ":2: upstream.backend: bad weight '-1': negative number (0..1000, 0 drains)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=2x\n",
		 ":2: upstream.backend: bad weight '2x': not a number (trailing characters) (0..1000, 0 drains)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=99999999999999999999\n",
		 ":2: upstream.backend: bad weight '99999999999999999999': out of range (0..1000, 0 drains)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight = 2\n",
		 ":2: upstream.backend: unknown option 'weight = 2' (expected weight=N or max_conns=N)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 backup\n",
		 ":2: upstream.backend: unknown option 'backup' (expected weight=N or max_conns=N)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=2 backup\n",
		 ":2: upstream.backend: unknown option 'backup' (expected weight=N or max_conns=N)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 Weight=2\n",
		 ":2: upstream.backend: unknown option 'Weight=2' (expected weight=N or max_conns=N)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=2 weight=3\n",
		 ":2: upstream.backend: weight given twice");
	load_err("[upstream]\nbackend = 127.0.0.1:1 weight=0\tweight=0\n",
		 ":2: upstream.backend: weight given twice");
	load_err("[upstream]\nbackend = 127.0.0.1:1 max_conns=0\n",
		 ":2: upstream.backend: bad max_conns '0': out of range (1..1000000)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 max_conns=\n",
		 ":2: upstream.backend: bad max_conns '': empty number (1..1000000)");
	load_err("[upstream]\nbackend = 127.0.0.1:1 max_conns=2 max_conns=3\n",
		 ":2: upstream.backend: max_conns given twice");
}
END_TEST

START_TEST(err_algorithm)
{
	static const char *const bad[] = {
		"fastest", "roundrobin", "round-robin", "Round_Robin", "LEAST_CONN", "leastconn", "least_connections",
		"wrr", "weighted", "consistent", "hash", "consistent_hash(uri)", "random(2)", "round_robin,random",
	};
	char text[256], want[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "algorithm = %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 ":3: upstream.algorithm: unknown algorithm '%s' (valid: round_robin, weighted_round_robin, "
			 "random, consistent_hash, least_conn)",
			 bad[i]);
		load_err(text, want);
	}
	load_err(BACKEND "\nalgorithm =\n", ":4: upstream.algorithm: missing value");
	/* a good one does not excuse a later bad one */
	load_err(BACKEND "algorithm = random\nalgorithm = rand\n",
		 ":4: upstream.algorithm: unknown algorithm 'rand' (valid: round_robin, weighted_round_robin, random, "
		 "consistent_hash, least_conn)");
	/* only in [upstream] */
	load_err(BACKEND "[server]\nalgorithm = random\n",
		 ":4: server.algorithm: unknown key (valid in [server]: listen, threads, max_connections, listen_tls, "
		 "cert, key, user, group)");
}
END_TEST

START_TEST(err_hash_key)
{
	static const char *const unknown[] = {
		"url", "URI", "Path", "client-ip", "clientip", "ip", "src", "query", "host",
		"header", "cookie", "header=X-User", "Header:X-User", "COOKIE:sid", "hdr(X-User)", "param:id",
	};
	char text[256], want[512];
	char name[RH_HASH_KEY_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "hash_key = %s\n", unknown[i]);
		snprintf(want, sizeof(want),
			 ":3: upstream.hash_key: unknown hash key '%s' (valid: uri, path, client_ip, header:NAME, "
			 "cookie:NAME)",
			 unknown[i]);
		load_err(text, want);
	}
	load_err(BACKEND "hash_key = header:\n",
		 ":3: upstream.hash_key: 'header:': NAME must be a non-empty header name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = cookie:\n",
		 ":3: upstream.hash_key: 'cookie:': NAME must be a non-empty cookie name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = header:X User\n",
		 ":3: upstream.hash_key: 'header:X User': NAME must be a non-empty header name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = header: X-User\n",
		 ":3: upstream.hash_key: 'header: X-User': NAME must be a non-empty header name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = header:X:Y\n",
		 ":3: upstream.hash_key: 'header:X:Y': NAME must be a non-empty header name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = cookie:a=b\n",
		 ":3: upstream.hash_key: 'cookie:a=b': NAME must be a non-empty cookie name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = cookie:a;b\n",
		 ":3: upstream.hash_key: 'cookie:a;b': NAME must be a non-empty cookie name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = header:(X)\n",
		 ":3: upstream.hash_key: 'header:(X)': NAME must be a non-empty header name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = header:caf\xc3\xa9\n",
		 ":3: upstream.hash_key: 'header:caf\xc3\xa9': NAME must be a non-empty header name (letters, digits "
		 "and !#$%&'*+-.^_`|~)");
	load_err(BACKEND "hash_key = cookie:a\x01\n",
		 ":3: upstream.hash_key: 'cookie:a\x01': NAME must be a non-empty cookie name (letters, digits and "
		 "!#$%&'*+-.^_`|~)");
	/* at most RH_HASH_KEY_NAME_MAX - 1 bytes */
	memset(name, 'n', RH_HASH_KEY_NAME_MAX);
	name[RH_HASH_KEY_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), BACKEND "hash_key = header:%s\n", name);
	snprintf(want, sizeof(want), ":3: upstream.hash_key: 'header:%s': header name too long (64 bytes, at most 63)",
		 name);
	load_err(text, want);
	snprintf(text, sizeof(text), BACKEND "hash_key = cookie:%s\n", name);
	snprintf(want, sizeof(want), ":3: upstream.hash_key: 'cookie:%s': cookie name too long (64 bytes, at most 63)",
		 name);
	load_err(text, want);
	snprintf(text, sizeof(text), BACKEND "hash_key = cookie:%s%s\n", name, name);
	snprintf(want, sizeof(want),
		 ":3: upstream.hash_key: 'cookie:%s%s': cookie name too long (128 bytes, at most 63)", name, name);
	load_err(text, want);
	load_err(BACKEND "hash_key =\n", ":3: upstream.hash_key: missing value");
	/* only in [upstream] */
	load_err(BACKEND "[health_check]\nhash_key = uri\n",
		 ":4: health_check.hash_key: unknown key (valid in [health_check]: type, frequency, timeout, rise, "
		 "fall, path, expect, tls, cert_warn_days, host, passive, initial, jitter)");
}
END_TEST

START_TEST(err_hash_balance_factor)
{
	static const struct {
		const char *value;
		const char *why;
	} range[] = {
		{"10001", "out of range"},
		{"4294967396", "out of range"},
		{"99999999999999999999999", "out of range"},
		{"-1", "negative number"},
		{"-125", "negative number"},
		{"+125", "not a number"},
		{"1.25", "not a number (trailing characters)"},
		{"125%", "not a number (trailing characters)"},
		{"125 %", "not a number (trailing characters)"},
		{"0x7d", "not a number (trailing characters)"},
		{"off", "not a number"},
		{"on", "not a number"},
	};
	static const char *const low[] = {"1", "50", "99", "100", "0100", "001"};
	char text[256], want[512];

	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "hash_balance_factor = %s\n", range[i].value);
		snprintf(want, sizeof(want), ":3: upstream.hash_balance_factor: '%s': %s (0 = off, or 101..10000)",
			 range[i].value, range[i].why);
		load_err(text, want);
	}
	for (size_t i = 0; i < sizeof(low) / sizeof(low[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "algorithm = consistent_hash\nhash_balance_factor = %s\n", low[i]);
		snprintf(want, sizeof(want),
			 ":4: upstream.hash_balance_factor: '%s': must be 0 (off) or above 100, e.g. 125 (a percent of "
			 "the mean load: at 100 or less every backend may be full)",
			 low[i]);
		load_err(text, want);
	}
	load_err(BACKEND "hash_balance_factor =\n", ":3: upstream.hash_balance_factor: missing value");
	load_err(BACKEND "[limits]\nhash_balance_factor = 125\n",
		 ":4: limits.hash_balance_factor: unknown key (valid in [limits]: max_body_size)");
}
END_TEST

START_TEST(err_listen_tls)
{
	load_err("[server]\nlisten = 127.0.0.1:8443\nlisten_tls = 127.0.0.1:8443\ncert = /c.pem\n" BACKEND,
		 ":3: server.listen_tls: duplicate listen address 127.0.0.1:8443");
	load_err("[server]\ncert = /c.pem\nlisten_tls = [::1]:8443\nlisten = [::1]:8443\n" BACKEND,
		 ":4: server.listen: duplicate listen address [::1]:8443");
	load_err("[server]\ncert = /c.pem\nlisten_tls = 127.0.0.1:8443\nlisten_tls = 127.0.0.1:8443\n" BACKEND,
		 ":4: server.listen_tls: duplicate listen address 127.0.0.1:8443");
	load_err("[server]\nlisten_tls = ::1:443\n" BACKEND,
		 ":2: server.listen_tls: bad address '::1:443': IPv6 address needs brackets, e.g. [::1]:80");
	load_err("[server]\nlisten_tls =\n" BACKEND, ":2: server.listen_tls: missing value");
	load_err_prefix("[server]\ncert = /c.pem\nlisten_tls = nohost.invalid:443\n" BACKEND,
			":3: server.listen_tls: cannot resolve 'nohost.invalid': ");

	/* no certificate: named at the first listen_tls line, found once the whole file is read */
	load_err("[server]\nlisten = 127.0.0.1:80\n\nlisten_tls = 127.0.0.1:443\nlisten_tls = 127.0.0.1:444\n" BACKEND,
		 ":4: server.listen_tls: needs a certificate (server.cert)");
	load_err(BACKEND "[server]\nlisten_tls = 0.0.0.0:443\nkey = /k.pem\n",
		 ":5: server.key: no server.cert before it (each key follows its cert)");
}
END_TEST

START_TEST(err_cert_key)
{
	load_err("[server]\nkey = /k.pem\ncert = /c.pem\n" BACKEND,
		 ":2: server.key: no server.cert before it (each key follows its cert)");
	load_err("[server]\ncert = /c.pem\nkey = /k.pem\nlisten_tls = 0.0.0.0:443\nkey = /k2.pem\n" BACKEND,
		 ":5: server.key: the cert on line 2 already has a key (line 3)");
	load_err("[server]\ncert = /a.pem\ncert = /c.pem\nkey = /k.pem\nkey = /k.pem\n" BACKEND,
		 ":5: server.key: the cert on line 3 already has a key (line 4)");
	load_err("[server]\ncert =\n" BACKEND, ":2: server.cert: missing value");
	/* a TLS probe of a plain backend can only fail */
	load_err(BACKEND "[health_check]\ntls = true\n",
		 ":4: health_check.tls: probes speak TLS only to TLS backends (set upstream.tls = true)");
	load_err("[server]\ncert = /c.pem\nkey =\n" BACKEND, ":3: server.key: missing value");
	/* an error after some certs were taken frees them (LSan checks) */
	load_err("[server]\ncert = /a.pem\nkey = /a.key\ncert = /b.pem\nlisten_tls = 0.0.0.0:443\n" BACKEND
		 "tls = bad\n",
		 ":8: upstream.tls: 'bad': not a boolean (use true/false, yes/no, on/off, 1/0)");
	load_err("[server]\ncert = /a.pem\nlisten_tls = 0.0.0.0:443\n", ": upstream.backend: no backends configured");
}
END_TEST

START_TEST(err_sni)
{
	load_err(BACKEND "sni = a b\n",
		 ":3: upstream.sni: 'a b': space, control or non-ASCII character (expected a host name)");
	load_err(BACKEND "sni = host\x01name\n",
		 ":3: upstream.sni: 'host\x01name': space, control or non-ASCII character (expected a host name)");
	load_err(BACKEND "sni = caf\xc3\xa9.example\n",
		 ":3: upstream.sni: 'caf\xc3\xa9.example': space, control or non-ASCII character (expected a host name)");
	load_err(BACKEND "sni = a\x7f\n",
		 ":3: upstream.sni: 'a\x7f': space, control or non-ASCII character (expected a host name)");
}
END_TEST

START_TEST(err_other_values)
{
	load_err(BACKEND "host_header = a b\n", ":3: upstream.host_header: space or control character in 'a b'");
	load_err(BACKEND "[health_check]\ninitial = maybe\n",
		 ":4: health_check.initial: unknown state 'maybe' (valid: up, down)");
	load_err(BACKEND "[health_check]\nhost = a b\n", ":4: health_check.host: space or control character in 'a b'");
	load_err(BACKEND "[health_check]\njitter = 51\n", ":4: health_check.jitter: '51': out of range (0..50)");
	load_err(BACKEND "retries = 11\n", ":3: upstream.retries: '11': out of range (0..10)");
	load_err(BACKEND "queue_timeout = 0\n", ":3: upstream.queue_timeout: '0' is too short (at least 1ms)");
	load_err(BACKEND "resolve = 50ms\n", ":3: upstream.resolve: '50ms' is too short (at least 100ms, or 0)");
	load_err(BACKEND "resolver = localhost:53\n",
		 ":3: upstream.resolver: 'localhost' is not a numeric address (names are not resolved here)");
	load_err(BACKEND "resolver = 127.0.0.1\n",
		 ":3: upstream.resolver: bad address '127.0.0.1': missing port (expected host:port)");
	load_err(BACKEND "[health_check]\ntype = udp\n",
		 ":4: health_check.type: unknown type 'udp' (valid: tcp, http, none)");
	load_err(BACKEND "[health_check]\npath = health\n", ":4: health_check.path: 'health' must start with '/'");
	load_err(BACKEND "[health_check]\nexpect = 99\n",
		 ":4: health_check.expect: bad status '99': out of range (100..599)");
	load_err(BACKEND "[health_check]\nexpect = 399-200\n",
		 ":4: health_check.expect: bad status range '399-200': low end above high end");
	load_err(BACKEND "[health_check]\nexpect = 200-600\n",
		 ":4: health_check.expect: bad status range '200-600' (expected e.g. 200-399, each 100..599)");
	load_err(BACKEND "[health_check]\nexpect = 2xx\n",
		 ":4: health_check.expect: bad status '2xx': not a number (trailing characters) (100..599)");
}
END_TEST

START_TEST(log_section)
{
	struct rh_config cfg;

	load_ok(BACKEND "[log]\nlevel = warn\naccess = /var/log/rh.log\n[server]\nuser = nobody\ngroup = nogroup\n", &cfg);
	ck_assert_uint_eq(cfg.log_level, RH_CONFIG_LOG_WARN);
	ck_assert_str_eq(cfg.access_log, "/var/log/rh.log");
	ck_assert_str_eq(cfg.user, "nobody");
	ck_assert_str_eq(cfg.group, "nogroup");
	rh_config_finish(&cfg);
	load_ok(BACKEND "[log]\naccess = off\n", &cfg);
	ck_assert_ptr_null(cfg.access_log);
	ck_assert_uint_eq(cfg.log_level, RH_CONFIG_LOG_INFO);
	rh_config_finish(&cfg);
	load_err(BACKEND "[log]\nlevel = verbose\n",
		 ":4: log.level: unknown level 'verbose' (valid: debug, info, warn, error)");
	load_err(BACKEND "[log]\naccess = access.log\n",
		 ":4: log.access: 'access.log': an absolute path or off (a relative one would depend on the "
		 "working directory)");
	load_err(BACKEND "[server]\nuser = a b\n", ":4: server.user: 'a b': not a user or group name");
}
END_TEST

START_TEST(err_x_forwarded_for)
{
	load_err(BACKEND "x_forwarded_for = add\n",
		 ":3: upstream.x_forwarded_for: unknown mode 'add' (valid: append, replace, off)");
	/* values are case-sensitive, like every other keyword value */
	load_err(BACKEND "x_forwarded_for = Append\n",
		 ":3: upstream.x_forwarded_for: unknown mode 'Append' (valid: append, replace, off)");
	load_err(BACKEND "x_forwarded_for = false\n",
		 ":3: upstream.x_forwarded_for: unknown mode 'false' (valid: append, replace, off)");
	load_err(BACKEND "\nx_forwarded_for =\n", ":4: upstream.x_forwarded_for: missing value");
	/* only in [upstream] */
	load_err(BACKEND "[server]\nx_forwarded_for = off\n",
		 ":4: server.x_forwarded_for: unknown key (valid in [server]: listen, threads, max_connections, listen_tls, "
		 "cert, key, user, group)");
}
END_TEST

START_TEST(err_max_body_size)
{
	static const struct {
		const char *value;
		const char *why;
	} cases[] = {
		{"-1", "negative size"},
		{"-0", "negative size"},
		{"+5", "not a number (expected bytes, or a number with k, m or g, e.g. 10m)"},
		{"k", "not a number (expected bytes, or a number with k, m or g, e.g. 10m)"},
		{"unlimited", "not a number (expected bytes, or a number with k, m or g, e.g. 10m)"},
		{"1.5m", "fractions are not supported (use a smaller unit)"},
		{"1,5m", "fractions are not supported (use a smaller unit)"},
		{"10mb", "unknown unit (use k, m or g, or none for bytes)"},
		{"10b", "unknown unit (use k, m or g, or none for bytes)"},
		{"10t", "unknown unit (use k, m or g, or none for bytes)"},
		{"10 m", "unknown unit (use k, m or g, or none for bytes)"},
		{"10kk", "unknown unit (use k, m or g, or none for bytes)"},
		{"0x10", "unknown unit (use k, m or g, or none for bytes)"},
		{"1e6", "unknown unit (use k, m or g, or none for bytes)"},
		/* 2^53 + 1, and one more unit than the top in each */
		{"9007199254740993", "too large (at most 9007199254740992 bytes, 8388608g)"},
		{"8796093022209k", "too large (at most 9007199254740992 bytes, 8388608g)"},
		{"8589934593m", "too large (at most 9007199254740992 bytes, 8388608g)"},
		{"8388609g", "too large (at most 9007199254740992 bytes, 8388608g)"},
		/* beyond 64 bits: no wrap-around */
		{"18446744073709551617", "too large (at most 9007199254740992 bytes, 8388608g)"},
		{"99999999999999999999999999999999k", "too large (at most 9007199254740992 bytes, 8388608g)"},
		{"17179869184g", "too large (at most 9007199254740992 bytes, 8388608g)"},
	};
	char text[256], want[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), BACKEND "[limits]\nmax_body_size = %s\n", cases[i].value);
		snprintf(want, sizeof(want), ":4: limits.max_body_size: bad size '%s': %s", cases[i].value, cases[i].why);
		load_err(text, want);
	}
	load_err("[limits]\nmax_body_size =\n" BACKEND, ":2: limits.max_body_size: missing value");
	/* only in [limits] */
	load_err(BACKEND "max_body_size = 1m\n",
		 ":3: upstream.max_body_size: unknown key (valid in [upstream]: algorithm, hash_key, "
		 "hash_balance_factor, backend, max_iterations, keepalive, host_header, tls, sni, verify, ca_file, "
		 "x_forwarded_for, retries, splice, queue_timeout, resolve, resolver)");
	load_err(BACKEND "[limit]\nmax_body_size = 1m\n",
		 ":3: [limit]: unknown section (valid: server, upstream, health_check, timeouts, limits, admin, log)");
}
END_TEST

START_TEST(err_no_backends)
{
	load_err("[server]\nthreads = 1\n", ": upstream.backend: no backends configured");
	load_err("", ": upstream.backend: no backends configured");
	load_err("[upstream]\n", ": upstream.backend: no backends configured");
}
END_TEST

START_TEST(err_syntax)
{
	load_err(BACKEND "junk\n", ":3: syntax error: expected '[section]' or 'key = value'");
	load_err(BACKEND "[server\nthreads = 1\n", ":3: syntax error: expected '[section]' or 'key = value'");
	/* the first error wins, whoever finds it */
	load_err(BACKEND "junk\nbogus = 1\n", ":3: syntax error: expected '[section]' or 'key = value'");
	load_err(BACKEND "bogus = 1\njunk\n",
		 ":3: upstream.bogus: unknown key (valid in [upstream]: algorithm, hash_key, hash_balance_factor, "
		 "backend, max_iterations, keepalive, host_header, tls, sni, verify, ca_file, x_forwarded_for, retries, splice, queue_timeout, resolve, resolver)");
}
END_TEST

START_TEST(err_long_line)
{
	struct rh_config cfg;
	char text[1024];
	char name[200];

	/* 199 characters before the newline fit: a comment and a value */
	memset(name, 'c', 198);
	name[198] = '\0';
	snprintf(text, sizeof(text), BACKEND ";%s\nhost_header = %.185s\n", name, name);
	ck_assert_uint_eq(strlen("host_header = ") + 185, 199);
	load_ok(text, &cfg);
	ck_assert_uint_eq(strlen(cfg.host_header), 185);
	rh_config_finish(&cfg);

	/* 200 do not, even in a comment, and even with CRLF */
	snprintf(text, sizeof(text), BACKEND ";%sc\nthreads = 1\n", name);
	load_err(text, ":3: line longer than 200 bytes (inih limit)");
	snprintf(text, sizeof(text), BACKEND "\r\n\r\n;%sc\r\n", name);
	load_err(text, ":5: line longer than 200 bytes (inih limit)");
	/* inih alone would parse the tail "x = y" as a key of its own */
	snprintf(text, sizeof(text), "[upstream]\n;%s x = y\n" BACKEND, name);
	load_err(text, ":2: line longer than 200 bytes (inih limit)");
	/* a 199-byte last line without a newline fits too */
	snprintf(text, sizeof(text), BACKEND ";%s", name);
	load_ok(text, &cfg);
	rh_config_finish(&cfg);
}
END_TEST

START_TEST(err_unreadable)
{
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN];

	ck_assert_int_eq(rh_config_load(&cfg, "/nonexistent/roundhouse.ini", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/roundhouse.ini: cannot open: No such file or directory");
	ck_assert_ptr_null(cfg.path);
	ck_assert_int_eq(rh_config_load(&cfg, "/tmp", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
	/* a short buffer gets a truncated, terminated message */
	ck_assert_int_eq(rh_config_load(&cfg, "/nonexistent/roundhouse.ini", err, 8), -1);
	ck_assert_str_eq(err, "/nonexi");
	/* an endless line is refused after a few hundred bytes, not read into memory whole */
	ck_assert_int_eq(rh_config_load(&cfg, "/dev/zero", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/dev/zero:1: NUL byte in line (not a text file?)");
	FILE *yes = popen("yes x | tr -d '\\n' 2>/dev/null", "r");
	ck_assert_ptr_nonnull(yes);
	char fifo[64];
	snprintf(fifo, sizeof(fifo), "/dev/fd/%d", fileno(yes));
	ck_assert_int_eq(rh_config_load(&cfg, fifo, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":1: line longer than") != NULL, "%s", err);
	pclose(yes); /* yes and tr end on SIGPIPE once the pipe is closed */
}
END_TEST

START_TEST(err_nul_byte)
{
	static const char text[] = "[upstream]\nbackend = 127.0.0.1:1\nthreads\0 = 1\n";
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN], want[RH_CONFIG_ERR_LEN];
	char *path = write_tmp_n(text, sizeof(text) - 1);

	ck_assert_int_eq(rh_config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: NUL byte in line (not a text file?)", path);
	unlink(path);
	free(path);
	ck_assert_str_eq(err, want);
}
END_TEST

/* Random bytes, and random INI-ish text: the loader may refuse but must not crash or leak. */
START_TEST(binary_junk)
{
	static const char alphabet[] = "[]=:;# \t\r\n.0123456789abcdefghijklmnopqrstuvwxyz_-";
	uint32_t seed = 12345;

	for (int round = 0; round < 200; round++) {
		size_t len = 1 + (size_t)(round * 37) % 4000;
		char *buf = malloc(len + sizeof(BACKEND));
		struct rh_config cfg;
		char err[RH_CONFIG_ERR_LEN] = "";
		char *path;
		int rc;

		ck_assert_ptr_nonnull(buf);
		/* every fourth round starts valid so the junk reaches the key handlers */
		size_t off = round % 4 == 0 ? strlen(BACKEND) : 0;
		memcpy(buf, BACKEND, off);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[off + i] = round % 2 ? (char)(seed >> 16) : alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		path = write_tmp_n(buf, off + len);
		rc = rh_config_load(&cfg, path, err, sizeof(err));
		unlink(path);
		free(path);
		free(buf);
		if (rc == 0)
			rh_config_finish(&cfg);
		else
			ck_assert_msg(strstr(err, "/tmp/rh_check_config_") == err, "round %d: '%s'", round, err);
	}
}
END_TEST

START_TEST(many_backends)
{
	static const char line[] = "backend = 127.0.0.1:1\n";
	size_t n = 10000, len = strlen("[upstream]\n") + n * strlen(line);
	char *text = malloc(len + 1);
	char *p = text;
	struct rh_config cfg;

	ck_assert_ptr_nonnull(text);
	p += sprintf(p, "[upstream]\n");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s", line);
	load_ok(text, &cfg);
	free(text);
	ck_assert_uint_eq(cfg.n_backends, n);
	ck_assert_str_eq(cfg.backends[n - 1].addr.text, "127.0.0.1:1");
	ck_assert_uint_eq(cfg.backends[0].line, 2);
	ck_assert_uint_eq(cfg.backends[n - 1].line, n + 1);
	rh_config_finish(&cfg);
}
END_TEST

/* rh_config_load_buffer reads <len> bytes exactly as rh_config_load reads a file holding them: the same
 * result, the same message (with the name given for the file name). */
static void same_as_file(const char *text, size_t len)
{
	struct rh_config from_file, from_mem;
	char err_file[RH_CONFIG_ERR_LEN] = "", err_mem[RH_CONFIG_ERR_LEN] = "";
	char *path = write_tmp_n(text, len);
	char *copy = malloc(len + 1); /* exactly <len> bytes, no terminator: ASan sees any over-read */
	int rc_file, rc_mem;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	rc_file = rh_config_load(&from_file, path, err_file, sizeof(err_file));
	rc_mem = rh_config_load_buffer(&from_mem, path, copy, len, 0, err_mem, sizeof(err_mem));
	unlink(path);
	free(path);
	free(copy);
	ck_assert_int_eq(rc_mem, rc_file);
	ck_assert_str_eq(err_mem, err_file);
	if (rc_file == 0) {
		ck_assert_str_eq(from_mem.path, from_file.path);
		ck_assert_uint_eq(from_mem.n_backends, from_file.n_backends);
		for (size_t i = 0; i < from_file.n_backends; i++) {
			ck_assert_str_eq(from_mem.backends[i].addr.text, from_file.backends[i].addr.text);
			ck_assert_uint_eq(from_mem.backends[i].line, from_file.backends[i].line);
			ck_assert_uint_eq(from_mem.backends[i].weight, from_file.backends[i].weight);
		}
		ck_assert_uint_eq(from_mem.n_listens, from_file.n_listens);
		ck_assert_uint_eq(from_mem.threads, from_file.threads);
		ck_assert_int_eq(from_mem.x_forwarded_for, from_file.x_forwarded_for);
		ck_assert_uint_eq(from_mem.max_body_size, from_file.max_body_size);
		ck_assert_uint_eq(from_mem.health_frequency_ms, from_file.health_frequency_ms);
		ck_assert_uint_eq(from_mem.n_certs, from_file.n_certs);
		ck_assert_int_eq(from_mem.algorithm, from_file.algorithm);
		ck_assert_int_eq(from_mem.hash_key.kind, from_file.hash_key.kind);
		ck_assert_uint_eq(from_mem.hash_key.name_len, from_file.hash_key.name_len);
		ck_assert_mem_eq(from_mem.hash_key.name, from_file.hash_key.name, sizeof(from_file.hash_key.name));
		ck_assert_uint_eq(from_mem.hash_balance_factor, from_file.hash_balance_factor);
		rh_config_finish(&from_file);
		rh_config_finish(&from_mem);
	} else {
		ck_assert_ptr_null(from_mem.path);
		ck_assert_ptr_null(from_mem.backends);
	}
}

START_TEST(buffer_same_as_file)
{
	static const char *const texts[] = {
		BACKEND,
		BACKEND "x_forwarded_for = off\n[limits]\nmax_body_size = 2k\n",
		"[upstream]\r\nbackend = 127.0.0.1:1 weight=3\r\n\r\n[health_check]\r\nfrequency = 2s",
		"\xef\xbb\xbf[upstream]\nbackend = 127.0.0.1:1\n", /* UTF-8 BOM */
		"[upstream]\nbackend = 127.0.0.1:1\nhost_header = a\n  continued\n",
		BACKEND "junk\n",
		BACKEND "[server\n",
		BACKEND "[bogus]\n",
		"threads = 1\n",
		BACKEND "[limits]\nmax_body_size = -1\n",
		BACKEND "x_forwarded_for = on\n",
		"",
		"\n\n\n",
		"\r",
		"[upstream]\nbackend = 127.0.0.1:1\r\r\n",
		"[upstream]\nbackend = 127.0.0.1:1\nthreads\0 = 1\n",
		"\0",
		("[server]\ncert = /a.pem\nlisten_tls = 127.0.0.1:443\n" BACKEND),
		("[upstream]\nalgorithm = consistent_hash\nhash_key = cookie:sid\nhash_balance_factor = 125\n"
		 "backend = 127.0.0.1:1 weight=0\nbackend = 127.0.0.1:2 weight=5\n"),
		BACKEND "hash_key = header:\n",
		BACKEND "hash_balance_factor = 100\n",
		BACKEND "algorithm = fastest\n",
		BACKEND "backend = 127.0.0.1:2 max_conns=4\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		same_as_file(texts[i], i == 15 ? 46 : i == 16 ? 1 : strlen(texts[i]));

	/* around inih's line limit: 198, 199, 200 and 201 characters, with LF, CRLF and at the end */
	for (size_t n = 198; n <= 201; n++) {
		char text[512];
		size_t off = (size_t)snprintf(text, sizeof(text), BACKEND ";");

		memset(text + off, 'c', n - 1);
		off += n - 1;
		same_as_file(text, off);
		memcpy(text + off, "\n", 1);
		same_as_file(text, off + 1);
		memcpy(text + off, "\r\nthreads = 1\n", 15);
		same_as_file(text, off + 15);
	}

	/* the junk of binary_junk */
	uint32_t seed = 777;
	for (int round = 0; round < 100; round++) {
		static const char alphabet[] = "[]=:;# \t\r\n.0123456789abcdefghijklmnopqrstuvwxyz_-";
		size_t len = 1 + (size_t)(round * 53) % 1500;
		char *buf = malloc(len + sizeof(BACKEND));
		size_t off = round % 3 == 0 ? strlen(BACKEND) : 0;

		ck_assert_ptr_nonnull(buf);
		memcpy(buf, BACKEND, off);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[off + i] = round % 2 ? (char)(seed >> 16) : alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		same_as_file(buf, off + len);
		free(buf);
	}
}
END_TEST

START_TEST(buffer_basics)
{
	static const char text[] = "[upstream]\nbackend = 127.0.0.1:1\njunk\n";
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";

	/* the name stands for the file name */
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "mem.ini", text, strlen(text), 0, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "mem.ini:3: syntax error: expected '[section]' or 'key = value'");
	ck_assert_ptr_null(cfg.path);
	/* only <len> bytes are read */
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "mem.ini", text, strlen(text) - 5, 0, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.path, "mem.ini");
	ck_assert_uint_eq(cfg.n_backends, 1);
	ck_assert_str_eq(cfg.backends[0].addr.text, "127.0.0.1:1");
	ck_assert_uint_eq(cfg.backends[0].line, 2);
	ck_assert_int_eq(cfg.x_forwarded_for, RH_XFF_APPEND);
	ck_assert_uint_eq(cfg.max_body_size, 0);
	rh_config_finish(&cfg);
	/* nothing, or NULL with any length: an empty file */
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "e.ini", text, 0, 0, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "e.ini: upstream.backend: no backends configured");
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "e.ini", NULL, 100, 0, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "e.ini: upstream.backend: no backends configured");
	/* a short message buffer */
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "e.ini", NULL, 0, 0, err, 4), -1);
	ck_assert_str_eq(err, "e.i");
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "e.ini", NULL, 0, 0, NULL, 0), -1);
}
END_TEST

/* RH_CONFIG_NO_RESOLVE: numeric addresses only, a name is an error naming its line. */
static void buffer_err(unsigned flags, const char *text, const char *want)
{
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";

	ck_assert_int_eq(rh_config_load_buffer(&cfg, "n.ini", text, strlen(text), flags, err, sizeof(err)), -1);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(cfg.path);
}

START_TEST(buffer_no_resolve)
{
	static const char numeric[] = "[server]\nlisten = 127.0.0.1:7000\nlisten = [::1]:7001\nlisten_tls = [::]:7443\n"
				      "cert = /nonexistent/c.pem\n"
				      "[upstream]\nbackend = 10.0.0.1:80\nbackend = [2001:db8::1]:81 weight=2\n"
				      "[admin]\nlisten = 127.0.0.1:6189\n";
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN] = "";

	ck_assert_msg(rh_config_load_buffer(&cfg, "n.ini", numeric, strlen(numeric), RH_CONFIG_NO_RESOLVE, err,
					    sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.n_listens, 2);
	ck_assert_str_eq(cfg.listens[1].text, "[::1]:7001");
	ck_assert_str_eq(cfg.listens_tls[0].text, "[::]:7443");
	ck_assert_uint_eq(cfg.n_backends, 2);
	ck_assert_str_eq(cfg.backends[1].addr.text, "[2001:db8::1]:81");
	ck_assert_str_eq(cfg.admin_listen.text, "127.0.0.1:6189");
	rh_config_finish(&cfg);

	/* the default listener needs no resolving either */
	ck_assert_int_eq(rh_config_load_buffer(&cfg, "n.ini", BACKEND, strlen(BACKEND), RH_CONFIG_NO_RESOLVE, err,
					       sizeof(err)), 0);
	ck_assert_str_eq(cfg.listens[0].text, "0.0.0.0:6188");
	rh_config_finish(&cfg);

	buffer_err(RH_CONFIG_NO_RESOLVE, "[upstream]\nbackend = localhost:8081\n",
		   "n.ini:2: upstream.backend: 'localhost' is not a numeric address (names are not resolved here)");
	buffer_err(RH_CONFIG_NO_RESOLVE, "[server]\nlisten = localhost:80\n" BACKEND,
		   "n.ini:2: server.listen: 'localhost' is not a numeric address (names are not resolved here)");
	buffer_err(RH_CONFIG_NO_RESOLVE, "[server]\ncert = /c.pem\nlisten_tls = example.com:443\n" BACKEND,
		   "n.ini:3: server.listen_tls: 'example.com' is not a numeric address (names are not resolved here)");
	buffer_err(RH_CONFIG_NO_RESOLVE, BACKEND "[admin]\nlisten = nohost.invalid:80\n",
		   "n.ini:4: admin.listen: 'nohost.invalid' is not a numeric address (names are not resolved here)");
	buffer_err(RH_CONFIG_NO_RESOLVE, "[upstream]\nbackend = 256.0.0.1:80\n",
		   "n.ini:2: upstream.backend: '256.0.0.1' is not a numeric address (names are not resolved here)");
	/* syntax is checked before anything else */
	buffer_err(RH_CONFIG_NO_RESOLVE, "[upstream]\nbackend = ::1:80\n",
		   "n.ini:2: upstream.backend: bad address '::1:80': IPv6 address needs brackets, e.g. [::1]:80");

	/* without the flag, names resolve as in a file */
	ck_assert_msg(rh_config_load_buffer(&cfg, "n.ini", "[upstream]\nbackend = localhost:8081\n", 36, 0, err,
					    sizeof(err)) == 0, "%s", err);
	ck_assert_uint_ge(cfg.n_backends, 1);
	rh_config_finish(&cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_test(tc, minimal_defaults);
	tcase_add_test(tc, every_key);
	tcase_add_test(tc, other_values);
	tcase_add_test(tc, threads_zero);
	tcase_add_test(tc, backend_localhost);
	tcase_add_test(tc, listen_forms);
	tcase_add_test(tc, shipped_example);
	tcase_add_test(tc, contract_example);
	tcase_add_test(tc, listen_tls_forms);
	tcase_add_test(tc, cert_pairs);
	tcase_add_test(tc, upstream_tls);
	tcase_add_test(tc, health_tls);
	tcase_add_test(tc, finish_is_idempotent);
	tcase_add_test(tc, x_forwarded_for);
	tcase_add_test(tc, max_body_size);
	tcase_add_test(tc, algorithms);
	tcase_add_test(tc, hash_key_values);
	tcase_add_test(tc, hash_balance_factor);
	tcase_add_test(tc, backend_weights);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, err_unknown_key);
	tcase_add_test(tc, err_unknown_section);
	tcase_add_test(tc, err_key_outside_section);
	tcase_add_test(tc, err_bad_duration);
	tcase_add_test(tc, err_bad_bool);
	tcase_add_test(tc, err_int_range);
	tcase_add_test(tc, err_bad_hostport);
	tcase_add_test(tc, err_unresolvable);
	tcase_add_test(tc, resolve_tolerates_unresolved_names);
	tcase_add_test(tc, print_round_trip);
	tcase_add_test(tc, err_weight);
	tcase_add_test(tc, err_algorithm);
	tcase_add_test(tc, err_hash_key);
	tcase_add_test(tc, err_hash_balance_factor);
	tcase_add_test(tc, err_listen_tls);
	tcase_add_test(tc, err_cert_key);
	tcase_add_test(tc, err_sni);
	tcase_add_test(tc, err_other_values);
	tcase_add_test(tc, err_x_forwarded_for);
	tcase_add_test(tc, log_section);
	tcase_add_test(tc, err_max_body_size);
	tcase_add_test(tc, err_no_backends);
	tcase_add_test(tc, err_syntax);
	tcase_add_test(tc, err_long_line);
	tcase_add_test(tc, err_unreadable);
	tcase_add_test(tc, err_nul_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("buffer");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, buffer_same_as_file);
	tcase_add_test(tc, buffer_basics);
	tcase_add_test(tc, buffer_no_resolve);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, binary_junk);
	tcase_add_test(tc, many_backends);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
