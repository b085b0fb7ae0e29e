/*
 * HTTP/1.1 heads and chunked bodies (RFC 9112, RFC 9110), parsed in place.
 *
 * No loop, no allocation, no state outside the caller's structs.  The head
 * parsers make one pass from the start of the buffer each call: running out
 * of bytes anywhere gives -EAGAIN (or 431 once the buffer holds max_head
 * bytes), so a caller simply calls again with the buffer grown.  Decisions
 * depend only on the bytes before the current position, so a prefix of a
 * head gives either -EAGAIN or the same result as the whole head.
 *
 * Speed: the bytes of field values (most of a head) are scanned 16 at a
 * time for the first control character (SSE2 or NEON) or 8 at a time with
 * word arithmetic elsewhere; names, methods and targets go through 256-byte
 * class tables; the fields that matter for framing are recognised by length
 * first.  See docs/design.md, "HTTP parser", for the strictness choices.
 */
#include "tide.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* -DTIDE_HTTP_NO_SIMD: no SSE2/NEON; -DTIDE_HTTP_NO_SWAR: no word-at-a-time
 * either (the byte loops every platform can run; tests build both). */
#if defined(__SSE2__) && !defined(TIDE_HTTP_NO_SIMD)
#include <emmintrin.h>
#define HP_SSE2 1
#elif defined(__ARM_NEON) && !defined(TIDE_HTTP_NO_SIMD)
#include <arm_neon.h>
#define HP_NEON 1
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&                                 \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && (defined(__GNUC__) || defined(__clang__)) &&      \
    !defined(TIDE_HTTP_NO_SWAR)
#define HP_SWAR 1
#endif

#if defined(__GNUC__) || defined(__clang__)
#define HP_LIKELY(x) __builtin_expect(!!(x), 1)
#define HP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HP_LIKELY(x) (x)
#define HP_UNLIKELY(x) (x)
#endif

/* ----------------------------------------------------------- char classes */

/* clang-format off */
/* tchar (RFC 9110 5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};
/* clang-format on */

/* Request-target bytes.  T_OK: the URI characters of RFC 3986 (unreserved,
 * gen-delims but '#', sub-delims) plus those WHATWG URL lets browsers send
 * unescaped in paths and queries ("^`{|}"); refused (0): controls, space
 * (it ends the target), DEL, '"', '#' (no fragment in a request), '<', '>',
 * '\' and every byte >= 0x80 (clients percent-encode them). */
enum { T_BAD = 0, T_OK, T_PCT, T_QM, T_SP };
static const unsigned char tgt[256] = {
    [' '] = T_SP,  ['%'] = T_PCT, ['?'] = T_QM, ['!'] = T_OK, ['$'] = T_OK, ['&'] = T_OK,
    ['\''] = T_OK, ['('] = T_OK,  [')'] = T_OK, ['*'] = T_OK, ['+'] = T_OK, [','] = T_OK,
    ['-'] = T_OK,  ['.'] = T_OK,  ['/'] = T_OK, ['0'] = T_OK, ['1'] = T_OK, ['2'] = T_OK,
    ['3'] = T_OK,  ['4'] = T_OK,  ['5'] = T_OK, ['6'] = T_OK, ['7'] = T_OK, ['8'] = T_OK,
    ['9'] = T_OK,  [':'] = T_OK,  [';'] = T_OK, ['='] = T_OK, ['@'] = T_OK, ['A'] = T_OK,
    ['B'] = T_OK,  ['C'] = T_OK,  ['D'] = T_OK, ['E'] = T_OK, ['F'] = T_OK, ['G'] = T_OK,
    ['H'] = T_OK,  ['I'] = T_OK,  ['J'] = T_OK, ['K'] = T_OK, ['L'] = T_OK, ['M'] = T_OK,
    ['N'] = T_OK,  ['O'] = T_OK,  ['P'] = T_OK, ['Q'] = T_OK, ['R'] = T_OK, ['S'] = T_OK,
    ['T'] = T_OK,  ['U'] = T_OK,  ['V'] = T_OK, ['W'] = T_OK, ['X'] = T_OK, ['Y'] = T_OK,
    ['Z'] = T_OK,  ['['] = T_OK,  [']'] = T_OK, ['^'] = T_OK, ['_'] = T_OK, ['`'] = T_OK,
    ['a'] = T_OK,  ['b'] = T_OK,  ['c'] = T_OK, ['d'] = T_OK, ['e'] = T_OK, ['f'] = T_OK,
    ['g'] = T_OK,  ['h'] = T_OK,  ['i'] = T_OK, ['j'] = T_OK, ['k'] = T_OK, ['l'] = T_OK,
    ['m'] = T_OK,  ['n'] = T_OK,  ['o'] = T_OK, ['p'] = T_OK, ['q'] = T_OK, ['r'] = T_OK,
    ['s'] = T_OK,  ['t'] = T_OK,  ['u'] = T_OK, ['v'] = T_OK, ['w'] = T_OK, ['x'] = T_OK,
    ['y'] = T_OK,  ['z'] = T_OK,  ['{'] = T_OK, ['|'] = T_OK, ['}'] = T_OK, ['~'] = T_OK,
};

/* clang-format off */
/* Bytes of a host[:port] (Host field, authority of a target): unreserved,
 * sub-delims, ':', '[' and ']' (IP literals), '%' (pct-encoded, zone ids). */
static const unsigned char hostc[256] = {
    ['!'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
    ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, [':'] = 1, [';'] = 1, ['='] = 1, ['['] = 1,
    [']'] = 1, ['_'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};
/* clang-format on */

static inline int is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10u;
}

static inline int hexval(unsigned char c)
{
    if ((unsigned)(c - '0') < 10u)
        return c - '0';
    c |= 0x20;
    if ((unsigned)(c - 'a') < 6u)
        return c - 'a' + 10;
    return -1;
}

static inline int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline unsigned char lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26u ? (unsigned char)(c | 0x20) : c;
}

/* Case-insensitive comparison with a lowercase literal. */
static int ieq(const char *s, size_t n, const char *lit, size_t litn)
{
    if (n != litn)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}
#define IEQ(s, n, lit) ieq((s), (n), lit, sizeof(lit) - 1)

/* A token (tchar only) against a lowercase literal of the same length n
 * (4 <= n <= 24), a word at a time: for tokens, c | 0x20 folds exactly the
 * letters (no other tchar maps onto a lowercase letter or onto '-'). */
