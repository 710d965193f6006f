"""20 reloads, one a second, during 20 seconds of load: h2load keeping 8
HTTP/1.1 keep-alive connections busy (served to the end by the first
generation's workers, draining), plus a client making new connections all
along, through tlsfront to nginx; the certificate is swapped before the 10th
reload. No request fails, and the new certificate is served after."""
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from tf_clients import client_context, http_get
from tf_peers import start_nginx
from tf_pki import CA, cert_of
from tf_proc import Tlsfront
from tf_run import VALGRIND, check, cleanup, free_port, program, run, tmpdir, wait_for


def served_cert(port):
    s = client_context().wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                              timeout=10))
    der = s.getpeercert(binary_form=True)
    s.close()
    return hashlib.sha256(der).hexdigest()


def main():
    if VALGRIND:
        print("SKIP: a load test (h2load, 20 reloads in 20 s); under valgrind it would "
              "measure valgrind's speed")
        sys.exit(77)
    h2load = program("h2load", "nghttp2-client")
    d = tmpdir()
    ca = CA(d)
    c1 = ca.host_cert("one", ["load.test"])
    c2 = ca.host_cert("two", ["load.test"])
    nport = free_port()
    # nginx ends a keep-alive connection after 1000 requests by default, and
    # h2load 1.52 then reconnects; a client that is reconnecting when -D's
    # duration ends never stops (it does so against nginx alone, without
    # tlsfront: 4 hangs in 5 runs of `h2load --h1 -c 8 -D 2` with
    # keepalive_requests 1). So h2load's connections last the whole run.
    start_nginx(d, nport, "hello under load\n", server_extra="keepalive_requests 100000000;")
    live = os.path.join(d, "live")
    os.makedirs(live)
    os.symlink(c1[0], os.path.join(live, "cert.pem"))
    os.symlink(c1[1], os.path.join(live, "cert.key"))
    tf = Tlsfront(d, {"load": {"cert": os.path.join(live, "cert.pem"),
                               "key": os.path.join(live, "cert.key"),
                               "backend": "127.0.0.1:%d" % nport, "default": "yes"}},
                  workers=2, global_extra={"shutdown_timeout": "60s"})
    before = served_cert(tf.port)

    h2 = subprocess.Popen([h2load, "--h1", "-c", "8", "-t", "1", "-D", "20",
                           "https://127.0.0.1:%d/" % tf.port],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cleanup(lambda: h2.poll() is None and h2.kill())
    stop = threading.Event()
    errors, done = [], [0]

    def new_conns():
        while not stop.is_set():
            try:
                if http_get(tf.port, "load.test", "/") != b"hello under load\n":
                    errors.append("bad body")
                done[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
    t = threading.Thread(target=new_conns)
    t.start()
    for i in range(20):
        if i == 9:
            for name, src in (("cert.pem", c2[0]), ("cert.key", c2[1])):
                os.remove(os.path.join(live, name))
                os.symlink(src, os.path.join(live, name))
        n = len(re.findall(r"reloaded: ", tf.log()))
        tf.proc.send_signal(signal.SIGHUP)
        tf.wait_log(r"reloaded: ", count=n + 1, what="reload %d" % (i + 1))
        time.sleep(1.0)   # pacing: one reload a second, as the load runs
    try:
        out, _ = h2.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        h2.kill()
        out = h2.communicate()[0]
        check(False, "h2load -D 20 ended within 60 s of its duration: %s" % out[-600:])
    stop.set()
    t.join(30)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", out)
    check(m is not None, "h2load reports its requests: %s" % out[-600:])
    total, started, fin, ok, failed, errored = map(int, m.groups())
    check(ok > 100 and failed == 0 and errored == 0,
          "h2load over 20 reloads: %d succeeded, %d failed, %d errored" % (ok, failed, errored))
    check(not errors and done[0] > 20,
          "new connections during the reloads: %d done, errors %r" % (done[0], errors[:3]))
    after = served_cert(tf.port)
    check(before != after and after == hashlib.sha256(cert_of(open(c2[0]).read())).hexdigest(),
          "the swapped certificate is served after the reloads")
    wait_for(lambda: len(tf.workers()) == 2, 70, "old generations to finish")
    check(len(tf.workers()) == 2, "no stray worker generation is left")
    check(tf.stop() == 0, "tlsfront exits 0")


run(main)
