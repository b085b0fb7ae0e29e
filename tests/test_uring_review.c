/*
 * Review regressions for io_uring stage 2 (io_uring_ops.c, poll_uring.c):
 * a loop freed while another loop runs on the thread, with completion
 * operations in flight on its tasks' stacks.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_under_other_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
