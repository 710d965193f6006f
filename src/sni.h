/*
 * sni.h: server-name normalisation and the name -> host table of a listener.
 *
 * Pure code (no I/O, no OpenSSL), unit-tested and meant for fuzzing.
 * Names compare case-insensitively and one trailing dot is ignored. A
 * pattern is either an exact name or "*.suffix"; a wildcard covers exactly
 * one label, so "*.example.com" matches "a.example.com" but neither
 * "example.com" nor "a.b.example.com". An exact name beats a wildcard, and
 * since a wildcard covers one label, the only wildcard that can match a name
 * is the one for its parent: the most specific match is found by two probes.
 */
#ifndef TLSFRONT_SNI_H
#define TLSFRONT_SNI_H

#include <stddef.h>

#define SNI_NAME_MAX 253

/*
 * Normalise a DNS name received from a peer or written in a config:
 * lowercase it, drop one trailing dot, check it is a syntactically valid host
 * name (labels of 1..63 of [a-z0-9-_], total <= 253). If allow_wildcard, a
 * leading "*." label is accepted. Writes a NUL-terminated result to
 * out[SNI_NAME_MAX + 1] and returns its length, or -1 if the name is invalid
 * (embedded NUL, empty label, bad character, too long, IP literal is fine
 * syntactically but never matches a configured name unless configured).
 */
int sni_normalize(const char *in, size_t len, int allow_wildcard, char *out);

struct sni_table;

/* New empty table, or NULL on allocation failure. */
struct sni_table *sni_table_new(void);

/*
 * Add a normalised pattern (from sni_normalize) mapping to value (not owned).
 * Returns 0 on success, 1 if the pattern is already present (*existing is set
 * to its value and the table is unchanged), -1 on allocation failure.
 */
int sni_table_add(struct sni_table *t, const char *pattern, void *value, void **existing);

/* Look up a raw name from a ClientHello (not yet normalised). Returns the
 * value of the exact match, else of the one-label wildcard, else NULL. */
void *sni_table_lookup(const struct sni_table *t, const char *name, size_t len);

size_t sni_table_count(const struct sni_table *t);

/* Free the table (not the values). sni_table_free(NULL) is a no-op. */
void sni_table_free(struct sni_table *t);

#endif
