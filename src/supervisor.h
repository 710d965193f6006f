/*
 * supervisor.h: the main process. Opens the listening sockets (one
 * SO_REUSEPORT socket per listener per worker slot) and keeps them until it is
 * told to stop, so a worker that dies and is replaced loses no queued
 * connection; forks one worker per slot, replaces workers that die, and on
 * SIGTERM/SIGINT closes its copies of the sockets (new connections are then
 * refused, not queued), tells the workers to drain and waits for them.
 */
#ifndef TLSFRONT_SUPERVISOR_H
#define TLSFRONT_SUPERVISOR_H

#include "gen.h"

/* Serve generation g until told to stop. The caller must have blocked
 * SIGTERM, SIGINT, SIGHUP and SIGCHLD. Takes ownership of g. Returns the
 * process exit code. */
int supervisor_run(struct generation *g);

#endif
