"""SIGTERM drains: new connections are refused at once, a download in flight
completes intact, then tlsfront exits 0. With shutdown_timeout = 1s a
connection that stays idle is closed with reason "shutdown timeout" and
tlsfront still exits."""
import hashlib
import os
import signal
import socket
import ssl
import threading
import time

from tf_clients import client_context, tls_connect
from tf_peers import HttpBackend, pattern_sha256
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, check_eventually, run, tmpdir, wait_for

SIZE = 50 * 1024 * 1024
MIB = 1024 * 1024


def refused(port):
    """Is a new TCP connection to port refused (RST, not a hang in a backlog
    that nobody accepts from)?"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class SlowDownload(threading.Thread):
    """GET /bytes/SIZE, reading steadily (about 1 MiB per 50 ms). After
    gate_at bytes it waits for self.gate before reading on."""

    def __init__(self, port, sni, ctx, gate_at):
        super().__init__(daemon=True)
        self.port, self.sni, self.ctx, self.gate_at = port, sni, ctx, gate_at
        self.got = 0
        self.digest = hashlib.sha256()
        self.error = None
        self.end = None
        self.gate = threading.Event()

    def run(self):
        try:
            s = tls_connect(self.port, self.sni, self.ctx, timeout=30)
            s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                      % (SIZE, self.sni.encode()))
            head = bytearray()
            while b"\r\n\r\n" not in head:
                b = s.recv(65536)
                if not b:
                    raise EOFError("no response head")
                head += b
            body = bytes(head).partition(b"\r\n\r\n")[2]
            self.digest.update(body)
            self.got = len(body)
            tick = 0
            while True:
                if self.got >= self.gate_at:
                    self.gate.wait(30)
                try:
                    b = s.recv(65536)
                except ssl.SSLZeroReturnError:
                    b = b""
                if not b:
                    self.end = "eof"
                    break
                self.digest.update(b)
                self.got += len(b)
                tick += len(b)
                if tick >= MIB:  # pacing, not synchronisation
                    tick = 0
                    time.sleep(0.05)
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def drain_case(d, ca):
    cert = ca.host_cert("drain", ["drain.test"])
    b = HttpBackend("drain")
    tf = Tlsfront(d, {"drain": {"cert": cert[0], "key": cert[1],
                                "backend": "127.0.0.1:%d" % b.port}},
                  global_extra={"shutdown_timeout": "30s"})
    ctx = client_context(verify_ca=ca.crt)
    want = pattern_sha256(SIZE)
    workers = wait_for(tf.workers, what="the worker process")

    dl = SlowDownload(tf.port, "drain.test", ctx, gate_at=8 * MIB)
    dl.start()
    wait_for(lambda: dl.got >= 4 * MIB or dl.error, timeout=20,
             what="the download to get under way")
    check(dl.error is None, "the download is under way (%d bytes, %r)" % (dl.got, dl.error))
    tf.proc.send_signal(signal.SIGTERM)
    tf.wait_log(r"main info: signal 15: stopping", what="the main process to stop")
    tf.wait_log(r"worker 0 info: signal 15: draining 1 connections",
                what="the worker to drain its one connection")
    check_eventually(lambda: refused(tf.port), "new connections are refused after SIGTERM",
                     timeout=5)
    check(tf.proc.poll() is None and dl.got < SIZE and dl.end is None,
          "tlsfront is still running, draining the download (%d of %d bytes so far)"
          % (dl.got, SIZE))
    check(tf.workers() == workers, "the worker is still the same process")
    check(refused(tf.port), "a new connection is still refused during the drain")

    dl.gate.set()
    dl.join(40)
    check(not dl.is_alive(), "the download finished")
    check(dl.error is None and dl.end == "eof",
          "the download ended with a clean EOF (%r, %r)" % (dl.error, dl.end))
    check(dl.got == SIZE and dl.digest.hexdigest() == want,
          "the in-flight download completed intact (%d bytes, sha256 ok: %s)"
          % (dl.got, dl.digest.hexdigest() == want))
    try:
        rc = tf.proc.wait(20)
    except Exception:  # noqa: BLE001
        rc = None
    check(rc == 0, "tlsfront exits 0 after the drain (%r)" % rc)
    log = tf.log()
    acc = log.find(" access ")
    check(acc >= 0 and 'reason="closed"' in log[acc:].splitlines()[0] and
          log.find("main info: stopped") > acc,
          "the download's access line (reason closed) comes before the main process stops")


def timeout_case(d, ca):
    cert = ca.host_cert("idle", ["idle.test"])
    b = HttpBackend("idle")
    tf = Tlsfront(d, {"idle": {"cert": cert[0], "key": cert[1],
                               "backend": "127.0.0.1:%d" % b.port}},
                  global_extra={"shutdown_timeout": "1s"})
    ctx = client_context(verify_ca=ca.crt)
    s = tls_connect(tf.port, "idle.test", ctx, timeout=20)
    # half a request: the backend reads the request line, then waits for more
    s.sendall(b"GET /idle HTTP/1.1\r\n")
    wait_for(lambda: b.requests == 1, what="the backend to see the request line")
    tf.proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    tf.wait_log(r"worker 0 info: signal 15: draining 1 connections",
                what="the worker to drain its one connection")
    try:
        rc = tf.proc.wait(15)
    except Exception:  # noqa: BLE001
        rc = None
    took = time.monotonic() - start
    check(rc == 0, "with an idle connection, tlsfront still exits 0 (%r after %.1fs)"
          % (rc, took))
    log = tf.log()
    check("shutdown_timeout reached; closing 1 connections" in log,
          "the worker says shutdown_timeout ran out")
    lines = tf.access_lines()
    check(len(lines) == 1 and 'reason="shutdown timeout"' in lines[0] and "host=idle" in lines[0],
          "the idle connection's access line gives reason \"shutdown timeout\": %r" % lines)
    ms = int(lines[0].split(" ms=")[1].split()[0]) if lines else -1
    check(ms >= 900, "the idle connection was given shutdown_timeout first (ms=%d)" % ms)
    check("killing them" not in log, "the workers exited by themselves (no SIGKILL)")
    # the idle client sees its connection end instead of hanging
    s.settimeout(5)
    try:
        ended = s.recv(4096) == b""
    except (ssl.SSLError, OSError) as e:
        ended = not isinstance(e, socket.timeout)
    s.close()
    check(ended, "the idle client's connection was closed")


def main():
    d = tmpdir()
    ca = CA(d)
    d1 = os.path.join(d, "drain")
    d2 = os.path.join(d, "timeout")
    os.makedirs(d1)
    os.makedirs(d2)
    drain_case(d1, ca)
    timeout_case(d2, ca)


run(main)
