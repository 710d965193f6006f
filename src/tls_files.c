/*
 * tls_files.c: reading the files TLS needs. The cache of parsed certificate
 * and key files (tls_files_*), which lets a reload parse only the files
 * that changed; the fast path for PEM keys; and the checks every file
 * passes before anything reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "tls_int.h"

/*
 * Only regular files of at most TLS_FILE_MAX bytes pass: OpenSSL's fopen()
 * of a FIFO blocks until a writer comes, a device such as /dev/zero never
 * ends (the ticket key reader spun on it for ever, in `tlsfront -t` and in a
 * reload alike), and the PEM reader keeps a whole base64 body in memory.
 */
int
tls_readable(const char *key, const char *path, struct loc at, struct diag *d)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		diag_error_at(d, at, "%s: cannot open %s: %s", key, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		diag_error_at(d, at, "%s: cannot read %s: %s", key, path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		diag_error_at(d, at, "%s: %s is a directory", key, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error_at(d, at, "%s: %s is not a regular file", key, path);
		return -1;
	}
	if (st.st_size > TLS_FILE_MAX) {
		diag_error_at(d, at, "%s: %s is too large (%lld bytes; the limit is %d)", key,
		    path, (long long)st.st_size, TLS_FILE_MAX);
		return -1;
	}
	return 0;
}

int
tls_read_small_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	unsigned char *buf = NULL;
	size_t n = 0;

	if (f == NULL)
		return -1;
	if ((buf = malloc(max + 1)) != NULL)
		n = fread(buf, 1, max + 1, f);
	if (buf == NULL || ferror(f) || n > max) {
		int e = buf == NULL ? ENOMEM : n > max ? EFBIG : EIO;
		free(buf);
		fclose(f);
		errno = e;
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* ---- keys -------------------------------------------------------------------- */

/*
 * PEM_read_bio_PrivateKey builds a new OSSL_DECODER context for every key
 * and tries every format, which was most of the cost of a key file. The
 * fast path reads the PEM block itself and decodes its DER with a decoder
 * context made once per kind of block and then reused. Such a context keeps
 * the address its result goes to (OSSL_DECODER_CTX_new_for_pkey binds it at
 * creation), so that address lives here, with the contexts.
 */
#define KEY_KINDS 5

struct key_decoders {
	OSSL_DECODER_CTX *ctx[KEY_KINDS];
	EVP_PKEY *result;	/* where every ctx[] writes the key it decoded */
};

/* What OpenSSL's general path reports through the pass-phrase callback. */
struct key_read {
	int wanted_password;
};

/* Encrypted keys are not supported: never prompt on a terminal for a
 * pass phrase (OpenSSL's default), fail and say why (u: struct key_read). */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
	struct key_read *kr = u;

	(void)buf;
	(void)size;
	(void)rwflag;
	kr->wanted_password = 1;
	return -1;
}

/*
 * The key of the PEM file in bio, by the fast path. NULL (with the file
 * rewound) for anything unusual: encrypted keys, other labels, a decoder
 * failure; the caller then takes OpenSSL's general path, with its error
 * messages.
 */
static EVP_PKEY *
read_key_fast(struct key_decoders *kd, BIO *bio)
{
	static const struct {
		const char *label, *structure, *type;
	} kinds[KEY_KINDS] = {
		{ "PRIVATE KEY", "PrivateKeyInfo", NULL },
		{ "EC PRIVATE KEY", "type-specific", "EC" },
		{ "RSA PRIVATE KEY", "type-specific", "RSA" },
		/* PKCS#8 of a known algorithm: a decoder context of that type
		 * only; one for any type tries every decoder in turn, which was
		 * the larger part of reading an EC key */
		{ NULL, "PrivateKeyInfo", "EC" },
		{ NULL, "PrivateKeyInfo", "RSA" },
	};
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	EVP_PKEY *key = NULL;
	int k = -1;

	/* skip other blocks (openssl ecparam -genkey writes EC PARAMETERS first) */
	while (k < 0 && PEM_read_bio_ex(bio, &name, &header, &der, &len,
	    PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) == 1) {
		for (int i = 0; i < 3; i++)
			if (strcmp(name, kinds[i].label) == 0 && header[0] == '\0')
				k = i;
		if (k < 0) {
			OPENSSL_free(name);
			OPENSSL_free(header);
			OPENSSL_secure_clear_free(der, (size_t)len);
			name = header = NULL;
			der = NULL;
		}
	}
	if (k == 0) {
		const unsigned char *q = der;
		PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, len);
		const ASN1_OBJECT *alg = NULL;

		if (p8 != NULL && PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8) == 1) {
			int nid = OBJ_obj2nid(alg);
			k = nid == NID_X9_62_id_ecPublicKey ? 3 : nid == NID_rsaEncryption ? 4 : 0;
		}
		PKCS8_PRIV_KEY_INFO_free(p8);	/* clears the key it held */
	}
	if (k >= 0) {
		if (kd->ctx[k] == NULL)
			kd->ctx[k] = OSSL_DECODER_CTX_new_for_pkey(&kd->result, "DER",
			    kinds[k].structure, kinds[k].type, OSSL_KEYMGMT_SELECT_KEYPAIR,
			    NULL, NULL);
		const unsigned char *p = der;
		size_t n = (size_t)len;
		kd->result = NULL;
		if (kd->ctx[k] != NULL && OSSL_DECODER_from_data(kd->ctx[k], &p, &n) == 1)
			key = kd->result;
		kd->result = NULL;
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_secure_clear_free(der, (size_t)len);
	if (key == NULL) {
		ERR_clear_error();
		(void)BIO_reset(bio);
	}
	return key;
}

