/*
 * Asynchronous stream sends through io_uring (stream.c's "Asynchronous
 * sends"): tide_stream_write only queues, the end of the step submits the
 * queue as one IORING_OP_SEND / SENDMSG, and the op and its bytes are the
 * stream's, kept until the completion is reaped whatever happens to the
 * stream, its tasks or the loop.  Every test forces TIDE_POLLER=io_uring;
 * where the kernel refuses io_uring (or its completion operations) the
 * same tests run on the readiness path (a send syscall) and must give the
 * same results; the count of asynchronous sends says which path ran.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tide.h"
#include "poll.h"
#include "tide_int.h"
#include "transport.h"
#include "util.h"
#include "net_util.h"

static int ops_ok; /* this kernel takes completion operations */

static int force_uring(void **state)
{
    (void)state;
    setenv("TIDE_POLLER", "io_uring", 1);
    tide__uring_no_ops = 0;
    return 0;
}

/* The stream sends asynchronously; on this kernel it must iff ops_ok. */
static int stream_async(tide_stream *s)
{
    tide__transport *t = tide__stream_transport(s);
    return t && t->ops->async && t->ops->async(t);
}

/* Reads fd to EOF checking the pattern from 0; the count, or -1 (a byte
 * out of place or an error). */
static ssize_t read_pattern(int fd, size_t bufsz, int nap_every)
{
    static uint8_t buf[1 << 16];
    size_t got = 0, reads = 0;
    int bad = 0;

    if (bufsz > sizeof buf)
        bufsz = sizeof buf;
    for (;;) {
        ssize_t n = tide_read(fd, buf, bufsz);
        if (n < 0)
            return -1;
        if (n == 0)
            return bad ? -1 : (ssize_t)got;
        if (tt_pat_check(buf, got, (size_t)n) >= 0)
            bad = 1; /* read on to EOF: the writer is not left waiting */
        got += (size_t)n;
        if (nap_every && ++reads % (size_t)nap_every == 0)
            tide_sleep(1); /* slow: the writer's sends go short meanwhile */
    }
}

typedef struct rd {
    int fd;
    size_t bufsz;
    int nap_every;
    ssize_t got;
} rd;

static int reader_task(void *arg)
{
    rd *r = arg;
    r->got = read_pattern(r->fd, r->bufsz, r->nap_every);
    return 0;
}

/* ------------------------------------------- one send for a whole step */

typedef struct step {
    int sv[2], async;
    unsigned long sends_in_step, sends;
    ssize_t seen_in_step, w, fl;
    char got[1000];
} step;

static int step_main(void *arg)
{
    step *x = arg;
    tide_stream *s;
    size_t total = 0;
    int i;

    if (tt_socketpair(x->sv, 0) < 0 || tide_stream_open(&s, x->sv[0], NULL) < 0)
        return -1;
    x->async = stream_async(s);
    x->sends = tide__stream_async_sends;
    for (i = 0; i < 100; i++) {
        char piece[10];
        tt_pat_fill(piece, (uint64_t)i * 10, 10);
        x->w = tide_stream_write(s, piece, sizeof piece);
        if (x->w != 10)
            return -2;
    }
    x->sends_in_step = tide__stream_async_sends - x->sends;
    x->seen_in_step = recv(x->sv[1], x->got, sizeof x->got, MSG_DONTWAIT);
    x->fl = tide_stream_flush(s); /* the step ends: one send for all of it */
    x->sends = tide__stream_async_sends - x->sends;
    total = x->seen_in_step > 0 ? (size_t)x->seen_in_step : 0;
    while (total < sizeof x->got) {
        ssize_t n = tide_read(x->sv[1], x->got + total, sizeof x->got - total);
        if (n <= 0)
            return -3;
        total += (size_t)n;
    }
    if (tt_pat_check(x->got, 0, sizeof x->got) >= 0)
        return -4;
    if (tide_stream_close(s) != 0)
        return -5;
    tide_close(x->sv[1]);
    return 0;
}

