#!/usr/bin/env bash
# Run tlsfront for real on a Debian 12 machine: install what the demo needs
# and is missing, build tlsfront, make a demo certificate for localhost,
# start a demo plaintext backend on 127.0.0.1:$BACKEND_PORT and tlsfront on
# https://localhost:$PORT in front of it. Runs in the foreground; Ctrl-C
# stops both.
#   try:  curl --cacert demo/demo-ca.pem https://localhost:8443/
#
# Environment:
#   PORT          where tlsfront listens, on 127.0.0.1 (default 8443)
#   BACKEND_PORT  where the demo backend listens, on 127.0.0.1 (default 8080)
#   TLSFRONT_BIN  a tlsfront binary to run (default _build/tlsfront of this
#                 tree, built here if it is not there yet)
#
# Packages: only those missing among the ones the demo needs (openssl,
# python3, curl; to build: build-essential autoconf automake pkg-config
# libssl-dev libevent-dev libinih-dev) are installed, with
# apt-get install --no-upgrade: nothing already installed is upgraded (a
# -dev package is taken at its installed library's version when apt still
# has it). With nothing missing, apt-get is not run at all. apt waits up to
# 5 minutes for another package manager to finish.
#
# Writes demo/ in this tree (certificates, config, backend.log).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
PORT=${PORT:-8443}
BACKEND_PORT=${BACKEND_PORT:-8080}

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

for v in PORT BACKEND_PORT; do
	case ${!v} in '' | *[!0-9]*) die "$v must be a port number, not '${!v}'" ;; esac
	[ "${!v}" -ge 1 ] && [ "${!v}" -le 65535 ] || die "$v must be 1 to 65535, not ${!v}"
done
[ "$PORT" != "$BACKEND_PORT" ] || die "PORT and BACKEND_PORT are both $PORT"

# ---- the ports must be free: refuse before installing or starting anything
listener_of() {	# who listens on PORT, if ss can tell
	command -v ss >/dev/null 2>&1 || return 0
	ss -Hltnp "sport = :$1" 2>/dev/null |
		sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/ (held by \1, pid \2)/p' | head -n 1
}
for v in BACKEND_PORT PORT; do
	if timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "${!v}" 2>/dev/null; then
		die "$v ${!v} is taken: something already listens on 127.0.0.1:${!v}$(listener_of "${!v}")." \
			"Stop it, or choose free ports, e.g.: PORT=9443 BACKEND_PORT=9080 bash scripts/demo.sh"
	fi
done

# ---- packages: only the missing ones, nothing upgraded
BIN=${TLSFRONT_BIN:-$top/_build/tlsfront}
if [ -n "${TLSFRONT_BIN:-}" ] && [ ! -x "$TLSFRONT_BIN" ]; then
	die "TLSFRONT_BIN=$TLSFRONT_BIN is not an executable file"
fi
need=(openssl python3 curl)
build=
if [ ! -x "$BIN" ]; then
	build=1
	need+=(build-essential autoconf automake pkg-config libssl-dev libevent-dev libinih-dev)
fi
installed() { case $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) in *" ok installed") ;; *) return 1 ;; esac; }
# pinned DEV LIB: "DEV=V" when LIB is installed at version V and apt has DEV
# at V too (else DEV): installing DEV then does not upgrade LIB
pinned() {
	local v
	if v=$(dpkg-query -W -f='${Version}' "$2" 2>/dev/null) && installed "$2" &&
		apt-cache madison "$1" 2>/dev/null | awk -v v="$v" '$3 == v { f = 1 } END { exit !f }'; then
		echo "$1=$v"
	else
		echo "$1"
	fi
}
if ! command -v dpkg-query >/dev/null; then
	say "no dpkg-query (not Debian?): not installing anything; the demo needs: ${need[*]}"
else
	missing=()
	for p in "${need[@]}"; do installed "$p" || missing+=("$p"); done
	if [ ${#missing[@]} -eq 0 ]; then
		say "the packages the demo needs are installed: nothing to install"
	else
		say "installing what is missing: ${missing[*]}"
		SUDO=
		if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
		apt=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
		# apt-get update does not wait for the lock of the package lists
		# (DPkg::Lock::Timeout is for dpkg's): retry for up to 5 minutes
		t0=$(date +%s)
		while ! out=$("${apt[@]}" update -qq 2>&1); do
			case $out in *"Could not get lock"*) ;; *) echo "$out" >&2; die "apt-get update failed" ;; esac
			[ $(( $(date +%s) - t0 )) -lt 300 ] || { echo "$out" >&2; die "apt's lock was held for 5 minutes"; }
			[ -n "${waited:-}" ] || say "waiting for another apt to release its lock"
			waited=1
			sleep 5
		done
		pkgs=()
		for p in "${missing[@]}"; do
			case $p in
			libssl-dev) pkgs+=("$(pinned "$p" libssl3)") ;;
			libevent-dev) pkgs+=("$(pinned "$p" libevent-2.1-7)") ;;
			libinih-dev) pkgs+=("$(pinned "$p" libinih1)") ;;
			*) pkgs+=("$p") ;;
			esac
		done
		upgrades=$(apt-get -s install --no-upgrade --no-install-recommends "${pkgs[@]}" 2>/dev/null |
			sed -n 's/^Inst \([^ ]*\) \[\([^]]*\)\] (\([^ ]*\).*/\1 \2 -> \3/p' | paste -sd, - | sed "s/,/, /g" || true)
		[ -z "$upgrades" ] ||
			say "note: the missing packages need newer versions of installed ones: $upgrades"
		"${apt[@]}" install -y -qq --no-upgrade --no-install-recommends "${pkgs[@]}" >/dev/null ||
			die "apt-get install ${pkgs[*]} failed"
	fi
