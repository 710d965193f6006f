/*
 * tls.c: the contexts (see tls.h). The settings contexts that hosts with the
 * same TLS settings share (profiles), each host's TLS side (struct tls_host:
 * certificate, chain and key from the file cache, groups, ALPN, keylog
 * file, OCSP response), and a generation's base context.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "log.h"
#include "tls_int.h"

/* config.h spells protocol versions as TLS wire numbers, which OpenSSL's
 * constants are; the contexts take config's values as they are. */
_Static_assert(CONFIG_TLS1_VERSION == TLS1_VERSION &&
    CONFIG_TLS1_1_VERSION == TLS1_1_VERSION && CONFIG_TLS1_2_VERSION == TLS1_2_VERSION &&
    CONFIG_TLS1_3_VERSION == TLS1_3_VERSION, "config.h's TLS versions are OpenSSL's");

/* Options every context gets: no renegotiation, no compression; a peer that
 * closes TCP without close_notify is an EOF, not a protocol error (OpenSSL 3
 * with libevent 2.1 otherwise reports it as an error: see ARCHITECTURE.md). */
static const uint64_t secure_options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
    SSL_OP_IGNORE_UNEXPECTED_EOF;
/* No SSL_OP_CIPHER_SERVER_PREFERENCE: with only strong suites, Mozilla lets the
 * client choose (it knows whether it has AES hardware). */

