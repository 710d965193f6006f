/*
 * tls_accept.c: what runs during a connection's handshake (see tls.h): the
 * ClientHello callback that switches the connection to its host, ALPN,
 * client certificate verification and OCSP stapling; and the per-worker
 * state the callbacks count in.
 *
 * The callbacks find the connection's struct tls_info through the SSL, and
 * from it the host, the listener and this worker's state: nothing here
 * changes the generation, which every worker shares read-only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "tls_int.h"

int tls_info_idx = -1;

int
tls_init(void)
{
	if (tls_info_idx < 0)
		tls_info_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	return tls_info_idx < 0 ? -1 : 0;
}

/* ---- one worker's state ------------------------------------------------------ */

struct tls_worker *
tls_worker_new(const struct generation *g)
{
	struct tls_worker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	/* calloc(0) may return NULL: a generation always has a host, but the
	 * array is never read without one */
	if ((w->load = calloc(g->n_hosts ? g->n_hosts : 1, sizeof(*w->load))) == NULL) {
		free(w);
		return NULL;
	}
	w->hosts = g->hosts;
	w->n_hosts = g->n_hosts;
	w->base = g->tls;
	w->key_period = -1;
	return w;
}

void
tls_worker_free(struct tls_worker *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n_hosts; i++)
		tls_sess_ring_free(w->load[i].sessions);
	free(w->load);
	OPENSSL_cleanse(w->keys, sizeof(w->keys));
	free(w);
}

/* ---- one connection ---------------------------------------------------------- */

SSL *
tls_ssl_new(const struct tls_base *b, struct tls_info *info)
{
	SSL *ssl = SSL_new(b->ctx);

	if (ssl != NULL)
		SSL_set_ex_data(ssl, tls_info_idx, info);
	return ssl;
}

const char *
tls_fail_text(const struct tls_info *info, char *buf, size_t n)
{
	switch (info->fail) {
	case TLS_FAIL_NONE:
		return NULL;
	case TLS_FAIL_UNKNOWN_NAME:
		return "unknown server name";
	case TLS_FAIL_NO_NAME:
		return "no server name and no default host";
	case TLS_FAIL_HOST_FULL:
		return "host max_connections reached";
	case TLS_FAIL_HOST_CERT:
		return "cannot set the host's certificate";
	case TLS_FAIL_NO_ALPN:
		return "no common ALPN protocol";
	case TLS_FAIL_CLIENT_CERT:
		snprintf(buf, n, "client certificate: %s", info->fail_detail);
		return buf;
	case TLS_FAIL_NOT_ALLOWED:
		return "client certificate not on the allow-list";
	case TLS_FAIL_PENDING:
		return "certificate pending";
	case TLS_FAIL_ACME_REFUSED:
		return "acme-tls/1 without a pending challenge";
	case TLS_FAIL_ACME_CERT:
		return "cannot set the acme-tls/1 certificate";
	}
	return "?";
}

void
tls_release(struct tls_info *info)
{
	struct tls_worker *w = info->worker;

	if (!info->counted)
		return;
	w->load[info->host - w->hosts].active--;
	info->counted = 0;
}

/* Extract the host_name from a server_name extension. Returns its length
 * (0: none or malformed) and points *name at it. */
static size_t
sni_from_ext(const unsigned char *p, size_t len, const unsigned char **name)
{
	size_t list, n;

	if (len < 2)
		return 0;
	list = ((size_t)p[0] << 8) | p[1];
	if (list != len - 2)
		return 0;
	p += 2;
	while (list >= 3) {
		n = ((size_t)p[1] << 8) | p[2];
		if (n > list - 3)
			return 0;
		if (p[0] == TLSEXT_NAMETYPE_host_name) {
			*name = p + 3;
			return n;
		}
		list -= 3 + n;
		p += 3 + n;
	}
	return 0;
}

/*
 * Move ssl to host h: its settings context (shared by the hosts with the
 * same TLS settings), then its own certificate and session-id context, which
 * live on the connection. Returns 0, or -1 if OpenSSL refused (out of memory).
 */
