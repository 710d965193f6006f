/* relay.c: see relay.h. */
#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>

#include "relay.h"

static void relay_read_cb(struct bufferevent *bev, void *arg);
static void relay_write_cb(struct bufferevent *bev, void *arg);
static void relay_event_cb(struct bufferevent *bev, short what, void *arg);

static int
side_of(const struct relay *r, const struct bufferevent *bev)
{
	return r->s[0].bev == bev ? 0 : 1;
}

static void
touch(struct relay *r, struct bufferevent *bev)
{
	event_base_gettimeofday_cached(bufferevent_get_base(bev), &r->last_activity);
}

/* Reading of one side, off and on: the bufferevent's or our own event's. */
static void
stop_reading(struct relay_side *s)
{
	if (s->rd != NULL)
		(void)event_del(s->rd);
	else
		bufferevent_disable(s->bev, EV_READ);
}

static void
start_reading(struct relay_side *s)
{
	if (s->rd != NULL)
		(void)event_add(s->rd, NULL);
	else
		bufferevent_enable(s->bev, EV_READ);
}

static void
finish(struct relay *r, const char *reason, int side, short what)
{
	if (r->finished)
		return;
	r->finished = 1;
	relay_stop(r);
	r->ops->done(r->arg, reason, side, what);	/* may free r */
}

/* Both directions over? */
static int
check_done(struct relay *r)
{
	if (r->s[0].eof && r->s[1].eof && r->s[0].shut && r->s[1].shut) {
		finish(r, "closed", -1, 0);
		return 1;
	}
	return 0;
}

/* Side i's output is empty and side 1-i has sent EOF: pass the EOF on. */
static int
maybe_shutdown(struct relay *r, int i)
{
	struct relay_side *dst = &r->s[i];

	if (!r->s[1 - i].eof || dst->shut ||
	    evbuffer_get_length(bufferevent_get_output(dst->bev)) > 0)
		return 0;
	dst->shut = 1;
	r->ops->shutdown_write(r->arg, i);
	return check_done(r);
}

/*
 * Write now, not one loop turn later. A bufferevent given output only asks
 * epoll for EPOLLOUT and writes when epoll_wait reports it: per request and
 * direction, one more loop turn and epoll_wait. Activating its write event
 * runs the same write callback in this turn. Only when the output was empty
 * before: otherwise a write is already waiting for the socket. ev_write is the one bufferevent field we touch (public in
 * bufferevent_struct.h and stable over libevent 2.1; only socket-based
 * bufferevents, plain or OpenSSL, assign it).
 */
static void
write_now(struct bufferevent *bev)
{
	/* only bufferevents on a socket have a live ev_write (not pairs) */
	if (bufferevent_getfd(bev) >= 0 && (bufferevent_get_enabled(bev) & EV_WRITE))
		event_active(&bev->ev_write, EV_WRITE, 1);
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int i = side_of(r, bev);
	struct relay_side *src = &r->s[i], *dst = &r->s[1 - i];
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(dst->bev);
	size_t n = evbuffer_get_length(in);
	int was_empty;

	if (n == 0)
		return;
	if (dst->shut) {
		/* cannot happen: we shut only after this side's EOF */
		evbuffer_drain(in, n);
		return;
	}
	r->bytes[i] += n;
	touch(r, bev);
	was_empty = evbuffer_get_length(out) == 0;
	if (was_empty && dst->rd != NULL) {
		/*
		 * Side 1 is a plain socket with nothing queued: write to it
		 * straight away. Through the bufferevent, each write made libevent
		 * ask epoll for EPOLLOUT and then take it back, two epoll_ctl
		 * calls per request. What the socket does not take (it is full,
		 * or failed: libevent's own write then meets the error and
		 * reports it) goes through the bufferevent as before.
		 */
		(void)evbuffer_write(in, bufferevent_getfd(dst->bev));
		if (evbuffer_get_length(in) == 0)
			return;
		was_empty = 0;	/* it is full: libevent waits for EPOLLOUT */
	}
	evbuffer_add_buffer(out, in);	/* moves the chains, no copy */
	if (was_empty)
		write_now(dst->bev);
	if (evbuffer_get_length(out) >= RELAY_BOUND && !src->paused) {
		src->paused = 1;
		stop_reading(src);
	}
}

/*
 * Side 1 read straight from its socket. libevent 2.1 reads a socket
 * bufferevent at most 4096 bytes at a time (EVBUFFER_MAX_READ), so a bulk
 * download became 4 KiB TLS records: four times the records, writes and
 * loop turns of 16 KiB ones. One readv of up to RELAY_READ bytes into the
 * bufferevent's own input, then the usual path.
 */
