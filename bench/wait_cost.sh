#!/bin/sh
# What the wait-reason bookkeeping and the frame pointers cost, in user-space
# instructions per round trip (exact: valgrind's callgrind counts them, so
# the load of a shared machine cannot move them).  docs/debugging.md "Cost".
#
#   bench/wait_cost.sh [WORKDIR]      (default: ${TMPDIR:-/tmp}/tide-wait-cost)
#
# Builds tide three times (library + bench/wait_cost + bench/echo only):
#   base    the default build (bookkeeping on, TIDE_FRAME_POINTERS=ON)
#   noinfo  the same with -DTIDE__NO_WAIT_INFO: the bookkeeping compiled out
#           (a define for this measurement only: dumps then name no reasons)
#   nofp    bookkeeping on, -DTIDE_FRAME_POINTERS=OFF
# and, with WAIT_COST_REF=<git rev> (e.g. a commit before the bookkeeping),
# a fourth one of that revision with this bench/wait_cost.c and bench.h copied in.
# Then, for each build, under callgrind:
#   switch  bench/wait_cost switch N: two tasks handing a tide_event back and
#           forth (per round trip: two suspensions, two wakes, two steps);
#   yield   bench/wait_cost yield N: tide_sleep(0), a step without a wait;
#   echo    bench/echo server-tide (tide_start_server, stream read/write),
#           driven by bench/wait_cost client over TCP with N ping-pongs of
#           64 bytes: the server's instructions per round trip.
# Each is run with two round counts and the difference divided by the
# difference of rounds, so start-up and teardown cancel out.  Printed: the
# instructions per round trip of each build and the ratios base/noinfo (what
# the bookkeeping costs) and base/nofp (what frame pointers cost).
# Needs valgrind and cmake; takes a few minutes (-j2 builds, valgrind runs).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/tide-wait-cost}
jobs=${WAIT_COST_JOBS:-2}
S1=${WAIT_COST_SWITCH1:-20000}
S2=${WAIT_COST_SWITCH2:-60000}
E1=${WAIT_COST_ECHO1:-4000}
E2=${WAIT_COST_ECHO2:-12000}

command -v valgrind >/dev/null || {
    echo "wait_cost.sh: needs valgrind (apt-get install valgrind)" >&2
    exit 2
}
mkdir -p "$work"

build() { # name srcdir cmake-args...
    name=$1
    dir=$2
    shift 2
    echo "building $name ..." >&2
    cmake -S "$dir" -B "$work/$name" -DTIDE_TLS=OFF -DTIDE_BUILD_TESTS=OFF \
        -DTIDE_BUILD_EXAMPLES=OFF -DTIDE_BUILD_BENCH=ON "$@" >"$work/$name.cmake.log" 2>&1 ||
        { cat "$work/$name.cmake.log" >&2; exit 1; }
    cmake --build "$work/$name" -j"$jobs" --target bench_wait_cost bench_echo \
        >"$work/$name.build.log" 2>&1 || { tail -30 "$work/$name.build.log" >&2; exit 1; }
}

# Instructions callgrind collected running "$@".
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# Instructions of bench/echo server-tide serving N round trips.
count_echo() { # builddir n
    out=$work/echo.out
    err=$work/echo.err
    : >"$out"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1/bench/echo" server-tide \
        >"$out" 2>"$err" &
    vpid=$!
    i=0
    while ! grep -q '^[0-9]' "$out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "echo server did not start" >&2; cat "$err" >&2; exit 1; }
        sleep 0.1
    done
    port=$(grep -m1 '^[0-9]' "$out")
    "$1/bench/wait_cost" client "$port" "$2"
    kill -TERM $vpid
    wait $vpid || true
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$err"
}

per_round() { # c1 c2 n1 n2
    echo "$1 $2 $3 $4" | awk '{ printf "%.1f", ($2 - $1) / ($4 - $3) }'
}

measure() { # name -> sets sw_NAME, yi_NAME, ec_NAME
    b=$work/$1
    a=$(count "$b/bench/wait_cost" switch "$S1")
    c=$(count "$b/bench/wait_cost" switch "$S2")
    eval "sw_$1=$(per_round "$a" "$c" "$S1" "$S2")"
    a=$(count "$b/bench/wait_cost" yield "$S1")
    c=$(count "$b/bench/wait_cost" yield "$S2")
    eval "yi_$1=$(per_round "$a" "$c" "$S1" "$S2")"
    a=$(count_echo "$b" "$E1")
    c=$(count_echo "$b" "$E2")
    eval "ec_$1=$(per_round "$a" "$c" "$E1" "$E2")"
}

build base "$src" -DTIDE_FRAME_POINTERS=ON
build noinfo "$src" -DTIDE_FRAME_POINTERS=ON -DCMAKE_C_FLAGS=-DTIDE__NO_WAIT_INFO
build nofp "$src" -DTIDE_FRAME_POINTERS=OFF
configs="base noinfo nofp"
if [ -n "${WAIT_COST_REF:-}" ]; then
    rm -rf "$work/ref-src"
    mkdir -p "$work/ref-src"
    git -C "$src" archive "$WAIT_COST_REF" | tar -x -C "$work/ref-src"
    cp "$src/bench/wait_cost.c" "$src/bench/bench.h" "$work/ref-src/bench/"
    build ref "$work/ref-src"
    configs="$configs ref"
fi
for c in $configs; do
    echo "measuring $c ..." >&2
    measure "$c"
done

ratio() { echo "$1 $2" | awk '{ printf "%.4f", $1 / $2 }'; }
printf '\ninstructions per round trip (callgrind; switch/yield %s-%s rounds, echo %s-%s)\n' \
    "$S1" "$S2" "$E1" "$E2"
printf '%-8s %10s %10s %10s\n' build switch yield echo
for c in $configs; do
    eval "printf '%-8s %10s %10s %10s\n' $c \$sw_$c \$yi_$c \$ec_$c"
done
printf '\nratios (same run)                   switch   yield    echo\n'
printf 'bookkeeping: base / noinfo         %s  %s  %s\n' "$(ratio "$sw_base" "$sw_noinfo")" \
    "$(ratio "$yi_base" "$yi_noinfo")" "$(ratio "$ec_base" "$ec_noinfo")"
printf 'frame pointers: base / nofp        %s  %s  %s\n' "$(ratio "$sw_base" "$sw_nofp")" \
    "$(ratio "$yi_base" "$yi_nofp")" "$(ratio "$ec_base" "$ec_nofp")"
if [ -n "${WAIT_COST_REF:-}" ]; then
    printf 'ref %s / noinfo                 %s  %s  %s\n' "$WAIT_COST_REF" \
        "$(ratio "$sw_ref" "$sw_noinfo")" "$(ratio "$yi_ref" "$yi_noinfo")" \
        "$(ratio "$ec_ref" "$ec_noinfo")"
fi
