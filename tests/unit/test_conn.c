/*
 * test_conn.c: the lifecycle of a connection (conn.c), without matching
 * any text:
 *
 *   - conn_state_next: every pair of states, against the table below (the
 *     flow of conn.h), CLOSED reachable from every state but itself;
 *   - conn_end_info: a row for every enum conn_end, its handshake-failure
 *     category a valid enum stats_hs_reason (or CONN_HS_HOST_REFUSED, or
 *     CONN_HS_NONE for an ACME validation) and
 *     the one the reason calls for, close_notify exactly for the reasons
 *     of issue #15 (expected tables below);
 *   - real connections through a forked worker (worker.c with conn.c, as
 *     test_worker.c does), ended each way that can be provoked from
 *     outside: the worker's shared counters (stats.h) move in the
 *     category conn_end_info gives the reason, and the client receives
 *     our close_notify exactly when conn_end_info says so (OpenSSL client:
 *     SSL_ERROR_ZERO_RETURN is a close_notify, an EOF without one is
 *     SSL_R_UNEXPECTED_EOF_WHILE_READING). The unknown-SNI refusal is in
 *     test_worker.c (test_unknown_sni).
 *
 * The generation: one certificate for all names, hosts
 *   w.example  the echo backend of unit_peer.c (greets "echo\n")
 *   i.example  the same, idle_timeout = 1s
 *   d.example  a port nobody listens on
 *   o.example  a listening socket of this test (the test is the backend)
 *   h.example  alpn = h2 only
 *   f.example  max_connections = 1
 *   s.example  on a listener of its own, handshake_timeout = 200ms
 * Each test forks a worker, provokes one end (two for the full host),
 * waits for the worker's counters to show it ended, stops the worker
 * (SIGTERM: it exits 0) and checks the exact counts it left.
 */
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
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include <event2/buffer.h>
#include <linux/sockios.h>
#include <openssl/err.h>

#include "conn.h"
#include "gen.h"
#include "log.h"
#include "stats.h"
#include "tls.h"
#include "unit_peer.h"
#include "unit_pki.h"
#include "unit_util.h"
#include "worker.h"

/* ------------------------------------------------------------------ */
/* (a) the states                                                       */

#define N_STATES (CONN_CLOSED + 1)

static const char *const state_name[N_STATES] = {
	"NEW", "PROXY", "HANDSHAKE", "CONNECTING", "RELAYING", "DRAINING", "CLOSED"
};

/* expected[from][to]: the flow of conn.h */
static const int expected_next[N_STATES][N_STATES] = {
	/*                 NEW PRX HS  CON REL DRN CLOSED */
	[CONN_NEW] =        { 0,  1,  1,  0,  0,  0,  1 },
	[CONN_PROXY] =      { 0,  0,  1,  0,  0,  0,  1 },
	[CONN_HANDSHAKE] =  { 0,  0,  0,  1,  0,  0,  1 },
	[CONN_CONNECTING] = { 0,  0,  0,  0,  1,  0,  1 },
	[CONN_RELAYING] =   { 0,  0,  0,  0,  0,  1,  1 },
	[CONN_DRAINING] =   { 0,  0,  0,  0,  0,  0,  1 },
	[CONN_CLOSED] =     { 0,  0,  0,  0,  0,  0,  0 },
};

static void
test_state_next(void **state)
{
	int bad = 0;

	(void)state;
	for (int from = CONN_NEW; from <= CONN_CLOSED; from++) {
		for (int to = CONN_NEW; to <= CONN_CLOSED; to++) {
			int got = conn_state_next((enum conn_state)from, (enum conn_state)to);

			if (got != expected_next[from][to]) {
				print_error("conn_state_next(%s, %s) = %d, expected %d\n",
				    state_name[from], state_name[to], got, expected_next[from][to]);
				bad++;
			}
		}
	}
	assert_int_equal(bad, 0);
}

/* Every state but CLOSED may close; none moves backwards or stays. */
static void
test_state_closed_reachable(void **state)
{
	(void)state;
	for (int from = CONN_NEW; from < CONN_CLOSED; from++) {
		assert_true(conn_state_next((enum conn_state)from, CONN_CLOSED));
		for (int to = CONN_NEW; to <= from; to++)
			assert_false(conn_state_next((enum conn_state)from, (enum conn_state)to));
	}
	for (int to = CONN_NEW; to <= CONN_CLOSED; to++)
		assert_false(conn_state_next(CONN_CLOSED, (enum conn_state)to));
	/* every state but NEW can be reached */
	for (int to = CONN_PROXY; to <= CONN_CLOSED; to++) {
		int from_any = 0;
		for (int from = CONN_NEW; from <= CONN_CLOSED; from++)
			from_any |= conn_state_next((enum conn_state)from, (enum conn_state)to);
		assert_true(from_any);
	}
}

