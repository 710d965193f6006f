/*
 * config_keys.h: the key table (config.c) and reading it back
 * (config_keys.c). For the config module's files, its unit tests and fuzz
 * targets; the rest of tlsfront uses config.h.
 */
#ifndef TLSFRONT_CONFIG_KEYS_H
#define TLSFRONT_CONFIG_KEYS_H

#include <stddef.h>

#include "config.h"
#include "config_value.h"

/* Which sections a key may be written in (a bit set). */
enum scope { S_GLOBAL = 1, S_DEFAULTS = 2, S_HOST = 4, S_ACME = 8 };
#define S_ANY (S_GLOBAL | S_DEFAULTS | S_HOST | S_ACME)

/*
 * Rows of the table past the public keys: keys that are not one value each
 * (so neither struct host_config's loc[] nor -T's loop over enum cfg_key
 * has them). backend.PROTO is a map: one line per PROTO.
 */
enum { K_BACKEND_PROTO = K_COUNT, K_TABLE };

struct keydef {
	const char *name;	/* T_ALPN_MAP: lines are "NAME.KEY = value" */
	int scope;		/* enum scope bits */
	size_t off;		/* into struct global_config ([global], [acme]) or
				 * struct host_config */
	struct vspec v;
	const char *def;	/* built-in default, NULL: none */
};

extern const struct keydef config_keys[K_TABLE];

/*
 * The row of the key called `name` in a section of `scope`, or -1. A map
 * row's lines are "NAME.SUB": name matches when it starts with the row's
 * name and a dot (SUB, possibly empty, is the caller's to check).
 */
int config_key_find(const char *name, int scope);

/*
 * The message for `name`, which config_key_find did not find in `scope`,
 * into msg (len bytes, cut if short): where a known key belongs, or the
 * near key a typo probably meant ("unknown key 'bakend' (did you mean
 * 'backend'?)"), preferring the keys of this scope. Pure.
 */
void config_key_unknown(const char *name, int scope, char *msg, size_t len);

/*
 * Spell *field, of type s, as the configuration would (lists
 * blank-separated, durations in their largest exact unit, booleans
 * yes/no) into buf (len bytes, NUL-terminated, cut if short). Returns the
 * length of the whole text (as snprintf), or -1 when the field holds no
 * value (an empty list, no string, no address). Pure; the reverse of
 * value_parse.
 */
int value_text(const struct vspec *s, const void *field, char *buf, size_t len);

#endif
