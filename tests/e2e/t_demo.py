"""The README's demo, as the README tells a user to run it: the commands are
read from README.md, with free ports put in place of the documented ones.

scripts/demo.sh runs from a copy of the tree that holds only scripts/demo.sh
(given TLSFRONT_BIN, the demo needs nothing else of the tree and writes its
demo/ there), with TLSFRONT_BIN set to a wrapper that records each run of the
tested binary, and with apt-get and sudo on PATH replaced by stubs that
record being called and fail: every package the demo needs is installed
(else the test skips), so it must not run apt at all.

1. `PORT=... BACKEND_PORT=... bash scripts/demo.sh`: it says nothing is
   missing, serves; the README's curl command gets the demo page through
   tlsfront from the demo backend; Ctrl-C (SIGINT to its process group)
   stops everything and frees both ports.
2. `bash scripts/demo.sh` with BACKEND_PORT taken by another listener, then
   with PORT taken: it exits non-zero at once, naming the port, and never
   runs tlsfront.
3. BACKEND_PORT bound by another socket that does not listen (so the port
   looks free, but the backend cannot bind it): the demo says the backend
   exited and why (Address already in use), and never runs tlsfront.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys

from tf_proc import TLSFRONT
from tf_run import (SRCDIR, TIME_SCALE, Fail, check, cleanup, free_port, run, tmpdir,
                    wait_for, watch_log)


def readme_commands():
    """The demo command, its form with ports, and the curl command, as
    README.md writes them."""
    with open(os.path.join(SRCDIR, "README.md")) as f:
        text = f.read()
    flat = re.sub(r"\s+", " ", text)
    m = re.search(r"^(bash scripts/demo\.sh)\s", text, re.M)
    check(m is not None, "README.md tells to run 'bash scripts/demo.sh'")
    demo = m.group(1)
    m = re.search(r"`(PORT=(\d+) BACKEND_PORT=(\d+) bash scripts/demo\.sh)`", flat)
    check(m is not None, "README.md shows how to set PORT and BACKEND_PORT: %r"
          % (m and m.group(1)))
    ports = (m.group(1), int(m.group(2)), int(m.group(3)))
    m = re.search(r"`(curl --cacert demo/demo-ca\.pem https://localhost:(\d+)/)`", flat)
    check(m is not None, "README.md gives the curl command for the demo: %r"
          % (m and m.group(1)))
    return demo, ports, (m.group(1), int(m.group(2)))


def split_command(cmd):
    """'A=1 B=2 prog args' -> ({'A': '1', 'B': '2'}, ['prog', 'args']), as a
    shell runs it."""
    words = shlex.split(cmd)
    env = {}
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        k, _, v = words.pop(0).partition("=")
        env[k] = v
    return env, words


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                       text=True)
    return r.returncode == 0 and r.stdout.endswith(" ok installed")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def procs_in(d):
    """PIDs of processes (that we may look at) whose working directory is
    under d."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if cwd == d or cwd.startswith(d + "/"):
            found.append(int(pid))
    return found


