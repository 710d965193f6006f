/*
 * fuzz_config.c: libFuzzer target for the configuration loader,
 * config_load_all() of src/config.c (the line reader in front of inih,
 * section and key handling, every value parser, [defaults] inheritance).
 *
 * Input: one or more files separated by lines that are exactly "%%". The
 * first is written to DIR/main.ini, the others to DIR/hosts.d/00.ini,
 * 01.ini, ... (at most 8), in a private directory made once per process
 * (under /dev/shm when it exists, for speed); then config_load_all() reads
 * DIR/main.ini as `tlsfront -t` would. Seeds name `hosts = hosts.d/NAME.ini` globs.
 *
 * The loader must stay inside that directory and off the network, so two C
 * library functions are replaced in this binary: getaddrinfo()
 * (resolver_stub.c: only localhost names resolve) and glob(), which returns
 * no match for any pattern outside DIR or with a component starting with
 * '.' or containing '\' (so no "..").
 *
 * Checked, besides ASan/UBSan/LeakSanitizer: config_load_all() returns a
 * config; every message is "FILE:LINE: text" or "FILE: text" with FILE one
 * of ours and LINE within it; the error count matches the messages; and a
 * configuration without errors is complete and within every bound the key
 * table states (hosts with cert, key, backend and listeners, labels and
 * names in normal form, timeouts and numbers in range, values trimmed,
 * client_allow parsed entry for entry).
 *
 * The loader is config.c with config_read.c, config_value.c and
 * config_keys.c (Makefile.am lists them).
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clientauth.h"
#include "config.h"
#include "config_value.h"
#include "diag.h"
#include "sni.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz.h"

#define MAX_HOST_FILES 8
#define SEP "%%"

static char dir[64];
static size_t dir_len;
static char main_path[128];

/* ---- the sandbox ---------------------------------------------------------- */

static void
remove_dir(void)
{
	char p[160];

	for (int i = 0; i < MAX_HOST_FILES; i++) {
		snprintf(p, sizeof(p), "%s/hosts.d/%02d.ini", dir, i);
		(void)unlink(p);
	}
	snprintf(p, sizeof(p), "%s/hosts.d", dir);
	(void)rmdir(p);
	(void)unlink(main_path);
	(void)rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;
	const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char p[160];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/tlsfront-fuzz-config.XXXXXX", base);
	CHECK(mkdtemp(dir) != NULL);
	dir_len = strlen(dir);
	snprintf(main_path, sizeof(main_path), "%s/main.ini", dir);
	snprintf(p, sizeof(p), "%s/hosts.d", dir);
	CHECK(mkdir(p, 0700) == 0);
	atexit(remove_dir);
	return 0;
}

/*
 * glob(3), restricted to the sandbox: hosts = /etc/... or /dev/... must not
 * make the fuzzer read (or, for some devices, open) files of the machine.
 */
int
glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *pglob)
{
	static int (*real_glob)(const char *, int, int (*)(const char *, int), glob_t *);

	if (strncmp(pattern, dir, dir_len) != 0 || pattern[dir_len] != '/' ||
	    strstr(pattern, "/.") != NULL || strchr(pattern, '\\') != NULL) {
		memset(pglob, 0, sizeof(*pglob));
		return GLOB_NOMATCH;
	}
	if (real_glob == NULL) {
		*(void **)&real_glob = dlsym(RTLD_NEXT, "glob");
		CHECK(real_glob != NULL);
	}
	return real_glob(pattern, flags, errfunc, pglob);
}

static void
put(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(len == 0 || write(fd, data, len) == (ssize_t)len);
	close(fd);
}

/* ---- the checks ----------------------------------------------------------- */

struct file { const char *name; size_t lines; };	/* name relative to dir */

