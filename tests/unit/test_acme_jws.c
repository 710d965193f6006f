/*
 * test_acme_jws.c: the ACME client's cryptography (acme_jws.c): base64url,
 * the RFC 7638 thumbprint against the RFC's own example, JWS signatures
 * verified back with OpenSSL (ES256, ES384, RS256), key authorizations,
 * the CSR and the RFC 8737 challenge certificate, the RFC 9773 certID.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_jws.h"

/* RFC 7638 section 3.1 */
static const char rfc_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
    "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAt"
    "aSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPk"
    "sINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char rfc_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* base64url (no padding) decoded into a malloc'ed buffer. */
static unsigned char *
unb64url(const char *s, size_t *len)
{
	size_t n = strlen(s), o = 0;
	unsigned char *out = malloc(n * 3 / 4 + 3);
	unsigned long acc = 0;
	int bits = 0;

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr(tab, s[i]);
		assert_non_null(p);
		acc = acc << 6 | (unsigned long)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	*len = o;
	return out;
}

static void
test_b64url(void **state)
{
	static const struct { const char *in, *out; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "\xfb\xff", "-_8" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = acme_b64url((const unsigned char *)v[i].in, strlen(v[i].in));
		assert_string_equal(s, v[i].out);
		free(s);
	}
}

static EVP_PKEY *
rsa_public(const char *n64, const char *e64)
{
	size_t nl, el;
	unsigned char *nb = unb64url(n64, &nl), *eb = unb64url(e64, &el);
	BIGNUM *n = BN_bin2bn(nb, (int)nl, NULL), *e = BN_bin2bn(eb, (int)el, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *key = NULL;

	assert_non_null(ctx);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	free(nb);
	free(eb);
	return key;
}

static void
test_thumbprint_rfc7638(void **state)
{
	EVP_PKEY *key = rsa_public(rfc_n, "AQAB");
	char *jwk = acme_jwk(key), *tp = acme_jwk_thumbprint(key);
	char want[512];

	snprintf(want, sizeof(want), "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", rfc_n);
	assert_string_equal(jwk, want);
	assert_string_equal(tp, rfc_thumbprint);
	assert_string_equal(acme_jws_alg(key), "RS256");
	free(jwk);
	free(tp);
	EVP_PKEY_free(key);
}

/* The EC JWK: members in order, coordinates padded to the curve size. */
static void
test_jwk_ec(void **state)
{
	static const struct { int type; const char *crv, *alg; size_t sz; } v[] = {
		{ ACME_KEY_EC256, "P-256", "ES256", 32 }, { ACME_KEY_EC384, "P-384", "ES384", 48 },
	};
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *key = acme_key_new(v[i].type);
		char *jwk = acme_jwk(key);
		json_t *j = json_loads(jwk, 0, NULL);
		size_t len;
		unsigned char *x;

		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "crv")), v[i].crv);
		assert_string_equal(json_string_value(json_object_get(j, "kty")), "EC");
		x = unb64url(json_string_value(json_object_get(j, "x")), &len);
		assert_int_equal(len, v[i].sz);
		free(x);
		x = unb64url(json_string_value(json_object_get(j, "y")), &len);
		assert_int_equal(len, v[i].sz);
		free(x);
		/* RFC 7638 order, no whitespace */
		assert_true(strncmp(jwk, "{\"crv\":\"", 8) == 0);
		assert_null(strchr(jwk, ' '));
		assert_string_equal(acme_jws_alg(key), v[i].alg);
		json_decref(j);
		free(jwk);
		EVP_PKEY_free(key);
	}
}

/* Verify a flattened JWS with OpenSSL and return its decoded protected
 * header (json) and payload (malloc'ed). */
