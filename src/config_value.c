/*
 * config_value.c: see config_value.h.
 *
 * Lists are split on blanks and commas; each token is checked on its own,
 * then against the tokens before it. Every error names the offending text,
 * so that config.c only has to put the key and FILE:LINE in front.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clientauth.h"
#include "config_value.h"
#include "sni.h"

int
config_parse_duration(const char *s, unsigned long long max_ms, unsigned *out_ms)
{
	unsigned long long v = 0, mult;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long long)(*p - '0');
		/* stop long before v * mult could wrap */
		if (v > 1000000000ULL)
			return -1;
		p++;
	}
	if (strcmp(p, "ms") == 0)
		mult = 1;
	else if (*p == '\0' || strcmp(p, "s") == 0)
		mult = 1000;
	else if (strcmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mult = 3600 * 1000;
	else
		return -1;
	v *= mult;
	if (v > max_ms || v > UINT_MAX)
		return -1;
	*out_ms = (unsigned)v;
	return 0;
}

int
value_workers_auto(long ncpus)
{
	return ncpus < 1 ? 1 : ncpus > 256 ? 256 : (int)ncpus;
}

/* ------------------------------------------------------------------ */
/* Lists                                                                */

/* Split on blanks and commas; each token to cb. Returns cb's first nonzero. */
static int
each_token(const char *val, int (*cb)(const char *tok, void *arg), void *arg)
{
	char *copy = strdup(val), *save = NULL, *tok;
	int rc = 0;

	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, " \t,", &save); tok && rc == 0; tok = strtok_r(NULL, " \t,", &save))
		rc = cb(tok, arg);
	free(copy);
	return rc;
}

struct tok_ctx {
	char *err;
	size_t errlen;
	void *list;
};

