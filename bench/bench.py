#!/usr/bin/env python3
"""tlsfront against HAProxy, hitch and nginx stream (issues #8 and #15). Run by
bench/run.sh (or `make bench`), which installs the tools and builds loadgen and
mkcerts; bench/README.md says what is measured and how.

Each proxy in turn gets the same ECDSA P-256 certificate, TLS 1.3, one worker,
pinned to CPU 1; nginx (the plaintext backend, a process of its own), the load
generators and this script stay on CPU 0. The proxy's own CPU time comes from
/proc (all of its processes), so a figure holds even when the load generator
is the bottleneck. Phase s counts each proxy's system calls (strace -c) per
resumed connection and per keep-alive request, in short runs of fixed counts.
Writes RESULTS.md, results.csv and results.png (gnuplot) into --out.
"""
import argparse
import csv
import datetime
import math
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
PROXIES = ("tlsfront", "haproxy", "hitch", "nginx")
PEERS = ("haproxy", "hitch", "nginx")
NAMES = {"tlsfront": "tlsfront", "haproxy": "HAProxy", "hitch": "hitch", "nginx": "nginx stream"}
# Debian's libnginx-mod-stream (nginx 1.22 builds the stream module dynamic)
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
NGINX_MANY_NA = ("n/a: nginx 1.22's stream module has no server_name (1.25.5 brought it), so "
                 "it cannot choose a server block (one per host) by SNI; its only way to serve "
                 "a certificate per host is ssl_certificate with $ssl_server_name, which "
                 "reads the key and certificate from disk at every handshake (nothing to "
                 "load at start-up, nothing to reload)")
SNI = "h0.bench.test"
SMALL = b"0123456789abcdef" * 8           # the "small request" body: 128 bytes
BULK_MB = 100

_procs = []                                # (Popen, process group) to end at exit
log_file = None


def say(*a):
    line = " ".join(str(x) for x in a)
    print(line, flush=True)
    if log_file:
        log_file.write(line + "\n")
        log_file.flush()


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes

def start(argv, cpu, out, env=None, stdin=None, stdout=None):
    """argv pinned to CPU cpu, in its own session (so that all of its
    processes can be found, timed and ended together)."""
    p = subprocess.Popen(["taskset", "-c", str(cpu)] + argv,
                         stdout=out if stdout is None else stdout, stderr=out, stdin=stdin,
                         start_new_session=True, env=env)
    _procs.append(p)
    return p


def end(p, timeout=15.0):
    """SIGTERM the process group p leads, then SIGKILL what is left."""
    if p is None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + timeout
    while session_pids(p.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if p in _procs:
        _procs.remove(p)


def end_all():
    for p in list(_procs):
        end(p, timeout=5)


def session_pids(sid):
    """Every live process of session sid (a proxy and all it forked)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        # fields[0] is the state (field 3), so the session (field 6) is [3]
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(d))
    return pids


def cpu_ns(pids):
    """On-CPU time of these processes, all threads, in ns (schedstat)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


class CpuWindow:
    """CPU time of a session's processes over a window. Processes that end
    inside the window lose their share; none of the proxies does that while
    it is measured (their workers live from start to stop)."""

    def __init__(self, sid):
        self.sid = sid

    def __enter__(self):
        self.t0 = time.monotonic()
        self.c0 = {pid: cpu_ns([pid]) for pid in session_pids(self.sid)}
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        c1 = {pid: cpu_ns([pid]) for pid in session_pids(self.sid)}
        self.cpu = sum(v - self.c0.get(pid, 0) for pid, v in c1.items()) / 1e9
        return False


def memory_kb(sid):
    """(sum of Pss, sum of Rss) of a session's processes, in KiB. Pss splits
    pages shared after fork between the processes that share them, so the
    sum is what the whole proxy costs."""
    pss = rss = 0
    for pid in session_pids(sid):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
    return pss, rss


def stable_memory(sid, timeout=20.0):
    """Pss once two readings half a second apart agree within 0.5%."""
    last = memory_kb(sid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = memory_kb(sid)
        if abs(cur[0] - last[0]) <= max(64, 0.005 * last[0]):
            return cur
        last = cur
    return last


def nofile_limit(pid):
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        pass
    return 0


def free_port():
    """A free port outside the ephemeral range (as tests/e2e/tf_run.py does:
    a port in the range can be taken as the local port of a client first)."""
    import random
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    a, b = (10000, lo - 1) if lo > 11000 else (hi + 1, 65535)
    for _ in range(200):
        port = random.randint(a, b)
        if port in _given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _given.add(port)
        return port
    raise BenchError("no free port")


_given = set()


def backend_conns(port):
    """Established connections to the backend port (the proxies' side)."""
    r = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%d )" % port],
                       capture_output=True, text=True)
    return sum(1 for line in r.stdout.splitlines() if line.strip())


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError("timed out waiting for " + what)
        time.sleep(0.02)


def served_cert(port, sni, timeout=2.0):
    """DER of the certificate served for sni, or None if no handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            with ctx.wrap_socket(s, server_hostname=sni) as t:
                return t.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def tls_details(port, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return "%s %s" % (t.version(), t.cipher()[0])


def pem_der(path):
    with open(path) as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def readline(p, timeout):
    """One line of p's stdout within timeout seconds, else BenchError."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise BenchError("no answer from loadgen within %.0f s" % timeout)
    line = p.stdout.readline()
    if not line:
        raise BenchError("loadgen ended early (exit %s)" % p.poll())
    return line.decode(errors="replace").strip()


# ---------------------------------------------------------------- the world

