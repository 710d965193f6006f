/*
 * config.c: see config.h.
 *
 * The key table, and turning what config_read.c read into a config. Values
 * are kept as raw strings with their FILE:LINE until every file is read;
 * then [global] is parsed, then [defaults] once, over the built-in
 * defaults, into typed values (`dflt`); each host parses its own values and
 * copies the rest from dflt, key by key. So a [defaults] value is parsed,
 * reported and (a host name) resolved once, however many hosts inherit it.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_keys.h"
#include "config_read.h"
#include "config_value.h"

/* ------------------------------------------------------------------ */
/* The key table                                                        */

static const char *const log_dests[] = { "stderr", "syslog", NULL };	/* enum log_dest */
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const verify_modes[] = { "none", "optional", "required", NULL };
static const char *const host_errors_modes[] = { "fail", "skip", NULL };
static const char *const proxy_sends[] = { "off", "v1", "v2", NULL };	/* enum proxy_send */
static const char *const proxy_certs[] = { "off", "der", "pem", NULL };	/* enum proxy_cert */
static const char *const acme_key_types[] = { "ec256", "ec384", "rsa2048", "rsa4096", NULL };
static const char *const balances[] = { "roundrobin", "leastconn", "first", NULL };
static const char *const health_checks[] = { "off", "tcp", NULL };	/* enum health_check */
static const char *const https_url[] = { "https://", NULL };	/* T_URL's scheme */
static const char *const mailto_url[] = { "mailto:", NULL };

#define G(f) offsetof(struct global_config, f)
#define H(f) offsetof(struct host_config, f)
#define HOST_SCOPE (S_DEFAULTS | S_HOST)
#define MS_S 1000ULL
#define MS_DAY (86400ULL * 1000ULL)
#define S_DAY 86400ULL

/* Each row's default comes last: tests/e2e read the table (t_docs_config,
 * t_testssl). */
