/* stats.c: see stats.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sbuf.h"
#include "stats.h"

#define OTHER_LABEL "_other"	/* the row of hosts beyond the capacity */

/* ---- the data path ------------------------------------------------------ */

/* Until stats_worker_init: a private block with no host rows but row 0. */
static uint64_t dummy_g[SG_COUNT];
static struct stats_row dummy_rows[1];
uint64_t *stats_g = dummy_g;
struct stats_row *stats_rows = dummy_rows;
size_t stats_nhosts;

/* Upper bounds of the latency buckets (microseconds; the text format's le) */
static const uint64_t bucket_us[STATS_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};
static const char *const bucket_le[STATS_BUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10"
};
static const char *const hs_names[HS_COUNT] = {
	[HS_UNKNOWN_SNI] = "unknown_sni", [HS_NO_ALPN] = "no_alpn", [HS_PROTOCOL] = "protocol",
	[HS_CLIENT_CERT] = "client_cert", [HS_TIMEOUT] = "timeout", [HS_CLOSED] = "closed",
	[HS_PROXY_HEADER] = "proxy_header", [HS_OTHER] = "other"
};

void
stats_connect_time(size_t host, uint64_t usec)
{
	unsigned i = 0;

	while (i < STATS_BUCKETS && usec > bucket_us[i])
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

static long long
now_ms(void)
{
	return (long long)(stats_clock_us() / 1000u);
}

static uint64_t
load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ---- label -> counters -------------------------------------------------- */

struct lent {
	char *label;
	uint64_t c[SH_COUNT];
	int64_t open;		/* render: open connections (live blocks) */
	int current;		/* render: a host of the generation in use */
	long long not_after;	/* its certificate's, if current */
};

struct ltab {
	struct lent *v;
	size_t n, cap;
	size_t *idx;		/* open addressing: entry index + 1, 0: empty */
	size_t idx_cap;		/* a power of two, more than twice n */
};

static size_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static int
ltab_reindex(struct ltab *t, size_t cap)
{
	size_t *idx = calloc(cap, sizeof(*idx));

	if (idx == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t h = hash_str(t->v[i].label) & (cap - 1);
		while (idx[h])
			h = (h + 1) & (cap - 1);
		idx[h] = i + 1;
	}
	free(t->idx);
	t->idx = idx;
	t->idx_cap = cap;
	return 0;
}

/* The entry for label, made (zeroed) if new. NULL when out of memory. The
 * pointer is good until the next call. */
static struct lent *
ltab_get(struct ltab *t, const char *label)
{
	size_t h;

	if ((t->n + 1) * 2 > t->idx_cap &&
	    ltab_reindex(t, t->idx_cap ? t->idx_cap * 2 : 64) != 0)
		return NULL;
	h = hash_str(label) & (t->idx_cap - 1);
	for (; t->idx[h]; h = (h + 1) & (t->idx_cap - 1))
		if (strcmp(t->v[t->idx[h] - 1].label, label) == 0)
			return &t->v[t->idx[h] - 1];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct lent *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	if ((t->v[t->n].label = strdup(label)) == NULL)
		return NULL;
	t->idx[h] = ++t->n;
	return &t->v[t->n - 1];
}

static void
ltab_free(struct ltab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].label);
	free(t->v);
	free(t->idx);
	memset(t, 0, sizeof(*t));
}

/* ---- the main process's state ------------------------------------------- */

/* What the main process keeps of a generation: its host labels. */
struct sgen {
	size_t n, n_skipped;
	char **labels;
	long long *not_after;
	unsigned char *skipped;	/* host_errors = skip left it out */
	int refs;		/* the generation in use, and each block of its workers */
};

struct bmeta {
	int used;
	pid_t pid;		/* 0 until stats_block_bind */
	struct sgen *gen;
};

struct client {
	int fd;
	long long deadline;
	short revents;
	char req[4096];
	size_t rlen;
	char *out;		/* the answer, once the request is read */
	size_t olen, off;
};