static SSL_CTX *
ctx_new_common(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_options(ctx, secure_options);
	/* Idle connections give their record buffers back. */
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

/* ---- the base context ---------------------------------------------------------- */

struct tls_base *
tls_base_new(const struct config *cfg, struct host *hosts, size_t n, struct diag *d,
    struct loc at)
{
	struct tls_base *b = calloc(1, sizeof(*b));
	const char *base_groups = NULL;
	long cache = 0;
	char err[256];

	if (b == NULL)
		return NULL;
	b->rotation_ms = cfg->g.ticket_key_rotation_ms;
	/* one OpenSSL cache for all hosts, as large as their shares together;
	 * tls_tickets.c keeps each host within its own session_cache_size */
	for (size_t i = 0; i < cfg->n_hosts; i++)
		cache += cfg->hosts[i].session_cache_size;
	if (cache > (1L << 22))
		cache = 1L << 22;
	if ((b->ctx = ctx_new_common()) == NULL) {
		diag_error_at(d, at, "cannot create TLS context: %s",
		    tls_error_string(err, sizeof(err)));
		goto err;
	}
	SSL_CTX_set_client_hello_cb(b->ctx, tls_client_hello_cb, NULL);
	/* the one connection that stays on the base context past the hello is
	 * an ACME validation (tls_acme.c), which must get acme-tls/1 */
	SSL_CTX_set_alpn_select_cb(b->ctx, tls_alpn_cb, NULL);
	b->acme_state_dir = cfg->g.acme.enabled ? cfg->g.acme.state_dir : NULL;
	/* the base context is the session context of every connection: it
	 * holds the session cache and encrypts the tickets */
	SSL_CTX_set_tlsext_ticket_key_evp_cb(b->ctx, tls_ticket_cb);
	if (cache > 0) {
		SSL_CTX_sess_set_cache_size(b->ctx, cache);
		SSL_CTX_sess_set_new_cb(b->ctx, tls_new_session_cb);
	} else {
		SSL_CTX_set_session_cache_mode(b->ctx, SSL_SESS_CACHE_OFF);
	}
	if (cfg->g.ticket_key_file != NULL && tls_ticket_keys_load(cfg->g.ticket_key_file,
	    &b->tickets, d, cfg->g.loc[K_G_TICKET_KEY_FILE]) != 0)
		goto err;
	/* most hosts share the default groups: the base context offers them, so
	 * only hosts with other groups cost a groups call per connection */
	for (size_t i = 0; i < n && base_groups == NULL; i++)
		if (!hosts[i].skipped && hosts[i].tls != NULL)
			base_groups = hosts[i].tls->groups;
	if (base_groups == NULL || SSL_CTX_set1_groups_list(b->ctx, base_groups) != 1) {
		ERR_clear_error();
		base_groups = NULL;	/* then every host sets its own */
	}
	for (size_t i = 0; i < n; i++) {
		struct tls_host *t = hosts[i].tls;
		if (t != NULL)
			t->groups_as_base = base_groups && t->groups &&
			    strcmp(t->groups, base_groups) == 0;
	}
	return b;
err:
	tls_base_free(b);
	return NULL;
}

void
tls_base_free(struct tls_base *b)
{
	if (b == NULL)
		return;
	SSL_CTX_free(b->ctx);
	tls_ticket_keys_free(&b->tickets);
	free(b);
}

/* ---- settings of a context ----------------------------------------------------- */

/* Keep the groups this OpenSSL knows, in order; OpenSSL 3.0 refuses a whole
 * list for one unknown name (X25519MLKEM768 needs 3.5). Names, not NIDs:
 * newer groups come from providers and have no NID. Sets t->groups. */
static int
setup_groups(struct tls_host *t, const struct host_config *c, SSL_CTX *ctx,
    struct diag *d)
{
	char *copy = strdup(c->groups), *save = NULL, *tok;
	int user_set = c->loc[K_GROUPS].line > 0;
	size_t n = 0;

	t->groups = calloc(1, strlen(c->groups) + 1);
	if (copy == NULL || t->groups == NULL) {
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
			strcat(t->groups, ":");
		strcat(t->groups, tok);
	}
	free(copy);
	if (n == 0 || SSL_CTX_set1_groups_list(ctx, t->groups) != 1) {
		diag_error_at(d, c->loc[K_GROUPS], "groups: none of '%s' is supported", c->groups);
		ERR_clear_error();
		return -1;
	}
	log_debug("host %s: groups %s", c->label, t->groups);
	return 0;
}

/* client_verify, client_ca, client_crl, client_verify_depth: the context's */
static int
setup_client_verify(const struct host_config *c, SSL_CTX *ctx, struct diag *d)
{
	STACK_OF(X509_NAME) *names;
	X509_STORE *store;
	X509_LOOKUP *lookup;
	char err[256];
	int n, ok = 1;

	/* both, so that one run reports both */
	if (c->client_crl != NULL &&
	    tls_readable("client_crl", c->client_crl, c->loc[K_CLIENT_CRL], d) != 0)
		ok = 0;
	if (c->client_ca == NULL ||
	    tls_readable("client_ca", c->client_ca, c->loc[K_CLIENT_CA], d) != 0 || !ok)
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
	    tls_verify_cb);
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

/* ---- settings contexts, shared by hosts ----------------------------------- */

/*
 * In OpenSSL 3.0 SSL_CTX_new() costs about as much as parsing a certificate
 * and each context holds tens of KB, which many hosts multiply. So hosts
 * with the same TLS settings share one context, made by the first of them.
 * What differs per host lives on the connection (certificate, chain and
 * key, session-id context: tls_accept.c switch_host) or is found through it
 * by the callbacks (ALPN list, OCSP response, keylog file, client
 * allow-list).
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

/* The context for c's settings: one of pc, or made now from c (its
 * problems reported at c's lines, and nothing kept, so that the next host
 * with the same settings reports them at its own). Sets t->groups. NULL on
 * failure. */
static struct tls_profile *
profile_get(struct tls_profiles *pc, struct tls_host *t, const struct host_config *c,
    struct diag *d)
{
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
			if ((t->groups = strdup(p->groups)) == NULL)
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
	if (setup_groups(t, c, ctx, d) != 0)
		ok = 0;
	if (!c->session_tickets)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);	/* TLS 1.3: stateful only */
	if (c->client_verify != CLIENT_VERIFY_NONE && setup_client_verify(c, ctx, d) != 0)
		ok = 0;
	if (c->alpn.n > 0)
		SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
	if (c->keylog_file != NULL)
		SSL_CTX_set_keylog_callback(ctx, tls_keylog_cb);
	if (c->ocsp_file != NULL)
		SSL_CTX_set_tlsext_status_cb(ctx, tls_status_cb);
	if (ok && ((np.probe = SSL_new(ctx)) == NULL ||
	    (np.groups = strdup(t->groups ? t->groups : "")) == NULL))
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

/* ---- one host ------------------------------------------------------------------- */

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

/* The ALPN list in wire format (length-prefixed names). Returns 0 or -1. */
static int
setup_alpn(struct tls_host *t, const struct host_config *c)
{
	size_t len = 0;
	unsigned char *q;

	for (size_t i = 0; i < c->alpn.n; i++)
		len += 1 + strlen(c->alpn.v[i]);
	if ((t->alpn_wire = malloc(len)) == NULL)
		return -1;
	q = t->alpn_wire;
	for (size_t i = 0; i < c->alpn.n; i++) {
		size_t n = strlen(c->alpn.v[i]);
		*q++ = (unsigned char)n;
		memcpy(q, c->alpn.v[i], n);
		q += n;
	}
	t->alpn_wire_len = len;
	return 0;
}

/* The key of c into t->key (a reference), checked against the leaf.
 * Returns 0, or -1 after reporting. */
static int
use_key(struct tls_host *t, const struct host_config *c, struct diag *d)
{
	EVP_PKEY *pkey;
	char err[256];
	int encrypted = 0;

	pkey = tls_files_key(c->key, &encrypted);	/* the cache's */
	if (pkey == NULL && encrypted) {
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
	if (tls_check_key(c, t->leaf, t->chain, pkey, d) != 0)
		return -1;
	EVP_PKEY_up_ref(pkey);
	t->key = pkey;
	return 0;
}

/* The leaf and chain of c's cert file into t (references). Returns 0, or
 * -1 after reporting. */
static int
use_cert(struct tls_host *t, const struct host_config *c, struct diag *d)
{
	STACK_OF(X509) *certs;
	char err[256];

	if ((certs = tls_files_certs(c->cert)) == NULL) {
		diag_error_at(d, c->loc[K_CERT], "cert: cannot load %s: %s", c->cert,
		    tls_error_string(err, sizeof(err)));
		return -1;
	}
	/* the leaf, then the chain: as SSL_CTX_use_certificate_chain_file */
	t->leaf = sk_X509_value(certs, 0);
	X509_up_ref(t->leaf);
	if ((t->chain = sk_X509_new_reserve(NULL, sk_X509_num(certs))) == NULL)
		return -1;
	for (int i = 1; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		X509_up_ref(x);
		(void)sk_X509_push(t->chain, x);	/* reserved: cannot fail */
	}
	return 0;
}

/*
 * The certificate, chain and key of c's files into t, checked, and tried
 * on the settings' probe SSL (p may be NULL: its context failed). Returns
 * 0; 1 after reporting problems that leave the rest worth checking; -1
 * after reporting one that does not (t may then hold part of them).
 */
static int
load_cert(struct host *h, struct tls_host *t, struct tls_profile *p, struct diag *d)
{
	const struct host_config *c = h->cfg;
	char err[256];
	int ok = 1;

	/* both, so that one run reports both; OpenSSL's reasons say less */
	if (tls_readable("cert", c->cert, c->loc[K_CERT], d) |
	    tls_readable("key", c->key, c->loc[K_KEY], d))
		return -1;
	if (use_cert(t, c, d) != 0)
		return -1;
	h->not_after = tls_cert_not_after(t->leaf);
	if (use_key(t, c, d) != 0)
		return -1;
	if (tls_check_chain_order(c, t->leaf, t->chain, d) != 0)
		ok = 0;
	else
		tls_check_chain_complete(c, t->leaf, t->chain, d);
	if (c->names.n > 0)
		tls_check_names_covered(c, t->leaf, d);
	/* what each connection will do, once here: OpenSSL's checks of the
	 * certificate against the settings (security level, key type) */
	if (p != NULL && SSL_use_cert_and_key(p->probe, t->leaf, t->key, t->chain, 1) != 1) {
		diag_error_at(d, c->loc[K_CERT], "cert: cannot use %s: %s", c->cert,
		    tls_error_string(err, sizeof(err)));
		ok = 0;
	}
	tls_check_validity(c, t->leaf, d);
	if (c->ocsp_file != NULL && tls_ocsp_load(t, c, d) != 0)
		ok = 0;
	return ok ? 0 : 1;
}

/*
 * An ACME host's certificate: state_dir/certs/LABEL.pem, key and chain in
 * one file. Until the client has stored it (or while what is there does not
 * load) the host is pending: it loads, with its names, and its handshakes
 * fail (tls_accept.c), so that the generation, `tlsfront -t` and the other
 * hosts do not depend on the CA. Its problems are warnings then.
 */
static void
acme_cert(struct host *h, struct tls_host *t, struct tls_profile *p, struct diag *d)
{
	const struct host_config *c = h->cfg;
	size_t before = d->n;
	struct stat st;
	char why[300];

	if (stat(c->cert, &st) != 0 && errno == ENOENT) {
		diag_warn_at(d, c->loc[K_ACME], "host '%s': certificate pending: ACME has not "
		    "stored %s yet", c->label, c->cert);
	} else if (load_cert(h, t, p, d) != 0) {
		snprintf(why, sizeof(why), "host '%s': certificate pending (ACME's file does not "
		    "load): ", c->label);
		diag_demote(d, before, why);
	} else {
		return;
	}
	/* nothing of a half-loaded file may be served */
	X509_free(t->leaf);
	sk_X509_pop_free(t->chain, X509_free);
	EVP_PKEY_free(t->key);
	t->leaf = NULL;
	t->chain = NULL;
	t->key = NULL;
	free(t->ocsp);
	t->ocsp = NULL;
	h->not_after = 0;
	h->pending = 1;
}

int
tls_host_setup(struct host *h, struct tls_profiles *pc, struct diag *d)
{
	const struct host_config *c = h->cfg;
	struct tls_profile *p;
	struct tls_host *t;
	int ok = 1, rc;

	if ((h->tls = t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->keylog_fd = -1;
	if (c->protocols.min < TLS1_2_VERSION)
		diag_warn_at(d, c->loc[K_PROTOCOLS], "protocols: host '%s' enables TLS "
		    "versions older than 1.2, which are obsolete and insecure", c->label);
	sid_context(c->label, t->sid);
	if (c->alpn.n > 0 && setup_alpn(t, c) != 0)
		return -1;
	if (c->keylog_file != NULL && tls_keylog_open(t, c, d) != 0)
		ok = 0;
	if ((p = profile_get(pc, t, c, d)) == NULL) {
		ok = 0;
	} else {
		SSL_CTX_up_ref(p->ctx);
		t->ctx = p->ctx;
	}

	if (c->cert == NULL || c->key == NULL)
		return -1;	/* already reported by the config loader */
	if (c->acme)
		acme_cert(h, t, p, d);
	else if ((rc = load_cert(h, t, p, d)) < 0)
		return -1;
	else if (rc > 0)
		ok = 0;

	if (c->names.n > 0) {
		for (size_t i = 0; i < c->names.n; i++)
			tls_host_add_name(h, c->names.v[i], strlen(c->names.v[i]));
	} else {
		tls_names_from_cert(h, t->leaf);
		if (h->n_names == 0 && !c->is_default) {
			diag_error_at(d, c->loc[K_CERT], "cert: %s has no DNS name to route on; "
			    "set 'names' or 'default = yes'", c->cert);
			ok = 0;
		}
	}
	return ok ? 0 : -1;
}

void
tls_host_free(struct tls_host *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	X509_free(t->leaf);
	sk_X509_pop_free(t->chain, X509_free);
	EVP_PKEY_free(t->key);
	free(t->groups);
	free(t->alpn_wire);
	if (t->keylog_fd >= 0)
		close(t->keylog_fd);
	free(t->ocsp);
	free(t);
}

int
tls_host_cert_name(const struct tls_host *t, enum tls_cert_name which, char *buf,
    size_t len)
{
	int n;

	if (t == NULL || t->leaf == NULL)
		return -1;
	n = tls_name_text(which == TLS_CERT_ISSUER ? X509_get_issuer_name(t->leaf) :
	    X509_get_subject_name(t->leaf), buf, len);
	if (n < 0)
		n = snprintf(buf, len, "?");
	return n;
}

const char *
tls_host_groups(const struct tls_host *t)
{
	return t != NULL ? t->groups : NULL;
}
