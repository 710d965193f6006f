/*
 * test_relay.c: relay.c between two ends the test implements (struct
 * relay_io over in-memory queues), then between two real socket pairs
 * read and written by backend_io (backend.c) under an edge-triggered epoll.
 *
 * A fake end (struct fake) is what relay.h describes, under the test's
 * control:
 *   in      what its far peer sent: a read takes up to read_cap bytes of it
 *           (0: up to max), then says *more as more_mode says (NATURAL:
 *           bytes or the EOF are left; ZERO or ONE: always that), returns 0 once in is
 *           empty and in_eof is set, else RELAY_IO_AGAIN; read_status
 *           replaces the next read_status_n results (-1: all);
 *   out     what was written to it: a write takes up to `room` bytes (the
 *           far peer's reading gives room back), leaving the rest in the
 *           relay's buffer ("the end is full"), RELAY_IO_AGAIN_WRITE when
 *           there is no room at all; write_status replaces results;
 *   shutdown returns shut_status for shut_status_n calls, then 0.
 * Every callback checks the contract as it is called: no call after
 * done(), no read after the end returned EOF, no write after its shutdown
 * succeeded, no read into a buffer at RELAY_BOUND or more, no shutdown
 * while bytes for the end are still queued.
 *
 * The owner's event loop is edge-triggered (relay.h): run() calls
 * relay_pump(r, i) only for an edge of side i, which comes when its far
 * peer sends something (bytes or EOF) or gives room back after a write had
 * found it full; and relay_pump(r, -1) when the relay asked for again().
 * Nothing else: a relay that waits for an edge that cannot come stalls,
 * and the test sees the bytes missing. Each pump reads at most
 * RELAY_TURN + RELAY_READ bytes (checked on every pump).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "backend.h"
#include "relay.h"

#define CHUNK (16 * 1024)
#define UNLIMITED SIZE_MAX

enum more_mode { MORE_NATURAL = 0, MORE_ZERO, MORE_ONE };

struct fx;

struct fake {
	struct fx *f;
	int side;
	/* from its far peer */
	struct evbuffer *in;
	int in_eof;
	size_t read_cap;
	enum more_mode more_mode;
	ssize_t read_status;
	int read_status_n;
	/* to its far peer */
	struct evbuffer *out;
	size_t room;
	ssize_t write_status;
	int write_status_n;
	int shut_status;
	int shut_status_n;
	/* the event loop's view */
	int full;		/* a write found it full: room back is an edge */
	int edge;		/* an event for it is pending */
	/* what the relay did */
	int n_read, n_write, n_shut;
	int eof_returned;	/* a read returned 0 */
	int shut_done;		/* a shutdown returned 0 */
	size_t out_at_shut;	/* len(out) when it did */
	size_t buf_at_read;	/* len(buf) at the last read */
	int watch;		/* set by the test: ... */
	size_t buf_at_watch;	/* len(buf) at the first read after it */
};

struct fx {
	struct fake e[2];
	struct relay_io io[2];
	struct relay *r;	/* malloc'ed: done() may free it */
	int n_done, done_side, done_writing;
	int calls_after_done;
	int n_want_write[2];
	int n_again;
	int again_pending;
	int free_in_done;
	size_t read_in_pump;	/* bytes the current pump read */
	unsigned reads_in_pump;	/* read calls it made */
	size_t most_in_pump;	/* the most any pump read */
	int pumps;
};

/* ------------------------------------------------------------------ */
/* the fake ends                                                        */

static void
note_call(struct fx *f)
{
	if (f->n_done)
		f->calls_after_done++;
}

static ssize_t
fake_read(void *ctx, struct evbuffer *buf, size_t max, int *more)
{
	struct fake *e = ctx;
	size_t len, take;

	note_call(e->f);
	e->n_read++;
	if (++e->f->reads_in_pump > 100000)
		fail_msg("a pump that never returns (side %d read %d times)", e->side, e->n_read);
	e->buf_at_read = evbuffer_get_length(buf);
	if (e->watch) {
		e->watch = 0;
		e->buf_at_watch = e->buf_at_read;
	}
	if (e->buf_at_read >= RELAY_BOUND)
		fail_msg("side %d read into a buffer of %zu bytes (bound %d)", e->side,
		    e->buf_at_read, RELAY_BOUND);
	if (e->eof_returned)
		fail_msg("side %d read again after it returned EOF", e->side);
	assert_true(max > 0 && max <= RELAY_READ);
	if (e->read_status != 0 && e->read_status_n != 0) {
		if (e->read_status_n > 0)
			e->read_status_n--;
		return e->read_status;
	}
	len = evbuffer_get_length(e->in);
	if (len == 0) {
		if (e->in_eof) {
			e->eof_returned = 1;
			return 0;
		}
		return RELAY_IO_AGAIN;
	}
	take = len < max ? len : max;
	if (e->read_cap > 0 && take > e->read_cap)
		take = e->read_cap;
	assert_int_equal(evbuffer_remove_buffer(e->in, buf, take), (int)take);
	switch (e->more_mode) {
	case MORE_NATURAL:	/* exact: bytes or the EOF are left */
		*more = evbuffer_get_length(e->in) > 0 || e->in_eof;
		break;
	case MORE_ZERO:
		*more = 0;
		break;
	case MORE_ONE:
		*more = 1;
		break;
	}
	e->f->read_in_pump += take;
	return (ssize_t)take;
}

static ssize_t
fake_write(void *ctx, struct evbuffer *buf)
{
	struct fake *e = ctx;
	size_t len = evbuffer_get_length(buf), take;

	note_call(e->f);
	e->n_write++;
	if (e->shut_done)
		fail_msg("side %d written after its shutdown", e->side);
	assert_true(len > 0);	/* nothing to write: no call */
	if (e->write_status != 0 && e->write_status_n != 0) {
		if (e->write_status_n > 0)
			e->write_status_n--;
		if (e->write_status != RELAY_IO_FAIL)
			e->full = 1;
		return e->write_status;
	}
	take = len < e->room ? len : e->room;
	if (take == 0) {
		e->full = 1;
		return RELAY_IO_AGAIN_WRITE;
	}
	assert_int_equal(evbuffer_remove_buffer(buf, e->out, take), (int)take);
	if (e->room != UNLIMITED)
		e->room -= take;
	if (take < len)
		e->full = 1;
	return (ssize_t)take;
}