static inline uint64_t load64(const char *s)
{
    uint64_t x;
    memcpy(&x, s, 8);
    return x;
}

static inline uint32_t load32(const char *s)
{
    uint32_t x;
    memcpy(&x, s, 4);
    return x;
}

static inline int tok_is(const char *s, const char *lit, size_t n)
{
    if (n < 8)
        return ((load32(s) | 0x20202020u) == load32(lit)) &&
               ((load32(s + n - 4) | 0x20202020u) == load32(lit + n - 4));
    uint64_t d = (load64(s) | 0x2020202020202020ULL) ^ load64(lit);
    d |= (load64(s + n - 8) | 0x2020202020202020ULL) ^ load64(lit + n - 8);
    if (n > 16)
        d |= (load64(s + 8) | 0x2020202020202020ULL) ^ load64(lit + 8);
    return d == 0;
}

/* ------------------------------------------------------ vector scanning */

/*
 * Three scans find the first byte of a class in [p, end):
 *  - scan_ctl: a control character (< 0x20) or DEL: what ends (CR) or
 *    breaks (LF, NUL...) a field value or a reason phrase.  HTAB is found
 *    too; the caller skips it.
 *  - scan_name: a byte that is not a tchar (the ':' after a field name).
 *  - scan_target: a byte of the target that is not T_OK (' ', '%', '?' or
 *    an invalid one).
 * 16 bytes at a time with SSE2 or NEON (byte classes as unsigned range
 * tests), then by table (or for scan_ctl by word arithmetic).
 */
#if defined(HP_SSE2) || defined(HP_NEON)
#define HP_VEC 1
#if defined(HP_SSE2)
typedef __m128i vec;
static inline vec v_load(const char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}
static inline vec v_set(unsigned char c)
{
    return _mm_set1_epi8((char)c);
}
static inline vec v_eq(vec v, unsigned char c)
{
    return _mm_cmpeq_epi8(v, v_set(c));
}
static inline vec v_or(vec a, vec b)
{
    return _mm_or_si128(a, b);
}
/* lo <= v <= hi (unsigned) */
static inline vec v_in(vec v, unsigned char lo, unsigned char hi)
{
    vec t = _mm_sub_epi8(v, v_set(lo));
    return _mm_cmpeq_epi8(_mm_min_epu8(t, v_set((unsigned char)(hi - lo))), t);
}
/* v < lo or v > hi (unsigned) */
static inline vec v_out(vec v, unsigned char lo, unsigned char hi)
{
    vec t = _mm_sub_epi8(v, v_set(lo));
    return _mm_cmpeq_epi8(_mm_max_epu8(t, v_set((unsigned char)(hi - lo + 1))), t);
}
/* A mask's bytes as bits (v_bits), and the index of the first set (v_idx). */
typedef unsigned vbits;
static inline vbits v_bits(vec m)
{
    return (unsigned)_mm_movemask_epi8(m);
}
static inline unsigned v_idx(vbits b)
{
    return (unsigned)__builtin_ctz(b);
}
#else
typedef uint8x16_t vec;
static inline vec v_load(const char *p)
{
    return vld1q_u8((const uint8_t *)p);
}
static inline vec v_set(unsigned char c)
{
    return vdupq_n_u8(c);
}
static inline vec v_eq(vec v, unsigned char c)
{
    return vceqq_u8(v, v_set(c));
}
static inline vec v_or(vec a, vec b)
{
    return vorrq_u8(a, b);
}
static inline vec v_in(vec v, unsigned char lo, unsigned char hi)
{
    return vcleq_u8(vsubq_u8(v, v_set(lo)), v_set((unsigned char)(hi - lo)));
}
static inline vec v_out(vec v, unsigned char lo, unsigned char hi)
{
    return vcgtq_u8(vsubq_u8(v, v_set(lo)), v_set((unsigned char)(hi - lo)));
}
/* The narrowing shift makes a 4-bit-per-byte mask: NEON's movemask. */
typedef uint64_t vbits;
static inline vbits v_bits(vec m)
{
    return vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(m), 4)), 0);
}
static inline unsigned v_idx(vbits b)
{
    return (unsigned)(__builtin_ctzll(b) >> 2);
}
#endif

static inline vec m_ctl(vec v)
{
    return v_or(v_in(v, 0x00, 0x1f), v_eq(v, 0x7f));
}

/* Not a tchar: outside 0x21..0x7e, or one of the delimiters
 * "(),/:;<=>?@[\]{} (ranges 28-29, 3a-40, 5b-5d; singles 22 2c 2f 7b 7d). */
static inline vec m_non_tchar(vec v)
{
    vec a = v_or(v_out(v, 0x21, 0x7e), v_in(v, 0x3a, 0x40));
    vec b = v_or(v_in(v, 0x5b, 0x5d), v_in(v, 0x28, 0x29));
    vec c = v_or(v_eq(v, 0x22), v_eq(v, 0x2c));
    vec d = v_or(v_eq(v, 0x2f), v_or(v_eq(v, 0x7b), v_eq(v, 0x7d)));
    return v_or(v_or(a, b), v_or(c, d));
}

/* Not T_OK: outside 0x21..0x7e, or '"' '#' '%' '<' '>' '?' '\'. */
static inline vec m_non_tgt(vec v)
{
    vec a = v_or(v_out(v, 0x21, 0x7e), v_in(v, 0x22, 0x23));
    vec b = v_or(v_eq(v, 0x25), v_eq(v, 0x3c));
    vec c = v_or(v_in(v, 0x3e, 0x3f), v_eq(v, 0x5c));
    return v_or(v_or(a, b), c);
}
#endif

static inline const char *scan_ctl(const char *p, const char *end)
{
#if defined(HP_VEC)
    while (end - p >= 16) {
        vbits b = v_bits(m_ctl(v_load(p)));
        if (b)
            return p + v_idx(b);
        p += 16;
    }
#endif
#if defined(HP_SWAR)
    /* Per byte: b < 0x20 when (b - 0x20) borrows and b < 0x80; b == 0x7f
     * when b ^ 0x7f is zero.  The lowest flagged byte is exact (a borrow only
     * flags bytes above a real hit). */
    while (end - p >= 8) {
        uint64_t x = load64(p), y, t;
        y = x ^ 0x7f7f7f7f7f7f7f7fULL;
        t = ((x - 0x2020202020202020ULL) & ~x) | ((y - 0x0101010101010101ULL) & ~y);
        t &= 0x8080808080808080ULL;
        if (t)
            return p + (__builtin_ctzll(t) >> 3);
        p += 8;
    }
#endif
    while (p < end && (unsigned char)*p >= 0x20 && *p != 0x7f)
        p++;
    return p;
}

