/*
 * libFuzzer harness: the RESP2 parsers (tide/resp.h) on arbitrary bytes.
 *
 * The first byte picks small limits (or the defaults); the rest is input,
 * parsed as a stream of pipelined messages, first whole, then fed in
 * pseudo-random pieces as a server would receive them: both ways must give
 * the same sequence of message lengths and the same final error.  Checked
 * too: every string points inside the input, a message is never longer than
 * the bytes given, "incomplete" never comes with a need at or below what was
 * given, and a command's arguments lie inside the command.
 */
#include <tide.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAXV 256
#define MAXMSG 64

typedef ssize_t (*parse_fn)(const char *buf, size_t len, const tide_resp_limits *l, size_t *need);

static ssize_t p_value(const char *buf, size_t len, const tide_resp_limits *l, size_t *need)
{
    tide_resp_value v[MAXV];
    size_t nv = 0, i;
    ssize_t r = tide_resp_parse(buf, len, v, MAXV, &nv, l, need);
    if (r > 0) {
        CHECK((size_t)r <= len && nv >= 1 && nv <= MAXV);
        for (i = 0; i < nv; i++)
            if (v[i].type == TIDE_RESP_BULK || v[i].type == TIDE_RESP_SIMPLE ||
                v[i].type == TIDE_RESP_ERROR)
                CHECK(v[i].str >= buf && v[i].str + v[i].len <= buf + r);
    }
    return r;
}

static ssize_t p_command(const char *buf, size_t len, const tide_resp_limits *l, size_t *need)
{
    const char *argv[MAXV];
    size_t argl[MAXV], argc = 0, i;
    ssize_t r = tide_resp_parse_command(buf, len, argv, argl, MAXV, &argc, l, need);
    if (r > 0) {
        CHECK((size_t)r <= len && argc <= MAXV);
        for (i = 0; i < argc; i++)
            CHECK(argv[i] >= buf && argv[i] + argl[i] <= buf + r);
    }
    return r;
}

/* Whole: the message lengths in order, then the final code (0 or error). */
static size_t run_whole(parse_fn f, const char *buf, size_t len, const tide_resp_limits *l,
                        ssize_t *out)
{
    size_t off = 0, n = 0;
    while (n < MAXMSG - 1) {
        size_t need = 0;
        ssize_t r = f(buf + off, len - off, l, &need);
        if (r == 0)
            CHECK(need > len - off);
        out[n++] = r;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    return n;
}

/* The same input arriving in pieces into a growing buffer. */
static size_t run_pieces(parse_fn f, const char *buf, size_t len, const tide_resp_limits *l,
                         ssize_t *out, uint32_t seed)
{
    size_t start = 0, have = 0, n = 0;
    for (;;) {
        size_t need = 0;
        ssize_t r = f(buf + start, have - start, l, &need);
        if (r > 0) {
            out[n++] = r;
            start += (size_t)r;
            if (n == MAXMSG - 1)
                return n;
            continue;
        }
        if (r < 0 || have == len) {
            out[n++] = r;
            return n;
        }
        CHECK(need > have - start);
        seed = seed * 1103515245u + 12345u;
        have += 1 + (seed >> 16) % 17;
        if (have > len)
            have = len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tide_resp_limits l;
    ssize_t a[MAXMSG], b[MAXMSG];
    size_t na, nb, k;
    const char *buf;
    char *copy;
    int which;

    if (size < 1)
        return 0;
    tide_resp_limits_init(&l);
    if (data[0] & 1) {
        l.max_bulk = 1 + (data[0] >> 4);
        l.max_elements = 1 + ((data[0] >> 1) & 7);
        l.max_depth = 1 + ((data[0] >> 2) & 3);
        l.max_line = 4 + (data[0] >> 3);
    }
    which = (data[0] >> 7) & 1;
    /* An exact-size copy, so ASan sees any read past the end. */
    copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    buf = copy;
    for (k = 0; k < 2; k++) {
        parse_fn f = (k ^ (size_t)which) ? p_command : p_value;
        na = run_whole(f, buf, size - 1, &l, a);
        nb = run_pieces(f, buf, size - 1, &l, b, (uint32_t)size);
        /* Pieces stop at the first incomplete only when all input is in. */
        CHECK(na == nb);
        CHECK(memcmp(a, b, na * sizeof a[0]) == 0);
    }
    free(copy);
    return 0;
}
