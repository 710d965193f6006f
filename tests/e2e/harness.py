"""Shared helpers for the end-to-end tests.

Every test is a script that builds its own world in a temporary directory:
certificates made with the openssl command line, plaintext backends (the
in-process HttpBackend below, or nginx), and a real tlsfront process started
from $TLSFRONT_BIN. Tests synchronise on ports and log lines, never on sleeps.

Exit status follows automake: 0 pass, 1 fail, 77 skip.
"""
import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TLSFRONT_SRCDIR", os.path.dirname(os.path.dirname(HERE)))
TLSFRONT = os.environ.get("TLSFRONT_BIN", os.path.join(SRCDIR, "tlsfront"))

# ---------------------------------------------------------------- memory checkers
#
# TLSFRONT_VALGRIND=1: every run of the binary (Tlsfront, and the tests that
# run TLSFRONT themselves: -t, prlimit, setpriv) goes through a wrapper script
# that starts it under valgrind memcheck. Workers are fork()ed, not exec'd, so
# valgrind follows them by itself; with %p each process writes its own log
# (--child-silent-after-fork=yes would silence exactly the workers).
# A binary built with --enable-sanitizers writes its ASan/LSan reports to
# files (log_path), whoever started it and wherever its stderr goes; UBSan's
# go to stderr (GCC's UBSan ignores log_path when linked with ASan), which
# for a Tlsfront is its log. run() scans the files and the logs after the
# test: any report fails it (_memcheck_failed).
# Everything is slower under valgrind: TIME_SCALE stretches the harness's
# waits, and scaled_duration() the timeouts a test configures that a working
# client must not run into.

VALGRIND = os.environ.get("TLSFRONT_VALGRIND", "") not in ("", "0")
TIME_SCALE = float(os.environ.get("TLSFRONT_TIME_SCALE") or (10 if VALGRIND else 1))
_memcheck_dir = tempfile.mkdtemp(prefix="tlsfront-memcheck-")
os.chmod(_memcheck_dir, 0o1777)  # tlsfront may have become another user (user = nobody)
atexit.register(shutil.rmtree, _memcheck_dir, True)
# Defaults first, so the caller's own ASAN_OPTIONS win; log_path last, so it
# always applies. ASan keeps freed memory in quarantine to catch use after
# free, 256 MiB by default: the RSS would grow with every byte relayed (tests
# bound it); 4 MiB still catches use of recently freed memory.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [
    "halt_on_error=1:detect_leaks=1:quarantine_size_mb=4",
    os.environ.get("ASAN_OPTIONS"), "log_path=" + os.path.join(_memcheck_dir, "san")]))
os.environ["UBSAN_OPTIONS"] = ":".join(filter(None, [
    "halt_on_error=1:print_stacktrace=1",
    os.environ.get("UBSAN_OPTIONS"), "log_path=" + os.path.join(_memcheck_dir, "san")]))
if VALGRIND:
    # --freelist-vol: memcheck's own quarantine of freed blocks, 20 MB by
    # default, would make RSS grow past the tests' bounds too (as for ASan)
    _VALGRIND_ARGS = [
        "valgrind", "--tool=memcheck", "--leak-check=full",
        "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
        "--error-exitcode=99", "--freelist-vol=4000000",
        "--log-file=%s/vg.%%p.log" % _memcheck_dir]
    _wrapper = os.path.join(_memcheck_dir, "tlsfront")
    with open(_wrapper, "w") as _f:
        _f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (
            " ".join("'%s'" % a for a in _VALGRIND_ARGS), "'%s'" % TLSFRONT))
    os.chmod(_wrapper, 0o755)
    TLSFRONT = _wrapper

_cleanups = []


def cleanup(fn):
    """Run fn at exit (last registered first)."""
    _cleanups.append(fn)


@atexit.register
def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)
    print("ok -", msg)


def run(main):
    """Run a test's main(); print the failure and exit 1 on any exception,
    or when a memory checker reported something (even if main() passed)."""
    try:
        main()
    except Fail as e:
        print("FAIL:", e)
        _dump_logs()
        _memcheck_failed()
        print("FAIL (repeated below the logs):", e)
        _exit(1)
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        _dump_logs()
        _memcheck_failed()
        _exit(1)
    _exit(1 if _memcheck_failed() else 0)


