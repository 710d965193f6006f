/*
 * config.h: the configuration as read from the INI files.
 *
 * config_load() reads the main file and every host file its `hosts` glob
 * names, checks every value, and returns a config whose hosts have inherited
 * [defaults] and the built-in defaults. It collects every problem it finds in
 * a struct diag as "FILE:LINE: message". This module knows nothing of sockets
 * or OpenSSL: certificate and cipher checks happen in tls.c, listener and
 * name-conflict checks in gen.c.
 *
 * Keys are described by one table in config.c (name, scope, type, bounds,
 * default); adding a key means adding one row and one field here (and
 * `tlsfront -T` shows it, through config_value_text). A key may be given
 * once per section, except `names`, whose lines add up, and the map key
 * `backend.PROTO`, once per PROTO.
 *
 * The module's files: config.c (the table, [defaults], building hosts),
 * config_read.c (the line reader in front of inih), config_value.c (parsing
 * and spelling one value: pure), config_keys.c (looking keys up, the near
 * key of a misspelt one, config_value_text).
 */
#ifndef TLSFRONT_CONFIG_H
#define TLSFRONT_CONFIG_H

#include <stddef.h>

#include "acme.h"
#include "addr.h"
#include "diag.h"

enum cfg_key {
	/* [global] */
	K_G_LISTEN, K_G_HOSTS, K_G_WORKERS, K_G_LOG, K_G_LOG_LEVEL, K_G_SHUTDOWN_TIMEOUT,
	K_G_ACCEPT_PROXY, K_G_MAX_CONNECTIONS, K_G_STATS_LISTEN,
	K_G_TICKET_KEY_FILE, K_G_TICKET_KEY_ROTATION,
	K_G_USER, K_G_GROUP, K_G_HOST_ERRORS,
	/* [acme] (main file only; its values live in struct global_config's acme) */
	K_A_DIRECTORY, K_A_CONTACT, K_A_DIRECTORY_CA, K_A_STATE_DIR, K_A_RENEW_BEFORE,
	K_A_KEY_TYPE,
	/* [defaults] and [host LABEL] */
	K_CERT, K_KEY, K_BACKEND, K_NAMES, K_ALPN, K_LISTEN, K_DEFAULT,
	K_PROTOCOLS, K_CIPHERS, K_CIPHERSUITES, K_GROUPS,
	K_HANDSHAKE_TIMEOUT, K_CONNECT_TIMEOUT, K_IDLE_TIMEOUT,
	K_CLIENT_VERIFY, K_CLIENT_CA, K_CLIENT_CRL, K_CLIENT_VERIFY_DEPTH, K_CLIENT_ALLOW,
	K_PROXY_PROTOCOL, K_PROXY_CLIENT_CERT, K_PROXY_CLIENT_CERT_TLV, K_MAX_CONNECTIONS,
	K_SESSION_TICKETS, K_TLS13_TICKETS, K_SESSION_CACHE_SIZE,
	K_KEYLOG_FILE, K_OCSP_FILE, K_ACME,
	K_BALANCE, K_BACKEND_FAIL_THRESHOLD, K_BACKEND_DOWN_TIME, K_HEALTH_CHECK,
	K_HEALTH_INTERVAL,
	K_COUNT
};

/*
 * TLS protocol versions as the wire spells them, which are the values of
 * OpenSSL's TLS1_VERSION .. TLS1_3_VERSION: tls.c hands them to
 * SSL_CTX_set_min_proto_version as they are. Our own names, so that this
 * module needs no OpenSSL header.
 */
#define CONFIG_TLS1_VERSION	0x0301
#define CONFIG_TLS1_1_VERSION	0x0302
#define CONFIG_TLS1_2_VERSION	0x0303
#define CONFIG_TLS1_3_VERSION	0x0304

struct addr_list { struct addr *v; size_t n; };
struct cidr_list { struct cidr *v; size_t n; };
struct str_list { char **v; size_t n; };
struct proto_range { int min, max; };	/* CONFIG_TLS1_x_VERSION values */

