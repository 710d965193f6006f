"""PROXY protocol both ways.

Sending (per host, proxy_protocol = v1 | v2, also from [defaults]):
- a Python backend that decodes the header itself (struct, independently of
  tlsfront's codec) checks, for TLS 1.3 and 1.2 clients with and without SNI
  and ALPN, with and without client certificates (proxy_client_cert = der,
  and pem in TLV 0xE5), the addresses (src = the client's socket, dst =
  tlsfront's listener) and every TLV: ALPN, AUTHORITY, SSL (client flags,
  verify, VERSION, CN, CIPHER, SIG_ALG, KEY_ALG for an EC and an RSA
  certificate) and the certificate (byte for byte against `openssl x509
  -outform der`); resumed TLS 1.2 and 1.3 sessions give CERT_SESS without
  CERT_CONN; a certificate too large for a TLV is left out; a UTF-8 CN is
  sent in UTF-8; v1 is one exact line; proxy_protocol = off sends nothing;
- a real nginx (`listen ... proxy_protocol`) behind a v1 and a v2 host, and
  a real HAProxy (`accept-proxy`) behind them, log the original client
  (127.0.0.3, not tlsfront's 127.0.0.1) and HAProxy the SNI (authority).
Receiving ([global] accept_proxy = CIDRs):
- a real HAProxy in TCP mode (send-proxy, and send-proxy-v2 with a CRC32C,
  connecting from 127.0.0.2) in front of tlsfront: the access log names the
  client behind it and the header tlsfront sends on carries that client;
- from a listed source: no header, half a header (timeout), a closed
  connection, a v1 header in 1-byte writes, headers in the same segment as
  the ClientHello (v1; v2 TCP4, TCP6, UNIX, LOCAL, UNSPEC; good and bad
  CRC32C; the largest accepted and one byte more), a header whose first bytes
  were read before the rest came with the ClientHello, v1 UNKNOWN, bad
  headers; a /31 of the list and the address just outside it; ::1; a header
  from an unlisted source is bad TLS and never parsed.
And `tlsfront -t` errors for the new keys at FILE:LINE (accept_proxy can be
given once, so `nonsense` has a run of its own).
No sleeps: ports are awaited in /proc/net/tcp (a probe connection would go
through haproxy into the access log), reads by the server in its rx queue."""
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

from tf_clients import client_context, connect_from, recv_all
from tf_peers import TcpServer, start_nginx
from tf_pki import CA, openssl, self_signed
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, cleanup, free_port, program, run, tmpdir, wait_for, wait_listening

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CLIENT_IP = "127.0.0.3"         # not listed in accept_proxy
TRUSTED_IP = "127.0.0.2"        # listed (haproxy connects from here)
PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN, PP2_CLIENT_CERT_SESS = 1, 2, 4


# ------------------------------------------------------------------ v2 by hand

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def parse_v2(hdr):
    """Decode a whole v2 header (our own reading of the spec). Returns a dict:
    cmd, fam, src, dst (address tuples, or None), tlvs (list of (type,
    value)), ssl (dict or None), crc_ok (None if no CRC32C TLV)."""
    assert hdr[:12] == SIG, "bad signature %r" % hdr[:12]
    ver_cmd, fam, length = hdr[12], hdr[13], struct.unpack("!H", hdr[14:16])[0]
    assert len(hdr) == 16 + length
    body = hdr[16:]
    out = {"ver": ver_cmd >> 4, "cmd": ver_cmd & 0xF, "fam": fam, "src": None,
           "dst": None, "tlvs": [], "ssl": None, "crc_ok": None}
    if fam == 0x11:
        s, dd, sp, dp = struct.unpack("!4s4sHH", body[:12])
        out["src"] = (socket.inet_ntop(socket.AF_INET, s), sp)
        out["dst"] = (socket.inet_ntop(socket.AF_INET, dd), dp)
        pos = 12
    elif fam == 0x21:
        s, dd, sp, dp = struct.unpack("!16s16sHH", body[:36])
        out["src"] = (socket.inet_ntop(socket.AF_INET6, s), sp)
        out["dst"] = (socket.inet_ntop(socket.AF_INET6, dd), dp)
        pos = 36
    elif fam == 0x31:
        out["src"] = body[:108].rstrip(b"\0").decode()
        out["dst"] = body[108:216].rstrip(b"\0").decode()
        pos = 216
    else:
        pos = 0
    if out["cmd"] == 0:                 # LOCAL: nothing more to read
        return out
    while pos < len(body):
        t, n = body[pos], struct.unpack("!H", body[pos + 1:pos + 3])[0]
        v = body[pos + 3:pos + 3 + n]
        assert len(v) == n, "TLV 0x%02x overruns the header" % t
        out["tlvs"].append((t, v))
        if t == 0x03:
            zeroed = hdr[:16 + pos + 3] + b"\0\0\0\0" + hdr[16 + pos + 7:]
            out["crc_ok"] = crc32c(zeroed) == struct.unpack("!I", v)[0]
        if t == 0x20:
            sslinfo = {"client": v[0], "verify": struct.unpack("!I", v[1:5])[0], "sub": []}
            sp = 5
            while sp < len(v):
                st, sn = v[sp], struct.unpack("!H", v[sp + 1:sp + 3])[0]
                sv = v[sp + 3:sp + 3 + sn]
                assert len(sv) == sn, "sub-TLV 0x%02x overruns the SSL TLV" % st
                sslinfo["sub"].append((st, sv))
                sp += 3 + sn
            out["ssl"] = sslinfo
        pos += 3 + n
    return out


def v2_header(cmd, fam, addrs=b"", tlvs=b""):
    body = addrs + tlvs
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def v2_tcp4(src, dst, tlvs=b""):
    return v2_header(1, 0x11, socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) +
                     struct.pack("!HH", src[1], dst[1]), tlvs)


def v2_tcp6(src, dst):
    return v2_header(1, 0x21, socket.inet_pton(socket.AF_INET6, src[0]) +
                     socket.inet_pton(socket.AF_INET6, dst[0]) +
                     struct.pack("!HH", src[1], dst[1]))


def tlv(t, v):
    return bytes([t]) + struct.pack("!H", len(v)) + v


# ------------------------------------------------------------------ backend

