#!/usr/bin/env bash
# Smoke tests of the network examples, run by ctest (see CMakeLists.txt):
#
#   smoke_net.sh echo|chat|http|https|static|port_scan|glib BINDIR
#
# Each starts a server from BINDIR on a free port (port 0; the server prints
# the port it got), talks to it over loopback, then sends SIGTERM and expects
# a clean exit (status 0).  Every wait is bounded; the clients written here in
# bash use its /dev/tcp redirections.
set -u

mode=${1:?mode}
bin=${2:?bindir}
tmp=$(mktemp -d)
server_pid=
port=

cleanup() {
    if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null; fi
    for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL ($mode): $*" >&2
    if [ -f "$tmp/server.out" ]; then sed 's/^/  server> /' "$tmp/server.out" >&2; fi
    exit 1
}

# start_server NAME [ARGS...]: runs BINDIR/NAME on port 0 (then ARGS) and
# sets $port.
start_server() {
    "$bin/$1" 0 "${@:2}" >"$tmp/server.out" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$tmp/server.out")
        if [ -n "$port" ]; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || fail "$1 exited at start"
        sleep 0.05
    done
    fail "$1 did not start listening within 5 s"
}

# stop_server: SIGTERM, then the server must exit with status 0 within 5 s.
stop_server() {
    kill -TERM "$server_pid"
    for _ in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$server_pid" 2>/dev/null && fail "the server did not stop on SIGTERM"
    wait "$server_pid"
    local rc=$?
    server_pid=
    [ "$rc" -eq 0 ] || fail "the server exited with status $rc"
    sed 's/^/  server> /' "$tmp/server.out"
}

# expect_line FD PATTERN: the next line on FD (within 5 s) must match PATTERN.
expect_line() {
    local line
    IFS= read -r -t 5 -u "$1" line || fail "no line on fd $1 (expected '$2')"
    line=${line%$'\r'}
    case $line in
        $2) echo "  fd $1: $line" ;;
        *) fail "fd $1: got '$line', expected '$2'" ;;
    esac
}

case $mode in
echo)
    start_server echo_server
    timeout 20 "$bin/echo_client" "$port" 20 200 || fail "echo_client failed"
    # A connection still open at shutdown is cancelled, not waited for.
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
    printf 'ping\n' >&3
    expect_line 3 ping
    stop_server
    exec 3>&-
    ;;

chat)
    start_server chat_server
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect 1"
    expect_line 3 '\* welcome guest1*'
    exec 4<>"/dev/tcp/127.0.0.1/$port" || fail "connect 2"
    expect_line 4 '\* welcome guest2*'
    expect_line 3 '\* guest2 joined'
    printf 'hello from one\n' >&3
    expect_line 4 'guest1: hello from one'
    printf 'hello from two\r\n' >&4
    expect_line 3 'guest2: hello from two'

    # A client that never reads (fd 5) must not stall the others: guest1
    # sends 1 MB of lines at a time while guest2 reads them all, until the
    # server drops guest3, whose backlog passed the server's cap.  (Waiting
    # for guest2 after each MB keeps it from looking slow on a busy machine.)
    exec 5<>"/dev/tcp/127.0.0.1/$port" || fail "connect 3"
    expect_line 3 '\* guest3 joined'
    expect_line 4 '\* guest3 joined'
    timeout 30 cat <&4 >"$tmp/guest2.out" &
    reader=$!
    x999=$(printf '%999s' '' | tr ' ' x)
    sent=0
    for mb in $(seq 40); do
        yes "$x999" | head -n 1000 >&3
        sent=$((sent + 1000))
        for _ in $(seq 200); do
            [ "$(grep -c "^guest1: x" "$tmp/guest2.out")" -ge "$sent" ] && break
            sleep 0.02
        done
        grep -q 'guest3 was too slow' "$tmp/guest2.out" && break
    done
    printf 'last line\n' >&3
    for _ in $(seq 200); do
        grep -q '^guest1: last line' "$tmp/guest2.out" && break
        sleep 0.02
    done
    kill "$reader" 2>/dev/null
    wait "$reader" 2>/dev/null
    grep -q 'guest3 was too slow' "$tmp/guest2.out" ||
        fail "the slow client was not dropped after $mb MB"
    grep -q '^guest1: last line' "$tmp/guest2.out" || fail "guest2 did not get every line"
    [ "$(grep -c "^guest1: x" "$tmp/guest2.out")" -eq "$sent" ] || fail "guest2 lost lines"
    echo "  guest2 got all $sent lines; the slow guest3 was dropped after $mb MB"
    stop_server
    exec 3>&- 4>&- 5>&-
    ;;

