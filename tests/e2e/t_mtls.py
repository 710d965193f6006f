"""Client certificates (mTLS): per-host client_verify none/optional/required,
client_ca, client_crl, client_verify_depth and client_allow.

One tlsfront, one port, one host per policy (plus hosts for chains, CRLs of
several CAs and depth limits), so every connection also proves that the SNI
switch carries that host's verify mode, depth and CA list:

  none     client_verify = none: no certificate is asked for; everything served
  opt      optional + allow-list: no cert is served, an invalid one refused
  req      required (inherited from [defaults]) + allow-list
  reqany   required, no allow-list (an empty list allows every valid cert)
  chain    required, CRLs of several CAs: every certificate of the chain checked
  chaingap required, CRLs of two CAs but not of the leaf's issuer: refused
  deep1/2  required, client_verify_depth 1 / 2

The policy matrix {none, opt, req, reqany} x {no cert, CN / DNS / URI /
EMAIL identity on the allow-list, the same with other letter case, a name of
the wrong kind, a cert off the allow-list, one from another CA, expired, not
yet valid, revoked} runs over TLS 1.3 and 1.2 with Python ssl; the alert the
client gets and the access-log line of each connection (found by its client
port) are checked: client_cn/client_san of the served, the reason of the
refused. openssl s_client and curl run a few cases with real command-line
clients: the alerts by number, the CertificateRequest and the CA names the
server sends, the policy after a HelloRetryRequest. Then the cross-host
resumption attack (TLS 1.2 session ID, TLS 1.2 ticket, TLS 1.3 ticket: a
session of host none offered to host req; s_client's ClientHello is parsed to
prove the session was offered) with same-host controls; the same between two
hosts that both ask for certificates, and a resumed session still logs the
client's identity. `tlsfront -t` reports every bad mTLS key at its FILE:LINE,
in one run. Last, a refused TLS 1.3 client that sends its request right after
its handshake (curl does) must still get to read the alert: the server must
not reset the connection."""
import os
import re
import socket
import ssl
import subprocess

from tf_clients import recv_all, s_client
from tf_peers import HttpBackend
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, run, tmpdir

ALLOW = "CN:alice DNS:svc.internal URI:spiffe://corp/payments EMAIL:ops@example.com"

# alert number -> the reason Python's ssl module reports for it
ALERTS = {40: "SSLV3_ALERT_HANDSHAKE_FAILURE", 42: "SSLV3_ALERT_BAD_CERTIFICATE",
          44: "SSLV3_ALERT_CERTIFICATE_REVOKED", 45: "SSLV3_ALERT_CERTIFICATE_EXPIRED",
          48: "TLSV1_ALERT_UNKNOWN_CA", 116: "TLSV13_ALERT_CERTIFICATE_REQUIRED"}

TLS13, TLS12 = "1.3", "1.2"

# Reasons the access log gives for a refused client certificate.
R_ISSUER = "client certificate: unable to get local issuer certificate"
R_EXPIRED = "client certificate: certificate has expired"
R_FUTURE = "client certificate: certificate is not yet valid"
R_REVOKED = "client certificate: certificate revoked"
R_ALLOW = "client certificate not on the allow-list"


# ------------------------------------------------------------------ certificates

