#!/usr/bin/env bash
# Soak test: DURATION seconds (default 1800) of mixed load against tlsfront
# (2 workers) in front of nginx, with a SIGHUP reload every 60 s; RSS and fd
# counts of the main process and of each worker sampled every 10 s into a
# CSV; at the end a verdict (flat memory and descriptors, no unexpected
# worker restart, no failed reload, no error from any load generator).
# Exits 0 on PASS, 1 on FAIL, 2 on a setup problem. Not part of `make check`.
#
#   bench/soak.sh [DURATION_SECONDS]
#
# Environment: SOAK_DURATION (seconds, when not given as the argument; at
# least 60), TLSFRONT_BIN (default: _build/tlsfront of this tree),
# SOAK_DIR (where everything is kept; default a new /tmp/tlsfront-soak.*;
# as root, nginx's workers run as nobody and must be able to reach it),
# SOAK_NEWCONN_RATE (new connections/s, default 40), SOAK_KA_RPS (keep-alive
# requests/s per h2load client, 4 clients each for h2 and HTTP/1.1, default
# 25), SOAK_BULK_RATE (curl --limit-rate for the 50 MB downloads, default
# 25M), SOAK_SLOW_CLIENTS (default 4). See bench/SOAK.md.
#
# Every client session is shorter than shutdown_timeout (30 s): h2load runs
# in rounds of at most 20 s, a slow client reads 1 MiB at 64 KiB/s (16 s)
# and hangs up, a download takes ~2 s. So after each reload the old workers
# drain and exit by themselves; one that must be killed is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
DURATION=${1:-${SOAK_DURATION:-1800}}
BIN=${TLSFRONT_BIN:-$top/_build/tlsfront}
WORKERS=2
INTERVAL=10
RELOAD_EVERY=60
NEWCONN_RATE=${SOAK_NEWCONN_RATE:-40}
KA_RPS=${SOAK_KA_RPS:-25}
BULK_RATE=${SOAK_BULK_RATE:-25M}
SLOW_CLIENTS=${SOAK_SLOW_CLIENTS:-4}
LARGE=52428800
SMALL=2048
client="python3 $here/soak_client.py"