static void test_one_send_per_step(void **state)
{
    int fds = tt_count_fds();
    step x;

    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(step_main, &x);
    assert_int_equal(x.async, ops_ok);
    assert_int_equal(x.fl, 0);
    assert_int_equal(x.sends_in_step, 0); /* nothing submitted inside the step */
    if (x.async) {
        assert_int_equal(x.seen_in_step, -1); /* nothing sent before the step's end */
        assert_int_equal(x.sends, 1);         /* 100 writes, one submission */
    } else {
        assert_int_equal(x.seen_in_step, 10); /* readiness: the first write at once */
        assert_int_equal(x.sends, 0);
    }
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------ large writes to a slow reader */

#define BIG ((size_t)3 << 20)

typedef struct bulk {
    int sv[2], async, grow;
    unsigned long sends;
    ssize_t fl, cl;
    rd r;
} bulk;

static int bulk_main(void *arg)
{
    bulk *b = arg;
    uint8_t *data = malloc(BIG);
    tide_stream *s;
    tide_task *t;
    size_t off = 0, piece = 1000;

    if (!data || tt_socketpair(b->sv, 16384) < 0 || tide_stream_open(&s, b->sv[0], NULL) < 0)
        return -1;
    b->async = stream_async(s);
    tt_pat_fill(data, 0, BIG);
    b->r.fd = b->sv[1];
    b->r.bufsz = 7001;
    b->r.nap_every = 64;
    if (tide_create_task(&t, reader_task, &b->r) < 0)
        return -2;
    b->sends = tide__stream_async_sends;
    /* Pieces of growing sizes; with grow set, no drain: the queue grows
     * (its ring moves to a bigger buffer) while a send is in flight. */
    while (off < BIG) {
        size_t n = piece < BIG - off ? piece : BIG - off;
        if (tide_stream_write(s, data + off, n) != (ssize_t)n)
            return -3;
        off += n;
        piece = piece * 3 / 2 + 1;
        if (b->grow) {
            if (tide_sleep(0) < 0)
                return -4;
        } else if (tide_stream_drain(s) < 0) {
            return -5;
        }
    }
    b->fl = tide_stream_flush(s);
    b->sends = tide__stream_async_sends - b->sends;
    b->cl = tide_stream_close(s); /* the reader sees EOF after the last byte */
    tide_await(t);
    tide_close(b->sv[1]);
    free(data);
    return 0;
}

static void run_bulk(int grow)
{
    int fds = tt_count_fds();
    bulk b;

    memset(&b, 0, sizeof b);
    b.grow = grow;
    TT_RUN(bulk_main, &b);
    assert_int_equal(b.async, ops_ok);
    assert_int_equal(b.fl, 0);
    assert_int_equal(b.cl, 0);
    assert_int_equal(b.r.got, (ssize_t)BIG); /* every byte, in order, once */
    if (b.async)
        assert_true(b.sends > 1); /* short sends went on from where they stopped */
    else
        assert_int_equal(b.sends, 0);
    assert_int_equal(tt_count_fds(), fds);
}

static void test_large_writes_slow_reader(void **state)
{
    (void)state;
    run_bulk(0);
}

static void test_queue_grows_in_flight(void **state)
{
    (void)state;
    run_bulk(1);
}

/* ------------------------- a buffer the kernel reads is never reused */

typedef struct pin {
    int a[2], b[2], async;
    size_t pending;
    rd r;
} pin;

static int pin_main(void *arg)
{
    pin *x = arg;
    static uint8_t data[160000], other[60000];
    tide_stream *sa, *sb;
    tide_task *r;

    if (tt_socketpair(x->a, 16384) < 0 || tt_socketpair(x->b, 0) < 0 ||
        tide_stream_open(&sa, x->a[0], NULL) < 0 || tide_stream_open(&sb, x->b[0], NULL) < 0)
        return -1;
    x->async = stream_async(sa);
    tt_pat_fill(data, 0, sizeof data);
    memset(other, 0xee, sizeof other);
    /* A's first 60000 bytes sit in a 64 KiB buffer; its send waits in the
     * kernel for the reader, who has not started. */
    if (tide_stream_write(sa, data, 60000) != 60000 || tide_sleep(1) < 0)
        return -2;
    x->pending = tide_stream_write_pending(sa);
    /* A's queue grows into a bigger buffer while that send is out; B then
     * takes a 64 KiB buffer from the same pool and fills it: were A's old
     * buffer given back already, the kernel would send B's bytes to A's
     * peer. */
    if (tide_stream_write(sa, data + 60000, sizeof data - 60000) != (ssize_t)(sizeof data - 60000))
        return -3;
    if (tide_stream_write(sb, other, sizeof other) != (ssize_t)sizeof other)
        return -4;
    x->r.fd = x->a[1];
    x->r.bufsz = 4096;
    if (tide_create_task(&r, reader_task, &x->r) < 0)
        return -5;
    if (tide_stream_close(sa) != 0 || tide_stream_close(sb) != 0)
        return -6;
    tide_await(r);
    tide_close(x->a[1]);
    tide_close(x->b[1]);
    return 0;
}

static void test_pinned_buffer_not_reused(void **state)
{
    int fds = tt_count_fds();
    pin x;

    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(pin_main, &x);
    assert_int_equal(x.async, ops_ok);
    assert_true(x.pending > 0 && x.pending < 60000); /* part went, the rest waits */
    assert_int_equal(x.r.got, 160000); /* in order: none of B's bytes */
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------- a closed stream's struct is not reused before its send ends */

#define NREUSE 40 /* more than a slab of stream structs (32): the closed one's is reused */

typedef struct reuse {
    int a[2], async, close_rc, bad;
    size_t pending;
} reuse;

static int reuse_main(void *arg)
{
    reuse *x = arg;
    static uint8_t data[1 << 20];
    tide_stream *sa, *s[NREUSE];
    int sv[NREUSE][2], i;
    tide_scope sc;

    if (tt_socketpair(x->a, 16384) < 0 || tide_stream_open(&sa, x->a[0], NULL) < 0)
        return -1;
    x->async = stream_async(sa);
    if (tide_stream_write(sa, data, sizeof data) != (ssize_t)sizeof data || tide_sleep(1) < 0)
        return -2;
    x->pending = tide_stream_write_pending(sa);
    /* Cut short: the queue is dropped and the fd closed; the send's
     * completion comes with the loop's next enter. */
    tide_timeout_begin(&sc, 5);
    x->close_rc = tide_stream_close(sa);
    tide_timeout_end(&sc);
    /* In the same step, streams enough to reuse every free struct. */
    for (i = 0; i < NREUSE; i++)
        if (tt_socketpair(sv[i], 0) < 0 || tide_stream_open(&s[i], sv[i][0], NULL) < 0)
            return -3;
    if (tide_sleep(1) < 0) /* the old send's completion is reaped */
        return -4;
    for (i = 0; i < NREUSE; i++) {
        char c;
        if (tide_stream_write(s[i], "z", 1) != 1 || tide_stream_flush(s[i]) != 0 ||
            tide_read(sv[i][1], &c, 1) != 1 || c != 'z')
            x->bad++;
        if (tide_stream_close(s[i]) != 0)
            x->bad++;
        tide_close(sv[i][1]);
    }
    tide_close(x->a[1]);
    return 0;
}

static void test_struct_not_reused_in_flight(void **state)
{
    int fds = tt_count_fds();
    reuse x;

    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(reuse_main, &x);
    assert_int_equal(x.async, ops_ok);
    assert_true(x.pending > 0);
    assert_int_equal(x.close_rc, -ETIMEDOUT);
    assert_int_equal(x.bad, 0); /* no stream got the old send's completion */
    assert_int_equal(tt_count_fds(), fds);
}

/* ---------------------------------------- close with a send in flight */

typedef struct cls {
    int sv[2], async, cancel;
    size_t pending_at_close;
    ssize_t cl;
    rd r;
} cls;

static int closer_task(void *arg)
{
    cls *c = arg;
    uint8_t *data = malloc(BIG);
    tide_stream *s;

    if (!data || tide_stream_open(&s, c->sv[0], NULL) < 0)
        return -1;
    c->async = stream_async(s);
    tt_pat_fill(data, 0, BIG);
    if (tide_stream_write(s, data, BIG) != (ssize_t)BIG)
        return -2;
    free(data);
    if (tide_sleep(0) < 0) /* the step ends: the send is submitted */
        return -3;
    c->pending_at_close = tide_stream_write_pending(s);
    c->cl = tide_stream_close(s); /* graceful: waits for the queue */
    return 0;
}

static int close_main(void *arg)
{
    cls *c = arg;
    tide_task *w, *r;

    if (tt_socketpair(c->sv, 16384) < 0)
        return -1;
    c->r.fd = c->sv[1];
    c->r.bufsz = 4096;
    c->r.nap_every = c->cancel ? 0 : 32;
    if (tide_create_task(&w, closer_task, c) < 0)
        return -2;
    if (c->cancel) {
        /* The reader starts late: the writer is still in its close. */
        tide_sleep(20);
        tide_cancel(w);
    }
    if (tide_create_task(&r, reader_task, &c->r) < 0)
        return -3;
    if (tide_await(w) != 0)
        return -4;
    tide_await(r);
    tide_close(c->sv[1]);
    return 0;
}

static void test_close_graceful(void **state)
{
    int fds = tt_count_fds();
    cls c;

    (void)state;
    memset(&c, 0, sizeof c);
    TT_RUN(close_main, &c);
    assert_int_equal(c.async, ops_ok);
    assert_true(c.pending_at_close > 0); /* a send was in flight (or queued) */
    assert_int_equal(c.cl, 0);
    assert_int_equal(c.r.got, (ssize_t)BIG); /* every byte before EOF */
    assert_int_equal(tt_count_fds(), fds);
}

static void test_close_cancelled(void **state)
{
    int fds = tt_count_fds();
    cls c;

    (void)state;
    memset(&c, 0, sizeof c);
    c.cancel = 1;
    TT_RUN(close_main, &c);
    assert_int_equal(c.async, ops_ok);
    assert_int_equal(c.cl, -ECANCELED);
    /* Cut short: a prefix, in order, then EOF; the fd is released. */
    assert_true(c.r.got > 0 && c.r.got < (ssize_t)BIG);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------ cancel of a writer in drain */

typedef struct drn {
    int sv[2], async;
    int drain_rc, fl;
    tide_task *w;
    tide_stream *s;
    rd r;
} drn;

static int drainer_task(void *arg)
{
    drn *d = arg;
    uint8_t *data = malloc(BIG);

    if (!data)
        return -1;
    tt_pat_fill(data, 0, BIG);
    if (tide_stream_write(d->s, data, BIG) != (ssize_t)BIG)
        return -2;
    free(data);
    d->drain_rc = tide_stream_drain(d->s); /* above the high-water mark: waits */
    return 0;
}

static int drain_main(void *arg)
{
    drn *d = arg;
    tide_task *r;

    if (tt_socketpair(d->sv, 16384) < 0 || tide_stream_open(&d->s, d->sv[0], NULL) < 0)
        return -1;
    d->async = stream_async(d->s);
    if (tide_create_task(&d->w, drainer_task, d) < 0)
        return -2;
    tide_sleep(10);
    tide_cancel(d->w);
    if (tide_await(d->w) != 0)
        return -3;
    /* The queue is the stream's, not the task's: it goes on after the
     * cancel, and another task's flush sees all of it out. */
    d->r.fd = d->sv[1];
    d->r.bufsz = 65536;
    if (tide_create_task(&r, reader_task, &d->r) < 0)
        return -4;
    d->fl = tide_stream_flush(d->s);
    if (tide_stream_close(d->s) != 0)
        return -5;
    tide_await(r);
    tide_close(d->sv[1]);
    return 0;
}

static void test_cancel_in_drain(void **state)
{
    int fds = tt_count_fds();
    drn d;

    (void)state;
    memset(&d, 0, sizeof d);
    TT_RUN(drain_main, &d);
    assert_int_equal(d.async, ops_ok);
    assert_int_equal(d.drain_rc, -ECANCELED);
    assert_int_equal(d.fl, 0);
    assert_int_equal(d.r.got, (ssize_t)BIG);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------ peer reset in the middle */

typedef struct rst {
    int tv[2], async;
    ssize_t w, fl, again, cl;
} rst;

static int reset_main(void *arg)
{
    rst *x = arg;
    uint8_t *data = malloc(BIG);
    tide_stream *s;

    if (!data || tt_tcp_pair(x->tv, 16384) < 0 || tide_stream_open(&s, x->tv[0], NULL) < 0)
        return -1;
    x->async = stream_async(s);
    tt_pat_fill(data, 0, BIG);
    x->w = tide_stream_write(s, data, BIG);
    tide_sleep(5); /* the send is in flight: the peer's buffers are full */
    tt_linger0(x->tv[1]);
    close(x->tv[1]); /* a RST for the bytes it never read */
    x->fl = tide_stream_flush(s);
    x->again = tide_stream_write(s, data, 1);
    x->cl = tide_stream_close(s);
    free(data);
    return 0;
}

static void test_peer_reset(void **state)
{
    int fds = tt_count_fds();
    rst x;

    (void)state;
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    memset(&x, 0, sizeof x);
    TT_RUN(reset_main, &x);
    assert_int_equal(x.async, ops_ok);
    assert_int_equal(x.w, (ssize_t)BIG);
    assert_true(x.fl == -ECONNRESET || x.fl == -EPIPE);
    assert_int_equal(x.again, x.fl); /* sticky */
    assert_int_equal(x.cl, x.fl);
    assert_int_equal(tt_count_fds(), fds);
}

/* ---------------------------------- the fd closed under the stream */

typedef struct under {
    int sv[2], async;
    ssize_t fl, again;
} under;

static int under_main(void *arg)
{
    under *x = arg;
    uint8_t *data = malloc(BIG);
    tide_stream *s;

    if (!data || tt_socketpair(x->sv, 16384) < 0 || tide_stream_open(&s, x->sv[0], NULL) < 0)
        return -1;
    x->async = stream_async(s);
    tt_pat_fill(data, 0, BIG);
    if (tide_stream_write(s, data, BIG) != (ssize_t)BIG)
        return -2;
    tide_sleep(1); /* in flight, the peer not reading */
    tide_close(x->sv[0]); /* behind the stream's back: cancels the send */
    x->fl = tide_stream_flush(s);
    x->again = tide_stream_write(s, "x", 1);
    (void)tide_stream_close(s); /* must not close whoever has the number now */
    tide_close(x->sv[1]);
    free(data);
    return 0;
}

static void test_fd_closed_under_stream(void **state)
{
    int fds = tt_count_fds();
    under x;

    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(under_main, &x);
    assert_int_equal(x.async, ops_ok);
    assert_int_equal(x.fl, -EBADF);
    assert_int_equal(x.again, -EBADF);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------- write_eof behind a send */

typedef struct weof {
    int sv[2], async;
    int eof_rc, cl;
    rd r;
} weof;

static int weof_main(void *arg)
{
    weof *x = arg;
    uint8_t *data = malloc(BIG);
    tide_stream *s;
    tide_task *r;

    if (!data || tt_socketpair(x->sv, 16384) < 0 || tide_stream_open(&s, x->sv[0], NULL) < 0)
        return -1;
    x->async = stream_async(s);
    tt_pat_fill(data, 0, BIG);
    x->r.fd = x->sv[1];
    x->r.bufsz = 8192;
    x->r.nap_every = 64;
    if (tide_create_task(&r, reader_task, &x->r) < 0)
        return -2;
    if (tide_stream_write(s, data, BIG) != (ssize_t)BIG)
        return -3;
    tide_sleep(0);
    x->eof_rc = tide_stream_write_eof(s); /* shut once the send is done */
    tide_await(r);                        /* EOF after every byte */
    x->cl = tide_stream_close(s);
    tide_close(x->sv[1]);
    free(data);
    return 0;
}

static void test_write_eof_after_send(void **state)
{
    int fds = tt_count_fds();
    weof x;

    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(weof_main, &x);
    assert_int_equal(x.async, ops_ok);
    assert_int_equal(x.eof_rc, 0);
    assert_int_equal(x.cl, 0);
    assert_int_equal(x.r.got, (ssize_t)BIG);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------ writes and close after the loop's run */

typedef struct late {
    int sv[2], async;
    tide_stream *s;
} late;

static int late_open(void *arg)
{
    late *l = arg;

    if (tt_socketpair(l->sv, 16384) < 0 || tide_stream_open(&l->s, l->sv[0], NULL) < 0)
        return -1;
    l->async = stream_async(l->s);
    return 0; /* the stream outlives the run */
}

/* A program that writes and closes a stream after tide_loop_run returned:
 * nothing will submit a send then, so the bytes go out at once (as on
 * epoll) and the close reports them gone (it dropped them, -EAGAIN, when
 * they were queued as a send that never left). */
static void test_write_close_after_run(void **state)
{
    tide_loop *loop;
    tide_task *t;
    unsigned long sends;
    char buf[16];
    late l;

    (void)state;
    memset(&l, 0, sizeof l);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, late_open, &l, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    assert_int_equal(l.async, ops_ok);
    sends = tide__stream_async_sends;
    assert_int_equal(tide_stream_write(l.s, "hello", 5), 5);
    assert_int_equal(tide_stream_close(l.s), 0);
    assert_int_equal(tide__stream_async_sends, sends); /* a syscall, not a send */
    assert_int_equal(read(l.sv[1], buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(read(l.sv[1], buf, sizeof buf), 0); /* then EOF */
    close(l.sv[1]);
    tide_loop_free(loop);
}

/* ------------------------------------- a loop freed with sends out */

static int stuck_writer(void *arg)
{
    int fd = *(int *)arg;
    static uint8_t data[1 << 20];
    tide_stream *s;

    if (tide_stream_open(&s, fd, NULL) < 0)
        return -1;
    if (tide_stream_write(s, data, sizeof data) != (ssize_t)sizeof data)
        return -2;
    /* Never closed, never flushed: the loop's end finds the send out. */
    return tide_sleep(100000);
}

static int free_other(void *arg)
{
    tide_loop_free((tide_loop *)arg); /* another loop (ours) runs on the thread */
    return 0;
}

static void run_loop_free(int under_other)
{
    tide_loop *loop;
    tide_task *t[8];
    unsigned long sends = tide__stream_async_sends;
    int sv[8][2], i, fds = tt_count_fds();

    assert_int_equal(tide_loop_new(&loop), 0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(tt_socketpair(sv[i], 16384), 0);
        assert_int_equal(tide_create_task_ex(&t[i], loop, stuck_writer, &sv[i][0], NULL), 0);
    }
    /* Two passes: the writers queue, their steps end (the sends are
     * submitted), and the kernel takes what fits. */
    assert_true(tide_loop_run_once(loop) >= 0);
    assert_true(tide_loop_run_once(loop) >= 0);
    /* At least one each (a short one is sent on from where it stopped). */
    if (ops_ok)
        assert_true(tide__stream_async_sends - sends >= 8);
    else
        assert_int_equal(tide__stream_async_sends - sends, 0);
    if (under_other) {
        tide_loop *outer;
        tide_task *ft;
        assert_int_equal(tide_loop_new(&outer), 0);
        assert_int_equal(tide_create_task_ex(&ft, outer, free_other, loop, NULL), 0);
        assert_int_equal(tide_loop_run_until_complete(outer, ft), 0);
        tide_loop_free(outer);
    } else {
        /* The sends' bytes and ops are the streams': the ring is drained
         * before the streams' memory goes (ASan sees any read of it). */
        tide_loop_free(loop);
    }
    for (i = 0; i < 8; i++)
        close(sv[i][1]); /* sv[i][0] went with its stream, closed by the loop's end */
    assert_int_equal(tt_count_fds(), fds);
}

static void test_loop_free_in_flight(void **state)
{
    (void)state;
    run_loop_free(0);
}

static void test_loop_free_under_other_loop(void **state)
{
    (void)state;
    run_loop_free(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_one_send_per_step, force_uring),
        cmocka_unit_test_setup(test_large_writes_slow_reader, force_uring),
        cmocka_unit_test_setup(test_queue_grows_in_flight, force_uring),
        cmocka_unit_test_setup(test_pinned_buffer_not_reused, force_uring),
        cmocka_unit_test_setup(test_struct_not_reused_in_flight, force_uring),
        cmocka_unit_test_setup(test_close_graceful, force_uring),
        cmocka_unit_test_setup(test_close_cancelled, force_uring),
        cmocka_unit_test_setup(test_cancel_in_drain, force_uring),
        cmocka_unit_test_setup(test_peer_reset, force_uring),
        cmocka_unit_test_setup(test_fd_closed_under_stream, force_uring),
        cmocka_unit_test_setup(test_write_eof_after_send, force_uring),
        cmocka_unit_test_setup(test_write_close_after_run, force_uring),
        cmocka_unit_test_setup(test_loop_free_in_flight, force_uring),
        cmocka_unit_test_setup(test_loop_free_under_other_loop, force_uring),
    };
    tide__poller p;

    memset(&p, 0, sizeof p);
    setenv("TIDE_POLLER", "io_uring", 1);
    if (tide__poller_init(&p) == 0) {
        ops_ok = tide__poller_ops(&p);
        tide__poller_free(&p);
    }
    print_message("io_uring asynchronous stream sends: %s\n",
                  ops_ok ? "on" : "off (readiness path)");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
