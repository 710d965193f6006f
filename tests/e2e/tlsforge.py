"""Hand-made TLS bytes for the hostile-input tests (issue #7), built with
struct alone: records, ClientHellos with any extension malformed on purpose,
SSLv2- and SSLv3-format hellos; and a client side that sends them to a
server and says what came back (an alert, a ServerHello, EOF, a reset or
nothing at all).

Nothing here completes a handshake: the key share is 32 random bytes (any
32 bytes are an X25519 public key), which is enough for the server to
answer with its ServerHello. For clients that must get past the handshake
(KeyUpdate, renegotiation), LibsslClient drives the system's libssl through
ctypes, because Python's ssl module has no SSL_key_update / SSL_renegotiate;
Tls12Writer encrypts TLS 1.2 records with such a connection's keys, for
messages libssl would not send (a renegotiation ClientHello after another).
"""
import ctypes
import ctypes.util
import os
import select
import socket
import struct
import time

try:
    from tf_run import TIME_SCALE  # longer waits under valgrind
except ImportError:
    TIME_SCALE = 1

# ---------------------------------------------------------------- constants

CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23

HT_CLIENT_HELLO = 1
HT_SERVER_HELLO = 2

EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
EXT_RENEGOTIATION_INFO = 0xFF01

TLS10, TLS11, TLS12, TLS13 = 0x0301, 0x0302, 0x0303, 0x0304
SSL3 = 0x0300

GROUP_X25519, GROUP_P256, GROUP_P384 = 0x001D, 0x0017, 0x0018

# TLS 1.3 suites, then the ECDHE suites of TLS 1.2 (Mozilla intermediate)
DEFAULT_CIPHERS = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8)
DEFAULT_SIGALGS = (0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601)

# RFC 8446 6 and RFC 7301 / 8446 registry names, for messages
ALERTS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
    22: "record_overflow", 40: "handshake_failure", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
    49: "access_denied", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
    120: "no_application_protocol",
}
ALERT_CODES = {v: k for k, v in ALERTS.items()}

# ---------------------------------------------------------------- encoding


def u8(n):
    return struct.pack("!B", n)


def u16(n):
    return struct.pack("!H", n)


def u24(n):
    return struct.pack("!I", n)[1:]


def vec8(b):
    """b with its 1-byte length in front."""
    if len(b) > 0xFF:
        raise ValueError("vec8 of %d bytes" % len(b))
    return u8(len(b)) + b


def vec16(b):
    """b with its 2-byte length in front."""
    if len(b) > 0xFFFF:
        raise ValueError("vec16 of %d bytes" % len(b))
    return u16(len(b)) + b


def record(ctype, version, payload, length=None):
    """One TLS record. length: the length field to write, if it must lie."""
    return struct.pack("!BHH", ctype, version, len(payload) if length is None else length) \
        + payload


def records(ctype, payload, version=TLS10, size=16384):
    """payload (a handshake message, say) cut into records of at most size
    bytes: a handshake message may span records (RFC 8446 5.1)."""
    out = bytearray()
    for i in range(0, len(payload), size):
        out += record(ctype, version, payload[i:i + size])
    return bytes(out)


def handshake(msg_type, body):
    return u8(msg_type) + u24(len(body)) + body


def ext(etype, body):
    """One extension: type, 2-byte length, body."""
    return u16(etype) + vec16(body)


def sni_body(names):
    """The body of a server_name extension listing names: each a str or
    bytes (name_type 0, host_name) or a (name_type, bytes) pair."""
    out = bytearray()
    for n in names:
        t, v = n if isinstance(n, tuple) else (0, n)
        if isinstance(v, str):
            v = v.encode()
        out += u8(t) + vec16(v)
    return vec16(bytes(out))


def alpn_body(protocols):
    """The body of an ALPN extension: a 2-byte list of 1-byte-length names."""
    out = bytearray()
    for p in protocols:
        out += vec8(p.encode() if isinstance(p, str) else p)
    return vec16(bytes(out))


def filler_alpn(total, last=None):
    """ALPN protocol names that add up to an ALPN list body of about total
    bytes (at most 0xFFFF - 2): 250-byte names that match nothing, then last
    (e.g. a protocol the server does speak) if given."""
    protos = []
    size = 2 + (1 + len(last) if last else 0)
    i = 0
    while size + 1 + 250 <= total:
        protos.append(("x%05d" % i).encode() * 41 + b"zzzz")  # 250 bytes
        size += 251
        i += 1
    if last:
        protos.append(last.encode() if isinstance(last, str) else last)
    return protos


