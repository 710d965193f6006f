/*
 * test_config_read.c: the line reader in front of inih (config_read.c),
 * fed from memory with config_read_buf, and the key lookups it uses
 * (config_keys.c: config_key_find, config_key_unknown).
 *
 * Each case is a text, as the main file or a host file, and every message
 * it must give, whole and in order, as "FILE:LINE: message". The raw
 * sections are checked where a case is about what was kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "config_read.h"
#include "diag.h"

#define MAIN "/t/main.ini"
#define HOSTS "/t/hosts.d/a.ini"

struct rd {
	struct config *c;
	struct diag d;
	struct config_reader r;
};

static void
rd_open(struct rd *x)
{
	memset(x, 0, sizeof(*x));
	assert_non_null(x->c = calloc(1, sizeof(*x->c)));
	config_reader_init(&x->r, x->c, &x->d);
}

static void
rd_close(struct rd *x)
{
	config_reader_free(&x->r);
	config_free(x->c);
	diag_free(&x->d);
}

static void
rd_text(struct rd *x, const char *file, int is_main, const char *text, size_t len)
{
	config_read_buf(&x->r, file, is_main, text, len);
}

static void
dump(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_message("    diag: %s\n", d->msgs[i]);
}

/* Exactly these messages, in this order (NULL-terminated). */
static void
expect_msgs(const struct diag *d, const char *const *want, int line)
{
	size_t n = 0;

	while (want[n] != NULL)
		n++;
	for (size_t i = 0; i < n || i < d->n; i++)
		if (i >= n || i >= d->n || strcmp(d->msgs[i], want[i]) != 0) {
			dump(d);
			fail_msg("case at line %d: message %zu is '%s', expected '%s'", line, i,
			    i < d->n ? d->msgs[i] : "(none)", i < n ? want[i] : "(none)");
		}
	assert_int_equal(d->n_errors, n);
}

/* ------------------------------------------------------------------ */
/* the messages, case by case                                           */

struct rcase {
	int line;
	int is_main;
	const char *text;
	size_t len;		/* the text may hold NUL bytes */
	const char *msgs[6];
};

#define TXT(s) s, sizeof(s) - 1

#define L(n) MAIN ":" #n ": "
#define H(n) HOSTS ":" #n ": "

static const struct rcase cases[] = {
	{ __LINE__, 1, TXT("[global]\nworkers = 2\n; c\n# c\n\n[host a]\ncert = x ; c\n"),
	    { NULL } },
	{ __LINE__, 1, TXT("\xEF\xBB\xBF[global]\nworkers = 2\n"), { NULL } },
	{ __LINE__, 1, TXT("\xFF\xFE[\0g\0"), { L(1) "the file is UTF-16 (it starts with "
	    "a UTF-16 byte order mark); save it as UTF-8", NULL } },
	{ __LINE__, 1, TXT("[global]\r\nbogus = 1\r\n"), { L(2) "unknown key 'bogus'", NULL } },
	{ __LINE__, 1, TXT("[global]\nworkers 4\n= 4\n"), { L(2) "expected 'key = value'",
	    L(3) "expected 'key = value'", NULL } },
	{ __LINE__, 1, TXT("[global]\nworkers ; = 4\n"),
	    { L(2) "expected 'key = value'", NULL } },
	{ __LINE__, 1, TXT("workers = 2\n[global]\n"),
	    { L(1) "'workers' outside any section", NULL } },
	{ __LINE__, 1, TXT("[global]\nworkers =\nlog_level = ; none\n"),
	    { L(2) "'workers' has an empty value", L(3) "'log_level' has an empty value",
	    NULL } },
	{ __LINE__, 1, TXT("[globals]\nworkers = 2\n[host a]\n"),
	    { L(1) "unknown section [globals] (expected [global], [defaults], [acme] or "
	    "[host LABEL])", NULL } },
	{ __LINE__, 1, TXT("[host b\ncert = b\n[host c] junk\ncert = c\n"),
	    { L(1) "section header without ']'", L(3) "unexpected text after section header",
	    NULL } },
	{ __LINE__, 1, TXT("[host c] ; fine\n[host b/c]\n[host ]\n"),
	    { L(2) "bad host label 'b/c' (use letters, digits, '.', '_' and '-')",
	    L(3) "unknown section [host ] (expected [global], [defaults], [acme] or [host LABEL])",
	    NULL } },
	{ __LINE__, 1, TXT("[global]\n[defaults]\n[global]\n[defaults]\n[host a]\n[host a]\n"),
	    { L(3) "duplicate section [global] (first at line 1)",
	    L(4) "duplicate section [defaults] (first at line 2)",
	    L(6) "duplicate host label 'a' (first defined at " MAIN ":5)", NULL } },
	{ __LINE__, 0, TXT("[host a]\n[global]\nworkers = 2\n[defaults]\nbackend = x:1\n"),
	    { H(2) "[global] belongs in the main file; host files hold only [host LABEL] "
	    "sections", H(4) "[defaults] belongs in the main file; host files hold only "
	    "[host LABEL] sections", NULL } },
	{ __LINE__, 1, TXT("[global]\nworkers = 2\nworkers = 3\n[host a]\nnames = a\n"
	    "names = b\nalpn = h2\nalpn = h3\n"),
	    { L(3) "duplicate key 'workers' (first at line 2)",
	    L(8) "duplicate key 'alpn' (first at line 7)", NULL } },
	{ __LINE__, 1, TXT("[host a]\nbackend.h2 = 127.0.0.1:1\nbackend.h2 = 127.0.0.1:2\n"
	    "backend. = 127.0.0.1:1\n"),
	    { L(3) "duplicate key 'backend.h2' (first at line 2)",
	    L(4) "'backend.': expected backend.PROTOCOL", NULL } },
	{ __LINE__, 1, TXT("[global]\ncert = x\nbackend.h2 = x\n[defaults]\nnames = a\n"),
	    { L(2) "key 'cert' is not allowed in [global] (it belongs in [defaults] or a "
	    "[host] section)", L(3) "unknown key 'backend.h2' (backend.PROTO lines belong "
	    "in [defaults] or a [host] section)", L(5) "key 'names' is not allowed in "
	    "[defaults] (it belongs in a [host] section)", NULL } },
	/* a NUL byte: that line only, the count goes on */
	{ __LINE__, 1, TXT("[global]\nwork\0ers = 2\nbogus = 1\n"),
	    { L(2) "NUL byte in line", L(3) "unknown key 'bogus'", NULL } },
};

