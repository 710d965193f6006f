/*
 * test_tls.c: the TLS modules without a daemon: certificate checks
 * (tls_check.c), ticket-key files (tls_tickets.c), the file cache
 * (tls_files.c), and real handshakes between two SSL objects over a BIO
 * pair: the ClientHello switch to a host and its max_connections count,
 * ALPN and the client allow-list (tls_accept.c), and what the handshake
 * was (tls_facts.c), encoded as PROXY v2 TLVs (proxy_tls.c).
 *
 * Every certificate and key is made here, with the OpenSSL API; files go to
 * a directory made for the run and removed after it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "proxy.h"
#include "tls_int.h"
#include "unit_util.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static char tmpdir[64];

/* tmpdir/name (see unit_path) */
static const char *
path(const char *name)
{
	return unit_path(tmpdir, name);
}

static EVP_PKEY *
ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);

	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/*
 * A certificate of key with subject CN=cn (NULL: no CN) and subjectAltName
 * san (OpenSSL config syntax, NULL: none), issued by issuer with ikey
 * (NULL: self-signed), a CA if ca, valid from now + from to now + to
 * seconds.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *ikey,
    int ca, long from, long to)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
		    -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
	add_ext(x, &v3, NID_subject_key_identifier, "hash");
	if (issuer != NULL)
		add_ext(x, &v3, NID_authority_key_identifier, "keyid");
	if (san != NULL)
		add_ext(x, &v3, NID_subject_alt_name, san);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

#define DAY (24L * 3600)

/* A root, an intermediate it issued, and a leaf the intermediate issued. */
struct pki {
	EVP_PKEY *root_key, *mid_key, *leaf_key;
	X509 *root, *mid, *leaf;
};

static void
pki_make(struct pki *p, const char *leaf_cn, const char *leaf_san)
{
	p->root_key = ec_key();
	p->mid_key = ec_key();
	p->leaf_key = ec_key();
	p->root = make_cert(p->root_key, "Test Root", NULL, NULL, NULL, 1, 0, 365 * DAY);
	p->mid = make_cert(p->mid_key, "Test Intermediate", NULL, p->root, p->root_key, 1, 0,
	    365 * DAY);
	p->leaf = make_cert(p->leaf_key, leaf_cn, leaf_san, p->mid, p->mid_key, 0, 0, 90 * DAY);
}

static void
pki_free(struct pki *p)
{
	X509_free(p->root);
	X509_free(p->mid);
	X509_free(p->leaf);
	EVP_PKEY_free(p->root_key);
	EVP_PKEY_free(p->mid_key);
	EVP_PKEY_free(p->leaf_key);
}

/* A stack of the given certificates (references taken), for chains. */
static STACK_OF(X509) *
chain_of(X509 *a, X509 *b)
{
	STACK_OF(X509) *s = sk_X509_new_null();

	assert_non_null(s);
	if (a != NULL) {
		X509_up_ref(a);
		sk_X509_push(s, a);
	}
	if (b != NULL) {
		X509_up_ref(b);
		sk_X509_push(s, b);
	}
	return s;
}

/* The host_config fields the checks read. */
static void
host_config_for(struct host_config *c, char **names, size_t n_names)
{
	memset(c, 0, sizeof(*c));
	c->label = "h";
	c->cert = "/etc/tls/h.pem";
	c->key = "/etc/tls/h.key";
	c->loc[K_CERT] = (struct loc){ "host.ini", 3 };
	c->loc[K_KEY] = (struct loc){ "host.ini", 4 };
	c->loc[K_NAMES] = (struct loc){ "host.ini", 5 };
	c->names.v = names;
	c->names.n = n_names;
}

/* Write certificates (and a key, if any) as PEM to p, through a new file
 * renamed over p: a new inode, as tools that replace certificates do. */
static void
write_pem(const char *p, X509 *a, X509 *b, EVP_PKEY *key)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", p);
	assert_non_null(f = fopen(tmp, "w"));
	if (a != NULL)
		assert_int_equal(PEM_write_X509(f, a), 1);
	if (b != NULL)
		assert_int_equal(PEM_write_X509(f, b), 1);
	if (key != NULL)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, p), 0);
}

static int
setup_dir(void **state)
{
	(void)state;
	return unit_tmpdir(tmpdir, sizeof(tmpdir), "test_tls");
}

