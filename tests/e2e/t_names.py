"""Many names per host: `names` may repeat in a [host] section, each line
adding names. A host with 300 names on 30 lines (each line within the
196-byte limit) is served for its first, a middle and its last name, with its
certificate and backend, beside another host; a name it does not list is
refused. A name repeated on another names line is an error at that line,
naming the first, as -t reports it."""
import os
import subprocess

from tf_clients import client_context, http_get, s_client, served_cert_cn
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, free_port, run, tmpdir

N_LINES = 30
PER_LINE = 10


def name(i):
    return "n%d.many.test" % i


def main():
    d = tmpdir()
    ca = CA(d)
    many = ca.host_cert("many", ["*.many.test"], cn="many")
    other = ca.host_cert("other", ["other.test"], cn="other")
    b_many, b_other = HttpBackend("many"), HttpBackend("other")

    tf = Tlsfront(d, {
        "many": {"cert": many[0], "key": many[1], "backend": "127.0.0.1:%d" % b_many.port},
        "other": {"cert": other[0], "key": other[1],
                  "backend": "127.0.0.1:%d" % b_other.port},
    }, start=False)
    # Tlsfront writes one line per key: write many.ini with 30 names lines
    lines = ["[host many]", "cert = %s" % many[0], "key = %s" % many[1],
             "backend = 127.0.0.1:%d" % b_many.port]
    for ln in range(N_LINES):
        lines.append("names = " + " ".join(name(ln * PER_LINE + i) for i in range(PER_LINE)))
        if ln == N_LINES // 2:
            lines.append("idle_timeout = 1m")  # other keys between names lines
    check(all(len(l) <= 196 for l in lines), "every line is within the 196-byte limit")
    check(sum(len(l) for l in lines if l.startswith("names =")) > 196 * 10,
          "the names would not fit on one line (%d bytes)"
          % sum(len(l) for l in lines if l.startswith("names =")))
    many_ini = os.path.join(d, "hosts.d", "many.ini")
    with open(many_ini, "w") as f:
        f.write("\n".join(lines) + "\n")

    r = tf.check_config()
    check(r.returncode == 0 and r.stdout.strip() == "configuration OK",
          "-t accepts 300 names on 30 lines (rc %d: %s)" % (r.returncode, r.stderr))
    tf.start()

    vctx = client_context(verify_ca=ca.crt)
    last = N_LINES * PER_LINE - 1
    for i in (0, 155, last):
        check(served_cert_cn(tf.port, name(i)) == "CN = many",
              "%s (names line %d) gets the host's certificate" % (name(i), i // PER_LINE + 1))
        body = http_get(tf.port, name(i), "/n%d" % i, vctx)
        check(body == b"backend many /n%d\n" % i,
              "%s reaches the host's backend, verified (%r)" % (name(i), body))
    check(http_get(tf.port, "other.test", "/o", vctx) == b"backend other /o\n",
          "the other host is still served by its own name")
    # no default host: a name the host does not list is refused, so the names
    # above were found in its table, not taken by a fallback
    rc, out = s_client(tf.port, name(last + 1), ["-brief"], b"")
    check(rc != 0 and "Peer certificate" not in out,
          "%s, covered by the certificate but not listed, is refused" % name(last + 1))
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")

    # a name repeated on a later names line
    main_ini = os.path.join(d, "bad", "tlsfront.ini")
    os.makedirs(os.path.dirname(main_ini))
    bad = ["[global]", "listen = 127.0.0.1:%d" % free_port(), "hosts = none/*.ini",
           "[host dup]", "cert = %s" % many[0], "key = %s" % many[1],
           "backend = 127.0.0.1:9", "names = a.many.test b.many.test",
           "names = c.many.test", "names = B.Many.Test."]
    with open(main_ini, "w") as f:
        f.write("\n".join(bad) + "\n")
    r = subprocess.run([TLSFRONT, "-t", "-c", main_ini], capture_output=True, text=True,
                       timeout=60)
    want = "%s:10: names: 'b.many.test' is listed twice (first at line 8)" % main_ini
    check(r.returncode == 1 and want in r.stderr.splitlines(),
          "a name repeated on another names line is an error there: %r" % r.stderr)


run(main)
