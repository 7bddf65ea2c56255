/* INI file -> struct rh_config (see config.h).
 *
 * inih does the tokenising, but we feed it through our own line reader (ini_parse_stream) because
 * Debian's libinih is built without INI_HANDLER_LINENO: counting lines in the reader is how an
 * error knows its line. The reader also enforces inih's line limit, which inih itself does not:
 * given a line that does not fit its 200-byte buffer it silently parses the rest of the line as
 * a new line (so "x = y" past byte 199 becomes a key of its own, and every later line number is
 * off by one). We reject such a line outright instead.
 *
 * Rules worth knowing (also in etc/roundhouse.ini):
 *  - Section and key names are case-sensitive.
 *  - listen, listen_tls, cert and key (in [server]) and backend are repeatable; for every other key
 *    the last one wins. Each key belongs to the cert line before it; a cert without a key takes
 *    its key from the cert file. The files are not read here (tls.c does, naming these lines).
 *  - [upstream] hash_key and hash_balance_factor are accepted whatever the algorithm (only
 *    consistent_hash reads them), so switching algorithms is a one-line change. A backend's
 *    weight may be 0 (drained: no new requests), even for every backend.
 *  - [health_check] tls defaults to [upstream] tls, whichever section comes first: such
 *    cross-key defaults and checks are resolved once the whole file is read (finish_load).
 *  - The first error stops the load; its message is "FILE:LINE: section.key: what is wrong".
 *    Errors about the file as a whole ("no backends") have no line: "FILE: section.key: ...".
 *  - An unknown section is reported at its [header] when the header starts in column 0, else at
 *    its first key.
 *  - Host names are resolved here (backend names once the whole file is read, with resolver.c's
 *    rh_resolve_name: [upstream] resolver may name the nameserver). A backend name gives one
 *    backend per distinct address; a listen name gives its first address only (binding every
 *    address of a name is rarely meant). With [upstream] resolve set, a backend name that does not
 *    resolve is recorded (rh_backend_name.unresolved) instead of stopping the load.
 *    With RH_CONFIG_NO_RESOLVE (the fuzzer) only numeric addresses are accepted: no DNS, no NSS.
 *  - No file named in the config (cert, key, ca_file) is opened here: the loader's only I/O is
 *    reading the config file itself, and rh_config_load_buffer has none.
 */
#include "roundhouse/config.h"
#include "roundhouse/parse.h"
#include "roundhouse/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 1024
#define HOST_MAX RH_HOST_MAX
#define DNS_NAME_MAX 253

struct load {
	struct rh_config cfg; /* built here, handed to the caller only when complete */
	const char *path;
	unsigned flags;   /* RH_CONFIG_NO_RESOLVE */
	FILE *f;          /* the file, or NULL when reading from memory: */
	const char *text; /* the bytes of rh_config_load_buffer */
	size_t text_len, text_pos;
	unsigned lineno; /* line last handed to inih */
	char *buf;       /* getline buffer */
	size_t bufcap;
	size_t backends_cap;
	size_t names_cap;
	bool health_tls_set; /* [health_check] tls was given; else it follows [upstream] tls */
	unsigned health_tls_line;
	bool failed;
	unsigned err_line;
	char err[RH_CONFIG_ERR_LEN];
};

enum kind {
	K_UINT,     /* unsigned field, [min, max] */
	K_DURATION, /* uint32_t milliseconds, >= min */
	K_BOOL,
	K_CUSTOM,
};

struct key {
	const char *section;
	const char *name;
	enum kind kind;
	size_t off;
	uint64_t min, max;
	bool allow_empty;
	int (*set)(struct load *ld, const struct key *k, const char *value);
};

static const char *const sections[] = {"server", "upstream", "health_check", "timeouts", "limits", "admin", "log"};

/* Records the first error as "FILE:LINE: <fmt>" (LINE omitted when <line> is 0). Later errors are
 * dropped so the message names what stopped the load. Returns -1 for tail calls. */
