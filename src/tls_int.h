/*
 * tls_int.h: what the TLS modules share among themselves and nobody else
 * (the rest of the daemon uses tls.h). Every function here is defined in the
 * module its section names.
 */
#ifndef TLSFRONT_TLS_INT_H
#define TLSFRONT_TLS_INT_H

#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clientauth.h"
#include "config.h"
#include "diag.h"
#include "gen.h"
#include "tls.h"

/* The largest cert, key, CA, CRL, OCSP or ticket key file we read. */
#define TLS_FILE_MAX (16 * 1024 * 1024)

/* A host's TLS side (tls.h). Made by tls_host_setup, read-only after. */
struct tls_host {
	SSL_CTX *ctx;			/* its TLS settings: shared by the hosts with the
					 * same ones (a reference each; tls.c) */
	X509 *leaf;			/* its certificate, the rest of the file's chain */
	STACK_OF(X509) *chain;		/* and its key: put on each connection by the */
	EVP_PKEY *key;			/* ClientHello callback (a reference each) */
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];	/* its session-id context */
	char *groups;			/* the groups this OpenSSL accepts, "a:b:c" */
	int groups_as_base;		/* the base context offers the same groups */
	unsigned char *alpn_wire;	/* ALPN list in wire format, NULL: no ALPN */
	size_t alpn_wire_len;
	int keylog_fd;			/* keylog_file, O_APPEND, shared by the workers; -1: none */
	int keylog_created;		/* this generation created the file */
	unsigned char *ocsp;		/* ocsp_file: the DER response to staple, NULL: none */
	size_t ocsp_len;
	time_t ocsp_next_update;	/* stapled until then; 0: the response has no nextUpdate */
};

/* A session-ticket key (the layout of nginx's 80-byte key files). */
struct ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

/* The keys from ticket_key_file, newest (the one that encrypts) first. */
struct ticket_keys {
	struct ticket_key *keys;
	size_t n_keys;
};

/* A generation's base context (tls.h). */
struct tls_base {
	SSL_CTX *ctx;			/* session context of every connection */
	struct ticket_keys tickets;	/* empty: keys derived from the process secret */
	unsigned rotation_ms;		/* ticket_key_rotation, for derived keys */
	const char *acme_state_dir;	/* the config's [acme] state_dir; NULL: off */
};

/* What one worker changes per host (tls.h tls_worker_new). */
struct tls_host_load {
	unsigned active;		/* its connections to the host now */
	struct sess_ring *sessions;	/* its cached session IDs; NULL until the first */
};

struct tls_worker {
	const struct host *hosts;	/* the generation's, for positions */
	size_t n_hosts;
	const struct tls_base *base;
	struct tls_host_load *load;	/* [n_hosts] */
	long long key_period;		/* the rotation period of keys[]; -1: none yet */
	struct ticket_key keys[2];	/* derived: that period's, the one before */
};

/* ---- tls_accept.c: the handshake callbacks -------------------------------- */

extern int tls_info_idx;		/* SSL ex_data index of the struct tls_info */

/* The connection's info (tls_ssl_new), or NULL for an SSL without one. */
static inline struct tls_info *
tls_info_of(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, tls_info_idx);
}

/*
 * OpenSSL's callbacks, which tls.c sets on the contexts. Each finds the
 * connection's tls_info through the SSL and changes only that info and its
 * worker's state (struct tls_worker), never the generation.
 */
int tls_client_hello_cb(SSL *ssl, int *al, void *arg);
int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned inlen, void *arg);
int tls_verify_cb(int ok, X509_STORE_CTX *xs);
void tls_keylog_cb(const SSL *ssl, const char *line);
int tls_status_cb(SSL *ssl, void *arg);

/* ---- tls_acme.c: the TLS-ALPN-01 challenge (RFC 8737) ---------------------- */

/* Does the ClientHello being handled offer the ALPN protocol acme-tls/1? */
int tls_acme_offered(SSL *ssl);

/*
 * The ClientHello callback's answer to a hello offering acme-tls/1 for the
 * SNI name[0..n): the challenge certificate of state_dir/challenges/NAME.pem
 * (acme.h), read now, put on ssl, info->acme_challenge set, and
 * SSL_CLIENT_HELLO_SUCCESS; without such a file, info->fail, *al =
 * no_application_protocol and SSL_CLIENT_HELLO_ERROR. Never a host's
 * certificate, never a backend.
 */
int tls_acme_hello(SSL *ssl, struct tls_info *info, const unsigned char *name, size_t n,
    int *al);

/* The ALPN callback for such a connection: selects acme-tls/1 from in. */
int tls_acme_alpn(const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned inlen);

