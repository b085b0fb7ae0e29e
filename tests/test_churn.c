/*
 * Task churn: many tasks started one after another, and many alive at once,
 * each of which yields and sleeps.  Under ThreadSanitizer every task is a
 * TSan fiber of its own (src/loop.c); without that each started task leaves
 * its entry frame on the thread's shadow stack and the program soon crashes
 * inside TSan.  Under AddressSanitizer it exercises the fiber annotations,
 * under valgrind the stack registration of reused stacks.
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

#include "tide.h"
#include "util.h"
#include "vrun.h"

typedef struct churn {
    int n;          /* tasks in all */
    int window;     /* at most this many alive at once */
    int sleep_ms;   /* each task's sleep */
    int started, finished, bad;
    int create_rc, join_rc;
    int max_alive, alive;
    int64_t elapsed;
} churn;

#define DEPTH 16

/* Suspends from DEPTH calls down, so that each suspended task holds a real
 * call stack (TSan's shadow stack of a task is that deep while it waits). */
static __attribute__((noinline)) int descend(churn *c, volatile int depth)
{
    int rc = 0;

    if (depth > 0) {
        rc = descend(c, depth - 1);
        return rc + (depth & 0); /* not a tail call */
    }
    if (tide_sleep(0) != 0) /* yield */
        rc = -1;
    if (tide_sleep(c->sleep_ms) != 0)
        rc = -1;
    if (tide_sleep(0) != 0)
        rc = -1;
    return rc;
}

static int worker(void *arg)
{
    churn *c = arg;

    c->started++;
    if (++c->alive > c->max_alive)
        c->max_alive = c->alive;
    if (descend(c, DEPTH) != 0)
        c->bad++;
    c->alive--;
    c->finished++;
    return 7;
}

/* Keeps a sliding window of at most c->window tasks: the oldest is awaited
 * before the next is created, so every stack (and TSan fiber) is released
 * and reused many times over. */
static int churn_main(void *arg)
{
    churn *c = arg;
    tide_task **ring = calloc((size_t)c->window, sizeof *ring);
    tide_task_opts o;
    int64_t t0 = tide_now();
    int i, head = 0, live = 0;

    if (!ring)
        return -ENOMEM;
    tide_task_opts_init(&o);
    o.stack_size = 16 * 1024;
    for (i = 0; i < c->n; i++) {
        int rc;
        if (live == c->window) {
            rc = tide_await(ring[head]);
            if (rc != 7 && !c->join_rc)
                c->join_rc = rc ? rc : -1;
            head = (head + 1) % c->window;
            live--;
        }
        rc = tide_create_task_ex(&ring[(head + live) % c->window], NULL, worker, c, &o);
        if (rc != 0) {
            c->create_rc = rc;
            break;
        }
        live++;
    }
    for (; live > 0; live--, head = (head + 1) % c->window) {
        int rc = tide_await(ring[head]);
        if (rc != 7 && !c->join_rc)
            c->join_rc = rc ? rc : -1;
    }
    c->elapsed = tide_now() - t0;
    free(ring);
    return 0;
}

static void run_churn(int n, int window, int sleep_ms)
{
    churn c;

    memset(&c, 0, sizeof c);
    c.n = n;
    c.window = window;
    c.sleep_ms = sleep_ms;
    assert_int_equal(tt_vrun(churn_main, &c), 0);
    assert_int_equal(c.create_rc, 0);
    assert_int_equal(c.join_rc, 0);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.started, n);
    assert_int_equal(c.finished, n);
    assert_int_equal(c.alive, 0);
    assert_int_equal(c.max_alive, window < n ? window : n);
    print_message("%d tasks, %d at a time: %lld ms\n", n, window, (long long)c.elapsed);
}

/* 100 000 tasks in sequence, a hundred at a time. */
static void test_100k_in_sequence(void **state)
{
    (void)state;
    run_churn(tt_under_valgrind() ? 10000 : 100000, 100, 1);
}

/* 10 000 tasks alive at once, each yielding and sleeping. */
static void test_10k_at_once(void **state)
{
    (void)state;
    run_churn(10000, 10000, 20);
}

/* Loops made and freed one after another on this thread, tasks left
 * sleeping in each (freed with the loop, their stacks never reused). */
static int sleep_long(void *arg)
{
    (void)arg;
    return tide_sleep(100000);
}

static void test_loops_freed_with_tasks(void **state)
{
    (void)state;
    for (int l = 0; l < 20; l++) {
        tide_loop *loop;
        tide_task *t;
        assert_int_equal(tide_loop_new(&loop), 0);
        for (int i = 0; i < 50; i++) {
            assert_int_equal(tide_create_task_ex(&t, loop, sleep_long, NULL, NULL), 0);
            assert_int_equal(tide_detach(t), 0);
        }
        assert_int_equal(tide_create_task_ex(&t, loop, worker, &(churn){.sleep_ms = 1}, NULL),
                         0);
        assert_int_equal(tide_loop_run_until_complete(loop, t), 7);
        tide_loop_free(loop); /* cancels the sleepers */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_100k_in_sequence),
        cmocka_unit_test(test_10k_at_once),
        cmocka_unit_test(test_loops_freed_with_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
