/* loadgen: the TLS load generators of the benchmark (bench/bench.py), for the
 * two loads that wrk and openssl s_time cannot give: resumed handshakes that
 * are known to resume, and many idle connections held open at once.
 *
 *   loadgen resume HOST PORT SNI PATH SECONDS PROCS
 *       PROCS processes, each looping for SECONDS: connect, TLS 1.3 handshake
 *       offering the newest session (ticket) of its previous connection, one
 *       "GET PATH HTTP/1.1" with "Connection: close", read to the end, close.
 *       Prints one line:
 *         requests=N resumed=R full=F errors=E seconds=S first_error=...
 *       (wrk also resumes, but only every other connection here: it offers
 *       the session it resumed with, not the ticket that came after it.)
 *
 *   loadgen resume-n HOST PORT SNI PATH N PROCS
 *   loadgen keepalive-n HOST PORT SNI PATH N PROCS
 *       Fixed counts, for counting the server's system calls (bench.py's
 *       phase s): PROCS processes each warm up (resume-n: a full and a
 *       resumed connection, so that the ticket in hand came from a
 *       resumption; keepalive-n: a handshake and one request on a keep-alive
 *       connection), then the parent prints "ready" and waits for a line on
 *       stdin. Then each process does N connections as resume does
 *       (resume-n) or N requests one after another on its open connection
 *       (keepalive-n), and the parent prints the line resume prints (for
 *       keepalive-n, resumed and full count nothing). The keep-alive
 *       connections stay open until the next line on stdin (or its end), so
 *       that closing them is not part of what is counted.
 *
 *   loadgen hold HOST PORT SNI N SRC NSRC CONC TIMEOUT
 *       Opens N TLS 1.3 connections (full handshakes, at most CONC at a time,
 *       each given TIMEOUT seconds) from the NSRC source addresses SRC, SRC+1,
 *       ... (so that more than one address's worth of ephemeral ports can be
 *       used), stops opening new ones at the first failure, and holds the
 *       rest idle. Prints "opened A errors E first_error=...", then obeys
 *       lines on stdin: "check" reads what each connection has received
 *       (session tickets) and prints "alive A dead D"; "exit" or end of input
 *       closes everything and exits.
 *
 * Built by bench/run.sh: cc -O2 -o loadgen loadgen.c -lssl -lcrypto
 * Exit status: 0 done (errors are reported in the output), 2 usage/setup.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* we keep sessions ourselves (resume) or not at all (hold) */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	/* a server that closes without close_notify is done, not failed */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* idle connections give their record buffers back, as the servers do */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* A TCP socket bound to source address src (port chosen at connect, so one
 * source address can use the whole ephemeral range per destination). */
static int
tcp_socket(const struct in_addr *src, int nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET };

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (src != NULL) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		sa.sin_addr = *src;
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void
set_err(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	if (buf[0] != '\0')
		return;
	if (e != 0)
		snprintf(buf, len, "%s: %s", what, ERR_reason_error_string(e));
	else if (errno != 0)
		snprintf(buf, len, "%s: %s", what, strerror(errno));
	else
		snprintf(buf, len, "%s", what);
	for (char *p = buf; *p; p++)
		if (*p == ' ')
			*p = '_';
}

/* ------------------------------------------------------------------ resume */

struct tally {
	long requests, resumed, full, errors;
	char first_error[120];
};

/* One connection: handshake (resuming *sess if set), request, read to EOF.
 * Returns 0 and updates *sess to the newest session on success. */
