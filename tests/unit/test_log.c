/*
 * test_log.c: log.c writing to stderr: the line format, levels, roles, one
 * write(2) per line, the line limit, control characters.
 *
 * While a test logs, fd 2 is one end of a SOCK_SEQPACKET socket pair: a
 * seqpacket socket keeps the boundary of every write, so each record the
 * test receives is exactly one write(2) of log.c. fd 2 is put back before
 * anything is asserted (cmocka reports failures on stderr). Syslog is not
 * tested: it would write to the machine's log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MAX_WRITES 16

/* What one capture received: each write(2) to fd 2, as it came. */
struct captured {
	char *w[MAX_WRITES];
	size_t len[MAX_WRITES];
	int n;
};

static int cap_fd = -1, saved_stderr = -1;

static void
capture_start(void)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(sv[1], STDERR_FILENO), STDERR_FILENO);
	close(sv[1]);
	cap_fd = sv[0];
}

/* Put fd 2 back and collect what was written to it. */
static void
capture_end(struct captured *c)
{
	char buf[8192];
	ssize_t r;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	memset(c, 0, sizeof(*c));
	while ((r = recv(cap_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		assert_true(c->n < MAX_WRITES);
		c->w[c->n] = malloc((size_t)r + 1);
		assert_non_null(c->w[c->n]);
		memcpy(c->w[c->n], buf, (size_t)r);
		c->w[c->n][r] = '\0';
		c->len[c->n++] = (size_t)r;
	}
	close(cap_fd);
	cap_fd = -1;
}

static void
captured_free(struct captured *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->w[i]);
	c->n = 0;
}

/* The text after "LEVEL: " in one line. */
static const char *
message_of(const char *line)
{
	const char *p = strstr(line, ": ");

	assert_non_null(p);
	return p + 2;
}

static int
setup(void **state)
{
	log_setup(LOG_DEST_STDERR, LOG_LVL_INFO);
	log_set_role("main");
	return 0;
}

/* ------------------------------------------------------------------ */
/* tests                                                                */

/* "2025-01-31T12:00:00.123Z tlsfront[PID] ROLE LEVEL: message\n", the time
 * in UTC, now. */
static void
test_format(void **state)
{
	struct captured c;
	char want[128];
	regex_t re;
	struct tm tm;
	time_t before = time(NULL), t;

	capture_start();
	log_info("hello %s %d", "world", 7);
	capture_end(&c);
	assert_int_equal(c.n, 1);
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
	    "\\.[0-9]{3}Z tlsfront\\[[0-9]+\\] main info: hello world 7\n$", REG_EXTENDED), 0);
	if (regexec(&re, c.w[0], 0, NULL, 0) != 0)
		fail_msg("unexpected line: '%s'", c.w[0]);
	regfree(&re);
	snprintf(want, sizeof(want), " tlsfront[%ld] ", (long)getpid());
	assert_non_null(strstr(c.w[0], want));
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(c.w[0], "%Y-%m-%dT%H:%M:%S", &tm));
	t = timegm(&tm);
	assert_true(t >= before - 1 && t <= time(NULL) + 1);
	captured_free(&c);
}

static void
test_level_names(void **state)
{
	struct captured c;

	log_setup(LOG_DEST_STDERR, LOG_LVL_DEBUG);
	capture_start();
	log_error("e");
	log_warn("w");
	log_info("i");
	log_debug("d");
	capture_end(&c);
	assert_int_equal(c.n, 4);
	assert_non_null(strstr(c.w[0], " main error: e\n"));
	assert_non_null(strstr(c.w[1], " main warn: w\n"));
	assert_non_null(strstr(c.w[2], " main info: i\n"));
	assert_non_null(strstr(c.w[3], " main debug: d\n"));
	captured_free(&c);
}

/* Each level lets through itself and the levels above it, by the macros
 * and by log_msg itself. */
static void
test_levels_filter(void **state)
{
	static const enum log_level levels[] = { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO,
		LOG_LVL_DEBUG };

	for (int i = 0; i < 4; i++) {
		struct captured c;

		log_setup(LOG_DEST_STDERR, levels[i]);
		assert_int_equal(log_level_current, levels[i]);
		capture_start();
		log_error("e");
		log_warn("w");
		log_info("i");
		log_debug("d");
		for (int l = 0; l < 4; l++)
			log_msg(levels[l], "m%d", l);
		capture_end(&c);
		assert_int_equal(c.n, 2 * (i + 1));
		for (int l = 0; l <= i; l++) {
			static const char *const by_macro[] = { "e\n", "w\n", "i\n", "d\n" };
			char want[8];

			assert_string_equal(message_of(c.w[l]), by_macro[l]);
			snprintf(want, sizeof(want), "m%d\n", l);
			assert_string_equal(message_of(c.w[i + 1 + l]), want);
		}
		captured_free(&c);
	}
}

/* A level that is off costs no formatting: the arguments of its macro are
 * not even evaluated. */
static void
test_disabled_level_not_evaluated(void **state)
{
	struct captured c;
	int calls = 0;

	log_setup(LOG_DEST_STDERR, LOG_LVL_WARN);
	capture_start();
	log_info("%d", ++calls);
	log_debug("%d", ++calls);
	log_warn("%d", ++calls);
	capture_end(&c);
	assert_int_equal(calls, 1);
	assert_int_equal(c.n, 1);
	assert_string_equal(message_of(c.w[0]), "1\n");
	captured_free(&c);
}