static int
remove_dir(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

/* ------------------------------------------------------------------ */
/* certificate checks                                                   */

static void
test_chain_complete(void **state)
{
	struct host_config c;
	struct diag d = { 0 };
	struct pki p;
	STACK_OF(X509) *none = chain_of(NULL, NULL), *mid = chain_of(NULL, NULL);
	STACK_OF(X509) *both;
	EVP_PKEY *k = ec_key();
	X509 *self = make_cert(k, "self.test", "DNS:self.test", NULL, NULL, 0, 0, DAY);

	(void)state;
	pki_make(&p, "www.example.com", "DNS:www.example.com");
	sk_X509_free(mid);
	mid = chain_of(p.mid, NULL);
	both = chain_of(p.mid, p.root);
	host_config_for(&c, NULL, 0);

	/* certbot's cert.pem: the leaf alone, issued by someone else */
	tls_check_chain_complete(&c, p.leaf, none, &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.n_errors, 0);
	assert_string_equal(d.msgs[0], "host.ini:3: warning: certificate chain incomplete: "
	    "issuer \"CN=Test Intermediate\" of the last certificate in /etc/tls/h.pem is "
	    "not in the file (certbot: use fullchain.pem, not cert.pem)");
	/* fullchain.pem, with or without the root; a self-signed leaf */
	tls_check_chain_complete(&c, p.leaf, mid, &d);
	tls_check_chain_complete(&c, p.leaf, both, &d);
	tls_check_chain_complete(&c, self, none, &d);
	assert_int_equal(d.n, 1);

	/* order: each certificate issued by the next */
	assert_int_equal(tls_check_chain_order(&c, p.leaf, mid, &d), 0);
	assert_int_equal(tls_check_chain_order(&c, p.leaf, both, &d), 0);
	assert_int_equal(d.n, 1);
	sk_X509_pop_free(both, X509_free);
	both = chain_of(p.root, p.mid);	/* root before intermediate */
	assert_int_equal(tls_check_chain_order(&c, p.leaf, both, &d), -1);
	assert_int_equal(d.n_errors, 1);
	assert_string_equal(d.msgs[1], "host.ini:3: cert: /etc/tls/h.pem: certificate 2 of "
	    "the chain did not issue certificate 1 (order must be leaf first, then each "
	    "issuer)");

	sk_X509_pop_free(none, X509_free);
	sk_X509_pop_free(mid, X509_free);
	sk_X509_pop_free(both, X509_free);
	X509_free(self);
	EVP_PKEY_free(k);
	pki_free(&p);
	diag_free(&d);
}

static void
test_names_covered(void **state)
{
	char *names[] = { "www.example.com", "a.example.org", "a.b.example.org",
	    "*.example.org", "*.example.com", "example.org", "cn.example.net" };
	char *cn_names[] = { "only.test", "*.test", "other.test" };
	char *all_good[] = { "www.example.com", "*.example.org", "x.example.org" };
	struct host_config c;
	struct diag d = { 0 };
	EVP_PKEY *k = ec_key();
	X509 *san = make_cert(k, "cn.example.net", "DNS:www.example.com,DNS:*.example.org",
	    NULL, NULL, 0, 0, DAY);
	X509 *cn_only = make_cert(k, "only.test", NULL, NULL, NULL, 0, 0, DAY);

	(void)state;
	/* as clients check: one label per wildcard, the CN only without DNS
	 * names, and a wildcard entry only if the certificate has it as such */
	host_config_for(&c, names, 7);
	tls_check_names_covered(&c, san, &d);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.msgs[0], "host.ini:5: warning: host 'h': the certificate in "
	    "/etc/tls/h.pem does not cover a.b.example.org, *.example.com, example.org, "
	    "cn.example.net (clients will refuse it for these names)");

	host_config_for(&c, cn_names, 3);
	tls_check_names_covered(&c, cn_only, &d);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.msgs[1], "host.ini:5: warning: host 'h': the certificate in "
	    "/etc/tls/h.pem does not cover *.test, other.test (clients will refuse it for "
	    "these names)");

	host_config_for(&c, cn_names + 2, 1);
	tls_check_names_covered(&c, cn_only, &d);
	assert_non_null(strstr(d.msgs[2], "does not cover other.test (clients will refuse "
	    "it for this name)"));

	host_config_for(&c, all_good, 3);
	tls_check_names_covered(&c, san, &d);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.n_errors, 0);

	X509_free(san);
	X509_free(cn_only);
	EVP_PKEY_free(k);
	diag_free(&d);
}

static void
test_names_from_cert(void **state)
{
	struct host h;
	EVP_PKEY *k = ec_key();
	X509 *san = make_cert(k, "ignored.test", "DNS:WWW.Example.COM,DNS:*.example.org,"
	    "IP:192.0.2.1,DNS:www.example.com.,DNS:bad..name,email:a@b.test", NULL, NULL, 0, 0,
	    DAY);
	X509 *cn_only = make_cert(k, "Only.Test", NULL, NULL, NULL, 0, 0, DAY);

	(void)state;
	memset(&h, 0, sizeof(h));
	/* DNS names only, normalised, once; the CN is not one of them */
	tls_names_from_cert(&h, san);
	assert_int_equal(h.n_names, 2);
	assert_string_equal(h.names[0], "www.example.com");
	assert_string_equal(h.names[1], "*.example.org");
	/* no DNS name: the CN */
	tls_names_from_cert(&h, cn_only);
	assert_int_equal(h.n_names, 3);
	assert_string_equal(h.names[2], "only.test");
	for (size_t i = 0; i < h.n_names; i++)
		free(h.names[i]);
	free(h.names);
	X509_free(san);
	X509_free(cn_only);
	EVP_PKEY_free(k);
}

