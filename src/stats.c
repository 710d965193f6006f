/* stats.c: see stats.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "log.h"
#include "stats.h"

/* ---- the data path ------------------------------------------------------ */

/* Until stats_worker_init: a private block with no host rows but row 0. */
static uint64_t dummy_g[SG_COUNT];
static struct stats_row dummy_rows[1];
uint64_t *stats_g = dummy_g;
struct stats_row *stats_rows = dummy_rows;
size_t stats_nhosts;

void
stats_connect_time(size_t host, uint64_t usec)
{
	unsigned i = 0;

	while (i < STATS_BUCKETS && usec > stats_bucket_us[i])
		i++;
	stats_add(SG_CONNECT_BUCKET + i, 1);
	stats_add(SG_CONNECT_USEC, usec);
	stats_host_add(host, SH_CONNECT_COUNT, 1);
	stats_host_add(host, SH_CONNECT_USEC, usec);
}

uint64_t
stats_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A counter a running worker may be adding to. */
static uint64_t
load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ---- host label -> counters --------------------------------------------- */

/* The retired totals, and a sum while it is made: one entry per label. */
struct label_table {
	struct stats_host_sum *v;
	size_t n, cap;
	size_t *slots;		/* open addressing: entry index + 1, 0: empty */
	size_t n_slots;		/* a power of two, more than twice n */
};

static size_t
hash_label(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static int
table_rehash(struct label_table *t, size_t n_slots)
{
	size_t *slots = calloc(n_slots, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t h = hash_label(t->v[i].label) & (n_slots - 1);
		while (slots[h])
			h = (h + 1) & (n_slots - 1);
		slots[h] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->n_slots = n_slots;
	return 0;
}

/* The entry for label, made (zeroed) if new. NULL when out of memory. The
 * pointer is good until the next call. */
static struct stats_host_sum *
table_get(struct label_table *t, const char *label)
{
	size_t h;

	if ((t->n + 1) * 2 > t->n_slots &&
	    table_rehash(t, t->n_slots ? t->n_slots * 2 : 64) != 0)
		return NULL;
	h = hash_label(label) & (t->n_slots - 1);
	for (; t->slots[h]; h = (h + 1) & (t->n_slots - 1))
		if (strcmp(t->v[t->slots[h] - 1].label, label) == 0)
			return &t->v[t->slots[h] - 1];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct stats_host_sum *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	if ((t->v[t->n].label = strdup(label)) == NULL)
		return NULL;
	t->slots[h] = ++t->n;
	return &t->v[t->n - 1];
}

static void
table_free(struct label_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].label);
	free(t->v);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- the main process's state ------------------------------------------- */

/* What the main process keeps of a generation: its hosts' labels. */
struct gen_labels {
	size_t n, n_skipped;
	char **labels;
	long long *not_after;
	unsigned char *skipped;	/* host_errors = skip left it out */
	int refs;		/* the generation in use, and each block of its workers */
};

/* Who counts in a block. */
struct block_owner {
	int used;
	pid_t pid;		/* 0 until stats_block_bind */
	struct gen_labels *gen;	/* a reference */
};

/* A pool member of the generation in use: its labels and its slot in the
 * pools' shared region (pool.h), which lives as long as the process. */
struct member_src {
	char *host, *backend;
	const struct member_state *st;
};

struct stats {
	unsigned char *map;
	size_t map_len, stride, max_blocks, max_hosts;
	struct block_owner *owners;	/* one per block */
	struct gen_labels *cur;		/* the generation in use; NULL: none */
	unsigned long long gen_no, reloads_ok, reloads_failed, restarts;
	long long started, last_reload;
	uint64_t retired_g[SG_COUNT];
	struct label_table retired;
	int warned_full;
	struct stats_acme_sum *acme;	/* orders by host label, unsorted */
	size_t n_acme;
	struct member_src *members;	/* the pools of the generation in use */
	size_t n_members;
};

static void members_free(struct stats *st);

static uint64_t *
block_g(const struct stats *st, size_t b)
{
	return (uint64_t *)(void *)(st->map + b * st->stride);
}

static struct stats_row *
block_rows(const struct stats *st, size_t b)
{
	return (struct stats_row *)(void *)(block_g(st, b) + SG_COUNT);
}

/* Host rows of block b in use beyond row 0. */
static size_t
block_nhosts(const struct stats *st, size_t b)
{
	const struct gen_labels *g = st->owners[b].gen;

	return g == NULL ? 0 : g->n < st->max_hosts ? g->n : st->max_hosts;
}

static void
gen_labels_put(struct gen_labels *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->labels[i]);
	free(g->labels);
	free(g->not_after);
	free(g->skipped);
	free(g);
}

