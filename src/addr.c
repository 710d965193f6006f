/* addr.c: see addr.h. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

static int
parse_port(const char *p, unsigned *port)
{
	char *end;
	unsigned long v;

	if (*p < '0' || *p > '9')
		return -1;
	v = strtoul(p, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
addr_parse(const char *s, struct addr *out, char *err, size_t errlen)
{
	return addr_parse_all(s, out, 1, err, errlen) == 1 ? 0 : -1;
}

int
addr_parse_all(const char *s, struct addr *out, size_t max, char *err, size_t errlen)
{
	char host[256];
	const char *colon, *portstr;
	unsigned port;
	size_t hlen;
	int v6 = 0;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
		const char *path = s + 5;

		if (path[0] != '/') {
			snprintf(err, errlen, "unix socket path must be absolute: '%s'", s);
			return -1;
		}
		if (strlen(path) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "unix socket path too long (max %zu bytes): '%s'",
			    sizeof(sun->sun_path) - 1, s);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
		snprintf(out->text, sizeof(out->text), "unix:%s", path);
		return 1;
	}

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "bad address '%s' (expected [v6]:port)", s);
			return -1;
		}
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host)) {
			snprintf(err, errlen, "bad address '%s'", s);
			return -1;
		}
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		portstr = close + 2;
		v6 = 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "bad address '%s' (expected host:port, [v6]:port or unix:/path)", s);
			return -1;
		}
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(host) || memchr(s, ':', hlen) != NULL) {
			snprintf(err, errlen, "bad address '%s' (write IPv6 addresses as [v6]:port)", s);
			return -1;
		}
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		portstr = colon + 1;
	}
	if (parse_port(portstr, &port) != 0) {
		snprintf(err, errlen, "bad port in '%s' (expected 1..65535)", s);
		return -1;
	}

	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	if (!v6 && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
	} else if (v6 && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
	} else if (v6) {
		snprintf(err, errlen, "bad IPv6 address in '%s'", s);
		return -1;
	} else {
		struct addrinfo hints, *res = NULL;
		int rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_ADDRCONFIG;
		rc = getaddrinfo(host, NULL, &hints, &res);
		if (rc != 0 || res == NULL) {
			snprintf(err, errlen, "cannot resolve '%s': %s", host,
			    rc ? gai_strerror(rc) : "no address");
			return -1;
		}
		/* every address, each once (getaddrinfo may repeat one), in
		 * the resolver's order */
		size_t n = 0;
		for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
			struct addr *o = &out[n];
			if (ai->ai_addrlen > sizeof(o->ss))
				continue;
			memset(o, 0, sizeof(*o));
			memcpy(&o->ss, ai->ai_addr, ai->ai_addrlen);
			o->len = ai->ai_addrlen;
			if (o->ss.ss_family == AF_INET)
				((struct sockaddr_in *)&o->ss)->sin_port = htons((uint16_t)port);
			else
				((struct sockaddr_in6 *)&o->ss)->sin6_port = htons((uint16_t)port);
			int dup = 0;
			for (size_t j = 0; j < n; j++)
				dup |= addr_equal(&out[j], o);
			if (dup)
				continue;
			addr_format((struct sockaddr *)&o->ss, o->len, o->text, sizeof(o->text));
			n++;
		}
		freeaddrinfo(res);
		if (n == 0) {
			snprintf(err, errlen, "cannot resolve '%s': no usable address", host);
			return -1;
		}
		return (int)n;
	}
	addr_format((struct sockaddr *)&out->ss, out->len, out->text, sizeof(out->text));
	return 1;
}

int
addr_equal(const struct addr *a, const struct addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	switch (a->ss.ss_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	case AF_UNIX: {
		const struct sockaddr_un *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		return strcmp(x->sun_path, y->sun_path) == 0;
	}
	}
	return 0;
}

const char *
addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa == NULL || len == 0) {
		snprintf(buf, n, "-");
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, n, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, n, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)sa;
		/* The path ends at len, not necessarily at a NUL: a PROXY v2
		 * source (proxy.c v2_unix) or a full 108-byte sun_path has none,
		 * and "%s" printed what followed (in the access line, bytes of the
		 * balancer's own address after a short path; found by fuzz_addr). */
		size_t plen = len > offsetof(struct sockaddr_un, sun_path) ?
		    strnlen(sun->sun_path, len - offsetof(struct sockaddr_un, sun_path)) : 0;
		if (plen > 0 && sun->sun_path[0] != '\0')
			snprintf(buf, n, "unix:%.*s", (int)plen, sun->sun_path);
		else
			snprintf(buf, n, "unix");
	} else {
		snprintf(buf, n, "?");
	}
	return buf;
}

int
cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix;
	unsigned max;
	char *end;

	memset(out, 0, sizeof(*out));
	if (iplen == 0 || iplen >= sizeof(ip)) {
		snprintf(err, errlen, "bad network '%s'", s);
		return -1;
	}
	memcpy(ip, s, iplen);
	ip[iplen] = '\0';
	if (inet_pton(AF_INET, ip, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "bad network '%s' (expected an IP address, optionally "
		    "with /prefix)", s);
		return -1;
	}
	prefix = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9' ||
		    (prefix = strtoul(slash + 1, &end, 10), *end != '\0') || prefix > max) {
			snprintf(err, errlen, "bad prefix length in '%s' (0..%u)", s, max);
			return -1;
		}
	}
	out->prefix = (unsigned)prefix;
	for (unsigned bit = out->prefix; bit < max; bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			snprintf(err, errlen, "'%s' has host bits set below /%u", s, out->prefix);
			return -1;
		}
	return 0;
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const unsigned char *a;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa->sa_family == AF_INET && c->family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (c->family == AF_INET) {
			if (memcmp(a, mapped, sizeof(mapped)) != 0)
				return 0;
			a += 12;
		}
	} else {
		return 0;
	}
	for (unsigned bit = 0; bit < c->prefix; bit += 8) {
		unsigned n = c->prefix - bit >= 8 ? 8 : c->prefix - bit;
		unsigned char mask = (unsigned char)(0xff << (8 - n));
		if ((a[bit / 8] & mask) != c->addr[bit / 8])
			return 0;
	}
	return 1;
}
