/* tls.c: see tls.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "clientauth.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"

#define EXPIRY_WARN_DAYS 14
#define TLS_FILE_MAX (16 * 1024 * 1024)	/* cert, key, CA, CRL, OCSP, ticket key files */

static int info_idx = -1;

/* Options every context gets: no renegotiation, no compression; a peer that
 * closes TCP without close_notify is an EOF, not a protocol error (OpenSSL 3
 * with libevent 2.1 otherwise reports it as an error: see ARCHITECTURE.md). */
static const uint64_t secure_options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
    SSL_OP_IGNORE_UNEXPECTED_EOF;
/* No SSL_OP_CIPHER_SERVER_PREFERENCE: with only strong suites, Mozilla lets the
 * client choose (it knows whether it has AES hardware). */

int
tls_init(void)
{
	if (info_idx < 0)
		info_idx = SSL_get_ex_new_index(0, "tlsfront info", NULL, NULL, NULL);
	return info_idx < 0 ? -1 : 0;
}

const char *
tls_error_string(char *buf, size_t n)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;	/* the last one is usually the most specific */
	if (last == 0)
		snprintf(buf, n, "unknown error");
	else
		ERR_error_string_n(last, buf, n);
	/* "error:0A000086:SSL routines::certificate verify failed": keep the reason */
	const char *r = strstr(buf, "::");
	if (r != NULL)
		memmove(buf, r + 2, strlen(r + 2) + 1);
	return buf;
}

void
tls_attach(SSL *ssl, struct tls_info *info)
{
	SSL_set_ex_data(ssl, info_idx, info);
}

/* ---- per-connection: the ClientHello callback --------------------------- */

/* Extract the host_name from a server_name extension. Returns its length
 * (0: none or malformed) and points *name at it. */
static size_t
sni_from_ext(const unsigned char *p, size_t len, const unsigned char **name)
{
	size_t list, n;

	if (len < 2)
		return 0;
	list = ((size_t)p[0] << 8) | p[1];
	if (list != len - 2)
		return 0;
	p += 2;
	while (list >= 3) {
		n = ((size_t)p[1] << 8) | p[2];
		if (n > list - 3)
			return 0;
		if (p[0] == TLSEXT_NAMETYPE_host_name) {
			*name = p + 3;
			return n;
		}
		list -= 3 + n;
		p += 3 + n;
	}
	return 0;
}

/*
 * Move ssl to host h: its settings context (shared by the hosts with the
 * same TLS settings), then its own certificate and session-id context, which
 * live on the connection. Returns 0, or -1 if OpenSSL refused (out of memory).
 */