class World:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="tlsfront-bench-")
        self.load_cpu = 0
        self.proxy_cpu = 1 if os.cpu_count() >= 2 else 0
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # everything we start inherits the hard limit as its soft limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        self.loadgen = os.path.join(args.tools, "loadgen")
        self.mkcerts = os.path.join(args.tools, "mkcerts")
        self.one = self.certs("one", 1, 0)
        self.many = self.certs("hosts%d" % args.hosts, args.hosts, 10) if "7" in args.phases \
            else None
        self.www = os.path.join(self.work, "www")
        os.makedirs(self.www)
        with open(os.path.join(self.www, "small"), "wb") as f:
            f.write(SMALL)
        if "4" in args.phases:
            with open(os.path.join(self.www, "100m"), "wb") as f:
                chunk = os.urandom(1 << 20)
                for _ in range(BULK_MB):
                    f.write(chunk)
        self.nginx_port = free_port()
        self.nginx = None
        self.commands = {}

    def certs(self, name, n, changed):
        d = os.path.join(self.args.cache, name)
        stamp = os.path.join(d, "stamp")
        fresh = False
        if os.path.exists(stamp):
            with open(stamp) as f:
                fresh = f.read().split() == [str(n), str(changed)]
            # the certificates are valid 400 days: make new ones after 300
            fresh = fresh and time.time() - os.path.getmtime(stamp) < 300 * 86400
        if not fresh:
            shutil.rmtree(d, ignore_errors=True)
            say("making %d certificates in %s ..." % (n, d))
            t0 = time.monotonic()
            subprocess.run([self.mkcerts, d, str(n), str(changed)], check=True)
            say("  %.1f s" % (time.monotonic() - t0))
        return d

    def start_nginx(self):
        # the backend: not the nginx stream proxy (Proxy "nginx"), which has
        # a configuration, prefix and processes of its own
        root = os.path.join(self.work, "backend")
        os.makedirs(root, exist_ok=True)
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
daemon off; master_process off; worker_processes 1; pid %(r)s/nginx.pid;
worker_rlimit_nofile %(nofile)d;
error_log %(r)s/error.log;
events { worker_connections %(wc)d; multi_accept on; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000; keepalive_timeout 10m;
  client_header_timeout 10m; send_timeout 10m;
  client_body_temp_path %(r)s; proxy_temp_path %(r)s; fastcgi_temp_path %(r)s;
  uwsgi_temp_path %(r)s; scgi_temp_path %(r)s;
  default_type application/octet-stream;
  server { listen 127.0.0.1:%(p)d backlog=4096; root %(www)s; }
}
""" % {"r": root, "p": self.nginx_port, "www": self.www, "nofile": self.nofile,
               "wc": self.nofile - 100})
        self.nginx_log = open(os.path.join(root, "stderr.log"), "w")
        self.nginx = start(["nginx", "-c", conf, "-p", root], self.load_cpu, self.nginx_log)
        wait_for(lambda: self._http_ok(), 15, "nginx")

    def _http_ok(self):
        try:
            with socket.create_connection(("127.0.0.1", self.nginx_port), timeout=1) as s:
                s.sendall(b"GET /small HTTP/1.0\r\n\r\n")
                return s.recv(12) == b"HTTP/1.1 200"
        except OSError:
            return False


# ---------------------------------------------------------------- proxies

class Proxy:
    """One proxy: config writer, start, reload, stop."""

    def __init__(self, world, kind):
        self.w = world
        self.kind = kind
        self.p = None
        self.port = None
        self.dir = os.path.join(world.work, kind)
        os.makedirs(self.dir, exist_ok=True)

    # -- configurations
    def configure(self, many=False):
        self.port = free_port()
        w = self.w
        nb = w.nginx_port
        if self.kind == "tlsfront":
            conf = os.path.join(self.dir, "tlsfront.ini")
            lines = ["[global]", "listen = 127.0.0.1:%d" % self.port, "workers = 1",
                     "log = stderr", "log_level = %s" % w.args.tlsfront_log_level,
                     "shutdown_timeout = 1s"]
            if many:
                lines += ["hosts = %s/hosts.d/*.ini" % w.many, "[defaults]",
                          "backend = 127.0.0.1:%d" % nb, "idle_timeout = 10m"]
            else:
                lines += ["hosts = %s/none/*.ini" % self.dir, "[defaults]",
                          "idle_timeout = 10m", "[host bench]",
                          "cert = %s/certs/h0.crt" % w.one, "key = %s/certs/h0.key" % w.one,
                          "backend = 127.0.0.1:%d" % nb, "default = yes"]
            text = "\n".join(lines) + "\n"
            argv = [w.args.tlsfront, "-c", conf]
        elif self.kind == "haproxy":
            conf = os.path.join(self.dir, "haproxy.cfg")
            crt = os.path.join(w.many, "pem") + "/" if many else \
                os.path.join(w.one, "pem", "h0.pem")
            # HAProxy refuses to start with a maxconn it cannot back with
            # descriptors (two per connection)
            text = """global
    nbthread 1
    maxconn %(mc)d
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend fe
    bind 127.0.0.1:%(p)d ssl crt %(crt)s ssl-min-ver TLSv1.3
    default_backend be
backend be
    server s1 127.0.0.1:%(nb)d
""" % {"mc": (w.nofile - 200) // 2, "p": self.port, "crt": crt, "nb": nb}
            argv = ["haproxy", "-W", "-db", "-f", conf]
        elif self.kind == "nginx":
            if many:
                raise BenchError(NGINX_MANY_NA)
            conf = os.path.join(self.dir, "nginx.conf")
            # a master and one worker (run as nobody, as Debian's nginx does);
            # session tickets and the session cache at their defaults
            # (tickets on, with keys of its own; cache "none")
            text = """load_module %(mod)s;
daemon off;
worker_processes 1;
user nobody nogroup;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
worker_rlimit_nofile %(nofile)d;
events { worker_connections %(wc)d; }
stream {
    server {
        listen 127.0.0.1:%(p)d ssl backlog=1024;
        ssl_certificate %(one)s/certs/h0.crt;
        ssl_certificate_key %(one)s/certs/h0.key;
        ssl_protocols TLSv1.3;
        ssl_alpn http/1.1;
        proxy_pass 127.0.0.1:%(nb)d;
        proxy_connect_timeout 5s;
        proxy_timeout 10m;
    }
}
""" % {"mod": NGINX_STREAM_MODULE, "d": self.dir, "nofile": w.nofile, "wc": w.nofile - 100,
       "p": self.port, "one": w.one, "nb": nb}
            argv = ["nginx", "-c", conf, "-p", self.dir + "/", "-e", self.dir + "/error.log"]
        else:
            conf = os.path.join(self.dir, "hitch.conf")
            os.makedirs(os.path.join(self.dir, "ocsp"), exist_ok=True)
            pem = ('pem-dir = "%s/pem"\npem-dir-glob = "*.pem"' % w.many) if many else \
                'pem-file = "%s/pem/h0.pem"' % w.one
            # hitch refuses to run its workers as root
            text = """frontend = "[127.0.0.1]:%(p)d"