http)
    start_server http_hello
    if command -v curl >/dev/null 2>&1; then
        out=$(curl -sS --max-time 5 "http://127.0.0.1:$port/" "http://127.0.0.1:$port/again") ||
            fail "curl failed"
        [ "$out" = $'Hello, world!\nHello, world!' ] || fail "curl got '$out'"
        echo "  curl: two requests answered"
        out=$(curl -sS --max-time 5 --http1.0 -d 'some=body' "http://127.0.0.1:$port/") ||
            fail "curl (HTTP/1.0 POST) failed"
        [ "$out" = 'Hello, world!' ] || fail "curl (HTTP/1.0 POST) got '$out'"
        echo "  curl: HTTP/1.0 POST answered"
    else
        echo "  (curl not found: skipping the curl part)"
    fi
    # Two pipelined requests on one connection, the second asking to close:
    # two responses, then the server closes the connection.
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
    req1="GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    req2="HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    printf "$req1$req2" >&3
    resp=$(timeout 5 cat <&3) || fail "the server did not close the connection"
    exec 3>&-
    [ "$(grep -c '^HTTP/1.1 200 OK' <<<"$resp")" -eq 2 ] || fail "pipelined: got '$resp'"
    grep -q '^Content-Length: 14' <<<"$resp" || fail "no Content-Length in '$resp'"
    grep -q '^Connection: close' <<<"$resp" || fail "no Connection: close in '$resp'"
    echo "  pipelined keep-alive + close: ok"
    # A malformed request line gets 400.
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
    printf 'NONSENSE\r\n\r\n' >&3
    expect_line 3 'HTTP/1.1 400 Bad Request'
    exec 3>&-
    stop_server
    # Two loops on one port (-j 2, SO_REUSEPORT): 20 connections answered,
    # the totals of both loops in the summary, exit status 0 on SIGTERM.
    "$bin/http_hello" -j 2 0 >"$tmp/server.out" 2>&1 &
    server_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$tmp/server.out")
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || fail "http_hello -j 2 exited at start"
        sleep 0.05
    done
    [ -n "$port" ] || fail "http_hello -j 2 did not start listening"
    grep -q '(2 loops' "$tmp/server.out" || fail "http_hello -j 2: $(cat "$tmp/server.out")"
    for i in $(seq 20); do
        exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect ($i)"
        printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
        resp=$(timeout 5 cat <&3) || fail "-j 2: connection $i not closed"
        exec 3>&-
        grep -q '^Hello, world!' <<<"$resp" || fail "-j 2: connection $i got '$resp'"
    done
    stop_server
    grep -q ': 20 connections, 20 requests answered' "$tmp/server.out" ||
        fail "-j 2: the summary does not count both loops: $(cat "$tmp/server.out")"
    echo "  -j 2: 20 connections over two loops, totals summed"
    ;;

static)
    # http_static over a small tree: types, ranges, 304, traversal refused.
    command -v curl >/dev/null 2>&1 || fail "curl is needed"
    mkdir -p "$tmp/www/sub" "$tmp/www/empty"
    printf 'hello\n' >"$tmp/www/a.txt"
    printf '<p>index</p>\n' >"$tmp/www/sub/index.html"
    head -c 100000 /dev/urandom >"$tmp/www/big.bin"
    printf 'secret\n' >"$tmp/secret"
    ln -s "$tmp/secret" "$tmp/www/link"
    check() { # URL-PATH EXPECTED-"code type size" [CURL ARGS...]
        local got
        got=$(curl -s --path-as-is --max-time 5 -o /dev/null "${@:3}" \
            -w '%{http_code} %{content_type} %{size_download}' "http://127.0.0.1:$port$1")
        [ "$got" = "$2" ] || fail "$1: got '$got', expected '$2'"
        echo "  $1 ${*:3}: $got"
    }
    start_server http_static "$tmp/www"
    check /a.txt '200 text/plain; charset=utf-8 6'
    check /sub '301  6'
    check /sub/ '200 text/html; charset=utf-8 13'
    check /empty/ '403 text/plain; charset=utf-8 10'
    check /link '403 text/plain; charset=utf-8 10'
    check /../secret '400 text/plain; charset=utf-8 9'
    check /%2e%2e/secret '400 text/plain; charset=utf-8 9'
    check /sub/%2E%2e/../secret '400 text/plain; charset=utf-8 9'
    check /nope '404 text/plain; charset=utf-8 10'
    check /big.bin '200 application/octet-stream 100000'
    check /big.bin '206 application/octet-stream 100' -r 1000-1099
    check /big.bin '206 application/octet-stream 10' -r -10
    check /big.bin '416 text/plain; charset=utf-8 22' -r 200000-
    curl -s --max-time 5 -r 1000-1099 "http://127.0.0.1:$port/big.bin" -o "$tmp/part"
    cmp -s "$tmp/part" <(tail -c +1001 "$tmp/www/big.bin" | head -c 100) || fail "range bytes"
    curl -s --max-time 5 "http://127.0.0.1:$port/big.bin" | cmp -s - "$tmp/www/big.bin" ||
        fail "whole file bytes"
    lm=$(curl -sI --max-time 5 "http://127.0.0.1:$port/a.txt" | sed -n 's/^Last-Modified: //p' |
        tr -d '\r')
    check /a.txt '304  0' -H "If-Modified-Since: $lm"
    check /a.txt '200 text/plain; charset=utf-8 6' -H 'If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT'
    stop_server
    start_server http_static "$tmp/www" --list
    check /empty/ '200 text/html; charset=utf-8 48'
    out=$(curl -s --max-time 5 "http://127.0.0.1:$port/")
    grep -q 'href="a.txt"' <<<"$out" || fail "listing: '$out'"
    grep -q 'href="sub/"' <<<"$out" || fail "listing: '$out'"
    printf 'x' >"$tmp/www/a b<c>.txt"
    out=$(curl -s --max-time 5 "http://127.0.0.1:$port/")
    grep -q 'href="a%20b%3Cc%3E.txt">a b&lt;c&gt;.txt<' <<<"$out" || fail "listing escapes: '$out'"
    check '/a%20b%3Cc%3E.txt' '200 text/plain; charset=utf-8 1'
    echo "  --list: directories listed"
    stop_server
    ;;

