/*
 * test_proxy.c: the PROXY protocol codec (proxy.h): v1 and v2 decoding fed
 * in pieces, encoding, round trips, every TLV, and malformed headers.
 *
 * Known answers are built by hand from doc/proxy-protocol.txt; CRC32C values
 * are the RFC 3720 (iSCSI) test vectors and one computed independently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxy.h"
#include "tls_facts.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

#define SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"
#define SA(ss) ((const struct sockaddr *)(const void *)&(ss))

/* What follows a header on a real connection: the start of a ClientHello. */
static const uint8_t tls_hello[] = {
	0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a
};

static struct sockaddr_storage
ss4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage
ss6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	return ss;
}

static struct sockaddr_storage
ssun(const char *path)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *su = (struct sockaddr_un *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	su->sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(su->sun_path));
	strcpy(su->sun_path, path);
	return ss;
}

static void
assert_sa4(const struct sockaddr_storage *ss, socklen_t len, const char *ip, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ss;
	char text[INET_ADDRSTRLEN];

	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
	assert_string_equal(text, ip);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void
assert_sa6(const struct sockaddr_storage *ss, socklen_t len, const char *ip, uint16_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)ss;
	struct in6_addr want;

	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, ip, &want), 1);
	assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void
assert_saun(const struct sockaddr_storage *ss, socklen_t len, const void *path, size_t n)
{
	const struct sockaddr_un *su = (const struct sockaddr_un *)(const void *)ss;

	assert_int_equal(su->sun_family, AF_UNIX);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + n);
	if (n > 0)
		assert_memory_equal(su->sun_path, path, n);
	if (n < sizeof(su->sun_path))
		assert_int_equal(su->sun_path[n], '\0');
}

/* proxy_decode() on a copy of exactly len bytes (so that a sanitizer would
 * catch a read past them). */
static ssize_t
decode_copy(const void *p, size_t len, struct proxy_info *info)
{
	uint8_t *buf = malloc(len > 0 ? len : 1);
	ssize_t r;

	assert_non_null(buf);
	if (len > 0)
		memcpy(buf, p, len);
	r = proxy_decode(buf, len, info);
	free(buf);
	return r;
}

/*
 * hdr[0..len) is one complete valid header: every strict prefix needs more
 * bytes, the whole is len, and so is the whole followed by TLS bytes or by a
 * second copy of itself, with the same result. *info gets the result.
 */
static void
decode_ok(const void *hdr, size_t len, struct proxy_info *info)
{
	struct proxy_info tmp;
	uint8_t *buf = malloc(2 * len + sizeof(tls_hello));
	ssize_t r;

	assert_non_null(buf);
	for (size_t k = 0; k < len; k++) {
		r = decode_copy(hdr, k, &tmp);
		if (r != 0)
			fail_msg("prefix of %zu of %zu bytes: %zd, want 0", k, len, r);
	}
	r = decode_copy(hdr, len, info);
	if (r != (ssize_t)len)
		fail_msg("whole header of %zu bytes: %zd", len, r);
	assert_true(r >= PROXY_MIN_HEADER && r <= PROXY_MAX_HEADER);

	memcpy(buf, hdr, len);
	memcpy(buf + len, tls_hello, sizeof(tls_hello));
	for (size_t extra = 1; extra <= sizeof(tls_hello); extra++) {
		assert_int_equal(proxy_decode(buf, len + extra, &tmp), len);
		assert_memory_equal(&tmp, info, sizeof(tmp));
	}
	memcpy(buf + len, hdr, len);
	assert_int_equal(proxy_decode(buf, 2 * len, &tmp), len);
	assert_memory_equal(&tmp, info, sizeof(tmp));
	free(buf);
}

/*
 * Some prefix of hdr[0..len) is rejected: returns the length of the shortest
 * one. Every shorter prefix must need more bytes; every longer one, and the
 * whole followed by TLS bytes, must be rejected too.
 */
static size_t
rejected_at(const void *hdr, size_t len)
{
	struct proxy_info tmp;
	uint8_t *buf;
	size_t first = 0;
	ssize_t r;

	for (size_t k = 0; k <= len; k++) {
		r = decode_copy(hdr, k, &tmp);
		if (first == 0 && r == 0)
			continue;
		if (r != -1)
			fail_msg("prefix of %zu of %zu bytes: %zd, want %s", k, len, r,
			    first == 0 ? "0 or -1" : "-1");
		if (first == 0)
			first = k;
	}
	if (first == 0)
		fail_msg("no prefix of the %zu bytes is rejected", len);
	buf = malloc(len + sizeof(tls_hello));
	assert_non_null(buf);
	memcpy(buf, hdr, len);
	memcpy(buf + len, tls_hello, sizeof(tls_hello));
	assert_int_equal(proxy_decode(buf, len + sizeof(tls_hello), &tmp), -1);
	free(buf);
	return first;
}

static void
v1_ok(const char *line, struct proxy_info *info)
{
	decode_ok(line, strlen(line), info);
	assert_int_equal(info->version, 1);
	assert_int_equal(info->have, 0);
}

static void
v1_bad(const char *line)
{
	rejected_at(line, strlen(line));
}

/* Hand-built v2 headers: a writer over a fixed buffer. */
struct hb {
	uint8_t b[PROXY_MAX_HEADER + 256];
	size_t len;
};

