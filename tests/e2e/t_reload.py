"""SIGHUP reload and the systemd notification protocol.
- 10 reloads while clients keep making requests (new connections and a
  keep-alive stream): no request fails, and after the reload that follows a
  certificate swap the new certificate is served;
- a download in flight across a reload completes;
- a broken host file: the reload fails with FILE:LINE in the log and the old
  configuration keeps serving;
- a listener added by a reload is opened, a removed one closed;
- quick repeated SIGHUPs leave no stray worker generations behind;
- sd_notify: READY=1, then RELOADING=1 (with MONOTONIC_USEC) and READY=1 for
  each reload, STOPPING=1 on SIGTERM, in that order."""
import os
import re
import signal
import socket
import ssl
import threading
import time

from tf_clients import client_context, http_get
from tf_peers import HttpBackend, pattern_sha256
from tf_pki import CA, cert_of
from tf_proc import Tlsfront
from tf_run import check, cleanup, free_port, run, scaled_duration, tmpdir, wait_for

import hashlib


def served_serial(port, sni):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = client_context().wrap_socket(s, server_hostname=sni)
    der = t.getpeercert(binary_form=True)
    t.close()
    return hashlib.sha256(der).hexdigest()


def write_host(tf, label, keys):
    path = os.path.join(tf.d, "hosts.d", label + ".ini")
    with open(path, "w") as f:
        f.write("[host %s]\n" % label)
        for k, v in keys.items():
            f.write("%s = %s\n" % (k, v))
    return path


