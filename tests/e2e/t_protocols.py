"""TLS versions and cipher policy: TLS 1.2 and 1.3 by default, 1.0 and 1.1
refused by the server; `protocols`, `ciphers`, `ciphersuites` and `groups`
are per host and apply after the SNI switch (hosts on one port, different
policies); renegotiation is refused."""
import re
import ssl
import subprocess
import threading

from tf_clients import client_context, s_client, tls_connect
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, run, tmpdir, wait_for

ALL13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
ECDSA12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:" \
          "ECDHE-ECDSA-AES256-GCM-SHA384"


def handshake(port, sni, *extra):
    """s_client -brief: (ok, protocol, cipher, output)."""
    rc, out = s_client(port, sni, ["-brief"] + list(extra), b"")
    proto = re.search(r"Protocol version: (\S+)", out)
    cipher = re.search(r"Ciphersuite: (\S+)", out)
    ok = rc == 0 and "CONNECTION ESTABLISHED" in out
    return ok, proto and proto.group(1), cipher and cipher.group(1), out


def py(port, sni, minv=None, maxv=None, ciphers=None):
    """Python ssl handshake: (version, cipher name) or the SSLError."""
    ctx = client_context(minv=minv, maxv=maxv)
    if ciphers:
        ctx.set_ciphers(ciphers)
    try:
        s = tls_connect(port, sni, ctx)
    except ssl.SSLError as e:
        return e
    try:
        return s.version(), s.cipher()[0]
    finally:
        s.close()