class ProxyBackend(TcpServer):
    """Accepts connections; reads what precedes the client's first line: a
    PROXY v2 header, a v1 line, or nothing; then the line "hello TAG\\n", and
    answers "ok TAG\\n". Everything is recorded under TAG."""

    def __init__(self):
        self.records = {}
        self.errors = []
        super().__init__()

    @staticmethod
    def _need(c, data, n):
        while len(data) < n:
            b = c.recv(65536)
            if not b:
                raise EOFError("EOF after %d bytes: %r" % (len(data), data[:64]))
            data += b
        return data

    def serve(self, c):
        try:
            c.settimeout(20)
            data = self._need(c, b"", 1)
            rec = {"kind": "none", "raw": b""}
            if data[:1] == b"\r":
                data = self._need(c, data, 16)
                n = 16 + struct.unpack("!H", data[14:16])[0]
                data = self._need(c, data, n)
                rec = {"kind": "v2", "raw": data[:n], "v2": parse_v2(data[:n])}
                data = data[n:]
            elif data[:1] == b"P":
                while b"\r\n" not in data:
                    data = self._need(c, data, len(data) + 1)
                line, _, data = data.partition(b"\r\n")
                rec = {"kind": "v1", "raw": line + b"\r\n"}
            while b"\n" not in data:
                data = self._need(c, data, len(data) + 1)
            first, _, rest = data.partition(b"\n")
            rec["first"] = first
            tag = first.decode("latin-1").split(" ", 1)[-1]
            self.records[tag] = rec
            c.sendall(b"ok " + tag.encode() + b"\n")
        except Exception as e:  # noqa: BLE001 - recorded, checked by the test
            self.errors.append(repr(e))
        finally:
            c.close()

    def record(self, tag):
        return self.records.get(tag)


# ------------------------------------------------------------------ clients

class Conn:
    """What one client connection saw."""
    error = None
    answer = None
    addr = None
    version = cipher = alpn = None
    session = None
    reused = False


def tls_hello(port, sni, tag, ctx=None, src_ip=CLIENT_IP, prefix=b"", split=False,
              session=None, unwrap=False, host="127.0.0.1"):
    """Connect from src_ip, write prefix (byte by byte if split), handshake
    with SNI sni, send "hello TAG\\n", read to EOF. Never raises."""
    ctx = ctx or client_context()
    r = Conn()
    try:
        raw = connect_from(src_ip, port, host)
    except OSError as e:
        r.error = "connect: %s" % e
        return r
    r.addr = raw.getsockname()[:2]
    try:
        if split:
            for i in range(len(prefix)):
                raw.send(prefix[i:i + 1])
        elif prefix:
            raw.sendall(prefix)
        s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except (OSError, ssl.SSLError) as e:
        raw.close()
        r.error = "handshake: %r" % e
        return r
    try:
        r.version, r.cipher, r.alpn = s.version(), s.cipher()[0], s.selected_alpn_protocol()
        s.sendall(("hello %s\n" % tag).encode())
        r.answer = recv_all(s).decode("latin-1")
        r.session, r.reused = s.session, s.session_reused
        if unwrap:
            try:
                s.unwrap()
            except (OSError, ssl.SSLError):
                pass
    except (OSError, ssl.SSLError) as e:
        r.error = "after handshake: %r" % e
    finally:
        s.close()
    return r


def server_rx_queue(port, peer):
    """Bytes the server side (127.0.0.1:port) of the connection from peer
    (an IPv4 (ip, port)) has received but not yet read, from /proc/net/tcp;
    None if there is no such socket."""
    local = "0100007F:%04X" % port
    rem = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(peer[0]))[0], peer[1])
    with open("/proc/net/tcp") as f:
        for line in f:
            x = line.split()
            if x[1] == local and x[2] == rem:
                return int(x[4].split(":")[1], 16)
    return None


def bio_hello(port, sni, tag, prefix, ctx=None, src_ip=TRUSTED_IP, host="127.0.0.1",
              first=b""):
    """Like tls_hello, but prefix and the ClientHello go out in ONE send():
    the handshake runs over memory BIOs so the ClientHello is known first.
    first: bytes sent before that, once the server has read them."""
    ctx = ctx or client_context()
    r = Conn()
    raw = connect_from(src_ip, port, host)
    r.addr = raw.getsockname()[:2]
    if first:
        raw.sendall(first)
        wait_for(lambda: server_rx_queue(port, r.addr) == 0, 10,
                 "tlsfront to read the first %d bytes" % len(first))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)

    def pump():
        pending = out.read()
        if pending:
            raw.sendall(pending)

    def feed():
        b = raw.recv(65536)
        if not b:
            inc.write_eof()
            raise EOFError("server closed")
        inc.write(b)
    try:
        try:
            obj.do_handshake()
            raise AssertionError("handshake done without the server")
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        raw.sendall(prefix + hello)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                feed()
        pump()
        r.version, r.cipher = obj.version(), obj.cipher()[0]
        obj.write(("hello %s\n" % tag).encode())
        pump()
        data = b""
        while True:
            try:
                b = obj.read(65536)
                if not b:           # close_notify
                    break
                data += b
            except ssl.SSLWantReadError:
                try:
                    feed()
                except EOFError:
                    break
            except ssl.SSLZeroReturnError:
                break
        r.answer = data.decode("latin-1")
    except (OSError, ssl.SSLError, EOFError) as e:
        r.error = repr(e)
    finally:
        raw.close()
    return r


def raw_exchange(port, src_ip, data, close=False, timeout=10.0):
    """Send data from src_ip, then (after closing our side if close) read
    until the server closes. Returns (bytes read or an error text, seconds
    it took, our address)."""
    s = connect_from(src_ip, port, timeout=timeout)
    addr = s.getsockname()
    t0 = time.monotonic()
    try:
        if data:
            s.sendall(data)
        if close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError as e:
        got = "error: %r" % e
    finally:
        s.close()
    return got, time.monotonic() - t0, addr


def access_for(tf, client, what):
    """The access line of client "IP:PORT" (waits for it)."""
    needle = "client=%s " % client

    def find():
        for l in tf.access_lines():
            if needle in l:
                return l
        return None
    return wait_for(find, 10, "access line of %s (%s)" % (client, what))


def reason(line):
    m = re.search(r'reason="([^"]*)"', line or "")
    return m.group(1) if m else None


def hp(addr):
    return ("[%s]:%d" if ":" in addr[0] else "%s:%d") % (addr[0], addr[1])


# ------------------------------------------------------------------ certificates

def der_of(pem_path):
    r = subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "der"],
                       capture_output=True, check=True)
    return r.stdout


def der_from_pem_bytes(pem):
    r = subprocess.run(["openssl", "x509", "-outform", "der"], input=pem,
                       capture_output=True)
    return r.stdout if r.returncode == 0 else None


def sig_alg_of(pem_path):
    out = openssl("x509", "-in", pem_path, "-noout", "-text")
    return re.search(r"Signature Algorithm: (\S+)", out).group(1)


# ------------------------------------------------------------------ 1: v2 TLVs

def sub(rec, t):
    vals = [v for st, v in rec["v2"]["ssl"]["sub"] if st == t]
    return vals[0].decode("latin-1") if len(vals) == 1 else (None if not vals else vals)


