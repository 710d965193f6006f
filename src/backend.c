/* backend.c: see backend.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "backend.h"

int
backend_dial(const struct addr *a)
{
	int fd, one = 1, saved;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (a->ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
backend_connect_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

/*
 * One readv of up to max bytes (libevent's own socket reads take 4096,
 * which made a download 4 KiB TLS records).
 */
static ssize_t
end_read(void *arg, struct evbuffer *buf, size_t max, int *more)
{
	struct backend_end *e = arg;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t got;
	size_t left;
	int nv;

	*more = 0;
	if (e->at_eof)
		return 0;
	if ((nv = evbuffer_reserve_space(buf, (ev_ssize_t)max, v, 2)) < 0) {
		e->sys_errno = ENOMEM;
		return RELAY_IO_FAIL;
	}
	/* the space reserved may be larger than max: ask for max at most,
	 * since a read that fills what it asked for says "more" */
	left = max;
	for (int i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
		left -= iov[i].iov_len;
	}
	got = readv(e->fd, iov, nv);
	if (got <= 0) {
		int err = errno;
		(void)evbuffer_commit_space(buf, v, 0);
		if (got == 0)
			return 0;
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			return RELAY_IO_AGAIN;
		e->sys_errno = err;
		return RELAY_IO_FAIL;
	}
	left = (size_t)got;
	for (int i = 0; i < nv; i++) {
		size_t take = left < v[i].iov_len ? left : v[i].iov_len;
		v[i].iov_len = take;
		left -= take;
	}
	(void)evbuffer_commit_space(buf, v, nv);
	/*
	 * A short read emptied the socket of data, but not of what may follow
	 * it: a FIN or a reset that came with the data raises no new event
	 * (edge-triggered). The FIN we know of (EV_CLOSED, EPOLLRDHUP): the
	 * next call returns the EOF without a read. A reset libevent 2.1
	 * reports as a plain READ|WRITE event, like any other: so read again
	 * until EAGAIN, one system call, or a reset backend would hold its
	 * client until idle_timeout.
	 */
	if ((size_t)got < max && e->eof_pending)
		e->at_eof = 1;
	*more = 1;
	return got;
}

static ssize_t
end_write(void *arg, struct evbuffer *buf)
{
	struct backend_end *e = arg;
	int n = evbuffer_write(buf, e->fd);

	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return RELAY_IO_AGAIN_WRITE;
	e->sys_errno = n < 0 ? errno : EPIPE;
	return RELAY_IO_FAIL;
}

static int
end_shutdown(void *arg)
{
	struct backend_end *e = arg;

	if (shutdown(e->fd, SHUT_WR) == 0 || errno == ENOTCONN)
		return 0;
	e->sys_errno = errno;
	return RELAY_IO_FAIL;
}

const struct relay_io backend_io = {
	.read = end_read,
	.write = end_write,
	.shutdown = end_shutdown,
	.close_ends_writing = 1,
};
