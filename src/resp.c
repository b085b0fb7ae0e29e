/*
 * RESP2 parser (include/tide/resp.h): pure functions over the caller's
 * buffer.  A message is parsed from its first byte on every call; only a
 * bulk string's body is skipped without a scan, and *need lets a caller wait
 * for a large body to arrive in full before calling again.  Limits are
 * checked as soon as the number that breaks them is there, so a peer cannot
 * make a caller buffer more than the limits allow.
 */
#include "tide_int.h"

#include <tide/resp.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

void tide_resp_limits_init(tide_resp_limits *l)
{
    if (!l)
        return;
    l->max_bulk = TIDE_RESP_MAX_BULK_DEFAULT;
    l->max_elements = TIDE_RESP_MAX_ELEMENTS_DEFAULT;
    l->max_depth = TIDE_RESP_MAX_DEPTH_DEFAULT;
    l->max_line = TIDE_RESP_MAX_LINE_DEFAULT;
}

static void limits_get(tide_resp_limits *out, const tide_resp_limits *in)
{
    tide_resp_limits_init(out);
    if (!in)
        return;
    if (in->max_bulk)
        out->max_bulk = in->max_bulk;
    if (in->max_elements)
        out->max_elements = in->max_elements;
    if (in->max_depth)
        out->max_depth = in->max_depth < TIDE_RESP_MAX_DEPTH_LIMIT ? in->max_depth
                                                                    : TIDE_RESP_MAX_DEPTH_LIMIT;
    if (in->max_line)
        out->max_line = in->max_line;
}

/* Finds the CRLF ending the line that starts at pos.  Returns the index of
 * its CR, -1 if incomplete, -EPROTO (a CR not followed by LF, a bare LF),
 * -EMSGSIZE (no CRLF within max_line bytes). */
static ssize_t line_end(const char *buf, size_t len, size_t pos, size_t max_line)
{
    size_t avail = len - pos, scan = avail < max_line + 1 ? avail : max_line + 1;
    const char *cr = memchr(buf + pos, '\r', scan);
    const char *lf = memchr(buf + pos, '\n', cr ? (size_t)(cr - (buf + pos)) : scan);

    if (lf)
        return -EPROTO;
    if (!cr)
        return avail > max_line ? -EMSGSIZE : -1;
    if ((size_t)(cr - buf) + 1 >= len)
        return (size_t)(cr - (buf + pos)) > max_line ? -EMSGSIZE : -1;
    if (cr[1] != '\n')
        return -EPROTO;
    if ((size_t)(cr - (buf + pos)) > max_line)
        return -EMSGSIZE;
    return cr - buf;
}

/* A decimal int64 in s[0..n): 0 or -EPROTO. */
static int parse_int(const char *s, size_t n, int64_t *out)
{
    int neg = 0;
    uint64_t v = 0, lim;
    size_t i = 0;

    if (n && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || n - i > 19)
        return -EPROTO;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || v > (lim - d) / 10)
            return -EPROTO;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

/* The fast path for a length line ("*2\r\n", "$16\r\n"): the decimal
 * digits from pos up to a CRLF, at most 18 of them (no overflow) and within
 * max_line.
 * Returns the index of the CR with *out set, or -1 for anything else (a
 * sign, a bad byte, an incomplete line, 19 digits or more), which the caller then
 * hands to line_end and parse_int: those give the same answer on every line
 * this accepts, and decide the errors. */
static ssize_t len_line(const char *buf, size_t len, size_t pos, size_t max_line, int64_t *out)
{
    size_t i = pos, end = len - pos > 18 ? pos + 18 : len;
    int64_t v = 0;

    while (i < end) {
        unsigned d = (unsigned char)buf[i] - '0';
        if (d > 9)
            break;
        v = v * 10 + (int64_t)d;
        i++;
    }
    if (i == pos || i + 1 >= len || buf[i] != '\r' || buf[i + 1] != '\n' || i - pos > max_line)
        return -1;
    *out = v;
    return (ssize_t)i;
}

