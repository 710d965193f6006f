/*
 * tls.h: the TLS side of tlsfront, as the rest of the daemon sees it.
 *
 * A connection starts on the generation's base context (struct tls_base),
 * which has no certificate, only a ClientHello callback. That callback reads
 * the SNI, looks the host up in the listener's table and moves the SSL to
 * the host's settings context, copying what SSL_set_SSL_CTX does not move
 * (protocol range, options, verify mode/depth/CA names, groups), then puts
 * the host's certificate, chain and key and its session-id context on the
 * SSL, before OpenSSL negotiates anything. Hosts with the same TLS settings
 * share one settings context (SSL_CTX_new costs about as much as parsing a
 * certificate). Each host has its own session-id context, so a session made
 * under one host is never resumed under another.
 *
 * The modules behind this header: tls.c (contexts, hosts), tls_accept.c (the
 * handshake callbacks, per-worker state), tls_acme.c (the ACME TLS-ALPN-01
 * answer in the ClientHello callback), tls_tickets.c (ticket keys, the
 * session-ID shares), tls_files.c (the certificate and key file cache),
 * tls_check.c (certificate checks and names), tls_ocsp.c (ocsp_file),
 * tls_keylog.c (keylog_file), tls_facts.c (what a handshake was); tls_int.h
 * is what they share.
 *
 * No OpenSSL header here: gen.c, dump.c and worker.c use this header and
 * know nothing of OpenSSL. SSL is the same incomplete type OpenSSL declares.
 */
#ifndef TLSFRONT_TLS_H
#define TLSFRONT_TLS_H

#include <stddef.h>

#include "config.h"
#include "diag.h"
#include "gen.h"
#include "relay.h"
#include "sni.h"
#include "tls_facts.h"

typedef struct ssl_st SSL;

struct tls_worker;

/* Why the handshake callbacks refused a client (the text is tls_fail_text's). */
enum tls_fail {
	TLS_FAIL_NONE = 0,
	TLS_FAIL_UNKNOWN_NAME,		/* "unknown server name" */
	TLS_FAIL_NO_NAME,		/* "no server name and no default host" */
	TLS_FAIL_HOST_FULL,		/* "host max_connections reached" */
	TLS_FAIL_HOST_CERT,		/* "cannot set the host's certificate" */
	TLS_FAIL_NO_ALPN,		/* "no common ALPN protocol" */
	TLS_FAIL_CLIENT_CERT,		/* "client certificate: VERIFY-ERROR" */
	TLS_FAIL_NOT_ALLOWED,		/* "client certificate not on the allow-list" */
	TLS_FAIL_PENDING,		/* "certificate pending": an ACME host before
					 * its first certificate */
	TLS_FAIL_ACME_REFUSED,		/* "acme-tls/1 without a pending challenge" */
	TLS_FAIL_ACME_CERT		/* "cannot set the acme-tls/1 certificate" */
};

/* What the handshake tells the connection; owned by the connection, linked
 * to its SSL by tls_ssl_new(). */
struct tls_info {
	const struct listener *listener;	/* in: where the client connected */
	struct tls_worker *worker;		/* in: this process's state (tls_worker_new) */
	const struct host *host;		/* out: chosen host, NULL before SNI */
	char sni[SNI_NAME_MAX + 2];		/* out: the name sent, "" if none */
	enum tls_fail fail;			/* out: why we refused, or NONE */
	int counted;				/* out: counted in the worker's connections
						 * to host (tls_release undoes it) */
	char fail_detail[128];			/* out: TLS_FAIL_CLIENT_CERT's verify error */
	int peer_close_notify;			/* out: the client's close_notify arrived
						 * (not just a FIN) */
	int acme_challenge;			/* out: answering an ACME TLS-ALPN-01
						 * validation (host stays NULL) */
};

/* The text of info's fail (see enum tls_fail), or NULL for TLS_FAIL_NONE. */
const char *tls_fail_text(const struct tls_info *info, char *buf, size_t n);

/* Once per process, before any other call. Returns 0 or -1. */
int tls_init(void);

/* OpenSSL's error queue as one short string in buf (and the queue emptied). */
const char *tls_error_string(char *buf, size_t n);

/* ---- hosts ----------------------------------------------------------------- */

/* The settings contexts made while one generation is built, by settings;
 * freeing the cache drops its references only (each host holds its own). */
