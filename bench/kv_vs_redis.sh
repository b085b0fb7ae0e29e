#!/usr/bin/env bash
# kv_server against redis-server, and kv_server -j 2 against -j 1, measured
# in the same run, with the CPU each side spent.
#
#   bench/kv_vs_redis.sh [BUILD_DIR] [REQUESTS] [TURNS]   (defaults: build, 100000, 3)
#   environment: KV_BENCH_CAP (the capped parts' quota, 0.15 of a CPU),
#   KV_BENCH_PARTS (e.g. "1 2b"; default all: "1 1b 2 2b").  Depth-16 runs take
#   4 x REQUESTS, the capped parts REQUESTS / 4.
#
# Every figure is a median of TURNS turns taken in alternation (A, B, A, B...),
# so a noisy neighbour hurts both alike; the spread column is the lowest and
# highest of the per-turn ratios (turn i of A over turn i of B).  For every
# run the script reads the server's CPU time (utime + stime of the whole
# process, /proc/PID/stat) and the client's (bash's `time` on
# redis-benchmark) and prints, per request:
#   srv_us  server CPU microseconds per request
#   cli_us  client (redis-benchmark) CPU microseconds per request
#   slp     times the server's threads went to sleep (voluntary context
#           switches) per request: each costs a wake-up, several us here
#   util    CPU seconds over wall seconds of the run, server/client: the side
#           near its ceiling (1.00 for one pinned thread, the cgroup quota in
#           the capped parts) is the bottleneck; when neither is, the
#           machine's other load was (the CPUs were busy with something else).
#
# Part 1 (the issue's set-up): redis-server and kv_server, one thread each,
# pinned to CPU 0; redis-benchmark on CPU 1; 50 clients, -t set,get, depth
# 1 and 16.  At depth 1 redis-benchmark costs more CPU per request than
# either server, so on a quiet machine its one CPU is the limit and the
# requests/s ratio says little about the servers: compare srv_us.
#
# Part 1b (depth 1, the server made the bottleneck): the same, but each
# server runs in its own CPU cgroup with a quota of CAP (default 0.15) of a
# CPU, so that the server, not the client, saturates; the requests/s ratio
# then measures the servers (the capped column says whether both reached
# their quota).  Skipped
# when no cgroup CPU controller is writable (needs root).
#
# Part 2 (one loop per core, the client given the same CPU): kv_server -j 1
# and -j 2, nothing pinned, two redis-benchmark processes (25 clients each)
# on the same 2 cores.
# cores = (server + client CPU) / wall at -j 1.  bound = the -j 2 / -j 1
# ratio the two cores allow when they are the server's and the client's
# alone, from the CPU per request measured: one loop serves at most
# 1/srv_us (one core) and the pair at most 2/(srv_us + cli_us) (two
# cores), so when the client costs as much per request as the server
# (cli_us >= srv_us) one loop already reaches what the cores allow and the
# bound is about 1; 1.6x needs cli_us <= srv_us / 4.  On a loaded machine a
# ratio above the bound is the scheduler's: two loop threads get two fair
# shares of a busy CPU where one thread gets one.
#
# Part 2b (the same CPU per loop): -j 1 in a cgroup with a quota of CAP of
# a CPU, -j 2 with 2 x CAP; the client has the rest of the 2 cores (more
# than it needs), so the ratio says whether a second loop turns twice the
# CPU into twice the requests (locks and shared cache lines would show
# here).  Skipped like part 1b.  The capped column says whether both
# servers reached their quota (85% of it or more): if not, the machine's
# other load limited them, not the quota, and the ratio is the scheduler's.
#
# Needs redis-server and redis-benchmark (Debian: redis-server,
# redis-tools); installed with apt-get when run as root.
set -eu

