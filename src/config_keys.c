/*
 * config_keys.c: see config_keys.h. The key table read back: a key by its
 * name, the near key of a misspelt one, and a key's value as the
 * configuration spells it (tlsfront -T).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_keys.h"

int
config_key_find(const char *name, int scope)
{
	for (int k = 0; k < K_TABLE; k++) {
		const struct keydef *kd = &config_keys[k];
		size_t n = strlen(kd->name);

		if (!(kd->scope & scope))
			continue;
		if (kd->v.type == T_ALPN_MAP ? strncmp(name, kd->name, n) == 0 && name[n] == '.' :
		    strcmp(name, kd->name) == 0)
			return k;
	}
	return -1;
}

const char *
config_key_name(enum cfg_key k)
{
	return k < K_COUNT ? config_keys[k].name : "?";
}

int
config_key_is_global(enum cfg_key k)
{
	return k < K_COUNT && config_keys[k].scope == S_GLOBAL;
}

int
config_key_is_acme(enum cfg_key k)
{
	return k < K_COUNT && config_keys[k].scope == S_ACME;
}

/* ------------------------------------------------------------------ */
/* Unknown keys: the near one                                           */

#define NEAR_MAX 2		/* a suggestion is at most this many edits away */
#define NEAR_LEN 40		/* longer key names are never near a real one */

/*
 * The optimal string alignment distance between a and b, case ignored: the
 * fewest insertions, deletions, substitutions and swaps of two neighbours
 * that make one the other. Anything above NEAR_MAX is NEAR_MAX + 1: the
 * rows stop as soon as no cell can come back under it.
 */
static int
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int rows[3][NEAR_LEN + 1], *pp = rows[0], *p = rows[1], *c = rows[2];

	if (la > NEAR_LEN || lb > NEAR_LEN || la > lb + NEAR_MAX || lb > la + NEAR_MAX)
		return NEAR_MAX + 1;
	for (size_t j = 0; j <= lb; j++)
		p[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int lo = c[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int ai = tolower((unsigned char)a[i - 1]);
			int bj = tolower((unsigned char)b[j - 1]);
			int v = p[j - 1] + (ai != bj);
			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == bj && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < lo)
				lo = v;
		}
		/* a row and the one before it over the bound: so is every later row */
		int plo = p[0];
		for (size_t j = 1; j <= lb; j++)
			if (p[j] < plo)
				plo = p[j];
		if (lo > NEAR_MAX && plo > NEAR_MAX)
			return NEAR_MAX + 1;
		int *t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[lb] > NEAR_MAX ? NEAR_MAX + 1 : p[lb];
}

/* Is `typed` near enough to `name` to be a typo of it? At most NEAR_MAX
 * edits, and at most one per three characters of the longer of the two (so
 * that short keys do not match everything short). Returns the distance, or
 * -1. */
static int
near_name(const char *typed, const char *name)
{
	int dist = edit_distance(typed, name);
	size_t lt = strlen(typed), ln = strlen(name);

	if (dist > NEAR_MAX || (size_t)dist * 3 > (lt > ln ? lt : ln))
		return -1;
	return dist;
}

/* The key of `scope` nearest to `typed` (see near_name), or -1. */
static int
nearest_key(const char *typed, int scope)
{
	int best = -1, best_dist = NEAR_MAX + 1;

	for (int k = 0; k < K_COUNT; k++) {
		int dist;
		if ((config_keys[k].scope & scope) &&
		    (dist = near_name(typed, config_keys[k].name)) >= 0 && dist < best_dist) {
			best = k;
			best_dist = dist;
		}
	}
	return best;
}

/* The sections a key of `scope` may be written in, for messages. */
static const char *
scope_text(int scope)
{
	if (scope == S_GLOBAL)
		return "[global]";
	if (scope == S_ACME)
		return "[acme]";
	if (scope == S_DEFAULTS)
		return "[defaults]";
	if (scope == S_HOST)
		return "a [host] section";
	if (scope == (S_DEFAULTS | S_HOST))
		return "[defaults] or a [host] section";
	return "any section";
}

void
config_key_unknown(const char *name, int scope, char *msg, size_t len)
{
	const char *dot = strchr(name, '.');
	int k;

	if (dot != NULL) {
		/* backend.PROTO, misspelt or in [global] */
		char head[NEAR_LEN + 1];
		size_t hl = (size_t)(dot - name);
		const struct keydef *map = &config_keys[K_BACKEND_PROTO];
		int in_scope = (scope & map->scope) != 0;

		if (hl <= NEAR_LEN) {
			memcpy(head, name, hl);
			head[hl] = '\0';
			if (near_name(head, map->name) >= 0) {
				if (in_scope)
					snprintf(msg, len, "unknown key '%s' (did you mean "
					    "'%s%s'?)", name, map->name, dot);
				else
					snprintf(msg, len, "unknown key '%s' (backend.PROTO "
					    "lines belong in %s)", name, scope_text(map->scope));
				return;
			}
		}
	} else if ((k = config_key_find(name, S_ANY)) >= 0) {
		snprintf(msg, len, "key '%s' is not allowed in %s (it belongs in %s)", name,
		    scope_text(scope), scope_text(config_keys[k].scope));
		return;
	} else if ((k = nearest_key(name, scope)) >= 0) {
		snprintf(msg, len, "unknown key '%s' (did you mean '%s'?)", name,
		    config_keys[k].name);
		return;
	} else if ((k = nearest_key(name, S_ANY & ~scope)) >= 0) {
		snprintf(msg, len, "unknown key '%s' (did you mean '%s'? it belongs in %s)", name,
		    config_keys[k].name, scope_text(config_keys[k].scope));
		return;
	}
	snprintf(msg, len, "unknown key '%s'", name);
}