struct stats {
	unsigned char *map;
	size_t map_len, stride, max_blocks, max_hosts;
	struct bmeta *meta;
	struct sgen *cur;
	unsigned long long gen_no, reloads_ok, reloads_failed, restarts;
	long long started, last_reload;
	uint64_t retired_g[SG_COUNT];
	struct ltab retired;
	int warned_full;
	int lfd;		/* the metrics listener, -1: none */
	struct addr laddr;
	int sfd;		/* signalfd for stats_wait, -1: not yet */
	struct client cl[STATS_MAX_CLIENTS];
	size_t ncl;
};

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
	const struct sgen *g = st->meta[b].gen;

	return g == NULL ? 0 : g->n < st->max_hosts ? g->n : st->max_hosts;
}

static void
sgen_put(struct sgen *g)
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
	st->lfd = st->sfd = -1;
	st->started = st->last_reload = wall_seconds();
	st->meta = calloc(st->max_blocks, sizeof(*st->meta));
	/* pages are only allocated where counters are touched */
	st->map = mmap(NULL, st->map_len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (st->meta == NULL || st->map == MAP_FAILED) {
		log_error("metrics: cannot map %zu bytes of counters: %s", st->map_len,
		    strerror(errno));
		if (st->map != MAP_FAILED)
			munmap(st->map, st->map_len);
		free(st->meta);
		free(st);
		return NULL;
	}
	return st;
}

static void
client_close(struct stats *st, size_t i)
{
	close(st->cl[i].fd);
	free(st->cl[i].out);
	st->cl[i] = st->cl[--st->ncl];
}

static void
listener_close(struct stats *st)
{
	if (st->lfd < 0)
		return;
	close(st->lfd);
	st->lfd = -1;
	if (st->laddr.ss.ss_family == AF_UNIX)
		(void)unlink(((struct sockaddr_un *)&st->laddr.ss)->sun_path);
	memset(&st->laddr, 0, sizeof(st->laddr));
}

void
stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	while (st->ncl > 0)
		client_close(st, st->ncl - 1);
	listener_close(st);
	if (st->sfd >= 0)
		close(st->sfd);
	for (size_t b = 0; b < st->max_blocks; b++)
		if (st->meta[b].used)
			sgen_put(st->meta[b].gen);
	sgen_put(st->cur);
	ltab_free(&st->retired);
	munmap(st->map, st->map_len);
	free(st->meta);
	free(st);
}

int
stats_generation(struct stats *st, const struct generation *g)
{
	struct sgen *ng;

	if (st == NULL)
		return 0;
	st->gen_no++;
	sgen_put(st->cur);
	st->cur = NULL;
	if ((ng = calloc(1, sizeof(*ng))) == NULL)
		goto oom;
	ng->refs = 1;
	ng->labels = calloc(g->n_hosts ? g->n_hosts : 1, sizeof(*ng->labels));
	ng->not_after = calloc(g->n_hosts ? g->n_hosts : 1, sizeof(*ng->not_after));
	ng->skipped = calloc(g->n_hosts ? g->n_hosts : 1, sizeof(*ng->skipped));
	ng->n_skipped = g->n_skipped;
	if (ng->labels == NULL || ng->not_after == NULL || ng->skipped == NULL) {
		sgen_put(ng);
		goto oom;
	}
	for (size_t i = 0; i < g->n_hosts; i++, ng->n++) {
		if ((ng->labels[i] = strdup(g->hosts[i].cfg->label)) == NULL) {
			sgen_put(ng);
			goto oom;
		}
		ng->not_after[i] = (long long)g->hosts[i].not_after;
		ng->skipped[i] = g->hosts[i].skipped != 0;
	}
	if (g->n_hosts > st->max_hosts)
		log_warn("metrics: %zu hosts, counters for %zu; the others are counted as "
		    "host=\"%s\"", g->n_hosts, st->max_hosts, OTHER_LABEL);
	st->cur = ng;
	return 0;
oom:
	log_error("metrics: out of memory; new workers count nothing");
	return -1;
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
		if (st->meta[b].used)
			continue;
		st->meta[b].used = 1;
		st->meta[b].pid = 0;
		st->meta[b].gen = st->cur;
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
	sgen_put(st->meta[b].gen);
	memset(&st->meta[b], 0, sizeof(st->meta[b]));
}

void
stats_block_bind(struct stats *st, int b, pid_t pid)
{
	if (st == NULL || b < 0 || (size_t)b >= st->max_blocks)
		return;
	if (pid <= 0)
		block_free(st, (size_t)b);
	else
		st->meta[b].pid = pid;
}

