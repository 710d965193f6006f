/*
 * test_addr.c: addr_parse, addr_equal and addr_format.
 *
 * No network is needed: the only name resolved is "localhost", which
 * getaddrinfo() answers from /etc/hosts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "addr.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static void
parse_ok(const char *s, struct addr *a)
{
	char err[256] = "";

	if (addr_parse(s, a, err, sizeof(err)) != 0)
		fail_msg("addr_parse('%s') failed: %s", s, err);
}

/* addr_parse(s) must fail with a message that contains needle. */
static void
parse_fails(const char *s, const char *needle)
{
	struct addr a;
	char err[256] = "";

	if (addr_parse(s, &a, err, sizeof(err)) == 0)
		fail_msg("addr_parse('%s') succeeded as '%s'", s, a.text);
	assert_true(err[0] != '\0');
	if (needle != NULL && strstr(err, needle) == NULL)
		fail_msg("addr_parse('%s'): error '%s' lacks '%s'", s, err, needle);
}

static const struct sockaddr_in *
v4(const struct addr *a)
{
	return (const struct sockaddr_in *)(const void *)&a->ss;
}

static const struct sockaddr_in6 *
v6(const struct addr *a)
{
	return (const struct sockaddr_in6 *)(const void *)&a->ss;
}

static const struct sockaddr_un *
un(const struct addr *a)
{
	return (const struct sockaddr_un *)(const void *)&a->ss;
}

/* ------------------------------------------------------------------ */
/* addr_parse: accepted forms                                           */

static void
test_parse_ipv4(void **state)
{
	struct addr a;
	struct in_addr want;

	parse_ok("127.0.0.1:8080", &a);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(v4(&a)->sin_port), 8080);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &want), 1);
	assert_int_equal(v4(&a)->sin_addr.s_addr, want.s_addr);
	assert_string_equal(a.text, "127.0.0.1:8080");
}

static void
test_parse_ipv4_any(void **state)
{
	struct addr a;

	parse_ok("0.0.0.0:443", &a);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(v4(&a)->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(v4(&a)->sin_port), 443);
	assert_string_equal(a.text, "0.0.0.0:443");
}

static void
test_parse_port_bounds(void **state)
{
	struct addr a;

	parse_ok("10.1.2.3:1", &a);
	assert_int_equal(ntohs(v4(&a)->sin_port), 1);
	assert_string_equal(a.text, "10.1.2.3:1");
	parse_ok("10.1.2.3:65535", &a);
	assert_int_equal(ntohs(v4(&a)->sin_port), 65535);
	assert_string_equal(a.text, "10.1.2.3:65535");
}

static void
test_parse_port_leading_zeros_canonical(void **state)
{
	struct addr a;

	parse_ok("10.0.0.1:0080", &a);
	assert_int_equal(ntohs(v4(&a)->sin_port), 80);
	assert_string_equal(a.text, "10.0.0.1:80");
}

static void
test_parse_ipv6_loopback(void **state)
{
	struct addr a;

	parse_ok("[::1]:8443", &a);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(v6(&a)->sin6_port), 8443);
	assert_memory_equal(&v6(&a)->sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));
	assert_string_equal(a.text, "[::1]:8443");
}

static void
test_parse_ipv6_any(void **state)
{
	struct addr a;

	parse_ok("[::]:443", &a);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_memory_equal(&v6(&a)->sin6_addr, &in6addr_any, sizeof(struct in6_addr));
	assert_string_equal(a.text, "[::]:443");
}

static void
test_parse_ipv6_canonical_text(void **state)
{
	struct addr a;
	struct in6_addr want;

	parse_ok("[2001:DB8:0:0:0:0:0:1]:443", &a);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &want), 1);
	assert_memory_equal(&v6(&a)->sin6_addr, &want, sizeof(want));
	assert_string_equal(a.text, "[2001:db8::1]:443");
}

static void
test_parse_ipv6_v4mapped(void **state)
{
	struct addr a;

	parse_ok("[::ffff:192.0.2.1]:80", &a);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_string_equal(a.text, "[::ffff:192.0.2.1]:80");
}

