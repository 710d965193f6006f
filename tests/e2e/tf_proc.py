"""tlsfront itself: the binary the tests run, under valgrind or with a
sanitizer's reports checked, and the Tlsfront process with its log, its
workers, descriptors and memory.

TLSFRONT_VALGRIND=1: every run of the binary (Tlsfront, and the tests that
run TLSFRONT themselves: -t, prlimit, setpriv) goes through a wrapper script
that starts it under valgrind memcheck. Workers are fork()ed, not exec'd, so
valgrind follows them by itself; with %p each process writes its own log
(--child-silent-after-fork=yes would silence exactly the workers).
A binary built with --enable-sanitizers writes its ASan/LSan reports to
files (log_path), whoever started it and wherever its stderr goes; UBSan's
go to stderr (GCC's UBSan ignores log_path when linked with ASan), which
for a Tlsfront is its log. When the test is over, tf_run.run() has
_memcheck_failed() scan the files and the logs: any report fails it.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from tf_run import (SRCDIR, TIME_SCALE, VALGRIND, Fail, at_end, cleanup, free_port,
                    run_cleanups, wait_for, watch_log, watched_logs)

TLSFRONT = os.environ.get("TLSFRONT_BIN", os.path.join(SRCDIR, "tlsfront"))

# ---------------------------------------------------------------- memory checkers

_memcheck_dir = tempfile.mkdtemp(prefix="tlsfront-memcheck-")
os.chmod(_memcheck_dir, 0o1777)  # tlsfront may have become another user (user = nobody)
atexit.register(shutil.rmtree, _memcheck_dir, True)
# Defaults first, so the caller's own ASAN_OPTIONS win; log_path last, so it
# always applies. ASan keeps freed memory in quarantine to catch use after
# free, 256 MiB by default: the RSS would grow with every byte relayed (tests
# bound it); 4 MiB still catches use of recently freed memory.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [
    "halt_on_error=1:detect_leaks=1:quarantine_size_mb=4",
    os.environ.get("ASAN_OPTIONS"), "log_path=" + os.path.join(_memcheck_dir, "san")]))
os.environ["UBSAN_OPTIONS"] = ":".join(filter(None, [
    "halt_on_error=1:print_stacktrace=1",
    os.environ.get("UBSAN_OPTIONS"), "log_path=" + os.path.join(_memcheck_dir, "san")]))
if VALGRIND:
    # --freelist-vol: memcheck's own quarantine of freed blocks, 20 MB by
    # default, would make RSS grow past the tests' bounds too (as for ASan)
    _VALGRIND_ARGS = [
        "valgrind", "--tool=memcheck", "--leak-check=full",
        "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
        "--error-exitcode=99", "--freelist-vol=4000000",
        "--log-file=%s/vg.%%p.log" % _memcheck_dir]
    _wrapper = os.path.join(_memcheck_dir, "tlsfront")
    with open(_wrapper, "w") as _f:
        _f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (
            " ".join("'%s'" % a for a in _VALGRIND_ARGS), "'%s'" % TLSFRONT))
    os.chmod(_wrapper, 0o755)
    TLSFRONT = _wrapper

# what a sanitizer writes, wherever its output went
_SANITIZER_RX = re.compile(r"ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer")
# the first line of a memcheck error record (also in logs of processes
# killed before valgrind could write its summary), or a crash
_VG_ERROR_RX = re.compile(
    r"^==\d+== (Invalid (read|write|free|size|alignment)|Conditional jump or move depends"
    r"|Use of uninitialised value|Syscall param .* (uninitialised|unaddressable)"
    r"|Mismatched free|Source and destination overlap|Argument '.*' of function .* fishy"
    r"|Process terminating with default action of signal (4|6|7|8|11) )", re.M)


def _vg_pid_alive(pid):
    """Is pid a live process of valgrind (not a reused pid)?"""
    try:
        return "memcheck" in os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False


def _memcheck_failed():
    """After the test: stop its processes (cleanups), then look at every
    sanitizer report file, every valgrind log and tlsfront's logs. Print
    each finding; return True if there was any. A process killed with
    SIGKILL writes no valgrind summary, which is fine: its errors were
    logged as they happened; but a clean exit must leave no error and no
    definitely or indirectly lost block."""
    found = []
    for path in watched_logs():  # before the cleanups remove them
        try:
            with open(path, errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if _SANITIZER_RX.search(text):
            found.append((path, text))
    run_cleanups()
    # workers orphaned by a SIGKILLed main process drain, then exit with
    # their summaries: give them a bounded while, then kill them
    vg_logs = sorted(f for f in os.listdir(_memcheck_dir) if re.match(r"vg\.\d+\.log$", f))
    pids = [int(f.split(".")[1]) for f in vg_logs]
    deadline = time.monotonic() + 60
    while any(_vg_pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in pids:
        if _vg_pid_alive(p):
            os.kill(p, signal.SIGKILL)
    for f in sorted(os.listdir(_memcheck_dir)):
        path = os.path.join(_memcheck_dir, f)
        with open(path, errors="replace") as fh:
            text = fh.read()
        if f.startswith("san."):
            found.append((path, text))
        elif f in vg_logs:
            m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
            lost = re.findall(r"(?:definitely|indirectly) lost: ([\d,]+) bytes", text)
            if (m and m.group(1) != "0") or any(n != "0" for n in lost) or \
                    _VG_ERROR_RX.search(text):
                found.append((path, text))
    for path, text in found:
        print("FAIL: memory checker report in %s:" % path)
        print("\n".join(text.splitlines()[:200]))
    shutil.rmtree(_memcheck_dir, True)
    return bool(found)


at_end(_memcheck_failed)


# ---------------------------------------------------------------- tlsfront

class Tlsfront:
    """A tlsfront process with a config written into directory d.

    hosts: dict label -> dict of host keys (written to hosts.d/LABEL.ini).
    """

    def __init__(self, d, hosts, global_extra=None, defaults=None, port=None,
                 workers=1, start=True):
        self.d = d
        self.port = port or free_port()
        self.main = os.path.join(d, "tlsfront.ini")
        self.log_path = os.path.join(d, "tlsfront.log")
        os.makedirs(os.path.join(d, "hosts.d"), exist_ok=True)
        g = {"listen": "127.0.0.1:%d" % self.port, "hosts": "hosts.d/*.ini",
             "workers": str(workers), "log_level": "info", "shutdown_timeout": "10s"}
        g.update(global_extra or {})
        with open(self.main, "w") as f:
            f.write("[global]\n")
            for k, v in g.items():
                f.write("%s = %s\n" % (k, v))
            if defaults:
                f.write("\n[defaults]\n")
                for k, v in defaults.items():
                    f.write("%s = %s\n" % (k, v))
        for label, keys in hosts.items():
            with open(os.path.join(d, "hosts.d", label + ".ini"), "w") as f:
                f.write("[host %s]\n" % label)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))
        self.proc = None
        if start:
            self.start()

    def check_config(self):
        return subprocess.run([TLSFRONT, "-t", "-c", self.main], capture_output=True,
                              text=True)

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        watch_log(self.log_path)
        self.proc = subprocess.Popen([TLSFRONT, "-c", self.main], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        cleanup(self.kill)
        if wait:
            # logged after the sockets are bound and listening: connects queue
            self.wait_log(r"listening on .*:%d" % self.port, what="tlsfront to listen")
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        """The log so far, complete lines only: a line being written (one
        write(2) each, but a reader can catch it half way) is left out."""
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        return text[:text.rfind("\n") + 1]

    def wait_log(self, regex, timeout=15.0, what=None, count=1):
        rx = re.compile(regex)

        def found():
            if self.proc is not None and self.proc.poll() is not None and \
                    len(rx.findall(self.log())) < count:
                raise Fail("tlsfront exited (%s) while waiting for %s" %
                           (self.proc.returncode, what or regex))
            m = rx.findall(self.log())
            return m if len(m) >= count else None
        return wait_for(found, timeout, what or ("log line /%s/" % regex))

    def access_lines(self):
        return [l for l in self.log().splitlines() if " access " in l]

    def wait_access(self, n, timeout=15.0):
        """Wait until n access lines were logged; return them."""
        self.wait_log(r" access ", timeout, "%d access lines" % n, count=n)
        return self.access_lines()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout * TIME_SCALE)
        except subprocess.TimeoutExpired:
            raise Fail("tlsfront did not exit within %ss of signal %d" % (timeout, sig))

    def reload(self, what="the reload"):
        """SIGHUP, then wait until the new configuration serves alone: the
        main process has logged the reload and every worker of the old
        generation has stopped accepting (logged that it drains) or is gone.
        Until then an old worker may still accept a connection from the
        shared listening socket and serve it with the old configuration."""
        old = self.workers()
        n = len(re.findall(r"reloaded: ", self.log()))
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(r"reloaded: ", count=n + 1, what=what)

        def settled():
            log = self.log()
            return all(re.search(r"tlsfront\[%d\] worker \d+ info: signal \d+: draining" % p, log)
                       or not os.path.exists("/proc/%d" % p) for p in old)
        wait_for(settled, what="the old workers to stop accepting after %s" % what)

    def workers(self):
        """PIDs of the worker processes."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def fd_count(self, pid=None):
        return len(os.listdir("/proc/%d/fd" % (pid or self.proc.pid)))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