def client_hello(sni="localhost", alpn=None, versions=(TLS13, TLS12), ciphers=DEFAULT_CIPHERS,
                 groups=(GROUP_X25519, GROUP_P256, GROUP_P384), key_share=True,
                 sigalgs=DEFAULT_SIGALGS, legacy_version=TLS12, session_id=None,
                 override=None, extra=(), random=None, compression=b"\x00"):
    """A ClientHello handshake message (header included, no record).

    sni: a name (str/bytes), a list for several entries (see sni_body), or
    None for no server_name extension. alpn: a list of protocols or None.
    versions: for supported_versions (None: leave the extension out, a
    TLS 1.2-style hello). key_share: an X25519 share of 32 random bytes
    (or of these 32 bytes); False for none.
    override: {extension type: body bytes, or None to leave it out}, to
    malform one extension; extra: (type, body) pairs appended as they are.
    """
    exts = []
    if sni is not None:
        exts.append((EXT_SERVER_NAME, sni_body(sni if isinstance(sni, list) else [sni])))
    if groups:
        exts.append((EXT_SUPPORTED_GROUPS, vec16(b"".join(u16(g) for g in groups))))
    exts.append((EXT_EC_POINT_FORMATS, vec8(b"\x00")))
    if sigalgs:
        exts.append((EXT_SIGNATURE_ALGORITHMS, vec16(b"".join(u16(s) for s in sigalgs))))
    if alpn is not None:
        exts.append((EXT_ALPN, alpn_body(alpn)))
    exts.append((EXT_EXTENDED_MASTER_SECRET, b""))
    if versions:
        exts.append((EXT_SUPPORTED_VERSIONS, vec8(b"".join(u16(v) for v in versions))))
        exts.append((EXT_PSK_KEY_EXCHANGE_MODES, vec8(b"\x01")))
        if key_share:
            key = key_share if isinstance(key_share, bytes) else os.urandom(32)
            share = u16(GROUP_X25519) + vec16(key)
            exts.append((EXT_KEY_SHARE, vec16(share)))
    override = override or {}
    body = bytearray()
    seen = set()
    for t, b in exts:
        seen.add(t)
        if t in override:
            if override[t] is None:
                continue
            b = override[t]
        body += ext(t, b)
    for t, b in override.items():
        if t not in seen and b is not None:
            body += ext(t, b)
    for t, b in extra:
        body += ext(t, b)
    hello = (u16(legacy_version) + (random or os.urandom(32)) +
             vec8(os.urandom(32) if session_id is None else session_id) +
             vec16(b"".join(u16(c) for c in ciphers)) + vec8(compression) +
             vec16(bytes(body)))
    return handshake(HT_CLIENT_HELLO, hello)


def hello_records(hello, version=TLS10, size=16384):
    """A ClientHello message in handshake records of at most size bytes."""
    return records(CT_HANDSHAKE, hello, version, size)


def sslv2_hello(version=TLS12, ciphers=((0x00, 0xC0, 0x2B), (0x00, 0xC0, 0x2F),
                                        (0x00, 0x00, 0x2F), (0x01, 0x00, 0x80))):
    """An SSLv2-format CLIENT-HELLO (what old clients sent to find out the
    server's version): a 2-byte record header with the top bit set, then
    msg_type 1, the highest version the client speaks, 3-byte cipher specs,
    no session id, a 16-byte challenge."""
    challenge = os.urandom(16)
    specs = b"".join(bytes(c) for c in ciphers)
    body = (u8(1) + u16(version) + u16(len(specs)) + u16(0) + u16(len(challenge)) +
            specs + challenge)
    return u16(0x8000 | len(body)) + body


def sslv3_hello(sni=None):
    """An SSLv3 ClientHello: record and client version 3.0, the SSLv3-era
    suites (AES128-SHA, DES-CBC3-SHA), no extensions unless sni."""
    exts = ext(EXT_SERVER_NAME, sni_body([sni])) if sni else b""
    hello = (u16(SSL3) + os.urandom(32) + vec8(b"") + vec16(u16(0x002F) + u16(0x000A)) +
             vec8(b"\x00") + (vec16(exts) if exts else b""))
    return record(CT_HANDSHAKE, SSL3, handshake(HT_CLIENT_HELLO, hello))


