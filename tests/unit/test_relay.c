/*
 * test_relay.c: relay.c between two libevent bufferevent pairs.
 *
 *   cli <-pair-> rc  ==relay==  rb <-pair-> be
 *
 * cli and be are the far ends the test drives (the "client" and the
 * "backend"); rc is relay side 0, rb relay side 1. No sockets, no TLS.
 *
 * libevent 2.1 pairs: a far end sends EOF with
 * bufferevent_flush(end, EV_WRITE, BEV_FINISHED), which moves what it has
 * written to its partner and then gives the partner BEV_EVENT_EOF. (Freeing
 * one end of a pair does not: it only unlinks the partner.) A pair moves
 * data only while the receiving end has EV_READ enabled, so a far end with
 * reading disabled is a peer that never reads. All four ends defer their
 * callbacks, as socket bufferevents in the event loop effectively do; pump()
 * runs the loop without blocking.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "relay.h"

#define CHUNK (16 * 1024)

struct fx {
	struct event_base *base;
	struct bufferevent *cli, *rc;	/* far client end, relay side 0 */
	struct bufferevent *rb, *be;	/* relay side 1, far backend end */
	struct relay r;
	struct evbuffer *got[2];	/* what the far end of side i received */
	int far_eof[2];			/* the far end of side i saw EOF */
	size_t got_at_eof[2];		/* ... after receiving this much */
	int n_shut[2];			/* shutdown_write(i) calls */
	size_t out_at_shut[2];		/* side i's output length at that call */
	int n_done;
	const char *done_reason;
	int done_side;
	short done_what;
	int calls_after_done;
	int free_in_done;		/* done() frees the relay's bufferevents */
};

/* ------------------------------------------------------------------ */
/* fixture                                                              */

static struct bufferevent *
relay_bev(struct fx *f, int side)
{
	return side == 0 ? f->rc : f->rb;
}

static struct bufferevent *
far_bev(struct fx *f, int side)
{
	return side == 0 ? f->cli : f->be;
}

static void
far_read(struct bufferevent *bev, void *arg)
{
	struct fx *f = arg;
	int i = bev == f->cli ? 0 : 1;

	evbuffer_add_buffer(f->got[i], bufferevent_get_input(bev));
}

static void
far_event(struct bufferevent *bev, short what, void *arg)
{
	struct fx *f = arg;
	int i = bev == f->cli ? 0 : 1;

	if (what & BEV_EVENT_EOF) {
		evbuffer_add_buffer(f->got[i], bufferevent_get_input(bev));
		f->far_eof[i]++;
		f->got_at_eof[i] = evbuffer_get_length(f->got[i]);
	}
}

static void
op_shutdown_write(void *arg, int side)
{
	struct fx *f = arg;
	struct bufferevent *bev;

	assert_in_range(side, 0, 1);
	if (f->n_done)
		f->calls_after_done++;
	bev = relay_bev(f, side);
	f->n_shut[side]++;
	f->out_at_shut[side] = evbuffer_get_length(bufferevent_get_output(bev));
	/* pass the half-close on to the far end, as shutdown(SHUT_WR) would */
	bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
}

static void
op_done(void *arg, const char *reason, int side, short what)
{
	struct fx *f = arg;

	if (f->n_done)
		f->calls_after_done++;
	f->n_done++;
	f->done_reason = reason;
	f->done_side = side;
	f->done_what = what;
	if (f->free_in_done) {
		bufferevent_free(f->rc);
		bufferevent_free(f->rb);
		f->rc = f->rb = NULL;
	}
}

static const struct relay_ops ops = { op_shutdown_write, op_done };

static int
setup_nostart(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct bufferevent *p[2];

	if (f == NULL || (f->base = event_base_new()) == NULL)
		return -1;
	if (bufferevent_pair_new(f->base, BEV_OPT_DEFER_CALLBACKS, p) != 0)
		return -1;
	f->cli = p[0];
	f->rc = p[1];
	if (bufferevent_pair_new(f->base, BEV_OPT_DEFER_CALLBACKS, p) != 0)
		return -1;
	f->rb = p[0];
	f->be = p[1];
	f->got[0] = evbuffer_new();
	f->got[1] = evbuffer_new();
	f->done_side = -2;
	bufferevent_setcb(f->cli, far_read, NULL, far_event, f);
	bufferevent_setcb(f->be, far_read, NULL, far_event, f);
	bufferevent_enable(f->cli, EV_READ | EV_WRITE);
	bufferevent_enable(f->be, EV_READ | EV_WRITE);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	struct fx *f;

	if (setup_nostart(state) != 0)
		return -1;
	f = *state;
	relay_start(&f->r, f->rc, f->rb, &ops, f);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->r.ops != NULL)
		relay_stop(&f->r);
	if (f->rc)
		bufferevent_free(f->rc);
	if (f->rb)
		bufferevent_free(f->rb);
	bufferevent_free(f->cli);
	bufferevent_free(f->be);
	evbuffer_free(f->got[0]);
	evbuffer_free(f->got[1]);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
