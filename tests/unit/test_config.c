/*
 * test_config.c: config_load() and config_load_all() on files written into
 * a fresh temporary directory per test, and config_parse_duration().
 *
 * Every error is checked with its full "FILE:LINE: " prefix. The line number
 * of each line of a test file is in the comment at its right.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>	/* TLS1_x_VERSION */

#include "config.h"
#include "diag.h"
#include "log.h"

/* ------------------------------------------------------------------ */
/* fixture                                                              */

struct ctx {
	char dir[PATH_MAX];
	char main[PATH_MAX];
	struct diag d;
	struct config *c;
};

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));
	char sub[PATH_MAX + 16];

	if (x == NULL)
		return -1;
	strcpy(x->dir, "/tmp/tlsfront-test-config-XXXXXX");
	if (mkdtemp(x->dir) == NULL) {
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
	(void)nftw(x->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(x);
	return 0;
}

/* "DIR/rel" in one of a few rotating buffers */
static const char *
P(const struct ctx *x, const char *rel)
{
	static char buf[8][PATH_MAX + 64];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", x->dir, rel);
	return buf[i];
}

static void
put_bytes(const struct ctx *x, const char *rel, const char *data, size_t len)
{
	const char *path = P(x, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
put(const struct ctx *x, const char *rel, const char *text)
{
	put_bytes(x, rel, text, strlen(text));
}

static void
dump(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_message("    diag: %s\n", d->msgs[i]);
}

static struct config *
load(struct ctx *x, const char *text)
{
	put(x, "main.ini", text);
	x->c = config_load(x->main, &x->d);
	return x->c;
}

#define LOAD_OK(x, text) load_ok((x), (text), __LINE__)
static struct config *
load_ok(struct ctx *x, const char *text, int line)
{
	struct config *c = load(x, text);

	if (c == NULL || x->d.n != 0) {
		dump(&x->d);
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
		dump(&x->d);
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
		dump(&x->d);
		fail_msg("line %d: no diagnostic '%s'", line, needle);
	}
}

#define EXPECT_ERRORS(x, n) expect_errors((x), (n), __LINE__)
static void
expect_errors(const struct ctx *x, size_t n, int line)
{
	if (x->d.n_errors != n) {
		dump(&x->d);
		fail_msg("line %d: %zu errors, expected %zu", line, x->d.n_errors, n);
	}
}

#define EXPECT_NOT(x, s) expect_not((x), (s), __LINE__)
static void
expect_not(const struct ctx *x, const char *s, int line)
{
	if (diag_has(&x->d, s)) {
		dump(&x->d);
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
	assert_string_equal(h->cert, P(x, "a.pem"));
	assert_string_equal(h->key, P(x, "a.key"));
	assert_string_equal(h->backend.text, "127.0.0.1:9000");
	assert_int_equal(h->loc[K_CERT].line, 5);
	assert_int_equal(h->loc[K_KEY].line, 6);
	assert_int_equal(h->loc[K_BACKEND].line, 7);

	/* built-in defaults, located at line 0 */
	assert_int_equal(h->protocols.min, TLS1_2_VERSION);
	assert_int_equal(h->protocols.max, TLS1_3_VERSION);
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
	assert_string_equal(c->g.hosts, P(x, "hosts.d/*.ini"));
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
test_err_listen_unix(void **state)
{
	struct ctx *x = *state;

	/* listeners are TCP only; reported once, at the [global] line */
	LOAD_FAILS(x, "[global]\n"
	    "listen = 127.0.0.1:1 unix:/run/x.sock\n"
	    "hosts = hosts.d/*.ini\n" HOST4("a") HOST4("b"));
	EXPECT_AT(x, "main.ini", 2, "listen: unix:/run/x.sock: tlsfront listens on TCP addresses only");
	assert_int_equal(x->d.n_errors, 1);
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
	config_free(x->c);
	x->c = NULL;
	LOAD_FAILS(x, GLOBAL3 "stats_listen = 9199\n" HOST4("a"));
	EXPECT_AT(x, "main.ini", 4, "stats_listen: bad address '9199'");
	diag_free(&x->d);
	LOAD_FAILS(x, GLOBAL3 HOST4("a") "stats_listen = 127.0.0.1:9199\n");
	EXPECT_AT(x, "main.ini", 8, "key 'stats_listen' is not allowed in a [host] section");
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

static void
test_workers_auto(void **state)
{
	struct ctx *x = *state;
	const struct config *c;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	c = LOAD_OK(x, GLOBAL3 "workers = auto\n" HOST4("a"));
	assert_int_equal(c->g.workers, n < 1 ? 1 : n > 256 ? 256 : n);
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

	assert_string_equal(a->cert, P(x, "certs/default.pem"));
	assert_string_equal(a->key, P(x, "certs/default.key"));
	assert_string_equal(a->backend.text, "127.0.0.1:9000");
	assert_int_equal(a->protocols.min, TLS1_3_VERSION);
	assert_int_equal(a->protocols.max, TLS1_3_VERSION);
	assert_int_equal(a->idle_timeout_ms, 60000);
	assert_int_equal(a->alpn.n, 2);
	assert_string_equal(a->alpn.v[0], "h2");
	assert_string_equal(a->alpn.v[1], "http/1.1");
	assert_int_equal(a->loc[K_CERT].line, 5);
	assert_int_equal(a->loc[K_BACKEND].line, 7);
	assert_int_equal(a->loc[K_ALPN].line, 10);
	assert_int_equal(a->handshake_timeout_ms, 10000);	/* built in */

	assert_string_equal(b->cert, P(x, "b.pem"));
	assert_string_equal(b->key, P(x, "certs/default.key"));
	assert_string_equal(b->backend.text, "unix:/run/b.sock");
	assert_int_equal(b->protocols.min, TLS1_2_VERSION);
	assert_int_equal(b->protocols.max, TLS1_2_VERSION);
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
	put(x, "hosts.d/b.ini",
	    "; host b\n"			/* 1 */
	    "[host b]\n"			/* 2 */
	    "cert = b.pem\n"			/* 3 */
	    "key = /etc/ssl/b.key\n"		/* 4 */
	    "backend = 127.0.0.1:9002\n");	/* 5 */
	put(x, "hosts.d/a.ini",
	    "[host a]\n"			/* 1 */
	    "key = keys/a.key\n"		/* 2 */
	    "backend = 127.0.0.1:9001\n");	/* 3 */
	put(x, "hosts.d/readme.txt", "this is not ini\n");
	c = LOAD_OK(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "cert = certs/d.pem\n");		/* 5 */
	assert_int_equal(c->n_hosts, 2);
	a = &c->hosts[0];
	b = &c->hosts[1];
	/* host files are read in sorted order */
	assert_string_equal(a->label, "a");
	assert_string_equal(b->label, "b");
	assert_string_equal(a->at.file, P(x, "hosts.d/a.ini"));
	assert_int_equal(a->at.line, 1);
	assert_string_equal(b->at.file, P(x, "hosts.d/b.ini"));
	assert_int_equal(b->at.line, 2);

	/* relative to the file the value was written in */
	assert_string_equal(a->cert, P(x, "certs/d.pem"));
	assert_string_equal(a->loc[K_CERT].file, x->main);
	assert_int_equal(a->loc[K_CERT].line, 5);
	assert_string_equal(a->key, P(x, "hosts.d/keys/a.key"));
	assert_string_equal(a->loc[K_KEY].file, P(x, "hosts.d/a.ini"));
	assert_string_equal(b->cert, P(x, "hosts.d/b.pem"));
	assert_string_equal(b->key, "/etc/ssl/b.key");
	assert_string_equal(c->g.hosts, P(x, "hosts.d/*.ini"));
}

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

	put(x, "main.ini", GLOBAL3 HOST4("a"));
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(x->dir), 0);
	c = config_load("main.ini", &x->d);
	assert_int_equal(chdir(old), 0);
	if (c == NULL) {
		dump(&x->d);
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
	assert_string_equal(h->alpn_backends[0].addr.text, "127.0.0.1:9001");
	assert_int_equal(h->alpn_backends[0].at.line, 9);
	assert_string_equal(h->alpn_backends[0].at.file, x->main);
	assert_string_equal(h->alpn_backends[1].proto, "http/1.1");
	assert_string_equal(h->alpn_backends[1].addr.text, "unix:/run/h1.sock");
	assert_int_equal(h->alpn_backends[1].at.line, 10);
	assert_string_equal(h->backend.text, "127.0.0.1:9000");
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
	assert_string_equal(h->alpn_backends[0].addr.text, "127.0.0.1:9001");
	assert_int_equal(h->alpn_backends[0].at.line, 5);
	h = host(c, "b");
	assert_int_equal(h->n_alpn_backends, 1);
	assert_string_equal(h->alpn_backends[0].addr.text, "127.0.0.1:9002");
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
	put(x, "hosts.d/many.ini", text);
	free(text);
	c = LOAD_OK(x, GLOBAL3);
	h = host(c, "many");
	assert_int_equal(h->names.n, 300);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "n%d.many.test", i);
		assert_string_equal(h->names.v[i], name);
	}
	assert_string_equal(h->loc[K_NAMES].file, P(x, "hosts.d/many.ini"));
	assert_int_equal(h->loc[K_NAMES].line, 5);
}

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
	TEXT(h, K_CERT, P(x, "a.pem"));
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
		{ "TLSv1.3", TLS1_3_VERSION, TLS1_3_VERSION },
		{ "tlsv1.2", TLS1_2_VERSION, TLS1_2_VERSION },
		{ "TLSv1.3, TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION },
		{ "TLSv1 TLSv1.3", TLS1_VERSION, TLS1_3_VERSION },
		{ "TLSv1.0 TLSv1.1", TLS1_VERSION, TLS1_1_VERSION },
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
	assert_string_equal(c->hosts[0].backend.text, "127.0.0.1:9000");
}

static void
test_no_final_newline(void **state)
{
	struct ctx *x = *state;

	assert_string_equal(LOAD_OK(x, GLOBAL3
	    "[host a]\ncert = a.pem\nkey = a.key\nbackend = 127.0.0.1:9000")->hosts[0].backend.text,
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
	assert_string_equal(h->cert, P(x, "a.pem"));
	assert_string_equal(h->names.v[0], "a.example.com");
	assert_string_equal(h->alpn.v[0], "h2");
	assert_int_equal(c->g.log_level, LOG_LVL_WARN);
}

static void
test_crlf_line_numbers(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, "[global]\r\n"		/* 1 */
	    "hosts = hosts.d/*.ini\r\n"		/* 2 */
	    "bogus = 1\r\n"			/* 3 */
	    "[host a]\r\n"			/* 4 */
	    "cert = a.pem\r\nkey = a.key\r\nbackend = 127.0.0.1:9000\r\n");
	EXPECT_AT(x, "main.ini", 3, "unknown key 'bogus'");
	EXPECT_ERRORS(x, 1);
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
	assert_string_equal(c->g.hosts, P(x, "hosts.d/*.ini"));
	assert_string_equal(c->hosts[0].backend.text, "127.0.0.1:9000");
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
	put(x, "main.ini", GLOBAL3 HOST4("a"));
	x->c = config_load(x->main, &x->d);
	assert_non_null(x->c);
	assert_int_equal(x->d.n_errors, 1);
}

/* ------------------------------------------------------------------ */
/* errors                                                               */

static void
test_err_unknown_section(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "[hosts b]\n"			/* 8 */
	    "cert = x\n");			/* 9: ignored with its section */
	EXPECT_AT(x, "main.ini", 8, "unknown section [hosts b]");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_unknown_key(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 "colour = blue\n" HOST4("a") "frobnicate = yes\n");
	EXPECT_AT(x, "main.ini", 4, "unknown key 'colour'");
	EXPECT_AT(x, "main.ini", 9, "unknown key 'frobnicate'");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_duplicate_key(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "workers = 2\n"			/* 4 */
	    "workers = 3\n"			/* 5 */
	    HOST4("a")				/* 6..9 */
	    "backend = 127.0.0.1:9001\n");	/* 10 */
	EXPECT_AT(x, "main.ini", 5, "duplicate key 'workers' (first at line 4)");
	EXPECT_AT(x, "main.ini", 10, "duplicate key 'backend' (first at line 9)");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_duplicate_backend_proto(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "alpn = h2\n"			/* 8 */
	    "backend.h2 = 127.0.0.1:1\n"	/* 9 */
	    "backend.h2 = 127.0.0.1:2\n");	/* 10 */
	EXPECT_AT(x, "main.ini", 10, "duplicate key 'backend.h2' (first at line 9)");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_key_not_allowed_here(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "cert = x.pem\n"			/* 4 */
	    "[defaults]\n"			/* 5 */
	    "names = a.example.com\n"		/* 6 */
	    "default = yes\n"			/* 7 */
	    "workers = 2\n"			/* 8 */
	    HOST4("a")				/* 9..12 */
	    "log_level = debug\n"		/* 13 */
	    "hosts = x/*.ini\n");		/* 14 */
	EXPECT_AT(x, "main.ini", 4, "key 'cert' is not allowed in [global]");
	EXPECT_AT(x, "main.ini", 6, "key 'names' is not allowed in [defaults]");
	EXPECT_AT(x, "main.ini", 7, "key 'default' is not allowed in [defaults]");
	EXPECT_AT(x, "main.ini", 8, "key 'workers' is not allowed in [defaults]");
	EXPECT_AT(x, "main.ini", 13, "key 'log_level' is not allowed in a [host] section");
	EXPECT_AT(x, "main.ini", 14, "key 'hosts' is not allowed in a [host] section");
	EXPECT_ERRORS(x, 6);
}

static void
test_err_backend_proto_in_global(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 "backend.h2 = 127.0.0.1:1\n" HOST4("a"));
	EXPECT_AT(x, "main.ini", 4, "unknown key 'backend.h2'");
	EXPECT_ERRORS(x, 1);
}

/* An unknown key names the key it is near, preferring this section's. */
static void
test_err_unknown_key_suggestion(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
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
	    "bakend.h2 = 127.0.0.1:9\n");	/* 17 */
	EXPECT_AT(x, "main.ini", 4, "unknown key 'worker' (did you mean 'workers'?)");
	EXPECT_AT(x, "main.ini", 6, "unknown key 'idle_timout' (did you mean 'idle_timeout'?)");
	EXPECT_AT(x, "main.ini", 11, "unknown key 'bakend' (did you mean 'backend'?)");
	EXPECT_AT(x, "main.ini", 12, "unknown key 'name' (did you mean 'names'?)");
	EXPECT_AT(x, "main.ini", 13, "unknown key 'nmaes' (did you mean 'names'?)");
	EXPECT_AT(x, "main.ini", 14, "unknown key 'Alpn' (did you mean 'alpn'?)");
	EXPECT_AT(x, "main.ini", 15,
	    "unknown key 'hanshake_timeout' (did you mean 'handshake_timeout'?)");
	EXPECT_AT(x, "main.ini", 16, "unknown key 'kye' (did you mean 'key'?)");
	EXPECT_AT(x, "main.ini", 17, "unknown key 'bakend.h2' (did you mean 'backend.h2'?)");
	EXPECT_ERRORS(x, 9);
}