static int
switch_host(SSL *ssl, const struct host *h)
{
	SSL_CTX *ctx = h->ctx;
	STACK_OF(X509_NAME) *cas;

	SSL_set_SSL_CTX(ssl, ctx);
	/* SSL_set_SSL_CTX moves the certificate and session-id context only. */
	SSL_clear_options(ssl, SSL_get_options(ssl) ^ SSL_CTX_get_options(ctx));
	SSL_set_options(ssl, SSL_CTX_get_options(ctx));
	SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(ctx));
	SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(ctx));
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
	cas = SSL_CTX_get_client_CA_list(ctx);
	if (cas != NULL && sk_X509_NAME_num(cas) > 0)
		SSL_set_client_CA_list(ssl, SSL_dup_CA_list(cas));
	/* the SSL copied its groups from the base context at SSL_new */
	if (!h->groups_as_base)
		SSL_set1_groups_list(ssl, h->groups);
	/* before OpenSSL looks at a session or ticket: a session made under
	 * another host has another context and is not resumed here */
	SSL_set_num_tickets(ssl, (size_t)h->cfg->tls13_tickets);
	if (SSL_set_session_id_context(ssl, h->sid, sizeof(h->sid)) != 1 ||
	    SSL_use_cert_and_key(ssl, h->leaf, h->key, h->chain, 1) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static int
client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_info *info = SSL_get_ex_data(ssl, info_idx);
	const unsigned char *ext, *name = NULL;
	size_t extlen, n = 0;
	struct host *h = NULL;

	(void)arg;
	if (info == NULL || info->listener == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (info->host != NULL)
		return SSL_CLIENT_HELLO_SUCCESS;	/* second hello after HelloRetryRequest */
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &extlen) == 1)
		n = sni_from_ext(ext, extlen, &name);
	if (n > 0) {
		size_t keep = n < sizeof(info->sni) - 1 ? n : sizeof(info->sni) - 1;
		/* for the log: what no host name holds (blank, NUL, '"') must not
		 * split or forge its fields */
		for (size_t i = 0; i < keep; i++)
			info->sni[i] = name[i] > 0x20 && name[i] < 0x7f && name[i] != '"' ?
			    (char)name[i] : '?';
		info->sni[keep] = '\0';
		h = sni_table_lookup(info->listener->sni, (const char *)name, n);
	}
	if (h == NULL)
		h = info->listener->default_host;
	if (h == NULL) {
		info->fail = n > 0 ? "unknown server name" : "no server name and no default host";
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	info->host = h;
	if (h->max_active > 0 && h->active >= h->max_active) {
		info->fail = "host max_connections reached";
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (switch_host(ssl, h) != 0) {
		info->fail = "cannot set the host's certificate";
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	h->active++;
	info->counted = 1;
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned inlen, void *arg)
{
	struct tls_info *info = SSL_get_ex_data(ssl, info_idx);
	const struct host *h = info != NULL ? info->host : NULL;
	unsigned char *sel;

	(void)arg;
	if (h == NULL || h->alpn_wire == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* iterates over our list first: the server's preference wins */
	if (SSL_select_next_proto(&sel, outlen, h->alpn_wire, (unsigned)h->alpn_wire_len,
	    in, inlen) != OPENSSL_NPN_NEGOTIATED) {
		info->fail = "no common ALPN protocol";
		return SSL_TLSEXT_ERR_ALERT_FATAL;	/* no_application_protocol */
	}
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* ---- session tickets ------------------------------------------------------- */

static unsigned char ticket_secret[32];
static int ticket_secret_set;
static const struct generation *ticket_gen;	/* this process's generation */

int
tls_ticket_secret_init(void)
{
	if (RAND_bytes(ticket_secret, sizeof(ticket_secret)) != 1)
		return -1;
	ticket_secret_set = 1;
	return 0;
}

void
tls_tickets_use(const struct generation *g)
{
	ticket_gen = g;
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

/* Key i (0: the one that encrypts; 1: the previous one) or -1 if none. */
static int
ticket_key(size_t i, struct ticket_key *k)
{
	static long long cached_p = -1;
	static struct ticket_key cached[2];
	long long p;

	if (ticket_gen != NULL && ticket_gen->tickets.n > 0) {
		if (i >= ticket_gen->tickets.n)
			return -1;
		*k = ticket_gen->tickets.v[i];
		return 0;
	}
	if (!ticket_secret_set || ticket_gen == NULL || i > 1)
		return -1;
	p = (long long)time(NULL) * 1000 / ticket_gen->cfg->g.ticket_key_rotation_ms;
	if (p != cached_p) {
		derive_key(p, &cached[0]);
		derive_key(p - 1, &cached[1]);
		cached_p = p;
	}
	*k = cached[i];
	return 0;
}

static int
ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[2];
	struct ticket_key k;
	int r = 1;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (enc) {
		if (ticket_key(0, &k) != 0 ||
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
			return 0;	/* no ticket this time */
		memcpy(name, k.name, 16);
	} else {
		size_t i;
		for (i = 0; ticket_key(i, &k) == 0; i++)
			if (memcmp(name, k.name, 16) == 0)
				break;
		if (ticket_key(i, &k) != 0)
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

static int check_readable(const char *key, const char *path, struct loc at, struct diag *d);

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
	if ((v = realloc(out->v, (out->n + 1) * sizeof(*v))) == NULL) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -1;
	}
	out->v = v;
	memcpy(v[out->n].name, raw, 16);
	memcpy(v[out->n].hmac, raw + 16, 32);
	memcpy(v[out->n].aes, raw + 48, 32);
	OPENSSL_cleanse(raw, sizeof(raw));
	out->n++;
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
	 * /dev/zero, and fopen() of a FIFO blocked (check_readable) */
	if (check_readable("ticket_key_file", path, at, d) != 0)
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
	if (ok && out->n == 0) {
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
	if (k->v != NULL)
		OPENSSL_cleanse(k->v, k->n * sizeof(*k->v));
	free(k->v);
	k->v = NULL;
	k->n = 0;
}

/* ---- session IDs: one cache, a share per host ------------------------------ */

/*
 * OpenSSL keeps server sessions in the context a connection started on: the
 * base context, common to all hosts. Each host's share is enforced here: the
 * IDs of a host's sessions, oldest first, in a ring of session_cache_size
 * entries; when it is full, the oldest leaves OpenSSL's cache too. (A
 * session OpenSSL dropped on its own may still have its ID in the ring;
 * removing it again is harmless.)
 */
struct sess_ring {
	struct sess_id {
		int version;
		unsigned char len;
		unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	} *v;
	size_t cap, head, n;
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

static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_info *info = SSL_get_ex_data(ssl, info_idx);
	struct host *h = info ? info->host : NULL;
	SSL_CTX *sctx = ticket_gen ? ticket_gen->base_ctx : NULL;
	struct sess_ring *r;
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
	if ((r = h->sessions) == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return 0;
		h->sessions = r;
	}
	if (r->n == r->cap && r->cap < (size_t)h->cfg->session_cache_size) {
		/* grow on use, up to the host's share */
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct sess_id *v;
		if (cap > (size_t)h->cfg->session_cache_size)
			cap = (size_t)h->cfg->session_cache_size;
		if ((v = malloc(cap * sizeof(*v))) == NULL)
			return 0;
		for (size_t i = 0; i < r->n; i++)	/* unroll the ring */
			v[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = v;
		r->cap = cap;
		r->head = 0;
	}
	if (r->n == r->cap) {
		forget_session(sctx, &r->v[r->head]);	/* the host's oldest */
		r->v[r->head] = e;
		r->head = (r->head + 1) % r->cap;
	} else {
		r->v[(r->head + r->n) % r->cap] = e;
		r->n++;
	}
	return 0;	/* we keep no reference: OpenSSL's cache holds it */
}

void
tls_sessions_free(struct host *h)
{
	if (h->sessions != NULL)
		free(h->sessions->v);
	free(h->sessions);
	h->sessions = NULL;
}

/* ---- per-host context ---------------------------------------------------- */

static SSL_CTX *
ctx_new_common(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_options(ctx, secure_options);
	/* Idle connections give their 34 KB of record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Without AUTO_RETRY, SSL_read returns to the event loop after each
	 * handshake message that carries no data (a TLS 1.3 KeyUpdate, a TLS
	 * 1.2 renegotiation ClientHello we refuse). With it, one SSL_read goes
	 * on for as long as a client keeps sending them, which OpenSSL 3.0
	 * does not limit: a single client starved every other connection of
	 * its worker (tests/e2e/t_hostile_tls.py). */
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	return ctx;
}

SSL_CTX *
tls_base_ctx_new(long cache_size, struct diag *d, struct loc at)
{
	SSL_CTX *ctx = ctx_new_common();
	char err[256];

	if (ctx == NULL) {
		diag_error_at(d, at, "cannot create TLS context: %s",
		    tls_error_string(err, sizeof(err)));
		return NULL;
	}
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
	/* the base context is the session context of every connection: it
	 * holds the session cache and encrypts the tickets */
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	if (cache_size > 0) {
		SSL_CTX_sess_set_cache_size(ctx, cache_size);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	return ctx;
}

/* Keep the groups this OpenSSL knows, in order; OpenSSL 3.0 refuses a whole
 * list for one unknown name (X25519MLKEM768 needs 3.5). Names, not NIDs:
 * newer groups come from providers and have no NID. */
static int
setup_groups(struct host *h, SSL_CTX *ctx, struct diag *d)
{
	const struct host_config *c = h->cfg;
	char *copy = strdup(c->groups), *save = NULL, *tok;
	int user_set = c->loc[K_GROUPS].line > 0;
	size_t n = 0;

	h->groups = calloc(1, strlen(c->groups) + 1);
	if (copy == NULL || h->groups == NULL) {
		free(copy);
		return -1;
	}
	for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (SSL_CTX_set1_groups_list(ctx, tok) != 1) {
			ERR_clear_error();
			if (user_set)
				diag_warn_at(d, c->loc[K_GROUPS], "groups: '%s' is not supported by "
				    "this OpenSSL (%s); left out", tok, OpenSSL_version(OPENSSL_VERSION));
			continue;
		}
		if (n++ > 0)
			strcat(h->groups, ":");
		strcat(h->groups, tok);
	}
	free(copy);
	if (n == 0 || SSL_CTX_set1_groups_list(ctx, h->groups) != 1) {
		diag_error_at(d, c->loc[K_GROUPS], "groups: none of '%s' is supported", c->groups);
		ERR_clear_error();
		return -1;
	}
	log_debug("host %s: groups %s", c->label, h->groups);
	return 0;
}

static int
add_name(struct host *h, const char *raw, size_t len)
{
	char norm[SNI_NAME_MAX + 1];
	char **v;

	if (sni_normalize(raw, len, 1, norm) < 0)
		return 0;	/* not a DNS name we can route on */
	for (size_t i = 0; i < h->n_names; i++)
		if (strcmp(h->names[i], norm) == 0)
			return 0;
	if ((v = realloc(h->names, (h->n_names + 1) * sizeof(*v))) == NULL)
		return -1;
	h->names = v;
	if ((v[h->n_names] = strdup(norm)) == NULL)
		return -1;
	h->n_names++;
	return 0;
}

/* Names from the certificate: every DNS SAN, or the CN when there is none. */
static void
names_from_cert(struct host *h, X509 *leaf)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	int had_dns = 0;

	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		had_dns = 1;
		add_name(h, (const char *)ASN1_STRING_get0_data(gn->d.dNSName),
		    (size_t)ASN1_STRING_length(gn->d.dNSName));
	}
	GENERAL_NAMES_free(sans);
	if (!had_dns) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
		    cn, sizeof(cn));
		if (n > 0)
			add_name(h, cn, (size_t)n);
	}
}

static void
check_validity(struct host *h, X509 *leaf, struct diag *d)
{
	const struct host_config *c = h->cfg;
	const ASN1_TIME *na = X509_get0_notAfter(leaf), *nb = X509_get0_notBefore(leaf);
	struct tm tm;
	int days, secs;

	if (ASN1_TIME_to_tm(na, &tm) == 1)
		h->not_after = timegm(&tm);
	if (ASN1_TIME_diff(&days, &secs, NULL, na) == 1) {
		if (days < 0 || secs < 0)
			diag_warn_at(d, c->loc[K_CERT], "CERTIFICATE EXPIRED: host '%s' certificate "
			    "%s expired %d days ago", c->label, c->cert, -days);
		else if (days < EXPIRY_WARN_DAYS)
			diag_warn_at(d, c->loc[K_CERT], "CERTIFICATE EXPIRES SOON: host '%s' "
			    "certificate %s expires in %d days", c->label, c->cert, days);
	}
	if (ASN1_TIME_diff(&days, &secs, NULL, nb) == 1 && (days > 0 || secs > 0))
		diag_warn_at(d, c->loc[K_CERT], "host '%s' certificate %s is not valid yet",
		    c->label, c->cert);
}

/* The chain must be leaf first, each certificate issued by the next. */
static int
check_chain_order(const struct host *h, struct diag *d)
{
	X509 *prev = h->leaf;

	for (int i = 0; i < sk_X509_num(h->chain); i++) {
		X509 *x = sk_X509_value(h->chain, i);
		if (X509_check_issued(x, prev) != X509_V_OK) {
			diag_error_at(d, h->cfg->loc[K_CERT], "cert: %s: certificate %d of the chain "
			    "did not issue certificate %d (order must be leaf first, then each "
			    "issuer)", h->cfg->cert, i + 2, i + 1);
			return -1;
		}
		prev = x;
	}
	return 0;
}

/* A certificate name on one line, as RFC 2253 writes it ("CN=R3,O=Let's
 * Encrypt,C=US"; control characters and bytes above 0x7f escaped). */
static const char *
name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int got = 0;

	buf[0] = '\0';
	if (b != NULL && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
	    (got = BIO_read(b, buf, (int)len - 1)) > 0)
		buf[got] = '\0';
	BIO_free(b);
	ERR_clear_error();
	return buf;
}

/*
 * certbot's cert.pem (the leaf alone) instead of fullchain.pem: clients
 * that do not already have the intermediate fail to verify. The file is
 * incomplete when it holds no CA certificate and its leaf was issued by
 * someone else (not self-signed). A file that stops at an intermediate is
 * complete, though its last certificate's issuer (the root) is absent:
 * clients have the roots, and servers are not meant to send them.
 */
static void
check_chain_complete(const struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	X509 *last = h->leaf;
	char issuer[256];

	for (int i = 0; i < sk_X509_num(h->chain); i++) {
		last = sk_X509_value(h->chain, i);
		if (X509_check_ca(last) != 0)
			return;
	}
	if (X509_check_ca(h->leaf) != 0 || X509_self_signed(h->leaf, 0) != 0) {
		ERR_clear_error();
		return;	/* a CA as the server's certificate, or a self-signed one */
	}
	diag_warn_at(d, c->loc[K_CERT], "certificate chain incomplete: issuer \"%s\" of the "
	    "last certificate in %s is not in the file (certbot: use fullchain.pem, not "
	    "cert.pem)", name_text(X509_get_issuer_name(last), issuer, sizeof(issuer)),
	    c->cert);
}

/* Is the wildcard name (a `names` entry "*.suffix") literally among the
 * certificate's DNS names, or its CN when it has none (as clients look)? */
static int
cert_has_wildcard(X509 *leaf, const GENERAL_NAMES *sans, const char *name)
{
	size_t len = strlen(name);
	int had_dns = 0;

	for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		had_dns = 1;
		if ((size_t)ASN1_STRING_length(gn->d.dNSName) == len &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(gn->d.dNSName), name,
		    len) == 0)
			return 1;
	}
	if (!had_dns) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
		    cn, sizeof(cn));
		ERR_clear_error();
		return n > 0 && (size_t)n == len && strncasecmp(cn, name, len) == 0;
	}
	return 0;
}

