/*
 * test_sni.c: sni_normalize and the name -> value table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

/* Normalise a C string; the result (or "<invalid>") in a static buffer. */
static const char *
norm(const char *in, int wild)
{
	static char out[SNI_NAME_MAX + 1 + 16];
	int n;

	memset(out, 'X', sizeof(out));
	n = sni_normalize(in, strlen(in), wild, out);
	if (n < 0)
		return "<invalid>";
	assert_true(n <= SNI_NAME_MAX);
	assert_int_equal(out[n], '\0');
	assert_int_equal((size_t)n, strlen(out));
	return out;
}

/* A valid name of exactly `total` bytes: labels of 63 'a's joined by dots,
 * the last one shorter. */
static void
make_name(char *buf, size_t total)
{
	memset(buf, 'a', total);
	for (size_t i = 63; i + 1 < total; i += 64)
		buf[i] = '.';
	buf[total] = '\0';
	assert_true(buf[total - 1] != '.');
}

static int v1, v2, v3, v4;	/* distinct addresses used as table values */

/* ------------------------------------------------------------------ */
/* sni_normalize                                                        */

static void
test_norm_lowercase(void **state)
{
	assert_string_equal(norm("ExAmPle.COM", 0), "example.com");
	assert_string_equal(norm("WWW.EXAMPLE.ORG", 1), "www.example.org");
}

static void
test_norm_return_value_is_length(void **state)
{
	char out[SNI_NAME_MAX + 1];

	assert_int_equal(sni_normalize("Example.com", 11, 0, out), 11);
	assert_int_equal(sni_normalize("Example.com.", 12, 0, out), 11);
	assert_int_equal(sni_normalize("*.Example.com", 13, 1, out), 13);
	assert_int_equal(sni_normalize("a", 1, 0, out), 1);
	assert_string_equal(out, "a");
}

static void
test_norm_uses_len_not_nul(void **state)
{
	char out[SNI_NAME_MAX + 1];

	assert_int_equal(sni_normalize("example.comXYZ", 11, 0, out), 11);
	assert_string_equal(out, "example.com");
	assert_int_equal(sni_normalize("example.com.XYZ", 12, 0, out), 11);
	assert_string_equal(out, "example.com");
}

static void
test_norm_one_trailing_dot(void **state)
{
	assert_string_equal(norm("example.com.", 0), "example.com");
	assert_string_equal(norm("Example.COM.", 1), "example.com");
	assert_string_equal(norm("*.example.com.", 1), "*.example.com");
	assert_string_equal(norm("a.", 0), "a");
}

static void
test_norm_two_trailing_dots(void **state)
{
	assert_string_equal(norm("example.com..", 0), "<invalid>");
	assert_string_equal(norm("a..", 0), "<invalid>");
	assert_string_equal(norm("*.example.com..", 1), "<invalid>");
}

static void
test_norm_empty(void **state)
{
	char out[SNI_NAME_MAX + 1];

	assert_int_equal(sni_normalize("", 0, 0, out), -1);
	assert_int_equal(sni_normalize("", 0, 1, out), -1);
	assert_int_equal(sni_normalize("example.com", 0, 0, out), -1);
	assert_string_equal(norm(".", 0), "<invalid>");
	assert_string_equal(norm("..", 0), "<invalid>");
}

static void
test_norm_empty_labels(void **state)
{
	assert_string_equal(norm(".example.com", 0), "<invalid>");
	assert_string_equal(norm("a..b", 0), "<invalid>");
	assert_string_equal(norm("*..b", 1), "<invalid>");
	assert_string_equal(norm(".*.b", 1), "<invalid>");
}

static void
test_norm_embedded_nul(void **state)
{
	char out[SNI_NAME_MAX + 1];

	assert_int_equal(sni_normalize("exa\0mple.com", 12, 0, out), -1);
	assert_int_equal(sni_normalize("example.com\0", 12, 0, out), -1);
	assert_int_equal(sni_normalize("\0", 1, 0, out), -1);
	assert_int_equal(sni_normalize("*.\0example.com", 15, 1, out), -1);
}

