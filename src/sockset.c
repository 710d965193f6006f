/* sockset.c: see sockset.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sockset.h"

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
	/* Linux gives every accepted socket the listener's TCP_NODELAY: one
	 * setsockopt here instead of one per connection */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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

void
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

int
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
			l->fds[s] = prev && s < prev->n ? fcntl(prev->fds[s], F_DUPFD_CLOEXEC, 0) :
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

