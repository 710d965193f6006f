#!/usr/bin/env python3
"""t_acme_client.py: the ACME client (src/acme*.c) against Debian's pebble.

Starts pebble-challtestsrv (every A query answers 127.0.0.1) and pebble
(its own HTTPS listener on a CA made here; PEBBLE_VA_NOSLEEP=1; its 5%
nonce rejection kept), with tlsPort pointing at a small TLS-ALPN-01
responder in this script that answers from state_dir/challenges/NAME.pem,
standing in for tlsfront's workers. tests/acme/acme_drive runs acme_run as
the main process would. Checks:
  1. two hosts (one with two names) get certificates that verify against
     pebble's root and cover their names; state_dir modes; no challenge
     file left; "cert"/"order ... ok" lines on the notify pipe;
  2. a second run serves what is stored: no order, same files, same account;
  3. renew_before longer than the lifetime: each host renewed exactly once
     (then held for an hour), and the client ends when the pipe's reader
     goes away;
  4. ARI through a small front that adds renewalInfo to pebble's directory
     (pebble 2.4 has none): a future window orders nothing, a past one
     renews with "replaces";
  also: an unreachable directory backs off (about a minute), and a held
  state_dir/lock makes the client skip its round.
ACME_DRIVE_PREFIX runs the driver under e.g. valgrind.
Fails if pebble is missing, unless TLSFRONT_ALLOW_MISSING_PEERS=1 (skip, 77).
"""
import base64
import fcntl
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ALLOW_MISSING = os.environ.get("TLSFRONT_ALLOW_MISSING_PEERS", "") not in ("", "0")
BUILDDIR = os.path.dirname(os.environ.get("TLSFRONT_BIN", "")) or os.getcwd()
DRIVE = os.path.join(BUILDDIR, "tests", "acme", "acme_drive")
HOSTS = {"shop": ["shop.example.org", "www.shop.example.org"], "blog": ["blog.example.net"]}


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok: %s" % what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def make_pki(d):
    """A CA and a certificate for 127.0.0.1/localhost: pebble's own HTTPS."""
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in
                                 ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=acme test CA"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=localhost"])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext])
    return ca, crt, key


