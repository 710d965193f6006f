/*
 * acme.h: certificates from an ACME CA (RFC 8555) with the TLS-ALPN-01
 * challenge (RFC 8737), as the rest of tlsfront sees it.
 *
 * Who does what:
 *   - the ACME client (acme.c and the acme_*.c it uses) runs in a child of
 *     the main process, unprivileged, and is the only code that talks to the
 *     CA over the network or holds the account key (acme_run);
 *   - it keeps everything in state_dir, whose layout below is the whole
 *     contract between it, the main process and the workers;
 *   - the workers answer a TLS-ALPN-01 validation by reading the challenge
 *     file of the name the validator asks for (acme_challenge_path), so a
 *     challenge is answered as soon as the file is there, by every instance
 *     sharing state_dir, without a reload;
 *   - the main process serves each ACME host's certificate from its file
 *     (acme_cert_path) like any cert/key pair, and reloads when the client
 *     says a certificate changed (a line on the notify pipe) or when its
 *     periodic file check sees one changed (another instance renewed it).
 *
 * state_dir layout (directories 0700, files 0600, owned by the user the
 * client runs as; every file is written to a temporary name and renamed):
 *   account/DIRHASH.key      the account key (PEM), per directory URL
 *   account/DIRHASH.json     {"url": kid, "directory": URL}
 *   certs/LABEL.pem          an ACME host's private key, then its chain,
 *                            leaf first: cert and key in one file, so that
 *                            one rename replaces both together
 *   challenges/NAME.pem      the RFC 8737 certificate for a pending
 *                            authorization of NAME (lower case), then its
 *                            key; removed once the authorization is over
 *   lock                     flock(LOCK_EX) while one instance orders
 */
#ifndef TLSFRONT_ACME_H
#define TLSFRONT_ACME_H

#include <stddef.h>

enum acme_key_type { ACME_KEY_EC256 = 0, ACME_KEY_EC384, ACME_KEY_RSA2048, ACME_KEY_RSA4096 };

/* [acme] of the main file; strings owned by the config. */
struct acme_config {
	int enabled;			/* directory set */
	char *directory;		/* the directory URL */
	char *contact;			/* "mailto:..." or NULL */
	char *directory_ca;		/* CA file for the directory's TLS, or NULL */
	char *state_dir;		/* absolute path */
	unsigned long long renew_before_s;	/* 0: when a third of the lifetime is left */
	int key_type;			/* enum acme_key_type */
};

/* One host with acme = yes. */
struct acme_host {
	const char *label;		/* the host's label (certs/LABEL.pem) */
	const char *const *names;	/* its names, normalised, no wildcard */
	size_t n_names;
};

/*
 * The notify pipe, child to main: one line per event, each written with one
 * write() (under PIPE_BUF):
 *   "cert LABEL\n"              certs/LABEL.pem was replaced: reload
 *   "order LABEL RESULT\n"      an order ended; RESULT is ok | error
 *                               (tlsfront_acme_orders_total{host,result})
 */

/*
 * The ACME client's loop, in the child process (already unprivileged).
 * Never returns while notify_fd's reader is alive and no SIGTERM came;
 * returns the exit code then. cfg and hosts are the child's copy (the
 * generation it was forked with). An unreachable directory is retried
 * with backoff (1 min doubling to 1 day, with jitter), never fatal.
 */
int acme_run(const struct acme_config *cfg, const struct acme_host *hosts, size_t n,
    int notify_fd);

/* Paths of the layout above into buf (n bytes); NULL if they do not fit.
 * name is normalised (lower case); no file is opened. */
const char *acme_cert_path(const struct acme_config *cfg, const char *label, char *buf,
    size_t n);
const char *acme_challenge_path(const char *state_dir, const char *name, char *buf, size_t n);

#endif
