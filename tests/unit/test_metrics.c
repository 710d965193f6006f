/*
 * test_metrics.c: the Prometheus text format of a sum (metrics.c): the
 * whole text of a small sum as it must stay (names, labels, order are what
 * dashboards use), label escaping, and the format's rules on a larger one.
 * Sums are made by hand here: adding them up is test_stats.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "unit_util.h"

static char *
render(const struct stats_sum *s)
{
	size_t len = 0;
	char *t = metrics_render(s, &len);

	assert_non_null(t);
	assert_int_equal(len, strlen(t));
	return t;
}

/* ------------------------------------------------------------------ */
/* the whole text of a small sum                                        */

static const char golden[] =
    "# HELP tlsfront_start_time_seconds When the main process started (unix time).\n"
    "# TYPE tlsfront_start_time_seconds gauge\n"
    "tlsfront_start_time_seconds 1700000000\n"
    "# HELP tlsfront_config_generation The configuration in use: 1 at start, one more "
    "per successful reload.\n"
    "# TYPE tlsfront_config_generation gauge\n"
    "tlsfront_config_generation 3\n"
    "# HELP tlsfront_hosts Hosts served by the configuration in use.\n"
    "# TYPE tlsfront_hosts gauge\n"
    "tlsfront_hosts 1\n"
    "# HELP tlsfront_hosts_skipped Hosts of the configuration in use left out by "
    "host_errors = skip.\n"
    "# TYPE tlsfront_hosts_skipped gauge\n"
    "tlsfront_hosts_skipped 1\n"
    "# HELP tlsfront_reloads_total Reloads (SIGHUP), by result.\n"
    "# TYPE tlsfront_reloads_total counter\n"
    "tlsfront_reloads_total{result=\"ok\"} 2\n"
    "tlsfront_reloads_total{result=\"failed\"} 4\n"
    "# HELP tlsfront_last_reload_success_timestamp_seconds When the configuration in use "
    "was loaded (unix time): start or last good reload.\n"
    "# TYPE tlsfront_last_reload_success_timestamp_seconds gauge\n"
    "tlsfront_last_reload_success_timestamp_seconds 1700000100\n"
    "# HELP tlsfront_worker_restarts_total Workers that died unexpectedly and were "
    "started again.\n"
    "# TYPE tlsfront_worker_restarts_total counter\n"
    "tlsfront_worker_restarts_total 5\n"
    "# HELP tlsfront_worker_processes Worker processes counting (those of the generation "
    "in use and draining ones).\n"
    "# TYPE tlsfront_worker_processes gauge\n"
    "tlsfront_worker_processes 2\n"
    "# HELP tlsfront_accepted_connections_total TCP connections accepted, before TLS.\n"
    "# TYPE tlsfront_accepted_connections_total counter\n"
    "tlsfront_accepted_connections_total 40\n"
    "# HELP tlsfront_active_connections Accepted connections open now, in any state.\n"
    "# TYPE tlsfront_active_connections gauge\n"
    "tlsfront_active_connections 6\n"
    "# HELP tlsfront_refused_connections_total Connections closed at accept: the global "
    "max_connections was reached.\n"
    "# TYPE tlsfront_refused_connections_total counter\n"
    "tlsfront_refused_connections_total 7\n"
    "# HELP tlsfront_handshake_failures_total Connections that ended before their TLS "
    "handshake completed, by reason.\n"
    "# TYPE tlsfront_handshake_failures_total counter\n"
    "tlsfront_handshake_failures_total{reason=\"unknown_sni\"} 1\n"
    "tlsfront_handshake_failures_total{reason=\"no_alpn\"} 0\n"
    "tlsfront_handshake_failures_total{reason=\"protocol\"} 0\n"
    "tlsfront_handshake_failures_total{reason=\"client_cert\"} 0\n"
    "tlsfront_handshake_failures_total{reason=\"timeout\"} 0\n"
    "tlsfront_handshake_failures_total{reason=\"closed\"} 0\n"
    "tlsfront_handshake_failures_total{reason=\"proxy_header\"} 0\n"
    "tlsfront_handshake_failures_total{reason=\"other\"} 8\n"
    "# HELP tlsfront_backend_connect_seconds Time to connect to a backend, successful "
    "connects of all hosts.\n"
    "# TYPE tlsfront_backend_connect_seconds histogram\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.0005\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.001\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.0025\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.005\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.01\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.025\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.05\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.1\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.25\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"0.5\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"1\"} 1\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"2.5\"} 3\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"5\"} 3\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"10\"} 3\n"
    "tlsfront_backend_connect_seconds_bucket{le=\"+Inf\"} 4\n"
    "tlsfront_backend_connect_seconds_sum 24.000250\n"
    "tlsfront_backend_connect_seconds_count 4\n"
    "# HELP tlsfront_connections_total Connections of the host: TLS handshakes completed.\n"
    "# TYPE tlsfront_connections_total counter\n"
    "tlsfront_connections_total{host=\"a\\\"b\"} 9\n"
    "tlsfront_connections_total{host=\"old\"} 2\n"
    "# HELP tlsfront_connections_open Connections of the host open now (handshake "
    "completed).\n"
    "# TYPE tlsfront_connections_open gauge\n"
    "tlsfront_connections_open{host=\"a\\\"b\"} 3\n"
    "tlsfront_connections_open{host=\"old\"} 0\n"
    "# HELP tlsfront_handshakes_total Completed TLS handshakes of the host, by session: "
    "full or resumed.\n"
    "# TYPE tlsfront_handshakes_total counter\n"
    "tlsfront_handshakes_total{host=\"a\\\"b\",session=\"full\"} 5\n"
    "tlsfront_handshakes_total{host=\"a\\\"b\",session=\"resumed\"} 4\n"
    "tlsfront_handshakes_total{host=\"old\",session=\"full\"} 0\n"
    "tlsfront_handshakes_total{host=\"old\",session=\"resumed\"} 3\n"
    "# HELP tlsfront_received_bytes_total Bytes from clients (plaintext), counted when the "
    "connection closes.\n"
    "# TYPE tlsfront_received_bytes_total counter\n"
    "tlsfront_received_bytes_total{host=\"a\\\"b\"} 100\n"
    "tlsfront_received_bytes_total{host=\"old\"} 0\n"
    "# HELP tlsfront_sent_bytes_total Bytes to clients (plaintext), counted when the "
    "connection closes.\n"
    "# TYPE tlsfront_sent_bytes_total counter\n"
    "tlsfront_sent_bytes_total{host=\"a\\\"b\"} 12345678901\n"
    "tlsfront_sent_bytes_total{host=\"old\"} 0\n"
    "# HELP tlsfront_backend_connect_failures_total Backend connects that failed or timed "
    "out.\n"
    "# TYPE tlsfront_backend_connect_failures_total counter\n"
    "tlsfront_backend_connect_failures_total{host=\"a\\\"b\"} 1\n"
    "tlsfront_backend_connect_failures_total{host=\"old\"} 0\n"
    "# HELP tlsfront_host_backend_connect_seconds Time to connect to the host's backend, "
    "successful connects.\n"
    "# TYPE tlsfront_host_backend_connect_seconds summary\n"
    "tlsfront_host_backend_connect_seconds_sum{host=\"a\\\"b\"} 1.500000\n"
    "tlsfront_host_backend_connect_seconds_count{host=\"a\\\"b\"} 3\n"
    "tlsfront_host_backend_connect_seconds_sum{host=\"old\"} 0.000000\n"
    "tlsfront_host_backend_connect_seconds_count{host=\"old\"} 0\n"
    "# HELP tlsfront_host_refused_connections_total Handshakes refused: the host's "
    "max_connections was reached.\n"
    "# TYPE tlsfront_host_refused_connections_total counter\n"
    "tlsfront_host_refused_connections_total{host=\"a\\\"b\"} 2\n"
    "tlsfront_host_refused_connections_total{host=\"old\"} 0\n"
    "# HELP tlsfront_certificate_not_after_timestamp_seconds When the host's certificate "
    "expires (unix time), hosts in use.\n"
    "# TYPE tlsfront_certificate_not_after_timestamp_seconds gauge\n"
    "tlsfront_certificate_not_after_timestamp_seconds{host=\"a\\\"b\"} 1800000000\n"
    "# HELP tlsfront_backend_up 1 if the pool member takes connections, 0 while it is "
    "marked down.\n"
    "# TYPE tlsfront_backend_up gauge\n"
    "tlsfront_backend_up{host=\"a\\\"b\",backend=\"10.0.0.1:80\"} 1\n"
    "tlsfront_backend_up{host=\"a\\\"b\",backend=\"unix:/run/x.sock\"} 0\n"
    "# HELP tlsfront_backend_connections_total Connections relayed to the pool member "
    "(successful connects).\n"
    "# TYPE tlsfront_backend_connections_total counter\n"
    "tlsfront_backend_connections_total{host=\"a\\\"b\",backend=\"10.0.0.1:80\"} 7\n"
    "tlsfront_backend_connections_total{host=\"a\\\"b\",backend=\"unix:/run/x.sock\"} 2\n"
    "# HELP tlsfront_backend_member_connect_failures_total Connects to the pool member "
    "that failed or timed out, and failed health checks.\n"
    "# TYPE tlsfront_backend_member_connect_failures_total counter\n"
    "tlsfront_backend_member_connect_failures_total{host=\"a\\\"b\",backend="
    "\"10.0.0.1:80\"} 0\n"
    "tlsfront_backend_member_connect_failures_total{host=\"a\\\"b\",backend="
    "\"unix:/run/x.sock\"} 4\n"
    "# HELP tlsfront_backend_member_connect_seconds Time to connect to the pool member, "
    "successful connects.\n"
    "# TYPE tlsfront_backend_member_connect_seconds summary\n"
    "tlsfront_backend_member_connect_seconds_sum{host=\"a\\\"b\",backend="
    "\"10.0.0.1:80\"} 0.001500\n"
    "tlsfront_backend_member_connect_seconds_count{host=\"a\\\"b\",backend="
    "\"10.0.0.1:80\"} 7\n"
    "tlsfront_backend_member_connect_seconds_sum{host=\"a\\\"b\",backend="
    "\"unix:/run/x.sock\"} 0.000000\n"
    "tlsfront_backend_member_connect_seconds_count{host=\"a\\\"b\",backend="
    "\"unix:/run/x.sock\"} 2\n";