/* A near key of another section is named with the section it belongs in. */
static void
test_err_unknown_key_suggests_other_section(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "bakend = 127.0.0.1:9\n"		/* 4 */
	    "backend.h2 = 127.0.0.1:9\n"	/* 5 */
	    HOST4("a")				/* 6..9 */
	    "log_levle = debug\n"		/* 10 */
	    "cert = again.pem\n");		/* 11 */
	EXPECT_AT(x, "main.ini", 4, "unknown key 'bakend' (did you mean 'backend'? it belongs "
	    "in [defaults] or a [host] section)");
	EXPECT_AT(x, "main.ini", 5, "unknown key 'backend.h2' (backend.PROTO lines belong in "
	    "[defaults] or a [host] section)");
	EXPECT_AT(x, "main.ini", 10, "unknown key 'log_levle' (did you mean 'log_level'? it "
	    "belongs in [global])");
	/* a duplicate stays a duplicate, whatever is near it */
	EXPECT_AT(x, "main.ini", 11, "duplicate key 'cert' (first at line 7)");
	EXPECT_ERRORS(x, 4);
}

/* Nothing near: no suggestion; a known key elsewhere says where it belongs. */
static void
test_err_unknown_key_far_no_suggestion(void **state)
{
	struct ctx *x = *state;
	char msg[PATH_MAX + 64];

	LOAD_FAILS(x, GLOBAL3
	    "cert = x.pem\n"			/* 4 */
	    HOST4("a")				/* 5..8 */
	    "cert_file = a.pem\n"		/* 9 */
	    "ca = ca.pem\n"			/* 10 */
	    "colour = blue\n"			/* 11 */
	    "workers = 2\n");			/* 12 */
	EXPECT_AT(x, "main.ini", 4, "key 'cert' is not allowed in [global] (it belongs in "
	    "[defaults] or a [host] section)");
	/* the whole message: nothing after the name */
	snprintf(msg, sizeof(msg), "%s:9: unknown key 'cert_file'", x->main);
	assert_true(x->d.n >= 4);
	assert_string_equal(x->d.msgs[1], msg);
	snprintf(msg, sizeof(msg), "%s:10: unknown key 'ca'", x->main);
	assert_string_equal(x->d.msgs[2], msg);
	snprintf(msg, sizeof(msg), "%s:11: unknown key 'colour'", x->main);
	assert_string_equal(x->d.msgs[3], msg);
	EXPECT_AT(x, "main.ini", 12, "key 'workers' is not allowed in a [host] section (it "
	    "belongs in [global])");
	EXPECT_NOT(x, "did you mean");
	EXPECT_ERRORS(x, 5);
}