static int
fake_shutdown(void *ctx)
{
	struct fake *e = ctx;
	struct fx *f = e->f;

	note_call(f);
	e->n_shut++;
	if (e->shut_done)
		fail_msg("side %d shut down twice", e->side);
	/* everything for the end went out before its half-close */
	if (evbuffer_get_length(relay_queue(f->r, 1 - e->side)) != 0)
		fail_msg("side %d shut down with %zu bytes still queued for it", e->side,
		    evbuffer_get_length(relay_queue(f->r, 1 - e->side)));
	if (e->shut_status != 0 && e->shut_status_n != 0) {
		if (e->shut_status_n > 0)
			e->shut_status_n--;
		if (e->shut_status == RELAY_IO_AGAIN_WRITE)
			e->full = 1;
		return e->shut_status;
	}
	e->shut_done = 1;
	e->out_at_shut = evbuffer_get_length(e->out);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the owner                                                            */

static void
op_want_write(void *arg, int side)
{
	struct fx *f = arg;

	note_call(f);
	assert_in_range(side, 0, 1);
	f->n_want_write[side]++;
}

static void
op_again(void *arg)
{
	struct fx *f = arg;

	note_call(f);
	f->n_again++;
	f->again_pending = 1;
}

static void
op_done(void *arg, int side, int writing)
{
	struct fx *f = arg;

	note_call(f);
	f->n_done++;
	f->done_side = side;
	f->done_writing = writing;
	if (f->free_in_done) {
		/* as conn.c may: gone, and scribbled over so that any later
		 * use of it by the relay crashes */
		relay_free(f->r);
		memset(f->r, 0xa5, sizeof(*f->r));
		free(f->r);
		f->r = NULL;
	}
}

static const struct relay_ops ops = { op_want_write, op_again, op_done };

/* ------------------------------------------------------------------ */
/* fixture                                                              */

static struct fx *
fx_new(int open1)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	for (int i = 0; i < 2; i++) {
		struct fake *e = &f->e[i];
		e->f = f;
		e->side = i;
		assert_non_null(e->in = evbuffer_new());
		assert_non_null(e->out = evbuffer_new());
		e->room = UNLIMITED;
		f->io[i].read = fake_read;
		f->io[i].write = fake_write;
		f->io[i].shutdown = fake_shutdown;
	}
	/* side 0 as the TLS stream, side 1 as the TCP socket */
	f->io[0].close_ends_writing = 0;
	f->io[1].close_ends_writing = 1;
	f->done_side = -2;
	assert_non_null(f->r = malloc(sizeof(*f->r)));
	assert_int_equal(relay_init(f->r, &f->io[0], &f->e[0], &f->io[1], &f->e[1], &ops, f), 0);
	if (open1) {
		assert_int_equal(relay_open(f->r, 1), RELAY_RUNNING);
		/* count from here */
		for (int i = 0; i < 2; i++)
			f->e[i].n_read = f->e[i].n_write = 0;
		f->n_again = f->again_pending = 0;
	}
	return f;
}

static int
setup(void **state)
{
	*state = fx_new(1);
	return 0;
}

/* side 1 not open yet: a backend still connecting */
static int
setup_closed(void **state)
{
	*state = fx_new(0);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->r != NULL) {
		relay_free(f->r);
		free(f->r);
	}
	for (int i = 0; i < 2; i++) {
		evbuffer_free(f->e[i].in);
		evbuffer_free(f->e[i].out);
	}
	free(f);
	return 0;
}

/* One relay_pump as the owner makes it; checks the per-pump budget. */
static enum relay_result
pump(struct fx *f, int side)
{
	enum relay_result res;

	f->read_in_pump = 0;
	f->reads_in_pump = 0;
	f->pumps++;
	if (side < 0)
		f->again_pending = 0;
	res = relay_pump(f->r, side);
	if (f->read_in_pump > f->most_in_pump)
		f->most_in_pump = f->read_in_pump;
	if (f->read_in_pump > RELAY_TURN + RELAY_READ)
		fail_msg("one pump read %zu bytes (turn %d + read %d)", f->read_in_pump,
		    RELAY_TURN, RELAY_READ);
	assert_int_equal(res == RELAY_OVER, f->n_done > 0);
	return res;
}

/* The edge-triggered loop: deliver pending edges, then the again() the
 * relay asked for, until nothing is pending or the relay is over. */
static void
run(struct fx *f)
{
	for (int iter = 0; iter < 100000; iter++) {
		int any = 0;

		for (int i = 0; i < 2 && f->n_done == 0; i++) {
			if (f->e[i].edge) {
				f->e[i].edge = 0;
				any = 1;
				(void)pump(f, i);
			}
		}
		if (f->n_done)
			return;
		if (!any && f->again_pending) {
			any = 1;
			(void)pump(f, -1);
		}
		if (!any)
			return;
	}
	fail_msg("the relay never settles");
}

/* Deterministic bytes: byte k of stream `seed` (so reordering shows). */
static unsigned char
pattern(unsigned seed, size_t k)
{
	uint32_t x = (uint32_t)(k * 2654435761u) ^ (seed * 40503u);

	return (unsigned char)(x >> 13);
}

static void
fill_pattern(unsigned char *buf, unsigned seed, size_t off, size_t n)
{
	for (size_t k = 0; k < n; k++)
		buf[k] = pattern(seed, off + k);
}

/* The far peer of side sends bytes [off, off + n) of stream seed. */
static void
feed(struct fx *f, int side, unsigned seed, size_t off, size_t n)
{
	unsigned char *buf = malloc(n);

	assert_non_null(buf);
	fill_pattern(buf, seed, off, n);
	assert_int_equal(evbuffer_add(f->e[side].in, buf, n), 0);
	free(buf);
	f->e[side].edge = 1;
}

static void
feed_str(struct fx *f, int side, const char *s)
{
	assert_int_equal(evbuffer_add(f->e[side].in, s, strlen(s)), 0);
	f->e[side].edge = 1;
}

/* The far peer of side half-closes (after what it sent). */
static void
send_eof(struct fx *f, int side)
{
	f->e[side].in_eof = 1;
	f->e[side].edge = 1;
}

/* The far peer of side reads n more bytes (UNLIMITED: from now on, all). */
static void
give_room(struct fx *f, int side, size_t n)
{
	struct fake *e = &f->e[side];

	e->room = n == UNLIMITED || e->room == UNLIMITED ? UNLIMITED : e->room + n;
	if (e->full) {
		e->full = 0;
		e->edge = 1;
	}
}

/* buf holds exactly bytes 0..n-1 of stream seed */
static void
check_pattern(struct evbuffer *buf, unsigned seed, size_t n)
{
	size_t len = evbuffer_get_length(buf);
	const unsigned char *p;

	assert_int_equal(len, n);
	if (n == 0)
		return;
	p = evbuffer_pullup(buf, -1);
	for (size_t k = 0; k < n; k++)
		if (p[k] != pattern(seed, k))
			fail_msg("byte %zu of %zu differs", k, n);
}

static void
check_str(struct evbuffer *buf, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(evbuffer_get_length(buf), n);
	assert_memory_equal(evbuffer_pullup(buf, -1), s, n);
}

static size_t
queued(struct fx *f, int dir)
{
	return evbuffer_get_length(relay_queue(f->r, dir));
}

/* ------------------------------------------------------------------ */
/* data                                                                 */

static void
test_client_to_backend(void **state)
{
	struct fx *f = *state;

	feed_str(f, 0, "hello");
	run(f);
	check_str(f->e[1].out, "hello");
	assert_int_equal(evbuffer_get_length(f->e[0].out), 0);
	assert_int_equal(f->r->bytes[0], 5);
	assert_int_equal(f->r->bytes[1], 0);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->e[0].n_shut + f->e[1].n_shut, 0);
	assert_int_equal(f->n_again, 0);	/* everything blocked: nothing to come back for */
	assert_int_equal(relay_half_closed(f->r), 0);
}

static void
test_backend_to_client(void **state)
{
	struct fx *f = *state;

	feed_str(f, 1, "HTTP/1.1 200 OK\r\n");
	run(f);
	check_str(f->e[0].out, "HTTP/1.1 200 OK\r\n");
	assert_int_equal(evbuffer_get_length(f->e[1].out), 0);
	assert_int_equal(f->r->bytes[1], 17);
	assert_int_equal(f->r->bytes[0], 0);
	assert_int_equal(f->n_done, 0);
}

/* What a side's event brings is written in the same pump, without
 * waiting for the other side's event; the other side is not read on this
 * side's event (its last read found it drained). */
