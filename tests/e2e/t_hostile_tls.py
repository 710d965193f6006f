"""Hostile TLS input (issue #7). Bytes made by tlsforge.py, sent to one
tlsfront with one worker (handshake_timeout 3s) on two listeners: port S,
where an unknown or missing server name is refused (no default host), and
port D, whose only host is its default host.

The batch, sent three times (every connection of a pass open at once, each
from its own 127/8 address so that its access line is known): random bytes
(4 seeds x 9 sizes), random ClientHello bodies, a valid ClientHello with
bytes changed at random places; a plain HTTP request; SSLv2-format hellos;
SSLv3 and TLS 1.0 hellos; a record length of 0xFFFF and of 2^14 + 1; a
valid ClientHello in 1-byte TCP segments and in 1-byte records; empty
records, warning alerts, ChangeCipherSpec and application data before the
hello, 100,000 ChangeCipherSpec after it; a hello cut short; SNI of length
0, 254, 255, 256 and 16 KiB, with a NUL, two names, name_type 1, an IP
literal, UTF-8, on S and on D; ALPN lists that are empty, hold an empty
name, lie about their length, match nothing (also 64 KiB of names, the
ClientHello spanning 4 records), or match only at the end of 64 KiB. Each
connection must get its answer, and one access line: the exact alert and
logged reason where they are known, a ServerHello where the hello is
valid, otherwise an alert or a close; never nothing past handshake_timeout.
After each pass: the worker is the same process, its descriptors are back
to their count before, and a good client is served.

Then, connections that get past the handshake: TLS 1.2 renegotiation
(openssl s_client's R command, with and without -legacy_renegotiation, and
libssl's SSL_renegotiate through ctypes) is refused with the
no_renegotiation warning and no second ServerHello; 50,000 renegotiation
ClientHellos (encrypted by tlsforge's Tls12Writer) are each refused with an
alert, the request after them is relayed, and another client is served
meanwhile. TLS 1.3 KeyUpdates: 2,000 asking for an answer, read as they
come, then a request; 100,000 in one burst followed by a request, while
another client must be served before the worker is through the flood;
30,000 asking for an answer in one burst, every answer read back. (Before
the fix in tls.c ctx_new_common, one SSL_read went through a whole flood of
KeyUpdates or renegotiation ClientHellos while the worker's other clients
waited.) Client certificate chains deeper than client_verify_depth (2) are
refused with unknown_ca, chains within it are served. The worker's RSS is
checked over two more passes of the batch and from there to the end."""
import os
import random
import re
import socket
import ssl
import subprocess
import threading
import time

import tlsforge as F
from tf_clients import client_context, recv_all
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import Tlsfront, rss_kb
from tf_run import (check, check_eventually, cleanup, free_port, run, tmpdir, wait_for,
                    wait_stable)

HS_TIMEOUT = 3.0
# An answer must come within handshake_timeout; the rest is slack for a
# loaded machine, not a performance bound.
ANSWER_WITHIN = HS_TIMEOUT + 12.0
# Generous bounds on the worker's RSS growth (about 2 MiB in all is usual):
# over two passes of the batch, a leak of 20 KiB per connection would fail;
# floods included, from the end of the first pass to the end.
RSS_BATCH_GROWTH_KB = 4 * 1024
RSS_GROWTH_KB = 16 * 1024