/* Every message is "DIR/NAME:LINE: text" or "DIR/NAME: text", NAME one of files. */
static void
check_message(const char *m, const struct file *files, size_t n_files)
{
	const char *rel, *colon, *text;
	size_t i;

	CHECK(strncmp(m, dir, dir_len) == 0 && m[dir_len] == '/');
	rel = m + dir_len + 1;
	CHECK((colon = strchr(rel, ':')) != NULL);
	for (i = 0; i < n_files; i++)
		if (strlen(files[i].name) == (size_t)(colon - rel) &&
		    memcmp(files[i].name, rel, (size_t)(colon - rel)) == 0)
			break;
	CHECK(i < n_files);
	if (colon[1] == ' ') {
		text = colon + 2;
	} else {
		char *end;
		unsigned long line = strtoul(colon + 1, &end, 10);
		CHECK(colon[1] >= '1' && colon[1] <= '9' && end[0] == ':' && end[1] == ' ');
		CHECK(line >= 1 && line <= files[i].lines);
		text = end + 2;
	}
	CHECK(text[0] != '\0' && !isspace((unsigned char)text[0]));
}

static void
check_trimmed(const char *s)
{
	size_t n;

	if (s == NULL)
		return;
	n = strlen(s);
	CHECK(n > 0 && !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]));
}

static void
check_path(const char *s)
{
	if (s == NULL)
		return;
	check_trimmed(s);
	CHECK(s[0] == '/');
}

static void
check_bounds(unsigned v, unsigned lo, unsigned hi)
{
	CHECK(v >= lo && v <= hi);
}

