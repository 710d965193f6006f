"""Fault injection, process side (issue #7): running out of file descriptors,
SIGHUP every second under load, SIGTERM with transfers in flight.

- EMFILE (tlsfront under prlimit --nofile=64:64, as in t_limits.py, which
  checks the pause, the CPU and the recovery with a second-long look): here
  through tf_faults.fault_case, so also the worker's fd count back to its
  baseline, its RSS, the same worker alive; every flooding connection is
  accepted and logged in the end (none lost in the queue); and a good
  client that arrives while the worker is out of descriptors waits in the
  listen queue and is served once descriptors are free, instead of failing.
- a stopped worker (SIGSTOP) while 600 clients connect: the kernel queues
  them all (listen backlog 1024, not libevent's default 128), and after
  SIGCONT the worker serves every one, and the good client that waited.
- SIGHUP once a second for 10 s while good clients make new connections and
  keep-alive clients make many requests per connection (t_reload_load.py
  does this with h2load and 2 workers, without the leak checks): no request
  fails, every reload is logged, the old generations drain by themselves,
  the main process's fd count returns to its baseline.
- SIGTERM with four downloads and two uploads in flight (t_sigterm.py has
  one download): each completes intact (sha256), new connections are
  refused meanwhile, and tlsfront exits 0 without killing anybody."""
import hashlib
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

from tf_clients import client_context, connect_from, tls_connect
from tf_faults import fault_case
from tf_peers import HttpBackend, TcpServer, pattern_bytes, pattern_sha256
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import Fail, VALGRIND, check, check_eventually, cleanup, run, tmpdir, wait_for

MIB = 1024 * 1024
FAULTY = "127.0.0.2"     # source address of the flooding connections
FLOOD = 90               # more connections than 64 descriptors can hold
QUEUED = 600             # connections queued for a stopped worker (> 128, < 1024)
RELOADS = 10
GOOD = ("good.test", "/good", b"backend good /good\n")


