/*
 * config_value.h: one configuration value, parsed and spelt (config.c's
 * helpers; not for the rest of tlsfront).
 *
 * A value is text from a key = value line; its type says what C value it
 * becomes (the field the key table's row points to). Spelling a value back
 * is config_keys.c's (value_text, for tlsfront -T). These functions are
 * pure: they report a problem only as the returned error text, never to a
 * struct diag, and they touch no global state. Only T_ADDR, T_ADDRS and
 * T_POOL may resolve a host name (addr_parse, addr_parse_all: once per
 * value, for config.c parses each value once and copies it where it is
 * inherited).
 */
#ifndef TLSFRONT_CONFIG_VALUE_H
#define TLSFRONT_CONFIG_VALUE_H

#include <stddef.h>

#include "config.h"

/* The C type of each value type, the field's type in struct global_config
 * or struct host_config. */
enum vtype {
	T_ADDRS,	/* struct addr_list: listeners, TCP only, none twice */
	T_PATH,		/* char *: absolute, relative ones against their file */
	T_GLOB,		/* char *: as T_PATH */
	T_ADDR,		/* struct addr */
	T_NAMES,	/* struct str_list: normalised host names, none twice */
	T_ALPN,		/* struct str_list: ALPN protocol names, none twice */
	T_BOOL,		/* int: 0 or 1 */
	T_PROTOCOLS,	/* struct proto_range */
	T_STRING,	/* char *: an OpenSSL list, blanks and commas made ':' */
	T_DURATION,	/* unsigned: milliseconds */
	T_WORKERS,	/* int: 1..256, or VALUE_WORKERS_AUTO */
	T_ENUM,		/* int: the index of the name in vspec.names */
	T_INT,		/* int */
	T_ALLOW,	/* struct allow_value */
	T_CIDRS,	/* struct cidr_list */
	T_ALPN_MAP,	/* struct alpn_map: one entry per backend.PROTO line */
	T_URL,		/* char *: one token "scheme:rest" with vspec.names[0]'s scheme */
	T_SECONDS,	/* unsigned long long: seconds; s, m, h, d units (long spans) */
	T_POOL		/* struct addr_list: backend members (TCP or unix:), none
			 * twice; a host name is one member per address */
};

/* Room for a value of any type above, for code that parses a value of a key
 * it does not know at compile time (the value tests and fuzzer). Kept beside
 * the enum so that a new type's C type is added here too. */
union value_any {
	struct addr_list al;
	struct cidr_list cl;
	struct str_list sl;
	struct allow_value av;
	struct alpn_map m;
	struct addr a;
	struct proto_range r;
	char *s;
	unsigned u;
	unsigned long long ull;
	int i;
};

/* A value type with its bounds: all that parsing one value needs. */
struct vspec {
	enum vtype type;
	unsigned long long min, max;	/* T_DURATION (ms), T_SECONDS (s), T_INT */
	const char *const *names;	/* T_ENUM: the values, in enum order, NULL-ended;
					 * T_URL: { scheme with its ':', NULL } */
	int hex;			/* T_INT: spelt in hex */
};

/* "workers = auto" before config.c resolves it: never a valid number, nor
 * the 0 of a field that failed to parse. */
#define VALUE_WORKERS_AUTO (-1)

/* The most members a pool (T_POOL) may have: conn.c keeps the members a
 * connection tried as bits of a 64-bit mask. */
#define VALUE_POOL_MAX 64

/*
 * Parse val, written in file `file` (relative paths resolve against its
 * directory), into *field, a zeroed field of s->type. Returns 0; or -1 with
 * a message (without the key's name) in err, and *field in no defined
 * state but safe to value_free. A T_ALPN_MAP value is one line: see
 * value_map_parse. The caller owns what *field then holds.
 */
int value_parse(const struct vspec *s, const char *val, const char *file, void *field,
    char *err, size_t errlen);

/* Free what a field of type t owns (lists, strings) and empty it; a field
 * that owns nothing (numbers, an address) is left as it is. */
void value_free(enum vtype t, void *field);

/*
 * Copy the value *src into *dst, a zeroed field of the same type t: a deep
 * copy, which the caller owns. Returns 0, or -1 out of memory (*dst then
 * safe to value_free).
 */
int value_copy(enum vtype t, void *dst, const void *src);

/*
 * backend.PROTO = val: parse val as a pool (T_POOL) and append { proto, address,
 * at } to m. Returns 0, or -1 with a message in err (m unchanged). The
 * strings are copied; m owns its entries.
 */
int value_map_parse(struct alpn_map *m, const char *proto, const char *val, struct loc at,
    char *err, size_t errlen);

/* Append a copy of e to m. Returns 0, or -1 out of memory (m unchanged). */
int value_map_put(struct alpn_map *m, const struct alpn_backend *e);

/* m's entry for proto, or NULL. */
const struct alpn_backend *value_map_get(const struct alpn_map *m, const char *proto);

/* How many workers "auto" means with ncpus processors online (sysconf's
 * answer, which may be -1): one per processor, 1 to 256. */
int value_workers_auto(long ncpus);

#endif
