#!/usr/bin/env python3
"""Helpers of bench/soak.sh (standard library only).

  soak_client.py ports N
      N free TCP ports on 127.0.0.1, outside the ephemeral range.
  soak_client.py newconn PORT SNI CA SMALL_BYTES DEADLINE RATE THREADS OUT
      A new TLS connection (full handshake, SNI, certificate verified) per
      request for /small, with Connection: close, RATE connections/s in all,
      until the epoch time DEADLINE. Writes "requests N errors M" to OUT.
  soak_client.py slow PORT SNI CA LARGE_BYTES DEADLINE CLIENTS READ_BYTES BPS OUT
      CLIENTS slow readers: each GETs /large, reads READ_BYTES of the body at
      BPS bytes/s, then closes (mid-body, as a user leaving a download), and
      starts again, until DEADLINE.
  soak_client.py baseline MAIN_PID OUT_JSON
      The idle fd counts and RSS of the main process and its workers.
  soak_client.py monitor MAIN_PID DURATION INTERVAL RELOAD_EVERY CSV STATE_JSON [TOUCH]
      Samples RSS and fds of the main process and every child every INTERVAL
      seconds for DURATION seconds, sends SIGHUP every RELOAD_EVERY seconds
      (after touching the comma-separated files TOUCH, so that the reload
      parses them again instead of reusing them),
      then keeps sampling (the tail) until the old workers are gone and the fd
      counts are back to the baseline, or 120 s. CSV columns: time (seconds
      since the load started), pid, role (main | worker | draining), rss_kb, fds.
  soak_client.py verdict DIR
      Reads DIR/samples.csv, DIR/baseline.json, DIR/monitor.json,
      DIR/tlsfront.log and DIR/load-*.txt; prints the figures and the verdict;
      exits 1 if memory or descriptors are not flat, a worker was restarted,
      a reload failed, a connection was closed by a timer (every client
      session is shorter than the timeouts), or any load generator saw an error.
"""
import json
import os
import random
import re
import signal
import socket
import ssl
import statistics
import sys
import threading
import time


# ------------------------------------------------------------------ ports

def free_ports(n):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    a, b = (10000, lo - 1) if lo > 11000 else (hi + 1, 65535)
    out = []
    while len(out) < n:
        p = random.randint(a, b)
        if p in out:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        out.append(p)
    return out


# ------------------------------------------------------------------ clients

class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.first_errors = []

    def ok(self):
        with self.lock:
            self.requests += 1

    def err(self, why):
        with self.lock:
            self.requests += 1
            self.errors += 1
            if len(self.first_errors) < 10:
                self.first_errors.append("%s %s" % (time.strftime("%H:%M:%S"), why))

    def write(self, path):
        with open(path, "w") as f:
            f.write("requests %d errors %d\n" % (self.requests, self.errors))
            for e in self.first_errors:
                f.write("error %s\n" % e)


