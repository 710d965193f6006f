/*
 * fuzz_value.c: libFuzzer target for the value parsers of
 * src/config_value.c (value_parse, value_map_parse, value_copy, value_free)
 * and their reverse, value_text (src/config_keys.c), with the real key
 * table's types and bounds; and for the unknown-key message
 * (config_key_unknown).
 *
 * Input: one byte choosing a row of the key table (modulo K_TABLE + 1; the
 * extra choice is "a key name"), then the value, up to the first NUL, as a
 * line's value reaches the parser. Host names resolve through
 * resolver_stub.c (only localhost), so nothing leaves the process.
 *
 * Checked, besides ASan/UBSan/LeakSanitizer: a refusal comes with a
 * message; a value parsed is spelt by value_text (only a list may be
 * empty), and that text parses again to the same text (tlsfront -T prints
 * a configuration tlsfront reads back); a copy spells the same; client_allow
 * keeps its text and its parsed list entry for entry. A key name is found
 * in the table or gets a message that names it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clientauth.h"
#include "config_keys.h"
#include "config_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz.h"

/* Where relative paths resolve: an absolute "file" as config.c passes. */
#define FILE_AT "/fuzz/dir/main.ini"

static char *
spell(const struct vspec *s, const void *field, int *n)
{
	char small[64], *buf;

	*n = value_text(s, field, small, sizeof(small));
	CHECK(*n >= -1);
	if (*n < 0)
		return NULL;
	CHECK((buf = malloc((size_t)*n + 1)) != NULL);
	/* a short buffer gets a cut, terminated prefix and the whole length */
	CHECK(strlen(small) == ((size_t)*n < sizeof(small) ? (size_t)*n : sizeof(small) - 1));
	CHECK(value_text(s, field, buf, (size_t)*n + 1) == *n);
	CHECK(strlen(buf) == (size_t)*n);
	return buf;
}

static void
one_value(const struct keydef *kd, const char *val)
{
	union value_any f, again, copy;
	char err[512], *text, *text2;
	int n, n2;

	memset(&f, 0, sizeof(f));
	memset(&again, 0, sizeof(again));
	memset(&copy, 0, sizeof(copy));
	if (kd->v.type == T_ALPN_MAP) {
		struct loc at = { FILE_AT, 1 };
		if (value_map_parse(&f.m, "h2", val, at, err, sizeof(err)) != 0) {
			CHECK(err[0] != '\0' && f.m.n == 0);
			return;
		}
		CHECK(f.m.n == 1 && value_map_get(&f.m, "h2") == &f.m.v[0]);
		CHECK(value_map_get(&f.m, "h3") == NULL && f.m.v[0].pool.n >= 1 &&
		    f.m.v[0].pool.v[0].len > 0);
	} else if (value_parse(&kd->v, val, FILE_AT, &f, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0' && err[0] != ' ');
		value_free(kd->v.type, &f);
		return;
	}
	text = spell(&kd->v, &f, &n);
	if (text == NULL)
		CHECK(kd->v.type == T_NAMES || kd->v.type == T_ALPN || kd->v.type == T_ALLOW ||
		    kd->v.type == T_CIDRS);
	if (kd->v.type == T_ALLOW)
		CHECK(f.av.list == NULL ? f.av.text.n == 0 : f.av.list->n_entries == f.av.text.n);

	/* the text reads back as itself */
	if (text != NULL && kd->v.type != T_ALPN_MAP) {
		if (value_parse(&kd->v, text, FILE_AT, &again, err, sizeof(err)) != 0) {
			fprintf(stderr, "'%s' spelt '%s', which fails: %s\n", val, text, err);
			CHECK(!"the text of a value parses");
		}
		text2 = spell(&kd->v, &again, &n2);
		CHECK(text2 != NULL && strcmp(text, text2) == 0);
		free(text2);
		value_free(kd->v.type, &again);
	}

	/* a copy is the same value */
	CHECK(value_copy(kd->v.type, &copy, &f) == 0);
	text2 = spell(&kd->v, &copy, &n2);
	CHECK(n2 == n && (text == NULL || strcmp(text, text2) == 0));
	free(text2);
	value_free(kd->v.type, &copy);
	value_free(kd->v.type, &f);
	free(text);
}

static void
one_key(const char *name)
{
	char msg[600];

	for (int scope = S_GLOBAL; scope <= S_HOST; scope <<= 1) {
		if (config_key_find(name, scope) >= 0)
			continue;
		config_key_unknown(name, scope, msg, sizeof(msg));
		CHECK(strncmp(msg, "unknown key '", 13) == 0 || strncmp(msg, "key '", 5) == 0);
		if (strlen(name) < 100)
			CHECK(strstr(msg, name) != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *val;
	size_t k;

	if (size < 1 || size > 4096)
		return 0;
	k = data[0] % (K_TABLE + 1);
	CHECK((val = malloc(size)) != NULL);
	memcpy(val, data + 1, size - 1);
	val[size - 1] = '\0';
	if (k == K_TABLE)
		one_key(val);
	else
		one_value(&config_keys[k], val);
	free(val);
	return 0;
}
