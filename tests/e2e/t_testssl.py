"""testssl.sh (Debian's 3.0.8) against tlsfront started from the shipped
example configuration: etc/tlsfront.ini and etc/hosts.d/example.ini.sample,
changed only where they must be (listen address, hosts glob, certificate,
key, backends, and `default = yes` uncommented: testssl checks secure
renegotiation and the no-SNI certificate without SNI). Two hosts made from
the sample: `example` (ECDSA P-256, on [global] listen) and `example-rsa`
(RSA 2048, on its own `listen`), both certificates issued by a test CA that
testssl is given with --add-ca, valid 90 days and with a CRL URL, so that
testssl's certificate findings are about a sound certificate and any
finding left is about tlsfront.

For each host, from testssl's JSON:
- SSLv2, SSLv3, TLS 1.0 and TLS 1.1 are not offered; TLS 1.2 and 1.3 are;
- the offered ciphers, per protocol, are exactly Mozilla's intermediate
  profile (guidelines 6.0) for the key type, which is also tlsfront's built-in default
  (read from src/config.c; the test checks they agree);
- the offered ECDHE groups are the default groups that testssl can probe
  (X25519MLKEM768 is unknown to testssl 3.0.8, and to Debian 12's OpenSSL);
- secure renegotiation supported, client-initiated renegotiation refused,
  no TLS compression (CRIME);
- every finding is rated OK or INFO: none LOW, MEDIUM, HIGH or CRITICAL (a
  clean run has none; stricter than "no HIGH"), none WARN (a check that
  could not run hides its result) or FATAL; and every vulnerability check
  ran, rated OK or INFO, and none says VULNERABLE: heartbleed, CCS,
  ticketbleed, ROBOT, secure renegotiation, CRIME, BREACH, POODLE,
  TLS_FALLBACK_SCSV, SWEET32, FREAK, DROWN, LOGJAM, BEAST, LUCKY13, RC4.

Two exceptions, each an exact (id, finding) pair (ALLOWED):
- testssl rates "NOT a cipher order configured" (cipher_order) HIGH.
  tlsfront deliberately lets the client pick among its suites, all of them
  strong (Mozilla guidelines 6.0, intermediate: "server_preferred_order":
  false; see secure_options in src/tls.c).
- sessionresumption_ticket "check failed because of connect problem" (WARN)
  is a race inside testssl on a busy machine (see ALLOWED); session tickets
  themselves are tested by t_tickets.py.

BREACH is HTTP response compression, a property of the backend, not of
tlsfront, which never touches HTTP: testssl sends its HTTP request through
tlsfront to the test backend, which never compresses, so BREACH passing here
only shows the request is relayed. It is kept in the list so that the check
is known to have run.

testssl runs offline: --ip 127.0.0.1 (no resolving of the host name),
--nodns none (no other DNS lookups), NXCONNECT=127.0.0.1:0 (no lookups of
"invalid." while it probes its own openssl), no --phone-out (no CRL/OCSP
fetches); checked with strace: every connect() is to 127.0.0.1 or a local
UNIX socket (nscd). No client simulation (-c, slow), no HTTP header checks
(-h: the backend's business). The two scans run at the same time."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import Fail, SRCDIR, VALGRIND, check, cleanup, free_port, program, run, tmpdir

# Mozilla Server Side TLS, "intermediate" (guidelines 6.0,
# https://ssl-config.mozilla.org/guidelines/6.0.json).
MOZILLA_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}
MOZILLA_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                 "TLS_CHACHA20_POLY1305_SHA256"}
MOZILLA_GROUPS = ["X25519MLKEM768", "X25519", "prime256v1", "secp384r1"]
# Groups testssl 3.0.8 cannot probe (it does not know them).
TESTSSL_UNKNOWN_GROUPS = {"X25519MLKEM768"}

VULN_IDS = ["heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego",
            "secure_client_renego", "CRIME_TLS", "BREACH", "POODLE_SSL", "fallback_SCSV",
            "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4"]
# (id, exact finding) that may be rated HIGH or WARN, and why
ALLOWED = {
    # tlsfront's intent, and Mozilla's: the client picks among strong suites
    ("cipher_order", "NOT a cipher order configured"),
    # testssl's race, not a finding: its `s_client -tls1_3 -sess_out FILE
    # </dev/null` hangs up as soon as its handshake is done; the TLS 1.3
    # tickets come one round trip later, so on a busy machine the file often
    # stays empty, and the resuming s_client fails. (Measured on a loaded
    # 2-core machine: 31% of such runs against `openssl s_server` too.)
    ("sessionresumption_ticket", "check failed because of connect problem"),
}

# A hang guard, not a speed limit: the two scans take about 110 s on a busy
# 2-core machine (openssl's own processes are most of it), somewhat more with
# tlsfront under valgrind; 150 s was seen to be too little there.
TESTSSL_TIMEOUT = 600 if VALGRIND else 400  # seconds, for both scans (run at once)


def config_default(key):
    """The built-in default of a host key, from the key table in src/config.c
    (adjacent C string literals joined)."""
    with open(os.path.join(SRCDIR, "src", "config.c")) as f:
        src = f.read()
    m = re.search(r'\[K_%s\]\s*=\s*\{\s*"%s",[^"]*((?:"[^"]*"\s*)+)\}' % (key.upper(), key),
                  src)
    check(m is not None, "the default of '%s' is found in src/config.c" % key)
    return "".join(re.findall(r'"([^"]*)"', m.group(1)))


def edit(text, regex, repl, what):
    """Replace the one line of text matching regex (multiline) by repl; fail
    if the example changed so that it is not there exactly once."""
    new, n = re.subn(regex, repl, text, flags=re.M)
    if n != 1:
        raise Fail("example config: %s: /%s/ matched %d lines, not 1" % (what, regex, n))
    return new


def make_certs(d):
    """A CA and two leaves it issued (EC P-256 and RSA 2048), 90 days, with
    serverAuth and a CRL distribution point (never fetched)."""
    ca = CA(d, "tlsfront test CA", days=365)
    out = {}
    for stem, names, rsa in (("ec", ["example.com", "www.example.com"], False),
                             ("rsa", ["rsa.example.com"], True)):
        out[stem] = ca.issue(stem, names[0], ["DNS:" + n for n in names], days=90, rsa=rsa,
                             eku="serverAuth", extensions=[
                                 "crlDistributionPoints = URI:http://crl.example.invalid/ca.crl"])
    return ca.crt, out


def write_example_config(tf, certs, backend_port, rsa_port):
    """tf's tlsfront.ini and hosts.d/ from etc/: the example, adapted."""
    with open(os.path.join(SRCDIR, "etc", "tlsfront.ini")) as f:
        main = f.read()
    main = edit(main, r"^listen = .*$", "listen = 127.0.0.1:%d" % tf.port, "global listen")
    main = edit(main, r"^hosts = .*$", "hosts = hosts.d/*.ini", "hosts glob")
    with open(tf.main, "w") as f:
        f.write(main)
    with open(os.path.join(SRCDIR, "etc", "hosts.d", "example.ini.sample")) as f:
        sample = f.read()
    backend = "127.0.0.1:%d" % backend_port

    def host(cert, key):
        t = edit(sample, r"^cert = .*$", "cert = " + cert, "cert")
        t = edit(t, r"^key = .*$", "key = " + key, "key")
        t = edit(t, r"^backend = .*$", "backend = " + backend, "backend")
        t = edit(t, r"^backend\.h2 = .*$", "backend.h2 = " + backend, "backend.h2")
        return edit(t, r"^;default = yes$", "default = yes", "default")

    ec = host(*certs["ec"])
    rsa = host(*certs["rsa"])
    rsa = edit(rsa, r"^\[host example\]$", "[host example-rsa]", "label")
    rsa = edit(rsa, r"^names = .*$", "names = rsa.example.com", "names")
    rsa = edit(rsa, r"^;listen = .*$", "listen = 127.0.0.1:%d" % rsa_port, "host listen")
    for name, text in (("example.ini", ec), ("example-rsa.ini", rsa)):
        with open(os.path.join(tf.d, "hosts.d", name), "w") as f:
            f.write(text)


