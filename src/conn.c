/*
 * conn.c: see conn.h.
 *
 * Flow: conn_accept() -> TLS handshake on the client bufferevent (tls.c's
 * ClientHello callback picks the host) -> on_handshake_event(CONNECTED) dials
 * the backend (backend.c) -> on_backend_event(CONNECTED) hands both sides to
 * relay.c -> relay_done() or a timer or a shutdown -> conn_close().
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backend.h"
#include "clientauth.h"
#include "conn.h"
#include "log.h"
#include "proxy.h"
#include "stats.h"

static void conn_arm_timer(struct conn *c, unsigned ms);

/* ---- the end ------------------------------------------------------------ */

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_set *s = c->set;

	(void)fd;
	(void)what;
	free(c);
	s->n--;
	s->gone(s->arg);
}

static void
send_close_notify(struct conn *c)
{
	SSL *ssl;

	if (c->close_notify_sent || c->client == NULL)
		return;
	c->close_notify_sent = 1;
	if ((ssl = bufferevent_openssl_get_ssl(c->client)) != NULL) {
		/* Best effort: libevent 2.1 never sends it on free. One call only
		 * sends ours and never reads, so we do not wait for the peer's.
		 * Do not mark the peer's as received: after a half-close the
		 * client may still send, and SSL_read must go on returning its
		 * data until its own close_notify. */
		(void)SSL_shutdown(ssl);
		ERR_clear_error();
	}
}

/* Milliseconds from t to the loop's current time. */
static unsigned long long
ms_since(const struct conn *c, const struct timeval *t)
{
	struct timeval now, d;

	event_base_gettimeofday_cached(c->set->base, &now);
	timersub(&now, t, &d);
	return (unsigned long long)d.tv_sec * 1000 + (unsigned long long)d.tv_usec / 1000;
}

/* Keep key=value fields of the access line parseable. */
static void
blank_out(char *s)
{
	for (; *s; s++)
		if (*s == ' ' || *s == '"')
			*s = '?';
}

static void
log_access(struct conn *c, const char *reason)
{
	char peer[ADDR_TEXT_MAX];
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	const char *version = "-", *cipher = "-";
	char cn[128] = "", san[160] = "";
	SSL *ssl = c->client ? bufferevent_openssl_get_ssl(c->client) : NULL;

	if (log_level_current < LOG_LVL_INFO)
		return;
	/* stats_counted: the handshake completed (the client may be gone) */
	if (ssl != NULL && (c->state != CONN_HANDSHAKE || c->stats_counted)) {
		SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
		version = SSL_get_version(ssl);
		cipher = SSL_get_cipher_name(ssl);
		/* the verified client identity (mTLS), if any */
		clientauth_identity(SSL_get0_peer_certificate(ssl), cn, sizeof(cn), san,
		    sizeof(san));
		blank_out(cn);
		blank_out(san);
	}
	log_msg(LOG_LVL_INFO, "access client=%s host=%s sni=%s alpn=%.*s tls=%s cipher=%s "
	    "client_cn=%s client_san=%s backend=%s in=%llu out=%llu ms=%ld reason=\"%s\"",
	    addr_format((const struct sockaddr *)&c->peer, c->peer_len, peer, sizeof(peer)),
	    c->tls.host ? c->tls.host->cfg->label : "-",
	    c->tls.sni[0] ? c->tls.sni : "-",
	    alpn_len ? (int)alpn_len : 1, alpn_len ? (const char *)alpn : "-",
	    version, cipher ? cipher : "-", cn[0] ? cn : "-", san[0] ? san : "-",
	    c->backend_addr ? c->backend_addr->text : "-",
	    (unsigned long long)c->relay.bytes[0], (unsigned long long)c->relay.bytes[1],
	    (long)ms_since(c, &c->start), reason);
}

/* Position of the connection's host in its generation (for stats.h). */
static size_t
host_index(const struct conn *c)
{
	return (size_t)(c->tls.host - c->set->gen->hosts);
}