def make_certs(d):
    """Every CA, CRL and client certificate. Returns (client CA, its CRL,
    chain root CA, CRL file of all four chain CAs, CRL file lacking the good
    intermediate's, certs) where certs maps a name to (chain file, key, CN,
    first SAN as the access log shows it)."""
    ca = CA(d, "Client CA")
    other = CA(d, "Other CA")
    certs = {}

    def cert(name, cn, sans=(), issuer=ca, **kw):
        crt, key = issuer.issue(name, cn, sans, **kw)
        first = "-"
        if sans:
            kind, _, val = sans[0].partition(":")
            first = {"email": "EMAIL"}.get(kind, kind) + ":" + val
        certs[name] = (issuer.chain_file(crt), key, cn, first)
        return crt

    # one identity kind each, so each allow-list kind is tested alone
    cert("cn", "alice")
    cert("dns", "dns-client", ["DNS:svc.internal"])
    cert("uri", "uri-client", ["URI:spiffe://corp/payments"])
    cert("email", "email-client", ["email:ops@example.com"])
    # DNS and EMAIL compare case-insensitively, CN and URI exactly
    cert("dns_case", "dnscase-client", ["DNS:SVC.Internal"])
    cert("email_case", "emailcase-client", ["email:OPS@Example.COM"])
    cert("cn_case", "Alice")
    cert("uri_case", "uricase-client", ["URI:spiffe://corp/Payments"])
    # an allowed name, but of the wrong kind: CN:alice is not DNS:alice
    cert("cn_in_san", "bob", ["DNS:alice", "URI:alice", "email:alice"])
    cert("dns_in_cn", "svc.internal")
    # valid, but on no allow-list
    cert("offlist", "mallory", ["DNS:other.internal", "URI:spiffe://corp/other",
                                "email:mallory@example.com"])
    # invalid, each bearing every allowed identity, so only validity refuses them
    good_ids = ["DNS:svc.internal", "URI:spiffe://corp/payments", "email:ops@example.com"]
    cert("other_ca", "alice", good_ids, issuer=other)
    cert("expired", "alice", good_ids, start="20200101000000Z", end="20200201000000Z")
    cert("future", "alice", good_ids, start="20900101000000Z", end="20910101000000Z")
    ca.revoke(cert("revoked", "alice", good_ids))
    crl = ca.gencrl()

    # chains: root -> good / bad (revoked by root) intermediates -> leaves;
    # good -> sub -> deep leaf (two intermediates)
    root = CA(d, "Chain Root")
    igood = CA(d, "Good Intermediate", parent=root)
    ibad = CA(d, "Bad Intermediate", parent=root)
    isub = CA(d, "Sub Intermediate", parent=igood)
    root.revoke(ibad.crt)
    cert("leaf_good", "chain-good", issuer=igood)
    cert("leaf_bad", "chain-bad", issuer=ibad)
    cert("leaf_deep", "chain-deep", issuer=isub)
    crls = {n: c.gencrl() for n, c in (("root", root), ("igood", igood), ("ibad", ibad),
                                        ("isub", isub))}

    def cat(name, parts):
        out = os.path.join(d, name)
        with open(out, "w") as f:
            for p in parts:
                with open(crls[p]) as i:
                    f.write(i.read())
        return out
    chain_crl = cat("chain-all.crl", ["root", "igood", "ibad", "isub"])
    gap_crl = cat("chain-gap.crl", ["root", "ibad"])
    return ca, crl, root, chain_crl, gap_crl, certs


# ------------------------------------------------------------------ clients

class Client:
    """Python ssl contexts, one per (certificate, TLS version, tickets)."""

    def __init__(self, server_ca, certs):
        self.server_ca = server_ca
        self.certs = certs
        self.ctxs = {}

    def ctx(self, cert, version, tickets=True):
        k = (cert, version, tickets)
        if k not in self.ctxs:
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            c.load_verify_locations(self.server_ca)
            v = ssl.TLSVersion.TLSv1_3 if version == TLS13 else ssl.TLSVersion.TLSv1_2
            c.minimum_version = c.maximum_version = v
            if not tickets:
                c.options |= ssl.OP_NO_TICKET
            if cert is not None:
                c.load_cert_chain(self.certs[cert][0], self.certs[cert][1])
            self.ctxs[k] = c
        return self.ctxs[k]


class Result:
    def __init__(self, port):
        self.port = port        # the client's source port: finds its access line
        self.body = None        # what the backend said, when served
        self.alert = None       # Python's reason for an alert, when refused
        self.error = None       # any failure, as text
        self.reused = False
        self.session = None
        self.send_error = None  # the request could not be sent (TCP reset)

    def __repr__(self):
        return "served %r" % self.body if self.error is None else "refused (%s)" % self.error


def attempt(port, sni, ctx, path, session=None, close_notify=False, log=None):
    """Handshake with SNI sni, GET path, read to the end. The client's
    handshake completes before the server checked its certificate in TLS 1.3,
    so a refusal may only show on the first read. close_notify: end with our
    own close_notify, as s_client and curl do (OpenSSL keeps a TLS 1.2
    session in the server's cache only after a clean shutdown)."""
    mark = log.mark() if log else 0
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    r = Result(raw.getsockname()[1])
    r.log_mark = mark
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except (ssl.SSLError, OSError) as e:
        raw.close()
        r.error, r.alert = str(e), getattr(e, "reason", None)
        return r
    try:
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (path, sni)).encode())
        except (ssl.SSLError, OSError) as e:
            # the server reset the connection; what it sent before may
            # still be there to read (an alert)
            r.send_error = str(e)
        data = recv_all(s)
        if r.send_error:
            raise OSError("send failed (%s), then EOF" % r.send_error)
        r.body = data.partition(b"\r\n\r\n")[2].decode("latin-1")
        r.reused, r.session = s.session_reused, s.session
        if close_notify:
            try:
                s.unwrap()
            except (ssl.SSLError, OSError):
                pass
    except (ssl.SSLError, OSError) as e:
        r.error, r.alert = str(e), getattr(e, "reason", None)
    finally:
        s.close()
    return r


