/* libFuzzer target: the config loader on the input as a file's contents, through
 * rh_config_load_buffer with RH_CONFIG_NO_RESOLVE (numeric addresses only: no DNS, no NSS), then
 * rh_config_finish. The loader opens nothing: cert, key and ca_file paths are only recorded (tls.c
 * reads them at start-up, which the fuzzer never reaches), so arbitrary paths in the input are safe.
 * Its only outside look is sysconf(_SC_NPROCESSORS_ONLN) for threads = 0.
 *  - no crash, no leak (LSan), no read outside the input;
 *  - an error is one line "fuzz.ini[:LINE]: ...";
 *  - a loaded config keeps the promises of config.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "roundhouse/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char name[] = "fuzz.ini";
	struct rh_config cfg;
	char err[RH_CONFIG_ERR_LEN];

	memset(err, 0x55, sizeof(err));
	if (rh_config_load_buffer(&cfg, name, (const char *)data, size, RH_CONFIG_NO_RESOLVE, err, sizeof(err)) != 0) {
		size_t len = strnlen(err, sizeof(err));

		CHECK(len < sizeof(err));
		CHECK(strncmp(err, name, strlen(name)) == 0 && (err[strlen(name)] == ':'));
		CHECK(cfg.path == NULL && cfg.backends == NULL && cfg.listens == NULL && cfg.certs == NULL);
		return 0;
	}
	CHECK(cfg.path != NULL && strcmp(cfg.path, name) == 0);
	CHECK(cfg.n_backends >= 1 && cfg.backends != NULL);
	for (size_t i = 0; i < cfg.n_backends; i++) {
		CHECK(cfg.backends[i].addr.len > 0 && cfg.backends[i].addr.text[0] != '\0');
		CHECK(cfg.backends[i].weight <= 1000); /* 0 drains */
		CHECK(cfg.backends[i].line >= 1);
	}
	CHECK(cfg.n_listens + cfg.n_listens_tls >= 1);
	CHECK(cfg.n_listens_tls == 0 || cfg.n_certs >= 1);
	for (size_t i = 0; i < cfg.n_certs; i++)
		CHECK(cfg.certs[i].cert != NULL && cfg.certs[i].key != NULL && cfg.certs[i].key_line >= cfg.certs[i].cert_line);
	CHECK(cfg.threads >= 1 && cfg.threads <= 1024);
	CHECK(cfg.x_forwarded_for == RH_XFF_APPEND || cfg.x_forwarded_for == RH_XFF_REPLACE ||
	      cfg.x_forwarded_for == RH_XFF_OFF);
	CHECK(cfg.max_body_size <= RH_CONFIG_MAX_BODY_SIZE);
	CHECK(cfg.expect_lo >= 100 && cfg.expect_lo <= cfg.expect_hi && cfg.expect_hi <= 599);
	CHECK(cfg.algorithm >= RH_LB_ROUND_ROBIN && cfg.algorithm <= RH_LB_LEAST_CONN);
	CHECK(cfg.hash_key.kind >= RH_HASH_URI && cfg.hash_key.kind <= RH_HASH_COOKIE);
	CHECK(cfg.hash_key.name_len < RH_HASH_KEY_NAME_MAX && strlen(cfg.hash_key.name) == cfg.hash_key.name_len);
	CHECK((cfg.hash_key.kind == RH_HASH_HEADER || cfg.hash_key.kind == RH_HASH_COOKIE) == (cfg.hash_key.name_len > 0));
	CHECK(cfg.hash_balance_factor == 0 || (cfg.hash_balance_factor > 100 && cfg.hash_balance_factor <= 10000));
	CHECK(cfg.health_path != NULL && cfg.health_path[0] == '/');
	CHECK(!cfg.health_tls || cfg.tls || cfg.health_type == RH_HEALTH_NONE);
	rh_config_finish(&cfg);
	CHECK(cfg.path == NULL && cfg.backends == NULL);
	return 0;
}