/*
 * `names` entries the certificate does not cover: routed here, but clients
 * refuse the certificate for them. A host name is checked as clients check
 * it (X509_check_host: DNS names, the CN only when there is none; a
 * wildcard covers exactly one whole first label); a wildcard entry must be
 * in the certificate as such. One warning lists them all.
 */
static void
check_names_covered(const struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	GENERAL_NAMES *sans = X509_get_ext_d2i(h->leaf, NID_subject_alt_name, NULL, NULL);
	char *list = NULL;
	size_t len = 0, cap = 1, n = 0;

	for (size_t i = 0; i < c->names.n; i++)
		cap += strlen(c->names.v[i]) + 2;
	if ((list = malloc(cap)) == NULL)
		goto out;
	list[0] = '\0';
	for (size_t i = 0; i < c->names.n; i++) {
		const char *name = c->names.v[i];
		int covered = strncmp(name, "*.", 2) == 0 ?
		    cert_has_wildcard(h->leaf, sans, name) :
		    X509_check_host(h->leaf, name, strlen(name),
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 0;	/* <0: no verdict */
		if (covered)
			continue;
		len += (size_t)snprintf(list + len, cap - len, "%s%s", n++ ? ", " : "", name);
	}
	if (n > 0)
		diag_warn_at(d, c->loc[K_NAMES], "host '%s': the certificate in %s does not cover "
		    "%s (clients will refuse it for %s)", c->label, c->cert, list,
		    n == 1 ? "this name" : "these names");
out:
	ERR_clear_error();
	free(list);
	GENERAL_NAMES_free(sans);
}

/*
 * Can we read the file at path? If not, report why at `at`. Returns 0 or -1.
 * Only regular files of at most TLS_FILE_MAX bytes pass: OpenSSL's fopen()
 * of a FIFO blocks until a writer comes, a device such as /dev/zero never
 * ends (the ticket key reader spun on it for ever, in `tlsfront -t` and in a
 * reload alike), and the PEM reader keeps a whole base64 body in memory.
 */
static int
check_readable(const char *key, const char *path, struct loc at, struct diag *d)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		diag_error_at(d, at, "%s: cannot open %s: %s", key, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		diag_error_at(d, at, "%s: cannot read %s: %s", key, path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		diag_error_at(d, at, "%s: %s is a directory", key, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error_at(d, at, "%s: %s is not a regular file", key, path);
		return -1;
	}
	if (st.st_size > TLS_FILE_MAX) {
		diag_error_at(d, at, "%s: %s is too large (%lld bytes; the limit is %d)", key,
		    path, (long long)st.st_size, TLS_FILE_MAX);
		return -1;
	}
	return 0;
}

/* ---- files read once, while they do not change --------------------------- */

/*
 * Parsing PEM is most of the cost of a host's context (OpenSSL 3.0 takes
 * ~0.4 ms for a certificate and its key). The main process keeps what it
 * parsed, by path, for as long as the file's identity (device, inode, size,
 * modification and change times) stays the same: a reload re-reads only the
 * files that changed, so renewing ten certificates among thousands of hosts
 * stays cheap.
 */
struct cached_file {
	char *path;
	struct stat st;
	STACK_OF(X509) *certs;		/* a certificate file: leaf first */
	EVP_PKEY *key;			/* a key file */
	unsigned long used_by;		/* the last build that used it */
	unsigned long read_by;		/* the build that parsed it */
};

static struct cached_file *fcache;
static size_t fcache_n, fcache_cap;
/* Builds are numbered: the one under way, and the one of the generation in
 * service (0: none yet), against which a build counts the files it read. */
static unsigned long fcache_build, fcache_kept;

/* An index of fcache by path: with 10,000 hosts a linear search per file
 * made loading quadratic. Open addressing, slots hold index + 1 (0: empty),
 * under half full; rebuilt when it grows and after a sweep compacts fcache. */
static size_t *fcache_ix;
static size_t fcache_ix_size;	/* a power of two, > 2 * fcache_n */

static size_t
path_hash(const char *p)
{
	size_t h = 14695981039346656037ULL;	/* FNV-1a */

	while (*p)
		h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
	return h;
}

static void
fcache_ix_add(size_t i)
{
	size_t h = path_hash(fcache[i].path) & (fcache_ix_size - 1);

	while (fcache_ix[h] != 0)
		h = (h + 1) & (fcache_ix_size - 1);
	fcache_ix[h] = i + 1;
}

/* Make room in the index for n entries and index fcache[0..fcache_n).
 * Never shrinks, so it fails only when growing, leaving the old index. */
static int
fcache_reindex(size_t n)
{
	size_t want = fcache_ix_size ? fcache_ix_size : 64;

	while (want <= 2 * n)
		want *= 2;
	if (want != fcache_ix_size) {
		size_t *ix = calloc(want, sizeof(*ix));
		if (ix == NULL)
			return -1;
		free(fcache_ix);
		fcache_ix = ix;
		fcache_ix_size = want;
	} else {
		memset(fcache_ix, 0, want * sizeof(*fcache_ix));
	}
	for (size_t i = 0; i < fcache_n; i++)
		fcache_ix_add(i);
	return 0;
}

/* The entry for path and kind, or NULL. */
static struct cached_file *
fcache_find(const char *path, int is_key)
{
	if (fcache_ix_size == 0)
		return NULL;
	for (size_t h = path_hash(path) & (fcache_ix_size - 1); fcache_ix[h] != 0;
	    h = (h + 1) & (fcache_ix_size - 1)) {
		struct cached_file *e = &fcache[fcache_ix[h] - 1];
		if (strcmp(e->path, path) == 0 && (is_key ? e->key != NULL : e->certs != NULL))
			return e;
	}
	return NULL;
}

/*
 * PEM_read_bio_PrivateKey builds a new OSSL_DECODER context for every key
 * and tries every format: on OpenSSL 3.0 that was 90% of the cost of a key
 * file (4.4 M instructions per key). Read the PEM block here and decode its
 * DER with a decoder context made once per kind of block and then reused.
 * NULL (with the file rewound) for anything unusual: encrypted keys, other
 * labels, a decoder failure; the caller then takes OpenSSL's general path,
 * with its error messages.
 */
static EVP_PKEY *key_out;
static OSSL_DECODER_CTX *key_dec[5];

/* Encrypted keys are not supported: never prompt on a terminal for a
 * pass phrase (OpenSSL's default), fail and say why. */
static int key_wanted_password;

static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	key_wanted_password = 1;
	return -1;
}

static EVP_PKEY *
read_key_fast(BIO *bio)
{
	static const struct {
		const char *label, *structure, *type;
	} kinds[5] = {
		{ "PRIVATE KEY", "PrivateKeyInfo", NULL },
		{ "EC PRIVATE KEY", "type-specific", "EC" },
		{ "RSA PRIVATE KEY", "type-specific", "RSA" },
		/* PKCS#8 of a known algorithm: a decoder context of that type
		 * only; one for any type tries every decoder in turn, which was
		 * half the cost of reading an EC key */
		{ NULL, "PrivateKeyInfo", "EC" },
		{ NULL, "PrivateKeyInfo", "RSA" },
	};
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	EVP_PKEY *key = NULL;
	int k = -1;

	/* skip other blocks (openssl ecparam -genkey writes EC PARAMETERS first) */
	while (k < 0 && PEM_read_bio_ex(bio, &name, &header, &der, &len,
	    PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) == 1) {
		for (int i = 0; i < 3; i++)
			if (strcmp(name, kinds[i].label) == 0 && header[0] == '\0')
				k = i;
		if (k < 0) {
			OPENSSL_free(name);
			OPENSSL_free(header);
			OPENSSL_secure_clear_free(der, (size_t)len);
			name = header = NULL;
			der = NULL;
		}
	}
	if (k == 0) {
		const unsigned char *q = der;
		PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, len);
		const ASN1_OBJECT *alg = NULL;

		if (p8 != NULL && PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8) == 1) {
			int nid = OBJ_obj2nid(alg);
			k = nid == NID_X9_62_id_ecPublicKey ? 3 : nid == NID_rsaEncryption ? 4 : 0;
		}
		PKCS8_PRIV_KEY_INFO_free(p8);	/* clears the key it held */
	}
	if (k >= 0) {
		if (key_dec[k] == NULL)
			key_dec[k] = OSSL_DECODER_CTX_new_for_pkey(&key_out, "DER",
			    kinds[k].structure, kinds[k].type, OSSL_KEYMGMT_SELECT_KEYPAIR,
			    NULL, NULL);
		const unsigned char *p = der;
		size_t n = (size_t)len;
		key_out = NULL;
		if (key_dec[k] != NULL && OSSL_DECODER_from_data(key_dec[k], &p, &n) == 1)
			key = key_out;
		key_out = NULL;
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_secure_clear_free(der, (size_t)len);
	if (key == NULL) {
		ERR_clear_error();
		(void)BIO_reset(bio);
	}
	return key;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void
cached_file_clear(struct cached_file *f)
{
	free(f->path);
	sk_X509_pop_free(f->certs, X509_free);
	EVP_PKEY_free(f->key);
	memset(f, 0, sizeof(*f));
}

/* The certificates (is_key 0) or the key (is_key 1) of path, read now or
 * earlier. NULL with OpenSSL's error queue (or errno) telling why. The
 * result belongs to the cache. */
static struct cached_file *
fcache_get(const char *path, int is_key)
{
	struct cached_file *f, nf;
	struct stat st;
	BIO *bio;
	X509 *x;

	if (stat(path, &st) != 0)
		return NULL;
	if ((f = fcache_find(path, is_key)) != NULL && same_file(&f->st, &st)) {
		f->used_by = fcache_build;
		return f;
	}
	/* f != NULL: changed, read it again into this slot */
	memset(&nf, 0, sizeof(nf));
	nf.st = st;
	if ((bio = BIO_new_file(path, "r")) == NULL)
		return NULL;
	if (is_key) {
		if ((nf.key = read_key_fast(bio)) == NULL)
			nf.key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
	} else if ((nf.certs = sk_X509_new_null()) != NULL &&
	    (x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL) {
		/* the leaf, then the chain: as SSL_CTX_use_certificate_chain_file */
		do {
			if (!sk_X509_push(nf.certs, x)) {
				X509_free(x);
				break;
			}
		} while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL);
		if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
			ERR_clear_error();	/* the end of the file */
	}
	BIO_free(bio);
	if (is_key ? nf.key == NULL : sk_X509_num(nf.certs) <= 0) {
		sk_X509_pop_free(nf.certs, X509_free);
		return NULL;
	}
	if (f == NULL) {
		if (fcache_n == fcache_cap) {
			size_t cap = fcache_cap ? 2 * fcache_cap : 64;
			struct cached_file *v = realloc(fcache, cap * sizeof(*v));
			if (v == NULL)
				goto fail;
			fcache = v;
			fcache_cap = cap;
		}
		if (2 * (fcache_n + 1) >= fcache_ix_size && fcache_reindex(fcache_n + 1) != 0)
			goto fail;
		if ((nf.path = strdup(path)) == NULL)
			goto fail;
		f = &fcache[fcache_n++];
		*f = nf;
		fcache_ix_add(fcache_n - 1);
	} else {
		nf.path = f->path;
		f->path = NULL;
		cached_file_clear(f);
	}
	*f = nf;
	f->used_by = f->read_by = fcache_build;
	return f;
fail:
	sk_X509_pop_free(nf.certs, X509_free);
	EVP_PKEY_free(nf.key);
	return NULL;
}

void
tls_files_begin(void)
{
	fcache_build++;
}

/*
 * Counted here, by file, not in fcache_get: a file that several hosts share
 * is looked up once per host, and a file given as both cert and key (one
 * PEM with both) has an entry of each kind. A file is read for this build
 * if it was parsed after the generation in service was built: by this
 * build, or by a build thrown away since (a failed reload), whose lookups
 * count for nothing here.
 */
void
tls_files_sweep(unsigned long *read, unsigned long *unchanged)
{
	unsigned long nread = 0, nsame = 0;
	size_t n = 0;

	for (size_t i = 0; i < fcache_n; i++) {
		if (fcache[i].used_by != fcache_build) {
			cached_file_clear(&fcache[i]);
			continue;
		}
		fcache[n++] = fcache[i];
	}
	fcache_n = n;
	(void)fcache_reindex(fcache_n);	/* same size: cannot fail */
	for (size_t i = 0; i < fcache_n; i++) {
		struct cached_file *e = &fcache[i];
		struct cached_file *o = fcache_find(e->path, e->key == NULL);
		unsigned long r = o != NULL && o->read_by > e->read_by ? o->read_by : e->read_by;
		if (o != NULL && o < e)
			continue;	/* the other kind of the path counted it */
		if (r > fcache_kept)
			nread++;
		else
			nsame++;
	}
	if (read != NULL)
		*read = nread;
	if (unchanged != NULL)
		*unchanged = nsame;
}

void
tls_files_kept(void)
{
	fcache_kept = fcache_build;
}

/*
 * Load the key into h->key and check that it belongs to the leaf (the first
 * certificate of the file). A key that belongs to a later certificate means
 * the file is out of order, which is reported as such. Returns 0, or -1
 * after reporting.
 */
static int
use_key(struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct cached_file *f;
	EVP_PKEY *pkey;
	char err[256];

	key_wanted_password = 0;
	f = fcache_get(c->key, 1);
	pkey = f ? f->key : NULL;	/* the cache's */
	if (pkey == NULL && key_wanted_password) {
		ERR_clear_error();
		diag_error_at(d, c->loc[K_KEY], "key: %s is encrypted: tlsfront needs the "
		    "key without a pass phrase (e.g. openssl pkey -in KEY -out PLAIN)", c->key);
		return -1;
	}
	if (pkey == NULL) {
		diag_error_at(d, c->loc[K_KEY], "key: cannot load %s: %s", c->key,
		    tls_error_string(err, sizeof(err)));
		return -1;
	}
	if (X509_check_private_key(h->leaf, pkey) != 1) {
		ERR_clear_error();
		for (int i = 0; i < sk_X509_num(h->chain); i++)
			if (X509_check_private_key(sk_X509_value(h->chain, i), pkey) == 1) {
				diag_error_at(d, c->loc[K_CERT], "cert: %s: the key %s belongs to "
				    "certificate %d of the file, not the first (order must be leaf "
				    "first, then each issuer)", c->cert, c->key, i + 2);
				return -1;
			}
		ERR_clear_error();
		diag_error_at(d, c->loc[K_KEY], "key: %s does not match the certificate in %s",
		    c->key, c->cert);
		return -1;
	}
	EVP_PKEY_up_ref(pkey);
	h->key = pkey;
	return 0;
}

/*
 * Certificate verification of a client: OpenSSL's verdict, then the host's
 * allow-list for the leaf. The reason goes to the access log. OpenSSL 3.0
 * derives the alert from the X509 error and has no mapping to access_denied,
 * so a client off the allow-list gets handshake_failure.
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_info *info = ssl ? SSL_get_ex_data(ssl, info_idx) : NULL;

	if (!ok) {
		if (info != NULL && info->fail == NULL) {
			snprintf(info->fail_buf, sizeof(info->fail_buf), "client certificate: %s",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
			info->fail = info->fail_buf;
		}
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) == 0 && info != NULL && info->host != NULL &&
	    !allow_list_match(&info->host->allow, X509_STORE_CTX_get_current_cert(xs))) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		info->fail = "client certificate not on the allow-list";
		return 0;
	}
	return 1;
}

/* client_allow: the host's own, checked by verify_cb through the connection */
static int
setup_allow(struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	char err[256];
	int ok = 1;

	for (size_t i = 0; i < c->client_allow.n; i++)
		if (allow_list_add(&h->allow, c->client_allow.v[i], err, sizeof(err)) != 0) {
			diag_error_at(d, c->loc[K_CLIENT_ALLOW], "client_allow: %s", err);
			ok = 0;
		}
	return ok ? 0 : -1;
}

/* client_verify, client_ca, client_crl, client_verify_depth: the context's */
static int
setup_client_verify(const struct host *h, SSL_CTX *ctx, struct diag *d)
{
	const struct host_config *c = h->cfg;
	STACK_OF(X509_NAME) *names;
	X509_STORE *store;
	X509_LOOKUP *lookup;
	char err[256];
	int n, ok = 1;

	/* both, so that one run reports both */
	if (c->client_crl != NULL &&
	    check_readable("client_crl", c->client_crl, c->loc[K_CLIENT_CRL], d) != 0)
		ok = 0;
	if (c->client_ca == NULL ||
	    check_readable("client_ca", c->client_ca, c->loc[K_CLIENT_CA], d) != 0 || !ok)
		return -1;
	if (SSL_CTX_load_verify_locations(ctx, c->client_ca, NULL) != 1) {
		diag_error_at(d, c->loc[K_CLIENT_CA], "client_ca: cannot load %s: %s",
		    c->client_ca, tls_error_string(err, sizeof(err)));
		return -1;
	}
	/* the subjects we send as acceptable CA names */
	names = SSL_load_client_CA_file(c->client_ca);
	if (names == NULL || sk_X509_NAME_num(names) == 0) {
		ERR_clear_error();
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		diag_error_at(d, c->loc[K_CLIENT_CA], "client_ca: %s holds no certificate",
		    c->client_ca);
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    (c->client_verify == CLIENT_VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
	    verify_cb);
	SSL_CTX_set_verify_depth(ctx, c->client_verify_depth);
	if (c->client_crl != NULL) {
		store = SSL_CTX_get_cert_store(ctx);
		lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
		n = lookup ? X509_load_crl_file(lookup, c->client_crl, X509_FILETYPE_PEM) : 0;
		if (n <= 0) {
			diag_error_at(d, c->loc[K_CLIENT_CRL], "client_crl: no CRL could be read "
			    "from %s: %s", c->client_crl, tls_error_string(err, sizeof(err)));
			return -1;
		}
		/* one CRL: the leaf's issuer; several: every CA of the chain */
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
		    (n > 1 ? X509_V_FLAG_CRL_CHECK_ALL : 0));
	}
	return ok ? 0 : -1;
}

static void
sid_context(const char *label, unsigned char out[SSL_MAX_SID_CTX_LENGTH])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char in[300];

	snprintf(in, sizeof(in), "tlsfront host %s", label);
	EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, md, SSL_MAX_SID_CTX_LENGTH);
}