static int
one_request(SSL_CTX *ctx, const struct sockaddr_in *dst, const char *sni, const char *req,
    SSL_SESSION **sess, struct tally *t)
{
	char buf[16384];
	struct timeval tv = { .tv_sec = 10 };
	size_t got = 0;
	int fd, rc = -1, n;
	SSL *ssl = NULL;

	errno = 0;
	fd = tcp_socket(NULL, 0);
	if (fd < 0) {
		set_err(t->first_error, sizeof t->first_error, "socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) != 0) {
		set_err(t->first_error, sizeof t->first_error, "connect");
		goto err;
	}
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		goto err;
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, sni);
	if (*sess != NULL)
		SSL_set_session(ssl, *sess);
	if (SSL_connect(ssl) != 1) {
		set_err(t->first_error, sizeof t->first_error, "handshake");
		goto err;
	}
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0) {
		set_err(t->first_error, sizeof t->first_error, "write");
		goto err;
	}
	char head[13] = "";
	while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) {
		if (got < 12)
			memcpy(head + got, buf, (size_t)n < 12 - got ? (size_t)n : 12 - got);
		got += (size_t)n;
	}
	/* a FIN without close_notify is ZERO_RETURN too (IGNORE_UNEXPECTED_EOF);
	 * SSL_ERROR_SYSCALL is a reset or our 10 s timeout */
	if (SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN) {
		set_err(t->first_error, sizeof t->first_error, "read");
		goto err;
	}
	if (got < 12 || strncmp(head, "HTTP/1.1 200", 12) != 0) {
		set_err(t->first_error, sizeof t->first_error, "bad_response");
		goto err;
	}
	if (SSL_session_reused(ssl))
		t->resumed++;
	else
		t->full++;
	t->requests++;
	/* the tickets came before the response: this is the newest session */
	SSL_SESSION *s = SSL_get1_session(ssl);
	if (s != NULL) {
		SSL_SESSION_free(*sess);
		*sess = s;
	}
	rc = 0;
err:
	if (rc != 0)
		t->errors++;
	if (ssl != NULL) {
		if (rc == 0)
			SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
	ERR_clear_error();
	return rc;
}

static int
cmd_resume(char **av)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(av[1])) };
	const char *sni = av[2], *path = av[3];
	double seconds = atof(av[4]);
	int procs = atoi(av[5]), fds[256];
	char req[1024];
	struct tally total = { 0 };
	double t0 = now();

	if (inet_pton(AF_INET, av[0], &dst.sin_addr) != 1 || procs < 1 || procs > 256) {
		fprintf(stderr, "loadgen resume: bad arguments\n");
		return 2;
	}
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
	    path, sni);
	for (int i = 0; i < procs; i++) {
		int p[2];

		if (pipe(p) != 0)
			return 2;
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0) {
			SSL_CTX *ctx = client_ctx();
			SSL_SESSION *sess = NULL;
			struct tally t = { 0 };
			double end = now() + seconds;

			close(p[0]);
			while (ctx != NULL && now() < end)
				one_request(ctx, &dst, sni, req, &sess, &t);
			if (write(p[1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(1);
			_exit(0);
		}
		close(p[1]);
		fds[i] = p[0];
	}
	for (int i = 0; i < procs; i++) {
		struct tally t;

		if (read(fds[i], &t, sizeof t) == (ssize_t)sizeof t) {
			total.requests += t.requests;
			total.resumed += t.resumed;
			total.full += t.full;
			total.errors += t.errors;
			if (total.first_error[0] == '\0')
				memcpy(total.first_error, t.first_error, sizeof t.first_error);
		} else {
			total.errors++;
		}
		close(fds[i]);
	}
	while (wait(NULL) > 0)
		;
	printf("requests=%ld resumed=%ld full=%ld errors=%ld seconds=%.3f first_error=%s\n",
	    total.requests, total.resumed, total.full, total.errors, now() - t0,
	    total.first_error[0] ? total.first_error : "-");
	return 0;
}

/* ------------------------------------------------- fixed counts (phase s) */

/* A keep-alive connection: SSL over a blocking socket, or none. */
struct kconn {
	int fd;
	SSL *ssl;
};

static void
kconn_close(struct kconn *k)
{
	if (k->ssl != NULL)
		SSL_free(k->ssl);
	if (k->fd >= 0)
		close(k->fd);
	k->ssl = NULL;
	k->fd = -1;
	ERR_clear_error();
}

static int
kconn_open(SSL_CTX *ctx, const struct sockaddr_in *dst, const char *sni, struct kconn *k,
    struct tally *t)
{
	struct timeval tv = { .tv_sec = 10 };

	errno = 0;
	k->ssl = NULL;
	k->fd = tcp_socket(NULL, 0);
	if (k->fd < 0) {
		set_err(t->first_error, sizeof t->first_error, "socket");
		return -1;
	}
	setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(k->fd, (const struct sockaddr *)dst, sizeof *dst) != 0) {
		set_err(t->first_error, sizeof t->first_error, "connect");
		kconn_close(k);
		return -1;
	}
	k->ssl = SSL_new(ctx);
	if (k->ssl == NULL) {
		kconn_close(k);
		return -1;
	}
	SSL_set_fd(k->ssl, k->fd);
	SSL_set_tlsext_host_name(k->ssl, sni);
	if (SSL_connect(k->ssl) != 1) {
		set_err(t->first_error, sizeof t->first_error, "handshake");
		kconn_close(k);
		return -1;
	}
	return 0;
}

