/* supervisor.c: see supervisor.h. */
#include <errno.h>
#include <fcntl.h>
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

#include <event2/event.h>

#include "acme.h"
#include "filewatch.h"
#include "log.h"
#include "health.h"
#include "metrics_http.h"
#include "notify.h"
#include "priv.h"
#include "sockset.h"
#include "stats.h"
#include "supervisor.h"
#include "tls.h"
#include "worker.h"

#define RESPAWN_DELAY_MS 1000
#define KILL_GRACE_MS 5000
#define KILL_AGAIN_MS 1000
#define MAX_DRAINING 1024
/* the ACME child's restarts: 1 s, doubling while it dies young, to 5 min */
#define ACME_RESPAWN_MIN_MS 1000
#define ACME_RESPAWN_MAX_MS (300 * 1000)
#define ACME_LIVED_LONG_MS (60 * 1000)
#define ACME_LINE_MAX 512
/* how often the certificate and key files in use are checked for changes */
#define FILE_CHECK_MS (30 * 1000)

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

/* The signals the main process takes from its event loop. */
static const int main_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
#define N_SIGNALS (sizeof(main_signals) / sizeof(main_signals[0]))

struct sup {
	const char *path;
	struct generation *g;
	struct sockset socks;
	struct slot *slots;
	int nslots;
	struct drainer draining[MAX_DRAINING];
	size_t n_draining;
	unsigned reloads_ok, reloads_failed;
	int stopping;			/* SIGTERM or SIGINT came */
	long long kill_at_ms;		/* stopping: when the workers left get SIGKILL */
	struct stats *st;		/* the counters (stats.c); NULL: none */
	struct metrics_http *mh;	/* serves them (metrics_http.c); NULL: nowhere */
	struct event_base *base;	/* the main loop */
	struct event *signals[N_SIGNALS];
	struct event *respawn_timer;	/* the next respawn_at_ms due */
	struct event *kill_timer;	/* the next kill_at_ms due */
	/* the ACME child (acme.h acme_run): one while the generation has ACME
	 * hosts; its notify pipe's read end in the loop */
	struct {
		pid_t pid;		/* 0: none running */
		long long started_ms;
		long long respawn_at_ms;	/* 0: no restart pending */
		unsigned delay_ms;	/* the next restart's delay */
		char *what;		/* what it was started for (acme_what) */
		int fd;			/* the pipe's read end; -1: none */
		struct event *ev;
		char buf[ACME_LINE_MAX];
		size_t len;
	} acme;
	struct filewatch *watch;	/* the cert and key files of the generation */
	struct health *health;		/* health_check = tcp of its pools (health.c) */
	struct event *watch_timer;	/* every FILE_CHECK_MS */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
signal_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < N_SIGNALS; i++)
		sigaddset(set, main_signals[i]);
}

/* ---- forking workers ---------------------------------------------------- */

/* Descriptors, without duplicates (the main loop's, in a child). */
struct fd_list {
	int *v;
	size_t n, cap;
};

static int
fd_list_add(struct fd_list *l, int fd)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == fd)
			return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		int *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = fd;
	return 0;
}

static int
collect_fd(const struct event_base *base, const struct event *ev, void *arg)
{
	short what = event_get_events(ev);

	(void)base;
	if ((what & EV_SIGNAL) || !(what & (EV_READ | EV_WRITE)) || event_get_fd(ev) < 0)
		return 0;
	return fd_list_add(arg, event_get_fd(ev));	/* non-zero stops the walk */
}

/*
 * A child just forked leaves the main loop behind: its event_base, and the
 * sockets the loop watches (the metrics listener and clients), which stay
 * the main process's alone; a client only sees the end of an answer once
 * every copy of its socket is closed. The child shares the loop's epoll
 * instance and the pipe of libevent's signal handler with the parent, so
 * the base is given a kernel state of its own (event_reinit) before it is
 * freed: freeing it as it is would remove the parent's descriptors from the
 * parent's epoll. Freeing it also restores the signal dispositions libevent
 * changed. Out of memory, some descriptors stay open in the child:
 * harmless.
 */