# ---------------------------------------------------------------- talking to a server

class Answer:
    """What a server said to one input.

    kind: "alert" (the first record was an alert: level, desc), "server_hello"
    (a handshake record starting with a ServerHello), "eof" (closed without a
    byte), "reset", "timeout" (nothing within the time given) or "other"
    (some other bytes: see data). closed: the connection was seen to end
    (EOF or reset) within the time given. data: every byte received.
    """

    def __init__(self):
        self.kind = None
        self.level = self.desc = None
        self.closed = False
        self.data = b""
        self.server_version = None

    @property
    def alert(self):
        return ALERTS.get(self.desc, str(self.desc)) if self.kind == "alert" else None

    def __repr__(self):
        if self.kind == "alert":
            return "<alert %s %s(%d)%s>" % ("fatal" if self.level == 2 else
                                             "level-%s" % self.level, self.alert, self.desc,
                                             " then closed" if self.closed else "")
        return "<%s%s, %d bytes>" % (self.kind, " then closed" if self.closed and
                                     self.kind not in ("eof", "reset") else "", len(self.data))


def classify(data):
    """(kind, level, desc, version) of the start of a server's bytes; kind is
    None while more bytes are needed to tell."""
    if len(data) < 5:
        return None, None, None, None
    ctype, version, length = struct.unpack("!BHH", data[:5])
    if ctype == CT_ALERT:
        if len(data) < 7:
            return None, None, None, None
        return "alert", data[5], data[6], version
    if ctype == CT_HANDSHAKE:
        if len(data) < 6:
            return None, None, None, None
        if data[5] == HT_SERVER_HELLO:
            sv = None
            if len(data) >= 11:
                sv = struct.unpack("!H", data[9:11])[0]
            return "server_hello", None, None, sv
        return "other", None, None, version
    return "other", None, None, version


def wait_io(sock, write, timeout):
    """Wait until sock is readable (writable if write), at most timeout
    seconds; True if it is. poll(), not select(): no FD_SETSIZE limit."""
    p = select.poll()
    p.register(sock, select.POLLOUT if write else select.POLLIN)
    return bool(p.poll(max(0, timeout) * 1000))


def read_answer(sock, timeout, until_close=True):
    """Read from sock for at most timeout seconds and classify the first
    bytes (see Answer). With until_close, go on reading after an alert or
    other bytes until the server closes (or the time is up), to see that it
    does; a ServerHello is returned at once."""
    a = Answer()
    deadline = time.monotonic() + timeout * TIME_SCALE
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if not wait_io(sock, False, left):
            break
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            a.closed = True
            if a.kind is None:
                kind = classify(bytes(data))[0]
                a.kind = kind or "reset"
            break
        except OSError:
            a.closed = True
            break
        if not b:
            a.closed = True
            break
        data += b
        if a.kind is None:
            kind, level, desc, ver = classify(bytes(data))
            if kind is not None:
                a.kind, a.level, a.desc = kind, level, desc
                a.server_version = ver
                if kind == "server_hello" or not until_close:
                    break
    a.data = bytes(data)
    if a.kind is None:
        if data:
            a.kind = "other"
        elif a.closed:
            a.kind = "eof"
        else:
            a.kind = "timeout"
    return a