/* ------------------------------------------------------------------ */
/* (b) the ends                                                         */

#define ANY_HS (-100)	/* not fixed by issue #15: any valid category */

struct end_expect {
	int set;		/* the row is written (a new reason needs one) */
	int hs;
	int close_notify;
};

static const struct end_expect expected_end[END_COUNT] = {
	[END_CLOSED] = { 1, ANY_HS, 1 },
	[END_PROXY_TIMEOUT] = { 1, HS_TIMEOUT, 0 },
	[END_PROXY_CLOSED] = { 1, HS_PROXY_HEADER, 0 },
	[END_PROXY_ERROR] = { 1, HS_PROXY_HEADER, 0 },
	[END_PROXY_INVALID] = { 1, HS_PROXY_HEADER, 0 },
	[END_PROXY_TOO_LONG] = { 1, HS_PROXY_HEADER, 0 },
	[END_PROXY_READ] = { 1, HS_PROXY_HEADER, 0 },
	[END_HS_TIMEOUT] = { 1, HS_TIMEOUT, 0 },
	[END_HS_UNKNOWN_NAME] = { 1, HS_UNKNOWN_SNI, 0 },
	[END_HS_NO_NAME] = { 1, HS_UNKNOWN_SNI, 0 },
	[END_HS_HOST_FULL] = { 1, CONN_HS_HOST_REFUSED, 0 },
	[END_HS_HOST_CERT] = { 1, ANY_HS, 0 },
	[END_HS_NO_ALPN] = { 1, HS_NO_ALPN, 0 },
	[END_HS_CLIENT_CERT] = { 1, HS_CLIENT_CERT, 0 },
	[END_HS_NOT_ALLOWED] = { 1, HS_CLIENT_CERT, 0 },
	[END_HS_PENDING] = { 1, ANY_HS, 0 },
	[END_HS_ACME_REFUSED] = { 1, ANY_HS, 0 },
	[END_HS_ACME_CERT] = { 1, ANY_HS, 0 },
	[END_HS_CLOSED] = { 1, HS_CLOSED, 0 },
	[END_HS_RESET] = { 1, HS_CLOSED, 0 },
	[END_HS_TLS_ERROR] = { 1, HS_PROTOCOL, 0 },
	[END_HS_NO_CLIENT_CERT] = { 1, HS_CLIENT_CERT, 0 },
	[END_HS_ERROR] = { 1, ANY_HS, 0 },
	[END_GONE] = { 1, ANY_HS, 0 },
	[END_ACME_CHALLENGE] = { 1, CONN_HS_NONE, 0 },	/* a validation, no failure */
	[END_CONNECT_FAILED] = { 1, ANY_HS, 1 },
	[END_CONNECT_TIMEOUT] = { 1, ANY_HS, 1 },
	[END_PROXY_HEADER_BUILD] = { 1, ANY_HS, 1 },
	[END_IDLE_TIMEOUT] = { 1, ANY_HS, 1 },
	[END_CLIENT_CLOSED] = { 1, ANY_HS, 0 },
	[END_CLIENT_RESET] = { 1, ANY_HS, 0 },
	[END_CLIENT_TLS_ERROR] = { 1, ANY_HS, 0 },
	[END_CLIENT_ERROR] = { 1, ANY_HS, 0 },
	[END_BACKEND_CLOSED] = { 1, ANY_HS, 0 },
	[END_BACKEND_RESET] = { 1, ANY_HS, 0 },
	[END_BACKEND_ERROR] = { 1, ANY_HS, 0 },
	[END_SHUTDOWN_TIMEOUT] = { 1, ANY_HS, 0 },
	[END_WORKER_EXIT] = { 1, ANY_HS, 0 },
	[END_NO_MEMORY] = { 1, ANY_HS, 0 },
};

/* The reasons whose client gets our close_notify (issue #15). */
static const enum conn_end notify_ends[] = {
	END_CLOSED, END_CONNECT_FAILED, END_CONNECT_TIMEOUT, END_PROXY_HEADER_BUILD,
	END_IDLE_TIMEOUT
};

