/*
 * unit_peer.h: the peers of a running worker or main process, for the unit
 * tests that fork one (test_worker, test_supervisor): a plain TCP backend
 * in a child process, a TLS client (OpenSSL, blocking, with deadlines), and
 * waiting for a child to exit with a deadline. Every wait has a deadline
 * that fails the running cmocka test only if the event never comes; nothing
 * sleeps to let something else happen.
 */
#ifndef TLSFRONT_UNIT_PEER_H
#define TLSFRONT_UNIT_PEER_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define UNIT_DEADLINE_S 15	/* how long any one wait may take */

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel,
 * non-blocking (as sockset.c makes them: a worker's accept loop relies on
 * it). Returns the descriptor and its port in *port. */
int unit_listen_any(int *port);

/* A port on 127.0.0.1 that nobody listens on just now (bound and closed). */
int unit_free_port(void);

/*
 * A backend in a child process (dies with the test: PR_SET_PDEATHSIG) on
 * 127.0.0.1, a free port: every connection it accepts first gets the line
 * "<tag>\n", then back whatever it sends, until it closes.
 */
struct unit_backend {
	pid_t pid;
	int port;
};
void unit_backend_start(struct unit_backend *b, const char *tag);
void unit_backend_stop(struct unit_backend *b);	/* SIGKILL and reap; idle: no-op */

/* A client context that trusts ca_file (a PEM certificate) and checks the
 * server's name against the SNI it sends. */
SSL_CTX *unit_client_ctx(const char *ca_file);

/*
 * Connect to 127.0.0.1:port, send SNI name and finish the handshake
 * (verified). Returns the connection, or NULL if the handshake failed, with
 * OpenSSL's first error code in *err (0: none queued, e.g. the peer closed).
 * Reads and writes time out after UNIT_DEADLINE_S.
 */
SSL *unit_tls_connect(SSL_CTX *ctx, int port, const char *name, unsigned long *err);

/* Read exactly n bytes (fails the test otherwise). */
void unit_tls_read(SSL *ssl, char *buf, size_t n);

/* Read the backend's greeting line and check it is "<tag>\n". */
void unit_tls_expect_greeting(SSL *ssl, const char *tag);

/* Send msg and read it back, byte for byte. */
void unit_tls_roundtrip(SSL *ssl, const char *msg);

/* close_notify, close the socket, free. NULL: no-op. */
void unit_tls_close(SSL *ssl);

/* Wait until child pid has exited (UNIT_DEADLINE_S, else the test fails)
 * and return its waitpid status. */
int unit_wait_exit(pid_t pid);

/* Fork as the main process forks a worker: SIGTERM, SIGINT, SIGHUP and
 * SIGCHLD blocked across the fork (*saved: the mask before it, for the
 * parent to restore), stdio flushed, the child killed with its parent.
 * Returns fork()'s result. */
#include <signal.h>
pid_t unit_fork_blocked(sigset_t *saved);

/* SIGKILL *pid and reap it (a test's teardown); *pid <= 0: no-op. *pid is
 * 0 after. */
void unit_kill(pid_t *pid);

/* gen_load(path, d) that must succeed: else d's messages are printed and the
 * test fails. Returns the generation (the caller frees it). */
struct generation;
struct diag;
struct generation *unit_gen_load(const char *path, struct diag *d);

/* 1 if a TCP connect to 127.0.0.1:port is refused, 0 if it is accepted
 * (or queued); anything else fails the test. */
int unit_connect_refused(int port);

/* Monotonic milliseconds, for deadlines. */
long long unit_now_ms(void);

/* A short pause between two attempts of a poll with a deadline. */
void unit_pause(void);

#endif
