/*
 * proxy.c: see proxy.h. Multi-byte fields are read and written a byte at a
 * time in network order, so nothing depends on alignment or packing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "proxy.h"

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_magic[] = "PROXY ";	/* 6 bytes */

#define V2_VERSION	0x20
#define V2_CMD_LOCAL	0x00
#define V2_CMD_PROXY	0x01
#define V2_UNIX_PATH	108	/* bytes per address in a UNIX block */
#define V4_TEXT_MAX	15	/* 255.255.255.255 */
#define V6_TEXT_MAX	45	/* ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint32_t
proxy_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1)));
	}
	return ~crc;
}

/* ------------------------------------------------------------------ */
/* v1 decoding                                                          */

/*
 * The v1 field parsers take a token (no spaces) and a flag saying whether it
 * is complete or only the start of a token still arriving. A partial token
 * is accepted if some completion of it would be valid, so a header is
 * rejected as early as possible, and a rejected prefix stays rejected.
 */

/* Decimal 0..max, no leading zero, at most digits digits. */
static int
parse_num(const char *s, size_t n, int partial, unsigned long max, size_t digits,
    unsigned long *v)
{
	unsigned long x = 0;

	if (n == 0)
		return partial ? 0 : -1;
	if (n > digits || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (unsigned long)(s[i] - '0');
	}
	if (x > max)
		return -1;
	*v = x;
	return 0;
}

/* Dotted quad: exactly four numbers 0..255 without leading zeros. */
static int
parse_ip4(const char *s, size_t n, int partial, struct in_addr *a)
{
	uint8_t b[4];
	size_t start = 0, part = 0;
	unsigned long v = 0;

	if (n > V4_TEXT_MAX)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		/* s[start..i) is one number, complete unless it ends s */
		if (parse_num(s + start, i - start, partial && i == n, 255, 3, &v) != 0)
			return -1;
		if (i == n)
			break;
		if (part == 3)
			return -1;	/* a fifth number */
		b[part++] = (uint8_t)v;
		start = i + 1;
	}
	if (partial)
		return 0;
	if (part != 3)
		return -1;
	b[3] = (uint8_t)v;
	memcpy(&a->s_addr, b, 4);
	return 0;
}

/* IPv6 text, as inet_pton() reads it (hex groups, one "::", an optional
 * dotted-quad tail); a partial token is checked for its characters only. */
static int
parse_ip6(const char *s, size_t n, int partial, struct in6_addr *a)
{
	char tmp[V6_TEXT_MAX + 1];

	if (n > V6_TEXT_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
			return -1;
	}
	if (partial)
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, a) == 1 ? 0 : -1;
}

/* Is s[0..n) the start of (partial) or exactly (!partial) word? */
static int
is_word(const char *s, size_t n, int partial, const char *word)
{
	size_t wl = strlen(word);

	if (partial ? n > wl : n != wl)
		return 0;
	return memcmp(s, word, n) == 0;
}

/*
 * The part of a v1 line after "PROXY ", up to (not including) CR or the end
 * of what has arrived. whole: a CR follows, so the last token is complete.
 * Fills out if whole and valid.
 */
