/* priv.c: see priv.h. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"

int
priv_drop(const char *user, const char *group)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;

	if (user == NULL)
		return 0;
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_error("user %s: %s", user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	gid = pw->pw_gid;
	if (group != NULL) {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL) {
			log_error("group %s: %s", group, errno ? strerror(errno) : "no such group");
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid && getgid() == gid)
		return 0;	/* started as that user already */
	if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot become user %s (group %u): %s", user, (unsigned)gid,
		    strerror(errno));
		return -1;
	}
	/* the drop must stick: if root can be regained, refuse to go on */
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		log_error("could regain root after becoming %s; refusing to run", user);
		return -1;
	}
	log_info("running as user %s (uid %u, gid %u)", user, (unsigned)pw->pw_uid,
	    (unsigned)gid);
	return 0;
}

/*
 * Judged by the user's ids against the owner and mode of the file and of
 * every directory above it (access() would answer for root, who runs this),
 * following symbolic links (certbot's live/ names files in its archive/,
 * root-only by default). Where a POSIX ACL could grant what the mode bits
 * deny, the answer is yes: we cannot tell.
 */
#define DIRS_REMEMBERED 8

struct priv_reader {
	uid_t uid;
	gid_t *groups;			/* its primary group (or `group`) included */
	int n_groups;
	struct {			/* the verdicts of the last directories seen */
		char *path;
		int ok;
	} dirs[DIRS_REMEMBERED];
	size_t next_dir;
};

/* May r do `want` (4: read, 1: search) on path, whose stat is st? The
 * kernel's order: the owner's bits for the owner, else the group's for a
 * member of the group, else the others'. */
static int
reader_may(const struct priv_reader *r, const char *path, const struct stat *st, unsigned want)
{
	unsigned bits = st->st_mode & 7;

	if (st->st_uid == r->uid) {
		bits = (st->st_mode >> 6) & 7;
	} else {
		for (int i = 0; i < r->n_groups; i++)
			if (r->groups[i] == st->st_gid) {
				bits = (st->st_mode >> 3) & 7;
				break;
			}
	}
	if ((bits & want) == want)
		return 1;
	return getxattr(path, "system.posix_acl_access", NULL, 0) > 0;
}

/* Can r search dir and every directory above it? 1 also when we cannot
 * tell (a path that does not exist: loading it reports that). */
static int
reader_walk(const struct priv_reader *r, const char *dir)
{
	char *p = strdup(dir);
	struct stat st;
	int ok = 1;

	if (p == NULL)
		return 1;
	for (size_t i = 0, len = strlen(p); ok && i <= len; i++) {
		char c = p[i];
		if (c != '/' && c != '\0')
			continue;
		size_t end = i == 0 ? 1 : i;	/* "/" itself, then each prefix */
		char save = p[end];
		p[end] = '\0';
		if (stat(p, &st) == 0 && !reader_may(r, p, &st, 1))
			ok = 0;
		p[end] = save;
	}
	free(p);
	return ok;
}

static int
reader_dir_ok(struct priv_reader *r, const char *dir)
{
	char *real;
	int ok;

	for (size_t i = 0; i < DIRS_REMEMBERED; i++)
		if (r->dirs[i].path != NULL && strcmp(r->dirs[i].path, dir) == 0)
			return r->dirs[i].ok;
	ok = reader_walk(r, dir);
	/* the directories a symbolic link in the path leads through */
	if (ok && (real = realpath(dir, NULL)) != NULL) {
		if (strcmp(real, dir) != 0)
			ok = reader_walk(r, real);
		free(real);
	}
	size_t i = r->next_dir++ % DIRS_REMEMBERED;
	free(r->dirs[i].path);
	r->dirs[i].path = strdup(dir);
	r->dirs[i].ok = ok;
	return ok;
}

int
priv_can_read(struct priv_reader *r, const char *path)
{
	char *copy = strdup(path), *slash, *real = NULL;
	struct stat st;
	int ok = 1;

	if (copy == NULL || (slash = strrchr(copy, '/')) == NULL)
		goto out;
	slash[slash == copy] = '\0';	/* its directory ("/" for /x) */
	if (!reader_dir_ok(r, copy)) {
		ok = 0;
		goto out;
	}
	if (lstat(path, &st) != 0)
		goto out;
	if (S_ISLNK(st.st_mode)) {
		/* the target, through its own directories */
		if ((real = realpath(path, NULL)) == NULL || stat(real, &st) != 0)
			goto out;
		free(copy);
		if ((copy = strdup(real)) == NULL)
			goto out;
		slash = strrchr(copy, '/');
		slash[slash == copy] = '\0';
		if (!reader_dir_ok(r, copy)) {
			ok = 0;
			goto out;
		}
	}
	ok = reader_may(r, real != NULL ? real : path, &st, 4);
out:
	free(copy);
	free(real);
	return ok;
}

int
priv_can_write_dir(struct priv_reader *r, const char *dir)
{
	char *p = strdup(dir), *slash;
	struct stat st;
	int ok = 1;

	if (p == NULL)
		return 1;
	/* the nearest part of the path that exists: what must let us in */
	while (stat(p, &st) != 0 && (slash = strrchr(p, '/')) != NULL)
		slash[slash == p] = '\0';
	if (stat(p, &st) != 0)
		goto out;	/* cannot tell */
	if (!S_ISDIR(st.st_mode)) {
		ok = 0;
		goto out;
	}
	if (r == NULL)
		ok = access(p, W_OK | X_OK) == 0;
	else
		ok = reader_walk(r, p) && reader_may(r, p, &st, 3);
out:
	free(p);
	return ok;
}

struct priv_reader *
priv_reader_new(const char *user, const char *group)
{
	struct priv_reader *r;
	struct passwd *pw;
	struct group *gr;
	gid_t gid;
	int n = 32;

	if (user == NULL || geteuid() != 0 || (pw = getpwnam(user)) == NULL ||
	    pw->pw_uid == 0)
		return NULL;	/* nobody to become, or priv_drop reports an unknown user */
	gid = pw->pw_gid;
	uid_t uid = pw->pw_uid;
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL)
			return NULL;
		gid = gr->gr_gid;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->uid = uid;
	/* the groups priv_drop's initgroups() will give */
	for (;;) {
		int want = n;
		gid_t *v = realloc(r->groups, (size_t)want * sizeof(*v));
		if (v == NULL) {
			priv_reader_free(r);
			return NULL;
		}
		r->groups = v;
		if (getgrouplist(user, gid, r->groups, &n) >= 0)
			break;
		if (n <= want)
			n = want * 2;
	}
	r->n_groups = n;
	return r;
}

void
priv_reader_free(struct priv_reader *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < DIRS_REMEMBERED; i++)
		free(r->dirs[i].path);
	free(r->groups);
	free(r);
}