backend = "[127.0.0.1]:%(nb)d"
%(pem)s
workers = 1
tls-protos = TLSv1.3
daemon = off
write-proxy-v2 = off
ocsp-dir = "%(d)s/ocsp"
backlog = 1024
log-level = 1
user = "nobody"
group = "nogroup"
""" % {"p": self.port, "nb": nb, "pem": pem, "d": self.dir}
            argv = ["hitch", "--config=" + conf]
        with open(conf, "w") as f:
            f.write(text)
        self.conf_text = text
        self.argv = argv
        return argv

    def start(self, many=False):
        argv = self.configure(many)
        self.log_path = os.path.join(self.dir, "%s%s.log" % (self.kind, "-many" if many else ""))
        self.log = open(self.log_path, "a")
        self.t_start = time.monotonic()
        self.p = start(argv, self.w.proxy_cpu, self.log)
        return self.p

    def wait_ready(self, sni=SNI, der=None, timeout=30.0):
        def ok():
            if self.p.poll() is not None:
                raise BenchError("%s exited (%s); see %s" % (self.kind, self.p.returncode,
                                                             self.log_path))
            got = served_cert(self.port, sni)
            return got is not None and (der is None or got == der)
        wait_for(ok, timeout, "%s to serve %s" % (self.kind, sni))

    def reload(self):
        # tlsfront, hitch and nginx reload on SIGHUP; HAProxy's master (-W) on SIGUSR2
        os.kill(self.p.pid, signal.SIGUSR2 if self.kind == "haproxy" else signal.SIGHUP)

    def stop(self):
        end(self.p)
        self.p = None
        self.log.close()

    def sid(self):
        return self.p.pid


# ---------------------------------------------------------------- phases

def parse_wrk(text):
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    if not m:
        raise BenchError("cannot read wrk's output:\n" + text)
    units = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
    tunits = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    r = {"requests": int(m.group(1)), "seconds": float(m.group(2)) * tunits[m.group(3)],
         "bytes": float(m.group(4)) * units[m.group(5)]}
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["errors"] = sum(int(x) for x in e.groups()) if e else 0
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["errors"] += int(n.group(1)) if n else 0
    return r


def run_load(w, argv, timeout):
    """A load generator on the load CPU; its stdout as text."""
    p = start(argv, w.load_cpu, subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end(p)
        raise BenchError("%s did not finish in %d s" % (argv[0], timeout))
    _procs.remove(p)
    return out.decode(errors="replace")


def phase_handshakes(w, px, res):
    d = w.args.duration
    argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % px.port, "-new", "-tls1_3",
            "-time", str(d)]
    w.commands["1"] = " ".join(argv) + "   (x%d in parallel)" % w.args.clients
    with CpuWindow(px.sid()) as cw:
        ps = [start(argv, w.load_cpu, subprocess.DEVNULL, stdout=subprocess.PIPE)
              for _ in range(w.args.clients)]
        outs = []
        for p in ps:
            try:
                outs.append(p.communicate(timeout=d + 60)[0].decode(errors="replace"))
            except subprocess.TimeoutExpired:
                end(p)
                raise BenchError("s_time did not finish")
            _procs.remove(p)
    n = 0
    for o in outs:
        m = re.search(r"(\d+) connections in [\d.]+ real seconds", o) or \
            re.search(r"(\d+) connections in [\d.]+s", o)
        if not m:
            raise BenchError("cannot read s_time's output:\n" + o)
        n += int(m.group(1))
    if n == 0:
        raise BenchError("no handshake completed")
    res["hs_rate"] = n / cw.wall
    res["hs_cpu_us"] = cw.cpu / n * 1e6
    res["hs_busy"] = cw.cpu / cw.wall
    say("  %-8s 1 full handshakes: %d in %.1f s = %.0f/s, %.1f us CPU each, proxy busy %.0f%%" %
        (px.kind, n, cw.wall, res["hs_rate"], res["hs_cpu_us"], 100 * res["hs_busy"]))


def phase_resumed(w, px, res):
    d = w.args.duration
    argv = [w.loadgen, "resume", "127.0.0.1", str(px.port), SNI, "/small", str(d),
            str(w.args.clients * 2)]
    w.commands["2"] = " ".join(argv).replace(w.loadgen, "loadgen")
    with CpuWindow(px.sid()) as cw:
        out = run_load(w, argv, d + 60)
    m = re.search(r"requests=(\d+) resumed=(\d+) full=(\d+) errors=(\d+) seconds=([\d.]+) "
                  r"first_error=(\S+)", out)
    if not m:
        raise BenchError("cannot read loadgen's output: " + out)
    n, resumed, errors = int(m.group(1)), int(m.group(2)), int(m.group(4))
    if n == 0:
        raise BenchError("no request completed: " + m.group(6))
    res["res_rate"] = n / cw.wall
    res["res_cpu_us"] = cw.cpu / n * 1e6
    res["res_resumed_pct"] = 100.0 * resumed / n
    res["res_errors"] = errors
    res["res_busy"] = cw.cpu / cw.wall
    say("  %-8s 2 resumed + request: %d in %.1f s = %.0f/s, %.1f us CPU each, %.1f%% resumed, "
        "%d errors (%s), proxy busy %.0f%%" % (px.kind, n, cw.wall, res["res_rate"], res["res_cpu_us"],
                                              res["res_resumed_pct"], errors, m.group(6),
                                              100 * res["res_busy"]))


def phase_keepalive(w, px, res):
    d = w.args.duration
    argv = ["wrk", "-t1", "-c64", "-d%ds" % d, "--timeout", "10s",
            "https://127.0.0.1:%d/small" % px.port]
    w.commands["3"] = " ".join(argv)
    with CpuWindow(px.sid()) as cw:
        r = parse_wrk(run_load(w, argv, d + 60))
    if r["requests"] == 0:
        raise BenchError("no request completed")
    res["ka_rate"] = r["requests"] / cw.wall
    res["ka_cpu_us"] = cw.cpu / r["requests"] * 1e6
    res["ka_errors"] = r["errors"]
    res["ka_busy"] = cw.cpu / cw.wall
    say("  %-8s 3 keep-alive: %d requests in %.1f s = %.0f/s, %.2f us CPU each, %d errors, "
        "proxy busy %.0f%%" % (px.kind, r["requests"], cw.wall, res["ka_rate"], res["ka_cpu_us"],
                               r["errors"], 100 * res["ka_busy"]))


def phase_bulk(w, px, res):
    d = w.args.duration
    argv = ["wrk", "-t1", "-c2", "-d%ds" % d, "--timeout", "60s",
            "https://127.0.0.1:%d/100m" % px.port]
    w.commands["4"] = " ".join(argv)
    with CpuWindow(px.sid()) as cw:
        r = parse_wrk(run_load(w, argv, d + 120))
    mb = r["bytes"] / 1e6
    if mb < 1:
        raise BenchError("nothing downloaded")
    res["bulk_mbps"] = mb / cw.wall
    res["bulk_mbps_core"] = mb / cw.cpu
    res["bulk_cpu_s_gb"] = cw.cpu / (mb / 1000)
    res["bulk_errors"] = r["errors"]
    res["bulk_busy"] = cw.cpu / cw.wall
    say("  %-8s 4 bulk: %.0f MB in %.1f s = %.0f MB/s, %.0f MB per CPU second, %.2f CPU s/GB, "
        "%d errors, proxy busy %.0f%%" % (px.kind, mb, cw.wall, res["bulk_mbps"], res["bulk_mbps_core"],
                                         res["bulk_cpu_s_gb"], r["errors"],
                                         100 * res["bulk_busy"]))


class Holders:
    """loadgen hold processes that together open n idle TLS connections."""

    PER_PROC = 12500      # connections per holder (under its descriptor limit)

    def __init__(self, w, px, n, timeout):
        self.ps = []
        k = max(1, math.ceil(n / min(self.PER_PROC, w.nofile - 500)))
        for i in range(k):
            share = n // k + (1 if i < n % k else 0)
            # eight source addresses per holder: 8 x the ephemeral range
            argv = [w.loadgen, "hold", "127.0.0.1", str(px.port), SNI, str(share),
                    "127.0.%d.1" % (10 + i), "8", "32", str(timeout)]
            self.ps.append(start(argv, w.load_cpu, subprocess.DEVNULL, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE))
        self.argv0 = " ".join(argv).replace(w.loadgen, "loadgen") + \
            ("   (x%d, sources 127.0.10+i.1..8)" % k if k > 1 else "")

    def opened(self, timeout):
        total, errors, firsts = 0, 0, []
        for p in self.ps:
            line = readline(p, timeout)
            m = re.match(r"opened (\d+) errors (\d+) first_error=(\S+)", line)
            if not m:
                raise BenchError("loadgen: " + line)
            total += int(m.group(1))
            errors += int(m.group(2))
            if m.group(3) != "-":
                firsts.append(m.group(3))
        return total, errors, firsts

    def check(self):
        alive = dead = 0
        for p in self.ps:
            p.stdin.write(b"check\n")
            p.stdin.flush()
        for p in self.ps:
            m = re.match(r"alive (\d+) dead (\d+)", readline(p, 120))
            alive += int(m.group(1))
            dead += int(m.group(2))
        return alive, dead

    def close(self):
        for p in self.ps:
            try:
                p.stdin.write(b"exit\n")
                p.stdin.close()
            except OSError:
                pass
        for p in self.ps:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                pass
            end(p)


def warm_up(w, px):
    """A few full and resumed connections, so that what a proxy allocates
    once (session cache, first buffers) is there before a baseline."""
    run_load(w, [w.loadgen, "resume", "127.0.0.1", str(px.port), SNI, "/small", "0.3", "2"], 60)


def phase_idle_rss(w, px, res):
    n = w.args.idle
    px.start()
    try:
        px.wait_ready()
        warm_up(w, px)
        base = stable_memory(px.sid())
        h = Holders(w, px, n, 30)
        w.commands["5"] = h.argv0
        try:
            opened, errors, firsts = h.opened(n / 50 + 120)
            if errors:
                raise BenchError("%d of %d idle connections failed (%s)" %
                                 (errors, n, ", ".join(sorted(set(firsts)))))
            wait_for(lambda: backend_conns(w.nginx_port) >= opened, 60,
                     "%d backend connections" % opened)
            mem = stable_memory(px.sid())
            alive, dead = h.check()
            if dead:
                raise BenchError("%d idle connections were closed" % dead)
            res["idle_n"] = alive
            res["idle_kb"] = (mem[0] - base[0]) / alive
            res["idle_rss_kb"] = (mem[1] - base[1]) / alive
            res["idle_base_mb"] = base[0] / 1024
            say("  5 idle: %d connections: Pss %.1f -> %.1f MB = %.2f KB each (Rss %.2f KB)" %
                (alive, base[0] / 1024, mem[0] / 1024, res["idle_kb"], res["idle_rss_kb"]))
        finally:
            h.close()
    finally:
        px.stop()


def phase_max_idle(w, px, res):
    n = w.args.max_idle
    px.start()
    try:
        px.wait_ready()
        h = Holders(w, px, n, 10)
        w.commands["6"] = h.argv0
        try:
            opened, errors, firsts = h.opened(n / 50 + 180)
            # hold them a while before counting who is still there
            time.sleep(w.args.hold)
            alive, dead = h.check()
            limit = min(nofile_limit(pid) for pid in session_pids(px.sid()))
            res["max_idle"] = alive
            res["max_idle_note"] = "opened %d, then %d failed (%s); %d alive after %d s; " \
                "proxy descriptor limit %d" % (opened, errors, ", ".join(sorted(set(firsts)))
                                               or "-", alive, w.args.hold, limit)
            say("  6 most idle connections: " + res["max_idle_note"])
        finally:
            h.close()
    finally:
        px.stop()


def warm_files(top):
    """Read every file of the many-hosts set once: start-up is then measured
    with the files in the page cache for every proxy alike. Without it the
    figure of whoever came first after the other figures depended on what
    the kernel had dropped meanwhile (tlsfront 2.0 s alone, 3.2 s after
    figures 1-6; HAProxy 5.3 s and 6.1 s)."""
    for sub in ("certs", "pem", "hosts.d"):
        d = os.path.join(top, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                while f.read(1 << 16):
                    pass


def phase_many_hosts(w, px, res):
    if px.kind == "nginx":
        raise BenchError(NGINX_MANY_NA)
    n = w.args.hosts
    many = w.many
    changed = [k * (n // 10) for k in range(10)]

    def put(version):
        # a new file (new inode) renamed over the old, as certbot and
        # configuration management do
        for i in changed:
            for sub, ext in (("certs", "crt"), ("certs", "key"), ("pem", "pem")):
                src = os.path.join(many, version, sub, "h%d.%s" % (i, ext))
                tmp = os.path.join(many, version, sub, ".h%d.%s.tmp" % (i, ext))
                shutil.copyfile(src, tmp)
                os.replace(tmp, os.path.join(many, sub, "h%d.%s" % (i, ext)))

    put("v1")
    last = "h%d.bench.test" % (n - 1)
    der_last = pem_der(os.path.join(many, "certs", "h%d.crt" % (n - 1)))
    der_v2 = {i: pem_der(os.path.join(many, "v2", "certs", "h%d.crt" % i)) for i in changed}
    warm_files(many)
    px.start(many=True)
    t0 = px.t_start
    try:
        px.wait_ready(last, der_last, timeout=w.args.many_timeout)
        res["start_s"] = time.monotonic() - t0
        mem = stable_memory(px.sid())
        res["start_mb"] = mem[0] / 1024
        res["start_rss_mb"] = mem[1] / 1024
        say("  7 %d hosts: serving after %.2f s, Pss %.1f MB (Rss %.1f MB)" %
            (n, res["start_s"], res["start_mb"], res["start_rss_mb"]))
        put("v2")
        t0 = time.monotonic()
        px.reload()
        todo = set(changed)
        deadline = t0 + w.args.many_timeout
        while todo:
            for i in sorted(todo):
                if served_cert(px.port, "h%d.bench.test" % i) == der_v2[i]:
                    todo.discard(i)
            if px.p.poll() is not None:
                raise BenchError("%s exited during the reload" % px.kind)
            if time.monotonic() > deadline:
                raise BenchError("reload not done after %d s" % w.args.many_timeout)
            time.sleep(0.01)
        res["reload_s"] = time.monotonic() - t0
        say("    reload with 10 changed: all 10 serve the new certificate after %.2f s" %
            res["reload_s"])
    finally:
        px.stop()
        put("v1")


# ---------------------------------------------------------------- system calls

def traced(pids):
    """Whether every thread of these processes has a tracer."""
    for pid in pids:
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                    m = re.search(r"^TracerPid:\s*(\d+)", f.read(), re.M)
            except OSError:
                continue
            if m and int(m.group(1)) == 0:
                return False
    return True


def parse_strace_c(text):
    """{syscall: calls} from strace -c's table (the total line left out)."""
    counts = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 5 or not re.match(r"^[\d.]+$", f[0]) or f[-1] == "total":
            continue
        try:
            counts[f[-1]] = int(f[3])
        except ValueError:
            pass
    return counts


