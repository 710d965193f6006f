/*
 * relay.h: the pump between two byte streams, with backpressure and
 * half-close.
 *
 * Knows nothing of TLS, sockets or the event loop. Each side is an end the
 * owner describes with a struct relay_io (read, write, half-close): the
 * client's TLS stream (tls.h tls_stream_io) and the backend's socket
 * (backend.h backend_io). The owner calls relay_pump(r, i) whenever the
 * event loop says side i's descriptor changed (readable or writable: the
 * owner's events are edge-triggered, registered once, and never switched
 * on and off, which is what keeps a connection at about one epoll_ctl per
 * descriptor). The relay then does everything that was waiting: reads
 * from the sides that are neither blocked nor paused, writes what is
 * queued, passes an EOF on, in the same loop turn.
 *
 * Bytes read from side i wait in direction i's buffer for side 1-i. When
 * that buffer holds RELAY_BOUND bytes or more, reading side i stops until
 * the buffer has drained to RELAY_BOUND / 2: a slow reader costs at most
 * about RELAY_BOUND plus one read per direction. Pausing and resuming is a
 * flag, not an event change.
 *
 * EOF on side i: what it sent is flushed to side 1-i, then side 1-i's
 * shutdown() half-closes it (TCP: shutdown(SHUT_WR); TLS: close_notify),
 * unless side 1-i is about to be closed anyway and closing says the same
 * (close_ends_writing: a TCP FIN). When both directions are over, or when
 * a side fails, done() is called exactly once; after it the relay calls
 * nothing and the owner may free everything (relay_free).
 */
#ifndef TLSFRONT_RELAY_H
#define TLSFRONT_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

#define RELAY_BOUND (64 * 1024)
#define RELAY_READ (64 * 1024)		/* most bytes one read() call takes */
#define RELAY_TURN (256 * 1024)		/* most bytes one pump reads before yielding */
#define RELAY_TURN_OPS 4		/* most data-less reads one pump makes */

/* What an end's read or write returns besides a byte count. */
enum relay_io_status {
	RELAY_IO_AGAIN = -1,		/* nothing now: wait for the next event */
	RELAY_IO_AGAIN_WRITE = -2,	/* blocked until the end is writable */
	RELAY_IO_MORE = -3,		/* progress without bytes (a TLS record
					 * that carried none): call again */
	RELAY_IO_FAIL = -4		/* the end failed; it keeps why */
};

/* One end of the relay, as its owner implements it. */
struct relay_io {
	/* Append up to max bytes read from the end to buf. Returns the count
	 * (> 0), 0 at EOF, or an enum relay_io_status. With a count, *more
	 * says whether the end may hold more right now (0: it is drained,
	 * wait for its next event; the events are edge-triggered, so a 1
	 * that should have been a 0 costs one read, the reverse a stall). */
	ssize_t (*read)(void *end, struct evbuffer *buf, size_t max, int *more);
	/* Write from the front of buf, removing what was written, until buf
	 * is empty or the end is full. Returns the count (> 0: bytes left in
	 * buf mean the end is full) or an enum relay_io_status
	 * (RELAY_IO_AGAIN: blocked until readable, as TLS may be). */
	ssize_t (*write)(void *end, struct evbuffer *buf);
	/* Half-close writing. Returns 0, RELAY_IO_AGAIN_WRITE or
	 * RELAY_IO_FAIL. */
	int (*shutdown)(void *end);
	/* Closing the end tells the peer what shutdown() would (a TCP FIN),
	 * so a last half-close right before the close can be skipped. */
	int close_ends_writing;
};

/* How the owner hears from the relay. */
struct relay_ops {
	/* Side i is blocked until writable: make sure its descriptor's
	 * writability is watched (owners that always watch it ignore this). */
	void (*want_write)(void *arg, int side);
	/* A pump used up its share (RELAY_TURN): call relay_pump(r, -1)
	 * again after the loop has served the others. */
	void (*again)(void *arg);
	/* The relay is over: side -1 after both directions ended cleanly,
	 * else side i failed (its end keeps why), while writing to it if
	 * writing is set. The owner may free r from here. */
	void (*done)(void *arg, int side, int writing);
};

enum relay_result { RELAY_RUNNING = 0, RELAY_OVER };

/* The bytes from side i to side 1-i. */
struct relay_dir {
	struct evbuffer *buf;
	unsigned eof : 1;		/* side i sent EOF: nothing more to read */
	unsigned shut : 1;		/* the EOF was passed on to side 1-i */
	unsigned paused : 1;		/* buf is full: side i is not read */
};

struct relay_end {
	const struct relay_io *io;
	void *ctx;
	unsigned open : 1;		/* may be read and written (relay_open) */
	unsigned rd_blocked : 1;	/* its last read found nothing: wait */
	unsigned wr_blocked : 1;	/* its last write was refused: wait */
};

struct relay {
	struct relay_end e[2];
	struct relay_dir d[2];
	const struct relay_ops *ops;
	void *arg;
	uint64_t bytes[2];		/* bytes read from side i */
	unsigned pumping : 1;		/* inside relay_pump (re-entry guard) */
	unsigned over : 1;		/* done() was called */
};

/*
 * Set r up between end 0 (io0, ctx0) and end 1: allocates the two buffers.
 * Side 0 is open at once; side 1 only after relay_open(r, 1) (a backend
 * still connecting): until then what side 0 sends is only queued. Returns
 * 0, or -1 when out of memory (r then holds nothing to free). The relay
 * keeps io, ctx, ops and arg, which the owner keeps alive until
 * relay_free.
 */
int relay_init(struct relay *r, const struct relay_io *io0, void *ctx0,
    const struct relay_io *io1, void *ctx1, const struct relay_ops *ops, void *arg);

/* Side i can now be read and written; pumps at once. */
enum relay_result relay_open(struct relay *r, int side);

/*
 * Side's descriptor changed (side -1: called back through ops->again):
 * do what can be done now. Returns RELAY_OVER once done() has been called
 * (r may be freed then: do not touch it), else RELAY_RUNNING.
 */
enum relay_result relay_pump(struct relay *r, int side);

/* Direction i's queue: the owner may put bytes in front of what side i
 * sent before side 1-i opens (a PROXY header), or write it itself. */
struct evbuffer *relay_queue(struct relay *r, int i);

/* Has either direction already passed its EOF on (a half-closed stream)? */
int relay_half_closed(const struct relay *r);

/* Free the buffers; the relay calls nothing after. relay_free on a zeroed
 * or freed relay is a no-op. */
void relay_free(struct relay *r);

#endif