/*
 * Why a connection that ends before its handshake completed failed
 * (enum stats_hs_reason), or -1 when its host's max_connections refused it.
 * Matches the reasons tls.c and describe() write.
 */
static int
handshake_failure(const struct conn *c, const char *reason)
{
	const char *f = c->tls.fail;

	if (c->state == CONN_PROXY)
		return strcmp(reason, "PROXY header timeout") == 0 ? HS_TIMEOUT :
		    strncmp(reason, "PROXY header", 12) == 0 ? HS_PROXY_HEADER : HS_OTHER;
	if (f != NULL) {
		if (strcmp(f, "host max_connections reached") == 0)
			return -1;
		if (strcmp(f, "unknown server name") == 0 ||
		    strcmp(f, "no server name and no default host") == 0)
			return HS_UNKNOWN_SNI;
		if (strcmp(f, "no common ALPN protocol") == 0)
			return HS_NO_ALPN;
		if (strncmp(f, "client certificate", 18) == 0)
			return HS_CLIENT_CERT;
		return HS_OTHER;
	}
	if (strcmp(reason, "handshake timeout") == 0)
		return HS_TIMEOUT;
	if (strstr(reason, "peer did not return a certificate") != NULL)
		return HS_CLIENT_CERT;
	if (strstr(reason, "client TLS error: ") != NULL)
		return HS_PROTOCOL;
	if (strstr(reason, "client closed") != NULL || strstr(reason, "client reset") != NULL ||
	    strstr(reason, "client error") != NULL)
		return HS_CLOSED;
	return HS_OTHER;
}

/* The metrics of a connection that ends (stats.h). */
static void
count_close(const struct conn *c, const char *reason)
{
	stats_add(SG_ENDED, 1);
	if (c->stats_counted) {
		size_t h = host_index(c);
		stats_host_add(h, SH_CLOSED, 1);
		stats_host_add(h, SH_BYTES_IN, c->relay.bytes[0]);
		stats_host_add(h, SH_BYTES_OUT, c->relay.bytes[1]);
	} else if (c->state == CONN_PROXY || c->state == CONN_HANDSHAKE) {
		int why = handshake_failure(c, reason);
		if (why >= 0)
			stats_add(SG_HS_FAIL + (unsigned)why, 1);
		else
			stats_host_add(host_index(c), SH_REFUSED, 1);
	}
}

void
conn_close(struct conn *c, const char *reason)
{
	struct conn_set *s = c->set;

	if (c->state == CONN_CLOSED)
		return;
	count_close(c, reason);
	log_access(c, reason);
	c->state = CONN_CLOSED;
	tls_release(&c->tls);
	relay_stop(&c->relay);
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = NULL;
	if (c->ev_proxy != NULL)
		event_free(c->ev_proxy);
	c->ev_proxy = NULL;
	free(c->proxy_buf);
	c->proxy_buf = NULL;
	if (c->client != NULL && c->close_notify_sent) {
		/* OpenSSL 3.0 may have cleared SSL_SENT_SHUTDOWN on the client's
		 * EOF (SSL_OP_IGNORE_UNEXPECTED_EOF); without it SSL_free drops
		 * the session from the cache and session-ID resumption fails. */
		SSL *ssl = bufferevent_openssl_get_ssl(c->client);
		if (ssl != NULL)
			SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
	}
	if (c->client != NULL)
		bufferevent_free(c->client);	/* frees the SSL and closes the fd */
	else if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->backend != NULL)
		bufferevent_free(c->backend);
	c->client = c->backend = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* Free the struct itself on the next loop turn, so that a second
	 * conn_close() from the same callback chain finds state CLOSED. */
	if (event_base_once(s->base, -1, EV_TIMEOUT, conn_free_cb, c, NULL) != 0)
		conn_free_cb(-1, 0, c);
}

/* ---- reasons ------------------------------------------------------------ */

/*
 * Describe why bufferevent bev reported `what`, into buf: "SIDE timeout",
 * "SIDE closed" (an EOF, or a write to a peer that had closed: EPIPE),
 * "SIDE reset" (ECONNRESET), "SIDE TLS error: REASON", "SIDE error: ERRNO".
 * handshake_failure() and the man page's list of reasons depend on these.
 */