static void
test_golden(void **state)
{
	struct stats_host_sum hosts[2] = {
		{ .label = "a\"b", .open = 3, .in_use = 1, .not_after = 1800000000 },
		{ .label = "old" },	/* removed by a reload: counters, no certificate */
	};
	struct stats_member_sum members[2] = {
		{ .host = "a\"b", .backend = "10.0.0.1:80", .up = 1, .conns = 7,
		  .connect_us = 1500, .connect_count = 7 },
		{ .host = "a\"b", .backend = "unix:/run/x.sock", .up = 0, .conns = 2,
		  .connect_failures = 4, .connect_count = 2 },
	};
	struct stats_sum s = {
		.active = 6, .workers = 2, .hosts = hosts, .n_hosts = 2,
		.members = members, .n_members = 2,
		.started = 1700000000, .last_reload = 1700000100, .generation = 3,
		.reloads_ok = 2, .reloads_failed = 4, .restarts = 5,
		.hosts_served = 1, .hosts_skipped = 1,
	};
	char *t;

	(void)state;
	s.g[SG_ACCEPTED] = 40;
	s.g[SG_ENDED] = 34;
	s.g[SG_REFUSED] = 7;
	s.g[SG_HS_FAIL + HS_UNKNOWN_SNI] = 1;
	s.g[SG_HS_FAIL + HS_OTHER] = 8;
	s.g[SG_CONNECT_BUCKET + 0] = 1;
	s.g[SG_CONNECT_BUCKET + 11] = 2;
	s.g[SG_CONNECT_BUCKET + STATS_BUCKETS] = 1;
	s.g[SG_CONNECT_USEC] = 24000250;
	hosts[0].c[SH_OPENED] = 9;
	hosts[0].c[SH_RESUMED] = 4;
	hosts[0].c[SH_BYTES_IN] = 100;
	hosts[0].c[SH_BYTES_OUT] = 12345678901ULL;
	hosts[0].c[SH_CONNECT_FAILED] = 1;
	hosts[0].c[SH_CONNECT_COUNT] = 3;
	hosts[0].c[SH_CONNECT_USEC] = 1500000;
	hosts[0].c[SH_REFUSED] = 2;
	hosts[1].c[SH_OPENED] = 2;
	hosts[1].c[SH_RESUMED] = 3;	/* more than opened: full is 0, not negative */
	t = render(&s);
	assert_string_equal(t, golden);
	free(t);
}

