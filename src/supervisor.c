/* supervisor.c: see supervisor.h. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "log.h"
#include "notify.h"
#include "priv.h"
#include "stats.h"
#include "supervisor.h"
#include "tls.h"
#include "worker.h"

#define RESPAWN_DELAY_MS 1000
#define KILL_GRACE_MS 5000
#define MAX_DRAINING 1024

/* The sockets of one listening address: one per worker slot. */
struct lsock {
	struct addr addr;
	int *fds;
	int n;
};

/* The sockets of a generation, in the order of its listeners. */
struct sockset {
	struct lsock *v;
	size_t n;
};

struct slot {
	pid_t pid;			/* 0: not running */
	long long started_ms;
	long long respawn_at_ms;	/* 0: no respawn pending */
};

/* A worker of an older generation, draining. */
struct drainer {
	pid_t pid;
	long long kill_at_ms;
};

struct sup {
	const char *path;
	struct generation *g;
	struct sockset socks;
	struct slot *slots;
	int nslots;
	struct drainer draining[MAX_DRAINING];
	size_t n_draining;
	unsigned reloads_ok, reloads_failed;
	struct stats *st;		/* metrics (stats.c); NULL: none */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A listening socket for a, with SO_REUSEPORT so that each worker slot can
 * have its own. With probe, bind without SO_REUSEPORT and do not listen:
 * that bind fails if anybody (another tlsfront of the same user included,
 * which SO_REUSEPORT would otherwise let in to share our connections)
 * already listens there.
 */
static int
open_listener(const struct addr *a, int probe)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (!probe && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0))
		goto err;
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto err;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
	    (!probe && listen(fd, 1024) != 0))
		goto err;
	if (probe) {
		close(fd);
		return 0;
	}
	return fd;
err:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static void
sockset_close(struct sockset *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		for (int s = 0; s < ss->v[i].n; s++)
			if (ss->v[i].fds[s] >= 0)
				close(ss->v[i].fds[s]);
		free(ss->v[i].fds);
	}
	free(ss->v);
	ss->v = NULL;
	ss->n = 0;
}

static struct lsock *
sockset_find(struct sockset *ss, const struct addr *a)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->v[i].fds != NULL && addr_equal(&ss->v[i].addr, a))
			return &ss->v[i];
	return NULL;
}

/*
 * The sockets generation g needs with nslots workers, taking over the ones
 * of old (which keeps the rest) and opening the others. Addresses we do not
 * hold yet are probed first, all of them before any socket is opened, so
 * that overlapping listeners (0.0.0.0:P and 127.0.0.1:P) do not collide with
 * each other. Returns 0, or -1 after logging (nothing of old taken then).
 */
static int
sockset_build(struct sockset *out, struct sockset *old, const struct generation *g,
    int nslots)
{
	out->n = g->n_listeners;
	if ((out->v = calloc(out->n ? out->n : 1, sizeof(*out->v))) == NULL)
		return -1;
	for (size_t i = 0; i < out->n; i++) {
		const struct addr *a = &g->listeners[i].addr;
		if (sockset_find(old, a) == NULL && open_listener(a, 1) != 0) {
			log_error("cannot listen on %s: %s", a->text, strerror(errno));
			goto err;
		}
	}
	for (size_t i = 0; i < out->n; i++) {
		struct lsock *l = &out->v[i];
		struct lsock *prev = sockset_find(old, &g->listeners[i].addr);

		l->addr = g->listeners[i].addr;
		if ((l->fds = malloc((size_t)nslots * sizeof(int))) == NULL)
			goto err;
		for (int s = 0; s < nslots; s++) {
			l->fds[s] = prev && s < prev->n ? dup(prev->fds[s]) :
			    open_listener(&l->addr, 0);
			if (l->fds[s] < 0) {
				log_error("cannot listen on %s: %s", l->addr.text, strerror(errno));
				l->n = s;
				goto err;
			}
			l->n = s + 1;
		}
	}
	return 0;
err:
	sockset_close(out);
	return -1;
}

static pid_t
spawn(struct sup *sp, int slot)
{
	pid_t parent = getpid();
	int sb = stats_block_take(sp->st);	/* the new worker's counters */
	pid_t pid = fork();

	if (pid != 0) {
		stats_block_bind(sp->st, sb, pid);
		return pid;
	}
	/* child */
	stats_worker_init(sp->st, sb);
	char role[32];
	size_t nl = sp->socks.n;
	int *mine = calloc(nl ? nl : 1, sizeof(int));

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);	/* the main process died before PDEATHSIG was set */
	snprintf(role, sizeof(role), "worker %d", slot);
	log_set_role(role);
	for (size_t i = 0; i < nl; i++)
		for (int s = 0; s < sp->socks.v[i].n; s++) {
			int fd = sp->socks.v[i].fds[s];
			if (s == slot && mine)
				mine[i] = fd;
			else
				close(fd);	/* other workers' sockets */
		}
	int rc = mine ? worker_run(sp->g, slot, mine) : 1;
	free(mine);
	gen_free(sp->g);