/* ---- keylog_file and ocsp_file ------------------------------------------- */

/*
 * OpenSSL calls the keylog and status callbacks of the SSL's current context
 * (ssl->ctx), which switch_host has made the host's settings context: only
 * the contexts of hosts that set these keys have them (the keys are part of
 * the settings, profile_key), and the callbacks find the host through the
 * connection.
 */

/* One NSS key log line ("LABEL CLIENT_RANDOM SECRET", the format of
 * SSLKEYLOGFILE) per call: one write(2) on an O_APPEND descriptor that every
 * worker shares is one atomic append, so lines of several workers never mix. */
static void
keylog_cb(const SSL *ssl, const char *line)
{
	const struct tls_info *info = SSL_get_ex_data(ssl, info_idx);
	const struct host *h = info != NULL ? info->host : NULL;
	char buf[512], *out = buf;
	size_t n = strlen(line);

	if (h == NULL || h->keylog_fd < 0)
		return;
	if (n + 1 > sizeof(buf) && (out = malloc(n + 1)) == NULL)
		return;
	memcpy(out, line, n);
	out[n] = '\n';
	if (write(h->keylog_fd, out, n + 1) != (ssize_t)(n + 1))
		log_debug("host %s: keylog_file: short write", h->cfg->label);
	OPENSSL_cleanse(out, n + 1);
	if (out != buf)
		free(out);
}

