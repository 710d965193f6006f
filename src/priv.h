/*
 * priv.h: dropping root privileges after the listening sockets are open, and
 * telling beforehand which files the user will not be able to read.
 */
#ifndef TLSFRONT_PRIV_H
#define TLSFRONT_PRIV_H

/*
 * Become user (and group, or the user's primary group when group is NULL),
 * with the user's supplementary groups (e.g. Debian's ssl-cert), for good:
 * real, effective and saved ids. user NULL: nothing to do. Returns 0, or -1
 * after logging why; the caller must then not go on as root.
 */
int priv_drop(const char *user, const char *group);

/*
 * Could `user` (with `group` and its supplementary groups, as priv_drop will
 * give them) read files? For warning, while still root, about files every
 * later reload, run as that user, would fail to read.
 *
 * priv_reader_new: NULL when there is nothing to check (user NULL, not
 * running as root, unknown user or group, user root) or out of memory.
 * priv_can_read: path absolute; 1 if the user could read it, or when it
 * cannot tell (no such file: loading reports that; an ACL); 0 if the mode
 * bits of the file or of a directory on its way (symbolic links followed)
 * keep the user out. priv_reader_free(NULL) is a no-op.
 */
struct priv_reader;
struct priv_reader *priv_reader_new(const char *user, const char *group);
int priv_can_read(struct priv_reader *r, const char *path);

/*
 * Could the user (r; NULL: this process, as it is) create and rename files
 * in the directory dir (absolute), or create dir where it does not exist
 * yet (then the nearest directory above it that exists counts)? 1 yes, or
 * when it cannot tell (an ACL); 0 if the mode bits of dir or of a directory
 * on its way keep the user out, or dir is not a directory.
 */
int priv_can_write_dir(struct priv_reader *r, const char *dir);
void priv_reader_free(struct priv_reader *r);

#endif
