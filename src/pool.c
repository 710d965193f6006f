/* pool.c: see pool.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "pool.h"

#define KEY_MAX (ADDR_TEXT_MAX + 64)

/* The shared region, and the keys of its slots: the keys are the main
 * process's own memory (only it looks slots up), the states are shared. */
static struct member_state *region;
static char (*keys)[KEY_MAX];
static size_t n_used;
static int region_failed;

uint64_t
pool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
slot_reset(struct member_state *s)
{
	memset(s, 0, sizeof(*s));
	atomic_store(&s->up, 1);
}

struct member_state *
pool_slot(const char *key)
{
	if (region == NULL && !region_failed) {
		/* MAP_NORESERVE: pages are touched only for slots in use */
		void *p = mmap(NULL, POOL_SLOTS * sizeof(*region), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED || (keys = calloc(POOL_SLOTS, KEY_MAX)) == NULL) {
			if (p != MAP_FAILED)
				munmap(p, POOL_SLOTS * sizeof(*region));
			log_warn("cannot map the backend health region: health is per process");
			region_failed = 1;
			return NULL;
		}
		region = p;
	}
	if (region == NULL)
		return NULL;
	for (size_t i = 0; i < n_used; i++)
		if (strcmp(keys[i], key) == 0)
			return &region[i];
	if (n_used == POOL_SLOTS) {
		static int said;
		if (!said++)
			log_warn("more than %d backend members since start: the new ones' "
			    "health is per process", POOL_SLOTS);
		return NULL;
	}
	snprintf(keys[n_used], KEY_MAX, "%s", key);
	slot_reset(&region[n_used]);
	return &region[n_used++];
}

int
pool_init(struct pool *p, const char *label, const struct addr *addrs, size_t n,
    int balance, unsigned fail_threshold, unsigned down_ms, unsigned connect_timeout_ms)
{
	char key[KEY_MAX];

	memset(p, 0, sizeof(*p));
	p->label = label;
	p->balance = balance;
	p->fail_threshold = fail_threshold ? fail_threshold : 1;
	p->down_ms = down_ms ? down_ms : 1000;
	p->connect_timeout_ms = connect_timeout_ms;
	if ((p->m = calloc(n, sizeof(*p->m))) == NULL)
		goto err;
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		p->m[i].addr = &addrs[i];
		snprintf(key, sizeof(key), "%s %s", label, addrs[i].text);
		if ((p->m[i].st = pool_slot(key)) == NULL) {
			/* no shared slot: this process's own (its children copy it) */
			if ((p->m[i].st = aligned_alloc(64, sizeof(struct member_state))) == NULL)
				goto err;
			slot_reset(p->m[i].st);
		}
	}
	return 0;
err:
	pool_free(p);
	return -1;
}

/* Is st one of the region's slots (else a private one that pool_free frees)? */
static int
in_region(const struct member_state *st)
{
	return region != NULL && st >= region && st < region + POOL_SLOTS;
}

void
pool_free(struct pool *p)
{
	for (size_t i = 0; p->m != NULL && i < p->n; i++)
		if (p->m[i].st != NULL && !in_region(p->m[i].st))
			free(p->m[i].st);
	free(p->m);
	p->m = NULL;
	p->n = 0;
}

/* May member st take a connection now? Up; or down, its time passed and
 * the trial ours (claimed by compare-and-swap: one process wins). */
static int
claim_trial(const struct pool *p, struct member_state *st, uint64_t now)
{
	uint64_t t = atomic_load(&st->trial_until_ms);

	if (now < atomic_load(&st->down_until_ms) || now < t)
		return 0;
	return atomic_compare_exchange_strong(&st->trial_until_ms, &t,
	    now + p->connect_timeout_ms + 1000);
}