static inline const char *scan_name(const char *p, const char *end)
{
#if defined(HP_VEC)
    while (end - p >= 16) {
        vbits b = v_bits(m_non_tchar(v_load(p)));
        if (b)
            return p + v_idx(b);
        p += 16;
    }
#endif
    while (end - p >= 4 && tchar[(unsigned char)p[0]] && tchar[(unsigned char)p[1]] &&
           tchar[(unsigned char)p[2]] && tchar[(unsigned char)p[3]])
        p += 4;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    return p;
}

static inline const char *scan_target(const char *p, const char *end)
{
#if defined(HP_VEC)
    while (end - p >= 16) {
        vbits b = v_bits(m_non_tgt(v_load(p)));
        if (b)
            return p + v_idx(b);
        p += 16;
    }
#endif
    while (end - p >= 4 && tgt[(unsigned char)p[0]] == T_OK && tgt[(unsigned char)p[1]] == T_OK &&
           tgt[(unsigned char)p[2]] == T_OK && tgt[(unsigned char)p[3]] == T_OK)
        p += 4;
    while (p < end && tgt[(unsigned char)*p] == T_OK)
        p++;
    return p;
}

/* ----------------------------------------------------------- parse state */

enum {
    C_CLOSE = 1,
    C_KEEPALIVE = 2,
    C_UPGRADE = 4,
};

typedef struct hp {
    const char *start, *end; /* end: at most max_head bytes after start */
    int full;                /* the buffer reached max_head: needing more is 431 */
    int request;             /* look at request-only fields (Host, Expect) */
    int semantics;           /* look at fields at all (not for trailers) */
    int status;
    const char *error;
    tide_http_header *h;
    size_t cap, n;
    /* Framing fields. */
    const char *host;
    size_t host_len;
    int hosts;
    int has_cl;
    uint64_t cl;
    int has_te, te_n, te_chunked, te_last_chunked, te_unknown;
    unsigned conn;
    int expect100;
    int upgrade_field;
} hp;

static ssize_t fail(hp *c, int status, const char *why)
{
    c->status = status;
    c->error = why;
    return -EBADMSG;
}

/* Out of bytes: wait for more, unless the head is already at its limit. */
static ssize_t more(hp *c)
{
    if (c->full)
        return fail(c, 431, "head larger than max_head");
    return -EAGAIN;
}

static void hp_init(hp *c, const char *buf, size_t len, size_t max_head)
{
    /* Field by field: a memset of the whole struct shows in profiles. */
    c->request = c->semantics = 0;
    c->status = 0;
    c->error = NULL;
    c->h = NULL;
    c->cap = c->n = 0;
    c->host = NULL;
    c->host_len = 0;
    c->hosts = c->has_cl = 0;
    c->cl = 0;
    c->has_te = c->te_n = c->te_chunked = c->te_last_chunked = c->te_unknown = 0;
    c->conn = 0;
    c->expect100 = c->upgrade_field = 0;
    c->start = buf;
    if (len >= max_head) {
        c->end = buf + max_head;
        c->full = 1;
    } else {
        c->end = buf + len;
        c->full = 0;
    }
}

/* ------------------------------------------------------ framing fields */

/* Content-Length: 1*DIGIT, or a list of identical ones ("42, 42", RFC
 * 9110 8.6); several fields must agree too.  Below 2^63. */
static ssize_t field_content_length(hp *c, const char *v, size_t len)
{
    size_t i = 0;

    for (;;) {
        uint64_t x = 0;
        if (i == len || !is_digit((unsigned char)v[i]))
            return fail(c, 400, "invalid Content-Length");
        while (i < len && is_digit((unsigned char)v[i])) {
            unsigned d = (unsigned)(v[i] - '0');
            if (x > (UINT64_C(0x7fffffffffffffff) - d) / 10)
                return fail(c, 400, "Content-Length too large");
            x = x * 10 + d;
            i++;
        }
        if (c->has_cl && x != c->cl)
            return fail(c, 400, "differing Content-Length values");
        c->has_cl = 1;
        c->cl = x;
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        if (i == len)
            return 0;
        if (v[i] != ',')
            return fail(c, 400, "invalid Content-Length");
        i++;
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
    }
}

/* Transfer-Encoding: a list of codings, over all the fields of that name.
 * Empty elements are ignored (RFC 9110 5.6.1); parameters are refused. */
static ssize_t field_transfer_encoding(hp *c, const char *v, size_t len)
{
    size_t i = 0;

    c->has_te = 1;
    while (i < len) {
        size_t b, e;
        while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ','))
            i++;
        if (i == len)
            break;
        b = i;
        while (i < len && tchar[(unsigned char)v[i]])
            i++;
        e = i;
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        if (i < len && v[i] != ',') {
            if (v[i] == ';')
                return fail(c, 400, "transfer-coding parameters are not accepted");
            return fail(c, 400, "invalid Transfer-Encoding");
        }
        c->te_n++;
        if (IEQ(v + b, e - b, "chunked")) {
            c->te_chunked++;
            c->te_last_chunked = 1;
        } else {
            c->te_last_chunked = 0;
            if (!IEQ(v + b, e - b, "gzip") && !IEQ(v + b, e - b, "deflate") &&
                !IEQ(v + b, e - b, "compress") && !IEQ(v + b, e - b, "x-gzip") &&
                !IEQ(v + b, e - b, "x-compress"))
                c->te_unknown = 1;
        }
    }
    return 0;
}

static void field_connection(hp *c, const char *v, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t b, e;
        while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ','))
            i++;
        b = i;
        while (i < len && v[i] != ',')
            i++;
        e = i;
        while (e > b && is_ows((unsigned char)v[e - 1]))
            e--;
        if (IEQ(v + b, e - b, "close"))
            c->conn |= C_CLOSE;
        else if (IEQ(v + b, e - b, "keep-alive"))
            c->conn |= C_KEEPALIVE;
        else if (IEQ(v + b, e - b, "upgrade"))
            c->conn |= C_UPGRADE;
    }
}

