#!/usr/bin/env bash
# The test command: install dependencies, build from scratch in _build/,
# run every test (cmocka unit tests and end-to-end tests with real clients),
# and end with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

bash scripts/deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

rm -rf _build
( autoreconf -fi && mkdir _build && cd _build && ../configure --enable-werror && make -j"$(nproc)" ) \
	> "$top/build.log" 2>&1
if [ $? -ne 0 ]; then
	tail -n 60 "$top/build.log"
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

cd _build
make -j2 check
rc=$?
for f in tests/unit/*.log tests/e2e/*.log; do
	[ -f "$f" ] || continue
	if grep -qE ':test-result: (FAIL|ERROR|XPASS)' "${f%.log}.trs" 2>/dev/null; then
		echo "==== $f"; tail -n 80 "$f"
	fi
done
count() { sed -n "s/^# $1: *//p" test-suite.log | head -n 1; }
pass=$(count PASS); fail=$(count FAIL); error=$(count ERROR); xpass=$(count XPASS); skip=$(count SKIP)
failed=$(( ${fail:-0} + ${error:-0} + ${xpass:-0} ))
[ -n "$pass" ] || { pass=0; failed=$(( failed + 1 )); }
if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then failed=1; fi

# The Debian package, built, installed, run and purged: one more test.
cd "$top"
if bash scripts/package-test.sh; then
	pass=$(( pass + 1 ))
else
	failed=$(( failed + 1 ))
	[ $rc -ne 0 ] || rc=1
fi
echo "${pass} passed, ${failed} failed, ${skip:-0} skipped"
exit $rc