static const char *
describe(struct bufferevent *bev, short what, const char *side, char *buf, size_t n)
{
	unsigned long e, last = 0;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(buf, n, "%s timeout", side);
		return buf;
	}
	/* A read EOF is the peer's close, whatever errno holds. A write that
	 * failed is reported as an EOF too once the peer's close_notify (or
	 * FIN) was read (OpenSSL then says SSL_ERROR_ZERO_RETURN); errno tells
	 * a reset from a close. */
	if ((what & BEV_EVENT_EOF) && !((what & BEV_EVENT_WRITING) && err == ECONNRESET)) {
		ERR_clear_error();
		snprintf(buf, n, "%s closed", side);
		return buf;
	}
	/* libevent 2.1 queues SSL_get_error()'s bare code (library 0) along
	 * with the real errors; keep the first real one. A bare code alone
	 * (SSL_ERROR_SYSCALL) means the socket failed: errno says how. */
	while (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0)
		if (last == 0 && ERR_GET_LIB(e) != 0)
			last = e;
	if (last != 0) {
		char ebuf[256];
		ERR_error_string_n(last, ebuf, sizeof(ebuf));
		const char *r = strstr(ebuf, "::");
		snprintf(buf, n, "%s TLS error: %s", side, r ? r + 2 : ebuf);
	} else if (err == ECONNRESET) {
		snprintf(buf, n, "%s reset", side);
	} else if (err == EPIPE) {
		snprintf(buf, n, "%s closed", side);
	} else if (err != 0) {
		snprintf(buf, n, "%s error: %s", side, strerror(err));
	} else {
		snprintf(buf, n, "%s error", side);
	}
	ERR_clear_error();
	return buf;
}

/* ---- relay -------------------------------------------------------------- */

static void
relay_shutdown_write(void *arg, int side)
{
	struct conn *c = arg;

	if (side == 0)
		send_close_notify(c);
	else
		(void)shutdown(bufferevent_getfd(c->backend), SHUT_WR);
}

static void
relay_done(void *arg, const char *reason, int side, short what)
{
	struct conn *c = arg;
	char buf[300];

	if (side < 0) {
		conn_close(c, reason);
		return;
	}
	describe(side == 0 ? c->client : c->backend, what, side == 0 ? "client" : "backend",
	    buf, sizeof(buf));
	/* No close_notify after a backend failure: the client must be able to
	 * tell a response cut short by a backend reset from a complete one,
	 * and a protocol without a length of its own has only the TLS close
	 * to go by. It sees the TCP close without close_notify: truncated. */
	conn_close(c, buf);
}

static const struct relay_ops relay_ops = { relay_shutdown_write, relay_done };

/* ---- timer -------------------------------------------------------------- */

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct host_config *hc = c->tls.host ? c->tls.host->cfg : NULL;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CONN_PROXY:
		conn_close(c, "PROXY header timeout");
		return;
	case CONN_HANDSHAKE: {
		/* armed with the listener's shortest handshake_timeout; once SNI
		 * has named the host, the host's own applies */
		if (hc != NULL) {
			unsigned long long ms = ms_since(c, &c->start);
			if (ms + 1 < hc->handshake_timeout_ms) {
				conn_arm_timer(c, hc->handshake_timeout_ms - (unsigned)ms);
				return;
			}
		}
		conn_close(c, "handshake timeout");
		return;
	}
	case CONN_CONNECTING:
		stats_host_add(host_index(c), SH_CONNECT_FAILED, 1);
		send_close_notify(c);
		conn_close(c, "backend connect timeout");
		return;
	case CONN_RELAYING: {
		unsigned long long idle_ms = ms_since(c, &c->relay.last_activity);

		if (idle_ms + 1 >= hc->idle_timeout_ms) {
			send_close_notify(c);
			conn_close(c, "idle timeout");
		} else {
			conn_arm_timer(c, hc->idle_timeout_ms - (unsigned)idle_ms);
		}
		return;
	}
	case CONN_CLOSED:
		return;
	}
}

