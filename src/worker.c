/* worker.c: see worker.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"

#define ACCEPT_RETRY_MS 250

static void accept_error(struct worker *w, const struct worker_listener *wl, int err);
static void close_listener(struct worker_listener *wl);

/*
 * The listening socket is readable: take one connection, as nginx does by
 * default. Taking them until EAGAIN costs a failing accept4 per wakeup when
 * they come one at a time; with more queued, the level-triggered event
 * fires again at once, between the other connections' events.
 */
static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct worker_listener *wl = arg;
	struct worker *w = wl->w;
	struct sockaddr_storage ss;
	socklen_t salen = sizeof(ss);
	int fd;

	(void)what;
	fd = accept4(lfd, (struct sockaddr *)&ss, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			accept_error(w, wl, errno);
		return;
	}
	if (w->draining) {
		close(fd);
		return;
	}
	if (w->max_conns > 0 && w->cs.n >= w->max_conns) {
		time_t now = time(NULL);
		close(fd);	/* at once: a client waiting in a queue is worse off */
		w->refused++;
		stats_add(SG_REFUSED, 1);
		if (now != w->refused_logged) {
			w->refused_logged = now;
			log_warn("max_connections reached (%zu in this worker); refusing new "
			    "connections (%llu so far)", w->max_conns, w->refused);
		}
		return;
	}
	conn_accept(&w->cs, wl->l, fd, (struct sockaddr *)&ss, salen);
}

/* Out of fds (or another accept error): stop accepting for a while rather
 * than spin on a listening socket that stays readable. */
static void
accept_error(struct worker *w, const struct worker_listener *wl, int err)
{
	struct timeval tv = { 0, ACCEPT_RETRY_MS * 1000 };
	time_t now = time(NULL);

	w->accept_pauses++;
	if (now - w->accept_err_logged >= 10) {
		log_warn("accept on %s: %s; pausing accepts for %d ms (%lu pauses since "
		    "the last report)", wl->l->addr.text, strerror(err), ACCEPT_RETRY_MS,
		    w->accept_pauses);
		w->accept_err_logged = now;
		w->accept_pauses = 0;
	}
	for (size_t i = 0; i < w->n_lns; i++)
		if (w->lns[i].ev)
			(void)event_del(w->lns[i].ev);
	evtimer_add(w->ev_retry, &tv);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->draining)
		return;
	for (size_t i = 0; i < w->n_lns; i++)
		if (w->lns[i].ev)
			(void)event_add(w->lns[i].ev, NULL);
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_info("shutdown_timeout reached; closing %zu connections", w->cs.n);
	while (w->cs.head != NULL)
		conn_close(w->cs.head, END_SHUTDOWN_TIMEOUT, NULL);
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv;
	unsigned ms = w->cs.gen->cfg->g.shutdown_timeout_ms;

	(void)what;
	if (w->draining)
		return;
	w->draining = 1;
	log_info("signal %d: draining %zu connections (up to %u ms)", (int)sig, w->cs.n, ms);
	for (size_t i = 0; i < w->n_lns; i++)
		close_listener(&w->lns[i]);
	if (w->cs.n == 0) {
		event_base_loopexit(w->cs.base, NULL);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(w->ev_drain, &tv);
}

static void
close_listener(struct worker_listener *wl)
{
	if (wl->ev != NULL)
		event_free(wl->ev);
	wl->ev = NULL;
	if (wl->fd >= 0)
		close(wl->fd);
	wl->fd = -1;
}

/* conn.c freed a connection (w->cs.n is down already) */
static void
conn_gone_cb(void *arg)
{
	struct worker *w = arg;

	if (w->draining && w->cs.n == 0)
		event_base_loopexit(w->cs.base, NULL);
}


/*
 * The worker's loop. conn.c registers each socket once, edge-triggered,
 * and learns of a backend's FIN from EV_CLOSED (EPOLLRDHUP) so that a short
 * read may end its reading: both need epoll, which Linux always has; a
 * libevent without it (a poll or select backend) would stall connections,
 * so refuse it.
 */
