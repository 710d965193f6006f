"""The configuration documentation agrees with the binary and with the
packaged unit.

- The [global] summary of tlsfront.ini(5) (SECTIONS) lists exactly the keys
  that tlsfront -t accepts in [global].
- The [defaults] paragraph names exactly the host keys that tlsfront -t
  refuses in [defaults] ("key 'X' is not allowed in [defaults]").
  The universe of key names is the key table of src/config.c; which ones a
  section takes is asked of the binary, one run per section.
- the default [acme] state_dir is a StateDirectory= of the unit (0700).
- etc/hosts.d/example.ini.sample's keylog_file lies in the directory that
  debian/tlsfront.service makes writable (LogsDirectory=), not under /root or
  /home (ProtectHome=yes); the man page's stats_listen UNIX socket lies in its
  RuntimeDirectory=.
"""
import os
import re
import subprocess

from tf_proc import TLSFRONT
from tf_run import SRCDIR, check, run, tmpdir


def read(*parts):
    with open(os.path.join(SRCDIR, *parts)) as f:
        return f.read()


def man_list(man, start, end):
    """The key names set in bold (.B / .BR lines) between the line start and
    the next line that begins with end (or the end of the paragraph)."""
    lines = man.splitlines()
    i = lines.index(start) + 1
    names = []
    while not lines[i].startswith((end, ".TP", ".PP", ".SH", ".SS")):
        m = re.match(r"^\.BR? ([a-z0-9_]+)\b", lines[i])
        if m:
            names.append(m.group(1))
        i += 1
    return names


def tf_check(path):
    return subprocess.run([TLSFRONT, "-t", "-c", path], capture_output=True, text=True,
                          timeout=120)


def refused_in(d, section, keys):
    """The keys of keys that tlsfront -t does not take in section (given
    each with the value 'x'): unknown there, or not allowed there."""
    path = os.path.join(d, section + ".ini")
    with open(path, "w") as f:
        f.write("[%s]\n" % section)
        for k in keys:
            f.write("%s = x\n" % k)
        f.write("[host h]\ncert = /nonexistent\nkey = /nonexistent\nbackend = 127.0.0.1:9\n")
    out = tf_check(path).stderr
    where = r"a \[host\] section" if section.startswith("host ") else r"\[%s\]" % section
    refused = set(re.findall(r"key '([a-z0-9_.]+)' is not allowed in %s" % where, out))
    refused |= set(re.findall(r"unknown key '([a-z0-9_.]+)'", out))
    check(len(out.splitlines()) > len(keys) // 2,
          "tlsfront -t reports on a [%s] full of bad values: %r" % (section, out[:300]))
    return refused


def main():
    d = tmpdir()
    table = re.findall(r'\[K_[A-Z0-9_]+\]\s*=\s*\{\s*"([a-z0-9_.]+)"', read("src", "config.c"))
    keys = sorted(set(table))
    check(len(keys) > 30 and "stats_listen" in keys and "ocsp_file" in keys,
          "the key table of src/config.c read: %d names" % len(keys))
    man = read("man", "tlsfront.ini.5")

    global_keys = set(keys) - refused_in(d, "global", keys)
    documented = man_list(man, "Keys:", "(see")
    check(len(documented) == len(set(documented)), "the [global] summary names each key once")
    check(set(documented) == global_keys,
          "the [global] summary of tlsfront.ini(5) lists the keys [global] takes: "
          "missing %s, extra %s" % (sorted(global_keys - set(documented)),
                                    sorted(set(documented) - global_keys)))

    host_keys = sorted(set(keys) - refused_in(d, "host h2", keys))
    check({"cert", "key", "backend", "names", "default", "ocsp_file"} <= set(host_keys),
          "host keys: %s" % host_keys)
    not_in_defaults = refused_in(d, "defaults", host_keys)
    documented = man_list(man, "Allowed: every host key except", "(they concern")
    check(set(documented) == not_in_defaults,
          "the [defaults] paragraph names the host keys [defaults] refuses (%s): got %s"
          % (sorted(not_in_defaults), documented))
    hk = re.search(r"^These keys may appear in a\n(.*?)^\.BR \[defaults\] \.$", man,
                   re.M | re.S)
    check(hk is not None and set(re.findall(r"^\.BR? ([a-z_]+)", hk.group(1), re.M))
          == not_in_defaults,
          "the 'Host keys' introduction names the same keys: %r" % (hk and hk.group(1)))
    tlsfront_ini = read("etc", "tlsfront.ini")
    m = re.search(r"^; here except (.*)\. The values", tlsfront_ini, re.M)
    check(m is not None and set(re.findall(r"'([a-z_]+)'", m.group(1))) == not_in_defaults,
          "etc/tlsfront.ini's [defaults] comment names the same keys: %r" % (m and m.group(0)))

    unit = read("debian", "tlsfront.service")
    logs = re.findall(r"^LogsDirectory=(\S+)$", unit, re.M)
    runtime = re.findall(r"^RuntimeDirectory=(\S+)$", unit, re.M)
    check(logs == ["tlsfront"] and runtime == ["tlsfront"],
          "the unit makes /var/log/tlsfront and /run/tlsfront: %r %r" % (logs, runtime))
    check(re.search(r"^ProtectSystem=strict$", unit, re.M) is not None and
          re.search(r"^ProtectHome=yes$", unit, re.M) is not None,
          "the unit's file system is read-only, /root and /home hidden")
    # the default [acme] state_dir is one the unit makes, 0700
    state = re.findall(r"^StateDirectory=(.+)$", unit, re.M)
    default_state = re.search(r'\[K_A_STATE_DIR\][^}]*\}\s*,\s*"([^"]+)"',
                              read("src", "config.c"))
    check(state and default_state and
          "/var/lib/" + "tlsfront/acme" == default_state.group(1) and
          "tlsfront/acme" in state[0].split() and
          re.search(r"^StateDirectoryMode=0700$", unit, re.M) is not None,
          "the unit makes the default state_dir (%r), mode 0700: %r"
          % (default_state and default_state.group(1), state))
    sample = read("etc", "hosts.d", "example.ini.sample")
    m = re.search(r"^;keylog_file = (\S+)$", sample, re.M)
    check(m is not None and os.path.dirname(m.group(1)) == "/var/log/" + logs[0],
          "the sample keylog_file is in the unit's LogsDirectory: %r" % (m and m.group(1)))
    para = re.search(r'^\.BI "stats_listen = " address\n(.*?)^\.TP$', man, re.M | re.S)
    socks = re.findall(r"unix:(/[^ )]+)", para.group(1)) if para else []
    check(socks and all(os.path.dirname(s) == "/run/" + runtime[0] for s in socks),
          "the man page's stats_listen socket is in the unit's RuntimeDirectory: %r" % socks)


run(main)
