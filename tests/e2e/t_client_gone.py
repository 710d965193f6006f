"""A client that leaves while its backend writes (issue #13, item 1).

Before the fix, a client that closed right after its handshake, in front of a
backend that speaks first (an SMTP/MySQL-style greeting), left its worker
writing to the dead socket on every loop turn: write() = EPIPE, 100% CPU, the
connection open until idle_timeout, then logged as "idle timeout". Here, for
curl rejecting the certificate's name after the handshake, for a Python
client that resets right after its handshake, and for one that resets while
a large response is on its way:
- every connection ends at once with a true reason (never "idle timeout";
  idle_timeout is 60 s here);
- tlsfront_connections_open returns to zero within a second;
- the worker's descriptors return to what they were before;
- the worker's CPU time stays flat afterwards (/proc/PID/stat)."""
import os
import socket
import struct
import subprocess
import time
import urllib.request

from tf_clients import client_context
from tf_peers import TcpServer
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import (TIME_SCALE, check, check_eventually, free_port, run, tmpdir, wait_for,
                    wait_stable)

N = 20
GREETING = b"220 greet.test ESMTP ready\r\n" * 8


class Greeter(TcpServer):
    """Speaks first. close_at_once: greets and closes (a backend that answers
    and closes); else greets, then reads until EOF and closes. big: sends that
    many bytes after the greeting (a large response in flight)."""

    def __init__(self, close_at_once=False, big=0):
        self.close_at_once = close_at_once
        self.big = big
        self.accepted = 0
        super().__init__(backlog=128)

    def serve(self, c):
        self.accepted += 1
        try:
            c.sendall(GREETING)
            if self.big:
                c.sendall(b"x" * self.big)
            if not self.close_at_once:
                while c.recv(65536):
                    pass
        except OSError:
            pass
        finally:
            c.close()


def gauge_open(sport):
    """tlsfront_connections_open summed over hosts."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % sport, timeout=10) as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("tlsfront_connections_open{"):
            total += int(float(line.split()[-1]))
    return total


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def check_settled(tf, sport, worker, fds_before, n_lines, what):
    """The connections of a batch are all over: logged with a true reason,
    the gauge at zero within a second, the descriptors back, the CPU flat."""
    check_eventually(lambda: gauge_open(sport) == 0,
                     "%s: tlsfront_connections_open back to 0 within 1 s" % what,
                     timeout=1.0 * TIME_SCALE)
    lines = tf.wait_access(n_lines, timeout=10 * TIME_SCALE)
    batch = lines[n_lines - N:n_lines]
    reasons = sorted(set(l.split('reason="', 1)[1].rstrip('"') for l in batch))
    allowed = {"closed", "client closed", "client reset", "client closed after the handshake",
               "handshake failed: client closed", "handshake failed: client reset"}
    check(len(batch) == N and set(reasons) <= allowed,
          "%s: %d access lines, reasons %s" % (what, len(batch), reasons))
    check_eventually(lambda: tf.fd_count(worker) == fds_before,
                     "%s: the worker's descriptors back to %d (now %d)"
                     % (what, fds_before, tf.fd_count(worker)),
                     timeout=2.0 * TIME_SCALE)
    t0 = cpu_ticks(worker)
    time.sleep(1.0)	# a measurement window, not a wait for an event
    spent = cpu_ticks(worker) - t0
    hz = os.sysconf("SC_CLK_TCK")
    check(spent <= hz // 5, "%s: the worker used %d/%d s of CPU in the second after"
          % (what, spent, hz))


def curl_wrong_name(port, ca, name):
    """curl completes the handshake, finds that the certificate does not
    name `name`, and closes."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "20", "--cacert", ca,
                        "--resolve", "%s:%d:127.0.0.1" % (name, port),
                        "https://%s:%d/" % (name, port)], capture_output=True)
    return r.returncode


def reset_after_handshake(port, sni):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    c = client_context().wrap_socket(raw, server_hostname=sni)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock = socket.socket(fileno=c.detach())
    sock.close()	# RST, no close_notify


def reset_during_download(port, sni):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    c = client_context().wrap_socket(raw, server_hostname=sni)
    got = c.recv(len(GREETING))	# the download has begun
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock = socket.socket(fileno=c.detach())
    sock.close()	# RST with the rest of the download unread
    return got


def main():
    d = tmpdir()
    ca = CA(d)
    cert, key = ca.host_cert("greet", ["greet.test"])
    stays, closes, big = Greeter(), Greeter(close_at_once=True), Greeter(big=4 << 20)
    sport = free_port()
    hosts = {}
    for label, be in (("stays", stays), ("closes", closes), ("big", big)):
        hosts[label] = {"names": "%s.test" % label, "cert": cert, "key": key,
                        "backend": "127.0.0.1:%d" % be.port}
    hosts["stays"]["default"] = "yes"	# curl's x.test lands here
    tf = Tlsfront(d, hosts, global_extra={"stats_listen": "127.0.0.1:%d" % sport},
                  defaults={"idle_timeout": "60s"})
    wait_for(lambda: tf.workers(), what="the worker")
    worker = tf.workers()[0]
    # the baseline of descriptors once the worker serves (under valgrind it
    # is still setting up well after it exists): one connection through it
    reset_after_handshake(tf.port, "stays.test")
    tf.wait_access(1, timeout=10 * TIME_SCALE)
    check_eventually(lambda: gauge_open(sport) == 0, "the first connection is over",
                     timeout=5.0 * TIME_SCALE)
    fds = wait_stable(lambda: tf.fd_count(worker), what="the worker's descriptors")
    lines = 1

    # 1. curl rejects the name after its handshake; the backend greets and
    #    waits (it closes when tlsfront passes the client's EOF on)
    codes = [curl_wrong_name(tf.port, ca.crt, "x.test") for _ in range(N)]
    check(set(codes) == {60}, "curl refused the certificate's name each time: %s"
          % sorted(set(codes)))
    lines += N
    check_settled(tf, sport, worker, fds, lines, "curl, greeting backend")
    check(stays.accepted >= 1, "the backend was dialled (%d times)" % stays.accepted)

    # 2. the same against a backend that greets and closes at once (its host
    #    is chosen by SNI; the certificate does not name it either)
    codes = [curl_wrong_name(tf.port, ca.crt, "closes.test") for _ in range(N)]
    check(set(codes) == {60}, "curl refused the name closes.test each time: %s"
          % sorted(set(codes)))
    lines += N
    check_settled(tf, sport, worker, fds, lines, "curl, backend that answers and closes")

    # 3. a client that resets right after its handshake
    for _ in range(N):
        reset_after_handshake(tf.port, "stays.test")
    lines += N
    check_settled(tf, sport, worker, fds, lines, "reset after the handshake")

    # 4. a client that resets while a 4 MiB response is on its way
    for _ in range(N):
        got = reset_during_download(tf.port, "big.test")
        check(got == GREETING[:len(got)] and got, "the download began: %r" % got[:20])
    lines += N
    check_settled(tf, sport, worker, fds, lines, "reset during a download")
    tail = tf.access_lines()[-N:]
    check(all("host=big" in l for l in tail) and
          any('reason="client reset"' in l or 'reason="client closed"' in l for l in tail),
          "a download cut by the client ends as 'client reset' or 'client closed'")

    # the worker is the one that served all of it
    check(tf.workers() == [worker], "the same worker throughout")


if __name__ == "__main__":
    run(main)
