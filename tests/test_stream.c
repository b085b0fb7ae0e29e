/*
 * Tests of buffered streams (src/stream.c): 1 MiB echo with partial reads
 * and writes, readline/readuntil/readexactly at buffer boundaries, limits
 * (-EMSGSIZE, -ENOBUFS, no byte lost), EOF, half-close, sticky write
 * errors, backpressure with drain, close and cancel of blocked calls,
 * misuse.  Socketpairs and loopback TCP only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "net_util.h"
#include "transport.h"

/* The stream's writes go out by asynchronous sends (io_uring: the whole
 * queue of a step as one send at its end; nothing reaches the kernel
 * before). */
static int stream_async(tide_stream *s)
{
    tide__transport *t = tide__stream_transport(s);
    return t && t->ops->async && t->ops->async(t);
}

#define MIB (1024 * 1024)

static int spawn(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task(t, fn, arg);
}

/* ---------------------------------------------------------- 1 MiB echo */

typedef struct se {
    int sv[2];
    tide_stream *a, *b;
    size_t total, sent, got, echoed;
    long bad_at;
    ssize_t werr, rend, eend;
    int drain_err, close_b, close_a, shut;
    size_t max_pending;
    int stalled; /* drain had to wait at least once */
} se;

/* Writes the pattern into a, respecting backpressure. */
static int se_producer(void *arg)
{
    se *x = arg;
    static const size_t sizes[] = {1, 100000, 3, 4096, 777, 65536, 8191, 2};
    uint8_t *buf = malloc(100000);
    size_t k = 0;
    while (x->sent < x->total) {
        size_t n = sizes[k++ % TT_ARRAY_LEN(sizes)];
        if (n > x->total - x->sent)
            n = x->total - x->sent;
        tt_pat_fill(buf, x->sent, n);
        ssize_t w = tide_stream_write(x->a, buf, n);
        if (w != (ssize_t)n) {
            x->werr = w;
            break;
        }
        x->sent += n;
        if (tide_stream_write_pending(x->a) > x->max_pending)
            x->max_pending = tide_stream_write_pending(x->a);
        if (tide_stream_write_pending(x->a) > 64 * 1024)
            x->stalled = 1;
        int d = tide_stream_drain(x->a);
        if (d < 0) {
            x->drain_err = d;
            break;
        }
    }
    free(buf);
    /* no flush-all call: wait for the buffer to empty, then half-close */
    while (tide_stream_write_pending(x->a) > 0)
        if (tide_sleep(1) < 0)
            break;
    x->shut = tide_shutdown(x->sv[0], SHUT_WR);
    return 0;
}