static void
direct_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *bev = r->s[1].bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t got;
	int nv;

	(void)what;
	/* A socket bufferevent keeps its input's end frozen but while it reads
	 * itself; do as it does. */
	evbuffer_unfreeze(in, 0);
	nv = evbuffer_reserve_space(in, RELAY_READ, v, 2);
	if (nv < 0) {
		evbuffer_freeze(in, 0);
		relay_event_cb(bev, BEV_EVENT_READING | BEV_EVENT_ERROR, r);
		return;
	}
	for (int i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	got = readv(fd, iov, nv);
	if (got < 0) {
		int err = errno;
		(void)evbuffer_commit_space(in, v, 0);
		evbuffer_freeze(in, 0);
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			return;
		errno = err;	/* the owner's done() reports it */
		relay_event_cb(bev, BEV_EVENT_READING | BEV_EVENT_ERROR, r);
		return;
	}
	/* commit what readv filled, iovec by iovec */
	size_t left = (size_t)got;
	for (int i = 0; i < nv; i++) {
		size_t take = left < v[i].iov_len ? left : v[i].iov_len;
		v[i].iov_len = take;
		left -= take;
	}
	(void)evbuffer_commit_space(in, v, nv);
	evbuffer_freeze(in, 0);
	if (got == 0) {
		relay_event_cb(bev, BEV_EVENT_READING | BEV_EVENT_EOF, r);
		return;
	}
	relay_read_cb(bev, r);
}

static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int i = side_of(r, bev);
	struct relay_side *src = &r->s[1 - i];
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	touch(r, bev);
	if (src->paused && left < RELAY_BOUND) {
		src->paused = 0;
		if (!src->eof)
			start_reading(src);
	}
	(void)maybe_shutdown(r, i);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int i = side_of(r, bev);

	/*
	 * A failed write ends the relay, whatever the event says besides:
	 * nothing more can reach side i. libevent's OpenSSL bufferevent
	 * reports a write that failed after the peer's close_notify (or a FIN,
	 * see SSL_OP_IGNORE_UNEXPECTED_EOF) as WRITING|EOF, because OpenSSL
	 * then maps every error to SSL_ERROR_ZERO_RETURN; taken for a read
	 * EOF, it re-armed writing below and the failing write ran again on
	 * every loop turn (issue #13). Deferred callbacks may also deliver a
	 * read EOF and a write error in one call.
	 */
	if (what & (BEV_EVENT_WRITING | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		finish(r, i == 0 ? "side 0 failed" : "side 1 failed", i, what);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		relay_read_cb(bev, r);	/* 2.1 may report EOF with input unread */
		r->s[i].eof = 1;
		stop_reading(&r->s[i]);
		/* libevent's OpenSSL bufferevent stops writing too when it reads
		 * close_notify; what is still queued for this side must go out
		 * (TLS 1.3 half-close): arm writing again. */
		if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			bufferevent_enable(bev, EV_WRITE);
		/* flush to the other side completely before passing the EOF on */
		bufferevent_setwatermark(r->s[1 - i].bev, EV_WRITE, 0, 0);
		if (maybe_shutdown(r, 1 - i))
			return;
		(void)check_done(r);
	}
}

void
relay_start(struct relay *r, struct bufferevent *a, struct bufferevent *b,
    const struct relay_ops *ops, void *arg)
{
	r->s[0].bev = a;
	r->s[1].bev = b;
	r->ops = ops;
	r->arg = arg;
	touch(r, a);
	if (bufferevent_getfd(b) >= 0)
		r->s[1].rd = event_new(bufferevent_get_base(b), bufferevent_getfd(b),
		    EV_READ | EV_PERSIST, direct_read_cb, r);
	for (int i = 0; i < 2; i++) {
		struct bufferevent *bev = r->s[i].bev;
		bufferevent_setwatermark(bev, EV_WRITE, RELAY_BOUND / 2, 0);
		bufferevent_setcb(bev, relay_read_cb, relay_write_cb, relay_event_cb, r);
		/* with our own read event, libevent's never reads this side */
		bufferevent_enable(bev, r->s[i].rd != NULL ? EV_WRITE : EV_READ | EV_WRITE);
		if (r->s[i].rd != NULL) {
			bufferevent_disable(bev, EV_READ);
			start_reading(&r->s[i]);
		}
	}
	/* bytes that arrived before the relay started (e.g. with the handshake) */
	relay_read_cb(a, r);
	relay_read_cb(b, r);
}

void
relay_stop(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		if (r->s[i].rd != NULL) {
			event_free(r->s[i].rd);
			r->s[i].rd = NULL;
		}
		if (r->s[i].bev != NULL)
			bufferevent_setcb(r->s[i].bev, NULL, NULL, NULL, NULL);
	}
}
