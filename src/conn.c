/*
 * conn.c: see conn.h.
 *
 * Flow: conn_accept() registers the client socket -> [on_proxy_readable]
 * -> handshake() on each event until tls_stream_handshake says DONE (the
 * ClientHello callback of tls_accept.c picks the host) -> handshake_done()
 * reads what the client sent already (a client that is gone is closed
 * without a dial) and dials a member of the host's backend pool (pool.c
 * chooses, backend.c connects; a member that fails to connect is replaced
 * by the next, dial_member) -> connected() hands the backend side to the
 * relay -> the relay's done(), a timer or a drain -> conn_close().
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "clientauth.h"
#include "conn.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "stats.h"

static void conn_arm_timer(struct conn *c, unsigned ms);
static void handshake(struct conn *c);
static void pump(struct conn *c, int side);
static void connect_failed(struct conn *c, int err);
static void dial_member(struct conn *c);

/* ---- the lifecycle -------------------------------------------------------- */

int
conn_state_next(enum conn_state from, enum conn_state to)
{
	if (to == CONN_CLOSED)
		return from != CONN_CLOSED;
	switch (from) {
	case CONN_NEW:
		return to == CONN_PROXY || to == CONN_HANDSHAKE;
	case CONN_PROXY:
		return to == CONN_HANDSHAKE;
	case CONN_HANDSHAKE:
		return to == CONN_CONNECTING;
	case CONN_CONNECTING:
		return to == CONN_RELAYING;
	case CONN_RELAYING:
		return to == CONN_DRAINING;
	case CONN_DRAINING:
	case CONN_CLOSED:
		return 0;
	}
	return 0;
}

static void
set_state(struct conn *c, enum conn_state to)
{
	assert(conn_state_next(c->state, to));
	c->state = to;
}

/* One row per enum conn_end, in its order. */
static const struct conn_end_info end_table[END_COUNT] = {
	[END_CLOSED] = { "closed", HS_OTHER, 1 },
	[END_PROXY_TIMEOUT] = { "PROXY header timeout", HS_TIMEOUT, 0 },
	[END_PROXY_CLOSED] = { "PROXY header: client closed", HS_PROXY_HEADER, 0 },
	[END_PROXY_ERROR] = { "PROXY header", HS_PROXY_HEADER, 0 },
	[END_PROXY_INVALID] = { "PROXY header: invalid", HS_PROXY_HEADER, 0 },
	[END_PROXY_TOO_LONG] = { "PROXY header: too long", HS_PROXY_HEADER, 0 },
	[END_PROXY_READ] = { "PROXY header: read failed", HS_PROXY_HEADER, 0 },
	[END_HS_TIMEOUT] = { "handshake timeout", HS_TIMEOUT, 0 },
	[END_HS_UNKNOWN_NAME] = { "handshake failed: unknown server name", HS_UNKNOWN_SNI, 0 },
	[END_HS_NO_NAME] = { "handshake failed: no server name and no default host",
	    HS_UNKNOWN_SNI, 0 },
	[END_HS_HOST_FULL] = { "handshake failed: host max_connections reached",
	    CONN_HS_HOST_REFUSED, 0 },
	[END_HS_HOST_CERT] = { "handshake failed: cannot set the host's certificate", HS_OTHER,
	    0 },
	[END_HS_NO_ALPN] = { "handshake failed: no common ALPN protocol", HS_NO_ALPN, 0 },
	[END_HS_CLIENT_CERT] = { "handshake failed: client certificate", HS_CLIENT_CERT, 0 },
	[END_HS_NOT_ALLOWED] = { "handshake failed: client certificate not on the allow-list",
	    HS_CLIENT_CERT, 0 },
	[END_HS_PENDING] = { "handshake failed: certificate pending", HS_OTHER, 0 },
	[END_HS_ACME_REFUSED] = { "handshake failed: acme-tls/1 without a pending challenge",
	    HS_NO_ALPN, 0 },
	[END_HS_ACME_CERT] = { "handshake failed: cannot set the acme-tls/1 certificate", HS_OTHER,
	    0 },
	[END_HS_CLOSED] = { "handshake failed: client closed", HS_CLOSED, 0 },
	[END_HS_RESET] = { "handshake failed: client reset", HS_CLOSED, 0 },
	[END_HS_TLS_ERROR] = { "handshake failed: client TLS error", HS_PROTOCOL, 0 },
	[END_HS_NO_CLIENT_CERT] = { "handshake failed: client TLS error", HS_CLIENT_CERT, 0 },
	[END_HS_ERROR] = { "handshake failed: client error", HS_CLOSED, 0 },
	[END_GONE] = { "client closed after the handshake", HS_OTHER, 0 },
	[END_ACME_CHALLENGE] = { "acme challenge", CONN_HS_NONE, 0 },
	[END_CONNECT_FAILED] = { "backend connect failed", HS_OTHER, 1 },
	[END_CONNECT_TIMEOUT] = { "backend connect timeout", HS_OTHER, 1 },
	[END_PROXY_HEADER_BUILD] = { "cannot build the PROXY header", HS_OTHER, 1 },
	[END_IDLE_TIMEOUT] = { "idle timeout", HS_OTHER, 1 },
	/* After a failure on either side, no close_notify: the client must be
	 * able to tell a response cut short by a backend reset from a complete
	 * one, and a protocol without a length of its own has only the TLS
	 * close to go by. */
	[END_CLIENT_CLOSED] = { "client closed", HS_CLOSED, 0 },
	[END_CLIENT_RESET] = { "client reset", HS_CLOSED, 0 },
	[END_CLIENT_TLS_ERROR] = { "client TLS error", HS_PROTOCOL, 0 },
	[END_CLIENT_ERROR] = { "client error", HS_CLOSED, 0 },
	[END_BACKEND_CLOSED] = { "backend closed", HS_OTHER, 0 },
	[END_BACKEND_RESET] = { "backend reset", HS_OTHER, 0 },
	[END_BACKEND_ERROR] = { "backend error", HS_OTHER, 0 },
	[END_SHUTDOWN_TIMEOUT] = { "shutdown timeout", HS_OTHER, 0 },
	[END_WORKER_EXIT] = { "worker exit", HS_OTHER, 0 },
	[END_NO_MEMORY] = { "out of memory", HS_OTHER, 0 },
};