#ifdef __SANITIZE_ADDRESS__
	/* _exit() skips LeakSanitizer's exit hook: check here, so that a worker's
	 * clean exit must have freed everything (as valgrind checks too) */
	__lsan_do_leak_check();
#endif
	_exit(rc);
}

static void
start_slot(struct sup *sp, int s, long long now)
{
	sp->slots[s].respawn_at_ms = 0;
	sp->slots[s].started_ms = now;
	sp->slots[s].pid = spawn(sp, s);
	if (sp->slots[s].pid < 0) {
		log_error("fork: %s", strerror(errno));
		sp->slots[s].pid = 0;
		sp->slots[s].respawn_at_ms = now + RESPAWN_DELAY_MS;
	}
}

/* The one-line summary systemd shows (systemctl status). */
static void
status(const struct sup *sp)
{
	notify_send("STATUS=serving %zu hosts on %zu listeners, %d workers; reloads: %u ok, "
	    "%u failed", sp->g->n_hosts, sp->g->n_listeners, sp->nslots, sp->reloads_ok,
	    sp->reloads_failed);
}

/* Tell a worker of an older generation to drain, and when to kill it. */
static void
retire(struct sup *sp, pid_t pid, long long now, unsigned drain_ms)
{
	kill(pid, SIGTERM);
	if (sp->n_draining < MAX_DRAINING) {
		sp->draining[sp->n_draining].pid = pid;
		sp->draining[sp->n_draining].kill_at_ms = now + drain_ms + KILL_GRACE_MS;
		sp->n_draining++;
	}
}

/* SIGHUP: a new generation beside the running one, or nothing at all. */
static void
reload(struct sup *sp)
{
	struct diag d = { 0 };
	struct generation *ng;
	struct sockset ns = { NULL, 0 };
	struct slot *nslots_v;
	long long now;
	int n;

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	    notify_monotonic_usec());
	log_info("SIGHUP: reloading %s", sp->path);
	ng = gen_load(sp->path, &d);
	for (size_t i = 0; i < d.n; i++) {
		if (ng == NULL)
			log_error("%s", d.msgs[i]);
		else
			log_warn("%s", d.msgs[i]);
	}
	diag_free(&d);
	n = ng ? ng->cfg->g.workers : 0;
	if (ng == NULL || sockset_build(&ns, &sp->socks, ng, n) != 0 ||
	    (nslots_v = calloc((size_t)n, sizeof(*nslots_v))) == NULL) {
		sp->reloads_failed++;
		stats_reload_done(sp->st, 0);
		log_error("reload failed; still serving the previous configuration "
		    "(%u reloads failed so far)", sp->reloads_failed);
		sockset_close(&ns);
		gen_free(ng);
		notify_send("READY=1");
		status(sp);
		return;
	}
	/* the old workers drain; their sockets stay open in the new set or in
	 * the old workers until they exit */
	now = now_ms();
	for (int s = 0; s < sp->nslots; s++)
		if (sp->slots[s].pid > 0)
			retire(sp, sp->slots[s].pid, now, sp->g->cfg->g.shutdown_timeout_ms);
	sockset_close(&sp->socks);
	free(sp->slots);
	gen_free(sp->g);
	sp->socks = ns;
	sp->g = ng;
	/* the next reload counts the files it reads against this one (a reload
	 * that failed, even after ng was built, changed nothing) */
	tls_files_kept();
	sp->slots = nslots_v;
	sp->nslots = n;
	stats_generation(sp->st, ng);	/* before the new workers take counters */
	log_setup((enum log_dest)ng->cfg->g.log_dest, (enum log_level)ng->cfg->g.log_level);
	(void)stats_listen(sp->st, &ng->cfg->g.stats_listen);	/* failing: the old stays */
	for (int s = 0; s < n; s++)
		start_slot(sp, s, now);
	sp->reloads_ok++;
	stats_reload_done(sp->st, 1);
	log_info("reloaded: %zu hosts (%zu TLS settings), %zu listeners, %d workers; %lu "
	    "certificate and key files read, %lu unchanged", ng->n_hosts, ng->n_contexts,
	    ng->n_listeners, n, ng->files_read, ng->files_unchanged);
	notify_send("READY=1");
	status(sp);
}

static void
reap(struct sup *sp, int stopping, long long now)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		stats_worker_gone(sp->st, pid);	/* its counts join the retired totals */
		for (size_t i = 0; i < sp->n_draining; i++)
			if (sp->draining[i].pid == pid) {
				sp->draining[i] = sp->draining[--sp->n_draining];
				goto next;
			}
		for (int s = 0; s < sp->nslots; s++) {
			if (sp->slots[s].pid != pid)
				continue;
			sp->slots[s].pid = 0;
			if (stopping)
				break;
			if (WIFSIGNALED(st))
				log_error("worker %d (pid %d) killed by signal %d; restarting",
				    s, (int)pid, WTERMSIG(st));
			else
				log_error("worker %d (pid %d) exited with status %d; restarting",
				    s, (int)pid, WEXITSTATUS(st));
			stats_worker_restart(sp->st);
			/* a worker that dies at once would otherwise fork in a loop */
			sp->slots[s].respawn_at_ms = now - sp->slots[s].started_ms <
			    RESPAWN_DELAY_MS ? now + RESPAWN_DELAY_MS : now;
		}