pump(struct fx *f)
{
	for (int i = 0; i < 64; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Deterministic bytes: byte k of stream `seed` (so reordering shows). */
static unsigned char
pattern(unsigned seed, size_t k)
{
	uint32_t x = (uint32_t)(k * 2654435761u) ^ (seed * 40503u);

	return (unsigned char)(x >> 13);
}

static void
send_pattern(struct fx *f, int side, unsigned seed, size_t off, size_t n)
{
	unsigned char *buf = malloc(n);

	assert_non_null(buf);
	for (size_t k = 0; k < n; k++)
		buf[k] = pattern(seed, off + k);
	assert_int_equal(bufferevent_write(far_bev(f, side), buf, n), 0);
	free(buf);
}

/* got[side] holds exactly bytes 0..n-1 of stream seed */
static void
check_pattern(struct fx *f, int side, unsigned seed, size_t n)
{
	size_t len = evbuffer_get_length(f->got[side]);
	const unsigned char *p;

	assert_int_equal(len, n);
	p = evbuffer_pullup(f->got[side], -1);
	for (size_t k = 0; k < n; k++)
		if (p[k] != pattern(seed, k))
			fail_msg("side %d: byte %zu differs", side, k);
}

static void
far_eof_send(struct fx *f, int side)
{
	assert_int_equal(bufferevent_flush(far_bev(f, side), EV_WRITE, BEV_FINISHED), 0);
}

static size_t
outlen(struct bufferevent *bev)
{
	return evbuffer_get_length(bufferevent_get_output(bev));
}

/* ------------------------------------------------------------------ */
/* data                                                                 */

static void
test_client_to_backend(void **state)
{
	struct fx *f = *state;

	assert_int_equal(bufferevent_write(f->cli, "hello", 5), 0);
	pump(f);
	assert_int_equal(evbuffer_get_length(f->got[1]), 5);
	assert_memory_equal(evbuffer_pullup(f->got[1], -1), "hello", 5);
	assert_int_equal(evbuffer_get_length(f->got[0]), 0);
	assert_int_equal(f->r.bytes[0], 5);
	assert_int_equal(f->r.bytes[1], 0);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->n_shut[0] + f->n_shut[1], 0);
}

static void
test_backend_to_client(void **state)
{
	struct fx *f = *state;

	assert_int_equal(bufferevent_write(f->be, "HTTP/1.1 200 OK\r\n", 17), 0);
	pump(f);
	assert_int_equal(evbuffer_get_length(f->got[0]), 17);
	assert_memory_equal(evbuffer_pullup(f->got[0], -1), "HTTP/1.1 200 OK\r\n", 17);
	assert_int_equal(evbuffer_get_length(f->got[1]), 0);
	assert_int_equal(f->r.bytes[1], 17);
	assert_int_equal(f->r.bytes[0], 0);
	assert_int_equal(f->n_done, 0);
}

static void
test_several_writes_in_order(void **state)
{
	struct fx *f = *state;

	for (size_t off = 0; off < 1000; off += 100) {
		send_pattern(f, 0, 1, off, 100);
		if (off % 300 == 0)
			pump(f);
	}
	pump(f);
	check_pattern(f, 1, 1, 1000);
	assert_int_equal(f->r.bytes[0], 1000);
}

static void
test_both_directions_bulk(void **state)
{
	struct fx *f = *state;
	const size_t total = 1024 * 1024, step = 4096;

	for (size_t off = 0; off < total; off += step) {
		send_pattern(f, 0, 7, off, step);
		send_pattern(f, 1, 8, off, step);
		pump(f);
	}
	pump(f);
	check_pattern(f, 1, 7, total);
	check_pattern(f, 0, 8, total);
	assert_int_equal(f->r.bytes[0], total);
	assert_int_equal(f->r.bytes[1], total);
	assert_int_equal(f->n_done, 0);
	assert_false(f->r.s[0].paused);
	assert_false(f->r.s[1].paused);
}

static void
test_big_single_write(void **state)
{
	struct fx *f = *state;
	const size_t total = 3 * RELAY_BOUND + 123;

	send_pattern(f, 1, 9, 0, total);
	pump(f);
	check_pattern(f, 0, 9, total);
	assert_int_equal(f->r.bytes[1], total);
}

static void
test_input_present_at_start_moved_at_once(void **state)
{
	struct fx *f = *state;

	/* bytes that arrived with the handshake, already in the inputs (a
	 * pair's input is frozen to outsiders, so let the far ends send them
	 * while nobody listens) */
	bufferevent_enable(f->rc, EV_READ);
	bufferevent_enable(f->rb, EV_READ);
	assert_int_equal(bufferevent_write(f->cli, "early client", 12), 0);
	assert_int_equal(bufferevent_write(f->be, "early backend", 13), 0);
	pump(f);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->rc)), 12);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->rb)), 13);
	relay_start(&f->r, f->rc, f->rb, &ops, f);
	/* moved by relay_start itself, before any loop iteration */
	assert_int_equal(f->r.bytes[0], 12);
	assert_int_equal(f->r.bytes[1], 13);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->rc)), 0);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->rb)), 0);
	pump(f);
	assert_int_equal(evbuffer_get_length(f->got[1]), 12);
	assert_memory_equal(evbuffer_pullup(f->got[1], -1), "early client", 12);
	assert_int_equal(evbuffer_get_length(f->got[0]), 13);
	assert_memory_equal(evbuffer_pullup(f->got[0], -1), "early backend", 13);
}

