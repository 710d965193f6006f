/*
 * test_config.c: config_load() and config_load_all() on files written into
 * a fresh temporary directory per test: values, [defaults] inheritance,
 * host building, and every error, most of them in one table
 * (test_errors_table). One value alone is test_config_value.c's; the line
 * reader alone, test_config_read.c's.
 *
 * Every error is checked with its full "FILE:LINE: " prefix. The line number
 * of each line of a test file is in the comment at its right.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clientauth.h"
#include "config.h"
#include "config_value.h"
#include "diag.h"
#include "log.h"
#include "unit_util.h"

/*
 * getaddrinfo, counted: this definition comes before the C library's at
 * link time (no LD_PRELOAD), and passes every call on to it.
 */
static int lookups;	/* of "localhost" */

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	static int (*next)(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);

	if (next == NULL)
		*(void **)&next = dlsym(RTLD_NEXT, "getaddrinfo");
	if (node != NULL && strcmp(node, "localhost") == 0)
		lookups++;
	return next(node, service, hints, res);
}

/* ------------------------------------------------------------------ */
/* fixture                                                              */

struct ctx {
	char dir[64];
	char main[PATH_MAX];
	struct diag d;
	struct config *c;
};

static int
setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));
	char sub[PATH_MAX + 16];

	if (x == NULL)
		return -1;
	if (unit_tmpdir(x->dir, sizeof(x->dir), "test_config") != 0) {
		free(x);
		return -1;
	}
	snprintf(x->main, sizeof(x->main), "%s/main.ini", x->dir);
	/* an existing, empty hosts.d, so that the usual hosts glob matches nothing */
	snprintf(sub, sizeof(sub), "%s/hosts.d", x->dir);
	if (mkdir(sub, 0700) != 0)
		return -1;
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct ctx *x = *state;

	config_free(x->c);
	diag_free(&x->d);
	(void)unit_rmtree(x->dir);
	free(x);
	return 0;
}

static struct config *
load(struct ctx *x, const char *text)
{
	unit_put(x->dir, "main.ini", text);
	x->c = config_load(x->main, &x->d);
	return x->c;
}

#define LOAD_OK(x, text) load_ok((x), (text), __LINE__)
static struct config *
load_ok(struct ctx *x, const char *text, int line)
{
	struct config *c = load(x, text);

	if (c == NULL || x->d.n != 0) {
		unit_print_diag(&x->d);
		fail_msg("line %d: config_load failed (%zu messages)", line, x->d.n);
	}
	return c;
}

#define LOAD_FAILS(x, text) load_fails((x), (text), __LINE__)
static void
load_fails(struct ctx *x, const char *text, int line)
{
	struct config *c = load(x, text);

	if (c != NULL || x->d.n_errors == 0) {
		unit_print_diag(&x->d);
		fail_msg("line %d: config_load accepted a bad config", line);
	}
}

/* Some message must contain "DIR/REL:LINE: MSG" (line 0: "DIR/REL: MSG"). */
#define EXPECT_AT(x, rel, ln, msg) expect_at((x), (rel), (ln), (msg), __LINE__)
static void
expect_at(const struct ctx *x, const char *rel, int ln, const char *msg, int line)
{
	char needle[2 * PATH_MAX + 600];

	if (ln > 0)
		snprintf(needle, sizeof(needle), "%s/%s:%d: %s", x->dir, rel, ln, msg);
	else
		snprintf(needle, sizeof(needle), "%s/%s: %s", x->dir, rel, msg);
	if (!diag_has(&x->d, needle)) {
		unit_print_diag(&x->d);
		fail_msg("line %d: no diagnostic '%s'", line, needle);
	}
}

#define EXPECT_ERRORS(x, n) expect_errors((x), (n), __LINE__)
static void
expect_errors(const struct ctx *x, size_t n, int line)
{
	if (x->d.n_errors != n) {
		unit_print_diag(&x->d);
		fail_msg("line %d: %zu errors, expected %zu", line, x->d.n_errors, n);
	}
}

#define EXPECT_NOT(x, s) expect_not((x), (s), __LINE__)
static void
expect_not(const struct ctx *x, const char *s, int line)
{
	if (diag_has(&x->d, s)) {
		unit_print_diag(&x->d);
		fail_msg("line %d: unexpected diagnostic containing '%s'", line, s);
	}
}

static const struct host_config *
host(const struct config *c, const char *label)
{
	for (size_t i = 0; i < c->n_hosts; i++)
		if (strcmp(c->hosts[i].label, label) == 0)
			return &c->hosts[i];
	fail_msg("no host '%s'", label);
	return NULL;
}

/* The usual head of a main file: lines 1..3. */
#define GLOBAL3 \
	"[global]\n"				/* 1 */ \
	"listen = 127.0.0.1:8443\n"		/* 2 */ \
	"hosts = hosts.d/*.ini\n"		/* 3 */

/* A complete host: 4 lines. */
#define HOST4(label) \
	"[host " label "]\n" \
	"cert = " label ".pem\n" \
	"key = " label ".key\n" \
	"backend = 127.0.0.1:9000\n"

/* ------------------------------------------------------------------ */
/* values                                                               */

static void
test_minimal_and_builtin_defaults(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *h;

	c = LOAD_OK(x, GLOBAL3
	    "[host a]\n"			/* 4 */
	    "cert = a.pem\n"			/* 5 */
	    "key = a.key\n"			/* 6 */
	    "backend = 127.0.0.1:9000\n");	/* 7 */
	assert_string_equal(c->main_file, x->main);
	assert_int_equal(c->n_hosts, 1);
	h = &c->hosts[0];
	assert_string_equal(h->label, "a");
	assert_string_equal(h->at.file, x->main);
	assert_int_equal(h->at.line, 4);
	assert_string_equal(h->cert, unit_path(x->dir, "a.pem"));
	assert_string_equal(h->key, unit_path(x->dir, "a.key"));
	assert_string_equal(h->backend.v[0].text, "127.0.0.1:9000");
	assert_int_equal(h->loc[K_CERT].line, 5);
	assert_int_equal(h->loc[K_KEY].line, 6);
	assert_int_equal(h->loc[K_BACKEND].line, 7);

	/* built-in defaults, located at line 0 */
	assert_int_equal(h->protocols.min, CONFIG_TLS1_2_VERSION);
	assert_int_equal(h->protocols.max, CONFIG_TLS1_3_VERSION);
	assert_int_equal(h->handshake_timeout_ms, 10000);
	assert_int_equal(h->connect_timeout_ms, 5000);
	assert_int_equal(h->idle_timeout_ms, 300000);
	assert_int_equal(h->loc[K_HANDSHAKE_TIMEOUT].line, 0);
	assert_int_equal(h->loc[K_PROTOCOLS].line, 0);
	assert_int_equal(h->is_default, 0);
	assert_int_equal(h->names.n, 0);
	assert_int_equal(h->alpn.n, 0);
	assert_int_equal(h->n_alpn_backends, 0);
	assert_non_null(h->ciphers);
	assert_non_null(h->ciphersuites);
	assert_non_null(h->groups);
	assert_non_null(strstr(h->ciphersuites, "TLS_AES_128_GCM_SHA256"));

	/* the host listens where [global] does */
	assert_int_equal(h->listen.n, 1);
	assert_string_equal(h->listen.v[0].text, "127.0.0.1:8443");
	assert_int_equal(h->loc[K_LISTEN].line, 2);

	/* [global] */
	assert_int_equal(c->g.listen.n, 1);
	assert_string_equal(c->g.listen.v[0].text, "127.0.0.1:8443");
	assert_string_equal(c->g.hosts, unit_path(x->dir, "hosts.d/*.ini"));
	assert_int_equal(c->g.log_dest, LOG_DEST_STDERR);
	assert_int_equal(c->g.log_level, LOG_LVL_INFO);
	assert_int_equal(c->g.shutdown_timeout_ms, 30000);
	assert_in_range(c->g.workers, 1, 256);
}


static void
test_global_listen_default(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, "[global]\n" "hosts = hosts.d/*.ini\n" HOST4("a"));
	assert_int_equal(c->g.listen.n, 2);
	assert_string_equal(c->g.listen.v[0].text, "0.0.0.0:443");
	assert_string_equal(c->g.listen.v[1].text, "[::]:443");
	assert_int_equal(c->hosts[0].listen.n, 2);
}


static void
test_global_listen_list(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, "[global]\n"
	    "listen = 127.0.0.1:1 [::1]:2,127.0.0.2:4 ,\t127.0.0.1:0003\n"
	    "hosts = hosts.d/*.ini\n" HOST4("a"));
	assert_int_equal(c->g.listen.n, 4);
	assert_string_equal(c->g.listen.v[0].text, "127.0.0.1:1");
	assert_string_equal(c->g.listen.v[1].text, "[::1]:2");
	assert_string_equal(c->g.listen.v[2].text, "127.0.0.2:4");
	assert_string_equal(c->g.listen.v[3].text, "127.0.0.1:3");
	assert_int_equal(c->hosts[0].listen.n, 4);
	assert_string_equal(c->hosts[0].listen.v[1].text, "[::1]:2");
}


static void
test_stats_listen(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, GLOBAL3 HOST4("a"));
	assert_int_equal(c->g.stats_listen.len, 0);	/* off by default */
	config_free(x->c);
	x->c = NULL;
	c = LOAD_OK(x, GLOBAL3 "stats_listen = 127.0.0.1:9199\n" HOST4("a"));
	assert_string_equal(c->g.stats_listen.text, "127.0.0.1:9199");
	assert_int_equal(c->g.loc[K_G_STATS_LISTEN].line, 4);
	config_free(x->c);
	x->c = NULL;
	c = LOAD_OK(x, GLOBAL3 "stats_listen = unix:/run/tlsfront/stats.sock\n" HOST4("a"));
	assert_string_equal(c->g.stats_listen.text, "unix:/run/tlsfront/stats.sock");
}

static void
test_workers_number(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, GLOBAL3 "workers = 4\n" HOST4("a"));
	assert_int_equal(c->g.workers, 4);
	assert_int_equal(c->g.loc[K_G_WORKERS].line, 4);
}


static void
test_workers_bounds_ok(void **state)
{
	struct ctx *x = *state;

	assert_int_equal(LOAD_OK(x, GLOBAL3 "workers = 256\n" HOST4("a"))->g.workers, 256);
	config_free(x->c);
	x->c = NULL;
	assert_int_equal(LOAD_OK(x, GLOBAL3 "workers = 1\n" HOST4("a"))->g.workers, 1);
}


/* The count is value_workers_auto's, tested with fixed CPU counts in
 * test_config_value.c; here, that "auto" and the default reach it. */
