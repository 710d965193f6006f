"""host_errors = fail | skip, at start and on reload, with a host whose key
file is missing:
- fail (the default): -t fails, start fails, a reload keeps the old config;
- skip: -t passes with a loud warning naming the host and FILE:LINE, start
  serves the other hosts, a reload leaves the broken host out and serves
  the rest (and takes it back once its files are there again)."""
import os
import re
import shutil
import signal
import subprocess

from tf_clients import http_get, s_client
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, run, tmpdir


def main():
    d = tmpdir()
    ca = CA(d)
    good = ca.host_cert("good", ["good.test"])
    bad = ca.host_cert("bad", ["bad.test"])
    be = HttpBackend("x")
    backend = "127.0.0.1:%d" % be.port
    hidden = bad[1] + ".hidden"
    shutil.move(bad[1], hidden)   # the key of host "bad" is missing
    hosts = {"good": {"cert": good[0], "key": good[1], "backend": backend},
             "bad": {"cert": bad[0], "key": bad[1], "backend": backend}}

    # fail (default)
    os.makedirs(os.path.join(d, "f"))
    tf = Tlsfront(os.path.join(d, "f"), hosts, start=False)
    r = tf.check_config()
    check(r.returncode == 1 and re.search(r"bad\.ini:3: key: cannot open", r.stderr),
          "host_errors = fail: -t fails at the key line: %r" % r.stderr)
    r = subprocess.run([TLSFRONT, "-c", tf.main], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1, "host_errors = fail: tlsfront does not start")

    # skip
    os.makedirs(os.path.join(d, "s"))
    ts = Tlsfront(os.path.join(d, "s"), hosts, global_extra={"host_errors": "skip"},
                  start=False)
    r = ts.check_config()
    check(r.returncode == 0 and re.search(r"warning: host 'bad' left out \(host_errors = "
                                          r"skip\): .*bad\.ini:3: key: cannot open", r.stderr),
          "host_errors = skip: -t passes with a warning naming the host: %r" % r.stderr)
    ts.start()
    check(re.search(r"warn: .*host 'bad' left out", ts.log()), "the start logs it loudly")
    check(http_get(ts.port, "good.test", "/g") == b"backend x /g\n", "the good host serves")
    rc, out = s_client(ts.port, "bad.test", ["-brief"], b"")
    check("unrecognized name" in out,
          "the left-out host is not served (no default host): %s" % out[-200:])
    # its key comes back: a reload takes the host back
    shutil.copy(hidden, bad[1])
    ts.reload()
    check(http_get(ts.port, "bad.test", "/b") == b"backend x /b\n",
          "after the key is back, a reload serves the host again")
    # and goes missing again: the reload under skip leaves it out, the rest serves
    os.remove(bad[1])
    ts.reload("the second reload")
    check(not re.search(r"reload failed", ts.log()), "under skip the reload does not fail")
    check(http_get(ts.port, "good.test", "/g2") == b"backend x /g2\n",
          "the good host serves after that reload")
    check(ts.stop() == 0, "tlsfront exits 0")

    # fail on reload: the old config (with both hosts) keeps serving
    shutil.copy(hidden, bad[1])
    os.makedirs(os.path.join(d, "r"))
    tr = Tlsfront(os.path.join(d, "r"), hosts)
    os.remove(bad[1])
    tr.proc.send_signal(signal.SIGHUP)
    tr.wait_log(r"reload failed", what="the failed reload")
    check(http_get(tr.port, "bad.test", "/old") == b"backend x /old\n",
          "host_errors = fail: after a failed reload the old config still serves the host")
    check(tr.stop() == 0, "tlsfront exits 0")


run(main)
