/*
 * test_priv.c: priv.c: when there is a user to check files for
 * (priv_reader_new), whether that user could read a file (priv_can_read:
 * owner, group and other bits of the file and of every directory on its
 * way, symbolic links followed), and dropping root for good (priv_drop, in
 * a child process).
 *
 * The user is "nobody" (group "nogroup"), "daemon" the other group. The
 * files are a tree in a temporary directory, given owners and modes with
 * chown and chmod: that needs root, so those tests are skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "priv.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	uid_t nobody;
	gid_t nogroup, daemon_gid;
	struct priv_reader *r;	/* for nobody */
};

static void
mkfile(const struct fixture *f, const char *rel, mode_t mode, uid_t uid, gid_t gid)
{
	const char *p = unit_path(f->dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		fail_msg("open %s: %s", p, strerror(errno));
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
	assert_int_equal(chown(p, uid, gid), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static void
mkdirectory(const struct fixture *f, const char *rel, mode_t mode, uid_t uid, gid_t gid)
{
	const char *p = unit_path(f->dir, rel);

	if (mkdir(p, 0700) != 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
	assert_int_equal(chown(p, uid, gid), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static void
mklink(const struct fixture *f, const char *target, const char *rel)
{
	assert_int_equal(symlink(target, unit_path(f->dir, rel)), 0);
}

static int
can_read(const struct fixture *f, const char *rel)
{
	return priv_can_read(f->r, unit_path(f->dir, rel));
}

/* Root only: the tree is made and nobody's reader with it. */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct passwd *pw;
	struct group *gr;

	assert_non_null(f);
	*state = f;
	if (geteuid() != 0)
		return 0;	/* the test skips */
	/* (each call overwrites the struct the one before returned) */
	if ((pw = getpwnam("nobody")) == NULL)
		return 0;
	f->nobody = pw->pw_uid;
	if ((gr = getgrnam("nogroup")) == NULL)
		return 0;
	f->nogroup = gr->gr_gid;
	if ((gr = getgrnam("daemon")) == NULL)
		return 0;
	f->daemon_gid = gr->gr_gid;
	if (pw->pw_gid != f->nogroup)
		return 0;	/* not Debian's nobody */
	assert_int_equal(unit_tmpdir(f->dir, sizeof(f->dir), "test_priv"), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	f->r = priv_reader_new("nobody", NULL);
	assert_non_null(f->r);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	priv_reader_free(f->r);
	(void)unit_rmtree(f->dir);	/* "" if the test skipped */
	free(f);
	return 0;
}

#define NEED_ROOT(f) do { if ((f)->r == NULL) skip(); } while (0)

/* ------------------------------------------------------------------ */
/* priv_reader_new                                                      */

/* Nobody to check for: no user, root, unknown user or group; and nothing
 * to check when not running as root (no file could be out of reach that
 * is not already). */
static void
test_reader_new_null(void **state)
{
	struct priv_reader *r;

	assert_null(priv_reader_new(NULL, NULL));
	assert_null(priv_reader_new(NULL, "nogroup"));
	assert_null(priv_reader_new("root", NULL));
	assert_null(priv_reader_new("root", "nogroup"));
	assert_null(priv_reader_new("no-such-user-tlsfront-test", NULL));
	assert_null(priv_reader_new("nobody", "no-such-group-tlsfront-test"));
	if (geteuid() != 0) {
		assert_null(priv_reader_new("nobody", NULL));
		return;
	}
	/* as root: a reader; with root's effective uid set aside, none */
	r = priv_reader_new("nobody", NULL);
	assert_non_null(r);
	priv_reader_free(r);
	assert_int_equal(seteuid(65534), 0);
	r = priv_reader_new("nobody", NULL);
	assert_int_equal(seteuid(0), 0);
	assert_null(r);
	priv_reader_free(NULL);
}

/* ------------------------------------------------------------------ */
/* priv_can_read                                                        */

/* The file's own bits, in the kernel's order: the owner's for the owner
 * (even when group or others would allow), else the group's for a member,
 * else the others'. */
static void
test_file_modes(void **state)
{
	struct fixture *f = *state;

	NEED_ROOT(f);
	mkfile(f, "public", 0644, 0, 0);
	mkfile(f, "private", 0600, 0, 0);
	mkfile(f, "owned", 0600, f->nobody, 0);
	mkfile(f, "owned-no-read", 0044, f->nobody, 0);
	mkfile(f, "group", 0640, 0, f->nogroup);
	mkfile(f, "group-other", 0640, 0, f->daemon_gid);
	mkfile(f, "group-no-read", 0604, 0, f->nogroup);
	mkfile(f, "other-write-only", 0602, 0, 0);
	assert_int_equal(can_read(f, "public"), 1);
	assert_int_equal(can_read(f, "private"), 0);
	assert_int_equal(can_read(f, "owned"), 1);
	assert_int_equal(can_read(f, "owned-no-read"), 0);
	assert_int_equal(can_read(f, "group"), 1);
	assert_int_equal(can_read(f, "group-other"), 0);
	assert_int_equal(can_read(f, "group-no-read"), 0);
	assert_int_equal(can_read(f, "other-write-only"), 0);
	/* no such file: loading reports that, not this */
	assert_int_equal(can_read(f, "missing"), 1);
}

/* Every directory on the way must let the user search it (x); reading the
 * directory (r) is not needed and not enough. */
static void
test_directories(void **state)
{
	struct fixture *f = *state;

	NEED_ROOT(f);
	mkdirectory(f, "closed", 0700, 0, 0);
	mkfile(f, "closed/f", 0644, 0, 0);
	mkdirectory(f, "search-only", 0711, 0, 0);
	mkfile(f, "search-only/f", 0644, 0, 0);
	mkdirectory(f, "read-only", 0744, 0, 0);
	mkfile(f, "read-only/f", 0644, 0, 0);
	mkdirectory(f, "group-dir", 0750, 0, f->nogroup);
	mkfile(f, "group-dir/f", 0644, 0, 0);
	mkdirectory(f, "owner-dir", 0700, f->nobody, 0);
	mkfile(f, "owner-dir/f", 0644, 0, 0);
	mkdirectory(f, "a", 0755, 0, 0);
	mkdirectory(f, "a/b", 0700, 0, 0);
	mkdirectory(f, "a/b/c", 0755, 0, 0);
	mkfile(f, "a/b/c/f", 0644, 0, 0);
	assert_int_equal(can_read(f, "closed/f"), 0);
	assert_int_equal(can_read(f, "search-only/f"), 1);
	assert_int_equal(can_read(f, "read-only/f"), 0);
	assert_int_equal(can_read(f, "group-dir/f"), 1);
	assert_int_equal(can_read(f, "owner-dir/f"), 1);
	assert_int_equal(can_read(f, "a/b/c/f"), 0);	/* one directory in the middle */
	assert_int_equal(can_read(f, "closed/missing"), 0);
	/* the whole tree closed: nothing in it */
	assert_int_equal(chmod(f->dir, 0700), 0);
	priv_reader_free(f->r);	/* a new reader: the old remembers directories */
	assert_non_null(f->r = priv_reader_new("nobody", NULL));
	assert_int_equal(can_read(f, "search-only/f"), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
}

/* Symbolic links are followed: the target's bits and the directories on
 * the target's way count (certbot's live/ links into archive/). */
static void
test_symlinks(void **state)
{
	struct fixture *f = *state;

	NEED_ROOT(f);
	mkdirectory(f, "archive", 0700, 0, 0);
	mkfile(f, "archive/cert.pem", 0644, 0, 0);
	mkdirectory(f, "open", 0755, 0, 0);
	mkfile(f, "open/cert.pem", 0644, 0, 0);
	mkfile(f, "open/key.pem", 0600, 0, 0);
	mkdirectory(f, "live", 0755, 0, 0);
	mklink(f, unit_path(f->dir, "archive/cert.pem"), "live/to-archive.pem");
	mklink(f, "../open/cert.pem", "live/to-open.pem");
	mklink(f, "../open/key.pem", "live/to-key.pem");
	mklink(f, "../nowhere/x.pem", "live/dangling.pem");
	mklink(f, unit_path(f->dir, "archive"), "live/dir");	/* a directory link */
	mklink(f, unit_path(f->dir, "open"), "live/open-dir");
	/* an open directory inside a closed one, through a link: the link's
	 * target itself lets the user search it, what is above it does not */
	mkdirectory(f, "archive/sub", 0755, 0, 0);
	mkfile(f, "archive/sub/cert.pem", 0644, 0, 0);
	mklink(f, unit_path(f->dir, "archive/sub"), "live/sub-dir");
	assert_int_equal(can_read(f, "live/to-archive.pem"), 0);
	assert_int_equal(can_read(f, "live/to-open.pem"), 1);
	assert_int_equal(can_read(f, "live/to-key.pem"), 0);
	assert_int_equal(can_read(f, "live/dangling.pem"), 1);	/* cannot tell */
	assert_int_equal(can_read(f, "live/dir/cert.pem"), 0);
	assert_int_equal(can_read(f, "live/open-dir/cert.pem"), 1);
	assert_int_equal(can_read(f, "live/sub-dir/cert.pem"), 0);
	mklink(f, unit_path(f->dir, "archive/sub/cert.pem"), "live/to-sub.pem");
	assert_int_equal(can_read(f, "live/to-sub.pem"), 0);
}

/* `group` replaces the user's primary group (as priv_drop's setgid and
 * initgroups do): its files are readable, the primary group's no more. */
static void
test_group_option(void **state)
{
	struct fixture *f = *state;
	struct priv_reader *r;

	NEED_ROOT(f);
	mkfile(f, "daemon-group", 0640, 0, f->daemon_gid);
	mkfile(f, "nogroup-group", 0640, 0, f->nogroup);
	assert_non_null(r = priv_reader_new("nobody", "daemon"));
	assert_int_equal(priv_can_read(r, unit_path(f->dir, "daemon-group")), 1);
	assert_int_equal(priv_can_read(r, unit_path(f->dir, "nogroup-group")), 0);
	priv_reader_free(r);
	assert_int_equal(can_read(f, "daemon-group"), 0);
	assert_int_equal(can_read(f, "nogroup-group"), 1);
}

/* ------------------------------------------------------------------ */
/* priv_drop                                                            */

/* In a child: priv_drop(user, group) and what the process is afterwards.
 * Exit 0 when every id is as wanted and root cannot be regained, else the
 * number of the check that failed. */
static int
drop_in_child(const char *user, const char *group, uid_t uid, gid_t gid)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		gid_t groups[64];
		int n;

		if (priv_drop(user, group) != 0)
			_exit(1);
		if (getuid() != uid || geteuid() != uid)
			_exit(2);
		if (getgid() != gid || getegid() != gid)
			_exit(3);
		if ((n = getgroups(64, groups)) < 0)
			_exit(4);
		for (int i = 0; i < n; i++)
			if (groups[i] == 0)
				_exit(5);	/* root's groups kept */
		if (setuid(0) == 0 || seteuid(0) == 0)
			_exit(6);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_drop(void **state)
{
	struct fixture *f = *state;

	NEED_ROOT(f);
	assert_int_equal(drop_in_child("nobody", NULL, f->nobody, f->nogroup), 0);
	assert_int_equal(drop_in_child("nobody", "daemon", f->nobody, f->daemon_gid), 0);
	assert_int_equal(drop_in_child("no-such-user-tlsfront-test", NULL, 0, 0), 1);
	assert_int_equal(drop_in_child("nobody", "no-such-group-tlsfront-test", 0, 0), 1);
	/* this process is still root */
	assert_int_equal(getuid(), 0);
	assert_int_equal(geteuid(), 0);
}

/* Nothing to do: no user, or already that user. */
static void
test_drop_nothing_to_do(void **state)
{
	struct passwd *pw = getpwuid(getuid());
	uid_t uid = getuid(), euid = geteuid();
	gid_t gid = getgid();

	assert_int_equal(priv_drop(NULL, NULL), 0);
	assert_int_equal(getuid(), uid);
	assert_int_equal(geteuid(), euid);
	if (pw == NULL || uid != euid)
		return;
	/* the user it already is (root as root included): no change */
	if (gid == pw->pw_gid) {
		assert_int_equal(priv_drop(pw->pw_name, NULL), 0);
		assert_int_equal(getuid(), uid);
		assert_int_equal(geteuid(), euid);
		assert_int_equal(getgid(), gid);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_new_null),
		cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
		cmocka_unit_test(test_drop_nothing_to_do),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
