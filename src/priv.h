/*
 * priv.h: dropping root privileges after the listening sockets are open.
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

#endif
