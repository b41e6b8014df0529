#!/bin/sh
# SPDX-License-Identifier: MIT
# GNU parallel compatibility: each case runs one command line through GNU
# parallel and through `zmp parallel`, each in its own copy of the same
# directory with the same standard input, and compares the exit status,
# standard output (sorted, unless the case's order is guaranteed), the
# files the case names (a --joblog by its deterministic columns) and, where
# the case says so, standard error.  What is expected is always what GNU
# parallel does, measured live: nothing here says what zmp should print.
#
#   compat.sh [ZMP]         ZMP=PATH works too; default: the build tree's zmp
#   ZMP_COMPAT_CASES='GLOB...'  runs only the cases whose name matches one
#   GNU_PARALLEL=PATH       the GNU parallel to compare with (default: parallel)
#
# Prints "zmp-compat: N passed, N failed, N known differences"; exits 1 on
# a failure (an XPASS included), 77 without GNU parallel.
#
# A case is `t NAME KIND ARG...`; the ARGs are the arguments of `parallel`,
# and -THEN- starts a second command line, run after the first in the same
# directory (--resume and friends).  KIND is a comma-separated list of:
#   sorted   stdout compared sorted: the order of jobs is free (the default)
#   ordered  stdout compared as it is: -k, -j1, or an order set by timing
#            with margins of 0.2 s or more
#   uniq     stdout compared sorted and unique (which {%} slots were used)
#   usage    stdout not compared: on a usage error GNU prints its usage
#            text there (zmp on stderr); the exit status still is
#   shell    GNU runs every command line through a shell, zmp only with
#            --shell: the case relies on the shell (pipes, `;`,
#            redirections, quoting inside a word), so zmp gets --shell as
#            its first option.  A case without it uses only words a shell
#            reads as themselves (no blank, quote, backslash, $ ; | & < > *
#            in the command), so GNU's shell and zmp's argv see the same
#            words; and echo there is dash's builtin for GNU, /bin/echo for
#            zmp, so an input with a backslash goes through printf.
#   stderr   stderr compared too (sorted or not, as stdout)
# Before `t`, a case may call (each is reset after the case):
#   input NAME      standard input from $data/NAME (default: /dev/null)
#   stdout_to FILE  parallel's standard output goes to FILE, not compared
#   files 'F ...'   compare these files of the working directory afterwards
#                   (both missing is equal)
#   joblog F        compare the --joblog F: the header line exactly, then
#                   the columns Seq, Exitval, Signal and Command of each row
#                   (sorted: rows are written in completion order)
#   filter FUNC     compare FUNC's reading of stdout (a function below,
#                   which says why) instead of the sorted lines
#   known 'REASON'  a known difference (zmp(1) lists them): its failure is
#                   reported but not counted; its passing (XPASS) fails the
#                   suite, so the mark cannot hide anything
# The {} and $ of the cases are parallel's; $paths, $cpus1, $cpus2 are split
# on purpose (one input a word).
# shellcheck disable=SC1083,SC2016,SC2086
set -u
LC_ALL=C
export LC_ALL

skip() { echo "zmp-compat: skipped: $1" >&2; exit 77; }
gnu=${GNU_PARALLEL:-parallel}
gnu=$(command -v "$gnu") || skip "no GNU parallel (apt-get install parallel)"
# moreutils has a `parallel` of its own, with other options.
"$gnu" --version < /dev/null 2> /dev/null | grep -q '^GNU parallel' ||
    skip "$gnu is not GNU parallel (moreutils'?)"
for c in timeout diff cmp cut sort awk; do
    command -v $c > /dev/null 2>&1 || skip "no $c"
done

zmp=${1:-${ZMP:-}}
if [ -z "$zmp" ]; then
    if [ -n "${abs_top_builddir:-}" ]; then
        zmp=$abs_top_builddir/zmp
    else
        zmp=$(dirname "$0")/../zmp
    fi
    [ -x "$zmp" ] || zmp=./zmp
