#!/usr/bin/env bash
# One loop per core: examples/http_hello -j 1 against -j 2 under wrk.
#
#   bench/http_loops.sh [BUILD_DIR] [SECONDS] [TURNS]   (defaults: build, 3, 3)
#
# Nothing is pinned: wrk (one thread, 100 keep-alive connections) and the
# server share this machine's 2 cores, as the issue asks ("the client
# competes for the same 2 cores").  The two servers are measured in
# alternating turns (-j 1, -j 2, -j 1, ...); each figure is the median of
# the turns.  Printed per server: requests/s, the server's CPU per request
# (every thread, /proc/PID/task/*/schedstat), wrk's CPU per request, and,
# from those costs, the bound: the -j 2 / -j 1 ratio the two cores allow
# when they are the server's and the client's alone.  One loop serves at
# most one core's worth (1/srv) and, with the client, 2/(srv + cli); two
# loops at most 2/(srv2 + cli).  So a second loop can approach 2x only
# when the client is cheap per request beside the server; the measured
# ratio should be read against that bound.
#
# Needs wrk (Debian: wrk); installed with apt-get when run as root.
set -eu

BUILD=${1:-build}
SECS=${2:-3}
TURNS=${3:-3}
HH=$BUILD/examples/http_hello

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
    else
        echo "http_loops: needs wrk: sudo apt-get install -y wrk" >&2
        exit 1
    fi
fi
[ -x "$HH" ] || { echo "http_loops: $HH not built" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "http_loops: needs 2 CPUs" >&2; exit 1; }

cpu_ns() { # every thread of PID, nanoseconds on CPU
    local f t=0 ns
    for f in /proc/"$1"/task/*/schedstat; do
        [ -r "$f" ] && read -r ns _ <"$f" && t=$((t + ns))
    done
    echo "$t"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
tmp=$(mktemp -d)

# turn LOOPS: one measured run; appends "requests/s requests server_cpu_ns" to $tmp/jLOOPS
turn() {
    local j=$1 out="$tmp/srv.$1" port pid s0 s1
    "$HH" -j "$j" 127.0.0.1 0 >"$out" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.02; done
    port=$(sed -n 's|.*http://[^:]*:\([0-9]*\)/.*|\1|p' "$out")
    [ -n "$port" ] || { echo "http_loops: -j $j did not start" >&2; exit 1; }
    wrk -t1 -c100 -d1 "http://127.0.0.1:$port/" >/dev/null # warm-up: connections, stacks
    s0=$(cpu_ns "$pid")
    wrk -t1 -c100 -d"$SECS" "http://127.0.0.1:$port/" >"$tmp/wrk.out"
    s1=$(cpu_ns "$pid")
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    local rps reqs
    rps=$(awk '/Requests\/sec/ { print $2 }' "$tmp/wrk.out")
    reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
    echo "$rps $reqs $((s1 - s0))" >>"$tmp/j$j"
}

# wrk's CPU per request, measured apart: the same load, wrk's rusage.
wrk_cost() {
    local out="$tmp/srv.c" port pid
    "$HH" -j 2 127.0.0.1 0 >"$out" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.02; done
    port=$(sed -n 's|.*http://[^:]*:\([0-9]*\)/.*|\1|p' "$out")
    local t
    t=$( { /usr/bin/time -f "%U %S" wrk -t1 -c100 -d"$SECS" "http://127.0.0.1:$port/" >"$tmp/wrkc.out"; } 2>&1 | tail -1)
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    awk -v t="$t" '/requests in/ { n = $1 } END { split(t, a, " "); printf "%.2f", (a[1] + a[2]) * 1e6 / n }' "$tmp/wrkc.out"
}

for _ in $(seq "$TURNS"); do
    turn 1
    turn 2
done
if [ -x /usr/bin/time ]; then CLI=$(wrk_cost); else CLI=nan; fi

summ() { # file -> "rps srv_us"
    local r s
    r=$(awk '{ print $1 }' "$1" | median)
    s=$(awk '{ printf "%.3f\n", $3 / 1000 / $2 }' "$1" | median)
    echo "$r $s"
}
read -r R1 S1 <<<"$(summ "$tmp/j1")"
read -r R2 S2 <<<"$(summ "$tmp/j2")"
echo "http_hello under wrk -t1 -c100, ${SECS} s x $TURNS turns each, nothing pinned, 2 shared cores (load: $(cut -d' ' -f1-3 /proc/loadavg))"
printf "%-6s %12s %14s\n" loops "requests/s" "server us/req"
printf "%-6s %12.0f %14.2f\n" 1 "$R1" "$S1"
printf "%-6s %12.0f %14.2f\n" 2 "$R2" "$S2"
awk -v r1="$R1" -v r2="$R2" -v s1="$S1" -v s2="$S2" -v c="$CLI" 'BEGIN {
    printf "ratio -j 2 / -j 1: %.2f requests/s, %.2f server CPU per request; wrk %s us/req\n", r2 / r1, s2 / s1, c
    if (c != "nan") {
        b1 = 1 / s1; if (2 / (s1 + c) < b1) b1 = 2 / (s1 + c)
        printf "bound the 2 cores allow (from those costs): %.2f; aim 1.6\n", (2 / (s2 + c)) / b1
    }
}'
rm -rf "$tmp"
