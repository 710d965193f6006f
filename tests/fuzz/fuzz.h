/*
 * fuzz.h: what every libFuzzer target here shares.
 *
 * CHECK(cond): an invariant of the code under test; when it fails, say
 * which one and abort, which libFuzzer reports as a crash and saves the
 * input that caused it.
 */
#ifndef TLSFRONT_FUZZ_H
#define TLSFRONT_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#endif
