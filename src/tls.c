/* TLS with BoringSSL: contexts for both directions, a BIO over an endpoint's socket that keeps the
 * epoll readiness flags, and the TLS transport over it (non-blocking handshakes, reads, gathered
 * writes, close_notify). See tls.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "roundhouse/backend.h"
#include "roundhouse/buf.h"
#include "roundhouse/config.h"
#include "roundhouse/log.h"
#include "roundhouse/tls.h"
#include "roundhouse/transport.h"

/* ALPN in wire format: only HTTP/1.1 is spoken on either side */
static const uint8_t alpn_http11[] = "\x08http/1.1";
#define ALPN_HTTP11_LEN (sizeof(alpn_http11) - 1)

/* TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 suites are fixed by BoringSSL) */
static const char cipher_list[] = "ECDHE+AESGCM:ECDHE+CHACHA20";

struct rh_tls_upstream {
	SSL_CTX *ctx;
	bool verify;
};

struct edge_cert {
	SSL_CTX *ctx;
	X509 *leaf; /* for matching the client's SNI against its names */
};

struct rh_tls_edge {
	struct edge_cert *certs; /* [0] is the default */
	size_t n;
};

/* the worker's session slot of a client SSL (NULL for probes) */
static int slot_index = -1;
static BIO_METHOD *ep_bio_method;
static _Thread_local char last_failure[192];
static _Thread_local const struct rh_ep *failure_ep; /* whose failure last_failure is, if an ep's */
/* per thread (rh_tls_thread_init): NULL in a thread that never called it */
static _Thread_local struct rh_buf_pool *thread_bufs; /* read-ahead buffers come from here */
static _Thread_local char *scratch;                   /* RH_TLS_RECORD bytes: spans gathered for a write */

/* BoringSSL asks the BIO for a record's 5-byte header, then for its body: two reads per record.
 * Asks smaller than this are served from a read-ahead buffer filled by one larger read. */
#define READ_AHEAD_BELOW 4096

/* ---- errors ---- */

/* "WRONG_VERSION_NUMBER" -> "wrong version number" */
static void
reason_text(uint32_t e, char *buf, size_t len)
{
	const char *r = ERR_reason_error_string(e);
	size_t i;

	if (!r) {
		snprintf(buf, len, "TLS error %08x", e);
		return;
	}
	for (i = 0; r[i] && i + 1 < len; i++)
		buf[i] = r[i] == '_' ? ' ' : (char)tolower((unsigned char)r[i]);
	buf[i] = '\0';
}

/* Records why <ssl> (of <ep>, or NULL for a probe over a plain fd) failed after <ret> from an SSL
 * call, in the thread's last_failure. */