/* ---- the cache -------------------------------------------------------------- */

/*
 * Parsing PEM is most of the cost of a host's set-up. The main process
 * keeps what it parsed, by path, for as long as the file's identity
 * (device, inode, size, modification and change times) stays the same: a
 * reload re-reads only the files that changed, so renewing a few
 * certificates among thousands of hosts stays cheap.
 */
struct cached_file {
	char *path;
	struct stat st;
	STACK_OF(X509) *certs;		/* a certificate file: leaf first */
	EVP_PKEY *key;			/* a key file */
	unsigned long used_by;		/* the last build that used it */
	unsigned long read_by;		/* the build that parsed it */
};

/*
 * The one cache of the process (the main process: workers never build).
 * Builds are numbered: the one under way, and the one of the generation in
 * service (0: none yet), against which a build counts the files it read.
 * The index by path keeps a load of many hosts from being quadratic: open
 * addressing, slots hold index + 1 (0: empty), under half full; rebuilt
 * when it grows and after a sweep compacts the files.
 */
static struct file_cache {
	struct cached_file *files;
	size_t n_files, cap;
	unsigned long build, kept;
	size_t *index;
	size_t index_size;		/* a power of two, > 2 * n_files */
	struct key_decoders decoders;
} cache;

static size_t
path_hash(const char *p)
{
	size_t h = 14695981039346656037ULL;	/* FNV-1a */

	while (*p)
		h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
	return h;
}

static void
index_add(size_t i)
{
	size_t h = path_hash(cache.files[i].path) & (cache.index_size - 1);

	while (cache.index[h] != 0)
		h = (h + 1) & (cache.index_size - 1);
	cache.index[h] = i + 1;
}

/* Make room in the index for n entries and index files[0..n_files).
 * Never shrinks, so it fails only when growing, leaving the old index. */
static int
reindex(size_t n)
{
	size_t want = cache.index_size ? cache.index_size : 64;

	while (want <= 2 * n)
		want *= 2;
	if (want != cache.index_size) {
		size_t *ix = calloc(want, sizeof(*ix));
		if (ix == NULL)
			return -1;
		free(cache.index);
		cache.index = ix;
		cache.index_size = want;
	} else {
		memset(cache.index, 0, want * sizeof(*cache.index));
	}
	for (size_t i = 0; i < cache.n_files; i++)
		index_add(i);
	return 0;
}