const struct conn_end_info *
conn_end_info(enum conn_end why)
{
	return &end_table[why];
}

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
log_access(struct conn *c, enum conn_end why, const char *detail)
{
	char peer[ADDR_TEXT_MAX];
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	const char *version = "-", *cipher = NULL;
	char cn[128] = "", san[160] = "";

	if (log_level_current < LOG_LVL_INFO)
		return;
	if (c->stats_counted) {	/* the handshake completed (the client may be gone) */
		tls_stream_alpn(&c->ts, &alpn, &alpn_len);
		version = tls_stream_version(&c->ts);
		cipher = tls_stream_cipher(&c->ts);
		/* the verified client identity (mTLS), if any */
		tls_stream_client_identity(&c->ts, cn, sizeof(cn), san, sizeof(san));
		blank_out(cn);
		blank_out(san);
	}
	log_msg(LOG_LVL_INFO, "access client=%s host=%s sni=%s alpn=%.*s tls=%s cipher=%s "
	    "client_cn=%s client_san=%s backend=%s in=%llu out=%llu ms=%ld reason=\"%s%s%s\"",
	    addr_format((const struct sockaddr *)&c->peer, c->peer_len, peer, sizeof(peer)),
	    c->tls.host ? c->tls.host->cfg->label : "-",
	    c->tls.sni[0] ? c->tls.sni : "-",
	    alpn_len ? (int)alpn_len : 1, alpn_len ? (const char *)alpn : "-",
	    version, cipher ? cipher : "-", cn[0] ? cn : "-", san[0] ? san : "-",
	    c->backend_addr ? c->backend_addr->text : "-",
	    (unsigned long long)c->relay.bytes[0], (unsigned long long)c->relay.bytes[1],
	    (long)ms_since(c, &c->start), end_table[why].text, detail ? ": " : "",
	    detail ? detail : "");
}

/* Position of the connection's host in its generation (for stats.h). */
static size_t
host_index(const struct conn *c)
{
	return (size_t)(c->tls.host - c->set->gen->hosts);
}

