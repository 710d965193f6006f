/* gen.c: see gen.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"
#include "priv.h"
#include "log.h"
#include "tls.h"

static struct listener *
listener_for(struct generation *g, const struct addr *a)
{
	struct listener *l;

	for (size_t i = 0; i < g->n_listeners; i++)
		if (addr_equal(&g->listeners[i].addr, a))
			return &g->listeners[i];
	l = realloc(g->listeners, (g->n_listeners + 1) * sizeof(*l));
	if (l == NULL)
		return NULL;
	g->listeners = l;
	l = &g->listeners[g->n_listeners];
	memset(l, 0, sizeof(*l));
	l->addr = *a;
	if ((l->sni = sni_table_new()) == NULL)
		return NULL;
	g->n_listeners++;
	return l;
}

/* Put host h on each of its listeners; report names claimed twice. */
static int
place_host(struct generation *g, struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct loc names_at = c->names.n ? c->loc[K_NAMES] : c->loc[K_CERT];
	int ok = 1;

	for (size_t i = 0; i < c->listen.n; i++) {
		struct listener *l = listener_for(g, &c->listen.v[i]);
		if (l == NULL)
			return -1;
		for (size_t j = 0; j < h->n_names; j++) {
			void *other = NULL;
			int rc = sni_table_add(l->sni, h->names[j], h, &other);
			if (rc == 1) {
				const struct host *o = other;
				diag_error_at(d, names_at, "host '%s': name '%s' on %s is already "
				    "claimed by host '%s' (%s:%d)", c->label, h->names[j],
				    l->addr.text, o->cfg->label, o->cfg->at.file, o->cfg->at.line);
				ok = 0;
			} else if (rc < 0) {
				return -1;
			}
		}
		if (c->is_default) {
			if (l->default_host != NULL) {
				diag_error_at(d, c->loc[K_DEFAULT], "host '%s': %s already has a "
				    "default host, '%s' (%s:%d)", c->label, l->addr.text,
				    l->default_host->cfg->label, l->default_host->cfg->at.file,
				    l->default_host->cfg->at.line);
				ok = 0;
			} else {
				l->default_host = h;
			}
		}
		/* before SNI the shortest applies; conn.c extends it to the host's */
		if (l->handshake_timeout_ms == 0 || c->handshake_timeout_ms < l->handshake_timeout_ms)
			l->handshake_timeout_ms = c->handshake_timeout_ms;
	}
	return ok ? 0 : -1;
}

/* The host's pools, each member with its shared health slot (pool.h):
 * made here, in the main process, before the workers are forked. */
static int
make_pools(struct host *h)
{
	const struct host_config *c = h->cfg;

	if (pool_init(&h->pool, c->label, c->backend.v, c->backend.n, c->balance,
	    (unsigned)c->backend_fail_threshold, c->backend_down_time_ms,
	    c->connect_timeout_ms) != 0)
		return -1;
	if (c->n_alpn_backends == 0)
		return 0;
	if ((h->alpn_pools = calloc(c->n_alpn_backends, sizeof(*h->alpn_pools))) == NULL)
		return -1;
	for (size_t i = 0; i < c->n_alpn_backends; i++)
		if (pool_init(&h->alpn_pools[i], c->label, c->alpn_backends[i].pool.v,
		    c->alpn_backends[i].pool.n, c->balance, (unsigned)c->backend_fail_threshold,
		    c->backend_down_time_ms, c->connect_timeout_ms) != 0)
			return -1;
	return 0;
}

/* ---- files the configured user will have to read ----------------------- */

/*
 * Started as root with `user` set, the main process reads every file now,
 * but each reload runs as that user (priv_drop) and fails on a file the user
 * cannot read: say so at start and in `tlsfront -t`.
 */
static void
reader_check(struct priv_reader *r, const char *user, const char *path, struct loc at,
    struct diag *d)
{
	if (path != NULL && !priv_can_read(r, path))
		diag_warn_at(d, at, "user %s cannot read %s: every reload will fail (Permission "
		    "denied)", user, path);
}

static void
check_user_reads(const struct config *cfg, struct diag *d)
{
	const struct global_config *gc = &cfg->g;
	struct priv_reader *r;

	if ((r = priv_reader_new(gc->user, gc->group)) == NULL)
		return;
	reader_check(r, gc->user, gc->ticket_key_file, gc->loc[K_G_TICKET_KEY_FILE], d);
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		const struct host_config *c = &cfg->hosts[i];
		if (c->bad)
			continue;
		reader_check(r, gc->user, c->cert, c->loc[K_CERT], d);
		if (c->key != NULL && c->cert != NULL && strcmp(c->key, c->cert) != 0)
			reader_check(r, gc->user, c->key, c->loc[K_KEY], d);	/* ACME's: one */
		if (c->client_verify != CLIENT_VERIFY_NONE) {
			reader_check(r, gc->user, c->client_ca, c->loc[K_CLIENT_CA], d);
			reader_check(r, gc->user, c->client_crl, c->loc[K_CLIENT_CRL], d);
		}
		reader_check(r, gc->user, c->ocsp_file, c->loc[K_OCSP_FILE], d);
	}
	priv_reader_free(r);
}

/*
 * ACME keeps its account, keys and certificates in state_dir, written by
 * the ACME child as the configured user (or as we are): if that user cannot
 * write there, every order would fail, so it is an error now, not later.
 */