static void
hb_put(struct hb *h, const void *p, size_t n)
{
	assert_true(h->len + n <= sizeof(h->b));
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

/* Signature, version/command, family, and a zero length (see hb_fix). */
static void
hb_start(struct hb *h, uint8_t ver_cmd, uint8_t fam)
{
	uint8_t b[4] = { ver_cmd, fam, 0, 0 };

	h->len = 0;
	hb_put(h, SIG, 12);
	hb_put(h, b, 4);
}

static void
hb_tlv(struct hb *h, uint8_t type, const void *v, size_t n)
{
	uint8_t b[3] = { type, (uint8_t)(n >> 8), (uint8_t)n };

	hb_put(h, b, 3);
	hb_put(h, v, n);
}

static void
hb_str(struct hb *h, uint8_t type, const char *s)
{
	hb_tlv(h, type, s, strlen(s));
}

/* Set the length field to what has been written after the 16 bytes. */
static void
hb_fix(struct hb *h)
{
	size_t n = h->len - 16;

	h->b[14] = (uint8_t)(n >> 8);
	h->b[15] = (uint8_t)n;
}

/* An IPv4 TCP block: 192.0.2.1:56324 -> 198.51.100.2:443. */
static const uint8_t inet_block[12] = {
	192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb
};

static void
hb_inet(struct hb *h)
{
	hb_start(h, 0x21, 0x11);
	hb_put(h, inet_block, sizeof(inet_block));
}

/* ------------------------------------------------------------------ */
/* CRC32C                                                               */

static void
test_crc32c_known_answers(void **state)
{
	uint8_t b[32];

	assert_int_equal(proxy_crc32c(0, "123456789", 9), 0xE3069283);
	assert_int_equal(proxy_crc32c(0, "", 0), 0);
	/* RFC 3720, B.4 */
	memset(b, 0, sizeof(b));
	assert_int_equal(proxy_crc32c(0, b, 32), 0x8A9136AA);
	memset(b, 0xFF, sizeof(b));
	assert_int_equal(proxy_crc32c(0, b, 32), 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(proxy_crc32c(0, b, 32), 0x46DD794E);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(proxy_crc32c(0, b, 32), 0x113FDB5C);
}

static void
test_crc32c_chains(void **state)
{
	const char *s = "123456789";

	for (size_t cut = 0; cut <= 9; cut++)
		assert_int_equal(proxy_crc32c(proxy_crc32c(0, s, cut), s + cut, 9 - cut),
		    0xE3069283);
}

/* ------------------------------------------------------------------ */
/* v1 decoding                                                          */

static void
test_v1_tcp4(void **state)
{
	struct proxy_info pi;

	v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", &pi);
	assert_int_equal(pi.local, 0);
	assert_int_equal(pi.family, AF_INET);
	assert_int_equal(pi.socktype, SOCK_STREAM);
	assert_sa4(&pi.src, pi.src_len, "192.0.2.1", 56324);
	assert_sa4(&pi.dst, pi.dst_len, "198.51.100.2", 443);

	/* the longest: 56 bytes; and the extremes of every number */
	v1_ok("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", &pi);
	assert_int_equal(strlen("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), 56);
	assert_sa4(&pi.src, pi.src_len, "255.255.255.255", 65535);
	v1_ok("PROXY TCP4 0.0.0.0 10.0.0.1 0 1\r\n", &pi);
	assert_sa4(&pi.src, pi.src_len, "0.0.0.0", 0);
	assert_sa4(&pi.dst, pi.dst_len, "10.0.0.1", 1);
}

static void
test_v1_tcp6(void **state)
{
	struct proxy_info pi;
	const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

	v1_ok("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n", &pi);
	assert_int_equal(pi.local, 0);
	assert_int_equal(pi.family, AF_INET6);
	assert_sa6(&pi.src, pi.src_len, "2001:db8::1", 65535);
	assert_sa6(&pi.dst, pi.dst_len, "2001:db8::2", 0);

	v1_ok(longest, &pi);
	assert_int_equal(strlen(longest), 104);
	assert_sa6(&pi.dst, pi.dst_len, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);

	/* upper case, ::, a v4-mapped tail */
	v1_ok("PROXY TCP6 2001:DB8:0:0:0:0:0:1 :: 1 2\r\n", &pi);
	assert_sa6(&pi.src, pi.src_len, "2001:db8::1", 1);
	assert_sa6(&pi.dst, pi.dst_len, "::", 2);
	v1_ok("PROXY TCP6 ::ffff:192.0.2.1 ::1 443 8443\r\n", &pi);
	assert_sa6(&pi.src, pi.src_len, "::ffff:192.0.2.1", 443);
	assert_sa6(&pi.dst, pi.dst_len, "::1", 8443);
}

static void
test_v1_unknown(void **state)
{
	struct proxy_info pi;
	char line[PROXY_V1_MAX + 2];

	v1_ok("PROXY UNKNOWN\r\n", &pi);
	assert_int_equal(pi.local, 1);
	assert_int_equal(pi.family, AF_UNSPEC);
	assert_int_equal(pi.src_len, 0);
	assert_int_equal(pi.dst_len, 0);

	/* the rest of the line is ignored, whatever it is */
	v1_ok("PROXY UNKNOWN ffff:f::f:ffff ffff:f::f:ffff 65535 65535\r\n", &pi);
	assert_int_equal(pi.local, 1);
	v1_ok("PROXY UNKNOWN  junk \x01\xff 99999 x\r\n", &pi);
	assert_int_equal(pi.local, 1);

	/* the worst case of the spec, 107 bytes, is fine; 108 is not */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 105, "\r\n", 3);
	assert_int_equal(strlen(line), 107);
	v1_ok(line, &pi);
	assert_int_equal(pi.local, 1);
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 2);
	assert_int_equal(rejected_at(line, 108), 107);
}

static void
test_v1_no_crlf(void **state)
{
	char line[200];

	/* a bare LF, a bare CR, LF CR */
	assert_int_equal(rejected_at("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", 38), 38);
	assert_int_equal(rejected_at("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX", 39), 39);
	assert_int_equal(rejected_at("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n\r", 39), 38);
	assert_int_equal(rejected_at("PROXY UNKNOWN\n", 14), 14);
	assert_int_equal(rejected_at("PROXY UNKNOWN x\ry\r\n", 19), 17);
	assert_int_equal(rejected_at("PROXY UNKNOWN x\ny\r\n", 19), 16);
	assert_int_equal(rejected_at("PROXY UNKNOWN\r\r\n", 16), 15);

	/* the CR alone at the end: the line is complete but for its LF */
	{
		struct proxy_info pi;

		assert_int_equal(decode_copy("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 31, &pi), 0);
		assert_int_equal(decode_copy("PROXY UNKNOWN\r", 14, &pi), 0);
	}

	/* no CRLF within 107 bytes: rejected at the 107th */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	assert_int_equal(rejected_at(line, sizeof(line)), PROXY_V1_MAX);
}

static void
test_v1_bad_ips(void **state)
{
	static const char *const bad4[] = {
		"1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04",
		"1.2.3.00", "1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4a", "a.b.c.d",
		"1.2.3.-4", "1.2.3.4/8", "0x1.2.3.4", "1234.1.1.1", "1.2.3.4 ", "::1",
		"1.2.3.4:5", "", "1000.0.0.1", "4294967295",
	};
	static const char *const bad6[] = {
		"2001:db8::1::2", "2001:db8:::1", "1:2:3:4:5:6:7:8:9", "12345::1", "g::1",
		"fe80::1%eth0", "[::1]", "1.2.3.4", "::ffff:1.2.3.256", ":", "1:2:3:4:5:6:7",
		"::ffff:01.2.3.4", "", "2001:db8::1/64",
	};
	char line[256];

	for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++) {
		snprintf(line, sizeof(line), "PROXY TCP4 %s 192.0.2.2 1 2\r\n", bad4[i]);
		v1_bad(line);
		snprintf(line, sizeof(line), "PROXY TCP4 192.0.2.2 %s 1 2\r\n", bad4[i]);
		v1_bad(line);
	}
	for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++) {
		snprintf(line, sizeof(line), "PROXY TCP6 %s ::2 1 2\r\n", bad6[i]);
		v1_bad(line);
		snprintf(line, sizeof(line), "PROXY TCP6 ::2 %s 1 2\r\n", bad6[i]);
		v1_bad(line);
	}
}

static void
test_v1_bad_ports(void **state)
{
	static const char *const bad[] = {
		"65536", "99999", "100000", "012", "00", "-1", "+1", "1a", "0x10", "",
		"123456", "6553 5", "1.0", "\xd9\xa3",
	};
	char line[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "PROXY TCP4 1.2.3.4 5.6.7.8 %s 443\r\n", bad[i]);
		v1_bad(line);
		snprintf(line, sizeof(line), "PROXY TCP6 ::1 ::2 443 %s\r\n", bad[i]);
		v1_bad(line);
	}
}

static void
test_v1_spaces_and_keywords(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
#define S(lit) { lit, sizeof(lit) - 1 }
		S("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
		S(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"),
		S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8\r\n"),
		S("PROXY TCP4 1.2.3.4\r\n"),
		S("PROXY TCP4\r\n"),
		S("PROXY TCP4 \r\n"),
		S("PROXY \r\n"),
		S("PROXY\r\n"),
		S("PROXY UNKNOWNX\r\n"),
		S("PROXY UNKNOWN4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY unknown\r\n"),
		S("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n"),
		S("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"),
		S("GET / HTTP/1.1\r\n"),
	};

#undef S

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		rejected_at(bad[i].s, bad[i].n);
	assert_int_equal(rejected_at("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n", 33), 31);
}

static void
test_v1_family_mismatch(void **state)
{
	v1_bad("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n");
	v1_bad("PROXY TCP4 192.0.2.1 2001:db8::2 1 2\r\n");
	v1_bad("PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n");
	v1_bad("PROXY TCP4 ::ffff:192.0.2.1 192.0.2.2 1 2\r\n");
	v1_bad("PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n");
	v1_bad("PROXY TCP6 2001:db8::1 192.0.2.1 1 2\r\n");
}

/* Invalid bytes are rejected as they arrive, not only at the CRLF. */
static void
test_v1_rejected_early(void **state)
{
	struct proxy_info pi;
	const char *long6;

	assert_int_equal(rejected_at("PROXX", 5), 5);
	assert_int_equal(rejected_at("PROXY TCP7", 10), 10);
	assert_int_equal(rejected_at("PROXY UNKNOWNX", 14), 14);
	assert_int_equal(rejected_at("PROXY TCP4 1.2.3.256", 20), 20);
	assert_int_equal(rejected_at("PROXY TCP4 1.2.3.4.", 19), 19);
	assert_int_equal(rejected_at("PROXY TCP4 01", 13), 13);
	assert_int_equal(rejected_at("PROXY TCP4 ::1", 14), 12);
	assert_int_equal(rejected_at("PROXY TCP6 ::g", 14), 14);
	assert_int_equal(rejected_at("PROXY TCP4 1.2.3.4 5.6.7.8 65536", 32), 32);
	assert_int_equal(rejected_at("PROXY TCP4 1.2.3.4 5.6.7.8 01", 29), 29);
	assert_int_equal(rejected_at("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", 31), 31);
	assert_int_equal(rejected_at("PROXY TCP4  ", 12), 12);
	/* an IPv6 token longer than any valid one (45) */
	long6 = "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n";
	assert_int_equal(rejected_at(long6, strlen(long6)), 11 + 46);
	long6 = "PROXY TCP6 ::1 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:00 1 2\r\n";
	assert_int_equal(rejected_at(long6, strlen(long6)), 15 + 46);
	/* a complete v6 token is checked at its space */
	assert_int_equal(rejected_at("PROXY TCP6 1::2::3 ", 19), 19);
	/* ... and these are fine so far */
	assert_int_equal(decode_copy("PROXY TCP4 1.2.3.4 5", 20, &pi), 0);
	assert_int_equal(decode_copy("PROXY TCP6 ::1 ", 15, &pi), 0);
	assert_int_equal(decode_copy("PROXY TCP4 1.2.3.4 5.6.7.8 6553", 31, &pi), 0);
	assert_int_equal(decode_copy("PROXY UNKNOWN zz", 16, &pi), 0);
	assert_int_equal(decode_copy("PROX", 4, &pi), 0);
	assert_int_equal(decode_copy("", 0, &pi), 0);
}

/* ------------------------------------------------------------------ */
/* v1 encoding                                                          */

static void
test_v1_encode_tcp4(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 56324), d = ss4("198.51.100.2", 443);
	char out[PROXY_V1_MAX + 1];
	struct proxy_info pi;
	size_t n;

	n = proxy_encode_v1(SA(s), SA(d), out);
	assert_string_equal(out, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
	assert_int_equal(n, strlen(out));
	v1_ok(out, &pi);
	assert_sa4(&pi.src, pi.src_len, "192.0.2.1", 56324);
	assert_sa4(&pi.dst, pi.dst_len, "198.51.100.2", 443);

	s = ss4("255.255.255.255", 65535);
	d = ss4("0.0.0.0", 0);
	n = proxy_encode_v1(SA(s), SA(d), out);
	assert_string_equal(out, "PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n");
	assert_int_equal(n, strlen(out));
}

static void
test_v1_encode_tcp6(void **state)
{
	struct sockaddr_storage s = ss6("2001:db8::1", 1234), d = ss6("2001:db8:0:0:1::2", 443);
	char out[PROXY_V1_MAX + 1];
	struct proxy_info pi;
	size_t n;

	n = proxy_encode_v1(SA(s), SA(d), out);
	assert_string_equal(out, "PROXY TCP6 2001:db8::1 2001:db8::1:0:0:2 1234 443\r\n");
	assert_int_equal(n, strlen(out));
	v1_ok(out, &pi);
	assert_int_equal(pi.family, AF_INET6);
	assert_sa6(&pi.src, pi.src_len, "2001:db8::1", 1234);
	assert_sa6(&pi.dst, pi.dst_len, "2001:db8::1:0:0:2", 443);

	/* the longest line */
	s = ss6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	d = ss6("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65534);
	n = proxy_encode_v1(SA(s), SA(d), out);
	assert_int_equal(n, 104);
	v1_ok(out, &pi);
	assert_sa6(&pi.src, pi.src_len, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	assert_sa6(&pi.dst, pi.dst_len, "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65534);
}

static void
test_v1_encode_mixed_families(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 5), d = ss6("2001:db8::2", 443);
	char out[PROXY_V1_MAX + 1];
	struct proxy_info pi;

	proxy_encode_v1(SA(s), SA(d), out);
	assert_string_equal(out, "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 5 443\r\n");
	v1_ok(out, &pi);
	assert_sa6(&pi.src, pi.src_len, "::ffff:192.0.2.1", 5);
	proxy_encode_v1(SA(d), SA(s), out);
	assert_string_equal(out, "PROXY TCP6 2001:db8::2 ::ffff:192.0.2.1 443 5\r\n");
}

static void
test_v1_encode_unknown(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 5), u = ssun("/run/x.sock");
	char out[PROXY_V1_MAX + 1];
	struct proxy_info pi;

	assert_int_equal(proxy_encode_v1(NULL, NULL, out), 15);
	assert_string_equal(out, "PROXY UNKNOWN\r\n");
	memset(out, 'z', sizeof(out));
	assert_int_equal(proxy_encode_v1(SA(s), NULL, out), 15);
	assert_string_equal(out, "PROXY UNKNOWN\r\n");
	memset(out, 'z', sizeof(out));
	assert_int_equal(proxy_encode_v1(SA(u), SA(u), out), 15);
	assert_string_equal(out, "PROXY UNKNOWN\r\n");
	memset(out, 'z', sizeof(out));
	assert_int_equal(proxy_encode_v1(SA(s), SA(u), out), 15);
	assert_string_equal(out, "PROXY UNKNOWN\r\n");
	v1_ok(out, &pi);
	assert_int_equal(pi.local, 1);
}

/* ------------------------------------------------------------------ */
/* v2: known answers                                                    */

/* INET 192.0.2.1:56324 -> 198.51.100.2:443, ALPN "h2", AUTHORITY
 * "example.com", CRC32C (0x58DB7A97, computed independently). */
static const uint8_t kat_inet[] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
	0x21,			/* version 2, PROXY */
	0x11,			/* AF_INET, STREAM */
	0x00, 0x26,		/* 12 + 5 + 14 + 7 = 38 */
	192, 0, 2, 1,		/* source */
	198, 51, 100, 2,	/* destination */
	0xdc, 0x04,		/* 56324 */
	0x01, 0xbb,		/* 443 */
	0x01, 0x00, 0x02, 'h', '2',
	0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
	0x03, 0x00, 0x04, 0x58, 0xdb, 0x7a, 0x97,
};

static void
test_v2_kat_inet_decode(void **state)
{
	struct proxy_info pi;

	decode_ok(kat_inet, sizeof(kat_inet), &pi);
	assert_int_equal(pi.version, 2);
	assert_int_equal(pi.local, 0);
	assert_int_equal(pi.family, AF_INET);
	assert_int_equal(pi.socktype, SOCK_STREAM);
	assert_sa4(&pi.src, pi.src_len, "192.0.2.1", 56324);
	assert_sa4(&pi.dst, pi.dst_len, "198.51.100.2", 443);
	assert_int_equal(pi.have, PROXY_HAVE_ALPN | PROXY_HAVE_AUTHORITY | PROXY_HAVE_CRC32C);
	assert_int_equal(pi.alpn_len, 2);
	assert_memory_equal(pi.alpn, "h2", 3);
	assert_string_equal(pi.authority, "example.com");
	assert_int_equal(pi.crc32c, 0x58DB7A97);
}

static void
test_v2_kat_inet_encode(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 56324), d = ss4("198.51.100.2", 443);
	struct proxy_tlvs t;
	uint8_t out[256];

	memset(&t, 0, sizeof(t));
	t.alpn = (const uint8_t *)"h2";
	t.alpn_len = 2;
	t.authority = "example.com";
	t.crc32c = 1;
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, sizeof(out)), sizeof(kat_inet));
	assert_memory_equal(out, kat_inet, sizeof(kat_inet));

	/* and without TLVs: the 28 bytes of the spec's TCP over IPv4 */
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), NULL, out, sizeof(out)), 28);
	assert_memory_equal(out, kat_inet, 14);
	assert_memory_equal(out + 14, "\x00\x0c", 2);
	assert_memory_equal(out + 16, kat_inet + 16, 12);
}

