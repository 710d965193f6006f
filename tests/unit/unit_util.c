/* unit_util.c: see unit_util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "unit_util.h"

int
unit_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own */
}

int
unit_tmpdir(char *dir, size_t size, const char *name)
{
	int n = snprintf(dir, size, "/tmp/%s.XXXXXX", name);

	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			dir[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		return -1;
	}
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

int
unit_rmtree(const char *dir)
{
	if (dir[0] == '\0')
		return 0;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

const char *
unit_path(const char *dir, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *p = bufs[next++ % 8];
	int n = snprintf(p, sizeof(bufs[0]), "%s/%s", dir, rel);

	if (n < 0 || (size_t)n >= sizeof(bufs[0]))
		fail_msg("path too long: %s/%s", dir, rel);
	return p;
}

void
unit_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

void
unit_put(const char *dir, const char *rel, const char *text)
{
	unit_write(unit_path(dir, rel), text, strlen(text));
}

static int saved_stderr = -1, stderr_rd = -1;

void
unit_stderr_start(void)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	stderr_rd = p[0];
}

void
unit_stderr_end(char *buf, size_t size)
{
	size_t got = 0;
	ssize_t r;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	/* the write end is closed now: read until empty (EOF) */
	while (got + 1 < size && (r = read(stderr_rd, buf + got, size - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = '\0';
	close(stderr_rd);
	stderr_rd = -1;
}

void
unit_print_diag(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_message("  diag: %s\n", d->msgs[i]);
}

int
unit_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
