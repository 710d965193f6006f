/*
 * test_dump.c: a generation in words (dump.c): `tlsfront -T`'s dump of the
 * effective configuration, and the one log line per host, for a generation
 * gen_load built from files in a temporary directory (certificates made by
 * unit_pki.c).
 *
 * The dump goes to a memory stream; the summaries, logged by log.c to
 * stderr, go to a pipe while they are written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"
#include "log.h"
#include "unit_pki.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	struct diag d;
	struct generation *g;
	char *text;		/* the dump */
};

static const char hosts_ini[] =
	"[host shop]\n"
	"cert = ../shop.pem\n"
	"key = ../shop.key\n"
	"backend = 127.0.0.1:8080\n"
	"alpn = h2 http/1.1\n"
	"backend.h2 = 127.0.0.1:8081\n"
	"names = shop.example www.shop.example\n"
	"default = yes\n"
	"handshake_timeout = 3s\n"
	"\n"
	"[host api]\n"
	"cert = ../api.pem\n"
	"key = ../api.key\n"
	"backend = unix:/run/api.sock\n"
	"\n"
	"[host bad]\n"
	"cert = ../missing.pem\n"
	"key = ../missing.key\n"
	"backend = 127.0.0.1:9000\n"
	"names = bad.example\n";

/* Three hosts, one of them left out (host_errors = skip). */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_dump"), 0);
	assert_int_equal(mkdir(unit_path(f->dir, "hosts.d"), 0700), 0);
	unit_put(f->dir, "main.ini",
	    "[global]\nlisten = 127.0.0.1:8443\nhosts = hosts.d/*.ini\n"
	    "workers = 2\nhost_errors = skip\n[defaults]\nhandshake_timeout = 10s\n");
	unit_pki_write(unit_path(f->dir, "shop.pem"), unit_path(f->dir, "shop.key"),
	    "shop.example", "DNS:shop.example,DNS:www.shop.example", 90);
	unit_pki_write(unit_path(f->dir, "api.pem"), unit_path(f->dir, "api.key"),
	    "api.example", "DNS:api.example,DNS:*.api.example", 30);
	unit_put(f->dir, "hosts.d/a.ini", hosts_ini);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	free(f->text);
	gen_free(f->g);
	diag_free(&f->d);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

static const struct generation *
load(struct fixture *f)
{
	f->g = gen_load(unit_path(f->dir, "main.ini"), &f->d);
	if (f->g == NULL) {
		unit_print_diag(&f->d);
		fail_msg("gen_load failed");
	}
	return f->g;
}

/* The dump of f's generation, in f->text. */
static const char *
dump(struct fixture *f)
{
	size_t len;
	FILE *mem = open_memstream(&f->text, &len);

	assert_non_null(mem);
	assert_int_equal(dump_config(mem, f->g), 0);
	assert_int_equal(fclose(mem), 0);
	assert_int_equal(strlen(f->text), len);
	return f->text;
}

/* The text of section `name` ("[global]", "[host shop]"): from its header
 * to the next header, in a static buffer. */
static const char *
section(const char *text, const char *name)
{
	static char buf[16384];
	char head[128];
	const char *p, *end;

	snprintf(head, sizeof(head), "\n%s\n", name);
	if ((p = strstr(text, head)) == NULL)
		fail_msg("no section %s", name);
	p += strlen(head);
	end = strstr(p, "\n[");
	if (end == NULL)
		end = p + strlen(p);
	else
		end++;
	assert_true((size_t)(end - p) < sizeof(buf));
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	return buf;
}

/* Does text have this whole line? */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

#define assert_line(text, line) do { if (!has_line((text), (line))) \
	fail_msg("no line '%s' in:\n%s", (line), (text)); } while (0)

