"""Session tickets:
- with workers = 2, a TLS 1.3 ticket is accepted whichever worker gets the
  resuming connection, and after a reload (SIGHUP);
- two instances sharing a ticket_key_file accept each other's tickets, and an
  instance with its own keys does not (the control);
- a key file rotated by prepending a new key: old tickets still resume
  (renewed), new ones are made with the new key;
- session_tickets = off: TLS 1.2 clients get no ticket (session IDs still
  resume);
- tls13_tickets: one ticket per full TLS 1.3 handshake by default, N if set;
- ticket_key_rotation: a ticket two periods old is no longer accepted;
- the commands tlsfront.ini(5) gives to make the key file and to rotate it,
  taken from the man page and run verbatim with bash: openssl wraps its
  base64 over two lines, -t accepts the file, its tickets resume, and after
  the rotation old tickets still resume and new ones use the new key;
- -t errors for a bad key file at FILE:LINE (of the line a bad key starts
  on, for wrapped keys)."""
import base64
import os
import re
import signal
import socket
import ssl
import subprocess
import time

from tf_clients import client_context
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import SRCDIR, check, run, tmpdir


def fetch(port, ctx, sni, session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname=sni, session=session)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            try:
                if not s.recv(65536):
                    break
            except ssl.SSLZeroReturnError:
                break
        return s.session, s.session_reused
    finally:
        s.close()


def new_key():
    return base64.b64encode(os.urandom(80)).decode()


def man_key_commands():
    """The shell commands of ticket_key_file in tlsfront.ini(5) that work on
    tickets.key: (make, rotate), with roff's \\- made plain -."""
    text = open(os.path.join(SRCDIR, "man", "tlsfront.ini.5")).read()
    entry = text[text.index('.BI "ticket_key_file = "'):]
    entry = entry[:entry.index("\n.TP")]
    cmds = [c.replace("\\-", "-") for c in
            re.findall(r'^\.BR "([^"]*tickets\.key[^"]*)"', entry, re.M)]
    check(len(cmds) == 2 and cmds[0].startswith("openssl rand"),
          "the man page gives a command to make the key file and one to rotate it: %r"
          % cmds)
    return cmds


def man_commands(d, host, ca):
    make, rotate = man_key_commands()
    kd = os.path.join(d, "man")
    os.makedirs(kd)
    keyfile = os.path.join(kd, "tickets.key")

    def sh(cmd):
        r = subprocess.run(["bash", "-c", cmd], cwd=kd, capture_output=True, text=True)
        check(r.returncode == 0, "bash -c %r succeeds: %s" % (cmd, r.stderr))
    sh(make)
    lines = open(keyfile).read().splitlines()
    check([len(l) for l in lines] == [64, 44],
          "%r writes one key wrapped over two lines (64 + 44 characters)" % make)
    tm = Tlsfront(kd, {"t": host}, global_extra={"ticket_key_file": keyfile}, start=False)
    r = tm.check_config()
    check(r.returncode == 0, "tlsfront -t accepts the key file as openssl wrote it: %r"
          % r.stderr)
    tm.start()
    ctx13 = client_context(verify_ca=ca.crt)
    s1, _ = fetch(tm.port, ctx13, "t.test")
    _, r1 = fetch(tm.port, ctx13, "t.test", s1)
    check(s1.has_ticket and r1, "a ticket issued with that key resumes")
    first = open(keyfile).read()

    sh(rotate)
    lines = open(keyfile).read().splitlines()
    check(len(lines) == 4 and "\n".join(lines[2:]) + "\n" == first,
          "%r puts a new key (two lines) before the previous one" % rotate)
    r = tm.check_config()
    check(r.returncode == 0, "tlsfront -t accepts the rotated file: %r" % r.stderr)
    tm.reload("the reload with the rotated key file")
    s2, r2 = fetch(tm.port, ctx13, "t.test", s1)
    check(r2, "after the rotation, a ticket made with the previous key still resumes")
    # an instance with only the new key (the first two lines) reads the
    # renewed ticket: the new key, first in the file, is the one encrypting
    nd = os.path.join(d, "man-new")
    os.makedirs(nd)
    with open(os.path.join(nd, "new.key"), "w") as f:
        f.write("\n".join(lines[:2]) + "\n")
    tn = Tlsfront(nd, {"t": host}, global_extra={"ticket_key_file":
                                                 os.path.join(nd, "new.key")})
    _, r3 = fetch(tn.port, ctx13, "t.test", s2)
    check(r3, "the renewed ticket resumes on an instance with only the new key")
    _, r4 = fetch(tn.port, ctx13, "t.test", s1)
    check(not r4, "a ticket of the previous key does not resume there (control)")
    for t in (tm, tn):
        check(t.stop() == 0, "tlsfront exits 0")