static void
test_end_info_rows(void **state)
{
	int bad = 0;

	(void)state;
	for (int why = 0; why < END_COUNT; why++) {
		const struct conn_end_info *e = conn_end_info((enum conn_end)why);

		if (!expected_end[why].set) {
			print_error("end %d: no expected row in this test\n", why);
			bad++;
			continue;
		}
		if (e == NULL || e->text == NULL || e->text[0] == '\0' ||
		    strpbrk(e->text, "\"\n") != NULL) {
			print_error("end %d: no text, or one that breaks the access line\n", why);
			bad++;
			continue;
		}
		if (!((e->hs >= 0 && e->hs < HS_COUNT) || e->hs == CONN_HS_HOST_REFUSED ||
		    e->hs == CONN_HS_NONE)) {
			print_error("end %d (%s): category %d is not a stats_hs_reason\n", why,
			    e->text, e->hs);
			bad++;
		}
		if (expected_end[why].hs != ANY_HS && e->hs != expected_end[why].hs) {
			print_error("end %d (%s): category %d, expected %d\n", why, e->text, e->hs,
			    expected_end[why].hs);
			bad++;
		}
		if (e->close_notify != expected_end[why].close_notify) {
			print_error("end %d (%s): close_notify %d, expected %d\n", why, e->text,
			    e->close_notify, expected_end[why].close_notify);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* The close_notify rule, stated the way: yes exactly for these. */
static void
test_end_info_close_notify(void **state)
{
	int n = 0;

	(void)state;
	for (int why = 0; why < END_COUNT; why++) {
		int listed = 0;

		for (size_t k = 0; k < sizeof(notify_ends) / sizeof(notify_ends[0]); k++)
			listed |= notify_ends[k] == (enum conn_end)why;
		assert_int_equal(conn_end_info((enum conn_end)why)->close_notify, listed);
		n += listed;
	}
	assert_int_equal(n, 5);
}

/* ------------------------------------------------------------------ */
/* (c) through a worker                                                 */

static const char *const host_names[] = {
	"w", "i", "d", "o", "h", "f", "s"
};

struct fixture {
	char dir[64];
	struct diag d;
	struct generation *g;
	struct unit_backend backend;
	int lfd[2], port[2];		/* the main listener, the one of s.example */
	int own, own_port;		/* the backend of o.example: this test */
	struct stats *st;
	pid_t worker;
	SSL_CTX *client;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char text[512];
	int down = unit_free_port();

	assert_non_null(f);
	f->lfd[0] = f->lfd[1] = f->own = -1;
	*state = f;
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_conn"), 0);
	assert_int_equal(mkdir(unit_path(f->dir, "hosts.d"), 0700), 0);
	unit_pki_write(unit_path(f->dir, "c.pem"), unit_path(f->dir, "c.key"), "w.example",
	    "DNS:w.example,DNS:i.example,DNS:d.example,DNS:o.example,DNS:h.example,"
	    "DNS:f.example,DNS:s.example", 30);
	unit_backend_start(&f->backend, "echo");
	f->own = unit_listen_any(&f->own_port);
	f->lfd[0] = unit_listen_any(&f->port[0]);
	f->lfd[1] = unit_listen_any(&f->port[1]);
	snprintf(text, sizeof(text), "[global]\nlisten = 127.0.0.1:%d\nhosts = hosts.d/*.ini\n"
	    "workers = 1\nshutdown_timeout = 60s\n[defaults]\ncert = c.pem\nkey = c.key\n"
	    "backend = 127.0.0.1:%d\n", f->port[0], f->backend.port);
	unit_put(f->dir, "main.ini", text);
	unit_put(f->dir, "hosts.d/w.ini", "[host w]\nnames = w.example\n");
	unit_put(f->dir, "hosts.d/i.ini", "[host i]\nnames = i.example\nidle_timeout = 1s\n");
	snprintf(text, sizeof(text), "[host d]\nnames = d.example\nbackend = 127.0.0.1:%d\n",
	    down);
	unit_put(f->dir, "hosts.d/d.ini", text);
	snprintf(text, sizeof(text), "[host o]\nnames = o.example\nbackend = 127.0.0.1:%d\n",
	    f->own_port);
	unit_put(f->dir, "hosts.d/o.ini", text);
	unit_put(f->dir, "hosts.d/h.ini", "[host h]\nnames = h.example\nalpn = h2\n");
	unit_put(f->dir, "hosts.d/f.ini", "[host f]\nnames = f.example\nmax_connections = 1\n");
	snprintf(text, sizeof(text), "[host s]\nnames = s.example\nlisten = 127.0.0.1:%d\n"
	    "handshake_timeout = 200ms\n", f->port[1]);
	unit_put(f->dir, "hosts.d/s.ini", text);
	f->g = unit_gen_load(unit_path(f->dir, "main.ini"), &f->d);
	assert_int_equal(f->g->n_hosts, sizeof(host_names) / sizeof(host_names[0]));
	assert_int_equal(f->g->n_listeners, 2);
	assert_int_equal(tls_ticket_secret_init(), 0);
	assert_non_null(f->st = stats_new(2, 0));
	assert_int_equal(stats_generation(f->st, f->g), 0);
	f->client = unit_client_ctx(unit_path(f->dir, "c.pem"));
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unit_kill(&f->worker);
	unit_backend_stop(&f->backend);
	for (int i = 0; i < 2; i++)
		if (f->lfd[i] >= 0)
			close(f->lfd[i]);
	if (f->own >= 0)
		close(f->own);
	SSL_CTX_free(f->client);
	stats_free(f->st);
	gen_free(f->g);
	diag_free(&f->d);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

static int
port_of(const struct addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

	assert_int_equal(sin->sin_family, AF_INET);
	return ntohs(sin->sin_port);
}

/* Fork the worker as supervisor.c spawn does (see test_worker.c): the
 * signals blocked across the fork, a block of counters of its own, the
 * listening sockets in the generation's order; the test keeps no copy. */
static void
start_worker(struct fixture *f)
{
	sigset_t saved;
	int b = stats_block_take(f->st), fds[2];

	assert_true(b >= 0);
	for (size_t i = 0; i < 2; i++)
		fds[i] = port_of(&f->g->listeners[i].addr) == f->port[0] ? f->lfd[0] : f->lfd[1];
	assert_int_not_equal(fds[0], fds[1]);
	f->worker = unit_fork_blocked(&saved);
	if (f->worker == 0) {
		int rc;

		signal(SIGPIPE, SIG_IGN);	/* supervisor_run's, inherited */
		close(f->own);
		stats_worker_init(f->st, b);
		log_set_role("worker 0");
		rc = worker_run(f->g, 0, fds);
		gen_free(f->g);
#ifdef __SANITIZE_ADDRESS__
		__lsan_do_leak_check();
#endif
		_exit(rc);
	}
	assert_int_equal(sigprocmask(SIG_SETMASK, &saved, NULL), 0);
	assert_true(f->worker > 0);
	stats_block_bind(f->st, b, f->worker);
	for (int i = 0; i < 2; i++) {
		close(f->lfd[i]);
		f->lfd[i] = -1;
	}
}

/* The counters now, the live worker's included. */
static uint64_t
global_now(struct fixture *f, enum stats_global k)
{
	struct stats_sum s = { 0 };
	uint64_t v;

	assert_int_equal(stats_sum(f->st, &s), 0);
	v = s.g[k];
	stats_sum_free(&s);
	return v;
}

/* Wait until the worker has counted n of k (it counts a connection's end
 * after everything the client can see of it). */
static void
wait_global(struct fixture *f, enum stats_global k, uint64_t n)
{
	long long end = unit_now_ms() + UNIT_DEADLINE_S * 1000;

	while (global_now(f, k) < n) {
		if (unit_now_ms() > end)
			fail_msg("counter %d still below %llu after %d s", (int)k,
			    (unsigned long long)n, UNIT_DEADLINE_S);
		unit_pause();
	}
}

/* All `ended` connections have ended: stop the worker (SIGTERM, exit 0)
 * and sum what it counted into *s. */
static void
stop_and_sum(struct fixture *f, uint64_t ended, struct stats_sum *s)
{
	pid_t pid = f->worker;
	int st;

	wait_global(f, SG_ENDED, ended);
	assert_int_equal(kill(pid, SIGTERM), 0);
	st = unit_wait_exit(pid);
	f->worker = 0;
	if (!WIFEXITED(st))
		fail_msg("worker killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	assert_int_equal(WEXITSTATUS(st), 0);
	stats_worker_gone(f->st, pid);
	assert_int_equal(stats_sum(f->st, s), 0);
	assert_int_equal(s->workers, 0);
	assert_int_equal(s->g[SG_ACCEPTED], ended);
	assert_int_equal(s->g[SG_ENDED], ended);
}

static const struct stats_host_sum *
host_row(const struct stats_sum *s, const char *label)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i].label, label) == 0)
			return &s->hosts[i];
	fail_msg("no host '%s' in the sum", label);
	return NULL;
}

/* Connections that ended before their handshake completed, for the
 * reasons in why[0..n-1]: each counted in its reason's category, no other
 * category counted; a host refusal on host `label`'s row instead. */
static void
check_hs_failures(const struct stats_sum *s, const enum conn_end *why, size_t n,
    const char *label)
{
	uint64_t want[HS_COUNT] = { 0 }, refused = 0;

	for (size_t k = 0; k < n; k++) {
		int hs = conn_end_info(why[k])->hs;

		if (hs == CONN_HS_HOST_REFUSED)
			refused++;
		else if (hs != CONN_HS_NONE)
			want[hs]++;
	}
	for (int r = 0; r < HS_COUNT; r++)
		if (s->g[SG_HS_FAIL + r] != want[r])
			fail_msg("handshake failures of category %d: %llu, expected %llu", r,
			    (unsigned long long)s->g[SG_HS_FAIL + r], (unsigned long long)want[r]);
	if (label != NULL)
		assert_int_equal(host_row(s, label)->c[SH_REFUSED], refused);
	for (size_t i = 0; i < s->n_hosts; i++)
		if (label == NULL || strcmp(s->hosts[i].label, label) != 0)
			assert_int_equal(s->hosts[i].c[SH_REFUSED], 0);
}

/* One connection of host `label` that completed its handshake and ended:
 * no handshake failure counted, the host's opened and closed counted,
 * connect_ok/connect_failed backend connects. */
static void
check_one_after_handshake(const struct stats_sum *s, const char *label, uint64_t connect_ok,
    uint64_t connect_failed)
{
	const struct stats_host_sum *h = host_row(s, label);

	check_hs_failures(s, NULL, 0, NULL);
	assert_int_equal(h->c[SH_OPENED], 1);
	assert_int_equal(h->c[SH_CLOSED], 1);
	assert_int_equal(h->c[SH_CONNECT_COUNT], connect_ok);
	assert_int_equal(h->c[SH_CONNECT_FAILED], connect_failed);
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i].label, label) != 0)
			assert_int_equal(s->hosts[i].c[SH_OPENED], 0);
}