static json_t *
verify_jws(const char *jws, EVP_PKEY *key, char **payload)
{
	json_t *o = json_loads(jws, 0, NULL), *hdr;
	const char *p64, *pl64, *s64;
	unsigned char *sig, *h, *pl;
	size_t siglen, hlen, pllen;
	char input[8192];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_sha256();

	assert_non_null(o);
	p64 = json_string_value(json_object_get(o, "protected"));
	pl64 = json_string_value(json_object_get(o, "payload"));
	s64 = json_string_value(json_object_get(o, "signature"));
	assert_non_null(p64);
	assert_non_null(pl64);
	assert_non_null(s64);
	snprintf(input, sizeof(input), "%s.%s", p64, pl64);
	sig = unb64url(s64, &siglen);
	if (EVP_PKEY_is_a(key, "EC")) {
		/* back from the raw r||s to the DER OpenSSL verifies */
		size_t sz = siglen / 2;
		ECDSA_SIG *es = ECDSA_SIG_new();
		unsigned char *der = NULL;
		int dl;

		assert_int_equal(sz, EVP_PKEY_get_bits(key) == 384 ? 48 : 32);
		if (sz == 48)
			md = EVP_sha384();
		assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)sz, NULL),
		    BN_bin2bn(sig + sz, (int)sz, NULL)), 1);
		dl = i2d_ECDSA_SIG(es, &der);
		assert_true(dl > 0);
		free(sig);
		sig = malloc((size_t)dl);
		memcpy(sig, der, (size_t)dl);
		siglen = (size_t)dl;
		OPENSSL_free(der);
		ECDSA_SIG_free(es);
	}
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, siglen, (unsigned char *)input,
	    strlen(input)), 1);
	h = unb64url(p64, &hlen);
	hdr = json_loadb((const char *)h, hlen, 0, NULL);
	assert_non_null(hdr);
	pl = unb64url(pl64, &pllen);
	*payload = calloc(1, pllen + 1);
	memcpy(*payload, pl, pllen);
	free(pl);
	free(h);
	free(sig);
	EVP_MD_CTX_free(ctx);
	json_decref(o);
	return hdr;
}

static void
jws_roundtrip(int type, const char *alg)
{
	EVP_PKEY *key = acme_key_new(type);
	char *jws, *payload, *jwk = acme_jwk(key);
	json_t *hdr, *j;

	assert_non_null(key);
	/* with jwk (newAccount) */
	jws = acme_jws(key, NULL, "nonce-1", "https://ca/new-acct", "{\"a\":1}");
	assert_non_null(jws);
	hdr = verify_jws(jws, key, &payload);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(hdr, "nonce")), "nonce-1");
	assert_string_equal(json_string_value(json_object_get(hdr, "url")), "https://ca/new-acct");
	assert_null(json_object_get(hdr, "kid"));
	j = json_loads(jwk, 0, NULL);
	assert_true(json_equal(json_object_get(hdr, "jwk"), j));
	assert_string_equal(payload, "{\"a\":1}");
	json_decref(j);
	json_decref(hdr);
	free(payload);
	free(jws);
	/* with kid, POST-as-GET: empty payload */
	jws = acme_jws(key, "https://ca/acct/1", "n\"2", "https://ca/order/1", NULL);
	hdr = verify_jws(jws, key, &payload);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "https://ca/acct/1");
	assert_string_equal(json_string_value(json_object_get(hdr, "nonce")), "n\"2");
	assert_null(json_object_get(hdr, "jwk"));
	assert_string_equal(payload, "");
	json_decref(hdr);
	free(payload);
	free(jws);
	free(jwk);
	EVP_PKEY_free(key);
}

static void
test_jws_es256(void **state)
{
	jws_roundtrip(ACME_KEY_EC256, "ES256");
}

static void
test_jws_es384(void **state)
{
	jws_roundtrip(ACME_KEY_EC384, "ES384");
}

static void
test_jws_rs256(void **state)
{
	jws_roundtrip(ACME_KEY_RSA2048, "RS256");
}

