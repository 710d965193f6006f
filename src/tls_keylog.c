/*
 * tls_keylog.c: keylog_file, the NSS key log of a host's connections (the
 * format of SSLKEYLOGFILE). The main process opens the file once per
 * generation, O_APPEND, before the workers fork; they share the descriptor
 * and each line is one write(2), an atomic append, so lines of several
 * workers never mix. A file created as root is given to `user`, so that
 * reloads, which run as that user, can open it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tls_int.h"

int
tls_keylog_open(struct tls_host *t, const struct host_config *c, struct diag *d)
{
	struct loc at = c->loc[K_KEYLOG_FILE];
	struct stat st;
	int fd;

	/* create it private; an existing file keeps its owner and mode */
	fd = open(c->keylog_file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK, 0600);
	if (fd >= 0)
		t->keylog_created = 1;
	else if (errno == EEXIST)
		fd = open(c->keylog_file, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		diag_error_at(d, at, "keylog_file: cannot open %s for writing: %s", c->keylog_file,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		diag_error_at(d, at, "keylog_file: %s is not a regular file", c->keylog_file);
		close(fd);
		return -1;
	}
	t->keylog_fd = fd;
	diag_warn_at(d, at, "host '%s': keylog_file is set: TLS secrets of its connections "
	    "are written to %s; anyone who can read it can decrypt them", c->label,
	    c->keylog_file);
	if (st.st_mode & 0077)
		diag_warn_at(d, at, "host '%s': keylog_file %s is readable or writable by "
		    "others than its owner (mode %04o)", c->label, c->keylog_file,
		    (unsigned)(st.st_mode & 07777));
	return 0;
}

void
tls_give_files(struct generation *g, const char *user, const char *group)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;

	if (user == NULL || geteuid() != 0 || (pw = getpwnam(user)) == NULL)
		return;	/* priv_drop reports an unknown user */
	gid = pw->pw_gid;
	if (group != NULL && (gr = getgrnam(group)) != NULL)
		gid = gr->gr_gid;
	for (size_t i = 0; i < g->n_hosts; i++) {
		const struct host *h = &g->hosts[i];
		const struct tls_host *t = h->tls;
		if (t != NULL && t->keylog_fd >= 0 && t->keylog_created &&
		    fchown(t->keylog_fd, pw->pw_uid, gid) != 0)
			log_warn("host %s: keylog_file %s: cannot give it to user %s: %s",
			    h->cfg->label, h->cfg->keylog_file, user, strerror(errno));
	}
}

/* One key log line ("LABEL CLIENT_RANDOM SECRET") per call, set on the
 * settings contexts of hosts with keylog_file (see tls_accept.c for why
 * there), written in one write(2). */
void
tls_keylog_cb(const SSL *ssl, const char *line)
{
	const struct tls_info *info = tls_info_of(ssl);
	const struct host *h = info != NULL ? info->host : NULL;
	char buf[512], *out = buf;
	size_t n = strlen(line);

	if (h == NULL || h->tls->keylog_fd < 0)
		return;
	if (n + 1 > sizeof(buf) && (out = malloc(n + 1)) == NULL)
		return;
	memcpy(out, line, n);
	out[n] = '\n';
	if (write(h->tls->keylog_fd, out, n + 1) != (ssize_t)(n + 1))
		log_debug("host %s: keylog_file: short write", h->cfg->label);
	OPENSSL_cleanse(out, n + 1);
	if (out != buf)
		free(out);
}