static void
test_start_enables_reading(void **state)
{
	struct fx *f = *state;

	/* written before the relay started: waits in the far end (rc is not
	 * reading yet), then flows once relay_start enables reading */
	send_pattern(f, 0, 3, 0, 5000);
	pump(f);
	assert_int_equal(outlen(f->cli), 5000);
	relay_start(&f->r, f->rc, f->rb, &ops, f);
	pump(f);
	check_pattern(f, 1, 3, 5000);
	assert_true(bufferevent_get_enabled(f->rc) & EV_READ);
	assert_true(bufferevent_get_enabled(f->rb) & EV_READ);
}

static void
test_last_activity_set(void **state)
{
	struct fx *f = *state;

	assert_true(f->r.last_activity.tv_sec > 0);
	f->r.last_activity.tv_sec = 0;
	f->r.last_activity.tv_usec = 0;
	assert_int_equal(bufferevent_write(f->cli, "x", 1), 0);
	pump(f);
	assert_true(f->r.last_activity.tv_sec > 0);
}

static void
test_stop_detaches(void **state)
{
	struct fx *f = *state;
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;

	relay_stop(&f->r);
	bufferevent_getcb(f->rc, &rcb, &wcb, &ecb, NULL);
	assert_null(rcb);
	assert_null(wcb);
	assert_null(ecb);
	assert_int_equal(bufferevent_write(f->cli, "late", 4), 0);
	far_eof_send(f, 0);
	pump(f);
	assert_int_equal(evbuffer_get_length(f->got[1]), 0);
	assert_int_equal(f->r.bytes[0], 0);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->n_shut[1], 0);
}

/* ------------------------------------------------------------------ */
/* backpressure                                                         */

/* The far end of `side` does not read; the far end of the other side writes
 * `chunks` chunks. Returns the largest output the relay let pile up. */
