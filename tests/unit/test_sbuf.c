/*
 * test_sbuf.c: sb_printf, the string that grows as it is printed to.
 *
 * realloc is wrapped at link time (-Wl,--wrap=realloc, for sbuf.c and this
 * file only): wrap_fail_after makes a later call fail, to see the oom flag
 * set and what was printed before kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

/* ------------------------------------------------------------------ */
/* realloc, failing on demand                                          */

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int wrap_fail_after = -1;	/* < 0: never; else calls to let through */
static int wrap_calls;

void *
__wrap_realloc(void *p, size_t n)
{
	wrap_calls++;
	if (wrap_fail_after == 0)
		return NULL;
	if (wrap_fail_after > 0)
		wrap_fail_after--;
	return __real_realloc(p, n);
}

static int
setup(void **state)
{
	wrap_fail_after = -1;
	wrap_calls = 0;
	return 0;
}

/* A string of n copies of c, malloc'd. */
static char *
run_of(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ------------------------------------------------------------------ */
/* tests                                                                */

static void
test_first_print(void **state)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	sb_printf(&b, "%s=%d", "workers", 4);
	assert_non_null(b.p);
	assert_string_equal(b.p, "workers=4");
	assert_int_equal(b.len, 9);
	assert_true(b.cap > b.len);
	assert_int_equal(b.oom, 0);
	free(b.p);
}

static void
test_appends(void **state)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	sb_printf(&b, "a");
	sb_printf(&b, "%s", "");
	sb_printf(&b, "%c%c", 'b', 'c');
	sb_printf(&b, " %zu\n", (size_t)42);
	assert_string_equal(b.p, "abc 42\n");
	assert_int_equal(b.len, strlen(b.p));
	free(b.p);
}

/* Texts longer than the first allocation, and lengths at each edge of the
 * room left: every byte arrives, the string stays terminated. */
static void
test_grows(void **state)
{
	static const size_t lens[] = { 1, 1022, 1023, 1024, 1025, 2047, 2048, 5000, 70000 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct sbuf b = { NULL, 0, 0, 0 };
		char *x = run_of('x', lens[i]);

		sb_printf(&b, "<");
		sb_printf(&b, "%s", x);
		sb_printf(&b, ">");
		assert_int_equal(b.oom, 0);
		assert_int_equal(b.len, lens[i] + 2);
		assert_int_equal(strlen(b.p), b.len);
		assert_true(b.cap > b.len);
		assert_int_equal(b.p[0], '<');
		assert_memory_equal(b.p + 1, x, lens[i]);
		assert_int_equal(b.p[b.len - 1], '>');
		free(x);
		free(b.p);
	}
}

/* Many small prints: the total is the sum, in order. */
static void
test_many(void **state)
{
	struct sbuf b = { NULL, 0, 0, 0 };
	char want[16];

	for (int i = 0; i < 10000; i++)
		sb_printf(&b, "%05d,", i);
	assert_int_equal(b.oom, 0);
	assert_int_equal(b.len, 10000 * 6);
	for (int i = 0; i < 10000; i += 997) {
		snprintf(want, sizeof(want), "%05d,", i);
		assert_memory_equal(b.p + (size_t)i * 6, want, 6);
	}
	free(b.p);
}

/* The first allocation fails: oom, nothing stored, and nothing later. */
static void
test_oom_first(void **state)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	wrap_fail_after = 0;
	sb_printf(&b, "hello");
	assert_int_equal(b.oom, 1);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	wrap_fail_after = -1;
	wrap_calls = 0;
	sb_printf(&b, "again");
	assert_int_equal(wrap_calls, 0);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

/* Growing fails: oom, len stays, the bytes printed before stay, and from
 * then on nothing is added, not even what would fit. (Not asserted: that
 * p[len] is still '\0'. The failed attempt has already written what fitted
 * of the new text after it; the callers, metrics.c and dump.c, throw p
 * away when oom is set.) */
static void
test_oom_keeps_text(void **state)
{
	struct sbuf b = { NULL, 0, 0, 0 };
	char *big = run_of('y', 4000);

	sb_printf(&b, "kept");
	assert_int_equal(wrap_calls, 1);
	wrap_fail_after = 0;
	sb_printf(&b, "%s", big);
	assert_int_equal(b.oom, 1);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "kept", 4);
	wrap_fail_after = -1;
	sb_printf(&b, "!");	/* would fit without growing */
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "kept", 4);
	free(big);
	free(b.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_first_print, setup),
		cmocka_unit_test_setup(test_appends, setup),
		cmocka_unit_test_setup(test_grows, setup),
		cmocka_unit_test_setup(test_many, setup),
		cmocka_unit_test_setup(test_oom_first, setup),
		cmocka_unit_test_setup(test_oom_keeps_text, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
