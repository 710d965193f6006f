/*
 * test_acme_http.c: what acme_http.c makes of a CA's answers without a
 * network: Retry-After (seconds, HTTP date), RFC 3339 times (ARI windows),
 * problem documents (problem+json, subproblems), and hostile or broken
 * bodies, which must give a harmless line and never a crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme_http.h"

static void
resp(struct acme_resp *r, long status, const char *ct, const char *body)
{
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
	r->status = status;
	r->content_type = ct ? strdup(ct) : NULL;
	if (body != NULL) {
		r->body = strdup(body);
		r->len = strlen(body);
	}
}

static void
test_retry_after(void **state)
{
	time_t now = 784111777;	/* Sun, 06 Nov 1994 08:49:37 GMT */

	assert_int_equal(acme_parse_retry_after("120", now), 120);
	assert_int_equal(acme_parse_retry_after("0", now), 0);
	assert_int_equal(acme_parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), 60);
	/* a date in the past: now */
	assert_int_equal(acme_parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);
	assert_int_equal(acme_parse_retry_after("12x", now), -1);
	assert_int_equal(acme_parse_retry_after("", now), -1);
	assert_int_equal(acme_parse_retry_after("99999999999999999999", now), -1);
	assert_int_equal(acme_parse_retry_after("soon", now), -1);
}

static void
test_rfc3339(void **state)
{
	time_t t;

	assert_int_equal(acme_parse_rfc3339("1994-11-06T08:49:37Z", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(acme_parse_rfc3339("1994-11-06T08:49:37.123456Z", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(acme_parse_rfc3339("1994-11-06T10:49:37+02:00", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(acme_parse_rfc3339("1994-11-06t07:49:37-01:00", &t), 0);
	assert_int_equal(t, 784111777);
	static const char *const bad[] = {
		"", "1994-11-06", "1994-11-06T08:49:37", "1994-11-06T08:49:37+1", "1994-11-06T08:49:37+01",
		"1994-11-06T08:49:37+01:0", "1994-13-06T08:49:37Z", "1994-11-06T25:49:37Z",
		"1994-11-06T08:49:37Zjunk", "x994-11-06T08:49:37Z", "1994-11-06T-1:49:37Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(acme_parse_rfc3339(bad[i], &t), -1);
	assert_int_equal(acme_parse_rfc3339(NULL, &t), -1);
}

static void
test_problem_text(void **state)
{
	struct acme_resp r;
	char *t;

	resp(&r, 400, "application/problem+json",
	    "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"no\","
	    "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:caa\",\"detail\":\"CAA\","
	    "\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"}},{\"type\":7}]}");
	t = acme_problem_text(&r);
	assert_string_equal(t, "HTTP 400: urn:ietf:params:acme:error:rejectedIdentifier: no "
	    "(subproblems: a.example: urn:ietf:params:acme:error:caa: CAA; (no type))");
	assert_int_equal(acme_resp_is_problem(&r, "rejectedIdentifier"), 1);
	assert_int_equal(acme_resp_is_problem(&r, "badNonce"), 0);
	free(t);
	acme_resp_free(&r);
	assert_null(r.body);
	assert_int_equal(r.retry_after, -1);

	/* badNonce, and control characters in the detail */
	resp(&r, 400, "application/problem+json",
	    "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"a\\nb\\u0000c\"}");
	assert_int_equal(acme_resp_is_problem(&r, "badNonce"), 1);
	t = acme_problem_text(&r);
	/* the string ends at the NUL for jansson's string_value */
	assert_string_equal(t, "HTTP 400: urn:ietf:params:acme:error:badNonce: a?b");
	free(t);
	acme_resp_free(&r);

	/* no answer at all */
	resp(&r, 0, NULL, NULL);
	strcpy(r.error, "Connection refused");
	t = acme_problem_text(&r);
	assert_string_equal(t, "no answer: Connection refused");
	free(t);
	acme_resp_free(&r);
}

/* Whatever the body, a line and no crash (run under ASan/valgrind to see
 * reads past the end). */
static void
test_hostile_bodies(void **state)
{
	static const char *const bodies[] = {
		"", "{", "[]", "null", "\"x\"", "{\"type\":null}", "{\"type\":[1,2]}",
		"{\"type\":\"t\",\"detail\":{}}", "{\"subproblems\":{}}",
		"{\"subproblems\":[1,\"x\",null,{\"identifier\":5},{\"identifier\":{\"value\":3}}]}",
		"{\"type\":\"urn:ietf:params:acme:error:\"}", "\xff\xfe",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct acme_resp r;
		char *t;

		resp(&r, 500, "application/problem+json", bodies[i]);
		t = acme_problem_text(&r);
		assert_non_null(t);
		assert_true(strncmp(t, "HTTP 500", 8) == 0);
		assert_int_equal(acme_resp_is_problem(&r, "badNonce"), 0);
		free(t);
		acme_resp_free(&r);
	}
	/* a problem body with another content type is no problem document */
	{
		struct acme_resp r;
		char *t;

		resp(&r, 503, "text/html", "{\"type\":\"urn:ietf:params:acme:error:badNonce\"}");
		assert_int_equal(acme_resp_is_problem(&r, "badNonce"), 0);
		t = acme_problem_text(&r);
		assert_string_equal(t, "HTTP 503");
		free(t);
		acme_resp_free(&r);
	}
	{
		char *t = acme_problem_obj_text(NULL);
		assert_string_equal(t, "(no problem document)");
		free(t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_problem_text),
		cmocka_unit_test(test_hostile_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
