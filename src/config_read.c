/*
 * config_read.c: see config_read.h.
 *
 * Debian 12's libinih 55 has a 200-byte line buffer, passes no line
 * numbers, cuts section names at 49 bytes, joins indented lines to the
 * previous value and skips empty sections. So inih never reads the file:
 * reader() hands it one cleaned line at a time, after counting it and
 * refusing what inih would mangle (an empty line in place of a refused
 * one), and parses section headers itself, giving inih a neutral "[s]".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config_read.h"

static void
raw_free(struct raw_section *r)
{
	free(r->label);
	for (int k = 0; k < K_TABLE; k++)
		free(r->val[k]);
	for (size_t i = 0; i < r->n_more; i++) {
		free(r->more[i].sub);
		free(r->more[i].val);
	}
	free(r->more);
	memset(r, 0, sizeof(*r));
}

const char *
config_intern_file(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_files; i++)
		if (strcmp(c->files[i], name) == 0)
			return c->files[i];
	char **f = realloc(c->files, (c->n_files + 1) * sizeof(*f));
	if (f == NULL)
		return "?";
	c->files = f;
	if ((f[c->n_files] = strdup(name)) == NULL)
		return "?";
	return f[c->n_files++];
}

static struct loc
here(const struct config_reader *l)
{
	struct loc at = { l->file, l->lineno };
	return at;
}

/* An error on the current line, inside the current section (which it marks
 * bad, so that no follow-on error is reported for that host). */
static void __attribute__((format(printf, 2, 3)))
line_error(struct config_reader *l, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_error_at(l->d, here(l), "%s", msg);
	if (l->cur != NULL)
		l->cur->bad = 1;
}

