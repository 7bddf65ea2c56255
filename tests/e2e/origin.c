/*
 * origin — the test backend for roundhouse's end-to-end tests.
 *
 *   origin --port N --name NAME [--host 127.0.0.1] [--idle-close-ms MS] [--delay-ms MS]
 *          [--tls-cert FILE --tls-key FILE [--tls-min 1.2|1.3] [--tls-max 1.2|1.3]]
 *   origin --pattern N          write N pattern bytes to stdout and exit
 *   origin --digest             print "len=N fnv=HEX" of stdin (as /sink does) and exit
 *
 * One thread per connection, blocking I/O, fixed buffers: bodies are streamed,
 * never held whole. Prints "ready" on stdout once listening.
 *
 * Endpoints (every response carries "X-Backend: NAME"):
 *   GET /                 200 "NAME\n" (also any unknown path)
 *   GET /stats            200 "accepts=N requests=M\n", with --tls-cert
 *                         "accepts=N requests=M tls_full=F tls_resumed=R\n"
 *                           accepts  = connections that carried at least one request
 *                                      other than /stats (TCP health probes that send
 *                                      nothing are not counted)
 *                           requests = requests other than /stats
 *                           tls_full, tls_resumed = handshakes (full / resumed) of the
 *                                      connections counted in accepts
 *                         header X-Raw-Accepts: every accepted connection
 *                         header X-Raw-TLS: "full=F resumed=R failed=X", every handshake
 *   POST|PUT /echo        request body streamed back as it arrives (CL → same CL,
 *                         chunked → chunked): needs a proxy that streams both ways at once
 *   POST|PUT /sink        reads the whole body, then 200 "len=N fnv=HEX\n" (FNV-1a 64 of it)
 *   GET /bytes?n=N        N pattern bytes, Content-Length
 *   GET /chunked?n=N      N pattern bytes, chunked (varied sizes), trailer X-Trailer: done
 *                         (HTTP/1.0 request: close-delimited instead)
 *   GET /close?n=N        N pattern bytes, no Content-Length, no TE, then close
 *   GET /headers          body = the request head exactly as received
 *   GET /status/NNN       that status; 204 and 304 without body
 *   GET /slow?ms=N        sleeps N ms, then 200 "slow\n"
 *   GET /healthz          200 "ok\n", or the status /set-health chose ("status NNN\n"); not
 *                         counted in /stats (a health check, like /stats itself)
 *   GET /set-health?status=NNN   what /healthz answers from now on (200..599)
 *   /stats also says "concurrent_max=N": the most requests (other than /stats, /healthz and
 *   /set-health) this origin was serving at one time
 *   HEAD any              as GET without body
 *   Expect: 100-continue  "HTTP/1.1 100 Continue" before the body is read
 *
 * TLS (--tls-cert/--tls-key, PEM): the port then speaks TLS only (BoringSSL, TLS 1.2-1.3 unless
 * --tls-min/--tls-max narrow it, ALPN http/1.1 when offered, session tickets on). Each
 * completed handshake prints "tls sni=NAME resumed=0|1 version=TLSv1.3 alpn=http/1.1" to
 * stderr (NAME and alpn "-" when none), each failed one "tls handshake failed: WHY"; every
 * response on a TLS connection carries "X-SNI: NAME" and "X-TLS-Resumed: 0|1".
 *
 * Without TLS, a connection that starts with a TLS record (byte 0x16, a ClientHello) gets a 400
 * and is closed at once, so a TLS client fails its handshake fast instead of timing out.
 *
 * HTTP/1.0 requests are answered and then the connection is closed; HTTP/1.1
 * connections are kept alive unless the request says "Connection: close".
 * --idle-close-ms MS closes a connection that waits more than MS for a request.
 * --delay-ms MS delays every response except /stats by MS (0..60000) after the head is read: a
 * uniformly slow backend (least_conn tests).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef ORIGIN_TLS
#define ORIGIN_TLS 0
#endif
#if ORIGIN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define BUFSZ (64 * 1024)
#define HEADMAX (64 * 1024)
#define LINEMAX 8192
#define STALL_MS 30000 /* a started head or body that stalls this long is dropped */
#define IO_TIMEOUT_S 30

static const char *g_name = "origin";
static int g_idle_ms = 60000;
static int g_delay_ms; /* --delay-ms: every response but /stats waits this long */
static atomic_ulong g_accepts, g_requests, g_raw_accepts;
static atomic_int g_health_status = 200;      /* what /healthz answers */
static atomic_long g_concurrent, g_concurrent_max; /* requests being served now, and the peak */
static atomic_ulong g_tls_full, g_tls_resumed; /* of connections counted in g_accepts */
static atomic_ulong g_raw_tls_full, g_raw_tls_resumed, g_raw_tls_failed;
#if ORIGIN_TLS
static SSL_CTX *g_tls; /* NULL: plain TCP */
#endif

