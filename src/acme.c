/*
 * acme.c: the ACME client's loop (see acme.h): when each host needs a
 * certificate, and one order (RFC 8555 section 7) with the TLS-ALPN-01
 * challenge (RFC 8737), answered by whoever serves state_dir/challenges.
 *
 * Scheduling, per host: a check at start and then about hourly (with
 * jitter); a check reads certs/LABEL.pem and decides when it is due
 * (missing or no longer covering the names: now; otherwise ARI's window
 * where the CA offers it, else renew_before or a third of the lifetime).
 * A due host is ordered under the state_dir lock; a failed order backs off
 * (1 min doubling to 1 day, or longer if the CA says Retry-After).
 *
 * Everything is blocking, in this one process: the only waits are the
 * HTTP requests (each with a time limit, aborted on SIGTERM) and sleep(),
 * which also watches the notify pipe for its reader going away.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_http.h"
#include "acme_jws.h"
#include "acme_store.h"
#include "log.h"

#define CHECK_INTERVAL_S 3600	/* periodic check, +-10% */
#define BACKOFF_MIN_S 60

/* The first retry's delay: BACKOFF_MIN_S, or TLSFRONT_ACME_BACKOFF_MIN
 * seconds (undocumented: the tests' way to see a retry succeed soon). */
static long
backoff_min(void)
{
	const char *v = getenv("TLSFRONT_ACME_BACKOFF_MIN");
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return BACKOFF_MIN_S;
	n = strtol(v, &end, 10);
	return *end == '\0' && n >= 1 && n <= BACKOFF_MIN_S ? n : BACKOFF_MIN_S;
}
#define BACKOFF_MAX_S 86400
#define LOCK_BUSY_MIN_S 30	/* another instance orders: look again in 30-60 s */
#define NO_LOOP_HOLD_S 3600	/* renew_before >= lifetime: at most one order an hour */
#define RETRY_AFTER_MAX_S (7 * 86400)
#define POLL_DEADLINE_S 300	/* an authorization or order still pending after this fails */
#define DIRECTORY_TTL_S (12 * 3600)
#define BADNONCE_TRIES 5

static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

struct host_state {
	const struct acme_host *h;
	time_t next;		/* next check */
	long backoff;		/* current failure backoff, 0 after a success */
	time_t hold_until;	/* no order before (no-loop rule) */
	time_t ari_start, ari_end, ari_pick;	/* the window and our time in it */
	int warned_long;	/* renew_before >= lifetime already said */
};

struct client {
	const struct acme_config *cfg;
	struct acme_http *http;
	int notify_fd;
	int stop;		/* SIGTERM, or the notify pipe's reader is gone */
	json_t *dir;		/* the directory object */
	time_t dir_time;
	char *nonce;
	EVP_PKEY *account;
	char *kid;
	long retry_after;	/* of the last failed answer, -1 if none */
};

/* ---- small helpers ----------------------------------------------------- */

/* Uniform in [0, 1). */
static double
rnd01(void)
{
	uint32_t v;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)random();
	return v / 4294967296.0;
}

/* s seconds, +-10%, at least 1. */
static long
jitter(long s)
{
	long j = (long)((double)s * (0.9 + 0.2 * rnd01()));

	return j < 1 ? 1 : j;
}

