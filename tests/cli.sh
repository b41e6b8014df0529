#!/bin/sh
# SPDX-License-Identifier: MIT
# Shell-level tests of the zmp command: cli.sh ENGINE
# Prints "zmp-cli [ENGINE]: N passed, N failed" and exits non-zero on a failure.
set -u
ZMP_BACKEND=$1
export ZMP_BACKEND
zmp=./zmp
child=./tests/nolibc-child  # x86-64: no libc start-up, thousands are cheap
[ -x "$child" ] || child=./tests/helper
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

zmp_abs=$(cd "$(dirname "$zmp")" && pwd)/$(basename "$zmp")
ok() { pass=$((pass + 1)); echo "  ok: $1"; }
# all_overlapped N FILE: the N jobs of a --results file all ran, ok, and
# were all alive at once (the last started before the first ended).
all_overlapped() {
    python3 - "$1" "$2" <<'PY'
import json, sys
jobs = [j for j in map(json.loads, open(sys.argv[2])) if j["type"] == "job"]
assert len(jobs) == int(sys.argv[1]) and all(j["ok"] for j in jobs)
last_start = max(j["start"] for j in jobs)
first_end = min(j["start"] + j["seconds"] for j in jobs)
assert last_start < first_end, (last_start, first_end)
PY
}
bad() { fail=$((fail + 1)); echo "  FAILED: $1"; }
skip() { echo "  skipped: $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi; }
# has NAME FILE TEXT: FILE holds TEXT (fixed string).
has() { if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1 (no '$3' in: $(cat "$2"))"; fi; }

# state PID: the state letter of process PID (R, S, T, Z...), empty once
# it is reaped.  Shell builtins only: these loops run often.
state() {
    _line=
    { read -r _line < "/proc/$1/stat"; } 2> /dev/null || return 0
    _line=${_line##*) }
    echo "${_line%% *}"
}
# jobs_alive MARK [STATE]: how many jobs (the child programs, or sh) have
# MARK in their arguments and are alive (or in STATE).  Not zmp, nor what
# runs while it starts (python3, the libtool wrapper).  (No pgrep: procps
# is not on a minimal system.)
jobs_alive() {
    _n=0
    for _f in $(grep -laF -- "$1" /proc/[0-9]*/cmdline 2> /dev/null); do
        _d=${_f%/cmdline}
        _comm=
        { read -r _comm < "$_d/comm"; } 2> /dev/null || continue
        case $_comm in nolibc-child|helper|sh|sleep) ;; *) continue ;; esac
        _st=$(state "${_d#/proc/}")
        case $_st in "") ;; Z) ;; ${2:-$_st}) _n=$((_n + 1)) ;; esac
    done
    echo $_n
}
# until_alive N SECS MARK [STATE]: wait (at most SECS s) until N processes
# of MARK are alive (in STATE); says how many there are then.
until_alive() {
    _i=0
    while [ "$(jobs_alive "$3" "${4:-}")" != "$1" ] && [ $_i -lt $(($2 * 10)) ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    jobs_alive "$3" "${4:-}"
}
# ended PID SECS: true once process PID has exited (a zombie, or reaped),
# within SECS seconds.
ended() {
    _i=0
    while [ $_i -lt $(($2 * 10)) ]; do
        case $(state "$1") in ""|Z) return 0 ;; esac
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}
# in_own_group COMMAND...: run it in a process group of its own, so that
# SIGTSTP stops it: in the group of this shell it could be an orphaned
# group, whose SIGTSTP the kernel discards.  Run it with &.
in_own_group() {
    exec python3 -c 'import os, sys; os.setpgid(0, 0); os.execv(sys.argv[1], sys.argv[1:])' "$@"
}
# reap PID: its status, with no "Terminated" from the shell.  Killed
# (SIGKILL, status 137) when it has not ended in 30 s.
reap() {
    ended "$1" 30 || kill -KILL "$1" 2> /dev/null
    wait "$1" 2> /dev/null
}

echo "=== zmp command tests: engine $ZMP_BACKEND ==="
check "backend" "$($zmp backend)" "$ZMP_BACKEND"
check "cpu-count" "$($zmp cpu-count)" "$(nproc)"
$zmp --version | grep -q '^zmp [0-9]' && ok "--version" || bad "--version"

# Bad input: a clear message and status 2 (zmp parallel: 255, as GNU
# parallel's errors).
for args in "--bogus" "" "frobnicate" "run" \
            "parallel -a $tmp/missing -- echo" "parallel -j x -- echo" \
            "parallel --timeout -1 -- echo" "parallel --keep -- echo" \
            "parallel --halt now,fail=1x -- echo" "parallel --halt later,fail=1 -- echo" \
            "parallel -- echo {..}" "parallel -- echo {+/}" "parallel -- echo {=1=}" \
            "parallel -- echo {0}" "parallel --trim x -- echo" "parallel -n 0 -- echo" \
            "parallel --colsep ( -- echo" "parallel -d \\q -- echo" "parallel -j" \
            "parallel --results" "parallel --dry-run=1 -- echo" "parallel -Z -- echo" \
            "parallel --resume --results $tmp/x -N 2 -- echo"; do
    want=2
    case $args in parallel*) want=255 ;; esac
    # shellcheck disable=SC2086
    $zmp $args < /dev/null > "$tmp/o" 2> "$tmp/e"
    st=$?
    if [ $st -eq $want ] && [ -s "$tmp/e" ] && ! [ -s "$tmp/o" ]; then
        ok "usage error: zmp $args"
    else
        bad "usage error: zmp $args (status $st: $(cat "$tmp/e"))"
    fi
done
# Without COMMAND each input is a command line, as in GNU parallel; an
# empty ::: is no input at all.
printf 'echo a b\necho "$((1+2))"\n' | $zmp parallel -k > "$tmp/o"
check "no COMMAND: the inputs are commands" "$? $(echo $(cat "$tmp/o"))" "0 a b 3"
$zmp parallel -- echo ::: > "$tmp/o"
check "an empty ::: runs nothing" "$? $(wc -c < "$tmp/o")" "0 0"

$zmp parallel -- echo <&- > /dev/null 2> "$tmp/e"
check "closed stdin: status 255" $? 255
grep -q "standard input" "$tmp/e" && ok "closed stdin: message" || bad "closed stdin: message"

# run and run-code pass output through and exit with the child's status.
out=$($zmp -i sh run-code 'echo "$0 $1"; exit 3' a b); st=$?
check "run-code output" "$out" "a b"
check "run-code status" "$st" 3
$zmp -i sh run-code 'kill -TERM $$'; check "death by signal is 128+N" $? 143
$zmp -i /nonexistent/zpy run x 2> "$tmp/e"; st=$?
check "missing interpreter status" "$st" 127
grep -q "No such file" "$tmp/e" && ok "missing interpreter message" || bad "missing interpreter message"

# --json stays valid JSON whatever the child writes, and is lossless.
$zmp -i sh run-code --json 'printf "a\377\n"; printf "e\033\n" >&2; exit 4' > "$tmp/j"
check "run --json status" $? 4
python3 - "$tmp/j" <<'PY' && ok "run --json is valid and lossless" || bad "run --json is valid and lossless"
import json, sys
o = json.load(open(sys.argv[1]))
raw = lambda s: s.encode("utf-8", "surrogateescape")
assert raw(o["out"]) == b"a\xff\n", o
assert raw(o["err"]) == b"e\x1b\n", o
assert o["ok"] is False and o["exit_code"] == 4
PY

# The resources a job used: in run --json and in each --results record.
$zmp -i ./tests/helper run --json work 300 32 > "$tmp/j"
check "run --json resources: status" $? 0
$zmp parallel --results "$tmp/r" -- ./tests/helper work {} 32 ::: 300 > /dev/null
check "--results resources: status" $? 0
python3 - "$tmp/j" "$tmp/r" <<'PY' && ok "resources: CPU seconds and peak RSS" || bad "resources: CPU seconds and peak RSS"
import json, sys
run = json.load(open(sys.argv[1]))
job = [r for r in map(json.loads, open(sys.argv[2])) if r.get("type") == "job"][0]
for o in (run, job):
    assert o["user_cpu"] >= 0.15 and o["user_cpu"] + o["system_cpu"] >= 0.27, o
    assert o["user_cpu"] + o["system_cpu"] <= o["seconds"] + 0.05, o
    assert o["max_rss_kb"] >= 32 * 1024, o