/* One request on a keep-alive connection: write it, read the head and a
 * Content-Length body. 0 on a 200 response read whole. */
static int
kconn_request(struct kconn *k, const char *req, struct tally *t)
{
	char buf[16384];
	size_t got = 0;
	long want = -1;
	int n;

	if (SSL_write(k->ssl, req, (int)strlen(req)) <= 0) {
		set_err(t->first_error, sizeof t->first_error, "write");
		return -1;
	}
	for (;;) {
		if (got == sizeof buf - 1) {
			set_err(t->first_error, sizeof t->first_error, "response_too_long");
			return -1;
		}
		n = SSL_read(k->ssl, buf + got, (int)(sizeof buf - 1 - got));
		if (n <= 0) {
			set_err(t->first_error, sizeof t->first_error, "read");
			return -1;
		}
		got += (size_t)n;
		buf[got] = '\0';
		if (want < 0) {
			char *end = strstr(buf, "\r\n\r\n"), *cl;

			if (end == NULL)
				continue;
			if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
				set_err(t->first_error, sizeof t->first_error, "bad_response");
				return -1;
			}
			cl = strcasestr(buf, "\r\ncontent-length:");
			if (cl == NULL || cl > end) {
				set_err(t->first_error, sizeof t->first_error, "no_content_length");
				return -1;
			}
			want = (long)(end + 4 - buf) + atol(cl + 17);
			if (want > (long)sizeof buf - 1) {
				set_err(t->first_error, sizeof t->first_error, "response_too_long");
				return -1;
			}
		}
		if ((long)got >= want)
			return (long)got == want ? 0 : -1;
	}
}

/* The parent's side of resume-n and keepalive-n: PROCS children, each
 * warmed up and waiting on its go pipe; see the comment at the top. */