struct tls_profiles;
struct tls_profiles *tls_profiles_new(void);	/* NULL: out of memory */
void tls_profiles_free(struct tls_profiles *pc);	/* NULL: no-op */
size_t tls_profiles_count(const struct tls_profiles *pc);	/* contexts made */

/*
 * Set h up from h->cfg: make h->tls (its settings context, from pc or made
 * and added to it; the certificate, chain and key; groups, ALPN, keylog
 * descriptor, OCSP response) and fill h->names and
 * h->not_after. Every problem goes to d at the FILE:LINE of the key
 * concerned. Returns 0 or -1; on -1, h->tls holds what was set up (or is
 * NULL) and is the caller's to free like a complete one: h owns h->tls,
 * freed with tls_host_free().
 */
int tls_host_setup(struct host *h, struct tls_profiles *pc, struct diag *d);

/* Free what tls_host_setup made (its references to contexts, certificates
 * and key, its keylog descriptor). tls_host_free(NULL) is a no-op. */
void tls_host_free(struct tls_host *t);

/*
 * The subject or issuer of the host's certificate as RFC 2253 text
 * ("CN=R3,O=Let's Encrypt,C=US") into buf (len bytes, NUL-terminated, cut
 * if short; "?" if OpenSSL cannot print it). Returns the length of the
 * whole text (as snprintf: compare with len), or -1 when the host has no
 * certificate (t NULL, or its file did not load). Reads t only.
 */
enum tls_cert_name { TLS_CERT_SUBJECT, TLS_CERT_ISSUER };
int tls_host_cert_name(const struct tls_host *t, enum tls_cert_name which, char *buf,
    size_t len);

/* The groups this OpenSSL accepted of the host's `groups` ("a:b"; t's
 * storage), or NULL if none were set up. */
const char *tls_host_groups(const struct tls_host *t);

/* Started as root with `user` set: give the keylog files this generation
 * created to that user (and group), so that reloads, which run as that user,
 * can open them again. */
void tls_give_files(struct generation *g, const char *user, const char *group);

/* ---- the generation's base context ---------------------------------------- */

/*
 * The base context every connection of a generation starts on: a server
 * session cache as large as the hosts' session_cache_size together, the
 * ticket keys (cfg's ticket_key_file, or derived), and the groups of the
 * first loaded host, noted on each host that has the same (so that the
 * ClientHello callback sets groups only for the others). hosts[0..n) must
 * be set up (skipped ones are passed over). Errors go to d at `at` or at
 * ticket_key_file's line. Returns the base (the caller owns it: free with
 * tls_base_free()) or NULL.
 */
struct tls_base *tls_base_new(const struct config *cfg, struct host *hosts, size_t n,
    struct diag *d, struct loc at);
void tls_base_free(struct tls_base *b);	/* NULL: no-op */

/*
 * Session tickets. Every generation's base context encrypts tickets with the
 * same keys, so a ticket from any worker of any generation is accepted by
 * all: the keys of ticket_key_file, or keys derived, one per
 * ticket_key_rotation period, from a secret the main process makes once
 * (tls_ticket_secret_init, before the first fork). A key decrypts for one
 * period more than it encrypts. Returns 0 or -1.
 */
int tls_ticket_secret_init(void);

/* ---- one worker process ---------------------------------------------------- */

/*
 * What a worker changes while it serves generation g, which stays read-only:
 * per host (by position in g->hosts) its count of connections (against
 * max_active) and the IDs of its cached sessions (against
 * session_cache_size), and the derived ticket keys of the current period.
 * Made once at worker start, owned by the worker (struct worker), freed by
 * tls_worker_free() after its last connection closed. NULL: out of memory.
 */
struct tls_worker *tls_worker_new(const struct generation *g);
void tls_worker_free(struct tls_worker *w);	/* NULL: no-op */

/* ---- one connection --------------------------------------------------------- */

/*
 * A server SSL for one connection, on base b, with info linked for the
 * handshake callbacks (info->listener and info->worker set; the rest
 * zeroed). The caller owns the SSL; info must outlive it. NULL: out of
 * memory.
 */
SSL *tls_ssl_new(const struct tls_base *b, struct tls_info *info);