/* Section header "[...]": returns the section to make current. */
static struct raw_section *
begin_section(struct config_reader *l, const char *name, size_t len)
{
	static const char label_chars[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

	if (len > CONFIG_MAX_SECTION) {
		diag_error_at(l->d, here(l), "section name is %zu bytes long; "
		    "the limit is %d (libinih would cut it)", len, CONFIG_MAX_SECTION);
		return &l->ignored;
	}
	if ((len == 6 && memcmp(name, "global", 6) == 0) ||
	    (len == 8 && memcmp(name, "defaults", 8) == 0) ||
	    (len == 4 && memcmp(name, "acme", 4) == 0)) {
		struct raw_section *s = len == 6 ? &l->global : len == 8 ? &l->defaults : &l->acme;
		if (!l->is_main) {
			diag_error_at(l->d, here(l), "[%.*s] belongs in the main file; host "
			    "files hold only [host LABEL] sections", (int)len, name);
			return &l->ignored;
		}
		if (s->kind != SEC_NONE) {
			diag_error_at(l->d, here(l), "duplicate section [%.*s] (first at line %d)",
			    (int)len, name, s->at.line);
			return &l->ignored;
		}
		s->kind = len == 6 ? SEC_GLOBAL : len == 8 ? SEC_DEFAULTS : SEC_ACME;
		s->at = here(l);
		return s;
	}
	if (len > 5 && memcmp(name, "host ", 5) == 0) {
		const char *label = name + 5;
		size_t llen = len - 5;

		if (strspn(label, label_chars) < llen) {
			diag_error_at(l->d, here(l), "bad host label '%.*s' (use letters, digits, "
			    "'.', '_' and '-')", (int)llen, label);
			return &l->ignored;
		}
		for (size_t i = 0; i < l->n_hosts; i++) {
			struct raw_section *h = &l->hosts[i];
			if (strlen(h->label) == llen && memcmp(h->label, label, llen) == 0) {
				diag_error_at(l->d, here(l), "duplicate host label '%.*s' "
				    "(first defined at %s:%d)", (int)llen, label, h->at.file, h->at.line);
				return &l->ignored;
			}
		}
		if (l->n_hosts == l->cap_hosts) {
			size_t cap = l->cap_hosts ? l->cap_hosts * 2 : 16;
			struct raw_section *n = realloc(l->hosts, cap * sizeof(*n));
			if (n == NULL) {
				diag_error_at(l->d, here(l), "out of memory");
				return &l->ignored;
			}
			l->hosts = n;
			l->cap_hosts = cap;
		}
		struct raw_section *h = &l->hosts[l->n_hosts++];
		memset(h, 0, sizeof(*h));
		h->kind = SEC_HOST;
		h->label = strndup(label, llen);
		h->at = here(l);
		return h;
	}
	diag_error_at(l->d, here(l), "unknown section [%.*s] (expected [global], "
	    "[defaults], [acme] or [host LABEL])", (int)len, name);
	return &l->ignored;
}

/*
 * The line reader given to inih. Returns the next line, cleaned, in str; or
 * an empty line in place of a line we have already reported as an error.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct config_reader *l = stream;
	const char *line, *nl, *s, *e;
	size_t len;

	if (l->pos >= l->len)
		return NULL;
	line = l->buf + l->pos;
	nl = memchr(line, '\n', l->len - l->pos);
	len = nl ? (size_t)(nl - line) : l->len - l->pos;
	l->pos += len + (nl ? 1 : 0);
	l->lineno++;
	if (l->lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;	/* UTF-8 byte order mark */
		len -= 3;
	}
	if (l->lineno == 1 && len >= 2 && (memcmp(line, "\xFF\xFE", 2) == 0 ||
	    memcmp(line, "\xFE\xFF", 2) == 0)) {
		/* Notepad's "Unicode": every line would be a NUL byte error */
		line_error(l, "the file is UTF-16 (it starts with a UTF-16 byte order "
		    "mark); save it as UTF-8");
		l->pos = l->len;
		strcpy(str, "\n");
		return str;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	strcpy(str, "\n");	/* what inih gets for a refused line */

	if (memchr(line, '\0', len) != NULL ||
	    len > CONFIG_MAX_LINE || len + 3 > (size_t)num) {
		/* the keys under a refused section header belong to no section */
		for (s = line; s < line + len && isspace((unsigned char)*s); s++)
			;
		if (s < line + len && *s == '[')
			l->cur = &l->ignored;
		if (memchr(line, '\0', len) != NULL)
			line_error(l, "NUL byte in line");
		else
			line_error(l, "line is %zu bytes long; the limit is %d "
			    "(libinih would split it)", len, CONFIG_MAX_LINE);
		return str;
	}
	/* trim both ends: leading blanks must not make a continuation line */
	s = line;
	e = line + len;
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	if (s == e || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(e - s));
		const char *rest;

		if (close == NULL) {
			l->cur = &l->ignored;
			line_error(l, "section header without ']'");
			return str;
		}
		for (rest = close + 1; rest < e && isspace((unsigned char)*rest); rest++)
			;
		if (rest < e && *rest != ';' && *rest != '#') {
			l->cur = &l->ignored;
			line_error(l, "unexpected text after section header");
			return str;
		}
		l->cur = begin_section(l, s + 1, (size_t)(close - s - 1));
		/* inih needs to see a section so that it keeps no stale name */
		strcpy(str, "[s]\n");
		return str;
	}
	/* key = value: inih splits at the first '=' or ':' before a " ;" comment */
	const char *p;
	for (p = s; p < e; p++) {
		if (*p == '=' || *p == ':')
			break;
		if (*p == ';' && isspace((unsigned char)p[-1])) {
			p = e;	/* a comment before any '=' */
			break;
		}
	}
	if (p == e || p == s) {
		line_error(l, "expected 'key = value'");
		return str;
	}
	memcpy(str, s, (size_t)(e - s));
	str[e - s] = '\n';
	str[e - s + 1] = '\0';
	return str;
}

/* Keep one more line of key `id` (a repeatable or a map key) in s. */
static void
add_line(struct config_reader *l, struct raw_section *s, int id, const char *sub,
    const char *value)
{
	struct raw_line *m = realloc(s->more, (s->n_more + 1) * sizeof(*m));

	if (m == NULL)
		return;
	s->more = m;
	m += s->n_more;
	m->key = id;
	m->sub = NULL;
	m->at = here(l);
	m->bad = 0;
	if ((m->val = strdup(value)) == NULL || (sub != NULL && (m->sub = strdup(sub)) == NULL)) {
		free(m->val);
		return;
	}
	s->n_more++;
}