fi
case $zmp in
/*) ;;
*) zmp=$(cd "$(dirname "$zmp")" && pwd)/$(basename "$zmp") ;;
esac
if [ ! -x "$zmp" ]; then
    echo "zmp-compat: no zmp at $zmp (give its path, or set ZMP=PATH)" >&2
    exit 99
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/zmp-compat.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fix=$T/fix    # copied into each side's working directory before each case
data=$T/data  # standard inputs
run=$T/run
mkdir -p "$fix" "$data" "$T/home/.parallel" "$T/tmp"

# GNU parallel: no citation notice (will-cite), no configuration and
# nothing written in the user's ~/.parallel (it caches the command line
# length and keeps temporary files under $HOME/.parallel/tmp); its shell is
# /bin/sh, the one of zmp --shell (GNU would otherwise take the parent's).
# Both sides get the same environment.
: > "$T/home/.parallel/will-cite"
HOME=$T/home
TMPDIR=$T/tmp
PARALLEL_SHELL=/bin/sh
export HOME TMPDIR PARALLEL_SHELL
unset PARALLEL PARALLEL_HOME POSIXLY_CORRECT
limit=30  # seconds for one command line; a hang fails its case

echo "zmp-compat: $("$gnu" --version < /dev/null | sed -n 1p) against $zmp"

# --- the files the jobs open by name --------------------------------------
printf 'a\nb\n' > "$fix/f1"
printf '1\n2\n' > "$fix/f2"
printf 'x\ny\n' > "$fix/f3"
printf 'a,b\nc,d\n' > "$fix/csv"
echo one > "$fix/sp ace"
echo two > "$fix/-dash"
echo three > "$fix/qu'ote"
echo four > "$fix/dq\"x"
echo five > "$fix/new
line"

# --- standard inputs -------------------------------------------------------
printf 'a\nb\nc\n' > "$data/abc"
printf 'a\nb' > "$data/noeol"
: > "$data/empty"
printf 'a\n\nb\n  \nc\n' > "$data/blanks"
printf '  \n\n' > "$data/blank-only"
printf 'a\r\nb\n' > "$data/crlf"
printf 'q\nr\n' > "$data/qr"
printf 'hi\n' > "$data/hi"
printf 'a,b\nc,d\n' > "$data/csv"
printf 'a, b;;c\n' > "$data/csv-regex"
printf 'a\tb\nc\td\n' > "$data/tsv"
printf ' a , b \n' > "$data/csv-spaced"
printf '  a  \n' > "$data/spaced"
printf 'a b\000c\nd\000' > "$data/nul"
printf 'x y\000z' > "$data/nul-noterm"
printf 'a,b,,c\n' > "$data/commas"
printf 'a\tb\n' > "$data/tab"
printf 'a:b:c\n' > "$data/colons"
printf 'a\nb\nSTOP\nc\n' > "$data/eof"
printf '$(echo pwned)\000a\nb;c\000`echo bq`\000it'"'"'s "q"\000' > "$data/nul-hostile"
printf 'new\nline\000sp ace\000-dash\000' > "$data/nul-names"
seq 20 > "$data/seq20"
seq 100 > "$data/seq100"
seq 150 > "$data/seq150"
seq 1000 > "$data/seq1000"
seq 30000 > "$data/seq30000"
printf 'line-%02d-xxxx\n' 1 2 3 4 5 > "$data/rec13"
printf 'a;bb;ccc;dddd;e;' > "$data/semis"
printf '>a\nx\n>bb\ny\nz\n>c\n' > "$data/fasta"
printf '>a;>b;c;>d;>ee;' > "$data/startend"
big131=$(head -c 131000 /dev/zero | tr '\0' y)
big50=$(head -c 50000 /dev/zero | tr '\0' z)
# A 100 MB line and its newline, made when a case first needs it.
line100m=$data/line100m
make_line100m() {
    [ -f "$line100m" ] || { head -c 104857600 /dev/zero | tr '\0' x; echo; } > "$line100m"
}

# --- filters (stdout of each side goes through the same one) ---------------
# The byte count only: a long output whose diff would say nothing.
bytes() { wc -c | tr -d ' '; }
# One word a line, sorted: -m packs as many inputs in a command line as the
# limit allows, a limit GNU probes itself (and halves for its shell), so
# where one job ends and the next begins legitimately differs; every input
# must be there exactly once.
words() { tr ' ' '\n' | sort; }
# How many jobs and how many lines in all: with --round-robin which job
# gets which block depends on which job is ready first.
jobs_total() { awk '{ n++; s += $1 } END { print n + 0 " jobs, " s + 0 " lines" }'; }
# --pipe --block cuts at a record end near the block size, but "can be off
# by the length of one record" (parallel(1)): where it cuts may differ.
# Each job here prints its block then "===": every line must come whole.
whole_lines() { grep -vx '===' | sort; }
# Each job prints its block and a newline: every block must end with ";"
# (records are never split); prints the records, sorted.
end_records() {
    awk '!/;$/ { print "BROKEN: a block ends inside a record: " $0 }
         { gsub(/;/, ";\n"); printf "%s", $0 }' | grep -v '^$' | sort
}
# Each block must begin with ">" and end with ";", and a record is cut
# only where ";" is followed by ">" (both --recstart and --recend).
start_end_records() {
    awk '!/^>/ || !/;$/ { print "BROKEN: " $0 }
         { gsub(/;>/, ";\n>"); print }' | sort
}
# Each job prints "==" then its block: every block must begin at a ">"
# record start; prints the records (lines joined with "|"), sorted.
start_records() {
    awk '$0 == "==" { if (rec != "") print rec; rec = ""; first = 1; next }
         first && !/^>/ { print "BROKEN: a block begins inside a record: " $0 }
         { first = 0
           if (/^>/) { if (rec != "") print rec; rec = $0 } else rec = rec "|" $0 }
         END { if (rec != "") print rec }' | sort
}

# --- the runner -------------------------------------------------------------
only=${ZMP_COMPAT_CASES:-*}
pass=0
fail=0
nknown=0
reset_case() { in=/dev/null; out=; cfiles=; cjoblog=; cfilter=; cknown=; }
reset_case
input() { in=$data/$1; }
stdout_to() { out=$1; }
files() { cfiles=$1; }
joblog() { cjoblog=$1; }
filter() { cfilter=$1; }
known() { cknown=$1; }
has_kind() { case ",$kind," in *",$1,"*) return 0 ;; esac; return 1; }
# selected NAME: NAME matches one of the globs of ZMP_COMPAT_CASES.
selected() {
    set -f
    for _g in $only; do
        # shellcheck disable=SC2254 # a glob
        case $1 in
        $_g) set +f; return 0 ;;
        esac
    done
    set +f
    return 1
}

# one SIDE ARG...: one command line on SIDE (gnu or zmp), its output
# appended to the side's.
one() {
    _side=$1
    shift
    if [ "$_side" = gnu ]; then
        set -- "$gnu" "$@"
    elif has_kind shell; then
        set -- "$zmp" parallel --shell "$@"
    else
        set -- "$zmp" parallel "$@"
    fi
    (cd "$run/$_side" && exec timeout -k 5 $limit "$@") \
        < "$in" >> "${out:-$run/$_side.out}" 2>> "$run/$_side.err"
}

# side SIDE ARG...: the case's command lines (split at -THEN-) on SIDE;
# prints their exit statuses.
side() {
    _s=$1
    shift
    st=
    while :; do
        _i=1
        _refs=
        _a=
        while [ $_i -le $# ]; do
            eval "_a=\${$_i}"
            [ "$_a" = -THEN- ] && break
            _refs="$_refs \"\${$_i}\""
            _i=$((_i + 1))
        done
        eval "one $_s $_refs"
        st="$st${st:+ }$?"
        [ $_i -gt $# ] && break
        shift $_i
    done
    echo "$st"
}

# view FILE: FILE as the case compares it.
view() {
    if [ -n "$cfilter" ] && [ "${1##*.}" = out ]; then
        $cfilter < "$1"
    elif has_kind ordered; then
        cat "$1"
    elif has_kind uniq; then
        sort -u "$1"
    else
        sort "$1"
    fi
}
# joblog_view FILE: the header, then Seq, Exitval, Signal and Command.
joblog_view() {
    if [ -f "$1" ]; then
        sed -n 1p "$1"
        sed 1d "$1" | cut -f1,7,8,9 | sort
    else
        echo "(no joblog)"
    fi
}
file_view() { if [ -f "$1" ]; then cat "$1"; else echo "(no such file)"; fi; }

# compare WHAT: compares $run/gnu.WHAT and $run/zmp.WHAT (already viewed).
compare() {
    cmp -s "$run/gnu.$1" "$run/zmp.$1" && return 0
    why="$why${why:+, }$2 differs"
    diffs="$diffs $1"
}

# quote ARG...: the arguments as a shell would need them (a long one cut).
quote() {
    for _q in "$@"; do
        [ ${#_q} -le 200 ] || _q="$(printf %s "$_q" | cut -c1-20)...(${#_q} bytes)"
        case $_q in
        '' | *[!A-Za-z0-9_./,:=%+@{}-]*)
            printf " '%s'" "$(printf '%s' "$_q" | sed "s/'/'\\\\''/g")" ;;
        *) printf ' %s' "$_q" ;;
        esac
    done
}

t() {
    name=$1
    kind=$2
    shift 2
    selected "$name" || { reset_case; return 0; }
    [ "$in" != "$line100m" ] || make_line100m
    rm -rf "$run"
    mkdir -p "$run/gnu" "$run/zmp"
    cp -R "$fix/." "$run/gnu/"
    cp -R "$fix/." "$run/zmp/"
    : > "$run/gnu.out"; : > "$run/gnu.err"; : > "$run/zmp.out"; : > "$run/zmp.err"
    # The two sides at once: the suite takes half as long, and a case's
    # timing margins (0.2 s or more) hold with one side a CPU.
    side gnu "$@" > "$run/gnu.st" &
    side zmp "$@" > "$run/zmp.st"
    wait
    gst=$(cat "$run/gnu.st")
    zst=$(cat "$run/zmp.st")
    why=
    diffs=
    [ "$gst" = "$zst" ] || why="exit status $zst, GNU's $gst"
    for s in gnu zmp; do
        view "$run/$s.out" > "$run/$s.vout"
        view "$run/$s.err" > "$run/$s.verr"
        joblog_view "$run/$s/$cjoblog" > "$run/$s.vjoblog"
        for f in $cfiles; do
            echo "== $f"
            file_view "$run/$s/$f"
        done > "$run/$s.vfiles"
    done
    has_kind usage || compare vout stdout
    ! has_kind stderr || compare verr stderr
    [ -z "$cjoblog" ] || compare vjoblog joblog
    [ -z "$cfiles" ] || compare vfiles files
    if [ -z "$why" ]; then
        if [ -n "$cknown" ]; then
            fail=$((fail + 1))
            echo "  XPASS: $name (marked known: $cknown)"
        else
            pass=$((pass + 1))
            echo "  ok: $name"
        fi
    elif [ -n "$cknown" ]; then
        nknown=$((nknown + 1))
        echo "  known: $name ($cknown)"
    else
        fail=$((fail + 1))
        echo "  FAILED: $name: $why"
        printf '    parallel%s\n' "$(quote "$@")"
        ! has_kind shell || echo "    (zmp parallel --shell ...)"
        for d in $diffs; do
            diff -u --label "GNU $d" --label "zmp $d" "$run/gnu.$d" "$run/zmp.$d" |
                sed -n '3,14p' | cut -c1-150 | sed 's/^/    /'
        done
        head -n 2 "$run/zmp.err" | cut -c1-150 | sed 's/^/    zmp stderr: /'
    fi
    reset_case
}

# --- 1. exit status, option parsing, -j ---------------------------------
# GNU: 0 all jobs succeeded, 1-100 that many failed, 101 more than 100,
# 255 any other error.  No output, only the statuses.
t exit-0 sorted true ::: a b c
t exit-false-count sorted false ::: 1 2 3
t exit-count-not-code shell ': {}; exit 200' ::: a b
t exit-codes-shell shell 'echo {}; exit {}' ::: 0 1 2 3
input seq100
t exit-100-failed sorted false
input seq150
t exit-101-over-100 sorted false
# sh says 127 (not found) and 126 (not executable): each a failed job.
t exit-not-found sorted nosuchcommand-zmp-compat ::: a b
t exit-not-executable sorted ./f1 ::: a
t usage-unknown-option usage --no-such-option echo ::: a
t usage-bad-jobs usage -j foo echo ::: a
t usage-jobs-fraction usage -j 1.5 echo ::: a
t usage-bad-halt usage --halt bogus echo ::: a
t usage-resume-without-joblog usage --resume echo ::: a
t usage-missing-arg-file usage -a nosuchfile echo
t usage-missing-4colon-file usage echo :::: nosuchfile
# GNU reads options with Getopt::Long, which takes any unambiguous prefix
# of a long option: --keep is --keep-order, --res is --results (a
# directory), --li is ambiguous (--limit, --line-buffer, --link...): 255.
known 'zmp takes no abbreviated long option (zmp(1), DIFFERENCES FROM GNU PARALLEL)'
t abbrev-keep ordered,shell -j2 --keep 'sleep {}; echo {}' ::: 0.4 0
files 'out/1/a/stdout'
known 'zmp takes no abbreviated long option, and its --results is JSON lines'
t abbrev-res sorted --res out echo ::: a
t abbrev-ambiguous usage --li echo ::: a
# An unknown {...} is no replacement string to GNU: it stays as written,
# and the input is appended.
t unknown-replacement ordered -k echo {foo} ::: a
# A stdout that cannot be written: GNU does not notice (status 0).
stdout_to /dev/full
known 'zmp reports a stdout it cannot write (status 255); GNU parallel does not'
t output-error sorted echo ::: a
# -j: each job sleeps 0.3 s, so the first N overlap and use the {%} slots
# 1..N; one job more than N shows there is no slot N+1.  GNU: -j 0 as many
# as possible, N% of the CPUs, +N and -N added to them; -j 0% and CPUs
# minus too many cannot run any job (255).  ($cpus1: as many inputs as
# CPUs plus one, $cpus2: twice as many plus one, by GNU's count.)
cpus=$("$gnu" --number-of-threads < /dev/null)
cpus1=$(seq $((cpus + 1)))
cpus2=$(seq $((2 * cpus + 1)))
t jobs-0 uniq,shell -j 0 'sleep 0.3; echo {%}' ::: 1 2 3 4 5 6 7 8
t jobs-3 uniq,shell -j 3 'sleep 0.3; echo {%}' ::: 1 2 3 4
t jobs-long uniq,shell --jobs 2 'sleep 0.3; echo {%}' ::: 1 2 3
t jobs-100pct uniq,shell -j 100% 'sleep 0.3; echo {%}' ::: $cpus1
t jobs-200pct uniq,shell -j 200% 'sleep 0.3; echo {%}' ::: $cpus2
t jobs-plus uniq,shell -j +1 'sleep 0.3; echo {%}' ::: $cpus1 x
t jobs-minus uniq,shell -j -1 'sleep 0.3; echo {%}' ::: $cpus1
t jobs-0pct usage -j 0% echo ::: a
t jobs-minus-too-many usage -j -1000 echo ::: a

# --- 2. inputs -------------------------------------------------------------
input abc
t stdin-lines sorted echo
input noeol
t stdin-last-line-unterminated sorted echo x
# An empty input runs nothing (unlike xargs).
input empty
t stdin-empty sorted echo x
# GNU keeps a \r before the newline in the input.
input crlf
t stdin-crlf ordered -k echo x{}y
# Jobs do not read parallel's stdin when the inputs come from elsewhere.
input hi
t job-stdin-with-3colon ordered,shell -k 'cat; echo {}' ::: a
# Several sources: every combination, the last source varying fastest.
t sources-3x3colon-order ordered -k echo ::: a b ::: 1 2 ::: x y
t linked-3colon-plus ordered -k echo ::: a b c :::+ 1 2 3
t linked-mixed ordered -k echo ::: a b :::+ 1 2 ::: x y
# :::+ of unequal lengths stops at the shorter; --link recycles it.
t linked-3colon-plus-shorter ordered -k echo ::: a b c :::+ 1 2
t link ordered -k --link echo ::: a b c ::: 1 2 3
t link-unequal ordered -k --link echo ::: a b ::: 1 2 3 ::: x
t argfile-4colon ordered -k echo :::: f1
t argfile-4colon-two ordered -k echo :::: f1 f2
t argfile-4colon-and-3colon ordered -k echo :::: f1 ::: 7 8
t argfile-4colon-plus ordered -k echo :::: f1 ::::+ f2
input qr
t argfile-4colon-stdin ordered -k echo :::: - ::: 1 2
t arg-file-twice ordered -k -a f1 -a f2 echo
t arg-file-twice-link ordered -k -a f1 -a f2 --link echo
t arg-file-long-and-3colon ordered -k --arg-file f1 echo ::: 7 8
t arg-file-colsep ordered -k --colsep , -a csv echo {2}
# --colsep: a regular expression; with it GNU trims blanks around columns
# (--trim lr) unless --trim says otherwise; without {N}, every column is
# appended; {} is the columns joined by a space.
input csv
t colsep-positional ordered -k --colsep , echo {2} {1}
input csv
t colsep-append ordered -k --colsep , echo
input csv
t colsep-braces ordered -k --colsep , echo {}
input csv-regex
t colsep-regex ordered,shell -k --colsep '[,;]+' "printf '[%s]\n' {3} {2} {1}"
input tsv
t colsep-tab ordered -k --colsep '\t' echo {1}+{2}
input csv-spaced
t colsep-default-trim ordered,shell -k --colsep , "printf '[%s]\n' {2} {1}"
input csv-spaced
t trim-n ordered,shell -k --colsep , --trim n "printf '[%s]\n' {2} {1}"
input csv-spaced
t trim-l ordered,shell -k --colsep , --trim l "printf '[%s]\n' {2} {1}"
input csv-spaced
t trim-r ordered,shell -k --colsep , --trim r "printf '[%s]\n' {2} {1}"
input spaced
t trim-lr-no-colsep ordered,shell -k --trim lr "printf '[%s]\n' {}"
input spaced
t no-trim-by-default ordered,shell -k "printf '[%s]\n' {}"
input nul
t null-0 ordered,shell -k -0 "printf '[%s]\n' {}"
input nul-noterm
t null-long ordered -k --null echo
input commas
t delimiter ordered,shell -k -d , "printf '[%s]\n' {}"
input tab
t delimiter-escape ordered,shell -k -d '\t' "printf '[%s]\n' {}"
input colons
t delimiter-long ordered -k --delimiter : echo x{}
input eof
t eof-stdin ordered -k -E STOP echo
t eof-3colon ordered -k -E STOP echo ::: a STOP b
t eof-long ordered -k --eof=STOP echo ::: a STOP b
input blanks
t empty-lines-run ordered -k echo x{}
input blanks
t no-run-if-empty ordered -k -r echo x{}
input blank-only
t no-run-if-empty-blank-only sorted -r echo x{}
t empty-arg-3colon ordered -k echo x{} ::: a '' b
t no-run-if-empty-3colon ordered -k -r echo x{} ::: a '' b
t no-run-if-empty-long ordered -k --no-run-if-empty echo x{} ::: a '' b
# Several inputs a job.
t n2 ordered -k -n2 echo ::: a b c d e
t n2-braces ordered -k -n2 echo {} ::: a b c d e
t max-args-long ordered -k --max-args 2 echo ::: a b c d e
t N2-positional ordered -k -N2 echo {1}-{2} ::: a b c d e
t N2-braces ordered -k -N2 echo {} ::: a b c d e
t N0 ordered -k -N0 echo x ::: a b
t m-prefix-suffix ordered -j1 -m echo pre {} post ::: a b c
t m-context-word ordered,shell -j1 -m "printf '[%s]\n' pre-{}-post" ::: a b c
t X-context ordered -j1 -X echo pre-{}-post ::: a b c
t X-context-word ordered,shell -j1 -X "printf '[%s]\n' pre-{}-post" ::: a 'b c'
t X-prefix-suffix ordered -j1 -X echo pre {} post ::: a b c
input seq30000
filter words
t m-splits-long-input sorted -j1 -m echo

# --- 3. replacement strings ------------------------------------------------
paths='a/b.c.d noext /abs/x.y dir/ .hidden a.b/c ./x.y'
t rs-braces ordered -k echo {} ::: $paths
t rs-dot ordered -k echo {.} ::: $paths
t rs-basename ordered -k echo {/} ::: $paths
t rs-dirname ordered -k echo {//} ::: $paths
t rs-basename-dot ordered -k echo {/.} ::: $paths
t rs-root-and-empty ordered -k echo x{}x{.}x{/}x{//}x{/.}x ::: / ''
t rs-seq ordered -k echo {#} {} ::: a b c
# Any replacement string stops the input being appended.
t rs-seq-alone ordered -k echo {#} ::: a b
t rs-slot-j1 ordered -j1 echo {%} ::: a b c
t rs-positional ordered -k echo {2} {1} {2} ::: a b ::: 1 2
t rs-positional-4colon ordered -k echo {2}{1} :::: f1 f2
t rs-positional-mods ordered -k echo {1.} {1/} {1//} {1/.} {2/.} ::: d/a.x ::: e/f.y.z
t rs-positional-beyond ordered -k echo {3}x ::: a ::: 1
t rs-twice-in-words ordered -k echo {}{} pre{}post ::: a
t rs-I ordered -k -I ,, echo ,,x {} ::: a
t rs-I-keeps-others ordered -k -I XX echo XX {.} ::: a.b
t rs-lone-braces ordered -k echo '{' '}' '{}x{' ::: a

# --- 4. the shell (zmp --shell) and hostile inputs -------------------------
t shell-pipe ordered,shell -k 'echo {} | wc -c' ::: ab abc
# GNU joins the command's words with spaces: here the shell sees a pipe.
t shell-words-joined ordered,shell -k echo {} '|' wc -c ::: ab
t shell-semicolon ordered,shell -k 'echo {}; echo done' ::: a
files 'a.out b.out'
t shell-redirect-files sorted,shell 'echo {} > {}.out' ::: a b
# Inputs are data, never shell code, with or without a shell.
files 'zz'
t shell-hostile ordered,shell -k 'echo {} | cat' ::: '$(echo pwned)' '`echo bq`' \
    'a;b' "it's" 'x"y' '*' '$HOME' 'a|b' '&' '>zz' ' lead' 'tab	x' '-n'
files 'zz'
t plain-hostile ordered -k echo ::: '$(echo pwned)' '`echo bq`' 'a;b' "it's" \
    'x"y' '*' '$HOME' 'a|b' '&' '>zz' ' lead' 'tab	x'
input nul-hostile
t shell-hostile-null ordered,shell -k -0 'printf "<%s>\n" {}'
t no-command-inputs-are-commands sorted,shell ::: 'echo a' 'echo b; echo c'
t special-names ordered -k cat -- ::: 'sp ace' -dash "qu'ote" 'dq"x'
t special-names-shell ordered,shell -k 'wc -c < {}' ::: 'sp ace' -dash "qu'ote" 'dq"x'
input nul-names
t special-names-null ordered -k -0 cat --
input nul-names
t special-names-null-shell ordered,shell -k -0 'wc -c < {}'
# One argument of 131,000 bytes (under Linux's 131,072 a string).  GNU
# refuses it: its limit for a whole command line is what it probed, halved
# for the shell (255, nothing run).
filter bytes
known 'zmp runs what exec takes (131,071 bytes a word); GNU parallel stops at its own probed limit'
t arg-131000-bytes sorted echo ::: "$big131"
filter bytes
t arg-50000-bytes sorted echo ::: "$big50"
input line100m
t line-100MB-pipe sorted --pipe wc -c
input line100m
t line-100MB-as-argument sorted wc -c

# --- 5. output ---------------------------------------------------------------
# Two jobs at once, the second 0.2 s behind, each printing twice 0.4 s apart:
# --group prints each job whole as it ends, -u as the bytes come,
# --line-buffer as lines come (a line whole even when written in two parts).
t group-default ordered,shell -j2 'sleep {}; echo {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t group-partial ordered,shell -j2 --group 'sleep {}; printf {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t ungroup ordered,shell -j2 -u 'sleep {}; printf {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t ungroup-long ordered,shell -j2 --ungroup 'sleep {}; echo {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t line-buffer ordered,shell -j2 --line-buffer 'sleep {}; echo {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t line-buffer-partial ordered,shell -j2 --line-buffer 'sleep {}; printf {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t line-buffer-tag ordered,shell -j2 --tag --line-buffer 'sleep {}; printf {}-1; sleep 0.4; echo {}-2' ::: 0 0.2
t keep-order ordered,shell -k -j3 'sleep {}; echo {}' ::: 0.4 0.2 0
t keep-order-long ordered,shell --keep-order -j3 'sleep {}; echo {}' ::: 0.4 0.2 0
t tag ordered -k --tag echo ::: a b
t tag-two-sources ordered -k --tag echo ::: a b ::: 1 2
t tag-n2 ordered -k --tag -n2 echo ::: a b c
t tag-stderr ordered,shell,stderr -k --tag 'echo out {}; echo err {} >&2' ::: a b
t tagstring ordered -k --tagstring '{1}:' echo {2} ::: a b ::: 1 2
t tagstring-seq ordered -k --tagstring '<{}>{#}' echo ::: a b
t stderr-passthrough sorted,shell,stderr 'echo out {}; echo err {} >&2' ::: a b

# --- 6. running jobs ---------------------------------------------------------
# --retries: a job that fails twice then succeeds; only the last try's
# output is printed.  Its count of tries is in a file.
files 'a.n'
t retries-succeed ordered,shell --retries 3 \
    'n=$(cat {}.n 2> /dev/null || echo 0); n=$((n + 1)); echo $n > {}.n; echo try $n; [ $n -ge 3 ]' ::: a
files 'b.n'
joblog jl
t retries-exhausted ordered,shell --retries 2 --joblog jl \
    'n=$(cat {}.n 2> /dev/null || echo 0); n=$((n + 1)); echo $n > {}.n; echo try $n; exit 1' ::: b
# --halt: with -j1 the order and the jobs run are fixed.  The status is the
# failing job's with fail=1 (128 + a signal), else the count of failures,
# or with a % the failed percentage of all jobs (rounded up).
t halt-soon-fail ordered,shell -j1 --halt soon,fail=1 'echo {}; exit {}' ::: 0 3 2 0
t halt-now-fail ordered,shell -j1 --halt now,fail=1 'echo {}; exit {}' ::: 0 3 2 0
# now kills the running job (it would print 0.5 s later); soon waits for it.
t halt-now-fail-kills ordered,shell -j2 --halt now,fail=1 'sleep {}; echo {}; exit 4' ::: 0.1 0.6
t halt-soon-fail-waits ordered,shell -j2 --halt soon,fail=1 'sleep {}; echo {}; exit 4' ::: 0.1 0.6
t halt-fail-2 ordered,shell -j1 --halt soon,fail=2 'echo {}; exit {}' ::: 0 1 2 3 0 0
t halt-fail-signal ordered,shell -j1 --halt now,fail=1 'echo {}; kill -TERM $$' ::: 0 5
t halt-fail-pct ordered,shell -j1 --halt now,fail=20% 'echo {}; exit {}' ::: 0 0 1 2 0 0 0 0 0 0
t halt-fail-pct-not-reached ordered,shell -j1 --halt soon,fail=50% 'echo {}; exit {}' ::: 0 1 2 0 0 0
t halt-soon-success ordered,shell -j1 --halt soon,success=1 'echo {}; exit {}' ::: 3 0 1 2
t halt-now-success-kills ordered,shell -j2 --halt now,success=1 'sleep {}; echo {}' ::: 0.1 0.6
t halt-done ordered,shell -j1 --halt soon,done=2 'echo {}; exit {}' ::: 3 0 1 2
t halt-never ordered,shell -j1 --halt never 'echo {}; exit {}' ::: 0 5 2 3 0 0
# The old numeric form: 1 is soon,fail=1, 2 is now,fail=1.
t halt-1 ordered,shell -j1 --halt 1 'echo {}; exit {}' ::: 0 5 2 3 0 0
t halt-2 ordered,shell -j1 --halt 2 'echo {}; exit {}' ::: 0 5 2 3 0 0
# In GNU, --halt-on-error is --halt under another name: it takes a value.
t halt-on-error ordered,shell -j1 --halt-on-error 1 'echo {}; exit {}' ::: 0 5 2 3 0 0
# --timeout: SIGTERM (by default) to a job still running after SECS, or
# after N% of the median run time of the jobs so far.
t timeout ordered,shell -k --timeout 0.5 'sleep {}; echo {}' ::: 0 2
t timeout-pct ordered,shell -j1 --timeout 300% 'sleep {}; echo {}' ::: 0.1 0.1 0.1 0.1 2
joblog jl
t timeout-joblog sorted,shell --timeout 0.3 --joblog jl 'sleep 2; echo {}' ::: a
# --termseq: TERM, which the job catches, then KILL 0.1 s later.
t termseq ordered,shell --timeout 0.3 --termseq TERM,100,KILL,25 \
    'trap "echo got TERM {}" TERM; sleep 2 > /dev/null & wait; echo after; sleep 2 > /dev/null & wait; echo after2' ::: a
joblog jl
t termseq-exit ordered,shell --timeout 0.3 --termseq INT,200,KILL,25 --joblog jl \
    'trap "echo got INT {}; exit 3" INT; sleep 2 > /dev/null & wait' ::: a
# --delay 0.3: the second job starts after the first (0.1 s) has ended.
t delay ordered,shell -j2 -u --delay 0.3 'echo start {}; sleep 0.1; echo end {}' ::: a b
t dry-run ordered -k --dry-run echo ::: a 'b c' "it's" '$(x)'
t dry-run-shell ordered,shell -k --dry-run 'echo {} | wc' ::: a 'b c'
t dry-run-X ordered -j1 --dry-run -X echo pre-{} ::: a b
files 'jl'
t dry-run-no-joblog ordered --dry-run --joblog jl echo ::: a
joblog jl
t joblog ordered -k --joblog jl echo ::: a 'b c' "it's"
joblog jl
t joblog-exit sorted,shell --joblog jl 'exit {}' ::: 0 1 2
joblog jl
t joblog-signal sorted,shell --joblog jl ': {}; kill -TERM $$' ::: a
joblog jl
t resume ordered -k --joblog jl echo ::: a b c -THEN- -k --resume --joblog jl echo ::: a b c d e
joblog jl
t resume-failed ordered,shell -k --joblog jl 'echo {}; exit {}' ::: 0 1 0 2 \
    -THEN- -k --resume-failed --joblog jl 'echo {}; exit {}' ::: 0 1 0 2 3
# --retry-failed: the failed command lines of the joblog, no command given.
joblog jl
t retry-failed ordered,shell -k --joblog jl 'echo {}; exit {}' ::: 0 1 0 2 \
    -THEN- -k --retry-failed --joblog jl

# --- 8. --pipe -----------------------------------------------------------------
input seq20
t pipe-one-block ordered --pipe -k wc -l
input seq20
t pipe-block-order ordered --pipe --block 10 -k cat
input seq20
filter whole_lines
t pipe-block-whole-lines sorted,shell --pipe --block 10 'cat; echo ==='
# Records longer than the block: each job gets exactly one.
input rec13
t pipe-block-long-records ordered,shell --pipe --block 10 -k 'echo {#}; cat'
input semis
filter end_records
t pipe-recend sorted,shell --pipe --recend ';' --block 1 'cat; echo'
input semis
filter end_records
t pipe-recend-block ordered,shell --pipe --recend ';' --block 6 -k 'cat; echo'
input fasta
filter start_records
t pipe-recstart sorted,shell --pipe --recstart '>' --block 1 'echo ==; cat'
input startend
filter start_end_records
t pipe-recstart-recend sorted,shell --pipe --recstart '>' --recend ';' --block 1 'cat; echo'
input seq1000
filter jobs_total
t pipe-round-robin sorted --pipe --round-robin -j2 --block 100 wc -l
input seq1000
t pipe-block-content sorted --pipe --block 1000 cat

echo "zmp-compat: $pass passed, $fail failed, $nknown known differences"
[ $fail -eq 0 ]
