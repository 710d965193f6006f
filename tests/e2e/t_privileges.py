"""user/group: tlsfront binds and reads keys as root, then the main process
and its workers run as the configured user (with its supplementary groups),
visible in /proc/PID/status; a reload runs as that user, so a key only root
can read makes the reload fail (logged at FILE:LINE, old config serving), and
`tlsfront -t` run as that user reports it too. Started as root (and in -t
as root), every file the user could not read is a warning at the line that
names it (a key of mode 0600, a ticket_key_file, a key in a directory the
user cannot search, reached through a symbolic link as certbot's live/
files are); none once owner, group or mode let the user read. Needs root
(skipped otherwise)."""
import base64
import os
import pwd
import grp
import re
import signal
import subprocess
import sys

from tf_clients import http_get
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, run, tmpdir


def ids(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "CapEff"):
                out[k] = v.split()
    return out


def unreadable_files(ca):
    d = tmpdir()
    os.chmod(d, 0o755)
    cert, key = ca.host_cert("w", ["w.test"], d=d)
    tickets = os.path.join(d, "tickets.key")
    with open(tickets, "w") as f:
        f.write(base64.b64encode(os.urandom(80)).decode() + "\n")
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)      # root's, as openssl left it
    os.chmod(tickets, 0o600)
    be = HttpBackend("w")
    tf = Tlsfront(d, {"w": {"cert": cert, "key": key, "backend": "127.0.0.1:%d" % be.port}},
                  global_extra={"user": "nobody", "group": "nogroup",
                                "ticket_key_file": tickets}, start=False)
    ini = os.path.join(d, "hosts.d", "w.ini")

    def at(path, key_name):
        with open(path) as f:
            n = [i for i, l in enumerate(f, 1) if l.startswith(key_name + " =")][0]
        return "%s:%d: warning: user nobody cannot read " % (path, n)

    def warned(text):
        return sorted(l[l.index(" cannot read ") + 13:l.index(": every reload will fail")]
                      for l in text.splitlines() if "every reload will fail" in l)

    key_warn = at(ini, "key") + key + ": every reload will fail (Permission denied)"
    tickets_warn = at(tf.main, "ticket_key_file") + tickets + \
        ": every reload will fail (Permission denied)"
    r = tf.check_config()
    check(r.returncode == 0 and key_warn in r.stderr and tickets_warn in r.stderr,
          "-t as root: a key and a ticket key file of mode 0600 owned by root are "
          "warnings at their lines:\n" + r.stderr)
    check(warned(r.stderr) == sorted([key, tickets]),
          "-t: only those two files are named (the 0644 cert is not): %r" % r.stderr)
    tf.start()
    tf.wait_log(r"running as user nobody", what="the privilege drop")
    check(key_warn in tf.log() and tickets_warn in tf.log(),
          "the start (as root) logs both warnings")
    check(tf.stop() == 0, "tlsfront exits 0")

    os.chown(key, pwd.getpwnam("nobody").pw_uid, 0)          # still 0600: its owner reads
    os.chown(tickets, 0, grp.getgrnam("nogroup").gr_gid)     # group nogroup may read
    os.chmod(tickets, 0o640)
    r = tf.check_config()
    check(r.returncode == 0 and warned(r.stderr) == [],
          "-t: no warning once nobody owns the key and its group may read the ticket "
          "keys: %r" % r.stderr)

    # certbot's layout: live/w.key -> ../archive/w.key, archive root-only
    archive = os.path.join(d, "archive")
    live = os.path.join(d, "live")
    os.makedirs(archive)
    os.makedirs(live)
    os.chmod(archive, 0o700)
    os.chmod(live, 0o755)
    os.chown(key, 0, 0)
    os.chmod(key, 0o644)
    os.rename(key, os.path.join(archive, "w.key"))
    os.symlink("../archive/w.key", os.path.join(live, "w.key"))
    with open(ini) as f:
        text = f.read()
    with open(ini, "w") as f:
        f.write(text.replace(key, os.path.join(live, "w.key")))
    r = tf.check_config()
    check(r.returncode == 0 and warned(r.stderr) == [os.path.join(live, "w.key")],
          "-t: a readable key behind a symbolic link into a directory nobody cannot "
          "search is a warning: %r" % r.stderr)
    os.chmod(archive, 0o755)
    r = tf.check_config()
    check(r.returncode == 0 and warned(r.stderr) == [],
          "-t: no warning once that directory is searchable: %r" % r.stderr)
    before = len(tf.log())    # the log file is appended to
    tf.start()
    tf.wait_log(r"running as user nobody", count=2, what="the privilege drop")
    check("every reload will fail" not in tf.log()[before:],
          "the second start logs no warning")
    tf.reload()
    check(http_get(tf.port, "w.test", "/") == b"backend w /\n",
          "and the reload, as nobody, works")
    check(tf.stop() == 0, "tlsfront exits 0")


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        sys.exit(77)
    user = pwd.getpwnam("nobody")
    group = grp.getgrnam("nogroup")
    d = tmpdir()
    os.chmod(d, 0o755)   # nobody must reach the files on reload
    ca = CA(d)
    c = ca.host_cert("p", ["p.test"])
    for f in c:
        os.chmod(f, 0o644)
    be = HttpBackend("p")
    tf = Tlsfront(d, {"p": {"cert": c[0], "key": c[1], "backend": "127.0.0.1:%d" % be.port}},
                  workers=2, global_extra={"user": "nobody", "group": "nogroup"})
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o755 if os.path.isdir(os.path.join(d, f)) else 0o644)
    tf.wait_log(r"running as user nobody", what="the privilege drop")
    check("cannot read" not in tf.log(), "files the user can read are not warned about")
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

    unreadable_files(ca)

    # a user that does not exist: refuse to run
    with open(tf.main) as f:
        text = f.read().replace("user = nobody", "user = no-such-user-xyz")
    with open(tf.main, "w") as f:
        f.write(text)
    r = subprocess.run([TLSFRONT, "-c", tf.main], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "user no-such-user-xyz" in r.stderr,
          "an unknown user: tlsfront refuses to run (rc %d): %r" % (r.returncode, r.stderr))


run(main)
