/*
 * conn.h: one client connection, from accept to the access-log line.
 *
 *   PROXY       from an accept_proxy source: reading its PROXY v1/v2 header
 *   HANDSHAKE   TLS handshake with the client (SNI picks the host)
 *   CONNECTING  handshake done; dialing a member of the backend pool the host
 *               (and ALPN) names; a member that fails to connect is replaced
 *               by the next the pool offers (pool.h), nothing written yet
 *   RELAYING    bytes move both ways (relay.c)
 *   DRAINING    one direction has ended and its end was passed on (a
 *               half-closed stream); the other still moves
 *   CLOSED      conn_close() ran: logged once, everything freed
 *
 * Each state moves only forward (conn_state_next), and any state may end in
 * CLOSED. One timer per connection carries the deadline of the current
 * state: handshake_timeout, connect_timeout, then idle_timeout.
 *
 * Each descriptor is registered with the event loop once, edge-triggered:
 * the client socket for reading at accept (for writing too only once a
 * write was refused), the backend socket for both when it is dialled. A
 * connection makes 2 epoll_ctl per descriptor in its life (add, delete);
 * each pool member that failed to connect adds its own two.
 */
#ifndef TLSFRONT_CONN_H
#define TLSFRONT_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "backend.h"
#include "relay.h"
#include "tls.h"

struct event_base;
struct tls_worker;

/*
 * The connections of one event loop (a worker's), and what they take from
 * it. The owner fills base, gen, tls, gone and arg before the first
 * conn_accept and keeps them until the last connection is gone; conn.c
 * keeps head and n. gone(arg) runs after a connection was freed, with n
 * already down: the owner may end its loop when n is 0.
 */
struct conn_set {
	struct event_base *base;
	const struct generation *gen;	/* read-only */
	struct tls_worker *tls;		/* the loop's per-host TLS state (tls.h) */
	void (*gone)(void *arg);
	void *arg;
	struct conn *head;		/* doubly linked: for drain and shutdown */
	size_t n;
};

enum conn_state {
	CONN_NEW = 0, CONN_PROXY, CONN_HANDSHAKE, CONN_CONNECTING, CONN_RELAYING,
	CONN_DRAINING, CONN_CLOSED
};

/* May a connection in state `from` move to `to`? */
int conn_state_next(enum conn_state from, enum conn_state to);

/*
 * Why a connection ended. Each has one row in conn.c's table: its text for
 * the access line (the man page lists them; some take a detail after ": "),
 * the handshake-failure category it counts as when the handshake had not
 * completed (enum stats_hs_reason, CONN_HS_HOST_REFUSED or CONN_HS_NONE), and whether
 * the client gets our close_notify first.
 */
enum conn_end {
	END_CLOSED,		/* both directions ended normally */
	END_PROXY_TIMEOUT,	/* the PROXY header did not arrive in time */
	END_PROXY_CLOSED,	/* the client closed before its PROXY header */
	END_PROXY_ERROR,	/* a socket error reading it (detail) */
	END_PROXY_INVALID,	/* not a PROXY header */
	END_PROXY_TOO_LONG,
	END_PROXY_READ,		/* could not consume the header it peeked */
	END_HS_TIMEOUT,
	END_HS_UNKNOWN_NAME,	/* the enum tls_fail reasons ... */
	END_HS_NO_NAME,
	END_HS_HOST_FULL,
	END_HS_HOST_CERT,
	END_HS_NO_ALPN,
	END_HS_CLIENT_CERT,	/* (detail: the verify error) */
	END_HS_NOT_ALLOWED,
	END_HS_PENDING,		/* an ACME host before its first certificate */
	END_HS_ACME_REFUSED,	/* acme-tls/1 for a name with no pending challenge */
	END_HS_ACME_CERT,	/* ... */
	END_HS_CLOSED,		/* the client closed during the handshake */
	END_HS_RESET,
	END_HS_TLS_ERROR,	/* OpenSSL refused (detail: its reason) */
	END_HS_NO_CLIENT_CERT,	/* client_verify = required, none sent */
	END_HS_ERROR,		/* another socket error (detail) */
	END_GONE,		/* closed right after the handshake: no dial */
	END_ACME_CHALLENGE,	/* an ACME validator's handshake: nothing follows */
	END_CONNECT_FAILED,	/* (detail: strerror) */
	END_CONNECT_TIMEOUT,
	END_PROXY_HEADER_BUILD,	/* cannot build the PROXY header we send */
	END_IDLE_TIMEOUT,
	END_CLIENT_CLOSED,	/* a write to a client that had closed (EPIPE) */
	END_CLIENT_RESET,
	END_CLIENT_TLS_ERROR,	/* (detail) */
	END_CLIENT_ERROR,	/* (detail, if any) */
	END_BACKEND_CLOSED,
	END_BACKEND_RESET,
	END_BACKEND_ERROR,	/* (detail, if any) */
	END_SHUTDOWN_TIMEOUT,
	END_WORKER_EXIT,
	END_NO_MEMORY,
	END_COUNT
};