static void
leave_main_loop(struct sup *sp)
{
	struct fd_list fds = { NULL, 0, 0 };

	(void)event_base_foreach_event(sp->base, collect_fd, &fds);
	if (metrics_http_fd(sp->mh) >= 0)	/* paused after an accept error */
		(void)fd_list_add(&fds, metrics_http_fd(sp->mh));
	(void)event_reinit(sp->base);
	event_base_free(sp->base);
	sp->base = NULL;
	for (size_t i = 0; i < fds.n; i++)
		close(fds.v[i]);
	free(fds.v);
}

static pid_t
spawn(struct sup *sp, int slot)
{
	pid_t parent = getpid();
	int sb = stats_block_take(sp->st);	/* the new worker's counters */
	sigset_t set, saved;
	pid_t pid;

	/* The child keeps these blocked until the worker has its own handlers
	 * (worker.c): the main process's would write a signal meant for the
	 * worker into the pipe of the main loop, which the child shares. */
	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, &saved);
	pid = fork();
	if (pid != 0) {
		sigprocmask(SIG_SETMASK, &saved, NULL);
		stats_block_bind(sp->st, sb, pid);
		return pid;
	}
	/* child */
	leave_main_loop(sp);
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

/* (Re)arm timer for the monotonic time at_ms; 0: no time, stop it. */
static void
arm(struct event *timer, long long at_ms, long long now)
{
	struct timeval tv;
	long long ms = at_ms > now ? at_ms - now : 0;

	if (at_ms == 0) {
		evtimer_del(timer);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(timer, &tv);
}

/* The respawn timer, for the earliest restart pending. */
static void
arm_respawn(struct sup *sp, long long now)
{
	long long next = 0;

	for (int s = 0; s < sp->nslots && !sp->stopping; s++)
		if (sp->slots[s].pid == 0 && sp->slots[s].respawn_at_ms != 0 &&
		    (next == 0 || sp->slots[s].respawn_at_ms < next))
			next = sp->slots[s].respawn_at_ms;
	if (!sp->stopping && sp->acme.respawn_at_ms != 0 &&
	    (next == 0 || sp->acme.respawn_at_ms < next))
		next = sp->acme.respawn_at_ms;
	arm(sp->respawn_timer, next, now);
}

/* The kill timer, for the earliest SIGKILL due. */
static void
arm_kill(struct sup *sp, long long now)
{
	long long next = sp->stopping ? sp->kill_at_ms : 0;

	for (size_t i = 0; i < sp->n_draining; i++)
		if (next == 0 || sp->draining[i].kill_at_ms < next)
			next = sp->draining[i].kill_at_ms;
	arm(sp->kill_timer, next, now);
}

/* Fork the worker of slot s; a failed fork is tried again later (the
 * caller arms the respawn timer). */
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


/* ---- the ACME child ------------------------------------------------------ */

static void reload(struct sup *sp, const char *why);
static void on_acme_readable(evutil_socket_t fd, short what, void *arg);

/*
 * What an ACME child is started for: the [acme] settings and the acme
 * hosts with their names, as one text (malloc'd), or NULL when g needs no
 * child (ACME off, or no host asks for it). A reload replaces the child only
 * when this text changes: a new certificate's reload must not restart the
 * client that asked for it.
 */
static char *
acme_what(const struct generation *g)
{
	const struct acme_config *a = &g->cfg->g.acme;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (config_acme_hosts(g->cfg) == 0)
		return NULL;
	if ((f = open_memstream(&text, &len)) == NULL)
		return NULL;
	fprintf(f, "%s|%s|%s|%s|%llu|%d", a->directory, a->contact ? a->contact : "",
	    a->directory_ca ? a->directory_ca : "", a->state_dir, a->renew_before_s,
	    a->key_type);
	for (size_t i = 0; i < g->n_hosts; i++) {
		const struct host *h = &g->hosts[i];
		if (!h->cfg->acme || h->skipped)
			continue;
		fprintf(f, "\n%s", h->cfg->label);
		for (size_t j = 0; j < h->cfg->names.n; j++)
			fprintf(f, " %s", h->cfg->names.v[j]);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* The child's side: acme_run with g's [acme] and acme hosts, on the pipe's
 * write end. Never returns. */
static void __attribute__((noreturn))
acme_child_main(struct sup *sp, int wfd, pid_t parent)
{
	struct acme_host *hosts = calloc(sp->g->n_hosts ? sp->g->n_hosts : 1, sizeof(*hosts));
	const struct config *cfg = sp->g->cfg;
	sigset_t set;
	size_t n = 0;
	int rc = 1;

	leave_main_loop(sp);
	/* it must hold no listening socket: a dead main process's port would
	 * otherwise stay bound, and connections queue for nobody */
	sockset_close(&sp->socks);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);	/* the main process died before PDEATHSIG was set */
	log_set_role("acme");
	/* the main process dropped root before forking; this is for a child
	 * forked some other way, and cheap */
	if (priv_drop(cfg->g.user, cfg->g.group) != 0 || hosts == NULL)
		_exit(1);
	for (size_t i = 0; i < sp->g->n_hosts; i++) {
		const struct host *h = &sp->g->hosts[i];
		if (!h->cfg->acme || h->skipped || h->cfg->bad)
			continue;
		hosts[n].label = h->cfg->label;
		hosts[n].names = (const char *const *)h->cfg->names.v;
		hosts[n].n_names = h->cfg->names.n;
		n++;
	}
	/* leave_main_loop gave back the default actions; SIGHUP is the main
	 * process's business, SIGTERM (stop, or a new [acme]) ends the client */
	signal(SIGHUP, SIG_IGN);
	signal_set(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	rc = acme_run(&cfg->g.acme, hosts, n, wfd);
	close(wfd);
	free(hosts);
	gen_free(sp->g);
	stats_free(sp->st);
#ifdef __SANITIZE_ADDRESS__
	__lsan_do_leak_check();
#endif
	_exit(rc);
}

/* Fork the ACME child for the generation in use, with its notify pipe.
 * A failure is tried again later, as a death would be. */
static void
acme_start(struct sup *sp, long long now)
{
	pid_t parent = getpid(), pid;
	sigset_t set, saved;
	int p[2];

	sp->acme.respawn_at_ms = 0;
	sp->acme.started_ms = now;
	if (pipe2(p, O_CLOEXEC) != 0) {
		log_error("ACME: pipe: %s", strerror(errno));
		goto later;
	}
	/* as spawn(): the main loop's signal handler must not run in the child */
	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, &saved);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		acme_child_main(sp, p[1], parent);
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(p[1]);
	if (pid < 0) {
		log_error("ACME: fork: %s", strerror(errno));
		close(p[0]);
		goto later;
	}
	sp->acme.pid = pid;
	(void)fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	sp->acme.fd = p[0];
	sp->acme.len = 0;
	if ((sp->acme.ev = event_new(sp->base, p[0], EV_READ | EV_PERSIST, on_acme_readable,
	    sp)) == NULL || event_add(sp->acme.ev, NULL) != 0)
		log_error("ACME: cannot watch the child's pipe; its certificates are served "
		    "after the next reload or file check");
	log_info("ACME: client started (pid %d)", (int)pid);
	return;
later:
	sp->acme.respawn_at_ms = now + sp->acme.delay_ms;
}

/* Forget the pipe of the child that is going (its last lines are lost:
 * a certificate it stored is still found by the file check). */
static void
acme_pipe_close(struct sup *sp)
{
	if (sp->acme.ev != NULL)
		event_free(sp->acme.ev);
	sp->acme.ev = NULL;
	if (sp->acme.fd >= 0)
		close(sp->acme.fd);
	sp->acme.fd = -1;
	sp->acme.len = 0;
}

/* Stop the running child (SIGTERM; SIGKILL with the draining workers if
 * it lingers) and forget what it was for. */
static void
acme_stop(struct sup *sp, long long now)
{
	acme_pipe_close(sp);
	if (sp->acme.pid > 0)
		retire(sp, sp->acme.pid, now, 0);
	sp->acme.pid = 0;
	sp->acme.respawn_at_ms = 0;
	free(sp->acme.what);
	sp->acme.what = NULL;
}

/* The generation in use changed (or started): the ACME child it needs. */
static void
acme_update(struct sup *sp, long long now)
{
	char *what = acme_what(sp->g);

	if (what != NULL && sp->acme.what != NULL && strcmp(what, sp->acme.what) == 0) {
		free(what);	/* the same client for the same work */
		return;
	}
	if (sp->acme.what != NULL) {
		log_info("ACME: [acme] or the ACME hosts changed; %s the client",
		    what != NULL ? "replacing" : "stopping");
		acme_stop(sp, now);
	}
	if (what == NULL)
		return;
	sp->acme.what = what;
	sp->acme.delay_ms = ACME_RESPAWN_MIN_MS;
	acme_start(sp, now);
}

/* One line from the child (acme.h): "cert LABEL", "order LABEL RESULT".
 * Returns 1 when it asks for a reload. */
static int
acme_line(struct sup *sp, char *line)
{
	char *save = NULL, *verb = strtok_r(line, " ", &save);
	char *label = strtok_r(NULL, " ", &save), *result = strtok_r(NULL, " ", &save);

	if (verb != NULL && label != NULL && strcmp(verb, "cert") == 0 && result == NULL) {
		log_info("ACME: new certificate for host %s", label);
		return 1;
	}
	if (verb != NULL && label != NULL && result != NULL && strcmp(verb, "order") == 0 &&
	    (strcmp(result, "ok") == 0 || strcmp(result, "error") == 0)) {
		stats_acme_order(sp->st, label, strcmp(result, "ok") == 0);
		return 0;
	}
	log_warn("ACME: unexpected line from the client: '%.100s'", line);
	return 0;
}

static void
on_acme_readable(evutil_socket_t fd, short what, void *arg)
{
	struct sup *sp = arg;
	int want_reload = 0;
	ssize_t r;
	char *nl;

	(void)what;
	r = read(fd, sp->acme.buf + sp->acme.len, sizeof(sp->acme.buf) - 1 - sp->acme.len);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		acme_pipe_close(sp);	/* the child is going: SIGCHLD tells */
		return;
	}
	sp->acme.len += (size_t)r;
	sp->acme.buf[sp->acme.len] = '\0';
	while ((nl = strchr(sp->acme.buf, '\n')) != NULL) {
		*nl = '\0';
		want_reload |= acme_line(sp, sp->acme.buf);
		sp->acme.len -= (size_t)(nl + 1 - sp->acme.buf);
		memmove(sp->acme.buf, nl + 1, sp->acme.len + 1);
	}
	if (sp->acme.len == sizeof(sp->acme.buf) - 1) {
		log_warn("ACME: a line from the client is too long; dropped");
		sp->acme.len = 0;
	}
	/* several certificates in one read: one reload serves them all */
	if (want_reload && !sp->stopping)
		reload(sp, "a new ACME certificate");
}


/* ---- files changed on disk ------------------------------------------------ */

/* A reload is about to read the files: what it reads is no change. */
static void
watch_before_load(struct sup *sp)
{
	if (sp->watch != NULL)
		filewatch_snapshot(sp->watch);
}

/* The generation in use changed (or started): watch its certificate and key
 * files (ACME hosts' included: another instance sharing state_dir may
 * replace them, and a pending host's file appears), skipped hosts' too (a
 * fixed file brings them back). */
static void
watch_update(struct sup *sp)
{
	const char **paths = calloc(2 * sp->g->n_hosts + 1, sizeof(*paths));
	size_t n = 0;

	if (paths == NULL || sp->watch == NULL) {
		free(paths);
		return;
	}
	for (size_t i = 0; i < sp->g->n_hosts; i++) {
		paths[n++] = sp->g->hosts[i].cfg->cert;
		paths[n++] = sp->g->hosts[i].cfg->key;
	}
	if (filewatch_set(sp->watch, paths, n) != 0)
		log_error("file check: out of memory; the files of the new configuration are "
		    "not checked for changes");
	free(paths);
}

/* Every FILE_CHECK_MS: a changed file is a reload (all or nothing); a
 * reload that fails is not tried again until a file changes again. */
static void
on_watch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sup *sp = arg;
	const char *first;
	size_t n;

	(void)fd;
	(void)what;
	if (sp->stopping || sp->watch == NULL || (n = filewatch_check(sp->watch, &first)) == 0)
		return;
	if (n > 1)
		log_info("file check: %s and %zu more files changed", first, n - 1);
	else
		log_info("file check: %s changed", first);
	reload(sp, "file check");
}

