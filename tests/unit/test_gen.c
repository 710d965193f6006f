/*
 * test_gen.c: a generation (gen.c) built from a configuration in a
 * temporary directory, with certificates and keys made by unit_pki.c: the
 * listeners and their name tables, default hosts, the shortest
 * handshake_timeout, names taken from the certificate, max_connections
 * shared out between workers; names claimed twice and two default hosts;
 * host_errors = skip; the files the configured user could not read. And
 * gen_backend_for, the backend by ALPN, on a host made by hand.
 *
 * Linked with gen.c and what it calls: the config module, the TLS
 * modules, priv.c, log.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "unit_pki.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	struct diag d;
	struct generation *g;
};

/* rel.pem and rel.key for cn with DNS names san */
static void
cert(const struct fixture *f, const char *rel, const char *cn, const char *san)
{
	char c[64], k[64];

	snprintf(c, sizeof(c), "%s.pem", rel);
	snprintf(k, sizeof(k), "%s.key", rel);
	unit_pki_write(unit_path(f->dir, c), unit_path(f->dir, k), cn, san, 90);
}

/* main.ini: [global] with extra lines, hosts in hosts.d/ */
static void
main_ini(const struct fixture *f, const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text), "[global]\nlisten = 127.0.0.1:8443\nhosts = hosts.d/*.ini\n"
	    "workers = 2\n%s\n[defaults]\nhandshake_timeout = 10s\n", extra);
	unit_put(f->dir, "main.ini", text);
}

static struct generation *
load(struct fixture *f)
{
	f->g = gen_load(unit_path(f->dir, "main.ini"), &f->d);
	return f->g;
}

/* gen_load must succeed without errors. */
static struct generation *
load_ok(struct fixture *f)
{
	if (load(f) == NULL || f->d.n_errors != 0) {
		unit_print_diag(&f->d);
		fail_msg("gen_load failed");
	}
	return f->g;
}

