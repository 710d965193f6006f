/*
 * test_metrics_http.c: the /metrics endpoint (metrics_http.c) in an event
 * loop of this process, over unix sockets in a temporary directory: the
 * answers to each kind of request, moving to another address (and keeping
 * the old one when the new fails), the limit of answers going out at once.
 * The test drives the loop between its own non-blocking reads and writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "metrics_http.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	struct event_base *base;
	struct stats *st;
	struct metrics_http *mh;
	struct host_config *hc;
	struct host *h;
	struct generation g;
};

/* A unix: address in the fixture's directory. */
static struct addr
unix_addr(const struct fixture *f, const char *name)
{
	struct addr a;
	struct sockaddr_un *sun = (struct sockaddr_un *)&a.ss;

	memset(&a, 0, sizeof(a));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", f->dir, name);
	a.len = (socklen_t)sizeof(*sun);
	snprintf(a.text, sizeof(a.text), "unix:%s", sun->sun_path);
	return a;
}

/* n hosts: the more, the longer the text (about 1.5 KB a host). */
static int
setup_hosts(void **state, size_t n)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_metrics_http"), 0);
	f->hc = calloc(n, sizeof(*f->hc));
	f->h = calloc(n, sizeof(*f->h));
	for (size_t i = 0; i < n; i++) {
		f->hc[i].label = malloc(32);
		snprintf(f->hc[i].label, 32, "host%05zu.example", i);
		f->h[i].cfg = &f->hc[i];
		f->h[i].not_after = 1800000000;
	}
	f->g.hosts = f->h;
	f->g.n_hosts = n;
	assert_non_null(f->base = event_base_new());
	assert_non_null(f->st = stats_new(2, n));
	assert_int_equal(stats_generation(f->st, &f->g), 0);
	assert_non_null(f->mh = metrics_http_new(f->base, f->st));
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_hosts(state, 2);
}

static int
setup_big(void **state)
{
	return setup_hosts(state, 2000);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	metrics_http_free(f->mh);
	event_base_free(f->base);
	stats_free(f->st);
	for (size_t i = 0; i < f->g.n_hosts; i++)
		free(f->hc[i].label);
	free(f->hc);
	free(f->h);
	assert_int_equal(unit_rmtree(f->dir), 0);
	free(f);
	return 0;
}

/* Run the loop for about ms milliseconds. */
static void
drive(struct fixture *f, int ms)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/* A client connected to a, with req sent (it fits in the socket buffer). */
static int
client(const struct addr *a, const char *req)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)&a->ss, a->len), 0);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	return fd;
}

/* Everything fd receives until the server closes it, the loop running
 * meanwhile; NUL-terminated, malloc'd. */
static char *
answer(struct fixture *f, int fd, size_t *len)
{
	size_t n = 0, cap = 1 << 16;
	char *buf = malloc(cap);

	for (int rounds = 0; rounds < 500; rounds++) {
		ssize_t r;

		drive(f, 5);
		while ((r = recv(fd, buf + n, cap - n - 1, MSG_DONTWAIT)) > 0) {
			n += (size_t)r;
			if (cap - n < 4096)
				buf = realloc(buf, cap *= 2);
		}
		if (r == 0) {
			close(fd);
			buf[n] = '\0';
			if (len != NULL)
				*len = n;
			return buf;
		}
		assert_true(errno == EAGAIN);
	}
	fail_msg("no end of the answer");
	return NULL;
}

static char *
ask(struct fixture *f, const struct addr *a, const char *req)
{
	return answer(f, client(a, req), NULL);
}

/* The value of header name, or NULL. */
static const char *
header(const char *resp, const char *name, char *buf, size_t n)
{
	char key[64];
	const char *p, *end = strstr(resp, "\r\n\r\n");

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	if ((p = strstr(resp, key)) == NULL || (end != NULL && p > end))
		return NULL;
	p += strlen(key);
	snprintf(buf, n, "%.*s", (int)strcspn(p, "\r"), p);
	return buf;
}

