/*
 * test_backend.c: backend_dial (backend.c) in an event loop of this
 * process: to a TCP listener and to a UNIX socket listener (connected,
 * bytes reach the peer), to a closed port (the event callback reports the
 * error), to a UNIX path that fails at once (NULL, nothing left open).
 *
 * The loop runs until the event callback breaks it; a 10 s timer fails the
 * test instead of hanging it if no event ever comes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	struct event_base *base;
	struct event *guard;
	int events;		/* calls of the event callback */
	short what;		/* the last one's */
	int err;		/* errno at that call */
	int guard_fired;
};

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	f->guard_fired = 1;
	event_base_loopbreak(f->base);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fixture *f = arg;

	f->events++;
	f->what = what;
	f->err = EVUTIL_SOCKET_ERROR();
	event_base_loopbreak(f->base);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct timeval ten = { 10, 0 };

	assert_non_null(f);
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_backend"), 0);
	assert_non_null(f->base = event_base_new());
	assert_non_null(f->guard = evtimer_new(f->base, guard_cb, f));
	assert_int_equal(evtimer_add(f->guard, &ten), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	event_free(f->guard);
	event_base_free(f->base);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

/* Run the loop until the event callback (or the guard) breaks it. */
static void
wait_event(struct fixture *f, struct bufferevent *bev)
{
	bufferevent_setcb(bev, NULL, NULL, event_cb, f);
	assert_int_equal(event_base_dispatch(f->base), 0);
	if (f->guard_fired)
		fail_msg("no event from the dial within 10 s");
	assert_int_equal(f->events, 1);
}

static struct addr
parse(const char *text)
{
	char err[128];
	struct addr a;

	if (addr_parse(text, &a, err, sizeof(err)) != 0)
		fail_msg("addr_parse %s: %s", text, err);
	return a;
}

/* A TCP listener on 127.0.0.1, its address in *a. */
static int
tcp_listener(struct addr *a)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char text[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(text, sizeof(text), "127.0.0.1:%u", ntohs(sin.sin_port));
	*a = parse(text);
	return fd;
}

/* A unix socket at DIR/s, listening or only bound. */
static int
unix_socket(const struct fixture *f, struct addr *a, int do_listen)
{
	struct sockaddr_un sun;
	char text[128];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", f->dir);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 8), 0);
	snprintf(text, sizeof(text), "unix:%s", sun.sun_path);
	*a = parse(text);
	return fd;
}

/* Free bev. With deferred callbacks libevent finishes the free (and closes
 * the socket) in the loop: run it once, without blocking. */
static void
free_bev(struct fixture *f, struct bufferevent *bev)
{
	bufferevent_free(bev);
	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
}

/* Write msg through bev, run the loop until it is out, and read it from
 * the accepted peer. */
static void
assert_carries(struct fixture *f, struct bufferevent *bev, int peer)
{
	static const char msg[] = "GET / HTTP/1.0\r\n\r\n";
	char buf[64];
	size_t got = 0;
	ssize_t r;

	assert_int_equal(bufferevent_write(bev, msg, sizeof(msg) - 1), 0);
	while (evbuffer_get_length(bufferevent_get_output(bev)) > 0 && !f->guard_fired)
		assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
	while (got < sizeof(msg) - 1) {
		r = read(peer, buf + got, sizeof(buf) - got);	/* blocking */
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_memory_equal(buf, msg, sizeof(msg) - 1);
}

/* ------------------------------------------------------------------ */
/* tests                                                                */

static void
test_tcp_connects(void **state)
{
	struct fixture *f = *state;
	struct bufferevent *bev;
	struct addr a;
	int lfd = tcp_listener(&a), peer, fd;

	assert_non_null(bev = backend_dial(f->base, &a));
	wait_event(f, bev);
	assert_int_equal(f->what, BEV_EVENT_CONNECTED);
	fd = bufferevent_getfd(bev);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	{
		int v = 0;
		socklen_t len = sizeof(v);
		assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
		assert_int_equal(v, 1);
	}
	assert_true((peer = accept(lfd, NULL, NULL)) >= 0);
	assert_carries(f, bev, peer);
	free_bev(f, bev);	/* closes its socket: the peer reads EOF */
	{
		char c;
		assert_int_equal(recv(peer, &c, 1, MSG_DONTWAIT), 0);
	}
	close(peer);
	close(lfd);
}

static void
test_unix_connects(void **state)
{
	struct fixture *f = *state;
	struct bufferevent *bev;
	struct addr a;
	int lfd = unix_socket(f, &a, 1), peer;

	assert_non_null(bev = backend_dial(f->base, &a));
	wait_event(f, bev);
	assert_int_equal(f->what, BEV_EVENT_CONNECTED);
	assert_true((peer = accept(lfd, NULL, NULL)) >= 0);
	assert_carries(f, bev, peer);
	bufferevent_free(bev);
	close(peer);
	close(lfd);
}

/* Nobody listens on the port: the connect is under way when backend_dial
 * returns (a non-blocking connect), and the event callback reports the
 * refusal, with errno. Freeing the bufferevent closes the socket. */
static void
test_tcp_refused(void **state)
{
	struct fixture *f = *state;
	struct bufferevent *bev;
	struct addr a;
	int fds;

	close(tcp_listener(&a));	/* a port that was free a moment ago */
	fds = unit_count_fds();
	bev = backend_dial(f->base, &a);
	if (bev == NULL) {
		/* the kernel may refuse at once: then nothing is left open */
		assert_int_equal(errno, ECONNREFUSED);
		assert_int_equal(unit_count_fds(), fds);
		return;
	}
	wait_event(f, bev);
	assert_true(f->what & BEV_EVENT_ERROR);
	assert_false(f->what & BEV_EVENT_CONNECTED);
	assert_int_equal(f->err, ECONNREFUSED);
	free_bev(f, bev);
	assert_int_equal(unit_count_fds(), fds);
}

/* A unix connect fails at once: NULL, errno set, no descriptor left. */
static void
test_unix_fails_at_once(void **state)
{
	struct fixture *f = *state;
	struct addr a;
	int fds, fd;
	char text[128];

	snprintf(text, sizeof(text), "unix:%s/missing", f->dir);
	a = parse(text);
	fds = unit_count_fds();
	errno = 0;
	assert_null(backend_dial(f->base, &a));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(unit_count_fds(), fds);

	/* bound but not listening: refused */
	fd = unix_socket(f, &a, 0);
	fds = unit_count_fds();
	errno = 0;
	assert_null(backend_dial(f->base, &a));
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(unit_count_fds(), fds);
	close(fd);
}

/* Several dials under way at once: each gets its own event. */
struct several {
	struct fixture *f;
	int connected, other;
};

static void
several_cb(struct bufferevent *bev, short what, void *arg)
{
	struct several *s = arg;

	if (what == BEV_EVENT_CONNECTED)
		s->connected++;
	else
		s->other++;
	if (s->connected + s->other == 3)
		event_base_loopbreak(s->f->base);
}

static void
test_several_dials(void **state)
{
	struct fixture *f = *state;
	struct several s = { f, 0, 0 };
	struct bufferevent *bev[3];
	struct addr a;
	int lfd = tcp_listener(&a);

	for (int i = 0; i < 3; i++) {
		assert_non_null(bev[i] = backend_dial(f->base, &a));
		bufferevent_setcb(bev[i], NULL, NULL, several_cb, &s);
	}
	assert_int_equal(event_base_dispatch(f->base), 0);
	assert_false(f->guard_fired);
	assert_int_equal(s.connected, 3);
	assert_int_equal(s.other, 0);
	for (int i = 0; i < 3; i++) {
		int peer = accept(lfd, NULL, NULL);
		assert_true(peer >= 0);
		close(peer);
	}
	for (int i = 0; i < 3; i++)
		bufferevent_free(bev[i]);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tcp_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_fails_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_dials, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