static SSL *
connect_ok(struct fixture *f, const char *name)
{
	unsigned long err;
	SSL *ssl = unit_tls_connect(f->client, f->port[0], name, &err);

	if (ssl == NULL)
		fail_msg("handshake with SNI %s failed: %s", name, ERR_error_string(err, NULL));
	return ssl;
}

/*
 * Read until the server ends the connection: 1 if it sent its
 * close_notify first, 0 if the stream just ended (EOF without one). Data,
 * another error or no end within UNIT_DEADLINE_S fail the test.
 */
static int
got_close_notify(SSL *ssl)
{
	char c;
	size_t n = 0;
	int r, code;
	unsigned long e;

	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(ssl, &c, 1, &n);
	if (r == 1)
		fail_msg("data (0x%02x) where the end was expected", (unsigned char)c);
	code = SSL_get_error(ssl, r);
	e = ERR_peek_error();
	if (code == SSL_ERROR_ZERO_RETURN)
		return 1;
	if (code == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return 0;
	fail_msg("the connection ended with SSL error %d (errno %d, %s), not an EOF", code,
	    errno, e ? ERR_error_string(e, NULL) : "-");
	return -1;
}

static void
free_client(SSL *ssl)
{
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
}

/* RST instead of FIN. */
static void
reset_fd(int fd)
{
	struct linger lg = { 1, 0 };

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
}

/* The connection the worker made to this test's backend (o.example). */
static int
accept_own(struct fixture *f)
{
	struct pollfd p = { f->own, POLLIN, 0 };
	int fd;

	if (poll(&p, 1, UNIT_DEADLINE_S * 1000) != 1)
		fail_msg("the worker did not connect to the backend");
	assert_true((fd = accept(f->own, NULL, NULL)) >= 0);
	return fd;
}

/* Read exactly n bytes from a plain socket, with the deadline. */
static void
read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, UNIT_DEADLINE_S * 1000) != 1)
			fail_msg("%zu of %zu bytes, then nothing", got, n);
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			fail_msg("%zu of %zu bytes, then %s", got, n, r == 0 ? "EOF" : strerror(errno));
		got += (size_t)r;
	}
}