__attribute__((format(printf, 3, 4))) static int fail_at(struct load *ld, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->failed)
		return -1;
	ld->failed = true;
	ld->err_line = line;
	if (line > 0)
		n = snprintf(ld->err, sizeof(ld->err), "%s:%u: ", ld->path, line);
	else
		n = snprintf(ld->err, sizeof(ld->err), "%s: ", ld->path);
	if (n < 0 || (size_t)n >= sizeof(ld->err))
		return -1;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, sizeof(ld->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* "FILE:LINE: section.key: <fmt>" for the line being parsed. */
__attribute__((format(printf, 3, 4))) static int fail_key(struct load *ld, const struct key *k, const char *fmt, ...)
{
	char msg[RH_CONFIG_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail_at(ld, ld->lineno, "%s.%s: %s", k->section, k->name, msg);
}

static int oom(struct load *ld)
{
	return fail_at(ld, ld->lineno, "out of memory");
}

/* Replaces the string field at <k->off> with a copy of <value>, or NULL when <value> is empty. */
static int set_string(struct load *ld, const struct key *k, const char *value)
{
	char **field = (char **)((char *)&ld->cfg + k->off);
	char *copy = NULL;

	if (*value != '\0' && (copy = strdup(value)) == NULL)
		return oom(ld);
	free(*field);
	*field = copy;
	return 0;
}

/* Fills <sa> from the first address of <ai>. */
static int fill_sockaddr(struct rh_sockaddr *sa, const struct addrinfo *ai)
{
	return rh_sockaddr_set(sa, ai->ai_addr, ai->ai_addrlen);
}

/* Parses "host:port" in <value> and resolves it. On success *<res> is the getaddrinfo list (caller
 * frees). <passive> is for listen addresses. */
static int resolve(struct load *ld, const struct key *k, const char *value, bool passive, struct addrinfo **res)
{
	struct addrinfo hints;
	char host[HOST_MAX];
	char port[8];
	const char *why;
	uint16_t p;
	int rc;

	if (rh_parse_hostport(value, host, sizeof(host), &p, &why) < 0)
		return fail_key(ld, k, "bad address '%s': %s", value, why);
	snprintf(port, sizeof(port), "%u", (unsigned)p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* no AI_ADDRCONFIG: it hides ::1 and 127.0.0.1 when no interface has a routable address */
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (ld->flags & RH_CONFIG_NO_RESOLVE)
		hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(host, port, &hints, res);
	if (rc == EAI_NONAME && (ld->flags & RH_CONFIG_NO_RESOLVE))
		return fail_key(ld, k, "'%s' is not a numeric address (names are not resolved here)", host);
	if (rc != 0)
		return fail_key(ld, k, "cannot resolve '%s': %s", host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	return 0;
}

static bool has_addr(const struct rh_sockaddr *list, size_t n, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].text, text) == 0)
			return true;
	return false;
}

/* "listen" and "listen_tls": resolves <value> (first address) and appends it to *<list>. An address
 * may appear once across both keys. */
static int add_listen(struct load *ld, const struct key *k, const char *value, struct rh_sockaddr **list, size_t *n)
{
	struct rh_config *c = &ld->cfg;
	struct rh_sockaddr sa, *grown;
	struct addrinfo *res;

	if (resolve(ld, k, value, true, &res) < 0)
		return -1;
	if (fill_sockaddr(&sa, res) < 0) {
		freeaddrinfo(res);
		return fail_key(ld, k, "cannot use address '%s'", value);
	}
	freeaddrinfo(res);
	/* SO_REUSEPORT would let a duplicate bind succeed silently and split traffic oddly */
	if (has_addr(c->listens, c->n_listens, sa.text) || has_addr(c->listens_tls, c->n_listens_tls, sa.text))
		return fail_key(ld, k, "duplicate listen address %s", sa.text);
	grown = realloc(*list, (*n + 1) * sizeof(*grown));
	if (grown == NULL)
		return oom(ld);
	*list = grown;
	(*list)[(*n)++] = sa;
	return 0;
}

static int set_listen(struct load *ld, const struct key *k, const char *value)
{
	return add_listen(ld, k, value, &ld->cfg.listens, &ld->cfg.n_listens);
}

static int set_listen_tls(struct load *ld, const struct key *k, const char *value)
{
	if (add_listen(ld, k, value, &ld->cfg.listens_tls, &ld->cfg.n_listens_tls) < 0)
		return -1;
	if (ld->cfg.n_listens_tls == 1)
		ld->cfg.listen_tls_line = ld->lineno;
	return 0;
}

/* "cert = PATH" starts a pair; its key is set by a "key" line that follows, else by finish_load. */
static int set_cert(struct load *ld, const struct key *k, const char *value)
{
	struct rh_config *c = &ld->cfg;
	struct rh_cert_conf *grown;
	char *copy;

	(void)k;
	copy = strdup(value);
	if (copy == NULL)
		return oom(ld);
	grown = realloc(c->certs, (c->n_certs + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(copy);
		return oom(ld);
	}
	c->certs = grown;
	c->certs[c->n_certs++] = (struct rh_cert_conf){.cert = copy, .cert_line = ld->lineno};
	return 0;
}

/* "key = PATH": the private key of the cert line before it. */
static int set_key(struct load *ld, const struct key *k, const char *value)
{
	struct rh_cert_conf *cc;

	if (ld->cfg.n_certs == 0)
		return fail_key(ld, k, "no server.cert before it (each key follows its cert)");
	cc = &ld->cfg.certs[ld->cfg.n_certs - 1];
	if (cc->key != NULL)
		return fail_key(ld, k, "the cert on line %u already has a key (line %u)", cc->cert_line, cc->key_line);
	cc->key = strdup(value);
	if (cc->key == NULL)
		return oom(ld);
	cc->key_line = ld->lineno;
	return 0;
}

static int set_admin_listen(struct load *ld, const struct key *k, const char *value)
{
	struct addrinfo *res;
	int rc;

	if (resolve(ld, k, value, true, &res) < 0)
		return -1;
	rc = fill_sockaddr(&ld->cfg.admin_listen, res);
	freeaddrinfo(res);
	if (rc < 0) {
		memset(&ld->cfg.admin_listen, 0, sizeof(ld->cfg.admin_listen));
		return fail_key(ld, k, "cannot use address '%s'", value);
	}
	return 0;
}

/* Appends one backend entry, growing the array by doubling (a file may list thousands). */
static int push_backend(struct load *ld, const struct rh_backend_conf *b)
{
	struct rh_config *c = &ld->cfg;

	if (c->n_backends == ld->backends_cap) {
		size_t cap = ld->backends_cap == 0 ? 4 : ld->backends_cap * 2;
		struct rh_backend_conf *grown = realloc(c->backends, cap * sizeof(*grown));

		if (grown == NULL)
			return oom(ld);
		c->backends = grown;
		ld->backends_cap = cap;
	}
	c->backends[c->n_backends++] = *b;
	return 0;
}

/* "host:port", then options separated by whitespace: "weight=N", 0..1000 (default 1; 0 drains the
 * backend: it gets no new requests), "max_conns=N", 1..1000000 (concurrent requests per process;
 * absent = no limit). The name is resolved once the whole file is read (resolve_names), because
 * [upstream] resolve and resolver may come after it. */
static int set_backend(struct load *ld, const struct key *k, const char *value)
{
	struct rh_backend_name nm;
	const char *opt, *why;
	size_t speclen;
	uint64_t w = 1, mc = 0;
	bool weight_set = false, max_conns_set = false;

	memset(&nm, 0, sizeof(nm));
	speclen = strcspn(value, " \t");
	if (speclen >= sizeof(nm.spec))
		return fail_key(ld, k, "address too long (max %zu bytes)", sizeof(nm.spec) - 1);
	memcpy(nm.spec, value, speclen);
	nm.spec[speclen] = '\0';

	for (opt = value + speclen + strspn(value + speclen, " \t"); *opt != '\0'; opt += strspn(opt, " \t")) {
		char tok[RH_CONFIG_ERR_LEN]; /* a value is shorter than inih's line */
		size_t len = strcspn(opt, " \t");

		if (len >= sizeof(tok))
			return fail_key(ld, k, "option too long (%zu bytes)", len);
		memcpy(tok, opt, len);
		tok[len] = '\0';
		if (strncmp(tok, "weight=", 7) == 0) {
			if (weight_set)
				return fail_key(ld, k, "weight given twice");
			if (rh_parse_uint(tok + 7, 0, 1000, &w, &why) < 0)
				return fail_key(ld, k, "bad weight '%s': %s (0..1000, 0 drains)", tok + 7, why);
			weight_set = true;
		} else if (strncmp(tok, "max_conns=", 10) == 0) {
			if (max_conns_set)
				return fail_key(ld, k, "max_conns given twice");
			if (rh_parse_uint(tok + 10, 1, 1000000, &mc, &why) < 0)
				return fail_key(ld, k, "bad max_conns '%s': %s (1..1000000)", tok + 10, why);
			max_conns_set = true;
		} else {
			return fail_key(ld, k, "unknown option '%s' (expected weight=N or max_conns=N)", opt);
		}
		opt += len;
	}
	if (rh_parse_hostport(nm.spec, nm.host, sizeof(nm.host), &nm.port, &why) < 0)
		return fail_key(ld, k, "bad address '%s': %s", nm.spec, why);
	nm.weight = (unsigned)w;
	nm.max_conns = (unsigned)mc;
	nm.line = ld->lineno;
	{
		struct in6_addr a6;
		struct in_addr a4;

		nm.numeric = inet_pton(AF_INET, nm.host, &a4) == 1 || inet_pton(AF_INET6, nm.host, &a6) == 1;
	}
	if (!nm.numeric && (ld->flags & RH_CONFIG_NO_RESOLVE))
		return fail_key(ld, k, "'%s' is not a numeric address (names are not resolved here)", nm.host);

	if (ld->cfg.n_names == ld->names_cap) { /* doubling: a file may list thousands */
		size_t cap = ld->names_cap == 0 ? 4 : ld->names_cap * 2;
		struct rh_backend_name *grown = realloc(ld->cfg.names, cap * sizeof(*grown));

		if (grown == NULL)
			return oom(ld);
		ld->cfg.names = grown;
		ld->names_cap = cap;
	}
	ld->cfg.names[ld->cfg.n_names++] = nm;
	return 0;
}

/* Resolves every backend line into its addresses (one backend entry per distinct address). With
 * [upstream] resolve = 0 a name that does not resolve stops the load, as it always did; with resolve
 * set the proxy starts without it and keeps asking (HAProxy's "init-addr last,libc,none"). */
static int resolve_names(struct load *ld)
{
	struct rh_config *c = &ld->cfg;

	for (size_t i = 0; i < c->n_names; i++) {
		struct rh_backend_name *nm = &c->names[i];
		struct rh_sockaddr *addrs = NULL;
		size_t n_addrs = 0;
		char why[160];

		if (rh_resolve_name(nm->host, nm->port, nm->numeric || c->resolver.len == 0 ? NULL : &c->resolver,
				    &addrs, &n_addrs, why, sizeof(why)) < 0) {
			if (c->resolve_ms == 0 || nm->numeric)
				return fail_at(ld, nm->line, "upstream.backend: cannot resolve '%s': %s", nm->host, why);
			snprintf(nm->unresolved, sizeof(nm->unresolved), "cannot resolve '%s': %s", nm->host, why);
			continue;
		}
		for (size_t j = 0; j < n_addrs; j++) {
			struct rh_backend_conf b = {
				.addr = addrs[j],
				.weight = nm->weight,
				.max_conns = nm->max_conns,
				.line = nm->line,
				.name = i,
			};
			memcpy(b.spec, nm->spec, sizeof(b.spec));
			if (push_backend(ld, &b) < 0) {
				free(addrs);
				return -1;
			}
		}
		free(addrs);
	}
	return 0;
}

static const struct {
	const char *name;
	enum rh_lb_algorithm algorithm;
} algorithms[] = {
	{"round_robin", RH_LB_ROUND_ROBIN},
	{"weighted_round_robin", RH_LB_WEIGHTED_ROUND_ROBIN},
	{"random", RH_LB_RANDOM},
	{"consistent_hash", RH_LB_CONSISTENT_HASH},
	{"least_conn", RH_LB_LEAST_CONN},
};

static int set_algorithm(struct load *ld, const struct key *k, const char *value)
{
	char valid[128] = "";
	size_t used = 0;

	for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
		if (strcmp(value, algorithms[i].name) == 0) {
			ld->cfg.algorithm = algorithms[i].algorithm;
			return 0;
		}
	for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++) {
		int n = snprintf(valid + used, sizeof(valid) - used, "%s%s", used ? ", " : "", algorithms[i].name);

		if (n < 0 || (size_t)n >= sizeof(valid) - used)
			break;
		used += (size_t)n;
	}
	return fail_key(ld, k, "unknown algorithm '%s' (valid: %s)", value, valid);
}

/* RFC 9110 token characters (RFC 6265 cookie names are tokens too). */
static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return false;
	return true;
}

