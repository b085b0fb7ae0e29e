#!/bin/sh
# Checks that the tools and libraries needed to build and test tide are there.
#
#   scripts/deps.sh [extra-debian-package ...]
#
# Always needed: cmake, a C compiler, make, pkg-config, cmocka (libcmocka-dev),
# OpenSSL 3 (libssl-dev: TLS is built and tested) and the openssl command
# line tool (the TLS tests' peer); curl, wrk and python3 (the HTTP server's
# peers).
# Extra Debian packages (e.g. clang, libcmocka-dev:arm64) can be named on the
# command line; an ":arm64" package enables that dpkg architecture first.
#
# When something is missing: as root on Debian/Ubuntu it is installed with
# apt-get (non-interactive); otherwise the exact command is printed and the
# script fails.  Nothing runs apt when everything is present.
# TIDE_SKIP_DEPS=1 skips the whole check (non-Debian systems, custom installs).
set -eu

[ "${TIDE_SKIP_DEPS:-0}" = 1 ] && exit 0

missing=""
add() { missing="$missing $1"; }

have_pkg() {
    command -v dpkg-query >/dev/null 2>&1 &&
        dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

command -v cmake >/dev/null 2>&1 || add cmake
command -v make >/dev/null 2>&1 || add make
if ! command -v "${CC:-cc}" >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1 &&
   ! command -v clang >/dev/null 2>&1; then
    add gcc
    add libc6-dev
fi
command -v pkg-config >/dev/null 2>&1 || add pkg-config
# cmocka: accept any installation pkg-config knows about, else the Debian package.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists cmocka; } &&
   ! have_pkg libcmocka-dev; then
    add libcmocka-dev
fi

# OpenSSL 3 for TLS (src/tls/), and its command line tool for the tests.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --atleast-version=3 openssl; } &&
   ! have_pkg libssl-dev; then
    add libssl-dev
fi
command -v openssl >/dev/null 2>&1 || add openssl
command -v gdb >/dev/null 2>&1 || add gdb # ctest gdb_script (tools/tide-gdb.py)
# Peers of the HTTP server's tests (tests/http_peers.sh, label "peers");
# python3 also for the API reference (scripts/apidoc.py) and the guide's tests.
command -v curl >/dev/null 2>&1 || add curl
command -v wrk >/dev/null 2>&1 || add wrk
command -v python3 >/dev/null 2>&1 || add python3
# The peers of the kv_peers test (examples/kv_server and kv_client against
# Redis): redis-server, redis-cli, redis-benchmark.
command -v redis-server >/dev/null 2>&1 || add redis-server
command -v redis-benchmark >/dev/null 2>&1 || add redis-tools

# WebSocket peers of tests/test_ws_peers.c (label peers): python3-websockets,
# node + npm (the npm "ws" package goes into the build directory).
have_pkg python3-websockets || add python3-websockets
command -v node >/dev/null 2>&1 || add nodejs
command -v npm >/dev/null 2>&1 || add npm
# Headless check of examples/ws_chat's page (tests/ws_chat_chromium.py).
command -v chromium >/dev/null 2>&1 || add chromium

archs=""
for p in "$@"; do
    if ! have_pkg "$p"; then
        add "$p"
        case "$p" in *:*) archs="$archs ${p##*:}" ;; esac
    fi
done

[ -z "$missing" ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing"
arch_cmd=""
native=$(dpkg --print-architecture 2>/dev/null || echo none)
for a in $archs; do
    if [ "$a" != "$native" ] && ! dpkg --print-foreign-architectures 2>/dev/null | grep -qx "$a"; then
        arch_cmd="${arch_cmd}dpkg --add-architecture $a && "
    fi
done

echo "deps: missing:$missing" >&2
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: install them first, e.g. as root:" >&2
    echo "    ${arch_cmd}$cmd" >&2
    echo "deps: (or set TIDE_SKIP_DEPS=1 if they are installed some other way)" >&2
    exit 1
fi

echo "deps: installing:$missing" >&2
for a in $archs; do
    if [ "$a" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
        dpkg --add-architecture "$a"
    fi
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