static void
test_v2_kat_inet6(void **state)
{
	static const uint8_t kat[] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
		0x21, 0x21, 0x00, 0x24,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
		0xff, 0xff, 0x20, 0xfb,
	};
	struct sockaddr_storage s = ss6("2001:db8::1", 65535), d = ss6("2001:db8::2", 8443);
	struct proxy_info pi;
	uint8_t out[256];

	assert_int_equal(proxy_encode_v2(SA(s), SA(d), NULL, out, sizeof(out)), sizeof(kat));
	assert_memory_equal(out, kat, sizeof(kat));
	decode_ok(kat, sizeof(kat), &pi);
	assert_int_equal(pi.family, AF_INET6);
	assert_int_equal(pi.have, 0);
	assert_sa6(&pi.src, pi.src_len, "2001:db8::1", 65535);
	assert_sa6(&pi.dst, pi.dst_len, "2001:db8::2", 8443);
}

/* The SSL TLV laid out by hand, both ways. */
static void
test_v2_kat_ssl(void **state)
{
	static const uint8_t kat[] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
		0x21, 0x11, 0x00, 0x2e,
		192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb,
		0x20, 0x00, 0x1f,			/* SSL, 31 bytes */
		0x07,					/* SSL | CERT_CONN | CERT_SESS */
		0x00, 0x00, 0x01, 0x02,			/* verify = 258 */
		0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',
		0x22, 0x00, 0x01, 'c',
		0x23, 0x00, 0x01, 'x',
		0x24, 0x00, 0x00,
		0x25, 0x00, 0x02, 'E', 'C',
	};
	struct sockaddr_storage s = ss4("192.0.2.1", 56324), d = ss4("198.51.100.2", 443);
	struct proxy_tlvs t;
	struct proxy_info pi;
	uint8_t out[256];

	memset(&t, 0, sizeof(t));
	t.ssl.present = 1;
	t.ssl.client = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS;
	t.ssl.verify = 258;
	t.ssl.version = "TLSv1.3";
	t.ssl.cn = "c";
	t.ssl.cipher = "x";
	t.ssl.sig_alg = "";
	t.ssl.key_alg = "EC";
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, sizeof(out)), sizeof(kat));
	assert_memory_equal(out, kat, sizeof(kat));

	decode_ok(kat, sizeof(kat), &pi);
	assert_int_equal(pi.have, PROXY_HAVE_SSL | PROXY_HAVE_SSL_VERSION | PROXY_HAVE_SSL_CN |
	    PROXY_HAVE_SSL_CIPHER | PROXY_HAVE_SSL_SIG_ALG | PROXY_HAVE_SSL_KEY_ALG);
	assert_int_equal(pi.ssl.client, 7);
	assert_int_equal(pi.ssl.verify, 258);
	assert_string_equal(pi.ssl.version, "TLSv1.3");
	assert_string_equal(pi.ssl.cn, "c");
	assert_string_equal(pi.ssl.cipher, "x");
	assert_string_equal(pi.ssl.sig_alg, "");
	assert_string_equal(pi.ssl.key_alg, "EC");
}

/* ------------------------------------------------------------------ */
/* v2: LOCAL, UNSPEC, UNIX, DGRAM                                       */

static void
test_v2_local(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 1);
	struct proxy_tlvs t;
	struct proxy_info pi;
	struct hb h;
	uint8_t out[256];

	memset(&t, 0, sizeof(t));
	t.authority = "ignored";
	t.crc32c = 1;
	assert_int_equal(proxy_encode_v2(NULL, NULL, &t, out, sizeof(out)), 16);
	assert_memory_equal(out, SIG "\x20\x00\x00\x00", 16);
	assert_int_equal(proxy_encode_v2(SA(s), NULL, NULL, out, sizeof(out)), 16);
	assert_memory_equal(out, SIG "\x20\x00\x00\x00", 16);
	assert_int_equal(proxy_encode_v2(NULL, SA(s), NULL, out, sizeof(out)), 16);
	decode_ok(out, 16, &pi);
	assert_int_equal(pi.version, 2);
	assert_int_equal(pi.local, 1);
	assert_int_equal(pi.family, AF_UNSPEC);
	assert_int_equal(pi.src_len, 0);

	/* a LOCAL block is skipped whatever it holds: the family byte, an
	 * address, even TLVs that would be invalid */
	hb_start(&h, 0x20, 0xFF);
	hb_put(&h, inet_block, sizeof(inet_block));
	hb_put(&h, "\x02\x00\x09xx", 5);		/* overrunning TLV */
	hb_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0", 4);	/* wrong CRC */
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.local, 1);
	assert_int_equal(pi.family, AF_UNSPEC);
	assert_int_equal(pi.have, 0);
	assert_null(proxy_find_tlv(h.b, h.len, PP2_TYPE_CRC32C, &(size_t){ 0 }));
}