static void
test_norm_label_63_ok_64_not(void **state)
{
	char name[128], out[SNI_NAME_MAX + 1];

	memset(name, 'a', 63);
	strcpy(name + 63, ".com");
	assert_int_equal(sni_normalize(name, strlen(name), 0, out), 67);
	memset(name, 'a', 64);
	strcpy(name + 64, ".com");
	assert_int_equal(sni_normalize(name, strlen(name), 0, out), -1);

	/* the last label too */
	strcpy(name, "x.");
	memset(name + 2, 'b', 63);
	name[65] = '\0';
	assert_int_equal(sni_normalize(name, strlen(name), 0, out), 65);
	strcpy(name, "x.");
	memset(name + 2, 'b', 64);
	name[66] = '\0';
	assert_int_equal(sni_normalize(name, strlen(name), 0, out), -1);

	/* after a wildcard */
	strcpy(name, "*.");
	memset(name + 2, 'c', 64);
	name[66] = '\0';
	assert_int_equal(sni_normalize(name, strlen(name), 1, out), -1);
}

static void
test_norm_total_253_ok_254_not(void **state)
{
	char name[300], out[SNI_NAME_MAX + 1];

	make_name(name, 253);
	assert_int_equal(sni_normalize(name, 253, 0, out), 253);
	assert_string_equal(out, name);

	/* 253 plus the one trailing dot we ignore */
	name[253] = '.';
	name[254] = '\0';
	assert_int_equal(sni_normalize(name, 254, 0, out), 253);

	make_name(name, 254);
	assert_int_equal(sni_normalize(name, 254, 0, out), -1);
	make_name(name, 280);
	assert_int_equal(sni_normalize(name, 280, 0, out), -1);

	/* a wildcard counts too */
	name[0] = '*';
	name[1] = '.';
	make_name(name + 2, 251);
	assert_int_equal(sni_normalize(name, 253, 1, out), 253);
	make_name(name + 2, 252);
	assert_int_equal(sni_normalize(name, 254, 1, out), -1);
}

static void
test_norm_good_chars(void **state)
{
	assert_string_equal(norm("x-y_z.0-9.com", 0), "x-y_z.0-9.com");
	assert_string_equal(norm("xn--bcher-kva.example", 0), "xn--bcher-kva.example");
	assert_string_equal(norm("192.0.2.1", 0), "192.0.2.1");
}

static void
test_norm_bad_chars(void **state)
{
	static const char *const bad[] = {
		"exa mple.com", "example.com/", "example.com:443", "user@example.com",
		"ex\tample.com", "b\xc3\xbc" "cher.example", "ex!ample.com", "a.b\\c",
		"[::1]", "example,com", "\x7f" "a.com", "a+b.com",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strcmp(norm(bad[i], 0), "<invalid>") != 0)
			fail_msg("'%s' accepted", bad[i]);
		if (strcmp(norm(bad[i], 1), "<invalid>") != 0)
			fail_msg("'%s' accepted as pattern", bad[i]);
	}
}

static void
test_norm_wildcard_only_when_allowed(void **state)
{
	assert_string_equal(norm("*.Example.com", 1), "*.example.com");
	assert_string_equal(norm("*.example.com", 0), "<invalid>");
	assert_string_equal(norm("*.com", 1), "*.com");
}

static void
test_norm_star_alone(void **state)
{
	assert_string_equal(norm("*", 1), "<invalid>");
	assert_string_equal(norm("*", 0), "<invalid>");
	assert_string_equal(norm("*.", 1), "<invalid>");
	assert_string_equal(norm("*.", 0), "<invalid>");
	assert_string_equal(norm("*..", 1), "<invalid>");
}

static void
test_norm_star_not_leading(void **state)
{
	assert_string_equal(norm("a.*.b", 1), "<invalid>");
	assert_string_equal(norm("a.*.b", 0), "<invalid>");
	assert_string_equal(norm("a.b.*", 1), "<invalid>");
	assert_string_equal(norm("*.*.b", 1), "<invalid>");
	assert_string_equal(norm("**.b", 1), "<invalid>");
	assert_string_equal(norm("*a.b", 1), "<invalid>");
	assert_string_equal(norm("a*.b", 1), "<invalid>");
	assert_string_equal(norm("*b", 1), "<invalid>");
}