/* Wall-clock seconds from CLOCK_REALTIME: glibc's time() reads the coarse
 * clock, which can still show the previous second a few ms after it ended,
 * so a reload could be stamped before the moment it was asked for. */
static long long
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec;
}

struct stats *
stats_new(size_t max_blocks, size_t max_hosts)
{
	struct stats *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		log_error("metrics: out of memory");
		return NULL;
	}
	st->max_blocks = max_blocks ? max_blocks : STATS_MAX_BLOCKS;
	st->max_hosts = max_hosts ? max_hosts : STATS_MIN_HOSTS;
	st->stride = (SG_COUNT * sizeof(uint64_t) + (st->max_hosts + 1) *
	    sizeof(struct stats_row) + 63) & ~(size_t)63;
	st->map_len = st->stride * st->max_blocks;
	st->started = st->last_reload = wall_seconds();
	if ((st->owners = calloc(st->max_blocks, sizeof(*st->owners))) == NULL)
		goto err;
	/* pages are only allocated where counters are touched */
	st->map = mmap(NULL, st->map_len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (st->map == MAP_FAILED)
		goto err;
	return st;
err:
	log_error("metrics: cannot map %zu bytes of counters: %s", st->map_len,
	    strerror(errno));
	free(st->owners);
	free(st);
	return NULL;
}

void
stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	for (size_t b = 0; b < st->max_blocks; b++)
		if (st->owners[b].used)
			gen_labels_put(st->owners[b].gen);
	gen_labels_put(st->cur);
	table_free(&st->retired);
	for (size_t i = 0; i < st->n_acme; i++)
		free(st->acme[i].label);
	free(st->acme);
	members_free(st);
	munmap(st->map, st->map_len);
	free(st->owners);
	free(st);
}

/* The labels of g, or NULL when out of memory. */
static struct gen_labels *
gen_labels_new(const struct generation *g)
{
	size_t n = g->n_hosts ? g->n_hosts : 1;
	struct gen_labels *gl = calloc(1, sizeof(*gl));

	if (gl == NULL)
		return NULL;
	gl->refs = 1;
	gl->n_skipped = g->n_skipped;
	gl->labels = calloc(n, sizeof(*gl->labels));
	gl->not_after = calloc(n, sizeof(*gl->not_after));
	gl->skipped = calloc(n, sizeof(*gl->skipped));
	if (gl->labels == NULL || gl->not_after == NULL || gl->skipped == NULL)
		goto err;
	for (size_t i = 0; i < g->n_hosts; i++, gl->n++) {
		if ((gl->labels[i] = strdup(g->hosts[i].cfg->label)) == NULL)
			goto err;
		gl->not_after[i] = (long long)g->hosts[i].not_after;
		gl->skipped[i] = g->hosts[i].skipped != 0;
	}
	return gl;
err:
	gen_labels_put(gl);
	return NULL;
}

static void
members_free(struct stats *st)
{
	for (size_t i = 0; i < st->n_members; i++) {
		free(st->members[i].host);
		free(st->members[i].backend);
	}
	free(st->members);
	st->members = NULL;
	st->n_members = 0;
}

/* Add the members of pool p of host label, each slot once (a host's
 * backend and backend.PROTO pools may share members). */