static void
test_workers_auto(void **state)
{
	struct ctx *x = *state;
	int want = value_workers_auto(sysconf(_SC_NPROCESSORS_ONLN));

	assert_int_equal(LOAD_OK(x, GLOBAL3 "workers = auto\n" HOST4("a"))->g.workers, want);
	assert_int_equal(x->c->g.loc[K_G_WORKERS].line, 4);
	config_free(x->c);
	x->c = NULL;
	assert_int_equal(LOAD_OK(x, GLOBAL3 HOST4("a"))->g.workers, want);
	assert_int_equal(x->c->g.loc[K_G_WORKERS].line, 0);
}

static void
test_durations(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *h;

	c = LOAD_OK(x, GLOBAL3
	    "shutdown_timeout = 7\n"		/* 4 */
	    HOST4("a")				/* 5..8 */
	    "handshake_timeout = 250ms\n"	/* 9 */
	    "connect_timeout = 10s\n"		/* 10 */
	    "idle_timeout = 1h\n"		/* 11 */
	    HOST4("b")
	    "idle_timeout = 5m\n");
	assert_int_equal(c->g.shutdown_timeout_ms, 7000);
	h = host(c, "a");
	assert_int_equal(h->handshake_timeout_ms, 250);
	assert_int_equal(h->connect_timeout_ms, 10000);
	assert_int_equal(h->idle_timeout_ms, 3600000);
	assert_int_equal(h->loc[K_HANDSHAKE_TIMEOUT].line, 9);
	assert_int_equal(h->loc[K_IDLE_TIMEOUT].line, 11);
	h = host(c, "b");
	assert_int_equal(h->idle_timeout_ms, 300000);
	assert_int_equal(h->handshake_timeout_ms, 10000);
}


static void
test_duration_bounds_ok(void **state)
{
	struct ctx *x = *state;
	const struct host_config *h;

	h = &LOAD_OK(x, GLOBAL3 "shutdown_timeout = 0\n" HOST4("a")
	    "handshake_timeout = 100ms\n"
	    "connect_timeout = 1h\n"
	    "idle_timeout = 168h\n")->hosts[0];
	assert_int_equal(x->c->g.shutdown_timeout_ms, 0);
	assert_int_equal(h->handshake_timeout_ms, 100);
	assert_int_equal(h->connect_timeout_ms, 3600000);
	assert_int_equal(h->idle_timeout_ms, 168 * 3600000U);
}


static void
test_log_settings(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, GLOBAL3 "log = syslog\n" "log_level = debug\n" HOST4("a"));
	assert_int_equal(c->g.log_dest, LOG_DEST_SYSLOG);
	assert_int_equal(c->g.log_level, LOG_LVL_DEBUG);
}


static void
test_log_levels(void **state)
{
	static const struct { const char *s; int v; } lv[] = {
		{ "error", LOG_LVL_ERROR }, { "warn", LOG_LVL_WARN },
		{ "info", LOG_LVL_INFO }, { "debug", LOG_LVL_DEBUG },
	};
	struct ctx *x = *state;
	char text[512];

	for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
		snprintf(text, sizeof(text), GLOBAL3 "log_level = %s\n" HOST4("a"), lv[i].s);
		assert_int_equal(LOAD_OK(x, text)->g.log_level, lv[i].v);
		config_free(x->c);
		x->c = NULL;
	}
}


static void
test_defaults_inheritance_and_override(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *a, *b;

	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "cert = certs/default.pem\n"	/* 5 */
	    "key = certs/default.key\n"		/* 6 */
	    "backend = 127.0.0.1:9000\n"	/* 7 */
	    "protocols = TLSv1.3\n"		/* 8 */
	    "idle_timeout = 1m\n"		/* 9 */
	    "alpn = h2 http/1.1\n"		/* 10 */
	    "[host a]\n"			/* 11 */
	    "names = a.example.com\n"		/* 12 */
	    "[host b]\n"			/* 13 */
	    "backend = unix:/run/b.sock\n"	/* 14 */
	    "protocols = TLSv1.2\n"		/* 15 */
	    "idle_timeout = 2m\n"		/* 16 */
	    "cert = b.pem\n"			/* 17 */
	    "alpn = http/1.1\n");		/* 18 */
	assert_int_equal(c->n_hosts, 2);
	a = host(c, "a");
	b = host(c, "b");

	assert_string_equal(a->cert, unit_path(x->dir, "certs/default.pem"));
	assert_string_equal(a->key, unit_path(x->dir, "certs/default.key"));
	assert_string_equal(a->backend.v[0].text, "127.0.0.1:9000");
	assert_int_equal(a->protocols.min, CONFIG_TLS1_3_VERSION);
	assert_int_equal(a->protocols.max, CONFIG_TLS1_3_VERSION);
	assert_int_equal(a->idle_timeout_ms, 60000);
	assert_int_equal(a->alpn.n, 2);
	assert_string_equal(a->alpn.v[0], "h2");
	assert_string_equal(a->alpn.v[1], "http/1.1");
	assert_int_equal(a->loc[K_CERT].line, 5);
	assert_int_equal(a->loc[K_BACKEND].line, 7);
	assert_int_equal(a->loc[K_ALPN].line, 10);
	assert_int_equal(a->handshake_timeout_ms, 10000);	/* built in */

	assert_string_equal(b->cert, unit_path(x->dir, "b.pem"));
	assert_string_equal(b->key, unit_path(x->dir, "certs/default.key"));
	assert_string_equal(b->backend.v[0].text, "unix:/run/b.sock");
	assert_int_equal(b->protocols.min, CONFIG_TLS1_2_VERSION);
	assert_int_equal(b->protocols.max, CONFIG_TLS1_2_VERSION);
	assert_int_equal(b->idle_timeout_ms, 120000);
	assert_int_equal(b->alpn.n, 1);
	assert_string_equal(b->alpn.v[0], "http/1.1");
	assert_int_equal(b->loc[K_CERT].line, 17);
	assert_int_equal(b->loc[K_KEY].line, 6);
	assert_int_equal(b->loc[K_BACKEND].line, 14);
}


static void
test_listen_defaults_and_host(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"
	    "listen = 127.0.0.1:9443\n"		/* 5 */
	    HOST4("a")
	    HOST4("b")
	    "listen = 127.0.0.1:7443 [::1]:7443\n");	/* 14 */
	assert_int_equal(host(c, "a")->listen.n, 1);
	assert_string_equal(host(c, "a")->listen.v[0].text, "127.0.0.1:9443");
	assert_int_equal(host(c, "a")->loc[K_LISTEN].line, 5);
	assert_int_equal(host(c, "b")->listen.n, 2);
	assert_string_equal(host(c, "b")->listen.v[1].text, "[::1]:7443");
	assert_int_equal(host(c, "b")->loc[K_LISTEN].line, 14);
}


static void
test_host_files_and_relative_paths(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *a, *b;
	char sub[PATH_MAX + 32];

	snprintf(sub, sizeof(sub), "%s/hosts.d/notes", x->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	unit_put(x->dir, "hosts.d/b.ini",
	    "; host b\n"			/* 1 */
	    "[host b]\n"			/* 2 */
	    "cert = b.pem\n"			/* 3 */
	    "key = /etc/ssl/b.key\n"		/* 4 */
	    "backend = 127.0.0.1:9002\n");	/* 5 */
	unit_put(x->dir, "hosts.d/a.ini",
	    "[host a]\n"			/* 1 */
	    "key = keys/a.key\n"		/* 2 */
	    "backend = 127.0.0.1:9001\n");	/* 3 */
	unit_put(x->dir, "hosts.d/readme.txt", "this is not ini\n");
	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "cert = certs/d.pem\n");		/* 5 */
	assert_int_equal(c->n_hosts, 2);
	a = &c->hosts[0];
	b = &c->hosts[1];
	/* host files are read in sorted order */
	assert_string_equal(a->label, "a");
	assert_string_equal(b->label, "b");
	assert_string_equal(a->at.file, unit_path(x->dir, "hosts.d/a.ini"));
	assert_int_equal(a->at.line, 1);
	assert_string_equal(b->at.file, unit_path(x->dir, "hosts.d/b.ini"));
	assert_int_equal(b->at.line, 2);

	/* relative to the file the value was written in */
	assert_string_equal(a->cert, unit_path(x->dir, "certs/d.pem"));
	assert_string_equal(a->loc[K_CERT].file, x->main);
	assert_int_equal(a->loc[K_CERT].line, 5);
	assert_string_equal(a->key, unit_path(x->dir, "hosts.d/keys/a.key"));
	assert_string_equal(a->loc[K_KEY].file, unit_path(x->dir, "hosts.d/a.ini"));
	assert_string_equal(b->cert, unit_path(x->dir, "hosts.d/b.pem"));
	assert_string_equal(b->key, "/etc/ssl/b.key");
	assert_string_equal(c->g.hosts, unit_path(x->dir, "hosts.d/*.ini"));
}

/* Regression (was a bug): config.c resolve_path() leaves paths relative when the main file was
 * named without a directory ("main.ini"), but config.h promises absolute
 * cert/key paths and an absolute hosts glob. */

/* Regression (was a bug): config.c resolve_path() leaves paths relative when the main file was
 * named without a directory ("main.ini"), but config.h promises absolute
 * cert/key paths and an absolute hosts glob. */
static void
test_relative_main_file_gives_absolute_paths(void **state)
{
	struct ctx *x = *state;
	char old[PATH_MAX];
	struct config *c;
	const char *cert, *glob;
	int ok;

	unit_put(x->dir, "main.ini", GLOBAL3 HOST4("a"));
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(x->dir), 0);
	c = config_load("main.ini", &x->d);
	assert_int_equal(chdir(old), 0);
	if (c == NULL) {
		unit_print_diag(&x->d);
		fail_msg("config_load failed");
	}
	x->c = c;
	cert = c->hosts[0].cert;
	glob = c->g.hosts;
	ok = cert[0] == '/' && glob[0] == '/';
	if (!ok)
		fail_msg("relative main file: cert '%s', hosts '%s' (expected absolute)",
		    cert, glob);
	assert_non_null(strstr(cert, "/a.pem"));
}


