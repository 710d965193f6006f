"""50 MiB up and 50 MiB down through tlsfront, with curl and with the Python
ssl client, every transfer checked by sha256; the access log counts at least
the payload in each direction."""
import hashlib
import os
import re
import ssl
import subprocess

from tf_clients import client_context, recv_all, tls_connect
from tf_peers import HttpBackend, pattern_bytes
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, run, tmpdir

SIZE = 50 * 1024 * 1024


def access_counts(line):
    m = re.search(r" in=(\d+) out=(\d+) ", line)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def curl(ca, port, *args):
    return subprocess.run(["curl", "-sS", "--fail", "--cacert", ca, "--resolve",
                           "bulk.test:%d:127.0.0.1" % port] + list(args),
                          capture_output=True, timeout=60)


def py_upload(port, ctx, data):
    """POST data with the Python ssl client; return the response body."""
    s = tls_connect(port, "bulk.test", ctx, timeout=30)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: bulk.test\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(data))
        view = memoryview(data)
        while view:
            n = s.send(view[:1 << 20])
            view = view[n:]
        resp = recv_all(s)
    finally:
        s.close()
    return bytes(resp).partition(b"\r\n\r\n")[2]


def py_download(port, ctx, n):
    """GET /bytes/n with the Python ssl client; return (body length, sha256 hex)."""
    s = tls_connect(port, "bulk.test", ctx, timeout=30)
    digest = hashlib.sha256()
    got = 0
    head = bytearray()
    try:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: bulk.test\r\nConnection: close\r\n\r\n"
                  % n)
        while True:
            try:
                b = s.recv(1 << 20)
            except ssl.SSLZeroReturnError:
                break
            if not b:
                break
            if head is not None:
                head += b
                if b"\r\n\r\n" not in head:
                    continue
                b = bytes(head).partition(b"\r\n\r\n")[2]
                head = None
            digest.update(b)
            got += len(b)
    finally:
        s.close()
    return got, digest.hexdigest()


def main():
    d = tmpdir()
    ca = CA(d)
    cert = ca.host_cert("bulk", ["bulk.test"])
    b = HttpBackend("bulk")
    tf = Tlsfront(d, {"bulk": {"cert": cert[0], "key": cert[1],
                               "backend": "127.0.0.1:%d" % b.port}})
    payload = pattern_bytes(SIZE, seed=b"upload")
    want = hashlib.sha256(payload).hexdigest()
    path = os.path.join(d, "upload.bin")
    with open(path, "wb") as f:
        f.write(payload)
    url = "https://bulk.test:%d/" % tf.port

    # curl upload (no Expect: 100-continue, the test backend does not answer it)
    r = curl(ca.crt, tf.port, "-H", "Expect:", "--data-binary", "@" + path, url + "upload")
    check(r.returncode == 0 and r.stdout.decode().strip() == want,
          "curl 50 MiB upload arrives intact (backend sha256 %r, want %s; %r)"
          % (r.stdout[:80], want, r.stderr[-200:]))
    line = tf.wait_access(1)[-1]
    cin, cout = access_counts(line)
    check(cin >= SIZE, "access log in=%d counts the whole upload (>= %d)" % (cin, SIZE))
    check('reason="closed"' in line, "the upload connection ended cleanly: %s" % line)

    # curl download
    out = os.path.join(d, "download.bin")
    r = curl(ca.crt, tf.port, "-o", out, url + "bytes/%d" % SIZE)
    with open(out, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    expect_down = hashlib.sha256(pattern_bytes(SIZE)).hexdigest()
    check(r.returncode == 0 and got == expect_down,
          "curl 50 MiB download arrives intact (sha256 %s, want %s; %r)"
          % (got, expect_down, r.stderr[-200:]))
    line = tf.wait_access(2)[-1]
    cin, cout = access_counts(line)
    check(cout >= SIZE, "access log out=%d counts the whole download (>= %d)" % (cout, SIZE))

    # the same with the Python ssl client
    ctx = client_context(verify_ca=ca.crt)
    body = py_upload(tf.port, ctx, payload)
    check(body.decode(errors="replace").strip() == want,
          "Python ssl 50 MiB upload arrives intact (%r)" % body[:80])
    line = tf.wait_access(3)[-1]
    check(access_counts(line)[0] >= SIZE, "access log in= counts the Python upload: %s" % line)

    n, got = py_download(tf.port, ctx, SIZE)
    check(n == SIZE and got == expect_down,
          "Python ssl 50 MiB download arrives intact (%d bytes, sha256 %s)" % (n, got))
    line = tf.wait_access(4)[-1]
    check(access_counts(line)[1] >= SIZE, "access log out= counts the Python download: %s"
          % line)
    check(b.requests == 4, "the backend saw exactly the 4 requests (%d)" % b.requests)
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