/* ---- signals and timers ------------------------------------------------- */

/* SIGHUP (or a new ACME certificate, or a changed file): a new generation
 * beside the running one, or nothing at all. */
static void
reload(struct sup *sp, const char *why)
{
	struct diag d = { 0 };
	struct generation *ng;
	struct sockset ns = { NULL, 0 };
	struct slot *nslots_v;
	long long now;
	int n;

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	    notify_monotonic_usec());
	log_info("%s: reloading %s", why, sp->path);
	watch_before_load(sp);
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
	free(sp->slots);	/* and with them the restarts they waited for */
	health_free(sp->health);	/* its probes point into the old generation */
	sp->health = NULL;
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
	(void)metrics_http_listen(sp->mh, &ng->cfg->g.stats_listen);	/* failing: the old stays */
	for (int s = 0; s < n; s++)
		start_slot(sp, s, now);
	acme_update(sp, now);
	watch_update(sp);
	sp->health = health_start(sp->base, ng);
	arm_respawn(sp, now);
	arm_kill(sp, now);
	sp->reloads_ok++;
	stats_reload_done(sp->st, 1);
	log_info("reloaded: %zu hosts (%zu TLS settings), %zu listeners, %d workers; %lu "
	    "certificate and key files read, %lu unchanged", ng->n_hosts, ng->n_contexts,
	    ng->n_listeners, n, ng->files_read, ng->files_unchanged);
	notify_send("READY=1");
	status(sp);
}

