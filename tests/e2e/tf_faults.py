"""Fault injection (issue #7): fault_case runs one fault against tlsfront
with a GoodClient beside it and checks what every fault must leave intact;
burst runs many clients at once."""
import socket
import threading

from tf_clients import http_get
from tf_proc import rss_kb
from tf_run import Fail, check, check_eventually, cleanup, wait_for, wait_stable


class GoodClient(threading.Thread):
    """A well-behaved client running beside a fault: GETs path from host sni
    through tlsfront, a new TLS connection each time (http_get), until
    halt(). A request counts as ok (self.ok) only if the body is `expect`;
    anything else (a wrong body, an exception) goes to self.errors. pause:
    seconds between requests (pacing, to leave the machine's CPUs to the
    fault and to other tests). hold()/release() stop and restart it, for a
    fault whose onset no request may straddle."""

    def __init__(self, port, sni, path, expect, ctx=None, pause=0.02):
        super().__init__(daemon=True)
        self.port, self.sni, self.path, self.expect, self.ctx = port, sni, path, expect, ctx
        self.pause = pause
        self.ok = 0
        self.errors = []
        self.halted = threading.Event()   # not self._stop: threading.Thread has one
        self.gate = threading.Event()
        self.gate.set()
        self.busy = threading.Lock()

    def run(self):
        while not self.halted.is_set():
            self.gate.wait()
            with self.busy:
                if self.halted.is_set():
                    break
                try:
                    body = http_get(self.port, self.sni, self.path, self.ctx, timeout=30)
                    if body == self.expect:
                        self.ok += 1
                    else:
                        self.errors.append("wrong body %r" % body[:80])
                except Exception as e:  # noqa: BLE001 - counted, reported by the test
                    self.errors.append(repr(e))
            self.halted.wait(self.pause)

    def hold(self):
        """Start no new request; return once the one under way is done."""
        self.gate.clear()
        with self.busy:
            pass

    def release(self):
        self.gate.set()

    def progress(self, n=1, timeout=30.0):
        """Wait until n more requests have succeeded than when called: the
        caller holds its fault meanwhile, so these were served during it."""
        want = self.ok + n
        wait_for(lambda: self.ok >= want or self.errors or not self.is_alive(), timeout,
                 "%d good requests to succeed" % n)
        if self.errors:
            raise Fail("a good request failed: %s" % self.errors[0])

    def halt(self):
        self.halted.set()
        self.gate.set()
        self.join(60)
        if self.is_alive():
            raise Fail("the good client did not stop (a request hangs)")


def fault_case(tf, name, fault_fn, good, rss_bound_kb=20 * 1024, during=True, reload=False):
    """Run one fault against tlsfront and check what issue #7 asks of every
    fault: tlsfront stays up, leaks no descriptor, its memory stays bounded,
    and good clients are served during the fault and right after it.

    tf runs one worker (workers = 1), so there is one worker to watch.
    good = (sni, path, body): a healthy host and what it answers.
    fault_fn(gc) injects the fault and returns once it is over, after
    checking its own effects (what the faulty peer saw, access lines); gc is
    the GoodClient running meanwhile: a fault that lasts calls gc.progress()
    while it is at its worst. during=False for a fault that by nature lets
    nothing in (out of descriptors): good requests may then wait, queued,
    but still none may fail. reload=True for SIGHUP faults: workers are
    meant to be replaced, so the main process is the one whose descriptors
    and memory are watched, and the worker count must come back to one.

    Baselines are taken after a warm-up: OpenSSL, libevent and malloc set
    up some state on first use, which is not a leak. The RSS bound is given
    by the caller; it is checked on the peak seen during the fault (sampled
    every 50 ms) and after it. Returns what fault_fn returned."""
    sni, path, expect = good
    main = tf.proc.pid
    worker = wait_for(lambda: len(tf.workers()) == 1 and tf.workers(), 15,
                      "one worker process")[0]
    watched = main if reload else worker
    for _ in range(3):
        body = http_get(tf.port, sni, path)
        check(body == expect, "%s: warm-up request served (%r)" % (name, body[:60]))
    # the access line is written just before a connection's fds are closed
    base_fds = wait_stable(lambda: tf.fd_count(watched), polls=3, interval=0.1,
                           what="%s: the fd count to settle" % name)
    base_rss = rss_kb(watched)
    peak = [base_rss]
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.05):
            try:
                peak[0] = max(peak[0], rss_kb(watched))
            except OSError:
                return
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gc = GoodClient(tf.port, sni, path, expect)
    gc.start()
    try:
        gc.progress(1)
        ok0 = gc.ok
        result = fault_fn(gc)
        ok_during = gc.ok - ok0
    finally:
        gc.halt()
        sampling.set()
        sampler.join(5)
    check(not gc.errors, "%s: no good request failed (%d served; errors %r)"
          % (name, gc.ok, gc.errors[:3]))
    if during:
        check(ok_during > 0, "%s: good clients were served during the fault (%d requests)"
              % (name, ok_during))
    check(tf.proc.poll() is None, "%s: the main process is alive" % name)
    if reload:
        check_eventually(lambda: len(tf.workers()) == 1,
                         "%s: old generations drained, one worker left" % name, timeout=30)
    else:
        check(tf.workers() == [worker],
              "%s: the same worker %d is alive (no crash, no restart): %r"
              % (name, worker, tf.workers()))
    check_eventually(lambda: tf.fd_count(watched) == base_fds,
                     "%s: the %s's fd count is back to its baseline %d"
                     % (name, "main process" if reload else "worker", base_fds), timeout=15)
    rss = rss_kb(watched)
    print("# %s: RSS baseline %d kB, peak %d kB, after %d kB" % (name, base_rss, peak[0], rss))
    check(peak[0] - base_rss < rss_bound_kb and rss - base_rss < rss_bound_kb,
          "%s: RSS grew by at most %d kB (peak +%d kB, after +%d kB)"
          % (name, rss_bound_kb, peak[0] - base_rss, rss - base_rss))
    body = http_get(tf.port, sni, path)
    check(body == expect, "%s: a good client is served right after (%r)" % (name, body[:60]))
    return result


def burst(fn, n):
    """Run fn(i) in n threads at once; return their results in order."""
    out = [None] * n

    def one(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - the caller checks the results
            out[i] = ("exception", repr(e))
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


def blackhole():
    """A TCP listener that completes no more handshakes: backlog 0, and its
    one accept-queue slot taken by raw connections nobody accepts, so further
    SYNs are dropped (no root, no firewall): a backend whose connect times
    out. Returns (listening socket, port); both go at the test's cleanup."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    cleanup(lsock.close)
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        cleanup(f.close)
    return lsock, port
