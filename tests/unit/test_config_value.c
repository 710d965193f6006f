/*
 * test_config_value.c: one configuration value at a time (config_value.c:
 * value_parse, value_copy, value_free, the backend.PROTO map,
 * config_parse_duration, value_workers_auto; config_keys.c: value_text),
 * with the types and bounds of the real key table. Pure functions: no
 * files, no diag.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>	/* only to compare the protocol numbers */

#include "clientauth.h"
#include "config_keys.h"
#include "config_value.h"

/* Where relative paths resolve. */
#define FILE_AT "/etc/tlsfront/main.ini"

/*
 * One value of key k: parsed, it spells `out` (NULL: no text, an empty
 * list); refused, the error is `out` (a prefix when it ends with "...":
 * the text of another module, addr.c or clientauth.c).
 */
struct vcase {
	int k;
	const char *in;
	int ok;
	const char *out;
};

static const struct vcase cases[] = {
	/* T_ADDRS: listeners */
	{ K_G_LISTEN, "127.0.0.1:1 [::1]:2,127.0.0.2:4 ,\t127.0.0.1:0003", 1,
	    "127.0.0.1:1 [::1]:2 127.0.0.2:4 127.0.0.1:3" },
	{ K_LISTEN, "127.0.0.1:1 unix:/run/x.sock", 0,
	    "unix:/run/x.sock: tlsfront listens on TCP addresses only" },
	{ K_LISTEN, "127.0.0.1:1, 127.0.0.1:01", 0, "'127.0.0.1:01' is listed twice" },
	{ K_LISTEN, ", ,", 0, "no address given" },
	{ K_LISTEN, "127.0.0.1:0", 0, "bad port in '127.0.0.1:0'..." },
	/* T_PATH, T_GLOB: against the file's directory */
	{ K_CERT, "a.pem", 1, "/etc/tlsfront/a.pem" },
	{ K_CERT, "certs/../a.pem", 1, "/etc/tlsfront/certs/../a.pem" },
	{ K_KEY, "/etc/ssl/a.key", 1, "/etc/ssl/a.key" },
	{ K_G_HOSTS, "hosts.d/*.ini", 1, "/etc/tlsfront/hosts.d/*.ini" },
	/* T_ADDR */
	{ K_BACKEND, "unix:/run/app.sock", 1, "unix:/run/app.sock" },
	{ K_BACKEND, "[::1]:9000", 1, "[::1]:9000" },
	{ K_BACKEND, "127.0.0.1", 0, "bad address '127.0.0.1'..." },
	{ K_BACKEND, "unix:relative.sock", 0, "unix socket path must be absolute..." },
	{ K_G_STATS_LISTEN, "9199", 0, "bad address '9199'..." },
	/* T_NAMES: normalised, none twice */
	{ K_NAMES, "WWW.Example.com, *.Example.ORG. api.example.com", 1,
	    "www.example.com *.example.org api.example.com" },
	{ K_NAMES, ",", 1, NULL },
	{ K_NAMES, "ok.example.com a..b", 0,
	    "'a..b' is not a valid host name or *.wildcard" },
	{ K_NAMES, "a.*.example.com", 0,
	    "'a.*.example.com' is not a valid host name or *.wildcard" },
	{ K_NAMES, "a.example.com A.Example.Com.", 0, "'A.Example.Com.' is listed twice" },
	/* T_ALPN */
	{ K_ALPN, "h2, http/1.1", 1, "h2 http/1.1" },
	{ K_ALPN, "h2 h2", 0, "'h2' is listed twice" },
	{ K_ALPN, "h\x01" "2", 0, "bad character in ALPN protocol 'h\x01" "2'" },
	{ K_ALPN, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxx", 0, "ALPN protocol names are at most 255 bytes" },
	/* T_BOOL */
	{ K_DEFAULT, "YES", 1, "yes" },
	{ K_DEFAULT, "true", 1, "yes" },
	{ K_DEFAULT, "on", 1, "yes" },
	{ K_DEFAULT, "1", 1, "yes" },
	{ K_DEFAULT, "False", 1, "no" },
	{ K_SESSION_TICKETS, "off", 1, "no" },
	{ K_SESSION_TICKETS, "0", 1, "no" },
	{ K_DEFAULT, "maybe", 0, "expected yes or no, not 'maybe'" },
	/* T_PROTOCOLS: the range from the lowest to the highest */
	{ K_PROTOCOLS, "TLSv1.3 TLSv1.1", 1, "TLSv1.1 TLSv1.2 TLSv1.3" },
	{ K_PROTOCOLS, "tlsv1.2", 1, "TLSv1.2" },
	{ K_PROTOCOLS, "TLSv1.0", 1, "TLSv1" },
	{ K_PROTOCOLS, "TLSv1.2 SSLv3", 0, "unknown protocol 'SSLv3' (expected TLSv1.2, "
	    "TLSv1.3, or the obsolete TLSv1 and TLSv1.1)" },
	{ K_PROTOCOLS, ",", 0, "no protocol given" },
	/* T_STRING: OpenSSL lists */
	{ K_CIPHERS, "A, B C", 1, "A:B:C" },
	{ K_GROUPS, ":,X25519::prime256v1,:", 1, "X25519:prime256v1" },
	{ K_G_USER, "www-data", 1, "www-data" },
	/* T_DURATION: bounds of the key */
	{ K_HANDSHAKE_TIMEOUT, "250ms", 1, "250ms" },
	{ K_CONNECT_TIMEOUT, "120", 1, "2m" },
	{ K_IDLE_TIMEOUT, "1500ms", 1, "1500ms" },
	{ K_IDLE_TIMEOUT, "168h", 1, "168h" },
	{ K_G_SHUTDOWN_TIMEOUT, "90000ms", 1, "90s" },
	{ K_G_SHUTDOWN_TIMEOUT, "0", 1, "0s" },
	{ K_CONNECT_TIMEOUT, "99ms", 0, "bad duration '99ms' (expected e.g. 250ms, 10s, 5m, "
	    "1h; between 100ms and 3600s)" },
	{ K_IDLE_TIMEOUT, "169h", 0, "bad duration '169h' (expected e.g. 250ms, 10s, 5m, "
	    "1h; between 1000ms and 604800s)" },
	{ K_G_SHUTDOWN_TIMEOUT, "2d", 0, "bad duration '2d'..." },
	/* T_WORKERS */
	{ K_G_WORKERS, "auto", 1, "auto" },
	{ K_G_WORKERS, "256", 1, "256" },
	{ K_G_WORKERS, "1", 1, "1" },
	{ K_G_WORKERS, "0", 0, "expected auto or a number of workers 1..256, not '0'" },
	{ K_G_WORKERS, "257", 0, "expected auto or a number of workers 1..256, not '257'" },
	{ K_G_WORKERS, "-1", 0, "expected auto or a number of workers 1..256, not '-1'" },
	{ K_G_WORKERS, "four", 0, "expected auto or a number of workers 1..256, not 'four'" },
	{ K_G_WORKERS, "4x", 0, "expected auto or a number of workers 1..256, not '4x'" },
	{ K_G_WORKERS, "0x4", 0, "expected auto or a number of workers 1..256, not '0x4'" },
	{ K_G_WORKERS, "Auto", 0, "expected auto or a number of workers 1..256, not 'Auto'" },
	/* T_ENUM */
	{ K_G_LOG, "syslog", 1, "syslog" },
	{ K_G_LOG, "file", 0, "expected stderr or syslog, not 'file'" },
	{ K_G_LOG_LEVEL, "DEBUG", 0, "expected error, warn, info or debug, not 'DEBUG'" },
	{ K_PROXY_PROTOCOL, "v2", 1, "v2" },
	{ K_CLIENT_VERIFY, "required", 1, "required" },
	/* T_INT, in hex where the default is */
	{ K_PROXY_CLIENT_CERT_TLV, "0xEA", 1, "0xEA" },
	{ K_PROXY_CLIENT_CERT_TLV, "224", 1, "0xE0" },
	{ K_PROXY_CLIENT_CERT_TLV, "0xF0", 0, "expected a number 224..239, not '0xF0'" },
	{ K_MAX_CONNECTIONS, "0x10", 1, "16" },
	{ K_MAX_CONNECTIONS, "-1", 0, "expected a number 0..10000000, not '-1'" },
	{ K_CLIENT_VERIFY_DEPTH, "3x", 0, "expected a number 1..16, not '3x'" },
	/* T_ALLOW: kept as written */
	{ K_CLIENT_ALLOW, "CN:alice, dns:svc.internal URI:spiffe://corp/p", 1,
	    "CN:alice dns:svc.internal URI:spiffe://corp/p" },
	{ K_CLIENT_ALLOW, "CN:alice XX:y", 0, "'XX:y'..." },
	/* T_CIDRS */
	{ K_G_ACCEPT_PROXY, "10.0.0.0/8, ::1", 1, "10.0.0.0/8 ::1/128" },
	{ K_G_ACCEPT_PROXY, "10.0.0.1/8", 0, "'10.0.0.1/8' has host bits set below /8" },
};

static void
expect_error(const struct vcase *c, const char *err)
{
	size_t n = strlen(c->out);

	if (n > 3 && strcmp(c->out + n - 3, "...") == 0 ? strncmp(err, c->out, n - 3) == 0 :
	    strcmp(err, c->out) == 0)
		return;
	fail_msg("%s = '%s': error '%s', expected '%s'", config_keys[c->k].name, c->in, err,
	    c->out);
}

/* value_text into a fresh string; NULL for no text */
static char *
text_of(int k, const void *field)
{
	char small[8], *buf;
	int n = value_text(&config_keys[k].v, field, small, sizeof(small));

	if (n < 0)
		return NULL;
	assert_non_null(buf = malloc((size_t)n + 1));
	assert_int_equal(value_text(&config_keys[k].v, field, buf, (size_t)n + 1), n);
	/* the short buffer got a cut, terminated prefix */
	assert_int_equal(strncmp(small, buf, sizeof(small) - 1), 0);
	return buf;
}

static void
test_values_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vcase *c = &cases[i];
		const struct keydef *kd = &config_keys[c->k];
		union value_any f, copy;
		char err[512], *text, *text2;
		int rc;

		memset(&f, 0, sizeof(f));
		memset(&copy, 0, sizeof(copy));
		rc = value_parse(&kd->v, c->in, FILE_AT, &f, err, sizeof(err));
		if (!c->ok) {
			if (rc == 0)
				fail_msg("%s = '%s' was accepted", kd->name, c->in);
			expect_error(c, err);
			value_free(kd->v.type, &f);
			continue;
		}
		if (rc != 0)
			fail_msg("%s = '%s': %s", kd->name, c->in, err);
		text = text_of(c->k, &f);
		if (c->out == NULL ? text != NULL : text == NULL || strcmp(text, c->out) != 0)
			fail_msg("%s = '%s' spelt '%s', expected '%s'", kd->name, c->in,
			    text ? text : "(none)", c->out ? c->out : "(none)");
		/* a copy owns its own memory and spells the same */
		assert_int_equal(value_copy(kd->v.type, &copy, &f), 0);
		value_free(kd->v.type, &f);
		text2 = text_of(c->k, &copy);
		assert_true(text == NULL ? text2 == NULL : strcmp(text, text2) == 0);
		value_free(kd->v.type, &copy);
		free(text);
		free(text2);
	}
}