/* uri | path | client_ip | header:NAME | cookie:NAME. Accepted with any algorithm (only
 * consistent_hash reads it), so switching algorithms is a one-line change. */
static int set_hash_key(struct load *ld, const struct key *k, const char *value)
{
	struct rh_hash_key hk;
	const char *name = NULL, *what = NULL;
	size_t len;

	memset(&hk, 0, sizeof(hk));
	if (strcmp(value, "uri") == 0) {
		hk.kind = RH_HASH_URI;
	} else if (strcmp(value, "path") == 0) {
		hk.kind = RH_HASH_PATH;
	} else if (strcmp(value, "client_ip") == 0) {
		hk.kind = RH_HASH_CLIENT_IP;
	} else if (strncmp(value, "header:", 7) == 0) {
		hk.kind = RH_HASH_HEADER;
		name = value + 7;
		what = "header";
	} else if (strncmp(value, "cookie:", 7) == 0) {
		hk.kind = RH_HASH_COOKIE;
		name = value + 7;
		what = "cookie";
	} else {
		return fail_key(ld, k, "unknown hash key '%s' (valid: uri, path, client_ip, header:NAME, cookie:NAME)",
				value);
	}
	if (name != NULL) {
		if (!is_token(name))
			return fail_key(ld, k, "'%s': NAME must be a non-empty %s name (letters, digits and "
					       "!#$%%&'*+-.^_`|~)", value, what);
		len = strlen(name);
		if (len >= sizeof(hk.name))
			return fail_key(ld, k, "'%s': %s name too long (%zu bytes, at most %zu)", value, what, len,
					sizeof(hk.name) - 1);
		memcpy(hk.name, name, len + 1);
		hk.name_len = (unsigned)len;
	}
	ld->cfg.hash_key = hk;
	return 0;
}

#define HASH_BALANCE_FACTOR_MAX 10000

