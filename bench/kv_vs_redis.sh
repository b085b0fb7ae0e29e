#!/usr/bin/env bash
# kv_server against redis-server, measured in the same run.
#
#   bench/kv_vs_redis.sh [BUILD_DIR] [REQUESTS]     (defaults: build, 200000)
#
# Part 1 (one core each): redis-server and examples/kv_server run one
# thread each, both pinned to CPU 0 (taskset); redis-benchmark runs on CPU
# 1 with 50 clients, -t set,get, at pipeline depth 1 and 16.  The two
# servers are measured in turns (kv, redis, kv, redis) and the best of the
# two turns is kept for each, so a noisy neighbour hurts both alike.
# Printed: requests/s of each and the ratio kv_server / redis-server.
#
# Part 2 (one loop per core): kv_server -j 1 against kv_server -j 2, no
# pinning: the client (redis-benchmark --threads 2) competes for the same 2
# cores in both runs.  Printed: requests/s, the ratio, and the server's CPU
# time per request (utime+stime from /proc/PID/stat), which tells how much
# of the ratio the shared CPU left on the table.
#
# Needs redis-server and redis-benchmark (Debian: redis-server,
# redis-tools); installed with apt-get when run as root.
set -eu

BUILD=${1:-build}
N=${2:-200000}
KV=$BUILD/examples/kv_server

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >/dev/null
    else
        echo "kv_vs_redis: needs redis-server and redis-benchmark:" >&2
        echo "  sudo apt-get install -y redis-server redis-tools" >&2
        exit 1
    fi
fi
[ -x "$KV" ] || { echo "kv_vs_redis: $KV not built" >&2; exit 1; }
NCPU=$(nproc)
[ "$NCPU" -ge 2 ] || { echo "kv_vs_redis: needs 2 CPUs" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "kv_vs_redis: nothing answers on port $1" >&2
    exit 1
}

# rps PORT DEPTH TEST [CLIENT_PREFIX...]: requests/s of one redis-benchmark test.
rps() {
    local port=$1 depth=$2 test=$3
    shift 3
    "$@" redis-benchmark -p "$port" -c 50 -n "$N" -P "$depth" -t "$test" --csv 2>/dev/null |
        awk -F'"' -v t="${test^^}" '$2 == t { print $4 }'
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b) ? a : b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# CPU seconds (utime + stime) of PID.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }

echo "== part 1: one thread each, servers on CPU 0, redis-benchmark on CPU 1, -c 50 -n $N"
RP=$(free_port)
taskset -c 0 redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no \
    --protected-mode no --daemonize no --loglevel warning >/dev/null &
PIDS+=($!)
KP=$(free_port)
taskset -c 0 "$KV" "$KP" >/dev/null &
PIDS+=($!)
wait_port "$RP"
wait_port "$KP"

printf "%-6s %6s %14s %14s %8s\n" test depth kv_server redis ratio
for depth in 1 16; do
    for t in set get; do
        k=0 r=0
        for _ in 1 2; do
            k=$(max "$k" "$(rps "$KP" "$depth" "$t" taskset -c 1)")
            r=$(max "$r" "$(rps "$RP" "$depth" "$t" taskset -c 1)")
        done
        printf "%-6s %6s %14s %14s %8s\n" "$t" "$depth" "$k" "$r" "$(ratio "$k" "$r")"
    done
done
cleanup
PIDS=()

echo "== part 2: kv_server -j 1 vs -j 2, unpinned, client redis-benchmark --threads 2 (same 2 cores)"
printf "%-6s %6s %12s %12s %8s %16s %16s\n" test depth j1 j2 ratio "cpu_us/req j1" "cpu_us/req j2"
for depth in 1 16; do
    for t in set get; do
        declare -A R C
        for j in 1 2; do
            P=$(free_port)
            "$KV" -j "$j" "$P" >/dev/null &
            pid=$!
            PIDS+=($pid)
            wait_port "$P"
            best=0 bestc=0
            for _ in 1 2; do
                c0=$(cpu_of "$pid")
                v=$(redis-benchmark -p "$P" -c 50 -n "$N" -P "$depth" -t "$t" --threads 2 --csv \
                    2>/dev/null | awk -F'"' -v tt="${t^^}" '$2 == tt { print $4 }')
                c1=$(cpu_of "$pid")
                if awk -v a="$v" -v b="$best" 'BEGIN { exit !(a > b) }'; then
                    best=$v
                    bestc=$(awk -v a="$c0" -v b="$c1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
                fi
            done
            R[$j]=$best
            C[$j]=$bestc
            kill "$pid"
            wait "$pid" 2>/dev/null || true
        done
        printf "%-6s %6s %12s %12s %8s %16s %16s\n" "$t" "$depth" "${R[1]}" "${R[2]}" \
            "$(ratio "${R[2]}" "${R[1]}")" "${C[1]}" "${C[2]}"
    done
done
