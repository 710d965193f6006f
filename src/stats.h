/*
 * stats.h: the metrics: counters every worker process keeps in shared
 * memory, summed by the main process, which serves them on `stats_listen`
 * as `GET /metrics` in the Prometheus text format (version 0.0.4).
 *
 * Layout. The main process makes one shared anonymous mapping
 * (MAP_SHARED | MAP_ANONYMOUS) before it forks any worker and keeps it for
 * its whole life. It holds STATS_MAX_BLOCKS blocks, one per running worker
 * process (the workers of the generation in use and of draining ones). A
 * block is the global counters g[SG_COUNT] followed by host rows: row 0 for
 * hosts beyond the capacity ("_other"), row 1 + i for host i of the
 * worker's generation (its position in generation->hosts). Before each fork
 * the main process takes a free block for the new worker and remembers which
 * generation (and so which host labels) it belongs to; the worker adds to
 * its own block only, with relaxed atomic adds: no locks, no sharing of
 * cache lines between workers (blocks are 64-byte aligned).
 *
 * Totals. A scrape sums, label by label, the "retired" totals (main
 * process memory) and every block in use. When the main process reaps a
 * worker it folds the block into the retired totals, keyed by host label
 * (not by position: positions change between generations), zeroes it and
 * frees it for the next worker. So counters survive worker deaths and
 * reloads; gauges of open connections are summed over live blocks only.
 *
 * Every function takes NULL for st and then does nothing (or, for
 * stats_wait, only waits for a signal): a main process whose mapping failed
 * goes on serving, without metrics.
 */
#ifndef TLSFRONT_STATS_H
#define TLSFRONT_STATS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "gen.h"

#define STATS_MAX_BLOCKS 512	/* 256 worker slots, twice: one generation draining */
#define STATS_MIN_HOSTS 1024	/* host rows per block, at least */
#define STATS_BUCKETS 14	/* backend connect latency histogram bounds */
#define STATS_MAX_CLIENTS 16	/* scrapes in progress at once */
#define STATS_READ_TIMEOUT_MS 2000	/* for the whole request */
#define STATS_WRITE_TIMEOUT_MS 10000	/* for the whole response */

/* Why a handshake failed: a bounded set of label values. */
enum stats_hs_reason {
	HS_UNKNOWN_SNI,		/* no host for the name (or no name, no default host) */
	HS_NO_ALPN,		/* no common ALPN protocol */
	HS_PROTOCOL,		/* a TLS error: version, ciphers, malformed, not TLS */
	HS_CLIENT_CERT,		/* client certificate missing, invalid or not allowed */
	HS_TIMEOUT,		/* handshake_timeout (or the PROXY header's) */
	HS_CLOSED,		/* the client closed or reset the connection */
	HS_PROXY_HEADER,	/* a bad PROXY header from an accept_proxy source */
	HS_OTHER,		/* anything else (shutdown, out of memory) */
	HS_COUNT
};

/* Per-process global counters: indexes into a block's g[]. */
enum stats_global {
	SG_ACCEPTED,		/* TCP connections accepted */
	SG_ENDED,		/* of those, closed */
	SG_REFUSED,		/* closed at once: global max_connections */
	SG_HS_FAIL,		/* + enum stats_hs_reason */
	SG_CONNECT_BUCKET = SG_HS_FAIL + HS_COUNT,	/* + 0..STATS_BUCKETS (last: +Inf) */
	SG_CONNECT_USEC = SG_CONNECT_BUCKET + STATS_BUCKETS + 1,	/* sum of connect times */
	SG_COUNT
};

/* Per-host counters: indexes into a row's c[]. */
enum stats_host {
	SH_OPENED,		/* handshakes completed (connections of the host) */
	SH_CLOSED,		/* of those, closed */
	SH_RESUMED,		/* of those, with a resumed session */
	SH_BYTES_IN,		/* from the client, counted at close */
	SH_BYTES_OUT,		/* to the client, counted at close */
	SH_CONNECT_FAILED,	/* backend connects that failed or timed out */
	SH_CONNECT_COUNT,	/* backend connects that succeeded */
	SH_CONNECT_USEC,	/* and their time, summed */
	SH_REFUSED,		/* closed in the handshake: host max_connections */
	SH_COUNT
};

struct stats_row {
	uint64_t c[SH_COUNT];
};

