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
#include <sys/resource.h>

#include "config.h"
#include "roundhouse/buf.h"
#include "roundhouse/config.h"
#include "roundhouse/conn.h"
#include "roundhouse/health.h"
#include "roundhouse/log.h"
#include "roundhouse/tls.h"
#include "roundhouse/net.h"
#include "roundhouse/notify.h"
#include "roundhouse/runtime.h"
#include "roundhouse/worker.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: roundhouse -c FILE [-t | -T]\n"
		"\n"
		"A load-balancing HTTP/1.1 reverse proxy.\n"
		"\n"
		"  -c, --config FILE  configuration file (INI; see etc/roundhouse.ini)\n"
		"  -t, --test         check the configuration file and exit (0 valid, 1 not)\n"
		"  -T, --print-config print the effective configuration (every default filled in), exit\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n"
		"\n"
		"Runs in the foreground and logs to stderr. SIGTERM, SIGINT or SIGQUIT: stop accepting, finish\n"
		"in-flight requests (at most [timeouts] shutdown), exit 0.\n");
}

/* Descriptors: one per client and one per upstream connection, so take all the hard limit allows. */
static void
raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * (rlim_t)max_connections + 64)
		rh_log_warn("open file limit %llu is below 2 x max_connections (%u): connections "
			    "beyond it will wait in the kernel's accept queue",
			    (unsigned long long)rl.rlim_cur, max_connections);
}

/* What the workers did, summed, at exit: the handshake counts show whether resumption works. */
static void
log_totals(const struct rh_worker *workers, unsigned n, const struct rh_server *srv)
{
	struct rh_worker_stats t = {0};

	for (unsigned i = 0; i < n; i++) {
		const struct rh_worker_stats *s = &workers[i].stats;
		t.accepted += s->accepted;
		t.requests += s->requests;
		t.responses_local += s->responses_local;
		t.aborted += s->aborted;
		t.upstream_connects += s->upstream_connects;
		t.upstream_reused += s->upstream_reused;
		t.upstream_tls_full += s->upstream_tls_full;
		t.upstream_tls_resumed += s->upstream_tls_resumed;
		t.edge_tls_full += s->edge_tls_full;
		t.edge_tls_resumed += s->edge_tls_resumed;
		t.edge_tls_failed += s->edge_tls_failed;
		t.retries += s->retries;
		t.retries_denied += s->retries_denied;
		t.queued += s->queued;
		t.queue_timeouts += s->queue_timeouts;
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
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *path = NULL;
	bool test_only = false, print_config = false;
	char err[RH_CONFIG_ERR_LEN];
	int opt, status = 1;

	while ((opt = getopt_long(argc, argv, "c:tThV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test_only = true; break;
		case 'T': print_config = true; break;
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

	/* every thread inherits this mask: signals are taken by sigwait in this thread only */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT); /* what operators send by habit: none of them may kill it at once */
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
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
	unsigned n_init = 0, n_started = 0;

	if (rh_runtime_init(&rt, cfg.threads) == -1) {
		rh_log_error("runtime: out of memory");
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
		if (rh_net_check_port_free(a, err, sizeof(err)) == -1) {
			rh_log_error("%s", err);
			goto out_pool;
		}
	}
	workers = calloc(cfg.threads, sizeof(*workers));
	if (!workers || rh_conn_global_init() == -1)
		goto out_pool;
	for (; n_init < cfg.threads; n_init++) {
		if (rh_worker_init(&workers[n_init], n_init, &srv, err, sizeof(err)) == -1) {
			rh_log_error("%s", err);
			goto out_workers;
		}
	}
	health = rh_health_create(&rt, &cfg, cfg.health_tls ? tls_up : NULL, err, sizeof(err));
	if (!health) {
		rh_log_error("%s", err);
		goto out_workers;
	}
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
	if (cfg.admin_listen.len)
		rh_log_warn("[admin] listen = %s: the admin server is not implemented in this version; "
			    "ignored", cfg.admin_listen.text);
	for (size_t i = 0; i < cfg.n_listens; i++)
		rh_log_info("roundhouse %s listening on %s (%u workers, %zu backends%s)", RH_VERSION,
			    cfg.listens[i].text, cfg.threads, cfg.n_backends, tls_up ? ", TLS upstream" : "");
	for (size_t i = 0; i < cfg.n_listens_tls; i++)
		rh_log_info("roundhouse %s listening on %s with TLS (%u workers, %zu backends%s)",
			    RH_VERSION, cfg.listens_tls[i].text, cfg.threads, cfg.n_backends,
			    tls_up ? ", TLS upstream" : "");

	log_backends(path, &cfg);
	/* systemd's Type=notify: ready once every worker listens */
	char ready[160];
	snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving on %s, %u workers, %zu backends",
		 cfg.n_listens ? cfg.listens[0].text : cfg.listens_tls[0].text, cfg.threads, cfg.n_backends);
	if (rh_notify(ready) == -1 && errno != ENOENT)
		rh_log_warn("$NOTIFY_SOCKET: %s", strerror(errno));

	for (;;) {
		int sig = sigwaitinfo(&sigs, NULL);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGQUIT) {
			/* SIGQUIT too: nginx's graceful stop, and a habit of operators */
			rh_log_info("%s: stopping (in-flight requests finish within [timeouts] shutdown)",
				    strsignal(sig));
			rh_notify("STOPPING=1");
			break;
		}
		if (sig == SIGHUP)
			rh_log_warn("SIGHUP: configuration reload is not supported yet; ignored");
		else if (sig == SIGUSR1) /* logrotate's signal for nginx */
			rh_log_info("SIGUSR1: no log file to reopen (logging goes to stderr)");
		else if (sig == SIGUSR2)
			rh_log_warn("SIGUSR2: binary upgrade is not supported yet; ignored");
	}
	status = 0;

out_stop:
	atomic_store_explicit(&srv.stopping, true, memory_order_release);
	for (unsigned i = 0; i < n_started; i++)
		rh_worker_wake(&workers[i]);
out_workers:
	/* joins the started workers; the others only give back their listeners and epoll fds */
	for (unsigned i = 0; i < n_init; i++)
		rh_worker_finish(&workers[i]);
	log_totals(workers, n_init, &srv);
	rh_health_destroy(health);
	free(workers);
out_pool:
	rh_tls_edge_destroy(tls_edge);
	rh_tls_upstream_destroy(tls_up);
	rh_runtime_finish(&rt);
	rh_config_finish(&cfg);
	if (status == 0)
		rh_log_info("stopped");
	return status;
}
