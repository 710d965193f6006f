/*
 * acme_drive.c: runs the ACME client (acme_run) in a child process, as
 * the main process of tlsfront would, for tests/acme/t_acme_client.py:
 * prints every notify-pipe line it gets on stdout, waits for a number of
 * "order" lines, lingers a while to see whether more come, then ends the
 * child (SIGTERM, or by closing the pipe's read end with -p) and checks
 * that it returned 0 and lost no descriptor.
 *
 * acme_drive -s STATE_DIR -d DIRECTORY_URL [-c CA_FILE] [-r RENEW_BEFORE_S]
 *            [-k KEY_TYPE] [-o ORDERS] [-l LINGER_S] [-t TIMEOUT_S] [-p]
 *            LABEL=NAME[,NAME...] ...
 * Exit: 0 all well; 1 the child failed, timed out or lost descriptors;
 * 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "acme.h"
#include "log.h"

#define MAX_HOSTS 16
#define MAX_NAMES 16

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own */
}

/* The child: acme_run, then the descriptor count compared. */
static int
child(const struct acme_config *cfg, const struct acme_host *hosts, size_t n, int fd)
{
	int before = count_fds(), rc, after;

	log_setup(LOG_DEST_STDERR, LOG_LVL_DEBUG);
	log_set_role("acme");
	rc = acme_run(cfg, hosts, n, fd);
	after = count_fds();
	if (after != before) {
		fprintf(stderr, "acme_drive: %d descriptors open before acme_run, %d after\n",
		    before, after);
		return 3;
	}
	return rc;
}

static int
parse_host(char *arg, struct acme_host *h, const char **names)
{
	char *eq = strchr(arg, '='), *tok, *save = NULL;
	size_t n = 0;

	if (eq == NULL)
		return -1;
	*eq = '\0';
	h->label = arg;
	for (tok = strtok_r(eq + 1, ",", &save); tok && n < MAX_NAMES;
	    tok = strtok_r(NULL, ",", &save))
		names[n++] = tok;
	h->names = names;
	h->n_names = n;
	return n ? 0 : -1;
}

/* Wait up to timeout_s for the child to end; its exit code, or -1. */
static int
reap(pid_t pid, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	int st;

	while (time(NULL) <= end) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50000);
	}
	fprintf(stderr, "acme_drive: the client did not end within %d s\n", timeout_s);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

int
main(int argc, char **argv)
{
	struct acme_config cfg = { .enabled = 1 };
	struct acme_host hosts[MAX_HOSTS];
	static const char *names[MAX_HOSTS][MAX_NAMES];
	size_t n = 0;
	int want = 0, linger = 5, timeout = 180, close_pipe = 0, opt, p[2], orders = 0, rc;
	char buf[4096];
	size_t have = 0;
	time_t deadline;
	pid_t pid;

	while ((opt = getopt(argc, argv, "s:d:c:r:k:o:l:t:p")) != -1) {
		switch (opt) {
		case 's': cfg.state_dir = optarg; break;
		case 'd': cfg.directory = optarg; break;
		case 'c': cfg.directory_ca = optarg; break;
		case 'r': cfg.renew_before_s = strtoull(optarg, NULL, 10); break;
		case 'k': cfg.key_type = atoi(optarg); break;
		case 'o': want = atoi(optarg); break;
		case 'l': linger = atoi(optarg); break;
		case 't': timeout = atoi(optarg); break;
		case 'p': close_pipe = 1; break;
		default: return 2;
		}
	}
	for (; optind < argc && n < MAX_HOSTS; optind++, n++)
		if (parse_host(argv[optind], &hosts[n], names[n]) != 0)
			return 2;
	if (cfg.state_dir == NULL || cfg.directory == NULL || n == 0)
		return 2;
	if (pipe(p) != 0)
		return 1;
	fflush(NULL);
	if ((pid = fork()) < 0)
		return 1;
	if (pid == 0) {
		close(p[0]);
		_exit(child(&cfg, hosts, n, p[1]));
	}
	close(p[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	deadline = time(NULL) + (want > 0 ? timeout : linger);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		long left = (long)(deadline - time(NULL));
		ssize_t r;
		char *nl;

		if (left <= 0)
			break;
		if (poll(&pfd, 1, (int)(left * 1000)) <= 0)
			continue;
		r = read(p[0], buf + have, sizeof(buf) - 1 - have);
		if (r <= 0) {
			fprintf(stderr, "acme_drive: the client closed the pipe\n");
			break;
		}
		have += (size_t)r;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			printf("%s\n", buf);
			if (strncmp(buf, "order ", 6) == 0 && ++orders == want)
				deadline = time(NULL) + linger;
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
	}
	if (close_pipe)
		close(p[0]);
	else
		kill(pid, SIGTERM);
	rc = reap(pid, 40);
	if (!close_pipe)
		close(p[0]);
	printf("exit %d\n", rc);
	if (orders < want)
		fprintf(stderr, "acme_drive: %d order line(s), wanted %d\n", orders, want);
	return rc == 0 && orders >= want ? 0 : 1;
}
