/* metrics.c: see metrics.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sbuf.h"

static const char *const hs_reasons[HS_COUNT] = {
	[HS_UNKNOWN_SNI] = "unknown_sni", [HS_NO_ALPN] = "no_alpn", [HS_PROTOCOL] = "protocol",
	[HS_CLIENT_CERT] = "client_cert", [HS_TIMEOUT] = "timeout", [HS_CLOSED] = "closed",
	[HS_PROXY_HEADER] = "proxy_header", [HS_OTHER] = "other"
};

/* What every family helper is given: where to write, the sum, and each
 * host's label escaped once (hosts[i] is sum->hosts[i]). */
struct page {
	struct sbuf b;
	const struct stats_sum *sum;
	char **hosts;
};

/* The length of the UTF-8 sequence at p (1 to 4), 0 if it is not a valid
 * one: continuation bytes, shortest form, no surrogates, at most U+10FFFF. */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned char ch = p[0];
	size_t len = ch < 0x80 ? 1 : (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 :
	    (ch & 0xF8) == 0xF0 ? 4 : 0;

	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;	/* also stops at the NUL */
	if ((len == 2 && ch < 0xC2) ||
	    (len == 3 && ((ch == 0xE0 && p[1] < 0xA0) || (ch == 0xED && p[1] >= 0xA0))) ||
	    (len == 4 && (ch > 0xF4 || (ch == 0xF0 && p[1] < 0x90) ||
	    (ch == 0xF4 && p[1] >= 0x90))))
		return 0;
	return len;
}

/* A label value for the text format, malloc'd, or NULL. */
static char *
label_escape(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(2 * strlen(s) + 1), *o = out;

	if (out == NULL)
		return NULL;
	while (*p) {
		size_t len = utf8_len(p);

		if (len == 0) {
			*o++ = '?';
			p++;
			continue;
		}
		if (*p == '\\' || *p == '"' || *p == '\n') {
			*o++ = '\\';
			*o++ = *p == '\n' ? 'n' : (char)*p;
		} else {
			memcpy(o, p, len);
			o += len;
		}
		p += len;
	}
	*o = '\0';
	return out;
}

