/*
 * The io_uring backend's completion operations (io_uring_ops.c): recv and
 * send through the ring, the kernel never owning a task's buffer after the
 * call returned.  Every test forces TIDE_POLLER=io_uring; where the kernel
 * refuses io_uring (or lacks cancel by fd) the same tests run on the
 * readiness path and must give the same results, and test_path says which
 * path was taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tide.h"
#include "poll.h"
#include "tide_int.h"
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

static tide__fd *fd_state(int fd)
{
    tide_loop *loop = tide_loop_current();
    return (size_t)fd < loop->io.nfds ? loop->io.fds[fd] : NULL;
}

/* ------------------------------------------------------- which path */

typedef struct pair {
    int sv[2];
    tide_task *reader;
    ssize_t rc;
    char buf[64];
    int flag;
} pair;

static int rd_task(void *arg)
{
    pair *p = arg;
    p->rc = tide_read(p->sv[0], p->buf, sizeof p->buf);
    return 0;
}

static int path_main(void *arg)
{
    pair p;
    tide__fd *f;

    (void)arg;
    memset(&p, 0, sizeof p);
    if (tt_socketpair(p.sv, 0) < 0)
        return -1;
    if (tide_create_task(&p.reader, rd_task, &p) < 0)
        return -2;
    tide_sleep(1);
    f = fd_state(p.sv[0]);
    if (!f)
        return -3;
    /* On io_uring with operations the reader waits in a recv, not for a
     * poll: no poll is armed for it at all. */
    if (f->uring != ops_ok || (ops_ok && f->op_reader != p.reader) ||
        (!ops_ok && f->reader != p.reader))
        return -4;
    if (tide_write(p.sv[1], "hello", 5) != 5)
        return -5;
    tide_await(p.reader);
    if (p.rc != 5 || memcmp(p.buf, "hello", 5) != 0)
        return -6;
    tide_close(p.sv[0]);
    tide_close(p.sv[1]);
    return 0;
}

static void test_path(void **state)
{
    int saved = ops_ok;

    (void)state;
    TT_RUN(path_main, NULL);
    /* The test hook turns them off: the readiness path, same results. */
    tide__uring_no_ops = 1;
    ops_ok = 0;
    TT_RUN(path_main, NULL);
    tide__uring_no_ops = 0;
    ops_ok = saved; /* for the tests after this one */
}

/* --------------------------------------------- cancel a kernel-owned recv */

static int cancel_main(void *arg)
{
    pair p;
    char got[8];
    int i;

    (void)arg;
    memset(&p, 0, sizeof p);
    if (tt_socketpair(p.sv, 0) < 0)
        return -1;
    for (i = 0; i < 50; i++) {
        if (tide_create_task(&p.reader, rd_task, &p) < 0)
            return -2;
        tide_sleep(0); /* the recv is queued */
        if (i & 1)
            tide_sleep(1); /* ...and in the kernel */
        if (tide_cancel(p.reader) < 0)
            return -3;
        tide_await(p.reader);
        if (p.rc != -ECANCELED)
            return -4;
        /* The cancelled recv took nothing: the bytes sent now are the next
         * reader's, whole, and nothing writes into the dead task's buffer. */
        memset(p.buf, 0, sizeof p.buf);
        if (tide_write(p.sv[1], "abc", 3) != 3)
            return -5;
        if (tide_read(p.sv[0], got, sizeof got) != 3 || memcmp(got, "abc", 3) != 0)
            return -6;
    }
    /* A deadline is a cancellation too. */
    {
        tide_scope sc;
        ssize_t n;
        tide_timeout_begin(&sc, 5);
        n = tide_read(p.sv[0], got, sizeof got);
        tide_timeout_end(&sc);
        if (n != -ETIMEDOUT)
            return -7;
        if (tide_write(p.sv[1], "z", 1) != 1 || tide_read(p.sv[0], got, 1) != 1 || got[0] != 'z')
            return -8;
    }
    tide_close(p.sv[0]);
    tide_close(p.sv[1]);
    return 0;
}

static void test_cancel_recv(void **state)
{
    (void)state;
    TT_RUN(cancel_main, NULL);
}

/* ------------------------------------------------ close during a recv */

