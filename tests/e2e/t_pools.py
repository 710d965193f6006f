"""Backend pools (issue #17) with real backends (the harness's HTTP servers,
TCP and UNIX sockets), workers = 2 throughout, the metrics checked as we go:

- -t errors at FILE:LINE (empty pool, duplicate member, bad balance,
  threshold and interval out of range); -T shows the pool and its members;
- roundrobin spreads 300 connections within 10% of even, over both workers;
- the access line names the member used;
- a refused member: every client is served (retry within the connection),
  the member goes down at the threshold (logged once), its connections stop;
- first: the second member only while the first is down; back to the first
  after its down time (one trial);
- leastconn: new connections go to the member with fewer open ones;
- one member stopped under load (many short connections): no failed client;
- a black-holed member (SYNs dropped) costs one connect_timeout at most once
  per down period;
- health_check = tcp: an idle dead member is marked down within two
  intervals, and up again after it returns; the state is the same in every
  worker, and a reload keeps it;
- UNIX-socket members.
"""
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request

from tf_clients import client_context, http_get, tls_connect
from tf_faults import blackhole
from tf_peers import HttpBackend, TcpServer, start_nginx
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import (check, check_eventually, cleanup, free_port, program, run, tmpdir,
                    wait_for)


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def member(m, family, host, backend):
    return m.get('%s{host="%s",backend="%s"}' % (family, host, backend))




