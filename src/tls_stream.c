/*
 * tls_stream.c: the client's TLS stream, read and written by the
 * connection's own edge-triggered events (see tls.h, relay.h).
 *
 * Why not libevent's OpenSSL bufferevent: it switches its epoll interest
 * on and off around every SSL_read and SSL_write, and the relay did too
 * for backpressure: 20 epoll_ctl per short connection where nginx makes 2
 * (bench/RESULTS.md). Here the socket is registered once, for reading;
 * writability is watched only after a write was refused.
 *
 * Edge-triggered events need the socket read until it says EAGAIN, or the
 * next event never comes. SSL_read says SSL_ERROR_WANT_READ both then and
 * after a record that carried no data (a KeyUpdate, a refused
 * renegotiation: tls.c clears SSL_MODE_AUTO_RETRY so that a flood of them
 * cannot hold the worker in one call). errno tells them apart: it is
 * cleared before each call and only the socket read sets EAGAIN.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_int.h"

#define TLS_READ_CHUNK (16 * 1024)	/* one record's plaintext at most */
/* With read-ahead, one SSL_read takes every record OpenSSL has buffered (up
 * to one socket read, about 16 KB): a call that found no data there yields
 * (RELAY_IO_MORE), so that a flood of KeyUpdates or renegotiation attempts
 * gets no more of the worker per loop turn than RELAY_TURN_OPS such calls. */
#define TLS_EMPTY_RECORDS 1

static int
would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* Keep why s failed: errno, OpenSSL's first real error (libraries other
 * than 0; the bare SSL_get_error codes some callers queue are not). */
static void
note_failure(struct tls_stream *s, int code)
{
	unsigned long e;

	s->sys_errno = errno;
	s->zero_return = code == SSL_ERROR_ZERO_RETURN;
	while ((e = ERR_get_error()) != 0)
		if (s->ssl_error == 0 && ERR_GET_LIB(e) != 0)
			s->ssl_error = e;
}

/* A close_notify from the client, as opposed to a FIN that
 * SSL_OP_IGNORE_UNEXPECTED_EOF makes look the same to SSL_read: a client that
 * half-closes may still read what the backend says. */
static void
note_alert(const SSL *ssl, int where, int ret)
{
	struct tls_info *info;

	if ((where & SSL_CB_READ_ALERT) && (ret & 0xff) == SSL_AD_CLOSE_NOTIFY &&
	    (info = tls_info_of(ssl)) != NULL)
		info->peer_close_notify = 1;
}

int
tls_stream_start(struct tls_stream *s, const struct tls_base *b, struct tls_info *info,
    int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	if ((s->ssl = tls_ssl_new(b, info)) == NULL)
		goto err;
	if (SSL_set_fd(s->ssl, fd) != 1)
		goto err;
	SSL_set_accept_state(s->ssl);
	SSL_set_info_callback(s->ssl, note_alert);
	/* one read() takes what the socket holds, not a record header and
	 * then its body: half the reads */
	SSL_set_read_ahead(s->ssl, 1);
	/* write from an evbuffer's chain, which may move (or grow) between a
	 * refused write and its retry */
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
err:
	SSL_free(s->ssl);
	s->ssl = NULL;
	ERR_clear_error();
	return -1;
}

enum tls_step
tls_stream_handshake(struct tls_stream *s)
{
	for (int i = 0; i < TLS_EMPTY_RECORDS; i++) {
		int n, code;

		errno = 0;
		if ((n = SSL_do_handshake(s->ssl)) == 1)
			return TLS_STEP_DONE;
		code = SSL_get_error(s->ssl, n);
		if (code == SSL_ERROR_WANT_WRITE)
			return TLS_STEP_WANT_WRITE;
		if (code == SSL_ERROR_WANT_READ) {
			if (would_block())
				return TLS_STEP_WANT_READ;
			continue;	/* a record was taken and more may be there */
		}
		note_failure(s, code);
		return TLS_STEP_FAILED;
	}
	return TLS_STEP_MORE;	/* not drained: the socket gives no new edge */
}

