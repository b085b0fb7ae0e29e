#!/usr/bin/env bash
# examples/http_hello (tide's HTTP server) against nginx (one worker, the
# same answer) under wrk with keep-alive: requests/s and the server's CPU
# time per request (/proc/PID/schedstat), tide / nginx in the same run;
# then the same with 16 pipelined requests per connection (a wrk Lua
# script).  Optional: needs nginx and wrk (Debian: apt-get install
# nginx-light wrk).
#
#   bench/http_vs_nginx.sh BUILD_DIR [CONNECTIONS] [SECONDS]
#
# Servers on CPU 0, wrk (one thread) on CPU 1; best of 3, interleaved.
set -euo pipefail
build=${1:?build dir}
conns=${2:-100}
secs=${3:-5}
command -v nginx >/dev/null && command -v wrk >/dev/null ||
    { echo "http_vs_nginx: needs nginx and wrk"; exit 0; }
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/pipeline.lua" <<'LUA'
-- 16 requests per write; wrk counts the 16 responses.
init = function(args)
    local r = {}
    for i = 1, 16 do r[i] = wrk.format(nil, "/") end
    req = table.concat(r)
end
request = function() return req end
LUA
mkdir -p "$tmp/logs"
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
error_log $tmp/logs/error.log;
pid $tmp/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:0;
        location / { default_type text/plain; return 200 "Hello, world!\n"; }
    }
}
EOF

cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }

# run_one PID PORT: prints "REQS_PER_S NS_PER_REQ" ($script: wrk's -s, or none)
run_one() {
    local pid=$1 port=$2 c0 c1 out reqs
    taskset -c 1 wrk -t1 -c"$conns" -d1s $script "http://127.0.0.1:$port/" >/dev/null # warm up
    c0=$(cpu_ns "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" $script "http://127.0.0.1:$port/")
    c1=$(cpu_ns "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$reqs" -v s="$secs" -v c="$((c1 - c0))" 'BEGIN {printf "%.0f %.0f\n", r / s, c / r}'
}

# nginx cannot print an ephemeral port: pick free ones.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() {
    local label=$1
    best_t_rps=0 best_t_ns=999999999 best_n_rps=0 best_n_ns=999999999
    for rep in 1 2 3; do
        taskset -c 0 "$build/examples/http_hello" 0 >"$tmp/tide.out" 2>&1 &
        tpid=$!
        pids+=("$tpid")
        for _ in $(seq 100); do
            tport=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$tmp/tide.out")
            [ -n "$tport" ] && break
            sleep 0.05
        done
        read -r rps ns < <(run_one "$tpid" "$tport")
        kill "$tpid"; wait "$tpid" 2>/dev/null || true
        [ "$rps" -gt "$best_t_rps" ] && best_t_rps=$rps
        [ "$ns" -lt "$best_t_ns" ] && best_t_ns=$ns

        nport=$(free_port)
        sed "s/127.0.0.1:[0-9]*;/127.0.0.1:$nport;/" "$tmp/nginx.conf" >"$tmp/n.conf"
        taskset -c 0 nginx -c "$tmp/n.conf" -p "$tmp" 2>/dev/null &
        npid=$!
        pids+=("$npid")
        sleep 0.3
        read -r rps ns < <(run_one "$npid" "$nport")
        kill "$npid"; wait "$npid" 2>/dev/null || true
        [ "$rps" -gt "$best_n_rps" ] && best_n_rps=$rps
        [ "$ns" -lt "$best_n_ns" ] && best_n_ns=$ns
    done
    echo "http_vs_nginx: wrk -t1 -c$conns -d${secs}s, keep-alive$label; best of 3"
    echo "  http_hello (tide) : $best_t_rps req/s, $((best_t_ns / 1000)).$(((best_t_ns % 1000) / 100)) us server CPU/request"
    echo "  nginx (1 worker)  : $best_n_rps req/s, $((best_n_ns / 1000)).$(((best_n_ns % 1000) / 100)) us server CPU/request"
    awk -v a="$best_t_ns" -v b="$best_n_ns" -v x="$best_t_rps" -v y="$best_n_rps" \
        'BEGIN {printf "  ratios tide/nginx: CPU per request %.2f, requests/s %.2f\n", a / b, x / y}'
}

script=
measure ""
script="-s $tmp/pipeline.lua"
measure ", 16 pipelined requests per connection"