def tlv_of(rec, t):
    vals = [v for tt, v in rec["v2"]["tlvs"] if tt == t]
    return vals[0] if len(vals) == 1 else (None if not vals else vals)


def check_v2(tag, r, rec, tf, sni, alpn, flags, verify, cn, key_alg, sig_algs,
             cert_type=None, cert=None, extra_types=()):
    check(r.error is None and r.answer == "ok %s\n" % tag,
          "%s: served through the v2 backend (%s %r)" % (tag, r.error, r.answer))
    check(rec is not None and rec["kind"] == "v2", "%s: the backend got a v2 header: %r"
          % (tag, rec and rec["raw"][:40]))
    v2 = rec["v2"]
    check(v2["ver"] == 2 and v2["cmd"] == 1 and v2["fam"] == 0x11,
          "%s: version 2, PROXY, TCP over IPv4 (%d %d 0x%02x)"
          % (tag, v2["ver"], v2["cmd"], v2["fam"]))
    check(v2["src"] == tuple(r.addr) and v2["dst"] == ("127.0.0.1", tf.port),
          "%s: src = the client's socket %s, dst = tlsfront's listener: %r -> %r"
          % (tag, hp(r.addr), v2["src"], v2["dst"]))
    check(rec["first"] == ("hello %s" % tag).encode(),
          "%s: the client's bytes follow the header directly" % tag)
    types = sorted(t for t, _ in v2["tlvs"])
    want = sorted(([0x01] if alpn else []) + ([0x02] if sni else []) + [0x20] +
                  ([cert_type] if cert_type else [])
                  + list(extra_types))
    check([t for t in types if t not in (0x03, 0x04)] == want,
          "%s: TLV types %s (expected %s)" % (tag, ["0x%02x" % t for t in types],
                                               ["0x%02x" % t for t in want]))
    if v2["crc_ok"] is not None:
        check(v2["crc_ok"], "%s: the CRC32C TLV matches the header" % tag)
    check(tlv_of(rec, 0x01) == (alpn.encode() if alpn else None),
          "%s: ALPN TLV = %r (%r)" % (tag, alpn, tlv_of(rec, 0x01)))
    check(tlv_of(rec, 0x02) == (sni.encode() if sni else None),
          "%s: AUTHORITY TLV = the SNI %s (%r)"
          % (tag, sni, tlv_of(rec, 0x02)))
    s = v2["ssl"]
    check(s is not None and s["client"] == flags,
          "%s: SSL client flags = 0x%x (got 0x%x)" % (tag, flags, s["client"] if s else -1))
    check(s["verify"] == verify, "%s: SSL verify = %d (got %d)" % (tag, verify, s["verify"]))
    check(sub(rec, 0x21) == r.version, "%s: SSL VERSION = %s (%r)"
          % (tag, r.version, sub(rec, 0x21)))
    check(sub(rec, 0x22) == cn, "%s: SSL CN = %r (%r)" % (tag, cn, sub(rec, 0x22)))
    check(sub(rec, 0x23) == r.cipher, "%s: SSL CIPHER = the client's %s (%r)"
          % (tag, r.cipher, sub(rec, 0x23)))
    check(sub(rec, 0x24) in sig_algs, "%s: SSL SIG_ALG of tlsfront's certificate in %s (%r)"
          % (tag, sig_algs, sub(rec, 0x24)))
    check(sub(rec, 0x25) == key_alg, "%s: SSL KEY_ALG = %s (%r)"
          % (tag, key_alg, sub(rec, 0x25)))
    subtypes = [st for st, _ in s["sub"]]
    check(sorted(subtypes) == sorted([0x21, 0x23, 0x24, 0x25] + ([0x22] if cn else [])),
          "%s: SSL sub-TLVs, each once: %s" % (tag, ["0x%02x" % t for t in subtypes]))
    if cert_type is not None:
        got = tlv_of(rec, cert_type)
        if cert == "pem":
            text = got.decode("latin-1") if isinstance(got, bytes) else ""
            check(text.startswith("-----BEGIN CERTIFICATE-----"),
                  "%s: TLV 0x%02x holds a PEM certificate" % (tag, cert_type))
            return got
        check(got == cert, "%s: TLV 0x%02x is the client's certificate, DER, byte for "
              "byte (%d bytes vs %d)" % (tag, cert_type, len(got or b""), len(cert)))
    return None