def count_syscalls(w, px, mode, per_proc):
    """Run loadgen MODE (resume-n or keepalive-n) against px with strace -c
    attached to all of px's processes (and threads) after the warm-up, for
    a fixed count. Returns (counts, units, loadgen's tally)."""
    procs = w.args.sc_procs
    argv = [w.loadgen, mode, "127.0.0.1", str(px.port), SNI, "/small", str(per_proc), str(procs)]
    w.commands["s" + ("2" if mode == "resume-n" else "3")] = \
        " ".join(argv).replace(w.loadgen, "loadgen") + \
        "   (strace -c -f -p <every process of the proxy>, attached after the warm-up)"
    lg = start(argv, w.load_cpu, subprocess.DEVNULL, stdin=subprocess.PIPE,
               stdout=subprocess.PIPE)
    st = None
    out = os.path.join(px.dir, "strace-%s.txt" % mode)
    try:
        line = readline(lg, 60)
        if line != "ready":
            raise BenchError("loadgen %s: %s" % (mode, line))
        pids = session_pids(px.sid())
        targets = []
        for pid in pids:
            targets += ["-p", str(pid)]
        st = start(["strace", "-c", "-f", "-o", out] + targets, w.load_cpu, subprocess.DEVNULL)
        wait_for(lambda: traced(pids) or st.poll() is not None, 20, "strace to attach")
        if st.poll() is not None:
            raise BenchError("strace exited (%s)" % st.returncode)
        lg.stdin.write(b"go\n")
        lg.stdin.flush()
        line = readline(lg, 600)
        # detach before the keep-alive connections close
        st.send_signal(signal.SIGINT)
        try:
            st.wait(60)
        except subprocess.TimeoutExpired:
            raise BenchError("strace did not stop")
        _procs.remove(st)
        st = None
    finally:
        if st is not None:
            end(st)
        try:
            lg.stdin.write(b"exit\n")
            lg.stdin.close()
        except OSError:
            pass
        try:
            lg.wait(30)
        except subprocess.TimeoutExpired:
            pass
        end(lg)
    m = re.search(r"requests=(\d+) resumed=(\d+) full=(\d+) errors=(\d+) seconds=([\d.]+) "
                  r"first_error=(\S+)", line)
    if not m:
        raise BenchError("cannot read loadgen's output: " + line)
    tally = {"requests": int(m.group(1)), "resumed": int(m.group(2)), "full": int(m.group(3)),
             "errors": int(m.group(4)), "first_error": m.group(6)}
    if tally["requests"] == 0:
        raise BenchError("no request completed: " + tally["first_error"])
    with open(out) as f:
        counts = parse_strace_c(f.read())
    if not counts:
        raise BenchError("strace counted nothing (see %s)" % out)
    return counts, tally["requests"], tally