void
stats_worker_init(struct stats *st, int b)
{
	stats_g = dummy_g;
	stats_rows = dummy_rows;
	stats_nhosts = 0;
	if (st == NULL)
		return;
	/* the main process's sockets are not ours */
	for (size_t i = 0; i < st->ncl; i++)
		close(st->cl[i].fd);
	st->ncl = 0;
	if (st->lfd >= 0)
		close(st->lfd);	/* without unlinking: main still serves it */
	st->lfd = -1;
	memset(&st->laddr, 0, sizeof(st->laddr));
	if (st->sfd >= 0)
		close(st->sfd);
	st->sfd = -1;
	if (b < 0 || (size_t)b >= st->max_blocks || !st->meta[b].used)
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
	const struct sgen *gen = st->meta[b].gen;
	size_t n = block_nhosts(st, b);
	struct lent *e;

	for (int k = 0; k < SG_COUNT; k++)
		st->retired_g[k] += load(&g[k]);
	for (size_t i = 0; i < n; i++)
		if ((e = ltab_get(&st->retired, gen->labels[i])) != NULL)
			add_row(e->c, &rows[1 + i]);
	if (gen != NULL && gen->n > n && (e = ltab_get(&st->retired, OTHER_LABEL)) != NULL)
		add_row(e->c, &rows[0]);
}

void
stats_worker_gone(struct stats *st, pid_t pid)
{
	if (st == NULL || pid <= 0)
		return;
	for (size_t b = 0; b < st->max_blocks; b++)
		if (st->meta[b].used && st->meta[b].pid == pid) {
			block_fold(st, b);
			block_free(st, b);
			return;
		}
}

/* ---- the text format ---------------------------------------------------- */

