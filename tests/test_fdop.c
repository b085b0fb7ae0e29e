/*
 * Tests of the internals under the fd calls: the one fd-operation path of
 * src/io.c (tide__fd_try, tide__fd_op, tide__fd_op_all: readiness bits,
 * short transfers, always-ready fds, the I/O budget) and the platform layer
 * (src/sys.h), both the Linux implementation and the portable fallback of
 * src/sys_bsd.c, which is compiled into this test under other names.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tide_int.h"
#include "sys.h"
#include "net_util.h"

/* The portable half of sys_bsd.c, as bsd_*: what macOS and the BSDs without
 * a native call run, tested here on Linux. */
#define tide__sys_socket bsd_socket
#define tide__sys_accept bsd_accept
#define tide__sys_sendfile bsd_sendfile
#define tide__sys_set_nonblocking bsd_set_nonblocking
#undef TIDE_SYS_H
#include "sys_bsd.c"
#undef tide__sys_socket
#undef tide__sys_accept
#undef tide__sys_sendfile
#undef tide__sys_set_nonblocking

/* ------------------------------------------------------ an op that counts */

typedef struct cnt_ctx {
    void *buf;
    size_t len;
    int calls;
    int fake_errno; /* != 0: fail with it instead of reading */
} cnt_ctx;

static ssize_t cnt_read(int fd, void *arg)
{
    cnt_ctx *c = arg;
    c->calls++;
    if (c->fake_errno) {
        errno = c->fake_errno;
        return -1;
    }
    return read(fd, c->buf, c->len);
}

static tide__fd *fd_of(int fd)
{
    int err = 0;
    tide__fd *f = tide__fd_get(tide_loop_current(), fd, &err);
    assert_non_null(f);
    return f;
}

/* ------------------------------------------------- readiness and shortness */

typedef struct rdy {
    int sv[2];
} rdy;

static int rdy_main(void *arg)
{
    rdy *r = arg;
    char buf[100];
    cnt_ctx c = {.buf = buf, .len = sizeof buf};
    tide__fd *f = fd_of(r->sv[0]);

    /* Nothing there: one syscall learns it, the next try makes none. */
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, sizeof buf), -EAGAIN);
    assert_int_equal(c.calls, 1);
    assert_false(f->ready & TIDE__EV_IN);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, sizeof buf), -EAGAIN);
    assert_int_equal(c.calls, 1);

    /* An edge sets the bit; a short read on a byte stream clears it. */
    assert_int_equal(write(r->sv[1], "0123456789", 10), 10);
    /* (wait for the edge itself: a timed sleep may end before the loop
     * polls, under valgrind, and nobody waiting means no poll is owed) */
    assert_int_equal(tide_wait_readable(r->sv[0]), 0);
    assert_true(f->ready & TIDE__EV_IN);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, sizeof buf), 10);
    assert_false(f->ready & TIDE__EV_IN);

    /* Reads of what was asked leave it set; the EAGAIN after them clears it. */
    assert_int_equal(write(r->sv[1], "0123456789", 10), 10);
    assert_int_equal(tide_wait_readable(r->sv[0]), 0);
    c.len = 5;
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, 5), 5);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, 5), 5);
    assert_true(f->ready & TIDE__EV_IN);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, 5), -EAGAIN);
    assert_false(f->ready & TIDE__EV_IN);

    /* want 0: never infer. */
    c.len = sizeof buf;
    assert_int_equal(write(r->sv[1], "abc", 3), 3);
    assert_int_equal(tide_wait_readable(r->sv[0]), 0);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, 0), 3);
    assert_true(f->ready & TIDE__EV_IN);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, 0), -EAGAIN);

    /* After a hang-up a short read does not clear it: EOF comes next and no
     * edge would. */
    assert_int_equal(write(r->sv[1], "xyz", 3), 3);
    shutdown(r->sv[1], SHUT_WR);
    assert_int_equal(tide_wait_readable(r->sv[0]), 0);
    assert_true(f->hup);
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, sizeof buf), 3);
    assert_true(f->ready & TIDE__EV_IN);
    assert_int_equal(tide__fd_op(tide_current_task(), f, TIDE__EV_IN, cnt_read, &c, sizeof buf),
                     0);

    /* EINTR is retried, other errors come back as -errno. */
    c.fake_errno = EIO;
    assert_int_equal(tide__fd_try(f, TIDE__EV_IN, cnt_read, &c, sizeof buf), -EIO);
    tide_close(r->sv[0]);
    return 0;
}

