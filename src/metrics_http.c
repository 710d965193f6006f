/* metrics_http.c: see metrics_http.h. */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"

#define TEXT_FORMAT "text/plain; version=0.0.4; charset=utf-8"
#define ACCEPT_RETRY_MS 250

struct metrics_http {
	struct event_base *base;
	const struct stats *st;
	struct evhttp *http;
	struct evconnlistener *listener;	/* NULL: not listening */
	struct evhttp_bound_socket *bound;	/* evhttp's handle of listener */
	int fd;					/* listener's socket, -1: none */
	struct addr addr;			/* where it listens */
	struct event *retry;			/* accepting again after an error */
	time_t accept_err_logged;
	size_t answering;			/* metrics answers going out */
};

/* A metrics answer going out: it counts against METRICS_HTTP_MAX_ANSWERS
 * until its connection closes, and has a deadline of its own. */
struct answer {
	struct metrics_http *mh;
	struct evhttp_connection *conn;
	struct event *deadline;
};

static const struct timeval read_timeout = {
	METRICS_HTTP_READ_TIMEOUT_MS / 1000, METRICS_HTTP_READ_TIMEOUT_MS % 1000 * 1000
};
static const struct timeval write_timeout = {
	METRICS_HTTP_WRITE_TIMEOUT_MS / 1000, METRICS_HTTP_WRITE_TIMEOUT_MS % 1000 * 1000
};

/* ---- answers ------------------------------------------------------------ */

/* st summed and written out: malloc'd, or NULL. */
static char *
metrics_text(const struct stats *st, size_t *len)
{
	struct stats_sum sum;
	char *text = NULL;

	if (stats_sum(st, &sum) == 0)
		text = metrics_render(&sum, len);
	stats_sum_free(&sum);
	return text;
}

static void
free_text(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);	/* ours: libevent hands it back const */
}

/*
 * Send body (the caller still frees the evbuffer, now empty) as the answer
 * to req, with its length: a HEAD request gets the headers alone. Every
 * answer ends its connection.
 */
static void
send_answer(struct evhttp_request *req, int code, const char *reason, const char *type,
    struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	size_t len = evbuffer_get_length(body);
	char n[32];

	snprintf(n, sizeof(n), "%zu", len);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Content-Length", n);
	evhttp_add_header(h, "Connection", "close");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		evbuffer_drain(body, len);
	evhttp_send_reply(req, code, reason, body);
}

/* A short answer: its status line as the body. */
static void
send_status(struct evhttp_request *req, int code, const char *reason)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL || evbuffer_add_printf(body, "%d %s\n", code, reason) < 0) {
		if (body != NULL)
			evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	send_answer(req, code, reason, "text/plain; charset=utf-8", body);
	evbuffer_free(body);
}

/* The connection of an answer is closing (answer sent, client gone, or
 * the deadline below): the answer no longer counts. */
static void
answer_closed(struct evhttp_connection *conn, void *arg)
{
	struct answer *a = arg;

	/* once only, however evhttp gets here */
	evhttp_connection_set_closecb(conn, NULL, NULL);
	a->mh->answering--;
	event_free(a->deadline);
	free(a);
}

static void
answer_expired(evutil_socket_t fd, short what, void *arg)
{
	struct answer *a = arg;

	(void)fd;
	(void)what;
	evhttp_connection_free(a->conn);	/* calls answer_closed */
}

static void
send_metrics(struct metrics_http *mh, struct evhttp_request *req)
{
	struct answer *a = calloc(1, sizeof(*a));
	struct evbuffer *body = evbuffer_new();
	char *text = NULL;
	size_t len = 0;

	if (a == NULL || body == NULL ||
	    (a->deadline = evtimer_new(mh->base, answer_expired, a)) == NULL ||
	    (text = metrics_text(mh->st, &len)) == NULL)
		goto err;
	/* the text is handed over, not copied: it can be megabytes */
	if (evbuffer_add_reference(body, text, len, free_text, NULL) != 0)
		goto err;
	text = NULL;
	a->mh = mh;
	a->conn = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(a->conn, answer_closed, a);
	/* evhttp's timeouts are for silence, the deadline for the whole */
	evhttp_connection_set_timeout_tv(a->conn, &write_timeout);
	evtimer_add(a->deadline, &write_timeout);
	mh->answering++;
	send_answer(req, 200, "OK", TEXT_FORMAT, body);
	evbuffer_free(body);
	return;
err:
	free(text);
	if (body != NULL)
		evbuffer_free(body);
	if (a != NULL && a->deadline != NULL)
		event_free(a->deadline);
	free(a);
	send_status(req, 500, "Internal Server Error");
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct metrics_http *mh = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		send_status(req, 405, "Method Not Allowed");
	} else if (path == NULL || strcmp(path, "/metrics") != 0) {
		send_status(req, 404, "Not Found");
	} else if (mh->answering >= METRICS_HTTP_MAX_ANSWERS) {
		/* each answer holds a whole copy of the text until it is taken */
		send_status(req, 503, "Service Unavailable");
	} else {
		send_metrics(mh, req);
	}
}

/* ---- the listening socket ----------------------------------------------- */

/* The server whose listener accept_error is about: evhttp_bind_listener
 * makes the listener's callback argument its own (the struct evhttp), and a
 * process has one metrics server. */
static struct metrics_http *listening;

/* Out of descriptors (or another accept error): libevent's listener would
 * try again at once, forever, logging each time; pause it instead. */
