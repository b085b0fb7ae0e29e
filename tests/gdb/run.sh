#!/bin/sh
# tide's gdb script in batch mode against a live process, then a core file
# of it made with gcore (generate-core-file).  Usage: run.sh TARGET SCRIPT
# Needs gdb (Debian: apt-get install gdb).
set -u
target=$1
script=$2
if ! command -v gdb >/dev/null 2>&1; then
    echo "gdb not found: apt-get install gdb" >&2
    exit 1
fi
# Debug mode: stack guards that gcore can read around (src/stack.c).
TIDE_DEBUG=1
export TIDE_DEBUG
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { # file pattern what
    if ! grep -q -- "$2" "$1"; then
        echo "FAIL ($3): '$2' not found" >&2
        fail=1
    fi
}

gdb -nx -batch -ex 'set debuginfod enabled off' -ex 'set pagination off' \
    -ex "source $script" -ex 'break gdb_stop_here' -ex run \
    -ex 'tide tasks' -ex 'echo ==BT2==\n' -ex 'tide bt 2' -ex 'echo ==BT3==\n' -ex 'tide bt 3' \
    -ex 'echo ==BT1==\n' -ex 'tide bt 1' -ex 'echo ==AFTER==\n' -ex 'bt 1' \
    -ex "generate-core-file $dir/core" -ex kill "$target" >"$dir/live" 2>&1
cat "$dir/live"
check "$dir/live" 'task 2 "gdb-sleeper" waiting on sleep' live
check "$dir/live" 'task 3 "gdb-eventer" waiting on event 0x' live
check "$dir/live" 'in gdb_sleeper_body' 'live list'
sed -n '/==BT2==/,/==BT3==/p' "$dir/live" >"$dir/bt2"
check "$dir/bt2" 'tide__ctx_switch' 'live bt 2: CFI of the switch'
check "$dir/bt2" 'tide__suspend' 'live bt 2'
check "$dir/bt2" 'gdb_sleeper_body' 'live bt 2'
check "$dir/bt2" 'tide__ctx_trampoline' 'live bt 2 reaches the outermost frame'
sed -n '/==BT3==/,/==BT1==/p' "$dir/live" >"$dir/bt3"
check "$dir/bt3" 'tide_event_wait' 'live bt 3'
check "$dir/bt3" 'gdb_event_body' 'live bt 3'
sed -n '/==BT1==/,/==AFTER==/p' "$dir/live" >"$dir/bt1"
check "$dir/bt1" 'gdb_main' 'live bt 1 (running)'
sed -n '/==AFTER==/,$p' "$dir/live" >"$dir/after"
check "$dir/after" 'gdb_stop_here' 'registers restored'
[ -s "$dir/core" ] || { echo "FAIL: no core file" >&2; exit 1; }

gdb -nx -batch -ex 'set debuginfod enabled off' -ex "source $script" \
    -ex 'tide tasks' -ex 'echo ==BT2==\n' -ex 'tide bt 2' -ex 'echo ==END==\n' \
    "$target" "$dir/core" >"$dir/corelog" 2>&1
cat "$dir/corelog"
check "$dir/corelog" 'task 2 "gdb-sleeper" waiting on sleep' core
check "$dir/corelog" 'task 3 "gdb-eventer" waiting on event' core
sed -n '/==BT2==/,/==END==/p' "$dir/corelog" >"$dir/cbt2"
check "$dir/cbt2" 'gdb_sleeper_body' 'core bt 2'
check "$dir/cbt2" 'tide__suspend' 'core bt 2'
exit $fail
