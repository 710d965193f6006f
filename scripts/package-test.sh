#!/usr/bin/env bash
# The Debian package test: build the package offline from a clean copy of the
# tree, lint it, check the systemd unit, install it, configure one host from
# the shipped example, run the installed binary as the tlsfront user and
# fetch a page through it, then purge and check that nothing is left.
# Ends with "package-test: PASS" or "package-test: FAIL (...)"; exits non-zero
# on failure. Needs root (apt-get, dpkg, setpriv); nothing is written into
# the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

work=$(mktemp -d /tmp/tlsfront-pkgtest.XXXXXX)
chmod 755 "$work"            # the tlsfront user reads the backend's page here
step=setup
pids=()
made_policy=
installed=
keyfile=/etc/ssl/private/tlsfront-pkgtest.key
certfile=/etc/ssl/certs/tlsfront-pkgtest.pem
hostfile=/etc/tlsfront/hosts.d/x.ini

finish() {
	rc=$?
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	$SUDO rm -f "$keyfile" "$certfile"
	if [ -n "$installed" ]; then
		$SUDO apt-get purge -y -qq tlsfront >/dev/null 2>&1
	fi
	[ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
	if [ $rc -eq 0 ]; then
		rm -rf "$work"
		echo "package-test: PASS ($(( $(date +%s) - start ))s)"
	else
		echo "package-test: logs and build products kept in $work"
		echo "package-test: FAIL (step: $step, $(( $(date +%s) - start ))s)"
	fi
	exit $rc
}
trap finish EXIT

say() { echo "package-test: $*"; }
fail() { echo "package-test: $*" >&2; exit 1; }
# run a step's command with its output in a log; show the log's tail on failure
logged() {
	local log=$work/$1.log; shift
	if ! "$@" >"$log" 2>&1; then
		tail -n 80 "$log"
		# a failing test's own verdict sits above its log dump, out of
		# the tail's reach: repeat those lines last
		if grep -qE '^(FAIL|not ok|Traceback)' "$log"; then
			echo "---- failure lines in $log:"
			grep -E -A3 '^(FAIL|not ok|Traceback)' "$log" | head -n 60
		fi
		fail "'$*' failed (log above)"
	fi
}

# ---------------------------------------------------------------- tools
step=tools
# Keep package scripts from starting services (nginx and haproxy are build
# dependencies of the tests).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	made_policy=1
fi
logged apt-update $SUDO apt-get update -qq
logged apt-tools $SUDO apt-get install -y -qq --no-install-recommends \
	dpkg-dev debhelper dh-sequence-installsysusers fakeroot lintian systemd \
	util-linux iproute2 curl python3 openssl

# ---------------------------------------------------------------- clean copy
step=copy
src=$work/tlsfront-0.1.0
mkdir "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# what is committed or about to be (tracked and untracked files that
	# .gitignore does not exclude), as it is in the work tree; no build products
	git -C "$top" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
else
	cp -a "$top/." "$src/"
	rm -rf "$src/_build" "$src/demo"
fi
[ -f "$src/debian/control" ] || fail "no debian/control in the copy"
profiles=
case " ${DEB_BUILD_OPTIONS:-} " in *" nocheck "*) profiles="-P nocheck" ;; esac
logged build-deps $SUDO apt-get build-dep -y -qq $profiles "$src"

# ---------------------------------------------------------------- build
step=build
# The source package first, from the pristine copy (for lintian's source checks).
(cd "$work" && logged source dpkg-source -b "$(basename "$src")")
# The binary package without network: in a new network namespace with only
# the loopback interface up (the tests use 127.0.0.0/8), if this machine
# allows one; else as it is.
jobs=$(nproc)
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$jobs"
build="cd '$src' && dpkg-buildpackage -us -uc -b"
t0=$(date +%s)
if $SUDO unshare --net sh -c 'ip link set lo up' 2>/dev/null; then
	say "building offline (network namespace with loopback only), DEB_BUILD_OPTIONS='$DEB_BUILD_OPTIONS'"
	logged build $SUDO env DEB_BUILD_OPTIONS="$DEB_BUILD_OPTIONS" \
		unshare --net sh -c "ip link set lo up && $build"
else
	say "cannot make a network namespace here: building with the network as it is"
	logged build sh -c "$build"
