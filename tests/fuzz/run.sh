#!/bin/sh
# tests/fuzz/run.sh [-j JOBS] [SECONDS]: build every libFuzzer target with clang
# out of tree (a temporary directory), then run each for SECONDS (default
# 60) on its corpus, tests/fuzz/corpus/<name without fuzz_>/, JOBS targets at a
# time (default 1). New inputs go to a scratch copy of the corpus, so the
# seeds in git stay as they are; a crash's reproducer is copied to
# tests/fuzz/crashes/<name>/.
#
# tests/fuzz/run.sh replay: build, then run each target once over every input of
# tests/fuzz/corpus/<name>/ and tests/fuzz/crashes/<name>/ (no fuzzing): the regression
# check for bugs found before.
#
# Prints one line per target. Exits 0 if all is well, 1 if a target
# crashed (or failed a check, leaked, timed out), 2 on a usage error, 3 if
# the build failed.
#
#   CC=clang-16 tests/fuzz/run.sh 300     another clang
#   KEEP=1                          keep the work directory (logs, new inputs)
#   BUILD=DIR                       build in DIR and keep it (configured once),
#                                   so that several runs share one build
#   TARGETS="config sni"            only these targets
set -eu

usage() {
	echo "usage: $0 [-j JOBS] [SECONDS] | $0 replay" >&2
	exit 2
}

mode=fuzz
jobs=1
secs=60
while [ $# -gt 0 ]; do
	case $1 in
	replay) mode=replay ;;
	-j) [ $# -ge 2 ] || usage; jobs=$2; shift ;;
	-j*) jobs=${1#-j} ;;
	''|*[!0-9]*) usage ;;
	*) secs=$1 ;;
	esac
	shift
done
case $jobs in ''|*[!0-9]*|0) usage ;; esac

src=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CC:-clang}
command -v "$cc" >/dev/null || {
	echo "$0: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
	exit 3
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tlsfront-fuzz.XXXXXX")
if [ -z "${KEEP:-}" ]; then
	trap 'rm -rf "$work"' EXIT
else
	echo "work directory: $work"
fi

# ---- build -----------------------------------------------------------------
[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
build=${BUILD:-$work/build}
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
	CC=$cc "$src/configure" --enable-fuzzing >configure.out 2>&1 || {
		tail -20 configure.out >&2
		echo "$0: configure failed (in $build)" >&2
		exit 3
	}
fi
all=$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')
targets=
for t in $all; do
	case " ${TARGETS:-${all}} " in
	*" $t "*|*" ${t#fuzz_} "*) targets="$targets $t" ;;
	esac
done
[ -n "$targets" ] || { echo "$0: no target matches TARGETS=$TARGETS" >&2; exit 2; }
progs=
for t in $targets; do progs="$progs tests/fuzz/$t"; done
# shellcheck disable=SC2086 # one word per program
make -j"$(nproc 2>/dev/null || echo 2)" $progs >make.out 2>&1 || {
	tail -30 make.out >&2
	echo "$0: build failed (in $build)" >&2
	exit 3
}

# ---- replay ------------------------------------------------------------------
# Each input once; libFuzzer exits non-zero at the first that crashes.
replay_one() {
	t=$1
	name=${t#fuzz_}
	log=$work/$t.replay.log
	set --
	for dir in "$src/tests/fuzz/corpus/$name" "$src/tests/fuzz/crashes/$name"; do
		for f in "$dir"/*; do
			[ -f "$f" ] && set -- "$@" "$f"
		done
	done
	if [ $# -eq 0 ]; then
		echo "$t: no inputs in tests/fuzz/corpus/$name or tests/fuzz/crashes/$name"
		return 0
	fi
	n=$#
	if "$build/tests/fuzz/$t" -timeout=25 "$@" >"$log" 2>&1; then
		echo "$t: ok, $n inputs replayed"
	else
		tail -40 "$log" >&2
		bad=$(sed -n 's/^Running: //p' "$log" | tail -1)
		echo "$t: FAILED on ${bad#"$src"/} ($n inputs)"
		return 1
	fi
}

# ---- fuzz --------------------------------------------------------------------
fuzz_one() {
	t=$1
	name=${t#fuzz_}
	corpus=$work/corpus-$name
	art=$work/artifacts-$name
	log=$work/$t.log
	mkdir -p "$corpus" "$art"
	if [ -d "$src/tests/fuzz/corpus/$name" ]; then
		cp "$src/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || :
	fi
	if "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
	    -artifact_prefix="$art/" "$corpus" >"$log" 2>&1; then
		result=ok
	else
		result=CRASH
		tail -40 "$log" >&2
		mkdir -p "$src/tests/fuzz/crashes/$name"
		cp "$art"/* "$src/tests/fuzz/crashes/$name/" 2>/dev/null || :
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(sed -n 's/^#[0-9]*.* cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
	line="$t: $result, ${runs:-?} runs in $secs s, coverage ${cov:-?}, corpus $(ls "$corpus" | wc -l)"
	if [ $result = ok ]; then
		echo "$line"
		return 0
	fi
	echo "$line; reproducer in tests/fuzz/crashes/$name/: $(cd "$art" && ls | tr '\n' ' ')"
	return 1
}

# Run "$1 TARGET" for every target, $jobs at a time. Each job prints its own
# line when it ends; the status is that of the worst.
status=0
pids=
for t in $targets; do
	if [ $mode = replay ]; then
		replay_one "$t" || status=1
		continue
	fi
	fuzz_one "$t" &
	pids="$pids $!"
	# shellcheck disable=SC2086
	set -- $pids
	if [ $# -ge "$jobs" ]; then
		wait "$1" || status=1
		shift
		pids="$*"
	fi
done
for p in $pids; do
	wait "$p" || status=1
done
exit $status