static void
test_written_in_same_pump(void **state)
{
	struct fx *f = *state;

	feed_str(f, 0, "request");
	feed_str(f, 1, "response");
	assert_int_equal(pump(f, 0), RELAY_RUNNING);
	check_str(f->e[1].out, "request");
	assert_int_equal(f->e[1].n_read, 0);
	assert_int_equal(pump(f, 1), RELAY_RUNNING);
	check_str(f->e[0].out, "response");
	assert_int_equal(f->r->bytes[0], 7);
	assert_int_equal(f->r->bytes[1], 8);
}

static void
test_several_writes_in_order(void **state)
{
	struct fx *f = *state;

	f->e[0].read_cap = 37;
	for (size_t off = 0; off < 1000; off += 100) {
		feed(f, 0, 1, off, 100);
		if (off % 300 == 0)
			run(f);
	}
	run(f);
	check_pattern(f->e[1].out, 1, 1000);
	assert_int_equal(f->r->bytes[0], 1000);
}

/* 1 MiB each way through ends that read odd sizes and whose peers read
 * a little at a time. */
static void
test_both_directions_bulk(void **state)
{
	struct fx *f = *state;
	const size_t total = 1024 * 1024, step = 4096;

	f->e[0].read_cap = 3001;
	f->e[1].read_cap = 5003;
	f->e[0].room = f->e[1].room = 0;
	for (size_t off = 0; off < total; off += step) {
		feed(f, 0, 7, off, step);
		feed(f, 1, 8, off, step);
		give_room(f, 0, step - 1);
		give_room(f, 1, step + 1);
		run(f);
	}
	give_room(f, 0, UNLIMITED);
	give_room(f, 1, UNLIMITED);
	run(f);
	check_pattern(f->e[1].out, 7, total);
	check_pattern(f->e[0].out, 8, total);
	assert_int_equal(f->r->bytes[0], total);
	assert_int_equal(f->r->bytes[1], total);
	assert_int_equal(f->n_done, 0);
	assert_false(f->r->d[0].paused);
	assert_false(f->r->d[1].paused);
	assert_int_equal(queued(f, 0) + queued(f, 1), 0);
}

static void
test_big_single_write(void **state)
{
	struct fx *f = *state;
	const size_t total = 3 * RELAY_BOUND + 123;

	feed(f, 1, 9, 0, total);
	run(f);
	check_pattern(f->e[0].out, 9, total);
	assert_int_equal(f->r->bytes[1], total);
}

/* ------------------------------------------------------------------ */
/* edge-triggered reading                                               */

/* A read that says *more = 0 drained the end: the relay waits for the
 * end's next event, even if (against what it said) bytes are left, and
 * another side's event or an again() is not that event. */
static void
test_more_zero_waits_for_event(void **state)
{
	struct fx *f = *state;

	f->e[0].read_cap = 40;
	f->e[0].more_mode = MORE_ZERO;
	feed(f, 0, 2, 0, 100);
	f->e[0].edge = 0;
	assert_int_equal(pump(f, 0), RELAY_RUNNING);
	assert_int_equal(f->e[0].n_read, 1);
	assert_int_equal(f->r->bytes[0], 40);
	check_pattern(f->e[1].out, 2, 40);
	assert_int_equal(f->again_pending, 0);

	(void)pump(f, 1);	/* the other side's event */
	(void)pump(f, -1);	/* a retry */
	assert_int_equal(f->e[0].n_read, 1);

	(void)pump(f, 0);	/* its own */
	assert_int_equal(f->e[0].n_read, 2);
	assert_int_equal(f->r->bytes[0], 80);
}

/* *more = 1: read again in the same pump, until the end says it is
 * drained (here RELAY_IO_AGAIN). */
static void
test_more_one_reads_on(void **state)
{
	struct fx *f = *state;

	f->e[0].read_cap = 40;
	f->e[0].more_mode = MORE_ONE;
	feed(f, 0, 3, 0, 100);
	f->e[0].edge = 0;
	(void)pump(f, 0);
	assert_int_equal(f->e[0].n_read, 4);	/* 40, 40, 20, AGAIN */
	check_pattern(f->e[1].out, 3, 100);
	assert_int_equal(f->again_pending, 0);
	(void)pump(f, 1);
	assert_int_equal(f->e[0].n_read, 4);	/* AGAIN: blocked until its event */
}

/* The natural case: reads go on while the end says more, and its last
 * short read ends them without a useless read. */
static void
test_more_natural(void **state)
{
	struct fx *f = *state;

	f->e[1].read_cap = 40;
	feed(f, 1, 4, 0, 100);
	f->e[1].edge = 0;
	(void)pump(f, 1);
	assert_int_equal(f->e[1].n_read, 3);
	check_pattern(f->e[0].out, 4, 100);
	/* new bytes come with a new edge */
	feed(f, 1, 4, 100, 10);
	run(f);
	assert_int_equal(f->e[1].n_read, 4);
	check_pattern(f->e[0].out, 4, 110);
}

/* RELAY_IO_MORE: progress without bytes (a TLS record without data):
 * read again at once. */
static void
test_io_more_reads_again(void **state)
{
	struct fx *f = *state;

	/* as many as one pump makes */
	f->e[0].read_status = RELAY_IO_MORE;
	f->e[0].read_status_n = RELAY_TURN_OPS - 1;
	feed_str(f, 0, "abc");
	f->e[0].edge = 0;
	(void)pump(f, 0);
	assert_int_equal(f->e[0].n_read, RELAY_TURN_OPS);
	check_str(f->e[1].out, "abc");
	assert_int_equal(f->r->bytes[0], 3);
	assert_int_equal(f->again_pending, 0);
}

/* RELAY_IO_AGAIN_WRITE from a read (TLS answering a KeyUpdate): the
 * owner is asked to watch writability, and the side is read again on its
 * next event only. */
static void
test_read_again_write(void **state)
{
	struct fx *f = *state;

	f->e[0].read_status = RELAY_IO_AGAIN_WRITE;
	f->e[0].read_status_n = 1;
	feed_str(f, 0, "late");
	f->e[0].edge = 0;
	(void)pump(f, 0);
	assert_int_equal(f->e[0].n_read, 1);
	assert_true(f->n_want_write[0] >= 1);
	assert_int_equal(evbuffer_get_length(f->e[1].out), 0);
	(void)pump(f, 1);
	(void)pump(f, -1);
	assert_int_equal(f->e[0].n_read, 1);
	(void)pump(f, 0);	/* writable now */
	check_str(f->e[1].out, "late");
}

/* ------------------------------------------------------------------ */
/* writing                                                              */

/* A write that leaves bytes: the end is full, the owner watches its
 * writability (want_write), the relay does not retry before the end's
 * event, then writes the rest. */
static void
test_partial_write_wants_write(void **state)
{
	struct fx *f = *state;

	f->e[1].room = 1000;
	feed(f, 0, 5, 0, 3000);
	run(f);
	assert_int_equal(f->e[1].n_write, 1);
	assert_int_equal(f->n_want_write[1], 1);
	assert_int_equal(evbuffer_get_length(f->e[1].out), 1000);
	assert_int_equal(queued(f, 0), 2000);
	assert_int_equal(f->r->bytes[0], 3000);
	/* other events do not retry it */
	(void)pump(f, 0);
	(void)pump(f, -1);
	assert_int_equal(f->e[1].n_write, 1);
	/* its writability does */
	give_room(f, 1, UNLIMITED);
	assert_int_equal(f->e[1].edge, 1);
	run(f);
	check_pattern(f->e[1].out, 5, 3000);
	assert_int_equal(f->e[1].n_write, 2);
	assert_int_equal(queued(f, 0), 0);
}