static void
test_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		struct rd x;

		rd_open(&x);
		rd_text(&x, c->is_main ? MAIN : HOSTS, c->is_main, c->text, c->len);
		expect_msgs(&x.d, c->msgs, c->line);
		rd_close(&x);
	}
}

/* ------------------------------------------------------------------ */
/* what is kept                                                         */

static void
test_sections_and_lines(void **state)
{
	static const char text[] =
	    "; head\n"				/* 1 */
	    "[global]\n"			/* 2 */
	    "  workers = 2\n"			/* 3: indented: a key, not a continuation */
	    "log_level: debug\n"		/* 4: inih's other separator */
	    "[defaults]\n"			/* 5 */
	    "alpn = h2 ; comment\n"		/* 6 */
	    "backend.h2 = 127.0.0.1:1\n"	/* 7 */
	    "[host a]\r\n"			/* 8 */
	    "names = a.test\n"			/* 9 */
	    "cert = a.pem\n"			/* 10 */
	    "names = b.test\n"			/* 11 */
	    "backend.h2 = 127.0.0.1:2\n"	/* 12 */
	    "[host e]\n";			/* 13: empty, still a host */
	struct rd x;
	const struct raw_section *a;

	(void)state;
	rd_open(&x);
	rd_text(&x, MAIN, 1, text, sizeof(text) - 1);
	expect_msgs(&x.d, (const char *const[]){ NULL }, __LINE__);
	assert_int_equal(x.r.global.kind, SEC_GLOBAL);
	assert_int_equal(x.r.global.at.line, 2);
	assert_string_equal(x.r.global.val[K_G_WORKERS], "2");
	assert_int_equal(x.r.global.loc[K_G_WORKERS].line, 3);
	assert_string_equal(x.r.global.loc[K_G_WORKERS].file, MAIN);
	assert_string_equal(x.r.global.val[K_G_LOG_LEVEL], "debug");
	assert_string_equal(x.r.defaults.val[K_ALPN], "h2");
	assert_int_equal(x.r.defaults.n_more, 1);
	assert_int_equal(x.r.defaults.more[0].key, K_BACKEND_PROTO);
	assert_string_equal(x.r.defaults.more[0].sub, "h2");
	assert_int_equal(x.r.defaults.more[0].at.line, 7);

	assert_int_equal(x.r.n_hosts, 2);
	a = &x.r.hosts[0];
	assert_string_equal(a->label, "a");
	assert_int_equal(a->at.line, 8);
	assert_string_equal(a->val[K_NAMES], "a.test");
	assert_int_equal(a->loc[K_NAMES].line, 9);
	assert_string_equal(a->val[K_CERT], "a.pem");
	/* the second names line and the map line, in order */
	assert_int_equal(a->n_more, 2);
	assert_int_equal(a->more[0].key, K_NAMES);
	assert_null(a->more[0].sub);
	assert_string_equal(a->more[0].val, "b.test");
	assert_int_equal(a->more[0].at.line, 11);
	assert_int_equal(a->more[1].key, K_BACKEND_PROTO);
	assert_string_equal(a->more[1].val, "127.0.0.1:2");
	assert_false(a->bad);
	assert_string_equal(x.r.hosts[1].label, "e");
	assert_int_equal(x.r.hosts[1].at.line, 13);
	rd_close(&x);
}