char *
stats_label_escape(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	char *out = malloc(2 * n + 1), *o = out;

	if (out == NULL)
		return NULL;
	while (*p) {
		unsigned char ch = *p;
		size_t len = ch < 0x80 ? 1 : (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 :
		    (ch & 0xF8) == 0xF0 ? 4 : 0;
		int ok = len > 0;

		/* a valid UTF-8 sequence: continuation bytes, shortest form,
		 * no surrogates, at most U+10FFFF */
		for (size_t i = 1; ok && i < len; i++)
			ok = (p[i] & 0xC0) == 0x80;
		if (ok && len == 2)
			ok = ch >= 0xC2;
		else if (ok && len == 3)
			ok = !(ch == 0xE0 && p[1] < 0xA0) && !(ch == 0xED && p[1] >= 0xA0);
		else if (ok && len == 4)
			ok = ch <= 0xF4 && !(ch == 0xF0 && p[1] < 0x90) &&
			    !(ch == 0xF4 && p[1] >= 0x90);
		if (!ok) {
			*o++ = '?';
			p++;
			continue;
		}
		if (ch == '\\' || ch == '"') {
			*o++ = '\\';
			*o++ = (char)ch;
		} else if (ch == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			memcpy(o, p, len);
			o += len;
		}
		p += len;
	}
	*o = '\0';
	return out;
}

static void
family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
lent_cmp(const void *a, const void *b)
{
	const struct lent *x = *(const struct lent *const *)a, *y = *(const struct lent *const *)b;

	return strcmp(x->label, y->label);
}

/* One line per host of a per-host counter. */
static void
host_lines(struct sbuf *b, const char *name, struct lent **v, char **esc, size_t n, int k)
{
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s{host=\"%s\"} %llu\n", name, esc[i],
		    (unsigned long long)v[i]->c[k]);
}

char *
stats_render(struct stats *st, size_t *len)
{
	struct sbuf b = { NULL, 0, 0, 0 };
	struct ltab agg = { 0 };
	uint64_t gs[SG_COUNT];
	int64_t active = 0;
	struct lent *e, **v = NULL;
	char **esc = NULL;
	size_t n = 0, workers = 0;

	if (st == NULL)
		return NULL;
	memcpy(gs, st->retired_g, sizeof(gs));
	for (size_t i = 0; i < st->retired.n; i++)
		if ((e = ltab_get(&agg, st->retired.v[i].label)) != NULL)
			memcpy(e->c, st->retired.v[i].c, sizeof(e->c));
	for (size_t blk = 0; blk < st->max_blocks; blk++) {
		const uint64_t *g = block_g(st, blk);
		const struct stats_row *rows = block_rows(st, blk);
		const struct sgen *gen = st->meta[blk].gen;
		size_t nh = block_nhosts(st, blk);
		uint64_t ended, closed;

		if (!st->meta[blk].used || st->meta[blk].pid <= 0)
			continue;
		workers++;
		/* what closed is read before what opened: never below zero */
		ended = load(&g[SG_ENDED]);
		for (int k = 0; k < SG_COUNT; k++)
			gs[k] += load(&g[k]);
		active += (int64_t)(load(&g[SG_ACCEPTED]) - ended);
		for (size_t i = 0; i <= nh; i++) {
			const char *label = i > 0 ? gen->labels[i - 1] : OTHER_LABEL;
			if (i == 0 && gen->n <= nh)
				continue;	/* no hosts beyond the capacity */
			if ((e = ltab_get(&agg, label)) == NULL)
				continue;
			closed = load(&rows[i].c[SH_CLOSED]);
			add_row(e->c, &rows[i]);
			e->open += (int64_t)(load(&rows[i].c[SH_OPENED]) - closed);
		}
	}
	for (size_t i = 0; st->cur && i < st->cur->n; i++)
		if (!st->cur->skipped[i] && (e = ltab_get(&agg, st->cur->labels[i])) != NULL) {
			e->current = 1;
			e->not_after = st->cur->not_after[i];
		}
	/* sorted by label, each escaped once */
	n = agg.n;
	v = calloc(n ? n : 1, sizeof(*v));
	esc = calloc(n ? n : 1, sizeof(*esc));
	if (v == NULL || esc == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++)
		v[i] = &agg.v[i];
	qsort(v, n, sizeof(*v), lent_cmp);
	for (size_t i = 0; i < n; i++)
		if ((esc[i] = stats_label_escape(v[i]->label)) == NULL)
			goto oom;

	family(&b, "tlsfront_start_time_seconds", "gauge",
	    "When the main process started (unix time).");
	sb_printf(&b, "tlsfront_start_time_seconds %lld\n", st->started);
	family(&b, "tlsfront_config_generation", "gauge",
	    "The configuration in use: 1 at start, one more per successful reload.");
	sb_printf(&b, "tlsfront_config_generation %llu\n", st->gen_no);
	family(&b, "tlsfront_hosts", "gauge", "Hosts served by the configuration in use.");
	sb_printf(&b, "tlsfront_hosts %zu\n",
	    st->cur ? st->cur->n - st->cur->n_skipped : (size_t)0);
	family(&b, "tlsfront_hosts_skipped", "gauge",
	    "Hosts of the configuration in use left out by host_errors = skip.");
	sb_printf(&b, "tlsfront_hosts_skipped %zu\n", st->cur ? st->cur->n_skipped : (size_t)0);
	family(&b, "tlsfront_reloads_total", "counter", "Reloads (SIGHUP), by result.");
	sb_printf(&b, "tlsfront_reloads_total{result=\"ok\"} %llu\n", st->reloads_ok);
	sb_printf(&b, "tlsfront_reloads_total{result=\"failed\"} %llu\n", st->reloads_failed);
	family(&b, "tlsfront_last_reload_success_timestamp_seconds", "gauge",
	    "When the configuration in use was loaded (unix time): start or last good reload.");
	sb_printf(&b, "tlsfront_last_reload_success_timestamp_seconds %lld\n", st->last_reload);
	family(&b, "tlsfront_worker_restarts_total", "counter",
	    "Workers that died unexpectedly and were started again.");
	sb_printf(&b, "tlsfront_worker_restarts_total %llu\n", st->restarts);
	family(&b, "tlsfront_worker_processes", "gauge",
	    "Worker processes counting (those of the generation in use and draining ones).");
	sb_printf(&b, "tlsfront_worker_processes %zu\n", workers);
	family(&b, "tlsfront_accepted_connections_total", "counter",
	    "TCP connections accepted, before TLS.");
	sb_printf(&b, "tlsfront_accepted_connections_total %llu\n",
	    (unsigned long long)gs[SG_ACCEPTED]);
	family(&b, "tlsfront_active_connections", "gauge",
	    "Accepted connections open now, in any state.");
	sb_printf(&b, "tlsfront_active_connections %lld\n", (long long)(active < 0 ? 0 : active));
	family(&b, "tlsfront_refused_connections_total", "counter",
	    "Connections closed at accept: the global max_connections was reached.");
	sb_printf(&b, "tlsfront_refused_connections_total %llu\n",
	    (unsigned long long)gs[SG_REFUSED]);
	family(&b, "tlsfront_handshake_failures_total", "counter",
	    "Connections that ended before their TLS handshake completed, by reason.");
	for (int r = 0; r < HS_COUNT; r++)
		sb_printf(&b, "tlsfront_handshake_failures_total{reason=\"%s\"} %llu\n",
		    hs_names[r], (unsigned long long)gs[SG_HS_FAIL + r]);
	family(&b, "tlsfront_backend_connect_seconds", "histogram",
	    "Time to connect to a backend, successful connects of all hosts.");
	{
		unsigned long long cum = 0;
		for (int i = 0; i <= STATS_BUCKETS; i++) {
			cum += gs[SG_CONNECT_BUCKET + i];
			sb_printf(&b, "tlsfront_backend_connect_seconds_bucket{le=\"%s\"} %llu\n",
			    i < STATS_BUCKETS ? bucket_le[i] : "+Inf", cum);
		}
		sb_printf(&b, "tlsfront_backend_connect_seconds_sum %.6f\n",
		    (double)gs[SG_CONNECT_USEC] / 1e6);
		sb_printf(&b, "tlsfront_backend_connect_seconds_count %llu\n", cum);
	}

	family(&b, "tlsfront_connections_total", "counter",
	    "Connections of the host: TLS handshakes completed.");
	host_lines(&b, "tlsfront_connections_total", v, esc, n, SH_OPENED);
	family(&b, "tlsfront_connections_open", "gauge",
	    "Connections of the host open now (handshake completed).");
	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "tlsfront_connections_open{host=\"%s\"} %lld\n", esc[i],
		    (long long)(v[i]->open < 0 ? 0 : v[i]->open));
	family(&b, "tlsfront_handshakes_total", "counter",
	    "Completed TLS handshakes of the host, by session: full or resumed.");
	for (size_t i = 0; i < n; i++) {
		uint64_t res = v[i]->c[SH_RESUMED], all = v[i]->c[SH_OPENED];
		sb_printf(&b, "tlsfront_handshakes_total{host=\"%s\",session=\"full\"} %llu\n",
		    esc[i], (unsigned long long)(all >= res ? all - res : 0));
		sb_printf(&b, "tlsfront_handshakes_total{host=\"%s\",session=\"resumed\"} %llu\n",
		    esc[i], (unsigned long long)res);
	}
	family(&b, "tlsfront_received_bytes_total", "counter",
	    "Bytes from clients (plaintext), counted when the connection closes.");
	host_lines(&b, "tlsfront_received_bytes_total", v, esc, n, SH_BYTES_IN);
	family(&b, "tlsfront_sent_bytes_total", "counter",
	    "Bytes to clients (plaintext), counted when the connection closes.");
	host_lines(&b, "tlsfront_sent_bytes_total", v, esc, n, SH_BYTES_OUT);
	family(&b, "tlsfront_backend_connect_failures_total", "counter",
	    "Backend connects that failed or timed out.");
	host_lines(&b, "tlsfront_backend_connect_failures_total", v, esc, n, SH_CONNECT_FAILED);
	family(&b, "tlsfront_host_backend_connect_seconds", "summary",
	    "Time to connect to the host's backend, successful connects.");
	for (size_t i = 0; i < n; i++) {
		sb_printf(&b, "tlsfront_host_backend_connect_seconds_sum{host=\"%s\"} %.6f\n",
		    esc[i], (double)v[i]->c[SH_CONNECT_USEC] / 1e6);
		sb_printf(&b, "tlsfront_host_backend_connect_seconds_count{host=\"%s\"} %llu\n",
		    esc[i], (unsigned long long)v[i]->c[SH_CONNECT_COUNT]);
	}
	family(&b, "tlsfront_host_refused_connections_total", "counter",
	    "Handshakes refused: the host's max_connections was reached.");
	host_lines(&b, "tlsfront_host_refused_connections_total", v, esc, n, SH_REFUSED);
	family(&b, "tlsfront_certificate_not_after_timestamp_seconds", "gauge",
	    "When the host's certificate expires (unix time), hosts in use.");
	for (size_t i = 0; i < n; i++)
		if (v[i]->current)
			sb_printf(&b, "tlsfront_certificate_not_after_timestamp_seconds"
			    "{host=\"%s\"} %lld\n", esc[i], v[i]->not_after);
	if (b.oom)
		goto oom;
	for (size_t i = 0; i < n; i++)
		free(esc[i]);
	free(esc);
	free(v);
	ltab_free(&agg);
	if (len != NULL)
		*len = b.len;
	if (b.p == NULL)
		b.p = calloc(1, 1);
	return b.p;
oom:
	for (size_t i = 0; esc && i < n; i++)
		free(esc[i]);
	free(esc);
	free(v);
	ltab_free(&agg);
	free(b.p);
	return NULL;
}

