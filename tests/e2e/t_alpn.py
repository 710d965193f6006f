"""ALPN: the server's preference order wins; a client with no protocol in
common is refused with no_application_protocol; a client offering no ALPN
still gets in; a host without `alpn` ignores what clients offer; backend.h2
sends h2 connections to their own backend. With nginx, curl --http2 goes end
to end to an h2c backend."""
import re
import ssl
import subprocess

from tf_clients import client_context, recv_all, s_client, tls_connect
from tf_peers import HttpBackend, start_nginx
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, free_port, run, tmpdir


def request(port, sni, alpn=None, tls12=False):
    """Connect offering alpn; send one HTTP/1.1 request whatever was negotiated
    (the proxy does not care). Returns (negotiated protocol, body) or the SSLError."""
    ctx = client_context(alpn=alpn, maxv=ssl.TLSVersion.TLSv1_2 if tls12 else None)
    try:
        s = tls_connect(port, sni, ctx)
    except ssl.SSLError as e:
        return e
    try:
        proto = s.selected_alpn_protocol()
        s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (proto, sni)).encode())
        data = recv_all(s)
    finally:
        s.close()
    return proto, bytes(data).partition(b"\r\n\r\n")[2].decode()


def main():
    d = tmpdir()
    ca = CA(d)
    web = ca.host_cert("web", ["web.test"])
    plain = ca.host_cert("plain", ["plain.test"])
    curlh = ca.host_cert("curl", ["curl.test"])
    b_http1 = HttpBackend("http1")
    b_h2 = HttpBackend("h2")
    b_plain = HttpBackend("plain")
    h2c_port = free_port()
    # nginx speaking cleartext HTTP/2 (prior knowledge)
    have_nginx = start_nginx(d, h2c_port, "hello over h2c\n", listen_extra="http2",
                             part="curl end to end with an h2c nginx")[0] is not None
    hosts = {
        "web": {"cert": web[0], "key": web[1], "backend": "127.0.0.1:%d" % b_http1.port,
                "alpn": "h2 http/1.1", "backend.h2": "127.0.0.1:%d" % b_h2.port},
        "plain": {"cert": plain[0], "key": plain[1],
                  "backend": "127.0.0.1:%d" % b_plain.port},
    }
    if have_nginx:
        hosts["curl"] = {"cert": curlh[0], "key": curlh[1], "alpn": "h2,http/1.1",
                         "backend": "127.0.0.1:%d" % b_http1.port,
                         "backend.h2": "127.0.0.1:%d" % h2c_port}
    tf = Tlsfront(d, hosts)
    p = tf.port

    # -- server preference, and backend.h2
    r = request(p, "web.test", ["http/1.1", "h2"])
    check(r == ("h2", "backend h2 /h2\n"),
          "client offering http/1.1,h2 gets h2 (server preference), routed to the h2 "
          "backend: %r" % (r,))
    r = request(p, "web.test", ["http/1.1"])
    check(r == ("http/1.1", "backend http1 /http/1.1\n"),
          "client offering only http/1.1 gets it, routed to the default backend: %r" % (r,))
    r = request(p, "web.test", ["h2"], tls12=True)
    check(r == ("h2", "backend h2 /h2\n"), "the same over TLS 1.2: %r" % (r,))
    r = request(p, "web.test")
    check(r == (None, "backend http1 /None\n"),
          "client offering no ALPN gets in with no protocol, to the default backend: %r"
          % (r,))

    # -- nothing in common
    r = request(p, "web.test", ["foo"])
    check(isinstance(r, ssl.SSLError) and
          "NO APPLICATION PROTOCOL" in str(r).upper().replace("_", " "),
          "client offering only foo is refused with no_application_protocol: %s" % (r,))
    rc, out = s_client(p, "web.test", ["-alpn", "foo", "-brief"])
    check(rc != 0 and "alert number 120" in out,
          "s_client -alpn foo receives alert 120: %s" % out.strip().splitlines()[-1:])
    rc, out = s_client(p, "web.test", ["-alpn", "foo,h2"])
    check(rc == 0 and re.search(r"ALPN protocol: h2", out),
          "s_client -alpn foo,h2 gets h2")

    # -- a host without alpn ignores what is offered
    r = request(p, "plain.test", ["h2", "http/1.1"])
    check(r == (None, "backend plain /None\n"),
          "a host without alpn selects nothing from h2,http/1.1: %r" % (r,))
    r = request(p, "plain.test", ["foo"])
    check(r == (None, "backend plain /None\n"),
          "a host without alpn does not refuse an unknown protocol: %r" % (r,))

    # -- the access log
    lines = tf.wait_access(9)
    check(any("host=web " in l and "alpn=h2 " in l and
              "backend=127.0.0.1:%d " % b_h2.port in l for l in lines),
          "access log: alpn=h2 with the h2 backend")
    check(any("host=web " in l and "alpn=http/1.1 " in l and
              "backend=127.0.0.1:%d " % b_http1.port in l for l in lines),
          "access log: alpn=http/1.1 with the default backend")
    check(any("host=web " in l and "no common ALPN protocol" in l for l in lines),
          "access log: the refused client's reason is 'no common ALPN protocol'")
    plain_lines = [l for l in lines if "host=plain " in l]
    check(len(plain_lines) == 2 and all("alpn=- " in l for l in plain_lines),
          "access log: alpn=- for the host without alpn (both its connections): %r"
          % plain_lines)

    # -- end to end with curl and an h2c nginx
    if have_nginx:
        url = "https://curl.test:%d/" % p
        base = ["curl", "-sS", "--cacert", ca.crt, "--resolve", "curl.test:%d:127.0.0.1" % p,
                "-w", "\\n%{http_version}"]
        r = subprocess.run(base + ["--http2", url], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and r.stdout == "hello over h2c\n\n2",
              "curl --http2 gets h2 end to end from an h2c nginx: %r %r"
              % (r.stdout, r.stderr))
        r = subprocess.run(base + ["--http1.1", url], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0 and r.stdout == "backend http1 /\n\n1.1",
              "curl --http1.1 on the same host reaches the HTTP/1.1 backend: %r %r"
              % (r.stdout, r.stderr))
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