/* Percent of the mean load a backend may carry under consistent_hash: 0 = off, else above 100 (as
 * HAProxy's hash-balance-factor: at 100 or below every backend could be full, leaving a request
 * nowhere to go). Accepted with any algorithm, like hash_key. */
static int set_hash_balance_factor(struct load *ld, const struct key *k, const char *value)
{
	const char *why;
	uint64_t v;

	if (rh_parse_uint(value, 0, HASH_BALANCE_FACTOR_MAX, &v, &why) < 0)
		return fail_key(ld, k, "'%s': %s (0 = off, or 101..%d)", value, why, HASH_BALANCE_FACTOR_MAX);
	if (v >= 1 && v <= 100)
		return fail_key(ld, k, "'%s': must be 0 (off) or above 100, e.g. 125 (a percent of the mean load: at "
				       "100 or less every backend may be full)", value);
	ld->cfg.hash_balance_factor = (unsigned)v;
	return 0;
}

/* The value goes into a request header as is: printable, no spaces (also refuses CR/LF). */
static int set_host_header(struct load *ld, const struct key *k, const char *value)
{
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return fail_key(ld, k, "space or control character in '%s'", value);
	return set_string(ld, k, value);
}

/* [upstream] tls: a bool that also records its line, for errors about the TLS set-up. */
static int set_tls(struct load *ld, const struct key *k, const char *value)
{
	const char *why;
	bool on;

	if (rh_parse_bool(value, &on, &why) < 0)
		return fail_key(ld, k, "'%s': %s", value, why);
	ld->cfg.tls = on;
	ld->cfg.tls_line = ld->lineno;
	return 0;
}

/* [health_check] tls: when absent, finish_load copies [upstream] tls. */
static int set_health_tls(struct load *ld, const struct key *k, const char *value)
{
	const char *why;
	bool on;

	if (rh_parse_bool(value, &on, &why) < 0)
		return fail_key(ld, k, "'%s': %s", value, why);
	ld->cfg.health_tls = on;
	ld->health_tls_set = true;
	ld->health_tls_line = ld->lineno;
	return 0;
}

/* TLS server name: a DNS name or an IP address as text. Empty means unset: each backend's host name
 * as written (none for an IP literal). */
static int set_sni(struct load *ld, const struct key *k, const char *value)
{
	size_t len = strlen(value);

	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return fail_key(ld, k, "'%s': space, control or non-ASCII character (expected a host name)", value);
	if (len > DNS_NAME_MAX)
		return fail_key(ld, k, "name too long (%zu bytes, at most %d)", len, DNS_NAME_MAX);
	return set_string(ld, k, value);
}

/* ca_file: a path (read by tls.c, which names this line), or empty for the system store. */
static int set_ca_file(struct load *ld, const struct key *k, const char *value)
{
	if (set_string(ld, k, value) < 0)
		return -1;
	ld->cfg.ca_file_line = *value != '\0' ? ld->lineno : 0;
	return 0;
}

/* [log] level: what reaches stderr. */
static int set_log_level(struct load *ld, const struct key *k, const char *value)
{
	static const char *const words[] = {[RH_CONFIG_LOG_ERROR] = "error", [RH_CONFIG_LOG_WARN] = "warn",
					    [RH_CONFIG_LOG_INFO] = "info", [RH_CONFIG_LOG_DEBUG] = "debug"};

	for (unsigned i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(value, words[i]) == 0) {
			ld->cfg.log_level = i;
			return 0;
		}
	return fail_key(ld, k, "unknown level '%s' (valid: debug, info, warn, error)", value);
}

/* [log] access: a file path, or off (also when empty). */
static int set_access_log(struct load *ld, const struct key *k, const char *value)
{
	if (strcmp(value, "off") == 0)
		value = "";
	if (*value != '\0' && *value != '/')
		return fail_key(ld, k, "'%s': an absolute path or off (a relative one would depend on the "
				       "working directory)", value);
	return set_string(ld, k, value);
}

/* [server] user / group: a name (or number) to switch to after binding, checked at load. */
static int set_account(struct load *ld, const struct key *k, const char *value)
{
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == ':')
			return fail_key(ld, k, "'%s': not a user or group name", value);
	return set_string(ld, k, value);
}

static int set_health_type(struct load *ld, const struct key *k, const char *value)
{
	if (strcmp(value, "tcp") == 0)
		ld->cfg.health_type = RH_HEALTH_TCP;
	else if (strcmp(value, "none") == 0)
		ld->cfg.health_type = RH_HEALTH_NONE;
	else if (strcmp(value, "http") == 0)
		ld->cfg.health_type = RH_HEALTH_HTTP;
	else
		return fail_key(ld, k, "unknown type '%s' (valid: tcp, http, none)", value);
	return 0;
}

/* Goes into a request line, so: starts with '/', no spaces or control characters. */
static int set_health_path(struct load *ld, const struct key *k, const char *value)
{
	if (value[0] != '/')
		return fail_key(ld, k, "'%s' must start with '/'", value);
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return fail_key(ld, k, "space or control character in '%s'", value);
	return set_string(ld, k, value);
}

/* "200" or "200-399", each 100-599. */
static int set_expect(struct load *ld, const struct key *k, const char *value)
{
	char lo_s[8], hi_s[8];
	const char *dash = strchr(value, '-');
	const char *why;
	uint64_t lo, hi;

	if (dash == NULL) {
		if (rh_parse_uint(value, 100, 599, &lo, &why) < 0)
			return fail_key(ld, k, "bad status '%s': %s (100..599)", value, why);
		hi = lo;
	} else {
		size_t n = (size_t)(dash - value);

		if (n >= sizeof(lo_s) || strlen(dash + 1) >= sizeof(hi_s))
			return fail_key(ld, k, "bad status range '%s' (expected e.g. 200-399)", value);
		memcpy(lo_s, value, n);
		lo_s[n] = '\0';
		strcpy(hi_s, dash + 1);
		if (rh_parse_uint(lo_s, 100, 599, &lo, &why) < 0 || rh_parse_uint(hi_s, 100, 599, &hi, &why) < 0)
			return fail_key(ld, k, "bad status range '%s' (expected e.g. 200-399, each 100..599)", value);
		if (lo > hi)
			return fail_key(ld, k, "bad status range '%s': low end above high end", value);
	}
	ld->cfg.expect_lo = (unsigned)lo;
	ld->cfg.expect_hi = (unsigned)hi;
	return 0;
}