static int
members_add(struct stats *st, const char *label, const struct pool *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct member_src *v;
		int seen = 0;

		for (size_t j = 0; j < st->n_members; j++)
			seen |= st->members[j].st == p->m[i].st;
		if (seen)
			continue;
		if ((v = realloc(st->members, (st->n_members + 1) * sizeof(*v))) == NULL)
			return -1;
		st->members = v;
		v += st->n_members;
		v->st = p->m[i].st;
		v->host = strdup(label);
		v->backend = strdup(p->m[i].addr->text);
		st->n_members++;
		if (v->host == NULL || v->backend == NULL)
			return -1;
	}
	return 0;
}

static int
cmp_member(const void *a, const void *b)
{
	return strcmp(((const struct member_src *)a)->host, ((const struct member_src *)b)->host);
}

/* The pool members of g, for the per-member metrics. */
static int
members_of(struct stats *st, const struct generation *g)
{
	members_free(st);
	for (size_t i = 0; i < g->n_hosts; i++) {
		const struct host *h = &g->hosts[i];
		if (h->skipped || h->pool.m == NULL)
			continue;
		if (members_add(st, h->cfg->label, &h->pool) != 0)
			return -1;
		for (size_t k = 0; h->alpn_pools != NULL && k < h->cfg->n_alpn_backends; k++)
			if (members_add(st, h->cfg->label, &h->alpn_pools[k]) != 0)
				return -1;
	}
	/* by host; a host's members keep their pool order (an insertion
	 * sort: stable, and members are few) */
	for (size_t i = 1; i < st->n_members; i++)
		for (size_t j = i; j > 0 && cmp_member(&st->members[j - 1], &st->members[j]) > 0;
		    j--) {
			struct member_src t = st->members[j];
			st->members[j] = st->members[j - 1];
			st->members[j - 1] = t;
		}
	return 0;
}

int
stats_generation(struct stats *st, const struct generation *g)
{
	if (st == NULL)
		return 0;
	if (members_of(st, g) != 0) {
		log_error("metrics: out of memory; no pool member metrics");
		members_free(st);
	}
	st->gen_no++;
	gen_labels_put(st->cur);
	if ((st->cur = gen_labels_new(g)) == NULL) {
		log_error("metrics: out of memory; new workers count nothing");
		return -1;
	}
	if (g->n_hosts > st->max_hosts)
		log_warn("metrics: %zu hosts, counters for %zu; the others are counted as "
		    "host=\"%s\"", g->n_hosts, st->max_hosts, STATS_OTHER_LABEL);
	return 0;
}

void
stats_reload_done(struct stats *st, int ok)
{
	if (st == NULL)
		return;
	if (ok) {
		st->reloads_ok++;
		st->last_reload = wall_seconds();
	} else {
		st->reloads_failed++;
	}
}

void
stats_acme_order(struct stats *st, const char *label, int ok)
{
	struct stats_acme_sum *a = NULL, *v;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n_acme && a == NULL; i++)
		if (strcmp(st->acme[i].label, label) == 0)
			a = &st->acme[i];
	if (a == NULL) {
		if ((v = realloc(st->acme, (st->n_acme + 1) * sizeof(*v))) == NULL)
			return;
		st->acme = v;
		a = &v[st->n_acme];
		memset(a, 0, sizeof(*a));
		if ((a->label = strdup(label)) == NULL)
			return;
		st->n_acme++;
	}
	if (ok)
		a->ok++;
	else
		a->error++;
}

static int
by_acme_label(const void *x, const void *y)
{
	return strcmp(((const struct stats_acme_sum *)x)->label,
	    ((const struct stats_acme_sum *)y)->label);
}

void
stats_worker_restart(struct stats *st)
{
	if (st != NULL)
		st->restarts++;
}

/* ---- worker blocks ------------------------------------------------------ */

