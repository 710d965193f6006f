/* priv.c: see priv.h. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
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