/* The length of a "*N" or "$N" header whose digits start at pos (>= 1):
 * the fast path, else the general one, which decides every error.  Returns
 * the index of the line's CR with *n set (>= -1), 0 (incomplete; *need
 * set) or a negative errno. */
static ssize_t len_field(const char *buf, size_t len, size_t pos, size_t max_line, int64_t *n,
                         size_t *need)
{
    ssize_t e = len_line(buf, len, pos, max_line, n);

    if (e >= 0)
        return e;
    e = line_end(buf, len, pos, max_line);
    if (e == -1) {
        *need = len + 1;
        return 0;
    }
    if (e < 0)
        return e;
    if (parse_int(buf + pos, (size_t)e - pos, n) < 0 || *n < -1)
        return -EPROTO;
    return e;
}

/* Parses the bulk string at pos ('$' there).  Returns the index past it,
 * 0 (incomplete; *need set) or a negative errno.  *str NULL: a null bulk. */
static ssize_t parse_bulk(const char *buf, size_t len, size_t pos, const tide_resp_limits *l,
                          const char **str, size_t *slen, size_t *need)
{
    int64_t n;
    size_t body, end;
    ssize_t e = len_field(buf, len, pos + 1, l->max_line, &n, need);

    if (e <= 0)
        return e;
    if (n == -1) {
        *str = NULL;
        *slen = 0;
        return e + 2;
    }
    if ((uint64_t)n > l->max_bulk)
        return -EMSGSIZE;
    body = (size_t)e + 2;
    end = body + (size_t)n + 2;
    if (len < end) {
        *need = end;
        return 0;
    }
    if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
        return -EPROTO;
    *str = buf + body;
    *slen = (size_t)n;
    return (ssize_t)end;
}

ssize_t tide_resp_parse(const char *buf, size_t len, tide_resp_value *vals, size_t cap,
                        size_t *nvals, const tide_resp_limits *lim, size_t *need)
{
    tide_resp_limits l;
    size_t rem[TIDE_RESP_MAX_DEPTH_LIMIT];
    unsigned depth = 0;
    size_t pos = 0, nv = 0, dummy;
    int64_t n;

    if (!need)
        need = &dummy;
    if ((!buf && len) || !vals || !cap)
        return -EINVAL;
    limits_get(&l, lim);
    for (;;) {
        tide_resp_value v;
        ssize_t e, r;

        if (pos >= len) {
            *need = len + 1;
            return 0;
        }
        memset(&v, 0, sizeof v);
        switch (buf[pos]) {
        case '+':
        case '-':
        case ':':
        case '*':
            e = line_end(buf, len, pos + 1, l.max_line);
            if (e == -1) {
                *need = len + 1;
                return 0;
            }
            if (e < 0)
                return e;
            v.type = (tide_resp_type)buf[pos];
            v.str = buf + pos + 1;
            v.len = (size_t)e - pos - 1;
            if (buf[pos] == ':' && parse_int(v.str, v.len, &v.integer) < 0)
                return -EPROTO;
            if (buf[pos] == '*') {
                if (parse_int(v.str, v.len, &n) < 0 || n < -1)
                    return -EPROTO;
                v.str = NULL;
                v.len = 0;
                if (n == -1)
                    v.type = TIDE_RESP_NIL_ARRAY;
                else if ((uint64_t)n > l.max_elements)
                    return -EMSGSIZE;
                else
                    v.n = (size_t)n;
            }
            pos = (size_t)e + 2;
            break;
        case '$':
            r = parse_bulk(buf, len, pos, &l, &v.str, &v.len, need);
            if (r <= 0)
                return r;
            v.type = v.str ? TIDE_RESP_BULK : TIDE_RESP_NIL;
            pos = (size_t)r;
            break;
        default:
            return -EPROTO;
        }
        if (nv == cap)
            return -EMSGSIZE;
        vals[nv++] = v;
        if (depth)
            rem[depth - 1]--;
        if (v.type == TIDE_RESP_ARRAY && v.n) {
            if (depth == l.max_depth)
                return -EMSGSIZE;
            rem[depth++] = v.n;
        }
        while (depth && rem[depth - 1] == 0)
            depth--;
        if (!depth)
            break;
    }
    if (nvals)
        *nvals = nv;
    return (ssize_t)pos;
}