/* The metrics of a connection that ends (stats.h). */
static void
count_close(const struct conn *c, enum conn_end why)
{
	stats_add(SG_ENDED, 1);
	if (c->stats_counted) {
		size_t h = host_index(c);
		stats_host_add(h, SH_CLOSED, 1);
		stats_host_add(h, SH_BYTES_IN, c->relay.bytes[0]);
		stats_host_add(h, SH_BYTES_OUT, c->relay.bytes[1]);
	} else if (c->state == CONN_PROXY || c->state == CONN_HANDSHAKE ||
	    c->state == CONN_NEW) {
		int hs = end_table[why].hs;
		if (hs == CONN_HS_NONE)
			return;	/* not a failure: an ACME validation */
		if (hs == CONN_HS_HOST_REFUSED)
			stats_host_add(host_index(c), SH_REFUSED, 1);
		else
			stats_add(SG_HS_FAIL + (unsigned)hs, 1);
	}
}

static void
drop_event(struct event **ev)
{
	if (*ev != NULL)
		event_free(*ev);
	*ev = NULL;
}

void
conn_close(struct conn *c, enum conn_end why, const char *detail)
{
	struct conn_set *s = c->set;

	if (c->state == CONN_CLOSED)
		return;
	assert(why < END_COUNT);
	if (end_table[why].close_notify)
		tls_stream_close_notify(&c->ts);
	count_close(c, why);
	log_access(c, why, detail);
	set_state(c, CONN_CLOSED);
	if (c->member_held)
		pool_release(c->pool, (size_t)c->member);
	tls_release(&c->tls);
	relay_free(&c->relay);
	drop_event(&c->timer);
	drop_event(&c->again);
	drop_event(&c->ev);
	drop_event(&c->ev_wr);
	drop_event(&c->bev);
	free(c->proxy_buf);
	c->proxy_buf = NULL;
	tls_stream_free(&c->ts);
	if (c->fd >= 0)
		close(c->fd);
	if (c->be.fd >= 0)
		close(c->be.fd);
	c->fd = c->be.fd = -1;
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

/* ---- events ------------------------------------------------------------- */

/* The client socket must be watched for writability too: a write (or the
 * handshake) was refused. Once added it stays: edge-triggered, it costs
 * nothing until the socket drains. */
static void
watch_write(struct conn *c)
{
	if (c->ev_wr != NULL)
		return;
	c->ev_wr = event_new(c->set->base, c->fd, EV_WRITE | EV_ET | EV_PERSIST,
	    event_get_callback(c->ev), c);
	if (c->ev_wr == NULL || event_add(c->ev_wr, NULL) != 0)
		c->no_memory = 1;	/* not from inside the relay: see pump() */
}

static void
again_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CONN_HANDSHAKE)
		handshake(c);
	else if (c->relay_ready && c->state != CONN_CLOSED)
		pump(c, -1);
}

/* Come back after the loop has served the others (a zero timeout runs
 * after the next epoll_wait): work left that no edge will announce. */
static void
schedule_again(struct conn *c)
{
	static const struct timeval now = { 0, 0 };

	if (c->again == NULL && (c->again = evtimer_new(c->set->base, again_cb, c)) == NULL) {
		c->no_memory = 1;	/* not from inside the relay: see pump() */
		return;
	}
	evtimer_add(c->again, &now);
}

/* ---- relay -------------------------------------------------------------- */

static void
relay_want_write(void *arg, int side)
{
	struct conn *c = arg;

	if (side == 0)
		watch_write(c);	/* the backend socket is watched for both */
}

static void
relay_again(void *arg)
{
	schedule_again(arg);
}

/* The client failed: what its TLS stream says. */
static void
client_failed(struct conn *c, int handshake_over)
{
	char detail[256];
	enum tls_stream_err e = tls_stream_error(&c->ts, detail, sizeof(detail));
	enum conn_end why;

	switch (e) {
	case TLS_ERR_CLOSED:
		why = handshake_over ? END_CLIENT_CLOSED : END_HS_CLOSED;
		break;
	case TLS_ERR_RESET:
		why = handshake_over ? END_CLIENT_RESET : END_HS_RESET;
		break;
	case TLS_ERR_PROTOCOL:
	case TLS_ERR_NO_CLIENT_CERT:
		why = handshake_over ? END_CLIENT_TLS_ERROR :
		    e == TLS_ERR_PROTOCOL ? END_HS_TLS_ERROR : END_HS_NO_CLIENT_CERT;
		break;
	default:
		why = handshake_over ? END_CLIENT_ERROR : END_HS_ERROR;
		break;
	}
	conn_close(c, why, detail[0] ? detail : NULL);
}

