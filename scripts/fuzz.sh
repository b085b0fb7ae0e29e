#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/fuzz_*.c) with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer (cmake -DTIDE_BUILD_FUZZ=ON), then runs each
# for a bounded time.
#
#   scripts/fuzz.sh [-t SECONDS] [-b BUILD_DIR] [NAME...]
#
# NAME is a harness without its prefix (http_request for fuzz/fuzz_http_request.c);
# the default is every fuzz/fuzz_*.c, so a new parser gets fuzzed by adding a
# file.  Per harness NAME: seeds are read from fuzz/corpus/NAME/, new inputs
# go to BUILD_DIR/corpus/NAME/ (the repository is never written), crashes to
# BUILD_DIR/artifacts/, and fuzz/NAME.dict is used as dictionary if present.
# Defaults: 60 seconds each, BUILD_DIR build-fuzz.
#
# Environment: CC (default clang), JOBS (build parallelism, default 2),
# TIDE_FUZZ_WRAP (a command to run the harnesses under, e.g. "setarch x86_64 -R";
# when unset it is probed: older ASan runtimes break on kernels with a large
# vm.mmap_rnd_bits, and running without address randomisation works around
# it), TIDE_FUZZ_ARGS (more libFuzzer flags).
#
# Exits non-zero if a harness does not build, finds a crash, a leak, a
# sanitizer report or a timeout; the log of each run is BUILD_DIR/NAME.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=60
BUILD=build-fuzz
while getopts "t:b:h" o; do
    case $o in
    t) SECONDS_EACH=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
JOBS=${JOBS:-2}
CC=${CC:-clang}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in "$ROOT"/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        n=${f##*/fuzz_}
        names+=("${n%.c}")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz/fuzz_*.c"; exit 1; }

echo "-- building the harnesses with $CC in $BUILD"
mkdir -p "$BUILD"
CC=$CC cmake -S "$ROOT" -B "$BUILD" -DTIDE_BUILD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTIDE_BUILD_TESTS=OFF -DTIDE_BUILD_EXAMPLES=OFF -DTIDE_BUILD_BENCH=OFF >"$BUILD/configure.log" 2>&1 ||
    { cat "$BUILD/configure.log"; exit 1; }
targets=()
for n in "${names[@]}"; do targets+=(--target "fuzz_$n"); done
cmake --build "$BUILD" -j "$JOBS" "${targets[@]}"

# Sanitizer options: no stack-use-after-return (task stacks are switched by
# hand, as in the ASan ctest run), leak detection only where it works.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_stack_use_after_return=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
mkdir -p "$BUILD/artifacts"
empty="$BUILD/empty-input"
: >"$empty"
first="$BUILD/fuzz/fuzz_${names[0]}"
if [ "${TIDE_FUZZ_WRAP+set}" = set ]; then
    read -r -a wrap <<<"$TIDE_FUZZ_WRAP"
else
    wrap=()
    if ! timeout 60 "$first" -runs=1 "$empty" >/dev/null 2>&1; then
        if timeout 60 setarch "$(uname -m)" -R "$first" -runs=1 "$empty" >/dev/null 2>&1; then
            wrap=(setarch "$(uname -m)" -R)
        else
            echo "fuzz.sh: $first does not run:"
            timeout 60 "$first" -runs=1 "$empty" || true
            exit 1
        fi
    fi
fi
leaks=1
if ! timeout 60 ${wrap[@]+"${wrap[@]}"} "$first" -runs=1 -detect_leaks=1 "$empty" >/dev/null 2>&1; then
    echo "-- LeakSanitizer does not work here: leak detection off"
    leaks=0
fi
echo "-- ${wrap[*]:+running under: ${wrap[*]}; }$SECONDS_EACH s per harness; ASAN_OPTIONS=$ASAN_OPTIONS"

failed=0
summary=()
for n in "${names[@]}"; do
    bin="$BUILD/fuzz/fuzz_$n"
    corpus="$BUILD/corpus/$n"
    log="$BUILD/$n.log"
    mkdir -p "$corpus"
    args=(-max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
          -detect_leaks=$leaks -artifact_prefix="$BUILD/artifacts/${n}-")
    [ -f "$ROOT/fuzz/$n.dict" ] && args+=(-dict="$ROOT/fuzz/$n.dict")
    # shellcheck disable=SC2206
    [ -n "${TIDE_FUZZ_ARGS:-}" ] && args+=($TIDE_FUZZ_ARGS)
    dirs=("$corpus")
    [ -d "$ROOT/fuzz/corpus/$n" ] && dirs+=("$ROOT/fuzz/corpus/$n")
    echo "-- fuzz_$n"
    set +e
    timeout $((SECONDS_EACH + 120)) ${wrap[@]+"${wrap[@]}"} "$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
    units=$(find "$corpus" -type f | wc -l)
    line="fuzz_$n: ${execs:-?} execs in ${SECONDS_EACH}s, ${cov:-cov: ?}, corpus $units"
    if [ "$rc" -ne 0 ]; then
        failed=1
        summary+=("FAIL $line (exit $rc, log $log)")
        echo "-- fuzz_$n FAILED (exit $rc); the end of $log:"
        tail -n 60 "$log"
    else
        summary+=("ok   $line")
    fi
done
echo "-- fuzz summary"
printf '%s\n' "${summary[@]}"
exit $failed