static int
open_keylog(struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct loc at = c->loc[K_KEYLOG_FILE];
	struct stat st;
	int fd;

	/* create it private; an existing file keeps its owner and mode */
	fd = open(c->keylog_file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK, 0600);
	if (fd >= 0)
		h->keylog_created = 1;
	else if (errno == EEXIST)
		fd = open(c->keylog_file, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		diag_error_at(d, at, "keylog_file: cannot open %s for writing: %s", c->keylog_file,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		diag_error_at(d, at, "keylog_file: %s is not a regular file", c->keylog_file);
		close(fd);
		return -1;
	}
	h->keylog_fd = fd;
	diag_warn_at(d, at, "host '%s': keylog_file is set: TLS secrets of its connections "
	    "are written to %s; anyone who can read it can decrypt them", c->label,
	    c->keylog_file);
	if (st.st_mode & 0077)
		diag_warn_at(d, at, "host '%s': keylog_file %s is readable or writable by "
		    "others than its owner (mode %04o)", c->label, c->keylog_file,
		    (unsigned)(st.st_mode & 07777));
	return 0;
}

void
tls_give_files(struct generation *g, const char *user, const char *group)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;

	if (user == NULL || geteuid() != 0 || (pw = getpwnam(user)) == NULL)
		return;	/* priv_drop reports an unknown user */
	gid = pw->pw_gid;
	if (group != NULL && (gr = getgrnam(group)) != NULL)
		gid = gr->gr_gid;
	for (size_t i = 0; i < g->n_hosts; i++) {
		struct host *h = &g->hosts[i];
		if (h->keylog_fd >= 0 && h->keylog_created &&
		    fchown(h->keylog_fd, pw->pw_uid, gid) != 0)
			log_warn("host %s: keylog_file %s: cannot give it to user %s: %s",
			    h->cfg->label, h->cfg->keylog_file, user, strerror(errno));
	}
}

