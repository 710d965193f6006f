/*
 * config.c: see config.h.
 *
 * How a file is read: we hand inih our own line reader (ini_parse_stream),
 * which sees every line before inih does. That lets us count lines (Debian's
 * inih does not pass line numbers to the handler), refuse lines inih would
 * silently split or sections it would silently truncate, and own section
 * headers, so an empty [host] section is noticed too. Values are kept as raw
 * strings with their FILE:LINE until every file is read; then [global],
 * [defaults] and each host are parsed into typed fields, a host falling back
 * to [defaults] and then to the built-in default key by key.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ini.h>
#include <openssl/ssl.h>	/* TLS1_x_VERSION constants only */

#include "config.h"
#include "log.h"
#include "clientauth.h"
#include "sni.h"

/* ------------------------------------------------------------------ */
/* The key table                                                        */

/* T_NAMES is the one type whose key may repeat in a section: each line adds
 * to the list (a host can have more names than one line holds). */
enum vtype {
	T_ADDRS, T_PATH, T_GLOB, T_ADDR, T_NAMES, T_ALPN, T_BOOL, T_PROTOCOLS,
	T_STRING, T_DURATION, T_WORKERS, T_ENUM, T_INT, T_ALLOW, T_CIDRS
};
enum scope { S_GLOBAL = 1, S_DEFAULTS = 2, S_HOST = 4 };
#define S_ANY (S_GLOBAL | S_DEFAULTS | S_HOST)

struct keydef {
	const char *name;
	int scope;
	enum vtype type;
	size_t off;		/* into struct global_config or struct host_config */
	unsigned long long min, max;	/* durations (ms), numbers */
	const char *def;	/* built-in default, NULL: none */
	const char *const *names;	/* T_ENUM: the values, in the order of the enum */
};

static const char *const log_dests[] = { "stderr", "syslog", NULL };	/* enum log_dest */
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const verify_modes[] = { "none", "optional", "required", NULL };
static const char *const host_errors_modes[] = { "fail", "skip", NULL };
static const char *const proxy_sends[] = { "off", "v1", "v2", NULL };	/* enum proxy_send */
static const char *const proxy_certs[] = { "off", "der", "pem", NULL };	/* enum proxy_cert */

#define G(f) offsetof(struct global_config, f)
#define H(f) offsetof(struct host_config, f)
#define HOST_SCOPE (S_DEFAULTS | S_HOST)
#define MS_S 1000ULL
#define MS_DAY (86400ULL * 1000ULL)

