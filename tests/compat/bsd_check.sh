#!/usr/bin/env bash
# The kqueue backend and the BSD / macOS code paths, compiled on Linux.
#
#   bash tests/compat/bsd_check.sh          (.ci/run step 5 runs it)
#
# No BSD or Mac runs tide's CI; this keeps the code only they build compiling
# and free of Linux-only calls:
#  1. src/poll_kqueue.c and every src/*_bsd.c are compiled to objects
#     (-O2 -Wall -Wextra -Werror) against tests/compat/kqueue_shim, our own
#     stand-in for <sys/event.h> and the BSD parts of <sys/socket.h> on top of
#     glibc: poll_kqueue.c as is, then each file in every "persona":
#     __linux__ undefined and __FreeBSD__ (14, 13), __NetBSD__, __OpenBSD__,
#     __DragonFly__ or __APPLE__ defined, so each system's #if branches are
#     compiled (gcc only where glibc and gcc's own headers accept the persona).
#  2. Every other .c under src/ (src/tls/ too; not poll_epoll.c nor src/*_linux.c) is compiled
#     (-fsyntax-only) in the FreeBSD and macOS personas: what #ifdef
#     __linux__ leaves for the other systems must compile.
#  3. Audit: in the macOS and OpenBSD personas, the preprocessed sources
#     (their own lines, comments dropped, macros not expanded) must name no
#     Linux-only call, constant or header (epoll, eventfd, signalfd, pidfd,
#     preadv2, Linux's sendfile, /proc, ...); for macOS also none of those the
#     BSDs have and macOS lacks (accept4, pipe2, dup3, SOCK_NONBLOCK,
#     SOCK_CLOEXEC, MSG_NOSIGNAL, sigtimedwait...).  The platform files
#     (poll_*.c, *_bsd.c, *_linux.c) are not audited.
#
# Findings named in TIDE_BSD_CHECK_KNOWN ("file:token" for the audit,
# "file:compile" for step 2) are printed as "known" and do not fail; the
# default lists what files of other owners still have.  An entry that no
# longer matches anything is reported as stale: remove it.
# TIDE_BSD_CHECK_CC: compilers (default "gcc clang"; each must exist).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
SHIM=tests/compat/kqueue_shim
CCS=${TIDE_BSD_CHECK_CC:-"gcc clang"}
# io.c and stream.c belong to the I/O path work (accept, sendfile and sends
# move to src/sys_*.c): drop these entries as that lands.
KNOWN=${TIDE_BSD_CHECK_KNOWN-""}

LINUX_ONLY="epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_event
 EPOLLIN EPOLLOUT EPOLLET eventfd eventfd_read eventfd_write EFD_NONBLOCK EFD_CLOEXEC
 signalfd signalfd_siginfo SFD_NONBLOCK SFD_CLOEXEC pidfd_open pidfd_send_signal
 SYS_pidfd_open SYS_pidfd_send_signal SYS_gettid SYS_tgkill SYS_process_madvise gettid
 tgkill process_madvise MADV_GUARD_INSTALL preadv2 pwritev2 RWF_NOWAIT RWF_HIPRI RWF_DSYNC
 sendfile sendfile64 splice vmsplice memfd_create prctl O_TMPFILE O_PATH TCP_USER_TIMEOUT
 TCP_QUICKACK TCP_CORK TCP_DEFER_ACCEPT F_SETPIPE_SZ F_GETPIPE_SZ inotify_init inotify_init1
 inotify_add_watch timerfd_create timerfd_settime MAP_GROWSDOWN MAP_POPULATE mremap"
# ...and the calls and constants the BSDs have but macOS does not.
MACOS_MISSING="accept4 pipe2 dup3 SOCK_NONBLOCK SOCK_CLOEXEC MSG_NOSIGNAL sigtimedwait sigwaitinfo close_range
 posix_spawn_file_actions_addclosefrom_np clock_nanosleep pthread_getattr_np"
LINUX_HEADERS='/(sys/(epoll|eventfd|signalfd|sendfile|prctl|inotify|timerfd|sysinfo|vfs)\.h|linux/[^/]*\.h)$'

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BASE=(-std=c11 -D_GNU_SOURCE= -Wall -Wextra -Werror -Iinclude -Isrc -I"$SHIM")
NOLINUX=(-U__linux__ -U__linux -Ulinux -U__gnu_linux__ -DTIDE_NO_SIGNALFD -DTIDE_NO_PIDFD
    -include "$SHIM/persona.h")
