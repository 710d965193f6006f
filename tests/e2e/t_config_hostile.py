"""Hostile and malformed configuration files, checked with `tlsfront -t -c FILE`.

Each bad input must give exit status 1 and a specific `FILE:LINE: message`
(the file, the line, and the words that say what is wrong), never a crash:
no signal, no sanitizer report, no hang (every run has a time limit). The
inputs: binary bytes, NUL bytes, byte order marks (UTF-8: accepted; UTF-16:
one clear error), CR LF line ends (accepted, values without the CR: a
tlsfront started on such files routes and serves), a 10 MB line and a 3 MB
line, lines around the 196-byte limit of libinih, empty values, huge and
negative numbers, keys outside any section, duplicate sections, labels and
keys, broken section headers, directories, /dev/zero, a FIFO and a file too
large as certificate, key, CA, CRL, OCSP and ticket key files, a missing
hosts directory, empty and comment-only files. Last, a live SIGHUP reload
onto a FIFO certificate and ticket_key_file = /dev/zero (which hung the main
process before tls.c refused non-regular files) fails with FILE:LINE in the
log, the old configuration keeps serving, and the next good reload works.
(A reload onto a host file with a plain error is in t_reload.py.)"""
import glob
import os
import re
import signal
import subprocess

from tf_clients import http_get
from tf_peers import HttpBackend, pattern_bytes
from tf_pki import CA
from tf_proc import TLSFRONT, Tlsfront
from tf_run import Fail, check, free_port, run, tmpdir

# An empty main file takes the default hosts glob, SYSCONFDIR/tlsfront/hosts.d/*.ini:
# on a machine where tlsfront is installed and configured (the package's
# autopkgtest) it finds real hosts, so the "no host" cases cannot be checked.
DEFAULT_HOSTS = (glob.glob("/etc/tlsfront/hosts.d/*.ini") +
                 glob.glob("/usr/local/etc/tlsfront/hosts.d/*.ini"))

CRASH_MARKERS = ("Sanitizer", "runtime error:", "Traceback", "Segmentation fault",
                 "core dumped", "Aborted")


class Result:
    def __init__(self, what, proc):
        self.what = what
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.out = self.stdout + proc.stderr.decode("utf-8", "replace")

    def at(self, path, line=None):
        """The messages at path:line (line None: at path without a line)."""
        prefix = "%s: " % path if line is None else "%s:%d: " % (path, line)
        return [l for l in self.out.splitlines() if l.startswith(prefix)]

    def lines_of(self, path):
        """The line numbers of the messages at path."""
        rx = re.compile(re.escape(path) + r":(\d+): ")
        return sorted({int(m.group(1)) for m in map(rx.match, self.out.splitlines()) if m})