static void
relay_done(void *arg, int side, int writing)
{
	struct conn *c = arg;
	int err = c->be.sys_errno;

	(void)writing;
	if (side < 0) {
		conn_close(c, END_CLOSED, NULL);
	} else if (side == 0 && c->state == CONN_HANDSHAKE &&
	    tls_stream_error(&c->ts, NULL, 0) <= TLS_ERR_RESET) {
		conn_close(c, END_GONE, NULL);	/* in handshake_done's read */
	} else if (side == 0) {
		client_failed(c, 1);
	} else if (err == EPIPE) {
		conn_close(c, END_BACKEND_CLOSED, NULL);
	} else if (err == ECONNRESET) {
		conn_close(c, END_BACKEND_RESET, NULL);
	} else {
		conn_close(c, END_BACKEND_ERROR, err ? strerror(err) : NULL);
	}
}

static const struct relay_ops relay_ops = { relay_want_write, relay_again, relay_done };

/* What a pump that did not end the relay may leave to do. */
static void
after_pump(struct conn *c)
{
	if (c->no_memory)
		conn_close(c, END_NO_MEMORY, NULL);
	else if (c->state == CONN_RELAYING && relay_half_closed(&c->relay))
		set_state(c, CONN_DRAINING);
}

/* An event on side i's socket (side -1: a scheduled retry). */
static void
pump(struct conn *c, int side)
{
	if (side >= 0)	/* the peer read or wrote: the connection is alive */
		event_base_gettimeofday_cached(c->set->base, &c->last_activity);
	if (relay_pump(&c->relay, side) == RELAY_OVER)
		return;
	after_pump(c);
}

/* ---- timer -------------------------------------------------------------- */

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct host_config *hc = c->tls.host ? c->tls.host->cfg : NULL;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CONN_NEW:
	case CONN_PROXY:
		conn_close(c, END_PROXY_TIMEOUT, NULL);
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
		conn_close(c, END_HS_TIMEOUT, NULL);
		return;
	}
	case CONN_CONNECTING:
		connect_failed(c, 0);	/* the next member, if any */
		return;
	case CONN_RELAYING:
	case CONN_DRAINING: {
		unsigned long long idle_ms = ms_since(c, &c->last_activity);

		if (idle_ms + 1 >= hc->idle_timeout_ms)
			conn_close(c, END_IDLE_TIMEOUT, NULL);
		else
			conn_arm_timer(c, hc->idle_timeout_ms - (unsigned)idle_ms);
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

/* The PROXY header the host wants in front of the plaintext, if any, put
 * before what the client sent: the TLS side says what the handshake was
 * (tls_facts_get), proxy_tls.c turns that into TLVs, proxy.c encodes. */
static int
queue_proxy_header(struct conn *c)
{
	const struct host_config *hc = c->tls.host->cfg;
	struct evbuffer *q = relay_queue(&c->relay, 0);
	const struct sockaddr *src = (const struct sockaddr *)&c->peer;
	const struct sockaddr *dst = (const struct sockaddr *)&c->local;
	struct tls_facts f;
	struct proxy_tlvs t;
	uint8_t *buf;
	size_t cap;
	ssize_t n;

	if (hc->proxy_protocol != PROXY_SEND_V1 && hc->proxy_protocol != PROXY_SEND_V2)
		return 0;
	if (c->local_len == 0) {	/* only now: most hosts never need it */
		c->local_len = sizeof(c->local);
		if (getsockname(c->fd, (struct sockaddr *)&c->local, &c->local_len) != 0)
			c->local_len = 0;
	}
	if (hc->proxy_protocol == PROXY_SEND_V1) {
		char line[PROXY_V1_MAX + 1];
		size_t len = proxy_encode_v1(src, dst, line);
		return evbuffer_prepend(q, line, len);
	}
	tls_facts_get(c->ts.ssl, cert_form(hc->proxy_client_cert), &f);
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
		n = evbuffer_prepend(q, buf, (size_t)n) == 0 ? 0 : -1;
	free(buf);
	tls_facts_free(&f);
	return n < 0 ? -1 : 0;
}

/* The connect to the member dialled last failed (err: its errno), or timed
 * out (err 0). Nothing was written to it (connected() says why), so the
 * client's bytes, still queued with the PROXY header in front, go to the
 * next member the pool offers; the client fails only when none is left. */
static void
connect_failed(struct conn *c, int err)
{
	stats_host_add(host_index(c), SH_CONNECT_FAILED, 1);
	pool_fail(c->pool, (size_t)c->member, c->trial, err ? strerror(err) : "connect timeout");
	c->dial_err = err;
	drop_event(&c->bev);
	if (c->be.fd >= 0)
		close(c->be.fd);
	memset(&c->be, 0, sizeof(c->be));
	c->be.fd = -1;
	dial_member(c);
}

/*
 * CONNECTING, and the backend socket is writable (or failed): the connect
 * is over. With bytes queued, writing them tells how it went and saves
 * the getsockopt; nothing has reached the backend if that write fails.
 */
static void
connected(struct conn *c)
{
	struct evbuffer *q = relay_queue(&c->relay, 0);
	int err;

	if (evbuffer_get_length(q) > 0) {
		err = evbuffer_write(q, c->be.fd) >= 0 ? 0 : errno;
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			err = 0;
	} else {
		err = backend_connect_error(c->be.fd);
	}
	if (err != 0) {
		connect_failed(c, err);
		return;
	}
	uint64_t us = stats_clock_us() - c->dial_us;
	stats_connect_time(host_index(c), us);
	pool_ok(c->pool, (size_t)c->member, us, 1);
	pool_acquire(c->pool, (size_t)c->member);
	c->member_held = 1;
	set_state(c, CONN_RELAYING);
	conn_arm_timer(c, c->tls.host->cfg->idle_timeout_ms);
	event_base_gettimeofday_cached(c->set->base, &c->last_activity);
	if (relay_open(&c->relay, 1) == RELAY_OVER)
		return;
	after_pump(c);
}

static void
backend_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (what & EV_CLOSED)
		c->be.eof_pending = 1;	/* its FIN is in: read to the EOF */
	if (c->state == CONN_CONNECTING)
		connected(c);
	else if (c->state == CONN_RELAYING || c->state == CONN_DRAINING)
		pump(c, 1);
}

