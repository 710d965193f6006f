/*
 * fuzz_addr.c: libFuzzer target for src/addr.c: addr_parse, addr_format,
 * addr_equal, cidr_parse and cidr_match.
 *
 * Input: a text (the bytes before the first NUL, at most 511) parsed both as
 * an address and as a network; the bytes after the NUL, if any, are a peer
 * address (4 or 16 bytes) matched against the network. Host names are
 * resolved by resolver_stub.c, never by DNS. Checked:
 *
 *  - addr_parse returns 0 or -1; -1 always says why; on success the family,
 *    length, port (the decimal number after the last ':') and canonical text
 *    are consistent, the text parses back to an equal address with the same
 *    text, and addr_format gives that text again, also into short buffers;
 *  - cidr_parse returns 0 or -1; on success the prefix fits the family, no
 *    host bit is set, "ADDRESS/PREFIX" as inet_ntop writes it parses back to
 *    the same network; cidr_match agrees with a bit-by-bit reference for
 *    the network's own address, for every address one bit away from it, for
 *    their IPv4-mapped IPv6 forms and for the peer of the input.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz.h"

#define ERRLEN 256
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

static int
all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* addr_format into every short buffer: always terminated, a prefix of the whole. */
static void
check_format(const struct sockaddr *sa, socklen_t len)
{
	char whole[ADDR_TEXT_MAX], part[ADDR_TEXT_MAX];
	size_t n;

	CHECK(addr_format(sa, len, whole, sizeof(whole)) == whole);
	n = strlen(whole);
	CHECK(n > 0 && n < sizeof(whole));
	for (size_t k = 1; k <= n + 1 && k <= sizeof(part); k++) {
		memset(part, 0x55, sizeof(part));
		addr_format(sa, len, part, k);
		CHECK(strlen(part) == (k - 1 < n ? k - 1 : n));
		CHECK(memcmp(part, whole, strlen(part)) == 0);
	}
}

static void
check_addr(const char *s)
{
	struct addr a, b;
	char err[ERRLEN], text[ADDR_TEXT_MAX];
	int r;

	memset(err, 0, sizeof(err));
	r = addr_parse(s, &a, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (r != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(memchr(a.text, '\0', sizeof(a.text)) != NULL);
	CHECK(addr_equal(&a, &a));
	switch (a.ss.ss_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const void *)&a.ss;
		const char *colon = strrchr(s, ':');
		CHECK(a.len == sizeof(*sin) && s[0] != '[');
		CHECK(colon != NULL && all_digits(colon + 1));
		CHECK(strtoul(colon + 1, NULL, 10) == ntohs(sin->sin_port));
		CHECK(ntohs(sin->sin_port) != 0);
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const void *)&a.ss;
		const char *colon = strrchr(s, ':');
		CHECK(a.len == sizeof(*sin6));
		CHECK(colon != NULL && all_digits(colon + 1));
		CHECK(strtoul(colon + 1, NULL, 10) == ntohs(sin6->sin6_port));
		CHECK(ntohs(sin6->sin6_port) != 0);
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const void *)&a.ss;
		size_t n = strnlen(sun->sun_path, sizeof(sun->sun_path));
		CHECK(n < sizeof(sun->sun_path) && sun->sun_path[0] == '/');
		CHECK(a.len == offsetof(struct sockaddr_un, sun_path) + n + 1);
		CHECK(strncmp(s, "unix:", 5) == 0 && strcmp(s + 5, sun->sun_path) == 0);
		CHECK(strcmp(a.text, s) == 0);
		break;
	}
	default:
		CHECK(!"unexpected address family");
	}
	/* the canonical text is what addr_format writes, and parses back */
	CHECK(strcmp(addr_format((const struct sockaddr *)&a.ss, a.len, text, sizeof(text)),
	    a.text) == 0);
	check_format((const struct sockaddr *)&a.ss, a.len);
	memset(err, 0, sizeof(err));
	CHECK(addr_parse(a.text, &b, err, sizeof(err)) == 0);
	CHECK(addr_equal(&a, &b) && addr_equal(&b, &a));
	CHECK(a.len == b.len && strcmp(a.text, b.text) == 0);
}

