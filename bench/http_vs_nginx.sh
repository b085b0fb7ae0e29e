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
# Servers on CPU 0, wrk (one thread) on CPU 1; best of 3, interleaved
# (the driver is bench/nginx_common.sh).
set -euo pipefail
build=${1:?build dir}
conns=${2:-100}
secs=${3:-5}
. "$(dirname "$0")/nginx_common.sh"
nx_setup http_vs_nginx
nx_conf ""

cat >"$tmp/pipeline.lua" <<'LUA'
-- 16 requests per write; wrk counts the 16 responses.
init = function(args)
    local r = {}
    for i = 1, 16 do r[i] = wrk.format(nil, "/") end
    req = table.concat(r)
end
request = function() return req end
LUA

script=
nx_measure http "keep-alive" "http_hello (tide)" "$build/examples/http_hello" 0
script="-s $tmp/pipeline.lua"
nx_measure http "keep-alive, 16 pipelined requests per connection" "http_hello (tide)" \
    "$build/examples/http_hello" 0