static void
test_v2_unspec(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 1), u = ssun("/run/a.sock");
	struct proxy_tlvs t;
	struct proxy_info pi;
	uint8_t out[256];
	ssize_t n;

	/* a pair we cannot describe: PROXY, UNSPEC, TLVs still sent */
	memset(&t, 0, sizeof(t));
	t.authority = "example.org";
	t.crc32c = 1;
	n = proxy_encode_v2(SA(s), SA(u), &t, out, sizeof(out));
	assert_int_equal(n, 16 + 14 + 7);
	assert_memory_equal(out, SIG "\x21\x00\x00\x15", 16);
	decode_ok(out, (size_t)n, &pi);
	assert_int_equal(pi.version, 2);
	assert_int_equal(pi.local, 1);
	assert_int_equal(pi.family, AF_UNSPEC);
	assert_int_equal(pi.socktype, 0);
	assert_int_equal(pi.src_len, 0);
	assert_int_equal(pi.have, PROXY_HAVE_AUTHORITY | PROXY_HAVE_CRC32C);
	assert_string_equal(pi.authority, "example.org");

	/* and with a CRC that does not match */
	out[n - 1] ^= 1;
	rejected_at(out, (size_t)n);

	/* the bare form */
	decode_ok(SIG "\x21\x00\x00\x00", 16, &pi);
	assert_int_equal(pi.local, 1);
	assert_int_equal(pi.family, AF_UNSPEC);
}

static void
test_v2_unix(void **state)
{
	struct sockaddr_storage s = ssun("/run/haproxy/client.sock"), d = ssun("/run/tlsfront.sock");
	struct proxy_info pi;
	uint8_t out[512];
	ssize_t n;

	n = proxy_encode_v2(SA(s), SA(d), NULL, out, sizeof(out));
	assert_int_equal(n, 16 + 216);
	assert_memory_equal(out, SIG "\x21\x31\x00\xd8", 16);
	assert_memory_equal(out + 16, "/run/haproxy/client.sock", 25);	/* NUL padded */
	for (size_t i = 16 + 25; i < 16 + 108; i++)
		assert_int_equal(out[i], 0);
	assert_memory_equal(out + 16 + 108, "/run/tlsfront.sock", 19);
	decode_ok(out, (size_t)n, &pi);
	assert_int_equal(pi.local, 0);
	assert_int_equal(pi.family, AF_UNIX);
	assert_int_equal(pi.socktype, SOCK_STREAM);
	assert_saun(&pi.src, pi.src_len, "/run/haproxy/client.sock", 24);
	assert_saun(&pi.dst, pi.dst_len, "/run/tlsfront.sock", 18);
}

static void
test_v2_unix_special_paths(void **state)
{
	struct proxy_info pi;
	uint8_t path[108];
	struct hb h;

	/* a 108-byte pathname without a NUL; a pathname with junk after its
	 * NUL; an abstract name; an unnamed (all zero) address */
	hb_start(&h, 0x21, 0x31);
	memset(path, 'a', sizeof(path));
	hb_put(&h, path, sizeof(path));
	memset(path, 'z', sizeof(path));
	memcpy(path, "/tmp/s\0", 7);
	hb_put(&h, path, sizeof(path));
	hb_fix(&h);
	if (sizeof(((struct sockaddr_un *)0)->sun_path) < 108) {
		rejected_at(h.b, h.len);
		return;
	}
	decode_ok(h.b, h.len, &pi);
	memset(path, 'a', sizeof(path));
	assert_saun(&pi.src, pi.src_len, path, 108);
	assert_saun(&pi.dst, pi.dst_len, "/tmp/s", 6);

	hb_start(&h, 0x21, 0x32);
	memset(path, 0, sizeof(path));
	memcpy(path, "\0abstract\0x", 11);
	hb_put(&h, path, sizeof(path));
	memset(path, 0, sizeof(path));
	hb_put(&h, path, sizeof(path));
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.family, AF_UNIX);
	assert_int_equal(pi.socktype, SOCK_DGRAM);
	assert_saun(&pi.src, pi.src_len, "\0abstract\0x", 11);
	assert_saun(&pi.dst, pi.dst_len, "", 0);

	/* an abstract name up to the last byte */
	hb_start(&h, 0x21, 0x31);
	memset(path, 'b', sizeof(path));
	path[0] = '\0';
	hb_put(&h, path, sizeof(path));
	hb_put(&h, path, sizeof(path));
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_saun(&pi.src, pi.src_len, path, 108);
	assert_saun(&pi.dst, pi.dst_len, path, 108);
}

static void
test_v2_dgram(void **state)
{
	struct proxy_info pi;
	struct hb h;

	hb_start(&h, 0x21, 0x12);
	hb_put(&h, inet_block, sizeof(inet_block));
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.family, AF_INET);
	assert_int_equal(pi.socktype, SOCK_DGRAM);
	assert_sa4(&pi.src, pi.src_len, "192.0.2.1", 56324);

	hb_start(&h, 0x21, 0x22);
	for (int i = 0; i < 36; i++)
		hb_put(&h, &(uint8_t){ (uint8_t)i }, 1);
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.family, AF_INET6);
	assert_int_equal(pi.socktype, SOCK_DGRAM);
	assert_sa6(&pi.src, pi.src_len, "1:203:405:607:809:a0b:c0d:e0f", 0x2021);
	assert_sa6(&pi.dst, pi.dst_len, "1011:1213:1415:1617:1819:1a1b:1c1d:1e1f", 0x2223);
}

static void
test_v2_mapped(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 1000), d = ss6("2001:db8::2", 443);
	struct proxy_info pi;
	uint8_t out[256];
	ssize_t n;

	n = proxy_encode_v2(SA(s), SA(d), NULL, out, sizeof(out));
	assert_int_equal(n, 16 + 36);
	assert_int_equal(out[13], 0x21);
	decode_ok(out, (size_t)n, &pi);
	assert_sa6(&pi.src, pi.src_len, "::ffff:192.0.2.1", 1000);
	assert_sa6(&pi.dst, pi.dst_len, "2001:db8::2", 443);
	n = proxy_encode_v2(SA(d), SA(s), NULL, out, sizeof(out));
	decode_ok(out, (size_t)n, &pi);
	assert_sa6(&pi.dst, pi.dst_len, "::ffff:192.0.2.1", 1000);
}

/* ------------------------------------------------------------------ */
/* v2: every TLV, round trips                                           */

static uint8_t cert_blob[1500];
static uint8_t uid_blob[PROXY_UNIQUE_ID_MAX];

static void
full_tlvs(struct proxy_tlvs *t)
{
	for (size_t i = 0; i < sizeof(cert_blob); i++)
		cert_blob[i] = (uint8_t)(i * 7 + (i >> 8));	/* zeros included */
	for (size_t i = 0; i < sizeof(uid_blob); i++)
		uid_blob[i] = (uint8_t)(255 - i);
	memset(t, 0, sizeof(*t));
	t->alpn = (const uint8_t *)"http/1.1";
	t->alpn_len = 8;
	t->authority = "www.example.com";
	t->unique_id = uid_blob;
	t->unique_id_len = sizeof(uid_blob);
	t->ssl.present = 1;
	t->ssl.client = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN;
	t->ssl.verify = 0x01020304;
	t->ssl.version = "TLSv1.3";
	t->ssl.cn = "client.example.com";
	t->ssl.cipher = "TLS_AES_256_GCM_SHA384";
	t->ssl.sig_alg = "RSA-SHA256";
	t->ssl.key_alg = "RSA2048";
	t->cert = cert_blob;
	t->cert_len = sizeof(cert_blob);
	t->crc32c = 1;
}

static void
check_full_tlvs(const struct proxy_info *pi, const uint8_t *hdr, size_t len, uint8_t cert_type)
{
	const uint8_t *v;
	size_t vlen = 0;

	assert_int_equal(pi->have, PROXY_HAVE_ALPN | PROXY_HAVE_AUTHORITY | PROXY_HAVE_CRC32C |
	    PROXY_HAVE_UNIQUE_ID | PROXY_HAVE_SSL | PROXY_HAVE_SSL_VERSION | PROXY_HAVE_SSL_CN |
	    PROXY_HAVE_SSL_CIPHER | PROXY_HAVE_SSL_SIG_ALG | PROXY_HAVE_SSL_KEY_ALG);
	assert_int_equal(pi->alpn_len, 8);
	assert_memory_equal(pi->alpn, "http/1.1", 9);
	assert_string_equal(pi->authority, "www.example.com");
	assert_int_equal(pi->unique_id_len, sizeof(uid_blob));
	assert_memory_equal(pi->unique_id, uid_blob, sizeof(uid_blob));
	assert_int_equal(pi->ssl.client, PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN);
	assert_int_equal(pi->ssl.verify, 0x01020304);
	assert_string_equal(pi->ssl.version, "TLSv1.3");
	assert_string_equal(pi->ssl.cn, "client.example.com");
	assert_string_equal(pi->ssl.cipher, "TLS_AES_256_GCM_SHA384");
	assert_string_equal(pi->ssl.sig_alg, "RSA-SHA256");
	assert_string_equal(pi->ssl.key_alg, "RSA2048");
	assert_int_equal(pi->crc32c, (uint32_t)hdr[len - 4] << 24 | (uint32_t)hdr[len - 3] << 16 |
	    (uint32_t)hdr[len - 2] << 8 | hdr[len - 1]);
	assert_string_equal(pi->netns, "");

	v = proxy_find_tlv(hdr, len, cert_type, &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, sizeof(cert_blob));
	assert_memory_equal(v, cert_blob, sizeof(cert_blob));
	v = proxy_find_tlv(hdr, len, PP2_TYPE_AUTHORITY, &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, 15);
	assert_memory_equal(v, "www.example.com", 15);
}

