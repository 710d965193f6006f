/*
 * tls_facts.h: what a finished TLS handshake was, in plain C types.
 *
 * The TLS side fills one (tls_facts_get, tls.h); whoever describes the
 * handshake to a backend reads it without knowing OpenSSL (proxy_tls.c turns
 * it into PROXY v2 TLVs). No OpenSSL header here on purpose.
 */
#ifndef TLSFRONT_TLS_FACTS_H
#define TLSFRONT_TLS_FACTS_H

#include <stddef.h>

#define TLS_FACTS_CN_MAX	256	/* bytes of a client CN in UTF-8 */
#define TLS_FACTS_ALG_MAX	63	/* bytes of a key algorithm's text */

/*
 * Who owns what: alpn, sni, version, cipher and sig_alg are borrowed, valid
 * while the connection's SSL and its struct tls_info live; key_alg and
 * client_cn are the struct's own; client_cert_data is owned by the struct
 * and freed by tls_facts_free(). NULL, "" or 0 means the handshake had no
 * such fact.
 */
struct tls_facts {
	const unsigned char *alpn;	/* negotiated protocol, not NUL-terminated */
	size_t alpn_len;
	const char *sni;		/* the name the client sent, as the access log has it */
	const char *version;		/* "TLSv1.3" */
	const char *cipher;		/* "TLS_AES_128_GCM_SHA256" */
	const char *sig_alg;		/* our certificate's signature algorithm */
	char key_alg[TLS_FACTS_ALG_MAX + 1];	/* our key: "RSA2048", "EC256", else its
						 * type ("ED25519"); "" unknown */
	int client_cert;		/* the session holds a client certificate */
	int client_cert_now;		/* ... sent on this connection (no resumption) */
	int client_verified;		/* ... and it verified */
	char client_cn[TLS_FACTS_CN_MAX + 1];	/* its subject CN in UTF-8, "" none or
						 * unusable (too long, a NUL in it) */
	unsigned char *client_cert_data;	/* it, encoded as asked (DER or PEM) */
	size_t client_cert_len;
};

#endif
