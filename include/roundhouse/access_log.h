/* The access log ([log] access = PATH): one logfmt line per exchange, written from per-worker buffers.
 *
 *   2026-11-30T15:48:42.123Z client=127.0.0.1:54321 method=GET target="/a?b=1" status=200
 *   backend=127.0.0.1:8081 in=78 out=230 duration=0.000412 connect=0.000101 retries=0 end=-
 *
 * (one line in the file). Why it is built this way:
 * - Per-worker buffer: a worker formats lines into its own buffer (no lock, no malloc, no stdio) and
 *   writes it with one write(2) when it is full or holds lines older than a second, never one write
 *   per request. All workers share one O_APPEND fd; Linux serialises writes to a regular file, so
 *   one worker's batch never interleaves with another's.
 * - Reopen by dup3(): on SIGUSR1 (log rotation) the main thread opens PATH again and puts the new
 *   file on the same fd number. The fd the workers use is never closed or reused for something
 *   else; a write already in progress finishes on the old (renamed) file, the next goes to the new.
 * - Failures cost lines, never the worker: a failed write (full disk, EIO) drops the buffered lines
 *   and counts them; a worker never blocks beyond one write to the page cache and never aborts.
 * - Fields from the client (method, target) are escaped (\xHH for bytes outside 0x21..0x7e and for
 *   '"' and '\'), so hostile input cannot forge fields or lines. */
#ifndef RH_ACCESS_LOG_H
#define RH_ACCESS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RH_ACCESS_LOG_FLUSH_MS 1000

/* Shared by all workers: the path and the fd (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0640). */
struct rh_access_log;

/* Opens (creates) <path>. NULL with "access log PATH: strerror" in <err> on failure. Main thread. */
struct rh_access_log *rh_access_log_open(const char *path, char *err, size_t errlen);

/* Log rotation (SIGUSR1, main thread): opens PATH again and dup3()s the new file onto the same fd
 * number, so workers never see a closed or reused fd (a write in progress finishes on the old file).
 * 0, or -1 with err (the old file stays in use). */
int rh_access_log_reopen(struct rh_access_log *log, char *err, size_t errlen);

/* Closes and frees <log>, after every worker flushed and stopped. NULL ok. */
void rh_access_log_close(struct rh_access_log *log);

/* One worker's buffer. Only that worker touches it, except the counters (relaxed atomics, read by
 * metrics from any thread). */
struct rh_access_buf {
	char *data;
	size_t len, cap;
	size_t pending;               /* lines in data[0..len) */
	uint64_t last_flush_ms;
	time_t cached_sec;            /* the second cached_time shows */
	char cached_time[32];         /* "2026-11-30T15:48:42": strftime once a second */
	atomic_uint_fast64_t lines;   /* lines written to the file */
	atomic_uint_fast64_t dropped; /* lines lost: write failed (full disk, EIO...) or line too long */
};

/* Allocates <cap> bytes (e.g. 64 KiB; the longest line accepted). 0, or -1 (cap 0, no memory).
 * The counters are not touched: <b> starts zeroed (a worker's is, with the worker). */
int rh_access_buf_init(struct rh_access_buf *b, size_t cap);

/* Frees the data; does not flush (call rh_access_log_flush first). NULL ok. */
void rh_access_buf_free(struct rh_access_buf *b);

/* One exchange. The strings need not be NUL-terminated where a length is given. */
struct rh_access_entry {
	struct timespec time;                  /* CLOCK_REALTIME when the exchange ended */
	const char *client; size_t client_len; /* IP text: "127.0.0.1", "::1" (written "[::1]") */
	uint16_t client_port;
	const char *method; size_t method_len; /* empty: request never parsed -> "-"; escaped */
	const char *target; size_t target_len; /* may be truncated by the caller; escaped, quoted */
	bool target_truncated;                 /* then "..." is appended inside the quotes */
	int status;                            /* 0: no response was sent -> "-" */
	const char *backend;                   /* "127.0.0.1:8081" or NULL -> "-" */
	uint64_t bytes_in, bytes_out;          /* client side */
	uint64_t duration_us;                  /* exchange start -> end */
	int64_t connect_us;                    /* upstream connect time; -1: none (reused or no backend) -> "-" */
	unsigned retries;
	const char *end;                       /* NULL or "" for a normal end -> "-", else a short word
	                                          e.g. "client_closed", "upstream_timeout" */
};

/* Formats <e> as one line into the buffer of the calling worker <b>, writing the buffer out first
 * when the line would not fit. A line longer than the whole buffer is counted as dropped. */
void rh_access_log_append(struct rh_access_log *log, struct rh_access_buf *b,
			  const struct rh_access_entry *e, uint64_t now_ms);

/* Writes what <b> holds: one write(2), retried on EINTR and short writes. On any other error the
 * buffered lines are dropped and counted. Empties <b>, sets last_flush_ms, keeps errno. */
void rh_access_log_flush(struct rh_access_log *log, struct rh_access_buf *b, uint64_t now_ms);

/* True when <b> holds lines and was last flushed RH_ACCESS_LOG_FLUSH_MS or more ago: the worker's
 * loop calls rh_access_log_flush then (and bounds its epoll_wait timeout while lines wait). */
static inline bool
rh_access_log_due(const struct rh_access_buf *b, uint64_t now_ms)
{
	return b->len > 0 && now_ms - b->last_flush_ms >= RH_ACCESS_LOG_FLUSH_MS;
}

/* Pure but for <b>'s time cache: formats <e> into out[0..len) with the newline. Returns the length,
 * or 0 when it does not fit (out then holds garbage). No malloc, strftime once a second. */
size_t rh_access_log_format(const struct rh_access_entry *e, struct rh_access_buf *b, char *out,
			    size_t len);

#endif