/* ---- tls_tickets.c: ticket keys and the session-ID shares ------------------ */

/* The base context's callbacks (as those above): the ticket keys of the
 * connection's worker; a new session counted in its host's share. */
int tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc);
int tls_new_session_cb(SSL *ssl, SSL_SESSION *sess);

/*
 * Read a key file (80-byte keys in base64, each on one line or wrapped over
 * several as openssl rand -base64 writes them, newest first) into *out,
 * which the caller then owns (tls_ticket_keys_free). Every bad key is
 * reported at the line it starts on, other problems at `at`. Returns 0, or
 * -1 with *out empty.
 */
int tls_ticket_keys_load(const char *path, struct ticket_keys *out, struct diag *d,
    struct loc at);
void tls_ticket_keys_free(struct ticket_keys *k);	/* cleared, reusable; NULL: no-op */

/* Free one host's ring of session IDs (tls_worker_free). NULL: no-op. */
void tls_sess_ring_free(struct sess_ring *r);

/* ---- tls_files.c: files read once, while they do not change ----------------- */

/*
 * Is path a regular file of at most TLS_FILE_MAX bytes we can open? If not,
 * report why at `at`, naming the config key. Returns 0 or -1.
 */
int tls_readable(const char *key, const char *path, struct loc at, struct diag *d);

/*
 * The certificates of the PEM file at path, leaf first, or its key, parsed
 * now or by an earlier build if the file has not changed since. NULL with
 * OpenSSL's error queue (or errno) telling why; for a key, *encrypted says
 * that it wanted a pass phrase (never asked for). The result belongs to the
 * cache until tls_files_sweep(): take a reference to keep it.
 */
STACK_OF(X509) *tls_files_certs(const char *path);
EVP_PKEY *tls_files_key(const char *path, int *encrypted);

/* The whole file at path (at most max bytes) in *out, malloc'd and the
 * caller's. Returns 0, or -1 with errno (EFBIG: larger than max). */
int tls_read_small_file(const char *path, size_t max, unsigned char **out, size_t *len);

/* ---- tls_check.c: what the certificate says, and warnings about it ---------- */

/* The certificate's notAfter, or 0 if OpenSSL cannot read it. */
time_t tls_cert_not_after(const X509 *leaf);

/* Warn (at c's cert line) of an expired certificate, one that expires soon
 * or one not valid yet. */
void tls_check_validity(const struct host_config *c, const X509 *leaf, struct diag *d);

/* Is chain in order, each certificate issued by the next (leaf first)?
 * Returns 0, or -1 after reporting. */
int tls_check_chain_order(const struct host_config *c, X509 *leaf, STACK_OF(X509) *chain,
    struct diag *d);

/* Warn when the file holds no CA certificate after a leaf someone else
 * issued (certbot's cert.pem instead of fullchain.pem). */
void tls_check_chain_complete(const struct host_config *c, X509 *leaf,
    STACK_OF(X509) *chain, struct diag *d);

/* Warn, in one line, of the `names` entries of c the certificate does not
 * cover as clients check them. */
void tls_check_names_covered(const struct host_config *c, X509 *leaf, struct diag *d);

/* Does key belong to the leaf? Reported as an order problem when it belongs
 * to a later certificate of the file. Returns 0, or -1 after reporting. */
int tls_check_key(const struct host_config *c, X509 *leaf, STACK_OF(X509) *chain,
    EVP_PKEY *key, struct diag *d);

/* Add a name to h->names, normalised, once; a name we cannot route on is
 * passed over. Returns 0, or -1 out of memory. */
int tls_host_add_name(struct host *h, const char *raw, size_t len);

/* Add the certificate's names to h->names: every DNS subjectAltName, or the
 * CN when there is none. */
void tls_names_from_cert(struct host *h, X509 *leaf);

/* n as RFC 2253 text into buf (as snprintf: returns the whole length, NUL
 * always written when len > 0); -1 if OpenSSL cannot print it. */
int tls_name_text(const X509_NAME *n, char *buf, size_t len);

/* ---- tls_keylog.c -------------------------------------------------------------- */

/* Open c's keylog_file for t (t->keylog_fd, t->keylog_created; t owns the
 * descriptor), warning that secrets go there. Returns 0, or -1 after
 * reporting. */
int tls_keylog_open(struct tls_host *t, const struct host_config *c, struct diag *d);

/* ---- tls_ocsp.c ---------------------------------------------------------------- */

/* Load, check and keep (in t) the OCSP response of c's ocsp_file for the
 * certificate in t. Returns 0 (a stale response is a warning, not kept) or
 * -1 after reporting. */
int tls_ocsp_load(struct tls_host *t, const struct host_config *c, struct diag *d);

#endif
