/* acme_jws.c: see acme_jws.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_jws.h"

#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

char *
acme_b64url(const unsigned char *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n / 3 * 4 + 5);
	size_t o = 0, i = 0;

	if (out == NULL)
		return NULL;
	for (; i + 2 < n; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		unsigned long v = (unsigned long)p[i] << 16;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static char *
b64url_str(const char *s)
{
	return acme_b64url((const unsigned char *)s, strlen(s));
}

EVP_PKEY *
acme_key_new(int type)
{
	switch (type) {
	case ACME_KEY_EC256:
		return EVP_EC_gen("P-256");
	case ACME_KEY_EC384:
		return EVP_EC_gen("P-384");
	case ACME_KEY_RSA2048:
		return EVP_RSA_gen(2048);
	case ACME_KEY_RSA4096:
		return EVP_RSA_gen(4096);
	default:
		return NULL;
	}
}

/* What a memory BIO holds, as a malloc'ed string. */
static char *
bio_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s;

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

char *
acme_key_pem(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_string(b);
	BIO_free(b);
	return s;
}

EVP_PKEY *
acme_key_from_pem(const char *pem, size_t len)
{
	BIO *b;
	EVP_PKEY *k;

	if (len > 1 << 20)
		return NULL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (b == NULL)
		return NULL;
	/* PEM_read_bio_PrivateKey skips blocks of other types (certificates) */
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return k;
}

/* base64url of a big-number parameter of key, left-padded to pad bytes
 * (0: its own length), as JWK coordinates and RSA members want. */
static char *
bn_param_b64(EVP_PKEY *key, const char *param, size_t pad)
{
	BIGNUM *bn = NULL;
	unsigned char *buf = NULL;
	char *s = NULL;
	size_t n;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
		return NULL;
	n = pad ? pad : (size_t)BN_num_bytes(bn);
	if (n == 0 || (size_t)BN_num_bytes(bn) > n || (buf = malloc(n)) == NULL)
		goto out;
	if (BN_bn2binpad(bn, buf, (int)n) < 0)
		goto out;
	s = acme_b64url(buf, n);
out:
	free(buf);
	BN_free(bn);
	return s;
}

/* EC curve size in bytes (32 or 48), 0 for anything else. */
static size_t
ec_size(EVP_PKEY *key)
{
	if (!EVP_PKEY_is_a(key, "EC"))
		return 0;
	switch (EVP_PKEY_get_bits(key)) {
	case 256:
		return 32;
	case 384:
		return 48;
	default:
		return 0;
	}
}

char *
acme_jwk(EVP_PKEY *key)
{
	char *a = NULL, *b = NULL, *out = NULL;
	size_t sz = ec_size(key), len;

	if (sz) {
		a = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, sz);
		b = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, sz);
	} else if (EVP_PKEY_is_a(key, "RSA")) {
		a = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0);
		b = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0);
	}
	if (a == NULL || b == NULL)
		goto out;
	len = strlen(a) + strlen(b) + 64;
	if ((out = malloc(len)) == NULL)
		goto out;
	/* members in lexicographic order: this is the RFC 7638 input */
	if (sz)
		snprintf(out, len, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		    sz == 32 ? "P-256" : "P-384", a, b);
	else
		snprintf(out, len, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
out:
	free(a);
	free(b);
	return out;
}

char *
acme_jwk_thumbprint(EVP_PKEY *key)
{
	unsigned char md[32];
	char *jwk = acme_jwk(key);
	char *s = NULL;

	if (jwk == NULL)
		return NULL;
	if (EVP_Digest(jwk, strlen(jwk), md, NULL, EVP_sha256(), NULL) == 1)
		s = acme_b64url(md, sizeof(md));
	free(jwk);
	return s;
}

const char *
acme_jws_alg(EVP_PKEY *key)
{
	switch (ec_size(key)) {
	case 32:
		return "ES256";
	case 48:
		return "ES384";
	default:
		return EVP_PKEY_is_a(key, "RSA") ? "RS256" : NULL;
	}
}

