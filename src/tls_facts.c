/*
 * tls_facts.c: what a finished handshake was (tls.h tls_facts_get), read
 * from the SSL into plain C types for those who must not know OpenSSL.
 * Called once per connection that sends a PROXY v2 header, after the
 * handshake; it allocates only for a client certificate asked for.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_int.h"

/* The subject CN of cert in UTF-8 (the PROXY spec asks for UTF-8; the
 * access log gets ASCII from clientauth_identity), or "" when there is none
 * or it does not fit or holds a NUL. */
static void
cn_utf8(X509 *cert, char *out, size_t len)
{
	X509_NAME *subj = X509_get_subject_name(cert);
	int j = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int n = j < 0 ? -1 : ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, j)));

	out[0] = '\0';
	if (n > 0 && (size_t)n < len && memchr(utf8, '\0', (size_t)n) == NULL) {
		memcpy(out, utf8, (size_t)n);
		out[n] = '\0';
	}
	OPENSSL_free(utf8);
}

/* "RSA2048", "EC256"; other types by name alone ("ED25519"). */
static void
key_alg_text(EVP_PKEY *pk, char *out, size_t len)
{
	const char *type = EVP_PKEY_get0_type_name(pk);
	int id = EVP_PKEY_get_base_id(pk);

	if (id == EVP_PKEY_RSA || id == EVP_PKEY_EC)
		snprintf(out, len, "%s%d", id == EVP_PKEY_RSA ? "RSA" : "EC",
		    EVP_PKEY_get_bits(pk));
	else
		snprintf(out, len, "%s", type ? type : "");
}

/* cert as PEM text in *out (OPENSSL_malloc'd). Returns its length, 0 on failure. */
static size_t
pem_of(X509 *cert, unsigned char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n = 0;
	size_t len = 0;

	if (b != NULL && PEM_write_bio_X509(b, cert) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (*out = OPENSSL_malloc((size_t)n)) != NULL) {
		memcpy(*out, data, (size_t)n);
		len = (size_t)n;
	}
	BIO_free(b);
	return len;
}

void
tls_facts_get(SSL *ssl, enum tls_cert_form cert_form, struct tls_facts *f)
{
	const struct tls_info *info = tls_info_of(ssl);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	X509 *own = SSL_get_certificate(ssl);
	EVP_PKEY *pk = own != NULL ? X509_get0_pubkey(own) : NULL;
	unsigned alpn_len = 0;

	memset(f, 0, sizeof(*f));
	SSL_get0_alpn_selected(ssl, &f->alpn, &alpn_len);
	f->alpn_len = alpn_len;
	if (f->alpn_len == 0)
		f->alpn = NULL;
	f->sni = info != NULL ? info->sni : NULL;
	f->version = SSL_get_version(ssl);
	f->cipher = SSL_get_cipher_name(ssl);
	if (own != NULL)
		f->sig_alg = OBJ_nid2sn(X509_get_signature_nid(own));	/* static text */
	if (pk != NULL)
		key_alg_text(pk, f->key_alg, sizeof(f->key_alg));
	if (peer != NULL) {
		f->client_cert = 1;
		f->client_cert_now = !SSL_session_reused(ssl);
		f->client_verified = SSL_get_verify_result(ssl) == X509_V_OK;
		cn_utf8(peer, f->client_cn, sizeof(f->client_cn));
		if (cert_form == TLS_CERT_DER) {
			int n = i2d_X509(peer, &f->client_cert_data);	/* allocates */
			f->client_cert_len = n > 0 ? (size_t)n : 0;
		} else if (cert_form == TLS_CERT_PEM) {
			f->client_cert_len = pem_of(peer, &f->client_cert_data);
		}
	}
	ERR_clear_error();
}

void
tls_facts_free(struct tls_facts *f)
{
	if (f == NULL)
		return;
	OPENSSL_free(f->client_cert_data);
	f->client_cert_data = NULL;
	f->client_cert_len = 0;
}
