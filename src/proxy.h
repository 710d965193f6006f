/*
 * proxy.h: the HAProxy PROXY protocol (doc/proxy-protocol.txt), v1 (one text
 * line) and v2 (binary, with TLVs), in both directions.
 *
 * Pure code: no I/O, no libevent, no OpenSSL, no heap. The decoder is fed the
 * bytes received so far on a connection and says "need more", "invalid" or
 * "a header of N bytes"; it never looks past the end of the header, because
 * the TLS ClientHello follows it. The encoders write into caller buffers.
 * proxy.c is the codec; proxy_tls.c turns a TLS handshake's facts (plain C,
 * tls_facts.h) into the TLVs that describe it.
 *
 *   v1: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"   (at most 107 bytes)
 *   v2: 12-byte signature, version/command, family/transport, 16-bit length,
 *       address block, then TLVs (ALPN, AUTHORITY = SNI, SSL with sub-TLVs,
 *       CRC32C, ...).
 */
#ifndef TLSFRONT_PROXY_H
#define TLSFRONT_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>		/* ssize_t */
#include <sys/socket.h>

#define PROXY_V1_MAX		107	/* longest v1 line, CRLF included */
#define PROXY_V2_HDR		16	/* fixed part of a v2 header */
#define PROXY_V2_PAYLOAD_MAX	4096	/* addresses + TLVs we accept */
#define PROXY_MAX_HEADER	(PROXY_V2_HDR + PROXY_V2_PAYLOAD_MAX)
#define PROXY_MIN_HEADER	15	/* "PROXY UNKNOWN\r\n" */

/* v2 TLV types and SSL sub-TLV types. */
#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_NOOP		0x04
#define PP2_TYPE_UNIQUE_ID	0x05
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_SUBTYPE_SSL_SIG_ALG	0x24
#define PP2_SUBTYPE_SSL_KEY_ALG	0x25
#define PP2_TYPE_NETNS		0x30
#define PP2_TYPE_CLIENT_CERT	0xE0	/* no standard: first custom type, as hitch */

/* Bits of the SSL TLV's client field. */
#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

/* Longest value of each TLV the decoder keeps; a longer one is rejected. */
#define PROXY_ALPN_MAX		255	/* RFC 7301 protocol name */
#define PROXY_AUTHORITY_MAX	255
#define PROXY_UNIQUE_ID_MAX	128	/* the spec's maximum */
#define PROXY_SSL_VERSION_MAX	32
#define PROXY_SSL_CN_MAX	256	/* 64 characters of up to 4 UTF-8 bytes */
#define PROXY_SSL_CIPHER_MAX	128
#define PROXY_SSL_ALG_MAX	64
#define PROXY_NETNS_MAX		255

/* Bits of proxy_info.have: which TLVs the header carried. */
#define PROXY_HAVE_ALPN		0x0001
#define PROXY_HAVE_AUTHORITY	0x0002
#define PROXY_HAVE_CRC32C	0x0004	/* present, and it matched */
#define PROXY_HAVE_UNIQUE_ID	0x0008
#define PROXY_HAVE_SSL		0x0010
#define PROXY_HAVE_SSL_VERSION	0x0020
#define PROXY_HAVE_SSL_CN	0x0040
#define PROXY_HAVE_SSL_CIPHER	0x0080
#define PROXY_HAVE_SSL_SIG_ALG	0x0100
#define PROXY_HAVE_SSL_KEY_ALG	0x0200
#define PROXY_HAVE_NETNS	0x0400

/*
 * What a header said. Owns no memory: every string is copied into its array,
 * NUL-terminated. Text values (authority, ssl.*, netns) never contain a NUL
 * (a header with one is rejected); alpn and unique_id are opaque bytes, NUL-
 * terminated only for convenience, so use their lengths.
 */
struct proxy_info {
	int version;			/* 1 or 2 */
	int local;			/* 1: keep the connection's own addresses
					 * (v1 UNKNOWN, v2 LOCAL, v2 PROXY UNSPEC) */
	int family;			/* AF_INET, AF_INET6, AF_UNIX; AF_UNSPEC if local */
	int socktype;			/* SOCK_STREAM, SOCK_DGRAM; 0 if local */
	struct sockaddr_storage src;	/* client; zeroed if local */
	struct sockaddr_storage dst;	/* address the client connected to */
	socklen_t src_len, dst_len;	/* 0 if local */

	unsigned int have;		/* PROXY_HAVE_* (v2 only) */
	uint32_t crc32c;		/* the checksum, verified */
	size_t alpn_len;
	uint8_t alpn[PROXY_ALPN_MAX + 1];
	char authority[PROXY_AUTHORITY_MAX + 1];
	size_t unique_id_len;
	uint8_t unique_id[PROXY_UNIQUE_ID_MAX + 1];
	char netns[PROXY_NETNS_MAX + 1];
	struct {
		uint8_t client;		/* PP2_CLIENT_* */
		uint32_t verify;	/* 0: the client certificate verified */
		char version[PROXY_SSL_VERSION_MAX + 1];
		char cn[PROXY_SSL_CN_MAX + 1];
		char cipher[PROXY_SSL_CIPHER_MAX + 1];
		char sig_alg[PROXY_SSL_ALG_MAX + 1];
		char key_alg[PROXY_SSL_ALG_MAX + 1];
	} ssl;
};