static void
test_v2_every_tlv_round_trip(void **state)
{
	struct sockaddr_storage pairs[3][2] = {
		{ ss4("203.0.113.9", 40000), ss4("192.0.2.80", 443) },
		{ ss6("2001:db8:1::9", 40001), ss6("2001:db8:2::80", 8443) },
		{ ssun("/run/lb/peer"), ssun("/run/tlsfront/in.sock") },
	};
	static const int fam[3] = { AF_INET, AF_INET6, AF_UNIX };
	static uint8_t out[4096];
	struct proxy_tlvs t;
	struct proxy_info pi;
	ssize_t n;

	full_tlvs(&t);
	for (int i = 0; i < 3; i++) {
		n = proxy_encode_v2(SA(pairs[i][0]), SA(pairs[i][1]), &t, out, sizeof(out));
		assert_true(n > 1500 && n <= PROXY_MAX_HEADER);
		decode_ok(out, (size_t)n, &pi);
		assert_int_equal(pi.version, 2);
		assert_int_equal(pi.local, 0);
		assert_int_equal(pi.family, fam[i]);
		assert_int_equal(pi.src_len, i == 2 ? offsetof(struct sockaddr_un, sun_path) + 12 :
		    (i == 0 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
		assert_memory_equal(&pi.src, &pairs[i][0], pi.src_len);
		assert_memory_equal(&pi.dst, &pairs[i][1], pi.dst_len);
		check_full_tlvs(&pi, out, (size_t)n, PP2_TYPE_CLIENT_CERT);
	}

	/* a caller-chosen certificate type; no CRC */
	t.cert_type = 0xE7;
	t.crc32c = 0;
	n = proxy_encode_v2(SA(pairs[0][0]), SA(pairs[0][1]), &t, out, sizeof(out));
	decode_ok(out, (size_t)n, &pi);
	assert_int_equal(pi.have & PROXY_HAVE_CRC32C, 0);
	assert_null(proxy_find_tlv(out, (size_t)n, PP2_TYPE_CLIENT_CERT, &(size_t){ 0 }));
	assert_null(proxy_find_tlv(out, (size_t)n, PP2_TYPE_CRC32C, &(size_t){ 0 }));
	assert_non_null(proxy_find_tlv(out, (size_t)n, 0xE7, &(size_t){ 0 }));
}

static void
test_v2_tlvs_absent_and_empty(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 1), d = ss4("192.0.2.2", 2);
	struct proxy_tlvs t;
	struct proxy_info pi;
	uint8_t out[256];
	ssize_t n;

	/* SSL with no sub-TLVs, empty values, an empty certificate */
	memset(&t, 0, sizeof(t));
	t.alpn = (const uint8_t *)"";
	t.authority = "";
	t.ssl.present = 1;
	t.cert = (const uint8_t *)"";
	n = proxy_encode_v2(SA(s), SA(d), &t, out, sizeof(out));
	assert_int_equal(n, 28 + 3 + 3 + 8 + 3);
	decode_ok(out, (size_t)n, &pi);
	assert_int_equal(pi.have, PROXY_HAVE_ALPN | PROXY_HAVE_AUTHORITY | PROXY_HAVE_SSL);
	assert_int_equal(pi.alpn_len, 0);
	assert_int_equal(pi.ssl.client, 0);
	assert_int_equal(pi.ssl.verify, 0);
	assert_non_null(proxy_find_tlv(out, (size_t)n, PP2_TYPE_CLIENT_CERT, &(size_t){ 1 }));
}

static void
test_v2_other_tlvs(void **state)
{
	struct proxy_info pi;
	struct hb h;

	/* NOOP, NETNS, UNIQUE_ID, custom, experimental and future types, and
	 * an unknown SSL sub-TLV */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_NOOP, "", 0);
	hb_tlv(&h, PP2_TYPE_NOOP, "\0\0\0\0\0", 5);
	hb_str(&h, PP2_TYPE_NETNS, "blue");
	hb_tlv(&h, PP2_TYPE_UNIQUE_ID, "\0id\0", 4);
	hb_tlv(&h, 0xE0, "cert", 4);
	hb_tlv(&h, 0xF3, "\x03\x00\x04", 3);	/* looks like a CRC TLV inside */
	hb_tlv(&h, 0xFF, "", 0);
	hb_tlv(&h, 0x06, "x", 1);
	hb_tlv(&h, PP2_TYPE_SSL, "\x01\x00\x00\x00\x00" "\x26\x00\x01z" "\x22\x00\x02me", 14);
	hb_tlv(&h, PP2_TYPE_NOOP, "", 0);
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.have, PROXY_HAVE_NETNS | PROXY_HAVE_UNIQUE_ID | PROXY_HAVE_SSL |
	    PROXY_HAVE_SSL_CN);
	assert_string_equal(pi.netns, "blue");
	assert_int_equal(pi.unique_id_len, 4);
	assert_memory_equal(pi.unique_id, "\0id\0", 4);
	assert_string_equal(pi.ssl.cn, "me");
	assert_int_equal(pi.ssl.client, PP2_CLIENT_SSL);
}

/* Each TLV kept by the decoder: its longest value fits, one more byte is
 * rejected (not truncated). */
static void
test_v2_tlv_field_limits(void **state)
{
	static const struct {
		uint8_t type;	/* a sub-type of SSL if >= 0x21 and <= 0x25 */
		size_t max;
	} lim[] = {
		{ PP2_TYPE_ALPN, PROXY_ALPN_MAX },
		{ PP2_TYPE_AUTHORITY, PROXY_AUTHORITY_MAX },
		{ PP2_TYPE_UNIQUE_ID, PROXY_UNIQUE_ID_MAX },
		{ PP2_TYPE_NETNS, PROXY_NETNS_MAX },
		{ PP2_SUBTYPE_SSL_VERSION, PROXY_SSL_VERSION_MAX },
		{ PP2_SUBTYPE_SSL_CN, PROXY_SSL_CN_MAX },
		{ PP2_SUBTYPE_SSL_CIPHER, PROXY_SSL_CIPHER_MAX },
		{ PP2_SUBTYPE_SSL_SIG_ALG, PROXY_SSL_ALG_MAX },
		{ PP2_SUBTYPE_SSL_KEY_ALG, PROXY_SSL_ALG_MAX },
	};
	uint8_t v[600], ssl[700];
	struct proxy_info pi;
	struct hb h;

	memset(v, 'q', sizeof(v));
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		int sub = lim[i].type >= 0x21 && lim[i].type <= 0x25;

		for (size_t n = lim[i].max; n <= lim[i].max + 1; n++) {
			hb_inet(&h);
			if (sub) {
				memcpy(ssl, "\x01\x00\x00\x00\x00", 5);
				ssl[5] = lim[i].type;
				ssl[6] = (uint8_t)(n >> 8);
				ssl[7] = (uint8_t)n;
				memcpy(ssl + 8, v, n);
				hb_tlv(&h, PP2_TYPE_SSL, ssl, 8 + n);
			} else {
				hb_tlv(&h, lim[i].type, v, n);
			}
			hb_fix(&h);
			if (n > lim[i].max) {
				assert_int_equal(rejected_at(h.b, h.len), h.len);
				continue;
			}
			decode_ok(h.b, h.len, &pi);
			switch (lim[i].type) {
			case PP2_TYPE_ALPN:
				assert_int_equal(pi.alpn_len, n);
				break;
			case PP2_TYPE_AUTHORITY:
				assert_int_equal(strlen(pi.authority), n);
				break;
			case PP2_TYPE_UNIQUE_ID:
				assert_int_equal(pi.unique_id_len, n);
				break;
			case PP2_TYPE_NETNS:
				assert_int_equal(strlen(pi.netns), n);
				break;
			case PP2_SUBTYPE_SSL_VERSION:
				assert_int_equal(strlen(pi.ssl.version), n);
				break;
			case PP2_SUBTYPE_SSL_CN:
				assert_int_equal(strlen(pi.ssl.cn), n);
				break;
			case PP2_SUBTYPE_SSL_CIPHER:
				assert_int_equal(strlen(pi.ssl.cipher), n);
				break;
			case PP2_SUBTYPE_SSL_SIG_ALG:
				assert_int_equal(strlen(pi.ssl.sig_alg), n);
				break;
			default:
				assert_int_equal(strlen(pi.ssl.key_alg), n);
				break;
			}
		}
	}
}

static void
test_v2_text_tlv_nul_rejected(void **state)
{
	static const uint8_t text_types[] = { PP2_TYPE_AUTHORITY, PP2_TYPE_NETNS };
	static const uint8_t ssl_types[] = { 0x21, 0x22, 0x23, 0x24, 0x25 };
	struct proxy_info pi;
	struct hb h;

	for (size_t i = 0; i < sizeof(text_types); i++) {
		hb_inet(&h);
		hb_tlv(&h, text_types[i], "a.com\0evil", 10);
		hb_fix(&h);
		assert_int_equal(rejected_at(h.b, h.len), h.len);
	}
	for (size_t i = 0; i < sizeof(ssl_types); i++) {
		uint8_t v[] = { 0, 0, 0, 0, 0, ssl_types[i], 0, 3, 'a', 0, 'b' };

		hb_inet(&h);
		hb_tlv(&h, PP2_TYPE_SSL, v, sizeof(v));
		hb_fix(&h);
		assert_int_equal(rejected_at(h.b, h.len), h.len);
	}
	/* ALPN and UNIQUE_ID are bytes */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_ALPN, "h\0", 2);
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.alpn_len, 2);
}