static int
v1_fields(const char *s, size_t n, int whole, struct proxy_info *out)
{
	enum { PROTO, SRC, DST, SPORT, DPORT, NFIELDS };
	int family = 0;
	size_t start = 0, field = 0;
	struct in_addr a4[2];
	struct in6_addr a6[2];
	unsigned long port[2] = { 0, 0 };

	memset(a4, 0, sizeof(a4));
	memset(a6, 0, sizeof(a6));

	for (;;) {
		size_t end = start;
		const char *t = s + start;
		size_t tl;
		int partial;

		while (end < n && s[end] != ' ')
			end++;
		tl = end - start;
		partial = end == n && !whole;
		if (field == NFIELDS)
			return -1;	/* a sixth field */
		if (tl == 0 && !partial)
			return -1;	/* two spaces, or a space before CR */
		switch (field) {
		case PROTO:
			if (is_word(t, tl, partial, "UNKNOWN")) {
				if (partial)
					return 0;
				/* the rest of the line, if any, is ignored */
				out->version = 1;
				out->local = 1;
				out->family = AF_UNSPEC;
				return 0;
			}
			if (is_word(t, tl, partial, "TCP4"))
				family = AF_INET;
			else if (is_word(t, tl, partial, "TCP6"))
				family = AF_INET6;
			else
				return -1;
			if (partial && tl < 4)
				return 0;	/* which one is not known yet */
			break;
		case SRC:
		case DST:
			if (family == AF_INET) {
				if (parse_ip4(t, tl, partial, &a4[field - SRC]) != 0)
					return -1;
			} else if (parse_ip6(t, tl, partial, &a6[field - SRC]) != 0) {
				return -1;
			}
			break;
		case SPORT:
		case DPORT:
			if (parse_num(t, tl, partial, 65535, 5, &port[field - SPORT]) != 0)
				return -1;
			break;
		}
		field++;
		if (end == n)
			break;
		start = end + 1;
	}
	if (!whole)
		return 0;
	if (field != NFIELDS)
		return -1;

	out->version = 1;
	out->family = family;
	out->socktype = SOCK_STREAM;
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage *ss = i == 0 ? &out->src : &out->dst;
		socklen_t *sl = i == 0 ? &out->src_len : &out->dst_len;

		if (family == AF_INET) {
			struct sockaddr_in sin;

			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_addr = a4[i];
			sin.sin_port = htons((uint16_t)port[i]);
			memcpy(ss, &sin, sizeof(sin));
			*sl = sizeof(sin);
		} else {
			struct sockaddr_in6 sin6;

			memset(&sin6, 0, sizeof(sin6));
			sin6.sin6_family = AF_INET6;
			sin6.sin6_addr = a6[i];
			sin6.sin6_port = htons((uint16_t)port[i]);
			memcpy(ss, &sin6, sizeof(sin6));
			*sl = sizeof(sin6);
		}
	}
	return 0;
}