enum client_verify { CLIENT_VERIFY_NONE = 0, CLIENT_VERIFY_OPTIONAL, CLIENT_VERIFY_REQUIRED };
enum host_errors { HOST_ERRORS_FAIL = 0, HOST_ERRORS_SKIP };
enum proxy_send { PROXY_SEND_OFF = 0, PROXY_SEND_V1, PROXY_SEND_V2 };
enum proxy_cert { PROXY_CERT_OFF = 0, PROXY_CERT_DER, PROXY_CERT_PEM };
enum balance { BALANCE_ROUNDROBIN = 0, BALANCE_LEASTCONN, BALANCE_FIRST };
enum health_check { HEALTH_CHECK_OFF = 0, HEALTH_CHECK_TCP };

/* A `backend.PROTO = ADDR...` line: the backend pool for one negotiated ALPN
 * protocol. */
struct alpn_backend {
	char *proto;
	struct addr_list pool;		/* its members, in order */
	struct loc at;
};

/* The backend.PROTO lines of a host, in order (the key table's T_ALPN_MAP). */
struct alpn_map {
	struct alpn_backend *v;
	size_t n;
};

struct allow_list;	/* clientauth.h */

/* client_allow, as written (for -T) and parsed (the key table's T_ALLOW). */
struct allow_value {
	struct str_list text;		/* "KIND:value" entries as written */
	struct allow_list *list;	/* the same, parsed; NULL: none */
};

struct host_config {
	char *label;
	struct loc at;			/* the [host LABEL] line */
	char *cert;			/* absolute paths */
	char *key;
	struct addr_list backend;	/* the pool: its members, in order (n >= 1) */
	/* backend.PROTO: alpn_map for the key table, the other names for
	 * gen.c and dump.c (one storage; the union lets both spell it) */
	union {
		struct alpn_map alpn_map;
		struct {
			struct alpn_backend *alpn_backends;
			size_t n_alpn_backends;
		};
	};
	struct str_list names;		/* normalised; empty: take the certificate's */
	struct str_list alpn;		/* server preference order */
	struct addr_list listen;	/* resolved: own `listen` or [global] listen */
	int is_default;
	struct proto_range protocols;
	char *ciphers, *ciphersuites, *groups;
	unsigned handshake_timeout_ms, connect_timeout_ms, idle_timeout_ms;
	int client_verify;		/* enum client_verify */
	char *client_ca;		/* PEM file of CAs for client certificates */
	char *client_crl;		/* PEM file of CRLs, or NULL */
	int client_verify_depth;
	/* client_allow: client_allow_value is the key table's view of the same
	 * storage. client_allow_list is the list parsed once here, which
	 * verification needs (NULL: none; clientauth_allow_match takes it as
	 * "anyone verified"); client_allow, the entries as written, is what -T
	 * prints. Both owned by the config. */
	union {
		struct allow_value client_allow_value;
		struct {
			struct str_list client_allow;
			struct allow_list *client_allow_list;
		};
	};
	int proxy_protocol;		/* enum proxy_send: header we send to the backend */
	int proxy_client_cert;		/* enum proxy_cert: v2 TLV with the client cert */
	int proxy_client_cert_tlv;	/* its TLV type, 0xE0..0xEF */
	int max_connections;		/* 0: no limit of its own */
	int session_tickets;		/* boolean */
	int tls13_tickets;		/* tickets after a full TLS 1.3 handshake */
	int session_cache_size;		/* sessions kept per worker for ID resumption; 0: off */
	char *keylog_file;		/* NSS key log of this host's connections, or NULL */
	char *ocsp_file;		/* DER OCSP response to staple, or NULL */
	/* acme = yes: the certificate comes from the ACME client. cert and key
	 * are then both the one file state_dir/certs/LABEL.pem (acme.h's
	 * layout; config.c fills them in, at the acme line), which may not
	 * exist yet: tls.c serves such a host as "certificate pending" */
	int acme;
	/* the pools' policy (every pool of the host: backend and backend.PROTO) */
	int balance;			/* enum balance */
	int backend_fail_threshold;	/* consecutive connect failures: down */
	unsigned backend_down_time_ms;	/* first down period (doubles, capped) */
	int health_check;		/* enum health_check */
	unsigned health_interval_ms;
	struct loc loc[K_COUNT];	/* where each value came from (line 0: built in) */
	int bad;			/* config_load_all(): this host has errors */
};

