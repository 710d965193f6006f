/*
 * unit_util.h: helpers shared by the unit tests that are not about
 * certificates (those are in unit_pki.h): counting open descriptors, a
 * temporary directory with files in it, stderr into a pipe, printing
 * diagnostics. Plain libc and cmocka: a test links unit_util.c and nothing
 * more for them.
 *
 * "Fails the running test" means a cmocka assertion, so these are for use
 * inside a test or a setup function (cmocka_unit_test_setup_teardown).
 */
#ifndef TLSFRONT_UNIT_UTIL_H
#define TLSFRONT_UNIT_UTIL_H

#include <stddef.h>

struct diag;

/*
 * The number of descriptors this process has open, counted in
 * /proc/self/fd (the one the count itself opens is not counted). Fails the
 * running test if /proc/self/fd cannot be opened.
 */
int unit_count_fds(void);

/*
 * Make a new, empty directory "/tmp/NAME.XXXXXX" (mkdtemp, mode 0700) and
 * put its path in dir (size bytes). Returns 0; or -1 with errno set
 * (ENAMETOOLONG if the path does not fit, else mkdtemp's), and dir is then
 * "" (which unit_rmtree takes as nothing to remove). Does not fail the test
 * itself: the caller asserts, or its setup returns -1.
 */
int unit_tmpdir(char *dir, size_t size, const char *name);

/*
 * Remove dir and everything below it, depth first, symbolic links not
 * followed (nftw with FTW_DEPTH | FTW_PHYS). dir "" is a no-op. Returns 0,
 * or -1 if something could not be removed (it stops there).
 */
int unit_rmtree(const char *dir);

/*
 * "DIR/REL" in a static buffer: one of 8 used in turn, so up to 8 results
 * may be in use at once (e.g. as arguments of one call); the 9th call
 * overwrites the first. Fails the running test if the path is longer than
 * PATH_MAX - 1.
 */
const char *unit_path(const char *dir, const char *rel);

/*
 * Write len bytes of data to path: the file is created (mode 0666 less the
 * umask, as fopen "w" does) or truncated. Fails the running test on any
 * error.
 */
void unit_write(const char *path, const void *data, size_t len);

/* unit_write of the string text (without its NUL) to unit_path(dir, rel). */
void unit_put(const char *dir, const char *rel, const char *text);

/*
 * Send what is written to fd 2 from now on into a pipe (non-blocking,
 * close-on-exec) instead, until unit_stderr_end. One at a time: no
 * nesting. Fails the running test if the pipe cannot be made.
 */
void unit_stderr_start(void);

/*
 * Put fd 2 back as it was before unit_stderr_start and read what was
 * written to it meanwhile into buf, NUL-terminated: at most size - 1 bytes
 * (size > 0), the rest is dropped. The pipe is closed.
 */
void unit_stderr_end(char *buf, size_t size);

/* Print every message of d, one "  diag: MSG" line each (cmocka's
 * print_message), to show why a test is about to fail. */
void unit_print_diag(const struct diag *d);

/* Does s start with prefix? (1 or 0) */
int unit_starts(const char *s, const char *prefix);

#endif
