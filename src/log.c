/* log.c: see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#include "log.h"

enum log_level log_level_current = LOG_LVL_INFO;
static enum log_dest log_dest_current = LOG_DEST_STDERR;
static char log_role[32] = "main";
static pid_t log_pid;
/* Lines waiting for log_flush (log_batch): at most PIPE_BUF bytes, so that
 * one write(2) of them is atomic on a pipe shared with other processes. */
static int batching;
static char batch[PIPE_BUF];
static size_t batch_len;		/* 0: not known yet (log_set_role sets it after a fork) */

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void
log_setup(enum log_dest dest, enum log_level level)
{
	if (dest == LOG_DEST_SYSLOG && log_dest_current != LOG_DEST_SYSLOG)
		openlog("tlsfront", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_dest_current = dest;
	log_level_current = level;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	log_pid = getpid();	/* every process says who it is right after its fork */
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	size_t off = 0;
	va_list ap;
	int n;

	if (level > log_level_current)
		return;
	if (log_dest_current == LOG_DEST_STDERR) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		if (log_pid == 0)
			log_pid = getpid();
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + off, sizeof(line) - off, ".%03ldZ tlsfront[%ld] %s %s: ",
		    ts.tv_nsec / 1000000L, (long)log_pid, log_role, level_names[level]);
		if (n > 0)
			off += (size_t)n;
	}
	va_start(ap, fmt);
	n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	off += (size_t)n;
	if (off > sizeof(line) - 2)
		off = sizeof(line) - 2;	/* truncated: still one line */
	/* Control characters from peers (SNI, ALPN) must not forge log lines. */
	for (size_t i = 0; i < off; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (log_dest_current == LOG_DEST_SYSLOG) {
		line[off] = '\0';
		syslog(syslog_prio[level], "%s: %s", log_role, line);
		return;
	}
	line[off++] = '\n';
	if (batching && off <= sizeof(batch)) {
		if (batch_len + off > sizeof(batch))
			log_flush();
		memcpy(batch + batch_len, line, off);
		batch_len += off;
		return;
	}
	/* One write per line; a short write to a pipe of < PIPE_BUF is atomic. */
	ssize_t w = write(STDERR_FILENO, line, off);
	(void)w;
}

void
log_batch(int on)
{
	if (!on)
		log_flush();
	batching = on;
}

void
log_flush(void)
{
	if (batch_len > 0) {
		ssize_t w = write(STDERR_FILENO, batch, batch_len);
		(void)w;
	}
	batch_len = 0;
}
