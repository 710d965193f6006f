/*
 * tls_tickets.c: resumption. The keys that encrypt session tickets (a key
 * file's, or derived from a process secret per rotation period) and the
 * ticket callback of the base context; and each host's share of the
 * session-ID cache, which a worker keeps in its own state (tls_worker).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tls_int.h"

/* Made once in the main process before the first fork, read-only after:
 * every worker derives the same keys from it. */
static unsigned char ticket_secret[32];
static int ticket_secret_set;

int
tls_ticket_secret_init(void)
{
	if (RAND_bytes(ticket_secret, sizeof(ticket_secret)) != 1)
		return -1;
	ticket_secret_set = 1;
	return 0;
}

/* The key of rotation period p, derived from the secret. */
static void
derive_key(long long p, struct ticket_key *k)
{
	unsigned char out[3 * 32], in[32];
	unsigned len;

	memset(in, 0, sizeof(in));
	memcpy(in, "tlsfront ticket key", 19);
	for (int i = 0; i < 8; i++)
		in[19 + i] = (unsigned char)((unsigned long long)p >> (56 - 8 * i));
	for (int c = 0; c < 3; c++) {
		in[27] = (unsigned char)c;
		HMAC(EVP_sha256(), ticket_secret, sizeof(ticket_secret), in, 28, out + 32 * c, &len);
	}
	memcpy(k->name, out, 16);
	memcpy(k->hmac, out + 32, 32);
	memcpy(k->aes, out + 64, 32);
}

/* Key i of worker w (0: the one that encrypts; 1: the previous one), or -1
 * if none. Derived keys are cached in w for their period. */
static int
ticket_key(struct tls_worker *w, size_t i, struct ticket_key *k)
{
	const struct tls_base *b = w != NULL ? w->base : NULL;
	long long p;

	if (b == NULL)
		return -1;
	if (b->tickets.n_keys > 0) {
		if (i >= b->tickets.n_keys)
			return -1;
		*k = b->tickets.keys[i];
		return 0;
	}
	if (!ticket_secret_set || i > 1)
		return -1;
	p = (long long)time(NULL) * 1000 / b->rotation_ms;
	if (p != w->key_period) {
		derive_key(p, &w->keys[0]);
		derive_key(p - 1, &w->keys[1]);
		w->key_period = p;
	}
	*k = w->keys[i];
	return 0;
}

int
tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	struct tls_info *info = tls_info_of(s);
	struct tls_worker *w = info != NULL ? info->worker : NULL;
	OSSL_PARAM params[2];
	struct ticket_key k;
	int r = 1;

	/* OSSL_PARAM takes a non-const pointer, but only reads an input's */
	static char sha256[] = "SHA256";

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (enc) {
		if (ticket_key(w, 0, &k) != 0 ||
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
			return 0;	/* no ticket this time */
		memcpy(name, k.name, 16);
	} else {
		size_t i;
		for (i = 0; ticket_key(w, i, &k) == 0; i++)
			if (memcmp(name, k.name, 16) == 0)
				break;
		if (ticket_key(w, i, &k) != 0)
			return 0;	/* unknown or retired key: a full handshake */
		/* 2: accepted, and issue a fresh ticket. Always in TLS 1.3: OpenSSL
		 * sends no NewSessionTicket after a resumption our callback does not
		 * ask to renew, and TLS 1.3 clients use a ticket once (RFC 8446
		 * C.4), so every other connection was a full handshake. In TLS 1.2
		 * only when the ticket's key is no longer the current one. */
		r = i == 0 && SSL_version(s) != TLS1_3_VERSION ? 1 : 2;
	}
	if (EVP_MAC_init(hctx, k.hmac, sizeof(k.hmac), params) != 1 ||
	    (enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) :
	    EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv)) != 1) {
		OPENSSL_cleanse(&k, sizeof(k));
		return -1;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return r;
}

/* ---- ticket_key_file ---------------------------------------------------------- */

/* The base64 of one 80-byte key: 108 characters, the last one '='. */
#define TICKET_KEY_B64 108