static const struct keydef keys[K_COUNT] = {
	[K_G_LISTEN] = { "listen", S_GLOBAL, T_ADDRS, G(listen), 0, 0, "0.0.0.0:443 [::]:443" },
	[K_G_HOSTS] = { "hosts", S_GLOBAL, T_GLOB, G(hosts), 0, 0, SYSCONFDIR "/tlsfront/hosts.d/*.ini" },
	[K_G_WORKERS] = { "workers", S_GLOBAL, T_WORKERS, G(workers), 0, 0, "auto" },
	[K_G_LOG] = { "log", S_GLOBAL, T_ENUM, G(log_dest), 0, 0, "stderr", log_dests },
	[K_G_LOG_LEVEL] = { "log_level", S_GLOBAL, T_ENUM, G(log_level), 0, 0, "info",
	    log_levels },
	[K_G_SHUTDOWN_TIMEOUT] = { "shutdown_timeout", S_GLOBAL, T_DURATION,
	    G(shutdown_timeout_ms), 0, MS_DAY, "30s" },
	[K_G_ACCEPT_PROXY] = { "accept_proxy", S_GLOBAL, T_CIDRS, G(accept_proxy), 0, 0, NULL },
	[K_G_MAX_CONNECTIONS] = { "max_connections", S_GLOBAL, T_INT, G(max_connections),
	    0, 10000000, "0" },
	[K_G_STATS_LISTEN] = { "stats_listen", S_GLOBAL, T_ADDR, G(stats_listen), 0, 0, NULL },
	[K_G_TICKET_KEY_FILE] = { "ticket_key_file", S_GLOBAL, T_PATH, G(ticket_key_file),
	    0, 0, NULL },
	[K_G_TICKET_KEY_ROTATION] = { "ticket_key_rotation", S_GLOBAL, T_DURATION,
	    G(ticket_key_rotation_ms), 1000, 7 * MS_DAY, "12h" },
	[K_G_USER] = { "user", S_GLOBAL, T_STRING, G(user), 0, 0, NULL },
	[K_G_GROUP] = { "group", S_GLOBAL, T_STRING, G(group), 0, 0, NULL },
	[K_G_HOST_ERRORS] = { "host_errors", S_GLOBAL, T_ENUM, G(host_errors), 0, 0, "fail",
	    host_errors_modes },

	[K_CERT] = { "cert", HOST_SCOPE, T_PATH, H(cert), 0, 0, NULL },
	[K_KEY] = { "key", HOST_SCOPE, T_PATH, H(key), 0, 0, NULL },
	[K_BACKEND] = { "backend", HOST_SCOPE, T_ADDR, H(backend), 0, 0, NULL },
	[K_NAMES] = { "names", S_HOST, T_NAMES, H(names), 0, 0, NULL },
	[K_ALPN] = { "alpn", HOST_SCOPE, T_ALPN, H(alpn), 0, 0, NULL },
	[K_LISTEN] = { "listen", HOST_SCOPE, T_ADDRS, H(listen), 0, 0, NULL },
	[K_DEFAULT] = { "default", S_HOST, T_BOOL, H(is_default), 0, 0, "no" },
	[K_PROTOCOLS] = { "protocols", HOST_SCOPE, T_PROTOCOLS, H(protocols), 0, 0,
	    "TLSv1.2 TLSv1.3" },
	[K_CIPHERS] = { "ciphers", HOST_SCOPE, T_STRING, H(ciphers), 0, 0,
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305" },
	[K_CIPHERSUITES] = { "ciphersuites", HOST_SCOPE, T_STRING, H(ciphersuites), 0, 0,
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256" },
	[K_GROUPS] = { "groups", HOST_SCOPE, T_STRING, H(groups), 0, 0,
	    "X25519MLKEM768:X25519:prime256v1:secp384r1" },
	[K_HANDSHAKE_TIMEOUT] = { "handshake_timeout", HOST_SCOPE, T_DURATION,
	    H(handshake_timeout_ms), 100, 3600 * MS_S, "10s" },
	[K_CONNECT_TIMEOUT] = { "connect_timeout", HOST_SCOPE, T_DURATION,
	    H(connect_timeout_ms), 100, 3600 * MS_S, "5s" },
	[K_IDLE_TIMEOUT] = { "idle_timeout", HOST_SCOPE, T_DURATION,
	    H(idle_timeout_ms), 1000, 7 * MS_DAY, "5m" },
	[K_CLIENT_VERIFY] = { "client_verify", HOST_SCOPE, T_ENUM, H(client_verify),
	    0, 0, "none", verify_modes },
	[K_CLIENT_CA] = { "client_ca", HOST_SCOPE, T_PATH, H(client_ca), 0, 0, NULL },
	[K_CLIENT_CRL] = { "client_crl", HOST_SCOPE, T_PATH, H(client_crl), 0, 0, NULL },
	[K_CLIENT_VERIFY_DEPTH] = { "client_verify_depth", HOST_SCOPE, T_INT,
	    H(client_verify_depth), 1, 16, "3" },
	[K_CLIENT_ALLOW] = { "client_allow", HOST_SCOPE, T_ALLOW, H(client_allow), 0, 0, NULL },
	[K_PROXY_PROTOCOL] = { "proxy_protocol", HOST_SCOPE, T_ENUM, H(proxy_protocol), 0, 0,
	    "off", proxy_sends },
	[K_PROXY_CLIENT_CERT] = { "proxy_client_cert", HOST_SCOPE, T_ENUM, H(proxy_client_cert),
	    0, 0, "off", proxy_certs },
	[K_PROXY_CLIENT_CERT_TLV] = { "proxy_client_cert_tlv", HOST_SCOPE, T_INT,
	    H(proxy_client_cert_tlv), 0xE0, 0xEF, "0xE0" },
	[K_MAX_CONNECTIONS] = { "max_connections", HOST_SCOPE, T_INT, H(max_connections),
	    0, 10000000, "0" },
	[K_SESSION_TICKETS] = { "session_tickets", HOST_SCOPE, T_BOOL, H(session_tickets),
	    0, 0, "on" },
	[K_TLS13_TICKETS] = { "tls13_tickets", HOST_SCOPE, T_INT, H(tls13_tickets), 1, 10,
	    "1" },
	[K_SESSION_CACHE_SIZE] = { "session_cache_size", HOST_SCOPE, T_INT,
	    H(session_cache_size), 0, 1000000, "1024" },
	[K_KEYLOG_FILE] = { "keylog_file", HOST_SCOPE, T_PATH, H(keylog_file), 0, 0, NULL },
	[K_OCSP_FILE] = { "ocsp_file", S_HOST, T_PATH, H(ocsp_file), 0, 0, NULL },
};

/* ------------------------------------------------------------------ */
/* Raw sections, as read                                                */

enum sec_kind { SEC_NONE, SEC_GLOBAL, SEC_DEFAULTS, SEC_HOST, SEC_IGNORED };

struct raw_alpn_backend {
	char *proto;
	char *val;
	struct loc at;
	int bad;		/* [defaults]: already reported */
};

/* A line of a key that may repeat (T_NAMES), after its first. */
struct raw_line {
	int key;
	char *val;
	struct loc at;
};

struct raw_section {
	enum sec_kind kind;
	char *label;
	struct loc at;
	char *val[K_COUNT];	/* the first line of each key */
	struct loc loc[K_COUNT];
	struct raw_line *more;	/* further lines of repeatable keys, in order */
	size_t n_more;
	struct raw_alpn_backend *ab;
	size_t n_ab;
	int bad;		/* an error was reported inside this section */
};

struct loader {
	struct config *c;
	struct diag *d;
	/* the file being read */
	const char *file;		/* interned */
	int is_main;
	int lineno;
	const char *buf;
	size_t pos, len;
	/* what was read */
	struct raw_section global, defaults, ignored;
	struct raw_section *hosts;
	size_t n_hosts, cap_hosts;
	struct raw_section *cur;
};

static void
raw_free(struct raw_section *r)
{
	free(r->label);
	for (int k = 0; k < K_COUNT; k++)
		free(r->val[k]);
	for (size_t i = 0; i < r->n_more; i++)
		free(r->more[i].val);
	free(r->more);
	for (size_t i = 0; i < r->n_ab; i++) {
		free(r->ab[i].proto);
		free(r->ab[i].val);
	}
	free(r->ab);
	memset(r, 0, sizeof(*r));
}

static const char *
intern_file(struct config *c, const char *name)
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
here(const struct loader *l)
{
	struct loc at = { l->file, l->lineno };
	return at;
}

/* An error on the current line, inside the current section (which it marks
 * bad, so that no follow-on error is reported for that host). */
static void __attribute__((format(printf, 2, 3)))
line_error(struct loader *l, const char *fmt, ...)
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
begin_section(struct loader *l, const char *name, size_t len)
{
	static const char label_chars[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

	if (len > CONFIG_MAX_SECTION) {
		diag_error_at(l->d, here(l), "section name is %zu bytes long; "
		    "the limit is %d (libinih would cut it)", len, CONFIG_MAX_SECTION);
		return &l->ignored;
	}
	if ((len == 6 && memcmp(name, "global", 6) == 0) ||
	    (len == 8 && memcmp(name, "defaults", 8) == 0)) {
		struct raw_section *s = len == 6 ? &l->global : &l->defaults;
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
		s->kind = len == 6 ? SEC_GLOBAL : SEC_DEFAULTS;
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
	    "[defaults] or [host LABEL])", (int)len, name);
	return &l->ignored;
}

/*
 * The line reader given to inih. Returns the next line, cleaned, in str; or
 * an empty line in place of a line we have already reported as an error.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct loader *l = stream;
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

static const struct keydef *
find_key(const char *name, int scope, int *id)
{
	for (int k = 0; k < K_COUNT; k++)
		if ((keys[k].scope & scope) && strcmp(keys[k].name, name) == 0) {
			*id = k;
			return &keys[k];
		}
	return NULL;
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
		if ((keys[k].scope & scope) && (dist = near_name(typed, keys[k].name)) >= 0 &&
		    dist < best_dist) {
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
	if (scope == S_DEFAULTS)
		return "[defaults]";
	if (scope == S_HOST)
		return "a [host] section";
	if (scope == (S_DEFAULTS | S_HOST))
		return "[defaults] or a [host] section";
	return "any section";
}

/*
 * Report `name`, not a key of `scope`: a key of another section says where
 * it belongs; a near miss of a key says which ("did you mean"), preferring
 * the keys of this section; backend.PROTO lines are matched on "backend".
 */
static void
unknown_key(struct loader *l, const char *name, int scope)
{
	const char *dot = strchr(name, '.');
	int k;

	if (dot != NULL) {
		/* backend.PROTO, misspelt or in [global] */
		char head[NEAR_LEN + 1];
		size_t hl = (size_t)(dot - name);
		int in_scope = (scope & keys[K_BACKEND].scope) != 0;

		if (hl <= NEAR_LEN) {
			memcpy(head, name, hl);
			head[hl] = '\0';
			if (near_name(head, "backend") >= 0) {
				if (in_scope)
					line_error(l, "unknown key '%s' (did you mean 'backend%s'?)",
					    name, dot);
				else
					line_error(l, "unknown key '%s' (backend.PROTO lines belong "
					    "in %s)", name, scope_text(keys[K_BACKEND].scope));
				return;
			}
		}
	} else if (find_key(name, S_ANY, &k) != NULL) {
		line_error(l, "key '%s' is not allowed in %s (it belongs in %s)", name,
		    scope_text(scope), scope_text(keys[k].scope));
		return;
	} else if ((k = nearest_key(name, scope)) >= 0) {
		line_error(l, "unknown key '%s' (did you mean '%s'?)", name, keys[k].name);
		return;
	} else if ((k = nearest_key(name, S_ANY & ~scope)) >= 0) {
		line_error(l, "unknown key '%s' (did you mean '%s'? it belongs in %s)", name,
		    keys[k].name, scope_text(keys[k].scope));
		return;
	}
	line_error(l, "unknown key '%s'", name);
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;
	struct raw_section *s = l->cur;
	int scope, id;

	(void)section;	/* we track sections ourselves, in reader() */
	if (s == NULL) {
		line_error(l, "'%s' outside any section", name);
		return 1;
	}
	if (s->kind == SEC_IGNORED)
		return 1;	/* its header was already reported */
	scope = s->kind == SEC_GLOBAL ? S_GLOBAL :
	    s->kind == SEC_DEFAULTS ? S_DEFAULTS : S_HOST;
	if (*value == '\0') {
		line_error(l, "'%s' has an empty value", name);
		return 1;
	}
	if (scope != S_GLOBAL && strncmp(name, "backend.", 8) == 0) {
		const char *proto = name + 8;
		if (*proto == '\0' || strlen(proto) > 255) {
			line_error(l, "'%s': expected backend.PROTOCOL", name);
			return 1;
		}
		for (size_t i = 0; i < s->n_ab; i++)
			if (strcmp(s->ab[i].proto, proto) == 0) {
				line_error(l, "duplicate key '%s' (first at line %d)",
				    name, s->ab[i].at.line);
				return 1;
			}
		struct raw_alpn_backend *ab = realloc(s->ab, (s->n_ab + 1) * sizeof(*ab));
		if (ab == NULL)
			return 1;
		s->ab = ab;
		ab[s->n_ab].proto = strdup(proto);
		ab[s->n_ab].val = strdup(value);
		ab[s->n_ab].at = here(l);
		ab[s->n_ab].bad = 0;
		s->n_ab++;
		return 1;
	}
	if (find_key(name, scope, &id) == NULL) {
		unknown_key(l, name, scope);
		return 1;
	}
	if (s->val[id] != NULL && keys[id].type == T_NAMES) {
		/* a repeatable key: the line adds to the first */
		struct raw_line *m = realloc(s->more, (s->n_more + 1) * sizeof(*m));
		if (m == NULL)
			return 1;
		s->more = m;
		if ((m[s->n_more].val = strdup(value)) == NULL)
			return 1;
		m[s->n_more].key = id;
		m[s->n_more].at = here(l);
		s->n_more++;
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

/* Read and parse one file. Returns 0, or -1 if it could not be read (reported). */
static int
read_file(struct loader *l, const char *path, int is_main, struct loc ref)
{
	char *buf;
	size_t len;

	if (slurp(path, l->d, ref, &buf, &len) != 0)
		return -1;
	l->file = intern_file(l->c, path);
	l->is_main = is_main;
	l->lineno = 0;
	l->buf = buf;
	l->pos = 0;
	l->len = len;
	l->cur = NULL;
	(void)ini_parse_stream(reader, l, handler, l);
	free(buf);
	l->buf = NULL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Typed values                                                         */

int
config_parse_duration(const char *s, unsigned long long max_ms, unsigned *out_ms)
{
	unsigned long long v = 0, mult;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long long)(*p - '0');
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

static int
tok_allow(const char *tok, void *arg)
{
	struct tok_ctx *t = arg;
	struct allow_list check = { NULL, 0 };
	int rc = allow_list_add(&check, tok, t->err, t->errlen);

	allow_list_free(&check);
	return rc != 0 ? -1 : str_list_add(t->list, tok);
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

static int
tok_proto(const char *tok, void *arg)
{
	static const struct { const char *name; int v; } names[] = {
		{ "TLSv1", TLS1_VERSION }, { "TLSv1.0", TLS1_VERSION },
		{ "TLSv1.1", TLS1_1_VERSION }, { "TLSv1.2", TLS1_2_VERSION },
		{ "TLSv1.3", TLS1_3_VERSION },
	};
	struct tok_ctx *t = arg;
	struct proto_range *r = t->list;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(tok, names[i].name) == 0) {
			if (r->min == 0 || names[i].v < r->min)
				r->min = names[i].v;
			if (names[i].v > r->max)
				r->max = names[i].v;
			return 0;
		}
	snprintf(t->err, t->errlen, "unknown protocol '%s' (expected TLSv1.2, TLSv1.3, "
	    "or the obsolete TLSv1 and TLSv1.1)", tok);
	return -1;
}

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

static void
free_value(const struct keydef *k, void *field)
{
	switch (k->type) {
	case T_ADDRS:
		free(((struct addr_list *)field)->v);
		memset(field, 0, sizeof(struct addr_list));
		break;
	case T_CIDRS:
		free(((struct cidr_list *)field)->v);
		memset(field, 0, sizeof(struct cidr_list));
		break;
	case T_NAMES:
	case T_ALPN:
	case T_ALLOW: {
		struct str_list *sl = field;
		for (size_t i = 0; i < sl->n; i++)
			free(sl->v[i]);
		free(sl->v);
		memset(sl, 0, sizeof(*sl));
		break;
	}
	case T_PATH:
	case T_GLOB:
	case T_STRING:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	default:
		break;
	}
}

/* Parse one value into its typed field. Returns 0, or -1 with err set. */
static int
parse_value(const struct keydef *k, const char *val, struct loc at, void *field,
    char *err, size_t errlen)
{
	struct tok_ctx t = { err, errlen, field };

	err[0] = '\0';
	switch (k->type) {
	case T_ADDRS:
	case T_NAMES:
	case T_ALPN:
	case T_ALLOW:
	case T_CIDRS:
	case T_PROTOCOLS: {
		int (*cb)(const char *, void *) = k->type == T_ADDRS ? tok_addr :
		    k->type == T_CIDRS ? tok_cidr :
		    k->type == T_NAMES ? tok_name : k->type == T_ALPN ? tok_alpn :
		    k->type == T_ALLOW ? tok_allow : tok_proto;
		if (k->type == T_PROTOCOLS)
			memset(field, 0, sizeof(struct proto_range));
		if (each_token(val, cb, &t) != 0) {
			free_value(k, field);
			if (err[0] == '\0')
				snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (k->type == T_PROTOCOLS) {
			struct proto_range *r = field;
			if (r->min == 0) {
				snprintf(err, errlen, "no protocol given");
				return -1;
			}
		}
		if (k->type == T_ADDRS && ((struct addr_list *)field)->n == 0) {
			snprintf(err, errlen, "no address given");
			return -1;
		}
		return 0;
	}
	case T_PATH:
	case T_GLOB:
		if ((*(char **)field = resolve_path(val, at.file)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	case T_STRING:
	{
		/* accept "A B C" and "A, B" as well as OpenSSL's "A:B:C" */
		char *out = malloc(strlen(val) + 1), *o = out;
		if (out == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (const char *p = val; *p; p++) {
			char ch = (*p == ' ' || *p == '\t' || *p == ',') ? ':' : *p;
			if (ch != ':' || (o > out && o[-1] != ':'))
				*o++ = ch;
		}
		if (o > out && o[-1] == ':')
			o--;
		*o = '\0';
		*(char **)field = out;
		return 0;
	}
	case T_ADDR:
		return addr_parse(val, field, err, errlen);
	case T_BOOL:
		if (parse_bool(val, field) != 0) {
			snprintf(err, errlen, "expected yes or no, not '%s'", val);
			return -1;
		}
		return 0;
	case T_DURATION:
		if (config_parse_duration(val, k->max, field) != 0 ||
		    *(unsigned *)field < k->min) {
			snprintf(err, errlen, "bad duration '%s' (expected e.g. 250ms, 10s, 5m, "
			    "1h; between %llums and %llus)", val, k->min, k->max / 1000);
			return -1;
		}
		return 0;
	case T_WORKERS: {
		char *end;
		long n;
		if (strcmp(val, "auto") == 0) {
			n = sysconf(_SC_NPROCESSORS_ONLN);
			*(int *)field = n < 1 ? 1 : n > 256 ? 256 : (int)n;
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
	}
	case T_ENUM: {
		size_t n = 0, off = 0;
		for (; k->names[n] != NULL; n++)
			if (strcmp(val, k->names[n]) == 0) {
				*(int *)field = (int)n;
				return 0;
			}
		off = (size_t)snprintf(err, errlen, "expected");
		for (size_t i = 0; i < n && off < errlen; i++)
			off += (size_t)snprintf(err + off, errlen - off, "%s %s",
			    i == 0 ? "" : i + 1 == n ? " or" : ",", k->names[i]);
		if (off < errlen)
			snprintf(err + off, errlen - off, ", not '%s'", val);
		return -1;
	}
	case T_INT: {
		char *end;
		long n;
		errno = 0;
		n = strtol(val, &end, val[0] == '0' && (val[1] == 'x' || val[1] == 'X') ? 16 : 10);
		if (errno || *end || end == val || n < (long)k->min || n > (long)k->max) {
			snprintf(err, errlen, "expected a number %llu..%llu, not '%s'", k->min,
			    k->max, val);
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	}
	}
	return -1;
}

/* A name of a repeatable list, and where it is in it. */
struct listed {
	const char *name;
	size_t i;
};

static int
cmp_listed(const void *a, const void *b)
{
	const struct listed *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Parse every line of key k (a T_NAMES key, which may repeat) of section r
 * into the list `field`, each line adding to it. A name given twice is an
 * error at its second place: on one line as parse_value reports it, on two
 * lines naming the first (found by sorting, so that many lines of names
 * cost n log n). Returns the number of errors; with errors the list is
 * left empty.
 */
static int
apply_repeated(struct loader *l, const struct raw_section *r, int k, struct str_list *field)
{
	const struct keydef *kd = &keys[k];
	struct str_list all = { NULL, 0 };
	int *lines = NULL, errors = 0;
	char err[512];

	for (size_t m = 0; m <= r->n_more; m++) {
		struct str_list one = { NULL, 0 };
		struct loc at = r->loc[k];
		const char *v = r->val[k];

		if (m > 0) {
			if (r->more[m - 1].key != k)
				continue;
			v = r->more[m - 1].val;
			at = r->more[m - 1].at;
		}
		if (parse_value(kd, v, at, &one, err, sizeof(err)) != 0) {
			diag_error_at(l->d, at, "%s: %s", kd->name, err);
			errors++;
			continue;
		}
		char **nv = realloc(all.v, (all.n + one.n + 1) * sizeof(*nv));
		int *nl = realloc(lines, (all.n + one.n + 1) * sizeof(*nl));
		if (nv != NULL)
			all.v = nv;
		if (nl != NULL)
			lines = nl;
		if (nv == NULL || nl == NULL) {
			free_value(kd, &one);
			diag_error_at(l->d, at, "out of memory");
			errors++;
			break;
		}
		for (size_t i = 0; i < one.n; i++) {
			lines[all.n] = at.line;
			all.v[all.n++] = one.v[i];
		}
		free(one.v);
	}

	/* the same name on two lines */
	struct listed *sorted = all.n > 1 ? malloc(all.n * sizeof(*sorted)) : NULL;
	size_t *first = all.n > 1 ? malloc(all.n * sizeof(*first)) : NULL;
	if (all.n > 1 && (sorted == NULL || first == NULL)) {
		diag_error_at(l->d, r->loc[k], "out of memory");
		errors++;
	} else if (all.n > 1) {
		for (size_t i = 0; i < all.n; i++) {
			sorted[i].name = all.v[i];
			sorted[i].i = i;
			first[i] = i;
		}
		qsort(sorted, all.n, sizeof(*sorted), cmp_listed);
		for (size_t i = 1; i < all.n; i++)
			if (strcmp(sorted[i].name, sorted[i - 1].name) == 0)
				first[sorted[i].i] = first[sorted[i - 1].i];
		for (size_t i = 0; i < all.n; i++)
			if (first[i] != i) {
				struct loc at = { r->loc[k].file, lines[i] };
				diag_error_at(l->d, at, "%s: '%s' is listed twice (first at line %d)",
				    kd->name, all.v[i], lines[first[i]]);
				errors++;
			}
	}
	free(sorted);
	free(first);
	free(lines);
	if (errors > 0)
		free_value(kd, &all);
	*field = all;
	return errors;
}

/*
 * Fill the typed fields of `base` (a global_config or host_config) for every
 * key of `scope`, taking each value from `own`, else `fallback`, else the
 * built-in default. Values of `fallback` whose bit is set in `bad` already
 * failed and are not reported again. Returns the number of errors.
 */
static int
apply_section(struct loader *l, int scope, const struct raw_section *own,
    const struct raw_section *fallback, const unsigned char *bad, void *base,
    struct loc *locs, unsigned char *bad_out)
{
	int errors = 0;
	char err[512];

	for (int k = 0; k < K_COUNT; k++) {
		const struct keydef *kd = &keys[k];
		const char *v = NULL;
		struct loc at = { l->c->main_file, 0 };

		if (!(kd->scope & scope))
			continue;
		if (own && own->val[k]) {
			v = own->val[k];
			at = own->loc[k];
		} else if (fallback && fallback->val[k]) {
			if (bad && bad[k])
				continue;
			v = fallback->val[k];
			at = fallback->loc[k];
		} else if (kd->def) {
			v = kd->def;
		} else {
			continue;
		}
		if (kd->type == T_NAMES && own && own->val[k]) {
			/* a key that may repeat: every line of it */
			int n = apply_repeated(l, own, k, (struct str_list *)((char *)base + kd->off));
			if (n > 0) {
				if (bad_out)
					bad_out[k] = 1;
				errors += n;
				continue;
			}
		} else if (parse_value(kd, v, at, (char *)base + kd->off, err, sizeof(err)) != 0) {
			diag_error_at(l->d, at, "%s: %s", kd->name, err);
			if (bad_out)
				bad_out[k] = 1;
			errors++;
			continue;
		}
		locs[k] = at;
	}
	return errors;
}

static void
build_host(struct loader *l, const struct raw_section *r, struct host_config *h,
    const unsigned char *defaults_bad)
{
	struct raw_section *df = &l->defaults;
	char err[512];

	h->label = strdup(r->label);
	h->at = r->at;
	apply_section(l, S_HOST, r, df->kind ? df : NULL, defaults_bad, h, h->loc, NULL);
	if (h->cert == NULL && !(defaults_bad[K_CERT] && !r->val[K_CERT]))
		diag_error_at(l->d, h->at, "host '%s' has no 'cert'", h->label);
	if (h->key == NULL && !(defaults_bad[K_KEY] && !r->val[K_KEY]))
		diag_error_at(l->d, h->at, "host '%s' has no 'key'", h->label);
	if (h->backend.len == 0 && !r->val[K_BACKEND] && !defaults_bad[K_BACKEND])
		diag_error_at(l->d, h->at, "host '%s' has no 'backend'", h->label);
	if (h->client_verify != CLIENT_VERIFY_NONE && h->client_ca == NULL &&
	    !defaults_bad[K_CLIENT_CA])
		diag_error_at(l->d, h->loc[K_CLIENT_VERIFY], "client_verify: host '%s' verifies "
		    "client certificates but has no 'client_ca'", h->label);
	if (h->proxy_client_cert != PROXY_CERT_OFF && h->proxy_protocol != PROXY_SEND_V2)
		diag_error_at(l->d, h->loc[K_PROXY_CLIENT_CERT], "proxy_client_cert: host '%s' "
		    "sends the client certificate only in PROXY v2 headers; set proxy_protocol "
		    "= v2", h->label);
	if (h->client_verify == CLIENT_VERIFY_NONE && h->loc[K_CLIENT_VERIFY].file != NULL) {
		static const int needs_verify[] = { K_CLIENT_ALLOW, K_CLIENT_CRL };
		for (size_t i = 0; i < 2; i++)
			if (r->val[needs_verify[i]] != NULL)
				diag_error_at(l->d, r->loc[needs_verify[i]], "%s: has no effect "
				    "with client_verify = none", keys[needs_verify[i]].name);
	}
	if (h->listen.n == 0 && l->c->g.listen.n > 0 && !r->val[K_LISTEN]) {
		h->listen.v = malloc(l->c->g.listen.n * sizeof(struct addr));
		if (h->listen.v) {
			memcpy(h->listen.v, l->c->g.listen.v, l->c->g.listen.n * sizeof(struct addr));
			h->listen.n = l->c->g.listen.n;
			h->loc[K_LISTEN] = l->c->g.loc[K_G_LISTEN];
		}
	}

	/* backend.PROTO: the host's own lines, then those of [defaults] it does not override */
	size_t total = r->n_ab + df->n_ab;
	h->alpn_backends = total ? calloc(total, sizeof(*h->alpn_backends)) : NULL;
	for (int pass = 0; pass < 2; pass++) {
		const struct raw_section *src = pass == 0 ? r : df;
		for (size_t i = 0; i < src->n_ab; i++) {
			const struct raw_alpn_backend *ab = &src->ab[i];
			int dup = 0, listed = 0;

			for (size_t j = 0; j < h->n_alpn_backends; j++)
				if (strcmp(h->alpn_backends[j].proto, ab->proto) == 0)
					dup = 1;
			if (dup || h->alpn_backends == NULL)
				continue;
			for (size_t j = 0; j < h->alpn.n; j++)
				if (strcmp(h->alpn.v[j], ab->proto) == 0)
					listed = 1;
			if (!listed) {
				if (pass == 0)
					diag_error_at(l->d, ab->at, "backend.%s: '%s' is not in this "
					    "host's alpn list", ab->proto, ab->proto);
				continue;
			}
			if (ab->bad) {
				h->bad = 1;	/* a [defaults] value already reported */
				continue;
			}
			struct alpn_backend *out = &h->alpn_backends[h->n_alpn_backends];
			if (addr_parse(ab->val, &out->addr, err, sizeof(err)) != 0) {
				diag_error_at(l->d, ab->at, "backend.%s: %s", ab->proto, err);
				continue;
			}
			out->proto = strdup(ab->proto);
			out->at = ab->at;
			h->n_alpn_backends++;
		}
	}
}

static void
host_config_free(struct host_config *h)
{
	for (int k = 0; k < K_COUNT; k++)
		if (keys[k].scope & S_HOST)
			free_value(&keys[k], (char *)h + keys[k].off);
	for (size_t i = 0; i < h->n_alpn_backends; i++)
		free(h->alpn_backends[i].proto);
	free(h->alpn_backends);
	free(h->label);
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_hosts; i++)
		host_config_free(&c->hosts[i]);
	free(c->hosts);
	for (int k = 0; k < K_COUNT; k++)
		if (keys[k].scope & S_GLOBAL)
			free_value(&keys[k], (char *)&c->g + keys[k].off);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->main_file);
	free(c);
}

/* A missing hosts directory is no host file, not an error. */
static int
glob_error(const char *path, int err)
{
	(void)path;
	return err != ENOENT && err != ENOTDIR;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct config *
config_load(const char *main_file, struct diag *d)
{
	size_t errors_before = d->n_errors;
	struct config *c = config_load_all(main_file, d);

	if (c != NULL && d->n_errors > errors_before) {
		config_free(c);
		return NULL;
	}
	return c;
}

struct config *
config_load_all(const char *main_file, struct diag *d)
{
	struct loader l;
	struct config *c;
	unsigned char defaults_bad[K_COUNT] = { 0 };

#if HAVE_DECL_INI_ALLOW_MULTILINE
	ini_allow_multiline = 0;	/* an indented line is a line, not a continuation */
#endif
	memset(&l, 0, sizeof(l));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	l.c = c;
	l.d = d;
	l.ignored.kind = SEC_IGNORED;
	/* relative paths in the files resolve against the file's directory,
	 * so that directory must be absolute whatever our working directory */
	char cwd[PATH_MAX];
	if (main_file[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
		if (asprintf(&c->main_file, "%s/%s", cwd, main_file) < 0)
			c->main_file = NULL;
	} else {
		c->main_file = strdup(main_file);
	}
	if (c->main_file == NULL) {
		free(c);
		return NULL;
	}
	main_file = c->main_file;

	struct loc none = { intern_file(c, main_file), 0 };
	if (read_file(&l, main_file, 1, none) != 0)
		goto out;	/* nothing else to say: the defaults would only add noise */

	/* [global] first: it names the host files */
	apply_section(&l, S_GLOBAL, l.global.kind ? &l.global : NULL, NULL, NULL, &c->g,
	    c->g.loc, NULL);
	/* [defaults] alone, so that each bad value is reported once */
	if (l.defaults.kind) {
		struct host_config tmp;
		memset(&tmp, 0, sizeof(tmp));
		for (int k = 0; k < K_COUNT; k++) {
			char err[512];
			if (!(keys[k].scope & S_DEFAULTS) || !l.defaults.val[k])
				continue;
			if (parse_value(&keys[k], l.defaults.val[k], l.defaults.loc[k],
			    (char *)&tmp + keys[k].off, err, sizeof(err)) != 0) {
				diag_error_at(d, l.defaults.loc[k], "%s: %s", keys[k].name, err);
				defaults_bad[k] = 1;
			}
		}
		host_config_free(&tmp);
		for (size_t i = 0; i < l.defaults.n_ab; i++) {
			struct raw_alpn_backend *ab = &l.defaults.ab[i];
			struct addr a;
			char err[512];
			if (addr_parse(ab->val, &a, err, sizeof(err)) != 0) {
				diag_error_at(d, ab->at, "backend.%s: %s", ab->proto, err);
				ab->bad = 1;
			}
		}
	}

	if (c->g.hosts != NULL) {
		glob_t gl;
		int rc = glob(c->g.hosts, 0, glob_error, &gl);
		if (rc == 0) {
			qsort(gl.gl_pathv, gl.gl_pathc, sizeof(char *), cmp_str);
			for (size_t i = 0; i < gl.gl_pathc; i++)
				read_file(&l, gl.gl_pathv[i], 0, c->g.loc[K_G_HOSTS]);
			globfree(&gl);
		} else if (rc != GLOB_NOMATCH) {
			diag_error_at(d, c->g.loc[K_G_HOSTS], "hosts: cannot read '%s'", c->g.hosts);
			globfree(&gl);
		}
	}

	if (l.n_hosts == 0) {
		diag_error(d, c->main_file, 0, "no [host LABEL] section found (hosts = %s)",
		    c->g.hosts ? c->g.hosts : "-");
	} else if ((c->hosts = calloc(l.n_hosts, sizeof(*c->hosts))) != NULL) {
		for (size_t i = 0; i < l.n_hosts; i++) {
			size_t before = d->n_errors;
			struct host_config *h = &c->hosts[c->n_hosts++];

			build_host(&l, &l.hosts[i], h, defaults_bad);
			for (int k = 0; k < K_COUNT; k++)
				if (defaults_bad[k] && !l.hosts[i].val[k])
					h->bad = 1;	/* inherits a value that failed */
			if (d->n_errors > before || l.hosts[i].bad)
				h->bad = 1;
		}
	}

out:
	raw_free(&l.global);
	raw_free(&l.defaults);
	for (size_t i = 0; i < l.n_hosts; i++)
		raw_free(&l.hosts[i]);
	free(l.hosts);
	return c;
}

/* ------------------------------------------------------------------ */
/* Values as text (for tlsfront -T)                                    */

const char *
config_key_name(enum cfg_key k)
{
	return k < K_COUNT ? keys[k].name : "?";
}

int
config_key_is_global(enum cfg_key k)
{
	return k < K_COUNT && keys[k].scope == S_GLOBAL;
}

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

int
config_value_text(const struct config *c, const struct host_config *h, enum cfg_key k,
    char *buf, size_t len)
{
	static const struct { int v; const char *name; } versions[] = {
		{ TLS1_VERSION, "TLSv1" }, { TLS1_1_VERSION, "TLSv1.1" },
		{ TLS1_2_VERSION, "TLSv1.2" }, { TLS1_3_VERSION, "TLSv1.3" },
	};
	struct text t = { buf, len, 0 };
	const struct keydef *kd;
	const char *field;

	if (len > 0)
		buf[0] = '\0';
	if (k >= K_COUNT)
		return -1;
	kd = &keys[k];
	if (kd->scope == S_GLOBAL)
		field = (const char *)&c->g + kd->off;
	else if (h != NULL)
		field = (const char *)h + kd->off;
	else
		return -1;
	switch (kd->type) {
	case T_ADDRS: {
		const struct addr_list *al = (const void *)field;
		if (al->n == 0)
			return -1;
		for (size_t i = 0; i < al->n; i++)
			text_add(&t, "%s%s", i ? " " : "", al->v[i].text);
		break;
	}
	case T_CIDRS: {
		const struct cidr_list *cl = (const void *)field;
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
	case T_ALLOW: {
		const struct str_list *sl = (const void *)field;
		if (sl->n == 0)
			return -1;
		for (size_t i = 0; i < sl->n; i++)
			text_add(&t, "%s%s", i ? " " : "", sl->v[i]);
		break;
	}
	case T_PATH:
	case T_GLOB:
	case T_STRING: {
		const char *v = *(char *const *)(const void *)field;
		if (v == NULL)
			return -1;
		text_add(&t, "%s", v);
		break;
	}
	case T_ADDR: {
		const struct addr *a = (const void *)field;
		if (a->len == 0)
			return -1;
		text_add(&t, "%s", a->text);
		break;
	}
	case T_BOOL:
		text_add(&t, "%s", *(const int *)(const void *)field ? "yes" : "no");
		break;
	case T_PROTOCOLS: {
		const struct proto_range *r = (const void *)field;
		int n = 0;
		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
			if (versions[i].v >= r->min && versions[i].v <= r->max)
				text_add(&t, "%s%s", n++ ? " " : "", versions[i].name);
		break;
	}
	case T_DURATION:
		duration_text(&t, *(const unsigned *)(const void *)field);
		break;
	case T_WORKERS:
		text_add(&t, "%d", *(const int *)(const void *)field);
		break;
	case T_ENUM: {
		int v = *(const int *)(const void *)field, n = 0;
		while (kd->names[n] != NULL)
			n++;
		text_add(&t, "%s", v >= 0 && v < n ? kd->names[v] : "?");
		break;
	}
	case T_INT:
		/* written in hex where the default is */
		if (kd->def != NULL && strncmp(kd->def, "0x", 2) == 0)
			text_add(&t, "0x%X", *(const unsigned *)(const void *)field);
		else
			text_add(&t, "%d", *(const int *)(const void *)field);
		break;
	}
	return (int)t.off;
}