static void test_try_readiness(void **state)
{
    (void)state;
    rdy r;
    assert_int_equal(tt_socketpair(r.sv, 0), 0);
    TT_RUN(rdy_main, &r);
    close(r.sv[1]);
}

/* ------------------------------------------------ blocking form, write all */

typedef struct blk {
    int sv[2];
    char got[8], left_buf[8];
    ssize_t n, canc, all, rd, left;
    int calls_cancelled;
    size_t done;
} blk;

static int blk_late_writer(void *arg)
{
    blk *b = arg;
    tide_sleep(20);
    return tide_write(b->sv[1], "late", 4) == 4 ? 0 : -1;
}

static int blk_cancelled(void *arg)
{
    blk *b = arg;
    char buf[8];
    cnt_ctx c = {.buf = buf, .len = sizeof buf};
    tide_cancel(tide_current_task());
    b->canc = tide__fd_op(tide_current_task(), fd_of(b->sv[0]), TIDE__EV_IN, cnt_read, &c, 8);
    b->calls_cancelled = c.calls;
    return 0;
}

typedef struct all_ctx {
    const char *p;
    size_t len, done;
} all_ctx;

static ssize_t all_write(int fd, void *arg)
{
    all_ctx *c = arg;
    return write(fd, c->p + c->done, c->len - c->done > 3000 ? 3000 : c->len - c->done);
}

static int blk_drain(void *arg)
{
    blk *b = arg;
    char buf[4096];
    ssize_t n;
    b->rd = 0;
    while ((n = tide_read(b->sv[1], buf, sizeof buf)) > 0)
        b->rd += n;
    return 0;
}

static int blk_main(void *arg)
{
    blk *b = arg;
    tide_task *t, *d;
    cnt_ctx c = {.buf = b->got, .len = sizeof b->got};
    static char big[300000];
    all_ctx a = {.p = big, .len = sizeof big};

    assert_int_equal(tide_create_task(&t, blk_late_writer, b), 0);
    b->n = tide__fd_op(tide_current_task(), fd_of(b->sv[0]), TIDE__EV_IN, cnt_read, &c,
                       sizeof b->got);
    assert_int_equal(tide_await(t), 0);

    /* A cancellation point even with data there: op is never called. */
    assert_int_equal(write(b->sv[1], "data", 4), 4);
    assert_int_equal(tide_create_task(&t, blk_cancelled, b), 0);
    tide_await(t);

    /* Write all, through a buffer smaller than the whole, op writing at most
     * 3000 bytes an attempt. */
    assert_int_equal(tide_create_task(&d, blk_drain, b), 0);
    b->all = tide__fd_op_all(tide_current_task(), fd_of(b->sv[0]), TIDE__EV_OUT, all_write, &a,
                             a.len, &a.done, 0);
    b->done = a.done;
    tide_shutdown(b->sv[0], SHUT_WR);
    tide_await(d);
    b->left = tide_read(b->sv[0], b->left_buf, sizeof b->left_buf);
    tide_close(b->sv[0]);
    tide_close(b->sv[1]);
    return 0;
}

static void test_op_and_op_all(void **state)
{
    (void)state;
    blk b;
    memset(&b, 0, sizeof b);
    assert_int_equal(tt_socketpair(b.sv, 4096), 0);
    TT_RUN(blk_main, &b);
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.got, "late", 4);
    assert_int_equal(b.canc, -ECANCELED);
    assert_int_equal(b.calls_cancelled, 0);
    assert_int_equal(b.all, 300000);
    assert_int_equal(b.done, 300000);
    assert_int_equal(b.rd, 300000);
    assert_int_equal(b.left, 4); /* the cancelled task never read "data" */
    assert_memory_equal(b.left_buf, "data", 4);
}

