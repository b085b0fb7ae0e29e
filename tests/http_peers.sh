#!/usr/bin/env bash
# The HTTP server against real peers on loopback (ctest label "peers"):
# curl, wrk (short), Python's http.client and urllib, against
# examples/http_hello and examples/http_static.
#
#   tests/http_peers.sh BUILD_DIR
#
# Needs curl, wrk and python3 (scripts/deps.sh installs them); a missing
# one fails the test, with the apt-get line that installs it.
set -u
bin=${1:?build dir}/examples
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/server.out" ] && sed 's/^/  server> /' "$tmp/server.out" >&2
    exit 1
}
for tool in curl wrk python3; do
    command -v $tool >/dev/null 2>&1 ||
        fail "$tool not found (apt-get install -y curl wrk python3)"
done
start() {
    "$bin/$1" 0 "${@:2}" >"$tmp/server.out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$tmp/server.out")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    fail "$1 did not start"
}
stop() {
    kill -TERM "$pid"
    wait "$pid" || fail "the server exited with status $?"
    pid=
}

start http_hello
# curl: keep-alive over several URLs (one connection), HTTP/1.0, a chunked upload
out=$(curl -sS --max-time 5 -w '%{num_connects}\n' "http://127.0.0.1:$port/a" \
    "http://127.0.0.1:$port/b" "http://127.0.0.1:$port/c") || fail "curl"
[ "$(grep -c 'Hello, world!' <<<"$out")" -eq 3 ] || fail "curl: '$out'"
[ "$(grep -c '^1$' <<<"$out")" -eq 1 ] || fail "curl did not reuse its connection: '$out'"
head -c 50000 /dev/zero | curl -sS --max-time 5 -H 'Transfer-Encoding: chunked' \
    --data-binary @- "http://127.0.0.1:$port/up" -o "$tmp/up.out" -w '%{http_code}\n' \
    >"$tmp/code" || fail "curl chunked upload"
echo "  curl: keep-alive reuse, chunked upload answered $(cat "$tmp/code")"
# Python http.client: one connection, GET, HEAD, POST with a body left
# unread by the handler (drained by the server), chunked POST, GET again.
python3 - "$port" <<'PY' || fail "python http.client / urllib"
import http.client, sys, urllib.request
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
for method, body, chunked in [("GET", None, False), ("HEAD", None, False),
                              ("POST", b"x" * 5000, False), ("POST", [b"ab", b"cd"], True),
                              ("GET", None, False)]:
    c.request(method, "/p", body=body, encode_chunked=chunked,
              headers={"Transfer-Encoding": "chunked"} if chunked else {})
    r = c.getresponse()
    data = r.read()
    assert r.status == 200, (method, r.status)
    assert data == (b"" if method == "HEAD" else b"Hello, world!\n"), (method, data)
    assert r.getheader("Content-Length") == "14"
    assert r.getheader("Date").endswith("GMT")
c.close()
with urllib.request.urlopen(f"http://127.0.0.1:{port}/u?q=1", timeout=5) as r:
    assert r.read() == b"Hello, world!\n"
req = urllib.request.Request(f"http://127.0.0.1:{port}/u", data=b"k=v", method="POST")
with urllib.request.urlopen(req, timeout=5) as r:
    assert r.status == 200 and r.read() == b"Hello, world!\n"
print("  python: http.client keep-alive (GET, HEAD, POST, chunked POST), urllib GET/POST")
PY
# wrk, short: no errors, no non-2xx, also pipelined
cat >"$tmp/pipe.lua" <<'LUA'
init = function(args)
    local r = {}
    for i = 1, 16 do r[i] = wrk.format(nil, "/") end
    req = table.concat(r)
end
request = function() return req end
LUA
for script in "" "-s $tmp/pipe.lua"; do
    out=$(wrk -t1 -c50 -d1s $script "http://127.0.0.1:$port/") || fail "wrk"
    grep -q 'requests in' <<<"$out" || fail "wrk: '$out'"
    ! grep -qE 'Non-2xx|Socket errors' <<<"$out" || fail "wrk saw errors: '$out'"
    echo "  wrk ${script:+(16 pipelined) }: $(awk '/requests in/ {print $1}' <<<"$out") requests, no errors"
done
stop

mkdir -p "$tmp/www"
head -c 1000000 /dev/urandom >"$tmp/www/big.bin"
start http_static "$tmp/www"
python3 - "$port" "$tmp/www/big.bin" <<'PY' || fail "python against http_static"
import http.client, sys
port, path = int(sys.argv[1]), sys.argv[2]
data = open(path, "rb").read()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
c.request("GET", "/big.bin"); r = c.getresponse(); assert r.read() == data
c.request("GET", "/big.bin", headers={"Range": "bytes=100-199"}); r = c.getresponse()
assert r.status == 206 and r.read() == data[100:200]
assert r.getheader("Content-Range") == f"bytes 100-199/{len(data)}"
lm = r.getheader("Last-Modified")
c.request("GET", "/big.bin", headers={"If-Modified-Since": lm}); r = c.getresponse()
assert r.status == 304 and r.read() == b""
print("  python: http_static file (sendfile), range, 304 on one connection")
PY
curl -s --max-time 10 "http://127.0.0.1:$port/big.bin" | cmp -s - "$tmp/www/big.bin" ||
    fail "curl: file bytes differ"
echo "  curl: 1 MB file intact"
stop
echo PASS
