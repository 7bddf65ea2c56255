/* roundhouse: command line, start-up order, signals, shutdown.
 *
 * Start-up: config (names resolved) -> runtime snapshot #1 -> every worker's listeners bound
 * (so a port in use fails here, with a message) -> health thread (the snapshot's one writer from
 * then on) -> worker threads. Then the main
 * thread waits for signals. SIGINT/SIGTERM: workers stop accepting and finish in-flight requests
 * within `[timeouts] shutdown`, then everything is joined and freed. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "config.h"
#include "roundhouse/access_log.h"
#include "roundhouse/admin.h"
#include "roundhouse/buf.h"
#include "roundhouse/config.h"
#include "roundhouse/conn.h"
#include "roundhouse/health.h"
#include "roundhouse/log.h"
#include "roundhouse/tls.h"
#include "roundhouse/net.h"
#include "roundhouse/notify.h"
#include "roundhouse/runtime.h"
#include "roundhouse/timer.h"
#include "roundhouse/upgrade.h"
#include "roundhouse/worker.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: roundhouse -c FILE [-t | -T | --upgrade-from PID]\n"
		"\n"
		"A load-balancing HTTP/1.1 reverse proxy.\n"
		"\n"
		"  -c, --config FILE  configuration file (INI; see etc/roundhouse.ini)\n"
		"  -t, --test         check the configuration file and exit (0 valid, 1 not)\n"
		"  -T, --print-config print the effective configuration (every default filled in), exit\n"
		"      --upgrade-from PID  binary upgrade: take the listening sockets over from the running\n"
		"                     roundhouse PID, which then stops accepting and drains\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n"
		"\n"
		"Runs in the foreground and logs to stderr. Signals: SIGTERM, SIGINT or SIGQUIT: stop accepting,\n"
		"finish in-flight requests (at most [timeouts] shutdown), exit 0. SIGHUP: reload the file.\n"
		"SIGUSR1: reopen the access log. SIGUSR2: binary upgrade (starts the binary at the same path\n"
		"with --upgrade-from this pid).\n");
}

/* Descriptors: one per client and one per upstream connection, plus a few: the soft limit is raised
 * toward that (never lowered), as far as the hard limit allows; only a hard limit below it is worth
 * a warning. */
static void
raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;
	rlim_t need = 2 * (rlim_t)max_connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		rh_log_warn("open file limit %llu (the hard limit) is below 2 x max_connections (%u): "
			    "connections beyond it will wait in the kernel's accept queue",
			    (unsigned long long)rl.rlim_cur, max_connections);
}

/* [server] user / group: after every socket is bound and every file opened, a process started as
 * root goes on as them (as nginx's workers do). 0, or -1 with a message logged. */
static int
drop_privileges(const struct rh_config *cfg)
{
	if (!cfg->user && !cfg->group)
		return 0;
	if (geteuid() != 0) {
		rh_log_info("[server] user/group: not started as root; running as uid %ld", (long)geteuid());
		return 0;
	}
	struct passwd *pw = NULL;
	gid_t gid;
	if (cfg->user && !(pw = getpwnam(cfg->user))) {
		rh_log_error("%s: server.user: no user '%s'", cfg->path, cfg->user);
		return -1;
	}
	if (cfg->group) {
		struct group *gr = getgrnam(cfg->group);
		if (!gr) {
			rh_log_error("%s: server.group: no group '%s'", cfg->path, cfg->group);
			return -1;
		}
		gid = gr->gr_gid;
	} else {
		gid = pw->pw_gid;
	}
	if (setgroups(1, &gid) == -1 || setgid(gid) == -1 || (pw && setuid(pw->pw_uid) == -1)) {
		rh_log_error("switching to user %s group %s: %s", cfg->user ? cfg->user : "-",
			     cfg->group ? cfg->group : "-", strerror(errno));
		return -1;
	}
	rh_log_info("running as uid %ld gid %ld", (long)getuid(), (long)getgid());
	return 0;
}

