/*
 * backend.h: dialing a backend (TCP or UNIX socket).
 */
#ifndef TLSFRONT_BACKEND_H
#define TLSFRONT_BACKEND_H

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"

/*
 * Start a non-blocking connect to a. Returns a socket bufferevent that owns
 * its fd (BEV_OPT_CLOSE_ON_FREE); its event callback, once set, receives
 * BEV_EVENT_CONNECTED or BEV_EVENT_ERROR (errno set). Returns NULL with errno
 * set when the connect failed at once; nothing is left open then.
 */
struct bufferevent *backend_dial(struct event_base *base, const struct addr *a);

#endif
