/*
 * diag.h: a list of configuration diagnostics, each "FILE:LINE: message".
 *
 * The config loader and the TLS context builder append every problem they
 * find, so one run of `tlsfront -t` reports all of them. The caller owns the
 * struct diag and frees it with diag_free(); messages are copied in.
 */
#ifndef TLSFRONT_DIAG_H
#define TLSFRONT_DIAG_H

#include <stddef.h>

struct diag {
	char **msgs;
	unsigned char *is_error;	/* per message */
	size_t n, cap;
	size_t n_errors;	/* msgs that are errors (the rest are warnings) */
};

/* Where a value came from. file points into storage owned by the config. */
struct loc {
	const char *file;
	int line;
};

/* Append an error. line <= 0 prints "FILE: message". */
void diag_error(struct diag *d, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void diag_error_at(struct diag *d, struct loc at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Append a warning ("FILE:LINE: warning: message"). */
void diag_warn_at(struct diag *d, struct loc at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Turn the errors among messages from..n-1 into warnings, each prefixed
 * with `why` (e.g. "host 'x' left out: "). */
void diag_demote(struct diag *d, size_t from, const char *why);
/* Does any message contain this substring? (for tests) */
int diag_has(const struct diag *d, const char *needle);
/* Free the messages; the struct itself may be reused. diag_free(NULL) is a no-op. */
void diag_free(struct diag *d);

#endif