/* ACME orders: the family only once the child reported one, at the end,
 * hosts in the sum's order, labels escaped */
static void
test_acme_orders(void **state)
{
	struct stats_acme_sum acme[2] = {
		{ .label = "a\"b", .ok = 1, .error = 2 },
		{ .label = "shop", .ok = 3 },
	};
	struct stats_sum s = { .acme = acme, .n_acme = 2 };
	struct stats_sum none = { 0 };
	static const char want[] =
	    "# HELP tlsfront_acme_orders_total ACME certificate orders that ended, by host and "
	    "result (ok or error).\n"
	    "# TYPE tlsfront_acme_orders_total counter\n"
	    "tlsfront_acme_orders_total{host=\"a\\\"b\",result=\"ok\"} 1\n"
	    "tlsfront_acme_orders_total{host=\"a\\\"b\",result=\"error\"} 2\n"
	    "tlsfront_acme_orders_total{host=\"shop\",result=\"ok\"} 3\n"
	    "tlsfront_acme_orders_total{host=\"shop\",result=\"error\"} 0\n";
	char *t;

	(void)state;
	t = render(&s);
	assert_non_null(strstr(t, want));
	assert_int_equal(strlen(strstr(t, want)), strlen(want));	/* the last family */
	free(t);
	t = render(&none);
	assert_null(strstr(t, "acme"));
	free(t);
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
		struct stats_host_sum h = { .label = (char *)cases[i].in };
		struct stats_sum s = { .hosts = &h, .n_hosts = 1 };
		char want[128], *t = render(&s);

		snprintf(want, sizeof(want), "\ntlsfront_connections_total{host=\"%s\"} 0\n",
		    cases[i].out);
		if (strstr(t, want) == NULL)
			fail_msg("label %zu: no line %s", i, want + 1);
		free(t);
	}
}

