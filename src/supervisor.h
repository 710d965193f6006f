/*
 * supervisor.h: the main process. Opens the listening sockets (one
 * SO_REUSEPORT socket per listener per worker slot) and keeps them for its
 * whole life, forks one worker per slot, replaces workers that die, and on
 * SIGTERM/SIGINT tells them to drain and waits for them.
 */
#ifndef TLSFRONT_SUPERVISOR_H
#define TLSFRONT_SUPERVISOR_H

#include "gen.h"

/* Serve generation g until told to stop. The caller must have blocked
 * SIGTERM, SIGINT, SIGHUP and SIGCHLD. Takes ownership of g. Returns the
 * process exit code. */
int supervisor_run(struct generation *g);

#endif
