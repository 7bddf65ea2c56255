/* The client connection state machine.
 *
 *   READ_HEAD ──► (parse, select, acquire upstream) ──► PROXY ──► (exchange done) ──► READ_HEAD ...
 *       │                   │          ▲                    │
 *       │                   ▼          │ (a slot)           │
 *       │                 QUEUED (every backend at max_conns)
 *       │                   │ queue_timeout: 503            │
 *       └── bad request, no backend, timeout ──► LOCAL (error response) ──► LINGER ──► closed
 *
 * A failed exchange goes again, to another backend (the tried set), when nothing of it can have
 * reached the application (the connect failed), or when the backend closed or reset the connection
 * before any byte of the response and the request is idempotent and bodiless (RFC 9110 9.2.2):
 * at most [upstream] retries times, within the worker's retry budget (retry_budget.h). Each failure
 * is reported to the control thread (passive health).
 *
 * In PROXY two pumps run side by side: the request pump (connect, head, body: client -> upstream) and
 * the response pump (head, body: upstream -> client). Each reads only when its buffer is drained and
 * writes with writev: a head is rebuilt from its parsed fields (http1_serialize) into a small buffer
 * of its own and leaves in the same writev as the first body bytes, which go out straight from the
 * buffer they were read into, never copied. Sockets are edge-triggered; readiness
 * lives in struct rh_ep and a short read or write clears it (the socket was drained or filled).
 *
 * Every read, write, handshake and close goes through the endpoint's transport (transport.h), so
 * plain and TLS connections take the same paths. The client endpoint's handler is conn_event, and
 * the upstream connection's, while an exchange uses it, upstream_event; the loop below (worker.c)
 * reaches the rest through rh_conn_hooks. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


#include "roundhouse/access_log.h"
#include "roundhouse/backend.h"
#include "roundhouse/lb.h"
#include "roundhouse/runtime.h"
#include "roundhouse/config.h"
#include "roundhouse/conn.h"
#include "roundhouse/http1_serialize.h"
#include "roundhouse/log.h"
#include "roundhouse/net.h"
#include "roundhouse/tls.h"
#include "roundhouse/transport.h"
#include "roundhouse/upstream.h"
#include "roundhouse/worker.h"

#define MAX_PICKS 16 /* backends one start_exchange may look at past full ones (max_conns) */
#define LOG_METHOD_MAX 16  /* an access log line keeps this much of the method */
#define LOG_TARGET_MAX 256 /* and of the target ("..." marks the cut) */
#define ACCESS_BUF_SIZE (64 * 1024) /* a worker's access log lines between writes */
#define RH_SPLICE_MAX (64 * 1024)     /* one splice into the pipe: its default capacity */

enum conn_state {
	CS_HANDSHAKE, /* listen_tls: the TLS handshake, timed like a slow head (client_header) */
	CS_READ_HEAD,
	CS_PROXY,
	CS_QUEUED, /* waiting for a max_conns slot (tq_queue: queue_timeout, then 503) */
	CS_LOCAL,  /* writing an error response of our own */
	CS_LINGER, /* response sent, write side shut: discard what the client still sends, then close */
};

enum req_phase {
	RQ_CONNECT,   /* waiting for the upstream connect to complete */
	RQ_HANDSHAKE, /* TLS to the backend: handshake in progress (under the connect timeout) */
	RQ_SEND,    /* writing iovecs (head and/or body bytes) to the upstream */
	RQ_BODY,    /* reading more request body from the client */
	RQ_DONE,
};

enum resp_phase {
	RS_HEAD, /* reading and parsing the response head */
	RS_SEND, /* writing iovecs (head and/or body bytes) to the client */
	RS_BODY, /* reading more response body from the upstream */
	RS_SPLICE, /* the rest of a known-length body, upstream -> pipe -> client, never in user space */
	RS_DONE,
};

/* what a pump reports to step_proxy */
enum pump {
	P_WAIT,       /* blocked on a socket */
	P_DONE,       /* this direction is complete */
	P_UPFAIL,     /* upstream error, errno-style code in io->fail_err */
	P_CLIENTFAIL, /* client went away, or the response cannot be completed: abort */
	P_REJECT,     /* the request body broke its framing or its limit: answer io->reject if possible */
};

/* A write queue: iovecs (a serialized head, a chunk-size line, body bytes, a CRLF), plus how many
 * input-buffer bytes they cover (consumed once all is written). */
struct wq {
	struct iovec *iov;
	uint8_t idx, cnt, max;
	bool progressed; /* some bytes went out */
	uint32_t consume;
};

/* What only a running exchange needs (CS_PROXY, CS_QUEUED): the pumps' state, the upstream
 * connection, the buffers and write queues, retries, and what the metrics and the access log say
 * of it. Taken from the worker when an exchange starts and given back at exchange_end, so an idle
 * keep-alive connection does not carry them. One on the worker's free list holds nothing (no
 * upstream connection, buffer, pipe or backend reference): exchange_end gave all of it back. */
struct rh_conn_io {
	struct rh_conn_io *next_free;
	struct rh_conn *qnext, *qprev; /* the worker's queue for max_conns slots (CS_QUEUED) */

	/* the pumps */
	uint8_t req_phase, resp_phase;
	uint8_t req_body, resp_body; /* enum rh_body_kind */
	bool http10;        /* the client spoke HTTP/1.0 */
	bool req_is_head;
	bool req_idempotent; /* the request may be sent again after it may have reached a backend */
	bool keep_alive;    /* the client connection survives this exchange */
	bool client_ka;     /* the client asked to keep the connection: it may send more */
	bool head_consumed; /* the request head left the input buffer (no retry from here on) */
	bool resp_seen;     /* the upstream sent bytes for this request */
	bool resp_started;  /* a response head went to the client: no error response possible now */
	bool resp_interim;  /* the write queue holds a 1xx head */
	bool up_reusable;   /* the upstream keeps the connection open after this response */
	bool chunk_out;     /* a close-delimited response is re-framed as chunked for a 1.1 client */
	bool resp_final;    /* the write queue holds the last-chunk of such a response */
	struct rh_upconn *up;
	struct rh_buf *out;       /* upstream -> client */
	struct rh_buf *req_head;  /* the serialized request head, until it is written */
	struct rh_buf *resp_head; /* the serialized response head (or 1xx head), until it is written */
	size_t req_head_len;
	uint64_t req_left, resp_left;
	struct rh_chunked req_chunk, resp_chunk;
	struct wq reqq, respq;
	struct iovec req[2];  /* reqq's: [head][body] */
	struct iovec resp[4]; /* respq's: [head][chunk size][body][CRLF] */
	char chunk_hdr[20];   /* "<hex size>\r\n" of the chunk being written (chunk_out) */
	int pipe[2];          /* RS_SPLICE: the pipe in between ({-1, -1}: none) */
	uint32_t pipe_bytes;  /* bytes in it, not yet written to the client */

	/* retries, and how the last attempt failed */
	uint8_t attempts;   /* retries of this request (each to a backend it did not fail on) */
	bool stale_retried; /* it went again once after a pooled connection turned out closed */
	bool retry_pending; /* a retry waits for start_exchange to find another backend */
	bool retry_budgeted; /* ... and must fit in the retry budget */
	int8_t retry_fail;  /* ... else the client gets this (LR_*) */
	bool fail_logged;   /* the failure was logged already (TLS: once per backend and reason) */
	bool fail_io;       /* the failure was the transport's (a read or write): rh_ep_failure says why */
	int8_t reject;      /* P_REJECT: the error response (LR_*) */
	int fail_err;
	const char *fail_what;
	struct rh_lb_tried tried; /* backends this request failed on: a retry picks another */
	struct rh_backend *retry_from; /* the backend a pending retry leaves (a reference), for the
	                                  per-backend retry counts */

	/* for the metrics and the access log */
	uint64_t tx;               /* bytes sent to the client */
	uint64_t started_us;       /* when the head was parsed (rh_clock_us) */
	int64_t connect_us;        /* the upstream connect (and handshake) time; -1: reused or none */
	uint64_t connect_start_us;
	uint16_t status;           /* sent to the client; 0: nothing yet */
	/* for the access log (copied from the parsed head only when it is on) */
	uint8_t method_len;
	uint16_t target_len;
	bool target_truncated;
	char method[LOG_METHOD_MAX];
	char target[LOG_TARGET_MAX];
};

/* A client connection. Between requests it holds only what it needs then (its socket, timer and
 * list links, the input buffer of a head being read, the client's address); an exchange adds its
 * struct rh_conn_io. */
struct rh_conn {
	struct rh_ep ep; /* first: epoll data.ptr */
	struct rh_worker *w;
	struct rh_conn *next, *prev; /* worker's list of open connections; next also links free lists */
	/* conn_close cancels the timer before it uses the release link: never both at once */
	union {
		struct rh_timer timer;
		struct rh_deferred closed; /* released after the batch it was closed in */
	};
	struct rh_buf *in;     /* client -> upstream: small while it holds only heads (see buf.h) */
	struct rh_conn_io *io; /* while an exchange runs (CS_PROXY, CS_QUEUED), else NULL */
	uint64_t rx;           /* client bytes since the last exchange ended */
	unsigned requests;     /* exchanges completed on this connection */
	uint32_t lf_checked;   /* bytes of the partial head being read (the request's, then the
				* response's) known to hold no LF yet: at most a buffer's capacity */
	uint16_t client_port;
	uint16_t local_sent;   /* CS_LOCAL: bytes of the error response written */
	uint8_t state;
	int8_t local_which;    /* LR_* of an answer of the proxy's own (the connection ends with it:
				* CS_LOCAL writes it), else LR_NONE */
	bool wrote_client;     /* some response bytes went to the client on this connection */
	bool nodelay;          /* TCP_NODELAY is set on the client socket */
	bool watched;          /* the client socket is in the worker's epoll set (see conn_run) */
	bool shut;             /* LINGER: our side is shut (after close_notify, for TLS) */
	uint8_t ip_len;
	char ip[INET6_ADDRSTRLEN]; /* the client's address as text: X-Forwarded-For, the access log */
};

/* An idle keep-alive connection costs its struct rh_conn and nothing else, and it is to cost at
 * most 256 bytes: 248 is the largest request glibc's malloc serves from a 256-byte chunk on 64-bit
 * Linux (8 bytes of chunk header, 16-byte steps). What only an exchange needs goes in rh_conn_io. */
