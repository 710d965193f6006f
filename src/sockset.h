/*
 * sockset.h: the listening sockets of a generation, one per worker slot and
 * listening address (SO_REUSEPORT: the kernel spreads new connections over
 * the slots). The main process owns them; each worker accepts on its own
 * slot's. A reload takes over the sockets of the addresses that stay, so no
 * queued connection is lost.
 */
#ifndef TLSFRONT_SOCKSET_H
#define TLSFRONT_SOCKSET_H

#include <stddef.h>

#include "addr.h"
#include "gen.h"

/* The sockets of one listening address: one per worker slot. */
struct lsock {
	struct addr addr;
	int *fds;
	int n;
};

/* The sockets of a generation, in the order of its listeners. */
struct sockset {
	struct lsock *v;
	size_t n;
};

/*
 * The sockets generation g needs with nslots workers, in the order of its
 * listeners: those of addresses old holds are dup()s of old's (old keeps
 * its own), the others are opened. Addresses old does not hold are probed
 * first (a bind without SO_REUSEPORT, which fails if anybody, another
 * tlsfront of the same user among them, already listens there), all of them
 * before any socket is opened, so that overlapping listeners (0.0.0.0:P and
 * 127.0.0.1:P) do not collide with each other. Returns 0, or -1 after
 * logging, with nothing left open in out.
 */
int sockset_build(struct sockset *out, struct sockset *old, const struct generation *g,
    int nslots);

/* Close every socket of ss and free it; ss is empty afterwards (and may be
 * closed again). */
void sockset_close(struct sockset *ss);

#endif
