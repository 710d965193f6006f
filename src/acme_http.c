/* acme_http.c: see acme_http.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "acme_http.h"

/* Certificate chains and ACME objects are a few KiB: anything far bigger
 * is a broken or hostile server, not something to keep in memory. */
#define HTTP_MAX_BODY (1 << 20)
#define HTTP_TIMEOUT_S 30L
#define HTTP_CONNECT_TIMEOUT_S 10L

struct acme_http {
	CURL *curl;
	char *ca_file;
	volatile sig_atomic_t *abort_flag;
};

void
acme_resp_free(struct acme_resp *r)
{
	free(r->body);
	free(r->content_type);
	free(r->location);
	free(r->nonce);
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
}

struct acme_http *
acme_http_new(const char *ca_file)
{
	struct acme_http *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	if ((h->curl = curl_easy_init()) == NULL ||
	    (ca_file != NULL && (h->ca_file = strdup(ca_file)) == NULL)) {
		acme_http_free(h);
		return NULL;
	}
	return h;
}

void
acme_http_free(struct acme_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h->ca_file);
	free(h);
}

void
acme_http_set_abort(struct acme_http *h, volatile sig_atomic_t *flag)
{
	h->abort_flag = flag;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct acme_http *h = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return h->abort_flag != NULL && *h->abort_flag;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct acme_resp *r = arg;
	size_t n = size * nmemb;
	char *b;

	if (n > HTTP_MAX_BODY || r->len + n > HTTP_MAX_BODY)
		return 0;	/* curl fails the transfer: CURLE_WRITE_ERROR */
	if ((b = realloc(r->body, r->len + n + 1)) == NULL)
		return 0;
	memcpy(b + r->len, p, n);
	r->len += n;
	b[r->len] = '\0';
	r->body = b;
	return n;
}

/* A header value without surrounding blanks, malloc'ed. */
static char *
header_value(const char *p, size_t n)
{
	char *v;

	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if ((v = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(v, p, n);
	v[n] = '\0';
	return v;
}

/* Replace *slot by a header's value (the last one counts). */
static void
set_header(char **slot, const char *p, size_t n)
{
	free(*slot);
	*slot = header_value(p, n);
}

static int
header_is(const char *line, size_t n, const char *name, size_t *vo)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return 0;
	*vo = k + 1;
	return 1;
}

static size_t
on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct acme_resp *r = arg;
	size_t n = size * nmemb, vo;

	/* a new status line (after a 100 Continue): forget what came before */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		free(r->content_type);
		free(r->location);
		free(r->nonce);
		r->content_type = r->location = r->nonce = NULL;
		r->retry_after = -1;
	} else if (header_is(line, n, "replay-nonce", &vo)) {
		set_header(&r->nonce, line + vo, n - vo);
	} else if (header_is(line, n, "location", &vo)) {
		set_header(&r->location, line + vo, n - vo);
	} else if (header_is(line, n, "content-type", &vo)) {
		set_header(&r->content_type, line + vo, n - vo);
		if (r->content_type != NULL) {
			char *c = r->content_type;
			c[strcspn(c, "; \t")] = '\0';
			for (; *c; c++)
				*c = (char)tolower((unsigned char)*c);
		}
	} else if (header_is(line, n, "retry-after", &vo)) {
		char *v = header_value(line + vo, n - vo);
		if (v != NULL)
			r->retry_after = acme_parse_retry_after(v, time(NULL));
		free(v);
	}
	return n;
}

long
acme_parse_retry_after(const char *v, time_t now)
{
	const char *p = v;
	time_t t;

	if (*p >= '0' && *p <= '9') {
		long s = 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (s > 100000000L)
				return -1;
			s = s * 10 + (*p - '0');
		}
		return *p == '\0' ? s : -1;
	}
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	return t > now ? (long)(t - now) : 0;
}

/* Two decimal digits at p (each checked before the next is read, so a
 * short string stops at its NUL). */
static int
digits2(const char *p, int *v)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return 0;
	*v = (p[0] - '0') * 10 + (p[1] - '0');
	return 1;
}

int
acme_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	long off = 0;
	const char *p;

	if (s == NULL || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
	    &n) != 6 || n == 0)
		return -1;
	p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && digits2(p + 1, &oh) && p[3] == ':' &&
	    digits2(p + 4, &om)) {
		off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = timegm(&tm) - off;
	return 0;
}