#if defined(__linux__) && UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct rh_conn) <= 248, "struct rh_conn outgrew a 256-byte malloc chunk");
#endif
/* the release link shares the timer's storage: it must leave timer.queue alone, which stays NULL
 * after conn_close cancels the timer, so a late rh_timer_cancel or progress() stays a no-op */
_Static_assert(sizeof(struct rh_deferred) <= offsetof(struct rh_timer, deadline),
	       "rh_deferred overlaps more of the timer than its list links");

/* ---- static strings of re-framed bodies ---- */
#define S(x) {(void *)(x), sizeof(x) - 1}
static const struct iovec iov_crlf = S("\r\n");
static const struct iovec iov_last_chunk = S("0\r\n\r\n");

/* ---- error responses (always followed by a close) ---- */
struct local_response {
	int status;
	const char *reason;
	const char *body;
	char *text; /* the whole response, built once at start-up */
	size_t len;
};

static struct local_response local_responses[] = {
	{400, "Bad Request", "400 Bad Request: malformed or ambiguous request\n"},
	{408, "Request Timeout", "408 Request Timeout: the request did not arrive in time\n"},
	{413, "Content Too Large", "413 Content Too Large: the request body is over the limit\n"},
	{414, "URI Too Long", "414 URI Too Long\n"},
	{431, "Request Header Fields Too Large", "431 Request Header Fields Too Large\n"},
	{501, "Not Implemented", "501 Not Implemented: unsupported transfer coding or method (CONNECT)\n"},
	{502, "Bad Gateway", "502 Bad Gateway: no healthy upstream available\n"},
	{504, "Gateway Timeout", "504 Gateway Timeout: the upstream did not answer in time\n"},
	{505, "HTTP Version Not Supported", "505 HTTP Version Not Supported\n"},
	/* the 502 variants an operator can tell apart in curl output */
	{502, "Bad Gateway", "502 Bad Gateway: upstream connection failed\n"},
	{502, "Bad Gateway", "502 Bad Gateway: invalid response from upstream\n"},
	{503, "Service Unavailable",
	 "503 Service Unavailable: every backend is at its max_conns limit (waited queue_timeout)\n"},
};
enum {
	LR_400, LR_408, LR_413, LR_414, LR_431, LR_501, LR_502_NO_BACKEND, LR_504, LR_505,
	LR_502_CONNECT, LR_502_INVALID, LR_503_FULL,
	LR_NONE = -1,
};

int
rh_conn_global_init(void)
{
	for (size_t i = 0; i < sizeof(local_responses) / sizeof(local_responses[0]); i++) {
		struct local_response *r = &local_responses[i];
		if (r->text)
			continue;
		char tmp[512];
		int n = snprintf(tmp, sizeof(tmp),
				 "HTTP/1.1 %d %s\r\nServer: roundhouse\r\nContent-Type: text/plain\r\n"
				 "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
				 r->status, r->reason, strlen(r->body), r->body);
		if (n < 0 || (size_t)n >= sizeof(tmp) || !(r->text = strdup(tmp)))
			return -1;
		r->len = (size_t)n;
	}
	return 0;
}

/* ---- helpers ---- */

static void conn_run(struct rh_conn *c);
static void pipe_give(struct rh_worker *w, int fds[2], bool empty);
static void upstream_event(struct rh_ep *ep, uint32_t events);

static struct rh_conn *
ep_conn(struct rh_ep *ep)
{
	return (struct rh_conn *)ep;
}

/* Marks <n> bytes of the queue as written. */
static void
wq_advance(struct wq *q, size_t n)
{
	q->progressed = true;
	while (q->idx < q->cnt && q->iov[q->idx].iov_len <= n) {
		n -= q->iov[q->idx].iov_len;
		q->idx++;
	}
	if (q->idx < q->cnt) {
		q->iov[q->idx].iov_base = (char *)q->iov[q->idx].iov_base + n;
		q->iov[q->idx].iov_len -= n;
	}
}

/* Writes the queue to <ep>, adding what went out to *<sent>. 0 when all is written, 1 when the
 * socket is full, -1 on error (errno). <sent> may be NULL. (inline: each pump calls it once a
 * request, and a call of its own costs more than the loop) */
static inline int
wq_flush(struct rh_ep *ep, struct wq *q, uint64_t *sent)
{
	while (q->idx < q->cnt) {
		int n_iov = q->cnt - q->idx;
		if (n_iov > IOV_MAX)
			n_iov = IOV_MAX;
		/* a short count clears the flag when the socket is full; TLS writes a record at a time,
		 * and a short count with the flag still set means: go on */
		if (!ep->writable)
			return 1;
		ssize_t n = rh_ep_writev(ep, q->iov + q->idx, n_iov);
		if (n == -1) {
			/* TLS: the record is encrypted and maybe partly sent: these bytes are committed,
			 * nothing else may be written in their place */
			if (ep->tp->wait_commits)
				q->progressed = true;
			return 1;
		}
		if (n == -2)
			return -1;
		if (sent)
			*sent += (uint64_t)n;
		wq_advance(q, (size_t)n);
	}
	return 0;
}

/* Reads into the free tail of <b>. >0 bytes, 0 at EOF, -1 would block (flag cleared), -2 error. */
static ssize_t
read_into(struct rh_ep *ep, struct rh_buf *b)
{
	if (!rh_ep_can_read(ep))
		return -1;
	ssize_t n = rh_ep_read(ep, b->data + b->end, rh_buf_room(b));
	if (n > 0)
		b->end += (size_t)n;
	return n;
}

/* How many of the <avail> bytes at <p> belong to the body being framed; -1 on a chunked framing error. */
static ssize_t
body_take(uint8_t kind, uint64_t *left, struct rh_chunked *ch, const char *p, size_t avail)
{
	switch (kind) {
	case RH_BODY_LENGTH: {
		size_t n = avail < *left ? avail : (size_t)*left;
		*left -= n;
		return (ssize_t)n;
	}
	case RH_BODY_CHUNKED:
		return rh_chunked_feed(ch, p, avail);
	case RH_BODY_UNTIL_CLOSE:
		return (ssize_t)avail;
	default:
		return 0;
	}
}

static bool
body_done(uint8_t kind, uint64_t left, const struct rh_chunked *ch)
{
	switch (kind) {
	case RH_BODY_LENGTH:
		return left == 0;
	case RH_BODY_CHUNKED:
		return rh_chunked_done(ch);
	case RH_BODY_UNTIL_CLOSE:
		return false;
	default:
		return true;
	}
}

static void
push(struct wq *q, const void *p, size_t len)
{
	if (len == 0)
		return;
	assert(q->cnt < q->max);
	q->iov[q->cnt].iov_base = (void *)p;
	q->iov[q->cnt].iov_len = len;
	q->cnt++;
}

static void
push_iov(struct wq *q, const struct iovec *s)
{
	push(q, s->iov_base, s->iov_len);
}

/* Empty write queues over the exchange's iovecs, covering <consume> input bytes. */
static void
reqq_start(struct rh_conn_io *io, size_t consume)
{
	io->reqq = (struct wq){.iov = io->req, .max = 2, .consume = (uint32_t)consume};
}

static void
respq_start(struct rh_conn_io *io, size_t consume)
{
	io->respq = (struct wq){.iov = io->resp, .max = 4, .consume = (uint32_t)consume};
}

/* Queues <n> response body bytes at <p>, as one chunk when the response is being re-framed. */
static void
push_resp_body(struct rh_conn_io *io, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (io->chunk_out) {
		int len = snprintf(io->chunk_hdr, sizeof(io->chunk_hdr), "%zx\r\n", n);
		push(&io->respq, io->chunk_hdr, (size_t)len);
		push(&io->respq, p, n);
		push_iov(&io->respq, &iov_crlf);
	} else {
		push(&io->respq, p, n);
	}
}

/* ---- closing ---- */

/* How an exchange ended. */
enum outcome {
	EX_RESPONDED, /* the backend's response went to the client whole */
	EX_LOCAL,     /* answered by the proxy itself: bad request, no backend, upstream failure, timeout */
	EX_ABORTED,   /* cut off: the client went away, or the response could not be completed */
};

/* Why an exchange ended, for the access log: "-" for a response, else a word. */
static const char *const local_words[] = {
	[LR_400] = "bad_request", [LR_408] = "client_timeout", [LR_413] = "body_too_large",
	[LR_414] = "uri_too_long", [LR_431] = "head_too_large", [LR_501] = "not_implemented",
	[LR_502_NO_BACKEND] = "no_backend", [LR_504] = "upstream_timeout", [LR_505] = "bad_version",
	[LR_502_CONNECT] = "upstream_connect", [LR_502_INVALID] = "upstream_invalid",
	[LR_503_FULL] = "queue_timeout",
};

/* One access log line for the exchange of <c>, which <backend> (or none) answered with <status>
 * after sending <tx> bytes. */
static void
access_log(struct rh_conn *c, enum outcome how, const struct rh_backend *backend, uint16_t status,
	   uint64_t tx, uint64_t now_us)
{
	struct rh_worker *w = c->w;
	const struct rh_conn_io *io = c->io;
	const struct rh_http_request *refused = io ? NULL : w->refused_req;
	size_t refused_target = refused ? refused->target.len : 0;
	if (refused_target > LOG_TARGET_MAX)
		refused_target = LOG_TARGET_MAX;
	struct rh_access_entry e = {
		.client = c->ip,
		.client_len = c->ip_len,
		.client_port = c->client_port,
		.method = io ? io->method : refused ? refused->method.p : "",
		.method_len = io ? io->method_len : refused && refused->method.len <= LOG_METHOD_MAX ? refused->method.len : 0,
		.target = io ? io->target : refused ? refused->target.p : "",
		.target_len = io ? io->target_len : refused_target,
		.target_truncated = io ? io->target_truncated : refused && refused->target.len > LOG_TARGET_MAX,
		.status = status,
		.backend = backend ? backend->name : NULL,
		.bytes_in = c->rx,
		.bytes_out = tx,
		.duration_us = io ? now_us - io->started_us : 0,
		.connect_us = io ? io->connect_us : -1,
		.retries = io ? io->attempts : 0,
		.end = how == EX_ABORTED ? "aborted"
		       : how == EX_LOCAL && c->local_which != LR_NONE ? local_words[c->local_which]
								     : NULL,
	};
	if (!w->access.data && rh_access_buf_init(&w->access, ACCESS_BUF_SIZE) == -1) {
		rh_stat_add(&w->access.dropped, 1);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &e.time);
	rh_access_log_append(w->srv->access_log, &w->access, &e, w->now);
}