static ssize_t
decode_v1(const uint8_t *p, size_t len, struct proxy_info *out)
{
	size_t n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	size_t magic = sizeof(v1_magic) - 1, i;
	const char *s = (const char *)p;

	if (memcmp(p, v1_magic, n < magic ? n : magic) != 0)
		return -1;
	if (len < magic)
		return 0;
	for (i = magic; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n')
			break;
	if (i == n) {
		/* no CR yet: too long already, or the fields so far must be valid */
		if (n == PROXY_V1_MAX)
			return -1;
		return v1_fields(s + magic, n - magic, 0, out);
	}
	if (p[i] == '\n' || i + 2 > PROXY_V1_MAX)
		return -1;	/* a bare LF, or no room left for the LF */
	if (v1_fields(s + magic, i - magic, 1, out) != 0)
		return -1;
	if (i + 1 == len)
		return 0;	/* the line is complete but for the LF */
	if (p[i + 1] != '\n')
		return -1;	/* a bare CR */
	if (out->version != 1)
		return -1;	/* cannot happen: v1_fields filled it */
	return (ssize_t)(i + 2);
}

/* ------------------------------------------------------------------ */
/* v2 decoding                                                          */

/* Size of the address block the family/transport byte needs, or -1 if the
 * byte is not one of the combinations the spec defines. */
static int
v2_addr_len(uint8_t fam)
{
	switch (fam) {
	case 0x00:
		return 0;
	case 0x11:
	case 0x12:
		return 12;
	case 0x21:
	case 0x22:
		return 36;
	case 0x31:
	case 0x32:
		return 2 * V2_UNIX_PATH;
	default:
		return -1;
	}
}

/* A 108-byte UNIX address: a pathname up to its NUL, an abstract name (first
 * byte NUL) up to its last non-NUL byte, or all zeros (unnamed). */
static int
v2_unix(const uint8_t *path, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_un su;
	size_t n;

	if (path[0] != 0) {
		const uint8_t *nul = memchr(path, 0, V2_UNIX_PATH);

		n = nul != NULL ? (size_t)(nul - path) : V2_UNIX_PATH;
	} else {
		for (n = V2_UNIX_PATH; n > 0 && path[n - 1] == 0; n--)
			;
	}
	if (n > sizeof(su.sun_path))
		return -1;	/* does not fit this system's sockaddr_un */
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	memcpy(su.sun_path, path, n);
	memcpy(ss, &su, sizeof(su));
	*sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

/* Copy a text TLV: no longer than max, no NUL inside. */
static int
copy_text(char *dst, size_t max, const uint8_t *v, size_t vlen)
{
	if (vlen > max || memchr(v, 0, vlen) != NULL)
		return -1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return 0;
}

static int
copy_bytes(uint8_t *dst, size_t *dlen, size_t max, const uint8_t *v, size_t vlen)
{
	if (vlen > max)
		return -1;
	memcpy(dst, v, vlen);
	dst[vlen] = 0;
	*dlen = vlen;
	return 0;
}

/* Mark a TLV as seen; a second one of the same kind is an error. */
static int
once(struct proxy_info *out, unsigned int bit)
{
	if (out->have & bit)
		return -1;
	out->have |= bit;
	return 0;
}

static int
v2_ssl(const uint8_t *v, size_t vlen, struct proxy_info *out)
{
	size_t off = 5;

	if (vlen < 5)
		return -1;
	out->ssl.client = v[0];
	out->ssl.verify = get32(v + 1);
	while (off < vlen) {
		const uint8_t *sv;
		size_t slen;
		int r = 0;

		if (vlen - off < 3)
			return -1;
		slen = get16(v + off + 1);
		sv = v + off + 3;
		if (slen > vlen - off - 3)
			return -1;
		switch (v[off]) {
		case PP2_SUBTYPE_SSL_VERSION:
			r = once(out, PROXY_HAVE_SSL_VERSION) ||
			    copy_text(out->ssl.version, PROXY_SSL_VERSION_MAX, sv, slen);
			break;
		case PP2_SUBTYPE_SSL_CN:
			r = once(out, PROXY_HAVE_SSL_CN) ||
			    copy_text(out->ssl.cn, PROXY_SSL_CN_MAX, sv, slen);
			break;
		case PP2_SUBTYPE_SSL_CIPHER:
			r = once(out, PROXY_HAVE_SSL_CIPHER) ||
			    copy_text(out->ssl.cipher, PROXY_SSL_CIPHER_MAX, sv, slen);
			break;
		case PP2_SUBTYPE_SSL_SIG_ALG:
			r = once(out, PROXY_HAVE_SSL_SIG_ALG) ||
			    copy_text(out->ssl.sig_alg, PROXY_SSL_ALG_MAX, sv, slen);
			break;
		case PP2_SUBTYPE_SSL_KEY_ALG:
			r = once(out, PROXY_HAVE_SSL_KEY_ALG) ||
			    copy_text(out->ssl.key_alg, PROXY_SSL_ALG_MAX, sv, slen);
			break;
		default:
			break;	/* unknown sub-TLV: skipped */
		}
		if (r != 0)
			return -1;
		off += 3 + slen;
	}
	return 0;
}

/* TLVs in hdr[off..end); the CRC32C, if any, is checked over hdr[0..end). */
static int
v2_tlvs(const uint8_t *hdr, size_t off, size_t end, struct proxy_info *out)
{
	size_t crc_at = 0;

	while (off < end) {
		const uint8_t *v;
		size_t vlen;
		int r = 0;

		if (end - off < 3)
			return -1;
		vlen = get16(hdr + off + 1);
		v = hdr + off + 3;
		if (vlen > end - off - 3)
			return -1;
		switch (hdr[off]) {
		case PP2_TYPE_ALPN:
			r = once(out, PROXY_HAVE_ALPN) ||
			    copy_bytes(out->alpn, &out->alpn_len, PROXY_ALPN_MAX, v, vlen);
			break;
		case PP2_TYPE_AUTHORITY:
			r = once(out, PROXY_HAVE_AUTHORITY) ||
			    copy_text(out->authority, PROXY_AUTHORITY_MAX, v, vlen);
			break;
		case PP2_TYPE_CRC32C:
			r = once(out, PROXY_HAVE_CRC32C) || vlen != 4;
			crc_at = off + 3;
			break;
		case PP2_TYPE_UNIQUE_ID:
			r = once(out, PROXY_HAVE_UNIQUE_ID) ||
			    copy_bytes(out->unique_id, &out->unique_id_len,
			    PROXY_UNIQUE_ID_MAX, v, vlen);
			break;
		case PP2_TYPE_SSL:
			r = once(out, PROXY_HAVE_SSL) || v2_ssl(v, vlen, out);
			break;
		case PP2_TYPE_NETNS:
			r = once(out, PROXY_HAVE_NETNS) ||
			    copy_text(out->netns, PROXY_NETNS_MAX, v, vlen);
			break;
		default:
			break;	/* NOOP, custom and unknown types: skipped */
		}
		if (r != 0)
			return -1;
		off += 3 + vlen;
	}
	if (out->have & PROXY_HAVE_CRC32C) {
		static const uint8_t zero[4];
		uint32_t crc;

		out->crc32c = get32(hdr + crc_at);
		crc = proxy_crc32c(0, hdr, crc_at);
		crc = proxy_crc32c(crc, zero, 4);
		crc = proxy_crc32c(crc, hdr + crc_at + 4, end - crc_at - 4);
		if (crc != out->crc32c)
			return -1;
	}
	return 0;
}

static ssize_t
decode_v2(const uint8_t *p, size_t len, struct proxy_info *out)
{
	size_t total, plen;
	int cmd, alen = 0;

	if (memcmp(p, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) != 0)
		return -1;
	if (len < 13)
		return 0;
	if ((p[12] & 0xF0) != V2_VERSION)
		return -1;
	cmd = p[12] & 0x0F;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return -1;
	if (len < 14)
		return 0;
	/* LOCAL: the family byte is ignored, as is the whole block */
	if (cmd == V2_CMD_PROXY && (alen = v2_addr_len(p[13])) < 0)
		return -1;
	if (len < PROXY_V2_HDR)
		return 0;
	plen = get16(p + 14);
	if (plen > PROXY_V2_PAYLOAD_MAX || plen < (size_t)alen)
		return -1;
	total = PROXY_V2_HDR + plen;
	if (len < total)
		return 0;

	out->version = 2;
	if (cmd == V2_CMD_LOCAL || p[13] == 0x00) {
		out->local = 1;
		out->family = AF_UNSPEC;
		if (cmd == V2_CMD_LOCAL)
			return (ssize_t)total;
	} else {
		const uint8_t *a = p + PROXY_V2_HDR;

		out->socktype = (p[13] & 0x0F) == 1 ? SOCK_STREAM : SOCK_DGRAM;
		switch (p[13] >> 4) {
		case 1: {
			struct sockaddr_in sin;

			out->family = AF_INET;
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			memcpy(&sin.sin_addr, a, 4);
			memcpy(&sin.sin_port, a + 8, 2);
			memcpy(&out->src, &sin, sizeof(sin));
			memcpy(&sin.sin_addr, a + 4, 4);
			memcpy(&sin.sin_port, a + 10, 2);
			memcpy(&out->dst, &sin, sizeof(sin));
			out->src_len = out->dst_len = sizeof(sin);
			break;
		}
		case 2: {
			struct sockaddr_in6 sin6;

			out->family = AF_INET6;
			memset(&sin6, 0, sizeof(sin6));
			sin6.sin6_family = AF_INET6;
			memcpy(&sin6.sin6_addr, a, 16);
			memcpy(&sin6.sin6_port, a + 32, 2);
			memcpy(&out->src, &sin6, sizeof(sin6));
			memcpy(&sin6.sin6_addr, a + 16, 16);
			memcpy(&sin6.sin6_port, a + 34, 2);
			memcpy(&out->dst, &sin6, sizeof(sin6));
			out->src_len = out->dst_len = sizeof(sin6);
			break;
		}
		default:
			out->family = AF_UNIX;
			if (v2_unix(a, &out->src, &out->src_len) != 0 ||
			    v2_unix(a + V2_UNIX_PATH, &out->dst, &out->dst_len) != 0)
				return -1;
			break;
		}
	}
	if (v2_tlvs(p, PROXY_V2_HDR + (size_t)alen, total, out) != 0)
		return -1;
	return (ssize_t)total;
}

ssize_t
proxy_decode(const uint8_t *buf, size_t len, struct proxy_info *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return 0;
	if (buf[0] == v1_magic[0])
		return decode_v1(buf, len, out);
	if (buf[0] == v2_sig[0])
		return decode_v2(buf, len, out);
	return -1;
}

const uint8_t *
proxy_find_tlv(const uint8_t *hdr, size_t hdrlen, uint8_t type, size_t *vlen)
{
	size_t off, end;
	int alen;

	if (hdrlen < PROXY_V2_HDR || memcmp(hdr, v2_sig, sizeof(v2_sig)) != 0 ||
	    hdr[12] != (V2_VERSION | V2_CMD_PROXY) || (alen = v2_addr_len(hdr[13])) < 0)
		return NULL;
	end = PROXY_V2_HDR + (size_t)get16(hdr + 14);
	if (end > hdrlen)
		return NULL;
	for (off = PROXY_V2_HDR + (size_t)alen; off + 3 <= end; ) {
		size_t l = get16(hdr + off + 1);

		if (l > end - off - 3)
			return NULL;
		if (hdr[off] == type) {
			*vlen = l;
			return hdr + off + 3;
		}
		off += 3 + l;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* encoding                                                             */

/* An IPv4 or IPv6 address and port, as IPv6 (v4 mapped) if v6. */
static void
inet_parts(const struct sockaddr *sa, int v6, uint8_t addr[16], uint8_t port[2])
{
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		if (v6) {
			memset(addr, 0, 10);
			addr[10] = addr[11] = 0xFF;
			memcpy(addr + 12, &sin.sin_addr, 4);
		} else {
			memcpy(addr, &sin.sin_addr, 4);
		}
		memcpy(port, &sin.sin_port, 2);
	} else {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(addr, &sin6.sin6_addr, 16);
		memcpy(port, &sin6.sin6_port, 2);
	}
}

static int
is_inet(const struct sockaddr *sa)
{
	return sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

size_t
proxy_encode_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char out[PROXY_V1_MAX + 1])
{
	static const char unknown[] = "PROXY UNKNOWN\r\n";
	char text[2][INET6_ADDRSTRLEN];
	uint8_t addr[2][16], port[2][2];
	int v6, n;

	if (!is_inet(src) || !is_inet(dst))
		goto unknown;
	v6 = src->sa_family == AF_INET6 || dst->sa_family == AF_INET6;
	inet_parts(src, v6, addr[0], port[0]);
	inet_parts(dst, v6, addr[1], port[1]);
	for (int i = 0; i < 2; i++)
		if (inet_ntop(v6 ? AF_INET6 : AF_INET, addr[i], text[i], sizeof(text[i])) == NULL)
			goto unknown;
	n = snprintf(out, PROXY_V1_MAX + 1, "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4",
	    text[0], text[1], (unsigned)get16(port[0]), (unsigned)get16(port[1]));
	if (n > 0 && n <= PROXY_V1_MAX)
		return (size_t)n;
unknown:
	memcpy(out, unknown, sizeof(unknown));
	return sizeof(unknown) - 1;
}

/* A bounded writer: stops writing at the end of the buffer, remembers it. */
struct wbuf {
	uint8_t *p;
	size_t cap, len;
	int err;
};

static void
put(struct wbuf *w, const void *v, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, v, n);
	w->len += n;
}

static void
put8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

static void
put16(struct wbuf *w, size_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	if (v > 0xFFFF)
		w->err = 1;
	put(w, b, 2);
}

static void
put_tlv(struct wbuf *w, uint8_t type, const void *v, size_t n)
{
	put8(w, type);
	put16(w, n);
	put(w, v, n);
}

static void
put_text(struct wbuf *w, uint8_t type, const char *s)
{
	if (s != NULL)
		put_tlv(w, type, s, strlen(s));
}

/* A pathname, up to its NUL, padded with zeros to 108 bytes. */
static void
put_unix(struct wbuf *w, const struct sockaddr *sa)
{
	struct sockaddr_un su;
	uint8_t path[V2_UNIX_PATH] = { 0 };
	size_t n;

	memcpy(&su, sa, sizeof(su));
	if (su.sun_path[0] != '\0') {
		n = strnlen(su.sun_path, sizeof(su.sun_path));
		if (n > sizeof(path)) {
			w->err = 1;
			return;
		}
		memcpy(path, su.sun_path, n);
	}
	put(w, path, sizeof(path));
}

static void
put_tlvs(struct wbuf *w, const struct proxy_tlvs *t)
{
	if (t->alpn != NULL)
		put_tlv(w, PP2_TYPE_ALPN, t->alpn, t->alpn_len);
	put_text(w, PP2_TYPE_AUTHORITY, t->authority);
	if (t->unique_id != NULL)
		put_tlv(w, PP2_TYPE_UNIQUE_ID, t->unique_id, t->unique_id_len);
	if (t->ssl.present) {
		const char *sub[5] = { t->ssl.version, t->ssl.cn, t->ssl.cipher,
		    t->ssl.sig_alg, t->ssl.key_alg };
		size_t n = 5, at;
		uint8_t v[4];

		for (int i = 0; i < 5; i++)
			if (sub[i] != NULL)
				n += 3 + strlen(sub[i]);
		put8(w, PP2_TYPE_SSL);
		put16(w, n);
		at = w->len;
		put8(w, t->ssl.client);
		v[0] = (uint8_t)(t->ssl.verify >> 24);
		v[1] = (uint8_t)(t->ssl.verify >> 16);
		v[2] = (uint8_t)(t->ssl.verify >> 8);
		v[3] = (uint8_t)t->ssl.verify;
		put(w, v, 4);
		for (int i = 0; i < 5; i++)
			put_text(w, (uint8_t)(PP2_SUBTYPE_SSL_VERSION + i), sub[i]);
		if (!w->err && w->len - at != n)
			w->err = 1;	/* cannot happen */
	}
	if (t->cert != NULL)
		put_tlv(w, t->cert_type != 0 ? t->cert_type : PP2_TYPE_CLIENT_CERT,
		    t->cert, t->cert_len);
}

ssize_t
proxy_encode_v2(const struct sockaddr *src, const struct sockaddr *dst,
    const struct proxy_tlvs *tlvs, uint8_t *out, size_t outlen)
{
	struct wbuf w = { out, outlen, 0, 0 };
	size_t crc_at = 0;

	put(&w, v2_sig, sizeof(v2_sig));
	if (src == NULL || dst == NULL) {
		put8(&w, V2_VERSION | V2_CMD_LOCAL);
		put8(&w, 0x00);
		put16(&w, 0);
		return w.err ? -1 : (ssize_t)w.len;
	}
	put8(&w, V2_VERSION | V2_CMD_PROXY);
	if (is_inet(src) && is_inet(dst)) {
		int v6 = src->sa_family == AF_INET6 || dst->sa_family == AF_INET6;
		uint8_t addr[2][16], port[2][2];
		size_t al = v6 ? 16 : 4;

		inet_parts(src, v6, addr[0], port[0]);
		inet_parts(dst, v6, addr[1], port[1]);
		put8(&w, v6 ? 0x21 : 0x11);
		put16(&w, 0);	/* length, set below */
		put(&w, addr[0], al);
		put(&w, addr[1], al);
		put(&w, port[0], 2);
		put(&w, port[1], 2);
	} else if (src->sa_family == AF_UNIX && dst->sa_family == AF_UNIX) {
		put8(&w, 0x31);
		put16(&w, 0);
		put_unix(&w, src);
		put_unix(&w, dst);
	} else {
		put8(&w, 0x00);	/* PROXY, but nothing we can say about addresses */
		put16(&w, 0);
	}
	if (tlvs != NULL) {
		put_tlvs(&w, tlvs);
		if (tlvs->crc32c) {
			static const uint8_t zero[4];

			put_tlv(&w, PP2_TYPE_CRC32C, zero, sizeof(zero));
			crc_at = w.len - 4;
		}
	}
	if (w.err || w.len - PROXY_V2_HDR > 0xFFFF)
		return -1;
	out[14] = (uint8_t)((w.len - PROXY_V2_HDR) >> 8);
	out[15] = (uint8_t)(w.len - PROXY_V2_HDR);
	if (crc_at != 0) {
		uint32_t crc = proxy_crc32c(0, out, w.len);

		out[crc_at] = (uint8_t)(crc >> 24);
		out[crc_at + 1] = (uint8_t)(crc >> 16);
		out[crc_at + 2] = (uint8_t)(crc >> 8);
		out[crc_at + 3] = (uint8_t)crc;
	}
	return (ssize_t)w.len;
}
