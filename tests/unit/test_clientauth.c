/*
 * test_clientauth.c: allow-list parsing and matching against certificates,
 * and the identity shown in logs. Certificates are built in memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "clientauth.h"

/* A self-signed certificate with subject CN=cn and subjectAltName san
 * (OpenSSL config syntax, e.g. "DNS:a.test,URI:spiffe://x"; NULL: none). */
static X509 *
make_cert(const char *cn, const char *san)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
		    -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (san != NULL) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	EVP_PKEY_free(key);
	return x;
}

static int
allows(const char *entries, X509 *x)
{
	struct allow_list l = { NULL, 0 };
	char err[256], buf[512], *save = NULL;
	int r;

	snprintf(buf, sizeof(buf), "%s", entries);
	for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		assert_int_equal(clientauth_allow_add(&l, t, err, sizeof(err)), 0);
	r = clientauth_allow_match(&l, x);
	clientauth_allow_free(&l);
	return r;
}

static void
test_parse_errors(void **state)
{
	struct allow_list l = { NULL, 0 };
	char err[256];

	(void)state;
	assert_int_equal(clientauth_allow_add(&l, "FOO:x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected CN:, DNS:, URI: or EMAIL:"));
	assert_int_equal(clientauth_allow_add(&l, "CN:", err, sizeof(err)), -1);
	assert_int_equal(clientauth_allow_add(&l, "alice", err, sizeof(err)), -1);
	assert_int_equal(l.n_entries, 0);
	assert_int_equal(clientauth_allow_add(&l, "cn:alice", err, sizeof(err)), 0);
	assert_int_equal(clientauth_allow_add(&l, "URI:spiffe://corp/payments", err, sizeof(err)), 0);
	assert_int_equal(l.n_entries, 2);
	assert_int_equal(l.entries[0].kind, CLIENTAUTH_CN);
	assert_string_equal(l.entries[1].value, "spiffe://corp/payments");
	clientauth_allow_free(&l);
	assert_int_equal(l.n_entries, 0);
	clientauth_allow_free(NULL);
}

static void
test_match_each_kind(void **state)
{
	X509 *x = make_cert("alice", "DNS:svc.internal,URI:spiffe://corp/payments,"
	    "email:ops@example.com");

	(void)state;
	assert_true(allows("CN:alice", x));
	assert_false(allows("CN:Alice", x));		/* CN is exact */
	assert_false(allows("CN:alic", x));
	assert_true(allows("DNS:svc.internal", x));
	assert_true(allows("DNS:SVC.Internal", x));	/* DNS ignores case */
	assert_false(allows("DNS:internal", x));
	assert_true(allows("URI:spiffe://corp/payments", x));
	assert_false(allows("URI:spiffe://corp/Payments", x));	/* URI is exact */
	assert_true(allows("EMAIL:OPS@example.com", x));
	assert_false(allows("EMAIL:dev@example.com", x));
	/* kinds do not cross: the DNS name is not a CN, the CN not a DNS name */
	assert_false(allows("CN:svc.internal", x));
	assert_false(allows("DNS:alice", x));
	/* any entry of the list suffices */
	assert_true(allows("CN:bob DNS:other.test EMAIL:ops@example.com", x));
	assert_false(allows("CN:bob DNS:other.test", x));
	X509_free(x);
}

static void
test_empty_list_and_no_cert(void **state)
{
	struct allow_list none = { NULL, 0 };
	X509 *x = make_cert("alice", NULL);

	(void)state;
	assert_true(clientauth_allow_match(&none, x));	/* no list: any verified client */
	assert_true(clientauth_allow_match(NULL, x));
	assert_false(allows("CN:alice", NULL));	/* a list and no certificate */
	assert_false(allows("DNS:alice", x));	/* no SAN at all */
	X509_free(x);
}

static void
test_identity(void **state)
{
	char cn[64], san[64];
	X509 *x = make_cert("alice", "URI:spiffe://corp/payments,DNS:svc.internal");
	X509 *bare = make_cert(NULL, NULL);

	(void)state;
	clientauth_identity(x, cn, sizeof(cn), san, sizeof(san));
	assert_string_equal(cn, "alice");
	assert_string_equal(san, "URI:spiffe://corp/payments");	/* the first SAN */
	clientauth_identity(bare, cn, sizeof(cn), san, sizeof(san));
	assert_string_equal(cn, "");
	assert_string_equal(san, "");
	clientauth_identity(NULL, cn, sizeof(cn), san, sizeof(san));
	assert_string_equal(cn, "");
	/* truncated, still terminated */
	clientauth_identity(x, cn, 4, san, 8);
	assert_string_equal(cn, "ali");
	assert_string_equal(san, "URI:spi");
	X509_free(x);
	X509_free(bare);
}

static void
test_identity_unprintable(void **state)
{
	char cn[64], san[64];
	X509 *x = make_cert("a\tb", NULL);

	(void)state;
	clientauth_identity(x, cn, sizeof(cn), san, sizeof(san));
	assert_string_equal(cn, "a?b");
	X509_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_match_each_kind),
		cmocka_unit_test(test_empty_list_and_no_cert),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_identity_unprintable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
