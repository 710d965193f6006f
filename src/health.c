/* health.c: see health.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "gen.h"
#include "health.h"
#include "log.h"
#include "pool.h"

/* One member checked: its pool (for the policy and the log lines), its
 * index there, the check's socket while a connect is out. */
struct probe {
	const struct pool *pool;
	size_t i;
	unsigned interval_ms, timeout_ms;
	int fd;			/* -1: no check out */
	struct event *timer;	/* the next check */
	struct event *io;	/* the connect's end, or its deadline */
};

struct health {
	struct event_base *base;
	struct probe *v;
	size_t n;
};

static void
arm(struct event *ev, unsigned ms)
{
	struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

/* The check is over: count it, close its socket, set the next one. */
static void
probe_done(struct probe *p, int err)
{
	struct member_state *st = p->pool->m[p->i].st;
	unsigned next = p->interval_ms;

	if (p->io != NULL)
		event_free(p->io);
	p->io = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (err == 0) {
		pool_ok(p->pool, p->i, 0, 0);
	} else {
		atomic_fetch_add_explicit(&st->checks_failed, 1, memory_order_relaxed);
		pool_fail(p->pool, p->i, 0, err > 0 ? strerror(err) : "health check timeout");
		/* still up with failures: check again sooner (health.h) */
		if (atomic_load(&st->up) && p->pool->fail_threshold > 1)
			next = p->interval_ms / p->pool->fail_threshold;
	}
	arm(p->timer, next ? next : 1);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;

	(void)fd;
	if (what & EV_TIMEOUT)
		probe_done(p, -1);
	else
		probe_done(p, backend_connect_error(p->fd));
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	struct timeval tv;
	struct event_base *base = event_get_base(p->timer);

	(void)fd;
	(void)what;
	if ((p->fd = backend_dial(p->pool->m[p->i].addr)) < 0) {
		probe_done(p, errno ? errno : EIO);
		return;
	}
	tv.tv_sec = p->timeout_ms / 1000;
	tv.tv_usec = (long)(p->timeout_ms % 1000) * 1000;
	if ((p->io = event_new(base, p->fd, EV_WRITE, io_cb, p)) == NULL ||
	    event_add(p->io, &tv) != 0) {
		/* out of memory: not the member's fault; try again later */
		if (p->io != NULL)
			event_free(p->io);
		p->io = NULL;
		close(p->fd);
		p->fd = -1;
		arm(p->timer, p->interval_ms);
	}
}

/* Has h a probe for slot st already (pools of one host may share members)? */
static int
have(const struct health *h, const struct member_state *st)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].pool->m[h->v[i].i].st == st)
			return 1;
	return 0;
}

static int
add_pool(struct health *h, const struct pool *pl, const struct host_config *c)
{
	for (size_t i = 0; i < pl->n; i++) {
		struct probe *v;

		if (have(h, pl->m[i].st))
			continue;
		if ((v = realloc(h->v, (h->n + 1) * sizeof(*v))) == NULL)
			return -1;
		h->v = v;
		v += h->n;
		memset(v, 0, sizeof(*v));
		v->pool = pl;
		v->i = i;
		v->fd = -1;
		v->interval_ms = c->health_interval_ms;
		/* a check that takes longer than the host's connect_timeout
		 * failed, as a connect would; and it ends before the next */
		v->timeout_ms = c->connect_timeout_ms < c->health_interval_ms ?
		    c->connect_timeout_ms : c->health_interval_ms;
		h->n++;
	}
	return 0;
}

struct health *
health_start(struct event_base *base, const struct generation *g)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h == NULL)
		goto err;
	h->base = base;
	for (size_t i = 0; i < g->n_hosts; i++) {
		const struct host *ho = &g->hosts[i];
		const struct host_config *c = ho->cfg;

		if (ho->skipped || c->health_check != HEALTH_CHECK_TCP || ho->pool.m == NULL)
			continue;
		if (add_pool(h, &ho->pool, c) != 0)
			goto err;
		for (size_t k = 0; ho->alpn_pools != NULL && k < c->n_alpn_backends; k++)
			if (add_pool(h, &ho->alpn_pools[k], c) != 0)
				goto err;
	}
	if (h->n == 0) {
		health_free(h);
		return NULL;
	}
	for (size_t i = 0; i < h->n; i++) {
		if ((h->v[i].timer = evtimer_new(base, timer_cb, &h->v[i])) == NULL)
			goto err;
		/* the first round at once: a member dead at start or reload is
		 * found within one interval */
		arm(h->v[i].timer, 1);
	}
	return h;
err:
	log_error("health checks: out of memory; no checks");
	health_free(h);
	return NULL;
}

void
health_free(struct health *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i].timer != NULL)
			event_free(h->v[i].timer);
		if (h->v[i].io != NULL)
			event_free(h->v[i].io);
		if (h->v[i].fd >= 0)
			close(h->v[i].fd);
	}
	free(h->v);
	free(h);
}
