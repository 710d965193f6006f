/*
 * health.h: active health checks of backend pool members (health_check =
 * tcp), run by the main process in its event loop: a non-blocking connect
 * to every member of every pool of a host with checks, every
 * health_interval, whether or not there is traffic. The outcome goes to
 * the member's shared state (pool.h) as a connect's would: a success
 * brings a down member up at once, a failure counts towards
 * backend_fail_threshold. After a failed check of a member still up the
 * next check comes sooner (interval / threshold), so that a dead idle
 * member is marked down within two intervals whatever the threshold.
 * Nothing here blocks: connects and their deadlines are loop events.
 */
#ifndef TLSFRONT_HEALTH_H
#define TLSFRONT_HEALTH_H

struct event_base;
struct generation;
struct health;

/*
 * Start checking the members of g's hosts that ask for it, in loop base.
 * Returns the checker (health_free ends it), or NULL when no host asks for
 * checks or out of memory (logged). g must outlive the checker.
 */
struct health *health_start(struct event_base *base, const struct generation *g);

/* Stop every check (and close its socket). NULL: no-op. */
void health_free(struct health *h);

#endif