/* Only names may repeat: any other key twice is a duplicate, in every
 * section and file, at the second line. */
static void
test_err_duplicate_keys_but_names(void **state)
{
	struct ctx *x = *state;

	put(x, "hosts.d/b.ini",
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
	    "proxy_protocol = v2\n");		/* 11 */
	LOAD_FAILS(x, GLOBAL3
	    "log_level = warn\n"		/* 4 */
	    "listen = 127.0.0.1:8444\n"		/* 5 */
	    "[defaults]\n"			/* 6 */
	    "idle_timeout = 1m\n"		/* 7 */
	    "idle_timeout = 2m\n");		/* 8 */
	EXPECT_AT(x, "main.ini", 5, "duplicate key 'listen' (first at line 2)");
	EXPECT_AT(x, "main.ini", 8, "duplicate key 'idle_timeout' (first at line 7)");
	EXPECT_AT(x, "hosts.d/b.ini", 8, "duplicate key 'alpn' (first at line 6)");
	EXPECT_AT(x, "hosts.d/b.ini", 9, "duplicate key 'cert' (first at line 2)");
	EXPECT_AT(x, "hosts.d/b.ini", 11, "duplicate key 'proxy_protocol' (first at line 10)");
	EXPECT_NOT(x, "duplicate key 'names'");
	EXPECT_ERRORS(x, 5);
}