static ssize_t field_host(hp *c, const char *v, size_t len)
{
    if (++c->hosts > 1)
        return fail(c, 400, "more than one Host field");
    for (size_t i = 0; i < len; i++)
        if (!hostc[(unsigned char)v[i]])
            return fail(c, 400, "invalid Host");
    c->host = v;
    c->host_len = len;
    return 0;
}

/* The fields that decide framing, recognised by length and first letter
 * (sparse cases: compares, not an indirect jump), then by word compares. */
#define NAME_KEY(len, ch) ((unsigned)(len) << 8 | (unsigned)(ch))
static inline ssize_t field_semantics(hp *c, const char *name, size_t nlen, const char *v,
                                      size_t vlen)
{
    if (nlen > 17)
        return 0;
    switch (NAME_KEY(nlen, (unsigned char)name[0] | 0x20)) {
    case NAME_KEY(4, 'h'):
        if (c->request && tok_is(name, "host", 4))
            return field_host(c, v, vlen);
        break;
    case NAME_KEY(6, 'e'):
        if (c->request && tok_is(name, "expect", 6) && IEQ(v, vlen, "100-continue"))
            c->expect100 = 1;
        break;
    case NAME_KEY(7, 'u'):
        if (tok_is(name, "upgrade", 7) && vlen)
            c->upgrade_field = 1;
        break;
    case NAME_KEY(10, 'c'):
        if (tok_is(name, "connection", 10))
            field_connection(c, v, vlen);
        break;
    case NAME_KEY(14, 'c'):
        if (tok_is(name, "content-length", 14))
            return field_content_length(c, v, vlen);
        break;
    case NAME_KEY(17, 't'):
        if (tok_is(name, "transfer-encoding", 17))
            return field_transfer_encoding(c, v, vlen);
        break;
    default:
        break;
    }
    return 0;
}

/* --------------------------------------------------------- field section */

/* Field lines from p through the empty line: the head's length, or < 0.
 * The header slot and the end are kept in locals (stores to the array
 * could alias the struct's members otherwise); c->n is written on the way
 * out. */
static ssize_t parse_fields(hp *c, const char *p)
{
    const char *const end = c->end;
    /* (no arithmetic on a NULL array: a caller may give none) */
    tide_http_header *hdr = c->h ? c->h + c->n : NULL, *const hend = c->h ? c->h + c->cap : NULL;
    const int semantics = c->semantics;
    ssize_t rc;

    for (;;) {
        const char *name, *value, *vend;
        size_t nlen;

        if (HP_UNLIKELY(p == end))
            goto need_more;
        if (*p == '\r') {
            if (p + 1 == end)
                goto need_more;
            if (p[1] != '\n')
                goto bare_cr;
            rc = p + 2 - c->start;
            goto out;
        }
        name = p;
        p = scan_name(p, end);
        if (HP_UNLIKELY(p == end))
            goto need_more;
        if (HP_UNLIKELY(*p != ':' || p == name)) {
            unsigned char ch = (unsigned char)*p;
            if (p == name && is_ows(ch))
                rc = fail(c, 400, "line folding (obs-fold) or whitespace before a field");
            else if (ch == ':')
                rc = fail(c, 400, "empty field name");
            else if (ch == '\n')
                rc = fail(c, 400, "bare LF");
            else if (is_ows(ch))
                rc = fail(c, 400, "whitespace between field name and colon");
            else if (ch == '\r')
                rc = fail(c, 400, "field line without a colon");
            else
                rc = fail(c, 400, "invalid character in field name");
            goto out;
        }
        nlen = (size_t)(p - name);
        p++;
        if (HP_LIKELY(p < end && *p == ' '))
            p++;
        value = p;
        for (;;) {
            p = scan_ctl(p, end);
            if (HP_LIKELY(p < end && *p == '\r'))
                break;
            if (p == end)
                goto need_more;
            if (*p != '\t') {
                rc = fail(c, 400, *p == '\n' ? "bare LF" : "control character in field value");
                goto out;
            }
            p++;
        }
        if (HP_UNLIKELY(end - p < 2 || p[1] != '\n')) {
            if (p + 1 == end)
                goto need_more;
            goto bare_cr;
        }
        /* Between value and vend every byte is HTAB or >= 0x20, so
         * "<= 0x20" is "SP or HTAB": one compare to trim each end. */
        vend = p;
        while (HP_UNLIKELY(value < vend && (unsigned char)*value <= 0x20))
            value++;
        while (HP_UNLIKELY(vend > value && (unsigned char)vend[-1] <= 0x20))
            vend--;
        p += 2;
        if (HP_UNLIKELY(hdr == hend)) {
            rc = fail(c, 431, "more header fields than header_cap");
            goto out;
        }
        hdr->name = name;
        hdr->name_len = nlen;
        hdr->value = value;
        hdr->value_len = (size_t)(vend - value);
        hdr++;
        if (semantics) {
            rc = field_semantics(c, name, nlen, value, (size_t)(vend - value));
            if (HP_UNLIKELY(rc < 0))
                goto out;
        }
    }
need_more:
    rc = more(c);
    goto out;
bare_cr:
    rc = fail(c, 400, "bare CR");
out:
    c->n = c->h ? (size_t)(hdr - c->h) : 0;
    return rc;
}

/* "HTTP/1.1" at *pp; *minor gets the minor version; 1 for a version
 * other than 1.0 / 1.1 (syntax fine). */
static ssize_t parse_version(hp *c, const char **pp, int *minor)
{
    static const char http[5] = {'H', 'T', 'T', 'P', '/'};
    const char *p = *pp, *end = c->end;

    if (HP_LIKELY(end - p >= 8) && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0')) {
        *minor = p[7] - '0';
        *pp = p + 8;
        return 0;
    }
    for (int i = 0; i < 5; i++, p++) {
        if (p == end)
            return more(c);
        if (*p != http[i])
            return fail(c, 400,
                        *p == ' ' ? "extra space in the start line" : "invalid HTTP version");
    }
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return more(c);
        if (i == 1 ? *p != '.' : !is_digit((unsigned char)*p))
            return fail(c, 400, "invalid HTTP version");
    }
    *pp = p;
    *minor = 2; /* a well-formed version we do not speak */
    return 0;
}

