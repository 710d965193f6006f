/*
 * acme_jws.h: the cryptography of the ACME client (OpenSSL EVP and X509,
 * jansson for the JSON it signs): keys, JWK and its RFC 7638 thumbprint,
 * flattened JWS (RFC 7515, ES256/ES384/RS256), key authorizations, the CSR
 * and the RFC 8737 challenge certificate. No I/O, no network: pure, unit-
 * tested (test_acme_jws).
 *
 * Ownership: every char * returned is malloc'ed, NUL-terminated and the
 * caller's to free(); every EVP_PKEY * returned is the caller's to
 * EVP_PKEY_free(). On failure NULL (or -1) and nothing is left allocated.
 */
#ifndef TLSFRONT_ACME_JWS_H
#define TLSFRONT_ACME_JWS_H

#include <stddef.h>

#include <openssl/evp.h>

/* base64url of n bytes, no padding (RFC 7515 section 2). NULL on OOM. */
char *acme_b64url(const unsigned char *p, size_t n);

/* A new key of type (enum acme_key_type); NULL on failure or unknown type. */
EVP_PKEY *acme_key_new(int type);

/* The private key as PKCS#8 PEM; NULL on failure. */
char *acme_key_pem(EVP_PKEY *key);

/* The first private key in a PEM text of len bytes (other blocks, e.g.
 * certificates, are skipped); NULL if there is none or it cannot be read. */
EVP_PKEY *acme_key_from_pem(const char *pem, size_t len);

/*
 * The public JWK of key with only the members RFC 7638 requires, in
 * lexicographic order, without whitespace: the thumbprint input, and also
 * a valid "jwk" header value. EC P-256/P-384 and RSA; NULL otherwise.
 */
char *acme_jwk(EVP_PKEY *key);

/* base64url(SHA-256(acme_jwk(key))), the RFC 7638 thumbprint. */
char *acme_jwk_thumbprint(EVP_PKEY *key);

/* The JWS "alg" of key: "ES256", "ES384" or "RS256"; NULL if unsupported.
 * A static string. */
const char *acme_jws_alg(EVP_PKEY *key);

/*
 * The flattened JSON JWS of payload, signed with key: protected header
 * {alg, nonce, url} plus "kid": kid when kid is not NULL, else "jwk".
 * payload NULL is POST-as-GET (an empty payload, not "{}"). ECDSA
 * signatures are the raw r||s of RFC 7518, not OpenSSL's DER.
 */
char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload);

/* token "." thumbprint(account key): the key authorization (RFC 8555 8.1).
 * NULL if token is not base64url (a hostile server could send anything). */
char *acme_key_authz(const char *token, EVP_PKEY *account);

/*
 * The DER CSR for names[0..n-1] (n >= 1), all of them as SAN dNSNames (and
 * the first as CN when it fits in 64 characters), signed with key. *der
 * is the caller's (OPENSSL_free). Returns 0, or -1.
 */
int acme_csr_der(EVP_PKEY *key, const char *const *names, size_t n, unsigned char **der,
    size_t *len);

/*
 * The RFC 8737 answer for name: a new P-256 key and a self-signed
 * certificate with SAN dNSName = name and the critical acmeIdentifier
 * extension (1.3.6.1.5.5.7.1.31) = OCTET STRING(SHA-256(key_authz)),
 * valid from a day ago for a week. Returned as one PEM text, the
 * certificate then the key (the challenges/NAME.pem layout of acme.h).
 */
char *acme_challenge_pem(const char *name, const char *key_authz);

/* The RFC 9773 certID: base64url(aki) "." base64url(serial), serial being
 * the DER content bytes of the certificate's serial number. NULL if aki or
 * serial is empty. */
char *acme_ari_id(const unsigned char *aki, size_t aki_len, const unsigned char *serial,
    size_t serial_len);

#endif