/* Lines up to CONFIG_MAX_LINE bytes (without CR LF) are taken; longer ones
 * are refused, not split; under a refused header, keys go nowhere. */
static void
test_line_limits(void **state)
{
	char text[1024], msg[256], label[256];
	struct rd x;
	int n;

	(void)state;
	rd_open(&x);
	n = snprintf(text, sizeof(text), "[global]\nlog_level = debug ;%*s\r\n",
	    CONFIG_MAX_LINE - 19, "x");
	rd_text(&x, MAIN, 1, text, (size_t)n);
	expect_msgs(&x.d, (const char *const[]){ NULL }, __LINE__);
	assert_string_equal(x.r.global.val[K_G_LOG_LEVEL], "debug");
	rd_close(&x);

	rd_open(&x);
	n = snprintf(text, sizeof(text), "[global]\nlog_level = debug ;%*s\nbogus = 1\n",
	    CONFIG_MAX_LINE - 18, "x");
	rd_text(&x, MAIN, 1, text, (size_t)n);
	snprintf(msg, sizeof(msg), L(2) "line is %d bytes long; the limit is %d (libinih "
	    "would split it)", CONFIG_MAX_LINE + 1, CONFIG_MAX_LINE);
	expect_msgs(&x.d, (const char *const[]){ msg, L(3) "unknown key 'bogus'", NULL },
	    __LINE__);
	assert_null(x.r.global.val[K_G_LOG_LEVEL]);
	assert_true(x.r.global.bad);
	rd_close(&x);

	/* a header over the line limit: its keys are not the previous section's */
	memset(label, 'l', 200);
	label[200] = '\0';
	rd_open(&x);
	n = snprintf(text, sizeof(text), "[host a]\n[host %s]\ncert = b.pem\n", label);
	rd_text(&x, MAIN, 1, text, (size_t)n);
	snprintf(msg, sizeof(msg), L(2) "line is 207 bytes long; the limit is %d (libinih "
	    "would split it)", CONFIG_MAX_LINE);
	expect_msgs(&x.d, (const char *const[]){ msg, NULL }, __LINE__);
	assert_null(x.r.hosts[0].val[K_CERT]);
	rd_close(&x);

	/* section names: CONFIG_MAX_SECTION bytes, not one more */
	memset(label, 'l', CONFIG_MAX_SECTION - 5);
	label[CONFIG_MAX_SECTION - 5] = '\0';
	rd_open(&x);
	n = snprintf(text, sizeof(text), "[host %s]\n[host %sm]\ncert = c\n", label, label);
	rd_text(&x, MAIN, 1, text, (size_t)n);
	snprintf(msg, sizeof(msg), L(2) "section name is %d bytes long; the limit is %d "
	    "(libinih would cut it)", CONFIG_MAX_SECTION + 1, CONFIG_MAX_SECTION);
	expect_msgs(&x.d, (const char *const[]){ msg, NULL }, __LINE__);
	assert_int_equal(x.r.n_hosts, 1);
	assert_string_equal(x.r.hosts[0].label, label);
	assert_null(x.r.hosts[0].val[K_CERT]);
	rd_close(&x);
}