enum log_dest;

struct global_config {
	struct addr_list listen;
	char *hosts;			/* glob, absolute */
	int workers;			/* resolved: "auto" is the CPU count */
	int log_dest;			/* enum log_dest */
	int log_level;			/* enum log_level */
	unsigned shutdown_timeout_ms;
	struct cidr_list accept_proxy;	/* peers that must start with a PROXY header */
	int max_connections;		/* all hosts together; 0: no limit */
	struct addr stats_listen;	/* metrics over HTTP; len 0: off */
	char *ticket_key_file;		/* shared ticket keys, or NULL: derived */
	unsigned ticket_key_rotation_ms;
	char *user, *group;		/* drop to these after binding; NULL: stay */
	int host_errors;		/* enum host_errors */
	/* [acme]; acme.enabled: it has a directory (the strings are the
	 * config's, freed by config_free) */
	struct acme_config acme;
	struct loc acme_at;		/* the [acme] header; file NULL: no section */
	struct loc loc[K_COUNT];
};

struct config {
	char *main_file;
	struct global_config g;
	struct host_config *hosts;
	size_t n_hosts;
	char **files;			/* interned file names that struct loc points to */
	size_t n_files;
};

/*
 * Read and check the configuration rooted at main_file. Every error goes to
 * d. Returns a config (caller frees with config_free) if d gained no errors,
 * else NULL.
 */
struct config *config_load(const char *main_file, struct diag *d);

/*
 * The same, but returns whatever could be read even when d gained errors
 * (NULL only when nothing could: out of memory), so that `tlsfront -t` can go
 * on to check certificates and report every error of every stage in one run.
 * Hosts with an error of their own (or an inherited bad value) have bad set.
 */
struct config *config_load_all(const char *main_file, struct diag *d);

/* config_free(NULL) is a no-op. */
void config_free(struct config *c);

/*
 * Parse "250ms", "10s", "5m", "1h", or a bare number of seconds into
 * milliseconds. Returns 0, or -1 if malformed or above max_ms (then *out_ms
 * is untouched). Pure (config_value.c).
 */
int config_parse_duration(const char *s, unsigned long long max_ms, unsigned *out_ms);

/*
 * The key table, read back (for `tlsfront -T`, dump.c): the name of key k,
 * and whether it is a [global] key (else a key of [acme], or of [defaults]
 * and [host] sections).
 */
const char *config_key_name(enum cfg_key k);
int config_key_is_global(enum cfg_key k);
/* ... and whether it is an [acme] key (its value in c->g.acme) */
int config_key_is_acme(enum cfg_key k);

/* The hosts with acme = yes (and no errors) of c; 0 when [acme] is off. */
size_t config_acme_hosts(const struct config *c);

/*
 * Write the effective value of key k -- of c->g for a [global] key, else of
 * host h -- into buf (len bytes, NUL-terminated, cut if short) as the
 * configuration spells it: lists blank-separated, durations in their largest
 * exact unit ("5m"), booleans yes/no, OpenSSL lists as given, paths absolute.
 * Returns the length of the whole text (as snprintf: compare with len), or
 * -1 when the key has no value (not set and no built-in default).
 * names are those of the configuration, not the certificate's (gen.h).
 */
int config_value_text(const struct config *c, const struct host_config *h, enum cfg_key k,
    char *buf, size_t len);

/* The longest line (bytes, without newline) and section name we accept:
 * Debian's libinih 55 silently splits longer lines and cuts longer names. */
#define CONFIG_MAX_LINE 196
#define CONFIG_MAX_SECTION 49
#define CONFIG_MAX_FILE (4 * 1024 * 1024)

#endif
