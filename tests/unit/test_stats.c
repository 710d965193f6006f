/*
 * test_stats.c: the metrics: label escaping, summing worker blocks (and
 * folding dead workers' blocks into the retired totals, across
 * generations), the text format, the HTTP answers.
 *
 * Workers are simulated in this one process: stats_worker_init() points the
 * data-path counters at a block, as a forked worker would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

/* A generation of n hosts with these labels (only what stats.c reads). */
struct fake_gen {
	struct host_config hc[8];
	struct host h[8];
	struct generation g;
};

static void
fake_gen(struct fake_gen *f, const char *const *labels, size_t n)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f->hc[i].label = (char *)labels[i];
		f->h[i].cfg = &f->hc[i];
		f->h[i].not_after = 1700000000 + (time_t)i;
	}
	f->g.hosts = f->h;
	f->g.n_hosts = n;
}

/* A worker of the generation in use, with a made-up pid: its block is
 * where stats_add() and stats_host_add() count from now on. */
static int
worker(struct stats *st, pid_t pid)
{
	int b = stats_block_take(st);

	assert_true(b >= 0);
	stats_block_bind(st, b, pid);
	stats_worker_init(st, b);
	return b;
}

static char *
render(struct stats *st)
{
	size_t len = 0;
	char *s = stats_render(st, &len);

	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	return s;
}

/* The value of the sample `series` (name and labels exactly as printed),
 * or -1 if there is no such line. */
static double
value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static char *
escape(const char *s)
{
	char *e = stats_label_escape(s);

	assert_non_null(e);
	return e;
}

/* ------------------------------------------------------------------ */
/* label escaping                                                       */