def connect(port, host="127.0.0.1", timeout=10.0, nodelay=True, source=None):
    """A TCP connection (TCP_NODELAY: each send goes out at once), from the
    address source if given (127.0.0.2, say: any 127/8 address is local)."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_bytes(sock, data, chunk=None):
    """Send data, in sends of chunk bytes if given (TCP_NODELAY: one segment
    each). A server that closes first may reset us: return False then."""
    try:
        if chunk is None:
            sock.sendall(data)
        else:
            for i in range(0, len(data), chunk):
                sock.sendall(data[i:i + chunk])
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


# A TLS 1.3 KeyUpdate as a record: 4 bytes of handshake header, 1 of body,
# the inner content type, a 16-byte AEAD tag (every suite tlsfront offers)
KEY_UPDATE_RECORD_LEN = 4 + 1 + 1 + 16


def peek_records(sock, length=None):
    """How many whole TLS records (of this payload length, if given) are
    waiting on sock, unread (MSG_PEEK: they stay there for whoever reads
    them next)."""
    try:
        data = sock.recv(1 << 22, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return 0
    n = i = 0
    while i + 5 <= len(data):
        size = struct.unpack("!H", data[i + 3:i + 5])[0]
        i += 5 + size
        if i <= len(data) and (length is None or size == length):
            n += 1
    return n


# ---------------------------------------------------------------- libssl by ctypes

SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE, SSL_ERROR_ZERO_RETURN = 2, 3, 6
SSL_KEY_UPDATE_NOT_REQUESTED, SSL_KEY_UPDATE_REQUESTED = 0, 1
_SSL_CTRL_SET_TLSEXT_HOSTNAME = 55
_SSL_CTRL_SET_MIN_PROTO_VERSION = 123
_SSL_CTRL_SET_MAX_PROTO_VERSION = 124

_lib = None


def libssl():
    """The system's libssl 3 (the one openssl(1) uses), typed for LibsslClient."""
    global _lib
    if _lib is not None:
        return _lib
    name = "libssl.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        lib = ctypes.CDLL(ctypes.util.find_library("ssl"))
    P, I, L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
    for fn, res, args in (
            ("TLS_client_method", P, []),
            ("SSL_CTX_new", P, [P]),
            ("SSL_CTX_free", None, [P]),
            ("SSL_CTX_ctrl", L, [P, I, L, P]),
            ("SSL_new", P, [P]),
            ("SSL_free", None, [P]),
            ("SSL_ctrl", L, [P, I, L, P]),
            ("SSL_set_fd", I, [P, I]),
            ("SSL_connect", I, [P]),
            ("SSL_do_handshake", I, [P]),
            ("SSL_key_update", I, [P, I]),
            ("SSL_renegotiate", I, [P]),
            ("SSL_write", I, [P, P, I]),
            ("SSL_read", I, [P, P, I]),
            ("SSL_get_error", I, [P, I]),
            ("SSL_get_version", ctypes.c_char_p, [P]),
            ("SSL_set0_wbio", None, [P, P]),
            ("BIO_s_mem", P, []),
            ("BIO_new", P, [P]),
            ("BIO_ctrl_pending", ctypes.c_size_t, [P]),
            ("BIO_read", I, [P, P, I]),
            ("SSL_CTX_set_cipher_list", I, [P, ctypes.c_char_p]),
            ("SSL_get_client_random", ctypes.c_size_t, [P, P, ctypes.c_size_t]),
            ("SSL_get_server_random", ctypes.c_size_t, [P, P, ctypes.c_size_t]),
            ("SSL_get_session", P, [P]),
            ("SSL_SESSION_get_master_key", ctypes.c_size_t, [P, P, ctypes.c_size_t]),
            # libcrypto's, found through libssl
            ("EVP_aes_128_gcm", P, []),
            ("EVP_CIPHER_CTX_new", P, []),
            ("EVP_CIPHER_CTX_free", None, [P]),
            ("EVP_CIPHER_CTX_ctrl", I, [P, I, I, P]),
            ("EVP_EncryptInit_ex", I, [P, P, P, P, P]),
            ("EVP_EncryptUpdate", I, [P, P, P, P, I]),
            ("EVP_EncryptFinal_ex", I, [P, P, P])):
        f = getattr(lib, fn)
        f.restype = res
        f.argtypes = args
    lib.ERR_get_error.restype = ctypes.c_ulong
    lib.ERR_get_error.argtypes = []
    lib.ERR_error_string_n.restype = None
    lib.ERR_error_string_n.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]
    lib.ERR_clear_error.restype = None
    lib.ERR_clear_error.argtypes = []
    _lib = lib
    return lib


class SslFailed(Exception):
    pass