/* Reads the echo back from a. */
static int se_reader(void *arg)
{
    se *x = arg;
    static const size_t sizes[] = {1, 5000, 17, 4096, 100, 65536, 3};
    uint8_t *buf = malloc(65536);
    size_t k = 0;
    x->bad_at = -1;
    for (;;) {
        size_t want = sizes[k++ % TT_ARRAY_LEN(sizes)];
        ssize_t n = (k % 5 == 0) ? tide_stream_readexactly(x->a, buf, want)
                                 : tide_stream_read(x->a, buf, want);
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

/* The peer: echoes through stream b until EOF, then closes (flushes). */
static int se_echo(void *arg)
{
    se *x = arg;
    static const size_t sizes[] = {7, 3000, 4096, 50000, 1};
    uint8_t *buf = malloc(50000);
    size_t k = 0;
    for (;;) {
        ssize_t n = tide_stream_read(x->b, buf, sizes[k++ % TT_ARRAY_LEN(sizes)]);
        if (n <= 0) {
            x->eend = n;
            break;
        }
        x->echoed += (size_t)n;
        if (tide_stream_write(x->b, buf, (size_t)n) != n || tide_stream_drain(x->b) < 0)
            break;
    }
    free(buf);
    x->close_b = tide_stream_close(x->b);
    return 0;
}

static int se_main(void *arg)
{
    se *x = arg;
    tide_task *p, *r, *e;
    tide_scope sc;
    if (tide_stream_open(&x->a, x->sv[0], NULL) || tide_stream_open(&x->b, x->sv[1], NULL))
        return -1;
    tide_timeout_begin(&sc, 20000); /* a hang becomes a failure */
    spawn(&e, se_echo, x);
    spawn(&r, se_reader, x);
    spawn(&p, se_producer, x);
    tide_await(p);
    tide_await(r);
    tide_await(e);
    tide_timeout_end(&sc);
    x->close_a = tide_stream_close(x->a);
    return 0;
}

static void test_stream_echo_1mib(void **state)
{
    (void)state;
    int before = tt_count_fds();
    se x;
    memset(&x, 0, sizeof x);
    x.total = MIB;
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    TT_RUN(se_main, &x);
    assert_int_equal(x.werr, 0);
    assert_int_equal(x.drain_err, 0);
    assert_int_equal(x.sent, MIB);
    assert_int_equal(x.shut, 0);
    assert_int_equal(x.echoed, MIB);
    assert_int_equal(x.eend, 0);
    assert_int_equal(x.rend, 0);
    assert_int_equal(x.got, MIB);
    assert_int_equal(x.bad_at, -1);
    assert_int_equal(x.close_a, 0);
    assert_int_equal(x.close_b, 0);
    /* bounded by high water + the largest single write */
    assert_true(x.max_pending <= 64 * 1024 + 100000);
    assert_int_equal(x.stalled, 1);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------------------- readline at the boundaries */

static char *repeat(char c, size_t n, const char *tail)
{
    size_t t = tail ? strlen(tail) : 0;
    char *s = malloc(n + t + 1);
    memset(s, c, n);
    if (t)
        memcpy(s + n, tail, t);
    s[n + t] = '\0';
    return s;
}

/* --- a delimiter split across two reads, at the 4 KiB edge too --- */

typedef struct split {
    int sv[2];
    ssize_t r1, r2, r3, r4, r5;
    char b1[16], b2[16], b5[8], b6[8];
    char *big;
    char *bigbuf;
} split;

static int split_writer(void *arg)
{
    split *s = arg;
    tide_write(s->sv[1], "abc\r", 4);
    tide_sleep(5);
    tide_write(s->sv[1], "\ndef\r\n", 6);
    tide_sleep(5);
    /* 4095 bytes + "\r" fill the first 4 KiB exactly; "\n" comes later */
    tide_write(s->sv[1], s->big, 4096);
    tide_sleep(5);
    tide_write(s->sv[1], "\n", 1);
    tide_sleep(5);
    tide_write(s->sv[1], "x--", 3);
    tide_sleep(5);
    tide_write(s->sv[1], "-y", 2);
    return 0;
}

static int split_main(void *arg)
{
    split *x = arg;
    tide_stream *s;
    tide_task *w;
    tide_stream_open(&s, x->sv[0], NULL);
    spawn(&w, split_writer, x);
    x->r1 = tide_stream_readuntil(s, "\r\n", 2, x->b1, sizeof x->b1);
    x->r2 = tide_stream_readuntil(s, "\r\n", 2, x->b2, sizeof x->b2);
    x->r3 = tide_stream_readuntil(s, "\r\n", 2, x->bigbuf, 8192);
    x->r4 = tide_stream_readuntil(s, "---", 3, x->b5, sizeof x->b5);
    x->r5 = tide_stream_read(s, x->b6, sizeof x->b6);
    tide_await(w);
    tide_stream_close(s);
    tide_close(x->sv[1]);
    return 0;
}

static void test_readuntil_split_delimiter(void **state)
{
    (void)state;
    int before = tt_count_fds();
    split x;
    memset(&x, 0, sizeof x);
    x.big = repeat('q', 4095, "\r");
    x.bigbuf = malloc(8192);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(split_main, &x);
    assert_int_equal(x.r1, 5);
    assert_memory_equal(x.b1, "abc\r\n", 5);
    assert_int_equal(x.r2, 5);
    assert_memory_equal(x.b2, "def\r\n", 5);
    assert_int_equal(x.r3, 4097);
    assert_memory_equal(x.bigbuf, x.big, 4096);
    assert_int_equal(x.bigbuf[4096], '\n');
    assert_int_equal(x.r4, 4);
    assert_memory_equal(x.b5, "x---", 4);
    assert_int_equal(x.r5, 1);
    assert_int_equal(x.b6[0], 'y');
    free(x.big);
    free(x.bigbuf);
    assert_int_equal(tt_count_fds(), before);
}

/* --- lines of 4095/4096/4097 bytes, exactly at the limit, over it --- */

typedef struct lim {
    int sv[2];
    size_t limit;          /* 0: the default (64 KiB) */
    size_t eff_limit;
    char *data;            /* all lines, sent in one go */
    size_t dlen;
    ssize_t r[8];
    long bad[8];
    ssize_t over, over_again, rest;
    size_t buffered_after;
    char *rest_buf;
    ssize_t nobufs, after_nobufs, eof_piece, eof_zero, eof_zero2;
    char tail[64], line[64];
} lim;

static int lim_writer(void *arg)
{
    lim *l = arg;
    tide_write(l->sv[1], l->data, l->dlen);
    tide_sleep(5);
    tide_write(l->sv[1], "short line that is 44 bytes long, no more.\n", 43);
    tide_sleep(5);
    tide_write(l->sv[1], "unterminated tail", 17);
    tide_shutdown(l->sv[1], SHUT_WR);
    return 0;
}

static int lim_main(void *arg)
{
    lim *l = arg;
    tide_stream *s;
    tide_stream_opts o;
    tide_task *w;
    tide_stream_opts_init(&o);
    if (l->limit)
        o.limit = l->limit;
    tide_stream_open(&s, l->sv[0], l->limit ? &o : NULL);
    spawn(&w, lim_writer, l);
    size_t lens[4] = {4095, 4096, 4097, l->eff_limit};
    char *buf = malloc(l->eff_limit + 8);
    size_t off = 0;
    tide_scope sc;
    tide_timeout_begin(&sc, 10000);
    for (int i = 0; i < 4; i++) {
        l->r[i] = tide_stream_readline(s, buf, l->eff_limit + 8);
        l->bad[i] = (l->r[i] == (ssize_t)lens[i] && memcmp(buf, l->data + off, lens[i]) == 0)
                        ? -1 : (long)i;
        off += lens[i];
    }
    /* the next line is one byte over the limit */
    l->over = tide_stream_readline(s, buf, l->eff_limit + 8);
    l->over_again = tide_stream_readuntil(s, "\n", 1, buf, l->eff_limit + 8);
    l->buffered_after = tide_stream_buffered(s);
    /* no byte lost: all of it is still there */
    l->rest = tide_stream_readexactly(s, l->rest_buf, l->eff_limit + 1);
    /* too small a buffer: -ENOBUFS, bytes kept */
    l->nobufs = tide_stream_readline(s, l->tail, 10);
    l->after_nobufs = tide_stream_readline(s, l->line, sizeof l->line);
    /* EOF in the middle of a line: the piece, then 0 */
    l->eof_piece = tide_stream_readline(s, l->tail, sizeof l->tail);
    l->eof_zero = tide_stream_readline(s, l->tail + 20, 10);
    l->eof_zero2 = tide_stream_read(s, l->tail + 20, 10);
    tide_timeout_end(&sc);
    free(buf);
    tide_await(w);
    tide_stream_close(s);
    tide_close(l->sv[1]);
    return 0;
}

static void run_lim(size_t limit)
{
    int before = tt_count_fds();
    lim l;
    memset(&l, 0, sizeof l);
    l.limit = limit;
    l.eff_limit = limit ? limit : 64 * 1024;
    size_t lens[5] = {4095, 4096, 4097, l.eff_limit, l.eff_limit + 1};
    for (int i = 0; i < 5; i++)
        l.dlen += lens[i];
    l.data = malloc(l.dlen);
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        for (size_t j = 0; j + 1 < lens[i]; j++)
            l.data[off + j] = (char)('A' + (off + j) % 23);
        l.data[off + lens[i] - 1] = '\n';
        off += lens[i];
    }
    l.rest_buf = malloc(l.eff_limit + 1);
    assert_int_equal(tt_socketpair(l.sv, 0), 0);
    TT_RUN(lim_main, &l);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(l.r[i], (ssize_t)lens[i]);
        assert_int_equal(l.bad[i], -1);
    }
    assert_int_equal(l.over, -EMSGSIZE);
    assert_int_equal(l.over_again, -EMSGSIZE);
    assert_int_equal(l.buffered_after, l.eff_limit);
    assert_int_equal(l.rest, (ssize_t)l.eff_limit + 1);
    assert_memory_equal(l.rest_buf, l.data + l.dlen - lens[4], lens[4]);
    assert_int_equal(l.nobufs, -ENOBUFS);
    assert_int_equal(l.after_nobufs, 43);
    assert_memory_equal(l.line, "short line that is 44 bytes long, no more.\n", 43);
    assert_int_equal(l.eof_piece, 17);
    assert_memory_equal(l.tail, "unterminated tail", 17);
    assert_int_equal(l.eof_zero, 0);
    assert_int_equal(l.eof_zero2, 0);
    free(l.data);
    free(l.rest_buf);
    assert_int_equal(tt_count_fds(), before);
}

static void test_readline_limits_default(void **state)
{
    (void)state;
    run_lim(0);
}

static void test_readline_limits_small(void **state)
{
    (void)state;
    run_lim(10000); /* not a power of two */
}

/* ------------------------------------------------------------ readexactly */

typedef struct rx {
    int sv[2];
    ssize_t a, b, c, t, after;
    int end_rc;
    char ba[8], bb[128], bt[16];
} rx;

static int rx_late(void *arg)
{
    rx *x = arg;
    tide_sleep(100);
    tide_write(x->sv[1], "6789", 4);
    tide_sleep(5);
    tide_write(x->sv[1], "0123456789", 10);
    tide_shutdown(x->sv[1], SHUT_WR);
    return 0;
}

static int rx_main(void *arg)
{
    rx *x = arg;
    tide_stream *s;
    tide_task *w;
    tide_scope sc;
    tide_stream_open(&s, x->sv[0], NULL);
    /* 6 bytes now, 4 much later: a timeout in between loses nothing */
    tide_write(x->sv[1], "012345", 6);
    spawn(&w, rx_late, x);
    tide_timeout_begin(&sc, 40);
    x->t = tide_stream_readexactly(s, x->bt, 10);
    x->end_rc = tide_timeout_end(&sc);
    x->after = tide_stream_readexactly(s, x->bt, 10);
    x->a = tide_stream_readexactly(s, x->ba, 4);
    x->b = tide_stream_readexactly(s, x->bb, 100); /* EOF first: short */
    x->c = tide_stream_readexactly(s, x->bb + 50, 5);
    tide_await(w);
    tide_stream_close(s);
    tide_close(x->sv[1]);
    return 0;
}

static void test_readexactly_timeout_and_eof(void **state)
{
    (void)state;
    int before = tt_count_fds();
    rx x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(rx_main, &x);
    assert_int_equal(x.t, -ETIMEDOUT);
    assert_int_equal(x.end_rc, -ETIMEDOUT);
    assert_int_equal(x.after, 10);
    assert_memory_equal(x.bt, "0123456789", 10);
    assert_int_equal(x.a, 4);
    assert_memory_equal(x.ba, "0123", 4);
    assert_int_equal(x.b, 6);
    assert_memory_equal(x.bb, "456789", 6);
    assert_int_equal(x.c, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------- half-close */

typedef struct shc {
    int sv[2];
    ssize_t eof, w, pr;
    int close_rc;
    char buf[16];
} shc;

static int shc_main(void *arg)
{
    shc *h = arg;
    tide_stream *s;
    char b[8];
    tide_stream_open(&s, h->sv[0], NULL);
    tide_shutdown(h->sv[1], SHUT_WR);
    h->eof = tide_stream_read(s, b, sizeof b);
    h->w = tide_stream_write(s, "still here", 10);
    h->close_rc = tide_stream_close(s); /* flushes */
    h->pr = tide_read(h->sv[1], h->buf, sizeof h->buf);
    tide_close(h->sv[1]);
    return 0;
}

static void test_stream_half_close(void **state)
{
    (void)state;
    int before = tt_count_fds();
    shc h;
    memset(&h, 0, sizeof h);
    assert_int_equal(tt_tcp_pair(h.sv, 0), 0);
    TT_RUN(shc_main, &h);
    assert_int_equal(h.eof, 0);
    assert_int_equal(h.w, 10);
    assert_int_equal(h.close_rc, 0);
    assert_int_equal(h.pr, 10);
    assert_memory_equal(h.buf, "still here", 10);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------- sticky write errors */

typedef struct ste {
    int sv[2], tv[2];
    ssize_t w1, w2, w3, tcp_err, tcp_again;
    int d, c, tcp_drain, tcp_close, async, fl;
} ste;

static int ste_main(void *arg)
{
    ste *e = arg;
    tide_stream *s, *t;
    close(e->sv[1]);
    tide_stream_open(&s, e->sv[0], NULL);
    e->async = stream_async(s);
    e->w1 = tide_stream_write(s, "a", 1);
    e->w2 = tide_stream_write(s, "b", 1);
    e->d = tide_stream_drain(s);
    e->fl = tide_stream_flush(s); /* asynchronous: the send fails here */
    e->w3 = tide_stream_write(s, "c", 1);
    e->c = tide_stream_close(s);

    /* TCP: the peer resets; writes go on until the error shows, then it sticks */
    tide_stream_open(&t, e->tv[0], NULL);
    tt_linger0(e->tv[1]);
    close(e->tv[1]);
    tide_sleep(10);
    char buf[1000] = {0};
    e->tcp_err = 0;
    for (int i = 0; i < 1000 && e->tcp_err >= 0; i++) {
        e->tcp_err = tide_stream_write(t, buf, sizeof buf);
        if (e->tcp_err >= 0)
            e->tcp_err = tide_stream_drain(t);
        tide_sleep(0);
    }
    e->tcp_again = tide_stream_write(t, buf, 1);
    e->tcp_drain = tide_stream_drain(t);
    e->tcp_close = tide_stream_close(t);
    return 0;
}

static void test_stream_write_error_sticks(void **state)
{
    (void)state;
    int before = tt_count_fds();
    ste e;
    memset(&e, 0, sizeof e);
    assert_int_equal(tt_socketpair(e.sv, 0), 0);
    assert_int_equal(tt_tcp_pair(e.tv, 0), 0);
    TT_RUN(ste_main, &e);
    if (e.async) {
        /* Only queued: the send at the step's end reports the error, to
         * every call from the flush on. */
        assert_int_equal(e.w1, 1);
        assert_int_equal(e.w2, 1);
        assert_int_equal(e.d, 0); /* below the high-water mark: no wait */
    } else {
        assert_int_equal(e.w1, -EPIPE);
        assert_int_equal(e.w2, -EPIPE);
        assert_int_equal(e.d, -EPIPE);
    }
    assert_int_equal(e.fl, -EPIPE);
    assert_int_equal(e.w3, -EPIPE);
    assert_int_equal(e.c, -EPIPE);
    assert_true(e.tcp_err == -ECONNRESET || e.tcp_err == -EPIPE);
    assert_int_equal(e.tcp_again, e.tcp_err);
    assert_int_equal(e.tcp_drain, (int)e.tcp_err);
    assert_int_equal(e.tcp_close, (int)e.tcp_err);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------- a peer that never reads */

typedef struct bp {
    int sv[2];
    size_t written, max_pending, final_pending;
    int drain_rc, end_rc, close_rc, close_end;
    int64_t took;
    int drains_waited;
} bp;

static int bp_main(void *arg)
{
    bp *b = arg;
    tide_stream *s;
    tide_stream_opts o;
    tide_scope sc;
    char chunk[8192];
    memset(chunk, 'z', sizeof chunk);
    tide_stream_opts_init(&o);
    o.high_water = 32 * 1024;
    o.low_water = 8 * 1024;
    tide_stream_open(&s, b->sv[0], &o);
    int64_t t0 = tide_now();
    tide_timeout_begin(&sc, 300);
    for (;;) {
        ssize_t w = tide_stream_write(s, chunk, sizeof chunk);
        if (w < 0)
            break;
        b->written += (size_t)w;
        size_t p = tide_stream_write_pending(s);
        if (p > b->max_pending)
            b->max_pending = p;
        b->drain_rc = tide_stream_drain(s);
        if (b->drain_rc < 0)
            break;
    }
    b->end_rc = tide_timeout_end(&sc);
    b->took = tide_now() - t0;
    b->final_pending = tide_stream_write_pending(s);
    /* close flushes within the scopes: a short one cuts it */
    tide_timeout_begin(&sc, 30);
    b->close_rc = tide_stream_close(s);
    b->close_end = tide_timeout_end(&sc);
    tide_close(b->sv[1]);
    return 0;
}

static void test_stream_backpressure(void **state)
{
    (void)state;
    int before = tt_count_fds();
    bp b;
    memset(&b, 0, sizeof b);
    assert_int_equal(tt_socketpair(b.sv, 4096), 0);
    TT_RUN(bp_main, &b);
    assert_int_equal(b.drain_rc, -ETIMEDOUT);
    assert_int_equal(b.end_rc, -ETIMEDOUT);
    assert_true(b.took >= 290 && b.took < 3000);
    /* memory stays bounded: high water + one chunk */
    assert_true(b.max_pending <= 32 * 1024 + 8192);
    assert_true(b.final_pending > 32 * 1024);
    /* the kernel took a little, the rest waits in the stream */
    assert_true(b.written < 1024 * 1024);
    assert_int_equal(b.close_rc, -ETIMEDOUT);
    assert_int_equal(b.close_end, -ETIMEDOUT);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------- close/cancel blocked calls */

typedef struct cb {
    int sv[2];
    tide_stream *s;
    ssize_t r_closed, r_cancel, r_after, readline_rc;
    int close_rc;
    char buf[16];
} cb;

static int cb_reader(void *arg)
{
    cb *c = arg;
    char b[8];
    c->r_cancel = tide_stream_read(c->s, b, sizeof b);
    return 0;
}

static int cb_liner(void *arg)
{
    cb *c = arg;
    char b[64];
    c->readline_rc = tide_stream_readline(c->s, b, sizeof b);
    return 0;
}

static int cb_main(void *arg)
{
    cb *c = arg;
    tide_task *r;
    tide_stream_open(&c->s, c->sv[0], NULL);
    /* cancel a blocked read: the stream stays usable */
    spawn(&r, cb_reader, c);
    tide_sleep(10);
    tide_cancel(r);
    tide_await(r);
    tide_write(c->sv[1], "later", 5);
    c->r_after = tide_stream_read(c->s, c->buf, sizeof c->buf);
    /* close while a task waits in readline: it wakes with -EBADF */
    tide_write(c->sv[1], "partial", 7);
    spawn(&r, cb_liner, c);
    tide_sleep(10);
    c->close_rc = tide_stream_close(c->s);
    tide_await(r);
    tide_close(c->sv[1]);
    return 0;
}

static void test_stream_close_and_cancel_blocked(void **state)
{
    (void)state;
    int before = tt_count_fds();
    cb c;
    memset(&c, 0, sizeof c);
    assert_int_equal(tt_socketpair(c.sv, 0), 0);
    TT_RUN(cb_main, &c);
    assert_int_equal(c.r_cancel, -ECANCELED);
    assert_int_equal(c.r_after, 5);
    assert_memory_equal(c.buf, "later", 5);
    assert_int_equal(c.close_rc, 0);
    assert_int_equal(c.readline_rc, -EBADF);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------- reset mid-read */

typedef struct srs {
    int sv[2];
    ssize_t r;
} srs;

static int srs_killer(void *arg)
{
    srs *x = arg;
    tide_sleep(30);
    tt_linger0(x->sv[1]);
    close(x->sv[1]);
    return 0;
}

static int srs_main(void *arg)
{
    srs *x = arg;
    tide_stream *s;
    tide_task *k;
    char b[64];
    tide_stream_open(&s, x->sv[0], NULL);
    spawn(&k, srs_killer, x);
    x->r = tide_stream_readline(s, b, sizeof b);
    tide_await(k);
    tide_stream_close(s);
    return 0;
}

static void test_stream_reset_mid_read(void **state)
{
    (void)state;
    int before = tt_count_fds();
    srs x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_tcp_pair(x.sv, 0), 0);
    TT_RUN(srs_main, &x);
    assert_int_equal(x.r, -ECONNRESET);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------ open_connection */

typedef struct oc {
    int lfd, port;
    ssize_t lines[3];
    char got[3][32];
    int rc, bad_host, fd_ok;
} oc;

static int oc_server(void *arg)
{
    oc *o = arg;
    int fd = tide_accept(o->lfd, NULL, NULL);
    tide_stream *s;
    char b[64];
    if (fd < 0)
        return fd;
    tide_stream_open(&s, fd, NULL);
    for (;;) {
        ssize_t n = tide_stream_readline(s, b, sizeof b);
        if (n <= 0)
            break;
        tide_stream_write(s, b, (size_t)n);
    }
    tide_stream_close(s);
    return 0;
}

static int oc_main(void *arg)
{
    oc *o = arg;
    tide_stream *s;
    tide_task *t;
    o->lfd = tide_tcp_listen("127.0.0.1", 0, NULL);
    o->port = tide_sock_port(o->lfd);
    spawn(&t, oc_server, o);
    o->rc = tide_open_connection("127.0.0.1", o->port, &s);
    if (o->rc == 0) {
        o->fd_ok = tide_stream_fd(s) >= 0;
        tide_stream_write(s, "one\ntwo\nthree\n", 14);
        for (int i = 0; i < 3; i++)
            o->lines[i] = tide_stream_readline(s, o->got[i], sizeof o->got[i]);
        tide_stream_close(s);
    }
    tide_await(t);
    tide_close(o->lfd);
    o->bad_host = tide_open_connection(NULL, 1, &s);
    return 0;
}

static void test_open_connection(void **state)
{
    (void)state;
    int before = tt_count_fds();
    oc o;
    memset(&o, 0, sizeof o);
    TT_RUN(oc_main, &o);
    assert_int_equal(o.rc, 0);
    assert_true(o.fd_ok);
    assert_int_equal(o.lines[0], 4);
    assert_memory_equal(o.got[0], "one\n", 4);
    assert_int_equal(o.lines[1], 4);
    assert_memory_equal(o.got[1], "two\n", 4);
    assert_int_equal(o.lines[2], 6);
    assert_memory_equal(o.got[2], "three\n", 6);
    assert_int_equal(o.bad_host, -EINVAL);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------------------- misuse */

typedef struct smu {
    int sv[2];
    tide_stream *s;
    int open_null, open_badfd, open_lowhigh, cb_read, cb_drain;
    ssize_t read_null, read_nullbuf, until_nodelim, until_zero, write_null, write_nullbuf,
        close_null, fd_null, after_close;
} smu;

static void smu_cb(void *arg)
{
    smu *m = arg;
    char b[4];
    m->cb_read = (int)tide_stream_read(m->s, b, sizeof b);
    m->cb_drain = tide_stream_drain(m->s);
}

static int smu_main(void *arg)
{
    smu *m = arg;
    tide_stream *s;
    tide_stream_opts o;
    char b[4];
    m->open_null = tide_stream_open(NULL, m->sv[0], NULL);
    m->open_badfd = tide_stream_open(&s, -1, NULL);
    tide_stream_opts_init(&o);
    o.high_water = 100;
    o.low_water = 200;
    m->open_lowhigh = tide_stream_open(&s, m->sv[0], &o);
    tide_stream_open(&m->s, m->sv[0], NULL);
    tide_call_soon(tide_loop_current(), smu_cb, m);
    tide_sleep(1);
    m->read_null = tide_stream_read(NULL, b, 1);
    m->read_nullbuf = tide_stream_read(m->s, NULL, 4);
    m->until_nodelim = tide_stream_readuntil(m->s, NULL, 1, b, sizeof b);
    m->until_zero = tide_stream_readuntil(m->s, "\n", 0, b, sizeof b);
    m->write_null = tide_stream_write(NULL, "x", 1);
    m->write_nullbuf = tide_stream_write(m->s, NULL, 3);
    m->close_null = tide_stream_close(NULL);
    m->fd_null = tide_stream_fd(NULL);
    tide_stream_close(m->s);
    tide_close(m->sv[1]);
    return 0;
}

static void test_stream_misuse(void **state)
{
    (void)state;
    int before = tt_count_fds();
    smu m;
    tide_stream *s = (tide_stream *)&m;
    memset(&m, 0, sizeof m);
    assert_int_equal(tt_socketpair(m.sv, 0), 0);
    /* no loop on this thread */
    assert_int_equal(tide_stream_open(&s, m.sv[0], NULL), -EPERM);
    assert_null(s);
    assert_int_equal(tide_stream_read(NULL, NULL, 0), -EINVAL);
    assert_int_equal(tide_open_connection("127.0.0.1", 1, &s), -EPERM);
    TT_RUN(smu_main, &m);
    assert_int_equal(m.open_null, -EINVAL);
    assert_int_equal(m.open_badfd, -EBADF);
    assert_int_equal(m.open_lowhigh, -EINVAL);
    assert_int_equal(m.cb_read, -EPERM);
    assert_int_equal(m.cb_drain, -EPERM);
    assert_int_equal(m.read_null, -EINVAL);
    assert_int_equal(m.read_nullbuf, -EINVAL);
    assert_int_equal(m.until_nodelim, -EINVAL);
    assert_int_equal(m.until_zero, -EINVAL);
    assert_int_equal(m.write_null, -EINVAL);
    assert_int_equal(m.write_nullbuf, -EINVAL);
    assert_int_equal(m.close_null, -EINVAL);
    assert_int_equal(m.fd_null, -EINVAL);
    assert_int_equal(tt_count_fds(), before);
}

/* ================================================ regressions (defects) */

/* The allocator of this test binary: frees wipe the block first (so a use
 * after free reads zeros and fails loudly even without ASan), and an
 * allocation of at least g_fail_over bytes fails while it is set. */
static size_t g_fail_over = SIZE_MAX;

static void *t_malloc(size_t n)
{
    return n >= g_fail_over ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return n >= g_fail_over ? NULL : realloc(p, n);
}

static void *t_calloc(size_t n, size_t size)
{
    return size && n >= g_fail_over / size ? NULL : calloc(n, size);
}

static void t_free(void *p)
{
    if (p)
        memset(p, 0, malloc_usable_size(p));
    free(p);
}

/* --- a closed handle: every call gets -EBADF, nothing reads freed memory */

typedef struct stale {
    int sv[2];
    int close1, close2, fd_rc, drain_rc, flush_rc, eof_rc, wr_eof_rc, again_rc;
    ssize_t read_rc, write_rc, line_rc;
    size_t pending;
    int victim_ok;
} stale;

static int stale_main(void *arg)
{
    stale *x = arg;
    tide_stream *s, *t;
    char b[8];
    tide_stream_open(&s, x->sv[0], NULL);
    tide_stream_write(s, "hello", 5);
    x->close1 = tide_stream_close(s);
    /* the same handle again: each call must see a dead stream */
    x->close2 = tide_stream_close(s);
    x->read_rc = tide_stream_read(s, b, sizeof b);
    x->line_rc = tide_stream_readline(s, b, sizeof b);
    x->write_rc = tide_stream_write(s, "x", 1);
    x->drain_rc = tide_stream_drain(s);
    x->flush_rc = tide_stream_flush(s);
    x->fd_rc = tide_stream_fd(s);
    x->eof_rc = tide_stream_at_eof(s);
    x->wr_eof_rc = tide_stream_write_eof(s);
    x->pending = tide_stream_write_pending(s);
    /* a new stream meanwhile does not revive the old handle's calls on it */
    int v[2];
    tt_socketpair(v, 0);
    tide_stream_open(&t, v[0], NULL);
    x->again_rc = tide_stream_close(s);
    x->victim_ok = tide_stream_write(t, "ok", 2) == 2 && fcntl(v[0], F_GETFD) >= 0;
    tide_stream_close(t);
    tide_close(v[1]);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_stale_handle(void **state)
{
    (void)state;
    int before = tt_count_fds();
    stale x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(stale_main, &x);
    assert_int_equal(x.close1, 0);
    assert_int_equal(x.close2, -EBADF);
    assert_int_equal(x.read_rc, -EBADF);
    assert_int_equal(x.line_rc, -EBADF);
    assert_int_equal(x.write_rc, -EBADF);
    assert_int_equal(x.drain_rc, -EBADF);
    assert_int_equal(x.flush_rc, -EBADF);
    assert_int_equal(x.fd_rc, -EBADF);
    assert_int_equal(x.eof_rc, -EBADF);
    assert_int_equal(x.wr_eof_rc, -EBADF);
    assert_int_equal(x.pending, 0);
    assert_int_equal(x.again_rc, -EBADF);
    assert_true(x.victim_ok);
    assert_int_equal(tt_count_fds(), before);
}

/* --- the fd closed under the stream and its number reused by a new socket */

typedef struct reuse {
    int sv[2], nv[2];
    int same_number, close_rc, new_alive, new_gets;
    ssize_t read_rc, write_rc, peer_got;
    char buf[16];
} reuse;

static int reuse_main(void *arg)
{
    reuse *x = arg;
    tide_stream *s;
    char b[16];
    tide_stream_open(&s, x->sv[0], NULL);
    int num = x->sv[0];
    tide_close(x->sv[0]); /* behind the stream's back */
    tt_socketpair(x->nv, 0); /* the lowest free number: the stream's old one */
    x->same_number = x->nv[0] == num || x->nv[1] == num;
    int mine = x->nv[0] == num ? x->nv[0] : x->nv[1];
    int other = mine == x->nv[0] ? x->nv[1] : x->nv[0];
    tide_write(other, "NEW", 3); /* for the new owner, not for s */
    x->read_rc = tide_stream_read(s, b, sizeof b);
    x->write_rc = tide_stream_write(s, "stale", 5);
    x->close_rc = tide_stream_close(s); /* must not close the new socket */
    x->new_alive = fcntl(mine, F_GETFD) >= 0;
    /* the new owner still gets its bytes, and nothing from s */
    x->new_gets = (int)tide_read(mine, x->buf, sizeof x->buf);
    tide_sleep(5);
    x->peer_got = recv(other, b, sizeof b, MSG_DONTWAIT);
    tide_close(x->nv[0]);
    tide_close(x->nv[1]);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_fd_closed_and_reused(void **state)
{
    (void)state;
    int before = tt_count_fds();
    reuse x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(reuse_main, &x);
    assert_true(x.same_number);
    assert_int_equal(x.read_rc, -EBADF);
    assert_int_equal(x.write_rc, -EBADF);
    assert_int_equal(x.close_rc, -EBADF);
    assert_true(x.new_alive);
    assert_int_equal(x.new_gets, 3);
    assert_memory_equal(x.buf, "NEW", 3);
    assert_true(x.peer_got < 0); /* s wrote nothing into the new socket */
    assert_int_equal(tt_count_fds(), before);
}

/* --- two tasks reading one stream: the second is refused, nothing lost */

typedef struct twor {
    int sv[2];
    tide_stream *s;
    ssize_t a_rc, b_rc, b2_rc;
    char a[32], b[32];
} twor;

static int twor_a(void *arg)
{
    twor *x = arg;
    x->a_rc = tide_stream_readline(x->s, x->a, sizeof x->a);
    return 0;
}

static int twor_main(void *arg)
{
    twor *x = arg;
    tide_task *a;
    tide_stream_open(&x->s, x->sv[0], NULL);
    spawn(&a, twor_a, x);
    tide_sleep(5); /* A waits in readline */
    tide_write(x->sv[1], "abc", 3);
    tide_sleep(5); /* A has "abc" buffered, waits for the rest of the line */
    x->b_rc = tide_stream_read(x->s, x->b, sizeof x->b); /* B, meanwhile */
    tide_write(x->sv[1], "XYZ\n", 4);
    tide_await(a);
    x->b2_rc = tide_stream_read(x->s, x->b, 0); /* A is done: B may read */
    tide_stream_close(x->s);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_two_readers(void **state)
{
    (void)state;
    int before = tt_count_fds();
    twor x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(twor_main, &x);
    assert_int_equal(x.b_rc, -EBUSY);
    assert_int_equal(x.a_rc, 7);
    assert_memory_equal(x.a, "abcXYZ\n", 7);
    assert_int_equal(x.b2_rc, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* --- a big write whose queue cannot grow: all or a sticky error */

typedef struct nomem {
    int sv[2];
    ssize_t w1, w2;
    int drain_rc, close_rc;
    size_t peer_got;
    long bad_at;
} nomem;

static int nomem_reader(void *arg)
{
    nomem *x = arg;
    uint8_t *buf = malloc(65536);
    x->bad_at = -1;
    for (;;) {
        ssize_t n = tide_read(x->sv[1], buf, 65536);
        if (n <= 0)
            break;
        long b = tt_pat_check(buf, x->peer_got, (size_t)n);
        if (b >= 0 && x->bad_at < 0)
            x->bad_at = (long)x->peer_got + b;
        x->peer_got += (size_t)n;
    }
    free(buf);
    return 0;
}

static int nomem_main(void *arg)
{
    nomem *x = arg;
    tide_stream *s;
    tide_task *r;
    uint8_t *big = malloc(MIB);
    tt_pat_fill(big, 0, MIB);
    tide_stream_open(&s, x->sv[0], NULL);
    g_fail_over = 512 * 1024; /* the queue for most of 1 MiB cannot be had */
    x->w1 = tide_stream_write(s, big, MIB);
    g_fail_over = SIZE_MAX;
    /* the error sticks: nothing after the hole is ever sent */
    tt_pat_fill(big, 0, 100);
    x->w2 = tide_stream_write(s, big, 100);
    x->drain_rc = tide_stream_drain(s);
    spawn(&r, nomem_reader, x);
    x->close_rc = tide_stream_close(s);
    tide_await(r);
    tide_close(x->sv[1]);
    free(big);
    return 0;
}

static void test_stream_write_nomem(void **state)
{
    (void)state;
    int before = tt_count_fds();
    nomem x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    TT_RUN(nomem_main, &x);
    assert_int_equal(x.w1, -ENOMEM);
    assert_int_equal(x.w2, -ENOMEM);
    assert_int_equal(x.drain_rc, -ENOMEM);
    assert_int_equal(x.close_rc, -ENOMEM);
    /* what went out is a prefix of the data, never more */
    assert_true(x.peer_got < MIB);
    assert_int_equal(x.bad_at, -1);
    assert_int_equal(tt_count_fds(), before);
}

/* --- a stream write timeout: a peer that never reads */

typedef struct wto {
    int sv[2];
    int drain_rc, close_rc;
    ssize_t w_after;
    int64_t drain_ms, close_ms;
    int done, done_at_300;
} wto;

static int wto_io(void *arg)
{
    wto *x = arg;
    tide_stream *s;
    tide_stream_opts o;
    static char chunk[256 * 1024];
    tide_stream_opts_init(&o);
    o.write_timeout_ms = 300;
    tide_stream_open(&s, x->sv[0], &o);
    tide_stream_write(s, chunk, sizeof chunk);
    int64_t t0 = tide_now();
    x->drain_rc = tide_stream_drain(s);
    x->drain_ms = tide_now() - t0;
    x->w_after = tide_stream_write(s, "x", 1); /* sticky */
    t0 = tide_now();
    x->close_rc = tide_stream_close(s);
    x->close_ms = tide_now() - t0;
    tide_close(x->sv[1]);
    x->done = 1;
    return 0;
}

/* On virtual time, moved by hand (the drain waits on an fd, where autojump
 * stands still): the drain's timeout fires at exactly 300 ms, and the close
 * must end then too, with no time passing (a second wait would need another
 * 300 ms the clock is not given). */
static int wto_main(void *arg)
{
    wto *x = arg;
    tide_task *t;

    if (tide_create_task(&t, wto_io, x) < 0)
        return -1;
    tide_sleep(0); /* it writes and starts to drain at 0 */
    if (tide_vclock_advance(tide_loop_current(), 300 * 1000000LL) < 0)
        return -2;
    tide_sleep(0);
    tide_sleep(0);
    x->done_at_300 = x->done;
    if (!x->done)
        tide_cancel(t);
    return tide_await(t);
}

static void test_stream_write_timeout(void **state)
{
    (void)state;
    int before = tt_count_fds();
    tide_loop *loop;
    tide_task *t;
    wto x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_vclock(loop, 0), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, wto_main, &x, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    tide_loop_free(loop);
    assert_true(x.done_at_300);
    assert_int_equal(x.drain_rc, -ETIMEDOUT);
    assert_int_equal(x.drain_ms, 300);
    assert_int_equal(x.w_after, -ETIMEDOUT);
    assert_int_equal(x.close_rc, -ETIMEDOUT);
    assert_int_equal(x.close_ms, 0); /* dropped: no second wait */
    assert_int_equal(tt_count_fds(), before);
}

/* A slow reader that keeps reading is not cut off: the timeout counts time
 * without progress, not the length of the whole flush. */
typedef struct wslow {
    int sv[2];
    int flush_rc, stop;
    size_t got;
} wslow;

static int wslow_reader(void *arg)
{
    wslow *x = arg;
    char b[4096];
    while (!x->stop) {
        ssize_t n = tide_read(x->sv[1], b, sizeof b);
        if (n <= 0)
            break;
        x->got += (size_t)n;
        tide_sleep(20); /* 4 KiB every 20 ms: 256 KiB take > 1.2 s */
    }
    return 0;
}

static int wslow_main(void *arg)
{
    wslow *x = arg;
    tide_stream *s;
    tide_stream_opts o;
    tide_task *r;
    static char chunk[256 * 1024];
    tide_stream_opts_init(&o);
    o.write_timeout_ms = 500; /* far shorter than the whole flush */
    tide_stream_open(&s, x->sv[0], &o);
    tide_stream_write(s, chunk, sizeof chunk);
    spawn(&r, wslow_reader, x);
    x->flush_rc = tide_stream_flush(s);
    tide_stream_close(s);
    tide_await(r);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_write_timeout_progress(void **state)
{
    (void)state;
    int before = tt_count_fds();
    wslow x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    TT_RUN(wslow_main, &x);
    assert_int_equal(x.flush_rc, 0);
    assert_int_equal(x.got, 256 * 1024);
    assert_int_equal(tt_count_fds(), before);
}

/* ============================================================ newer API */

/* --- write_eof: half-close after what is queued; reading goes on */

typedef struct weof {
    int sv[2], pv[2];
    ssize_t w, after, peer_total, echo_rc;
    int eof1, eof2, flush_rc, close_rc, pipe_rc, pipe_w, null_rc;
    long bad_at;
    char echo[16];
} weof;

static int weof_peer(void *arg)
{
    weof *x = arg;
    uint8_t *buf = malloc(65536);
    x->bad_at = -1;
    for (;;) {
        ssize_t n = tide_read(x->sv[1], buf, 65536);
        if (n <= 0)
            break;
        long b = tt_pat_check(buf, (uint64_t)x->peer_total, (size_t)n);
        if (b >= 0 && x->bad_at < 0)
            x->bad_at = x->peer_total + b;
        x->peer_total += n;
    }
    free(buf);
    /* the other direction still works after our EOF */
    tide_write(x->sv[1], "pong", 4);
    tide_shutdown(x->sv[1], SHUT_WR);
    return 0;
}

static int weof_main(void *arg)
{
    weof *x = arg;
    tide_stream *s, *p;
    tide_task *t;
    uint8_t *big = malloc(MIB);
    tt_pat_fill(big, 0, MIB);
    tide_stream_open(&s, x->sv[0], NULL);
    x->w = tide_stream_write(s, big, MIB); /* mostly queued: small buffers */
    x->eof1 = tide_stream_write_eof(s);    /* shut once the queue is out */
    x->eof2 = tide_stream_write_eof(s);    /* again: nothing */
    x->after = tide_stream_write(s, "x", 1);
    spawn(&t, weof_peer, x);
    x->flush_rc = tide_stream_flush(s);
    free(big);
    char *echo = NULL;
    x->echo_rc = tide_stream_read_all(s, &echo, sizeof x->echo);
    if (x->echo_rc > 0)
        memcpy(x->echo, echo, (size_t)x->echo_rc);
    free(echo);
    tide_await(t);
    x->close_rc = tide_stream_close(s);
    /* a pipe cannot be half-closed */
    tide_stream_open(&p, x->pv[1], NULL);
    x->pipe_rc = tide_stream_write_eof(p);
    x->pipe_w = (int)tide_stream_write(p, "x", 1);
    tide_stream_close(p);
    x->null_rc = tide_stream_write_eof(NULL);
    tide_close(x->pv[0]);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_write_eof(void **state)
{
    (void)state;
    int before = tt_count_fds();
    weof x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    assert_int_equal(pipe2(x.pv, O_CLOEXEC), 0);
    TT_RUN(weof_main, &x);
    assert_int_equal(x.w, MIB);
    assert_int_equal(x.eof1, 0);
    assert_int_equal(x.eof2, 0);
    assert_int_equal(x.after, -EPIPE);
    assert_int_equal(x.flush_rc, 0);
    assert_int_equal(x.peer_total, MIB); /* all of it, then EOF */
    assert_int_equal(x.bad_at, -1);
    assert_int_equal(x.echo_rc, 4);
    assert_memory_equal(x.echo, "pong", 4);
    assert_int_equal(x.close_rc, 0);
    assert_int_equal(x.pipe_rc, -ENOTSOCK);
    assert_int_equal(x.pipe_w, -ENOTSOCK);
    assert_int_equal(x.null_rc, -EINVAL);
    assert_int_equal(tt_count_fds(), before);
}

/* --- at_eof and read_all */

typedef struct rall {
    int sv[2];
    size_t total;
    int eof_before, eof_mid, eof_after, eof_null;
    ssize_t capped, rest, timed, again, empty, null_out, after_close;
    char *a, *b, *c, *e;
    long bad_a, bad_b, bad_c;
} rall;

static int rall_writer(void *arg)
{
    rall *x = arg;
    uint8_t *buf = malloc(x->total);
    tt_pat_fill(buf, 0, x->total);
    tide_write(x->sv[1], buf, 1000);
    tide_sleep(60); /* the reader times out meanwhile */
    tide_write(x->sv[1], buf + 1000, x->total - 1000);
    tide_shutdown(x->sv[1], SHUT_WR);
    free(buf);
    return 0;
}

static int rall_main(void *arg)
{
    rall *x = arg;
    tide_stream *s;
    tide_task *w;
    tide_scope sc;
    char *junk = (char *)x;
    tide_stream_open(&s, x->sv[0], NULL);
    x->eof_before = tide_stream_at_eof(s);
    spawn(&w, rall_writer, x);
    /* interrupted half way: nothing read is lost */
    tide_timeout_begin(&sc, 30);
    x->timed = tide_stream_read_all(s, &junk, 0);
    tide_timeout_end(&sc);
    x->c = junk;
    /* at most 300 bytes */
    x->capped = tide_stream_read_all(s, &x->a, 300);
    x->eof_mid = tide_stream_at_eof(s);
    /* the rest, until EOF */
    x->rest = tide_stream_read_all(s, &x->b, 0);
    x->eof_after = tide_stream_at_eof(s);
    x->empty = tide_stream_read_all(s, &x->e, 0);
    x->null_out = tide_stream_read_all(s, NULL, 0);
    tide_await(w);
    tide_stream_close(s);
    x->after_close = tide_stream_read_all(s, &junk, 0);
    x->eof_null = tide_stream_at_eof(NULL);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_read_all(void **state)
{
    (void)state;
    int before = tt_count_fds();
    rall x;
    memset(&x, 0, sizeof x);
    x.total = 300000;
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(rall_main, &x);
    assert_int_equal(x.eof_before, 0);
    assert_int_equal(x.timed, -ETIMEDOUT);
    assert_null(x.c);
    assert_int_equal(x.capped, 300);
    assert_int_equal(tt_pat_check(x.a, 0, 300), -1);
    assert_int_equal(x.a[300], '\0');
    assert_int_equal(x.eof_mid, 0);
    assert_int_equal(x.rest, (ssize_t)x.total - 300);
    assert_int_equal(tt_pat_check(x.b, 300, x.total - 300), -1);
    assert_int_equal(x.eof_after, 1);
    assert_int_equal(x.empty, 0);
    assert_non_null(x.e);
    assert_int_equal(x.e[0], '\0');
    assert_int_equal(x.null_out, -EINVAL);
    assert_int_equal(x.after_close, -EBADF);
    assert_int_equal(x.eof_null, -EINVAL);
    free(x.a);
    free(x.b);
    free(x.e);
    assert_int_equal(tt_count_fds(), before);
}

/* --- readuntil with several delimiters */

typedef struct rany {
    int sv[2];
    ssize_t r[8];
    int w[8];
    char b[8][32];
    ssize_t bad_empty, bad_null, bad_none, nobufs, over;
    int which_err;
} rany;

static int rany_writer(void *arg)
{
    rany *x = arg;
    tide_write(x->sv[1], "one\ntwo\r", 8);
    tide_sleep(5);
    tide_write(x->sv[1], "\nthreeEN", 8); /* "\r\n" split; "END" split */
    tide_sleep(5);
    tide_write(x->sv[1], "Dfour\r\n\r\nfive", 13);
    tide_sleep(5);
    tide_shutdown(x->sv[1], SHUT_WR);
    return 0;
}

static int rany_main(void *arg)
{
    rany *x = arg;
    tide_stream *s;
    tide_task *t;
    const tide_stream_delim d[] = {{"\n", 1}, {"\r\n", 2}, {"END", 3}, {"\r\n\r\n", 4}};
    const tide_stream_delim bad[] = {{"\n", 1}, {"", 0}};
    char small[4];
    tide_stream_opts o;
    tide_stream_opts_init(&o);
    o.limit = 16;
    tide_stream_open(&s, x->sv[0], &o);
    x->bad_empty = tide_stream_readuntil_any(s, bad, 2, x->b[0], 32, NULL);
    x->bad_null = tide_stream_readuntil_any(s, NULL, 1, x->b[0], 32, NULL);
    x->bad_none = tide_stream_readuntil_any(s, d, 0, x->b[0], 32, NULL);
    spawn(&t, rany_writer, x);
    for (int i = 0; i < 3; i++)
        x->r[i] = tide_stream_readuntil_any(s, d, 4, x->b[i], 32, &x->w[i]);
    /* too small a buffer: the bytes stay */
    x->which_err = 7;
    x->nobufs = tide_stream_readuntil_any(s, d, 4, small, sizeof small, &x->which_err);
    for (int i = 3; i < 6; i++)
        x->r[i] = tide_stream_readuntil_any(s, d, 4, x->b[i], 32, &x->w[i]);
    tide_await(t);
    tide_stream_close(s);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_readuntil_any(void **state)
{
    (void)state;
    int before = tt_count_fds();
    rany x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(rany_main, &x);
    assert_int_equal(x.bad_empty, -EINVAL);
    assert_int_equal(x.bad_null, -EINVAL);
    assert_int_equal(x.bad_none, -EINVAL);
    assert_int_equal(x.r[0], 4);
    assert_memory_equal(x.b[0], "one\n", 4);
    assert_int_equal(x.w[0], 0);
    /* "\r\n" and "\n" end at the same byte: the longer one is reported */
    assert_int_equal(x.r[1], 5);
    assert_memory_equal(x.b[1], "two\r\n", 5);
    assert_int_equal(x.w[1], 1);
    assert_int_equal(x.r[2], 8);
    assert_memory_equal(x.b[2], "threeEND", 8);
    assert_int_equal(x.w[2], 2);
    assert_int_equal(x.nobufs, -ENOBUFS);
    assert_int_equal(x.which_err, -1);
    /* the shortest piece wins: "four\r\n" ends before "four\r\n\r\n" */
    assert_int_equal(x.r[3], 6);
    assert_memory_equal(x.b[3], "four\r\n", 6);
    assert_int_equal(x.w[3], 1);
    assert_int_equal(x.r[4], 2);
    assert_memory_equal(x.b[4], "\r\n", 2);
    assert_int_equal(x.w[4], 1);
    assert_int_equal(x.r[5], 4); /* EOF: the unterminated rest */
    assert_memory_equal(x.b[5], "five", 4);
    assert_int_equal(x.w[5], -1);
    assert_int_equal(tt_count_fds(), before);
}

/* a long line over the limit with several delimiters: -EMSGSIZE, kept */
typedef struct rlong {
    int sv[2];
    ssize_t over, got;
    char buf[64];
} rlong;

static int rlong_main(void *arg)
{
    rlong *x = arg;
    tide_stream *s;
    tide_stream_opts o;
    const tide_stream_delim d[] = {{"\n", 1}, {";", 1}};
    tide_stream_opts_init(&o);
    o.limit = 10;
    tide_stream_open(&s, x->sv[0], &o);
    tide_write(x->sv[1], "0123456789ab;", 13);
    x->over = tide_stream_readuntil_any(s, d, 2, x->buf, sizeof x->buf, NULL);
    x->got = tide_stream_readexactly(s, x->buf, 13);
    tide_stream_close(s);
    tide_close(x->sv[1]);
    return 0;
}

static void test_stream_readuntil_any_limit(void **state)
{
    (void)state;
    int before = tt_count_fds();
    rlong x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(rlong_main, &x);
    assert_int_equal(x.over, -EMSGSIZE);
    assert_int_equal(x.got, 13);
    assert_memory_equal(x.buf, "0123456789ab;", 13);
    assert_int_equal(tt_count_fds(), before);
}

/* --- peer and local addresses */

typedef struct addrs {
    int tv[2], uv[2], pv[2];
    int peer_rc, local_rc, unix_rc, pipe_rc, null_rc, small_rc, closed_rc;
    int peer_port, local_port, want_peer_port, want_local_port, family, unix_family;
    socklen_t small_len;
} addrs;

static int addrs_main(void *arg)
{
    addrs *x = arg;
    tide_stream *t, *u, *p;
    struct sockaddr_storage ss;
    socklen_t len;
    tide_stream_open(&t, x->tv[0], NULL);
    tide_stream_open(&u, x->uv[0], NULL);
    tide_stream_open(&p, x->pv[0], NULL);
    len = sizeof ss;
    x->peer_rc = tide_stream_peer_addr(t, (struct sockaddr *)&ss, &len);
    x->family = ss.ss_family;
    x->peer_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    len = sizeof ss;
    x->local_rc = tide_stream_local_addr(t, (struct sockaddr *)&ss, &len);
    x->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    x->want_local_port = tide_sock_port(x->tv[0]);
    x->want_peer_port = tide_sock_port(x->tv[1]);
    len = sizeof ss;
    x->unix_rc = tide_stream_peer_addr(u, (struct sockaddr *)&ss, &len);
    x->unix_family = ss.ss_family;
    len = sizeof ss;
    x->pipe_rc = tide_stream_local_addr(p, (struct sockaddr *)&ss, &len);
    x->null_rc = tide_stream_peer_addr(t, NULL, &len);
    len = 4; /* too small: truncated, the full length reported */
    x->small_rc = tide_stream_peer_addr(t, (struct sockaddr *)&ss, &len);
    x->small_len = len;
    tide_stream_close(t);
    len = sizeof ss;
    x->closed_rc = tide_stream_peer_addr(t, (struct sockaddr *)&ss, &len);
    tide_stream_close(u);
    tide_stream_close(p);
    tide_close(x->tv[1]);
    tide_close(x->uv[1]);
    tide_close(x->pv[1]);
    return 0;
}

static void test_stream_addresses(void **state)
{
    (void)state;
    int before = tt_count_fds();
    addrs x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_tcp_pair(x.tv, 0), 0);
    assert_int_equal(tt_socketpair(x.uv, 0), 0);
    assert_int_equal(pipe2(x.pv, O_CLOEXEC), 0);
    TT_RUN(addrs_main, &x);
    assert_int_equal(x.peer_rc, 0);
    assert_int_equal(x.family, AF_INET);
    assert_int_equal(x.peer_port, x.want_peer_port);
    assert_int_equal(x.local_rc, 0);
    assert_int_equal(x.local_port, x.want_local_port);
    assert_int_equal(x.unix_rc, 0);
    assert_int_equal(x.unix_family, AF_UNIX);
    assert_int_equal(x.pipe_rc, -ENOTSOCK);
    assert_int_equal(x.null_rc, -EINVAL);
    assert_int_equal(x.small_rc, 0);
    assert_int_equal(x.small_len, sizeof(struct sockaddr_in));
    assert_int_equal(x.closed_rc, -EBADF);
    assert_int_equal(tt_count_fds(), before);
}

/* --- writev: many buffers, more than IOV_MAX, and its errors */

#define WV_N 3000

typedef struct wv {
    int sv[2];
    ssize_t w, w2, e_null, e_neg, e_base, empty;
    size_t got, total;
    long bad_at;
} wv;

static int wv_reader(void *arg)
{
    wv *x = arg;
    uint8_t *buf = malloc(65536);
    x->bad_at = -1;
    for (;;) {
        ssize_t n = tide_read(x->sv[1], buf, 65536);
        if (n <= 0)
            break;
        long b = tt_pat_check(buf, x->got, (size_t)n);
        if (b >= 0 && x->bad_at < 0)
            x->bad_at = (long)x->got + b;
        x->got += (size_t)n;
    }
    free(buf);
    return 0;
}

static int wv_main(void *arg)
{
    wv *x = arg;
    tide_stream *s;
    tide_task *r;
    struct iovec *iov = calloc(WV_N, sizeof *iov);
    uint8_t *data;
    size_t off = 0;
    for (int i = 0; i < WV_N; i++)
        x->total += (size_t)(i % 7) * 100 + (i % 3 == 0 ? 0 : 1);
    data = malloc(x->total);
    tt_pat_fill(data, 0, x->total);
    for (int i = 0; i < WV_N; i++) {
        size_t len = (size_t)(i % 7) * 100 + (i % 3 == 0 ? 0 : 1);
        iov[i].iov_base = len ? data + off : NULL; /* empty ones may be NULL */
        iov[i].iov_len = len;
        off += len;
    }
    tide_stream_open(&s, x->sv[0], NULL);
    spawn(&r, wv_reader, x);
    x->w = tide_stream_writev(s, iov, WV_N);
    x->w2 = tide_stream_writev(s, iov, 0);
    x->e_null = tide_stream_writev(s, NULL, 2);
    x->e_neg = tide_stream_writev(s, iov, -1);
    struct iovec badv = {NULL, 5};
    x->e_base = tide_stream_writev(s, &badv, 1);
    x->empty = tide_stream_writev(NULL, iov, 1);
    tide_stream_flush(s);
    tide_stream_close(s);
    tide_await(r);
    tide_close(x->sv[1]);
    free(iov);
    free(data);
    return 0;
}

/* Writes of one step: the first goes out at once, the rest are corked until
 * the task suspends or yields, then go out together, in order. */
typedef struct cork {
    int sv[2], async;
    unsigned long sends;
    ssize_t seen_in_step, seen_after;
    char got[8 * 1024];
} cork;

static int cork_main(void *arg)
{
    cork *c = arg;
    tide_stream *s;
    char piece[1024];
    ssize_t n, total = 0;
    int i;

    assert_int_equal(tide_stream_open(&s, c->sv[0], NULL), 0);
    c->async = stream_async(s);
    c->sends = tide__stream_async_sends;
    for (i = 0; i < 8; i++) {
        memset(piece, 'a' + i, sizeof piece);
        assert_int_equal(tide_stream_write(s, piece, sizeof piece), (ssize_t)sizeof piece);
    }
    /* still in the step: only the first piece reached the kernel */
    c->seen_in_step = recv(c->sv[1], c->got, sizeof c->got, MSG_DONTWAIT);
    assert_int_equal(tide_sleep(0), 0); /* the step ends: the rest goes out */
    c->sends = tide__stream_async_sends - c->sends;
    if (c->async && c->seen_in_step < 0)
        tide_sleep(1); /* the send's completion: the loop's next enter */
    total = c->seen_in_step > 0 ? c->seen_in_step : 0;
    while (total < (ssize_t)sizeof c->got) {
        n = recv(c->sv[1], c->got + total, sizeof c->got - (size_t)total, MSG_DONTWAIT);
        if (n <= 0)
            break;
        total += n;
    }
    c->seen_after = total;
    assert_int_equal(tide_stream_close(s), 0);
    return 0;
}

static void test_stream_corked_writes(void **state)
{
    (void)state;
    cork c;
    int i;
    memset(&c, 0, sizeof c);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, c.sv), 0);
    assert_int_equal(tide_run(cork_main, &c), 0);
    /* Asynchronous sends: nothing in the step, then all 8 pieces as one
     * send; else the first piece at once, the 7 others in one syscall. */
    assert_int_equal(c.seen_in_step, c.async ? -1 : 1024);
    assert_int_equal(c.sends, c.async ? 1 : 0);
    assert_int_equal(c.seen_after, (ssize_t)sizeof c.got);
    for (i = 0; i < 8; i++)
        assert_int_equal(c.got[i * 1024], 'a' + i);
    close(c.sv[1]);
}

static void test_stream_writev(void **state)
{
    (void)state;
    int before = tt_count_fds();
    wv x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 4096), 0);
    TT_RUN(wv_main, &x);
    assert_int_equal(x.w, (ssize_t)x.total);
    assert_int_equal(x.w2, 0);
    assert_int_equal(x.e_null, -EINVAL);
    assert_int_equal(x.e_neg, -EINVAL);
    assert_int_equal(x.e_base, -EINVAL);
    assert_int_equal(x.empty, -EINVAL);
    assert_int_equal(x.got, x.total);
    assert_int_equal(x.bad_at, -1);
    assert_int_equal(tt_count_fds(), before);
}

/* --- streams left open when the loop ends are closed with it; a forgotten
 * fd is no longer the stream's to close */

typedef struct left {
    int sv[2], fv[2];
    int forget_close, forgotten_alive;
} left;

static int left_main(void *arg)
{
    left *x = arg;
    tide_stream *s, *f;
    tide_stream_open(&s, x->sv[0], NULL); /* never closed: the loop does it */
    tide_stream_write(s, "bye", 3);
    tide_stream_open(&f, x->fv[0], NULL);
    tide_fd_forget(x->fv[0]); /* handed to someone else */
    x->forget_close = tide_stream_close(f);
    x->forgotten_alive = fcntl(x->fv[0], F_GETFD) >= 0;
    return 0;
}

static void test_stream_left_open_and_forgotten(void **state)
{
    (void)state;
    int before = tt_count_fds();
    left x;
    char b[8];
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    assert_int_equal(tt_socketpair(x.fv, 0), 0);
    TT_RUN(left_main, &x);
    assert_int_equal(fcntl(x.sv[0], F_GETFD), -1); /* closed by the loop's end */
    assert_int_equal(read(x.sv[1], b, sizeof b), 3);
    assert_int_equal(x.forget_close, 0);
    assert_true(x.forgotten_alive);
    close(x.fv[0]);
    close(x.fv[1]);
    close(x.sv[1]);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_echo_1mib),
        cmocka_unit_test(test_readuntil_split_delimiter),
        cmocka_unit_test(test_readline_limits_default),
        cmocka_unit_test(test_readline_limits_small),
        cmocka_unit_test(test_readexactly_timeout_and_eof),
        cmocka_unit_test(test_stream_half_close),
        cmocka_unit_test(test_stream_write_error_sticks),
        cmocka_unit_test(test_stream_backpressure),
        cmocka_unit_test(test_stream_close_and_cancel_blocked),
        cmocka_unit_test(test_stream_reset_mid_read),
        cmocka_unit_test(test_open_connection),
        cmocka_unit_test(test_stream_misuse),
        cmocka_unit_test(test_stream_stale_handle),
        cmocka_unit_test(test_stream_fd_closed_and_reused),
        cmocka_unit_test(test_stream_two_readers),
        cmocka_unit_test(test_stream_write_nomem),
        cmocka_unit_test(test_stream_write_timeout),
        cmocka_unit_test(test_stream_write_timeout_progress),
        cmocka_unit_test(test_stream_write_eof),
        cmocka_unit_test(test_stream_read_all),
        cmocka_unit_test(test_stream_readuntil_any),
        cmocka_unit_test(test_stream_readuntil_any_limit),
        cmocka_unit_test(test_stream_addresses),
        cmocka_unit_test(test_stream_writev),
        cmocka_unit_test(test_stream_corked_writes),
        cmocka_unit_test(test_stream_left_open_and_forgotten),
    };
    tide_replace_allocator(t_malloc, t_realloc, t_calloc, t_free);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
