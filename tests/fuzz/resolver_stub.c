/*
 * resolver_stub.c: getaddrinfo() and freeaddrinfo() for the fuzz targets
 * that reach addr_parse() (fuzz_addr, fuzz_config).
 *
 * addr_parse() resolves a host name that is not an IP literal with
 * getaddrinfo(). A fuzzer must not send DNS queries (slow, noisy, and the
 * result would depend on the network), so these definitions, linked into
 * the fuzz binary, take the place of the C library's: "localhost" is
 * 127.0.0.1, "ip6-localhost" is ::1, anything else is EAI_NONAME. The
 * names are compared as the resolver does, case-insensitively.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct stub_ai {
	struct addrinfo ai;
	struct sockaddr_storage ss;
};

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	struct stub_ai *s;

	(void)service;
	*res = NULL;
	if (node == NULL)
		return EAI_NONAME;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return EAI_MEMORY;
	s->ai.ai_socktype = hints != NULL ? hints->ai_socktype : 0;
	s->ai.ai_addr = (struct sockaddr *)&s->ss;
	if (strcasecmp(node, "localhost") == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&s->ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->ai.ai_family = AF_INET;
		s->ai.ai_addrlen = sizeof(*sin);
	} else if (strcasecmp(node, "ip6-localhost") == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		s->ai.ai_family = AF_INET6;
		s->ai.ai_addrlen = sizeof(*sin6);
	} else {
		free(s);
		return EAI_NONAME;
	}
	*res = &s->ai;
	return 0;
}

void
freeaddrinfo(struct addrinfo *ai)
{
	free(ai);	/* the first member of struct stub_ai */
}