/* Keeps what the access log shows of <req> (its spans do not outlive the parse). */
static void
log_request_line(struct rh_conn_io *io, const struct rh_http_request *req)
{
	size_t m = req->method.len < LOG_METHOD_MAX ? req->method.len : LOG_METHOD_MAX;
	size_t t = req->target.len < LOG_TARGET_MAX ? req->target.len : LOG_TARGET_MAX;

	memcpy(io->method, req->method.p, m);
	memcpy(io->target, req->target.p, t);
	io->method_len = (uint8_t)m;
	io->target_len = (uint16_t)t;
	io->target_truncated = t < req->target.len;
}

/* Where every exchange ends, whichever way (the worker's statistics are counted here, and the
 * access log, per-backend counters and passive health reports are to hook in here too): the
 * upstream connection goes back to the pool only after a complete exchange with nothing left
 * over, else it is closed (either way it stops counting as in flight); the buffers, the pipe and
 * the io itself are given back. A request refused before its exchange began has no io: it can
 * only end with the proxy's own answer (EX_LOCAL). */
static void
exchange_end(struct rh_conn *c, enum outcome how)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;
	struct rh_upconn *up = io ? io->up : NULL;
	uint64_t now_us = io ? rh_clock_us() : 0;
	uint16_t status = io ? io->status : 0;
	uint64_t tx = io ? io->tx : 0;

	if (how == EX_LOCAL) {
		const struct local_response *r = &local_responses[c->local_which];
		status = (uint16_t)r->status;
		tx += r->len; /* counted now: the connection closes after it, with no exchange to count it */
	}
	if (io)
		rh_histogram_add(&w->stats.duration, now_us - io->started_us);
	if (how == EX_RESPONDED && up)
		rh_stat_add(&up->backend->local[w->id].responses[rh_status_class(status)], 1);
	if (w->srv->access_log)
		access_log(c, how, up ? up->backend : NULL, status, tx, now_us);
	if (io) {
		io->up = NULL;
		if (up) {
			if (how == EX_RESPONDED && io->up_reusable && io->req_phase == RQ_DONE &&
			    rh_buf_len(io->out) == 0 && !w->draining)
				rh_upstream_release(w, up, w->snap->settings.keepalive);
			else
				rh_upstream_close(w, up);
		}
		rh_buf_put(&w->bufs, io->req_head);
		rh_buf_put(&w->bufs, io->resp_head);
		rh_buf_put(&w->bufs, io->out);
		io->req_head = io->resp_head = io->out = NULL;
		if (io->pipe[0] != -1)
			pipe_give(w, io->pipe, io->pipe_bytes == 0);
		if (io->retry_from) {
			rh_backend_unref(io->retry_from);
			io->retry_from = NULL;
		}
		io->next_free = w->free_io;
		w->free_io = io;
		c->io = NULL;
		rh_stat_sub(&w->stats.clients_active, 1);
	}
	switch (how) {
	case EX_RESPONDED:
		c->requests++;
		rh_stat_add(&w->stats.requests, 1);
		break;
	case EX_LOCAL:
		rh_stat_add(&w->stats.responses_local, 1);
		rh_stat_add(&w->stats.local_by_class[rh_status_class(status)], 1);
		break;
	case EX_ABORTED:
		rh_stat_add(&w->stats.aborted, 1);
		break;
	}
	rh_stat_add(&w->stats.bytes_in, c->rx);
	rh_stat_add(&w->stats.bytes_out, tx);
	c->rx = 0;
}

/* An io for a new exchange, from the worker's free list or else malloc (NULL when memory ran out),
 * with nothing of an earlier exchange left in it. */
static struct rh_conn_io *
io_take(struct rh_worker *w)
{
	struct rh_conn_io *io = w->free_io;

	if (io) {
		w->free_io = io->next_free;
	} else {
		if (!(io = malloc(sizeof(*io))))
			return NULL;
		/* holds nothing, like one from the free list */
		io->up = NULL;
		io->out = io->req_head = io->resp_head = NULL;
		io->pipe[0] = io->pipe[1] = -1;
		io->retry_from = NULL;
	}
	io->pipe_bytes = 0;
	io->tried.n = 0;
	io->attempts = 0;
	io->stale_retried = false;
	io->retry_pending = false;
	io->tx = 0;
	io->status = 0;
	return io;
}

/* ---- the queue for max_conns slots ---- */

/* <c>'s request found every backend it may use at max_conns: it waits at the worker's queue tail. Its
 * timer (armed by conn_run on tq_queue) keeps running while it is retried, so queue_timeout bounds the
 * whole wait. */
static void
queue_wait(struct rh_conn *c)
{
	struct rh_worker *w = c->w;

	if (c->state != CS_QUEUED) {
		rh_stat_add(&w->stats.queued, 1);
		if (!w->queue_head) {
			/* a new wait: what is free now was looked at just now */
			w->queue_seen_freed = atomic_load_explicit(&rh_backend_slots_freed,
								   memory_order_relaxed);
			w->queue_seen_generation = w->snap->generation;
		}
	}
	c->state = CS_QUEUED;
	c->io->qnext = NULL;
	c->io->qprev = w->queue_tail;
	if (w->queue_tail)
		w->queue_tail->io->qnext = c;
	else
		w->queue_head = c;
	w->queue_tail = c;
	w->n_queued++;
}

/* <c> leaves the queue (before its exchange ends: the links are its io's). */
static void
queue_leave(struct rh_conn *c)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;

	if (io->qprev)
		io->qprev->io->qnext = io->qnext;
	else
		w->queue_head = io->qnext;
	if (io->qnext)
		io->qnext->io->qprev = io->qprev;
	else
		w->queue_tail = io->qprev;
	io->qnext = io->qprev = NULL;
	w->n_queued--;
}

/* After the batch it was closed in, <d>'s connection is kept for the next accept. */
static void
conn_release(struct rh_worker *w, struct rh_deferred *d)
{
	struct rh_conn *c = (struct rh_conn *)((char *)d - offsetof(struct rh_conn, closed));

	c->next = w->free_conns;
	w->free_conns = c;
}

static void
conn_close(struct rh_conn *c)
{
	struct rh_worker *w = c->w;

	if (c->ep.closed)
		return;
	if (c->state == CS_QUEUED)
		queue_leave(c);
	if (c->state == CS_PROXY || c->state == CS_QUEUED)
		exchange_end(c, EX_ABORTED);
	rh_timer_cancel(&c->timer); /* before its storage becomes the release link */
	rh_stat_add(&w->stats.bytes_in, c->rx); /* read for an exchange that never began */
	c->rx = 0;
	rh_buf_put(&w->bufs, c->in);
	c->in = NULL;
	rh_ep_close(&c->ep);

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
	rh_stat_sub(&w->stats.clients_open, 1);

	c->next = c->prev = NULL;
	rh_worker_defer(w, &c->closed, conn_release);
}

/* The worker's exit hook: closes every connection, then frees what the free lists keep. */
static void
conn_worker_exit(struct rh_worker *w)
{
	while (w->conns)
		conn_close(w->conns);
	if (w->access.len > 0)
		rh_access_log_flush(w->srv->access_log, &w->access, w->now);
	rh_access_buf_free(&w->access);
	while (w->n_free_pipes > 0) {
		w->n_free_pipes--;
		close(w->free_pipes[w->n_free_pipes][0]);
		close(w->free_pipes[w->n_free_pipes][1]);
	}
	rh_upstream_close_idle(w, false);
	rh_worker_release_closed(w);
	while (w->free_conns) {
		struct rh_conn *c = w->free_conns;
		w->free_conns = c->next;
		free(c);
	}
	while (w->free_io) {
		struct rh_conn_io *io = w->free_io;
		w->free_io = io->next_free;
		free(io);
	}
	rh_upstream_free_cached(w);
}

/* Sets up an error response; the connection closes once it is sent. CS_LOCAL needs no io: the
 * response is one of the static texts, written from c->local_sent on. */
static void
reply_local(struct rh_conn *c, int which)
{
	c->local_which = (int8_t)which;
	exchange_end(c, EX_LOCAL);
	c->local_sent = 0;
	c->state = CS_LOCAL;
}

static int
status_to_local(int status)
{
	switch (status) {
	case 408: return LR_408;
	case 413: return LR_413;
	case 414: return LR_414;
	case 431: return LR_431;
	case 501: return LR_501;
	case 505: return LR_505;
	default: return LR_400;
	}
}

/* Whether the head in <b> (request or response) is worth parsing. The parser starts over on every
 * call, and a partial head can only become complete with an LF among the bytes that came since the
 * last look: so a head arriving a few bytes at a time is parsed again only then (or when the buffer
 * is full), and a peer trickling 16 KiB byte by byte cannot make the worker scan it 16384 times.
 * The first look (the usual whole head in one read) parses at once. */
static bool
head_worth_parsing(struct rh_conn *c, const struct rh_buf *b)
{
	size_t len = rh_buf_len(b), seen = c->lf_checked;

	c->lf_checked = (uint32_t)len;
	if (len == 0)
		return false;
	return seen == 0 || rh_buf_room(b) == 0 ||
	       (len > seen && memchr(b->data + b->start + seen, '\n', len - seen) != NULL);
}

/* ---- starting an exchange ---- */

static void
log_upstream_failure_text(struct rh_worker *w, const struct rh_backend *b, const char *what,
			  const char *why)
{
	/* at most one line per second per worker: a dead backend must not flood the log */
	if (w->now - w->last_connect_log < 1000 && w->last_connect_log)
		return;
	w->last_connect_log = w->now;
	rh_log_warn("upstream %s: %s: %s", b->name, what, why);
}

static void
log_upstream_failure(struct rh_worker *w, const struct rh_backend *b, const char *what, int err)
{
	log_upstream_failure_text(w, b, what, strerror(err));
}