static int close_main(void *arg)
{
    pair p;
    struct pollfd pf;
    char c;

    (void)arg;
    memset(&p, 0, sizeof p);
    if (tt_socketpair(p.sv, 0) < 0)
        return -1;
    if (tide_create_task(&p.reader, rd_task, &p) < 0)
        return -2;
    tide_sleep(1); /* the recv is in the kernel, holding the file */
    if (tide_close(p.sv[0]) != 0)
        return -3;
    /* The file is let go at once: the peer sees the end now, not when the
     * recv would have completed. */
    pf.fd = p.sv[1];
    pf.events = POLLIN;
    if (poll(&pf, 1, 2000) != 1 || read(p.sv[1], &c, 1) != 0)
        return -4;
    tide_await(p.reader);
    if (p.rc != -EBADF)
        return -5;
    close(p.sv[1]);
    return 0;
}

static void test_close_in_flight(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(close_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------------------ EOF and errors */

static int busy_task(void *arg)
{
    pair *p = arg;
    p->flag = (int)tide_read(p->sv[0], p->buf, 1);
    return 0;
}

static int eof_main(void *arg)
{
    pair p;
    tide_task *second;
    char buf[16];

    (void)arg;
    memset(&p, 0, sizeof p);
    if (tt_socketpair(p.sv, 0) < 0)
        return -1;
    /* Two readers: the second is refused while the first's recv is out. */
    if (tide_create_task(&p.reader, rd_task, &p) < 0)
        return -2;
    tide_sleep(1);
    if (tide_create_task(&second, busy_task, &p) < 0)
        return -3;
    tide_await(second);
    if (p.flag != -EBUSY)
        return -4;
    if (tide_write(p.sv[1], "xy", 2) != 2)
        return -5;
    tide_await(p.reader);
    if (p.rc != 2)
        return -6;
    /* EOF, and EOF again (a read at the end never waits for an edge). */
    if (shutdown(p.sv[1], SHUT_WR) != 0)
        return -7;
    if (tide_read(p.sv[0], buf, sizeof buf) != 0 || tide_read(p.sv[0], buf, sizeof buf) != 0 ||
        tide_recv(p.sv[0], buf, sizeof buf, 0) != 0)
        return -8;
    /* A send to a closed peer: -EPIPE, no signal. */
    tide_close(p.sv[1]);
    if (tide_write(p.sv[0], "q", 1) != -EPIPE || tide_send(p.sv[0], "q", 1, 0) != -EPIPE)
        return -9;
    /* A peek keeps the readiness path (it must not consume). */
    tide_close(p.sv[0]);
    if (tt_socketpair(p.sv, 0) < 0)
        return -10;
    if (write(p.sv[1], "pk", 2) != 2)
        return -12;
    if (tide_recv(p.sv[0], buf, sizeof buf, MSG_PEEK) != 2 ||
        tide_recv(p.sv[0], buf, sizeof buf, 0) != 2 || memcmp(buf, "pk", 2) != 0)
        return -13;
    if (tide_read(-1, buf, 1) != -EBADF || tide_read(p.sv[0], NULL, 1) != -EINVAL)
        return -14;
    tide_close(p.sv[0]);
    tide_close(p.sv[1]);
    return 0;
}

static void test_eof_and_errors(void **state)
{
    (void)state;
    TT_RUN(eof_main, NULL);
}

/* --------------------------------------------------------- partial sends */

#define BIG (2 << 20)

typedef struct bulk {
    int sv[2];
    size_t got;
    long bad_at;
    ssize_t wrc;
} bulk;

static int slow_reader(void *arg)
{
    bulk *b = arg;
    static uint8_t buf[7001];

    b->bad_at = -1;
    while (b->got < BIG) {
        ssize_t n = tide_read(b->sv[1], buf, sizeof buf);
        long at;
        if (n <= 0)
            return -1;
        at = tt_pat_check(buf, b->got, (size_t)n);
        if (at >= 0 && b->bad_at < 0)
            b->bad_at = (long)b->got + at;
        b->got += (size_t)n;
        if ((b->got / sizeof buf) % 64 == 0)
            tide_sleep(1); /* the writer's sends go short meanwhile */
    }
    return 0;
}

static int partial_main(void *arg)
{
    bulk b;
    tide_task *r;
    uint8_t *data = malloc(BIG);
    tide_scope sc;
    ssize_t n;
    size_t left;

    (void)arg;
    memset(&b, 0, sizeof b);
    if (!data || tt_socketpair(b.sv, 16384) < 0)
        return -1;
    tt_pat_fill(data, 0, BIG);
    if (tide_create_task(&r, slow_reader, &b) < 0)
        return -2;
    b.wrc = tide_write(b.sv[0], data, BIG); /* many short sends, all of it */
    tide_await(r);
    if (b.wrc != BIG || b.got != BIG || b.bad_at >= 0)
        return -3;
    /* Cancelled in the middle: the count of what went, exactly what the
     * peer then reads (the kernel sent nothing more from the buffer). */
    tide_timeout_begin(&sc, 20);
    n = tide_send(b.sv[0], data, BIG, 0);
    tide_timeout_end(&sc);
    if (n <= 0 || n >= BIG)
        return -4;
    shutdown(b.sv[0], SHUT_WR);
    left = 0;
    for (;;) {
        static uint8_t buf[65536];
        ssize_t k = tide_read(b.sv[1], buf, sizeof buf);
        if (k < 0)
            return -5;
        if (k == 0)
            break;
        if (tt_pat_check(buf, left, (size_t)k) >= 0)
            return -6;
        left += (size_t)k;
    }
    if (left != (size_t)n)
        return -7;
    free(data);
    tide_close(b.sv[0]);
    tide_close(b.sv[1]);
    return 0;
}

static void test_partial_sends(void **state)
{
    (void)state;
    TT_RUN(partial_main, NULL);
}

/* ------------------------------------------------------ many connections */

#define NCONN 200
#define ROUNDS 20

static int echo_handler(tide_stream *s, void *arg)
{
    char buf[65536]; /* a direct read: the stream's completion path */
    (void)arg;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            return -1;
    }
}

typedef struct many {
    int port;
    int ok;
} many;

static int client_task(void *arg)
{
    many *m = arg;
    struct sockaddr_in a;
    char out[32], in[32];
    int fd, i, id = (int)(tide_task_id(tide_current_task()) & 0xffff);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)m->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || tide_connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    for (i = 0; i < ROUNDS; i++) {
        int len = snprintf(out, sizeof out, "c%d-r%d", id, i);
        if (tide_write(fd, out, (size_t)len) != len)
            return -2;
        int got = 0;
        while (got < len) {
            ssize_t n = tide_read(fd, in + got, (size_t)(len - got));
            if (n <= 0)
                return -3;
            got += (int)n;
        }
        if (memcmp(in, out, (size_t)len) != 0)
            return -4;
    }
    tide_close(fd);
    m->ok++;
    return 0;
}