/* How many lines of sec set key k ("k = ..." or "# k (not set)")? */
static int
key_lines(const char *sec, const char *k)
{
	char set[64], unset[80];
	int n = 0;

	snprintf(set, sizeof(set), "%s = ", k);
	snprintf(unset, sizeof(unset), "# %s (not set)\n", k);
	for (const char *line = sec; *line != '\0'; ) {
		const char *nl = strchr(line, '\n');
		if (strncmp(line, set, strlen(set)) == 0 || strncmp(line, unset, strlen(unset)) == 0)
			n++;
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return n;
}

/* Is there a [global] key (global 1) or a host key (0) of this name?
 * (Some names are both: listen, max_connections.) [acme] keys are neither:
 * -T shows them in an [acme] section of their own. */
static int
scope_has(int global, const char *name)
{
	for (int k = 0; k < K_COUNT; k++)
		if (config_key_is_global((enum cfg_key)k) == global &&
		    !config_key_is_acme((enum cfg_key)k) &&
		    strcmp(config_key_name((enum cfg_key)k), name) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* dump_config                                                          */

/* The header, the files read, [global] and the hosts in the order read. */
static void
test_layout(void **state)
{
	struct fixture *f = *state;
	const char *t, *g, *s, *a;
	char line[512];

	load(f);
	t = dump(f);
	snprintf(line, sizeof(line), "# tlsfront %s -T: the effective configuration, defaults "
	    "filled in.\n", PACKAGE_VERSION);
	assert_true(strncmp(t, line, strlen(line)) == 0);
	snprintf(line, sizeof(line), "# file: %s", unit_path(f->dir, "main.ini"));
	assert_line(t, line);
	snprintf(line, sizeof(line), "# file: %s", unit_path(f->dir, "hosts.d/a.ini"));
	assert_line(t, line);
	g = strstr(t, "\n[global]\n");
	s = strstr(t, "\n[host shop]\n");
	a = strstr(t, "\n[host api]\n");
	assert_non_null(g);
	assert_non_null(s);
	assert_non_null(a);
	assert_true(g < s);
	assert_true(s < a);
	assert_true(a < strstr(t, "\n[host bad]\n"));
	/* every line is a setting, a comment, a header or blank */
	for (const char *p = t; *p != '\0'; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "\n");
		assert_true(p[n] == '\n');
		if (n == 0 || p[0] == '#' || p[0] == '[')
			continue;
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		if (strstr(line, " = ") == NULL)
			fail_msg("not a setting: '%s'", line);
	}
}

/* [global]: every global key once, with its effective value. */
static void
test_global(void **state)
{
	struct fixture *f = *state;
	const char *g;
	char line[300];

	load(f);
	g = section(dump(f), "[global]");
	for (int k = 0; k < K_COUNT; k++) {
		const char *name = config_key_name((enum cfg_key)k);
		int want = scope_has(1, name);
		if (key_lines(g, name) != want)
			fail_msg("[global]: %d lines for key %s", key_lines(g, name), name);
	}
	assert_line(g, "listen = 127.0.0.1:8443");
	assert_line(g, "workers = 2");
	assert_line(g, "host_errors = skip");
	snprintf(line, sizeof(line), "hosts = %s", unit_path(f->dir, "hosts.d/*.ini"));
	assert_line(g, line);
	assert_line(g, "# user (not set)");
}

/* A host: every host key once (names as the lines it is served under),
 * the values it ends up with ([defaults] and built-in defaults filled in),
 * backend.PROTO after backend, where it is defined, its certificate. */
static void
test_host(void **state)
{
	struct fixture *f = *state;
	const char *s, *a, *p;
	char line[512], date[64];
	struct tm tm;

	load(f);
	dump(f);
	s = section(f->text, "[host shop]");
	for (int k = 0; k < K_COUNT; k++) {
		const char *name = config_key_name((enum cfg_key)k);
		int want = scope_has(0, name);
		if (key_lines(s, name) != want)
			fail_msg("[host shop]: %d lines for key %s", key_lines(s, name), name);
	}
	snprintf(line, sizeof(line), "# defined at %s:1", unit_path(f->dir, "hosts.d/a.ini"));
	assert_line(s, line);
	assert_line(s, "# certificate subject: CN=shop.example");
	assert_line(s, "# certificate issuer: CN=shop.example");
	assert_non_null(gmtime_r(&f->g->hosts[0].not_after, &tm));
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, sizeof(line), "# certificate not_after: %s", date);
	assert_line(s, line);
	assert_non_null(p = strstr(s, "\nbackend = 127.0.0.1:8080\nbackend.h2 = 127.0.0.1:8081\n"));
	assert_line(s, "names = shop.example www.shop.example");
	assert_line(s, "alpn = h2 http/1.1");
	assert_line(s, "default = yes");
	assert_line(s, "handshake_timeout = 3s");
	snprintf(line, sizeof(line), "cert = %s", unit_path(f->dir, "hosts.d/../shop.pem"));
	assert_line(s, line);

	/* api: inherited and built-in values, the certificate's names */
	a = section(f->text, "[host api]");
	assert_line(a, "backend = unix:/run/api.sock");
	assert_null(strstr(a, "backend."));
	assert_line(a, "handshake_timeout = 10s");
	assert_line(a, "default = no");
	assert_line(a, "# alpn (not set)");
	assert_line(a, "# names: the certificate's");
	assert_line(a, "names = api.example *.api.example");
	assert_line(a, "# certificate subject: CN=api.example");
}

/* A host left out: its settings, said so, no certificate lines. */
static void
test_skipped_host(void **state)
{
	struct fixture *f = *state;
	const char *b;

	load(f);
	assert_int_equal(f->g->n_skipped, 1);
	b = section(dump(f), "[host bad]");
	assert_line(b, "# left out (host_errors = skip): its files did not load");
	assert_null(strstr(b, "# certificate"));
	assert_line(b, "backend = 127.0.0.1:9000");
	assert_int_equal(key_lines(b, "cert"), 1);
}

/* Many names: several names lines, none longer than the line limit, all
 * names there once, in order. */
static void
test_names_wrap(void **state)
{
	struct fixture *f = *state;
	char ini[8192], name[64];
	size_t off;
	const char *s;
	int lines = 0;

	off = (size_t)snprintf(ini, sizeof(ini), "%s\n[host many]\ncert = ../shop.pem\n"
	    "key = ../shop.key\nbackend = 127.0.0.1:7000\nlisten = 127.0.0.1:7443\n", hosts_ini);
	for (int i = 0; i < 60; i++) {
		if (i % 4 == 0)
			off += (size_t)snprintf(ini + off, sizeof(ini) - off, "\nnames =");
		off += (size_t)snprintf(ini + off, sizeof(ini) - off,
		    " n%02d.a-rather-long-name-for-it.example", i);
		assert_true(off < sizeof(ini));
	}
	snprintf(ini + off, sizeof(ini) - off, "\n");
	unit_put(f->dir, "hosts.d/a.ini", ini);
	load(f);
	s = section(dump(f), "[host many]");
	for (const char *p = s; *p != '\0'; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "\n");
		if (strncmp(p, "names = ", 8) == 0)
			lines++;
		if (n > CONFIG_MAX_LINE)
			fail_msg("line of %zu bytes: %.*s", n, (int)n, p);
	}
	assert_true(lines > 1);
	const char *prev = s;
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), " n%02d.a-rather-long-name-for-it.example", i);
		const char *at = strstr(s, name);
		assert_non_null(at);
		assert_true(at > prev);
		assert_null(strstr(at + 1, name));
		prev = at;
	}
}