/* RELAY_IO_AGAIN_WRITE with nothing written: same. */
static void
test_write_again_write(void **state)
{
	struct fx *f = *state;

	f->e[0].room = 0;
	feed_str(f, 1, "abc");
	run(f);
	assert_int_equal(f->e[0].n_write, 1);
	assert_int_equal(f->n_want_write[0], 1);
	assert_int_equal(queued(f, 1), 3);
	give_room(f, 0, UNLIMITED);
	run(f);
	check_str(f->e[0].out, "abc");
	assert_int_equal(f->e[0].n_write, 2);
}

/* RELAY_IO_AGAIN from a write: blocked until the end is readable (TLS):
 * no want_write, retried on the end's next event. */
static void
test_write_again_read(void **state)
{
	struct fx *f = *state;

	f->e[0].write_status = RELAY_IO_AGAIN;
	f->e[0].write_status_n = 1;
	feed_str(f, 1, "xyz");
	f->e[1].edge = 0;
	(void)pump(f, 1);
	assert_int_equal(f->e[0].n_write, 1);
	assert_int_equal(f->n_want_write[0], 0);
	(void)pump(f, 1);
	assert_int_equal(f->e[0].n_write, 1);
	(void)pump(f, 0);	/* readable */
	assert_int_equal(f->e[0].n_write, 2);
	check_str(f->e[0].out, "xyz");
}

/* ------------------------------------------------------------------ */
/* side 1 not open until relay_open                                     */