def curl(port, name, server_ca, cert=None, extra=()):
    args = ["curl", "-sS", "--max-time", "10", "--cacert", server_ca, "--resolve",
            "%s:%d:127.0.0.1" % (name, port)] + list(extra)
    if cert:
        args += ["--cert", cert[0], "--key", cert[1]]
    r = subprocess.run(args + ["https://%s:%d/curl" % (name, port)], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def s_client_listen(port, servername, extra, timeout=10):
    """s_client that sends nothing (its stdin stays open) and only reads:
    for connections the server must refuse. Returns (output, timed out).
    A client that writes right after its handshake races the server's
    refusal in TLS 1.3; this one sees whatever the server sends."""
    rfd, wfd = os.pipe()
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
            servername] + list(extra)
    try:
        r = subprocess.run(args, stdin=rfd, capture_output=True, timeout=timeout)
        out, timed_out = r.stdout + r.stderr, False
    except subprocess.TimeoutExpired as e:
        out, timed_out = (e.stdout or b"") + (e.stderr or b""), True
    finally:
        os.close(rfd)
        os.close(wfd)
    return out.decode("latin-1"), timed_out


# Clients that were reset (TCP RST) after a refused handshake instead of
# reading the alert: collected, checked at the end (see check_no_resets).
RESETS = []


def get_req(name, path):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, name)).encode()


def client_hello(out):
    """The first ClientHello in s_client -msg output: (session ID length,
    {extension type: data length})."""
    m = re.search(r">>> [^\n]*, ClientHello\n((?:[ \t]+[0-9a-f]{2}(?: [0-9a-f]{2})*\n)+)", out)
    if m is None:
        return None, {}
    b = bytes.fromhex("".join(m.group(1).split()))
    i = 4 + 2 + 32                      # header, version, random
    sid_len = b[i]
    i += 1 + sid_len
    i += 2 + int.from_bytes(b[i:i + 2], "big")  # cipher suites
    i += 1 + b[i]                       # compression methods
    end = i + 2 + int.from_bytes(b[i:i + 2], "big")
    i += 2
    exts = {}
    while i + 4 <= end:
        t, n = int.from_bytes(b[i:i + 2], "big"), int.from_bytes(b[i + 2:i + 4], "big")
        exts[t] = n
        i += 4 + n
    return sid_len, exts


def offers_session(out, tag):
    """Did the client offer a session to resume: a PSK (TLS 1.3), a
    SessionTicket (TLS 1.2 ticket) or a session ID (TLS 1.2 session ID)?"""
    sid_len, exts = client_hello(out)
    if tag == "tls13":
        return 41 in exts
    if tag == "tkt12":
        return exts.get(35, 0) > 0
    return bool(sid_len)


def ca_names(out):
    """The acceptable client CA names s_client printed, one per line."""
    if "Acceptable client certificate CA names" not in out:
        return []
    t = out.split("Acceptable client certificate CA names\n", 1)[1]
    t = re.split(r"\n(?:Requested Signature Algorithms|Client Certificate Types|---)", t)[0]
    return [l.strip() for l in t.splitlines() if l.strip()]


def alert_of(out):
    m = re.search(r"alert number (\d+)", out)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------ the log

class Log:
    def __init__(self, tf):
        self.tf = tf
        self.n = 0          # access lines expected so far

    def expect(self, n=1):
        self.n += n

    def lines(self):
        return self.tf.wait_access(self.n)

    def mark(self):
        """Where the log ends now: a connection made after this has its
        access line after it."""
        return os.path.getsize(self.tf.log_path)

    def of(self, r):
        """The access line of Python client connection r: the first for its
        client port after the log's end when it connected (a port may be
        used again later in the run)."""
        self.lines()
        with open(self.tf.log_path, "rb") as f:
            f.seek(r.log_mark)
            text = f.read().decode("latin-1")
        ls = [l for l in text.splitlines() if " access client=127.0.0.1:%d " % r.port in l]
        if not ls:
            raise AssertionError("test bug: no access line for port %d" % r.port)
        return ls[0]

    def by_sni(self, sni):
        return [l for l in self.lines() if " sni=%s " % sni in l]


def field(line, name):
    m = re.search(r" %s=(\S*)" % name, line)
    return m.group(1) if m else None


def reason(line):
    m = re.search(r' reason="([^"]*)"', line)
    return m.group(1) if m else None


