/*
 * test_worker.c: one worker process (worker.c, with conn.c and relay.c
 * under it) on a generation loaded from a temporary directory (a host
 * w.example whose certificate unit_pki.c made, its backend a plain TCP
 * process of unit_peer.c that greets each connection with a line and then
 * echoes). The test forks the worker as the main process does (SIGTERM,
 * SIGINT, SIGHUP, SIGCHLD blocked; its counters in a block of shared
 * memory, stats.c) on one listening socket of its own, and is its client:
 *
 *   - bytes go through the proxy and back (TLS, SNI, the backend's
 *     greeting, the echo), twice on one connection and on a second one;
 *     SIGTERM with nothing open: exit 0; what the worker counted;
 *   - SIGTERM with a connection open: the worker drains (the connection
 *     still relays, new connections are refused, the worker runs on) and
 *     exits 0 once the client closes;
 *   - an unknown SNI, no default host: the handshake fails with
 *     unrecognized_name, counted in the category conn_end_info gives
 *     END_HS_UNKNOWN_NAME; the worker serves on.
 *
 * The other ends of a connection, and the close_notify each calls for,
 * are in test_conn.c.
 *
 * Linked with worker.c, conn.c and what they call: relay.c, backend.c,
 * stats.c, proxy*.c, tls_facts.c, clientauth.c, gen.c with the TLS and
 * config modules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include <openssl/err.h>

#include "gen.h"
#include "log.h"
#include "stats.h"
#include "tls.h"
#include "unit_peer.h"
#include "unit_pki.h"
#include "unit_util.h"
#include "worker.h"

#define HOST "w.example"

struct fixture {
	char dir[64];
	struct diag d;
	struct generation *g;
	struct unit_backend backend;
	int lfd, port;			/* the listening socket the worker takes */
	struct stats *st;
	pid_t worker;
	SSL_CTX *client;
};

/* The generation: one host on the listening socket's address; a shutdown
 * timeout well past every wait of the test, so that only draining can end
 * a worker with a connection open. */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char text[512];

	assert_non_null(f);
	f->lfd = -1;
	*state = f;
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_worker"), 0);
	assert_int_equal(mkdir(unit_path(f->dir, "hosts.d"), 0700), 0);
	unit_pki_write(unit_path(f->dir, "w.pem"), unit_path(f->dir, "w.key"), HOST, "DNS:" HOST, 30);
	unit_backend_start(&f->backend, "echo");
	f->lfd = unit_listen_any(&f->port);
	snprintf(text, sizeof(text), "[global]\nlisten = 127.0.0.1:%d\nhosts = hosts.d/*.ini\n"
	    "workers = 1\nshutdown_timeout = 60s\n", f->port);
	unit_put(f->dir, "main.ini", text);
	snprintf(text, sizeof(text), "[host w]\ncert = ../w.pem\nkey = ../w.key\n"
	    "backend = 127.0.0.1:%d\n", f->backend.port);
	unit_put(f->dir, "hosts.d/w.ini", text);
	f->g = unit_gen_load(unit_path(f->dir, "main.ini"), &f->d);
	assert_int_equal(f->g->n_listeners, 1);
	assert_null(f->g->listeners[0].default_host);
	/* as main() and supervisor_run() do before the first fork */
	assert_int_equal(tls_ticket_secret_init(), 0);
	assert_non_null(f->st = stats_new(2, 0));
	assert_int_equal(stats_generation(f->st, f->g), 0);
	f->client = unit_client_ctx(unit_path(f->dir, "w.pem"));
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unit_kill(&f->worker);
	unit_backend_stop(&f->backend);
	if (f->lfd >= 0)
		close(f->lfd);
	SSL_CTX_free(f->client);
	stats_free(f->st);
	gen_free(f->g);
	diag_free(&f->d);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

/* Fork the worker as supervisor.c spawn does: the signals blocked across
 * the fork, a block of counters of its own. The test keeps no copy of the
 * listening socket, so that it closes when the worker stops accepting. */
static void
start_worker(struct fixture *f)
{
	sigset_t saved;
	int b = stats_block_take(f->st);

	assert_true(b >= 0);
	f->worker = unit_fork_blocked(&saved);
	if (f->worker == 0) {
		int fds[1] = { f->lfd };
		int rc;

		signal(SIGPIPE, SIG_IGN);	/* supervisor_run's, inherited */
		stats_worker_init(f->st, b);
		log_set_role("worker 0");
		rc = worker_run(f->g, 0, fds);
		gen_free(f->g);
#ifdef __SANITIZE_ADDRESS__
		__lsan_do_leak_check();	/* _exit skips it; as supervisor.c spawn */
#endif
		_exit(rc);
	}
	assert_int_equal(sigprocmask(SIG_SETMASK, &saved, NULL), 0);
	assert_true(f->worker > 0);
	stats_block_bind(f->st, b, f->worker);
	close(f->lfd);
	f->lfd = -1;
}

/* SIGTERM was sent: the worker must exit 0 on its own. */
static void
expect_exit_0(struct fixture *f)
{
	int st = unit_wait_exit(f->worker);
	pid_t pid = f->worker;

	f->worker = 0;
	if (!WIFEXITED(st))
		fail_msg("worker killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	assert_int_equal(WEXITSTATUS(st), 0);
	/* its counts join the retired totals, as supervisor.c reap does */
	stats_worker_gone(f->st, pid);
}

/* The retired totals of the (dead) worker, and host w's row. */
static const struct stats_host_sum *
sum(struct fixture *f, struct stats_sum *s)
{
	assert_int_equal(stats_sum(f->st, s), 0);
	assert_int_equal(s->workers, 0);
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i].label, "w") == 0)
			return &s->hosts[i];
	fail_msg("no host 'w' in the sum");
	return NULL;
}