/* A name on two names lines is an error at the second, naming the first. */
static void
test_err_names_repeated_across_lines(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "names = a.test b.test\n"		/* 8 */
	    "names = c.test\n"			/* 9 */
	    "names = B.Test. d.test a.test\n"	/* 10 */
	    "names = b.test\n"			/* 11 */
	    HOST4("b")				/* 12..15 */
	    "names = ok.test\n");		/* 16 */
	EXPECT_AT(x, "main.ini", 10, "names: 'b.test' is listed twice (first at line 8)");
	EXPECT_AT(x, "main.ini", 10, "names: 'a.test' is listed twice (first at line 8)");
	EXPECT_AT(x, "main.ini", 11, "names: 'b.test' is listed twice (first at line 8)");
	EXPECT_ERRORS(x, 3);
}

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
	put(x, "main.ini", text);
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
test_err_duplicate_host_label_across_files(void **state)
{
	struct ctx *x = *state;
	char msg[PATH_MAX + 128];

	put(x, "hosts.d/a.ini", HOST4("web"));
	put(x, "hosts.d/b.ini", "; second\n" "\n" HOST4("web"));
	LOAD_FAILS(x, GLOBAL3);
	snprintf(msg, sizeof(msg), "duplicate host label 'web' (first defined at %s:1)",
	    P(x, "hosts.d/a.ini"));
	EXPECT_AT(x, "hosts.d/b.ini", 3, msg);
	EXPECT_ERRORS(x, 1);
}