static void
test_key_and_validity(void **state)
{
	struct host_config c;
	struct diag d = { 0 };
	struct pki p;
	STACK_OF(X509) *mid;
	EVP_PKEY *other = ec_key();
	X509 *expired = make_cert(other, "x", NULL, NULL, NULL, 0, -10 * DAY, -2 * DAY);
	X509 *soon = make_cert(other, "x", NULL, NULL, NULL, 0, -DAY, 5 * DAY);
	X509 *future = make_cert(other, "x", NULL, NULL, NULL, 0, DAY, 90 * DAY);
	time_t t;

	(void)state;
	pki_make(&p, "www.example.com", NULL);
	mid = chain_of(p.mid, NULL);
	host_config_for(&c, NULL, 0);

	assert_int_equal(tls_check_key(&c, p.leaf, mid, p.leaf_key, &d), 0);
	assert_int_equal(d.n, 0);
	/* the intermediate's key: the file is out of order */
	assert_int_equal(tls_check_key(&c, p.leaf, mid, p.mid_key, &d), -1);
	assert_string_equal(d.msgs[0], "host.ini:3: cert: /etc/tls/h.pem: the key "
	    "/etc/tls/h.key belongs to certificate 2 of the file, not the first (order must "
	    "be leaf first, then each issuer)");
	assert_int_equal(tls_check_key(&c, p.leaf, mid, other, &d), -1);
	assert_string_equal(d.msgs[1], "host.ini:4: key: /etc/tls/h.key does not match the "
	    "certificate in /etc/tls/h.pem");
	assert_int_equal(ERR_peek_error(), 0);

	t = tls_cert_not_after(p.leaf);
	assert_true(t >= time(NULL) + 90 * DAY - 60 && t <= time(NULL) + 90 * DAY + 60);
	tls_check_validity(&c, p.leaf, &d);
	assert_int_equal(d.n, 2);
	tls_check_validity(&c, expired, &d);
	assert_string_equal(d.msgs[2], "host.ini:3: warning: CERTIFICATE EXPIRED: host 'h' "
	    "certificate /etc/tls/h.pem expired 2 days ago");
	tls_check_validity(&c, soon, &d);
	/* 4 or 5 days, as the clock turned a second or not since it was made */
	assert_non_null(strstr(d.msgs[3], "CERTIFICATE EXPIRES SOON: host 'h' certificate "
	    "/etc/tls/h.pem expires in "));
	tls_check_validity(&c, future, &d);
	assert_string_equal(d.msgs[4], "host.ini:3: warning: host 'h' certificate "
	    "/etc/tls/h.pem is not valid yet");
	assert_int_equal(d.n, 5);

	sk_X509_pop_free(mid, X509_free);
	X509_free(expired);
	X509_free(soon);
	X509_free(future);
	EVP_PKEY_free(other);
	pki_free(&p);
	diag_free(&d);
}

static void
test_name_text(void **state)
{
	EVP_PKEY *k = ec_key();
	X509 *x = make_cert(k, "a,b", NULL, NULL, NULL, 0, 0, DAY);
	char buf[64], small[4];

	(void)state;
	/* RFC 2253 escapes; the whole length, as snprintf, when cut */
	assert_int_equal(tls_name_text(X509_get_subject_name(x), buf, sizeof(buf)), 7);
	assert_string_equal(buf, "CN=a\\,b");
	assert_int_equal(tls_name_text(X509_get_subject_name(x), small, sizeof(small)), 7);
	assert_string_equal(small, "CN=");
	X509_free(x);
	EVP_PKEY_free(k);
}

/* ------------------------------------------------------------------ */
/* ticket_key_file                                                      */

/* The base64 of 80 bytes, all `fill`, into out[109]. */
static const char *
b64_key(unsigned char fill, char *out)
{
	unsigned char raw[80];

	memset(raw, fill, sizeof(raw));
	assert_int_equal(EVP_EncodeBlock((unsigned char *)out, raw, 80), 108);
	return out;
}

static int
load_keys(const char *text, struct ticket_keys *k, struct diag *d)
{
	struct loc at = { "main.ini", 7 };

	unit_put(tmpdir, "keys", text);
	return tls_ticket_keys_load(path("keys"), k, d, at);
}

