#!/bin/sh
# scripts/fuzz-ci.sh [SECONDS]: the fuzzing step of CI (issue #7).
#
#  1. builds every libFuzzer target in tests/fuzz/ with clang (ASan + UBSan), once,
#     out of tree in a temporary directory;
#  2. replays each target's committed corpus, tests/fuzz/corpus/<name>/, and the
#     reproducers of earlier crashes, tests/fuzz/crashes/<name>/;
#  3. fuzzes each target for SECONDS (default 60), two at a time (the CI
#     machine has 2 cores).
#
# Prints one line per target and step, then a summary; exits non-zero if the
# build fails or any target crashes. A new crash's reproducer is left in
# tests/fuzz/crashes/<name>/ (the log's last lines go to stderr). Needs clang and
# libclang-rt-14-dev (scripts/deps.sh installs both). Takes about
# 40 s + 3 x SECONDS on two cores (5 targets).
#
#   FUZZ_JOBS=1 scripts/fuzz-ci.sh 30     one target at a time, 30 s each
set -eu

secs=${1:-60}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(mktemp -d "${TMPDIR:-/tmp}/tlsfront-fuzz-ci.XXXXXX")
trap 'rm -rf "$build"' EXIT
export BUILD="$build"	# tests/fuzz/run.sh builds here once; both steps share it

start=$(date +%s)
status=0
echo "fuzz-ci: replaying the corpora"
sh "$src/tests/fuzz/run.sh" replay || status=$?
if [ "$status" -eq 3 ]; then
	echo "fuzz-ci: FAILED: the fuzz targets do not build" >&2
	exit 1
fi
replay=$status
echo "fuzz-ci: fuzzing each target for $secs s, ${FUZZ_JOBS:-2} at a time"
sh "$src/tests/fuzz/run.sh" -j "${FUZZ_JOBS:-2}" "$secs" || status=$?
took=$(( $(date +%s) - start ))
if [ "$status" -ne 0 ]; then
	[ "$replay" -eq 0 ] || echo "fuzz-ci: FAILED: a committed input crashes again" >&2
	echo "fuzz-ci: FAILED in ${took} s (reproducers in tests/fuzz/crashes/)" >&2
	exit 1
fi
echo "fuzz-ci: ok in ${took} s"
