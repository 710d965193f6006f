/*
 * test_sockset.c: the listening sockets of a generation (sockset.c) on
 * loopback addresses: one SO_REUSEPORT socket per slot and listener, the
 * takeover (dup) of the addresses that stay, the probe that refuses an
 * address somebody else listens on, closing.
 *
 * The generations are made by hand: sockset.c reads only their listeners'
 * addresses. Each test takes ports the kernel has just handed out as free
 * (bound to port 0 and closed). Open descriptors are counted in
 * /proc/self/fd. What sockset.c logs (stderr) goes to a pipe while a build
 * is expected to fail.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockset.h"
#include "unit_util.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

/* n addresses of host (an IP literal) on distinct ports that nobody uses
 * just now: bound to port 0 all at once, then closed. */
static void
free_addrs(const char *host, struct addr *out, size_t n)
{
	int fds[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		char text[64], err[128];
		unsigned port;

		memset(&ss, 0, sizeof(ss));
		if (strchr(host, ':') != NULL) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			assert_int_equal(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
			len = sizeof(*s6);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			assert_int_equal(inet_pton(AF_INET, host, &s4->sin_addr), 1);
			len = sizeof(*s4);
		}
		assert_true((fds[i] = socket(ss.ss_family, SOCK_STREAM, 0)) >= 0);
		assert_int_equal(bind(fds[i], (struct sockaddr *)&ss, len), 0);
		assert_int_equal(getsockname(fds[i], (struct sockaddr *)&ss, &len), 0);
		port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
		snprintf(text, sizeof(text), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
		if (addr_parse(text, &out[i], err, sizeof(err)) != 0)
			fail_msg("addr_parse %s: %s", text, err);
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
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

/* A generation with these listeners (only their addresses are set). */
struct gen_fx {
	struct generation g;
	struct listener l[4];
};

static void
gen_of(struct gen_fx *x, const struct addr *a, size_t n)
{
	memset(x, 0, sizeof(*x));
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++)
		x->l[i].addr = a[i];
	x->g.listeners = x->l;
	x->g.n_listeners = n;
}

/* 1 if a client can connect to a now, 0 if refused. */
static int
can_connect(const struct addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

	assert_true(fd >= 0);
	rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	if (rc != 0 && errno != ECONNREFUSED)
		fail_msg("connect %s: %s", a->text, strerror(errno));
	close(fd);
	return rc == 0;
}

static int
int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static ino_t
inode_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/* fd is a non-blocking SO_REUSEPORT socket listening on a. (Close-on-exec
 * is a flag of the descriptor, which dup() does not copy: checked apart,
 * on the sockets that were opened.) */
static void
assert_listening_on(int fd, const struct addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[ADDR_TEXT_MAX], want[ADDR_TEXT_MAX];

	assert_true(fd > STDERR_FILENO);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_REUSEPORT), 1);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	addr_format((struct sockaddr *)&ss, len, buf, sizeof(buf));
	addr_format((const struct sockaddr *)&a->ss, a->len, want, sizeof(want));
	assert_string_equal(buf, want);
}

static int
have_ipv6_loopback(void)
{
	struct sockaddr_in6 s6;
	int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return 0;
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	close(fd);
	return ok;
}

/* ------------------------------------------------------------------ */
/* tests                                                                */

/* One listener, three slots: three sockets on the address, in listening
 * state; closing closes them all. */
static void
test_one_listener(void **state)
{
	struct addr a;
	struct gen_fx x;
	struct sockset none = { NULL, 0 }, ss;
	int fds = unit_count_fds();

	free_addrs("127.0.0.1", &a, 1);
	gen_of(&x, &a, 1);
	assert_int_equal(sockset_build(&ss, &none, &x.g, 3), 0);
	assert_int_equal(ss.n, 1);
	assert_int_equal(ss.v[0].n, 3);
	assert_true(addr_equal(&ss.v[0].addr, &a));
	for (int s = 0; s < 3; s++) {
		assert_listening_on(ss.v[0].fds[s], &a);
		assert_true(fcntl(ss.v[0].fds[s], F_GETFD) & FD_CLOEXEC);
	}
	assert_true(inode_of(ss.v[0].fds[0]) != inode_of(ss.v[0].fds[1]));
	assert_true(inode_of(ss.v[0].fds[1]) != inode_of(ss.v[0].fds[2]));
	assert_int_equal(unit_count_fds(), fds + 3);	/* the probe is closed */
	assert_int_equal(can_connect(&a), 1);

	sockset_close(&ss);
	assert_null(ss.v);
	assert_int_equal(ss.n, 0);
	assert_int_equal(unit_count_fds(), fds);
	assert_int_equal(can_connect(&a), 0);
	sockset_close(&ss);	/* again: nothing */
	assert_int_equal(unit_count_fds(), fds);
}