def main():
    d = tmpdir()
    ca = CA(d)
    cert = ca.host_cert("t", ["t.test", "off.test"])
    be = HttpBackend("t")
    ctx13 = client_context(verify_ca=ca.crt)
    host = {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % be.port,
            "names": "t.test"}
    off = dict(host, names="off.test", session_tickets="off")

    # 1. two workers and reloads, derived keys
    os.makedirs(os.path.join(d, "a"))
    tf = Tlsfront(os.path.join(d, "a"), {"t": host}, workers=2)
    sess, _ = fetch(tf.port, ctx13, "t.test")
    check(sess is not None and sess.has_ticket, "a TLS 1.3 client gets a ticket")
    reused = [fetch(tf.port, ctx13, "t.test", sess)[1] for _ in range(12)]
    pids = set(re.findall(r"tlsfront\[(\d+)\] worker \d info: access .*sni=t.test", tf.log()))
    check(all(reused) and len(pids) == 2,
          "12 resumptions across both workers all succeed: %r (workers %r)" % (reused, pids))
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 1, what="the reload")
    tf.wait_log(r"signal 15: draining", count=2, what="old workers draining")
    _, r = fetch(tf.port, ctx13, "t.test", sess)
    check(r, "the ticket is still accepted after a reload")

    # 2. a shared key file between two instances
    keyfile = os.path.join(d, "tickets.key")
    k1 = new_key()
    with open(keyfile, "w") as f:
        f.write(k1 + "\n")
    os.makedirs(os.path.join(d, "b"))
    os.makedirs(os.path.join(d, "c"))
    # (one worker: session IDs live in a worker's cache)
    small = dict(off, names="small.test", session_cache_size="2")
    none = dict(off, names="none.test", session_cache_size="0")
    many = dict(host, names="many.test", tls13_tickets="3")
    tb = Tlsfront(os.path.join(d, "b"), {"t": host, "off": off, "small": small, "none": none,
                                         "many": many},
                  global_extra={"ticket_key_file": keyfile})
    tc = Tlsfront(os.path.join(d, "c"), {"t": host}, global_extra={"ticket_key_file": keyfile})
    sb, _ = fetch(tb.port, ctx13, "t.test")
    _, r = fetch(tc.port, ctx13, "t.test", sb)
    check(r, "a ticket from instance B resumes on instance C (shared key file)")
    _, r = fetch(tf.port, ctx13, "t.test", sb)
    check(not r, "it does not resume on an instance with its own keys (control)")

    # session_tickets = off: no TLS 1.2 ticket, but session IDs resume
    ctx12 = client_context(verify_ca=ca.crt, maxv=ssl.TLSVersion.TLSv1_2)
    s_off, _ = fetch(tb.port, ctx12, "off.test")
    check(s_off is not None and not s_off.has_ticket,
          "session_tickets = off: a TLS 1.2 client gets no ticket")
    _, r = fetch(tb.port, ctx12, "off.test", s_off)
    check(r, "session_tickets = off: the session ID still resumes")
    s_on, _ = fetch(tb.port, ctx12, "t.test")
    check(s_on.has_ticket, "with tickets on, a TLS 1.2 client gets a ticket (control)")

    # rotation of the file: prepend a new key, reload
    with open(keyfile, "w") as f:
        f.write(new_key() + "\n" + k1 + "\n")
    n = len(re.findall(r"reloaded: ", tc.log()))
    tc.proc.send_signal(signal.SIGHUP)
    tc.wait_log(r"reloaded: ", count=n + 1, what="reload with the rotated key file")
    tc.wait_log(r"signal 15: draining", what="old worker draining")
    s2, r = fetch(tc.port, ctx13, "t.test", sb)
    check(r, "after rotation, a ticket made with the old key still resumes")
    _, r = fetch(tb.port, ctx13, "t.test", s2)
    check(not r, "the renewed ticket uses the new key (B, not reloaded, cannot read it)")

    # session_cache_size per host: 2 sessions kept for "small", none for "none"
    nv12 = client_context(maxv=ssl.TLSVersion.TLSv1_2)   # (the names are not in the cert)
    ss = [fetch(tb.port, nv12, "small.test")[0] for _ in range(3)]
    got = [fetch(tb.port, nv12, "small.test", x)[1] for x in (ss[2], ss[1], ss[0])]
    check(got == [True, True, False],
          "session_cache_size = 2: the 2 newest sessions resume, the oldest was dropped "
          "(%r)" % got)
    sn, _ = fetch(tb.port, nv12, "none.test")
    _, r = fetch(tb.port, nv12, "none.test", sn)
    check(not r, "session_cache_size = 0: no session-ID resumption for that host")
    _, r = fetch(tb.port, ctx12, "off.test", s_off)
    check(r, "another host's cache share is untouched (off.test still resumes)")

    # tls13_tickets: how many tickets a full TLS 1.3 handshake gets (default 1)
    def tickets_after_handshake(sni):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tb.port,
                            "-servername", sni, "-tls1_3", "-msg", "-ign_eof"],
                           input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           capture_output=True, timeout=20)
        out = r.stdout.decode("latin-1")
        check("backend t /" in out, "s_client got the answer for %s" % sni)
        return len(re.findall(r"<<< TLS 1.3, Handshake \[length [0-9a-f]+\], NewSessionTicket",
                              out))
    n1, n3 = tickets_after_handshake("t.test"), tickets_after_handshake("many.test")
    check(n1 == 1 and n3 == 3, "tls13_tickets: 1 ticket by default, 3 where set (%d, %d)"
          % (n1, n3))

    # the same with openssl s_client -sess_out / -sess_in: across 2 workers and a
    # reload (tf), and between two instances sharing the key file (tb -> tc)
    sess = os.path.join(d, "s_client.sess")

    def s_client(port, sni, sess_arg):
        # a whole request, and -ign_eof: s_client stays until the answer, so
        # the TLS 1.3 tickets (sent right after the handshake) are in
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", sni, "-CAfile", ca.crt, "-ign_eof", sess_arg, sess],
                           input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           capture_output=True, timeout=20)
        out = r.stdout.decode("latin-1")
        return "Reused," in out, out
    # each TLS 1.3 resumption brings a fresh ticket (clients use a ticket once):
    # a chain of -sess_in A -sess_out B, B -> C, ... resumes at every step
    prev = os.path.join(d, "chain0.sess")
    s_client(tf.port, "t.test", "-sess_out")
    os.replace(sess, prev)
    for i in range(1, 5):
        nxt = os.path.join(d, "chain%d.sess" % i)
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tf.port,
                            "-servername", "t.test", "-CAfile", ca.crt, "-ign_eof",
                            "-sess_in", prev, "-sess_out", nxt],
                           input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           capture_output=True, timeout=20)
        out = r.stdout.decode("latin-1")
        check("Reused, TLSv1.3" in out, "ticket chain step %d resumes" % i)
        check(os.path.exists(nxt) and open(nxt, "rb").read() != open(prev, "rb").read(),
              "ticket chain step %d: the resumed connection got a new ticket" % i)
        prev = nxt
    s_client(tf.port, "t.test", "-sess_out")
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 1, what="reload for s_client")
    got = [s_client(tf.port, "t.test", "-sess_in")[0] for _ in range(6)]
    check(all(got), "s_client -sess_in resumes after a reload, on either worker: %r" % got)
    s_client(tb.port, "t.test", "-sess_out")
    reused, out = s_client(tc.port, "t.test", "-sess_in")
    check(reused, "s_client: a session from instance B resumes on instance C" +
          ("" if reused else ": " + out[-400:]))

    # 3. rotation period of derived keys: 1s; a ticket two periods old is refused
    os.makedirs(os.path.join(d, "r"))
    tr = Tlsfront(os.path.join(d, "r"), {"t": host},
                  global_extra={"ticket_key_rotation": "1s"})
    sr, _ = fetch(tr.port, ctx13, "t.test")
    _, r = fetch(tr.port, ctx13, "t.test", sr)
    check(r, "with a 1s rotation a fresh ticket resumes (control)")
    time.sleep(2.2)   # the passage of time is what is tested here
    _, r = fetch(tr.port, ctx13, "t.test", sr)
    check(not r, "a ticket older than two rotation periods is refused")

    man_commands(d, host, ca)

    # 4. -t errors
    bad = os.path.join(d, "bad.key")
    with open(bad, "w") as f:
        f.write(new_key() + "\nnot-base64-of-80-bytes\n")
    main = os.path.join(d, "b", "tlsfront.ini")
    text = open(main).read().replace(keyfile, bad)
    with open(main, "w") as f:
        f.write(text)
    r = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True)
    check(r.returncode == 1 and "%s:2: ticket key: expected the base64 of 80 bytes" % bad
          in r.stderr, "a bad line in the key file is an error at its FILE:LINE: %r"
          % r.stderr)
    # wrapped keys: each error at the line its key starts on, the good keys
    # around them read (a cut key does not swallow the next one)
    k = new_key()
    wrapped = base64.encodebytes(os.urandom(80)).decode()    # 76 + 32 characters
    lines = [
        k[:64], k[64:],         # 1-2: a good key, wrapped as openssl does
        "# a comment",          # 3
        new_key()[:64],         # 4: a key cut after its first line
        "",                     # 5
        new_key(),              # 6: a whole key on one line
        new_key()[:64],         # 7: cut, before a key wrapped at 76 columns
    ] + wrapped.splitlines() + [  # 8-9
        new_key()[:-4],         # 10: short, ends the file
    ]
    with open(bad, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True)
    at = sorted(int(m) for m in re.findall(re.escape(bad) + r":(\d+): ticket key: ",
                                            r.stderr))
    check(r.returncode == 1 and at == [4, 7, 10],
          "wrapped keys: errors at the lines the cut keys start on, 4, 7 and 10, and "
          "nowhere else (%r): %r" % (at, r.stderr))
    text = text.replace(bad, os.path.join(d, "missing.key"))
    with open(main, "w") as f:
        f.write(text)
    r = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True)
    check(r.returncode == 1 and re.search(r"tlsfront.ini:\d+: ticket_key_file: cannot open",
                                          r.stderr),
          "a missing key file is an error at the ticket_key_file line: %r" % r.stderr)
    for t in (tf, tb, tc, tr):
        check(t.stop() == 0, "tlsfront exits 0")


run(main)