/* ------------------------------------------------------------------ */
/* table                                                                */

static struct sni_table *
table_with(const char *const *patterns, void *const *values, size_t n)
{
	struct sni_table *t = sni_table_new();

	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		char p[SNI_NAME_MAX + 1];
		assert_true(sni_normalize(patterns[i], strlen(patterns[i]), 1, p) > 0);
		assert_int_equal(sni_table_add(t, p, values[i], NULL), 0);
	}
	assert_int_equal(sni_table_count(t), n);
	return t;
}

static void *
look(const struct sni_table *t, const char *name)
{
	return sni_table_lookup(t, name, strlen(name));
}

static void
test_table_empty(void **state)
{
	struct sni_table *t = sni_table_new();

	assert_non_null(t);
	assert_int_equal(sni_table_count(t), 0);
	assert_null(look(t, "example.com"));
	assert_null(look(t, "a"));
	sni_table_free(t);
}

static void
test_table_exact_case_insensitive(void **state)
{
	const char *p[] = { "www.example.com" };
	void *v[] = { &v1 };
	struct sni_table *t = table_with(p, v, 1);

	assert_ptr_equal(look(t, "www.example.com"), &v1);
	assert_ptr_equal(look(t, "WWW.Example.COM"), &v1);
	assert_ptr_equal(look(t, "www.example.com."), &v1);
	assert_ptr_equal(look(t, "Www.Example.Com."), &v1);
	assert_null(look(t, "www.example.co"));
	assert_null(look(t, "ww.example.com"));
	assert_null(look(t, "www.example.com.."));
	sni_table_free(t);
}

static void
test_table_lookup_uses_len(void **state)
{
	const char *p[] = { "www.example.com" };
	void *v[] = { &v1 };
	struct sni_table *t = table_with(p, v, 1);

	assert_ptr_equal(sni_table_lookup(t, "www.example.comevil", 15), &v1);
	assert_null(sni_table_lookup(t, "www.example.com", 14));
	sni_table_free(t);
}

static void
test_table_wildcard_one_label(void **state)
{
	const char *p[] = { "*.example.com" };
	void *v[] = { &v1 };
	struct sni_table *t = table_with(p, v, 1);

	assert_ptr_equal(look(t, "a.example.com"), &v1);
	assert_ptr_equal(look(t, "WWW.EXAMPLE.COM."), &v1);
	assert_ptr_equal(look(t, "x-y_z.example.com"), &v1);
	assert_null(look(t, "example.com"));
	assert_null(look(t, "example.com."));
	assert_null(look(t, "a.b.example.com"));
	assert_null(look(t, "aexample.com"));
	assert_null(look(t, "a.example.org"));
	assert_null(look(t, "a.example.com.evil"));
	sni_table_free(t);
}

static void
test_table_wildcard_literal_star_not_matched(void **state)
{
	const char *p[] = { "*.example.com" };
	void *v[] = { &v1 };
	struct sni_table *t = table_with(p, v, 1);

	/* a client sending the pattern itself gets nothing */
	assert_null(look(t, "*.example.com"));
	assert_null(look(t, "*.a.example.com"));
	sni_table_free(t);
}

static void
test_table_wildcard_tld(void **state)
{
	const char *p[] = { "*.com" };
	void *v[] = { &v1 };
	struct sni_table *t = table_with(p, v, 1);

	assert_ptr_equal(look(t, "example.com"), &v1);
	assert_null(look(t, "a.example.com"));
	assert_null(look(t, "com"));
	sni_table_free(t);
}

static void
test_table_single_label(void **state)
{
	const char *p[] = { "localhost", "*.localhost" };
	void *v[] = { &v1, &v2 };
	struct sni_table *t = table_with(p, v, 2);

	assert_ptr_equal(look(t, "LOCALHOST"), &v1);
	assert_ptr_equal(look(t, "a.localhost"), &v2);
	assert_null(look(t, "localhos"));
	sni_table_free(t);
}

