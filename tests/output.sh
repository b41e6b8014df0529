#!/bin/sh
# SPDX-License-Identifier: MIT
# The jobs' output of `zmp parallel`: every byte, in bounded memory, never
# a silent short output.  output.sh ENGINE
# Prints "zmp-output [ENGINE]: N passed, N failed" and exits non-zero on a
# failure.  ZMP_TEST_BIG=0 leaves out the gigabyte cases (a minute or so
# each, and up to 8 GB written to $TMPDIR).
set -u
ZMP_BACKEND=$1
export ZMP_BACKEND
zmp=./zmp
H=./tests/helper
big=${ZMP_TEST_BIG:-1}
pass=0
fail=0
tmp=$(mktemp -d)
small=
cleanup() {
    [ -n "$small" ] && umount "$small" 2> /dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "  ok: $1"; }
bad() { fail=$((fail + 1)); echo "  FAILED: $1"; }
skip() { echo "  skipped: $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi; }

# runs: read stdin to its end; print the byte count, then each run of one
# byte repeated as BYTE COUNT (tests/helper.c).  The jobs below each write
# one letter again and again, so this says whether every byte came and
# whose output was cut into by whose.
runs() { $H runs; }

# rss FILE CMD...: run CMD with this shell's stdio; its peak RSS in KiB, as
# wait4 reports it (the largest of CMD's and its children's), goes to FILE.
# The status is CMD's, 128+N after signal N.
rss() {
    python3 -c '
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, st, ru = os.wait4(pid, 0)
open(sys.argv[1], "w").write("%d\n" % ru.ru_maxrss)
sys.exit(128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st))' "$@"
}

# under_gib NAME FILE: the peak RSS in FILE is under 1 GiB.
under_gib() {
    _kb=$(cat "$2")
    if [ "$_kb" -lt 1048576 ]; then ok "$1: peak RSS ${_kb} KiB"; else bad "$1: peak RSS ${_kb} KiB"; fi
}

