"""tlsfront -t: a good configuration is "configuration OK" (an expired
certificate is only a warning); a bad one exits 1 and reports every problem as
FILE:LINE: message, all of them in one run. Two bad configurations: one full
of what the config loader finds, one full of what the TLS context builder and
the listener tables find. A third mixes both kinds: one run reports both. Also
-V, -h and an unknown option."""
import os
import re
import subprocess

from tf_pki import CA
from tf_proc import TLSFRONT
from tf_run import check, free_port, run, tmpdir


def write(path, lines):
    """Write lines to path (creating its directory); return lines."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return lines


def line_of(lines, needle, exact=False):
    """The 1-based number of the one line of lines that contains (is) needle."""
    hits = [i + 1 for i, l in enumerate(lines) if (l == needle if exact else needle in l)]
    assert len(hits) == 1, "test bug: %r found on lines %r" % (needle, hits)
    return hits[0]


def tf_check(main):
    return subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, text=True,
                          timeout=30)


def expect_at(out, path, line, words, what):
    """Some message of out is at path:line and contains every word of words."""
    prefix = "%s:%d: " % (path, line)
    msgs = [l for l in out.splitlines() if l.startswith(prefix)]
    check(any(all(w.lower() in m.lower() for w in words) for m in msgs),
          "%s reported at %s:%d (%s) -- got %r" % (what, os.path.basename(path), line,
                                                   ", ".join(words), msgs))


def good_config(d, ca, port):
    """A valid configuration whose one host has an expired certificate."""
    ok = ca.host_cert("ok", ["ok.test"])
    old = ca.host_cert("old", ["old.test"], start="20200101000000Z", end="20200201000000Z")
    main = os.path.join(d, "good", "tlsfront.ini")
    write(main, ["[global]", "listen = 127.0.0.1:%d" % port, "hosts = hosts.d/*.ini",
                 "workers = 1", "", "[defaults]", "idle_timeout = 1m"])
    write(os.path.join(d, "good", "hosts.d", "ok.ini"), [
        "; a comment", "[host ok]", "cert = %s" % ok[0], "key = %s" % ok[1],
        "backend = 127.0.0.1:9", "alpn = h2 http/1.1", "backend.h2 = 127.0.0.1:10"])
    old_lines = write(os.path.join(d, "good", "hosts.d", "old.ini"), [
        "[host old]", "backend = 127.0.0.1:9", "cert = %s" % old[0], "key = %s" % old[1]])
    return main, os.path.join(d, "good", "hosts.d", "old.ini"), line_of(old_lines, "cert =")


def test_good(d, ca):
    main, old_file, old_line = good_config(d, ca, free_port())
    r = tf_check(main)
    check(r.returncode == 0, "-t on a good configuration exits 0 (got %d: %s)"
          % (r.returncode, r.stderr))
    check(r.stdout.strip() == "configuration OK",
          "-t prints 'configuration OK' on stdout: %r" % r.stdout)
    warn = [l for l in r.stderr.splitlines() if "EXPIRED" in l]
    check(len(warn) == 1 and warn[0].startswith("%s:%d: warning:" % (old_file, old_line)),
          "an expired certificate is a warning at its cert line: %r" % r.stderr)
    check("error" not in r.stderr.lower(), "no error is printed for a good config")


def test_parse_errors(d, ca):
    """Everything the config loader finds, in one run."""
    cert = ca.host_cert("p", ["p.test"])
    root = os.path.join(d, "parse")
    main = os.path.join(root, "tlsfront.ini")
    long_section = "host " + "x" * 50
    # libinih (Debian) splits lines longer than 199 bytes: the tail would be
    # read as a line of its own, "zzz = 1", an unknown key. It must not be.
    long_line = "names = " + " ".join("n%d.p.test" % i for i in range(30))
    long_line += " " * max(1, 205 - len(long_line)) + "zzz = 1"
    assert len(long_line) > 200
    m = write(main, [
        "[global]",
        "listen = 127.0.0.1:%d" % free_port(),
        "hosts = hosts.d/*.ini",
        "workers = lots",
        "shutdown_timeout = 10 parsecs",
        "bogus_key = 1",
        "log_level = debug",
        "log_level = info",
        "cert = /etc/ssl/x.pem",
        "",
        "[frobnicate]",
        "listen = 1.2.3.4:5",
        "",
        "[defaults]",
        "connect_timeout = 3 fortnights",
        "names = d.test",
        "listen = 127.0.0.1",
        "",
        "[%s]" % long_section,
        "backend = 127.0.0.1:1",
    ])
    ha_path = os.path.join(root, "hosts.d", "10-alpha.ini")
    ha = write(ha_path, [
        "[host alpha]",
        "cert = %s" % cert[0],
        "key = %s" % cert[1],
        "backend = 127.0.0.1:notaport",
        "listen = 127.0.0.1:70000",
        "alpn = http/1.1",
        "backend.h2 = 127.0.0.1:9",
        "frob = 1",
        "shutdown_timeout = 1s",
        "idle_timeout = 5 minutes",
        "default = perhaps",
        long_line,
        "backend.http/1.1 = 127.0.0.1:8",
    ])
    hb_path = os.path.join(root, "hosts.d", "20-beta.ini")
    hb = write(hb_path, [
        "; the label alpha is taken by 10-alpha.ini",
        "[host alpha]",
        "backend = 127.0.0.1:7",
        "",
        "[host nothing]",
        "alpn = h2",
        "",
        "[global]",
        "workers = 2",
    ])
    # a directory matched by the hosts glob
    os.makedirs(os.path.join(root, "hosts.d", "30-dir.ini"))
    # an endless file matched by the hosts glob
    os.symlink("/dev/zero", os.path.join(root, "hosts.d", "40-zero.ini"))
    r = tf_check(main)
    out = r.stdout + r.stderr
    check(r.returncode == 1, "-t on a bad configuration exits 1 (got %d)" % r.returncode)
    check("configuration OK" not in r.stdout, "no 'configuration OK' for a bad config")

    expect_at(out, main, line_of(m, "workers = lots"), ["workers", "lots"],
              "bad workers value")
    expect_at(out, main, line_of(m, "parsecs"), ["shutdown_timeout", "duration"],
              "bad duration in [global]")
    expect_at(out, main, line_of(m, "bogus_key"), ["unknown key", "bogus_key"],
              "unknown key")
    expect_at(out, main, line_of(m, "log_level = info"), ["duplicate", "log_level"],
              "duplicate key")
    expect_at(out, main, line_of(m, "cert = /etc"), ["cert", "not allowed", "[global]"],
              "host key in [global]")
    expect_at(out, main, line_of(m, "[frobnicate]"), ["unknown section", "frobnicate"],
              "unknown section")
    check(not any(l.startswith("%s:%d:" % (main, line_of(m, "1.2.3.4:5")))
                  for l in out.splitlines()),
          "keys of an unknown section are not reported again")
    fl = line_of(m, "fortnights")
    expect_at(out, main, fl, ["connect_timeout", "duration"], "bad duration in [defaults]")
    check(len([l for l in out.splitlines() if l.startswith("%s:%d:" % (main, fl))]) == 1,
          "a bad value in [defaults] is reported once, not once per host")
    expect_at(out, main, line_of(m, "names = d.test"), ["names", "not allowed", "[defaults]"],
              "names in [defaults]")
    al = line_of(m, "listen = 127.0.0.1", exact=True)
    expect_at(out, main, al, ["listen", "bad address", "127.0.0.1"],
              "an address without a port")
    check(len([l for l in out.splitlines() if l.startswith("%s:%d:" % (main, al))]) == 1,
          "the bad address in [defaults] is reported once")
    expect_at(out, main, line_of(m, long_section), ["section name", str(len(long_section)), "49"],
              "a section name longer than 49 bytes")

    expect_at(out, ha_path, line_of(ha, "notaport"), ["backend", "port"],
              "bad backend port")
    expect_at(out, ha_path, line_of(ha, "70000"), ["listen", "port"], "bad listen port")
    expect_at(out, ha_path, line_of(ha, "backend.h2"), ["backend.h2", "alpn"],
              "backend.h2 for a protocol not in alpn")
    expect_at(out, ha_path, line_of(ha, "frob"), ["unknown key", "frob"],
              "unknown key in a host file")
    expect_at(out, ha_path, line_of(ha, "shutdown_timeout"),
              ["shutdown_timeout", "not allowed", "[host]"], "global key in a host")
    expect_at(out, ha_path, line_of(ha, "5 minutes"), ["idle_timeout", "duration"],
              "bad duration in a host")
    expect_at(out, ha_path, line_of(ha, "perhaps"), ["default", "yes or no"],
              "bad boolean")
    ll = line_of(ha, "zzz")
    expect_at(out, ha_path, ll, ["line is %d bytes" % len(long_line), "196"],
              "a line longer than 196 bytes")
    check(len([l for l in out.splitlines() if l.startswith("%s:%d:" % (ha_path, ll))]) == 1
          and "zzz" not in out,
          "the long line gives exactly one error and no spurious key error for its tail")
    check(not any(l.startswith("%s:%d:" % (ha_path, line_of(ha, "backend.http/1.1")))
                  for l in out.splitlines()),
          "a good line after the long line is read normally")

    expect_at(out, hb_path, line_of(hb, "[host alpha]"),
              ["duplicate host label", "alpha", "10-alpha.ini:1"],
              "duplicate host label across two files")
    nl = line_of(hb, "[host nothing]")
    for key in ("cert", "key", "backend"):
        expect_at(out, hb_path, nl, ["nothing", "no '%s'" % key],
                  "host without %s" % key)
    expect_at(out, hb_path, line_of(hb, "[global]"), ["[global]", "main file"],
              "[global] in a host file")
    check(not any(l.startswith("%s:%d:" % (hb_path, line_of(hb, "workers = 2")))
                  for l in out.splitlines()),
          "keys of a refused section are not reported again")
    expect_at(out, main, line_of(m, "hosts ="), ["30-dir.ini", "directory"],
              "a directory matched by the hosts glob")
    expect_at(out, main, line_of(m, "hosts ="), ["40-zero.ini", "too large"],
              "an endless file (/dev/zero) matched by the hosts glob")
    m_count = re.search(r"configuration has (\d+) errors", out)
    n_msgs = len([l for l in out.splitlines() if re.match(r"/.*:\d+: (?!warning)", l)])
    check(m_count is not None and int(m_count.group(1)) == n_msgs,
          "the error count (%s) matches the FILE:LINE messages printed (%d)"
          % (m_count and m_count.group(1), n_msgs))


def cat(out, *paths):
    with open(out, "w") as f:
        for p in paths:
            with open(p) as i:
                f.write(i.read())
    return out


def test_tls_errors(d, ca):
    """Everything the TLS context builder and listener tables find, in one run."""
    root = os.path.join(d, "tls")
    os.makedirs(root)
    port = free_port()
    other_port = free_port()
    good = ca.host_cert("good", ["good.test"])
    other = ca.host_cert("other", ["other.test"])
    # root CA -> intermediate -> leaf, with the file in the wrong order
    inter = CA(d, "Inter", parent=ca)
    leaf_crt, leaf_key = inter.issue("leaf", "leaf.test", ["DNS:leaf.test"])
    swapped = cat(os.path.join(d, "swapped.pem"), inter.crt, leaf_crt)      # inter first
    skipped = cat(os.path.join(d, "skipped.pem"), leaf_crt, ca.crt, inter.crt)  # root first
    if os.geteuid() != 0:
        unreadable = os.path.join(d, "unreadable.key")
        cat(unreadable, good[1])
        os.chmod(unreadable, 0)
    else:
        unreadable = os.path.join(d, "keydir")  # root reads any file: use a directory
        os.makedirs(unreadable)
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("not a certificate\n")

    main = os.path.join(root, "tlsfront.ini")
    write(main, ["[global]", "listen = 127.0.0.1:%d" % port, "hosts = hosts.d/*.ini",
                 "workers = 1"])
    files = {}

    def host(name, *lines):
        path = os.path.join(root, "hosts.d", name + ".ini")
        files[name] = (path, write(path, ["[host %s]" % name] + list(lines)))

    host("a-missing", "cert = %s/nonexistent.pem" % d, "key = %s" % good[1],
         "backend = 127.0.0.1:9", "names = missing.test")
    host("b-unreadable", "cert = %s" % good[0], "key = %s" % unreadable,
         "backend = 127.0.0.1:9", "names = unreadable.test")
    host("c-mismatch", "cert = %s" % good[0], "key = %s" % other[1],
         "backend = 127.0.0.1:9", "names = mismatch.test")
    host("d-swapped", "backend = 127.0.0.1:9", "cert = %s" % swapped, "key = %s" % leaf_key)
    host("e-skipped", "backend = 127.0.0.1:9", "cert = %s" % skipped, "key = %s" % leaf_key,
         "names = skipped.test")
    host("f-garbage", "cert = %s" % garbage, "key = %s" % good[1], "backend = 127.0.0.1:9",
         "names = garbage.test")
    host("g-first", "cert = %s" % good[0], "key = %s" % good[1], "backend = 127.0.0.1:9",
         "default = yes")
    host("h-second", "cert = %s" % good[0], "key = %s" % good[1], "backend = 127.0.0.1:9",
         "default = yes")
    # same name as g-first, but on another listener: no conflict
    host("i-elsewhere", "cert = %s" % good[0], "key = %s" % good[1],
         "backend = 127.0.0.1:9", "listen = 127.0.0.1:%d" % other_port, "default = yes")
    host("j-nonames", "cert = %s" % other[0], "key = %s" % other[1],
         "backend = 127.0.0.1:9", "names = x.test", "ciphers = NOSUCHCIPHER",
         "ciphersuites = TLS_NOSUCH_SUITE")
    r = tf_check(main)
    out = r.stdout + r.stderr
    check(r.returncode == 1, "-t with certificate and name errors exits 1 (got %d)"
          % r.returncode)

    def at(name, needle):
        path, lines = files[name]
        return path, line_of(lines, needle)

    expect_at(out, *at("a-missing", "cert ="), ["cert", "nonexistent.pem", "No such file"],
              "missing certificate file")
    why = "directory" if os.geteuid() == 0 else "Permission denied"
    expect_at(out, *at("b-unreadable", "key ="), ["key", unreadable, why], "unreadable key")
    expect_at(out, *at("c-mismatch", "key ="), ["key", "match"], "key/cert mismatch")
    expect_at(out, *at("d-swapped", "cert ="), ["cert", "order"],
              "intermediate before leaf")
    expect_at(out, *at("e-skipped", "cert ="), ["cert", "order"],
              "root before intermediate in the chain")
    expect_at(out, *at("f-garbage", "cert ="), ["cert", "cannot load"],
              "a certificate file without a certificate")
    expect_at(out, *at("h-second", "cert ="), ["good.test", "already claimed", "g-first"],
              "two hosts claiming the same name on one listener")
    expect_at(out, *at("h-second", "default ="), ["default host", "g-first"],
              "two default hosts on one listener")
    check(not any(files["i-elsewhere"][0] + ":" in l for l in out.splitlines()),
          "the same name and a default on another listener are no conflict")
    expect_at(out, *at("j-nonames", "ciphers ="), ["ciphers", "NOSUCHCIPHER"],
              "a cipher list OpenSSL refuses")
    expect_at(out, *at("j-nonames", "ciphersuites ="), ["ciphersuites", "TLS_NOSUCH_SUITE"],
              "a TLS 1.3 ciphersuite list OpenSSL refuses")
    m_count = re.search(r"configuration has (\d+) errors", out)
    n_msgs = len([l for l in out.splitlines() if re.match(r"/.*:\d+: (?!warning)", l)])
    check(m_count is not None and int(m_count.group(1)) == n_msgs and n_msgs >= 10,
          "the error count (%s) matches the FILE:LINE messages printed (%d)"
          % (m_count and m_count.group(1), n_msgs))


def test_options():
    r = subprocess.run([TLSFRONT, "-V"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and re.match(r"tlsfront \d+\.\d+", r.stdout) and
          "OpenSSL" in r.stdout, "-V prints the version and exits 0: %r" % r.stdout)
    r = subprocess.run([TLSFRONT, "-h"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and "usage:" in r.stdout and "-t" in r.stdout,
          "-h prints the usage on stdout and exits 0")
    r = subprocess.run([TLSFRONT, "-Z"], capture_output=True, text=True, timeout=10)
    check(r.returncode not in (0, None) and "usage:" in r.stderr,
          "an unknown option exits non-zero with the usage on stderr (rc %d)" % r.returncode)
    r = subprocess.run([TLSFRONT, "-t", "-c", "/nonexistent/tlsfront.ini"],
                       capture_output=True, text=True, timeout=10)
    msgs = [l for l in r.stderr.splitlines() if l.startswith("/nonexistent/tlsfront.ini:")]
    check(r.returncode == 1 and len(msgs) == 1 and "cannot open" in msgs[0],
          "-t with a missing main file exits 1 with one error that names it: %r" % r.stderr)


def test_both_stages(d, ca):
    """A config-loader error and a certificate error in one run: both reported,
    and the host with the loader error causes no follow-on error."""
    good = ca.host_cert("mixed", ["mixed.test"])
    main = os.path.join(d, "mixed", "tlsfront.ini")
    mlines = write(main, ["[global]", "listen = 127.0.0.1:%d" % free_port(),
                          "hosts = hosts.d/*.ini", "workers = 1", "bogus_key = 1"])
    hosts = os.path.join(d, "mixed", "hosts.d", "a.ini")
    hlines = write(hosts, [
        "[host nocert]", "cert = %s" % os.path.join(d, "missing.pem"), "key = %s" % good[1],
        "backend = 127.0.0.1:9",
        "[host badport]", "cert = %s" % good[0], "key = %s" % good[1],
        "backend = 127.0.0.1:99999"])
    r = tf_check(main)
    out = r.stderr
    check(r.returncode == 1, "a config with errors of both stages exits 1")
    expect_at(out, main, line_of(mlines, "bogus_key"), ["unknown key"], "loader error")
    expect_at(out, hosts, line_of(hlines, "99999"), ["port"], "bad port")
    expect_at(out, hosts, line_of(hlines, "missing.pem"), ["cert", "cannot open"],
              "missing certificate in the same run")
    n = len([l for l in out.splitlines() if re.match(r"^/.*:\d+: ", l)])
    check(n == 3, "exactly the 3 errors, no follow-on error from the bad host (%d): %r"
          % (n, out))


def test_unix_listen(d, ca):
    """Listening on a unix socket is refused at -t time, not at start."""
    good = ca.host_cert("ul", ["ul.test"])
    main = os.path.join(d, "ul", "tlsfront.ini")
    mlines = write(main, ["[global]", "listen = unix:%s" % os.path.join(d, "ul.sock"),
                          "hosts = hosts.d/*.ini", "workers = 1",
                          "[host ul]", "cert = %s" % good[0], "key = %s" % good[1],
                          "backend = 127.0.0.1:9"])
    r = tf_check(main)
    check(r.returncode == 1, "listen = unix:... fails the check")
    expect_at(r.stderr, main, line_of(mlines, "listen ="), ["TCP"], "unix listen refused")


def main():
    d = tmpdir()
    ca = CA(d)
    test_options()
    test_good(d, ca)
    test_parse_errors(d, ca)
    test_tls_errors(d, ca)
    test_both_stages(d, ca)
    test_unix_listen(d, ca)


run(main)