int
stats_block_take(struct stats *st)
{
	if (st == NULL || st->cur == NULL)
		return -1;
	for (size_t b = 0; b < st->max_blocks; b++) {
		if (st->owners[b].used)
			continue;
		st->owners[b].used = 1;
		st->owners[b].pid = 0;
		st->owners[b].gen = st->cur;
		st->cur->refs++;
		return (int)b;
	}
	if (!st->warned_full) {
		st->warned_full = 1;
		log_warn("metrics: all %zu counter blocks in use; a new worker's counts are lost",
		    st->max_blocks);
	}
	return -1;
}

/* Zero block b (the part its generation used) and make it free. */
static void
block_free(struct stats *st, size_t b)
{
	memset(block_g(st, b), 0, SG_COUNT * sizeof(uint64_t) +
	    (1 + block_nhosts(st, b)) * sizeof(struct stats_row));
	gen_labels_put(st->owners[b].gen);
	memset(&st->owners[b], 0, sizeof(st->owners[b]));
}

void
stats_block_bind(struct stats *st, int b, pid_t pid)
{
	if (st == NULL || b < 0 || (size_t)b >= st->max_blocks)
		return;
	if (pid <= 0)
		block_free(st, (size_t)b);
	else
		st->owners[b].pid = pid;
}

void
stats_worker_init(struct stats *st, int b)
{
	stats_g = dummy_g;
	stats_rows = dummy_rows;
	stats_nhosts = 0;
	if (st == NULL || b < 0 || (size_t)b >= st->max_blocks || !st->owners[b].used)
		return;
	stats_g = block_g(st, (size_t)b);
	stats_rows = block_rows(st, (size_t)b);
	stats_nhosts = block_nhosts(st, (size_t)b);
}

static void
add_row(uint64_t *dst, const struct stats_row *r)
{
	for (int k = 0; k < SH_COUNT; k++)
		dst[k] += load(&r->c[k]);
}

/* Add block b's counters to the retired totals, by host label. */
static void
block_fold(struct stats *st, size_t b)
{
	const uint64_t *g = block_g(st, b);
	const struct stats_row *rows = block_rows(st, b);
	const struct gen_labels *gen = st->owners[b].gen;
	size_t n = block_nhosts(st, b);
	struct stats_host_sum *e;

	for (int k = 0; k < SG_COUNT; k++)
		st->retired_g[k] += load(&g[k]);
	for (size_t i = 0; i < n; i++)
		if ((e = table_get(&st->retired, gen->labels[i])) != NULL)
			add_row(e->c, &rows[1 + i]);
	if (gen != NULL && gen->n > n &&
	    (e = table_get(&st->retired, STATS_OTHER_LABEL)) != NULL)
		add_row(e->c, &rows[0]);
}

void
stats_worker_gone(struct stats *st, pid_t pid)
{
	if (st == NULL || pid <= 0)
		return;
	for (size_t b = 0; b < st->max_blocks; b++)
		if (st->owners[b].used && st->owners[b].pid == pid) {
			block_fold(st, b);
			block_free(st, b);
			return;
		}
}

/* ---- sums --------------------------------------------------------------- */

/* Add the block of a live worker to sum and its hosts to t. -1: out of memory. */
static int
sum_block(const struct stats *st, size_t b, struct stats_sum *sum, struct label_table *t)
{
	const uint64_t *g = block_g(st, b);
	const struct stats_row *rows = block_rows(st, b);
	const struct gen_labels *gen = st->owners[b].gen;
	size_t nh = block_nhosts(st, b);
	uint64_t ended = load(&g[SG_ENDED]);	/* before accepted: never below zero */
	struct stats_host_sum *e;

	for (int k = 0; k < SG_COUNT; k++)
		sum->g[k] += load(&g[k]);
	sum->active += (int64_t)(load(&g[SG_ACCEPTED]) - ended);
	/* row 0 only when the generation has hosts beyond the capacity */
	for (size_t i = gen->n > nh ? 0 : 1; i <= nh; i++) {
		uint64_t closed = load(&rows[i].c[SH_CLOSED]);
		if ((e = table_get(t, i > 0 ? gen->labels[i - 1] : STATS_OTHER_LABEL)) == NULL)
			return -1;
		add_row(e->c, &rows[i]);
		e->open += (int64_t)(load(&rows[i].c[SH_OPENED]) - closed);
	}
	return 0;
}