/* ---- pattern: byte i of every generated body ---- */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void pattern_fill(uint8_t *dst, uint64_t off, size_t n)
{
    size_t k = 0;
    while (k < n) {
        uint64_t i = off + k;
        uint64_t v = mix64(i >> 3);
        for (unsigned b = (unsigned)(i & 7); b < 8 && k < n; b++, k++)
            dst[k] = (uint8_t)(v >> (8 * b));
    }
}

/* ---- FNV-1a 64, the digest /sink reports ---- */
#define FNV_INIT 0xcbf29ce484222325ull
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- connection I/O ---- */
struct conn {
    int fd;
#if ORIGIN_TLS
    SSL *ssl;          /* NULL on a plain connection */
#endif
    bool tls_resumed;
    char tls_hdr[300]; /* "X-SNI: ...\r\nX-TLS-Resumed: ...\r\n" or "" */
    size_t start, end;
    bool counted;
    char buf[BUFSZ];
    char head[HEADMAX + 1];
    size_t head_len;
};

static int send_all(struct conn *c, const void *p, size_t n)
{
    const char *s = p;
#if ORIGIN_TLS
    if (c->ssl) {
        while (n > 0) {
            int k = n > (1u << 30) ? (1 << 30) : (int)n;
            int w = SSL_write(c->ssl, s, k);
            if (w <= 0)
                return -1;
            s += w;
            n -= (size_t)w;
        }
        return 0;
    }
#endif
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read more into the buffer. Returns bytes read, 0 on EOF, -1 on error/timeout/full. */
static ssize_t fill(struct conn *c, int timeout_ms)
{
    if (c->start == c->end)
        c->start = c->end = 0;
    if (c->end == BUFSZ && c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    if (c->end == BUFSZ)
        return -1;
    for (;;) {
#if ORIGIN_TLS
        /* decrypted bytes already inside the SSL object raise no event on the socket */
        if (!(c->ssl && SSL_has_pending(c->ssl))) {
#else
        {
#endif
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int r = poll(&pfd, 1, timeout_ms);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
        }
#if ORIGIN_TLS
        if (c->ssl) {
            /* blocking socket with SO_RCVTIMEO: a record that stalls halfway fails the read */
            int n = SSL_read(c->ssl, c->buf + c->end, (int)(BUFSZ - c->end));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
                    return 0; /* close_notify or plain EOF */
                return -1;
            }
            c->end += (size_t)n;
            return n;
        }
#endif
        ssize_t n = recv(c->fd, c->buf + c->end, BUFSZ - c->end, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        c->end += (size_t)n;
        return n;
    }
}

/* Read one CRLF-terminated line (without CRLF) into out. 0 ok, -1 error. */
static int read_line(struct conn *c, char *out, size_t cap)
{
    for (;;) {
        char *s = c->buf + c->start;
        size_t avail = c->end - c->start;
        char *nl = memchr(s, '\n', avail);
        if (nl) {
            size_t len = (size_t)(nl - s);
            if (len == 0 || s[len - 1] != '\r' || len - 1 >= cap)
                return -1;
            memcpy(out, s, len - 1);
            out[len - 1] = 0;
            c->start += len + 1;
            return 0;
        }
        if (avail >= cap + 2 || fill(c, STALL_MS) <= 0)
            return -1;
    }
}

/* Wait for a complete request head; copy it to c->head.
 * Returns 1 ok, 0 clean EOF/idle before any byte, -1 error, -2 too large,
 * -3 a TLS record (a ClientHello) where a request should start. */
static int read_head(struct conn *c)
{
    size_t scanned = 0;
    for (;;) {
        char *s = c->buf + c->start;
        size_t avail = c->end - c->start;
        /* tolerate (skip) empty lines before a request line, as RFC 9112 allows */
        while (avail >= 2 && s[0] == '\r' && s[1] == '\n') {
            c->start += 2;
            s += 2;
            avail -= 2;
        }
        if (avail >= 1 && (unsigned char)s[0] == 0x16)
            return -3;
        if (avail >= 4) {
            size_t from = scanned > 3 ? scanned - 3 : 0;
            for (size_t i = from; i + 4 <= avail; i++) {
                if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n') {
                    size_t len = i + 4;
                    if (len > HEADMAX)
                        return -2;
                    memcpy(c->head, s, len);
                    c->head[len] = 0;
                    c->head_len = len;
                    c->start += len;
                    return 1;
                }
            }
            scanned = avail;
        }
        if (avail >= HEADMAX)
            return -2;
        ssize_t n = fill(c, avail == 0 ? g_idle_ms : STALL_MS);
        if (n <= 0)
            return avail == 0 ? 0 : -1;
    }
}

/* ---- request ---- */
enum body_mode { BODY_NONE, BODY_CL, BODY_CHUNKED };

struct req {
    char method[16];
    char target[HEADMAX];
    char path[HEADMAX];
    char query[HEADMAX];
    bool http11;
    bool head;
    bool conn_close;
    bool expect_continue;
    enum body_mode mode;
    uint64_t content_length;
    /* body reader state */
    uint64_t remaining; /* in current chunk, or of CL body */
    bool done;
    bool in_chunk_data;
};

static bool token_in_list(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, tok, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

static bool last_token_is(const char *list, const char *tok)
{
    const char *last = strrchr(list, ',');
    last = last ? last + 1 : list;
    return token_in_list(last, tok);
}

/* Parse c->head into r. 0 ok, -1 bad request. */
static int parse_head(struct conn *c, struct req *r)
{
    r->method[0] = r->target[0] = r->path[0] = r->query[0] = 0;
    r->http11 = r->head = r->conn_close = r->expect_continue = false;
    r->mode = BODY_NONE;
    r->content_length = 0;
    r->remaining = 0;
    r->done = false;
    r->in_chunk_data = false;

    char *line = c->head;
    char *eol = strstr(line, "\r\n");
    if (!eol)
        return -1;
    *eol = 0;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - line) >= sizeof r->method) {
        *eol = '\r';
        return -1;
    }
    memcpy(r->method, line, (size_t)(sp1 - line));
    r->method[sp1 - line] = 0;
    size_t tlen = (size_t)(sp2 - sp1 - 1);
    memcpy(r->target, sp1 + 1, tlen);
    r->target[tlen] = 0;
    const char *ver = sp2 + 1;
    if (strcmp(ver, "HTTP/1.1") == 0)
        r->http11 = true;
    else if (strcmp(ver, "HTTP/1.0") == 0)
        r->http11 = false;
    else {
        *eol = '\r';
        return -1;
    }
    *eol = '\r';
    r->head = strcmp(r->method, "HEAD") == 0;

    char *q = strchr(r->target, '?');
    if (q) {
        memcpy(r->path, r->target, (size_t)(q - r->target));
        r->path[q - r->target] = 0;
        strcpy(r->query, q + 1);
    } else {
        strcpy(r->path, r->target);
    }

    bool have_cl = false, have_te = false;
    char *p = eol + 2;
    while (!(p[0] == '\r' && p[1] == '\n')) {
        char *e = strstr(p, "\r\n");
        if (!e)
            return -1;
        char *colon = memchr(p, ':', (size_t)(e - p));
        if (!colon || colon == p)
            return -1;
        size_t nlen = (size_t)(colon - p);
        char val[LINEMAX];
        char *v = colon + 1;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        char *ve = e;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
        if (vlen >= sizeof val)
            vlen = sizeof val - 1;
        memcpy(val, v, vlen);
        val[vlen] = 0;

        if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            char *end;
            errno = 0;
            if (!isdigit((unsigned char)val[0]))
                return -1;
            unsigned long long n = strtoull(val, &end, 10);
            if (errno || *end)
                return -1;
            if (have_cl && n != r->content_length)
                return -1;
            have_cl = true;
            r->content_length = n;
        } else if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            have_te = true;
            if (!last_token_is(val, "chunked"))
                return -1;
        } else if (nlen == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if (token_in_list(val, "close"))
                r->conn_close = true;
        } else if (nlen == 6 && strncasecmp(p, "Expect", 6) == 0) {
            if (strcasecmp(val, "100-continue") == 0)
                r->expect_continue = true;
        }
        p = e + 2;
    }
    if (have_te && have_cl)
        return -1;
    if (have_te) {
        r->mode = BODY_CHUNKED;
    } else if (have_cl && r->content_length > 0) {
        r->mode = BODY_CL;
        r->remaining = r->content_length;
    } else {
        r->done = true;
    }
    return 0;
}

