/* The admin listener: /metrics, /status, /healthz and POST /reload on the control thread's loop
 * (see admin.h). Requests are parsed by the proxy's own parser (http1.c) with tight limits; each
 * page is built whole in memory (it is small and this thread is not the request path), then
 * written without blocking. */
#include "roundhouse/admin.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/times.h>
#include <unistd.h>

#include "config.h"
#include "roundhouse/backend.h"
#include "roundhouse/health.h"
#include "roundhouse/http1.h"
#include "roundhouse/lb.h"
#include "roundhouse/log.h"
#include "roundhouse/runtime.h"
#include "roundhouse/stats.h"
#include "roundhouse/timer.h"
#include "roundhouse/transport.h"
#include "roundhouse/worker.h"

#define MAX_CONNS 32
#define HEAD_MAX 8192
#define CLIENT_MS 5000        /* to send the head and read the answer */
#define RELOAD_WAIT_MS 30000  /* POST /reload: for the main thread to load and the control thread to apply */

enum admin_state { AS_FREE, AS_READ, AS_RELOAD, AS_WRITE };

struct admin_conn {
	struct rh_ep ep; /* first: epoll data.ptr */
	struct rh_admin *a;
	enum admin_state state;
	uint64_t deadline;
	uint64_t reload_seq; /* AS_RELOAD: the sequence number before the reload was asked for */
	size_t in_len;
	char in[HEAD_MAX];
	char *out;
	size_t out_len, out_off;
	bool head_only;
};

struct rh_admin {
	struct rh_ep listener;
	struct rh_admin_sources src;
	struct rh_control_service service;
	int epfd;
	struct admin_conn conns[MAX_CONNS];
	struct rh_http_request req; /* parser scratch */
	atomic_bool stop_listening;  /* rh_admin_stop_listening: close the listener at the next tick */
	uint64_t paused_until;       /* accept failed (no descriptors): listener out of epoll until */
};

/* ---- a growable text buffer ---- */

struct text {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory: the page is answered 500 */
};

__attribute__((format(printf, 2, 3))) static void
put(struct text *t, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 16384;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

/* <s> as a JSON string (quotes included). */
static void
put_json_str(struct text *t, const char *s)
{
	put(t, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(t, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f) /* bytes of a file name need not be UTF-8 */
			put(t, "\\u%04x", c);
		else
			put(t, "%c", c);
	}
	put(t, "\"");
}

/* ---- /metrics ---- */

/* The backends of <s> in an order that puts the same address and name next to each other: a
 * backend line written twice gives one series, summed. NULL when memory ran out. */
static int
cmp_backend(const void *x, const void *y, void *snap)
{
	const struct rh_snapshot *s = snap;
	const struct rh_backend *a = s->backends[*(const size_t *)x];
	const struct rh_backend *b = s->backends[*(const size_t *)y];
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->spec, b->spec);
}

static size_t *
backend_order(const struct rh_snapshot *s)
{
	size_t *order = malloc((s->n ? s->n : 1) * sizeof(*order));

	if (!order)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		order[i] = i;
	qsort_r(order, s->n, sizeof(*order), cmp_backend, (void *)s);
	return order;
}

/* <v> as a label value (backslash, double quote and newline escaped), in one of two buffers: a
 * series has two such labels. */
static const char *
lab(const char *v, int which)
{
	static char buf[2][2 * RH_ADDR_TEXT_LEN + 1];
	char *o = buf[which & 1];
	size_t n = 0;

	for (; *v && n + 2 < sizeof(buf[0]); v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			o[n++] = '\\';
			o[n++] = *v == '\n' ? 'n' : *v;
		} else {
			o[n++] = *v;
		}
	}
	o[n] = '\0';
	return o;
}

/* One past the run of backends in <order> from <k> on that have the same address and name as
 * order[k]: the entries one series stands for. */
static size_t
group_end(const struct rh_snapshot *s, const size_t *order, size_t k)
{
	const struct rh_backend *b = s->backends[order[k]];
	size_t e = k + 1;

	while (e < s->n && strcmp(b->name, s->backends[order[e]]->name) == 0 &&
	       strcmp(b->spec, s->backends[order[e]]->spec) == 0)
		e++;
	return e;
}