static int many_main(void *arg)
{
    tide_server *srv;
    tide_task *t[NCONN];
    many m = {0, 0};
    int i;

    (void)arg;
    if (tide_start_server("127.0.0.1", 0, echo_handler, NULL, NULL, &srv) < 0)
        return -1;
    m.port = tide_server_port(srv);
    for (i = 0; i < NCONN; i++)
        if (tide_create_task(&t[i], client_task, &m) < 0)
            return -2;
    for (i = 0; i < NCONN; i++)
        if (tide_await(t[i]) != 0)
            return -3;
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return m.ok == NCONN ? 0 : -4;
}

static void test_many_connections(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(many_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------- a full SQ that cannot be flushed */

/* More tasks start a read in one step than the SQ (256 entries) holds, and
 * the submit that would make room fails (the hook: as io_uring_enter's
 * -EBUSY with a CQ overflow backlog): the reads and the write past the
 * SQ's end cannot queue their operation and take the readiness path, whose
 * poll needs an SQE too, so they wait for the loop's next enter.  Every
 * one still blocks and completes, no byte lost. */
#define NFILL 300

typedef struct filler {
    int sv[2];
    ssize_t rc;
    char c;
} filler;

static int fill_reader(void *arg)
{
    filler *fl = arg;
    fl->rc = tide_read(fl->sv[0], &fl->c, 1);
    return 0;
}

static int bulk_writer(void *arg)
{
    bulk *b = arg;
    static uint8_t data[BIG];

    tt_pat_fill(data, 0, BIG);
    b->wrc = tide_write(b->sv[0], data, BIG);
    return 0;
}

static int sqfull_main(void *arg)
{
    static filler fl[NFILL];
    static uint8_t buf[65536];
    tide_task *t[NFILL], *w;
    bulk b;
    int i, fallback = 0, rc = 0;

    (void)arg;
    memset(&b, 0, sizeof b);
    if (tt_socketpair(b.sv, 16384) < 0)
        return -1;
    for (i = 0; i < NFILL; i++) {
        memset(&fl[i], 0, sizeof fl[i]);
        if (tt_socketpair(fl[i].sv, 0) < 0)
            return -1;
    }
    tide__uring_fail_submit = 1;
    for (i = 0; i < NFILL; i++)
        if (tide_create_task(&t[i], fill_reader, &fl[i]) < 0)
            return -2;
    if (tide_create_task(&w, bulk_writer, &b) < 0)
        return -2;
    tide_sleep(1); /* all of them start in one step */
    for (i = 0; i < NFILL; i++) {
        tide__fd *f = fd_state(fl[i].sv[0]);
        if (!f || fl[i].rc != 0)
            rc = -3; /* returned early (-EAGAIN) */
        else if (f->op_reader != t[i])
            fallback++; /* waiting for readiness, or yielded to wait for an SQE */
    }
    if (rc == 0 && ops_ok != (fallback < NFILL))
        rc = -4; /* on the operations path the SQ never filled: the test tests nothing */
    for (i = 0; i < NFILL && rc == 0; i++)
        if (tide_write(fl[i].sv[1], "x", 1) != 1)
            rc = -5;
    while (rc == 0 && b.got < BIG) {
        ssize_t n = tide_read(b.sv[1], buf, sizeof buf);
        if (n <= 0 || tt_pat_check(buf, b.got, (size_t)n) >= 0)
            rc = -6;
        else
            b.got += (size_t)n;
    }
    tide__uring_fail_submit = 0;
    for (i = 0; i < NFILL; i++) {
        if (rc < 0)
            tide_cancel(t[i]);
        tide_await(t[i]);
        if (rc == 0 && (fl[i].rc != 1 || fl[i].c != 'x'))
            rc = -7;
        tide_close(fl[i].sv[0]);
        tide_close(fl[i].sv[1]);
    }
    if (rc < 0)
        tide_cancel(w);
    tide_await(w);
    if (rc == 0 && b.wrc != BIG)
        rc = -8;
    tide_close(b.sv[0]);
    tide_close(b.sv[1]);
    return rc;
}

static void test_sq_full(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(sqfull_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------- a loop freed with recvs out */

static int stuck_reader(void *arg)
{
    int fd = *(int *)arg;
    char buf[128];
    return (int)tide_read(fd, buf, sizeof buf);
}

static void test_loop_free_in_flight(void **state)
{
    tide_loop *loop;
    tide_task *t[8];
    int sv[8][2], i, fds = tt_count_fds();

    (void)state;
    assert_int_equal(tide_loop_new(&loop), 0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(tt_socketpair(sv[i], 0), 0);
        assert_int_equal(tide_create_task_ex(&t[i], loop, stuck_reader, &sv[i][0], NULL), 0);
    }
    /* One pass: every task queues its recv and the loop submits them. */
    assert_true(tide_loop_run_once(loop) >= 0);
    /* Freeing the loop cancels the readers; each waits for its recv's
     * completion before its stack goes (ASan would see a write into it). */
    tide_loop_free(loop);
    for (i = 0; i < 8; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    assert_int_equal(tt_count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_path, force_uring),
        cmocka_unit_test_setup(test_cancel_recv, force_uring),
        cmocka_unit_test_setup(test_close_in_flight, force_uring),
        cmocka_unit_test_setup(test_eof_and_errors, force_uring),
        cmocka_unit_test_setup(test_partial_sends, force_uring),
        cmocka_unit_test_setup(test_many_connections, force_uring),
        cmocka_unit_test_setup(test_loop_free_in_flight, force_uring),
        cmocka_unit_test_setup(test_sq_full, force_uring),
    };
    tide__poller p;

    memset(&p, 0, sizeof p);
    setenv("TIDE_POLLER", "io_uring", 1);
    if (tide__poller_init(&p) == 0) {
        ops_ok = tide__poller_ops(&p);
        tide__poller_free(&p);
    }
    print_message("io_uring completion operations: %s\n", ops_ok ? "on" : "off (readiness path)");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