/* gen_load must fail with an error that contains needle. */
static void
load_fails(struct fixture *f, const char *needle)
{
	if (load(f) != NULL) {
		unit_print_diag(&f->d);
		fail_msg("gen_load succeeded");
	}
	assert_true(f->d.n_errors > 0);
	if (!diag_has(&f->d, needle)) {
		unit_print_diag(&f->d);
		fail_msg("no error with '%s'", needle);
	}
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_gen"), 0);
	assert_int_equal(mkdir(unit_path(f->dir, "hosts.d"), 0700), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	gen_free(f->g);
	diag_free(&f->d);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

static const struct host *
host_named(const struct generation *g, const char *label)
{
	for (size_t i = 0; i < g->n_hosts; i++)
		if (strcmp(g->hosts[i].cfg->label, label) == 0)
			return &g->hosts[i];
	fail_msg("no host '%s'", label);
	return NULL;
}

static const struct host *
lookup(const struct listener *l, const char *name)
{
	return sni_table_lookup(l->sni, name, strlen(name));
}

/* ------------------------------------------------------------------ */
/* gen_load                                                             */

static const char three_hosts[] =
	"[host shop]\n"
	"cert = ../shop.pem\n"
	"key = ../shop.key\n"
	"backend = 127.0.0.1:8080\n"
	"alpn = h2 http/1.1\n"
	"backend.h2 = 127.0.0.1:8081\n"
	"names = shop.example www.shop.example\n"
	"default = yes\n"
	"max_connections = 5\n"
	"handshake_timeout = 3s\n"
	"\n"
	"[host api]\n"
	"cert = ../api.pem\n"
	"key = ../api.key\n"
	"backend = unix:/run/api.sock\n"
	"\n"
	"[host admin]\n"
	"cert = ../admin.pem\n"
	"key = ../admin.key\n"
	"backend = 127.0.0.1:9000\n"
	"listen = 127.0.0.1:9443\n"
	"names = admin.example\n";

static void
three_hosts_files(struct fixture *f)
{
	main_ini(f, "");
	cert(f, "shop", "shop.example", "DNS:shop.example,DNS:www.shop.example");
	cert(f, "api", "api.example", "DNS:api.example,DNS:*.api.example");
	cert(f, "admin", "admin.example", "DNS:admin.example");
	unit_put(f->dir, "hosts.d/a.ini", three_hosts);
}

/* Hosts on the listeners they name, in order; each listener's table maps
 * its hosts' names (the configured ones, else the certificate's) to them. */
static void
test_listeners_and_names(void **state)
{
	struct fixture *f = *state;
	const struct generation *g;
	const struct host *shop, *api, *admin;
	const struct listener *l0, *l1;

	three_hosts_files(f);
	g = load_ok(f);
	assert_int_equal(g->n_hosts, 3);
	assert_non_null(g->cfg);
	assert_non_null(g->tls);
	assert_int_equal(g->n_skipped, 0);
	shop = host_named(g, "shop");
	api = host_named(g, "api");
	admin = host_named(g, "admin");
	assert_ptr_equal(shop, &g->hosts[0]);	/* in the order read */

	assert_int_equal(g->n_listeners, 2);
	l0 = &g->listeners[0];
	l1 = &g->listeners[1];
	assert_string_equal(l0->addr.text, "127.0.0.1:8443");
	assert_string_equal(l1->addr.text, "127.0.0.1:9443");
	assert_int_equal(sni_table_count(l0->sni), 4);
	assert_int_equal(sni_table_count(l1->sni), 1);
	assert_ptr_equal(lookup(l0, "shop.example"), shop);
	assert_ptr_equal(lookup(l0, "WWW.Shop.Example."), shop);
	assert_ptr_equal(lookup(l0, "api.example"), api);
	assert_ptr_equal(lookup(l0, "v2.api.example"), api);
	assert_null(lookup(l0, "admin.example"));
	assert_null(lookup(l0, "other.example"));
	assert_ptr_equal(lookup(l1, "admin.example"), admin);
	assert_null(lookup(l1, "shop.example"));

	/* api's names are its certificate's */
	assert_int_equal(api->n_names, 2);
	assert_string_equal(api->names[0], "api.example");
	assert_string_equal(api->names[1], "*.api.example");
	assert_int_equal(shop->n_names, 2);
	assert_non_null(shop->tls);
}

/* A listener's default host, its handshake_timeout until SNI (the
 * shortest of its hosts'), a worker's share of max_connections, the
 * certificate's notAfter. */
static void
test_listener_settings(void **state)
{
	struct fixture *f = *state;
	const struct generation *g;
	time_t now = time(NULL);

	three_hosts_files(f);
	g = load_ok(f);
	assert_ptr_equal(g->listeners[0].default_host, host_named(g, "shop"));
	assert_null(g->listeners[1].default_host);
	assert_int_equal(g->listeners[0].handshake_timeout_ms, 3000);
	assert_int_equal(g->listeners[1].handshake_timeout_ms, 10000);
	assert_int_equal(host_named(g, "shop")->max_active, 3);	/* 5 over 2 workers */
	assert_int_equal(host_named(g, "api")->max_active, 0);
	for (size_t i = 0; i < g->n_hosts; i++) {
		time_t na = g->hosts[i].not_after;
		assert_true(na > now + 89 * 24 * 3600);
		assert_true(na < now + 91 * 24 * 3600);
	}
}

/* The backend by ALPN, on the loaded host. */
static void
test_backend_for_loaded(void **state)
{
	struct fixture *f = *state;
	const struct generation *g;
	const struct host *shop, *api;

	three_hosts_files(f);
	g = load_ok(f);
	shop = host_named(g, "shop");
	api = host_named(g, "api");
	assert_string_equal(gen_backend_for(shop, (const unsigned char *)"h2", 2)->m[0].addr->text,
	    "127.0.0.1:8081");
	assert_string_equal(gen_backend_for(shop, (const unsigned char *)"http/1.1", 8)->m[0].addr->text,
	    "127.0.0.1:8080");
	assert_string_equal(gen_backend_for(shop, NULL, 0)->m[0].addr->text, "127.0.0.1:8080");
	assert_string_equal(gen_backend_for(api, (const unsigned char *)"h2", 2)->m[0].addr->text,
	    "unix:/run/api.sock");
}

/* gen_build on a config read apart: on success the generation owns it; on
 * failure the caller still has it. */
static void
test_build_owns_config(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	struct generation *g;

	three_hosts_files(f);
	assert_non_null(cfg = config_load(unit_path(f->dir, "main.ini"), &f->d));
	assert_non_null(g = gen_build(cfg, &f->d));
	assert_ptr_equal(g->cfg, cfg);
	assert_int_equal(f->d.n_errors, 0);
	gen_free(g);	/* and cfg with it */

	unit_put(f->dir, "hosts.d/b.ini",
	    "[host copy]\ncert = ../shop.pem\nkey = ../shop.key\n"
	    "backend = 127.0.0.1:1\nnames = www.shop.example\n");
	assert_non_null(cfg = config_load(unit_path(f->dir, "main.ini"), &f->d));
	assert_null(gen_build(cfg, &f->d));
	assert_true(f->d.n_errors > 0);
	assert_int_equal(cfg->n_hosts, 4);
	assert_string_equal(cfg->hosts[3].label, "copy");
	config_free(cfg);
	gen_free(NULL);
}

/* One name, two hosts, one listener: an error at the second host's names
 * line, naming the first and where it is. On another listener it is fine. */
static void
test_name_claimed_twice(void **state)
{
	struct fixture *f = *state;
	char want[256];

	main_ini(f, "");
	cert(f, "one", "dup.example", "DNS:dup.example");
	unit_put(f->dir, "hosts.d/a.ini",
	    "[host one]\n"				/* 1 */
	    "cert = ../one.pem\n"			/* 2 */
	    "key = ../one.key\n"			/* 3 */
	    "backend = 127.0.0.1:1\n"			/* 4 */
	    "names = dup.example\n"			/* 5 */
	    "[host two]\n"				/* 6 */
	    "cert = ../one.pem\n"			/* 7 */
	    "key = ../one.key\n"			/* 8 */
	    "backend = 127.0.0.1:2\n"			/* 9 */
	    "names = dup.example\n");			/* 10 */
	snprintf(want, sizeof(want), "%s:10: host 'two': name 'dup.example' on 127.0.0.1:8443 "
	    "is already claimed by host 'one' (%s:1)", unit_path(f->dir, "hosts.d/a.ini"),
	    unit_path(f->dir, "hosts.d/a.ini"));
	load_fails(f, want);

	diag_free(&f->d);
	unit_put(f->dir, "hosts.d/a.ini",
	    "[host one]\ncert = ../one.pem\nkey = ../one.key\nbackend = 127.0.0.1:1\n"
	    "names = dup.example\n"
	    "[host two]\ncert = ../one.pem\nkey = ../one.key\nbackend = 127.0.0.1:2\n"
	    "names = dup.example\nlisten = 127.0.0.1:9443\n");
	load_ok(f);
	assert_int_equal(f->g->n_listeners, 2);
}

static void
test_two_default_hosts(void **state)
{
	struct fixture *f = *state;

	main_ini(f, "");
	cert(f, "a", "a.example", "DNS:a.example");
	cert(f, "b", "b.example", "DNS:b.example");
	unit_put(f->dir, "hosts.d/a.ini",
	    "[host a]\ncert = ../a.pem\nkey = ../a.key\nbackend = 127.0.0.1:1\ndefault = yes\n"
	    "[host b]\ncert = ../b.pem\nkey = ../b.key\nbackend = 127.0.0.1:2\ndefault = yes\n");
	load_fails(f, "host 'b': 127.0.0.1:8443 already has a default host, 'a'");
}

/* A host whose files do not load: an error (host_errors = fail, the
 * default), or with skip a warning, the host left out of the name tables
 * and the others served; all of them left out is an error. */
static void
test_host_errors(void **state)
{
	struct fixture *f = *state;
	static const char hosts[] =
	    "[host good]\ncert = ../good.pem\nkey = ../good.key\nbackend = 127.0.0.1:1\n"
	    "[host bad]\ncert = ../missing.pem\nkey = ../missing.key\nbackend = 127.0.0.1:2\n"
	    "names = bad.example\n";

	main_ini(f, "");
	cert(f, "good", "good.example", "DNS:good.example");
	unit_put(f->dir, "hosts.d/a.ini", hosts);
	load_fails(f, "missing.pem");

	diag_free(&f->d);
	main_ini(f, "host_errors = skip");
	load_ok(f);
	assert_int_equal(f->g->n_skipped, 1);
	assert_int_equal(host_named(f->g, "bad")->skipped, 1);
	assert_int_equal(host_named(f->g, "good")->skipped, 0);
	assert_true(diag_has(&f->d, "warning: host 'bad' left out (host_errors = skip): "));
	assert_null(lookup(&f->g->listeners[0], "bad.example"));
	assert_ptr_equal(lookup(&f->g->listeners[0], "good.example"), host_named(f->g, "good"));

	gen_free(f->g);
	f->g = NULL;
	diag_free(&f->d);
	unit_put(f->dir, "hosts.d/a.ini",
	    "[host bad]\ncert = ../missing.pem\nkey = ../missing.key\nbackend = 127.0.0.1:2\n");
	load_fails(f, "no host could be loaded");
}

/* Started as root with `user`: a warning for each file that user could not
 * read, at the line that names it (every reload runs as the user). */
static void
test_user_cannot_read(void **state)
{
	struct fixture *f = *state;
	char want[300];

	if (geteuid() != 0)
		skip();
	main_ini(f, "user = nobody");
	cert(f, "shop", "shop.example", "DNS:shop.example");
	unit_put(f->dir, "hosts.d/a.ini",
	    "[host shop]\n"				/* 1 */
	    "cert = ../shop.pem\n"			/* 2 */
	    "key = ../shop.key\n"			/* 3 */
	    "backend = 127.0.0.1:1\n");			/* 4 */
	/* the tree open to others (the paths pass through hosts.d/), the key
	 * not */
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(chmod(unit_path(f->dir, "hosts.d"), 0755), 0);
	assert_int_equal(chmod(unit_path(f->dir, "shop.pem"), 0644), 0);
	load_ok(f);
	snprintf(want, sizeof(want), "%s:3: warning: user nobody cannot read %s: every reload "
	    "will fail", unit_path(f->dir, "hosts.d/a.ini"),
	    unit_path(f->dir, "hosts.d/../shop.key"));
	if (!diag_has(&f->d, want)) {
		unit_print_diag(&f->d);
		fail_msg("no warning '%s'", want);
	}
	assert_false(diag_has(&f->d, "shop.pem: every reload"));	/* 0644 */

	/* readable by the user: no warning */
	gen_free(f->g);
	f->g = NULL;
	diag_free(&f->d);
	assert_int_equal(chmod(unit_path(f->dir, "shop.key"), 0644), 0);
	load_ok(f);
	assert_false(diag_has(&f->d, "cannot read"));
}

/* ------------------------------------------------------------------ */
/* gen_backend_for on a host made by hand                               */

static void
test_backend_for(void **state)
{
	struct host_config c;
	struct alpn_backend ab[2];
	struct pool pools[2];
	struct host h;

	(void)state;
	memset(&c, 0, sizeof(c));
	memset(ab, 0, sizeof(ab));
	memset(pools, 0, sizeof(pools));
	memset(&h, 0, sizeof(h));
	ab[0].proto = "h2";
	ab[1].proto = "http/1.1";
	c.alpn_backends = ab;
	c.n_alpn_backends = 2;
	h.cfg = &c;
	h.alpn_pools = pools;

	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h2", 2), &pools[0]);
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"http/1.1", 8), &pools[1]);
	/* no ALPN, another protocol, a prefix or an extension of one: the default */
	assert_ptr_equal(gen_backend_for(&h, NULL, 0), &h.pool);
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h2", 0), &h.pool);
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h3", 2), &h.pool);
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h", 1), &h.pool);
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h2c", 3), &h.pool);
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"http/1.1x", 9), &h.pool);
	/* the length counts, not a terminator: "h2" as the first 2 bytes of "h2c" */
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h2c", 2), &pools[0]);
	/* none configured */
	c.n_alpn_backends = 0;
	assert_ptr_equal(gen_backend_for(&h, (const unsigned char *)"h2", 2), &h.pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_for),
		cmocka_unit_test_setup_teardown(test_listeners_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_for_loaded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_owns_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_claimed_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_default_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_cannot_read, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