static void
test_err_duplicate_host_label_main_and_file(void **state)
{
	struct ctx *x = *state;
	char msg[PATH_MAX + 128];

	put(x, "hosts.d/a.ini", HOST4("a"));
	LOAD_FAILS(x, GLOBAL3 HOST4("a"));
	snprintf(msg, sizeof(msg), "duplicate host label 'a' (first defined at %s:4)", x->main);
	EXPECT_AT(x, "hosts.d/a.ini", 1, msg);
	EXPECT_ERRORS(x, 1);
}

static void
test_err_duplicate_section(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 "[defaults]\n" "[global]\n" "workers = 1\n" "[defaults]\n"
	    HOST4("a"));
	EXPECT_AT(x, "main.ini", 5, "duplicate section [global] (first at line 1)");
	EXPECT_AT(x, "main.ini", 7, "duplicate section [defaults] (first at line 4)");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_bad_host_label(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a") "[host b/c]\n" "[host d e]\n" "[host ]\n");
	EXPECT_AT(x, "main.ini", 8, "bad host label 'b/c'");
	EXPECT_AT(x, "main.ini", 9, "bad host label 'd e'");
	EXPECT_AT(x, "main.ini", 10, "unknown section [host ]");
	EXPECT_ERRORS(x, 3);
}

static void
test_err_section_header_syntax(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "[host b\n"				/* 8 */
	    "cert = b\n"			/* 9: in no section: ignored */
	    "[host c] junk\n"			/* 10 */
	    "cert = c\n");			/* 11: ignored */
	EXPECT_AT(x, "main.ini", 8, "section header without ']'");
	EXPECT_AT(x, "main.ini", 10, "unexpected text after section header");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_bad_duration(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "shutdown_timeout = 2d\n"		/* 4 */
	    HOST4("a")				/* 5..8 */
	    "handshake_timeout = 10x\n"		/* 9 */
	    "connect_timeout = 99ms\n"		/* 10: below 100ms */
	    "idle_timeout = 169h\n"		/* 11: above 7 days */
	    HOST4("b")				/* 12..15 */
	    "handshake_timeout = 61m\n"		/* 16: above 1h */
	    "idle_timeout = 999ms\n"		/* 17: below 1s */
	    "connect_timeout = 1.5s\n");	/* 18 */
	EXPECT_AT(x, "main.ini", 4, "shutdown_timeout: bad duration '2d'");
	EXPECT_AT(x, "main.ini", 9, "handshake_timeout: bad duration '10x'");
	EXPECT_AT(x, "main.ini", 10, "connect_timeout: bad duration '99ms'");
	EXPECT_AT(x, "main.ini", 11, "idle_timeout: bad duration '169h'");
	EXPECT_AT(x, "main.ini", 16, "handshake_timeout: bad duration '61m'");
	EXPECT_AT(x, "main.ini", 17, "idle_timeout: bad duration '999ms'");
	EXPECT_AT(x, "main.ini", 18, "connect_timeout: bad duration '1.5s'");
	EXPECT_ERRORS(x, 7);
}

static void
test_err_bad_workers(void **state)
{
	static const char *const bad[] = { "0", "257", "-1", "four", "4x", "0x4", "Auto" };
	struct ctx *x = *state;
	char text[512], msg[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), GLOBAL3 "workers = %s\n" HOST4("a"), bad[i]);
		LOAD_FAILS(x, text);
		snprintf(msg, sizeof(msg), "workers: expected auto or a number of workers "
		    "1..256, not '%s'", bad[i]);
		EXPECT_AT(x, "main.ini", 4, msg);
		EXPECT_ERRORS(x, 1);
		diag_free(&x->d);
	}
}

static void
test_err_bad_bool(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a") "default = maybe\n");
	EXPECT_AT(x, "main.ini", 8, "default: expected yes or no, not 'maybe'");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_bad_address(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, "[global]\n"		/* 1 */
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
	    "listen = 127.0.0.1:1, 127.0.0.1:01\n");	/* 13 */
	EXPECT_AT(x, "main.ini", 2, "listen: bad port in '127.0.0.1:0'");
	EXPECT_AT(x, "main.ini", 7, "backend: bad address '127.0.0.1'");
	EXPECT_AT(x, "main.ini", 8, "listen: bad address '::1:443'");
	EXPECT_AT(x, "main.ini", 12, "backend: unix socket path must be absolute");
	EXPECT_AT(x, "main.ini", 13, "listen: '127.0.0.1:01' is listed twice");
	/* a bad backend is not also a missing one */
	EXPECT_NOT(x, "has no 'backend'");
	EXPECT_ERRORS(x, 5);
}

static void
test_err_bad_log(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 "log = file\n" "log_level = DEBUG\n" HOST4("a"));
	EXPECT_AT(x, "main.ini", 4, "log: expected stderr or syslog, not 'file'");
	EXPECT_AT(x, "main.ini", 5, "log_level: expected error, warn, info or debug, not 'DEBUG'");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_bad_protocols(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "protocols = TLSv1.2 SSLv3\n"	/* 8 */
	    HOST4("b")				/* 9..12 */
	    "protocols = ,\n");			/* 13 */
	EXPECT_AT(x, "main.ini", 8, "protocols: unknown protocol 'SSLv3'");
	EXPECT_AT(x, "main.ini", 13, "protocols: no protocol given");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_bad_names(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "names = ok.example.com a..b\n"	/* 8 */
	    HOST4("b")				/* 9..12 */
	    "names = a.example.com A.Example.Com.\n"	/* 13 */
	    HOST4("c")				/* 14..17 */
	    "names = a.*.example.com\n");	/* 18 */
	EXPECT_AT(x, "main.ini", 8, "names: 'a..b' is not a valid host name or *.wildcard");
	EXPECT_AT(x, "main.ini", 13, "names: 'A.Example.Com.' is listed twice");
	EXPECT_AT(x, "main.ini", 18, "names: 'a.*.example.com' is not a valid host name");
	EXPECT_ERRORS(x, 3);
}

