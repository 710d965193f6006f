/*
 * test_backend.c: backend.c, the backend's end of a connection.
 *
 *   - backend_dial to a TCP listener and to a UNIX socket listener: a
 *     non-blocking, close-on-exec socket (TCP_NODELAY for TCP) whose
 *     writability ends the connect, and backend_connect_error then says 0;
 *     to a closed port: ECONNREFUSED, from backend_connect_error (or at
 *     once, with nothing left open); to a UNIX path that fails at once:
 *     -1, errno, no descriptor left open (/proc/self/fd counted);
 *   - backend_io, the relay's view of the socket (relay.h): reads (the
 *     count, never more than max, *more = 1 after data so that the relay
 *     reads on to EAGAIN, the EOF, straight after a short read once the
 *     FIN is known, EAGAIN, a reset), writes (partial writes into a
 *     small send buffer, RELAY_IO_AGAIN_WRITE when full, EPIPE and
 *     ECONNRESET as RELAY_IO_FAIL with sys_errno), shutdown (the peer
 *     reads EOF, the other direction goes on).
 *
 * Every wait is a poll() with a deadline that fails the test if the event
 * never comes. SIGPIPE is ignored, as the daemon does (supervisor.c).
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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "backend.h"
#include "unit_util.h"

#define DEADLINE_MS 10000

struct fixture {
	char dir[64];
	int fds;		/* descriptors open at setup */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_backend"), 0);
	f->fds = unit_count_fds();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int leaked = unit_count_fds() - f->fds;

	(void)unit_rmtree(f->dir);
	free(f);
	/* every test closes what it opened (and so does backend.c) */
	if (leaked != 0) {
		print_error("%d descriptors left open\n", leaked);
		return -1;
	}
	return 0;
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

/* A TCP listener on 127.0.0.1 (receive buffer rcvbuf if > 0, inherited by
 * the accepted sockets), its address in *a. */
static int
tcp_listener(struct addr *a, int rcvbuf)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char text[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
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

/* Wait until fd has one of events (or an error); returns revents. */
static short
wait_for(int fd, short events)
{
	struct pollfd p = { fd, events, 0 };
	int n = poll(&p, 1, DEADLINE_MS);

	if (n < 0)
		fail_msg("poll: %s", strerror(errno));
	if (n == 0)
		fail_msg("fd %d: no event 0x%x within %d ms", fd, events, DEADLINE_MS);
	return p.revents;
}

/* Dial a and wait for the connect to finish: its outcome. */
static int
dial_and_wait(const struct addr *a, int *fd)
{
	*fd = backend_dial(a);
	if (*fd < 0)
		fail_msg("backend_dial %s: %s", a->text, strerror(errno));
	(void)wait_for(*fd, POLLOUT);
	return backend_connect_error(*fd);
}

/* A connected pair over TCP: *ours from backend_dial, *peer accepted. */
static void
tcp_pair(int *ours, int *peer, int rcvbuf)
{
	struct addr a;
	int lfd = tcp_listener(&a, rcvbuf);

	assert_int_equal(dial_and_wait(&a, ours), 0);
	assert_true((*peer = accept(lfd, NULL, NULL)) >= 0);
	close(lfd);
}

static unsigned char
pattern(size_t k)
{
	return (unsigned char)((k * 2654435761u) >> 13);
}

static void
write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

/* The peer sees EOF on fd (after reading nothing else). */
static void
expect_eof(int fd)
{
	char c;

	(void)wait_for(fd, POLLIN);
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), 0);
}

/* ------------------------------------------------------------------ */
/* dialling                                                             */

