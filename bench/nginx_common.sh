# The driver bench/http_vs_nginx.sh and bench/https_vs_nginx.sh share (sourced,
# not run): a tide example server against nginx (one worker, the same
# answer) under wrk with keep-alive, requests/s and the server's CPU time
# per request (/proc/PID/schedstat), tide / nginx in the same run.  Servers
# on CPU 0, wrk (one thread) on CPU 1; best of 3, interleaved.
#
# The sourcing script sets build, conns and secs, then calls, in order:
#   nx_setup NAME              exits 0 when nginx or wrk is missing; makes $tmp
#   nx_conf LISTEN_OPTS [LINES] nginx.conf: "listen 127.0.0.1:PORT LISTEN_OPTS;"
#                              and LINES inside the server block
#   nx_measure SCHEME HEADER LABEL CMD...
#                              CMD (a tide server printing "listening on
#                              HOST:PORT", on port 0) against nginx; wrk gets
#                              $script (its -s option) if set

nx_setup() {
    nx_name=$1
    command -v nginx >/dev/null && command -v wrk >/dev/null ||
        { echo "$nx_name: needs nginx and wrk (Debian: apt-get install nginx-light wrk)"; exit 0; }
    tmp=$(mktemp -d)
    pids=()
    trap nx_cleanup EXIT
    mkdir -p "$tmp/logs"
}

nx_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}

nx_conf() {
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
        listen 127.0.0.1:@PORT@ $1;
        ${2:-}
        location / { default_type text/plain; return 200 "Hello, world!\n"; }
    }
}
EOF
}

nx_cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }

# nx_run_one PID URL: prints "REQS_PER_S NS_PER_REQ"
nx_run_one() {
    local pid=$1 url=$2 c0 c1 out reqs
    taskset -c 1 wrk -t1 -c"$conns" -d1s ${script:-} "$url" >/dev/null # warm up
    c0=$(nx_cpu_ns "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" ${script:-} "$url")
    c1=$(nx_cpu_ns "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$reqs" -v s="$secs" -v c="$((c1 - c0))" 'BEGIN {printf "%.0f %.0f\n", r / s, c / r}'
}

# nginx cannot print an ephemeral port: pick free ones.
nx_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nx_us() { echo "$(($1 / 1000)).$((($1 % 1000) / 100))"; }

nx_measure() {
    local scheme=$1 header=$2 label=$3 rep tpid tport npid nport rps ns
    shift 3
    local best_t_rps=0 best_t_ns=999999999 best_n_rps=0 best_n_ns=999999999
    for rep in 1 2 3; do
        taskset -c 0 "$@" >"$tmp/tide.out" 2>&1 &
        tpid=$!
        pids+=("$tpid")
        tport=
        for _ in $(seq 100); do
            tport=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$tmp/tide.out")
            [ -n "$tport" ] && break
            sleep 0.05
        done
        [ -n "$tport" ] || { echo "$nx_name: $1 did not start:"; cat "$tmp/tide.out"; exit 1; }
        read -r rps ns < <(nx_run_one "$tpid" "$scheme://127.0.0.1:$tport/")
        kill "$tpid"; wait "$tpid" 2>/dev/null || true
        [ "$rps" -gt "$best_t_rps" ] && best_t_rps=$rps
        [ "$ns" -lt "$best_t_ns" ] && best_t_ns=$ns

        nport=$(nx_free_port)
        sed "s/@PORT@/$nport/" "$tmp/nginx.conf" >"$tmp/n.conf"
        taskset -c 0 nginx -c "$tmp/n.conf" -p "$tmp" 2>/dev/null &
        npid=$!
        pids+=("$npid")
        sleep 0.3
        read -r rps ns < <(nx_run_one "$npid" "$scheme://127.0.0.1:$nport/")
        kill "$npid"; wait "$npid" 2>/dev/null || true
        [ "$rps" -gt "$best_n_rps" ] && best_n_rps=$rps
        [ "$ns" -lt "$best_n_ns" ] && best_n_ns=$ns
    done
    echo "$nx_name: wrk -t1 -c$conns -d${secs}s, $header; best of 3"
    printf '  %-18s: %s req/s, %s us server CPU/request\n' "$label" "$best_t_rps" "$(nx_us "$best_t_ns")"
    printf '  %-18s: %s req/s, %s us server CPU/request\n' "nginx (1 worker)" "$best_n_rps" "$(nx_us "$best_n_ns")"
    awk -v a="$best_t_ns" -v b="$best_n_ns" -v x="$best_t_rps" -v y="$best_n_rps" \
        'BEGIN {printf "  ratios tide/nginx: CPU per request %.2f, requests/s %.2f\n", a / b, x / y}'
}
