/*
 * fuzz_proxy.c: libFuzzer target for proxy_decode() (src/proxy.c).
 *
 * Built by `CC=clang ./configure --enable-fuzzing && make tests/fuzz/fuzz_proxy`
 * with ASan and UBSan; run by tests/fuzz/run.sh. For each input it checks:
 *
 *  - the result is -1, 0, or a header length in PROXY_MIN_HEADER..
 *    PROXY_MAX_HEADER and never more than the input;
 *  - prefixes agree with the whole: a prefix that is rejected means the
 *    whole is rejected, a prefix holding a complete header gives that same
 *    header, and shorter prefixes of a header need more bytes. Each prefix is
 *    decoded with the bytes after it poisoned, so reading past it crashes;
 *  - a header decodes identically from a copy cut at its length (nothing
 *    after it is looked at);
 *  - re-encoding what was decoded (addresses, and for v2 the TLVs the
 *    encoder knows) gives a header that decodes to the same thing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <sanitizer/asan_interface.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz.h"

/* Decode the first k bytes of buf[0..size) with the rest poisoned. */
static ssize_t
decode_prefix(uint8_t *buf, size_t size, size_t k, struct proxy_info *pi)
{
	ssize_t r;

	ASAN_POISON_MEMORY_REGION(buf + k, size - k);
	r = proxy_decode(buf, k, pi);
	ASAN_UNPOISON_MEMORY_REGION(buf + k, size - k);
	return r;
}

