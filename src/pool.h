/*
 * pool.h: a host's backend pool (the members of `backend` or of one
 * `backend.PROTO`), choosing a member per connection, and each member's
 * health, shared by every process.
 *
 * Health lives in one shared-memory region that the main process maps
 * (MAP_SHARED | MAP_ANONYMOUS) the first time a generation is built, so
 * before the first fork: every worker and every later generation sees the
 * same slots. A slot is keyed by "HOST MEMBER" (the host's label and the
 * member's address text); the main process alone looks keys up (a
 * generation's members find their slot when it is built, on reload too, so
 * state survives a reload for members that stay). Workers and the main
 * process's health checks update a slot with atomics only; no locks.
 *
 * A member is up, or down until a time. A connect failure (or a failed
 * health check) adds one to its consecutive failures; at the pool's
 * threshold it goes down for the pool's down time. Past that time, one
 * connection (claimed atomically: one process, one connection) is its
 * trial: success brings it up, failure keeps it down twice as long (at
 * most POOL_DOWN_MAX_FACTOR times the down time). A successful check or
 * connection brings a down member up at once. The process that sees a
 * member go down or come back logs it.
 *
 * A pool of one member costs what a single backend did: pool_pick returns
 * it without reading the clock, and pool_ok only reads its state unless a
 * failure was recorded.
 */
#ifndef TLSFRONT_POOL_H
#define TLSFRONT_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define POOL_SLOTS 4096		/* members of all generations, ever (see pool_slot) */
#define POOL_DOWN_MAX_FACTOR 16	/* the longest down period: 16 x backend_down_time */

/* One member's health and counters, in the shared region. */
struct member_state {
	_Atomic int up;			/* 1: eligible; 0: down */
	_Atomic unsigned fails;		/* consecutive connect failures */
	_Atomic uint64_t down_until_ms;	/* pool_now_ms() when a trial may go */
	_Atomic unsigned down_ms;	/* the current down period (doubles) */
	_Atomic uint64_t trial_until_ms; /* a trial is out until then (0: none) */
	_Atomic long active;		/* open connections (leastconn) */
	_Atomic uint64_t rr;		/* member 0 of a pool: its round-robin turn */
	_Atomic uint64_t conns;		/* connections relayed through it */
	_Atomic uint64_t connect_failures;	/* failed or timed-out connects, checks */
	_Atomic uint64_t connect_us;	/* successful connects: total time */
	_Atomic uint64_t connect_count;
	_Atomic uint64_t checks_failed;	/* health checks that failed */
} __attribute__((aligned(64)));

struct pool_member {
	const struct addr *addr;	/* the config's */
	struct member_state *st;	/* shared slot (pool_slot) */
};

struct pool {
	struct pool_member *m;		/* owned */
	size_t n;			/* 1..VALUE_POOL_MAX */
	int balance;			/* enum balance (config.h) */
	unsigned fail_threshold;
	unsigned down_ms;		/* backend_down_time */
	unsigned connect_timeout_ms;	/* a trial's claim lasts this (+1 s) */
	const char *label;		/* the host's, for log lines */
};

/*
 * The shared slot for key ("HOST MEMBER"), found or made. Main process
 * only, before the workers that use it are forked; the first call maps the
 * region. A new slot starts up. Returns NULL when the region is full or
 * cannot be mapped (the member then has a private slot: pool_slot_private).
 * Slots are never given back: a member removed by a reload keeps its slot
 * until tlsfront stops.
 */
struct member_state *pool_slot(const char *key);

/*
 * Set up p for the members addrs[0..n) of host label, with the host's
 * policy; each member gets its shared slot. Returns 0, or -1 out of
 * memory (p then safe to pool_free).
 */
int pool_init(struct pool *p, const char *label, const struct addr *addrs, size_t n,
    int balance, unsigned fail_threshold, unsigned down_ms, unsigned connect_timeout_ms);

/* Free what pool_init allocated (never the shared slots). */
void pool_free(struct pool *p);

/* CLOCK_MONOTONIC in milliseconds: the same clock in every process. */
uint64_t pool_now_ms(void);

/*
 * Choose a member for a connection among those not in tried (bit i: member
 * i was tried). Up members first, by the pool's balance; then a down member
 * whose down time has passed and whose trial this call claimed (*trial set
 * to 1); when neither is left, the first untried member in balance order
 * anyway (every member is down: a try is better than a certain failure).
 * Returns the member's index, or -1 when every member was tried.
 */
int pool_pick(const struct pool *p, uint64_t tried, int *trial);

/* Member i took a connection (leastconn's count); pool_release when it ends. */
void pool_acquire(const struct pool *p, size_t i);
void pool_release(const struct pool *p, size_t i);

/*
 * The connect to member i succeeded after connect_us microseconds (or a
 * health check did: connect_us counted only when count is set). A down
 * member comes up (logged, by whoever wins the change).
 */
void pool_ok(const struct pool *p, size_t i, uint64_t connect_us, int count);

/*
 * The connect to member i failed or timed out (or a health check did);
 * trial says it was the member's trial. Counts the failure; may mark the
 * member down (logged once) or, after a failed trial, double its down time.
 */
void pool_fail(const struct pool *p, size_t i, int trial, const char *why);

#endif