def tf_check(main, what):
    try:
        p = subprocess.run([TLSFRONT, "-t", "-c", main], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise Fail("%s: tlsfront -t did not finish within 30 s (it hangs)" % what)
    r = Result(what, p)
    check(r.rc in (0, 1) and not any(m in r.out for m in CRASH_MARKERS),
          "%s: -t ends normally, no crash (exit %d)" % (what, r.rc))
    return r


def rejected(r):
    check(r.rc == 1 and "configuration OK" not in r.stdout,
          "%s: -t exits 1 (got %d)" % (r.what, r.rc))


def accepted(r):
    check(r.rc == 0 and r.stdout.strip() == "configuration OK",
          "%s: -t accepts it (exit %d: %r)" % (r.what, r.rc, r.out[-600:]))


def expect_at(r, path, line, words, what):
    """Some message of r is at path:line and contains every word of words."""
    msgs = r.at(path, line)
    check(any(all(w.lower() in m.lower() for w in words) for m in msgs),
          "%s: %s at %s:%s (%s) -- got %r" % (r.what, what, os.path.basename(path), line,
                                            ", ".join(words), msgs or r.out[-800:]))


def write(path, data):
    """Write data (bytes, or a list of lines joined with LF) to path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, list):
        data = "".join(l + "\n" for l in data)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)
    return path


class Env:
    """A directory per case: DIR/tlsfront.ini and DIR/hosts.d/*.ini."""

    def __init__(self, d, cert, port):
        self.d = d
        self.cert = cert
        self.port = port

    def glob_lines(self, extra=()):
        return ["[global]", "listen = 127.0.0.1:%d" % self.port, "hosts = hosts.d/*.ini",
                "workers = 1"] + list(extra)

    def host_lines(self, label, extra=(), names=None):
        lines = ["[host %s]" % label, "cert = %s" % self.cert[0], "key = %s" % self.cert[1],
                 "backend = 127.0.0.1:9"]
        if names:
            lines.append("names = %s" % names)
        return lines + list(extra)

    def case(self, name, main=None, hosts=None, good_host=True):
        """Write a case; returns (main path, {file name: path})."""
        root = os.path.join(self.d, name)
        main_path = write(os.path.join(root, "tlsfront.ini"),
                          main if main is not None else self.glob_lines())
        paths = {}
        if good_host:
            write(os.path.join(root, "hosts.d", "00-good.ini"), self.host_lines("good"))
        for fname, data in (hosts or {}).items():
            paths[fname] = write(os.path.join(root, "hosts.d", fname), data)
        os.makedirs(os.path.join(root, "hosts.d"), exist_ok=True)
        return main_path, paths


def test_binary(env):
    # a crafted file: binary junk lines and a binary section header
    main, h = env.case("binary", hosts={"bin.ini": b"[host bin]\n"
                                        b"\xde\xad\xbe\xef\x80\xff\n"      # 2
                                        b"\x89PNG\r\n\x1a\n"              # 3, 4
                                        b"[\xff\xfe]\n"                    # 5
                                        b"backend = 127.0.0.1:1\n"})       # 6
    r = tf_check(main, "binary lines")
    rejected(r)
    p = h["bin.ini"]
    expect_at(r, p, 2, ["expected 'key = value'"], "a binary line")
    expect_at(r, p, 3, ["expected 'key = value'"], "a PNG signature")
    expect_at(r, p, 5, ["unknown section"], "a binary section name")
    check(6 not in r.lines_of(p), "binary: keys under a refused header are not reported")

    # 64 KiB of pseudo-random bytes (NULs, long lines, anything)
    data = pattern_bytes(65536, b"config-hostile")
    main, h = env.case("random", hosts={"random.ini": data})
    r = tf_check(main, "64 KiB of random bytes")
    rejected(r)
    nlines = data.count(b"\n") + 1
    lines = r.lines_of(h["random.ini"])
    check(lines and all(1 <= n <= nlines for n in lines),
          "random bytes: errors at lines of that file, all within its %d lines (%d..%d)"
          % (nlines, lines[0] if lines else 0, lines[-1] if lines else 0))


def test_nul(env):
    main, h = env.case("nul", hosts={"nul.ini": b"[host nul]\n"
                                     b"cert = %s\n" % env.cert[0].encode() +          # 2
                                     b"key = %s\n" % env.cert[1].encode() +           # 3
                                     b"backend = 127.0.0.1:9\x00junk\n"               # 4
                                     b"frob = 1\n"                                     # 5
                                     b"[host n\x00ul2]\n"                              # 6
                                     b"bogus = 2\n"})                                  # 7
    r = tf_check(main, "NUL bytes")
    rejected(r)
    p = h["nul.ini"]
    expect_at(r, p, 4, ["NUL byte"], "a NUL byte in a value")
    expect_at(r, p, 5, ["unknown key", "frob"], "the line after a NUL line is read")
    expect_at(r, p, 6, ["NUL byte"], "a NUL byte in a section header")
    check(7 not in r.lines_of(p), "NUL: keys under a refused header are not reported")
    check("junk" not in r.out, "NUL: nothing after the NUL byte is taken as a value")


def test_bom(env):
    bom = b"\xef\xbb\xbf"
    main, _ = env.case("bom", main=bom + "\n".join(env.glob_lines()).encode() + b"\n",
                       good_host=False,
                       hosts={"bom.ini": bom + "\r\n".join(env.host_lines("bom")).encode()
                              + b"\r\n"})
    r = tf_check(main, "UTF-8 byte order marks (main file; host file with CR LF)")
    accepted(r)

    utf16 = "\ufeff" + "\r\n".join(env.glob_lines()) + "\r\n"
    main, _ = env.case("utf16", main=utf16.encode("utf-16-le"))
    r = tf_check(main, "a UTF-16 main file")
    rejected(r)
    expect_at(r, main, 1, ["UTF-16", "UTF-8"], "a UTF-16 file")
    check(r.lines_of(main) == [1], "UTF-16: one error, at line 1, not one per line (%r)"
          % r.lines_of(main))

    main, h = env.case("bom-late", hosts={"late.ini": env.host_lines("late", names="late.test")
                                          [:2] + ["\ufeffkey = %s" % env.cert[1]]
                                          + env.host_lines("x")[3:]})
    r = tf_check(main, "a byte order mark on line 3")
    rejected(r)
    expect_at(r, h["late.ini"], 3, ["unknown key"], "a BOM that does not start the file")


def test_crlf(env, ca_dir, cert):
    # a bad value on a CR LF line is quoted without the CR
    main, _ = env.case("crlf-bad", main="\r\n".join(env.glob_lines() + ["log_level = loud"])
                       + "\r\n")
    r = tf_check(main, "a bad value on a CR LF line")
    rejected(r)
    expect_at(r, main, 5, ["log_level", "'loud'"], "the value, without its CR")
    check("loud\r" not in r.out, "crlf: no CR in the quoted value")

    # lone CR (classic Mac): the whole file is one line
    main, _ = env.case("cr-only", main="\r".join(env.glob_lines()) + "\r")
    r = tf_check(main, "CR-only line ends")
    rejected(r)
    expect_at(r, main, 1, ["after section header"], "a file with CR line ends is one line")

    # a whole configuration with CR LF: accepted, and served
    be = HttpBackend("crlf")
    tf = Tlsfront(os.path.join(ca_dir, "crlf-live"), {
        "crlf": {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % be.port,
                 "names": "crlf.test", "alpn": "http/1.1"}}, start=False)
    for path in (tf.main, os.path.join(tf.d, "hosts.d", "crlf.ini")):
        with open(path, "rb") as f:
            text = f.read()
        with open(path, "wb") as f:
            f.write(text.replace(b"\n", b"\r\n"))
    r = Result("CR LF", subprocess.run([TLSFRONT, "-t", "-c", tf.main], capture_output=True,
                                       timeout=30))
    accepted(r)
    tf.start()
    check(http_get(tf.port, "crlf.test", "/crlf") == b"backend crlf /crlf\n",
          "crlf: names, cert, key and backend read without CR: crlf.test is served")
    tf.stop()
    be.close()


def test_long_lines(env):
    # 10 MB in one line: the file is over the 4 MiB limit; 3 MB: the line is
    main, h = env.case("huge-line", hosts={
        "big.ini": b"[host big]\nnames = " + b"a" * (10 * 1024 * 1024) + b"\n",
        "line.ini": b"[host line]\nnames = " + b"b" * (3 * 1024 * 1024) + b"\nfrob = 1\n"})
    r = tf_check(main, "a 10 MB line and a 3 MB line")
    rejected(r)
    hosts_line = env.glob_lines().index("hosts = hosts.d/*.ini") + 1
    expect_at(r, main, hosts_line, [h["big.ini"], "too large", "4194304"],
              "a file over 4 MiB, reported at the hosts line")
    expect_at(r, h["line.ini"], 2, ["line is %d bytes" % (8 + 3 * 1024 * 1024), "196"],
              "a 3 MB line")
    expect_at(r, h["line.ini"], 3, ["unknown key", "frob"], "the line after it is read")
    check(len(r.out) < 100000, "a long line is not echoed back (%d bytes of output)"
          % len(r.out))

    # around libinih's 200-byte buffer: 196 bytes pass, 197 and more do not
    lines = env.host_lines("edge", names="edge.test") + [
        "; " + "x" * 194,                # 6: 196 bytes
        "; " + "x" * 195,                # 7: 197
        "; " + "x" * 197,                # 8: 199
        "; " + "x" * 198,                # 9: 200
        "; " + "x" * 199,                # 10: 201
        "alpn = " + "h" * 189,           # 11: 196, a valid protocol name
        "alpn = " + "h" * 190,           # 12: 197
        "frob = 1",                      # 13
        "; " + "y" * 194 + "\r",         # 14: 196 and a CR
    ]
    assert len(lines[5]) == 196 and len(lines[10]) == 196 and len(lines[11]) == 197
    main, h = env.case("edge", hosts={"edge.ini": lines})
    r = tf_check(main, "lines of 196..201 bytes")
    rejected(r)
    p = h["edge.ini"]
    for n, length in ((7, 197), (8, 199), (9, 200), (10, 201), (12, 197)):
        expect_at(r, p, n, ["line is %d bytes" % length, "the limit is 196"],
                  "a %d-byte line" % length)
    expect_at(r, p, 13, ["unknown key", "frob"], "the line after long lines is read")
    check(r.lines_of(p) == [7, 8, 9, 10, 12, 13],
          "196-byte lines (with or without CR) pass, no spurious error for a long line's "
          "tail: %r" % r.lines_of(p))


def test_empty_values(env):
    main, h = env.case("empty", main=env.glob_lines(["log_level ="]), hosts={"e.ini": [
        "[host e]",                      # 1
        "cert = %s" % env.cert[0],       # 2
        "key = %s" % env.cert[1],        # 3
        "backend =",                     # 4
        "names = ",                      # 5
        "= 127.0.0.1:9",                 # 6
        "   =   ",                       # 7
        "backend.h2 =",                  # 8
    ]})
    r = tf_check(main, "empty values")
    rejected(r)
    expect_at(r, main, 5, ["'log_level' has an empty value"], "an empty value in [global]")
    p = h["e.ini"]
    expect_at(r, p, 4, ["'backend' has an empty value"], "an empty backend")
    expect_at(r, p, 5, ["'names' has an empty value"], "an empty list")
    expect_at(r, p, 6, ["expected 'key = value'"], "a value without a key")
    expect_at(r, p, 7, ["expected 'key = value'"], "a lone '='")
    expect_at(r, p, 8, ["'backend.h2' has an empty value"], "an empty backend.PROTO")


def test_numbers(env):
    big = "18446744073709551616"    # 2^64
    main, h = env.case("numbers", main=env.glob_lines([
        "max_connections = %s" % big,             # 5
        "shutdown_timeout = %ss" % big,           # 6
        "ticket_key_rotation = -1h",              # 7
        "[defaults]",                             # 8
        "idle_timeout = 4294967296ms",            # 9: 2^32 ms
    ]), hosts={"n.ini": [
        "[host n]",                               # 1
        "cert = %s" % env.cert[0],                # 2
        "key = %s" % env.cert[1],                 # 3
        "backend = 127.0.0.1:9",                  # 4
        "max_connections = -1",                   # 5
        "client_verify_depth = 1e9",              # 6
        "session_cache_size = 1000001",           # 7
        "proxy_client_cert_tlv = 0x1E0",          # 8
        "handshake_timeout = -5s",                # 9
        "connect_timeout = 1e9",                  # 10
        "max_connections = 0",                    # 11: a duplicate
    ]})
    r = tf_check(main, "huge and negative numbers")
    rejected(r)
    expect_at(r, main, 5, ["max_connections", "expected a number 0..10000000", big],
              "2^64 connections")
    expect_at(r, main, 6, ["shutdown_timeout", "bad duration"], "a 2^64 s duration")
    expect_at(r, main, 7, ["ticket_key_rotation", "bad duration", "-1h"],
              "a negative duration")
    expect_at(r, main, 9, ["idle_timeout", "bad duration"], "2^32 ms (overflows 32 bits)")
    p = h["n.ini"]
    expect_at(r, p, 5, ["max_connections", "expected a number", "'-1'"], "-1 connections")
    expect_at(r, p, 6, ["client_verify_depth", "expected a number 1..16", "'1e9'"],
              "1e9 as a depth")
    expect_at(r, p, 7, ["session_cache_size", "0..1000000"], "one over the bound")
    expect_at(r, p, 8, ["proxy_client_cert_tlv", "224..239", "0x1E0"], "a TLV type over 0xEF")
    expect_at(r, p, 9, ["handshake_timeout", "bad duration"], "a negative timeout")
    expect_at(r, p, 10, ["connect_timeout", "bad duration", "1e9"], "1e9 as a duration")
    expect_at(r, p, 11, ["duplicate key 'max_connections'", "line 5"], "a duplicate key")
    for value in (big, "-1", "0", "257", "1e9", "4x"):
        main, _ = env.case("workers-%s" % value, main=env.glob_lines()[:3]
                           + ["workers = %s" % value])
        r = tf_check(main, "workers = %s" % value)
        rejected(r)
        expect_at(r, main, 4, ["workers", "1..256"], "workers = %r" % value)


def test_sections(env):
    # a key before any section, in the main file and in a host file
    main, h = env.case("outside", main=["workers = 2"] + env.glob_lines(),
                       hosts={"o.ini": ["backend = 127.0.0.1:9"] + env.host_lines("o")})
    r = tf_check(main, "keys outside any section")
    rejected(r)
    expect_at(r, main, 1, ["'workers' outside any section"], "a key before [global]")
    expect_at(r, h["o.ini"], 1, ["'backend' outside any section"], "a key before [host]")

    # duplicates: sections, labels (one file and across files), keys
    main, h = env.case("dups", main=env.glob_lines([
        "workers = 2",                    # 5
        "[defaults]",                     # 6
        "[global]",                       # 7
        "listen = 127.0.0.1:1",           # 8: not reported (its section was refused)
        "[defaults]",                     # 9
    ]), hosts={"d1.ini": env.host_lines("dup", names="dup.test") + [
        "backend.h2 = 127.0.0.1:1",       # 6
        "alpn = h2",                      # 7
        "backend.h2 = 127.0.0.1:2",       # 8
        "[host dup]",                     # 9
    ], "d2.ini": ["[host dup]", "[host good]"]})
    r = tf_check(main, "duplicate sections, labels and keys")
    rejected(r)
    expect_at(r, main, 5, ["duplicate key 'workers'", "line 4"], "a duplicate key")
    expect_at(r, main, 7, ["duplicate section [global]", "line 1"], "[global] twice")
    expect_at(r, main, 9, ["duplicate section [defaults]", "line 6"], "[defaults] twice")
    check(8 not in r.lines_of(main), "keys of a duplicate section are not reported")
    p1, p2 = h["d1.ini"], h["d2.ini"]
    expect_at(r, p1, 8, ["duplicate key 'backend.h2'", "line 6"], "backend.h2 twice")
    expect_at(r, p1, 9, ["duplicate host label 'dup'", "d1.ini:1"], "a label twice in a file")
    expect_at(r, p2, 1, ["duplicate host label 'dup'", "d1.ini:1"], "a label in two files")
    expect_at(r, p2, 2, ["duplicate host label 'good'", "00-good.ini:1"],
              "the label of another file's host")

    # broken section headers
    main, h = env.case("headers", hosts={"h.ini": [
        "[host a",                        # 1
        "cert = /nonexistent",            # 2: under a refused header
        "[host b] trailing",              # 3
        "[]",                             # 4
        "[host ]",                        # 5
        "[host a b]",                     # 6
        "[",                              # 7
        "]",                              # 8
        "[host " + "l" * 45 + "]",        # 9: 50 bytes between the brackets
        "[global",                        # 10
    ]})
    r = tf_check(main, "broken section headers")
    rejected(r)
    p = h["h.ini"]
    expect_at(r, p, 1, ["section header without ']'"], "an unterminated header")
    check(2 not in r.lines_of(p), "a key under an unterminated header is not reported")
    expect_at(r, p, 3, ["unexpected text after section header"], "text after ']'")
    expect_at(r, p, 4, ["unknown section []"], "an empty header")
    expect_at(r, p, 5, ["unknown section [host ]"], "a host without a label")
    expect_at(r, p, 6, ["bad host label 'a b'"], "a label with a blank")
    expect_at(r, p, 7, ["section header without ']'"], "a lone '['")
    expect_at(r, p, 8, ["expected 'key = value'"], "a lone ']'")
    expect_at(r, p, 9, ["section name is 50 bytes long", "49"], "a 50-byte section name")
    expect_at(r, p, 10, ["section header without ']'"], "an unterminated [global")


def test_special_files(env, d):
    adir = os.path.join(d, "a-directory")
    os.makedirs(adir)
    fifo = os.path.join(d, "a-fifo")
    os.mkfifo(fifo)
    big = os.path.join(d, "big.pem")
    with open(big, "wb") as f:
        f.truncate(17 * 1024 * 1024)     # sparse: over the 16 MiB limit, costs nothing
    cert, key = env.cert
    mtls = ["client_verify = required"]
    hosts = {
        # name: (lines after [host NAME], the key whose line is reported, words)
        "h01": (["cert = %s" % adir, "key = %s" % key], "cert", ["is a directory"]),
        "h02": (["cert = %s" % cert, "key = %s" % adir], "key", ["is a directory"]),
        "h03": (["cert = /dev/zero", "key = %s" % key], "cert", ["/dev/zero",
                                                                 "not a regular file"]),
        "h04": (["cert = %s" % cert, "key = /dev/zero"], "key", ["/dev/zero",
                                                                 "not a regular file"]),
        "h05": (["cert = %s" % fifo, "key = %s" % key], "cert", ["not a regular file"]),
        "h06": (["cert = %s" % cert, "key = %s" % fifo], "key", ["not a regular file"]),
        "h07": (["cert = %s" % big, "key = %s" % key], "cert", ["too large", "17825792"]),
        "h08": (["cert = %s" % cert, "key = %s" % key, "client_ca = %s" % adir] + mtls,
                "client_ca", ["is a directory"]),
        "h09": (["cert = %s" % cert, "key = %s" % key, "client_ca = /dev/zero"] + mtls,
                "client_ca", ["not a regular file"]),
        "h10": (["cert = %s" % cert, "key = %s" % key, "client_ca = %s" % cert,
                 "client_crl = /dev/zero"] + mtls, "client_crl", ["not a regular file"]),
        "h11": (["cert = %s" % cert, "key = %s" % key, "client_ca = %s" % cert,
                 "client_crl = %s" % fifo] + mtls, "client_crl", ["not a regular file"]),
        "h12": (["cert = %s" % cert, "key = %s" % key, "ocsp_file = /dev/zero"],
                "ocsp_file", ["not a regular file"]),
    }
    files = {}
    for name, (lines, _, _) in hosts.items():
        files[name + ".ini"] = ["[host %s]" % name, "backend = 127.0.0.1:9",
                                "names = %s.test" % name] + lines
    main, h = env.case("special", hosts=files)
    r = tf_check(main, "directories, /dev/zero, a FIFO and a 17 MiB file as TLS files")
    rejected(r)
    for name, (lines, key_name, words) in hosts.items():
        path = h[name + ".ini"]
        n = next(i for i, l in enumerate(files[name + ".ini"]) if l.startswith(key_name + " ="))
        expect_at(r, path, n + 1, [key_name + ":"] + words,
                  "%s of host %s" % (key_name, name))

    # ticket_key_file (read once every host loaded, so a case of its own):
    # /dev/zero made its line reader spin for ever
    for name, path in (("zero", "/dev/zero"), ("fifo", fifo), ("dir", adir), ("big", big)):
        main, _ = env.case("ticket-" + name, main=env.glob_lines(["ticket_key_file = %s" % path]))
        r = tf_check(main, "ticket_key_file = %s" % path)
        rejected(r)
        expect_at(r, main, 5, ["ticket_key_file:", path], "ticket_key_file = %s" % path)
        check(any(w in " ".join(r.at(main, 5)) for w in
                  ("not a regular file", "is a directory", "too large")),
              "ticket_key_file = %s: says what is wrong with it" % path)

    # the main file itself: a directory, /dev/zero, a FIFO
    r = tf_check(adir, "a directory as the main file")
    rejected(r)
    check(any("is a directory" in m for m in r.at(adir)),
          "a directory as the main file: 'DIR: DIR is a directory' (%r)" % r.out)
    r = tf_check("/dev/zero", "/dev/zero as the main file")
    rejected(r)
    check(any("too large" in m for m in r.at("/dev/zero")),
          "/dev/zero as the main file: too large, read no further (%r)" % r.out)
    r = tf_check(fifo, "a FIFO without a writer as the main file")
    rejected(r)
    # read as an empty file: the default hosts glob applies, which on a
    # machine with tlsfront installed and configured finds real hosts
    if not DEFAULT_HOSTS:
        check(any("no [host LABEL] section" in m for m in r.at(fifo)),
              "a FIFO as the main file reads as empty (%r)" % r.out)


def test_missing_and_empty(env):
    # a hosts glob whose directory does not exist: no host file, no host
    main, _ = env.case("nodir", main=env.glob_lines()[:2] + ["hosts = nowhere.d/*.ini"],
                       good_host=False)
    r = tf_check(main, "a missing hosts directory and no host")
    rejected(r)
    want = "no [host LABEL] section found (hosts = %s)" % os.path.join(
        os.path.dirname(main), "nowhere.d/*.ini")
    check(any(want in m for m in r.at(main)),
          "a missing hosts directory: 'MAIN: %s' (%r)" % (want, r.out))
    # ... which is fine when the main file has a host
    main, _ = env.case("nodir-ok", main=env.glob_lines()[:2] + ["hosts = nowhere.d/*.ini"]
                       + env.host_lines("inmain"), good_host=False)
    accepted(tf_check(main, "a missing hosts directory, a host in the main file"))

    for name, data in (("empty", b""), ("comments", b"; only\n# comments\n   ; here\n\n")):
        if DEFAULT_HOSTS:
            print("# a main file that is %s: not checked, the default hosts glob finds "
                  "this machine's own hosts (%s)" % (name, DEFAULT_HOSTS[0]))
            continue
        main, _ = env.case("main-" + name, main=data, good_host=False)
        r = tf_check(main, "a main file that is %s" % name)
        rejected(r)
        check(any("no [host LABEL] section found" in m for m in r.at(main)),
              "a main file that is %s: no host, reported for that file (%r)" % (name, r.out))
        check(len([l for l in r.out.splitlines() if l.startswith("/")]) == 1,
              "a main file that is %s: that one error only" % name)
        # empty and comment-only host files next to a good one are fine
        main, _ = env.case("host-" + name, hosts={"x.ini": data})
        accepted(tf_check(main, "a host file that is %s" % name))


def test_reload(d, cert):
    """Reloads onto files that never end or never open: refused, old config serves."""
    be = HttpBackend("live")
    tf = Tlsfront(os.path.join(d, "reload"), {
        "live": {"cert": cert[0], "key": cert[1], "backend": "127.0.0.1:%d" % be.port,
                 "names": "live.test"}})
    check(http_get(tf.port, "live.test", "/before") == b"backend live /before\n",
          "reload: serving before")
    with open(tf.main) as f:
        good_main = f.read()
    fifo = os.path.join(d, "reload-fifo")
    os.mkfifo(fifo)
    # 1. a host file whose certificate is a FIFO (fopen() would block)
    bad = write(os.path.join(tf.d, "hosts.d", "bad.ini"), [
        "[host bad]", "cert = %s" % fifo, "key = %s" % cert[1], "backend = 127.0.0.1:9",
        "names = bad.test"])
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reload failed", what="the failed reload onto a FIFO")
    check("%s:2: cert: %s is not a regular file" % (bad, fifo) in tf.log(),
          "reload: a FIFO certificate refused at its FILE:LINE")
    check(http_get(tf.port, "live.test", "/after1") == b"backend live /after1\n",
          "reload: the old configuration keeps serving")
    os.remove(bad)
    # 2. ticket_key_file = /dev/zero (the key reader spun on it for ever)
    with open(tf.main, "a") as f:
        f.write("ticket_key_file = /dev/zero\n")
    main_line = good_main.count("\n") + 1
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reload failed", count=2, what="the failed reload onto /dev/zero")
    check("%s:%d: ticket_key_file: /dev/zero is not a regular file" % (tf.main, main_line)
          in tf.log(), "reload: ticket_key_file = /dev/zero refused at its FILE:LINE")
    check(http_get(tf.port, "live.test", "/after2") == b"backend live /after2\n",
          "reload: the old configuration still serves")
    with open(tf.main, "w") as f:
        f.write(good_main)
    n = len(re.findall(r"reloaded: ", tf.log()))
    tf.proc.send_signal(signal.SIGHUP)
    tf.wait_log(r"reloaded: ", count=n + 1, what="the next, good, reload")
    check(http_get(tf.port, "live.test", "/again") == b"backend live /again\n",
          "reload: the main process is not stuck; a good reload works and serves")
    check(tf.stop() == 0, "reload: tlsfront stops cleanly")
    be.close()


def main():
    d = tmpdir()
    ca = CA(d)
    cert = ca.host_cert("h", ["h.test"])
    env = Env(d, cert, free_port())
    test_binary(env)
    test_nul(env)
    test_bom(env)
    test_crlf(env, d, cert)
    test_long_lines(env)
    test_empty_values(env)
    test_numbers(env)
    test_sections(env)
    test_special_files(env, d)
    test_missing_and_empty(env)
    test_reload(d, cert)


run(main)