/* ---- HTTP --------------------------------------------------------------- */

char *
stats_http_answer(struct stats *st, const char *req, size_t len, size_t *outlen)
{
	char line[512], *method, *target, *version, *save = NULL;
	const char *status = "400 Bad Request", *extra = "";
	char *body = NULL;
	size_t blen = 0, n = 0;
	int head = 0;
	struct sbuf b = { NULL, 0, 0, 0 };

	while (n < len && n < sizeof(line) - 1 && req[n] != '\n' && req[n] != '\0')
		n++;
	memcpy(line, req, n);
	line[n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	method = strtok_r(line, " ", &save);
	target = method ? strtok_r(NULL, " ", &save) : NULL;
	version = target ? strtok_r(NULL, " ", &save) : NULL;
	if (version == NULL || strtok_r(NULL, " ", &save) != NULL ||
	    strncmp(version, "HTTP/", 5) != 0 || target[0] != '/') {
		;	/* 400 */
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = "405 Method Not Allowed";
		extra = "Allow: GET, HEAD\r\n";
	} else if (strncmp(target, "/metrics", 8) != 0 ||
	    (target[8] != '\0' && target[8] != '?')) {
		status = "404 Not Found";
	} else {
		head = strcmp(method, "HEAD") == 0;
		if ((body = stats_render(st, &blen)) == NULL)
			status = "500 Internal Server Error";
		else
			status = "200 OK";
	}
	if (body == NULL) {
		static const char *const plain = "text/plain; charset=utf-8";
		sb_printf(&b, "HTTP/1.1 %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n%s\n", status, plain, extra, strlen(status) + 1,
		    status);
	} else {
		sb_printf(&b, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; "
		    "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
		    blen);
		if (!head && !b.oom) {
			char *p = realloc(b.p, b.len + blen + 1);
			if (p == NULL) {
				b.oom = 1;
			} else {
				b.p = p;
				memcpy(b.p + b.len, body, blen + 1);
				b.len += blen;
			}
		}
		free(body);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*outlen = b.len;
	return b.p;
}

/* ---- the listener and the wait ------------------------------------------ */

/* A unix socket path that nobody listens on any more may be replaced. */
static int
unix_path_free(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat sb;
	int fd, rc;

	if (lstat(sun->sun_path, &sb) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(sb.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sun, len);
	close(fd);
	if (rc == 0 || errno != ECONNREFUSED) {
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(sun->sun_path);
}

static int
open_socket(const struct addr *a)
{
	int fd, one = 1, saved;

	if (a->ss.ss_family == AF_UNIX &&
	    unix_path_free((const struct sockaddr_un *)&a->ss, a->len) != 0)
		return -1;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (a->ss.ss_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto err;
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto err;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 64) != 0)
		goto err;
	return fd;
err:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
stats_listen(struct stats *st, const struct addr *a)
{
	int fd;

	if (a->len == 0) {
		if (st != NULL && st->lfd >= 0) {
			log_info("metrics: no longer served on %s", st->laddr.text);
			listener_close(st);
		}
		return 0;
	}
	if (st == NULL) {
		log_error("stats_listen: metrics are unavailable (no shared memory)");
		return -1;
	}
	if (st->lfd >= 0 && addr_equal(&st->laddr, a))
		return 0;
	if ((fd = open_socket(a)) < 0) {
		log_error("stats_listen: cannot listen on %s: %s%s%s", a->text, strerror(errno),
		    st->lfd >= 0 ? "; metrics stay on " : "", st->lfd >= 0 ? st->laddr.text : "");
		return -1;
	}
	listener_close(st);
	st->lfd = fd;
	st->laddr = *a;
	log_info("metrics on %s", a->text);
	return 0;
}

/* Drop the connection once the answer is out. */
static void
client_done(struct stats *st, size_t i)
{
	char sink[1024];

	(void)shutdown(st->cl[i].fd, SHUT_WR);
	/* what the client sent beyond the head, read so close() sends no reset */
	for (int k = 0; k < 8 && recv(st->cl[i].fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; k++)
		;
	client_close(st, i);
}

static void
client_write(struct stats *st, size_t i)
{
	struct client *c = &st->cl[i];

	while (c->off < c->olen) {
		ssize_t w = send(c->fd, c->out + c->off, c->olen - c->off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;	/* on POLLOUT */
		if (w <= 0) {
			client_close(st, i);
			return;
		}
		c->off += (size_t)w;
	}
	client_done(st, i);
}

static void
client_read(struct stats *st, size_t i)
{
	struct client *c = &st->cl[i];
	ssize_t r = recv(c->fd, c->req + c->rlen, sizeof(c->req) - c->rlen, MSG_DONTWAIT);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		client_close(st, i);
		return;
	}
	c->rlen += (size_t)r;
	if (memmem(c->req, c->rlen, "\r\n\r\n", 4) == NULL &&
	    memmem(c->req, c->rlen, "\n\n", 2) == NULL && c->rlen < sizeof(c->req))
		return;	/* the head is not all there yet */
	if ((c->out = stats_http_answer(st, c->req, c->rlen, &c->olen)) == NULL) {
		client_close(st, i);
		return;
	}
	c->off = 0;
	c->deadline = now_ms() + STATS_WRITE_TIMEOUT_MS;
	client_write(st, i);
}

static void
accept_clients(struct stats *st)
{
	while (st->ncl < STATS_MAX_CLIENTS) {
		int fd = accept4(st->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;

		if (fd < 0)
			return;	/* EAGAIN, or an error the next poll reports again */
		c = &st->cl[st->ncl++];
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->deadline = now_ms() + STATS_READ_TIMEOUT_MS;
	}
}

int
stats_wait(struct stats *st, const sigset_t *set, int timeout_ms)
{
	static const struct timespec zero = { 0, 0 };
	long long deadline = now_ms() + timeout_ms;

	if (st == NULL || (st->lfd < 0 && st->ncl == 0)) {
		struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
		return sigtimedwait(set, NULL, &ts);
	}
	if (st->sfd < 0)
		st->sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	for (;;) {
		struct pollfd pf[2 + STATS_MAX_CLIENTS];
		int np = 0, lidx = -1, sig, r;
		long long now, wait;

		if ((sig = sigtimedwait(set, NULL, &zero)) > 0)
			return sig;
		now = now_ms();
		if (now >= deadline)
			return -1;
		for (size_t i = st->ncl; i-- > 0;)
			if (now >= st->cl[i].deadline)
				client_close(st, i);	/* too slow: dropped */
		wait = deadline - now;
		for (size_t i = 0; i < st->ncl; i++)
			if (st->cl[i].deadline - now < wait)
				wait = st->cl[i].deadline - now;
		if (st->sfd >= 0)
			pf[np++] = (struct pollfd){ st->sfd, POLLIN, 0 };
		else if (wait > 20)
			wait = 20;	/* no signalfd: look for signals often */
		if (st->lfd >= 0 && st->ncl < STATS_MAX_CLIENTS) {
			lidx = np;
			pf[np++] = (struct pollfd){ st->lfd, POLLIN, 0 };
		}
		for (size_t i = 0; i < st->ncl; i++)
			pf[np++] = (struct pollfd){ st->cl[i].fd,
			    st->cl[i].out ? POLLOUT : POLLIN, 0 };
		r = poll(pf, (nfds_t)np, (int)wait);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			continue;
		/* clients first (by index, from the end: closing one moves the
		 * last into its place), then new ones */
		for (size_t i = 0; i < st->ncl; i++)
			st->cl[i].revents = pf[np - (int)st->ncl + (int)i].revents;
		for (size_t i = st->ncl; i-- > 0;) {
			if (st->cl[i].revents == 0)
				continue;
			if (st->cl[i].out != NULL)
				client_write(st, i);
			else
				client_read(st, i);
		}
		if (lidx >= 0 && pf[lidx].revents)
			accept_clients(st);
	}
}