/* Logs each setting a reload read but cannot apply to a running process. */
static void
log_restart_needed(const struct rh_config *run, const struct rh_config *next)
{
	const char *what[16];
	size_t n = 0;
	bool same = run->n_listens == next->n_listens && run->n_listens_tls == next->n_listens_tls;

	for (size_t i = 0; same && i < run->n_listens; i++)
		same = strcmp(run->listens[i].text, next->listens[i].text) == 0;
	for (size_t i = 0; same && i < run->n_listens_tls; i++)
		same = strcmp(run->listens_tls[i].text, next->listens_tls[i].text) == 0;
	if (!same)
		what[n++] = "[server] listen/listen_tls";
	same = run->n_certs == next->n_certs;
	for (size_t i = 0; same && i < run->n_certs; i++)
		same = strcmp(run->certs[i].cert, next->certs[i].cert) == 0 &&
		       strcmp(run->certs[i].key, next->certs[i].key) == 0;
	if (!same)
		what[n++] = "[server] cert/key";
	if (run->threads != next->threads)
		what[n++] = "[server] threads";
	if (run->max_connections != next->max_connections)
		what[n++] = "[server] max_connections";
#define DIFF_STR(a, b) (((a) == NULL) != ((b) == NULL) || ((a) && strcmp((a), (b)) != 0))
	if (DIFF_STR(run->user, next->user) || DIFF_STR(run->group, next->group))
		what[n++] = "[server] user/group";
	if (run->tls != next->tls || run->verify != next->verify || run->health_tls != next->health_tls ||
	    DIFF_STR(run->sni, next->sni) || DIFF_STR(run->ca_file, next->ca_file))
		what[n++] = "[upstream] tls/sni/verify/ca_file";
	if (strcmp(run->admin_listen.text, next->admin_listen.text) != 0)
		what[n++] = "[admin] listen";
	if (DIFF_STR(run->access_log, next->access_log))
		what[n++] = "[log] access";
	if (run->shutdown_ms != next->shutdown_ms)
		what[n++] = "[timeouts] shutdown";
#undef DIFF_STR
	for (size_t i = 0; i < n; i++)
		rh_log_warn("reload: %s changed: needs a restart or a binary upgrade (--upgrade-from); the "
			    "running value stays", what[i]);
	if (run->n_certs)
		rh_log_info("reload: certificates are read at start: a binary upgrade (SIGUSR2) loads new "
			    "ones without a refused connection");
}

/* The upstream TLS settings need a restart (the TLS context is built at start): the reloaded config
 * carries the running ones, so backends it adds get the same SNI and checks the same warnings as
 * those that stay. 0, or -1 when memory ran out. */
static int
keep_running_tls(const struct rh_config *run, struct rh_config *next)
{
	char *sni = run->sni ? strdup(run->sni) : NULL;
	char *ca = run->ca_file ? strdup(run->ca_file) : NULL;

	if ((run->sni && !sni) || (run->ca_file && !ca)) {
		free(sni);
		free(ca);
		return -1;
	}
	free(next->sni);
	free(next->ca_file);
	next->sni = sni;
	next->ca_file = ca;
	next->tls = run->tls;
	next->verify = run->verify;
	next->health_tls = run->health_tls;
	return 0;
}

/* SIGHUP or POST /reload: read and check the file in this thread (names resolve here, never on a
 * worker or the control thread); hand a good config to the control thread, report a bad one. */
static void
reload(const char *path, const struct rh_config *running, struct rh_health *h)
{
	char err[RH_CONFIG_ERR_LEN];
	struct rh_config *next = calloc(1, sizeof(*next));

	rh_log_info("reload: reading %s", path);
	if (!next) {
		rh_log_error("reload: out of memory; keeping the running configuration");
		rh_health_reload_failed(h, "out of memory");
		return;
	}
	if (rh_config_load(next, path, err, sizeof(err)) == -1) {
		rh_log_error("reload: %s; keeping the running configuration", err);
		rh_health_reload_failed(h, err);
		free(next);
		return;
	}
	for (size_t i = 0; i < next->n_names; i++)
		if (next->names[i].unresolved[0])
			rh_log_warn("reload: %s:%u: upstream.backend: %s; applied without it, resolving it "
				    "again until it resolves", path, next->names[i].line, next->names[i].unresolved);
	log_restart_needed(running, next);
	if (keep_running_tls(running, next) == -1) {
		rh_log_error("reload: out of memory; keeping the running configuration");
		rh_health_reload_failed(h, "out of memory");
		rh_config_finish(next);
		free(next);
		return;
	}
	rh_log_set_level((enum rh_log_level)next->log_level);
	rh_health_reload(h, next); /* the control thread owns it from here */
}

