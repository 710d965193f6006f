#!/usr/bin/env bash
# Run tlsfront for real on a fresh Debian 12 machine: install what it needs,
# build it, make a demo certificate for localhost, start a demo plaintext
# backend on 127.0.0.1:8080 and tlsfront on https://localhost:8443 in front
# of it. Runs in the foreground; Ctrl-C stops both.
#   try:  curl --cacert demo/demo-ca.pem https://localhost:8443/
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
PORT=${PORT:-8443}
BACKEND_PORT=${BACKEND_PORT:-8080}

bash scripts/deps.sh
if [ ! -x _build/tlsfront ]; then
	autoreconf -fi >/dev/null 2>&1
	mkdir -p _build
	(cd _build && ../configure >/dev/null && make -j"$(nproc)" tlsfront >/dev/null)
fi

mkdir -p demo/hosts.d demo/www
cd demo
if [ ! -f demo.pem ]; then
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

python3 -m http.server "$BACKEND_PORT" --bind 127.0.0.1 --directory www >/dev/null 2>&1 &
backend=$!
trap 'kill $backend 2>/dev/null' EXIT
"$top/_build/tlsfront" -c tlsfront.ini -t
echo "tlsfront on https://localhost:$PORT/ -> http://127.0.0.1:$BACKEND_PORT/"
echo "try: curl --cacert $top/demo/demo-ca.pem https://localhost:$PORT/"
"$top/_build/tlsfront" -c tlsfront.ini