def unix_http(path, name):
    """An HTTP backend on a UNIX socket: answers "backend NAME PATH"."""
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data = b""
            while b"\r\n\r\n" not in data:
                b = self.request.recv(4096)
                if not b:
                    return
                data += b
            body = b"backend " + name.encode() + b" " + data.split(b" ")[1] + b"\n"
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n" % len(body) + body)

    class Server(socketserver.ThreadingUnixStreamServer):
        daemon_threads = True

    srv = Server(path, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cleanup(srv.server_close)
    cleanup(srv.shutdown)
    return srv


class RawRecorder(TcpServer):
    """Records what each connection sent up to the end of an HTTP request
    head, and answers "raw"."""

    def __init__(self):
        self.got = []
        super().__init__()

    def serve(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            b = conn.recv(4096)
            if not b:
                break
            data += b
        self.got.append(data)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nraw\n")
        conn.close()


def config_errors(d, ca):
    cert = ca.host_cert("bad", ["bad.test"])
    cases = [
        ("backend = ,", "empty pool"),
        ("backend = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:1", "duplicate member '127.0.0.1:1'"),
        ("backend = 127.0.0.1:1\nbalance = random",
         "expected roundrobin, leastconn or first, not 'random'"),
        ("backend = 127.0.0.1:1\nbackend_fail_threshold = 0", "expected a number 1..100"),
        ("backend = 127.0.0.1:1\nhealth_interval = 100ms", "bad duration '100ms'"),
        ("backend = 127.0.0.1:1\nbackend.h2 = 127.0.0.1:5 127.0.0.1:5\nalpn = h2",
         "duplicate member"),
    ]
    for i, (body, want) in enumerate(cases):
        dd = os.path.join(d, "bad%d" % i)
        os.makedirs(os.path.join(dd, "hosts.d"))
        main = os.path.join(dd, "tlsfront.ini")
        with open(main, "w") as f:
            f.write("[global]\nlisten = 127.0.0.1:%d\nhosts = hosts.d/*.ini\n" % free_port())
        hf = os.path.join(dd, "hosts.d", "bad.ini")
        with open(hf, "w") as f:
            f.write("[host bad]\ncert = %s\nkey = %s\n%s\n" % (cert[0], cert[1], body))
        r = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True)
        check(r.returncode == 1 and want in r.stderr and re.search(
              re.escape(hf) + r":\d+: ", r.stderr),
              "-t: %r is an error at FILE:LINE (%s)" % (body, r.stderr.strip()))


def main():
    d = tmpdir()
    ca = CA(d)
    ctx = client_context(verify_ca=ca.crt)
    config_errors(d, ca)

    a, b, c = HttpBackend("a"), HttpBackend("b"), HttpBackend("c")
    fa, fb = HttpBackend("fa"), HttpBackend("fb")
    la, lb = HttpBackend("la"), HttpBackend("lb")
    sa, sb = HttpBackend("sa"), HttpBackend("sb")
    good = HttpBackend("good")
    refused = free_port()
    bh, bh_port = blackhole()
    dead_port = free_port()          # the checked member: dead at start
    ca_ = HttpBackend("ca")
    ua, ub = os.path.join(d, "ua.sock"), os.path.join(d, "ub.sock")
    unix_http(ua, "ua")
    unix_http(ub, "ub")
    mport = free_port()
    rec = RawRecorder()
    n1, n2 = free_port(), free_port()
    ng1, _ = start_nginx(d, n1, "n1\n", part="wrk through an nginx pool")
    ng2, _ = start_nginx(d, n2, "n2\n", part="wrk through an nginx pool")

    def pool(*bs):
        return " ".join("127.0.0.1:%d" % x.port if hasattr(x, "port") else x for x in bs)

    hosts = {
        "rr": {"backend": pool(a, b, c)},
        "retry": {"backend": pool("127.0.0.1:%d" % refused, good),
                  "backend_fail_threshold": "2", "backend_down_time": "1h"},
        "first": {"backend": pool(fa, fb), "balance": "first",
                  "backend_down_time": "1s"},
        "least": {"backend": pool(la, lb), "balance": "leastconn"},
        "stop": {"backend": pool(sa, sb), "backend_down_time": "2s"},
        "hole": {"backend": pool("127.0.0.1:%d" % bh_port, good),
                 "connect_timeout": "500ms", "backend_fail_threshold": "1",
                 "backend_down_time": "2s"},
        "check": {"backend": pool("127.0.0.1:%d" % dead_port, ca_),
                  "health_check": "tcp", "health_interval": "1s",
                  "backend_fail_threshold": "3", "backend_down_time": "1h"},
        "unix": {"backend": "unix:%s unix:%s" % (ua, ub)},
        "kw": {"backend": "127.0.0.1:%d 127.0.0.1:%d" % (n1, n2), "default": "yes",
               "backend_down_time": "1s"},
        "proxy": {"backend": "unix:%s 127.0.0.1:%d" % (os.path.join(d, "none.sock"), rec.port),
                  "balance": "first", "proxy_protocol": "v1"},
    }
    for label, keys in hosts.items():
        cert = ca.host_cert(label, [label + ".test"])
        keys.update({"cert": cert[0], "key": cert[1]})
    tf = Tlsfront(d, hosts, workers=2, global_extra={"stats_listen": "127.0.0.1:%d" % mport})
    wait_for(lambda: len(tf.workers()) == 2, what="two workers")

    # -T: the pool and its members
    r = subprocess.run([TLSFRONT, "-T", "-c", tf.main], capture_output=True, text=True)
    check(r.returncode == 0 and "backend = %s" % pool(a, b, c) in r.stdout and
          "# backend pool: 3 members, balance = roundrobin" in r.stdout and
          "#   member 3: 127.0.0.1:%d" % c.port in r.stdout and
          "balance = first" in r.stdout and "health_interval = 1s" in r.stdout,
          "-T shows the pools and their members:\n%s" % r.stdout[:3000])

    # ---- roundrobin: 300 connections, within 10% of even, both workers
    for i in range(300):
        body = http_get(tf.port, "rr.test", "/rr%d" % i, ctx)
        check(body.startswith(b"backend "), "rr: served (%r)" % body)
    counts = (a.requests, b.requests, c.requests)
    check(all(90 <= n <= 110 for n in counts) and sum(counts) == 300,
          "roundrobin spreads 300 connections within 10%% of even: %s" % (counts,))
    m = metrics(mport)
    got = [member(m, "tlsfront_backend_connections_total", "rr", "127.0.0.1:%d" % x.port)
           for x in (a, b, c)]
    check(got == [float(n) for n in counts],
          "metrics: connections per member match the backends' counts (%s)" % got)
    check(all(member(m, "tlsfront_backend_up", "rr", "127.0.0.1:%d" % x.port) == 1
              for x in (a, b, c)), "metrics: the rr members are up")
    check(member(m, "tlsfront_backend_member_connect_seconds_count", "rr",
                 "127.0.0.1:%d" % a.port) == counts[0], "metrics: connect time count")
    lines = [l for l in tf.access_lines() if "host=rr " in l]
    used = set(re.search(r" backend=(\S+) ", l).group(1) for l in lines)
    check(used == set("127.0.0.1:%d" % x.port for x in (a, b, c)),
          "the access line names the member used (%s)" % used)

    # ---- a refused member: retried within the connection, down at 2 failures
    for i in range(10):
        body = http_get(tf.port, "retry.test", "/r%d" % i, ctx)
        check(body == b"backend good /r%d\n" % i, "retry: every client served (%r)" % body)
    tf.wait_log(r"host 'retry': backend 127\.0\.0\.1:%d is down after 2 failed" % refused,
                what="the refused member marked down")
    time.sleep(0.2)
    check(len(re.findall(r"host 'retry': backend 127\.0\.0\.1:%d is down" % refused,
                         tf.log())) == 1, "the member went down once, logged once")
    m = metrics(mport)
    rm = "127.0.0.1:%d" % refused
    check(member(m, "tlsfront_backend_up", "retry", rm) == 0 and
          member(m, "tlsfront_backend_member_connect_failures_total", "retry", rm) == 2,
          "metrics: the refused member is down after 2 failures (both workers share it): "
          "up=%s failures=%s" % (member(m, "tlsfront_backend_up", "retry", rm),
                                 member(m, "tlsfront_backend_member_connect_failures_total",
                                        "retry", rm)))
    check(not any("host=retry " in l and "connect failed" in l for l in tf.access_lines()),
          "no retry client saw a connect failure")
    # the same state in every worker: 30 more clients, served by both
    # workers, and none of them tries the down member again
    for i in range(30):
        check(http_get(tf.port, "retry.test", "/w", ctx) == b"backend good /w\n",
              "retry: served by the good member")
    pids = set(re.findall(r"tlsfront\[(\d+)\] worker \d+ info: access .*host=retry ",
                          tf.log()))
    check(len(pids) == 2 and member(metrics(mport),
                                    "tlsfront_backend_member_connect_failures_total",
                                    "retry", rm) == 2,
          "both workers (%s) skip the member the shared state says is down" % sorted(pids))

    # ---- first: the second only while the first is down
    for i in range(6):
        check(http_get(tf.port, "first.test", "/", ctx) == b"backend fa /\n",
              "first: the first member serves while up")
    fa.close()
    for i in range(6):
        check(http_get(tf.port, "first.test", "/", ctx) == b"backend fb /\n",
              "first: the second member serves while the first is stopped")
    tf.wait_log(r"host 'first': backend 127\.0\.0\.1:%d is down" % fa.port,
                what="the first member marked down")
    fa2 = HttpBackend("fa", port=fa.port)
    time.sleep(1.2)  # its down time (1s) passes: one trial brings it back
    check_eventually(lambda: http_get(tf.port, "first.test", "/", ctx) == b"backend fa /\n",
                     "first: back to the first member after its down time", timeout=5)
    tf.wait_log(r"host 'first': backend 127\.0\.0\.1:%d is up again" % fa.port,
                what="the first member back up")
    check(http_get(tf.port, "first.test", "/", ctx) == b"backend fa /\n",
          "first: the first member serves again")

    # ---- leastconn: an open connection on one member sends the others elsewhere
    idle = tls_connect(tf.port, "least.test", ctx)  # dialled, never asks
    cleanup(idle.close)

    def least_conns():
        mm = metrics(mport)
        return [member(mm, "tlsfront_backend_connections_total", "least",
                       "127.0.0.1:%d" % x.port) for x in (la, lb)]
    check_eventually(lambda: sum(least_conns()) == 1, "leastconn: the idle connection is dialled")
    busy = 0 if least_conns()[0] == 1 else 1
    other = (la, lb)[1 - busy]
    n_access = len(tf.access_lines())
    for i in range(10):
        body = http_get(tf.port, "least.test", "/l%d" % i, ctx)
        check(body == b"backend %s /l%d\n" % (other.name.encode(), i),
              "leastconn: a new connection goes to the member with fewer open (%r)" % body)
        # the worker has closed it (its access line follows the member's
        # release): the next one sees one open connection, not two
        n_access += 1
        tf.wait_access(n_access)
    idle.close()

    # ---- one member stopped under load: no failed client
    errors, done, served = [], threading.Event(), [0]

    def load():
        while not done.is_set():
            try:
                body = http_get(tf.port, "stop.test", "/", ctx, timeout=10)
                if not body.startswith(b"backend s"):
                    errors.append(body)
                served[0] += 1
            except OSError as e:
                errors.append(repr(e))
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    sa.close()
    time.sleep(2.5)
    done.set()
    for t in threads:
        t.join()
    bad = [l for l in tf.access_lines() if "host=stop " in l and 'reason="closed"' not in l]
    check(not any("backend connect" in l for l in bad) and served[0] > 50,
          "a member stopped under load: %d connections, none failed to connect (%s)"
          % (served[0], bad[:3]))
    # A connection the stopped server's kernel had queued but the server
    # never accepted is reset when it closes its socket: tlsfront had sent
    # the request already, and never replays it. Only those may fail.
    resets = [l for l in bad if 'reason="backend reset"' in l or 'reason="backend closed"' in l]
    check(len(errors) == len(resets) and len(errors) <= 2,
          "a member stopped under load: %d clients failed, each a connection the stopped "
          "backend had queued and reset (%s)" % (len(errors), bad[:3]))

    # ---- wrk, keep-alive and Connection: close, one nginx stopped under load
    wrk = program("wrk", "wrk", part="wrk through an nginx pool")
    if wrk is not None and ng1 is not None:
        import signal as sig
        for mode, extra in (("keep-alive", []), ("Connection: close",
                                                  ["-H", "Connection: close"])):
            before = len(tf.access_lines())
            w = subprocess.Popen([wrk, "-t2", "-c8", "-d4s"] + extra +
                                 ["https://127.0.0.1:%d/" % tf.port],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(1.5)
            ng1.send_signal(sig.SIGQUIT)   # graceful: closes its listener first
            out = w.communicate(timeout=60)[0]
            ng1.wait()
            reqs = re.search(r"(\d+) requests in", out)
            errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                             r"timeout (\d+)", out)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            lines = tf.access_lines()[before:]
            conn_failed = [l for l in lines if "backend connect" in l]
            check(reqs and int(reqs.group(1)) > 100 and not conn_failed and
                  (errs is None or int(errs.group(1)) == 0) and non2xx is None,
                  "wrk (%s), one nginx member stopped at 1.5 s of 4 s: %s requests, no "
                  "failed connect (wrk: %s; tlsfront: %d connect failures)"
                  % (mode, reqs and reqs.group(1), errs and errs.group(0), len(conn_failed)))
            ng1, _ = start_nginx(d, n1, "n1\n")
            time.sleep(1.2)   # its down time passes: back in the pool

    # ---- a black-holed member: one connect_timeout per down period at most
    t0 = time.time()
    slow = 0
    n = 0
    while time.time() - t0 < 3.0:
        t1 = time.time()
        body = http_get(tf.port, "hole.test", "/h", ctx)
        check(body == b"backend good /h\n", "hole: every client served (%r)" % body)
        slow += time.time() - t1 > 0.4
        n += 1
    # 3 s with a 2 s down period: the first timeout, then at most one trial
    check(1 <= slow <= 2 and n > 10,
          "a black-holed member cost a connect_timeout %d times in %d connections over "
          "3 s (down time 2 s)" % (slow, n))

    # ---- active checks: the idle dead member down within two intervals
    dm = "127.0.0.1:%d" % dead_port
    check_eventually(lambda: member(metrics(mport), "tlsfront_backend_up", "check", dm) == 0,
                     "health check: the idle dead member is marked down", timeout=2.5)
    check(not any("host=check " in l for l in tf.access_lines()), "... with no traffic at all")
    for i in range(6):
        check(http_get(tf.port, "check.test", "/", ctx) == b"backend ca /\n",
              "health check: clients go to the live member only")
    m = metrics(mport)
    check(member(m, "tlsfront_backend_connections_total", "check", dm) == 0,
          "health check: no client connection to the down member, from either worker")
    fails = member(m, "tlsfront_backend_member_connect_failures_total", "check", dm)
    # a reload keeps the state of the members that stay
    tf.reload()
    m = metrics(mport)
    check(member(m, "tlsfront_backend_up", "check", dm) == 0 and
          member(m, "tlsfront_backend_up", "retry", rm) == 0,
          "a reload keeps the members' health state")
    for i in range(4):
        check(http_get(tf.port, "retry.test", "/after", ctx) == b"backend good /after\n",
              "after the reload the down member is still skipped")
    check(member(metrics(mport), "tlsfront_backend_member_connect_failures_total", "retry",
                 rm) == 2, "after the reload no client tried the down member")
    # it comes back: up within two intervals
    back = HttpBackend("dead", port=dead_port)
    check_eventually(lambda: member(metrics(mport), "tlsfront_backend_up", "check", dm) == 1,
                     "health check: the member is up again after it returns", timeout=2.5)
    tf.wait_log(r"host 'check': backend %s is up again" % re.escape(dm), what="the up line")
    check_eventually(lambda: b"backend dead" in http_get(tf.port, "check.test", "/", ctx),
                     "the returned member serves again", timeout=3)
    check(fails >= 3, "the failed checks are counted (%s)" % fails)

    # ---- a retry sends the PROXY header once, to the member that accepts
    for i in range(3):
        check(http_get(tf.port, "proxy.test", "/p%d" % i, ctx) == b"raw\n",
              "proxy: served by the second member")
    check(len(rec.got) == 3 and all(g.count(b"PROXY TCP4 ") == 1 and g.startswith(b"PROXY ")
                                    and b"GET /p" in g for g in rec.got),
          "each retried connection sent one PROXY header, then the request: %r" % rec.got[:1])

    # ---- UNIX-socket members
    seen = set(http_get(tf.port, "unix.test", "/u", ctx) for _ in range(6))
    check(seen == {b"backend ua /u\n", b"backend ub /u\n"},
          "UNIX-socket members share the connections (%s)" % seen)
    check(tf.stop() == 0, "tlsfront exits 0")
    bh.close()
    back.close()
    fa2.close()


run(main)