static int
tok_addr(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct addr_list *al = t->list;
	struct addr *v = realloc(al->v, (al->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	al->v = v;
	if (addr_parse(tok, &v[al->n], t->err, t->errlen) != 0)
		return -1;
	/* address lists are listeners */
	if (v[al->n].ss.ss_family == AF_UNIX) {
		snprintf(t->err, t->errlen, "%s: tlsfront listens on TCP addresses only", tok);
		return -1;
	}
	for (size_t i = 0; i < al->n; i++)
		if (addr_equal(&v[i], &v[al->n])) {
			snprintf(t->err, t->errlen, "'%s' is listed twice", tok);
			return -1;
		}
	al->n++;
	return 0;
}

/* One pool member as written: an address, or a host name that is one
 * member per address it resolves to. A member twice is an error (it would
 * get twice the share of connections and confuse its health state). */
static int
tok_member(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct addr_list *al = t->list;
	struct addr got[VALUE_POOL_MAX];
	struct addr *v;
	int n = addr_parse_all(tok, got, VALUE_POOL_MAX, t->err, t->errlen);

	if (n < 0)
		return -1;
	if (al->n + (size_t)n > VALUE_POOL_MAX) {
		snprintf(t->err, t->errlen, "more than %d members", VALUE_POOL_MAX);
		return -1;
	}
	for (int k = 0; k < n; k++)
		for (size_t i = 0; i < al->n; i++)
			if (addr_equal(&al->v[i], &got[k])) {
				snprintf(t->err, t->errlen, "duplicate member '%s' (%s)", tok,
				    got[k].text);
				return -1;
			}
	if ((v = realloc(al->v, (al->n + (size_t)n) * sizeof(*v))) == NULL)
		return -1;
	al->v = v;
	memcpy(&v[al->n], got, (size_t)n * sizeof(*v));
	al->n += (size_t)n;
	return 0;
}

static int
tok_cidr(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct cidr_list *cl = t->list;
	struct cidr *v = realloc(cl->v, (cl->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	cl->v = v;
	if (cidr_parse(tok, &v[cl->n], t->err, t->errlen) != 0)
		return -1;
	cl->n++;
	return 0;
}

static int
str_list_add(struct str_list *sl, const char *s)
{
	char **v = realloc(sl->v, (sl->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	sl->v = v;
	if ((v[sl->n] = strdup(s)) == NULL)
		return -1;
	sl->n++;
	return 0;
}

static void
str_list_free(struct str_list *sl)
{
	for (size_t i = 0; i < sl->n; i++)
		free(sl->v[i]);
	free(sl->v);
	memset(sl, 0, sizeof(*sl));
}

static int
tok_name(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct str_list *sl = t->list;
	char norm[SNI_NAME_MAX + 1];

	if (sni_normalize(tok, strlen(tok), 1, norm) < 0) {
		snprintf(t->err, t->errlen, "'%s' is not a valid host name or *.wildcard", tok);
		return -1;
	}
	for (size_t i = 0; i < sl->n; i++)
		if (strcmp(sl->v[i], norm) == 0) {
			snprintf(t->err, t->errlen, "'%s' is listed twice", tok);
			return -1;
		}
	return str_list_add(sl, norm);
}

/* One client_allow entry: parsed by clientauth.c, kept as written too. */
static int
allow_add(struct allow_value *av, const char *tok, char *err, size_t errlen)
{
	if (av->list == NULL && (av->list = calloc(1, sizeof(*av->list))) == NULL)
		return -1;
	if (clientauth_allow_add(av->list, tok, err, errlen) != 0)
		return -1;
	return str_list_add(&av->text, tok);
}

static int
tok_allow(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;

	return allow_add(t->list, tok, t->err, t->errlen);
}

static int
tok_alpn(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct str_list *sl = t->list;
	size_t n = strlen(tok);

	if (n > 255) {
		snprintf(t->err, t->errlen, "ALPN protocol names are at most 255 bytes");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f) {
			snprintf(t->err, t->errlen, "bad character in ALPN protocol '%s'", tok);
			return -1;
		}
	for (size_t i = 0; i < sl->n; i++)
		if (strcmp(sl->v[i], tok) == 0) {
			snprintf(t->err, t->errlen, "'%s' is listed twice", tok);
			return -1;
		}
	return str_list_add(sl, tok);
}

static const struct { const char *name; int v; } versions[] = {
	{ "TLSv1", CONFIG_TLS1_VERSION }, { "TLSv1.0", CONFIG_TLS1_VERSION },
	{ "TLSv1.1", CONFIG_TLS1_1_VERSION }, { "TLSv1.2", CONFIG_TLS1_2_VERSION },
	{ "TLSv1.3", CONFIG_TLS1_3_VERSION },
};
#define N_VERSIONS (sizeof(versions) / sizeof(versions[0]))

/* The protocols given make a range: the lowest to the highest. */
static int
tok_proto(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct proto_range *r = t->list;

	for (size_t i = 0; i < N_VERSIONS; i++)
		if (strcasecmp(tok, versions[i].name) == 0) {
			if (r->min == 0 || versions[i].v < r->min)
				r->min = versions[i].v;
			if (versions[i].v > r->max)
				r->max = versions[i].v;
			return 0;
		}
	snprintf(t->err, t->errlen, "unknown protocol '%s' (expected TLSv1.2, TLSv1.3, "
	    "or the obsolete TLSv1 and TLSv1.1)", tok);
	return -1;
}

/* ------------------------------------------------------------------ */
/* One value                                                            */

/* Make a relative path relative to the directory of the file it was written in. */
static char *
resolve_path(const char *val, const char *file)
{
	const char *slash;
	char *out;

	if (val[0] == '/' || (slash = strrchr(file, '/')) == NULL)
		return strdup(val);
	if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, val) < 0)
		return NULL;
	return out;
}

static int
parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
	    !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* accept "A B C" and "A, B" as well as OpenSSL's "A:B:C" */
static char *
openssl_list(const char *val)
{
	char *out = malloc(strlen(val) + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (const char *p = val; *p; p++) {
		char ch = (*p == ' ' || *p == '\t' || *p == ',') ? ':' : *p;
		if (ch != ':' || (o > out && o[-1] != ':'))
			*o++ = ch;
	}
	if (o > out && o[-1] == ':')
		o--;
	*o = '\0';
	return out;
}

static int
parse_list(const struct vspec *s, const char *val, void *field, char *err, size_t errlen)
{
	struct tok_ctx t = { err, errlen, field };
	int (*cb)(const char *, void *) = s->type == T_ADDRS ? tok_addr :
	    s->type == T_POOL ? tok_member :
	    s->type == T_CIDRS ? tok_cidr : s->type == T_NAMES ? tok_name :
	    s->type == T_ALPN ? tok_alpn : s->type == T_ALLOW ? tok_allow : tok_proto;

	if (s->type == T_PROTOCOLS)
		memset(field, 0, sizeof(struct proto_range));	/* tok_proto widens it */
	if (each_token(val, cb, &t) != 0) {
		value_free(s->type, field);
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (s->type == T_PROTOCOLS && ((struct proto_range *)field)->min == 0) {
		snprintf(err, errlen, "no protocol given");
		return -1;
	}
	if ((s->type == T_ADDRS || s->type == T_POOL) && ((struct addr_list *)field)->n == 0) {
		snprintf(err, errlen, s->type == T_POOL ? "empty pool: no member given" :
		    "no address given");
		return -1;
	}
	return 0;
}

static int
parse_enum(const struct vspec *s, const char *val, int *field, char *err, size_t errlen)
{
	size_t n = 0, off;

	for (; s->names[n] != NULL; n++)
		if (strcmp(val, s->names[n]) == 0) {
			*field = (int)n;
			return 0;
		}
	/* "expected a, b or c, not 'val'" */
	off = (size_t)snprintf(err, errlen, "expected");
	for (size_t i = 0; i < n && off < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, "%s %s",
		    i == 0 ? "" : i + 1 == n ? " or" : ",", s->names[i]);
	if (off < errlen)
		snprintf(err + off, errlen - off, ", not '%s'", val);
	return -1;
}

/* A T_SECONDS value: a number with s, m, h or d (bare: seconds), for spans
 * longer than T_DURATION's 49 days (ACME's renew_before). 0 or -1. */
static int
parse_seconds(const char *val, unsigned long long max_s, unsigned long long *out)
{
	unsigned long long v = 0, mult;
	const char *p = val;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > 1000000000ULL)	/* long before v * mult could wrap */
			return -1;
		p++;
	}
	if (*p == '\0' || strcmp(p, "s") == 0)
		mult = 1;
	else if (strcmp(p, "m") == 0)
		mult = 60;
	else if (strcmp(p, "h") == 0)
		mult = 3600;
	else if (strcmp(p, "d") == 0)
		mult = 86400;
	else
		return -1;
	if (v * mult > max_s)
		return -1;
	*out = v * mult;
	return 0;
}

/* A T_URL value: one token of printable characters without blanks, starting
 * with the scheme s->names[0] ("https:", "mailto:"). Copied as written: a
 * URL is not a list (T_STRING would turn its commas into ':'). */
static int
parse_url(const struct vspec *s, const char *val, char **out, char *err, size_t errlen)
{
	const char *scheme = s->names != NULL ? s->names[0] : "";

	for (const char *p = val; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"') {
			snprintf(err, errlen, "'%s' is not a URL (no blanks, quotes or control "
			    "characters)", val);
			return -1;
		}
	if (strncasecmp(val, scheme, strlen(scheme)) != 0 || val[strlen(scheme)] == '\0') {
		snprintf(err, errlen, "expected a %s URL, not '%s'", scheme, val);
		return -1;
	}
	if ((*out = strdup(val)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
value_parse(const struct vspec *s, const char *val, const char *file, void *field,
    char *err, size_t errlen)
{
	char *end;
	long n;

	err[0] = '\0';
	switch (s->type) {
	case T_ADDRS:
	case T_POOL:
	case T_NAMES:
	case T_ALPN:
	case T_ALLOW:
	case T_CIDRS:
	case T_PROTOCOLS:
		return parse_list(s, val, field, err, errlen);
	case T_PATH:
	case T_GLOB:
		if ((*(char **)field = resolve_path(val, file)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	case T_STRING:
		if ((*(char **)field = openssl_list(val)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	case T_ADDR:
		return addr_parse(val, field, err, errlen);
	case T_BOOL:
		if (parse_bool(val, field) != 0) {
			snprintf(err, errlen, "expected yes or no, not '%s'", val);
			return -1;
		}
		return 0;
	case T_DURATION:
		/* a value below the minimum is stored before it is refused, as
		 * it always was: harmless, the caller drops the field */
		if (config_parse_duration(val, s->max, field) != 0 ||
		    *(unsigned *)field < s->min) {
			snprintf(err, errlen, "bad duration '%s' (expected e.g. 250ms, 10s, 5m, "
			    "1h; between %llums and %llus)", val, s->min, s->max / 1000);
			return -1;
		}
		return 0;
	case T_WORKERS:
		if (strcmp(val, "auto") == 0) {
			*(int *)field = VALUE_WORKERS_AUTO;	/* config.c counts the CPUs */
			return 0;
		}
		errno = 0;
		n = strtol(val, &end, 10);
		if (errno || *end || n < 1 || n > 256) {
			snprintf(err, errlen, "expected auto or a number of workers 1..256, "
			    "not '%s'", val);
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case T_ENUM:
		return parse_enum(s, val, field, err, errlen);
	case T_INT:
		errno = 0;
		n = strtol(val, &end, val[0] == '0' && (val[1] == 'x' || val[1] == 'X') ? 16 : 10);
		if (errno || *end || end == val || n < (long)s->min || n > (long)s->max) {
			snprintf(err, errlen, "expected a number %llu..%llu, not '%s'", s->min,
			    s->max, val);
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case T_URL:
		return parse_url(s, val, field, err, errlen);
	case T_SECONDS:
		if (parse_seconds(val, s->max, field) != 0 ||
		    *(unsigned long long *)field < s->min) {
			snprintf(err, errlen, "bad duration '%s' (expected e.g. 90m, 12h, 30d; "
			    "between %llus and %llud)", val, s->min, s->max / 86400);
			return -1;
		}
		return 0;
	case T_ALPN_MAP:
		break;
	}
	snprintf(err, errlen, "a map's lines are parsed one by one");
	return -1;
}

/* Append e to m, with a copy of proto as its protocol (e's own is not
 * used); m takes over e's pool. */
static int
map_append(struct alpn_map *m, const char *proto, const struct alpn_backend *e)
{
	struct alpn_backend *v;
	char *copy;

	if ((copy = strdup(proto)) == NULL)
		return -1;
	if ((v = realloc(m->v, (m->n + 1) * sizeof(*v))) == NULL) {
		free(copy);
		return -1;
	}
	m->v = v;
	v[m->n] = *e;
	v[m->n].proto = copy;
	m->n++;
	return 0;
}

int
value_map_parse(struct alpn_map *m, const char *proto, const char *val, struct loc at,
    char *err, size_t errlen)
{
	static const struct vspec pool = { T_POOL, 0, 0, NULL, 0 };
	struct alpn_backend e;

	memset(&e, 0, sizeof(e));
	if (value_parse(&pool, val, at.file, &e.pool, err, errlen) != 0)
		return -1;
	e.at = at;
	if (map_append(m, proto, &e) != 0) {
		value_free(T_POOL, &e.pool);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
value_map_put(struct alpn_map *m, const struct alpn_backend *e)
{
	struct alpn_backend c = *e;

	memset(&c.pool, 0, sizeof(c.pool));
	if (value_copy(T_POOL, &c.pool, &e->pool) != 0 || map_append(m, e->proto, &c) != 0) {
		value_free(T_POOL, &c.pool);
		return -1;
	}
	return 0;
}

const struct alpn_backend *
value_map_get(const struct alpn_map *m, const char *proto)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].proto, proto) == 0)
			return &m->v[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Freeing and copying                                                  */

/* The size of a field that owns no memory. */
static size_t
scalar_size(enum vtype t)
{
	switch (t) {
	case T_ADDR:
		return sizeof(struct addr);
	case T_PROTOCOLS:
		return sizeof(struct proto_range);
	case T_DURATION:
		return sizeof(unsigned);
	case T_SECONDS:
		return sizeof(unsigned long long);
	case T_BOOL:
	case T_WORKERS:
	case T_ENUM:
	case T_INT:
		return sizeof(int);
	default:
		return 0;
	}
}

void
value_free(enum vtype t, void *field)
{
	switch (t) {
	case T_ADDRS:
	case T_POOL:
		free(((struct addr_list *)field)->v);
		memset(field, 0, sizeof(struct addr_list));
		break;
	case T_CIDRS:
		free(((struct cidr_list *)field)->v);
		memset(field, 0, sizeof(struct cidr_list));
		break;
	case T_NAMES:
	case T_ALPN:
		str_list_free(field);
		break;
	case T_ALLOW: {
		struct allow_value *av = field;
		str_list_free(&av->text);
		clientauth_allow_free(av->list);
		free(av->list);
		av->list = NULL;
		break;
	}
	case T_ALPN_MAP: {
		struct alpn_map *m = field;
		for (size_t i = 0; i < m->n; i++) {
			free(m->v[i].proto);
			free(m->v[i].pool.v);
		}
		free(m->v);
		memset(m, 0, sizeof(*m));
		break;
	}
	case T_PATH:
	case T_GLOB:
	case T_STRING:
	case T_URL:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	default:
		/* owns nothing: left as it is (a field of a host with errors
		 * keeps what parsing stored, which tlsfront -T shows) */
		break;
	}
}

/* A copy of n elements of size each; NULL when n is 0, or out of memory. */
static void *
dup_array(const void *src, size_t n, size_t size)
{
	void *p = n > 0 ? malloc(n * size) : NULL;

	if (p != NULL)
		memcpy(p, src, n * size);
	return p;
}

int
value_copy(enum vtype t, void *dst, const void *src)
{
	switch (t) {
	case T_ADDRS:
	case T_POOL: {
		const struct addr_list *s = src;
		struct addr_list *d = dst;
		if ((d->v = dup_array(s->v, s->n, sizeof(*s->v))) == NULL && s->n > 0)
			return -1;
		d->n = s->n;
		return 0;
	}
	case T_CIDRS: {
		const struct cidr_list *s = src;
		struct cidr_list *d = dst;
		if ((d->v = dup_array(s->v, s->n, sizeof(*s->v))) == NULL && s->n > 0)
			return -1;
		d->n = s->n;
		return 0;
	}
	case T_NAMES:
	case T_ALPN: {
		const struct str_list *s = src;
		for (size_t i = 0; i < s->n; i++)
			if (str_list_add(dst, s->v[i]) != 0)
				return -1;
		return 0;
	}
	case T_ALLOW: {
		/* clientauth.h has no copy; adding the same entries is one */
		const struct allow_value *s = src;
		char err[64];
		for (size_t i = 0; i < s->text.n; i++)
			if (allow_add(dst, s->text.v[i], err, sizeof(err)) != 0)
				return -1;
		return 0;
	}
	case T_ALPN_MAP: {
		const struct alpn_map *s = src;
		for (size_t i = 0; i < s->n; i++)
			if (value_map_put(dst, &s->v[i]) != 0)
				return -1;
		return 0;
	}
	case T_PATH:
	case T_GLOB:
	case T_STRING:
	case T_URL: {
		const char *s = *(char *const *)src;
		if (s != NULL && (*(char **)dst = strdup(s)) == NULL)
			return -1;
		return 0;
	}
	default:
		memcpy(dst, src, scalar_size(t));
		return 0;
	}
}
