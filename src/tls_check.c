/*
 * tls_check.c: what a host's certificate says and what is wrong with it, at
 * load: its names and expiry, the order and completeness of its chain, the
 * `names` it fails to cover, whether the key belongs to it. Each problem
 * goes to the diag list at the line of the key concerned; nothing here
 * keeps state. Also the text of OpenSSL's error queue, for every module's
 * messages (tls_error_string, tls.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls_int.h"

#define EXPIRY_WARN_DAYS 14

const char *
tls_error_string(char *buf, size_t n)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;	/* the last one is usually the most specific */
	if (last == 0)
		snprintf(buf, n, "unknown error");
	else
		ERR_error_string_n(last, buf, n);
	/* "error:0A000086:SSL routines::certificate verify failed": keep the reason */
	const char *r = strstr(buf, "::");
	if (r != NULL)
		memmove(buf, r + 2, strlen(r + 2) + 1);
	return buf;
}

time_t
tls_cert_not_after(const X509 *leaf)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1) {
		ERR_clear_error();
		return 0;
	}
	return timegm(&tm);
}

void
tls_check_validity(const struct host_config *c, const X509 *leaf, struct diag *d)
{
	const ASN1_TIME *na = X509_get0_notAfter(leaf), *nb = X509_get0_notBefore(leaf);
	int days, secs;

	if (ASN1_TIME_diff(&days, &secs, NULL, na) == 1) {
		if (days < 0 || secs < 0)
			diag_warn_at(d, c->loc[K_CERT], "CERTIFICATE EXPIRED: host '%s' certificate "
			    "%s expired %d days ago", c->label, c->cert, -days);
		else if (days < EXPIRY_WARN_DAYS)
			diag_warn_at(d, c->loc[K_CERT], "CERTIFICATE EXPIRES SOON: host '%s' "
			    "certificate %s expires in %d days", c->label, c->cert, days);
	}
	if (ASN1_TIME_diff(&days, &secs, NULL, nb) == 1 && (days > 0 || secs > 0))
		diag_warn_at(d, c->loc[K_CERT], "host '%s' certificate %s is not valid yet",
		    c->label, c->cert);
}

/* The chain must be leaf first, each certificate issued by the next. */
int
tls_check_chain_order(const struct host_config *c, X509 *leaf, STACK_OF(X509) *chain,
    struct diag *d)
{
	X509 *prev = leaf;

	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		if (X509_check_issued(x, prev) != X509_V_OK) {
			diag_error_at(d, c->loc[K_CERT], "cert: %s: certificate %d of the chain "
			    "did not issue certificate %d (order must be leaf first, then each "
			    "issuer)", c->cert, i + 2, i + 1);
			return -1;
		}
		prev = x;
	}
	return 0;
}

/* A certificate name on one line, as RFC 2253 writes it ("CN=R3,O=Let's
 * Encrypt,C=US"; control characters and bytes above 0x7f escaped). */
int
tls_name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long got = -1;

	if (len > 0)
		buf[0] = '\0';
	if (b != NULL && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
	    (got = BIO_get_mem_data(b, &data)) >= 0 && len > 0) {
		size_t copy = (size_t)got < len - 1 ? (size_t)got : len - 1;
		memcpy(buf, data, copy);
		buf[copy] = '\0';
	}
	BIO_free(b);
	ERR_clear_error();
	return got < 0 || got > 0x7fffffffL ? -1 : (int)got;
}

/*
 * certbot's cert.pem (the leaf alone) instead of fullchain.pem: clients
 * that do not already have the intermediate fail to verify. The file is
 * incomplete when it holds no CA certificate and its leaf was issued by
 * someone else (not self-signed). A file that stops at an intermediate is
 * complete, though its last certificate's issuer (the root) is absent:
 * clients have the roots, and servers are not meant to send them.
 */
void
tls_check_chain_complete(const struct host_config *c, X509 *leaf, STACK_OF(X509) *chain,
    struct diag *d)
{
	X509 *last = leaf;
	char issuer[256];

	for (int i = 0; i < sk_X509_num(chain); i++) {
		last = sk_X509_value(chain, i);
		if (X509_check_ca(last) != 0)
			return;
	}
	if (X509_check_ca(leaf) != 0 || X509_self_signed(leaf, 0) != 0) {
		ERR_clear_error();
		return;	/* a CA as the server's certificate, or a self-signed one */
	}
	(void)tls_name_text(X509_get_issuer_name(last), issuer, sizeof(issuer));
	diag_warn_at(d, c->loc[K_CERT], "certificate chain incomplete: issuer \"%s\" of the "
	    "last certificate in %s is not in the file (certbot: use fullchain.pem, not "
	    "cert.pem)", issuer, c->cert);
}