static int
by_label(const void *a, const void *b)
{
	return strcmp(((const struct stats_host_sum *)a)->label,
	    ((const struct stats_host_sum *)b)->label);
}

int
stats_sum(const struct stats *st, struct stats_sum *out)
{
	struct label_table t = { 0 };
	struct stats_host_sum *e;

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	memcpy(out->g, st->retired_g, sizeof(out->g));
	for (size_t i = 0; i < st->retired.n; i++) {
		if ((e = table_get(&t, st->retired.v[i].label)) == NULL)
			goto err;
		memcpy(e->c, st->retired.v[i].c, sizeof(e->c));
	}
	for (size_t b = 0; b < st->max_blocks; b++) {
		if (!st->owners[b].used || st->owners[b].pid <= 0)
			continue;
		out->workers++;
		if (sum_block(st, b, out, &t) != 0)
			goto err;
	}
	for (size_t i = 0; st->cur != NULL && i < st->cur->n; i++) {
		if (st->cur->skipped[i])
			continue;
		if ((e = table_get(&t, st->cur->labels[i])) == NULL)
			goto err;
		e->in_use = 1;
		e->not_after = st->cur->not_after[i];
	}
	/* the entries become the sum's, sorted; the index is of no more use */
	for (size_t i = 0; i < t.n; i++)
		if (t.v[i].open < 0)
			t.v[i].open = 0;
	if (out->active < 0)
		out->active = 0;
	qsort(t.v, t.n, sizeof(*t.v), by_label);
	out->hosts = t.v;
	out->n_hosts = t.n;
	free(t.slots);
	out->started = st->started;
	out->last_reload = st->last_reload;
	out->generation = st->gen_no;
	out->reloads_ok = st->reloads_ok;
	out->reloads_failed = st->reloads_failed;
	out->restarts = st->restarts;
	if (st->cur != NULL) {
		out->hosts_served = st->cur->n - st->cur->n_skipped;
		out->hosts_skipped = st->cur->n_skipped;
	}
	if (st->n_acme > 0) {
		if ((out->acme = calloc(st->n_acme, sizeof(*out->acme))) == NULL)
			return -1;	/* the caller frees what out holds */
		for (size_t i = 0; i < st->n_acme; i++) {
			out->acme[i] = st->acme[i];
			if ((out->acme[i].label = strdup(st->acme[i].label)) == NULL)
				return -1;
			out->n_acme++;
		}
		qsort(out->acme, out->n_acme, sizeof(*out->acme), by_acme_label);
	}
	if (st->n_members > 0) {
		if ((out->members = calloc(st->n_members, sizeof(*out->members))) == NULL)
			return -1;
		for (size_t i = 0; i < st->n_members; i++) {
			struct stats_member_sum *m = &out->members[i];
			const struct member_state *ms = st->members[i].st;
			if ((m->host = strdup(st->members[i].host)) == NULL ||
			    (m->backend = strdup(st->members[i].backend)) == NULL) {
				free(m->host);
				return -1;
			}
			out->n_members++;
			m->up = atomic_load(&ms->up);
			m->conns = atomic_load(&ms->conns);
			m->connect_failures = atomic_load(&ms->connect_failures);
			m->connect_us = atomic_load(&ms->connect_us);
			m->connect_count = atomic_load(&ms->connect_count);
		}
	}
	return 0;
err:
	table_free(&t);
	return -1;
}

void
stats_sum_free(struct stats_sum *s)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		free(s->hosts[i].label);
	free(s->hosts);
	for (size_t i = 0; i < s->n_acme; i++)
		free(s->acme[i].label);
	free(s->acme);
	for (size_t i = 0; i < s->n_members; i++) {
		free(s->members[i].host);
		free(s->members[i].backend);
	}
	free(s->members);
	memset(s, 0, sizeof(*s));
}
