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

enum allow_kind { ALLOW_CN, ALLOW_DNS, ALLOW_URI, ALLOW_EMAIL };

struct allow_entry {
	enum allow_kind kind;
	char *value;		/* owned */
};

struct allow_list {
	struct allow_entry *v;
	size_t n;
};

/* Parse "KIND:value" and append it to l. Returns 0, or -1 with err set. */
int allow_list_add(struct allow_list *l, const char *tok, char *err, size_t errlen);

/* Does cert bear at least one identity of l? An empty list allows all. */
int allow_list_match(const struct allow_list *l, X509 *cert);

/* Free the entries; the struct may be reused. allow_list_free(NULL) is a no-op. */
void allow_list_free(struct allow_list *l);

/* The subject CN and the first subjectAltName (as "DNS:x", "URI:x", ...) of
 * cert, for logs and the PROXY header; "" where absent. Never fails. */
void cert_identity(X509 *cert, char *cn, size_t cnlen, char *san, size_t sanlen);

#endif
