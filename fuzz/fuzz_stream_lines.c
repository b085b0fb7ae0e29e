/*
 * libFuzzer harness: tide_stream_readuntil / tide_stream_readline.
 *
 * The input (after an options byte) goes through a socketpair, written by
 * one task in pseudo-random pieces, and is read back by another through a
 * stream with a small limit, line by line ("\n" or "\r\n" as delimiter,
 * into a small buffer).  A line longer than the buffer (-ENOBUFS) or than
 * the limit (-EMSGSIZE) is taken with tide_stream_read instead.  Checked:
 * every piece readuntil returns ends with the delimiter (but the last,
 * before end of file), no byte is lost, duplicated or reordered.
 */
#include <tide.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

typedef struct fz {
    const uint8_t *data;
    size_t size;
    unsigned opt;
    int fds[2];
    char *out;
    size_t outn;
} fz;

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int writer(void *arg)
{
    fz *z = arg;
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ z->size ^ ((uint64_t)z->opt << 40);
    size_t pos = 0;

    while (pos < z->size) {
        size_t piece = 1 + (size_t)(next(&seed) % 64);
        ssize_t w;
        if (piece > z->size - pos)
            piece = z->size - pos;
        w = tide_write(z->fds[1], z->data + pos, piece);
        CHECK(w == (ssize_t)piece);
        pos += piece;
        if (next(&seed) & 1)
            tide_sleep(0); /* let the reader see a partial line */
    }
    CHECK(tide_close(z->fds[1]) == 0);
    return 0;
}

static int reader(void *arg)
{
    fz *z = arg;
    tide_stream_opts o;
    tide_stream *s;
    const char *delim = z->opt & 0x10 ? "\r\n" : "\n";
    size_t dlen = strlen(delim), cap = (size_t)8 << ((z->opt >> 2) & 3);
    char buf[64];
    int last = 0;

    tide_stream_opts_init(&o);
    o.limit = (size_t)16 << (z->opt & 3);
    CHECK(tide_stream_open(&s, z->fds[0], &o) == 0);
    for (;;) {
        ssize_t n = tide_stream_readuntil(s, delim, dlen, buf, cap);
        if (n == -ENOBUFS || n == -EMSGSIZE) {
            n = tide_stream_read(s, buf, 1 + (z->opt >> 5));
            CHECK(n > 0);
            CHECK(z->outn + (size_t)n <= z->size);
            memcpy(z->out + z->outn, buf, (size_t)n);
            z->outn += (size_t)n;
            continue;
        }
        CHECK(n >= 0 && (size_t)n <= cap);
        if (n == 0)
            break;
        CHECK(!last); /* only the last piece may lack the delimiter */
        if ((size_t)n < dlen || memcmp(buf + n - dlen, delim, dlen) != 0)
            last = 1;
        CHECK(z->outn + (size_t)n <= z->size);
        memcpy(z->out + z->outn, buf, (size_t)n);
        z->outn += (size_t)n;
    }
    CHECK(tide_stream_close(s) == 0);
    return 0;
}

static int fz_main(void *arg)
{
    tide_task *t[2];

    CHECK(tide_create_task(&t[0], reader, arg) == 0);
    CHECK(tide_create_task(&t[1], writer, arg) == 0);
    CHECK(tide_gather(t, 2, NULL) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz z;

    if (size < 1 || size > 4096)
        return 0;
    memset(&z, 0, sizeof z);
    z.opt = data[0];
    z.data = data + 1;
    z.size = size - 1;
    z.out = malloc(z.size + 1);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, z.fds) == 0);
    CHECK(tide_run(fz_main, &z) == 0);
    CHECK(z.outn == z.size && memcmp(z.out, z.data, z.size) == 0);
    free(z.out);
    return 0;
}