static int
cmd_counted(char **av, int keepalive)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(av[1])) };
	const char *sni = av[2], *path = av[3];
	long count = atol(av[4]);
	int procs = atoi(av[5]), up[256], go[256];
	char req[1024], line[64];
	struct tally total = { 0 };
	double t0;

	if (inet_pton(AF_INET, av[0], &dst.sin_addr) != 1 || count < 1 || procs < 1 ||
	    procs > 256) {
		fprintf(stderr, "loadgen: bad arguments\n");
		return 2;
	}
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, sni,
	    keepalive ? "" : "Connection: close\r\n");
	for (int i = 0; i < procs; i++) {
		int pu[2], pg[2];

		if (pipe(pu) != 0 || pipe(pg) != 0)
			return 2;
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0) {
			SSL_CTX *ctx = client_ctx();
			SSL_SESSION *sess = NULL;
			struct tally t = { 0 }, warm = { 0 };
			struct kconn k = { .fd = -1 };
			char c;

			close(pu[0]);
			close(pg[1]);
			for (int j = 0; j < i; j++)
				close(go[j]);
			if (ctx == NULL)
				_exit(1);
			if (keepalive) {
				if (kconn_open(ctx, &dst, sni, &k, &warm) == 0 &&
				    kconn_request(&k, req, &warm) != 0)
					kconn_close(&k);
			} else {
				one_request(ctx, &dst, sni, req, &sess, &warm);
				one_request(ctx, &dst, sni, req, &sess, &warm);
			}
			if (write(pu[1], "r", 1) != 1 || read(pg[0], &c, 1) != 1)
				_exit(1);
			for (long n = 0; n < count; n++) {
				if (!keepalive) {
					one_request(ctx, &dst, sni, req, &sess, &t);
					continue;
				}
				if (k.ssl == NULL && kconn_open(ctx, &dst, sni, &k, &t) != 0) {
					t.errors++;
					continue;
				}
				if (kconn_request(&k, req, &t) == 0) {
					t.requests++;
				} else {
					t.errors++;
					kconn_close(&k);
				}
			}
			if (t.first_error[0] == '\0' && warm.first_error[0] != '\0')
				snprintf(t.first_error, sizeof t.first_error, "warm-up:%.100s",
				    warm.first_error);
			if (write(pu[1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(1);
			/* hold the connection until the parent lets go */
			while (read(pg[0], &c, 1) > 0)
				;
			kconn_close(&k);
			_exit(0);
		}
		close(pu[1]);
		close(pg[0]);
		up[i] = pu[0];
		go[i] = pg[1];
	}
	for (int i = 0; i < procs; i++) {
		char c;

		if (read(up[i], &c, 1) != 1) {
			fprintf(stderr, "loadgen: a process ended in its warm-up\n");
			return 2;
		}
	}
	printf("ready\n");
	if (fgets(line, sizeof line, stdin) == NULL)
		return 2;
	t0 = now();
	for (int i = 0; i < procs; i++)
		if (write(go[i], "g", 1) != 1)
			return 2;
	for (int i = 0; i < procs; i++) {
		struct tally t;

		if (read(up[i], &t, sizeof t) == (ssize_t)sizeof t) {
			total.requests += t.requests;
			total.resumed += t.resumed;
			total.full += t.full;
			total.errors += t.errors;
			if (total.first_error[0] == '\0')
				memcpy(total.first_error, t.first_error, sizeof t.first_error);
		} else {
			total.errors++;
		}
		close(up[i]);
	}
	printf("requests=%ld resumed=%ld full=%ld errors=%ld seconds=%.3f first_error=%s\n",
	    total.requests, total.resumed, total.full, total.errors, now() - t0,
	    total.first_error[0] ? total.first_error : "-");
	if (fgets(line, sizeof line, stdin) == NULL) {
		/* end of input: let go all the same */
	}
	for (int i = 0; i < procs; i++)
		close(go[i]);
	while (wait(NULL) > 0)
		;
	return 0;
}

/* -------------------------------------------------------------------- hold */

enum { C_FREE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };

struct hconn {
	int fd, state;
	SSL *ssl;
	double start;
};

static int
hold_fail(struct hconn *c, char *first, size_t len, const char *what)
{
	set_err(first, len, what);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_DEAD;
	ERR_clear_error();
	return -1;
}

static int
cmd_hold(char **av)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(av[1])) };
	const char *sni = av[2];
	long n = atol(av[3]);
	struct in_addr src0;
	int nsrc = atoi(av[5]), conc = atoi(av[6]);
	double timeout = atof(av[7]);
	char first[160] = "";
	long launched = 0, opened = 0, errors = 0, inflight = 0;
	int stop = 0;
	double last_scan = 0;
	SSL_CTX *ctx = client_ctx();
	struct hconn *cs;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event evs[256];

	if (inet_pton(AF_INET, av[0], &dst.sin_addr) != 1 || inet_pton(AF_INET, av[4], &src0) != 1 ||
	    n < 1 || nsrc < 1 || conc < 1 || ctx == NULL || ep < 0) {
		fprintf(stderr, "loadgen hold: bad arguments\n");
		return 2;
	}
	cs = calloc((size_t)n, sizeof *cs);
	if (cs == NULL)
		return 2;
	while (!stop || inflight > 0) {
		/* launch up to conc handshakes */
		while (!stop && launched < n && inflight < conc) {
			struct hconn *c = &cs[launched];
			struct in_addr src = { htonl(ntohl(src0.s_addr) + (uint32_t)(launched % nsrc)) };
			struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

			launched++;
			c->start = now();
			c->ssl = NULL;
			errno = 0;
			c->fd = tcp_socket(&src, 1);
			if (c->fd < 0) {
				hold_fail(c, first, sizeof first, "socket");
				errors++;
				stop = 1;
				break;
			}
			if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0 &&
			    errno != EINPROGRESS) {
				hold_fail(c, first, sizeof first, "connect");
				errors++;
				stop = 1;
				break;
			}
			c->state = C_CONNECTING;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			inflight++;
		}
		if (launched >= n)
			stop = 1;
		if (inflight == 0)
			break;
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			struct hconn *c = evs[i].data.ptr;
			int r;

			if (c->state == C_CONNECTING) {
				int err = 0;
				socklen_t sl = sizeof err;

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
				if (err != 0) {
					errno = err;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					hold_fail(c, first, sizeof first, "connect");
					errors++;
					inflight--;
					stop = 1;
					continue;
				}
				c->ssl = SSL_new(ctx);
				if (c->ssl == NULL) {
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					hold_fail(c, first, sizeof first, "SSL_new");
					errors++;
					inflight--;
					stop = 1;
					continue;
				}
				SSL_set_fd(c->ssl, c->fd);
				SSL_set_tlsext_host_name(c->ssl, sni);
				c->state = C_HANDSHAKE;
			}
			errno = 0;
			r = SSL_connect(c->ssl);
			if (r == 1) {
				/* idle from now on: nobody watches it until "check" */
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				c->state = C_OPEN;
				opened++;
				inflight--;
				continue;
			}
			struct epoll_event ev = { .data.ptr = c };
			switch (SSL_get_error(c->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				ev.events = EPOLLIN;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				break;
			case SSL_ERROR_WANT_WRITE:
				ev.events = EPOLLOUT;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				break;
			default:
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				hold_fail(c, first, sizeof first, "handshake");
				errors++;
				inflight--;
				stop = 1;
			}
		}
		/* handshakes past their time fail too (a server that stopped
		 * accepting leaves them in its listen queue); looked for ten
		 * times a second, not after every event */
		double t = now();
		if (t - last_scan >= 0.1) {
			last_scan = t;
			for (long i = 0; i < launched && inflight > 0; i++) {
				struct hconn *c = &cs[i];

				if ((c->state == C_CONNECTING || c->state == C_HANDSHAKE) &&
				    t - c->start > timeout) {
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					errno = 0;
					hold_fail(c, first, sizeof first, "handshake_timeout");
					errors++;
					inflight--;
					stop = 1;
				}
			}
		}
	}
	printf("opened %ld errors %ld first_error=%s\n", opened, errors, first[0] ? first : "-");
	fflush(stdout);

	char line[64];
	while (fgets(line, sizeof line, stdin) != NULL) {
		if (strncmp(line, "check", 5) == 0) {
			long alive = 0, dead = 0;
			char buf[4096];

			for (long i = 0; i < launched; i++) {
				struct hconn *c = &cs[i];
				int r, e;

				if (c->state != C_OPEN)
					continue;
				/* the session tickets are all a server sends an idle client */
				while ((r = SSL_read(c->ssl, buf, sizeof buf)) > 0)
					;
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					alive++;
				} else {
					hold_fail(c, first, sizeof first, "closed");
					dead++;
				}
			}
			printf("alive %ld dead %ld\n", alive, dead);
			fflush(stdout);
		} else if (strncmp(line, "exit", 4) == 0) {
			break;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 8 && strcmp(argv[1], "resume") == 0)
		return cmd_resume(argv + 2);
	if (argc == 8 && strcmp(argv[1], "resume-n") == 0)
		return cmd_counted(argv + 2, 0);
	if (argc == 8 && strcmp(argv[1], "keepalive-n") == 0)
		return cmd_counted(argv + 2, 1);
	if (argc == 10 && strcmp(argv[1], "hold") == 0)
		return cmd_hold(argv + 2);
	fprintf(stderr, "usage: loadgen resume HOST PORT SNI PATH SECONDS PROCS\n"
	    "       loadgen resume-n HOST PORT SNI PATH N PROCS\n"
	    "       loadgen keepalive-n HOST PORT SNI PATH N PROCS\n"
	    "       loadgen hold HOST PORT SNI N SRC NSRC CONC TIMEOUT\n");
	return 2;
}