static void
test_v2_duplicate_tlvs(void **state)
{
	static const uint8_t types[] = {
		PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_UNIQUE_ID, PP2_TYPE_NETNS
	};
	static const uint8_t ssl_types[] = { 0x21, 0x22, 0x23, 0x24, 0x25 };
	struct proxy_info pi;
	struct hb h;

	for (size_t i = 0; i < sizeof(types); i++) {
		hb_inet(&h);
		hb_str(&h, types[i], "one");
		hb_str(&h, types[i], "one");
		hb_fix(&h);
		assert_int_equal(rejected_at(h.b, h.len), h.len);
	}
	for (size_t i = 0; i < sizeof(ssl_types); i++) {
		uint8_t v[] = { 0, 0, 0, 0, 0, ssl_types[i], 0, 1, 'a', ssl_types[i], 0, 1, 'a' };

		hb_inet(&h);
		hb_tlv(&h, PP2_TYPE_SSL, v, sizeof(v));
		hb_fix(&h);
		assert_int_equal(rejected_at(h.b, h.len), h.len);
	}
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_SSL, "\0\0\0\0\0", 5);
	hb_tlv(&h, PP2_TYPE_SSL, "\0\0\0\0\0", 5);
	hb_fix(&h);
	assert_int_equal(rejected_at(h.b, h.len), h.len);

	/* two NOOPs, two of a custom type: fine; find_tlv gives the first */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_NOOP, "", 0);
	hb_tlv(&h, PP2_TYPE_NOOP, "", 0);
	hb_str(&h, 0xE0, "first");
	hb_str(&h, 0xE0, "second");
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);
	{
		size_t vlen = 0;
		const uint8_t *v = proxy_find_tlv(h.b, h.len, 0xE0, &vlen);

		assert_non_null(v);
		assert_int_equal(vlen, 5);
		assert_memory_equal(v, "first", 5);
	}
}

/* ------------------------------------------------------------------ */
/* v2: CRC32C                                                           */

static void
test_v2_crc_mismatch(void **state)
{
	uint8_t h[sizeof(kat_inet)];

	/* any changed bit in the address block, the TLVs or the checksum */
	for (size_t i = 16; i < sizeof(kat_inet); i++) {
		/* bytes that are TLV types or lengths would fail differently */
		if (i == 28 || i == 29 || i == 30 || i == 33 || i == 34 || i == 35 ||
		    i == 47 || i == 48 || i == 49)
			continue;
		for (int bit = 0; bit < 8; bit++) {
			memcpy(h, kat_inet, sizeof(h));
			h[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(rejected_at(h, sizeof(h)), sizeof(h));
		}
	}
	/* a changed family/transport byte that is still valid */
	memcpy(h, kat_inet, sizeof(h));
	h[13] = 0x12;
	assert_int_equal(rejected_at(h, sizeof(h)), sizeof(h));
}

static void
test_v2_crc_tlv_malformed(void **state)
{
	struct proxy_info pi;
	struct hb h;
	uint32_t crc;

	/* wrong value lengths */
	for (size_t n = 0; n <= 8; n++) {
		if (n == 4)
			continue;
		hb_inet(&h);
		hb_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0\0\0\0\0", n);
		hb_fix(&h);
		assert_int_equal(rejected_at(h.b, h.len), h.len);
	}

	/* the checksum is computed with its own field zeroed, wherever it is */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0", 4);
	hb_str(&h, PP2_TYPE_AUTHORITY, "after.example");
	hb_fix(&h);
	crc = proxy_crc32c(0, h.b, h.len);
	h.b[31] = (uint8_t)(crc >> 24);
	h.b[32] = (uint8_t)(crc >> 16);
	h.b[33] = (uint8_t)(crc >> 8);
	h.b[34] = (uint8_t)crc;
	decode_ok(h.b, h.len, &pi);
	assert_int_equal(pi.crc32c, crc);
	assert_string_equal(pi.authority, "after.example");

	/* two checksum TLVs, even both right, are refused */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0", 4);
	hb_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0", 4);
	hb_fix(&h);
	crc = proxy_crc32c(0, h.b, h.len);
	for (int k = 0; k < 2; k++) {
		h.b[31 + 7 * k] = (uint8_t)(crc >> 24);
		h.b[32 + 7 * k] = (uint8_t)(crc >> 16);
		h.b[33 + 7 * k] = (uint8_t)(crc >> 8);
		h.b[34 + 7 * k] = (uint8_t)crc;
	}
	assert_int_equal(rejected_at(h.b, h.len), h.len);

	/* a checksum over the header with the field not zeroed is wrong */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_CRC32C, "\x11\x22\x33\x44", 4);
	hb_fix(&h);
	crc = proxy_crc32c(0, h.b, h.len);
	h.b[31] = (uint8_t)(crc >> 24);
	h.b[32] = (uint8_t)(crc >> 16);
	h.b[33] = (uint8_t)(crc >> 8);
	h.b[34] = (uint8_t)crc;
	assert_int_equal(rejected_at(h.b, h.len), h.len);
}

/* ------------------------------------------------------------------ */
/* v2: malformed fixed part and lengths                                 */

static void
test_v2_wrong_signature(void **state)
{
	uint8_t h[sizeof(kat_inet)];

	for (size_t i = 0; i < 12; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(h, kat_inet, sizeof(h));
			h[i] ^= (uint8_t)(1 << bit);
			if (i == 0 && h[0] == 'P')
				continue;	/* now a v1 candidate, rejected later */
			assert_int_equal(rejected_at(h, sizeof(h)), i + 1);
		}
	}
	/* v1 magic followed by the v2 signature and vice versa */
	assert_int_equal(rejected_at("\x0D\x0APROXY TCP4", 11), 3);
	assert_int_equal(rejected_at("P\x0A\x0D\x0A\x00", 5), 2);
	/* TLS straight away, HTTP, SSH */
	assert_int_equal(rejected_at(tls_hello, sizeof(tls_hello)), 1);
	assert_int_equal(rejected_at("GET / HTTP/1.0\r\n", 16), 1);
	assert_int_equal(rejected_at("SSH-2.0-x\r\n", 11), 1);
}

static void
test_v2_wrong_version(void **state)
{
	uint8_t h[sizeof(kat_inet)];

	for (int v = 0; v < 16; v++) {
		if (v == 2)
			continue;
		memcpy(h, kat_inet, sizeof(h));
		h[12] = (uint8_t)(v << 4 | 1);
		assert_int_equal(rejected_at(h, sizeof(h)), 13);
		h[12] = (uint8_t)(v << 4);
		assert_int_equal(rejected_at(h, sizeof(h)), 13);
	}
}

static void
test_v2_wrong_command(void **state)
{
	uint8_t h[sizeof(kat_inet)];

	for (int c = 2; c < 16; c++) {
		memcpy(h, kat_inet, sizeof(h));
		h[12] = (uint8_t)(0x20 | c);
		assert_int_equal(rejected_at(h, sizeof(h)), 13);
	}
}

static void
test_v2_wrong_family(void **state)
{
	static const uint8_t bad[] = {
		0x01, 0x02, 0x03, 0x10, 0x13, 0x20, 0x23, 0x30, 0x33, 0x40, 0x41, 0x51,
		0x0F, 0xF1, 0xFF,
	};
	uint8_t h[sizeof(kat_inet)];
	struct proxy_info pi;

	for (size_t i = 0; i < sizeof(bad); i++) {
		memcpy(h, kat_inet, sizeof(h));
		h[13] = bad[i];
		assert_int_equal(rejected_at(h, sizeof(h)), 14);
		/* LOCAL ignores the family */
		h[12] = 0x20;
		decode_ok(h, sizeof(h), &pi);
		assert_int_equal(pi.local, 1);
	}
}

static void
test_v2_address_block_too_short(void **state)
{
	static const struct {
		uint8_t fam;
		size_t need;
	} f[] = { { 0x11, 12 }, { 0x12, 12 }, { 0x21, 36 }, { 0x22, 36 }, { 0x31, 216 }, { 0x32, 216 } };
	uint8_t zeros[216] = { 0 };
	struct proxy_info pi;
	struct hb h;

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		for (size_t n = 0; n < f[i].need; n++) {
			hb_start(&h, 0x21, f[i].fam);
			hb_put(&h, zeros, n);
			hb_fix(&h);
			assert_int_equal(rejected_at(h.b, h.len), 16);
		}
		/* exactly enough is fine */
		hb_start(&h, 0x21, f[i].fam);
		hb_put(&h, zeros, f[i].need);
		hb_fix(&h);
		decode_ok(h.b, h.len, &pi);
		assert_int_equal(pi.local, 0);
	}
}

static void
test_v2_tlv_overrun(void **state)
{
	struct proxy_info pi;
	struct hb h;

	/* a TLV whose length runs past the header */
	hb_inet(&h);
	hb_put(&h, "\x02\x00\x06" "abcde", 8);
	hb_fix(&h);
	assert_int_equal(rejected_at(h.b, h.len), h.len);
	/* ... by a lot */
	hb_inet(&h);
	hb_put(&h, "\x02\xff\xff" "abcde", 8);
	hb_fix(&h);
	assert_int_equal(rejected_at(h.b, h.len), h.len);
	/* one or two bytes left over after the last TLV */
	hb_inet(&h);
	hb_str(&h, PP2_TYPE_AUTHORITY, "a");
	hb_put(&h, "\x04", 1);
	hb_fix(&h);
	assert_int_equal(rejected_at(h.b, h.len), h.len);
	hb_inet(&h);
	hb_put(&h, "\x04\x00", 2);
	hb_fix(&h);
	assert_int_equal(rejected_at(h.b, h.len), h.len);
	/* ... but a TLV ending exactly at the end is fine */
	hb_inet(&h);
	hb_put(&h, "\x04\x00\x00", 3);
	hb_fix(&h);
	decode_ok(h.b, h.len, &pi);

	/* the same for an address block longer than its family needs: the
	 * extra bytes must be TLVs */
	hb_start(&h, 0x21, 0x11);
	hb_put(&h, inet_block, sizeof(inet_block));
	hb_put(&h, "\0\0\0\0", 4);
	hb_fix(&h);
	assert_int_equal(rejected_at(h.b, h.len), h.len);
}