/*
 * Dial the next member of the pool that this connection has not tried:
 * pool_pick says which (pool.h). When none is left, the connection ends
 * with the last member's failure (the access line's backend= names it).
 */
static void
dial_member(struct conn *c)
{
	int i, trial;

	for (;;) {
		if ((i = pool_pick(c->pool, c->tried, &trial)) < 0) {
			if (c->dial_err != 0)
				conn_close(c, END_CONNECT_FAILED, strerror(c->dial_err));
			else
				conn_close(c, END_CONNECT_TIMEOUT, NULL);
			return;
		}
		c->tried |= (uint64_t)1 << i;
		c->member = i;
		c->trial = trial != 0;
		c->backend_addr = c->pool->m[i].addr;
		c->dial_us = stats_clock_us();
		if ((c->be.fd = backend_dial(c->backend_addr)) >= 0)
			break;
		/* failed at once (a UNIX socket nobody listens on): the next;
		 * running out of descriptors or memory is ours, not the
		 * member's, and does not count against its health */
		c->dial_err = errno;
		stats_host_add(host_index(c), SH_CONNECT_FAILED, 1);
		if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM)
			pool_fail(c->pool, (size_t)i, c->trial, strerror(c->dial_err));
	}
	/* one registration for the connection's life: the connect's end,
	 * reads, writes and the FIN (EV_CLOSED: EPOLLRDHUP) */
	c->bev = event_new(c->set->base, c->be.fd,
	    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST, backend_cb, c);
	if (c->bev == NULL || event_add(c->bev, NULL) != 0) {
		conn_close(c, END_NO_MEMORY, NULL);
		return;
	}
	conn_arm_timer(c, c->tls.host->cfg->connect_timeout_ms);
}