/* A failed TLS handshake with <b>: logged once per backend and reason (any worker), not once per
 * request; a successful handshake resets it. */
static void
log_tls_failure(struct rh_worker *w, struct rh_backend *b, const struct rh_ep *ep)
{
	char why[192];
	uint32_t h = 2166136261u;

	rh_ep_failure(ep, EPROTO, why, sizeof(why));
	for (const char *p = why; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h |= 1; /* never 0, which means "nothing logged" */
	uint_fast32_t prev = atomic_load_explicit(&b->tls_failure_logged, memory_order_relaxed);
	/* a new reason is logged at most once a second per worker, so reasons that keep changing
	 * cannot flood the log either */
	if (prev == h || (w->last_connect_log && w->now - w->last_connect_log < 1000) ||
	    !atomic_compare_exchange_strong_explicit(&b->tls_failure_logged, &prev, h,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	w->last_connect_log = w->now;
	rh_log_warn("upstream %s: TLS handshake failed: %s (logged once until it changes)", b->name,
		    why);
}

/* Whether the chunked request body declared more than [limits] max_body_size (checked before the
 * bytes of a chunk that would cross it are forwarded; Content-Length is checked by the parser). */
static bool
body_over_limit(const struct rh_conn *c)
{
	const struct rh_conn_io *io = c->io;
	uint64_t max = c->w->snap->settings.limits.max_body;

	return max && io->req_body == RH_BODY_CHUNKED && io->req_chunk.total + io->req_chunk.remaining > max;
}

/* A buffer in *<slot> for a serialized head of at most <need> bytes (the serializer's bound; it is
 * loose, so past RH_BUF_SIZE the head may still fit a large buffer), keeping the one already held
 * when it is big enough. NULL when memory ran out. */
static struct rh_buf *
head_buffer(struct rh_worker *w, struct rh_buf **slot, size_t need)
{
	if (need > RH_BUF_SIZE)
		need = RH_BUF_SIZE;
	if (*slot && (*slot)->cap < need) {
		rh_buf_put(&w->bufs, *slot);
		*slot = NULL;
	}
	if (!*slot)
		*slot = rh_buf_get_fit(&w->bufs, need);
	return *slot;
}

/* Serializes the upstream request head for the parsed <req> (whose head is <head_len> bytes at
 * c->in->start) into io->req_head and queues it in io->reqq with the body bytes that came along, so
 * both leave in one writev. Returns LR_NONE, or the error response to answer instead. */
static int
build_request(struct rh_conn *c, const struct rh_http_request *req, size_t head_len)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;
	const struct rh_request_rewrite rw = {
		.host = w->snap->settings.host_header,
		.xff = w->snap->settings.x_forwarded_for,
		.client_ip = {c->ip, c->ip_len},
		.https = rh_ep_is_tls(&c->ep),
	};
	struct wq *q = &io->reqq;

	if (!head_buffer(w, &io->req_head, rh_http1_request_size_bound(req, head_len, &rw)))
		return LR_502_CONNECT;
	ssize_t n = rh_http1_serialize_request(req, &rw, io->req_head->data, io->req_head->cap);
	if (n < 0)
		return LR_431; /* rewritten, the head no longer fits in RH_BUF_SIZE */
	reqq_start(io, 0);
	push(q, io->req_head->data, (size_t)n);

	/* a body streams through a large buffer: the bytes after the head move there now (the
	 * parsed spans of <req> are not used after this) */
	if (req->body != RH_BODY_NONE && !rh_buf_grow(&w->bufs, &c->in))
		return LR_502_CONNECT;
	struct rh_buf *in = c->in;
	const char *body = in->data + in->start + head_len;
	size_t avail = rh_buf_len(in) - head_len;
	ssize_t nb = 0;
	if (avail)
		nb = body_take(io->req_body, &io->req_left, &io->req_chunk, body, avail);
	if (nb < 0)
		return LR_400; /* chunked framing broken in the first body bytes */
	if (body_over_limit(c))
		return LR_413;
	push(q, body, (size_t)nb);
	/* a request without body keeps its head in the buffer until the response starts, so that a
	 * stale pooled connection can be retried; one with a body gives it up once sent */
	io->head_consumed = false;
	q->consume = io->req_body == RH_BODY_NONE ? 0 : (uint32_t)(head_len + (size_t)nb);
	return LR_NONE;
}

/* Whether <err> from a connect says nothing reached the backend's application: refused or
 * unreachable. A retry after such a failure adds no load to the pool, so the retry budget does not
 * count it (it is there so retries cannot multiply the load on a struggling pool). */
static bool
refused(int err)
{
	return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH;
}

/* Whether <err> is this process's own trouble (out of descriptors, memory or local ports), not the
 * backend's: no passive health report then. */
static bool
local_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS || err == EADDRNOTAVAIL ||
	       err == EAGAIN;
}

/* The request failed and may go to one more backend if [upstream] retries are not used up. It goes
 * once start_exchange has found another backend; <budgeted>: that retry must fit in the worker's
 * retry budget (else the client gets <fail>). */
static bool
retry_wanted(struct rh_conn *c, bool budgeted, int fail)
{
	struct rh_conn_io *io = c->io;

	if (io->attempts >= c->w->snap->settings.retries)
		return false;
	io->attempts++;
	io->retry_pending = true;
	io->retry_budgeted = budgeted;
	io->retry_fail = (int8_t)fail;
	return true;
}

/* A retry found backend <b>: counts it, or, when the retry budget has no room, sets up the error
 * response and returns false. */
static bool
retry_go(struct rh_conn *c)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;

	io->retry_pending = false;
	if (io->retry_budgeted && !rh_retry_budget_take(&w->budget, w->now)) {
		rh_stat_add(&w->stats.retries_denied, 1);
		if (io->retry_from)
			rh_stat_add(&io->retry_from->local[w->id].retries_denied, 1);
		reply_local(c, io->retry_fail);
		return false;
	}
	rh_stat_add(&w->stats.retries, 1);
	if (io->retry_from) {
		rh_stat_add(&io->retry_from->local[w->id].retries, 1);
		rh_backend_unref(io->retry_from);
		io->retry_from = NULL;
	}
	return true;
}

/* Picks a backend and an upstream connection for the complete head at c->in->start and prepares the
 * exchange. <head_len>: the head was just parsed into w->req (the usual case); 0: parse it again
 * (a retry, in a later loop turn). Returns false when it set up an error response instead (the io,
 * if one was taken, is given back then). */
static bool
start_exchange(struct rh_conn *c, int head_len, bool fresh_only)
{
	struct rh_worker *w = c->w;
	const struct rh_snapshot *snap = w->snap;
	struct rh_http_request *req = &w->req;
	struct rh_buf *in = c->in;

	if (head_len <= 0)
		head_len = rh_http_parse_request(in->data + in->start, rh_buf_len(in),
						 &snap->settings.limits, req);
	if (head_len <= 0) {
		w->refused_req = req; /* the access log shows what of it was parsed */
		reply_local(c, head_len == RH_HTTP_INVALID ? status_to_local(req->error_status) : LR_400);
		w->refused_req = NULL;
		return false;
	}
	if (!c->io) { /* a new request (a retry keeps its io, and what it tried) */
		if (!(c->io = io_take(w))) {
			reply_local(c, LR_502_CONNECT);
			return false;
		}
		rh_retry_budget_request(&w->budget, w->now);
		rh_stat_add(&w->stats.clients_active, 1);
		c->io->started_us = rh_clock_us();
		if (w->srv->access_log)
			log_request_line(c->io, req);
	}
	struct rh_conn_io *io = c->io; /* not read once reply_local has given it back */
	io->connect_us = -1;
	io->req_head_len = (size_t)head_len;
	io->http10 = req->minor_version == 0;
	io->req_is_head = req->is_head;
	io->keep_alive = req->keep_alive && !w->draining;
	io->client_ka = req->keep_alive;
	io->req_body = (uint8_t)req->body;
	io->req_idempotent = req->is_idempotent;
	io->req_left = req->content_length;
	rh_chunked_init(&io->req_chunk);
	io->resp_seen = false;
	io->resp_started = false;
	io->resp_interim = false;
	io->chunk_out = false;
	io->resp_final = false;
	io->fail_what = NULL;
	c->lf_checked = 0; /* from here on it tracks the response head */
	io->fail_logged = false;
	io->fail_io = false;

	/* the hash key is read from <req>'s spans, before build_request may move the input */
	uint64_t key = RH_LB_NO_KEY;
	if (snap->lb->uses_key)
		key = rh_lb_request_key(&snap->settings.hash_key, req,
					(struct rh_span){c->ip, c->ip_len});

	/* the head is rebuilt and the first body bytes checked before a backend is chosen, so a
	 * request refused for its own bytes never costs a backend a connection. build_request may move
	 * the input to a large buffer: <req>'s spans are not read after it */
	int err = build_request(c, req, (size_t)head_len);
	if (err != LR_NONE) {
		reply_local(c, err);
		return false;
	}

	/* <avoid>: the backends this request failed on, plus (in <full>, a copy made only when
	 * it happens) those at their max_conns limit right now */
	const struct rh_lb_tried *avoid = &io->tried;
	struct rh_lb_tried full;
	bool some_full = false;
	struct rh_upconn *up = NULL;
	for (unsigned picks = 0; !up; picks++) {
		struct rh_backend *b = picks < MAX_PICKS ? snap->lb->pick(snap, snap->lb_table, key, avoid,
									  snap->settings.max_iterations)
							 : NULL;
		if (!b && some_full) {
			queue_wait(c); /* a slot or another pick, until queue_timeout */
			return false;
		}
		if (!b) {
			reply_local(c, io->retry_pending ? io->retry_fail
				       : io->attempts    ? LR_502_CONNECT
							 : LR_502_NO_BACKEND);
			return false;
		}
		if (io->retry_pending && !retry_go(c))
			return false;
		bool slot;
		if (!rh_backend_slot_take(b, &slot)) {
			if (!some_full) {
				full = io->tried;
				avoid = &full;
				some_full = true;
			}
			rh_lb_tried_add(&full, b);
			continue;
		}
		up = rh_upstream_acquire(w, b, c, upstream_event, fresh_only);
		if (up) {
			up->slot = slot;
			if (up->connecting)
				io->connect_start_us = rh_clock_us();
			break;
		}
		int connect_err = errno;
		rh_stat_add(&b->local[w->id].connect_failures, 1);
		if (slot)
			rh_backend_slot_put(b);
		log_upstream_failure(w, b, "connect", connect_err);
		if (!local_error(connect_err))
			rh_runtime_report_failure(w->srv->rt, b, w->id, RH_FAIL_CONNECT, connect_err);
		rh_lb_tried_add(&io->tried, b);
		if (some_full)
			rh_lb_tried_add(&full, b);
		if (!io->retry_from) {
			io->retry_from = b;
			rh_backend_ref(b);
		}
		if (!retry_wanted(c, !refused(connect_err), LR_502_CONNECT)) {
			reply_local(c, LR_502_CONNECT);
			return false;
		}
	}
	io->up = up;
	if (!io->out && !(io->out = rh_buf_get(&w->bufs))) {
		reply_local(c, LR_502_CONNECT);
		return false;
	}
	io->out->start = io->out->end = 0;
	io->req_phase = up->connecting ? RQ_CONNECT : RQ_SEND;
	io->resp_phase = RS_HEAD;
	respq_start(io, 0);
	c->state = CS_PROXY;
	return true;
}