fi
tests=$(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$src/test-suite.log" 2>/dev/null | tr -s ' \n' ' ' || true)
say "built in $(( $(date +%s) - t0 ))s; make check during the build: ${tests:-not run (nocheck)}"
deb=$(ls "$work"/tlsfront_0.1.0_*.deb)
changes=$(ls "$work"/tlsfront_0.1.0_*.changes)
dsc=$work/tlsfront_0.1.0.dsc
for f in debian/.debhelper debian/tlsfront debian/files debian/debhelper-build-stamp \
	debian/tlsfront.substvars _build/debian; do
	[ ! -e "$top/$f" ] || fail "a build product is in the source tree: $top/$f"
done

# ---------------------------------------------------------------- lintian
step=lintian
if ! lintian --fail-on error,warning --display-info "$changes" "$dsc" >"$work/lintian.log" 2>&1; then
	cat "$work/lintian.log"
	fail "lintian found errors or warnings"
fi
say "lintian --fail-on error,warning: passed (no errors, no warnings)"
grep -v 'running with root privileges' "$work/lintian.log" | sed 's/^/package-test: lintian: /' || true

# ---------------------------------------------------------------- the unit, statically
step=unit
unit=$src/debian/tlsfront.service
if ! systemd-analyze security --offline=true --threshold=20 "$unit" >"$work/security.log" 2>&1; then
	tail -n 30 "$work/security.log"
	fail "systemd-analyze security: exposure above 2.0"
fi
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$work/security.log")
say "systemd-analyze security --offline=true: exposure $exposure (limit 2.0)"

# ---------------------------------------------------------------- install
step=install
if dpkg -s tlsfront >/dev/null 2>&1; then
	say "tlsfront is installed already: purging it first"
	logged pre-purge $SUDO apt-get purge -y tlsfront
fi
installed=1
logged install $SUDO apt-get install -y --no-install-recommends "$deb"
dpkg -L tlsfront | sort >"$work/files.list"
for f in /usr/sbin/tlsfront /etc/tlsfront/tlsfront.ini /etc/tlsfront/hosts.d/example.ini.sample \
	/lib/systemd/system/tlsfront.service /usr/lib/sysusers.d/tlsfront.conf \
	/usr/share/man/man8/tlsfront.8.gz /usr/share/man/man5/tlsfront.ini.5.gz \
	/usr/share/doc/tlsfront/README.md.gz /usr/share/doc/tlsfront/examples/example.ini.sample; do
	[ -e "$f" ] || fail "not installed: $f"
done
grep -qx /etc/tlsfront/tlsfront.ini /var/lib/dpkg/info/tlsfront.conffiles ||
	fail "/etc/tlsfront/tlsfront.ini is not a conffile"
getent passwd tlsfront >/dev/null || fail "no tlsfront user"
id -nG tlsfront | tr ' ' '\n' | grep -qx ssl-cert || fail "tlsfront is not in group ssl-cert"
[ "$(getent passwd tlsfront | cut -d: -f7)" = /usr/sbin/nologin ] || fail "tlsfront has a login shell"

# systemd-analyze verify needs the binary and the man pages in place
if ! systemd-analyze verify /lib/systemd/system/tlsfront.service >"$work/verify.log" 2>&1 ||
	[ -s "$work/verify.log" ]; then
	cat "$work/verify.log"
	fail "systemd-analyze verify is not clean"
fi
say "systemd-analyze verify: clean"

# installing without a host: -t refuses, and the unit's condition skips it
if /usr/sbin/tlsfront -t >"$work/t0.log" 2>&1; then
	fail "tlsfront -t accepted a configuration without hosts"
fi
grep -q 'no \[host' "$work/t0.log" || { cat "$work/t0.log"; fail "unexpected -t message without hosts"; }
cond=$(sed -n 's/^\(Condition[A-Za-z]*=.*\)$/\1/p' /lib/systemd/system/tlsfront.service)
[ -n "$cond" ] || fail "the unit has no Condition"
if systemd-analyze condition "$cond" >/dev/null 2>&1; then
	fail "the unit's condition holds without a host: '$cond'"
fi
say "no host yet: tlsfront -t refuses, the unit is skipped by '$cond'"

# ---------------------------------------------------------------- one host
step=host
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A certificate the way an administrator keeps one: the key root:ssl-cert 0640
# under /etc/ssl/private, readable by tlsfront only through group ssl-cert.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj /CN=tlsfront.test -addext subjectAltName=DNS:tlsfront.test \
	-keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 ||
	{ cat "$work/openssl.log"; fail "openssl req failed"; }
$SUDO install -m 0640 -o root -g ssl-cert "$work/key.pem" "$keyfile"
$SUDO install -m 0644 -o root -g root "$work/cert.pem" "$certfile"

sed -e "s|^cert = .*|cert = $certfile|" \
	-e "s|^key = .*|key = $keyfile|" \
	-e "s|^backend = .*|backend = 127.0.0.1:$bport|" \
	-e "s|^names = .*|names = tlsfront.test|" \
	-e "s|^alpn = .*|alpn = http/1.1|" \
	-e "/^backend\.h2 = /d" \
	-e "s|^;listen = .*|listen = 127.0.0.1:$port|" \
	/etc/tlsfront/hosts.d/example.ini.sample | $SUDO tee "$hostfile" >/dev/null
for want in "cert = $certfile" "key = $keyfile" "backend = 127.0.0.1:$bport" \
	"listen = 127.0.0.1:$port"; do
	grep -qxF "$want" "$hostfile" || fail "could not set '$want' in the example host file"
done
logged check-root /usr/sbin/tlsfront -t
grep -q 'configuration OK' "$work/check-root.log" || fail "tlsfront -t did not say 'configuration OK'"
as_tlsfront=(setpriv --reuid tlsfront --regid tlsfront --init-groups --no-new-privs)
logged check-user "${as_tlsfront[@]}" /usr/sbin/tlsfront -t -c /etc/tlsfront/tlsfront.ini
systemd-analyze condition "$cond" >/dev/null 2>&1 || fail "the unit's condition fails with a host"
say "tlsfront -t: configuration OK (as root and as tlsfront); the unit's condition holds"

# ---------------------------------------------------------------- serve
step=serve
mkdir "$work/www"
echo "hello through tlsfront $$" >"$work/www/index.html"
chmod -R a+rX "$work/www"
python3 -m http.server "$bport" --bind 127.0.0.1 --directory "$work/www" \
	>"$work/backend.log" 2>&1 &
pids+=($!)
: >"$work/tlsfront.log"
"${as_tlsfront[@]}" /usr/sbin/tlsfront -c /etc/tlsfront/tlsfront.ini >>"$work/tlsfront.log" 2>&1 &
tpid=$!
pids+=($tpid)
for _ in $(seq 100); do
	grep -q "listening on 127.0.0.1:$port" "$work/tlsfront.log" && break
	kill -0 "$tpid" 2>/dev/null || { cat "$work/tlsfront.log"; fail "tlsfront exited at start"; }
	sleep 0.1
done
grep -q "listening on 127.0.0.1:$port" "$work/tlsfront.log" ||
	{ cat "$work/tlsfront.log"; fail "tlsfront does not listen on $port"; }
[ "$(ps -o user= -p "$tpid")" = tlsfront ] || fail "tlsfront does not run as user tlsfront"
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $bport), 1).close()" \
		2>/dev/null && break
	sleep 0.1
