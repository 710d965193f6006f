"""keylog_file and ocsp_file.

One tlsfront with two workers and three hosts on one port: klog (keylog_file),
plain (neither key) and ocsp (ocsp_file).

keylog_file: Python clients with keylog_filename set (the format Wireshark
reads) make TLS 1.3 and TLS 1.2 connections to klog from several threads at
once: the server's file holds exactly the client's lines (same labels, client
randoms and secrets), every line whole; connections to plain (and the s_client
runs of the OCSP part) write nothing there; both workers served klog and both
hold the one shared descriptor; the file was created with mode 0600; the loud
warning is logged at start and on each reload, and `tlsfront -t` prints it at
the key's FILE:LINE.

ocsp_file: a real OCSP response made at test time with `openssl ocsp` (an
`openssl ca` index): `openssl s_client -status` shows "successful" / "good" for
ocsp (TLS 1.3 and 1.2) and "no response sent" for plain on the same port.
`tlsfront -t` reports at FILE:LINE a response for another certificate, a file
that is no OCSP response, one signed by another CA, and an unwritable
keylog_file. After the file is replaced by a "revoked" response and SIGHUP,
s_client shows the new status (and the reload warns). With Python's
cryptography module (Debian: python3-cryptography): a response whose CertID
uses SHA-256 is stapled too, and an expired one is a warning and, after a
reload, no longer stapled. As root: with user = nobody, the key log that
root created is given to nobody, so that a reload reopens it."""
import datetime
import os
import re
import shutil
import signal
import ssl
import threading

from tf_clients import client_context, http_get, s_client
from tf_peers import HttpBackend
from tf_pki import CA, openssl
from tf_proc import Tlsfront
from tf_run import check, check_eventually, missing, run, skip_part, tmpdir, wait_for

KEYLOG_LINE = re.compile(r"^[A-Z0-9_]+ [0-9a-f]{64} [0-9a-f]{32,}$")
TLS13_LABELS = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"}
WARN = ("%s:%d: warning: host '%s': keylog_file is set: TLS secrets of its connections are "
        "written to %s; anyone who can read it can decrypt them")


def keylog_lines(path):
    """The key lines of an NSS key log file (without Python's '#' header)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l for l in f.read().splitlines() if l and not l.startswith("#")]


def line_of(path, key):
    with open(path) as f:
        for n, l in enumerate(f, 1):
            if l.split("=")[0].strip() == key:
                return n
    raise AssertionError("%s not in %s" % (key, path))


def ocsp_response(ca, crt, out, signer=None):
    """A DER OCSP response from ca's index for certificate crt, signed by
    signer (default: ca itself), valid two days."""
    req = out + ".req"
    openssl("ocsp", "-issuer", ca.crt, "-cert", crt, "-reqout", req)
    s = signer or ca
    openssl("ocsp", "-index", os.path.join(ca.dir, "index.txt"), "-rsigner", s.crt,
            "-rkey", s.key, "-CA", ca.crt, "-reqin", req, "-respout", out, "-ndays", "2")
    return out


def staple(port, sni, extra=()):
    """What s_client -status says about the stapled response."""
    rc, out = s_client(port, sni, ["-status"] + list(extra))
    return out


def cryptography_response(ca, crt, out, hash_name, this_update, next_update):
    """A response made with Python's cryptography (for what `openssl ocsp`
    cannot make: SHA-256 CertIDs, dates in the past). None if the module is
    missing."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp
    except ImportError:
        return None
    with open(crt, "rb") as f:
        leaf = x509.load_pem_x509_certificate(f.read())
    with open(ca.crt, "rb") as f:
        issuer = x509.load_pem_x509_certificate(f.read())
    with open(ca.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf, issuer=issuer, algorithm=getattr(hashes, hash_name)(),
        cert_status=ocsp.OCSPCertStatus.GOOD, this_update=this_update,
        next_update=next_update, revocation_time=None, revocation_reason=None)
    b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer).certificates([issuer])
    with open(out, "wb") as f:
        f.write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    return out


