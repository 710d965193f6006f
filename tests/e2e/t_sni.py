"""SNI routing: each name gets its host's certificate and backend; exact names
beat wildcards, a wildcard covers one label, names are case-insensitive with
one trailing dot ignored; unknown names are refused with unrecognized_name
unless the listener has a default host; a host with its own `listen` lives
only there; the access log records host, sni and why a handshake was refused."""
import re
import socket
import ssl

from tf_clients import (client_context, http_get, recv_all, s_client, served_cert_cn,
                        tls_connect)
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, free_port, run, tmpdir


def refused_unrecognized(port, servername):
    """s_client to servername (None: no SNI) fails with the unrecognized_name alert."""
    rc, out = s_client(port, servername, ["-brief"], b"")
    return rc != 0 and ("unrecognized name" in out or "alert number 112" in out) and \
        "Peer certificate" not in out, out


def fetch(port, ctx, sni, session=None):
    """GET / offering session; return (session, session_reused, body)."""
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname=sni, session=session)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(s)
        return s.session, s.session_reused, data.partition(b"\r\n\r\n")[2]
    finally:
        s.close()


def main():
    d = tmpdir()
    ca = CA(d)
    wild = ca.host_cert("wild", ["*.a.test"], cn="wild")
    exact = ca.host_cert("exact", ["x.a.test"], cn="exact")
    shop = ca.host_cert("shop", ["shop.test", "www.shop.test"], cn="shop")
    other = ca.host_cert("other", ["other.test"], cn="other")
    backends = {n: HttpBackend(n) for n in ("wild", "exact", "shop", "other")}
    port2 = free_port()

    def host(name, cert, **extra):
        h = {"cert": cert[0], "key": cert[1],
             "backend": "127.0.0.1:%d" % backends[name].port}
        h.update(extra)
        return h

    tf = Tlsfront(d, {
        "wild": host("wild", wild),
        "exact": host("exact", exact),
        "shop": host("shop", shop),
        # only on port2, where it is also the default host
        "other": host("other", other, listen="127.0.0.1:%d" % port2, default="yes"),
    })
    tf.wait_log(r"listening on .*:%d" % port2, what="the second listener")
    p1 = tf.port
    # the hosts differ in certificate, names and backend only: one settings
    # context serves them all, each connection gets its host's certificate
    # (checked below), and sessions still never cross hosts (checked below)
    check(re.search(r"started: 4 hosts \(1 TLS settings\)", tf.log()),
          "four hosts with the same TLS settings share one context: %s"
          % re.findall(r"started: .*", tf.log()))

    def cn(port, name):
        return served_cert_cn(port, name)

    # -- each name its host's certificate
    check(cn(p1, "shop.test") == "CN = shop", "shop.test gets shop's certificate")
    check(cn(p1, "www.shop.test") == "CN = shop", "www.shop.test (second SAN) gets shop's")
    check(cn(p1, "y.a.test") == "CN = wild", "y.a.test is covered by *.a.test")
    check(cn(p1, "x.a.test") == "CN = exact",
          "x.a.test: the exact name beats the wildcard *.a.test")
    check(cn(p1, "SHOP.Test") == "CN = shop", "SHOP.Test: names are case-insensitive")
    check(cn(p1, "shop.test.") == "CN = shop", "shop.test.: one trailing dot is ignored")
    check(cn(p1, "Y.A.TEST.") == "CN = wild", "Y.A.TEST.: case and dot for a wildcard too")

    # -- and its host's backend, with a client that verifies name and chain
    vctx = client_context(verify_ca=ca.crt)
    check(http_get(p1, "x.a.test", "/e", vctx) == b"backend exact /e\n",
          "x.a.test reaches the exact host's backend (verified)")
    check(http_get(p1, "z.a.test", "/w", vctx) == b"backend wild /w\n",
          "z.a.test reaches the wildcard host's backend (verified)")
    check(http_get(p1, "shop.test", "/s", vctx) == b"backend shop /s\n",
          "shop.test reaches shop's backend (verified)")

    # -- what no host covers is refused: no default host on p1
    for name, why in (("a.b.a.test", "a wildcard covers exactly one label"),
                      ("a.test", "*.a.test does not cover a.test itself"),
                      ("nomatch.test", "an unknown name"),
                      ("other.test", "other's own listen keeps it off the global listener"),
                      ("shop.test..", "two trailing dots are not one"),
                      (None, "no SNI and no default host")):
        ok, out = refused_unrecognized(p1, name)
        check(ok, "%s (%s) is refused with unrecognized_name: %s"
              % (name or "no SNI", why, out.strip().splitlines()[-1:] if out else ""))
    ok, out = refused_unrecognized(p1, "evil.test host=shop")
    check(ok, "a name with a blank is refused")
    try:
        tls_connect(p1, "nomatch.test").close()
        check(False, "Python ssl: handshake with an unknown name should fail")
    except ssl.SSLError as e:
        check("UNRECOGNIZED_NAME" in str(e).upper(),
              "Python ssl sees the unrecognized_name alert: %s" % e)

    # -- port2: other is the default host; the global listener's hosts are not there
    check(cn(port2, "other.test") == "CN = other", "other.test on its own listener")
    check(cn(port2, "unknown.test") == "CN = other",
          "an unknown name on port2 gets the default host")
    check(cn(port2, None) == "CN = other", "no SNI on port2 gets the default host")
    check(cn(port2, "shop.test") == "CN = other",
          "shop.test is not served on port2 (shop listens on the global listener only)")
    check(http_get(port2, "unknown.test", "/d") == b"backend other /d\n",
          "the default host's backend serves unknown names")

    # -- a session made under one host is resumed there, never under another
    # (the session-ID case: this client closes without close_notify, which once
    # made the server drop the session from its cache)
    for maxv, vname in ((None, "TLS 1.3"), (ssl.TLSVersion.TLSv1_2, "TLS 1.2"),
                        (ssl.TLSVersion.TLSv1_2, "TLS 1.2 session ID")):
        ctx = client_context(verify_ca=ca.crt, maxv=maxv)
        if vname.endswith("session ID"):
            ctx.options |= ssl.OP_NO_TICKET
        sess, _, _ = fetch(p1, ctx, "shop.test")
        _, reused, body = fetch(p1, ctx, "shop.test", sess)
        check(reused and body == b"backend shop /\n",
              "%s: a shop.test session is resumed for shop.test" % vname)
        _, reused, body = fetch(p1, ctx, "x.a.test", sess)
        check(not reused and body == b"backend exact /\n",
              "%s: the shop.test session is not resumed for x.a.test (full handshake, "
              "exact's certificate verified)" % vname)

    # -- the access log
    def line_for(sni, count=1):
        rx = r" access .*sni=%s " % re.escape(sni)
        tf.wait_log(rx, what="access line for sni=%s" % sni, count=count)
        return [l for l in tf.access_lines() if re.search(rx, l)]

    l = line_for("x.a.test")[0]
    check("host=exact " in l and "backend=127.0.0.1:%d" % backends["exact"].port in l,
          "access line of x.a.test names host=exact and its backend: %s" % l)
    l = line_for("nomatch.test", 2)[0]
    check("host=- " in l and 'reason="handshake failed: unknown server name"' in l,
          "a refused name is logged with host=- and the reason: %s" % l)
    l = line_for("SHOP.Test")[0]
    check("host=shop " in l, "the SNI is logged as sent, the host it matched: %s" % l)
    l = line_for("shop.test.")[0]
    check("host=shop " in l, "the trailing dot reached the server and matched shop: %s" % l)
    l = line_for("evil.test?host=shop")[0]
    check("host=- " in l and "unknown server name" in l,
          "a blank in the SNI is logged as '?', so it cannot forge a field: %s" % l)
    l = line_for("other.test")
    check(any("host=- " in x and "unknown server name" in x for x in l) and
          any("host=other " in x for x in l),
          "other.test: refused on the global listener, served on its own")
    l = line_for("-")
    check(any("host=- " in x and "no server name and no default host" in x for x in l),
          "no SNI on the global listener: sni=- and the reason are logged")
    check(any("host=other " in x for x in l),
          "no SNI on port2: sni=- host=other (the default host)")
    l = line_for("unknown.test", 2)
    check(all("host=other " in x for x in l), "unknown.test on port2 goes to the default")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