class LibsslClient:
    """A TLS client on libssl through ctypes, on a non-blocking socket:
    handshake, key updates, renegotiation, reads and writes, each bounded
    by timeout seconds. No certificate verification (not what is tested)."""

    def __init__(self, port, sni, version=TLS13, timeout=20.0, ciphers=None):
        self.lib = libssl()
        self.timeout = timeout * TIME_SCALE
        self.ctx = self.lib.SSL_CTX_new(self.lib.TLS_client_method())
        if not self.ctx:
            raise SslFailed("SSL_CTX_new")
        if ciphers and self.lib.SSL_CTX_set_cipher_list(self.ctx, ciphers.encode()) != 1:
            raise SslFailed("cipher list %s: %s" % (ciphers, self.errors()))
        self.lib.SSL_CTX_ctrl(self.ctx, _SSL_CTRL_SET_MIN_PROTO_VERSION, version, None)
        self.lib.SSL_CTX_ctrl(self.ctx, _SSL_CTRL_SET_MAX_PROTO_VERSION, version, None)
        self.ssl = self.lib.SSL_new(self.ctx)
        self.sock = connect(port, timeout=timeout)
        self.sock.setblocking(False)
        self._name = ctypes.c_char_p(sni.encode())  # kept alive while the SSL lives
        self.lib.SSL_ctrl(self.ssl, _SSL_CTRL_SET_TLSEXT_HOSTNAME, 0, self._name)
        self.lib.SSL_set_fd(self.ssl, self.sock.fileno())
        self._io(lambda: self.lib.SSL_connect(self.ssl), "handshake")

    def errors(self):
        out = []
        while True:
            e = self.lib.ERR_get_error()
            if not e:
                return "; ".join(out)
            buf = ctypes.create_string_buffer(256)
            self.lib.ERR_error_string_n(e, buf, 256)
            out.append(buf.value.decode(errors="replace"))

    def _io(self, op, what, deadline=None):
        """Run op until it is done, waiting on the socket as libssl asks.
        Returns op's result (> 0); raises SslFailed on an error or EOF,
        TimeoutError when the time is up."""
        deadline = deadline or time.monotonic() + self.timeout
        while True:
            self.lib.ERR_clear_error()
            r = op()
            if r > 0:
                return r
            err = self.lib.SSL_get_error(self.ssl, r)
            if err not in (SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE):
                raise SslFailed("%s: SSL error %d: %s" % (what, err, self.errors()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: no progress" % what)
            wait_io(self.sock, err == SSL_ERROR_WANT_WRITE, left)

    @property
    def version(self):
        return self.lib.SSL_get_version(self.ssl).decode()

    def key_update(self, requested=True, deadline=None):
        """Send one KeyUpdate (asking the server for one back if requested)."""
        if self.lib.SSL_key_update(self.ssl, SSL_KEY_UPDATE_REQUESTED if requested
                                   else SSL_KEY_UPDATE_NOT_REQUESTED) != 1:
            raise SslFailed("SSL_key_update: %s" % self.errors())
        self._io(lambda: self.lib.SSL_do_handshake(self.ssl), "key update", deadline)

    def renegotiate(self):
        """Ask for a renegotiation (TLS 1.2) and try to complete it."""
        if self.lib.SSL_renegotiate(self.ssl) != 1:
            raise SslFailed("SSL_renegotiate: %s" % self.errors())
        self._io(lambda: self.lib.SSL_do_handshake(self.ssl), "renegotiation")

    def capture_writes(self):
        """From now on, what libssl writes goes to memory instead of the
        socket (take_written() returns it): a client can then prepare
        thousands of records and send them in one go, faster than any
        server reads them. Reads still come from the socket."""
        self.wbio = self.lib.BIO_new(self.lib.BIO_s_mem())
        if not self.wbio:
            raise SslFailed("BIO_new")
        self.lib.SSL_set0_wbio(self.ssl, self.wbio)   # the SSL owns it now

    def take_written(self):
        """The bytes written since capture_writes() or the last call."""
        n = self.lib.BIO_ctrl_pending(self.wbio)
        buf = ctypes.create_string_buffer(max(n, 1))
        got = self.lib.BIO_read(self.wbio, buf, n) if n else 0
        return buf.raw[:max(got, 0)]

    def send_raw(self, data):
        """Send bytes (from take_written()) on the socket, waiting as long
        as the server needs to take them (bounded by timeout)."""
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def write(self, data):
        buf = ctypes.create_string_buffer(data, len(data))
        off = 0
        while off < len(data):
            n = self._io(lambda: self.lib.SSL_write(
                self.ssl, ctypes.byref(buf, off), len(data) - off), "write")
            off += n

    def read_pending(self):
        """Read what can be read without waiting (processing the server's
        KeyUpdates on the way); return it. Raises SslFailed on an error, and
        on EOF / close_notify."""
        out = bytearray()
        buf = ctypes.create_string_buffer(16384)
        while True:
            self.lib.ERR_clear_error()
            r = self.lib.SSL_read(self.ssl, buf, len(buf))
            if r > 0:
                out += buf.raw[:r]
                continue
            err = self.lib.SSL_get_error(self.ssl, r)
            if err in (SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE):
                return bytes(out)
            raise SslFailed("read: SSL error %d: %s" % (err, self.errors()))

    def read_all(self):
        """Read until the server closes (close_notify or EOF); return the bytes."""
        out = bytearray()
        buf = ctypes.create_string_buffer(16384)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                n = self._io(lambda: self.lib.SSL_read(self.ssl, buf, len(buf)), "read",
                             deadline)
            except SslFailed:
                return bytes(out)
            out += buf.raw[:n]

    def close(self):
        if self.ssl:
            self.lib.SSL_free(self.ssl)
            self.ssl = None
        if self.ctx:
            self.lib.SSL_CTX_free(self.ctx)
            self.ctx = None
        self.sock.close()


# ---------------------------------------------------------------- TLS 1.2 records by hand

def _prf_sha256(secret, label, seed, n):
    """The TLS 1.2 PRF with SHA-256 (RFC 5246 5)."""
    import hashlib
    import hmac
    seed = label + seed
    out, a = b"", seed
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:n]


class Tls12Writer:
    """Encrypts records as the client of a TLS 1.2 connection that
    LibsslClient set up with ECDHE-*-AES128-GCM-SHA256, from the session's
    keys: for messages libssl would never send, such as one renegotiation
    ClientHello after another. Takes over the client's write direction:
    libssl must not write on that connection any more."""

    def __init__(self, client):
        lib = self.lib = client.lib
        ssl_ = client.ssl
        cr = ctypes.create_string_buffer(32)
        sr = ctypes.create_string_buffer(32)
        mk = ctypes.create_string_buffer(48)
        if (lib.SSL_get_client_random(ssl_, cr, 32) != 32 or
                lib.SSL_get_server_random(ssl_, sr, 32) != 32 or
                lib.SSL_SESSION_get_master_key(lib.SSL_get_session(ssl_), mk, 48) != 48):
            raise SslFailed("cannot get the TLS 1.2 session's secrets")
        block = _prf_sha256(mk.raw, b"key expansion", sr.raw + cr.raw, 2 * 16 + 2 * 4)
        self.key, self.iv = block[0:16], block[32:36]
        self.seq = 1   # the client's Finished was record 0

    def record(self, ctype, plaintext):
        """The next record of content type ctype, AES-128-GCM encrypted."""
        lib = self.lib
        explicit = struct.pack("!Q", self.seq)
        aad = explicit + struct.pack("!BHH", ctype, TLS12, len(plaintext))
        self.seq += 1
        ctx = lib.EVP_CIPHER_CTX_new()
        try:
            out = ctypes.create_string_buffer(len(plaintext) + 16)
            tag = ctypes.create_string_buffer(16)
            n = ctypes.c_int(0)
            ok = (lib.EVP_EncryptInit_ex(ctx, lib.EVP_aes_128_gcm(), None, None, None) == 1 and
                  lib.EVP_CIPHER_CTX_ctrl(ctx, 0x9, 12, None) == 1 and   # SET_IVLEN
                  lib.EVP_EncryptInit_ex(ctx, None, None, self.key, self.iv + explicit) == 1 and
                  lib.EVP_EncryptUpdate(ctx, None, ctypes.byref(n), aad, len(aad)) == 1 and
                  lib.EVP_EncryptUpdate(ctx, out, ctypes.byref(n), plaintext,
                                        len(plaintext)) == 1 and
                  lib.EVP_EncryptFinal_ex(ctx, ctypes.byref(out, n.value),
                                          ctypes.byref(n)) == 1 and
                  lib.EVP_CIPHER_CTX_ctrl(ctx, 0x10, 16, tag) == 1)  # GET_TAG
            if not ok:
                raise SslFailed("AES-GCM encryption failed")
            return record(ctype, TLS12, explicit + out.raw[:len(plaintext)] + tag.raw)
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)
