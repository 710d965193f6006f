/*
 * gen.h: a generation, everything the workers serve from: the hosts (their
 * TLS side made by tls.c), the base context connections start on, and the
 * listeners with their name -> host tables. No OpenSSL type here: gen.c
 * knows the TLS side through tls.h only.
 *
 * The main process builds a generation from a checked config before it
 * forks the workers; workers only read it. `tlsfront -t` builds one too and
 * throws it away, so a check loads exactly what a start would.
 */
#ifndef TLSFRONT_GEN_H
#define TLSFRONT_GEN_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "diag.h"
#include "pool.h"
#include "sni.h"

struct tls_host;
struct tls_base;

/*
 * A host of a generation: what the rest of the daemon needs to know of it,
 * in plain C types. Its TLS side (settings context, certificate, chain and
 * key, ALPN list, keylog descriptor, OCSP response) is tls.h's
 * struct tls_host, which the host owns. Read-only after gen_build: what a
 * worker counts per host lives in that worker (tls.h tls_worker_new).
 */
struct host {
	const struct host_config *cfg;
	struct tls_host *tls;		/* owned; tls_host_setup, tls_host_free */
	char **names;			/* effective names (config's or certificate's) */
	size_t n_names;
	time_t not_after;		/* the certificate's; 0 unknown */
	unsigned max_active;		/* a worker's share of max_connections; 0: none */
	int skipped;			/* host_errors = skip left it out */
	int pending;			/* acme = yes, its certificate not there yet (or
					 * not loadable): handshakes fail (tls.c) */
	struct pool pool;		/* `backend`'s members (pool.h) */
	struct pool *alpn_pools;	/* one per cfg->alpn_backends entry, in order */
};

struct listener {
	struct addr addr;
	struct sni_table *sni;		/* values are struct host * */
	struct host *default_host;	/* NULL: unknown names are refused */
	unsigned handshake_timeout_ms;	/* until the host is known: the smallest of its hosts */
};

struct generation {
	struct config *cfg;
	size_t n_skipped;		/* hosts left out by host_errors = skip */
	size_t n_contexts;		/* settings contexts the hosts share (tls.c) */
	unsigned long files_read;	/* its certificate and key files (distinct) parsed
					 * since the generation before it */
	unsigned long files_unchanged;	/* ... and the others, unchanged since then */
	struct host *hosts;
	size_t n_hosts;
	struct listener *listeners;
	size_t n_listeners;
	struct tls_base *tls;		/* owned: every connection starts on its context,
					 * until SNI; the ticket keys (tls.h) */
};

/*
 * Build a generation from cfg: every host's TLS side (certificates and keys
 * are read here), the base context, every listener's name table. On success returns the
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

/* The backend pool for a host given the negotiated ALPN protocol (may be
 * NULL): its backend.PROTO pool, else its backend pool. */
const struct pool *gen_backend_for(const struct host *h, const unsigned char *alpn,
    unsigned alpn_len);

#endif
