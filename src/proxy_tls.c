/*
 * proxy_tls.c: the PROXY v2 TLVs that describe a TLS handshake (ALPN,
 * AUTHORITY, the SSL TLV and its sub-TLVs, the client certificate), made
 * from the facts the TLS side gathered (tls_facts.h). Pure: no OpenSSL, no
 * I/O, no heap, so that it is unit-tested with made-up facts.
 */
#include <string.h>

#include "proxy.h"
#include "tls_facts.h"

void
proxy_tlvs_from_tls(const struct tls_facts *f, uint8_t cert_type, struct proxy_tlvs *t)
{
	memset(t, 0, sizeof(*t));
	if (f->alpn != NULL && f->alpn_len > 0) {
		t->alpn = f->alpn;
		t->alpn_len = f->alpn_len;
	}
	if (f->sni != NULL && f->sni[0] != '\0')
		t->authority = f->sni;
	t->ssl.present = 1;
	t->ssl.client = PP2_CLIENT_SSL;
	if (f->client_cert) {
		t->ssl.client |= PP2_CLIENT_CERT_SESS;
		if (f->client_cert_now)
			t->ssl.client |= PP2_CLIENT_CERT_CONN;
	}
	if (f->client_cn[0] != '\0')
		t->ssl.cn = f->client_cn;
	/* 0 only for a client certificate that was presented and verified */
	t->ssl.verify = f->client_cert && f->client_verified ? 0 : 1;
	t->ssl.version = f->version;
	t->ssl.cipher = f->cipher;
	t->ssl.sig_alg = f->sig_alg;
	if (f->key_alg[0] != '\0')
		t->ssl.key_alg = f->key_alg;
	if (f->client_cert_data != NULL && f->client_cert_len > 0) {
		t->cert = f->client_cert_data;
		t->cert_len = f->client_cert_len;
		t->cert_type = cert_type;
	}
}
