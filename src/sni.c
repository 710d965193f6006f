/* sni.c: see sni.h. An open-addressing hash table of normalised patterns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

struct sni_entry {
	char *key;	/* NULL = empty slot */
	void *value;
};

struct sni_table {
	struct sni_entry *slots;
	size_t cap;	/* power of two */
	size_t count;
};

int
sni_normalize(const char *in, size_t len, int allow_wildcard, char *out)
{
	size_t i, label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > SNI_NAME_MAX)
		return -1;
	i = 0;
	if (allow_wildcard && len >= 2 && in[0] == '*' && in[1] == '.') {
		out[0] = '*';
		out[1] = '.';
		i = 2;
		if (len == 2)
			return -1;
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)c;
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return (int)len;
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct sni_entry *
find_slot(struct sni_entry *slots, size_t cap, const char *key)
{
	size_t i = (size_t)hash_str(key) & (cap - 1);

	while (slots[i].key != NULL && strcmp(slots[i].key, key) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

struct sni_table *
sni_table_new(void)
{
	struct sni_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->cap = 16;
	if ((t->slots = calloc(t->cap, sizeof(*t->slots))) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

static int
grow(struct sni_table *t)
{
	size_t cap = t->cap * 2;
	struct sni_entry *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].key != NULL)
			*find_slot(slots, cap, t->slots[i].key) = t->slots[i];
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

int
sni_table_add(struct sni_table *t, const char *pattern, void *value, void **existing)
{
	struct sni_entry *e;

	if ((t->count + 1) * 2 > t->cap && grow(t) != 0)
		return -1;
	e = find_slot(t->slots, t->cap, pattern);
	if (e->key != NULL) {
		if (existing != NULL)
			*existing = e->value;
		return 1;
	}
	if ((e->key = strdup(pattern)) == NULL)
		return -1;
	e->value = value;
	t->count++;
	return 0;
}

void *
sni_table_lookup(const struct sni_table *t, const char *name, size_t len)
{
	char norm[SNI_NAME_MAX + 1], wild[SNI_NAME_MAX + 2];
	struct sni_entry *e;
	const char *dot;
	int n;

	if (t == NULL || t->count == 0)
		return NULL;
	n = sni_normalize(name, len, 0, norm);
	if (n < 0)
		return NULL;
	e = find_slot(t->slots, t->cap, norm);
	if (e->key != NULL)
		return e->value;
	dot = strchr(norm, '.');
	if (dot == NULL)
		return NULL;	/* a single label has no parent to wildcard */
	wild[0] = '*';
	memcpy(wild + 1, dot, strlen(dot) + 1);
	e = find_slot(t->slots, t->cap, wild);
	return e->key != NULL ? e->value : NULL;
}

size_t
sni_table_count(const struct sni_table *t)
{
	return t ? t->count : 0;
}

void
sni_table_free(struct sni_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].key);
	free(t->slots);
	free(t);
}
