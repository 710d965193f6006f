"""The frame of an end-to-end test: its outcome, its cleanups, its waits.

Every test is a script that builds its own world in a temporary directory
and ends through run(main). Tests synchronise on ports and log lines, never
on sleeps. Exit status follows automake: 0 pass, 1 fail, 77 skip.

The other tf_* modules each do one job on top of this one:
  tf_proc     tlsfront itself: the binary (under valgrind or a sanitizer),
              the Tlsfront process, its memory and descriptors; importing
              it has run() fail a test whose tlsfront processes made a
              memory checker report (at_end())
  tf_pki      certificates: one CA class for servers' and clients'
  tf_peers    what tlsfront talks to: test backends, nginx
  tf_clients  TLS clients: Python ssl, openssl s_client
  tf_faults   fault injection with good clients running beside (issue #7)

Environment:
  TLSFRONT_SRCDIR     the source tree (default: two levels above this file)
  TLSFRONT_VALGRIND   1: every tlsfront process runs under valgrind memcheck
  TLSFRONT_TIME_SCALE factor for the waits (default 10 under valgrind, else 1)
  TLSFRONT_ALLOW_MISSING_PEERS
                      1: a peer or tool that a test needs (nginx, haproxy,
                      testssl, promtool, python3-cryptography...) may be
                      missing: what needs it is skipped and the test ends as
                      SKIP (77), never as PASS. Unset, a missing one is a
                      failure: CI and the Debian package install them all.
"""
import atexit
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TLSFRONT_SRCDIR", os.path.dirname(os.path.dirname(HERE)))

# Everything is slower under valgrind: TIME_SCALE stretches the waits here
# and in the other modules, and scaled_duration() the timeouts a test
# configures that a working client must not run into.
VALGRIND = os.environ.get("TLSFRONT_VALGRIND", "") not in ("", "0")
TIME_SCALE = float(os.environ.get("TLSFRONT_TIME_SCALE") or (10 if VALGRIND else 1))
ALLOW_MISSING_PEERS = os.environ.get("TLSFRONT_ALLOW_MISSING_PEERS", "") not in ("", "0")


def scaled_duration(ms):
    """A duration for the configuration, ms milliseconds times TIME_SCALE,
    as "Nms": for a timeout that a working client must not run into, which
    under valgrind needs room."""
    return "%dms" % round(ms * TIME_SCALE)


# ---------------------------------------------------------------- outcome

class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)
    print("ok -", msg)


def check_eventually(pred, msg, timeout=10.0, interval=0.02):
    """check() that pred() becomes true within timeout seconds (polled);
    return its value."""
    try:
        v = wait_for(pred, timeout, msg, interval)
    except Fail:
        v = None
    check(v, "%s (within %gs)" % (msg, timeout))
    return v


_skipped_parts = []


def skip_part(part, why):
    """The part of the test named part cannot run here (why): the caller
    skips it, and the test goes on, to end as SKIP (77), not PASS, if all
    the rest passed: automake has no "passed in part"."""
    print("# SKIP %s: %s" % (part, why))
    entry = "%s (%s)" % (part, why)
    if entry not in _skipped_parts:
        _skipped_parts.append(entry)


def missing(what, part=None):
    """Something the test needs is not installed (what: the tool and its
    Debian package). A failure, unless TLSFRONT_ALLOW_MISSING_PEERS=1; then,
    if part names the part of the test that needs it, skip_part() and
    return: the caller skips that part. Without part the whole test is
    skipped now (exit 77)."""
    if not ALLOW_MISSING_PEERS:
        raise Fail("%s is missing (TLSFRONT_ALLOW_MISSING_PEERS=1 would skip %s)"
                   % (what, part or "this test"))
    if part is None:
        print("SKIP: %s is missing" % what)
        sys.exit(77)
    skip_part(part, "%s is missing" % what)


def program(name, package, part=None):
    """The path of the program name, from PATH or else /usr/sbin or /sbin
    (where nginx and haproxy are, often outside a user's PATH). If it is
    missing: missing() (a failure by default), and None."""
    exe = shutil.which(name)
    for d in ("/usr/sbin", "/sbin"):
        if exe is None and os.access(os.path.join(d, name), os.X_OK):
            exe = os.path.join(d, name)
    if exe is None:
        missing("%s (Debian package %s)" % (name, package), part)
    return exe


_at_end = []


def at_end(fn):
    """fn() runs when the test is over, whatever its outcome, and may run
    the cleanups itself (run_cleanups()); it returns True if it found a
    reason to fail the test (tf_proc: a memory checker's report)."""
    _at_end.append(fn)


def _end_checks():
    failed = False
    for fn in _at_end:
        failed = fn() or failed
    run_cleanups()
    return failed


def run(main):
    """Run a test's main(); print the failure and exit 1 on any exception,
    or when an end check failed (even if main() passed). Exit 77 if main()
    passed with parts skipped (skip_part(), missing())."""
    try:
        main()
    except Fail as e:
        print("FAIL:", e)
        _dump_logs()
        _end_checks()
        print("FAIL (repeated below the logs):", e)
        _exit(1)
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        _dump_logs()
        _end_checks()
        _exit(1)
    if _end_checks():
        _exit(1)
    if _skipped_parts:
        print("SKIP: passed, but these parts were not run: %s" % "; ".join(_skipped_parts))
        _exit(77)
    _exit(0)


def _exit(code):
    """Exit now, cleanups and end checks done: sys.exit would first wait for
    the test's non-daemon threads, and a test that failed half way may have
    left one looping forever (seen under valgrind)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# ---------------------------------------------------------------- cleanups, logs

_cleanups = []


def cleanup(fn):
    """Run fn at exit (last registered first)."""
    _cleanups.append(fn)


@atexit.register
def run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


_logs = []


def watch_log(path):
    """Show the tail of the log file path if the test fails (and let
    tf_proc's checks look into it for sanitizer reports)."""
    _logs.append(path)


def watched_logs():
    return list(_logs)


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


# ---------------------------------------------------------------- waiting

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


# ---------------------------------------------------------------- ports

def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_given_ports = set()


def free_port():
    """A free TCP port for a server of the test, chosen OUTSIDE the kernel's
    ephemeral range: a port from that range can be taken, before our server
    binds it, as the local port of some client connection (tests running in
    parallel make thousands). Ports taken by this process are not handed out
    twice."""
    lo, hi = _ephemeral_range()
    a, b = (10000, lo - 1) if lo > 11000 else (hi + 1, 65535)
    for _ in range(200):
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


def wait_port(port, host="127.0.0.1", timeout=10.0):
    def up():
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(up, timeout, "port %d to accept" % port)


def listening(port, host="127.0.0.1"):
    """Is some socket listening on host:port (TCP, IPv4)? Reads
    /proc/net/tcp, so unlike wait_port it opens no connection (a probe
    would go through a proxy and show up in tlsfront's access log)."""
    # the address as /proc/net/tcp prints it: host byte order, little endian
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(host))[0], port)
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


def wait_listening(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until host:port is listening (see listening()); fail early if
    proc (a Popen) exits first."""
    def up():
        if proc is not None and proc.poll() is not None:
            raise Fail("process exited (%s) before listening on %s:%d"
                       % (proc.returncode, host, port))
        return listening(port, host)
    wait_for(up, timeout, "%s:%d to listen" % (host, port))