static void
conn_arm_timer(struct conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

/* ---- backend ------------------------------------------------------------ */

/* proxy_client_cert (enum proxy_cert) as the TLS side's certificate form */
static enum tls_cert_form
cert_form(int proxy_client_cert)
{
	switch (proxy_client_cert) {
	case PROXY_CERT_DER:
		return TLS_CERT_DER;
	case PROXY_CERT_PEM:
		return TLS_CERT_PEM;
	default:
		return TLS_CERT_NONE;
	}
}

/* The PROXY header the host wants in front of the plaintext, if any: the
 * TLS side says what the handshake was (tls_facts_get), proxy_tls.c turns
 * that into TLVs, proxy.c encodes. */
static int
send_proxy_header(struct conn *c)
{
	const struct host_config *hc = c->tls.host->cfg;
	const struct sockaddr *src = (const struct sockaddr *)&c->peer;
	const struct sockaddr *dst = (const struct sockaddr *)&c->local;
	SSL *ssl = bufferevent_openssl_get_ssl(c->client);
	struct tls_facts f;
	struct proxy_tlvs t;
	uint8_t *buf;
	size_t cap;
	ssize_t n;

	if (hc->proxy_protocol == PROXY_SEND_V1) {
		char line[PROXY_V1_MAX + 1];
		size_t len = proxy_encode_v1(src, dst, line);
		return bufferevent_write(c->backend, line, len);
	}
	if (hc->proxy_protocol != PROXY_SEND_V2)
		return 0;
	tls_facts_get(ssl, cert_form(hc->proxy_client_cert), &f);
	proxy_tlvs_from_tls(&f, (uint8_t)hc->proxy_client_cert_tlv, &t);
	cap = 1024 + f.client_cert_len;
	if ((buf = malloc(cap)) == NULL) {
		tls_facts_free(&f);
		return -1;
	}
	n = proxy_encode_v2(src, dst, &t, buf, cap);
	if (n < 0 && t.cert != NULL) {
		/* a certificate too large for the 16-bit length: send the rest */
		log_warn("client certificate too large for a PROXY v2 TLV; left out");
		t.cert = NULL;
		t.cert_len = 0;
		n = proxy_encode_v2(src, dst, &t, buf, cap);
	}
	if (n > 0)
		n = bufferevent_write(c->backend, buf, (size_t)n) == 0 ? 0 : -1;
	free(buf);
	tls_facts_free(&f);
	return n < 0 ? -1 : 0;
}

static void
on_backend_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char buf[300];

	if (what & BEV_EVENT_CONNECTED) {
		stats_connect_time(host_index(c), stats_clock_us() - c->dial_us);
		if (send_proxy_header(c) != 0) {
			send_close_notify(c);
			conn_close(c, "cannot build the PROXY header");
			return;
		}
		c->state = CONN_RELAYING;
		relay_start(&c->relay, c->client, c->backend, &relay_ops, c);
		if (c->state == CONN_RELAYING)
			conn_arm_timer(c, c->tls.host->cfg->idle_timeout_ms);
		return;
	}
	snprintf(buf, sizeof(buf), "backend connect failed: %s",
	    strerror(EVUTIL_SOCKET_ERROR()));
	stats_host_add(host_index(c), SH_CONNECT_FAILED, 1);
	send_close_notify(c);
	conn_close(c, buf);
	(void)bev;
}