static void
test_escape(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain.example", "plain.example" },
		{ "", "" },
		{ "a\"b", "a\\\"b" },
		{ "back\\slash", "back\\\\slash" },
		{ "new\nline", "new\\nline" },
		{ "\\\"\n", "\\\\\\\"\\n" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92",
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92" },
		{ "bad\xff", "bad?" },
		{ "\xc0\xaf", "??" },		/* overlong '/' */
		{ "\xed\xa0\x80", "???" },	/* a UTF-16 surrogate */
		{ "\xe2\x82", "??" },		/* truncated */
		{ "\xf4\x90\x80\x80", "????" },	/* beyond U+10FFFF */
		{ "tab\there", "tab\there" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = escape(cases[i].in);
		assert_string_equal(e, cases[i].out);
		free(e);
	}
}

/* ------------------------------------------------------------------ */
/* summing blocks                                                       */

static void
test_sum_and_retire(void **state)
{
	static const char *const gen1[] = { "a", "b" };
	static const char *const gen2[] = { "b", "c" };	/* b moved to index 0 */
	struct fake_gen f1, f2;
	struct stats *st = stats_new(4, 8);
	char *t;

	(void)state;
	assert_non_null(st);
	fake_gen(&f1, gen1, 2);
	assert_int_equal(stats_generation(st, &f1.g), 0);

	worker(st, 101);
	stats_add(SG_ACCEPTED, 3);
	stats_add(SG_ENDED, 1);
	stats_host_add(0, SH_OPENED, 2);
	stats_host_add(0, SH_CLOSED, 1);
	stats_host_add(0, SH_BYTES_IN, 100);
	stats_host_add(0, SH_BYTES_OUT, 1000);
	stats_host_add(1, SH_OPENED, 1);
	stats_host_add(1, SH_RESUMED, 1);
	stats_add(SG_HS_FAIL + HS_UNKNOWN_SNI, 1);
	worker(st, 102);
	stats_add(SG_ACCEPTED, 5);
	stats_host_add(0, SH_OPENED, 5);
	stats_host_add(0, SH_BYTES_IN, 10);
	stats_add(SG_HS_FAIL + HS_UNKNOWN_SNI, 2);
	stats_add(SG_REFUSED, 4);

	t = render(st);
	assert_true(value(t, "tlsfront_connections_total{host=\"a\"}") == 7);
	assert_true(value(t, "tlsfront_connections_open{host=\"a\"}") == 6);
	assert_true(value(t, "tlsfront_connections_total{host=\"b\"}") == 1);
	assert_true(value(t, "tlsfront_handshakes_total{host=\"b\",session=\"resumed\"}") == 1);
	assert_true(value(t, "tlsfront_handshakes_total{host=\"b\",session=\"full\"}") == 0);
	assert_true(value(t, "tlsfront_handshakes_total{host=\"a\",session=\"full\"}") == 7);
	assert_true(value(t, "tlsfront_received_bytes_total{host=\"a\"}") == 110);
	assert_true(value(t, "tlsfront_sent_bytes_total{host=\"a\"}") == 1000);
	assert_true(value(t, "tlsfront_accepted_connections_total") == 8);
	assert_true(value(t, "tlsfront_active_connections") == 7);
	assert_true(value(t, "tlsfront_refused_connections_total") == 4);
	assert_true(value(t, "tlsfront_handshake_failures_total{reason=\"unknown_sni\"}") == 3);
	assert_true(value(t, "tlsfront_handshake_failures_total{reason=\"other\"}") == 0);
	assert_true(value(t, "tlsfront_worker_processes") == 2);
	assert_true(value(t, "tlsfront_config_generation") == 1);
	assert_true(value(t, "tlsfront_hosts") == 2);
	assert_true(value(t, "tlsfront_certificate_not_after_timestamp_seconds{host=\"b\"}") ==
	    1700000001);
	free(t);

	/* worker 101 dies: its counters stay in the totals, its open
	 * connections are gone */
	stats_worker_gone(st, 101);
	stats_worker_gone(st, 999);	/* not ours: ignored */
	t = render(st);
	assert_true(value(t, "tlsfront_connections_total{host=\"a\"}") == 7);
	assert_true(value(t, "tlsfront_connections_open{host=\"a\"}") == 5);
	assert_true(value(t, "tlsfront_received_bytes_total{host=\"a\"}") == 110);
	assert_true(value(t, "tlsfront_accepted_connections_total") == 8);
	assert_true(value(t, "tlsfront_active_connections") == 5);
	assert_true(value(t, "tlsfront_handshake_failures_total{reason=\"unknown_sni\"}") == 3);
	assert_true(value(t, "tlsfront_worker_processes") == 1);
	free(t);

	/* a reload: b is now host 0; the new worker's block starts at zero
	 * (it is the block 101 had) and counts under the new labels */
	fake_gen(&f2, gen2, 2);
	assert_int_equal(stats_generation(st, &f2.g), 0);
	stats_reload_done(st, 1);
	stats_reload_done(st, 0);
	stats_worker_restart(st);
	worker(st, 103);
	for (int k = 0; k < SG_COUNT; k++)
		assert_int_equal(stats_g[k], 0);
	stats_host_add(0, SH_OPENED, 4);
	stats_host_add(1, SH_OPENED, 1);
	t = render(st);
	assert_true(value(t, "tlsfront_connections_total{host=\"a\"}") == 7);
	assert_true(value(t, "tlsfront_connections_total{host=\"b\"}") == 5);
	assert_true(value(t, "tlsfront_connections_total{host=\"c\"}") == 1);
	assert_true(value(t, "tlsfront_config_generation") == 2);
	assert_true(value(t, "tlsfront_reloads_total{result=\"ok\"}") == 1);
	assert_true(value(t, "tlsfront_reloads_total{result=\"failed\"}") == 1);
	assert_true(value(t, "tlsfront_worker_restarts_total") == 1);
	/* the certificate gauge is for hosts in use only */
	assert_true(value(t, "tlsfront_certificate_not_after_timestamp_seconds{host=\"a\"}") < 0);
	assert_true(value(t, "tlsfront_certificate_not_after_timestamp_seconds{host=\"b\"}") ==
	    1700000000);
	free(t);

	/* every worker gone: totals stay, nothing is open */
	stats_worker_gone(st, 102);
	stats_worker_gone(st, 103);
	t = render(st);
	assert_true(value(t, "tlsfront_connections_total{host=\"a\"}") == 7);
	assert_true(value(t, "tlsfront_connections_total{host=\"b\"}") == 5);
	assert_true(value(t, "tlsfront_connections_total{host=\"c\"}") == 1);
	assert_true(value(t, "tlsfront_connections_open{host=\"a\"}") == 0);
	assert_true(value(t, "tlsfront_active_connections") == 0);
	assert_true(value(t, "tlsfront_accepted_connections_total") == 8);
	assert_true(value(t, "tlsfront_worker_processes") == 0);
	free(t);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* More workers than blocks: the extra one counts nowhere, nothing breaks;
 * a failed fork gives its block back. */
static void
test_blocks_run_out(void **state)
{
	static const char *const labels[] = { "a" };
	struct fake_gen f;
	struct stats *st = stats_new(2, 4);
	int b1, b2, b3;

	(void)state;
	fake_gen(&f, labels, 1);
	stats_generation(st, &f.g);
	b1 = stats_block_take(st);
	b2 = stats_block_take(st);
	b3 = stats_block_take(st);
	assert_true(b1 >= 0 && b2 >= 0 && b1 != b2);
	assert_int_equal(b3, -1);
	stats_block_bind(st, b1, 201);
	stats_block_bind(st, b2, -1);	/* fork failed */
	stats_block_bind(st, b3, 202);	/* no block: ignored */
	stats_worker_init(st, b3);
	stats_host_add(0, SH_OPENED, 1);	/* into the private dummy */
	assert_int_equal(stats_block_take(st), b2);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* Hosts beyond the capacity of a block are counted as host="_other". */
static void
test_overflow(void **state)
{
	static const char *const labels[] = { "a", "b", "c" };
	struct fake_gen f;
	struct stats *st = stats_new(2, 1);
	char *t;

	(void)state;
	fake_gen(&f, labels, 3);
	stats_generation(st, &f.g);
	worker(st, 301);
	stats_host_add(0, SH_OPENED, 1);
	stats_host_add(1, SH_OPENED, 2);
	stats_host_add(2, SH_OPENED, 3);
	t = render(st);
	assert_true(value(t, "tlsfront_connections_total{host=\"a\"}") == 1);
	assert_true(value(t, "tlsfront_connections_total{host=\"_other\"}") == 5);
	assert_true(value(t, "tlsfront_connections_total{host=\"b\"}") == 0);
	free(t);
	stats_worker_gone(st, 301);
	t = render(st);
	assert_true(value(t, "tlsfront_connections_total{host=\"_other\"}") == 5);
	free(t);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* ------------------------------------------------------------------ */
/* the text format                                                      */

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
test_format(void **state)
{
	static const char *const labels[] = { "zeta", "we\"ird\\", "alpha" };
	struct fake_gen f;
	struct stats *st = stats_new(2, 8);
	char *t, *copy, *save = NULL, family[128] = "", type[32] = "", seen[4096] = " ";
	double cum = -1, inf = -1, count = -1;
	int help = 0;

	(void)state;
	fake_gen(&f, labels, 3);
	stats_generation(st, &f.g);
	worker(st, 401);
	stats_connect_time(0, 400);		/* <= 0.0005 */
	stats_connect_time(1, 3000);		/* <= 0.005 */
	stats_connect_time(1, 20000000);	/* beyond 10 s: +Inf only */
	t = render(st);

	assert_true(value(t, "tlsfront_backend_connect_seconds_bucket{le=\"0.0005\"}") == 1);
	assert_true(value(t, "tlsfront_backend_connect_seconds_bucket{le=\"0.0025\"}") == 1);
	assert_true(value(t, "tlsfront_backend_connect_seconds_bucket{le=\"0.005\"}") == 2);
	assert_true(value(t, "tlsfront_backend_connect_seconds_bucket{le=\"10\"}") == 2);
	assert_true(value(t, "tlsfront_backend_connect_seconds_bucket{le=\"+Inf\"}") == 3);
	assert_true(value(t, "tlsfront_backend_connect_seconds_count") == 3);
	assert_non_null(strstr(t, "\ntlsfront_backend_connect_seconds_sum 20.003400\n"));
	assert_true(value(t, "tlsfront_host_backend_connect_seconds_count{host=\"we\\\"ird\\\\\"}")
	    == 2);
	assert_non_null(strstr(t, "\ntlsfront_host_backend_connect_seconds_sum"
	    "{host=\"we\\\"ird\\\\\"} 20.003000\n"));
	/* hosts sorted by label */
	assert_true(strstr(t, "tlsfront_connections_total{host=\"alpha\"}") <
	    strstr(t, "tlsfront_connections_total{host=\"zeta\"}"));

	/* every sample belongs to the family declared last (HELP, then TYPE,
	 * each family once); histogram buckets grow up to +Inf == _count */
	assert_int_equal(t[strlen(t) - 1], '\n');
	copy = strdup(t);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[160], key[140];
		size_t n;

		if (starts(line, "# HELP ")) {
			assert_int_equal(sscanf(line, "# HELP %127s", family), 1);
			snprintf(key, sizeof(key), " %s ", family);
			assert_null(strstr(seen, key));	/* declared once */
			strncat(seen, key + 1, sizeof(seen) - strlen(seen) - 1);
			help = 1;
			continue;
		}
		if (starts(line, "# TYPE ")) {
			char fam[128];
			assert_true(help);
			assert_int_equal(sscanf(line, "# TYPE %127s %31s", fam, type), 2);
			assert_string_equal(fam, family);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
			    !strcmp(type, "histogram") || !strcmp(type, "summary"));
			help = 0;
			continue;
		}
		assert_true(line[0] != '#');
		n = strcspn(line, "{ ");
		assert_true(n > 0 && n < sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		if (!strcmp(type, "histogram") || !strcmp(type, "summary")) {
			const char *sfx = name + strlen(family);
			assert_true(starts(name, family));
			assert_true(!strcmp(sfx, "_sum") || !strcmp(sfx, "_count") ||
			    (!strcmp(sfx, "_bucket") && !strcmp(type, "histogram")));
			if (!strcmp(sfx, "_bucket")) {
				double v = strtod(strrchr(line, ' ') + 1, NULL);
				assert_true(v >= cum);
				cum = v;
				if (strstr(line, "le=\"+Inf\""))
					inf = v;
			} else if (!strcmp(sfx, "_count") && !strcmp(type, "histogram")) {
				count = strtod(strrchr(line, ' ') + 1, NULL);
			}
		} else {
			assert_string_equal(name, family);
		}
		if (!strcmp(type, "counter"))
			assert_true(starts(name, "tlsfront_") && strstr(name, "_total") ==
			    name + strlen(name) - 6);
		/* a value follows the last blank */
		char *end;
		(void)strtod(strrchr(line, ' ') + 1, &end);
		assert_int_equal(*end, '\0');
	}
	assert_true(inf == 3 && count == 3);
	free(copy);
	free(t);
	stats_worker_gone(st, 401);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                 */

static char *
answer(struct stats *st, const char *req, size_t *len)
{
	char *a = stats_http_answer(st, req, strlen(req), len);

	assert_non_null(a);
	assert_int_equal(strlen(a), *len);
	return a;
}

static void
test_http(void **state)
{
	static const char *const labels[] = { "a" };
	struct fake_gen f;
	struct stats *st = stats_new(1, 2);
	size_t len;
	char *a, *body;
	unsigned long cl;

	(void)state;
	fake_gen(&f, labels, 1);
	stats_generation(st, &f.g);

	a = answer(st, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &len);
	assert_true(starts(a, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(a,
	    "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(a, "\r\nConnection: close\r\n"));
	assert_int_equal(sscanf(strstr(a, "Content-Length: "), "Content-Length: %lu", &cl), 1);
	body = strstr(a, "\r\n\r\n") + 4;
	assert_int_equal(strlen(body), cl);
	assert_true(starts(body, "# HELP tlsfront_"));
	free(a);

	a = answer(st, "GET /metrics?name[]=x HTTP/1.0\n\n", &len);
	assert_true(starts(a, "HTTP/1.1 200 OK\r\n"));
	free(a);

	a = answer(st, "HEAD /metrics HTTP/1.1\r\n\r\n", &len);
	assert_true(starts(a, "HTTP/1.1 200 OK\r\n"));
	assert_true(strstr(a, "\r\n\r\n")[4] == '\0');	/* no body */
	free(a);

	a = answer(st, "GET / HTTP/1.1\r\n\r\n", &len);
	assert_true(starts(a, "HTTP/1.1 404 Not Found\r\n"));
	free(a);
	a = answer(st, "GET /metricsx HTTP/1.1\r\n\r\n", &len);
	assert_true(starts(a, "HTTP/1.1 404 Not Found\r\n"));
	free(a);
	a = answer(st, "POST /metrics HTTP/1.1\r\n\r\n", &len);
	assert_true(starts(a, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(a, "\r\nAllow: GET, HEAD\r\n"));
	free(a);
	a = answer(st, "\x16\x03\x01\x02\x00\x01", &len);	/* TLS, not HTTP */
	assert_true(starts(a, "HTTP/1.1 400 Bad Request\r\n"));
	free(a);
	a = answer(st, "GET /metrics\r\n\r\n", &len);	/* HTTP/0.9 */
	assert_true(starts(a, "HTTP/1.1 400 Bad Request\r\n"));
	free(a);
	a = answer(st, "", &len);
	assert_true(starts(a, "HTTP/1.1 400 Bad Request\r\n"));
	free(a);
	stats_free(st);
}

/* Hosts left out by host_errors = skip: counted, no certificate gauge. */
static void
test_skipped(void **state)
{
	static const char *const labels[] = { "good", "broken" };
	struct fake_gen f;
	struct stats *st = stats_new(1, 4);
	char *t;

	(void)state;
	fake_gen(&f, labels, 2);
	f.h[1].skipped = 1;
	f.g.n_skipped = 1;
	stats_generation(st, &f.g);
	t = render(st);
	assert_true(value(t, "tlsfront_hosts") == 1);
	assert_true(value(t, "tlsfront_hosts_skipped") == 1);
	assert_true(value(t,
	    "tlsfront_certificate_not_after_timestamp_seconds{host=\"good\"}") > 0);
	assert_null(strstr(t, "host=\"broken\""));
	free(t);
	stats_free(st);
}

/* Without a mapping everything is a no-op. */
static void
test_null(void **state)
{
	struct addr off;

	(void)state;
	memset(&off, 0, sizeof(off));
	assert_int_equal(stats_block_take(NULL), -1);
	stats_block_bind(NULL, -1, 1);
	stats_worker_init(NULL, -1);
	stats_worker_gone(NULL, 1);
	stats_reload_done(NULL, 1);
	stats_worker_restart(NULL);
	assert_int_equal(stats_generation(NULL, NULL), 0);
	assert_int_equal(stats_listen(NULL, &off), 0);
	assert_null(stats_render(NULL, NULL));
	stats_add(SG_ACCEPTED, 1);
	stats_host_add(5, SH_OPENED, 1);
	stats_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_sum_and_retire),
		cmocka_unit_test(test_blocks_run_out),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