static void
note_failure(SSL *ssl, int ret, const struct rh_ep *ep)
{
	int e = SSL_get_error(ssl, ret);
	int saved_errno = errno;
	long vr = SSL_get_verify_result(ssl);
	uint32_t err = ERR_peek_error();

	if (vr != X509_V_OK && ERR_GET_LIB(err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		snprintf(last_failure, sizeof(last_failure), "certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
	} else if (e == SSL_ERROR_SYSCALL) {
		snprintf(last_failure, sizeof(last_failure), "%s",
			 saved_errno ? strerror(saved_errno) : "connection closed by peer");
	} else if (err) {
		reason_text(err, last_failure, sizeof(last_failure));
	} else {
		snprintf(last_failure, sizeof(last_failure), "TLS error (code %d)", e);
	}
	failure_ep = ep;
	ERR_clear_error();
	errno = saved_errno ? saved_errno : EPROTO;
}

/* The current OpenSSL error queue as one line, for start-up messages. */
static const char *
queue_text(char *buf, size_t len)
{
	uint32_t e = ERR_get_error();
	if (!e)
		snprintf(buf, len, "unknown error");
	else
		reason_text(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* ---- the socket BIO ---- */

/* Reads and writes on the rh_ep's fd, clearing its readiness flags exactly as the plain paths do:
 * EAGAIN or a short read/write means the socket was drained/filled, so the flag waits for the next
 * edge-triggered event. */
static size_t
take_read_ahead(struct rh_ep *ep, char *out, size_t len)
{
	struct rh_buf *ra = ep->tls_in;
	size_t n = rh_buf_len(ra) < len ? rh_buf_len(ra) : len;

	memcpy(out, ra->data + ra->start, n);
	ra->start += n;
	if (ra->start == ra->end) {
		rh_buf_put(thread_bufs, ra);
		ep->tls_in = NULL;
	}
	return n;
}

static int
ep_bio_read(BIO *bio, char *out, int len)
{
	struct rh_ep *ep = BIO_get_data(bio);
	struct rh_buf *ra = NULL;
	char *dst = out;
	size_t cap = (size_t)len;

	BIO_clear_retry_flags(bio);
	if (ep->tls_in)
		return (int)take_read_ahead(ep, out, (size_t)len);
	if (!ep->readable) {
		/* drained, and no epoll edge since: a read() could only say EAGAIN (after each flight
		 * BoringSSL asks for the peer's answer at once, and it cannot have come yet) */
		BIO_set_retry_read(bio);
		errno = EAGAIN;
		return -1;
	}
	if (len < READ_AHEAD_BELOW && thread_bufs && (ra = rh_buf_get(thread_bufs))) {
		dst = ra->data;
		cap = RH_BUF_SIZE;
	}
	for (;;) {
		ssize_t n = read(ep->fd, dst, cap);
		if (n > 0) {
			if ((size_t)n < cap && !ep->eof)
				ep->readable = false;
			if (!ra)
				return (int)n;
			ra->end = (size_t)n;
			ep->tls_in = ra;
			return (int)take_read_ahead(ep, out, (size_t)len);
		}
		if (n == -1 && errno == EINTR)
			continue;
		int saved = n == 0 ? 0 : errno; /* EOF: SSL_ERROR_SYSCALL with errno 0 */
		rh_buf_put(thread_bufs, ra);
		errno = saved;
		if (n == 0)
			return 0;
		if (errno == EAGAIN) {
			ep->readable = false;
			BIO_set_retry_read(bio);
		}
		return -1;
	}
}

static int
ep_bio_write(BIO *bio, const char *in, int len)
{
	struct rh_ep *ep = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	for (;;) {
		ssize_t n = write(ep->fd, in, (size_t)len);
		if (n >= 0) {
			if (n < len)
				ep->writable = false;
			return (int)n;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			ep->writable = false;
			BIO_set_retry_write(bio);
		}
		return -1;
	}
}

static long
ep_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	(void)bio, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static bool
attach_bio(SSL *ssl, struct rh_ep *ep)
{
	BIO *bio = BIO_new(ep_bio_method);

	if (!bio)
		return false;
	BIO_set_data(bio, ep);
	BIO_set_init(bio, 1);
	SSL_set_bio(ssl, bio, bio);
	return true;
}

static int
global_init(void)
{
	if (ep_bio_method)
		return 0;
	/* main thread, before any worker starts: no race on these statics */
	slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ep_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rh_ep");
	if (slot_index < 0 || !ep_bio_method)
		return -1;
	BIO_meth_set_read(ep_bio_method, ep_bio_read);
	BIO_meth_set_write(ep_bio_method, ep_bio_write);
	BIO_meth_set_ctrl(ep_bio_method, ep_bio_ctrl);
	return 0;
}

/* ---- shared context settings ---- */

static bool
ctx_common(SSL_CTX *ctx)
{
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
	       SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
	       SSL_CTX_set_strict_cipher_list(ctx, cipher_list);
}

/* ---- upstream ---- */

/* Keeps each new session the backend issues in the worker's slot for it (TLS 1.3 tickets arrive
 * after the handshake, so this runs from SSL_read too). Returns 1: the slot owns the reference. */
static int
new_session(SSL *ssl, SSL_SESSION *session)
{
	SSL_SESSION **slot = SSL_get_ex_data(ssl, slot_index);

	if (!slot)
		return 0;
	if (*slot)
		SSL_SESSION_free(*slot);
	*slot = session;
	return 1;
}

int
rh_tls_upstream_create(const struct rh_config *cfg, struct rh_tls_upstream **out, char *err,
		       size_t errlen)
{
	char why[160];
	struct rh_tls_upstream *u;

	*out = NULL;
	if (!cfg->tls)
		return 0;
	if (global_init() == -1 || !(u = calloc(1, sizeof(*u)))) {
		snprintf(err, errlen, "TLS: out of memory");
		return -1;
	}
	u->verify = cfg->verify;
	u->ctx = SSL_CTX_new(TLS_method());
	if (!u->ctx || !ctx_common(u->ctx) ||
	    SSL_CTX_set_alpn_protos(u->ctx, alpn_http11, ALPN_HTTP11_LEN) != 0) {
		snprintf(err, errlen, "TLS: cannot set up the upstream context: %s",
			 queue_text(why, sizeof(why)));
		goto fail;
	}
	/* verify = false still runs verification (for the health probe's report) but ignores it */
	SSL_CTX_set_verify(u->ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	const char *ca = cfg->ca_file ? cfg->ca_file : RH_DEFAULT_CA_FILE;
	if (!SSL_CTX_load_verify_locations(u->ctx, ca, NULL)) {
		queue_text(why, sizeof(why));
		if (cfg->ca_file) {
			snprintf(err, errlen, "%s:%u: upstream.ca_file: cannot load CA certificates from %s: %s",
				 cfg->path, cfg->ca_file_line, ca, why);
			goto fail;
		}
		if (cfg->verify) {
			snprintf(err, errlen,
				 "%s:%u: upstream.tls: cannot load the system CA store %s (%s): set ca_file, "
				 "or verify = false",
				 cfg->path, cfg->tls_line, ca, why);
			goto fail;
		}
	}
	/* sessions are kept per worker and backend by new_session, not in the context's cache */
	SSL_CTX_set_session_cache_mode(u->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(u->ctx, new_session);

	*out = u;
	return 0;
fail:
	rh_tls_upstream_destroy(u);
	return -1;
}

void
rh_tls_upstream_destroy(struct rh_tls_upstream *u)
{
	if (!u)
		return;
	SSL_CTX_free(u->ctx);
	free(u);
}

/* A client SSL for backend <b> with its SNI and the name to verify (the backend object has them:
 * [upstream] sni, else the host it was written with; RFC 6066: no SNI for an IP address). */
static SSL *
client_ssl(const struct rh_tls_upstream *u, const struct rh_backend *b)
{
	SSL *ssl = SSL_new(u->ctx);

	if (!ssl) {
		ERR_clear_error(); /* a stale error would turn the next WANT_READ into a failure */
		return NULL;
	}
	SSL_set_connect_state(ssl);
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if ((!b->tls_name_is_ip && !SSL_set_tlsext_host_name(ssl, b->tls_name)) ||
	    !(b->tls_name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, b->tls_name)
				: X509_VERIFY_PARAM_set1_host(param, b->tls_name, strlen(b->tls_name)))) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	return ssl;
}

/* A client TLS endpoint on <ep> for backend <b>, offering the session in *<session_slot> and keeping
 * the ones the backend issues there (NULL: none offered, none kept). */
static bool
client_start(const struct rh_tls_upstream *u, const struct rh_backend *b, struct rh_ep *ep,
	     SSL_SESSION **session_slot)
{
	SSL *ssl = client_ssl(u, b);

	if (!ssl)
		return false;
	if (!attach_bio(ssl, ep)) {
		SSL_free(ssl);
		ERR_clear_error();
		return false;
	}
	if (session_slot) {
		SSL_set_ex_data(ssl, slot_index, session_slot);
		if (*session_slot)
			SSL_set_session(ssl, *session_slot);
	}
	ep->tls = ssl;
	ep->tp = &rh_tls_transport;
	return true;
}

bool
rh_tls_connect_start(const struct rh_tls_upstream *u, const struct rh_backend *b, struct rh_ep *ep,
		     SSL_SESSION **session_slot)
{
	return client_start(u, b, ep, session_slot);
}

bool
rh_tls_probe_connect(const struct rh_tls_upstream *u, const struct rh_backend *b, struct rh_ep *ep)
{
	/* no session slot: nothing is offered, and new_session keeps nothing */
	return client_start(u, b, ep, NULL);
}

/* ---- edge ---- */

static int
alpn_select(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in, unsigned in_len,
	    void *arg)
{
	(void)ssl, (void)arg;
	for (unsigned i = 0; i < in_len;) {
		unsigned len = in[i];
		if (i + 1 + len > in_len)
			break;
		if (len == ALPN_HTTP11_LEN - 1 && memcmp(in + i + 1, alpn_http11 + 1, len) == 0) {
			*out = in + i + 1;
			*out_len = (uint8_t)len;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + len;
	}
	return SSL_TLSEXT_ERR_NOACK; /* no http/1.1 offered: carry on without ALPN */
}

/* Picks the certificate whose names match the client's SNI; the default otherwise. */
static int
select_cert(SSL *ssl, int *alert, void *arg)
{
	const struct rh_tls_edge *e = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (!name || e->n < 2)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < e->n; i++) {
		if (X509_check_host(e->certs[i].leaf, name, strlen(name), 0, NULL) == 1) {
			if (i)
				SSL_set_SSL_CTX(ssl, e->certs[i].ctx);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Whether <path> can be opened for reading; the reason in <why> if not. */
static bool
readable_file(const char *path, char *why, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, len, "%s", strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

/* Warns at start-up about an edge certificate that is expired or about to be. */
static void
warn_edge_expiry(const struct rh_config *cfg, const struct rh_cert_conf *cc, X509 *leaf)
{
	int days = 0, secs = 0;
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));

	if (now && ASN1_TIME_diff(&days, &secs, now, X509_get0_notAfter(leaf))) {
		if (days < 0 || (days == 0 && secs <= 0))
			rh_log_warn("%s:%u: server.cert: %s has expired", cfg->path, cc->cert_line, cc->cert);
		else if (days < 14)
			rh_log_warn("%s:%u: server.cert: %s expires in %d day(s)", cfg->path, cc->cert_line,
				    cc->cert, days);
	}
	ASN1_TIME_free(now);
}

static SSL_CTX *
edge_ctx(const struct rh_config *cfg, const struct rh_cert_conf *cc, char *err, size_t errlen)
{
	char why[160];
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (!ctx || !ctx_common(ctx)) {
		snprintf(err, errlen, "TLS: cannot set up a server context: %s", queue_text(why, sizeof(why)));
		goto fail;
	}
	if (!readable_file(cc->cert, why, sizeof(why)) ||
	    !SSL_CTX_use_certificate_chain_file(ctx, cc->cert)) {
		if (ERR_peek_error())
			queue_text(why, sizeof(why));
		snprintf(err, errlen, "%s:%u: server.cert: cannot load a certificate from %s: %s",
			 cfg->path, cc->cert_line, cc->cert, why);
		goto fail;
	}
	if (!readable_file(cc->key, why, sizeof(why)) ||
	    !SSL_CTX_use_PrivateKey_file(ctx, cc->key, SSL_FILETYPE_PEM)) {
		if (ERR_peek_error())
			queue_text(why, sizeof(why));
		snprintf(err, errlen, "%s:%u: server.key: cannot load a private key from %s: %s",
			 cfg->path, cc->key_line, cc->key, why);
		goto fail;
	}
	if (!SSL_CTX_check_private_key(ctx)) {
		ERR_clear_error();
		snprintf(err, errlen, "%s:%u: server.key: %s does not match the certificate in %s",
			 cfg->path, cc->key_line, cc->key, cc->cert);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* resumption by tickets only (keys made and rotated by BoringSSL): no cache, no lock */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* one ticket per handshake (BoringSSL sends two): a client that resumes gets a fresh one each
	 * time, as OpenSSL servers do after a resumption, and every handshake costs a ticket less */
	SSL_CTX_set_num_tickets(ctx, 1);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
rh_tls_edge_create(const struct rh_config *cfg, struct rh_tls_edge **out, char *err, size_t errlen)
{
	struct rh_tls_edge *e = NULL;

	*out = NULL;
	if (cfg->n_certs == 0)
		return 0; /* config.c insists on a cert when there is a listen_tls */
	if (global_init() == -1 || !(e = calloc(1, sizeof(*e))) ||
	    !(e->certs = calloc(cfg->n_certs, sizeof(*e->certs)))) {
		snprintf(err, errlen, "TLS: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_certs; i++) {
		struct edge_cert *ec = &e->certs[e->n];
		if (!(ec->ctx = edge_ctx(cfg, &cfg->certs[i], err, errlen)))
			goto fail;
		e->n++;
		ec->leaf = SSL_CTX_get0_certificate(ec->ctx);
		warn_edge_expiry(cfg, &cfg->certs[i], ec->leaf);
	}
	SSL_CTX_set_tlsext_servername_callback(e->certs[0].ctx, select_cert);
	SSL_CTX_set_tlsext_servername_arg(e->certs[0].ctx, e);
	*out = e;
	return 0;
fail:
	rh_tls_edge_destroy(e);
	return -1;
}

void
rh_tls_edge_destroy(struct rh_tls_edge *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++)
		SSL_CTX_free(e->certs[i].ctx);
	free(e->certs);
	free(e);
}

bool
rh_tls_accept_start(const struct rh_tls_edge *e, struct rh_ep *ep)
{
	SSL *ssl = SSL_new(e->certs[0].ctx);

	if (!ssl || !attach_bio(ssl, ep)) {
		SSL_free(ssl);
		ERR_clear_error();
		return false;
	}
	SSL_set_accept_state(ssl);
	ep->tls = ssl;
	ep->tp = &rh_tls_transport;
	return true;
}

/* ---- the transport ---- */

static enum rh_io_step
tls_handshake(struct rh_ep *ep)
{
	int r = SSL_do_handshake(ep->tls);

	if (r == 1)
		return RH_IO_DONE;
	switch (SSL_get_error(ep->tls, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return RH_IO_WAIT;
	default:
		note_failure(ep->tls, r, ep);
		return RH_IO_FAIL;
	}
}

bool
rh_tls_resumed(const struct rh_ep *ep)
{
	return SSL_session_reused(ep->tls);
}

static ssize_t
tls_read(struct rh_ep *ep, void *buf, size_t len)
{
	int n = SSL_read(ep->tls, buf, len > INT_MAX ? INT_MAX : (int)len);

	if (n > 0)
		return n;
	switch (SSL_get_error(ep->tls, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* close_notify */
	case SSL_ERROR_SYSCALL:
		if (errno == 0) {
			ERR_clear_error();
			return 0; /* EOF without close_notify: taken as the end, as nginx does */
		}
		/* fall through */
	default:
		note_failure(ep->tls, n, ep);
		return -2;
	}
}

/* At most one record's worth (RH_TLS_RECORD bytes) per call: small spans are gathered into the
 * thread's scratch so a rewritten head does not become a dozen tiny records. After -1 the next call
 * must present the same bytes (the caller's iovecs unchanged), which a write queue that only
 * advances on success does. */
static ssize_t
tls_writev(struct rh_ep *ep, const struct iovec *iov, int cnt)
{
	const char *p = iov[0].iov_base;
	size_t len = iov[0].iov_len;

	if (len >= RH_TLS_RECORD || cnt == 1 || !scratch) {
		if (len > RH_TLS_RECORD)
			len = RH_TLS_RECORD;
	} else {
		/* gather small spans into one record; the same iovecs always give the same bytes, so
		 * a retry after "would block" presents what the first attempt did */
		len = 0;
		for (int i = 0; i < cnt && len < RH_TLS_RECORD; i++) {
			size_t take = iov[i].iov_len;
			if (take > RH_TLS_RECORD - len)
				take = RH_TLS_RECORD - len;
			memcpy(scratch + len, iov[i].iov_base, take);
			len += take;
		}
		p = scratch;
	}
	int n = SSL_write(ep->tls, p, (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(ep->tls, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -1;
	default:
		note_failure(ep->tls, n, ep);
		return -2;
	}
}

static bool
tls_pending(const struct rh_ep *ep)
{
	return ep->tls_in || SSL_has_pending(ep->tls);
}

void
rh_tls_thread_init(struct rh_buf_pool *bufs)
{
	thread_bufs = bufs;
	if (!scratch && !(scratch = malloc(RH_TLS_RECORD)))
		rh_log_warn("TLS: out of memory for the write buffer: small writes go out as one "
			    "record each");
}

void
rh_tls_thread_finish(void)
{
	free(scratch);
	scratch = NULL;
	thread_bufs = NULL;
}

static bool
tls_idle_ok(struct rh_ep *ep)
{
	char byte;
	int n = SSL_read(ep->tls, &byte, 1);

	if (n <= 0 && SSL_get_error(ep->tls, n) == SSL_ERROR_WANT_READ)
		return true;
	ERR_clear_error();
	return false;
}

static void
tls_close(struct rh_ep *ep)
{
	ERR_clear_error();
	SSL_free(ep->tls);
	ep->tls = NULL;
	rh_buf_put(thread_bufs, ep->tls_in);
	ep->tls_in = NULL;
	if (failure_ep == ep)
		failure_ep = NULL; /* the memory may carry another endpoint next */
	close(ep->fd);
}

static enum rh_io_step
tls_shutdown(struct rh_ep *ep)
{
	if (!SSL_is_init_finished(ep->tls))
		return RH_IO_DONE;
	errno = 0;
	int r = SSL_shutdown(ep->tls); /* a retry after WANT_WRITE finishes sending the alert */
	if (r >= 0)
		return RH_IO_DONE;
	int e = SSL_get_error(ep->tls, r);
	ERR_clear_error();
	return e == SSL_ERROR_WANT_WRITE ? RH_IO_WAIT : RH_IO_DONE;
}

/* The TLS reason when the last TLS failure on this thread was <ep>'s (a handshake, read or write
 * that failed), else the plain one for <err> (a connect that failed before any TLS). */
static const char *
tls_failure(const struct rh_ep *ep, int err, char *buf, size_t len)
{
	if (failure_ep == ep && last_failure[0])
		snprintf(buf, len, "%s", last_failure);
	else
		snprintf(buf, len, "%s", strerror(err));
	return buf;
}

const struct rh_transport rh_tls_transport = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.pending = tls_pending,
	.handshake = tls_handshake,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.idle_ok = tls_idle_ok,
	.failure = tls_failure,
	.wait_commits = true,
};

/* ---- health probes ---- */

void
rh_tls_probe_peer_ep(const struct rh_ep *ep, struct rh_tls_peer *out)
{
	SSL *ssl = ep->tls;
	long vr = SSL_get_verify_result(ssl);
	X509 *leaf = SSL_get_peer_certificate(ssl);

	memset(out, 0, sizeof(*out));
	out->verified = vr == X509_V_OK && leaf;
	if (!out->verified)
		snprintf(out->verify_error, sizeof(out->verify_error), "%s",
			 leaf ? X509_verify_cert_error_string(vr) : "no certificate");
	if (leaf) {
		int days = 0, secs = 0;
		ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
		if (epoch && ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(leaf)))
			out->not_after = (time_t)days * 86400 + secs;
		ASN1_TIME_free(epoch);
		X509_free(leaf);
	}
	ERR_clear_error();
}

