"""Timeouts and abrupt clients:
- a client that sends nothing is closed at the listener's shortest
  handshake_timeout; one that has named (by SNI) a host with a longer
  handshake_timeout gets that host's time;
- an idle relayed connection is closed at idle_timeout;
- a client that resets its connection ends it at once (not at idle_timeout),
  even while its backend stays silent;
- a second tlsfront on the same address refuses to start instead of sharing
  the port through SO_REUSEPORT.
Times are only checked from below (never "faster than"), so a slow machine
cannot fail them."""
import re
import socket
import ssl
import struct
import subprocess
import time

from tf_clients import client_context
from tf_peers import TcpServer
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import TIME_SCALE, check, cleanup, run, scaled_duration, tmpdir, wait_for


class SilentBackend(TcpServer):
    """Accepts and reads, never answers, never closes; counts EOFs seen."""

    def __init__(self):
        self.eofs = 0
        self.conns = []
        super().__init__(backlog=16)

    def serve(self, c):
        self.conns.append(c)
        try:
            while c.recv(65536):
                pass
            self.eofs += 1
        except OSError:
            pass


def access_for(tf, port):
    """The access line of the client connection from local port `port`."""
    for l in tf.access_lines():
        if "client=127.0.0.1:%d " % port in l:
            return l
    return None


def wait_access_for(tf, port, timeout):
    return wait_for(lambda: access_for(tf, port), timeout, "access line of :%d" % port)


def client_hello_only(port, sni):
    """Connect and send a real ClientHello for sni, then say nothing more."""
    ctx = client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    cleanup(s.close)
    s.sendall(out.read())
    return s


def main():
    d = tmpdir()
    ca = CA(d)
    fast = ca.host_cert("fast", ["fast.test"])
    slow = ca.host_cert("slow", ["slow.test"])
    idle = ca.host_cert("idle", ["idle.test"])
    be = SilentBackend()
    backend = "127.0.0.1:%d" % be.port
    # the handshake timeouts are stretched under valgrind (TIME_SCALE): the
    # listener's shortest also limits the working clients of the other hosts
    tf = Tlsfront(d, {
        "fast": {"cert": fast[0], "key": fast[1], "backend": backend,
                 "handshake_timeout": scaled_duration(500)},
        "slow": {"cert": slow[0], "key": slow[1], "backend": backend,
                 "handshake_timeout": scaled_duration(3000)},
        "idle": {"cert": idle[0], "key": idle[1], "backend": backend,
                 "idle_timeout": "1s"},
    }, defaults={"idle_timeout": "60s"})

    # 1. silence: the shortest handshake_timeout of the listener
    s = socket.create_connection(("127.0.0.1", tf.port))
    cleanup(s.close)
    t0 = time.monotonic()
    line = wait_access_for(tf, s.getsockname()[1], 20)
    spent = time.monotonic() - t0
    check('reason="handshake timeout"' in line and "host=-" in line,
          "a silent client is closed with reason handshake timeout: %s" % line)
    check(spent >= 0.45 * TIME_SCALE,
          "not before the shortest handshake_timeout (%s): %.2fs" % (scaled_duration(500), spent))

    # 2. a ClientHello naming the host with handshake_timeout = 3s, then silence
    t0 = time.monotonic()
    s = client_hello_only(tf.port, "slow.test")
    line = wait_access_for(tf, s.getsockname()[1], 20)
    spent = time.monotonic() - t0
    check('reason="handshake timeout"' in line and "host=slow" in line,
          "a stalled handshake for host slow ends with handshake timeout: %s" % line)
    check(spent >= 2.9 * TIME_SCALE, "host slow gets its own %s, not the listener's %s: %.2fs"
          % (scaled_duration(3000), scaled_duration(500), spent))

    # 3. idle_timeout = 1s on a relayed connection where nobody says anything
    ctx = client_context()
    raw = socket.create_connection(("127.0.0.1", tf.port), timeout=30)
    c = ctx.wrap_socket(raw, server_hostname="idle.test")
    cleanup(c.close)
    wait_for(lambda: len(be.conns) >= 1, 10, "backend connection for idle.test")
    t0 = time.monotonic()
    line = wait_access_for(tf, c.getsockname()[1], 20)
    spent = time.monotonic() - t0
    check('reason="idle timeout"' in line and "host=idle" in line,
          "an idle connection is closed with reason idle timeout: %s" % line)
    check(spent >= 0.9, "not before idle_timeout (1s): %.2fs" % spent)
    try:
        got = c.recv(100)
    except (ssl.SSLError, OSError) as e:
        got = repr(e)
    check(got == b"", "the idle client gets close_notify: %r" % got)

    # 4. a client reset mid-relay ends the connection at once (idle_timeout is 60s)
    raw = socket.create_connection(("127.0.0.1", tf.port), timeout=30)
    c = ctx.wrap_socket(raw, server_hostname="slow.test")
    c.sendall(b"GET / HTTP/1.1\r\n")  # half a request; the backend stays silent
    wait_for(lambda: len(be.conns) >= 2, 10, "backend connection for slow.test")
    lport = c.getsockname()[1]
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock = socket.socket(fileno=c.detach())
    sock.close()  # RST, no close_notify
    line = wait_access_for(tf, lport, 15)
    check("client" in line and "reset" in line.lower() and "idle" not in line,
          "a client reset ends the connection with its reason: %s" % line)
    wait_for(lambda: be.eofs >= 1, 10, "the backend connection to be closed")

    # 5. a second instance on the same address refuses to start
    log = d + "/second.log"
    with open(log, "w") as f:
        r = subprocess.run([TLSFRONT, "-c", tf.main], stdout=f, stderr=subprocess.STDOUT,
                           timeout=30)
    text = open(log).read()
    check(r.returncode == 1 and re.search(r"cannot listen on 127\.0\.0\.1:%d: Address already "
                                          r"in use" % tf.port, text),
          "a second tlsfront on the same address exits 1: rc %s %r" % (r.returncode, text))
    check(tf.proc.poll() is None, "the first instance keeps running")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