/* Writing fails (a full device): -1. */
static void
test_write_error(void **state)
{
	struct fixture *f = *state;
	FILE *full = fopen("/dev/full", "w");

	if (full == NULL)
		skip();
	load(f);
	errno = 0;
	assert_int_equal(dump_config(full, f->g), -1);
	fclose(full);
}

/* ------------------------------------------------------------------ */
/* dump_host_summaries                                                  */

/* The summaries logged with log_info, one write each; what they are in
 * buf. */
static void
summaries(const struct generation *g, enum log_level level, char *buf, size_t size)
{
	unit_stderr_start();
	log_setup(LOG_DEST_STDERR, level);
	dump_host_summaries(g);
	log_setup(LOG_DEST_STDERR, LOG_LVL_INFO);
	unit_stderr_end(buf, size);
}

/* The message of the line that has `host LABEL:`, in a static buffer. */
static const char *
summary_of(const char *logged, const char *label)
{
	static char buf[4096];
	char head[64];
	const char *p;

	snprintf(head, sizeof(head), " info: host %s:", label);
	if ((p = strstr(logged, head)) == NULL)
		fail_msg("no summary for %s in:\n%s", label, logged);
	p += 7;
	snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(p, "\n"), p);
	return buf;
}

static void
test_summaries(void **state)
{
	struct fixture *f = *state;
	char logged[8192], want[1024], date[32];
	struct tm tm;

	load(f);
	summaries(f->g, LOG_LVL_INFO, logged, sizeof(logged));
	assert_non_null(gmtime_r(&f->g->hosts[0].not_after, &tm));
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	snprintf(want, sizeof(want), "host shop: names=shop.example,www.shop.example "
	    "listen=127.0.0.1:8443 backend=127.0.0.1:8080 backend.h2=127.0.0.1:8081 "
	    "alpn=h2,http/1.1 client_verify=none cert=\"CN=shop.example\" expires=%s", date);
	assert_string_equal(summary_of(logged, "shop"), want);
	assert_non_null(gmtime_r(&f->g->hosts[1].not_after, &tm));
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	snprintf(want, sizeof(want), "host api: names=api.example,*.api.example "
	    "listen=127.0.0.1:8443 backend=unix:/run/api.sock alpn=- client_verify=none "
	    "cert=\"CN=api.example\" expires=%s", date);
	assert_string_equal(summary_of(logged, "api"), want);
	assert_string_equal(summary_of(logged, "bad"), "host bad: left out (host_errors = skip)");
	/* one line each */
	int lines = 0;
	for (const char *p = logged; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 3);

	/* below info: nothing */
	summaries(f->g, LOG_LVL_WARN, logged, sizeof(logged));
	assert_string_equal(logged, "");
}

