/* The INI file -> a validated struct rh_config (inih). Every error names FILE:LINE, the key and what
 * is wrong. Host names are resolved here, at load (and again by the control thread's resolver with
 * [upstream] resolve), so workers never block on DNS. */
#ifndef RH_CONFIG_H
#define RH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "roundhouse/http1_serialize.h" /* enum rh_xff_mode */
#include "roundhouse/sockaddr.h"

#define RH_CONFIG_ERR_LEN 512
#define RH_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt" /* Debian's system store */
#define RH_CONFIG_MAX_BODY_SIZE RH_HTTP_MAX_LENGTH /* [limits] max_body_size: at most a framing number */

/* rh_config_load_buffer flags */
#define RH_CONFIG_NO_RESOLVE 1u /* addresses must be numeric: a host name is an error, DNS is never asked */


enum rh_lb_algorithm {
	RH_LB_ROUND_ROBIN,
	RH_LB_WEIGHTED_ROUND_ROBIN,
	RH_LB_RANDOM,
	RH_LB_CONSISTENT_HASH,
	RH_LB_LEAST_CONN,
};

/* [upstream] hash_key: what consistent_hash hashes. */
enum rh_hash_key_kind {
	RH_HASH_URI,       /* the request target as sent, query included */
	RH_HASH_PATH,      /* the target without its query */
	RH_HASH_CLIENT_IP, /* the client's address */
	RH_HASH_HEADER,    /* the value of the first header <name> */
	RH_HASH_COOKIE,    /* the value of cookie <name> */
};

#define RH_HASH_KEY_NAME_MAX 64

struct rh_hash_key {
	enum rh_hash_key_kind kind;
	unsigned name_len;                /* header or cookie name, else 0 */
	char name[RH_HASH_KEY_NAME_MAX];  /* NUL-terminated */
};

enum rh_health_type {
	RH_HEALTH_TCP,
	RH_HEALTH_HTTP,
	RH_HEALTH_NONE,
};

#define RH_HOST_MAX 256 /* a DNS name is at most 253 bytes */

/* One backend address. A "backend = name:port" line whose name resolves to several addresses gives
 * several entries, each with the same <spec>. */
/* [log] level (the same order as log.h's levels). */
enum rh_config_log_level {
	RH_CONFIG_LOG_ERROR,
	RH_CONFIG_LOG_WARN,
	RH_CONFIG_LOG_INFO,
	RH_CONFIG_LOG_DEBUG,
};

struct rh_backend_conf {
	struct rh_sockaddr addr;
	char spec[RH_ADDR_TEXT_LEN]; /* as written in the file, "localhost:8082" */
	unsigned weight;             /* " weight=N", default 1; 0 drains it (no new requests) */
	unsigned max_conns;          /* " max_conns=N": concurrent requests per process; 0 = no limit */
	unsigned line;               /* line of the file it came from */
	size_t name;                 /* its "backend" line: index into rh_config.names */
};

/* One "backend" line: the name to resolve (again, with [upstream] resolve) and what every address of
 * it gets. */
struct rh_backend_name {
	char spec[RH_ADDR_TEXT_LEN];
	char host[RH_HOST_MAX]; /* without brackets */
	uint16_t port;
	bool numeric;           /* an address literal: never asked of DNS */
	unsigned weight, max_conns, line;
	/* with [upstream] resolve > 0 a name that does not resolve at load does not stop the load: it
	 * has no addresses yet, and <unresolved> says why ("cannot resolve 'x': Name or service not
	 * known"); -t prints it as a warning */
	char unresolved[RH_HOST_MAX + 192];
};

/* One edge certificate: "cert = PATH" then optionally "key = PATH" in [server] (the key defaults to
 * the cert file, for a PEM holding both). The first is the default; the others are chosen by the
 * client's SNI against the names in each certificate. */
struct rh_cert_conf {
	char *cert;
	char *key;
	unsigned cert_line, key_line; /* key_line == cert_line when the key comes from the cert file */
};

struct rh_config {
	char *path; /* the file this came from (owned) */

	/* [server] */
	struct rh_sockaddr *listens; /* "listen", repeatable; default 0.0.0.0:6188 */
	size_t n_listens;
	unsigned threads;          /* "threads"; 0 in the file is resolved to the online CPU count */
	unsigned max_connections;  /* "max_connections", per process, default 65536 */
	struct rh_sockaddr *listens_tls; /* "listen_tls", repeatable: TLS-terminating listeners */
	size_t n_listens_tls;
	unsigned listen_tls_line;        /* line of the first listen_tls (for errors) */
	struct rh_cert_conf *certs;      /* "cert"/"key" pairs in file order; [0] is the default */
	size_t n_certs;