/* OpenSSL's DER ECDSA signature as the raw r||s of RFC 7518 3.4. */
static int
ecdsa_der_to_raw(const unsigned char *der, size_t len, size_t sz, unsigned char *raw)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *s;
	int ok;

	if (sig == NULL)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, raw, (int)sz) >= 0 && BN_bn2binpad(s, raw + sz, (int)sz) >= 0;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

/* base64url of the JWS signature of input with key. */
static char *
sign_b64(EVP_PKEY *key, const char *input)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sz = ec_size(key), len = 0;
	unsigned char *sig = NULL, raw[96];
	char *out = NULL;

	if (ctx == NULL)
		return NULL;
	if (EVP_DigestSignInit(ctx, NULL, sz == 48 ? EVP_sha384() : EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)input, strlen(input)) != 1 ||
	    (sig = malloc(len)) == NULL ||
	    EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input, strlen(input)) != 1)
		goto out;
	if (sz) {
		if (ecdsa_der_to_raw(sig, len, sz, raw) == 0)
			out = acme_b64url(raw, 2 * sz);
	} else {
		out = acme_b64url(sig, len);
	}
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}

/* The protected header as compact JSON; the jwk is parsed back from its
 * canonical text so that both agree on the members. */
static char *
protected_header(EVP_PKEY *key, const char *kid, const char *nonce, const char *url)
{
	const char *alg = acme_jws_alg(key);
	json_t *h = NULL, *jwk = NULL;
	char *jwk_text = NULL, *s = NULL;

	if (alg == NULL || nonce == NULL || url == NULL)
		return NULL;
	h = json_pack("{s:s, s:s, s:s}", "alg", alg, "nonce", nonce, "url", url);
	if (h == NULL)
		goto out;
	if (kid != NULL) {
		if (json_object_set_new(h, "kid", json_string(kid)) != 0)
			goto out;
	} else {
		if ((jwk_text = acme_jwk(key)) == NULL ||
		    (jwk = json_loads(jwk_text, 0, NULL)) == NULL ||
		    json_object_set(h, "jwk", jwk) != 0)
			goto out;
	}
	s = json_dumps(h, JSON_COMPACT);
out:
	json_decref(jwk);
	json_decref(h);
	free(jwk_text);
	return s;
}

char *
acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload)
{
	char *hdr = protected_header(key, kid, nonce, url);
	char *p64 = NULL, *pl64 = NULL, *input = NULL, *sig = NULL, *out = NULL;
	json_t *o = NULL;
	size_t n;

	if (hdr == NULL)
		return NULL;
	if ((p64 = b64url_str(hdr)) == NULL || (pl64 = b64url_str(payload ? payload : "")) == NULL)
		goto out;
	n = strlen(p64) + strlen(pl64) + 2;
	if ((input = malloc(n)) == NULL)
		goto out;
	snprintf(input, n, "%s.%s", p64, pl64);
	if ((sig = sign_b64(key, input)) == NULL)
		goto out;
	o = json_pack("{s:s, s:s, s:s}", "protected", p64, "payload", pl64, "signature", sig);
	if (o != NULL)
		out = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	free(sig);
	free(input);
	free(pl64);
	free(p64);
	free(hdr);
	return out;
}

static int
is_b64url(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

char *
acme_key_authz(const char *token, EVP_PKEY *account)
{
	char *tp, *out = NULL;
	size_t n;

	if (token == NULL || !is_b64url(token) || strlen(token) > 1024)
		return NULL;
	if ((tp = acme_jwk_thumbprint(account)) == NULL)
		return NULL;
	n = strlen(token) + strlen(tp) + 2;
	if ((out = malloc(n)) != NULL)
		snprintf(out, n, "%s.%s", token, tp);
	free(tp);
	return out;
}

/* A SAN extension value of dNSNames. */
static GENERAL_NAMES *
san_names(const char *const *names, size_t n)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

	if (gens == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

		if (gn == NULL || ia5 == NULL ||
		    ASN1_STRING_set(ia5, names[i], (int)strlen(names[i])) != 1) {
			GENERAL_NAME_free(gn);
			ASN1_IA5STRING_free(ia5);
			goto err;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
			GENERAL_NAME_free(gn);
			goto err;
		}
	}
	return gens;
err:
	GENERAL_NAMES_free(gens);
	return NULL;
}

