#!/usr/bin/env bash
# The API reference in a real browser: generates it (scripts/apidoc.py), opens
# the index and one topic page in headless Chromium, and checks that
#   - the DOM Chromium built has the index's title, a link to every topic
#     page and to every public function, and the topic page its entries;
#   - the screenshots (PNG) are not blank: decoded, they hold enough pixels
#     that are not the background, in several colours.
#
#   scripts/docs_browser.sh OUTDIR      (ctest docs_browser, label browser)
#
# Needs chromium (Debian: apt-get install chromium) and python3.  Leaves
# OUTDIR/index.png and OUTDIR/streams.png to look at.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: docs_browser.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

CHROMIUM=${CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
    done
fi
if [ -z "$CHROMIUM" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y chromium >/dev/null
        CHROMIUM=$(command -v chromium)
    else
        echo "docs_browser: no chromium; install it: sudo apt-get install -y chromium" >&2
        exit 1
    fi
fi

rm -rf "$OUT/html"
python3 "$ROOT/scripts/apidoc.py" --root "$ROOT" --html "$OUT/html"

# A profile of its own (nothing from the user's), no sandbox when root (the
# setuid sandbox needs a user), no GPU.
chrome() {
    local flags=(--headless --disable-gpu --no-first-run --no-default-browser-check
                 --hide-scrollbars --user-data-dir="$OUT/profile" --window-size=1280,900)
    [ "$(id -u)" -eq 0 ] && flags+=(--no-sandbox)
    timeout 90 "$CHROMIUM" "${flags[@]}" "$@" 2>"$OUT/chromium.log"
}

for page in index streams; do
    rm -f "$OUT/$page.png"
    chrome --screenshot="$OUT/$page.png" "file://$OUT/html/$page.html" >/dev/null ||
        { cat "$OUT/chromium.log" >&2; echo "docs_browser: chromium failed on $page" >&2; exit 1; }
    chrome --dump-dom "file://$OUT/html/$page.html" >"$OUT/$page.dom" ||
        { cat "$OUT/chromium.log" >&2; echo "docs_browser: --dump-dom failed" >&2; exit 1; }
done

python3 - "$OUT" <<'EOF'
import os, re, struct, sys, zlib

out = sys.argv[1]
fail = []

def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        fail.append(what)

# --- the DOM
dom = open(os.path.join(out, "index.dom"), encoding="utf-8").read()
check("<title>tide API reference</title>" in dom, "index: title")
pages = sorted(f for f in os.listdir(os.path.join(out, "html"))
               if f.endswith(".html") and f != "index.html")
missing = [p for p in pages if 'href="%s"' % p not in dom]
check(not missing, "index: links to all %d topic pages %s" % (len(pages), missing or ""))
funcs = set(re.findall(r'<td><a href="[\w-]+\.html#(tide_\w+)">', dom))
check(len(funcs) > 150, "index: %d names in the index" % len(funcs))
sdom = open(os.path.join(out, "streams.dom"), encoding="utf-8").read()
check('id="tide_stream_readline"' in sdom, "streams: tide_stream_readline entry")
check(re.search(r'<span class="err">-EMSGSIZE</span>', sdom) is not None,
      "streams: errors of readuntil listed")

# --- the screenshots: decode the PNG (8-bit RGB/RGBA, no interlace)
def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and inter == 0, "PNG format"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows

for page in ("index", "streams"):
    w, h, bpp, rows = pixels(os.path.join(out, page + ".png"))
    colours = {}
    for r in rows[::4]:
        for x in range(0, w * bpp, bpp * 4):
            px = r[x:x + 3]
            colours[px] = colours.get(px, 0) + 1
    total = sum(colours.values())
    bg = max(colours.values())
    check(w >= 800 and h >= 600, "%s.png: %dx%d" % (page, w, h))
    check((total - bg) * 100 >= total * 3,
          "%s.png: %.1f%% of the pixels are not the background" % (page, 100.0 * (total - bg) / total))
    check(len(colours) >= 8, "%s.png: %d colours" % (page, len(colours)))
sys.exit(1 if fail else 0)
EOF
echo "docs_browser: screenshots in $OUT/index.png and $OUT/streams.png"
