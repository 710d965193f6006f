/*
 * log.h: leveled logging to stderr or syslog.
 *
 * Every log line is formatted into one buffer and written with a single
 * write(2), so lines from several worker processes sharing stderr never
 * interleave. A worker may batch its lines (log_batch): they then go out
 * together, still in one write(2) of at most PIPE_BUF bytes (atomic on a
 * pipe), when its event loop has run the callbacks of one turn. The level test happens in the macros, before any formatting,
 * so a disabled level costs one comparison on the hot path.
 */
#ifndef TLSFRONT_LOG_H
#define TLSFRONT_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_dest { LOG_DEST_STDERR = 0, LOG_DEST_SYSLOG };

extern enum log_level log_level_current;

/* Select destination and level. May be called again (e.g. after the config
 * is read). Never fails: syslog falls back to nothing worse than stderr. */
void log_setup(enum log_dest dest, enum log_level level);

/* Tag every following line with this role ("main", "worker 3"). The string
 * is copied. */
void log_set_role(const char *role);

/* Batch the lines to stderr from now on (on) or not; log_flush() writes what
 * is batched, in one write(2). A line that would overflow the batch flushes
 * it first. Syslog lines are never batched. */
void log_batch(int on);
void log_flush(void);

/* Write one line (no trailing newline needed). Prefer the macros below. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_level_current >= LOG_LVL_WARN) \
	log_msg(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level_current >= LOG_LVL_INFO) \
	log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level_current >= LOG_LVL_DEBUG) \
	log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