/* Staple the host's response when the client asked (status_request). */
static int
status_cb(SSL *ssl, void *arg)
{
	const struct tls_info *info = SSL_get_ex_data(ssl, info_idx);
	const struct host *h = info != NULL ? info->host : NULL;
	unsigned char *copy;

	(void)arg;
	if (h == NULL || h->ocsp == NULL ||
	    (h->ocsp_next_update != 0 && time(NULL) > h->ocsp_next_update))
		return SSL_TLSEXT_ERR_NOACK;	/* none, or expired since it was read */
	/* OpenSSL frees the response with the connection: give it a copy */
	if ((copy = OPENSSL_memdup(h->ocsp, h->ocsp_len)) == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)h->ocsp_len) != 1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

#define OCSP_MAX_SIZE (1024 * 1024)
#define OCSP_SKEW_SECS 300	/* a thisUpdate this far ahead of our clock is accepted */

/* The whole file (at most max bytes) in *out (malloc'd). Returns 0 or -1 with errno. */
static int
read_small_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	unsigned char *buf = NULL;
	size_t n = 0;

	if (f == NULL)
		return -1;
	if ((buf = malloc(max + 1)) != NULL)
		n = fread(buf, 1, max + 1, f);
	if (buf == NULL || ferror(f) || n > max) {
		int e = buf == NULL ? ENOMEM : n > max ? EFBIG : EIO;
		free(buf);
		fclose(f);
		errno = e;
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static const char *
asn1_time_text(const ASN1_TIME *t, char *buf, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len = 0;

	buf[0] = '\0';
	if (b != NULL && ASN1_TIME_print(b, t) == 1 && (len = BIO_read(b, buf, (int)n - 1)) > 0)
		buf[len] = '\0';
	BIO_free(b);
	return buf;
}

/*
 * ocsp_file: a DER OCSP response, checked here (it parses, its status is
 * successful, it speaks of the leaf, its signature verifies with the leaf's
 * issuer, the next certificate of the chain) and kept to staple. An expired
 * response, or one not valid yet, is a warning and is not stapled.
 */
static int
load_ocsp(struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct loc at = c->loc[K_OCSP_FILE];
	STACK_OF(X509) *signers = NULL;
	X509 *leaf = h->leaf;
	X509 *issuer;
	X509_STORE *store = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	int status = -1, reason, rc = -1, found = 0;
	char err[256], t1[64];

	if (check_readable("ocsp_file", c->ocsp_file, at, d) != 0)
		return -1;
	if (read_small_file(c->ocsp_file, OCSP_MAX_SIZE, &der, &len) != 0) {
		diag_error_at(d, at, "ocsp_file: cannot read %s: %s", c->ocsp_file,
		    errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
		return -1;
	}
	p = der;
	if (len == 0 || (resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		ERR_clear_error();
		diag_error_at(d, at, "ocsp_file: %s is not a DER OCSP response", c->ocsp_file);
		goto out;
	}
	if ((status = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		diag_error_at(d, at, "ocsp_file: %s: the response status is '%s', not "
		    "'successful'", c->ocsp_file, OCSP_response_status_str(status));
		goto out;
	}
	if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
		ERR_clear_error();
		diag_error_at(d, at, "ocsp_file: %s holds no basic OCSP response", c->ocsp_file);
		goto out;
	}
	if (sk_X509_num(h->chain) <= 0) {
		diag_error_at(d, at, "ocsp_file: the cert file %s holds no issuer certificate "
		    "after the leaf; it is needed to match the OCSP response", c->cert);
		goto out;
	}
	issuer = sk_X509_value(h->chain, 0);
	/* the leaf's CertID with the hash algorithm each single response uses */
	for (int i = 0; !found && i < OCSP_resp_count(bs); i++) {
		const OCSP_CERTID *sid = OCSP_SINGLERESP_get0_id(OCSP_resp_get0(bs, i));
		ASN1_OBJECT *alg = NULL;
		const EVP_MD *md;
		OCSP_CERTID *id;

		if (sid == NULL || OCSP_id_get0_info(NULL, &alg, NULL, NULL,
		    (OCSP_CERTID *)sid) != 1 || (md = EVP_get_digestbyobj(alg)) == NULL)
			continue;
		if ((id = OCSP_cert_to_id(md, leaf, issuer)) == NULL)
			continue;
		found = OCSP_resp_find_status(bs, id, &status, &reason, &revtime, &thisupd,
		    &nextupd) == 1;
		OCSP_CERTID_free(id);
	}
	ERR_clear_error();
	if (!found) {
		char serial[128] = "?";
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		if (hex != NULL)
			snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		diag_error_at(d, at, "ocsp_file: %s is not a response for the certificate of "
		    "%s (serial %s, issued by the next certificate of that file)", c->ocsp_file,
		    c->cert, serial);
		goto out;
	}
	/* signed by the issuer, or by a responder it delegated to */
	if ((signers = sk_X509_new_null()) == NULL || !sk_X509_push(signers, issuer) ||
	    (store = X509_STORE_new()) == NULL || X509_STORE_add_cert(store, issuer) != 1)
		goto out;
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (OCSP_basic_verify(bs, signers, store, OCSP_TRUSTOTHER) <= 0) {
		diag_error_at(d, at, "ocsp_file: %s: the response's signature does not verify "
		    "with the issuer of %s: %s", c->ocsp_file, c->cert,
		    tls_error_string(err, sizeof(err)));
		goto out;
	}
	rc = 0;
	if (status == V_OCSP_CERTSTATUS_REVOKED)
		diag_warn_at(d, at, "host '%s': CERTIFICATE REVOKED: the OCSP response in %s "
		    "says its certificate was revoked on %s", c->label, c->ocsp_file,
		    revtime ? asn1_time_text(revtime, t1, sizeof(t1)) : "?");
	else if (status != V_OCSP_CERTSTATUS_GOOD)
		diag_warn_at(d, at, "host '%s': the OCSP response in %s gives the status of its "
		    "certificate as unknown", c->label, c->ocsp_file);
	if (nextupd != NULL && X509_cmp_time(nextupd, NULL) <= 0) {
		diag_warn_at(d, at, "host '%s': the OCSP response in %s expired on %s "
		    "(nextUpdate); it is not stapled", c->label, c->ocsp_file,
		    asn1_time_text(nextupd, t1, sizeof(t1)));
		goto out;
	}
	time_t soon = time(NULL) + OCSP_SKEW_SECS;
	if (thisupd != NULL && X509_cmp_time(thisupd, &soon) > 0) {
		diag_warn_at(d, at, "host '%s': the OCSP response in %s is not valid before %s "
		    "(thisUpdate); it is not stapled", c->label, c->ocsp_file,
		    asn1_time_text(thisupd, t1, sizeof(t1)));
		goto out;
	}
	if (nextupd != NULL) {
		struct tm tm;
		if (ASN1_TIME_to_tm(nextupd, &tm) == 1)
			h->ocsp_next_update = timegm(&tm);
	}
	h->ocsp = der;
	h->ocsp_len = len;
	der = NULL;
out:
	ERR_clear_error();
	free(der);
	X509_STORE_free(store);
	sk_X509_free(signers);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return rc;
}

/* ---- settings contexts, shared by hosts ----------------------------------- */

/*
 * In OpenSSL 3.0 SSL_CTX_new() costs about as much as parsing a certificate
 * (a third of a host's load time, with 10,000 hosts seconds of start-up and
 * of every reload) and each context holds tens of KB. So hosts with the same
 * TLS settings share one context, made by the first of them. What differs
 * per host lives on the connection (certificate, chain and key, session-id
 * context: switch_host) or is found through it by the callbacks (ALPN list,
 * OCSP response, keylog file, client allow-list).
 */
struct tls_profile {
	char *key;		/* the settings as text (profile_key) */
	unsigned long hash;
	SSL_CTX *ctx;		/* the cache's reference; each host holds one more */
	SSL *probe;		/* to try each host's certificate with the settings */
	char *groups;		/* what setup_groups made of them */
};

struct tls_profiles {
	struct tls_profile *v;
	size_t n, cap;
};

struct tls_profiles *
tls_profiles_new(void)
{
	return calloc(1, sizeof(struct tls_profiles));
}

void
tls_profiles_free(struct tls_profiles *pc)
{
	if (pc == NULL)
		return;
	for (size_t i = 0; i < pc->n; i++) {
		free(pc->v[i].key);
		SSL_free(pc->v[i].probe);
		SSL_CTX_free(pc->v[i].ctx);
		free(pc->v[i].groups);
	}
	free(pc->v);
	free(pc);
}

size_t
tls_profiles_count(const struct tls_profiles *pc)
{
	return pc != NULL ? pc->n : 0;
}

/* Every host key that becomes a setting of the context, as one string
 * (malloc'd; NULL: out of memory). Hosts with equal strings share. Each
 * string value goes with its length, so that no two different settings
 * (a '|' in a path, say) can ever make the same text. */
static char *
profile_key(const struct host_config *c)
{
	int verify = c->client_verify != CLIENT_VERIFY_NONE;
	const char *ca = verify && c->client_ca ? c->client_ca : "";
	const char *crl = verify && c->client_crl ? c->client_crl : "";
	char *k = NULL;

	if (asprintf(&k, "%d-%d|%zu:%s|%zu:%s|%zu:%s|tickets=%d|verify=%d|%zu:%s|%zu:%s|%d|"
	    "alpn=%d|ocsp=%d|keylog=%d", c->protocols.min, c->protocols.max,
	    strlen(c->ciphers), c->ciphers, strlen(c->ciphersuites), c->ciphersuites,
	    strlen(c->groups), c->groups, c->session_tickets, (int)c->client_verify,
	    strlen(ca), ca, strlen(crl), crl, verify ? c->client_verify_depth : 0,
	    c->alpn.n > 0, c->ocsp_file != NULL, c->keylog_file != NULL) < 0)
		return NULL;
	return k;
}

/* The context for h's settings: one of pc, or made now from h's config
 * (its problems reported at h's lines, and nothing kept, so that the next
 * host with the same settings reports them at its own). Sets h->groups.
 * NULL on failure. */
static struct tls_profile *
profile_get(struct tls_profiles *pc, struct host *h, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct tls_profile *p, np;
	unsigned long hash = 5381;
	char err[256];
	int ok = 1;

	memset(&np, 0, sizeof(np));
	if ((np.key = profile_key(c)) == NULL)
		return NULL;
	for (const char *q = np.key; *q != '\0'; q++)
		hash = hash * 33 + (unsigned char)*q;
	for (size_t i = 0; i < pc->n; i++) {
		p = &pc->v[i];
		if (p->hash == hash && strcmp(p->key, np.key) == 0) {
			free(np.key);
			if ((h->groups = strdup(p->groups)) == NULL)
				return NULL;
			return p;
		}
	}
	np.hash = hash;
	if ((np.ctx = ctx_new_common()) == NULL) {
		diag_error_at(d, c->at, "cannot create TLS context: %s",
		    tls_error_string(err, sizeof(err)));
		free(np.key);
		return NULL;
	}
	SSL_CTX *ctx = np.ctx;
	if (SSL_CTX_set_min_proto_version(ctx, c->protocols.min) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, c->protocols.max) != 1) {
		diag_error_at(d, c->loc[K_PROTOCOLS], "protocols: not supported: %s",
		    tls_error_string(err, sizeof(err)));
		ok = 0;
	}
	if (SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
		ERR_clear_error();
		diag_error_at(d, c->loc[K_CIPHERS], "ciphers: OpenSSL accepts none of '%s'",
		    c->ciphers);
		ok = 0;
	}
	if (SSL_CTX_set_ciphersuites(ctx, c->ciphersuites) != 1) {
		ERR_clear_error();
		diag_error_at(d, c->loc[K_CIPHERSUITES], "ciphersuites: OpenSSL rejects '%s'",
		    c->ciphersuites);
		ok = 0;
	}
	if (setup_groups(h, ctx, d) != 0)
		ok = 0;
	if (!c->session_tickets)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);	/* TLS 1.3: stateful only */
	if (c->client_verify != CLIENT_VERIFY_NONE && setup_client_verify(h, ctx, d) != 0)
		ok = 0;
	if (c->alpn.n > 0)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	if (c->keylog_file != NULL)
		SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	if (c->ocsp_file != NULL)
		SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
	if (ok && ((np.probe = SSL_new(ctx)) == NULL ||
	    (np.groups = strdup(h->groups ? h->groups : "")) == NULL))
		ok = 0;
	if (ok && pc->n == pc->cap) {
		size_t cap = pc->cap ? 2 * pc->cap : 8;
		struct tls_profile *v = realloc(pc->v, cap * sizeof(*v));
		if (v == NULL) {
			ok = 0;
		} else {
			pc->v = v;
			pc->cap = cap;
		}
	}
	if (!ok) {
		ERR_clear_error();
		free(np.key);
		SSL_free(np.probe);
		SSL_CTX_free(np.ctx);
		free(np.groups);
		return NULL;
	}
	pc->v[pc->n] = np;
	return &pc->v[pc->n++];
}

int
tls_host_setup(struct host *h, struct tls_profiles *pc, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct tls_profile *p;
	struct cached_file *cf;
	char err[256];
	int ok = 1;

	if (c->protocols.min < TLS1_2_VERSION)
		diag_warn_at(d, c->loc[K_PROTOCOLS], "protocols: host '%s' enables TLS "
		    "versions older than 1.2, which are obsolete and insecure", c->label);
	sid_context(c->label, h->sid);
	if (c->client_verify != CLIENT_VERIFY_NONE && setup_allow(h, d) != 0)
		ok = 0;
	if (c->alpn.n > 0) {
		size_t len = 0;
		for (size_t i = 0; i < c->alpn.n; i++)
			len += 1 + strlen(c->alpn.v[i]);
		if ((h->alpn_wire = malloc(len)) == NULL)
			return -1;
		unsigned char *q = h->alpn_wire;
		for (size_t i = 0; i < c->alpn.n; i++) {
			size_t n = strlen(c->alpn.v[i]);
			*q++ = (unsigned char)n;
			memcpy(q, c->alpn.v[i], n);
			q += n;
		}
		h->alpn_wire_len = len;
	}
	if (c->keylog_file != NULL && open_keylog(h, d) != 0)
		ok = 0;
	if ((p = profile_get(pc, h, d)) == NULL) {
		ok = 0;
	} else {
		SSL_CTX_up_ref(p->ctx);
		h->ctx = p->ctx;
	}

	if (c->cert == NULL || c->key == NULL)
		return -1;	/* already reported by the config loader */
	/* both, so that one run reports both; OpenSSL's reasons say less */
	if (check_readable("cert", c->cert, c->loc[K_CERT], d) |
	    check_readable("key", c->key, c->loc[K_KEY], d))
		return -1;
	if ((cf = fcache_get(c->cert, 0)) == NULL) {
		diag_error_at(d, c->loc[K_CERT], "cert: cannot load %s: %s", c->cert,
		    tls_error_string(err, sizeof(err)));
		return -1;
	}
	/* the leaf, then the chain: as SSL_CTX_use_certificate_chain_file */
	h->leaf = sk_X509_value(cf->certs, 0);
	X509_up_ref(h->leaf);
	if ((h->chain = sk_X509_new_reserve(NULL, sk_X509_num(cf->certs))) == NULL)
		return -1;
	for (int i = 1; i < sk_X509_num(cf->certs); i++) {
		X509 *x = sk_X509_value(cf->certs, i);
		X509_up_ref(x);
		(void)sk_X509_push(h->chain, x);	/* reserved: cannot fail */
	}
	if (use_key(h, d) != 0)
		return -1;
	if (check_chain_order(h, d) != 0)
		ok = 0;
	else
		check_chain_complete(h, d);
	if (c->names.n > 0)
		check_names_covered(h, d);
	/* what each connection will do, once here: OpenSSL's checks of the
	 * certificate against the settings (security level, key type) */
	if (p != NULL && SSL_use_cert_and_key(p->probe, h->leaf, h->key, h->chain, 1) != 1) {
		diag_error_at(d, c->loc[K_CERT], "cert: cannot use %s: %s", c->cert,
		    tls_error_string(err, sizeof(err)));
		ok = 0;
	}
	check_validity(h, h->leaf, d);
	if (c->ocsp_file != NULL && load_ocsp(h, d) != 0)
		ok = 0;

	if (c->names.n > 0) {
		for (size_t i = 0; i < c->names.n; i++)
			add_name(h, c->names.v[i], strlen(c->names.v[i]));
	} else {
		names_from_cert(h, h->leaf);
		if (h->n_names == 0 && !c->is_default) {
			diag_error_at(d, c->loc[K_CERT], "cert: %s has no DNS name to route on; "
			    "set 'names' or 'default = yes'", c->cert);
			ok = 0;
		}
	}
	return ok ? 0 : -1;
}

/* ---- PROXY v2 TLVs --------------------------------------------------------- */

void
tls_proxy_tlvs(SSL *ssl, const char *sni, int cert_fmt, int cert_type,
    struct proxy_tlvs *t, struct tls_proxy_store *st)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	X509 *own = SSL_get_certificate(ssl);
	EVP_PKEY *pk = own ? X509_get0_pubkey(own) : NULL;
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;

	memset(t, 0, sizeof(*t));
	memset(st, 0, sizeof(*st));
	SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	if (alpn_len > 0) {
		t->alpn = alpn;
		t->alpn_len = alpn_len;
	}
	if (sni != NULL && sni[0] != '\0')
		t->authority = sni;
	t->ssl.present = 1;
	t->ssl.client = PP2_CLIENT_SSL;
	if (peer != NULL) {
		t->ssl.client |= PP2_CLIENT_CERT_SESS;
		if (!SSL_session_reused(ssl))
			t->ssl.client |= PP2_CLIENT_CERT_CONN;
		/* the spec wants the CN in UTF-8 (the access log gets ASCII) */
		X509_NAME *subj = X509_get_subject_name(peer);
		int j = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		unsigned char *utf8 = NULL;
		int n = j < 0 ? -1 : ASN1_STRING_to_UTF8(&utf8,
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, j)));
		if (n > 0 && (size_t)n < sizeof(st->cn) && memchr(utf8, '\0', (size_t)n) == NULL) {
			memcpy(st->cn, utf8, (size_t)n);
			st->cn[n] = '\0';
			t->ssl.cn = st->cn;
		}
		OPENSSL_free(utf8);
	}
	/* 0 only for a client certificate that was presented and verified */
	t->ssl.verify = peer != NULL && SSL_get_verify_result(ssl) == X509_V_OK ? 0 : 1;
	t->ssl.version = SSL_get_version(ssl);
	t->ssl.cipher = SSL_get_cipher_name(ssl);
	if (own != NULL) {
		snprintf(st->sig_alg, sizeof(st->sig_alg), "%s",
		    OBJ_nid2sn(X509_get_signature_nid(own)));
		t->ssl.sig_alg = st->sig_alg;
	}
	if (pk != NULL) {
		/* "RSA2048", "EC256"; other types by name alone ("ED25519") */
		const char *type = EVP_PKEY_get0_type_name(pk);
		int id = EVP_PKEY_get_base_id(pk);
		if (id == EVP_PKEY_RSA || id == EVP_PKEY_EC)
			snprintf(st->key_alg, sizeof(st->key_alg), "%s%d",
			    id == EVP_PKEY_RSA ? "RSA" : "EC", EVP_PKEY_get_bits(pk));
		else
			snprintf(st->key_alg, sizeof(st->key_alg), "%s", type ? type : "");
		if (st->key_alg[0] != '\0')
			t->ssl.key_alg = st->key_alg;
	}
	if (peer != NULL && cert_fmt == PROXY_CERT_DER) {
		int n = i2d_X509(peer, &st->cert);	/* allocates */
		st->cert_len = n > 0 ? (size_t)n : 0;
	} else if (peer != NULL && cert_fmt == PROXY_CERT_PEM) {
		BIO *b = BIO_new(BIO_s_mem());
		char *data;
		long n;
		if (b != NULL && PEM_write_bio_X509(b, peer) == 1 &&
		    (n = BIO_get_mem_data(b, &data)) > 0 &&
		    (st->cert = OPENSSL_malloc((size_t)n)) != NULL) {
			memcpy(st->cert, data, (size_t)n);
			st->cert_len = (size_t)n;
		}
		BIO_free(b);
	}
	if (st->cert_len > 0) {
		t->cert = st->cert;
		t->cert_len = st->cert_len;
		t->cert_type = (uint8_t)cert_type;
	}
	ERR_clear_error();
}

void
tls_proxy_store_free(struct tls_proxy_store *st)
{
	OPENSSL_free(st->cert);
	st->cert = NULL;
	st->cert_len = 0;
}