/* Activity that belongs to the deadline <q> pushes it back; activity of the other direction must
 * not keep a stalled one alive (a client trickling its upload while it never reads the response). */
static void
progress(struct rh_conn *c, struct rh_timer_queue *q)
{
	if (c->timer.queue == q)
		rh_timer_touch(&c->timer, c->w->now);
}

/* The empty buffer *<bp> is replaced by a body buffer when one is to be had: more than a large
 * buffer of body is still to come, and one read and one write per 64 KiB cost half the syscalls of
 * four 16 KiB ones (the large buffer goes back to the pool at once). */
static void
body_buffer(struct rh_worker *w, struct rh_buf **bp)
{
	struct rh_buf *body = rh_buf_get_body(&w->bufs);

	if (body) {
		rh_buf_put(&w->bufs, *bp);
		*bp = body;
	}
}

/* ---- the request pump: client -> upstream ---- */

static enum pump
pump_request(struct rh_conn *c)
{
	struct rh_conn_io *io = c->io;
	struct rh_upconn *up = io->up;
	struct rh_buf *in = c->in;

	for (;;) {
		switch (io->req_phase) {
		case RQ_CONNECT: {
			if (!up->ep.writable)
				return P_WAIT;
			int e = rh_net_socket_error(up->ep.fd);
			if (e) {
				io->fail_err = e;
				io->fail_what = "connect";
				return P_UPFAIL;
			}
			io->req_phase = RQ_HANDSHAKE; /* TLS's; a plain connection is done at once */
			continue;
		}
		case RQ_HANDSHAKE: {
			enum rh_io_step st = rh_ep_handshake(&up->ep);
			if (st == RH_IO_WAIT)
				return P_WAIT;
			if (st == RH_IO_FAIL) {
				log_tls_failure(c->w, up->backend, &up->ep);
				io->fail_err = EPROTO;
				io->fail_what = "TLS handshake";
				io->fail_logged = true;
				return P_UPFAIL;
			}
			if (rh_ep_is_tls(&up->ep)) {
				if (atomic_load_explicit(&up->backend->tls_failure_logged,
							 memory_order_relaxed))
					atomic_store_explicit(&up->backend->tls_failure_logged, 0,
							      memory_order_relaxed);
				if (rh_tls_resumed(&up->ep))
					rh_stat_add(&c->w->stats.upstream_tls_resumed, 1);
				else
					rh_stat_add(&c->w->stats.upstream_tls_full, 1);
			}
			up->connecting = false;
			io->connect_us = (int64_t)(rh_clock_us() - io->connect_start_us);
			rh_histogram_add(&c->w->stats.connect, (uint64_t)io->connect_us);
			io->req_phase = RQ_SEND;
			continue;
		}
		case RQ_SEND: {
			int r = wq_flush(&up->ep, &io->reqq, NULL);
			if (io->reqq.progressed) {
				up->wrote = true;
				progress(c, &c->w->tq_upstream);
			}
			if (r == 1)
				return P_WAIT;
			if (r == -1) {
				io->fail_err = errno;
				io->fail_what = "send";
				io->fail_io = true;
				return P_UPFAIL;
			}
			in->start += io->reqq.consume;
			if (io->reqq.consume)
				io->head_consumed = true;
			reqq_start(io, 0);
			rh_buf_put(&c->w->bufs, io->req_head); /* a retry serializes it again */
			io->req_head = NULL;
			if (body_done(io->req_body, io->req_left, &io->req_chunk)) {
				io->req_phase = RQ_DONE;
				return P_DONE;
			}
			io->req_phase = RQ_BODY;
			continue;
		}
		case RQ_BODY: {
			size_t avail = rh_buf_len(in);
			if (avail) {
				ssize_t n = body_take(io->req_body, &io->req_left, &io->req_chunk,
						      in->data + in->start, avail);
				if (n < 0 || body_over_limit(c)) {
					/* broken chunked framing from the client, or too much of it: what
					 * is left is never forwarded */
					io->reject = n < 0 ? LR_400 : LR_413;
					return P_REJECT;
				}
				reqq_start(io, (size_t)n);
				push(&io->reqq, in->data + in->start, (size_t)n);
				io->req_phase = RQ_SEND;
				continue;
			}
			in->start = in->end = 0;
			if (in->cap < RH_BUF_BODY_SIZE &&
			    (io->req_body != RH_BODY_LENGTH || io->req_left > in->cap))
				body_buffer(c->w, &c->in);
			in = c->in;
			ssize_t r = read_into(&c->ep, in);
			if (r > 0)
				c->rx += (uint64_t)r;
			if (r > 0) {
				progress(c, &c->w->tq_client_body);
				continue;
			}
			if (r == -1)
				return P_WAIT;
			return P_CLIENTFAIL; /* EOF or error in the middle of the body */
		}
		default:
			return P_DONE;
		}
	}
}

/* Serializes the client response head (final or 1xx) for the parsed <resp> into io->resp_head and
 * starts io->respq with it. False when it does not fit in RH_BUF_SIZE or memory ran out. */
static bool
queue_response_head(struct rh_conn *c, const struct rh_http_response *resp, size_t head_len,
		    const struct rh_response_rewrite *rw)
{
	struct rh_conn_io *io = c->io;

	if (!head_buffer(c->w, &io->resp_head, rh_http1_response_size_bound(resp, head_len)))
		return false;
	ssize_t n = rh_http1_serialize_response(resp, rw, io->resp_head->data, io->resp_head->cap);
	if (n < 0)
		return false;
	respq_start(io, head_len);
	push(&io->respq, io->resp_head->data, (size_t)n);
	return true;
}

/* Queues the final response head for the parsed <resp>, then the first body bytes. Returns the body
 * bytes queued, -1 on broken chunked framing, -2 when the head could not be serialized. */
static ssize_t
build_response(struct rh_conn *c, const struct rh_http_response *resp, size_t head_len)
{
	struct rh_conn_io *io = c->io;
	struct rh_buf *out = io->out;
	const char *body = out->data + out->start + head_len;
	const struct rh_response_rewrite rw = {
		.chunked = io->chunk_out,
		.http10 = io->http10,
		.connection = !io->keep_alive ? RH_CONN_CLOSE : io->http10 ? RH_CONN_KEEP_ALIVE : RH_CONN_NONE,
	};

	if (!queue_response_head(c, resp, head_len, &rw))
		return -2;
	size_t avail = rh_buf_len(out) - head_len;
	ssize_t n = 0;
	if (avail) {
		n = body_take(io->resp_body, &io->resp_left, &io->resp_chunk, body, avail);
		if (n < 0)
			return -1;
		push_resp_body(io, body, (size_t)n);
	}
	io->respq.consume += (uint32_t)n;
	return n;
}

/* ---- the response pump: upstream -> client ---- */

/* The rest of a response body goes through a pipe with splice(2) when nothing needs to see it: both
 * sides plain TCP, a known length (so the framing is the byte count), no re-framing, more than a
 * large buffer still to come, and [upstream] splice on. The kernel moves the pages; no copy to user
 * space and back. */
static bool
splice_wanted(const struct rh_conn *c)
{
	const struct rh_conn_io *io = c->io;

	return c->w->snap->settings.splice && io->resp_body == RH_BODY_LENGTH && !io->chunk_out &&
	       io->resp_left > RH_BUF_SIZE && !rh_ep_is_tls(&c->ep) && !rh_ep_is_tls(&io->up->ep);
}

/* A pipe from the worker's pool (or a new one): true with <fds> set, false when none can be had
 * (out of descriptors: the body goes through a buffer instead). */
static bool
pipe_take(struct rh_worker *w, int fds[2])
{
	if (w->n_free_pipes > 0) {
		w->n_free_pipes--;
		fds[0] = w->free_pipes[w->n_free_pipes][0];
		fds[1] = w->free_pipes[w->n_free_pipes][1];
		return true;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
		fds[0] = fds[1] = -1;
		return false;
	}
	return true;
}

/* Gives a pipe back: kept for the next body when <empty> and there is room, else closed (bytes left
 * in it belong to a response that was cut off). */
static void
pipe_give(struct rh_worker *w, int fds[2], bool empty)
{
	if (empty && w->n_free_pipes < RH_WORKER_PIPES) {
		w->free_pipes[w->n_free_pipes][0] = fds[0];
		w->free_pipes[w->n_free_pipes][1] = fds[1];
		w->n_free_pipes++;
	} else {
		close(fds[0]);
		close(fds[1]);
	}
	fds[0] = fds[1] = -1;
}

/* RS_SPLICE: fills the empty pipe from the upstream (at most what the body still owes), then empties
 * it into the client, until the body is complete. Edge-triggered like every other read and write: a
 * splice that would block clears the endpoint's flag. */
