"""Metrics: [global] stats_listen and GET /metrics, with workers = 2.
- real traffic through tlsfront, then a scrape with urllib: connections per
  host (both workers' counts summed), bytes in and out to the byte,
  resumed and full handshakes, backend connect failures and latency,
  handshake failures by reason (unknown SNI, TLS 1.1, no common ALPN
  protocol, a client that closes, a handshake timeout), a host's
  max_connections refusals, certificate expiry;
- `promtool check metrics` accepts every scrape;
- /metrics answers while another client of the stats port sends nothing,
  and that client is dropped after about 2 s; other paths get 404;
- a reload counts as ok and moves the generation on, a broken one counts as
  failed; the old generation's counts stay in the totals;
- a worker killed with SIGKILL: its counts are not lost, the restart is
  counted;
- a reload moves the metrics to a unix socket; SIGTERM removes it."""
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from tf_clients import client_context, recv_all, s_client
from tf_peers import HttpBackend
from tf_pki import CA, openssl
from tf_proc import Tlsfront
from tf_run import check, free_port, program, run, scaled_duration, tmpdir, wait_for


def parse(text):
    """{series: value}, series as printed: name{labels}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, v = line.rpartition(" ")
            out[series] = float(v)
    return out


def promtool(text):
    exe = program("promtool", "prometheus", part="promtool check metrics")
    if exe is None:
        return
    r = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True)
    out = (r.stdout + r.stderr).decode(errors="replace").strip()
    check(r.returncode == 0 and out == "", "promtool check metrics passes (%s)" % (out or "ok"))


class Scraper:
    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/metrics" % port

    def raw(self, url=None):
        with urllib.request.urlopen(url or self.url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def __call__(self):
        return parse(self.raw()[2])


def fetch(port, sni, path="/", ctx=None, session=None):
    """One request over TLS: (request bytes, response bytes, reused?, session)."""
    ctx = ctx or client_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, sni)).encode()
    s.sendall(req)
    data = recv_all(s)
    reused, sess = s.session_reused, s.session
    s.close()
    return len(req), bytes(data), reused, sess


def refused_handshake(port, sni, ctx=None):
    """Does the TLS handshake fail?"""
    try:
        s = (ctx or client_context()).wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni)
    except (ssl.SSLError, ConnectionResetError):
        return True
    s.close()
    return False


def not_after(pem):
    out = openssl("x509", "-in", pem, "-noout", "-enddate")
    return ssl.cert_time_to_seconds(out.strip().split("=", 1)[1])


def main():
    d = tmpdir()
    ca = CA(d)
    shop_c = ca.host_cert("shop", ["shop.test"])
    blog_c = ca.host_cert("blog", ["blog.test"], days=90)
    down_c = ca.host_cert("down", ["down.test"])
    lim_c = ca.host_cert("lim", ["lim.test"])
    shop_be, blog_be = HttpBackend("shop"), HttpBackend("blog")
    hosts = {
        "shop": {"cert": shop_c[0], "key": shop_c[1], "backend": "127.0.0.1:%d" % shop_be.port},
        "blog": {"cert": blog_c[0], "key": blog_c[1], "backend": "127.0.0.1:%d" % blog_be.port,
                 "alpn": "h2"},
        "down": {"cert": down_c[0], "key": down_c[1], "backend": "127.0.0.1:%d" % free_port()},
        "lim": {"cert": lim_c[0], "key": lim_c[1], "backend": "127.0.0.1:%d" % shop_be.port,
                "max_connections": "1"},
    }
    sport = free_port()
    # 1s, longer under valgrind: a working client's first handshake can take that
    tf = Tlsfront(d, hosts, workers=2, defaults={"handshake_timeout": scaled_duration(1000)},
                  global_extra={"stats_listen": "127.0.0.1:%d" % sport})
    tf.wait_log(r"metrics on 127\.0\.0\.1:%d" % sport, what="the metrics listener")
    scrape = Scraper(sport)
    wait_for(lambda: len(tf.workers()) == 2, what="two workers")

    # ---- the first scrape: nothing happened yet
    status, ctype, text = scrape.raw()
    check(status == 200 and ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          "GET /metrics: 200, %s" % ctype)
    promtool(text)
    m = parse(text)
    check(m["tlsfront_config_generation"] == 1 and m["tlsfront_hosts"] == 4,
          "generation 1, 4 hosts")
    check(m['tlsfront_reloads_total{result="ok"}'] == 0 and
          m['tlsfront_reloads_total{result="failed"}'] == 0, "no reloads yet")
    check(abs(m["tlsfront_start_time_seconds"] - time.time()) < 120, "start time is now")
    check(m['tlsfront_certificate_not_after_timestamp_seconds{host="shop"}'] ==
          not_after(shop_c[0]) and
          m['tlsfront_certificate_not_after_timestamp_seconds{host="blog"}'] ==
          not_after(blog_c[0]), "certificate not-after per host, in unix seconds")
    check(m["tlsfront_worker_processes"] == 2, "two worker processes count")
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % sport, timeout=10)
        check(False, "GET /other is refused")
    except urllib.error.HTTPError as e:
        check(e.code == 404, "GET /other: 404 (%d)" % e.code)

    # ---- traffic: full and resumed handshakes, exact bytes
    n_access = 0
    ins, outs, reused, full = {"shop": 0, "blog": 0}, {"shop": 0, "blog": 0}, 0, 0
    sess = None
    ctx13 = client_context()   # a session resumes only with the context it came from
    for i in range(12):
        ctx = client_context(maxv=ssl.TLSVersion.TLSv1_2) if i % 2 else ctx13
        q, r, was_reused, s = fetch(tf.port, "shop.test", "/s%d" % i, ctx)
        check(r.endswith(b"backend shop /s%d\n" % i), "request %d to shop served" % i)
        ins["shop"] += q
        outs["shop"] += len(r)
        full += 1
        if i == 0:
            sess = s
    for i in range(4):
        q, r, was_reused, s = fetch(tf.port, "shop.test", "/r%d" % i, ctx13, session=sess)
        ins["shop"] += q
        outs["shop"] += len(r)
        reused += was_reused
        full += not was_reused
    check(reused >= 1, "the client resumed %d of 4 sessions" % reused)
    for i in range(6):
        q, r, _, _ = fetch(tf.port, "blog.test", "/b%d" % i)
        check(r.endswith(b"backend blog /b%d\n" % i), "request %d to blog served" % i)
        ins["blog"] += q
        outs["blog"] += len(r)
    n_access += 22
    # backend down: the handshake works, the connect fails
    for i in range(3):
        q, r, _, _ = fetch(tf.port, "down.test")
        check(r == b"", "down.test: closed without an answer")
    n_access += 3
    lines = tf.wait_access(n_access)
    pids = set(re.findall(r"tlsfront\[(\d+)\] worker \d info: access", "\n".join(lines)))
    check(len(pids) == 2, "both workers served some of the connections (%r)" % sorted(pids))

    # ---- handshake failures, one of each kind
    check(refused_handshake(tf.port, "nope.test"), "an unknown server name is refused")
    rc, out = s_client(tf.port, "shop.test", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    check(rc != 0, "a TLS 1.1 client is refused")
    check(refused_handshake(tf.port, "blog.test", client_context(alpn=["http/1.1"])),
          "a client without a common ALPN protocol is refused")
    socket.create_connection(("127.0.0.1", tf.port), timeout=10).close()
    silent = socket.create_connection(("127.0.0.1", tf.port), timeout=10)
    n_access += 5
    tf.wait_access(n_access)   # the silent one after handshake_timeout = 1s
    silent.close()

    # a host's max_connections = 1 (one per worker): of 3 connections held
    # open (the backend waits for a request), at least one is refused in
    # the handshake
    held, refused = [], 0
    for _ in range(3):
        try:
            held.append(client_context().wrap_socket(
                socket.create_connection(("127.0.0.1", tf.port), timeout=10),
                server_hostname="lim.test"))
        except (ssl.SSLError, ConnectionResetError):
            refused += 1
    for s in held:
        s.close()
    check(refused >= 1, "lim.test refused %d of 3 connections" % refused)
    n_access += 3
    tf.wait_access(n_access)

    text = scrape.raw()[2]
    promtool(text)
    m = parse(text)
    conns = {"shop": 16, "blog": 6, "down": 3, "lim": 3 - refused}
    for h, n in conns.items():
        got = m['tlsfront_connections_total{host="%s"}' % h]
        check(got == n, "connections_total{host=%s} == %d (%s)" % (h, n, got))
        check(m['tlsfront_connections_open{host="%s"}' % h] == 0, "none of %s open now" % h)
    for h in ("shop", "blog"):
        check(m['tlsfront_received_bytes_total{host="%s"}' % h] == ins[h],
              "received bytes of %s == %d, what the client sent" % (h, ins[h]))
        check(m['tlsfront_sent_bytes_total{host="%s"}' % h] == outs[h],
              "sent bytes of %s == %d, what the client got" % (h, outs[h]))
    check(m['tlsfront_handshakes_total{host="shop",session="resumed"}'] == reused and
          m['tlsfront_handshakes_total{host="shop",session="full"}'] == full,
          "shop: %d resumed, %d full handshakes" % (reused, full))
    check(m['tlsfront_backend_connect_failures_total{host="down"}'] == 3 and
          m['tlsfront_backend_connect_failures_total{host="shop"}'] == 0,
          "backend connect failures: 3 for down, none for shop")
    # a lim client may be closed before its worker saw the handshake end:
    # then tlsfront does not dial the backend for it
    gone = sum(1 for l in tf.access_lines()
               if "host=lim" in l and "client closed after the handshake" in l)
    # and one closed (or reset) by the test while its backend connect was
    # under way ends then, before the connect is counted: the lim ones are
    # between none and all of those not gone; shop's and blog's are exact
    ok_connects = 16 + 6 + (3 - refused - gone)
    got = m["tlsfront_backend_connect_seconds_count"]
    check(16 + 6 <= got <= ok_connects and
          m['tlsfront_backend_connect_seconds_bucket{le="+Inf"}'] == got,
          "connect latency histogram: %s connects, 22 to %d" % (got, ok_connects))
    check(0 < m["tlsfront_backend_connect_seconds_sum"] < ok_connects,
          "connect latency sum %.6f s" % m["tlsfront_backend_connect_seconds_sum"])
    check(m['tlsfront_host_backend_connect_seconds_count{host="shop"}'] == 16,
          "shop's connect latency: 16 connects")
    fails = {"unknown_sni": 1, "protocol": 1, "no_alpn": 1, "closed": 1, "timeout": 1,
             "client_cert": 0, "proxy_header": 0, "other": 0}
    for reason, n in fails.items():
        check(m['tlsfront_handshake_failures_total{reason="%s"}' % reason] == n,
              "handshake failures, %s: %d" % (reason, n))
    check(m['tlsfront_host_refused_connections_total{host="lim"}'] == refused,
          "lim.test: %d refused by its max_connections" % refused)
    check(m["tlsfront_accepted_connections_total"] == n_access,
          "accepted connections: %d" % n_access)
    check(m["tlsfront_active_connections"] == 0, "no connection active")
    totals = {h: m['tlsfront_connections_total{host="%s"}' % h] for h in conns}

    # ---- the stats port: a silent client is dropped, scrapes go on meanwhile
    quiet = socket.create_connection(("127.0.0.1", sport), timeout=10)
    t0 = time.monotonic()
    check(scrape()["tlsfront_config_generation"] == 1 and time.monotonic() - t0 < 1.5,
          "a scrape is answered while another client sends nothing")
    got = quiet.recv(100)
    waited = time.monotonic() - t0
    quiet.close()
    check(got == b"" and 1.5 < waited < 5, "the silent client was dropped after %.1f s" % waited)

    # ---- reload ok: generation 2, totals kept across the generations
    before = time.time()
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", what="the reload")
    wait_for(lambda: scrape()["tlsfront_worker_processes"] == 2, 30, "the old workers to go")
    q, r, _, _ = fetch(tf.port, "shop.test", "/after-reload")
    n_access += 1
    tf.wait_access(n_access)
    m = scrape()
    check(m['tlsfront_reloads_total{result="ok"}'] == 1 and m["tlsfront_config_generation"] == 2,
          "a reload: reloads ok 1, generation 2")
    check(m["tlsfront_last_reload_success_timestamp_seconds"] >= int(before),
          "last successful reload time is the reload's")
    check(m['tlsfront_connections_total{host="shop"}'] == totals["shop"] + 1 and
          m['tlsfront_connections_total{host="blog"}'] == totals["blog"],
          "totals go on across the reload (shop %s)" % m['tlsfront_connections_total{host="shop"}'])
    totals["shop"] += 1

    # ---- a broken reload: failed 1, generation stays
    bad = os.path.join(d, "hosts.d", "broken.ini")
    with open(bad, "w") as f:
        f.write("[host broken]\ncert = /nonexistent.pem\nkey = /nonexistent.key\n"
                "backend = 127.0.0.1:1\n")
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reload failed", what="the failed reload")
    os.remove(bad)
    m = scrape()
    check(m['tlsfront_reloads_total{result="failed"}'] == 1 and
          m['tlsfront_reloads_total{result="ok"}'] == 1 and
          m["tlsfront_config_generation"] == 2, "a broken reload: failed 1, generation still 2")

    # ---- a worker killed: its counts stay, the restart is counted
    workers_now = tf.workers()
    victim, i = None, 0
    while victim is None:   # until one of the workers has served some
        fetch(tf.port, "shop.test", "/k%d" % i)
        i += 1
        n_access += 1
        lines = tf.wait_access(n_access)
        served = {int(p) for p in re.findall(r"tlsfront\[(\d+)\] worker \d info: access",
                                             "\n".join(lines[-i:]))}
        victim = next((p for p in workers_now if p in served), None)
    totals["shop"] += i
    m = scrape()
    check(m['tlsfront_connections_total{host="shop"}'] == totals["shop"],
          "shop: %d connections before the kill" % totals["shop"])
    bytes_before = m['tlsfront_sent_bytes_total{host="shop"}']
    os.kill(victim, signal.SIGKILL)
    tf.wait_log(r"\(pid %d\) killed by signal 9; restarting" % victim, what="the restart")
    wait_for(lambda: len(tf.workers()) == 2 and victim not in tf.workers(), 15,
             "the replacement worker")
    m = scrape()
    check(m['tlsfront_connections_total{host="shop"}'] == totals["shop"] and
          m['tlsfront_sent_bytes_total{host="shop"}'] == bytes_before,
          "after the kill: shop still %d connections, %d bytes sent"
          % (totals["shop"], bytes_before))
    check(m["tlsfront_worker_restarts_total"] == 1, "one worker restart counted")
    fetch(tf.port, "shop.test", "/after-kill")
    n_access += 1
    tf.wait_access(n_access)
    text = scrape.raw()[2]
    promtool(text)
    m = parse(text)
    check(m['tlsfront_connections_total{host="shop"}'] == totals["shop"] + 1,
          "and counting goes on")

    # ---- metrics moved to a unix socket by a reload; SIGTERM removes it
    upath = os.path.join(d, "stats.sock")
    with open(tf.main) as f:
        conf = f.read()
    with open(tf.main, "w") as f:
        f.write(re.sub(r"stats_listen = .*", "stats_listen = unix:" + upath, conf))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"metrics on unix:", what="the unix metrics socket")
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(10)
    u.connect(upath)
    u.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = u.recv(65536)
        if not b:
            break
        data += b
    u.close()
    head, _, body = data.partition(b"\r\n\r\n")
    # an HTTP/1.0 request is answered in HTTP/1.0 (evhttp)
    check(head.startswith(b"HTTP/1.0 200 OK") and
          parse(body.decode())["tlsfront_config_generation"] == 3,
          "GET /metrics over unix:%s: generation 3" % upath)
    try:
        socket.create_connection(("127.0.0.1", sport), timeout=5).close()
        check(False, "the old metrics port is closed")
    except ConnectionRefusedError:
        check(True, "the old metrics port is closed")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")
    check(not os.path.exists(upath), "and removes its metrics socket")


run(main)
