/*
 * test_stats.c: the counters: summing worker blocks (and folding dead
 * workers' blocks into the retired totals, across generations), hosts
 * beyond the capacity, blocks running out, the connect latency histogram.
 * What the sums look like as text is test_metrics.c.
 *
 * Workers are simulated in this one process: stats_worker_init() points the
 * data-path counters at a block, as a forked worker would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

/* A generation of n hosts with these labels (only what stats.c reads). */
struct fake_gen {
	struct host_config hc[8];
	struct host h[8];
	struct generation g;
};

static void
fake_gen(struct fake_gen *f, const char *const *labels, size_t n)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f->hc[i].label = (char *)labels[i];
		f->h[i].cfg = &f->hc[i];
		f->h[i].not_after = 1700000000 + (time_t)i;
	}
	f->g.hosts = f->h;
	f->g.n_hosts = n;
}

/* A worker of the generation in use, with a made-up pid: its block is
 * where stats_add() and stats_host_add() count from now on. */
static int
worker(struct stats *st, pid_t pid)
{
	int b = stats_block_take(st);

	assert_true(b >= 0);
	stats_block_bind(st, b, pid);
	stats_worker_init(st, b);
	return b;
}

static void
sum(const struct stats *st, struct stats_sum *s)
{
	assert_int_equal(stats_sum(st, s), 0);
	for (size_t i = 1; i < s->n_hosts; i++)
		assert_true(strcmp(s->hosts[i - 1].label, s->hosts[i].label) < 0);
}

/* The sum of host label; fails the test if there is none. */
static const struct stats_host_sum *
host(const struct stats_sum *s, const char *label)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i].label, label) == 0)
			return &s->hosts[i];
	fail_msg("no host %s in the sum", label);
	return NULL;
}

static int
has_host(const struct stats_sum *s, const char *label)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i].label, label) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* summing blocks                                                       */