static void
test_err_bad_alpn(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a") "alpn = h2 h2\n");
	EXPECT_AT(x, "main.ini", 8, "alpn: 'h2' is listed twice");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_backend_proto_not_in_alpn(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "alpn = h2\n"			/* 8 */
	    "backend.h3 = 127.0.0.1:9003\n");	/* 9 */
	EXPECT_AT(x, "main.ini", 9, "backend.h3: 'h3' is not in this host's alpn list");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_backend_proto_bad(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 HOST4("a")	/* 1..7 */
	    "alpn = h2\n"			/* 8 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 9 */
	    "backend. = 127.0.0.1:1\n");	/* 10 */
	EXPECT_AT(x, "main.ini", 9, "backend.h2: bad port in '127.0.0.1:0'");
	EXPECT_AT(x, "main.ini", 10, "'backend.': expected backend.PROTOCOL");
	EXPECT_ERRORS(x, 2);
}

/* Regression (was a bug): config.c build_host() parses [defaults] backend.PROTO once per host
 * that lists PROTO, so one bad line is reported once per such host (here
 * twice), unlike every other [defaults] value, which config_load() checks
 * once on its own. */
static void
test_err_defaults_backend_proto_reported_once(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "alpn = h2\n"			/* 5 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 6 */
	    HOST4("a") HOST4("b"));
	EXPECT_AT(x, "main.ini", 6, "backend.h2: bad port in '127.0.0.1:0'");
	EXPECT_ERRORS(x, 1);
}

/* Regression (was a bug): config.c build_host() only parses a [defaults] backend.PROTO for a
 * host whose alpn lists PROTO, so a bad one is never reported when no host
 * does (`tlsfront -t` says OK), while a bad [defaults] `backend` is reported
 * even when every host overrides it. */
static void
test_err_defaults_backend_proto_checked_without_users(void **state)
{
	struct ctx *x = *state;
	struct config *c;

	c = load(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "backend.h2 = 127.0.0.1:0\n"	/* 5 */
	    HOST4("a"));
	if (c != NULL) {
		dump(&x->d);
		fail_msg("[defaults] backend.h2 = 127.0.0.1:0 was accepted");
	}
	EXPECT_AT(x, "main.ini", 5, "backend.h2: bad port in '127.0.0.1:0'");
}

static void
test_err_defaults_value_reported_once(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "[defaults]\n"			/* 4 */
	    "handshake_timeout = soon\n"	/* 5 */
	    "backend = nowhere\n"		/* 6 */
	    "[host a]\ncert = a\nkey = a\n"
	    "[host b]\ncert = b\nkey = b\n"
	    HOST4("c"));			/* overrides backend */
	EXPECT_AT(x, "main.ini", 5, "handshake_timeout: bad duration 'soon'");
	EXPECT_AT(x, "main.ini", 6, "backend: bad address 'nowhere'");
	EXPECT_NOT(x, "has no 'backend'");
	EXPECT_ERRORS(x, 2);
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
	put(x, "hosts.d/a.ini", text);
	LOAD_FAILS(x, GLOBAL3);
	EXPECT_AT(x, "hosts.d/a.ini", 5, "line is 252 bytes long");
	EXPECT_ERRORS(x, 1);
}

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
test_err_line_without_equals(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 "workers 4\n" "= 4\n" HOST4("a") "backend\n");
	EXPECT_AT(x, "main.ini", 4, "expected 'key = value'");
	EXPECT_AT(x, "main.ini", 5, "expected 'key = value'");
	EXPECT_AT(x, "main.ini", 10, "expected 'key = value'");
	EXPECT_ERRORS(x, 3);
}

