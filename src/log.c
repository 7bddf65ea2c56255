/* Levelled logging to stderr (see log.h). */
#include "roundhouse/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

/* Atomic only so a late rh_log_set_level is not a data race; relaxed is enough for a filter. */
static _Atomic int log_level = RH_LOG_INFO;
static _Thread_local const char *thread_tag = "main";

static const char *const level_words[] = {
	[RH_LOG_ERROR] = "error",
	[RH_LOG_WARN] = "warn",
	[RH_LOG_INFO] = "info",
	[RH_LOG_DEBUG] = "debug",
};

void rh_log_set_level(enum rh_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void rh_log_set_thread_tag(const char *tag)
{
	thread_tag = tag != NULL ? tag : "main";
}

/* Builds the whole line in a stack buffer and writes it once, so concurrent lines never
 * interleave (stderr is unbuffered, but stdio would still split a line into several writes).
 * Keeps errno, so callers can log and then still inspect it; "%m" works. Any thread. */
void rh_log(enum rh_log_level level, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t len, room;
	int saved_errno = errno;
	int n;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	if ((unsigned)level >= sizeof(level_words) / sizeof(level_words[0]))
		level = RH_LOG_ERROR;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + len, sizeof(line) - len, ".%03ldZ roundhouse[%s] %s: ", ts.tv_nsec / 1000000L,
		     thread_tag, level_words[level]);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;

	/* room for the message and its NUL; one byte stays free for the newline */
	room = sizeof(line) - 1 - len;
	if (room > 0) {
		errno = saved_errno;
		va_start(ap, fmt);
		n = vsnprintf(line + len, room, fmt, ap);
		va_end(ap);
		if (n > 0)
			len += (size_t)n < room ? (size_t)n : room - 1;
	}
	line[len++] = '\n';

	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		;
	errno = saved_errno;
}