static void
test_parse_unix(void **state)
{
	struct addr a;

	parse_ok("unix:/run/app.sock", &a);
	assert_int_equal(a.ss.ss_family, AF_UNIX);
	assert_string_equal(un(&a)->sun_path, "/run/app.sock");
	assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) +
	    strlen("/run/app.sock") + 1);
	assert_string_equal(a.text, "unix:/run/app.sock");
}

static void
test_parse_unix_longest_path(void **state)
{
	struct sockaddr_un sun;
	char s[16 + sizeof(sun.sun_path)], path[sizeof(sun.sun_path)];
	struct addr a;

	/* the longest path that still leaves room for the NUL */
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	snprintf(s, sizeof(s), "unix:%s", path);
	parse_ok(s, &a);
	assert_string_equal(un(&a)->sun_path, path);
	assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + sizeof(path));
	assert_string_equal(a.text, s);
}

static void
test_parse_localhost_resolves(void **state)
{
	struct addr a;

	parse_ok("localhost:80", &a);
	if (a.ss.ss_family == AF_INET) {
		assert_int_equal(v4(&a)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
		assert_int_equal(ntohs(v4(&a)->sin_port), 80);
		assert_int_equal(a.len, sizeof(struct sockaddr_in));
		assert_string_equal(a.text, "127.0.0.1:80");
	} else if (a.ss.ss_family == AF_INET6) {
		assert_memory_equal(&v6(&a)->sin6_addr, &in6addr_loopback,
		    sizeof(struct in6_addr));
		assert_int_equal(ntohs(v6(&a)->sin6_port), 80);
		assert_int_equal(a.len, sizeof(struct sockaddr_in6));
		assert_string_equal(a.text, "[::1]:80");
	} else {
		fail_msg("localhost resolved to family %d", a.ss.ss_family);
	}
}

/* ------------------------------------------------------------------ */
/* addr_parse: refused forms                                            */

static void
test_err_no_port(void **state)
{
	parse_fails("127.0.0.1", "expected host:port");
	parse_fails("localhost", "expected host:port");
}

static void
test_err_empty_port(void **state)
{
	parse_fails("127.0.0.1:", "bad port");
}

static void
test_err_port_zero(void **state)
{
	parse_fails("127.0.0.1:0", "bad port");
	parse_fails("127.0.0.1:00", "bad port");
}

static void
test_err_port_too_big(void **state)
{
	parse_fails("127.0.0.1:65536", "bad port");
	parse_fails("127.0.0.1:99999", "bad port");
	/* beyond unsigned long: strtoul saturates, must still be refused */
	parse_fails("127.0.0.1:99999999999999999999999999", "bad port");
	/* 2^32 + 80 must not wrap to 80 */
	parse_fails("127.0.0.1:4294967376", "bad port");
}

static void
test_err_port_junk(void **state)
{
	parse_fails("127.0.0.1:80x", "bad port");
	parse_fails("127.0.0.1:8 0", "bad port");
	parse_fails("127.0.0.1: 80", "bad port");
	parse_fails("127.0.0.1:+80", "bad port");
	parse_fails("127.0.0.1:-80", "bad port");
	parse_fails("127.0.0.1:0x50", "bad port");
	parse_fails("127.0.0.1:http", "bad port");
}

static void
test_err_bare_ipv6(void **state)
{
	parse_fails("::1:80", "[v6]:port");
	parse_fails("2001:db8::1:443", "[v6]:port");
	parse_fails("::1", NULL);
	parse_fails("fe80::1", NULL);
}

static void
test_err_bracket_forms(void **state)
{
	parse_fails("[::1]", "[v6]:port");
	parse_fails("[::1", "[v6]:port");
	parse_fails("[::1]x:80", "[v6]:port");
	parse_fails("[::1]80", "[v6]:port");
	parse_fails("[::1]:", "bad port");
	parse_fails("[::1]:0", "bad port");
	parse_fails("[::1]:65536", "bad port");
	parse_fails("[]:80", NULL);
}

static void
test_err_bracketed_ipv4(void **state)
{
	parse_fails("[127.0.0.1]:80", "bad IPv6");
	parse_fails("[localhost]:80", "bad IPv6");
	parse_fails("[::g]:80", "bad IPv6");
}

static void
test_err_unix_relative(void **state)
{
	parse_fails("unix:run/app.sock", "absolute");
	parse_fails("unix:./app.sock", "absolute");
	parse_fails("unix:", "absolute");
}

static void
test_err_unix_too_long(void **state)
{
	struct sockaddr_un sun;
	char s[16 + sizeof(sun.sun_path) + 1], path[sizeof(sun.sun_path) + 1];

	/* sizeof(sun_path) bytes: no room left for the NUL */
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	snprintf(s, sizeof(s), "unix:%s", path);
	parse_fails(s, "too long");
}

static void
test_err_empty_host(void **state)
{
	parse_fails(":80", NULL);
	parse_fails("", NULL);
}

static void
test_err_host_too_long(void **state)
{
	char s[400];

	memset(s, 'a', 300);
	strcpy(s + 300, ":80");
	parse_fails(s, NULL);
}

static void
test_err_message_names_input(void **state)
{
	parse_fails("127.0.0.1:70000", "127.0.0.1:70000");
	parse_fails("unix:rel", "unix:rel");
}

static void
test_err_small_buffer_truncates(void **state)
{
	struct addr a;
	char err[8];

	memset(err, 'X', sizeof(err));
	assert_int_equal(addr_parse("127.0.0.1:0", &a, err, sizeof(err)), -1);
	assert_true(memchr(err, '\0', sizeof(err)) != NULL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

/* ------------------------------------------------------------------ */
/* addr_equal                                                           */

static int
eq(const char *x, const char *y)
{
	struct addr a, b;

	parse_ok(x, &a);
	parse_ok(y, &b);
	assert_int_equal(addr_equal(&a, &b), addr_equal(&b, &a));	/* symmetric */
	return addr_equal(&a, &b);
}

static void
test_equal_ipv4(void **state)
{
	assert_true(eq("127.0.0.1:80", "127.0.0.1:80"));
	assert_true(eq("127.0.0.1:80", "127.0.0.1:080"));
	assert_false(eq("127.0.0.1:80", "127.0.0.1:81"));
	assert_false(eq("127.0.0.1:80", "127.0.0.2:80"));
	assert_false(eq("0.0.0.0:443", "127.0.0.1:443"));
}

static void
test_equal_ipv6(void **state)
{
	assert_true(eq("[::1]:80", "[::1]:80"));
	assert_true(eq("[::1]:80", "[0:0:0:0:0:0:0:1]:80"));
	assert_false(eq("[::1]:80", "[::1]:81"));
	assert_false(eq("[::1]:80", "[::2]:80"));
	assert_false(eq("[::]:443", "[::1]:443"));
}

static void
test_equal_families_differ(void **state)
{
	assert_false(eq("127.0.0.1:80", "[::ffff:127.0.0.1]:80"));
	assert_false(eq("0.0.0.0:443", "[::]:443"));
	assert_false(eq("127.0.0.1:80", "unix:/run/a.sock"));
	assert_false(eq("[::1]:80", "unix:/run/a.sock"));
}

static void
test_equal_unix(void **state)
{
	assert_true(eq("unix:/run/a.sock", "unix:/run/a.sock"));
	assert_false(eq("unix:/run/a.sock", "unix:/run/b.sock"));
	assert_false(eq("unix:/run/a.sock", "unix:/run/a.sock2"));
}

static void
test_equal_resolved_name(void **state)
{
	struct addr a;

	parse_ok("localhost:80", &a);
	if (a.ss.ss_family == AF_INET) {
		assert_true(eq("localhost:80", "127.0.0.1:80"));
		assert_false(eq("localhost:80", "127.0.0.1:81"));
	} else {
		assert_true(eq("localhost:80", "[::1]:80"));
		assert_false(eq("localhost:80", "[::1]:81"));
	}
}

/* ------------------------------------------------------------------ */
/* addr_format                                                          */

static void
test_format_ipv4(void **state)
{
	struct sockaddr_in sin;
	char buf[ADDR_TEXT_MAX];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(5);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr), 1);
	assert_ptr_equal(addr_format((struct sockaddr *)&sin, sizeof(sin), buf, sizeof(buf)), buf);
	assert_string_equal(buf, "192.0.2.1:5");
}

static void
test_format_ipv6(void **state)
{
	struct sockaddr_in6 sin6;
	char buf[ADDR_TEXT_MAX];

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::abcd", &sin6.sin6_addr), 1);
	assert_ptr_equal(addr_format((struct sockaddr *)&sin6, sizeof(sin6), buf, sizeof(buf)), buf);
	assert_string_equal(buf, "[2001:db8::abcd]:65535");

	sin6.sin6_addr = in6addr_loopback;
	sin6.sin6_port = htons(443);
	addr_format((struct sockaddr *)&sin6, sizeof(sin6), buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:443");
}

static void
test_format_unix_path(void **state)
{
	struct sockaddr_un sun;
	char buf[ADDR_TEXT_MAX];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/tmp/s.sock");
	addr_format((struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sun.sun_path) + 1),
	    buf, sizeof(buf));
	assert_string_equal(buf, "unix:/tmp/s.sock");
}

static void
test_format_unix_unnamed(void **state)
{
	struct sockaddr_un sun;
	char buf[ADDR_TEXT_MAX];

	/* what accept() returns for an unbound unix client */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/stale");	/* beyond len: must not be read */
	addr_format((struct sockaddr *)&sun, sizeof(sa_family_t), buf, sizeof(buf));
	assert_string_equal(buf, "unix");

	/* abstract / empty path */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	addr_format((struct sockaddr *)&sun, sizeof(sun), buf, sizeof(buf));
	assert_string_equal(buf, "unix");
}

static void
test_format_null_and_unknown(void **state)
{
	struct sockaddr_storage ss;
	char buf[ADDR_TEXT_MAX];

	assert_string_equal(addr_format(NULL, 0, buf, sizeof(buf)), "-");
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	assert_string_equal(addr_format((struct sockaddr *)&ss, 0, buf, sizeof(buf)), "-");
	ss.ss_family = 250;	/* no such family */
	assert_string_equal(addr_format((struct sockaddr *)&ss, sizeof(ss), buf, sizeof(buf)), "?");
}

static void
test_format_truncates(void **state)
{
	struct sockaddr_in sin;
	char buf[6];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(5);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr), 1);
	addr_format((struct sockaddr *)&sin, sizeof(sin), buf, sizeof(buf));
	assert_string_equal(buf, "192.0");
}