static void
dial_backend(struct conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	SSL *ssl = bufferevent_openssl_get_ssl(c->client);
	char buf[300];

	SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	c->backend_addr = gen_backend_for(c->tls.host, alpn, alpn_len);
	c->state = CONN_CONNECTING;
	/* hold what the client sends until the backend is there */
	bufferevent_setcb(c->client, NULL, NULL, NULL, c);
	bufferevent_disable(c->client, EV_READ);
	c->dial_us = stats_clock_us();
	c->backend = backend_dial(c->set->base, c->backend_addr);
	if (c->backend == NULL) {
		snprintf(buf, sizeof(buf), "backend connect failed: %s", strerror(errno));
		stats_host_add(host_index(c), SH_CONNECT_FAILED, 1);
		send_close_notify(c);
		conn_close(c, buf);
		return;
	}
	bufferevent_setcb(c->backend, NULL, NULL, on_backend_event, c);
	conn_arm_timer(c, c->tls.host->cfg->connect_timeout_ms);
}

/* ---- handshake ---------------------------------------------------------- */

/*
 * OpenSSL has just written an alert. Closing a socket with unread input
 * (in TLS 1.3, the client's Finished still in flight) makes the kernel send
 * a reset, which can reach the client before it reads the alert; a client
 * that writes at once (curl) then sees "connection reset" instead of the
 * reason. So read what is pending and send our FIN first.
 */
static void
let_alert_arrive(int fd)
{
	char sink[4096];
	int saved = errno;

	if (fd < 0)
		return;
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	(void)shutdown(fd, SHUT_WR);
	errno = saved;
}

/*
 * Is the client already gone, right after its handshake? Scanners, health
 * checks and `openssl s_time` close as soon as the handshake is done, often
 * before our session tickets arrive (their write then fails). A backend
 * connection for them is wasted work for us and for the backend, so peek
 * once: a reset, or a FIN with no byte before it and nothing decrypted
 * and waiting in OpenSSL, means nobody will read what the backend says.
 * A request, a close_notify or silence all mean "dial".
 */
static int
client_gone(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	char b;
	ssize_t r;

	if (fd < 0 || ssl == NULL || SSL_has_pending(ssl) ||
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		return 0;
	r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r == 0)
		return 1;
	return r < 0 && (errno == ECONNRESET || errno == EPIPE || errno == ETIMEDOUT);
}

static void
on_handshake_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char buf[300];

	if (what & BEV_EVENT_CONNECTED) {
		if (tls_acme_challenge_done(bufferevent_openssl_get_ssl(bev))) {
			conn_close(c, "acme challenge");	/* validated: nothing follows */
			return;
		}
		stats_host_add(host_index(c), SH_OPENED, 1);
		if (SSL_session_reused(bufferevent_openssl_get_ssl(bev)))
			stats_host_add(host_index(c), SH_RESUMED, 1);
		c->stats_counted = 1;
		if (client_gone(bev)) {
			conn_close(c, "client closed after the handshake");
			return;
		}
		dial_backend(c);
		return;
	}
	if (c->tls.fail != NULL) {
		ERR_clear_error();
		snprintf(buf, sizeof(buf), "handshake failed: %s", c->tls.fail);
	} else {
		char why[256];
		describe(bev, what, "client", why, sizeof(why));
		snprintf(buf, sizeof(buf), "handshake failed: %s", why);
	}
	let_alert_arrive(bufferevent_getfd(bev));
	conn_close(c, buf);
}