static void
test_v2_ssl_tlv_malformed(void **state)
{
	static const struct {
		const char *v;
		size_t n;
	} bad[] = {
		{ "", 0 },				/* no client/verify */
		{ "\x01\x00\x00\x00", 4 },		/* verify cut short */
		{ "\x01\x00\x00\x00\x00\x21", 6 },	/* sub-TLV header cut */
		{ "\x01\x00\x00\x00\x00\x21\x00", 7 },
		{ "\x01\x00\x00\x00\x00\x21\x00\x05TLS", 11 },	/* sub-TLV overruns */
		{ "\x01\x00\x00\x00\x00\x21\x00\x01T\x22\x00", 11 },
		{ "\x01\x00\x00\x00\x00\x21\xff\xffT", 9 },
		/* the same with a sub-type that is skipped, not copied */
		{ "\x01\x00\x00\x00\x00\x26", 6 },
		{ "\x01\x00\x00\x00\x00\x26\x00", 7 },
		{ "\x01\x00\x00\x00\x00\x26\x00\x05TLS", 11 },
		{ "\x01\x00\x00\x00\x00\x26\x00\x01T\x26\x00", 11 },
		{ "\x01\x00\x00\x00\x00\x26\x00\x04TLS", 11 },
	};
	struct hb h;

	/* with the SSL TLV last, and with more TLVs after it */
	for (int after = 0; after < 2; after++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			hb_inet(&h);
			hb_tlv(&h, PP2_TYPE_SSL, bad[i].v, bad[i].n);
			if (after) {
				hb_tlv(&h, PP2_TYPE_NOOP, "", 0);
				hb_str(&h, PP2_TYPE_AUTHORITY, "example.com");
			}
			hb_fix(&h);
			assert_int_equal(rejected_at(h.b, h.len), h.len);
		}
	}
}

static void
test_v2_oversized(void **state)
{
	static struct hb h;
	struct proxy_info pi;
	uint8_t pad[PROXY_V2_PAYLOAD_MAX];

	memset(pad, 0, sizeof(pad));
	/* 4096 bytes after the fixed part: the largest we take */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_NOOP, pad, PROXY_V2_PAYLOAD_MAX - 12 - 3);
	hb_fix(&h);
	assert_int_equal(h.len, PROXY_MAX_HEADER);
	decode_ok(h.b, h.len, &pi);
	assert_sa4(&pi.src, pi.src_len, "192.0.2.1", 56324);

	/* one more is refused as soon as the length field is in */
	hb_inet(&h);
	hb_tlv(&h, PP2_TYPE_NOOP, pad, PROXY_V2_PAYLOAD_MAX - 12 - 2);
	hb_fix(&h);
	assert_int_equal(h.len, PROXY_MAX_HEADER + 1);
	assert_int_equal(rejected_at(h.b, h.len), 16);
	/* the largest length field, LOCAL too */
	assert_int_equal(rejected_at(SIG "\x21\x11\xff\xff", 16), 16);
	assert_int_equal(rejected_at(SIG "\x20\x00\xff\xff", 16), 16);
	assert_int_equal(rejected_at(SIG "\x20\x00\x10\x01", 16), 16);
	assert_int_equal(decode_copy(SIG "\x20\x00\x10\x00", 16, &pi), 0);
}

/* The fixed part alone, and every prefix of it, needs more bytes. */
static void
test_v2_truncated(void **state)
{
	struct sockaddr_storage s = ss6("2001:db8::1", 1), d = ss6("2001:db8::2", 2);
	struct proxy_tlvs t;
	struct proxy_info pi;
	static uint8_t out[4096];
	ssize_t n;

	full_tlvs(&t);
	n = proxy_encode_v2(SA(s), SA(d), &t, out, sizeof(out));
	assert_true(n > 16);
	for (size_t k = 0; k < (size_t)n; k++)
		assert_int_equal(decode_copy(out, k, &pi), 0);
	assert_int_equal(decode_copy(out, (size_t)n, &pi), n);
}

/* ------------------------------------------------------------------ */
/* feeding a stream in pieces, as a connection would                    */

static void
feed(const uint8_t *stream, size_t len, size_t hdrlen, const size_t *chunks, size_t nchunks)
{
	uint8_t *buf = malloc(len);
	struct proxy_info pi;
	size_t have = 0;
	ssize_t r = 0;

	assert_non_null(buf);
	for (size_t c = 0; have < len; c++) {
		size_t n = chunks[c % nchunks];

		if (n > len - have)
			n = len - have;
		memcpy(buf + have, stream + have, n);
		have += n;
		r = proxy_decode(buf, have, &pi);
		if (have < hdrlen)
			assert_int_equal(r, 0);
		else
			break;
	}
	assert_int_equal(r, hdrlen);
	free(buf);
}

static void
test_feed_in_pieces(void **state)
{
	static const size_t chunks[][4] = {
		{ 1, 1, 1, 1 }, { 2, 3, 5, 7 }, { 13, 1, 16, 2 }, { 100, 100, 100, 100 },
		{ 4096, 1, 1, 1 }, { 16, 12, 1, 9999 },
	};
	struct sockaddr_storage s = ss6("2001:db8::1", 1), d = ss6("2001:db8::2", 2);
	static uint8_t stream[8192];
	struct proxy_tlvs t;
	ssize_t n;
	size_t v1len;

	/* v2 with every TLV, then the ClientHello */
	full_tlvs(&t);
	n = proxy_encode_v2(SA(s), SA(d), &t, stream, sizeof(stream));
	assert_true(n > 0);
	memcpy(stream + n, tls_hello, sizeof(tls_hello));
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		feed(stream, (size_t)n + sizeof(tls_hello), (size_t)n, chunks[i], 4);

	/* v1 */
	v1len = proxy_encode_v1(SA(s), SA(d), (char *)stream);
	memcpy(stream + v1len, tls_hello, sizeof(tls_hello));
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		feed(stream, v1len + sizeof(tls_hello), v1len, chunks[i], 4);
}

/* ------------------------------------------------------------------ */
/* encoder limits, find_tlv                                             */

static void
test_v2_encode_buffer_too_small(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 1), d = ss4("192.0.2.2", 2);
	static uint8_t out[4096 + 64], want[4096];
	struct proxy_tlvs t;
	ssize_t n;

	full_tlvs(&t);
	n = proxy_encode_v2(SA(s), SA(d), &t, want, sizeof(want));
	assert_true(n > 0);
	for (size_t cap = 0; cap < (size_t)n; cap++) {
		memset(out, 0xA5, sizeof(out));
		assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, cap), -1);
		for (size_t i = cap; i < sizeof(out); i++)
			if (out[i] != 0xA5)
				fail_msg("outlen %zu: byte %zu written", cap, i);
	}
	memset(out, 0xA5, sizeof(out));
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, (size_t)n), n);
	assert_memory_equal(out, want, (size_t)n);
	assert_int_equal(out[n], 0xA5);
	/* LOCAL needs 16 */
	assert_int_equal(proxy_encode_v2(NULL, NULL, NULL, out, 15), -1);
	assert_int_equal(proxy_encode_v2(NULL, NULL, NULL, out, 16), 16);
}

static void
test_v2_encode_too_long(void **state)
{
	struct sockaddr_storage s = ss4("192.0.2.1", 1), d = ss4("192.0.2.2", 2);
	uint8_t *big = calloc(1, 70000), *out = malloc(140000);
	struct proxy_tlvs t;
	ssize_t n;

	assert_non_null(big);
	assert_non_null(out);
	/* one value over 65535 */
	memset(&t, 0, sizeof(t));
	t.cert = big;
	t.cert_len = 65536;
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, 140000), -1);
	memset(&t, 0, sizeof(t));
	t.alpn = big;
	t.alpn_len = 65536;
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, 140000), -1);
	/* the whole over 65535 */
	memset(&t, 0, sizeof(t));
	t.cert = big;
	t.cert_len = 65535 - 12 - 3;
	n = proxy_encode_v2(SA(s), SA(d), &t, out, 140000);
	assert_int_equal(n, 16 + 65535);
	assert_memory_equal(out + 14, "\xff\xff", 2);
	t.unique_id = big;
	t.unique_id_len = 0;
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, 140000), -1);
	/* ... and an SSL block over 65535 */
	memset(&t, 0, sizeof(t));
	big[65000] = '\0';
	memset(big, 'a', 65000);
	t.ssl.present = 1;
	t.ssl.cn = (const char *)big;
	t.ssl.cipher = (const char *)big + 64000;
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, out, 140000), -1);
	free(big);
	free(out);
}