def main():
    d = tmpdir()
    ca = CA(d)
    c1 = ca.host_cert("one", ["shop.test"])
    c2 = ca.host_cert("two", ["shop.test"])
    be = HttpBackend("shop")

    # a datagram socket standing in for systemd's NOTIFY_SOCKET
    nsock_path = os.path.join(d, "notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    cleanup(nsock.close)
    notes = []

    def collect():
        while True:
            try:
                notes.append(nsock.recv(4096).decode())
            except OSError:
                return
    threading.Thread(target=collect, daemon=True).start()
    os.environ["NOTIFY_SOCKET"] = nsock_path

    live = os.path.join(d, "live")
    os.makedirs(live)
    for ext in ("pem", "key"):
        os.symlink(c1[0] if ext == "pem" else c1[1], os.path.join(live, "cert." + ext))
    keys = {"cert": os.path.join(live, "cert.pem"), "key": os.path.join(live, "cert.key"),
            "backend": "127.0.0.1:%d" % be.port}
    # 20s (longer under valgrind): the in-flight download must outlive every reload
    tf = Tlsfront(d, {"shop": keys}, workers=2,
                  global_extra={"shutdown_timeout": scaled_duration(20000)})
    del os.environ["NOTIFY_SOCKET"]
    wait_for(lambda: any("READY=1" in n for n in notes), 10, "READY=1")
    serial1 = served_serial(tf.port, "shop.test")

    # load: new connections in one thread, one keep-alive stream in another
    stop = threading.Event()
    errors, counts, reloads_seen = [], [0, 0], []

    def new_conns():
        while not stop.is_set():
            try:
                if http_get(tf.port, "shop.test", "/n") != b"backend shop /n\n":
                    errors.append("bad body")
                counts[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    def keepalive():
        s = client_context().wrap_socket(socket.create_connection(("127.0.0.1", tf.port),
                                                                  timeout=20),
                                         server_hostname="shop.test")
        # the test backend closes after each answer, so stream one large
        # body slowly instead: it must survive every reload
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (8 << 20))
        data = bytearray()
        while True:
            try:
                b = s.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not b:
                break
            data += b
            if not stop.is_set():
                time.sleep(0.05)   # slow reader: the transfer spans the reloads
        reloads_seen.append(len(re.findall(r"reloaded: ", tf.log())))
        body = bytes(data).partition(b"\r\n\r\n")[2]
        if hashlib.sha256(body).hexdigest() != pattern_sha256(8 << 20):
            errors.append("in-flight download corrupted (%d bytes)" % len(body))
        counts[1] += 1

    threads = [threading.Thread(target=new_conns), threading.Thread(target=keepalive)]
    for t in threads:
        t.start()
    for i in range(10):
        if i == 5:   # swap the certificate, as a renewal would
            for ext, src in (("pem", c2[0]), ("key", c2[1])):
                os.remove(os.path.join(live, "cert." + ext))
                os.symlink(src, os.path.join(live, "cert." + ext))
        n0 = len(re.findall(r"reloaded: ", tf.log()))
        tf.proc.send_signal(signal.SIGHUP)
        tf.wait_log(r"reloaded: ", count=n0 + 1, what="reload %d" % (i + 1))
        before = counts[0]
        wait_for(lambda: counts[0] > before + 2, 20, "requests after reload %d" % (i + 1))
    stop.set()
    for t in threads:
        t.join(60)
    check(not errors, "no request failed across 10 reloads (%d requests): %r" %
          (counts[0], errors[:3]))
    check(counts[1] == 1, "the download in flight across the reloads completed intact")
    check(reloads_seen and reloads_seen[0] >= 5,
          "that download was in flight during several reloads (%r)" % reloads_seen)
    serial2 = served_serial(tf.port, "shop.test")
    check(serial2 != serial1 and serial2 == hashlib.sha256(
        cert_of(open(c2[0]).read())).hexdigest(),
          "the renewed certificate is served after the reload")

    # old generations drain away: only `workers` workers remain
    wait_for(lambda: len(tf.workers()) == 2, 30, "old workers to exit")
    for _ in range(5):
        tf.proc.send_signal(signal.SIGHUP)
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.wait_log(r"reloaded: ", count=n, what="quick reloads")
    wait_for(lambda: len(tf.workers()) == 2, 30, "no stray generations after quick SIGHUPs")
    check(len(tf.workers()) == 2, "after quick repeated SIGHUPs only 2 workers remain")

    # a broken host file: the reload fails, the old configuration serves on
    bad = write_host(tf, "broken", {"cert": "/nonexistent.pem", "key": keys["key"],
                                    "backend": keys["backend"]})
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reload failed", what="the failed reload")
    check(re.search(re.escape(bad) + r":2: cert: cannot open /nonexistent.pem", tf.log()),
          "the failed reload logs the error as FILE:LINE")
    check(http_get(tf.port, "shop.test", "/still") == b"backend shop /still\n",
          "the old configuration keeps serving")
    os.remove(bad)

    # a listener added, then removed, by reloads
    port2 = free_port()
    write_host(tf, "extra", dict(keys, listen="127.0.0.1:%d" % port2, names="extra.test"))
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 1, what="reload adding a listener")
    check(http_get(port2, "extra.test", "/x") == b"backend shop /x\n",
          "a listener added by a reload serves")
    os.remove(os.path.join(tf.d, "hosts.d", "extra.ini"))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 2, what="reload removing a listener")

    def refused():
        try:
            socket.create_connection(("127.0.0.1", port2), timeout=2).close()
            return False
        except ConnectionResetError:
            return False	# queued on a socket that closed meanwhile: try again
        except ConnectionRefusedError:
            return True
    wait_for(refused, 30, "the removed listener to close")
    check(refused(), "a listener removed by a reload is closed")

    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")
    wait_for(lambda: any("STOPPING=1" in x for x in notes), 5, "STOPPING=1")
    seq = []
    for x in notes:
        if "RELOADING=1" in x:
            seq.append("R" if re.search(r"MONOTONIC_USEC=\d+", x) else "r")
        elif "READY=1" in x:
            seq.append("Y")
        elif "STOPPING=1" in x:
            seq.append("S")
    s = "".join(seq)
    check(re.fullmatch(r"Y(RY)+S", s) is not None and s.count("R") >= 13,
          "notifications in order: READY, then RELOADING/READY per reload, then "
          "STOPPING (quick SIGHUPs may coalesce): %s" % s)
    check(any(x.startswith("STATUS=serving") for x in notes), "a STATUS= line is sent")


run(main)
