"""Warnings for the two commonest certificate mistakes, in `tlsfront -t`, in
the log at start and again at a reload (none of them stops tlsfront):
- a cert file that stops at a leaf issued by someone else (certbot's cert.pem
  instead of fullchain.pem): "certificate chain incomplete", naming the
  missing issuer, at the cert line; a leaf followed by its intermediate (the
  root absent, as it should be) and a self-signed leaf are not warned about;
- `names` the certificate does not cover: one warning at the names line
  listing exactly those names (a wildcard covers one whole first label; a
  names wildcard must be in the certificate as such; the CN counts only when
  the certificate has no DNS name)."""
import os
import re
import subprocess

from tf_peers import HttpBackend
from tf_pki import CA, self_signed
from tf_proc import TLSFRONT, Tlsfront
from tf_run import check, run, tmpdir


def line_of(path, key):
    with open(path) as f:
        for i, l in enumerate(f, 1):
            if l.startswith(key + " ="):
                return i
    raise AssertionError("test bug: no %s line in %s" % (key, path))


def main():
    d = tmpdir()
    root = CA(d, "Test Root CA")
    inter = CA(d, "Test Intermediate CA", parent=root)
    be = HttpBackend("w")
    backend = "127.0.0.1:%d" % be.port

    leaf_crt, leaf_key = inter.issue("leaf", "leaf.test", ["DNS:leaf.test"])
    full_crt, full_key = inter.issue("full", "full.test", ["DNS:full.test"])
    full_pem = inter.chain_file(full_crt)          # leaf, then the intermediate
    self_pem, self_key = self_signed(d, "self", ["self.test"])
    names_crt, names_key = inter.issue("names", "www.shop.test",
                                       ["DNS:www.shop.test", "DNS:*.shop.test",
                                        "DNS:api.example.test"])
    cn_crt, cn_key = inter.issue("cn", "cn.test")  # no subjectAltName at all
    legacy_crt, legacy_key = inter.issue("legacy", "legacy.test", ["DNS:new.test"])

    hosts = {
        "leaf": {"cert": leaf_crt, "key": leaf_key, "backend": backend},
        "full": {"cert": full_pem, "key": full_key, "backend": backend, "names": "full.test"},
        "self": {"cert": self_pem, "key": self_key, "backend": backend},
        "shop": {"cert": inter.chain_file(names_crt), "key": names_key, "backend": backend,
                 "names": "www.shop.test a.shop.test shop.test a.b.shop.test *.shop.test "
                          "*.example.test other.test"},
        "cn": {"cert": inter.chain_file(cn_crt), "key": cn_key, "backend": backend,
               "names": "cn.test www.cn.test"},
        "legacy": {"cert": inter.chain_file(legacy_crt), "key": legacy_key,
                   "backend": backend, "names": "new.test legacy.test"},
    }
    tf = Tlsfront(d, hosts, start=False)
    hd = os.path.join(d, "hosts.d")

    def ini(label):
        return os.path.join(hd, label + ".ini")

    chain_warn = ('%s:%d: warning: certificate chain incomplete: issuer "CN=Test Intermediate '
                  'CA" of the last certificate in %s is not in the file (certbot: use '
                  'fullchain.pem, not cert.pem)' % (ini("leaf"), line_of(ini("leaf"), "cert"),
                                                     leaf_crt))
    uncovered = {"shop": {"shop.test", "a.b.shop.test", "*.example.test", "other.test"},
                 "cn": {"www.cn.test"}, "legacy": {"legacy.test"}}

    def names_warnings(text, label):
        """The uncovered names each warning at LABEL's names line lists."""
        prefix = "%s:%d: warning: host '%s': the certificate in " % (
            ini(label), line_of(ini(label), "names"), label)
        out = []
        for l in text.splitlines():
            i = l.find(prefix)
            if i < 0:
                continue
            m = re.search(r"does not cover (.*) \(clients will refuse it for (this name|"
                          r"these names)\)$", l[i:])
            out.append(set(m.group(1).split(", ")) if m else l)
        return out

    # tlsfront -t
    r = subprocess.run([TLSFRONT, "-t", "-c", tf.main], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 0 and r.stdout.strip() == "configuration OK",
          "-t: warnings only, the configuration is OK (rc %d): %s" % (r.returncode, r.stderr))
    check(chain_warn in r.stderr.splitlines(),
          "-t: a leaf-only cert file is 'certificate chain incomplete' at its cert line, "
          "naming the missing issuer:\n" + r.stderr)
    incomplete = [l for l in r.stderr.splitlines() if "chain incomplete" in l]
    check(len(incomplete) == 1,
          "-t: no chain warning for leaf + intermediate, nor for a self-signed leaf, nor "
          "for the other full chains: %r" % incomplete)
    for label, want in uncovered.items():
        got = names_warnings(r.stderr, label)
        check(got == [want], "-t: one warning at %s's names line, listing exactly %s: %r"
              % (label, sorted(want), got))
    check(len([l for l in r.stderr.splitlines() if "does not cover" in l]) == 3,
          "-t: no names warning for a host whose names are all covered (full.test)")
    check(names_warnings(r.stderr, "full") == [], "-t: nothing at full's names line")

    # the same at start, and again at a reload
    tf.start()
    log = tf.log()
    check(log.count(chain_warn) == 1, "the start logs the chain warning")
    check(names_warnings(log, "shop") == [uncovered["shop"]],
          "the start logs the names warning")
    tf.reload()
    log = tf.log()
    check(log.count(chain_warn) == 2, "the reload logs the chain warning again")
    check(names_warnings(log, "shop") == [uncovered["shop"]] * 2,
          "the reload logs the names warning again")
    check(tf.stop() == 0, "tlsfront exits 0")


run(main)
