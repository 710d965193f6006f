/*
 * tls_acme.c: the TLS-ALPN-01 challenge (RFC 8737) answered in the
 * ClientHello callback (see tls_int.h).
 *
 * The ACME child writes state_dir/challenges/NAME.pem (the self-signed
 * certificate with the acmeIdentifier extension, then its key) for as long
 * as an authorization of NAME is pending (acme.h). A worker reads that file
 * when a validator's ClientHello arrives: no reload, no message between
 * processes, and every instance sharing state_dir answers. Validations are
 * rare (one connection per name and order, from each of the CA's
 * vantage points), so the file is read each time rather than cached.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "acme.h"
#include "tls_int.h"

/* The protocol name, as ALPN's wire format spells it (length first). */
static const unsigned char acme_alpn[] = "\x0a" "acme-tls/1";
#define ACME_ALPN_LEN (sizeof(acme_alpn) - 1)

/* A challenge file is a certificate and a key: a few KB. */
#define CHALLENGE_FILE_MAX (64 * 1024)

/* Does the wire-format ALPN list in[0..inlen) hold acme-tls/1? */
static int
list_has_acme(const unsigned char *in, size_t inlen)
{
	for (size_t i = 0; i < inlen; i += 1 + (size_t)in[i])
		if (i + ACME_ALPN_LEN <= inlen && memcmp(in + i, acme_alpn, ACME_ALPN_LEN) == 0)
			return 1;
	return 0;
}

int
tls_acme_offered(SSL *ssl)
{
	const unsigned char *ext;
	size_t len;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
	    &ext, &len) != 1 || len < 2 || (((size_t)ext[0] << 8) | ext[1]) != len - 2)
		return 0;
	return list_has_acme(ext + 2, len - 2);
}

/*
 * The SNI as a file name: lower case, only what a DNS name holds (the name
 * comes from anybody on the network and becomes part of a path). Returns
 * 0, or -1 for a name no challenge can be for.
 */
static int
challenge_name(const unsigned char *name, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen || name[0] == '.' || name[0] == '-')
		return -1;
	for (size_t i = 0; i < n; i++) {
		int ch = tolower(name[i]);
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '.'))
			return -1;
		out[i] = (char)ch;
	}
	out[n] = '\0';
	return strstr(out, "..") != NULL ? -1 : 0;
}

/*
 * The certificate and key of the challenge file at path, or -1 (no file, or
 * one that does not parse: the client is writing a new one, or the
 * authorization is over). Only a small regular file is read: O_NONBLOCK,
 * so that a FIFO put there cannot hold the worker.
 */
static int
read_challenge(const char *path, X509 **cert, EVP_PKEY **key)
{
	unsigned char buf[CHALLENGE_FILE_MAX];
	struct stat st;
	ssize_t len;
	BIO *bio = NULL;
	int fd;

	*cert = NULL;
	*key = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CHALLENGE_FILE_MAX ||
	    (len = read(fd, buf, sizeof(buf))) <= 0)
		goto err;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (*key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		goto err;
	BIO_free(bio);
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return 0;
err:
	ERR_clear_error();
	BIO_free(bio);
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	X509_free(*cert);
	EVP_PKEY_free(*key);
	*cert = NULL;
	*key = NULL;
	return -1;
}

int
tls_acme_hello(SSL *ssl, struct tls_info *info, const unsigned char *name, size_t n,
    int *al)
{
	static const unsigned char sid[] = "tlsfront acme-tls/1";
	const char *state_dir = info->worker->base->acme_state_dir;
	char lower[SNI_NAME_MAX + 1], path[4096];
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;

	/* never relayed: a backend must not answer for the name (RFC 8737
	 * section 5: acme-tls/1 is for validation only) */
	if (state_dir == NULL || challenge_name(name, n, lower, sizeof(lower)) != 0 ||
	    acme_challenge_path(state_dir, lower, path, sizeof(path)) == NULL ||
	    read_challenge(path, &cert, &key) != 0) {
		info->fail = TLS_FAIL_ACME_REFUSED;
		*al = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	/* the base context has no certificate: this one alone, no session to
	 * resume or to keep (a resumed session would skip the certificate) */
	SSL_set_options(ssl, SSL_OP_NO_TICKET);
	SSL_set_num_tickets(ssl, 0);
	SSL_set_min_proto_version(ssl, TLS1_2_VERSION);
	if (SSL_set_session_id_context(ssl, sid, sizeof(sid) - 1) != 1 ||
	    SSL_use_cert_and_key(ssl, cert, key, NULL, 1) != 1) {
		ERR_clear_error();
		X509_free(cert);
		EVP_PKEY_free(key);
		info->fail = TLS_FAIL_ACME_CERT;
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	X509_free(cert);	/* the SSL holds its references */
	EVP_PKEY_free(key);
	info->acme_challenge = 1;
	return SSL_CLIENT_HELLO_SUCCESS;
}

int
tls_acme_alpn(const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned inlen)
{
	if (!list_has_acme(in, inlen))
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = acme_alpn + 1;
	*outlen = (unsigned char)(ACME_ALPN_LEN - 1);
	return SSL_TLSEXT_ERR_OK;
}

int
tls_acme_challenge_done(SSL *ssl)
{
	const unsigned char *p;
	unsigned len;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == ACME_ALPN_LEN - 1 && memcmp(p, acme_alpn + 1, len) == 0;
}
