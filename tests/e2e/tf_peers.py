"""What tlsfront talks to in the tests: plaintext backends run in the test
process (TcpServer for a hand-written protocol, HttpBackend for HTTP), a
real nginx, and the deterministic bytes they serve (pattern_bytes)."""
import hashlib
import os
import socket
import socketserver
import subprocess
import threading

from tf_run import cleanup, free_port, program, wait_listening


def pattern_bytes(n, seed=b"tlsfront"):
    """n deterministic pseudo-random bytes (the same for the same n and seed)."""
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    chunk = hashlib.sha256(block).digest() * 2048  # 64 KiB
    while len(out) < n:
        out += chunk
    return bytes(out[:n])


def pattern_sha256(n, seed=b"tlsfront"):
    """sha256 hex digest of pattern_bytes(n, seed)."""
    return hashlib.sha256(pattern_bytes(n, seed)).hexdigest()


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


def start_nginx(d, port, text=None, listen_extra="", log_format=None, server_extra="",
                part=None):
    """A real nginx on 127.0.0.1:port serving text (if given) for every path,
    in its own directory under d; returns (Popen, access log path).
    listen_extra goes on the listen line (e.g. "http2", "proxy_protocol"),
    log_format is an nginx log_format string for the access log,
    server_extra goes inside server { }. Without nginx: a failure, unless
    TLSFRONT_ALLOW_MISSING_PEERS=1 (tf_run.missing()): then the whole test
    is skipped, or if part names the part of the test that needs nginx,
    (None, None) is returned and the test ends as SKIP, not PASS."""
    nginx = program("nginx", "nginx-light", part)
    if nginx is None:
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


class Pebble:
    """Debian's pebble (a test ACME CA) and pebble-challtestsrv (its DNS:
    every A query answers 127.0.0.1), on loopback, as
    /work/shared/reference/acme.md describes: pebble's own HTTPS certificate
    is made here (self.ca verifies it: the directory_ca), tlsPort is where
    its validator connects for TLS-ALPN-01 (tlsfront's listener, or a
    balancer in front), PEBBLE_VA_NOSLEEP=1, nonce rejection left on.
    self.directory is the directory URL; root() fetches the root of this
    run (it changes at every start) from the management port. stop() and
    start() stop and start pebble alone (the DNS stays). Without pebble: a
    failure, unless TLSFRONT_ALLOW_MISSING_PEERS=1 (tf_run.missing())."""

    def __init__(self, d, tls_port, start=True):
        import json
        from tf_pki import openssl
        self.exe = program("pebble", "pebble")
        self.dnsexe = program("pebble-challtestsrv", "pebble")
        self.d = os.path.join(d, "pebble-%d" % tls_port)
        os.makedirs(self.d, exist_ok=True)
        self.ca = os.path.join(self.d, "ca.pem")
        ca_key, key, csr, crt, ext = (os.path.join(self.d, n) for n in
                                      ("ca.key", "srv.key", "srv.csr", "srv.pem", "ext.cnf"))
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", self.ca, "-days", "2",
                "-subj", "/CN=pebble test CA")
        openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key,
                "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
        self.port, self.mgmt, dns, dns_mgmt = (free_port() for _ in range(4))
        self.config = os.path.join(self.d, "pebble.json")
        with open(self.config, "w") as f:
            json.dump({"pebble": {"listenAddress": "127.0.0.1:%d" % self.port,
                                  "managementListenAddress": "127.0.0.1:%d" % self.mgmt,
                                  "certificate": crt, "privateKey": key,
                                  "httpPort": free_port(), "tlsPort": tls_port,
                                  "ocspResponderURL": "",
                                  "externalAccountBindingRequired": False}}, f)
        self.dns = "127.0.0.1:%d" % dns
        self.directory = "https://127.0.0.1:%d/dir" % self.port
        self.log = os.path.join(self.d, "pebble.log")
        dlog = open(os.path.join(self.d, "challtestsrv.log"), "w")
        cleanup(dlog.close)
        self.dnsproc = subprocess.Popen(
            [self.dnsexe, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", self.dns,
             "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", "127.0.0.1:%d" % dns_mgmt], stdout=dlog, stderr=subprocess.STDOUT)
        cleanup(lambda: (self.dnsproc.kill(), self.dnsproc.wait()))
        self.proc = None
        if start:
            self.start()

    def start(self):
        import ssl
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1")
        env.pop("PEBBLE_WFE_NONCEREJECT", None)     # pebble's default: 5% rejected
        logf = open(self.log, "a")
        cleanup(logf.close)
        self.proc = subprocess.Popen([self.exe, "-config", self.config, "-dnsserver", self.dns],
                                     stdout=logf, stderr=subprocess.STDOUT, env=env)
        cleanup(self.stop)
        self.sslctx = ssl.create_default_context(cafile=self.ca)
        wait_listening(self.port, proc=self.proc, timeout=30)
        wait_listening(self.mgmt, proc=self.proc, timeout=30)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, url):
        import urllib.request
        with urllib.request.urlopen(url, context=self.sslctx, timeout=10) as r:
            return r.read()

    def root(self):
        """This run's root certificate (PEM), from the management port."""
        return self.get("https://127.0.0.1:%d/roots/0" % self.mgmt).decode()