/* [upstream] x_forwarded_for: what the upstream request says about the client address. */
static int set_xff(struct load *ld, const struct key *k, const char *value)
{
	if (strcmp(value, "append") == 0)
		ld->cfg.x_forwarded_for = RH_XFF_APPEND;
	else if (strcmp(value, "replace") == 0)
		ld->cfg.x_forwarded_for = RH_XFF_REPLACE;
	else if (strcmp(value, "off") == 0)
		ld->cfg.x_forwarded_for = RH_XFF_OFF;
	else
		return fail_key(ld, k, "unknown mode '%s' (valid: append, replace, off)", value);
	return 0;
}

/* rh_parse_size's ceiling is the one framing numbers have */
_Static_assert(RH_PARSE_SIZE_MAX == RH_CONFIG_MAX_BODY_SIZE, "max_body_size bound");

/* [limits] max_body_size: 0 = unlimited. */
static int set_max_body_size(struct load *ld, const struct key *k, const char *value)
{
	const char *why;
	uint64_t v;

	if (rh_parse_size(value, &v, &why) < 0)
		return fail_key(ld, k, "bad size '%s': %s", value, why);
	ld->cfg.max_body_size = v;
	return 0;
}

/* [health_check] host: goes into the probe's Host header as is. */
static int set_health_host(struct load *ld, const struct key *k, const char *value)
{
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return fail_key(ld, k, "space or control character in '%s'", value);
	return set_string(ld, k, value);
}

/* [health_check] initial: up (routed to before the first result, the default) or down. */
static int set_initial(struct load *ld, const struct key *k, const char *value)
{
	if (strcmp(value, "up") == 0)
		ld->cfg.initial_down = false;
	else if (strcmp(value, "down") == 0)
		ld->cfg.initial_down = true;
	else
		return fail_key(ld, k, "unknown state '%s' (valid: up, down)", value);
	return 0;
}

/* [upstream] resolve: a duration, 0 = only at load. */
static int set_resolve(struct load *ld, const struct key *k, const char *value)
{
	const char *why;
	uint32_t ms;

	if (strcmp(value, "0") == 0) {
		ld->cfg.resolve_ms = 0;
		return 0;
	}
	if (rh_parse_duration_ms(value, &ms, &why) < 0)
		return fail_key(ld, k, "bad duration '%s': %s (0 = only at start)", value, why);
	if (ms < 100)
		return fail_key(ld, k, "'%s' is too short (at least 100ms, or 0)", value);
	ld->cfg.resolve_ms = ms;
	return 0;
}

/* [upstream] resolver: the nameserver's numeric address and port ("127.0.0.1:8600", "[::1]:53"). */
static int set_resolver(struct load *ld, const struct key *k, const char *value)
{
	struct addrinfo *res;
	int rc;

	if (*value == '\0') {
		memset(&ld->cfg.resolver, 0, sizeof(ld->cfg.resolver));
		return 0;
	}
	unsigned saved = ld->flags;
	ld->flags |= RH_CONFIG_NO_RESOLVE; /* a nameserver named by a name would need a nameserver */
	rc = resolve(ld, k, value, false, &res);
	ld->flags = saved;
	if (rc < 0)
		return -1;
	rc = fill_sockaddr(&ld->cfg.resolver, res);
	freeaddrinfo(res);
	if (rc < 0)
		return fail_key(ld, k, "cannot use address '%s'", value);
	return 0;
}

#define F(field) offsetof(struct rh_config, field)

static const struct key keys[] = {
	{"server", "listen", K_CUSTOM, 0, 0, 0, false, set_listen},
	{"server", "threads", K_UINT, F(threads), 0, MAX_THREADS, false, NULL},
	{"server", "max_connections", K_UINT, F(max_connections), 1, 10000000, false, NULL},
	{"server", "listen_tls", K_CUSTOM, 0, 0, 0, false, set_listen_tls},
	{"server", "cert", K_CUSTOM, 0, 0, 0, false, set_cert},
	{"server", "key", K_CUSTOM, 0, 0, 0, false, set_key},
	{"server", "user", K_CUSTOM, F(user), 0, 0, true, set_account},
	{"server", "group", K_CUSTOM, F(group), 0, 0, true, set_account},

	{"upstream", "algorithm", K_CUSTOM, 0, 0, 0, false, set_algorithm},
	{"upstream", "hash_key", K_CUSTOM, 0, 0, 0, false, set_hash_key},
	{"upstream", "hash_balance_factor", K_CUSTOM, 0, 0, 0, false, set_hash_balance_factor},
	{"upstream", "backend", K_CUSTOM, 0, 0, 0, false, set_backend},
	{"upstream", "max_iterations", K_UINT, F(max_iterations), 1, 1000000, false, NULL},
	{"upstream", "keepalive", K_UINT, F(keepalive), 0, 100000, false, NULL},
	{"upstream", "host_header", K_CUSTOM, F(host_header), 0, 0, true, set_host_header},
	{"upstream", "tls", K_CUSTOM, 0, 0, 0, false, set_tls},
	{"upstream", "sni", K_CUSTOM, F(sni), 0, 0, true, set_sni},
	{"upstream", "verify", K_BOOL, F(verify), 0, 0, false, NULL},
	{"upstream", "ca_file", K_CUSTOM, F(ca_file), 0, 0, true, set_ca_file},
	{"upstream", "x_forwarded_for", K_CUSTOM, 0, 0, 0, false, set_xff},
	{"upstream", "retries", K_UINT, F(retries), 0, 10, false, NULL},
	{"upstream", "splice", K_BOOL, F(splice), 0, 0, false, NULL},
	{"upstream", "queue_timeout", K_DURATION, F(queue_timeout_ms), 1, 0, false, NULL},
	{"upstream", "resolve", K_CUSTOM, 0, 0, 0, false, set_resolve},
	{"upstream", "resolver", K_CUSTOM, 0, 0, 0, true, set_resolver},

	{"health_check", "type", K_CUSTOM, 0, 0, 0, false, set_health_type},
	{"health_check", "frequency", K_DURATION, F(health_frequency_ms), 10, 0, false, NULL},
	{"health_check", "timeout", K_DURATION, F(health_timeout_ms), 1, 0, false, NULL},
	{"health_check", "rise", K_UINT, F(rise), 1, 1000, false, NULL},
	{"health_check", "fall", K_UINT, F(fall), 1, 1000, false, NULL},
	{"health_check", "path", K_CUSTOM, F(health_path), 0, 0, false, set_health_path},
	{"health_check", "expect", K_CUSTOM, 0, 0, 0, false, set_expect},
	{"health_check", "tls", K_CUSTOM, 0, 0, 0, false, set_health_tls},
	{"health_check", "cert_warn_days", K_UINT, F(cert_warn_days), 0, 3650, false, NULL},
	{"health_check", "host", K_CUSTOM, F(health_host), 0, 0, true, set_health_host},
	{"health_check", "passive", K_BOOL, F(passive), 0, 0, false, NULL},
	{"health_check", "initial", K_CUSTOM, 0, 0, 0, false, set_initial},
	{"health_check", "jitter", K_UINT, F(jitter_pct), 0, 50, false, NULL},

	{"timeouts", "connect", K_DURATION, F(connect_ms), 1, 0, false, NULL},
	{"timeouts", "client_header", K_DURATION, F(client_header_ms), 1, 0, false, NULL},
	{"timeouts", "upstream_read", K_DURATION, F(upstream_read_ms), 1, 0, false, NULL},
	{"timeouts", "idle", K_DURATION, F(idle_ms), 1, 0, false, NULL},
	{"timeouts", "shutdown", K_DURATION, F(shutdown_ms), 1, 0, false, NULL},

	{"limits", "max_body_size", K_CUSTOM, 0, 0, 0, false, set_max_body_size},

	{"admin", "listen", K_CUSTOM, 0, 0, 0, false, set_admin_listen},

	{"log", "level", K_CUSTOM, 0, 0, 0, false, set_log_level},
	{"log", "access", K_CUSTOM, F(access_log), 0, 0, true, set_access_log},
};