/* Stopping, and no worker left: the loop ends. */
static void
done_if_stopped(struct sup *sp)
{
	if (!sp->stopping || sp->n_draining > 0 || sp->acme.pid > 0)
		return;
	for (int s = 0; s < sp->nslots; s++)
		if (sp->slots[s].pid > 0)
			return;
	event_base_loopbreak(sp->base);
}

/* SIGTERM, SIGINT: every worker drains, then the main process exits. */
static void
stop(struct sup *sp, int sig)
{
	long long now = now_ms();

	if (sp->stopping)
		return;
	sp->stopping = 1;
	sp->kill_at_ms = now + sp->g->cfg->g.shutdown_timeout_ms + KILL_GRACE_MS;
	log_info("signal %d: stopping; workers drain for up to %u ms", sig,
	    sp->g->cfg->g.shutdown_timeout_ms);
	notify_send("STOPPING=1\nSTATUS=draining");
	for (int s = 0; s < sp->nslots; s++)
		if (sp->slots[s].pid > 0)
			kill(sp->slots[s].pid, SIGTERM);
	for (size_t i = 0; i < sp->n_draining; i++)
		kill(sp->draining[i].pid, SIGTERM);
	if (sp->acme.pid > 0)
		kill(sp->acme.pid, SIGTERM);
	/* new connections are refused from now on, not queued */
	sockset_close(&sp->socks);
	arm_respawn(sp, now);	/* none while stopping */
	arm_kill(sp, now);
	done_if_stopped(sp);
}

