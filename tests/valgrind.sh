#!/bin/sh
# SPDX-License-Identifier: MIT
# The test suite and the zmp command under valgrind memcheck:
#   tests/valgrind.sh [suite|cli]...     (both by default)
# from the build directory.  Any memcheck error, or a definite or indirect
# leak, fails the run, as does a failing test.
#
# What valgrind changes, and what this script does about it:
# - valgrind 3.19 does not know pidfd_open (it answers ENOSYS), so zmp runs
#   without pidfds, and the io_uring engine, which needs them, cannot start:
#   this is the poll engine without pidfds (ZMP_DISABLE=pidfd says so to zmp
#   and to the tests).  The io_uring engine is checked by the ASan+UBSan run.
# - valgrind runs clone(CLONE_VM | CLONE_VFORK) as a plain fork, which costs
#   ~0.2 s under it: the tests that start hundreds of children are left out
#   ($ZMP_TEST_SKIP); others run the same code on fewer children.
# - the same slow start breaks the two tests whose timeouts (100-200 ms)
#   expect a child to be running well before them: left out too (the zmp
#   commands below run timeouts under valgrind).
# - valgrind delivers each signal through its own scheduler: a storm of
#   signals from another process (the hostile suite's test) then takes from
#   40 s to over the suite's 300 s alarm, depending on the machine's load.
#   Left out here; it runs in every other pass (engines, ASan, TSan).
# - valgrind runs one thread at a time: two threads churning malloc starve
#   the spawning one for minutes, and its plain fork brings back the wait
#   for forked copies of the exec-error pipe that CLONE_VM avoids (see
#   src/spawn.c).  Those two thread tests are left out; the other thread
#   tests run.
# - valgrind keeps descriptors of its own at the top of the table and
#   refuses to let RLIMIT_NOFILE rise: the tests that raise or lower the
#   limit are left out.
# - the unlocked threads test (1,200 rounds), the handle test (3,000
#   starts) and the test that times quick runs beside a long wait are too
#   slow with a 0.2 s fork: left out (ThreadSanitizer runs them in CI).
# Children are not traced: they are the test helper, sh, python3.
set -u
srcdir=${srcdir:-.}
status=0
log=${TMPDIR:-/tmp}/zmp-valgrind.$$
trap 'rm -f "$log"' EXIT

vg() {
    valgrind -q --error-exitcode=86 --leak-check=full \
        --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect \
        --suppressions="$srcdir/tests/valgrind.supp" "$@"
}

ZMP_BACKEND=poll
ZMP_DISABLE=pidfd
export ZMP_BACKEND ZMP_DISABLE

# Each with why: too slow under valgrind (code covered by the other tests),
# or cannot work there.
ZMP_TEST_SKIP="signal storm from another process
1,000 jobs, both streams, every byte
64 MiB on both streams
200 children
handles do not survive deinit
order, progress, errors
soft fd limit raised, restored in children
timeout
signal sequence to a process group
spawning while other threads hold locks
spawning while other threads fork and exec
4 threads, no lock, 300 rounds each
quick runs beside a long wait
handles not reused
children get the caller's fd limit"
export ZMP_TEST_SKIP

suite() {
    echo "=== valgrind: zmp test suite (poll engine, no pidfd) ==="
    vg ./tests/zmp-test; st=$?
    [ $st -eq 0 ] || { echo "valgrind suite: status $st"; status=1; }
}

# run_cli WANT-STATUS ARGS...: one zmp command under valgrind.
run_cli() {
    want=$1; shift
    ./libtool --mode=execute valgrind -q --error-exitcode=86 --leak-check=full \
        --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect \
        --suppressions="$srcdir/tests/valgrind.supp" ./zmp "$@" \
        < "${vg_in:-/dev/null}" > "$log" 2>&1
    st=$?
    if [ $st -eq "$want" ]; then
        printf "  ok: zmp %s\n" "$*"
        cli_pass=$((cli_pass + 1))
    else
        printf "  FAILED: zmp %s (status %s, want %s)\n" "$*" $st "$want"; sed 's/^/    /' "$log"
        cli_fail=$((cli_fail + 1))
    fi
}

cli() {
    echo "=== valgrind: the zmp command (poll engine, no pidfd) ==="
    cli_pass=0 cli_fail=0
    h=./tests/helper
    run_cli 0 backend
    run_cli 0 --version
    run_cli 0 cpu-count
    run_cli 255 parallel -j x -- echo
    run_cli 2 frobnicate
    run_cli 3 -i sh run-code 'echo "$0 $1"; echo e >&2; exit 3' a b
    run_cli 4 -i sh run-code --json 'printf "a\377\n"; printf "e\033\n" >&2; exit 4'
    run_cli 127 -i /nonexistent/zpy run x
    run_cli 0 -i "$h" run flood 100000 70000
    run_cli 0 -i "$h" run --json flood 3000 5000
    run_cli 0 parallel -k -j 3 --results "$log.r" -- "$h" echo '{#}:{}' ::: a b c d e f
    run_cli 1 parallel --timeout 2 --results "$log.r" -- "$h" sleep '{}' ::: 10 30000
    run_cli 0 parallel --output-cap 1000 --results "$log.r" -- "$h" flood '{}' 10 ::: 300000 5
    run_cli 1 parallel -j 1 --halt-on-error -- "$h" exit '{}' ::: 0 1 0 0
    printf '1\n2\n3\n' > "$log.in"
    run_cli 0 parallel -a "$log.in" -- "$h" echo '{}'
    # GNU parallel's inputs, replacement strings, shell, joblog, pipes.
    run_cli 0 parallel -k -a "$log.in" --colsep , -X --tag -- "$h" echo '{1.}' '{/}' ::: x.y,z 'a b' :::+ p q
    run_cli 1 parallel -k --shell --retries 2 --joblog "$log.r" 'echo {}; exit {}' ::: 0 1
    run_cli 0 parallel --resume --joblog "$log.r" --shell 'echo {}' ::: 0 1 2
    vg_in=$log.in run_cli 0 parallel --pipe --block 2 -k -- cat
    vg_in=$log.in run_cli 0 parallel --pipe --round-robin -j 2 --block 2 -- cat
    rm -f "$log.r" "$log.in"
    echo "valgrind zmp-cli [poll]: $cli_pass passed, $cli_fail failed"
    [ $cli_fail -eq 0 ] || status=1
}

[ $# -gt 0 ] || set -- suite cli
for what in "$@"; do
    case $what in
    suite) suite ;;
    cli) cli ;;
    *) echo "usage: $0 [suite|cli]..." >&2; exit 2 ;;
    esac
done
exit $status