class AlpnResponder:
    """TLS-ALPN-01 on 127.0.0.1:port from state_dir/challenges/NAME.pem,
    as tlsfront's workers do it: acme-tls/1 only, certificate by SNI."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.answered = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.ctx = self._ctx()
        self.ctx.sni_callback = self._sni
        threading.Thread(target=self._loop, daemon=True).start()

    @staticmethod
    def _ctx():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_alpn_protocols(["acme-tls/1"])
        return ctx

    def _sni(self, sslobj, name, _ctx):
        path = os.path.join(self.state_dir, "challenges", "%s.pem" % (name or "").lower())
        if not name or not os.path.exists(path):
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ctx = self._ctx()
        ctx.load_cert_chain(path)     # the certificate, then its key, in one file
        sslobj.context = ctx
        self.answered.append(name)
        return None

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                s.recv(1)    # the validator closes after the handshake
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


class Pebble:
    def __init__(self, d, tls_port):
        self.d = d
        self.ca, crt, key = make_pki(d)
        self.crt, self.key = crt, key
        self.port, self.mgmt, self.dns, self.dns_mgmt = (free_port() for _ in range(4))
        cfg = {"pebble": {"listenAddress": "127.0.0.1:%d" % self.port,
                          "managementListenAddress": "127.0.0.1:%d" % self.mgmt,
                          "certificate": crt, "privateKey": key,
                          "httpPort": free_port(), "tlsPort": tls_port,
                          "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        with open(os.path.join(d, "pebble.json"), "w") as f:
            json.dump(cfg, f)
        self.logs = []
        self.procs = []
        self.procs.append(self._start("challtestsrv", [
            "pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            "-dns01", "127.0.0.1:%d" % self.dns, "-http01", "", "-https01", "",
            "-tlsalpn01", "", "-management", "127.0.0.1:%d" % self.dns_mgmt], {}))
        env = {"PEBBLE_VA_NOSLEEP": "1"}
        self.procs.append(self._start("pebble", [
            "pebble", "-config", os.path.join(d, "pebble.json"),
            "-dnsserver", "127.0.0.1:%d" % self.dns], env))
        self.directory = "https://127.0.0.1:%d/dir" % self.port
        self.sslctx = ssl.create_default_context(cafile=self.ca)
        self._wait_up()

    def _start(self, name, cmd, env):
        log = open(os.path.join(self.d, name + ".log"), "w")
        self.logs.append(log)
        e = dict(os.environ)
        e.update(env)
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=e,
                                start_new_session=True)

    def get(self, url):
        with urllib.request.urlopen(url, context=self.sslctx, timeout=10) as r:
            return r.read()

    def _wait_up(self):
        end = time.time() + 30
        while time.time() < end:
            try:
                return json.loads(self.get(self.directory))
            except OSError:
                time.sleep(0.2)
        raise Fail("pebble did not come up (see %s/pebble.log)" % self.d)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()


class AriFront:
    """pebble 2.4 has no ARI (RFC 9773): this HTTPS front serves pebble's
    directory plus "renewalInfo" pointing at itself, and a suggestedWindow
    set by the test; the other URLs stay pebble's own."""

    def __init__(self, pebble, crt, key):
        front = self
        self.window = None
        self.asked = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/dir":
                    body = json.loads(pebble.get(pebble.directory))
                    body["renewalInfo"] = "https://127.0.0.1:%d/renewal-info" % front.port
                elif self.path.startswith("/renewal-info/"):
                    front.asked.append(self.path[len("/renewal-info/"):])
                    body = {"suggestedWindow": front.window}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.directory = "https://127.0.0.1:%d/dir" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set_window(self, start, end):
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        self.window = {"start": time.strftime(fmt, time.gmtime(start)),
                       "end": time.strftime(fmt, time.gmtime(end))}


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def ari_cert_id(path):
    """RFC 9773 certID of the leaf in path, computed by openssl here."""
    leaf = pem_blocks(open(path).read(), "CERTIFICATE")[0]
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-ext",
                          "authorityKeyIdentifier"], input=leaf.encode(),
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    serial = bytes.fromhex(re.search(r"serial=([0-9A-Fa-f]+)", out).group(1))
    if serial[0] & 0x80:
        serial = b"\0" + serial
    aki = bytes.fromhex(re.search(r"(?:keyid:)?((?:[0-9A-F]{2}:)+[0-9A-F]{2})",
                                  out.split("Authority Key Identifier", 1)[1]).group(1)
                        .replace(":", ""))
    return "%s.%s" % (b64url(aki), b64url(serial))


def drive(pebble, state_dir, log, *args, directory=None):
    """acme_drive for HOSTS; the notify lines it printed, and its log."""
    hosts = ["%s=%s" % (label, ",".join(names)) for label, names in sorted(HOSTS.items())]
    # ACME_DRIVE_PREFIX="valgrind --error-exitcode=9 --leak-check=full": the
    # client under a checker (its fork is followed; an error fails the run)
    prefix = os.environ.get("ACME_DRIVE_PREFIX", "").split()
    cmd = prefix + [DRIVE, "-s", state_dir, "-d", directory or pebble.directory, "-c", pebble.ca] + list(args) + hosts
    with open(log, "w") as err:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, timeout=400)
    out = p.stdout.decode()
    with open(log) as f:
        text = f.read()
    if p.returncode != 0:
        sys.stderr.write(text[-6000:])
        raise Fail("acme_drive %s exited %d; its lines: %r" % (" ".join(args), p.returncode, out))
    return out.splitlines(), text


def pem_blocks(text, kind):
    out, cur = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("-----BEGIN %s-----" % kind):
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line.startswith("-----END %s-----" % kind):
                out.append("".join(cur))
                cur = None
    return out