/* A per-backend per-worker counter summed over the workers: <off> is its offset in the entry. */
static uint64_t
backend_sum(const struct rh_backend *b, size_t off)
{
	uint64_t sum = 0;

	for (unsigned w = 0; w < b->n_local; w++)
		sum += rh_stat_get((const rh_stat *)((const char *)&b->local[w] + off));
	return sum;
}

static uint64_t
worker_sum(const struct rh_admin *a, size_t off)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < a->src.n_workers; i++)
		sum += rh_stat_get((const rh_stat *)((const char *)&a->src.workers[i].stats + off));
	return sum;
}

#define LOCAL(field) offsetof(struct rh_backend_local, field)
#define WORKER(field) offsetof(struct rh_worker_stats, field)

static void
header(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One series per backend (duplicates summed) of the per-worker counter at <off>. */
static void
backend_counter(struct text *t, const struct rh_snapshot *s, const size_t *order, const char *name,
		const char *help, size_t off)
{
	header(t, name, "counter", help);
	for (size_t k = 0, e; k < s->n; k = e) {
		const struct rh_backend *b = s->backends[order[k]];
		uint64_t v = 0;
		e = group_end(s, order, k);
		for (size_t j = k; j < e; j++)
			v += backend_sum(s->backends[order[j]], off);
		put(t, "%s{backend=\"%s\",name=\"%s\"} %llu\n", name, lab(b->name, 0), lab(b->spec, 1), (unsigned long long)v);
	}
}

static void
histogram(struct text *t, const struct rh_admin *a, const char *name, const char *help, size_t off)
{
	uint64_t cum = 0;

	header(t, name, "histogram", help);
	for (size_t i = 0; i <= RH_HIST_BOUNDS; i++) {
		cum += worker_sum(a, off + offsetof(struct rh_histogram, bucket) + i * sizeof(rh_stat));
		if (i < RH_HIST_BOUNDS)
			put(t, "%s_bucket{le=\"%g\"} %llu\n", name, (double)rh_hist_bounds_us[i] / 1e6,
			    (unsigned long long)cum);
		else
			put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	put(t, "%s_sum %.6f\n", name,
	    (double)worker_sum(a, off + offsetof(struct rh_histogram, sum_us)) / 1e6);
	put(t, "%s_count %llu\n", name,
	    (unsigned long long)worker_sum(a, off + offsetof(struct rh_histogram, count)));
}

static void
worker_counter(struct text *t, const struct rh_admin *a, const char *name, const char *help,
	       size_t off)
{
	header(t, name, "counter", help);
	put(t, "%s %llu\n", name, (unsigned long long)worker_sum(a, off));
}

static unsigned
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own fd */
}

static uint64_t
rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void
page_metrics(struct rh_admin *a, struct text *t)
{
	const struct rh_snapshot *s = a->src.srv->rt->live; /* the control thread is the writer */
	size_t *order = backend_order(s);
	static const char *const classes[RH_STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

	if (!order) {
		t->failed = true;
		return;
	}
	header(t, "roundhouse_requests_total", "counter",
	       "Requests answered, by backend and status class; backend=\"\": answered by the proxy "
	       "itself (400, 408, 413, 414, 431, 501, 502, 503, 504, 505).");
	for (size_t k = 0, e; k < s->n; k = e) {
		const struct rh_backend *b = s->backends[order[k]];
		uint64_t v[RH_STATUS_CLASSES] = {0};
		e = group_end(s, order, k);
		for (size_t j = k; j < e; j++)
			for (size_t c = 0; c < RH_STATUS_CLASSES; c++)
				v[c] += backend_sum(s->backends[order[j]],
						    LOCAL(responses) + c * sizeof(rh_stat));
		for (size_t c = 0; c < RH_STATUS_CLASSES; c++)
			put(t, "roundhouse_requests_total{backend=\"%s\",name=\"%s\",code=\"%s\"} %llu\n",
			    lab(b->name, 0), lab(b->spec, 1), classes[c], (unsigned long long)v[c]);
	}
	for (size_t c = 0; c < RH_STATUS_CLASSES; c++)
		put(t, "roundhouse_requests_total{backend=\"\",name=\"\",code=\"%s\"} %llu\n", classes[c],
		    (unsigned long long)worker_sum(a, WORKER(local_by_class) + c * sizeof(rh_stat)));
	worker_counter(t, a, "roundhouse_requests_aborted_total",
		       "Exchanges cut off: the client went away or the response could not be completed.",
		       WORKER(aborted));
	backend_counter(t, s, order, "roundhouse_upstream_connect_failures_total",
			"Connects (and TLS handshakes) to the backend that failed.", LOCAL(connect_failures));
	backend_counter(t, s, order, "roundhouse_retries_total",
			"Requests sent to another backend after failing on this one.", LOCAL(retries));
	backend_counter(t, s, order, "roundhouse_retries_denied_total",
			"Retries away from this backend that the retry budget refused.",
			LOCAL(retries_denied));
	worker_counter(t, a, "roundhouse_queued_total",
		       "Requests that waited for a max_conns slot.", WORKER(queued));
	worker_counter(t, a, "roundhouse_queue_timeouts_total",
		       "Requests answered 503 after waiting queue_timeout for a max_conns slot.",
		       WORKER(queue_timeouts));

	header(t, "roundhouse_backend_state", "gauge",
	       "The backend's health state: 1 for the state it is in.");
	for (size_t k = 0; k < s->n; k = group_end(s, order, k)) {
		const struct rh_backend *b = s->backends[order[k]];
		unsigned st = atomic_load_explicit(&b->state, memory_order_relaxed);
		for (unsigned i = 0; i < RH_BACKEND_STATES; i++)
			put(t, "roundhouse_backend_state{backend=\"%s\",name=\"%s\",state=\"%s\"} %d\n",
			    lab(b->name, 0), lab(b->spec, 1), rh_backend_state_name(i), i == st);
	}
	header(t, "roundhouse_backend_transitions_total", "counter",
	       "Times the backend entered each state.");
	for (size_t k = 0; k < s->n; k = group_end(s, order, k)) {
		const struct rh_backend *b = s->backends[order[k]];
		for (unsigned i = 0; i < RH_BACKEND_STATES; i++)
			put(t, "roundhouse_backend_transitions_total{backend=\"%s\",name=\"%s\",state=\"%s\"} %llu\n",
			    lab(b->name, 0), lab(b->spec, 1), rh_backend_state_name(i),
			    (unsigned long long)atomic_load_explicit(&b->transitions[i], memory_order_relaxed));
	}
	header(t, "roundhouse_backend_weight", "gauge",
	       "The backend's weight (0: draining; a line written twice counts twice).");
	for (size_t k = 0, e; k < s->n; k = e) {
		const struct rh_backend *b = s->backends[order[k]];
		uint64_t weight = 0;
		e = group_end(s, order, k);
		for (size_t j = k; j < e; j++)
			weight += s->weights[order[j]];
		put(t, "roundhouse_backend_weight{backend=\"%s\",name=\"%s\"} %llu\n", lab(b->name, 0),
		    lab(b->spec, 1), (unsigned long long)weight);
	}
	header(t, "roundhouse_upstream_connections", "gauge",
	       "Upstream connections: active (an exchange in flight) and idle (pooled), by backend.");
	for (size_t k = 0, e; k < s->n; k = e) {
		const struct rh_backend *b = s->backends[order[k]];
		uint64_t active = 0, idle = 0;
		e = group_end(s, order, k);
		for (size_t j = k; j < e; j++) {
			active += rh_backend_inflight(s->backends[order[j]]);
			idle += backend_sum(s->backends[order[j]], LOCAL(idle_count));
		}
		put(t, "roundhouse_upstream_connections{backend=\"%s\",name=\"%s\",state=\"active\"} %llu\n",
		    lab(b->name, 0), lab(b->spec, 1), (unsigned long long)active);
		put(t, "roundhouse_upstream_connections{backend=\"%s\",name=\"%s\",state=\"idle\"} %llu\n",
		    lab(b->name, 0), lab(b->spec, 1), (unsigned long long)idle);
	}
	free(order);

	uint64_t open = worker_sum(a, WORKER(clients_open)), active = worker_sum(a, WORKER(clients_active));
	header(t, "roundhouse_client_connections", "gauge",
	       "Client connections: active (an exchange in progress) and idle (between requests).");
	put(t, "roundhouse_client_connections{state=\"active\"} %llu\n", (unsigned long long)active);
	put(t, "roundhouse_client_connections{state=\"idle\"} %llu\n",
	    (unsigned long long)(open > active ? open - active : 0));
	worker_counter(t, a, "roundhouse_client_connections_accepted_total", "Client connections accepted.",
		       WORKER(accepted));
	worker_counter(t, a, "roundhouse_client_received_bytes_total", "Bytes read from clients.",
		       WORKER(bytes_in));
	worker_counter(t, a, "roundhouse_client_sent_bytes_total", "Bytes written to clients.",
		       WORKER(bytes_out));
	worker_counter(t, a, "roundhouse_spliced_responses_total",
		       "Responses whose body (beyond the first 16 KiB) went from the backend to the client "
		       "through a pipe with splice(2), never through user space.",
		       WORKER(spliced));
	header(t, "roundhouse_upstream_connects_total", "counter",
	       "Upstream connections a request used: new (connected for it) or reused (from the pool).");
	put(t, "roundhouse_upstream_connects_total{kind=\"new\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(upstream_connects)));
	put(t, "roundhouse_upstream_connects_total{kind=\"reused\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(upstream_reused)));
	histogram(t, a, "roundhouse_request_duration_seconds",
		  "From a request's head parsed to its exchange's end.", WORKER(duration));
	histogram(t, a, "roundhouse_upstream_connect_duration_seconds",
		  "Upstream connect (and TLS handshake) time of new connections.", WORKER(connect));
	header(t, "roundhouse_tls_handshakes_total", "counter",
	       "TLS handshakes with clients (listen_tls) and backends: full, resumed, failed.");
	put(t, "roundhouse_tls_handshakes_total{side=\"client\",result=\"full\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(edge_tls_full)));
	put(t, "roundhouse_tls_handshakes_total{side=\"client\",result=\"resumed\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(edge_tls_resumed)));
	put(t, "roundhouse_tls_handshakes_total{side=\"client\",result=\"failed\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(edge_tls_failed)));
	put(t, "roundhouse_tls_handshakes_total{side=\"upstream\",result=\"full\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(upstream_tls_full)));
	put(t, "roundhouse_tls_handshakes_total{side=\"upstream\",result=\"resumed\"} %llu\n",
	    (unsigned long long)worker_sum(a, WORKER(upstream_tls_resumed)));

	if (a->src.srv->access_log) {
		uint64_t lines = 0, dropped = 0;
		for (unsigned i = 0; i < a->src.n_workers; i++) {
			lines += rh_stat_get(&a->src.workers[i].access.lines);
			dropped += rh_stat_get(&a->src.workers[i].access.dropped);
		}
		header(t, "roundhouse_access_log_lines_total", "counter",
		       "Access log lines written, and lost (a failed write: full disk, I/O error).");
		put(t, "roundhouse_access_log_lines_total{result=\"written\"} %llu\n", (unsigned long long)lines);
		put(t, "roundhouse_access_log_lines_total{result=\"dropped\"} %llu\n", (unsigned long long)dropped);
	}

	struct rh_health_reload_status rs;
	rh_health_reload_status(a->src.health, &rs);
	header(t, "roundhouse_config_generation", "gauge",
	       "The configuration in force: 1 at start, +1 per applied reload.");
	put(t, "roundhouse_config_generation %llu\n", (unsigned long long)rs.generation);
	header(t, "roundhouse_config_last_reload_successful", "gauge",
	       "Whether the last reload was applied (1) or refused (0).");
	put(t, "roundhouse_config_last_reload_successful %d\n", rs.last_ok);
	header(t, "roundhouse_config_last_reload_timestamp_seconds", "gauge",
	       "When the last reload attempt ended (0: none yet).");
	put(t, "roundhouse_config_last_reload_timestamp_seconds %lld\n", (long long)rs.last_at);
	header(t, "roundhouse_config_last_reload_success_timestamp_seconds", "gauge",
	       "When the configuration in force was loaded.");
	put(t, "roundhouse_config_last_reload_success_timestamp_seconds %lld\n", (long long)rs.last_ok_at);
	header(t, "roundhouse_config_reloads_total", "counter", "Reload attempts, applied or refused.");
	put(t, "roundhouse_config_reloads_total{result=\"applied\"} %llu\n", (unsigned long long)rs.ok);
	put(t, "roundhouse_config_reloads_total{result=\"refused\"} %llu\n", (unsigned long long)rs.failed);
	header(t, "roundhouse_build_info", "gauge", "The running version.");
	put(t, "roundhouse_build_info{version=\"%s\"} 1\n", RH_VERSION);

	struct rlimit rl = {0};
	struct tms tm;
	long hz = sysconf(_SC_CLK_TCK);
	times(&tm);
	getrlimit(RLIMIT_NOFILE, &rl);
	header(t, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
	put(t, "process_start_time_seconds %lld\n", (long long)a->src.started);
	header(t, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
	put(t, "process_cpu_seconds_total %.2f\n", hz > 0 ? (double)(tm.tms_utime + tm.tms_stime) / (double)hz : 0.0);
	header(t, "process_open_fds", "gauge", "Open file descriptors.");
	put(t, "process_open_fds %u\n", open_fds());
	header(t, "process_max_fds", "gauge", "The open file descriptor limit.");
	put(t, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	header(t, "process_resident_memory_bytes", "gauge", "Resident memory.");
	put(t, "process_resident_memory_bytes %llu\n", (unsigned long long)rss_bytes());
}

/* ---- /status ---- */

static void
page_status(struct rh_admin *a, struct text *t)
{
	const struct rh_snapshot *s = a->src.srv->rt->live;
	struct rh_health_reload_status rs;
	bool draining = atomic_load_explicit(&a->src.srv->stopping, memory_order_relaxed);

	rh_health_reload_status(a->src.health, &rs);
	put(t, "{\"version\":\"%s\",\"pid\":%d,\"started\":%lld,\"draining\":%s,\"config\":{\"path\":",
	    RH_VERSION, (int)getpid(), (long long)a->src.started, draining ? "true" : "false");
	put_json_str(t, a->src.config_path);
	put(t, ",\"generation\":%llu,\"algorithm\":\"%s\",\"reloads\":{\"applied\":%llu,\"refused\":%llu,"
	       "\"last_ok\":%s,\"last_at\":%lld,\"last_error\":",
	    (unsigned long long)rs.generation, s->lb->name, (unsigned long long)rs.ok,
	    (unsigned long long)rs.failed, rs.last_ok ? "true" : "false", (long long)rs.last_at);
	put_json_str(t, rs.last_error);
	put(t, "}},\"backends\":[");
	for (size_t i = 0; i < s->n; i++) {
		const struct rh_backend *b = s->backends[i];
		struct rh_health_check hc = {0};
		struct rh_health_cert cert;
		unsigned st = atomic_load_explicit(&b->state, memory_order_relaxed);

		rh_health_last_check(a->src.health, i, &hc);
		put(t, "%s{\"address\":\"%s\",\"name\":", i ? "," : "", b->name);
		put_json_str(t, b->spec);
		put(t, ",\"weight\":%u,\"state\":\"%s\",\"since\":%lld,\"routed\":%s,\"last_check\":", s->weights[i],
		    rh_backend_state_name(st),
		    (long long)atomic_load_explicit(&b->state_since, memory_order_relaxed),
		    s->healthy[i] && s->weights[i] > 0 ? "true" : "false");
		if (hc.done) {
			put(t, "{\"ok\":%s,\"at\":%lld,\"error\":", hc.ok ? "true" : "false", (long long)hc.at);
			put_json_str(t, hc.why);
			put(t, "}");
		} else {
			put(t, "null");
		}
		put(t, ",\"certificate\":");
		if (rh_health_cert(a->src.health, i, &cert)) {
			put(t, "{\"not_after\":%lld,\"verified\":%s,\"verify_error\":", (long long)cert.not_after,
			    cert.verified ? "true" : "false");
			put_json_str(t, cert.verify_error);
			put(t, ",\"checked_at\":%lld}", (long long)cert.checked_at);
		} else {
			put(t, "null");
		}
		put(t, ",\"in_flight\":%u,\"idle\":%llu,\"max_conns\":%u}", rh_backend_inflight(b),
		    (unsigned long long)backend_sum(b, LOCAL(idle_count)),
		    atomic_load_explicit(&b->max_conns, memory_order_relaxed));
	}
	put(t, "]}\n");
}

/* ---- connections ---- */

static void conn_event(struct rh_ep *ep, uint32_t events);

static void
conn_close(struct admin_conn *c)
{
	rh_ep_close(&c->ep);
	free(c->out);
	c->out = NULL;
	c->state = AS_FREE;
}

/* Sets up the answer: the status line and headers, then <body> (taken over; may be NULL). */
static void
respond(struct admin_conn *c, int status, const char *reason, const char *type, char *body,
	size_t body_len)
{
	struct text t = {0};

	put(&t, "HTTP/1.1 %d %s\r\nServer: roundhouse/%s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		"Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	    status, reason, RH_VERSION, type, body_len);
	if (!c->head_only && body_len)
		put(&t, "%.*s", (int)body_len, body);
	free(body);
	if (t.failed) {
		free(t.p);
		conn_close(c);
		return;
	}
	c->out = t.p;
	c->out_len = t.len;
	c->out_off = 0;
	c->state = AS_WRITE;
	c->deadline = rh_clock_ms() + CLIENT_MS;
	c->ep.writable = true; /* try at once */
	conn_event(&c->ep, 0);
}

static void
respond_text(struct admin_conn *c, int status, const char *reason, const char *msg)
{
	size_t len = strlen(msg);
	char *body = malloc(len + 1);

	if (body)
		memcpy(body, msg, len + 1);
	respond(c, status, reason, "text/plain; charset=utf-8", body, body ? len : 0);
}

static void
respond_page(struct admin_conn *c, void (*page)(struct rh_admin *, struct text *), const char *type)
{
	struct text t = {0};

	page(c->a, &t);
	if (t.failed) {
		free(t.p);
		respond_text(c, 500, "Internal Server Error", "out of memory\n");
		return;
	}
	respond(c, 200, "OK", type, t.p, t.len);
}

static bool
span_is(struct rh_span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* The reload asked for by <c> ended: its result. */
static void
reload_answer(struct admin_conn *c)
{
	struct rh_health_reload_status rs;
	char msg[RH_HEALTH_RELOAD_ERR_LEN + 64];

	rh_health_reload_status(c->a->src.health, &rs);
	if (rs.last_ok) {
		snprintf(msg, sizeof(msg), "reloaded: generation %llu\n", (unsigned long long)rs.generation);
		respond_text(c, 200, "OK", msg);
	} else {
		snprintf(msg, sizeof(msg), "reload refused, the running configuration stays: %s\n",
			 rs.last_error);
		respond_text(c, 400, "Bad Request", msg);
	}
}

static void
route(struct admin_conn *c)
{
	const struct rh_http_request *req = &c->a->req;
	struct rh_span path = req->path;
	bool get = span_is(req->method, "GET") || span_is(req->method, "HEAD");

	for (size_t i = 0; i < path.len; i++)
		if (path.p[i] == '?') {
			path.len = i; /* queries are ignored */
			break;
		}
	c->head_only = span_is(req->method, "HEAD");
	if (span_is(path, "/metrics") && get) {
		respond_page(c, page_metrics, "text/plain; version=0.0.4; charset=utf-8");
	} else if (span_is(path, "/status") && get) {
		respond_page(c, page_status, "application/json");
	} else if (span_is(path, "/healthz") && get) {
		if (atomic_load_explicit(&c->a->src.srv->stopping, memory_order_relaxed))
			respond_text(c, 503, "Service Unavailable", "draining\n");
		else
			respond_text(c, 200, "OK", "ok\n");
	} else if (span_is(path, "/reload") && span_is(req->method, "POST")) {
		/* the main thread loads the file (names resolve there, never on this loop) */
		c->reload_seq = rh_health_reload_seq(c->a->src.health);
		c->state = AS_RELOAD;
		c->deadline = rh_clock_ms() + RELOAD_WAIT_MS;
		rh_log_info("admin: POST /reload");
		kill(getpid(), SIGHUP);
	} else if (span_is(path, "/metrics") || span_is(path, "/status") || span_is(path, "/healthz") ||
		   span_is(path, "/reload")) {
		respond_text(c, 405, "Method Not Allowed", "method not allowed\n");
	} else {
		respond_text(c, 404, "Not Found", "not found: try /metrics, /status, /healthz, POST /reload\n");
	}
}

static void
conn_event(struct rh_ep *ep, uint32_t events)
{
	struct admin_conn *c = (struct admin_conn *)ep;

	rh_ep_note_events(ep, events);
	if (c->state == AS_READ) {
		static const struct rh_http_limits lim = {
			.max_head = HEAD_MAX, .max_uri = 1024, .max_headers = 32, .max_body = 0};
		bool eof = false;
		while (c->ep.readable && c->in_len < sizeof(c->in)) {
			ssize_t n = rh_ep_read(&c->ep, c->in + c->in_len, sizeof(c->in) - c->in_len);
			if (n == -2) {
				conn_close(c);
				return;
			}
			if (n == 0) { /* a client that sent its request and shut its side: answer it */
				eof = true;
				break;
			}
			if (n < 0)
				break;
			c->in_len += (size_t)n;
		}
		int r = rh_http_parse_request(c->in, c->in_len, &lim, &c->a->req);
		if (r == RH_HTTP_PARTIAL && eof) {
			conn_close(c);
			return;
		}
		if (r == RH_HTTP_PARTIAL && c->in_len < sizeof(c->in))
			return;
		if (r <= 0) {
			respond_text(c, 400, "Bad Request", "bad request\n");
			return;
		}
		if (c->a->req.body != RH_BODY_NONE && c->a->req.content_length > 0) {
			respond_text(c, 413, "Content Too Large", "no request body is taken here\n");
			return;
		}
		route(c);
		return;
	}
	if (c->state == AS_WRITE) {
		while (c->out_off < c->out_len && c->ep.writable) {
			struct iovec iov = {c->out + c->out_off, c->out_len - c->out_off};
			ssize_t n = rh_ep_writev(&c->ep, &iov, 1);
			if (n == -2) {
				conn_close(c);
				return;
			}
			if (n < 0)
				return;
			c->out_off += (size_t)n;
		}
		if (c->out_off == c->out_len) {
			/* what the client sent beyond the head is read away first: closing with unread
			 * input would reset the connection and could lose the answer */
			char sink[1024];
			shutdown(c->ep.fd, SHUT_WR);
			while (recv(c->ep.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
			conn_close(c);
		}
	}
}

static void
on_accept(struct rh_ep *ep, uint32_t events)
{
	struct rh_admin *a = (struct rh_admin *)((char *)ep - offsetof(struct rh_admin, listener));

	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(ep->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				/* out of descriptors: the level-triggered listener would spin; rest 1 s */
				rh_log_warn("admin: accept: %s; pausing for a second", strerror(errno));
				epoll_ctl(a->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
				a->paused_until = rh_clock_ms() + 1000;
			}
			return;
		}
		struct admin_conn *c = NULL;
		for (size_t k = 0; k < MAX_CONNS && !c; k++)
			if (a->conns[k].state == AS_FREE)
				c = &a->conns[k];
		if (!c) {
			close(fd); /* a scraper storm must not take the control thread's descriptors */
			continue;
		}
		*c = (struct admin_conn){
			.ep = {.fd = fd, .tp = &rh_transport_tcp, .handler = conn_event},
			.a = a,
			.state = AS_READ,
			.deadline = rh_clock_ms() + CLIENT_MS,
		};
		if (rh_ep_watch(a->epfd, &c->ep, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1) {
			close(fd);
			c->state = AS_FREE;
			continue;
		}
		c->ep.readable = true; /* the request may be there already */
		conn_event(&c->ep, 0);
	}
}

/* ---- the service ---- */

static int
admin_attach(void *arg, int epfd)
{
	struct rh_admin *a = arg;

	a->epfd = epfd;
	return rh_ep_watch(epfd, &a->listener, EPOLLIN);
}

static uint64_t
admin_tick(void *arg, uint64_t now)
{
	struct rh_admin *a = arg;
	uint64_t next = UINT64_MAX;
	uint64_t seq = rh_health_reload_seq(a->src.health);

	if (atomic_load_explicit(&a->stop_listening, memory_order_acquire) && a->listener.fd != -1) {
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->listener.fd, NULL);
		close(a->listener.fd);
		a->listener.fd = -1;
		a->paused_until = 0;
	}
	if (a->paused_until) {
		if (now >= a->paused_until) {
			a->paused_until = 0;
			if (rh_ep_watch(a->epfd, &a->listener, EPOLLIN) == -1)
				rh_log_error("admin: epoll_ctl: %s", strerror(errno));
		} else {
			next = a->paused_until;
		}
	}
	for (size_t k = 0; k < MAX_CONNS; k++) {
		struct admin_conn *c = &a->conns[k];

		if (c->state == AS_RELOAD && seq != c->reload_seq)
			reload_answer(c);
		if (c->state == AS_FREE)
			continue;
		if (now >= c->deadline) {
			if (c->state == AS_RELOAD)
				respond_text(c, 504, "Gateway Timeout", "the reload did not finish in time\n");
			else
				conn_close(c);
			if (c->state == AS_FREE)
				continue;
		}
		if (c->deadline < next)
			next = c->deadline;
	}
	return next;
}

static void
admin_detach(void *arg)
{
	struct rh_admin *a = arg;

	for (size_t k = 0; k < MAX_CONNS; k++)
		if (a->conns[k].state != AS_FREE)
			conn_close(&a->conns[k]);
	if (a->listener.fd != -1)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->listener.fd, NULL);
}

struct rh_admin *
rh_admin_create(int listen_fd, const struct rh_admin_sources *src, char *err, size_t errlen)
{
	struct rh_admin *a = calloc(1, sizeof(*a));

	if (!a) {
		snprintf(err, errlen, "admin: out of memory");
		close(listen_fd);
		return NULL;
	}
	a->listener = (struct rh_ep){.fd = listen_fd, .tp = &rh_transport_tcp, .handler = on_accept};
	a->src = *src;
	a->epfd = -1;
	a->service = (struct rh_control_service){
		.arg = a, .attach = admin_attach, .tick = admin_tick, .detach = admin_detach};
	return a;
}

const struct rh_control_service *
rh_admin_service(struct rh_admin *a)
{
	return &a->service;
}

void
rh_admin_stop_listening(struct rh_admin *a)
{
	atomic_store_explicit(&a->stop_listening, true, memory_order_release);
}

int
rh_admin_listen_fd(const struct rh_admin *a)
{
	return a->listener.fd;
}

void
rh_admin_destroy(struct rh_admin *a)
{
	if (!a)
		return;
	for (size_t k = 0; k < MAX_CONNS; k++)
		if (a->conns[k].state != AS_FREE)
			conn_close(&a->conns[k]);
	if (a->listener.fd != -1)
		close(a->listener.fd);
	free(a);
}
