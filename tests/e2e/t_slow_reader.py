"""Backpressure: a client asks for 200 MiB and stops reading. The backend must
block after sending a small fraction of it (tlsfront stops reading from the
backend instead of buffering), the worker's memory must stay flat, and once the
client reads again every byte arrives, in order."""
import hashlib
import re
import ssl

from tf_clients import client_context, http_get, tls_connect
from tf_peers import HttpBackend, pattern_sha256
from tf_pki import CA
from tf_proc import Tlsfront, rss_kb
from tf_run import check, run, tmpdir, wait_for, wait_stable

SIZE = 200 * 1024 * 1024
MIB = 1024 * 1024


def main():
    d = tmpdir()
    ca = CA(d)
    cert = ca.host_cert("slow", ["slow.test"])
    b = HttpBackend("slow")
    tf = Tlsfront(d, {"slow": {"cert": cert[0], "key": cert[1],
                               "backend": "127.0.0.1:%d" % b.port}})
    ctx = client_context(verify_ca=ca.crt)
    want = pattern_sha256(SIZE)

    workers = wait_for(tf.workers, what="the worker process")
    check(len(workers) == 1, "one worker process (%r)" % workers)
    wpid = workers[0]
    # warm up (OpenSSL and libevent allocate lazily), then take the baseline
    body = http_get(tf.port, "slow.test", "/bytes/%d" % (4 * MIB), ctx)
    check(len(body) == 4 * MIB, "a 4 MiB warm-up download arrives (%d bytes)" % len(body))
    tf.wait_access(1)
    base_rss = rss_kb(wpid)
    b.sent = 0

    s = tls_connect(tf.port, "slow.test", ctx, timeout=30)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: slow.test\r\nConnection: close\r\n\r\n"
              % SIZE)
    # read a little so that the transfer is known to be under way, then stop
    digest = hashlib.sha256()
    head = bytearray()
    while b"\r\n\r\n" not in head:
        head += s.recv(65536)
    head, _, first = bytes(head).partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200"), "the download starts: %r" % head[:40])
    got = len(first)
    digest.update(first)

    wait_for(lambda: b.sent > 0, what="the backend to send")
    blocked_at = wait_stable(lambda: b.sent, polls=6, interval=0.25, timeout=30,
                             what="the backend to block on a client that does not read")
    print("# backend blocked after sending %.1f MiB" % (blocked_at / MIB))
    check(blocked_at < SIZE // 4,
          "backpressure: the backend blocked after %.1f MiB of %d MiB"
          % (blocked_at / MIB, SIZE // MIB))
    rss = rss_kb(wpid)
    print("# worker RSS %d kB, baseline %d kB" % (rss, base_rss))
    check(rss - base_rss < 16 * 1024,
          "the worker's RSS grew by %d kB (< 16 MiB) while the client did not read"
          % (rss - base_rss))

    # the client reads again: the relay must resume and deliver everything
    while True:
        try:
            chunk = s.recv(1 << 20)
        except ssl.SSLZeroReturnError:
            break
        if not chunk:
            break
        digest.update(chunk)
        got += len(chunk)
    s.close()
    check(got == SIZE and digest.hexdigest() == want,
          "after resuming, the client got all %d bytes with the right sha256 (%d bytes)"
          % (SIZE, got))
    line = tf.wait_access(2)[-1]
    m = re.search(r" out=(\d+) ", line)
    check('reason="closed"' in line and m and int(m.group(1)) >= SIZE,
          "the download ended cleanly, all of it counted: %s" % line)
    check(rss_kb(wpid) - base_rss < 16 * 1024, "the worker's RSS is still flat afterwards")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