# ------------------------------------------------------------------ tests

def test_matrix(tf, log, client, certs):
    """Policy x certificate x TLS version, with Python ssl."""
    valid_on_list = ["cn", "dns", "uri", "email", "dns_case", "email_case"]
    valid_off_list = ["cn_case", "uri_case", "cn_in_san", "dns_in_cn", "offlist"]
    invalid = {"other_ca": (48, R_ISSUER), "expired": (45, R_EXPIRED),
               "future": (42, R_FUTURE), "revoked": (44, R_REVOKED)}
    cases = []   # (host, cert, version, expect) expect: None served, else (alerts, reason)
    for version in (TLS13, TLS12):
        nocert = ((116,) if version == TLS13 else (40,), "certificate")
        for c in [None] + valid_on_list + valid_off_list + list(invalid):
            cases.append(("none", c, version, None))
            if c is None:
                cases.append(("opt", c, version, None))
                cases.append(("req", c, version, nocert))
                cases.append(("reqany", c, version, nocert))
            elif c in valid_on_list:
                for h in ("opt", "req", "reqany"):
                    cases.append((h, c, version, None))
            elif c in valid_off_list:
                cases.append(("opt", c, version, (None, R_ALLOW)))
                cases.append(("req", c, version, ((40,), R_ALLOW)))
                cases.append(("reqany", c, version, None))
            else:
                alert, why = invalid[c]
                cases.append(("opt", c, version, (None, why)))
                for h in ("req", "reqany"):
                    cases.append((h, c, version, ((alert,), why)))
    # chains, CRLs of several CAs, depth
    for version in (TLS13, TLS12):
        cases += [
            ("chain", "leaf_good", version, None),
            ("chain", "leaf_deep", version, None),
            ("chain", "leaf_bad", version, ((44,), R_REVOKED)),
            ("chain", "cn", version, ((48,), R_ISSUER)),
            ("chaingap", "leaf_good", version, (None, "client certificate: unable to get "
                                                      "certificate CRL")),
            ("deep1", "leaf_good", version, None),
            ("deep1", "leaf_deep", version, (None, "client certificate: certificate chain "
                                                   "too long")),
            ("deep2", "leaf_deep", version, None),
        ]

    results = []
    for host, c, version, expect in cases:
        path = "/%s/%s/%s" % (host, c or "nocert", version)
        r = attempt(tf.port, host + ".test", client.ctx(c, version), path, log=log)
        results.append((host, c, version, expect, path, r))
    log.expect(len(results))

    for host, c, version, expect, path, r in results:
        what = "TLS %s, host %s, %s" % (version, host, "no cert" if c is None else
                                         "cert %s" % c)
        line = log.of(r)
        if expect is None:
            check(r.error is None and r.body == "backend %s %s\n" % (host, path),
                  "%s: served (%r)" % (what, r))
            cn, san = ("-", "-") if c is None or host == "none" else certs[c][2:4]
            check(field(line, "host") == host and field(line, "client_cn") == cn and
                  field(line, "client_san") == san and
                  not (reason(line) or "").startswith("handshake failed"),
                  "%s: access line has client_cn=%s client_san=%s: %s" % (what, cn, san, line))
            continue
        alerts, why = expect
        if r.send_error:
            RESETS.append("%s: the request after the handshake hit a reset: %s"
                          % (what, r.send_error))
        check(r.body is None or r.body == "", "%s: refused, nothing served (%r)" % (what, r))
        if alerts is not None:
            check(r.alert in [ALERTS[a] for a in alerts],
                  "%s: refused with alert %s (%s)" % (what, "/".join(map(str, alerts)), r))
        else:
            check(r.error is not None, "%s: refused (%s)" % (what, r))
        rs = reason(line) or ""
        check(field(line, "host") == host and rs.startswith("handshake failed") and
              why.lower() in rs.lower(),
              "%s: access line gives the reason (%s): %s" % (what, why, line))