/* Read up to cap body bytes. Returns >0 bytes, 0 at end of body, -1 on error. */
static ssize_t body_read(struct conn *c, struct req *r, char *out, size_t cap)
{
    if (r->done)
        return 0;
    if (r->mode == BODY_CHUNKED && !r->in_chunk_data) {
        char line[LINEMAX];
        if (read_line(c, line, sizeof line) < 0)
            return -1;
        char *end;
        if (!isxdigit((unsigned char)line[0]))
            return -1;
        errno = 0;
        unsigned long long sz = strtoull(line, &end, 16);
        if (errno || (*end && *end != ';' && *end != ' ' && *end != '\t'))
            return -1;
        if (sz == 0) {
            for (;;) { /* trailer section */
                if (read_line(c, line, sizeof line) < 0)
                    return -1;
                if (line[0] == 0)
                    break;
            }
            r->done = true;
            return 0;
        }
        r->remaining = sz;
        r->in_chunk_data = true;
    }
    if (c->start == c->end && fill(c, STALL_MS) <= 0)
        return -1;
    size_t avail = c->end - c->start;
    size_t n = avail < cap ? avail : cap;
    if (n > r->remaining)
        n = (size_t)r->remaining;
    memcpy(out, c->buf + c->start, n);
    c->start += n;
    r->remaining -= n;
    if (r->remaining == 0) {
        if (r->mode == BODY_CL) {
            r->done = true;
        } else {
            char line[8];
            if (read_line(c, line, sizeof line) < 0 || line[0])
                return -1;
            r->in_chunk_data = false;
        }
    }
    return (ssize_t)n;
}