static void
test_table_exact_beats_wildcard(void **state)
{
	const char *p1[] = { "*.example.com", "www.example.com" };
	const char *p2[] = { "www.example.com", "*.example.com" };
	void *v1s[] = { &v1, &v2 };
	void *v2s[] = { &v2, &v1 };
	struct sni_table *t;

	/* wildcard added first */
	t = table_with(p1, v1s, 2);
	assert_ptr_equal(look(t, "www.example.com"), &v2);
	assert_ptr_equal(look(t, "WWW.example.com."), &v2);
	assert_ptr_equal(look(t, "mail.example.com"), &v1);
	sni_table_free(t);

	/* exact added first */
	t = table_with(p2, v2s, 2);
	assert_ptr_equal(look(t, "www.example.com"), &v2);
	assert_ptr_equal(look(t, "mail.example.com"), &v1);
	sni_table_free(t);
}

static void
test_table_nested_wildcards(void **state)
{
	const char *p[] = { "*.example.com", "*.b.example.com", "b.example.com" };
	void *v[] = { &v1, &v2, &v3 };
	struct sni_table *t = table_with(p, v, 3);

	assert_ptr_equal(look(t, "a.b.example.com"), &v2);
	assert_ptr_equal(look(t, "b.example.com"), &v3);
	assert_ptr_equal(look(t, "c.example.com"), &v1);
	assert_null(look(t, "a.a.b.example.com"));
	assert_null(look(t, "a.c.example.com"));
	sni_table_free(t);
}

static void
test_table_duplicate_add(void **state)
{
	struct sni_table *t = sni_table_new();
	void *existing = NULL;

	assert_non_null(t);
	assert_int_equal(sni_table_add(t, "www.example.com", &v1, NULL), 0);
	assert_int_equal(sni_table_add(t, "*.example.com", &v2, NULL), 0);
	assert_int_equal(sni_table_count(t), 2);

	assert_int_equal(sni_table_add(t, "www.example.com", &v3, &existing), 1);
	assert_ptr_equal(existing, &v1);
	existing = NULL;
	assert_int_equal(sni_table_add(t, "*.example.com", &v4, &existing), 1);
	assert_ptr_equal(existing, &v2);
	/* existing may be NULL */
	assert_int_equal(sni_table_add(t, "www.example.com", &v3, NULL), 1);

	/* table unchanged */
	assert_int_equal(sni_table_count(t), 2);
	assert_ptr_equal(look(t, "www.example.com"), &v1);
	assert_ptr_equal(look(t, "a.example.com"), &v2);
	sni_table_free(t);
}

static void
test_table_duplicate_add_leaves_existing_untouched(void **state)
{
	struct sni_table *t = sni_table_new();
	void *existing = &v4;

	assert_non_null(t);
	assert_int_equal(sni_table_add(t, "a.example", &v1, &existing), 0);
	assert_ptr_equal(existing, &v4);	/* not written on success */
	sni_table_free(t);
}

static void
test_table_many_entries(void **state)
{
	enum { N = 10000 };
	struct sni_table *t = sni_table_new();
	char name[64];
	int *vals = calloc(2 * N, sizeof(*vals));

	assert_non_null(t);
	assert_non_null(vals);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "host%d.example.com", i);
		assert_int_equal(sni_table_add(t, name, &vals[i], NULL), 0);
		snprintf(name, sizeof(name), "*.sub%d.example.org", i);
		assert_int_equal(sni_table_add(t, name, &vals[N + i], NULL), 0);
	}
	assert_int_equal(sni_table_count(t), 2 * N);
	for (int i = 0; i < N; i++) {
		void *existing = NULL;

		snprintf(name, sizeof(name), "HOST%d.Example.Com.", i);
		assert_ptr_equal(look(t, name), &vals[i]);
		snprintf(name, sizeof(name), "x%d.sub%d.example.org", i, i);
		assert_ptr_equal(look(t, name), &vals[N + i]);
		snprintf(name, sizeof(name), "sub%d.example.org", i);
		assert_null(look(t, name));
		snprintf(name, sizeof(name), "host%d.example.com", i);
		assert_int_equal(sni_table_add(t, name, &v1, &existing), 1);
		assert_ptr_equal(existing, &vals[i]);
	}
	assert_null(look(t, "host10000.example.com"));
	assert_null(look(t, "host-1.example.com"));
	assert_int_equal(sni_table_count(t), 2 * N);
	sni_table_free(t);
	free(vals);
}