/* CN=name when it fits (ub-common-name is 64); otherwise an empty subject,
 * which is fine: the names are in the SAN. */
static int
set_cn(X509_NAME *xn, const char *name)
{
	if (strlen(name) > 64)
		return 1;
	return X509_NAME_add_entry_by_txt(xn, "CN", MBSTRING_ASC, (const unsigned char *)name, -1,
	    -1, 0);
}

static const EVP_MD *
sig_md(EVP_PKEY *key)
{
	return ec_size(key) == 48 ? EVP_sha384() : EVP_sha256();
}

int
acme_csr_der(EVP_PKEY *key, const char *const *names, size_t n, unsigned char **der,
    size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	int dlen, rc = -1;

	*der = NULL;
	if (req == NULL || n == 0)
		goto out;
	if ((gens = san_names(names, n)) == NULL ||
	    X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
	    X509_REQ_set_version(req, 0) != 1 ||
	    set_cn(X509_REQ_get_subject_name(req), names[0]) != 1 ||
	    X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, sig_md(key)) <= 0)
		goto out;
	if ((dlen = i2d_X509_REQ(req, der)) <= 0)
		goto out;
	*len = (size_t)dlen;
	rc = 0;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	return rc;
}

/* The critical acmeIdentifier extension: its extnValue holds the DER of an
 * OCTET STRING (tag 04, length 32) of the digest, so the OCTET STRING is
 * wrapped twice. */
static int
add_acme_identifier(X509 *x, const char *key_authz)
{
	unsigned char der[2 + 32];
	ASN1_OBJECT *obj = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
	ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int ok = 0;

	der[0] = 0x04;
	der[1] = 32;
	if (obj == NULL || val == NULL ||
	    EVP_Digest(key_authz, strlen(key_authz), der + 2, NULL, EVP_sha256(), NULL) != 1 ||
	    ASN1_OCTET_STRING_set(val, der, sizeof(der)) != 1 ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, val)) == NULL)
		goto out;
	ok = X509_add_ext(x, ext, -1) == 1;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(val);
	ASN1_OBJECT_free(obj);
	return ok ? 0 : -1;
}

static int
random_serial(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn = NULL;
	int ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[0] &= 0x7f;	/* positive, and 16 bytes at most */
	bn = BN_bin2bn(r, sizeof(r), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* The signed RFC 8737 certificate for name with key. */
static X509 *
challenge_cert(const char *name, const char *key_authz, EVP_PKEY *key)
{
	X509 *x = X509_new();
	GENERAL_NAMES *gens = NULL;
	const char *one[1] = { name };

	if (x == NULL)
		return NULL;
	if (X509_set_version(x, 2) != 1 || random_serial(x) != 0 ||
	    set_cn(X509_get_subject_name(x), name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -86400) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    (gens = san_names(one, 1)) == NULL ||
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
	    add_acme_identifier(x, key_authz) != 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		x = NULL;
	}
	GENERAL_NAMES_free(gens);
	return x;
}

char *
acme_challenge_pem(const char *name, const char *key_authz)
{
	EVP_PKEY *key = acme_key_new(ACME_KEY_EC256);
	X509 *x = NULL;
	BIO *b = NULL;
	char *s = NULL;

	if (key == NULL || name == NULL || key_authz == NULL)
		goto out;
	if ((x = challenge_cert(name, key_authz, key)) == NULL || (b = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (PEM_write_bio_X509(b, x) == 1 &&
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_string(b);
out:
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(key);
	return s;
}

char *
acme_ari_id(const unsigned char *aki, size_t aki_len, const unsigned char *serial,
    size_t serial_len)
{
	char *a, *b, *out = NULL;
	size_t n;

	if (aki == NULL || aki_len == 0 || serial == NULL || serial_len == 0)
		return NULL;
	a = acme_b64url(aki, aki_len);
	b = acme_b64url(serial, serial_len);
	if (a != NULL && b != NULL) {
		n = strlen(a) + strlen(b) + 2;
		if ((out = malloc(n)) != NULL)
			snprintf(out, n, "%s.%s", a, b);
	}
	free(a);
	free(b);
	return out;
}
