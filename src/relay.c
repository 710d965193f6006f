/* relay.c: see relay.h. */
#include <event2/buffer.h>
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

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int i = side_of(r, bev);
	struct relay_side *src = &r->s[i], *dst = &r->s[1 - i];
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(dst->bev);
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return;
	if (dst->shut) {
		/* cannot happen: we shut only after this side's EOF */
		evbuffer_drain(in, n);
		return;
	}
	r->bytes[i] += n;
	evbuffer_add_buffer(out, in);	/* moves the chains, no copy */
	touch(r, bev);
	if (evbuffer_get_length(out) >= RELAY_BOUND && !src->paused) {
		src->paused = 1;
		bufferevent_disable(bev, EV_READ);
	}
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
			bufferevent_enable(src->bev, EV_READ);
	}
	(void)maybe_shutdown(r, i);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int i = side_of(r, bev);

	if (what & BEV_EVENT_EOF) {
		relay_read_cb(bev, r);	/* 2.1 may report EOF with input unread */
		r->s[i].eof = 1;
		bufferevent_disable(bev, EV_READ);
		/* flush to the other side completely before passing the EOF on */
		bufferevent_setwatermark(r->s[1 - i].bev, EV_WRITE, 0, 0);
		if (maybe_shutdown(r, 1 - i))
			return;
		(void)check_done(r);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		finish(r, i == 0 ? "side 0 failed" : "side 1 failed", i, what);
		return;
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
	for (int i = 0; i < 2; i++) {
		struct bufferevent *bev = r->s[i].bev;
		bufferevent_setwatermark(bev, EV_WRITE, RELAY_BOUND / 2, 0);
		bufferevent_setcb(bev, relay_read_cb, relay_write_cb, relay_event_cb, r);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
	}
	/* bytes that arrived before the relay started (e.g. with the handshake) */
	relay_read_cb(a, r);
	relay_read_cb(b, r);
}

void
relay_stop(struct relay *r)
{
	for (int i = 0; i < 2; i++)
		if (r->s[i].bev != NULL)
			bufferevent_setcb(r->s[i].bev, NULL, NULL, NULL, NULL);
}