/* The peer of fd ends the stream: read returns 0 (or a reset) in time. */
static void
expect_closed(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;
	ssize_t r;

	if (poll(&p, 1, UNIT_DEADLINE_S * 1000) != 1)
		fail_msg("the worker did not close");
	r = read(fd, &c, 1);
	if (r != 0 && !(r < 0 && errno == ECONNRESET))
		fail_msg("read %zd (%s) where the end was expected", r, strerror(errno));
}

/* A plain TCP connection to port, nothing sent. */
static int
tcp_connect(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		fail_msg("connect to port %d: %s", port, strerror(errno));
	return fd;
}

static const char msg[] = "GET / HTTP/1.0\r\nHost: w.example\r\n\r\n";

/* closed: the client half-closes (its close_notify), the backend answers
 * with its FIN, which the client gets as our close_notify. */
static void
test_end_closed(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	SSL *c;

	start_worker(f);
	c = connect_ok(f, "w.example");
	unit_tls_expect_greeting(c, "echo");
	unit_tls_roundtrip(c, msg);
	assert_int_equal(SSL_shutdown(c), 0);	/* sent ours; the socket stays open */
	assert_int_equal(got_close_notify(c), conn_end_info(END_CLOSED)->close_notify);
	free_client(c);

	stop_and_sum(f, 1, &s);
	check_one_after_handshake(&s, "w", 1, 0);
	assert_int_equal(host_row(&s, "w")->c[SH_BYTES_IN], strlen(msg));
	assert_int_equal(host_row(&s, "w")->c[SH_BYTES_OUT], strlen("echo\n") + strlen(msg));
	stats_sum_free(&s);
}

