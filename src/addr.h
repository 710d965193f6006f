/*
 * addr.h: socket addresses as written in the config.
 *
 *   127.0.0.1:8080   [::1]:8443   localhost:8080   unix:/run/app.sock
 *
 * Pure apart from name resolution (getaddrinfo, only for non-numeric hosts,
 * done once at config load). Knows nothing of listeners or connections.
 */
#ifndef TLSFRONT_ADDR_H
#define TLSFRONT_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 128

struct addr {
	struct sockaddr_storage ss;	/* sockaddr_in, _in6 or _un */
	socklen_t len;
	char text[ADDR_TEXT_MAX];	/* canonical form, for logs and errors */
};

/* Parse s into *out. Returns 0, or -1 with a message in err. A port is
 * required for TCP (1..65535); a unix path must be absolute and fit in
 * sun_path. */
int addr_parse(const char *s, struct addr *out, char *err, size_t errlen);

/* Parse s as addr_parse does, but a host name gives every address it
 * resolves to (as many as max, each once, in the resolver's order) in
 * out[0..]. Returns how many (1 for an address written as such), or -1
 * with a message in err. max >= 1. */
int addr_parse_all(const char *s, struct addr *out, size_t max, char *err, size_t errlen);

/* Same family, address, port (or path)? */
int addr_equal(const struct addr *a, const struct addr *b);

/* Format a peer address ("1.2.3.4:5", "[::1]:5", "unix") into buf. Returns buf. */
const char *addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n);

/* A network in CIDR notation ("10.0.0.0/8", "::1", "192.0.2.7"). */
struct cidr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network byte order, host bits zero */
	unsigned prefix;		/* 0..32 or 0..128 */
};

/* Parse s (an IP address, optionally "/prefix"). Returns 0, or -1 with a
 * message in err. Host bits set below the prefix are an error. */
int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen);

/* Is sa inside c? An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches IPv4
 * networks. */
int cidr_match(const struct cidr *c, const struct sockaddr *sa);

#endif
