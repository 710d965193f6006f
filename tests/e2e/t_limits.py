"""Limits:
- [global] max_connections: beyond it a new connection is closed at once
  (before any TLS), and served again once a connection has gone;
- a host's max_connections: its clients beyond the limit are refused during
  the handshake, another host on the same port is not affected;
- out of file descriptors (run under prlimit --nofile=64): the worker pauses
  accepting instead of spinning (its CPU time stays low while connections
  wait), and serves again once descriptors are free."""
import os
import socket
import ssl
import subprocess
import time

from tf_clients import client_context, http_get
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, check_eventually, cleanup, run, tmpdir, wait_for


def tls_open(port, sni):
    return client_context().wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                                 timeout=10),
                                        server_hostname=sni)


def closed_at_once(port):
    """Connect and see the connection closed by tlsfront without a handshake."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.settimeout(5)
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def served(port, sni, path):
    """One request succeeds (False while tlsfront still refuses)."""
    try:
        return http_get(port, sni, path) == ("backend x %s\n" % path).encode()
    except (OSError, ssl.SSLError):
        return False


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    d = tmpdir()
    ca = CA(d)
    a = ca.host_cert("a", ["a.test"])
    b = ca.host_cert("b", ["b.test"])
    be = HttpBackend("x")
    backend = "127.0.0.1:%d" % be.port

    # 1. global max_connections = 3 (one worker: its share is all of it)
    os.makedirs(os.path.join(d, "g"))
    tf = Tlsfront(os.path.join(d, "g"), {
        "a": {"cert": a[0], "key": a[1], "backend": backend},
    }, global_extra={"max_connections": "3"})
    held = [tls_open(tf.port, "a.test") for _ in range(3)]
    check(closed_at_once(tf.port), "a 4th connection is closed at once")
    tf.wait_log(r"max_connections reached", what="the refusal in the log")
    held.pop().close()
    check_eventually(lambda: served(tf.port, "a.test", "/again"),
                     "served again once a connection has gone")
    for s in held:
        s.close()
    tf.stop()

    # 2. host max_connections = 2: host a refuses its 3rd client, host b serves
    os.makedirs(os.path.join(d, "h"))
    tf = Tlsfront(os.path.join(d, "h"), {
        "a": {"cert": a[0], "key": a[1], "backend": backend, "max_connections": "2"},
        "b": {"cert": b[0], "key": b[1], "backend": backend},
    })
    held = [tls_open(tf.port, "a.test") for _ in range(2)]
    try:
        tls_open(tf.port, "a.test").close()
        refused = False
    except (ssl.SSLError, OSError):
        refused = True
    check(refused, "host a's 3rd client is refused during the handshake")
    tf.wait_log(r'host=a .*reason="handshake failed: host max_connections reached"',
                what="the reason in the access line")
    check(http_get(tf.port, "b.test", "/b") == b"backend x /b\n",
          "host b on the same port is not affected")
    held.pop().close()
    check_eventually(lambda: served(tf.port, "a.test", "/a"),
                     "host a serves again once one of its connections has gone")
    for s in held:
        s.close()
    tf.stop()

    # 3. EMFILE: 64 descriptors in all
    os.makedirs(os.path.join(d, "e"))
    tf = Tlsfront(os.path.join(d, "e"), {
        "a": {"cert": a[0], "key": a[1], "backend": backend},
    }, start=False)
    logf = open(tf.log_path, "ab")
    tf.logf = logf
    tf.proc = subprocess.Popen(["prlimit", "--nofile=64:64", TLSFRONT, "-c", tf.main],
                               stdout=logf, stderr=subprocess.STDOUT)
    cleanup(tf.kill)
    tf.wait_log(r"listening on", what="tlsfront under prlimit")
    worker = wait_for(lambda: tf.workers(), 10, "the worker")[0]
    socks = []
    for _ in range(90):   # more than the worker can hold
        s = socket.create_connection(("127.0.0.1", tf.port), timeout=10)
        socks.append(s)
    cleanup(lambda: [s.close() for s in socks])
    tf.wait_log(r"accept on .*: Too many open files; pausing accepts",
                what="the EMFILE pause in the log")
    c0 = cpu_seconds(worker)
    time.sleep(1.0)   # measuring CPU use over a second: this sleep is the measurement
    used = cpu_seconds(worker) - c0
    check(used < 0.3, "the worker does not spin while out of descriptors: %.2fs CPU in 1s"
          % used)
    for s in socks:
        s.close()
    socks.clear()
    check_eventually(lambda: served(tf.port, "a.test", "/e"),
                     "served again once descriptors are free", timeout=20)
    check(tf.proc.poll() is None and worker in tf.workers(), "the same worker is alive")
    tf.stop()


run(main)