/* How long a new process that has the listeners may take to say it serves (it loads its config and
 * resolves names first), before the old one stops waiting for it. */
#define UPGRADE_READY_S 60

/* SIGUSR2: starts the new binary (the same path, the same arguments) with --upgrade-from this pid;
 * it takes the listeners over through the upgrade socket. Returns its pid, or -1. */
static pid_t
start_upgrade(char **argv)
{
	size_t argc = 0;
	while (argv[argc])
		argc++;
	char **args = calloc(argc + 3, sizeof(*args));
	char self[32];

	if (!args)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--upgrade-from") == 0) { /* this process was an upgrade too */
			i++;
			continue;
		}
		if (strncmp(argv[i], "--upgrade-from=", 15) == 0)
			continue;
		args[n++] = argv[i];
	}
	snprintf(self, sizeof(self), "%ld", (long)getpid());
	args[n++] = "--upgrade-from";
	args[n++] = self;
	args[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL); /* the new process waits for signals itself */
		execvp(args[0], args);
		static const char msg[] = "roundhouse: upgrade: exec of the new binary failed\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		_exit(127);
	}
	free(args);
	return pid;
}

/* The listeners to hand to a new process: every worker's, and the admin listener. */
static struct rh_inherited *
listeners_to_hand_over(const struct rh_worker *workers, unsigned n, const struct rh_admin *admin,
		       const struct rh_config *cfg, size_t *count)
{
	size_t total = 1;
	for (unsigned i = 0; i < n; i++)
		total += workers[i].n_listeners;
	struct rh_inherited *v = calloc(total, sizeof(*v));
	size_t k = 0;

	if (!v)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		for (size_t j = 0; j < workers[i].n_listeners; j++) {
			const struct rh_listener *l = &workers[i].listeners[j];
			if (l->ep.closed)
				continue;
			v[k] = (struct rh_inherited){
				.kind = l->tls ? RH_INHERITED_LISTEN_TLS : RH_INHERITED_LISTEN, .fd = l->ep.fd};
			memcpy(v[k].addr, l->addr, sizeof(v[k].addr));
			k++;
		}
	if (admin) {
		v[k] = (struct rh_inherited){.kind = RH_INHERITED_ADMIN, .fd = rh_admin_listen_fd(admin)};
		snprintf(v[k].addr, sizeof(v[k].addr), "%s", cfg->admin_listen.text);
		k++;
	}
	*count = k;
	return v;
}

/* The handed-over listeners no worker took for its address: spread over the workers when the
 * address is still configured (nothing queued on them is lost), else closed (an address the new
 * config dropped: what waits there is reset, as a restart would). */
static int
place_leftovers(struct rh_server *srv, struct rh_worker *workers, unsigned n, char *err, size_t errlen)
{
	const struct rh_config *cfg = srv->cfg;
	unsigned next = 0;

	for (size_t k = 0; k < srv->n_inherited; k++) {
		struct rh_inherited *in = &srv->inherited[k];
		bool known = false;

		if (in->taken || in->kind == RH_INHERITED_ADMIN)
			continue;
		for (size_t i = 0; i < cfg->n_listens && !known; i++)
			known = in->kind == RH_INHERITED_LISTEN && strcmp(cfg->listens[i].text, in->addr) == 0;
		for (size_t i = 0; i < cfg->n_listens_tls && !known; i++)
			known = in->kind == RH_INHERITED_LISTEN_TLS && strcmp(cfg->listens_tls[i].text, in->addr) == 0;
		in->taken = true;
		if (!known) {
			rh_log_warn("upgrade: %s is not in the new configuration: closed", in->addr);
			close(in->fd);
			continue;
		}
		if (rh_worker_adopt_listener(&workers[next], in->fd, in->kind == RH_INHERITED_LISTEN_TLS,
					     in->addr) == -1) {
			snprintf(err, errlen, "listen %s: epoll_ctl: %s", in->addr, strerror(errno));
			return -1;
		}
		next = (next + 1) % n;
	}
	return 0;
}