/* The ACME child ended: unless stopping, it is started again, later the
 * younger it died (a client that fails at once must not fork in a loop). */
static void
acme_gone(struct sup *sp, int wst, long long now)
{
	sp->acme.pid = 0;
	acme_pipe_close(sp);
	if (sp->stopping)
		return;
	if (now - sp->acme.started_ms >= ACME_LIVED_LONG_MS)
		sp->acme.delay_ms = ACME_RESPAWN_MIN_MS;
	if (WIFSIGNALED(wst))
		log_error("ACME: client killed by signal %d; restarting in %u s", WTERMSIG(wst),
		    sp->acme.delay_ms / 1000);
	else
		log_error("ACME: client exited with status %d; restarting in %u s",
		    WEXITSTATUS(wst), sp->acme.delay_ms / 1000);
	sp->acme.respawn_at_ms = now + sp->acme.delay_ms;
	sp->acme.delay_ms = sp->acme.delay_ms * 2 > ACME_RESPAWN_MAX_MS ? ACME_RESPAWN_MAX_MS :
	    sp->acme.delay_ms * 2;
}

/* SIGCHLD: every worker that ended is accounted for; those of the
 * generation in use are restarted (unless stopping). */
static void
reap(struct sup *sp)
{
	long long now = now_ms();
	pid_t pid;
	int wst;

	while ((pid = waitpid(-1, &wst, WNOHANG)) > 0) {
		stats_worker_gone(sp->st, pid);	/* its counts join the retired totals */
		for (size_t i = 0; i < sp->n_draining; i++)
			if (sp->draining[i].pid == pid) {
				sp->draining[i] = sp->draining[--sp->n_draining];
				goto next;
			}
		if (pid == sp->acme.pid) {
			acme_gone(sp, wst, now);
			continue;
		}
		for (int s = 0; s < sp->nslots; s++) {
			if (sp->slots[s].pid != pid)
				continue;
			sp->slots[s].pid = 0;
			if (sp->stopping)
				break;
			if (WIFSIGNALED(wst))
				log_error("worker %d (pid %d) killed by signal %d; restarting",
				    s, (int)pid, WTERMSIG(wst));
			else
				log_error("worker %d (pid %d) exited with status %d; restarting",
				    s, (int)pid, WEXITSTATUS(wst));
			stats_worker_restart(sp->st);
			/* a worker that dies at once would otherwise fork in a loop */
			sp->slots[s].respawn_at_ms = now - sp->slots[s].started_ms <
			    RESPAWN_DELAY_MS ? now + RESPAWN_DELAY_MS : now;
		}
next:;
	}
	arm_respawn(sp, now);
	arm_kill(sp, now);
	done_if_stopped(sp);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sup *sp = arg;

	(void)what;
	if (sig == SIGTERM || sig == SIGINT)
		stop(sp, (int)sig);
	else if (sig == SIGHUP && !sp->stopping)
		reload(sp, "SIGHUP");
	else if (sig == SIGCHLD)
		reap(sp);
}

