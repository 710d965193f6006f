/*
 * test_notify.c: the systemd readiness datagrams (notify.c), received on a
 * unix datagram socket the test binds and names in NOTIFY_SOCKET, as
 * systemd does: the messages the main process sends (supervisor.c), the
 * abstract namespace, what makes it send nothing, the size limit.
 *
 * A datagram to a unix socket is queued before sendto() returns, so the
 * test reads it at once, without waiting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	char path[128];		/* the socket's file */
	int fd;			/* bound there */
};

/* A unix datagram socket bound to sun (len bytes of it). */
static int
bound_socket(const struct sockaddr_un *sun, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (bind(fd, (const struct sockaddr *)sun, len) != 0)
		fail_msg("bind: %s", strerror(errno));
	return fd;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sun;

	assert_non_null(f);
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_notify"), 0);
	snprintf(f->path, sizeof(f->path), "%s/notify", f->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, f->path);
	f->fd = bound_socket(&sun, sizeof(sun));
	assert_int_equal(setenv("NOTIFY_SOCKET", f->path, 1), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unsetenv("NOTIFY_SOCKET");
	close(f->fd);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

/* The next datagram on fd, NUL-terminated in buf; its length, or -1 when
 * none is waiting. */
static ssize_t
next_datagram(int fd, char *buf, size_t size)
{
	ssize_t r = recv(fd, buf, size - 1, MSG_DONTWAIT);

	if (r < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		return -1;
	}
	buf[r] = '\0';
	return r;
}

/* ------------------------------------------------------------------ */
/* tests                                                                */

/* Start, status, reload and stop, as supervisor.c sends them: one
 * datagram each, exactly the text, no newline added. */
static void
test_daemon_messages(void **state)
{
	struct fixture *f = *state;
	char buf[1024], want[128];
	unsigned long long usec;

	notify_send("READY=1\nMAINPID=%ld", (long)getpid());
	notify_send("STATUS=serving %zu hosts on %zu listeners, %d workers; reloads: %u ok, "
	    "%u failed", (size_t)3, (size_t)2, 4, 1u, 0u);
	usec = notify_monotonic_usec();
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading", usec);
	notify_send("READY=1");
	notify_send("STOPPING=1\nSTATUS=draining");

	snprintf(want, sizeof(want), "READY=1\nMAINPID=%ld", (long)getpid());
	assert_int_equal(next_datagram(f->fd, buf, sizeof(buf)), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	assert_true(next_datagram(f->fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "STATUS=serving 3 hosts on 2 listeners, 4 workers; reloads: "
	    "1 ok, 0 failed");
	snprintf(want, sizeof(want), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading", usec);
	assert_true(next_datagram(f->fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, want);
	assert_true(next_datagram(f->fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "READY=1");
	assert_true(next_datagram(f->fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "STOPPING=1\nSTATUS=draining");
	assert_int_equal(next_datagram(f->fd, buf, sizeof(buf)), -1);
}

/* "@name" is a socket in the abstract namespace (no file). */
static void
test_abstract_namespace(void **state)
{
	struct sockaddr_un sun;
	char name[64], buf[64];
	socklen_t len;
	int fd;

	snprintf(name, sizeof(name), "@tlsfront-test-notify-%ld", (long)getpid());
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, name + 1, strlen(name) - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	fd = bound_socket(&sun, len);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	notify_send("READY=1");
	assert_int_equal(next_datagram(fd, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "READY=1");
	close(fd);
}

/* No NOTIFY_SOCKET, an empty or relative one: nothing is sent, and nothing
 * is left open. The relative name would reach the socket from its
 * directory. */
static void
test_sends_nothing(void **state)
{
	struct fixture *f = *state;
	char buf[64], cwd[PATH_MAX];
	int fds = unit_count_fds();

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", "notify", 1), 0);
	notify_send("READY=1");
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	notify_send("READY=1");
	unsetenv("NOTIFY_SOCKET");
	notify_send("READY=1");
	assert_int_equal(next_datagram(f->fd, buf, sizeof(buf)), -1);
	assert_int_equal(unit_count_fds(), fds);
}

/* A path too long for sun_path is ignored, not cut: here, cut, it would
 * name a socket that listens. */
static void
test_path_too_long(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sun;
	char longest[sizeof(sun.sun_path)], name[sizeof(sun.sun_path) + 8], buf[64];
	size_t dirlen = strlen(f->dir);
	int fd;

	/* the longest path that fits, bound */
	memcpy(longest, f->dir, dirlen);
	longest[dirlen] = '/';
	memset(longest + dirlen + 1, 'b', sizeof(longest) - dirlen - 2);
	longest[sizeof(longest) - 1] = '\0';
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, longest, sizeof(longest));
	fd = bound_socket(&sun, sizeof(sun));
	/* it, and more */
	snprintf(name, sizeof(name), "%sbbb", longest);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	notify_send("READY=1");
	assert_int_equal(next_datagram(fd, buf, sizeof(buf)), -1);
	/* the longest itself is fine */
	assert_int_equal(setenv("NOTIFY_SOCKET", longest, 1), 0);
	notify_send("READY=1");
	assert_int_equal(next_datagram(fd, buf, sizeof(buf)), 7);
	close(fd);
	unlink(longest);
}

/* Nobody listening at the path: the failure is ignored, nothing leaks. */
static void
test_no_listener(void **state)
{
	struct fixture *f = *state;
	char gone[160];
	int fds = unit_count_fds();

	snprintf(gone, sizeof(gone), "%s/gone", f->dir);
	assert_int_equal(setenv("NOTIFY_SOCKET", gone, 1), 0);
	for (int i = 0; i < 100; i++)
		notify_send("STATUS=%d", i);
	assert_int_equal(unit_count_fds(), fds);
}

/* A message longer than the buffer is sent cut, not dropped. */
static void
test_long_message(void **state)
{
	struct fixture *f = *state;
	char big[2000], buf[4096];
	ssize_t n;

	memset(big, 's', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	notify_send("STATUS=%s", big);
	n = next_datagram(f->fd, buf, sizeof(buf));
	assert_true(n > 400);
	assert_true(n < (ssize_t)sizeof(big));
	assert_true(strncmp(buf, "STATUS=sss", 10) == 0);
	assert_int_equal(strspn(buf + 7, "s"), (size_t)n - 7);
}

/* CLOCK_MONOTONIC in microseconds, as systemd compares MONOTONIC_USEC. */
static void
test_monotonic_usec(void **state)
{
	struct timespec a, b;
	unsigned long long lo, hi, v;

	clock_gettime(CLOCK_MONOTONIC, &a);
	v = notify_monotonic_usec();
	clock_gettime(CLOCK_MONOTONIC, &b);
	lo = (unsigned long long)a.tv_sec * 1000000ULL + (unsigned long long)a.tv_nsec / 1000;
	hi = (unsigned long long)b.tv_sec * 1000000ULL + (unsigned long long)b.tv_nsec / 1000;
	assert_true(v >= lo);
	assert_true(v <= hi);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_daemon_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abstract_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sends_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
		cmocka_unit_test(test_monotonic_usec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
