#!/usr/bin/env python3
"""tide's API reference, generated from the comments of the public headers.

    scripts/apidoc.py [--html DIR] [--man DIR] [--check] [--include DIR]

Reads include/tide.h and every include/tide/*.h (found by glob: a new header
needs no change here) and writes

  --html DIR   DIR/index.html (conventions, topics, an index of every name)
               and one page per topic: a page per section of include/tide.h
               (its "/* ---- name */" separators), a page per other header;
  --man DIR    DIR/man3/<function>.3 for every public function and tide.3;
  --check      fails (exit 1), listing each one, when a public function has
               no doc comment, or returns int/ssize_t and its comment names
               no error (see docs/api.md for the convention).

Python 3 standard library only.  docs/api.md describes the comment
convention this parser reads.
"""

import argparse
import datetime
import glob
import html
import os
import re
import sys

ERR_RE = re.compile(r"(?<![\w])-E[A-Z0-9]{2,}\b|-errno\b|\bTIDE_\w*ERR\w*|\bTIDE_EAI\w*"
                    r"")
# A reference to the errors of other functions: "As tide_x ..." or "Like
# tide_x" opening a comment or a sentence after a colon, "Errors: as tide_x
# and tide_y", "and those of tide_x".
REF_RE = re.compile(r"(?:^|:)\s*(?:as|like)\s+tide_\w+(?:\s+and\s+tide_\w+)*|"
                    r"\bthose of\s+tide_\w+(?:\s+and\s+tide_\w+)*", re.I)
# "The same with the deadline in nanoseconds.": the function just above.
SAME_RE = re.compile(r"^\s*(The same|As above|Likewise)\b", re.I)
NEVER_FAILS_RE = re.compile(r"\bnever\s+fails\b", re.I)
SECTION_RE = re.compile(r"^/\*\s*-{3,}\s*(.*?)\s*\*/\s*$")
IDENT_RE = re.compile(r"\b(tide_\w+|TIDE_[A-Z0-9_]+)\b")
ERRNO_TYPES = ("int", "ssize_t")


class Item:
    """One documented thing: a group of declarations sharing one comment."""

    def __init__(self, kind, comment, line):
        self.kind = kind            # "func", "type", "macro", "prose"
        self.comment = comment      # the doc text (without comment markers)
        self.decls = []             # [(name, text)] in header order
        self.line = line
        self.returns = {}           # function name -> return type


class Section:
    def __init__(self, title, header):
        self.title = title
        self.header = header
        self.items = []
        self.slug = ""

    def intro_errors(self):
        """The error codes named by the section's prose (rules for all)."""
        text = " ".join(i.comment for i in self.items if i.kind == "prose")
        return bool(ERR_RE.search(text))


def strip_comment(raw):
    """The text of a /* ... */ comment, markers and leading stars removed."""
    body = raw.strip()
    assert body.startswith("/*") and body.endswith("*/")
    body = body[2:-2]
    lines = body.split("\n")
    out = []
    for ln in lines:
        s = ln.rstrip()
        m = re.match(r"^\s*\* ?(.*)$", s)
        if m:
            s = m.group(1)
        elif out or s.strip():
            s = s.strip() if not out else s
            # first line "/* text": keep as is (without the leading space)
            s = s.lstrip() if not out else s
        out.append(s)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    # Continuation lines of a "/* text" comment are indented by 3 spaces
    # ("/* " width) in tide's style: remove that common indentation.
    if len(out) > 1:
        rest = [l for l in out[1:] if l.strip()]
        ind = min((len(l) - len(l.lstrip(" ")) for l in rest), default=0)
        if ind:
            out = [out[0]] + [l[ind:] if l.strip() else "" for l in out[1:]]
    return "\n".join(out)


def remove_cplusplus(text):
    """Drops the #ifdef __cplusplus / extern "C" wrappers (keeping line count)."""
    lines = text.split("\n")
    out = []
    skip = 0
    for ln in lines:
        if re.match(r"^\s*#\s*ifdef\s+__cplusplus\b", ln):
            skip = 1
            out.append("")
            continue
        if skip:
            if re.match(r"^\s*#\s*if", ln):
                skip += 1
            elif re.match(r"^\s*#\s*endif", ln):
                skip -= 1
            out.append("")
            continue
        out.append(ln)
    return "\n".join(out)