def phase_syscalls(w, px, res):
    """System calls per resumed connection + dial + request (2) and per
    keep-alive request (3): the median per unit over --sc-reps runs of each."""
    for key, mode, per_proc, label in (
            ("sc_res", "resume-n", w.args.sc_conns, "per resumed connection + request"),
            ("sc_ka", "keepalive-n", w.args.sc_requests, "per keep-alive request")):
        runs = []
        for _ in range(w.args.sc_reps):
            counts, units, tally = count_syscalls(w, px, mode, per_proc)
            if tally["errors"]:
                raise BenchError("%d errors (%s) while counting system calls %s" % (
                    tally["errors"], tally["first_error"], label))
            per = {name: c / units for name, c in counts.items()}
            per["total"] = sum(counts.values()) / units
            per["units"] = units
            if mode == "resume-n":
                per["resumed_pct"] = 100.0 * tally["resumed"] / units
            runs.append(per)
        med = median_of(runs)
        res[key + "_total"] = med["total"]
        res[key + "_epoll_ctl"] = med.get("epoll_ctl", 0.0)
        res[key + "_units"] = med["units"]
        if "resumed_pct" in med:
            res[key + "_resumed_pct"] = med["resumed_pct"]
        for name, v in med.items():
            if name not in ("total", "units", "resumed_pct"):
                res["%s:%s" % (key, name)] = v
        if len(runs) > 1:
            tot = sorted(r["total"] for r in runs)
            res[key + "_spread"] = tot[-1] - tot[0]
        for i, r in enumerate(runs):
            res["%s_total#%d" % (key, i + 1)] = r["total"]
        top = sorted(((v, n) for n, v in med.items()
                      if n not in ("total", "units", "resumed_pct")), reverse=True)[:5]
        say("  %-8s s %s: %.1f system calls (%s), epoll_ctl %.2f%s%s" % (
            px.kind, label, med["total"], ", ".join("%s %.1f" % (n, v) for v, n in top),
            med.get("epoll_ctl", 0.0),
            ", %.1f%% resumed" % med["resumed_pct"] if "resumed_pct" in med else "",
            ", runs %s" % " ".join("%.2f" % r["total"] for r in runs) if len(runs) > 1 else ""))


def syscall_tables(results, proxies, top=6):
    """Markdown tables of the system calls per unit: total, epoll_ctl, and
    the commonest calls (the union of each proxy's top ones)."""
    L = []
    for key, title in (("sc_res", "per resumed connection + backend dial + request"),
                       ("sc_ka", "per keep-alive request")):
        have = [p for p in proxies if key + "_total" in results.get(p, {})]
        if not have:
            continue
        names = set()
        for p in have:
            r = results[p]
            calls = sorted(((v, k.split(":", 1)[1]) for k, v in r.items()
                            if k.startswith(key + ":") and "#" not in k), reverse=True)
            # the top ones that make a difference (not a timer every few seconds)
            names.update(n for v, n in calls[:top] if v >= 0.05)
        names.discard("epoll_ctl")
        order = sorted(names, key=lambda n: -max(results[p].get("%s:%s" % (key, n), 0)
                                                 for p in have))
        L.append("| system calls %s | %s |" % (title, " | ".join(NAMES[p] for p in have)))
        L.append("|---|%s" % ("---:|" * len(have)))
        L.append("| **total** | %s |" % " | ".join(
            "**%.1f**" % results[p][key + "_total"] for p in have))
        L.append("| epoll_ctl | %s |" % " | ".join(
            "%.2f" % results[p].get(key + "_epoll_ctl", 0) for p in have))
        for n in order:
            L.append("| %s | %s |" % (n, " | ".join(
                "%.2f" % results[p].get("%s:%s" % (key, n), 0) for p in have)))
        if key == "sc_res":
            L.append("| (share resumed) | %s |" % " | ".join(
                "%.1f %%" % results[p].get("sc_res_resumed_pct", 0) for p in have))
        L.append("| (units counted) | %s |" % " | ".join(
            "{:,}".format(int(results[p].get(key + "_units", 0))) for p in have))
        if any(key + "_spread" in results[p] for p in have):
            L.append("| (spread of the total over the runs) | %s |" % " | ".join(
                "%.2f" % results[p].get(key + "_spread", 0) for p in have))
        L.append("")
    return L


# ---------------------------------------------------------------- report

# (key, label, unit, lower is better, target kind, target value)
FIGURES = [
    ("hs_cpu_us", "1. full handshake: proxy CPU per handshake", "us", True, "ratio", 0.8),
    ("hs_rate", "1. full handshakes per second", "/s", False, None, None),
    ("res_cpu_us", "2. resumed handshake + dial + request: CPU per request", "us", True,
     "ratio", 0.8),
    ("res_rate", "2. resumed handshakes + requests per second", "/s", False, None, None),
    ("res_resumed_pct", "2. share of handshakes resumed", "%", False, None, None),
    ("sc_res_total", "2. system calls per resumed connection + dial + request (strace, "
     "phase s)", "", True, "vs_nginx", 1.0),
    ("sc_res_epoll_ctl", "2. of which epoll_ctl", "", True, None, None),
    ("ka_cpu_us", "3. keep-alive request: CPU per request", "us", True, "ratio", 0.8),
    ("ka_rate", "3. keep-alive requests per second", "/s", False, None, None),
    ("sc_ka_total", "3. system calls per keep-alive request (strace, phase s)", "", True,
     "vs_nginx", 1.0),
    ("sc_ka_epoll_ctl", "3. of which epoll_ctl", "", True, None, None),
    ("bulk_mbps_core", "4. bulk 100 MB: MB/s per core (MB per CPU second)", "MB/s", False,
     "ratio", 1.5),
    ("bulk_mbps", "4. bulk 100 MB: MB/s", "MB/s", False, None, None),
    ("bulk_cpu_s_gb", "4. bulk 100 MB: CPU seconds per GB", "s", True, None, None),
    ("idle_kb", "5. memory per idle TLS connection (Pss)", "KB", True, "abs_max", 10.0),
    ("idle_n", "5. idle connections measured", "", False, None, None),
    ("max_idle", "6. most idle TLS connections held", "", False, "abs_min", 50000),
    ("start_s", "7. start-up with N hosts (to first handshake)", "s", True, "vs_haproxy", 0.5),
    ("start_mb", "7. memory after start-up with N hosts (Pss)", "MB", True, None, None),
    ("reload_s", "7. reload with 10 hosts changed", "s", True, None, None),
]