case $DURATION in '' | *[!0-9]*) echo "usage: $0 [DURATION_SECONDS] (or SOAK_DURATION=SECONDS)" >&2; exit 2 ;; esac
if [ "$DURATION" -lt 60 ]; then echo "soak: DURATION must be at least 60 s" >&2; exit 2; fi
[ -x "$BIN" ] || { echo "soak: no tlsfront binary at $BIN (build it, or set TLSFRONT_BIN)" >&2; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for t in "$NGINX" h2load curl python3 openssl; do
	command -v "$t" >/dev/null || { echo "soak: $t is missing (bash scripts/deps.sh)" >&2; exit 2; }
done

if [ -n "${SOAK_DIR:-}" ]; then
	D=$SOAK_DIR
else
	D=$(mktemp -d /tmp/tlsfront-soak.XXXXXX)
	# mktemp makes it 0700: nginx's workers (user nobody when started as
	# root) could not reach www/ in it
	chmod 0755 "$D"
fi
mkdir -p "$D/www" "$D/hosts.d" "$D/nginx"
cd "$D"
echo "soak: ${DURATION}s, everything in $D"

pids=()
cleanup() {	# what this script started, and the children of its load loops
	for p in "${pids[@]}"; do
		pkill -TERM -P "$p" 2>/dev/null || true
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- certificates, content, ports
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
	-out ca.pem -days 30 -subj "/CN=tlsfront soak CA" \
	-addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout soak.key \
	-out soak.csr -subj /CN=soak.test 2>/dev/null
printf 'subjectAltName=DNS:soak.test\nbasicConstraints=CA:FALSE\n' > soak.ext
openssl x509 -req -in soak.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
	-extfile soak.ext -out soak.crt 2>/dev/null
cat soak.crt ca.pem > soak.pem
head -c $SMALL /dev/urandom > www/small
head -c $LARGE /dev/urandom > www/large
read -r P_TLS P_H1 P_H2 < <($client ports 3)

# ---- nginx: HTTP/1.1 on P_H1, h2c (prior knowledge) on P_H2
cat > nginx/nginx.conf <<EOF
daemon off; worker_processes 2; pid $D/nginx/nginx.pid; error_log $D/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path $D/nginx; proxy_temp_path $D/nginx; fastcgi_temp_path $D/nginx;
  uwsgi_temp_path $D/nginx; scgi_temp_path $D/nginx;
  server { listen 127.0.0.1:$P_H1; root $D/www; }
  server { listen 127.0.0.1:$P_H2 http2; root $D/www; }
}
EOF
"$NGINX" -c "$D/nginx/nginx.conf" -p "$D/nginx" >/dev/null 2>&1 &
pids+=("$!")

# ---- tlsfront
cat > tlsfront.ini <<EOF
[global]
listen = 127.0.0.1:$P_TLS
hosts = hosts.d/*.ini
workers = $WORKERS
log = stderr
log_level = info
shutdown_timeout = 30s
EOF
cat > hosts.d/soak.ini <<EOF
[host soak]
cert = ../soak.pem
key = ../soak.key
backend = 127.0.0.1:$P_H1
alpn = h2 http/1.1
backend.h2 = 127.0.0.1:$P_H2
default = yes
EOF
"$BIN" -t -c tlsfront.ini >/dev/null
"$BIN" -c tlsfront.ini > tlsfront.log 2>&1 &
MAIN=$!
pids+=("$MAIN")
printf '{"workers": %d, "interval": %d, "reload_every": %d}\n' $WORKERS $INTERVAL \
	$RELOAD_EVERY > config.json

wait_until() {	# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.1 s
	local n=$(($1 * 10)) what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		if [ $n -le 0 ]; then
			echo "soak: timed out waiting for $what" >&2
			for f in nginx/error.log tlsfront.log; do
				[ ! -s "$f" ] || { echo "soak: last lines of $D/$f:" >&2; tail -n 5 "$f" >&2; }
			done
			exit 2
		fi
		sleep 0.1
	done
}
nworkers() { wc -w < "/proc/$MAIN/task/$MAIN/children"; }
wait_until 10 "nginx" curl -sf -o /dev/null "http://127.0.0.1:$P_H1/small"
wait_until 10 "tlsfront to listen" grep -q "listening on 127.0.0.1:$P_TLS" tlsfront.log
wait_until 10 "$WORKERS workers" test "$(nworkers)" -eq $WORKERS
wait_until 10 "a first request" curl -sf --cacert ca.pem \
	--resolve "soak.test:$P_TLS:127.0.0.1" -o /dev/null "https://soak.test:$P_TLS/small"
sleep 2	# let that connection's access line and close settle before the baseline
$client baseline "$MAIN" baseline.json

# ---- load
$client monitor "$MAIN" "$DURATION" $INTERVAL $RELOAD_EVERY samples.csv monitor.json \
	"$D/soak.pem,$D/soak.key" &
monitor=$!
pids+=("$monitor")
DEADLINE=$(($(date +%s) + DURATION))

h2load_loop() {	# h2load_loop NAME [h2load options]: rounds of <= 20 s until DEADLINE
	local name=$1 req=0 err=0 left d out
	shift
	: > "h2load-$name.log"
	while left=$((DEADLINE - $(date +%s))) && [ $left -ge 2 ] && kill -0 $MAIN; do
		d=$((left < 20 ? left : 20))
		if out=$(h2load -D "$d" -c 4 -m 4 --rps "$KA_RPS" "$@" \
			"https://127.0.0.1:$P_TLS/small" 2>&1); then :; else
			err=$((err + 1))
			echo "error $(date +%T) h2load exit $?" >> "load-$name.err"
		fi
		echo "$out" >> "h2load-$name.log"
		# requests: T total, S started, D done, OK succeeded, F failed, E errored, TO timeout
		# status codes: N 2xx, N 3xx, N 4xx, N 5xx
		read -r done_ ok fail errd tmo < <(echo "$out" | awk '/^requests:/ {
			print $6, $8, $10, $12, $14 }')
		read -r s4 s5 < <(echo "$out" | awk '/^status codes:/ { print $7, $9 }')
		if [ -z "${done_:-}" ] || [ -z "${s5:-}" ]; then
			err=$((err + 1))
			echo "error $(date +%T) h2load printed no totals" >> "load-$name.err"
			continue
		fi
		req=$((req + done_))
		err=$((err + fail + errd + tmo + done_ - ok + s4 + s5))
	done
	{ echo "requests $req errors $err"; cat "load-$name.err" 2>/dev/null || true; } \
		> "load-$name.txt"
}
bulk_loop() {	# 50 MB downloads with curl until DEADLINE
	local req=0 err=0 r
	while [ "$(date +%s)" -lt $DEADLINE ] && kill -0 $MAIN; do
		r=$(curl -sS --cacert ca.pem --resolve "soak.test:$P_TLS:127.0.0.1" \
			--limit-rate "$BULK_RATE" --max-time 120 -o /dev/null \
			-w '%{http_code} %{size_download}' "https://soak.test:$P_TLS/large" 2>&1) || true
		req=$((req + 1))
		if [ "$r" != "200 $LARGE" ]; then
			err=$((err + 1))
			echo "error $(date +%T) $r" >> load-bulk.err
		fi
	done
	{ echo "requests $req errors $err"; head -n 10 load-bulk.err 2>/dev/null || true; } \
		> load-bulk.txt
}

loads=()
h2load_loop h2 & loads+=($!)
h2load_loop h1 --h1 & loads+=($!)
bulk_loop & loads+=($!)
$client newconn "$P_TLS" soak.test ca.pem $SMALL $DEADLINE "$NEWCONN_RATE" 4 \
	load-newconn.txt & loads+=($!)
$client slow "$P_TLS" soak.test ca.pem $LARGE $DEADLINE "$SLOW_CLIENTS" 1048576 65536 \
	load-slow.txt & loads+=($!)
pids+=("${loads[@]}")
for p in "${loads[@]}"; do wait "$p" || true; done
echo "soak: load stopped; waiting for tlsfront to settle"
wait $monitor || true

# ---- stop and judge
kill -TERM $MAIN
st=0
wait $MAIN || st=$?
echo $st > tlsfront.exit
rc=0
$client verdict "$D" | tee verdict.txt || rc=$?
echo "soak: CSV $D/samples.csv, log $D/tlsfront.log, verdict $D/verdict.txt"
exit $rc
