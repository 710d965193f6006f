"""Fault injection, client side (issue #7): clients that reset in the middle
of the handshake, stop half way through their ClientHello, trickle it a byte
a second from 500 connections (slowloris), or half-close. Each fault runs
through tf_faults.fault_case: the main process and the same worker alive, the
worker's fd count back to its baseline, its RSS bounded, and a good client
served during the fault and right after it.

The faulty clients connect from 127.0.0.2, so their access lines
(client=127.0.0.2:PORT) cannot be mistaken for the good client's.
t_timeouts.py covers a single silent client, a complete ClientHello then
silence, and a reset while relaying; t_workers.py covers half-close with
close_notify. Here: partial ClientHellos, resets at every point of the
handshake, many at once, and half-close by a bare TCP FIN, with large data
after the other side's EOF."""
import hashlib
import resource
import select
import socket
import ssl
import struct
import threading
import time

from tf_clients import client_context, connect_from, unexpected_eof
from tf_faults import burst, fault_case
from tf_peers import HttpBackend, TcpServer, pattern_bytes
from tf_pki import CA
from tf_proc import Tlsfront, rss_kb
from tf_run import check, cleanup, run, tmpdir, wait_for

MIB = 1024 * 1024
FAULTY = "127.0.0.2"          # the source address of every faulty client
SLOWLORIS = 500
WAVES = 3
HANDSHAKE_TIMEOUT_MS = 2000
GOOD = ("good.test", "/good", b"backend good /good\n")


def client_hello(sni):
    """The bytes of a real ClientHello for sni (what Python's ssl sends)."""
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, outb, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def faulty_lines(tf, since):
    """Access lines of faulty clients logged after the first `since` lines,
    by local port."""
    out = {}
    for line in tf.access_lines()[since:]:
        if "client=%s:" % FAULTY in line:
            out[int(line.split("client=%s:" % FAULTY)[1].split()[0])] = line
    return out


def wait_faulty_lines(tf, since, ports, timeout=30.0):
    """Wait for the access lines of every local port in ports; return them."""
    ports = set(ports)
    lines = wait_for(lambda: (lambda m: m if ports <= set(m) else None)(faulty_lines(tf, since)),
                     timeout, "access lines of %d faulty clients" % len(ports))
    return {p: lines[p] for p in ports}


def reason_of(line):
    return line.split(' reason="')[1].rstrip('"')


def ms_of(line):
    return int(line.split(" ms=")[1].split()[0])


