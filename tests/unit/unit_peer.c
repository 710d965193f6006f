/* unit_peer.c: see unit_peer.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "gen.h"
#include "unit_peer.h"

long long
unit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
unit_pause(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static void
loopback(struct sockaddr_in *sin, int port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int
bound_any(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	loopback(&sin, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

int
unit_listen_any(int *port)
{
	int fd = bound_any(port);

	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

int
unit_free_port(void)
{
	int port, fd = bound_any(&port);

	close(fd);
	return port;
}

/* ---- the backend ---------------------------------------------------------- */

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

#define BACKEND_MAX_CONNS 64

static void __attribute__((noreturn))
backend_main(int lfd, const char *tag)
{
	struct pollfd p[1 + BACKEND_MAX_CONNS];
	char line[64], buf[4096];
	size_t n = 1;
	int ll = snprintf(line, sizeof(line), "%s\n", tag);

	p[0].fd = lfd;
	p[0].events = POLLIN;
	for (;;) {
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if ((p[0].revents & POLLIN) && n < 1 + BACKEND_MAX_CONNS) {
			int c = accept(lfd, NULL, NULL);
			if (c >= 0) {
				if (write_all(c, line, (size_t)ll) != 0) {
					close(c);
				} else {
					p[n].fd = c;
					p[n].events = POLLIN;
					p[n].revents = 0;
					n++;
				}
			}
		}
		for (size_t i = 1; i < n; i++) {
			ssize_t r;

			if (p[i].revents == 0)
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || write_all(p[i].fd, buf, (size_t)r) != 0) {
				close(p[i].fd);
				p[i--] = p[--n];
			}
		}
	}
}

void
unit_backend_start(struct unit_backend *b, const char *tag)
{
	pid_t parent = getpid();
	int lfd = unit_listen_any(&b->port);

	fflush(NULL);
	b->pid = fork();
	assert_true(b->pid >= 0);
	if (b->pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		backend_main(lfd, tag);
	}
	close(lfd);
}

void
unit_backend_stop(struct unit_backend *b)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	(void)waitpid(b->pid, NULL, 0);
	b->pid = 0;
}

/* ---- the TLS client --------------------------------------------------------- */

SSL_CTX *
unit_client_ctx(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca_file, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

SSL *
unit_tls_connect(SSL_CTX *ctx, int port, const char *name, unsigned long *err)
{
	struct sockaddr_in sin;
	struct timeval tv = { UNIT_DEADLINE_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SSL *ssl;

	*err = 0;
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	loopback(&sin, port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		fail_msg("connect to port %d: %s", port, strerror(errno));
	assert_non_null(ssl = SSL_new(ctx));
	assert_int_equal(SSL_set_fd(ssl, fd), 1);
	assert_int_equal(SSL_set_tlsext_host_name(ssl, name), 1);
	assert_int_equal(SSL_set1_host(ssl, name), 1);
	ERR_clear_error();
	if (SSL_connect(ssl) != 1) {
		*err = ERR_peek_error();
		ERR_clear_error();
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	assert_int_equal(SSL_get_verify_result(ssl), X509_V_OK);
	return ssl;
}

void
unit_tls_read(SSL *ssl, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		size_t r = 0;
		if (SSL_read_ex(ssl, buf + got, n - got, &r) != 1)
			fail_msg("read: %zu of %zu bytes, then SSL error %d (errno %d)", got, n,
			    SSL_get_error(ssl, 0), errno);
		got += r;
	}
}

void
unit_tls_expect_greeting(SSL *ssl, const char *tag)
{
	char want[64], got[64];
	size_t n = (size_t)snprintf(want, sizeof(want), "%s\n", tag);

	assert_true(n < sizeof(got));
	unit_tls_read(ssl, got, n);
	got[n] = '\0';
	assert_string_equal(got, want);
}

void
unit_tls_roundtrip(SSL *ssl, const char *msg)
{
	size_t n = strlen(msg), w = 0;
	char got[4096];

	assert_true(n < sizeof(got));
	assert_int_equal(SSL_write_ex(ssl, msg, n, &w), 1);
	assert_int_equal(w, n);
	unit_tls_read(ssl, got, n);
	got[n] = '\0';
	assert_string_equal(got, msg);
}

void
unit_tls_close(SSL *ssl)
{
	if (ssl == NULL)
		return;
	(void)SSL_shutdown(ssl);
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
}

/* ---- processes and ports ------------------------------------------------------ */

int
unit_wait_exit(pid_t pid)
{
	long long end = unit_now_ms() + UNIT_DEADLINE_S * 1000;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int st;
	pid_t r;

	/* without pidfd_open (valgrind knows no handler for it): waitpid
	 * WNOHANG, polled */
	while (pfd < 0 && (r = waitpid(pid, &st, WNOHANG)) == 0 && unit_now_ms() < end)
		unit_pause();
	for (;;) {
		struct pollfd p = { pfd, POLLIN, 0 };
		long long left = end - unit_now_ms();

		if (pfd < 0 || left <= 0)
			break;
		/* readable once the child has exited */
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		if (p.revents & POLLIN)
			break;
	}
	if (pfd >= 0) {
		close(pfd);
		r = waitpid(pid, &st, WNOHANG);
	}
	if (r == 0)
		fail_msg("pid %d still running after %d s", (int)pid, UNIT_DEADLINE_S);
	assert_int_equal(r, pid);
	return st;
}

int
unit_connect_refused(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	assert_true(fd >= 0);
	loopback(&sin, port);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (rc != 0 && errno != ECONNREFUSED)
		fail_msg("connect to port %d: %s", port, strerror(errno));
	close(fd);
	return rc != 0;
}

void
unit_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	(void)waitpid(*pid, NULL, 0);
	*pid = 0;
}

struct generation *
unit_gen_load(const char *path, struct diag *d)
{
	struct generation *g = gen_load(path, d);

	if (g == NULL || d->n_errors != 0) {
		for (size_t i = 0; i < d->n; i++)
			print_message("  diag: %s\n", d->msgs[i]);
		fail_msg("gen_load failed");
	}
	return g;
}

pid_t
unit_fork_blocked(sigset_t *saved)
{
	pid_t parent = getpid(), pid;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	assert_int_equal(sigprocmask(SIG_BLOCK, &set, saved), 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);	/* the test died before prctl ran */
	}
	return pid;
}