static void
test_not_open_queues(void **state)
{
	struct fx *f = *state;

	feed_str(f, 0, "GET / HTTP/1.0\r\n\r\n");
	feed_str(f, 1, "too early");	/* nothing may touch side 1 */
	run(f);
	(void)pump(f, 1);
	assert_int_equal(f->e[1].n_read + f->e[1].n_write + f->e[1].n_shut, 0);
	assert_int_equal(queued(f, 0), 18);
	assert_int_equal(f->r->bytes[0], 18);
	/* the client's EOF is kept until side 1 can take it */
	send_eof(f, 0);
	run(f);
	assert_true(f->r->d[0].eof);
	assert_int_equal(f->e[1].n_shut, 0);
	assert_int_equal(relay_half_closed(f->r), 0);

	assert_int_equal(relay_open(f->r, 1), RELAY_RUNNING);
	check_str(f->e[1].out, "GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(f->e[1].n_shut, 1);
	assert_int_equal(f->e[1].out_at_shut, 18);
	assert_int_equal(relay_half_closed(f->r), 1);
	/* and side 1 is read from now on */
	run(f);
	check_str(f->e[0].out, "too early");
	assert_int_equal(f->n_done, 0);
}

/* A client that sends a lot before the backend is connected: reading it
 * stops at the bound. */
static void
test_not_open_bounded(void **state)
{
	struct fx *f = *state;
	const size_t total = 4 * RELAY_BOUND;

	feed(f, 0, 6, 0, total);
	run(f);
	assert_true(f->r->d[0].paused);
	assert_in_range(queued(f, 0), RELAY_BOUND, RELAY_BOUND + RELAY_READ - 1);
	assert_int_equal(f->r->bytes[0] + evbuffer_get_length(f->e[0].in), total);
	assert_int_equal(relay_open(f->r, 1), RELAY_RUNNING);
	run(f);
	check_pattern(f->e[1].out, 6, total);
	assert_false(f->r->d[0].paused);
}

/* The owner puts a PROXY header in front of what the client sent. */
static void
test_queue_prepend(void **state)
{
	struct fx *f = *state;
	static const char hdr[] = "PROXY TCP4 192.0.2.1 192.0.2.2 5000 443\r\n";

	feed_str(f, 0, "GET /");
	run(f);
	assert_int_equal(evbuffer_prepend(relay_queue(f->r, 0), hdr, strlen(hdr)), 0);
	assert_int_equal(relay_open(f->r, 1), RELAY_RUNNING);
	check_str(f->e[1].out, "PROXY TCP4 192.0.2.1 192.0.2.2 5000 443\r\nGET /");
	/* the header is not counted as bytes from the client */
	assert_int_equal(f->r->bytes[0], 5);
}

/* Side 0 may fail while side 1 is still connecting. */
static void
test_not_open_failure(void **state)
{
	struct fx *f = *state;

	feed_str(f, 0, "x");
	run(f);
	f->e[0].read_status = RELAY_IO_FAIL;
	f->e[0].read_status_n = -1;
	f->e[0].edge = 1;
	run(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 0);
	assert_int_equal(f->done_writing, 0);
	assert_int_equal(f->e[1].n_read + f->e[1].n_write + f->e[1].n_shut, 0);
	assert_int_equal(relay_open(f->r, 1), RELAY_OVER);
	assert_int_equal(f->e[1].n_read + f->e[1].n_write + f->e[1].n_shut, 0);
	assert_int_equal(f->calls_after_done, 0);
}

/* ------------------------------------------------------------------ */
/* backpressure                                                         */

/* The far peer of `side` reads nothing; the far peer of the other side
 * sends `chunks` chunks. Returns the most bytes the relay queued for side
 * at any time. */
static size_t
fill_until_stuck(struct fx *f, int side, unsigned seed, int chunks)
{
	size_t most = 0;

	f->e[side].room = 0;
	for (int i = 0; i < chunks; i++) {
		feed(f, 1 - side, seed, (size_t)i * CHUNK, CHUNK);
		run(f);
		if (queued(f, 1 - side) > most)
			most = queued(f, 1 - side);
	}
	return most;
}

static void
test_backpressure_slow_backend(void **state)
{
	struct fx *f = *state;
	const int chunks = 64;		/* 1 MiB */
	const size_t total = (size_t)chunks * CHUNK;
	size_t most;

	most = fill_until_stuck(f, 1, 11, chunks);
	/* memory stays bounded: the bound plus at most one read */
	assert_in_range(most, RELAY_BOUND, RELAY_BOUND + RELAY_READ - 1);
	assert_in_range(f->r->bytes[0], RELAY_BOUND, RELAY_BOUND + RELAY_READ - 1);
	assert_true(f->r->d[0].paused);
	assert_true(f->n_want_write[1] >= 1);
	/* the rest waits at the client */
	assert_int_equal(evbuffer_get_length(f->e[0].in) + f->r->bytes[0], total);
	assert_int_equal(evbuffer_get_length(f->e[1].out), 0);

	/* the backend reads again: everything arrives, in order */
	give_room(f, 1, UNLIMITED);
	run(f);
	check_pattern(f->e[1].out, 11, total);
	assert_int_equal(f->r->bytes[0], total);
	assert_false(f->r->d[0].paused);
	assert_int_equal(evbuffer_get_length(f->e[0].in), 0);
}

static void
test_backpressure_slow_client(void **state)
{
	struct fx *f = *state;
	const int chunks = 40;
	const size_t total = (size_t)chunks * CHUNK;
	size_t most;

	most = fill_until_stuck(f, 0, 12, chunks);
	assert_in_range(most, RELAY_BOUND, RELAY_BOUND + RELAY_READ - 1);
	assert_true(f->r->d[1].paused);
	assert_false(f->r->d[0].paused);
	assert_int_equal(evbuffer_get_length(f->e[1].in) + f->r->bytes[1], total);

	/* the other direction is not held up meanwhile */
	feed(f, 0, 13, 0, 3 * CHUNK);
	run(f);
	check_pattern(f->e[1].out, 13, 3 * CHUNK);

	give_room(f, 0, UNLIMITED);
	run(f);
	check_pattern(f->e[0].out, 12, total);
	assert_false(f->r->d[1].paused);
}

/* Reading stops at RELAY_BOUND and starts again once the queue is down to
 * RELAY_BOUND / 2, not before. The client's data is all there already: no
 * new event for side 0 comes, only the backend's writability. */
static void
test_backpressure_resumes_at_half(void **state)
{
	struct fx *f = *state;
	const size_t total = 4 * RELAY_BOUND;
	size_t before, step = 1024;
	int resumed = 0, reads;

	f->e[0].read_cap = CHUNK;
	f->e[1].room = 0;
	feed(f, 0, 14, 0, total);
	run(f);
	assert_true(f->r->d[0].paused);
	assert_int_equal(queued(f, 0), RELAY_BOUND);	/* CHUNK divides it */
	reads = f->e[0].n_read;
	f->e[0].watch = 1;

	while (!resumed && evbuffer_get_length(f->e[1].out) < total) {
		before = queued(f, 0);
		give_room(f, 1, step);
		run(f);
		if (f->e[0].n_read != reads) {
			resumed = 1;
			/* in the step that took the queue down to half, not
			 * before (those are checked below) ... */
			assert_true(before > RELAY_BOUND / 2);
			assert_true(before - step <= RELAY_BOUND / 2);
			/* ... and the first read after the pause found at most
			 * half in the buffer */
			assert_true(f->e[0].buf_at_watch <= RELAY_BOUND / 2);
		} else {
			assert_true(f->r->d[0].paused);
			assert_true(queued(f, 0) > RELAY_BOUND / 2);
		}
	}
	assert_true(resumed);

	give_room(f, 1, UNLIMITED);
	run(f);
	check_pattern(f->e[1].out, 14, total);
}

/* A paused side whose buffer drains is read again although no event of
 * its own comes: by the same pump, or through again(). */
static void
test_paused_side_resumes_without_event(void **state)
{
	struct fx *f = *state;
	const size_t total = 3 * RELAY_BOUND;

	f->e[1].room = 0;
	feed(f, 0, 15, 0, total);
	f->e[0].edge = 0;
	(void)pump(f, 0);
	assert_true(f->r->d[0].paused);
	assert_true(evbuffer_get_length(f->e[0].in) > 0);
	f->e[1].room = UNLIMITED;
	f->e[1].full = 0;
	/* only side 1's event, then what the relay asks for */
	(void)pump(f, 1);
	for (int i = 0; i < 100 && f->again_pending; i++)
		(void)pump(f, -1);
	assert_int_equal(f->again_pending, 0);
	check_pattern(f->e[1].out, 15, total);
	assert_false(f->r->d[0].paused);
}

/* ------------------------------------------------------------------ */
/* fairness: RELAY_TURN and RELAY_TURN_OPS                              */

static void
test_turn_budget(void **state)
{
	struct fx *f = *state;
	const size_t total = 4 * 1024 * 1024;

	f->e[0].more_mode = MORE_ONE;	/* a fast sender: always more */
	feed(f, 0, 16, 0, total);
	f->e[0].edge = 0;
	(void)pump(f, 0);
	/* one pump took its share, not everything, and asked to come back */
	assert_in_range(f->read_in_pump, RELAY_TURN, RELAY_TURN + RELAY_READ);
	assert_int_equal(f->n_again, 1);
	assert_true(f->again_pending);
	/* what it read went out in the same turn */
	assert_int_equal(evbuffer_get_length(f->e[1].out), f->read_in_pump);
	run(f);
	check_pattern(f->e[1].out, 16, total);
	assert_true(f->pumps >= (int)(total / (RELAY_TURN + RELAY_READ)));
	assert_true(f->most_in_pump <= RELAY_TURN + RELAY_READ);
}

/* Both sides fast: neither reads more than the budget in one pump, and
 * both directions progress. */
static void
test_turn_budget_both(void **state)
{
	struct fx *f = *state;
	const size_t total = 2 * 1024 * 1024;

	f->e[0].more_mode = f->e[1].more_mode = MORE_ONE;
	feed(f, 0, 17, 0, total);
	feed(f, 1, 18, 0, total);
	run(f);
	check_pattern(f->e[1].out, 17, total);
	check_pattern(f->e[0].out, 18, total);
	assert_true(f->n_again >= 2);
}

static void
test_turn_ops(void **state)
{
	struct fx *f = *state;

	f->e[0].read_status = RELAY_IO_MORE;
	f->e[0].read_status_n = -1;	/* records without data, forever */
	f->e[0].edge = 0;
	(void)pump(f, 0);
	assert_in_range(f->e[0].n_read, 1, RELAY_TURN_OPS);
	assert_true(f->again_pending);
	/* the loop serves the others, then the relay goes on */
	(void)pump(f, -1);
	assert_in_range(f->e[0].n_read, 2, 2 * RELAY_TURN_OPS);
	assert_true(f->again_pending);
	/* the end has data at last */
	f->e[0].read_status_n = 0;
	feed_str(f, 0, "finally");
	f->e[0].edge = 0;
	(void)pump(f, -1);
	check_str(f->e[1].out, "finally");
	assert_false(f->again_pending);
}

/* ------------------------------------------------------------------ */
/* EOF and half-close                                                   */

static void
test_eof_shutdown_after_flush(void **state)
{
	struct fx *f = *state;

	f->e[1].room = 0;	/* the backend is slow */
	feed(f, 0, 21, 0, 10000);
	send_eof(f, 0);
	run(f);
	assert_true(f->r->d[0].eof);
	/* 10000 bytes still queued for the backend: no half-close yet */
	assert_int_equal(queued(f, 0), 10000);
	assert_int_equal(f->e[1].n_shut, 0);
	assert_int_equal(relay_half_closed(f->r), 0);

	give_room(f, 1, 4000);
	run(f);
	assert_int_equal(f->e[1].n_shut, 0);
	give_room(f, 1, UNLIMITED);
	run(f);
	assert_int_equal(f->e[1].n_shut, 1);
	assert_int_equal(f->e[1].out_at_shut, 10000);	/* EOF after all the data */
	check_pattern(f->e[1].out, 21, 10000);
	assert_int_equal(relay_half_closed(f->r), 1);
	/* the other direction is still open */
	assert_int_equal(f->e[0].n_shut, 0);
	assert_int_equal(f->n_done, 0);
	feed_str(f, 1, "answer");
	run(f);
	check_str(f->e[0].out, "answer");
}

static void
test_eof_with_nothing_queued(void **state)
{
	struct fx *f = *state;

	send_eof(f, 0);
	run(f);
	assert_int_equal(f->e[1].n_shut, 1);
	assert_int_equal(f->e[1].out_at_shut, 0);
	assert_int_equal(f->e[0].n_shut, 0);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(relay_half_closed(f->r), 1);
}

static void
test_eof_right_after_data(void **state)
{
	struct fx *f = *state;

	/* data and EOF seen in one event */
	feed(f, 1, 22, 0, 777);
	send_eof(f, 1);
	run(f);
	check_pattern(f->e[0].out, 22, 777);
	assert_int_equal(f->r->bytes[1], 777);
	assert_int_equal(f->e[0].n_shut, 1);
	assert_int_equal(f->e[0].out_at_shut, 777);
	assert_int_equal(f->n_done, 0);
}

static void
test_eof_while_paused(void **state)
{
	struct fx *f = *state;
	const size_t total = 10 * CHUNK;

	(void)fill_until_stuck(f, 1, 23, 10);
	assert_true(f->r->d[0].paused);
	send_eof(f, 0);
	run(f);
	assert_int_equal(f->e[1].n_shut, 0);
	give_room(f, 1, UNLIMITED);
	run(f);
	check_pattern(f->e[1].out, 23, total);
	assert_int_equal(f->e[1].n_shut, 1);
	assert_int_equal(f->e[1].out_at_shut, total);
}

static void
test_half_close_other_direction_flows(void **state)
{
	struct fx *f = *state;

	send_eof(f, 0);		/* the client is done sending */
	run(f);
	assert_int_equal(f->e[1].n_shut, 1);
	feed(f, 1, 24, 0, 200000);	/* the backend answers at length */
	run(f);
	check_pattern(f->e[0].out, 24, 200000);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->e[0].n_shut, 0);

	send_eof(f, 1);
	run(f);
	/* side 0 does not say EOF by closing (TLS): its shutdown is made */
	assert_int_equal(f->e[0].n_shut, 1);
	assert_int_equal(f->e[0].out_at_shut, 200000);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, -1);
	assert_int_equal(f->done_writing, 0);
}

