/*
 * metrics.h: the metrics in the Prometheus text format (version 0.0.4):
 * what GET /metrics answers (metrics_http.h). Pure: it writes out a
 * stats_sum (stats.h) and knows nothing of shared memory or sockets.
 *
 * Names, types and label values are an interface: dashboards and alerts
 * use them. Every family has a HELP and a TYPE line; hosts come sorted by
 * label, each label escaped (backslash, double quote, newline; bytes that
 * are not valid UTF-8 become '?').
 */
#ifndef TLSFRONT_METRICS_H
#define TLSFRONT_METRICS_H

#include <stddef.h>

#include "stats.h"

/*
 * The text of sum: malloc'd and NUL-terminated, owned by the caller; its
 * length (without the NUL) in *len when len is not NULL. NULL when out of
 * memory.
 */
char *metrics_render(const struct stats_sum *sum, size_t *len);

#endif