def start_testssl(exe, d, name, port, ca):
    jpath = os.path.join(d, name + ".json")
    args = [exe, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
            "--ip", "127.0.0.1", "--add-ca", ca, "--connect-timeout", "10",
            "--openssl-timeout", "30", "--jsonfile-pretty", jpath,
            "-p", "-s", "-E", "-f", "-P", "-S", "-U", "%s:%d" % (name, port)]
    logf = open(os.path.join(d, name + ".txt"), "wb")
    # At start, testssl probes its own openssl's curves with `s_client -curves
    # C -connect invalid.`: ~30 DNS queries for "invalid." to the system's
    # resolver (seen with strace), slow where that resolver is unreachable.
    # NXCONNECT (testssl's own WSL workaround) makes them fail on 127.0.0.1:0.
    env = dict(os.environ, NXCONNECT="127.0.0.1:0")
    p = subprocess.Popen(args, cwd=d, stdout=logf, stderr=subprocess.STDOUT, env=env,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    # testssl is a bash script with many children: end its whole group
    cleanup(lambda: p.poll() is None and (os.killpg(p.pid, signal.SIGKILL), p.wait()))
    return p, jpath, logf


def findings(jpath):
    """{section: [finding dicts]} of the one scan in testssl's pretty JSON."""
    with open(jpath) as f:
        doc = json.load(f)
    scans = doc.get("scanResult", [])
    check(len(scans) == 1, "%s: testssl's JSON holds one scan result" % os.path.basename(jpath))
    return {k: v for k, v in scans[0].items() if isinstance(v, list)}


def show(entries):
    return "\n".join("    " + json.dumps(e) for e in entries)


def expect(cond, msg, entries=()):
    """check(cond, msg), printing the JSON entries behind it if it fails."""
    check(cond, msg + (":\n" + show(entries) if entries and not cond else ""))


def assert_scan(host, jpath, keytype, expect12, expect13, expect_groups):
    sec = findings(jpath)
    every = [e for v in sec.values() for e in v]
    by_id = {}
    for e in every:
        by_id.setdefault(e["id"], []).append(e)

    def one(i):
        es = by_id.get(i, [])
        expect(len(es) == 1, "%s: testssl reported %s once" % (host, i), es)
        return es[0]

    # protocols
    for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        e = one(p)
        expect(e["finding"] == "not offered", "%s: %s not offered" % (host, p), [e])
    for p in ("TLS1_2", "TLS1_3"):
        e = one(p)
        expect(e["finding"].startswith("offered"), "%s: %s offered" % (host, p), [e])

    # ciphers, per protocol (-E: ids cipher-tls1_2_xNNNN, findings
    # "TLS 1.2  xNNNN OPENSSL-NAME kx ...")
    offered, entries = {}, []
    for e in every:
        m = re.match(r"cipher-(\w+)_x[0-9a-f]+$", e["id"])
        if m:
            name = re.search(r"\bx[0-9a-f]+\s+(\S+)", e["finding"])
            offered.setdefault(m.group(1), set()).add(name.group(1) if name else e["finding"])
            entries.append(e)
    got12, got13 = offered.pop("tls1_2", set()), offered.pop("tls1_3", set())
    expect(not offered, "%s: no cipher offered with another protocol" % host, entries)
    expect(got12 == expect12, "%s (%s): TLS 1.2 ciphers are exactly the intended %d: "
           "extra %s, missing %s" % (host, keytype, len(expect12), sorted(got12 - expect12),
                                     sorted(expect12 - got12)), entries)
    expect(got13 == expect13, "%s: TLS 1.3 suites are exactly the intended %d: extra %s, "
           "missing %s" % (host, len(expect13), sorted(got13 - expect13),
                           sorted(expect13 - got13)), entries)

    # groups
    e = one("PFS_ECDHE_curves")
    expect(set(e["finding"].split()) == expect_groups, "%s: the ECDHE groups offered are "
           "exactly %s" % (host, " ".join(sorted(expect_groups))), [e])
    expect("DH_groups" not in by_id, "%s: no finite-field DH group offered" % host,
           by_id.get("DH_groups", []))

    # renegotiation and compression
    e = one("secure_renego")
    expect(e["severity"] == "OK" and e["finding"] == "supported",
           "%s: secure renegotiation (RFC 5746) supported" % host, [e])
    e = one("secure_client_renego")
    expect(e["severity"] == "OK" and e["finding"] == "not vulnerable",
           "%s: client-initiated renegotiation refused" % host, [e])
    e = one("CRIME_TLS")
    expect(e["severity"] == "OK" and e["finding"] == "not vulnerable",
           "%s: no TLS compression (CRIME)" % host, [e])

    # every vulnerability check ran and none says VULNERABLE
    bad = []
    for i in VULN_IDS:
        es = by_id.get(i, [])
        if len(es) != 1 or es[0]["severity"] not in ("OK", "INFO") or \
                "VULNERABLE" in es[0]["finding"]:
            bad += es or [{"id": i, "finding": "(missing)"}]
    bad += [e for e in sec.get("vulnerabilities", []) if "VULNERABLE" in e["finding"]
            and e not in bad]
    expect(not bad, "%s: the %d vulnerability checks ran, all OK, none VULNERABLE"
           % (host, len(VULN_IDS)), bad)

    # severities
    allowed = [e for e in every if (e["id"], e["finding"]) in ALLOWED]
    severe = [e for e in every if e["severity"] not in ("OK", "INFO")
              and (e["id"], e["finding"]) not in ALLOWED]
    expect(not severe, "%s: all %d findings are OK or INFO: none LOW, MEDIUM, HIGH, "
           "CRITICAL, WARN or FATAL (allowed: %s)" % (host, len(every), ", ".join(
               "%s %s" % (e["id"], e["severity"]) for e in allowed) or "none"), severe)


def main():
    exe = shutil.which("testssl.sh") or program("testssl", "testssl.sh")
    d = tmpdir()

    tls12 = set(config_default("ciphers").split(":"))
    tls13 = set(config_default("ciphersuites").split(":"))
    groups = config_default("groups").split(":")
    check(tls12 == MOZILLA_TLS12 and tls13 == MOZILLA_TLS13 and groups == MOZILLA_GROUPS,
          "tlsfront's default ciphers, ciphersuites and groups are Mozilla intermediate's")

    ca, certs = make_certs(d)
    backend = HttpBackend("testssl")
    rsa_port = free_port()
    tf = Tlsfront(os.path.join(d, "tf"), {}, start=False)
    write_example_config(tf, certs, backend.port, rsa_port)
    r = tf.check_config()
    check(r.returncode == 0, "the adapted example configuration passes -t: %s"
          % (r.stdout + r.stderr).strip())
    tf.start()
    tf.wait_log(r"listening on 127\.0\.0\.1:%d" % rsa_port, what="the RSA host's listener")

    t0 = time.monotonic()
    scans = [("example.com", tf.port, "ECDSA"), ("rsa.example.com", rsa_port, "RSA")]
    procs = [start_testssl(exe, d, name, port, ca) for name, port, _ in scans]
    for p, _, logf in procs:
        try:
            p.wait(timeout=max(1, TESTSSL_TIMEOUT - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            for q, _, _ in procs:
                if q.poll() is None:
                    os.killpg(q.pid, signal.SIGKILL)
                    q.wait()
            check(False, "testssl finished within %ds" % TESTSSL_TIMEOUT)
        finally:
            logf.close()
    print("# testssl scans took %.0fs" % (time.monotonic() - t0))
    for (name, _, _), (p, jpath, _) in zip(scans, procs):
        check(p.returncode is not None and os.path.exists(jpath),
              "testssl %s wrote its JSON (exit %s)" % (name, p.returncode))

    want_groups = set(groups) - TESTSSL_UNKNOWN_GROUPS
    for (name, _, keytype), (_, jpath, _) in zip(scans, procs):
        kx = "ECDHE-ECDSA-" if keytype == "ECDSA" else "ECDHE-RSA-"
        assert_scan(name, jpath, keytype, {c for c in tls12 if c.startswith(kx)}, tls13,
                    want_groups)
    check(tf.proc.poll() is None, "tlsfront is still running after the scans")


run(main)