def reset(s):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def ended(s, timeout):
    """Wait up to timeout seconds for the peer to end s; return "eof",
    "reset" or "open" (still open when the time ran out)."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return "eof"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "open"


class BioClient:
    """A TLS client over ssl.MemoryBIO on a plain socket, so that it can end
    its side with a bare TCP FIN (no close_notify) and go on reading TLS."""

    def __init__(self, port, sni, ctx, timeout=20.0):
        self.sock = connect_from(FAULTY, port, timeout=timeout)
        cleanup(self.sock.close)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        self._io(self.obj.do_handshake)

    def _io(self, fn, *args):
        while True:
            try:
                r = fn(*args)
                data = self.out.read()
                if data:
                    self.sock.sendall(data)
                return r
            except ssl.SSLWantReadError:
                data = self.out.read()
                if data:
                    self.sock.sendall(data)
                b = self.sock.recv(65536)
                if b:
                    self.inc.write(b)
                else:
                    self.inc.write_eof()

    def send(self, data):
        view = memoryview(data)
        while view:
            view = view[self._io(self.obj.write, view[:65536]):]

    def read_all(self):
        """Read to the end: (data, "close_notify" | "eof" | "reset" | "timeout")."""
        data = bytearray()
        try:
            while True:
                b = self._io(self.obj.read, 65536)
                if not b:   # SSLObject.read gives b"" at the peer's close_notify
                    return bytes(data), "close_notify"
                data += b
        except ssl.SSLZeroReturnError:
            return bytes(data), "close_notify"
        except ssl.SSLError as e:
            if not unexpected_eof(e):
                raise
            return bytes(data), "eof"
        except ConnectionResetError:
            return bytes(data), "reset"
        except socket.timeout:
            return bytes(data), "timeout"


class Echo(TcpServer):
    """Reads to EOF, answers with the sha256 hex of what it read, closes.
    self.seen: the byte counts it read, one per connection."""

    def __init__(self):
        self.seen = []
        super().__init__()

    def serve(self, c):
        h, n = hashlib.sha256(), 0
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                h.update(b)
                n += len(b)
            self.seen.append(n)
            c.sendall(h.hexdigest().encode())
        except OSError:
            pass
        finally:
            c.close()


class Greeter(TcpServer):
    """Says hello, half-closes (FIN to tlsfront), then reads to EOF and
    records the sha256 hex of what it read in self.got."""

    def __init__(self):
        self.got = []
        super().__init__()

    def serve(self, c):
        try:
            c.sendall(b"hello from the backend\n")
            c.shutdown(socket.SHUT_WR)
            h = hashlib.sha256()
            while True:
                b = c.recv(65536)
                if not b:
                    break
                h.update(b)
            self.got.append(h.hexdigest())
        except OSError:
            pass
        finally:
            c.close()


# ---------------------------------------------------------------- the faults

def reset_in_handshake(tf):
    """TCP RST at every point of the handshake: at once, after 1 byte, 5
    bytes (a record header), half the ClientHello, all but its last byte,
    all of it, and after the server's first flight has arrived."""
    hello = client_hello("victim.test")
    cuts = [0, 1, 5, len(hello) // 2, len(hello) - 1, len(hello), "flight"]

    def one(i):
        cut = cuts[i % len(cuts)]
        s = connect_from(FAULTY, tf.port)
        port = s.getsockname()[1]
        if cut == "flight":
            s.sendall(hello)
            wait_for(lambda: s.recv(65536), 10, "the server's first flight")
        elif cut:
            s.sendall(hello[:cut])
        reset(s)
        return port

    def fault(gc):
        since = len(tf.access_lines())
        ports = []
        for _ in range(3):
            ports += burst(one, 2 * len(cuts))
            gc.progress(1)
        check(all(isinstance(p, int) for p in ports),
              "rst in handshake: the %d clients connected and reset (%r)"
              % (len(ports), [p for p in ports if not isinstance(p, int)][:2]))
        lines = wait_faulty_lines(tf, since, ports)
        reasons = sorted({reason_of(l) for l in lines.values()})
        print("# rst in handshake: reasons %r" % reasons)
        check(all(r.startswith("handshake failed: ") and "timeout" not in r for r in reasons),
              "rst in handshake: every connection ends at its reset, as a failed handshake, "
              "not at handshake_timeout: %r" % reasons)
    fault_case(tf, "client rst in handshake", fault, GOOD)


def half_hello(tf):
    """Ten clients send half a ClientHello, then nothing: each is closed at
    handshake_timeout (2s)."""
    hello = client_hello("victim.test")

    def fault(gc):
        since = len(tf.access_lines())
        socks = [connect_from(FAULTY, tf.port) for _ in range(10)]
        for s in socks:
            cleanup(s.close)
            s.sendall(hello[:len(hello) // 2])
        gc.progress(1)
        hows = [ended(s, 20) for s in socks]
        check(all(h in ("eof", "reset") for h in hows),
              "half hello: tlsfront closes every stalled handshake (%r)" % hows)
        lines = wait_faulty_lines(tf, since, [s.getsockname()[1] for s in socks])
        check(all(reason_of(l) == "handshake timeout" for l in lines.values()),
              "half hello: every access line says 'handshake timeout': %r"
              % sorted({reason_of(l) for l in lines.values()}))
        ms = sorted(ms_of(l) for l in lines.values())
        check(ms[0] >= HANDSHAKE_TIMEOUT_MS - 50,
              "half hello: closed at handshake_timeout (%d ms), not before: ms=%d..%d"
              % (HANDSHAKE_TIMEOUT_MS, ms[0], ms[-1]))
        for s in socks:
            s.close()
    fault_case(tf, "client half hello", fault, GOOD)


def slowloris(tf):
    """500 connections, each sending one byte of a ClientHello a second:
    all closed at handshake_timeout (2s) while a good client is served.
    Three waves one after the other, so that a leak would add up."""
    hello = client_hello("victim.test")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOWLORIS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOWLORIS + 1000), hard))

    def wave(gc, k):
        since = len(tf.access_lines())
        worker = tf.workers()[0]
        socks, ports = [], []
        for _ in range(SLOWLORIS):
            s = connect_from(FAULTY, tf.port)
            cleanup(s.close)
            s.setblocking(False)
            socks.append(s)
            ports.append(s.getsockname()[1])
        sent = {s: 0 for s in socks}
        how = {}
        # tlsfront holds them all: one descriptor each in the worker
        wait_for(lambda: tf.fd_count(worker) >= SLOWLORIS, 10,
                 "the worker to accept all 500 (%d fds right after the connects)"
                 % tf.fd_count(worker))
        gc.progress(1)
        open_meanwhile = sum(1 for s in socks if not _closed_now(s))
        check(open_meanwhile > 0,
              "slowloris %d: a good client was served while %d slow connections were open"
              % (k, open_meanwhile))
        deadline = time.monotonic() + 30
        next_byte = time.monotonic()
        while len(how) < SLOWLORIS and time.monotonic() < deadline:
            if time.monotonic() >= next_byte:
                # the fault's pacing: one byte a second per connection
                next_byte += 1.0
                for s in socks:
                    if s not in how and sent[s] < len(hello):
                        try:
                            sent[s] += s.send(hello[sent[s]:sent[s] + 1])
                        except BlockingIOError:
                            pass
                        except (BrokenPipeError, ConnectionResetError):
                            how[s] = "reset"
            live = [s for s in socks if s not in how]
            r, _, _ = select.select(live, [], [], max(0.0, min(0.2, next_byte -
                                                                time.monotonic())))
            for s in r:
                try:
                    if s.recv(65536) == b"":
                        how[s] = "eof"
                except ConnectionResetError:
                    how[s] = "reset"
                except BlockingIOError:
                    pass
        kinds = list(how.values())
        check(len(how) == SLOWLORIS,
              "slowloris %d: all %d slow connections saw EOF or a reset (%d did: %d eof, "
              "%d reset)" % (k, SLOWLORIS, len(how), kinds.count("eof"), kinds.count("reset")))
        check(max(sent.values()) < len(hello),
              "slowloris %d: none got to finish its ClientHello (at most %d of %d bytes sent)"
              % (k, max(sent.values()), len(hello)))
        lines = wait_faulty_lines(tf, since, ports)
        reasons = sorted({reason_of(l) for l in lines.values()})
        check(reasons == ["handshake timeout"],
              "slowloris %d: all %d access lines say 'handshake timeout' (%r)"
              % (k, len(lines), reasons))
        for s in socks:
            s.close()
        wait_for(lambda: tf.fd_count(worker) < 50, 10, "the worker to close them all")
        return rss_kb(worker)

    def fault(gc):
        rss = [rss_kb(tf.workers()[0])]
        for k in range(1, WAVES + 1):
            rss.append(wave(gc, k))
        print("# slowloris: worker RSS before and after each wave: %r kB" % rss)
    # Each handshake in flight holds an SSL with its record buffers and its
    # handshake buffer: ~48 KiB (OpenSSL 3.0, measured), so a wave of 500
    # takes ~24 MiB. glibc keeps that heap when they close, and each later
    # wave adds a few MiB of fragmentation, less each time (measured after
    # 1, 2, 3, 8 waves: +24, +30, +32, +36 MiB). Bound: 96 KiB per slow
    # connection, 47 MiB; a leak of each wave's connections would be 72 MiB
    # after three waves.
    fault_case(tf, "slowloris", fault, GOOD, rss_bound_kb=SLOWLORIS * 96)