# figures in the chart: relative cost against the best peer, lower is better
CHART = [("hs_cpu_us", "handshake\\nCPU"), ("res_cpu_us", "resumed+req\\nCPU"),
         ("sc_res_total", "resumed+req\\nsyscalls"), ("ka_cpu_us", "keep-alive\\nCPU"),
         ("sc_ka_total", "keep-alive\\nsyscalls"), ("bulk_cpu_s_gb", "bulk\\nCPU/GB"),
         ("idle_kb", "idle conn\\nmemory"), ("max_idle", "max idle\\n(inverse)"),
         ("start_s", "start-up\\nN hosts"), ("start_mb", "memory\\nN hosts"),
         ("reload_s", "reload\\n10 changed")]


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        s = "{:,.0f}".format(v)
    elif abs(v) >= 100:
        s = "%.0f" % v
    elif abs(v) >= 10:
        s = "%.1f" % v
    else:
        s = "%.2f" % v
    return s + (" " + unit if unit and unit not in ("/s",) else unit)


def verdict(key, lower, kind, target, results, nofile=None):
    tf = results["tlsfront"].get(key)
    peers = [results[p].get(key) for p in PEERS if results.get(p, {}).get(key) is not None]
    ratio = None
    if tf is not None and peers:
        best = min(peers) if lower else max(peers)
        ratio = tf / best if best else None
    if key == "idle_n":
        ratio = None
    if kind is None:
        return ratio, "", ""
    if kind == "ratio":
        tgt = ("<= %.1fx" if lower else ">= %.1fx") % target
        met = None if ratio is None else (ratio <= target if lower else ratio >= target)
    elif kind == "abs_max":
        tgt, met = "<= %g KB" % target, None if tf is None else tf <= target
    elif kind == "abs_min":
        tgt, met = ">= {:,}".format(target), None if tf is None else tf >= target
        if met is False and nofile is not None and nofile < 2 * target:
            # two descriptors a connection: not reachable on this machine
            return ratio, tgt, "n/a (descriptor limit %d)" % nofile
    elif kind == "vs_nginx":
        ng = results.get("nginx", {}).get(key)
        tgt = "<= %.1fx nginx stream" % target
        met = None if tf is None or ng is None else tf <= target * ng
    else:   # vs_haproxy
        hp = results.get("haproxy", {}).get(key)
        tgt = "<= %.1fx HAProxy" % target
        met = None if tf is None or hp is None else tf / hp <= target
        if tf is not None and hp:
            ratio = tf / hp
    return ratio, tgt, {True: "yes", False: "**no**", None: "n/a"}[met]