: >"$TMP/hits"
fail() { : >"$TMP/failed"; } # a file, so that background jobs can fail too

persona() { # persona NAME: the flags, one a line
    case $1 in
    linux) ;;
    freebsd14) printf '%s\n' "${NOLINUX[@]}" -D__FreeBSD__=14 ;;
    freebsd13) printf '%s\n' "${NOLINUX[@]}" -D__FreeBSD__=13 ;;
    netbsd) printf '%s\n' "${NOLINUX[@]}" -D__NetBSD__ ;;
    openbsd) printf '%s\n' "${NOLINUX[@]}" -D__OpenBSD__ ;;
    dragonfly) printf '%s\n' "${NOLINUX[@]}" -D__DragonFly__ ;;
    macos) printf '%s\n' "${NOLINUX[@]}" -D__APPLE__ -D__MACH__ ;;
    *) echo "bsd_check: unknown persona $1" >&2; exit 2 ;;
    esac
}

# gcc's <stddef.h> wants FreeBSD's and NetBSD's own headers under their macros.
cc_takes() { # cc_takes CC PERSONA
    case "$1:$2" in *gcc*:freebsd* | *gcc*:netbsd) return 1 ;; esac
    return 0
}

# in_list WORD LIST: whether WORD is one of the words of LIST.
in_list() {
    local w
    # shellcheck disable=SC2086 # split LIST into words
    for w in $2; do [ "$w" = "$1" ] && return 0; done
    return 1
}
is_known() { in_list "$1" "$KNOWN"; }

# run LABEL KEY CMD...: the command must succeed with no output at all.
# Returns 0 if it did, 2 for a known failure, 1 for a new one.
run() {
    local label=$1 key=$2 out
    shift 2
    if out=$("$@" 2>&1) && [ -z "$out" ]; then
        return 0
    fi
    echo "$key" >>"$TMP/hits"
    if [ -n "$key" ] && is_known "$key"; then
        echo "known  $label (listed in TIDE_BSD_CHECK_KNOWN as $key): $(grep -m1 'error' <<<"$out")"
        return 2
    fi
    echo "FAIL   $label"
    echo "       $*"
    head -n 40 <<<"$out" | sed 's/^/       /'
    fail
    return 1
}

for cc in $CCS; do
    if ! command -v "$cc" >/dev/null 2>&1; then
        echo "FAIL   compiler $cc not found (TIDE_BSD_CHECK_CC=\"$CCS\")"
        fail
    fi
done

