#!/usr/bin/env python3
"""Every suspension in src/ names what it waits on.

The task dump (src/dump.c) shows the wait kind a suspending call recorded
with TIDE__WAIT_ON or TIDE__WAIT_KIND (src/tide_int.h) just before it
suspends; a call that forgets shows "none", or the kind an earlier wait
left.  This check fails when a call of tide__suspend (or of tide__wl_wait,
the waitlist helper that suspends for its callers) has neither macro in the
lines of its function before it.

    check_wait_reasons.py SRC_DIR
"""
import glob
import os
import re
import sys

SUSPENDERS = ("tide__suspend(", "tide__wl_wait(")
# The suspenders themselves: their callers name the wait.
DEFINITIONS = re.compile(r"^\w[\w\s\*]*\b(tide__suspend|tide__wl_wait)\(\s*\w")
MARK = re.compile(r"\bTIDE__WAIT_(ON|KIND)\b")


def main(src):
    bad = []
    files = sorted(glob.glob(os.path.join(src, "**", "*.c"), recursive=True))
    for path in files:
        lines = open(path, encoding="utf-8").read().split("\n")
        start = 0  # first line of the current function body
        helper = False  # inside a suspender's own definition
        for i, line in enumerate(lines):
            if line.startswith("{"):
                start = i
                helper = i > 0 and bool(DEFINITIONS.match(lines[i - 1]))
            if not any(s in line for s in SUSPENDERS) or DEFINITIONS.match(line) or helper:
                continue
            if line.lstrip().startswith(("*", "/*", "//")):
                continue  # a comment naming the call
            if not any(MARK.search(l) for l in lines[start:i + 1]):
                bad.append("%s:%d: %s" % (os.path.relpath(path, src), i + 1, line.strip()))
    for b in bad:
        print("suspends without naming its wait (TIDE__WAIT_ON/KIND first): " + b)
    print("check_wait_reasons: %d files, %s" % (len(files), "FAILED" if bad else "ok"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "src"))
