/*
 * test_diag.c: the list of errors and warnings of one run (diag.c): the
 * "FILE:LINE: " forms, the error count, demoting errors to warnings,
 * diag_has, growing, and freeing for reuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static void
test_error_forms(void **state)
{
	struct diag d = { 0 };

	diag_error(&d, "main.ini", 12, "bad value '%s'", "x");
	diag_error(&d, "main.ini", 0, "cannot open: %s", "No such file");
	diag_error(&d, "main.ini", -1, "negative line");
	diag_error_at(&d, (struct loc){ "hosts.d/a.ini", 3 }, "host '%s': no cert", "a");
	assert_int_equal(d.n, 4);
	assert_int_equal(d.n_errors, 4);
	assert_string_equal(d.msgs[0], "main.ini:12: bad value 'x'");
	assert_string_equal(d.msgs[1], "main.ini: cannot open: No such file");
	assert_string_equal(d.msgs[2], "main.ini: negative line");
	assert_string_equal(d.msgs[3], "hosts.d/a.ini:3: host 'a': no cert");
	for (size_t i = 0; i < d.n; i++)
		assert_int_equal(d.is_error[i], 1);
	diag_free(&d);
}

static void
test_warnings_are_not_errors(void **state)
{
	struct diag d = { 0 };

	diag_warn_at(&d, (struct loc){ "main.ini", 7 }, "%d unused", 2);
	diag_warn_at(&d, (struct loc){ "main.ini", 0 }, "whole file");
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_errors, 0);
	assert_string_equal(d.msgs[0], "main.ini:7: warning: 2 unused");
	assert_string_equal(d.msgs[1], "main.ini: warning: whole file");
	assert_int_equal(d.is_error[0], 0);
	assert_int_equal(d.is_error[1], 0);
	diag_error(&d, "main.ini", 9, "then an error");
	assert_int_equal(d.n_errors, 1);
	assert_int_equal(d.is_error[2], 1);
	diag_free(&d);
}

/* Only the errors from `from` on become warnings, each with the reason;
 * earlier errors and warnings stay as they were. */
static void
test_demote(void **state)
{
	struct diag d = { 0 };

	diag_error(&d, "a.ini", 1, "before");
	diag_warn_at(&d, (struct loc){ "a.ini", 2 }, "old warning");
	diag_error(&d, "b.ini", 3, "cert missing");
	diag_warn_at(&d, (struct loc){ "b.ini", 4 }, "new warning");
	diag_error(&d, "b.ini", 5, "key missing");
	assert_int_equal(d.n_errors, 3);

	diag_demote(&d, 2, "host 'b' left out: ");
	assert_int_equal(d.n, 5);
	assert_int_equal(d.n_errors, 1);
	assert_string_equal(d.msgs[0], "a.ini:1: before");
	assert_int_equal(d.is_error[0], 1);
	assert_string_equal(d.msgs[1], "a.ini:2: warning: old warning");
	assert_string_equal(d.msgs[2], "warning: host 'b' left out: b.ini:3: cert missing");
	assert_int_equal(d.is_error[2], 0);
	assert_string_equal(d.msgs[3], "b.ini:4: warning: new warning");
	assert_string_equal(d.msgs[4], "warning: host 'b' left out: b.ini:5: key missing");
	assert_int_equal(d.is_error[4], 0);

	/* again: nothing left to demote there */
	diag_demote(&d, 2, "twice: ");
	assert_int_equal(d.n_errors, 1);
	assert_null(strstr(d.msgs[2], "twice"));
	/* past the end: nothing */
	diag_demote(&d, 5, "none: ");
	assert_int_equal(d.n_errors, 1);
	diag_free(&d);

	/* an error just before `from` stays one */
	diag_error(&d, "c.ini", 1, "stays");
	diag_error(&d, "c.ini", 2, "goes");
	diag_demote(&d, 1, "why: ");
	assert_int_equal(d.n_errors, 1);
	assert_string_equal(d.msgs[0], "c.ini:1: stays");
	assert_int_equal(d.is_error[0], 1);
	assert_string_equal(d.msgs[1], "warning: why: c.ini:2: goes");
	diag_free(&d);
}

static void
test_has(void **state)
{
	struct diag d = { 0 };

	assert_int_equal(diag_has(&d, ""), 0);
	diag_error(&d, "x.ini", 4, "unknown key 'lissen'");
	diag_warn_at(&d, (struct loc){ "y.ini", 8 }, "expires soon");
	assert_int_equal(diag_has(&d, "x.ini:4: unknown key"), 1);
	assert_int_equal(diag_has(&d, "y.ini:8: warning: expires"), 1);
	assert_int_equal(diag_has(&d, "x.ini:5"), 0);
	assert_int_equal(diag_has(&d, "listen"), 0);
	diag_free(&d);
}

/* Far more messages than the first allocation: all kept, in order. */
static void
test_many(void **state)
{
	struct diag d = { 0 };
	char want[64];

	for (int i = 1; i <= 1000; i++) {
		if (i % 3 == 0)
			diag_warn_at(&d, (struct loc){ "f.ini", i }, "w%d", i);
		else
			diag_error(&d, "f.ini", i, "e%d", i);
	}
	assert_int_equal(d.n, 1000);
	assert_int_equal(d.n_errors, 1000 - 333);
	for (int i = 1; i <= 1000; i++) {
		if (i % 3 == 0)
			snprintf(want, sizeof(want), "f.ini:%d: warning: w%d", i, i);
		else
			snprintf(want, sizeof(want), "f.ini:%d: e%d", i, i);
		assert_string_equal(d.msgs[i - 1], want);
		assert_int_equal(d.is_error[i - 1], i % 3 != 0);
	}
	diag_free(&d);
}

/* A message longer than the line buffer is cut, not lost, prefix intact. */
static void
test_long_message(void **state)
{
	struct diag d = { 0 };
	char *big = malloc(5001);

	assert_non_null(big);
	memset(big, 'z', 5000);
	big[5000] = '\0';
	diag_error(&d, "long.ini", 2, "%s", big);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.n_errors, 1);
	assert_true(strncmp(d.msgs[0], "long.ini:2: zzz", 15) == 0);
	assert_true(strlen(d.msgs[0]) > 1000);
	assert_true(strlen(d.msgs[0]) < 5000);
	free(big);
	diag_free(&d);
}

static void
test_free_and_reuse(void **state)
{
	struct diag d = { 0 };

	diag_error(&d, "a.ini", 1, "one");
	diag_warn_at(&d, (struct loc){ "a.ini", 2 }, "two");
	diag_free(&d);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.n_errors, 0);
	assert_null(d.msgs);
	assert_null(d.is_error);
	diag_error(&d, "b.ini", 1, "again");
	assert_int_equal(d.n, 1);
	assert_string_equal(d.msgs[0], "b.ini:1: again");
	diag_free(&d);
	diag_free(&d);	/* freeing twice is fine */
	diag_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_forms),
		cmocka_unit_test(test_warnings_are_not_errors),
		cmocka_unit_test(test_demote),
		cmocka_unit_test(test_has),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_long_message),
		cmocka_unit_test(test_free_and_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