/* Decode one key's base64 (b64, len characters) and append it to out.
 * Returns 1, 0 if it is not the base64 of 80 bytes, -1 out of memory. */
static int
ticket_key_add(struct ticket_keys *out, const char *b64, size_t len)
{
	unsigned char raw[128];
	struct ticket_key *v;
	int n;

	if (len != TICKET_KEY_B64)
		return 0;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	/* EVP_DecodeBlock counts '=' padding as bytes */
	while (n > 0 && len > 0 && b64[len - 1] == '=') {
		n--;
		len--;
	}
	if (n != 80) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return 0;
	}
	if ((v = realloc(out->keys, (out->n_keys + 1) * sizeof(*v))) == NULL) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -1;
	}
	out->keys = v;
	memcpy(v[out->n_keys].name, raw, 16);
	memcpy(v[out->n_keys].hmac, raw + 16, 32);
	memcpy(v[out->n_keys].aes, raw + 48, 32);
	OPENSSL_cleanse(raw, sizeof(raw));
	out->n_keys++;
	return 1;
}

static void
ticket_key_bad(struct diag *d, const char *path, int line, size_t chars)
{
	if (chars == TICKET_KEY_B64)
		diag_error(d, path, line, "ticket key: expected the base64 of 80 bytes "
		    "(openssl rand -base64 80)");
	else
		diag_error(d, path, line, "ticket key: expected the base64 of 80 bytes "
		    "(openssl rand -base64 80): %d characters, on one line or wrapped over "
		    "several; this key has %zu", TICKET_KEY_B64, chars);
}

/*
 * One key a line, as nginx writes them, or wrapped over several lines, as
 * `openssl rand -base64 80` writes it (64 characters, then 44): the lines
 * of a key are joined until its 108 characters are there. A key ends early
 * at a line ending in '=' (the padding, always last), before a blank line,
 * a comment, a line that would take it past 108 characters, or the end of
 * the file. A bad key is an error at the line it started on; a short or
 * cut key does not take the next key's lines with it, which would report
 * that good key as bad too.
 */
int
tls_ticket_keys_load(const char *path, struct ticket_keys *out, struct diag *d,
    struct loc at)
{
	char *line = NULL, pend[TICKET_KEY_B64];
	size_t cap = 0, plen = 0;
	ssize_t got;
	FILE *f;
	int lineno = 0, start = 0, ok = 1, rc;

	memset(out, 0, sizeof(*out));
	/* a regular file of bounded size: the loop below never ended on
	 * /dev/zero, and fopen() of a FIFO blocked (tls_readable) */
	if (tls_readable("ticket_key_file", path, at, d) != 0)
		return -1;
	if ((f = fopen(path, "re")) == NULL) {
		diag_error_at(d, at, "ticket_key_file: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		const char *s = "";
		size_t len = 0;

		if ((got = getline(&line, &cap, f)) >= 0) {
			lineno++;
			s = line;
			len = (size_t)got;
			while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
			    s[len - 1] == ' ' || s[len - 1] == '\t'))
				len--;
			while (len > 0 && (*s == ' ' || *s == '\t')) {
				s++;
				len--;
			}
		}
		/* the key being joined ends before this line */
		if (plen > 0 && (got < 0 || len == 0 || s[0] == '#' ||
		    plen + len > TICKET_KEY_B64)) {
			ticket_key_bad(d, path, start, plen);
			ok = 0;
			plen = 0;
		}
		if (got < 0)
			break;
		if (len == 0 || s[0] == '#')
			continue;
		if (plen == 0)
			start = lineno;
		if (len > TICKET_KEY_B64) {
			ticket_key_bad(d, path, start, len);
			ok = 0;
			continue;
		}
		memcpy(pend + plen, s, len);
		plen += len;
		if (plen < TICKET_KEY_B64 && pend[plen - 1] != '=')
			continue;	/* wrapped: the key goes on on the next line */
		if ((rc = ticket_key_add(out, pend, plen)) < 0) {
			ok = 0;
			break;
		}
		if (rc == 0) {
			ticket_key_bad(d, path, start, plen);
			ok = 0;
		}
		plen = 0;
	}
	if (ferror(f)) {
		diag_error_at(d, at, "ticket_key_file: cannot read %s: %s", path, strerror(errno));
		ok = 0;
	}
	fclose(f);
	OPENSSL_cleanse(pend, sizeof(pend));
	if (line != NULL)
		OPENSSL_cleanse(line, cap);
	free(line);
	if (ok && out->n_keys == 0) {
		diag_error_at(d, at, "ticket_key_file: %s holds no key", path);
		ok = 0;
	}
	if (!ok)
		tls_ticket_keys_free(out);
	return ok ? 0 : -1;
}