/* Hand the client socket to OpenSSL: the TLS handshake starts. */
static void
start_tls(struct conn *c)
{
	SSL *ssl;

	c->state = CONN_HANDSHAKE;
	if ((ssl = tls_ssl_new(c->set->gen->tls, &c->tls)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	c->client = bufferevent_openssl_socket_new(c->set->base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->client == NULL) {	/* libevent freed the SSL; the fd is still ours */
		ERR_clear_error();
		conn_close(c, "out of memory");
		return;
	}
	c->fd = -1;	/* the bufferevent owns it now */
	/* No allow_dirty_shutdown: SSL_OP_IGNORE_UNEXPECTED_EOF (tls.c) already
	 * makes a FIN without close_notify an EOF, and a reset must stay an
	 * error, or a vanished client would hold its backend until idle_timeout. */
	bufferevent_setcb(c->client, NULL, NULL, on_handshake_event, c);
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
}

/*
 * CONN_PROXY: the socket is readable. Peek at what has arrived and consume
 * exactly the header, never a byte of the TLS that follows it: bytes that
 * cannot complete the header yet are all header bytes, so they are consumed
 * too (and kept in proxy_buf), which keeps the level-triggered event from
 * firing again for them.
 */
static void
on_proxy_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct proxy_info info;
	ssize_t got, r;
	char why[80];

	(void)what;
	if (c->proxy_buf == NULL && (c->proxy_buf = malloc(PROXY_MAX_HEADER)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	got = recv(fd, c->proxy_buf + c->proxy_len, PROXY_MAX_HEADER - c->proxy_len, MSG_PEEK);
	if (got <= 0) {
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		snprintf(why, sizeof(why), "PROXY header: %s",
		    got == 0 ? "client closed" : strerror(errno));
		conn_close(c, why);
		return;
	}
	r = proxy_decode(c->proxy_buf, c->proxy_len + (size_t)got, &info);
	if (r < 0) {
		conn_close(c, "PROXY header: invalid");
		return;
	}
	/* consume the header bytes among those peeked */
	size_t take = r > 0 ? (size_t)r - c->proxy_len : (size_t)got;
	if (recv(fd, c->proxy_buf + c->proxy_len, take, 0) != (ssize_t)take) {
		conn_close(c, "PROXY header: read failed");
		return;
	}
	c->proxy_len += take;
	if (r == 0) {
		if (c->proxy_len >= PROXY_MAX_HEADER)
			conn_close(c, "PROXY header: too long");
		return;	/* more to come */
	}
	if (!info.local && info.src_len > 0 && info.src_len <= sizeof(c->peer)) {
		memcpy(&c->peer, &info.src, info.src_len);
		c->peer_len = info.src_len;
		memcpy(&c->local, &info.dst, info.dst_len);
		c->local_len = info.dst_len;
	}
	event_free(c->ev_proxy);
	c->ev_proxy = NULL;
	free(c->proxy_buf);
	c->proxy_buf = NULL;
	start_tls(c);
}

/* Must this peer start with a PROXY header? */
static int
must_send_proxy(const struct conn_set *s, const struct sockaddr *sa)
{
	const struct cidr_list *cl = &s->gen->cfg->g.accept_proxy;

	for (size_t i = 0; i < cl->n; i++)
		if (cidr_match(&cl->v[i], sa))
			return 1;
	return 0;
}

void
conn_accept(struct conn_set *s, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn *c = NULL;
	int one = 1;
	char peer[ADDR_TEXT_MAX];

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto err;
	c->set = s;
	c->fd = fd;
	c->tls.listener = l;
	c->tls.worker = s->tls;
	if (salen > sizeof(c->peer))
		salen = sizeof(c->peer);
	memcpy(&c->peer, sa, salen);
	c->peer_len = salen;
	c->local_len = sizeof(c->local);
	if (getsockname(fd, (struct sockaddr *)&c->local, &c->local_len) != 0)
		c->local_len = 0;
	event_base_gettimeofday_cached(s->base, &c->start);
	if ((c->timer = evtimer_new(s->base, conn_timer_cb, c)) == NULL)
		goto err;

	c->next = s->head;
	if (s->head)
		s->head->prev = c;
	s->head = c;
	s->n++;
	stats_add(SG_ACCEPTED, 1);
	/* the handshake deadline covers a PROXY header too */
	conn_arm_timer(c, l->handshake_timeout_ms);
	if (must_send_proxy(s, sa)) {
		c->state = CONN_PROXY;
		c->ev_proxy = event_new(s->base, fd, EV_READ | EV_PERSIST, on_proxy_readable, c);
		if (c->ev_proxy == NULL || event_add(c->ev_proxy, NULL) != 0)
			conn_close(c, "out of memory");
		return;
	}
	start_tls(c);
	return;
err:
	log_warn("cannot take connection from %s: %s",
	    addr_format(sa, salen, peer, sizeof(peer)), strerror(errno ? errno : ENOMEM));
	if (c != NULL && c->timer != NULL)
		event_free(c->timer);
	free(c);
	close(fd);
}