def verify_cert(d, root_pem, path, names):
    """certs/LABEL.pem: a key, then the chain leaf first; the leaf verifies
    with pebble's root (the intermediates from the file) for each name."""
    with open(path) as f:
        text = f.read()
    check(text.lstrip().startswith("-----BEGIN PRIVATE KEY-----"), "%s starts with the key" % path)
    certs = pem_blocks(text, "CERTIFICATE")
    check(len(certs) >= 2, "%s holds the chain (%d certificates)" % (path, len(certs)))
    leaf, inter, root = (os.path.join(d, n) for n in ("leaf.pem", "inter.pem", "root.pem"))
    with open(leaf, "w") as f:
        f.write(certs[0])
    with open(inter, "w") as f:
        f.write("".join(certs[1:]))
    with open(root, "wb") as f:
        f.write(root_pem)
    for name in names:
        r = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", inter,
                            "-verify_hostname", name, leaf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        check(r.returncode == 0, "%s verifies against pebble's root for %s (%s)"
              % (os.path.basename(path), name, r.stdout.decode().strip().replace("\n", " ")))
    # the key in the file is the leaf's
    pub_key = subprocess.run(["openssl", "pkey", "-pubout"], input=text.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
    pub_leaf = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=certs[0].encode(),
                              stdout=subprocess.PIPE, check=True).stdout
    check(pub_key == pub_leaf, "%s: the key is the leaf's" % os.path.basename(path))