/* What the workers did, summed, at exit: the handshake counts show whether resumption works. */
static void
log_totals(const struct rh_worker *workers, unsigned n, const struct rh_server *srv)
{
	struct {
		uint64_t accepted, requests, responses_local, aborted, upstream_connects, upstream_reused,
			upstream_tls_full, upstream_tls_resumed, edge_tls_full, edge_tls_resumed,
			edge_tls_failed, retries, retries_denied, queued, queue_timeouts;
	} t = {0};

	for (unsigned i = 0; i < n; i++) {
		const struct rh_worker_stats *s = &workers[i].stats;
		t.accepted += rh_stat_get(&s->accepted);
		t.requests += rh_stat_get(&s->requests);
		t.responses_local += rh_stat_get(&s->responses_local);
		t.aborted += rh_stat_get(&s->aborted);
		t.upstream_connects += rh_stat_get(&s->upstream_connects);
		t.upstream_reused += rh_stat_get(&s->upstream_reused);
		t.upstream_tls_full += rh_stat_get(&s->upstream_tls_full);
		t.upstream_tls_resumed += rh_stat_get(&s->upstream_tls_resumed);
		t.edge_tls_full += rh_stat_get(&s->edge_tls_full);
		t.edge_tls_resumed += rh_stat_get(&s->edge_tls_resumed);
		t.edge_tls_failed += rh_stat_get(&s->edge_tls_failed);
		t.retries += rh_stat_get(&s->retries);
		t.retries_denied += rh_stat_get(&s->retries_denied);
		t.queued += rh_stat_get(&s->queued);
		t.queue_timeouts += rh_stat_get(&s->queue_timeouts);
	}
	/* every request counts, whoever answered it: the backend, the proxy itself (4xx, 502, 503,
	 * 504), or nobody (the client went away, or the response was cut) */
	rh_log_info("totals: %" PRIu64 " connections, %" PRIu64 " requests (%" PRIu64
		    " answered by a backend, %" PRIu64 " by the proxy, %" PRIu64 " cut off), %" PRIu64
		    " upstream connects, %" PRIu64 " upstream reuses",
		    t.accepted, t.requests + t.responses_local + t.aborted, t.requests, t.responses_local,
		    t.aborted, t.upstream_connects, t.upstream_reused);
	if (t.retries || t.retries_denied)
		rh_log_info("retries: %" PRIu64 " sent, %" PRIu64 " refused by the retry budget", t.retries,
			    t.retries_denied);
	if (t.queued)
		rh_log_info("max_conns queue: %" PRIu64 " requests waited, %" PRIu64 " got 503 after queue_timeout",
			    t.queued, t.queue_timeouts);
	if (srv->tls_up)
		rh_log_info("upstream TLS handshakes: %" PRIu64 " full, %" PRIu64 " resumed",
			    t.upstream_tls_full, t.upstream_tls_resumed);
	if (srv->tls_edge && srv->cfg->n_listens_tls)
		rh_log_info("client TLS handshakes: %" PRIu64 " full, %" PRIu64 " resumed, %" PRIu64
			    " failed",
			    t.edge_tls_full, t.edge_tls_resumed, t.edge_tls_failed);
}

/* At start: the file and what its backend lines gave (the first LOG_BACKEND_LINES of them), so the
 * log alone says what this process runs with. */
