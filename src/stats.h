/*
 * stats.h: the counters behind the metrics. Every worker process counts
 * into shared memory; the main process sums what they counted. How the sums
 * are written out is metrics.h (the Prometheus text format) and how they
 * are served is metrics_http.h.
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
 * Totals. A sum (stats_sum) adds, label by label, the "retired" totals
 * (main process memory) and every block in use. When the main process reaps
 * a worker it folds the block into the retired totals, keyed by host label
 * (not by position: positions change between generations), zeroes it and
 * frees it for the next worker. So counters survive worker deaths and
 * reloads; gauges of open connections are summed over live blocks only.
 *
 * Every function takes NULL for st and then does nothing: a main process
 * whose mapping failed goes on serving, without metrics.
 */
#ifndef TLSFRONT_STATS_H
#define TLSFRONT_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gen.h"

#define STATS_MAX_BLOCKS 512	/* 256 worker slots, twice: one generation draining */
#define STATS_MIN_HOSTS 1024	/* host rows per block, at least */
#define STATS_BUCKETS 14	/* backend connect latency histogram bounds */
#define STATS_OTHER_LABEL "_other"	/* the row of hosts beyond the capacity */

/* Upper bounds of the connect latency buckets, in microseconds (the last
 * bucket, +Inf, has none). metrics.c prints them as seconds. */
static const uint64_t stats_bucket_us[STATS_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};

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
 * The caller owns the result and frees it with stats_free. NULL after
 * logging if it cannot be made.
 */
struct stats *stats_new(size_t max_blocks, size_t max_hosts);

/* Unmap and free st and everything it holds. NULL: no-op. */
void stats_free(struct stats *st);

/*
 * Generation g is now the one in use (at start and after each successful
 * reload): copies its host labels, certificate expiry times and skipped
 * flags (g is not referenced afterwards; its pool members' shared slots,
 * which outlive every generation, are), and counts the generation number
 * up (1 at start). Workers forked from now on count under these labels.
 * Returns 0, or -1 when out of memory (workers then count nowhere until the
 * next call).
 */
int stats_generation(struct stats *st, const struct generation *g);

/* A reload ended: ok counts it as successful (and its time), else failed. */
void stats_reload_done(struct stats *st, int ok);

/* A worker died unexpectedly and is restarted. */
void stats_worker_restart(struct stats *st);

/* The ACME child reported an order of host `label` that ended (ok: issued,
 * else failed): tlsfront_acme_orders_total. Main process only; a label is
 * kept for the life of the process (hosts are few). */
void stats_acme_order(struct stats *st, const char *label, int ok);

/*
 * A worker's block. stats_block_take (main, before fork) reserves a free
 * block for a worker of the generation in use: its index, or -1 if none is
 * free (that worker's counts are then lost; logged once).
 * stats_block_bind (main, after fork) records the child's pid; pid <= 0
 * (the fork failed) frees the block again. stats_worker_init (the child,
 * first thing) points stats_g/stats_rows at block b, or at a private dummy
 * for -1 or a NULL st. stats_worker_gone (main, after waitpid) folds the
 * block of pid into the retired totals and frees it; unknown pids are
 * ignored.
 */
int stats_block_take(struct stats *st);
void stats_block_bind(struct stats *st, int b, pid_t pid);
void stats_worker_init(struct stats *st, int b);
void stats_worker_gone(struct stats *st, pid_t pid);

/* One host label's counters, summed over the retired totals and the blocks
 * of live workers. */
struct stats_host_sum {
	char *label;		/* owned by the sum */
	uint64_t c[SH_COUNT];
	int64_t open;		/* connections open now: live blocks only, >= 0 */
	int in_use;		/* a host the generation in use serves (not skipped) */
	long long not_after;	/* its certificate's expiry (unix time), if in_use */
};

/* ACME orders of one host label (main process counters). */
struct stats_acme_sum {
	char *label;		/* owned by the sum */
	unsigned long long ok, error;
};

/* One member of a backend pool of the generation in use (pool.h): its
 * shared health state and counters, read at one moment. */
struct stats_member_sum {
	char *host, *backend;	/* owned by the sum */
	int up;
	unsigned long long conns, connect_failures, connect_us, connect_count;
};

/* Everything the metrics show, at one moment. */
struct stats_sum {
	uint64_t g[SG_COUNT];		/* enum stats_global, retired and live */
	int64_t active;			/* accepted connections open now, >= 0 */
	size_t workers;			/* worker processes counting now */
	struct stats_host_sum *hosts;	/* sorted by label, each label once */
	size_t n_hosts;
	/* kept by the main process alone */
	long long started;		/* unix time */
	long long last_reload;		/* start or last successful reload, unix time */
	unsigned long long generation, reloads_ok, reloads_failed, restarts;
	size_t hosts_served;		/* by the generation in use */
	size_t hosts_skipped;		/* left out of it by host_errors = skip */
	struct stats_acme_sum *acme;	/* ACME orders, sorted by label */
	size_t n_acme;
	struct stats_member_sum *members;	/* by host label, then pool order */
	size_t n_members;
};

/*
 * Main process: sum what st holds now into *out, which the caller releases
 * with stats_sum_free (also after a failure). Reads the blocks of running
 * workers while they count: each value is a snapshot of its own, closed
 * connections read before opened ones so that no gauge goes below zero.
 * Returns 0, or -1 when out of memory or st is NULL.
 */
int stats_sum(const struct stats *st, struct stats_sum *out);

/* Free what stats_sum allocated in s (not s itself) and zero s. */
void stats_sum_free(struct stats_sum *s);

#endif