/* bit i (0 = most significant of byte 0) of a */
static int
bit(const unsigned char *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* The reference: the first `prefix` bits of peer and net are the same. */
static int
ref_match(const unsigned char *net, unsigned prefix, const unsigned char *peer)
{
	for (unsigned i = 0; i < prefix; i++)
		if (bit(net, i) != bit(peer, i))
			return 0;
	return 1;
}

/* The reference for an IPv6 peer: a v4 network matches only v4-mapped
 * addresses (::ffff:a.b.c.d), by their last 4 bytes. */
static int
ref_match6(const struct cidr *c, const unsigned char *a)
{
	if (c->family == AF_INET6)
		return ref_match(c->addr, c->prefix, a);
	return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 &&
	    ref_match(c->addr, c->prefix, a + 12);
}

/* cidr_match against the reference, for peer (4 bytes if v4, else 16); a
 * v4 peer also as ::ffff:a.b.c.d and as ::a.b.c.d. */
static void
check_match(const struct cidr *c, const unsigned char *peer, int v4)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (v4) {
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, peer, 4);
		CHECK(cidr_match(c, (const struct sockaddr *)&sin) ==
		    (c->family == AF_INET && ref_match(c->addr, c->prefix, peer)));
		memset(sin6.sin6_addr.s6_addr + 10, 0xff, 2);
		memcpy(sin6.sin6_addr.s6_addr + 12, peer, 4);
		CHECK(cidr_match(c, (const struct sockaddr *)&sin6) ==
		    ref_match6(c, sin6.sin6_addr.s6_addr));
		memset(sin6.sin6_addr.s6_addr + 10, 0, 2);
		CHECK(cidr_match(c, (const struct sockaddr *)&sin6) ==
		    ref_match6(c, sin6.sin6_addr.s6_addr));
	} else {
		memcpy(&sin6.sin6_addr, peer, 16);
		CHECK(cidr_match(c, (const struct sockaddr *)&sin6) == ref_match6(c, peer));
	}
}

static void
check_cidr(const char *s, const uint8_t *peer, size_t peer_len)
{
	struct cidr c, c2;
	struct sockaddr_un sun;
	char err[ERRLEN], ip[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN + 8];
	unsigned max;
	int r;

	memset(err, 0, sizeof(err));
	r = cidr_parse(s, &c, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (r != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(c.family == AF_INET || c.family == AF_INET6);
	max = c.family == AF_INET ? 32 : 128;
	CHECK(c.prefix <= max);
	for (unsigned i = c.prefix; i < 128; i++)
		CHECK(bit(c.addr, i) == 0);	/* host bits, and bytes past a v4 address */
	CHECK(strchr(s, '/') != NULL || c.prefix == max);

	/* ADDRESS/PREFIX in inet_ntop's form: the same network */
	CHECK(inet_ntop(c.family, c.addr, ip, sizeof(ip)) != NULL);
	snprintf(again, sizeof(again), "%s/%u", ip, c.prefix);
	CHECK(cidr_parse(again, &c2, err, sizeof(err)) == 0);
	CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
	if (c.prefix == max) {
		CHECK(cidr_parse(ip, &c2, err, sizeof(err)) == 0);
		CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
	}

	/* the network's own address, and every address one bit away */
	for (unsigned i = 0; i <= max; i++) {
		unsigned char a[16];
		memcpy(a, c.addr, sizeof(a));
		if (i < max)
			a[i / 8] ^= (unsigned char)(0x80 >> (i % 8));
		CHECK(ref_match(c.addr, c.prefix, a) == (i >= c.prefix));
		check_match(&c, a, c.family == AF_INET);
	}
	if (peer_len >= 16)
		check_match(&c, peer, 0);
	if (peer_len >= 4)
		check_match(&c, peer, 1);
	/* other families never match */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK(cidr_match(&c, (const struct sockaddr *)&sun) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	const uint8_t *nul = memchr(data, '\0', size);
	size_t n = nul ? (size_t)(nul - data) : size;
	const uint8_t *peer = nul ? nul + 1 : data + size;
	size_t peer_len = (size_t)(data + size - peer);

	if (n >= sizeof(s))
		return 0;
	memcpy(s, data, n);
	s[n] = '\0';
	check_addr(s);
	check_cidr(s, peer, peer_len);

	/*
	 * addr_format on what the peer bytes make: peer[0] picks the family, the
	 * rest is the address (for AF_UNIX a path of that many bytes, NUL or
	 * not, as accept() and PROXY v2 can give). The copy is exactly len
	 * bytes long, so reading past len is caught.
	 */
	if (peer_len >= 1) {
		struct sockaddr_storage ss;
		size_t rest = peer_len - 1, len;
		void *exact;

		memset(&ss, 0, sizeof(ss));
		switch (peer[0] % 3) {
		case 0:
			ss.ss_family = AF_INET;
			len = sizeof(struct sockaddr_in);
			break;
		case 1:
			ss.ss_family = AF_INET6;
			len = sizeof(struct sockaddr_in6);
			break;
		default:
			ss.ss_family = AF_UNIX;
			len = offsetof(struct sockaddr_un, sun_path) +
			    (rest < SUN_PATH_MAX ? rest : SUN_PATH_MAX);
			break;
		}
		if (rest > len - sizeof(ss.ss_family))
			rest = len - sizeof(ss.ss_family);
		memcpy((char *)&ss + sizeof(ss.ss_family), peer + 1, rest);
		CHECK((exact = malloc(len)) != NULL);
		memcpy(exact, &ss, len);
		check_format(exact, (socklen_t)len);
		free(exact);
	}
	check_format(NULL, 0);
	return 0;
}