/* The entry for path and kind, or NULL. */
static struct cached_file *
find(const char *path, int is_key)
{
	if (cache.index_size == 0)
		return NULL;
	for (size_t h = path_hash(path) & (cache.index_size - 1); cache.index[h] != 0;
	    h = (h + 1) & (cache.index_size - 1)) {
		struct cached_file *e = &cache.files[cache.index[h] - 1];
		if (strcmp(e->path, path) == 0 && (is_key ? e->key != NULL : e->certs != NULL))
			return e;
	}
	return NULL;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void
cached_file_clear(struct cached_file *f)
{
	free(f->path);
	sk_X509_pop_free(f->certs, X509_free);
	EVP_PKEY_free(f->key);
	memset(f, 0, sizeof(*f));
}

/* The certificates (is_key 0) or the key (is_key 1) of path, read now or
 * earlier. NULL with OpenSSL's error queue (or errno) telling why, and
 * kr->wanted_password set for an encrypted key. The entry is the cache's. */
static struct cached_file *
get(const char *path, int is_key, struct key_read *kr)
{
	struct cached_file *f, nf;
	struct stat st;
	BIO *bio;
	X509 *x;

	if (stat(path, &st) != 0)
		return NULL;
	if ((f = find(path, is_key)) != NULL && same_file(&f->st, &st)) {
		f->used_by = cache.build;
		return f;
	}
	/* f != NULL: changed, read it again into this slot */
	memset(&nf, 0, sizeof(nf));
	nf.st = st;
	if ((bio = BIO_new_file(path, "r")) == NULL)
		return NULL;
	if (is_key) {
		if ((nf.key = read_key_fast(&cache.decoders, bio)) == NULL)
			nf.key = PEM_read_bio_PrivateKey(bio, NULL, no_password, kr);
	} else if ((nf.certs = sk_X509_new_null()) != NULL &&
	    (x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL) {
		/* the leaf, then the chain: as SSL_CTX_use_certificate_chain_file */
		do {
			if (!sk_X509_push(nf.certs, x)) {
				X509_free(x);
				break;
			}
		} while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL);
		if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
			ERR_clear_error();	/* the end of the file */
	}
	BIO_free(bio);
	if (is_key ? nf.key == NULL : sk_X509_num(nf.certs) <= 0) {
		sk_X509_pop_free(nf.certs, X509_free);
		return NULL;
	}
	if (f == NULL) {
		if (cache.n_files == cache.cap) {
			size_t cap = cache.cap ? 2 * cache.cap : 64;
			struct cached_file *v = realloc(cache.files, cap * sizeof(*v));
			if (v == NULL)
				goto err;
			cache.files = v;
			cache.cap = cap;
		}
		if (2 * (cache.n_files + 1) >= cache.index_size && reindex(cache.n_files + 1) != 0)
			goto err;
		if ((nf.path = strdup(path)) == NULL)
			goto err;
		f = &cache.files[cache.n_files++];
		*f = nf;
		index_add(cache.n_files - 1);
	} else {
		nf.path = f->path;
		f->path = NULL;
		cached_file_clear(f);
	}
	*f = nf;
	f->used_by = f->read_by = cache.build;
	return f;
err:
	sk_X509_pop_free(nf.certs, X509_free);
	EVP_PKEY_free(nf.key);
	return NULL;
}

STACK_OF(X509) *
tls_files_certs(const char *path)
{
	struct key_read kr = { 0 };
	struct cached_file *f = get(path, 0, &kr);

	return f != NULL ? f->certs : NULL;
}

EVP_PKEY *
tls_files_key(const char *path, int *encrypted)
{
	struct key_read kr = { 0 };
	struct cached_file *f = get(path, 1, &kr);

	*encrypted = f == NULL && kr.wanted_password;
	return f != NULL ? f->key : NULL;
}

void
tls_files_begin(void)
{
	cache.build++;
}

/*
 * Counted here, by file, not in get(): a file that several hosts share is
 * looked up once per host, and a file given as both cert and key (one PEM
 * with both) has an entry of each kind. A file is read for this build if it
 * was parsed after the generation in service was built: by this build, or
 * by a build thrown away since (a failed reload), whose lookups count for
 * nothing here.
 */
void
tls_files_sweep(unsigned long *read, unsigned long *unchanged)
{
	unsigned long nread = 0, nsame = 0;
	size_t n = 0;

	for (size_t i = 0; i < cache.n_files; i++) {
		if (cache.files[i].used_by != cache.build) {
			cached_file_clear(&cache.files[i]);
			continue;
		}
		cache.files[n++] = cache.files[i];
	}
	cache.n_files = n;
	(void)reindex(cache.n_files);	/* same size: cannot fail */
	for (size_t i = 0; i < cache.n_files; i++) {
		struct cached_file *e = &cache.files[i];
		struct cached_file *o = find(e->path, e->key == NULL);
		unsigned long r = o != NULL && o->read_by > e->read_by ? o->read_by : e->read_by;
		if (o != NULL && o < e)
			continue;	/* the other kind of the path counted it */
		if (r > cache.kept)
			nread++;
		else
			nsame++;
	}
	if (read != NULL)
		*read = nread;
	if (unchanged != NULL)
		*unchanged = nsame;
}

void
tls_files_kept(void)
{
	cache.kept = cache.build;
}
