/*
 * supervisor.h: the main process.
 *
 * It owns the listening sockets (one SO_REUSEPORT socket per listener per
 * worker slot) for as long as it serves, forks one worker per slot, replaces
 * workers that die, and:
 *   SIGHUP   builds the new configuration beside the running one. If that
 *            fails, every error is logged and the running workers go on.
 *            If it works, a new generation of workers is forked on the same
 *            sockets (new listeners opened, removed ones closed) and the old
 *            workers are told to drain; they finish their connections within
 *            shutdown_timeout or are killed. A queued connection is never
 *            lost: the old and new workers share the sockets.
 *   SIGTERM  (and SIGINT) closes its copies of the sockets (new connections
 *            are then refused, not queued), tells every worker to drain and
 *            waits for them.
 *   SIGCHLD  reaps; a worker of the generation in use that died is restarted
 *            (after 1 s if it lived less than 1 s).
 */
#ifndef TLSFRONT_SUPERVISOR_H
#define TLSFRONT_SUPERVISOR_H

#include "gen.h"

/*
 * Serve generation g, loaded from config file path (kept for reloads),
 * until told to stop. Takes ownership of g; path must outlive the call.
 * Returns the process exit code.
 *
 * The caller must have blocked SIGTERM, SIGINT, SIGHUP and SIGCHLD (before
 * anything could fork): the main process takes them as libevent signal
 * events of its one event loop, which also runs the respawn and kill
 * timers and the metrics endpoint (metrics_http.h), and unblocks them once
 * those events are in place. Workers are forked with them blocked.
 */
int supervisor_run(struct generation *g, const char *path);

#endif