/*
 * Both directions end, in either order, with either end saying EOF by
 * closing or not: the first EOF is always passed on by a shutdown; the
 * second one's shutdown is skipped exactly when its end has
 * close_ends_writing; done(-1) once, after both.
 */
static void
test_both_eof_orders(void **state)
{
	(void)state;
	for (int first = 0; first < 2; first++) {
		for (int cew = 0; cew < 4; cew++) {
			struct fx *f = fx_new(1);
			int second = 1 - first;

			f->io[0].close_ends_writing = cew & 1;
			f->io[1].close_ends_writing = (cew >> 1) & 1;
			feed(f, first, 40, 0, 1000);
			send_eof(f, first);
			run(f);
			assert_int_equal(f->e[second].n_shut, 1);
			assert_int_equal(f->e[second].out_at_shut, 1000);
			assert_int_equal(f->n_done, 0);
			feed(f, second, 41, 0, 2000);
			send_eof(f, second);
			run(f);
			check_pattern(f->e[first].out, 41, 2000);
			assert_int_equal(f->e[first].n_shut, f->io[first].close_ends_writing ? 0 : 1);
			if (!f->io[first].close_ends_writing)
				assert_int_equal(f->e[first].out_at_shut, 2000);
			assert_int_equal(f->e[second].n_shut, 1);
			assert_int_equal(f->n_done, 1);
			assert_int_equal(f->done_side, -1);
			/* nothing more after done */
			feed_str(f, 0, "late");
			feed_str(f, 1, "late");
			assert_int_equal(pump(f, 0), RELAY_OVER);
			assert_int_equal(pump(f, 1), RELAY_OVER);
			assert_int_equal(pump(f, -1), RELAY_OVER);
			assert_int_equal(f->calls_after_done, 0);
			assert_int_equal(f->n_done, 1);
			teardown((void **)&f);
		}
	}
}

/* Both EOFs seen in one pump (here, the one relay_open makes: neither
 * side has been read yet). */
static void
test_both_eof_done_once(void **state)
{
	struct fx *f = *state;

	send_eof(f, 0);
	send_eof(f, 1);
	assert_int_equal(relay_open(f->r, 1), RELAY_OVER);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, -1);
	assert_int_equal(f->done_writing, 0);
	/* side 0's EOF, seen first, half-closes side 1; side 1's then needs a
	 * shutdown of side 0 (TLS: close_ends_writing 0) */
	assert_int_equal(f->e[1].n_shut, 1);
	assert_int_equal(f->e[0].n_shut, 1);
	assert_int_equal(f->calls_after_done, 0);
	assert_int_equal(pump(f, 1), RELAY_OVER);
	assert_int_equal(pump(f, 0), RELAY_OVER);
	assert_int_equal(f->calls_after_done, 0);
	assert_int_equal(f->n_done, 1);
}

static void
test_both_eof_waits_for_slow_reader(void **state)
{
	struct fx *f = *state;

	f->e[0].room = 0;
	feed(f, 1, 27, 0, 5000);
	run(f);
	send_eof(f, 1);
	send_eof(f, 0);
	run(f);
	/* the client has not taken its 5000 bytes: not over yet */
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->e[0].n_shut, 0);
	assert_int_equal(f->e[1].n_shut, 1);
	give_room(f, 0, UNLIMITED);
	run(f);
	check_pattern(f->e[0].out, 27, 5000);
	assert_int_equal(f->e[0].n_shut, 1);
	assert_int_equal(f->e[0].out_at_shut, 5000);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, -1);
}

/* A shutdown refused until writable: the owner watches writability, the
 * EOF is not passed on yet, and the shutdown is made on the end's event. */
static void
test_shutdown_again_write(void **state)
{
	struct fx *f = *state;

	f->e[1].shut_status = RELAY_IO_AGAIN_WRITE;
	f->e[1].shut_status_n = -1;
	send_eof(f, 0);
	run(f);
	assert_in_range(f->e[1].n_shut, 1, 2);
	assert_false(f->e[1].shut_done);
	assert_true(f->n_want_write[1] >= 1);
	assert_int_equal(relay_half_closed(f->r), 0);
	assert_int_equal(f->n_done, 0);
	f->e[1].shut_status_n = 0;
	give_room(f, 1, UNLIMITED);
	assert_true(f->e[1].edge);
	run(f);
	assert_true(f->e[1].shut_done);
	assert_int_equal(relay_half_closed(f->r), 1);
	assert_int_equal(f->n_done, 0);
}

static void
test_shutdown_fails(void **state)
{
	struct fx *f = *state;

	f->e[1].shut_status = RELAY_IO_FAIL;
	f->e[1].shut_status_n = -1;
	send_eof(f, 0);
	run(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 1);
	assert_int_equal(f->done_writing, 1);
	assert_int_equal(f->calls_after_done, 0);
}

/* ------------------------------------------------------------------ */
/* failures                                                             */

static void
check_over(struct fx *f, int side, int writing)
{
	int shuts = f->e[0].n_shut + f->e[1].n_shut;
	int writes = f->e[0].n_write + f->e[1].n_write;

	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, side);
	assert_int_equal(f->done_writing, writing);
	/* and calls nothing any more */
	feed_str(f, 0, "x");
	feed_str(f, 1, "y");
	send_eof(f, 0);
	send_eof(f, 1);
	give_room(f, 0, UNLIMITED);
	give_room(f, 1, UNLIMITED);
	assert_int_equal(pump(f, 0), RELAY_OVER);
	assert_int_equal(pump(f, 1), RELAY_OVER);
	assert_int_equal(pump(f, -1), RELAY_OVER);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->calls_after_done, 0);
	assert_int_equal(f->e[0].n_shut + f->e[1].n_shut, shuts);
	assert_int_equal(f->e[0].n_write + f->e[1].n_write, writes);
}

static void
test_read_fails(void **state)
{
	for (int side = 0; side < 2; side++) {
		struct fx *f = fx_new(1);

		feed_str(f, 1 - side, "before");
		run(f);
		f->e[side].read_status = RELAY_IO_FAIL;
		f->e[side].read_status_n = -1;
		f->e[side].edge = 1;
		run(f);
		assert_int_equal(f->e[0].n_shut + f->e[1].n_shut, 0);
		check_over(f, side, 0);
		teardown((void **)&f);
	}
	(void)state;
}

static void
test_write_fails(void **state)
{
	for (int side = 0; side < 2; side++) {
		struct fx *f = fx_new(1);

		f->e[side].write_status = RELAY_IO_FAIL;
		f->e[side].write_status_n = -1;
		feed_str(f, 1 - side, "for you");
		run(f);
		assert_int_equal(f->e[side].n_write, 1);
		assert_int_equal(f->e[0].n_shut + f->e[1].n_shut, 0);
		check_over(f, side, 1);
		teardown((void **)&f);
	}
	(void)state;
}