def test_command_line_clients(tf, log, server_ca, certs):
    """openssl s_client and curl: what the server asks for and sends."""
    p = tf.port
    alice = certs["cn"][:2]
    dns = certs["dns"][:2]

    def sc(name, version, cert=None, extra=()):
        args = ["-tls1_3" if version == TLS13 else "-tls1_2", "-ign_eof", "-msg"]
        if cert:
            args += ["-cert", cert[0], "-key", cert[1]]
        return s_client(p, name, args + list(extra), get_req(name, "/sc"))

    # none: no CertificateRequest at all, even to a client with a certificate
    for version in (TLS13, TLS12):
        rc, out = sc("sc%s.none.test" % version[-1], version, alice)
        check("CertificateRequest" not in out and "backend none /sc" in out,
              "s_client TLS %s: host none sends no CertificateRequest and serves" % version)
        log.expect()
    # optional: asks, names our client CA only, serves a client without one
    rc, out = sc("sc.opt.test", TLS13)
    check("CertificateRequest" in out and "backend opt /sc" in out,
          "s_client: host opt asks for a certificate and serves a client without one")
    cas = ca_names(out)
    check(len(cas) == 1 and re.search(r"CN ?= ?Client CA$", cas[0]),
          "s_client: opt names exactly its client_ca as acceptable CA: %r" % cas)
    log.expect()
    rc, out = sc("sc.chain.test", TLS13, certs["leaf_good"][:2],
                 ["-cert_chain", certs["leaf_good"][0]])
    cas = ca_names(out)
    check(len(cas) == 1 and re.search(r"CN ?= ?Chain Root$", cas[0]) and
          "backend chain /sc" in out,
          "s_client: host chain (same port) names its own CA and serves its leaf: %r" % cas)
    log.expect()
    # required: refusals, each with its alert (s_client only reads)
    def refused(name, version, cert=None):
        args = ["-tls1_3" if version == TLS13 else "-tls1_2"]
        if cert:
            args += ["-cert", cert[0], "-key", cert[1]]
        out, timed_out = s_client_listen(p, name, args)
        return alert_of(out), timed_out

    for sni, version, cert, alert, what in (
            ("sc13.req.test", TLS13, None, 116, "no cert: certificate_required"),
            ("sc12.req.test", TLS12, None, 40, "no cert: handshake_failure"),
            ("scother.req.test", TLS13, certs["other_ca"], 48, "another CA: unknown_ca"),
            ("scexp.req.test", TLS12, certs["expired"], 45, "expired: certificate_expired"),
            ("screv.req.test", TLS13, certs["revoked"], 44, "revoked: certificate_revoked"),
            ("scoff.req.test", TLS13, certs["offlist"], 40,
             "off the allow-list: handshake_failure")):
        got, timed_out = refused(sni, version, cert and cert[:2])
        check(got == alert and not timed_out, "s_client TLS %s, req, %s (alert %d; got %s%s)"
              % (version, what, alert, got, ", timed out" if timed_out else ""))
    rc, out = sc("scok.req.test", TLS13, dns)
    check(rc == 0 and "backend req /sc" in out, "s_client, req, good cert: served")
    # after a HelloRetryRequest (the ClientHello callback runs twice) the
    # connection still carries req's policy: a key share the server does not
    # take (ffdhe2048) makes it ask again for X25519
    hrr = ["-groups", "ffdhe2048:X25519"]
    out, timed_out = s_client_listen(p, "schrr.req.test", ["-tls1_3", "-msg"] + hrr)
    check(out.count(", ServerHello") == 2, "set-up: s_client got a HelloRetryRequest")
    check(alert_of(out) == 116 and not timed_out,
          "s_client after a HelloRetryRequest, req, no cert: alert 116 (%s)" % alert_of(out))
    rc, out = sc("schrrok.req.test", TLS13, dns, hrr)
    check(rc == 0 and "backend req /sc" in out and out.count(", ServerHello") == 2,
          "s_client after a HelloRetryRequest, req, good cert: served")
    log.expect(9)
    for sni, why in (("sc13.req.test", "certificate"), ("sc12.req.test", "certificate"),
                     ("scother.req.test", R_ISSUER), ("scexp.req.test", R_EXPIRED),
                     ("screv.req.test", R_REVOKED), ("scoff.req.test", R_ALLOW)):
        ls = log.by_sni(sni)
        check(len(ls) == 1 and why in (reason(ls[0]) or ""),
              "access line of s_client %s: reason contains %r: %s" % (sni, why, ls))
    ls = log.by_sni("schrr.req.test")
    check(len(ls) == 1 and "certificate" in (reason(ls[0]) or "") and
          field(ls[0], "host") == "req", "access line of the refused s_client after a "
          "HelloRetryRequest: %s" % ls)
    ls = log.by_sni("scok.req.test")
    check(len(ls) == 1 and field(ls[0], "client_cn") == "dns-client" and
          field(ls[0], "client_san") == "DNS:svc.internal",
          "access line of the served s_client names its identity: %s" % ls)

    # curl (writes its request right after the handshake: whether it still
    # gets to read the alert is checked at the end, by check_no_resets)
    rc, outp, err = curl(p, "curl.req.test", server_ca, alice)
    check(rc == 0 and outp == "backend req /curl\n", "curl --cert, req: served (%d %r %s)"
          % (rc, outp, err.strip()))
    for name, cert, extra, words in (
            ("curlno.req.test", None, [], "certificate required"),
            ("curlno12.req.test", None, ["--tls-max", "1.2"], "handshake failure"),
            ("curlrev.req.test", certs["revoked"][:2], [], "certificate revoked"),
            ("curlexp.opt.test", certs["expired"][:2], [], "certificate expired")):
        rc, outp, err = curl(p, name, server_ca, cert, extra)
        check(rc != 0 and outp == "", "curl to %s%s: refused, nothing served (%d: %s)"
              % (name, " with a cert" if cert else "", rc, err.strip()))
        if words not in err:
            RESETS.append("curl to %s: %r instead of the alert %r" % (name, err.strip(), words))
    rc, outp, err = curl(p, "curl.opt.test", server_ca)
    check(rc == 0 and outp == "backend opt /curl\n", "curl without a cert, opt: served")
    log.expect(6)
    ls = log.by_sni("curl.req.test")
    check(len(ls) == 1 and field(ls[0], "client_cn") == "alice" and
          field(ls[0], "client_san") == "-", "access line of curl --cert: client_cn=alice "
          "client_san=-: %s" % ls)
    ls = log.by_sni("curlexp.opt.test")
    check(len(ls) == 1 and R_EXPIRED in (reason(ls[0]) or ""),
          "access line of curl with an expired cert on opt: %s" % ls)


