#!/usr/bin/env bash
# examples/https_hello against nginx (one worker, the same certificate and
# answer) under wrk, both over TLS with keep-alive: requests/s and the
# server's CPU time per request (/proc/PID/schedstat), tide / nginx in the
# same run.  Optional: needs nginx and wrk (Debian: apt-get install
# nginx-light wrk).
#
#   bench/https_vs_nginx.sh BUILD_DIR [CONNECTIONS] [SECONDS]
#
# Servers on CPU 0, wrk (one thread) on CPU 1; best of 3, interleaved
# (the driver is bench/nginx_common.sh).
set -euo pipefail
build=${1:?build dir}
conns=${2:-50}
secs=${3:-5}
. "$(dirname "$0")/nginx_common.sh"
nx_setup https_vs_nginx

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
nx_conf ssl "ssl_certificate $tmp/cert.pem; ssl_certificate_key $tmp/key.pem;"

nx_measure https "keep-alive, TLS 1.3, ECDSA P-256" "https_hello (tide)" \
    "$build/examples/https_hello" 0 --cert "$tmp/cert.pem" --key "$tmp/key.pem"