def context(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    return ctx


def read_head(s):
    """Read up to the end of the response head; return (status, headers, rest)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(16384)
        if not b:
            raise OSError("EOF in the response head")
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def newconn(port, sni, ca, small, deadline, rate, threads, out):
    ctx = context(ca)
    c = Counter()
    interval = threads / float(rate)

    def loop():
        nxt = time.monotonic()
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                    with ctx.wrap_socket(raw, server_hostname=sni) as s:
                        s.sendall(b"GET /small HTTP/1.1\r\nHost: %s\r\nConnection: close"
                                  b"\r\n\r\n" % sni.encode())
                        status, _, body = read_head(s)
                        while True:
                            try:
                                b = s.recv(65536)
                            except ssl.SSLZeroReturnError:
                                break
                            if not b:
                                break
                            body += b
                if status != 200 or len(body) != small:
                    c.err("status %d, %d body bytes" % (status, len(body)))
                else:
                    c.ok()
            except (OSError, ValueError) as e:
                c.err(repr(e))
            nxt += interval
            time.sleep(max(0.0, nxt - time.monotonic()))
    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    c.write(out)


def slow(port, sni, ca, large, deadline, clients, read_bytes, bps, out):
    ctx = context(ca)
    c = Counter()
    chunk = 16384

    def loop():
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
                    with ctx.wrap_socket(raw, server_hostname=sni) as s:
                        s.sendall(b"GET /large HTTP/1.1\r\nHost: %s\r\n\r\n" % sni.encode())
                        status, headers, body = read_head(s)
                        got = len(body)
                        t0 = time.monotonic()
                        while got < read_bytes:
                            b = s.recv(chunk)
                            if not b:
                                raise OSError("EOF after %d body bytes" % got)
                            got += len(b)
                            ahead = got / float(bps) - (time.monotonic() - t0)
                            if ahead > 0:
                                time.sleep(ahead)
                if status != 200 or headers.get("content-length") != str(large):
                    c.err("status %d, content-length %s" % (status,
                                                            headers.get("content-length")))
                else:
                    c.ok()
            except (OSError, ValueError) as e:
                c.err(repr(e))
                time.sleep(0.5)
    ts = [threading.Thread(target=loop) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    c.write(out)


# ------------------------------------------------------------------ sampling

def rss_kb(pid):
    """VmRSS of pid; OSError if it is gone (or a zombie: no VmRSS line)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise OSError("pid %d is a zombie" % pid)


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def sample(pid):
    """(rss_kb, fds) of pid, or None if it is gone."""
    try:
        return rss_kb(pid), fds(pid)
    except (OSError, ValueError):
        return None


def baseline(main, out):
    snap = {"main": sample(main), "workers": {}}
    for w in children(main):
        s = sample(w)
        if s:
            snap["workers"][str(w)] = s
    with open(out, "w") as f:
        json.dump(snap, f)
    print("baseline: main rss %d kB, %d fds; workers %s" % (
        snap["main"][0], snap["main"][1],
        ", ".join("%s: %d kB %d fds" % (p, r, n) for p, (r, n) in snap["workers"].items())))


def monitor(main, duration, interval, reload_every, csv_path, state_path, touch=()):
    with open(os.path.join(os.path.dirname(csv_path), "baseline.json")) as f:
        base = json.load(f)
    base_main_fds = base["main"][1]
    base_worker_fds = max(n for _, n in base["workers"].values())
    current = set(int(p) for p in base["workers"])
    draining = set()
    seen = set(current)
    reloads = 0
    t0 = time.time()
    next_sample = t0
    next_reload = t0 + reload_every
    state = {"start": t0, "duration": duration, "reloads": 0, "worker_pids": 0}
    csv = open(csv_path, "w")
    csv.write("time,pid,role,rss_kb,fds\n")

    def take(now):
        rows = []
        kids = set(children(main))
        for k in kids - seen:      # forked since the last look: this generation
            current.add(k)
            seen.add(k)
        current.intersection_update(kids)
        draining.intersection_update(kids)
        for pid, role in [(main, "main")] + [(k, "draining" if k in draining else "worker")
                                              for k in sorted(kids)]:
            s = sample(pid)
            if s:
                rows.append((pid, role) + s)
                csv.write("%.1f,%d,%s,%d,%d\n" % ((now - t0,) + rows[-1]))
        csv.flush()
        return rows

    def reload():
        nonlocal reloads
        take(time.time())          # pick up any child forked since the last sample
        draining.update(current)
        current.clear()
        for path in touch:
            os.utime(path)
        os.kill(main, signal.SIGHUP)
        reloads += 1

    # the load phase
    while True:
        now = time.time()
        if now >= t0 + duration:
            break
        if now >= next_reload:
            reload()
            next_reload += reload_every
        if now >= next_sample:
            take(now)
            next_sample += interval
        time.sleep(max(0.05, min(next_sample, next_reload, t0 + duration) - time.time()))
    # the tail: until idle again (if main is still there)
    tail_end = time.time() + 120
    settled = False
    while time.time() < tail_end and sample(main) is not None:
        rows = take(time.time())
        mains = [r for r in rows if r[1] == "main"]
        workers = [r for r in rows if r[1] == "worker"]
        if mains and not any(r[1] == "draining" for r in rows) and \
                mains[0][3] == base_main_fds and workers and \
                all(r[3] == base_worker_fds for r in workers):
            settled = True
            break
        time.sleep(2)
    state.update(reloads=reloads, worker_pids=len(seen), settled=settled,
                 main_alive=sample(main) is not None,
                 tail_seconds=round(time.time() - t0 - duration, 1))
    with open(state_path, "w") as f:
        json.dump(state, f)
    csv.close()


# ------------------------------------------------------------------ verdict

def verdict(d):
    with open(os.path.join(d, "baseline.json")) as f:
        base = json.load(f)
    with open(os.path.join(d, "monitor.json")) as f:
        mon = json.load(f)
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    D = mon["duration"]
    rows = []
    with open(os.path.join(d, "samples.csv")) as f:
        next(f)
        for line in f:
            t, pid, role, rss, n = line.strip().split(",")
            rows.append((float(t), int(pid), role, int(rss), int(n)))
    fails = []
    print("== tlsfront soak: %ds of load, %d workers, SIGHUP every %ds, samples every %ds"
          % (D, conf["workers"], conf["reload_every"], conf["interval"]))

    def series(role, field):
        """{time: value} for role: main's own value; for workers the largest
        among the current workers at that sample."""
        out = {}
        for t, _, r, rss, n in rows:
            if r == role:
                v = rss if field == "rss" else n
                out[t] = max(out.get(t, v), v)
        return out

    def flat(name, s):
        post = [v for t, v in s.items() if 0.2 * D <= t <= D]
        last = [v for t, v in s.items() if 2 * D / 3.0 <= t <= D]
        if len(post) < 3 or not last:
            fails.append("%s: too few samples (%d)" % (name, len(post)))
            return
        med = statistics.median(post)
        tol = max(0.10 * med, 2048)
        worst = max(last)
        ok = worst <= med + tol
        print("%-22s post-warm-up median %8.0f kB, last-third max %8d kB, limit %8.0f kB: %s"
              % (name, med, worst, med + tol, "flat" if ok else "NOT FLAT"))
        pts = sorted((t, v) for t, v in s.items() if 0.2 * D <= t <= D)
        mt = statistics.mean(t for t, _ in pts)
        mv = statistics.mean(v for _, v in pts)
        den = sum((t - mt) ** 2 for t, _ in pts)
        slope = sum((t - mt) * (v - mv) for t, v in pts) / den if den else 0.0
        print("%-22s least-squares trend after warm-up: %+.0f kB/hour (information only)"
              % ("", slope * 3600))
        if not ok:
            fails.append("%s grew: last-third max %d kB > median %.0f kB + %.0f kB"
                         % (name, worst, med, tol))

    print("-- memory (RSS), warm-up = first 20%% (%ds)" % (0.2 * D))
    m = series("main", "rss")
    w = series("worker", "rss")
    print("%-22s baseline %d kB, max %d kB, final %d kB" % (
        "main RSS", base["main"][0], max(m.values()), m[max(m)]))
    flat("main RSS", m)
    print("%-22s baseline %d kB (largest), max %d kB, final %d kB" % (
        "worker RSS", max(r for r, _ in base["workers"].values()), max(w.values()), w[max(w)]))
    flat("worker RSS (largest)", w)

    print("-- descriptors")
    mf = series("main", "fds")
    wf = series("worker", "fds")
    base_wf = max(n for _, n in base["workers"].values())
    final_t = max(t for t, _, _, _, _ in rows)
    final_workers = [n for t, _, r, _, n in rows if t == final_t and r == "worker"]
    final_draining = [p for t, p, r, _, _ in rows if t == final_t and r == "draining"]
    print("main fds: baseline %d, during load min %d max %d, final %d" % (
        base["main"][1], min(v for t, v in mf.items() if 0 <= t <= D),
        max(v for t, v in mf.items() if 0 <= t <= D), mf[final_t]))
    print("worker fds: baseline %d, during load max %d, final %s (after %.0fs of tail)" % (
        base_wf, max(v for t, v in wf.items() if 0 <= t <= D), final_workers,
        mon["tail_seconds"]))
    if mf[final_t] != base["main"][1]:
        fails.append("main fds did not return to the idle baseline: %d != %d"
                     % (mf[final_t], base["main"][1]))
    if not final_workers or any(n != base_wf for n in final_workers):
        fails.append("worker fds did not return to the idle baseline %d: %s"
                     % (base_wf, final_workers))
    if final_draining:
        fails.append("old workers still running after the tail: %s" % final_draining)

    print("-- processes")
    with open(os.path.join(d, "tlsfront.log"), errors="replace") as f:
        log = f.read()
    with open(os.path.join(d, "tlsfront.exit")) as f:
        status = f.read().strip()
    print("main process alive at the end of the load: %s; exit status after SIGTERM: %s"
          % ("yes" if mon["main_alive"] else "NO", status))
    if not mon["main_alive"] or status != "0":
        fails.append("the main process died, or did not exit 0 on SIGTERM (%s)" % status)
    reloaded = len(re.findall(r" reloaded: ", log))
    failed = len(re.findall(r"reload failed", log))
    restarts = re.findall(r".*restarting.*", log)
    killed = re.findall(r".*(?:still running|killing them).*", log)
    expect_pids = conf["workers"] * (mon["reloads"] + 1)
    print("SIGHUPs sent %d, 'reloaded' logged %d, reload failures %d, worker restarts %d, "
          "old workers killed %d, worker pids seen %d (expected %d)"
          % (mon["reloads"], reloaded, failed, len(restarts), len(killed),
             mon["worker_pids"], expect_pids))
    if reloaded != mon["reloads"] or failed:
        fails.append("reloads: %d sent, %d done, %d failed" % (mon["reloads"], reloaded,
                                                               failed))
    if restarts or mon["worker_pids"] != expect_pids:
        fails.append("workers restarted unexpectedly: %s" % (restarts[:3] or
                                                             "%d pids" % mon["worker_pids"]))
    if killed:
        fails.append("old workers had to be killed: %s" % killed[:3])
    reasons = {}
    for r in re.findall(r' access .* reason="([^"]*)"', log):
        r = re.sub(r"\d+", "N", r)
        reasons[r] = reasons.get(r, 0) + 1
    print("access lines %d; by reason: %s" % (sum(reasons.values()), ", ".join(
        "%s %d" % (k, v) for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))))
    # Every client session is shorter than shutdown_timeout and idle_timeout
    # (soak.sh): a connection closed by a timer outlived its client.
    timed = {k: v for k, v in reasons.items() if "timeout" in k}
    if timed:
        fails.append("connections closed by a timer, not by their client: %s" % ", ".join(
            "%s %d" % kv for kv in timed.items()))
        for line in re.findall(r'.* access .*reason="[^"]*timeout[^"]*".*', log)[:5]:
            print("   " + line)

    print("-- load generators")
    for name in sorted(os.listdir(d)):
        if not (name.startswith("load-") and name.endswith(".txt")):
            continue
        with open(os.path.join(d, name)) as f:
            text = f.read()
        m_ = re.search(r"requests (\d+) errors (\d+)", text)
        gen = name[5:-4]
        if not m_:
            fails.append("%s: no result" % gen)
            print("%-10s no result" % gen)
            continue
        req, err = int(m_.group(1)), int(m_.group(2))
        print("%-10s requests %9d  errors %d" % (gen, req, err))
        for e in re.findall(r"^error (.*)$", text, re.M)[:5]:
            print("           %s" % e)
        if err or not req:
            fails.append("%s: %d errors in %d requests" % (gen, err, req))
    print("== VERDICT: %s" % ("PASS (flat, no errors)" if not fails else "FAIL"))
    for f_ in fails:
        print("   - " + f_)
    return 0 if not fails else 1


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    a = argv[2:]
    if cmd == "ports":
        print(" ".join(str(p) for p in free_ports(int(a[0]))))
    elif cmd == "newconn":
        newconn(int(a[0]), a[1], a[2], int(a[3]), float(a[4]), float(a[5]), int(a[6]), a[7])
    elif cmd == "slow":
        slow(int(a[0]), a[1], a[2], int(a[3]), float(a[4]), int(a[5]), int(a[6]),
             float(a[7]), a[8])
    elif cmd == "baseline":
        baseline(int(a[0]), a[1])
    elif cmd == "monitor":
        monitor(int(a[0]), float(a[1]), float(a[2]), float(a[3]), a[4], a[5],
                [p for p in (a[6] if len(a) > 6 else "").split(",") if p])
    elif cmd == "verdict":
        return verdict(a[0])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