static void
accept_error(struct evconnlistener *lev, void *arg)
{
	struct metrics_http *mh = listening;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, ACCEPT_RETRY_MS * 1000 };
	time_t now = time(NULL);

	(void)arg;
	if (mh == NULL || mh->listener != lev)
		return;
	evconnlistener_disable(lev);
	if (now - mh->accept_err_logged >= 10) {
		log_warn("metrics: accept on %s: %s; pausing for %d ms", mh->addr.text,
		    strerror(err), ACCEPT_RETRY_MS);
		mh->accept_err_logged = now;
	}
	evtimer_add(mh->retry, &tv);
}

static void
accept_again(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *mh = arg;

	(void)fd;
	(void)what;
	if (mh->listener != NULL)
		evconnlistener_enable(mh->listener);
}

/* A unix socket path that nobody listens on any more may be replaced. */
static int
unix_path_free(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat sb;
	int fd, rc;

	if (lstat(sun->sun_path, &sb) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(sb.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sun, len);
	close(fd);
	if (rc == 0 || errno != ECONNREFUSED) {
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(sun->sun_path);
}

static int
open_socket(const struct addr *a)
{
	int fd, one = 1, saved;

	if (a->ss.ss_family == AF_UNIX &&
	    unix_path_free((const struct sockaddr_un *)&a->ss, a->len) != 0)
		return -1;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (a->ss.ss_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto err;
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto err;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 64) != 0)
		goto err;
	return fd;
err:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Close the listening socket, unlinking a unix one. */
static void
stop_listening(struct metrics_http *mh)
{
	if (mh->bound == NULL)
		return;
	evhttp_del_accept_socket(mh->http, mh->bound);	/* frees the listener, closes fd */
	if (mh->addr.ss.ss_family == AF_UNIX)
		(void)unlink(((struct sockaddr_un *)&mh->addr.ss)->sun_path);
	mh->bound = NULL;
	mh->listener = NULL;
	mh->fd = -1;
	if (listening == mh)
		listening = NULL;
	memset(&mh->addr, 0, sizeof(mh->addr));
}

struct metrics_http *
metrics_http_new(struct event_base *base, const struct stats *st)
{
	struct metrics_http *mh = calloc(1, sizeof(*mh));

	if (mh == NULL)
		goto err;
	mh->base = base;
	mh->st = st;
	mh->fd = -1;
	if ((mh->http = evhttp_new(base)) == NULL ||
	    (mh->retry = evtimer_new(base, accept_again, mh)) == NULL)
		goto err;
	/* every method reaches on_request, which answers 405 to most */
	evhttp_set_allowed_methods(mh->http, (ev_uint16_t)~0u);
	evhttp_set_timeout_tv(mh->http, &read_timeout);
	/* a scrape's head is a few hundred bytes; these bound what a client
	 * that sends its request a byte at a time can hold (and for how long) */
	evhttp_set_max_headers_size(mh->http, 4096);
	evhttp_set_max_body_size(mh->http, 4096);
	evhttp_set_gencb(mh->http, on_request, mh);
	return mh;
err:
	log_error("metrics: out of memory");
	metrics_http_free(mh);
	return NULL;
}

int
metrics_http_listen(struct metrics_http *mh, const struct addr *a)
{
	struct evconnlistener *lev;
	struct evhttp_bound_socket *bound;
	int fd;

	if (a->len == 0) {
		if (mh != NULL && mh->bound != NULL) {
			log_info("metrics: no longer served on %s", mh->addr.text);
			stop_listening(mh);
		}
		return 0;
	}
	if (mh == NULL || mh->st == NULL) {
		log_error("stats_listen: metrics are unavailable (no shared memory)");
		return -1;
	}
	if (mh->bound != NULL && addr_equal(&mh->addr, a))
		return 0;
	if ((fd = open_socket(a)) < 0) {
		log_error("stats_listen: cannot listen on %s: %s%s%s", a->text, strerror(errno),
		    mh->bound ? "; metrics stay on " : "", mh->bound ? mh->addr.text : "");
		return -1;
	}
	/* backlog 0: listen() was called; -1 would make libevent call it again */
	if ((lev = evconnlistener_new(mh->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd)) ==
	    NULL) {
		close(fd);
		goto err;
	}
	if ((bound = evhttp_bind_listener(mh->http, lev)) == NULL) {
		evconnlistener_free(lev);	/* closes fd */
		goto err;
	}
	evconnlistener_set_error_cb(lev, accept_error);
	stop_listening(mh);
	mh->listener = lev;
	mh->bound = bound;
	mh->fd = fd;
	mh->addr = *a;
	listening = mh;
	log_info("metrics on %s", a->text);
	return 0;
err:
	if (a->ss.ss_family == AF_UNIX)
		(void)unlink(((const struct sockaddr_un *)&a->ss)->sun_path);
	log_error("stats_listen: out of memory%s%s", mh->bound ? "; metrics stay on " : "",
	    mh->bound ? mh->addr.text : "");
	return -1;
}

int
metrics_http_fd(const struct metrics_http *mh)
{
	return mh == NULL ? -1 : mh->fd;
}

void
metrics_http_free(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	if (mh->http != NULL) {
		stop_listening(mh);
		evhttp_free(mh->http);	/* closes every connection: answer_closed */
	}
	if (mh->retry != NULL)
		event_free(mh->retry);
	free(mh);
}