def test_resumption_attack(tf, log, d):
    """A session of host none (no client cert) offered with the SNI of host
    req (cert required) on the same port: no resumption, a full handshake that
    fails without a certificate. Controls: host none resumes its own."""
    p = tf.port
    for tag, flags, alert in (("tls13", ["-tls1_3"], 116),
                              ("sid12", ["-tls1_2", "-no_ticket"], 40),
                              ("tkt12", ["-tls1_2"], 40)):
        sess = os.path.join(d, tag + ".sess")
        a, b = "%s.none.test" % tag, "%s.req.test" % tag
        rc, out = s_client(p, a, flags + ["-ign_eof", "-sess_out", sess], get_req(a, "/1"))
        check("New, " in out and "backend none /1" in out and os.path.getsize(sess) > 0,
              "%s: a new session from host none" % tag)
        rc, out = s_client(p, a, flags + ["-ign_eof", "-sess_in", sess], get_req(a, "/2"))
        check("Reused, " in out and "backend none /2" in out,
              "%s: control: host none resumes its own session" % tag)
        out, timed_out = s_client_listen(p, b, flags + ["-msg", "-sess_in", sess])
        check(offers_session(out, tag), "%s: set-up: s_client offers that session with "
              "the SNI of host req" % tag)
        check("Reused, " not in out, "%s: the session of host none is NOT resumed for "
              "host req" % tag)
        check(alert_of(out) == alert and not timed_out and "New, " in out,
              "%s: host req does a full handshake, refused without a cert (alert %s%s)"
              % (tag, alert_of(out), ", timed out" if timed_out else ""))
        log.expect(3)
        ls = log.by_sni(b)
        check(len(ls) == 1 and "certificate" in (reason(ls[0]) or ""),
              "%s: the refused connection is logged with its reason: %s" % (tag, ls))