/* CRLF at *pp. */
static ssize_t parse_eol(hp *c, const char **pp, const char *what)
{
    const char *p = *pp;

    if (p == c->end)
        return more(c);
    if (*p != '\r') {
        if (*p == '\n')
            return fail(c, 400, "bare LF");
        if (*p == ' ')
            return fail(c, 400, "extra space in the start line");
        return fail(c, 400, what);
    }
    if (p + 1 == c->end)
        return more(c);
    if (p[1] != '\n')
        return fail(c, 400, "bare CR");
    *pp = p + 2;
    return 0;
}

/* ------------------------------------------------------------- requests */

static tide_http_method method_id(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3))
            return TIDE_HTTP_GET;
        if (!memcmp(m, "PUT", 3))
            return TIDE_HTTP_PUT;
        break;
    case 4:
        if (!memcmp(m, "POST", 4))
            return TIDE_HTTP_POST;
        if (!memcmp(m, "HEAD", 4))
            return TIDE_HTTP_HEAD;
        break;
    case 5:
        if (!memcmp(m, "PATCH", 5))
            return TIDE_HTTP_PATCH;
        if (!memcmp(m, "TRACE", 5))
            return TIDE_HTTP_TRACE;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6))
            return TIDE_HTTP_DELETE;
        break;
    case 7:
        if (!memcmp(m, "OPTIONS", 7))
            return TIDE_HTTP_OPTIONS;
        if (!memcmp(m, "CONNECT", 7))
            return TIDE_HTTP_CONNECT;
        break;
    default:
        break;
    }
    return TIDE_HTTP_OTHER;
}

/* host[:port] with host chars only, non-empty; port digits if there is a
 * ':' after the last ']' (IP literal). need_port: authority-form. */
static int valid_authority(const char *a, size_t n, int need_port)
{
    size_t colon = n, i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        if (!hostc[(unsigned char)a[i]])
            return 0;
        if (a[i] == ':')
            colon = i;
        else if (a[i] == ']')
            colon = n;
    }
    if (colon == n)
        return !need_port;
    if (colon == 0)
        return 0; /* no host */
    for (i = colon + 1; i < n; i++)
        if (!is_digit((unsigned char)a[i]))
            return 0;
    return !need_port || colon + 1 < n;
}

/* Splits the target by form (method known). */
static ssize_t split_target(hp *c, tide_http_request *r, const char *qm)
{
    const char *t = r->target, *te = t + r->target_len;

    r->authority = NULL;
    r->authority_len = 0;
    r->query = NULL;
    r->query_len = 0;
    if (r->method_id == TIDE_HTTP_CONNECT) {
        if (qm || !valid_authority(t, r->target_len, 1))
            return fail(c, 400, "CONNECT needs a host:port target");
        r->target_form = TIDE_HTTP_AUTHORITY_FORM;
        r->authority = t;
        r->authority_len = r->target_len;
        r->path = NULL;
        r->path_len = 0;
        return 0;
    }
    if (qm) {
        r->query = qm + 1;
        r->query_len = (size_t)(te - qm - 1);
    }
    if (*t == '/') {
        r->target_form = TIDE_HTTP_ORIGIN_FORM;
        r->path = t;
        r->path_len = (size_t)((qm ? qm : te) - t);
        return 0;
    }
    if (r->target_len == 1 && *t == '*') {
        if (r->method_id != TIDE_HTTP_OPTIONS)
            return fail(c, 400, "asterisk-form target is for OPTIONS only");
        r->target_form = TIDE_HTTP_ASTERISK_FORM;
        r->path = t;
        r->path_len = 1;
        return 0;
    }
    /* absolute-form: scheme "://" authority [path-abempty] ["?" query] */
    {
        const char *p = t, *pe = qm ? qm : te, *a, *ae;
        if (p == pe || (unsigned)(lower((unsigned char)*p) - 'a') >= 26u)
            return fail(c, 400, "invalid request target");
        while (p < pe && ((unsigned)(lower((unsigned char)*p) - 'a') < 26u ||
                          is_digit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))
            p++;
        if (pe - p < 3 || memcmp(p, "://", 3) != 0)
            return fail(c, 400, "invalid request target");
        a = p + 3;
        ae = a;
        while (ae < pe && *ae != '/')
            ae++;
        if (memchr(a, '@', (size_t)(ae - a)))
            return fail(c, 400, "userinfo in the request target");
        if (!valid_authority(a, (size_t)(ae - a), 0))
            return fail(c, 400, "invalid authority in the request target");
        r->target_form = TIDE_HTTP_ABSOLUTE_FORM;
        r->authority = a;
        r->authority_len = (size_t)(ae - a);
        if (ae == pe) {
            r->path = "/";
            r->path_len = 1;
        } else {
            r->path = ae;
            r->path_len = (size_t)(pe - ae);
        }
        return 0;
    }
}

void tide_http_request_init(tide_http_request *req, tide_http_header *headers, size_t header_cap)
{
    if (!req)
        return;
    memset(req, 0, sizeof *req);
    req->headers = headers;
    req->header_cap = headers ? header_cap : 0;
}

