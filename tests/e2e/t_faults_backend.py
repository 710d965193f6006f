"""Fault injection, backend side (issue #7): backends that refuse, never
accept, reset mid-response, never read, or trickle. Each fault runs through
tf_faults.fault_case, which checks what every fault must leave intact: the
main process and the same worker alive, the worker's fd count back to its
baseline, its RSS bounded, and a good client (another host, another backend)
served during the fault and right after it.

t_backend_down.py already checks the reasons of single refused / missing /
black-holed backends; here they come in bursts of concurrent clients, beside
a good client, with the leak checks. t_slow_reader.py checks the download
direction of backpressure; here it is the upload one."""
import hashlib
import socket
import ssl
import struct
import threading
import time

from tf_clients import client_context, tls_connect, unexpected_eof
from tf_faults import blackhole, burst, fault_case
from tf_peers import HttpBackend, TcpServer, pattern_bytes
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, check_eventually, cleanup, free_port, run, tmpdir, wait_for

MIB = 1024 * 1024
UPLOAD = 100 * MIB
GOOD = ("good.test", "/good", b"backend good /good\n")


def access_for(tf, port, host, since):
    """The access line of host's client connection from local port `port`,
    among the access lines after the first `since` (the good client makes
    thousands of connections: local ports come round again)."""
    for line in reversed(tf.access_lines()[since:]):
        if "client=127.0.0.1:%d host=%s " % (port, host) in line:
            return line
    return None


def wait_access_for(tf, port, host, since, timeout=20.0):
    return wait_for(lambda: access_for(tf, port, host, since), timeout,
                    "the access line of host %s from :%d" % (host, port))


def ms_of(line):
    return int(line.split(" ms=")[1].split()[0])


def connects_within(port, seconds):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=seconds).close()
        return True
    except OSError:
        return False


