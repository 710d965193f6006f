/* acme_store.c: see acme_store.h (and acme.h for the layout). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_store.h"

#define STORE_MAX_FILE (1 << 20)

/* A file name component we may put under state_dir: not empty, no '/',
 * not starting with '.' (no "..", no hidden or temporary names). Labels
 * and names come from the config, but names also from the CA's answers. */
static int
safe_component(const char *s)
{
	return s != NULL && *s != '\0' && *s != '.' && strchr(s, '/') == NULL;
}

static const char *
path_fmt(char *buf, size_t n, const char *dir, const char *sub, const char *base,
    const char *ext)
{
	int r;

	if (dir == NULL || !safe_component(base))
		return NULL;
	r = snprintf(buf, n, "%s/%s/%s.%s", dir, sub, base, ext);
	return r < 0 || (size_t)r >= n ? NULL : buf;
}

const char *
acme_cert_path(const struct acme_config *cfg, const char *label, char *buf, size_t n)
{
	return path_fmt(buf, n, cfg->state_dir, "certs", label, "pem");
}

const char *
acme_challenge_path(const char *state_dir, const char *name, char *buf, size_t n)
{
	return path_fmt(buf, n, state_dir, "challenges", name, "pem");
}

const char *
acme_store_account_path(const char *state_dir, const char *directory, const char *ext,
    char *buf, size_t n)
{
	unsigned char md[32];
	char hex[33];

	if (directory == NULL ||
	    EVP_Digest(directory, strlen(directory), md, NULL, EVP_sha256(), NULL) != 1)
		return NULL;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return path_fmt(buf, n, state_dir, "account", hex, ext);
}

static int
mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

int
acme_store_mkdirs(const char *state_dir)
{
	static const char *const subs[] = { "account", "certs", "challenges" };
	char p[PATH_MAX];

	if (mkdir_0700(state_dir) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		int r = snprintf(p, sizeof(p), "%s/%s", state_dir, subs[i]);
		if (r < 0 || (size_t)r >= sizeof(p)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (mkdir_0700(p) != 0)
			return -1;
	}
	return 0;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so that a rename in it survives a
 * crash: without it the new name may be lost while the old data is gone. */
static int
fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : (size_t)(slash - path);
	int fd, r;

	if (n == 0)
		n = 1;	/* "/file" */
	if (n >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, slash == NULL ? "." : path, n);
	dir[n] = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
acme_store_write(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, r, e;

	/* ".tmp" after the name, so no reader globbing for *.pem sees it */
	r = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (r < 0 || (size_t)r >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -1;
	if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
		goto err;
	if (close(fd) != 0) {
		fd = -1;
		goto err;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto err;
	return fsync_dir_of(path);
err:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

char *
acme_store_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *buf = NULL;
	size_t n = 0;
	struct stat st;
	int e;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0)
		goto err;
	if (!S_ISREG(st.st_mode) || st.st_size > STORE_MAX_FILE) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto err;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		goto err;
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto err;
		if (r == 0)
			break;	/* shrank meanwhile: take what is there */
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	if (len != NULL)
		*len = n;
	return buf;
err:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return NULL;
}

int
acme_store_remove(const char *path)
{
	return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int
acme_store_lock(const char *state_dir)
{
	char p[PATH_MAX];
	int fd, r = snprintf(p, sizeof(p), "%s/lock", state_dir);

	if (r < 0 || (size_t)r >= sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		r = errno;
		close(fd);
		errno = r;
		return -1;
	}
	return fd;
}

void
acme_store_unlock(int fd)
{
	if (fd < 0)
		return;
	flock(fd, LOCK_UN);
	close(fd);
}

static int
asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

static unsigned char *
dup_bytes(const unsigned char *p, size_t n)
{
	unsigned char *d = malloc(n ? n : 1);

	if (d != NULL && n)
		memcpy(d, p, n);
	return d;
}

/* The AKI keyIdentifier and the serial's DER content bytes (big-endian,
 * with a leading zero when the top bit is set, as DER keeps it). */
static int
ari_parts(X509 *x, struct acme_cert_info *info)
{
	const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	int n, rc = -1;

	if (bn == NULL)
		return -1;
	if (kid != NULL && ASN1_STRING_length(kid) > 0) {
		info->aki_len = (size_t)ASN1_STRING_length(kid);
		if ((info->aki = dup_bytes(ASN1_STRING_get0_data(kid), info->aki_len)) == NULL)
			goto out;
	}
	n = BN_num_bytes(bn);
	if ((info->serial = malloc((size_t)n + 1)) == NULL)
		goto out;
	info->serial[0] = 0;
	BN_bn2bin(bn, info->serial + 1);
	if (n > 0 && (info->serial[1] & 0x80) == 0) {
		memmove(info->serial, info->serial + 1, (size_t)n);
		info->serial_len = (size_t)n;
	} else {
		info->serial_len = (size_t)n + 1;
	}
	rc = 0;
out:
	BN_free(bn);
	return rc;
}

static int
covers_all(X509 *x, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (X509_check_host(x, names[i], 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1)
			return 0;
	return 1;
}

int
acme_store_cert_info(const char *path, const char *const *names, size_t n,
    struct acme_cert_info *info)
{
	size_t len;
	char *pem = acme_store_read(path, &len);
	BIO *b = NULL;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	if (pem == NULL)
		return -1;
	if ((b = BIO_new_mem_buf(pem, (int)len)) == NULL)
		goto out;
	key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	(void)BIO_reset(b);
	/* PEM_read_bio_X509 skips the key block before the leaf */
	if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		goto out;
	if (asn1_time(X509_get0_notBefore(x), &info->not_before) != 0 ||
	    asn1_time(X509_get0_notAfter(x), &info->not_after) != 0 || ari_parts(x, info) != 0)
		goto out;
	info->covers = covers_all(x, names, n);
	info->key_matches = key != NULL && X509_check_private_key(x, key) == 1;
	rc = 0;
out:
	if (rc != 0) {
		acme_cert_info_free(info);
		errno = EINVAL;
	}
	EVP_PKEY_free(key);
	X509_free(x);
	BIO_free(b);
	free(pem);
	ERR_clear_error();	/* a mismatch or a missing key left its reasons there */
	return rc;
}

void
acme_cert_info_free(struct acme_cert_info *info)
{
	free(info->aki);
	free(info->serial);
	info->aki = info->serial = NULL;
	info->aki_len = info->serial_len = 0;
}