def tokens(text):
    """Splits a header into ("comment", text, start, end), ("pp", text, start,
    end), ("decl", text, start, end, trailing_comment) and ("blank", line)
    entries, in order; lines are 1-based."""
    lines = text.split("\n")
    res = []
    i = 0
    n = len(lines)
    while i < n:
        ln = lines[i]
        s = ln.strip()
        if not s:
            res.append(("blank", None, i + 1, i + 1))
            i += 1
            continue
        if s.startswith("/*"):
            start = i
            buf = [ln]
            while "*/" not in lines[i][lines[i].find("/*") + 2 if i == start else 0:]:
                i += 1
                buf.append(lines[i])
            res.append(("comment", "\n".join(buf), start + 1, i + 1))
            i += 1
            continue
        if s.startswith("//"):
            res.append(("comment", "/* " + s[2:].strip() + " */", i + 1, i + 1))
            i += 1
            continue
        if s.startswith("#"):
            start = i
            buf = [ln]
            while (lines[i].rstrip().endswith("\\") or
                   "\n".join(buf).count("/*") > "\n".join(buf).count("*/")) and i + 1 < n:
                i += 1
                buf.append(lines[i])
            res.append(("pp", "\n".join(buf), start + 1, i + 1))
            i += 1
            continue
        # A declaration: up to ';' at depth 0, or the '}' ending a function body.
        start = i
        buf = []
        depth = 0
        trailing = None
        done = False
        in_comment = False
        while i < n and not done:
            line = lines[i]
            j = 0
            code = []
            while j < len(line):
                if in_comment:
                    k = line.find("*/", j)
                    if k < 0:
                        j = len(line)
                    else:
                        in_comment = False
                        j = k + 2
                    continue
                if line.startswith("/*", j):
                    in_comment = True
                    j += 2
                    continue
                if line.startswith("//", j):
                    break
                c = line[j]
                code.append(c)
                if c in "{(":
                    depth += 1
                elif c in "})":
                    depth -= 1
                    if c == "}" and depth == 0:
                        head = "".join(buf) + "".join(code)
                        pre = head[:head.find("{")]
                        if pre.rstrip().endswith(")"):
                            done = True  # a function definition (static inline)
                elif c == ";" and depth == 0:
                    done = True
                j += 1
            buf.append(line + "\n")
            if done:
                rest = line[line.rfind(";") + 1:] if ";" in line else ""
                m = re.search(r"/\*(.*?)\*/", rest)
                if m:
                    trailing = m.group(1).strip()
            i += 1
        res.append(("decl", "".join(buf).rstrip(), start + 1, i, trailing))
    return res


def decl_names(text):
    """(kind, [names], return type) of a declaration's text."""
    code = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    flat = " ".join(code.split())
    if "TIDE_API" in flat or re.match(r"^static\s+inline\b", flat):
        m = re.search(r"\b((?:tide|TIDE)_?\w*)\s*\(", flat.split("{")[0])
        if m and m.group(1).lower().startswith("tide__"):
            return "other", [], None  # private (tide__), not documented
        if m:
            name = m.group(1)
            ret = flat[:m.start()].replace("TIDE_API", "")
            ret = re.sub(r"\b(static|inline|extern)\b", "", ret)
            # attribute macros (TIDE_NODISCARD...) and __attribute__((...))
            ret = re.sub(r"__attribute__\s*\(\(.*?\)\)|\bTIDE_[A-Z0-9_]+\b", "", ret)
            ret = " ".join(ret.split())
            return "func", [name], ret
    if flat.startswith("typedef"):
        if "{" in flat:
            m = re.search(r"}\s*(\w+)\s*;\s*$", flat)
            if m:
                return "type", [m.group(1)], None
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", flat)
        if m:
            return "type", [m.group(1)], None
        m = re.search(r"(\w+)\s*;\s*$", flat)
        if m:
            return "type", [m.group(1)], None
    m = re.match(r"^(struct|enum|union)\s+(\w+)\s*[;{]", flat)
    if m:
        return "fwd", [m.group(2)], None
    return "other", [], None