/* --------------------------------------------------- always ready, budget */

typedef struct ar {
    int zfd;
    ssize_t eagain;
    int eagain_calls, ready_after;
    long ticks, ticks_during;
    int done;
    uint8_t streak_after_wait;
    int sv[2];
} ar;

static int ar_ticker(void *arg)
{
    ar *a = arg;
    while (!a->done) {
        tide_sleep(0);
        a->ticks++;
    }
    return 0;
}

static int ar_late(void *arg)
{
    ar *a = arg;
    tide_sleep(5);
    return tide_write(a->sv[1], "x", 1) == 1 ? 0 : -1;
}

static int ar_main(void *arg)
{
    ar *a = arg;
    char buf[16];
    cnt_ctx c = {.buf = buf, .len = sizeof buf};
    tide_task *cur = tide_current_task(), *tk, *late;
    tide__fd *f = fd_of(a->zfd);
    long t0;

    assert_true(f->always_ready);
    /* EAGAIN from an always-ready fd: nothing to wait for, so say so. */
    c.fake_errno = EAGAIN;
    a->eagain = tide__fd_op(cur, f, TIDE__EV_IN, cnt_read, &c, sizeof buf);
    a->eagain_calls = c.calls;
    a->ready_after = (f->ready & TIDE__EV_IN) != 0;
    c.fake_errno = 0;

    /* The budget: 300 operations in a row yield at least twice (at 128 and
     * 256, and whenever a streak passes the time slice). */
    assert_int_equal(tide_create_task(&tk, ar_ticker, a), 0);
    tide_sleep(0); /* the ticker is running now */
    cur->io_streak = 0;
    t0 = a->ticks;
    for (int i = 0; i < 300; i++)
        assert_int_equal(tide__fd_op(cur, f, TIDE__EV_IN, cnt_read, &c, sizeof buf), 16);
    a->ticks_during = a->ticks - t0;

    /* A real suspension restarts the count. */
    cur->io_streak = TIDE__IO_BUDGET;
    assert_int_equal(tide_create_task(&late, ar_late, a), 0);
    assert_int_equal(tide_read(a->sv[0], buf, sizeof buf), 1);
    a->streak_after_wait = cur->io_streak;
    a->done = 1;
    tide_await(late);
    tide_await(tk);
    tide_close(a->sv[0]);
    tide_close(a->sv[1]);
    return 0;
}

static void test_always_ready_and_budget(void **state)
{
    (void)state;
    ar a;
    memset(&a, 0, sizeof a);
    a.zfd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    assert_true(a.zfd >= 0);
    assert_int_equal(tt_socketpair(a.sv, 0), 0);
    TT_RUN(ar_main, &a);
    assert_int_equal(a.eagain, -EAGAIN);
    assert_int_equal(a.eagain_calls, 1);
    assert_true(a.ready_after);
    /* 2 yields by count (at 128 and 256); the 100 us time slice may add
     * more where operations are slow (qemu, valgrind), never fewer */
    assert_true(a.ticks_during >= 2 && a.ticks_during <= 300);
    assert_int_equal(a.streak_after_wait, 1);
    close(a.zfd);
}

/* ------------------------------------------------------- the platform layer */

typedef ssize_t (*sendfile_fn)(int out_fd, int in_fd, off_t *off, size_t n);

#define SFILE 10000

#define BIGFILE (1 << 20)

static int make_file(size_t size)
{
    char path[] = "/tmp/tide_fdop_XXXXXX";
    uint8_t *buf = malloc(size);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    tt_pat_fill(buf, 0, size);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    free(buf);
    return fd;
}

