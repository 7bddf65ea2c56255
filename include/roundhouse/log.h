/* Levelled logging to stderr: one write(2) per line, so lines from different threads never mix. */
#ifndef RH_LOG_H
#define RH_LOG_H

enum rh_log_level {
	RH_LOG_ERROR,
	RH_LOG_WARN,
	RH_LOG_INFO,
	RH_LOG_DEBUG,
};

/* Messages above <level> are dropped. Call before threads start. */
void rh_log_set_level(enum rh_log_level level);

/* Tag printed on every line from the calling thread ("main", "health", "w0", ...). <tag> must outlive
 * the thread (a string literal or static buffer). */
void rh_log_set_thread_tag(const char *tag);

/* Formats one line "2026-11-26T18:40:00.123Z roundhouse[w0] warn: message\n" and writes it with a
 * single write(2). Lines longer than 1 KiB are truncated. Any thread. */
void rh_log(enum rh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rh_log_error(...) rh_log(RH_LOG_ERROR, __VA_ARGS__)
#define rh_log_warn(...)  rh_log(RH_LOG_WARN, __VA_ARGS__)
#define rh_log_info(...)  rh_log(RH_LOG_INFO, __VA_ARGS__)
#ifdef RH_DEBUG_LOG
#define rh_log_debug(...) rh_log(RH_LOG_DEBUG, __VA_ARGS__)
#else
#define rh_log_debug(...) ((void)0)
#endif

#endif