def parse_header(path, rel):
    """Sections (with their items) of one header, and its intro text."""
    text = remove_cplusplus(open(path, encoding="utf-8").read())
    toks = tokens(text)
    guard = None
    m = re.search(r"#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\b", text)
    if m:
        guard = m.group(1)
    sections = []
    intro = []
    cur = None
    pending = None          # (comment text, end line) not yet followed by a blank
    last = None             # the item a following declaration joins (no blank between)
    run_last = None         # the last item of the current run of lines (no blank line
                            # since), across comments about forward declarations
    seen_decl = False
    seen_macros = set()

    def new_item(kind, comment, line):
        nonlocal cur
        if cur is None:
            cur = Section(None, rel)
            sections.append(cur)
        it = Item(kind, comment, line)
        cur.items.append(it)
        return it

    def flush_pending():
        nonlocal pending
        if pending is not None:
            if not seen_decl and cur is None:
                intro.append(pending[0])
            else:
                new_item("prose", pending[0], pending[1])
            pending = None

    for t in toks:
        kind = t[0]
        if kind == "blank":
            flush_pending()
            last = run_last = None
            continue
        if kind == "comment":
            raw = t[1]
            sm = SECTION_RE.match(raw.strip()) if "\n" not in raw.strip() else None
            if sm:
                flush_pending()
                cur = Section(sm.group(1), rel)
                sections.append(cur)
                last = run_last = None
                continue
            flush_pending()
            pending = (strip_comment(raw), t[2])
            last = None
            continue
        if kind == "pp":
            m = re.match(r"^\s*#\s*define\s+(\w+)(\([^)]*\))?(.*)$", t[1], re.S)
            if not m:
                # #include, #if...: a pending comment stays pending for what follows.
                if re.match(r"^\s*#\s*include", t[1]):
                    flush_pending()
                    last = run_last = None
                continue
            name = m.group(1)
            trailing = None
            tm = re.search(r"/\*(.*?)\*/\s*$", t[1], re.S)
            if tm:
                trailing = " ".join(tm.group(1).split())
            if (name == guard or name == "TIDE_API" or name.startswith("TIDE__")
                    or not name.startswith("TIDE_") or name in seen_macros):
                if name in seen_macros and last is None and pending is None:
                    continue
                if name == guard or name == "TIDE_API" or name.startswith("TIDE__"):
                    # private: a comment above it was about it
                    if pending is not None and not seen_decl and cur is None:
                        flush_pending()
                    pending = None if name != guard else pending
                    continue
                continue
            seen_macros.add(name)
            body = re.sub(r"/\*.*?\*/", "", t[1], flags=re.S).strip()
            body = re.sub(r"\s*\\\n\s*", " ", body)
            if pending is not None:
                it = new_item("macro", pending[0], pending[1])
                pending = None
            elif last is not None and last.kind == "macro":
                it = last
            else:
                it = new_item("macro", "", t[2])
            it.decls.append((name, body, trailing))
            last = it
            seen_decl = True
            continue
        # declaration
        text_, start, end, trailing = t[1], t[2], t[3], t[4]
        dkind, names, ret = decl_names(text_)
        if dkind in ("fwd", "other") or not names:
            if pending is not None and dkind == "fwd":
                pending = None
            continue
        shown = text_.strip()
        if dkind == "func":
            shown = re.sub(r"\bTIDE_API\s+", "", shown)
            if "{" in shown:  # a static inline definition: show its prototype
                shown = shown[:shown.find("{")].rstrip() + ";"
        if pending is not None:
            it = new_item(dkind, pending[0], pending[1])
            pending = None
        elif last is not None and last.kind == dkind:
            it = last
        elif last is not None:
            # right under a declaration of another kind (a typedef and the
            # function using it): the comment above the first is for both
            it = new_item(dkind, last.comment, start)
        elif run_last is not None and run_last.kind == dkind:
            # the run goes on past a comment about forward declarations
            it = run_last
        else:
            it = new_item(dkind, "", start)
        run_last = it
        for nm in names:
            it.decls.append((nm, shown, trailing))
            if ret is not None:
                it.returns[nm] = ret
        last = it
        seen_decl = True
    flush_pending()
    return sections, "\n\n".join(intro)