https)
    # https_hello with a throw-away certificate; curl and tls_client check
    # it for real (--cacert / --cafile, name "localhost").
    command -v openssl >/dev/null 2>&1 || fail "the openssl tool is needed"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null || fail "openssl req"
    start_server https_hello --cert "$tmp/cert.pem" --key "$tmp/key.pem"
    if command -v curl >/dev/null 2>&1; then
        out=$(curl -sS --max-time 5 --cacert "$tmp/cert.pem" \
            --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/" \
            "https://localhost:$port/again") || fail "curl failed"
        [ "$out" = $'Hello, world!\nHello, world!' ] || fail "curl got '$out'"
        echo "  curl: two requests answered over TLS"
    else
        echo "  (curl not found: skipping the curl part)"
    fi
    req=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
    out=$(printf '%s' "$req" | timeout 10 "$bin/tls_client" localhost "$port" \
        --cafile "$tmp/cert.pem" --alpn http/1.1 2>"$tmp/client.err") ||
        { cat "$tmp/client.err" >&2; fail "tls_client failed"; }
    grep -q '^Hello, world!' <<<"$out" || fail "tls_client got '$out'"
    grep -q '^\* protocol: TLSv1.3' "$tmp/client.err" || fail "no protocol line"
    grep -q '^\* ALPN: http/1.1' "$tmp/client.err" || fail "no ALPN line"
    grep -q '^\* server certificate: CN = localhost' "$tmp/client.err" || fail "no subject line"
    echo "  tls_client: verified, TLSv1.3, ALPN http/1.1, answered"
    # Without the CA the certificate is refused; --insecure gets through.
    if printf '%s' "$req" | timeout 10 "$bin/tls_client" localhost "$port" >/dev/null \
        2>"$tmp/client.err"; then fail "an unknown CA was accepted"; fi
    grep -q 'certificate refused' "$tmp/client.err" || fail "refusal not explained"
    out=$(printf '%s' "$req" | timeout 10 "$bin/tls_client" localhost "$port" --insecure \
        2>/dev/null) || fail "tls_client --insecure failed"
    grep -q '^Hello, world!' <<<"$out" || fail "tls_client --insecure got '$out'"
    echo "  tls_client: unknown CA refused; --insecure accepted"
    stop_server
    ;;

port_scan)
    start_server echo_server
    lo=$((port > 10 ? port - 5 : 1))
    out=$(timeout 20 "$bin/port_scan" 127.0.0.1 "$lo-$((port + 5))" 4) || fail "port_scan failed"
    echo "$out" | sed 's/^/  /'
    grep -Eq "^open:(.* )?$port( |\$)" <<<"$out" || fail "port $port not reported open"
    stop_server
    ;;

glib)
    # tide's echo server and GLib's timer (a tick every 50 ms) on one thread:
    # while a client talks to tide, GLib must go on ticking.
    start_server glib_embed 50
    ticks() { grep -c 'glib_embed: tick' "$tmp/server.out"; }
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
    printf 'hello through glib\n' >&3
    expect_line 3 'hello through glib'
    t0=$(ticks)
    for _ in $(seq 100); do
        [ "$(ticks)" -ge $((t0 + 2)) ] && break
        sleep 0.05
    done
    n=$(($(ticks) - t0))
    [ "$n" -ge 2 ] || fail "GLib ticked $n times in 5 s while the client was connected"
    printf 'still echoing\n' >&3
    expect_line 3 'still echoing'
    echo "  $n GLib ticks while the client was connected"
    # The connection is still open: SIGTERM must cancel it and exit 0.
    stop_server
    exec 3>&-
    grep -q '^glib_embed: stopped after' "$tmp/server.out" || fail "no final line"
    ;;

*)
    fail "unknown mode"
    ;;
esac
echo "PASS ($mode)"