fi

# ---- build, if there is no binary yet
if [ -n "$build" ]; then
	say "building tlsfront in _build/ (log: _build/demo-build.log)"
	mkdir -p _build
	if ! (autoreconf -fi && cd _build && ../configure && make -j"$(nproc)" tlsfront) \
		> _build/demo-build.log 2>&1; then
		tail -n 40 _build/demo-build.log >&2
		die "the build failed (log above: _build/demo-build.log)"
	fi
fi

# ---- certificates and configuration
mkdir -p demo/hosts.d demo/www
cd demo
if [ ! -f demo.pem ] || ! openssl x509 -checkend 86400 -noout -in demo.crt >/dev/null 2>&1; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout demo-ca.key -out demo-ca.pem -days 30 -subj "/CN=tlsfront demo CA" \
		-addext basicConstraints=critical,CA:TRUE 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout demo.key -out demo.csr -subj /CN=localhost 2>/dev/null
	printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > demo.ext
	openssl x509 -req -in demo.csr -CA demo-ca.pem -CAkey demo-ca.key -CAcreateserial \
		-days 30 -extfile demo.ext -out demo.crt 2>/dev/null
	cat demo.crt demo-ca.pem > demo.pem
fi
echo "Hello through tlsfront: this page came from the plaintext demo backend." > www/index.html
cat > tlsfront.ini <<INI
[global]
listen = 127.0.0.1:$PORT
hosts = hosts.d/*.ini
workers = auto
log_level = info

[defaults]
idle_timeout = 5m
INI
cat > hosts.d/demo.ini <<INI
[host demo]
cert = ../demo.pem
key = ../demo.key
backend = 127.0.0.1:$BACKEND_PORT
names = localhost
default = yes
INI

# ---- the backend, then tlsfront; both stopped on exit
backend= tf=
stop() {
	trap - INT TERM
	for p in $tf $backend; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $tf $backend; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# owns_listener PID PORT: PID holds the socket listening on 127.0.0.1:PORT
owns_listener() {
	python3 - "$1" "$2" <<'PY'
import os, socket, struct, sys
pid, port = sys.argv[1], int(sys.argv[2])
addrs = {"%08X" % struct.unpack("=I", socket.inet_aton(a))[0] for a in ("127.0.0.1", "0.0.0.0")}
inodes = set()
with open("/proc/net/tcp") as f:
    next(f)
    for line in f:
        p = line.split()
        addr, hport = p[1].split(":")
        if p[3] == "0A" and int(hport, 16) == port and addr in addrs:
            inodes.add("socket:[%s]" % p[9])
fds = "/proc/%s/fd" % pid
for fd in os.listdir(fds):
    try:
        if os.readlink(os.path.join(fds, fd)) in inodes:
            sys.exit(0)
    except OSError:
        pass
sys.exit(1)
PY
}

python3 -u -m http.server "$BACKEND_PORT" --bind 127.0.0.1 --directory www > backend.log 2>&1 &
backend=$!
for i in $(seq 100); do
	if ! kill -0 "$backend" 2>/dev/null; then
		st=0; wait "$backend" || st=$?
		backend=
		tail -n 5 backend.log >&2
		die "the demo backend (python3 -m http.server on 127.0.0.1:$BACKEND_PORT) exited" \
			"at start with status $st (its log above, demo/backend.log); tlsfront not started"
	fi
	owns_listener "$backend" "$BACKEND_PORT" 2>/dev/null && break
	[ "$i" -lt 100 ] || die "the demo backend does not listen on 127.0.0.1:$BACKEND_PORT" \
		"after 10 s (demo/backend.log); tlsfront not started"
	sleep 0.1
done
say "demo backend: http://127.0.0.1:$BACKEND_PORT/ (pid $backend, log demo/backend.log)"

"$BIN" -c tlsfront.ini -t
say "tlsfront on https://localhost:$PORT/ -> http://127.0.0.1:$BACKEND_PORT/ (Ctrl-C stops both)"
say "try: curl --cacert $top/demo/demo-ca.pem https://localhost:$PORT/"
# From here a signal (Ctrl-C) only sets a flag: the wait below returns, and
# the exit stops both (tlsfront may have stopped already: Ctrl-C reaches it
# too, and it drains and exits 0)
interrupted=
trap 'interrupted=130' INT
trap 'interrupted=143' TERM
"$BIN" -c tlsfront.ini &
tf=$!
st=0
wait -n "$tf" "$backend" || st=$?
[ -z "$interrupted" ] || exit "$interrupted"
if ! kill -0 "$tf" 2>/dev/null; then
	tf=
	die "tlsfront exited with status $st (its messages above); stopping the demo backend"
fi
backend=
tail -n 5 backend.log >&2
die "the demo backend exited with status $st (demo/backend.log); stopping tlsfront"