/* A failure after a half-close: still one done, of the failing side. */
static void
test_failure_after_half_close(void **state)
{
	struct fx *f = *state;

	send_eof(f, 0);
	run(f);
	assert_int_equal(f->e[1].n_shut, 1);
	f->e[1].read_status = RELAY_IO_FAIL;
	f->e[1].read_status_n = -1;
	f->e[1].edge = 1;
	run(f);
	check_over(f, 1, 0);
}

/* done() may free the relay: the relay touches nothing after it (r is
 * scribbled over and freed in op_done). */
static void
test_done_may_free(void **state)
{
	struct fx *f;

	/* both over, in one pump */
	f = fx_new(1);
	f->free_in_done = 1;
	feed(f, 0, 31, 0, 1000);
	send_eof(f, 0);
	send_eof(f, 1);
	run(f);
	assert_int_equal(f->n_done, 1);
	assert_null(f->r);
	check_pattern(f->e[1].out, 31, 1000);
	assert_int_equal(f->calls_after_done, 0);
	teardown((void **)&f);

	/* read failure */
	f = fx_new(1);
	f->free_in_done = 1;
	f->e[0].read_status = RELAY_IO_FAIL;
	f->e[0].read_status_n = -1;
	f->e[0].edge = 1;
	run(f);
	assert_int_equal(f->n_done, 1);
	assert_null(f->r);
	assert_int_equal(f->calls_after_done, 0);
	teardown((void **)&f);

	/* write failure, with more to read on both sides */
	f = fx_new(1);
	f->free_in_done = 1;
	f->e[1].write_status = RELAY_IO_FAIL;
	f->e[1].write_status_n = -1;
	f->e[0].more_mode = f->e[1].more_mode = MORE_ONE;
	feed(f, 0, 32, 0, 10000);
	feed(f, 1, 33, 0, 10000);
	run(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 1);
	assert_null(f->r);
	assert_int_equal(f->calls_after_done, 0);
	teardown((void **)&f);

	/* shutdown failure */
	f = fx_new(1);
	f->free_in_done = 1;
	f->e[1].shut_status = RELAY_IO_FAIL;
	f->e[1].shut_status_n = -1;
	send_eof(f, 0);
	run(f);
	assert_int_equal(f->n_done, 1);
	assert_null(f->r);
	teardown((void **)&f);

	/* from relay_open */
	f = fx_new(0);
	f->free_in_done = 1;
	f->e[1].write_status = RELAY_IO_FAIL;
	f->e[1].write_status_n = -1;
	feed_str(f, 0, "queued");
	run(f);
	assert_int_equal(relay_open(f->r, 1), RELAY_OVER);
	assert_int_equal(f->n_done, 1);
	assert_null(f->r);
	teardown((void **)&f);
	(void)state;
}

static void
test_free_twice(void **state)
{
	struct relay r;

	memset(&r, 0, sizeof(r));
	relay_free(&r);		/* zeroed: no-op */
	assert_int_equal(relay_init(&r, &backend_io, NULL, &backend_io, NULL, &ops, NULL), 0);
	relay_free(&r);
	relay_free(&r);		/* freed: no-op */
	assert_null(r.d[0].buf);
	assert_null(r.d[1].buf);
	(void)state;
}

/* ------------------------------------------------------------------ */
/* two real socket pairs, backend_io on both sides, under epoll (ET)     */
/*                                                                      */
/*   cli ~~socketpair~~ s0  ==relay==  s1 ~~socketpair~~ srv           */

struct sx {
	int cli, srv;		/* the far ends the test drives */
	struct backend_end be[2];
	struct relay r;
	int ep;
	int n_done, done_side, done_writing, calls_after_done;
	int again_pending;
};

static void
sx_want_write(void *arg, int side)
{
	struct sx *s = arg;

	if (s->n_done)
		s->calls_after_done++;
}

static void
sx_again(void *arg)
{
	struct sx *s = arg;

	if (s->n_done)
		s->calls_after_done++;
	s->again_pending = 1;
}

static void
sx_done(void *arg, int side, int writing)
{
	struct sx *s = arg;

	if (s->n_done)
		s->calls_after_done++;
	s->n_done++;
	s->done_side = side;
	s->done_writing = writing;
}

static const struct relay_ops sx_ops = { sx_want_write, sx_again, sx_done };

static void
small_buffers(int fd)
{
	int v = 4096;

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), 0);
}

static int
setup_sock(void **state)
{
	struct sx *s = calloc(1, sizeof(*s));
	int a[2], b[2];

	assert_non_null(s);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b), 0);
	for (int i = 0; i < 2; i++) {
		small_buffers(a[i]);
		small_buffers(b[i]);
	}
	s->cli = a[0];
	s->be[0].fd = a[1];
	s->be[1].fd = b[0];
	s->srv = b[1];
	s->done_side = -2;
	assert_true((s->ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
		ev.data.u32 = (uint32_t)i;
		assert_int_equal(epoll_ctl(s->ep, EPOLL_CTL_ADD, s->be[i].fd, &ev), 0);
	}
	assert_int_equal(relay_init(&s->r, &backend_io, &s->be[0], &backend_io, &s->be[1], &sx_ops,
	    s), 0);
	assert_int_equal(relay_open(&s->r, 1), RELAY_RUNNING);
	*state = s;
	return 0;
}

static int
teardown_sock(void **state)
{
	struct sx *s = *state;

	relay_free(&s->r);
	close(s->ep);
	if (s->cli >= 0)
		close(s->cli);
	if (s->srv >= 0)
		close(s->srv);
	for (int i = 0; i < 2; i++)
		if (s->be[i].fd >= 0)
			close(s->be[i].fd);
	free(s);
	return 0;
}

/* One turn of the owner's loop: the events that are there (waiting up to
 * wait_ms for one), then again() if asked. Returns how many it handled. */
static int
sx_turn(struct sx *s, int wait_ms)
{
	struct epoll_event ev[4];
	int n, handled = 0;

	if (s->again_pending)
		wait_ms = 0;
	n = epoll_wait(s->ep, ev, 4, wait_ms);
	assert_true(n >= 0 || errno == EINTR);
	for (int i = 0; i < n && s->n_done == 0; i++) {
		int side = (int)ev[i].data.u32;

		if (ev[i].events & (EPOLLRDHUP | EPOLLHUP))
			s->be[side].eof_pending = 1;
		(void)relay_pump(&s->r, side);
		handled++;
	}
	if (s->n_done == 0 && s->again_pending) {
		s->again_pending = 0;
		(void)relay_pump(&s->r, -1);
		handled++;
	}
	return handled;
}

/* A direction of the transfer, as the test's far ends see it. */
struct stream {
	int wfd, rfd;		/* the far end writing, the far end reading */
	unsigned seed;
	size_t n, sent, got;
	int eof_sent, eof_got;
	int reading;		/* the reading end reads (0: a peer that never does) */
};

/* Move what the far ends can move now, without blocking. Returns 1 if
 * anything moved. */