/* Two listeners, IPv4 and IPv6, in the generation's order; the IPv6 one
 * only for IPv6. */
static void
test_two_listeners(void **state)
{
	struct addr a[2];
	struct gen_fx x;
	struct sockset none = { NULL, 0 }, ss;
	int fds = unit_count_fds();

	if (!have_ipv6_loopback())
		skip();
	free_addrs("::1", &a[0], 1);
	free_addrs("127.0.0.1", &a[1], 1);
	gen_of(&x, a, 2);
	assert_int_equal(sockset_build(&ss, &none, &x.g, 2), 0);
	assert_int_equal(ss.n, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_true(addr_equal(&ss.v[i].addr, &a[i]));
		assert_int_equal(ss.v[i].n, 2);
		for (int s = 0; s < 2; s++)
			assert_listening_on(ss.v[i].fds[s], &a[i]);
	}
	assert_int_equal(int_opt(ss.v[0].fds[0], IPPROTO_IPV6, IPV6_V6ONLY), 1);
	assert_int_equal(int_opt(ss.v[0].fds[1], IPPROTO_IPV6, IPV6_V6ONLY), 1);
	assert_int_equal(unit_count_fds(), fds + 4);
	assert_int_equal(can_connect(&a[0]), 1);
	assert_int_equal(can_connect(&a[1]), 1);
	sockset_close(&ss);
	assert_int_equal(unit_count_fds(), fds);
}

/* A second generation keeps B and adds C, with one slot more: B's sockets
 * are the old ones (dup), not new binds (a probe of B would fail, the old
 * set listens there); its extra slot and C are opened. Each set closes
 * only its own descriptors. */
static void
test_takeover(void **state)
{
	struct addr abc[3], a, b, c;
	struct gen_fx x1, x2;
	struct sockset none = { NULL, 0 }, old, ss;
	int fds = unit_count_fds();

	free_addrs("127.0.0.1", abc, 3);
	a = abc[0];
	b = abc[1];
	c = abc[2];

	gen_of(&x1, &abc[0], 2);
	assert_int_equal(sockset_build(&old, &none, &x1.g, 2), 0);
	gen_of(&x2, &abc[1], 2);
	assert_int_equal(sockset_build(&ss, &old, &x2.g, 3), 0);
	assert_int_equal(unit_count_fds(), fds + 4 + 6);
	assert_int_equal(ss.n, 2);
	assert_true(addr_equal(&ss.v[0].addr, &b));
	assert_true(addr_equal(&ss.v[1].addr, &c));
	assert_int_equal(ss.v[0].n, 3);
	for (int s = 0; s < 2; s++) {
		assert_true(ss.v[0].fds[s] != old.v[1].fds[s]);
		assert_true(inode_of(ss.v[0].fds[s]) == inode_of(old.v[1].fds[s]));
	}
	assert_true(inode_of(ss.v[0].fds[2]) != inode_of(old.v[1].fds[0]));
	assert_true(inode_of(ss.v[0].fds[2]) != inode_of(old.v[1].fds[1]));
	for (int s = 0; s < 3; s++) {
		assert_listening_on(ss.v[0].fds[s], &b);
		assert_listening_on(ss.v[1].fds[s], &c);
		assert_true(fcntl(ss.v[1].fds[s], F_GETFD) & FD_CLOEXEC);
	}
	assert_true(fcntl(ss.v[0].fds[2], F_GETFD) & FD_CLOEXEC);

	/* the old set goes: A with it, B stays */
	sockset_close(&old);
	assert_int_equal(unit_count_fds(), fds + 6);
	assert_int_equal(can_connect(&a), 0);
	assert_int_equal(can_connect(&b), 1);
	assert_int_equal(can_connect(&c), 1);
	for (int s = 0; s < 3; s++)
		assert_listening_on(ss.v[0].fds[s], &b);
	sockset_close(&ss);
	assert_int_equal(unit_count_fds(), fds);
	assert_int_equal(can_connect(&b), 0);
}

