"""ACME (issue #16) around the client: tlsfront with hosts that say
`acme = yes`, against Debian's real pebble.

Without pebble:
1. Every bad input of tlsfront.ini(5)'s acme keys, each at its FILE:LINE
   from `tlsfront -t`: acme = yes with cert or key; an acme host without
   names; a wildcard name; no [acme] (directory) for a host asking for it;
   state_dir not writable (as root with `user = nobody`: that user; else
   this user, on a directory without write permission).
2. A pending host: `tlsfront -t` and the start log say "certificate
   pending", its handshakes fail with an alert and that reason (never the
   default host's certificate), -T shows it; acme-tls/1 is refused with
   no_application_protocol for a static host's name (whose alpn list
   allows it) and for the pending name without a challenge file, and with
   a challenge file the validator's certificate is served, acme-tls/1
   selected and the connection ends ("acme challenge"), no backend dialled.
3. A static host's certificate replaced on disk is served within a minute,
   without SIGHUP (the file check's real 30 s period).

With pebble (pebble-challtestsrv answering every name with 127.0.0.1,
PEBBLE_VA_NOSLEEP=1, nonce rejection on; every served certificate verified
with the root fetched from pebble's management port):
4. Two ACME hosts (one with two names) beside a static host: both issued,
   the static host served throughout; tlsfront_acme_orders_total counts them.
5. A restart reuses state_dir: served at once, no new order.
6. Renewal: renew_before longer than pebble's 5-year lifetime: renewed
   once (a new certificate, a warning), while a connection opened before
   keeps working.
7. Pebble down at start (static host served, the client's backoff logged),
   then up: the certificates come (TLSFRONT_ACME_BACKOFF_MIN, a test-only
   knob of the client, shortens the first backoff).
8. Two instances behind HAProxy (mode tcp, roundrobin) sharing state_dir:
   both serve the certificate; one order per host in all.
"""
import os
import re
import socket
import ssl
import subprocess
import time

from tf_clients import client_context, http_get, s_client, tls_connect
from tf_peers import HttpBackend, Pebble
from tf_pki import self_signed
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, cleanup, free_port, program, run, tmpdir, wait_for, wait_listening


def tf_check(path):
    return subprocess.run([TLSFRONT, "-t", "-c", path], capture_output=True, text=True,
                          timeout=60)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# ---- 1. bad input ------------------------------------------------------------

def bad_inputs(d):
    cert, key = self_signed(d, "static", ["static.test"])
    base = ("[global]\nlisten = 127.0.0.1:%d\nhosts = /nonexistent/*.ini\n" % free_port())
    acme = "[acme]\ndirectory = https://127.0.0.1:1/dir\nstate_dir = %s\n" % \
        os.path.join(d, "state-bad")
    cases = [
        # (main file, [(line, message part)])
        (base + acme +                                     # 1..6
         "[host a]\nacme = yes\nnames = a.test\ncert = %s\nkey = %s\n"    # 7..11
         "backend = 127.0.0.1:9\n" % (cert, key),
         [(10, "cert: host 'a' has acme = yes"), (11, "key: host 'a' has acme = yes")]),
        (base + acme + "[host a]\nacme = yes\nbackend = 127.0.0.1:9\n",
         [(8, "acme: host 'a' has no 'names'")]),
        (base + acme + "[host a]\nacme = yes\nnames = a.test\nnames = *.a.test\n"
         "backend = 127.0.0.1:9\n",
         [(9, "names: '*.a.test' is a wildcard name")]),
        (base + "[host a]\nacme = yes\nnames = a.test\nbackend = 127.0.0.1:9\n",
         [(5, "acme: host 'a' asks for ACME but the main file has no [acme] section")]),
        (base + "[acme]\ncontact = mailto:a@a.test\n[host a]\nacme = yes\nnames = a.test\n"
         "backend = 127.0.0.1:9\n",
         [(4, "[acme] has no 'directory'")]),
    ]
    # state_dir the user cannot write
    locked = os.path.join(d, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o755 if os.geteuid() == 0 else 0o555)
    cleanup(lambda: os.chmod(locked, 0o755))
    who = "user nobody" if os.geteuid() == 0 else "uid %d" % os.geteuid()
    cases.append((base.replace("[global]\n", "[global]\n%s" %
                               ("user = nobody\n" if os.geteuid() == 0 else "")) +
                  "[acme]\ndirectory = https://127.0.0.1:1/dir\n"
                  "state_dir = %s/acme\n" % locked +
                  "[host a]\nacme = yes\nnames = a.test\nbackend = 127.0.0.1:9\n",
                  [(7 if os.geteuid() == 0 else 6,
                    "state_dir: %s cannot write to %s/acme" % (who, locked))]))
    for i, (text, wants) in enumerate(cases):
        path = os.path.join(d, "bad%d.ini" % i)
        write(path, text)
        r = tf_check(path)
        check(r.returncode == 1, "case %d: tlsfront -t fails: %s" % (i, r.stderr.strip()))
        for line, msg in wants:
            check("%s:%d: %s" % (path, line, msg) in r.stderr,
                  "case %d: '%s:%d: %s' in %r" % (i, path, line, msg, r.stderr))
        errors = int(re.search(r"configuration has (\d+) error", r.stderr).group(1))
        check(errors == len(wants), "case %d: %d errors, no follow-on errors" % (i, errors))