static void
test_backend_proto(void **state)
{
	struct ctx *x = *state;
	const struct host_config *h;

	h = &LOAD_OK(x, GLOBAL3 HOST4("a")	/* 4..7 */
	    "alpn = h2, http/1.1\n"		/* 8 */
	    "backend.h2 = 127.0.0.1:9001\n"	/* 9 */
	    "backend.http/1.1 = unix:/run/h1.sock\n")->hosts[0];	/* 10 */
	assert_int_equal(h->alpn.n, 2);
	assert_int_equal(h->n_alpn_backends, 2);
	assert_string_equal(h->alpn_backends[0].proto, "h2");
	assert_string_equal(h->alpn_backends[0].pool.v[0].text, "127.0.0.1:9001");
	assert_int_equal(h->alpn_backends[0].at.line, 9);
	assert_string_equal(h->alpn_backends[0].at.file, x->main);
	assert_string_equal(h->alpn_backends[1].proto, "http/1.1");
	assert_string_equal(h->alpn_backends[1].pool.v[0].text, "unix:/run/h1.sock");
	assert_int_equal(h->alpn_backends[1].at.line, 10);
	assert_string_equal(h->backend.v[0].text, "127.0.0.1:9000");
}


static void
test_backend_proto_from_defaults(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *h;

	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "backend.h2 = 127.0.0.1:9001\n"	/* 5 */
	    HOST4("a")				/* 6..9 */
	    "alpn = h2 http/1.1\n"		/* 10 */
	    HOST4("b")				/* 11..14 */
	    "alpn = h2\n"			/* 15 */
	    "backend.h2 = 127.0.0.1:9002\n"	/* 16 */
	    HOST4("c"));			/* no alpn: the h2 backend is not for it */
	h = host(c, "a");
	assert_int_equal(h->n_alpn_backends, 1);
	assert_string_equal(h->alpn_backends[0].proto, "h2");
	assert_string_equal(h->alpn_backends[0].pool.v[0].text, "127.0.0.1:9001");
	assert_int_equal(h->alpn_backends[0].at.line, 5);
	h = host(c, "b");
	assert_int_equal(h->n_alpn_backends, 1);
	assert_string_equal(h->alpn_backends[0].pool.v[0].text, "127.0.0.1:9002");
	assert_int_equal(h->alpn_backends[0].at.line, 16);
	assert_int_equal(host(c, "c")->n_alpn_backends, 0);
}


static void
test_names_normalised(void **state)
{
	struct ctx *x = *state;
	const struct host_config *h;

	h = &LOAD_OK(x, GLOBAL3 HOST4("a")
	    "names = WWW.Example.com, *.Example.ORG. api.example.com\n")->hosts[0];
	assert_int_equal(h->names.n, 3);
	assert_string_equal(h->names.v[0], "www.example.com");
	assert_string_equal(h->names.v[1], "*.example.org");
	assert_string_equal(h->names.v[2], "api.example.com");
}


static void
test_names_repeat_adds(void **state)
{
	struct ctx *x = *state;
	const struct host_config *h;

	h = &LOAD_OK(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "names = a.example.com b.example.com\n"	/* 8 */
	    "alpn = h2\n"			/* 9 */
	    "names = *.example.org\n"		/* 10 */
	    "names = C.Example.Com.\n")->hosts[0];	/* 11 */
	assert_int_equal(h->names.n, 4);
	assert_string_equal(h->names.v[0], "a.example.com");
	assert_string_equal(h->names.v[1], "b.example.com");
	assert_string_equal(h->names.v[2], "*.example.org");
	assert_string_equal(h->names.v[3], "c.example.com");
	/* the key is located at its first line */
	assert_int_equal(h->loc[K_NAMES].line, 8);
}

/* More names than one line of 196 bytes holds: 300 on 30 lines. */

/* More names than one line of 196 bytes holds: 300 on 30 lines. */
static void
test_names_300_on_30_lines(void **state)
{
	struct ctx *x = *state;
	char *text = malloc(64 * 1024), name[64];
	size_t off;
	const struct config *c;
	const struct host_config *h;

	assert_non_null(text);
	off = (size_t)snprintf(text, 64 * 1024, "%s", HOST4("many"));
	for (int line = 0; line < 30; line++) {
		size_t start = off;
		off += (size_t)snprintf(text + off, 64 * 1024 - off, "names =");
		for (int i = 0; i < 10; i++)
			off += (size_t)snprintf(text + off, 64 * 1024 - off, " n%d.many.test",
			    line * 10 + i);
		assert_true(off - start <= CONFIG_MAX_LINE);
		text[off++] = '\n';
	}
	text[off] = '\0';
	unit_put(x->dir, "hosts.d/many.ini", text);
	free(text);
	c = LOAD_OK(x, GLOBAL3);
	h = host(c, "many");
	assert_int_equal(h->names.n, 300);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "n%d.many.test", i);
		assert_string_equal(h->names.v[i], name);
	}
	assert_string_equal(h->loc[K_NAMES].file, unit_path(x->dir, "hosts.d/many.ini"));
	assert_int_equal(h->loc[K_NAMES].line, 5);
}

/* config_value_text spells values the way the configuration does. */

/* config_value_text spells values the way the configuration does. */
static void
test_value_text(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *h;
	char buf[256];

	c = LOAD_OK(x, GLOBAL3
	    "accept_proxy = 10.0.0.0/8, ::1\n"	/* 4 */
	    "shutdown_timeout = 90000ms\n"	/* 5 */
	    HOST4("a")				/* 6..9 */
	    "idle_timeout = 1500ms\n"		/* 10 */
	    "connect_timeout = 120\n"		/* 11 */
	    "protocols = TLSv1.3 TLSv1.1\n"	/* 12 */
	    "proxy_protocol = v2\n"		/* 13 */
	    "proxy_client_cert = der\n"		/* 14 */
	    "proxy_client_cert_tlv = 0xEA\n"	/* 15 */
	    "session_tickets = off\n"		/* 16 */
	    "ciphers = A, B C\n"		/* 17 */
	    "names = a.test b.test\n"		/* 18 */
	    "names = c.test\n");		/* 19 */
	h = &c->hosts[0];
#define TEXT(hc, k, want) do { \
	assert_int_equal(config_value_text(c, (hc), (k), buf, sizeof(buf)), strlen(want)); \
	assert_string_equal(buf, (want)); } while (0)
	TEXT(NULL, K_G_LISTEN, "127.0.0.1:8443");
	TEXT(NULL, K_G_ACCEPT_PROXY, "10.0.0.0/8 ::1/128");
	TEXT(NULL, K_G_SHUTDOWN_TIMEOUT, "90s");
	TEXT(NULL, K_G_TICKET_KEY_ROTATION, "12h");
	TEXT(NULL, K_G_LOG_LEVEL, "info");
	TEXT(h, K_IDLE_TIMEOUT, "1500ms");
	TEXT(h, K_CONNECT_TIMEOUT, "2m");
	TEXT(h, K_HANDSHAKE_TIMEOUT, "10s");
	TEXT(h, K_PROTOCOLS, "TLSv1.1 TLSv1.2 TLSv1.3");
	TEXT(h, K_PROXY_PROTOCOL, "v2");
	TEXT(h, K_PROXY_CLIENT_CERT_TLV, "0xEA");
	TEXT(h, K_SESSION_TICKETS, "no");
	TEXT(h, K_DEFAULT, "no");
	TEXT(h, K_CIPHERS, "A:B:C");
	TEXT(h, K_NAMES, "a.test b.test c.test");
	TEXT(h, K_BACKEND, "127.0.0.1:9000");
	TEXT(h, K_CERT, unit_path(x->dir, "a.pem"));
#undef TEXT
	/* not set, no default */
	assert_int_equal(config_value_text(c, h, K_CLIENT_CA, buf, sizeof(buf)), -1);
	assert_int_equal(config_value_text(c, NULL, K_G_STATS_LISTEN, buf, sizeof(buf)), -1);
	assert_int_equal(config_value_text(c, h, K_ALPN, buf, sizeof(buf)), -1);
	/* a short buffer: cut, NUL-terminated, the whole length returned */
	assert_int_equal(config_value_text(c, h, K_NAMES, buf, 5), 20);
	assert_string_equal(buf, "a.te");
	assert_string_equal(config_key_name(K_NAMES), "names");
	assert_true(config_key_is_global(K_G_WORKERS));
	assert_false(config_key_is_global(K_LISTEN));
}


static void
test_default_bool(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "on", "1" };
	static const char *const no[] = { "no", "False", "off", "0" };
	struct ctx *x = *state;
	char text[512];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), GLOBAL3 HOST4("a") "default = %s\n", yes[i]);
		assert_int_equal(LOAD_OK(x, text)->hosts[0].is_default, 1);
		config_free(x->c);
		x->c = NULL;
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text), GLOBAL3 HOST4("a") "default = %s\n", no[i]);
		assert_int_equal(LOAD_OK(x, text)->hosts[0].is_default, 0);
		config_free(x->c);
		x->c = NULL;
	}
}


static void
test_protocols(void **state)
{
	static const struct { const char *s; int min, max; } p[] = {
		{ "TLSv1.3", CONFIG_TLS1_3_VERSION, CONFIG_TLS1_3_VERSION },
		{ "tlsv1.2", CONFIG_TLS1_2_VERSION, CONFIG_TLS1_2_VERSION },
		{ "TLSv1.3, TLSv1.2", CONFIG_TLS1_2_VERSION, CONFIG_TLS1_3_VERSION },
		{ "TLSv1 TLSv1.3", CONFIG_TLS1_VERSION, CONFIG_TLS1_3_VERSION },
		{ "TLSv1.0 TLSv1.1", CONFIG_TLS1_VERSION, CONFIG_TLS1_1_VERSION },
	};
	struct ctx *x = *state;
	char text[512];

	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		const struct host_config *h;

		snprintf(text, sizeof(text), GLOBAL3 HOST4("a") "protocols = %s\n", p[i].s);
		h = &LOAD_OK(x, text)->hosts[0];
		assert_int_equal(h->protocols.min, p[i].min);
		assert_int_equal(h->protocols.max, p[i].max);
		config_free(x->c);
		x->c = NULL;
	}
}


static void
test_openssl_lists_blank_separated(void **state)
{
	struct ctx *x = *state;
	const struct host_config *h;

	h = &LOAD_OK(x, GLOBAL3 HOST4("a")
	    "groups = X25519 prime256v1\n"
	    "ciphers = ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384\n")->hosts[0];
	assert_string_equal(h->groups, "X25519:prime256v1");
	assert_string_equal(h->ciphers, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384");
}


static void
test_comments(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, "; leading comment\n"
	    "# another\n"
	    "\n"
	    "[global]   ; section comment\n"
	    "listen = 127.0.0.1:8443 ; inline\n"
	    "hosts = hosts.d/*.ini\n"
	    "[host a]\n"
	    "cert = a.pem\n"
	    "key = a.key\n"
	    "backend = 127.0.0.1:9000    ; the app\n"
	    "   ; indented comment\n");
	assert_string_equal(c->g.listen.v[0].text, "127.0.0.1:8443");
	assert_string_equal(c->hosts[0].backend.v[0].text, "127.0.0.1:9000");
}


