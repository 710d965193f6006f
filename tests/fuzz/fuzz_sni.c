/*
 * fuzz_sni.c: libFuzzer target for the server-name code of src/sni.c
 * (sni_normalize, sni_table_add, sni_table_lookup), checked against a slow
 * reference written here from the rules in sni.h, not from sni.c:
 *
 *  - a name is labels of 1..63 bytes of [a-z0-9_-] joined by '.', compared
 *    case-insensitively (ASCII only), one trailing '.' ignored, at most 253
 *    bytes; a pattern may also be "*." followed by such a name;
 *  - a lookup returns the value of the pattern equal to the name, else that
 *    of a "*.suffix" pattern where the name is one label, a '.', and suffix,
 *    else nothing.
 *
 * Input: lines separated by '\n' (any other byte, NUL included, is part of
 * a line). The first line is the name looked up; the others are patterns,
 * added in order with the value "line number". Besides the first line, each
 * pattern is looked up as written, upper-cased, with a trailing dot, and
 * with its '*' replaced by a label. Any disagreement aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz.h"

#define MAX_PATTERNS 64

struct pattern {
	char norm[SNI_NAME_MAX + 1];	/* the reference's normal form */
	size_t value;			/* 1-based line number */
};

static char
ref_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
ref_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * The reference normal form of in[0..len): 1 and the form in out, or 0 if
 * the name is not valid. Written label by label, the slow way.
 */
static int
ref_normalize(const char *in, size_t len, int allow_wildcard, char *out)
{
	char buf[SNI_NAME_MAX + 2];
	size_t start = 0;
	int first = 1;

	if (len > 0 && in[len - 1] == '.')
		len--;				/* one trailing dot */
	if (len == 0 || len > SNI_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		buf[i] = ref_lower(in[i]);
	buf[len] = '\0';
	/* split on '.', check each label */
	for (size_t i = 0; i <= len; i++) {
		if (i < len && buf[i] != '.')
			continue;
		size_t n = i - start;
		if (n == 0 || n > 63)
			return 0;
		if (first && allow_wildcard && n == 1 && buf[start] == '*') {
			if (i == len)
				return 0;	/* "*" alone names nothing */
		} else {
			for (size_t j = start; j < i; j++)
				if (!ref_label_char(buf[j]))
					return 0;
		}
		first = 0;
		start = i + 1;
	}
	memcpy(out, buf, len + 1);
	return 1;
}

/* Does the normal name match pattern p (also normal)? */
static int
ref_wild_match(const char *name, const char *p)
{
	size_t nl = strlen(name), pl = strlen(p);

	if (p[0] != '*' || p[1] != '.')
		return 0;
	/* name = LABEL + p[1..]: the suffix with its dot, and a non-empty label
	 * without a dot before it */
	if (nl < pl)
		return 0;
	if (strcmp(name + nl - (pl - 1), p + 1) != 0)
		return 0;
	for (size_t i = 0; i < nl - (pl - 1); i++)
		if (name[i] == '.')
			return 0;
	return nl - (pl - 1) > 0;
}

/* The reference lookup: 0 for no match, else the value. */
static size_t
ref_lookup(const struct pattern *pats, size_t n, const char *name, size_t len)
{
	char norm[SNI_NAME_MAX + 2];

	if (!ref_normalize(name, len, 0, norm))
		return 0;
	for (size_t i = 0; i < n; i++)		/* exact names first */
		if (strcmp(pats[i].norm, norm) == 0)
			return pats[i].value;
	for (size_t i = 0; i < n; i++)
		if (ref_wild_match(norm, pats[i].norm))
			return pats[i].value;
	return 0;
}

static void
check_lookup(const struct sni_table *t, const struct pattern *pats, size_t n,
    const char *name, size_t len)
{
	void *got = sni_table_lookup(t, name, len);
	size_t want = ref_lookup(pats, n, name, len);

	if ((size_t)(uintptr_t)got != want) {
		fprintf(stderr, "lookup of '%.*s' (%zu bytes): got line %zu, want line %zu\n",
		    (int)len, name, len, (size_t)(uintptr_t)got, want);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pattern pats[MAX_PATTERNS];
	const char *in = (const char *)data, *line, *nl;
	const char *query = NULL;
	size_t query_len = 0, n = 0, pos = 0, lineno = 0;
	struct sni_table *t;

	if (size > 16384)
		return 0;
	t = sni_table_new();
	CHECK(t != NULL);
	while (pos <= size) {
		size_t len;
		char got[SNI_NAME_MAX + 1], want[SNI_NAME_MAX + 2];
		int r, ok;

		line = in + pos;
		nl = memchr(line, '\n', size - pos);
		len = nl ? (size_t)(nl - line) : size - pos;
		pos += len + 1;
		lineno++;
		if (lineno == 1) {
			query = line;
			query_len = len;
			continue;
		}
		/* sni_normalize agrees with the reference, with and without '*' */
		for (int wild = 0; wild <= 1; wild++) {
			memset(got, 0x55, sizeof(got));
			r = sni_normalize(line, len, wild, got);
			ok = ref_normalize(line, len, wild, want);
			CHECK((r >= 0) == ok);
			if (ok) {
				CHECK((size_t)r == strlen(want));
				CHECK(strcmp(got, want) == 0);
				/* a normal form is its own normal form */
				CHECK(sni_normalize(got, (size_t)r, wild, want) == r);
				CHECK(strcmp(got, want) == 0);
			}
		}
		if (n == MAX_PATTERNS || sni_normalize(line, len, 1, got) < 0)
			continue;
		void *existing = NULL;
		r = sni_table_add(t, got, (void *)(uintptr_t)lineno, &existing);
		CHECK(r == 0 || r == 1);
		if (r == 1) {
			/* a duplicate: the first one stays */
			size_t i;
			for (i = 0; i < n && strcmp(pats[i].norm, got) != 0; i++)
				;
			CHECK(i < n && (size_t)(uintptr_t)existing == pats[i].value);
		} else {
			for (size_t i = 0; i < n; i++)
				CHECK(strcmp(pats[i].norm, got) != 0);
			memcpy(pats[n].norm, got, strlen(got) + 1);
			pats[n].value = lineno;
			n++;
		}
		CHECK(sni_table_count(t) == n);
	}

	if (query != NULL)
		check_lookup(t, pats, n, query, query_len);
	for (size_t i = 0; i < n; i++) {
		char name[SNI_NAME_MAX + 8];
		size_t len = strlen(pats[i].norm);

		memcpy(name, pats[i].norm, len);
		check_lookup(t, pats, n, name, len);
		name[len] = '.';
		check_lookup(t, pats, n, name, len + 1);
		for (size_t j = 0; j < len; j++)
			if (name[j] >= 'a' && name[j] <= 'z')
				name[j] = (char)(name[j] - 'a' + 'A');
		check_lookup(t, pats, n, name, len);
		if (pats[i].norm[0] == '*') {
			/* a label in place of the '*', and two labels */
			name[0] = 'x';
			check_lookup(t, pats, n, name, len);
			memmove(name + 2, name, len);
			memcpy(name, "y.", 2);
			check_lookup(t, pats, n, name, len + 2);
		}
	}
	check_lookup(t, pats, n, "", 0);
	sni_table_free(t);
	return 0;
}
