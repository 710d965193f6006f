/*
 * gen.h: a generation, everything the workers serve from: the hosts with
 * their certificates and settings contexts, and the listeners with their
 * name -> host tables.
 *
 * The main process builds a generation from a checked config before it
 * forks the workers; workers only read it. `tlsfront -t` builds one too and
 * throws it away, so a check loads exactly what a start would.
 */
#ifndef TLSFRONT_GEN_H
#define TLSFRONT_GEN_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "clientauth.h"
#include "config.h"
#include "diag.h"
#include "sni.h"

struct sess_ring;

struct host {
	const struct host_config *cfg;
	SSL_CTX *ctx;			/* its TLS settings: shared by the hosts with the
					 * same ones (a reference each; tls.c) */
	X509 *leaf;			/* its certificate, the rest of the file's chain */
	STACK_OF(X509) *chain;		/* and its key: put on each connection by the */
	EVP_PKEY *key;			/* ClientHello callback (a reference each) */
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];	/* session-id context: the host's */
	char **names;			/* effective names (config's or certificate's) */
	size_t n_names;
	char *groups;			/* the groups this OpenSSL accepts, "a:b:c" */
	int groups_as_base;		/* the base context offers the same groups */
	unsigned char *alpn_wire;	/* ALPN list in wire format, NULL: no ALPN */
	size_t alpn_wire_len;
	time_t not_after;
	struct allow_list allow;	/* client_allow, parsed; empty: any verified client */
	unsigned max_active;		/* this worker's share of max_connections; 0: none */
	unsigned active;		/* this worker's connections to the host (per process) */
	int skipped;			/* host_errors = skip left it out */
	int keylog_fd;			/* keylog_file, O_APPEND, shared by the workers; -1: none */
	int keylog_created;		/* this generation created the file */
	unsigned char *ocsp;		/* ocsp_file: the DER response to staple, NULL: none */
	size_t ocsp_len;
	time_t ocsp_next_update;	/* stapled until then; 0: the response has no nextUpdate */
	struct sess_ring *sessions;	/* this worker's cached session IDs (tls.c) */
};

struct listener {
	struct addr addr;
	struct sni_table *sni;		/* values are struct host * */
	struct host *default_host;	/* NULL: unknown names are refused */
	unsigned handshake_timeout_ms;	/* until the host is known: the smallest of its hosts */
};

/* A session-ticket key (the layout of nginx's 80-byte key files). */
struct ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

/* The keys from ticket_key_file, newest (the one that encrypts) first. */
struct ticket_keys {
	struct ticket_key *v;
	size_t n;
};

struct generation {
	struct config *cfg;
	struct ticket_keys tickets;	/* empty: keys derived from the process secret */
	size_t n_skipped;		/* hosts left out by host_errors = skip */
	size_t n_contexts;		/* settings contexts the hosts share (tls.c) */
	unsigned long files_read;	/* its certificate and key files (distinct) parsed
					 * since the generation before it */
	unsigned long files_unchanged;	/* ... and the others, unchanged since then */
	struct host *hosts;
	size_t n_hosts;
	struct listener *listeners;
	size_t n_listeners;
	SSL_CTX *base_ctx;		/* every connection starts here, until SNI */
};

/*
 * Build a generation from cfg: every host's SSL_CTX (certificates and keys
 * are read here), every listener's name table. On success returns the
 * generation, which now owns cfg. On failure reports to d, frees nothing of
 * cfg and returns NULL.
 */
struct generation *gen_build(struct config *cfg, struct diag *d);

/*
 * Read the configuration rooted at path and build its generation: what a
 * start, a reload and `tlsfront -t` all do. Every error and warning goes to
 * d. Returns the generation only if d gained no error, else NULL (nothing
 * left allocated).
 */
struct generation *gen_load(const char *path, struct diag *d);

/* Free a generation and its config. gen_free(NULL) is a no-op. */
void gen_free(struct generation *g);

/* The backend for a host given the negotiated ALPN protocol (may be NULL). */
const struct addr *gen_backend_for(const struct host *h, const unsigned char *alpn,
    unsigned alpn_len);

#endif
