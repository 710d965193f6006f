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

#include "log.h"
#include "supervisor.h"
#include "worker.h"

#define RESPAWN_DELAY_MS 1000
#define KILL_GRACE_MS 5000

struct slot {
	pid_t pid;		/* 0: not running */
	long long started_ms;
	long long respawn_at_ms;	/* 0: no respawn pending */
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

static pid_t
spawn(struct generation *g, int slot, int *fds, size_t nl, int nslots)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* child */
	char role[32];
	int *mine = calloc(nl ? nl : 1, sizeof(int));

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);	/* the main process died before PDEATHSIG was set */
	snprintf(role, sizeof(role), "worker %d", slot);
	log_set_role(role);
	for (size_t i = 0; i < nl; i++)
		for (int s = 0; s < nslots; s++) {
			int fd = fds[i * (size_t)nslots + (size_t)s];
			if (s == slot && mine)
				mine[i] = fd;
			else
				close(fd);	/* other workers' sockets */
		}
	int rc = mine ? worker_run(g, slot, mine) : 1;
	free(mine);
	gen_free(g);
	_exit(rc);
}

int
supervisor_run(struct generation *g)
{
	int nslots = g->cfg->g.workers;
	size_t nl = g->n_listeners;
	int *fds = calloc(nl * (size_t)nslots + 1, sizeof(int));
	struct slot *slots = calloc((size_t)nslots, sizeof(*slots));
	sigset_t set;
	int stopping = 0, rc = 0;
	long long kill_at = 0;

	if (fds == NULL || slots == NULL) {
		log_error("out of memory");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < nl * (size_t)nslots; i++)
		fds[i] = -1;
	/* every probe before any socket of ours exists: overlapping listeners
	 * (0.0.0.0:P and 127.0.0.1:P) would otherwise collide with each other */
	for (size_t i = 0; i < nl; i++)
		if (open_listener(&g->listeners[i].addr, 1) != 0) {
			log_error("cannot listen on %s: %s", g->listeners[i].addr.text,
			    strerror(errno));
			rc = 1;
			goto out;
		}
	for (size_t i = 0; i < nl; i++)
		for (int s = 0; s < nslots; s++) {
			int fd = open_listener(&g->listeners[i].addr, 0);
			if (fd < 0) {
				log_error("cannot listen on %s: %s", g->listeners[i].addr.text,
				    strerror(errno));
				rc = 1;
				goto out;
			}
			fds[i * (size_t)nslots + (size_t)s] = fd;
		}
	signal(SIGPIPE, SIG_IGN);
	for (int s = 0; s < nslots; s++) {
		slots[s].pid = spawn(g, s, fds, nl, nslots);
		slots[s].started_ms = now_ms();
		if (slots[s].pid < 0) {
			log_error("fork: %s", strerror(errno));
			slots[s].pid = 0;
			slots[s].respawn_at_ms = now_ms() + RESPAWN_DELAY_MS;
		}
	}
	log_info("tlsfront %s started: %zu hosts, %zu listeners, %d workers", PACKAGE_VERSION,
	    g->n_hosts, nl, nslots);
	for (size_t i = 0; i < nl; i++)
		log_info("listening on %s", g->listeners[i].addr.text);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		struct timespec ts = { 0, 200 * 1000000L };
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &ts);
		long long now = now_ms();
		int alive = 0;
		pid_t pid;
		int st;

		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			stopping = 1;
			kill_at = now + g->cfg->g.shutdown_timeout_ms + KILL_GRACE_MS;
			log_info("signal %d: stopping; workers drain for up to %u ms", sig,
			    g->cfg->g.shutdown_timeout_ms);
			for (int s = 0; s < nslots; s++)
				if (slots[s].pid > 0)
					kill(slots[s].pid, SIGTERM);
			/* No worker will accept again: close our copies of the
			 * listening sockets, so that once the workers have closed
			 * theirs new connections are refused instead of queueing in
			 * a backlog nobody reads. */
			for (size_t i = 0; i < nl * (size_t)nslots; i++) {
				if (fds[i] >= 0)
					close(fds[i]);
				fds[i] = -1;
			}
		} else if (sig == SIGHUP) {
			log_warn("SIGHUP: reloading is not supported by this version; ignored");
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (int s = 0; s < nslots; s++) {
				if (slots[s].pid != pid)
					continue;
				slots[s].pid = 0;
				if (stopping)
					break;
				if (WIFSIGNALED(st))
					log_error("worker %d (pid %d) killed by signal %d; restarting",
					    s, (int)pid, WTERMSIG(st));
				else
					log_error("worker %d (pid %d) exited with status %d; "
					    "restarting", s, (int)pid, WEXITSTATUS(st));
				/* a worker that dies at once would otherwise fork in a loop */
				slots[s].respawn_at_ms = now - slots[s].started_ms < RESPAWN_DELAY_MS ?
				    now + RESPAWN_DELAY_MS : now;
			}
		}
		for (int s = 0; s < nslots; s++) {
			if (!stopping && slots[s].pid == 0 && slots[s].respawn_at_ms &&
			    now >= slots[s].respawn_at_ms) {
				slots[s].respawn_at_ms = 0;
				slots[s].started_ms = now;
				slots[s].pid = spawn(g, s, fds, nl, nslots);
				if (slots[s].pid < 0) {
					log_error("fork: %s", strerror(errno));
					slots[s].pid = 0;
					slots[s].respawn_at_ms = now + RESPAWN_DELAY_MS;
				}
			}
			if (slots[s].pid > 0)
				alive++;
		}
		if (stopping && alive == 0)
			break;
		if (stopping && now >= kill_at) {
			log_error("workers still running %d ms after shutdown_timeout; killing them",
			    KILL_GRACE_MS);
			for (int s = 0; s < nslots; s++)
				if (slots[s].pid > 0)
					kill(slots[s].pid, SIGKILL);
			kill_at = now + 1000;
		}
	}
	log_info("stopped");
out:
	for (size_t i = 0; fds && i < nl * (size_t)nslots; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(slots);
	gen_free(g);
	return rc;
}