#define CONN_HS_HOST_REFUSED (-1)	/* counted as the host's refusal instead */
#define CONN_HS_NONE (-2)		/* not a handshake failure at all */

struct conn_end_info {
	const char *text;
	int hs;			/* enum stats_hs_reason, or CONN_HS_HOST_REFUSED */
	int close_notify;	/* send ours before closing */
};

/* The row of why (why < END_COUNT). */
const struct conn_end_info *conn_end_info(enum conn_end why);

struct conn {
	struct conn_set *set;
	struct conn *prev, *next;
	enum conn_state state;
	int fd;				/* the client socket (owned) */
	struct event *ev;		/* its reading: EV_READ | EV_ET */
	struct event *ev_wr;		/* its writing, added once a write was refused */
	struct event *bev;		/* the backend socket: read, write, EV_CLOSED */
	struct event *timer;
	struct event *again;		/* "call me back next turn": made when needed */
	struct tls_stream ts;		/* the client's TLS, from HANDSHAKE on */
	struct backend_end be;		/* be.fd: the backend socket (owned), or -1 */
	struct tls_info tls;
	struct relay relay;		/* from the end of the handshake on */
	const struct pool *pool;	/* the host's (and ALPN's) backend pool */
	const struct addr *backend_addr;	/* the member dialled last */
	uint64_t tried;			/* bit i: member i of pool was dialled */
	int member;			/* its index in pool */
	int dial_err;			/* the last member's connect errno (0: timeout) */
	struct sockaddr_storage peer;	/* the client (from the PROXY header if any) */
	socklen_t peer_len;
	struct sockaddr_storage local;	/* where the client connected to: from the
					 * PROXY header, or getsockname when needed */
	socklen_t local_len;		/* 0: not known yet */
	unsigned char *proxy_buf;	/* CONN_PROXY: header bytes so far */
	size_t proxy_len;
	struct timeval start;
	struct timeval last_activity;
	uint64_t dial_us;		/* when the backend connect started (stats_clock_us) */
	unsigned stats_counted : 1;	/* handshake done: counted as a connection of its host */
	unsigned relay_ready : 1;	/* relay_init done */
	unsigned no_memory : 1;		/* an event could not be made inside a relay
					 * callback: close once the pump returns */
	unsigned trial : 1;		/* this dial is the down member's one trial */
	unsigned member_held : 1;	/* pool_acquire'd: pool_release at the end */
};

/*
 * Take over accepted socket fd from listener l: register it, start the
 * TLS handshake (or wait for a PROXY header). On any failure the fd is
 * closed and the reason logged; nothing is returned because the
 * connection owns itself from here on.
 */
void conn_accept(struct conn_set *s, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen);

/*
 * The only way a connection ends: sends our close_notify if why calls for
 * it, counts it, writes its access-log line (the reason's text, then ": "
 * and detail if detail is not NULL), frees both sides and, on the next
 * loop turn, the conn. Safe to call twice (the second call does nothing);
 * the conn must not be used after.
 */
void conn_close(struct conn *c, enum conn_end why, const char *detail);

#endif
