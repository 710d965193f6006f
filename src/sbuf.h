/*
 * sbuf.h: a string that grows as it is printed to (the /metrics text, the
 * -T dump).
 */
#ifndef TLSFRONT_SBUF_H
#define TLSFRONT_SBUF_H

#include <stddef.h>

/* Start as { NULL, 0, 0, 0 }. p is NUL-terminated once anything was added;
 * the caller owns p and frees it. oom is set once an allocation failed, and
 * from then on nothing is added. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

/* Append printf(fmt, ...) to b. */
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