	/* [upstream] */
	enum rh_lb_algorithm algorithm; /* default round_robin */
	struct rh_backend_conf *backends; /* every address of every name, file order */
	size_t n_backends;
	struct rh_backend_name *names;    /* the "backend" lines */
	size_t n_names;
	unsigned retries;        /* another backend after a failure that allows it, default 2 */
	bool splice;             /* "splice": large plain bodies through a pipe, default true */
	uint32_t queue_timeout_ms; /* a request waits this long for a max_conns slot, default 1000 */
	uint32_t resolve_ms;     /* re-resolve backend names this often; 0 (default) = at load only */
	struct rh_sockaddr resolver; /* "resolver": the nameserver to ask; len 0 = the system's */
	unsigned max_iterations; /* default 256 */
	unsigned keepalive;      /* idle upstream connections per worker per backend, default 64 */
	char *host_header;       /* NULL when unset: keep the client's Host */
	bool tls;                /* speak TLS to the backends */
	unsigned tls_line;       /* line of "tls" (0 when unset), for errors about the TLS set-up */
	char *sni;               /* NULL: each backend's host name as written, none for an IP literal */
	bool verify;             /* default true */
	char *ca_file;           /* NULL: the system store, RH_DEFAULT_CA_FILE */
	unsigned ca_file_line;
	struct rh_hash_key hash_key;  /* consistent_hash: what it hashes; default uri */
	unsigned hash_balance_factor; /* consistent_hash bounded load, percent of the mean; 0 = off */
	enum rh_xff_mode x_forwarded_for; /* "x_forwarded_for": append (default), replace or off */

	/* [health_check] */
	enum rh_health_type health_type; /* tcp (default), http or none */
	uint32_t health_frequency_ms;    /* default 5000 */
	uint32_t health_timeout_ms;      /* default 1000 */
	unsigned rise, fall;             /* default 1 each */
	char *health_path;               /* default "/" */
	unsigned expect_lo, expect_hi;   /* http: statuses that pass, default 200-399 */
	char *health_host;               /* http: Host of the probe; NULL = each backend's host name */
	bool passive;                    /* failures while proxying count toward fall; default true */
	bool initial_down;               /* "initial = down": not routed to before the first result */
	unsigned jitter_pct;             /* each interval varies by up to +-this/2 percent, default 5 */
	bool health_tls;                 /* "tls": probes complete a TLS handshake; default = upstream tls */
	unsigned cert_warn_days;         /* warn this many days before a backend certificate expires, 14 */

	/* [timeouts] */
	uint32_t connect_ms;       /* default 3000 */
	uint32_t client_header_ms; /* default 10000 */
	uint32_t upstream_read_ms; /* default 30000 */
	uint32_t idle_ms;          /* default 60000 */
	uint32_t shutdown_ms;      /* "shutdown", grace period for in-flight requests on SIGTERM, default 10000 */

	/* [limits] */
	uint64_t max_body_size; /* request body bytes, 0 (default) = unlimited; above it: 413 */

	/* [admin] */
	struct rh_sockaddr admin_listen; /* admin_listen.len == 0 when unset */

	/* [log] */
	unsigned log_level;  /* enum rh_config_log_level, default info */
	char *access_log;    /* "access": the file, NULL when off (default) */
	/* [server] user / group: switched to after binding when started as root; NULL: stay */
	char *user, *group;
};

/* Reads and validates <path> into <cfg> (which the caller owns; it is zeroed first). Returns 0, or -1
 * with "FILE:LINE: section.key: what is wrong" in <err> (RH_CONFIG_ERR_LEN bytes). On error <cfg> holds
 * nothing that needs freeing. Main thread, before any other thread starts. */
int rh_config_load(struct rh_config *cfg, const char *path, char *err, size_t errlen);

/* The same from memory: <text>[0..<len>) is read exactly as a file with those bytes would be (the same
 * line rules, the same messages), <name> standing for the file name in messages and cfg->path.
 * <flags>: 0 or RH_CONFIG_NO_RESOLVE. Nothing is opened either way (cert, key and ca_file paths are
 * only recorded; tls.c reads them). For the fuzzer and tests. */
int rh_config_load_buffer(struct rh_config *cfg, const char *name, const char *text, size_t len, unsigned flags,
			  char *err, size_t errlen);

/* Writes the effective configuration to <out> as an INI file this loader reads back to the same
 * config: every key with its value, defaults filled in, addresses numeric (a backend line keeps its
 * name, what it resolved to follows as a comment). roundhouse -T. */
void rh_config_print(const struct rh_config *cfg, FILE *out);

/* Frees what rh_config_load allocated. Accepts a zeroed or already finished config. */
void rh_config_finish(struct rh_config *cfg);

#endif