# gone MARK: no process with MARK in its arguments is left (within 5 s).
gone() {
    _i=0
    while grep -qlaF -- "$1" /proc/[0-9]*/cmdline 2> /dev/null && [ $_i -lt 50 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    ! grep -qlaF -- "$1" /proc/[0-9]*/cmdline 2> /dev/null
}

echo "=== zmp parallel output tests: engine $ZMP_BACKEND ==="
G=1073741824

if [ "$big" = 1 ]; then
    # 8 jobs print 1 GiB each at once: every byte comes, each job's in one
    # piece; one streams, the others wait in memory, then in files.
    start=$(date +%s)
    out=$( { rss "$tmp/rss" $zmp parallel -j 8 -- $H fill {} $G ::: A B C D E F G H \
               2> "$tmp/e"; echo $? > "$tmp/st"; } | runs)
    end=$(date +%s)
    check "8 x 1 GiB: status, no message" "$(cat "$tmp/st") $(cat "$tmp/e")" "0 "
    got=$(echo "$out" | tr ' ' '\n' | sed 1d | sort | tr '\n' ' ')
    check "8 x 1 GiB: every byte, each job's together" "$(echo "$out" | cut -d' ' -f1) $got" \
        "8589934592 A$G B$G C$G D$G E$G F$G G$G H$G "
    under_gib "8 x 1 GiB ($((end - start)) s)" "$tmp/rss"

    # The same in input order (-k): the first streams, the others wait.
    start=$(date +%s)
    out=$( { rss "$tmp/rss" $zmp parallel -k -j 8 -- $H fill {} $G ::: A B C D E F G H \
               2> "$tmp/e"; echo $? > "$tmp/st"; } | runs)
    end=$(date +%s)
    check "-k 8 x 1 GiB: status, no message" "$(cat "$tmp/st") $(cat "$tmp/e")" "0 "
    check "-k 8 x 1 GiB: every byte, in order" "$out" \
        "8589934592 A$G B$G C$G D$G E$G F$G G$G H$G"
    under_gib "-k 8 x 1 GiB ($((end - start)) s)" "$tmp/rss"

    # One line of 4.4 GB, tagged: the tag once, then every byte.
    start=$(date +%s)
    out=$( { rss "$tmp/rss" $zmp parallel --tag -- $H fill L 4400000000 nl ::: x \
               2> "$tmp/e"; echo $? > "$tmp/st"; } | runs)
    end=$(date +%s)
    check "a 4.4 GB line, --tag: status, no message" "$(cat "$tmp/st") $(cat "$tmp/e")" "0 "
    check "a 4.4 GB line, --tag: every byte" "$out" "4400000002 x1 91 L4399999999 101"
    under_gib "a 4.4 GB line ($((end - start)) s)" "$tmp/rss"

    # --results: 4 jobs print 512 MiB each at once; every byte is printed
    # and recorded, and the output waits in files, not memory.
    M=536870912
    start=$(date +%s)
    out=$( { rss "$tmp/rss" $zmp parallel -j 4 --results "$tmp/r" -- $H fill {} $M ::: A B C D \
               2> "$tmp/e"; echo $? > "$tmp/st"; } | runs)
    end=$(date +%s)
    check "--results 4 x 512 MiB: status, no message" "$(cat "$tmp/st") $(cat "$tmp/e")" "0 "
    got=$(echo "$out" | tr ' ' '\n' | sed 1d | sort | tr '\n' ' ')
    check "--results 4 x 512 MiB: every byte printed, each job's together" \
        "$(echo "$out" | cut -d' ' -f1) $got" "2147483648 A$M B$M C$M D$M "
    check "--results 4 x 512 MiB: every byte recorded" "$(python3 - "$tmp/r" <<'PY'
import sys
got = []
for line in open(sys.argv[1], "rb"):
    if not line.startswith(b'{"type":"job"'):
        continue
    i = line.index(b'"stdout":"') + 10
    j = line.index(b'"', i)
    c = line[i:i + 1]
    got.append("%s%d:%d" % (c.decode(), j - i, line.count(c, i, j)))
print(" ".join(sorted(got)))
PY
)" "A$M:$M B$M:$M C$M:$M D$M:$M"
    rm -f "$tmp/r"
    under_gib "--results 4 x 512 MiB ($((end - start)) s)" "$tmp/rss"

    # --retries: a first try prints 1 GiB and fails; only the second try's
    # 1 GiB comes out, and neither is held in memory.
    start=$(date +%s)
    out=$( { rss "$tmp/rss" $zmp parallel --retries 2 -- sh -c \
               'if [ -e "$1" ]; then exec "$2" fill B "$3"; fi; : > "$1"; "$2" fill A "$3"; exit 1' \
               sh "$tmp/tried" $H {} ::: $G 2> "$tmp/e"; echo $? > "$tmp/st"; } | runs)
    end=$(date +%s)
    check "--retries, 1 GiB a try: status, only the last try" "$(cat "$tmp/st") $(cat "$tmp/e") $out" \
        "0  $G B$G"
    under_gib "--retries, 1 GiB a try ($((end - start)) s)" "$tmp/rss"
fi

# --line-buffer: a 300 MB line among other jobs' short lines, written in
# pieces: no line is cut into, the long one goes out as it comes.
start=$(date +%s)
rss "$tmp/rss" $zmp parallel -j 3 --line-buffer -- sh -c 'exec "$1" $0' {} "$H" \
    ::: "fill L 300000000 nl" "lines W1 100000" "lines W2 100000" > "$tmp/o" 2> "$tmp/e"
check "--line-buffer, a long line: status, no message" "$? $(cat "$tmp/e")" "0 "
end=$(date +%s)
tr -s L < "$tmp/o" > "$tmp/o2"
check "--line-buffer, a long line: lines whole" \
    "$(wc -l < "$tmp/o2") $(grep -cx L "$tmp/o2") $(grep -cvxE 'L|W[12]-[0-9]+-abcdefghij' "$tmp/o2")" \
    "200001 1 0"