static void
family(struct page *pg, const char *name, const char *type, const char *help)
{
	sb_printf(&pg->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void
single(struct page *pg, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	family(pg, name, type, help);
	sb_printf(&pg->b, "%s %llu\n", name, v);
}

/* Microseconds as decimal seconds, exactly: 2500 -> "0.0025", 10^7 -> "10". */
static void
seconds_text(char *buf, size_t n, uint64_t us)
{
	int end;

	end = snprintf(buf, n, "%llu.%06llu", (unsigned long long)(us / 1000000u),
	    (unsigned long long)(us % 1000000u));
	while (end > 0 && buf[end - 1] == '0')
		buf[--end] = '\0';
	if (end > 0 && buf[end - 1] == '.')
		buf[--end] = '\0';
}

/* ---- the main process's families ---------------------------------------- */

static void
process_families(struct page *pg)
{
	const struct stats_sum *s = pg->sum;

	family(pg, "tlsfront_start_time_seconds", "gauge",
	    "When the main process started (unix time).");
	sb_printf(&pg->b, "tlsfront_start_time_seconds %lld\n", s->started);
	single(pg, "tlsfront_config_generation", "gauge",
	    "The configuration in use: 1 at start, one more per successful reload.",
	    s->generation);
	single(pg, "tlsfront_hosts", "gauge", "Hosts served by the configuration in use.",
	    s->hosts_served);
	single(pg, "tlsfront_hosts_skipped", "gauge",
	    "Hosts of the configuration in use left out by host_errors = skip.",
	    s->hosts_skipped);
	family(pg, "tlsfront_reloads_total", "counter", "Reloads (SIGHUP), by result.");
	sb_printf(&pg->b, "tlsfront_reloads_total{result=\"ok\"} %llu\n", s->reloads_ok);
	sb_printf(&pg->b, "tlsfront_reloads_total{result=\"failed\"} %llu\n",
	    s->reloads_failed);
	family(pg, "tlsfront_last_reload_success_timestamp_seconds", "gauge",
	    "When the configuration in use was loaded (unix time): start or last good reload.");
	sb_printf(&pg->b, "tlsfront_last_reload_success_timestamp_seconds %lld\n",
	    s->last_reload);
	single(pg, "tlsfront_worker_restarts_total", "counter",
	    "Workers that died unexpectedly and were started again.", s->restarts);
	single(pg, "tlsfront_worker_processes", "gauge",
	    "Worker processes counting (those of the generation in use and draining ones).",
	    s->workers);
}

/* ---- the families of all workers' connections --------------------------- */

static void
connection_families(struct page *pg)
{
	const struct stats_sum *s = pg->sum;

	single(pg, "tlsfront_accepted_connections_total", "counter",
	    "TCP connections accepted, before TLS.", s->g[SG_ACCEPTED]);
	single(pg, "tlsfront_active_connections", "gauge",
	    "Accepted connections open now, in any state.", (unsigned long long)s->active);
	single(pg, "tlsfront_refused_connections_total", "counter",
	    "Connections closed at accept: the global max_connections was reached.",
	    s->g[SG_REFUSED]);
}

static void
handshake_failures(struct page *pg)
{
	family(pg, "tlsfront_handshake_failures_total", "counter",
	    "Connections that ended before their TLS handshake completed, by reason.");
	for (int r = 0; r < HS_COUNT; r++)
		sb_printf(&pg->b, "tlsfront_handshake_failures_total{reason=\"%s\"} %llu\n",
		    hs_reasons[r], (unsigned long long)pg->sum->g[SG_HS_FAIL + r]);
}

static void
connect_histogram(struct page *pg)
{
	const uint64_t *g = pg->sum->g;
	unsigned long long cum = 0;
	char le[32];

	family(pg, "tlsfront_backend_connect_seconds", "histogram",
	    "Time to connect to a backend, successful connects of all hosts.");
	for (int i = 0; i <= STATS_BUCKETS; i++) {
		cum += g[SG_CONNECT_BUCKET + i];
		if (i < STATS_BUCKETS)
			seconds_text(le, sizeof(le), stats_bucket_us[i]);
		else
			strcpy(le, "+Inf");
		sb_printf(&pg->b, "tlsfront_backend_connect_seconds_bucket{le=\"%s\"} %llu\n", le,
		    cum);
	}
	sb_printf(&pg->b, "tlsfront_backend_connect_seconds_sum %.6f\n",
	    (double)g[SG_CONNECT_USEC] / 1e6);
	sb_printf(&pg->b, "tlsfront_backend_connect_seconds_count %llu\n", cum);
}

/* ---- per-host families -------------------------------------------------- */

/* A per-host counter: one line per host of counter k. */
static void
host_counter(struct page *pg, const char *name, const char *help, int k)
{
	family(pg, name, "counter", help);
	for (size_t i = 0; i < pg->sum->n_hosts; i++)
		sb_printf(&pg->b, "%s{host=\"%s\"} %llu\n", name, pg->hosts[i],
		    (unsigned long long)pg->sum->hosts[i].c[k]);
}

static void
host_open(struct page *pg)
{
	family(pg, "tlsfront_connections_open", "gauge",
	    "Connections of the host open now (handshake completed).");
	for (size_t i = 0; i < pg->sum->n_hosts; i++)
		sb_printf(&pg->b, "tlsfront_connections_open{host=\"%s\"} %lld\n", pg->hosts[i],
		    (long long)pg->sum->hosts[i].open);
}

static void
host_handshakes(struct page *pg)
{
	family(pg, "tlsfront_handshakes_total", "counter",
	    "Completed TLS handshakes of the host, by session: full or resumed.");
	for (size_t i = 0; i < pg->sum->n_hosts; i++) {
		const uint64_t *c = pg->sum->hosts[i].c;
		uint64_t resumed = c[SH_RESUMED];
		uint64_t full = c[SH_OPENED] >= resumed ? c[SH_OPENED] - resumed : 0;

		sb_printf(&pg->b, "tlsfront_handshakes_total{host=\"%s\",session=\"full\"} %llu\n",
		    pg->hosts[i], (unsigned long long)full);
		sb_printf(&pg->b,
		    "tlsfront_handshakes_total{host=\"%s\",session=\"resumed\"} %llu\n",
		    pg->hosts[i], (unsigned long long)resumed);
	}
}

static void
host_connect_summary(struct page *pg)
{
	family(pg, "tlsfront_host_backend_connect_seconds", "summary",
	    "Time to connect to the host's backend, successful connects.");
	for (size_t i = 0; i < pg->sum->n_hosts; i++) {
		const uint64_t *c = pg->sum->hosts[i].c;

		sb_printf(&pg->b, "tlsfront_host_backend_connect_seconds_sum{host=\"%s\"} %.6f\n",
		    pg->hosts[i], (double)c[SH_CONNECT_USEC] / 1e6);
		sb_printf(&pg->b,
		    "tlsfront_host_backend_connect_seconds_count{host=\"%s\"} %llu\n",
		    pg->hosts[i], (unsigned long long)c[SH_CONNECT_COUNT]);
	}
}

/* Hosts of the generation in use only: a host removed by a reload keeps
 * its counters, but its certificate is no longer anybody's concern. */
static void
host_not_after(struct page *pg)
{
	family(pg, "tlsfront_certificate_not_after_timestamp_seconds", "gauge",
	    "When the host's certificate expires (unix time), hosts in use.");
	for (size_t i = 0; i < pg->sum->n_hosts; i++)
		if (pg->sum->hosts[i].in_use)
			sb_printf(&pg->b, "tlsfront_certificate_not_after_timestamp_seconds"
			    "{host=\"%s\"} %lld\n", pg->hosts[i], pg->sum->hosts[i].not_after);
}

/* Main-process counters, only once the ACME child has reported an order:
 * a configuration without ACME shows no family of it. */
static void
acme_orders(struct page *pg)
{
	const struct stats_sum *s = pg->sum;

	if (s->n_acme == 0)
		return;
	family(pg, "tlsfront_acme_orders_total", "counter",
	    "ACME certificate orders that ended, by host and result (ok or error).");
	for (size_t i = 0; i < s->n_acme; i++) {
		char *label = label_escape(s->acme[i].label);

		if (label == NULL) {
			pg->b.oom = 1;
			return;
		}
		sb_printf(&pg->b, "tlsfront_acme_orders_total{host=\"%s\",result=\"ok\"} %llu\n",
		    label, s->acme[i].ok);
		sb_printf(&pg->b, "tlsfront_acme_orders_total{host=\"%s\",result=\"error\"} "
		    "%llu\n", label, s->acme[i].error);
		free(label);
	}
}

/* One family of the pool members: v(m) of each, with its host and backend. */
static void
member_family(struct page *pg, const char *name, const char *type, const char *help,
    int which)
{
	const struct stats_sum *s = pg->sum;

	family(pg, name, type, help);
	for (size_t i = 0; i < s->n_members; i++) {
		const struct stats_member_sum *m = &s->members[i];
		char *host = label_escape(m->host), *be = label_escape(m->backend);

		if (host == NULL || be == NULL) {
			pg->b.oom = 1;
		} else if (which == 4) {
			sb_printf(&pg->b, "%s_sum{host=\"%s\",backend=\"%s\"} %.6f\n", name, host,
			    be, (double)m->connect_us / 1e6);
			sb_printf(&pg->b, "%s_count{host=\"%s\",backend=\"%s\"} %llu\n", name, host,
			    be, m->connect_count);
		} else {
			unsigned long long v = which == 0 ? (unsigned long long)m->up :
			    which == 1 ? m->conns : m->connect_failures;
			sb_printf(&pg->b, "%s{host=\"%s\",backend=\"%s\"} %llu\n", name, host, be, v);
		}
		free(host);
		free(be);
	}
}

/* The members of the backend pools in use, when there are any. */
static void
member_families(struct page *pg)
{
	if (pg->sum->n_members == 0)
		return;
	member_family(pg, "tlsfront_backend_up", "gauge",
	    "1 if the pool member takes connections, 0 while it is marked down.", 0);
	member_family(pg, "tlsfront_backend_connections_total", "counter",
	    "Connections relayed to the pool member (successful connects).", 1);
	member_family(pg, "tlsfront_backend_member_connect_failures_total", "counter",
	    "Connects to the pool member that failed or timed out, and failed health checks.",
	    2);
	member_family(pg, "tlsfront_backend_member_connect_seconds", "summary",
	    "Time to connect to the pool member, successful connects.", 4);
}

static void
host_families(struct page *pg)
{
	host_counter(pg, "tlsfront_connections_total",
	    "Connections of the host: TLS handshakes completed.", SH_OPENED);
	host_open(pg);
	host_handshakes(pg);
	host_counter(pg, "tlsfront_received_bytes_total",
	    "Bytes from clients (plaintext), counted when the connection closes.",
	    SH_BYTES_IN);
	host_counter(pg, "tlsfront_sent_bytes_total",
	    "Bytes to clients (plaintext), counted when the connection closes.", SH_BYTES_OUT);
	host_counter(pg, "tlsfront_backend_connect_failures_total",
	    "Backend connects that failed or timed out.", SH_CONNECT_FAILED);
	host_connect_summary(pg);
	host_counter(pg, "tlsfront_host_refused_connections_total",
	    "Handshakes refused: the host's max_connections was reached.", SH_REFUSED);
	host_not_after(pg);
}

char *
metrics_render(const struct stats_sum *sum, size_t *len)
{
	struct page pg = { { NULL, 0, 0, 0 }, sum, NULL };
	size_t n = sum->n_hosts;

	if ((pg.hosts = calloc(n ? n : 1, sizeof(*pg.hosts))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((pg.hosts[i] = label_escape(sum->hosts[i].label)) == NULL)
			goto err;
	process_families(&pg);
	connection_families(&pg);
	handshake_failures(&pg);
	connect_histogram(&pg);
	host_families(&pg);
	member_families(&pg);
	acme_orders(&pg);
	if (pg.b.oom)
		goto err;
	for (size_t i = 0; i < n; i++)
		free(pg.hosts[i]);
	free(pg.hosts);
	if (len != NULL)
		*len = pg.b.len;
	return pg.b.p;
err:
	for (size_t i = 0; i < n; i++)
		free(pg.hosts[i]);
	free(pg.hosts);
	free(pg.b.p);
	return NULL;
}
