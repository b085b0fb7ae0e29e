/*
 * Tests of tide_run (asyncio.run) and of API misuse: leftovers cancelled and
 * finished, nothing left behind, -EPERM outside tasks, -EINVAL / -EBUSY.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#define FOREVER 1000000

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int sleep_ms_task(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg);
}

/* ------------------------------------------------------ no fd left behind */

static int job_fn(void *arg)
{
    usleep(1000);
    return (int)(intptr_t)arg;
}

static void noop_cb(void *arg)
{
    (void)arg;
}

static int workload_main(void *arg)
{
    (void)arg;
    tide_task *t[3];
    tide_create_task(&t[0], sleep_ms_task, (void *)(intptr_t)5);
    tide_create_task(&t[1], sleep_ms_task, (void *)(intptr_t)FOREVER);
    tide_create_task(&t[2], return_arg, (void *)(intptr_t)3);
    tide_await(t[0]);
    tide_await(t[2]);
    tide_detach(t[1]); /* left over */
    tide_call_soon_threadsafe(tide_loop_current(), noop_cb, NULL);
    tide_call_later(tide_loop_current(), FOREVER, noop_cb, NULL, NULL);
    int r = tide_to_thread(job_fn, (void *)(intptr_t)9);
    tide_sleep(1);
    return r;
}