def cpu_seconds(pid):
    """User + system CPU time of process pid so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def faulty_ports(tf, since):
    """Local ports of the FAULTY clients in the access lines after the first
    `since`."""
    return {int(l.split("client=%s:" % FAULTY)[1].split()[0])
            for l in tf.access_lines()[since:] if "client=%s:" % FAULTY in l}


def hosts_for(d, ca, backends):
    hosts = {}
    for label, port in backends:
        cert = ca.host_cert(label, [label + ".test"])
        hosts[label] = {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % port}
    return hosts


# ---------------------------------------------------------------- EMFILE

def emfile_case(d, ca, good):
    d = os.path.join(d, "emfile")
    os.makedirs(d)
    tf = Tlsfront(d, hosts_for(d, ca, [("good", good.port)]), workers=1, start=False)
    tf.logf = open(tf.log_path, "ab")
    tf.proc = subprocess.Popen(["prlimit", "--nofile=64:64", TLSFRONT, "-c", tf.main],
                               stdout=tf.logf, stderr=subprocess.STDOUT)
    cleanup(tf.kill)
    tf.wait_log(r"listening on", what="tlsfront under prlimit --nofile=64:64")
    pause_rx = r"accept on .*: Too many open files; pausing accepts"

    def fault(gc):
        since = len(tf.access_lines())
        worker = tf.workers()[0]
        paused = len(re.findall(pause_rx, tf.log()))
        # No good request may straddle the onset: one accepted with the last
        # free descriptor could not open its backend connection.
        gc.hold()
        socks = []
        for _ in range(FLOOD):
            s = connect_from(FAULTY, tf.port)
            cleanup(s.close)
            socks.append(s)
        tf.wait_log(pause_rx, count=paused + 1, what="the EMFILE pause in the log")
        # valgrind keeps a few descriptors at the top of the limit for itself
        check(tf.fd_count(worker) >= (50 if VALGRIND else 60),
              "emfile: the worker holds all the descriptors it may have (%d of 64)"
              % tf.fd_count(worker))
        ok = gc.ok
        gc.release()     # its next request waits in the listen queue
        c0, t0 = cpu_seconds(worker), time.monotonic()
        time.sleep(2.0)  # the CPU measurement window, not a wait for an event
        used, spent = cpu_seconds(worker) - c0, time.monotonic() - t0
        check(used < 0.5 * spent,
              "emfile: the worker does not spin while out of descriptors (%.2fs CPU in %.2fs)"
              % (used, spent))
        check(gc.ok == ok and not gc.errors,
              "emfile: meanwhile the good request waits in the listen queue, neither served "
              "nor failed (%d served, %r)" % (gc.ok - ok, gc.errors[:1]))
        ports = {s.getsockname()[1] for s in socks}
        for s in socks:
            s.close()
        gc.progress(1)   # raises if it failed
        print("# emfile: the good request that waited was served once descriptors were free")
        if VALGRIND:
            # valgrind takes descriptors of the 64 for itself and runs the
            # worker ~20x slower: the queue drain is checked in the plain
            # and sanitizer runs
            print("# emfile: under valgrind the check that every queued connection "
                  "is logged is left to the other runs")
            return
        check_eventually(lambda: ports <= faulty_ports(tf, since),
                         "emfile: all %d flooding connections were accepted and logged in the "
                         "end, none lost in the queue" % FLOOD, timeout=20)
    # 20 MiB as in the other faults: 60 connections in handshake take ~3 MiB
    fault_case(tf, "emfile", fault, GOOD, during=False)
    check(tf.stop() == 0, "emfile: tlsfront exits 0 on SIGTERM")


# ---------------------------------------------------------------- stalled worker

def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def stalled_worker_case(d, ca, good):
    """The only worker stops (SIGSTOP) while QUEUED clients connect: the
    kernel completes every TCP handshake and queues it (the listen backlog
    is 1024), none is dropped; after SIGCONT the worker takes them all and
    the good request that waited is served."""
    d = os.path.join(d, "stalled")
    os.makedirs(d)
    tf = Tlsfront(d, hosts_for(d, ca, [("good", good.port)]), workers=1)

    def fault(gc):
        since = len(tf.access_lines())
        worker = tf.workers()[0]
        gc.hold()
        ok = gc.ok
        os.kill(worker, signal.SIGSTOP)
        cleanup(lambda: os.kill(worker, signal.SIGCONT))
        wait_for(lambda: proc_state(worker) == "T", 10, "the worker to stop")
        socks = []
        for _ in range(QUEUED):
            s = socket.socket()
            cleanup(s.close)
            s.bind((FAULTY, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", tf.port))
            socks.append(s)
        gc.release()   # its next request waits in the queue too
        pending = set(socks)

        def connected():
            _, w, _ = select.select([], list(pending), [], 0.2)
            pending.difference_update(w)
            return not pending
        # a SYN that finds the queue full is dropped and retried after 1s,
        # 3s, ...: with libevent's default backlog of 128 most would still
        # be waiting here
        try:
            wait_for(connected, 10, "the connections to be queued")
        except Fail:
            pass
        errs = [s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) for s in socks]
        check(not pending and not any(errs) and proc_state(worker) == "T",
              "stalled: all %d connections were queued by the kernel while the worker "
              "was stopped (%d were not)" % (QUEUED, len(pending) + sum(1 for e in errs if e)))
        check(gc.ok == ok and not gc.errors,
              "stalled: meanwhile the good request waits, neither served nor failed "
              "(%d served, %r)" % (gc.ok - ok, gc.errors[:1]))
        os.kill(worker, signal.SIGCONT)
        ports = {s.getsockname()[1] for s in socks}
        for s in socks:
            s.close()
        gc.progress(1)   # raises if it failed
        print("# stalled: the good request that waited was served after SIGCONT")
        check_eventually(lambda: ports <= faulty_ports(tf, since),
                         "stalled: all %d queued connections were accepted and logged"
                         % QUEUED, timeout=20)
    # each of the 600 gets an SSL with its record buffers when accepted,
    # before it reads its EOF (~30 KiB each measured): 64 KiB each
    fault_case(tf, "stalled worker", fault, GOOD, during=False, rss_bound_kb=QUEUED * 64)
    check(tf.stop() == 0, "stalled: tlsfront exits 0 on SIGTERM")


# ---------------------------------------------------------------- SIGHUP

class KeepAliveBackend(TcpServer):
    """HTTP/1.1 with keep-alive: answers every request on a connection with
    "ka PATH\n" (Content-Length), until the client closes."""

    def serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                body = b"ka " + line.split(b" ")[1] + b"\n"
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) +
                          body)
        except OSError:
            pass
        finally:
            f.close()
            c.close()


class KeepAliveClient(threading.Thread):
    """PER_CONN requests on each TLS connection to ka.test, then a new
    connection, until halted; counts ok requests, connections, errors."""

    PER_CONN = 25

    def __init__(self, port, num):
        super().__init__(daemon=True)
        self.port, self.num = port, num
        self.ok, self.conns, self.errors = 0, 0, []
        self.halted = threading.Event()

    def run(self):
        while not self.halted.is_set():
            try:
                s = tls_connect(self.port, "ka.test", timeout=30)
                self.conns += 1
                f = s.makefile("rb")
                for i in range(self.PER_CONN):
                    path = b"/%d/%d/%d" % (self.num, self.conns, i)
                    s.sendall(b"GET %s HTTP/1.1\r\nHost: ka.test\r\n\r\n" % path)
                    status = f.readline()
                    n = 0
                    while True:
                        h = f.readline()
                        if h in (b"\r\n", b""):
                            break
                        if h.lower().startswith(b"content-length:"):
                            n = int(h.split(b":")[1])
                    body = f.read(n)
                    if status.startswith(b"HTTP/1.1 200") and body == b"ka " + path + b"\n":
                        self.ok += 1
                        time.sleep(0.002)   # pacing, to leave CPU to the rest
                    else:
                        self.errors.append("bad answer %r %r" % (status, body))
                        break
                f.close()
                s.close()
            except Exception as e:  # noqa: BLE001 - counted, reported by the test
                self.errors.append(repr(e))
            self.halted.wait(0.01)   # pacing, to leave CPU to the rest


def sighup_case(d, ca, good):
    d = os.path.join(d, "sighup")
    os.makedirs(d)
    ka = KeepAliveBackend()
    tf = Tlsfront(d, hosts_for(d, ca, [("good", good.port), ("ka", ka.port)]), workers=1)

    def fault(gc):
        n0 = len(re.findall(r"main info: reloaded: ", tf.log()))
        kas = [KeepAliveClient(tf.port, i) for i in range(2)]
        for k in kas:
            k.start()
        wait_for(lambda: all(k.ok > 0 for k in kas) or any(k.errors for k in kas), 20,
                 "the keep-alive clients to get going")
        for i in range(RELOADS):
            tf.proc.send_signal(signal.SIGHUP)
            tf.wait_log(r"main info: reloaded: ", count=n0 + i + 1, timeout=30,
                        what="reload %d" % (i + 1))
            time.sleep(1.0)   # the fault's pacing: one SIGHUP a second, as the load runs
        gc.progress(1)
        for k in kas:
            k.halted.set()
        for k in kas:
            k.join(60)
        log = tf.log()
        check(len(re.findall(r"main info: reloaded: ", log)) - n0 == RELOADS and
              "reload failed" not in log,
              "sighup: each of the %d reloads was logged, none failed" % RELOADS)
        check(all(not k.is_alive() and not k.errors for k in kas),
              "sighup: no keep-alive request failed (%r)" % [k.errors[:2] for k in kas])
        check(all(k.ok > 0 and k.conns > 1 for k in kas),
              "sighup: keep-alive clients were served throughout (%s)"
              % ", ".join("%d requests on %d connections" % (k.ok, k.conns) for k in kas))
        check_eventually(lambda: len(tf.workers()) == 1,
                         "sighup: the old generations drained, one worker left", timeout=30)
        check("killing it" not in tf.log(),
              "sighup: every old worker exited by itself (none killed at shutdown_timeout)")
    # the main process keeps the parsed certificates (tls.c fcache) and the
    # counter blocks; 20 MiB would be a leak of ~2 MiB per reload
    fault_case(tf, "sighup", fault, GOOD, reload=True)
    check(tf.stop() == 0, "sighup: tlsfront exits 0 on SIGTERM")


# ---------------------------------------------------------------- SIGTERM

def refused(port):
    """Is a new TCP connection to port refused at once?"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class Transfer(threading.Thread):
    """One download (GET /bytes/SIZE) or upload (POST /upload of SIZE bytes)
    through tlsfront, which stops after GATE bytes until self.gate is set.
    Sets self.ok when every byte arrived intact (sha256)."""

    SIZE = 16 * MIB
    GATE = 2 * MIB

    def __init__(self, port, ctx, upload):
        super().__init__(daemon=True)
        self.port, self.ctx, self.upload = port, ctx, upload
        self.moved = 0
        self.ok = False
        self.result = None
        self.gate = threading.Event()

    def run(self):
        try:
            s = tls_connect(self.port, "big.test", self.ctx, timeout=30)
            if self.upload:
                self._up(s)
            else:
                self._down(s)
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.result = repr(e)

    def _up(self, s):
        data = pattern_bytes(self.SIZE, b"up")
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: big.test\r\nContent-Length: %d\r\n\r\n"
                  % self.SIZE)
        view = memoryview(data)
        while view:
            if self.moved >= self.GATE:
                self.gate.wait(60)
            n = s.send(view[:65536])
            self.moved += n
            view = view[n:]
        answer = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            answer += b
        body = answer.partition(b"\r\n\r\n")[2].strip()
        self.ok = body == hashlib.sha256(data).hexdigest().encode()
        self.result = "upload answer %r" % body[:64]

    def _down(self, s):
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: big.test\r\n\r\n" % self.SIZE)
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(65536)
            if not b:
                raise EOFError("no response head")
            head += b
        digest = hashlib.sha256()
        first = head.partition(b"\r\n\r\n")[2]
        digest.update(first)
        self.moved = len(first)
        while True:
            if self.moved >= self.GATE:
                self.gate.wait(60)
            b = s.recv(65536)
            if not b:
                break
            digest.update(b)
            self.moved += len(b)
        self.ok = self.moved == self.SIZE and digest.hexdigest() == pattern_sha256(self.SIZE)
        self.result = "download of %d bytes" % self.moved