/* Is there an error "KEYFILE:line: ticket key: ..." that ends in `what`? */
static int
key_error_at(const struct diag *d, int line, const char *what)
{
	char head[300];
	size_t hl, wl = strlen(what);

	snprintf(head, sizeof(head), "%s:%d: ticket key: expected the base64 of 80 bytes "
	    "(openssl rand -base64 80)", path("keys"), line);
	hl = strlen(head);
	for (size_t i = 0; i < d->n; i++) {
		size_t ml = strlen(d->msgs[i]);
		if (d->is_error[i] && strncmp(d->msgs[i], head, hl) == 0 && ml >= wl &&
		    strcmp(d->msgs[i] + ml - wl, what) == 0)
			return 1;
	}
	return 0;
}

static void
test_ticket_keys(void **state)
{
	char k1[109], k2[109], k3[109], text[1024], cut[65];
	struct ticket_keys k;
	struct diag d = { 0 };

	(void)state;
	b64_key(0x11, k1);
	b64_key(0x22, k2);
	b64_key(0x33, k3);

	/* one a line, and wrapped as openssl rand -base64 80 writes it;
	 * comments, blank lines and blanks around are skipped */
	snprintf(text, sizeof(text), "# newest first\n  %s \r\n\n%.64s\n%s\n%s\n", k1, k2,
	    k2 + 64, k3);
	assert_int_equal(load_keys(text, &k, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(k.n_keys, 3);
	for (size_t i = 0; i < 3; i++) {
		unsigned char want[16];
		memset(want, 0x11 * (int)(i + 1), sizeof(want));
		assert_memory_equal(k.keys[i].name, want, 16);
		assert_memory_equal(k.keys[i].hmac, want, 16);
		assert_memory_equal(k.keys[i].aes + 16, want, 16);
	}
	tls_ticket_keys_free(&k);
	assert_null(k.keys);
	assert_int_equal(k.n_keys, 0);

	/* each bad key at the line it starts on; good keys between them are
	 * not reported; nothing is kept */
	memset(cut, 'A', 64);
	cut[64] = '\0';
	snprintf(text, sizeof(text),
	    "%s\n"			/* 1: good */
	    "QUJD\n"			/* 2: short, ends at the blank line */
	    "\n"
	    "%.64s\n%s\n"		/* 4: cut, the next key's line does not fit it */
	    "%.108s\n"			/* 6: 108 characters that are not 80 bytes */
	    "%s%s\n"			/* 7: too long */
	    "%.50s",			/* 8: cut by the end of the file */
	    k1, k2, k3, "AAAA" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", k1, k2,
	    k3);
	assert_int_equal(load_keys(text, &k, &d), -1);
	assert_null(k.keys);
	assert_int_equal(k.n_keys, 0);
	assert_true(key_error_at(&d, 2, ": 108 characters, on one line or wrapped over "
	    "several; this key has 4"));
	assert_true(key_error_at(&d, 4, "this key has 64"));
	assert_true(key_error_at(&d, 6, "80)"));	/* the right length, not 80 bytes */
	assert_true(key_error_at(&d, 7, "this key has 216"));
	assert_true(key_error_at(&d, 8, "this key has 50"));
	assert_int_equal(d.n_errors, 5);	/* none at lines 1 and 5 */
	diag_free(&d);

	/* no key at all; files that are not keys */
	assert_int_equal(load_keys("# nothing\n\n", &k, &d), -1);
	assert_true(diag_has(&d, "main.ini:7: ticket_key_file: "));
	assert_true(diag_has(&d, "holds no key"));
	assert_int_equal(tls_ticket_keys_load(tmpdir, &k, &d, (struct loc){ "main.ini", 7 }),
	    -1);
	assert_true(diag_has(&d, "is a directory"));
	assert_int_equal(tls_ticket_keys_load("/dev/null", &k, &d,
	    (struct loc){ "main.ini", 7 }), -1);
	assert_true(diag_has(&d, "main.ini:7: ticket_key_file: /dev/null is not a regular "
	    "file"));
	diag_free(&d);
}

/* ------------------------------------------------------------------ */
/* the file cache                                                       */

/* One build: look path up as certificates and key as a key, then sweep
 * and return "read/unchanged". */
static const char *
build(const char *certs, const char *key, STACK_OF(X509) **sk, EVP_PKEY **pk)
{
	static char out[32];
	unsigned long rd = 99, same = 99;
	int enc = 0;

	tls_files_begin();
	if (certs != NULL)
		*sk = tls_files_certs(certs);
	if (key != NULL)
		*pk = tls_files_key(key, &enc);
	assert_int_equal(enc, 0);
	tls_files_sweep(&rd, &same);
	tls_files_kept();
	snprintf(out, sizeof(out), "%lu/%lu", rd, same);
	return out;
}

static void
test_file_cache(void **state)
{
	struct pki p, q;
	STACK_OF(X509) *sk = NULL, *sk2 = NULL;
	EVP_PKEY *pk = NULL, *pk2 = NULL;
	X509 *leaf;
	int enc;
	unsigned long rd, same;

	(void)state;
	pki_make(&p, "a.test", NULL);
	pki_make(&q, "a.test", NULL);
	write_pem(path("a.pem"), p.leaf, p.mid, NULL);
	write_pem(path("a.key"), NULL, NULL, p.leaf_key);

	/* parsed once: the leaf first, then the chain */
	assert_string_equal(build(path("a.pem"), path("a.key"), &sk, &pk), "2/0");
	assert_non_null(sk);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), p.leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 1), p.mid), 0);
	assert_int_equal(EVP_PKEY_eq(pk, p.leaf_key), 1);
	leaf = sk_X509_value(sk, 0);

	/* unchanged: the same objects, nothing read */
	assert_string_equal(build(path("a.pem"), path("a.key"), &sk2, &pk2), "0/2");
	assert_ptr_equal(sk2, sk);
	assert_ptr_equal(sk_X509_value(sk2, 0), leaf);
	assert_ptr_equal(pk2, pk);

	/* the certificate replaced: read again, the key not */
	write_pem(path("a.pem"), q.leaf, q.mid, NULL);
	assert_string_equal(build(path("a.pem"), path("a.key"), &sk, &pk2), "1/1");
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), q.leaf), 0);
	assert_ptr_equal(pk2, pk);

	/* a build thrown away (a failed reload: no sweep) parsed the new file;
	 * the next build finds it parsed and still counts it as read, since
	 * the generation in service has the old one */
	write_pem(path("a.pem"), p.leaf, p.mid, NULL);
	tls_files_begin();
	sk = tls_files_certs(path("a.pem"));
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), p.leaf), 0);
	assert_string_equal(build(path("a.pem"), path("a.key"), &sk2, &pk2), "1/1");
	assert_ptr_equal(sk2, sk);

	/* a file the build does not use leaves the cache */
	assert_string_equal(build(NULL, path("a.key"), &sk, &pk2), "0/1");
	assert_string_equal(build(path("a.pem"), path("a.key"), &sk, &pk2), "1/1");

	/* one file with both the certificate and the key counts once */
	write_pem(path("both.pem"), p.leaf, NULL, p.leaf_key);
	assert_string_equal(build(path("both.pem"), path("both.pem"), &sk, &pk), "1/0");
	assert_int_equal(sk_X509_num(sk), 1);
	assert_int_equal(EVP_PKEY_eq(pk, p.leaf_key), 1);
	assert_string_equal(build(path("both.pem"), path("both.pem"), &sk, &pk), "0/1");

	/* failures: no file, no certificate in it, an encrypted key */
	tls_files_begin();
	assert_null(tls_files_certs(path("missing.pem")));
	assert_null(tls_files_certs(path("a.key")));
	ERR_clear_error();
	assert_null(tls_files_key(path("a.pem"), &enc));
	assert_int_equal(enc, 0);
	ERR_clear_error();
	FILE *f = fopen(path("enc.key"), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, p.leaf_key, EVP_aes_256_cbc(),
	    (const unsigned char *)"secret", 6, NULL, NULL), 1);
	fclose(f);
	assert_null(tls_files_key(path("enc.key"), &enc));
	assert_int_equal(enc, 1);
	ERR_clear_error();
	tls_files_sweep(&rd, &same);
	assert_int_equal(rd + same, 0);

	pki_free(&p);
	pki_free(&q);
}

