/*
 * acme_http.h: the ACME client's HTTPS (libcurl, blocking, one handle
 * reused so connections to the CA are kept alive), and reading the
 * answers: the headers ACME uses (Replay-Nonce, Location, Retry-After,
 * Content-Type) and RFC 7807 problem documents (jansson).
 *
 * Only https:// URLs are followed; redirects are not (ACME has none).
 * Every request has a time limit, so that a stuck CA cannot hold the
 * client (and a SIGTERM) for long.
 */
#ifndef TLSFRONT_ACME_HTTP_H
#define TLSFRONT_ACME_HTTP_H

#include <signal.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct acme_http;

/* One answer. Every pointer is malloc'ed or NULL; acme_resp_free frees
 * them and zeroes the struct. */
struct acme_resp {
	long status;		/* HTTP status; 0 if there was no answer */
	char *body;		/* NUL-terminated (may hold NULs before: use len) */
	size_t len;
	char *content_type;	/* without parameters, lower case */
	char *location;
	char *nonce;		/* Replay-Nonce */
	long retry_after;	/* seconds from now, -1 without Retry-After */
	char error[256];	/* why there was no answer (status 0) */
};

void acme_resp_free(struct acme_resp *r);

/* A client whose TLS trusts ca_file (PEM; NULL: the system's roots).
 * NULL on failure. curl_global_init must have been called. */
struct acme_http *acme_http_new(const char *ca_file);

/* NULL is a no-op. */
void acme_http_free(struct acme_http *h);

/* Abort any transfer (it fails as if it timed out) as soon as *flag is
 * non-zero, e.g. set by a SIGTERM handler; NULL: never. The flag is the
 * caller's and must outlive h. */
void acme_http_set_abort(struct acme_http *h, volatile sig_atomic_t *flag);

/*
 * GET, HEAD, or POST body with Content-Type application/jose+json, to url.
 * *r is filled (acme_resp_free it in every case). Returns 0 when an
 * answer came (whatever its status), -1 when none did (r->error says
 * why: DNS, connect, TLS, timeout, too big).
 */
int acme_http_get(struct acme_http *h, const char *url, struct acme_resp *r);
int acme_http_head(struct acme_http *h, const char *url, struct acme_resp *r);
int acme_http_post(struct acme_http *h, const char *url, const char *body,
    struct acme_resp *r);

/* Is the answer a problem document of type urn:ietf:params:acme:error:NAME
 * (name e.g. "badNonce")? 0 or 1. */
int acme_resp_is_problem(const struct acme_resp *r, const char *name);

/*
 * A one-line account of a failed answer for the log: "HTTP 400: TYPE:
 * DETAIL (subproblems: IDENT: TYPE: DETAIL; ...)", or "HTTP 503" when the
 * body is no problem document, or r->error without an answer. Every field
 * is checked and control characters are replaced, so a hostile body
 * yields a harmless line. malloc'ed; NULL only on OOM.
 */
char *acme_problem_text(const struct acme_resp *r);

/* "TYPE: DETAIL (subproblems: ...)" of a problem object found inside
 * another answer (an authorization's challenge "error", an order's
 * "error"), sanitised like acme_problem_text; "(no problem document)" if p
 * is not an object. malloc'ed; NULL only on OOM. */
char *acme_problem_obj_text(json_t *p);

/* Parse a Retry-After value: delta-seconds or an HTTP date, as seconds
 * from now (>= 0); -1 if it is neither. */
long acme_parse_retry_after(const char *v, time_t now);

/* An RFC 3339 date-time ("2025-01-02T03:04:05Z", fractions and offsets
 * allowed), as ARI's suggestedWindow has them, into *out. 0, or -1 if
 * malformed (or before 1970). */
int acme_parse_rfc3339(const char *s, time_t *out);

#endif