def get(port, sni, path, ctx=None):
    """GET over TLS with Python's ssl; returns (body or the exception, local port)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    lport = raw.getsockname()[1]
    try:
        s = (ctx or client_context()).wrap_socket(raw, server_hostname=sni)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, sni)).encode())
        data = recv_all(s)
        s.close()
        return data.partition(b"\r\n\r\n")[2], lport
    except (OSError, ssl.SSLError) as e:
        raw.close()
        return e, lport


def alert_of(exc):
    """The alert name in a Python ssl error ("unknown_ca"), or None."""
    m = re.search(r"ALERT_([A-Z_]+)\]", str(exc))
    return m.group(1).lower() if m else None


# ------------------------------------------------------------------ the batch

class Case:
    """One hostile input. expect: "server_hello"; an alert name (that alert,
    then a close); "eof" (a close without a byte); "refused" (an alert, EOF
    or a reset, then closed); "answered" (refused, or a ServerHello).
    reason: a text the reason of the connection's access line must hold;
    logs: a text its line must hold."""

    def __init__(self, name, data, port, expect, reason=None, chunk=None, shut=False,
                 logs=None):
        self.name, self.data, self.port, self.expect = name, data, port, expect
        self.reason, self.chunk, self.shut, self.logs = reason, chunk, shut, logs

    def logged_ok(self, line):
        return (self.reason is None or 'reason="handshake failed: ' in line and
                self.reason in line.partition(" reason=")[2] or
                self.reason == "handshake timeout" and 'reason="handshake timeout"' in line) \
            and (self.logs is None or self.logs in line)

    def judge(self, a):
        if a.kind == "timeout":
            return False
        if self.expect == "server_hello":
            return a.kind == "server_hello"
        refused = a.closed and (a.kind in ("eof", "reset") or
                                (a.kind == "alert" and a.level == 2))
        if self.expect == "eof":
            return a.kind == "eof"
        if self.expect == "refused":
            return refused
        if self.expect == "answered":
            return refused or a.kind == "server_hello"
        return a.kind == "alert" and a.level == 2 and a.alert == self.expect and a.closed


def hello(**kw):
    return F.hello_records(F.client_hello(**kw))


def batch(ps, pd):
    """The hostile inputs: ps is the strict port, pd the one with a default host."""
    cases = []

    def add(*a, **kw):
        cases.append(Case(*a, **kw))

    # -- noise
    for seed in range(1, 5):
        rng = random.Random(seed)
        for size in (1, 4, 5, 7, 100, 517, 4096, 16389, 70000):
            add("random %d bytes (seed %d)" % (size, seed), rng.randbytes(size), ps, "refused")
        body = rng.randbytes(rng.randint(40, 3000))
        add("random ClientHello body (seed %d)" % seed,
            F.record(F.CT_HANDSHAKE, F.TLS10, F.handshake(F.HT_CLIENT_HELLO, body)), ps,
            "refused")
        good = bytearray(F.client_hello(sni="good.test", random=bytes(32), session_id=bytes(32),
                                        key_share=bytes(range(1, 33))))
        for _ in range(4):
            i = rng.randrange(len(good))
            good[i] ^= rng.randint(1, 255)
        add("ClientHello with 4 bytes changed (seed %d)" % seed, F.hello_records(bytes(good)),
            ps, "answered")

    # -- not TLS, old TLS, broken records
    add("plain HTTP request", b"GET / HTTP/1.1\r\n\r\n", ps, "eof", "http request")
    add("SSLv2-format hello (up to TLS 1.2), no SNI", F.sslv2_hello(), ps, "unrecognized_name",
        "no server name and no default host")
    add("SSLv2-format hello (up to TLS 1.2), default host", F.sslv2_hello(), pd,
        "handshake_failure", "no shared cipher")
    add("SSLv2-format hello (up to TLS 1.0), default host", F.sslv2_hello(F.TLS10), pd,
        "protocol_version", "unsupported protocol")
    add("SSLv2-format hello (SSL 2.0), default host", F.sslv2_hello(0x0002), pd,
        "protocol_version")
    # SSL 3.0 has no protocol_version alert: OpenSSL sends handshake_failure
    add("SSLv3 hello with SNI", F.sslv3_hello("good.test"), ps, "handshake_failure",
        "version too low")
    add("SSLv3 hello, default host", F.sslv3_hello(), pd, "handshake_failure", "version too low")
    add("SSLv3 hello, no SNI", F.sslv3_hello(), ps, "unrecognized_name")
    add("TLS 1.0 hello", hello(sni="good.test", versions=None, legacy_version=F.TLS10), ps,
        "protocol_version", "unsupported protocol")
    add("TLS 1.2 hello (no supported_versions)", hello(sni="good.test", versions=None), ps,
        "server_hello")
    add("record length 0xFFFF, nothing after", F.record(F.CT_HANDSHAKE, F.TLS10, b"", 0xFFFF),
        ps, "record_overflow", "packet length too long")
    add("record length 0xFFFF, then 100 bytes",
        F.record(F.CT_HANDSHAKE, F.TLS10, os.urandom(100), 0xFFFF), ps, "record_overflow",
        "packet length too long")
    add("handshake record of 2^14 + 1 bytes", F.record(F.CT_HANDSHAKE, F.TLS10, b"\x01" * 16385),
        ps, "record_overflow")
    add("valid ClientHello in 1-byte TCP segments", hello(sni="good.test"), ps, "server_hello",
        chunk=1)
    add("valid ClientHello in 1-byte records",
        F.hello_records(F.client_hello(sni="good.test"), size=1), ps, "server_hello")
    add("100 empty handshake records", F.record(F.CT_HANDSHAKE, F.TLS10, b"") * 100, ps,
        "unexpected_message", "record too small")
    add("100 warning alerts, then a hello",
        F.record(F.CT_ALERT, F.TLS10, b"\x01\x5a") * 100 + hello(sni="good.test"), ps,
        "unexpected_message")
    add("ChangeCipherSpec before the hello",
        F.record(F.CT_CHANGE_CIPHER_SPEC, F.TLS12, b"\x01") + hello(sni="good.test"), ps,
        "unexpected_message")
    add("application data before the hello",
        F.record(F.CT_APPLICATION_DATA, F.TLS12, os.urandom(100)), ps, "unexpected_message")
    add("hello, then 100,000 ChangeCipherSpec records",
        hello(sni="good.test") + F.record(F.CT_CHANGE_CIPHER_SPEC, F.TLS12, b"\x01") * 100000,
        ps, "server_hello")
    add("TLS 1.3 hello without key_share", hello(sni="good.test", key_share=False), ps,
        "missing_extension")
    h = hello(sni="good.test")
    add("half a hello, then FIN", h[:len(h) // 2], ps, "eof", "client closed", shut=True)
    add("half a hello, then silence", h[:len(h) // 2], ps, "eof", "handshake timeout")
    add("a record longer than what follows", h[:5 + 60], ps, "eof", "handshake timeout")

    # -- SNI: name, value, (expected answer, reason) on S, the same on D, and
    # the access log's sni field (only what no host name holds is masked)
    unknown, nosni, bad_ext = "unknown server name", "no server name and no default host", \
        "bad extension"
    for name, sni, on_s, on_d, logged in (
            ("of length 0", b"", ("unrecognized_name", nosni), ("server_hello", None), None),
            ("of 254 bytes", b"a" * 254, ("unrecognized_name", unknown),
             ("server_hello", None), None),
            ("of 255 bytes", b"a" * 255, ("unrecognized_name", unknown),
             ("server_hello", None), None),
            ("of 256 bytes", b"a" * 256, ("unrecognized_name", unknown),
             ("unrecognized_name", bad_ext), None),
            ("of 16 KiB", b"a" * 16384, ("unrecognized_name", unknown),
             ("unrecognized_name", bad_ext), None),
            ("with a NUL byte", b"good.test\x00.evil", ("unrecognized_name", unknown),
             ("unrecognized_name", bad_ext), "sni=good.test?.evil "),
            ("listing good.test, then bad.test", [b"good.test", b"bad.test"],
             ("decode_error", bad_ext), ("decode_error", bad_ext), "sni=good.test "),
            ("listing bad.test, then good.test", [b"bad.test", b"good.test"],
             ("unrecognized_name", unknown), ("decode_error", bad_ext), "sni=bad.test "),
            ("of name_type 1", [(1, b"good.test")], ("unrecognized_name", nosni),
             ("decode_error", bad_ext), "sni=- "),
            ("name_type 1, then good.test", [(1, b"x"), b"good.test"],
             ("decode_error", bad_ext), ("decode_error", bad_ext), "sni=good.test "),
            ("an IP literal", b"127.0.0.1", ("unrecognized_name", unknown),
             ("server_hello", None), "sni=127.0.0.1 "),
            ("in UTF-8", "b\u00fccher.test".encode(), ("unrecognized_name", unknown),
             ("server_hello", None), "sni=b??cher.test ")):
        data = hello(sni=sni if isinstance(sni, list) else [sni])
        add("SNI %s, no default host" % name, data, ps, on_s[0], on_s[1], logs=logged)
        add("SNI %s, default host" % name, data, pd, on_d[0], on_d[1], logs=logged)
    add("server_name extension empty, no default host",
        hello(sni=None, override={F.EXT_SERVER_NAME: b""}), ps, "unrecognized_name",
        "no server name and no default host")
    add("server_name extension empty, default host",
        hello(sni=None, override={F.EXT_SERVER_NAME: b""}), pd, "decode_error")

    # -- ALPN on a host with alpn = h2 http/1.1
    add("ALPN extension empty", hello(sni="alpn.test", override={F.EXT_ALPN: b""}), ps,
        "decode_error")
    add("ALPN list of length 0", hello(sni="alpn.test", override={F.EXT_ALPN: b"\x00\x00"}),
        ps, "decode_error")
    add("ALPN list with an empty name", hello(sni="alpn.test", alpn=[b"", b"h2"]), ps,
        "decode_error")
    add("ALPN list longer than its extension",
        hello(sni="alpn.test", override={F.EXT_ALPN: b"\x00\x10\x02h2"}), ps, "decode_error")
    add("ALPN list with no match", hello(sni="alpn.test", alpn=["foo"]), ps,
        "no_application_protocol", "no common ALPN protocol")
    big = F.client_hello(sni="alpn.test", alpn=F.filler_alpn(65000))
    add("64 KiB ALPN list, no match (%d records)" % ((len(big) + 16383) // 16384),
        F.hello_records(big), ps, "no_application_protocol", "no common ALPN protocol")
    add("64 KiB ALPN list, h2 last", hello(sni="alpn.test", alpn=F.filler_alpn(65000, "h2")),
        ps, "server_hello")
    return cases


def run_batch(tf, cases, verbose):
    """Send every case on its own connection (all open at once), then read
    each answer. Returns the (case, answer, access line) of each."""
    mark = len(tf.log())
    conns = []
    for i, c in enumerate(cases):
        # Each connection from an address of its own, which its access line
        # names: local ports cannot tell them apart (a connection reset by
        # the server gives its port back at once, to be used again, and two
        # connections to different ports may share one).
        s = F.connect(c.port, source="127.0.%d.%d" % (1 + i // 250, 1 + i % 250))
        cleanup(s.close)
        addr = s.getsockname()[0]
        F.send_bytes(s, c.data, c.chunk)
        if c.shut:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        conns.append((c, s, addr))
    # read them all at once (a thread each): every connection is closed as
    # soon as its answer is in, not after the slowest answers before it
    deadline = time.monotonic() + ANSWER_WITHIN
    answers = [None] * len(conns)

    def read(i, c, s, addr):
        try:
            answers[i] = (c, F.read_answer(s, max(0.1, deadline - time.monotonic())), addr)
        finally:
            s.close()
    threads = [threading.Thread(target=read, args=(i,) + x) for i, x in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(ANSWER_WITHIN + 10)
    check(all(answers), "every connection of the batch was read")

    def lines():
        found = {}
        for line in tf.log()[mark:].splitlines():
            m = re.search(r" access client=([0-9.]+):\d+ ", line)
            if m:
                found.setdefault(m.group(1), []).append(line)
        return found
    found = wait_for(lambda: (lambda f: f if all(p in f for _, _, p in answers) else None)(
        lines()), 20, "an access line for each of %d connections" % len(answers))
    out = []
    bad = []
    for c, a, addr in answers:
        line = found[addr]
        ok = c.judge(a) and len(line) == 1 and c.logged_ok(line[0])
        if verbose:
            check(ok, "%s: %r (expected %s%s), logged %s" % (
                c.name, a, c.expect, ", reason %r" % c.reason if c.reason else "",
                re.sub(r".* (host=\S+ sni=\S{0,40}).*?(reason=.*)", r"\1 \2", line[0])
                if len(line) == 1 else "%d lines" % len(line)))
        elif not ok:
            bad.append("%s: %r %s" % (c.name, a, line))
        out.append((c, a, line))
    if not verbose:
        check(not bad, "all %d inputs answered as expected again%s" % (
            len(cases), (": " + "; ".join(bad)) if bad else ""))
    return out


# ------------------------------------------------------------------ state checks

class Health:
    """The worker's state to come back to after each hostile part."""

    def __init__(self, tf):
        self.tf = tf
        self.worker = wait_for(lambda: tf.workers(), 10, "the worker")[0]
        check(self.good("/warm-up"), "a good client is served")
        self.fds = wait_stable(lambda: tf.fd_count(self.worker), what="worker descriptors")
        self.n = 0

    def good(self, path):
        """A good client is served; its access line is in the log on return
        (so that it cannot turn up among the lines of what comes next)."""
        body, lport = get(self.tf.port, "good.test", path)
        wait_for(lambda: "client=127.0.0.1:%d " % lport in self.tf.log(), 15,
                 "the access line of %s" % path)
        return body == ("backend good %s\n" % path).encode()

    def after(self, what):
        """The worker is still the same process, its descriptors come back
        to their count, and a good client is served."""
        self.n += 1
        check(self.tf.proc.poll() is None and self.tf.workers() == [self.worker],
              "after %s: tlsfront runs with the same worker (pid %d): %s"
              % (what, self.worker, self.tf.workers()))
        check_eventually(lambda: self.tf.fd_count(self.worker) == self.fds,
                         "after %s: the worker's descriptors are back to %d"
                         % (what, self.fds), timeout=15)
        check(self.good("/after-%d" % self.n), "after %s: a good client is served" % what)


