"""A reload re-reads only the certificate and key files that changed: with
40 hosts, a reload with nothing changed parses no file; after two hosts'
certificates are renewed (written anew, as certbot does) and a third one's
key file is rewritten in place, the reload parses exactly those files and
the renewed certificates are served. A file that one host shares with
another is parsed once per build."""
import hashlib
import os
import re
import shutil
import signal
import socket

from harness import (HttpBackend, Tlsfront, cert_of, check, client_context, make_cert, run,
                     tmpdir)


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


def main():
    d = tmpdir()
    certs = os.path.join(d, "certs")
    os.makedirs(certs)
    be = HttpBackend("f")
    hosts = {}
    for i in range(40):
        pem, key = make_cert(certs, "h%02d" % i, ["h%02d.test" % i])
        hosts["h%02d" % i] = {"cert": pem, "key": key, "backend": "127.0.0.1:%d" % be.port}
    # one more host sharing h00's files
    hosts["twin"] = dict(hosts["h00"], names="twin.test")
    tf = Tlsfront(d, hosts)

    read, unchanged = reload_counts(tf)
    check(read == 0 and unchanged == 82,
          "a reload with nothing changed parses no file (read %d, unchanged %d)"
          % (read, unchanged))

    # renew two certificates the way certbot does: new files renamed into place
    new = os.path.join(d, "new")
    os.makedirs(new)
    for name in ("h05", "h17"):
        pem, key = make_cert(new, name, ["%s.test" % name])
        shutil.copy(pem, hosts[name]["cert"] + ".tmp")
        shutil.copy(key, hosts[name]["key"] + ".tmp")
        os.replace(hosts[name]["cert"] + ".tmp", hosts[name]["cert"])
        os.replace(hosts[name]["key"] + ".tmp", hosts[name]["key"])
    # and rewrite one key file in place (same inode, same bytes, new times)
    path = hosts["h30"]["key"]
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data)

    read, unchanged = reload_counts(tf)
    check(read == 5 and unchanged == 77,
          "after renewing 2 certificates and rewriting 1 key, the reload parses exactly "
          "those 5 files (read %d, unchanged %d)" % (read, unchanged))
    for name in ("h05", "h17"):
        check(served(tf.port, "%s.test" % name) == digest_of(hosts[name]["cert"]),
              "%s's renewed certificate is served" % name)
    check(served(tf.port, "h06.test") == digest_of(hosts["h06"]["cert"]),
          "an unchanged host still serves its certificate")
    check(served(tf.port, "twin.test") == digest_of(hosts["h00"]["cert"]),
          "the host sharing h00's files serves them")
    check(tf.stop() == 0, "tlsfront exits 0")


run(main)