/* A configuration that loaded without errors. */
static void
check_good(const struct config *c)
{
	const struct global_config *g = &c->g;

	CHECK(c->n_hosts >= 1);
	check_bounds((unsigned)g->workers, 1, 256);
	check_bounds(g->shutdown_timeout_ms, 0, 86400000);
	check_bounds(g->ticket_key_rotation_ms, 1000, 7 * 86400000U);
	check_bounds((unsigned)g->max_connections, 0, 10000000);
	CHECK(g->listen.n >= 1);
	check_path(g->hosts);
	check_path(g->ticket_key_file);
	check_trimmed(g->user);
	check_trimmed(g->group);
	for (size_t i = 0; i < g->accept_proxy.n; i++)
		CHECK(g->accept_proxy.v[i].prefix <=
		    (g->accept_proxy.v[i].family == AF_INET ? 32U : 128U));

	for (size_t i = 0; i < c->n_hosts; i++) {
		const struct host_config *h = &c->hosts[i];
		char norm[SNI_NAME_MAX + 1];

		CHECK(!h->bad);
		CHECK(h->label != NULL);
		check_bounds((unsigned)strlen(h->label), 1, CONFIG_MAX_SECTION - 5);
		CHECK(strspn(h->label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-") == strlen(h->label));
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(c->hosts[j].label, h->label) != 0);
		CHECK(h->cert != NULL && h->key != NULL);
		check_path(h->cert);
		check_path(h->key);
		check_path(h->client_ca);
		check_path(h->client_crl);
		check_path(h->keylog_file);
		check_path(h->ocsp_file);
		/* a pool of 1 to VALUE_POOL_MAX members, none empty, no two the same */
		CHECK(h->backend.n >= 1 && h->backend.n <= VALUE_POOL_MAX);
		for (size_t j = 0; j < h->backend.n; j++) {
			CHECK(h->backend.v[j].len > 0);
			for (size_t k = 0; k < j; k++)
				CHECK(strcmp(h->backend.v[k].text, h->backend.v[j].text) != 0);
		}
		CHECK(h->listen.n >= 1);
		for (size_t j = 0; j < h->listen.n; j++)
			CHECK(h->listen.v[j].ss.ss_family != AF_UNIX);
		for (size_t j = 0; j < h->names.n; j++) {
			const char *n = h->names.v[j];
			CHECK(sni_normalize(n, strlen(n), 1, norm) == (int)strlen(n));
			CHECK(strcmp(norm, n) == 0);
		}
		for (size_t j = 0; j < h->alpn.n; j++) {
			size_t n = strlen(h->alpn.v[j]);
			check_bounds((unsigned)n, 1, 255);
			for (size_t k = 0; k < j; k++)
				CHECK(strcmp(h->alpn.v[k], h->alpn.v[j]) != 0);
		}
		for (size_t j = 0; j < h->n_alpn_backends; j++) {
			size_t k;
			for (k = 0; k < h->alpn.n; k++)
				if (strcmp(h->alpn.v[k], h->alpn_backends[j].proto) == 0)
					break;
			CHECK(k < h->alpn.n && h->alpn_backends[j].pool.n >= 1 &&
			    h->alpn_backends[j].pool.v[0].len > 0);
		}
		CHECK(h->protocols.min >= CONFIG_TLS1_VERSION &&
		    h->protocols.min <= h->protocols.max &&
		    h->protocols.max <= CONFIG_TLS1_3_VERSION);
		/* client_allow parsed once, entry for entry */
		CHECK(h->client_allow_list == NULL ? h->client_allow.n == 0 :
		    h->client_allow_list->n_entries == h->client_allow.n);
		check_trimmed(h->ciphers);
		check_trimmed(h->ciphersuites);
		check_trimmed(h->groups);
		check_bounds(h->handshake_timeout_ms, 100, 3600000);
		check_bounds(h->connect_timeout_ms, 100, 3600000);
		check_bounds(h->idle_timeout_ms, 1000, 7 * 86400000U);
		check_bounds((unsigned)h->client_verify, CLIENT_VERIFY_NONE,
		    CLIENT_VERIFY_REQUIRED);
		CHECK(h->client_verify == CLIENT_VERIFY_NONE || h->client_ca != NULL);
		check_bounds((unsigned)h->client_verify_depth, 1, 16);
		check_bounds((unsigned)h->proxy_protocol, PROXY_SEND_OFF, PROXY_SEND_V2);
		check_bounds((unsigned)h->proxy_client_cert, PROXY_CERT_OFF, PROXY_CERT_PEM);
		CHECK(h->proxy_client_cert == PROXY_CERT_OFF || h->proxy_protocol == PROXY_SEND_V2);
		check_bounds((unsigned)h->proxy_client_cert_tlv, 0xE0, 0xEF);
		check_bounds((unsigned)h->max_connections, 0, 10000000);
		check_bounds((unsigned)h->session_cache_size, 0, 1000000);
		CHECK(h->is_default == 0 || h->is_default == 1);
		CHECK(h->session_tickets == 0 || h->session_tickets == 1);
	}
}

/* ---- one input ------------------------------------------------------------ */

static size_t
count_lines(const uint8_t *p, size_t n)
{
	size_t lines = 1;

	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n';
	return lines;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char names[MAX_HOST_FILES][32];
	static size_t n_written;	/* host files the previous input left */
	struct file files[MAX_HOST_FILES + 1];
	size_t n_files = 0, pos = 0, part = 0, n_err = 0;
	struct diag d;
	struct config *c;
	char path[160];

	if (size > 65536)
		return 0;
	for (size_t i = 0; i < n_written; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		CHECK(unlink(path) == 0);
	}
	n_written = 0;
	/* split at lines that are exactly SEP; the last file takes the rest */
	while (pos <= size) {
		size_t end = pos, next;

		for (;;) {
			const uint8_t *nl = memchr(data + end, '\n', size - end);
			size_t eol = nl ? (size_t)(nl - data) : size;

			if (part < MAX_HOST_FILES && eol - end == strlen(SEP) &&
			    memcmp(data + end, SEP, strlen(SEP)) == 0) {
				next = eol + 1;		/* past the separator line */
				break;
			}
			if (nl == NULL) {
				end = size;
				next = size + 1;
				break;
			}
			end = eol + 1;
		}
		/* data[pos..end) is this file, without the separator line */
		if (part == 0) {
			put(main_path, data + pos, end - pos);
			files[n_files++] = (struct file){ "main.ini", count_lines(data + pos, end - pos) };
		} else {
			snprintf(names[part - 1], sizeof(names[0]), "hosts.d/%02zu.ini", part - 1);
			snprintf(path, sizeof(path), "%s/%s", dir, names[part - 1]);
			put(path, data + pos, end - pos);
			n_written = part;
			files[n_files++] = (struct file){ names[part - 1],
			    count_lines(data + pos, end - pos) };
		}
		part++;
		pos = next;
	}

	memset(&d, 0, sizeof(d));
	c = config_load_all(main_path, &d);
	CHECK(c != NULL);
	CHECK(strcmp(c->main_file, main_path) == 0);
	for (size_t i = 0; i < d.n; i++) {
		check_message(d.msgs[i], files, n_files);
		n_err += d.is_error[i];
	}
	CHECK(n_err == d.n_errors);
	if (d.n_errors == 0)
		check_good(c);
	config_free(c);
	diag_free(&d);
	return 0;
}