static size_t
fill_until_stuck(struct fx *f, int side, unsigned seed, int chunks)
{
	size_t most = 0;

	bufferevent_disable(far_bev(f, side), EV_READ);
	for (int i = 0; i < chunks; i++) {
		send_pattern(f, 1 - side, seed, (size_t)i * CHUNK, CHUNK);
		pump(f);
		if (outlen(relay_bev(f, side)) > most)
			most = outlen(relay_bev(f, side));
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
	/* the relay held at most about RELAY_BOUND plus one read */
	assert_in_range(most, RELAY_BOUND, RELAY_BOUND + CHUNK);
	assert_in_range(f->r.bytes[0], RELAY_BOUND, RELAY_BOUND + CHUNK);
	assert_true(f->r.s[0].paused);
	assert_false(bufferevent_get_enabled(f->rc) & EV_READ);
	/* the rest waits at the client */
	assert_int_equal(outlen(f->cli) + f->r.bytes[0], total);
	assert_int_equal(evbuffer_get_length(f->got[1]), 0);

	/* the backend reads again: everything arrives, in order */
	bufferevent_enable(f->be, EV_READ);
	pump(f);
	check_pattern(f, 1, 11, total);
	assert_int_equal(f->r.bytes[0], total);
	assert_false(f->r.s[0].paused);
	assert_true(bufferevent_get_enabled(f->rc) & EV_READ);
	assert_int_equal(outlen(f->cli), 0);
}

static void
test_backpressure_slow_client(void **state)
{
	struct fx *f = *state;
	const int chunks = 40;
	const size_t total = (size_t)chunks * CHUNK;
	size_t most;

	most = fill_until_stuck(f, 0, 12, chunks);
	assert_in_range(most, RELAY_BOUND, RELAY_BOUND + CHUNK);
	assert_true(f->r.s[1].paused);
	assert_false(f->r.s[0].paused);
	assert_int_equal(outlen(f->be) + f->r.bytes[1], total);

	/* the other direction is not held up meanwhile */
	send_pattern(f, 0, 13, 0, 3 * CHUNK);
	pump(f);
	check_pattern(f, 1, 13, 3 * CHUNK);

	bufferevent_enable(f->cli, EV_READ);
	pump(f);
	check_pattern(f, 0, 12, total);
	assert_false(f->r.s[1].paused);
}

static void
test_backpressure_resumes_at_half(void **state)
{
	struct fx *f = *state;
	size_t before = 0, after = 0;
	int resumed = 0;

	/* exactly RELAY_BOUND reaches rb's output; one more chunk waits */
	(void)fill_until_stuck(f, 1, 14, RELAY_BOUND / CHUNK + 1);
	assert_int_equal(outlen(f->rb), RELAY_BOUND);
	assert_int_equal(outlen(f->cli), CHUNK);
	assert_true(f->r.s[0].paused);

	/* the backend now takes 1 KiB at a time */
	bufferevent_setcb(f->be, NULL, NULL, far_event, f);
	bufferevent_setwatermark(f->be, EV_READ, 0, 1024);
	bufferevent_enable(f->be, EV_READ);
	pump(f);
	for (int step = 0; step < 200 && !resumed; step++) {
		before = outlen(f->rb);
		evbuffer_remove_buffer(bufferevent_get_input(f->be), f->got[1], 1024);
		pump(f);
		if (outlen(f->cli) == 0) {
			resumed = 1;
			after = outlen(f->rb);
		} else {
			assert_true(f->r.s[0].paused);
		}
	}
	assert_true(resumed);
	/* not while more than half was still queued ... */
	assert_true(before > RELAY_BOUND / 2);
	/* ... and as soon as it was down to half */
	assert_true(after - CHUNK <= RELAY_BOUND / 2);
	assert_false(f->r.s[0].paused);

	/* drain the rest */
	bufferevent_setwatermark(f->be, EV_READ, 0, 0);
	bufferevent_setcb(f->be, far_read, NULL, far_event, f);
	evbuffer_add_buffer(f->got[1], bufferevent_get_input(f->be));
	pump(f);
	check_pattern(f, 1, 14, RELAY_BOUND + CHUNK);
}

/* ------------------------------------------------------------------ */
/* EOF and half-close                                                   */

static void
test_eof_shutdown_after_flush(void **state)
{
	struct fx *f = *state;

	bufferevent_disable(f->be, EV_READ);	/* the backend is slow */
	send_pattern(f, 0, 21, 0, 10000);
	pump(f);
	far_eof_send(f, 0);
	pump(f);
	assert_true(f->r.s[0].eof);
	/* 10000 bytes still queued for the backend: no half-close yet */
	assert_int_equal(outlen(f->rb), 10000);
	assert_int_equal(f->n_shut[1], 0);
	assert_int_equal(f->far_eof[1], 0);

	bufferevent_enable(f->be, EV_READ);
	pump(f);
	assert_int_equal(f->n_shut[1], 1);
	assert_int_equal(f->out_at_shut[1], 0);
	check_pattern(f, 1, 21, 10000);
	assert_int_equal(f->far_eof[1], 1);
	assert_int_equal(f->got_at_eof[1], 10000);	/* EOF after all the data */
	/* the other direction is still open */
	assert_int_equal(f->n_shut[0], 0);
	assert_int_equal(f->n_done, 0);
}

static void
test_eof_with_nothing_queued(void **state)
{
	struct fx *f = *state;

	far_eof_send(f, 0);
	pump(f);
	assert_int_equal(f->n_shut[1], 1);
	assert_int_equal(f->out_at_shut[1], 0);
	assert_int_equal(f->far_eof[1], 1);
	assert_int_equal(f->n_shut[0], 0);
	assert_int_equal(f->n_done, 0);
}

static void
test_eof_right_after_data(void **state)
{
	struct fx *f = *state;

	/* data and EOF in the same loop iteration */
	send_pattern(f, 1, 22, 0, 777);
	far_eof_send(f, 1);
	pump(f);
	check_pattern(f, 0, 22, 777);
	assert_int_equal(f->r.bytes[1], 777);
	assert_int_equal(f->n_shut[0], 1);
	assert_int_equal(f->far_eof[0], 1);
	assert_int_equal(f->got_at_eof[0], 777);
}

static void
test_eof_with_input_unread(void **state)
{
	struct fx *f = *state;

	/* a read low watermark keeps the read callback from running, so the
	 * EOF event comes with the bytes still in the input (as 2.1 can do) */
	bufferevent_setwatermark(f->rc, EV_READ, 100, 0);
	send_pattern(f, 0, 28, 0, 10);
	pump(f);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->rc)), 10);
	assert_int_equal(f->r.bytes[0], 0);
	far_eof_send(f, 0);
	pump(f);
	check_pattern(f, 1, 28, 10);
	assert_int_equal(f->r.bytes[0], 10);
	assert_int_equal(f->n_shut[1], 1);
	assert_int_equal(f->got_at_eof[1], 10);
}

