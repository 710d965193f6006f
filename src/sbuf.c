/* sbuf.c: see sbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sbuf.h"

void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			/* the cut vsnprintf above wrote past len */
			if (b->p != NULL)
				b->p[b->len] = '\0';
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}