def git(*a):
    r = subprocess.run(["git", "-C", SRCDIR] + list(a), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def version_of(argv, pattern):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    m = re.search(pattern, r.stdout + r.stderr)
    return m.group(1) if m else "n/a"


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return "%d CPUs, %s, %.0f GiB RAM, Linux %s" % (os.cpu_count(), model, mem, platform.release())


def write_report(w, results, notes, tls, elapsed):
    a = w.args
    out = a.out
    os.makedirs(out, exist_ok=True)
    ran = [p for p in PROXIES if p in results]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["proxy", "figure", "value"])
        for p in ran:
            for k, v in sorted(results[p].items()):
                cw.writerow([p, k, "%.6g" % v if isinstance(v, float) else v])

    head = git("rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") \
        else ""
    L = []
    L.append("# tlsfront benchmark results\n")
    L.append("Made by `bench/run.sh` (`make bench`); what is measured and why: "
             "[README.md](README.md). Raw numbers: [results.csv](results.csv); "
             "chart: [results.png](results.png).\n")
    L.append("- Date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
    L.append("- Commit: %s%s; tlsfront binary: `%s`" % (head, dirty, a.tlsfront))
    L.append("- Machine: %s" % machine())
    L.append("- Versions: tlsfront %s, HAProxy %s, hitch %s, nginx %s (stream proxy, with "
             "Debian's libnginx-mod-stream, and backend), %s, wrk %s, strace %s" % (
        version_of([a.tlsfront, "-V"], r"(\d+\.\d+\.\d+\S*)"),
        version_of(["haproxy", "-v"], r"version (\S+)"),
        version_of(["hitch", "--version"], r"hitch (\S+)"),
        version_of(["nginx", "-v"], r"nginx/(\S+)"),
        version_of(["openssl", "version"], r"(OpenSSL \S+)"),
        version_of(["wrk", "-v"], r"wrk (\S+)"),
        version_of(["strace", "-V"], r"version (\S+)")))
    L.append("- Layout: each proxy pinned to CPU %d (`taskset -c %d`), one worker; the nginx "
             "backend, the load generators and this script on CPU %d. Descriptor limit (hard, "
             "not raisable here): %d." % (w.proxy_cpu, w.proxy_cpu, w.load_cpu, w.nofile))
    L.append("- Negotiated: %s" % "; ".join("%s: %s" % (NAMES[p], tls.get(p, "n/a")) for p in ran))
    parts = []
    if set("1234") & set(a.phases):
        parts.append("figures 1-4 %d round(s) of %s s per proxy and phase, proxies interleaved, "
                     "median shown; %d clients" % (a.rounds, a.duration, a.clients))
    if "s" in a.phases:
        parts.append("system calls (s): %d loadgen processes, %s resumed connections and %s "
                     "keep-alive requests each, %d run(s), median" % (
                         a.sc_procs, "{:,}".format(a.sc_conns), "{:,}".format(a.sc_requests),
                         a.sc_reps))
    for k, text in (("5", "%s idle connections for 5" % "{:,}".format(a.idle)),
                    ("6", "%s tried for 6" % "{:,}".format(a.max_idle)),
                    ("7", "%s hosts for 7" % "{:,}".format(a.hosts))):
        if k in a.phases:
            parts.append(text)
    L.append("- Run: phases %s; %s%s; whole run %.0f s.\n" % (
        a.phases, "; ".join(parts), " (QUICK)" if a.quick else "", elapsed))
    L.append("| figure | %s | tlsfront vs best peer | target | met? |" %
             " | ".join(NAMES[p] for p in PROXIES))
    L.append("|---|%s---:|---|---|" % ("---:|" * len(PROXIES)))
    for key, label, unit, lower, kind, target in FIGURES:
        label = label.replace("N hosts", "{:,} hosts".format(a.hosts))
        vals = [fmt(results.get(p, {}).get(key), unit) for p in PROXIES]
        if all(v == "n/a" for v in vals):
            continue        # a figure of a phase not run
        ratio, tgt, met = verdict(key, lower, kind, target, results, w.nofile)
        L.append("| %s | %s | %s | %s | %s |" % (
            label, " | ".join(vals), "%.2fx" % ratio if ratio is not None else "", tgt, met))
    L.append("")
    busy = [(key, label) for key, label in (
        ("hs_busy", "1. full handshakes"), ("res_busy", "2. resumed + request"),
        ("ka_busy", "3. keep-alive"), ("bulk_busy", "4. bulk"))
        if any(key in results.get(p, {}) for p in PROXIES)]
    if busy:
        L.append("CPU is the proxy's own (all of its processes, `/proc/PID/task/*/schedstat`) "
                 "over the phase, divided by the work done in it; rates are what the load "
                 "generator reached on its one CPU, so a peer that is cheaper per unit may "
                 "still show a lower rate when the client is the bottleneck. Proxy CPU busy "
                 "during each phase (100% = the proxy was the bottleneck):\n")
        L.append("| phase | %s |" % " | ".join(NAMES[p] for p in PROXIES))
        L.append("|---|%s" % ("---:|" * len(PROXIES)))
        for key, label in busy:
            L.append("| %s | %s |" % (label, " | ".join(
                "%.0f%%" % (100 * results[p][key]) if key in results.get(p, {}) else "n/a"
                for p in PROXIES)))
        L.append("")
    sc = syscall_tables(results, PROXIES)
    if sc:
        L.append("System calls (phase s) of all of each proxy's processes and threads, counted "
                 "by `strace -c -f` attached after a warm-up, over a fixed number of resumed "
                 "connections (each: TLS 1.3 resumption, the proxy's dial to the backend, one "
                 "`GET /small` with `Connection: close`, close) and of keep-alive requests, "
                 "divided by what the client completed; the CPU figures come from runs "
                 "without strace. Calls that failed (EAGAIN) count too. Per unit:\n")
        L += sc
    if notes:
        L.append("Notes from this run:\n")
        for n in notes:
            L.append("- " + n)
        L.append("")
    L.append("Commands (the proxy's port varies per run; SNI %s):\n" % SNI)
    L.append("```")
    for k in sorted(w.commands):
        L.append("%s: %s" % (k, w.commands[k]))
    if "7" in a.phases:
        L.append("7: start each proxy on %s hosts (one certificate and key per host, ECDSA "
                 "P-256, made by mkcerts), poll TLS handshakes (SNI h%d.bench.test) until the "
                 "last host serves its certificate; replace 10 hosts' files, reload (tlsfront, "
                 "hitch: SIGHUP; HAProxy -W master: SIGUSR2), poll until all 10 serve their new "
                 "certificate" % ("{:,}".format(a.hosts), a.hosts - 1))
    L.append("```\n")
    L.append("Configurations (phases 1-6 and s):\n")
    for p in ran:
        L.append("%s:\n\n```\n%s```\n" % (NAMES[p], w.confs.get(p, "n/a\n")))
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write("\n".join(L))
    chart(w.work, results, out)


def chart(work, results, out):
    rows = []
    for key, label in CHART:
        lower = next(f[3] for f in FIGURES if f[0] == key)
        peers = [results[p][key] for p in PEERS if key in results.get(p, {})]
        if not peers or not any(key in results.get(p, {}) for p in PROXIES):
            continue
        best = min(peers) if lower else max(peers)
        vals = []
        for p in PROXIES:
            v = results.get(p, {}).get(key)
            if v is None or not best or not v:
                vals.append("NaN")
            else:
                vals.append("%.4f" % (v / best if lower else best / v))
        rows.append('"%s" %s' % (label, " ".join(vals)))
    # a proxy without any figure (not run) gets no bars: gnuplot refuses
    # a column of NaN only
    cols = [i for i, p in enumerate(PROXIES)
            if any(row.split()[-len(PROXIES) + i] != "NaN" for row in rows)]
    if not rows or not cols or shutil.which("gnuplot") is None:
        return
    data = os.path.join(work, "chart.dat")
    with open(data, "w") as f:
        f.write("\n".join(rows) + "\n")
    colours = {"tlsfront": "#1f77b4", "haproxy": "#2ca02c", "hitch": "#ff7f0e",
               "nginx": "#9467bd"}
    plots = []
    for i in cols:
        p = PROXIES[i]
        plots.append('%s using %d%s title "%s" lc rgb "%s"' % (
            '"%s"' % data if not plots else '""', i + 2, ":xtic(1)" if not plots else "",
            NAMES[p], colours[p]))
    gp = """set terminal pngcairo size 1300,560 font ",10"
set output "%(png)s"
set title "tlsfront vs HAProxy, hitch and nginx stream: cost relative to the best peer (1.0); lower is better\\n%(sub)s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
# a log scale: 2x worse and 2x better are as far from 1, and one outlier
# (reload times differ 100-fold) does not flatten every other bar
set logscale y 2
set yrange [0.25:*]
set ytics (0.25, 0.5, 0.8, 1, 1.25, 1.5, 2, 4, 8, 16, 32, 64, 128)
set key top left
set ylabel "relative to best peer (log scale)"
set bmargin 5
set arrow from graph 0, first 0.8 to graph 1, first 0.8 nohead dashtype 3 lc rgb "#aa0000"
set label "dotted red line: the CPU targets (0.8)" at graph 0.16, graph 0.94 left tc rgb "#aa0000"
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"
plot %(plots)s
""" % {"png": os.path.join(out, "results.png"), "plots": ", \\\n     ".join(plots),
       "sub": "%s, %s" % (git("rev-parse", "--short", "HEAD"),
                          datetime.date.today().isoformat())}
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode != 0:
        say("gnuplot failed: " + r.stderr)


def median_of(rounds):
    """The median over rounds of each numeric figure (the upper middle one
    for an even count, so that it is always a measured value)."""
    keys = set()
    for r in rounds:
        keys.update(r)
    out = {}
    for k in keys:
        vals = sorted(r[k] for r in rounds if k in r)
        if vals:
            out[k] = vals[len(vals) // 2]
    return out


# ---------------------------------------------------------------- main

def main():
    quick = os.environ.get("QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tlsfront", default=os.environ.get("TLSFRONT_BIN") or
                    os.path.join(SRCDIR, "_build-bench", "tlsfront"),
                    help="the tlsfront binary (default: $TLSFRONT_BIN, else "
                    "../_build-bench/tlsfront)")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--phases", default="1234s567",
                    help="which figures, e.g. 123; s: the system calls of 2 and 3 (strace), "
                    "alone a quick mode that prints a table and writes no report unless "
                    "--out is given")
    ap.add_argument("--duration", type=int, default=3 if quick else 10,
                    help="seconds per load phase")
    ap.add_argument("--rounds", type=int, default=1 if quick else 3,
                    help="rounds of figures 1-4 (the median is reported)")
    ap.add_argument("--clients", type=int, default=4, help="parallel s_time clients "
                    "(twice as many loadgen processes for 2)")
    ap.add_argument("--idle", type=int, default=1000 if quick else 10000)
    ap.add_argument("--max-idle", type=int, default=5000 if quick else 50000)
    ap.add_argument("--hold", type=int, default=2 if quick else 5,
                    help="seconds to hold the connections of 6 before counting")
    ap.add_argument("--hosts", type=int, default=1000 if quick else 10000)
    ap.add_argument("--many-timeout", type=int, default=600)
    ap.add_argument("--sc-procs", type=int, default=4,
                    help="s: loadgen processes (connections at once)")
    ap.add_argument("--sc-conns", type=int, default=250,
                    help="s: resumed connections per loadgen process")
    ap.add_argument("--sc-requests", type=int, default=1000,
                    help="s: keep-alive requests per loadgen process")
    ap.add_argument("--sc-reps", type=int, default=None,
                    help="s: runs of each count per proxy, the median reported (default 3; "
                    "1 with QUICK or --phases s)")
    ap.add_argument("--tlsfront-log-level", default="info",
                    help="tlsfront's log_level (info: one access line per connection)")
    ap.add_argument("--cache", default=os.environ.get("BENCH_CACHE") or
                    os.path.join(HERE, ".cache"))
    ap.add_argument("--tools", default=None, help="where loadgen and mkcerts are")
    ap.add_argument("--out", default=None, help="where RESULTS.md, results.csv/png go "
                    "(default: bench/, or none with --phases s)")
    ap.add_argument("--chart-only", action="store_true",
                    help="only draw results.png again from --out's results.csv")
    args = ap.parse_args()
    only_s = args.phases.strip() == "s"
    if args.sc_reps is None:
        args.sc_reps = 1 if quick or only_s else 3
    if args.out is None and not only_s:
        args.out = HERE
    if args.chart_only:
        args.out = args.out or HERE
        results = {}
        with open(os.path.join(args.out, "results.csv")) as f:
            for row in csv.DictReader(f):
                try:
                    results.setdefault(row["proxy"], {})[row["figure"]] = float(row["value"])
                except ValueError:
                    pass
        work = tempfile.mkdtemp(prefix="tlsfront-bench-")
        try:
            chart(work, results, args.out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    args.quick = quick
    args.tlsfront = os.path.abspath(args.tlsfront)
    args.tools = args.tools or os.path.join(args.cache, "bin")
    proxies = [p for p in args.proxies.split(",") if p]
    for p in proxies:
        if p not in PROXIES:
            ap.error("unknown proxy " + p)
    if not os.access(args.tlsfront, os.X_OK):
        ap.error("no tlsfront binary at %s (--tlsfront or TLSFRONT_BIN)" % args.tlsfront)

    global log_file
    os.makedirs(args.cache, exist_ok=True)
    log_file = open(os.path.join(args.cache, "last-run.log"), "w")
    # this script, and everything it starts unless told otherwise, on CPU 0
    os.sched_setaffinity(0, {0})

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    t_all = time.monotonic()
    w = World(args)
    w.confs = {}
    results, notes, tls = {}, [], {}
    if w.proxy_cpu == w.load_cpu:
        notes.append("only one CPU: proxies and load share it, so rates mean little")
    if "5" in args.phases and w.nofile < 2 * args.idle + 200:
        n = (w.nofile - 200) // 2
        notes.append("5 measured with %d idle connections, not %d: a proxy needs two "
                     "descriptors per connection (client and backend) and the hard limit "
                     "here is %d (no CAP_SYS_RESOURCE to raise it)" % (n, args.idle, w.nofile))
        args.idle = n
    if "6" in args.phases and w.nofile < 2 * args.max_idle + 200:
        notes.append("6 cannot reach %d here: a proxy needs two descriptors per connection "
                     "and the hard limit is %d; the figure is the most each proxy held "
                     "within it" % (args.max_idle, w.nofile))
    try:
        w.start_nginx()
        say("work dir %s, nginx on port %d" % (w.work, w.nginx_port))
        # 1-4: all proxies up at once (idle when not measured), each phase run
        # for each proxy in turn, in a rotating order, --rounds times; the
        # median of the rounds is reported. Interleaving keeps the load that
        # others put on a shared machine from favouring whoever ran first.
        load_phases = [(k, f) for k, f in (("1", phase_handshakes), ("2", phase_resumed),
                                           ("3", phase_keepalive), ("4", phase_bulk))
                       if k in args.phases]
        pxs = {kind: Proxy(w, kind) for kind in proxies}
        rounds = {kind: [] for kind in proxies}
        for kind in proxies:
            results[kind] = {}
        if load_phases or "s" in args.phases:
            up = []
            for kind in proxies:
                px = pxs[kind]
                px.start()
                try:
                    px.wait_ready()
                    w.confs[kind] = px.conf_text
                    tls[kind] = tls_details(px.port, SNI)
                    warm_up(w, px)
                    up.append(kind)
                except BenchError as e:
                    notes.append("%s: %s" % (NAMES[kind], e))
                    say("%s failed: %s" % (kind, e))
                    px.stop()
            for r in range(args.rounds if load_phases else 0):
                say("== round %d of %d" % (r + 1, args.rounds))
                order = up[r % len(up):] + up[:r % len(up)] if up else []
                res_r = {kind: {} for kind in up}
                for k, f in load_phases:
                    for kind in order:
                        if pxs[kind].p.poll() is not None:
                            continue
                        try:
                            f(w, pxs[kind], res_r[kind])
                        except BenchError as e:
                            notes.append("%s, figure %s, round %d: %s" % (NAMES[kind], k, r + 1, e))
                            say("  %s %s failed: %s" % (kind, k, e))
                for kind in up:
                    rounds[kind].append(res_r[kind])
            if "s" in args.phases:
                # after the load phases, so that every proxy is warm; strace
                # detaches before the next figure, which is measured without it
                say("== system calls (strace -c)")
                for kind in up:
                    if pxs[kind].p.poll() is not None:
                        continue
                    try:
                        phase_syscalls(w, pxs[kind], results[kind])
                    except BenchError as e:
                        notes.append("%s, system calls: %s" % (NAMES[kind], e))
                        say("  %s s failed: %s" % (kind, e))
            for kind in up:
                pxs[kind].stop()
                results[kind].update(median_of(rounds[kind]))
                for i, rr in enumerate(rounds[kind]):
                    for key, v in rr.items():
                        results[kind]["%s#%d" % (key, i + 1)] = v
        for kind in proxies:
            res = results[kind]
            px = pxs[kind]
            for k, f in (("5", phase_idle_rss), ("6", phase_max_idle), ("7", phase_many_hosts)):
                if k not in args.phases:
                    continue
                if k == min(set("567") & set(args.phases)):
                    say("== %s" % kind)
                try:
                    f(w, px, res)
                except BenchError as e:
                    notes.append("%s, figure %s: %s" % (NAMES[kind], k, e))
                    say("  %s %s: %s" % (k, "not measured" if str(e).startswith("n/a")
                                         else "failed", e))
                if k == "6" and "max_idle_note" in res:
                    notes.append("%s, figure 6: %s" % (NAMES[kind], res.pop("max_idle_note")))
        for kind in proxies:
            pct = results[kind].get("sc_res_resumed_pct")
            if pct is not None and pct < 99:
                notes.append("%s resumed only %.1f%% of the connections counted for the "
                             "system calls of figure 2" % (NAMES[kind], pct))
            pct = results[kind].get("res_resumed_pct")
            if pct is not None and pct < 90:
                notes.append("%s resumed only %.0f%% of the handshakes of figure 2 (the load "
                             "generator offers the newest ticket it was given; a server that "
                             "sends no new ticket after a TLS 1.3 resumption gets a full "
                             "handshake next time, as from browsers, which use a ticket once)"
                             % (NAMES[kind], pct))
    except KeyboardInterrupt:
        say("interrupted")
        end_all()
        shutil.rmtree(w.work, ignore_errors=True)
        return 130
    finally:
        end_all()
    if "tlsfront" not in results:
        results["tlsfront"] = {}
    if "s" in args.phases:
        say("")
        say("System calls per unit (strace -c -f on all of each proxy's processes; %d loadgen "
            "processes; %s resumed connections and %s keep-alive requests each; median of %d "
            "run(s)); tlsfront: %s" % (args.sc_procs, "{:,}".format(args.sc_conns),
                                       "{:,}".format(args.sc_requests), args.sc_reps,
                                       args.tlsfront))
        say("")
        for line in syscall_tables(results, proxies):
            say(line)
        for n in notes:
            say("note: " + n)
    if args.out is None:
        shutil.rmtree(w.work, ignore_errors=True)
        say("(no report written; --out DIR writes RESULTS.md, results.csv and results.png)")
        return 0
    write_report(w, results, notes, tls, time.monotonic() - t_all)
    shutil.rmtree(w.work, ignore_errors=True)
    say("wrote %s" % ", ".join(os.path.join(args.out, f) for f in
                               ("RESULTS.md", "results.csv", "results.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
