/*
 * Lifetimes of io_uring stage 2 operations (io_uring_ops.c, poll_uring.c):
 * a loop freed while another loop runs on the thread, with completion
 * operations in flight on its tasks' stacks; a recv in flight when its fd
 * is closed and the number reused at once by a new socket and a new
 * reader (the old recv ends with -EBADF, takes none of the new socket's
 * bytes and writes nothing into its buffer after it returned).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tide.h"
#include "poll.h"
#include "tide_int.h"
#include "util.h"
#include "net_util.h"

static int stuck_reader(void *arg)
{
    int fd = *(int *)arg;
    char buf[128];
    return (int)tide_read(fd, buf, sizeof buf);
}

static tide_loop *victim;

static int free_victim(void *arg)
{
    (void)arg;
    /* Another loop (ours) runs on the thread: the victim's tasks cannot
     * finish and are released with their recvs still in the kernel. */
    tide_loop_free(victim);
    victim = NULL;
    return 0;
}

static void test_free_under_other_loop(void **state)
{
    tide_loop *outer;
    tide_task *t[8], *ft;
    int sv[8][2], i, fds = tt_count_fds();

    (void)state;
    setenv("TIDE_POLLER", "io_uring", 1);
    assert_int_equal(tide_loop_new(&victim), 0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(tt_socketpair(sv[i], 0), 0);
        assert_int_equal(tide_create_task_ex(&t[i], victim, stuck_reader, &sv[i][0], NULL), 0);
    }
    assert_true(tide_loop_run_once(victim) >= 0);
    assert_int_equal(tide_loop_new(&outer), 0);
    assert_int_equal(tide_create_task_ex(&ft, outer, free_victim, NULL, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(outer, ft), 0);
    tide_loop_free(outer);
    /* Bytes sent now must not land anywhere (the recvs were cancelled). */
    for (i = 0; i < 8; i++) {
        (void)!write(sv[i][1], "x", 1);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    assert_null(victim);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------- close and reuse of the fd number mid-recv */

typedef struct rd {
    int fd;
    ssize_t rc;
    char buf[64];
} rd;

static int rd_task(void *arg)
{
    rd *r = arg;
    r->rc = tide_read(r->fd, r->buf, sizeof r->buf);
    return 0;
}

static int reuse_main(void *arg)
{
    int round;

    (void)arg;
    for (round = 0; round < 100; round++) {
        int a[2], b[2];
        rd r1, r2;
        tide_task *t1, *t2;

        memset(&r1, 0, sizeof r1);
        memset(&r2, 0, sizeof r2);
        if (tt_socketpair(a, 0) < 0)
            return -1;
        r1.fd = a[0];
        if (tide_create_task(&t1, rd_task, &r1) < 0)
            return -2;
        tide_sleep(0); /* r1's recv is queued (and, every other round, submitted) */
        if (round & 1)
            tide_sleep(1);
        tide_close(a[0]);
        if (tt_socketpair(b, 0) < 0)
            return -3;
        /* Usually the number a[0] had: a new socket under the old number. */
        r2.fd = b[0];
        if (tide_create_task(&t2, rd_task, &r2) < 0)
            return -4;
        tide_sleep(0);
        /* The old peer is closed (EPIPE): a send that still reached the
         * old recv would show up in r1 instead of -EBADF. */
        (void)send(a[1], "OLD", 3, MSG_NOSIGNAL);
        if (write(b[1], "NEW", 3) != 3)
            return -5;
        tide_await(t1);
        tide_await(t2);
        if (r1.rc != -EBADF)
            return -6;
        if (r2.rc != 3 || memcmp(r2.buf, "NEW", 3) != 0)
            return -7;
        /* The old recv is over: nothing more lands in r1's buffer. */
        (void)send(a[1], "LATE", 4, MSG_NOSIGNAL);
        tide_sleep(1);
        if (r1.buf[0] != 0)
            return -9;
        tide_close(b[0]);
        close(a[1]);
        close(b[1]);
    }
    return 0;
}

static void test_close_reuse_in_flight(void **state)
{
    int fds = tt_count_fds();

    (void)state;
    setenv("TIDE_POLLER", "io_uring", 1);
    assert_int_equal(tide_run(reuse_main, NULL), 0);
    assert_int_equal(tt_count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_under_other_loop),
        cmocka_unit_test(test_close_reuse_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