/* closed, the backend first: its response, then our close_notify (the
 * half-close); then the client's close_notify ends it. */
static void
test_end_closed_backend_first(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	char buf[64];
	int be;
	SSL *c;
	size_t w;

	start_worker(f);
	c = connect_ok(f, "o.example");
	assert_int_equal(SSL_write_ex(c, "request", 7, &w), 1);
	be = accept_own(f);
	read_exact(be, buf, 7);
	assert_memory_equal(buf, "request", 7);
	assert_int_equal(write(be, "response", 8), 8);
	close(be);
	unit_tls_read(c, buf, 8);
	assert_memory_equal(buf, "response", 8);
	assert_int_equal(got_close_notify(c), 1);
	/* the client still may send (nobody reads it: the backend is gone),
	 * then closes */
	assert_int_equal(SSL_shutdown(c), 1);	/* both close_notify now */
	free_client(c);

	stop_and_sum(f, 1, &s);
	check_one_after_handshake(&s, "o", 1, 0);
	assert_int_equal(conn_end_info(END_CLOSED)->close_notify, 1);
	stats_sum_free(&s);
}

/* idle timeout: nothing moves for idle_timeout (1s): our close_notify. */
static void
test_end_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	long long t0;
	SSL *c;

	start_worker(f);
	c = connect_ok(f, "i.example");
	unit_tls_expect_greeting(c, "echo");
	t0 = unit_now_ms();
	assert_int_equal(got_close_notify(c), conn_end_info(END_IDLE_TIMEOUT)->close_notify);
	/* not before the timeout (counted from the greeting, just before t0) */
	assert_true(unit_now_ms() - t0 >= 800);
	free_client(c);

	stop_and_sum(f, 1, &s);
	check_one_after_handshake(&s, "i", 1, 0);
	stats_sum_free(&s);
}

/* connect failed: the backend's port is closed: our close_notify. */
static void
test_end_connect_failed(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	SSL *c;

	start_worker(f);
	c = connect_ok(f, "d.example");
	assert_int_equal(got_close_notify(c), conn_end_info(END_CONNECT_FAILED)->close_notify);
	free_client(c);

	stop_and_sum(f, 1, &s);
	check_one_after_handshake(&s, "d", 0, 1);
	stats_sum_free(&s);
}

/* client reset after the handshake: the worker closes the backend side
 * too (the client cannot see anything any more). */
static void
test_end_client_reset(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	char buf[8];
	size_t w;
	int be;
	SSL *c;

	start_worker(f);
	c = connect_ok(f, "o.example");
	assert_int_equal(SSL_write_ex(c, "hi", 2, &w), 1);
	be = accept_own(f);
	read_exact(be, buf, 2);
	reset_fd(SSL_get_fd(c));
	SSL_free(c);
	expect_closed(be);
	close(be);
	assert_int_equal(conn_end_info(END_CLIENT_RESET)->close_notify, 0);

	stop_and_sum(f, 1, &s);
	check_one_after_handshake(&s, "o", 1, 0);
	stats_sum_free(&s);
}

/* backend reset: the client's stream just ends, without close_notify (a
 * response cut short must not look complete). */
static void
test_end_backend_reset(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	char buf[8];
	size_t w;
	int be;
	SSL *c;

	start_worker(f);
	c = connect_ok(f, "o.example");
	assert_int_equal(SSL_write_ex(c, "hi", 2, &w), 1);
	be = accept_own(f);
	read_exact(be, buf, 2);
	assert_int_equal(write(be, "partial", 7), 7);
	unit_tls_read(c, buf, 7);
	reset_fd(be);
	assert_int_equal(got_close_notify(c), conn_end_info(END_BACKEND_RESET)->close_notify);
	free_client(c);

	stop_and_sum(f, 1, &s);
	check_one_after_handshake(&s, "o", 1, 0);
	stats_sum_free(&s);
}

/* no common ALPN: refused in the handshake (no_application_protocol),
 * counted as HS_NO_ALPN's category. */
static void
test_end_no_alpn(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	static const unsigned char http11[] = "\x08http/1.1";
	static const enum conn_end why[] = { END_HS_NO_ALPN };
	SSL_CTX *ctx = unit_client_ctx(unit_path(f->dir, "c.pem"));
	unsigned long err;

	assert_int_equal(SSL_CTX_set_alpn_protos(ctx, http11, sizeof(http11) - 1), 0);
	start_worker(f);
	assert_null(unit_tls_connect(ctx, f->port[0], "h.example", &err));
	if (ERR_GET_REASON(err) != SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL)
		fail_msg("handshake failed with %s, not no_application_protocol",
		    err ? ERR_error_string(err, NULL) : "no error");
	SSL_CTX_free(ctx);

	stop_and_sum(f, 1, &s);
	check_hs_failures(&s, why, 1, NULL);
	assert_int_equal(host_row(&s, "h")->c[SH_OPENED], 0);
	assert_int_equal(conn_end_info(why[0])->close_notify, 0);
	stats_sum_free(&s);
}