check "--line-buffer, a long line: every byte" "$(wc -c < "$tmp/o")" \
    "$((300000000 + $($H lines W1 100000 | wc -c) * 2))"
check "--line-buffer: each job's lines in order" \
    "$(grep -E '^W1' "$tmp/o2" | awk -F- '$2 != NR - 1 { bad++ } END { print NR, bad + 0 }')" "100000 0"
under_gib "--line-buffer, a long line ($((end - start)) s)" "$tmp/rss"
rm -f "$tmp/o" "$tmp/o2"

# --results records what was printed, untagged, whole: UTF-8 sequences cut
# by the memory share's pieces and by the spill file, bytes that are not
# UTF-8, quotes and control characters all come back as they were.
python3 -c 'import sys; sys.stdout.buffer.write(b"a" + "é€😀\"\\\t\x01\x7f\n".encode() * 70000 + b"\xff\xe2\x82zz" + "€".encode()[:2])' > "$tmp/in"
$zmp parallel --tag --buffer-size 10000 --results "$tmp/r" -- cat {} ::: "$tmp/in" > "$tmp/o" 2> "$tmp/e"
check "--results, spilled: status, no message" "$? $(cat "$tmp/e")" "0 "
check "--results, spilled: printed, tagged" "$(sed "s|^$tmp/in	||" "$tmp/o" | cmp - "$tmp/in" && echo same)" same
check "--results, spilled: recorded as printed" "$(python3 - "$tmp/r" "$tmp/in" <<'PY'
import json, sys
want = open(sys.argv[2], "rb").read()
for line in open(sys.argv[1], "rb"):
    d = json.loads(line)
    if d["type"] == "job":
        print(d["stdout"].encode("utf-8", "surrogateescape") == want)
PY
)" True

# --retries: a failed try's output, spilled to its file, is dropped; the
# next try's is printed whole, stdout and stderr.
rm -f "$tmp/tried"
out=$($zmp parallel --retries 3 --buffer-size 4K -- sh -c \
        'if [ -e "$1" ]; then "$2" fill B 300000; "$2" fill E 5000 >&2; exit 0; fi; : > "$1"; "$2" fill A 300000; "$2" fill F 5000 >&2; exit 1' \
        sh "$tmp/tried" $H ::: x 2>&1 | runs)
check "--retries, spilled: only the last try" "$out" "305000 B300000 E5000"

# Lines written in pieces by 4 jobs at once: never mixed.
$zmp parallel -j 4 --lb -- $H lines {} 20000 ::: A B C D > "$tmp/o"
check "--line-buffer, 4 writers: every line whole" \
    "$(wc -l < "$tmp/o") $(grep -cvxE '[A-D]-[0-9]+-abcdefghij' "$tmp/o")" "80000 0"

# --line-buffer: an unfinished line waits (a), others' whole lines go out
# meanwhile; and with many jobs each holding a line open, every line whole.
out=$($zmp parallel -j 3 --lb -- sh -c 'set -- $0; sleep "$1"; printf "%s" "$2"; sleep "$3"; echo "$4"' \
      ::: "0 a 1.2 A" "0.4 b 0 B" "0.8 c 0 C")
check "--line-buffer: a line held open waits, others go out" "$(echo $out)" "bB cC aA"
seq 2000 | $zmp parallel --lb -j 2000 -- sh -c 'printf x{}; sleep 1; echo y' > "$tmp/o"
check "--line-buffer, 2,000 lines held open at once: every line whole" \
    "$(wc -l < "$tmp/o") $(grep -cxE 'x[0-9]+y' "$tmp/o") $(sort -u "$tmp/o" | wc -l)" "2000 2000 2000"

# --group (the default): each job's output together, stdout and stderr too.
$zmp parallel -j 4 -- $H lines {} 20000 ::: A B C D E F > "$tmp/o"
check "--group: each job's lines together" \
    "$(wc -l < "$tmp/o") $(cut -d- -f1 "$tmp/o" | uniq | wc -l)" "120000 6"