/* This process's counters (a worker's block, or a private dummy). */
extern uint64_t *stats_g;
extern struct stats_row *stats_rows;
extern size_t stats_nhosts;	/* rows 1..stats_nhosts exist */

/* The data path: relaxed atomic adds to this process's own block. */
static inline void
stats_add(unsigned k, uint64_t n)
{
	__atomic_fetch_add(&stats_g[k], n, __ATOMIC_RELAXED);
}

static inline void
stats_host_add(size_t host, unsigned k, uint64_t n)
{
	__atomic_fetch_add(&stats_rows[host < stats_nhosts ? host + 1 : 0].c[k], n,
	    __ATOMIC_RELAXED);
}

/* A backend connect of host took usec: the histogram and the host's sum. */
void stats_connect_time(size_t host, uint64_t usec);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t stats_clock_us(void);

struct stats;

/*
 * Main process, once, before the first fork: the mapping for max_blocks
 * blocks of max_hosts host rows (0: STATS_MAX_BLOCKS, STATS_MIN_HOSTS).
 * NULL after logging if it cannot be made.
 */
struct stats *stats_new(size_t max_blocks, size_t max_hosts);

/* Close the metrics sockets (a unix one is unlinked) and unmap. NULL: no-op. */
void stats_free(struct stats *st);

/*
 * Generation g is now the one in use (at start and after each successful
 * reload): copies its host labels and certificate expiry times, and counts
 * the generation number up (1 at start). Workers forked from now on count
 * under these labels. Returns 0, or -1 when out of memory (workers then
 * count nowhere until the next call).
 */
int stats_generation(struct stats *st, const struct generation *g);

/* A reload ended: ok counts it as successful (and its time), else failed. */
void stats_reload_done(struct stats *st, int ok);

/* A worker died unexpectedly and is restarted. */
void stats_worker_restart(struct stats *st);

/*
 * A worker's block. stats_block_take (main, before fork) reserves a free
 * block for a worker of the generation in use: its index, or -1 if none is
 * free (that worker's counts are then lost; logged once).
 * stats_block_bind (main, after fork) records the child's pid; pid <= 0
 * (the fork failed) frees the block again. stats_worker_init (the child,
 * first thing) points stats_g/stats_rows at block b (or at a private dummy
 * for -1) and closes the main process's metrics sockets in the child.
 * stats_worker_gone (main, after waitpid) folds the block of pid into the
 * retired totals and frees it; unknown pids are ignored.
 */
int stats_block_take(struct stats *st);
void stats_block_bind(struct stats *st, int b, pid_t pid);
void stats_worker_init(struct stats *st, int b);
void stats_worker_gone(struct stats *st, pid_t pid);

/*
 * Serve metrics on a (plain HTTP; TCP or unix:), or nowhere if a->len == 0.
 * The same address as now: nothing changes. Otherwise the new socket is
 * opened first (a unix path that nobody listens on is replaced), then the
 * old one closed. Returns 0, or -1 after logging, with the old socket kept.
 */
int stats_listen(struct stats *st, const struct addr *a);

/*
 * Wait up to timeout_ms for one of the (blocked) signals in set, like
 * sigtimedwait(set, NULL, timeout), serving metrics requests meanwhile:
 * non-blocking accept, read and write, at most STATS_MAX_CLIENTS at once,
 * each dropped after STATS_READ_TIMEOUT_MS without a whole request or
 * STATS_WRITE_TIMEOUT_MS without the whole answer taken. Returns the signal
 * number, or -1 (timeout or EINTR).
 */
int stats_wait(struct stats *st, const sigset_t *set, int timeout_ms);

/*
 * The answer to a request of len bytes (a whole request head): "GET
 * /metrics" (or HEAD; a query string is ignored) gives 200 and the text
 * format, any other path 404, another method 405, garbage 400. Returns a
 * malloc'd response (status line, headers, body) and its length in *outlen,
 * or NULL when out of memory.
 */
char *stats_http_answer(struct stats *st, const char *req, size_t len, size_t *outlen);

/* The metrics in the text format, malloc'd and NUL-terminated, or NULL. */
char *stats_render(struct stats *st, size_t *len);

/*
 * A label value escaped for the text format (backslash, double quote and
 * newline; bytes that are not valid UTF-8 become '?'), malloc'd, or NULL.
 */
char *stats_label_escape(const char *s);

#endif
