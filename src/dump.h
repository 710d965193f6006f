/*
 * dump.h: a generation in words, for people: `tlsfront -T` (the effective
 * configuration, every default filled in) and the one line per host logged
 * at start.
 */
#ifndef TLSFRONT_DUMP_H
#define TLSFRONT_DUMP_H

#include <stdio.h>

#include "gen.h"

/*
 * Write the effective configuration of g to f, INI-like, so that two dumps
 * can be diffed:
 *
 *   [global]            every [global] key, in the order of the key table
 *   [host LABEL]        per host, in the order read: every host key with
 *                       the value it ends up with ([defaults] and built-in
 *                       defaults filled in), its backend.PROTO lines after
 *                       backend, and its effective names (the certificate's
 *                       when it sets none), several per line
 *
 * A value is written as the configuration spells it (config_value_text),
 * one "key = value" line each; a key without a value is a comment line
 * "# key (not set)". Other lines starting with '#' are facts, not
 * settings: the files read, where each host is defined, and its
 * certificate's subject and issuer (RFC 2253) and notAfter (UTC,
 * YYYY-MM-DDTHH:MM:SSZ). No line of a setting is longer than
 * CONFIG_MAX_LINE unless one value is.
 *
 * g must be a generation gen_load returned: every host's certificate is
 * loaded, except for hosts left out by host_errors = skip, which are dumped
 * with their settings and a comment saying so. Reads g only. Returns 0, or
 * -1 if writing to f failed (errno as stdio left it).
 */
int dump_config(FILE *f, const struct generation *g);

/*
 * Log (info) one line per host of g, for example
 *
 *   host shop: names=shop.example.org,www.shop.example.org
 *   listen=0.0.0.0:443 backend=127.0.0.1:8080 backend.h2=127.0.0.1:8081
 *   alpn=h2,http/1.1 client_verify=none cert="CN=shop.example.org"
 *   expires=2027-01-05
 *
 * (one line), "alpn=-" without ALPN; a long name list is cut with
 * ",...(N more)" so that the line stays within log.c's limit. A host left
 * out by host_errors = skip logs "host LABEL: left out (host_errors =
 * skip)". Call it in the main process, after log_setup.
 */
void dump_host_summaries(const struct generation *g);

#endif