/* ------------------------------------------------------------------ */
/* Values as text                                                       */

/* snprintf into a buffer that counts what did not fit */
struct text {
	char *buf;
	size_t len, off;
};

static void __attribute__((format(printf, 2, 3)))
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->off < t->len ? t->buf + t->off : NULL,
	    t->off < t->len ? t->len - t->off : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->off += (size_t)n;
}

static void
duration_text(struct text *t, unsigned ms)
{
	if (ms != 0 && ms % (3600 * 1000) == 0)
		text_add(t, "%uh", ms / (3600 * 1000));
	else if (ms != 0 && ms % (60 * 1000) == 0)
		text_add(t, "%um", ms / (60 * 1000));
	else if (ms % 1000 == 0)
		text_add(t, "%us", ms / 1000);
	else
		text_add(t, "%ums", ms);
}

static int
str_list_text(struct text *t, const struct str_list *sl)
{
	if (sl->n == 0)
		return -1;
	for (size_t i = 0; i < sl->n; i++)
		text_add(t, "%s%s", i ? " " : "", sl->v[i]);
	return 0;
}

int
value_text(const struct vspec *s, const void *field, char *buf, size_t len)
{
	/* the names value_parse takes, less the alias TLSv1.0 */
	static const struct { int v; const char *name; } versions[] = {
		{ CONFIG_TLS1_VERSION, "TLSv1" }, { CONFIG_TLS1_1_VERSION, "TLSv1.1" },
		{ CONFIG_TLS1_2_VERSION, "TLSv1.2" }, { CONFIG_TLS1_3_VERSION, "TLSv1.3" },
	};
	struct text t = { buf, len, 0 };
	int v, n = 0;

	if (len > 0)
		buf[0] = '\0';
	switch (s->type) {
	case T_ADDRS:
	case T_POOL: {
		const struct addr_list *al = field;
		if (al->n == 0)
			return -1;
		for (size_t i = 0; i < al->n; i++)
			text_add(&t, "%s%s", i ? " " : "", al->v[i].text);
		break;
	}
	case T_CIDRS: {
		const struct cidr_list *cl = field;
		if (cl->n == 0)
			return -1;
		for (size_t i = 0; i < cl->n; i++) {
			char a[INET6_ADDRSTRLEN];
			if (inet_ntop(cl->v[i].family, cl->v[i].addr, a, sizeof(a)) == NULL)
				strcpy(a, "?");
			text_add(&t, "%s%s/%u", i ? " " : "", a, cl->v[i].prefix);
		}
		break;
	}
	case T_NAMES:
	case T_ALPN:
		if (str_list_text(&t, field) != 0)
			return -1;
		break;
	case T_ALLOW:
		if (str_list_text(&t, &((const struct allow_value *)field)->text) != 0)
			return -1;
		break;
	case T_PATH:
	case T_GLOB:
	case T_STRING:
	case T_URL: {
		const char *str = *(char *const *)field;
		if (str == NULL)
			return -1;
		text_add(&t, "%s", str);
		break;
	}
	case T_ADDR: {
		const struct addr *a = field;
		if (a->len == 0)
			return -1;
		text_add(&t, "%s", a->text);
		break;
	}
	case T_BOOL:
		text_add(&t, "%s", *(const int *)field ? "yes" : "no");
		break;
	case T_PROTOCOLS: {
		const struct proto_range *r = field;
		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
			if (versions[i].v >= r->min && versions[i].v <= r->max)
				text_add(&t, "%s%s", n++ ? " " : "", versions[i].name);
		break;
	}
	case T_DURATION:
		duration_text(&t, *(const unsigned *)field);
		break;
	case T_SECONDS: {
		unsigned long long sec = *(const unsigned long long *)field;
		if (sec != 0 && sec % 86400 == 0)
			text_add(&t, "%llud", sec / 86400);
		else if (sec != 0 && sec % 3600 == 0)
			text_add(&t, "%lluh", sec / 3600);
		else if (sec != 0 && sec % 60 == 0)
			text_add(&t, "%llum", sec / 60);
		else
			text_add(&t, "%llus", sec);
		break;
	}
	case T_WORKERS:
		if (*(const int *)field == VALUE_WORKERS_AUTO)
			text_add(&t, "auto");
		else
			text_add(&t, "%d", *(const int *)field);
		break;
	case T_ENUM:
		v = *(const int *)field;
		while (s->names[n] != NULL)
			n++;
		text_add(&t, "%s", v >= 0 && v < n ? s->names[v] : "?");
		break;
	case T_INT:
		if (s->hex)
			text_add(&t, "0x%X", *(const unsigned *)field);
		else
			text_add(&t, "%d", *(const int *)field);
		break;
	case T_ALPN_MAP: {
		const struct alpn_map *m = field;
		if (m->n == 0)
			return -1;
		for (size_t i = 0; i < m->n; i++) {
			text_add(&t, "%s%s=", i ? " " : "", m->v[i].proto);
			for (size_t j = 0; j < m->v[i].pool.n; j++)
				text_add(&t, "%s%s", j ? "," : "", m->v[i].pool.v[j].text);
		}
		break;
	}
	}
	return (int)t.off;
}

int
config_value_text(const struct config *c, const struct host_config *h, enum cfg_key k,
    char *buf, size_t len)
{
	const struct keydef *kd;

	if (len > 0)
		buf[0] = '\0';
	if (k >= K_COUNT)
		return -1;
	kd = &config_keys[k];
	if (kd->scope == S_GLOBAL || kd->scope == S_ACME)
		return value_text(&kd->v, (const char *)&c->g + kd->off, buf, len);
	if (h != NULL)
		return value_text(&kd->v, (const char *)h + kd->off, buf, len);
	return -1;
}
