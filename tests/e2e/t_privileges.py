"""user/group: tlsfront binds and reads keys as root, then the main process
and its workers run as the configured user (with its supplementary groups),
visible in /proc/PID/status; a reload runs as that user, so a key only root
can read makes the reload fail (logged at FILE:LINE, old config serving), and
`tlsfront -t` run as that user reports it too. Needs root (skipped
otherwise)."""
import os
import pwd
import grp
import re
import signal
import subprocess
import sys

from harness import (TLSFRONT, HttpBackend, Tlsfront, check, http_get, make_ca, make_cert,
                     run, tmpdir)


def ids(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "CapEff"):
                out[k] = v.split()
    return out


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        sys.exit(77)
    user = pwd.getpwnam("nobody")
    group = grp.getgrnam("nogroup")
    d = tmpdir()
    os.chmod(d, 0o755)   # nobody must reach the files on reload
    ca = make_ca(d)
    c = make_cert(d, "p", ["p.test"], ca=ca)
    for f in c:
        os.chmod(f, 0o644)
    be = HttpBackend("p")
    tf = Tlsfront(d, {"p": {"cert": c[0], "key": c[1], "backend": "127.0.0.1:%d" % be.port}},
                  workers=2, global_extra={"user": "nobody", "group": "nogroup"})
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o755 if os.path.isdir(os.path.join(d, f)) else 0o644)
    tf.wait_log(r"running as user nobody", what="the privilege drop")
    main_ids = ids(tf.proc.pid)
    check(main_ids["Uid"] == [str(user.pw_uid)] * 4 and main_ids["Gid"] == [str(group.gr_gid)] * 4,
          "the main process runs as nobody:nogroup (real, effective, saved, fs): %r" % main_ids)
    check(main_ids["CapEff"] == ["0000000000000000"], "with no capabilities left")
    workers = tf.workers()
    check(len(workers) == 2 and all(ids(p)["Uid"][0] == str(user.pw_uid) for p in workers),
          "both workers run as nobody")
    check(http_get(tf.port, "p.test", "/") == b"backend p /\n", "and serve")

    # a key only root can read: the reload (as nobody) fails, old config serves
    os.chmod(c[1], 0o600)
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reload failed", what="the failed reload")
    check(re.search(r"hosts\.d/p\.ini:\d+: key: cannot open %s: Permission denied" %
                    re.escape(c[1]), tf.log()),
          "the failed reload names the unreadable key at FILE:LINE")
    check(http_get(tf.port, "p.test", "/still") == b"backend p /still\n",
          "the old configuration keeps serving")
    r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--init-groups",
                        TLSFRONT, "-t", "-c", tf.main], capture_output=True, text=True)
    check(r.returncode == 1 and "Permission denied" in r.stderr,
          "tlsfront -t run as that user reports the unreadable key: %r" % r.stderr)
    check(tf.stop() == 0, "tlsfront exits 0")

    # a user that does not exist: refuse to run
    with open(tf.main) as f:
        text = f.read().replace("user = nobody", "user = no-such-user-xyz")
    with open(tf.main, "w") as f:
        f.write(text)
    r = subprocess.run([TLSFRONT, "-c", tf.main], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "user no-such-user-xyz" in r.stderr,
          "an unknown user: tlsfront refuses to run (rc %d): %r" % (r.returncode, r.stderr))


run(main)