static int discard_body(struct conn *c, struct req *r)
{
    char tmp[16384];
    ssize_t n;
    while ((n = body_read(c, r, tmp, sizeof tmp)) > 0)
        ;
    return n < 0 ? -1 : 0;
}

/* ---- responses ---- */
static const char *reason(int st)
{
    switch (st) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

enum framing { FR_NONE, FR_CL, FR_CHUNKED, FR_CLOSE };

/* Send a response head, and a small body if given (only when !head). */
static int send_head(struct conn *c, int st, enum framing fr, uint64_t cl, bool keep,
                     const char *extra, const void *body, size_t blen, bool is_head)
{
    char h[1024 + BUFSZ];
    int n = snprintf(h, 1024, "HTTP/1.1 %d %s\r\nX-Backend: %s\r\n", st, reason(st), g_name);
    if (fr == FR_CL)
        n += snprintf(h + n, 1024 - (size_t)n, "Content-Length: %" PRIu64 "\r\n", cl);
    else if (fr == FR_CHUNKED)
        n += snprintf(h + n, 1024 - (size_t)n, "Transfer-Encoding: chunked\r\n");
    if (extra)
        n += snprintf(h + n, 1024 - (size_t)n, "%s", extra);
    n += snprintf(h + n, 1024 - (size_t)n, "%s", c->tls_hdr);
    if (!keep && fr != FR_CLOSE)
        n += snprintf(h + n, 1024 - (size_t)n, "Connection: close\r\n");
    n += snprintf(h + n, 1024 - (size_t)n, "\r\n");
    if (n >= 1024)
        return -1;
    size_t total = (size_t)n;
    if (body && blen && !is_head) {
        if (blen <= BUFSZ) {
            memcpy(h + total, body, blen);
            total += blen;
        } else {
            if (send_all(c, h, total) < 0)
                return -1;
            return send_all(c, body, blen);
        }
    }
    return send_all(c, h, total);
}

static int simple(struct conn *c, struct req *r, int st, const char *body, bool keep)
{
    size_t len = strlen(body);
    return send_head(c, st, FR_CL, len, keep, NULL, body, len, r->head);
}

static uint64_t query_num(const char *query, const char *key, uint64_t dflt)
{
    size_t kl = strlen(key);
    const char *p = query;
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=')
            return strtoull(p + kl + 1, NULL, 10);
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return dflt;
}

static int send_pattern(struct conn *c, uint64_t n)
{
    uint8_t b[BUFSZ];
    uint64_t off = 0;
    while (off < n) {
        size_t k = n - off < BUFSZ ? (size_t)(n - off) : BUFSZ;
        pattern_fill(b, off, k);
        if (send_all(c, b, k) < 0)
            return -1;
        off += k;
    }
    return 0;
}

static int send_pattern_chunked(struct conn *c, uint64_t n)
{
    static const size_t sizes[] = {1, 17, 100, 4096, 65536, 3, 1000, 32768, 8191, 12345};
    uint8_t b[65536 + 64];
    uint64_t off = 0;
    unsigned k = 0;
    while (off < n) {
        size_t want = sizes[k++ % (sizeof sizes / sizeof sizes[0])];
        if (want > n - off)
            want = (size_t)(n - off);
        int hl = snprintf((char *)b, 32, "%zx\r\n", want);
        pattern_fill(b + hl, off, want);
        memcpy(b + hl + want, "\r\n", 2);
        if (send_all(c, b, (size_t)hl + want + 2) < 0)
            return -1;
        off += want;
    }
    static const char tail[] = "0\r\nX-Trailer: done\r\n\r\n";
    return send_all(c, tail, sizeof tail - 1);
}

static int do_echo(struct conn *c, struct req *r, bool *keep)
{
    char b[BUFSZ];
    if (r->expect_continue && r->http11 && r->mode != BODY_NONE) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send_all(c, cont, sizeof cont - 1) < 0)
            return -1;
    }
    if (r->mode != BODY_CHUNKED) {
        if (send_head(c, 200, FR_CL, r->content_length, *keep, NULL, NULL, 0, true) < 0)
            return -1;
        ssize_t n;
        while ((n = body_read(c, r, b, sizeof b)) > 0)
            if (send_all(c, b, (size_t)n) < 0)
                return -1;
        return n < 0 ? -1 : 0;
    }
    if (!r->http11) { /* HTTP/1.0 client cannot take chunked: close-delimited */
        *keep = false;
        if (send_head(c, 200, FR_CLOSE, 0, false, NULL, NULL, 0, true) < 0)
            return -1;
        ssize_t n;
        while ((n = body_read(c, r, b, sizeof b)) > 0)
            if (send_all(c, b, (size_t)n) < 0)
                return -1;
        return n < 0 ? -1 : 0;
    }
    if (send_head(c, 200, FR_CHUNKED, 0, *keep, NULL, NULL, 0, true) < 0)
        return -1;
    ssize_t n;
    char out[BUFSZ + 32];
    while ((n = body_read(c, r, b, sizeof b)) > 0) {
        int hl = snprintf(out, 32, "%zx\r\n", (size_t)n);
        memcpy(out + hl, b, (size_t)n);
        memcpy(out + hl + n, "\r\n", 2);
        if (send_all(c, out, (size_t)hl + (size_t)n + 2) < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    return send_all(c, "0\r\n\r\n", 5);
}

/* Serve one request. 0 keep going, 1 close now, -1 error. */
/* Sleeps <ms> milliseconds, whatever signals arrive. */
static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int serve_counted(struct conn *c, struct req *r);

static int serve(struct conn *c, struct req *r)
{
    bool keep = r->http11 && !r->conn_close;

    /* health checks and their control: answered at once, not counted */
    if (strcmp(r->path, "/healthz") == 0 || strcmp(r->path, "/set-health") == 0) {
        char body[64];
        int st;
        if (r->mode != BODY_NONE && discard_body(c, r) < 0)
            return -1;
        if (strcmp(r->path, "/set-health") == 0) {
            st = (int)query_num(r->query, "status", 200);
            if (st < 200 || st > 599)
                st = 200;
            atomic_store(&g_health_status, st);
            snprintf(body, sizeof body, "healthz now %d\n", st);
            st = 200;
        } else {
            st = atomic_load(&g_health_status);
            snprintf(body, sizeof body, st == 200 ? "ok\n" : "status %d\n", st);
        }
        if (simple(c, r, st, body, keep) < 0)
            return -1;
        return keep ? 0 : 1;
    }
    if (strcmp(r->path, "/stats") == 0)
        return serve_counted(c, r);
    long now = atomic_fetch_add(&g_concurrent, 1) + 1;
    long max = atomic_load(&g_concurrent_max);
    while (now > max && !atomic_compare_exchange_weak(&g_concurrent_max, &max, now))
        ;
    int rc = serve_counted(c, r);
    atomic_fetch_sub(&g_concurrent, 1);
    return rc;
}

static int serve_counted(struct conn *c, struct req *r)
{
    bool keep = r->http11 && !r->conn_close;
    bool is_stats = strcmp(r->path, "/stats") == 0;
    if (!is_stats) {
        atomic_fetch_add(&g_requests, 1);
        if (!c->counted) {
            c->counted = true;
            atomic_fetch_add(&g_accepts, 1);
            if (c->tls_hdr[0])
                atomic_fetch_add(c->tls_resumed ? &g_tls_resumed : &g_tls_full, 1);
        }
        if (g_delay_ms > 0)
            sleep_ms((uint64_t)g_delay_ms);
    }

    if (strcmp(r->path, "/echo") == 0 &&
        (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0)) {
        if (do_echo(c, r, &keep) < 0)
            return -1;
        return keep ? 0 : 1;
    }

    if (strcmp(r->path, "/sink") == 0 &&
        (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0)) {
        if (r->expect_continue && r->http11 && r->mode != BODY_NONE) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (send_all(c, cont, sizeof cont - 1) < 0)
                return -1;
        }
        char b[BUFSZ], out[128];
        uint64_t h = FNV_INIT, len = 0;
        ssize_t n;
        while ((n = body_read(c, r, b, sizeof b)) > 0) {
            h = fnv1a(h, b, (size_t)n);
            len += (uint64_t)n;
        }
        if (n < 0)
            return -1;
        snprintf(out, sizeof out, "len=%" PRIu64 " fnv=%016" PRIx64 "\n", len, h);
        if (simple(c, r, 200, out, keep) < 0)
            return -1;
        return keep ? 0 : 1;
    }

    /* /early?n=N: the whole N-byte answer goes out before the request body is read (as a
     * backend refusing an upload does), then the body is drained slowly and the connection closed */
    if (strcmp(r->path, "/early") == 0) {
        uint64_t n = query_num(r->query, "n", 0);
        if (send_head(c, 200, FR_CL, n, false, NULL, NULL, 0, true) < 0)
            return -1;
        if (send_pattern(c, n) < 0)
            return -1;
        char b[4096];
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        while (body_read(c, r, b, sizeof b) > 0)
            nanosleep(&pause, NULL);
        return 1;
    }

    if (r->mode != BODY_NONE) {
        if (r->expect_continue && r->http11) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (send_all(c, cont, sizeof cont - 1) < 0)
                return -1;
        }
        if (discard_body(c, r) < 0)
            return -1;
    }

    char body[256];
    if (is_stats) {
        char extra[256];
        int bn = snprintf(body, sizeof body, "accepts=%lu requests=%lu concurrent_max=%ld",
                          atomic_load(&g_accepts), atomic_load(&g_requests),
                          atomic_load(&g_concurrent_max));
#if ORIGIN_TLS
        if (g_tls)
            bn += snprintf(body + bn, sizeof body - (size_t)bn, " tls_full=%lu tls_resumed=%lu",
                           atomic_load(&g_tls_full), atomic_load(&g_tls_resumed));
#endif
        snprintf(body + bn, sizeof body - (size_t)bn, "\n");
        snprintf(extra, sizeof extra, "X-Raw-Accepts: %lu\r\nX-Raw-TLS: full=%lu resumed=%lu failed=%lu\r\n",
                 atomic_load(&g_raw_accepts), atomic_load(&g_raw_tls_full),
                 atomic_load(&g_raw_tls_resumed), atomic_load(&g_raw_tls_failed));
        size_t len = strlen(body);
        if (send_head(c, 200, FR_CL, len, keep, extra, body, len, r->head) < 0)
            return -1;
    } else if (strcmp(r->path, "/bytes") == 0) {
        uint64_t n = query_num(r->query, "n", 0);
        if (send_head(c, 200, FR_CL, n, keep, NULL, NULL, 0, true) < 0)
            return -1;
        if (!r->head && send_pattern(c, n) < 0)
            return -1;
    } else if (strcmp(r->path, "/chunked") == 0) {
        uint64_t n = query_num(r->query, "n", 0);
        if (!r->http11) {
            keep = false;
            if (send_head(c, 200, FR_CLOSE, 0, false, NULL, NULL, 0, true) < 0)
                return -1;
            if (!r->head && send_pattern(c, n) < 0)
                return -1;
        } else {
            if (send_head(c, 200, FR_CHUNKED, 0, keep, "Trailer: X-Trailer\r\n", NULL, 0, true) < 0)
                return -1;
            if (!r->head && send_pattern_chunked(c, n) < 0)
                return -1;
        }
    } else if (strcmp(r->path, "/close") == 0) {
        uint64_t n = query_num(r->query, "n", 0);
        keep = false;
        if (send_head(c, 200, FR_CLOSE, 0, false, NULL, NULL, 0, true) < 0)
            return -1;
        if (!r->head && send_pattern(c, n) < 0)
            return -1;
    } else if (strcmp(r->path, "/headers") == 0) {
        if (send_head(c, 200, FR_CL, c->head_len, keep, "Content-Type: text/plain\r\n", c->head,
                      c->head_len, r->head) < 0)
            return -1;
    } else if (strncmp(r->path, "/status/", 8) == 0) {
        int st = atoi(r->path + 8);
        if (st < 200 || st > 599)
            st = 400;
        if (st == 204 || st == 304) {
            if (send_head(c, st, FR_NONE, 0, keep, NULL, NULL, 0, true) < 0)
                return -1;
        } else {
            snprintf(body, sizeof body, "status %d\n", st);
            if (simple(c, r, st, body, keep) < 0)
                return -1;
        }
    } else if (strcmp(r->path, "/slow") == 0) {
        uint64_t ms = query_num(r->query, "ms", 0);
        if (ms > 60000)
            ms = 60000;
        sleep_ms(ms);
        if (simple(c, r, 200, "slow\n", keep) < 0)
            return -1;
    } else {
        snprintf(body, sizeof body, "%s\n", g_name);
        if (simple(c, r, 200, body, keep) < 0)
            return -1;
    }
    return keep ? 0 : 1;
}