static void
test_err_key_before_section(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, "workers = 2\n" GLOBAL3 HOST4("a"));
	EXPECT_AT(x, "main.ini", 1, "'workers' outside any section");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_key_before_section_in_host_file(void **state)
{
	struct ctx *x = *state;

	/* the main file's last section must not carry over */
	put(x, "hosts.d/a.ini", "; x\n" "backend = 127.0.0.1:1\n" HOST4("a"));
	LOAD_FAILS(x, GLOBAL3 HOST4("m"));
	EXPECT_AT(x, "hosts.d/a.ini", 2, "'backend' outside any section");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_global_in_host_file(void **state)
{
	struct ctx *x = *state;

	put(x, "hosts.d/a.ini", HOST4("a")	/* 1..4 */
	    "[global]\n"			/* 5 */
	    "workers = 2\n"			/* 6: ignored */
	    "[defaults]\n"			/* 7 */
	    "backend = 127.0.0.1:1\n");		/* 8: ignored */
	LOAD_FAILS(x, GLOBAL3);
	EXPECT_AT(x, "hosts.d/a.ini", 5, "[global] belongs in the main file");
	EXPECT_AT(x, "hosts.d/a.ini", 7, "[defaults] belongs in the main file");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_empty_value(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3 "workers =\n" "log_level = ; none\n" HOST4("a") "names =   \n");
	EXPECT_AT(x, "main.ini", 4, "'workers' has an empty value");
	EXPECT_AT(x, "main.ini", 5, "'log_level' has an empty value");
	EXPECT_AT(x, "main.ini", 10, "'names' has an empty value");
	EXPECT_ERRORS(x, 3);
}

static void
test_err_host_missing_required(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3
	    "[host a]\n"			/* 4 */
	    "names = a.example.com\n"		/* 5 */
	    "[host b]\n"			/* 6 */
	    "cert = b.pem\n");			/* 7 */
	EXPECT_AT(x, "main.ini", 4, "host 'a' has no 'cert'");
	EXPECT_AT(x, "main.ini", 4, "host 'a' has no 'key'");
	EXPECT_AT(x, "main.ini", 4, "host 'a' has no 'backend'");
	EXPECT_AT(x, "main.ini", 6, "host 'b' has no 'key'");
	EXPECT_AT(x, "main.ini", 6, "host 'b' has no 'backend'");
	EXPECT_NOT(x, "host 'b' has no 'cert'");
	EXPECT_ERRORS(x, 5);
}

static void
test_err_empty_host_file_section(void **state)
{
	struct ctx *x = *state;

	put(x, "hosts.d/a.ini", "\n\n[host empty]\n");
	LOAD_FAILS(x, GLOBAL3);
	EXPECT_AT(x, "hosts.d/a.ini", 3, "host 'empty' has no 'cert'");
	EXPECT_ERRORS(x, 3);
}

static void
test_err_nul_byte(void **state)
{
	struct ctx *x = *state;
	static const char text[] = GLOBAL3
	    "work\0ers = 2\n"			/* 4 */
	    "bogus = 1\n"			/* 5 */
	    HOST4("a");

	put_bytes(x, "main.ini", text, sizeof(text) - 1);
	x->c = config_load(x->main, &x->d);
	assert_null(x->c);
	EXPECT_AT(x, "main.ini", 4, "NUL byte in line");
	EXPECT_AT(x, "main.ini", 5, "unknown key 'bogus'");
	EXPECT_NOT(x, "'work'");
	EXPECT_ERRORS(x, 2);
}

static void
test_err_no_host(void **state)
{
	struct ctx *x = *state;

	LOAD_FAILS(x, GLOBAL3);
	EXPECT_AT(x, "main.ini", 0, "no [host LABEL] section found");
	EXPECT_ERRORS(x, 1);
}