int
pool_pick(const struct pool *p, uint64_t tried, int *trial)
{
	size_t n = p->n, start = 0, i;
	uint64_t now = 0;
	int fallback = -1, best = -1;
	long best_n = 0;

	*trial = 0;
	if (n == 1)	/* the one member: as a single backend, nothing to choose */
		return (tried & 1) ? -1 : 0;
	/* roundrobin's turn; leastconn's too, so that ties spread */
	if (p->balance != BALANCE_FIRST)
		start = (size_t)(atomic_fetch_add_explicit(&p->m[0].st->rr, 1,
		    memory_order_relaxed) % n);
	for (size_t k = 0; k < n; k++) {
		struct member_state *st;

		i = (start + k) % n;
		if ((tried >> i) & 1)
			continue;
		st = p->m[i].st;
		if (atomic_load_explicit(&st->up, memory_order_relaxed)) {
			if (p->balance != BALANCE_LEASTCONN)
				return (int)i;
			long a = atomic_load_explicit(&st->active, memory_order_relaxed);
			if (best < 0 || a < best_n) {
				best = (int)i;
				best_n = a;
			}
			continue;
		}
		/* down: its one trial when its time has come, in its turn */
		if (now == 0)
			now = pool_now_ms();
		if (claim_trial(p, st, now)) {
			*trial = 1;
			return (int)i;
		}
		if (fallback < 0)
			fallback = (int)i;
	}
	return best >= 0 ? best : fallback;
}

void
pool_acquire(const struct pool *p, size_t i)
{
	if (p->balance == BALANCE_LEASTCONN)
		atomic_fetch_add_explicit(&p->m[i].st->active, 1, memory_order_relaxed);
}

void
pool_release(const struct pool *p, size_t i)
{
	if (p->balance == BALANCE_LEASTCONN)
		atomic_fetch_sub_explicit(&p->m[i].st->active, 1, memory_order_relaxed);
}

void
pool_ok(const struct pool *p, size_t i, uint64_t connect_us, int count)
{
	struct member_state *st = p->m[i].st;
	int down = 0;

	if (count) {
		atomic_fetch_add_explicit(&st->conns, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->connect_us, connect_us, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->connect_count, 1, memory_order_relaxed);
	}
	/* reads only, unless something failed before */
	if (atomic_load_explicit(&st->fails, memory_order_relaxed) != 0)
		atomic_store(&st->fails, 0);
	if (atomic_load_explicit(&st->up, memory_order_relaxed))
		return;
	if (atomic_compare_exchange_strong(&st->up, &down, 1)) {
		atomic_store(&st->down_ms, 0);
		atomic_store(&st->trial_until_ms, 0);
		log_info("host '%s': backend %s is up again", p->label, p->m[i].addr->text);
	}
}

void
pool_fail(const struct pool *p, size_t i, int trial, const char *why)
{
	struct member_state *st = p->m[i].st;
	unsigned fails = atomic_fetch_add(&st->fails, 1) + 1;
	uint64_t now = pool_now_ms();
	int up = 1;

	atomic_fetch_add_explicit(&st->connect_failures, 1, memory_order_relaxed);
	if (!atomic_load(&st->up)) {
		if (trial) {
			/* the trial failed: twice as long, at most 16 times */
			unsigned d = atomic_load(&st->down_ms) * 2;
			if (d > p->down_ms * POOL_DOWN_MAX_FACTOR)
				d = p->down_ms * POOL_DOWN_MAX_FACTOR;
			if (d < p->down_ms)
				d = p->down_ms;
			atomic_store(&st->down_ms, d);
			atomic_store(&st->down_until_ms, now + d);
			atomic_store(&st->trial_until_ms, 0);
			log_warn("host '%s': backend %s still down (%s): next trial in %u ms",
			    p->label, p->m[i].addr->text, why ? why : "failed", d);
		}
		return;
	}
	if (fails < p->fail_threshold)
		return;
	if (atomic_compare_exchange_strong(&st->up, &up, 0)) {
		atomic_store(&st->down_ms, p->down_ms);
		atomic_store(&st->down_until_ms, now + p->down_ms);
		atomic_store(&st->trial_until_ms, 0);
		log_warn("host '%s': backend %s is down after %u failed connects (%s): next "
		    "trial in %u ms", p->label, p->m[i].addr->text, fails, why ? why : "failed",
		    p->down_ms);
	}
}