void
tls_ticket_keys_free(struct ticket_keys *k)
{
	if (k == NULL)
		return;
	if (k->keys != NULL)
		OPENSSL_cleanse(k->keys, k->n_keys * sizeof(*k->keys));
	free(k->keys);
	k->keys = NULL;
	k->n_keys = 0;
}

/* ---- session IDs: one cache, a share per host ------------------------------ */

/*
 * OpenSSL keeps server sessions in the context a connection started on: the
 * base context, common to all hosts. Each host's share is enforced here: the
 * IDs of a host's sessions, oldest first, in a ring of session_cache_size
 * entries; when it is full, the oldest leaves OpenSSL's cache too. (A
 * session OpenSSL dropped on its own may still have its ID in the ring;
 * removing it again is harmless.) A worker has one ring per host
 * (tls_worker), made at its first session.
 */
struct sess_ring {
	struct sess_id {
		int version;
		unsigned char len;
		unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	} *ids;
	size_t cap, head, count;
};

static void
forget_session(SSL_CTX *sctx, const struct sess_id *e)
{
	SSL_SESSION *tmp = SSL_SESSION_new();

	/* OpenSSL's cache finds a session by protocol version and ID */
	if (tmp != NULL && SSL_SESSION_set_protocol_version(tmp, e->version) == 1 &&
	    SSL_SESSION_set1_id(tmp, e->id, e->len) == 1)
		SSL_CTX_remove_session(sctx, tmp);
	SSL_SESSION_free(tmp);
}

int
tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_info *info = tls_info_of(ssl);
	const struct host *h = info != NULL ? info->host : NULL;
	struct tls_worker *w = info != NULL ? info->worker : NULL;
	SSL_CTX *sctx = w != NULL && w->base != NULL ? w->base->ctx : NULL;
	struct sess_ring *r, **slot;
	struct sess_id e;
	unsigned len;
	const unsigned char *id = SSL_SESSION_get_id(sess, &len);

	if (h == NULL || sctx == NULL || len > sizeof(e.id))
		return 0;
	e.version = SSL_SESSION_get_protocol_version(sess);
	e.len = (unsigned char)len;
	memcpy(e.id, id, len);
	if (h->cfg->session_cache_size <= 0) {
		forget_session(sctx, &e);	/* this host keeps none */
		return 0;
	}
	slot = &w->load[h - w->hosts].sessions;
	if ((r = *slot) == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return 0;
		*slot = r;
	}
	if (r->count == r->cap && r->cap < (size_t)h->cfg->session_cache_size) {
		/* grow on use, up to the host's share */
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct sess_id *v;
		if (cap > (size_t)h->cfg->session_cache_size)
			cap = (size_t)h->cfg->session_cache_size;
		if ((v = malloc(cap * sizeof(*v))) == NULL)
			return 0;
		for (size_t i = 0; i < r->count; i++)	/* unroll the ring */
			v[i] = r->ids[(r->head + i) % r->cap];
		free(r->ids);
		r->ids = v;
		r->cap = cap;
		r->head = 0;
	}
	if (r->count == r->cap) {
		forget_session(sctx, &r->ids[r->head]);	/* the host's oldest */
		r->ids[r->head] = e;
		r->head = (r->head + 1) % r->cap;
	} else {
		r->ids[(r->head + r->count) % r->cap] = e;
		r->count++;
	}
	return 0;	/* we keep no reference: OpenSSL's cache holds it */
}

void
tls_sess_ring_free(struct sess_ring *r)
{
	if (r == NULL)
		return;
	free(r->ids);
	free(r);
}
