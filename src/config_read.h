/*
 * config_read.h: reading configuration files into raw sections (the line
 * reader in front of inih). For config.c, the unit tests and fuzz targets.
 *
 * A file is read whole and handed to inih line by line through our own
 * reader, which counts lines, refuses what Debian's libinih would silently
 * split, cut or join, and tracks sections itself. Every key = value line
 * ends up as a raw string with its FILE:LINE in the raw section it was
 * written in; nothing is parsed yet (config.c does that once every file is
 * read). Problems go to the reader's struct diag as "FILE:LINE: message".
 */
#ifndef TLSFRONT_CONFIG_READ_H
#define TLSFRONT_CONFIG_READ_H

#include <stddef.h>

#include "config.h"
#include "config_keys.h"
#include "diag.h"

enum sec_kind { SEC_NONE, SEC_GLOBAL, SEC_DEFAULTS, SEC_HOST, SEC_IGNORED, SEC_ACME };

/* A line of a key that may repeat (T_NAMES) after its first, or any line of
 * a map key (T_ALPN_MAP: backend.PROTO, sub = "PROTO"). */
struct raw_line {
	int key;		/* its row in config_keys */
	char *sub;		/* map keys: the part after the dot; else NULL */
	char *val;
	struct loc at;
	int bad;		/* config.c: a [defaults] value already reported */
};

struct raw_section {
	enum sec_kind kind;
	char *label;		/* [host LABEL] */
	struct loc at;		/* its header */
	char *val[K_TABLE];	/* the first line of each key; NULL: not given */
	struct loc loc[K_TABLE];
	struct raw_line *more;	/* further lines of repeatable keys, map lines; in order */
	size_t n_more;
	int bad;		/* an error was reported inside this section */
};

struct config_reader {
	struct config *c;		/* interns file names (c->files) */
	struct diag *d;
	/* the file being read */
	const char *file;		/* interned */
	int is_main;
	int lineno;
	const char *buf;
	size_t pos, len;
	/* what was read; `ignored` takes the keys of a refused section header */
	struct raw_section global, defaults, acme, ignored;
	struct raw_section *hosts;
	size_t n_hosts, cap_hosts;
	struct raw_section *cur;
};

/* Start reading into an empty reader; c and d stay the caller's. */
void config_reader_init(struct config_reader *r, struct config *c, struct diag *d);

/*
 * Read the file at path (the main file if is_main: only it may hold
 * [global], [defaults] and [acme]), adding its sections to r. A file that cannot be
 * read is reported at `ref` (the hosts line that named it). Returns 0, or -1
 * if it could not be read.
 */
int config_read_file(struct config_reader *r, const char *path, int is_main, struct loc ref);

/* The same for len bytes at buf (not NUL-terminated), as if read from the
 * file `file`. */
void config_read_buf(struct config_reader *r, const char *file, int is_main, const char *buf,
    size_t len);

/* Free the raw sections (not c or d). */
void config_reader_free(struct config_reader *r);

/* The copy of name in c->files (added if new), which struct loc points to;
 * "?" out of memory. */
const char *config_intern_file(struct config *c, const char *name);

#endif
