/*
 * backend.h: the backend's end of a connection: a non-blocking connect to
 * a TCP or UNIX-socket address, and the plain socket as the relay reads and
 * writes it (relay.h).
 */
#ifndef TLSFRONT_BACKEND_H
#define TLSFRONT_BACKEND_H

#include "addr.h"
#include "relay.h"

struct backend_end {
	int fd;			/* owned by the connection, which closes it */
	int sys_errno;		/* errno when a read or write failed */
	int eof_pending;	/* the peer's FIN has arrived (EPOLLRDHUP) */
	int at_eof;		/* a short read after that: all is read, the
				 * next read is the EOF (no system call) */
};

/* The relay's view of a struct backend_end: readv, writev, shutdown(SHUT_WR).
 * Closing the socket sends the FIN a shutdown would. */
extern const struct relay_io backend_io;

/*
 * Start a non-blocking connect to a. Returns the socket (close-on-exec,
 * TCP_NODELAY for TCP), whose writability says the connect finished, or
 * -1 with errno set when it failed at once (nothing is left open then).
 */
int backend_dial(const struct addr *a);

/* The outcome of the connect on fd once it is writable: 0, or its errno. */
int backend_connect_error(int fd);

#endif