/* ------------------------------------------------------------------ */

static void
test_answers(void **state)
{
	struct fixture *f = *state;
	struct addr a = unix_addr(f, "m.sock");
	char h[128], *r, *body;

	assert_int_equal(metrics_http_listen(f->mh, &a), 0);

	r = ask(f, &a, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 200 OK\r\n"));
	assert_string_equal(header(r, "Content-Type", h, sizeof(h)),
	    "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(header(r, "Connection", h, sizeof(h)), "close");
	body = strstr(r, "\r\n\r\n") + 4;
	assert_int_equal(strtoul(header(r, "Content-Length", h, sizeof(h)), NULL, 10),
	    strlen(body));
	assert_true(unit_starts(body, "# HELP tlsfront_"));
	assert_non_null(strstr(body, "\ntlsfront_connections_total{host=\"host00001.example\"} 0\n"));
	free(r);

	/* an HTTP/1.0 client gets an HTTP/1.0 answer */
	r = ask(f, &a, "GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.0 200 OK\r\n"));
	free(r);

	r = ask(f, &a, "HEAD /metrics HTTP/1.1\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 200 OK\r\n"));
	assert_true(strtoul(header(r, "Content-Length", h, sizeof(h)), NULL, 10) > 1000);
	assert_true(strstr(r, "\r\n\r\n")[4] == '\0');	/* no body */
	free(r);

	r = ask(f, &a, "GET / HTTP/1.1\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 404 Not Found\r\n"));
	assert_string_equal(strstr(r, "\r\n\r\n") + 4, "404 Not Found\n");
	free(r);
	r = ask(f, &a, "GET /metricsx HTTP/1.1\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 404 Not Found\r\n"));
	free(r);
	r = ask(f, &a, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab");
	assert_true(unit_starts(r, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_string_equal(header(r, "Allow", h, sizeof(h)), "GET, HEAD");
	free(r);
	r = ask(f, &a, "BREW /metrics HTTP/1.1\r\n\r\n");	/* not even a known method */
	assert_true(unit_starts(r, "HTTP/1.1 405 Method Not Allowed\r\n"));
	free(r);
	r = ask(f, &a, "GET /metrics\r\n\r\n");	/* HTTP/0.9 */
	assert_true(unit_starts(r, "HTTP/1.1 400 Bad Request\r\n"));
	free(r);
}

/* A new address is opened before the old one closes; when it cannot be,
 * the old one stays. Off: the socket is gone. */
static void
test_move(void **state)
{
	struct fixture *f = *state;
	struct addr a = unix_addr(f, "a.sock"), b = unix_addr(f, "b.sock");
	struct addr bad = unix_addr(f, "no/such/dir.sock"), off;
	struct stat sb;
	char *r;
	int fd;

	memset(&off, 0, sizeof(off));
	assert_int_equal(metrics_http_listen(f->mh, &a), 0);
	fd = metrics_http_fd(f->mh);
	assert_true(fd >= 0);
	assert_int_equal(metrics_http_listen(f->mh, &a), 0);	/* the same: nothing */
	assert_int_equal(metrics_http_fd(f->mh), fd);
	assert_int_equal(metrics_http_listen(f->mh, &bad), -1);
	r = ask(f, &a, "GET /metrics HTTP/1.1\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 200 OK\r\n"));
	free(r);

	assert_int_equal(metrics_http_listen(f->mh, &b), 0);
	assert_int_equal(lstat(((struct sockaddr_un *)&a.ss)->sun_path, &sb), -1);
	r = ask(f, &b, "GET /metrics HTTP/1.1\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 200 OK\r\n"));
	free(r);

	/* a socket file nobody listens on is replaced; a plain file is not */
	assert_int_equal(metrics_http_listen(f->mh, &off), 0);
	assert_int_equal(metrics_http_fd(f->mh), -1);
	assert_int_equal(lstat(((struct sockaddr_un *)&b.ss)->sun_path, &sb), -1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (const struct sockaddr *)&a.ss, a.len), 0);
	close(fd);
	assert_int_equal(metrics_http_listen(f->mh, &a), 0);
	assert_int_equal(metrics_http_listen(f->mh, &off), 0);
	fd = open(((struct sockaddr_un *)&a.ss)->sun_path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(metrics_http_listen(f->mh, &a), -1);

	/* without counters there is nothing to serve */
	assert_int_equal(metrics_http_listen(NULL, &off), 0);
	assert_int_equal(metrics_http_listen(NULL, &b), -1);
	assert_int_equal(metrics_http_fd(NULL), -1);
}