PY

# 10,000 jobs: every line accounted for.
seq 10000 > "$tmp/in"
$zmp parallel -j 64 -- "$child" echo < "$tmp/in" > "$tmp/out"; st=$?
check "10,000 jobs: status" "$st" 0
check "10,000 jobs: every line once" "$(sort -n "$tmp/out" | uniq | cmp - "$tmp/in" && echo same)" "same"
# --keep-order: input order.
seq 300 | $zmp parallel -k -j 16 -- "$child" echo > "$tmp/out"
check "--keep-order" "$(seq 300 | cmp - "$tmp/out" && echo same)" "same"
# ::: and {} {#}
check "::: with {} and {#}" "$($zmp parallel -k -- "$child" echo '{#}:{}' ::: a b c | tr '\n' ' ')" "1:a 2:b 3:c "

# 2,000 children alive at once.
seq 2000 | $zmp parallel -j 2000 --results "$tmp/r" -- "$child" sleep 6000 > /dev/null; st=$?
check "2,000 at once: status" "$st" 0
all_overlapped 2000 "$tmp/r" && ok "2,000 at once: all overlapped" || bad "2,000 at once: all overlapped"

# 10,000 children alive at once, each with stdout and stderr captured: the
# io_uring engine keeps the pipes out of the fd table (fixed files), so a
# 20,000-fd limit is enough.  The poll engine needs 3 fds a child: there,
# jobs past the limit wait their turn (the 2,000 above show concurrency).
hard=$(ulimit -Hn)
if [ "$ZMP_BACKEND" = io_uring ] && [ "$hard" != unlimited ] && [ "$hard" -lt 12000 ]; then
    echo "  SKIP: 10,000 at once needs a hard fd limit of 12,000 or more (have $hard)"
elif [ "$ZMP_BACKEND" = io_uring ]; then
    seq 10000 | $zmp parallel -j 10000 --results "$tmp/r" -- "$child" sleep 30000 > "$tmp/out"; st=$?
    check "10,000 at once: status" "$st" 0
    check "10,000 at once: every line" "$(sort -n "$tmp/out" | cmp - "$tmp/in" && echo same)" "same"
    all_overlapped 10000 "$tmp/r" && ok "10,000 at once: all overlapped" || bad "10,000 at once: all overlapped"
fi

# A timeout with a grandchild that ignores SIGTERM: bounded, reported.
start=$(date +%s)
$zmp parallel --timeout 0.5 --results "$tmp/r" -- sh -c 'trap "" TERM; sleep 30 & sleep 30; : {}' ::: x > /dev/null
st=$?
check "timeout: one failed job" "$st" 1
end=$(date +%s)
[ $((end - start)) -lt 10 ] && ok "timeout: bounded time" || bad "timeout: took $((end - start)) s"
grep -q '"timed_out":true' "$tmp/r" && ok "timeout: reported" || bad "timeout: reported"

# A flooding child under a cap: bounded output, truncation reported.
$zmp parallel --output-cap 1000 --results "$tmp/r" -- head -c '{}' /dev/zero ::: 300000000 > "$tmp/out"
check "cap: status" $? 0
check "cap: bytes printed" "$(wc -c < "$tmp/out")" 1000
grep -q '"truncated":true' "$tmp/r" && ok "cap: reported" || bad "cap: reported"

# A job killed by a signal: -N and the signal in --results, as run --json.
$zmp parallel --results "$tmp/r" -- sh -c 'kill -KILL $$; : {}' ::: x > /dev/null
check "killed job: status" $? 1
grep -q '"exit_code":-9,"signal":9' "$tmp/r" && ok "killed job: reported" || bad "killed job: reported"

# cgroup_dir NAME: make a cgroup v2 directory NAME and print its path, as
# test_cgroup_dir (tests/test-reliability.c) finds one: under our own
# cgroup where that is writable (a delegated subtree), else at the root of
# the first cgroup2 mount that lets us (the hybrid layout mounts it at
# /sys/fs/cgroup/unified), mount points from mountinfo.  Fails when none.
cgroup_dir() {
    _own=$(sed -n 's/^0:://p' /proc/self/cgroup 2> /dev/null)
    _own=${_own%/}  # the root: "", not "/"
    _mnts=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
        /proc/self/mountinfo 2> /dev/null)
    for _under in "$_own" ""; do
        for _m in $_mnts; do
            mkdir "$_m$_under/$1" 2> /dev/null && { echo "$_m$_under/$1"; return 0; }
        done
    done
    return 1
}

# --cgroup: what escaped with setsid dies with the job's cgroup.
if cg=$(cgroup_dir "zmp-cli-$$"); then
    $zmp parallel --cgroup "$cg" -- sh -c 'setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!; : {}' ::: x > "$tmp/pid"
    check "cgroup: status" $? 0
    state=$(awk '{ print $3 }' "/proc/$(cat "$tmp/pid")/stat" 2>/dev/null)
    case "$state" in ""|Z) ok "cgroup: escapee killed" ;; *) bad "cgroup: escapee still $state" ;; esac
    rmdir "$cg" && ok "cgroup: removed ($cg)" || bad "cgroup: removed ($cg)"
else
    echo "  SKIP: no writable cgroup v2 hierarchy"
fi

# zmp killed: its jobs, each in its own process group, go with it.
# (Inputs unique to this run: other runs of this suite may share the machine.)
$zmp parallel -j 4 -- "$child" sleep 30000 ::: "k$$-1" "k$$-2" "k$$-3" "k$$-4" > /dev/null &
zpid=$!
sleep 1
kill -TERM $zpid
reap $zpid
check "killed zmp: status" $? 143
sleep 0.2
left=0  # no pgrep: procps is not on a minimal system
for f in /proc/[0-9]*/cmdline; do
    case "$(tr '\0' ' ' < "$f")" in "$child sleep 30000 k$$-"*) left=$((left + 1)) ;; esac
done 2> /dev/null  # processes come and go while the loop runs
check "killed zmp: jobs gone" "$left" 0

# No shell anywhere: inputs with shell syntax reach the job as they are.
printf '%s\n' '$(touch $tmp/pwned)' '`touch $tmp/pwned`; touch $tmp/pwned' "a'b\"c" '*' |
    $zmp parallel -k -- ./tests/helper echo {} > "$tmp/o"
check "no shell: lines passed as they are" "$(cat "$tmp/o")" "$(printf '%s\n' '$(touch $tmp/pwned)' '`touch $tmp/pwned`; touch $tmp/pwned' "a'b\"c" '*')"
[ ! -e "$tmp/pwned" ] && ok "no shell: nothing ran" || bad "no shell: nothing ran"
# A job sees only fds 0, 1 and 2, whatever zmp has open.
$zmp parallel -- ./tests/helper fds ::: x 3< /dev/null 4< /dev/null > "$tmp/o"
check "job sees only fds 0-2" "$(cat "$tmp/o")" "0 1 2"

# --halt-on-error: nothing new starts after a failure; failures counted.
out=$(seq 50 | $zmp parallel -j 1 --halt-on-error -- sh -c 'echo $0; test $0 -ne 5'); st=$?
check "halt-on-error: one failure counted" $st 1
check "halt-on-error: nothing after the failure ran" "$(echo $out)" "1 2 3 4 5"
# ... even when the input never ends.
yes | $zmp parallel -j 2 --halt-on-error -- sh -c 'exit 1' > /dev/null 2>&1; st=$?
case $st in 1|2) ok "halt-on-error on endless input";; *) bad "halt-on-error on endless input (status $st)";; esac