/* The common part of the three methods: fill r from one transfer. */
static int
perform(struct acme_http *h, const char *url, struct curl_slist *hdrs, struct acme_resp *r)
{
	CURL *c = h->curl;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tlsfront/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	if (h->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	rc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	if (rc != CURLE_OK) {
		if (r->error[0] == '\0')
			snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
		r->status = 0;
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

int
acme_http_get(struct acme_http *h, const char *url, struct acme_resp *r)
{
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	return perform(h, url, NULL, r);
}

int
acme_http_head(struct acme_http *h, const char *url, struct acme_resp *r)
{
	int rc;

	curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
	rc = perform(h, url, NULL, r);
	/* NOBODY sticks to the handle: the next GET would be a HEAD too */
	curl_easy_setopt(h->curl, CURLOPT_NOBODY, 0L);
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	return rc;
}

int
acme_http_post(struct acme_http *h, const char *url, const char *body, struct acme_resp *r)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/jose+json");
	int rc;

	if (hdrs == NULL) {
		memset(r, 0, sizeof(*r));
		r->retry_after = -1;
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	rc = perform(h, url, hdrs, r);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(hdrs);
	return rc;
}

static json_t *
problem_json(const struct acme_resp *r)
{
	json_t *j;

	if (r->body == NULL || r->content_type == NULL ||
	    strcmp(r->content_type, "application/problem+json") != 0)
		return NULL;
	/* JSON_ALLOW_NUL: a "\u0000" in a detail must not hide the type */
	j = json_loadb(r->body, r->len, JSON_ALLOW_NUL, NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static const char *
str_member(json_t *o, const char *k)
{
	json_t *v = json_is_object(o) ? json_object_get(o, k) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
acme_resp_is_problem(const struct acme_resp *r, const char *name)
{
	static const char prefix[] = "urn:ietf:params:acme:error:";
	json_t *j = problem_json(r);
	const char *t = str_member(j, "type");
	int yes = t != NULL && strncmp(t, prefix, sizeof(prefix) - 1) == 0 &&
	    strcmp(t + sizeof(prefix) - 1, name) == 0;

	json_decref(j);
	return yes;
}

/* Append s to buf (cap bytes), at most max bytes of it, control characters
 * as '?': server text goes into one log line. */
static void
put(char *buf, size_t cap, const char *s, size_t max)
{
	size_t o = strlen(buf);

	for (; s != NULL && *s && max > 0 && o + 1 < cap; s++, max--)
		buf[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	buf[o] = '\0';
}

/* "TYPE: DETAIL" of a problem object into buf. */
static void
put_problem(char *buf, size_t cap, json_t *p)
{
	const char *t = str_member(p, "type"), *d = str_member(p, "detail");

	put(buf, cap, t ? t : "(no type)", 200);
	if (d != NULL) {
		put(buf, cap, ": ", 2);
		put(buf, cap, d, 400);
	}
}

static void
put_subproblems(char *buf, size_t cap, json_t *j)
{
	json_t *subs = json_object_get(j, "subproblems"), *sp;
	size_t i;

	if (!json_is_array(subs) || json_array_size(subs) == 0)
		return;
	put(buf, cap, " (subproblems: ", 20);
	json_array_foreach(subs, i, sp) {
		json_t *id = json_is_object(sp) ? json_object_get(sp, "identifier") : NULL;
		const char *v = str_member(id, "value");
		if (i > 0)
			put(buf, cap, "; ", 2);
		if (i >= 10) {
			put(buf, cap, "...", 3);
			break;
		}
		if (v != NULL) {
			put(buf, cap, v, 256);
			put(buf, cap, ": ", 2);
		}
		put_problem(buf, cap, sp);
	}
	put(buf, cap, ")", 1);
}

char *
acme_problem_obj_text(json_t *p)
{
	size_t cap = 2048;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	buf[0] = '\0';
	if (!json_is_object(p)) {
		put(buf, cap, "(no problem document)", 30);
		return buf;
	}
	put_problem(buf, cap, p);
	put_subproblems(buf, cap, p);
	return buf;
}

char *
acme_problem_text(const struct acme_resp *r)
{
	size_t cap = 2048;
	char *buf = malloc(cap);
	json_t *j;

	if (buf == NULL)
		return NULL;
	if (r->status == 0) {
		snprintf(buf, cap, "no answer: ");
		put(buf, cap, r->error[0] ? r->error : "unknown error", sizeof(r->error));
		return buf;
	}
	snprintf(buf, cap, "HTTP %ld", r->status);
	if ((j = problem_json(r)) == NULL)
		return buf;
	put(buf, cap, ": ", 2);
	put_problem(buf, cap, j);
	put_subproblems(buf, cap, j);
	json_decref(j);
	return buf;
}