/* Reads everything pending on fd (non-blocking) into buf; the count. */
static size_t drain(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    while (got < cap && (n = recv(fd, buf + got, cap - got, MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    return got;
}

/* The contract of sys.h's sendfile, for one implementation. */
static void check_sendfile(sendfile_fn sf)
{
    static uint8_t got[1 << 20];
    int file = make_file(SFILE), big = make_file(BIGFILE), sv[2];
    off_t off;
    ssize_t n;

    assert_int_equal(tt_socketpair(sv, 0), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);

    off = 100; /* from an offset: advanced, the file position untouched */
    lseek(file, 7, SEEK_SET);
    assert_int_equal(sf(sv[0], file, &off, 5000), 5000);
    assert_int_equal(off, 5100);
    assert_int_equal(lseek(file, 0, SEEK_CUR), 7);
    assert_int_equal(drain(sv[1], got, sizeof got), 5000);
    assert_int_equal(tt_pat_check(got, 100, 5000), -1);

    /* from the file position (NULL offset): advanced */
    lseek(file, 200, SEEK_SET);
    assert_int_equal(sf(sv[0], file, NULL, 50), 50);
    assert_int_equal(lseek(file, 0, SEEK_CUR), 250);
    assert_int_equal(drain(sv[1], got, sizeof got), 50);
    assert_int_equal(tt_pat_check(got, 200, 50), -1);

    /* past the end: the short count, then 0; a count of 0 is 0 */
    off = SFILE - 10;
    assert_int_equal(sf(sv[0], file, &off, 100), 10);
    assert_int_equal(sf(sv[0], file, &off, 100), 0);
    assert_int_equal(off, SFILE);
    off = 0;
    assert_int_equal(sf(sv[0], file, &off, 0), 0);
    assert_int_equal(off, 0);
    assert_int_equal(drain(sv[1], got, sizeof got), 10);

    /* a full socket: EAGAIN, nothing consumed */
    tt_fill_fd(sv[0]);
    off = 300;
    errno = 0;
    assert_int_equal(sf(sv[0], file, &off, 100), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(off, 300);
    lseek(file, 400, SEEK_SET);
    assert_int_equal(sf(sv[0], file, NULL, 100), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(lseek(file, 0, SEEK_CUR), 400);
    close(sv[0]);
    close(sv[1]);

    /* room for part of it: the count that went, the position right after */
    assert_int_equal(tt_socketpair(sv, 4096), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    lseek(big, 0, SEEK_SET);
    n = sf(sv[0], big, NULL, BIGFILE);
    assert_true(n > 0 && n < BIGFILE);
    assert_int_equal(lseek(big, 0, SEEK_CUR), n);
    assert_int_equal(drain(sv[1], got, sizeof got), n);
    assert_int_equal(tt_pat_check(got, 0, (size_t)n), -1);
    close(sv[0]);
    close(sv[1]);
    close(file);
    close(big);
}

static void test_sys_sendfile_linux(void **state)
{
    (void)state;
    check_sendfile(tide__sys_sendfile);
}

static void test_sys_sendfile_fallback(void **state)
{
    (void)state;
    check_sendfile(bsd_sendfile);
}

static void check_flags(int fd)
{
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void check_socket_accept(int (*sock)(int, int, int),
                                int (*acc)(int, struct sockaddr *, socklen_t *))
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int l = sock(AF_INET, SOCK_STREAM, 0), c, s;

    check_flags(l);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    errno = 0;
    assert_int_equal(acc(l, NULL, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, len), 0);
    s = acc(l, NULL, NULL);
    check_flags(s);
    close(s);
    close(c);
    close(l);
}

static void test_sys_socket_accept(void **state)
{
    (void)state;
    check_socket_accept(tide__sys_socket, tide__sys_accept);
    check_socket_accept(bsd_socket, bsd_accept);
}

static void test_sys_set_nonblocking(void **state)
{
    (void)state;
    int p[2];
    struct stat st;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fstat(p[0], &st), 0);
    assert_int_equal(bsd_set_nonblocking(p[0], fcntl(p[0], F_GETFL), &st), 0);
    assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(tide__sys_set_nonblocking(p[1], fcntl(p[1], F_GETFL), &st), 0);
    assert_true(fcntl(p[1], F_GETFL) & O_NONBLOCK);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_try_readiness),
        cmocka_unit_test(test_op_and_op_all),
        cmocka_unit_test(test_always_ready_and_budget),
        cmocka_unit_test(test_sys_sendfile_linux),
        cmocka_unit_test(test_sys_sendfile_fallback),
        cmocka_unit_test(test_sys_socket_accept),
        cmocka_unit_test(test_sys_set_nonblocking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