static void
on_respawn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sup *sp = arg;
	long long now = now_ms();

	(void)fd;
	(void)what;
	for (int s = 0; s < sp->nslots && !sp->stopping; s++)
		if (sp->slots[s].pid == 0 && sp->slots[s].respawn_at_ms != 0 &&
		    now >= sp->slots[s].respawn_at_ms)
			start_slot(sp, s, now);
	if (!sp->stopping && sp->acme.pid == 0 && sp->acme.what != NULL &&
	    sp->acme.respawn_at_ms != 0 && now >= sp->acme.respawn_at_ms)
		acme_start(sp, now);
	arm_respawn(sp, now);
}

/* Workers past their time: SIGKILL, again every KILL_AGAIN_MS until reaped. */
static void
on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sup *sp = arg;
	long long now = now_ms();

	(void)fd;
	(void)what;
	for (size_t i = 0; i < sp->n_draining; i++)
		if (now >= sp->draining[i].kill_at_ms) {
			log_error("worker pid %d of an old generation still running %d ms "
			    "after shutdown_timeout; killing it", (int)sp->draining[i].pid,
			    KILL_GRACE_MS);
			kill(sp->draining[i].pid, SIGKILL);
			sp->draining[i].kill_at_ms = now + KILL_AGAIN_MS;
		}
	if (sp->stopping && now >= sp->kill_at_ms) {
		log_error("workers still running %d ms after shutdown_timeout; killing them",
		    KILL_GRACE_MS);
		for (int s = 0; s < sp->nslots; s++)
			if (sp->slots[s].pid > 0)
				kill(sp->slots[s].pid, SIGKILL);
		for (size_t i = 0; i < sp->n_draining; i++)
			kill(sp->draining[i].pid, SIGKILL);
		if (sp->acme.pid > 0)
			kill(sp->acme.pid, SIGKILL);
		sp->kill_at_ms = now + KILL_AGAIN_MS;
	}
	arm_kill(sp, now);
}

