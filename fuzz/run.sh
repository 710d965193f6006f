#!/bin/sh
# fuzz/run.sh [SECONDS]: build every libFuzzer target with clang in a
# temporary directory (out of tree), then run each for SECONDS (default 60)
# on its corpus, fuzz/corpus/<name without fuzz_>/. New inputs go to a
# scratch copy of the corpus, so the seeds in git stay as they are.
# Exits non-zero if the build fails or a target finds a crash.
#
#   CC=clang-16 fuzz/run.sh 300     other clang; KEEP=1 keeps the build dir
set -eu

secs=${1:-60}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "$0: $cc not found (apt-get install clang)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tlsfront-fuzz.XXXXXX")
if [ -z "${KEEP:-}" ]; then
	trap 'rm -rf "$work"' EXIT
else
	echo "build directory: $work"
fi

[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
mkdir "$work/build"
cd "$work/build"
CC=$cc "$src/configure" --enable-fuzzing >configure.out 2>&1 || {
	tail -20 configure.out >&2
	exit 1
}
targets=$(cd "$src/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
for t in $targets; do
	make -j"$(nproc 2>/dev/null || echo 2)" "fuzz/$t" >>make.out 2>&1 || {
		tail -30 make.out >&2
		exit 1
	}
done

status=0
for t in $targets; do
	name=${t#fuzz_}
	corpus=$work/corpus-$name
	mkdir -p "$corpus" "$work/artifacts-$name"
	if [ -d "$src/fuzz/corpus/$name" ]; then
		cp "$src/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || :
	fi
	echo "== $t: $secs s on fuzz/corpus/$name"
	if ! "./fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix="$work/artifacts-$name/" "$corpus" >"$work/$t.log" 2>&1; then
		status=1
		tail -40 "$work/$t.log" >&2
		mkdir -p "$src/fuzz/crashes"
		cp "$work/artifacts-$name"/* "$src/fuzz/crashes/" 2>/dev/null || :
		echo "$t: FAILED; reproducers in fuzz/crashes/" >&2
	else
		grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb' \
		    "$work/$t.log" || tail -3 "$work/$t.log"
	fi
done
exit $status