def main():
    if not shutil.which("dpkg-query"):
        print("SKIP: no dpkg-query: demo.sh is for Debian")
        sys.exit(77)
    missing = [p for p in ("openssl", "python3", "curl") if not installed(p)]
    if missing:
        print("SKIP: the demo would install %s; this test does not install" % missing)
        sys.exit(77)
    demo_cmd, (ports_cmd, doc_port, doc_bport), (curl_cmd, curl_port) = readme_commands()
    check(curl_port == 8443, "the README's curl command uses the demo's default port 8443")

    d = tmpdir()
    tree = os.path.join(d, "tree")
    os.makedirs(os.path.join(tree, "scripts"))
    shutil.copy(os.path.join(SRCDIR, "scripts", "demo.sh"), os.path.join(tree, "scripts"))
    ran = os.path.join(d, "tlsfront-runs")
    wrapper = os.path.join(d, "tlsfront")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\necho \"$*\" >> '%s'\nexec '%s' \"$@\"\n" % (ran, TLSFRONT))
    os.chmod(wrapper, 0o755)
    stubs = os.path.join(d, "stubs")
    apt_called = os.path.join(d, "apt-called")
    os.makedirs(stubs)
    for name in ("apt-get", "apt", "sudo"):
        with open(os.path.join(stubs, name), "w") as f:
            f.write("#!/bin/sh\necho \"%s $*\" >> '%s'\nexit 1\n" % (name, apt_called))
        os.chmod(os.path.join(stubs, name), 0o755)
    base_env = {k: v for k, v in os.environ.items() if k not in ("PORT", "BACKEND_PORT")}
    base_env["PATH"] = stubs + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")
    base_env["TLSFRONT_BIN"] = wrapper

    def runs():
        try:
            with open(ran) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def no_apt(what):
        check(not os.path.exists(apt_called),
              "%s: apt-get/sudo were not run (%r)" % (what, open(apt_called).read()
                                                     if os.path.exists(apt_called) else ""))

    # ---- 1. the README's command with ports, curl, Ctrl-C
    port, bport = free_port(), free_port()
    cmd = ports_cmd.replace("PORT=%d " % doc_port, "PORT=%d " % port, 1) \
        .replace("BACKEND_PORT=%d " % doc_bport, "BACKEND_PORT=%d " % bport, 1)
    check(cmd != ports_cmd and cmd.endswith(demo_cmd),
          "running the README's %r as %r" % (ports_cmd, cmd))
    assign, argv = split_command(cmd)
    log_path = os.path.join(d, "demo.log")
    watch_log(log_path)
    logf = open(log_path, "wb")
    proc = subprocess.Popen(argv, cwd=tree, env=dict(base_env, **assign), stdout=logf,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)

    def kill_group():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    cleanup(kill_group)

    def log():
        with open(log_path, errors="replace") as f:
            return f.read()

    def serving():
        if proc.poll() is not None:
            raise Fail("demo.sh exited (%s) before serving" % proc.returncode)
        return re.search(r"listening on 127\.0\.0\.1:%d\b" % port, log())
    wait_for(serving, 60, "tlsfront of the demo to listen on %d" % port)
    out = log()
    check("nothing to install" in out, "demo.sh says there is nothing to install")
    no_apt("the demo")
    check(len(runs()) == 2 and runs()[0].startswith("-c tlsfront.ini -t"),
          "demo.sh ran TLSFRONT_BIN twice, -t first: %r" % runs())
    check(re.search(r"demo backend: http://127\.0\.0\.1:%d/" % bport, out) is not None,
          "demo.sh reported its backend listening on %d" % bport)

    cmd = curl_cmd.replace("https://localhost:%d/" % curl_port, "https://localhost:%d/" % port)
    r = subprocess.run(shlex.split(cmd), cwd=tree, capture_output=True, text=True,
                       timeout=30 * TIME_SCALE)
    with open(os.path.join(tree, "demo", "www", "index.html")) as f:
        page = f.read()
    check(r.returncode == 0 and r.stdout == page and "Hello through tlsfront" in page,
          "the README's curl command (%s) gets the demo page: %r%s" % (
              cmd, r.stdout, "" if r.returncode == 0 else " " + r.stderr.strip()[-500:]))
    wait_for(lambda: re.search(r" access .*backend=127\.0\.0\.1:%d .*reason=\"closed\"" % bport,
                               log()), 15, "the access line of the curl request")
    with open(os.path.join(tree, "demo", "backend.log"), errors="replace") as f:
        blog = f.read()
    check('"GET / HTTP/1.1" 200' in blog, "the demo backend served the request: %r"
          % blog[-300:])

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    try:
        rc = proc.wait(30 * TIME_SCALE)
    except subprocess.TimeoutExpired:
        raise Fail("demo.sh still runs 30 s after Ctrl-C")
    check(rc == 130, "demo.sh exits 130 after Ctrl-C (got %s)" % rc)
    check(refused(port) and refused(bport), "after Ctrl-C nothing listens on %d or %d"
          % (port, bport))
    check(procs_in(tree) == [], "after Ctrl-C no process of the demo is left: %r"
          % procs_in(tree))

    # ---- 2. a port taken by another listener
    demo_argv = shlex.split(demo_cmd)
    for taken_var in ("BACKEND_PORT", "PORT"):
        port, bport = free_port(), free_port()
        taken = bport if taken_var == "BACKEND_PORT" else port
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        before = len(runs())
        r = subprocess.run(demo_argv, cwd=tree, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60 * TIME_SCALE,
                           env=dict(base_env, PORT=str(port), BACKEND_PORT=str(bport)))
        holder.close()
        out = r.stdout + r.stderr
        check(r.returncode != 0, "%s taken: demo.sh exits non-zero (%d)" % (taken_var,
                                                                          r.returncode))
        check(re.search(r"%s %d is taken" % (taken_var, taken), out) is not None,
              "%s taken: the message names it: %r" % (taken_var, out.strip()))
        check(len(runs()) == before and "listening on" not in out,
              "%s taken: tlsfront was not started" % taken_var)
        no_apt("%s taken" % taken_var)
        check(procs_in(tree) == [], "%s taken: no process of the demo is left" % taken_var)

    # ---- 3. the backend cannot bind its port, though nothing listens there
    port, bport = free_port(), free_port()
    holder = socket.socket()  # no SO_REUSEADDR: the backend's bind fails
    holder.bind(("127.0.0.1", bport))
    before = len(runs())
    r = subprocess.run(demo_argv, cwd=tree, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60 * TIME_SCALE,
                       env=dict(base_env, PORT=str(port), BACKEND_PORT=str(bport)))
    holder.close()
    out = r.stdout + r.stderr
    check(r.returncode != 0, "backend cannot bind: demo.sh exits non-zero (%d)" % r.returncode)
    check("the demo backend" in out and "exited" in out and "Address already in use" in out,
          "backend cannot bind: demo.sh says the backend exited, and why: %r" % out.strip())
    check(len(runs()) == before, "backend cannot bind: tlsfront was not started")
    check(procs_in(tree) == [], "backend cannot bind: no process of the demo is left")


run(main)