next:;
	}
}

int
supervisor_run(struct generation *g, const char *path)
{
	struct sup sp;
	struct sockset none = { NULL, 0 };
	sigset_t set;
	int stopping = 0, rc = 0;
	long long kill_at = 0;

	memset(&sp, 0, sizeof(sp));
	sp.path = path;
	sp.g = g;
	tls_files_kept();	/* what reloads count their files against */
	sp.nslots = g->cfg->g.workers;
	signal(SIGPIPE, SIG_IGN);
	if ((sp.slots = calloc((size_t)sp.nslots, sizeof(*sp.slots))) == NULL ||
	    sockset_build(&sp.socks, &none, g, sp.nslots) != 0) {
		rc = 1;
		goto out;
	}
	/* the counters all workers share, made once before any fork, and the
	 * metrics socket, bound while we may still be root */
	sp.st = stats_new(0, g->n_hosts * 2 > STATS_MIN_HOSTS ? g->n_hosts * 2 : 0);
	stats_generation(sp.st, g);
	if (stats_listen(sp.st, &g->cfg->g.stats_listen) != 0) {
		rc = 1;
		goto out;
	}
	/* sockets are bound and keys read: from here on (reloads included) we
	 * run as the configured user */
	if (priv_drop(g->cfg->g.user, g->cfg->g.group) != 0) {
		rc = 1;
		goto out;
	}
	for (int s = 0; s < sp.nslots; s++)
		start_slot(&sp, s, now_ms());
	log_info("tlsfront %s started: %zu hosts (%zu TLS settings), %zu listeners, %d workers",
	    PACKAGE_VERSION, g->n_hosts, g->n_contexts, g->n_listeners, sp.nslots);
	for (size_t i = 0; i < g->n_listeners; i++)
		log_info("listening on %s", g->listeners[i].addr.text);
	notify_send("READY=1\nMAINPID=%ld", (long)getpid());
	status(&sp);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		int sig = stats_wait(sp.st, &set, 200);	/* serves metrics meanwhile */
		long long now = now_ms();
		int alive = 0;

		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			stopping = 1;
			kill_at = now + sp.g->cfg->g.shutdown_timeout_ms + KILL_GRACE_MS;
			log_info("signal %d: stopping; workers drain for up to %u ms", sig,
			    sp.g->cfg->g.shutdown_timeout_ms);
			notify_send("STOPPING=1\nSTATUS=draining");
			for (int s = 0; s < sp.nslots; s++)
				if (sp.slots[s].pid > 0)
					kill(sp.slots[s].pid, SIGTERM);
			for (size_t i = 0; i < sp.n_draining; i++)
				kill(sp.draining[i].pid, SIGTERM);
			/* new connections are refused from now on, not queued */
			sockset_close(&sp.socks);
		} else if (sig == SIGHUP && !stopping) {
			reload(&sp);
			now = now_ms();
		}
		reap(&sp, stopping, now);
		for (int s = 0; s < sp.nslots; s++) {
			if (!stopping && sp.slots[s].pid == 0 && sp.slots[s].respawn_at_ms &&
			    now >= sp.slots[s].respawn_at_ms)
				start_slot(&sp, s, now);
			if (sp.slots[s].pid > 0)
				alive++;
		}
		/* old generations: drained in time, or killed */
		for (size_t i = 0; i < sp.n_draining; i++)
			if (now >= sp.draining[i].kill_at_ms) {
				log_error("worker pid %d of an old generation still running %d ms "
				    "after shutdown_timeout; killing it", (int)sp.draining[i].pid,
				    KILL_GRACE_MS);
				kill(sp.draining[i].pid, SIGKILL);
				sp.draining[i].kill_at_ms = now + 1000;
			}
		if (stopping && alive == 0 && sp.n_draining == 0)
			break;
		if (stopping && now >= kill_at) {
			log_error("workers still running %d ms after shutdown_timeout; killing them",
			    KILL_GRACE_MS);
			for (int s = 0; s < sp.nslots; s++)
				if (sp.slots[s].pid > 0)
					kill(sp.slots[s].pid, SIGKILL);
			for (size_t i = 0; i < sp.n_draining; i++)
				kill(sp.draining[i].pid, SIGKILL);
			kill_at = now + 1000;
		}
	}
	log_info("stopped");
out:
	sockset_close(&sp.socks);
	free(sp.slots);
	gen_free(sp.g);
	stats_free(sp.st);
	return rc;
}