def _closed_now(s):
    """Has the peer closed non-blocking socket s already (without waiting)?"""
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def half_close(tf, ctx, echo, greeter):
    """Half-close both ways, five connections each way at once.
    Client first, by a bare TCP FIN (no close_notify): 1 MiB, FIN; the
    backend reads to EOF and only then answers; the answer and a
    close_notify still reach the client.
    Backend first: it says hello and half-closes; the client gets the hello
    and a close_notify, then sends 1 MiB, which still reaches the backend,
    then ends with a FIN. Every connection then ends cleanly (closed)."""
    n = 5

    def client_first(i):
        data = pattern_bytes(MIB + i, b"half%d" % i)
        c = BioClient(tf.port, "echo.test", ctx)
        port = c.sock.getsockname()[1]
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        reply, how = c.read_all()
        c.sock.close()
        return port, reply == hashlib.sha256(data).hexdigest().encode(), how

    def backend_first(i):
        data = pattern_bytes(MIB + i, b"back%d" % i)
        c = BioClient(tf.port, "greet.test", ctx)
        port = c.sock.getsockname()[1]
        hello, how = c.read_all()
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        c.sock.settimeout(20)
        rest = c.sock.recv(65536)   # tlsfront closes after passing the FIN on
        c.sock.close()
        return port, hello, how, rest, hashlib.sha256(data).hexdigest()

    def fault(gc):
        since = len(tf.access_lines())
        box = {}
        t = threading.Thread(target=lambda: box.update(a=burst(client_first, n),
                                                         b=burst(backend_first, n)),
                             daemon=True)
        t.start()
        gc.progress(2)
        t.join(60)
        a, b = box.get("a") or [], box.get("b") or []
        check(len(a) == n and all(r[0] != "exception" for r in a),
              "half-close, client first: the %d clients ran (%r)" % (n, a[:1]))
        check(all(r[1] and r[2] == "close_notify" for r in a),
              "half-close, client first: after the client's FIN each gets the backend's "
              "answer about all its bytes, then close_notify (%r)" % [r[1:] for r in a])
        check(sorted(echo.seen) == [MIB + i for i in range(n)],
              "half-close, client first: the backend read every byte before EOF (%r)"
              % echo.seen)
        check(len(b) == n and all(r[0] != "exception" for r in b),
              "half-close, backend first: the %d clients ran (%r)" % (n, b[:1]))
        check(all(r[1] == b"hello from the backend\n" and r[2] == "close_notify" for r in b),
              "half-close, backend first: each client gets the hello, then close_notify (%r)"
              % sorted({(r[1], r[2]) for r in b}))
        check(all(r[3] == b"" for r in b),
              "half-close, backend first: after the client's FIN tlsfront ends the connection")
        # tlsfront is done once it has passed the FIN on; the backend reads
        # the rest after that
        wait_for(lambda: len(greeter.got) >= n, 20, "the greeter backends to read to EOF")
        check(sorted(greeter.got) == sorted(r[4] for r in b),
              "half-close, backend first: what the clients sent after the backend's EOF "
              "reached it intact (%d of %d)" % (len(set(greeter.got) & {r[4] for r in b}), n))
        lines = wait_faulty_lines(tf, since, [r[0] for r in a + b])
        check(all(reason_of(l) == "closed" for l in lines.values()),
              "half-close: all %d connections end with reason closed (%r)"
              % (len(lines), sorted({reason_of(l) for l in lines.values()})))
    fault_case(tf, "half-close", fault, GOOD)


def main():
    d = tmpdir()
    ca = CA(d)
    ctx = client_context(verify_ca=ca.crt)
    good = HttpBackend("good")
    echo = Echo()
    greeter = Greeter()
    hosts = {}
    for label, port in (("good", good.port), ("victim", good.port), ("echo", echo.port),
                        ("greet", greeter.port)):
        cert = ca.host_cert(label, [label + ".test"])
        hosts[label] = {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % port}
    # max_connections is 0 (no limit) by default: the 500 slowloris
    # connections are all taken in, as the fault wants
    tf = Tlsfront(d, hosts, workers=1,
                  defaults={"handshake_timeout": "%dms" % HANDSHAKE_TIMEOUT_MS})
    reset_in_handshake(tf)
    half_hello(tf)
    slowloris(tf)
    half_close(tf, ctx, echo, greeter)
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