/* Without the old set to take it from, an address it listens on is in
 * use: the build fails, logs why, and leaves nothing open. */
static void
test_no_takeover_without_old(void **state)
{
	struct addr a;
	struct gen_fx x;
	struct sockset none = { NULL, 0 }, old, ss = { NULL, 0 };
	char logged[512], want[200];
	int fds;

	free_addrs("127.0.0.1", &a, 1);
	gen_of(&x, &a, 1);
	assert_int_equal(sockset_build(&old, &none, &x.g, 2), 0);
	fds = unit_count_fds();
	unit_stderr_start();
	assert_int_equal(sockset_build(&ss, &none, &x.g, 2), -1);
	unit_stderr_end(logged, sizeof(logged));
	snprintf(want, sizeof(want), "cannot listen on %s: %s\n", a.text, strerror(EADDRINUSE));
	assert_non_null(strstr(logged, want));
	assert_int_equal(unit_count_fds(), fds);
	assert_null(ss.v);
	assert_int_equal(ss.n, 0);
	sockset_close(&old);
}

/* Somebody else listens on an address, with SO_REUSEPORT (another
 * tlsfront of this user) or without: the probe refuses it, before any
 * socket of any listener is opened. */
static void
test_probe_in_use(void **state)
{
	for (int reuseport = 0; reuseport <= 1; reuseport++) {
		struct addr two[2], free_a, taken;
		struct gen_fx x;
		struct sockset none = { NULL, 0 }, ss = { NULL, 0 };
		char logged[512], want[200];
		int other, one = 1, fds;

		free_addrs("127.0.0.1", two, 2);
		free_a = two[0];
		taken = two[1];
		assert_true((other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
		assert_int_equal(setsockopt(other, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
		if (reuseport)
			assert_int_equal(setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one,
			    sizeof(one)), 0);
		assert_int_equal(bind(other, (struct sockaddr *)&taken.ss, taken.len), 0);
		assert_int_equal(listen(other, 8), 0);
		fds = unit_count_fds();

		gen_of(&x, two, 2);
		unit_stderr_start();
		assert_int_equal(sockset_build(&ss, &none, &x.g, 2), -1);
		unit_stderr_end(logged, sizeof(logged));
		snprintf(want, sizeof(want), "cannot listen on %s: %s\n", taken.text,
		    strerror(EADDRINUSE));
		if (strstr(logged, want) == NULL)
			fail_msg("reuseport %d: logged '%s', not '%s'", reuseport, logged, want);
		assert_int_equal(unit_count_fds(), fds);
		assert_null(ss.v);
		assert_int_equal(can_connect(&free_a), 0);	/* nothing opened there */
		close(other);
	}
}

/* 0.0.0.0:P and 127.0.0.1:P in one generation: each probe runs before any
 * socket is open, so neither takes the other for somebody else. */
static void
test_overlapping_listeners(void **state)
{
	struct addr lo, any[2];
	char text[64];
	struct gen_fx x;
	struct sockset none = { NULL, 0 }, ss;

	free_addrs("127.0.0.1", &lo, 1);
	snprintf(text, sizeof(text), "0.0.0.0:%s", strrchr(lo.text, ':') + 1);
	any[0] = parse(text);
	any[1] = lo;
	gen_of(&x, any, 2);
	assert_int_equal(sockset_build(&ss, &none, &x.g, 2), 0);
	assert_int_equal(ss.n, 2);
	assert_listening_on(ss.v[0].fds[1], &any[0]);
	assert_listening_on(ss.v[1].fds[1], &any[1]);
	assert_int_equal(can_connect(&lo), 1);
	sockset_close(&ss);
	assert_int_equal(can_connect(&lo), 0);
}

/* No listeners: an empty set. */
static void
test_empty(void **state)
{
	struct gen_fx x;
	struct sockset none = { NULL, 0 }, ss;
	int fds = unit_count_fds();

	gen_of(&x, NULL, 0);
	assert_int_equal(sockset_build(&ss, &none, &x.g, 4), 0);
	assert_int_equal(ss.n, 0);
	assert_int_equal(unit_count_fds(), fds);
	sockset_close(&ss);
	assert_null(ss.v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_listener),
		cmocka_unit_test(test_two_listeners),
		cmocka_unit_test(test_takeover),
		cmocka_unit_test(test_no_takeover_without_old),
		cmocka_unit_test(test_probe_in_use),
		cmocka_unit_test(test_overlapping_listeners),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
