/*
 * test_pool.c: choosing a pool member (roundrobin, leastconn, first, the
 * members a connection already tried) and the health transitions (down at
 * the threshold, skipped while down, one trial claimed at a time, doubling
 * down periods with their cap, up again on success), the shared slot a
 * member keeps across pools made again (a reload), and a forked process
 * seeing the same state (the workers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "pool.h"

static struct addr addrs[4];

static void
make_pool(struct pool *p, const char *label, size_t n, int balance)
{
	char err[128], text[32];

	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "127.0.0.1:%zu", 9000 + i);
		assert_int_equal(addr_parse(text, &addrs[i], err, sizeof(err)), 0);
	}
	/* threshold 3, down 100 ms (16 x: 1.6 s), connect_timeout 1 s */
	assert_int_equal(pool_init(p, label, addrs, n, balance, 3, 100, 1000), 0);
}

static int
pick(const struct pool *p, uint64_t tried)
{
	int trial;
	return pool_pick(p, tried, &trial);
}

static void
test_roundrobin(void **state)
{
	struct pool p;
	unsigned got[3] = { 0, 0, 0 };

	(void)state;
	make_pool(&p, "rr", 3, BALANCE_ROUNDROBIN);
	for (int i = 0; i < 300; i++)
		got[pick(&p, 0)]++;
	assert_int_equal(got[0], 100);
	assert_int_equal(got[1], 100);
	assert_int_equal(got[2], 100);
	/* a retry never goes back to a member tried; all tried: -1 */
	int a = pick(&p, 0);
	int b = pick(&p, (uint64_t)1 << a);
	assert_int_not_equal(a, b);
	assert_int_equal(pick(&p, 7), -1);
	pool_free(&p);
}

static void
test_first_and_leastconn(void **state)
{
	struct pool p, l;

	(void)state;
	make_pool(&p, "first", 3, BALANCE_FIRST);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pick(&p, 0), 0);
	assert_int_equal(pick(&p, 1), 1);	/* the first failed: the second */
	assert_int_equal(pick(&p, 3), 2);
	pool_free(&p);

	make_pool(&l, "least", 2, BALANCE_LEASTCONN);
	pool_acquire(&l, 0);
	pool_acquire(&l, 0);
	pool_acquire(&l, 1);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pick(&l, 0), 1);
	pool_acquire(&l, 1);
	pool_acquire(&l, 1);
	assert_int_equal(pick(&l, 0), 0);
	pool_release(&l, 1);
	pool_release(&l, 1);
	pool_release(&l, 1);
	pool_release(&l, 0);
	pool_release(&l, 0);
	/* all even: they take turns */
	int a = pick(&l, 0), b = pick(&l, 0);
	assert_int_not_equal(a, b);
	pool_free(&l);
}

static void
test_one_member(void **state)
{
	struct pool p;
	int trial = 5;

	(void)state;
	make_pool(&p, "one", 1, BALANCE_ROUNDROBIN);
	assert_int_equal(pool_pick(&p, 0, &trial), 0);
	assert_int_equal(trial, 0);
	assert_int_equal(pick(&p, 1), -1);
	/* down or not, it is the one to try */
	for (int i = 0; i < 3; i++)
		pool_fail(&p, 0, 0, "test");
	assert_int_equal(atomic_load(&p.m[0].st->up), 0);
	assert_int_equal(pick(&p, 0), 0);
	pool_ok(&p, 0, 100, 1);
	assert_int_equal(atomic_load(&p.m[0].st->up), 1);
	pool_free(&p);
}