/* client_allow is parsed once: the list tls.c checks, beside the text. */
static void
test_allow_parsed(void **state)
{
	const struct vspec *s = &config_keys[K_CLIENT_ALLOW].v;
	struct allow_value av = { { NULL, 0 }, NULL }, copy = { { NULL, 0 }, NULL };
	char err[256];

	(void)state;
	assert_int_equal(value_parse(s, "CN:alice, dns:svc.internal", FILE_AT, &av, err,
	    sizeof(err)), 0);
	assert_non_null(av.list);
	assert_int_equal(av.list->n_entries, 2);
	assert_int_equal(av.list->entries[0].kind, CLIENTAUTH_CN);
	assert_string_equal(av.list->entries[0].value, "alice");
	assert_int_equal(av.list->entries[1].kind, CLIENTAUTH_DNS);
	assert_string_equal(av.list->entries[1].value, "svc.internal");
	assert_int_equal(av.text.n, 2);
	assert_string_equal(av.text.v[1], "dns:svc.internal");
	assert_int_equal(value_copy(T_ALLOW, &copy, &av), 0);
	value_free(T_ALLOW, &av);
	assert_null(av.list);
	assert_int_equal(av.text.n, 0);
	assert_int_equal(copy.list->n_entries, 2);
	assert_string_equal(copy.list->entries[1].value, "svc.internal");
	value_free(T_ALLOW, &copy);

	/* no entries, no list: anyone verified */
	assert_int_equal(value_parse(s, ",", FILE_AT, &av, err, sizeof(err)), 0);
	assert_null(av.list);
	value_free(T_ALLOW, &av);
}

