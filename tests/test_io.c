/*
 * Tests of the awaitable fds (src/io.c) and of tide_signal_wait (src/signal.c):
 * read/write/readv/writev/recv/send/sendfile, partial transfers, resets,
 * half-close, EPIPE without SIGPIPE, close and cancel of waiters, -EBUSY,
 * misuse.  Loopback and socketpairs only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tide.h"
#include "tide_int.h"
#include "net_util.h"

#define MIB (1024 * 1024)

static int spawn(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task(t, fn, arg);
}

/* ------------------------------------------------ 1 MiB, partial transfers */

typedef struct xfer {
    int wfd, rfd;
    size_t total;
    ssize_t wrc;       /* last write result (error) */
    size_t written;
    int shut_rc;
    size_t got;
    long bad_at;       /* -1: every byte right */
    int reads, short_reads;
    ssize_t rrc;       /* the read that ended the loop (0 = EOF) */
    int close_w, close_r;
    int is_pipe;
} xfer;

static int xfer_writer(void *arg)
{
    xfer *x = arg;
    static const size_t sizes[] = {1, 7, 4096, 65536 + 3, 100, 32768, 4095, 70001, 13};
    uint8_t *buf = malloc(70001);
    size_t k = 0;
    x->wrc = 0;
    while (x->written < x->total) {
        size_t n = sizes[k++ % TT_ARRAY_LEN(sizes)];
        if (n > x->total - x->written)
            n = x->total - x->written;
        tt_pat_fill(buf, x->written, n);
        ssize_t w = tide_write(x->wfd, buf, n);
        if (w != (ssize_t)n) {
            x->wrc = w;
            break;
        }
        x->written += n;
    }
    free(buf);
    x->shut_rc = tide_shutdown(x->wfd, SHUT_WR);
    if (x->is_pipe)
        x->close_w = tide_close(x->wfd); /* the reader's EOF */
    return 0;
}

static int xfer_reader(void *arg)
{
    xfer *x = arg;
    static const size_t sizes[] = {3, 9000, 1, 4096, 777, 20000, 2};
    uint8_t buf[20000];
    size_t k = 0;
    x->bad_at = -1;
    for (;;) {
        size_t want = sizes[k++ % TT_ARRAY_LEN(sizes)];
        ssize_t n = tide_read(x->rfd, buf, want);
        if (n <= 0) {
            x->rrc = n;
            break;
        }
        x->reads++;
        if ((size_t)n < want)
            x->short_reads++;
        long b = tt_pat_check(buf, x->got, (size_t)n);
        if (b >= 0 && x->bad_at < 0)
            x->bad_at = (long)x->got + b;
        x->got += (size_t)n;
    }
    return 0;
}

static int xfer_main(void *arg)
{
    xfer *x = arg;
    tide_task *w, *r;
    if (spawn(&r, xfer_reader, x) || spawn(&w, xfer_writer, x))
        return -1;
    tide_await(w);
    tide_await(r);
    if (!x->is_pipe)
        x->close_w = tide_close(x->wfd);
    x->close_r = tide_close(x->rfd);
    return 0;
}

static void run_xfer(int wfd, int rfd)
{
    xfer x;
    memset(&x, 0, sizeof x);
    x.wfd = wfd;
    x.rfd = rfd;
    x.total = MIB;
    TT_RUN(xfer_main, &x);
    assert_int_equal(x.wrc, 0);
    assert_int_equal(x.written, MIB);
    assert_int_equal(x.shut_rc, 0);
    assert_int_equal(x.rrc, 0);
    assert_int_equal(x.got, MIB);
    assert_int_equal(x.bad_at, -1);
    assert_true(x.reads > 100);
    assert_int_equal(x.close_w, 0);
    assert_int_equal(x.close_r, 0);
}

static void test_1mib_socketpair(void **state)
{
    (void)state;
    int before = tt_count_fds(), sv[2];
    assert_int_equal(tt_socketpair(sv, 4096), 0);
    run_xfer(sv[0], sv[1]);
    assert_int_equal(tt_count_fds(), before);
}

static void test_1mib_tcp(void **state)
{
    (void)state;
    int before = tt_count_fds(), sv[2];
    assert_int_equal(tt_tcp_pair(sv, 8192), 0);
    run_xfer(sv[0], sv[1]);
    assert_int_equal(tt_count_fds(), before);
}

