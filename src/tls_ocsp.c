/*
 * tls_ocsp.c: ocsp_file, the OCSP response a host staples. Checked at load
 * (it parses, its status is successful, it speaks of the host's leaf, its
 * signature verifies with the leaf's issuer) and kept in the host's
 * struct tls_host for tls_status_cb (tls_accept.c) to staple.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "tls_int.h"

#define OCSP_MAX_SIZE (1024 * 1024)
#define OCSP_SKEW_SECS 300	/* a thisUpdate this far ahead of our clock is accepted */

static const char *
asn1_time_text(const ASN1_TIME *t, char *buf, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len = 0;

	buf[0] = '\0';
	if (b != NULL && ASN1_TIME_print(b, t) == 1 && (len = BIO_read(b, buf, (int)n - 1)) > 0)
		buf[len] = '\0';
	BIO_free(b);
	return buf;
}

/*
 * ocsp_file: a DER OCSP response, checked here (it parses, its status is
 * successful, it speaks of the leaf, its signature verifies with the leaf's
 * issuer, the next certificate of the chain) and kept to staple. An expired
 * response, or one not valid yet, is a warning and is not stapled.
 */
int
tls_ocsp_load(struct tls_host *t, const struct host_config *c, struct diag *d)
{
	struct loc at = c->loc[K_OCSP_FILE];
	STACK_OF(X509) *signers = NULL;
	X509 *leaf = t->leaf;
	X509 *issuer;
	X509_STORE *store = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	int status = -1, reason, rc = -1, found = 0;
	char err[256], t1[64];

	if (tls_readable("ocsp_file", c->ocsp_file, at, d) != 0)
		return -1;
	if (tls_read_small_file(c->ocsp_file, OCSP_MAX_SIZE, &der, &len) != 0) {
		diag_error_at(d, at, "ocsp_file: cannot read %s: %s", c->ocsp_file,
		    errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
		return -1;
	}
	p = der;
	if (len == 0 || (resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		ERR_clear_error();
		diag_error_at(d, at, "ocsp_file: %s is not a DER OCSP response", c->ocsp_file);
		goto out;
	}
	if ((status = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		diag_error_at(d, at, "ocsp_file: %s: the response status is '%s', not "
		    "'successful'", c->ocsp_file, OCSP_response_status_str(status));
		goto out;
	}
	if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
		ERR_clear_error();
		diag_error_at(d, at, "ocsp_file: %s holds no basic OCSP response", c->ocsp_file);
		goto out;
	}
	if (sk_X509_num(t->chain) <= 0) {
		diag_error_at(d, at, "ocsp_file: the cert file %s holds no issuer certificate "
		    "after the leaf; it is needed to match the OCSP response", c->cert);
		goto out;
	}
	issuer = sk_X509_value(t->chain, 0);
	/* the leaf's CertID with the hash algorithm each single response uses */
	for (int i = 0; !found && i < OCSP_resp_count(bs); i++) {
		const OCSP_CERTID *sid = OCSP_SINGLERESP_get0_id(OCSP_resp_get0(bs, i));
		ASN1_OBJECT *alg = NULL;
		const EVP_MD *md;
		OCSP_CERTID *id;

		/* OCSP_id_get0_info only reads the id, but takes it non-const */
		if (sid == NULL || OCSP_id_get0_info(NULL, &alg, NULL, NULL,
		    (OCSP_CERTID *)(uintptr_t)sid) != 1 || (md = EVP_get_digestbyobj(alg)) == NULL)
			continue;
		if ((id = OCSP_cert_to_id(md, leaf, issuer)) == NULL)
			continue;
		found = OCSP_resp_find_status(bs, id, &status, &reason, &revtime, &thisupd,
		    &nextupd) == 1;
		OCSP_CERTID_free(id);
	}
	ERR_clear_error();
	if (!found) {
		char serial[128] = "?";
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		if (hex != NULL)
			snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		diag_error_at(d, at, "ocsp_file: %s is not a response for the certificate of "
		    "%s (serial %s, issued by the next certificate of that file)", c->ocsp_file,
		    c->cert, serial);
		goto out;
	}
	/* signed by the issuer, or by a responder it delegated to */
	if ((signers = sk_X509_new_null()) == NULL || !sk_X509_push(signers, issuer) ||
	    (store = X509_STORE_new()) == NULL || X509_STORE_add_cert(store, issuer) != 1)
		goto out;
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (OCSP_basic_verify(bs, signers, store, OCSP_TRUSTOTHER) <= 0) {
		diag_error_at(d, at, "ocsp_file: %s: the response's signature does not verify "
		    "with the issuer of %s: %s", c->ocsp_file, c->cert,
		    tls_error_string(err, sizeof(err)));
		goto out;
	}
	rc = 0;
	if (status == V_OCSP_CERTSTATUS_REVOKED)
		diag_warn_at(d, at, "host '%s': CERTIFICATE REVOKED: the OCSP response in %s "
		    "says its certificate was revoked on %s", c->label, c->ocsp_file,
		    revtime ? asn1_time_text(revtime, t1, sizeof(t1)) : "?");
	else if (status != V_OCSP_CERTSTATUS_GOOD)
		diag_warn_at(d, at, "host '%s': the OCSP response in %s gives the status of its "
		    "certificate as unknown", c->label, c->ocsp_file);
	if (nextupd != NULL && X509_cmp_time(nextupd, NULL) <= 0) {
		diag_warn_at(d, at, "host '%s': the OCSP response in %s expired on %s "
		    "(nextUpdate); it is not stapled", c->label, c->ocsp_file,
		    asn1_time_text(nextupd, t1, sizeof(t1)));
		goto out;
	}
	time_t soon = time(NULL) + OCSP_SKEW_SECS;
	if (thisupd != NULL && X509_cmp_time(thisupd, &soon) > 0) {
		diag_warn_at(d, at, "host '%s': the OCSP response in %s is not valid before %s "
		    "(thisUpdate); it is not stapled", c->label, c->ocsp_file,
		    asn1_time_text(thisupd, t1, sizeof(t1)));
		goto out;
	}
	if (nextupd != NULL) {
		struct tm tm;
		if (ASN1_TIME_to_tm(nextupd, &tm) == 1)
			t->ocsp_next_update = timegm(&tm);
	}
	t->ocsp = der;
	t->ocsp_len = len;
	der = NULL;
out:
	ERR_clear_error();
	free(der);
	X509_STORE_free(store);
	sk_X509_free(signers);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return rc;
}