static enum pump
pump_splice(struct rh_conn *c)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;
	struct rh_upconn *up = io->up;

	for (;;) {
		if (io->pipe_bytes > 0) {
			if (!c->ep.writable)
				return P_WAIT;
			if (c->wrote_client && !c->nodelay) {
				/* as in RS_SEND: a second write on this connection, so Nagle must not
				 * hold the body's small tail back for an ACK */
				int one = 1;
				setsockopt(c->ep.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				c->nodelay = true;
			}
			ssize_t n = splice(io->pipe[0], NULL, c->ep.fd, NULL, io->pipe_bytes,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				io->pipe_bytes -= (uint32_t)n;
				io->tx += (uint64_t)n;
				c->wrote_client = true;
				progress(c, &w->tq_send);
				continue;
			}
			if (n == -1 && errno == EAGAIN) {
				c->ep.writable = false;
				return P_WAIT;
			}
			if (n == -1 && errno == EINTR)
				continue;
			return P_CLIENTFAIL;
		}
		if (io->resp_left == 0) {
			/* a read of exactly the bytes owed cannot tell whether more came: look, so
			 * that a pooled connection never carries a stray byte into the next exchange */
			char b;
			if (up->ep.readable && recv(up->ep.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1 &&
			    errno == EAGAIN)
				up->ep.readable = false;
			io->resp_phase = RS_DONE;
			return P_DONE;
		}
		if (!up->ep.readable)
			return P_WAIT;
		size_t want = io->resp_left < RH_SPLICE_MAX ? (size_t)io->resp_left : RH_SPLICE_MAX;
		ssize_t n = splice(up->ep.fd, NULL, io->pipe[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			io->resp_left -= (uint64_t)n;
			io->pipe_bytes += (uint32_t)n;
			/* a short count is no sign of a drained socket here: the pipe may have run out
			 * of slots (one per packet); only EAGAIN says so */
			progress(c, &w->tq_upstream);
			continue;
		}
		if (n == -1 && errno == EAGAIN) { /* the socket is drained: the pipe was empty */
			up->ep.readable = false;
			return P_WAIT;
		}
		if (n == -1 && errno == EINTR)
			continue;
		/* the upstream closed or failed before the length it announced */
		rh_runtime_report_failure(w->srv->rt, up->backend, w->id, RH_FAIL_RESET, n == 0 ? 0 : errno);
		return P_CLIENTFAIL;
	}
}

static enum pump
pump_response(struct rh_conn *c)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;
	struct rh_upconn *up = io->up;
	struct rh_buf *out = io->out;

	for (;;) {
		switch (io->resp_phase) {
		case RS_HEAD: {
			if (io->req_phase == RQ_CONNECT || io->req_phase == RQ_HANDSHAKE)
				return P_WAIT;
			if (head_worth_parsing(c, out)) {
				struct rh_http_response *resp = &w->resp;
				int r = rh_http_parse_response(out->data + out->start, rh_buf_len(out),
							       &w->snap->settings.limits, io->req_is_head, resp);
				if (r == RH_HTTP_INVALID) {
					io->fail_err = EPROTO;
					io->fail_what = "invalid response head";
					return P_UPFAIL;
				}
				if (r > 0 && resp->status < 200) {
					c->lf_checked = 0; /* the final head follows this one */
					/* 1xx: forwarded to 1.1 clients (100 Continue matters), dropped for
					 * 1.0 ones; 101 cannot happen as Upgrade is never forwarded */
					if (resp->status == 101) {
						io->fail_err = EPROTO;
						io->fail_what = "unrequested protocol switch";
						return P_UPFAIL;
					}
					if (io->http10) {
						out->start += (size_t)r;
						continue;
					}
					const struct rh_response_rewrite interim = {.connection = RH_CONN_NONE};
					if (!queue_response_head(c, resp, (size_t)r, &interim)) {
						io->fail_err = EMSGSIZE;
						io->fail_what = "response head too large";
						return P_UPFAIL;
					}
					io->resp_interim = true;
					io->resp_phase = RS_SEND;
					continue;
				}
				if (r > 0) {
					if (io->http10 && resp->body == RH_BODY_CHUNKED) {
						/* asked in HTTP/1.0, so it must not be chunked (RFC 9112
						 * 6.1): a 1.0 client could not read it */
						io->fail_err = EPROTO;
						io->fail_what = "chunked response to an HTTP/1.0 request";
						return P_UPFAIL;
					}
					if (io->req_body == RH_BODY_NONE && !io->head_consumed) {
						/* a bodiless request's head was held for a retry;
						 * the exchange is committed now: it can go */
						c->in->start += io->req_head_len;
						io->head_consumed = true;
					}
					io->resp_body = (uint8_t)resp->body;
					io->resp_left = resp->content_length;
					rh_chunked_init(&io->resp_chunk);
					io->up_reusable = resp->keep_alive && resp->body != RH_BODY_UNTIL_CLOSE;
					/* a body that ends with the upstream's close is re-framed as chunked
					 * for a 1.1 client, whose connection then stays open */
					io->chunk_out = resp->body == RH_BODY_UNTIL_CLOSE && !io->http10;
					if ((resp->body == RH_BODY_UNTIL_CLOSE && !io->chunk_out) ||
					    io->req_phase != RQ_DONE || w->draining)
						io->keep_alive = false;
					io->status = (uint16_t)resp->status;
					ssize_t built = build_response(c, resp, (size_t)r);
					if (built < 0) {
						io->fail_err = built == -1 ? EPROTO : EMSGSIZE;
						io->fail_what = built == -1 ? "invalid chunked body"
									   : "response head too large";
						return P_UPFAIL;
					}
					io->resp_started = true;
					io->resp_phase = RS_SEND;
					continue;
				}
				/* partial head: make room after it */
				if (rh_buf_room(out) == 0) {
					rh_buf_compact(out);
					if (rh_buf_room(out) == 0) {
						io->fail_err = EMSGSIZE;
						io->fail_what = "response head too large";
						return P_UPFAIL;
					}
				}
			} else if (!rh_buf_len(out)) {
				out->start = out->end = 0;
			}
			ssize_t n = read_into(&up->ep, out);
			if (n > 0) {
				io->resp_seen = true;
				progress(c, &w->tq_upstream);
				continue;
			}
			if (n == -1)
				return P_WAIT;
			io->fail_err = n == 0 ? ECONNRESET : errno;
			io->fail_what = n == 0 ? "closed before responding" : "recv";
			io->fail_io = n == -2;
			return P_UPFAIL;
		}
		case RS_SEND: {
			if (c->wrote_client && !c->nodelay) {
				/* a second write on this connection: from now on Nagle could hold a
				 * small tail back waiting for an ACK. One response in one writev (the
				 * common close case) never pays for the setsockopt. */
				int one = 1;
				setsockopt(c->ep.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				c->nodelay = true;
			}
			int r = wq_flush(&c->ep, &io->respq, &io->tx);
			c->wrote_client = c->wrote_client || io->respq.progressed;
			if (r == 1)
				return P_WAIT;
			if (r == -1)
				return P_CLIENTFAIL;
			progress(c, &w->tq_send);
			out->start += io->respq.consume;
			respq_start(io, 0);
			rh_buf_put(&w->bufs, io->resp_head);
			io->resp_head = NULL;
			if (io->resp_interim) {
				io->resp_interim = false;
				io->resp_phase = RS_HEAD;
				continue;
			}
			if (io->resp_final) {
				io->resp_phase = RS_DONE;
				return P_DONE;
			}
			if (body_done(io->resp_body, io->resp_left, &io->resp_chunk)) {
				io->resp_phase = RS_DONE;
				return P_DONE;
			}
			io->resp_phase = RS_BODY;
			continue;
		}
		case RS_BODY: {
			size_t avail = rh_buf_len(out);
			if (avail) {
				ssize_t n = body_take(io->resp_body, &io->resp_left, &io->resp_chunk,
						      out->data + out->start, avail);
				if (n < 0) {
					/* broken framing mid-body: nothing to salvage */
					rh_runtime_report_failure(w->srv->rt, up->backend, w->id,
								  RH_FAIL_INVALID, EPROTO);
					return P_CLIENTFAIL;
				}
				respq_start(io, (size_t)n);
				push_resp_body(io, out->data + out->start, (size_t)n);
				io->resp_phase = RS_SEND;
				continue;
			}
			out->start = out->end = 0;
			if (splice_wanted(c) && pipe_take(w, io->pipe)) {
				rh_stat_add(&w->stats.spliced, 1);
				io->resp_phase = RS_SPLICE;
				continue;
			}
			if (out->cap < RH_BUF_BODY_SIZE &&
			    (io->resp_body != RH_BODY_LENGTH || io->resp_left > out->cap))
				body_buffer(w, &io->out);
			out = io->out;
			ssize_t n = read_into(&up->ep, out);
			if (n > 0) {
				progress(c, &w->tq_upstream);
				continue;
			}
			if (n == -1)
				return P_WAIT;
			if (n == 0 && io->resp_body == RH_BODY_UNTIL_CLOSE) {
				if (!io->chunk_out) {
					io->resp_phase = RS_DONE;
					return P_DONE;
				}
				respq_start(io, 0);
				push_iov(&io->respq, &iov_last_chunk);
				io->resp_final = true;
				io->resp_phase = RS_SEND;
				continue;
			}
			/* truncated response: close the client so it notices */
			rh_runtime_report_failure(w->srv->rt, up->backend, w->id, RH_FAIL_RESET,
						  n == -2 ? errno : 0);
			return P_CLIENTFAIL;
		}
		case RS_SPLICE:
			return pump_splice(c);
		default:
			return P_DONE;
		}
	}
}

/* ---- ending an exchange ---- */

/* The upstream failed before the response could start: the request goes again when that is safe
 * (see the top of this file), else the client gets 502/504. The failure is reported for passive
 * health, unless it was a pooled connection the backend had closed while idle (not its fault).
 * Returns false when <c> must be closed. */
static bool
upstream_failed(struct rh_conn *c, bool timed_out)
{
	struct rh_worker *w = c->w;
	struct rh_conn_io *io = c->io;
	struct rh_upconn *up = io->up;
	struct rh_backend *b = up->backend;
	bool connect_failed = up->connecting; /* cleared only when the connect (and handshake) succeeded */
	bool pooled = up->reused;
	bool nothing_sent = !up->wrote && !io->head_consumed;
	/* the backend may have read the request and acted on it before closing: it goes again only
	 * when sending it twice is harmless (RFC 9110 9.2.2) and its head is still here to resend */
	bool replayable = !io->resp_seen && io->req_body == RH_BODY_NONE && io->req_idempotent &&
			  !io->head_consumed && !timed_out;
	bool stale_pooled = pooled && replayable && !io->stale_retried;
	int err = timed_out ? ETIMEDOUT : io->fail_err;
	/* a pooled connection the backend had closed while idle (its keep-alive timeout racing ours)
	 * is not a failure of the backend, whatever the method */
	bool closed_idle = pooled && !io->resp_seen && !timed_out && !connect_failed &&
			   io->fail_err != EPROTO && io->fail_err != EMSGSIZE;

	if (!stale_pooled && !io->fail_logged && io->fail_io && !timed_out) {
		char why[192];
		log_upstream_failure_text(w, b, io->fail_what,
					  rh_ep_failure(&up->ep, io->fail_err, why, sizeof(why)));
	} else if (!stale_pooled && !io->fail_logged)
		log_upstream_failure(w, b, timed_out ? (connect_failed ? "connect timed out"
								       : "no response in time")
						     : io->fail_what,
				     err);
	if (!closed_idle && !local_error(err))
		rh_runtime_report_failure(w->srv->rt, b, w->id,
					  timed_out        ? RH_FAIL_TIMEOUT
					  : connect_failed ? RH_FAIL_CONNECT
					  : io->fail_err == EPROTO || io->fail_err == EMSGSIZE ? RH_FAIL_INVALID
											    : RH_FAIL_RESET,
					  err);
	if (connect_failed)
		rh_stat_add(&b->local[w->id].connect_failures, 1);
	if (!io->retry_from) { /* the retry counts, if one follows, are this backend's */
		io->retry_from = b;
		rh_backend_ref(b);
	}
	rh_upstream_close(w, up);
	io->up = NULL;
	if (io->resp_started || io->respq.progressed)
		return false; /* bytes of a response (maybe a 1xx) went out: nothing else can follow */

	if (stale_pooled) {
		/* once, on a fresh connection, as the pool's own business: no retry counted */
		io->stale_retried = true;
		rh_backend_unref(io->retry_from); /* the pool's business, not a retry away from <b> */
		io->retry_from = NULL;
		rh_timer_cancel(&c->timer); /* the next attempt gets its own connect deadline */
		start_exchange(c, 0, true);
		return true;
	}
	int fail = timed_out ? LR_504 : connect_failed ? LR_502_CONNECT : LR_502_INVALID;
	if (((nothing_sent && (!timed_out || connect_failed)) || replayable) &&
	    retry_wanted(c, !(connect_failed && !timed_out && refused(io->fail_err)), fail)) {
		rh_lb_tried_add(&io->tried, b);
		rh_timer_cancel(&c->timer);
		start_exchange(c, 0, io->stale_retried);
		return true;
	}
	reply_local(c, fail);
	return true;
}

/* ---- states ---- */

enum step {
	ST_WAIT,  /* blocked: wait for events */
	ST_AGAIN, /* state changed: run again */
	ST_CLOSE,
};

static enum step
step_read_head(struct rh_conn *c)
{
	struct rh_worker *w = c->w;

	if (!c->in) {
		if (!rh_ep_can_read(&c->ep))
			return ST_WAIT;
		if (!(c->in = rh_buf_get_small(&w->bufs)))
			return ST_CLOSE;
	}
	for (;;) {
		struct rh_buf *in = c->in;
		if (head_worth_parsing(c, in)) {
			int r = rh_http_parse_request(in->data + in->start, rh_buf_len(in),
						      &w->snap->settings.limits, &w->req);
			if (r > 0) {
				start_exchange(c, r, false);
				return ST_AGAIN;
			}
			if (r == RH_HTTP_INVALID) {
				w->refused_req = &w->req; /* the access log shows what of it was parsed */
				reply_local(c, status_to_local(w->req.error_status));
				w->refused_req = NULL;
				return ST_AGAIN;
			}
			if (rh_buf_room(in) == 0) {
				rh_buf_compact(in); /* the parser says 431 before a large buffer is full */
				/* a head longer than a small buffer: only now is a large one taken */
				if (rh_buf_room(in) == 0 && !rh_buf_grow(&w->bufs, &c->in))
					return ST_CLOSE;
				continue;
			}
		} else if (!rh_buf_len(in)) {
			in->start = in->end = 0;
		}
		ssize_t n = read_into(&c->ep, in);
		if (n > 0)
			c->rx += (uint64_t)n;
		if (n > 0)
			continue;
		if (n == -1) {
			if (rh_buf_len(in) == 0) {
				/* nothing pending: an idle keep-alive connection holds no buffer */
				rh_buf_put(&w->bufs, in);
				c->in = NULL;
			}
			return ST_WAIT;
		}
		return ST_CLOSE; /* EOF or error: between requests that is a normal close */
	}
}

/* listen_tls: the client's handshake; a failure just closes (there is no HTTP to answer in). */
static enum step
step_handshake(struct rh_conn *c)
{
	struct rh_worker *w = c->w;

	switch (rh_ep_handshake(&c->ep)) {
	case RH_IO_WAIT:
		return ST_WAIT;
	case RH_IO_FAIL: {
		char why[192];
		(void)why; /* unused when debug logging is compiled out */
		rh_stat_add(&w->stats.edge_tls_failed, 1);
		rh_log_debug("client %s: TLS handshake failed: %s", c->ip,
			     rh_ep_failure(&c->ep, errno, why, sizeof(why)));
		return ST_CLOSE;
	}
	default:
		break;
	}
	if (rh_tls_resumed(&c->ep))
		rh_stat_add(&w->stats.edge_tls_resumed, 1);
	else
		rh_stat_add(&w->stats.edge_tls_full, 1);
	c->state = CS_READ_HEAD;
	return ST_AGAIN;
}

/* Staged close: shut our side so everything written reaches the client, then discard what it still
 * sends until it closes or tq_linger runs out (a close with unread input would send a reset that
 * can destroy the response's tail). */
static enum step
start_linger(struct rh_conn *c)
{
	/* nothing read from here on is kept: the buffer goes back for up to 5 s of draining (the
	 * exchange, and its response buffer, ended already) */
	rh_buf_put(&c->w->bufs, c->in);
	c->in = NULL;
	c->state = CS_LINGER;
	c->shut = false;
	rh_timer_cancel(&c->timer);
	return ST_AGAIN;
}

/* Ends a client connection after its last response (its exchange has ended). When the client may
 * still be sending (<client_may_send>: it asked for keep-alive and may pipeline, or its body is
 * unfinished; or bytes are unread), a plain close would make the kernel answer what arrives with a
 * reset, which can destroy the response's tail still in flight or unread at the client: shut our
 * side and drain instead (CS_LINGER, the staged close of RFC 9112 9.6). A client that said "close"
 * and sent everything gets a plain close. */
static enum step
close_after_response(struct rh_conn *c, bool client_may_send)
{
	bool may_send_more = client_may_send || (c->in && rh_buf_len(c->in)) || rh_ep_can_read(&c->ep);

	if (may_send_more)
		return start_linger(c);
	/* TLS: the close waits for close_notify to leave, so the client knows nothing was cut */
	return rh_ep_shutdown(&c->ep) == RH_IO_WAIT ? start_linger(c) : ST_CLOSE;
}

/* The response is complete: end the exchange and go on with the next request, or close. */
static enum step
finish_exchange(struct rh_conn *c)
{
	const struct rh_conn_io *io = c->io;
	/* the backend answered before taking the whole body: the rest of it cannot be told apart
	 * from a next request, so the connection ends here */
	bool body_left = io->req_phase != RQ_DONE;
	bool next = io->keep_alive && !body_left;
	bool client_may_send = io->client_ka || body_left;

	exchange_end(c, EX_RESPONDED);
	rh_timer_cancel(&c->timer); /* the next request gets a fresh client_header deadline */
	c->lf_checked = 0;
	c->state = CS_READ_HEAD;
	return next ? ST_AGAIN : close_after_response(c, client_may_send);
}

static enum step
step_proxy(struct rh_conn *c)
{
	enum pump rq = pump_request(c);

	if (rq == P_CLIENTFAIL)
		return ST_CLOSE;
	if (rq == P_REJECT) {
		const struct rh_conn_io *io = c->io;
		if (io->resp_started || io->respq.progressed)
			return ST_CLOSE; /* a response is under way: cutting it off is all that is left */
		reply_local(c, io->reject);
		return ST_AGAIN;
	}
	if (rq == P_UPFAIL)
		return upstream_failed(c, false) ? ST_AGAIN : ST_CLOSE;

	enum pump rs = pump_response(c);
	if (rs == P_CLIENTFAIL)
		return ST_CLOSE;
	if (rs == P_UPFAIL)
		return upstream_failed(c, false) ? ST_AGAIN : ST_CLOSE;
	if (rs == P_DONE)
		return finish_exchange(c);
	return ST_WAIT;
}

/* CS_LOCAL: the rest of the static error response, from c->local_sent on (its bytes were counted
 * by exchange_end already). */
static enum step
step_local(struct rh_conn *c)
{
	const struct local_response *r = &local_responses[c->local_which];

	while (c->local_sent < r->len) {
		if (!c->ep.writable)
			return ST_WAIT;
		struct iovec rest = {r->text + c->local_sent, r->len - c->local_sent};
		ssize_t n = rh_ep_writev(&c->ep, &rest, 1);
		if (n == -1)
			return ST_WAIT; /* the next call presents the same bytes, as TLS wants */
		if (n == -2)
			return ST_CLOSE;
		c->local_sent += (uint16_t)n;
	}
	/* the client may still be sending a request we will not read */
	return start_linger(c);
}

static enum step
step_linger(struct rh_conn *c)
{
	char sink[4096];

	if (!c->shut) {
		/* TLS: close_notify first, as after the shutdown nothing more can be sent */
		if (rh_ep_shutdown(&c->ep) == RH_IO_WAIT)
			return ST_WAIT;
		shutdown(c->ep.fd, SHUT_WR);
		c->shut = true;
	}
	for (;;) {
		if (!c->ep.readable)
			return ST_WAIT;
		/* straight from the socket, under any transport: these bytes are thrown away, and
		 * TLS has said its last word (close_notify) */
		ssize_t n = read(c->ep.fd, sink, sizeof(sink));
		if (n > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			c->ep.readable = false;
			return ST_WAIT;
		}
		return ST_CLOSE;
	}
}

/* ---- timers ---- */

static struct rh_timer_queue *
timer_queue_for(struct rh_conn *c)
{
	struct rh_worker *w = c->w;
	const struct rh_conn_io *io = c->io; /* CS_PROXY and CS_QUEUED have one */

	switch (c->state) {
	case CS_HANDSHAKE:
		return &w->tq_header;
	case CS_READ_HEAD:
		if (c->requests == 0 || (c->in && rh_buf_len(c->in)))
			return &w->tq_header;
		return &w->tq_idle;
	case CS_PROXY:
		if (io->req_phase == RQ_CONNECT || io->req_phase == RQ_HANDSHAKE)
			return &w->tq_connect;
		if ((io->resp_phase == RS_SEND || (io->resp_phase == RS_SPLICE && io->pipe_bytes)) &&
		    !c->ep.writable)
			return &w->tq_send;
		if (io->req_phase == RQ_BODY && io->resp_phase == RS_HEAD)
			return &w->tq_client_body;
		return &w->tq_upstream;
	case CS_QUEUED:
		return &w->tq_queue;
	case CS_LOCAL:
		return &w->tq_send;
	default:
		return &w->tq_linger;
	}
}

static void
conn_timeout(struct rh_timer *t)
{
	struct rh_conn *c = (struct rh_conn *)((char *)t - offsetof(struct rh_conn, timer));
	struct rh_worker *w = c->w;
	struct rh_timer_queue *q = timer_queue_for(c);

	if (q == &w->tq_queue) {
		queue_leave(c);
		rh_stat_add(&w->stats.queue_timeouts, 1);
		reply_local(c, LR_503_FULL);
	} else if (q == &w->tq_header && c->state == CS_READ_HEAD && c->in && rh_buf_len(c->in)) {
		reply_local(c, LR_408);
	} else if (q == &w->tq_client_body && !c->io->resp_started) {
		reply_local(c, LR_408);
	} else if ((q == &w->tq_connect || q == &w->tq_upstream) && c->io->up && !c->io->resp_started) {
		if (!upstream_failed(c, true)) {
			conn_close(c);
			return;
		}
	} else {
		/* a response that pauses after its head (streaming, long polling) is not counted
		 * against the backend's health, as nginx's max_fails does not count it either */
		if (c->state == CS_HANDSHAKE)
			rh_stat_add(&w->stats.edge_tls_failed, 1);
		else if (q == &w->tq_idle)
			rh_ep_shutdown(&c->ep); /* a clean end of an idle keep-alive connection */
		conn_close(c);
		return;
	}
	conn_run(c);
}

/* ---- driving ---- */

/* Drives <c> after an event on its client or upstream socket, or a timeout. */
static void
conn_run(struct rh_conn *c)
{
	enum step s;

	if (c->ep.closed)
		return;
	do {
		switch (c->state) {
		case CS_HANDSHAKE:
			s = step_handshake(c);
			break;
		case CS_READ_HEAD:
			s = step_read_head(c);
			break;
		case CS_PROXY:
			s = step_proxy(c);
			break;
		case CS_QUEUED:
			s = ST_WAIT; /* the worker's turn hook retries it */
			break;
		case CS_LOCAL:
			s = step_local(c);
			break;
		default:
			s = step_linger(c);
			break;
		}
	} while (s == ST_AGAIN);

	if (s == ST_CLOSE) {
		conn_close(c);
		return;
	}
	/* The client socket joins epoll only once something waits on it. A connection whose request
	 * is whole and sent, waiting for the response head, needs nothing from it yet: a request per
	 * connection (accepted with its request, TCP_DEFER_ACCEPT) that is answered and closed then
	 * never costs an epoll_ctl. Registering later loses nothing: EPOLL_CTL_ADD reports the
	 * readiness the socket already has. The price: a client that resets while its first request
	 * waits for the response head is noticed when the response comes (or upstream_read runs
	 * out), not at once; from the second request on it is registered. */
	if (!c->watched && !(c->state == CS_PROXY && c->io->resp_phase == RS_HEAD && c->io->req_phase == RQ_DONE)) {
		if (rh_ep_watch(c->w->epfd, &c->ep, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1) {
			conn_close(c);
			return;
		}
		c->watched = true;
	}
	struct rh_timer_queue *q = timer_queue_for(c);
	if (c->timer.queue != q)
		rh_timer_arm(&c->timer, q, c->w->now);
}

/* The worker's drain hook: connections between requests close now, the others once their exchange
 * is over; idle upstream connections close too. */
static void
conn_drain(struct rh_worker *w)
{
	rh_upstream_close_idle(w, false);
	/* An idle keep-alive connection is not closed at once: its client may be sending its next
	 * request right now, and would see a reset (wrk counts a read error, a browser retries). It
	 * gets RH_DRAIN_IDLE_MS for one more request, answered with "Connection: close", then the
	 * idle timer closes it. A client that waits longer meets the usual keep-alive race. */
	for (struct rh_conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == CS_READ_HEAD && (!c->in || rh_buf_len(c->in) == 0)) {
			/* also one that connected and sent nothing yet (a preconnect, a balancer's
			 * TCP check): it must not hold the drain for client_header */
			rh_timer_arm(&c->timer, &w->tq_idle, w->now); /* tq_idle is short now */
		} else if (c->io) {
			c->io->keep_alive = false;
		}
		/* (an exchange that starts from now on is without keep-alive: w->draining) */
	}
}

/* The worker's generation hook: idle connections to backends that left the snapshot go. */
static void
conn_generation(struct rh_worker *w)
{
	rh_upstream_close_idle(w, true);
}

/* An event on a client socket. */
static void
conn_event(struct rh_ep *ep, uint32_t events)
{
	struct rh_conn *c = ep_conn(ep);

	rh_ep_note_events(ep, events);
	if ((events & (EPOLLHUP | EPOLLERR)) && (c->state == CS_PROXY || c->state == CS_QUEUED)) {
		/* the client reset the connection: nobody is left to answer, free the upstream now
		 * rather than when upstream_read runs out */
		conn_close(c);
		return;
	}
	conn_run(c);
}

/* An event on the upstream connection of an exchange (rh_upstream_acquire installs this handler;
 * the pool puts its own back when the exchange ends). */
static void
upstream_event(struct rh_ep *ep, uint32_t events)
{
	struct rh_upconn *up = (struct rh_upconn *)ep;

	rh_ep_note_events(ep, events);
	conn_run(up->owner);
}

/* The worker's accept hook: a client connection on <fd> (from <l>, peer <addr>), TLS first on a
 * listen_tls address. */
static void
conn_accepted(struct rh_worker *w, const struct rh_listener *l, int fd, const struct sockaddr *addr)
{
	struct rh_conn *c = w->free_conns;
	if (c)
		w->free_conns = c->next;
	else if (!(c = malloc(sizeof(*c)))) {
		close(fd);
		return;
	}
	*c = (struct rh_conn){
		.ep = {.fd = fd, .tp = &rh_transport_tcp, .handler = conn_event},
		.w = w,
		.timer = {.fire = conn_timeout},
		.state = CS_READ_HEAD,
		.local_which = LR_NONE,
	};
	c->ip_len = (uint8_t)rh_net_host_text(addr, c->ip, sizeof(c->ip));
	c->client_port = ntohs(addr->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)addr)->sin6_port
							    : ((const struct sockaddr_in *)addr)->sin_port);
	if (l->tls) {
		if (!rh_tls_accept_start(l->tls, &c->ep)) {
			close(fd);
			c->next = w->free_conns;
			w->free_conns = c;
			return;
		}
		/* the handshake's last flight (TLS 1.3 tickets) is followed at once by the response:
		 * Nagle must not hold that back for an ACK */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->nodelay = true;
		c->state = CS_HANDSHAKE;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	rh_stat_add(&w->stats.accepted, 1);
	rh_stat_add(&w->stats.clients_open, 1);
	rh_timer_arm(&c->timer, &w->tq_header, w->now);
	if (w->n_conns >= w->srv->conns_per_worker)
		rh_worker_pause_accept(w, 0);
	/* a client usually sends its request right behind the handshake: read it now rather than
	 * after another epoll_wait (when it is not there yet, one read fails with EAGAIN); a new
	 * socket has room to write (a write that finds none clears the flag). conn_run adds it to
	 * epoll when it has to wait for it. */
	c->ep.readable = true;
	c->ep.writable = true;
	conn_run(c);
}

/* The worker's turn hook: requests waiting for a max_conns slot try again, in arrival order (a slot
 * freed on another worker wakes nobody here, so the loop comes back every QUEUE_POLL_MS while some
 * wait). */
#define QUEUE_POLL_MS 5
static int
conn_turn(struct rh_worker *w)
{
	if (w->access.len > 0) { /* access log lines wait at most a second */
		if (rh_access_log_due(&w->access, w->now))
			rh_access_log_flush(w->srv->access_log, &w->access, w->now);
		else if (!w->queue_head)
			return (int)(w->access.last_flush_ms + RH_ACCESS_LOG_FLUSH_MS - w->now);
	}
	if (!w->queue_head)
		return -1;
	/* nothing was freed anywhere and no new snapshot (health, DNS): no request can do better than
	 * it did last time; do not parse and pick them all again */
	uint64_t freed = atomic_load_explicit(&rh_backend_slots_freed, memory_order_relaxed);
	if (freed == w->queue_seen_freed && w->snap->generation == w->queue_seen_generation)
		return QUEUE_POLL_MS;
	w->queue_seen_freed = freed;
	w->queue_seen_generation = w->snap->generation;
	for (unsigned n = w->n_queued; n > 0 && w->queue_head; n--) {
		struct rh_conn *c = w->queue_head;

		queue_leave(c); /* start_exchange queues it again if nothing is free yet */
		start_exchange(c, 0, c->io->stale_retried);
		conn_run(c);
	}
	return w->queue_head ? QUEUE_POLL_MS : -1;
}

const struct rh_worker_hooks rh_conn_hooks = {
	.accepted = conn_accepted,
	.generation = conn_generation,
	.drain = conn_drain,
	.exit = conn_worker_exit,
	.turn = conn_turn,
};
