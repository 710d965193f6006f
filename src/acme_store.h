/*
 * acme_store.h: the state_dir of acme.h on disk: its directories (0700),
 * files written whole (0600, temporary file, fsync, rename, fsync of the
 * directory), the order lock (flock), and what a stored certificate says
 * (validity, names, RFC 9773 certID). Also implements acme.h's two path
 * functions, so that the main process and the workers can link this file
 * without the ACME client's network code.
 *
 * No function here logs: each returns -1 with errno set and the caller
 * says what it was doing.
 */
#ifndef TLSFRONT_ACME_STORE_H
#define TLSFRONT_ACME_STORE_H

#include <stddef.h>
#include <time.h>

/* Make state_dir and its account/, certs/ and challenges/ (0700) where
 * they are missing; existing ones are left as they are. 0 or -1. */
int acme_store_mkdirs(const char *state_dir);

/*
 * Replace path by len bytes of data, all or nothing: written to a new
 * temporary file beside it (mode 0600, close-on-exec), fsync'ed, renamed
 * over path, then the directory fsync'ed. On failure path is untouched
 * and the temporary file is gone. 0 or -1.
 */
int acme_store_write(const char *path, const void *data, size_t len);

/*
 * The whole file at path, NUL-terminated (the NUL not counted in *len;
 * len may be NULL), malloc'ed: the caller frees it. NULL with errno
 * ENOENT if there is no file, EFBIG if it is over 1 MiB.
 */
char *acme_store_read(const char *path, size_t *len);

/* Remove path; a missing file is fine. 0 or -1. */
int acme_store_remove(const char *path);

/*
 * Take the order lock: state_dir/lock (created 0600), flock(LOCK_EX |
 * LOCK_NB) on a descriptor of its own. Returns that descriptor (the
 * caller gives it to acme_store_unlock), or -1 with errno EWOULDBLOCK when
 * another descriptor (this process or another) holds it, or another errno.
 */
int acme_store_lock(const char *state_dir);

/* Release and close a descriptor of acme_store_lock; -1 is a no-op. */
void acme_store_unlock(int fd);

/* state_dir/account/DIRHASH.EXT (ext "key" or "json"), DIRHASH the first
 * 16 bytes of SHA-256(directory URL) in hex. NULL if it does not fit. */
const char *acme_store_account_path(const char *state_dir, const char *directory,
    const char *ext, char *buf, size_t n);

/* What a stored certificate file says. */
struct acme_cert_info {
	time_t not_before, not_after;	/* of the leaf */
	int covers;		/* the leaf covers every name asked for (exact SAN match) */
	int key_matches;	/* the file's key is the leaf's */
	/* for the RFC 9773 certID (acme_ari_id): the leaf's AKI keyIdentifier
	 * (NULL, 0 without one) and its serial's DER content bytes, malloc'ed */
	unsigned char *aki, *serial;
	size_t aki_len, serial_len;
};

/*
 * Read certs/LABEL.pem at path (a key then the chain, leaf first) into
 * *info, checking the leaf against names[0..n-1]. 0; or -1 with errno
 * ENOENT (no file) or EINVAL (no certificate or unreadable), and *info
 * then holds nothing to free. Free with acme_cert_info_free.
 */
int acme_store_cert_info(const char *path, const char *const *names, size_t n,
    struct acme_cert_info *info);

/* Free what info holds (not info itself); a zeroed info is fine. */
void acme_cert_info_free(struct acme_cert_info *info);

#endif