const struct keydef config_keys[K_TABLE] = {
	[K_G_LISTEN] = { "listen", S_GLOBAL, G(listen), { T_ADDRS }, "0.0.0.0:443 [::]:443" },
	[K_G_HOSTS] = { "hosts", S_GLOBAL, G(hosts), { T_GLOB },
	    SYSCONFDIR "/tlsfront/hosts.d/*.ini" },
	[K_G_WORKERS] = { "workers", S_GLOBAL, G(workers), { T_WORKERS }, "auto" },
	[K_G_LOG] = { "log", S_GLOBAL, G(log_dest), { T_ENUM, .names = log_dests }, "stderr" },
	[K_G_LOG_LEVEL] = { "log_level", S_GLOBAL, G(log_level),
	    { T_ENUM, .names = log_levels }, "info" },
	[K_G_SHUTDOWN_TIMEOUT] = { "shutdown_timeout", S_GLOBAL, G(shutdown_timeout_ms),
	    { T_DURATION, 0, MS_DAY }, "30s" },
	[K_G_ACCEPT_PROXY] = { "accept_proxy", S_GLOBAL, G(accept_proxy), { T_CIDRS }, NULL },
	[K_G_MAX_CONNECTIONS] = { "max_connections", S_GLOBAL, G(max_connections),
	    { T_INT, 0, 10000000 }, "0" },
	[K_G_STATS_LISTEN] = { "stats_listen", S_GLOBAL, G(stats_listen), { T_ADDR }, NULL },
	[K_G_TICKET_KEY_FILE] = { "ticket_key_file", S_GLOBAL, G(ticket_key_file), { T_PATH },
	    NULL },
	[K_G_TICKET_KEY_ROTATION] = { "ticket_key_rotation", S_GLOBAL,
	    G(ticket_key_rotation_ms), { T_DURATION, 1000, 7 * MS_DAY }, "12h" },
	[K_G_USER] = { "user", S_GLOBAL, G(user), { T_STRING }, NULL },
	[K_G_GROUP] = { "group", S_GLOBAL, G(group), { T_STRING }, NULL },
	[K_G_HOST_ERRORS] = { "host_errors", S_GLOBAL, G(host_errors),
	    { T_ENUM, .names = host_errors_modes }, "fail" },

	/* [acme]: read by the ACME child (acme.h); directory turns it on */
	[K_A_DIRECTORY] = { "directory", S_ACME, G(acme.directory),
	    { T_URL, .names = https_url }, NULL },
	[K_A_CONTACT] = { "contact", S_ACME, G(acme.contact), { T_URL, .names = mailto_url },
	    NULL },
	[K_A_DIRECTORY_CA] = { "directory_ca", S_ACME, G(acme.directory_ca), { T_PATH }, NULL },
	[K_A_STATE_DIR] = { "state_dir", S_ACME, G(acme.state_dir), { T_PATH },
	    "/var/lib/tlsfront/acme" },
	/* longer than T_DURATION's 49 days; above any lifetime is allowed (the
	 * client renews once and warns) */
	[K_A_RENEW_BEFORE] = { "renew_before", S_ACME, G(acme.renew_before_s),
	    { T_SECONDS, 3600, 3650 * S_DAY }, NULL },
	[K_A_KEY_TYPE] = { "key_type", S_ACME, G(acme.key_type),
	    { T_ENUM, .names = acme_key_types }, "ec256" },

	[K_CERT] = { "cert", HOST_SCOPE, H(cert), { T_PATH }, NULL },
	[K_KEY] = { "key", HOST_SCOPE, H(key), { T_PATH }, NULL },
	[K_BACKEND] = { "backend", HOST_SCOPE, H(backend), { T_POOL }, NULL },
	[K_NAMES] = { "names", S_HOST, H(names), { T_NAMES }, NULL },
	[K_ALPN] = { "alpn", HOST_SCOPE, H(alpn), { T_ALPN }, NULL },
	[K_LISTEN] = { "listen", HOST_SCOPE, H(listen), { T_ADDRS }, NULL },
	[K_DEFAULT] = { "default", S_HOST, H(is_default), { T_BOOL }, "no" },
	[K_PROTOCOLS] = { "protocols", HOST_SCOPE, H(protocols), { T_PROTOCOLS },
	    "TLSv1.2 TLSv1.3" },
	[K_CIPHERS] = { "ciphers", HOST_SCOPE, H(ciphers), { T_STRING },
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305" },
	[K_CIPHERSUITES] = { "ciphersuites", HOST_SCOPE, H(ciphersuites), { T_STRING },
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256" },
	[K_GROUPS] = { "groups", HOST_SCOPE, H(groups), { T_STRING },
	    "X25519MLKEM768:X25519:prime256v1:secp384r1" },
	[K_HANDSHAKE_TIMEOUT] = { "handshake_timeout", HOST_SCOPE, H(handshake_timeout_ms),
	    { T_DURATION, 100, 3600 * MS_S }, "10s" },
	[K_CONNECT_TIMEOUT] = { "connect_timeout", HOST_SCOPE, H(connect_timeout_ms),
	    { T_DURATION, 100, 3600 * MS_S }, "5s" },
	[K_IDLE_TIMEOUT] = { "idle_timeout", HOST_SCOPE, H(idle_timeout_ms),
	    { T_DURATION, 1000, 7 * MS_DAY }, "5m" },
	[K_CLIENT_VERIFY] = { "client_verify", HOST_SCOPE, H(client_verify),
	    { T_ENUM, .names = verify_modes }, "none" },
	[K_CLIENT_CA] = { "client_ca", HOST_SCOPE, H(client_ca), { T_PATH }, NULL },
	[K_CLIENT_CRL] = { "client_crl", HOST_SCOPE, H(client_crl), { T_PATH }, NULL },
	[K_CLIENT_VERIFY_DEPTH] = { "client_verify_depth", HOST_SCOPE, H(client_verify_depth),
	    { T_INT, 1, 16 }, "3" },
	[K_CLIENT_ALLOW] = { "client_allow", HOST_SCOPE, H(client_allow_value), { T_ALLOW },
	    NULL },
	[K_PROXY_PROTOCOL] = { "proxy_protocol", HOST_SCOPE, H(proxy_protocol),
	    { T_ENUM, .names = proxy_sends }, "off" },
	[K_PROXY_CLIENT_CERT] = { "proxy_client_cert", HOST_SCOPE, H(proxy_client_cert),
	    { T_ENUM, .names = proxy_certs }, "off" },
	[K_PROXY_CLIENT_CERT_TLV] = { "proxy_client_cert_tlv", HOST_SCOPE,
	    H(proxy_client_cert_tlv), { T_INT, 0xE0, 0xEF, .hex = 1 }, "0xE0" },
	[K_MAX_CONNECTIONS] = { "max_connections", HOST_SCOPE, H(max_connections),
	    { T_INT, 0, 10000000 }, "0" },
	[K_SESSION_TICKETS] = { "session_tickets", HOST_SCOPE, H(session_tickets), { T_BOOL },
	    "on" },
	[K_TLS13_TICKETS] = { "tls13_tickets", HOST_SCOPE, H(tls13_tickets), { T_INT, 1, 10 },
	    "1" },
	[K_SESSION_CACHE_SIZE] = { "session_cache_size", HOST_SCOPE, H(session_cache_size),
	    { T_INT, 0, 1000000 }, "1024" },
	[K_KEYLOG_FILE] = { "keylog_file", HOST_SCOPE, H(keylog_file), { T_PATH }, NULL },
	[K_OCSP_FILE] = { "ocsp_file", S_HOST, H(ocsp_file), { T_PATH }, NULL },
	[K_ACME] = { "acme", HOST_SCOPE, H(acme), { T_BOOL }, "no" },
	[K_BALANCE] = { "balance", HOST_SCOPE, H(balance), { T_ENUM, .names = balances },
	    "roundrobin" },
	[K_BACKEND_FAIL_THRESHOLD] = { "backend_fail_threshold", HOST_SCOPE,
	    H(backend_fail_threshold), { T_INT, 1, 100 }, "3" },
	[K_BACKEND_DOWN_TIME] = { "backend_down_time", HOST_SCOPE, H(backend_down_time_ms),
	    { T_DURATION, 100, 3600 * MS_S }, "10s" },
	[K_HEALTH_CHECK] = { "health_check", HOST_SCOPE, H(health_check),
	    { T_ENUM, .names = health_checks }, "off" },
	[K_HEALTH_INTERVAL] = { "health_interval", HOST_SCOPE, H(health_interval_ms),
	    { T_DURATION, 1000, 3600 * MS_S }, "5s" },

	/* a map: one line per protocol, each inherited on its own (build_host) */
	[K_BACKEND_PROTO] = { "backend", HOST_SCOPE, H(alpn_map), { T_ALPN_MAP }, NULL },
};

/* ------------------------------------------------------------------ */
/* Building the config                                                  */

struct build {
	struct config *c;
	struct diag *d;
	struct config_reader r;
	/* what hosts inherit: [defaults] over the built-in defaults, parsed
	 * once; loc[k].file NULL: no value */
	struct host_config dflt;
	unsigned char dflt_bad[K_COUNT];	/* the [defaults] value failed (reported) */
};

/* Parse val, the value of key k written at `at`, into field; a failure is
 * reported at `at`. Returns 0 or -1. */
static int
parse_at(struct diag *d, int k, const char *val, struct loc at, void *field)
{
	char err[512];

	if (value_parse(&config_keys[k].v, val, at.file, field, err, sizeof(err)) == 0)
		return 0;
	diag_error_at(d, at, "%s: %s", config_keys[k].name, err);
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
 * error at its second place: on one line as value_parse reports it, on two
 * lines naming the first (found by sorting, so that many lines of names
 * cost n log n). Returns the number of errors; with errors the list is
 * left empty.
 */
static int
apply_repeated(struct diag *d, const struct raw_section *r, int k, struct str_list *field)
{
	const struct keydef *kd = &config_keys[k];
	struct str_list all = { NULL, 0 };
	int *lines = NULL, errors = 0;
	char err[512];

	for (size_t m = 0; m <= r->n_more; m++) {
		struct str_list one = { NULL, 0 };
		struct loc at = r->loc[k];
		const char *v = r->val[k];

		if (m > 0) {
			if (r->more[m - 1].key != k)
				continue;	/* another key's line */
			v = r->more[m - 1].val;
			at = r->more[m - 1].at;
		}
		if (value_parse(&kd->v, v, at.file, &one, err, sizeof(err)) != 0) {
			diag_error_at(d, at, "%s: %s", kd->name, err);
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
			value_free(T_NAMES, &one);
			diag_error_at(d, at, "out of memory");
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
		diag_error_at(d, r->loc[k], "out of memory");
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
				diag_error_at(d, at, "%s: '%s' is listed twice (first at line %d)",
				    kd->name, all.v[i], lines[first[i]]);
				errors++;
			}
	}
	free(sorted);
	free(first);
	free(lines);
	if (errors > 0)
		value_free(T_NAMES, &all);
	*field = all;
	return errors;
}

/* [global] and [acme]: their own values, else the built-in defaults. */
static void
apply_global(struct build *b)
{
	struct global_config *g = &b->c->g;
	struct loc builtin = { b->c->main_file, 0 };

	for (int k = 0; k < K_COUNT; k++) {
		const struct keydef *kd = &config_keys[k];
		const struct raw_section *own = kd->scope == S_ACME ? &b->r.acme : &b->r.global;
		struct loc at = own->val[k] != NULL ? own->loc[k] : builtin;
		const char *v = own->val[k] != NULL ? own->val[k] : kd->def;

		if ((kd->scope != S_GLOBAL && kd->scope != S_ACME) || v == NULL)
			continue;
		if (parse_at(b->d, k, v, at, (char *)g + kd->off) == 0)
			g->loc[k] = at;
	}
	if (b->r.acme.kind == SEC_ACME) {
		g->acme_at = b->r.acme.at;
		if (b->r.acme.val[K_A_DIRECTORY] == NULL)
			diag_error_at(b->d, g->acme_at, "[acme] has no 'directory' (the URL of "
			    "the ACME directory, e.g. "
			    "https://acme-v02.api.letsencrypt.org/directory)");
	}
	g->acme.enabled = g->acme.directory != NULL;
	/* counted here, not by the (pure) value parser */
	if (g->workers == VALUE_WORKERS_AUTO)
		g->workers = value_workers_auto(sysconf(_SC_NPROCESSORS_ONLN));
}

/*
 * b->dflt: every host key's built-in default, then the values of [defaults]
 * in their place. A bad [defaults] value is reported here, once, and
 * flagged (dflt_bad, or the map line's bad), so that hosts inheriting it
 * are marked bad without a message of their own.
 */
static void
parse_defaults(struct build *b)
{
	struct raw_section *df = &b->r.defaults;
	struct loc builtin = { b->c->main_file, 0 };
	char err[512];

	for (int k = 0; k < K_COUNT; k++) {
		const struct keydef *kd = &config_keys[k];
		void *field = (char *)&b->dflt + kd->off;

		if (!(kd->scope & S_HOST))
			continue;
		if (kd->def != NULL && parse_at(b->d, k, kd->def, builtin, field) == 0)
			b->dflt.loc[k] = builtin;
		if (df->val[k] == NULL)
			continue;
		value_free(kd->v.type, field);
		b->dflt.loc[k].file = NULL;
		if (parse_at(b->d, k, df->val[k], df->loc[k], field) == 0)
			b->dflt.loc[k] = df->loc[k];
		else
			b->dflt_bad[k] = 1;
	}
	for (int k = K_COUNT; k < K_TABLE; k++) {
		const struct keydef *kd = &config_keys[k];

		for (size_t i = 0; i < df->n_more; i++) {
			struct raw_line *m = &df->more[i];

			if (m->key != k)
				continue;
			if (value_map_parse((void *)((char *)&b->dflt + kd->off), m->sub, m->val,
			    m->at, err, sizeof(err)) != 0) {
				diag_error_at(b->d, m->at, "%s.%s: %s", kd->name, m->sub, err);
				m->bad = 1;
			}
		}
	}
}

static int
in_list(const struct str_list *sl, const char *s)
{
	for (size_t i = 0; i < sl->n; i++)
		if (strcmp(sl->v[i], s) == 0)
			return 1;
	return 0;
}

/*
 * Map key k (backend.PROTO) of host h: its own lines, each for a protocol
 * of its alpn list, then the [defaults] lines it does not override, for
 * the protocols it offers (silently not for the others: [defaults] serves
 * hosts with different lists).
 */
static void
apply_map(struct build *b, const struct raw_section *r, struct host_config *h, int k)
{
	const struct keydef *kd = &config_keys[k];
	struct alpn_map *m = (void *)((char *)h + kd->off);
	const struct alpn_map *dm = (const void *)((const char *)&b->dflt + kd->off);
	const struct raw_section *df = &b->r.defaults;
	char err[512];

	/* (no PROTO twice among a section's own lines: config_read.c refuses it) */
	for (size_t i = 0; i < r->n_more; i++) {
		const struct raw_line *l = &r->more[i];

		if (l->key != k)
			continue;
		if (!in_list(&h->alpn, l->sub))
			diag_error_at(b->d, l->at, "%s.%s: '%s' is not in this host's alpn list",
			    kd->name, l->sub, l->sub);
		else if (value_map_parse(m, l->sub, l->val, l->at, err, sizeof(err)) != 0)
			diag_error_at(b->d, l->at, "%s.%s: %s", kd->name, l->sub, err);
	}
	for (size_t i = 0; i < df->n_more; i++) {
		const struct raw_line *l = &df->more[i];
		const struct alpn_backend *e;

		if (l->key != k || value_map_get(m, l->sub) != NULL || !in_list(&h->alpn, l->sub))
			continue;
		if (l->bad)
			h->bad = 1;	/* a [defaults] value already reported */
		else if ((e = value_map_get(dm, l->sub)) != NULL && value_map_put(m, e) != 0)
			diag_error_at(b->d, l->at, "%s.%s: out of memory", kd->name, l->sub);
	}
}

/*
 * A host with acme = yes: its certificate and key are ACME's file,
 * state_dir/certs/LABEL.pem (acme.h's layout, spelt here because the config
 * module links nothing of the client), whose line is the acme line. Its own
 * cert or key lines contradict that; a [defaults] cert or key is simply not
 * inherited. TLS-ALPN-01 validates each name by connecting to it, so the
 * names must be listed and none may be a wildcard.
 */
static void
acme_host(struct build *b, const struct raw_section *r, struct host_config *h)
{
	const struct acme_config *a = &b->c->g.acme;
	struct diag *d = b->d;
	static const int own[] = { K_CERT, K_KEY };

	for (size_t i = 0; i < 2; i++)
		if (r->val[own[i]] != NULL)
			diag_error_at(d, r->loc[own[i]], "%s: host '%s' has acme = yes (%s:%d): "
			    "ACME provides its certificate and key; remove '%s' or 'acme'",
			    config_keys[own[i]].name, h->label, h->loc[K_ACME].file,
			    h->loc[K_ACME].line, config_keys[own[i]].name);
	value_free(T_PATH, &h->cert);
	value_free(T_PATH, &h->key);
	h->loc[K_CERT].file = h->loc[K_KEY].file = NULL;
	if (h->names.n == 0 && r->val[K_NAMES] == NULL)
		diag_error_at(d, h->loc[K_ACME], "acme: host '%s' has no 'names': ACME orders "
		    "its certificate for the names listed", h->label);
	for (size_t i = 0; i < h->names.n; i++)
		if (h->names.v[i][0] == '*')
			diag_error_at(d, h->loc[K_NAMES], "names: '%s' is a wildcard name, which "
			    "ACME's TLS-ALPN-01 challenge cannot validate; give this host cert "
			    "and key instead of acme = yes", h->names.v[i]);
	if (!a->enabled) {
		if (b->r.acme.kind != SEC_ACME)	/* else reported at [acme] */
			diag_error_at(d, h->loc[K_ACME], "acme: host '%s' asks for ACME but the "
			    "main file has no [acme] section with a 'directory'", h->label);
		return;
	}
	if (asprintf(&h->cert, "%s/certs/%s.pem", a->state_dir, h->label) < 0 ||
	    (h->key = strdup(h->cert)) == NULL) {
		if (h->cert == NULL || h->key == NULL)
			diag_error_at(d, h->at, "out of memory");
		return;
	}
	h->loc[K_CERT] = h->loc[K_KEY] = h->loc[K_ACME];
}

size_t
config_acme_hosts(const struct config *c)
{
	size_t n = 0;

	for (size_t i = 0; c->g.acme.enabled && i < c->n_hosts; i++)
		if (c->hosts[i].acme && !c->hosts[i].bad)
			n++;
	return n;
}

static void
build_host(struct build *b, const struct raw_section *r, struct host_config *h)
{
	struct config *c = b->c;
	struct diag *d = b->d;

	h->label = strdup(r->label);
	h->at = r->at;
	for (int k = 0; k < K_COUNT; k++) {
		const struct keydef *kd = &config_keys[k];
		void *field = (char *)h + kd->off;

		if (!(kd->scope & S_HOST))
			continue;
		if (r->val[k] != NULL) {
			if (kd->v.type == T_NAMES ? apply_repeated(d, r, k, field) > 0 :
			    parse_at(d, k, r->val[k], r->loc[k], field) != 0)
				continue;
			h->loc[k] = r->loc[k];
		} else if (b->dflt_bad[k] || b->dflt.loc[k].file == NULL) {
			continue;	/* reported once at [defaults], or no value */
		} else if (value_copy(kd->v.type, field, (char *)&b->dflt + kd->off) != 0) {
			value_free(kd->v.type, field);
			diag_error_at(d, h->at, "%s: out of memory", kd->name);
		} else {
			h->loc[k] = b->dflt.loc[k];
		}
	}
	if (h->acme)
		acme_host(b, r, h);
	else if (h->cert == NULL && !(b->dflt_bad[K_CERT] && !r->val[K_CERT]))
		diag_error_at(d, h->at, "host '%s' has no 'cert'", h->label);
	if (!h->acme && h->key == NULL && !(b->dflt_bad[K_KEY] && !r->val[K_KEY]))
		diag_error_at(d, h->at, "host '%s' has no 'key'", h->label);
	if (h->backend.n == 0 && !r->val[K_BACKEND] && !b->dflt_bad[K_BACKEND])
		diag_error_at(d, h->at, "host '%s' has no 'backend'", h->label);
	if (h->client_verify != CLIENT_VERIFY_NONE && h->client_ca == NULL &&
	    !b->dflt_bad[K_CLIENT_CA])
		diag_error_at(d, h->loc[K_CLIENT_VERIFY], "client_verify: host '%s' verifies "
		    "client certificates but has no 'client_ca'", h->label);
	if (h->proxy_client_cert != PROXY_CERT_OFF && h->proxy_protocol != PROXY_SEND_V2)
		diag_error_at(d, h->loc[K_PROXY_CLIENT_CERT], "proxy_client_cert: host '%s' "
		    "sends the client certificate only in PROXY v2 headers; set proxy_protocol "
		    "= v2", h->label);
	if (h->client_verify == CLIENT_VERIFY_NONE && h->loc[K_CLIENT_VERIFY].file != NULL) {
		static const int needs_verify[] = { K_CLIENT_ALLOW, K_CLIENT_CRL };
		for (size_t i = 0; i < 2; i++)
			if (r->val[needs_verify[i]] != NULL)
				diag_error_at(d, r->loc[needs_verify[i]], "%s: has no effect "
				    "with client_verify = none", config_keys[needs_verify[i]].name);
	}
	if (h->listen.n == 0 && c->g.listen.n > 0 && !r->val[K_LISTEN]) {
		h->listen.v = malloc(c->g.listen.n * sizeof(struct addr));
		if (h->listen.v) {
			memcpy(h->listen.v, c->g.listen.v, c->g.listen.n * sizeof(struct addr));
			h->listen.n = c->g.listen.n;
			h->loc[K_LISTEN] = c->g.loc[K_G_LISTEN];
		}
	}

	/* the map keys last: they depend on alpn (their messages come last too) */
	for (int k = K_COUNT; k < K_TABLE; k++)
		apply_map(b, r, h, k);
}

static void
host_config_free(struct host_config *h)
{
	for (int k = 0; k < K_TABLE; k++)
		if (config_keys[k].scope & S_HOST)
			value_free(config_keys[k].v.type, (char *)h + config_keys[k].off);
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
		if (config_keys[k].scope & (S_GLOBAL | S_ACME))
			value_free(config_keys[k].v.type, (char *)&c->g + config_keys[k].off);
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
	struct build b;
	struct config *c;
	char cwd[PATH_MAX];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	/* relative paths in the files resolve against the file's directory,
	 * so that directory must be absolute whatever our working directory */
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
	memset(&b, 0, sizeof(b));
	b.c = c;
	b.d = d;
	config_reader_init(&b.r, c, d);

	struct loc none = { config_intern_file(c, main_file), 0 };
	if (config_read_file(&b.r, main_file, 1, none) != 0)
		goto out;	/* nothing else to say: the defaults would only add noise */

	/* [global] first: it names the host files */
	apply_global(&b);
	/* [defaults] alone, so that each bad value is reported once */
	parse_defaults(&b);

	if (c->g.hosts != NULL) {
		glob_t gl;
		int rc = glob(c->g.hosts, 0, glob_error, &gl);
		if (rc == 0) {
			qsort(gl.gl_pathv, gl.gl_pathc, sizeof(char *), cmp_str);
			for (size_t i = 0; i < gl.gl_pathc; i++)
				config_read_file(&b.r, gl.gl_pathv[i], 0, c->g.loc[K_G_HOSTS]);
			globfree(&gl);
		} else if (rc != GLOB_NOMATCH) {
			diag_error_at(d, c->g.loc[K_G_HOSTS], "hosts: cannot read '%s'", c->g.hosts);
			globfree(&gl);
		}
	}

	if (b.r.n_hosts == 0) {
		diag_error(d, c->main_file, 0, "no [host LABEL] section found (hosts = %s)",
		    c->g.hosts ? c->g.hosts : "-");
	} else if ((c->hosts = calloc(b.r.n_hosts, sizeof(*c->hosts))) != NULL) {
		for (size_t i = 0; i < b.r.n_hosts; i++) {
			const struct raw_section *r = &b.r.hosts[i];
			struct host_config *h = &c->hosts[c->n_hosts++];
			size_t before = d->n_errors;

			build_host(&b, r, h);
			for (int k = 0; k < K_COUNT; k++)
				if (b.dflt_bad[k] && !r->val[k])
					h->bad = 1;	/* inherits a value that failed */
			if (d->n_errors > before || r->bad)
				h->bad = 1;
		}
	}

out:
	host_config_free(&b.dflt);
	config_reader_free(&b.r);
	return c;
}
