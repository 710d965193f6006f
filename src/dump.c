/* dump.c: see dump.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dump.h"
#include "sbuf.h"
#include "log.h"
#include "tls.h"

/* The summary's names stop after this many bytes (log.c cuts lines at 2 KiB). */
#define SUMMARY_NAMES_MAX 512

/* Key k's value as text (malloc'd), or NULL when it has none; *oom on failure. */
static char *
value_of(const struct config *c, const struct host_config *h, enum cfg_key k, int *oom)
{
	char small[256], *v;
	int n = config_value_text(c, h, k, small, sizeof(small));

	if (n < 0)
		return NULL;
	if ((v = malloc((size_t)n + 1)) == NULL) {
		*oom = 1;
		return NULL;
	}
	if ((size_t)n < sizeof(small))
		memcpy(v, small, (size_t)n + 1);
	else
		(void)config_value_text(c, h, k, v, (size_t)n + 1);
	return v;
}

/* "key = value", or "# key (not set)". */
/* A pool of several members in words, after its line: how it balances
 * them, one member a line (a host name's addresses are members of their own). */
static void
put_pool(FILE *f, const char *what, const struct addr_list *pl, const struct host_config *h)
{
	static const char *const balances[] = { "roundrobin", "leastconn", "first" };

	if (pl->n < 2)
		return;
	fprintf(f, "# %s pool: %zu members, balance = %s\n", what, pl->n,
	    h->balance >= 0 && h->balance < 3 ? balances[h->balance] : "?");
	for (size_t i = 0; i < pl->n; i++)
		fprintf(f, "#   member %zu: %s\n", i + 1, pl->v[i].text);
}

static void
put_key(FILE *f, const struct config *c, const struct host_config *h, enum cfg_key k,
    int *oom)
{
	char *v = value_of(c, h, k, oom);

	if (v == NULL)
		fprintf(f, "# %s (not set)\n", config_key_name(k));
	else
		fprintf(f, "%s = %s\n", config_key_name(k), v);
	free(v);
}

/* The subject or issuer of h's certificate as RFC 2253 text into *out
 * (malloc'd, the caller's; NULL when out of memory, "?" when OpenSSL cannot
 * print it). Returns -1 when h has no certificate (its file did not load),
 * else 0. */
static int
cert_name(const struct host *h, enum tls_cert_name which, char **out)
{
	char small[256];
	int n = tls_host_cert_name(h->tls, which, small, sizeof(small));

	*out = NULL;
	if (n < 0)
		return -1;
	if ((*out = malloc((size_t)n + 1)) == NULL)
		return 0;
	if ((size_t)n < sizeof(small))
		memcpy(*out, small, (size_t)n + 1);
	else
		(void)tls_host_cert_name(h->tls, which, *out, (size_t)n + 1);
	return 0;
}

/* The certificate's notAfter in UTC, YYYY-MM-DD and, unless date_only,
 * THH:MM:SSZ; "?" if unreadable. */