/* Close gracefully: FIN first, then drain briefly, so the peer never sees a RST
 * that could cut the tail of a close-delimited response. */
static void close_gracefully(struct conn *c)
{
    int fd = c->fd;
#if ORIGIN_TLS
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* our close_notify; the peer's is not waited for */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
#endif
    shutdown(fd, SHUT_WR);
    char tmp[4096];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            break;
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 2)
            break;
    }
    close(fd);
}

#if ORIGIN_TLS
/* ALPN: http/1.1 when the client offers it, else no ALPN at all */
static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (l == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static void set_rcvtimeo(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Server handshake on the connection's blocking socket (10 s bound). 0 ok, -1 failed. */
static int tls_accept(struct conn *c)
{
    c->ssl = SSL_new(g_tls);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
        fprintf(stderr, "tls handshake failed: out of memory\n");
        atomic_fetch_add(&g_raw_tls_failed, 1);
        return -1;
    }
    set_rcvtimeo(c->fd, 10);
    int r = SSL_accept(c->ssl);
    if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        unsigned long err = ERR_peek_error();
        char why[256];
        if (err != 0)
            ERR_error_string_n(err, why, sizeof why);
        else if (e == SSL_ERROR_SYSCALL && errno != 0)
            snprintf(why, sizeof why, "%s", strerror(errno));
        else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
            snprintf(why, sizeof why, "connection closed during the handshake");
        else
            snprintf(why, sizeof why, "SSL_get_error %d", e);
        fprintf(stderr, "tls handshake failed: %s\n", why);
        ERR_clear_error();
        atomic_fetch_add(&g_raw_tls_failed, 1);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    set_rcvtimeo(c->fd, IO_TIMEOUT_S);

    /* the client's SNI, reduced to host-name characters (it ends up in a header) */
    char sni[256] = "-";
    const char *name = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
    if (name && *name) {
        size_t i;
        for (i = 0; name[i] && i + 1 < sizeof sni; i++) {
            unsigned char ch = (unsigned char)name[i];
            sni[i] = (isalnum(ch) || ch == '.' || ch == '-' || ch == '_') ? (char)ch : '?';
        }
        sni[i] = 0;
    }
    const uint8_t *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    c->tls_resumed = SSL_session_reused(c->ssl) != 0;
    atomic_fetch_add(c->tls_resumed ? &g_raw_tls_resumed : &g_raw_tls_full, 1);
    fprintf(stderr, "tls sni=%s resumed=%d version=%s alpn=%.*s\n", sni, c->tls_resumed ? 1 : 0,
            SSL_get_version(c->ssl), alpn_len ? (int)alpn_len : 1, alpn_len ? (const char *)alpn : "-");
    snprintf(c->tls_hdr, sizeof c->tls_hdr, "X-SNI: %s\r\nX-TLS-Resumed: %d\r\n", sni,
             c->tls_resumed ? 1 : 0);
    return 0;
}

static int tls_version(const char *v)
{
    if (strcmp(v, "1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(v, "1.3") == 0)
        return TLS1_3_VERSION;
    return -1;
}

/* The server context: certificate chain and key (PEM), versions, ALPN. Tickets stay on. */
static SSL_CTX *tls_setup(const char *cert, const char *key, const char *vmin, const char *vmax)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    int lo = vmin ? tls_version(vmin) : TLS1_2_VERSION;
    int hi = vmax ? tls_version(vmax) : TLS1_3_VERSION;
    if (!ctx || lo < 0 || hi < 0) {
        fprintf(stderr, "origin: bad --tls-min/--tls-max (1.2 or 1.3)\n");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, (uint16_t)lo) ||
        !SSL_CTX_set_max_proto_version(ctx, (uint16_t)hi)) {
        fprintf(stderr, "origin: cannot set the TLS versions\n");
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        fprintf(stderr, "origin: --tls-cert %s: %s\n", cert, ERR_error_string(ERR_get_error(), NULL));
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "origin: --tls-key %s: %s\n", key, ERR_error_string(ERR_get_error(), NULL));
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "origin: --tls-key %s does not match --tls-cert %s\n", key, cert);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    /* TLS 1.2 resumption by session ID too, besides tickets */
    static const uint8_t sid_ctx[] = "origin";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    return ctx;
}
#endif

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct req *r = NULL;
#if ORIGIN_TLS
    if (g_tls && tls_accept(c) < 0)
        goto out;