/* A line of map key `id`, "NAME.SUB = value": once per SUB in a section. */
static void
map_line(struct config_reader *l, struct raw_section *s, int id, const char *name,
    const char *value)
{
	const char *sub = name + strlen(config_keys[id].name) + 1;

	if (*sub == '\0' || strlen(sub) > 255) {
		/* 255: an ALPN protocol name's limit */
		line_error(l, "'%s': expected %s.PROTOCOL", name, config_keys[id].name);
		return;
	}
	for (size_t i = 0; i < s->n_more; i++)
		if (s->more[i].key == id && strcmp(s->more[i].sub, sub) == 0) {
			line_error(l, "duplicate key '%s' (first at line %d)", name,
			    s->more[i].at.line);
			return;
		}
	add_line(l, s, id, sub, value);
}

/* inih's handler: one key = value line, in the section reader() made current. */
static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_reader *l = user;
	struct raw_section *s = l->cur;
	char msg[600];
	int scope, id;

	(void)section;	/* we track sections ourselves, in reader() */
	if (s == NULL) {
		line_error(l, "'%s' outside any section", name);
		return 1;
	}
	if (s->kind == SEC_IGNORED)
		return 1;	/* its header was already reported */
	scope = s->kind == SEC_GLOBAL ? S_GLOBAL : s->kind == SEC_DEFAULTS ? S_DEFAULTS :
	    s->kind == SEC_ACME ? S_ACME : S_HOST;
	if (*value == '\0') {
		line_error(l, "'%s' has an empty value", name);
		return 1;
	}
	if ((id = config_key_find(name, scope)) < 0) {
		config_key_unknown(name, scope, msg, sizeof(msg));
		line_error(l, "%s", msg);
		return 1;
	}
	if (config_keys[id].v.type == T_ALPN_MAP) {
		map_line(l, s, id, name, value);
		return 1;
	}
	if (s->val[id] != NULL && config_keys[id].v.type == T_NAMES) {
		/* a repeatable key: the line adds to the first */
		add_line(l, s, id, NULL, value);
		return 1;
	}
	if (s->val[id] != NULL) {
		line_error(l, "duplicate key '%s' (first at line %d)", name,
		    s->loc[id].line);
		return 1;
	}
	s->val[id] = strdup(value);
	s->loc[id] = here(l);
	return 1;
}

/* Read a whole file (bounded). Returns 0, or -1 after reporting at `at`. */
static int
slurp(const char *path, struct diag *d, struct loc at, char **out, size_t *outlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		diag_error_at(d, at, "cannot open %s: %s", path, strerror(errno));
		goto err;
	}
	if (S_ISDIR(st.st_mode)) {
		diag_error_at(d, at, "%s is a directory", path);
		goto err;
	}
	if ((buf = malloc(CONFIG_MAX_FILE + 1)) == NULL) {
		diag_error_at(d, at, "out of memory");
		goto err;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, CONFIG_MAX_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			diag_error_at(d, at, "cannot read %s: %s", path, strerror(errno));
			goto err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_FILE) {
			diag_error_at(d, at, "%s is too large (limit %d bytes)", path,
			    CONFIG_MAX_FILE);
			goto err;
		}
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
err:
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}

void
config_read_buf(struct config_reader *l, const char *file, int is_main, const char *buf,
    size_t len)
{
#if HAVE_DECL_INI_ALLOW_MULTILINE
	ini_allow_multiline = 0;	/* an indented line is a line, not a continuation */
#endif
	l->file = config_intern_file(l->c, file);
	l->is_main = is_main;
	l->lineno = 0;
	l->buf = buf;
	l->pos = 0;
	l->len = len;
	l->cur = NULL;	/* the previous file's last section does not carry over */
	(void)ini_parse_stream(reader, l, handler, l);
	l->buf = NULL;
}

int
config_read_file(struct config_reader *l, const char *path, int is_main, struct loc ref)
{
	char *buf;
	size_t len;

	if (slurp(path, l->d, ref, &buf, &len) != 0)
		return -1;
	config_read_buf(l, path, is_main, buf, len);
	free(buf);
	return 0;
}

void
config_reader_init(struct config_reader *l, struct config *c, struct diag *d)
{
	memset(l, 0, sizeof(*l));
	l->c = c;
	l->d = d;
	l->ignored.kind = SEC_IGNORED;
}

void
config_reader_free(struct config_reader *l)
{
	raw_free(&l->global);
	raw_free(&l->defaults);
	raw_free(&l->acme);
	raw_free(&l->ignored);
	for (size_t i = 0; i < l->n_hosts; i++)
		raw_free(&l->hosts[i]);
	free(l->hosts);
	l->hosts = NULL;
	l->n_hosts = l->cap_hosts = 0;
}