static bool known_section(const char *name)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(name, sections[i]) == 0)
			return true;
	return false;
}

static int unknown_section(struct load *ld, const char *name)
{
	char valid[128] = "";
	size_t used = 0;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		int n = snprintf(valid + used, sizeof(valid) - used, "%s%s", used ? ", " : "", sections[i]);

		if (n < 0 || (size_t)n >= sizeof(valid) - used)
			break;
		used += (size_t)n;
	}
	return fail_at(ld, ld->lineno, "[%s]: unknown section (valid: %s)", name, valid);
}

static int unknown_key(struct load *ld, const char *section, const char *name)
{
	char valid[RH_CONFIG_ERR_LEN] = "";
	size_t used = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int n;

		if (strcmp(keys[i].section, section) != 0)
			continue;
		n = snprintf(valid + used, sizeof(valid) - used, "%s%s", used ? ", " : "", keys[i].name);
		if (n < 0 || (size_t)n >= sizeof(valid) - used)
			break;
		used += (size_t)n;
	}
	return fail_at(ld, ld->lineno, "%s.%s: unknown key (valid in [%s]: %s)", section, name, section, valid);
}

static int apply(struct load *ld, const struct key *k, const char *value)
{
	void *field = (char *)&ld->cfg + k->off;
	const char *why;
	uint64_t u;
	uint32_t ms;
	bool b;

	if (*value == '\0' && !k->allow_empty)
		return fail_key(ld, k, "missing value");
	switch (k->kind) {
	case K_UINT:
		if (rh_parse_uint(value, k->min, k->max, &u, &why) < 0)
			return fail_key(ld, k, "'%s': %s (%llu..%llu)", value, why, (unsigned long long)k->min,
					(unsigned long long)k->max);
		*(unsigned *)field = (unsigned)u;
		return 0;
	case K_DURATION:
		if (rh_parse_duration_ms(value, &ms, &why) < 0)
			return fail_key(ld, k, "bad duration '%s': %s", value, why);
		if (ms < k->min)
			return fail_key(ld, k, "'%s' is too short (at least %llums)", value, (unsigned long long)k->min);
		*(uint32_t *)field = ms;
		return 0;
	case K_BOOL:
		if (rh_parse_bool(value, &b, &why) < 0)
			return fail_key(ld, k, "'%s': %s", value, why);
		*(bool *)field = b;
		return 0;
	case K_CUSTOM:
		return k->set(ld, k, value);
	}
	return -1;
}

/* inih callback, one call per "key = value". Returns 0 (inih's "error") once anything failed; the
 * reader then stops the parse, since this inih build does not stop on the first error itself. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;

	if (ld->failed)
		return 0;
	if (*section == '\0') {
		fail_at(ld, ld->lineno, "%s: key outside any [section]", name);
		return 0;
	}
	if (!known_section(section)) {
		unknown_section(ld, section);
		return 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return apply(ld, &keys[i], value) == 0;
	unknown_key(ld, section, name);
	return 0;
}

/* getc() on the file or on the bytes of rh_config_load_buffer. */
static int next_byte(struct load *ld)
{
	if (ld->f != NULL)
		return getc(ld->f);
	if (ld->text_pos >= ld->text_len)
		return EOF;
	return (unsigned char)ld->text[ld->text_pos++];
}

/* fgets-like reader for ini_parse_stream: hands inih one line (without its newline) per call and
 * counts lines. Stops the parse (returns NULL) after any error, on a line that would not fit
 * inih's <num>-byte buffer, and on a NUL byte (inih would silently cut the line there). */
static char *read_line(char *str, int num, void *stream)
{
	struct load *ld = stream;
	size_t len = 0, cap = num > 0 ? (size_t)num + 1 : 1; /* the text, a CR, and one byte over */
	int ch = EOF;

	if (ld->failed)
		return NULL;
	if (ld->bufcap < cap) {
		free(ld->buf);
		if ((ld->buf = malloc(cap)) == NULL) {
			fail_at(ld, 0, "out of memory");
			return NULL;
		}
		ld->bufcap = cap;
	}
	/* read at most one byte past what can fit: a huge line (or /dev/zero) is refused without
	 * being held in memory */
	errno = 0;
	while (len < cap && (ch = next_byte(ld)) != EOF && ch != '\n')
		ld->buf[len++] = (char)ch;
	if (len == 0 && ch == EOF) {
		if (ld->f != NULL && ferror(ld->f))
			fail_at(ld, 0, "cannot read: %s", strerror(errno ? errno : EIO));
		return NULL;
	}
	ld->lineno++;
	if (len > 0 && ld->buf[len - 1] == '\r' && len <= (size_t)num)
		len--;
	if (memchr(ld->buf, '\0', len) != NULL) {
		fail_at(ld, ld->lineno, "NUL byte in line (not a text file?)");
		return NULL;
	}
	/* the line plus its newline must fit in <num> bytes, so the text gets num - 1 */
	if (num < 1 || len > (size_t)num - 1) {
		fail_at(ld, ld->lineno, "line longer than %d bytes (inih limit)", num);
		return NULL;
	}
	memcpy(str, ld->buf, len);
	str[len] = '\0';

	/* inih never reports a section without keys; catch "[typo]" here when it is unambiguous */
	if (str[0] == '[') {
		char *close = strchr(str, ']');

		if (close != NULL && memchr(str, ';', (size_t)(close - str)) == NULL) {
			*close = '\0';
			if (!known_section(str + 1)) {
				unknown_section(ld, str + 1);
				return NULL;
			}
			*close = ']';
		}
	}
	return str;
}