static void
test_format_roundtrip_parse(void **state)
{
	static const char *const in[] = {
		"127.0.0.1:1", "255.255.255.255:65535", "[::1]:2", "[fe80::1:2:3:4]:5",
		"unix:/a",
	};
	char buf[ADDR_TEXT_MAX];

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct addr a;

		parse_ok(in[i], &a);
		assert_string_equal(a.text, in[i]);
		addr_format((struct sockaddr *)&a.ss, a.len, buf, sizeof(buf));
		assert_string_equal(buf, in[i]);
	}
}

/* ------------------------------------------------------------------ */
/* CIDR networks (accept_proxy)                                         */

static struct sockaddr_storage
sa_of(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

static int
in_net(const char *net, const char *ip)
{
	struct cidr c;
	char err[128];
	struct sockaddr_storage ss = sa_of(ip);

	assert_int_equal(cidr_parse(net, &c, err, sizeof(err)), 0);
	return cidr_match(&c, (struct sockaddr *)&ss);
}

static void
test_cidr_match(void **state)
{
	(void)state;
	assert_true(in_net("10.0.0.0/8", "10.255.1.2"));
	assert_false(in_net("10.0.0.0/8", "11.0.0.1"));
	assert_true(in_net("192.0.2.7", "192.0.2.7"));
	assert_false(in_net("192.0.2.7", "192.0.2.8"));
	assert_true(in_net("192.0.2.0/25", "192.0.2.127"));
	assert_false(in_net("192.0.2.0/25", "192.0.2.128"));
	assert_true(in_net("0.0.0.0/0", "203.0.113.9"));
	assert_true(in_net("::1", "::1"));
	assert_false(in_net("::1", "::2"));
	assert_true(in_net("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in_net("2001:db8::/32", "2001:db9::1"));
	/* a v4-mapped v6 peer matches a v4 network, not a v6 one */
	assert_true(in_net("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_false(in_net("::/0", "127.0.0.1"));
	assert_false(in_net("127.0.0.0/8", "::1"));
}

static void
test_cidr_errors(void **state)
{
	struct cidr c;
	char err[128];

	(void)state;
	assert_int_equal(cidr_parse("10.0.0.0/33", &c, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse("10.0.0.1/8", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "host bits"));
	assert_int_equal(cidr_parse("10.0.0.0/", &c, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse("10.0.0.0/x", &c, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse("host.example/8", &c, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse("", &c, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse("::1/129", &c, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse("::/0", &c, err, sizeof(err)), 0);
	assert_int_equal(c.prefix, 0);
	assert_int_equal(c.family, AF_INET6);
}

/* addr_parse_all: a host name is every address it resolves to, each
 * once, at most max; an address written as such is itself. */
static void
test_parse_all(void **state)
{
	struct addr v[8];
	char err[256];
	int n;

	(void)state;
	assert_int_equal(addr_parse_all("10.0.0.1:80", v, 8, err, sizeof(err)), 1);
	assert_string_equal(v[0].text, "10.0.0.1:80");
	assert_int_equal(addr_parse_all("unix:/run/a.sock", v, 8, err, sizeof(err)), 1);
	assert_string_equal(v[0].text, "unix:/run/a.sock");
	n = addr_parse_all("localhost:80", v, 8, err, sizeof(err));
	assert_true(n >= 1 && n <= 2);
	for (int i = 0; i < n; i++) {
		assert_true(v[i].ss.ss_family == AF_INET || v[i].ss.ss_family == AF_INET6);
		for (int j = 0; j < i; j++)
			assert_false(addr_equal(&v[i], &v[j]));
	}
	assert_int_equal(addr_parse_all("localhost:80", v, 1, err, sizeof(err)), 1);
	assert_int_equal(addr_parse_all("10.0.0.1:0", v, 8, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_ipv4_any),
		cmocka_unit_test(test_parse_port_bounds),
		cmocka_unit_test(test_parse_port_leading_zeros_canonical),
		cmocka_unit_test(test_parse_ipv6_loopback),
		cmocka_unit_test(test_parse_ipv6_any),
		cmocka_unit_test(test_parse_ipv6_canonical_text),
		cmocka_unit_test(test_parse_ipv6_v4mapped),
		cmocka_unit_test(test_parse_unix),
		cmocka_unit_test(test_parse_unix_longest_path),
		cmocka_unit_test(test_parse_localhost_resolves),
		cmocka_unit_test(test_err_no_port),
		cmocka_unit_test(test_err_empty_port),
		cmocka_unit_test(test_err_port_zero),
		cmocka_unit_test(test_err_port_too_big),
		cmocka_unit_test(test_err_port_junk),
		cmocka_unit_test(test_err_bare_ipv6),
		cmocka_unit_test(test_err_bracket_forms),
		cmocka_unit_test(test_err_bracketed_ipv4),
		cmocka_unit_test(test_err_unix_relative),
		cmocka_unit_test(test_err_unix_too_long),
		cmocka_unit_test(test_err_empty_host),
		cmocka_unit_test(test_err_host_too_long),
		cmocka_unit_test(test_err_message_names_input),
		cmocka_unit_test(test_err_small_buffer_truncates),
		cmocka_unit_test(test_equal_ipv4),
		cmocka_unit_test(test_equal_ipv6),
		cmocka_unit_test(test_equal_families_differ),
		cmocka_unit_test(test_equal_unix),
		cmocka_unit_test(test_equal_resolved_name),
		cmocka_unit_test(test_format_ipv4),
		cmocka_unit_test(test_format_ipv6),
		cmocka_unit_test(test_format_unix_path),
		cmocka_unit_test(test_format_unix_unnamed),
		cmocka_unit_test(test_format_null_and_unknown),
		cmocka_unit_test(test_format_truncates),
		cmocka_unit_test(test_format_roundtrip_parse),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_cidr_errors),
		cmocka_unit_test(test_parse_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
