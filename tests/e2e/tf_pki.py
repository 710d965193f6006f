"""Certificates for the tests, made with the openssl command line: one CA
class for every certificate a CA issues (servers' and clients', roots and
intermediates, valid, expired or not yet valid, revoked, CRLs), and
self-signed server certificates.

    ca = CA(d)                                  # a root, "Test CA"
    pem, key = ca.host_cert("shop", ["shop.test", "www.shop.test"])
    client_context(verify_ca=ca.crt)
    inter = CA(d, "Intermediate", parent=ca)
    crt, key = inter.issue("alice", "alice", ["email:alice@example.com"])
    chain = inter.chain_file(crt)               # what a client presents
    pem, key = self_signed(d, "x", ["x.test"])

Every key is EC P-256 unless rsa=True (RSA 2048)."""
import base64
import os
import re
import secrets
import subprocess

from tf_run import Fail

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
_RSA = ["-newkey", "rsa:2048"]


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("openssl %s failed: %s" % (" ".join(args), r.stderr))
    return r.stdout


def cert_of(pem_text):
    """The first certificate of a PEM text, as DER bytes."""
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                  pem_text, re.S)
    return base64.b64decode("".join(m.group(1).split()))


def self_signed(d, stem, names, cn=None, days=30, rsa=False):
    """A self-signed server certificate (not a CA: basicConstraints
    CA:FALSE) for the DNS names, subject CN=cn (default: the first name, or
    stem), in d: returns (STEM.pem, STEM.key)."""
    key = os.path.join(d, stem + ".key")
    pem = os.path.join(d, stem + ".pem")
    args = ["req", "-x509", "-utf8"] + (_RSA if rsa else _EC) + [
        "-nodes", "-keyout", key, "-out", pem, "-days", str(days),
        "-subj", "/CN=" + (cn or (names[0] if names else stem)),
        "-addext", "basicConstraints=critical,CA:FALSE"]
    if names:
        args += ["-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names)]
    openssl(*args)
    return pem, key


class CA:
    """A certificate authority run with `openssl ca` in a directory of its
    own under d (self.dir): it issues certificates with any subject CN,
    subjectAltName and validity period (also in the past or the future),
    revokes them and writes CRLs. parent: the CA that issues this one's
    certificate (an intermediate CA); None for a self-signed root. days:
    this CA's own validity.

    self.crt is this CA's certificate (PEM; what a verifier trusts if this
    is a root), self.key its key; self.chain this CA's certificate followed
    by its issuers' below the root if it is an intermediate, [] for a root.
    Serial numbers are random 128-bit numbers, counted up from there."""

    _CNF = ("[ca]\ndefault_ca = ca_default\n[ca_default]\n"
            "database = %(c)s/index.txt\nnew_certs_dir = %(c)s/new\nserial = %(c)s/serial\n"
            "crlnumber = %(c)s/crlnumber\ncertificate = %(c)s/ca.pem\n"
            "private_key = %(c)s/ca.key\ndefault_md = sha256\ndefault_days = 30\n"
            "default_crl_days = 30\npolicy = policy_any\nunique_subject = no\n"
            "[policy_any]\ncommonName = supplied\n")

    def __init__(self, d, name="Test CA", parent=None, days=30):
        self.name = name
        base = os.path.join(d, "ca-" + re.sub(r"[^A-Za-z0-9]+", "-", name))
        self.dir, n = base, 1
        while os.path.exists(self.dir):     # two CAs of one name in d
            n += 1
            self.dir = "%s-%d" % (base, n)
        os.makedirs(os.path.join(self.dir, "new"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as out:
            # 16 bytes, the first below 0x80 (a positive number): testssl
            # wants 64 bits of entropy or more
            out.write("%032X\n" % (secrets.randbits(127) | 1 << 120))
        with open(os.path.join(self.dir, "crlnumber"), "w") as out:
            out.write("1000\n")
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(self._CNF % {"c": self.dir})
        self.crt = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        if parent is None:
            openssl("req", "-x509", "-utf8", *_EC, "-nodes", "-keyout", self.key,
                    "-out", self.crt, "-days", str(days), "-subj", "/CN=" + name,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            self.chain = []
        else:
            crt, key = parent.issue("sub-" + os.path.basename(self.dir), name, ca=True,
                                    days=days)
            os.replace(crt, self.crt)
            os.replace(key, self.key)
            self.chain = [self.crt] + parent.chain

    def issue(self, stem, cn, sans=(), start=None, end=None, days=None, ca=False, rsa=False,
              eku="clientAuth,serverAuth", extensions=(), d=None):
        """Issue STEM.crt (that certificate alone) and STEM.key, in d
        (default: self.dir), for subject CN=cn (UTF-8) with subjectAltName
        entries sans (e.g. "DNS:x", "URI:spiffe://a/b", "email:a@b"). Valid
        from start to end (openssl ca -startdate/-enddate: YYYYMMDDHHMMSSZ),
        by default from now for days (30). A CA certificate if ca, else a
        leaf with the extended key usages eku. extensions: more lines of
        the extension section ("crlDistributionPoints = URI:..."). Returns
        (crt, key)."""
        d = d or self.dir
        key, csr, crt, ext = (os.path.join(d, stem + x) for x in (".key", ".csr", ".crt", ".ext"))
        with open(ext, "w") as f:
            f.write("[ext]\n")
            if ca:
                f.write("basicConstraints = critical,CA:TRUE\n"
                        "keyUsage = critical,keyCertSign,cRLSign\n")
            else:
                f.write("basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                        "extendedKeyUsage = %s\n" % eku)
            if sans:
                f.write("subjectAltName = " + ",".join(sans) + "\n")
            for line in extensions:
                f.write(line + "\n")
        openssl("req", "-new", "-utf8", *(_RSA if rsa else _EC), "-nodes", "-keyout", key,
                "-out", csr, "-subj", "/CN=" + cn)
        args = ["ca", "-batch", "-notext", "-utf8", "-config", self.cnf, "-extfile", ext,
                "-extensions", "ext", "-in", csr, "-out", crt]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        elif days:
            args += ["-days", str(days)]
        openssl(*args)
        return crt, key

    def host_cert(self, stem, names, cn=None, **kw):
        """A server certificate for the DNS names, subject CN=cn (default:
        the first name): issue() with these names as its subjectAltName
        (and issue()'s keywords: start, end, days, rsa, d...). Returns
        (STEM.pem, STEM.key); STEM.pem holds the certificate, then this
        CA's certificate and the intermediates above it (never the lone
        leaf, which tlsfront warns of: the root too if it issued the leaf,
        which servers need not send but clients ignore)."""
        crt, key = self.issue(stem, cn or names[0], ["DNS:" + n for n in names], **kw)
        pem = crt[:-len(".crt")] + ".pem"
        _cat(pem, [crt] + (self.chain or [self.crt]))
        return pem, key

    def chain_file(self, crt, out=None):
        """A PEM file: the certificate crt this CA issued, then self.chain
        (what a client presents: the root left out). Returns its path."""
        out = out or crt[:-len(".crt")] + ".chain.pem"
        _cat(out, [crt] + self.chain)
        return out

    def revoke(self, crt):
        openssl("ca", "-config", self.cnf, "-revoke", crt)

    def gencrl(self, out=None):
        """Write this CA's CRL (PEM) of everything revoked so far; return its path."""
        out = out or os.path.join(self.dir, "crl.pem")
        openssl("ca", "-config", self.cnf, "-gencrl", "-out", out)
        return out


def _cat(out, paths):
    with open(out, "w") as f:
        for p in paths:
            with open(p) as i:
                f.write(i.read())