static void
test_map(void **state)
{
	struct alpn_map m = { NULL, 0 }, copy = { NULL, 0 };
	struct loc at = { FILE_AT, 7 };
	const struct alpn_backend *e;
	char err[256], buf[128];

	(void)state;
	assert_int_equal(value_map_parse(&m, "h2", "127.0.0.1:9001", at, err, sizeof(err)), 0);
	at.line = 8;
	assert_int_equal(value_map_parse(&m, "http/1.1", "unix:/run/h1.sock", at, err,
	    sizeof(err)), 0);
	assert_int_equal(value_map_parse(&m, "h3", "127.0.0.1:0", at, err, sizeof(err)), -1);
	assert_true(strncmp(err, "bad port in '127.0.0.1:0'", 25) == 0);
	assert_int_equal(m.n, 2);
	assert_non_null(e = value_map_get(&m, "http/1.1"));
	assert_string_equal(e->pool.v[0].text, "unix:/run/h1.sock");
	assert_int_equal(e->at.line, 8);
	assert_null(value_map_get(&m, "h3"));
	assert_int_equal(value_text(&config_keys[K_BACKEND_PROTO].v, &m, buf, sizeof(buf)),
	    (int)strlen("h2=127.0.0.1:9001 http/1.1=unix:/run/h1.sock"));
	assert_string_equal(buf, "h2=127.0.0.1:9001 http/1.1=unix:/run/h1.sock");
	assert_int_equal(value_copy(T_ALPN_MAP, &copy, &m), 0);
	value_free(T_ALPN_MAP, &m);
	assert_int_equal(m.n, 0);
	assert_string_equal(value_map_get(&copy, "h2")->pool.v[0].text, "127.0.0.1:9001");
	assert_int_equal(value_map_get(&copy, "h2")->at.line, 7);
	value_free(T_ALPN_MAP, &copy);
	/* a pool per protocol: several members, none twice */
	assert_int_equal(value_map_parse(&m, "h2", "127.0.0.1:1 127.0.0.1:2", at, err,
	    sizeof(err)), 0);
	assert_int_equal(m.v[0].pool.n, 2);
	assert_int_equal(value_text(&config_keys[K_BACKEND_PROTO].v, &m, buf, sizeof(buf)),
	    (int)strlen("h2=127.0.0.1:1,127.0.0.1:2"));
	assert_int_equal(value_map_parse(&m, "h3", "127.0.0.1:1 127.0.0.1:1", at, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "duplicate member"));
	value_free(T_ALPN_MAP, &m);
	/* a map is parsed a line at a time, never as one value */
	assert_int_equal(value_parse(&config_keys[K_BACKEND_PROTO].v, "127.0.0.1:1", FILE_AT,
	    &m, err, sizeof(err)), -1);
}