static struct event_base *
new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;

	if (cfg == NULL)
		return NULL;
	if (event_config_require_features(cfg, EV_FEATURE_ET | EV_FEATURE_O1 |
	    EV_FEATURE_EARLY_CLOSE) == 0)
		base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base == NULL)
		log_error("libevent offers no event backend with edge-triggered events and "
		    "early close (epoll)");
	return base;
}

int
worker_run(const struct generation *g, int slot, const int *fds)
{
	struct worker w;
	sigset_t all;
	int rc = 1;

	memset(&w, 0, sizeof(w));
	w.cs.gen = g;
	w.cs.gone = conn_gone_cb;
	w.cs.arg = &w;
	w.slot = slot;
	if ((w.cs.tls = tls_worker_new(g)) == NULL)
		goto out;
	if (g->cfg->g.max_connections > 0)
		w.max_conns = (size_t)((g->cfg->g.max_connections + g->cfg->g.workers - 1) /
		    g->cfg->g.workers);
	signal(SIGHUP, SIG_IGN);	/* reloads are the main process's business */
	if ((w.cs.base = new_base()) == NULL)
		goto out;
	w.n_lns = g->n_listeners;
	if ((w.lns = calloc(w.n_lns, sizeof(*w.lns))) == NULL)
		goto out;
	for (size_t i = 0; i < w.n_lns; i++)
		w.lns[i].fd = -1;
	w.ev_term = evsignal_new(w.cs.base, SIGTERM, stop_cb, &w);
	w.ev_int = evsignal_new(w.cs.base, SIGINT, stop_cb, &w);
	w.ev_drain = evtimer_new(w.cs.base, drain_timeout_cb, &w);
	w.ev_retry = evtimer_new(w.cs.base, retry_cb, &w);
	if (!w.ev_term || !w.ev_int || !w.ev_drain || !w.ev_retry ||
	    evsignal_add(w.ev_term, NULL) || evsignal_add(w.ev_int, NULL))
		goto out;
	for (size_t i = 0; i < w.n_lns; i++) {
		w.lns[i].w = &w;
		w.lns[i].l = &g->listeners[i];
		w.lns[i].fd = fds[i];
		/* The main process already made it listen, with its own backlog
		 * (sockset.c); nothing here calls listen() again, which would
		 * cut the queue a burst (or a worker restart) relies on. */
		w.lns[i].ev = event_new(w.cs.base, fds[i], EV_READ | EV_PERSIST, accept_cb,
		    &w.lns[i]);
		if (w.lns[i].ev == NULL || event_add(w.lns[i].ev, NULL) != 0) {
			log_error("cannot accept on %s", g->listeners[i].addr.text);
			goto out;
		}
	}
	/* the main process blocked these before forking us */
	sigemptyset(&all);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGINT);
	sigaddset(&all, SIGHUP);
	sigaddset(&all, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	log_debug("worker %d serving %zu listeners", slot, w.n_lns);

	/* One loop turn at a time: the access lines of a turn go out in one
	 * write, after its callbacks (log_batch). */
	log_batch(1);
	for (;;) {
		int r = event_base_loop(w.cs.base, EVLOOP_ONCE);

		log_flush();
		if (r != 0 || event_base_got_exit(w.cs.base) || event_base_got_break(w.cs.base)) {
			rc = r < 0 ? 1 : 0;
			break;
		}
	}
	log_debug("worker %d done", slot);
out:
	while (w.cs.head != NULL)
		conn_close(w.cs.head, END_WORKER_EXIT, NULL);
	log_batch(0);
	for (size_t i = 0; w.lns && i < w.n_lns; i++)
		close_listener(&w.lns[i]);
	free(w.lns);
	if (w.ev_term)
		event_free(w.ev_term);
	if (w.ev_int)
		event_free(w.ev_int);
	if (w.ev_drain)
		event_free(w.ev_drain);
	if (w.ev_retry)
		event_free(w.ev_retry);
	if (w.cs.base)
		event_base_free(w.cs.base);
	/* after the last conn_close: each gave its host's count back */
	tls_worker_free(w.cs.tls);
	return rc;
}