static void
test_eof_while_paused(void **state)
{
	struct fx *f = *state;
	const size_t total = 10 * CHUNK;

	(void)fill_until_stuck(f, 1, 23, 10);
	assert_true(f->r.s[0].paused);
	far_eof_send(f, 0);
	pump(f);
	assert_int_equal(f->n_shut[1], 0);
	bufferevent_enable(f->be, EV_READ);
	pump(f);
	check_pattern(f, 1, 23, total);
	assert_int_equal(f->n_shut[1], 1);
	assert_int_equal(f->out_at_shut[1], 0);
	assert_int_equal(f->got_at_eof[1], total);
}

static void
test_half_close_other_direction_flows(void **state)
{
	struct fx *f = *state;

	far_eof_send(f, 0);		/* the client is done sending */
	pump(f);
	assert_int_equal(f->n_shut[1], 1);
	send_pattern(f, 1, 24, 0, 200000);	/* the backend answers at length */
	pump(f);
	check_pattern(f, 0, 24, 200000);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->n_shut[0], 0);

	far_eof_send(f, 1);
	pump(f);
	assert_int_equal(f->n_shut[0], 1);
	assert_int_equal(f->far_eof[0], 1);
	assert_int_equal(f->got_at_eof[0], 200000);
	assert_int_equal(f->n_done, 1);
	assert_string_equal(f->done_reason, "closed");
	assert_int_equal(f->done_side, -1);
	assert_int_equal(f->done_what, 0);
}

static void
test_both_eof_done_once(void **state)
{
	struct fx *f = *state;

	far_eof_send(f, 0);
	far_eof_send(f, 1);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_string_equal(f->done_reason, "closed");
	assert_int_equal(f->done_side, -1);
	assert_int_equal(f->done_what, 0);
	assert_int_equal(f->n_shut[0], 1);
	assert_int_equal(f->n_shut[1], 1);
	assert_int_equal(f->far_eof[0], 1);
	assert_int_equal(f->far_eof[1], 1);
	assert_int_equal(f->r.finished, 1);

	/* nothing more after done */
	far_eof_send(f, 0);
	bufferevent_trigger_event(f->rb, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->calls_after_done, 0);
}

static void
test_both_eof_backend_first(void **state)
{
	struct fx *f = *state;

	send_pattern(f, 0, 25, 0, 3000);
	send_pattern(f, 1, 26, 0, 4000);
	far_eof_send(f, 1);
	pump(f);
	assert_int_equal(f->n_shut[0], 1);
	assert_int_equal(f->n_done, 0);
	far_eof_send(f, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, -1);
	check_pattern(f, 1, 25, 3000);
	check_pattern(f, 0, 26, 4000);
	assert_int_equal(f->got_at_eof[1], 3000);
	assert_int_equal(f->got_at_eof[0], 4000);
}

static void
test_both_eof_waits_for_slow_reader(void **state)
{
	struct fx *f = *state;

	bufferevent_disable(f->cli, EV_READ);
	send_pattern(f, 1, 27, 0, 5000);
	pump(f);
	far_eof_send(f, 1);
	far_eof_send(f, 0);
	pump(f);
	/* the client has not taken its 5000 bytes: not over yet */
	assert_int_equal(f->n_done, 0);
	assert_int_equal(f->n_shut[0], 0);
	assert_int_equal(f->n_shut[1], 1);
	bufferevent_enable(f->cli, EV_READ);
	pump(f);
	check_pattern(f, 0, 27, 5000);
	assert_int_equal(f->n_shut[0], 1);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, -1);
}

