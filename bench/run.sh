#!/usr/bin/env bash
# Benchmark tlsfront against HAProxy, hitch and nginx stream (issues #8, #15):
# bench/README.md.
#
#   bench/run.sh [--tlsfront PATH] [bench.py options]     (or: make bench)
#   QUICK=1 bench/run.sh                                  (small counts, 3 s phases)
#   bench/run.sh --phases s --tlsfront PATH               (system calls only, ~35 s,
#                                                          a table on stdout)
#
# Installs the tools from Debian if one is missing, builds the load generator
# and the certificate maker into bench/.cache/bin, then runs bench/bench.py,
# which writes bench/RESULTS.md, bench/results.csv and bench/results.png.
# Runs as root (it needs apt-get, and hitch drops to nobody).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${BENCH_CACHE:-$HERE/.cache}
export BENCH_CACHE=$CACHE

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
missing=
for tool in hitch haproxy nginx wrk h2load gnuplot openssl cc taskset ss strace python3; do
	PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null || missing="$missing $tool"
done
[ -e /usr/include/openssl/ssl.h ] || missing="$missing libssl-dev"
# nginx's stream module (the nginx peer) is a package of its own
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing="$missing libnginx-mod-stream"
if [ -n "$missing" ]; then
	echo "bench: installing (missing:$missing)"
	export DEBIAN_FRONTEND=noninteractive
	# keep package scripts from starting the services (hitch, haproxy and
	# nginx would take ports 80 and 443)
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	trap '[ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends \
		hitch haproxy nginx-light libnginx-mod-stream wrk nghttp2-client gnuplot-nox \
		openssl build-essential libssl-dev python3 procps iproute2 util-linux \
		strace >/dev/null
	# before exec below, which would skip the trap
	[ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
	trap - EXIT
fi
export PATH=$PATH:/usr/sbin:/sbin

mkdir -p "$CACHE/bin"
for tool in loadgen mkcerts; do
	if [ ! -x "$CACHE/bin/$tool" ] || [ "$HERE/$tool.c" -nt "$CACHE/bin/$tool" ]; then
		cc -O2 -Wall -Wextra -std=gnu11 -o "$CACHE/bin/$tool" "$HERE/$tool.c" -lssl -lcrypto
	fi
done
exec python3 "$HERE/bench.py" --tools "$CACHE/bin" "$@"