def old_client(v):
    """A client context that offers only TLS version v (1.0 or 1.1)."""
    ctx = client_context(minv=v, maxv=v)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def renegotiate(port, sni):
    """Renegotiate a TLS 1.2 connection with s_client's R command; return its output
    once s_client exits (it does when the server refuses), or None after 15 s."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-servername", sni, "-tls1_2"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    t = threading.Thread(target=lambda: out.extend(iter(p.stdout.readline, b"")),
                         daemon=True)
    t.start()
    try:
        # the session summary ends with this: the handshake is done
        wait_for(lambda: any(b"Verify return code" in l for l in out), 15,
                 "s_client's handshake")
        p.stdin.write(b"R\n")
        p.stdin.flush()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            return None
        t.join(5)
        return b"".join(out).decode("latin-1")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    d = tmpdir()
    ca = CA(d)
    backend = HttpBackend("b")

    def host(name, **extra):
        cert = ca.host_cert(name, [name + ".test"])
        h = {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % backend.port}
        h.update(extra)
        return h

    tf = Tlsfront(d, {
        "dflt": host("dflt"),
        "only13": host("only13", protocols="TLSv1.3"),
        "only12": host("only12", protocols="TLSv1.2"),
        "chacha": host("chacha", ciphersuites="TLS_CHACHA20_POLY1305_SHA256"),
        "aes256": host("aes256", ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"),
        "p384": host("p384", groups="secp384r1"),
    })
    p = tf.port
    T = ssl.TLSVersion

    # -- defaults: 1.2 and 1.3 yes, 1.0 and 1.1 refused by the server
    r = py(p, "dflt.test")
    check(r[0] == "TLSv1.3", "default host, modern client: TLS 1.3 (%r)" % (r,))
    r = py(p, "dflt.test", maxv=T.TLSv1_2)
    check(r[0] == "TLSv1.2", "default host accepts a TLS 1.2 client (%r)" % (r,))
    for v, name in ((T.TLSv1_1, "TLS 1.1"), (T.TLSv1, "TLS 1.0")):
        try:
            s = tls_connect(p, "dflt.test", old_client(v))
            s.close()
            check(False, "a %s client must be refused (got %s)" % (name, s.version()))
        except ssl.SSLError as e:
            # an alert received from the server, not a client-side refusal
            check("TLSV1_ALERT_PROTOCOL_VERSION" in str(e).upper(),
                  "%s client: the server answers protocol_version (%s)" % (name, e))
    ok, proto, _, out = handshake(p, "dflt.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    check(not ok and "alert protocol version" in out and "alert number 70" in out,
          "s_client -tls1_1 receives alert 70 (protocol_version)")

    # -- protocols per host, decided after the SNI switch on the same port
    ok, proto, _, out = handshake(p, "only13.test", "-tls1_2")
    check(not ok and "alert number 70" in out,
          "protocols = TLSv1.3: a TLS 1.2 client is refused with protocol_version")
    ok, proto, _, _ = handshake(p, "dflt.test", "-tls1_2")
    check(ok and proto == "TLSv1.2", "...while the default host on the same port accepts it")
    ok, proto, _, _ = handshake(p, "only13.test", "-tls1_3")
    check(ok and proto == "TLSv1.3", "protocols = TLSv1.3 accepts a TLS 1.3 client")
    r = py(p, "only12.test")
    check(r[0] == "TLSv1.2",
          "protocols = TLSv1.2: a client able to do 1.3 gets 1.2 (%r)" % (r,))
    r = py(p, "only12.test", minv=T.TLSv1_3)
    check(isinstance(r, ssl.SSLError) and "PROTOCOL_VERSION" in str(r).upper(),
          "protocols = TLSv1.2 refuses a TLS-1.3-only client (%s)" % r)

    # -- TLS 1.3 ciphersuites: the client prefers AES-128 and offers all three
    ok, proto, cipher, _ = handshake(p, "dflt.test", "-tls1_3", "-ciphersuites", ALL13)
    check(ok and cipher == "TLS_AES_128_GCM_SHA256",
          "default host: the client's first TLS 1.3 suite wins (%s)" % cipher)
    ok, proto, cipher, _ = handshake(p, "chacha.test", "-tls1_3", "-ciphersuites", ALL13)
    check(ok and cipher == "TLS_CHACHA20_POLY1305_SHA256",
          "ciphersuites = TLS_CHACHA20_POLY1305_SHA256 is what that host negotiates (%s)"
          % cipher)
    ok, _, _, out = handshake(p, "chacha.test", "-tls1_3", "-ciphersuites",
                              "TLS_AES_128_GCM_SHA256")
    check(not ok and "handshake failure" in out,
          "a client without ChaCha20 is refused by that host (handshake_failure)")

    # -- TLS 1.2 cipher list
    r = py(p, "dflt.test", maxv=T.TLSv1_2, ciphers=ECDSA12)
    check(r == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
          "default host: the client's first TLS 1.2 cipher wins (%r)" % (r,))
    r = py(p, "aes256.test", maxv=T.TLSv1_2, ciphers=ECDSA12)
    check(r == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"),
          "ciphers = ECDHE-ECDSA-AES256-GCM-SHA384 is what that host negotiates (%r)"
          % (r,))
    r = py(p, "aes256.test", maxv=T.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    check(isinstance(r, ssl.SSLError) and "HANDSHAKE_FAILURE" in str(r).upper(),
          "a TLS 1.2 client without that cipher is refused (%s)" % r)
    r = py(p, "aes256.test")
    check(r[0] == "TLSv1.3", "the `ciphers` key leaves TLS 1.3 alone (%r)" % (r,))

    # -- groups per host; a TLS 1.3 client guessing X25519 gets a HelloRetryRequest
    # (a second ClientHello, after the SNI switch) and then the host's group
    offer = ["-groups", "X25519:P-256:P-384"]
    rc, out = s_client(p, "dflt.test", ["-brief"] + offer, b"")
    check(rc == 0 and "Server Temp Key: X25519" in out, "default groups: X25519")
    rc, out = s_client(p, "p384.test", ["-msg"] + offer, b"")
    check(rc == 0 and "Server Temp Key: ECDH, secp384r1" in out and
          out.count("ServerHello") == 2,
          "groups = secp384r1: negotiated after a HelloRetryRequest (%d ServerHello)"
          % out.count("ServerHello"))
    rc, out = s_client(p, "p384.test", ["-brief", "-tls1_2"] + offer, b"")
    check(rc == 0 and "Server Temp Key: ECDH, secp384r1" in out,
          "groups = secp384r1 over TLS 1.2 too")
    rc, out = s_client(p, "p384.test", ["-brief", "-groups", "X25519"], b"")
    check(rc != 0 and "alert number 40" in out,
          "groups = secp384r1 refuses a client with X25519 only (handshake_failure)")

    # -- no renegotiation
    out = renegotiate(p, "dflt.test")
    check(out is not None and "RENEGOTIATING" in out and "no renegotiation" in out,
          "a TLS 1.2 renegotiation is refused with no_renegotiation: %r"
          % (out and out.strip().splitlines()[-2:]))

    # -- the access log records version and cipher, and why a handshake failed
    tf.wait_log(r"access .*host=aes256 .*tls=TLSv1\.2 cipher=ECDHE-ECDSA-AES256-GCM-SHA384",
                what="access line of the aes256 host over TLS 1.2")
    tf.wait_log(r"access .*host=chacha .*tls=TLSv1\.3 cipher=TLS_CHACHA20_POLY1305_SHA256",
                what="access line of the chacha host")
    lines = tf.wait_log(r'access .*host=only13 .*tls=- .*reason="handshake failed: [^"]+"',
                        what="access line of a refused TLS 1.2 client")
    check(len(lines) >= 1, "a refused handshake is logged with its reason")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
