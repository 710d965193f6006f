"""Two workers: both run and serve; a worker killed with SIGKILL is replaced
and clients are served throughout. Half-close through the relay, both ways:
the client's close_notify reaches the backend as EOF while the reply still
comes back, and a backend's EOF reaches the client as close_notify while the
client can still send."""
import hashlib
import os
import re
import signal
import socket
import ssl

from tf_clients import client_context, http_get, unexpected_eof
from tf_peers import HttpBackend, TcpServer, pattern_bytes
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, check_eventually, cleanup, run, tmpdir, wait_for, wait_stable

MIB = 1024 * 1024


class BioClient:
    """A TLS client over ssl.MemoryBIO, so that it can send close_notify
    (SSL_shutdown) and go on reading, which SSLSocket.unwrap() cannot."""

    def __init__(self, port, sni, ctx, timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cleanup(self.sock.close)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        self.stash = bytearray()
        self._io(self.obj.do_handshake)

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _io(self, fn, *args):
        while True:
            try:
                r = fn(*args)
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                b = self.sock.recv(65536)
                if b:
                    self.inc.write(b)
                else:
                    self.inc.write_eof()

    def send(self, data):
        view = memoryview(data)
        while view:
            n = self._io(self.obj.write, view[:65536])
            view = view[n:]

    def close_notify(self):
        """Send close_notify; reading stays possible."""
        # Python's unwrap() calls SSL_shutdown() a second time, which reads:
        # application data already received would then be fatal. Take it first.
        while True:
            try:
                self.stash += self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def recv(self):
        """Application data, b"" on the peer's close_notify; a TCP EOF without
        close_notify raises ssl.SSLEOFError."""
        if self.stash:
            b = bytes(self.stash)
            self.stash = bytearray()
            return b
        try:
            return self._io(self.obj.read, 65536)
        except ssl.SSLZeroReturnError:
            return b""

    def read_all(self):
        """Read until the end: (data, "close_notify" or how else it ended)."""
        data = bytearray()
        try:
            while True:
                b = self.recv()
                if not b:
                    return data, "close_notify"
                data += b
        except ssl.SSLError as e:
            if not unexpected_eof(e):
                raise
            return data, "EOF without close_notify"
        except socket.timeout:
            return data, "timeout"
        except OSError as e:
            return data, "error: %s" % e

    def close(self):
        self.sock.close()


class TcpBackend(TcpServer):
    """A TCP backend that runs handler(sock, record) for each connection in a
    thread; record is a dict the handler fills in, appended to self.records."""

    def __init__(self, handler):
        self.records = []
        self.sent = 0
        self.handler = handler
        super().__init__(backlog=16)

    def serve(self, c):
        rec = {}
        self.records.append(rec)
        self._run(c, rec)

    def _run(self, c, rec):
        try:
            self.handler(self, c, rec)
        except OSError as e:
            rec["error"] = e
        finally:
            c.close()
            rec["closed"] = True


def read_to_eof(c):
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(65536)
        if not b:
            return n, h.hexdigest()
        h.update(b)
        n += len(b)


def hash_echo(be, c, rec):
    """Read until EOF, then answer with the sha256 of what was read, close."""
    rec["eof_at"], digest = read_to_eof(c)
    c.sendall(digest.encode() + b"\n")


def greeter(be, c, rec):
    """Say hello, half-close (EOF to tlsfront), then read until EOF."""
    c.sendall(b"hello from the backend\n")
    c.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    rec["got"] = data


STREAM = 32 * MIB


def streamer(be, c, rec):
    """Send STREAM bytes at once, then read until EOF."""
    view = memoryview(pattern_bytes(STREAM, b"stream"))
    while view:
        n = c.send(view[:65536])
        be.sent += n
        view = view[n:]
    rec["eof_at"], _ = read_to_eof(c)


def workers_case(tf, ctx):
    pids = wait_for(lambda: len(tf.workers()) == 2 and tf.workers(),
                    what="two worker processes")
    check(len(set(pids)) == 2, "workers = 2 runs two worker processes %r" % pids)
    n = 0
    for i in range(20):
        body = http_get(tf.port, "w.test", "/before%d" % i, ctx)
        check(body == b"backend w /before%d\n" % i, "request %d before the kill is served" % i)
    n += 20
    lines = tf.wait_access(n)
    served_by = {int(m) for m in re.findall(r"tlsfront\[(\d+)\] worker \d info: access",
                                            "\n".join(lines))}
    check(served_by == set(pids), "both workers served requests (%r of %r)"
          % (served_by, pids))

    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    # no waiting for the replacement: these are served while it is gone or new
    for i in range(5):
        body = http_get(tf.port, "w.test", "/during%d" % i, ctx)
        check(body == b"backend w /during%d\n" % i, "request %d right after the kill is served"
              % i)
    n += 5
    rx = re.compile(r"main error: worker \d \(pid %d\) killed by signal 9; restarting" % victim)
    check_eventually(lambda: rx.search(tf.log()),
                     "the main process logs that it restarts the killed worker %d" % victim)
    new = check_eventually(lambda: len(tf.workers()) == 2 and victim not in tf.workers() and
                           tf.workers(), "two workers run again, %d not among them" % victim)
    fresh = set(new) - set(pids)
    check(len(fresh) == 1 and pids[1] in new,
          "a new worker pid %r replaced %d; the other worker %d lives on"
          % (sorted(fresh), victim, pids[1]))
    for i in range(20):
        body = http_get(tf.port, "w.test", "/after%d" % i, ctx)
        check(body == b"backend w /after%d\n" % i, "request %d after the restart is served" % i)
    n += 20
    lines = tf.wait_access(n)
    served_after = {int(m) for m in re.findall(r"tlsfront\[(\d+)\] worker \d info: access",
                                               "\n".join(lines[-20:]))}
    check(fresh <= served_after, "the replacement worker serves too (%r)" % served_after)
    check(len(lines) == n and all('reason="closed"' in l for l in lines),
          "every one of the %d requests was logged as closed cleanly" % n)


def half_close_case(tf, ctx, hash_be, greet_be, stream_be):
    # client -> backend: data, close_notify; the backend sees EOF and replies
    data = pattern_bytes(3 * MIB + 123, b"half")
    c = BioClient(tf.port, "echo.test", ctx)
    c.send(data)
    c.close_notify()
    reply, how = c.read_all()
    c.close()
    rec = wait_for(lambda: hash_be.records and "eof_at" in hash_be.records[0] and
                   hash_be.records[0], what="the echo backend to see EOF")
    check(rec["eof_at"] == len(data),
          "client close_notify reaches the backend as EOF after all %d bytes (%d)"
          % (len(data), rec["eof_at"]))
    check(bytes(reply) == hashlib.sha256(data).hexdigest().encode() + b"\n",
          "the backend's reply, sent after that EOF, still reaches the client: %r" % reply[:70])
    check(how == "close_notify", "then the client gets close_notify (%s)" % how)

    # client close_notify while a large response is still queued towards it
    c = BioClient(tf.port, "stream.test", ctx)
    got = bytearray(c.recv())
    blocked = wait_stable(lambda: stream_be.sent, polls=5, interval=0.2,
                          what="the streaming backend to block")
    check(blocked < STREAM, "the stream is held back by the client (%d of %d sent)"
          % (blocked, STREAM))
    c.send(b"bye")
    c.close_notify()
    rest, how = c.read_all()
    got += rest
    c.close()
    check(how == "close_notify", "the streamed response ends with close_notify (%s)" % how)
    check(len(got) == STREAM and bytes(got) == pattern_bytes(STREAM, b"stream"),
          "after the client's close_notify the rest of the stream still arrives (%d bytes)"
          % len(got))
    rec = wait_for(lambda: stream_be.records and "closed" in stream_be.records[0] and
                   stream_be.records[0], what="the streaming backend to finish")
    check(rec.get("eof_at") == 3, "and the backend saw the client's 3 bytes, then EOF (%r)"
          % rec)

    # backend -> client: the backend half-closes; the client gets close_notify
    # and can still send to the backend
    raw = socket.create_connection(("127.0.0.1", tf.port), timeout=15)
    s = ctx.wrap_socket(raw, server_hostname="greet.test", suppress_ragged_eofs=False)
    got = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                how = "close_notify"
                break
            got += b
    except ssl.SSLError as e:
        if not unexpected_eof(e):
            raise
        how = "EOF without close_notify"
    except socket.timeout:
        how = "timeout"
    check(got == b"hello from the backend\n" and how == "close_notify",
          "backend EOF reaches the client as close_notify (%r, %s)" % (got, how))
    s.sendall(b"still talking\n")
    s.unwrap().close()
    rec = wait_for(lambda: greet_be.records and "closed" in greet_be.records[0] and
                   greet_be.records[0], what="the greeter backend to finish")
    check(rec.get("got") == b"still talking\n",
          "after its own EOF the backend still receives what the client sends (%r)" % rec)


def main():
    d = tmpdir()
    ca = CA(d)
    ctx = client_context(verify_ca=ca.crt)
    web = HttpBackend("w")
    hash_be = TcpBackend(hash_echo)
    greet_be = TcpBackend(greeter)
    stream_be = TcpBackend(streamer)
    hosts = {}
    for label, port in (("w", web.port), ("echo", hash_be.port), ("greet", greet_be.port),
                        ("stream", stream_be.port)):
        cert = ca.host_cert(label, [label + ".test"])
        hosts[label] = {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % port}
    tf = Tlsfront(d, hosts, workers=2)
    workers_case(tf, ctx)
    n = len(tf.access_lines())
    half_close_case(tf, ctx, hash_be, greet_be, stream_be)
    lines = tf.wait_access(n + 3)[n:]
    check(len(lines) == 3 and all('reason="closed"' in l for l in lines),
          "the three half-closed connections ended cleanly: %r" % lines)
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