/* key as PEM to p: PKCS#8 ("PRIVATE KEY"), or the algorithm's own
 * structure ("EC PRIVATE KEY", "RSA PRIVATE KEY") if traditional. */
static void
write_key(const char *p, EVP_PKEY *key, int traditional)
{
	BIO *b = BIO_new_file(p, "w");

	assert_non_null(b);
	if (traditional)
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0,
		    NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
	BIO_free(b);
}

/* Every kind of PEM key the fast path has a decoder of its own for, and
 * PKCS#8 of another algorithm (its decoder for any type). */
static void
test_key_kinds(void **state)
{
	EVP_PKEY *ec = ec_key(), *rsa = EVP_RSA_gen(2048);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	static const struct {
		const char *file;
		int which, traditional;
	} kinds[] = {
		{ "ec8.key", 0, 0 }, { "ec.key", 0, 1 }, { "rsa8.key", 1, 0 },
		{ "rsa.key", 1, 1 }, { "ed.key", 2, 0 },
	};
	EVP_PKEY *keys[3] = { ec, rsa, ed };
	int enc;

	(void)state;
	assert_non_null(rsa);
	assert_non_null(ed);
	tls_files_begin();
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		EVP_PKEY *want = keys[kinds[i].which], *got;
		write_key(path(kinds[i].file), want, kinds[i].traditional);
		got = tls_files_key(path(kinds[i].file), &enc);
		if (got == NULL)
			fail_msg("%s: not read", kinds[i].file);
		assert_int_equal(EVP_PKEY_eq(got, want), 1);
	}
	tls_files_sweep(NULL, NULL);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