static void
test_no_final_newline(void **state)
{
	struct ctx *x = *state;

	assert_string_equal(LOAD_OK(x, GLOBAL3
	    "[host a]\ncert = a.pem\nkey = a.key\nbackend = 127.0.0.1:9000")->hosts[0].backend.v[0].text,
	    "127.0.0.1:9000");
}


static void
test_bom_accepted(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	/* the BOM must not glue itself to "[global]" on line 1 */
	c = LOAD_OK(x, "\xEF\xBB\xBF" GLOBAL3 "workers = 3\n" HOST4("a"));
	assert_int_equal(c->n_hosts, 1);
	assert_int_equal(c->g.workers, 3);
	assert_string_equal(c->g.listen.v[0].text, "127.0.0.1:8443");
}


/* [acme] and acme hosts: values, defaults, the certificate path */
static void
test_acme(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *h;
	char want[PATH_MAX];

	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "cert = d.pem\n"			/* 5 */
	    "key = d.key\n"			/* 6 */
	    "[acme]\n"				/* 7 */
	    "directory = https://ca.test/dir,x\n"	/* 8: a comma stays */
	    "contact = mailto:admin@a.test\n"	/* 9 */
	    "state_dir = acme\n"		/* 10: relative to the file */
	    "renew_before = 2000d\n"		/* 11: past T_DURATION's range */
	    "key_type = rsa2048\n"		/* 12 */
	    "[host a]\n"			/* 13 */
	    "acme = yes\n"			/* 14 */
	    "names = a.test www.a.test\n"	/* 15 */
	    "backend = 127.0.0.1:9000\n"	/* 16 */
	    "[host b]\n"			/* 17 */
	    "backend = 127.0.0.1:9000\n");	/* 18: cert and key of [defaults] */
	assert_true(c->g.acme.enabled);
	assert_string_equal(c->g.acme.directory, "https://ca.test/dir,x");
	assert_string_equal(c->g.acme.contact, "mailto:admin@a.test");
	assert_null(c->g.acme.directory_ca);
	assert_string_equal(c->g.acme.state_dir, unit_path(x->dir, "acme"));
	assert_true(c->g.acme.renew_before_s == 2000ULL * 86400);
	assert_int_equal(c->g.acme.key_type, ACME_KEY_RSA2048);
	assert_int_equal(c->g.acme_at.line, 7);
	assert_int_equal(config_acme_hosts(c), 1);
	h = host(c, "a");
	assert_true(h->acme);
	/* ACME's one file for both, at the acme line; [defaults] not inherited */
	snprintf(want, sizeof(want), "%s/certs/a.pem", unit_path(x->dir, "acme"));
	assert_string_equal(h->cert, want);
	assert_string_equal(h->key, want);
	assert_int_equal(h->loc[K_CERT].line, 14);
	assert_int_equal(h->loc[K_KEY].line, 14);
	h = host(c, "b");
	assert_false(h->acme);
	assert_string_equal(h->cert, unit_path(x->dir, "d.pem"));

	char buf[64];
	assert_int_equal(config_value_text(c, NULL, K_A_RENEW_BEFORE, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "2000d");
	assert_true(config_key_is_acme(K_A_STATE_DIR));
	assert_false(config_key_is_global(K_A_STATE_DIR));
	config_free(x->c);
	x->c = NULL;

	/* no [acme]: off, with the built-in state_dir and key type */
	c = LOAD_OK(x, GLOBAL3 HOST4("a"));
	assert_false(c->g.acme.enabled);
	assert_string_equal(c->g.acme.state_dir, "/var/lib/tlsfront/acme");
	assert_int_equal(c->g.acme.key_type, ACME_KEY_EC256);
	assert_true(c->g.acme.renew_before_s == 0);
	assert_int_equal(config_acme_hosts(c), 0);
	assert_false(host(c, "a")->acme);
}

static void
test_crlf_accepted(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *h;

	c = LOAD_OK(x, "[global]\r\n"
	    "listen = 127.0.0.1:8443\r\n"
	    "hosts = hosts.d/*.ini\r\n"
	    "log_level = warn\r\n"
	    "[host a]\r\n"
	    "cert = a.pem\r\n"
	    "key = a.key\r\n"
	    "backend = 127.0.0.1:9000\r\n"
	    "names = a.example.com\r\n"
	    "alpn = h2\r\n");
	h = &c->hosts[0];
	assert_string_equal(h->label, "a");
	assert_string_equal(h->cert, unit_path(x->dir, "a.pem"));
	assert_string_equal(h->names.v[0], "a.example.com");
	assert_string_equal(h->alpn.v[0], "h2");
	assert_int_equal(c->g.log_level, LOG_LVL_WARN);
}


static void
test_indented_keys_are_keys(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	c = LOAD_OK(x, "[global]\n"
	    "log_level = debug\n"
	    "    workers = 3\n"
	    "\thosts = hosts.d/*.ini\n"
	    "  listen = 127.0.0.1:8443\n"
	    "[host a]\n"
	    "  cert = a.pem\n"
	    "  key = a.key\n"
	    "  backend = 127.0.0.1:9000\n");
	assert_int_equal(c->g.log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->g.workers, 3);
	assert_string_equal(c->g.hosts, unit_path(x->dir, "hosts.d/*.ini"));
	assert_string_equal(c->hosts[0].backend.v[0].text, "127.0.0.1:9000");
}


static void
test_line_at_limit_accepted(void **state)
{
	struct ctx *x = *state;
	char line[CONFIG_MAX_LINE + 2], text[1024];
	const char *head = "log_level = debug ;";

	memset(line, 'x', CONFIG_MAX_LINE);
	memcpy(line, head, strlen(head));
	line[CONFIG_MAX_LINE] = '\0';
	snprintf(text, sizeof(text), GLOBAL3 "%s\n" HOST4("a"), line);
	assert_int_equal(LOAD_OK(x, text)->g.log_level, LOG_LVL_DEBUG);
}


static void
test_section_name_at_limit_accepted(void **state)
{
	struct ctx *x = *state;
	char label[CONFIG_MAX_SECTION], text[1024];
	const struct config *c;

	/* "host " + label = CONFIG_MAX_SECTION bytes */
	memset(label, 'l', CONFIG_MAX_SECTION - 5);
	label[CONFIG_MAX_SECTION - 5] = '\0';
	snprintf(text, sizeof(text), GLOBAL3 "[host %s]\ncert = c\nkey = k\n"
	    "backend = 127.0.0.1:1\n", label);
	c = LOAD_OK(x, text);
	assert_string_equal(c->hosts[0].label, label);
}


static void
test_preexisting_errors_do_not_fail_load(void **state)
{
	struct ctx *x = *state;

	diag_error(&x->d, "elsewhere", 1, "an earlier problem");
	unit_put(x->dir, "main.ini", GLOBAL3 HOST4("a"));
	x->c = config_load(x->main, &x->d);
	assert_non_null(x->c);
	assert_int_equal(x->d.n_errors, 1);
}

/* ------------------------------------------------------------------ */
/* errors                                                               */


/* ------------------------------------------------------------------ */
/* errors, one table                                                    */

/* A message expected: "DIR/FILE:LINE: TEXT" (line 0: "DIR/FILE: TEXT"). */
struct want {
	const char *file;	/* under the test directory; NULL: main.ini */
	int line;
	const char *text;	/* its start, or all of it (whole); %D: the directory */
};

/* A configuration with errors: config_load() refuses it with exactly
 * `errors` messages (no warnings), among them every `want`. */
struct bad {
	int at;			/* the case's line here, for failures */
	const char *main;
	struct { const char *name, *text; } files[2];	/* hosts.d/NAME */
	size_t errors;
	struct want want[10];
	const char *never;	/* no message contains this */
	int whole;		/* each want is a whole message */
};

#define NO_FILES { { NULL, NULL }, { NULL, NULL } }
#define BAD_WORKERS(v) { __LINE__, GLOBAL3 "workers = " v "\n" HOST4("a"), NO_FILES, 1, \
	{ { NULL, 4, "workers: expected auto or a number of workers 1..256, not '" v "'" } } }