BUILD=${1:-build}
N=${2:-100000}
TURNS=${3:-3}
CAP=${KV_BENCH_CAP:-0.15}
PARTS=${KV_BENCH_PARTS:-1 1b 2 2b} # which parts to run
want() { [[ " $PARTS " == *" $1 "* ]]; }
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
[ "$(nproc)" -ge 2 ] || { echo "kv_vs_redis: needs 2 CPUs" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
CGROUPS=()
cleanup() {
    local p g
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for g in "${CGROUPS[@]}"; do rmdir "$g" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

wait_port() {
    for _ in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "kv_vs_redis: nothing answers on port $1" >&2
    exit 1
}

# CPU nanoseconds of PID, all its threads (schedstat: the scheduler's own
# count, not 10 ms ticks; utime + stime from /proc/PID/stat if it is missing).
cpu_ns() {
    local f t=0 ok=0
    for f in /proc/"$1"/task/*/schedstat; do
        [ -r "$f" ] || continue
        read -r ns _ <"$f" && t=$((t + ns)) && ok=1
    done
    [ $ok = 1 ] && { echo "$t"; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e9 / hz }' "/proc/$1/stat"
}
# Times PID's threads went to sleep (voluntary context switches).
sleeps() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '$1 == "voluntary_ctxt_switches:" { s += $2 } END { print s + 0 }'; }
lock_waits() { redis-cli -p "$1" info 2>/dev/null | tr -d '\r' | awk -F: '$1 == "tide_lock_waits" { print $2 }'; }

# ---- CPU cgroups (v2 or v1), for the capped parts.
CG_KIND=""
if [ "$(id -u)" = 0 ]; then
    if [ -w /sys/fs/cgroup/cgroup.subtree_control ] &&
        grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        CG_KIND=v2
    elif [ -w /sys/fs/cgroup/cpu/cgroup.procs ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        CG_KIND=v1
    fi
fi
# cg_make NAME CPUS: a cgroup allowed CPUS (e.g. 0.3) of a CPU per 20 ms;
# its path in CG (not printed: a $(...) subshell would lose it from
# CGROUPS, and cleanup would leave the directory behind).
cg_make() {
    local g quota
    quota=$(awk -v c="$2" 'BEGIN { printf "%d", c * 20000 }')
    if [ "$CG_KIND" = v2 ]; then
        g=/sys/fs/cgroup/tide-kvbench-$$-$1
        mkdir "$g"
        echo "$quota 20000" >"$g/cpu.max"
    else
        g=/sys/fs/cgroup/cpu/tide-kvbench-$$-$1
        mkdir "$g"
        echo 20000 >"$g/cpu.cfs_period_us"
        echo "$quota" >"$g/cpu.cfs_quota_us"
    fi
    CGROUPS+=("$g")
    CG=$g
}

# start NAME CGROUP|- CMD...: starts a server, records its pid in PID_<NAME>.
start() {
    local name=$1 cg=$2 pid
    shift 2
    "$@" >/dev/null &
    pid=$!
    PIDS+=("$pid")
    [ "$cg" = - ] || echo "$pid" >"$cg/cgroup.procs"
    printf -v "PID_$name" %s "$pid"
}
stop_all() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

# turn PORT PID DEPTH TEST N: one measured run of CLIENT_PROCS redis-benchmark
# processes (50 clients and N requests between them, started together,
# each under CLIENT_PREFIX, e.g. "taskset -c 1"); prints "rps srv_us cli_us
# srv_util cli_util sleeps_per_request".  With several processes, rps is all their requests
# over the longest one's own duration (requests / its rps).  Not
# redis-benchmark --threads: its requests/s are rounded to its 250 ms
# timer's ticks and it costs 2-4x the CPU per request of one thread.
turn() {
    local port=$1 pid=$2 depth=$3 test=$4 n=$5 k=${CLIENT_PROCS:-1} c0 c1 w0 w1 z0 z1 rps cli i
    c0=$(cpu_ns "$pid")
    z0=$(sleeps "$pid")
    w0=$(date +%s%N)
    TIMEFORMAT='%3U %3S'
    {
        time {
            for ((i = 0; i < k; i++)); do
                $CLIENT_PREFIX redis-benchmark -p "$port" -c $((50 / k)) -n $((n / k)) \
                    -P "$depth" -t "$test" --csv >"$TMP/out.$i" 2>/dev/null &
            done
            wait
        }
    } 2>"$TMP/time"
    w1=$(date +%s%N)
    c1=$(cpu_ns "$pid")
    z1=$(sleeps "$pid")
    rps=$(for ((i = 0; i < k; i++)); do
        awk -F'"' -v t="${test^^}" '$2 == t { print $4 }' "$TMP/out.$i"
    done | awk -v n=$((n / k)) '$1 > 0 { d = n / $1; if (d > max) max = d; tot += n }
        END { if (max > 0) printf "%.0f", tot / max; else print 0 }')
    cli=$(awk '{ print $1 + $2 }' "$TMP/time")
    awk -v r="$rps" -v c0="$c0" -v c1="$c1" -v n="$n" -v cl="$cli" \
        -v w0="$w0" -v w1="$w1" -v z="$((z1 - z0))" 'BEGIN {
            w = (w1 - w0) / 1e9; s = (c1 - c0) / 1e9
            printf "%.0f %.2f %.2f %.2f %.2f %.3f\n", r, s * 1e6 / n, cl * 1e6 / n, s / w, cl / w, z / n }'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
lo_hi() { # "a1 a2 ..." "b1 b2 ...": min..max of ai/bi
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); lo = 1e9; hi = 0
        for (i = 1; i <= n; i++) if (y[i] > 0) { r = x[i] / y[i]; if (r < lo) lo = r; if (r > hi) hi = r }
        printf "%.2f-%.2f", lo, hi }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# compare LABEL_A PORT_A PID_A LABEL_B PORT_B PID_B DEPTH TEST N: TURNS turns
# of A and B in alternation; one line of medians.
compare() {
    local pa=$2 ida=$3 pb=$5 idb=$6 depth=$7 test=$8 n=$9 i f
    local ra="" rb="" sa="" sb="" ca="" cb="" ua="" ub="" va="" vb="" za="" zb="" w0
    w0=$(lock_waits "$pa")
    for ((i = 0; i < TURNS; i++)); do
        read -r -a f <<<"$(turn "$pa" "$ida" "$depth" "$test" "$n")"
        ra+="${f[0]} " sa+="${f[1]} " ca+="${f[2]} " ua+="${f[3]} " va+="${f[4]} " za+="${f[5]} "
        read -r -a f <<<"$(turn "$pb" "$idb" "$depth" "$test" "$n")"
        rb+="${f[0]} " sb+="${f[1]} " cb+="${f[2]} " ub+="${f[3]} " vb+="${f[4]} " zb+="${f[5]} "
    done
    local mra mrb msa msb mca mcb
    mra=$(median <<<"$ra") mrb=$(median <<<"$rb")
    msa=$(median <<<"$sa") msb=$(median <<<"$sb")
    mca=$(median <<<"$ca") mcb=$(median <<<"$cb")
    printf "%-4s %3s %9s %9s %6s %10s | %6s %6s %6s | %6s %6s | %9s %9s | %5s %5s" \
        "$test" "$depth" "$mra" "$mrb" "$(ratio "$mra" "$mrb")" "$(lo_hi "$ra" "$rb")" \
        "$msa" "$msb" "$(ratio "$msa" "$msb")" "$mca" "$mcb" \
        "$(median <<<"$ua")/$(median <<<"$va")" "$(median <<<"$ub")/$(median <<<"$vb")" \
        "$(median <<<"$za")" "$(median <<<"$zb")"
    # part 2 (A = -j 2, B = -j 1): the cores B used (server + client), and
    # the ratio A/B the two cores would allow if they were the server's and
    # the client's alone, from the CPU per request measured: one loop serves
    # at most 1/srv of a core and both sides at most 2/(srv + cli); two loops
    # at most 2/(srv + cli).
    if [ "${WANT_BOUND:-0}" = 1 ]; then
        local cores bound
        cores=$(awk -v a="$(median <<<"$ub")" -v b="$(median <<<"$vb")" 'BEGIN { printf "%.2f", a + b }')
        bound=$(awk -v sa="$msa" -v ca="$mca" -v sb="$msb" -v cb="$mcb" 'BEGIN {
            ra = 2 / (sa + ca); rb = 2 / (sb + cb); if (1 / sb < rb) rb = 1 / sb
            printf "%.2f", ra / rb }')
        printf " | %5s %5s" "$cores" "$bound"
    fi
    if [ "${WANT_WAITS:-0}" = 1 ]; then
        awk -v a="$w0" -v b="$(lock_waits "$pa")" -v n=$((n * TURNS)) \
            'BEGIN { printf " | %.4f", (b - a) / n }'
    fi
    # capped parts: did each server reach its quota (else the machine's
    # other load limited it, not the cap, and the ratio is the scheduler's)?
    if [ -n "${CAP_A:-}" ]; then
        awk -v ua="$(median <<<"$ua")" -v ub="$(median <<<"$ub")" -v qa="$CAP_A" -v qb="$CAP_B" \
            'BEGIN { printf " | %s", (ua >= 0.85 * qa && ub >= 0.85 * qb) ? "yes" : "NO" }'
    fi
    echo
}

header() {
    printf "%-4s %3s %9s %9s %6s %10s | %6s %6s %6s | %6s %6s | %9s %9s | %5s %5s" \
        test P "rps $1" "rps $2" ratio spread srv_us srv_us ratio cli_us cli_us "util $1" "util $2" \
        slp slp
    [ "${WANT_BOUND:-0}" = 1 ] && printf " | %5s %5s" cores bound
    [ "${WANT_WAITS:-0}" = 1 ] && printf " | waits/req"
    [ -n "${CAP_A:-}" ] && printf " | capped"
    echo
    printf "%-4s %3s %9s %9s %6s %10s | %6s %6s %6s | %6s %6s | %9s %9s | %5s %5s\n" \
        "" "" "" "" "$1/$2" "" "$1" "$2" "$1/$2" "$1" "$2" srv/cli srv/cli "$1" "$2"
}

REDIS_OPTS=(--bind 127.0.0.1 --save "" --appendonly no --protected-mode no --daemonize no
    --loglevel warning)

if want 1; then
echo "== part 1: one thread each, servers on CPU 0, redis-benchmark on CPU 1, -c 50 -n $N, $TURNS turns"
RP=$(free_port)
KP=$(free_port)
start redis - taskset -c 0 redis-server --port "$RP" "${REDIS_OPTS[@]}"
start kv - taskset -c 0 "$KV" "$KP"
wait_port "$RP"
wait_port "$KP"
CLIENT_PREFIX="taskset -c 1" CLIENT_PROCS=1
header kv rd
for depth in 1 16; do
    for t in set get; do
        compare kv "$KP" "$PID_kv" rd "$RP" "$PID_redis" "$depth" "$t" $((depth > 1 ? 4 * N : N))
    done
done
stop_all
fi

if want 1b && [ -n "$CG_KIND" ]; then
    echo "== part 1b: depth 1, each server capped at $CAP of CPU 0 (cgroup $CG_KIND), client on CPU 1"
    RP=$(free_port)
    KP=$(free_port)
    CLIENT_PREFIX="taskset -c 1" CLIENT_PROCS=1
    cg_make redis "$CAP"
    start redis "$CG" taskset -c 0 redis-server --port "$RP" "${REDIS_OPTS[@]}"
    cg_make kv "$CAP"
    start kv "$CG" taskset -c 0 "$KV" "$KP"
    wait_port "$RP"
    wait_port "$KP"
    CAP_A=$CAP CAP_B=$CAP
    header kv rd
    for t in set get; do
        compare kv "$KP" "$PID_kv" rd "$RP" "$PID_redis" 1 "$t" $((N / 4))
    done
    CAP_A="" CAP_B=""
    stop_all
elif want 1b; then
    echo "== part 1b skipped: no writable cgroup CPU controller (run as root)"
fi

if want 2; then
echo "== part 2: kv_server -j 2 vs -j 1, unpinned, two redis-benchmark processes (25 clients each) on the same 2 cores"
P1=$(free_port)
P2=$(free_port)
start j1 - "$KV" -j 1 "$P1"
start j2 - "$KV" -j 2 "$P2"
wait_port "$P1"
wait_port "$P2"
CLIENT_PREFIX="" CLIENT_PROCS=2
WANT_BOUND=1 WANT_WAITS=1
header j2 j1
for depth in 1 16; do
    for t in set get; do
        compare j2 "$P2" "$PID_j2" j1 "$P1" "$PID_j1" "$depth" "$t" $((depth > 1 ? 4 * N : N))
    done
done
WANT_BOUND=0
stop_all
fi

if want 2b && [ -n "$CG_KIND" ]; then
    CAP2=$(awk -v c="$CAP" 'BEGIN { print 2 * c }')
    echo "== part 2b: depth 1, -j 1 capped at $CAP of a CPU, -j 2 at $CAP2 (cgroup $CG_KIND), two client processes unpinned"
    P1=$(free_port)
    P2=$(free_port)
    CLIENT_PREFIX="" CLIENT_PROCS=2
    cg_make j1 "$CAP"
    start j1 "$CG" "$KV" -j 1 "$P1"
    cg_make j2 "$CAP2"
    start j2 "$CG" "$KV" -j 2 "$P2"
    wait_port "$P1"
    wait_port "$P2"
    CAP_A=$CAP2 CAP_B=$CAP
    header j2 j1
    for t in set get; do
        compare j2 "$P2" "$PID_j2" j1 "$P1" "$PID_j1" 1 "$t" $((N / 4))
    done
    CAP_A="" CAP_B=""
    stop_all
fi
