/*
 * test_supervisor.c: the main process (supervisor.c) forked by the test
 * with a generation loaded from a temporary directory, as main() runs it
 * (signals blocked, the ticket secret made): two workers on a free port of
 * 127.0.0.1, one host a.example whose backend (unit_peer.c) greets each
 * connection with "A". The test is its client:
 *
 *   - the port accepts (once bound) and a TLS round trip goes through;
 *   - the configuration on disk changes (host a's backend is now the one
 *     that greets "B", a new host b.example goes to "A"), SIGHUP: the new
 *     host is served by its SNI and host a by its new backend; a connection
 *     opened before the reload still relays (its old worker drains);
 *   - SIGTERM: supervisor_run returns 0 once its workers are gone, and the
 *     port no longer accepts.
 *
 * Linked with supervisor.c and what it calls: sockset.c, notify.c, priv.c,
 * the metrics (stats.c, metrics*.c, sbuf.c), worker.c and conn.c with the
 * data path, gen.c with the TLS and config modules.
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
#include "supervisor.h"
#include "tls.h"
#include "unit_peer.h"
#include "unit_pki.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	char path[128];			/* main.ini: supervisor_run keeps it */
	struct diag d;
	struct generation *g;		/* the test's copy; the child owns its own */
	struct unit_backend ba, bb;	/* greet "A" and "B" */
	int port;
	pid_t sup;
	SSL_CTX *ca, *cb;		/* clients trusting a's and b's certificate */
};

/* hosts.d/NAME.ini: host NAME (its certificate NAME.pem for NAME.example)
 * with backend port */
static void
host_file(const struct fixture *f, const char *name, int port)
{
	char rel[64], text[256];

	snprintf(rel, sizeof(rel), "hosts.d/%s.ini", name);
	snprintf(text, sizeof(text), "[host %s]\ncert = ../%s.pem\nkey = ../%s.key\n"
	    "backend = 127.0.0.1:%d\n", name, name, name, port);
	unit_put(f->dir, rel, text);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char text[256];

	assert_non_null(f);
	*state = f;
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_supervisor"), 0);
	assert_int_equal(mkdir(unit_path(f->dir, "hosts.d"), 0700), 0);
	unit_pki_write(unit_path(f->dir, "a.pem"), unit_path(f->dir, "a.key"), "a.example", "DNS:a.example", 30);
	unit_pki_write(unit_path(f->dir, "b.pem"), unit_path(f->dir, "b.key"), "b.example", "DNS:b.example", 30);
	unit_backend_start(&f->ba, "A");
	unit_backend_start(&f->bb, "B");
	f->port = unit_free_port();
	/* a shutdown timeout past every wait: only draining ends a worker
	 * with a connection open */
	snprintf(text, sizeof(text), "[global]\nlisten = 127.0.0.1:%d\nhosts = hosts.d/*.ini\n"
	    "workers = 2\nshutdown_timeout = 60s\n", f->port);
	unit_put(f->dir, "main.ini", text);
	host_file(f, "a", f->ba.port);
	snprintf(f->path, sizeof(f->path), "%s", unit_path(f->dir, "main.ini"));
	f->ca = unit_client_ctx(unit_path(f->dir, "a.pem"));
	f->cb = unit_client_ctx(unit_path(f->dir, "b.pem"));
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	/* its workers drain (PR_SET_PDEATHSIG): nothing of theirs is open */
	unit_kill(&f->sup);
	unit_backend_stop(&f->ba);
	unit_backend_stop(&f->bb);
	SSL_CTX_free(f->ca);
	SSL_CTX_free(f->cb);
	gen_free(f->g);
	diag_free(&f->d);
	(void)unit_rmtree(f->dir);
	free(f);
	return 0;
}

/* As main() does: load, signals blocked before anything forks, the ticket
 * secret, logging set up; then supervisor_run in a child, whose return
 * value is the child's exit status. */