def test_resumption_python(tf, log, client):
    """With Python ssl, sessions between hosts that both ask for certificates:
    a session of reqany (no allow-list) with a cert off req's allow-list is
    not resumed on req; a session of opt without a cert not on req. Same-host
    resumption works and still logs the client's identity. The clients end
    with close_notify: a server keeps a TLS 1.2 session only after a clean
    shutdown (a session-cache matter, not one of client certificates)."""
    p = tf.port
    for version in (TLS13, TLS12):
        for tickets in ((True, False) if version == TLS12 else (True,)):
            tag = "TLS %s%s" % (version, "" if tickets else " session ID")
            ctx = client.ctx("offlist", version, tickets)
            r = attempt(p, "reqany.test", ctx, "/r1", close_notify=True, log=log)
            check(r.body == "backend reqany /r1\n" and r.session is not None,
                  "%s: reqany serves the cert off the allow-list" % tag)
            r2 = attempt(p, "reqany.test", ctx, "/r2", r.session, close_notify=True,
                         log=log)
            check(r2.reused and r2.body == "backend reqany /r2\n",
                  "%s: control: reqany resumes its own session" % tag)
            r3 = attempt(p, "req.test", ctx, "/r3", r.session, close_notify=True, log=log)
            check(not r3.reused and r3.alert == ALERTS[40],
                  "%s: reqany's session is not resumed on req: full handshake, refused "
                  "off the allow-list (%s)" % (tag, r3))
            ctx = client.ctx(None, version, tickets)
            r4 = attempt(p, "opt.test", ctx, "/r4", close_notify=True, log=log)
            check(r4.body == "backend opt /r4\n", "%s: opt serves no cert" % tag)
            r5 = attempt(p, "req.test", ctx, "/r5", r4.session, close_notify=True, log=log)
            check(not r5.reused and r5.alert == ALERTS[116 if version == TLS13 else 40],
                  "%s: opt's certless session is not resumed on req (%s)" % (tag, r5))
            ctx = client.ctx("uri", version, tickets)
            r6 = attempt(p, "req.test", ctx, "/r6", close_notify=True, log=log)
            r7 = attempt(p, "req.test", ctx, "/r7", r6.session, close_notify=True, log=log)
            check(r7.reused and r7.body == "backend req /r7\n",
                  "%s: req resumes its own session of a good cert" % tag)
            log.expect(7)
            RESETS.extend("%s: resumption: the request hit a reset: %s" % (tag, rr.send_error)
                          for rr in (r3, r5) if rr.send_error)
            for rr, why in ((r3, R_ALLOW), (r5, "certificate")):
                line = log.of(rr)
                check(why in (reason(line) or ""), "%s: refused resumption logged: %s"
                      % (tag, line))
            line = log.of(r7)
            check(field(line, "client_cn") == "uri-client" and
                  field(line, "client_san") == "URI:spiffe://corp/payments",
                  "%s: a resumed connection still logs the client's identity: %s"
                  % (tag, line))


def check_no_resets(tf, log, server_ca):
    """A refused TLS 1.3 client has finished its handshake before the server
    checked its certificate, and typically sends its request at once (curl
    does). It must still get to read the alert: the server must not close
    with the client's data unread, which makes the kernel answer with a TCP
    reset that makes the client's send fail and its alert unreadable (curl:
    "(55) getpeername() failed ... Transport endpoint is not connected")."""
    errs = []
    for i in range(10):
        rc, outp, err = curl(tf.port, "again%d.req.test" % i, server_ca)
        if rc == 0 or "certificate required" not in err:
            errs.append("%d: %s" % (rc, err.strip()))
    log.expect(10)
    log.lines()
    check(not errs, "10 x curl without a cert to req (TLS 1.3) each report the alert "
          "'certificate required' (%d did not: %s)" % (len(errs), errs[:3]))
    check(not RESETS, "no refused client, of all %s above, was reset before it could read "
          "the alert (%d were: %s)" % ("the connections", len(RESETS), RESETS[:5]))


def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return lines


