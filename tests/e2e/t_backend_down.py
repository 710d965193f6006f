"""Backends that are not there: a closed TCP port, a missing UNIX socket, and
one that never accepts (connect_timeout). Each time the client's handshake
completes and its connection is then closed cleanly (close_notify, no hang),
and the access log says why. A working UNIX-socket backend is served, a good
host still works afterwards, and the worker leaks no descriptor."""
import os
import socket
import socketserver
import ssl
import subprocess
import threading

from tf_clients import client_context, http_get
from tf_faults import blackhole
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import (check, check_eventually, cleanup, free_port, run, tmpdir, wait_for,
                    wait_stable)


class UnixHttpBackend:
    """A threaded HTTP/1.0-ish server on a UNIX socket: answers any request
    with "unix backend PATH\\n" and closes."""

    def __init__(self, path):
        self.path = path
        self.requests = 0
        backend = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data = b""
                while b"\r\n\r\n" not in data:
                    b = self.request.recv(4096)
                    if not b:
                        return
                    data += b
                backend.requests += 1
                target = data.split(b" ")[1]
                body = b"unix backend " + target + b"\n"
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                                     b"Connection: close\r\n\r\n" % len(body) + body)

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        cleanup(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()




def connects_within(port, seconds):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=seconds).close()
        return True
    except OSError:
        return False


def handshake_then_close(port, sni, ctx, timeout=10.0):
    """Handshake, then read until the connection ends. Returns (handshake
    done, how it ended): "close_notify", "eof" (TCP FIN without close_notify),
    "reset", "timeout" or "data" (the server sent application data)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)
    except (OSError, ssl.SSLError) as e:
        raw.close()
        return False, "handshake failed: %s" % e
    try:
        b = s.recv(4096)
        return True, ("data" if b else "close_notify")
    except ssl.SSLZeroReturnError:
        return True, "close_notify"
    except ssl.SSLEOFError:
        return True, "eof"
    except socket.timeout:
        return True, "timeout"
    except ConnectionResetError:
        return True, "reset"
    finally:
        s.close()


def main():
    d = tmpdir()
    ca = CA(d)
    ctx = client_context(verify_ca=ca.crt)
    closed_port = free_port()  # nothing listens there
    missing = os.path.join(d, "missing.sock")
    unix_path = os.path.join(d, "app.sock")
    ub = UnixHttpBackend(unix_path)
    good = HttpBackend("good")
    bh, bh_port = blackhole()
    check(not connects_within(bh_port, 0.5),
          "set-up: the blackhole listener completes no further TCP handshake")

    hosts = {}
    for label, backend, extra in (
            ("refused", "127.0.0.1:%d" % closed_port, {}),
            ("nosock", "unix:" + missing, {}),
            ("hole", "127.0.0.1:%d" % bh_port, {"connect_timeout": "500ms"}),
            ("unix", "unix:" + unix_path, {}),
            ("good", "127.0.0.1:%d" % good.port, {})):
        cert = ca.host_cert(label, [label + ".test"])
        hosts[label] = dict({"cert": cert[0], "key": cert[1], "backend": backend}, **extra)
    tf = Tlsfront(d, hosts)
    nlog = 0

    body = http_get(tf.port, "good.test", "/warm", ctx)
    check(body == b"backend good /warm\n", "the good host serves (%r)" % body)
    nlog += 1
    tf.wait_access(nlog)
    wpid = wait_for(tf.workers, what="the worker process")[0]
    # the access line is written just before the connection's fds are closed
    base_fds = wait_stable(lambda: tf.fd_count(wpid), polls=3, interval=0.05,
                           what="the worker's fd count to settle")

    # 1. closed TCP port
    ok, how = handshake_then_close(tf.port, "refused.test", ctx)
    check(ok, "refused: the client's handshake completes (%s)" % how)
    check(how == "close_notify", "refused: the client sees close_notify, not a hang (%s)"
          % how)
    nlog += 1
    line = tf.wait_access(nlog)[-1]
    check("host=refused" in line and 'reason="backend connect failed: ' in line and
          "refused" in line, "refused: the access log says why: %s" % line)

    # the same with curl: an empty reply, promptly, not a TLS error or a hang
    r = subprocess.run(["curl", "-sS", "--cacert", ca.crt, "--max-time", "10", "--resolve",
                        "refused.test:%d:127.0.0.1" % tf.port,
                        "https://refused.test:%d/" % tf.port],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 52, "refused: curl gets an empty reply (exit %d: %s)"
          % (r.returncode, r.stderr.strip()))
    nlog += 1
    tf.wait_access(nlog)

    # 2. UNIX socket path that does not exist
    ok, how = handshake_then_close(tf.port, "nosock.test", ctx)
    check(ok and how == "close_notify",
          "missing unix socket: handshake, then close_notify (%s, %s)" % (ok, how))
    nlog += 1
    line = tf.wait_access(nlog)[-1]
    check("host=nosock" in line and "backend=unix:%s" % missing in line and
          'reason="backend connect failed: No such file or directory"' in line,
          "missing unix socket: the access log gives the errno: %s" % line)

    # 3. a backend that never accepts: connect_timeout
    ok, how = handshake_then_close(tf.port, "hole.test", ctx)
    check(ok and how == "close_notify",
          "connect timeout: handshake, then close_notify (%s, %s)" % (ok, how))
    nlog += 1
    line = tf.wait_access(nlog)[-1]
    check("host=hole" in line and 'reason="backend connect timeout"' in line,
          "connect timeout: the access log says so: %s" % line)
    ms = int(line.split(" ms=")[1].split()[0])
    check(ms >= 450, "connect timeout: tlsfront waited connect_timeout (ms=%d)" % ms)

    # 4. a working UNIX-socket backend
    body = http_get(tf.port, "unix.test", "/over-unix", ctx)
    check(body == b"unix backend /over-unix\n" and ub.requests == 1,
          "a unix: backend is served (%r, %d requests)" % (body, ub.requests))
    nlog += 1
    line = tf.wait_access(nlog)[-1]
    check("backend=unix:%s" % unix_path in line and 'reason="closed"' in line,
          "the access log names the unix backend: %s" % line)

    # 5. still serving, and no descriptor left behind
    for i in range(3):
        body = http_get(tf.port, "good.test", "/after%d" % i, ctx)
        check(body == b"backend good /after%d\n" % i, "the good host still serves (%r)"
              % body)
    nlog += 3
    tf.wait_access(nlog)
    check(tf.workers() == [wpid], "the worker survived all of it")
    check_eventually(lambda: tf.fd_count(wpid) == base_fds,
                     "the worker's fd count is back to its baseline %d" % base_fds, timeout=5)
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")
    bh.close()


run(main)
