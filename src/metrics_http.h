/*
 * metrics_http.h: `[global] stats_listen`: GET /metrics over plain HTTP, on
 * TCP or a unix: socket, served by libevent's evhttp in the main process's
 * event loop (supervisor.c), so that a scrape never holds up signals,
 * reloads or worker restarts, nor they a scrape.
 *
 *   GET or HEAD /metrics (a query string is ignored)   200, the text format
 *   another path                                       404
 *   another method                                     405, Allow: GET, HEAD
 *   METRICS_HTTP_MAX_ANSWERS answers already going out 503
 *   no whole request head                              400 (evhttp)
 *
 * One request per connection (every answer says Connection: close). A
 * client has METRICS_HTTP_READ_TIMEOUT_MS of silence to send its request
 * (evhttp's timeout, reset by every byte), and METRICS_HTTP_WRITE_TIMEOUT_MS
 * in all to take the answer, after which it is dropped.
 */
#ifndef TLSFRONT_METRICS_HTTP_H
#define TLSFRONT_METRICS_HTTP_H

#include <event2/event.h>

#include "addr.h"
#include "stats.h"

#define METRICS_HTTP_MAX_ANSWERS 16		/* the metrics text going out at once */
#define METRICS_HTTP_READ_TIMEOUT_MS 2000	/* without a byte of the request */
#define METRICS_HTTP_WRITE_TIMEOUT_MS 10000	/* for the whole answer */

struct metrics_http;

/*
 * A server of st's sums (st may be NULL: then it can listen nowhere) in
 * base, listening nowhere yet. Keeps both pointers, which must outlive it;
 * the caller owns the result (metrics_http_free). NULL after logging when
 * out of memory.
 */
struct metrics_http *metrics_http_new(struct event_base *base, const struct stats *st);

/*
 * Serve on a, or nowhere if a->len == 0. The same address as now: nothing
 * changes. Otherwise the new socket is opened first (a unix path that
 * nobody listens on is replaced), then the old one closed (a unix one
 * unlinked); clients being answered go on. Returns 0, or -1 after logging,
 * with the old socket kept. mh may be NULL (out of memory at start): then
 * only a->len == 0 succeeds.
 */
int metrics_http_listen(struct metrics_http *mh, const struct addr *a);

/*
 * The listening socket, -1 for none. For a child just forked, which must
 * close its copy without going through libevent (the objects are the main
 * process's, and metrics_http_free would unlink the main process's socket).
 */
int metrics_http_fd(const struct metrics_http *mh);

/* Close the listening socket (a unix one is unlinked), drop every client
 * and free mh; before its event_base is freed. NULL: no-op. */
void metrics_http_free(struct metrics_http *mh);

#endif
