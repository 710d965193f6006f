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

#include "backend.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

static void conn_arm_timer(struct conn *c, unsigned ms);

/* ---- the end ------------------------------------------------------------ */

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;

	(void)fd;
	(void)what;
	free(c);
	worker_conn_gone(w);
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

	event_base_gettimeofday_cached(c->w->base, &now);
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
	if (ssl != NULL && c->state != CONN_HANDSHAKE) {
		SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
		version = SSL_get_version(ssl);
		cipher = SSL_get_cipher_name(ssl);
		/* the verified client identity (mTLS), if any */
		cert_identity(SSL_get0_peer_certificate(ssl), cn, sizeof(cn), san, sizeof(san));
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

void
conn_close(struct conn *c, const char *reason)
{
	struct worker *w = c->w;

	if (c->state == CONN_CLOSED)
		return;
	log_access(c, reason);
	c->state = CONN_CLOSED;
	relay_stop(&c->relay);
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = NULL;
	if (c->client != NULL)
		bufferevent_free(c->client);	/* frees the SSL and closes the fd */
	if (c->backend != NULL)
		bufferevent_free(c->backend);
	c->client = c->backend = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* Free the struct itself on the next loop turn, so that a second
	 * conn_close() from the same callback chain finds state CLOSED. */
	if (event_base_once(w->base, -1, EV_TIMEOUT, conn_free_cb, c, NULL) != 0) {
		free(c);
		worker_conn_gone(w);
	}
}

/* ---- reasons ------------------------------------------------------------ */

/* Describe why bufferevent bev reported `what`, into buf. */
static const char *
describe(struct bufferevent *bev, short what, const char *side, char *buf, size_t n)
{
	unsigned long e, last = 0;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(buf, n, "%s timeout", side);
		return buf;
	}
	if (what & BEV_EVENT_EOF) {
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
	if (side == 1 && !(what & BEV_EVENT_TIMEOUT))
		send_close_notify(c);	/* the client did nothing wrong */
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

static void
on_backend_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char buf[300];

	if (what & BEV_EVENT_CONNECTED) {
		c->state = CONN_RELAYING;
		relay_start(&c->relay, c->client, c->backend, &relay_ops, c);
		if (c->state == CONN_RELAYING)
			conn_arm_timer(c, c->tls.host->cfg->idle_timeout_ms);
		return;
	}
	snprintf(buf, sizeof(buf), "backend connect failed: %s",
	    strerror(EVUTIL_SOCKET_ERROR()));
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
	c->backend = backend_dial(c->w->base, c->backend_addr);
	if (c->backend == NULL) {
		snprintf(buf, sizeof(buf), "backend connect failed: %s", strerror(errno));
		send_close_notify(c);
		conn_close(c, buf);
		return;
	}
	bufferevent_setcb(c->backend, NULL, NULL, on_backend_event, c);
	conn_arm_timer(c, c->tls.host->cfg->connect_timeout_ms);
}

/* ---- handshake ---------------------------------------------------------- */

static void
on_handshake_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char buf[300];

	if (what & BEV_EVENT_CONNECTED) {
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
	conn_close(c, buf);
}

void
conn_accept(struct worker *w, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn *c = NULL;
	SSL *ssl = NULL;
	int one = 1;
	char peer[ADDR_TEXT_MAX];

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto err;
	c->w = w;
	c->state = CONN_HANDSHAKE;
	c->tls.listener = l;
	if (salen > sizeof(c->peer))
		salen = sizeof(c->peer);
	memcpy(&c->peer, sa, salen);
	c->peer_len = salen;
	event_base_gettimeofday_cached(w->base, &c->start);
	if ((c->timer = evtimer_new(w->base, conn_timer_cb, c)) == NULL)
		goto err;
	if ((ssl = SSL_new(w->gen->base_ctx)) == NULL)
		goto err;
	tls_attach(ssl, &c->tls);
	c->client = bufferevent_openssl_socket_new(w->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->client == NULL) {
		ssl = NULL;	/* libevent freed it */
		goto err;
	}
	/* No allow_dirty_shutdown: SSL_OP_IGNORE_UNEXPECTED_EOF (tls.c) already
	 * makes a FIN without close_notify an EOF, and a reset must stay an
	 * error, or a vanished client would hold its backend until idle_timeout. */
	bufferevent_setcb(c->client, NULL, NULL, on_handshake_event, c);
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
	conn_arm_timer(c, l->handshake_timeout_ms);

	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	return;
err:
	log_warn("cannot take connection from %s: %s",
	    addr_format(sa, salen, peer, sizeof(peer)), strerror(errno ? errno : ENOMEM));
	SSL_free(ssl);
	if (c != NULL && c->timer != NULL)
		event_free(c->timer);
	free(c);
	close(fd);
	ERR_clear_error();
}