static ssize_t
stream_read(void *end, struct evbuffer *buf, size_t max, int *more)
{
	struct tls_stream *s = end;
	size_t total = 0;
	int empty = 0;

	*more = 0;
	while (total < max) {
		struct evbuffer_iovec v;
		size_t want = max - total < TLS_READ_CHUNK ? max - total : TLS_READ_CHUNK;
		int n, code;

		if (evbuffer_reserve_space(buf, (ev_ssize_t)want, &v, 1) < 1) {
			errno = ENOMEM;
			note_failure(s, SSL_ERROR_SYSCALL);
			return RELAY_IO_FAIL;
		}
		errno = 0;
		n = SSL_read(s->ssl, v.iov_base, (int)(v.iov_len < want ? v.iov_len : want));
		if (n > 0) {
			v.iov_len = (size_t)n;
			(void)evbuffer_commit_space(buf, &v, 1);
			total += (size_t)n;
			continue;
		}
		(void)evbuffer_commit_space(buf, &v, 0);
		code = SSL_get_error(s->ssl, n);
		if (code == SSL_ERROR_WANT_READ) {
			if (would_block())
				return total > 0 ? (ssize_t)total : RELAY_IO_AGAIN;
			if (++empty < TLS_EMPTY_RECORDS)
				continue;
			*more = 1;	/* records without data: yield, come back */
			return total > 0 ? (ssize_t)total : RELAY_IO_MORE;
		}
		if (code == SSL_ERROR_WANT_WRITE) {
			/* answering the peer (a KeyUpdate) needs a writable
			 * socket; hand over what we have, the next call says so */
			*more = total > 0;
			return total > 0 ? (ssize_t)total : RELAY_IO_AGAIN_WRITE;
		}
		if (code == SSL_ERROR_ZERO_RETURN) {
			/* close_notify, or a FIN (SSL_OP_IGNORE_UNEXPECTED_EOF):
			 * the EOF comes with the next call if we have bytes */
			ERR_clear_error();
			*more = total > 0;
			return (ssize_t)total;
		}
		note_failure(s, code);
		return RELAY_IO_FAIL;
	}
	*more = 1;
	return (ssize_t)total;
}

static ssize_t
stream_write(void *end, struct evbuffer *buf)
{
	struct tls_stream *s = end;
	size_t total = 0;

	while (evbuffer_get_length(buf) > 0) {
		struct evbuffer_iovec v;
		int n, code;

		if (evbuffer_peek(buf, -1, NULL, &v, 1) < 1)
			break;
		errno = 0;
		n = SSL_write(s->ssl, v.iov_base, v.iov_len > INT_MAX ? INT_MAX : (int)v.iov_len);
		if (n > 0) {
			(void)evbuffer_drain(buf, (size_t)n);
			total += (size_t)n;
			continue;
		}
		code = SSL_get_error(s->ssl, n);
		if (code == SSL_ERROR_WANT_WRITE)
			return total > 0 ? (ssize_t)total : RELAY_IO_AGAIN_WRITE;
		if (code == SSL_ERROR_WANT_READ)
			return total > 0 ? (ssize_t)total : RELAY_IO_AGAIN;
		/* After the peer's close_notify (or FIN) OpenSSL says
		 * SSL_ERROR_ZERO_RETURN for every failure: errno tells a
		 * closed socket (EPIPE) from a reset. */
		note_failure(s, code);
		return RELAY_IO_FAIL;
	}
	return (ssize_t)total;
}

void
tls_stream_close_notify(struct tls_stream *s)
{
	if (s->ssl == NULL || s->close_notify_sent || !SSL_is_init_finished(s->ssl))
		return;
	s->close_notify_sent = 1;
	/* One call sends ours and never reads, so we do not wait for the
	 * peer's. Do not mark the peer's as received: after a half-close the
	 * client may still send, and SSL_read must go on returning its data
	 * until its own close_notify. */
	(void)SSL_shutdown(s->ssl);
	ERR_clear_error();
}

