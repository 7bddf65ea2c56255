/* The access log (see access_log.h): opening and rotation, per-worker buffers, the line format. */
#include "roundhouse/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC)
#define OPEN_MODE 0640

struct rh_access_log {
	int fd;      /* never changes: reopen replaces the file behind it */
	char path[]; /* NUL-terminated */
};

struct rh_access_log *
rh_access_log_open(const char *path, char *err, size_t errlen)
{
	size_t n = strlen(path) + 1;
	struct rh_access_log *log = malloc(sizeof(*log) + n);

	if (log == NULL) {
		snprintf(err, errlen, "access log %s: %s", path, strerror(ENOMEM));
		return NULL;
	}
	memcpy(log->path, path, n);
	log->fd = open(path, OPEN_FLAGS, OPEN_MODE);
	if (log->fd == -1) {
		snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
		free(log);
		return NULL;
	}
	return log;
}

/* dup3 rather than dup2: dup2 would clear FD_CLOEXEC on the fd the workers use. Atomic for them: a
 * write either still holds the old file or already gets the new one. */
int
rh_access_log_reopen(struct rh_access_log *log, char *err, size_t errlen)
{
	int fd = open(log->path, OPEN_FLAGS, OPEN_MODE);

	if (fd == -1) {
		snprintf(err, errlen, "access log %s: %s", log->path, strerror(errno));
		return -1;
	}
	if (dup3(fd, log->fd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "access log %s: dup3: %s", log->path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
rh_access_log_close(struct rh_access_log *log)
{
	if (log == NULL)
		return;
	close(log->fd);
	free(log);
}

int
rh_access_buf_init(struct rh_access_buf *b, size_t cap)
{
	b->data = cap > 0 ? malloc(cap) : NULL;
	if (b->data == NULL)
		return -1;
	b->len = 0;
	b->cap = cap;
	b->pending = 0;
	b->last_flush_ms = 0;
	b->cached_sec = (time_t)-1;
	b->cached_time[0] = '\0';
	/* <lines> and <dropped> are left alone: the metrics may be reading them (a worker inits its
	 * buffer at its first exchange), and drops counted before this stay counted */
	return 0;
}

void
rh_access_buf_free(struct rh_access_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = b->pending = 0;
}

/* Formatting: a cursor that stops writing, and remembers it, once the output is full. */
struct out {
	char *p, *end;
	bool full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if ((size_t)(o->end - o->p) < n) {
		o->full = true;
		o->p = o->end;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

#define put_lit(o, s) put((o), (s), sizeof(s) - 1)

static void
put_c(struct out *o, char c)
{
	put(o, &c, 1);
}

/* Decimal, at least <width> digits (zero-padded). */
static void
put_u64w(struct out *o, uint64_t v, int width)
{
	char tmp[24];
	int i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 || (int)sizeof(tmp) - i < width);
	put(o, tmp + i, sizeof(tmp) - (size_t)i);
}

static void
put_u64(struct out *o, uint64_t v)
{
	put_u64w(o, v, 1);
}

/* Microseconds as seconds with 6 decimals: 412 -> "0.000412". */
static void
put_secs(struct out *o, uint64_t us)
{
	put_u64(o, us / 1000000);
	put_c(o, '.');
	put_u64w(o, us % 1000000, 6);
}

/* Client bytes: printable ASCII but '"' and '\' as is, everything else as \xHH. Runs of safe bytes
 * (the whole target, usually) are copied at once. */
static void
put_escaped(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;

	while (i < n) {
		size_t run = i;
		while (run < n) {
			unsigned char c = (unsigned char)s[run];
			if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
				break;
			run++;
		}
		put(o, s + i, run - i);
		if (run == n)
			return;
		unsigned char c = (unsigned char)s[run];
		char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
		put(o, esc, sizeof(esc));
		i = run + 1;
	}
}

/* A trusted word (from the config or the code), "-" when absent. */
static void
put_word(struct out *o, const char *s)
{
	if (s == NULL || s[0] == '\0')
		put_c(o, '-');
	else
		put(o, s, strlen(s));
}

size_t
rh_access_log_format(const struct rh_access_entry *e, struct rh_access_buf *b, char *out, size_t len)
{
	struct out o = {out, out + len, false};

	if (e->time.tv_sec != b->cached_sec || b->cached_time[0] == '\0') {
		struct tm tm;

		if (gmtime_r(&e->time.tv_sec, &tm) == NULL ||
		    strftime(b->cached_time, sizeof(b->cached_time), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			return 0;
		b->cached_sec = e->time.tv_sec;
	}
	put(&o, b->cached_time, strlen(b->cached_time));
	put_c(&o, '.');
	put_u64w(&o, (uint64_t)e->time.tv_nsec / 1000000, 3);

	put_lit(&o, "Z client=");
	if (e->client_len == 0) {
		put_c(&o, '-');
	} else if (memchr(e->client, ':', e->client_len) != NULL) {
		put_c(&o, '[');
		put(&o, e->client, e->client_len);
		put_c(&o, ']');
	} else {
		put(&o, e->client, e->client_len);
	}
	put_c(&o, ':');
	put_u64(&o, e->client_port);

	put_lit(&o, " method=");
	if (e->method_len == 0)
		put_c(&o, '-');
	else
		put_escaped(&o, e->method, e->method_len);

	put_lit(&o, " target=\"");
	put_escaped(&o, e->target, e->target_len);
	if (e->target_truncated)
		put_lit(&o, "...");

	put_lit(&o, "\" status=");
	if (e->status > 0)
		put_u64(&o, (uint64_t)e->status);
	else
		put_c(&o, '-');

	put_lit(&o, " backend=");
	put_word(&o, e->backend);
	put_lit(&o, " in=");
	put_u64(&o, e->bytes_in);
	put_lit(&o, " out=");
	put_u64(&o, e->bytes_out);
	put_lit(&o, " duration=");
	put_secs(&o, e->duration_us);
	put_lit(&o, " connect=");
	if (e->connect_us >= 0)
		put_secs(&o, (uint64_t)e->connect_us);
	else
		put_c(&o, '-');
	put_lit(&o, " retries=");
	put_u64(&o, e->retries);
	put_lit(&o, " end=");
	put_word(&o, e->end);
	put_c(&o, '\n');

	return o.full ? 0 : (size_t)(o.p - out);
}

/* Counts the newlines in s[0..n): the complete lines of a write that stopped short. */
static size_t
count_lines(const char *s, size_t n)
{
	size_t lines = 0;
	const char *nl;

	while (n > 0 && (nl = memchr(s, '\n', n)) != NULL) {
		lines++;
		n -= (size_t)(nl + 1 - s);
		s = nl + 1;
	}
	return lines;
}

/* A short write followed by an error leaves a partial line in the file; it is counted as dropped. */
void
rh_access_log_flush(struct rh_access_log *log, struct rh_access_buf *b, uint64_t now_ms)
{
	int saved_errno = errno;
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(log->fd, b->data + off, b->len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else
			break; /* ENOSPC, EIO, ...; 0 would repeat forever */
	}
	if (off == b->len) {
		atomic_fetch_add_explicit(&b->lines, b->pending, memory_order_relaxed);
	} else {
		size_t written = count_lines(b->data, off);

		atomic_fetch_add_explicit(&b->lines, written, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->dropped, b->pending - written, memory_order_relaxed);
	}
	b->len = 0;
	b->pending = 0;
	b->last_flush_ms = now_ms;
	errno = saved_errno;
}

/* Formats straight into the buffer's free tail: no copy. A line that does not fit is formatted again
 * into the emptied buffer (rare: the buffer holds hundreds of lines). */
void
rh_access_log_append(struct rh_access_log *log, struct rh_access_buf *b,
		     const struct rh_access_entry *e, uint64_t now_ms)
{
	size_t n = rh_access_log_format(e, b, b->data + b->len, b->cap - b->len);

	if (n == 0 && b->len > 0) {
		rh_access_log_flush(log, b, now_ms);
		n = rh_access_log_format(e, b, b->data, b->cap);
	}
	if (n == 0) {
		atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
		return;
	}
	b->len += n;
	b->pending++;
}