def _exit(code):
    """Exit now, cleanups done (_memcheck_failed ran them): sys.exit would
    first wait for the test's non-daemon threads, and a test that failed
    half way may have left one looping forever (seen under valgrind)."""
    sys.stdout.flush()
    sys.stderr.flush()
    shutil.rmtree(_memcheck_dir, True)
    os._exit(code)


def scaled_duration(ms):
    """A duration for the configuration, ms milliseconds times TIME_SCALE,
    as "Nms": for a timeout that a working client must not run into, which
    under valgrind needs room."""
    return "%dms" % round(ms * TIME_SCALE)


# what a sanitizer writes, wherever its output went
_SANITIZER_RX = re.compile(r"ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer")
# the first line of a memcheck error record (also in logs of processes
# killed before valgrind could write its summary), or a crash
_VG_ERROR_RX = re.compile(
    r"^==\d+== (Invalid (read|write|free|size|alignment)|Conditional jump or move depends"
    r"|Use of uninitialised value|Syscall param .* (uninitialised|unaddressable)"
    r"|Mismatched free|Source and destination overlap|Argument '.*' of function .* fishy"
    r"|Process terminating with default action of signal (4|6|7|8|11) )", re.M)


def _vg_pid_alive(pid):
    """Is pid a live process of valgrind (not a reused pid)?"""
    try:
        return "memcheck" in os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False