done
body=$(curl -sS --max-time 10 --cacert "$work/cert.pem" \
	--resolve "tlsfront.test:$port:127.0.0.1" "https://tlsfront.test:$port/index.html") ||
	{ cat "$work/tlsfront.log"; fail "curl through tlsfront failed"; }
[ "$body" = "hello through tlsfront $$" ] ||
	{ cat "$work/tlsfront.log"; fail "unexpected body through tlsfront: '$body'"; }
say "curl https://tlsfront.test:$port/ through the installed tlsfront (user tlsfront): '$body'"
kill -TERM "$tpid"
trc=0; wait "$tpid" || trc=$?
[ $trc -eq 0 ] || { cat "$work/tlsfront.log"; fail "tlsfront exited $trc after SIGTERM"; }
grep -q ' access ' "$work/tlsfront.log" || { cat "$work/tlsfront.log"; fail "no access line logged"; }

# ---------------------------------------------------------------- autopkgtest
step=autopkgtest
# debian/tests as autopkgtest runs them, from the source tree, against the
# installed /usr/sbin/tlsfront: "e2e" as a plain user (no needs-root), then
# the needs-root entry (the privilege tests) as root
summary() { tail -n 1 "$1" | sed 's/\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped/\1 pass, \2 fail, \3 skip/'; }
if ! setpriv --reuid nobody --regid nogroup --clear-groups \
	env HOME="$work" sh -c "cd '$src' && debian/tests/e2e" >"$work/autopkgtest.log" 2>&1; then
	grep -E '^==== .*: (FAIL|SKIP)' "$work/autopkgtest.log" || true
	tail -n 60 "$work/autopkgtest.log"
	fail "debian/tests/e2e failed against the installed binary"
fi
say "autopkgtest e2e (as nobody): $(summary "$work/autopkgtest.log")"
root_cmd=$(sed -n 's/^Test-Command: //p' "$src/debian/tests/control")
if ! (cd "$src" && env HOME="$work" sh -c "$root_cmd") >"$work/autopkgtest-root.log" 2>&1; then
	tail -n 60 "$work/autopkgtest-root.log"
	fail "'$root_cmd' failed against the installed binary"
fi
say "autopkgtest '$root_cmd' (as root): $(summary "$work/autopkgtest-root.log")"

# ---------------------------------------------------------------- purge
step=purge
$SUDO rm -f "$keyfile" "$certfile"
logged purge $SUDO apt-get purge -y tlsfront
installed=
! dpkg -s tlsfront >/dev/null 2>&1 || fail "tlsfront is still known to dpkg"
left=()
while IFS= read -r f; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	# a directory that holds other things (/., /lib, /etc, ...) or that
	# another package owns (an empty /usr/share/doc-base ...) stays
	if [ -d "$f" ]; then
		[ -z "$(ls -A "$f")" ] || continue
		! dpkg -S "$f" >/dev/null 2>&1 || continue
	fi
	left+=("$f")
done <"$work/files.list"
for f in /etc/tlsfront /etc/systemd/system/multi-user.target.wants/tlsfront.service \
	/var/lib/systemd/deb-systemd-helper-enabled/tlsfront.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/tlsfront.service; do
	if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
say "purged: nothing it installed is left, /etc/tlsfront is gone; the system user" \
	"tlsfront stays ($(getent passwd tlsfront >/dev/null && echo present || echo absent)), as for every sysusers.d user"
step=done