static void
test_err_missing_main_file(void **state)
{
	struct ctx *x = *state;

	assert_null(config_load(P(x, "nope.ini"), &x->d));
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

static void
test_err_several_in_one_run(void **state)
{
	struct ctx *x = *state;

	put(x, "hosts.d/z.ini", "[host z]\n" "cert = z\n" "key = z\n" "backend = x:0\n");
	LOAD_FAILS(x, GLOBAL3
	    "workers = 0\n"			/* 4 */
	    "bogus = 1\n"			/* 5 */
	    "[nope]\n"				/* 6 */
	    "[host a]\n"			/* 7 */
	    "cert = a.pem\n"			/* 8 */
	    "key = a.key\n"			/* 9 */
	    "backend = 127.0.0.1\n"		/* 10 */
	    "handshake_timeout = 1x\n");	/* 11 */
	EXPECT_AT(x, "main.ini", 4, "workers: ");
	EXPECT_AT(x, "main.ini", 5, "unknown key 'bogus'");
	EXPECT_AT(x, "main.ini", 6, "unknown section [nope]");
	EXPECT_AT(x, "main.ini", 10, "backend: bad address");
	EXPECT_AT(x, "main.ini", 11, "handshake_timeout: bad duration");
	EXPECT_AT(x, "hosts.d/z.ini", 4, "backend: bad port");
	EXPECT_ERRORS(x, 6);
	assert_int_equal(x->d.n, 6);
}

/* ------------------------------------------------------------------ */
/* config_load_all                                                      */

static void
test_load_all_clean(void **state)
{
	struct ctx *x = *state;

	put(x, "main.ini", GLOBAL3 HOST4("a") HOST4("b"));
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

	put(x, "main.ini", text);
	x->c = config_load_all(x->main, &x->d);
	c = x->c;
	assert_non_null(c);
	EXPECT_AT(x, "main.ini", 5, "idle_timeout: bad duration 'soon'");
	EXPECT_AT(x, "main.ini", 14, "backend: bad address '127.0.0.1'");
	EXPECT_ERRORS(x, 2);
	assert_int_equal(c->n_hosts, 3);
	assert_false(host(c, "a")->bad);
	assert_int_equal(host(c, "a")->idle_timeout_ms, 60000);
	assert_string_equal(host(c, "a")->backend.text, "127.0.0.1:9000");
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

	x->c = config_load_all(P(x, "nope.ini"), &x->d);
	EXPECT_AT(x, "nope.ini", 0, "cannot open");
	EXPECT_ERRORS(x, 1);
	if (x->c != NULL)
		assert_int_equal(x->c->n_hosts, 0);
}

/* ------------------------------------------------------------------ */
/* config_parse_duration, config_free                                   */

static unsigned
dur(const char *s, unsigned long long max)
{
	unsigned ms = 12345;

	if (config_parse_duration(s, max, &ms) != 0)
		fail_msg("config_parse_duration('%s', %llu) failed", s, max);
	return ms;
}

static void
dur_fails(const char *s, unsigned long long max)
{
	unsigned ms = 12345;

	if (config_parse_duration(s, max, &ms) == 0)
		fail_msg("config_parse_duration('%s', %llu) gave %u", s, max, ms);
}

static void
test_duration_units(void **state)
{
	assert_int_equal(dur("250ms", ULLONG_MAX), 250);
	assert_int_equal(dur("10s", ULLONG_MAX), 10000);
	assert_int_equal(dur("5m", ULLONG_MAX), 300000);
	assert_int_equal(dur("1h", ULLONG_MAX), 3600000);
	assert_int_equal(dur("7", ULLONG_MAX), 7000);
	assert_int_equal(dur("0", ULLONG_MAX), 0);
	assert_int_equal(dur("0ms", ULLONG_MAX), 0);
	assert_int_equal(dur("007s", ULLONG_MAX), 7000);
}

static void
test_duration_bad_suffix(void **state)
{
	static const char *const bad[] = {
		"", "s", "ms", "10x", "10S", "10MS", "10 s", "10sec", "10ms ", " 10",
		"1.5s", "-1", "+1", "10d", "10mss", "1h30m", "0x10",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		dur_fails(bad[i], ULLONG_MAX);
}

static void
test_duration_max_bound(void **state)
{
	assert_int_equal(dur("10s", 10000), 10000);
	assert_int_equal(dur("10000ms", 10000), 10000);
	assert_int_equal(dur("10", 10000), 10000);
	dur_fails("10001ms", 10000);
	dur_fails("11", 10000);
	dur_fails("1m", 59999);
	dur_fails("1h", 3599999);
	dur_fails("1ms", 0);
	assert_int_equal(dur("0s", 0), 0);
}

static void
test_duration_overflow(void **state)
{
	/* above UINT_MAX ms */
	dur_fails("4294968s", ULLONG_MAX);
	dur_fails("1194h", ULLONG_MAX);
	assert_int_equal(dur("1193h", ULLONG_MAX), 1193U * 3600000U);
	assert_int_equal(dur("4294967s", ULLONG_MAX), 4294967000U);
	/* long digit strings must not wrap around */
	dur_fails("1000000001", ULLONG_MAX);
	dur_fails("18446744073709551617ms", ULLONG_MAX);
	dur_fails("99999999999999999999999999999999h", ULLONG_MAX);
	dur_fails("18446744073709552ms", ULLONG_MAX);
}

static void
test_config_free_null(void **state)
{
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
		T(test_err_listen_unix),
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
		T(test_crlf_line_numbers),
		T(test_indented_keys_are_keys),
		T(test_line_at_limit_accepted),
		T(test_section_name_at_limit_accepted),
		T(test_preexisting_errors_do_not_fail_load),
		T(test_err_unknown_section),
		T(test_err_unknown_key),
		T(test_err_duplicate_key),
		T(test_err_duplicate_backend_proto),
		T(test_err_key_not_allowed_here),
		T(test_err_backend_proto_in_global),
		T(test_err_unknown_key_suggestion),
		T(test_err_unknown_key_suggests_other_section),
		T(test_err_unknown_key_far_no_suggestion),
		T(test_err_duplicate_keys_but_names),
		T(test_err_names_repeated_across_lines),
		T(test_err_names_bad_lines),
		T(test_err_duplicate_host_label_across_files),
		T(test_err_duplicate_host_label_main_and_file),
		T(test_err_duplicate_section),
		T(test_err_bad_host_label),
		T(test_err_section_header_syntax),
		T(test_err_bad_duration),
		T(test_err_bad_workers),
		T(test_err_bad_bool),
		T(test_err_bad_address),
		T(test_err_bad_log),
		T(test_err_bad_protocols),
		T(test_err_bad_names),
		T(test_err_bad_alpn),
		T(test_err_backend_proto_not_in_alpn),
		T(test_err_backend_proto_bad),
		T(test_err_defaults_backend_proto_reported_once),
		T(test_err_defaults_backend_proto_checked_without_users),
		T(test_err_defaults_value_reported_once),
		T(test_err_line_too_long),
		T(test_err_long_line_not_split),
		T(test_err_long_line_in_host_file),
		T(test_err_long_section_line_keys_not_misattributed),
		T(test_err_section_name_too_long),
		T(test_err_line_without_equals),
		T(test_err_key_before_section),
		T(test_err_key_before_section_in_host_file),
		T(test_err_global_in_host_file),
		T(test_err_empty_value),
		T(test_err_host_missing_required),
		T(test_err_empty_host_file_section),
		T(test_err_nul_byte),
		T(test_err_no_host),
		T(test_err_missing_main_file),
		T(test_err_host_file_is_directory),
		T(test_err_several_in_one_run),
		T(test_load_all_clean),
		T(test_load_all_keeps_going),
		T(test_load_all_missing_main_file),
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_bad_suffix),
		cmocka_unit_test(test_duration_max_bound),
		cmocka_unit_test(test_duration_overflow),
		cmocka_unit_test(test_config_free_null),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
