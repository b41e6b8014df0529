#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the libFuzzer harnesses with clang and run each for a while:
#   fuzz/run.sh [SECONDS-EACH] [HARNESS...]    (default: 30 s, all)
# New inputs found go to fuzz/work/NAME (the seeds in fuzz/corpus/NAME are
# only read); a crash leaves fuzz/work/crash-* and a non-zero status.
set -eu
srcdir=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
[ $# -gt 0 ] && shift
names=${*:-json jsonread template input args}
CLANG=${CLANG:-clang}
out=${FUZZ_OUT:-fuzz/work}
mkdir -p "$out"
flags="-Wall -Wextra -Werror -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$srcdir/cli -I$srcdir/include"
for name in $names; do
    extra=
    case $name in
    json)     src="cli/json.c" ;;
    jsonread) src="cli/json.c cli/jsonread.c" ;;
    template) src="cli/template.c" ;;
    input)    src="cli/input.c" ;;
    args)     src="cli/parallel-args.c"; extra=-close_fd_mask=3 ;;
    *) echo "fuzz/run.sh: no harness $name" >&2; exit 2 ;;
    esac
    bin=$out/fuzz-$name
    # shellcheck disable=SC2086
    $CLANG $flags -o "$bin" "$srcdir/fuzz/fuzz-$name.c" $(for s in $src; do echo "$srcdir/$s"; done)
    mkdir -p "$out/$name"
    echo "::: fuzz $name: $secs s"
    st=0
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/" \
        $extra "$out/$name" "$srcdir/fuzz/corpus/$name" > "$out/$name.log" 2>&1 || st=$?
    grep -E '^#[0-9]+.*DONE|^stat::number_of_executed_runs|ERROR|SUMMARY|Assertion|runtime error' \
        "$out/$name.log" || true
    if [ $st -ne 0 ]; then
        tail -30 "$out/$name.log"
        echo "fuzz $name: FAILED (status $st; input in $out)"; exit 1
    fi
    echo "fuzz $name: ok"
done
