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

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct worker_listener *wl = arg;

	(void)ev;
	struct worker *w = wl->w;

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
	conn_accept(&w->cs, wl->l, fd, sa, (socklen_t)salen);
}

/* Out of fds (or another accept error): stop accepting for a while rather
 * than spin on a listening socket that stays readable. */
static void
accept_error_cb(struct evconnlistener *ev, void *arg)
{
	struct worker_listener *wl = arg;
	struct worker *w = wl->w;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, ACCEPT_RETRY_MS * 1000 };

	(void)ev;
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
			evconnlistener_disable(w->lns[i].ev);
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
			evconnlistener_enable(w->lns[i].ev);
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_info("shutdown_timeout reached; closing %zu connections", w->cs.n);
	while (w->cs.head != NULL)
		conn_close(w->cs.head, "shutdown timeout");
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
	for (size_t i = 0; i < w->n_lns; i++) {
		if (w->lns[i].ev)
			evconnlistener_free(w->lns[i].ev);
		w->lns[i].ev = NULL;
	}
	if (w->cs.n == 0) {
		event_base_loopexit(w->cs.base, NULL);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(w->ev_drain, &tv);
}

/* conn.c freed a connection (w->cs.n is down already) */
static void
conn_gone_cb(void *arg)
{
	struct worker *w = arg;

	if (w->draining && w->cs.n == 0)
		event_base_loopexit(w->cs.base, NULL);
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
	if ((w.cs.base = event_base_new()) == NULL)
		goto out;
	w.n_lns = g->n_listeners;
	if ((w.lns = calloc(w.n_lns, sizeof(*w.lns))) == NULL)
		goto out;
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
		/* Backlog 0: the main process already listens with its own
		 * backlog (supervisor.c open_listener); libevent 2.1 would call
		 * listen(fd, 128) again for -1 and cut the queue a burst of
		 * connections (or a worker restart) relies on to 128. */
		w.lns[i].ev = evconnlistener_new(w.cs.base, accept_cb, &w.lns[i],
		    LEV_OPT_CLOSE_ON_FREE, 0, fds[i]);
		if (w.lns[i].ev == NULL) {
			log_error("cannot accept on %s", g->listeners[i].addr.text);
			goto out;
		}
		evconnlistener_set_error_cb(w.lns[i].ev, accept_error_cb);
	}
	/* the main process blocked these before forking us */
	sigemptyset(&all);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGINT);
	sigaddset(&all, SIGHUP);
	sigaddset(&all, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	log_debug("worker %d serving %zu listeners", slot, w.n_lns);

	rc = event_base_dispatch(w.cs.base) < 0 ? 1 : 0;
	log_debug("worker %d done", slot);
out:
	while (w.cs.head != NULL)
		conn_close(w.cs.head, "worker exit");
	for (size_t i = 0; w.lns && i < w.n_lns; i++)
		if (w.lns[i].ev)
			evconnlistener_free(w.lns[i].ev);
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