static void
test_table_lookup_invalid_names(void **state)
{
	const char *p[] = { "example.com", "*.example.com", "*.com" };
	void *v[] = { &v1, &v2, &v3 };
	struct sni_table *t = table_with(p, v, 3);
	char name[300];

	assert_null(sni_table_lookup(t, "", 0));
	assert_null(look(t, "."));
	assert_null(look(t, "a..example.com"));
	assert_null(look(t, ".example.com"));
	assert_null(look(t, "example.com.."));
	assert_null(look(t, "a b.example.com"));
	assert_null(look(t, "a/b.example.com"));
	assert_null(look(t, "b\xc3\xbc.example.com"));
	memset(name, 'a', 64);
	strcpy(name + 64, ".example.com");
	assert_null(look(t, name));
	make_name(name, 254);
	assert_null(sni_table_lookup(t, name, 254));
	sni_table_free(t);
}

static void
test_table_lookup_embedded_nul(void **state)
{
	const char *p[] = { "example.com", "*.example.com", "*.com" };
	void *v[] = { &v1, &v2, &v3 };
	struct sni_table *t = table_with(p, v, 3);

	assert_null(sni_table_lookup(t, "example.com\0", 12));
	assert_null(sni_table_lookup(t, "example.com\0.evil", 17));
	assert_null(sni_table_lookup(t, "a\0.example.com", 14));
	assert_null(sni_table_lookup(t, "evil\0example.com", 16));
	assert_null(sni_table_lookup(t, "\0example.com", 12));
	sni_table_free(t);
}

static void
test_table_null_safe(void **state)
{
	sni_table_free(NULL);
	assert_int_equal(sni_table_count(NULL), 0);
	assert_null(sni_table_lookup(NULL, "example.com", 11));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_norm_lowercase),
		cmocka_unit_test(test_norm_return_value_is_length),
		cmocka_unit_test(test_norm_uses_len_not_nul),
		cmocka_unit_test(test_norm_one_trailing_dot),
		cmocka_unit_test(test_norm_two_trailing_dots),
		cmocka_unit_test(test_norm_empty),
		cmocka_unit_test(test_norm_empty_labels),
		cmocka_unit_test(test_norm_embedded_nul),
		cmocka_unit_test(test_norm_label_63_ok_64_not),
		cmocka_unit_test(test_norm_total_253_ok_254_not),
		cmocka_unit_test(test_norm_good_chars),
		cmocka_unit_test(test_norm_bad_chars),
		cmocka_unit_test(test_norm_wildcard_only_when_allowed),
		cmocka_unit_test(test_norm_star_alone),
		cmocka_unit_test(test_norm_star_not_leading),
		cmocka_unit_test(test_table_empty),
		cmocka_unit_test(test_table_exact_case_insensitive),
		cmocka_unit_test(test_table_lookup_uses_len),
		cmocka_unit_test(test_table_wildcard_one_label),
		cmocka_unit_test(test_table_wildcard_literal_star_not_matched),
		cmocka_unit_test(test_table_wildcard_tld),
		cmocka_unit_test(test_table_single_label),
		cmocka_unit_test(test_table_exact_beats_wildcard),
		cmocka_unit_test(test_table_nested_wildcards),
		cmocka_unit_test(test_table_duplicate_add),
		cmocka_unit_test(test_table_duplicate_add_leaves_existing_untouched),
		cmocka_unit_test(test_table_many_entries),
		cmocka_unit_test(test_table_lookup_invalid_names),
		cmocka_unit_test(test_table_lookup_embedded_nul),
		cmocka_unit_test(test_table_null_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