def handshake_then_close(port, sni, ctx, timeout=10.0):
    """Handshake, then read until the connection ends. Returns (local port,
    how it ended): "close_notify", "eof" (FIN without close_notify),
    "reset", "timeout", "data" or "handshake failed: ..."."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    lport = raw.getsockname()[1]
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)
    except (OSError, ssl.SSLError) as e:
        raw.close()
        return lport, "handshake failed: %s" % e
    try:
        return lport, ("data" if s.recv(4096) else "close_notify")
    except ssl.SSLZeroReturnError:
        return lport, "close_notify"
    except ssl.SSLError as e:
        if not unexpected_eof(e):
            raise
        return lport, "eof"
    except socket.timeout:
        return lport, "timeout"
    except ConnectionResetError:
        return lport, "reset"
    finally:
        s.close()




def read_head(c):
    """Read an HTTP request head from a plain socket; return its path."""
    data = b""
    while b"\r\n\r\n" not in data:
        b = c.recv(4096)
        if not b:
            return None
        data += b
    return data.split(b" ")[1].decode()


class ResetBackend(TcpServer):
    """GET /cut/N/ID: promises RESET_LEN bytes, sends N of them, waits until
    the test says the client has seen them (self.event(ID) set), then resets
    the connection (SO_LINGER 0: RST, no FIN). N = -1: resets at once."""

    RESET_LEN = 4 * MIB

    def __init__(self):
        self.events = {}
        self.resets = []   # one entry per reset (list.append is atomic)
        super().__init__()

    def event(self, ident):
        return self.events.setdefault(ident, threading.Event())

    def serve(self, c):
        try:
            path = read_head(c)
            _, _, n, ident = path.split("/")
            if int(n) >= 0:   # -1: reset at once, nothing sent
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                          % self.RESET_LEN + pattern_bytes(int(n), b"reset"))
                self.event(ident).wait(20)
        except (OSError, ValueError, AttributeError):
            pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        self.resets.append(1)


class NeverReads(TcpServer):
    """Accepts, then never reads and never closes (until the test ends)."""

    def __init__(self):
        self.conns = []
        super().__init__()
        cleanup(lambda: [c.close() for c in self.conns])

    def serve(self, c):
        self.conns.append(c)


class Trickler(TcpServer):
    """GET /slow/SIZE/CHUNK/MS: SIZE bytes of pattern_bytes(SIZE, b"slow"),
    CHUNK bytes at a time, MS milliseconds apart."""

    def serve(self, c):
        try:
            _, _, size, chunk, ms = read_head(c).split("/")
            size, chunk, ms = int(size), int(chunk), int(ms)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % size)
            data = pattern_bytes(size, b"slow")
            for i in range(0, size, chunk):
                c.sendall(data[i:i + chunk])
                time.sleep(ms / 1000)   # the fault itself: a slow backend's pacing
        except (OSError, ValueError, AttributeError):
            pass
        finally:
            c.close()


def read_rest(s):
    """Read a TLS socket to its end. Returns (bytes, how it ended:
    "close_notify", "eof" (FIN without close_notify), "reset", "timeout")."""
    data = bytearray()
    how = "close_notify"
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except ssl.SSLZeroReturnError:
        pass
    except ssl.SSLError as e:
        if not unexpected_eof(e):
            raise
        how = "eof"
    except (ConnectionResetError, BrokenPipeError):
        how = "reset"
    except socket.timeout:
        how = "timeout"
    return bytes(data), how


# ---------------------------------------------------------------- the faults

def backend_down(tf, ctx):
    """Connection refused: 3 bursts of 10 clients. connect_timeout is 30s
    and the clients wait at most 10s, so a close they see came from the
    refusal, not from the timer."""
    def fault(gc):
        since = len(tf.access_lines())
        results = []
        for _ in range(3):
            results += burst(lambda i: handshake_then_close(tf.port, "down.test", ctx), 10)
            gc.progress(1)
        hows = [r[1] for r in results]
        check(all(h == "close_notify" for h in hows),
              "down: all 30 clients are closed with close_notify, none left hanging: %r"
              % sorted(set(hows)))
        lines = [wait_access_for(tf, r[0], "down", since) for r in results]
        check(all("host=down" in l and 'reason="backend connect failed: Connection refused"'
                  in l for l in lines),
              "down: every access line says 'backend connect failed: Connection refused': %s"
              % lines[0])
    fault_case(tf, "backend down", fault, GOOD)


def backend_blackhole(tf, ctx):
    """A backend that completes no TCP handshake: connect_timeout (1s)."""
    def fault(gc):
        since = len(tf.access_lines())
        results = burst(lambda i: handshake_then_close(tf.port, "hole.test", ctx, 20), 5)
        gc.progress(1)
        hows = [r[1] for r in results]
        check(all(h == "close_notify" for h in hows),
              "black hole: the 5 clients are closed with close_notify: %r" % hows)
        lines = [wait_access_for(tf, r[0], "hole", since) for r in results]
        check(all("host=hole" in l and 'reason="backend connect timeout"' in l for l in lines),
              "black hole: every access line says 'backend connect timeout': %s" % lines[0])
        ms = [ms_of(l) for l in lines]
        check(min(ms) >= 950, "black hole: closed at connect_timeout (1s), not before: ms=%r"
              % ms)
    fault_case(tf, "backend black hole", fault, GOOD)


def backend_reset(tf, ctx, be):
    """The backend resets (RST) after sending part of a response: before
    any byte, right after the head, and after 1000 B, 64 KiB, 1 MiB of the
    body, two clients each, all at once."""
    cuts = [-1, 0, 1000, 64 * 1024, MIB] * 2

    def one(i):
        n = cuts[i]
        raw = socket.create_connection(("127.0.0.1", tf.port), timeout=15)
        lport = raw.getsockname()[1]
        s = ctx.wrap_socket(raw, server_hostname="reset.test", suppress_ragged_eofs=False)
        got = bytearray()
        try:
            s.sendall(b"GET /cut/%d/%d HTTP/1.1\r\nHost: reset.test\r\n\r\n" % (n, i))
            # the head and a first byte of the body (if any is sent), so
            # that the stream is under way; then the backend may reset
            while n >= 0 and (b"\r\n\r\n" not in got or
                              (n > 0 and got.endswith(b"\r\n\r\n"))):
                b = s.recv(65536)
                if not b:
                    break
                got += b
            be.event(str(i)).set()
            rest, how = read_rest(s)
        except ssl.SSLError as e:
            if not unexpected_eof(e):
                raise
            rest, how = b"", "eof"
        except (ConnectionResetError, BrokenPipeError):
            rest, how = b"", "reset"
        finally:
            be.event(str(i)).set()
            s.close()
        return lport, n, bytes(got + rest).partition(b"\r\n\r\n")[2], how

    def fault(gc):
        since = len(tf.access_lines())
        results = burst(one, len(cuts))
        gc.progress(1)
        bad = [r for r in results if r[0] == "exception"]
        check(not bad, "reset: every client got through its handshake and request: %r" % bad)
        hows = sorted({r[3] for r in results})
        check("timeout" not in hows, "reset: every client sees its connection end: %r" % hows)
        for lport, n, body, how in results:
            if len(body) > max(n, 0) or body != pattern_bytes(max(n, 1), b"reset")[:len(body)]:
                check(False, "reset: client %d got a correct prefix of the %d bytes sent "
                      "(%d bytes)" % (lport, n, len(body)))
        check(all(len(r[2]) < ResetBackend.RESET_LEN for r in results),
              "reset: every client got less than the promised Content-Length")
        lines = [wait_access_for(tf, r[0], "reset", since) for r in results]
        check(all("host=reset" in l and 'reason="backend reset"' in l for l in lines),
              "reset: every access line says 'backend reset': %s"
              % [l.split("reason=")[1] for l in lines if "backend reset" not in l][:3])
        check_eventually(lambda: len(be.resets) >= len(cuts),
                         "reset: the backend reset all %d connections" % len(cuts))
        return sorted((r[1], len(r[2]), r[3]) for r in results)
    seen = fault_case(tf, "backend reset", fault, GOOD)
    # tlsfront(8): no close_notify after a backend failure, so that a client
    # can tell the cut response from a whole one without a length to go by
    # (a reset before any byte may already fail the connect: that ends, as a
    # connect failure does, with close_notify and nothing relayed)
    check(all(how != "close_notify" for sent, _, how in seen if sent > 0),
          "reset: no client got close_notify after the backend's reset: %r" % seen)
    print("# reset: (bytes sent, bytes received, how it ended): %r" % seen)


def backend_never_reads(tf, ctx, be):
    """A client uploads 100 MiB to a backend that never reads: the relay
    stops reading from the client once 64 KiB wait for the backend, so the
    client's send stalls with most of the upload unsent (what is in flight
    sits in kernel socket buffers, not in tlsfront's memory). Then the
    client goes away; the connection, stuck with data for a backend that
    takes none, ends at the host's idle_timeout (4s)."""
    def fault(gc):
        since = len(tf.access_lines())
        s = tls_connect(tf.port, "sink.test", ctx, timeout=15)
        lport = s.getsockname()[1]
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: sink.test\r\nContent-Length: %d\r\n\r\n"
                  % UPLOAD)
        wait_for(lambda: be.conns, 10, "the backend connection")
        chunk = pattern_bytes(64 * 1024, b"upload")
        sent, idle = 0, 0
        s.settimeout(0.5)
        # stalled: no byte accepted for 3 windows of 0.5s in a row (a busy
        # machine may pause one; a working relay moves 100s of MB/s here).
        # The host's idle_timeout (4s) is longer, so it cannot end the
        # connection first.
        while sent < UPLOAD and idle < 3:
            try:
                sent += s.send(chunk)
                idle = 0
            except socket.timeout:
                idle += 1
        print("# never-reads: the client's send stalled after %.1f MiB" % (sent / MIB))
        check(sent < UPLOAD // 2,
              "never-reads: the client's send stalls (%.1f MiB of %d MiB accepted)"
              % (sent / MIB, UPLOAD // MIB))
        gc.progress(2)   # good clients are served while the upload is stuck
        s.close()
        line = wait_access_for(tf, lport, "sink", since)
        m = int(line.split(" in=")[1].split()[0])
        check("host=sink" in line and 'reason="idle timeout"' in line and m < UPLOAD // 2,
              "never-reads: the stuck connection ends at idle_timeout, %.1f MiB relayed: %s"
              % (m / MIB, line.split(" backend=")[1]))
    # 16 MiB: t_slow_reader.py's bound for the other direction; relaying
    # the upload through memory would need 100 MiB
    fault_case(tf, "backend never reads", fault, GOOD, rss_bound_kb=16 * 1024)


def backend_trickles(tf, ctx):
    """Four slow responses at once: 1 byte every 5 ms, 16 B every 10 ms,
    100 B every 10 ms, 1000 B every 30 ms (about 2 s each). Each arrives
    intact, and good clients are served meanwhile."""
    plans = [(400, 1, 5), (4000, 16, 10), (20000, 100, 10), (60000, 1000, 30)]

    def one(i):
        size, chunk, ms = plans[i]
        raw = socket.create_connection(("127.0.0.1", tf.port), timeout=30)
        lport = raw.getsockname()[1]
        s = ctx.wrap_socket(raw, server_hostname="slow.test", suppress_ragged_eofs=False)
        try:
            s.sendall(b"GET /slow/%d/%d/%d HTTP/1.1\r\nHost: slow.test\r\n\r\n"
                      % (size, chunk, ms))
            data, how = read_rest(s)
        finally:
            s.close()
        return lport, size, bytes(data).partition(b"\r\n\r\n")[2], how

    def fault(gc):
        since = len(tf.access_lines())
        box = {}
        t = threading.Thread(target=lambda: box.update(r=burst(one, len(plans))), daemon=True)
        t.start()
        gc.progress(3)   # while the four trickle
        t.join(60)
        results = box.get("r") or []
        check(len(results) == len(plans) and all(r[0] != "exception" for r in results),
              "trickle: the four slow requests ran (%r)" % [r[:2] for r in results])
        for lport, size, body, how in results:
            check(body == pattern_bytes(size, b"slow") and how == "close_notify",
                  "trickle: %d bytes arrive intact, then close_notify (%d bytes, sha256 %s, %s)"
                  % (size, len(body), hashlib.sha256(body).hexdigest()[:12], how))
            line = wait_access_for(tf, lport, "slow", since)
            check('reason="closed"' in line, "trickle: access line reason closed: %s"
                  % line.split(" backend=")[1])
        check(box.get("r") is not None and not t.is_alive(), "trickle: all four finished")
    fault_case(tf, "backend trickles", fault, GOOD)


def main():
    d = tmpdir()
    ca = CA(d)
    ctx = client_context(verify_ca=ca.crt)
    good = HttpBackend("good")
    reset = ResetBackend()
    sink = NeverReads()
    slow = Trickler()
    _, hole = blackhole()
    check(not connects_within(hole, 0.5),
          "set-up: the black-hole listener completes no further TCP handshake")
    hosts = {}
    for label, port, extra in (
            ("good", good.port, {}),
            ("down", free_port(), {"connect_timeout": "30s"}),   # nothing listens there
            ("hole", hole, {"connect_timeout": "1s"}),
            ("reset", reset.port, {}),
            ("sink", sink.port, {"idle_timeout": "4s"}),
            ("slow", slow.port, {})):
        cert = ca.host_cert(label, [label + ".test"])
        hosts[label] = dict({"cert": cert[0], "key": cert[1],
                             "backend": "127.0.0.1:%d" % port}, **extra)
    tf = Tlsfront(d, hosts, workers=1)
    backend_down(tf, ctx)
    backend_blackhole(tf, ctx)
    backend_reset(tf, ctx, reset)
    backend_never_reads(tf, ctx, sink)
    backend_trickles(tf, ctx)
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