def mode(path):
    return os.stat(path).st_mode & 0o7777


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    for prog in ("pebble", "pebble-challtestsrv"):
        if shutil.which(prog) is None:
            if ALLOW_MISSING:
                print("SKIP: %s is missing (Debian package pebble)" % prog)
                return 77
            raise Fail("%s is missing (Debian package pebble; TLSFRONT_ALLOW_MISSING_PEERS=1 "
                       "would skip this test)" % prog)
    if not os.access(DRIVE, os.X_OK):
        raise Fail("%s is not built (make check builds it)" % DRIVE)
    d = tempfile.mkdtemp(prefix="t_acme_client.")
    state = os.path.join(d, "state")
    responder = AlpnResponder(state)
    pebble = Pebble(d, responder.port)
    try:
        directory = json.loads(pebble.get(pebble.directory))
        print("pebble's directory offers: %s" % ", ".join(sorted(directory)))
        root_pem = pebble.get("https://127.0.0.1:%d/roots/0" % pebble.mgmt)

        # 0. a directory nobody answers: each order fails, is logged with the
        # reason, and is retried after about a minute (backoff), not at once
        dead = "https://127.0.0.1:%d/dir" % free_port()
        lines, log = drive(pebble, state, os.path.join(d, "run0.log"), "-o", "2", "-l", "3",
                           directory=dead)
        check(sorted(l for l in lines if l.startswith("order ")) ==
              ["order blog error", "order shop error"], "run 0: both orders fail (%r)" % lines)
        check("getting the directory failed: no answer" in log,
              "run 0: the failure is logged with its reason")
        waits = [int(w) for w in re.findall(r"next try in (\d+) s", log)]
        check(len(waits) == 2 and all(54 <= w <= 66 for w in waits),
              "run 0: next try in a minute, with jitter (%r)" % waits)

        # 1. first run: both hosts ordered
        lines, log = drive(pebble, state, os.path.join(d, "run1.log"), "-o", "2", "-l", "2")
        for label in HOSTS:
            check("order %s ok" % label in lines, "run 1: order %s ok" % label)
            check("cert %s" % label in lines, "run 1: cert %s" % label)
            check(lines.index("cert %s" % label) < lines.index("order %s ok" % label),
                  "run 1: cert %s before its order line" % label)
        check(sum(1 for l in lines if l.startswith("order ")) == 2, "run 1: two orders")
        for label, names in HOSTS.items():
            verify_cert(d, root_pem, os.path.join(state, "certs", label + ".pem"), names)
        for sub in ("", "account", "certs", "challenges"):
            check(mode(os.path.join(state, sub)) == 0o700, "state_dir/%s is 0700" % sub)
        for sub in ("account", "certs"):
            for name in os.listdir(os.path.join(state, sub)):
                check(mode(os.path.join(state, sub, name)) == 0o600,
                      "state_dir/%s/%s is 0600" % (sub, name))
        check(os.listdir(os.path.join(state, "challenges")) == [], "no challenge file left")
        check(sorted(set(responder.answered)) == sorted(n for ns in HOSTS.values() for n in ns),
              "every name was validated over TLS-ALPN-01 (%s)" % sorted(set(responder.answered)))
        accounts = sorted(os.listdir(os.path.join(state, "account")))
        check(len(accounts) == 2, "one account key and its URL (%s)" % accounts)
        check(log.count("registered with") == 1, "one account registered")
        before = {l: read(os.path.join(state, "certs", l + ".pem")) for l in HOSTS}

        # 2. a restart serves what is stored: nothing ordered
        lines, log = drive(pebble, state, os.path.join(d, "run2.log"), "-o", "0", "-l", "6")
        check(not any(l.startswith("order ") for l in lines), "run 2: no order (%r)" % lines)
        check("registered with" not in log, "run 2: the account is reused")
        for label in HOSTS:
            check(read(os.path.join(state, "certs", label + ".pem")) == before[label],
                  "run 2: certs/%s.pem unchanged" % label)
        check(sorted(os.listdir(os.path.join(state, "account"))) == accounts,
              "run 2: same account files")

        # 2b. another instance holds state_dir/lock: this one orders nothing
        # (though renew_before makes both hosts due) and looks again later
        with open(os.path.join(state, "lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            lines, log = drive(pebble, state, os.path.join(d, "run2b.log"),
                               "-r", str(10 * 365 * 86400), "-o", "0", "-l", "4")
        check(not any(l.startswith("order ") for l in lines), "run 2b: no order while locked")
        busy = [int(w) for w in re.findall(r"another instance is ordering; looking again in (\d+) s",
                                           log)]
        check(len(busy) == 2 and all(30 <= w <= 60 for w in busy),
              "run 2b: both hosts look again in 30-60 s (%r)" % busy)

        # 3. renew_before (10 years) longer than pebble's 5-year lifetime:
        # renewed once each, then held; ended by closing the pipe
        lines, log = drive(pebble, state, os.path.join(d, "run3.log"),
                           "-r", str(10 * 365 * 86400), "-o", "2", "-l", "8", "-p")
        orders = [l for l in lines if l.startswith("order ")]
        check(sorted(orders) == ["order blog ok", "order shop ok"],
              "run 3: each host renewed exactly once (%r)" % orders)
        check("not ordering again before an hour" in log, "run 3: the no-loop hold is logged")
        check("renewing it once now" in log, "run 3: renew_before > lifetime is warned about")
        check("the main process is gone" in log, "run 3: the client ended on the closed pipe")
        if "renewalInfo" in directory:
            check("(renewal)" in log, "run 3: the renewal sent \"replaces\" (ARI)")
        for label, names in HOSTS.items():
            path = os.path.join(state, "certs", label + ".pem")
            check(read(path) != before[label], "run 3: certs/%s.pem replaced" % label)
            verify_cert(d, root_pem, path, names)

        # 4. ARI (through AriFront, pebble 2.4 has none): a window in the
        # future, nothing ordered; a window in the past, renewed with
        # "replaces" (the certID the client asked about)
        front = AriFront(pebble, pebble.crt, pebble.key)
        try:
            now = time.time()
            front.set_window(now + 10 * 86400, now + 11 * 86400)
            lines, log = drive(pebble, state, os.path.join(d, "run4.log"), "-o", "0", "-l", "5",
                               directory=front.directory)
            check(not any(l.startswith("order ") for l in lines),
                  "run 4: ARI window in the future: no order (%r)" % lines)
            want = sorted(ari_cert_id(os.path.join(state, "certs", l + ".pem")) for l in HOSTS)
            check(sorted(set(front.asked)) == want,
                  "run 4: renewalInfo asked for each certificate's certID (%r)" % front.asked)
            check("the CA suggests renewing between" in log, "run 4: the window is logged")
            front.set_window(now - 2 * 86400, now - 86400)
            lines, log = drive(pebble, state, os.path.join(d, "run5.log"), "-o", "2", "-l", "3",
                               directory=front.directory)
            orders = sorted(l for l in lines if l.startswith("order "))
            check(orders == ["order blog ok", "order shop ok"],
                  "run 5: ARI window passed: both renewed (%r)" % orders)
            check(log.count("(renewal)") == 2, "run 5: both orders sent \"replaces\"")
        finally:
            front.httpd.shutdown()
            front.httpd.server_close()
        if "badNonce" in log:
            print("ok: badNonce was met and retried")
        print("PASS")
        return 0
    finally:
        pebble.stop()
        responder.sock.close()
        if os.environ.get("KEEP_TMP"):
            print("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print("FAIL: %s" % e)
        sys.exit(1)