#endif
    r = malloc(sizeof *r);
    if (!r)
        goto out;
    for (;;) {
        int h = read_head(c);
        if (h == 0 || h == -1)
            break;
        if (h == -3) { /* TLS spoken to a plain port: refuse at once, as an HTTP server does */
            static const char why[] = "this port speaks plain HTTP, not TLS\n";
            char m[256];
            int n = snprintf(m, sizeof m,
                             "HTTP/1.1 400 Bad Request\r\nX-Backend: %s\r\nContent-Length: %zu\r\n"
                             "Connection: close\r\n\r\n%s",
                             g_name, sizeof why - 1, why);
            send_all(c, m, (size_t)n);
            break;
        }
        if (h == -2) {
            static const char msg[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                      "Content-Length: 0\r\nConnection: close\r\n\r\n";
            send_all(c, msg, sizeof msg - 1);
            break;
        }
        if (parse_head(c, r) < 0) {
            char m[256];
            int n = snprintf(m, sizeof m,
                             "HTTP/1.1 400 Bad Request\r\nX-Backend: %s\r\nContent-Length: 12\r\n"
                             "Connection: close\r\n\r\nbad request\n",
                             g_name);
            send_all(c, m, (size_t)n);
            break;
        }
        if (serve(c, r) != 0)
            break;
    }
out:
    free(r);
    close_gracefully(c);
    free(c);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: origin --port N --name NAME [--host 127.0.0.1] [--idle-close-ms MS] [--delay-ms MS]\n"
               "              [--tls-cert FILE --tls-key FILE [--tls-min 1.2|1.3] [--tls-max 1.2|1.3]]\n"
               "       origin --pattern N\n"
               "       origin --digest < FILE\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *tls_cert = NULL, *tls_key = NULL, *tls_min = NULL, *tls_max = NULL;
    int port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--pattern") == 0 && v) {
            uint64_t n = strtoull(v, NULL, 10), off = 0;
            static uint8_t b[BUFSZ];
            while (off < n) {
                size_t k = n - off < BUFSZ ? (size_t)(n - off) : BUFSZ;
                pattern_fill(b, off, k);
                if (fwrite(b, 1, k, stdout) != k)
                    return 1;
                off += k;
            }
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(a, "--digest") == 0) {
            static uint8_t b[BUFSZ];
            uint64_t h = FNV_INIT, len = 0;
            size_t k;
            while ((k = fread(b, 1, sizeof b, stdin)) > 0) {
                h = fnv1a(h, b, k);
                len += k;
            }
            if (ferror(stdin))
                return 1;
            printf("len=%" PRIu64 " fnv=%016" PRIx64 "\n", len, h);
            return 0;
        } else if (strcmp(a, "--port") == 0 && v) {
            port = atoi(v);
            i++;
        } else if (strcmp(a, "--name") == 0 && v) {
            g_name = v;
            i++;
        } else if (strcmp(a, "--host") == 0 && v) {
            host = v;
            i++;
        } else if (strcmp(a, "--idle-close-ms") == 0 && v) {
            g_idle_ms = atoi(v);
            i++;
        } else if (strcmp(a, "--delay-ms") == 0 && v) {
            g_delay_ms = atoi(v);
            if (g_delay_ms < 0 || g_delay_ms > 60000)
                g_delay_ms = 0;
            i++;
        } else if (strcmp(a, "--tls-cert") == 0 && v) {
            tls_cert = v;
            i++;
        } else if (strcmp(a, "--tls-key") == 0 && v) {
            tls_key = v;
            i++;
        } else if (strcmp(a, "--tls-min") == 0 && v) {
            tls_min = v;
            i++;
        } else if (strcmp(a, "--tls-max") == 0 && v) {
            tls_max = v;
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (port <= 0 || port > 65535) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (tls_cert || tls_key || tls_min || tls_max) {
        if (!tls_cert || !tls_key) {
            fprintf(stderr, "origin: --tls-cert and --tls-key go together\n");
            return 2;
        }
#if ORIGIN_TLS
        g_tls = tls_setup(tls_cert, tls_key, tls_min, tls_max);
        if (!g_tls)
            return 2;
#else
        fprintf(stderr, "origin: built without TLS (BoringSSL)\n");
        return 2;
#endif
    }

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "origin: bad host %s\n", host);
        return 2;
    }
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1024) < 0) {
        fprintf(stderr, "origin: %s:%d: %s\n", host, port, strerror(errno));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE)
                    usleep(10000);
                continue;
            }
            perror("accept");
            return 1;
        }
        atomic_fetch_add(&g_raw_accepts, 1);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
#if ORIGIN_TLS
        c->ssl = NULL;
#endif
        c->tls_resumed = false;
        c->tls_hdr[0] = 0;
        c->start = c->end = 0;
        c->counted = false;
        c->head_len = 0;
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
        }
    }
}