#define LOG_BACKEND_LINES 16
static void
log_backends(const char *path, const struct rh_config *cfg)
{
	rh_log_info("config %s: %zu backend line%s, %zu address%s", path, cfg->n_names,
		    cfg->n_names == 1 ? "" : "s", cfg->n_backends, cfg->n_backends == 1 ? "" : "es");
	for (size_t i = 0; i < cfg->n_names && i < LOG_BACKEND_LINES; i++) {
		const struct rh_backend_name *nm = &cfg->names[i];
		char addrs[256] = "";
		size_t used = 0, shown = 0, n = 0;

		for (size_t j = 0; j < cfg->n_backends; j++) {
			if (cfg->backends[j].name != i)
				continue;
			n++;
			int w = snprintf(addrs + used, sizeof(addrs) - used, "%s%s", used ? ", " : "",
					 cfg->backends[j].addr.text);
			if (w < 0 || (size_t)w >= sizeof(addrs) - used)
				break;
			used += (size_t)w;
			shown++;
		}
		rh_log_info("backend %s (line %u): %s%s weight=%u%s%.0u", nm->spec, nm->line,
			    n ? addrs : "no address yet", shown < n ? ", ..." : "", nm->weight,
			    nm->max_conns ? " max_conns=" : "", nm->max_conns);
	}
	if (cfg->n_names > LOG_BACKEND_LINES)
		rh_log_info("... and %zu more backend lines", cfg->n_names - LOG_BACKEND_LINES);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"print-config", no_argument, NULL, 'T'},
		{"upgrade-from", required_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *path = NULL;
	bool test_only = false, print_config = false;
	pid_t upgrade_from = 0;
	char err[RH_CONFIG_ERR_LEN];
	int opt, status = 1;

	while ((opt = getopt_long(argc, argv, "c:tThV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test_only = true; break;
		case 'T': print_config = true; break;
		case 'U': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 1 || v == (long)getpid()) {
				fprintf(stderr, "roundhouse: --upgrade-from: '%s' is not the pid of a running "
						"roundhouse\n", optarg);
				return 1;
			}
			upgrade_from = (pid_t)v;
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V': printf("roundhouse %s\n", RH_VERSION); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 1;
	}

	rh_log_set_thread_tag("main");
	struct rh_config cfg;
	if (rh_config_load(&cfg, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "roundhouse: %s\n", err);
		return 1;
	}
	if (print_config) {
		rh_config_print(&cfg, stdout);
		rh_config_finish(&cfg);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	rh_log_set_level((enum rh_log_level)cfg.log_level);
	/* certificates and CA files are read now, so that -t catches a bad one too */
	struct rh_tls_upstream *tls_up = NULL;
	struct rh_tls_edge *tls_edge = NULL;
	if (rh_tls_upstream_create(&cfg, &tls_up, err, sizeof(err)) == -1 ||
	    rh_tls_edge_create(&cfg, &tls_edge, err, sizeof(err)) == -1) {
		fprintf(stderr, "roundhouse: %s\n", err);
		rh_tls_upstream_destroy(tls_up);
		rh_config_finish(&cfg);
		return 1;
	}
	/* with [upstream] resolve set a name that does not resolve does not stop the proxy: say so */
	for (size_t i = 0; i < cfg.n_names; i++)
		if (cfg.names[i].unresolved[0]) {
			if (test_only)
				fprintf(stderr, "roundhouse: warning: %s:%u: upstream.backend: %s (the proxy "
						"starts without it and keeps resolving it)\n",
					path, cfg.names[i].line, cfg.names[i].unresolved);
			else
				rh_log_warn("%s:%u: upstream.backend: %s; starting without it, resolving "
					    "it again until it resolves", path, cfg.names[i].line,
					    cfg.names[i].unresolved);
		}
	if (test_only) {
		printf("roundhouse: %s: configuration is valid (%zu listen address(es), %zu TLS listen "
		       "address(es), %zu backend address(es), %u worker(s))\n",
		       path, cfg.n_listens, cfg.n_listens_tls, cfg.n_backends, cfg.threads);
		rh_tls_edge_destroy(tls_edge);
		rh_tls_upstream_destroy(tls_up);
		rh_config_finish(&cfg);
		return 0;
	}

	/* every thread inherits this mask: signals are taken through a signalfd in this thread only */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT); /* what operators send by habit: none of them may kill it at once */
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	sigaddset(&sigs, SIGCHLD); /* a new binary started by SIGUSR2 that failed */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN); /* a client that went away is an EPIPE, not a dead process */

	raise_fd_limit(cfg.max_connections);

	struct rh_runtime rt;
	struct rh_server srv = {
		.cfg = &cfg,
		.rt = &rt,
		.conns_per_worker = (cfg.max_connections + cfg.threads - 1) / cfg.threads,
		.tls_up = tls_up,
		.tls_edge = tls_edge,
		.hooks = &rh_conn_hooks, /* the workers' loops serve the HTTP proxy */
	};
	struct rh_worker *workers = NULL;
	struct rh_health *health = NULL;
	struct rh_admin *admin = NULL;
	unsigned n_init = 0, n_started = 0;
	int sig_fd = -1, upgrade_fd = -1, handover_fd = -1, new_process_fd = -1;
	pid_t child = 0;
	uint64_t handover_deadline = 0;
	bool upgraded = false;
	time_t started = time(NULL);

	if (rh_runtime_init(&rt, cfg.threads) == -1) {
		rh_log_error("runtime: out of memory");
		goto out_pool;
	}
	/* a binary upgrade: the running process's listeners, before anything binds */
	if (upgrade_from) {
		handover_fd = rh_upgrade_fetch(upgrade_from, &srv.inherited, &srv.n_inherited, err, sizeof(err));
		if (handover_fd == -1) {
			rh_log_error("%s", err);
			goto out_pool;
		}
		rh_log_info("upgrade: received %zu listening socket(s) from pid %ld", srv.n_inherited,
			    (long)upgrade_from);
	}
	if (cfg.access_log && !(srv.access_log = rh_access_log_open(cfg.access_log, err, sizeof(err)))) {
		rh_log_error("%s: log.access: %s", path, err);
		goto out_pool;
	}
	/* [health_check] initial = down: nothing is routed to before a probe passes */
	bool initially_up = !(cfg.initial_down && cfg.health_type != RH_HEALTH_NONE);
	struct rh_snapshot *first = rh_snapshot_from_config(&rt, &cfg, NULL, initially_up, err, sizeof(err));
	if (!first) {
		rh_log_error("%s", err);
		goto out_pool;
	}
	rh_runtime_publish(&rt, first); /* no reader yet: nothing to wait for */
	for (size_t i = 0; i < cfg.n_listens + cfg.n_listens_tls; i++) {
		const struct rh_sockaddr *a =
			i < cfg.n_listens ? &cfg.listens[i] : &cfg.listens_tls[i - cfg.n_listens];
		bool handed = false;
		for (size_t k = 0; k < srv.n_inherited && !handed; k++)
			handed = strcmp(srv.inherited[k].addr, a->text) == 0;
		if (!handed && rh_net_check_port_free(a, err, sizeof(err)) == -1) {
			rh_log_error("%s", err);
			goto out_pool;
		}
	}
	workers = calloc(cfg.threads, sizeof(*workers));
	if (!workers || rh_conn_global_init() == -1) {
		rh_log_error("out of memory");
		goto out_workers;
	}
	for (; n_init < cfg.threads; n_init++) {
		if (rh_worker_init(&workers[n_init], n_init, &srv, err, sizeof(err)) == -1) {
			rh_log_error("%s", err);
			goto out_workers;
		}
	}
	if (place_leftovers(&srv, workers, n_init, err, sizeof(err)) == -1) {
		rh_log_error("%s", err);
		goto out_workers;
	}
	health = rh_health_create(&rt, &cfg, cfg.health_tls ? tls_up : NULL, err, sizeof(err));
	if (!health) {
		rh_log_error("%s", err);
		goto out_workers;
	}
	if (cfg.admin_listen.len) {
		int fd = -1;
		for (size_t k = 0; k < srv.n_inherited; k++)
			if (!srv.inherited[k].taken && srv.inherited[k].kind == RH_INHERITED_ADMIN) {
				srv.inherited[k].taken = true;
				if (strcmp(srv.inherited[k].addr, cfg.admin_listen.text) == 0)
					fd = srv.inherited[k].fd;
				else
					close(srv.inherited[k].fd);
			}
		if (fd == -1 && (rh_net_check_port_free(&cfg.admin_listen, err, sizeof(err)) == -1 ||
				 (fd = rh_net_listen(&cfg.admin_listen, 64, err, sizeof(err))) == -1)) {
			rh_log_error("%s (admin.listen)", err);
			goto out_workers;
		}
		const struct rh_admin_sources src = {
			.srv = &srv, .workers = workers, .n_workers = n_init, .health = health,
			.config_path = path, .started = started};
		if (!(admin = rh_admin_create(fd, &src, err, sizeof(err)))) {
			rh_log_error("%s", err);
			goto out_workers;
		}
		rh_health_set_service(health, rh_admin_service(admin));
	}
	for (size_t k = 0; k < srv.n_inherited; k++) /* an admin listener the new config has not */
		if (!srv.inherited[k].taken) {
			srv.inherited[k].taken = true;
			close(srv.inherited[k].fd);
		}
	upgrade_fd = rh_upgrade_listen(err, sizeof(err));
	if (upgrade_fd == -1)
		rh_log_warn("%s: binary upgrades of this process are not possible", err);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd == -1) {
		rh_log_error("signalfd: %s", strerror(errno));
		goto out_workers;
	}
	if (drop_privileges(&cfg) == -1)
		goto out_workers;
	if (rh_health_start(health) == -1) {
		rh_log_error("health thread: %s", strerror(errno));
		goto out_workers;
	}
	for (; n_started < cfg.threads; n_started++) {
		int e = rh_worker_start(&workers[n_started]);
		if (e) {
			rh_log_error("worker thread: %s", strerror(e));
			goto out_stop;
		}
	}
	for (size_t i = 0; i < cfg.n_listens; i++)
		rh_log_info("roundhouse %s listening on %s (%u workers, %zu backends%s)", RH_VERSION,
			    cfg.listens[i].text, cfg.threads, cfg.n_backends, tls_up ? ", TLS upstream" : "");
	for (size_t i = 0; i < cfg.n_listens_tls; i++)
		rh_log_info("roundhouse %s listening on %s with TLS (%u workers, %zu backends%s)",
			    RH_VERSION, cfg.listens_tls[i].text, cfg.threads, cfg.n_backends,
			    tls_up ? ", TLS upstream" : "");
	if (admin)
		rh_log_info("admin listener on http://%s (/metrics, /status, /healthz, POST /reload)",
			    cfg.admin_listen.text);
	if (srv.access_log)
		rh_log_info("access log: %s", cfg.access_log);

	log_backends(path, &cfg);
	/* systemd's Type=notify: ready once every worker listens (after an upgrade, this process is
	 * the service's main process from now on: NotifyAccess=all lets it say so) */
	char ready[200];
	int used = 0;
	if (upgrade_from)
		used = snprintf(ready, sizeof(ready), "MAINPID=%ld\n", (long)getpid());
	snprintf(ready + used, sizeof(ready) - (size_t)used,
		 "READY=1\nSTATUS=serving on %s, %u workers, %zu backends",
		 cfg.n_listens ? cfg.listens[0].text : cfg.listens_tls[0].text, cfg.threads, cfg.n_backends);
	if (rh_notify(ready) == -1 && errno != ENOENT)
		rh_log_warn("$NOTIFY_SOCKET: %s", strerror(errno));
	if (handover_fd != -1) {
		if (rh_upgrade_ready(handover_fd) == -1)
			rh_log_warn("upgrade: telling pid %ld to stop: %s", (long)upgrade_from, strerror(errno));
		else
			rh_log_info("upgrade: serving; pid %ld stops accepting and drains", (long)upgrade_from);
		handover_fd = -1;
	}

	for (;;) {
		struct pollfd p[3] = {
			{.fd = sig_fd, .events = POLLIN},
			{.fd = upgrade_fd, .events = POLLIN},
			{.fd = new_process_fd, .events = POLLIN},
		};
		int wait_ms = -1;
		if (new_process_fd != -1) { /* a new process that never says ready must not block upgrades */
			uint64_t now = rh_clock_ms();
			if (now >= handover_deadline) {
				rh_log_error("upgrade: the new process did not become ready within %d s; this one "
					     "goes on serving", UPGRADE_READY_S);
				close(new_process_fd);
				new_process_fd = -1;
				continue;
			}
			wait_ms = (int)(handover_deadline - now);
		}
		if (poll(p, 3, wait_ms) == -1) {
			if (errno == EINTR)
				continue;
			rh_log_error("poll: %s; stopping", strerror(errno));
			break;
		}
		if (p[2].revents) { /* the new process: ready, or gone */
			int r = rh_upgrade_wait_ready(new_process_fd);
			if (r != 0) {
				close(new_process_fd);
				new_process_fd = -1;
			}
			if (r == 1) {
				rh_log_info("upgrade: the new process serves on the listeners; stopping (in-flight "
					    "requests finish within [timeouts] shutdown)");
				upgraded = true;
				break;
			}
			if (r == -1)
				rh_log_error("upgrade: the new process went away before it was ready; this one "
					     "goes on serving");
		}
		if (p[1].revents & POLLIN) { /* a new process asks for the listeners */
			if (new_process_fd != -1) {
				int busy = accept4(upgrade_fd, NULL, NULL, SOCK_CLOEXEC);
				if (busy != -1)
					close(busy);
				rh_log_warn("upgrade: refused a second new process while one is starting");
			} else {
				size_t n = 0;
				struct rh_inherited *fds = listeners_to_hand_over(workers, n_init, admin, &cfg, &n);
				if (fds)
					new_process_fd = rh_upgrade_serve(upgrade_fd, fds, n, err, sizeof(err));
				if (!fds || new_process_fd == -1)
					rh_log_error("upgrade: %s", fds ? err : "out of memory");
				else
					rh_log_info("upgrade: handed %zu listening socket(s) to a new process", n);
				handover_deadline = rh_clock_ms() + UPGRADE_READY_S * 1000;
				free(fds);
			}
		}
		if (!(p[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		int sig = (int)si.ssi_signo;
		if (sig == SIGINT || sig == SIGTERM || sig == SIGQUIT) {
			/* SIGQUIT too: nginx's graceful stop, and a habit of operators */
			rh_log_info("%s: stopping (in-flight requests finish within [timeouts] shutdown)",
				    strsignal(sig));
			rh_notify("STOPPING=1");
			break;
		}
		if (sig == SIGHUP) {
			rh_log_info("SIGHUP: reloading the configuration");
			reload(path, &cfg, health);
		} else if (sig == SIGUSR1) { /* logrotate's signal for nginx */
			if (!srv.access_log)
				rh_log_info("SIGUSR1: no access log to reopen (the log goes to stderr)");
			else if (rh_access_log_reopen(srv.access_log, err, sizeof(err)) == -1)
				rh_log_error("SIGUSR1: %s; still writing to the old file", err);
			else
				rh_log_info("SIGUSR1: reopened the access log %s", cfg.access_log);
		} else if (sig == SIGUSR2) {
			if (upgrade_fd == -1 || child > 0 || new_process_fd != -1) {
				rh_log_warn("SIGUSR2: %s; ignored", upgrade_fd == -1 ? "no upgrade socket"
									       : "an upgrade is under way");
			} else if ((child = start_upgrade(argv)) == -1) {
				rh_log_error("SIGUSR2: fork: %s", strerror(errno));
				child = 0;
			} else {
				rh_log_info("SIGUSR2: binary upgrade: started %s as pid %ld", argv[0], (long)child);
			}
		} else if (sig == SIGCHLD) {
			int st;
			pid_t pid;
			while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
				if (pid == child) {
					rh_log_error("upgrade: the new process %ld exited (%s %d) before it was "
						     "ready; this one goes on serving", (long)pid,
						     WIFEXITED(st) ? "status" : "signal",
						     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
					child = 0;
				}
		}
	}
	status = 0;

out_stop:
	atomic_store_explicit(&srv.stopping, true, memory_order_release);
	if (upgraded && admin) { /* the new process answers on the admin port now */
		rh_admin_stop_listening(admin);
		rh_health_wake(health);
	}
	for (unsigned i = 0; i < n_started; i++)
		rh_worker_wake(&workers[i]);
out_workers:
	/* joins the started workers; the others only give back their listeners and epoll fds */
	for (unsigned i = 0; i < n_init; i++)
		rh_worker_finish(&workers[i]);
	log_totals(workers, n_init, &srv);
	rh_health_destroy(health);
	rh_admin_destroy(admin);
	free(workers);
out_pool:
	for (size_t k = 0; k < srv.n_inherited; k++)
		if (!srv.inherited[k].taken)
			close(srv.inherited[k].fd);
	free(srv.inherited);
	if (handover_fd != -1)
		close(handover_fd); /* the old process goes on serving */
	if (new_process_fd != -1)
		close(new_process_fd);
	if (upgrade_fd != -1)
		close(upgrade_fd);
	if (sig_fd != -1)
		close(sig_fd);
	rh_access_log_close(srv.access_log);
	rh_tls_edge_destroy(tls_edge);
	rh_tls_upstream_destroy(tls_up);
	rh_runtime_finish(&rt);
	rh_config_finish(&cfg);
	if (status == 0)
		rh_log_info("stopped");
	return status;
}