static int
same_sa(const struct sockaddr_storage *a, socklen_t al,
    const struct sockaddr_storage *b, socklen_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

/* Re-encode a decoded v1 header as v1 and compare. */
static void
reencode_v1(const struct proxy_info *pi)
{
	char line[PROXY_V1_MAX + 1];
	struct proxy_info again;
	size_t n;

	n = proxy_encode_v1(pi->local ? NULL : (const struct sockaddr *)&pi->src,
	    pi->local ? NULL : (const struct sockaddr *)&pi->dst, line);
	CHECK(n >= PROXY_MIN_HEADER && n <= PROXY_V1_MAX && strlen(line) == n);
	CHECK(proxy_decode((const uint8_t *)line, n, &again) == (ssize_t)n);
	CHECK(again.version == 1 && again.local == pi->local && again.family == pi->family);
	CHECK(same_sa(&again.src, again.src_len, &pi->src, pi->src_len));
	CHECK(same_sa(&again.dst, again.dst_len, &pi->dst, pi->dst_len));
}

/* Re-encode a decoded v2 PROXY header (addresses, known TLVs, the first
 * certificate-type TLV) as v2 and compare. */
static void
reencode_v2(const struct proxy_info *pi, const uint8_t *hdr, size_t hdrlen)
{
	static uint8_t out[PROXY_MAX_HEADER + 64];
	const unsigned int sent = PROXY_HAVE_ALPN | PROXY_HAVE_AUTHORITY | PROXY_HAVE_CRC32C |
	    PROXY_HAVE_UNIQUE_ID | PROXY_HAVE_SSL | PROXY_HAVE_SSL_VERSION | PROXY_HAVE_SSL_CN |
	    PROXY_HAVE_SSL_CIPHER | PROXY_HAVE_SSL_SIG_ALG | PROXY_HAVE_SSL_KEY_ALG;
	const struct sockaddr_un *su = (const struct sockaddr_un *)(const void *)&pi->src;
	const struct sockaddr_un *du = (const struct sockaddr_un *)(const void *)&pi->dst;
	const uint8_t *cert, *cert2;
	size_t cert_len = 0, cert2_len = 0;
	struct proxy_info again;
	struct proxy_tlvs t;
	ssize_t n;

	if (pi->local)
		return;		/* nothing to say about addresses */
	if (pi->family == AF_UNIX && (su->sun_path[0] == '\0' || du->sun_path[0] == '\0'))
		return;		/* abstract names are not re-encoded */
	memset(&t, 0, sizeof(t));
	if (pi->have & PROXY_HAVE_ALPN) {
		t.alpn = pi->alpn;
		t.alpn_len = pi->alpn_len;
	}
	if (pi->have & PROXY_HAVE_AUTHORITY)
		t.authority = pi->authority;
	if (pi->have & PROXY_HAVE_UNIQUE_ID) {
		t.unique_id = pi->unique_id;
		t.unique_id_len = pi->unique_id_len;
	}
	if (pi->have & PROXY_HAVE_SSL) {
		t.ssl.present = 1;
		t.ssl.client = pi->ssl.client;
		t.ssl.verify = pi->ssl.verify;
		if (pi->have & PROXY_HAVE_SSL_VERSION)
			t.ssl.version = pi->ssl.version;
		if (pi->have & PROXY_HAVE_SSL_CN)
			t.ssl.cn = pi->ssl.cn;
		if (pi->have & PROXY_HAVE_SSL_CIPHER)
			t.ssl.cipher = pi->ssl.cipher;
		if (pi->have & PROXY_HAVE_SSL_SIG_ALG)
			t.ssl.sig_alg = pi->ssl.sig_alg;
		if (pi->have & PROXY_HAVE_SSL_KEY_ALG)
			t.ssl.key_alg = pi->ssl.key_alg;
	}
	cert = proxy_find_tlv(hdr, hdrlen, PP2_TYPE_CLIENT_CERT, &cert_len);
	if (cert != NULL) {
		t.cert = cert;
		t.cert_len = cert_len;
	}
	t.crc32c = (pi->have & PROXY_HAVE_CRC32C) != 0;

	n = proxy_encode_v2((const struct sockaddr *)&pi->src, (const struct sockaddr *)&pi->dst,
	    &t, out, sizeof(out));
	/* what we send is never more than what we got: unknown TLVs, NOOPs
	 * and NETNS are dropped, the rest is the same size */
	CHECK(n >= PROXY_V2_HDR && (size_t)n <= hdrlen);
	CHECK(proxy_decode(out, (size_t)n, &again) == n);
	CHECK(again.version == 2 && again.local == 0 && again.family == pi->family);
	CHECK(again.socktype == SOCK_STREAM);
	CHECK(same_sa(&again.src, again.src_len, &pi->src, pi->src_len));
	CHECK(same_sa(&again.dst, again.dst_len, &pi->dst, pi->dst_len));
	CHECK(again.have == (pi->have & sent));
	CHECK(again.alpn_len == pi->alpn_len && memcmp(again.alpn, pi->alpn, pi->alpn_len) == 0);
	CHECK(strcmp(again.authority, pi->authority) == 0);
	CHECK(again.unique_id_len == pi->unique_id_len &&
	    memcmp(again.unique_id, pi->unique_id, pi->unique_id_len) == 0);
	CHECK(again.ssl.client == pi->ssl.client && again.ssl.verify == pi->ssl.verify);
	CHECK(strcmp(again.ssl.version, pi->ssl.version) == 0);
	CHECK(strcmp(again.ssl.cn, pi->ssl.cn) == 0);
	CHECK(strcmp(again.ssl.cipher, pi->ssl.cipher) == 0);
	CHECK(strcmp(again.ssl.sig_alg, pi->ssl.sig_alg) == 0);
	CHECK(strcmp(again.ssl.key_alg, pi->ssl.key_alg) == 0);
	cert2 = proxy_find_tlv(out, (size_t)n, PP2_TYPE_CLIENT_CERT, &cert2_len);
	CHECK((cert == NULL) == (cert2 == NULL));
	CHECK(cert == NULL || (cert_len == cert2_len && memcmp(cert, cert2, cert_len) == 0));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info whole, pi;
	uint8_t *buf, *cut;
	size_t first_bad = SIZE_MAX;
	ssize_t r, rk;

	buf = malloc(size > 0 ? size : 1);
	CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);

	r = proxy_decode(buf, size, &whole);
	CHECK(r == -1 || r == 0 || (r >= PROXY_MIN_HEADER && r <= PROXY_MAX_HEADER &&
	    (size_t)r <= size));

	/*
	 * Prefixes. Past the header (r > 0) or the first rejected prefix, a
	 * few more are enough: each of those reparses the whole header.
	 */
	for (size_t k = 0; k <= size; k++) {
		if ((r > 0 && k > (size_t)r + 8) || (first_bad != SIZE_MAX && k > first_bad + 8))
			break;
		rk = decode_prefix(buf, size, k, &pi);
		if (r == 0) {
			CHECK(rk == 0);
		} else if (r > 0) {
			if (k < (size_t)r)
				CHECK(rk == 0);
			else
				CHECK(rk == r && memcmp(&pi, &whole, sizeof(pi)) == 0);
		} else if (first_bad == SIZE_MAX) {
			CHECK(rk == 0 || rk == -1);
			if (rk == -1)
				first_bad = k;
		} else {
			CHECK(rk == -1);	/* once rejected, rejected for good */
		}
	}
	CHECK(r != -1 || first_bad != SIZE_MAX);

	if (r > 0) {
		/* a copy cut at the header's end decodes the same */
		cut = malloc((size_t)r);
		CHECK(cut != NULL);
		memcpy(cut, data, (size_t)r);
		CHECK(proxy_decode(cut, (size_t)r, &pi) == r);
		CHECK(memcmp(&pi, &whole, sizeof(pi)) == 0);
		if (whole.version == 1)
			reencode_v1(&whole);
		else
			reencode_v2(&whole, cut, (size_t)r);
		free(cut);
	}
	free(buf);
	return 0;
}
