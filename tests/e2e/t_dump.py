"""tlsfront -T: checks as -t does, then prints the effective configuration on
stdout: [global], then each host with its names, backends (backend.PROTO
included), ALPN, client-certificate policy, the values it inherits from
[defaults] and the built-in defaults, and its certificate's subject, issuer
and notAfter (compared with `openssl x509`). On a broken configuration it
exits 1 and prints what -t prints, and no configuration. At start, the main
process logs one summary line per host."""
import datetime
import os
import re
import subprocess

from tf_peers import HttpBackend
from tf_pki import CA, openssl
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, run, tmpdir


def tf_run(*args):
    return subprocess.run([TLSFRONT] + list(args), capture_output=True, text=True,
                          timeout=120)


def parse_dump(text):
    """{section: {"keys": {key: [values]}, "facts": [comment lines]}}"""
    sections, cur = {}, None
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            cur = sections.setdefault(line[1:-1], {"keys": {}, "facts": []})
        elif line.startswith("#"):
            if cur is not None:
                cur["facts"].append(line[1:].strip())
        elif line.strip():
            k, sep, v = line.partition(" = ")
            if cur is None or not sep:
                raise AssertionError("not a 'key = value' line in a section: %r" % line)
            cur["keys"].setdefault(k, []).append(v)
    return sections


def enddate(pem):
    """The certificate's notAfter as `openssl x509 -enddate` prints it, as a datetime."""
    out = openssl("x509", "-in", pem, "-noout", "-enddate").strip()
    return datetime.datetime.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")


def subject(pem, what="-subject"):
    out = openssl("x509", "-in", pem, "-noout", what, "-nameopt", "RFC2253").strip()
    return out.split("=", 1)[1]