$zmp parallel -j 4 -- sh -c 'for i in 1 2 3 4 5; do echo "$0 o$i"; echo "$0 e$i" >&2; sleep 0.01; done' \
    ::: a b c d > "$tmp/o" 2>&1
check "--group, 2>&1: each job's stdout and stderr together" \
    "$(wc -l < "$tmp/o") $(cut -d' ' -f1 "$tmp/o" | uniq | wc -l)" "40 4"

# --group, the turn passed on: to the oldest running job with bytes
# waiting (b), not the first to have queued them (c); c, ended meanwhile,
# comes whole after b.
$zmp parallel -j 3 -- sh -c 'set -- $0; sleep "$1"; echo "$2"1; sleep "$3"; echo "$2"2' \
    ::: "0 a 1.2" "0.6 b 1.4" "0.2 c 1.4" > "$tmp/o"
check "--group: the turn goes to the oldest job waiting" "$(echo $(cat "$tmp/o"))" "a1 a2 b1 b2 c1 c2"

# -k with outputs past the memory share, the later jobs ending first.
out=$($zmp parallel -k -j 4 --buffer-size 64K --buffer-total 128K -- \
      sh -c 'set -- $0; sleep "$1"; exec "$2" fill "$3" 3000000' \
      ::: "0.6 $H A" "0.4 $H B" "0.2 $H C" "0 $H D" | runs)
check "-k, spilled: every byte, in order" "$out" "12000000 A3000000 B3000000 C3000000 D3000000"

# -u: bytes as they come, all of them.
check "-u: every byte" "$($zmp parallel -u -j 4 -- $H fill {} 1000000 ::: A B C D | wc -c)" 4000000

# --tag and --tagstring, as GNU parallel: a TAB after the tag, a last line
# without a newline tagged too, stderr too.
out=$($zmp parallel -k -j 3 --tag -- sh -c 'printf "%s\n" "$0"; sleep 0.1; printf "x$0\ny"' ::: a b c | od -An -c | tr -s ' \n' ' ')
check "--tag" "$out" " a \\t a \\n a \\t x a \\n a \\t y b \\t b \\n b \\t x b \\n b \\t y c \\t c \\n c \\t x c \\n c \\t y "
out=$($zmp parallel -k --tagstring '<{}:{#}>' -- sh -c 'echo out; sleep 0.1; echo err >&2' ::: p q 2>&1 | tr '\t' '|')
check "--tagstring" "$(echo $out)" "<p:1>|out <p:1>|err <q:2>|out <q:2>|err"

# Write errors: said once, status 255, never a silent short output.
$zmp parallel -- $H fill A 10000000 ::: 1 > /dev/full 2> "$tmp/e"
check ">/dev/full: status, message" "$? $(cat "$tmp/e")" \
    "255 zmp parallel: cannot write standard output: No space left on device"
start=$(date +%s)
$zmp parallel -j 4 -- $H fill {} 100000000000 ::: A B C D > /dev/full 2> "$tmp/e"
st=$?
end=$(date +%s)
check ">/dev/full, endless writers: status, message" "$st $(cat "$tmp/e")" \
    "255 zmp parallel: cannot write standard output: No space left on device"
[ $((end - start)) -lt 20 ] && ok ">/dev/full, endless writers: prompt" || bad ">/dev/full: took $((end - start)) s"
$zmp parallel -- $H fill A 10000000 ::: 1 >&- 2> "$tmp/e"
check ">&-: status, message" "$? $(cat "$tmp/e")" \
    "255 zmp parallel: cannot write standard output: Bad file descriptor"
$zmp parallel -- sh -c 'echo oops >&2' ::: 1 2> /dev/full
check "2>/dev/full: status" $? 255

# | head: zmp ends at once and kills its jobs, however much they write.
m="endless$$"
start=$(date +%s)
out=$( { $zmp parallel -j 2 -- $H fill {} 100000000000000 ::: "${m}1" "${m}2" 2> "$tmp/e"
         echo $? > "$tmp/st"; } | head -c 5)