/*
 * Did the finished handshake of ssl answer an ACME TLS-ALPN-01 validation
 * (ALPN acme-tls/1 negotiated)? Then the connection ends here: no host, no
 * backend; the caller closes it with reason "acme challenge".
 */
int tls_acme_challenge_done(SSL *ssl);

/* The connection ends: if it was counted against its host's
 * max_connections, it no longer is. Idempotent. */
void tls_release(struct tls_info *info);

/* ---- the client's stream (tls_stream.c) ------------------------------------ */

/*
 * The client's end of a connection: an SSL reading and writing its socket
 * directly (a socket BIO, read-ahead on), driven by the connection's
 * edge-triggered events: the handshake by tls_stream_handshake, then the
 * relay through tls_stream_io. What failed is kept for tls_stream_error.
 */
struct tls_stream {
	SSL *ssl;
	int fd;				/* not owned: the connection closes it */
	int sys_errno;			/* errno when it failed */
	unsigned long ssl_error;	/* OpenSSL's first real error then, or 0 */
	int zero_return;		/* the failure came after the peer's close */
	int close_notify_sent;
};

/* The relay's view of a struct tls_stream (relay.h): SSL_read, SSL_write,
 * close_notify. */
extern const struct relay_io tls_stream_io;

/* Start s on socket fd (not owned) with a new SSL on base b (tls_ssl_new).
 * Returns 0, or -1 when out of memory (s then holds nothing). */
int tls_stream_start(struct tls_stream *s, const struct tls_base *b, struct tls_info *info,
    int fd);

/* One step of the server handshake: DONE, WANT_READ (wait for the socket's
 * next event), WANT_WRITE (wait for writability), MORE (not drained, but
 * enough for one loop turn: call again after the others had theirs),
 * FAILED (s keeps why). */
enum tls_step {
	TLS_STEP_DONE, TLS_STEP_WANT_READ, TLS_STEP_WANT_WRITE, TLS_STEP_MORE, TLS_STEP_FAILED
};
enum tls_step tls_stream_handshake(struct tls_stream *s);

/* Send our close_notify once (one SSL_shutdown: it does not wait for the
 * peer's). Best effort; no-op before the handshake completed or if sent. */
void tls_stream_close_notify(struct tls_stream *s);

/* What failed, as a kind and (for PROTOCOL and SYSTEM) a detail in buf:
 * OpenSSL's reason, or strerror. */
enum tls_stream_err {
	TLS_ERR_CLOSED,		/* the peer closed (EOF, EPIPE) */
	TLS_ERR_RESET,		/* ECONNRESET */
	TLS_ERR_PROTOCOL,	/* OpenSSL refused: buf holds its reason */
	TLS_ERR_NO_CLIENT_CERT,	/* ... "peer did not return a certificate" */
	TLS_ERR_SYSTEM,		/* another socket error: buf holds strerror */
	TLS_ERR_UNKNOWN
};
enum tls_stream_err tls_stream_error(const struct tls_stream *s, char *buf, size_t n);

/* What the finished handshake negotiated, for the access line. */
void tls_stream_alpn(const struct tls_stream *s, const unsigned char **p, unsigned *len);
const char *tls_stream_version(const struct tls_stream *s);	/* "TLSv1.3" */
const char *tls_stream_cipher(const struct tls_stream *s);	/* NULL: none */
int tls_stream_resumed(const struct tls_stream *s);
/* The verified client certificate's CN and SAN (clientauth_identity). */
void tls_stream_client_identity(const struct tls_stream *s, char *cn, size_t cn_len,
    char *san, size_t san_len);

/* Free the SSL (the fd stays open). After a close_notify, the session
 * stays in the cache. tls_stream_free on a freed stream is a no-op. */
void tls_stream_free(struct tls_stream *s);

/*
 * What the finished handshake of ssl was (see tls_facts.h for who owns
 * what); with the client's certificate encoded as `cert_form` asks, if it
 * sent one. Always fills *f (a failed encoding leaves the certificate out);
 * free it with tls_facts_free(), which frees only what *f owns.
 */
enum tls_cert_form { TLS_CERT_NONE = 0, TLS_CERT_DER, TLS_CERT_PEM };
void tls_facts_get(SSL *ssl, enum tls_cert_form cert_form, struct tls_facts *f);
void tls_facts_free(struct tls_facts *f);

/* ---- the certificate and key file cache ----------------------------------- */

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

#endif