/* The relay's half-close: our close_notify, retried when the socket was
 * full (the alert waits in OpenSSL's buffer until SSL_shutdown is called
 * again), or a truncation is all the client would see. */
static int
stream_shutdown(void *end)
{
	struct tls_stream *s = end;
	int r;

	if (s->ssl == NULL || !SSL_is_init_finished(s->ssl))
		return 0;
	s->close_notify_sent = 1;
	errno = 0;
	r = SSL_shutdown(s->ssl);
	if (r < 0 && SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return RELAY_IO_AGAIN_WRITE;
	}
	ERR_clear_error();	/* a peer already gone: nothing more to tell it */
	return 0;
}

const struct relay_io tls_stream_io = {
	.read = stream_read,
	.write = stream_write,
	.shutdown = stream_shutdown,
	.close_ends_writing = 0,	/* a close without close_notify is a truncation */
};

enum tls_stream_err
tls_stream_error(const struct tls_stream *s, char *buf, size_t n)
{
	int err = s->sys_errno;

	if (n > 0)
		buf[0] = '\0';
	else
		buf = NULL;
	/* after the peer's close: a failed write is EPIPE (closed) or a reset */
	if (s->zero_return)
		return err == ECONNRESET ? TLS_ERR_RESET : TLS_ERR_CLOSED;
	if (s->ssl_error != 0) {
		char ebuf[256];
		const char *r;

		if (ERR_GET_REASON(s->ssl_error) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE &&
		    ERR_GET_LIB(s->ssl_error) == ERR_LIB_SSL) {
			if (buf != NULL)
				snprintf(buf, n, "peer did not return a certificate");
			return TLS_ERR_NO_CLIENT_CERT;
		}
		ERR_error_string_n(s->ssl_error, ebuf, sizeof(ebuf));
		r = strstr(ebuf, "::");
		if (buf != NULL)
			snprintf(buf, n, "%s", r ? r + 2 : ebuf);
		return TLS_ERR_PROTOCOL;
	}
	if (err == ECONNRESET)
		return TLS_ERR_RESET;
	if (err == EPIPE || err == 0)
		return err == EPIPE ? TLS_ERR_CLOSED : TLS_ERR_UNKNOWN;
	if (buf != NULL)
		snprintf(buf, n, "%s", strerror(err));
	return TLS_ERR_SYSTEM;
}

void
tls_stream_alpn(const struct tls_stream *s, const unsigned char **p, unsigned *len)
{
	*p = NULL;
	*len = 0;
	if (s->ssl != NULL)
		SSL_get0_alpn_selected(s->ssl, p, len);
}

const char *
tls_stream_version(const struct tls_stream *s)
{
	return s->ssl != NULL ? SSL_get_version(s->ssl) : "-";
}

const char *
tls_stream_cipher(const struct tls_stream *s)
{
	return s->ssl != NULL ? SSL_get_cipher_name(s->ssl) : NULL;
}

int
tls_stream_resumed(const struct tls_stream *s)
{
	return s->ssl != NULL && SSL_session_reused(s->ssl);
}

void
tls_stream_client_identity(const struct tls_stream *s, char *cn, size_t cn_len, char *san,
    size_t san_len)
{
	clientauth_identity(s->ssl != NULL ? SSL_get0_peer_certificate(s->ssl) : NULL, cn,
	    cn_len, san, san_len);
}

void
tls_stream_free(struct tls_stream *s)
{
	if (s->ssl == NULL)
		return;
	if (s->close_notify_sent) {
		/* OpenSSL 3.0 may have cleared SSL_SENT_SHUTDOWN on the client's
		 * EOF (SSL_OP_IGNORE_UNEXPECTED_EOF); without it SSL_free drops
		 * the session from the cache and session-ID resumption fails. */
		SSL_set_shutdown(s->ssl, SSL_get_shutdown(s->ssl) | SSL_SENT_SHUTDOWN);
	}
	SSL_free(s->ssl);
	s->ssl = NULL;
	ERR_clear_error();
}