/* ------------------------------------------------------------------ */
/* failures                                                             */

static void
test_error_side0(void **state)
{
	struct fx *f = *state;
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;

	bufferevent_trigger_event(f->rc, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_string_equal(f->done_reason, "side 0 failed");
	assert_int_equal(f->done_side, 0);
	assert_true(f->done_what & BEV_EVENT_ERROR);
	assert_int_equal(f->n_shut[0] + f->n_shut[1], 0);

	/* the relay has let go of both bufferevents */
	bufferevent_getcb(f->rc, &rcb, &wcb, &ecb, NULL);
	assert_null(rcb);
	assert_null(ecb);
	bufferevent_getcb(f->rb, &rcb, &wcb, &ecb, NULL);
	assert_null(rcb);
	assert_null(ecb);

	/* and calls nothing any more */
	bufferevent_trigger_event(f->rb, BEV_EVENT_ERROR | BEV_EVENT_WRITING, 0);
	assert_int_equal(bufferevent_write(f->cli, "x", 1), 0);
	far_eof_send(f, 0);
	far_eof_send(f, 1);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->calls_after_done, 0);
	assert_int_equal(f->n_shut[0] + f->n_shut[1], 0);
	assert_int_equal(evbuffer_get_length(f->got[1]), 0);
}

static void
test_error_side1(void **state)
{
	struct fx *f = *state;

	assert_int_equal(bufferevent_write(f->cli, "abc", 3), 0);
	pump(f);
	bufferevent_trigger_event(f->rb, BEV_EVENT_ERROR | BEV_EVENT_WRITING, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_string_equal(f->done_reason, "side 1 failed");
	assert_int_equal(f->done_side, 1);
	assert_true(f->done_what & BEV_EVENT_ERROR);
	assert_true(f->done_what & BEV_EVENT_WRITING);
}

/*
 * libevent's OpenSSL bufferevent reports a write to a client that has closed
 * (after its close_notify or FIN) as WRITING|EOF. It is a failure of side 0,
 * not a read EOF: the relay must end, not re-arm writing (issue #13: the
 * write failed again on every loop turn).
 */
static void
test_write_eof_is_a_failure(void **state)
{
	struct fx *f = *state;

	assert_int_equal(bufferevent_write(f->be, "greeting", 8), 0);
	pump(f);
	bufferevent_trigger_event(f->rc, BEV_EVENT_EOF | BEV_EVENT_WRITING, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 0);
	assert_string_equal(f->done_reason, "side 0 failed");
	assert_true(f->done_what & BEV_EVENT_WRITING);
	assert_int_equal(f->n_shut[0] + f->n_shut[1], 0);
	assert_int_equal(f->calls_after_done, 0);
}

/* Deferred callbacks fold a read EOF and a write failure into one call. */
static void
test_read_eof_with_write_error(void **state)
{
	struct fx *f = *state;

	bufferevent_trigger_event(f->rc,
	    BEV_EVENT_EOF | BEV_EVENT_READING | BEV_EVENT_ERROR | BEV_EVENT_WRITING, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 0);
	assert_int_equal(f->n_shut[1], 0);	/* not taken for a half-close */
}

static void
test_error_after_half_close(void **state)
{
	struct fx *f = *state;

	far_eof_send(f, 0);
	pump(f);
	assert_int_equal(f->n_shut[1], 1);
	bufferevent_trigger_event(f->rb, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
	bufferevent_trigger_event(f->rc, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 1);
	assert_string_equal(f->done_reason, "side 1 failed");
	assert_int_equal(f->calls_after_done, 0);
}

static void
test_timeout_is_a_failure(void **state)
{
	struct fx *f = *state;
	struct timeval tv = { 0, 20 * 1000 };

	bufferevent_set_timeouts(f->rb, &tv, NULL);
	for (int i = 0; i < 400 && f->n_done == 0; i++) {
		usleep(5000);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 1);
	assert_string_equal(f->done_reason, "side 1 failed");
	assert_true(f->done_what & BEV_EVENT_TIMEOUT);
}

static void
test_done_may_free_everything(void **state)
{
	struct fx *f = *state;

	f->free_in_done = 1;
	send_pattern(f, 0, 31, 0, 1000);
	far_eof_send(f, 0);
	far_eof_send(f, 1);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_null(f->rc);
	assert_null(f->rb);
	check_pattern(f, 1, 31, 1000);
	/* the far ends keep going; nothing reaches the freed relay */
	assert_int_equal(bufferevent_write(f->cli, "x", 1), 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->calls_after_done, 0);
}

static void
test_done_may_free_on_error(void **state)
{
	struct fx *f = *state;

	f->free_in_done = 1;
	bufferevent_trigger_event(f->rc, BEV_EVENT_ERROR, 0);
	pump(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_side, 0);
	assert_null(f->rc);
	pump(f);
	assert_int_equal(f->calls_after_done, 0);
}

/* ------------------------------------------------------------------ */
/* side 1 on a real socket: the relay reads it itself (direct_read_cb)  */
/*                                                                      */
/*   cli <-pair-> rc  ==relay==  rb(socket bev) <-socketpair-> raw fd   */

struct sfx {
	struct fx f;
	int raw;	/* the far backend end: a plain non-blocking socket */
};

static int
setup_sock(void **state)
{
	struct sfx *s = calloc(1, sizeof(*s));
	struct bufferevent *p[2];
	int sv[2];

	if (s == NULL || (s->f.base = event_base_new()) == NULL)
		return -1;
	if (bufferevent_pair_new(s->f.base, BEV_OPT_DEFER_CALLBACKS, p) != 0)
		return -1;
	s->f.cli = p[0];
	s->f.rc = p[1];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	s->f.rb = bufferevent_socket_new(s->f.base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->f.rb == NULL)
		return -1;
	s->raw = sv[1];
	s->f.got[0] = evbuffer_new();
	s->f.got[1] = evbuffer_new();
	s->f.done_side = -2;
	bufferevent_setcb(s->f.cli, far_read, NULL, far_event, &s->f);
	bufferevent_enable(s->f.cli, EV_READ | EV_WRITE);
	relay_start(&s->f.r, s->f.rc, s->f.rb, &ops, &s->f);
	*state = s;
	return 0;
}

static int
teardown_sock(void **state)
{
	struct sfx *s = *state;

	relay_stop(&s->f.r);
	bufferevent_free(s->f.rc);
	bufferevent_free(s->f.rb);
	bufferevent_free(s->f.cli);
	if (s->raw >= 0)
		close(s->raw);
	evbuffer_free(s->f.got[0]);
	evbuffer_free(s->f.got[1]);
	event_base_free(s->f.base);
	free(s);
	return 0;
}

/* Write bytes [off, off+n) of stream seed on the raw socket, pumping the
 * loop while the socket is full. Returns how many were written; stops early
 * (and returns less) after `stall` rounds without progress. */
static size_t
raw_send(struct sfx *s, unsigned seed, size_t off, size_t n, int stall)
{
	unsigned char buf[8192];
	size_t done = 0;
	int idle = 0;

	while (done < n && idle < stall) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		for (size_t j = 0; j < k; j++)
			buf[j] = pattern(seed, off + done + j);
		ssize_t w = write(s->raw, buf, k);
		if (w > 0) {
			done += (size_t)w;
			idle = 0;
		} else {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			pump(&s->f);
			idle++;
		}
	}
	return done;
}

static void
test_sock_bulk_to_client(void **state)
{
	struct sfx *s = *state;
	const size_t n = 3 * 1024 * 1024 + 17;

	assert_int_equal(raw_send(s, 7, 0, n, 1000), n);
	pump(&s->f);
	check_pattern(&s->f, 0, 7, n);
	assert_int_equal(s->f.r.bytes[1], n);
	assert_int_equal(s->f.n_done, 0);
}

static void
test_sock_client_to_backend(void **state)
{
	struct sfx *s = *state;
	char buf[16];

	assert_int_equal(bufferevent_write(s->f.cli, "hello", 5), 0);
	pump(&s->f);
	assert_int_equal(read(s->raw, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
}

/* More than the socket takes at once: the relay writes what it can straight
 * to the socket, queues the rest in the bufferevent, and the backend gets
 * every byte, in order, as it reads. */
static void
test_sock_client_to_backend_bulk(void **state)
{
	struct sfx *s = *state;
	const size_t n = 4 * 1024 * 1024 + 3;
	unsigned char *data = malloc(n), buf[65536];
	size_t got = 0;
	int idle = 0;

	assert_non_null(data);
	for (size_t j = 0; j < n; j++)
		data[j] = pattern(5, j);
	assert_int_equal(bufferevent_write(s->f.cli, data, n), 0);
	free(data);
	pump(&s->f);
	assert_true(outlen(s->f.rb) > 0);	/* the socket did not take it all */
	while (got < n && idle < 1000) {
		ssize_t r = read(s->raw, buf, sizeof(buf));
		if (r > 0) {
			for (ssize_t j = 0; j < r; j++)
				assert_int_equal(buf[j], pattern(5, got + (size_t)j));
			got += (size_t)r;
			idle = 0;
		} else {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			pump(&s->f);
			idle++;
		}
	}
	assert_int_equal(got, n);
	assert_int_equal(s->f.r.bytes[0], n);
	assert_int_equal(outlen(s->f.rb), 0);
}

static void
test_sock_eof_after_data(void **state)
{
	struct sfx *s = *state;

	assert_int_equal(raw_send(s, 9, 0, 100000, 1000), 100000);
	assert_int_equal(shutdown(s->raw, SHUT_WR), 0);
	pump(&s->f);
	assert_int_equal(s->f.far_eof[0], 1);
	assert_int_equal(s->f.got_at_eof[0], 100000);
	check_pattern(&s->f, 0, 9, 100000);
	assert_int_equal(s->f.n_shut[0], 1);
	assert_int_equal(s->f.n_done, 0);	/* the client has not finished */
}

/* A client that does not read: the relay stops reading the socket once
 * RELAY_BOUND is queued for the client, and the backend's writes block. */
static void
test_sock_backpressure(void **state)
{
	struct sfx *s = *state;
	const size_t n = 8 * 1024 * 1024;
	size_t sent;

	bufferevent_disable(s->f.cli, EV_READ);
	sent = raw_send(s, 3, 0, n, 50);
	assert_true(sent < n);
	assert_true(s->f.r.s[1].paused);
	assert_true(outlen(s->f.rc) >= RELAY_BOUND);
	assert_true(outlen(s->f.rc) < RELAY_BOUND + RELAY_READ + CHUNK);
	/* the client reads again: everything arrives, in order */
	bufferevent_enable(s->f.cli, EV_READ);
	assert_int_equal(raw_send(s, 3, sent, n - sent, 1000), n - sent);
	pump(&s->f);
	check_pattern(&s->f, 0, 3, n);
}

/* The backend resets: a read error on side 1, reported once. */
static void
test_sock_read_error(void **state)
{
	struct sfx *s = *state;

	/* bytes for the backend that it never reads: closing then resets */
	assert_int_equal(bufferevent_write(s->f.cli, "unread", 6), 0);
	pump(&s->f);
	close(s->raw);
	s->raw = -1;
	pump(&s->f);
	assert_int_equal(s->f.n_done, 1);
	assert_int_equal(s->f.done_side, 1);
	assert_true(s->f.done_what & BEV_EVENT_ERROR);
	assert_true(s->f.done_what & BEV_EVENT_READING);
	assert_int_equal(s->f.calls_after_done, 0);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_client_to_backend),
		T(test_backend_to_client),
		T(test_several_writes_in_order),
		T(test_both_directions_bulk),
		T(test_big_single_write),
		cmocka_unit_test_setup_teardown(test_input_present_at_start_moved_at_once, setup_nostart,
		    teardown),
		cmocka_unit_test_setup_teardown(test_start_enables_reading, setup_nostart,
		    teardown),
		T(test_last_activity_set),
		T(test_stop_detaches),
		T(test_backpressure_slow_backend),
		T(test_backpressure_slow_client),
		T(test_backpressure_resumes_at_half),
		T(test_eof_shutdown_after_flush),
		T(test_eof_with_nothing_queued),
		T(test_eof_right_after_data),
		T(test_eof_with_input_unread),
		T(test_eof_while_paused),
		T(test_half_close_other_direction_flows),
		T(test_both_eof_done_once),
		T(test_both_eof_backend_first),
		T(test_both_eof_waits_for_slow_reader),
		T(test_error_side0),
		T(test_error_side1),
		T(test_error_after_half_close),
		T(test_write_eof_is_a_failure),
		T(test_read_eof_with_write_error),
		T(test_timeout_is_a_failure),
#define TS(f) cmocka_unit_test_setup_teardown(f, setup_sock, teardown_sock)
		TS(test_sock_bulk_to_client),
		TS(test_sock_client_to_backend),
		TS(test_sock_client_to_backend_bulk),
		TS(test_sock_eof_after_data),
		TS(test_sock_backpressure),
		TS(test_sock_read_error),
		T(test_done_may_free_everything),
		T(test_done_may_free_on_error),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