/* the host's max_connections reached: refused, counted on the host. */
static void
test_end_host_full(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	static const enum conn_end why[] = { END_HS_HOST_FULL };
	const struct stats_host_sum *h;
	unsigned long err;
	SSL *c;

	start_worker(f);
	c = connect_ok(f, "f.example");
	unit_tls_expect_greeting(c, "echo");
	assert_null(unit_tls_connect(f->client, f->port[0], "f.example", &err));
	if (ERR_GET_REASON(err) != SSL_R_TLSV1_ALERT_INTERNAL_ERROR)
		fail_msg("handshake failed with %s, not internal_error",
		    err ? ERR_error_string(err, NULL) : "no error");
	unit_tls_roundtrip(c, msg);	/* the first one is served on */
	unit_tls_close(c);

	stop_and_sum(f, 2, &s);
	check_hs_failures(&s, why, 1, "f");
	h = host_row(&s, "f");
	assert_int_equal(h->c[SH_OPENED], 1);
	assert_int_equal(h->c[SH_CLOSED], 1);
	stats_sum_free(&s);
}

/* handshake timeout: a client that sends nothing, on s.example's listener
 * (200ms): closed (no TLS to speak of), counted as HS_TIMEOUT's category. */
static void
test_end_hs_timeout(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	static const enum conn_end why[] = { END_HS_TIMEOUT };
	long long t0;
	int fd;

	start_worker(f);
	t0 = unit_now_ms();
	fd = tcp_connect(f->port[1]);
	expect_closed(fd);
	assert_true(unit_now_ms() - t0 >= 150);
	close(fd);

	stop_and_sum(f, 1, &s);
	check_hs_failures(&s, why, 1, NULL);
	stats_sum_free(&s);
}

/* The client closes, then resets, during the handshake: both counted as
 * the client's doing (HS_CLOSED), not as protocol errors. */
static void
test_end_hs_closed_and_reset(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	static const enum conn_end why[] = { END_HS_CLOSED, END_HS_RESET };
	int fd;

	start_worker(f);
	fd = tcp_connect(f->port[0]);
	wait_global(f, SG_ACCEPTED, 1);		/* the worker has it */
	close(fd);
	wait_global(f, SG_ENDED, 1);
	fd = tcp_connect(f->port[0]);
	wait_global(f, SG_ACCEPTED, 2);
	reset_fd(fd);

	stop_and_sum(f, 2, &s);
	check_hs_failures(&s, why, 2, NULL);
	stats_sum_free(&s);
}

/* Part of a ClientHello, then the client closes: still the client's
 * doing. */
static void
test_end_hs_closed_mid_hello(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	static const enum conn_end why[] = { END_HS_CLOSED };
	/* a handshake record header announcing 512 bytes, and 4 of them */
	static const unsigned char part[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc };
	int fd;

	start_worker(f);
	fd = tcp_connect(f->port[0]);
	assert_int_equal(write(fd, part, sizeof(part)), (ssize_t)sizeof(part));
	wait_global(f, SG_ACCEPTED, 1);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	expect_closed(fd);
	close(fd);

	stop_and_sum(f, 1, &s);
	check_hs_failures(&s, why, 1, NULL);
	stats_sum_free(&s);
}

/* Not TLS at all: a protocol error (HS_PROTOCOL's category). */
static void
test_end_hs_not_tls(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	static const enum conn_end why[] = { END_HS_TLS_ERROR };
	int fd;

	start_worker(f);
	fd = tcp_connect(f->port[0]);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	expect_closed(fd);
	close(fd);

	stop_and_sum(f, 1, &s);
	check_hs_failures(&s, why, 1, NULL);
	stats_sum_free(&s);
}

/* ------------------------------------------------------------------ */
/* the close_notify of a half-close, into a full socket                 */

/*
 * The relay passes the backend's EOF on to the client with
 * tls_stream_io.shutdown (relay.h: 0 means done, RELAY_IO_AGAIN_WRITE means
 * "blocked until writable, call again"). Here the server's end of the
 * client's TLS stream runs in this process over a UNIX socket pair, and the
 * socket is exactly full when the relay half-closes: the last record was
 * taken whole, nothing more fits. The client must still get the
 * close_notify: either shutdown says RELAY_IO_AGAIN_WRITE and a retry once
 * the client has read sends it, or it is kept and sent by conn_close
 * (END_CLOSED calls for one). What follows the shutdown is what relay.c
 * and conn.c do: the client reads everything, the relay retries on
 * RELAY_IO_AGAIN_WRITE, then conn_close(END_CLOSED) (its close_notify,
 * tls_stream_free, close).
 */
