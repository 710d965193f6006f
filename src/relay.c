/* relay.c: see relay.h. */
#include <event2/buffer.h>

#include "relay.h"

/* The relay is over: tell the owner once. Returns 1 for "stop now": the
 * owner may have freed r. */
static int
finish(struct relay *r, int side, int writing)
{
	if (!r->over) {
		r->over = 1;
		r->ops->done(r->arg, side, writing);
	}
	return 1;
}

/*
 * Direction i: write what side i sent to side 1-i. A write that leaves
 * bytes queued found side 1-i full: wait for its next event. Returns 1
 * when the relay is over.
 */
static int
flush(struct relay *r, int i, int *moved)
{
	struct relay_dir *d = &r->d[i];
	struct relay_end *dst = &r->e[1 - i];

	if (dst->open && !dst->wr_blocked && evbuffer_get_length(d->buf) > 0) {
		ssize_t n = dst->io->write(dst->ctx, d->buf);

		if (n == RELAY_IO_FAIL)
			return finish(r, 1 - i, 1);
		if (n > 0)
			*moved = 1;
		if (n == RELAY_IO_AGAIN) {
			dst->wr_blocked = 1;	/* until readable (TLS) */
		} else if (evbuffer_get_length(d->buf) > 0) {
			dst->wr_blocked = 1;
			r->ops->want_write(r->arg, 1 - i);
		}
	}
	if (d->paused && evbuffer_get_length(d->buf) <= RELAY_BOUND / 2)
		d->paused = 0;	/* drained: side i is read again below */
	return 0;
}

/*
 * Direction i, after side i's EOF: once everything it sent has gone out,
 * half-close side 1-i. When the other direction is already over and
 * closing side 1-i says the same (a TCP FIN), the close that follows does
 * it. Returns 1 when the relay is over.
 */
static int
pass_eof(struct relay *r, int i, int *moved)
{
	struct relay_dir *d = &r->d[i], *back = &r->d[1 - i];
	struct relay_end *dst = &r->e[1 - i];

	if (!d->eof || d->shut || !dst->open || dst->wr_blocked ||
	    evbuffer_get_length(d->buf) > 0)
		return 0;
	if (!(back->eof && back->shut && dst->io->close_ends_writing)) {
		int s = dst->io->shutdown(dst->ctx);

		if (s == RELAY_IO_FAIL)
			return finish(r, 1 - i, 1);
		if (s == RELAY_IO_AGAIN_WRITE) {
			dst->wr_blocked = 1;
			r->ops->want_write(r->arg, 1 - i);
			return 0;
		}
	}
	d->shut = 1;
	*moved = 1;
	if (back->eof && back->shut)
		return finish(r, -1, 0);
	return 0;
}

/*
 * A read that found nothing leaves the space it reserved in the buffer (a
 * 16 or 64 KiB chain): with the buffer empty, trade it for a new one, so
 * that an idle connection holds no buffer memory.
 */
static void
give_back(struct relay_dir *d)
{
	struct evbuffer *fresh;

	if (evbuffer_get_length(d->buf) == 0 && (fresh = evbuffer_new()) != NULL) {
		evbuffer_free(d->buf);
		d->buf = fresh;
	}
}

/* Read side i once into its direction's buffer. Returns 1 when over. */
static int
read_side(struct relay *r, int i, size_t *budget, unsigned *ops, int *moved)
{
	struct relay_end *src = &r->e[i];
	struct relay_dir *d = &r->d[i];
	int more = 0;
	ssize_t n;

	if (!src->open || src->rd_blocked || d->eof || d->paused || *budget == 0 ||
	    *ops >= RELAY_TURN_OPS)
		return 0;
	n = src->io->read(src->ctx, d->buf, RELAY_READ, &more);
	if (n > 0) {
		r->bytes[i] += (uint64_t)n;
		*budget = (size_t)n >= *budget ? 0 : *budget - (size_t)n;
		*moved = 1;
		if (!more)
			src->rd_blocked = 1;
	} else if (n == 0) {
		d->eof = 1;
		*moved = 1;
		give_back(d);
	} else if (n == RELAY_IO_MORE) {
		(*ops)++;
		*moved = 1;
	} else if (n == RELAY_IO_AGAIN) {
		src->rd_blocked = 1;
		give_back(d);
	} else if (n == RELAY_IO_AGAIN_WRITE) {
		src->rd_blocked = 1;
		r->ops->want_write(r->arg, i);
		give_back(d);
	} else {
		return finish(r, i, 0);
	}
	if (evbuffer_get_length(d->buf) >= RELAY_BOUND)
		d->paused = 1;
	return 0;
}

enum relay_result
relay_pump(struct relay *r, int side)
{
	size_t budget = RELAY_TURN;
	unsigned ops = 0;
	int moved;

	if (r->over)
		return RELAY_OVER;
	if (side >= 0) {
		/* something changed on side: whatever it blocked on may pass */
		r->e[side].rd_blocked = 0;
		r->e[side].wr_blocked = 0;
	}
	if (r->pumping)
		return RELAY_RUNNING;	/* the pump below us sees the flags */
	r->pumping = 1;
	do {
		moved = 0;
		for (int i = 0; i < 2; i++) {
			if (read_side(r, i, &budget, &ops, &moved) || flush(r, i, &moved) ||
			    pass_eof(r, i, &moved))
				return RELAY_OVER;
		}
	} while (moved);
	r->pumping = 0;
	/* Stopped by the budget, not because everything blocked: let the loop
	 * serve the other connections first. */
	for (int i = 0; i < 2; i++) {
		const struct relay_end *e = &r->e[i];
		const struct relay_dir *d = &r->d[i];

		if (e->open && !e->rd_blocked && !d->eof && !d->paused) {
			r->ops->again(r->arg);
			break;
		}
	}
	return RELAY_RUNNING;
}

int
relay_init(struct relay *r, const struct relay_io *io0, void *ctx0,
    const struct relay_io *io1, void *ctx1, const struct relay_ops *ops, void *arg)
{
	*r = (struct relay){ 0 };
	r->d[0].buf = evbuffer_new();
	r->d[1].buf = evbuffer_new();
	if (r->d[0].buf == NULL || r->d[1].buf == NULL) {
		relay_free(r);
		return -1;
	}
	r->e[0].io = io0;
	r->e[0].ctx = ctx0;
	r->e[0].open = 1;
	r->e[1].io = io1;
	r->e[1].ctx = ctx1;
	r->ops = ops;
	r->arg = arg;
	return 0;
}

enum relay_result
relay_open(struct relay *r, int side)
{
	r->e[side].open = 1;
	return relay_pump(r, side);
}

struct evbuffer *
relay_queue(struct relay *r, int i)
{
	return r->d[i].buf;
}

int
relay_half_closed(const struct relay *r)
{
	return r->d[0].shut || r->d[1].shut;
}

void
relay_free(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		if (r->d[i].buf != NULL)
			evbuffer_free(r->d[i].buf);
		r->d[i].buf = NULL;
	}
	r->over = 1;
}
