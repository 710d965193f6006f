/*
 * worker.h: one worker process: an event loop accepting on its own
 * SO_REUSEPORT socket of every listener, and the connections it serves.
 */
#ifndef TLSFRONT_WORKER_H
#define TLSFRONT_WORKER_H

#include <stddef.h>
#include <time.h>

#include <event2/event.h>

#include "conn.h"
#include "gen.h"

struct worker_listener {
	struct worker *w;
	const struct listener *l;
	int fd;			/* this worker's listening socket (owned) */
	struct event *ev;	/* readable: one accept per wakeup */
};

struct worker {
	/* its event loop, its generation (read-only, shared with the other
	 * workers), its per-host TLS state (owned, tls.h: from start to exit)
	 * and its connections, which conn.c keeps */
	struct conn_set cs;
	int slot;
	struct worker_listener *lns;
	size_t n_lns;
	struct event *ev_term, *ev_int, *ev_drain, *ev_retry;
	size_t max_conns;		/* this worker's share of max_connections; 0: none */
	unsigned long long refused;	/* connections closed at once for max_connections */
	time_t refused_logged;		/* when we last said so (once a second at most) */
	unsigned long accept_pauses;	/* accept errors since we last logged one */
	time_t accept_err_logged;	/* when (once in 10 s at most: EMFILE repeats) */
	int draining;
};

/*
 * Run worker `slot` of generation g on the listening sockets fds[i] (one per
 * g->listeners[i], already bound, listening and non-blocking, as sockset.c
 * makes them: the accept loop takes connections until EAGAIN; the worker
 * closes its copies). SIGTERM, SIGINT, SIGHUP and SIGCHLD must be blocked on
 * entry. Returns the process exit code once drained after SIGTERM/SIGINT.
 */
int worker_run(const struct generation *g, int slot, const int *fds);

#endif