def keylog_case(tf, d, keylog):
    pids = wait_for(lambda: len(tf.workers()) == 2 and tf.workers(), what="two workers")
    client_klog = os.path.join(d, "client-klog.log")
    client_plain = os.path.join(d, "client-plain.log")
    versions = {"1.3": ssl.TLSVersion.TLSv1_3, "1.2": ssl.TLSVersion.TLSv1_2}
    errors = []

    def client(sni, path, v):
        ctx = client_context(minv=versions[v], maxv=versions[v])
        ctx.keylog_filename = path
        return ctx

    def worker(t):
        try:
            for i in range(8):
                v = "1.3" if (t + i) % 2 == 0 else "1.2"
                body = http_get(tf.port, "klog.test", "/k%d-%d" % (t, i),
                                client("klog.test", client_klog, v))
                if body != b"backend be /k%d-%d\n" % (t, i):
                    errors.append("klog %d/%d: %r" % (t, i, body))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "64 connections to klog from 8 threads, TLS 1.3 and 1.2, served "
          "(%s)" % errors[:3])
    for i in range(6):
        v = "1.3" if i % 2 == 0 else "1.2"
        body = http_get(tf.port, "plain.test", "/p%d" % i, client("plain.test", client_plain, v))
        check(body == b"backend be /p%d\n" % i, "connection %d to plain (TLS %s) served" % (i, v))
    tf.wait_access(70)

    server = keylog_lines(keylog)
    with open(keylog, "rb") as f:
        raw = f.read()
    check(raw.endswith(b"\n") and all(KEYLOG_LINE.match(l) for l in server),
          "every line of the server's key log is whole (%d lines, none torn)" % len(server))
    theirs = keylog_lines(client_klog)
    check(set(server) == set(theirs) and len(server) == len(theirs),
          "the server's key log holds exactly the client's lines (%d lines)" % len(theirs))
    labels = {l.split()[0] for l in server}
    check(TLS13_LABELS <= labels, "TLS 1.3 secrets are logged (%s)" % sorted(labels))
    check("CLIENT_RANDOM" in labels, "the TLS 1.2 master secret is logged (CLIENT_RANDOM)")
    randoms = {l.split()[1] for l in server}
    check(len(randoms) == 64, "one client random per connection to klog (%d)" % len(randoms))
    plain_randoms = {l.split()[1] for l in keylog_lines(client_plain)}
    check(len(plain_randoms) == 6 and not plain_randoms & randoms,
          "the 6 connections to plain (no keylog_file) wrote nothing there")

    klog_pids = {int(m) for m in re.findall(r"tlsfront\[(\d+)\] worker \d info: access "
                                            r".*host=klog ", tf.log())}
    check(klog_pids == set(pids), "both workers served klog (%r of %r): their lines are "
          "all there" % (klog_pids, pids))
    shared = [p for p in pids if any(os.path.realpath("/proc/%d/fd/%s" % (p, fd)) == keylog
                                     for fd in os.listdir("/proc/%d/fd" % p))]
    check(shared == pids, "each worker holds the key log open (inherited, O_APPEND)")
    check(os.stat(keylog).st_mode & 0o777 == 0o600, "the key log was created with mode 0600")
    return len(server)


def ocsp_case(tf, d, ca, oc_crt, live):
    for v, extra in (("1.3", []), ("1.2", ["-tls1_2"])):
        out = staple(tf.port, "ocsp.test", extra)
        check("OCSP Response Status: successful" in out and "Cert Status: good" in out,
              "TLS %s: s_client -status gets the stapled response for ocsp: successful, "
              "good" % v)
        out = staple(tf.port, "plain.test", extra)
        check("OCSP response: no response sent" in out and "Cert Status" not in out,
              "TLS %s: plain (no ocsp_file), same port: no response sent" % v)
    out = s_client(tf.port, "ocsp.test")[1]
    check("OCSP response" not in out, "a client that does not ask gets no response")

    # revoked: replace the file, reload, and the new status is stapled
    ca.revoke(oc_crt)
    revoked = ocsp_response(ca, oc_crt, os.path.join(d, "revoked.der"))
    shutil.copy(revoked, live + ".new")
    os.replace(live + ".new", live)
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 1, what="the reload with the revoked response")
    check_eventually(lambda: "Cert Status: revoked" in staple(tf.port, "ocsp.test"),
                     "after SIGHUP, s_client shows the new response: Cert Status: revoked")
    check(re.search(r"ocsp\.ini:\d+: warning: host 'ocsp': CERTIFICATE REVOKED: the OCSP "
                    r"response in %s says its certificate was revoked" % re.escape(live),
                    tf.log()), "the reload warns that the certificate is revoked")


