/*
 * tls.h: OpenSSL contexts and the per-connection SNI switch.
 *
 * A connection starts on the generation's base SSL_CTX, which has no
 * certificate, only a ClientHello callback. That callback reads the SNI,
 * looks the host up in the listener's table and moves the SSL to the host's
 * settings context, copying what SSL_set_SSL_CTX does not move (protocol
 * range, options, verify mode/depth/CA names, groups), then puts the host's
 * certificate, chain and key and its session-id context on the SSL, before
 * OpenSSL negotiates anything. Hosts with the same TLS settings share one
 * settings context (SSL_CTX_new is a third of a host's load time in OpenSSL
 * 3.0). Each host has its own session-id context, so a session made under
 * one host is never resumed under another.
 */
#ifndef TLSFRONT_TLS_H
#define TLSFRONT_TLS_H

#include <openssl/ssl.h>

#include "diag.h"
#include "gen.h"

/* What the handshake tells the connection; owned by the connection, linked
 * to its SSL with tls_attach(). */
struct tls_info {
	const struct listener *listener;	/* in: where the client connected */
	struct host *host;			/* out: chosen host, NULL before SNI */
	char sni[SNI_NAME_MAX + 2];		/* out: the name sent, "" if none */
	const char *fail;			/* out: why we refused, or NULL */
	int counted;				/* out: host->active includes us */
	char fail_buf[160];			/* storage fail may point to */
};

/* Once per process, before any other call. Returns 0 or -1. */
int tls_init(void);

/* The settings contexts made while one generation is built, by settings;
 * freeing the cache drops its references only (each host holds its own). */
struct tls_profiles;
struct tls_profiles *tls_profiles_new(void);	/* NULL: out of memory */
void tls_profiles_free(struct tls_profiles *pc);	/* NULL: no-op */
size_t tls_profiles_count(const struct tls_profiles *pc);	/* contexts made */

/* Set h up from h->cfg: h->ctx (from pc, or made and added to it), the
 * certificate, chain and key, names, groups, ALPN, not_after. Every problem
 * goes to d at the FILE:LINE of the key concerned. Returns 0 or -1. */
int tls_host_setup(struct host *h, struct tls_profiles *pc, struct diag *d);

/* Started as root with `user` set: give the keylog files this generation
 * created to that user (and group), so that reloads, which run as that user,
 * can open them again. */
void tls_give_files(struct generation *g, const char *user, const char *group);

/* The base context of a generation, with a server session cache of
 * cache_size sessions (0: none). NULL on failure (reported to d). */
SSL_CTX *tls_base_ctx_new(long cache_size, struct diag *d, struct loc at);

/*
 * Session tickets. Every generation's base context encrypts tickets with the
 * same keys, so a ticket from any worker of any generation is accepted by
 * all: the keys of ticket_key_file, or keys derived, one per
 * ticket_key_rotation period, from a secret the main process makes once
 * (tls_ticket_secret_init, before the first fork). A key decrypts for one
 * period more than it encrypts.
 */
int tls_ticket_secret_init(void);
/* Read a key file (80-byte keys in base64, each on one line or wrapped over
 * several as openssl rand -base64 writes them, newest first) into *out.
 * Returns 0, or -1 after reporting at `at`. */
int tls_ticket_keys_load(const char *path, struct ticket_keys *out, struct diag *d,
    struct loc at);
void tls_ticket_keys_free(struct ticket_keys *k);
/* The generation whose keys this process uses (a worker calls it at start). */
void tls_tickets_use(const struct generation *g);

/* Free the host's list of cached session IDs (see session_cache_size). */
void tls_sessions_free(struct host *h);

/* Link info to ssl for the ClientHello callback. */
void tls_attach(SSL *ssl, struct tls_info *info);

struct proxy_tlvs;

/* Storage behind the pointers tls_proxy_tlvs() puts in a struct proxy_tlvs. */
struct tls_proxy_store {
	char cn[257];
	char sig_alg[64];
	char key_alg[64];
	unsigned char *cert;		/* owned; freed by tls_proxy_store_free() */
	size_t cert_len;
};

/*
 * Describe the finished handshake of ssl for a PROXY v2 header: ALPN, SNI
 * (sni, may be ""), the SSL TLV (client flags, verify result, version, client
 * CN, cipher, our certificate's signature and key algorithms) and, when
 * cert_fmt is PROXY_CERT_DER or _PEM and the client sent one, its
 * certificate under TLV type cert_type. Pointers in *t refer to ssl, sni and
 * *st, which must outlive the use of *t.
 */
void tls_proxy_tlvs(SSL *ssl, const char *sni, int cert_fmt, int cert_type,
    struct proxy_tlvs *t, struct tls_proxy_store *st);
void tls_proxy_store_free(struct tls_proxy_store *st);

/*
 * The file cache counts by build. tls_files_begin() starts one (gen_build).
 * After a build that produced a generation, tls_files_sweep() forgets the
 * certificate and key files it did not use and says how many distinct files
 * it uses were parsed since the generation in service was built (by it, or
 * by builds thrown away since) and how many were not (either pointer may be
 * NULL). tls_files_kept(): the last build's generation is now the one in
 * service (a start, a reload that took effect).
 */
void tls_files_begin(void);
void tls_files_sweep(unsigned long *read, unsigned long *unchanged);
void tls_files_kept(void);

/* OpenSSL's error queue as one short string (and the queue emptied). */
const char *tls_error_string(char *buf, size_t n);

#endif
