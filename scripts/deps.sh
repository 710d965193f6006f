#!/usr/bin/env bash
# Install what building, testing and running tlsfront needs on Debian 12.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

# Keep package scripts from starting services (nginx would grab port 80).
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	made_policy=1
fi
trap '[ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d' EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential autoconf automake pkg-config \
	libssl-dev libevent-dev libinih-dev libcmocka-dev libcurl4-openssl-dev libjansson-dev \
	clang libclang-rt-14-dev \
	openssl ca-certificates curl python3 nginx-light haproxy procps nghttp2-client \
	prometheus testssl.sh python3-cryptography valgrind pebble >/dev/null