static const struct bad bad_cases[] = {
	/* ACME: each bad input at its line */
	{ __LINE__, GLOBAL3
	    "[acme]\n"				/* 4 */
	    "directory = https://ca.test/dir\n"	/* 5 */
	    "[host a]\n"			/* 6 */
	    "acme = yes\n"			/* 7 */
	    "names = a.test\n"			/* 8 */
	    "cert = a.pem\n"			/* 9 */
	    "key = a.key\n"			/* 10 */
	    "backend = 127.0.0.1:9000\n", NO_FILES, 2,
	    { { NULL, 9, "cert: host 'a' has acme = yes (" },
	    { NULL, 10, "key: host 'a' has acme = yes (" } } },
	{ __LINE__, GLOBAL3
	    "[acme]\n"				/* 4 */
	    "directory = https://ca.test/dir\n"	/* 5 */
	    "[host a]\n"			/* 6 */
	    "acme = yes\n"			/* 7 */
	    "backend = 127.0.0.1:9000\n", NO_FILES, 1,
	    { { NULL, 7, "acme: host 'a' has no 'names'" } } },
	{ __LINE__, GLOBAL3
	    "[acme]\n"				/* 4 */
	    "directory = https://ca.test/dir\n"	/* 5 */
	    "[host a]\n"			/* 6 */
	    "acme = yes\n"			/* 7 */
	    "names = a.test *.a.test\n"		/* 8 */
	    "backend = 127.0.0.1:9000\n", NO_FILES, 1,
	    { { NULL, 8, "names: '*.a.test' is a wildcard name, which ACME's TLS-ALPN-01" } } },
	{ __LINE__, GLOBAL3
	    "[host a]\n"			/* 4 */
	    "acme = yes\n"			/* 5 */
	    "names = a.test\n"			/* 6 */
	    "backend = 127.0.0.1:9000\n", NO_FILES, 1,
	    { { NULL, 5, "acme: host 'a' asks for ACME but the main file has no [acme] section" } } },
	{ __LINE__, GLOBAL3
	    "[acme]\n"				/* 4 */
	    "contact = admin@a.test\n"		/* 5 */
	    "directory = http://ca.test/dir\n"	/* 6 */
	    "key_type = ec521\n"		/* 7 */
	    "renew_before = 30\n"		/* 8: seconds: below an hour */
	    "[host a]\n"			/* 9 */
	    "acme = yes\n"			/* 10 */
	    "names = a.test\n"			/* 11 */
	    "backend = 127.0.0.1:9000\n", NO_FILES, 4,
	    { { NULL, 5, "contact: expected a mailto: URL, not 'admin@a.test'" },
	    { NULL, 6, "directory: expected a https:// URL, not 'http://ca.test/dir'" },
	    { NULL, 7, "key_type: " },
	    { NULL, 8, "renew_before: bad duration '30'" } } },
	{ __LINE__, GLOBAL3
	    "[acme]\n"				/* 4 */
	    "state_dir = /x\n"			/* 5 */
	    "[host a]\n"			/* 6 */
	    "acme = yes\n"			/* 7 */
	    "names = a.test\n"			/* 8 */
	    "backend = 127.0.0.1:9000\n", NO_FILES, 1,
	    { { NULL, 4, "[acme] has no 'directory' (the URL of the ACME directory" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "directory = https://ca.test/dir\n", NO_FILES, 1,	/* 8 */
	    { { NULL, 8, "key 'directory' is not allowed in a [host] section (it belongs in [acme])" } } },
	/* listeners are TCP only; reported once, at the [global] line */
	{ __LINE__, "[global]\n"
	    "listen = 127.0.0.1:1 unix:/run/x.sock\n"	/* 2 */
	    "hosts = hosts.d/*.ini\n" HOST4("a") HOST4("b"), NO_FILES, 1,
	    { { NULL, 2, "listen: unix:/run/x.sock: tlsfront listens on TCP addresses only" } } },
	{ __LINE__, GLOBAL3 "stats_listen = 9199\n" HOST4("a"), NO_FILES, 1,
	    { { NULL, 4, "stats_listen: bad address '9199'" } } },
	{ __LINE__, GLOBAL3 HOST4("a") "stats_listen = 127.0.0.1:9199\n", NO_FILES, 1,
	    { { NULL, 8, "key 'stats_listen' is not allowed in a [host] section" } } },
	{ __LINE__, "[global]\r\n"		/* 1 */
	    "hosts = hosts.d/*.ini\r\n"		/* 2 */
	    "bogus = 1\r\n"			/* 3 */
	    "[host a]\r\n"			/* 4 */
	    "cert = a.pem\r\nkey = a.key\r\nbackend = 127.0.0.1:9000\r\n", NO_FILES, 1,
	    { { NULL, 3, "unknown key 'bogus'" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "[hosts b]\n"			/* 8 */
	    "cert = x\n", NO_FILES, 1,		/* 9: ignored with its section */
	    { { NULL, 8, "unknown section [hosts b]" } } },
	{ __LINE__, GLOBAL3 "colour = blue\n" HOST4("a") "frobnicate = yes\n", NO_FILES, 2,
	    { { NULL, 4, "unknown key 'colour'" }, { NULL, 9, "unknown key 'frobnicate'" } } },
	{ __LINE__, GLOBAL3
	    "workers = 2\n"			/* 4 */
	    "workers = 3\n"			/* 5 */
	    HOST4("a")				/* 6..9 */
	    "backend = 127.0.0.1:9001\n", NO_FILES, 2,	/* 10 */
	    { { NULL, 5, "duplicate key 'workers' (first at line 4)" },
	    { NULL, 10, "duplicate key 'backend' (first at line 9)" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "alpn = h2\n"			/* 8 */
	    "backend.h2 = 127.0.0.1:1\n"	/* 9 */
	    "backend.h2 = 127.0.0.1:2\n", NO_FILES, 1,	/* 10 */
	    { { NULL, 10, "duplicate key 'backend.h2' (first at line 9)" } } },
	{ __LINE__, GLOBAL3
	    "cert = x.pem\n"			/* 4 */
	    "[defaults]\n"			/* 5 */
	    "names = a.example.com\n"		/* 6 */
	    "default = yes\n"			/* 7 */
	    "workers = 2\n"			/* 8 */
	    HOST4("a")				/* 9..12 */
	    "log_level = debug\n"		/* 13 */
	    "hosts = x/*.ini\n", NO_FILES, 6,	/* 14 */
	    { { NULL, 4, "key 'cert' is not allowed in [global]" },
	    { NULL, 6, "key 'names' is not allowed in [defaults]" },
	    { NULL, 7, "key 'default' is not allowed in [defaults]" },
	    { NULL, 8, "key 'workers' is not allowed in [defaults]" },
	    { NULL, 13, "key 'log_level' is not allowed in a [host] section" },
	    { NULL, 14, "key 'hosts' is not allowed in a [host] section" } } },
	{ __LINE__, GLOBAL3 "backend.h2 = 127.0.0.1:1\n" HOST4("a"), NO_FILES, 1,
	    { { NULL, 4, "unknown key 'backend.h2'" } } },
	/* an unknown key names the key it is near, preferring this section's */
	{ __LINE__, GLOBAL3
	    "worker = 2\n"			/* 4 */
	    "[defaults]\n"			/* 5 */
	    "idle_timout = 5s\n"		/* 6 */
	    HOST4("a")				/* 7..10 */
	    "bakend = 127.0.0.1:9\n"		/* 11 */
	    "name = a.example.com\n"		/* 12 */
	    "nmaes = a.example.com\n"		/* 13 */
	    "Alpn = h2\n"			/* 14 */
	    "hanshake_timeout = 1s\n"		/* 15 */
	    "kye = a.key\n"			/* 16 */
	    "bakend.h2 = 127.0.0.1:9\n", NO_FILES, 9,	/* 17 */
	    { { NULL, 4, "unknown key 'worker' (did you mean 'workers'?)" },
	    { NULL, 6, "unknown key 'idle_timout' (did you mean 'idle_timeout'?)" },
	    { NULL, 11, "unknown key 'bakend' (did you mean 'backend'?)" },
	    { NULL, 12, "unknown key 'name' (did you mean 'names'?)" },
	    { NULL, 13, "unknown key 'nmaes' (did you mean 'names'?)" },
	    { NULL, 14, "unknown key 'Alpn' (did you mean 'alpn'?)" },
	    { NULL, 15, "unknown key 'hanshake_timeout' (did you mean 'handshake_timeout'?)" },
	    { NULL, 16, "unknown key 'kye' (did you mean 'key'?)" },
	    { NULL, 17, "unknown key 'bakend.h2' (did you mean 'backend.h2'?)" } } },
	/* a near key of another section is named with the section it belongs in */
	{ __LINE__, GLOBAL3
	    "bakend = 127.0.0.1:9\n"		/* 4 */
	    "backend.h2 = 127.0.0.1:9\n"	/* 5 */
	    HOST4("a")				/* 6..9 */
	    "log_levle = debug\n"		/* 10 */
	    "cert = again.pem\n", NO_FILES, 4,	/* 11 */
	    { { NULL, 4, "unknown key 'bakend' (did you mean 'backend'? it belongs in "
	    "[defaults] or a [host] section)" },
	    { NULL, 5, "unknown key 'backend.h2' (backend.PROTO lines belong in [defaults] "
	    "or a [host] section)" },
	    { NULL, 10, "unknown key 'log_levle' (did you mean 'log_level'? it belongs in "
	    "[global])" },
	    /* a duplicate stays a duplicate, whatever is near it */
	    { NULL, 11, "duplicate key 'cert' (first at line 7)" } } },
	/* nothing near: no suggestion; a known key elsewhere says where it belongs */
	{ __LINE__, GLOBAL3
	    "cert = x.pem\n"			/* 4 */
	    HOST4("a")				/* 5..8 */
	    "cert_file = a.pem\n"		/* 9 */
	    "ca = ca.pem\n"			/* 10 */
	    "colour = blue\n"			/* 11 */
	    "workers = 2\n", NO_FILES, 5,	/* 12 */
	    { { NULL, 4, "key 'cert' is not allowed in [global] (it belongs in [defaults] or "
	    "a [host] section)" },
	    { NULL, 9, "unknown key 'cert_file'" },
	    { NULL, 10, "unknown key 'ca'" },
	    { NULL, 11, "unknown key 'colour'" },
	    { NULL, 12, "key 'workers' is not allowed in a [host] section (it belongs in "
	    "[global])" } }, "did you mean", 1 },
	/* only names may repeat: any other key twice is a duplicate, in every
	 * section and file, at the second line */
	{ __LINE__, GLOBAL3
	    "log_level = warn\n"		/* 4 */
	    "listen = 127.0.0.1:8444\n"		/* 5 */
	    "[defaults]\n"			/* 6 */
	    "idle_timeout = 1m\n"		/* 7 */
	    "idle_timeout = 2m\n",		/* 8 */
	    { { "b.ini",
	    "[host b]\n"			/* 1 */
	    "cert = b.pem\n"			/* 2 */
	    "key = b.key\n"			/* 3 */
	    "backend = 127.0.0.1:9\n"		/* 4 */
	    "names = b.test\n"			/* 5 */
	    "alpn = h2\n"			/* 6 */
	    "names = c.test\n"			/* 7 */
	    "alpn = http/1.1\n"			/* 8 */
	    "cert = b2.pem\n"			/* 9 */
	    "proxy_protocol = v1\n"		/* 10 */
	    "proxy_protocol = v2\n" },		/* 11 */
	    { NULL, NULL } }, 5,
	    { { NULL, 5, "duplicate key 'listen' (first at line 2)" },
	    { NULL, 8, "duplicate key 'idle_timeout' (first at line 7)" },
	    { "hosts.d/b.ini", 8, "duplicate key 'alpn' (first at line 6)" },
	    { "hosts.d/b.ini", 9, "duplicate key 'cert' (first at line 2)" },
	    { "hosts.d/b.ini", 11, "duplicate key 'proxy_protocol' (first at line 10)" } },
	    "duplicate key 'names'" },
	/* a name on two names lines is an error at the second, naming the first */
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "names = a.test b.test\n"		/* 8 */
	    "names = c.test\n"			/* 9 */
	    "names = B.Test. d.test a.test\n"	/* 10 */
	    "names = b.test\n"			/* 11 */
	    HOST4("b")				/* 12..15 */
	    "names = ok.test\n", NO_FILES, 3,	/* 16 */
	    { { NULL, 10, "names: 'b.test' is listed twice (first at line 8)" },
	    { NULL, 10, "names: 'a.test' is listed twice (first at line 8)" },
	    { NULL, 11, "names: 'b.test' is listed twice (first at line 8)" } } },
	{ __LINE__, GLOBAL3,
	    { { "a.ini", HOST4("web") }, { "b.ini", "; second\n" "\n" HOST4("web") } }, 1,
	    { { "hosts.d/b.ini", 3, "duplicate host label 'web' (first defined at "
	    "%D/hosts.d/a.ini:1)" } } },
	{ __LINE__, GLOBAL3 HOST4("a"), { { "a.ini", HOST4("a") }, { NULL, NULL } }, 1,
	    { { "hosts.d/a.ini", 1, "duplicate host label 'a' (first defined at "
	    "%D/main.ini:4)" } } },
	{ __LINE__, GLOBAL3 "[defaults]\n" "[global]\n" "workers = 1\n" "[defaults]\n"
	    HOST4("a"), NO_FILES, 2,
	    { { NULL, 5, "duplicate section [global] (first at line 1)" },
	    { NULL, 7, "duplicate section [defaults] (first at line 4)" } } },
	{ __LINE__, GLOBAL3 HOST4("a") "[host b/c]\n" "[host d e]\n" "[host ]\n", NO_FILES, 3,
	    { { NULL, 8, "bad host label 'b/c'" }, { NULL, 9, "bad host label 'd e'" },
	    { NULL, 10, "unknown section [host ]" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "[host b\n"				/* 8 */
	    "cert = b\n"			/* 9: in no section: ignored */
	    "[host c] junk\n"			/* 10 */
	    "cert = c\n", NO_FILES, 2,		/* 11: ignored */
	    { { NULL, 8, "section header without ']'" },
	    { NULL, 10, "unexpected text after section header" } } },
	{ __LINE__, GLOBAL3
	    "shutdown_timeout = 2d\n"		/* 4 */
	    HOST4("a")				/* 5..8 */
	    "handshake_timeout = 10x\n"		/* 9 */
	    "connect_timeout = 99ms\n"		/* 10: below 100ms */
	    "idle_timeout = 169h\n"		/* 11: above 7 days */
	    HOST4("b")				/* 12..15 */
	    "handshake_timeout = 61m\n"		/* 16: above 1h */
	    "idle_timeout = 999ms\n"		/* 17: below 1s */
	    "connect_timeout = 1.5s\n", NO_FILES, 7,	/* 18 */
	    { { NULL, 4, "shutdown_timeout: bad duration '2d'" },
	    { NULL, 9, "handshake_timeout: bad duration '10x'" },
	    { NULL, 10, "connect_timeout: bad duration '99ms'" },
	    { NULL, 11, "idle_timeout: bad duration '169h'" },
	    { NULL, 16, "handshake_timeout: bad duration '61m'" },
	    { NULL, 17, "idle_timeout: bad duration '999ms'" },
	    { NULL, 18, "connect_timeout: bad duration '1.5s'" } } },
	BAD_WORKERS("0"), BAD_WORKERS("257"), BAD_WORKERS("-1"), BAD_WORKERS("four"),
	BAD_WORKERS("4x"), BAD_WORKERS("0x4"), BAD_WORKERS("Auto"),
	{ __LINE__, GLOBAL3 HOST4("a") "default = maybe\n", NO_FILES, 1,
	    { { NULL, 8, "default: expected yes or no, not 'maybe'" } } },
	{ __LINE__, "[global]\n"		/* 1 */
	    "listen = 127.0.0.1:8443 127.0.0.1:0\n"	/* 2 */
	    "hosts = hosts.d/*.ini\n"		/* 3 */
	    "[host a]\n"			/* 4 */
	    "cert = a.pem\n"			/* 5 */
	    "key = a.key\n"			/* 6 */
	    "backend = 127.0.0.1\n"		/* 7 */
	    "listen = ::1:443\n"		/* 8 */
	    "[host b]\n"			/* 9 */
	    "cert = b.pem\n"			/* 10 */
	    "key = b.key\n"			/* 11 */
	    "backend = unix:relative.sock\n"	/* 12 */
	    "listen = 127.0.0.1:1, 127.0.0.1:01\n", NO_FILES, 5,	/* 13 */
	    { { NULL, 2, "listen: bad port in '127.0.0.1:0'" },
	    { NULL, 7, "backend: bad address '127.0.0.1'" },
	    { NULL, 8, "listen: bad address '::1:443'" },
	    { NULL, 12, "backend: unix socket path must be absolute" },
	    { NULL, 13, "listen: '127.0.0.1:01' is listed twice" } },
	    "has no 'backend'" },	/* a bad backend is not also a missing one */
	{ __LINE__, GLOBAL3 "log = file\n" "log_level = DEBUG\n" HOST4("a"), NO_FILES, 2,
	    { { NULL, 4, "log: expected stderr or syslog, not 'file'" },
	    { NULL, 5, "log_level: expected error, warn, info or debug, not 'DEBUG'" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "protocols = TLSv1.2 SSLv3\n"	/* 8 */
	    HOST4("b")				/* 9..12 */
	    "protocols = ,\n", NO_FILES, 2,	/* 13 */
	    { { NULL, 8, "protocols: unknown protocol 'SSLv3'" },
	    { NULL, 13, "protocols: no protocol given" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "names = ok.example.com a..b\n"	/* 8 */
	    HOST4("b")				/* 9..12 */
	    "names = a.example.com A.Example.Com.\n"	/* 13 */
	    HOST4("c")				/* 14..17 */
	    "names = a.*.example.com\n", NO_FILES, 3,	/* 18 */
	    { { NULL, 8, "names: 'a..b' is not a valid host name or *.wildcard" },
	    { NULL, 13, "names: 'A.Example.Com.' is listed twice" },
	    { NULL, 18, "names: 'a.*.example.com' is not a valid host name" } } },
	{ __LINE__, GLOBAL3 HOST4("a") "alpn = h2 h2\n", NO_FILES, 1,
	    { { NULL, 8, "alpn: 'h2' is listed twice" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "alpn = h2\n"			/* 8 */
	    "backend.h3 = 127.0.0.1:9003\n", NO_FILES, 1,	/* 9 */
	    { { NULL, 9, "backend.h3: 'h3' is not in this host's alpn list" } } },
	{ __LINE__, GLOBAL3 HOST4("a")		/* 1..7 */
	    "alpn = h2\n"			/* 8 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 9 */
	    "backend. = 127.0.0.1:1\n", NO_FILES, 2,	/* 10 */
	    { { NULL, 9, "backend.h2: bad port in '127.0.0.1:0'" },
	    { NULL, 10, "'backend.': expected backend.PROTOCOL" } } },
	/* a bad [defaults] backend.PROTO: once, however many hosts list PROTO
	 * (it was once per host), and even when none does (it was never) */
	{ __LINE__, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "alpn = h2\n"			/* 5 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 6 */
	    HOST4("a") HOST4("b"), NO_FILES, 1,
	    { { NULL, 6, "backend.h2: bad port in '127.0.0.1:0'" } } },
	{ __LINE__, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 5 */
	    HOST4("a"), NO_FILES, 1,
	    { { NULL, 5, "backend.h2: bad port in '127.0.0.1:0'" } } },
	{ __LINE__, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "handshake_timeout = soon\n"	/* 5 */
	    "backend = nowhere\n"		/* 6 */
	    "[host a]\ncert = a\nkey = a\n"
	    "[host b]\ncert = b\nkey = b\n"
	    HOST4("c"), NO_FILES, 2,		/* overrides backend */
	    { { NULL, 5, "handshake_timeout: bad duration 'soon'" },
	    { NULL, 6, "backend: bad address 'nowhere'" } }, "has no 'backend'" },
	{ __LINE__, GLOBAL3 "workers 4\n" "= 4\n" HOST4("a") "backend\n", NO_FILES, 3,
	    { { NULL, 4, "expected 'key = value'" }, { NULL, 5, "expected 'key = value'" },
	    { NULL, 10, "expected 'key = value'" } } },
	{ __LINE__, "workers = 2\n" GLOBAL3 HOST4("a"), NO_FILES, 1,
	    { { NULL, 1, "'workers' outside any section" } } },
	/* the main file's last section does not carry over */
	{ __LINE__, GLOBAL3 HOST4("m"),
	    { { "a.ini", "; x\n" "backend = 127.0.0.1:1\n" HOST4("a") }, { NULL, NULL } }, 1,
	    { { "hosts.d/a.ini", 2, "'backend' outside any section" } } },
	{ __LINE__, GLOBAL3,
	    { { "a.ini", HOST4("a")		/* 1..4 */
	    "[global]\n"			/* 5 */
	    "workers = 2\n"			/* 6: ignored */
	    "[defaults]\n"			/* 7 */
	    "backend = 127.0.0.1:1\n" },	/* 8: ignored */
	    { NULL, NULL } }, 2,
	    { { "hosts.d/a.ini", 5, "[global] belongs in the main file" },
	    { "hosts.d/a.ini", 7, "[defaults] belongs in the main file" } } },
	{ __LINE__, GLOBAL3 "workers =\n" "log_level = ; none\n" HOST4("a") "names =   \n",
	    NO_FILES, 3,
	    { { NULL, 4, "'workers' has an empty value" },
	    { NULL, 5, "'log_level' has an empty value" },
	    { NULL, 10, "'names' has an empty value" } } },
	{ __LINE__, GLOBAL3
	    "[host a]\n"			/* 4 */
	    "names = a.example.com\n"		/* 5 */
	    "[host b]\n"			/* 6 */
	    "cert = b.pem\n", NO_FILES, 5,	/* 7 */
	    { { NULL, 4, "host 'a' has no 'cert'" }, { NULL, 4, "host 'a' has no 'key'" },
	    { NULL, 4, "host 'a' has no 'backend'" }, { NULL, 6, "host 'b' has no 'key'" },
	    { NULL, 6, "host 'b' has no 'backend'" } }, "host 'b' has no 'cert'" },
	{ __LINE__, GLOBAL3, { { "a.ini", "\n\n[host empty]\n" }, { NULL, NULL } }, 3,
	    { { "hosts.d/a.ini", 3, "host 'empty' has no 'cert'" } } },
	{ __LINE__, GLOBAL3, NO_FILES, 1, { { NULL, 0, "no [host LABEL] section found" } } },
	{ __LINE__, GLOBAL3
	    "workers = 0\n"			/* 4 */
	    "bogus = 1\n"			/* 5 */
	    "[nope]\n"				/* 6 */
	    "[host a]\n"			/* 7 */
	    "cert = a.pem\n"			/* 8 */
	    "key = a.key\n"			/* 9 */
	    "backend = 127.0.0.1\n"		/* 10 */
	    "handshake_timeout = 1x\n",		/* 11 */
	    { { "z.ini", "[host z]\n" "cert = z\n" "key = z\n" "backend = x:0\n" },
	    { NULL, NULL } }, 6,
	    { { NULL, 4, "workers: " }, { NULL, 5, "unknown key 'bogus'" },
	    { NULL, 6, "unknown section [nope]" }, { NULL, 10, "backend: bad address" },
	    { NULL, 11, "handshake_timeout: bad duration" },
	    { "hosts.d/z.ini", 4, "backend: bad port" } } },
};

/* "DIR/FILE:LINE: TEXT" with %D in TEXT made DIR */
static void
want_text(const struct ctx *x, const struct want *w, char *out, size_t len)
{
	const char *t = w->text, *d;
	size_t off;

	if (w->line > 0)
		off = (size_t)snprintf(out, len, "%s/%s:%d: ", x->dir,
		    w->file ? w->file : "main.ini", w->line);
	else
		off = (size_t)snprintf(out, len, "%s/%s: ", x->dir, w->file ? w->file : "main.ini");
	while ((d = strstr(t, "%D")) != NULL && off < len) {
		off += (size_t)snprintf(out + off, len - off, "%.*s%s", (int)(d - t), t, x->dir);
		t = d + 2;
	}
	if (off < len)
		snprintf(out + off, len - off, "%s", t);
}

static void
test_errors_table(void **state)
{
	struct ctx *x = *state;
	char text[2 * PATH_MAX + 600], rel[64];

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad *b = &bad_cases[i];

		for (int f = 0; f < 2 && b->files[f].name != NULL; f++) {
			snprintf(rel, sizeof(rel), "hosts.d/%s", b->files[f].name);
			unit_put(x->dir, rel, b->files[f].text);
		}
		if (load(x, b->main) != NULL || x->d.n_errors != b->errors ||
		    x->d.n != b->errors) {
			unit_print_diag(&x->d);
			fail_msg("case at line %d: %zu messages, %zu errors, expected %zu errors",
			    b->at, x->d.n, x->d.n_errors, b->errors);
		}
		for (size_t w = 0; w < 10 && b->want[w].text != NULL; w++) {
			int found = 0;

			want_text(x, &b->want[w], text, sizeof(text));
			for (size_t m = 0; m < x->d.n && !found; m++)
				found = b->whole ? strcmp(x->d.msgs[m], text) == 0 :
				    strstr(x->d.msgs[m], text) != NULL;
			if (!found) {
				unit_print_diag(&x->d);
				fail_msg("case at line %d: no message '%s'", b->at, text);
			}
		}
		if (b->never != NULL && diag_has(&x->d, b->never)) {
			unit_print_diag(&x->d);
			fail_msg("case at line %d: a message contains '%s'", b->at, b->never);
		}
		for (int f = 0; f < 2 && b->files[f].name != NULL; f++) {
			snprintf(rel, sizeof(rel), "hosts.d/%s", b->files[f].name);
			assert_int_equal(unlink(unit_path(x->dir, rel)), 0);
		}
		diag_free(&x->d);
	}
}

/* ------------------------------------------------------------------ */
/* errors the table cannot hold: made at run time, or binary          */

/* Each names line is checked on its own: errors at their lines, all of them;
 * a line over the limit is still refused, not split. */
static void
test_err_names_bad_lines(void **state)
{
	struct ctx *x = *state;
	char text[2048], line[300];
	size_t off;
	const struct config *c;

	off = (size_t)snprintf(line, sizeof(line), "names =");
	for (int i = 0; off < CONFIG_MAX_LINE + 1; i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, " l%d.test", i);
	snprintf(text, sizeof(text), GLOBAL3 HOST4("a")	/* 1..7 */
	    "names = a.test\n"			/* 8 */
	    "names = b..test\n"			/* 9 */
	    "names = c.test c.test\n"		/* 10 */
	    "%s\n"				/* 11: too long */
	    "names = d.test\n"			/* 12 */
	    HOST4("b")				/* 13..16 */
	    "names = b.test\n", line);		/* 17 */
	unit_put(x->dir, "main.ini", text);
	c = x->c = config_load_all(x->main, &x->d);
	assert_non_null(c);
	EXPECT_AT(x, "main.ini", 9, "names: 'b..test' is not a valid host name or *.wildcard");
	EXPECT_AT(x, "main.ini", 10, "names: 'c.test' is listed twice");
	EXPECT_AT(x, "main.ini", 11, "line is");
	EXPECT_ERRORS(x, 3);
	assert_int_equal(c->n_hosts, 2);
	assert_true(host(c, "a")->bad);
	assert_false(host(c, "b")->bad);
}


static void
test_err_line_too_long(void **state)
{
	struct ctx *x = *state;
	char line[CONFIG_MAX_LINE + 2], text[1024], msg[128];
	const char *head = "log_level = debug ;";

	memset(line, 'x', CONFIG_MAX_LINE + 1);
	memcpy(line, head, strlen(head));
	line[CONFIG_MAX_LINE + 1] = '\0';
	snprintf(text, sizeof(text), GLOBAL3 "%s\n" HOST4("a"), line);
	LOAD_FAILS(x, text);
	snprintf(msg, sizeof(msg), "line is %d bytes long; the limit is %d",
	    CONFIG_MAX_LINE + 1, CONFIG_MAX_LINE);
	EXPECT_AT(x, "main.ini", 4, msg);
	EXPECT_ERRORS(x, 1);
}


static void
test_err_long_line_not_split(void **state)
{
	struct ctx *x = *state;
	char line[400], text[2048], msg[128];
	const char *head = "names = a.example.com ;", *tail = "workers = 3";
	size_t len = 300;

	/* what libinih would read as a second line starts at byte 199 */
	memset(line, ' ', len);
	memcpy(line, head, strlen(head));
	memcpy(line + len - strlen(tail), tail, strlen(tail));
	line[len] = '\0';
	snprintf(text, sizeof(text), GLOBAL3
	    "workers = 2\n"			/* 4 */
	    "%s\n"				/* 5 */
	    "bogus = 1\n"			/* 6: still counted right */
	    HOST4("a"), line);
	LOAD_FAILS(x, text);
	snprintf(msg, sizeof(msg), "line is %zu bytes long; the limit is %d", len,
	    CONFIG_MAX_LINE);
	EXPECT_AT(x, "main.ini", 5, msg);
	EXPECT_AT(x, "main.ini", 6, "unknown key 'bogus'");
	EXPECT_NOT(x, "duplicate");
	EXPECT_NOT(x, "names");
	EXPECT_ERRORS(x, 2);
}


static void
test_err_long_line_in_host_file(void **state)
{
	struct ctx *x = *state;
	char text[1024];

	snprintf(text, sizeof(text), HOST4("a") "; %0*d\n", 250, 0);
	unit_put(x->dir, "hosts.d/a.ini", text);
	LOAD_FAILS(x, GLOBAL3);
	EXPECT_AT(x, "hosts.d/a.ini", 5, "line is 252 bytes long");
	EXPECT_ERRORS(x, 1);
}

/* Regression (was a bug): config.c reader() refuses an over-long (or NUL-containing) line
 * without looking at what it is; when it is a section header, the current
 * section stays the previous one, so the keys below it are added to that
 * section and reported as duplicates or as not allowed there. */

/* Regression (was a bug): config.c reader() refuses an over-long (or NUL-containing) line
 * without looking at what it is; when it is a section header, the current
 * section stays the previous one, so the keys below it are added to that
 * section and reported as duplicates or as not allowed there. */
static void
test_err_long_section_line_keys_not_misattributed(void **state)
{
	struct ctx *x = *state;
	char label[256], text[1024], msg[128];

	memset(label, 'l', 200);
	label[200] = '\0';
	snprintf(text, sizeof(text), GLOBAL3 HOST4("a")	/* 1..7 */
	    "[host %s]\n"			/* 8: 207 bytes */
	    "cert = b.pem\n"			/* 9 */
	    "workers = 2\n", label);		/* 10 */
	LOAD_FAILS(x, text);
	snprintf(msg, sizeof(msg), "line is %d bytes long", 207);
	EXPECT_AT(x, "main.ini", 8, msg);
	EXPECT_NOT(x, "duplicate key 'cert'");
	EXPECT_NOT(x, "not allowed");
	EXPECT_ERRORS(x, 1);
}


static void
test_err_section_name_too_long(void **state)
{
	struct ctx *x = *state;
	char label[CONFIG_MAX_SECTION + 1], text[1024], msg[128];

	/* "host " + label = CONFIG_MAX_SECTION + 1 bytes */
	memset(label, 'l', CONFIG_MAX_SECTION - 4);
	label[CONFIG_MAX_SECTION - 4] = '\0';
	snprintf(text, sizeof(text), GLOBAL3 HOST4("a")	/* 1..7 */
	    "[host %s]\n"			/* 8 */
	    "cert = c\n"			/* 9: ignored with the section */
	    "bogus = 1\n", label);		/* 10: ignored too */
	LOAD_FAILS(x, text);
	snprintf(msg, sizeof(msg), "section name is %d bytes long; the limit is %d",
	    CONFIG_MAX_SECTION + 1, CONFIG_MAX_SECTION);
	EXPECT_AT(x, "main.ini", 8, msg);
	EXPECT_ERRORS(x, 1);
}


static void
test_err_nul_byte(void **state)
{
	struct ctx *x = *state;
	static const char text[] = GLOBAL3
	    "work\0ers = 2\n"			/* 4 */
	    "bogus = 1\n"			/* 5 */
	    HOST4("a");

	unit_write(unit_path(x->dir, "main.ini"), text, sizeof(text) - 1);
	x->c = config_load(x->main, &x->d);
	assert_null(x->c);
	EXPECT_AT(x, "main.ini", 4, "NUL byte in line");
	EXPECT_AT(x, "main.ini", 5, "unknown key 'bogus'");
	EXPECT_NOT(x, "'work'");
	EXPECT_ERRORS(x, 2);
}


static void
test_err_missing_main_file(void **state)
{
	struct ctx *x = *state;

	assert_null(config_load(unit_path(x->dir, "nope.ini"), &x->d));
	EXPECT_AT(x, "nope.ini", 0, "cannot open");
	/* nothing else: no complaints about defaults or missing hosts */
	EXPECT_ERRORS(x, 1);
}


static void
test_err_host_file_is_directory(void **state)
{
	struct ctx *x = *state;
	char msg[PATH_MAX + 64];
	char sub[PATH_MAX + 32];

	snprintf(sub, sizeof(sub), "%s/hosts.d/d.ini", x->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	LOAD_FAILS(x, GLOBAL3 HOST4("a"));
	snprintf(msg, sizeof(msg), "%s is a directory", sub);
	EXPECT_AT(x, "main.ini", 3, msg);
	EXPECT_ERRORS(x, 1);
}


/* ------------------------------------------------------------------ */
/* config_load_all, [defaults] parsed once                              */

static void
test_load_all_clean(void **state)
{
	struct ctx *x = *state;

	unit_put(x->dir, "main.ini", GLOBAL3 HOST4("a") HOST4("b"));
	x->c = config_load_all(x->main, &x->d);
	assert_non_null(x->c);
	EXPECT_ERRORS(x, 0);
	assert_int_equal(x->c->n_hosts, 2);
	assert_false(x->c->hosts[0].bad);
	assert_false(x->c->hosts[1].bad);
}


static void
test_load_all_keeps_going(void **state)
{
	struct ctx *x = *state;
	static const char text[] = GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "idle_timeout = soon\n"		/* 5 */
	    HOST4("a")				/* 6..9 */
	    "idle_timeout = 1m\n"		/* 10: overrides the bad default */
	    "[host b]\n"			/* 11 */
	    "cert = b.pem\n"			/* 12 */
	    "key = b.key\n"			/* 13 */
	    "backend = 127.0.0.1\n"		/* 14: its own error */
	    "idle_timeout = 2m\n"		/* 15 */
	    HOST4("c");				/* 16..19: inherits the bad default */
	const struct config *c;

	unit_put(x->dir, "main.ini", text);
	x->c = config_load_all(x->main, &x->d);
	c = x->c;
	assert_non_null(c);
	EXPECT_AT(x, "main.ini", 5, "idle_timeout: bad duration 'soon'");
	EXPECT_AT(x, "main.ini", 14, "backend: bad address '127.0.0.1'");
	EXPECT_ERRORS(x, 2);
	assert_int_equal(c->n_hosts, 3);
	assert_false(host(c, "a")->bad);
	assert_int_equal(host(c, "a")->idle_timeout_ms, 60000);
	assert_string_equal(host(c, "a")->backend.v[0].text, "127.0.0.1:9000");
	assert_true(host(c, "b")->bad);
	assert_true(host(c, "c")->bad);

	/* config_load: the same errors, and no config */
	diag_free(&x->d);
	assert_null(config_load(x->main, &x->d));
	EXPECT_ERRORS(x, 2);
}


static void
test_load_all_missing_main_file(void **state)
{
	struct ctx *x = *state;

	x->c = config_load_all(unit_path(x->dir, "nope.ini"), &x->d);
	EXPECT_AT(x, "nope.ini", 0, "cannot open");
	EXPECT_ERRORS(x, 1);
	if (x->c != NULL)
		assert_int_equal(x->c->n_hosts, 0);
}

/* A [defaults] value is parsed once and copied: a host name in it is
 * resolved once for all the hosts that inherit it (it was once per host). */
static void
test_defaults_resolved_once(void **state)
{
	struct ctx *x = *state;
	size_t cap = 64 * 1024, off;
	char *text = malloc(cap);
	const struct config *c;

	assert_non_null(text);
	off = (size_t)snprintf(text, cap, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "backend = localhost:9000\n"	/* 5 */
	    "alpn = h2\n"			/* 6 */
	    "backend.h2 = localhost:9001\n"	/* 7 */
	    "listen = localhost:8443\n");	/* 8 */
	for (int i = 0; i < 100; i++)
		off += (size_t)snprintf(text + off, cap - off, "[host h%d]\ncert = c.pem\n"
		    "key = k.pem\n", i);
	lookups = 0;
	c = LOAD_OK(x, text);
	free(text);
	assert_int_equal(lookups, 3);	/* backend, backend.h2, listen */
	assert_int_equal(c->n_hosts, 100);
	for (size_t i = 0; i < c->n_hosts; i++) {
		const struct host_config *h = &c->hosts[i];

		assert_string_equal(h->backend.v[0].text, c->hosts[0].backend.v[0].text);
		assert_int_equal(h->loc[K_BACKEND].line, 5);
		assert_int_equal(h->n_alpn_backends, 1);
		assert_string_equal(h->alpn_backends[0].proto, "h2");
		assert_int_equal(h->alpn_backends[0].at.line, 7);
		assert_int_equal(h->listen.n, 1);
		assert_int_equal(h->loc[K_LISTEN].line, 8);
		assert_false(h->bad);
	}
}

/* Inherited values are copies: each host owns its own (config_free frees
 * each once); client_allow is parsed into the list tls.c checks. */
static void
test_defaults_copied(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	const struct host_config *a, *b;

	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "alpn = h2 http/1.1\n"		/* 5 */
	    "client_verify = required\n"	/* 6 */
	    "client_ca = ca.pem\n"		/* 7 */
	    "client_allow = CN:alice, dns:svc.internal\n"	/* 8 */
	    "ciphers = A B\n"			/* 9 */
	    HOST4("a")				/* 10..13 */
	    HOST4("b")				/* 14..17 */
	    "client_allow = URI:spiffe://corp/b\n");	/* 18 */
	a = host(c, "a");
	b = host(c, "b");
	assert_ptr_not_equal(a->alpn.v, b->alpn.v);
	assert_ptr_not_equal(a->alpn.v[0], b->alpn.v[0]);
	assert_ptr_not_equal(a->ciphers, b->ciphers);
	assert_ptr_not_equal(a->client_ca, b->client_ca);
	assert_string_equal(a->ciphers, "A:B");
	assert_string_equal(b->client_ca, unit_path(x->dir, "ca.pem"));
	assert_int_equal(a->loc[K_CLIENT_ALLOW].line, 8);
	assert_int_equal(a->client_allow.n, 2);
	assert_string_equal(a->client_allow.v[1], "dns:svc.internal");
	assert_non_null(a->client_allow_list);
	assert_int_equal(a->client_allow_list->n_entries, 2);
	assert_int_equal(a->client_allow_list->entries[1].kind, CLIENTAUTH_DNS);
	assert_string_equal(a->client_allow_list->entries[1].value, "svc.internal");
	assert_int_equal(b->loc[K_CLIENT_ALLOW].line, 18);
	assert_int_equal(b->client_allow_list->n_entries, 1);
	assert_int_equal(b->client_allow_list->entries[0].kind, CLIENTAUTH_URI);
	/* no client_allow: no list, anyone verified */
	config_free(x->c);
	x->c = NULL;
	assert_null(LOAD_OK(x, GLOBAL3 HOST4("a"))->hosts[0].client_allow_list);
}

/* A host inheriting a bad [defaults] backend.PROTO is marked bad, without a
 * message of its own, if it offers PROTO; one that does not is not. */
static void
test_load_all_defaults_map_bad(void **state)
{
	struct ctx *x = *state;
	const struct config *c;

	unit_put(x->dir, "main.ini", GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "alpn = h2\n"			/* 5 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 6 */
	    HOST4("a")				/* inherits alpn: uses it */
	    HOST4("b")
	    "alpn = http/1.1\n"			/* does not */
	    HOST4("c")
	    "backend.h2 = 127.0.0.1:9\n");	/* overrides it */
	c = x->c = config_load_all(x->main, &x->d);
	assert_non_null(c);
	EXPECT_AT(x, "main.ini", 6, "backend.h2: bad port in '127.0.0.1:0'");
	EXPECT_ERRORS(x, 1);
	assert_true(host(c, "a")->bad);
	assert_int_equal(host(c, "a")->n_alpn_backends, 0);
	assert_false(host(c, "b")->bad);
	assert_false(host(c, "c")->bad);
	assert_string_equal(host(c, "c")->alpn_backends[0].pool.v[0].text, "127.0.0.1:9");
}

/*
 * config_free after a load with errors everywhere: lists cut short by a bad
 * entry (client_allow's parsed list too), bad [defaults] values and map
 * lines, repeated names refused. What it asserts beyond not crashing, that
 * nothing leaks, is LeakSanitizer's in the sanitizer build (scripts/test.sh:
 * make check runs with detect_leaks=1) and valgrind's.
 */
static void
test_free_after_errors(void **state)
{
	struct ctx *x = *state;

	unit_put(x->dir, "hosts.d/b.ini", HOST4("b")
	    "names = b.test c.test\n" "names = d.test b.test\n"
	    "backend.h2 = 127.0.0.1:1\n" "alpn = h2 h3\n" "backend.h3 = 127.0.0.1:0\n");
	unit_put(x->dir, "main.ini", "[global]\n" "hosts = hosts.d/*.ini\n"
	    "listen = localhost:8443 [::1]:8443\n" "accept_proxy = 10.0.0.0/8 ::1 x\n"
	    "user = nobody\n" "stats_listen = 127.0.0.1:0\n"
	    "[defaults]\n" "alpn = h2\n" "backend.h2 = localhost:1\n" "backend.h3 = x:0\n"
	    "client_allow = CN:a DNS:b\n" "client_verify = optional\n" "client_ca = ca.pem\n"
	    "ciphers = A B\n" "protocols = TLSv1.2 SSLv3\n" "bogus = 1\n"
	    HOST4("a") "client_allow = URI:u XX:y\n" "names = a.test\n"
	    "listen = 127.0.0.1:1 127.0.0.1:1\n");
	x->c = config_load_all(x->main, &x->d);
	assert_non_null(x->c);
	EXPECT_ERRORS(x, 9);
	assert_int_equal(x->c->n_hosts, 2);
	assert_true(host(x->c, "a")->bad);
	assert_null(host(x->c, "a")->client_allow_list);	/* emptied, freed */
	assert_true(host(x->c, "b")->bad);
	config_free(x->c);
	x->c = NULL;
	config_free(NULL);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_minimal_and_builtin_defaults),
		T(test_global_listen_default),
		T(test_global_listen_list),
		T(test_stats_listen),
		T(test_workers_number),
		T(test_workers_bounds_ok),
		T(test_workers_auto),
		T(test_durations),
		T(test_duration_bounds_ok),
		T(test_log_settings),
		T(test_log_levels),
		T(test_defaults_inheritance_and_override),
		T(test_listen_defaults_and_host),
		T(test_host_files_and_relative_paths),
		T(test_relative_main_file_gives_absolute_paths),
		T(test_backend_proto),
		T(test_backend_proto_from_defaults),
		T(test_names_normalised),
		T(test_names_repeat_adds),
		T(test_names_300_on_30_lines),
		T(test_value_text),
		T(test_default_bool),
		T(test_protocols),
		T(test_openssl_lists_blank_separated),
		T(test_comments),
		T(test_no_final_newline),
		T(test_bom_accepted),
		T(test_crlf_accepted),
		T(test_acme),
		T(test_indented_keys_are_keys),
		T(test_line_at_limit_accepted),
		T(test_section_name_at_limit_accepted),
		T(test_preexisting_errors_do_not_fail_load),
		T(test_errors_table),
		T(test_err_names_bad_lines),
		T(test_err_line_too_long),
		T(test_err_long_line_not_split),
		T(test_err_long_line_in_host_file),
		T(test_err_long_section_line_keys_not_misattributed),
		T(test_err_section_name_too_long),
		T(test_err_nul_byte),
		T(test_err_missing_main_file),
		T(test_err_host_file_is_directory),
		T(test_load_all_clean),
		T(test_load_all_keeps_going),
		T(test_load_all_missing_main_file),
		T(test_defaults_resolved_once),
		T(test_defaults_copied),
		T(test_load_all_defaults_map_bad),
		T(test_free_after_errors),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