/* Is the wildcard name (a `names` entry "*.suffix") literally among the
 * certificate's DNS names, or its CN when it has none (as clients look)? */
static int
cert_has_wildcard(X509 *leaf, const GENERAL_NAMES *sans, const char *name)
{
	size_t len = strlen(name);
	int had_dns = 0;

	for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		had_dns = 1;
		if ((size_t)ASN1_STRING_length(gn->d.dNSName) == len &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(gn->d.dNSName), name,
		    len) == 0)
			return 1;
	}
	if (!had_dns) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
		    cn, sizeof(cn));
		ERR_clear_error();
		return n > 0 && (size_t)n == len && strncasecmp(cn, name, len) == 0;
	}
	return 0;
}

/*
 * `names` entries the certificate does not cover: routed here, but clients
 * refuse the certificate for them. A host name is checked as clients check
 * it (X509_check_host: DNS names, the CN only when there is none; a
 * wildcard covers exactly one whole first label); a wildcard entry must be
 * in the certificate as such. One warning lists them all.
 */
void
tls_check_names_covered(const struct host_config *c, X509 *leaf, struct diag *d)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	char *list = NULL;
	size_t len = 0, cap = 1, n = 0;

	for (size_t i = 0; i < c->names.n; i++)
		cap += strlen(c->names.v[i]) + 2;
	if ((list = malloc(cap)) == NULL)
		goto out;
	list[0] = '\0';
	for (size_t i = 0; i < c->names.n; i++) {
		const char *name = c->names.v[i];
		int covered = strncmp(name, "*.", 2) == 0 ?
		    cert_has_wildcard(leaf, sans, name) :
		    X509_check_host(leaf, name, strlen(name),
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 0;	/* <0: no verdict */
		if (covered)
			continue;
		len += (size_t)snprintf(list + len, cap - len, "%s%s", n++ ? ", " : "", name);
	}
	if (n > 0)
		diag_warn_at(d, c->loc[K_NAMES], "host '%s': the certificate in %s does not cover "
		    "%s (clients will refuse it for %s)", c->label, c->cert, list,
		    n == 1 ? "this name" : "these names");
out:
	ERR_clear_error();
	free(list);
	GENERAL_NAMES_free(sans);
}

/*
 * A key that belongs to a later certificate of the file means the file is
 * out of order, which is reported as such rather than as a mismatch.
 */
int
tls_check_key(const struct host_config *c, X509 *leaf, STACK_OF(X509) *chain,
    EVP_PKEY *key, struct diag *d)
{
	if (X509_check_private_key(leaf, key) == 1)
		return 0;
	ERR_clear_error();
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (X509_check_private_key(sk_X509_value(chain, i), key) == 1) {
			diag_error_at(d, c->loc[K_CERT], "cert: %s: the key %s belongs to "
			    "certificate %d of the file, not the first (order must be leaf "
			    "first, then each issuer)", c->cert, c->key, i + 2);
			return -1;
		}
	ERR_clear_error();
	diag_error_at(d, c->loc[K_KEY], "key: %s does not match the certificate in %s",
	    c->key, c->cert);
	return -1;
}

int
tls_host_add_name(struct host *h, const char *raw, size_t len)
{
	char norm[SNI_NAME_MAX + 1];
	char **v;

	if (sni_normalize(raw, len, 1, norm) < 0)
		return 0;	/* not a DNS name we can route on */
	for (size_t i = 0; i < h->n_names; i++)
		if (strcmp(h->names[i], norm) == 0)
			return 0;
	if ((v = realloc(h->names, (h->n_names + 1) * sizeof(*v))) == NULL)
		return -1;
	h->names = v;
	if ((v[h->n_names] = strdup(norm)) == NULL)
		return -1;
	h->n_names++;
	return 0;
}

void
tls_names_from_cert(struct host *h, X509 *leaf)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	int had_dns = 0;

	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		had_dns = 1;
		tls_host_add_name(h, (const char *)ASN1_STRING_get0_data(gn->d.dNSName),
		    (size_t)ASN1_STRING_length(gn->d.dNSName));
	}
	GENERAL_NAMES_free(sans);
	if (!had_dns) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
		    cn, sizeof(cn));
		if (n > 0)
			tls_host_add_name(h, cn, (size_t)n);
	}
}