# ---- 2. pending hosts and the challenge ---------------------------------------

def pending_and_challenge(d):
    be = HttpBackend("static")
    cert, key = self_signed(d, "static", ["static.test"])
    state = os.path.join(d, "state-pending")
    tf = Tlsfront(d, {
        "static": {"cert": cert, "key": key, "backend": "127.0.0.1:%d" % be.port,
                   "default": "yes", "alpn": "acme-tls/1 http/1.1"},
        "shop": {"acme": "yes", "names": "shop.test www.shop.test",
                 "backend": "127.0.0.1:%d" % be.port},
    }, start=False)
    with open(tf.main, "a") as f:
        f.write("[acme]\ndirectory = https://127.0.0.1:%d/dir\nstate_dir = %s\n"
                % (free_port(), state))
    r = tf.check_config()
    check(r.returncode == 0 and "certificate pending" in r.stderr,
          "tlsfront -t accepts a pending host and says so: %r" % r.stderr)
    r = subprocess.run([TLSFRONT, "-T", "-c", tf.main], capture_output=True, text=True)
    check(re.search(r"\[host shop\]\n# defined at .*\n# certificate pending", r.stdout)
          and "acme = yes" in r.stdout, "-T shows the pending ACME host")
    tf.start()
    tf.wait_log(r"host shop: .*acme=yes certificate pending", what="the pending start line")
    # never the default host's certificate
    rc, out = s_client(tf.port, "shop.test")
    check(rc != 0 and "alert handshake failure" in out and "static.test" not in out,
          "a pending host's handshake fails with handshake_failure: %s" % out[-300:])
    tf.wait_log(r'sni=shop.test .*reason="handshake failed: certificate pending"')
    check(http_get(tf.port, "static.test") == b"backend static /\n", "static host served")
    # acme-tls/1, no challenge file: refused, for a static name and the pending one
    for name in ("static.test", "shop.test"):
        rc, out = s_client(tf.port, name, ["-alpn", "acme-tls/1"])
        check(rc != 0 and "no application protocol" in out,
              "acme-tls/1 for %s without a challenge: no_application_protocol" % name)
    tf.wait_log(r'sni=static.test .*reason="handshake failed: acme-tls/1 without a pending '
                r'challenge"')
    requests = be.requests
    # the challenge file (as the client writes it): served, then closed
    os.makedirs(os.path.join(state, "challenges"), exist_ok=True)
    ccert, ckey = self_signed(d, "challenge", ["www.shop.test"])
    with open(os.path.join(state, "challenges", "www.shop.test.pem"), "w") as f:
        f.write(open(ccert).read() + open(ckey).read())
    rc, out = s_client(tf.port, "WWW.Shop.test", ["-alpn", "acme-tls/1"])
    check("ALPN protocol: acme-tls/1" in out and "CN = www.shop.test" in out,
          "the challenge certificate with acme-tls/1: %s" % out[-400:])
    tf.wait_log(r'sni=WWW.Shop.test .*reason="acme challenge"')
    check(be.requests == requests, "no backend for acme-tls/1")
    # path tricks in the SNI are refused like any name without a file
    rc, out = s_client(tf.port, "../challenges/www.shop.test", ["-alpn", "acme-tls/1"])
    check(rc != 0 and "ALPN protocol: acme-tls/1" not in out, "no path in the SNI")
    tf.stop()


# ---- 3. a static certificate replaced on disk ---------------------------------