static int set_defaults(struct rh_config *c)
{
	c->max_connections = 65536;
	c->algorithm = RH_LB_ROUND_ROBIN;
	c->max_iterations = 256;
	c->keepalive = 64;
	c->verify = true;
	c->health_type = RH_HEALTH_TCP;
	c->health_frequency_ms = 5000;
	c->health_timeout_ms = 1000;
	c->rise = 1;
	c->fall = 1;
	c->expect_lo = 200;
	c->expect_hi = 399;
	c->passive = true;
	c->jitter_pct = 5;
	c->retries = 2;
	c->queue_timeout_ms = 1000;
	c->cert_warn_days = 14;
	c->connect_ms = 3000;
	c->client_header_ms = 10000;
	c->upstream_read_ms = 30000;
	c->idle_ms = 60000;
	c->shutdown_ms = 10000;
	c->log_level = RH_CONFIG_LOG_INFO;
	c->splice = true;
	c->x_forwarded_for = RH_XFF_APPEND;
	c->max_body_size = 0;
	c->hash_key = (struct rh_hash_key){.kind = RH_HASH_URI};
	c->hash_balance_factor = 0;
	c->health_path = strdup("/");
	return c->health_path != NULL ? 0 : -1;
}

/* What only the whole file can tell: missing backends, the default listener, threads = 0, keys
 * that default to their cert file, a TLS listener without a certificate, health_check tls. */
static int finish_load(struct load *ld)
{
	struct rh_config *c = &ld->cfg;
	static const struct key listen_key = {"server", "listen", K_CUSTOM, 0, 0, 0, false, set_listen};

	if (c->n_names == 0)
		return fail_at(ld, 0, "upstream.backend: no backends configured");
	if (resolve_names(ld) < 0)
		return -1;
	/* no check that every backend has weight 0 (draining them all is an operator's choice), nor of
	 * hash_key or hash_balance_factor without consistent_hash (kept for when it is chosen again) */
	if (c->n_listens_tls > 0 && c->n_certs == 0)
		return fail_at(ld, c->listen_tls_line, "server.listen_tls: needs a certificate (server.cert)");
	for (size_t i = 0; i < c->n_certs; i++) {
		struct rh_cert_conf *cc = &c->certs[i];

		if (cc->key != NULL)
			continue;
		/* a PEM holding both */
		cc->key = strdup(cc->cert);
		if (cc->key == NULL)
			return fail_at(ld, cc->cert_line, "out of memory");
		cc->key_line = cc->cert_line;
	}
	if (!ld->health_tls_set)
		c->health_tls = c->tls;
	if (c->health_tls && !c->tls && c->health_type != RH_HEALTH_NONE)
		return fail_at(ld, ld->health_tls_line,
			       "health_check.tls: probes speak TLS only to TLS backends (set upstream.tls = true)");
	if (c->n_listens == 0 && c->n_listens_tls == 0) {
		ld->lineno = 0;
		if (set_listen(ld, &listen_key, "0.0.0.0:6188") < 0)
			return -1;
	}
	if (c->threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		c->threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;
	}
	return 0;
}

/* rh_config_load and rh_config_load_buffer: the file <path> when <text> is NULL, else <text>[0..<len>)
 * under the name <path>. */
