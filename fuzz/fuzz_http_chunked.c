/*
 * libFuzzer harness: the chunked decoder on arbitrary bytes.
 *
 * The first byte picks the options (max_line, max_trailers, trailer buffer,
 * output bound) and seeds the splits; the rest is the body.  It is decoded
 * at once into a buffer, then again in pieces of pseudo-random sizes with a
 * pseudo-random output bound, in place or not, or with the data dropped:
 * every way must give the same return, consumed count, data, trailer bytes
 * and error.  Also checked: produced <= consumed, the total counter, a done
 * body ends with CRLF, and the trailer section it kept parses as fields.
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

typedef struct result {
    int rc;
    size_t consumed, produced, trailer_len;
    uint64_t total;
    const char *error;
    char *out;
    char trailers[256];
} result;

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* mode 0: at once; 1: random pieces; 2: random pieces, in place; 3: one
 * byte at a time, data dropped. */
static void decode(const char *data, size_t size, unsigned opt, int mode, uint64_t seed,
                   result *res)
{
    tide_http_chunked_opts o;
    tide_http_chunked d;
    char *in = malloc(size ? size : 1);
    size_t pos = 0;

    memcpy(in, data, size);
    memset(res, 0, sizeof *res - sizeof res->trailers);
    res->out = malloc(size ? size : 1);
    tide_http_chunked_opts_init(&o);
    o.max_line = opt & 1 ? 8 : 0;
    o.max_trailers = opt & 2 ? 24 : 0;
    if (opt & 4) {
        o.trailer_buf = res->trailers;
        o.trailer_cap = opt & 8 ? 16 : sizeof res->trailers;
    }
    tide_http_chunked_init(&d, &o);
    for (;;) {
        size_t piece = size - pos, c, p, cap;
        char *out;
        if (mode == 1 || mode == 2)
            piece = piece ? 1 + (size_t)(next(&seed) % (piece < 40 ? piece : 40)) : 0;
        else if (mode == 3)
            piece = piece ? 1 : 0;
        out = mode == 2 ? in + pos : res->out + res->produced;
        cap = mode == 2 ? piece : size - res->produced;
        if (mode == 1)
            cap = 1 + (size_t)(next(&seed) % 16);
        if (mode == 3)
            out = NULL;
        res->rc = tide_http_chunked_decode(&d, in + pos, piece, &c, out, cap, &p);
        CHECK(c <= piece && p <= c);
        if (out)
            CHECK(p <= cap);
        if (mode == 2)
            memmove(res->out + res->produced, out, p);
        if (mode == 3 && p)
            memcpy(res->out + res->produced, in + pos, p); /* 1 byte: the data byte */
        pos += c;
        res->produced += p;
        if (res->rc != 0)
            break;
        if (pos == size && c == 0 && p == 0)
            break;
    }
    res->consumed = pos;
    res->total = d.total;
    res->error = d.error;
    res->trailer_len = d.trailer_len;
    CHECK(d.done == (res->rc == 1));
    CHECK(res->total == res->produced);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    result a, b;
    unsigned opt;
    uint64_t seed;

    if (size < 1)
        return 0;
    opt = data[0];
    seed = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)opt << 32) ^ size;
    data++;
    size--;

    decode((const char *)data, size, opt, 0, seed, &a);
    CHECK(a.rc == 0 || a.rc == 1 || a.rc == -EBADMSG);
    if (a.rc == 0)
        CHECK(a.consumed == size);
    if (a.rc == -EBADMSG)
        CHECK(a.error && *a.error);
    if (a.rc == 1) {
        CHECK(a.consumed >= 5 && !memcmp(data + a.consumed - 2, "\r\n", 2));
        CHECK(a.trailer_len >= 2);
        if (opt & 4) {
            tide_http_header h[64];
            size_t n;
            const char *err;
            ssize_t r = tide_http_parse_fields(a.trailers, a.trailer_len, h, 64, &n, &err);
            CHECK(r == (ssize_t)a.trailer_len || (r == -EBADMSG && n == 64));
        }
    }
    for (int mode = 1; mode <= 3; mode++) {
        decode((const char *)data, size, opt, mode, seed + (uint64_t)mode, &b);
        CHECK(b.rc == a.rc && b.consumed == a.consumed && b.produced == a.produced);
        CHECK(!memcmp(a.out, b.out, a.produced));
        CHECK(b.trailer_len == a.trailer_len);
        if (opt & 4)
            CHECK(!memcmp(a.trailers, b.trailers, a.trailer_len));
        CHECK((a.error == NULL) == (b.error == NULL));
        if (a.error)
            CHECK(!strcmp(a.error, b.error));
        free(b.out);
    }
    free(a.out);
    return 0;
}
