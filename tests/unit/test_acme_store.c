/*
 * test_acme_store.c: state_dir on disk (acme_store.c): directory and file
 * modes, the all-or-nothing replace, the order lock between descriptors,
 * the paths of acme.h (and the names they refuse), and what a stored
 * certificate file says (validity, names, key, certID parts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_store.h"
#include "unit_util.h"

static char dir[PATH_MAX];

static int
setup(void **state)
{
	return unit_tmpdir(dir, sizeof(dir), "acme_store");
}

static int
teardown(void **state)
{
	return unit_rmtree(dir);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
test_mkdirs_modes(void **state)
{
	const char *sd = unit_path(dir, "state");

	assert_int_equal(acme_store_mkdirs(sd), 0);
	assert_int_equal(acme_store_mkdirs(sd), 0);	/* again: fine */
	assert_int_equal(mode_of(sd), 0700);
	assert_int_equal(mode_of(unit_path(sd, "account")), 0700);
	assert_int_equal(mode_of(unit_path(sd, "certs")), 0700);
	assert_int_equal(mode_of(unit_path(sd, "challenges")), 0700);
}

/* Count the entries of d other than . and .. */
static int
count_entries(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	int n = 0;

	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dp);
	return n;
}

static void
test_write_read_replace(void **state)
{
	const char *p = unit_path(dir, "f.pem");
	size_t len;
	char *s;
	int fds = unit_count_fds();
	struct stat before, after;

	umask(022);
	assert_int_equal(acme_store_write(p, "one", 3), 0);
	assert_int_equal(mode_of(p), 0600);
	assert_int_equal(stat(p, &before), 0);
	assert_int_equal(acme_store_write(p, "second", 6), 0);
	assert_int_equal(stat(p, &after), 0);
	/* a rename: a new inode, so a reader holding the old one sees it whole */
	assert_true(before.st_ino != after.st_ino);
	s = acme_store_read(p, &len);
	assert_string_equal(s, "second");
	assert_int_equal(len, 6);
	free(s);
	assert_int_equal(mode_of(p), 0600);
	/* no temporary file left behind, no descriptor lost */
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(unit_count_fds(), fds);
	/* a missing file: NULL, ENOENT */
	errno = 0;
	assert_null(acme_store_read(unit_path(dir, "nope"), NULL));
	assert_int_equal(errno, ENOENT);
	/* a failed write leaves the old file and no temporary one */
	assert_int_equal(acme_store_write(unit_path(dir, "no/such/dir"), "x", 1), -1);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(acme_store_remove(p), 0);
	assert_int_equal(acme_store_remove(p), 0);	/* already gone: fine */
	assert_int_equal(unit_count_fds(), fds);
}

static void
test_lock(void **state)
{
	int a, b, fds = unit_count_fds();

	a = acme_store_lock(dir);
	assert_true(a >= 0);
	assert_int_equal(mode_of(unit_path(dir, "lock")), 0600);
	/* another descriptor, as another instance would have: refused */
	errno = 0;
	assert_int_equal(acme_store_lock(dir), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	acme_store_unlock(a);
	b = acme_store_lock(dir);
	assert_true(b >= 0);
	acme_store_unlock(b);
	acme_store_unlock(-1);
	assert_int_equal(unit_count_fds(), fds);
	assert_int_equal(acme_store_lock(unit_path(dir, "missing")), -1);
}

static void
test_paths(void **state)
{
	char buf[256];
	struct acme_config cfg = { .state_dir = "/var/lib/tlsfront/acme" };

	assert_string_equal(acme_cert_path(&cfg, "shop", buf, sizeof(buf)),
	    "/var/lib/tlsfront/acme/certs/shop.pem");
	assert_string_equal(acme_challenge_path("/s", "www.example.org", buf, sizeof(buf)),
	    "/s/challenges/www.example.org.pem");
	assert_null(acme_challenge_path("/s", "../x", buf, sizeof(buf)));
	assert_null(acme_challenge_path("/s", "a/b", buf, sizeof(buf)));
	assert_null(acme_challenge_path("/s", "", buf, sizeof(buf)));
	assert_null(acme_cert_path(&cfg, "shop", buf, 10));
	assert_non_null(acme_store_account_path("/s", "https://ca/dir", "key", buf, sizeof(buf)));
	assert_int_equal(strlen(buf), strlen("/s/account/") + 32 + strlen(".key"));
	{
		char other[256];
		acme_store_account_path("/s", "https://ca2/dir", "key", other, sizeof(other));
		assert_string_not_equal(buf, other);
	}
}

/* A self-signed leaf for names, valid from nb to na (seconds from now),
 * with an AKI, written as key then certificate to path. */
static void
put_cert(const char *path, const char *const *names, int n, long nb, long na, int other_key)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *k2 = other_key ? EVP_EC_gen("P-256") : NULL;
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	char san[512] = "";
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;

	for (int i = 0; i < n; i++)
		snprintf(san + strlen(san), sizeof(san) - strlen(san), "%sDNS:%s", i ? "," : "",
		    names[i]);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0x876543);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)names[0], -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), nb);
	X509_gmtime_adj(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	PEM_write_bio_PrivateKey(b, k2 ? k2 : key, NULL, NULL, 0, NULL, NULL);
	PEM_write_bio_X509(b, x);
	len = BIO_get_mem_data(b, &data);
	unit_write(path, data, (size_t)len);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(k2);
}

static void
test_cert_info(void **state)
{
	const char *names[] = { "shop.example.org", "www.shop.example.org" };
	const char *more[] = { "shop.example.org", "new.example.org" };
	const char *p = unit_path(dir, "shop.pem");
	struct acme_cert_info info;
	time_t now = time(NULL);
	int fds = unit_count_fds();

	put_cert(p, names, 2, -3600, 90 * 86400, 0);
	assert_int_equal(acme_store_cert_info(p, names, 2, &info), 0);
	assert_true(info.not_before >= now - 3600 - 5 && info.not_before <= now - 3600 + 5);
	assert_true(info.not_after >= now + 90 * 86400 - 5 && info.not_after <= now + 90 * 86400 + 5);
	assert_int_equal(info.covers, 1);
	assert_int_equal(info.key_matches, 1);
	assert_non_null(info.aki);
	assert_int_equal(info.aki_len, 20);
	/* 0x876543: top bit set, so DER keeps a leading zero */
	assert_int_equal(info.serial_len, 4);
	assert_memory_equal(info.serial, "\x00\x87\x65\x43", 4);
	acme_cert_info_free(&info);
	acme_cert_info_free(&info);	/* twice: a no-op */
	/* a name the certificate lacks: it does not cover the host any more */
	assert_int_equal(acme_store_cert_info(p, more, 2, &info), 0);
	assert_int_equal(info.covers, 0);
	acme_cert_info_free(&info);
	/* a key that is not the leaf's */
	put_cert(p, names, 2, -3600, 86400, 1);
	assert_int_equal(acme_store_cert_info(p, names, 2, &info), 0);
	assert_int_equal(info.key_matches, 0);
	acme_cert_info_free(&info);
	/* no file, no certificate */
	assert_int_equal(acme_store_cert_info(unit_path(dir, "none.pem"), names, 2, &info), -1);
	assert_int_equal(errno, ENOENT);
	unit_put(dir, "junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
	assert_int_equal(acme_store_cert_info(unit_path(dir, "junk.pem"), names, 2, &info), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(unit_count_fds(), fds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mkdirs_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test(test_paths),
		cmocka_unit_test_setup_teardown(test_cert_info, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