static void
not_after_text(const struct host *h, int date_only, char *buf, size_t len)
{
	struct tm tm;

	if (h->not_after == 0 || gmtime_r(&h->not_after, &tm) == NULL ||
	    strftime(buf, len, date_only ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* names = ..., as many names per line as CONFIG_MAX_LINE allows (the key repeats) */
static void
put_names(FILE *f, char *const *names, size_t n)
{
	static const char head[] = "names =";
	size_t width = 0;

	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(names[i]);
		if (width > 0 && width + 1 + nl > CONFIG_MAX_LINE) {
			fputc('\n', f);
			width = 0;
		}
		if (width == 0) {
			fputs(head, f);
			width = sizeof(head) - 1;
		}
		fprintf(f, " %s", names[i]);
		width += 1 + nl;
	}
	if (width > 0)
		fputc('\n', f);
}

static void
dump_host(FILE *f, const struct config *c, const struct host *h, int *oom)
{
	const struct host_config *hc = h->cfg;
	char *subject, *issuer;

	fprintf(f, "\n[host %s]\n", hc->label);
	fprintf(f, "# defined at %s:%d\n", hc->at.file, hc->at.line);
	if (h->skipped)
		fprintf(f, "# left out (host_errors = skip): its files did not load\n");
	if (h->pending)
		fprintf(f, "# certificate pending: ACME has not stored it yet (or it does not "
		    "load); handshakes fail until it does\n");
	if (cert_name(h, TLS_CERT_SUBJECT, &subject) == 0) {
		char expiry[64];

		(void)cert_name(h, TLS_CERT_ISSUER, &issuer);
		not_after_text(h, 0, expiry, sizeof(expiry));
		fprintf(f, "# certificate subject: %s\n", subject ? subject : "?");
		fprintf(f, "# certificate issuer: %s\n", issuer ? issuer : "?");
		fprintf(f, "# certificate not_after: %s\n", expiry);
		free(subject);
		free(issuer);
	}
	for (int k = 0; k < K_COUNT; k++) {
		if (config_key_is_global((enum cfg_key)k) || config_key_is_acme((enum cfg_key)k))
			continue;
		if (k == K_NAMES && !h->skipped) {
			/* the names it is served under: its own, or its certificate's */
			if (hc->names.n == 0)
				fprintf(f, "# names: the certificate's\n");
			if (h->n_names == 0)
				fprintf(f, "# names (none: only as the default host)\n");
			put_names(f, h->names, h->n_names);
			continue;
		}
		put_key(f, c, hc, (enum cfg_key)k, oom);
		if (k == K_BACKEND) {
			put_pool(f, "backend", &hc->backend, hc);
			for (size_t i = 0; i < hc->n_alpn_backends; i++) {
				const struct addr_list *pl = &hc->alpn_backends[i].pool;
				fprintf(f, "backend.%s =", hc->alpn_backends[i].proto);
				for (size_t j = 0; j < pl->n; j++)
					fprintf(f, " %s", pl->v[j].text);
				fprintf(f, "\n");
				put_pool(f, hc->alpn_backends[i].proto, pl, hc);
			}
		}
		const char *groups = tls_host_groups(h->tls);
		if (k == K_GROUPS && groups != NULL && hc->groups != NULL &&
		    strcmp(groups, hc->groups) != 0)
			fprintf(f, "# groups this OpenSSL offers: %s\n", groups);
	}
}

int
dump_config(FILE *f, const struct generation *g)
{
	const struct config *c = g->cfg;
	int oom = 0;

	fprintf(f, "# tlsfront %s -T: the effective configuration, defaults filled in.\n"
	    "# Lines starting with '#' are not settings.\n", PACKAGE_VERSION);
	for (size_t i = 0; i < c->n_files; i++)
		fprintf(f, "# file: %s\n", c->files[i]);
	fprintf(f, "\n[global]\n");
	for (int k = 0; k < K_COUNT; k++)
		if (config_key_is_global((enum cfg_key)k))
			put_key(f, c, NULL, (enum cfg_key)k, &oom);
	if (c->g.acme.enabled) {
		fprintf(f, "\n[acme]\n");
		for (int k = 0; k < K_COUNT; k++)
			if (config_key_is_acme((enum cfg_key)k))
				put_key(f, c, NULL, (enum cfg_key)k, &oom);
	}
	for (size_t i = 0; i < g->n_hosts; i++)
		dump_host(f, c, &g->hosts[i], &oom);
	if (oom) {
		errno = ENOMEM;
		return -1;
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

/* One host's summary line into b. */
static void
summary(struct sbuf *b, const struct generation *g, const struct host *h)
{
	const struct host_config *hc = h->cfg;
	int oom = 0;

	sb_printf(b, "host %s:", hc->label);
	if (h->skipped) {
		sb_printf(b, " left out (host_errors = skip)");
		return;
	}
	sb_printf(b, " names=");
	size_t start = b->len;
	for (size_t i = 0; i < h->n_names; i++) {
		if (b->len - start > SUMMARY_NAMES_MAX) {
			sb_printf(b, ",...(%zu more)", h->n_names - i);
			break;
		}
		sb_printf(b, "%s%s", i ? "," : "", h->names[i]);
	}
	if (h->n_names == 0)
		sb_printf(b, "-");
	sb_printf(b, " listen=");
	for (size_t i = 0; i < hc->listen.n; i++)
		sb_printf(b, "%s%s", i ? "," : "", hc->listen.v[i].text);
	sb_printf(b, " backend=");
	for (size_t i = 0; i < hc->backend.n; i++)
		sb_printf(b, "%s%s", i ? "," : "", hc->backend.v[i].text);
	for (size_t i = 0; i < hc->n_alpn_backends; i++) {
		const struct addr_list *pl = &hc->alpn_backends[i].pool;
		sb_printf(b, " backend.%s=", hc->alpn_backends[i].proto);
		for (size_t j = 0; j < pl->n; j++)
			sb_printf(b, "%s%s", j ? "," : "", pl->v[j].text);
	}
	sb_printf(b, " alpn=");
	for (size_t i = 0; i < hc->alpn.n; i++)
		sb_printf(b, "%s%s", i ? "," : "", hc->alpn.v[i]);
	if (hc->alpn.n == 0)
		sb_printf(b, "-");
	char *verify = value_of(g->cfg, hc, K_CLIENT_VERIFY, &oom);
	sb_printf(b, " client_verify=%s", verify ? verify : "?");
	free(verify);
	char *subject;
	if (cert_name(h, TLS_CERT_SUBJECT, &subject) == 0) {
		char expiry[32];

		not_after_text(h, 1, expiry, sizeof(expiry));
		sb_printf(b, " cert=\"%s\" expires=%s", subject ? subject : "?", expiry);
		free(subject);
	}
	if (hc->acme)
		sb_printf(b, " acme=yes%s", h->pending ? " certificate pending" : "");
}

void
dump_host_summaries(const struct generation *g)
{
	if (log_level_current < LOG_LVL_INFO)
		return;
	for (size_t i = 0; i < g->n_hosts; i++) {
		struct sbuf b = { NULL, 0, 0, 0 };

		summary(&b, g, &g->hosts[i]);
		if (!b.oom && b.p != NULL)
			log_info("%s", b.p);
		free(b.p);
	}
}