def file_watch(d):
    be = HttpBackend("w")
    dd = os.path.join(d, "watch")
    os.makedirs(dd)
    cert, key = self_signed(dd, "one", ["w.test"], cn="first")
    tf = Tlsfront(dd, {"w": {"cert": cert, "key": key, "backend": "127.0.0.1:%d" % be.port}})
    check("first" in (tf_cn(tf.port, "w.test") or ""), "the first certificate")
    new_cert, new_key = self_signed(dd, "two", ["w.test"], cn="second")
    # certbot's way: new files renamed into place, key first
    os.replace(new_key, key)
    os.replace(new_cert, cert)
    t0 = time.time()
    wait_for(lambda: "second" in (tf_cn(tf.port, "w.test") or ""), 60,
             "the replaced certificate served without SIGHUP", interval=1.0)
    print("ok - replaced certificate served after %.0f s, no SIGHUP" % (time.time() - t0))
    tf.wait_log(r"file check: .* changed")
    tf.stop()
    # no reload loop: with a check every second (the test-only knob), one
    # change makes one reload, and the next checks, finding nothing new,
    # make none
    os.environ["TLSFRONT_FILE_CHECK_MS"] = "1000"
    try:
        tf = Tlsfront(dd, {"w": {"cert": cert, "key": key,
                                 "backend": "127.0.0.1:%d" % be.port}})
    finally:
        del os.environ["TLSFRONT_FILE_CHECK_MS"]
    n0 = len(re.findall("reloaded: ", tf.log()))   # the log holds the first run's too
    third_cert, third_key = self_signed(dd, "three", ["w.test"], cn="third")
    os.replace(third_key, key)
    os.replace(third_cert, cert)
    wait_for(lambda: "third" in (tf_cn(tf.port, "w.test") or ""), 30,
             "the third certificate served", interval=0.5)
    n = len(re.findall("reloaded: ", tf.log()))
    check(n == n0 + 1, "one change, one reload (%d)" % (n - n0))
    time.sleep(4)   # four more checks of unchanged files
    check(len(re.findall("reloaded: ", tf.log())) == n, "no reload without a change")
    tf.stop()


def tf_cn(port, name):
    rc, out = s_client(port, name, ["-brief"])
    m = re.search(r"Peer certificate: (.*)", out)
    return m.group(1) if m else None


# ---- pebble ---------------------------------------------------------------------