static void
start_supervisor(struct fixture *f)
{
	sigset_t saved;

	f->g = unit_gen_load(f->path, &f->d);
	assert_int_equal(f->g->cfg->g.workers, 2);
	assert_int_equal(tls_ticket_secret_init(), 0);
	f->sup = unit_fork_blocked(&saved);
	if (f->sup == 0) {
		int rc;

		unsetenv("NOTIFY_SOCKET");	/* not ours to tell */
		log_setup((enum log_dest)f->g->cfg->g.log_dest,
		    (enum log_level)f->g->cfg->g.log_level);
		log_set_role("main");
		rc = supervisor_run(f->g, f->path);	/* frees the generation */
#ifdef __SANITIZE_ADDRESS__
		__lsan_do_leak_check();	/* _exit skips it */
#endif
		_exit(rc);
	}
	assert_int_equal(sigprocmask(SIG_SETMASK, &saved, NULL), 0);
	assert_true(f->sup > 0);
}

/* A connection to host `name` (the client ctx trusting its certificate)
 * that the generation in service takes: polls until the handshake works
 * and the backend greets with `tag`, failing after UNIT_DEADLINE_S. A
 * reload changes what serves the port over some time: an old worker may
 * take a connection until it has handled its SIGTERM. */
static SSL *
connect_until(struct fixture *f, SSL_CTX *ctx, const char *name, const char *tag)
{
	long long end = unit_now_ms() + UNIT_DEADLINE_S * 1000;
	unsigned long err = 0;
	char want[16], got[16] = "";
	size_t n = (size_t)snprintf(want, sizeof(want), "%s\n", tag);
	SSL *ssl;

	assert_true(n < sizeof(got));
	for (;;) {
		if ((ssl = unit_tls_connect(ctx, f->port, name, &err)) != NULL) {
			unit_tls_read(ssl, got, n);
			got[n] = '\0';
			if (strcmp(got, want) == 0)
				return ssl;
			unit_tls_close(ssl);
		}
		if (unit_now_ms() > end)
			fail_msg("no connection to %s greeted by '%s' within %d s (last: %s, "
			    "greeting '%s')", name, tag, UNIT_DEADLINE_S,
			    err ? ERR_error_string(err, NULL) : "handshake ok", got);
		unit_pause();
	}
}

static void
test_serve_reload_stop(void **state)
{
	struct fixture *f = *state;
	long long end = unit_now_ms() + UNIT_DEADLINE_S * 1000;
	unsigned long err;
	SSL *before, *c;
	int st;

	start_supervisor(f);
	/* the main process binds the port before it forks the workers */
	while (unit_connect_refused(f->port)) {
		if (unit_now_ms() > end)
			fail_msg("port %d not listening after %d s", f->port, UNIT_DEADLINE_S);
		unit_pause();
	}
	before = unit_tls_connect(f->ca, f->port, "a.example", &err);
	if (before == NULL)
		fail_msg("handshake failed: %s", ERR_error_string(err, NULL));
	unit_tls_expect_greeting(before, "A");
	unit_tls_roundtrip(before, "GET / HTTP/1.0\r\nHost: a.example\r\n\r\n");
	/* b.example is nobody's yet */
	assert_null(unit_tls_connect(f->cb, f->port, "b.example", &err));
	assert_int_equal(ERR_GET_REASON(err), SSL_R_TLSV1_UNRECOGNIZED_NAME);

	/* the configuration changes on disk; SIGHUP */
	host_file(f, "a", f->bb.port);
	host_file(f, "b", f->ba.port);
	assert_int_equal(kill(f->sup, SIGHUP), 0);
	c = connect_until(f, f->cb, "b.example", "A");
	unit_tls_roundtrip(c, "to b\n");
	unit_tls_close(c);
	c = connect_until(f, f->ca, "a.example", "B");
	unit_tls_roundtrip(c, "to a's new backend\n");
	unit_tls_close(c);
	/* the connection from before the reload: its worker drains */
	unit_tls_roundtrip(before, "still the old worker\n");
	unit_tls_close(before);

	assert_int_equal(kill(f->sup, SIGTERM), 0);
	st = unit_wait_exit(f->sup);
	f->sup = 0;
	if (!WIFEXITED(st))
		fail_msg("main process killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	assert_int_equal(WEXITSTATUS(st), 0);
	/* every copy of the listening sockets is closed */
	assert_true(unit_connect_refused(f->port));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_serve_reload_stop, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);	/* a write to a connection a worker closed */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