def test_check_errors(d, server_cert, ca_pem, crl):
    """tlsfront -t: every bad mTLS key reported at its FILE:LINE, in one run."""
    root = os.path.join(d, "check")
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("this is not PEM\n")
    main = os.path.join(root, "tlsfront.ini")
    write(main, ["[global]", "listen = 127.0.0.1:1", "hosts = hosts.d/*.ini", "workers = 1"])
    files = {}

    def host(label, *lines):
        path = os.path.join(root, "hosts.d", label + ".ini")
        files[label] = (path, write(path, [
            "[host %s]" % label, "cert = %s" % server_cert[0], "key = %s" % server_cert[1],
            "backend = 127.0.0.1:9", "names = %s.test" % label] + list(lines)))

    bad = [  # label, lines, the line at fault, words its message must hold
        ("ca-missing", ["client_verify = required", "client_ca = %s/nonexistent-ca.pem" % d],
         "client_ca", ["client_ca", "nonexistent-ca.pem"]),
        ("ca-garbage", ["client_verify = required", "client_ca = %s" % garbage],
         "client_ca", ["client_ca", "garbage.pem"]),
        ("crl-missing", ["client_verify = required", "client_ca = %s" % ca_pem,
                         "client_crl = %s/nonexistent.crl" % d],
         "client_crl", ["client_crl", "nonexistent.crl"]),
        ("crl-garbage", ["client_verify = optional", "client_ca = %s" % ca_pem,
                         "client_crl = %s" % garbage],
         "client_crl", ["client_crl", "garbage.pem"]),
        ("allow-kind", ["client_verify = required", "client_ca = %s" % ca_pem,
                        "client_allow = CN:alice FOO:x"],
         "client_allow", ["client_allow", "FOO:x"]),
        ("allow-empty", ["client_verify = required", "client_ca = %s" % ca_pem,
                         "client_allow = DNS:svc.internal CN:"],
         "client_allow", ["client_allow", "CN:"]),
        ("noca-req", ["client_verify = required"], "client_verify", ["client_ca"]),
        ("noca-opt", ["client_verify = optional"], "client_verify", ["client_ca"]),
        ("verify-bad", ["client_verify = sometimes"], "client_verify",
         ["client_verify", "sometimes"]),
        ("depth-0", ["client_verify = required", "client_ca = %s" % ca_pem,
                     "client_verify_depth = 0"], "client_verify_depth",
         ["client_verify_depth"]),
        ("depth-17", ["client_verify = required", "client_ca = %s" % ca_pem,
                      "client_verify_depth = 17"], "client_verify_depth",
         ["client_verify_depth"]),
    ]
    for label, lines, _, _ in bad:
        host(label, *lines)
    host("good", "client_verify = required", "client_ca = %s" % ca_pem,
         "client_crl = %s" % crl, "client_verify_depth = 16", "client_allow = " + ALLOW)
    r = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout + r.stderr
    check(r.returncode == 1 and "configuration OK" not in r.stdout,
          "-t with bad mTLS keys exits 1 (%d)" % r.returncode)
    msgs = [l for l in out.splitlines() if re.match(r"/.*:\d+: (?!warning)", l)]
    for label, lines, key, words in bad:
        path, flines = files[label]
        n = [i + 1 for i, l in enumerate(flines) if l.startswith(key + " =")][0]
        prefix = "%s:%d: " % (path, n)
        here = [m for m in msgs if m.startswith(prefix)]
        check(any(all(w.lower() in m.lower() for w in words) for m in here),
              "-t: %s reported at %s:%d (%s): %r" % (label, os.path.basename(path), n,
                                                     ", ".join(words), here))
        elsewhere = [m for m in msgs if m.startswith(path + ":") and not m.startswith(prefix)]
        check(not elsewhere, "-t: %s: no other error in its file: %r" % (label, elsewhere))
    gpath = files["good"][0]
    check(not any(m.startswith(gpath + ":") for m in msgs),
          "-t: the good mTLS host (all five keys) has no error: %r"
          % [m for m in msgs if m.startswith(gpath)])


def main():
    d = tmpdir()
    sca = CA(d, "Server CA")
    labels = ("none", "opt", "req", "reqany", "chain", "chaingap", "deep1", "deep2")
    names = []
    for l in labels:
        names += ["%s.test" % l, "*.%s.test" % l]
    server = sca.host_cert("server", names, cn="server")
    ca, crl, root, chain_crl, gap_crl, certs = make_certs(d)
    client = Client(sca.crt, certs)
    backends = {l: HttpBackend(l) for l in labels}

    def host(label, **kw):
        h = {"cert": server[0], "key": server[1], "backend": "127.0.0.1:%d"
             % backends[label].port, "names": "%s.test *.%s.test" % (label, label)}
        h.update(kw)
        return h

    chain_keys = {"client_ca": root.crt, "client_crl": chain_crl}
    tf = Tlsfront(d, {
        "none": host("none", client_verify="none"),
        "opt": host("opt", client_verify="optional", client_allow=ALLOW),
        "req": host("req", client_allow=ALLOW),          # required from [defaults]
        "reqany": host("reqany", client_verify="required"),
        "chain": host("chain", **chain_keys),
        "chaingap": host("chaingap", client_ca=root.crt, client_crl=gap_crl),
        "deep1": host("deep1", client_verify_depth="1", **chain_keys),
        "deep2": host("deep2", client_verify_depth="2", **chain_keys),
    }, defaults={"client_verify": "required", "client_ca": ca.crt, "client_crl": crl,
                 "client_verify_depth": "3"}, start=False)
    r = tf.check_config()
    check(r.returncode == 0 and r.stdout.strip() == "configuration OK",
          "-t accepts the mTLS configuration (client keys in [defaults] and hosts): %s"
          % (r.stdout + r.stderr).strip())
    tf.start()
    log = Log(tf)

    test_matrix(tf, log, client, certs)
    test_command_line_clients(tf, log, sca.crt, certs)
    test_resumption_attack(tf, log, d)
    test_resumption_python(tf, log, client)
    test_check_errors(d, server, ca.crt, crl)
    check_no_resets(tf, log, sca.crt)
    check(tf.proc.poll() is None and len(tf.workers()) == 1,
          "tlsfront and its worker are still running")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