/* ------------------------------------------------------------------ */
/* the format's rules                                                   */

/* Every sample belongs to the family declared last (HELP, then TYPE, each
 * family once); histogram buckets grow up to +Inf == _count; counters end
 * in _total; every line ends in a number. */
static void
check_format(const char *t)
{
	char *copy = strdup(t), *save = NULL, family[128] = "", type[32] = "";
	char seen[4096] = " ";
	double cum = -1, inf = -1, count = -1;
	int help = 0;

	assert_int_equal(t[strlen(t) - 1], '\n');
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[160], key[140], *end;
		size_t n;

		if (unit_starts(line, "# HELP ")) {
			assert_int_equal(sscanf(line, "# HELP %127s", family), 1);
			snprintf(key, sizeof(key), " %s ", family);
			assert_null(strstr(seen, key));	/* declared once */
			strncat(seen, key + 1, sizeof(seen) - strlen(seen) - 1);
			help = 1;
			continue;
		}
		if (unit_starts(line, "# TYPE ")) {
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
			assert_true(unit_starts(name, family));
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
			assert_true(unit_starts(name, "tlsfront_") &&
			    strstr(name, "_total") == name + strlen(name) - 6);
		(void)strtod(strrchr(line, ' ') + 1, &end);
		assert_int_equal(*end, '\0');
	}
	assert_true(inf >= 0 && inf == count);
	free(copy);
}

static void
test_format(void **state)
{
	static char *const labels[] = { "alpha", "we\"ird\\", "zeta" };
	struct stats_host_sum hosts[3] = { { 0 } };
	struct stats_sum s = { .hosts = hosts, .n_hosts = 3, .hosts_served = 3 };
	char *t;

	(void)state;
	for (int i = 0; i < 3; i++) {
		hosts[i].label = labels[i];
		hosts[i].in_use = 1;
		for (int k = 0; k < SH_COUNT; k++)
			hosts[i].c[k] = (uint64_t)(i * 10 + k);
	}
	for (int i = 0; i <= STATS_BUCKETS; i++)
		s.g[SG_CONNECT_BUCKET + i] = (uint64_t)(i % 3);
	t = render(&s);
	check_format(t);
	/* each bucket's le is its bound in stats.h, in seconds */
	for (int i = 0; i < STATS_BUCKETS; i++) {
		const char *p = t;
		int found = 0;
		while ((p = strstr(p, "tlsfront_backend_connect_seconds_bucket{le=\"")) != NULL) {
			p += strlen("tlsfront_backend_connect_seconds_bucket{le=\"");
			if (*p != '+' && (uint64_t)(strtod(p, NULL) * 1e6 + 0.5) ==
			    stats_bucket_us[i])
				found = 1;
		}
		assert_true(found);
	}
	free(t);

	/* nothing at all: still every family, and a valid text */
	memset(&s, 0, sizeof(s));
	t = render(&s);
	check_format(t);
	assert_non_null(strstr(t, "\ntlsfront_hosts 0\n"));
	assert_non_null(strstr(t, "# TYPE tlsfront_connections_total counter\n"));
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_acme_orders),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