static ssize_t request_head(hp *c, tide_http_request *r)
{
    const char *p = c->start, *end = c->end, *qm = NULL;
    size_t max_target = r->max_target ? r->max_target : TIDE_HTTP_MAX_TARGET_DEFAULT;
    ssize_t rc;
    int minor;

    /* Empty lines before the request line (RFC 9112 2.2). */
    while (p < end && *p == '\r') {
        if (p + 1 == end)
            return more(c);
        if (p[1] != '\n')
            return fail(c, 400, "bare CR");
        p += 2;
    }

    /* method SP */
    r->method = p;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    r->method_len = (size_t)(p - r->method);
    if (HP_UNLIKELY(r->method_len > TIDE_HTTP_MAX_METHOD))
        return fail(c, 501, "method too long");
    if (HP_UNLIKELY(p == end))
        return more(c);
    if (HP_UNLIKELY(*p != ' ' || r->method_len == 0)) {
        if (*p == '\n')
            return fail(c, 400, "bare LF");
        if (*p == ' ')
            return fail(c, 400, "empty method");
        return fail(c, 400, "invalid character in method");
    }
    r->method_id = method_id(r->method, r->method_len);
    p++;

    /* request-target SP */
    r->target = p;
    for (;;) {
        p = scan_target(p, end);
        if (HP_UNLIKELY((size_t)(p - r->target) > max_target))
            return fail(c, 414, "request target longer than max_target");
        if (p == end)
            return more(c);
        switch (tgt[(unsigned char)*p]) {
        case T_SP:
            goto target_done;
        case T_QM:
            if (!qm)
                qm = p;
            p++;
            continue;
        case T_PCT:
            /* The two digits first, the length after (at the loop's top):
             * a prefix ending inside "%xx" must not decide otherwise. */
            for (int i = 1; i <= 2; i++) {
                if (p + i == end)
                    return more(c);
                if (hexval((unsigned char)p[i]) < 0)
                    return fail(c, 400, "invalid percent-encoding in the request target");
            }
            p += 3;
            continue;
        default:
            if (*p == '\r' || *p == '\n')
                return fail(c, 400, "request line without an HTTP version");
            return fail(c, 400, "invalid character in the request target");
        }
    }
target_done:
    r->target_len = (size_t)(p - r->target);
    if (HP_UNLIKELY(r->target_len == 0))
        return fail(c, 400, "extra space in the start line");
    p++;

    /* HTTP-version CRLF */
    if ((rc = parse_version(c, &p, &minor)) < 0)
        return rc;
    if ((rc = parse_eol(c, &p, "invalid HTTP version")) < 0)
        return rc;
    if (minor > 1)
        return fail(c, 505, "HTTP version not supported");
    r->version_minor = minor;
    if ((rc = split_target(c, r, qm)) < 0)
        return rc;

    rc = parse_fields(c, p);
    if (rc < 0)
        return rc;

    /* What the fields decide (RFC 9112 3.2, 6.1, 6.3, 9.3). */
    if (minor == 1 && !c->hosts)
        return fail(c, 400, "HTTP/1.1 request without Host");
    if (c->has_te) {
        if (c->has_cl)
            return fail(c, 400, "both Content-Length and Transfer-Encoding");
        if (minor == 0)
            return fail(c, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (c->te_n == 0)
            return fail(c, 400, "empty Transfer-Encoding");
        if (c->te_unknown)
            return fail(c, 501, "unknown transfer coding");
        if (c->te_chunked > 1)
            return fail(c, 400, "chunked applied more than once");
        if (!c->te_last_chunked)
            return fail(c, 400, "chunked is not the final transfer coding");
        r->body = TIDE_HTTP_BODY_CHUNKED;
    } else if (c->has_cl) {
        r->body = TIDE_HTTP_BODY_LENGTH;
        r->content_length = c->cl;
    }
    r->host = c->host;
    r->host_len = c->host_len;
    if (minor == 1) {
        r->keep_alive = !(c->conn & C_CLOSE);
        r->expect_continue = c->expect100;
        r->upgrade = (c->conn & C_UPGRADE) && c->upgrade_field;
    } else {
        r->keep_alive = (c->conn & (C_KEEPALIVE | C_CLOSE)) == C_KEEPALIVE;
    }
    return rc;
}

ssize_t tide_http_parse_request(const char *buf, size_t len, tide_http_request *req)
{
    hp c;
    ssize_t rc;

    if (!buf || !req)
        return -EINVAL;
    hp_init(&c, buf, len, req->max_head ? req->max_head : TIDE_HTTP_MAX_HEAD_DEFAULT);
    c.request = 1;
    c.semantics = 1;
    c.h = req->headers;
    c.cap = req->headers ? req->header_cap : 0;
    req->body = TIDE_HTTP_BODY_NONE;
    req->content_length = 0;
    req->keep_alive = 0;
    req->expect_continue = 0;
    req->upgrade = 0;
    req->host = NULL;
    req->host_len = 0;
    req->error_status = 0;
    req->error = NULL;
    rc = request_head(&c, req);
    req->num_headers = c.n;
    if (rc == -EBADMSG) {
        req->error_status = c.status;
        req->error = c.error;
        req->keep_alive = 0;
    }
    return rc;
}

/* ------------------------------------------------------------ responses */

void tide_http_response_init(tide_http_response *resp, tide_http_header *headers, size_t header_cap)
{
    if (!resp)
        return;
    memset(resp, 0, sizeof *resp);
    resp->headers = headers;
    resp->header_cap = headers ? header_cap : 0;
}

static ssize_t response_head(hp *c, tide_http_response *r)
{
    const char *p = c->start, *end = c->end;
    ssize_t rc;
    int minor, st = 0;

    if ((rc = parse_version(c, &p, &minor)) < 0)
        return rc;
    if (p == end)
        return more(c);
    if (*p != ' ')
        return fail(c, 400, "invalid status line");
    p++;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return more(c);
        if (!is_digit((unsigned char)*p))
            return fail(c, 400, "invalid status code");
        st = st * 10 + (*p - '0');
    }
    if (p == end)
        return more(c);
    r->reason = p;
    if (*p == ' ') {
        r->reason = ++p;
        for (;;) {
            p = scan_ctl(p, end);
            if (p == end)
                return more(c);
            if (*p != '\t')
                break;
            p++;
        }
    }
    r->reason_len = (size_t)(p - r->reason);
    if ((rc = parse_eol(c, &p,
                        is_digit((unsigned char)*p) ? "invalid status code"
                                                    : "invalid reason phrase")) < 0)
        return rc;
    if (minor > 1)
        return fail(c, 505, "HTTP version not supported");
    if (st < 100 || st > 599)
        return fail(c, 400, "status code out of range");
    r->version_minor = minor;
    r->status = st;

    rc = parse_fields(c, p);
    if (rc < 0)
        return rc;

    if (c->has_te) {
        if (c->has_cl)
            return fail(c, 400, "both Content-Length and Transfer-Encoding");
        if (minor == 0)
            return fail(c, 400, "Transfer-Encoding in an HTTP/1.0 response");
        if (c->te_n == 0)
            return fail(c, 400, "empty Transfer-Encoding");
        if (c->te_chunked > 1)
            return fail(c, 400, "chunked applied more than once");
    }
    if ((r->flags & TIDE_HTTP_RESP_TO_HEAD) || st < 200 || st == 204 || st == 304 ||
        ((r->flags & TIDE_HTTP_RESP_TO_CONNECT) && st < 300)) {
        r->body = TIDE_HTTP_BODY_NONE;
    } else if (c->has_te) {
        /* RFC 9112 6.3: chunked not last in a response: read until close. */
        r->body = c->te_last_chunked ? TIDE_HTTP_BODY_CHUNKED : TIDE_HTTP_BODY_UNTIL_CLOSE;
    } else if (c->has_cl) {
        r->body = TIDE_HTTP_BODY_LENGTH;
        r->content_length = c->cl;
    } else {
        r->body = TIDE_HTTP_BODY_UNTIL_CLOSE;
    }
    if (minor == 1)
        r->keep_alive = !(c->conn & C_CLOSE);
    else
        r->keep_alive = (c->conn & (C_KEEPALIVE | C_CLOSE)) == C_KEEPALIVE;
    if (r->body == TIDE_HTTP_BODY_UNTIL_CLOSE)
        r->keep_alive = 0;
    r->upgrade = st == 101 && c->upgrade_field;
    return rc;
}