/* The loop's signals and timers. Returns 0, or -1 after logging. */
static int
loop_setup(struct sup *sp)
{
	if ((sp->base = event_base_new()) == NULL)
		goto err;
	for (size_t i = 0; i < N_SIGNALS; i++)
		if ((sp->signals[i] = evsignal_new(sp->base, main_signals[i], on_signal, sp)) ==
		    NULL || evsignal_add(sp->signals[i], NULL) != 0)
			goto err;
	if ((sp->respawn_timer = evtimer_new(sp->base, on_respawn_timer, sp)) == NULL ||
	    (sp->kill_timer = evtimer_new(sp->base, on_kill_timer, sp)) == NULL)
		goto err;
	/* an undocumented knob for the tests, which cannot wait 30 s per case */
	const char *ms = getenv("TLSFRONT_FILE_CHECK_MS");
	long check_ms = ms != NULL && atol(ms) > 0 ? atol(ms) : FILE_CHECK_MS;
	struct timeval every = { check_ms / 1000, (check_ms % 1000) * 1000 };
	if ((sp->watch = filewatch_new()) == NULL ||
	    (sp->watch_timer = event_new(sp->base, -1, EV_PERSIST, on_watch_timer, sp)) == NULL ||
	    event_add(sp->watch_timer, &every) != 0)
		goto err;
	return 0;
err:
	log_error("cannot set up the main event loop");
	return -1;
}

static void
loop_free(struct sup *sp)
{
	for (size_t i = 0; i < N_SIGNALS; i++)
		if (sp->signals[i] != NULL)
			event_free(sp->signals[i]);
	if (sp->respawn_timer != NULL)
		event_free(sp->respawn_timer);
	if (sp->kill_timer != NULL)
		event_free(sp->kill_timer);
	if (sp->watch_timer != NULL)
		event_free(sp->watch_timer);
	acme_pipe_close(sp);
	if (sp->base != NULL)
		event_base_free(sp->base);
}

int
supervisor_run(struct generation *g, const char *path)
{
	struct sup sp;
	struct sockset none = { NULL, 0 };
	sigset_t set;
	int rc = 1;

	memset(&sp, 0, sizeof(sp));
	sp.acme.fd = -1;
	sp.path = path;
	sp.g = g;
	tls_files_kept();	/* what reloads count their files against */
	sp.nslots = g->cfg->g.workers;
	signal(SIGPIPE, SIG_IGN);
	if ((sp.slots = calloc((size_t)sp.nslots, sizeof(*sp.slots))) == NULL ||
	    sockset_build(&sp.socks, &none, g, sp.nslots) != 0)
		goto out;
	/* the counters all workers share, made once before any fork, and the
	 * metrics socket, bound while we may still be root */
	sp.st = stats_new(0, g->n_hosts * 2 > STATS_MIN_HOSTS ? g->n_hosts * 2 : 0);
	stats_generation(sp.st, g);
	if (loop_setup(&sp) != 0)
		goto out;
	sp.mh = metrics_http_new(sp.base, sp.st);
	if (metrics_http_listen(sp.mh, &g->cfg->g.stats_listen) != 0)
		goto out;
	/* sockets are bound and keys read: from here on (reloads included) we
	 * run as the configured user */
	if (priv_drop(g->cfg->g.user, g->cfg->g.group) != 0)
		goto out;
	for (int s = 0; s < sp.nslots; s++)
		start_slot(&sp, s, now_ms());
	/* after the workers: the client may take its time, they serve now */
	acme_update(&sp, now_ms());
	watch_update(&sp);
	sp.health = health_start(sp.base, g);
	arm_respawn(&sp, now_ms());
	log_info("tlsfront %s started: %zu hosts (%zu TLS settings), %zu listeners, %d workers",
	    PACKAGE_VERSION, g->n_hosts, g->n_contexts, g->n_listeners, sp.nslots);
	for (size_t i = 0; i < g->n_listeners; i++)
		log_info("listening on %s", g->listeners[i].addr.text);
	notify_send("READY=1\nMAINPID=%ld", (long)getpid());
	status(&sp);

	/* main() blocked the signals before anything could fork; libevent's
	 * handlers are in place now, and take what came meanwhile */
	signal_set(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	rc = event_base_dispatch(sp.base) < 0 ? 1 : 0;
	/* freeing the loop gives the signals their default actions back: a
	 * late SIGHUP must not end the process in the middle of its exit */
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (rc == 0)
		log_info("stopped");
	else
		log_error("the main event loop failed");
out:
	health_free(sp.health);
	metrics_http_free(sp.mh);
	loop_free(&sp);
	filewatch_free(sp.watch);
	free(sp.acme.what);
	sockset_close(&sp.socks);
	free(sp.slots);
	gen_free(sp.g);
	stats_free(sp.st);
	return rc;
}
