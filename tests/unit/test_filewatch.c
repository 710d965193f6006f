/*
 * test_filewatch.c: filewatch.c on files of a temporary directory: a
 * change seen once, a file that appears, the set replaced without losing a
 * change not yet reported, a snapshot (a reload) swallowing changes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filewatch.h"
#include "unit_util.h"

static void
test_changes(void **state)
{
	char dir[64], a[256], b[256], c[256];
	const char *first;
	struct filewatch *w = filewatch_new();

	(void)state;
	assert_non_null(w);
	assert_int_equal(unit_tmpdir(dir, sizeof(dir), "test_filewatch"), 0);
	snprintf(a, sizeof(a), "%s/a.pem", dir);
	snprintf(b, sizeof(b), "%s/b.pem", dir);
	snprintf(c, sizeof(c), "%s/c.pem", dir);	/* not there yet */
	unit_put(dir, "a.pem", "one");
	unit_put(dir, "b.pem", "one");
	const char *paths[] = { a, b, a, c, NULL };
	assert_int_equal(filewatch_set(w, paths, 5), 0);
	assert_int_equal(filewatch_check(w, &first), 0);
	assert_null(first);

	/* a new size (same second: the size or ctime tells) */
	unit_put(dir, "a.pem", "two!");
	assert_int_equal(filewatch_check(w, &first), 1);
	assert_string_equal(first, a);
	assert_int_equal(filewatch_check(w, &first), 0);	/* seen once */

	/* a file that appears, and a rename over another */
	unit_put(dir, "c.pem", "new");
	unit_put(dir, "tmp", "renamed");
	assert_int_equal(rename(unit_path(dir, "tmp"), b), 0);
	assert_int_equal(filewatch_check(w, &first), 2);
	assert_string_equal(first, b);	/* sorted */

	/* a change not yet reported survives a new set with the path */
	assert_int_equal(unlink(c), 0);
	const char *fewer[] = { c };
	assert_int_equal(filewatch_set(w, fewer, 1), 0);
	assert_int_equal(filewatch_check(w, &first), 1);
	assert_string_equal(first, c);

	/* a snapshot (before a reload) takes the files as they are */
	unit_put(dir, "c.pem", "back");
	filewatch_snapshot(w);
	assert_int_equal(filewatch_check(w, &first), 0);

	filewatch_free(w);
	filewatch_free(NULL);
	(void)unit_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