static void test_1mib_pipe(void **state)
{
    (void)state;
    int before = tt_count_fds(), p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    (void)fcntl(p[1], F_SETPIPE_SZ, 4096);
    xfer x;
    memset(&x, 0, sizeof x);
    x.wfd = p[1];
    x.rfd = p[0];
    x.total = MIB;
    x.is_pipe = 1;
    TT_RUN(xfer_main, &x);
    assert_int_equal(x.written, MIB);
    assert_int_equal(x.wrc, 0);
    /* shutdown is for sockets */
    assert_int_equal(x.shut_rc, -ENOTSOCK);
    /* the writer's close ends the reader (EOF), so the run completes */
    assert_int_equal(x.got, MIB);
    assert_int_equal(x.bad_at, -1);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------------------------------- readv/writev */

#define NIOV 300

typedef struct vio {
    int sv[2];
    ssize_t wrc;
    size_t total, got;
    long bad_at;
    ssize_t rrc;
} vio;

static int vio_writer(void *arg)
{
    vio *v = arg;
    struct iovec iov[NIOV];
    uint8_t *buf = malloc(NIOV * 4000);
    size_t off = 0;
    for (int i = 0; i < NIOV; i++) {
        size_t n = (i % 10 == 3) ? 0 : (size_t)(1 + (i * 997) % 3999);
        iov[i].iov_base = buf + off;
        iov[i].iov_len = n;
        tt_pat_fill(buf + off, off, n);
        off += n;
    }
    v->total = off;
    v->wrc = tide_writev(v->sv[0], iov, NIOV);
    /* the array must not have been changed */
    size_t chk = 0;
    for (int i = 0; i < NIOV; i++)
        chk += iov[i].iov_len;
    if (chk != off)
        v->wrc = -12345;
    free(buf);
    tide_shutdown(v->sv[0], SHUT_WR);
    return 0;
}

static int vio_reader(void *arg)
{
    vio *v = arg;
    uint8_t a[5], b[3000], c[1];
    v->bad_at = -1;
    for (;;) {
        struct iovec iov[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
        ssize_t n = tide_readv(v->sv[1], iov, 3);
        if (n <= 0) {
            v->rrc = n;
            break;
        }
        uint8_t flat[sizeof a + sizeof b + sizeof c];
        memcpy(flat, a, sizeof a);
        memcpy(flat + sizeof a, b, sizeof b);
        memcpy(flat + sizeof a + sizeof b, c, sizeof c);
        long bad = tt_pat_check(flat, v->got, (size_t)n);
        if (bad >= 0 && v->bad_at < 0)
            v->bad_at = (long)v->got + bad;
        v->got += (size_t)n;
    }
    return 0;
}

static int vio_main(void *arg)
{
    vio *v = arg;
    tide_task *w, *r;
    spawn(&r, vio_reader, v);
    spawn(&w, vio_writer, v);
    tide_await(w);
    tide_await(r);
    tide_close(v->sv[0]);
    tide_close(v->sv[1]);
    return 0;
}

static void test_writev_readv(void **state)
{
    (void)state;
    int before = tt_count_fds();
    vio v;
    memset(&v, 0, sizeof v);
    assert_int_equal(tt_tcp_pair(v.sv, 8192), 0);
    TT_RUN(vio_main, &v);
    assert_true(v.total > 500000);
    assert_int_equal(v.wrc, (ssize_t)v.total);
    assert_int_equal(v.rrc, 0);
    assert_int_equal(v.got, v.total);
    assert_int_equal(v.bad_at, -1);
    assert_int_equal(tt_count_fds(), before);
}

/* ----------------------------------------------------------- send/recv */

typedef struct sr {
    int sv[2];
    ssize_t s1, peek, r1, r2;
    char pbuf[8], rbuf[16], bbuf[8];
} sr;

static int sr_main(void *arg)
{
    sr *s = arg;
    s->s1 = tide_send(s->sv[0], "hello world", 11, 0);
    s->peek = tide_recv(s->sv[1], s->pbuf, 5, MSG_PEEK);
    s->r1 = tide_recv(s->sv[1], s->rbuf, sizeof s->rbuf, 0);
    s->r2 = tide_send(s->sv[1], "back", 4, MSG_DONTWAIT);
    s->r2 += 100 * tide_recv(s->sv[0], s->bbuf, sizeof s->bbuf, 0);
    tide_close(s->sv[0]);
    tide_close(s->sv[1]);
    return 0;
}

static void test_send_recv(void **state)
{
    (void)state;
    int before = tt_count_fds();
    sr s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_socketpair(s.sv, 0), 0);
    TT_RUN(sr_main, &s);
    assert_int_equal(s.s1, 11);
    assert_int_equal(s.peek, 5);
    assert_memory_equal(s.pbuf, "hello", 5);
    assert_int_equal(s.r1, 11);
    assert_memory_equal(s.rbuf, "hello world", 11);
    assert_int_equal(s.r2, 4 + 100 * 4);
    assert_memory_equal(s.bbuf, "back", 4);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------- sendfile */

#define SF_FILE (300 * 1000)

typedef struct sf {
    int sv[2], file;
    off_t off;
    ssize_t rc1, rc2;
    size_t got;
    long bad_at;
    uint64_t expect_off;
} sf;

static int sf_reader(void *arg)
{
    sf *s = arg;
    uint8_t buf[7000];
    s->bad_at = -1;
    s->expect_off = 1000;
    for (;;) {
        ssize_t n = tide_read(s->sv[1], buf, sizeof buf);
        if (n <= 0)
            break;
        /* first 250000 bytes from offset 1000, then 10 bytes from 0 */
        for (ssize_t i = 0; i < n; i++) {
            uint64_t pos = s->got + (size_t)i;
            uint64_t src = pos < 250000 ? 1000 + pos : pos - 250000;
            if (buf[i] != tt_pat(src) && s->bad_at < 0)
                s->bad_at = (long)pos;
        }
        s->got += (size_t)n;
    }
    return 0;
}

static int sf_main(void *arg)
{
    sf *s = arg;
    tide_task *r;
    spawn(&r, sf_reader, s);
    s->off = 1000;
    s->rc1 = tide_sendfile(s->sv[0], s->file, &s->off, 250000);
    /* NULL offset: from the file position (0), which is advanced */
    s->rc2 = tide_sendfile(s->sv[0], s->file, NULL, 10);
    tide_shutdown(s->sv[0], SHUT_WR);
    tide_await(r);
    tide_close(s->sv[0]);
    tide_close(s->sv[1]);
    return 0;
}

static void test_sendfile(void **state)
{
    (void)state;
    int before = tt_count_fds();
    char path[] = "/tmp/tide_sendfile_XXXXXX";
    sf s;
    memset(&s, 0, sizeof s);
    s.file = mkstemp(path);
    assert_true(s.file >= 0);
    unlink(path);
    uint8_t *buf = malloc(SF_FILE);
    tt_pat_fill(buf, 0, SF_FILE);
    assert_int_equal(write(s.file, buf, SF_FILE), SF_FILE);
    free(buf);
    assert_int_equal(lseek(s.file, 0, SEEK_SET), 0);
    assert_int_equal(tt_tcp_pair(s.sv, 8192), 0);
    TT_RUN(sf_main, &s);
    assert_int_equal(s.rc1, 250000);
    assert_int_equal(s.off, 251000);
    assert_int_equal(s.rc2, 10);
    assert_int_equal(lseek(s.file, 0, SEEK_CUR), 10);
    assert_int_equal(s.got, 250010);
    assert_int_equal(s.bad_at, -1);
    close(s.file);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------- EPIPE, never SIGPIPE */

typedef struct ep {
    int sock[2], pipe[2];
    ssize_t w_sock, s_sock, w_pipe, w_sock2;
    int sigpipe_ign;
} ep;

static int ep_main(void *arg)
{
    ep *e = arg;
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    e->sigpipe_ign = sa.sa_handler == SIG_IGN;
    close(e->sock[1]);
    close(e->pipe[0]);
    e->w_sock = tide_write(e->sock[0], "x", 1);
    e->s_sock = tide_send(e->sock[0], "x", 1, 0);
    e->w_pipe = tide_write(e->pipe[1], "x", 1);
    e->w_sock2 = tide_write(e->sock[0], "yy", 2);
    tide_close(e->sock[0]);
    tide_close(e->pipe[1]);
    return 0;
}

static void test_epipe_no_signal(void **state)
{
    (void)state;
    int before = tt_count_fds();
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &old); /* the default would kill us */
    ep e;
    memset(&e, 0, sizeof e);
    assert_int_equal(tt_socketpair(e.sock, 0), 0);
    assert_int_equal(pipe2(e.pipe, O_CLOEXEC), 0);
    TT_RUN(ep_main, &e);
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(e.sigpipe_ign, 1);
    assert_int_equal(e.w_sock, -EPIPE);
    assert_int_equal(e.s_sock, -EPIPE);
    assert_int_equal(e.w_pipe, -EPIPE);
    assert_int_equal(e.w_sock2, -EPIPE);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------- resets (RST) */

typedef struct rst {
    int sv[2];
    ssize_t rrc, wrc, wrc2;
    size_t wlen;
    int64_t t_blocked;
} rst;

static int rst_killer(void *arg)
{
    rst *r = arg;
    tide_sleep(50);
    tt_linger0(r->sv[1]);
    close(r->sv[1]); /* never given to tide: a plain close is fine */
    return 0;
}

static int rst_read_main(void *arg)
{
    rst *r = arg;
    tide_task *k;
    char buf[100];
    spawn(&k, rst_killer, r);
    int64_t t0 = tide_now();
    r->rrc = tide_read(r->sv[0], buf, sizeof buf);
    r->t_blocked = tide_now() - t0;
    tide_await(k);
    tide_close(r->sv[0]);
    return 0;
}

static void test_reset_mid_read(void **state)
{
    (void)state;
    int before = tt_count_fds();
    rst r;
    memset(&r, 0, sizeof r);
    assert_int_equal(tt_tcp_pair(r.sv, 0), 0);
    TT_RUN(rst_read_main, &r);
    assert_int_equal(r.rrc, -ECONNRESET);
    assert_true(r.t_blocked >= 40);
    assert_int_equal(tt_count_fds(), before);
}

static int rst_write_main(void *arg)
{
    rst *r = arg;
    tide_task *k;
    char *buf = calloc(1, r->wlen);
    spawn(&k, rst_killer, r);
    r->wrc = tide_write(r->sv[0], buf, r->wlen);
    r->wrc2 = tide_write(r->sv[0], buf, 10);
    free(buf);
    tide_await(k);
    tide_close(r->sv[0]);
    return 0;
}

static void test_reset_mid_write(void **state)
{
    (void)state;
    int before = tt_count_fds();
    rst r;
    memset(&r, 0, sizeof r);
    r.wlen = 8 * MIB;
    assert_int_equal(tt_tcp_pair(r.sv, 8192), 0);
    TT_RUN(rst_write_main, &r);
    /* some went out before the reset: the count so far, the error next */
    assert_true(r.wrc > 0 && r.wrc < (ssize_t)r.wlen);
    assert_true(r.wrc2 == -ECONNRESET || r.wrc2 == -EPIPE);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------ half-close */

typedef struct hc {
    int sv[2];
    int shut;
    ssize_t eof, w, r;
    char buf[16];
} hc;

static int hc_peer(void *arg)
{
    hc *h = arg;
    h->shut = tide_shutdown(h->sv[1], SHUT_WR);
    h->r = tide_read(h->sv[1], h->buf, sizeof h->buf);
    return 0;
}

static int hc_main(void *arg)
{
    hc *h = arg;
    tide_task *p;
    char b[4];
    spawn(&p, hc_peer, h);
    h->eof = tide_read(h->sv[0], b, sizeof b);
    h->w = tide_write(h->sv[0], "after-eof", 9);
    tide_await(p);
    tide_close(h->sv[0]);
    tide_close(h->sv[1]);
    return 0;
}

static void test_half_close(void **state)
{
    (void)state;
    int before = tt_count_fds();
    hc h;
    memset(&h, 0, sizeof h);
    assert_int_equal(tt_tcp_pair(h.sv, 0), 0);
    TT_RUN(hc_main, &h);
    assert_int_equal(h.shut, 0);
    assert_int_equal(h.eof, 0);
    assert_int_equal(h.w, 9);
    assert_int_equal(h.r, 9);
    assert_memory_equal(h.buf, "after-eof", 9);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------ close wakes waiters; -EBUSY on a second */

typedef struct cw {
    int sv[2];
    ssize_t r1, r2, w1, w2;
    int close_rc;
    int woke_order; /* r1 set before main continued */
} cw;

static int cw_reader(void *arg)
{
    cw *c = arg;
    char b[8];
    c->r1 = tide_read(c->sv[0], b, sizeof b);
    return 0;
}

static int cw_writer(void *arg)
{
    cw *c = arg;
    c->w1 = tide_write(c->sv[0], "data", 4);
    return 0;
}

static int cw_main(void *arg)
{
    cw *c = arg;
    tide_task *r, *w;
    char b[8];
    tt_fill_fd(c->sv[0]); /* writers must wait */
    c->r1 = c->w1 = 1;
    spawn(&r, cw_reader, c);
    spawn(&w, cw_writer, c);
    tide_sleep(10); /* both wait now */
    c->r2 = tide_read(c->sv[0], b, sizeof b);
    c->w2 = tide_write(c->sv[0], "x", 1);
    c->close_rc = tide_close(c->sv[0]);
    tide_await(r);
    tide_await(w);
    close(c->sv[1]);
    return 0;
}

static void test_close_wakes_waiters_and_ebusy(void **state)
{
    (void)state;
    int before = tt_count_fds();
    cw c;
    memset(&c, 0, sizeof c);
    assert_int_equal(tt_socketpair(c.sv, 4096), 0);
    TT_RUN(cw_main, &c);
    assert_int_equal(c.r2, -EBUSY);
    assert_int_equal(c.w2, -EBUSY);
    assert_int_equal(c.close_rc, 0);
    assert_int_equal(c.r1, -EBADF);
    assert_int_equal(c.w1, -EBADF);
    assert_int_equal(tt_count_fds(), before);
}

/* An fd number reused after tide_close: no stale state reaches the new fd. */
typedef struct reuse {
    int a[2], b[2];
    ssize_t r_old, r_new, r_new2;
    int same_number;
    int64_t waited;
    char buf[8];
} reuse;

static int reuse_late_writer(void *arg)
{
    reuse *r = arg;
    tide_sleep(30);
    tide_write(r->b[1], "new", 3);
    return 0;
}

static int reuse_main(void *arg)
{
    reuse *r = arg;
    char b[8];
    tide_write(r->a[1], "old", 3);
    r->r_old = tide_read(r->a[0], b, sizeof b);
    int old0 = r->a[0], old1 = r->a[1];
    tide_write(r->a[1], "zzz", 3); /* unread: the old fd is readable when closed */
    tide_close(r->a[0]);
    tide_close(r->a[1]);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->b);
    r->same_number = (r->b[0] == old0 || r->b[0] == old1) && (r->b[1] == old0 || r->b[1] == old1);
    /* b[0] has nothing to read: the read must wait for the writer */
    tide_task *w;
    spawn(&w, reuse_late_writer, r);
    int64_t t0 = tide_now();
    int rfd = r->b[0];
    r->r_new = tide_read(rfd, r->buf, sizeof r->buf);
    r->waited = tide_now() - t0;
    tide_await(w);
    tide_close(r->b[0]);
    tide_close(r->b[1]);
    return 0;
}

static void test_fd_number_reuse(void **state)
{
    (void)state;
    int before = tt_count_fds();
    reuse r;
    memset(&r, 0, sizeof r);
    assert_int_equal(tt_socketpair(r.a, 0), 0);
    TT_RUN(reuse_main, &r);
    assert_int_equal(r.r_old, 3);
    assert_true(r.same_number);
    assert_int_equal(r.r_new, 3);
    assert_memory_equal(r.buf, "new", 3);
    assert_true(r.waited >= 20);
    assert_int_equal(tt_count_fds(), before);
}

/* ----------------------------------------------- cancel and timeouts */

typedef struct cn {
    int sv[2], p[2];
    ssize_t rd, wr, wr_big, wr_after, wait_rd;
    size_t big;
} cn;

static int cn_read(void *arg)
{
    cn *c = arg;
    char b[4];
    c->rd = tide_read(c->sv[1], b, sizeof b); /* nothing comes this way */
    return 0;
}

static int cn_wait_rd(void *arg)
{
    cn *c = arg;
    c->wait_rd = tide_wait_readable(c->p[0]);
    return 0;
}

static int cn_write_full(void *arg)
{
    cn *c = arg;
    c->wr = tide_write(c->sv[1], "abc", 3); /* sv[1] is full: waits */
    return 0;
}

static int cn_write_big(void *arg)
{
    cn *c = arg;
    char *buf = calloc(1, c->big);
    c->wr_big = tide_write(c->sv[0], buf, c->big);
    c->wr_after = tide_write(c->sv[0], buf, 1);
    free(buf);
    return 0;
}

static int cn_main(void *arg)
{
    cn *c = arg;
    tide_task *t[3];
    tt_fill_fd(c->sv[1]);
    c->rd = c->wr = c->wait_rd = 1;
    spawn(&t[0], cn_read, c);
    spawn(&t[1], cn_write_full, c);
    spawn(&t[2], cn_wait_rd, c);
    tide_sleep(20);
    for (int i = 0; i < 3; i++)
        tide_cancel(t[i]);
    for (int i = 0; i < 3; i++)
        tide_await(t[i]);
    /* a big write cancelled half way: the count so far, then -ECANCELED */
    tide_task *b;
    spawn(&b, cn_write_big, c);
    tide_sleep(20);
    tide_cancel(b);
    tide_await(b);
    tide_close(c->sv[0]);
    tide_close(c->sv[1]);
    tide_close(c->p[0]);
    tide_close(c->p[1]);
    return 0;
}

static void test_cancel_blocked_io(void **state)
{
    (void)state;
    int before = tt_count_fds();
    cn c;
    memset(&c, 0, sizeof c);
    c.big = 4 * MIB;
    assert_int_equal(tt_socketpair(c.sv, 4096), 0);
    assert_int_equal(pipe2(c.p, O_CLOEXEC), 0);
    TT_RUN(cn_main, &c);
    assert_int_equal(c.rd, -ECANCELED);
    assert_int_equal(c.wr, -ECANCELED);
    assert_int_equal(c.wait_rd, -ECANCELED);
    assert_true(c.wr_big > 0 && c.wr_big < (ssize_t)c.big);
    assert_int_equal(c.wr_after, -ECANCELED);
    assert_int_equal(tt_count_fds(), before);
}

typedef struct to {
    int sv[2];
    ssize_t rd, rd_shielded;
    int end_rc;
    int64_t elapsed;
    ssize_t cancelled_rd, shield_rd;
    char buf[8];
} to;

static int to_self_cancel(void *arg)
{
    to *t = arg;
    char b[8];
    tide_cancel(tide_current_task());
    /* data is ready, yet a cancelled task gets -ECANCELED and consumes nothing */
    t->cancelled_rd = tide_read(t->sv[0], b, sizeof b);
    tide_scope sh;
    tide_shield_begin(&sh);
    t->shield_rd = tide_read(t->sv[0], t->buf, sizeof t->buf);
    tide_shield_end(&sh);
    return 0;
}

static int to_main(void *arg)
{
    to *t = arg;
    tide_scope s;
    char b[8];
    int64_t t0 = tide_now();
    tide_timeout_begin(&s, 50);
    t->rd = tide_read(t->sv[0], b, sizeof b);
    t->end_rc = tide_timeout_end(&s);
    t->elapsed = tide_now() - t0;

    tide_write(t->sv[1], "ready", 5);
    tide_task *c;
    spawn(&c, to_self_cancel, t);
    tide_await(c);
    tide_close(t->sv[0]);
    tide_close(t->sv[1]);
    return 0;
}

static void test_timeout_and_cancel_point(void **state)
{
    (void)state;
    int before = tt_count_fds();
    to t;
    memset(&t, 0, sizeof t);
    assert_int_equal(tt_socketpair(t.sv, 0), 0);
    TT_RUN(to_main, &t);
    assert_int_equal(t.rd, -ETIMEDOUT);
    assert_int_equal(t.end_rc, -ETIMEDOUT);
    assert_true(t.elapsed >= 45 && t.elapsed < 2000);
    assert_int_equal(t.cancelled_rd, -ECANCELED);
    assert_int_equal(t.shield_rd, 5);
    assert_memory_equal(t.buf, "ready", 5);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------- wait_readable/writable */

typedef struct wr {
    int sv[2];
    int w, r, r_pending, end_rc;
    ssize_t first;
    int64_t waited;
} wr;

static int wr_late(void *arg)
{
    wr *x = arg;
    tide_sleep(30);
    tide_write(x->sv[1], "!", 1);
    return 0;
}

static int wr_main(void *arg)
{
    wr *x = arg;
    tide_task *t;
    x->w = tide_wait_writable(x->sv[0]);
    spawn(&t, wr_late, x);
    int64_t t0 = tide_now();
    x->r = tide_wait_readable(x->sv[0]);
    x->waited = tide_now() - t0;
    tide_await(t);
    /* 10 bytes pending, 5 read (a full read: the rest is still there):
     * the fd is readable, so the wait must end at once. */
    char b[5];
    tide_read(x->sv[0], b, 1); /* the "!" */
    tide_write(x->sv[1], "0123456789", 10);
    tide_sleep(5);
    x->first = tide_read(x->sv[0], b, 5);
    tide_scope sc;
    tide_timeout_begin(&sc, 300);
    x->r_pending = tide_wait_readable(x->sv[0]);
    x->end_rc = tide_timeout_end(&sc);
    tide_close(x->sv[0]);
    tide_close(x->sv[1]);
    return 0;
}

static void test_wait_readable_writable(void **state)
{
    (void)state;
    int before = tt_count_fds();
    wr x;
    memset(&x, 0, sizeof x);
    assert_int_equal(tt_socketpair(x.sv, 0), 0);
    TT_RUN(wr_main, &x);
    assert_int_equal(x.w, 0);
    assert_int_equal(x.r, 0);
    assert_true(x.waited >= 20);
    assert_int_equal(x.first, 5);
    assert_int_equal(x.r_pending, 0);
    assert_int_equal(x.end_rc, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* A regular file is never waited on (epoll refuses it): reads just work. */
typedef struct rf {
    int fd;
    ssize_t n1, n2, n3;
    char buf[16];
} rf;

static int rf_main(void *arg)
{
    rf *r = arg;
    r->n1 = tide_write(r->fd, "file-data", 9);
    lseek(r->fd, 0, SEEK_SET);
    r->n2 = tide_read(r->fd, r->buf, sizeof r->buf);
    r->n3 = tide_read(r->fd, r->buf, sizeof r->buf);
    tide_close(r->fd);
    return 0;
}

static void test_regular_file(void **state)
{
    (void)state;
    int before = tt_count_fds();
    char path[] = "/tmp/tide_rf_XXXXXX";
    rf r;
    memset(&r, 0, sizeof r);
    r.fd = mkstemp(path);
    assert_true(r.fd >= 0);
    unlink(path);
    TT_RUN(rf_main, &r);
    assert_int_equal(r.n1, 9);
    assert_int_equal(r.n2, 9);
    assert_memory_equal(r.buf, "file-data", 9);
    assert_int_equal(r.n3, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------------------- misuse */

typedef struct mu {
    int sv[2];
    int cb_read, cb_write, cb_wait, cb_accept, cb_sig;
    ssize_t bad_fd_r, bad_fd_w, bad_fd_wr, closed_num, null_r, null_w, null_v, neg_v, null_wv,
        null_addrlen, null_connect, shut, cls, sf_in, null_send, null_recv;
    sigset_t set;
} mu;

static void mu_cb(void *arg)
{
    mu *m = arg;
    char b[4];
    /* inside a loop, but not in a task */
    m->cb_read = (int)tide_read(m->sv[0], b, 1);
    m->cb_write = (int)tide_write(m->sv[0], b, 1);
    m->cb_wait = tide_wait_readable(m->sv[0]);
    m->cb_accept = tide_accept(m->sv[0], NULL, NULL);
    m->cb_sig = tide_signal_wait(&m->set);
}

static int mu_main(void *arg)
{
    mu *m = arg;
    char b[4];
    struct sockaddr_in sa;
    tide_call_soon(tide_loop_current(), mu_cb, m);
    tide_sleep(1);
    m->bad_fd_r = tide_read(-1, b, 1);
    m->bad_fd_w = tide_write(-1, b, 1);
    m->bad_fd_wr = tide_wait_writable(-1);
    m->closed_num = tide_read(9999, b, 1); /* not an open fd */
    m->null_r = tide_read(m->sv[0], NULL, 4);
    m->null_w = tide_write(m->sv[0], NULL, 4);
    m->null_send = tide_send(m->sv[0], NULL, 4, 0);
    m->null_recv = tide_recv(m->sv[0], NULL, 4, 0);
    m->null_v = tide_readv(m->sv[0], NULL, 2);
    m->neg_v = tide_readv(m->sv[0], NULL, -1);
    m->null_wv = tide_writev(m->sv[0], NULL, 3);
    m->null_addrlen = tide_recvfrom(m->sv[0], b, 4, 0, (struct sockaddr *)&sa, NULL);
    m->null_connect = tide_connect(m->sv[0], NULL, 0);
    m->shut = tide_shutdown(-1, SHUT_WR);
    m->cls = tide_close(-1);
    m->sf_in = tide_sendfile(m->sv[0], -1, NULL, 10);
    tide_close(m->sv[0]);
    tide_close(m->sv[1]);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    int before = tt_count_fds();
    char b[4];
    mu m;
    memset(&m, 0, sizeof m);
    sigemptyset(&m.set);
    sigaddset(&m.set, SIGUSR1);
    assert_int_equal(tt_socketpair(m.sv, 0), 0);
    /* no loop at all */
    assert_int_equal(tide_read(m.sv[0], b, 1), -EPERM);
    assert_int_equal(tide_write(m.sv[0], b, 1), -EPERM);
    assert_int_equal(tide_readv(m.sv[0], NULL, 0), -EPERM);
    assert_int_equal(tide_recv(m.sv[0], b, 1, 0), -EPERM);
    assert_int_equal(tide_send(m.sv[0], b, 1, 0), -EPERM);
    assert_int_equal(tide_wait_readable(m.sv[0]), -EPERM);
    assert_int_equal(tide_wait_writable(m.sv[0]), -EPERM);
    assert_int_equal(tide_accept(m.sv[0], NULL, NULL), -EPERM);
    assert_int_equal(tide_sendfile(m.sv[0], 0, NULL, 1), -EPERM);
    assert_int_equal(tide_signal_wait(&m.set), -EPERM);
    assert_int_equal(tide_signal_wait(NULL), -EINVAL);
    TT_RUN(mu_main, &m);
    assert_int_equal(m.cb_read, -EPERM);
    assert_int_equal(m.cb_write, -EPERM);
    assert_int_equal(m.cb_wait, -EPERM);
    assert_int_equal(m.cb_accept, -EPERM);
    assert_int_equal(m.cb_sig, -EPERM);
    assert_int_equal(m.bad_fd_r, -EBADF);
    assert_int_equal(m.bad_fd_w, -EBADF);
    assert_int_equal(m.bad_fd_wr, -EBADF);
    assert_int_equal(m.closed_num, -EBADF);
    assert_int_equal(m.null_r, -EINVAL);
    assert_int_equal(m.null_w, -EINVAL);
    assert_int_equal(m.null_send, -EINVAL);
    assert_int_equal(m.null_recv, -EINVAL);
    assert_int_equal(m.null_v, -EINVAL);
    assert_int_equal(m.neg_v, -EINVAL);
    assert_int_equal(m.null_wv, -EINVAL);
    assert_int_equal(m.null_addrlen, -EINVAL);
    assert_int_equal(m.null_connect, -EINVAL);
    assert_int_equal(m.shut, -EBADF);
    assert_int_equal(m.cls, -EBADF);
    assert_int_equal(m.sf_in, -EBADF);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------------------------------------- signals */

static volatile sig_atomic_t usr1_handled;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_handled++;
}

typedef struct sg {
    int rc, rc_thread, rc_timeout, end_rc, rc_cancel;
    int blocked_during, blocked_after;
    int64_t waited, waited_thread;
    int use_thread;
} sg;

static int sg_kill_later(void *arg)
{
    sg *s = arg;
    tide_sleep(30);
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    s->blocked_during = sigismember(&cur, SIGUSR1);
    kill(getpid(), SIGUSR1);
    return 0;
}

static int sg_kill_from_thread(void *arg)
{
    (void)arg;
    usleep(30000);
    kill(getpid(), SIGUSR1); /* worker threads block signals: the loop gets it */
    return 0;
}

static int sg_thread_task(void *arg)
{
    return tide_to_thread(sg_kill_from_thread, arg);
}

static int sg_waiter(void *arg)
{
    sigset_t set;
    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    return tide_signal_wait(&set);
}

static int sg_main(void *arg)
{
    sg *s = arg;
    sigset_t set, cur;
    tide_task *k;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);

    spawn(&k, sg_kill_later, s);
    int64_t t0 = tide_now();
    s->rc = tide_signal_wait(&set);
    s->waited = tide_now() - t0;
    tide_await(k);

    spawn(&k, sg_thread_task, s);
    t0 = tide_now();
    s->rc_thread = tide_signal_wait(&set);
    s->waited_thread = tide_now() - t0;
    tide_await(k);

    tide_scope sc;
    tide_timeout_begin(&sc, 40);
    s->rc_timeout = tide_signal_wait(&set);
    s->end_rc = tide_timeout_end(&sc);
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    s->blocked_after = sigismember(&cur, SIGUSR1) || sigismember(&cur, SIGUSR2);

    spawn(&k, sg_waiter, s);
    tide_sleep(10);
    tide_cancel(k);
    s->rc_cancel = tide_await(k);
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    s->blocked_after |= sigismember(&cur, SIGUSR2);
    return 0;
}

static void test_signal_wait(void **state)
{
    (void)state;
    int before = tt_count_fds();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, &old);
    usr1_handled = 0;
    sg s;
    memset(&s, 0, sizeof s);
    TT_RUN(sg_main, &s);
    sigaction(SIGUSR1, &old, NULL);
    assert_int_equal(s.rc, SIGUSR1);
#if defined(__linux__) && !defined(TIDE_NO_SIGNALFD)
    assert_int_equal(s.blocked_during, 1); /* signalfd: blocked while waited for */
#endif
    assert_true(s.waited >= 20);
    assert_int_equal(s.rc_thread, SIGUSR1);
    assert_true(s.waited_thread >= 20);
    assert_int_equal(s.rc_timeout, -ETIMEDOUT);
    assert_int_equal(s.end_rc, -ETIMEDOUT);
    assert_int_equal(s.rc_cancel, -ECANCELED);
    assert_int_equal(s.blocked_after, 0);
    /* consumed by the waits, never by the handler */
    assert_int_equal(usr1_handled, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* tide_read makes its fd non-blocking without touching the open file
 * description other holders share (an inherited stdin, a shell's pipe). */
typedef struct shared_nb {
    int fd, keep;
    ssize_t n;
    char buf[8];
} shared_nb;

static int shared_nb_main(void *arg)
{
    shared_nb *s = arg;
    s->n = tide_read(s->fd, s->buf, sizeof s->buf);
    return 0;
}

static void test_pipe_description_stays_blocking(void **state)
{
    (void)state;
    int p[2];
    shared_nb s;
    memset(&s, 0, sizeof s);
    assert_int_equal(pipe(p), 0);
    s.fd = p[0];
    s.keep = dup(p[0]); /* another holder of the same description */
    assert_true(s.keep >= 0);
    assert_int_equal(write(p[1], "hi", 2), 2);
    assert_int_equal(tide_run(shared_nb_main, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(fcntl(s.keep, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(s.fd, F_GETFL) & O_NONBLOCK, 0);
    close(s.keep);
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------ files never wait */

/* A regular file (or a device epoll refuses) is always ready: a short
 * transfer there says nothing about readiness, and no call may wait for an
 * edge.  Everything here runs inside a 1 s scope and must end at once. */
typedef struct fnw {
    int fd, out;
    ssize_t w_big, w_v, r_total, r_short, r_eof1, r_eof2, r_v, sf, sf_eof, zero, null;
    int wait_r, wait_w;
    int waited; /* the wait kind a suspension named: none if it never suspended */
} fnw;

#define FNW_SIZE (MIB + 123)

static int fnw_main(void *arg)
{
    fnw *x = arg;
    uint8_t *buf = malloc(FNW_SIZE + 65536), small[100]; /* room for the last 64 KiB read */
    char v1[3], v2[4];
    struct iovec wv[2] = {{"abc", 3}, {"defg", 4}}, rv[2] = {{v1, 3}, {v2, 4}};
    off_t off = 0;
    tide_task *cur = tide_current_task();
    int zfd = open("/dev/zero", O_RDONLY | O_CLOEXEC), nfd = open("/dev/null", O_WRONLY | O_CLOEXEC);

    /* Every suspension names its wait (TIDE__WAIT_ON, checked by
     * scripts/check_wait_reasons.py): one that waited for an fd would
     * leave its kind here.  (The I/O budget's yields are no wait.)  A wait
     * that never ended is a hang, which TT_RUN's guard reports. */
    cur->wait_kind = TIDE_WAIT_NONE;
    tt_pat_fill(buf, 0, FNW_SIZE);
    x->w_big = tide_write(x->fd, buf, FNW_SIZE);
    lseek(x->fd, 0, SEEK_SET);
    memset(buf, 0, FNW_SIZE);
    for (;;) { /* 64 KiB at a time: the last read is short, then EOF */
        ssize_t n = tide_read(x->fd, buf + x->r_total, 65536);
        if (n <= 0)
            break;
        if (n < 65536)
            x->r_short = n;
        x->r_total += n;
    }
    if (tt_pat_check(buf, 0, FNW_SIZE) >= 0)
        x->r_total = -1;
    x->r_eof1 = tide_read(x->fd, small, sizeof small);
    x->r_eof2 = tide_read(x->fd, small, sizeof small);
    x->wait_r = tide_wait_readable(x->fd);
    x->wait_w = tide_wait_writable(x->fd);
    x->w_v = tide_writev(x->fd, wv, 2);
    lseek(x->fd, FNW_SIZE, SEEK_SET);
    x->r_v = tide_readv(x->fd, rv, 2);
    if (memcmp(v1, "abc", 3) || memcmp(v2, "defg", 4))
        x->r_v = -1;
    /* a file to a file, asked for more than there is: the short count */
    x->sf = tide_sendfile(x->out, x->fd, &off, FNW_SIZE + 1000);
    x->sf_eof = tide_sendfile(x->out, x->fd, &off, 10);
    x->zero = tide_read(zfd, small, sizeof small);
    x->null = tide_write(nfd, buf, FNW_SIZE);
    x->waited = cur->wait_kind;
    tide_close(zfd);
    tide_close(nfd);
    free(buf);
    return 0;
}

static void test_regular_file_never_waits(void **state)
{
    (void)state;
    int before = tt_count_fds();
    char p1[] = "/tmp/tide_fnw_XXXXXX", p2[] = "/tmp/tide_fnw_XXXXXX";
    fnw x;
    memset(&x, 0, sizeof x);
    x.fd = mkstemp(p1);
    x.out = mkstemp(p2);
    assert_true(x.fd >= 0 && x.out >= 0);
    unlink(p1);
    unlink(p2);
    TT_RUN(fnw_main, &x);
    assert_int_equal(x.w_big, FNW_SIZE);
    assert_int_equal(x.r_total, FNW_SIZE);
    assert_int_equal(x.r_short, FNW_SIZE % 65536);
    assert_int_equal(x.r_eof1, 0);
    assert_int_equal(x.r_eof2, 0);
    assert_int_equal(x.wait_r, 0);
    assert_int_equal(x.wait_w, 0);
    assert_int_equal(x.w_v, 7);
    assert_int_equal(x.r_v, 7);
    assert_int_equal(x.sf, FNW_SIZE + 7);
    assert_int_equal(x.sf_eof, 0);
    assert_int_equal(x.zero, 100);
    assert_int_equal(x.null, FNW_SIZE);
    assert_int_equal(x.waited, TIDE_WAIT_NONE); /* never suspended */
    tide_close(x.fd);
    tide_close(x.out);
    assert_int_equal(tt_count_fds(), before);
}

/* -------------------------------------------------------------- fairness */

/* A task whose fd always has data never has to suspend; the I/O budget
 * makes it yield now and then, so the other tasks still run.  Sources: a
 * socket a writer thread keeps full, a peek (which consumes nothing), and
 * /dev/zero (never waited on). */
enum { FAIR_THREAD, FAIR_PEEK, FAIR_ZERO };

#define FAIR_READS 20000

typedef struct fair {
    int mode, sv[2], zfd;
    int done, stop;
    long reads, ticks, ticks_seen;
    ssize_t bad;
} fair;

static void *fair_writer_thread(void *arg)
{
    fair *f = arg;
    static char chunk[4096];
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        ssize_t n = send(f->sv[0], chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR)
            break;
    }
    return NULL;
}

static int fair_ticker(void *arg)
{
    fair *f = arg;
    while (!f->done) {
        if (tide_sleep(0) < 0)
            break;
        f->ticks++;
    }
    return 0;
}

static int fair_reader(void *arg)
{
    fair *f = arg;
    char buf[64];
    for (long i = 0; i < FAIR_READS; i++) {
        ssize_t n;
        if (f->mode == FAIR_PEEK)
            n = tide_recv(f->sv[1], buf, sizeof buf, MSG_PEEK);
        else
            n = tide_read(f->mode == FAIR_ZERO ? f->zfd : f->sv[1], buf, sizeof buf);
        if (n <= 0) {
            f->bad = n;
            break;
        }
        f->reads++;
    }
    f->ticks_seen = f->ticks;
    f->done = 1;
    return 0;
}

static int fair_main(void *arg)
{
    fair *f = arg;
    tide_task *tk, *rd;
    spawn(&tk, fair_ticker, f);
    spawn(&rd, fair_reader, f);
    tide_await(rd);
    tide_await(tk);
    return 0;
}

static void run_fair(int mode)
{
    int before = tt_count_fds();
    pthread_t th;
    fair f;
    memset(&f, 0, sizeof f);
    f.mode = mode;
    f.zfd = -1;
    assert_int_equal(tt_socketpair(f.sv, 0), 0);
    if (mode == FAIR_THREAD) {
        tt_fill_fd(f.sv[0]);
        (void)fcntl(f.sv[0], F_SETFL, fcntl(f.sv[0], F_GETFL) & ~O_NONBLOCK);
        assert_int_equal(pthread_create(&th, NULL, fair_writer_thread, &f), 0);
    } else if (mode == FAIR_PEEK) {
        assert_int_equal(write(f.sv[0], "always here", 11), 11);
    } else {
        f.zfd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        assert_true(f.zfd >= 0);
    }
    TT_RUN(fair_main, &f);
    if (mode == FAIR_THREAD) {
        __atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
        shutdown(f.sv[1], SHUT_RDWR); /* a writer blocked in send gets EPIPE */
        pthread_join(th, NULL);
    }
    assert_int_equal(f.bad, 0);
    assert_int_equal(f.reads, FAIR_READS);
    /* one yield per budget of reads at least (20000 / 128 = 156) */
    print_message("fairness mode %d: the other task ran %ld times during %d reads\n", mode,
                  f.ticks_seen, FAIR_READS);
    assert_true(f.ticks_seen >= 100);
    close(f.sv[0]);
    close(f.sv[1]);
    if (f.zfd >= 0)
        close(f.zfd);
    assert_int_equal(tt_count_fds(), before);
}

static void test_fairness_thread_fed_socket(void **state)
{
    (void)state;
    run_fair(FAIR_THREAD);
}

static void test_fairness_peek(void **state)
{
    (void)state;
    run_fair(FAIR_PEEK);
}

static void test_fairness_dev_zero(void **state)
{
    (void)state;
    run_fair(FAIR_ZERO);
}

/* ------------------------------------------------------------ error paths */

/* Every public call: -EPERM outside a task, -EBADF on a bad fd, -EINVAL on a
 * NULL buffer with a length, -ECANCELED when cancelled even though the fd is
 * ready (and then nothing is consumed). */
enum {
    OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_RECV, OP_SEND, OP_RECVFROM, OP_SENDTO,
    OP_ACCEPT, OP_CONNECT, OP_SENDFILE, OP_WAIT_R, OP_WAIT_W, OP_N
};

static const char *const op_names[OP_N] = {
    "read", "write", "readv", "writev", "recv", "send", "recvfrom", "sendto",
    "accept", "connect", "sendfile", "wait_readable", "wait_writable",
};

typedef struct ep_fds {
    int stream;  /* a connected stream socket with data to read */
    int dgram;   /* a bound UDP socket with a datagram to read */
    int listener; /* with a connection waiting */
    int fresh;   /* an unconnected TCP socket */
    int file;    /* a regular file (sendfile's input) */
    struct sockaddr_in to; /* the listener's and the UDP socket's address */
} ep_fds;

/* Calls op on the fds of e, with a NULL buffer if nullbuf. */
static ssize_t call_op(int op, const ep_fds *e, int nullbuf)
{
    char b[16], *buf = nullbuf ? NULL : b;
    struct iovec iov = {b, sizeof b};
    const struct iovec *v = nullbuf ? NULL : &iov;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    off_t off = 0;

    switch (op) {
    case OP_READ:
        return tide_read(e->stream, buf, sizeof b);
    case OP_WRITE:
        return tide_write(e->stream, buf, sizeof b);
    case OP_READV:
        return tide_readv(e->stream, v, 1);
    case OP_WRITEV:
        return tide_writev(e->stream, v, 1);
    case OP_RECV:
        return tide_recv(e->stream, buf, sizeof b, 0);
    case OP_SEND:
        return tide_send(e->stream, buf, sizeof b, 0);
    case OP_RECVFROM:
        return tide_recvfrom(e->dgram, buf, sizeof b, 0, (struct sockaddr *)&sa, &sl);
    case OP_SENDTO:
        return tide_sendto(e->dgram, buf, sizeof b, 0, (const struct sockaddr *)&e->to,
                           sizeof e->to);
    case OP_ACCEPT:
        return tide_accept(e->listener, nullbuf ? (struct sockaddr *)&sa : NULL, NULL);
    case OP_CONNECT:
        return tide_connect(e->fresh, nullbuf ? NULL : (const struct sockaddr *)&e->to,
                            sizeof e->to);
    case OP_SENDFILE:
        return tide_sendfile(e->stream, e->file, &off, 4);
    case OP_WAIT_R:
        return tide_wait_readable(e->stream);
    case OP_WAIT_W:
        return tide_wait_writable(e->stream);
    }
    return -9999;
}

static int op_has_buffer(int op)
{
    return op != OP_SENDFILE && op != OP_WAIT_R && op != OP_WAIT_W;
}

typedef struct epaths {
    ep_fds e;
    ssize_t perm[OP_N], badf[OP_N], closed[OP_N], inval[OP_N], canc[OP_N];
    ssize_t after_read, after_recvfrom;
    int after_accept, peer_err;
    char after_buf[16];
} epaths;

static void fds_all(ep_fds *dst, int fd)
{
    dst->stream = dst->dgram = dst->listener = dst->fresh = fd;
}

static int epaths_cancelled(void *arg)
{
    epaths *p = arg;
    tide_scope sh;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    tide_cancel(tide_current_task());
    for (int op = 0; op < OP_N; op++)
        p->canc[op] = call_op(op, &p->e, 0);
    /* nothing was consumed or started */
    p->peer_err = getpeername(p->e.fresh, (struct sockaddr *)&sa, &sl) < 0 ? errno : 0;
    tide_shield_begin(&sh);
    p->after_read = tide_read(p->e.stream, p->after_buf, sizeof p->after_buf);
    p->after_recvfrom = tide_recvfrom(p->e.dgram, p->after_buf + 8, 8, 0, NULL, NULL);
    p->after_accept = tide_accept(p->e.listener, NULL, NULL);
    tide_shield_end(&sh);
    return 0;
}

static int epaths_main(void *arg)
{
    epaths *p = arg;
    ep_fds bad;
    tide_task *t;
    int closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(closed >= 0);
    close(closed); /* a number that is not open (nothing opens one meanwhile) */

    bad = p->e;
    fds_all(&bad, -1);
    bad.file = p->e.file;
    for (int op = 0; op < OP_N; op++)
        p->badf[op] = call_op(op, &bad, 0);
    fds_all(&bad, closed);
    for (int op = 0; op < OP_N; op++)
        p->closed[op] = call_op(op, &bad, 0);
    for (int op = 0; op < OP_N; op++)
        p->inval[op] = op_has_buffer(op) ? call_op(op, &p->e, 1) : -EINVAL;
    spawn(&t, epaths_cancelled, p);
    tide_await(t);
    return 0;
}

static void test_error_paths(void **state)
{
    (void)state;
    int before = tt_count_fds(), sv[2], client;
    char path[] = "/tmp/tide_ep_XXXXXX";
    socklen_t len = sizeof(struct sockaddr_in);
    struct sockaddr_in la;
    epaths p;
    memset(&p, 0, sizeof p);
    assert_int_equal(tt_socketpair(sv, 0), 0);
    assert_int_equal(write(sv[1], "ready-data", 10), 10);
    p.e.stream = sv[0];
    p.e.dgram = tide_udp_bind("127.0.0.1", 0);
    p.e.listener = tide_tcp_listen("127.0.0.1", 0, NULL);
    p.e.fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    p.e.file = mkstemp(path);
    assert_true(p.e.dgram >= 0 && p.e.listener >= 0 && p.e.fresh >= 0 && p.e.file >= 0);
    unlink(path);
    assert_int_equal(write(p.e.file, "file", 4), 4);
    /* a datagram waiting on dgram (sent to itself) */
    assert_int_equal(getsockname(p.e.dgram, (struct sockaddr *)&p.e.to, &len), 0);
    assert_int_equal(sendto(p.e.dgram, "dgram", 5, 0, (struct sockaddr *)&p.e.to, len), 5);
    /* a connection waiting on listener; connect targets the listener too */
    len = sizeof la;
    assert_int_equal(getsockname(p.e.listener, (struct sockaddr *)&la, &len), 0);
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(client, (struct sockaddr *)&la, len), 0);

    for (int op = 0; op < OP_N; op++)
        p.perm[op] = call_op(op, &p.e, 0);
    TT_RUN(epaths_main, &p);
    for (int op = 0; op < OP_N; op++) {
        print_message("%-14s perm %zd badf %zd closed %zd inval %zd cancelled %zd\n",
                      op_names[op], p.perm[op], p.badf[op], p.closed[op], p.inval[op],
                      p.canc[op]);
        assert_int_equal(p.perm[op], -EPERM);
        assert_int_equal(p.badf[op], -EBADF);
        assert_int_equal(p.closed[op], -EBADF);
        assert_int_equal(p.inval[op], -EINVAL);
        assert_int_equal(p.canc[op], -ECANCELED);
    }
    assert_int_equal(p.peer_err, ENOTCONN);
    assert_int_equal(p.after_read, 10);
    assert_memory_equal(p.after_buf, "ready-da", 8);
    assert_int_equal(p.after_recvfrom, 5);
    assert_memory_equal(p.after_buf + 8, "dgram", 5);
    assert_true(p.after_accept >= 0);
    tide_close(p.after_accept);
    tide_close(sv[0]);
    close(sv[1]);
    tide_close(p.e.dgram);
    tide_close(p.e.listener);
    tide_close(p.e.fresh);
    tide_close(p.e.file);
    close(client);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1mib_socketpair),
        cmocka_unit_test(test_1mib_tcp),
        cmocka_unit_test(test_1mib_pipe),
        cmocka_unit_test(test_writev_readv),
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_sendfile),
        cmocka_unit_test(test_epipe_no_signal),
        cmocka_unit_test(test_reset_mid_read),
        cmocka_unit_test(test_reset_mid_write),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_close_wakes_waiters_and_ebusy),
        cmocka_unit_test(test_fd_number_reuse),
        cmocka_unit_test(test_cancel_blocked_io),
        cmocka_unit_test(test_timeout_and_cancel_point),
        cmocka_unit_test(test_wait_readable_writable),
        cmocka_unit_test(test_regular_file),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_signal_wait),
        cmocka_unit_test(test_pipe_description_stays_blocking),
        cmocka_unit_test(test_regular_file_never_waits),
        cmocka_unit_test(test_fairness_thread_fed_socket),
        cmocka_unit_test(test_fairness_peek),
        cmocka_unit_test(test_fairness_dev_zero),
        cmocka_unit_test(test_error_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