/* A long name list is cut, saying how many more there are. */
static void
test_summary_cut(void **state)
{
	struct fixture *f = *state;
	char ini[8192], logged[16384];
	size_t off;
	const char *s, *more;
	int shown = 0, rest = 0;

	off = (size_t)snprintf(ini, sizeof(ini), "[host many]\ncert = ../shop.pem\n"
	    "key = ../shop.key\nbackend = 127.0.0.1:7000\n");
	for (int i = 0; i < 100; i++) {
		if (i % 4 == 0)
			off += (size_t)snprintf(ini + off, sizeof(ini) - off, "\nnames =");
		off += (size_t)snprintf(ini + off, sizeof(ini) - off,
		    " n%02d.a-rather-long-name-for-it.example", i);
		assert_true(off < sizeof(ini));
	}
	snprintf(ini + off, sizeof(ini) - off, "\n");
	unit_put(f->dir, "hosts.d/a.ini", ini);
	load(f);
	summaries(f->g, LOG_LVL_INFO, logged, sizeof(logged));
	s = summary_of(logged, "many");
	assert_true(strlen(s) < 2000);
	assert_non_null(more = strstr(s, ",...("));
	assert_int_equal(sscanf(more, ",...(%d more)", &rest), 1);
	for (const char *p = s; (p = strstr(p, ".a-rather-long-name-for-it.example")) != NULL &&
	    p < more; p++)
		shown++;
	assert_true(shown > 0);
	assert_int_equal(shown + rest, 100);
	assert_non_null(strstr(more, " listen=127.0.0.1:8443 backend=127.0.0.1:7000"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_global, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skipped_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_cut, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
