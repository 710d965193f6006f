#!/usr/bin/env bash
# The test command: install dependencies, then run every test, each stage
# from scratch in a build directory of its own, and end with one line
# "N passed, N failed, N skipped" (the sum over all stages).
#
#   deps        scripts/deps.sh
#   build       _build/: ./configure --enable-werror; make check (unit + e2e)
#   sanitizers  _build-sanitizers/: --enable-sanitizers (ASan + UBSan); make check
#   valgrind    _build-valgrind/: make check-valgrind: the e2e tests with every
#               tlsfront process under valgrind memcheck (tests/e2e/tf_proc.py)
#   soak        SOAK_DURATION=75 bash bench/soak.sh: the README's soak, 75 s of
#               mixed load with a reload, on _build/tlsfront (one test: its
#               verdict must be PASS)
#   fuzz        scripts/fuzz-ci.sh 45, if present: libFuzzer targets (one test)
#   package     DEB_BUILD_OPTIONS=nocheck scripts/package-test.sh: the Debian
#               package built (its make check is the build stage's), linted,
#               installed, its autopkgtest run, purged (one test)
#
# A stage that fails does not stop the later ones. Each prints a header, on
# failure the tail of its failing logs, and its duration; the durations are
# listed again at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc)

pass=0 failed=0 skipped=0 rc=0
summary=()

t0=0
begin() {
	echo
	echo "======== stage $1: $2"
	t0=$(date +%s)
}
# end NAME RESULT: record the stage's duration and result line
end() {
	local secs=$(( $(date +%s) - t0 ))
	echo "======== stage $1: $2 (${secs}s)"
	summary+=("$(printf '%-11s %5ss  %s' "$1" "$secs" "$2")")
}
fail_stage() {
	failed=$(( failed + 1 ))
	rc=1
}

# configure_and_build DIR LOG CONFIGURE-ARGS...: a fresh build directory
configure_and_build() {
	local dir=$1 log=$2
	shift 2
	rm -rf "$dir"
	( mkdir "$dir" && cd "$dir" && ../configure "$@" && make -j"$jobs" ) > "$log" 2>&1 ||
		{ tail -n 60 "$log"; return 1; }
}

# check_in DIR TARGET: make TARGET (check, check-valgrind) there, show the
# logs of failing tests, add the automake counts to the totals; returns
# make's status
check_in() {
	local dir=$1 target=$2 crc log p f e x s
	( cd "$dir" && make -j2 "$target" )
	crc=$?
	for log in "$dir"/tests/unit/*.log "$dir"/tests/e2e/*.log; do
		[ -f "$log" ] || continue
		if grep -qE ':test-result: (FAIL|ERROR|XPASS)' "${log%.log}.trs" 2>/dev/null; then
			echo "==== $log"; tail -n 80 "$log"
		fi
	done
	count() { sed -n "s/^# $1: *//p" "$dir/test-suite.log" 2>/dev/null | head -n 1; }
	p=$(count PASS); f=$(count FAIL); e=$(count ERROR); x=$(count XPASS); s=$(count SKIP)
	f=$(( ${f:-0} + ${e:-0} + ${x:-0} ))
	[ -n "$p" ] || { p=0; f=$(( f + 1 )); }	# no summary: the harness itself broke
	if [ $crc -ne 0 ] && [ $f -eq 0 ]; then f=1; fi
	pass=$(( pass + p )); failed=$(( failed + f )); skipped=$(( skipped + ${s:-0} ))
	[ $f -eq 0 ] || rc=1
	stage_result="$p passed, $f failed, ${s:-0} skipped"
	return $crc
}

# ---- deps
begin deps "scripts/deps.sh"
if ! bash scripts/deps.sh; then
	echo "dependency installation failed"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
end deps "ok"

# ---- build: the normal build, unit and e2e tests
begin build "./configure --enable-werror; make check"
if ! autoreconf -fi > "$top/build.log" 2>&1; then
	tail -n 60 "$top/build.log"
	echo "autoreconf failed"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
if configure_and_build _build "$top/build.log" --enable-werror; then
	check_in _build check
	end build "$stage_result"
else
	fail_stage
	end build "build failed (build.log)"
fi

# ---- sanitizers: the same tests on an ASan + UBSan build
begin sanitizers "./configure --enable-werror --enable-sanitizers; make check"
if configure_and_build _build-sanitizers "$top/build-sanitizers.log" --enable-werror \
		--enable-sanitizers; then
	check_in _build-sanitizers check
	end sanitizers "$stage_result"
else
	fail_stage
	end sanitizers "build failed (build-sanitizers.log)"
fi

# ---- valgrind: every e2e test, tlsfront under memcheck
begin valgrind "./configure --enable-werror; make check-valgrind (the e2e tests)"
if configure_and_build _build-valgrind "$top/build-valgrind.log" --enable-werror; then
	check_in _build-valgrind check-valgrind
	end valgrind "$stage_result"
else
	fail_stage
	end valgrind "build failed (build-valgrind.log)"
fi

# ---- soak: the README's bench/soak.sh, shortened to 75 s; one test
begin soak "SOAK_DURATION=75 bash bench/soak.sh"
if SOAK_DURATION=75 bash bench/soak.sh > "$top/soak.log" 2>&1 &&
		grep -q '^== VERDICT: PASS' "$top/soak.log"; then
	sed -n '/^== VERDICT/p' "$top/soak.log"
	# its directory holds a 50 MB file: kept only when the soak fails
	soak_dir=$(sed -n 's/^soak: .*, everything in \(\/tmp\/tlsfront-soak\.[A-Za-z0-9]*\)$/\1/p' \
		"$top/soak.log" | head -n 1)
	[ -z "$soak_dir" ] || rm -rf "$soak_dir"
	pass=$(( pass + 1 ))
	end soak "passed"
else
	tail -n 60 "$top/soak.log"
	fail_stage
	end soak "FAILED (soak.log)"
fi

# ---- fuzz: the libFuzzer targets, one test
if [ -f scripts/fuzz-ci.sh ]; then
	# 45 s a target: five targets, two at a time, stay near the four
	# targets' 60 s of before in CI time
	begin fuzz "scripts/fuzz-ci.sh 45"
	if bash scripts/fuzz-ci.sh 45; then
		pass=$(( pass + 1 ))
		end fuzz "passed"
	else
		fail_stage
		end fuzz "FAILED"
	fi
else
	summary+=("$(printf '%-11s %5s   %s' fuzz - "not run: no scripts/fuzz-ci.sh")")
fi

# ---- package: the Debian package, built, installed, run and purged; one test.
# Built with nocheck: the build stage above ran the same suite on the same
# source, and a third run cost CI minutes; the package's own autopkgtest
# (the e2e tests against the installed binary) still runs.
begin package "DEB_BUILD_OPTIONS=nocheck scripts/package-test.sh"
if DEB_BUILD_OPTIONS=nocheck bash scripts/package-test.sh; then
	pass=$(( pass + 1 ))
	end package "passed"
else
	fail_stage
	end package "FAILED"
fi

echo
echo "======== stages"
printf '%s\n' "${summary[@]}"
echo "${pass} passed, ${failed} failed, ${skipped} skipped"
exit $rc