/* first in the file: the process has not used tide yet */
static void test_no_fd_left_behind(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_true(before > 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tide_run(workload_main, NULL), 9);
    assert_int_equal(tt_count_fds(), before);
    /* and with loops made by hand */
    for (int i = 0; i < 5; i++) {
        tide_loop *l;
        assert_int_equal(tide_loop_new(&l), 0);
        tide_task *t;
        assert_int_equal(tide_create_task_ex(&t, l, workload_main, NULL, NULL), 0);
        assert_int_equal(tide_loop_run_until_complete(l, t), 9);
        tide_loop_free(l);
    }
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------------- main's result */

static void test_returns_main_result(void **state)
{
    (void)state;
    assert_int_equal(tide_run(return_arg, (void *)(intptr_t)42), 42);
    assert_int_equal(tide_run(return_arg, (void *)(intptr_t)0), 0);
    assert_int_equal(tide_run(return_arg, (void *)(intptr_t)-EIO), -EIO);
    assert_int_equal(tide_run(sleep_ms_task, (void *)(intptr_t)10), 0);
    assert_null(tide_loop_current());
    assert_null(tide_current_task());
}

/* ------------------------------------------------------------- leftovers */

typedef struct leftovers {
    int started[5];
    int rc[5];
    int cleanup[5];
    int extra_rcs[3];
    int timer_ran;
    int never_started;
    ssize_t live_in_main;
} leftovers;

static int never_fn(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

typedef struct lo_arg {
    leftovers *l;
    int i;
} lo_arg;

static int lo_sleeper(void *arg)
{
    lo_arg *a = arg;
    a->l->started[a->i] = 1;
    a->l->rc[a->i] = tide_sleep(FOREVER);
    a->l->cleanup[a->i] = 1;
    return 0;
}

static int lo_stubborn(void *arg)
{
    lo_arg *a = arg;
    a->l->started[a->i] = 1;
    int rc;
    while ((rc = tide_sleep(FOREVER)) == 0)
        ;
    a->l->rc[a->i] = rc;
    /* keeps trying: every call fails at once */
    for (int k = 0; k < 3; k++)
        a->l->extra_rcs[k] = tide_sleep(FOREVER);
    a->l->cleanup[a->i] = 1;
    return 0;
}

static int lo_future(void *arg)
{
    lo_arg *a = arg;
    a->l->started[a->i] = 1;
    tide_future *f;
    tide_future_new(&f);
    a->l->rc[a->i] = tide_future_await(f, NULL);
    tide_future_free(f);
    a->l->cleanup[a->i] = 1;
    return 0;
}

static int lo_shielded_cleanup(void *arg)
{
    lo_arg *a = arg;
    a->l->started[a->i] = 1;
    a->l->rc[a->i] = tide_sleep(FOREVER);
    tide_scope sh;
    tide_shield_begin(&sh);
    if (tide_sleep(20) == 0) /* polite goodbye takes a while */
        a->l->cleanup[a->i] = 1;
    tide_shield_end(&sh);
    return 0;
}

static void set_flag(void *arg)
{
    *(int *)arg = 1;
}

static lo_arg g_lo_args[5];

static int leftovers_main(void *arg)
{
    leftovers *l = arg;
    tide_task *t;
    for (int i = 0; i < 5; i++)
        g_lo_args[i] = (lo_arg){l, i};
    tide_create_task(&t, lo_sleeper, &g_lo_args[0]);
    tide_detach(t);                     /* detached */
    tide_create_task(&t, lo_sleeper, &g_lo_args[1]); /* never awaited */
    tide_create_task(&t, lo_stubborn, &g_lo_args[2]);
    tide_create_task(&t, lo_future, &g_lo_args[3]);
    tide_create_task(&t, lo_shielded_cleanup, &g_lo_args[4]);
    tide_sleep(10);
    tide_call_later(tide_loop_current(), 60000, set_flag, &l->timer_ran, NULL);
    /* one more that never starts */
    tide_create_task(&t, never_fn, &l->never_started);
    l->live_in_main = tide_task_list(NULL, NULL, 0);
    return 123;
}

static void test_leftovers_cancelled_and_finished(void **state)
{
    (void)state;
    leftovers l;
    memset(&l, 0, sizeof l);
    int64_t t0 = tide_now();
    assert_int_equal(tide_run(leftovers_main, &l), 123);
    assert_true(tide_now() - t0 < 5000); /* the 60 s timer was dropped */
    assert_int_equal(l.live_in_main, 7);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(l.started[i], 1);
        assert_int_equal(l.rc[i], -ECANCELED);
        assert_int_equal(l.cleanup[i], 1);
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal(l.extra_rcs[k], -ECANCELED);
    assert_int_equal(l.timer_ran, 0);
    assert_int_equal(l.never_started, 0);
}

/* ------------------------------------------------------------ task_list */

typedef struct lists {
    ssize_t n0, n2, n_end;
} lists;

static int list_main(void *arg)
{
    lists *s = arg;
    s->n0 = tide_task_list(NULL, NULL, 0);
    tide_task *t[2];
    tide_create_task(&t[0], sleep_ms_task, (void *)(intptr_t)5);
    tide_create_task(&t[1], return_arg, NULL);
    s->n2 = tide_task_list(NULL, NULL, 0);
    tide_gather(t, 2, NULL);
    s->n_end = tide_task_list(NULL, NULL, 0);
    return 0;
}

static void test_task_counts(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        lists s;
        memset(&s, 0, sizeof s);
        assert_int_equal(tide_run(list_main, &s), 0);
        assert_int_equal(s.n0, 1);
        assert_int_equal(s.n2, 3);
        assert_int_equal(s.n_end, 1);
    }
}

/* ------------------------------------------------- misuse outside a task */

static int g_fn_called;

static int count_call(void *arg)
{
    (void)arg;
    g_fn_called++;
    return 0;
}

typedef struct cb_probe {
    int rc_sleep, rc_sleep0, rc_to_thread, rc_timeout, rc_shield, rc_create_null;
    tide_task *cur;
} cb_probe;

static void in_callback(void *arg)
{
    cb_probe *p = arg;
    p->cur = tide_current_task();
    p->rc_sleep = tide_sleep(1);
    p->rc_sleep0 = tide_sleep(0);
    p->rc_to_thread = tide_to_thread(count_call, NULL);
    tide_scope s;
    p->rc_timeout = tide_timeout_begin(&s, 10);
    p->rc_shield = tide_shield_begin(&s);
}

static void test_suspending_outside_task(void **state)
{
    (void)state;
    g_fn_called = 0;
    /* no loop at all */
    assert_null(tide_current_task());
    assert_int_equal(tide_sleep(1), -EPERM);
    assert_int_equal(tide_sleep(0), -EPERM);
    assert_int_equal(tide_to_thread(count_call, NULL), -EPERM);
    tide_scope s;
    assert_int_equal(tide_timeout_begin(&s, 10), -EPERM);
    assert_int_equal(tide_deadline_begin(&s, tide_now() + 10), -EPERM);
    assert_int_equal(tide_shield_begin(&s), -EPERM);
    tide_task *t = NULL;
    assert_int_equal(tide_create_task(&t, return_arg, NULL), -EPERM);
    assert_int_equal(tide_create_task_ex(&t, NULL, return_arg, NULL, NULL), -EPERM);

    /* a loop exists but we are not in a task */
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    tide_future *f;
    assert_int_equal(tide_future_new_on(&f, loop), 0);
    assert_int_equal(tide_future_await(f, NULL), -EPERM);
    assert_int_equal(tide_create_task_ex(&t, loop, return_arg, (void *)(intptr_t)4, NULL), 0);
    assert_int_equal(tide_await(t), -EPERM);
    assert_int_equal(tide_wait_for(t, 10), -EPERM);
    assert_int_equal(tide_gather(&t, 1, NULL), -EPERM);
    /* still usable afterwards */
    assert_int_equal(tide_loop_run_until_complete(loop, t), 4);

    /* in a plain callback of a running loop */
    cb_probe p;
    memset(&p, 0, sizeof p);
    p.cur = (tide_task *)&p;
    assert_int_equal(tide_call_soon(loop, in_callback, &p), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_null(p.cur);
    assert_int_equal(p.rc_sleep, -EPERM);
    assert_int_equal(p.rc_sleep0, -EPERM);
    assert_int_equal(p.rc_to_thread, -EPERM);
    assert_int_equal(p.rc_timeout, -EPERM);
    assert_int_equal(p.rc_shield, -EPERM);
    assert_int_equal(g_fn_called, 0);
    tide_future_free(f);
    tide_loop_free(loop);
}

/* ---------------------------------------------------------- NULL arguments */

typedef struct nulls {
    int rc_create_t, rc_create_fn, rc_create_ex_t, rc_create_ex_fn;
    int rc_await, rc_cancel, rc_detach, rc_gather, rc_wait_for;
    int rc_sleep_neg;
} nulls;

static int nulls_main(void *arg)
{
    nulls *s = arg;
    tide_task *t;
    s->rc_create_t = tide_create_task(NULL, return_arg, NULL);
    s->rc_create_fn = tide_create_task(&t, NULL, NULL);
    s->rc_create_ex_t = tide_create_task_ex(NULL, NULL, return_arg, NULL, NULL);
    s->rc_create_ex_fn = tide_create_task_ex(&t, NULL, NULL, NULL, NULL);
    s->rc_await = tide_await(NULL);
    s->rc_cancel = tide_cancel(NULL);
    s->rc_detach = tide_detach(NULL);
    s->rc_gather = tide_gather(NULL, 1, NULL);
    s->rc_wait_for = tide_wait_for(NULL, 10);
    s->rc_sleep_neg = tide_sleep(-5);
    return tide_task_list(NULL, NULL, 0) == 1 ? 0 : -1; /* nothing created */
}

static void test_null_arguments(void **state)
{
    (void)state;
    assert_int_equal(tide_run(NULL, NULL), -EINVAL);
    nulls s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tide_run(nulls_main, &s), 0);
    assert_int_equal(s.rc_create_t, -EINVAL);
    assert_int_equal(s.rc_create_fn, -EINVAL);
    assert_int_equal(s.rc_create_ex_t, -EINVAL);
    assert_int_equal(s.rc_create_ex_fn, -EINVAL);
    assert_int_equal(s.rc_await, -EINVAL);
    assert_int_equal(s.rc_cancel, -EINVAL);
    assert_int_equal(s.rc_detach, -EINVAL);
    assert_int_equal(s.rc_gather, -EINVAL);
    assert_int_equal(s.rc_wait_for, -EINVAL);
    assert_int_equal(s.rc_sleep_neg, -EINVAL);
}

/* ---------------------------------------------------- await misuse */

typedef struct awaits {
    int rc_first, rc_second;
    int rc_self_main;
    int rc_self_child;
    int rc_a, rc_b, rc_detach_busy;
    int64_t t_b;
    tide_task *target;
    int rc_nested_run, rc_nested_loop_run;
} awaits;

static int self_awaiter(void *arg)
{
    awaits *s = arg;
    s->rc_self_child = tide_await(tide_current_task());
    return 0;
}

static int awaiter_a(void *arg)
{
    awaits *s = arg;
    s->rc_a = tide_await(s->target);
    return 0;
}

static int awaiter_b(void *arg)
{
    awaits *s = arg;
    int64_t t0 = tide_now();
    s->rc_b = tide_await(s->target);
    s->t_b = tide_now() - t0;
    s->rc_detach_busy = tide_detach(s->target);
    return 0;
}

static int nested_main(void *arg)
{
    (void)arg;
    return 0;
}

static int awaits_main(void *arg)
{
    awaits *s = arg;
    tide_task *t;
    tide_create_task(&t, return_arg, (void *)(intptr_t)6);
    s->rc_first = tide_await(t);
    s->rc_second = tide_await(t); /* released: the pointer is stale */

    s->rc_self_main = tide_await(tide_current_task());
    tide_create_task(&t, self_awaiter, s);
    tide_await(t);

    tide_create_task(&s->target, sleep_ms_task, (void *)(intptr_t)100);
    tide_task *a, *b;
    tide_create_task(&a, awaiter_a, s);
    tide_sleep(5); /* a awaits target */
    tide_create_task(&b, awaiter_b, s);
    tide_await(b);
    tide_await(a);

    s->rc_nested_run = tide_run(nested_main, NULL);
    tide_loop *other;
    if (tide_loop_new(&other) == 0) {
        s->rc_nested_loop_run = tide_loop_run(other);
        tide_loop_free(other);
    }
    return 0;
}

static void test_await_misuse(void **state)
{
    (void)state;
    awaits s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tide_run(awaits_main, &s), 0);
    assert_int_equal(s.rc_first, 6);
    assert_int_equal(s.rc_second, -EINVAL);
    assert_int_equal(s.rc_self_main, -EINVAL);
    assert_int_equal(s.rc_self_child, -EINVAL);
    assert_int_equal(s.rc_a, 0);
    assert_int_equal(s.rc_b, -EBUSY);
    assert_true(s.t_b < 50); /* refused at once */
    assert_int_equal(s.rc_detach_busy, -EBUSY);
    assert_int_equal(s.rc_nested_run, -EBUSY);
    assert_int_equal(s.rc_nested_loop_run, -EBUSY);
}

/* ------------------------------------------------- a run per thread */

static void *thread_run(void *arg)
{
    int *rc = arg;
    *rc = tide_run(sleep_ms_task, (void *)(intptr_t)20);
    return NULL;
}

static void test_runs_on_several_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    int rc[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_run, &rc[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rc[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_fd_left_behind),
        cmocka_unit_test(test_returns_main_result),
        cmocka_unit_test(test_leftovers_cancelled_and_finished),
        cmocka_unit_test(test_task_counts),
        cmocka_unit_test(test_suspending_outside_task),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_await_misuse),
        cmocka_unit_test(test_runs_on_several_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