/* backend: a pool of members, each once, a host name one per address. */
static void
test_pool(void **state)
{
	const struct vspec *v = &config_keys[K_BACKEND].v;
	struct addr_list al = { NULL, 0 };
	char err[256], buf[256];

	(void)state;
	assert_int_equal(value_parse(v, "10.0.0.1:80 [::1]:81, unix:/run/a.sock", FILE_AT, &al,
	    err, sizeof(err)), 0);
	assert_int_equal(al.n, 3);
	assert_string_equal(al.v[1].text, "[::1]:81");
	assert_int_equal(value_text(v, &al, buf, sizeof(buf)), (int)strlen(
	    "10.0.0.1:80 [::1]:81 unix:/run/a.sock"));
	value_free(T_POOL, &al);
	/* one member: as a single backend always was */
	assert_int_equal(value_parse(v, "127.0.0.1:9", FILE_AT, &al, err, sizeof(err)), 0);
	assert_int_equal(al.n, 1);
	value_free(T_POOL, &al);
	assert_int_equal(value_parse(v, "10.0.0.1:80 10.0.0.2:80 10.0.0.1:80", FILE_AT, &al,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "duplicate member '10.0.0.1:80' (10.0.0.1:80)");
	value_free(T_POOL, &al);
	assert_int_equal(value_parse(v, " , ", FILE_AT, &al, err, sizeof(err)), -1);
	assert_string_equal(err, "empty pool: no member given");
	value_free(T_POOL, &al);
	assert_int_equal(value_parse(v, "10.0.0.1:80 nope", FILE_AT, &al, err, sizeof(err)), -1);
	value_free(T_POOL, &al);
	/* balance and the health keys: their bounds */
	int i;
	assert_int_equal(value_parse(&config_keys[K_BALANCE].v, "leastconn", FILE_AT, &i, err,
	    sizeof(err)), 0);
	assert_int_equal(i, BALANCE_LEASTCONN);
	assert_int_equal(value_parse(&config_keys[K_BALANCE].v, "random", FILE_AT, &i, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "expected roundrobin, leastconn or first, not 'random'");
	assert_int_equal(value_parse(&config_keys[K_BACKEND_FAIL_THRESHOLD].v, "101", FILE_AT,
	    &i, err, sizeof(err)), -1);
	unsigned ms;
	assert_int_equal(value_parse(&config_keys[K_HEALTH_INTERVAL].v, "500ms", FILE_AT, &ms,
	    err, sizeof(err)), -1);
	assert_int_equal(value_parse(&config_keys[K_HEALTH_INTERVAL].v, "2s", FILE_AT, &ms,
	    err, sizeof(err)), 0);
	assert_int_equal(ms, 2000);
}

/* A field that owns nothing keeps what parsing stored when it fails (a host
 * with errors shows it in tlsfront -T); a list is emptied. */
static void
test_failed_fields(void **state)
{
	struct proto_range r = { 0, 0 };
	struct str_list sl = { NULL, 0 };
	unsigned ms = 0;
	char err[256];

	(void)state;
	assert_int_equal(value_parse(&config_keys[K_PROTOCOLS].v, "TLSv1.2 SSLv3", FILE_AT, &r,
	    err, sizeof(err)), -1);
	value_free(T_PROTOCOLS, &r);
	assert_int_equal(r.min, CONFIG_TLS1_2_VERSION);
	assert_int_equal(value_parse(&config_keys[K_CONNECT_TIMEOUT].v, "99ms", FILE_AT, &ms,
	    err, sizeof(err)), -1);
	assert_int_equal(ms, 99);
	assert_int_equal(value_parse(&config_keys[K_NAMES].v, "a.test b..test", FILE_AT, &sl,
	    err, sizeof(err)), -1);
	assert_int_equal(sl.n, 0);
	assert_null(sl.v);
}

static void
test_workers_auto_formula(void **state)
{
	static const struct { long cpus; int workers; } w[] = {
		{ -1, 1 },	/* sysconf failed */
		{ 0, 1 }, { 1, 1 }, { 3, 3 }, { 64, 64 }, { 256, 256 }, { 257, 256 },
		{ 4096, 256 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		assert_int_equal(value_workers_auto(w[i].cpus), w[i].workers);
}

/* config.h's own protocol numbers are OpenSSL's, which tls.c passes them to */
static void
test_protocol_numbers(void **state)
{
	(void)state;
	assert_int_equal(CONFIG_TLS1_VERSION, TLS1_VERSION);
	assert_int_equal(CONFIG_TLS1_1_VERSION, TLS1_1_VERSION);
	assert_int_equal(CONFIG_TLS1_2_VERSION, TLS1_2_VERSION);
	assert_int_equal(CONFIG_TLS1_3_VERSION, TLS1_3_VERSION);
}

/* ------------------------------------------------------------------ */
/* config_parse_duration                                                */

static void
test_durations(void **state)
{
	static const struct { const char *s; unsigned long long max; int ok; unsigned ms; } d[] = {
		{ "250ms", ULLONG_MAX, 1, 250 },
		{ "10s", ULLONG_MAX, 1, 10000 },
		{ "5m", ULLONG_MAX, 1, 300000 },
		{ "1h", ULLONG_MAX, 1, 3600000 },
		{ "7", ULLONG_MAX, 1, 7000 },
		{ "0", ULLONG_MAX, 1, 0 },
		{ "0ms", ULLONG_MAX, 1, 0 },
		{ "007s", ULLONG_MAX, 1, 7000 },
		/* the bound */
		{ "10s", 10000, 1, 10000 },
		{ "10000ms", 10000, 1, 10000 },
		{ "10", 10000, 1, 10000 },
		{ "0s", 0, 1, 0 },
		{ "10001ms", 10000, 0, 0 },
		{ "11", 10000, 0, 0 },
		{ "1m", 59999, 0, 0 },
		{ "1h", 3599999, 0, 0 },
		{ "1ms", 0, 0, 0 },
		/* above UINT_MAX ms; digit strings must not wrap around */
		{ "1193h", ULLONG_MAX, 1, 1193U * 3600000U },
		{ "4294967s", ULLONG_MAX, 1, 4294967000U },
		{ "4294968s", ULLONG_MAX, 0, 0 },
		{ "1194h", ULLONG_MAX, 0, 0 },
		{ "1000000001", ULLONG_MAX, 0, 0 },
		{ "18446744073709551617ms", ULLONG_MAX, 0, 0 },
		{ "99999999999999999999999999999999h", ULLONG_MAX, 0, 0 },
		{ "18446744073709552ms", ULLONG_MAX, 0, 0 },
		/* malformed */
		{ "", ULLONG_MAX, 0, 0 }, { "s", ULLONG_MAX, 0, 0 }, { "ms", ULLONG_MAX, 0, 0 },
		{ "10x", ULLONG_MAX, 0, 0 }, { "10S", ULLONG_MAX, 0, 0 },
		{ "10MS", ULLONG_MAX, 0, 0 }, { "10 s", ULLONG_MAX, 0, 0 },
		{ "10sec", ULLONG_MAX, 0, 0 }, { "10ms ", ULLONG_MAX, 0, 0 },
		{ " 10", ULLONG_MAX, 0, 0 }, { "1.5s", ULLONG_MAX, 0, 0 },
		{ "-1", ULLONG_MAX, 0, 0 }, { "+1", ULLONG_MAX, 0, 0 },
		{ "10d", ULLONG_MAX, 0, 0 }, { "10mss", ULLONG_MAX, 0, 0 },
		{ "1h30m", ULLONG_MAX, 0, 0 }, { "0x10", ULLONG_MAX, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		unsigned ms = 12345;
		int rc = config_parse_duration(d[i].s, d[i].max, &ms);

		if (d[i].ok && (rc != 0 || ms != d[i].ms))
			fail_msg("'%s' (max %llu): rc %d, %u ms; expected %u", d[i].s, d[i].max,
			    rc, ms, d[i].ms);
		if (!d[i].ok && (rc == 0 || ms != 12345))
			fail_msg("'%s' (max %llu) gave %u (rc %d)", d[i].s, d[i].max, ms, rc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_table),
		cmocka_unit_test(test_allow_parsed),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_failed_fields),
		cmocka_unit_test(test_workers_auto_formula),
		cmocka_unit_test(test_protocol_numbers),
		cmocka_unit_test(test_durations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