static void
dial_backend(struct conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;

	tls_stream_alpn(&c->ts, &alpn, &alpn_len);
	c->pool = gen_backend_for(c->tls.host, alpn, alpn_len);
	set_state(c, CONN_CONNECTING);
	/* once: a retry on another member sends the same queue, header first */
	if (queue_proxy_header(c) != 0) {
		conn_close(c, END_PROXY_HEADER_BUILD, NULL);
		return;
	}
	dial_member(c);
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

/* The handshake callbacks' refusal as the end of the connection. */
static enum conn_end
refusal(enum tls_fail f)
{
	switch (f) {
	case TLS_FAIL_UNKNOWN_NAME:
		return END_HS_UNKNOWN_NAME;
	case TLS_FAIL_NO_NAME:
		return END_HS_NO_NAME;
	case TLS_FAIL_HOST_FULL:
		return END_HS_HOST_FULL;
	case TLS_FAIL_HOST_CERT:
		return END_HS_HOST_CERT;
	case TLS_FAIL_NO_ALPN:
		return END_HS_NO_ALPN;
	case TLS_FAIL_CLIENT_CERT:
		return END_HS_CLIENT_CERT;
	case TLS_FAIL_NOT_ALLOWED:
		return END_HS_NOT_ALLOWED;
	case TLS_FAIL_PENDING:
		return END_HS_PENDING;
	case TLS_FAIL_ACME_REFUSED:
		return END_HS_ACME_REFUSED;
	case TLS_FAIL_ACME_CERT:
		return END_HS_ACME_CERT;
	case TLS_FAIL_NONE:
		break;
	}
	return END_HS_ERROR;
}

/*
 * The handshake is done. Read what the client sent already (with
 * read-ahead, often the request came with its Finished): that read also
 * tells a client already gone (scanners, health checks and `openssl
 * s_time` close as soon as the handshake is done), for which a backend
 * connection would be wasted work for us and for the backend. A reset, or
 * a FIN with no byte before it, means nobody will read what the backend
 * says; a request, a close_notify (a half-close: the client may still
 * read, as from a backend that speaks first) or nothing yet mean "dial".
 */
static void
handshake_done(struct conn *c)
{
	if (tls_acme_challenge_done(c->ts.ssl)) {
		conn_close(c, END_ACME_CHALLENGE, NULL);	/* validated: nothing follows */
		return;
	}
	stats_host_add(host_index(c), SH_OPENED, 1);
	if (tls_stream_resumed(&c->ts))
		stats_host_add(host_index(c), SH_RESUMED, 1);
	c->stats_counted = 1;
	if (relay_init(&c->relay, &tls_stream_io, &c->ts, &backend_io, &c->be, &relay_ops,
	    c) != 0) {
		conn_close(c, END_NO_MEMORY, NULL);
		return;
	}
	c->relay_ready = 1;
	if (relay_pump(&c->relay, 0) == RELAY_OVER)
		return;		/* failed: relay_done closed it */
	if (c->no_memory) {
		conn_close(c, END_NO_MEMORY, NULL);
		return;
	}
	if (c->relay.d[0].eof && c->relay.bytes[0] == 0 && !c->tls.peer_close_notify) {
		conn_close(c, END_GONE, NULL);
		return;
	}
	dial_backend(c);
}

static void
handshake(struct conn *c)
{
	switch (tls_stream_handshake(&c->ts)) {
	case TLS_STEP_DONE:
		handshake_done(c);
		return;
	case TLS_STEP_WANT_READ:
		return;
	case TLS_STEP_WANT_WRITE:
		watch_write(c);
		if (c->no_memory)
			conn_close(c, END_NO_MEMORY, NULL);
		return;
	case TLS_STEP_MORE:
		schedule_again(c);
		if (c->no_memory)
			conn_close(c, END_NO_MEMORY, NULL);
		return;
	case TLS_STEP_FAILED:
		break;
	}
	let_alert_arrive(c->fd);
	if (c->tls.fail != TLS_FAIL_NONE)
		conn_close(c, refusal(c->tls.fail),
		    c->tls.fail == TLS_FAIL_CLIENT_CERT ? c->tls.fail_detail : NULL);
	else
		client_failed(c, 0);
}

/* Hand the client socket to OpenSSL: the TLS handshake starts. */
static int
start_tls(struct conn *c)
{
	set_state(c, CONN_HANDSHAKE);
	if (tls_stream_start(&c->ts, c->set->gen->tls, &c->tls, c->fd) != 0) {
		conn_close(c, END_NO_MEMORY, NULL);
		return -1;
	}
	return 0;
}

/*
 * CONN_PROXY: the socket is readable. Peek at what has arrived and consume
 * exactly the header, never a byte of the TLS that follows it: bytes that
 * cannot complete the header yet are all header bytes, so they are consumed
 * too (and kept in proxy_buf): the socket is drained, as the edge-triggered
 * event needs.
 */
static void
on_proxy_readable(struct conn *c)
{
	struct proxy_info info;
	ssize_t got, r;

	if (c->proxy_buf == NULL && (c->proxy_buf = malloc(PROXY_MAX_HEADER)) == NULL) {
		conn_close(c, END_NO_MEMORY, NULL);
		return;
	}
	for (;;) {	/* until EAGAIN: no new edge comes for what is left */
		got = recv(c->fd, c->proxy_buf + c->proxy_len, PROXY_MAX_HEADER - c->proxy_len,
		    MSG_PEEK);
		if (got <= 0) {
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (got == 0)
				conn_close(c, END_PROXY_CLOSED, NULL);
			else
				conn_close(c, END_PROXY_ERROR, strerror(errno));
			return;
		}
		r = proxy_decode(c->proxy_buf, c->proxy_len + (size_t)got, &info);
		if (r < 0) {
			conn_close(c, END_PROXY_INVALID, NULL);
			return;
		}
		/* consume the header bytes among those peeked */
		size_t take = r > 0 ? (size_t)r - c->proxy_len : (size_t)got;
		if (recv(c->fd, c->proxy_buf + c->proxy_len, take, 0) != (ssize_t)take) {
			conn_close(c, END_PROXY_READ, NULL);
			return;
		}
		c->proxy_len += take;
		if (r > 0)
			break;
		if (c->proxy_len >= PROXY_MAX_HEADER) {
			conn_close(c, END_PROXY_TOO_LONG, NULL);
			return;
		}
	}
	if (!info.local && info.src_len > 0 && info.src_len <= sizeof(c->peer)) {
		memcpy(&c->peer, &info.src, info.src_len);
		c->peer_len = info.src_len;
		memcpy(&c->local, &info.dst, info.dst_len);
		c->local_len = info.dst_len;
	}
	free(c->proxy_buf);
	c->proxy_buf = NULL;
	/* the ClientHello may be in already: no new edge will say so */
	if (start_tls(c) == 0)
		handshake(c);
}

/* An event on the client socket (readable, or writable once watched). */
static void
client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CONN_PROXY:
		on_proxy_readable(c);
		return;
	case CONN_HANDSHAKE:
		handshake(c);
		return;
	case CONN_CONNECTING:	/* queued for the backend, up to the bound */
	case CONN_RELAYING:
	case CONN_DRAINING:
		pump(c, 0);
		return;
	case CONN_NEW:
	case CONN_CLOSED:
		return;
	}
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
	char peer[ADDR_TEXT_MAX];

	/* TCP_NODELAY comes from the listening socket (sockset.c) */
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto err;
	c->set = s;
	c->fd = fd;
	c->be.fd = -1;
	c->tls.listener = l;
	c->tls.worker = s->tls;
	if (salen > sizeof(c->peer))
		salen = sizeof(c->peer);
	memcpy(&c->peer, sa, salen);
	c->peer_len = salen;
	event_base_gettimeofday_cached(s->base, &c->start);
	if ((c->timer = evtimer_new(s->base, conn_timer_cb, c)) == NULL)
		goto err;
	/* read interest only: a fresh socket is writable, and an EPOLLOUT
	 * edge now would wake us before the ClientHello is in */
	c->ev = event_new(s->base, fd, EV_READ | EV_ET | EV_PERSIST, client_cb, c);
	if (c->ev == NULL || event_add(c->ev, NULL) != 0)
		goto err;

	c->next = s->head;
	if (s->head)
		s->head->prev = c;
	s->head = c;
	s->n++;
	stats_add(SG_ACCEPTED, 1);
	/* the handshake deadline covers a PROXY header too */
	conn_arm_timer(c, l->handshake_timeout_ms);
	if (must_send_proxy(s, sa))
		set_state(c, CONN_PROXY);
	else
		(void)start_tls(c);
	return;
err:
	log_warn("cannot take connection from %s: %s",
	    addr_format(sa, salen, peer, sizeof(peer)), strerror(errno ? errno : ENOMEM));
	if (c != NULL) {
		drop_event(&c->timer);
		drop_event(&c->ev);
	}
	free(c);
	close(fd);
}