static void
test_role(void **state)
{
	struct captured c;

	capture_start();
	log_set_role("worker 3");
	log_info("a");
	log_set_role("a-role-name-much-longer-than-thirty-two-bytes");
	log_info("b");
	log_set_role("main");
	log_info("c");
	capture_end(&c);
	assert_int_equal(c.n, 3);
	assert_non_null(strstr(c.w[0], "] worker 3 info: a\n"));
	/* cut to 31 bytes, not dropped */
	assert_non_null(strstr(c.w[1], "] a-role-name-much-longer-than-th info: b\n"));
	assert_non_null(strstr(c.w[2], "] main info: c\n"));
	captured_free(&c);
}

/* One write per line, each ending in its one newline. */
static void
test_one_write_per_line(void **state)
{
	struct captured c;

	capture_start();
	for (int i = 0; i < 10; i++)
		log_info("line %d of %s", i, "ten");
	capture_end(&c);
	assert_int_equal(c.n, 10);
	for (int i = 0; i < 10; i++) {
		char want[32];
		snprintf(want, sizeof(want), "line %d of ten\n", i);
		assert_string_equal(message_of(c.w[i]), want);
		assert_int_equal(c.w[i][c.len[i] - 1], '\n');
		assert_ptr_equal(strchr(c.w[i], '\n'), c.w[i] + c.len[i] - 1);
	}
	captured_free(&c);
}

/* A message longer than the limit is cut, and still one line in one write
 * of at most 2 KiB. */
static void
test_line_limit(void **state)
{
	struct captured c;
	char *big = malloc(10001);

	assert_non_null(big);
	memset(big, 'x', 10000);
	big[10000] = '\0';
	capture_start();
	log_error("%s", big);
	log_error("after");
	capture_end(&c);
	assert_int_equal(c.n, 2);
	assert_true(c.len[0] <= 2048);
	assert_true(c.len[0] > 2000);
	assert_int_equal(c.w[0][c.len[0] - 1], '\n');
	assert_ptr_equal(strchr(c.w[0], '\n'), c.w[0] + c.len[0] - 1);
	const char *m = message_of(c.w[0]);
	assert_int_equal(strspn(m, "x"), strlen(m) - 1);
	assert_string_equal(message_of(c.w[1]), "after\n");
	free(big);
	captured_free(&c);
}

/* Control characters (a newline in an SNI name) cannot start a forged
 * line: each becomes '?'. */
static void
test_control_characters(void **state)
{
	struct captured c;

	capture_start();
	log_info("sni=%s", "evil\n2025-01-01T00:00:00.000Z tlsfront[1] main error: x\r\t\x7f.");
	capture_end(&c);
	assert_int_equal(c.n, 1);
	assert_string_equal(message_of(c.w[0]),
	    "sni=evil?2025-01-01T00:00:00.000Z tlsfront[1] main error: x???.\n");
	captured_free(&c);
}

/* log_batch: lines wait for log_flush, go out in order, whole, in writes of
 * at most PIPE_BUF bytes (atomic on a pipe); a line that would overflow the
 * batch sends it first; after log_batch(0) each line is one write again. */
static void
test_batch(void **state)
{
	struct captured c;
	char pad[200];
	int lines = 0, next = 0;

	(void)state;
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	capture_start();
	log_batch(1);
	log_info("first");
	log_flush();
	log_info("held");
	capture_end(&c);
	assert_int_equal(c.n, 1);	/* "held" waits for the flush */
	assert_string_equal(message_of(c.w[0]), "first\n");
	captured_free(&c);

	capture_start();
	log_flush();	/* "held" */
	for (int i = 0; i < 40; i++)
		log_info("%d %s", i, pad);
	log_flush();
	log_batch(0);
	log_info("alone");
	capture_end(&c);
	assert_true(c.n >= 3);	/* 40 lines of ~250 bytes need 3 writes at least */
	for (int w = 0; w < c.n - 1; w++) {
		char *line = c.w[w], *nl;

		assert_true(c.len[w] <= PIPE_BUF);
		assert_int_equal(c.w[w][c.len[w] - 1], '\n');
		for (; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
			char want[16];

			*nl = '\0';
			if (lines++ == 0) {
				assert_string_equal(message_of(line), "held");
				continue;
			}
			snprintf(want, sizeof(want), "%d ", next++);
			assert_true(strncmp(message_of(line), want, strlen(want)) == 0);
		}
	}
	assert_int_equal(next, 40);
	assert_string_equal(message_of(c.w[c.n - 1]), "alone\n");
	captured_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_format, setup),
		cmocka_unit_test_setup(test_level_names, setup),
		cmocka_unit_test_setup(test_levels_filter, setup),
		cmocka_unit_test_setup(test_disabled_level_not_evaluated, setup),
		cmocka_unit_test_setup(test_role, setup),
		cmocka_unit_test_setup(test_one_write_per_line, setup),
		cmocka_unit_test_setup(test_line_limit, setup),
		cmocka_unit_test_setup(test_control_characters, setup),
		cmocka_unit_test_setup(test_batch, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