ssize_t tide_http_parse_response(const char *buf, size_t len, tide_http_response *resp)
{
    hp c;
    ssize_t rc;

    if (!buf || !resp)
        return -EINVAL;
    hp_init(&c, buf, len, resp->max_head ? resp->max_head : TIDE_HTTP_MAX_HEAD_DEFAULT);
    c.semantics = 1;
    c.h = resp->headers;
    c.cap = resp->headers ? resp->header_cap : 0;
    resp->body = TIDE_HTTP_BODY_NONE;
    resp->content_length = 0;
    resp->keep_alive = 0;
    resp->upgrade = 0;
    resp->error_status = 0;
    resp->error = NULL;
    rc = response_head(&c, resp);
    resp->num_headers = c.n;
    if (rc == -EBADMSG) {
        resp->error_status = 502;
        resp->error = c.error;
    }
    return rc;
}

/* --------------------------------------------------------------- fields */

ssize_t tide_http_parse_fields(const char *buf, size_t len, tide_http_header *headers, size_t cap,
                               size_t *n, const char **error)
{
    hp c;
    ssize_t rc;

    if (!buf || !n)
        return -EINVAL;
    hp_init(&c, buf, len, (size_t)-1);
    c.h = headers;
    c.cap = headers ? cap : 0;
    rc = parse_fields(&c, buf);
    *n = c.n;
    if (error)
        *error = rc == -EBADMSG ? c.error : NULL;
    return rc;
}

ssize_t tide_http_header_find(const tide_http_header *headers, size_t n, size_t from,
                              const char *name)
{
    size_t nl;

    if (!headers || !name)
        return -1;
    nl = strlen(name);
    for (size_t i = from; i < n; i++)
        if (headers[i].name_len == nl) {
            size_t k = 0;
            while (k < nl &&
                   lower((unsigned char)headers[i].name[k]) == lower((unsigned char)name[k]))
                k++;
            if (k == nl)
                return (ssize_t)i;
        }
    return -1;
}

const char *tide_http_header_get(const tide_http_header *headers, size_t n, const char *name,
                                 size_t *len)
{
    ssize_t i = tide_http_header_find(headers, n, 0, name);

    if (i < 0) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = headers[i].value_len;
    return headers[i].value;
}

int tide_http_list_has(const char *v, size_t len, const char *token)
{
    size_t i = 0, tl;

    if (!v || !token)
        return 0;
    tl = strlen(token);
    while (i < len) {
        size_t b, e, k;
        while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ','))
            i++;
        b = i;
        while (i < len && v[i] != ',')
            i++;
        e = i;
        while (e > b && is_ows((unsigned char)v[e - 1]))
            e--;
        if (e - b != tl)
            continue;
        for (k = 0; k < tl; k++)
            if (lower((unsigned char)v[b + k]) != lower((unsigned char)token[k]))
                break;
        if (k == tl)
            return 1;
    }
    return 0;
}

const char *tide_http_reason(int status)
{
    /* clang-format off */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
    /* clang-format on */
}

const char *tide_http_method_name(tide_http_method m)
{
    /* clang-format off */
    switch (m) {
    case TIDE_HTTP_GET: return "GET";
    case TIDE_HTTP_HEAD: return "HEAD";
    case TIDE_HTTP_POST: return "POST";
    case TIDE_HTTP_PUT: return "PUT";
    case TIDE_HTTP_DELETE: return "DELETE";
    case TIDE_HTTP_CONNECT: return "CONNECT";
    case TIDE_HTTP_OPTIONS: return "OPTIONS";
    case TIDE_HTTP_TRACE: return "TRACE";
    case TIDE_HTTP_PATCH: return "PATCH";
    case TIDE_HTTP_OTHER:
    default: return "";
    }
    /* clang-format on */
}

/* ------------------------------------------------------- chunked bodies */

/*
 * chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 * ext-val      = token / quoted-string
 * A state per position; one byte at a time outside chunk data.
 */
enum {
    CH_SIZE0 = 0,    /* first hex digit of a chunk size */
    CH_SIZE,         /* more digits, BWS, ';' or CR */
    CH_SIZE_BWS,     /* after the size or a token value, and BWS: BWS or ';' */
    CH_EXT_PRE,      /* after ';': BWS or the name */
    CH_EXT_NAME,     /* in a name: tchar, BWS, '=', ';', CR */
    CH_EXT_NAME_BWS, /* after a name and BWS: BWS, '=' or ';' */
    CH_EXT_EQ,       /* after '=': BWS or the value */
    CH_EXT_TOK,      /* in a token value: tchar, BWS, ';', CR */
    CH_EXT_QS,       /* in a quoted string */
    CH_EXT_QS_ESC,   /* after a backslash in it */
    CH_EXT_AFTER,    /* after a quoted value: BWS, ';', CR */
    CH_SIZE_LF,      /* after the CR of a size line */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_START, /* start of a trailer line (or of the final CRLF) */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR
};