end=$(date +%s)
check "| head -c 5: output, status, no message" "$out $(cat "$tmp/st") $(cat "$tmp/e")" "eeeee 141 "
[ $((end - start)) -lt 20 ] && ok "| head -c 5: prompt ($((end - start)) s)" || bad "| head: took $((end - start)) s"
gone "$m" && ok "| head -c 5: no job left" || bad "| head -c 5: jobs left"

# A kill -9 while output is spilled leaves no file behind: the files are
# unlinked from the start.
mkdir "$tmp/spill"
m="spill$$"
TMPDIR="$tmp/spill" $zmp parallel -k -j 4 --buffer-size 64K -- sh -c 'exec "$1" $0' {} "$H" \
    ::: "sleep 30000 $m" "fill B 5000000" "fill C 5000000" "fill D 5000000" > /dev/null 2>&1 &
zpid=$!
i=0
while [ "$(ls -l /proc/$zpid/fd 2> /dev/null | grep -c "$tmp/spill/.*(deleted)")" -lt 3 ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
check "kill -9 while spilling: 3 spill files open, none in the directory" \
    "$(ls -l /proc/$zpid/fd 2> /dev/null | grep -c "$tmp/spill/.*(deleted)") $(ls -A "$tmp/spill" | wc -l)" "3 0"
kill -KILL $zpid
wait $zpid 2> /dev/null
check "kill -9 while spilling: nothing left" "$(ls -A "$tmp/spill" | wc -l)" 0
pkill_mark() {
    for _f in $(grep -laF -- "$1" /proc/[0-9]*/cmdline 2> /dev/null); do
        _p=${_f#/proc/}
        kill -KILL "${_p%/cmdline}" 2> /dev/null
    done
}
pkill_mark "$m"

# A small $TMPDIR filled by waiting output: every byte, or a failure status
# and a message.  Root only (a tmpfs of 64 MiB is mounted).
if [ "$(id -u)" = 0 ] && mkdir "$tmp/small" && mount -t tmpfs -o size=64m zmp-test "$tmp/small" 2> /dev/null; then
    small="$tmp/small"
    # -k behind a job that sleeps: 150 MB must wait, more than fits.
    { TMPDIR="$small" $zmp parallel -k -j 4 --buffer-size 1M --buffer-total 2M -- \
          sh -c 'set -- $0; sleep "$1"; exec "$2" fill "$3" 50000000' \
          ::: "1 $H A" "0 $H B" "0 $H C" "0 $H D" 2> "$tmp/e"; echo $? > "$tmp/st"; } | wc -c > /dev/null
    check "full \$TMPDIR: status, message" "$(cat "$tmp/st") $(cat "$tmp/e")" \
        "255 zmp parallel: cannot write a temporary file in $small: No space left on device"
    # Jobs that race the reader: all of it, or an error said.
    out=$( { TMPDIR="$small" $zmp parallel -j 4 --buffer-size 1M --buffer-total 2M -- \
             $H fill {} 50000000 ::: A B C D 2> "$tmp/e"; echo $? > "$tmp/st"; } | wc -c)
    if [ "$(cat "$tmp/st")" = 0 ] && [ "$out" = 200000000 ] && [ ! -s "$tmp/e" ]; then
        ok "small \$TMPDIR: every byte"
    elif [ "$(cat "$tmp/st")" = 255 ] && grep -q "No space left" "$tmp/e"; then
        ok "small \$TMPDIR: a failure said"
    else
        bad "small \$TMPDIR: $out bytes, status $(cat "$tmp/st"), $(cat "$tmp/e")"
    fi
    check "small \$TMPDIR: nothing left, space given back" \
        "$(ls -A "$small" | wc -l) $(df -k "$small" | awk 'NR == 2 { print ($3 < 1024) }')" "0 1"
    umount "$small" && small=
else
    skip "a full \$TMPDIR (root only: a tmpfs is mounted)"
fi

echo "zmp-output [$ZMP_BACKEND]: $pass passed, $fail failed"
[ $fail -eq 0 ]