def _memcheck_failed():
    """After the test: stop its processes (cleanups), then look at every
    sanitizer report file, every valgrind log and tlsfront's logs. Print
    each finding; return True if there was any. A process killed with
    SIGKILL writes no valgrind summary, which is fine: its errors were
    logged as they happened; but a clean exit must leave no error and no
    definitely or indirectly lost block."""
    found = []
    for path in _logs:  # before the cleanups remove them
        try:
            with open(path, errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if _SANITIZER_RX.search(text):
            found.append((path, text))
    _run_cleanups()
    # workers orphaned by a SIGKILLed main process drain, then exit with
    # their summaries: give them a bounded while, then kill them
    vg_logs = sorted(f for f in os.listdir(_memcheck_dir) if re.match(r"vg\.\d+\.log$", f))
    pids = [int(f.split(".")[1]) for f in vg_logs]
    deadline = time.monotonic() + 60
    while any(_vg_pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in pids:
        if _vg_pid_alive(p):
            os.kill(p, signal.SIGKILL)
    for f in sorted(os.listdir(_memcheck_dir)):
        path = os.path.join(_memcheck_dir, f)
        with open(path, errors="replace") as fh:
            text = fh.read()
        if f.startswith("san."):
            found.append((path, text))
        elif f in vg_logs:
            m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
            lost = re.findall(r"(?:definitely|indirectly) lost: ([\d,]+) bytes", text)
            if (m and m.group(1) != "0") or any(n != "0" for n in lost) or \
                    _VG_ERROR_RX.search(text):
                found.append((path, text))
    for path, text in found:
        print("FAIL: memory checker report in %s:" % path)
        print("\n".join(text.splitlines()[:200]))
    return bool(found)


_logs = []


def _dump_logs():
    for path in _logs:
        try:
            with open(path, errors="replace") as f:
                data = f.read()
            print("---- %s (last 60 lines) ----" % path)
            print("\n".join(data.splitlines()[-60:]))
        except OSError:
            pass


def tmpdir():
    d = tempfile.mkdtemp(prefix="tlsfront-e2e-")
    cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A free TCP port for a server of the test, chosen OUTSIDE the kernel's
    ephemeral range: a port from that range can be taken, before our server
    binds it, as the local port of some client connection (tests running in
    parallel make thousands). Ports taken by this process are not handed out
    twice."""
    import random
    lo, hi = _ephemeral_range()
    candidates = [(10000, lo - 1)] if lo > 11000 else [(hi + 1, 65535)]
    for _ in range(200):
        a, b = candidates[0]
        port = random.randint(a, b)
        if port in _given_ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _given_ports.add(port)
        return port
    raise Fail("no free port outside the ephemeral range")


_given_ports = set()


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Poll pred() until it is true; raise Fail after timeout seconds
    (times TIME_SCALE: under valgrind everything takes longer)."""
    deadline = time.monotonic() + timeout * TIME_SCALE
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail("timed out waiting for %s" % what)
        time.sleep(interval)


def wait_port(port, host="127.0.0.1", timeout=10.0):
    def up():
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(up, timeout, "port %d to accept" % port)


# ---------------------------------------------------------------- certificates

def openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("openssl %s failed: %s" % (" ".join(args), r.stderr))
    return r.stdout


def make_ca(d, name="Test CA"):
    key = os.path.join(d, "ca.key")
    crt = os.path.join(d, "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return crt, key


def make_cert(d, stem, names, ca=None, days=30, rsa=False, cn=None):
    """Make stem.pem (leaf, then the CA if given) and stem.key for DNS names."""
    key = os.path.join(d, stem + ".key")
    csr = os.path.join(d, stem + ".csr")
    crt = os.path.join(d, stem + ".crt")
    pem = os.path.join(d, stem + ".pem")
    newkey = ["-newkey", "rsa:2048"] if rsa else [
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subj = "/CN=" + (cn or (names[0] if names else stem))
    ext = os.path.join(d, stem + ".ext")
    with open(ext, "w") as f:
        if names:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
        f.write("basicConstraints=CA:FALSE\n")
    if ca is None:
        args = ["req", "-x509"] + newkey + ["-nodes", "-keyout", key, "-out", crt,
                                            "-subj", subj]
        if days < 0:
            # openssl req cannot back-date; use x509 -days with a negative offset below
            raise Fail("use ca= for expired certificates")
        args += ["-days", str(days)]
        if names:
            args += ["-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names)]
        openssl(*args)
        shutil.copy(crt, pem)
    else:
        cacrt, cakey = ca
        openssl("req", "-new", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj", subj)
        args = ["x509", "-req", "-in", csr, "-CA", cacrt, "-CAkey", cakey,
                "-CAcreateserial", "-out", crt, "-extfile", ext]
        if days >= 0:
            args += ["-days", str(days)]
        else:
            args += ["-not_before", "20200101000000Z", "-not_after", "20200201000000Z"] \
                if _x509_has_not_after() else ["-days", "1"]
        openssl(*args)
        with open(pem, "w") as out:
            out.write(open(crt).read())
            out.write(open(cacrt).read())
    return pem, key


def _x509_has_not_after():
    r = subprocess.run(["openssl", "x509", "-help"], capture_output=True, text=True)
    return "-not_after" in (r.stdout + r.stderr)


def cert_of(pem_text):
    """The first certificate of a PEM text, as DER bytes."""
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                  pem_text, re.S)
    import base64
    return base64.b64decode("".join(m.group(1).split()))


# ---------------------------------------------------------------- backends

def pattern_bytes(n, seed=b"tlsfront"):
    """n deterministic pseudo-random bytes (the same for the same n and seed)."""
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    chunk = hashlib.sha256(block).digest() * 2048  # 64 KiB
    while len(out) < n:
        out += chunk
    return bytes(out[:n])


class TcpServer:
    """A TCP server on 127.0.0.1 (an ephemeral port, self.port) that calls
    self.serve(conn) in a thread of its own for each connection. Subclasses
    define serve()."""

    def __init__(self, backlog=64):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(backlog)
        self.port = self.lsock.getsockname()[1]
        cleanup(self.lsock.close)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError


class HttpBackend:
    """A small threaded HTTP/1.1 server on 127.0.0.1 (Connection: close).

    GET /            -> "backend NAME\\n"
    GET /bytes/N     -> N bytes of pattern_bytes(N)
    POST /upload     -> sha256 hex of the body (Content-Length required)
    Counts bytes it sent in self.sent (for backpressure tests).
    """

    def __init__(self, name, port=None):
        self.name = name
        self.port = port or free_port()
        self.sent = 0
        self.requests = 0
        backend = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                backend._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        cleanup(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _send(self, sock, data):
        view = memoryview(data)
        while view:
            n = sock.send(view[:65536])
            self.sent += n
            view = view[n:]

    def _handle(self, sock):
        f = sock.makefile("rb")
        line = f.readline()
        if not line:
            return
        self.requests += 1
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers = {}
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if method == "POST":
            n = int(headers.get("content-length", "0"))
            digest = hashlib.sha256()
            left = n
            while left:
                b = f.read(min(left, 1 << 20))
                if not b:
                    break
                digest.update(b)
                left -= len(b)
            body = (digest.hexdigest() + "\n").encode()
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            self._send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n" % n)
            data = pattern_bytes(n)
            try:
                self._send(sock, data)
            except OSError:
                pass
            return
        else:
            body = ("backend %s %s\n" % (self.name, path)).encode()
        self._send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n"
                   b"Content-Type: text/plain\r\n\r\n" % len(body) + body)


# ---------------------------------------------------------------- tlsfront

class Tlsfront:
    """A tlsfront process with a config written into directory d.

    hosts: dict label -> dict of host keys (written to hosts.d/LABEL.ini).
    """

    def __init__(self, d, hosts, global_extra=None, defaults=None, port=None,
                 workers=1, start=True):
        self.d = d
        self.port = port or free_port()
        self.main = os.path.join(d, "tlsfront.ini")
        self.log_path = os.path.join(d, "tlsfront.log")
        os.makedirs(os.path.join(d, "hosts.d"), exist_ok=True)
        g = {"listen": "127.0.0.1:%d" % self.port, "hosts": "hosts.d/*.ini",
             "workers": str(workers), "log_level": "info", "shutdown_timeout": "10s"}
        g.update(global_extra or {})
        with open(self.main, "w") as f:
            f.write("[global]\n")
            for k, v in g.items():
                f.write("%s = %s\n" % (k, v))
            if defaults:
                f.write("\n[defaults]\n")
                for k, v in defaults.items():
                    f.write("%s = %s\n" % (k, v))
        for label, keys in hosts.items():
            with open(os.path.join(d, "hosts.d", label + ".ini"), "w") as f:
                f.write("[host %s]\n" % label)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))
        self.proc = None
        if start:
            self.start()

    def check_config(self):
        return subprocess.run([TLSFRONT, "-t", "-c", self.main], capture_output=True,
                              text=True)

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        _logs.append(self.log_path)
        self.proc = subprocess.Popen([TLSFRONT, "-c", self.main], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        cleanup(self.kill)
        if wait:
            # logged after the sockets are bound and listening: connects queue
            self.wait_log(r"listening on .*:%d" % self.port, what="tlsfront to listen")
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        """The log so far, complete lines only: a line being written (one
        write(2) each, but a reader can catch it half way) is left out."""
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        return text[:text.rfind("\n") + 1]

    def wait_log(self, regex, timeout=15.0, what=None, count=1):
        rx = re.compile(regex)

        def found():
            if self.proc is not None and self.proc.poll() is not None and \
                    len(rx.findall(self.log())) < count:
                raise Fail("tlsfront exited (%s) while waiting for %s" %
                           (self.proc.returncode, what or regex))
            m = rx.findall(self.log())
            return m if len(m) >= count else None
        return wait_for(found, timeout, what or ("log line /%s/" % regex))

    def access_lines(self):
        return [l for l in self.log().splitlines() if " access " in l]

    def wait_access(self, n, timeout=15.0):
        """Wait until n access lines were logged; return them."""
        self.wait_log(r" access ", timeout, "%d access lines" % n, count=n)
        return self.access_lines()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout * TIME_SCALE)
        except subprocess.TimeoutExpired:
            raise Fail("tlsfront did not exit within %ss of signal %d" % (timeout, sig))

    def reload(self, what="the reload"):
        """SIGHUP, then wait until the new configuration serves alone: the
        main process has logged the reload and every worker of the old
        generation has stopped accepting (logged that it drains) or is gone.
        Until then an old worker may still accept a connection from the
        shared listening socket and serve it with the old configuration."""
        old = self.workers()
        n = len(re.findall(r"reloaded: ", self.log()))
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(r"reloaded: ", count=n + 1, what=what)

        def settled():
            log = self.log()
            return all(re.search(r"tlsfront\[%d\] worker \d+ info: signal \d+: draining" % p, log)
                       or not os.path.exists("/proc/%d" % p) for p in old)
        wait_for(settled, what="the old workers to stop accepting after %s" % what)

    def workers(self):
        """PIDs of the worker processes."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def fd_count(self, pid=None):
        return len(os.listdir("/proc/%d/fd" % (pid or self.proc.pid)))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- clients

def unexpected_eof(e):
    """Is e the TLS error for a TCP close without close_notify? Debian's
    Python 3.11.2 raises a plain SSLError for it, later ones SSLEOFError."""
    return isinstance(e, ssl.SSLEOFError) or (
        isinstance(e, ssl.SSLError) and "UNEXPECTED_EOF" in str(e))


def client_context(alpn=None, verify_ca=None, minv=None, maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Debian's Python 3.11.2 sets OP_IGNORE_UNEXPECTED_EOF (later 3.11s do
    # not): a TCP close without close_notify then reads as a clean end, and
    # tests could not tell a cut stream from a finished one
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    if verify_ca:
        ctx.load_verify_locations(verify_ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def tls_connect(port, sni, ctx=None, timeout=10.0):
    ctx = ctx or client_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout * TIME_SCALE)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except Exception:
        raw.close()
        raise


def recv_all(s):
    """Read a TLS socket to its end (close_notify or EOF); return the bytes."""
    data = bytearray()
    while True:
        try:
            b = s.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not b:
            break
        data += b
    return bytes(data)


def http_get(port, sni, path="/", ctx=None, timeout=20.0):
    """GET over TLS with Connection: close; return the body bytes."""
    s = tls_connect(port, sni, ctx, timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                   (path, sni)).encode())
        data = recv_all(s)
    finally:
        s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return body


def s_client(port, servername=None, extra=(), stdin=b"", timeout=20):
    """Run openssl s_client; return (returncode, stdout+stderr text)."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    if servername is not None:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    args += list(extra)
    r = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout * TIME_SCALE)
    return r.returncode, (r.stdout + r.stderr).decode("latin-1")


def served_cert_cn(port, servername):
    """The subject of the certificate tlsfront presents for servername."""
    rc, out = s_client(port, servername, ["-brief"], b"")
    m = re.search(r"Peer certificate: (.*)", out)
    return m.group(1) if m else None


# ---------------------------------------------------------------- added helpers

def make_expired_cert(d, stem, names, ca):
    """Like make_cert(d, stem, names, ca=ca), but valid only in January 2020.

    make_cert(days=-1) needs `openssl x509 -not_after` (OpenSSL 3.4+); this
    uses `openssl ca -startdate/-enddate`, which OpenSSL 3.0 has.
    """
    cacrt, cakey = ca
    key = os.path.join(d, stem + ".key")
    csr = os.path.join(d, stem + ".csr")
    crt = os.path.join(d, stem + ".crt")
    pem = os.path.join(d, stem + ".pem")
    cadir = os.path.join(d, stem + ".ca")
    os.makedirs(cadir, exist_ok=True)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(cadir, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = ca_default\n[ca_default]\n"
                "database = %(c)s/index.txt\nnew_certs_dir = %(c)s\nserial = %(c)s/serial\n"
                "default_md = sha256\npolicy = policy_any\nunique_subject = no\n"
                "[policy_any]\ncommonName = supplied\n[ext]\nbasicConstraints = CA:FALSE\n"
                % {"c": cadir})
        if names:
            f.write("subjectAltName = " + ",".join("DNS:" + n for n in names) + "\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + (names[0] if names else stem))
    openssl("ca", "-batch", "-notext", "-config", cnf, "-extensions", "ext", "-cert", cacrt,
            "-keyfile", cakey, "-in", csr, "-out", crt, "-startdate", "200101000000Z",
            "-enddate", "200201000000Z")
    with open(pem, "w") as out:
        out.write(open(crt).read())
        out.write(open(cacrt).read())
    return pem, key


def wait_stable(fn, polls=5, interval=0.2, timeout=20.0, what="value to settle"):
    """Poll fn() until it returns the same value `polls` times in a row, with
    `interval` seconds between polls; return that value. Raise Fail after
    timeout seconds (a value that keeps changing never settles)."""
    state = {"last": object(), "same": 0}

    def settled():
        v = fn()
        if v == state["last"]:
            state["same"] += 1
        else:
            state["last"], state["same"] = v, 1
        return state["same"] >= polls
    wait_for(settled, timeout, what, interval)
    return state["last"]


def pattern_sha256(n, seed=b"tlsfront"):
    """sha256 hex digest of pattern_bytes(n, seed)."""
    return hashlib.sha256(pattern_bytes(n, seed)).hexdigest()


def check_eventually(pred, msg, timeout=10.0, interval=0.02):
    """check() that pred() becomes true within timeout seconds (polled);
    return its value."""
    try:
        v = wait_for(pred, timeout, msg, interval)
    except Fail:
        v = None
    check(v, "%s (within %gs)" % (msg, timeout))
    return v


class MiniCA:
    """A certificate authority run with `openssl ca` in its own directory
    under d: issues certificates with any subject CN, subjectAltName and
    validity period (also in the past or the future), revokes them, writes
    CRLs. parent: the MiniCA that issues this one's certificate (an
    intermediate CA); None for a self-signed root.

    Files: self.crt (this CA's certificate, PEM), self.key, and for each
    issued certificate STEM: STEM.crt (that certificate only) and STEM.key in
    self.dir. self.chain is this CA's certificate followed by its issuers'
    below the root (what a client sends after its leaf)."""

    _CNF = ("[ca]\ndefault_ca = ca_default\n[ca_default]\n"
            "database = %(c)s/index.txt\nnew_certs_dir = %(c)s/new\nserial = %(c)s/serial\n"
            "crlnumber = %(c)s/crlnumber\ncertificate = %(c)s/ca.pem\n"
            "private_key = %(c)s/ca.key\ndefault_md = sha256\ndefault_days = 30\n"
            "default_crl_days = 30\npolicy = policy_any\nunique_subject = no\n"
            "[policy_any]\ncommonName = supplied\n")

    def __init__(self, d, name, parent=None):
        self.name = name
        self.dir = os.path.join(d, "ca-" + re.sub(r"[^A-Za-z0-9]+", "-", name))
        os.makedirs(os.path.join(self.dir, "new"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        for f in ("serial", "crlnumber"):
            with open(os.path.join(self.dir, f), "w") as out:
                out.write("1000\n")
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(self._CNF % {"c": self.dir})
        self.crt = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        if parent is None:
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", self.key, "-out", self.crt, "-days", "30",
                    "-subj", "/CN=" + name,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            self.chain = []
        else:
            crt, key = parent.issue("sub-" + os.path.basename(self.dir), name, ca=True)
            shutil.copy(crt, self.crt)
            shutil.copy(key, self.key)
            self.chain = [self.crt] + parent.chain

    def issue(self, stem, cn, sans=(), start=None, end=None, ca=False):
        """Issue STEM.crt/STEM.key for subject CN=cn with subjectAltName
        entries sans (e.g. "DNS:x", "URI:spiffe://a/b", "email:a@b"); start and
        end as openssl ca -startdate/-enddate (YYYYMMDDHHMMSSZ), default now
        and 30 days. A CA certificate if ca. Returns (crt, key)."""
        key = os.path.join(self.dir, stem + ".key")
        csr = os.path.join(self.dir, stem + ".csr")
        crt = os.path.join(self.dir, stem + ".crt")
        ext = os.path.join(self.dir, stem + ".ext")
        with open(ext, "w") as f:
            f.write("[ext]\n")
            if ca:
                f.write("basicConstraints = critical,CA:TRUE\n"
                        "keyUsage = critical,keyCertSign,cRLSign\n")
            else:
                f.write("basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                        "extendedKeyUsage = clientAuth,serverAuth\n")
            if sans:
                f.write("subjectAltName = " + ",".join(sans) + "\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        args = ["ca", "-batch", "-notext", "-config", self.cnf, "-extfile", ext,
                "-extensions", "ext", "-in", csr, "-out", crt]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        openssl(*args)
        return crt, key

    def chain_file(self, crt, out=None):
        """A PEM file: the certificate crt this CA issued, then self.chain
        (what a client presents). Returns its path."""
        out = out or crt[:-len(".crt")] + ".chain.pem"
        with open(out, "w") as f:
            for p in [crt] + self.chain:
                with open(p) as i:
                    f.write(i.read())
        return out

    def revoke(self, crt):
        openssl("ca", "-config", self.cnf, "-revoke", crt)

    def gencrl(self, out=None):
        """Write this CA's CRL (PEM) of everything revoked so far; return its path."""
        out = out or os.path.join(self.dir, "crl.pem")
        openssl("ca", "-config", self.cnf, "-gencrl", "-out", out)
        return out


def listening(port, host="127.0.0.1"):
    """Is some socket listening on host:port (TCP, IPv4)? Reads
    /proc/net/tcp, so unlike wait_port it opens no connection (a probe
    would go through a proxy and show up in tlsfront's access log)."""
    want = "%08X:%04X" % (struct_unpack_le_ip(host), port)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def struct_unpack_le_ip(host):
    """An IPv4 address as /proc/net/tcp prints it (host byte order, little endian)."""
    import struct
    return struct.unpack("<I", socket.inet_aton(host))[0]


def wait_listening(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until host:port is listening (see listening()); fail early if
    proc (a Popen) exits first."""
    def up():
        if proc is not None and proc.poll() is not None:
            raise Fail("process exited (%s) before listening on %s:%d"
                       % (proc.returncode, host, port))
        return listening(port, host)
    wait_for(up, timeout, "%s:%d to listen" % (host, port))


def connect_from(src_ip, port, host="127.0.0.1", timeout=10.0):
    """A TCP connection to host:port from src_ip (any port; IPv6 if src_ip
    has a colon, host must then be IPv6 too), TCP_NODELAY set: each send()
    goes out as its own segment."""
    s = socket.socket(socket.AF_INET6 if ":" in src_ip else socket.AF_INET,
                      socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((src_ip, 0))
        s.connect((host, port))
    except Exception:
        s.close()
        raise
    return s


def start_nginx(d, port, text=None, listen_extra="", log_format=None, server_extra=""):
    """A real nginx on 127.0.0.1:port serving text (if given) for every path,
    in its own directory under d; returns (Popen, access log path), or
    (None, None) when nginx is missing. listen_extra goes on the listen line
    (e.g. "http2", "proxy_protocol"), log_format is an nginx log_format
    string for the access log, server_extra goes inside server { }."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        return None, None
    root = os.path.join(d, "nginx-%d" % port)
    os.makedirs(os.path.join(root, "html"), exist_ok=True)
    if text is not None:
        with open(os.path.join(root, "html", "index.html"), "w") as f:
            f.write(text)
    log = os.path.join(root, "access.log")
    fmt = ("log_format tl '%s';\n  access_log %s tl;" % (log_format, log) if log_format
           else "access_log %s;" % log)
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""
daemon off; master_process off; worker_processes 1; pid %(r)s/nginx.pid;
error_log %(r)s/error.log;
events { worker_connections 1024; }
http {
  %(fmt)s
  client_body_temp_path %(r)s; proxy_temp_path %(r)s; fastcgi_temp_path %(r)s;
  uwsgi_temp_path %(r)s; scgi_temp_path %(r)s;
  server { listen 127.0.0.1:%(p)d %(l)s; root %(r)s/html;
           location / { try_files $uri /index.html; } %(s)s }
}
""" % {"r": root, "p": port, "s": server_extra, "l": listen_extra, "fmt": fmt})
    p = subprocess.Popen([nginx, "-c", conf, "-p", root], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    cleanup(lambda: (p.kill(), p.wait()))
    wait_listening(port, proc=p)
    return p, log


# ---------------------------------------------------------------- fault injection (issue #7)

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