static void
test_key_pem_roundtrip(void **state)
{
	EVP_PKEY *key = acme_key_new(ACME_KEY_EC256), *back;
	char *pem = acme_key_pem(key);
	char *tp1 = acme_jwk_thumbprint(key), *tp2;

	assert_non_null(pem);
	back = acme_key_from_pem(pem, strlen(pem));
	assert_non_null(back);
	tp2 = acme_jwk_thumbprint(back);
	assert_string_equal(tp1, tp2);
	assert_null(acme_key_from_pem("garbage", 7));
	assert_null(acme_key_new(99));
	free(tp1);
	free(tp2);
	free(pem);
	EVP_PKEY_free(back);
	EVP_PKEY_free(key);
}

static void
test_key_authz(void **state)
{
	EVP_PKEY *key = rsa_public(rfc_n, "AQAB");
	char *ka = acme_key_authz("tok-EN_1", key);

	assert_string_equal(ka, "tok-EN_1.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	free(ka);
	/* a token that is not base64url never reaches a file or a digest */
	assert_null(acme_key_authz("../x", key));
	assert_null(acme_key_authz("", key));
	assert_null(acme_key_authz(NULL, key));
	EVP_PKEY_free(key);
}

static void
test_csr(void **state)
{
	const char *names[] = { "shop.example.org", "www.shop.example.org", "x.example.net" };
	EVP_PKEY *key = acme_key_new(ACME_KEY_EC256);
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len;
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens = NULL;

	assert_int_equal(acme_csr_der(key, names, 3, &der, &len), 0);
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)len);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, key), 1);
	exts = X509_REQ_get_extensions(req);
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		if (OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i))) ==
		    NID_subject_alt_name)
			gens = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, i));
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
	for (int i = 0; i < 3; i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		assert_int_equal(gn->type, GEN_DNS);
		assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), names[i]);
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void
test_challenge_cert(void **state)
{
	const char *ka = "tok.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	char *pem = acme_challenge_pem("shop.example.org", ka);
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	unsigned char want[34];
	int idx;
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *val;

	assert_non_null(pem);
	/* the certificate comes first, then the key (acme.h's layout) */
	assert_true(strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
	assert_non_null(x);
	assert_non_null(key);
	assert_int_equal(X509_check_private_key(x, key), 1);
	assert_int_equal(X509_verify(x, key), 1);	/* self-signed */
	assert_int_equal(X509_check_host(x, "shop.example.org", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "other.example.org", 0, 0, NULL), 0);
	idx = X509_get_ext_by_OBJ(x, oid, -1);
	assert_true(idx >= 0);
	ext = X509_get_ext(x, idx);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
	val = X509_EXTENSION_get_data(ext);
	want[0] = 0x04;
	want[1] = 32;
	EVP_Digest(ka, strlen(ka), want + 2, NULL, EVP_sha256(), NULL);
	assert_int_equal(ASN1_STRING_length(val), 34);
	assert_memory_equal(ASN1_STRING_get0_data(val), want, 34);
	ASN1_OBJECT_free(oid);
	EVP_PKEY_free(key);
	X509_free(x);
	BIO_free(b);
	free(pem);
}

static void
test_ari_id(void **state)
{
	/* RFC 9773's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
	 * serial 00:87:65:43:21 */
	static const unsigned char aki[] = { 0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1,
		0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4 };
	static const unsigned char serial[] = { 0x00, 0x87, 0x65, 0x43, 0x21 };
	char *id = acme_ari_id(aki, sizeof(aki), serial, sizeof(serial));

	assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	free(id);
	assert_null(acme_ari_id(NULL, 0, serial, sizeof(serial)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_thumbprint_rfc7638),
		cmocka_unit_test(test_jwk_ec),
		cmocka_unit_test(test_jws_es256),
		cmocka_unit_test(test_jws_es384),
		cmocka_unit_test(test_jws_rs256),
		cmocka_unit_test(test_key_pem_roundtrip),
		cmocka_unit_test(test_key_authz),
		cmocka_unit_test(test_csr),
		cmocka_unit_test(test_challenge_cert),
		cmocka_unit_test(test_ari_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
