"""A reload re-reads only the certificate and key files that changed: with
40 hosts, a reload with nothing changed parses no file; after two hosts'
certificates are renewed (written anew, as certbot does) and a third one's
key file is rewritten in place, the reload parses exactly those files and
the renewed certificates are served. A file that one host shares with
another is parsed once per build, and counted once: the counts are of the
distinct files of the configuration (80 here). Failed reloads (a broken host
file, a certificate that does not match its key, a new listen address in
use, which fails after the new configuration was built) count for nothing:
the good reload after them says exactly 80 files, the 2 renewed before the
failures among them as read."""
import hashlib
import os
import re
import shutil
import signal
import socket

from tf_clients import client_context
from tf_peers import HttpBackend
from tf_pki import cert_of, self_signed
from tf_proc import Tlsfront
from tf_run import check, run, tmpdir


def served(port, sni):
    s = client_context().wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                              timeout=10),
                                     server_hostname=sni)
    der = s.getpeercert(binary_form=True)
    s.close()
    return hashlib.sha256(der).hexdigest()


def digest_of(pem):
    return hashlib.sha256(cert_of(open(pem).read())).hexdigest()


def reload_counts(tf):
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 1, what="reload %d" % (n + 1))
    m = re.findall(r"reloaded: .*; (\d+) certificate and key files read, (\d+) unchanged",
                   tf.log())[-1]
    return int(m[0]), int(m[1])


def failed_reload(tf, what):
    n = len(re.findall(r"reload failed", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reload failed", count=n + 1, what=what)


def renew(d, hosts, name):
    """Renew name's certificate and key the way certbot does: new files
    renamed into place."""
    new = os.path.join(d, "new")
    os.makedirs(new, exist_ok=True)
    pem, key = self_signed(new, name, ["%s.test" % name])
    shutil.copy(pem, hosts[name]["cert"] + ".tmp")
    shutil.copy(key, hosts[name]["key"] + ".tmp")
    os.replace(hosts[name]["cert"] + ".tmp", hosts[name]["cert"])
    os.replace(hosts[name]["key"] + ".tmp", hosts[name]["key"])


def main():
    d = tmpdir()
    certs = os.path.join(d, "certs")
    os.makedirs(certs)
    be = HttpBackend("f")
    hosts = {}
    for i in range(40):
        pem, key = self_signed(certs, "h%02d" % i, ["h%02d.test" % i])
        hosts["h%02d" % i] = {"cert": pem, "key": key, "backend": "127.0.0.1:%d" % be.port}
    # one more host sharing h00's files
    hosts["twin"] = dict(hosts["h00"], names="twin.test")
    tf = Tlsfront(d, hosts)

    read, unchanged = reload_counts(tf)
    check(read == 0 and unchanged == 80,
          "a reload with nothing changed parses no file (read %d, unchanged %d)"
          % (read, unchanged))

    # renew two certificates the way certbot does: new files renamed into place
    for name in ("h05", "h17"):
        renew(d, hosts, name)
    # and rewrite one key file in place (same inode, same bytes, new times)
    path = hosts["h30"]["key"]
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data)

    read, unchanged = reload_counts(tf)
    check(read == 5 and unchanged == 75,
          "after renewing 2 certificates and rewriting 1 key, the reload parses exactly "
          "those 5 files (read %d, unchanged %d)" % (read, unchanged))
    for name in ("h05", "h17"):
        check(served(tf.port, "%s.test" % name) == digest_of(hosts[name]["cert"]),
              "%s's renewed certificate is served" % name)
    check(served(tf.port, "h06.test") == digest_of(hosts["h06"]["cert"]),
          "an unchanged host still serves its certificate")
    check(served(tf.port, "twin.test") == digest_of(hosts["h00"]["cert"]),
          "the host sharing h00's files serves them")

    # a renewal, then three failed reloads: a broken host file (a config
    # error), a host whose new certificate does not match its key (the failed
    # build parses that certificate too), a listen address already in use
    # (the build succeeds, opening the listener fails)
    renew(d, hosts, "h08")
    h12 = os.path.join(d, "hosts.d", "h12.ini")
    good = open(h12).read()
    with open(h12, "w") as f:
        f.write(good + "this line is broken\n")
    failed_reload(tf, "the reload with a broken host file to fail")
    other, _ = self_signed(os.path.join(d, "new"), "other", ["h12.test"])
    with open(h12, "w") as f:
        f.write(good.replace(hosts["h12"]["cert"], other))
    failed_reload(tf, "the reload with a mismatched certificate to fail")
    check(re.search(r"h12\.ini:\d+: key: .* does not match the certificate", tf.log()),
          "the second reload failed on h12's key")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    with open(h12, "w") as f:
        f.write(good + "listen = 127.0.0.1:%d\n" % busy.getsockname()[1])
    failed_reload(tf, "the reload with a listen address in use to fail")
    check(re.search(r"cannot listen on 127\.0\.0\.1:%d" % busy.getsockname()[1], tf.log()),
          "the third reload failed on the address in use")
    busy.close()
    with open(h12, "w") as f:
        f.write(good)
    read, unchanged = reload_counts(tf)
    check(read == 2 and unchanged == 78,
          "the good reload after three failed ones counts the 80 files of its configuration: "
          "h08's 2 renewed files as read, the others unchanged (read %d, unchanged %d)"
          % (read, unchanged))
    check(served(tf.port, "h08.test") == digest_of(hosts["h08"]["cert"]),
          "h08's renewed certificate is served")
    check(served(tf.port, "h12.test") == digest_of(hosts["h12"]["cert"]),
          "h12 serves its own certificate again")
    check(tf.stop() == 0, "tlsfront exits 0")


run(main)
