/*
 * libFuzzer harness: the HTTP server (src/http_server.c) on what a client
 * sends.  The input goes to a tide_http_serve server over loopback TCP in
 * pseudo-random pieces, then the client shuts its write side and reads
 * until the server closes.  The handler reads bodies (echoes them), streams
 * chunked answers, sends nothing (500) or takes the connection over, by
 * the path's first letter.  Small limits (512-byte heads, 8 fields, 2 KiB
 * bodies, 256 bytes drained) so the limit paths are reached.  Checked:
 * no crash or sanitizer report, no leak, and everything the server sent
 * parses as a sequence of HTTP/1.1 responses.
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

typedef struct fz {
    const uint8_t *data;
    size_t size;
    int port;
    char *out;
    size_t outn, outcap;
} fz;

static int handler(tide_http_exchange *x, void *arg)
{
    const tide_http_request *r = tide_http_exchange_request(x);
    char buf[300];
    ssize_t n;
    (void)arg;

    switch (r->path_len > 1 ? r->path[1] : 'e') {
    case 's': /* streamed */
        if (tide_http_begin(x, 200, NULL, 0) < 0)
            return -1;
        while ((n = tide_http_read_body(x, buf, sizeof buf)) > 0)
            if (tide_http_write(x, buf, (size_t)n) < 0)
                return -1;
        return tide_http_end(x);
    case 'n': /* no answer: 500 */
        return 0;
    case 't': { /* taken over: echo what follows, then close */
        tide_stream *s = tide_http_takeover(x);
        if (!s)
            return -1;
        tide_stream_write(s, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 36);
        tide_stream_close(s);
        return 0;
    }
    case 'i': /* body ignored: drained or closed */
        return tide_http_respond(x, 200, NULL, 0, "i", 1);
    default: { /* echo */
        char *body = NULL;
        n = tide_http_read_body_all(x, &body);
        if (n < 0)
            return (int)n;
        n = tide_http_respond(x, 200, NULL, 0, body, (size_t)n);
        free(body);
        return (int)n;
    }
    }
}

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Checks that out[0..n) is a sequence of responses (the last one may be
 * cut short where the server closed). */
static void check_responses(const char *out, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        tide_http_header h[32];
        tide_http_response pr;
        ssize_t k;

        CHECK(n - pos >= 9 || memcmp(out + pos, "HTTP/1.1 ", n - pos) == 0);
        if (n - pos < 9)
            return;
        CHECK(memcmp(out + pos, "HTTP/1.1 ", 9) == 0);
        tide_http_response_init(&pr, h, 32);
        k = tide_http_parse_response(out + pos, n - pos, &pr);
        CHECK(k > 0 || k == -EAGAIN);
        if (k < 0)
            return;
        pos += (size_t)k;
        if (pr.status == 101)
            return; /* what follows is the taken-over connection's */
        if (pr.body == TIDE_HTTP_BODY_LENGTH) {
            /* A HEAD answer has the length and no body: the next response
             * follows at once (this checker does not know which request was
             * a HEAD, so it goes by what follows). */
            if (pr.content_length > 0 && n - pos >= 9 && memcmp(out + pos, "HTTP/1.1 ", 9) == 0 &&
                (pr.content_length > n - pos - 9 ||
                 memcmp(out + pos + pr.content_length, "HTTP/1.1 ", 9) != 0))
                continue;
            if (pr.content_length > n - pos)
                return; /* cut short: a HEAD answer or the close */
            pos += (size_t)pr.content_length;
        } else if (pr.body == TIDE_HTTP_BODY_CHUNKED) {
            tide_http_chunked d;
            size_t used = 0, got = 0;
            int rc;
            tide_http_chunked_init(&d, NULL);
            rc = tide_http_chunked_decode(&d, out + pos, n - pos, &used, NULL, 0, &got);
            CHECK(rc >= 0);
            if (rc == 0)
                return;
            pos += used;
        } else if (pr.body == TIDE_HTTP_BODY_UNTIL_CLOSE) {
            return;
        }
    }
}

static int client(void *arg)
{
    fz *z = arg;
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ z->size;
    tide_stream *s;
    size_t pos = 0;

    CHECK(tide_open_connection("127.0.0.1", z->port, &s) == 0);
    while (pos < z->size) {
        size_t piece = 1 + (size_t)(next(&seed) % 200);
        if (piece > z->size - pos)
            piece = z->size - pos;
        if (tide_stream_write(s, z->data + pos, piece) < 0)
            break; /* the server closed early */
        pos += piece;
        if (next(&seed) & 1)
            tide_sleep(0);
    }
    (void)tide_stream_write_eof(s);
    for (;;) {
        ssize_t n;
        if (z->outcap - z->outn < 4096) {
            z->outcap = z->outcap ? z->outcap * 2 : 16384;
            z->out = realloc(z->out, z->outcap);
            CHECK(z->out);
        }
        n = tide_stream_read(s, z->out + z->outn, z->outcap - z->outn);
        if (n <= 0)
            break;
        z->outn += (size_t)n;
    }
    tide_stream_close(s);
    return 0;
}

static int fz_main(void *arg)
{
    fz *z = arg;
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_task *t;

    tide_http_server_opts_init(&o);
    o.max_head = 512;
    o.max_headers = 8;
    o.max_body = 2048;
    o.drain_max = 256;
    o.idle_timeout_ms = 2000;
    o.head_timeout_ms = 2000;
    o.body_timeout_ms = 2000;
    CHECK(tide_http_serve(NULL, 0, handler, NULL, &o, &srv) == 0);
    z->port = tide_http_server_port(srv);
    CHECK(tide_create_task(&t, client, z) == 0);
    CHECK(tide_await(t) == 0);
    CHECK(tide_http_server_close(srv, TIDE_SERVER_WAIT) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz z;

    if (size > 8192)
        return 0;
    memset(&z, 0, sizeof z);
    z.data = data;
    z.size = size;
    CHECK(tide_run(fz_main, &z) == 0);
    check_responses(z.out, z.outn);
    free(z.out);
    return 0;
}