static const char *
jstr(json_t *o, const char *k)
{
	json_t *v = json_is_object(o) ? json_object_get(o, k) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
is_stopping(struct client *c)
{
	if (stop_signal)
		c->stop = 1;
	return c->stop;
}

/*
 * Sleep s seconds, or less: returns early (and sets c->stop) on SIGTERM or
 * when the notify pipe's reader is gone. ppoll with SIGTERM unblocked only
 * inside it, so a signal between the check and the wait is not lost.
 * 0 if the sleep ran out, -1 if the client is to stop.
 */
static int
sleep_s(struct client *c, long s)
{
	sigset_t block, old, during;
	struct pollfd pfd = { .fd = c->notify_fd, .events = 0 };
	struct timespec ts = { .tv_sec = s < 0 ? 0 : s, .tv_nsec = 0 };
	int r;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (is_stopping(c)) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	during = old;
	sigdelset(&during, SIGTERM);
	sigdelset(&during, SIGINT);
	/* events 0: a pipe's write end reports POLLERR once the reader is gone */
	r = ppoll(&pfd, c->notify_fd >= 0 ? 1 : 0, &ts, &during);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (r > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
		log_info("acme: the main process is gone; stopping");
		c->stop = 1;
	}
	return is_stopping(c) ? -1 : 0;
}

/* One line to the main process; EPIPE means it is gone: stop. */
static void
notify(struct client *c, const char *what, const char *label, const char *result)
{
	char line[512];
	int n;

	if (c->notify_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %s%s%s\n", what, label, result ? " " : "",
	    result ? result : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	for (;;) {
		if (write(c->notify_fd, line, (size_t)n) == n)
			return;
		if (errno == EINTR)
			continue;
		if (errno == EPIPE) {
			log_info("acme: the main process is gone; stopping");
			c->stop = 1;
		} else {
			log_warn("acme: writing to the main process: %s", strerror(errno));
		}
		return;
	}
}

/* Log a failed answer with its problem document; remember Retry-After. */
static void
log_failure(struct client *c, const char *label, const char *what, const struct acme_resp *r)
{
	char *t = acme_problem_text(r);

	log_warn("acme: host %s: %s failed: %s", label, what, t ? t : "(out of memory)");
	free(t);
	if (r->retry_after >= 0)
		c->retry_after = r->retry_after;
}

/* ---- the directory, nonces, signed requests ---------------------------- */

static int
load_directory(struct client *c, const char *label)
{
	struct acme_resp r;
	json_t *d;
	time_t now = time(NULL);

	if (c->dir != NULL && now - c->dir_time < DIRECTORY_TTL_S)
		return 0;
	if (acme_http_get(c->http, c->cfg->directory, &r) != 0 || r.status != 200) {
		log_failure(c, label, "getting the directory", &r);
		acme_resp_free(&r);
		return -1;
	}
	d = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	acme_resp_free(&r);
	if (jstr(d, "newNonce") == NULL || jstr(d, "newAccount") == NULL ||
	    jstr(d, "newOrder") == NULL) {
		log_warn("acme: host %s: the directory %s is no ACME directory (no newNonce, "
		    "newAccount or newOrder)", label, c->cfg->directory);
		json_decref(d);
		return -1;
	}
	json_decref(c->dir);
	c->dir = d;
	c->dir_time = now;
	return 0;
}

static int
get_nonce(struct client *c, const char *label)
{
	struct acme_resp r;

	if (c->nonce != NULL)
		return 0;
	if (acme_http_head(c->http, jstr(c->dir, "newNonce"), &r) != 0 || r.nonce == NULL) {
		log_failure(c, label, "getting a nonce", &r);
		acme_resp_free(&r);
		return -1;
	}
	c->nonce = r.nonce;
	r.nonce = NULL;
	acme_resp_free(&r);
	return 0;
}

/*
 * POST payload (NULL: POST-as-GET) as a JWS to url, into *r (the caller
 * frees it). badNonce is retried with the nonce that came with it. 0 for
 * an answer below 400; -1 otherwise, logged as "what failed".
 */
static int
post(struct client *c, const char *label, const char *what, const char *url,
    const char *payload, struct acme_resp *r)
{
	for (int tries = 0;; tries++) {
		char *jws;
		int rc;

		memset(r, 0, sizeof(*r));
		r->retry_after = -1;
		if (is_stopping(c) || get_nonce(c, label) != 0)
			return -1;
		jws = acme_jws(c->account, c->kid, c->nonce, url, payload);
		free(c->nonce);	/* used, good or not */
		c->nonce = NULL;
		if (jws == NULL) {
			log_warn("acme: host %s: %s: cannot sign the request", label, what);
			return -1;
		}
		rc = acme_http_post(c->http, url, jws, r);
		free(jws);
		c->nonce = r->nonce;
		r->nonce = NULL;
		if (rc == 0 && r->status < 400)
			return 0;
		if (rc == 0 && acme_resp_is_problem(r, "badNonce") && tries + 1 < BADNONCE_TRIES) {
			log_debug("acme: host %s: %s: badNonce, again with the new nonce", label, what);
			acme_resp_free(r);
			continue;
		}
		log_failure(c, label, what, r);
		if (rc == 0 && acme_resp_is_problem(r, "accountDoesNotExist")) {
			/* registered again at the next order */
			free(c->kid);
			c->kid = NULL;
		}
		return -1;
	}
}

/* POST-as-GET url and parse the answer as a JSON object (*out). */
static int
post_get_json(struct client *c, const char *label, const char *what, const char *url,
    json_t **out, long *retry_after)
{
	struct acme_resp r;
	int rc = post(c, label, what, url, NULL, &r);

	*out = NULL;
	if (retry_after != NULL)
		*retry_after = r.retry_after;
	if (rc == 0) {
		*out = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
		if (!json_is_object(*out)) {
			log_warn("acme: host %s: %s: the answer is no JSON object", label, what);
			json_decref(*out);
			*out = NULL;
			rc = -1;
		}
	}
	acme_resp_free(&r);
	return rc;
}

/* ---- the account -------------------------------------------------------- */

/* 0 for a stored key, 1 for a new one (any stored account URL is not
 * its), -1 on failure. */
static int
load_or_make_account_key(struct client *c, const char *label, const char *path)
{
	size_t len;
	char *pem = acme_store_read(path, &len);

	if (pem != NULL) {
		c->account = acme_key_from_pem(pem, len);
		OPENSSL_cleanse(pem, len);
		free(pem);
		if (c->account == NULL)
			log_warn("acme: host %s: %s holds no usable key", label, path);
		return c->account ? 0 : -1;
	}
	if (errno != ENOENT) {
		log_warn("acme: host %s: reading %s: %s", label, path, strerror(errno));
		return -1;
	}
	/* P-256 whatever key_type says: that is for the hosts' keys; the account
	 * key only signs requests, and every CA takes ES256 */
	if ((c->account = acme_key_new(ACME_KEY_EC256)) == NULL ||
	    (pem = acme_key_pem(c->account)) == NULL) {
		log_warn("acme: host %s: cannot make an account key", label);
		return -1;
	}
	/* stored before the CA hears of it: a key the CA knows is never lost */
	if (acme_store_write(path, pem, strlen(pem)) != 0) {
		log_warn("acme: host %s: writing %s: %s", label, path, strerror(errno));
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
		return -1;
	}
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	log_info("acme: made a new account key %s", path);
	return 1;
}

/* The account URL stored for this directory, if any. */
static void
load_kid(struct client *c, const char *path)
{
	char *text = acme_store_read(path, NULL);
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	const char *url = jstr(j, "url"), *dir = jstr(j, "directory");

	if (url != NULL && dir != NULL && strcmp(dir, c->cfg->directory) == 0)
		c->kid = strdup(url);
	json_decref(j);
	free(text);
}

static int
register_account(struct client *c, const char *label, const char *path)
{
	json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1), *stored = NULL;
	char *payload = NULL, *text = NULL;
	struct acme_resp r = { .retry_after = -1 };
	int rc = -1;

	if (p == NULL)
		goto out;
	if (c->cfg->contact != NULL &&
	    json_object_set_new(p, "contact", json_pack("[s]", c->cfg->contact)) != 0)
		goto out;
	if ((payload = json_dumps(p, JSON_COMPACT)) == NULL)
		goto out;
	if (post(c, label, "registering the account", jstr(c->dir, "newAccount"), payload, &r) != 0)
		goto out;
	if (r.location == NULL) {
		log_warn("acme: host %s: the CA gave the new account no URL (Location)", label);
		goto out;
	}
	stored = json_pack("{s:s, s:s}", "url", r.location, "directory", c->cfg->directory);
	if (stored == NULL || (text = json_dumps(stored, JSON_COMPACT)) == NULL)
		goto out;
	if (acme_store_write(path, text, strlen(text)) != 0) {
		log_warn("acme: host %s: writing %s: %s", label, path, strerror(errno));
		goto out;
	}
	if ((c->kid = strdup(r.location)) == NULL)
		goto out;
	log_info("acme: account %s registered with %s", c->kid, c->cfg->directory);
	rc = 0;
out:
	json_decref(stored);
	json_decref(p);
	free(text);
	free(payload);
	acme_resp_free(&r);
	return rc;
}

static int
ensure_account(struct client *c, const char *label)
{
	char kpath[PATH_MAX], jpath[PATH_MAX];

	if (c->account != NULL && c->kid != NULL)
		return 0;
	if (acme_store_account_path(c->cfg->state_dir, c->cfg->directory, "key", kpath,
	    sizeof(kpath)) == NULL ||
	    acme_store_account_path(c->cfg->state_dir, c->cfg->directory, "json", jpath,
	    sizeof(jpath)) == NULL) {
		log_warn("acme: host %s: state_dir path too long", label);
		return -1;
	}
	if (c->account == NULL) {
		int made = load_or_make_account_key(c, label, kpath);
		if (made < 0)
			return -1;
		if (made) {
			free(c->kid);	/* a URL stored beside a lost key is not this key's */
			c->kid = NULL;
		} else if (c->kid == NULL) {
			load_kid(c, jpath);
		}
	}
	/* a key in memory without a URL: the CA said accountDoesNotExist (or
	 * the registration failed): the stored URL is no good, register anew */
	if (c->kid != NULL)
		return 0;
	return register_account(c, label, jpath);
}

/* ---- one order ---------------------------------------------------------- */

/* The challenge files written for this order, removed at its end. */
struct challenges {
	char **paths;
	size_t n;
};

static void
challenge_forget(struct challenges *ch, const char *path)
{
	for (size_t i = 0; i < ch->n; i++)
		if (ch->paths[i] != NULL && strcmp(ch->paths[i], path) == 0) {
			acme_store_remove(path);
			free(ch->paths[i]);
			ch->paths[i] = NULL;
		}
}

static void
challenges_clear(struct challenges *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		if (ch->paths[i] != NULL)
			acme_store_remove(ch->paths[i]);
		free(ch->paths[i]);
	}
	free(ch->paths);
	ch->paths = NULL;
	ch->n = 0;
}