def test_v2_tlvs(tf, pb, d, certs):
    cacrt, client_ca, alice, alice_der, rsa_pem, ec_pem, zoe = certs
    ec_sig = [sig_alg_of(ec_pem)]
    rsa_sig = ["RSA-SHA256", sig_alg_of(rsa_pem)]
    check(ec_sig == ["ecdsa-with-SHA256"], "set-up: the EC server certificate is "
          "signed with ecdsa-with-SHA256 (%s)" % ec_sig)

    ctx = client_context(alpn=["h2", "http/1.1"])
    r = tls_hello(tf.port, "a2.test", "a2", ctx)
    check(r.version == "TLSv1.3" and r.alpn == "h2",
          "a2: TLS 1.3 with ALPN h2 negotiated (%s %s %s)" % (r.version, r.alpn, r.error))
    check_v2("a2", r, pb.record("a2"), tf, "a2.test", "h2", PP2_CLIENT_SSL, 1, None,
             "EC256", ec_sig)

    r = tls_hello(tf.port, "a2.test", "a2-noalpn")
    check_v2("a2-noalpn", r, pb.record("a2-noalpn"), tf, "a2.test", None, PP2_CLIENT_SSL,
             1, None, "EC256", ec_sig)

    # no SNI: the default host, no AUTHORITY
    r = tls_hello(tf.port, None, "a2-nosni", ctx)
    check_v2("a2-nosni", r, pb.record("a2-nosni"), tf, None, "h2", PP2_CLIENT_SSL, 1, None,
             "EC256", ec_sig)

    r = tls_hello(tf.port, "rsa.test", "rsa",
                  client_context(alpn=["http/1.1"], maxv=ssl.TLSVersion.TLSv1_2))
    check(r.version == "TLSv1.2", "rsa: TLS 1.2 negotiated (%s)" % r.version)
    check_v2("rsa", r, pb.record("rsa"), tf, "rsa.test", None, PP2_CLIENT_SSL, 1, None,
             "RSA2048", rsa_sig)

    def cctx(maxv=None):
        c = client_context(maxv=maxv)
        c.load_cert_chain(alice[0], alice[1])
        return c

    r = tls_hello(tf.port, "der.test", "der", cctx())
    check_v2("der", r, pb.record("der"), tf, "der.test", None,
             PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 0, "alice",
             "EC256", ec_sig, cert_type=0xE0, cert=alice_der)

    r = tls_hello(tf.port, "pem.test", "pem", cctx())
    pem = check_v2("pem", r, pb.record("pem"), tf, "pem.test", None,
                   PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 0, "alice",
                   "EC256", ec_sig, cert_type=0xE5, cert="pem")
    check(der_from_pem_bytes(pem) == alice_der,
          "pem: `openssl x509` parses the PEM TLV: the client's certificate")
    check(tlv_of(pb.record("pem"), 0xE0) is None, "pem: nothing in the default type 0xE0")

    r = tls_hello(tf.port, "opt.test", "opt-nocert")
    check_v2("opt-nocert", r, pb.record("opt-nocert"), tf, "opt.test", None,
             PP2_CLIENT_SSL, 1, None, "EC256", ec_sig)

    # TLS 1.2 resumption with a client certificate: the session has one, this
    # connection did not send it
    c12 = cctx(maxv=ssl.TLSVersion.TLSv1_2)
    r1 = tls_hello(tf.port, "der.test", "der12", c12, unwrap=True)
    check_v2("der12", r1, pb.record("der12"), tf, "der.test", None,
             PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 0, "alice",
             "EC256", ec_sig, cert_type=0xE0, cert=alice_der)
    r2 = tls_hello(tf.port, "der.test", "der12-resumed", c12, session=r1.session,
                   unwrap=True)
    check(r2.reused, "der12-resumed: the TLS 1.2 session is resumed (%s)" % r2.error)
    check_v2("der12-resumed", r2, pb.record("der12-resumed"), tf, "der.test", None,
             PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS, 0, "alice", "EC256", ec_sig,
             cert_type=0xE0, cert=alice_der)

    # the same in TLS 1.3, with a ticket
    c13 = cctx()
    r1 = tls_hello(tf.port, "der.test", "der13", c13, unwrap=True)
    check(r1.answer == "ok der13\n" and r1.session is not None and
          r1.session.has_ticket, "der13: TLS 1.3 with a client cert, a ticket (%s)" % r1.error)
    r2 = tls_hello(tf.port, "der.test", "der13-resumed", c13, session=r1.session)
    check(r2.reused, "der13-resumed: the TLS 1.3 session is resumed (%s)" % r2.error)
    check_v2("der13-resumed", r2, pb.record("der13-resumed"), tf, "der.test", None,
             PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS, 0, "alice", "EC256", ec_sig,
             cert_type=0xE0, cert=alice_der)

def test_big_cert(tf, pb, big):
    """A client certificate whose PEM form (over 64 KiB) cannot fit a TLV:
    the PEM host leaves it out (and warns) but still sends the header; the
    DER form (under 64 KiB) is sent whole."""
    crt, chain, key = big
    der = der_of(crt)
    check(len(der) < 60000 and len(open(crt).read()) > 66000,
          "set-up: a client certificate of %d bytes DER, %d PEM" % (len(der),
                                                                     len(open(crt).read())))
    ctx = client_context()
    ctx.load_cert_chain(chain, key)
    r = tls_hello(tf.port, "der.test", "big-der", ctx)
    rec = pb.record("big-der")
    check(r.answer == "ok big-der\n" and rec and tlv_of(rec, 0xE0) == der and
          sub(rec, 0x22) == "bigcn",
          "big-der: the %d-byte DER certificate is sent whole (%s)" % (len(der), r.error))
    r = tls_hello(tf.port, "pem.test", "big-pem", ctx)
    rec = pb.record("big-pem")
    check(r.answer == "ok big-pem\n" and rec and rec["kind"] == "v2" and
          sub(rec, 0x22) == "bigcn" and tlv_of(rec, 0xE5) is None,
          "big-pem: the header is sent, without the too-large PEM TLV (%s %r)"
          % (r.error, rec and [(t, len(v)) for t, v in rec["v2"]["tlvs"]]))
    check("client certificate too large" in tf.log(), "... and a warning is logged")


def test_utf8_cn(tf, pb, zoe):
    """A CN in UTF-8 (the spec: "the Common Name field ... using UTF-8
    encoding"), not the access log's printable-ASCII rendering."""
    zcn = "Zo\u00eb \u00dcn\u00efc\u00f8d\u00e9"
    subj = openssl("x509", "-in", zoe[0], "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus")
    check(zcn in subj, "set-up: the client certificate's CN is %r: %r" % (zcn, subj))
    zctx = client_context()
    zctx.load_cert_chain(zoe[0], zoe[1])
    r = tls_hello(tf.port, "der.test", "utf8cn", zctx)
    rec = pb.record("utf8cn")
    check(r.answer == "ok utf8cn\n" and rec is not None and rec["kind"] == "v2",
          "utf8cn: served with a v2 header (%s)" % r.error)
    cns = [v for st, v in rec["v2"]["ssl"]["sub"] if st == 0x22]
    check(cns == [zcn.encode("utf-8")], "utf8cn: SSL CN sub-TLV is the CN in UTF-8, %r "
          "(got %r)" % (zcn.encode("utf-8"), cns))


# ------------------------------------------------------------------ 2: v1 and off

def test_v1_and_off(tf, pb):
    r = tls_hello(tf.port, "v1.test", "v1")
    rec = pb.record("v1")
    check(r.error is None and r.answer == "ok v1\n", "v1: served (%s %r)" % (r.error, r.answer))
    want = "PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (r.addr[0], r.addr[1], tf.port)
    check(rec is not None and rec["raw"] == want.encode() and rec["first"] == b"hello v1",
          "v1: the backend reads exactly %r then the client's bytes (%r)"
          % (want, rec and rec["raw"]))
    r = tls_hello(tf.port, "off.test", "off")
    rec = pb.record("off")
    check(r.answer == "ok off\n" and rec is not None and rec["kind"] == "none" and
          rec["first"] == b"hello off",
          "proxy_protocol = off (overriding [defaults] v2): no header (%r)" % (rec,))


# ------------------------------------------------------------------ 3: nginx

def nginx_pp(d, port):
    """nginx reading the PROXY protocol; returns its access log path (None
    if nginx is missing and TLSFRONT_ALLOW_MISSING_PEERS=1)."""
    return start_nginx(d, port, "hello from nginx\n", listen_extra="proxy_protocol",
                       log_format="pp=$proxy_protocol_addr:$proxy_protocol_port "
                       "ppdst=$proxy_protocol_server_addr:$proxy_protocol_server_port "
                       "peer=$remote_addr \"$request\"", part="the nginx part")[1]


def https_get_from(port, sni, path, src_ip=CLIENT_IP):
    raw = connect_from(src_ip, port)
    addr = raw.getsockname()
    s = client_context().wrap_socket(raw, server_hostname=sni)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, sni)).encode())
        data = recv_all(s)
    finally:
        s.close()
    return addr, data.partition(b"\r\n\r\n")[2]


