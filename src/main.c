/*
 * main.c: command line, configuration check, start-up order.
 *
 *   load config (config.c) -> build TLS contexts and listeners (gen.c)
 *   -> -t: report and exit; -T: report, print the configuration (dump.c)
 *   -> otherwise: log a line per host (dump.c), then supervisor.c opens
 *      sockets and forks the workers.
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "dump.h"
#include "gen.h"
#include "log.h"
#include "supervisor.h"
#include "tls.h"

#include <event2/event.h>
#include <openssl/opensslv.h>

#define DEFAULT_CONFIG SYSCONFDIR "/tlsfront/tlsfront.ini"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tlsfront [-c FILE] [-t | -T] [-V] [-h]\n"
	    "  -c FILE  main configuration file (default: %s)\n"
	    "  -t       check the configuration (load every certificate and key,\n"
	    "           bind nothing) and exit: 0 if it is good, 1 if not\n"
	    "  -T       check as -t does; if it is good, print the effective\n"
	    "           configuration (defaults filled in, each host's names,\n"
	    "           backends and certificate) to stdout\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n", DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int check = 0, dump = 0, ch;
	struct diag d = { 0 };
	struct generation *g = NULL;
	sigset_t set;

	while ((ch = getopt(argc, argv, "c:tTVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'T':
			check = dump = 1;
			break;
		case 'V':
			printf("tlsfront %s\n", PACKAGE_VERSION);
			printf("built with %s, libevent %s\n", OPENSSL_VERSION_TEXT,
			    event_get_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Block the signals the main process waits for, before anything can
	 * fork; workers unblock them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	g = gen_load(path, &d);
	if (g != NULL && !check) {
		/* session-ticket keys derive from this, for every generation */
		if (tls_ticket_secret_init() != 0) {
			fprintf(stderr, "tlsfront: no random bytes for the ticket secret\n");
			gen_free(g);
			return 1;
		}
		/* as many connections as the system lets this user have */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
		/* warnings (e.g. an expiring certificate) go where the logs go */
		log_setup((enum log_dest)g->cfg->g.log_dest, (enum log_level)g->cfg->g.log_level);
		for (size_t i = 0; i < d.n; i++)
			log_warn("%s", d.msgs[i]);
		diag_free(&d);
		dump_host_summaries(g);
		return supervisor_run(g, path);
	}
	for (size_t i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.msgs[i]);
	if (g == NULL || d.n_errors > 0) {
		fprintf(stderr, "tlsfront: configuration has %zu error%s\n", d.n_errors,
		    d.n_errors == 1 ? "" : "s");
		diag_free(&d);
		gen_free(g);
		return 1;
	}
	diag_free(&d);
	if (dump) {
		/* stdout is the configuration alone, for diff */
		fprintf(stderr, "configuration OK\n");
		int rc = dump_config(stdout, g);
		if (rc != 0)
			fprintf(stderr, "tlsfront: cannot write the configuration: %s\n",
			    strerror(errno));
		gen_free(g);
		return rc != 0 ? 1 : 0;
	}
	printf("configuration OK\n");
	gen_free(g);
	return 0;
}