# Input streams: a job starts as soon as its line is read, while the
# producer still writes (it waits for the first job's mark before writing
# the second line: with input read to the end first, it would say "late").
{
    echo first
    i=0
    while [ ! -e "$tmp/first" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if [ -e "$tmp/first" ]; then echo second; else echo late; fi
} | $zmp parallel -j 4 -k -- sh -c 'touch "$1/$0"; echo "$0"' {} "$tmp" > "$tmp/o"
check "input streams: jobs start before the input ends" "$(echo $(cat "$tmp/o"))" "first second"
# Timeouts fire while the input is awaited.
{ echo x; sleep 3; } | $zmp parallel --timeout 0.3 --results "$tmp/r" -- sh -c 'sleep 20' > /dev/null
check "timeout while input is awaited: status" $? 1
python3 - "$tmp/r" <<'PY' && ok "timeout while input is awaited: killed in time" || bad "timeout while input is awaited: killed in time"
import json, sys
j = [j for j in map(json.loads, open(sys.argv[1])) if j["type"] == "job"]
assert len(j) == 1 and j[0]["timed_out"] and j[0]["seconds"] < 2.5, j
PY
# A long line, and a last line without a newline.
python3 -c 'import sys; sys.stdout.write("a" * 100000 + "\nb")' | $zmp parallel -k -- sh -c 'echo ${#0}' > "$tmp/o"
check "long line and unterminated last line" "$(echo $(cat "$tmp/o"))" "100000 1"


# --- signals, write errors, messages ---------------------------------------
# Markers unique to this run: other runs of this suite may share the machine.

# SIGINT, SIGTERM, SIGHUP: every job ends (none is left behind) of the
# SIGTERM zmp sends, as GNU parallel's, every one gets a complete record,
# and zmp dies of the signal.  100 at once, tried several times: the jobs
# must not escape while zmp reaps the first ones.
for sig in INT:2 TERM:15 HUP:1 INT:2 TERM:15 HUP:1; do
    num=${sig#*:}
    sig=${sig%:*}
    m="sig$$-$sig-$(date +%N)"
    $zmp parallel -j 100 --results "$tmp/r" -- "$child" sleep 60000 "$m-{}" ::: $(seq 100) > "$tmp/o" &
    zpid=$!
    n=$(until_alive 100 60 "$m")
    kill -$sig $zpid
    reap $zpid; st=$?
    until_alive 0 3 "$m" > /dev/null
    check "SIG$sig to zmp parallel: 100 running, status, none left 3 s later" \
          "$n $st $(jobs_alive "$m")" "100 $((128 + num)) 0"
    python3 - "$tmp/r" 15 <<'PY' && ok "SIG$sig: 100 complete records, jobs ended by SIGTERM" || bad "SIG$sig: 100 complete records, jobs ended by SIGTERM"
import json, sys
jobs = [j for j in map(json.loads, open(sys.argv[1])) if j["type"] == "job"]
assert len(jobs) == 100, len(jobs)
assert sorted(j["seq"] for j in jobs) == list(range(1, 101))
types = [json.loads(l)["type"] for l in open(sys.argv[1])]
assert types[0] == "header" and "summary" not in types, types
assert all(j["signal"] == int(sys.argv[2]) for j in jobs), jobs
PY
done

# ... also while zmp waits for input that does not come (stdin a FIFO
# held open), and with jobs that ignore SIGTERM: SIGKILL 350 ms later.
mkfifo "$tmp/fifo"
m="wait$$"
$zmp parallel -j 8 -- sh -c 'trap "" TERM; exec "$0" sleep 60000 "$1"' "$child" "$m-{}" < "$tmp/fifo" > /dev/null 2>&1 &
zpid=$!
exec 7> "$tmp/fifo"
printf '1\n2\n' >&7
n=$(until_alive 2 60 "$m")
kill -TERM $zpid
ended $zpid 20; reap $zpid; st=$?
exec 7>&-
check "SIGTERM while input is awaited, jobs ignoring it: status, none left" "$n $st $(until_alive 0 3 "$m")" "2 143 0"

# SIGINT as GNU parallel takes it: the jobs get SIGTERM (not SIGINT) at
# once, 200 ms later and 100 ms after that, then SIGKILL 50 ms later;
# queued jobs never start; zmp prints and records the jobs it ended, and
# dies of SIGINT.  Each job says which signals it got (the mark is only
# in the arguments of its child).
m="gnu$$"
M=$m $zmp parallel -j 2 --results "$tmp/r" -- sh -c 'trap "echo TERM" TERM; trap "echo INT" INT; while :; do "$1" sleep 60000 "$M" & wait; done' sh "$child" ::: 1 2 3 4 > "$tmp/o" &
zpid=$!
n=$(until_alive 2 60 "$m")
start=$(date +%s%N)
kill -INT $zpid
reap $zpid; st=$?
end=$(date +%s%N)
check "SIGINT: 2 running, status, none left" "$n $st $(until_alive 0 3 "$m")" "2 130 0"
[ $(((end - start) / 1000000)) -lt 1500 ] && ok "SIGINT: ended in $(((end - start) / 1000000)) ms (GNU's sequence: 350)" ||
    bad "SIGINT: took $(((end - start) / 1000000)) ms (GNU's sequence: 350)"
python3 - "$tmp/r" "$tmp/o" <<'PY' && ok "SIGINT: jobs 1 and 2 got SIGTERM then SIGKILL, printed, recorded; 3 and 4 never ran" || bad "SIGINT: jobs 1 and 2 got SIGTERM then SIGKILL, printed, recorded; 3 and 4 never ran"
import json, sys
jobs = [j for j in map(json.loads, open(sys.argv[1])) if j["type"] == "job"]
assert sorted(j["seq"] for j in jobs) == [1, 2], jobs
for j in jobs:
    got = j["stdout"].split()
    assert 1 <= len(got) <= 3 and set(got) == {"TERM"}, j
    assert j["signal"] == 9 and j["interrupted"], j
printed = open(sys.argv[2]).read().split()
assert sorted(printed) == sorted(w for j in jobs for w in j["stdout"].split()), printed
PY

# With --termseq, a stop sends that sequence instead, SIGKILL after it.
m="seq$$"
M=$m $zmp parallel -j 2 --termseq INT,100 --results "$tmp/r" -- sh -c 'trap "echo TERM" TERM; trap "echo INT" INT; while :; do "$1" sleep 60000 "$M" & wait; done' sh "$child" ::: 1 2 > /dev/null &
zpid=$!
n=$(until_alive 2 60 "$m")
kill -TERM $zpid
reap $zpid; st=$?
check "SIGTERM with --termseq INT,100: 2 running, status, none left" "$n $st $(until_alive 0 3 "$m")" "2 143 0"
check "SIGTERM with --termseq INT,100: the jobs got SIGINT, then SIGKILL" \
    "$(python3 -c 'import json,sys; print(" ".join("%s:%s" % (r["stdout"].split(), r["signal"]) for r in map(json.loads, open(sys.argv[1])) if r["type"] == "job"))' "$tmp/r")" \
    "['INT']:9 ['INT']:9"

# zmp killed with SIGKILL (nothing of it runs to pass a signal on): its
# jobs die with it (PR_SET_PDEATHSIG), those that worker threads started
# too, and it leaves no file behind.
m="k9$$"
mkdir "$tmp/k9tmp"
TMPDIR="$tmp/k9tmp" $zmp parallel -j 4 --results "$tmp/r" -- "$child" sleep 60000 "$m-{}" ::: 1 2 3 4 5 6 > /dev/null &
zpid=$!
n=$(until_alive 4 60 "$m")
kill -KILL $zpid
reap $zpid; st=$?
check "kill -9 zmp parallel: 4 running, status, none left 3 s later, no file left" \
      "$n $st $(until_alive 0 3 "$m") $(ls -A "$tmp/k9tmp" | wc -l)" "4 137 0 0"
m="k9run$$"
$zmp -i "$child" run sleep 60000 "$m" > /dev/null &
zpid=$!
n=$(until_alive 1 60 "$m")
kill -KILL $zpid
reap $zpid; st=$?
check "kill -9 zmp run: child running, status, gone 3 s later" "$n $st $(until_alive 0 3 "$m")" "1 137 0"

# --results after SIGTERM: each job printed has its record, the file ends
# with a whole line, and the jobs killed have theirs too.
m="res$$"
{ seq 50 | sed 's/^/10 /'; seq 51 150 | sed 's/^/60000 /'; } > "$tmp/in"
$zmp parallel -j 150 --results "$tmp/r" -- sh -c 'exec "$0" sleep ${1% *} "$2-${1#* }"' "$child" {} "$m" < "$tmp/in" > "$tmp/o" &
zpid=$!
until_alive 100 60 "$m" > /dev/null
i=0
while [ "$(wc -l < "$tmp/o")" -lt 50 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $zpid
reap $zpid
check "--results after SIGTERM: status" $? 143
python3 - "$tmp/r" "$tmp/o" <<'PY' && ok "--results after SIGTERM: every job recorded, whole lines" || bad "--results after SIGTERM: every job recorded, whole lines"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("}\n"), raw[-100:]
jobs = [j for j in map(json.loads, raw.splitlines()) if j["type"] == "job"]
printed = open(sys.argv[2]).read().split()
assert len(printed) == 50 and len(jobs) == 150, (len(printed), len(jobs))
done = {j["stdout"].strip() for j in jobs if j["ok"]}
assert done == set(printed), (done, printed)
assert sum(j["signal"] == 15 for j in jobs) == 100
PY

# SIGTSTP stops the jobs with zmp, SIGCONT continues them all.
m="tstp$$"
in_own_group $zmp parallel -j 4 -- "$child" sleep 60000 "$m-{}" ::: 1 2 3 4 > /dev/null &
zpid=$!
n=$(until_alive 4 60 "$m")
kill -TSTP $zpid
stopped=$(until_alive 4 20 "$m" T)
check "SIGTSTP: zmp and its 4 jobs stopped" "$n $(state $zpid) $stopped" "4 T 4"
kill -CONT $zpid
check "SIGCONT: none stopped" "$(until_alive 0 20 "$m" T) $(state $zpid | tr -d T)" "0 S"
kill -TERM $zpid
reap $zpid
check "SIGCONT: still working, SIGTERM ends it" "$? $(until_alive 0 3 "$m")" "143 0"

# zmp run: a SIGTERM reaches the child, zmp dies of it after; SIGTSTP
# stops both.
m="run$$"
in_own_group $zmp -i "$child" run sleep 60000 "$m" > /dev/null &
zpid=$!
n=$(until_alive 1 60 "$m")
kill -TSTP $zpid
check "zmp run, SIGTSTP: child stopped" "$n $(until_alive 1 20 "$m" T)" "1 1"
kill -CONT $zpid
until_alive 0 20 "$m" T > /dev/null
kill -TERM $zpid
reap $zpid
check "zmp run, SIGTERM: status, child gone" "$? $(until_alive 0 3 "$m")" "143 0"

# A closed stdout pipe (| head -1) is seen at once: the jobs running are
# ended and zmp dies of SIGPIPE, silently.
m="head$$"
start=$(date +%s)
out=$({ $zmp parallel -j 3 -- "$child" sleep {} "$m" ::: 10 60000 60000 2> "$tmp/e"; echo $? > "$tmp/st"; } | head -1)
end=$(date +%s)
check "| head -1: first line, status, no message" "$out $(cat "$tmp/st") $(wc -c < "$tmp/e")" "$m 141 0"
[ $((end - start)) -lt 20 ] && ok "| head -1: prompt ($((end - start)) s)" || bad "| head -1: took $((end - start)) s"
check "| head -1: no job left" "$(until_alive 0 3 "$m")" 0

# A quick job's output is not held back while long jobs fill every place
# and many wait their turn (the workers tell the stream of ends in groups,
# but never later than a few ms).
m="prompt$$"
start=$(date +%s)
out=$({ $zmp parallel -j 2 -- "$child" sleep {} "$m" ::: 10 $(yes 60000 | head -20) 2> "$tmp/e"; } | head -1)
end=$(date +%s)
check "an end told while long jobs run: first line" "$out" "$m"
[ $((end - start)) -lt 20 ] && ok "an end told while long jobs run: prompt ($((end - start)) s)" ||
    bad "an end told while long jobs run: took $((end - start)) s"
check "an end told while long jobs run: no job left" "$(until_alive 0 3 "$m")" 0

# Write errors: reported once, naming the file; a failure status (255 for
# the jobs' output, as GNU parallel's "other error").
$zmp parallel -- "$child" echo {} ::: a b > /dev/full 2> "$tmp/e"
check "parallel >/dev/full: status" $? 255
check "parallel >/dev/full: one message" "$(cat "$tmp/e")" "zmp parallel: cannot write standard output: No space left on device"
$zmp parallel -- "$child" echo {} ::: a >&- 2> "$tmp/e"
check "parallel >&-: status" $? 255
check "parallel >&-: message" "$(cat "$tmp/e")" "zmp parallel: cannot write standard output: Bad file descriptor"
$zmp parallel -- sh -c 'echo "$0" >&2' ::: a 2> /dev/full
check "parallel 2>/dev/full: status" $? 255
$zmp parallel -- sh -c 'echo "$0" >&2' ::: a 2>&-
check "parallel 2>&-: status" $? 255
$zmp parallel --results /dev/full -- "$child" echo {} ::: a > /dev/null 2> "$tmp/e"
check "--results /dev/full: status" $? 255
check "--results /dev/full: message" "$(cat "$tmp/e")" "zmp parallel: cannot write /dev/full: No space left on device"
# ... seen at once even when the input never ends.
yes | timeout 60 $zmp parallel --results /dev/full -- true > /dev/null 2> "$tmp/e"
check "--results /dev/full, endless input: stops, status" $? 255
yes | timeout 60 $zmp parallel -- "$child" echo > /dev/full 2> /dev/null
check ">/dev/full, endless input: stops, status" $? 255
$zmp -i sh run-code 'echo hi' > /dev/full 2> "$tmp/e"
check "run-code >/dev/full: status" $? 125
check "run-code >/dev/full: message" "$(cat "$tmp/e")" "zmp: cannot write standard output: No space left on device"
$zmp -i sh run-code --json 'echo hi' > /dev/full 2> "$tmp/e"
check "run-code --json >/dev/full: status, message" "$? $(cat "$tmp/e")" "125 zmp: cannot write standard output: No space left on device"
$zmp -i sh run-code 'echo hi >&2; exit 3' 2> /dev/full
check "run-code 2>/dev/full: status" $? 125
$zmp cpu-count > /dev/full 2> /dev/null
check "cpu-count >/dev/full: status" $? 2
# ... the help texts too, with each command's status for a write error.
for h in "zmp:--help:2" "zmp parallel:parallel --help:255" "zmp merge:merge --help:255"; do
    name=${h%%:*} st=${h##*:} args=${h#*:}
    args=${args%:*}
    $zmp $args > "$tmp/o"
    check "$args: status, text" "$? $(head -c 10 "$tmp/o")" "0 usage: zmp"
    $zmp $args > /dev/full 2> "$tmp/e"
    check "$args >/dev/full: status, one message" "$? $(cat "$tmp/e")" "$st $name: cannot write standard output: No space left on device"
    $zmp $args >&- 2> "$tmp/e"
    check "$args >&-: status, one message" "$? $(cat "$tmp/e")" "$st $name: cannot write standard output: Bad file descriptor"
done

# A closed stdout or stderr at start: the results file does not take its
# descriptor, so nothing but records lands in it.
$zmp parallel --results "$tmp/r" -- sh -c 'echo "out $0"; echo "err $0" >&2' ::: a b >&- 2>&-
check "closed stdout and stderr: status" $? 255
python3 - "$tmp/r" <<'PY' && ok "closed stdout and stderr: results file clean" || bad "closed stdout and stderr: results file clean"
import json, sys
jobs = [j for j in map(json.loads, open(sys.argv[1])) if j["type"] == "job"]
assert len(jobs) >= 1 and all(j["command"][0] == "sh" for j in jobs), jobs
PY

# Messages a user can act on.
$zmp -i sh run-code '' 2> "$tmp/e"
check "run-code '': status, message" "$? $(cat "$tmp/e")" "2 zmp: run-code: the CODE is empty"
ZMP_BACKEND=bogus $zmp -i sh run-code 'exit 0' 2> "$tmp/e"
check "ZMP_BACKEND=bogus: run-code" "$? $(cat "$tmp/e")" "127 zmp: ZMP_BACKEND=bogus: no such engine (use io_uring, poll or auto)"
ZMP_BACKEND=bogus $zmp parallel -- true ::: a 2> "$tmp/e"
check "ZMP_BACKEND=bogus: parallel" "$? $(cat "$tmp/e")" "255 zmp: ZMP_BACKEND=bogus: no such engine (use io_uring, poll or auto)"
out=$(ZMP_BACKEND=bogus $zmp backend 2> "$tmp/e")
check "ZMP_BACKEND=bogus: backend" "$? $out $(cat "$tmp/e")" "1 none zmp: ZMP_BACKEND=bogus: no such engine (use io_uring, poll or auto)"
$zmp parallel -- '' ::: a 2> "$tmp/e"
check "empty program: status, message" "$? $(cat "$tmp/e")" "1 zmp: job 1: the program name is empty"
$zmp parallel --cgroup "$tmp/none" -- true ::: a 2> "$tmp/e"
check "--cgroup missing: status, message" "$? $(cat "$tmp/e")" "255 zmp parallel: --cgroup $tmp/none: cannot make a cgroup there: No such file or directory"
$zmp parallel --cgroup "$tmp" -- true ::: a 2> "$tmp/e"
check "--cgroup not a cgroup: status, message" "$? $(cat "$tmp/e")" "255 zmp parallel: --cgroup $tmp: cannot make a cgroup there: not a cgroup v2 directory"

# -j: N, +N, -N, N%, 0 (no limit), and nothing else.  The most jobs seen
# at once, from the --results times (a job starts after the one it
# replaces has been recorded).
max_at_once() {
    python3 - "$1" <<'PY'
import json, sys
jobs = [j for j in map(json.loads, open(sys.argv[1])) if j["type"] == "job"]
print(max(sum(k["start"] <= j["start"] < k["start"] + k["seconds"] for k in jobs) for j in jobs))
PY
}
cpus=$($zmp cpu-count)
for spec in "1:1" "+1:$((cpus + 1))" "50%:$(((cpus + 1) / 2))" \
            "200%:$((cpus * 2))" "0:$((cpus * 2 + 3))"; do
    j=${spec%%:*}
    # Two more jobs than may run at once (all of them for -j 0).
    more=2
    [ "$j" = 0 ] && more=0
    $zmp parallel -j "$j" --results "$tmp/r" -- "$child" sleep 1500 {} ::: $(seq $((${spec#*:} + more))) > /dev/null
    check "-j $j: status, at most ${spec#*:} at once" "$? $(max_at_once "$tmp/r")" "0 ${spec#*:}"
done
if [ "$cpus" -gt 1 ]; then
    $zmp parallel -j -1 --results "$tmp/r" -- "$child" sleep 1500 {} ::: $(seq $((cpus + 1))) > /dev/null
    check "-j -1: status, at most $((cpus - 1)) at once" "$? $(max_at_once "$tmp/r")" "0 $((cpus - 1))"
fi
for j in 0% -$cpus -1000; do
    $zmp parallel -j "$j" -- true ::: a 2> "$tmp/e"
    check "-j $j: no slot left, an error" "$? $(cut -d' ' -f1-7 "$tmp/e")" "255 zmp parallel: -j leaves no job slot"
done
for j in " 5" "5 " "++5" "+-5" "5%%" "%" "+" "1000001" "0x5" "+5%"; do
    $zmp parallel -j "$j" -- true ::: a 2> "$tmp/e"
    check "-j '$j' refused" "$? $(head -1 "$tmp/e")" "255 zmp parallel: bad -j: $j (want N, +N, -N or N%)"
done

# --- GNU parallel's inputs and replacement strings ---------------------------
# (tests/compat.sh compares these with GNU parallel itself; here what
# holds without it.)
$zmp parallel -k -- echo ::: a b ::: 1 2 :::+ x y > "$tmp/o"
check "sources: combinations, linked" "$(echo $(cat "$tmp/o"))" "a 1 x a 2 y b 1 x b 2 y"
printf 'f1\0f2\0' > "$tmp/nul"
$zmp parallel -k -0 -a "$tmp/nul" -a "$tmp/nul" -- echo {2}{1} > "$tmp/o"
check "sources: -0, -a twice, positions" "$(echo $(cat "$tmp/o"))" "f1f1 f2f1 f1f2 f2f2"
$zmp parallel -k -- printf '[%s]' {} {.} {/} {//} {/.} ::: /d.x/f.tar.gz > "$tmp/o"
check "replacement strings" "$(cat "$tmp/o")" "[/d.x/f.tar.gz][/d.x/f.tar][f.tar.gz][/d.x][f.tar]"
seq 30 | $zmp parallel -j 3 -- sh -c 'echo $0; sleep 0.0$0' {%} > "$tmp/o"
check "{%}: slots 1 to 3 only" "$(sort -u "$tmp/o" | tr '\n' ' ')" "1 2 3 "
seq 10 | $zmp parallel -k -j 3 -X -- echo x{} > "$tmp/o"
check "-X: spread over the slots, the word repeated" "$(cat "$tmp/o" | tr '\n' '|')" "x1 x2 x3 x4|x5 x6 x7 x8|x9 x10|"
# -m under the real argument limit: 300,000 inputs of 7 bytes cannot go
# in one exec; every input comes out once.
seq 1000000 1300000 | $zmp parallel -m -j 1 -- echo > "$tmp/o"
check "-m: split under the argument limit, nothing lost" \
    "$(($(wc -l < "$tmp/o") > 1)) $(tr ' ' '\n' < "$tmp/o" | sort | uniq -u | wc -l | tr -d ' ')" "1 300001"
# --shell: inputs are data, never code.
printf '%s\0' '$(touch pwned1)' '`touch pwned2`' 'a; touch pwned3' "it's \"q\"" 'x
y' '*' '~' | (cd "$tmp" && "$zmp_abs" parallel -0 -k --shell 'printf "[%s]" {} | cat') > "$tmp/o"
check "--shell: hostile inputs are quoted" "$(cat "$tmp/o")" '[$(touch pwned1)][`touch pwned2`][a; touch pwned3][it'"'"'s "q"][x
y][*][~]'
check "--shell: nothing ran" "$(ls "$tmp" | grep -c pwned)" 0
$zmp parallel --dry-run -- echo ::: 'a b' "it's" -n > "$tmp/o"
check "--dry-run: quoted as GNU parallel" "$(cat "$tmp/o")" "echo 'a b'
echo 'it'\"'\"'s'
echo -n"
# A 131,000-byte argument passes whole; a 100 MB line as one is refused
# before exec (the kernel's limit), with a message and status 255, as GNU
# parallel refuses a command line too long, not cut.
head -c 131000 /dev/zero | tr '\0' x | $zmp parallel -- sh -c 'echo ${#0}' > "$tmp/o"
check "131,000-byte argument" "$(cat "$tmp/o")" 131000
head -c 100000000 /dev/zero | tr '\0' y | $zmp parallel -- true 2> "$tmp/e"
check "100 MB line: refused, said" "$? $(cut -c1-44 "$tmp/e")" "255 zmp parallel: command line too long for exec"
# --halt: GNU's statuses.
$zmp parallel -j 1 --halt now,fail=1 --shell 'exit {}' ::: 0 3 0 5 2> "$tmp/e"
check "--halt now,fail=1: the job's status" $? 3
$zmp parallel -j 1 --halt soon,success=1 --shell 'exit {}' ::: 4 0 3 2> "$tmp/e"
check "--halt soon,success=1: 0" $? 0
$zmp parallel -j 1 --halt now,done=2 --shell 'exit {}' ::: 4 0 3 2> "$tmp/e"
check "--halt now,done=2: failed count" $? 1
seq 150 | $zmp parallel -j 4 -- false
check "150 failures: 101" $? 101

# --joblog in GNU parallel's format; --resume, --resume-failed and
# --retry-failed read it back.
rm -f "$tmp/jl"
$zmp parallel -k --joblog "$tmp/jl" --shell 'echo {}; exit {}' ::: 0 3 > /dev/null
check "--joblog: status" $? 1
check "--joblog: header, seq, exit values, commands" \
    "$(cut -f1,2,5-9 "$tmp/jl" | tr '\t\n' ',|')" \
    "Seq,Host,Send,Receive,Exitval,Signal,Command|1,:,0,2,0,0,echo 0; exit 0|2,:,0,2,3,0,echo 3; exit 3|"
$zmp parallel --joblog "$tmp/jl" --resume -k --shell 'echo {}; exit {}' ::: 0 3 0 > "$tmp/o"
check "--joblog --resume: only the new input" "$? $(cat "$tmp/o") $(wc -l < "$tmp/jl")" "0 0 4"
$zmp parallel --joblog "$tmp/jl" --resume-failed -k --shell 'echo again {}' ::: 0 3 0 > "$tmp/o"
check "--joblog --resume-failed: the failed one" "$? $(cat "$tmp/o") $(tail -1 "$tmp/jl" | cut -f1,7)" "0 again 3 2	0"
printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n1\t:\t1.0\t1.0\t0\t0\t1\t0\techo retried one\n2\t:\t1.0\t1.0\t0\t0\t0\t0\techo not me\n' > "$tmp/jl2"
$zmp parallel --retry-failed --joblog "$tmp/jl2" > "$tmp/o"
check "--retry-failed: the joblog's failed commands" "$? $(cat "$tmp/o") $(tail -1 "$tmp/jl2" | cut -f1,7,9)" "0 retried one 1	0	echo retried one"
echo 'not a joblog' > "$tmp/jl3"
$zmp parallel --resume --joblog "$tmp/jl3" -- true ::: a 2> "$tmp/e"
check "--resume of a bad joblog: refused" "$? $(cat "$tmp/e")" "255 zmp parallel: --resume: $tmp/jl3: line 1 is not a joblog line"
$zmp parallel --joblog /dev/full -- true ::: a 2> "$tmp/e"
check "--joblog /dev/full: status, message" "$? $(cat "$tmp/e")" "255 zmp parallel: cannot write /dev/full: No space left on device"
(cd "$tmp" && "$zmp_abs" parallel -j 1 -k --joblog - echo ::: a b > o)
check "--joblog -: on stdout, header first, each line after its job" \
    "$? $(cut -f1,7,9 "$tmp/o" | tr '\t\n' ',;') $(test -e "$tmp/-" && echo file)" \
    "0 Seq,Exitval,Command;a;1,0,echo a;b;2,0,echo b; "
$zmp parallel --joblog - --resume -- true ::: a 2> "$tmp/e" > "$tmp/o"
check "--joblog - --resume: refused" "$? $(wc -c < "$tmp/o")" "255 0"
# --timeout N%: of the median runtime of the jobs that succeeded.
$zmp parallel -j 1 --joblog "$tmp/jl" --timeout 300% --shell 'sleep {}' ::: 0.1 0.1 0.1 5
check "--timeout 300%: the slow job stopped" "$? $(tail -1 "$tmp/jl" | cut -f7,8)" "1 -1	15"
# --termseq: what a timeout sends.
$zmp parallel --termseq INT,200,KILL --timeout 0.2 --shell 'trap "echo got INT; exit 7" INT; sleep 5 & wait; echo {}' ::: a > "$tmp/o"
check "--termseq INT first" "$? $(cat "$tmp/o")" "1 got INT"
# --delay: starts at least that far apart.
start=$(date +%s%N)
$zmp parallel -j 4 --delay 0.25 -- true ::: 1 2 3 4 5
check "--delay 0.25: five starts take a second" "$(( ($(date +%s%N) - start) / 1000000 >= 1000 ))" 1

# --pipe: stdin in blocks of whole records, every byte once.
seq 200000 > "$tmp/seq"
$zmp parallel -k --pipe --block 100k -- cat < "$tmp/seq" > "$tmp/o"
check "--pipe -k: every byte, in order" "$(cksum < "$tmp/o")" "$(cksum < "$tmp/seq")"
$zmp parallel --pipe --block 100k -- wc -c < "$tmp/seq" > "$tmp/o"
check "--pipe: blocks of at most 100k (k: 1000)" \
    "$(awk '{s += $1; if ($1 > 100000) big++} END {print s, big + 0, NR}' "$tmp/o")" \
    "$(wc -c < "$tmp/seq" | tr -d ' ') 0 13"
$zmp parallel --pipe --block 100k -- sh -c 'tail -c 1 | od -An -c' < "$tmp/seq" > "$tmp/o"
check "--pipe: blocks of whole lines" "$(sort -u "$tmp/o" | tr -d ' ')" '\n'
printf '>a\nx\n>b\ny\n>c\nz\n' | $zmp parallel -k --pipe --block 3 --recstart '>' -- sh -c 'cat; echo ---' > "$tmp/o"
check "--pipe --recstart: records longer than a block" "$(echo $(cat "$tmp/o"))" ">a x --- >b y --- >c z ---"
printf 'a;b;c;' | $zmp parallel -k --pipe --block 2 --recend ';' -- sh -c 'cat; echo' > "$tmp/o"
check "--pipe --recend" "$(echo $(cat "$tmp/o"))" "a; b; c;"
# --round-robin: at most -j jobs, each fed blocks as it takes them; every
# byte once, whole lines; a short input starts fewer; a job that stops
# reading is replaced; an empty input starts none.
$zmp parallel -k --pipe --round-robin -j 3 --block 1k -- cat < "$tmp/seq" > "$tmp/o"
check "--round-robin: every line once" "$(sort -n "$tmp/o" | cksum)" "$(cksum < "$tmp/seq")"
$zmp parallel --pipe --round-robin -j 3 --block 10k -- wc -l < "$tmp/seq" > "$tmp/o"
check "--round-robin: 3 jobs, all lines" "$(awk '{s += $1} END {print NR, s}' "$tmp/o")" "3 200000"
seq 10 | $zmp parallel --pipe --round-robin -j 4 --block 100 -- wc -l > "$tmp/o"
check "--round-robin: one block, one job" "$(cat "$tmp/o")" 10
$zmp parallel --pipe --round-robin -j 4 -- wc -l < /dev/null > "$tmp/o"
check "--round-robin: no input, no job" "$? $(wc -c < "$tmp/o" | tr -d ' ')" "0 0"
timeout 60 $zmp parallel -k --pipe --round-robin -j 2 --block 1k -- head -1 < "$tmp/seq" > "$tmp/o"
check "--round-robin: jobs that stop reading are replaced, no hang" "$? $(head -1 "$tmp/o")" "0 1"
$zmp parallel --round-robin -- cat ::: a 2> "$tmp/e"
check "--round-robin without --pipe refused" "$?" 255
$zmp parallel --pipe -- cat ::: a 2> "$tmp/e"
check "--pipe with :::: refused" "$?" 255

# --retries: GNU's count of tries in all; only the last try printed.
rm -f "$tmp"/*.n
(cd "$tmp" && "$zmp_abs" parallel -k --retries 3 --shell 'n=$(cat {}.n 2> /dev/null || echo 0); n=$((n + 1)); echo $n > {}.n; echo {} try $n; [ $n -ge 3 ]' ::: a b) > "$tmp/o"
check "--retries 3: third try printed" "$? $(echo $(cat "$tmp/o"))" "0 a try 3 b try 3"
(cd "$tmp" && "$zmp_abs" parallel --retries 2 --joblog jl --shell 'n=$(cat {}.n 2> /dev/null || echo 0); n=$((n + 1)); echo $n > {}.n; echo try $n; exit 1' ::: c) > "$tmp/o"
check "--retries 2: fails after two tries, one joblog line" "$? $(cat "$tmp/o") $(wc -l < "$tmp/jl")" "1 try 2 2"
# --memfree: no job starts while too little memory is available.
timeout 3 $zmp parallel --memfree 1000T -- sh -c 'echo ran' ::: a > "$tmp/o"
check "--memfree 1000T: nothing starts" "$? $(cat "$tmp/o")" "124 "
$zmp parallel --memfree 1k -- sh -c 'echo ran' ::: a > "$tmp/o"
check "--memfree 1k: starts" "$? $(cat "$tmp/o")" "0 ran"
# --memfree below half: the youngest job is ended with --termseq, one at a
# time, and --retries runs it again once memory allows.  MemAvailable is
# set by a file bind-mounted over /proc/meminfo in a mount namespace of
# the test's own (root only).
meminfo() { printf 'MemTotal: 100000000 kB\nMemFree: %s kB\nMemAvailable: %s kB\n' "$2" "$2" > "$1"; }
# with_meminfo DIR CMD...: CMD, with DIR/meminfo mounted over /proc/meminfo.
with_meminfo() {
    unshare -m sh -c 'mount --bind "$1/meminfo" /proc/meminfo && shift && exec "$@"' sh "$@"
}
# until_file FILE: wait (up to 10 s) until FILE exists, then 0.3 s more.
until_file() {
    _i=0
    while [ ! -e "$1" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    sleep 0.3
}
if [ "$(id -u)" = 0 ] && unshare -m true 2> /dev/null; then
    d="$tmp/mf"
    mkdir "$d"
    meminfo "$d/meminfo" 50000000
    # Each job's first try waits for "go"; ended, it sets MemAvailable to
    # 7 GB: under --memfree (no start), over half of it (no more ending).
    # --delay starts them in turn: the youngest is the one started last,
    # and jobs handed to two workers at once may start in either order.
    cat > "$d/job" <<'JOB'
#!/bin/sh
d=$1 x=$2
if [ -e "$d/$x.ran" ]; then echo "again $x"; exit 0; fi
: > "$d/$x.ran"
trap 'echo "term $x" >> "$d/terms"; printf "MemAvailable: 7000000 kB\n" > "$d/meminfo"; exit 143' TERM
echo "first $x"
while [ ! -e "$d/go" ]; do sleep 0.05; done
JOB
    chmod +x "$d/job"
    with_meminfo "$d" $zmp parallel -j 3 --delay 0.3 --memfree 10G --retries 2 --joblog "$d/jl" -- "$d/job" "$d" {} ::: a b c \
        > "$d/o" 2> "$d/e" &
    zpid=$!
    until_file "$d/c.ran"
    meminfo "$d/meminfo" 4000000
    i=0
    while [ ! -s "$d/terms" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    sleep 1
    check "--memfree: the youngest job ended, only it" "$(cat "$d/terms")" "term c"
    meminfo "$d/meminfo" 50000000
    : > "$d/go"
    wait $zpid
    check "--memfree --retries: status, the ended job run again" "$? $(sort "$d/o" | tr '\n' ' ')" \
        "0 again c first a first b "
    check "--memfree: said" "$(grep -c 'memfree: 3906 MiB of memory available, under half of 10240 MiB: ending the youngest job (pid [0-9]*)$' "$d/e") $(wc -l < "$d/e")" "1 1"
    check "--memfree --retries: joblog" "$(cut -f1,7,8 "$d/jl" | tail -n +2 | sort | tr '\t\n' ':,')" "1:0:0,2:0:0,3:0:0,"
    # Without --retries: each job ended in turn, failed: exit value -1 and
    # the signal in the joblog, as GNU parallel's.
    rm -f "$d"/*.ran "$d/go"
    meminfo "$d/meminfo" 50000000
    with_meminfo "$d" $zmp parallel -j 2 --memfree 10G --joblog "$d/jl" -- sh -c 'echo "$1"; : > "$0/$1.ran"; exec sleep 30' "$d" {} ::: a b \
        > "$d/o" 2> "$d/e" &
    zpid=$!
    until_file "$d/b.ran"
    meminfo "$d/meminfo" 4000000
    wait $zpid
    check "--memfree: every job ended, status, output printed" "$? $(sort "$d/o" | tr '\n' ' ')" "2 a b "
    check "--memfree: youngest first" "$(grep -o 'pid [0-9]*' "$d/e" | cut -c5- | tr '\n' ' ' | awk '{ print ($1 > $2) }')" 1
    # (Lines in the order the ends are reported, which two workers may swap.)
    check "--memfree: joblog -1 and SIGTERM" "$(cut -f1,7,8 "$d/jl" | tail -n +2 | sort | tr '\t\n' ':,')" "1:-1:15,2:-1:15,"
else
    skip "--memfree ending jobs (root only: a file is mounted over /proc/meminfo)"
fi

# --arg-sep after options with values; a retried job finished at a stop.
echo in | $zmp parallel -k -j 2 --arg-sep ,, -- echo ,, a b > "$tmp/o"
check "--arg-sep after -j 2" "$(echo $(cat "$tmp/o"))" "a b"
printf '#!/bin/sh\ncase $1 in a) echo A; echo E >&2; sleep 1; exit 1;; b) echo B;; esac\n' > "$tmp/ab.sh"
chmod +x "$tmp/ab.sh"
$zmp parallel -k -j 1 --delay 3 --retries 5 --joblog "$tmp/jl4" --results "$tmp/r4" -- "$tmp/ab.sh" ::: a b > "$tmp/o" 2> "$tmp/e" &
pid=$!
sleep 2.5
kill -TERM $pid
wait $pid
check "--retries then SIGTERM: the waiting job recorded, status" "$? $(cut -f1,7 "$tmp/jl4" | tail -n +2 | tr '\t\n' ':,')" "143 1:1,"
check "--retries then SIGTERM: its last try printed and recorded" \
    "$(cat "$tmp/o") $(cat "$tmp/e") $(grep -c '"stdout":"A\\n","stderr":"E\\n"' "$tmp/r4")" "A E 1"
# --timeout and --delay in GNU's units.
$zmp parallel --timeout 0m1s -- sleep ::: 5
check "--timeout 0m1s" $? 1

# --- shards, resumable results, merge ----------------------------------------
# Three shards of 100 inputs: together they run each input once, {#} is
# the global number, and merge says complete with the 10 failures.
seq 100 > "$tmp/in"
for k in 0 1 2; do
    $zmp parallel --shard $k/3 --results "$tmp/s$k" -a "$tmp/in" -- sh -c 'echo "$1:$0"; [ $(($0 % 10)) != 0 ]' {} {#} > "$tmp/o$k"
    check "--shard $k/3: status (its failures)" $? $((k == 0 ? 4 : 3))
done
check "--shard: every input once, {#} global" "$(cat "$tmp"/o0 "$tmp"/o1 "$tmp"/o2 | sort -t: -k2 -n | tr '\n' ' ')" "$(seq 100 | sed 's/.*/&:&/' | tr '\n' ' ')"
$zmp merge "$tmp"/s0 "$tmp"/s1 "$tmp"/s2 > "$tmp/m"
check "merge: complete with failures: status, summary" "$? $(cat "$tmp/m")" "1 complete: 3 shards, 100 inputs: 100 ran, 90 ok, 10 failed"
check "merge --json" "$($zmp merge --json "$tmp"/s2 "$tmp"/s0 "$tmp"/s1)" '{"complete":true,"shards":3,"inputs":100,"ran":100,"ok":90,"failed":10,"missing_inputs":0,"missing_shards":[],"incomplete_shards":[],"command":["sh","-c","echo \"$1:$0\"; [ $(($0 % 10)) != 0 ]","{}","{#}"]}'
check "merge --failed: the failed inputs" "$($zmp merge --failed "$tmp"/s0 "$tmp"/s1 "$tmp"/s2 | sort -n | tr '\n' ' ')" "10 20 30 40 50 60 70 80 90 100 "
$zmp merge "$tmp"/s0 "$tmp"/s2 > "$tmp/m"
check "merge: a shard missing: status" "$? $(sed -n 2p "$tmp/m")" "2 shard 1: missing (no file)"
python3 - "$tmp"/s0 <<'PY' && ok "--results: header, jobs with seq and input, summary" || bad "--results: header, jobs with seq and input, summary"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
h, s = recs[0], recs[-1]
assert h["type"] == "header" and h["shard"] == {"k": 0, "n": 3} and h["command"][0] == "sh", h
assert s["type"] == "summary" and s["inputs"] == 100 and s["jobs"] == 34 and s["failed"] == 4, s
jobs = recs[1:-1]
assert sorted(j["seq"] for j in jobs) == list(range(1, 101, 3)), jobs
assert all(j["type"] == "job" and j["input"] == str(j["seq"]) for j in jobs)
PY
# --resume-failed runs the failed ones again (now they pass), and only them.
$zmp parallel --shard 1/3 --results "$tmp/s1" --resume-failed -a "$tmp/in" -- sh -c 'echo "$1:$0"; [ $(($0 % 10)) != 0 ]' {} {#} > /dev/null
check "--resume-failed: same failures again" $? 3
$zmp parallel --shard 1/3 --results "$tmp/s1" --resume -a "$tmp/in" -- sh -c 'echo "$1:$0"; [ $(($0 % 10)) != 0 ]' {} {#} > "$tmp/o"
check "--resume of a complete shard: nothing runs" "$? $(wc -c < "$tmp/o")" "0 0"
$zmp parallel --shard 1/3 --results "$tmp/s1" --resume -a "$tmp/in" -- echo {} > /dev/null 2> "$tmp/e"
check "--resume of another command: refused" "$? $(cat "$tmp/e")" "255 zmp parallel: --resume: $tmp/s1 was written by another command"
# A shard killed with SIGKILL, then resumed: merge sees it incomplete, then
# complete with every input recorded once; nothing recorded runs again.
seq 60 > "$tmp/in"
$zmp parallel -j 2 --shard 1/2 --results "$tmp/k1" -a "$tmp/in" -- sh -c 'sleep 0.05; echo {}' > /dev/null &
zpid=$!
i=0
while [ "$(cat "$tmp/k1" 2>/dev/null | grep -c '"type":"job"')" -lt 5 ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
kill -KILL $zpid
reap $zpid
$zmp parallel --shard 0/2 --results "$tmp/k0" -a "$tmp/in" -- sh -c 'sleep 0.05; echo {}' > /dev/null
before=$(grep -c '"type":"job"' "$tmp/k1")
printf '{"type":"job","seq":' >> "$tmp/k1"   # a torn last line
$zmp merge "$tmp/k0" "$tmp/k1" > "$tmp/m"
check "killed shard: merge says incomplete" "$? $(sed -n 2p "$tmp/m")" "2 shard 1: not finished (no summary: killed, or still running): $tmp/k1"
$zmp parallel --shard 1/2 --results "$tmp/k1" --resume -a "$tmp/in" -- sh -c 'sleep 0.05; echo {}' > "$tmp/o"
check "killed shard resumed: status, only the rest ran" "$? $(wc -l < "$tmp/o")" "0 $((30 - before))"
check "killed shard resumed: merge complete" "$($zmp merge "$tmp/k0" "$tmp/k1"; echo $?)" "complete: 2 shards, 60 inputs: 60 ran, 60 ok, 0 failed
0"
python3 - "$tmp/k1" <<'PY' && ok "killed shard resumed: each input recorded once, whole lines" || bad "killed shard resumed: each input recorded once, whole lines"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
jobs = [r for r in recs if r["type"] == "job"]
assert sorted(j["seq"] for j in jobs) == list(range(2, 61, 2)), sorted(j["seq"] for j in jobs)
assert all(j["stdout"] == j["input"] + "\n" for j in jobs)
PY
# A run stopped by SIGTERM (a preempted task): the jobs it cut short are
# recorded as interrupted, and --resume runs them again.
m="pre$$"
$zmp parallel -j 3 --results "$tmp/ri" -- sh -c 'if [ -e "$1" ]; then echo "$0"; else exec "$2" sleep 30000 "$3-$0"; fi' {} "$tmp/fast" "$child" "$m" ::: a b c > /dev/null &
zpid=$!
n=$(until_alive 3 60 "$m")
kill -TERM $zpid
reap $zpid; st=$?
check "preempted: 3 running, status, 3 interrupted records" "$n $st $(grep -c '"interrupted":true' "$tmp/ri")" "3 143 3"
touch "$tmp/fast"
$zmp parallel -j 3 --results "$tmp/ri" --resume -- sh -c 'if [ -e "$1" ]; then echo "$0"; else exec "$2" sleep 30000 "$3-$0"; fi' {} "$tmp/fast" "$child" "$m" ::: a b c > "$tmp/o"
check "preempted, resumed: the interrupted jobs ran again" "$? $(sort "$tmp/o" | tr '\n' ' ')" "0 a b c "
check "preempted, resumed: merge complete" "$($zmp merge "$tmp/ri" > /dev/null; echo $?)" 0
# A job killed from outside (a scheduler signals every process of the task,
# maybe before zmp) is interrupted too; one killed by its timeout or one
# that fails on its own is not.
rm -f "$tmp/rk"
$zmp parallel -j 1 --timeout 0.2 --results "$tmp/rk" -- sh -c 'case $0 in term) kill -TERM $$;; kill) kill -KILL $$;; fail) exit 1;; *) sleep 5;; esac' ::: term kill fail slow 2> /dev/null
check "killed from outside: interrupted; failed or timed out: not" \
    "$? $(python3 -c 'import json,sys; print(" ".join("%s=%s" % (r["input"], r["interrupted"]) for r in map(json.loads, open(sys.argv[1])) if r["type"] == "job"))' "$tmp/rk")" \
    "4 term=True kill=True fail=False slow=False"
# auto/N: the array index of Slurm (modulo N), Kubernetes, AWS Batch.
check "--shard auto/4, Slurm --array=0-3" "$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=3 $zmp parallel -k --shard auto/4 -- echo ::: a b c d e f | tr '\n' ' ')" "b f "
check "--shard auto/4, Slurm --array=1-4, task 4" "$(SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=4 $zmp parallel -k --shard auto/4 -- echo ::: a b c d e f | tr '\n' ' ')" "a e "
check "--shard auto/4, Slurm --array=2 (a resubmitted task keeps its shard)" "$(SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=2 SLURM_ARRAY_TASK_MAX=2 $zmp parallel -k --shard auto/4 -- echo ::: a b c d e f | tr '\n' ' ')" "c "
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=4 $zmp parallel --shard auto/4 -- touch "$tmp/ran" ::: a 2> /dev/null
check "--shard auto/4, Slurm --array=0-4 (5 ids, 4 shards): 255, nothing ran" "$? $([ -e "$tmp/ran" ] && echo ran)" "255 "
check "--shard auto/4, Kubernetes" "$(JOB_COMPLETION_INDEX=3 $zmp parallel --shard auto/4 -- echo ::: a b c d e f)" "d"
check "--shard auto/4, AWS Batch" "$(AWS_BATCH_JOB_ARRAY_INDEX=2 $zmp parallel --shard auto/4 -- echo ::: a b c d e f)" "c"
env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX -u AWS_BATCH_JOB_ARRAY_INDEX $zmp parallel --shard auto/4 -- touch "$tmp/ran" ::: a 2> /dev/null
check "--shard auto without an index: 255, nothing ran" "$? $([ -e "$tmp/ran" ] && echo ran)" "255 "
for spec in 4/4 x/4 1/0 1/ /3 -1/4 auto/4x 1/4/; do
    JOB_COMPLETION_INDEX=9 $zmp parallel --shard "$spec" -- touch "$tmp/ran" ::: a 2> /dev/null
    check "--shard $spec: 255, nothing ran" "$? $([ -e "$tmp/ran" ] && echo ran)" "255 "
done
JOB_COMPLETION_INDEX=4 $zmp parallel --shard auto/4 -- touch "$tmp/ran" ::: a 2> /dev/null
check "--shard auto/4 with index 4: 255" "$? $([ -e "$tmp/ran" ] && echo ran)" "255 "
# merge refuses files of different runs, a shard twice, and other files.
$zmp parallel --shard 1/3 --results "$tmp/x1" -- echo ::: a > /dev/null
$zmp merge "$tmp"/s0 "$tmp"/x1 2> "$tmp/e"
check "merge: another command: 255" "$? $(cat "$tmp/e")" "255 zmp merge: $tmp/x1: another command than the first file's"
$zmp merge "$tmp"/s0 "$tmp"/s0 2> "$tmp/e"
check "merge: a shard twice: 255" "$? $(cat "$tmp/e")" "255 zmp merge: shard 0 is in both $tmp/s0 and $tmp/s0"
echo '{"seq":1}' > "$tmp/y"; echo '{"type":"summary","inputs":1}' >> "$tmp/y"
$zmp merge "$tmp"/y 2> "$tmp/e"
check "merge: not a results file: 255" "$? $(cat "$tmp/e")" "255 zmp merge: $tmp/y: line 1 is not a zmp record"
$zmp merge "$tmp"/missing 2> /dev/null
check "merge: a missing file: 255" $? 255

echo "zmp-cli [$ZMP_BACKEND]: $pass passed, $fail failed"
[ $fail -eq 0 ]