def test_nginx(tf, access_log):
    if access_log is None:      # nginx is missing: tf_run.missing() said so
        return
    for host in ("nv1", "nv2"):
        path = "/%s-%d" % (host, time.monotonic_ns())
        addr, body = https_get_from(tf.port, host + ".test", path)
        check(body == b"hello from nginx\n",
              "%s: nginx behind proxy_protocol = %s answers (%r)" % (host, host[1:], body))

        def logged():
            with open(access_log) as f:
                return [l for l in f if path in l]
        lines = wait_for(logged, 10, "nginx to log %s" % path)
        want = "pp=%s ppdst=127.0.0.1:%d peer=127.0.0.1 " % (hp(addr), tf.port)
        check(lines[0].startswith(want),
              "%s: nginx logs the original client (expected %r): %r" % (host, want, lines[0]))


# ------------------------------------------------------------------ 4: haproxy

def start_haproxy(exe, d, tf_port, p1, p2, p3, pb_port):
    """HAProxy in TCP mode: p1 and p2 in front of tlsfront (send-proxy,
    send-proxy-v2 with a CRC32C), from TRUSTED_IP; p3 behind it (accept-proxy,
    logging what the header said, on to the test backend without a header).
    Returns the path of its log (its stdout)."""
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""
global
    maxconn 200
    log stdout format raw local0
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fv1
    bind 127.0.0.1:%(p1)d
    default_backend bv1
backend bv1
    server s1 127.0.0.1:%(tf)d send-proxy source %(src)s
frontend fv2
    bind 127.0.0.1:%(p2)d
    default_backend bv2
backend bv2
    server s1 127.0.0.1:%(tf)d send-proxy-v2 proxy-v2-options crc32c source %(src)s
frontend fin
    bind 127.0.0.1:%(p3)d accept-proxy
    log-format "PPLOG src=%%[src]:%%[src_port] dst=%%[dst]:%%[dst_port] auth=%%[fc_pp_authority]"
    default_backend bpb
backend bpb
    server s1 127.0.0.1:%(pb)d