static void
test_sum_and_retire(void **state)
{
	static const char *const gen1[] = { "a", "b" };
	static const char *const gen2[] = { "b", "c" };	/* b moved to index 0 */
	struct fake_gen f1, f2;
	struct stats *st = stats_new(4, 8);
	struct stats_sum s;

	(void)state;
	assert_non_null(st);
	fake_gen(&f1, gen1, 2);
	assert_int_equal(stats_generation(st, &f1.g), 0);

	worker(st, 101);
	stats_add(SG_ACCEPTED, 3);
	stats_add(SG_ENDED, 1);
	stats_host_add(0, SH_OPENED, 2);
	stats_host_add(0, SH_CLOSED, 1);
	stats_host_add(0, SH_BYTES_IN, 100);
	stats_host_add(0, SH_BYTES_OUT, 1000);
	stats_host_add(1, SH_OPENED, 1);
	stats_host_add(1, SH_RESUMED, 1);
	stats_add(SG_HS_FAIL + HS_UNKNOWN_SNI, 1);
	worker(st, 102);
	stats_add(SG_ACCEPTED, 5);
	stats_host_add(0, SH_OPENED, 5);
	stats_host_add(0, SH_BYTES_IN, 10);
	stats_add(SG_HS_FAIL + HS_UNKNOWN_SNI, 2);
	stats_add(SG_REFUSED, 4);

	sum(st, &s);
	assert_int_equal(s.n_hosts, 2);
	assert_int_equal(host(&s, "a")->c[SH_OPENED], 7);
	assert_int_equal(host(&s, "a")->open, 6);
	assert_int_equal(host(&s, "b")->c[SH_OPENED], 1);
	assert_int_equal(host(&s, "b")->c[SH_RESUMED], 1);
	assert_int_equal(host(&s, "a")->c[SH_BYTES_IN], 110);
	assert_int_equal(host(&s, "a")->c[SH_BYTES_OUT], 1000);
	assert_int_equal(s.g[SG_ACCEPTED], 8);
	assert_int_equal(s.active, 7);
	assert_int_equal(s.g[SG_REFUSED], 4);
	assert_int_equal(s.g[SG_HS_FAIL + HS_UNKNOWN_SNI], 3);
	assert_int_equal(s.g[SG_HS_FAIL + HS_OTHER], 0);
	assert_int_equal(s.workers, 2);
	assert_int_equal(s.generation, 1);
	assert_int_equal(s.hosts_served, 2);
	assert_true(host(&s, "b")->in_use);
	assert_int_equal(host(&s, "b")->not_after, 1700000001);
	stats_sum_free(&s);

	/* worker 101 dies: its counters stay in the totals, its open
	 * connections are gone */
	stats_worker_gone(st, 101);
	stats_worker_gone(st, 999);	/* not ours: ignored */
	sum(st, &s);
	assert_int_equal(host(&s, "a")->c[SH_OPENED], 7);
	assert_int_equal(host(&s, "a")->open, 5);
	assert_int_equal(host(&s, "a")->c[SH_BYTES_IN], 110);
	assert_int_equal(s.g[SG_ACCEPTED], 8);
	assert_int_equal(s.active, 5);
	assert_int_equal(s.g[SG_HS_FAIL + HS_UNKNOWN_SNI], 3);
	assert_int_equal(s.workers, 1);
	stats_sum_free(&s);

	/* a reload: b is now host 0; the new worker's block starts at zero
	 * (it is the block 101 had) and counts under the new labels */
	fake_gen(&f2, gen2, 2);
	assert_int_equal(stats_generation(st, &f2.g), 0);
	stats_reload_done(st, 1);
	stats_reload_done(st, 0);
	stats_worker_restart(st);
	worker(st, 103);
	for (int k = 0; k < SG_COUNT; k++)
		assert_int_equal(stats_g[k], 0);
	stats_host_add(0, SH_OPENED, 4);
	stats_host_add(1, SH_OPENED, 1);
	sum(st, &s);
	assert_int_equal(host(&s, "a")->c[SH_OPENED], 7);
	assert_int_equal(host(&s, "b")->c[SH_OPENED], 5);
	assert_int_equal(host(&s, "c")->c[SH_OPENED], 1);
	assert_int_equal(s.generation, 2);
	assert_int_equal(s.reloads_ok, 1);
	assert_int_equal(s.reloads_failed, 1);
	assert_int_equal(s.restarts, 1);
	assert_true(s.last_reload >= s.started);
	/* the certificate is for hosts in use only */
	assert_false(host(&s, "a")->in_use);
	assert_true(host(&s, "b")->in_use);
	assert_int_equal(host(&s, "b")->not_after, 1700000000);
	stats_sum_free(&s);

	/* every worker gone: totals stay, nothing is open */
	stats_worker_gone(st, 102);
	stats_worker_gone(st, 103);
	sum(st, &s);
	assert_int_equal(host(&s, "a")->c[SH_OPENED], 7);
	assert_int_equal(host(&s, "b")->c[SH_OPENED], 5);
	assert_int_equal(host(&s, "c")->c[SH_OPENED], 1);
	assert_int_equal(host(&s, "a")->open, 0);
	assert_int_equal(s.active, 0);
	assert_int_equal(s.g[SG_ACCEPTED], 8);
	assert_int_equal(s.workers, 0);
	stats_sum_free(&s);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* More workers than blocks: the extra one counts nowhere, nothing breaks;
 * a failed fork gives its block back. */
static void
test_blocks_run_out(void **state)
{
	static const char *const labels[] = { "a" };
	struct fake_gen f;
	struct stats *st = stats_new(2, 4);
	struct stats_sum s;
	int b1, b2, b3;

	(void)state;
	fake_gen(&f, labels, 1);
	stats_generation(st, &f.g);
	b1 = stats_block_take(st);
	b2 = stats_block_take(st);
	b3 = stats_block_take(st);
	assert_true(b1 >= 0 && b2 >= 0 && b1 != b2);
	assert_int_equal(b3, -1);
	stats_block_bind(st, b1, 201);
	stats_block_bind(st, b2, -1);	/* fork failed */
	stats_block_bind(st, b3, 202);	/* no block: ignored */
	stats_worker_init(st, b3);
	stats_host_add(0, SH_OPENED, 1);	/* into the private dummy */
	assert_int_equal(stats_block_take(st), b2);
	sum(st, &s);
	assert_int_equal(s.workers, 1);	/* b2 taken again, not yet bound */
	assert_int_equal(host(&s, "a")->c[SH_OPENED], 0);
	stats_sum_free(&s);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* Hosts beyond the capacity of a block are counted as host="_other". */
static void
test_overflow(void **state)
{
	static const char *const labels[] = { "a", "b", "c" };
	struct fake_gen f;
	struct stats *st = stats_new(2, 1);
	struct stats_sum s;

	(void)state;
	fake_gen(&f, labels, 3);
	stats_generation(st, &f.g);
	worker(st, 301);
	stats_host_add(0, SH_OPENED, 1);
	stats_host_add(1, SH_OPENED, 2);
	stats_host_add(2, SH_OPENED, 3);
	sum(st, &s);
	assert_int_equal(host(&s, "a")->c[SH_OPENED], 1);
	assert_int_equal(host(&s, STATS_OTHER_LABEL)->c[SH_OPENED], 5);
	assert_int_equal(host(&s, "b")->c[SH_OPENED], 0);	/* listed: a host in use */
	stats_sum_free(&s);
	stats_worker_gone(st, 301);
	sum(st, &s);
	assert_int_equal(host(&s, STATS_OTHER_LABEL)->c[SH_OPENED], 5);
	stats_sum_free(&s);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* Each connect time lands in the first bucket whose bound it does not
 * exceed, or in +Inf; the sums are in microseconds. */
static void
test_connect_time(void **state)
{
	static const char *const labels[] = { "a", "b" };
	struct fake_gen f;
	struct stats *st = stats_new(1, 4);
	struct stats_sum s;

	(void)state;
	fake_gen(&f, labels, 2);
	stats_generation(st, &f.g);
	worker(st, 401);
	stats_connect_time(0, 400);		/* <= 500 us */
	stats_connect_time(1, 500);		/* <= 500 us: bounds are inclusive */
	stats_connect_time(1, 3000);		/* <= 5 ms */
	stats_connect_time(1, 20000000);	/* beyond 10 s: +Inf only */
	sum(st, &s);
	assert_int_equal(s.g[SG_CONNECT_BUCKET + 0], 2);
	assert_int_equal(s.g[SG_CONNECT_BUCKET + 3], 1);
	assert_int_equal(s.g[SG_CONNECT_BUCKET + STATS_BUCKETS], 1);
	assert_int_equal(s.g[SG_CONNECT_USEC], 20003900);
	assert_int_equal(host(&s, "b")->c[SH_CONNECT_COUNT], 3);
	assert_int_equal(host(&s, "b")->c[SH_CONNECT_USEC], 20003500);
	stats_sum_free(&s);
	stats_worker_gone(st, 401);
	stats_worker_init(NULL, -1);
	stats_free(st);
}

/* Hosts left out by host_errors = skip: counted, not in use. */
static void
test_skipped(void **state)
{
	static const char *const labels[] = { "good", "broken" };
	struct fake_gen f;
	struct stats *st = stats_new(1, 4);
	struct stats_sum s;

	(void)state;
	fake_gen(&f, labels, 2);
	f.h[1].skipped = 1;
	f.g.n_skipped = 1;
	stats_generation(st, &f.g);
	sum(st, &s);
	assert_int_equal(s.hosts_served, 1);
	assert_int_equal(s.hosts_skipped, 1);
	assert_true(host(&s, "good")->in_use);
	assert_false(has_host(&s, "broken"));	/* nothing counted under it yet */
	stats_sum_free(&s);
	stats_free(st);
}

/* Without a mapping everything is a no-op. */
static void
test_null(void **state)
{
	struct stats_sum s;

	(void)state;
	assert_int_equal(stats_block_take(NULL), -1);
	stats_block_bind(NULL, -1, 1);
	stats_worker_init(NULL, -1);
	stats_worker_gone(NULL, 1);
	stats_reload_done(NULL, 1);
	stats_worker_restart(NULL);
	assert_int_equal(stats_generation(NULL, NULL), 0);
	assert_int_equal(stats_sum(NULL, &s), -1);
	stats_sum_free(&s);
	stats_add(SG_ACCEPTED, 1);
	stats_host_add(5, SH_OPENED, 1);
	stats_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sum_and_retire),
		cmocka_unit_test(test_blocks_run_out),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_connect_time),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
