/* mkcerts: the certificates of the benchmark's many-hosts figure (bench/bench.py).
 * The openssl command line needs two processes per certificate (minutes for
 * 10,000); this does it in one process in about a second.
 *
 *   mkcerts DIR N CHANGED
 *
 * Makes a CA and N hosts h0 .. h(N-1), each with its OWN ECDSA P-256 key and a
 * certificate for hI.bench.test (subjectAltName DNS, signed by the CA, valid
 * 400 days), written as:
 *   DIR/ca.crt
 *   DIR/certs/hI.crt, DIR/certs/hI.key    (separate files: tlsfront)
 *   DIR/pem/hI.pem                        (key then certificate: HAProxy, hitch)
 *   DIR/hosts.d/hI.ini                    (tlsfront host file; the backend
 *                                          comes from [defaults])
 * and, for the reload figure, a second certificate (new key, new serial) for
 * CHANGED hosts spread evenly over the N (hosts k * (N / CHANGED)):
 *   DIR/v2/certs/hI.crt, DIR/v2/certs/hI.key, DIR/v2/pem/hI.pem
 * and a copy of their first files under DIR/v1/, to put back after a reload.
 * DIR/stamp is written last ("N CHANGED"), so a half-made directory is never
 * taken for a finished one.
 *
 * Built by bench/run.sh: cc -O2 -o mkcerts mkcerts.c -lssl -lcrypto
 * Exit status: 0 done, 1 failure (message on stderr), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static long serial = 1;

static EVP_PKEY *
new_key(void)
{
	return EVP_EC_gen("P-256");
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

/* A certificate for cn with key, signed by ca_key (self-signed if ca is NULL). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
	X509 *x = X509_new();
	X509_NAME *name;
	char san[300];

	if (x == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 400L * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name);
	if (ca == NULL) {
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
		    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") != 0)
			goto err;
	} else {
		snprintf(san, sizeof san, "DNS:%s", cn);
		if (add_ext(x, ca, NID_basic_constraints, "CA:FALSE") != 0 ||
		    add_ext(x, ca, NID_subject_alt_name, san) != 0 ||
		    add_ext(x, ca, NID_ext_key_usage, "serverAuth") != 0)
			goto err;
	}
	if (X509_sign(x, ca_key, EVP_sha256()) == 0)
		goto err;
	return x;
err:
	X509_free(x);
	return NULL;
}

static int
write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");
	int ok = f != NULL;

	if (ok && key != NULL)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	if (ok && cert != NULL)
		ok = PEM_write_X509(f, cert) == 1;
	if (f != NULL && fclose(f) != 0)
		ok = 0;
	if (!ok)
		fprintf(stderr, "mkcerts: cannot write %s: %s\n", path, strerror(errno));
	return ok ? 0 : -1;
}

static int
mkdir_p(const char *dir, const char *sub)
{
	char p[4096];

	snprintf(p, sizeof p, "%s/%s", dir, sub);
	if (mkdir(p, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "mkcerts: mkdir %s: %s\n", p, strerror(errno));
		return -1;
	}
	return 0;
}

/* Host i's three files under dir/prefix. */
static int
write_host(const char *dir, const char *prefix, long i, X509 *x, EVP_PKEY *key)
{
	char p[4096];

	snprintf(p, sizeof p, "%s/%scerts/h%ld.crt", dir, prefix, i);
	if (write_pem(p, x, NULL) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/%scerts/h%ld.key", dir, prefix, i);
	if (write_pem(p, NULL, key) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/%spem/h%ld.pem", dir, prefix, i);
	return write_pem(p, x, key);
}

/* Host i: its files under dir/prefix (prefix "" or "v2/"), a copy under "v1/"
 * if v1 is set (the reload figure overwrites the live files of the changed
 * hosts and puts these back afterwards), its host file if ini is set. */
static int
make_host(const char *dir, const char *prefix, long i, X509 *ca, EVP_PKEY *ca_key, int v1,
    int ini)
{
	char cn[64], p[4096];
	EVP_PKEY *key = new_key();
	X509 *x = NULL;
	int rc = -1;

	snprintf(cn, sizeof cn, "h%ld.bench.test", i);
	if (key == NULL || (x = make_cert(cn, key, ca, ca_key)) == NULL)
		goto err;
	if (write_host(dir, prefix, i, x, key) != 0 || (v1 && write_host(dir, "v1/", i, x, key) != 0))
		goto err;
	if (ini) {
		FILE *f;

		snprintf(p, sizeof p, "%s/hosts.d/h%ld.ini", dir, i);
		f = fopen(p, "w");
		if (f == NULL)
			goto err;
		fprintf(f, "[host h%ld]\ncert = ../certs/h%ld.crt\nkey = ../certs/h%ld.key\n",
		    i, i, i);
		if (fclose(f) != 0)
			goto err;
	}
	rc = 0;
err:
	if (rc != 0)
		ERR_print_errors_fp(stderr);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* The changed hosts are k * (n / changed), k = 0 .. changed - 1. */
static int
is_changed(long i, long n, long changed)
{
	return changed > 0 && i % (n / changed) == 0 && i / (n / changed) < changed;
}

int
main(int argc, char **argv)
{
	const char *dir;
	long n, changed;
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	char p[4096];
	FILE *f;

	if (argc != 4 || (n = atol(argv[2])) < 1 || (changed = atol(argv[3])) < 0 || changed > n) {
		fprintf(stderr, "usage: mkcerts DIR N CHANGED\n");
		return 2;
	}
	dir = argv[1];
	if (mkdir_p(dir, "") != 0 || mkdir_p(dir, "certs") != 0 || mkdir_p(dir, "pem") != 0 ||
	    mkdir_p(dir, "hosts.d") != 0 || mkdir_p(dir, "v2") != 0 ||
	    mkdir_p(dir, "v2/certs") != 0 || mkdir_p(dir, "v2/pem") != 0 ||
	    mkdir_p(dir, "v1") != 0 || mkdir_p(dir, "v1/certs") != 0 || mkdir_p(dir, "v1/pem") != 0)
		return 1;
	serial = (long)time(NULL) % 1000000 * 100000;
	ca_key = new_key();
	if (ca_key == NULL || (ca = make_cert("tlsfront bench CA", ca_key, NULL, ca_key)) == NULL) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	snprintf(p, sizeof p, "%s/ca.crt", dir);
	if (write_pem(p, ca, NULL) != 0)
		return 1;
	for (long i = 0; i < n; i++)
		if (make_host(dir, "", i, ca, ca_key, is_changed(i, n, changed), 1) != 0)
			return 1;
	for (long k = 0; k < changed; k++)
		if (make_host(dir, "v2/", k * (n / changed), ca, ca_key, 0, 0) != 0)
			return 1;
	snprintf(p, sizeof p, "%s/stamp", dir);
	f = fopen(p, "w");
	if (f == NULL || fprintf(f, "%ld %ld\n", n, changed) < 0 || fclose(f) != 0) {
		fprintf(stderr, "mkcerts: cannot write %s\n", p);
		return 1;
	}
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return 0;
}
