/*
 * filewatch.h: has any of a set of files changed? The main process's
 * periodic check of the certificate and key files in use (supervisor.c),
 * so that a certificate renewed by another tool (certbot without a deploy
 * hook, or another tlsfront sharing an ACME state_dir) goes into service
 * without a SIGHUP.
 *
 * A file's identity is what tls_files.c keys its cache by: device, inode,
 * size, modification and change times; or "does not exist". One stat() per
 * distinct path and check. Pure apart from stat(); no logging.
 */
#ifndef TLSFRONT_FILEWATCH_H
#define TLSFRONT_FILEWATCH_H

#include <stddef.h>

struct filewatch;

/* An empty watch (the caller frees it with filewatch_free); NULL: out of
 * memory. filewatch_free(NULL) is a no-op. */
struct filewatch *filewatch_new(void);
void filewatch_free(struct filewatch *w);

/*
 * Watch exactly paths[0..n) from now on (duplicates are watched once; the
 * strings are copied). A path watched before keeps the identity last seen,
 * so a change not yet reported still is; a new one is taken as it is now.
 * Returns 0, or -1 out of memory (the old set stays).
 */
int filewatch_set(struct filewatch *w, const char *const *paths, size_t n);

/* Take every watched file as it is now: a reload is about to read them, so
 * what it reads is not a change any more (whether the reload succeeds or
 * not: a failed one is not retried until the files change again). */
void filewatch_snapshot(struct filewatch *w);

/*
 * Compare every watched file with its identity last seen. Returns how many
 * changed (each now seen as it is), and the first of them in *first (the
 * watch's storage, valid until the next call that changes the set).
 */
size_t filewatch_check(struct filewatch *w, const char **first);

#endif