""" % {"p1": p1, "p2": p2, "p3": p3, "tf": tf_port, "src": TRUSTED_IP, "pb": pb_port})
    log = os.path.join(d, "haproxy.log")
    logf = open(log, "wb")
    p = subprocess.Popen([exe, "-db", "-f", cfg], stdout=logf,
                         stderr=subprocess.STDOUT)
    cleanup(lambda: (p.kill(), p.wait()))
    for port in (p1, p2, p3):
        wait_listening(port, proc=p)
    return log


def test_haproxy(tf, pb, d, p1, p2, p3):
    exe = program("haproxy", "haproxy", part="the haproxy part")
    if exe is None:
        return
    log = start_haproxy(exe, d, tf.port, p1, p2, p3, pb.port)
    for kind, hport in (("send-proxy", p1), ("send-proxy-v2", p2)):
        tag = "hap-" + kind
        r = tls_hello(hport, "a2.test", tag)
        check(r.error is None and r.answer == "ok %s\n" % tag,
              "haproxy %s: a client from %s is served through tlsfront (%s %r)"
              % (kind, CLIENT_IP, r.error, r.answer))
        line = access_for(tf, hp(r.addr), tag)
        check(" host=a2 " in line and reason(line) == "closed",
              "haproxy %s: tlsfront logs client=%s (not %s): %s"
              % (kind, hp(r.addr), TRUSTED_IP, line))
        rec = pb.record(tag)
        check(rec and rec["v2"]["src"] == tuple(r.addr) and
              rec["v2"]["dst"] == ("127.0.0.1", hport),
              "haproxy %s: the v2 header tlsfront sends on names the client and the "
              "address it connected to (haproxy's): %r -> %r"
              % (kind, rec and rec["v2"]["src"], rec and rec["v2"]["dst"]))

    # HAProxy behind tlsfront reads our header (a second decoder, a real one)
    for host in ("hx1", "hx2"):
        tag = "behind-" + host
        r = tls_hello(tf.port, host + ".test", tag)
        rec = pb.record(tag)
        check(r.answer == "ok %s\n" % tag and rec and rec["kind"] == "none",
              "%s: through tlsfront and haproxy (accept-proxy) to the backend (%s %r)"
              % (host, r.error, rec and rec["raw"]))
        want = "PPLOG src=%s dst=127.0.0.1:%d auth=%s" % (
            hp(r.addr), tf.port, "hx2.test" if host == "hx2" else "-")

        def logged():
            with open(log, errors="replace") as f:
                return [l.strip() for l in f if "PPLOG src=%s " % hp(r.addr) in l]
        lines = wait_for(logged, 10, "haproxy to log %s" % hp(r.addr))
        check(lines[0] == want, "%s: haproxy decodes tlsfront's %s header: %r (want %r)"
              % (host, host[1:].replace("x", "v"), lines[0], want))


# ------------------------------------------------------------------ 5: accept_proxy

def test_accept(tf, pb):
    # a listed source without a header: closed
    r = tls_hello(tf.port, "a2.test", "nohdr", src_ip=TRUSTED_IP)
    check(r.error is not None and r.error.startswith("handshake"),
          "listed source, no header: the TLS handshake fails (%s)" % r.error)
    line = access_for(tf, hp(r.addr), "nohdr")
    check(reason(line) == "PROXY header: invalid", "... logged as 'PROXY header: invalid': "
          "%s" % line)
    # 127.0.0.5 is in 127.0.0.4/31; 127.0.0.6 is not
    r = tls_hello(tf.port, "a2.test", "cidr-in", src_ip="127.0.0.5")
    line = access_for(tf, hp(r.addr), "cidr-in")
    check(r.error is not None and reason(line) == "PROXY header: invalid",
          "127.0.0.5 (in 127.0.0.4/31) must send a header: %s" % line)
    r = tls_hello(tf.port, "a2.test", "cidr-out", src_ip="127.0.0.6")
    check(r.answer == "ok cidr-out\n", "127.0.0.6 (outside 127.0.0.4/31) is plain TLS: %s %r"
          % (r.error, r.answer))

    # half a header, then our FIN
    got, _, addr = raw_exchange(tf.port, TRUSTED_IP, b"PROXY TCP4 192.0.2.1 ", close=True)
    line = access_for(tf, hp(addr), "half+close")
    check(got == b"" and reason(line) == "PROXY header: client closed",
          "half a header then FIN: closed, 'PROXY header: client closed': %r %s" % (got, line))

    # v1 in 1-byte writes, then a real handshake; the v2 host sends it on
    hdr = b"PROXY TCP4 192.0.2.7 198.51.100.1 40007 8443\r\n"
    r = tls_hello(tf.port, "a2.test", "v1split", src_ip=TRUSTED_IP, prefix=hdr, split=True)
    rec = pb.record("v1split")
    check(r.answer == "ok v1split\n", "v1 header in %d one-byte writes, then TLS: served "
          "(%s)" % (len(hdr), r.error))
    line = access_for(tf, "192.0.2.7:40007", "v1split")
    check(" host=a2 " in line, "... access log: client=192.0.2.7:40007: %s" % line)
    check(rec and rec["v2"]["src"] == ("192.0.2.7", 40007) and
          rec["v2"]["dst"] == ("198.51.100.1", 8443),
          "... PROXY header in -> PROXY header out: the backend sees 192.0.2.7:40007 -> "
          "198.51.100.1:8443 (%r)" % ((rec and (rec["v2"]["src"], rec["v2"]["dst"])),))

    # v2 in the same segment as the ClientHello, with TLVs of its own (NOOP, a
    # bogus AUTHORITY): the decoder must take exactly the header
    hdr = v2_tcp4(("192.0.2.9", 40009), ("198.51.100.2", 443),
                  tlv(0x04, b"\0" * 5) + tlv(0x02, b"evil.test"))
    r = bio_hello(tf.port, "a2.test", "v2seg", hdr)
    rec = pb.record("v2seg")
    check(r.answer == "ok v2seg\n", "v2 header + ClientHello in one segment: served (%s %r)"
          % (r.error, r.answer))
    line = access_for(tf, "192.0.2.9:40009", "v2seg")
    check(" sni=a2.test " in line, "... access log: client=192.0.2.9:40009: %s" % line)
    check(rec and rec["v2"]["src"] == ("192.0.2.9", 40009) and
          rec["v2"]["dst"] == ("198.51.100.2", 443) and tlv_of(rec, 0x02) == b"a2.test",
          "... the backend sees the header's addresses, and AUTHORITY = the real SNI "
          "(%r %r)" % (rec and rec["v2"]["src"], rec and tlv_of(rec, 0x02)))

    # the same, but the first 20 bytes of the header read before the rest
    # arrives with the ClientHello: the decoder resumes mid-header
    hdr = v2_tcp4(("192.0.2.15", 40015), ("198.51.100.8", 443), tlv(0x04, b"\0" * 7))
    r = bio_hello(tf.port, "a2.test", "v2split", hdr[20:], first=hdr[:20])
    rec = pb.record("v2split")
    check(r.answer == "ok v2split\n" and rec and rec["v2"]["src"] == ("192.0.2.15", 40015),
          "v2 header: 20 bytes read, then the rest with the ClientHello: served as "
          "192.0.2.15:40015 (%s %r)" % (r.error, rec and rec["v2"]["src"]))
    hdr = b"PROXY TCP4 192.0.2.16 198.51.100.9 40016 443\r\n"
    r = bio_hello(tf.port, "a2.test", "v1split2", hdr[30:], first=hdr[:30])
    rec = pb.record("v1split2")
    check(r.answer == "ok v1split2\n" and rec and rec["v2"]["src"] == ("192.0.2.16", 40016),
          "v1 header: 30 bytes read, then the rest with the ClientHello: served as "
          "192.0.2.16:40016 (%s %r)" % (r.error, rec and rec["v2"]["src"]))

    # v1 in the same segment as the ClientHello
    hdr = b"PROXY TCP4 192.0.2.10 198.51.100.3 40010 443\r\n"
    r = bio_hello(tf.port, "v1.test", "v1seg", hdr)
    rec = pb.record("v1seg")
    check(r.answer == "ok v1seg\n" and rec and
          rec["raw"] == b"PROXY TCP4 192.0.2.10 198.51.100.3 40010 443\r\n",
          "v1 header + ClientHello in one segment: the v1 host sends on the header's "
          "addresses (%s %r)" % (r.error, rec and rec["raw"]))

    # v2 TCP6 in; a v1 host sends a TCP6 line on
    hdr = v2_tcp6(("2001:db8::7", 5555), ("2001:db8::1", 443))
    r = bio_hello(tf.port, "v1.test", "v2tcp6", hdr)
    rec = pb.record("v2tcp6")
    check(r.answer == "ok v2tcp6\n", "v2 TCP6 header: served (%s)" % r.error)
    line = access_for(tf, "[2001:db8::7]:5555", "v2tcp6")
    check(rec and rec["raw"] == b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\n",
          "... sent on as PROXY TCP6 2001:db8::7 2001:db8::1 5555 443 (%r)"
          % (rec and rec["raw"]))

    # LOCAL (v2), UNSPEC (v2 PROXY) and UNKNOWN (v1): the real addresses
    for tag, hdr in (("local", v2_header(0, 0x00)),
                     ("local-tlv", v2_header(0, 0x11, b"\x01" * 12, tlv(0x04, b"x"))),
                     ("unspec", v2_header(1, 0x00)),
                     ("unknown", b"PROXY UNKNOWN\r\n"),
                     ("unknown-addrs", b"PROXY UNKNOWN 10.9.9.9 10.8.8.8 1 2\r\n")):
        r = bio_hello(tf.port, "a2.test", tag, hdr)
        rec = pb.record(tag)
        check(r.answer == "ok %s\n" % tag, "%s header: served (%s)" % (tag, r.error))
        line = access_for(tf, hp(r.addr), tag)
        check(" host=a2 " in line, "%s: the access log keeps the real client %s"
              % (tag, hp(r.addr)))
        check(rec and rec["v2"]["src"] == tuple(r.addr) and
              rec["v2"]["dst"] == ("127.0.0.1", tf.port),
              "%s: the header sent on has the real addresses (%r)"
              % (tag, rec and (rec["v2"]["src"], rec["v2"]["dst"])))

    # CRC32C: a good one is accepted, a wrong one refused
    hdr = v2_tcp4(("192.0.2.12", 40012), ("198.51.100.5", 443), tlv(0x03, b"\0" * 4))
    good = hdr[:-4] + struct.pack("!I", crc32c(hdr))
    r = bio_hello(tf.port, "a2.test", "crc-good", good)
    check(r.answer == "ok crc-good\n", "v2 header with a correct CRC32C: served (%s)" % r.error)
    line = access_for(tf, "192.0.2.12:40012", "crc-good")
    bad = good[:-1] + bytes([good[-1] ^ 1])
    r = bio_hello(tf.port, "a2.test", "crc-bad", bad)
    line = access_for(tf, hp(r.addr), "crc-bad")
    check(r.error is not None and reason(line) == "PROXY header: invalid",
          "v2 header with a wrong CRC32C: 'PROXY header: invalid': %s" % line)

    # v2 UNIX stream addresses: logged as such, sent on in v2 as UNIX, in v1 as UNKNOWN
    addrs = b"/run/lb.sock".ljust(108, b"\0") + b"/run/tlsfront.sock".ljust(108, b"\0")
    r = bio_hello(tf.port, "a2.test", "unix-v2", v2_header(1, 0x31, addrs))
    rec = pb.record("unix-v2")
    check(r.answer == "ok unix-v2\n", "v2 UNIX header: served (%s %r)" % (r.error, r.answer))
    line = access_for(tf, "unix:/run/lb.sock", "unix-v2")
    check(rec and rec["v2"]["fam"] == 0x31 and rec["v2"]["src"] == "/run/lb.sock" and
          rec["v2"]["dst"] == "/run/tlsfront.sock",
          "... sent on in v2 as UNIX stream /run/lb.sock -> /run/tlsfront.sock (%r)"
          % ((rec and (rec["v2"]["fam"], rec["v2"]["src"], rec["v2"]["dst"])),))
    r = bio_hello(tf.port, "v1.test", "unix-v1", v2_header(1, 0x31, addrs))
    rec = pb.record("unix-v1")
    check(r.answer == "ok unix-v1\n" and rec and rec["raw"] == b"PROXY UNKNOWN\r\n",
          "... and in v1 as PROXY UNKNOWN (%s %r)" % (r.error, rec and rec["raw"]))

    # IPv6: ::1 is listed too
    r = tls_hello(tf.port, "a2.test", "v6-nohdr", src_ip="::1", host="::1")
    line = access_for(tf, hp(r.addr), "v6-nohdr")
    check(r.error is not None and reason(line) == "PROXY header: invalid",
          "::1 (listed) without a header: 'PROXY header: invalid': %s" % line)
    r = bio_hello(tf.port, "a2.test", "v6-local", v2_header(0, 0), src_ip="::1", host="::1")
    rec = pb.record("v6-local")
    check(r.answer == "ok v6-local\n" and rec and rec["v2"]["fam"] == 0x21 and
          rec["v2"]["src"] == tuple(r.addr) and rec["v2"]["dst"] == ("::1", tf.port),
          "::1 with a LOCAL header: served, sent on as TCP6 %s -> [::1]:%d (%r)"
          % (hp(r.addr), tf.port, rec and (rec["v2"]["fam"], rec["v2"]["src"])))
    r = bio_hello(tf.port, "a2.test", "v6-tcp4", v2_tcp4(("192.0.2.13", 40013),
                                                         ("198.51.100.6", 443)),
                  src_ip="::1", host="::1")
    line = access_for(tf, "192.0.2.13:40013", "v6-tcp4")
    check(r.answer == "ok v6-tcp4\n", "::1 with a TCP4 header: served, logged as "
          "192.0.2.13:40013 (%s)" % r.error)

    # the largest header accepted (16 + 4096 bytes), in the segment of the
    # ClientHello; one byte more is refused
    addrs = socket.inet_aton("192.0.2.14") + socket.inet_aton("198.51.100.7") + \
        struct.pack("!HH", 40014, 443)
    pad = 4096 - len(addrs) - 3
    r = bio_hello(tf.port, "a2.test", "max", v2_header(1, 0x11, addrs, tlv(0x04, b"\0" * pad)))
    check(r.answer == "ok max\n", "a v2 header of 4112 bytes, then the ClientHello: served "
          "(%s)" % r.error)
    access_for(tf, "192.0.2.14:40014", "max")
    r = bio_hello(tf.port, "a2.test", "max+1",
                  v2_header(1, 0x11, addrs, tlv(0x04, b"\0" * (pad + 1))))
    line = access_for(tf, hp(r.addr), "max+1")
    check(r.error is not None and reason(line) == "PROXY header: invalid",
          "a v2 header of 4113 bytes: 'PROXY header: invalid': %s" % line)

    # a header from a source that is not listed is bad TLS
    hdr = b"PROXY TCP4 192.0.2.11 198.51.100.4 40011 443\r\n"
    r = bio_hello(tf.port, "a2.test", "unlisted", hdr, src_ip=CLIENT_IP)
    check(r.error is not None and pb.record("unlisted") is None,
          "a header from unlisted %s: refused (%s)" % (CLIENT_IP, r.error))
    line = access_for(tf, hp(r.addr), "unlisted")
    check((reason(line) or "").startswith("handshake failed"),
          "... as a failed handshake, under the real address: %s" % line)
    check("192.0.2.11" not in tf.log(), "... the header was never parsed")

    # a bad header from a listed source
    for tag, hdr in (("v1-bad", b"PROXY TCP4 192.0.2.300 1.2.3.4 1 2\r\n"),
                     ("v2-badver", SIG + b"\x31\x11\x00\x0c" + b"\0" * 12)):
        r = bio_hello(tf.port, "a2.test", tag, hdr)
        line = access_for(tf, hp(r.addr), tag)
        check(r.error is not None and reason(line) == "PROXY header: invalid",
              "%s: closed as 'PROXY header: invalid': %s" % (tag, line))


def test_timeout(d, pb, ca_pair):
    tf = Tlsfront(os.path.join(d, "to"), {
        "t": {"cert": ca_pair[0], "key": ca_pair[1],
              "backend": "127.0.0.1:%d" % pb.port}},
        global_extra={"accept_proxy": TRUSTED_IP}, defaults={"handshake_timeout": "1s"})
    results = {}

    def one(tag, data):
        results[tag] = raw_exchange(tf.port, TRUSTED_IP, data)
    ts = [threading.Thread(target=one, args=a) for a in
          (("v1", b"PROXY TCP4 192.0.2.1 "), ("v2", SIG + b"\x21\x11\x00\x0c\xc0\x00"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for tag, (got, secs, addr) in sorted(results.items()):
        line = access_for(tf, hp(addr), "timeout " + tag)
        check(got == b"" and reason(line) == "PROXY header timeout" and secs >= 0.9,
              "half a %s header, then silence: closed after %.2fs (handshake_timeout = 1s) "
              "as 'PROXY header timeout': %s" % (tag, secs, line))


# ------------------------------------------------------------------ 6: -t

def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return lines


def test_check(d, ca_pair):
    root = os.path.join(d, "bad")
    main = os.path.join(root, "tlsfront.ini")
    write(main, ["[global]", "listen = 127.0.0.1:%d" % free_port(), "hosts = hosts.d/*.ini",
                 "accept_proxy = 127.0.0.2 10.0.0.1/8", "", "[defaults]",
                 "proxy_client_cert_tlv = 0xE1"])
    base = ["cert = %s" % ca_pair[0], "key = %s" % ca_pair[1], "backend = 127.0.0.1:9"]
    files = {}
    for name, extra in (("certv1", ["proxy_protocol = v1", "proxy_client_cert = der"]),
                        ("certoff", ["proxy_client_cert = pem"]),
                        ("tlvlow", ["proxy_protocol = v2", "proxy_client_cert = der",
                                    "proxy_client_cert_tlv = 0x10"]),
                        ("tlvhigh", ["proxy_protocol = v2", "proxy_client_cert_tlv = 0xF0"]),
                        ("v3", ["proxy_protocol = v3"]),
                        ("certfmt", ["proxy_protocol = v2", "proxy_client_cert = base64"]),
                        ("good", ["proxy_protocol = v2", "proxy_client_cert = pem",
                                  "proxy_client_cert_tlv = 0xEF"])):
        path = os.path.join(root, "hosts.d", name + ".ini")
        files[name] = (path, write(path, ["[host %s]" % name] + base + extra))
    r = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True,
                       timeout=30)
    out = r.stderr
    check(r.returncode == 1, "-t with bad PROXY keys exits 1 (%d)" % r.returncode)

    def at(path, lines, key, words, what):
        n = [i + 1 for i, l in enumerate(lines) if l.startswith(key + " ")][0]
        prefix = "%s:%d: " % (path, n)
        msgs = [l for l in out.splitlines() if l.startswith(prefix)]
        check(any(all(w.lower() in m.lower() for w in words) for m in msgs),
              "-t: %s at %s:%d (%s): %r" % (what, os.path.basename(path), n, words, msgs))

    mlines = open(main).read().splitlines()
    at(main, mlines, "accept_proxy", ["accept_proxy", "10.0.0.1/8"], "host bits in a CIDR")
    at(*files["certv1"], "proxy_client_cert", ["proxy_client_cert", "v2"],
       "proxy_client_cert with proxy_protocol = v1")
    at(*files["certoff"], "proxy_client_cert", ["proxy_client_cert", "v2"],
       "proxy_client_cert with proxy_protocol off")
    at(*files["tlvlow"], "proxy_client_cert_tlv", ["proxy_client_cert_tlv", "0x10"],
       "proxy_client_cert_tlv = 0x10")
    at(*files["tlvhigh"], "proxy_client_cert_tlv", ["proxy_client_cert_tlv", "0xF0"],
       "proxy_client_cert_tlv = 0xF0")
    at(*files["v3"], "proxy_protocol", ["proxy_protocol", "v3"], "proxy_protocol = v3")
    at(*files["certfmt"], "proxy_client_cert", ["proxy_client_cert", "base64"],
       "proxy_client_cert = base64")
    good = [l for l in out.splitlines() if "good.ini" in l]
    check(not good, "-t: no error for the good host (v2, pem, 0xEF): %r" % good)
    check("configuration has 7 errors" in out, "-t: 7 errors in all: %r" % out[-200:])

    # a second key in [global] would only be a duplicate: a run of its own
    main2 = os.path.join(root, "nonsense.ini")
    write(main2, ["[global]", "listen = 127.0.0.1:%d" % free_port(),
                  "hosts = hosts.d/good.ini", "accept_proxy = ::1 nonsense"])
    r = subprocess.run([TLSFRONT, "-t", "-c", main2], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 1 and r.stderr.startswith("%s:4: " % main2) and
          "nonsense" in r.stderr.splitlines()[0],
          "-t: accept_proxy = nonsense at its line: %r" % r.stderr)


# ------------------------------------------------------------------ main

def main():
    d = tmpdir()
    ca = CA(d)
    ec = ca.host_cert("ec", ["a2.test"])
    rsa = self_signed(d, "rsa", ["rsa.test"], rsa=True)
    cca = CA(d, "Client CA")
    acrt, akey = cca.issue("alice", "alice")
    sans = ["DNS:n%05d.example-long-name.test" % i for i in range(1700)]
    bcrt, bkey = cca.issue("big", "bigcn", sans)
    big = (bcrt, cca.chain_file(bcrt), bkey)
    zoe = cca.issue("zoe", "Zo\u00eb \u00dcn\u00efc\u00f8d\u00e9")    # a UTF8String CN
    alice = (cca.chain_file(acrt), akey)
    alice_der = der_of(acrt)

    pb = ProxyBackend()
    port = free_port()
    nginx_port = free_port()
    nginx_log = nginx_pp(d, nginx_port)
    hp1, hp2, hp3 = free_port(), free_port(), free_port()
    back = "127.0.0.1:%d" % pb.port
    crt = {"cert": ec[0], "key": ec[1]}
    mtls = {"client_verify": "required", "client_ca": cca.crt}
    tf = Tlsfront(d, {
        "a2": dict(crt, backend=back, alpn="h2 http/1.1", default="yes"),
        "rsa": {"cert": rsa[0], "key": rsa[1], "backend": back},
        "der": dict(crt, backend=back, names="der.test", proxy_client_cert="der", **mtls),
        "pem": dict(crt, backend=back, names="pem.test", proxy_client_cert="pem",
                    proxy_client_cert_tlv="0xE5", **mtls),
        "opt": dict(crt, backend=back, names="opt.test", proxy_client_cert="der",
                    client_verify="optional", client_ca=cca.crt),
        "v1": dict(crt, backend=back, names="v1.test", proxy_protocol="v1"),
        "off": dict(crt, backend=back, names="off.test", proxy_protocol="off"),
        "nv1": dict(crt, backend="127.0.0.1:%d" % nginx_port, names="nv1.test",
                    proxy_protocol="v1"),
        "nv2": dict(crt, backend="127.0.0.1:%d" % nginx_port, names="nv2.test"),
        "hx1": dict(crt, backend="127.0.0.1:%d" % hp3, names="hx1.test", proxy_protocol="v1"),
        "hx2": dict(crt, backend="127.0.0.1:%d" % hp3, names="hx2.test"),
    }, global_extra={"accept_proxy": "%s 127.0.0.4/31 ::1" % TRUSTED_IP,
                     "listen": "127.0.0.1:%(p)d [::1]:%(p)d" % {"p": port}}, port=port,
        defaults={"proxy_protocol": "v2"})

    test_v2_tlvs(tf, pb, d, (ca.crt, cca.crt, alice, alice_der, rsa[0], ec[0], zoe))
    test_v1_and_off(tf, pb)
    test_nginx(tf, nginx_log)
    test_haproxy(tf, pb, d, hp1, hp2, hp3)
    test_accept(tf, pb)
    test_timeout(d, pb, ec)
    test_check(d, ec)
    test_big_cert(tf, pb, big)
    check(not pb.errors, "the test backend saw no malformed input: %r" % pb.errors)
    test_utf8_cn(tf, pb, zoe)
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