/* Is name one of the host's? (The CA's identifiers must be what we asked
 * for: they become file names under state_dir.) */
static int
host_has_name(const struct acme_host *h, const char *name)
{
	for (size_t i = 0; i < h->n_names; i++)
		if (strcasecmp(h->names[i], name) == 0)
			return 1;
	return 0;
}

static json_t *
find_tls_alpn(json_t *authz)
{
	json_t *chs = json_object_get(authz, "challenges"), *ch;
	size_t i;

	if (!json_is_array(chs))
		return NULL;
	json_array_foreach(chs, i, ch) {
		const char *t = jstr(ch, "type");
		if (t != NULL && strcmp(t, "tls-alpn-01") == 0)
			return ch;
	}
	return NULL;
}

/* Write challenges/NAME.pem for ch of authorization name (lower case).
 * *path receives the file's path (malloc'ed). */
static int
write_challenge(struct client *c, const char *label, const char *name, json_t *ch,
    char **path)
{
	char p[PATH_MAX], lower[256];
	char *ka = NULL, *pem = NULL;
	size_t i;
	int rc = -1;

	for (i = 0; name[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	lower[i] = '\0';
	if (acme_challenge_path(c->cfg->state_dir, lower, p, sizeof(p)) == NULL) {
		log_warn("acme: host %s: no challenge file for '%s'", label, lower);
		return -1;
	}
	if ((ka = acme_key_authz(jstr(ch, "token"), c->account)) == NULL) {
		log_warn("acme: host %s: %s: the challenge has no valid token", label, lower);
		goto out;
	}
	if ((pem = acme_challenge_pem(lower, ka)) == NULL) {
		log_warn("acme: host %s: %s: cannot make the challenge certificate", label, lower);
		goto out;
	}
	if (acme_store_write(p, pem, strlen(pem)) != 0) {
		log_warn("acme: host %s: writing %s: %s", label, p, strerror(errno));
		goto out;
	}
	if ((*path = strdup(p)) == NULL) {
		acme_store_remove(p);
		goto out;
	}
	rc = 0;
out:
	free(pem);
	free(ka);
	return rc;
}

/*
 * One authorization: if pending, write the challenge file, then tell the
 * CA to validate (in that order: the CA may connect at once). Its URL goes
 * into pending[] to be polled.
 */
static int
start_authz(struct client *c, const struct acme_host *h, const char *url,
    struct challenges *ch, char **pending_path)
{
	json_t *a = NULL, *tc;
	const char *status, *name, *curl_, *cstatus;
	struct acme_resp r;
	int rc = -1;

	*pending_path = NULL;
	if (post_get_json(c, h->label, "getting an authorization", url, &a, NULL) != 0)
		return -1;
	status = jstr(a, "status");
	name = jstr(json_object_get(a, "identifier"), "value");
	if (status == NULL || name == NULL || !host_has_name(h, name)) {
		log_warn("acme: host %s: authorization %s: no status, or not one of our names",
		    h->label, url);
		goto out;
	}
	if (strcmp(status, "valid") == 0) {
		rc = 0;	/* validated before (authorizations are reused) */
		goto out;
	}
	if (strcmp(status, "pending") != 0) {
		log_warn("acme: host %s: authorization for %s is %s", h->label, name, status);
		goto out;
	}
	if ((tc = find_tls_alpn(a)) == NULL || (curl_ = jstr(tc, "url")) == NULL) {
		log_warn("acme: host %s: the CA offers no tls-alpn-01 challenge for %s", h->label,
		    name);
		goto out;
	}
	if (write_challenge(c, h->label, name, tc, pending_path) != 0)
		goto out;
	ch->paths[ch->n++] = strdup(*pending_path);
	cstatus = jstr(tc, "status");
	/* already "processing": someone (an earlier try of ours) asked for it */
	if (cstatus == NULL || strcmp(cstatus, "pending") == 0) {
		if (post(c, h->label, "answering the challenge", curl_, "{}", &r) != 0) {
			acme_resp_free(&r);
			goto out;
		}
		acme_resp_free(&r);
	}
	log_info("acme: host %s: tls-alpn-01 challenge for %s ready", h->label, name);
	rc = 0;
out:
	json_decref(a);
	return rc;
}

/* How long to wait before polling again: the CA's Retry-After, else 1 s,
 * at most 30 s (never past the poll deadline anyway). */
static long
poll_wait(long retry_after)
{
	if (retry_after < 1)
		return 1;
	return retry_after > 30 ? 30 : retry_after;
}

/* Poll an authorization until it is no longer pending. */
static int
await_authz(struct client *c, const struct acme_host *h, const char *url, const char *path,
    struct challenges *ch)
{
	time_t deadline = time(NULL) + POLL_DEADLINE_S;

	for (;;) {
		json_t *a;
		long ra;
		const char *status;
		char *why;

		if (post_get_json(c, h->label, "polling an authorization", url, &a, &ra) != 0)
			return -1;
		status = jstr(a, "status");
		if (status != NULL && strcmp(status, "valid") == 0) {
			json_decref(a);
			challenge_forget(ch, path);
			return 0;
		}
		if (status == NULL || strcmp(status, "pending") != 0) {
			why = acme_problem_obj_text(json_object_get(find_tls_alpn(a), "error"));
			log_warn("acme: host %s: authorization for %s is %s: %s", h->label,
			    jstr(json_object_get(a, "identifier"), "value") ?
			    jstr(json_object_get(a, "identifier"), "value") : "?",
			    status ? status : "(no status)", why ? why : "");
			free(why);
			json_decref(a);
			challenge_forget(ch, path);
			return -1;
		}
		json_decref(a);
		if (time(NULL) >= deadline) {
			log_warn("acme: host %s: authorization still pending after %d s", h->label,
			    POLL_DEADLINE_S);
			return -1;
		}
		if (sleep_s(c, poll_wait(ra)) != 0)
			return -1;
	}
}

/* Poll the order while its status is one of the waiting ones; *order is
 * replaced by the newest state. */
static int
await_order(struct client *c, const struct acme_host *h, const char *url, json_t **order,
    const char *wait1, const char *wait2)
{
	time_t deadline = time(NULL) + POLL_DEADLINE_S;
	long ra = -1;

	for (;;) {
		const char *st = jstr(*order, "status");
		json_t *o;

		if (st == NULL)
			break;
		if (strcmp(st, wait1) != 0 && strcmp(st, wait2) != 0)
			return 0;
		if (time(NULL) >= deadline) {
			log_warn("acme: host %s: the order is still %s after %d s", h->label, st,
			    POLL_DEADLINE_S);
			return -1;
		}
		if (sleep_s(c, poll_wait(ra)) != 0)
			return -1;
		if (post_get_json(c, h->label, "polling the order", url, &o, &ra) != 0)
			return -1;
		json_decref(*order);
		*order = o;
	}
	log_warn("acme: host %s: the order has no status", h->label);
	return -1;
}

/* newOrder; *order_url and *order are the caller's. */
static int
new_order(struct client *c, const struct acme_host *h, const char *replaces, char **order_url,
    json_t **order)
{
	json_t *ids = json_array(), *p = NULL;
	char *payload = NULL;
	struct acme_resp r = { .retry_after = -1 };
	int rc = -1;

	*order_url = NULL;
	*order = NULL;
	for (size_t i = 0; ids != NULL && i < h->n_names; i++)
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns", "value",
		    h->names[i]));
	if (ids == NULL || (p = json_pack("{s:O}", "identifiers", ids)) == NULL)
		goto out;
	if (replaces != NULL && json_object_set_new(p, "replaces", json_string(replaces)) != 0)
		goto out;
	if ((payload = json_dumps(p, JSON_COMPACT)) == NULL)
		goto out;
	if (post(c, h->label, "creating the order", jstr(c->dir, "newOrder"), payload, &r) != 0)
		goto out;
	*order = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	if (r.location == NULL || !json_is_object(*order) ||
	    !json_is_array(json_object_get(*order, "authorizations")) ||
	    jstr(*order, "finalize") == NULL) {
		log_warn("acme: host %s: the new order lacks its URL, authorizations or finalize",
		    h->label);
		goto out;
	}
	if ((*order_url = strdup(r.location)) == NULL)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		json_decref(*order);
		*order = NULL;
	}
	acme_resp_free(&r);
	free(payload);
	json_decref(p);
	json_decref(ids);
	return rc;
}