static void
test_down_and_trial(void **state)
{
	struct pool p;
	struct member_state *st;
	int trial;

	(void)state;
	make_pool(&p, "health", 2, BALANCE_FIRST);
	st = p.m[0].st;
	pool_fail(&p, 0, 0, "test");
	pool_fail(&p, 0, 0, "test");
	assert_int_equal(atomic_load(&st->up), 1);	/* below the threshold */
	pool_ok(&p, 0, 10, 1);				/* a success resets the count */
	pool_fail(&p, 0, 0, "test");
	pool_fail(&p, 0, 0, "test");
	assert_int_equal(atomic_load(&st->up), 1);
	pool_fail(&p, 0, 0, "test");
	assert_int_equal(atomic_load(&st->up), 0);
	assert_int_equal(atomic_load(&st->down_ms), 100);
	assert_int_equal(atomic_load(&st->connect_failures), 5);
	/* down: skipped, the second member serves */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pool_pick(&p, 0, &trial), 1);
		assert_int_equal(trial, 0);
	}
	/* its time passed: one trial, claimed once */
	usleep(120 * 1000);
	assert_int_equal(pool_pick(&p, 0, &trial), 0);
	assert_int_equal(trial, 1);
	assert_int_equal(pool_pick(&p, 0, &trial), 1);
	assert_int_equal(trial, 0);
	/* the trial failed: twice as long, and no trial before that */
	pool_fail(&p, 0, 1, "test");
	assert_int_equal(atomic_load(&st->down_ms), 200);
	assert_int_equal(atomic_load(&st->up), 0);
	assert_int_equal(pool_pick(&p, 0, &trial), 1);
	/* doubling stops at 16 x */
	for (int i = 0; i < 8; i++)
		pool_fail(&p, 0, 1, "test");
	assert_int_equal(atomic_load(&st->down_ms), 100 * POOL_DOWN_MAX_FACTOR);
	/* every member tried or down and not due: the down one anyway */
	assert_int_equal(pool_pick(&p, 2, &trial), 0);
	assert_int_equal(trial, 0);
	/* success (a trial, a check): up at once, the period back to the start */
	pool_ok(&p, 0, 10, 0);
	assert_int_equal(atomic_load(&st->up), 1);
	assert_int_equal(atomic_load(&st->connect_count), 1);	/* a check's not counted */
	assert_int_equal(pool_pick(&p, 0, &trial), 0);
	pool_fail(&p, 0, 0, "test");
	pool_fail(&p, 0, 0, "test");
	pool_fail(&p, 0, 0, "test");
	assert_int_equal(atomic_load(&st->down_ms), 100);
	pool_free(&p);
}

/* A reload makes the pools again: members that stay keep their slot,
 * keyed by host and address; another host's same address is another slot. */
static void
test_slot_kept(void **state)
{
	struct pool a, b, other;

	(void)state;
	make_pool(&a, "keep", 2, BALANCE_ROUNDROBIN);
	for (int i = 0; i < 3; i++)
		pool_fail(&a, 1, 0, "test");
	make_pool(&b, "keep", 3, BALANCE_ROUNDROBIN);
	assert_ptr_equal(a.m[0].st, b.m[0].st);
	assert_ptr_equal(a.m[1].st, b.m[1].st);
	assert_int_equal(atomic_load(&b.m[1].st->up), 0);
	assert_int_equal(atomic_load(&b.m[2].st->up), 1);
	make_pool(&other, "other", 2, BALANCE_ROUNDROBIN);
	assert_ptr_not_equal(other.m[1].st, a.m[1].st);
	pool_free(&a);
	pool_free(&b);
	pool_free(&other);
}

/* The region is shared with processes forked after it was mapped: a
 * member marked down by a child is down for the parent. */
static void
test_shared_with_fork(void **state)
{
	struct pool p;
	pid_t pid;
	int status;

	(void)state;
	make_pool(&p, "fork", 2, BALANCE_FIRST);
	if ((pid = fork()) == 0) {
		for (int i = 0; i < 3; i++)
			pool_fail(&p, 0, 0, "child");
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(atomic_load(&p.m[0].st->up), 0);
	assert_int_equal(pick(&p, 0), 1);
	pool_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundrobin),
		cmocka_unit_test(test_first_and_leastconn),
		cmocka_unit_test(test_one_member),
		cmocka_unit_test(test_down_and_trial),
		cmocka_unit_test(test_slot_kept),
		cmocka_unit_test(test_shared_with_fork),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