/*
 * Examine the first len bytes received on a connection (buf is not kept).
 * Returns:
 *   0   more bytes are needed: what is there is a valid start of a v1 or v2
 *       header (so far: len == 0 also returns 0); call again with more;
 *   -1  not a valid header (signature, syntax, version, command, family,
 *       lengths, a TLV overrunning or too long for its field, a duplicated
 *       TLV, an embedded NUL in a text TLV, a CRC32C mismatch, a v1 line
 *       with no CRLF in its first 107 bytes, a v2 header longer than
 *       PROXY_MAX_HEADER): close the connection;
 *   n   (PROXY_MIN_HEADER..PROXY_MAX_HEADER, never > len) a complete valid
 *       header fills buf[0..n); the connection's own data starts at buf[n].
 * Only bytes before the end of the header are read, so the answer does not
 * depend on what follows it. *out is always overwritten, and is meaningful
 * only when n > 0. A v2 LOCAL header is not parsed beyond its length (its
 * TLVs are ignored, a CRC32C too); unknown TLV and sub-TLV types are skipped.
 */
ssize_t proxy_decode(const uint8_t *buf, size_t len, struct proxy_info *out);

/*
 * In a v2 header that proxy_decode() accepted (hdr, hdrlen = its return
 * value), find the first TLV of the given type (for types the decoder does
 * not keep, such as the client certificate). Returns a pointer into hdr and
 * sets *vlen, or returns NULL if there is none or the header is LOCAL or v1.
 */
const uint8_t *proxy_find_tlv(const uint8_t *hdr, size_t hdrlen, uint8_t type, size_t *vlen);

/*
 * Write the v1 line for a connection from src to dst (sockaddr_in or
 * sockaddr_in6, read only; an AF_INET one paired with an AF_INET6 one is
 * sent as TCP6, mapped to ::ffff:a.b.c.d) into out, NUL-terminated. Any
 * other family, or a NULL address, gives "PROXY UNKNOWN\r\n". Returns the
 * length of the line, CRLF included, NUL excluded (15..PROXY_V1_MAX).
 */
size_t proxy_encode_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char out[PROXY_V1_MAX + 1]);

/*
 * What proxy_encode_v2() sends besides addresses. Nothing here is owned:
 * the pointers are read during the call only. A NULL pointer (or, for the
 * ssl block, present == 0) leaves its TLV out.
 */
struct proxy_tlvs {
	const uint8_t *alpn;		/* negotiated protocol name */
	size_t alpn_len;
	const char *authority;		/* SNI, NUL-terminated */
	const uint8_t *unique_id;
	size_t unique_id_len;
	struct {
		int present;
		uint8_t client;		/* PP2_CLIENT_* */
		uint32_t verify;	/* 0: the client certificate verified */
		const char *version;	/* e.g. "TLSv1.3" */
		const char *cn;		/* client certificate subject CN */
		const char *cipher;
		const char *sig_alg;
		const char *key_alg;
	} ssl;
	const uint8_t *cert;		/* client certificate, DER or PEM */
	size_t cert_len;
	uint8_t cert_type;		/* its TLV type; 0 means PP2_TYPE_CLIENT_CERT */
	int crc32c;			/* append a CRC32C TLV */
};

/*
 * Write a v2 header for a connection from src to dst into out[0..outlen).
 * src and dst both AF_INET give TCP over IPv4; AF_INET and/or AF_INET6 give
 * TCP over IPv6 (an AF_INET one mapped to ::ffff:a.b.c.d); both AF_UNIX give
 * UNIX stream with their paths (a pathname is copied up to its NUL; abstract
 * and unnamed sockets are sent as all zeros); any other pair gives PROXY
 * with family UNSPEC and no addresses. src or dst NULL gives a LOCAL header
 * of 16 bytes (tlvs are then ignored). tlvs may be NULL. TLVs are written
 * as ALPN, AUTHORITY, UNIQUE_ID, SSL (sub-TLVs VERSION, CN, CIPHER, SIG_ALG,
 * KEY_ALG), certificate, CRC32C. Returns the header length, or -1 if outlen
 * is too small or a value (or the whole) exceeds the 16-bit length fields.
 * Note that proxy_decode() itself accepts at most PROXY_MAX_HEADER bytes.
 */
ssize_t proxy_encode_v2(const struct sockaddr *src, const struct sockaddr *dst,
    const struct proxy_tlvs *tlvs, uint8_t *out, size_t outlen);

struct tls_facts;

/*
 * Describe a finished TLS handshake for proxy_encode_v2() (proxy_tls.c):
 * ALPN, AUTHORITY (the SNI, when there was one), the SSL TLV (client flags,
 * verify 0 only for a client certificate presented and verified, version,
 * client CN, cipher, our certificate's signature and key algorithms) and,
 * when f carries the client's certificate, a TLV of type cert_type with it.
 * *t is overwritten; its pointers refer to f and to what f borrows, which
 * must outlive the use of *t. Nothing is allocated.
 */
void proxy_tlvs_from_tls(const struct tls_facts *f, uint8_t cert_type,
    struct proxy_tlvs *t);

/*
 * CRC32C (Castagnoli, reflected, as RFC 4960 appendix B) of buf[0..len),
 * continuing from crc, which is 0 to start and the previous result to chain:
 * proxy_crc32c(proxy_crc32c(0, a, n), b, m) is the CRC of a then b.
 * proxy_crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t proxy_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