/* ------------------------------------------------------------------ */
/* handshakes over a BIO pair                                           */

/* One host "a" named a.test on one listener, as gen_build would make it,
 * with client certificates required from a test CA, and a worker. */
struct env {
	struct pki server, client;
	SSL_CTX *base_ctx, *host_ctx, *client_ctx;
	struct tls_base base;
	struct tls_host th;
	struct host_config hc;
	struct allow_list allow;	/* client_allow, as the config loader parses it */
	struct host host;
	struct listener l;
	struct generation g;
	struct tls_worker *w;
};

static void
env_make(struct env *e)
{
	void *other = NULL;

	memset(e, 0, sizeof(*e));
	pki_make(&e->server, "a.test", "DNS:a.test");
	pki_make(&e->client, "alice", NULL);

	assert_non_null(e->base_ctx = SSL_CTX_new(TLS_server_method()));
	SSL_CTX_set_client_hello_cb(e->base_ctx, tls_client_hello_cb, NULL);
	SSL_CTX_set_session_cache_mode(e->base_ctx, SSL_SESS_CACHE_OFF);
	e->base.ctx = e->base_ctx;

	assert_non_null(e->host_ctx = SSL_CTX_new(TLS_server_method()));
	SSL_CTX_set_alpn_select_cb(e->host_ctx, tls_alpn_cb, NULL);
	SSL_CTX_set_verify(e->host_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	    tls_verify_cb);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(e->host_ctx), e->client.root);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(e->host_ctx), e->client.mid);

	e->hc.label = "a";
	e->hc.client_allow_list = &e->allow;
	e->th.ctx = e->host_ctx;
	e->th.leaf = e->server.leaf;
	e->th.key = e->server.leaf_key;
	e->th.chain = chain_of(e->server.mid, NULL);
	e->th.groups_as_base = 1;
	e->th.alpn_wire = (unsigned char *)"\x02h2\x08http/1.1";
	e->th.alpn_wire_len = 12;
	e->th.keylog_fd = -1;
	memset(e->th.sid, 0xa5, sizeof(e->th.sid));
	e->host.cfg = &e->hc;
	e->host.tls = &e->th;
	e->host.max_active = 1;

	assert_non_null(e->l.sni = sni_table_new());
	assert_int_equal(sni_table_add(e->l.sni, "a.test", &e->host, &other), 0);
	e->g.hosts = &e->host;
	e->g.n_hosts = 1;
	e->g.tls = &e->base;
	assert_non_null(e->w = tls_worker_new(&e->g));

	assert_non_null(e->client_ctx = SSL_CTX_new(TLS_client_method()));
	assert_int_equal(SSL_CTX_use_certificate(e->client_ctx, e->client.leaf), 1);
	assert_int_equal(SSL_CTX_add1_chain_cert(e->client_ctx, e->client.mid), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(e->client_ctx, e->client.leaf_key), 1);
}

static void
env_free(struct env *e)
{
	tls_worker_free(e->w);
	sni_table_free(e->l.sni);
	sk_X509_pop_free(e->th.chain, X509_free);
	clientauth_allow_free(&e->allow);
	SSL_CTX_free(e->base_ctx);
	SSL_CTX_free(e->host_ctx);
	SSL_CTX_free(e->client_ctx);
	pki_free(&e->server);
	pki_free(&e->client);
}

/* A client and a server connection over a BIO pair. */
struct conn {
	struct tls_info info;
	SSL *c, *s;
};

static void
conn_open(struct env *e, struct conn *k, const char *sni)
{
	BIO *bc, *bs;

	memset(k, 0, sizeof(*k));
	k->info.listener = &e->l;
	k->info.worker = e->w;
	assert_non_null(k->s = tls_ssl_new(&e->base, &k->info));
	assert_non_null(k->c = SSL_new(e->client_ctx));
	if (sni != NULL)
		SSL_set_tlsext_host_name(k->c, sni);
	assert_int_equal(SSL_set_alpn_protos(k->c, (const unsigned char *)"\x08http/1.1\x02h2",
	    12), 0);
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(k->c, bc, bc);
	SSL_set_bio(k->s, bs, bs);
	SSL_set_connect_state(k->c);
	SSL_set_accept_state(k->s);	/* as libevent's BUFFEREVENT_SSL_ACCEPTING does */
}

static void
conn_close(struct conn *k)
{
	tls_release(&k->info);
	SSL_free(k->c);
	SSL_free(k->s);
}

