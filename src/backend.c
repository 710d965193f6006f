/* backend.c: see backend.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"

struct bufferevent *
backend_dial(struct event_base *base, const struct addr *a)
{
	struct bufferevent *bev;
	int fd, one = 1, saved;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (a->ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS)
		goto err;
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		goto err;
	/* The connect is under way (or done): libevent waits for writability,
	 * reads SO_ERROR and reports CONNECTED or ERROR. */
	if (bufferevent_socket_connect(bev, NULL, 0) != 0) {
		saved = errno;
		bufferevent_free(bev);
		errno = saved;
		return NULL;
	}
	return bev;
err:
	saved = errno;
	close(fd);
	errno = saved;
	return NULL;
}