def slugify(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "x"


def header_title(intro, rel):
    """'tide: signals.' -> 'signals'."""
    m = re.match(r"\s*tide:\s*(.*?)(?:\s*[(:]|\.\s|\.?$)", intro or "", re.M)
    if m and m.group(1).strip():
        return m.group(1).strip()
    return os.path.splitext(os.path.basename(rel))[0]


class Api:
    def __init__(self, root):
        self.root = root
        umbrella = os.path.join(root, "include", "tide.h")
        others = sorted(glob.glob(os.path.join(root, "include", "tide", "*.h")))
        self.pages = []      # (slug, title, header rel path, intro, [sections])
        self.symbols = {}    # name -> (page slug, anchor, kind)
        self.umbrella_intro = ""
        self.included = set(re.findall(r'#\s*include\s+"(tide/[\w.-]+\.h)"',
                                       open(umbrella, encoding="utf-8").read()))
        secs, intro = parse_header(umbrella, "tide.h")
        self.umbrella_intro = intro
        for s in secs:
            if not any(i.kind != "prose" for i in s.items) and not s.items:
                continue
            title = s.title or "types and constants"
            slug = slugify(title)
            s.slug = slug
            self.pages.append((slug, title, "tide.h", "", [s]))
        for path in others:
            rel = "tide/" + os.path.basename(path)
            secs, intro = parse_header(path, rel)
            title = header_title(intro, rel)
            slug = slugify(os.path.splitext(os.path.basename(path))[0])
            for s in secs:
                s.slug = slug
            self.pages.append((slug, title, rel, intro, secs))
        # Unique slugs.
        seen = {}
        fixed = []
        for slug, title, rel, intro, secs in self.pages:
            if slug in seen:
                seen[slug] += 1
                slug = "%s-%d" % (slug, seen[slug])
            else:
                seen[slug] = 1
            for s in secs:
                s.slug = slug
            fixed.append((slug, title, rel, intro, secs))
        self.pages = fixed
        for slug, title, rel, intro, secs in self.pages:
            for s in secs:
                for it in s.items:
                    for d in it.decls:
                        self.symbols.setdefault(d[0], (slug, d[0], it.kind))
                        if it.kind == "type" and re.match(r"typedef\s+enum\b", d[1]):
                            body = re.sub(r"/\*.*?\*/", " ", d[1], flags=re.S)
                            body = body[body.find("{") + 1:body.rfind("}")]
                            for c in re.findall(r"\b(TIDE_[A-Z0-9_]+)\b\s*(?:=[^,]*)?(?:,|$)",
                                                body):
                                self.symbols.setdefault(c, (slug, d[0], "constant"))

    def include_of(self, rel):
        """What a program includes for header rel: <tide.h> for tide.h and the
        headers it includes, else the header itself (<tide/tls.h>)."""
        return "tide.h" if rel == "tide.h" or rel in self.included else rel

    def functions(self):
        """(name, item, section, page) of every public function."""
        for page in self.pages:
            for s in page[4]:
                for it in s.items:
                    if it.kind == "func":
                        for d in it.decls:
                            yield d[0], it, s, page

    # ---------------------------------------------------------- the check
    def names_errors(self, name, seen=None):
        """Does the doc of function name say which errors it returns?  Its
        own comment names a code (-EINVAL, TIDE_TLS_ERR_..., -errno) or says
        "Never fails"; or the prose opening its section names the codes all
        of the section's functions share; or it refers to a function that
        does ("As tide_x", "Errors: as tide_x", "those of tide_x")."""
        seen = seen or set()
        seen.add(name)
        f = self.func_index().get(name)
        if not f:
            return False
        it, sec = f
        doc = doc_of(it, name)
        if ERR_RE.search(doc) or NEVER_FAILS_RE.search(doc) or sec.intro_errors():
            return True
        for m in REF_RE.finditer(doc):
            for ref in IDENT_RE.findall(m.group(0)):
                if ref not in seen and self.names_errors(ref, seen):
                    return True
        if SAME_RE.match(it.comment or ""):
            prev = self.previous_function(name)
            if prev and prev not in seen and self.names_errors(prev, seen):
                return True
        return False

    def previous_function(self, name):
        """The function declared before name in its header (for "The same
        ..." comments)."""
        order = [n for n, *_ in self.functions()]
        i = order.index(name)
        return order[i - 1] if i > 0 else None

    def func_index(self):
        if not hasattr(self, "_fidx"):
            self._fidx = {n: (it, s) for n, it, s, p in self.functions()}
        return self._fidx

    def check(self):
        problems = []
        for name, it, sec, page in self.functions():
            doc = doc_of(it, name)
            where = "include/%s:%d" % (page[2], it.line)
            if not doc.strip():
                problems.append("%s: %s has no doc comment" % (where, name))
                continue
            ret = it.returns.get(name, "")
            if ret in ERRNO_TYPES:
                if self.names_errors(name):
                    continue
                problems.append("%s: %s returns %s but its comment names no error "
                                "(list the negative errno values, or say \"Never fails\")"
                                % (where, name, ret))
        return problems


def doc_of(it, name):
    """The doc text of one function of an item: the shared comment plus its
    own trailing comment."""
    parts = []
    if it.comment:
        parts.append(it.comment)
    for d in it.decls:
        if d[0] == name and d[2]:
            parts.append(d[2])
    return "\n\n".join(parts)


def error_codes(text):
    codes = []
    for m in ERR_RE.finditer(text):
        c = m.group(0)
        if c not in codes:
            codes.append(c)
    return codes


# ------------------------------------------------------------------ HTML
CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --accent:#0b6e99; --bg:#ffffff; --code:#f4f6f9;
        --line:#dde2ea; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:var(--bg); display:flex; }
nav { width:250px; flex:none; border-right:1px solid var(--line); padding:18px 16px;
      height:100vh; position:sticky; top:0; overflow-y:auto; background:#fafbfc; }
nav h1 { font-size:20px; margin:0 0 4px; }
nav h1 a { color:var(--fg); text-decoration:none; }
nav p.ver { color:var(--muted); margin:0 0 14px; font-size:13px; }
nav ul { list-style:none; padding:0; margin:0; }
nav li a { display:block; padding:3px 6px; border-radius:4px; color:var(--fg);
           text-decoration:none; font-size:14px; }
nav li a:hover, nav li a.here { background:#e6f1f6; color:var(--accent); }
main { flex:1; min-width:0; max-width:960px; padding:24px 40px 80px; }
h1.page { margin-top:0; }
h2 { border-bottom:1px solid var(--line); padding-bottom:4px; margin-top:34px; }
a { color:var(--accent); }
code { white-space:nowrap; }
pre code, pre { white-space:pre; }
code, pre { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:13.5px; }
pre { background:var(--code); padding:10px 12px; border-radius:6px; overflow-x:auto; }
pre.sig { border-left:3px solid var(--accent); }
div.entry { margin:22px 0 30px; }
div.entry h3 { margin:0 0 6px; font-size:17px; }
div.entry h3 code { font-size:16px; }
dl.errors dt { font-weight:600; margin-top:6px; }
dl.errors dd { margin-left:18px; }
span.err { display:inline-block; background:#fbeaea; color:#8a1f1f; border-radius:4px;
           padding:0 5px; margin:2px 4px 2px 0; font-family:ui-monospace,monospace; font-size:13px; }
p.inherit { color:var(--muted); font-size:14px; }
table.index { border-collapse:collapse; width:100%; }
table.index td { padding:3px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
ul.topics li { margin:4px 0; }
details.toc { background:#fafbfc; border:1px solid var(--line); border-radius:6px;
              padding:8px 14px; margin:14px 0 20px; font-size:14px; }
details.toc summary { cursor:pointer; font-weight:600; }
details.toc ul { padding-left:18px; margin:6px 0 0; }
details.toc li { margin:3px 0; line-height:1.7; }
.kind { color:var(--muted); font-size:12px; text-transform:uppercase; }
"""


def esc(s):
    return html.escape(s, quote=True)


class Html:
    def __init__(self, api, version):
        self.api = api
        self.version = version

    def link(self, name, cur):
        sym = self.api.symbols.get(name)
        if not sym:
            return None
        slug, anchor, _ = sym
        href = "#" + anchor if slug == cur else "%s.html#%s" % (slug, anchor)
        return href

    def linkify(self, escaped, cur, skip=None):
        def rep(m):
            nm = m.group(1)
            if nm == skip:
                return nm
            href = self.link(nm, cur)
            if href:
                return '<a href="%s">%s</a>' % (href, nm)
            return nm
        return IDENT_RE.sub(rep, escaped)

    def prose(self, text, cur, skip=None):
        """Comment text -> HTML: paragraphs, "- " lists, indented code."""
        out = []
        paras = re.split(r"\n\s*\n", text.strip("\n"))
        for p in paras:
            if not p.strip():
                continue
            lines = p.split("\n")
            if all(re.match(r"^\s{3,}\S", l) for l in lines if l.strip()) and lines:
                base = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
                code = "\n".join(l[base:] for l in lines)
                out.append("<pre>%s</pre>" % self.linkify(esc(code), cur, skip))
                continue
            if re.match(r"^\s*- ", lines[0]):
                items = []
                for l in lines:
                    if re.match(r"^\s*- ", l):
                        items.append(l.strip()[2:])
                    elif items:
                        items[-1] += " " + l.strip()
                    else:
                        items.append(l.strip())
                out.append("<ul>%s</ul>" % "".join(
                    "<li>%s</li>" % self.inline(i, cur, skip) for i in items))
                continue
            # a paragraph with an embedded list after a sentence
            head = []
            items = []
            for l in lines:
                if re.match(r"^\s*- ", l):
                    items.append(l.strip()[2:])
                elif items:
                    items[-1] += " " + l.strip()
                else:
                    head.append(l.strip())
            s = '<p>%s</p>' % self.inline(" ".join(head), cur, skip) if head else ""
            if items:
                s += "<ul>%s</ul>" % "".join(
                    "<li>%s</li>" % self.inline(i, cur, skip) for i in items)
            out.append(s)
        return "\n".join(out)

    def inline(self, text, cur, skip=None):
        e = esc(text)
        e = self.linkify(e, cur, skip)
        # errno codes stand out as code
        e = re.sub(r"(?<![\w-])(-E[A-Z0-9]{2,})\b", r"<code>\1</code>", e)
        return e

    def nav(self, cur):
        items = []
        for slug, title, rel, intro, secs in self.api.pages:
            cls = ' class="here"' if slug == cur else ""
            items.append('<li><a href="%s.html"%s>%s</a></li>' % (slug, cls, esc(title)))
        return ('<nav><h1><a href="index.html">tide</a></h1><p class="ver">API reference %s</p>'
                '<ul><li><a href="index.html"%s>Index</a></li>%s</ul></nav>'
                % (esc(self.version), ' class="here"' if cur == "index" else "",
                   "".join(items)))

    def page(self, cur, title, body):
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<title>%s</title><link rel=\"stylesheet\" href=\"style.css\"></head>"
                "<body>%s<main>%s</main></body></html>\n"
                % (esc(title), self.nav(cur), body))

    def entry(self, it, sec, cur):
        names = [d[0] for d in it.decls]
        anchors = "".join('<a id="%s"></a>' % esc(n) for n in names[1:])
        out = ['<div class="entry" id="%s">%s' % (esc(names[0]), anchors)]
        label = {"func": "function", "type": "type", "macro": "macro"}[it.kind]
        out.append('<h3><span class="kind">%s</span> %s</h3>' % (
            label, ", ".join("<code>%s</code>" % esc(n) for n in names)))
        sig = []
        for name, text, trailing in it.decls:
            t = text
            if it.kind == "macro":
                t = text
                if trailing:
                    t += "  /* %s */" % trailing
            elif trailing and it.kind == "func":
                t += "  /* %s */" % trailing
            sig.append(self.linkify(esc(t), cur, None))
        out.append('<pre class="sig">%s</pre>' % "\n".join(sig))
        if it.comment:
            out.append(self.prose(it.comment, cur))
        if it.kind == "func":
            doc = "\n".join([it.comment] + [d[2] or "" for d in it.decls])
            codes = error_codes(doc)
            rets = set(it.returns.values())
            refs = []
            for m in REF_RE.finditer(doc):
                for r in IDENT_RE.findall(m.group(0)):
                    if r not in refs and r not in names and r in self.api.symbols:
                        refs.append(r)
            if codes or refs:
                dd = "".join('<span class="err">%s</span>' % self.linkify(esc(c), cur)
                             for c in codes)
                if refs:
                    dd += " %s those of %s" % ("and" if codes else "", ", ".join(
                        self.linkify(esc(r), cur) for r in refs))
                out.append('<dl class="errors"><dt>Errors</dt><dd>%s</dd></dl>' % dd)
            if sec.intro_errors() and rets & set(ERRNO_TYPES):
                out.append('<p class="inherit">The common errors of <a href="#%s">%s</a> '
                           'apply as well.</p>' % ("top", esc(sec.title or "this topic")))
        out.append("</div>")
        return "\n".join(out)

    def write(self, outdir):
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "style.css"), "w") as f:
            f.write(CSS)
        for slug, title, rel, intro, secs in self.api.pages:
            body = ['<h1 class="page" id="top">%s</h1>' % esc(title)]
            body.append('<p><code>#include &lt;%s&gt;</code></p>' % esc(
                self.api.include_of(rel)))
            if intro:
                # The title sentence ("tide: signals.") is the page's heading
                # already; "Part of the public API; include <tide.h>." is the
                # #include line above.
                text = re.sub(r"^\s*tide:.*?(\.\s|\.$|\n\s*\n)", "", intro, count=1, flags=re.S)
                text = re.sub(r"Part of the public API; include <[\w/.]+>\.[ \t]*\n?", "", text)
                body.append(self.prose(text, slug))
            # On this page: every entry, by section.
            toc = []
            for s in secs:
                names = [d[0] for it in s.items if it.kind != "prose" for d in it.decls]
                if not names:
                    continue
                links = ", ".join('<a href="#%s"><code>%s</code></a>' % (esc(n), esc(n))
                                  for n in names)
                if s.title and len(secs) > 1:
                    toc.append('<li><a href="#%s">%s</a>: %s</li>'
                               % (esc(slugify(s.title)), esc(s.title), links))
                else:
                    toc.append("<li>%s</li>" % links)
            if toc:
                body.append('<details class="toc" open><summary>On this page</summary>'
                            '<ul>%s</ul></details>' % "".join(toc))
            for s in secs:
                if s.title and len(secs) > 1:
                    body.append('<h2 id="%s">%s</h2>' % (esc(slugify(s.title)), esc(s.title)))
                for it in s.items:
                    if it.kind == "prose":
                        body.append(self.prose(it.comment, slug))
                    else:
                        body.append(self.entry(it, s, slug))
            with open(os.path.join(outdir, slug + ".html"), "w") as f:
                f.write(self.page(slug, "tide: " + title, "\n".join(body)))
        # index
        body = ['<h1 class="page">tide API reference</h1>',
                '<p>tide %s: asyncio for C. Generated from the comments of '
                '<code>include/tide.h</code> and <code>include/tide/*.h</code>.</p>'
                % esc(self.version)]
        if self.api.umbrella_intro:
            body.append(self.prose(self.api.umbrella_intro, "index"))
        body.append('<h2 id="topics">Topics</h2><ul class="topics">')
        for slug, title, rel, intro, secs in self.api.pages:
            nf = sum(len(it.decls) for s in secs for it in s.items if it.kind == "func")
            body.append('<li><a href="%s.html">%s</a> <span class="kind">%s, %d functions'
                        '</span></li>' % (slug, esc(title), esc(rel), nf))
        body.append("</ul>")
        body.append('<h2 id="index">Index</h2><table class="index">')
        for name in sorted(self.api.symbols, key=lambda s: s.lower()):
            slug, anchor, kind = self.api.symbols[name]
            title = next(p[1] for p in self.api.pages if p[0] == slug)
            body.append('<tr><td><a href="%s.html#%s"><code>%s</code></a></td>'
                        '<td class="kind">%s</td><td>%s</td></tr>'
                        % (slug, esc(anchor), esc(name), esc(kind.replace("func", "function")),
                           esc(title)))
        body.append("</table>")
        with open(os.path.join(outdir, "index.html"), "w") as f:
            f.write(self.page("index", "tide API reference", "\n".join(body)))


# ------------------------------------------------------------------- man
def man_esc(s):
    s = s.replace("\\", "\\e")
    s = s.replace("-", "\\-")
    lines = []
    for l in s.split("\n"):
        if l.startswith(".") or l.startswith("'"):
            l = "\\&" + l
        lines.append(l)
    return "\n".join(lines)


def man_prose(text):
    out = []
    for p in re.split(r"\n\s*\n", text.strip("\n")):
        if not p.strip():
            continue
        lines = p.split("\n")
        if all(re.match(r"^\s{3,}\S", l) for l in lines if l.strip()):
            base = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
            out.append(".PP\n.nf\n.RS 4\n%s\n.RE\n.fi" % man_esc(
                "\n".join(l[base:] for l in lines)))
            continue
        head, items = [], []
        for l in lines:
            if re.match(r"^\s*- ", l):
                items.append(l.strip()[2:])
            elif items:
                items[-1] += " " + l.strip()
            else:
                head.append(l.strip())
        if head:
            out.append(".PP\n" + man_esc(" ".join(head)))
        for i in items:
            out.append('.IP \\(bu 2\n' + man_esc(i))
    return "\n".join(out)


def write_man(api, outdir, version, date):
    d = os.path.join(outdir, "man3")
    os.makedirs(d, exist_ok=True)
    th = '.TH "%s" 3 "%s" "tide %s" "tide API reference"\n'
    allf = []
    for name, it, sec, page in api.functions():
        allf.append(name)
        include = api.include_of(page[2])
        doc = doc_of(it, name)
        decl = next(t for n, t, tr in it.decls if n == name)
        others = [n for n, t, tr in it.decls if n != name]
        refs = []
        for m in IDENT_RE.finditer(doc):
            nm = m.group(1)
            if (nm != name and nm not in refs and nm not in others
                    and api.symbols.get(nm, (0, 0, ""))[2] == "func"):
                refs.append(nm)
        s = [th % (name, date, version)]
        s.append(".SH NAME\n%s \\- %s\n" % (man_esc(name), man_esc(
            page[1] + (": " + sec.title if sec.title and sec.title != page[1] else ""))))
        s.append(".SH SYNOPSIS\n.nf\n.B #include <%s>\n.PP\n%s\n.fi\n" % (
            include, man_esc(" ".join(decl.split()) if "\n" not in decl else decl)))
        s.append(".SH DESCRIPTION\n%s\n" % (man_prose(doc) if doc.strip() else
                                              ".PP\n(undocumented)"))
        codes = error_codes(doc)
        if codes:
            s.append(".SH ERRORS\n.PP\n%s\n" % man_esc(", ".join(codes)))
        if sec.intro_errors():
            intro = "\n\n".join(i.comment for i in sec.items if i.kind == "prose")
            s.append(".SH NOTES\n%s\n" % man_prose(intro))
        see = sorted(set(others + refs))
        s.append(".SH SEE ALSO\n%s\n" % ",\n".join(
            ".BR %s (3)" % man_esc(n) for n in see + ["tide"]))
        with open(os.path.join(d, name + ".3"), "w") as f:
            f.write("\n".join(s))
    s = [th % ("tide", date, version)]
    s.append(".SH NAME\ntide \\- asyncio for C: event loop, tasks, futures, streams\n")
    s.append(".SH SYNOPSIS\n.nf\n.B #include <tide.h>\n.fi\n")
    s.append(".SH DESCRIPTION\n%s\n" % man_prose(api.umbrella_intro))
    s.append(".SH SEE ALSO\n%s\n" % ",\n".join(".BR %s (3)" % man_esc(n) for n in sorted(allf)))
    with open(os.path.join(d, "tide.3"), "w") as f:
        f.write("\n".join(s))
    return len(allf)


def version_of(root):
    v = []
    text = open(os.path.join(root, "include", "tide.h"), encoding="utf-8").read()
    for part in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(r"#define TIDE_VERSION_%s +(\d+)" % part, text)
        v.append(m.group(1) if m else "0")
    return ".".join(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   ".."))
    ap.add_argument("--html")
    ap.add_argument("--man")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--stamp", help="file to touch when done (build systems)")
    a = ap.parse_args()
    api = Api(a.root)
    version = version_of(a.root)
    # Reproducible: SOURCE_DATE_EPOCH if set, else the date of tide.h.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        epoch = os.path.getmtime(os.path.join(a.root, "include", "tide.h"))
    date = datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).strftime("%Y-%m-%d")
    rc = 0
    if a.html:
        Html(api, version).write(a.html)
    if a.man:
        n = write_man(api, a.man, version, date)
    if a.check:
        problems = api.check()
        nfun = sum(1 for _ in api.functions())
        for p in problems:
            print(p)
        if problems:
            print("apidoc: %d of %d public functions fail the comment convention "
                  "(docs/api.md)" % (len(problems), nfun))
            rc = 1
        else:
            print("apidoc: %d public functions in %d topics, every one documented with "
                  "its errors" % (nfun, len(api.pages)))
    if a.stamp and rc == 0:
        with open(a.stamp, "w") as f:
            f.write("ok\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
