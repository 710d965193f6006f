/*
 * clientauth.h: client-certificate identities and allow-lists (mTLS).
 *
 * An allow-list entry names one identity a client certificate may bear:
 *   CN:alice   DNS:svc.internal   URI:spiffe://corp/payments   EMAIL:ops@example.com
 * CN and URI compare exactly; DNS and EMAIL compare case-insensitively
 * against the certificate's subjectAltName entries of that type. No
 * wildcard matching: an entry means exactly that identity.
 *
 * Pure apart from reading X509 fields; knows nothing of connections.
 */
#ifndef TLSFRONT_CLIENTAUTH_H
#define TLSFRONT_CLIENTAUTH_H

#include <stddef.h>

#include <openssl/x509.h>

enum clientauth_kind {
	CLIENTAUTH_CN, CLIENTAUTH_DNS, CLIENTAUTH_URI, CLIENTAUTH_EMAIL
};

struct clientauth_entry {
	enum clientauth_kind kind;
	char *value;		/* owned */
};

/* A client_allow list; { NULL, 0 } is an empty one. Owns its entries. (The
 * tag keeps its old name: config.h and config_value.c declare it.) */
struct allow_list {
	struct clientauth_entry *entries;
	size_t n_entries;
};

/* Parse "KIND:value" and append it to l (which keeps a copy of the value).
 * Returns 0, or -1 with err set and l unchanged. */
int clientauth_allow_add(struct allow_list *l, const char *tok, char *err,
    size_t errlen);

/* Does cert bear at least one identity of l? An empty or NULL list allows
 * all; a list and no certificate allows none. Reads both only. */
int clientauth_allow_match(const struct allow_list *l, X509 *cert);

/* Free the entries; the struct may be reused. clientauth_allow_free(NULL)
 * is a no-op. */
void clientauth_allow_free(struct allow_list *l);

/* The subject CN and the first subjectAltName (as "DNS:x", "URI:x", ...) of
 * cert, printable ASCII ('?' for other bytes), into the caller's buffers,
 * cut to fit; "" where absent or cert is NULL. Never fails. */
void clientauth_identity(X509 *cert, char *cn, size_t cnlen, char *san, size_t sanlen);

#endif