void tide_http_chunked_opts_init(tide_http_chunked_opts *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

void tide_http_chunked_init(tide_http_chunked *d, const tide_http_chunked_opts *o)
{
    if (!d)
        return;
    memset(d, 0, sizeof *d);
    d->state = CH_SIZE0;
    d->max_line = o && o->max_line ? o->max_line : TIDE_HTTP_CHUNK_LINE_DEFAULT;
    d->max_trailers = o && o->max_trailers ? o->max_trailers : TIDE_HTTP_TRAILERS_DEFAULT;
    if (o && o->trailer_buf) {
        d->trailer_buf = o->trailer_buf;
        d->trailer_cap = o->trailer_cap;
    }
}

/* Bytes allowed in a field value or a quoted-pair: HTAB, SP, VCHAR, obs-text. */
static inline int is_vchar_ws(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

int tide_http_chunked_decode(tide_http_chunked *d, const char *in, size_t in_len, size_t *consumed,
                             char *out, size_t out_cap, size_t *produced)
{
    size_t i = 0, o = 0;
    int st;

    if (!d || !consumed || !produced || (!in && in_len))
        return -EINVAL;
    *consumed = 0;
    *produced = 0;
    st = d->state;
    if (st == CH_ERROR)
        return -EBADMSG;
    if (st == CH_DONE)
        return 1;

#define CH_FAIL(why)                                                                               \
    do {                                                                                           \
        d->error = (why);                                                                          \
        st = CH_ERROR;                                                                             \
        goto out;                                                                                  \
    } while (0)

    while (i < in_len) {
        unsigned char ch;

        if (st == CH_DATA) {
            size_t n = in_len - i;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            if (out) {
                if (n > out_cap - o)
                    n = out_cap - o;
                if (n == 0)
                    goto out; /* out is full */
                memmove(out + o, in + i, n);
            }
            i += n;
            o += n;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0)
                st = CH_DATA_CR;
            continue;
        }

        ch = (unsigned char)in[i++];
        if (st <= CH_EXT_AFTER) {
            /* The size line, until its CR. */
            if (ch != '\r' && ++d->line > d->max_line)
                CH_FAIL("chunk-size line longer than max_line");
        } else if (st >= CH_TR_START && st <= CH_FINAL_LF) {
            if (d->trailer_len == d->max_trailers)
                CH_FAIL("trailer section larger than max_trailers");
            if (d->trailer_buf) {
                if (d->trailer_len == d->trailer_cap)
                    CH_FAIL("trailer section larger than trailer_cap");
                d->trailer_buf[d->trailer_len] = (char)ch;
            }
            d->trailer_len++;
        }

        switch (st) {
        case CH_SIZE0:
        case CH_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (d->remaining >> 59)
                    CH_FAIL("chunk size too large");
                d->remaining = d->remaining << 4 | (unsigned)h;
                st = CH_SIZE;
                break;
            }
            if (st == CH_SIZE0)
                CH_FAIL(ch == '\r' ? "empty chunk size" : "invalid chunk size");
            if (ch == '\r')
                st = CH_SIZE_LF;
            else if (ch == ';')
                st = CH_EXT_PRE;
            else if (is_ows(ch))
                st = CH_SIZE_BWS;
            else
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid chunk size");
            break;
        }
        case CH_SIZE_BWS:
        case CH_EXT_NAME_BWS:
        case CH_EXT_AFTER:
            if (ch == ';')
                st = CH_EXT_PRE;
            else if (ch == '=' && st == CH_EXT_NAME_BWS)
                st = CH_EXT_EQ;
            else if (ch == '\r' && st == CH_EXT_AFTER)
                st = CH_SIZE_LF;
            else if (is_ows(ch))
                st = st == CH_EXT_NAME_BWS ? CH_EXT_NAME_BWS : CH_SIZE_BWS;
            else
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case CH_EXT_PRE:
            if (tchar[ch])
                st = CH_EXT_NAME;
            else if (!is_ows(ch))
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case CH_EXT_NAME:
            if (tchar[ch])
                break;
            if (ch == '=')
                st = CH_EXT_EQ;
            else if (ch == ';')
                st = CH_EXT_PRE;
            else if (ch == '\r')
                st = CH_SIZE_LF;
            else if (is_ows(ch))
                st = CH_EXT_NAME_BWS;
            else
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case CH_EXT_EQ:
            if (tchar[ch])
                st = CH_EXT_TOK;
            else if (ch == '"')
                st = CH_EXT_QS;
            else if (!is_ows(ch))
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case CH_EXT_TOK:
            if (tchar[ch])
                break;
            if (ch == ';')
                st = CH_EXT_PRE;
            else if (ch == '\r')
                st = CH_SIZE_LF;
            else if (is_ows(ch))
                st = CH_SIZE_BWS;
            else
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case CH_EXT_QS:
            if (ch == '"')
                st = CH_EXT_AFTER;
            else if (ch == '\\')
                st = CH_EXT_QS_ESC;
            else if (!is_vchar_ws(ch))
                CH_FAIL(ch == '\n' ? "bare LF" : "control character in chunk extension");
            break;
        case CH_EXT_QS_ESC:
            if (!is_vchar_ws(ch))
                CH_FAIL(ch == '\n' ? "bare LF" : "control character in chunk extension");
            st = CH_EXT_QS;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                CH_FAIL("bare CR");
            d->line = 0;
            st = d->remaining ? CH_DATA : CH_TR_START;
            break;
        case CH_DATA_CR:
            if (ch != '\r')
                CH_FAIL(ch == '\n' ? "bare LF" : "chunk data longer than its size");
            st = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                CH_FAIL("bare CR");
            st = CH_SIZE0;
            break;
        case CH_TR_START:
            if (ch == '\r')
                st = CH_FINAL_LF;
            else if (tchar[ch])
                st = CH_TR_NAME;
            else if (is_ows(ch))
                CH_FAIL("line folding (obs-fold) in trailers");
            else
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid character in trailer field name");
            break;
        case CH_TR_NAME:
            if (tchar[ch])
                break;
            if (ch == ':')
                st = CH_TR_VALUE;
            else if (is_ows(ch))
                CH_FAIL("whitespace between field name and colon");
            else
                CH_FAIL(ch == '\n' ? "bare LF" : "invalid character in trailer field name");
            break;
        case CH_TR_VALUE:
            if (ch == '\r')
                st = CH_TR_LF;
            else if (!is_vchar_ws(ch))
                CH_FAIL(ch == '\n' ? "bare LF" : "control character in trailer field value");
            break;
        case CH_TR_LF:
            if (ch != '\n')
                CH_FAIL("bare CR");
            st = CH_TR_START;
            break;
        case CH_FINAL_LF:
            if (ch != '\n')
                CH_FAIL("bare CR");
            st = CH_DONE;
            goto out;
        default:
            CH_FAIL("decoder state corrupted");
        }
    }
#undef CH_FAIL
out:
    d->state = st;
    *consumed = i;
    *produced = o;
    if (st == CH_ERROR)
        return -EBADMSG;
    if (st == CH_DONE) {
        d->done = 1;
        return 1;
    }
    return 0;
}
