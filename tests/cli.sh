#!/bin/sh
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

ok() { pass=$((pass + 1)); echo "  ok: $1"; }
# all_overlapped N FILE: the N jobs of a --results file all ran, ok, and
# were all alive at once (the last started before the first ended).
all_overlapped() {
    python3 - "$1" "$2" <<'PY'
import json, sys
jobs = [json.loads(l) for l in open(sys.argv[2])]
assert len(jobs) == int(sys.argv[1]) and all(j["ok"] for j in jobs)
last_start = max(j["start"] for j in jobs)
first_end = min(j["start"] + j["seconds"] for j in jobs)
assert last_start < first_end, (last_start, first_end)
PY
}
bad() { fail=$((fail + 1)); echo "  FAILED: $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi; }

echo "=== zmp command tests: engine $ZMP_BACKEND ==="
check "backend" "$($zmp backend)" "$ZMP_BACKEND"
check "cpu-count" "$($zmp cpu-count)" "$(nproc)"
$zmp --version | grep -q '^zmp [0-9]' && ok "--version" || bad "--version"

# Bad input: a clear message and status 2.
for args in "--bogus" "" "frobnicate" "parallel" "parallel -- echo :::" \
            "parallel -a $tmp/missing -- echo" "parallel -j x -- echo" \
            "parallel --timeout -1 -- echo" "run"; do
    # shellcheck disable=SC2086
    $zmp $args < /dev/null > "$tmp/o" 2> "$tmp/e"
    st=$?
    if [ $st -eq 2 ] && [ -s "$tmp/e" ]; then ok "usage error: zmp $args"; else bad "usage error: zmp $args (status $st)"; fi
done

$zmp parallel -- echo <&- > /dev/null 2> "$tmp/e"
check "closed stdin: status 2" $? 2
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

# --cgroup: what escaped with setsid dies with the job's cgroup.
cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
if [ -n "$cg" ] && mkdir "$cg/zmp-cli-$$" 2>/dev/null; then
    $zmp parallel --cgroup "$cg/zmp-cli-$$" -- sh -c 'setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!; : {}' ::: x > "$tmp/pid"
    check "cgroup: status" $? 0
    state=$(awk '{ print $3 }' "/proc/$(cat "$tmp/pid")/stat" 2>/dev/null)
    case "$state" in ""|Z) ok "cgroup: escapee killed" ;; *) bad "cgroup: escapee still $state" ;; esac
    rmdir "$cg/zmp-cli-$$" && ok "cgroup: removed" || bad "cgroup: removed"
else
    echo "  SKIP: no writable cgroup v2 hierarchy"
fi

# zmp killed: its jobs, each in its own process group, go with it.
# (Inputs unique to this run: other runs of this suite may share the machine.)
$zmp parallel -j 4 -- "$child" sleep 30000 ::: "k$$-1" "k$$-2" "k$$-3" "k$$-4" > /dev/null &
zpid=$!
sleep 1
kill -TERM $zpid
wait $zpid
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
j = [json.loads(l) for l in open(sys.argv[1])]
assert len(j) == 1 and j[0]["timed_out"] and j[0]["seconds"] < 2.5, j
PY
# A long line, and a last line without a newline.
python3 -c 'import sys; sys.stdout.write("a" * 100000 + "\nb")' | $zmp parallel -k -- sh -c 'echo ${#0}' > "$tmp/o"
check "long line and unterminated last line" "$(echo $(cat "$tmp/o"))" "100000 1"

echo "zmp-cli [$ZMP_BACKEND]: $pass passed, $fail failed"
[ $fail -eq 0 ]
