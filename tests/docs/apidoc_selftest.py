#!/usr/bin/env python3
"""Self-test of scripts/apidoc.py (ctest api_docs_selftest, label docs): a
made-up include/ tree with what the real headers have and what other
branches may add (static inline helpers, block macros, multi-line
comments on #defines, a shared comment, an enum), parsed, rendered, and
checked: the convention check must flag exactly the functions that break
it."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import apidoc  # noqa: E402

UMBRELLA = r'''/*
 * tide: test umbrella.
 */
#ifndef TIDE_H
#define TIDE_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
#define TIDE_API __attribute__((visibility("default")))
#define TIDE_VERSION_MAJOR 3
#define TIDE_VERSION_MINOR 1
#define TIDE_VERSION_PATCH 4

typedef struct tide_thing tide_thing;

/* ------------------------------------------------------------ alpha */

/* Makes a thing.  Errors: -EINVAL, -ENOMEM. */
TIDE_API int tide_thing_new(tide_thing **t);
/* A shared comment for two.  Errors: -EBADF. */
TIDE_API int tide_thing_a(tide_thing *t);
TIDE_API int tide_thing_b(tide_thing *t,
                          int x);

TIDE_API int tide_undocumented(void);

/* Returns a count but names no error. */
TIDE_API ssize_t tide_no_errors(tide_thing *t);

/* As tide_thing_new, on a loop. */
TIDE_API int tide_thing_new_as(tide_thing **t, void *loop);

/* 1 or 0.  Never
 * fails. */
TIDE_API int tide_pred(const tide_thing *t);

// A C++-style comment.  Errors: -EIO.
TIDE_API TIDE_NODISCARD int tide_attr(void) __attribute__((warn_unused_result));

/* An attribute macro before the type, and no error named. */
TIDE_API TIDE_NODISCARD int tide_attr_bad(void);

#if defined(__linux__)
/* Inside a conditional.  Errors: -ENOSYS. */
TIDE_API int tide_cond_decl(void);
#endif

/* A typedef and the function below it share this comment.
 * Errors: -EINVAL. */
typedef struct tide_pair tide_pair;
TIDE_API int tide_pair_new(tide_pair **p);
/* The same, with a size. */
TIDE_API int tide_pair_new_sized(tide_pair **p, size_t n);
/* A note on the forward declarations below. */
struct tide_fwd;
TIDE_API int tide_pair_fwd(struct tide_fwd *f);

/* A value, not an error: no errors needed. */
TIDE_API size_t tide_size(const tide_thing *t);

/* ------------------------------------------------------------ beta */

/*
 * Every call below returns -EPERM outside a task.
 */

/* Waits for fd (no error of its own: the section's apply). */
TIDE_API int tide_inherits(int fd);

#ifdef __cplusplus
}
#endif
#include "tide/extra.h"
#endif
'''

EXTRA = r'''/*
 * tide: extras (with parentheses).  More text.
 */
#ifndef TIDE_EXTRA_H
#define TIDE_EXTRA_H
#include "../tide.h"

#define TIDE_FLAG_A 0x1 /* a comment that goes
                           on a second line */
#define TIDE_FLAG_B 0x2 /* one line */

typedef enum tide_colour {
    TIDE_RED = 0, /* red */
    TIDE_GREEN,
    TIDE_BLUE
} tide_colour;

typedef struct tide_opts {
    int (*cmp)(const void *a, const void *b); /* a function pointer field */
    size_t n;
} tide_opts;

/* Runs the block with a timeout: TIDE_WITH_X(ms) { ... }. */
#define TIDE_WITH_X(ms) \
    for (int tide__x = 0; tide__x < 1; tide__x++)

/* An inline helper.  Errors: -EINVAL. */
static inline int tide_inline_helper(int x)
{
    if (x < 0) {
        return -22;
    }
    return x;
}

static inline void tide__private(void *p) { (void)p; }

/* Returns an int and names no error. */
static inline int tide_inline_bad(void) { return 0; }

#endif
'''


def main():
    ok = True

    def expect(cond, what):
        nonlocal ok
        print(("ok    " if cond else "FAIL  ") + what)
        ok = ok and cond

    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "include", "tide"))
        open(os.path.join(d, "include", "tide.h"), "w").write(UMBRELLA)
        open(os.path.join(d, "include", "tide", "extra.h"), "w").write(EXTRA)
        api = apidoc.Api(d)
        funcs = {n for n, *_ in api.functions()}
        expect({"tide_thing_new", "tide_thing_a", "tide_thing_b", "tide_undocumented",
                "tide_no_errors", "tide_thing_new_as", "tide_pred", "tide_size",
                "tide_inherits", "tide_inline_helper", "tide_inline_bad", "tide_attr",
                "tide_attr_bad", "tide_cond_decl", "tide_pair_new", "tide_pair_new_sized",
                "tide_pair_fwd"} == funcs,
               "functions found: %s" % sorted(funcs))
        for sym in ("tide_thing", "tide_colour", "TIDE_RED", "TIDE_BLUE", "tide_opts",
                    "TIDE_FLAG_A", "TIDE_FLAG_B", "TIDE_WITH_X"):
            expect(sym in api.symbols, "symbol %s" % sym)
        for sym in ("cmp", "tide__private", "TIDE_API", "TIDE_H", "TIDE_EXTRA_H"):
            expect(sym not in api.symbols, "no symbol %s" % sym)
        titles = [p[1] for p in api.pages]
        expect(titles == ["types and constants", "alpha", "beta", "extras"],
               "topics: %s" % titles)
        problems = api.check()
        flagged = sorted(p.split(": ")[1].split()[0] for p in problems)
        expect(flagged == ["tide_attr_bad", "tide_inline_bad", "tide_no_errors",
                           "tide_undocumented"],
               "flagged by the check: %s" % flagged)
        html = os.path.join(d, "html")
        man = os.path.join(d, "man")
        rc = subprocess.call([sys.executable, os.path.join(ROOT, "scripts", "apidoc.py"),
                              "--root", d, "--html", html, "--man", man, "--check"])
        expect(rc == 1, "apidoc.py --check exits 1 on the fixture")
        alpha = open(os.path.join(html, "alpha.html")).read()
        expect('id="tide_thing_b"' in alpha and "-EBADF" in alpha, "shared comment rendered")
        expect('href="#tide_thing_new"' in alpha, "cross-link inside a page")
        expect('those of <a href="#tide_thing_new">' in alpha, "errors by reference linked")
        expect(os.path.exists(os.path.join(man, "man3", "tide_thing_b.3")), "man page per function")
        page = open(os.path.join(man, "man3", "tide_thing_b.3")).read()
        expect(".SH ERRORS" in page and "\\-EBADF" in page and 'tide 3.1.4' in page,
               "man page: errors and version")
    # The real headers pass.
    rc = subprocess.call([sys.executable, os.path.join(ROOT, "scripts", "apidoc.py"),
                          "--root", ROOT, "--check"], stdout=subprocess.DEVNULL)
    expect(rc == 0, "the real headers pass the check")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