static void
test_tcp_connects(void **state)
{
	struct addr a;
	int lfd = tcp_listener(&a, 0), peer, fd, v = 0;
	socklen_t len = sizeof(v);
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	char buf[32];

	(void)state;
	assert_non_null(b);
	assert_int_equal(dial_and_wait(&a, &fd), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	assert_int_equal(v, 1);
	assert_true((peer = accept(lfd, NULL, NULL)) >= 0);
	/* it carries bytes */
	e.fd = fd;
	assert_int_equal(evbuffer_add(b, "GET / HTTP/1.0\r\n\r\n", 18), 0);
	assert_int_equal(backend_io.write(&e, b), 18);
	assert_int_equal(evbuffer_get_length(b), 0);
	(void)wait_for(peer, POLLIN);
	assert_int_equal(read(peer, buf, sizeof(buf)), 18);
	assert_memory_equal(buf, "GET / HTTP/1.0\r\n\r\n", 18);
	close(fd);	/* the owner's close: the peer reads EOF */
	expect_eof(peer);
	close(peer);
	close(lfd);
	evbuffer_free(b);
}

static void
test_unix_connects(void **state)
{
	struct fixture *f = *state;
	struct addr a;
	int lfd = unix_socket(f, &a, 1), peer, fd;
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	char buf[8];

	assert_non_null(b);
	assert_int_equal(dial_and_wait(&a, &fd), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true((peer = accept(lfd, NULL, NULL)) >= 0);
	e.fd = fd;
	assert_int_equal(evbuffer_add(b, "ping", 4), 0);
	assert_int_equal(backend_io.write(&e, b), 4);
	(void)wait_for(peer, POLLIN);
	assert_int_equal(read(peer, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	close(fd);
	close(peer);
	close(lfd);
	evbuffer_free(b);
}

/* Nobody listens on the port: the connect is under way when backend_dial
 * returns, and its writability comes with the refusal. */
static void
test_tcp_refused(void **state)
{
	struct fixture *f = *state;
	struct addr a;
	int fds, fd;
	short rev;

	close(tcp_listener(&a, 0));	/* a port that was free a moment ago */
	fds = unit_count_fds();
	errno = 0;
	fd = backend_dial(&a);
	if (fd < 0) {
		/* the kernel may refuse at once: then nothing is left open */
		assert_int_equal(errno, ECONNREFUSED);
		assert_int_equal(unit_count_fds(), fds);
		return;
	}
	rev = wait_for(fd, POLLOUT);
	assert_true(rev & (POLLOUT | POLLERR | POLLHUP));
	assert_int_equal(backend_connect_error(fd), ECONNREFUSED);
	close(fd);
	assert_int_equal(unit_count_fds(), fds);
	(void)f;
}

/* A unix connect fails at once: -1, errno set, no descriptor left. */
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
	assert_int_equal(backend_dial(&a), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(unit_count_fds(), fds);

	/* bound but not listening: refused */
	fd = unix_socket(f, &a, 0);
	fds = unit_count_fds();
	errno = 0;
	assert_int_equal(backend_dial(&a), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(unit_count_fds(), fds);
	close(fd);
}

/* backend_connect_error on something that is not a socket: its errno. */
static void
test_connect_error_not_socket(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(backend_connect_error(p[0]), ENOTSOCK);
	close(p[0]);
	close(p[1]);
	assert_int_equal(backend_connect_error(p[0]), EBADF);
}

/* Several dials under way at once: each finishes on its own. */
static void
test_several_dials(void **state)
{
	struct addr a;
	int lfd = tcp_listener(&a, 0), fd[3];

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true((fd[i] = backend_dial(&a)) >= 0);
	for (int i = 0; i < 3; i++) {
		(void)wait_for(fd[i], POLLOUT);
		assert_int_equal(backend_connect_error(fd[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		int peer = accept(lfd, NULL, NULL);
		assert_true(peer >= 0);
		close(peer);
	}
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	close(lfd);
}

/* ------------------------------------------------------------------ */
/* backend_io: reading                                                  */

static void
test_read_count_and_more(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	int peer, more = -1;
	char big[5000];
	size_t got;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);

	/* nothing there: AGAIN, nothing added */
	assert_int_equal(backend_io.read(&e, b, 1000, &more), RELAY_IO_AGAIN);
	assert_int_equal(evbuffer_get_length(b), 0);

	/* what is there, then *more = 1: the relay reads on until EAGAIN (a
	 * reset behind the data raises no new edge) */
	write_all(peer, "hello", 5);
	(void)wait_for(e.fd, POLLIN);
	more = -1;
	assert_int_equal(backend_io.read(&e, b, 1000, &more), 5);
	assert_int_equal(more, 1);
	assert_int_equal(evbuffer_get_length(b), 5);
	assert_memory_equal(evbuffer_pullup(b, -1), "hello", 5);
	assert_int_equal(backend_io.read(&e, b, 1000, &more), RELAY_IO_AGAIN);

	/* never more than max, though the buffer's last chain has room for
	 * more; appended after what the buffer held */
	memset(big, 'x', sizeof(big));
	write_all(peer, big, sizeof(big));
	(void)wait_for(e.fd, POLLIN);
	more = -1;
	assert_int_equal(backend_io.read(&e, b, 10, &more), 10);
	assert_int_equal(more, 1);
	assert_int_equal(evbuffer_get_length(b), 15);
	assert_memory_equal(evbuffer_pullup(b, -1), "helloxxxxxxxxxx", 15);
	/* the rest, in reads of at most max */
	for (got = 10; got < sizeof(big);) {
		ssize_t n;

		more = -1;
		n = backend_io.read(&e, b, 1000, &more);
		if (n == RELAY_IO_AGAIN) {	/* the rest not there yet */
			(void)wait_for(e.fd, POLLIN);
			continue;
		}
		assert_in_range(n, 1, 1000);
		assert_int_equal(more, 1);
		got += (size_t)n;
	}
	assert_int_equal(got, sizeof(big));
	assert_int_equal(evbuffer_get_length(b), 5 + sizeof(big));
	assert_int_equal(backend_io.read(&e, b, 1000, &more), RELAY_IO_AGAIN);

	/* the peer's FIN: 0 */
	assert_int_equal(shutdown(peer, SHUT_WR), 0);
	(void)wait_for(e.fd, POLLIN);
	assert_int_equal(backend_io.read(&e, b, 1000, &more), 0);
	assert_int_equal(evbuffer_get_length(b), 5 + sizeof(big));
	assert_int_equal(e.sys_errno, 0);
	close(e.fd);
	close(peer);
	evbuffer_free(b);
}

/* eof_pending (EPOLLRDHUP seen): after a short read the data is all read,
 * and the next read is the EOF. A full read leaves it to a later one. */
static void
test_read_eof_pending(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	int peer, more = -1;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	write_all(peer, "last words", 10);
	assert_int_equal(shutdown(peer, SHUT_WR), 0);
	assert_true(wait_for(e.fd, POLLRDHUP) & POLLRDHUP);
	e.eof_pending = 1;
	assert_int_equal(backend_io.read(&e, b, 4, &more), 4);	/* full: more may follow */
	assert_int_equal(more, 1);
	assert_int_equal(e.at_eof, 0);
	assert_int_equal(backend_io.read(&e, b, 1000, &more), 6);	/* short */
	assert_int_equal(more, 1);
	assert_int_equal(backend_io.read(&e, b, 1000, &more), 0);
	assert_int_equal(backend_io.read(&e, b, 1000, &more), 0);	/* and stays so */
	assert_int_equal(evbuffer_get_length(b), 10);
	assert_memory_equal(evbuffer_pullup(b, -1), "last words", 10);
	close(e.fd);
	close(peer);
	evbuffer_free(b);
}

/* A reset right behind data: the read that returns the data says *more,
 * and the next one reports the reset (no RELAY_IO_AGAIN in between: no
 * edge would come for it). */
static void
test_read_data_then_reset(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	struct linger lg = { 1, 0 };
	int peer, more = -1;
	ssize_t n;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	write_all(peer, "partial", 7);
	assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(peer);
	(void)wait_for(e.fd, POLLHUP | POLLERR);	/* the reset is in */
	n = backend_io.read(&e, b, 1000, &more);
	if (n > 0) {	/* the data came first (Linux may drop it instead) */
		assert_int_equal(n, 7);
		assert_int_equal(more, 1);
		n = backend_io.read(&e, b, 1000, &more);
	}
	assert_int_equal(n, RELAY_IO_FAIL);
	assert_int_equal(e.sys_errno, ECONNRESET);
	close(e.fd);
	evbuffer_free(b);
}

/* Many reads into a buffer that already holds bytes (its free space may
 * come as two pieces): every byte lands once, in order. */
static void
test_read_bulk_in_order(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	const size_t n = 1024 * 1024;
	size_t sent = 0, got = 0;
	unsigned char chunk[8192];
	int peer, more;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	assert_int_equal(fcntl(peer, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(evbuffer_add(b, "head", 4), 0);
	while (got < n) {
		ssize_t r;

		while (sent < n) {
			size_t k = n - sent < sizeof(chunk) ? n - sent : sizeof(chunk);
			ssize_t w;

			for (size_t j = 0; j < k; j++)
				chunk[j] = pattern(sent + j);
			if ((w = write(peer, chunk, k)) < 0) {
				assert_true(errno == EAGAIN);
				break;
			}
			sent += (size_t)w;
		}
		/* odd sizes, so that reads end across the buffer's chains */
		r = backend_io.read(&e, b, 4096 + 1 + got % 7000, &more);
		if (r == RELAY_IO_AGAIN) {
			(void)wait_for(e.fd, POLLIN);
			continue;
		}
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(evbuffer_get_length(b), n + 4);
	{
		unsigned char *p = evbuffer_pullup(b, -1);

		assert_memory_equal(p, "head", 4);
		for (size_t k = 0; k < n; k++)
			if (p[4 + k] != pattern(k))
				fail_msg("byte %zu differs", k);
	}
	close(e.fd);
	close(peer);
	evbuffer_free(b);
}

/* The peer resets: RELAY_IO_FAIL, errno kept. */
static void
test_read_reset(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	struct linger lg = { 1, 0 };
	int peer, more;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(peer);	/* RST */
	(void)wait_for(e.fd, POLLIN);
	assert_int_equal(backend_io.read(&e, b, 1000, &more), RELAY_IO_FAIL);
	assert_int_equal(e.sys_errno, ECONNRESET);
	assert_int_equal(evbuffer_get_length(b), 0);
	close(e.fd);
	evbuffer_free(b);
}

/* ------------------------------------------------------------------ */
/* backend_io: writing                                                  */

/* A small send buffer and a peer that does not read: a write takes part
 * of the buffer (the count, removed from it), the next one finds the
 * socket full; once the peer reads, writing goes on, in order. */
static void
test_write_partial(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	const size_t n = 2 * 1024 * 1024;
	unsigned char *data = malloc(n), buf[65536];
	size_t got = 0, written = 0;
	int peer, v = 4096;
	ssize_t w;

	(void)state;
	assert_non_null(b);
	assert_non_null(data);
	tcp_pair(&e.fd, &peer, 4096);
	assert_int_equal(setsockopt(e.fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	for (size_t k = 0; k < n; k++)
		data[k] = pattern(k);
	assert_int_equal(evbuffer_add(b, data, n), 0);

	w = backend_io.write(&e, b);
	assert_true(w > 0);
	assert_true((size_t)w < n);
	assert_int_equal(evbuffer_get_length(b), n - (size_t)w);	/* "full" */
	written = (size_t)w;
	/* full until the peer reads */
	while ((w = backend_io.write(&e, b)) > 0)
		written += (size_t)w;
	assert_int_equal(w, RELAY_IO_AGAIN_WRITE);
	assert_int_equal(evbuffer_get_length(b), n - written);
	assert_int_equal(e.sys_errno, 0);

	assert_int_equal(fcntl(peer, F_SETFL, O_NONBLOCK), 0);
	while (got < n) {
		ssize_t r = read(peer, buf, sizeof(buf));

		if (r > 0) {
			assert_memory_equal(buf, data + got, (size_t)r);
			got += (size_t)r;
			continue;
		}
		assert_true(r < 0 && errno == EAGAIN);
		if (evbuffer_get_length(b) > 0) {
			(void)wait_for(e.fd, POLLOUT);
			w = backend_io.write(&e, b);
			assert_true(w > 0 || w == RELAY_IO_AGAIN_WRITE);
		} else {
			(void)wait_for(peer, POLLIN);
		}
	}
	assert_int_equal(evbuffer_get_length(b), 0);
	close(e.fd);
	close(peer);
	evbuffer_free(b);
	free(data);
}

/* Writing after our own shutdown: EPIPE (and no SIGPIPE: ignored). */
static void
test_write_epipe(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	int peer;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	assert_int_equal(backend_io.shutdown(&e), 0);
	assert_int_equal(evbuffer_add(b, "too late", 8), 0);
	assert_int_equal(backend_io.write(&e, b), RELAY_IO_FAIL);
	assert_int_equal(e.sys_errno, EPIPE);
	assert_int_equal(evbuffer_get_length(b), 8);
	close(e.fd);
	close(peer);
	evbuffer_free(b);
}

/* Writing to a peer that reset: RELAY_IO_FAIL with ECONNRESET (or EPIPE
 * if the kernel already reported the reset). */
static void
test_write_reset(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	struct linger lg = { 1, 0 };
	int peer;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(peer);
	(void)wait_for(e.fd, POLLIN);	/* the RST is in */
	assert_int_equal(evbuffer_add(b, "anyone?", 7), 0);
	assert_int_equal(backend_io.write(&e, b), RELAY_IO_FAIL);
	assert_true(e.sys_errno == ECONNRESET || e.sys_errno == EPIPE);
	/* and again: still a failure, never a count */
	assert_int_equal(backend_io.write(&e, b), RELAY_IO_FAIL);
	assert_true(e.sys_errno == ECONNRESET || e.sys_errno == EPIPE);
	close(e.fd);
	evbuffer_free(b);
}

/* A peer that closed normally: the first write may still be taken (the
 * peer answers it with a reset), then writes fail. */
static void
test_write_to_closed_peer(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	int peer;
	ssize_t w = 0;

	(void)state;
	assert_non_null(b);
	tcp_pair(&e.fd, &peer, 0);
	close(peer);
	(void)wait_for(e.fd, POLLIN);	/* its FIN */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(evbuffer_add(b, "x", 1), 0);
		if ((w = backend_io.write(&e, b)) == RELAY_IO_FAIL)
			break;
		assert_int_equal(w, 1);
		(void)wait_for(e.fd, POLLERR | POLLHUP);	/* the reset it caused */
	}
	assert_int_equal(w, RELAY_IO_FAIL);
	assert_true(e.sys_errno == ECONNRESET || e.sys_errno == EPIPE);
	close(e.fd);
	evbuffer_free(b);
}

/* ------------------------------------------------------------------ */
/* backend_io: shutdown                                                 */

static void
test_shutdown_half_closes(void **state)
{
	struct backend_end e = { .fd = -1 };
	struct evbuffer *b = evbuffer_new();
	int peer, more;
	char buf[16];

	(void)state;
	assert_non_null(b);
	assert_true(backend_io.close_ends_writing);	/* a close sends the FIN too */
	tcp_pair(&e.fd, &peer, 0);
	assert_int_equal(evbuffer_add(b, "request", 7), 0);
	assert_int_equal(backend_io.write(&e, b), 7);
	assert_int_equal(backend_io.shutdown(&e), 0);
	/* the peer reads the request, then EOF */
	(void)wait_for(peer, POLLIN);
	assert_int_equal(read(peer, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "request", 7);
	expect_eof(peer);
	/* and can still answer */
	write_all(peer, "response", 8);
	(void)wait_for(e.fd, POLLIN);
	assert_int_equal(backend_io.read(&e, b, 100, &more), 8);
	assert_memory_equal(evbuffer_pullup(b, -1), "response", 8);
	close(e.fd);
	close(peer);
	evbuffer_free(b);
}

/* The peer already gone (ENOTCONN) is not a failure; a bad descriptor is. */
static void
test_shutdown_errors(void **state)
{
	struct backend_end e = { .fd = -1 };
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	e.fd = sv[0];
	assert_int_equal(backend_io.shutdown(&e), 0);
	close(sv[0]);
	e.fd = socket(AF_INET, SOCK_STREAM, 0);	/* never connected */
	assert_true(e.fd >= 0);
	assert_int_equal(backend_io.shutdown(&e), 0);
	close(e.fd);		/* not open any more */
	assert_int_equal(backend_io.shutdown(&e), RELAY_IO_FAIL);
	assert_int_equal(e.sys_errno, EBADF);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_tcp_connects),
		T(test_unix_connects),
		T(test_tcp_refused),
		T(test_unix_fails_at_once),
		T(test_connect_error_not_socket),
		T(test_several_dials),
		T(test_read_count_and_more),
		T(test_read_eof_pending),
		T(test_read_data_then_reset),
		T(test_read_bulk_in_order),
		T(test_read_reset),
		T(test_write_partial),
		T(test_write_epipe),
		T(test_write_reset),
		T(test_write_to_closed_peer),
		T(test_shutdown_half_closes),
		T(test_shutdown_errors),
	};
#undef T

	signal(SIGPIPE, SIG_IGN);	/* as the daemon (supervisor.c) */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