static int
stream_step(struct stream *st)
{
	unsigned char buf[8192];
	int moved = 0;

	while (st->sent < st->n) {
		size_t k = st->n - st->sent < sizeof(buf) ? st->n - st->sent : sizeof(buf);
		ssize_t w;

		fill_pattern(buf, st->seed, st->sent, k);
		w = write(st->wfd, buf, k);
		if (w < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			break;
		}
		st->sent += (size_t)w;
		moved = 1;
	}
	if (st->sent == st->n && !st->eof_sent) {
		assert_int_equal(shutdown(st->wfd, SHUT_WR), 0);
		st->eof_sent = 1;
		moved = 1;
	}
	while (st->reading && !st->eof_got) {
		ssize_t r = read(st->rfd, buf, sizeof(buf));

		if (r < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			break;
		}
		if (r == 0) {
			st->eof_got = 1;	/* only after all the bytes */
			assert_int_equal(st->got, st->n);
			moved = 1;
			break;
		}
		for (ssize_t j = 0; j < r; j++)
			if (buf[j] != pattern(st->seed, st->got + (size_t)j))
				fail_msg("byte %zu differs", st->got + (size_t)j);
		st->got += (size_t)r;
		moved = 1;
	}
	return moved;
}

/* Run the far ends and the relay until done() or a stall: 2 s in which
 * neither the far ends nor the relay could do anything fails the test
 * (the relay waited for an edge that never came). */
static void
sx_run(struct sx *s, struct stream *st, int nst, int until_done)
{
	long long idle_ms = 0;

	while (!(until_done ? s->n_done : 0)) {
		int moved = 0, handled;
		int all = 1;

		for (int i = 0; i < nst; i++) {
			moved |= stream_step(&st[i]);
			if (!(st[i].eof_got || !st[i].reading))
				all = 0;
		}
		if (!until_done && all)
			return;
		handled = sx_turn(s, moved ? 0 : 100);
		if (moved || handled)
			idle_ms = 0;
		else if ((idle_ms += 100) >= 2000)
			fail_msg("stalled: sent %zu/%zu got %zu, sent %zu/%zu got %zu",
			    st[0].sent, st[0].n, st[0].got, nst > 1 ? st[1].sent : 0,
			    nst > 1 ? st[1].n : 0, nst > 1 ? st[1].got : 0);
	}
}

static void
test_sock_bulk_both_ways(void **state)
{
	struct sx *s = *state;
	const size_t n = 4 * 1024 * 1024 + 17;
	struct stream st[2] = {
		{ .wfd = s->cli, .rfd = s->srv, .seed = 51, .n = n, .reading = 1 },
		{ .wfd = s->srv, .rfd = s->cli, .seed = 52, .n = n - 1000, .reading = 1 },
	};

	sx_run(s, st, 2, 1);
	assert_int_equal(s->n_done, 1);
	assert_int_equal(s->done_side, -1);
	/* the owner closes both sockets (the last shutdown was left to the
	 * close: close_ends_writing); the far ends read the rest and the EOF */
	close(s->be[0].fd);
	close(s->be[1].fd);
	s->be[0].fd = s->be[1].fd = -1;
	sx_run(s, st, 2, 0);
	assert_int_equal(st[0].got, n);
	assert_int_equal(st[1].got, n - 1000);
	assert_true(st[0].eof_got && st[1].eof_got);
	assert_int_equal(s->r.bytes[0], n);
	assert_int_equal(s->r.bytes[1], n - 1000);
	assert_int_equal(s->calls_after_done, 0);
}

/* A backend that reads nothing: the relay's queue stays bounded while the
 * client pushes; then everything arrives. */
static void
test_sock_backpressure(void **state)
{
	struct sx *s = *state;
	const size_t n = 2 * 1024 * 1024;
	struct stream st = { .wfd = s->cli, .rfd = s->srv, .seed = 53, .n = n, .reading = 0 };
	int idle = 0;

	/* push until nothing moves any more: the client's socket is full and
	 * the relay has no event and no again() pending (UNIX sockets move
	 * bytes and raise their events within the write) */
	while (idle < 2) {
		int moved = stream_step(&st);
		int handled = sx_turn(s, 0);

		idle = moved || handled ? 0 : idle + 1;
		assert_true(evbuffer_get_length(relay_queue(&s->r, 0)) < RELAY_BOUND + RELAY_READ);
	}
	assert_true(st.sent < n);
	assert_true(s->r.d[0].paused);
	assert_true(evbuffer_get_length(relay_queue(&s->r, 0)) >= RELAY_BOUND);
	/* the backend reads */
	st.reading = 1;
	sx_run(s, &st, 1, 0);
	assert_int_equal(st.got, n);
	assert_int_equal(s->r.bytes[0], n);
	assert_int_equal(s->n_done, 0);	/* the other direction is open */
}

/* The backend's far end closes with bytes unread: a reset, reported once
 * as a failure of side 1 with its errno. */
static void
test_sock_reset(void **state)
{
	struct sx *s = *state;
	struct stream st = { .wfd = s->cli, .rfd = s->srv, .seed = 54, .n = 1000 };

	while (st.sent < st.n)
		(void)stream_step(&st);
	for (int i = 0; i < 50 && !(s->r.bytes[0] == st.n &&
	    evbuffer_get_length(relay_queue(&s->r, 0)) == 0); i++)
		(void)sx_turn(s, 100);
	assert_int_equal(s->r.bytes[0], st.n);
	assert_int_equal(evbuffer_get_length(relay_queue(&s->r, 0)), 0);	/* in srv's socket */
	close(s->srv);		/* 1000 bytes unread */
	s->srv = -1;
	for (int i = 0; i < 50 && s->n_done == 0; i++)
		(void)sx_turn(s, 100);
	assert_int_equal(s->n_done, 1);
	assert_int_equal(s->done_side, 1);
	assert_true(s->be[1].sys_errno == ECONNRESET || s->be[1].sys_errno == EPIPE);
	assert_int_equal(s->calls_after_done, 0);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TC(f) cmocka_unit_test_setup_teardown(f, setup_closed, teardown)
#define TS(f) cmocka_unit_test_setup_teardown(f, setup_sock, teardown_sock)
	const struct CMUnitTest tests[] = {
		T(test_client_to_backend),
		T(test_backend_to_client),
		T(test_written_in_same_pump),
		T(test_several_writes_in_order),
		T(test_both_directions_bulk),
		T(test_big_single_write),
		T(test_more_zero_waits_for_event),
		T(test_more_one_reads_on),
		T(test_more_natural),
		T(test_io_more_reads_again),
		T(test_read_again_write),
		T(test_partial_write_wants_write),
		T(test_write_again_write),
		T(test_write_again_read),
		TC(test_not_open_queues),
		TC(test_not_open_bounded),
		TC(test_queue_prepend),
		TC(test_not_open_failure),
		T(test_backpressure_slow_backend),
		T(test_backpressure_slow_client),
		T(test_backpressure_resumes_at_half),
		T(test_paused_side_resumes_without_event),
		T(test_turn_budget),
		T(test_turn_budget_both),
		T(test_turn_ops),
		T(test_eof_shutdown_after_flush),
		T(test_eof_with_nothing_queued),
		T(test_eof_right_after_data),
		T(test_eof_while_paused),
		T(test_half_close_other_direction_flows),
		cmocka_unit_test(test_both_eof_orders),
		TC(test_both_eof_done_once),
		T(test_both_eof_waits_for_slow_reader),
		T(test_shutdown_again_write),
		T(test_shutdown_fails),
		cmocka_unit_test(test_read_fails),
		cmocka_unit_test(test_write_fails),
		T(test_failure_after_half_close),
		cmocka_unit_test(test_done_may_free),
		cmocka_unit_test(test_free_twice),
		TS(test_sock_bulk_both_ways),
		TS(test_sock_backpressure),
		TS(test_sock_reset),
	};
#undef T
#undef TC
#undef TS

	signal(SIGPIPE, SIG_IGN);	/* as the daemon (supervisor.c) */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