/* An inline command: words separated by spaces or tabs, up to LF. */
static ssize_t parse_inline(const char *buf, size_t len, const char **argv, size_t *argl,
                            size_t cap, size_t *argc, const tide_resp_limits *l, size_t *need)
{
    size_t scan = len < l->max_line + 1 ? len : l->max_line + 1, end, i, n = 0;
    const char *lf = memchr(buf, '\n', scan);

    if (!lf) {
        if (len > l->max_line)
            return -EMSGSIZE;
        *need = len + 1;
        return 0;
    }
    end = (size_t)(lf - buf);
    if (end && buf[end - 1] == '\r')
        end--;
    for (i = 0; i < end;) {
        size_t start;
        while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        if (i == end)
            break;
        start = i;
        while (i < end && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (n == cap || n == l->max_elements)
            return -EMSGSIZE;
        argv[n] = buf + start;
        argl[n] = i - start;
        n++;
    }
    *argc = n;
    return (ssize_t)(lf - buf) + 1;
}

ssize_t tide_resp_parse_command(const char *buf, size_t len, const char **argv, size_t *argl,
                                size_t cap, size_t *argc, const tide_resp_limits *lim,
                                size_t *need)
{
    tide_resp_limits l;
    size_t dummy, pos, i, count;
    ssize_t e;
    int64_t n;

    if (!need)
        need = &dummy;
    if ((!buf && len) || !argv || !argl || !argc || !cap)
        return -EINVAL;
    limits_get(&l, lim);
    if (!len) {
        *need = 1;
        return 0;
    }
    if (buf[0] != '*')
        return parse_inline(buf, len, argv, argl, cap, argc, &l, need);
    e = len_field(buf, len, 1, l.max_line, &n, need);
    if (e <= 0)
        return e;
    pos = (size_t)e + 2;
    if (n <= 0) { /* *0 and *-1: an empty command, skipped */
        *argc = 0;
        return (ssize_t)pos;
    }
    if ((uint64_t)n > l.max_elements || (uint64_t)n > cap)
        return -EMSGSIZE;
    count = (size_t)n;
    for (i = 0; i < count; i++) {
        const char *s;
        size_t sl;
        ssize_t r;

        if (pos >= len) {
            *need = len + 1;
            return 0;
        }
        if (buf[pos] != '$')
            return -EPROTO;
        r = parse_bulk(buf, len, pos, &l, &s, &sl, need);
        if (r <= 0)
            return r;
        if (!s)
            return -EPROTO; /* a null bulk is no argument */
        argv[i] = s;
        argl[i] = sl;
        pos = (size_t)r;
    }
    *argc = count;
    return (ssize_t)pos;
}

/* Decimal digits of v. */
static size_t ndigits(size_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

ssize_t tide_resp_format_command(char *out, size_t cap, size_t argc, const char *const *argv,
                                 const size_t *argl)
{
    size_t total, i, pos;

    if (!argc || !argv || !argl || (!out && cap))
        return -EINVAL;
    total = 1 + ndigits(argc) + 2;
    for (i = 0; i < argc; i++) {
        if (!argv[i] && argl[i])
            return -EINVAL;
        if (argl[i] > (size_t)SSIZE_MAX / 2 || total > (size_t)SSIZE_MAX / 2)
            return -EINVAL;
        total += 1 + ndigits(argl[i]) + 2 + argl[i] + 2;
    }
    if (total > cap)
        return (ssize_t)total;
    pos = (size_t)sprintf(out, "*%zu\r\n", argc);
    for (i = 0; i < argc; i++) {
        pos += (size_t)sprintf(out + pos, "$%zu\r\n", argl[i]);
        if (argl[i])
            memcpy(out + pos, argv[i], argl[i]);
        pos += argl[i];
        out[pos++] = '\r';
        out[pos++] = '\n';
    }
    return (ssize_t)pos;
}
