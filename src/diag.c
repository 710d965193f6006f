/* diag.c: see diag.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static void __attribute__((format(printf, 5, 0)))
diag_vadd(struct diag *d, const char *file, int line, const char *kind,
    const char *fmt, va_list ap)
{
	char msg[1024], full[1400];

	if (kind[0] == '\0')
		d->n_errors++;	/* counted even if storing it fails below */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(full, sizeof(full), "%s:%d: %s%s", file, line, kind, msg);
	else
		snprintf(full, sizeof(full), "%s: %s%s", file, kind, msg);
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		char **m = realloc(d->msgs, cap * sizeof(*m));
		unsigned char *e;
		if (m == NULL)
			return;	/* out of memory: the count above still fails -t */
		d->msgs = m;
		if ((e = realloc(d->is_error, cap)) == NULL)
			return;
		d->is_error = e;
		d->cap = cap;
	}
	d->is_error[d->n] = kind[0] == '\0';
	if ((d->msgs[d->n] = strdup(full)) != NULL)
		d->n++;
}

void
diag_demote(struct diag *d, size_t from, const char *why)
{
	for (size_t i = from; i < d->n; i++) {
		char *m;
		if (!d->is_error[i] || asprintf(&m, "warning: %s%s", why, d->msgs[i]) < 0)
			continue;
		free(d->msgs[i]);
		d->msgs[i] = m;
		d->is_error[i] = 0;
		d->n_errors--;
	}
}

void
diag_error(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, file, line, "", fmt, ap);
	va_end(ap);
}

void
diag_error_at(struct diag *d, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, at.file, at.line, "", fmt, ap);
	va_end(ap);
}

void
diag_warn_at(struct diag *d, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, at.file, at.line, "warning: ", fmt, ap);
	va_end(ap);
}

int
diag_has(const struct diag *d, const char *needle)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msgs[i], needle) != NULL)
			return 1;
	return 0;
}

void
diag_free(struct diag *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	free(d->is_error);
	memset(d, 0, sizeof(*d));
}