static void
test_close_notify_into_full_socket(void **state)
{
	struct fixture *f = *state;
	struct tls_worker *w = tls_worker_new(f->g);
	struct tls_info info = { 0 };
	struct tls_stream ts;
	struct evbuffer *b = evbuffer_new();
	int sv[2], sndbuf = 0, outq = 0, rc, done_c = 0, done_s = 0;
	socklen_t len = sizeof(sndbuf);
	size_t sent = 0, got = 0;
	char buf[4096];
	SSL *c;

	assert_non_null(w);
	assert_non_null(b);
	for (size_t i = 0; i < f->g->n_listeners; i++)
		if (port_of(&f->g->listeners[i].addr) == f->port[0])
			info.listener = &f->g->listeners[i];
	assert_non_null(info.listener);
	info.worker = w;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(tls_stream_start(&ts, f->g->tls, &info, sv[0]), 0);
	assert_non_null(c = SSL_new(f->client));
	assert_int_equal(SSL_set_fd(c, sv[1]), 1);
	assert_int_equal(SSL_set_tlsext_host_name(c, "w.example"), 1);
	SSL_set_connect_state(c);
	for (int i = 0; i < 100 && !(done_c && done_s); i++) {
		enum tls_step st;

		if (!done_c) {
			rc = SSL_do_handshake(c);
			if (rc == 1)
				done_c = 1;
			else if (SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
				fail_msg("client handshake: SSL error %d", SSL_get_error(c, rc));
		}
		if (!done_s) {
			st = tls_stream_handshake(&ts);
			if (st == TLS_STEP_DONE)
				done_s = 1;
			else if (st == TLS_STEP_FAILED)
				fail_msg("server handshake failed");
		}
	}
	assert_true(done_c && done_s);

	/* one-byte records until the socket is full: a UNIX stream socket
	 * takes a write while less than SO_SNDBUF is queued, so the last one
	 * taken may leave no room (SIOCOUTQ: what is queued) */
	assert_int_equal(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
	for (;;) {
		ssize_t n;

		assert_int_equal(evbuffer_add(b, "z", 1), 0);
		n = tls_stream_io.write(&ts, b);
		assert_int_equal(n, 1);	/* never refused: we stop before */
		sent++;
		assert_int_equal(ioctl(sv[0], SIOCOUTQ, &outq), 0);
		if (outq >= sndbuf)
			break;
		assert_true(sent < 1000000);
	}

	/* the backend's EOF, passed on as the relay does */
	rc = tls_stream_io.shutdown(&ts);
	assert_true(rc == 0 || rc == RELAY_IO_AGAIN_WRITE);
	/* the client reads what came (and the close_notify, if it did) */
	for (;;) {
		size_t n = 0;
		int r = SSL_read_ex(c, buf, sizeof(buf), &n);

		if (r == 1) {
			got += n;
			continue;
		}
		r = SSL_get_error(c, r);
		if (r == SSL_ERROR_WANT_READ)
			break;
		if (r == SSL_ERROR_ZERO_RETURN)
			break;
		fail_msg("client read: SSL error %d", r);
	}
	assert_int_equal(got, sent);
	/* writable again: the relay retries a refused shutdown */
	for (int i = 0; i < 10 && rc == RELAY_IO_AGAIN_WRITE; i++)
		rc = tls_stream_io.shutdown(&ts);
	assert_int_equal(rc, 0);
	/* the client closes too; conn_close(END_CLOSED) */
	assert_int_equal(conn_end_info(END_CLOSED)->close_notify, 1);
	tls_stream_close_notify(&ts);
	tls_stream_free(&ts);
	close(sv[0]);
	tls_release(&info);

	if (got_close_notify(c) != 1)
		fail_msg("the client got no close_notify: the one for the half-close "
		    "(into a full socket) was lost");
	SSL_free(c);
	close(sv[1]);
	evbuffer_free(b);
	tls_worker_free(w);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_next),
		cmocka_unit_test(test_state_closed_reachable),
		cmocka_unit_test(test_end_info_rows),
		cmocka_unit_test(test_end_info_close_notify),
		T(test_end_closed),
		T(test_end_closed_backend_first),
		T(test_end_idle_timeout),
		T(test_end_connect_failed),
		T(test_end_client_reset),
		T(test_end_backend_reset),
		T(test_end_no_alpn),
		T(test_end_host_full),
		T(test_end_hs_timeout),
		T(test_end_hs_closed_and_reset),
		T(test_end_hs_closed_mid_hello),
		T(test_end_hs_not_tls),
		T(test_close_notify_into_full_socket),
	};
#undef T

	signal(SIGPIPE, SIG_IGN);	/* a write to a connection the worker closed */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
