/*
 * relay.h: the two-bufferevent pump, with backpressure and half-close.
 *
 * Knows nothing of TLS or of what the two sides are: the owner passes two
 * bufferevents (side 0 and side 1) and callbacks. Bytes read on one side are
 * moved (not copied) to the other side's output. When that output holds
 * RELAY_BOUND bytes or more, reading from the source stops until the output
 * has drained to RELAY_BOUND / 2: a slow reader costs at most about
 * RELAY_BOUND plus one read per direction.
 *
 * EOF on side i: what it sent is flushed to side 1-i, then the owner's
 * shutdown_write(1-i) half-closes it (TCP: shutdown(SHUT_WR); TLS:
 * close_notify). When both sides have sent EOF and both half-closes are done,
 * or when either side fails (an error, or a write it could not take), done()
 * is called exactly once. After done() the relay calls nothing and the owner
 * may free everything.
 */
#ifndef TLSFRONT_RELAY_H
#define TLSFRONT_RELAY_H

#include <stdint.h>
#include <sys/time.h>

#include <event2/bufferevent.h>

#define RELAY_BOUND (64 * 1024)
#define RELAY_READ (64 * 1024)	/* most bytes one read of side 1 takes */

struct relay_ops {
	/* Half-close the write direction of side i; its output is empty. */
	void (*shutdown_write)(void *arg, int side);
	/* The relay is over. reason is a static string; side is the side that
	 * failed (what has BEV_EVENT_ERROR or TIMEOUT, or BEV_EVENT_WRITING: a
	 * write that found the peer gone, reported as an EOF by libevent's
	 * OpenSSL bufferevent) or -1 after a clean finish. */
	void (*done)(void *arg, const char *reason, int side, short what);
};

struct relay_side {
	struct bufferevent *bev;
	unsigned eof : 1;	/* this side sent EOF: nothing more to read */
	unsigned shut : 1;	/* we half-closed our writing to this side */
	unsigned paused : 1;	/* reading stopped: the other side's output is full */
	struct event *rd;	/* our own read event (side 1 with a socket), or NULL */
};

struct relay {
	struct relay_side s[2];
	const struct relay_ops *ops;
	void *arg;
	uint64_t bytes[2];	/* bytes read from side i and queued to the other */
	struct timeval last_activity;
	int finished;
};

/* Start pumping between a (side 0) and b (side 1). The relay replaces both
 * bufferevents' callbacks and enables reading; bytes already in their input
 * buffers are moved at once. Ownership of a and b stays with the caller.
 * If b has a socket (bufferevent_getfd >= 0), it must be a plain socket
 * bufferevent: the relay reads that socket itself, up to RELAY_READ bytes
 * at a time (libevent 2.1 reads 4096), and b's own reading stays off.
 * r must be zeroed before the first relay_start. */
void relay_start(struct relay *r, struct bufferevent *a, struct bufferevent *b,
    const struct relay_ops *ops, void *arg);

/* Detach the callbacks (before the owner frees the bufferevents). */
void relay_stop(struct relay *r);

#endif
