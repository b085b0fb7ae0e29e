/*
 * Tests of the stream transport interface (src/transport.h) and of what
 * streams do with it: a counting transport over memory shows how many
 * reads a stream makes (one fill serves many small reads) and that an idle
 * stream holds no buffer; a transport layered on another stream (an XOR
 * "cipher", standing in for TLS over any stream) carries 1 MiB both ways
 * with backpressure, half-close and close; the steady state of an echo
 * makes no allocation.  White-box: includes the private headers.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "net_util.h"
#include "transport.h"

#define MIB (1024 * 1024)

static int spawn(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task(t, fn, arg);
}

/* Counts what tide asks of the allocator. */
static unsigned long g_allocs;

static void *c_malloc(size_t n)
{
    g_allocs++;
    return malloc(n);
}

static void *c_realloc(void *p, size_t n)
{
    g_allocs++;
    return realloc(p, n);
}

static void *c_calloc(size_t n, size_t size)
{
    g_allocs++;
    return calloc(n, size);
}

/* ------------------------------------------ a counting memory transport */

/* Serves bytes fed by the test; -EAGAIN when there are none (its wait
 * yields until some come).  Counts the read calls and their sizes. */
typedef struct mem {
    tide__transport base;
    char data[256 * 1024];
    size_t len, pos;
    int eof;
    unsigned reads, empty_reads;
    size_t last_ask, max_ask;
    int closed, freed;
} mem;