def sigterm_case(d, ca):
    d = os.path.join(d, "sigterm")
    os.makedirs(d)
    big = HttpBackend("big")
    tf = Tlsfront(d, hosts_for(d, ca, [("big", big.port)]), workers=1,
                  global_extra={"shutdown_timeout": "60s"})
    ctx = client_context(verify_ca=ca.crt)
    worker = wait_for(tf.workers, 10, "the worker")[0]
    ts = [Transfer(tf.port, ctx, upload=i >= 4) for i in range(6)]
    for t in ts:
        t.start()
    wait_for(lambda: all(t.moved >= t.GATE or t.result for t in ts), 30,
             "the six transfers to get under way")
    check(all(t.result is None for t in ts),
          "sigterm: four downloads and two uploads under way (%r)" % [t.result for t in ts])
    tf.proc.send_signal(signal.SIGTERM)
    tf.wait_log(r"worker 0 info: signal 15: draining 6 connections",
                what="the worker to drain the six transfers")
    check_eventually(lambda: refused(tf.port), "sigterm: new connections are refused at once",
                     timeout=5)
    check(tf.proc.poll() is None and tf.workers() == [worker],
          "sigterm: tlsfront and its worker keep running while the transfers are in flight")
    for t in ts:
        t.gate.set()
    for t in ts:
        t.join(60)
    check(all(not t.is_alive() for t in ts), "sigterm: all six transfers finished")
    check(all(t.ok for t in ts),
          "sigterm: every transfer in flight at SIGTERM completed intact (sha256): %r"
          % [(t.upload, t.ok, t.result) for t in ts])
    try:
        rc = tf.proc.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "sigterm: tlsfront exits 0 once they are done (%r)" % rc)
    log = tf.log()
    lines = tf.access_lines()
    check(len(lines) == 6 and all('reason="closed"' in l for l in lines),
          "sigterm: six access lines, all closed cleanly (%r)"
          % [l.split("reason=")[1] for l in lines])
    check("killing" not in log and log.rfind(" access ") < log.find("main info: stopped"),
          "sigterm: nothing was killed, and the main process stopped after the last transfer")
    check(not os.path.exists("/proc/%d" % worker) or
          "zombie" in open("/proc/%d/status" % worker).read().lower(),
          "sigterm: the worker is gone")


def main():
    d = tmpdir()
    ca = CA(d)
    good = HttpBackend("good")
    emfile_case(d, ca, good)
    stalled_worker_case(d, ca, good)
    sighup_case(d, ca, good)
    sigterm_case(d, ca)


run(main)