/* Files: each starts outside any section; labels are unique across them. */
static void
test_several_files(void **state)
{
	static const char m[] = "[global]\n[host a]\n";
	static const char h[] = "cert = x\n[host b]\n[host a]\n";
	struct rd x;

	(void)state;
	rd_open(&x);
	rd_text(&x, MAIN, 1, m, sizeof(m) - 1);
	rd_text(&x, HOSTS, 0, h, sizeof(h) - 1);
	expect_msgs(&x.d, (const char *const[]){ H(1) "'cert' outside any section",
	    H(3) "duplicate host label 'a' (first defined at " MAIN ":2)", NULL }, __LINE__);
	assert_int_equal(x.r.n_hosts, 2);
	assert_null(x.r.hosts[0].val[K_CERT]);
	assert_string_equal(x.r.hosts[1].at.file, HOSTS);
	/* one interned copy per file name */
	assert_int_equal(x.c->n_files, 2);
	assert_ptr_equal(config_intern_file(x.c, MAIN), x.r.hosts[0].at.file);
	rd_close(&x);
}

/* ------------------------------------------------------------------ */
/* the key lookups                                                      */

static void
test_key_find(void **state)
{
	static const struct { const char *name; int scope, k; } f[] = {
		{ "backend", S_HOST, K_BACKEND },
		{ "backend.h2", S_HOST, K_BACKEND_PROTO },
		{ "backend.h2", S_DEFAULTS, K_BACKEND_PROTO },
		{ "backend.", S_HOST, K_BACKEND_PROTO },	/* the reader refuses it */
		{ "backend.h2", S_GLOBAL, -1 },
		{ "Backend.h2", S_HOST, -1 },
		{ "backendh2", S_HOST, -1 },
		{ "listen", S_GLOBAL, K_G_LISTEN },
		{ "listen", S_HOST, K_LISTEN },
		{ "names", S_DEFAULTS, -1 },
		{ "workers", S_HOST, -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (config_key_find(f[i].name, f[i].scope) != f[i].k)
			fail_msg("'%s' in scope %d: %d, expected %d", f[i].name, f[i].scope,
			    config_key_find(f[i].name, f[i].scope), f[i].k);
	assert_string_equal(config_key_name(K_NAMES), "names");
	assert_string_equal(config_key_name(K_COUNT), "?");
	assert_true(config_key_is_global(K_G_WORKERS));
	assert_false(config_key_is_global(K_LISTEN));
}

static void
test_key_unknown(void **state)
{
	static const struct { const char *name; int scope; const char *msg; } u[] = {
		{ "worker", S_GLOBAL, "unknown key 'worker' (did you mean 'workers'?)" },
		{ "idle_timout", S_DEFAULTS,
		    "unknown key 'idle_timout' (did you mean 'idle_timeout'?)" },
		{ "nmaes", S_HOST, "unknown key 'nmaes' (did you mean 'names'?)" },
		{ "Alpn", S_HOST, "unknown key 'Alpn' (did you mean 'alpn'?)" },
		{ "kye", S_HOST, "unknown key 'kye' (did you mean 'key'?)" },
		{ "bakend.h2", S_HOST, "unknown key 'bakend.h2' (did you mean 'backend.h2'?)" },
		{ "Backend.h2", S_HOST, "unknown key 'Backend.h2' (did you mean 'backend.h2'?)" },
		{ "backend.h2", S_GLOBAL, "unknown key 'backend.h2' (backend.PROTO lines belong "
		    "in [defaults] or a [host] section)" },
		{ "bakend", S_GLOBAL, "unknown key 'bakend' (did you mean 'backend'? it belongs "
		    "in [defaults] or a [host] section)" },
		{ "log_levle", S_HOST, "unknown key 'log_levle' (did you mean 'log_level'? it "
		    "belongs in [global])" },
		{ "cert", S_GLOBAL, "key 'cert' is not allowed in [global] (it belongs in "
		    "[defaults] or a [host] section)" },
		{ "ocsp_file", S_DEFAULTS, "key 'ocsp_file' is not allowed in [defaults] (it "
		    "belongs in a [host] section)" },
		/* nothing near: the name alone */
		{ "cert_file", S_HOST, "unknown key 'cert_file'" },
		{ "ca", S_HOST, "unknown key 'ca'" },
		{ "x.y", S_HOST, "unknown key 'x.y'" },
		{ "", S_HOST, "unknown key ''" },
	};
	char msg[600];

	(void)state;
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		config_key_unknown(u[i].name, u[i].scope, msg, sizeof(msg));
		assert_string_equal(msg, u[i].msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_sections_and_lines),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_several_files),
		cmocka_unit_test(test_key_find),
		cmocka_unit_test(test_key_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