static int
switch_host(SSL *ssl, const struct host *h)
{
	const struct tls_host *t = h->tls;
	SSL_CTX *ctx = t->ctx;
	STACK_OF(X509_NAME) *cas;

	SSL_set_SSL_CTX(ssl, ctx);
	/* SSL_set_SSL_CTX moves the certificate and session-id context only. */
	SSL_clear_options(ssl, SSL_get_options(ssl) ^ SSL_CTX_get_options(ctx));
	SSL_set_options(ssl, SSL_CTX_get_options(ctx));
	SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(ctx));
	SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(ctx));
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
	cas = SSL_CTX_get_client_CA_list(ctx);
	if (cas != NULL && sk_X509_NAME_num(cas) > 0)
		SSL_set_client_CA_list(ssl, SSL_dup_CA_list(cas));
	/* the SSL copied its groups from the base context at SSL_new */
	if (!t->groups_as_base)
		SSL_set1_groups_list(ssl, t->groups);
	/* before OpenSSL looks at a session or ticket: a session made under
	 * another host has another context and is not resumed here */
	SSL_set_num_tickets(ssl, (size_t)h->cfg->tls13_tickets);
	if (SSL_set_session_id_context(ssl, t->sid, sizeof(t->sid)) != 1 ||
	    SSL_use_cert_and_key(ssl, t->leaf, t->key, t->chain, 1) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int
tls_client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_info *info = tls_info_of(ssl);
	const unsigned char *ext, *name = NULL;
	size_t extlen, n = 0;
	const struct host *h = NULL;
	struct tls_host_load *load;

	(void)arg;
	if (info == NULL || info->listener == NULL || info->worker == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (info->host != NULL)
		return SSL_CLIENT_HELLO_SUCCESS;	/* second hello after HelloRetryRequest */
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &extlen) == 1)
		n = sni_from_ext(ext, extlen, &name);
	if (n > 0) {
		size_t keep = n < sizeof(info->sni) - 1 ? n : sizeof(info->sni) - 1;
		/* for the log: what no host name holds (blank, NUL, '"') must not
		 * split or forge its fields */
		for (size_t i = 0; i < keep; i++)
			info->sni[i] = name[i] > 0x20 && name[i] < 0x7f && name[i] != '"' ?
			    (char)name[i] : '?';
		info->sni[keep] = '\0';
		h = sni_table_lookup(info->listener->sni, (const char *)name, n);
	}
	/* a validator's hello, or a refusal: never a host's certificate */
	if (tls_acme_offered(ssl))
		return tls_acme_hello(ssl, info, name, n, al);
	if (h == NULL)
		h = info->listener->default_host;
	if (h == NULL) {
		info->fail = n > 0 ? TLS_FAIL_UNKNOWN_NAME : TLS_FAIL_NO_NAME;
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	info->host = h;
	if (h->pending) {
		/* an ACME host before its first certificate: never another's */
		info->fail = TLS_FAIL_PENDING;
		*al = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	load = &info->worker->load[h - info->worker->hosts];
	if (h->max_active > 0 && load->active >= h->max_active) {
		info->fail = TLS_FAIL_HOST_FULL;
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (switch_host(ssl, h) != 0) {
		info->fail = TLS_FAIL_HOST_CERT;
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	load->active++;
	info->counted = 1;
	return SSL_CLIENT_HELLO_SUCCESS;
}

int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned inlen, void *arg)
{
	struct tls_info *info = tls_info_of(ssl);
	const struct tls_host *t = info != NULL && info->host != NULL ? info->host->tls : NULL;
	unsigned char *sel;

	(void)arg;
	if (info != NULL && info->acme_challenge)
		return tls_acme_alpn(out, outlen, in, inlen);
	if (t == NULL || t->alpn_wire == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* iterates over our list first: the server's preference wins */
	if (SSL_select_next_proto(&sel, outlen, t->alpn_wire, (unsigned)t->alpn_wire_len,
	    in, inlen) != OPENSSL_NPN_NEGOTIATED) {
		info->fail = TLS_FAIL_NO_ALPN;
		return SSL_TLSEXT_ERR_ALERT_FATAL;	/* no_application_protocol */
	}
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Certificate verification of a client: OpenSSL's verdict, then the host's
 * allow-list for the leaf. The reason goes to the access log. OpenSSL 3.0
 * derives the alert from the X509 error and has no mapping to access_denied,
 * so a client off the allow-list gets handshake_failure.
 */
int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_info *info = ssl ? tls_info_of(ssl) : NULL;

	if (!ok) {
		if (info != NULL && info->fail == TLS_FAIL_NONE) {
			snprintf(info->fail_detail, sizeof(info->fail_detail), "%s",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
			info->fail = TLS_FAIL_CLIENT_CERT;
		}
		return 0;
	}
	/* client_allow, parsed by the config loader: NULL allows any verified
	 * client */
	if (X509_STORE_CTX_get_error_depth(xs) == 0 && info != NULL && info->host != NULL &&
	    !clientauth_allow_match(info->host->cfg->client_allow_list,
	    X509_STORE_CTX_get_current_cert(xs))) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		info->fail = TLS_FAIL_NOT_ALLOWED;
		return 0;
	}
	return 1;
}

/*
 * OpenSSL calls the keylog and status callbacks of the SSL's current context
 * (ssl->ctx), which switch_host has made the host's settings context: only
 * the contexts of hosts that set keylog_file or ocsp_file have them (the
 * keys are part of the settings, tls.c profile_key), and the callbacks find
 * the host through the connection. The keylog callback is in tls_keylog.c.
 */

/* Staple the host's response when the client asked (status_request). */
int
tls_status_cb(SSL *ssl, void *arg)
{
	const struct tls_info *info = tls_info_of(ssl);
	const struct tls_host *t = info != NULL && info->host != NULL ? info->host->tls : NULL;
	unsigned char *copy;

	(void)arg;
	if (t == NULL || t->ocsp == NULL ||
	    (t->ocsp_next_update != 0 && time(NULL) > t->ocsp_next_update))
		return SSL_TLSEXT_ERR_NOACK;	/* none, or expired since it was read */
	/* OpenSSL frees the response with the connection: give it a copy */
	if ((copy = OPENSSL_memdup(t->ocsp, t->ocsp_len)) == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)t->ocsp_len) != 1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}