/* Every authorization of the order: start them all (so that the CA
 * validates them in parallel), then wait for each. */
static int
authorize(struct client *c, const struct acme_host *h, json_t *order, struct challenges *ch)
{
	json_t *auths = json_object_get(order, "authorizations"), *u;
	size_t n = json_array_size(auths), i;
	char **pending = calloc(n ? n : 1, sizeof(*pending));
	int rc = -1;

	ch->paths = calloc(n ? n : 1, sizeof(*ch->paths));
	if (pending == NULL || ch->paths == NULL)
		goto out;
	json_array_foreach(auths, i, u) {
		if (!json_is_string(u) ||
		    start_authz(c, h, json_string_value(u), ch, &pending[i]) != 0)
			goto out;
	}
	json_array_foreach(auths, i, u) {
		if (pending[i] != NULL &&
		    await_authz(c, h, json_string_value(u), pending[i], ch) != 0)
			goto out;
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(pending[i]);
	free(pending);
	return rc;
}

static int
finalize(struct client *c, const struct acme_host *h, json_t *order, EVP_PKEY *key)
{
	unsigned char *der = NULL;
	size_t len;
	char *b64 = NULL, *payload = NULL;
	json_t *p = NULL;
	struct acme_resp r = { .retry_after = -1 };
	int rc = -1;

	if (acme_csr_der(key, h->names, h->n_names, &der, &len) != 0 ||
	    (b64 = acme_b64url(der, len)) == NULL ||
	    (p = json_pack("{s:s}", "csr", b64)) == NULL ||
	    (payload = json_dumps(p, JSON_COMPACT)) == NULL) {
		log_warn("acme: host %s: cannot make the CSR", h->label);
		goto out;
	}
	if (post(c, h->label, "finalizing the order", jstr(order, "finalize"), payload, &r) != 0)
		goto out;
	rc = 0;
out:
	acme_resp_free(&r);
	free(payload);
	json_decref(p);
	free(b64);
	OPENSSL_free(der);
	return rc;
}

/* The leaf of a PEM chain is for key and covers every name. */
static int
chain_fits(const struct acme_host *h, const char *pem, size_t len, EVP_PKEY *key)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int ok = x != NULL && X509_check_private_key(x, key) == 1;

	for (size_t i = 0; ok && i < h->n_names; i++)
		ok = X509_check_host(x, h->names[i], 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
	X509_free(x);
	BIO_free(b);
	return ok;
}

/* Download the certificate and store key + chain as certs/LABEL.pem. */
static int
store_certificate(struct client *c, const struct acme_host *h, const char *url, EVP_PKEY *key)
{
	struct acme_resp r;
	char path[PATH_MAX], *kpem = NULL, *all = NULL;
	size_t klen, n;
	int rc = -1;

	if (post(c, h->label, "downloading the certificate", url, NULL, &r) != 0)
		goto out;
	if (r.body == NULL || r.len > 512 * 1024 || memchr(r.body, '\0', r.len) != NULL ||
	    !chain_fits(h, r.body, r.len, key)) {
		log_warn("acme: host %s: the certificate from %s is unreadable, not for our key, "
		    "or misses a name", h->label, url);
		goto out;
	}
	if (acme_cert_path(c->cfg, h->label, path, sizeof(path)) == NULL ||
	    (kpem = acme_key_pem(key)) == NULL)
		goto out;
	klen = strlen(kpem);
	n = klen + r.len + 2;
	if ((all = malloc(n)) == NULL)
		goto out;
	memcpy(all, kpem, klen);
	memcpy(all + klen, r.body, r.len);
	n = klen + r.len;
	if (acme_store_write(path, all, n) != 0) {
		log_warn("acme: host %s: writing %s: %s", h->label, path, strerror(errno));
		goto out;
	}
	log_info("acme: host %s: new certificate stored in %s", h->label, path);
	rc = 0;
out:
	if (all != NULL) {
		OPENSSL_cleanse(all, n);
		free(all);
	}
	if (kpem != NULL) {
		OPENSSL_cleanse(kpem, strlen(kpem));
		free(kpem);
	}
	acme_resp_free(&r);
	return rc;
}

/* One whole order for h; replaces is the RFC 9773 certID of the
 * certificate it renews (or NULL). 0 when certs/LABEL.pem is new. */
static int
order(struct client *c, const struct acme_host *h, const char *replaces)
{
	struct challenges ch = { 0 };
	EVP_PKEY *key = NULL;
	json_t *o = NULL;
	char *url = NULL;
	const char *cert;
	int rc = -1;

	if (acme_store_mkdirs(c->cfg->state_dir) != 0) {
		log_warn("acme: host %s: cannot make %s: %s", h->label, c->cfg->state_dir,
		    strerror(errno));
		return -1;
	}
	if (load_directory(c, h->label) != 0 || ensure_account(c, h->label) != 0)
		return -1;
	if (new_order(c, h, replaces, &url, &o) != 0) {
		if (replaces == NULL || is_stopping(c))
			return -1;
		/* the CA may refuse the replacement (already replaced, unknown to it):
		 * a plain order still gets the host its certificate */
		log_info("acme: host %s: ordering again without \"replaces\"", h->label);
		if (new_order(c, h, NULL, &url, &o) != 0)
			return -1;
	}
	log_info("acme: host %s: order %s", h->label, url);
	if (authorize(c, h, o, &ch) != 0)
		goto out;
	if (await_order(c, h, url, &o, "pending", "pending") != 0)
		goto out;
	if ((key = acme_key_new(c->cfg->key_type)) == NULL) {
		log_warn("acme: host %s: cannot make the host's key", h->label);
		goto out;
	}
	if (strcmp(jstr(o, "status"), "ready") == 0 && finalize(c, h, o, key) != 0)
		goto out;
	/* finalize's answer is the order too, but polling it is simpler and
	 * does not trust a body we did not ask for */
	json_decref(o);
	if (post_get_json(c, h->label, "polling the order", url, &o, NULL) != 0)
		goto out;
	if (await_order(c, h, url, &o, "processing", "ready") != 0)
		goto out;
	if (strcmp(jstr(o, "status"), "valid") != 0 || (cert = jstr(o, "certificate")) == NULL) {
		char *why = acme_problem_obj_text(json_object_get(o, "error"));
		log_warn("acme: host %s: the order is %s: %s", h->label,
		    jstr(o, "status") ? jstr(o, "status") : "(no status)", why ? why : "");
		free(why);
		goto out;
	}
	rc = store_certificate(c, h, cert, key);
out:
	challenges_clear(&ch);
	EVP_PKEY_free(key);
	json_decref(o);
	free(url);
	return rc;
}

/* ---- when to order ------------------------------------------------------ */

/* ARI: our time in the CA's suggested window, or -1 (no ARI, or it failed:
 * the caller falls back to renew_before). */
static time_t
ari_time(struct client *c, struct host_state *hs, const struct acme_cert_info *info)
{
	const char *base;
	char *id = NULL, *url = NULL;
	struct acme_resp r = { .retry_after = -1 };
	json_t *j = NULL, *w;
	time_t start, end, t = -1;
	size_t n;

	if (load_directory(c, hs->h->label) != 0 || (base = jstr(c->dir, "renewalInfo")) == NULL)
		return -1;
	if ((id = acme_ari_id(info->aki, info->aki_len, info->serial, info->serial_len)) == NULL)
		return -1;
	n = strlen(base) + strlen(id) + 2;
	if ((url = malloc(n)) == NULL)
		goto out;
	snprintf(url, n, "%s%s%s", base, base[0] && base[strlen(base) - 1] == '/' ? "" : "/", id);
	if (acme_http_get(c->http, url, &r) != 0 || r.status != 200) {
		log_failure(c, hs->h->label, "getting renewal information", &r);
		goto out;
	}
	j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	w = json_object_get(j, "suggestedWindow");
	if (acme_parse_rfc3339(jstr(w, "start"), &start) != 0 ||
	    acme_parse_rfc3339(jstr(w, "end"), &end) != 0 || end < start) {
		log_warn("acme: host %s: renewal information without a valid suggestedWindow",
		    hs->h->label);
		goto out;
	}
	if (start != hs->ari_start || end != hs->ari_end) {
		/* a new window: a new random time in it, kept while it stays */
		hs->ari_start = start;
		hs->ari_end = end;
		hs->ari_pick = start + (time_t)((double)(end - start) * rnd01());
		log_info("acme: host %s: the CA suggests renewing between %lld and %lld",
		    hs->h->label, (long long)start, (long long)end);
	}
	t = hs->ari_pick;
out:
	json_decref(j);
	acme_resp_free(&r);
	free(url);
	free(id);
	return t;
}

/* When the stored certificate should be renewed. */
static time_t
renew_time(struct client *c, struct host_state *hs, const struct acme_cert_info *info)
{
	time_t life = info->not_after - info->not_before, by_config, ari;
	unsigned long long rb = c->cfg->renew_before_s;

	if (rb != 0 && rb >= (unsigned long long)(life > 0 ? life : 0) && !hs->warned_long) {
		log_warn("acme: host %s: renew_before (%llu s) is not shorter than the "
		    "certificate's lifetime (%lld s): renewing it once now, then at most once an "
		    "hour", hs->h->label, rb, (long long)life);
		hs->warned_long = 1;
	}
	if (rb != 0)
		by_config = rb >= (unsigned long long)info->not_after ? 0 :
		    info->not_after - (time_t)rb;
	else
		by_config = info->not_after - life / 3;
	ari = ari_time(c, hs, info);
	if (ari < 0)
		return by_config;
	/* ARI decides, but an explicit renew_before is a promise not to wait longer */
	return rb != 0 && by_config < ari ? by_config : ari;
}

/*
 * Read certs/LABEL.pem: *due is when to order (now if missing, unusable or
 * not covering the names). *replaces gets the certID of a usable stored
 * certificate where the CA offers ARI (malloc'ed, or NULL).
 */
static void
assess(struct client *c, struct host_state *hs, time_t now, time_t *due, char **replaces)
{
	char path[PATH_MAX];
	struct acme_cert_info info;

	*due = now;
	if (replaces != NULL)
		*replaces = NULL;
	if (acme_cert_path(c->cfg, hs->h->label, path, sizeof(path)) == NULL)
		return;
	if (acme_store_cert_info(path, hs->h->names, hs->h->n_names, &info) != 0) {
		if (errno != ENOENT)
			log_warn("acme: host %s: %s is unreadable (%s): ordering a new one",
			    hs->h->label, path, strerror(errno));
		return;
	}
	if (!info.covers || !info.key_matches) {
		log_info("acme: host %s: %s %s: ordering a new one", hs->h->label, path,
		    info.covers ? "has a key that is not its certificate's" :
		    "does not cover all the host's names");
	} else {
		*due = renew_time(c, hs, &info);
		if (replaces != NULL && c->dir != NULL && jstr(c->dir, "renewalInfo") != NULL)
			*replaces = acme_ari_id(info.aki, info.aki_len, info.serial, info.serial_len);
	}
	acme_cert_info_free(&info);
}

static void
order_failed(struct client *c, struct host_state *hs, time_t now)
{
	long wait;

	hs->backoff = hs->backoff ? hs->backoff * 2 : backoff_min();
	if (hs->backoff > BACKOFF_MAX_S)
		hs->backoff = BACKOFF_MAX_S;
	wait = jitter(hs->backoff);
	if (c->retry_after > wait)	/* rateLimited and friends */
		wait = c->retry_after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : c->retry_after;
	hs->next = now + wait;
	log_warn("acme: host %s: the order failed; next try in %ld s", hs->h->label, wait);
}

static void
order_done(struct client *c, struct host_state *hs)
{
	time_t now = time(NULL), due;

	hs->backoff = 0;
	hs->ari_start = hs->ari_end = hs->ari_pick = 0;
	assess(c, hs, now, &due, NULL);
	if (due <= now) {
		/* the new certificate is due already (renew_before >= its lifetime):
		 * ordering again now would loop */
		log_warn("acme: host %s: the new certificate is already due for renewal; "
		    "not ordering again before an hour", hs->h->label);
		hs->hold_until = now + NO_LOOP_HOLD_S;
	}
	hs->next = now + jitter(CHECK_INTERVAL_S);
	if (due > now && due < hs->next)
		hs->next = due;
	if (hs->hold_until > hs->next)
		hs->next = hs->hold_until;
}

/* Due: take the lock, look again (another instance may have renewed it
 * meanwhile), order. */
static void
order_locked(struct client *c, struct host_state *hs, time_t now)
{
	int lock = acme_store_lock(c->cfg->state_dir), ok;
	time_t due;
	char *replaces = NULL;

	if (lock < 0) {
		if (errno == EWOULDBLOCK) {
			hs->next = now + LOCK_BUSY_MIN_S + (time_t)(LOCK_BUSY_MIN_S * rnd01());
			log_info("acme: host %s: another instance is ordering; looking again in "
			    "%lld s", hs->h->label, (long long)(hs->next - now));
		} else {
			log_warn("acme: host %s: cannot take %s/lock: %s", hs->h->label,
			    c->cfg->state_dir, strerror(errno));
			order_failed(c, hs, now);
		}
		return;
	}
	assess(c, hs, now, &due, &replaces);
	if (due > now) {
		acme_store_unlock(lock);
		free(replaces);
		hs->next = now;	/* renewed meanwhile: schedule from the new one */
		return;
	}
	log_info("acme: host %s: ordering a certificate for %zu name(s)%s", hs->h->label,
	    hs->h->n_names, replaces ? " (renewal)" : "");
	c->retry_after = -1;
	ok = order(c, hs->h, replaces) == 0;
	acme_store_unlock(lock);
	free(replaces);
	if (is_stopping(c))
		return;
	if (ok)
		notify(c, "cert", hs->h->label, NULL);
	notify(c, "order", hs->h->label, ok ? "ok" : "error");
	if (ok)
		order_done(c, hs);
	else
		order_failed(c, hs, time(NULL));
}

static void
check_host(struct client *c, struct host_state *hs)
{
	time_t now = time(NULL), due;

	assess(c, hs, now, &due, NULL);
	if (due > now) {
		hs->next = now + jitter(CHECK_INTERVAL_S);
		if (due < hs->next)
			hs->next = due;
		return;
	}
	if (now < hs->hold_until) {
		hs->next = hs->hold_until;
		return;
	}
	order_locked(c, hs, now);
}

/* ---- the loop ----------------------------------------------------------- */

static void
client_free(struct client *c)
{
	acme_http_free(c->http);
	json_decref(c->dir);
	free(c->nonce);
	free(c->kid);
	EVP_PKEY_free(c->account);
}

static void
signals_setup(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: waits end at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;	/* a gone reader is EPIPE, not death */
	sigaction(SIGPIPE, &sa, NULL);
	/* whatever the parent had blocked: a SIGTERM must reach on_stop_signal
	 * during transfers too (acme_http_set_abort) */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int
acme_run(const struct acme_config *cfg, const struct acme_host *hosts, size_t n,
    int notify_fd)
{
	struct client c = { .cfg = cfg, .notify_fd = notify_fd, .retry_after = -1 };
	struct host_state *hs = calloc(n ? n : 1, sizeof(*hs));
	int rc = 1;

	stop_signal = 0;
	signals_setup();
	if (hs == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("acme: cannot start the ACME client (out of memory)");
		free(hs);
		return 1;
	}
	if ((c.http = acme_http_new(cfg->directory_ca)) == NULL) {
		log_error("acme: cannot start the ACME client (libcurl)");
		goto out;
	}
	acme_http_set_abort(c.http, &stop_signal);
	if (acme_store_mkdirs(cfg->state_dir) != 0)
		log_warn("acme: cannot make %s: %s (trying again at each order)", cfg->state_dir,
		    strerror(errno));
	for (size_t i = 0; i < n; i++) {
		hs[i].h = &hosts[i];
		hs[i].next = 0;	/* checked at start */
	}
	while (!is_stopping(&c)) {
		time_t now = time(NULL), next = now + CHECK_INTERVAL_S;

		for (size_t i = 0; i < n && !is_stopping(&c); i++)
			if (hs[i].next <= now)
				check_host(&c, &hs[i]);
		for (size_t i = 0; i < n; i++)
			if (hs[i].next < next)
				next = hs[i].next;
		now = time(NULL);
		if (sleep_s(&c, next > now ? (long)(next - now) : 0) != 0)
			break;
	}
	rc = 0;
out:
	client_free(&c);
	free(hs);
	curl_global_cleanup();
	return rc;
}