static void
check_state_dir(const struct config *cfg, struct diag *d)
{
	const struct global_config *gc = &cfg->g;
	struct loc at = gc->loc[K_A_STATE_DIR].line > 0 ? gc->loc[K_A_STATE_DIR] : gc->acme_at;
	struct priv_reader *r = NULL;

	if (config_acme_hosts(cfg) == 0)
		return;
	/* as root with `user`: that user's ids; else whoever we are */
	if (gc->user != NULL && (r = priv_reader_new(gc->user, gc->group)) == NULL &&
	    geteuid() == 0)
		return;	/* unknown user: priv_drop reports it */
	if (!priv_can_write_dir(r, gc->acme.state_dir)) {
		char who[64];
		if (r != NULL)
			snprintf(who, sizeof(who), "user %s", gc->user);
		else
			snprintf(who, sizeof(who), "uid %u", (unsigned)geteuid());
		diag_error_at(d, at, "state_dir: %s cannot write to %s: ACME could not store "
		    "its account, keys and certificates there", who, gc->acme.state_dir);
	}
	priv_reader_free(r);
}

struct generation *
gen_build(struct config *cfg, struct diag *d)
{
	struct generation *g = calloc(1, sizeof(*g));
	struct loc top = { cfg->main_file, 0 };
	struct tls_profiles *profiles = NULL;	/* contexts by settings, while building */
	int ok = 1;

	if (g == NULL || tls_init() != 0)
		goto err;
	tls_files_begin();
	if ((g->hosts = calloc(cfg->n_hosts, sizeof(*g->hosts))) == NULL ||
	    (profiles = tls_profiles_new()) == NULL)
		goto err;
	g->n_hosts = cfg->n_hosts;
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		g->hosts[i].cfg = &cfg->hosts[i];
		/* limits are shared out between the worker processes (a bad
		 * `workers` value, already reported, leaves 0 workers) */
		if (cfg->hosts[i].max_connections > 0 && cfg->g.workers > 0)
			g->hosts[i].max_active = (unsigned)((cfg->hosts[i].max_connections +
			    cfg->g.workers - 1) / cfg->g.workers);
		/* a host whose config failed would only cause follow-on errors */
		size_t before = d->n;
		if (cfg->hosts[i].bad) {
			ok = 0;
		} else if (tls_host_setup(&g->hosts[i], profiles, d) != 0) {
			if (cfg->g.host_errors == HOST_ERRORS_SKIP) {
				/* its files failed: serve the others without it */
				char why[300];
				snprintf(why, sizeof(why), "host '%s' left out (host_errors = skip): ",
				    cfg->hosts[i].label);
				diag_demote(d, before, why);
				g->hosts[i].skipped = 1;
				g->n_skipped++;
			} else {
				ok = 0;
			}
		}
	}
	check_user_reads(cfg, d);
	check_state_dir(cfg, d);
	g->n_contexts = tls_profiles_count(profiles);
	tls_profiles_free(profiles);	/* the hosts hold the contexts they use */
	profiles = NULL;
	if (g->n_skipped == g->n_hosts && g->n_hosts > 0) {
		diag_error_at(d, top, "no host could be loaded");
		ok = 0;
	}
	for (size_t i = 0; i < cfg->n_hosts; i++)
		if (!cfg->hosts[i].bad && !g->hosts[i].skipped &&
		    place_host(g, &g->hosts[i], d) != 0)
			ok = 0;
	for (size_t i = 0; ok && i < cfg->n_hosts; i++)
		if (!g->hosts[i].skipped && make_pools(&g->hosts[i]) != 0)
			goto err;
	if (!ok)
		goto err;
	if ((g->tls = tls_base_new(cfg, g->hosts, g->n_hosts, d, top)) == NULL)
		goto err;
	/* so that reloads, which run as the user, can reopen them */
	tls_give_files(g, cfg->g.user, cfg->g.group);
	g->cfg = cfg;
	return g;
err:
	tls_profiles_free(profiles);
	if (d->n_errors == 0)
		diag_error_at(d, top, "out of memory");
	if (g != NULL)
		g->cfg = NULL;	/* not ours on failure */
	gen_free(g);
	return NULL;
}

void
gen_free(struct generation *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n_hosts; i++) {
		struct host *h = &g->hosts[i];
		tls_host_free(h->tls);
		pool_free(&h->pool);
		for (size_t j = 0; h->alpn_pools != NULL && j < h->cfg->n_alpn_backends; j++)
			pool_free(&h->alpn_pools[j]);
		free(h->alpn_pools);
		for (size_t j = 0; j < h->n_names; j++)
			free(h->names[j]);
		free(h->names);
	}
	free(g->hosts);
	for (size_t i = 0; i < g->n_listeners; i++)
		sni_table_free(g->listeners[i].sni);
	free(g->listeners);
	tls_base_free(g->tls);
	config_free(g->cfg);
	free(g);
}

const struct pool *
gen_backend_for(const struct host *h, const unsigned char *alpn, unsigned alpn_len)
{
	const struct host_config *c = h->cfg;

	for (size_t i = 0; alpn_len > 0 && i < c->n_alpn_backends; i++) {
		const char *p = c->alpn_backends[i].proto;
		if (strlen(p) == alpn_len && memcmp(p, alpn, alpn_len) == 0)
			return &h->alpn_pools[i];
	}
	return &h->pool;
}

struct generation *
gen_load(const char *path, struct diag *d)
{
	size_t before = d->n_errors;
	struct config *cfg = config_load_all(path, d);	/* every error of every stage */
	struct generation *g = NULL;

	if (cfg != NULL && (g = gen_build(cfg, d)) == NULL)
		config_free(cfg);
	if (g != NULL && d->n_errors > before) {
		gen_free(g);
		g = NULL;
	}
	/* after the check: a config error alone can throw away a generation
	 * that gen_build made, and then the cache keeps what it had */
	if (g != NULL)
		tls_files_sweep(&g->files_read, &g->files_unchanged);
	return g;
}