static int load(struct rh_config *cfg, const char *path, const char *text, size_t len, unsigned flags, char *err,
		size_t errlen)
{
	struct load *ld;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	/* heap, not stack: struct load carries a 512-byte message and the whole config */
	ld = calloc(1, sizeof(*ld));
	if (ld == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	ld->path = path;
	ld->flags = flags;
	ld->text = text;
	ld->text_len = len;

	if (set_defaults(&ld->cfg) < 0 || (ld->cfg.path = strdup(path)) == NULL) {
		fail_at(ld, 0, "out of memory");
		goto fail;
	}
	if (text == NULL && (ld->f = fopen(path, "r")) == NULL) {
		fail_at(ld, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	rc = ini_parse_stream(read_line, ld, on_key, ld);
	/* inih's own syntax errors (no '=', no ']') only show up here, as a line number */
	if (rc > 0 && (!ld->failed || (unsigned)rc < ld->err_line)) {
		ld->failed = false;
		fail_at(ld, (unsigned)rc, "syntax error: expected '[section]' or 'key = value'");
		goto fail;
	}
	if (rc == -2)
		fail_at(ld, 0, "out of memory");
	if (ld->failed || finish_load(ld) < 0)
		goto fail;

	if (ld->f != NULL)
		fclose(ld->f);
	free(ld->buf);
	*cfg = ld->cfg;
	free(ld);
	return 0;

fail:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", ld->err);
	if (ld->f != NULL)
		fclose(ld->f);
	free(ld->buf);
	rh_config_finish(&ld->cfg);
	free(ld);
	return -1;
}

int rh_config_load(struct rh_config *cfg, const char *path, char *err, size_t errlen)
{
	return load(cfg, path, NULL, 0, 0, err, errlen);
}

int rh_config_load_buffer(struct rh_config *cfg, const char *name, const char *text, size_t len, unsigned flags,
			  char *err, size_t errlen)
{
	/* a NULL <text> would mean "open <name>": an empty buffer is "" */
	return load(cfg, name != NULL ? name : "(config)", text != NULL ? text : "", text != NULL ? len : 0, flags, err,
		    errlen);
}

void rh_config_finish(struct rh_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->listens);
	free(cfg->listens_tls);
	for (size_t i = 0; i < cfg->n_certs; i++) {
		free(cfg->certs[i].cert);
		free(cfg->certs[i].key);
	}
	free(cfg->certs);
	free(cfg->backends);
	free(cfg->names);
	free(cfg->health_host);
	free(cfg->host_header);
	free(cfg->sni);
	free(cfg->ca_file);
	free(cfg->health_path);
	free(cfg->access_log);
	free(cfg->user);
	free(cfg->group);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- the effective configuration (roundhouse -T) ---- */

static const char *
on_off(bool b)
{
	return b ? "true" : "false";
}

static const char *
algorithm_name(enum rh_lb_algorithm a)
{
	for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
		if (algorithms[i].algorithm == a)
			return algorithms[i].name;
	return "?";
}

void rh_config_print(const struct rh_config *c, FILE *out)
{
	static const char *const xff[] = {[RH_XFF_APPEND] = "append", [RH_XFF_REPLACE] = "replace",
					  [RH_XFF_OFF] = "off"};
	static const char *const types[] = {[RH_HEALTH_TCP] = "tcp", [RH_HEALTH_HTTP] = "http",
					    [RH_HEALTH_NONE] = "none"};

	fprintf(out, "; the effective configuration of %s: every key with its value, defaults filled in\n",
		c->path ? c->path : "(config)");
	fprintf(out, "[server]\n");
	for (size_t i = 0; i < c->n_listens; i++)
		fprintf(out, "listen = %s\n", c->listens[i].text);
	for (size_t i = 0; i < c->n_listens_tls; i++)
		fprintf(out, "listen_tls = %s\n", c->listens_tls[i].text);
	for (size_t i = 0; i < c->n_certs; i++)
		fprintf(out, "cert = %s\nkey = %s\n", c->certs[i].cert, c->certs[i].key);
	fprintf(out, "threads = %u\nmax_connections = %u\n", c->threads, c->max_connections);
	fprintf(out, "user = %s\ngroup = %s\n", c->user ? c->user : "", c->group ? c->group : "");

	fprintf(out, "\n[upstream]\nalgorithm = %s\n", algorithm_name(c->algorithm));
	switch (c->hash_key.kind) {
	case RH_HASH_URI: fprintf(out, "hash_key = uri\n"); break;
	case RH_HASH_PATH: fprintf(out, "hash_key = path\n"); break;
	case RH_HASH_CLIENT_IP: fprintf(out, "hash_key = client_ip\n"); break;
	case RH_HASH_HEADER: fprintf(out, "hash_key = header:%s\n", c->hash_key.name); break;
	case RH_HASH_COOKIE: fprintf(out, "hash_key = cookie:%s\n", c->hash_key.name); break;
	}
	fprintf(out, "hash_balance_factor = %u\n", c->hash_balance_factor);
	for (size_t i = 0; i < c->n_names; i++) {
		const struct rh_backend_name *nm = &c->names[i];

		/* what the name gave at load follows as a comment (the line itself is what a reload
		 * reads), cut to fit the loader's line limit */
		char line[INI_MAX_LINE - 1];
		int used = snprintf(line, sizeof(line), "backend = %s weight=%u", nm->spec, nm->weight);
		if (nm->max_conns)
			used += snprintf(line + used, sizeof(line) - (size_t)used, " max_conns=%u", nm->max_conns);
		if (!nm->numeric) {
			size_t n = 0;
			for (size_t j = 0; j < c->n_backends && (size_t)used < sizeof(line); j++)
				if (c->backends[j].name == i)
					used += snprintf(line + used, sizeof(line) - (size_t)used, "%s%s",
							 n++ ? ", " : "  ; ", c->backends[j].addr.text);
			if (!n && (size_t)used < sizeof(line))
				used += snprintf(line + used, sizeof(line) - (size_t)used, "  ; %s", nm->unresolved);
			if ((size_t)used >= sizeof(line))
				memcpy(line + sizeof(line) - 4, "...", 4);
		}
		fprintf(out, "%s\n", line);
	}
	fprintf(out, "max_iterations = %u\nkeepalive = %u\n", c->max_iterations, c->keepalive);
	fprintf(out, "host_header = %s\n", c->host_header ? c->host_header : "");
	fprintf(out, "tls = %s\nsni = %s\nverify = %s\nca_file = %s\n", on_off(c->tls), c->sni ? c->sni : "",
		on_off(c->verify), c->ca_file ? c->ca_file : "");
	fprintf(out, "x_forwarded_for = %s\nretries = %u\nqueue_timeout = %ums\nsplice = %s\n",
		xff[c->x_forwarded_for], c->retries, c->queue_timeout_ms, on_off(c->splice));
	if (c->resolve_ms)
		fprintf(out, "resolve = %ums\n", c->resolve_ms);
	else
		fprintf(out, "resolve = 0\n");
	fprintf(out, "resolver = %s\n", c->resolver.len ? c->resolver.text : "");

	fprintf(out, "\n[health_check]\ntype = %s\nfrequency = %ums\ntimeout = %ums\nrise = %u\nfall = %u\n",
		types[c->health_type], c->health_frequency_ms, c->health_timeout_ms, c->rise, c->fall);
	fprintf(out, "path = %s\n", c->health_path);
	if (c->expect_lo == c->expect_hi)
		fprintf(out, "expect = %u\n", c->expect_lo);
	else
		fprintf(out, "expect = %u-%u\n", c->expect_lo, c->expect_hi);
	fprintf(out, "host = %s\npassive = %s\ninitial = %s\njitter = %u\ntls = %s\ncert_warn_days = %u\n",
		c->health_host ? c->health_host : "", on_off(c->passive), c->initial_down ? "down" : "up",
		c->jitter_pct, on_off(c->health_tls), c->cert_warn_days);

	fprintf(out, "\n[timeouts]\nconnect = %ums\nclient_header = %ums\nupstream_read = %ums\nidle = %ums\n"
		"shutdown = %ums\n",
		c->connect_ms, c->client_header_ms, c->upstream_read_ms, c->idle_ms, c->shutdown_ms);
	fprintf(out, "\n[limits]\nmax_body_size = %llu\n", (unsigned long long)c->max_body_size);
	if (c->admin_listen.len)
		fprintf(out, "\n[admin]\nlisten = %s\n", c->admin_listen.text);
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	fprintf(out, "\n[log]\nlevel = %s\naccess = %s\n", levels[c->log_level & 3],
		c->access_log ? c->access_log : "off");
}