def verify(pebble, port, name):
    """Connect with SNI name, verify the chain with pebble's root; returns
    the leaf (DER)."""
    root = os.path.join(pebble.d, "root.pem")
    write(root, pebble.root())
    ctx = client_context(verify_ca=root)
    s = tls_connect(port, name, ctx)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def metrics(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data.decode()


def orders(text, host, result="ok"):
    m = re.search(r'tlsfront_acme_orders_total\{host="%s",result="%s"\} (\d+)' %
                  (host, result), text)
    return int(m.group(1)) if m else 0


RUNS = [0]


def acme_tlsfront(d, pebble, state, port, be, extra="", stats=None, start=True):
    """tlsfront with a static host and ACME hosts a (a.test) and b (b.test,
    www.b.test), in a directory of its own under d (a log of its own: a
    restart must not find the last run's lines)."""
    RUNS[0] += 1
    d = os.path.join(d, "run%d" % RUNS[0])
    os.makedirs(d)
    tf = Tlsfront(d, {
        "static": {"cert": STATIC[0], "key": STATIC[1],
                   "backend": "127.0.0.1:%d" % be.port},
        "a": {"acme": "yes", "names": "a.test", "backend": "127.0.0.1:%d" % be.port},
        "b": {"acme": "yes", "names": "b.test www.b.test",
              "backend": "127.0.0.1:%d" % be.port},
    }, port=port, start=False, global_extra={"stats_listen": "127.0.0.1:%d" % stats}
        if stats else None)
    with open(tf.main, "a") as f:
        f.write("[acme]\ndirectory = %s\ndirectory_ca = %s\nstate_dir = %s\n%s"
                % (pebble.directory, pebble.ca, state, extra))
    if start:
        tf.start()
    return tf


STATIC = None


def with_pebble(d):
    global STATIC
    if program("pebble", "pebble", part="pebble") is None or \
            program("pebble-challtestsrv", "pebble", part="pebble") is None:
        return
    os.environ["TLSFRONT_ACME_BACKOFF_MIN"] = "2"     # the client's test knob
    os.environ["TLSFRONT_FILE_CHECK_MS"] = "2000"
    be = HttpBackend("be")
    STATIC = self_signed(d, "static2", ["static.test"])
    port, stats = free_port(), free_port()
    pebble = Pebble(d, port)
    state = os.path.join(d, "state")
    d1 = os.path.join(d, "one")
    os.makedirs(d1)

    # 4. two ACME hosts beside a static host
    tf = acme_tlsfront(d1, pebble, state, port, be, stats=stats)
    check(http_get(port, "static.test") == b"backend be /\n", "static host served at once")
    for label in ("a", "b"):
        tf.wait_log(r"ACME: new certificate for host %s" % label, timeout=120)
    for name in ("a.test", "b.test", "www.b.test"):
        wait_for(lambda: _verifies(pebble, port, name), 30, "%s verified with pebble's root"
                 % name)
    check(http_get(port, "static.test") == b"backend be /\n", "static host still served")
    m = metrics(stats)
    check(orders(m, "a") == 1 and orders(m, "b") == 1, "one order each: %s" %
          re.findall(r"tlsfront_acme_orders_total.*", m))
    first_a = verify(pebble, port, "a.test")
    tf.stop()

    # 5. a restart serves the stored certificates and orders nothing
    tf = acme_tlsfront(d1, pebble, state, port, be, stats=stats)
    check(verify(pebble, port, "a.test") == first_a, "restart: the stored certificate")
    time.sleep(5)
    m = metrics(stats)
    check(orders(m, "a") == 0 and orders(m, "b") == 0, "restart: no new order")
    tf.stop()

    # 6. renewal: renew_before beyond pebble's 5-year lifetime
    tf = acme_tlsfront(d1, pebble, state, port, be, extra="renew_before = 2000d\n",
                       stats=stats)
    old = tls_connect(port, "a.test")
    old.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n")   # half a request, kept open
    tf.wait_log(r"ACME: new certificate for host a", timeout=120)
    wait_for(lambda: _verifies(pebble, port, "a.test") and
             verify(pebble, port, "a.test") != first_a, 30, "the renewed certificate served")
    old.sendall(b"Connection: close\r\n\r\n")
    data = b""
    while True:
        b = old.recv(65536)
        if not b:
            break
        data += b
    check(data.endswith(b"backend be /\n"), "the connection opened before the renewal works")
    time.sleep(5)
    check(orders(metrics(stats), "a") == 1, "renewed once, not in a loop")
    tf.stop()

    # 7. pebble down at start, then up
    pebble.stop()
    state7 = os.path.join(d, "state7")
    d7 = os.path.join(d, "seven")
    os.makedirs(d7)
    tf = acme_tlsfront(d7, pebble, state7, port, be)
    check(http_get(port, "static.test") == b"backend be /\n", "CA down: static host served")
    rc, out = s_client(port, "a.test")
    check(rc != 0, "CA down: a pending host fails its handshakes")
    tf.wait_log(r"acme .*next try in \d+ s", timeout=30, what="the client's backoff")
    pebble.start()
    tf.wait_log(r"ACME: new certificate for host a", timeout=120)
    wait_for(lambda: _verifies(pebble, port, "a.test"), 30, "issued once the CA is up")
    tf.stop()

    # 8. two instances behind HAProxy sharing state_dir
    haproxy = program("haproxy", "haproxy", part="two instances behind HAProxy")
    if haproxy is None:
        return
    front = free_port()
    peb8 = Pebble(os.path.join(d, "p8"), front)
    state8 = os.path.join(d, "state8")
    insts = []
    for i in range(2):
        di = os.path.join(d, "inst%d" % i)
        os.makedirs(di)
        insts.append(acme_tlsfront(di, peb8, state8, free_port(), be, stats=free_port()))
    cfg = os.path.join(d, "haproxy.cfg")
    write(cfg, "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n"
          "  timeout client 30s\n  timeout server 30s\nfrontend f\n  bind 127.0.0.1:%d\n"
          "  default_backend b\nbackend b\n  balance roundrobin\n%s" % (front, "".join(
              "  server s%d 127.0.0.1:%d\n" % (i, t.port) for i, t in enumerate(insts))))
    hp = subprocess.Popen([haproxy, "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    cleanup(lambda: (hp.kill(), hp.wait()))
    wait_listening(front, proc=hp)
    for t in insts:
        for name in ("a.test", "www.b.test"):
            wait_for(lambda: _verifies(peb8, t.port, name), 180,
                     "instance on %d serves %s" % (t.port, name), interval=1.0)
    total = {h: sum(orders(metrics(int(re.search(r"stats_listen = 127.0.0.1:(\d+)",
                                                 open(t.main).read()).group(1))), h)
                    for t in insts) for h in ("a", "b")}
    check(total == {"a": 1, "b": 1}, "one order per host for both instances: %r" % total)
    for t in insts:
        t.stop()


def _verifies(pebble, port, name):
    try:
        verify(pebble, port, name)
        return True
    except (OSError, ssl.SSLError):
        return False


def main():
    d = tmpdir()
    bad_inputs(d)
    pending_and_challenge(d)
    file_watch(d)
    with_pebble(d)


run(main)