static void
test_find_tlv_not_there(void **state)
{
	const char *line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
	size_t vlen = 12345;

	assert_null(proxy_find_tlv((const uint8_t *)line, strlen(line), PP2_TYPE_ALPN, &vlen));
	assert_null(proxy_find_tlv((const uint8_t *)SIG "\x20\x00\x00\x00", 16, 0, &vlen));
	assert_null(proxy_find_tlv(kat_inet, sizeof(kat_inet), PP2_TYPE_SSL, &vlen));
	assert_null(proxy_find_tlv(kat_inet, sizeof(kat_inet), 0xE0, &vlen));
	/* hdrlen shorter than the header says */
	assert_null(proxy_find_tlv(kat_inet, sizeof(kat_inet) - 1, PP2_TYPE_ALPN, &vlen));
	assert_int_equal(vlen, 12345);
	assert_non_null(proxy_find_tlv(kat_inet, sizeof(kat_inet), PP2_TYPE_CRC32C, &vlen));
	assert_int_equal(vlen, 4);
}

/* ------------------------------------------------------------------ */
/* the TLVs of a TLS handshake, from its facts (proxy_tls.c)            */

/* Facts as a mutual-TLS handshake with every field would give them. */
static void
full_facts(struct tls_facts *f)
{
	for (size_t i = 0; i < sizeof(cert_blob); i++)
		cert_blob[i] = (uint8_t)(i * 7 + (i >> 8));
	memset(f, 0, sizeof(*f));
	f->alpn = (const unsigned char *)"h2";
	f->alpn_len = 2;
	f->sni = "www.example.com";
	f->version = "TLSv1.3";
	f->cipher = "TLS_AES_256_GCM_SHA384";
	f->sig_alg = "RSA-SHA256";
	snprintf(f->key_alg, sizeof(f->key_alg), "RSA2048");
	f->client_cert = 1;
	f->client_cert_now = 1;
	f->client_verified = 1;
	snprintf(f->client_cn, sizeof(f->client_cn), "client.example.com");
	f->client_cert_data = cert_blob;
	f->client_cert_len = sizeof(cert_blob);
}

/* Every fact becomes the TLV it stands for, with the same bytes as the
 * TLVs written by hand. */
static void
test_tls_facts_full(void **state)
{
	struct sockaddr_storage s = ss4("203.0.113.9", 40000), d = ss4("192.0.2.80", 443);
	static uint8_t got[4096], want[4096];
	struct tls_facts f;
	struct proxy_tlvs t, hand;
	struct proxy_info pi;
	const uint8_t *v;
	size_t vlen;
	ssize_t n;

	full_facts(&f);
	memset(&t, 0xA5, sizeof(t));	/* every field is written */
	proxy_tlvs_from_tls(&f, 0xE3, &t);
	memset(&hand, 0, sizeof(hand));
	hand.alpn = (const uint8_t *)"h2";
	hand.alpn_len = 2;
	hand.authority = "www.example.com";
	hand.ssl.present = 1;
	hand.ssl.client = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS;
	hand.ssl.verify = 0;
	hand.ssl.version = "TLSv1.3";
	hand.ssl.cn = "client.example.com";
	hand.ssl.cipher = "TLS_AES_256_GCM_SHA384";
	hand.ssl.sig_alg = "RSA-SHA256";
	hand.ssl.key_alg = "RSA2048";
	hand.cert = cert_blob;
	hand.cert_len = sizeof(cert_blob);
	hand.cert_type = 0xE3;
	n = proxy_encode_v2(SA(s), SA(d), &hand, want, sizeof(want));
	assert_true(n > 0);
	assert_int_equal(proxy_encode_v2(SA(s), SA(d), &t, got, sizeof(got)), n);
	assert_memory_equal(got, want, (size_t)n);

	decode_ok(got, (size_t)n, &pi);
	assert_int_equal(pi.have, PROXY_HAVE_ALPN | PROXY_HAVE_AUTHORITY | PROXY_HAVE_SSL |
	    PROXY_HAVE_SSL_VERSION | PROXY_HAVE_SSL_CN | PROXY_HAVE_SSL_CIPHER |
	    PROXY_HAVE_SSL_SIG_ALG | PROXY_HAVE_SSL_KEY_ALG);
	assert_memory_equal(pi.alpn, "h2", 3);
	assert_string_equal(pi.authority, "www.example.com");
	assert_int_equal(pi.ssl.client, 7);
	assert_int_equal(pi.ssl.verify, 0);
	assert_string_equal(pi.ssl.cn, "client.example.com");
	assert_string_equal(pi.ssl.key_alg, "RSA2048");
	assert_non_null(v = proxy_find_tlv(got, (size_t)n, 0xE3, &vlen));
	assert_int_equal(vlen, sizeof(cert_blob));
	assert_memory_equal(v, cert_blob, vlen);

	/* type 0: the encoder's default type */
	proxy_tlvs_from_tls(&f, 0, &t);
	n = proxy_encode_v2(SA(s), SA(d), &t, got, sizeof(got));
	assert_non_null(proxy_find_tlv(got, (size_t)n, PP2_TYPE_CLIENT_CERT, &vlen));
}

/* The client field and verify: the certificate of the session, sent on
 * this connection or not (resumed), verified or not. */
static void
test_tls_facts_client_flags(void **state)
{
	static const struct {
		int cert, now, verified;
		uint8_t client;
		uint32_t verify;
	} cases[] = {
		{ 0, 0, 0, PP2_CLIENT_SSL, 1 },
		{ 0, 1, 1, PP2_CLIENT_SSL, 1 },	/* no certificate: the rest means nothing */
		{ 1, 1, 1, PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 0 },
		{ 1, 0, 1, PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS, 0 },
		{ 1, 1, 0, PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 1 },
	};
	struct tls_facts f;
	struct proxy_tlvs t;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		full_facts(&f);
		f.client_cert = cases[i].cert;
		f.client_cert_now = cases[i].now;
		f.client_verified = cases[i].verified;
		proxy_tlvs_from_tls(&f, 0xE0, &t);
		assert_int_equal(t.ssl.client, cases[i].client);
		assert_int_equal(t.ssl.verify, cases[i].verify);
	}
}

/* Facts a handshake did not have leave their TLVs out; the SSL TLV is
 * always there. */
static void
test_tls_facts_absent(void **state)
{
	struct sockaddr_storage s = ss4("203.0.113.9", 40000), d = ss4("192.0.2.80", 443);
	uint8_t out[256];
	struct tls_facts f;
	struct proxy_tlvs t;
	struct proxy_info pi;
	ssize_t n;

	memset(&f, 0, sizeof(f));
	f.sni = "";
	f.alpn = (const unsigned char *)"h2";	/* a length of 0 wins */
	f.client_cert_data = cert_blob;		/* likewise */
	proxy_tlvs_from_tls(&f, 0xE0, &t);
	assert_null(t.alpn);
	assert_null(t.authority);
	assert_null(t.ssl.cn);
	assert_null(t.ssl.key_alg);
	assert_null(t.cert);
	assert_int_equal(t.crc32c, 0);
	n = proxy_encode_v2(SA(s), SA(d), &t, out, sizeof(out));
	decode_ok(out, (size_t)n, &pi);
	assert_int_equal(pi.have, PROXY_HAVE_SSL);
	assert_int_equal(pi.ssl.client, PP2_CLIENT_SSL);
	assert_int_equal(pi.ssl.verify, 1);
	/* the smallest header with an SSL TLV: 16 + 12 + 3 + 5 */
	assert_int_equal(n, 36);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_known_answers),
		cmocka_unit_test(test_crc32c_chains),
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_no_crlf),
		cmocka_unit_test(test_v1_bad_ips),
		cmocka_unit_test(test_v1_bad_ports),
		cmocka_unit_test(test_v1_spaces_and_keywords),
		cmocka_unit_test(test_v1_family_mismatch),
		cmocka_unit_test(test_v1_rejected_early),
		cmocka_unit_test(test_v1_encode_tcp4),
		cmocka_unit_test(test_v1_encode_tcp6),
		cmocka_unit_test(test_v1_encode_mixed_families),
		cmocka_unit_test(test_v1_encode_unknown),
		cmocka_unit_test(test_v2_kat_inet_decode),
		cmocka_unit_test(test_v2_kat_inet_encode),
		cmocka_unit_test(test_v2_kat_inet6),
		cmocka_unit_test(test_v2_kat_ssl),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_unspec),
		cmocka_unit_test(test_v2_unix),
		cmocka_unit_test(test_v2_unix_special_paths),
		cmocka_unit_test(test_v2_dgram),
		cmocka_unit_test(test_v2_mapped),
		cmocka_unit_test(test_v2_every_tlv_round_trip),
		cmocka_unit_test(test_v2_tlvs_absent_and_empty),
		cmocka_unit_test(test_v2_other_tlvs),
		cmocka_unit_test(test_v2_tlv_field_limits),
		cmocka_unit_test(test_v2_text_tlv_nul_rejected),
		cmocka_unit_test(test_v2_duplicate_tlvs),
		cmocka_unit_test(test_v2_crc_mismatch),
		cmocka_unit_test(test_v2_crc_tlv_malformed),
		cmocka_unit_test(test_v2_wrong_signature),
		cmocka_unit_test(test_v2_wrong_version),
		cmocka_unit_test(test_v2_wrong_command),
		cmocka_unit_test(test_v2_wrong_family),
		cmocka_unit_test(test_v2_address_block_too_short),
		cmocka_unit_test(test_v2_tlv_overrun),
		cmocka_unit_test(test_v2_ssl_tlv_malformed),
		cmocka_unit_test(test_v2_oversized),
		cmocka_unit_test(test_v2_truncated),
		cmocka_unit_test(test_feed_in_pieces),
		cmocka_unit_test(test_v2_encode_buffer_too_small),
		cmocka_unit_test(test_v2_encode_too_long),
		cmocka_unit_test(test_find_tlv_not_there),
		cmocka_unit_test(test_tls_facts_full),
		cmocka_unit_test(test_tls_facts_client_flags),
		cmocka_unit_test(test_tls_facts_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
