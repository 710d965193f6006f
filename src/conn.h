/*
 * conn.h: one client connection, from accept to the access-log line.
 *
 *   PROXY       from an accept_proxy source: reading its PROXY v1/v2 header
 *   HANDSHAKE   TLS handshake with the client (SNI picks the host)
 *   CONNECTING  handshake done; dialing the backend the host (and ALPN) names
 *   RELAYING    bytes move both ways (relay.c)
 *   CLOSED      conn_close() ran: logged once, everything freed
 *
 * One timer per connection carries the deadline of the current state:
 * handshake_timeout, connect_timeout, then idle_timeout.
 */
#ifndef TLSFRONT_CONN_H
#define TLSFRONT_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

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

enum conn_state { CONN_PROXY, CONN_HANDSHAKE, CONN_CONNECTING, CONN_RELAYING, CONN_CLOSED };

struct conn {
	struct conn_set *set;
	struct conn *prev, *next;
	enum conn_state state;
	struct bufferevent *client;	/* TLS; owns the SSL and the client fd */
	struct bufferevent *backend;	/* plaintext; owns the backend fd */
	struct event *timer;
	struct tls_info tls;
	struct relay relay;
	const struct addr *backend_addr;
	struct sockaddr_storage peer;	/* the client (from the PROXY header if any) */
	socklen_t peer_len;
	struct sockaddr_storage local;	/* where the client connected to */
	socklen_t local_len;
	int fd;				/* the client socket until c->client owns it */
	struct event *ev_proxy;		/* CONN_PROXY: waiting for header bytes */
	unsigned char *proxy_buf;	/* CONN_PROXY: header bytes so far */
	size_t proxy_len;
	struct timeval start;
	int close_notify_sent;
	int stats_counted;		/* handshake done: counted as a connection of its host */
	uint64_t dial_us;		/* when the backend connect started (stats_clock_us) */
};

/*
 * Take over accepted socket fd from listener l: start the TLS handshake. On
 * any failure the fd is closed and the reason logged; nothing is returned
 * because the connection owns itself from here on.
 */
void conn_accept(struct conn_set *s, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen);

/*
 * The only way a connection ends: writes its access-log line with reason (a
 * static or long-lived string), frees both sides and the conn. Safe to call
 * twice (the second call does nothing); the conn must not be used after.
 */
void conn_close(struct conn *c, const char *reason);

#endif