/* METRICS_HTTP_MAX_ANSWERS clients that do not read hold their answers
 * (over a megabyte each, more than a socket
 * takes); the next one gets 503, and once
 * they are gone, the metrics again. */
static void
test_limit(void **state)
{
	struct fixture *f = *state;
	struct addr a = unix_addr(f, "m.sock");
	int stuck[METRICS_HTTP_MAX_ANSWERS];
	size_t len;
	char *r;

	assert_int_equal(metrics_http_listen(f->mh, &a), 0);
	for (int i = 0; i < METRICS_HTTP_MAX_ANSWERS; i++) {
		stuck[i] = client(&a, "GET /metrics HTTP/1.1\r\n\r\n");
		drive(f, 5);
	}
	r = ask(f, &a, "GET /metrics HTTP/1.1\r\n\r\n");
	assert_true(unit_starts(r, "HTTP/1.1 503 Service Unavailable\r\n"));
	free(r);
	for (int i = 0; i < METRICS_HTTP_MAX_ANSWERS; i++)
		close(stuck[i]);
	drive(f, 20);
	r = answer(f, client(&a, "GET /metrics HTTP/1.1\r\n\r\n"), &len);
	assert_true(unit_starts(r, "HTTP/1.1 200 OK\r\n"));
	assert_true(len > 1000000);
	free(r);
	/* and sequential ones never run into the limit */
	for (int i = 0; i < 2 * METRICS_HTTP_MAX_ANSWERS; i++) {
		r = ask(f, &a, "HEAD /metrics HTTP/1.1\r\n\r\n");
		assert_true(unit_starts(r, "HTTP/1.1 200 OK\r\n"));
		free(r);
	}
}

/* A client that takes its answer too slowly (a little now and then, so
 * that the connection is never silent) is dropped when its time is up. */
static void
test_deadline(void **state)
{
	struct fixture *f = *state;
	struct addr a = unix_addr(f, "m.sock");
	char buf[4096];
	size_t got = 0;
	ssize_t r = -1;
	int fd;

	assert_int_equal(metrics_http_listen(f->mh, &a), 0);
	fd = client(&a, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int ms = 0; ms < METRICS_HTTP_WRITE_TIMEOUT_MS + 500; ms += 250) {
		drive(f, 250);
		assert_true((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0);
		got += (size_t)r;
	}
	/* what the socket still holds, then the end: long before the whole */
	drive(f, 50);
	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		got += (size_t)r;
	assert_int_equal(r, 0);
	assert_true(got < 1000000);
	close(fd);
}

/* A client that sends nothing is dropped after the read timeout. */
static void
test_silent(void **state)
{
	struct fixture *f = *state;
	struct addr a = unix_addr(f, "m.sock");
	int fd;
	char *r, c;
	size_t len;

	assert_int_equal(metrics_http_listen(f->mh, &a), 0);
	fd = client(&a, "");
	drive(f, METRICS_HTTP_READ_TIMEOUT_MS - 500);
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);	/* still open */
	r = answer(f, fd, &len);
	assert_int_equal(len, 0);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_silent, setup, teardown),
	};

	/* as in the main process: a client gone is an EPIPE, not the end */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