static SSL *
connect_ok(struct fixture *f, const char *name)
{
	unsigned long err;
	SSL *ssl = unit_tls_connect(f->client, f->port, name, &err);

	if (ssl == NULL)
		fail_msg("handshake with SNI %s failed: %s", name, ERR_error_string(err, NULL));
	return ssl;
}

/* ------------------------------------------------------------------ */

static const char msg1[] = "GET / HTTP/1.0\r\nHost: w.example\r\n\r\n";
static const char msg2[] = "and a second line, on the same connection\n";
static const char msg3[] = "a second connection\n";

static void
test_relay(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	const struct stats_host_sum *h;
	SSL *c;

	start_worker(f);
	c = connect_ok(f, HOST);
	unit_tls_expect_greeting(c, "echo");
	unit_tls_roundtrip(c, msg1);
	unit_tls_roundtrip(c, msg2);
	unit_tls_close(c);
	c = connect_ok(f, "W.Example");	/* names match without regard to case */
	unit_tls_expect_greeting(c, "echo");
	unit_tls_roundtrip(c, msg3);
	unit_tls_close(c);

	assert_int_equal(kill(f->worker, SIGTERM), 0);
	expect_exit_0(f);

	h = sum(f, &s);
	assert_int_equal(s.g[SG_ACCEPTED], 2);
	assert_int_equal(s.g[SG_ENDED], 2);
	for (int r = 0; r < HS_COUNT; r++)
		assert_int_equal(s.g[SG_HS_FAIL + r], 0);
	assert_int_equal(h->c[SH_OPENED], 2);
	assert_int_equal(h->c[SH_CLOSED], 2);
	assert_int_equal(h->c[SH_CONNECT_COUNT], 2);
	assert_int_equal(h->c[SH_CONNECT_FAILED], 0);
	assert_int_equal(h->c[SH_BYTES_IN], strlen(msg1) + strlen(msg2) + strlen(msg3));
	assert_int_equal(h->c[SH_BYTES_OUT],
	    2 * strlen("echo\n") + strlen(msg1) + strlen(msg2) + strlen(msg3));
	stats_sum_free(&s);
}

static void
test_drain(void **state)
{
	struct fixture *f = *state;
	long long end;
	int st;
	SSL *c;

	start_worker(f);
	c = connect_ok(f, HOST);
	unit_tls_expect_greeting(c, "echo");
	unit_tls_roundtrip(c, msg1);

	assert_int_equal(kill(f->worker, SIGTERM), 0);
	/* the open connection goes on (each round trip crosses the loop
	 * several times: the SIGTERM is handled before the first ends) */
	unit_tls_roundtrip(c, msg2);
	unit_tls_roundtrip(c, msg3);
	/* no new connections: the worker closed the listening socket, its
	 * last copy */
	end = unit_now_ms() + UNIT_DEADLINE_S * 1000;
	while (!unit_connect_refused(f->port)) {
		if (unit_now_ms() > end)
			fail_msg("port %d still accepts while the worker drains", f->port);
		unit_pause();
	}
	/* and the worker waits for the connection */
	assert_int_equal(waitpid(f->worker, &st, WNOHANG), 0);
	unit_tls_roundtrip(c, "still there\n");
	unit_tls_close(c);
	expect_exit_0(f);
}

static void
test_unknown_sni(void **state)
{
	struct fixture *f = *state;
	struct stats_sum s = { 0 };
	const struct stats_host_sum *h;
	unsigned long err;
	SSL *c;

	start_worker(f);
	assert_null(unit_tls_connect(f->client, f->port, "other.example", &err));
	if (ERR_GET_REASON(err) != SSL_R_TLSV1_UNRECOGNIZED_NAME)
		fail_msg("handshake failed with %s, not unrecognized_name",
		    err ? ERR_error_string(err, NULL) : "no error");
	/* the worker serves on */
	c = connect_ok(f, HOST);
	unit_tls_expect_greeting(c, "echo");
	unit_tls_roundtrip(c, msg1);
	unit_tls_close(c);

	assert_int_equal(kill(f->worker, SIGTERM), 0);
	expect_exit_0(f);
	h = sum(f, &s);
	assert_int_equal(s.g[SG_ACCEPTED], 2);
	assert_int_equal(s.g[SG_ENDED], 2);
	assert_int_equal(s.g[SG_HS_FAIL + HS_UNKNOWN_SNI], 1);
	/* the category of its end reason (conn.c's table), and no other;
	 * refused in the handshake: no close_notify */
	for (int r = 0; r < HS_COUNT; r++)
		assert_int_equal(s.g[SG_HS_FAIL + r], r == conn_end_info(END_HS_UNKNOWN_NAME)->hs);
	assert_int_equal(conn_end_info(END_HS_UNKNOWN_NAME)->close_notify, 0);
	assert_int_equal(h->c[SH_OPENED], 1);
	assert_int_equal(h->c[SH_CLOSED], 1);
	stats_sum_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_relay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_sni, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);	/* a write to a connection the worker closed */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
