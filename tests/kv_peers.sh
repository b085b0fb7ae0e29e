#!/usr/bin/env bash
# The RESP examples against real peers (ctest label "peers"):
#   - examples/kv_client --check (200 tasks, a pool of 8, pipelines) against
#     a real redis-server started here on a free loopback port, and against
#     examples/kv_server;
#   - redis-cli and a short redis-benchmark run (set,get, pipelined and not)
#     against kv_server, replies compared with redis-server's;
#   - kv_server with 2 loops (-j 2) under the same check;
#   - malformed input: kv_server answers -ERR, closes, and stays up.
#
#   tests/kv_peers.sh BUILD_DIR/examples
#
# Needs redis-server, redis-cli, redis-benchmark (Debian redis-server,
# redis-tools): installed with apt-get when root, else the test is skipped
# with the command to run (exit 77: ctest's SKIP_RETURN_CODE).
set -eu
EX=${1:?usage: kv_peers.sh EXAMPLES_DIR}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >/dev/null 2>&1 || true
    fi
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        echo "kv_peers: skipped: needs: sudo apt-get install -y redis-server redis-tools"
        exit 77
    fi
fi

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "kv_peers: FAIL: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}
wait_port() {
    for _ in $(seq 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    fail "nothing answers on port $1"
}

RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --protected-mode no \
    --daemonize no --loglevel warning >/dev/null &
PIDS+=($!)
KP=$(free_port)
"$EX/kv_server" "$KP" >/dev/null &
KPID=$!
PIDS+=($KPID)
wait_port "$RP"
wait_port "$KP"

echo "-- kv_client --check against redis-server $(redis-server --version | awk '{print $3}')"
"$EX/kv_client" -p "$RP" --check || fail "kv_client against redis-server"
echo "-- kv_client --check against kv_server"
"$EX/kv_client" -p "$KP" --check || fail "kv_client against kv_server"

echo "-- redis-cli: the same replies from both"
cmds=(
    "SET a 1" "GET a" "INCR a" "INCRBY a 10" "DECR a" "SET b hello EX 100" "TTL b" "PTTL nokey"
    "SET b x NX" "SET c y XX" "SET b z XX GET" "GET b" "MSET k1 v1 k2 v2" "MGET k1 k2 k3"
    "EXISTS k1 k2 k3" "DEL k1 k2 k3" "EXPIRE a 100" "TTL a" "PERSIST a" "TTL a" "APPEND a xyz"
    "STRLEN a" "INCR a" "PING" "PING hi" "ECHO hey" "GET" "SET onlykey" "EXPIRE a 0" "GET a"
    "SET e 1 PX 1" "DBSIZE" "SELECT 0"
)
for c in "${cmds[@]}"; do
    # shellcheck disable=SC2086
    r=$(redis-cli -p "$RP" $c 2>&1 | sed 's/ for .*//')
    # shellcheck disable=SC2086
    k=$(redis-cli -p "$KP" $c 2>&1 | sed 's/ for .*//')
    [ "$c" = "DBSIZE" ] && continue # key sets differ (the check's keys were deleted, e may linger)
    if [ "$r" != "$k" ]; then
        # error texts may differ in wording: both must be errors
        case "$r" in ERR*) case "$k" in ERR*) continue ;; esac ;; esac
        fail "'$c': redis-server says '$r', kv_server says '$k'"
    fi
done
sleep 0.01
[ "$(redis-cli -p "$KP" GET e)" = "" ] || fail "PX 1 did not expire"

echo "-- redis-benchmark against kv_server (short)"
for P in 1 16; do
    out=$(redis-benchmark -p "$KP" -c 20 -n 20000 -P "$P" -t set,get,ping,incr,mset --csv 2>&1)
    echo "$out" | grep -q '"SET"' || fail "redis-benchmark -P $P: $out"
    echo "$out" | grep -q '"GET"' || fail "redis-benchmark -P $P: $out"
    echo "$out" | grep -q '"MSET (10 keys)"' || fail "redis-benchmark -P $P (mset): $out"
done
redis-benchmark -p "$KP" -c 10 -n 5000 -r 1000 -t set,get -d 1000 --csv >/dev/null 2>&1 ||
    fail "redis-benchmark random keys"

echo "-- malformed input: -ERR, close, server stays up"
bad() {
    exec 3<>"/dev/tcp/127.0.0.1/$KP"
    printf '%b' "$1" >&3
    reply=$(timeout 5 cat <&3 || true)
    exec 3<&-
    case "$reply" in *"-ERR Protocol error"*) ;; *) fail "no protocol error for '$1': '$reply'" ;; esac
}
bad '*2\r\n$3\r\nGET\r\n:1\r\n'
bad '*x\r\n'
bad '*1\r\n$3\r\nabcX\r\n'
bad '*1\r\n$99999999999\r\n'
bad '*99999999\r\n'
# An inline line past 64 KiB without a newline.
exec 3<>"/dev/tcp/127.0.0.1/$KP"
head -c 70000 /dev/zero | tr '\0' a >&3 || true
reply=$(timeout 5 cat <&3 || true)
exec 3<&-
case "$reply" in *"-ERR Protocol error"*) ;; *) fail "long inline line: '$reply'" ;; esac
redis-cli -p "$KP" ping | grep -q PONG || fail "kv_server died"
kill -0 "$KPID" || fail "kv_server died"

echo "-- kv_server -j 2"
KP2=$(free_port)
"$EX/kv_server" -j 2 "$KP2" >/dev/null &
K2PID=$!
PIDS+=($K2PID)
wait_port "$KP2"
"$EX/kv_client" -p "$KP2" --check || fail "kv_client against kv_server -j 2"
redis-benchmark -p "$KP2" -c 20 -n 20000 -P 4 -t set,get --csv >/dev/null 2>&1 || fail "bench -j 2"
# INFO tells the loops and the table lock's contention (what the bench reads).
info=$(redis-cli -p "$KP2" info | tr -d '\r')
grep -qx 'tide_loops:2' <<<"$info" || fail "-j 2: INFO has no tide_loops:2: $info"
grep -qE '^tide_lock_waits:[0-9]+$' <<<"$info" || fail "-j 2: INFO has no tide_lock_waits: $info"
info=$(redis-cli -p "$KP" info | tr -d '\r')
grep -qx 'tide_loops:1' <<<"$info" || fail "INFO has no tide_loops:1: $info"
grep -qx 'tide_lock_waits:0' <<<"$info" || fail "one loop: lock waits in INFO: $info"
kill -INT "$K2PID"
wait "$K2PID" || fail "kv_server -j 2 did not exit cleanly on SIGINT"
kill -INT "$KPID"
wait "$KPID" || fail "kv_server did not exit cleanly on SIGINT"
echo "kv_peers: OK"