# ------------------------------------------------------------------ past the handshake

def s_client_renegotiate(port, extra):
    """openssl s_client -tls1_2 to good.test; once the handshake is done,
    the R command. Returns (exit status, output)."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-servername", "good.test", "-tls1_2", "-msg"] + extra,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    cleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
    out = bytearray()

    def reader():
        while True:
            b = os.read(p.stdout.fileno(), 65536)
            if not b:
                return
            out.extend(b)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    # s_client prints (and flushes) the session once its handshake is done
    wait_for(lambda: b"Verify return code" in out or p.poll() is not None, 20,
             "s_client's handshake")
    try:
        p.stdin.write(b"R\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass
    try:
        rc = p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    t.join(10)
    return rc, out.decode("latin-1")


def test_renegotiation(tf, health):
    for extra in ([], ["-legacy_renegotiation"]):
        mark = len(tf.log())
        rc, out = s_client_renegotiate(tf.port, extra)
        after = out.partition("RENEGOTIATING")[2]
        check("RENEGOTIATING" in out and
              re.search(r"<<< TLS 1.2, Alert \[length 0002\], warning no_renegotiation", after)
              and "ServerHello" not in after and rc != 0,
              "s_client -tls1_2%s, R: tlsfront answers the new ClientHello with the "
              "no_renegotiation warning and no ServerHello; s_client gives up (rc %d): %s"
              % ("".join(" " + e for e in extra), rc,
                 re.findall(r"[<>]{3} TLS 1.2, (?:Alert|Handshake).*", after)))
        lines = check_eventually(lambda: [l for l in tf.log()[mark:].splitlines()
                                          if " access " in l], "its access line")
        check(len(lines) == 1 and "host=good" in lines[0] and "tls=TLSv1.2" in lines[0]
              and "handshake failure" in lines[0],
              "one access line: the client ended the connection with its own alert: %s"
              % lines)
    c = F.LibsslClient(tf.port, "good.test", F.TLS12)
    try:
        check(c.version == "TLSv1.2", "libssl client: a TLS 1.2 connection")
        try:
            c.renegotiate()
            err = None
        except (F.SslFailed, TimeoutError) as e:
            err = str(e)
        check(err is not None and "no renegotiation" in err,
              "SSL_renegotiate: refused by the server (no_renegotiation): %s" % err)
    finally:
        c.close()

    # A flood: 50,000 renegotiation ClientHellos, encrypted by hand (libssl
    # sends one and gives up at the warning), then a request. Each must be
    # refused with an alert (TLS 1.2 record type 21, visible), the request
    # after them relayed, and another client served meanwhile.
    n = 50000
    req = b"GET /after-renegotiations HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n"
    other = F.LibsslClient(tf.port, "good.test", F.TLS13)
    c = F.LibsslClient(tf.port, "good.test", F.TLS12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    mark = len(tf.log())
    try:
        w = F.Tls12Writer(c)
        hello = F.handshake(F.HT_CLIENT_HELLO, b"")
        blob = b"".join(w.record(F.CT_HANDSHAKE, hello) for _ in range(n))
        blob += w.record(F.CT_APPLICATION_DATA, req)
        seen = {"alerts": 0, "data": 0}
        c.sock.settimeout(30)

        def reader():
            # read every byte as it comes, so that the server never waits
            # to write; count the alerts before the first data record (the
            # response; its close_notify, an alert too, may follow)
            buf = b""
            try:
                while not seen["data"]:
                    b = c.sock.recv(65536)
                    if not b:
                        return
                    buf += b
                    while not seen["data"] and len(buf) >= 5 and \
                            len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
                        size = 5 + int.from_bytes(buf[3:5], "big")
                        seen["alerts" if buf[0] == F.CT_ALERT else "data"] += 1
                        buf = buf[size:]
            except OSError:
                pass
        rt = threading.Thread(target=reader)
        rt.start()
        st = threading.Thread(target=c.sock.sendall, args=(blob,))
        st.start()
        first = wait_for(lambda: seen["alerts"], 30, "the first no_renegotiation alert")
        other.write(b"GET /during-renegotiations HTTP/1.1\r\nHost: good.test\r\n"
                    b"Connection: close\r\n\r\n")
        got = other.read_all().partition(b"\r\n\r\n")[2]
        at = seen["alerts"]
        st.join(30)
        rt.join(30)
    finally:
        c.close()
        other.close()
    check(first and got == b"backend good /during-renegotiations\n" and at < n,
          "another client is served during a flood of %d renegotiation ClientHellos: %r, "
          "when %d of them had been refused" % (n, got, at))
    check(seen["alerts"] == n and seen["data"] >= 1,
          "each of the %d renegotiation attempts is refused with an alert (%d alerts), and "
          "the request after them is answered (%d data records)"
          % (n, seen["alerts"], seen["data"]))
    line = check_eventually(lambda: [l for l in tf.log()[mark:].splitlines()
                                     if " access " in l and "tls=TLSv1.2" in l],
                            "the flood's access line")
    check(len(line) == 1 and " in=%d " % len(req) in line[0],
          "the flood's access line: the request after the renegotiations was relayed "
          "(in=%d): %s" % (len(req), line))
    health.after("renegotiation attempts")


def test_key_updates(tf, health):
    # 1. KeyUpdates asking for one back, the server's answers read as they come
    c = F.LibsslClient(tf.port, "good.test", F.TLS13)
    try:
        check(c.version == "TLSv1.3", "libssl client: a TLS 1.3 connection")
        for i in range(2000):
            c.key_update(requested=True)
            if i % 50 == 49:
                c.read_pending()
        c.write(b"GET /after-2000-keyupdates HTTP/1.1\r\nHost: good.test\r\n"
                b"Connection: close\r\n\r\n")
        body = c.read_all().partition(b"\r\n\r\n")[2]
    finally:
        c.close()
    check(body == b"backend good /after-2000-keyupdates\n",
          "2,000 KeyUpdates (update_requested), answers read as they come: the request "
          "after them is served, keys in step both ways: %r" % body)

    # 2. 100,000 KeyUpdates in one burst, a request at its end. Every
    # 1,000th asks for an answer, so the answers that have arrived tell how
    # far the worker has got. Once the first is in, another client
    # (connected before) sends its request: it must be served while the
    # flood is still going on. (Before the fix in tls.c ctx_new_common, one
    # SSL_read went through the whole flood before anything else was done.)
    other = F.LibsslClient(tf.port, "good.test", F.TLS13)
    flood = F.LibsslClient(tf.port, "good.test", F.TLS13, timeout=30)
    try:
        flood.capture_writes()
        for i in range(100000):
            flood.key_update(requested=i % 1000 == 0)
        flood.write(b"GET /after-flood HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n")
        blob = flood.take_written()
        rss0 = rss_kb(health.worker)
        t = threading.Thread(target=flood.send_raw, args=(blob,))
        t.start()

        def updates():
            return F.peek_records(flood.sock, F.KEY_UPDATE_RECORD_LEN)
        first = wait_for(updates, 30, "the answer to the flood's first KeyUpdate")
        other.write(b"GET /during-flood HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n")
        got = other.read_all().partition(b"\r\n\r\n")[2]
        answers = updates()
        t.join(30)
        body = flood.read_all().partition(b"\r\n\r\n")[2]
        rss1 = rss_kb(health.worker)
    finally:
        flood.close()
        other.close()
    check(first >= 1, "the server answers the flood's first KeyUpdate")
    check(got == b"backend good /during-flood\n", "another client is served during a flood of "
          "100,000 KeyUpdates (%d bytes in one burst): %r" % (len(blob), got))
    check(answers < 100, "the other client is served while the flood goes on: when it had "
          "its answer, the worker had answered %d of the flood's 100 requests for a KeyUpdate"
          % answers)
    check(body == b"backend good /after-flood\n",
          "the request after the 100,000 KeyUpdates is served (the server followed every "
          "key change): %r" % body)
    check(rss1 - rss0 < RSS_GROWTH_KB, "the worker's RSS during the flood: %d -> %d kB"
          % (rss0, rss1))

    # 3. 30,000 KeyUpdates asking for one back, in one burst; every answer read
    c = F.LibsslClient(tf.port, "good.test", F.TLS13, timeout=30)
    try:
        c.capture_writes()
        for _ in range(30000):
            c.key_update(requested=True)
        c.write(b"GET /after-requested-flood HTTP/1.1\r\nHost: good.test\r\n"
                b"Connection: close\r\n\r\n")
        c.send_raw(c.take_written())
        body = c.read_all().partition(b"\r\n\r\n")[2]
    finally:
        c.close()
    check(body == b"backend good /after-requested-flood\n",
          "30,000 KeyUpdates asking for an answer in one burst: the server answers them all "
          "and serves the request after them: %r" % body)
    health.after("KeyUpdate floods")


def test_chain_depth(tf, health, leaves):
    """Host mtls: client_verify = required, client_verify_depth = 2."""
    for n, (chain, key) in sorted(leaves.items()):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = client_context(maxv=version)
            ctx.load_cert_chain(chain, key)
            mark = len(tf.log())
            r, lport = get(tf.port, "mtls.test", "/depth-%d" % n, ctx)
            line = check_eventually(
                lambda: [l for l in tf.log()[mark:].splitlines()
                         if "client=127.0.0.1:%d " % lport in l], "its access line")
            if n <= 2:
                check(r == ("backend good /depth-%d\n" % n).encode() and "client_cn=leaf" in
                      line[0], "%s, chain with %d intermediates (depth limit 2): served: %r"
                      % (version.name, n, r))
            else:
                check(isinstance(r, ssl.SSLError) and alert_of(r) == "unknown_ca" and
                      "certificate chain too long" in line[0],
                      "%s, chain with %d intermediates (depth limit 2): refused with "
                      "unknown_ca, reason certificate chain too long: %r %s"
                      % (version.name, n, r, line))
    health.after("client certificate chains")


# ------------------------------------------------------------------ main

def main():
    t0 = time.monotonic()
    d = tmpdir()
    ca = CA(d)
    good = ca.host_cert("good", ["good.test"])
    alpn = ca.host_cert("alpn", ["alpn.test"])
    dflt = ca.host_cert("dflt", ["dflt.test"])
    mtls = ca.host_cert("mtls", ["mtls.test"])
    # client CAs: root -> i1 -> ... -> i6; leaves under 0, 2, 3 and 6 intermediates
    cas = [CA(d, "Depth Root")]
    for i in range(1, 7):
        cas.append(CA(d, "Depth I%d" % i, parent=cas[-1]))
    leaves = {}
    for n in (0, 2, 3, 6):
        crt, key = cas[n].issue("leaf%d" % n, "leaf%d" % n)
        leaves[n] = (cas[n].chain_file(crt), key)

    backend = HttpBackend("good")
    b = "127.0.0.1:%d" % backend.port
    pd = free_port()
    tf = Tlsfront(d, {
        "good": {"cert": good[0], "key": good[1], "backend": b},
        "alpn": {"cert": alpn[0], "key": alpn[1], "backend": b, "alpn": "h2 http/1.1"},
        "mtls": {"cert": mtls[0], "key": mtls[1], "backend": b, "client_verify": "required",
                 "client_ca": cas[0].crt, "client_verify_depth": "2"},
        "dflt": {"cert": dflt[0], "key": dflt[1], "backend": b, "default": "yes",
                 "listen": "127.0.0.1:%d" % pd},
    }, defaults={"handshake_timeout": "%gs" % HS_TIMEOUT})
    tf.wait_log(r"listening on .*:%d" % pd, what="the listener with a default host")
    health = Health(tf)

    cases = batch(tf.port, pd)
    run_batch(tf, cases, verbose=True)
    health.after("the hostile batch")
    rss_start = rss_kb(health.worker)
    for i in (2, 3):
        run_batch(tf, batch(tf.port, pd), verbose=False)
        health.after("hostile batch %d" % i)
    rss_batches = rss_kb(health.worker)
    check(rss_batches - rss_start < RSS_BATCH_GROWTH_KB,
          "the worker's RSS over two more passes of the batch (%d connections): %d -> %d kB "
          "(bound: +%d kB)" % (2 * len(cases), rss_start, rss_batches, RSS_BATCH_GROWTH_KB))

    test_renegotiation(tf, health)
    test_key_updates(tf, health)
    test_chain_depth(tf, health, leaves)

    rss_end = rss_kb(health.worker)
    check(rss_end - rss_start < RSS_GROWTH_KB,
          "the worker's RSS from the end of the first batch to the end: %d -> %d kB "
          "(bound: +%d kB)" % (rss_start, rss_end, RSS_GROWTH_KB))
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")
    print("# %.1fs" % (time.monotonic() - t0))


run(main)