def crypto_case(tf, d, ca, oc_crt, live):
    """Needs python3-cryptography. Without it: a failure, or with
    TLSFRONT_ALLOW_MISSING_PEERS=1 a skipped part (returns False)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    sha256 = cryptography_response(ca, oc_crt, os.path.join(d, "sha256.der"), "SHA256",
                                   now - datetime.timedelta(hours=1),
                                   now + datetime.timedelta(days=1))
    if sha256 is None:
        missing("Python's cryptography module (Debian package python3-cryptography)",
                part="the SHA-256 CertID and expired response cases")
        return False

    def reload_with(src, what):
        shutil.copy(src, live + ".new")
        os.replace(live + ".new", live)
        n = len(re.findall(r"reloaded: ", tf.log()))
        tf.proc.send_signal(signal.SIGHUP)
        tf.wait_log(r"reloaded: ", count=n + 1, what=what)

    reload_with(sha256, "the reload with a SHA-256 CertID response")
    check_eventually(lambda: "Cert Status: good" in staple(tf.port, "ocsp.test"),
                     "a response whose CertID uses SHA-256 is matched and stapled")
    expired = cryptography_response(ca, oc_crt, os.path.join(d, "expired.der"), "SHA1",
                                    now - datetime.timedelta(days=3),
                                    now - datetime.timedelta(days=1))
    r = Tlsfront(os.path.join(d, "chk-expired"), {"ocsp": dict(
        tf_hosts["ocsp"], ocsp_file=expired)}, start=False).check_config()
    check(r.returncode == 0 and re.search(r"ocsp\.ini:\d+: warning: host 'ocsp': the OCSP "
                                          r"response in %s expired on .*\(nextUpdate\); it is "
                                          r"not stapled" % re.escape(expired), r.stderr),
          "-t: an expired response is a warning, not an error:\n" + r.stderr)
    reload_with(expired, "the reload with an expired response")
    check_eventually(lambda: "OCSP response: no response sent" in staple(tf.port, "ocsp.test"),
                     "after a reload with an expired response, none is stapled")
    return True


def check_case(d, ca, other_ca, hosts, stranger_crt, oc_crt):
    """tlsfront -t: every bad ocsp_file and keylog_file at its FILE:LINE, in one run."""
    c = os.path.join(d, "chk")
    stranger = ocsp_response(ca, stranger_crt, os.path.join(d, "stranger.der"))
    garbage = os.path.join(d, "garbage.der")
    with open(garbage, "wb") as f:
        f.write(b"\x30\x03\x0a\x01\x00 not OCSP")
    foreign = ocsp_response(ca, oc_crt, os.path.join(d, "foreign.der"), signer=other_ca)
    nowhere = os.path.join(d, "no-such-dir", "keys.log")
    bad = {
        "a": dict(hosts["ocsp"], names="a.test", ocsp_file=stranger),
        "b": dict(hosts["ocsp"], names="b.test", ocsp_file=garbage),
        "c": dict(hosts["ocsp"], names="c.test", ocsp_file=foreign),
        "d": dict(hosts["plain"], names="d.test", keylog_file=nowhere),
    }
    tf = Tlsfront(c, bad, start=False)
    r = tf.check_config()
    out = r.stdout + r.stderr

    def at(label, key):
        f = os.path.join(c, "hosts.d", label + ".ini")
        return "%s:%d: %s: " % (f, line_of(f, key), key)
    check(r.returncode == 1, "-t fails (exit %d)" % r.returncode)
    check(at("a", "ocsp_file") + "%s is not a response for the certificate of %s" %
          (stranger, hosts["ocsp"]["cert"]) in out,
          "-t: a response for another certificate is an error at the ocsp_file line")
    check(at("b", "ocsp_file") + "%s is not a DER OCSP response" % garbage in out,
          "-t: a file that is no OCSP response is an error at its line")
    check(at("c", "ocsp_file") + "%s: the response's signature does not verify" % foreign
          in out, "-t: a response signed by another CA is an error at its line")
    check(at("d", "keylog_file") + "cannot open %s for writing: No such file or directory"
          % nowhere in out, "-t: an unwritable keylog_file is an error at its line")
    check(len(re.findall(r"^\S+:\d+: (?!warning)", out, re.M)) == 4,
          "-t reports these four errors and no other:\n" + out)


def privileged_case(d, klog):
    """Started as root with user = nobody: the key log tlsfront creates is
    given to nobody, so a reload (which runs as nobody) opens it again."""
    if os.geteuid() != 0:
        skip_part("the user = nobody case", "not root")
        return
    import grp
    import pwd
    pd = os.path.join(d, "priv")
    os.makedirs(pd)
    os.chmod(d, 0o755)
    keys = {}
    for k in ("cert", "key"):
        keys[k] = os.path.join(pd, os.path.basename(klog[k]))
        shutil.copy(klog[k], keys[k])
        os.chmod(keys[k], 0o644)
    path = os.path.join(pd, "keys.log")
    keys.update(backend=klog["backend"], keylog_file=path)
    tf = Tlsfront(pd, {"klog": keys}, global_extra={"user": "nobody", "group": "nogroup"})
    tf.wait_log(r"running as user nobody", what="the privilege drop")
    check(http_get(tf.port, "klog.test", "/p1") == b"backend be /p1\n", "served as nobody")
    st = os.stat(path)
    check(st.st_uid == pwd.getpwnam("nobody").pw_uid and
          st.st_gid == grp.getgrnam("nogroup").gr_gid and st.st_mode & 0o777 == 0o600,
          "the key log root created belongs to nobody:nogroup, mode 0600")
    before = len(keylog_lines(path))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: |reload failed", what="the reload as nobody")
    check("reload failed" not in tf.log(), "the reload, as nobody, reopens the key log")
    check_eventually(lambda: http_get(tf.port, "klog.test", "/p2") == b"backend be /p2\n" and
                     len(keylog_lines(path)) > before,
                     "after the reload, new connections are logged")
    check(tf.stop() == 0, "the instance running as nobody stops cleanly")


tf_hosts = {}


def main():
    d = tmpdir()
    ca = CA(d, "OCSP CA")
    other_ca = CA(d, "Other CA")
    be = HttpBackend("be")

    def host_cert(stem, name):
        crt, key = ca.issue(stem, name, ["DNS:" + name])
        pem = os.path.join(d, stem + ".pem")    # leaf, then its issuer
        with open(pem, "w") as f:
            f.write(open(crt).read() + open(ca.crt).read())
        return crt, {"cert": pem, "key": key, "backend": "127.0.0.1:%d" % be.port}

    _, klog = host_cert("klog", "klog.test")
    _, plain = host_cert("plain", "plain.test")
    oc_crt, oc = host_cert("oc", "ocsp.test")
    stranger_crt, _ = host_cert("stranger", "stranger.test")
    keylog = os.path.join(d, "keys.log")
    live = os.path.join(d, "staple.der")
    shutil.copy(ocsp_response(ca, oc_crt, os.path.join(d, "good.der")), live)
    klog["keylog_file"] = keylog
    oc["ocsp_file"] = live
    tf_hosts.update({"klog": klog, "plain": plain, "ocsp": oc})

    top = os.path.join(d, "run")
    tf = Tlsfront(top, tf_hosts, workers=2)
    klog_ini = os.path.join(top, "hosts.d", "klog.ini")
    warn = WARN % (klog_ini, line_of(klog_ini, "keylog_file"), "klog", keylog)
    check(warn in tf.log(), "the start logs the warning at the key's FILE:LINE")
    r = tf.check_config()
    check(r.returncode == 0 and warn in r.stderr and "configuration OK" in r.stdout,
          "tlsfront -t shows the warning too")

    n_lines = keylog_case(tf, d, keylog)
    ocsp_case(tf, d, ca, oc_crt, live)
    check(len(keylog_lines(keylog)) == n_lines,
          "s_client runs to ocsp and plain added nothing to klog's key log")
    check(tf.log().count(warn) >= 2, "the reload logs the keylog warning again")
    crypto_case(tf, d, ca, oc_crt, live)
    check_case(d, ca, other_ca, tf_hosts, stranger_crt, oc_crt)
    check(tf.stop() == 0, "tlsfront stops cleanly")
    privileged_case(d, klog)


if __name__ == "__main__":
    run(main)