static ssize_t mem_read(tide__transport *t, void *buf, size_t len, unsigned *wait)
{
    mem *m = (mem *)t;
    size_t n = m->len - m->pos;
    m->reads++;
    m->last_ask = len;
    if (len > m->max_ask)
        m->max_ask = len;
    if (!n) {
        m->empty_reads++;
        if (m->eof)
            return 0;
        *wait = TIDE__WANT_IN;
        return -EAGAIN;
    }
    if (n > len)
        n = len;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static ssize_t mem_writev(tide__transport *t, const struct iovec *iov, int iovcnt, unsigned *wait)
{
    size_t n = 0;
    (void)t;
    (void)wait;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return (ssize_t)n; /* a sink */
}

static int mem_wait(tide__transport *t, tide_task *cur, unsigned wait)
{
    mem *m = (mem *)t;
    (void)cur;
    (void)wait;
    while (m->pos == m->len && !m->eof && !m->closed) {
        int rc = tide_sleep(1);
        if (rc < 0)
            return rc;
    }
    return m->closed ? -EBADF : 0;
}

static int mem_arm(tide__transport *t, unsigned wait, tide__transport_cb cb, void *arg)
{
    (void)t;
    (void)cb;
    (void)arg;
    return wait ? -EALREADY : 0;
}

static int mem_shutdown(tide__transport *t, unsigned *wait)
{
    (void)t;
    (void)wait;
    return 0;
}

static void mem_close(tide__transport *t)
{
    ((mem *)t)->closed = 1;
}

static void mem_free(tide__transport *t)
{
    ((mem *)t)->freed = 1;
}

static const tide__transport_ops mem_ops = {
    .name = "mem",
    .read = mem_read,
    .writev = mem_writev,
    .wait = mem_wait,
    .arm = mem_arm,
    .shutdown = mem_shutdown,
    .close = mem_close,
    .free = mem_free,
};

typedef struct cnt {
    mem m;
    unsigned reads_for_64k, reads_small_line;
    size_t first_ask, direct_ask, held_busy, held_idle, held_after_line;
    ssize_t got, direct, line, fd_rc, addr_rc;
    int ok;
} cnt;

static int cnt_main(void *arg)
{
    cnt *c = arg;
    tide_stream *s;
    char buf[100 * 1024];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    c->m.base.ops = &mem_ops;
    if (tide__stream_open_transport(&s, &c->m.base, NULL) < 0)
        return -1;
    c->fd_rc = tide_stream_fd(s);
    c->addr_rc = tide_stream_peer_addr(s, (struct sockaddr *)&ss, &len);
    /* 64 KiB arrive; eight 8 KiB reads take them */
    tt_pat_fill(c->m.data, 0, 64 * 1024);
    c->m.len = 64 * 1024;
    c->ok = 1;
    for (int i = 0; i < 8; i++) {
        ssize_t n = tide_stream_read(s, buf, 8192);
        if (n != 8192 || tt_pat_check(buf, (uint64_t)i * 8192, 8192) != -1)
            c->ok = 0;
        if (i == 0) {
            c->first_ask = c->m.last_ask;
            c->held_busy = tide__stream_held(s);
        }
        c->got += n;
    }
    c->reads_for_64k = c->m.reads;
    c->held_idle = tide__stream_held(s); /* empty: nothing held */
    /* a big read into an empty buffer goes straight to the caller */
    memcpy(c->m.data + c->m.len, "0123456789", 10);
    c->m.len += 10;
    c->direct = tide_stream_read(s, buf, sizeof buf);
    c->direct_ask = c->m.last_ask;
    /* small lines: one fill, many lines */
    unsigned r0 = c->m.reads;
    for (int i = 0; i < 100; i++) {
        memcpy(c->m.data + c->m.len, "a short line\n", 13);
        c->m.len += 13;
    }
    for (int i = 0; i < 100; i++)
        if (tide_stream_readline(s, buf, sizeof buf) != 13)
            c->ok = 0;
    c->reads_small_line = c->m.reads - r0;
    c->held_after_line = tide__stream_held(s);
    c->m.eof = 1;
    c->line = tide_stream_readline(s, buf, sizeof buf);
    tide_stream_close(s);
    return 0;
}

static void test_fill_reads_big(void **state)
{
    (void)state;
    cnt *c = calloc(1, sizeof *c);
    TT_RUN(cnt_main, c);
    assert_int_equal(c->fd_rc, -ENOTSOCK);
    assert_int_equal(c->addr_rc, -ENOTSOCK);
    assert_true(c->ok);
    assert_int_equal(c->got, 64 * 1024);
    assert_int_equal(c->first_ask, 64 * 1024); /* a fill asks for the whole limit */
    assert_int_equal(c->reads_for_64k, 1);     /* 8 reads, 1 transport read */
    assert_int_equal(c->held_busy, 64 * 1024);
    assert_int_equal(c->held_idle, 0);
    assert_int_equal(c->direct, 10);
    assert_int_equal(c->direct_ask, 100 * 1024);
    assert_int_equal(c->reads_small_line, 1);
    assert_int_equal(c->held_after_line, 0);
    assert_int_equal(c->line, 0);
    assert_true(c->m.closed);
    assert_true(c->m.freed);
    free(c);
}

/* ------------------------------------------- a transport over a stream */

/* XOR with a key byte: stands in for TLS over any stream.  Reads and
 * writes go to the inner stream's non-blocking calls, waits to its waits;
 * writes go through a small scratch buffer, so they are often short. */
typedef struct xort {
    tide__transport base;
    tide_stream *inner;
    uint8_t key;
    char scratch[16 * 1024];
} xort;

static ssize_t x_read(tide__transport *t, void *buf, size_t len, unsigned *wait)
{
    xort *x = (xort *)t;
    ssize_t n = tide__stream_read_nowait(x->inner, buf, len, wait);
    for (ssize_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] ^= x->key;
    return n;
}

static ssize_t x_writev(tide__transport *t, const struct iovec *iov, int iovcnt, unsigned *wait)
{
    xort *x = (xort *)t;
    size_t n = 0;
    for (int i = 0; i < iovcnt && n < sizeof x->scratch; i++) {
        size_t k = iov[i].iov_len;
        if (k > sizeof x->scratch - n)
            k = sizeof x->scratch - n;
        for (size_t j = 0; j < k; j++)
            x->scratch[n + j] = (char)(((const uint8_t *)iov[i].iov_base)[j] ^ x->key);
        n += k;
    }
    struct iovec v = {x->scratch, n};
    ssize_t w = tide__stream_writev_nowait(x->inner, &v, 1, wait);
    return w < 0 ? w : (ssize_t)n;
}

static int x_wait(tide__transport *t, tide_task *cur, unsigned wait)
{
    /* x stays valid after the wait even if the stream was closed
     * meanwhile: free comes only once nobody is inside. */
    return tide__stream_wait(((xort *)t)->inner, cur, wait);
}

static int x_arm(tide__transport *t, unsigned wait, tide__transport_cb cb, void *arg)
{
    return tide__stream_arm(((xort *)t)->inner, wait, cb, arg);
}

static int x_shutdown(tide__transport *t, unsigned *wait)
{
    (void)wait;
    return tide_stream_write_eof(((xort *)t)->inner);
}

static void x_close(tide__transport *t)
{
    xort *x = (xort *)t;
    tide_stream_close(x->inner); /* flushes what the layer queued */
    x->inner = NULL;
}

static void x_free(tide__transport *t)
{
    free(t);
}

static int x_address(tide__transport *t, int peer, struct sockaddr *a, socklen_t *len)
{
    xort *x = (xort *)t;
    return peer ? tide_stream_peer_addr(x->inner, a, len)
                : tide_stream_local_addr(x->inner, a, len);
}

static const tide__transport_ops xor_ops = {
    .name = "xor",
    .read = x_read,
    .writev = x_writev,
    .wait = x_wait,
    .arm = x_arm,
    .shutdown = x_shutdown,
    .close = x_close,
    .free = x_free,
    .address = x_address,
};

/* A stream over XOR over a stream over fd. */
static int open_xor(tide_stream **s, int fd, uint8_t key)
{
    xort *x = calloc(1, sizeof *x);
    int rc;
    if (!x)
        return -ENOMEM;
    x->base.ops = &xor_ops;
    x->key = key;
    rc = tide_stream_open(&x->inner, fd, NULL);
    if (rc < 0) {
        free(x);
        return rc;
    }
    return tide__stream_open_transport(s, &x->base, NULL);
}

typedef struct lay {
    int sv[2];
    tide_stream *a, *b;
    size_t sent, got, echoed;
    long bad_at;
    int family, werr, eof_rc, close_a, close_b, stalled;
    ssize_t rend, line_rc, raw_rc;
    char line[32], raw[8];
} lay;

static int lay_producer(void *arg)
{
    lay *x = arg;
    uint8_t *buf = malloc(70000);
    while (x->sent < MIB) {
        size_t n = MIB - x->sent < 70000 ? MIB - x->sent : 70000;
        tt_pat_fill(buf, x->sent, n);
        if (tide_stream_write(x->a, buf, n) != (ssize_t)n) {
            x->werr = 1;
            break;
        }
        if (tide_stream_write_pending(x->a) > 64 * 1024)
            x->stalled = 1;
        x->sent += n;
        if (tide_stream_drain(x->a) < 0) {
            x->werr = 2;
            break;
        }
    }
    free(buf);
    x->eof_rc = tide_stream_write_eof(x->a); /* through both layers */
    return 0;
}

static int lay_reader(void *arg)
{
    lay *x = arg;
    uint8_t *buf = malloc(65536);
    x->bad_at = -1;
    for (;;) {
        ssize_t n = tide_stream_read(x->a, buf, 5000);
        if (n <= 0) {
            x->rend = n;
            break;
        }
        long b = tt_pat_check(buf, x->got, (size_t)n);
        if (b >= 0 && x->bad_at < 0)
            x->bad_at = (long)x->got + b;
        x->got += (size_t)n;
    }
    free(buf);
    return 0;
}

static int lay_echo(void *arg)
{
    lay *x = arg;
    char buf[3000];
    for (;;) {
        ssize_t n = tide_stream_read(x->b, buf, sizeof buf);
        if (n <= 0)
            break;
        x->echoed += (size_t)n;
        if (tide_stream_write(x->b, buf, (size_t)n) != n || tide_stream_drain(x->b) < 0)
            break;
    }
    x->close_b = tide_stream_close(x->b);
    return 0;
}

static int lay_main(void *arg)
{
    lay *x = arg;
    tide_task *p, *r, *e;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (open_xor(&x->a, x->sv[0], 0x5a) < 0 || open_xor(&x->b, x->sv[1], 0x5a) < 0)
        return -1;
    if (tide_stream_peer_addr(x->a, (struct sockaddr *)&ss, &len) == 0)
        x->family = ss.ss_family;
    /* lines too, then the bulk */
    tide_stream_write(x->b, "hello, layers\n", 14);
    x->line_rc = tide_stream_readline(x->a, x->line, sizeof x->line);
    spawn(&e, lay_echo, x);
    spawn(&r, lay_reader, x);
    spawn(&p, lay_producer, x);
    tide_await(p);
    tide_await(r);
    tide_await(e);
    x->close_a = tide_stream_close(x->a);
    return 0;
}

static void test_layered_transport(void **state)
{
    (void)state;
    int before = tt_count_fds();
    lay x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    TT_RUN(lay_main, &x);
    assert_int_equal(x.family, AF_UNIX);
    assert_int_equal(x.line_rc, 14);
    assert_memory_equal(x.line, "hello, layers\n", 14);
    assert_int_equal(x.werr, 0);
    assert_int_equal(x.stalled, 1);
    assert_int_equal(x.sent, MIB);
    assert_int_equal(x.eof_rc, 0);
    assert_int_equal(x.echoed, MIB);
    assert_int_equal(x.got, MIB);
    assert_int_equal(x.bad_at, -1);
    assert_int_equal(x.rend, 0);
    assert_int_equal(x.close_a, 0);
    assert_int_equal(x.close_b, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* A layered stream closed while another task waits in its read: the
 * reader wakes with -EBADF, the layer is freed after it left. */
typedef struct lcl {
    int sv[2];
    tide_stream *s;
    ssize_t r;
    int close_rc;
} lcl;

static int lcl_reader(void *arg)
{
    lcl *x = arg;
    char b[16];
    x->r = tide_stream_read(x->s, b, sizeof b);
    return 0;
}

static int lcl_main(void *arg)
{
    lcl *x = arg;
    tide_task *t;
    if (open_xor(&x->s, x->sv[0], 1) < 0)
        return -1;
    spawn(&t, lcl_reader, x);
    tide_sleep(5);
    x->close_rc = tide_stream_close(x->s);
    tide_await(t);
    tide_close(x->sv[1]);
    return 0;
}

static void test_layered_close_wakes_reader(void **state)
{
    (void)state;
    int before = tt_count_fds();
    lcl x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(lcl_main, &x);
    assert_int_equal(x.close_rc, 0);
    assert_int_equal(x.r, -EBADF);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------- no allocation on the steady-state path */

typedef struct steady {
    int sv[2];
    unsigned long allocs_warm, allocs_steady;
    int ok;
    size_t held_idle;
} steady;

static int steady_peer(void *arg)
{
    steady *x = arg;
    tide_stream *s;
    char buf[8192];
    tide_stream_open(&s, x->sv[1], NULL);
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0 || tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
            break;
    }
    tide_stream_close(s);
    return 0;
}

static int steady_main(void *arg)
{
    steady *x = arg;
    tide_stream *s;
    tide_task *p;
    static uint8_t out[48 * 1024], in[48 * 1024];
    tide_stream_open(&s, x->sv[0], NULL);
    spawn(&p, steady_peer, x);
    x->ok = 1;
    /* The pool grows to what two streams hold at once at the worst (read
     * buffers, queues of every size class); then it stops. */
    for (int round = 0; round < 600; round++) {
        if (round == 300)
            x->allocs_warm = g_allocs;
        size_t len = 1000 + (size_t)((round % 50) * 7919) % (sizeof out - 1000);
        tt_pat_fill(out, (uint64_t)round, len);
        /* two pieces: writev and write; the socket buffers are small, so
         * parts are queued and flushed by the loop */
        struct iovec v[2] = {{out, len / 3}, {out + len / 3, len - len / 3 - 10}};
        if (tide_stream_writev(s, v, 2) != (ssize_t)(len - 10) ||
            tide_stream_write(s, out + len - 10, 10) != 10 || tide_stream_drain(s) < 0 ||
            tide_stream_readexactly(s, in, len) != (ssize_t)len ||
            tt_pat_check(in, (uint64_t)round, len) != -1) {
            x->ok = 0;
            break;
        }
    }
    x->allocs_steady = g_allocs - x->allocs_warm;
    x->held_idle = tide__stream_held(s);
    tide_stream_close(s);
    tide_await(p);
    return 0;
}

static void test_steady_state_no_alloc(void **state)
{
    (void)state;
    int before = tt_count_fds();
    steady x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 8192), 0);
    TT_RUN(steady_main, &x);
    print_message("allocations in 300 round trips after 300 to warm up: %lu\n", x.allocs_steady);
    assert_true(x.ok);
    assert_int_equal(x.allocs_steady, 0);
    assert_int_equal(x.held_idle, 0);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_reads_big),
        cmocka_unit_test(test_layered_transport),
        cmocka_unit_test(test_layered_close_wakes_reader),
        cmocka_unit_test(test_steady_state_no_alloc),
    };
    tide_replace_allocator(c_malloc, c_realloc, c_calloc, free);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