static int
wants_io(SSL *ssl, int r)
{
	int e = SSL_get_error(ssl, r);

	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Run both sides until both finished (1) or one failed (0). */
static int
handshake(struct conn *k)
{
	int cdone = 0, sdone = 0, r;

	for (int i = 0; i < 64 && !(cdone && sdone); i++) {
		if (!cdone) {
			if ((r = SSL_do_handshake(k->c)) == 1)
				cdone = 1;
			else if (!wants_io(k->c, r))
				break;
		}
		if (!sdone) {
			if ((r = SSL_do_handshake(k->s)) == 1)
				sdone = 1;
			else if (!wants_io(k->s, r))
				break;
		}
	}
	ERR_clear_error();
	return cdone && sdone;
}

static void
test_switch_and_limit(void **state)
{
	struct env e;
	struct conn k1, k2, k3;

	(void)state;
	env_make(&e);

	/* SNI picks the host: its certificate is the one served */
	conn_open(&e, &k1, "A.Test");
	assert_true(handshake(&k1));
	assert_ptr_equal(k1.info.host, &e.host);
	assert_string_equal(k1.info.sni, "A.Test");
	assert_int_equal(k1.info.fail, TLS_FAIL_NONE);
	assert_int_equal(k1.info.counted, 1);
	assert_int_equal(X509_cmp(SSL_get0_peer_certificate(k1.c), e.server.leaf), 0);
	assert_int_equal(e.w->load[0].active, 1);

	/* max_connections 1: a second connection is refused... */
	conn_open(&e, &k2, "a.test");
	assert_false(handshake(&k2));
	assert_int_equal(k2.info.fail, TLS_FAIL_HOST_FULL);
	assert_string_equal(tls_fail_text(&k2.info, NULL, 0), "host max_connections reached");
	assert_int_equal(k2.info.counted, 0);
	conn_close(&k2);
	assert_int_equal(e.w->load[0].active, 1);

	/* ... until the first one is gone; releasing twice counts once */
	conn_close(&k1);
	tls_release(&k1.info);
	assert_int_equal(e.w->load[0].active, 0);
	conn_open(&e, &k3, "a.test");
	assert_true(handshake(&k3));
	assert_int_equal(e.w->load[0].active, 1);
	conn_close(&k3);
	assert_int_equal(e.w->load[0].active, 0);

	/* names nobody serves, with no default host */
	conn_open(&e, &k1, "b.test");
	assert_false(handshake(&k1));
	assert_int_equal(k1.info.fail, TLS_FAIL_UNKNOWN_NAME);
	assert_null(k1.info.host);
	conn_close(&k1);
	conn_open(&e, &k1, NULL);
	assert_false(handshake(&k1));
	assert_int_equal(k1.info.fail, TLS_FAIL_NO_NAME);
	conn_close(&k1);
	/* ... and with one */
	e.l.default_host = &e.host;
	conn_open(&e, &k1, NULL);
	assert_true(handshake(&k1));
	assert_string_equal(k1.info.sni, "");
	conn_close(&k1);
	assert_int_equal(e.w->load[0].active, 0);

	env_free(&e);
}

static void
test_allow_list(void **state)
{
	struct env e;
	struct conn k;
	char err[128];

	(void)state;
	env_make(&e);
	assert_int_equal(clientauth_allow_add(&e.allow, "CN:bob", err, sizeof(err)), 0);
	conn_open(&e, &k, "a.test");
	assert_false(handshake(&k));
	assert_int_equal(k.info.fail, TLS_FAIL_NOT_ALLOWED);
	conn_close(&k);

	assert_int_equal(clientauth_allow_add(&e.allow, "CN:alice", err, sizeof(err)), 0);
	conn_open(&e, &k, "a.test");
	assert_true(handshake(&k));
	conn_close(&k);

	/* a client certificate nobody trusts */
	X509_STORE *store = X509_STORE_new();
	assert_non_null(store);
	SSL_CTX_set_cert_store(e.host_ctx, store);
	conn_open(&e, &k, "a.test");
	assert_false(handshake(&k));
	assert_int_equal(k.info.fail, TLS_FAIL_CLIENT_CERT);
	{
		char text[200];
		assert_string_equal(tls_fail_text(&k.info, text, sizeof(text)),
		    "client certificate: unable to get local issuer certificate");
	}
	conn_close(&k);
	env_free(&e);
}

/* What a real handshake was, and its PROXY v2 header. */
static void
test_facts(void **state)
{
	struct env e;
	struct conn k;
	struct tls_facts f;
	struct proxy_tlvs t;
	struct proxy_info pi;
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(50000) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(443) };
	unsigned char *der = NULL;
	const uint8_t *v;
	uint8_t buf[PROXY_MAX_HEADER];
	size_t vlen;
	ssize_t n;
	int der_len;

	(void)state;
	env_make(&e);
	inet_pton(AF_INET, "192.0.2.1", &src.sin_addr);
	inet_pton(AF_INET, "198.51.100.2", &dst.sin_addr);
	conn_open(&e, &k, "a.test");
	assert_true(handshake(&k));

	tls_facts_get(k.s, TLS_CERT_DER, &f);
	assert_int_equal(f.alpn_len, 2);	/* ours first: the server's preference */
	assert_memory_equal(f.alpn, "h2", 2);
	assert_string_equal(f.sni, "a.test");
	assert_string_equal(f.version, "TLSv1.3");
	assert_non_null(f.cipher);
	assert_string_equal(f.cipher, SSL_get_cipher_name(k.c));
	assert_string_equal(f.sig_alg, "ecdsa-with-SHA256");
	assert_string_equal(f.key_alg, "EC256");
	assert_int_equal(f.client_cert, 1);
	assert_int_equal(f.client_cert_now, 1);
	assert_int_equal(f.client_verified, 1);
	assert_string_equal(f.client_cn, "alice");
	der_len = i2d_X509(e.client.leaf, &der);
	assert_true(der_len > 0);
	assert_int_equal(f.client_cert_len, (size_t)der_len);
	assert_memory_equal(f.client_cert_data, der, (size_t)der_len);

	proxy_tlvs_from_tls(&f, 0xE3, &t);
	n = proxy_encode_v2((struct sockaddr *)&src, (struct sockaddr *)&dst, &t, buf,
	    sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(proxy_decode(buf, (size_t)n, &pi), n);
	assert_int_equal(pi.have, PROXY_HAVE_ALPN | PROXY_HAVE_AUTHORITY | PROXY_HAVE_SSL |
	    PROXY_HAVE_SSL_VERSION | PROXY_HAVE_SSL_CN | PROXY_HAVE_SSL_CIPHER |
	    PROXY_HAVE_SSL_SIG_ALG | PROXY_HAVE_SSL_KEY_ALG);
	assert_string_equal((const char *)pi.alpn, "h2");
	assert_string_equal(pi.authority, "a.test");
	assert_int_equal(pi.ssl.client, PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN |
	    PP2_CLIENT_CERT_SESS);
	assert_int_equal(pi.ssl.verify, 0);
	assert_string_equal(pi.ssl.version, "TLSv1.3");
	assert_string_equal(pi.ssl.cn, "alice");
	assert_string_equal(pi.ssl.cipher, f.cipher);
	assert_string_equal(pi.ssl.sig_alg, "ecdsa-with-SHA256");
	assert_string_equal(pi.ssl.key_alg, "EC256");
	assert_non_null(v = proxy_find_tlv(buf, (size_t)n, 0xE3, &vlen));
	assert_int_equal(vlen, (size_t)der_len);
	assert_memory_equal(v, der, vlen);
	tls_facts_free(&f);
	assert_null(f.client_cert_data);
	tls_facts_free(&f);	/* twice: nothing left to free */

	/* PEM, and none */
	tls_facts_get(k.s, TLS_CERT_PEM, &f);
	assert_true(f.client_cert_len > 27);
	assert_memory_equal(f.client_cert_data, "-----BEGIN CERTIFICATE-----", 27);
	tls_facts_free(&f);
	tls_facts_get(k.s, TLS_CERT_NONE, &f);
	assert_null(f.client_cert_data);
	assert_int_equal(f.client_cert_len, 0);
	proxy_tlvs_from_tls(&f, 0xE3, &t);
	assert_null(t.cert);
	tls_facts_free(&f);
	OPENSSL_free(der);
	conn_close(&k);

	/* no client certificate asked for, no ALPN: verify is 1, no CN */
	SSL_CTX_set_verify(e.host_ctx, SSL_VERIFY_NONE, NULL);
	e.th.alpn_wire = NULL;
	conn_open(&e, &k, "a.test");
	assert_true(handshake(&k));
	tls_facts_get(k.s, TLS_CERT_DER, &f);
	assert_int_equal(f.client_cert, 0);
	assert_null(f.alpn);
	assert_string_equal(f.client_cn, "");
	assert_null(f.client_cert_data);
	proxy_tlvs_from_tls(&f, 0xE0, &t);
	assert_int_equal(t.ssl.client, PP2_CLIENT_SSL);
	assert_int_equal(t.ssl.verify, 1);
	assert_null(t.ssl.cn);
	assert_null(t.alpn);
	tls_facts_free(&f);
	conn_close(&k);
	env_free(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_complete),
		cmocka_unit_test(test_names_covered),
		cmocka_unit_test(test_names_from_cert),
		cmocka_unit_test(test_key_and_validity),
		cmocka_unit_test(test_name_text),
		cmocka_unit_test(test_ticket_keys),
		cmocka_unit_test(test_file_cache),
		cmocka_unit_test(test_key_kinds),
		cmocka_unit_test(test_switch_and_limit),
		cmocka_unit_test(test_allow_list),
		cmocka_unit_test(test_facts),
	};

	if (tls_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