def main():
    d = tmpdir()
    ca = CA(d, "Server CA")
    shop = ca.host_cert("shop", ["shop.test", "www.shop.test"], cn="shop.test")
    vault = ca.host_cert("vault", ["vault.test", "api.vault.test"], cn="vault.test", days=20)
    cdir = os.path.join(d, "clients")
    os.makedirs(cdir)
    client_ca = CA(cdir, "Client CA")
    web, h2 = HttpBackend("web"), HttpBackend("h2")

    tf = Tlsfront(d, {
        "shop": {"cert": shop[0], "key": shop[1],
                 "backend": "127.0.0.1:%d" % web.port,
                 "alpn": "h2 http/1.1",
                 "backend.h2": "127.0.0.1:%d" % h2.port,
                 "proxy_protocol": "v1"},
        "vault": {"cert": vault[0], "key": vault[1],
                  "backend": "127.0.0.1:%d" % web.port,
                  "client_verify": "required", "client_ca": client_ca.crt,
                  "client_allow": "dns:ops.client.test cn:admin",
                  "connect_timeout": "1500ms"},
    }, defaults={"idle_timeout": "90s"}, start=False)
    # shop's names on two lines (the key may repeat)
    shop_ini = os.path.join(d, "hosts.d", "shop.ini")
    with open(shop_ini) as f:
        text = f.read()
    with open(shop_ini, "w") as f:
        f.write(text + "names = shop.test\nnames = WWW.Shop.Test.\n")

    r = tf_run("-T", "-c", tf.main)
    check(r.returncode == 0, "-T on a good configuration exits 0 (got %d: %s)"
          % (r.returncode, r.stderr))
    check("configuration OK" in r.stderr and "configuration OK" not in r.stdout,
          "-T says 'configuration OK' on stderr; stdout is the configuration alone")
    dump = parse_dump(r.stdout)
    check(set(dump) == {"global", "host shop", "host vault"},
          "the dump has [global] and one section per host: %r" % sorted(dump))

    g = dump["global"]["keys"]
    check(g.get("listen") == ["127.0.0.1:%d" % tf.port] and g.get("workers") == ["1"],
          "[global]: listen and workers as configured: %r" % g)
    check(g.get("ticket_key_rotation") == ["12h"] and g.get("host_errors") == ["fail"],
          "[global]: built-in defaults are filled in (ticket_key_rotation, host_errors)")
    check("stats_listen (not set)" in dump["global"]["facts"],
          "[global]: a key without a value is a comment: %r" % dump["global"]["facts"])

    s = dump["host shop"]["keys"]
    check(s.get("names") == ["shop.test www.shop.test"],
          "shop: the names of its two names lines, normalised: %r" % s.get("names"))
    check(s.get("backend") == ["127.0.0.1:%d" % web.port] and
          s.get("backend.h2") == ["127.0.0.1:%d" % h2.port],
          "shop: backend and backend.h2: %r %r" % (s.get("backend"), s.get("backend.h2")))
    check(s.get("alpn") == ["h2 http/1.1"], "shop: alpn in server order: %r" % s.get("alpn"))
    check(s.get("client_verify") == ["none"] and s.get("proxy_protocol") == ["v1"],
          "shop: client_verify = none, proxy_protocol = v1")
    check(s.get("listen") == ["127.0.0.1:%d" % tf.port],
          "shop: listens where [global] does: %r" % s.get("listen"))
    check(s.get("cert") == [shop[0]] and s.get("key") == [shop[1]],
          "shop: cert and key paths")

    v = dump["host vault"]["keys"]
    check(v.get("client_verify") == ["required"] and v.get("client_ca") == [client_ca.crt] and
          v.get("client_allow") == ["dns:ops.client.test cn:admin"],
          "vault: client_verify, client_ca and client_allow: %r %r %r"
          % (v.get("client_verify"), v.get("client_ca"), v.get("client_allow")))
    check(v.get("names") == ["vault.test api.vault.test"] and
          "names: the certificate's" in dump["host vault"]["facts"],
          "vault: without names, the certificate's are shown and said to be: %r"
          % v.get("names"))
    check("alpn (not set)" in dump["host vault"]["facts"] and "alpn" not in v,
          "vault: no ALPN")
    check(v.get("connect_timeout") == ["1500ms"], "vault: its own connect_timeout")
    for label, keys in (("shop", s), ("vault", v)):
        check(keys.get("idle_timeout") == ["90s"],
              "%s: idle_timeout from [defaults]: %r" % (label, keys.get("idle_timeout")))
        check(keys.get("handshake_timeout") == ["10s"] and
              keys.get("protocols") == ["TLSv1.2 TLSv1.3"] and
              keys.get("session_cache_size") == ["1024"],
              "%s: built-in defaults filled in (handshake_timeout, protocols, "
              "session_cache_size)" % label)

    for label, pem in (("shop", shop[0]), ("vault", vault[0])):
        facts = dump["host " + label]["facts"]
        want_subject = "certificate subject: " + subject(pem)
        check(want_subject in facts, "%s: %s (as openssl x509 -subject -nameopt RFC2253)"
              % (label, want_subject))
        want_issuer = "certificate issuer: " + subject(pem, "-issuer")
        check(want_issuer in facts, "%s: %s" % (label, want_issuer))
        na = [f for f in facts if f.startswith("certificate not_after: ")]
        want = enddate(pem).strftime("%Y-%m-%dT%H:%M:%SZ")
        check(na == ["certificate not_after: " + want],
              "%s: not_after %s, the certificate's notAfter per openssl x509 -enddate: %r"
              % (label, want, na))
        defined = [f for f in facts if f.startswith("defined at ")]
        check(defined == ["defined at %s:1" % os.path.join(d, "hosts.d", label + ".ini")],
              "%s: where it is defined: %r" % (label, defined))
    check(all(len(l) <= 196 for l in r.stdout.splitlines() if not l.startswith("#")),
          "no setting line is longer than the configuration allows")

    # -h tells about -T
    h = tf_run("-h")
    check(h.returncode == 0 and re.search(r"^\s+-T\s", h.stdout, re.M),
          "-h describes -T: %r" % h.stdout)

    # a broken configuration: what -t says, exit 1, no dump
    with open(shop_ini, "a") as f:
        f.write("bakend = 127.0.0.1:1\nidle_timeout = soon\n")
    bad_t, bad_T = tf_run("-t", "-c", tf.main), tf_run("-T", "-c", tf.main)
    n_lines = len(open(shop_ini).read().splitlines())
    want = ["%s:%d: unknown key 'bakend' (did you mean 'backend'?)" % (shop_ini, n_lines - 1),
            "%s:%d: idle_timeout: bad duration 'soon'" % (shop_ini, n_lines)]
    check(bad_T.returncode == 1 and bad_t.returncode == 1,
          "-T on a broken configuration exits 1, as -t (%d, %d)"
          % (bad_T.returncode, bad_t.returncode))
    check(all(any(l.startswith(w) for l in bad_T.stderr.splitlines()) for w in want),
          "-T reports the errors as FILE:LINE: message: %r" % bad_T.stderr)
    check(bad_T.stderr == bad_t.stderr, "-T prints exactly what -t prints on stderr")
    check(bad_T.stdout == "", "-T prints no configuration when it has errors: %r"
          % bad_T.stdout[:200])
    with open(shop_ini, "w") as f:
        f.write(text + "names = shop.test\nnames = WWW.Shop.Test.\n")

    # the start: one summary line per host, logged by the main process
    tf.start()
    summaries = re.findall(r"tlsfront\[%d\] main info: (host \S+: .*)" % tf.proc.pid, tf.log())
    check(len(summaries) == 2, "one summary line per host at start: %r" % summaries)
    by = {l.split(":")[0][len("host "):]: l for l in summaries}
    shop_day = enddate(shop[0]).strftime("%Y-%m-%d")
    vault_day = enddate(vault[0]).strftime("%Y-%m-%d")
    check(by.get("shop") == "host shop: names=shop.test,www.shop.test listen=127.0.0.1:%d "
          "backend=127.0.0.1:%d backend.h2=127.0.0.1:%d alpn=h2,http/1.1 client_verify=none "
          "cert=\"%s\" expires=%s" % (tf.port, web.port, h2.port, subject(shop[0]), shop_day),
          "shop's summary: %r" % by.get("shop"))
    check(by.get("vault") == "host vault: names=vault.test,api.vault.test "
          "listen=127.0.0.1:%d backend=127.0.0.1:%d alpn=- client_verify=required "
          "cert=\"%s\" expires=%s" % (tf.port, web.port, subject(vault[0]), vault_day),
          "vault's summary: %r" % by.get("vault"))
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