# ------------------------------------------------ 1. kqueue + platform files
kq_files=()
[ -f src/poll_kqueue.c ] && kq_files+=(src/poll_kqueue.c)
for f in src/*_bsd.c; do [ -f "$f" ] && kq_files+=("$f"); done
echo "-- 1. kqueue backend and BSD platform files: ${kq_files[*]:-(none)}"
for cc in $CCS; do
    command -v "$cc" >/dev/null 2>&1 || continue
    for p in linux freebsd14 freebsd13 netbsd openbsd dragonfly macos; do
        cc_takes "$cc" "$p" || continue
        mapfile -t pf < <(persona "$p")
        ok=()
        for f in "${kq_files[@]}"; do
            # A *_bsd.c file is for the BSDs only: not compiled as Linux.
            [ "$p" = linux ] && [ "$f" != src/poll_kqueue.c ] && continue
            o="$TMP/$(basename "$f" .c).$p.o"
            run "$cc $p $f" "" "$cc" "${BASE[@]}" "${pf[@]}" -O2 -c -o "$o" "$f" && ok+=("$(basename "$f")")
        done
        [ ${#ok[@]} -gt 0 ] && echo "ok     $cc $p: ${ok[*]}"
    done
done

# ------------------------------------------------ 2. the other files' BSD paths
others=()
for f in $(find src -name '*.c' | LC_ALL=C sort); do
    case $f in src/poll_*.c | src/*_bsd.c | src/*_linux.c | src/arch/*) continue ;; esac
    others+=("$f")
done
echo "-- 2. the other sources in the FreeBSD and macOS personas (${#others[@]} files)"
cc=clang
command -v clang >/dev/null 2>&1 || cc=${CCS%% *}
step2() { # step2 PERSONA
    local p=$1 n=0 f
    cc_takes "$cc" "$p" || return 0
    mapfile -t pf < <(persona "$p")
    for f in "${others[@]}"; do
        run "$cc $p $f" "$(basename "$f"):compile" "$cc" "${BASE[@]}" "${pf[@]}" -fsyntax-only "$f" &&
            n=$((n + 1))
    done
    echo "ok     $cc $p: $n of ${#others[@]} files compile cleanly"
}
# The two personas at once (two cores), each printing when both are done.
step2 freebsd14 >"$TMP/s2.freebsd14" 2>&1 &
step2 macos >"$TMP/s2.macos" 2>&1 &
wait
cat "$TMP/s2.freebsd14" "$TMP/s2.macos"

# ------------------------------------------------ 3. audit for Linux-only names
echo "-- 3. Linux-only names left in the non-Linux paths"
audit() { # audit PERSONA TOKENS: prints "file:line:token (PERSONA)" findings
    local p=$1 toks=$2 f
    mapfile -t pf < <(persona "$p")
    audit1 "$p" "$toks" | sed "s/\$/ ($p)/"
}
audit1() {
    local p=$1 toks=$2 f
    for f in "${others[@]}"; do
        # Directives only (conditionals decided, macros not expanded), then
        # comments dropped; the linemarkers say which file each line is from.
        if ! gcc -E -fdirectives-only -std=c11 -D_GNU_SOURCE= -Iinclude -Isrc -I"$SHIM" "${pf[@]}" \
            "$f" -o "$TMP/$p.a.i" 2>"$TMP/$p.err" ||
            ! gcc -x c -fpreprocessed -dD -E "$TMP/$p.a.i" -o "$TMP/$p.b.i" 2>>"$TMP/$p.err"; then
            echo "$f:0:preprocessing failed: $(head -n1 "$TMP/$p.err")"
            continue
        fi
        awk -v toks="$toks" -v hdrs="$LINUX_HEADERS" '
            BEGIN { n = split(toks, a, /[ \n]+/); for (i = 1; i <= n; i++) if (a[i] != "") want[a[i]] = 1 }
            /^# [0-9]+ "/ {
                file = $3; gsub(/"/, "", file)
                if ($4 == "1" && cur ~ /^src\// && file ~ hdrs) {
                    h = file; sub(/.*\/include\//, "", h); sub(/^[^\/]*-linux-gnu\//, "", h)
                    print cur ":" ln ":" h
                }
                cur = file; ln = $2; next
            }
            {
                if (cur ~ /^src\// && $0 !~ /^[ \t]*#/) {
                    line = $0
                    if (line ~ /"\/proc\//) print cur ":" ln ":/proc"
                    gsub(/"([^"\\]|\\.)*"/, " ", line)
                    gsub(/\047([^\047\\]|\\.)*\047/, " ", line)
                    m = split(line, w, /[^A-Za-z0-9_]+/)
                    for (i = 1; i <= m; i++) if (w[i] in want) print cur ":" ln ":" w[i]
                }
                ln++
            }' "$TMP/$p.b.i"
    done
}
audit macos "$LINUX_ONLY $MACOS_MISSING" >"$TMP/audit.macos" &
audit openbsd "$LINUX_ONLY" >"$TMP/audit.openbsd" &
wait
sort -t: -k1,1 -k2,2n -k3 "$TMP/audit.macos" "$TMP/audit.openbsd" | uniq >"$TMP/audit"
# One line per place, with the personas it shows in.
awk '{ k = $1; p = $2; if (k in seen) seen[k] = seen[k] "," p; else { seen[k] = p; order[++n] = k } }
     END { for (i = 1; i <= n; i++) print order[i], seen[order[i]] }' "$TMP/audit" |
    tr -d '()' >"$TMP/audit2"
nfind=0
while read -r where personas; do
    f=${where%%:*}
    tok=${where##*:}
    key="$(basename "$f"):$tok"
    echo "$key" >>"$TMP/hits"
    nfind=$((nfind + 1))
    if is_known "$key"; then
        echo "known  $where ($personas)"
    else
        why=Linux-only
        in_list "$tok" "$MACOS_MISSING" && why="not on macOS"
        echo "FAIL   $where ($personas): $why, outside the Linux-only code"
        fail
    fi
done <"$TMP/audit2"
[ "$nfind" -eq 0 ] && echo "ok     no Linux-only names outside the Linux paths"

for k in $KNOWN; do
    grep -qxF "$k" "$TMP/hits" || echo "stale  TIDE_BSD_CHECK_KNOWN entry $k: nothing matches it any more, remove it"
done

if [ -e "$TMP/failed" ]; then
    echo "bsd_check: FAILED"
    exit 1
fi
echo "bsd_check: passed"
