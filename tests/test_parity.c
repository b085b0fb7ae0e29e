/*
 * asyncio parity (issue 11): call_at and nanosecond time, cancel scopes
 * cancelled on their own and rescheduled, pointer results, tasks as
 * futures (waking order, done callbacks, cancel), gather / wait /
 * as_completed over futures, and tide_strerror's names.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

static void settle(void)
{
    for (int i = 0; i < 8; i++)
        tide_sleep(0);
}

/* ------------------------------------------------------------- time */

static char order[64];
static size_t norder;

static void mark(void *arg)
{
    order[norder++] = *(const char *)arg;
    order[norder] = '\0';
}

static int main_call_at(void *arg)
{
    static const char a = 'a', b = 'b', c = 'c', d = 'd';
    tide_loop *loop = tide_loop_current();
    int64_t now = tide_now();
    tide_timer h;

    (void)arg;
    norder = 0;
    order[0] = '\0';
    /* Gaps of 100 ms, so a slow run (valgrind) cannot reorder them. */
    assert_int_equal(tide_call_at(loop, now + 400, mark, (void *)&c, NULL), 0);
    assert_int_equal(tide_call_at(loop, now + 100, mark, (void *)&b, NULL), 0);
    assert_int_equal(tide_call_at(loop, now - 1000, mark, (void *)&a, NULL), 0); /* past: next */
    assert_int_equal(tide_call_at_ns(loop, now * 1000000 + 300000000, mark, (void *)&d, &h), 0);
    assert_int_equal(tide_timer_cancel(&h), 0);
    assert_int_equal(tide_call_at_ns(loop, now * 1000000 + 300000000, mark, (void *)&d, NULL), 0);
    assert_int_equal(tide_call_later_ns(loop, 200 * 1000000, mark, (void *)&b, NULL), 0);
    assert_int_equal(tide_call_at(NULL, now, mark, NULL, NULL), -EINVAL);
    assert_int_equal(tide_call_at(loop, now, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(tide_call_at_ns(loop, now, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(tide_call_later_ns(NULL, 1, mark, NULL, NULL), -EINVAL);
    assert_int_equal(tide_sleep(500), 0);
    assert_string_equal(order, "abbdc");
    return 0;
}

static void test_call_at(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_call_at, NULL), 0);
}

static int main_sleep_ns(void *arg)
{
    tide_scope s;
    int64_t t0;

    (void)arg;
    t0 = tide_now_ns();
    assert_int_equal(tide_sleep_ns(300000), 0); /* 0.3 ms */
    assert_true(tide_now_ns() - t0 >= 300000);
    assert_int_equal(tide_sleep_ns(0), 0);
    assert_int_equal(tide_sleep_ns(-1), -EINVAL);

    t0 = tide_now_ns();
    assert_int_equal(tide_timeout_begin_ns(&s, 500000), 0);
    assert_int_equal(tide_sleep(10000), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&s), -ETIMEDOUT);
    assert_true(tide_now_ns() - t0 >= 500000);
    assert_true(tide_now_ns() - t0 < 5000LL * 1000000);

    assert_int_equal(tide_deadline_begin_ns(&s, tide_now_ns() + 2000000), 0);
    assert_int_equal(tide_sleep(10000), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&s), -ETIMEDOUT);
    assert_int_equal(tide_timeout_begin_ns(NULL, 1), -EINVAL);
    assert_int_equal(tide_deadline_begin_ns(NULL, 1), -EINVAL);
    return 0;
}

static void test_sleep_ns(void **state)
{
    (void)state;
    assert_int_equal(tide_sleep_ns(1000), -EPERM);
    assert_int_equal(tide_run(main_sleep_ns, NULL), 0);
}

/* ----------------------------------------------------- cancel scopes */

typedef struct scoped {
    tide_scope *shared; /* the scope the task opened, for the others */
    tide_event opened;
    int shield_inside;  /* wait inside a shield opened in the scope */
    int rc_wait, rc_end, rc_after, rc_after_shield;
    int64_t waited_ms;
    int64_t sleep_ms;
} scoped;

static int scoped_task(void *arg)
{
    scoped *x = arg;
    tide_scope s, sh;
    int64_t t0;

    assert_int_equal(tide_timeout_begin(&s, x->sleep_ms ? 100000 : 100000), 0);
    x->shared = &s;
    tide_event_set(&x->opened);
    t0 = tide_now();
    if (x->shield_inside) {
        tide_shield_begin(&sh);
        x->rc_wait = tide_sleep(x->sleep_ms);
        tide_shield_end(&sh);
        x->rc_after_shield = tide_sleep(0);
    } else {
        x->rc_wait = tide_sleep(x->sleep_ms ? x->sleep_ms : 100000);
    }
    x->waited_ms = tide_now() - t0;
    x->rc_after = tide_sleep(0); /* still inside: level-triggered */
    x->shared = NULL;
    x->rc_end = tide_timeout_end(&s);
    return tide_sleep(0); /* outside the scope: works again */
}

static int main_scope_cancel(void *arg)
{
    scoped x;
    tide_task *t;
    tide_scope mine;

    (void)arg;
    memset(&x, 0, sizeof x);
    tide_event_init(&x.opened);
    assert_int_equal(tide_create_task(&t, scoped_task, &x), 0);
    tide_event_wait(&x.opened);
    settle();
    assert_int_equal(tide_scope_cancelled(x.shared), 0);
    assert_int_equal(tide_scope_cancel(x.shared), 0);
    assert_int_equal(tide_scope_cancelled(x.shared), 1);
    assert_int_equal(tide_scope_cancel(x.shared), 0); /* twice: harmless */
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(x.rc_wait, -ECANCELED);
    assert_int_equal(x.rc_after, -ECANCELED);
    assert_int_equal(x.rc_end, -ECANCELED);
    assert_true(x.waited_ms < 5000);

    /* A shield opened inside the scope covers the wait: it runs to its end,
     * and the first call after the shield fails. */
    memset(&x, 0, sizeof x);
    tide_event_init(&x.opened);
    x.shield_inside = 1;
    x.sleep_ms = 40;
    assert_int_equal(tide_create_task(&t, scoped_task, &x), 0);
    tide_event_wait(&x.opened);
    assert_int_equal(tide_scope_cancel(x.shared), 0);
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(x.rc_wait, 0);
    assert_true(x.waited_ms >= 40);
    assert_int_equal(x.rc_after_shield, -ECANCELED);
    assert_int_equal(x.rc_end, -ECANCELED);

    /* Our own scope, cancelled before any call: refused at once. */
    assert_int_equal(tide_timeout_begin(&mine, 100000), 0);
    assert_int_equal(tide_scope_cancel(&mine), 0);
    assert_int_equal(tide_sleep(0), -ECANCELED);
    assert_int_equal(tide_timeout_end(&mine), -ECANCELED);
    assert_int_equal(tide_sleep(0), 0);
    /* The scope ended: it is not open any more. */
    assert_int_equal(tide_scope_cancel(&mine), -EINVAL);
    assert_int_equal(tide_scope_cancelled(&mine), -EINVAL);
    assert_int_equal(tide_scope_cancel(NULL), -EINVAL);
    /* A scope that ended cleanly returns 0 even though cancel was never used. */
    assert_int_equal(tide_timeout_begin(&mine, 100000), 0);
    assert_int_equal(tide_timeout_end(&mine), 0);
    return 0;
}

static void test_scope_cancel(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_scope_cancel, NULL), 0);
}

static int resched_task(void *arg)
{
    scoped *x = arg;
    tide_scope s;
    int64_t t0 = tide_now();

    assert_int_equal(tide_timeout_begin(&s, x->sleep_ms), 0);
    x->shared = &s;
    tide_event_set(&x->opened);
    x->rc_wait = tide_sleep(300);
    x->waited_ms = tide_now() - t0;
    x->shared = NULL;
    x->rc_end = tide_timeout_end(&s);
    return 0;
}

static int main_reschedule(void *arg)
{
    scoped x;
    tide_task *t;
    tide_scope s, sh;

    (void)arg;
    /* Earlier, while the task waits: it times out at the new deadline. */
    memset(&x, 0, sizeof x);
    tide_event_init(&x.opened);
    x.sleep_ms = 100000;
    assert_int_equal(tide_create_task(&t, resched_task, &x), 0);
    tide_event_wait(&x.opened);
    settle();
    assert_int_equal(tide_scope_reschedule(x.shared, tide_now() + 20), 0);
    assert_true(tide_scope_deadline(x.shared) <= tide_now() + 20);
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(x.rc_wait, -ETIMEDOUT);
    assert_int_equal(x.rc_end, -ETIMEDOUT);
    assert_true(x.waited_ms >= 15 && x.waited_ms < 290);

    /* Later, while the task waits: the old 20 ms deadline no longer cuts
     * its 300 ms sleep. */
    memset(&x, 0, sizeof x);
    tide_event_init(&x.opened);
    x.sleep_ms = 20;
    assert_int_equal(tide_create_task(&t, resched_task, &x), 0);
    tide_event_wait(&x.opened);
    assert_int_equal(tide_scope_reschedule(x.shared, INT64_MAX), 0);
    assert_int_equal(tide_scope_deadline(x.shared), INT64_MAX);
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(x.rc_wait, 0);
    assert_int_equal(x.rc_end, 0);
    assert_true(x.waited_ms >= 300);

    /* After it fired: the scope is not expired any more. */
    assert_int_equal(tide_timeout_begin(&s, 1), 0);
    assert_int_equal(tide_sleep(50), -ETIMEDOUT);
    assert_int_equal(tide_scope_reschedule_ns(&s, tide_now_ns() + 1000LL * 1000000), 0);
    assert_int_equal(tide_sleep(1), 0);
    assert_int_equal(tide_timeout_end(&s), 0);

    /* Errors. */
    assert_int_equal(tide_shield_begin(&sh), 0);
    assert_int_equal(tide_scope_reschedule(&sh, 0), -EINVAL);
    assert_int_equal(tide_scope_deadline(&sh), INT64_MAX);
    assert_int_equal(tide_shield_end(&sh), 0);
    assert_int_equal(tide_scope_reschedule(&sh, 0), -EINVAL); /* ended */
    assert_int_equal(tide_scope_reschedule(NULL, 0), -EINVAL);
    assert_int_equal(tide_scope_deadline(NULL), -EINVAL);
    return 0;
}

static void test_reschedule(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_reschedule, NULL), 0);
}

/* ------------------------------------------------- pointer results */

static int ptr_task(void *arg)
{
    assert_int_equal(tide_task_set_ptr(arg), 0);
    tide_sleep(1);
    return 7;
}

static int main_ptr(void *arg)
{
    static int payload;
    tide_task *t;
    void *p = (void *)1;

    (void)arg;
    assert_int_equal(tide_create_task(&t, ptr_task, &payload), 0);
    assert_null(tide_task_ptr(t));
    assert_int_equal(tide_await_ptr(t, &p), 7);
    assert_ptr_equal(p, &payload);
    /* A task that sets none hands back NULL. */
    assert_int_equal(tide_create_task(&t, (tide_fn)settle, NULL), 0);
    p = (void *)1;
    assert_int_equal(tide_await_ptr(t, &p), 0);
    assert_null(p);
    assert_int_equal(tide_await_ptr(NULL, &p), -EINVAL);
    assert_null(p);
    assert_null(tide_task_ptr(NULL));
    return 0;
}

static void test_ptr_result(void **state)
{
    (void)state;
    assert_int_equal(tide_task_set_ptr(NULL), -EPERM);
    assert_int_equal(tide_run(main_ptr, NULL), 0);
}

/* --------------------------------------------------- tasks as futures */

static tide_event gate;

static int gated_ptr_task(void *arg)
{
    assert_int_equal(tide_task_set_ptr(arg), 0);
    tide_event_wait(&gate); /* ends when the test opens the gate */
    return 7;
}

typedef struct fut_rec {
    tide_future *f;
    char tag;
    int rc;
    void *value;
} fut_rec;

static void log_cb(tide_future *f, void *arg)
{
    fut_rec *r = arg;
    r->rc = tide_future_result(f, &r->value);
    order[norder++] = r->tag;
    order[norder] = '\0';
}

static int fut_waiter(void *arg)
{
    fut_rec *r = arg;
    r->rc = tide_future_await(r->f, &r->value);
    order[norder++] = r->tag;
    order[norder] = '\0';
    return 0;
}

static int main_task_future(void *arg)
{
    static int payload;
    fut_rec cb1 = {0}, w1 = {0}, cb2 = {0}, w2 = {0};
    tide_future *f, *f2;
    tide_task *t, *a, *b;

    (void)arg;
    norder = 0;
    order[0] = '\0';
    tide_event_init(&gate);
    assert_int_equal(tide_create_task(&t, gated_ptr_task, &payload), 0);
    assert_int_equal(tide_task_future(t, &f), 0);
    assert_int_equal(tide_task_future(t, &f2), 0);
    assert_ptr_equal(f, f2);
    cb1.f = w1.f = cb2.f = w2.f = f;
    cb1.tag = '1';
    w1.tag = 'A';
    cb2.tag = '2';
    w2.tag = 'B';
    /* Registration order: cb1, waiter A, cb2, waiter B. */
    assert_int_equal(tide_future_add_done_callback(f, log_cb, &cb1), 0);
    assert_int_equal(tide_create_task(&a, fut_waiter, &w1), 0);
    settle();
    assert_int_equal(tide_future_add_done_callback(f, log_cb, &cb2), 0);
    assert_int_equal(tide_create_task(&b, fut_waiter, &w2), 0);
    settle();
    assert_int_equal(tide_future_done(f), 0);
    tide_event_set(&gate);
    assert_int_equal(tide_await(t), 7); /* the int result is still the awaiter's */
    assert_int_equal(tide_await(a), 0);
    assert_int_equal(tide_await(b), 0);
    settle();
    assert_string_equal(order, "1A2B");
    assert_int_equal(w1.rc, 7);
    assert_ptr_equal(w1.value, &payload);
    assert_int_equal(cb2.rc, 7);
    assert_ptr_equal(cb2.value, &payload);
    return 0;
}

static void test_task_future(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_task_future, NULL), 0);
}

static int fail_task(void *arg)
{
    (void)arg;
    tide_sleep(1);
    return -EIO;
}

static int long_sleep(void *arg)
{
    (void)arg;
    return tide_sleep(100000);
}

static int main_task_future_errors(void *arg)
{
    tide_future *f = NULL, *g;
    tide_task *t;
    void *v;

    (void)arg;
    /* A failing task: its future holds the error. */
    assert_int_equal(tide_create_task(&t, fail_task, NULL), 0);
    assert_int_equal(tide_task_future(t, &f), 0);
    assert_int_equal(tide_future_await(f, &v), -EIO);
    tide_future_free(f); /* belongs to the task: no effect */
    assert_int_equal(tide_future_set_result(f, NULL), -EINVAL);
    assert_int_equal(tide_future_set_error(f, -EIO), -EINVAL);
    assert_int_equal(tide_future_result(f, NULL), -EIO);
    assert_int_equal(tide_await(t), -EIO);

    /* Cancelling a task's future cancels the task. */
    assert_int_equal(tide_create_task(&t, long_sleep, NULL), 0);
    settle();
    assert_int_equal(tide_task_future(t, &f), 0);
    assert_int_equal(tide_future_cancel(f), 0);
    assert_int_equal(tide_task_cancelled(t), 1);
    assert_int_equal(tide_future_await(f, NULL), -ECANCELED);
    assert_int_equal(tide_await(t), -ECANCELED);

    /* The future of a task that ended already is done at once. */
    assert_int_equal(tide_create_task(&t, ptr_task, NULL), 0);
    assert_int_equal(tide_wait(&t, 1, TIDE_ALL_COMPLETED), 1);
    assert_int_equal(tide_task_future(t, &g), 0);
    assert_int_equal(tide_future_done(g), 1);
    assert_int_equal(tide_future_result(g, NULL), 7);
    assert_int_equal(tide_await(t), 7);

    assert_int_equal(tide_task_future(NULL, &f), -EINVAL);
    assert_int_equal(tide_task_future(t, &f), -EINVAL); /* released */
    assert_int_equal(tide_task_future(NULL, NULL), -EINVAL);
    return 0;
}

static void test_task_future_errors(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_task_future_errors, NULL), 0);
}

/* Plain futures wake in registration order too. */
static int main_future_order(void *arg)
{
    fut_rec w1 = {0}, cb = {0}, w2 = {0};
    tide_future *f;
    tide_task *a, *b;
    static int val;

    (void)arg;
    norder = 0;
    order[0] = '\0';
    assert_int_equal(tide_future_new(&f), 0);
    w1.f = cb.f = w2.f = f;
    w1.tag = 'A';
    cb.tag = 'c';
    w2.tag = 'B';
    assert_int_equal(tide_create_task(&a, fut_waiter, &w1), 0);
    settle();
    assert_int_equal(tide_future_add_done_callback(f, log_cb, &cb), 0);
    assert_int_equal(tide_create_task(&b, fut_waiter, &w2), 0);
    settle();
    assert_int_equal(tide_future_set_result(f, &val), 0);
    assert_int_equal(tide_await(a), 0);
    assert_int_equal(tide_await(b), 0);
    settle();
    assert_string_equal(order, "AcB");
    assert_int_equal(cb.rc, 0);
    assert_ptr_equal(w2.value, &val);
    tide_future_free(f);
    return 0;
}

static void test_future_order(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_future_order, NULL), 0);
}



/* ------------------------------------------------- gather/wait futures */

static int sleep_ret(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    tide_sleep(ms);
    return (int)ms;
}

static void set_later(void *arg)
{
    static int val = 5;
    tide_future_set_result(arg, &val);
}

static int main_mix(void *arg)
{
    tide_loop *loop = tide_loop_current();
    tide_task *t1, *t2;
    tide_future *f, *fs[3], *got;
    tide_future_iter *it;
    int results[3];
    void *values[3];

    (void)arg;
    assert_int_equal(tide_create_task(&t1, sleep_ret, (void *)(intptr_t)300), 0);
    assert_int_equal(tide_create_task(&t2, sleep_ret, (void *)(intptr_t)100), 0);
    assert_int_equal(tide_future_new(&f), 0);
    assert_int_equal(tide_task_future(t1, &fs[0]), 0);
    assert_int_equal(tide_task_future(t2, &fs[1]), 0);
    fs[2] = f;
    assert_int_equal(tide_call_later(loop, 200, set_later, f, NULL), 0);

    /* as_completed: t2 (100 ms), the plain future (200 ms), t1 (300 ms). */
    assert_int_equal(tide_as_completed_futures_new(&it, fs, 3), 0);
    assert_int_equal(tide_as_completed_futures_next(it, &got), 0);
    assert_ptr_equal(got, fs[1]);
    assert_int_equal(tide_wait_futures(fs, 3, TIDE_FIRST_COMPLETED), 1);
    assert_int_equal(tide_as_completed_futures_next(it, &got), 0);
    assert_ptr_equal(got, f);
    assert_int_equal(tide_as_completed_futures_next(it, &got), 0);
    assert_ptr_equal(got, fs[0]);
    assert_int_equal(tide_as_completed_futures_next(it, &got), -ENOENT);
    tide_as_completed_futures_free(it);

    assert_int_equal(tide_gather_futures(fs, 3, results, values), 0);
    assert_int_equal(results[0], 300);
    assert_int_equal(results[1], 100);
    assert_int_equal(results[2], 0);
    assert_int_equal(*(int *)values[2], 5);
    assert_int_equal(tide_wait_futures(fs, 3, TIDE_ALL_COMPLETED), 3);
    assert_int_equal(tide_await(t1), 300);
    assert_int_equal(tide_await(t2), 100);
    tide_future_free(f);

    /* Errors. */
    assert_int_equal(tide_wait_futures(NULL, 1, TIDE_ALL_COMPLETED), -EINVAL);
    assert_int_equal(tide_wait_futures(fs, 1, 99), -EINVAL);
    fs[0] = NULL;
    assert_int_equal(tide_gather_futures(fs, 1, NULL, NULL), -EINVAL);
    assert_int_equal(tide_as_completed_futures_new(NULL, fs, 1), -EINVAL);
    assert_int_equal(tide_as_completed_futures_next(NULL, &got), -EINVAL);
    assert_int_equal(tide_gather_futures(NULL, 0, NULL, NULL), 0);
    return 0;
}

static void test_gather_wait_futures(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_mix, NULL), 0);
}

/* gather cancelled by a timeout: pending futures are cancelled (a task's
 * future cancels its task), an error is reported by the first failure. */
static int main_gather_cancel(void *arg)
{
    tide_task *t;
    tide_future *f, *fs[2];
    tide_scope s;
    int results[2];

    (void)arg;
    assert_int_equal(tide_create_task(&t, long_sleep, NULL), 0);
    assert_int_equal(tide_future_new(&f), 0);
    assert_int_equal(tide_task_future(t, &fs[0]), 0);
    fs[1] = f;
    tide_timeout_begin(&s, 20);
    assert_int_equal(tide_gather_futures(fs, 2, results, NULL), -ETIMEDOUT);
    tide_timeout_end(&s);
    assert_int_equal(tide_future_done(fs[0]), 1);
    assert_int_equal(tide_future_done(f), 1);
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_DONE);
    assert_int_equal(tide_await(t), -ECANCELED);
    tide_future_free(f);

    /* An error wins in array order. */
    assert_int_equal(tide_create_task(&t, fail_task, NULL), 0);
    assert_int_equal(tide_future_new(&f), 0);
    assert_int_equal(tide_future_set_error(f, -EDOM), 0);
    assert_int_equal(tide_task_future(t, &fs[1]), 0);
    fs[0] = f;
    assert_int_equal(tide_gather_futures(fs, 2, results, NULL), -EDOM);
    assert_int_equal(results[1], -EIO);
    assert_int_equal(tide_wait_futures(fs, 2, TIDE_FIRST_ERROR), 2);
    assert_int_equal(tide_await(t), -EIO);
    tide_future_free(f);
    return 0;
}

static void test_gather_cancel(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_gather_cancel, NULL), 0);
}


/* ------------------------------------------- a group cancels its owner */

static int main_group_owner(void *arg)
{
    tide_group g, *hg;
    tide_scope sh;
    int64_t t0;

    (void)arg;
    assert_int_equal(tide_group_init(&g), 0);
    assert_int_equal(tide_group_spawn(&g, fail_task, NULL, NULL, NULL), 0);
    assert_int_equal(tide_group_spawn(&g, long_sleep, NULL, NULL, NULL), 0);
    t0 = tide_now();
    assert_int_equal(tide_sleep(100000), -ECANCELED); /* the member's failure reached us */
    assert_true(tide_now() - t0 < 5000);
    assert_int_equal(tide_sleep(0), -ECANCELED); /* level-triggered inside the group */
    assert_int_equal(tide_task_cancelled(tide_current_task()), 0); /* the task is not */
    assert_int_equal(tide_group_wait(&g), -EIO); /* the failure, not -ECANCELED */
    assert_int_equal(tide_sleep(0), 0);           /* past the group: calls work again */

    /* A shield inside the group covers the owner's wait. */
    assert_int_equal(tide_group_init(&g), 0);
    assert_int_equal(tide_group_spawn(&g, fail_task, NULL, NULL, NULL), 0);
    tide_shield_begin(&sh);
    assert_int_equal(tide_sleep(30), 0);
    tide_shield_end(&sh);
    assert_int_equal(tide_sleep(0), -ECANCELED);
    assert_int_equal(tide_group_wait(&g), -EIO);

    /* Success: nothing is cancelled. */
    assert_int_equal(tide_group_init(&g), 0);
    assert_int_equal(tide_group_spawn(&g, ptr_task, NULL, NULL, NULL), 0);
    assert_int_equal(tide_sleep(10), 0);
    assert_int_equal(tide_group_wait(&g), 0);

    /* A group on the heap has no owner code to cancel. */
    hg = malloc(sizeof *hg);
    assert_int_equal(tide_group_init(hg), 0);
    assert_int_equal(tide_group_spawn(hg, fail_task, NULL, NULL, NULL), 0);
    assert_int_equal(tide_sleep(30), 0);
    assert_int_equal(tide_group_wait(hg), -EIO);
    free(hg);
    return 0;
}

static void test_group_cancels_owner(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_group_owner, NULL), 0);
}

/* ---------------------------------------------------------------- sync */

typedef struct condx {
    tide_cond c;
    int value;
    int rc;
} condx;

static int ready_pred(void *arg)
{
    condx *x = arg;
    return x->value >= 3 ? 1 : 0;
}

static int bad_pred(void *arg)
{
    (void)arg;
    return -EDOM;
}

static int cond_waiter(void *arg)
{
    condx *x = arg;
    tide_lock_acquire(tide_cond_lock(&x->c));
    x->rc = tide_cond_wait_for(&x->c, ready_pred, x);
    assert_int_equal(tide_lock_locked(tide_cond_lock(&x->c)), 1);
    x->value = x->rc == 0 ? 100 : -1;
    tide_lock_release(tide_cond_lock(&x->c));
    return 0;
}

static int main_cond(void *arg)
{
    condx x;
    tide_task *t;
    tide_scope s;

    (void)arg;
    memset(&x, 0, sizeof x);
    tide_cond_init(&x.c, NULL);
    assert_int_equal(tide_create_task(&t, cond_waiter, &x), 0);
    for (int i = 1; i <= 3; i++) {
        settle();
        assert_int_equal(x.value, i - 1); /* still waiting: the predicate was false */
        tide_lock_acquire(tide_cond_lock(&x.c));
        x.value = i;
        tide_cond_notify_all(&x.c);
        tide_lock_release(tide_cond_lock(&x.c));
    }
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.value, 100);

    /* Errors: lock not held, NULLs, a failing predicate, a timeout. */
    assert_int_equal(tide_cond_wait_for(&x.c, ready_pred, &x), -EPERM);
    assert_int_equal(tide_cond_wait_for(NULL, ready_pred, &x), -EINVAL);
    assert_int_equal(tide_cond_wait_for(&x.c, NULL, &x), -EINVAL);
    tide_lock_acquire(tide_cond_lock(&x.c));
    assert_int_equal(tide_cond_wait_for(&x.c, bad_pred, NULL), -EDOM);
    x.value = 0;
    tide_timeout_begin(&s, 10);
    assert_int_equal(tide_cond_wait_for(&x.c, ready_pred, &x), -ETIMEDOUT);
    tide_timeout_end(&s);
    assert_int_equal(tide_lock_locked(tide_cond_lock(&x.c)), 1);
    tide_lock_release(tide_cond_lock(&x.c));
    return 0;
}

static void test_cond_wait_for(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_cond, NULL), 0);
}

static int bar_waiter(void *arg)
{
    return tide_barrier_wait(arg);
}

static int main_barrier(void *arg)
{
    tide_barrier b;
    tide_task *t[2];

    (void)arg;
    assert_int_equal(tide_barrier_init(&b, 3), 0);
    assert_int_equal(tide_barrier_broken(&b), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tide_create_task(&t[i], bar_waiter, &b), 0);
    settle();
    assert_int_equal(tide_barrier_n_waiting(&b), 2);
    assert_int_equal(tide_barrier_abort(&b), 0);
    assert_int_equal(tide_barrier_broken(&b), 1);
    assert_int_equal(tide_await(t[0]), -EPIPE);
    assert_int_equal(tide_await(t[1]), -EPIPE);
    assert_int_equal(tide_barrier_wait(&b), -EPIPE); /* broken stays broken */

    /* Reset: waiters wake with -EPIPE, then the barrier works again. */
    assert_int_equal(tide_barrier_reset(&b), 0);
    assert_int_equal(tide_barrier_broken(&b), 0);
    assert_int_equal(tide_create_task(&t[0], bar_waiter, &b), 0);
    settle();
    assert_int_equal(tide_barrier_reset(&b), 0);
    assert_int_equal(tide_await(t[0]), -EPIPE);
    assert_int_equal(tide_barrier_n_waiting(&b), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tide_create_task(&t[i], bar_waiter, &b), 0);
    settle();
    assert_int_equal(tide_barrier_wait(&b), 2);
    assert_int_equal(tide_await(t[0]), 0);
    assert_int_equal(tide_await(t[1]), 1);

    assert_int_equal(tide_barrier_abort(NULL), -EINVAL);
    assert_int_equal(tide_barrier_reset(NULL), -EINVAL);
    assert_int_equal(tide_barrier_broken(NULL), -EINVAL);
    return 0;
}

static void test_barrier_abort(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_barrier, NULL), 0);
}

/* ---------------------------------------------------------- task-locals */

static int freed_count;
static void free_value(void *v)
{
    freed_count++;
    free(v);
}

static tide_local_key dkey, pkey;

static int local_child(void *arg)
{
    int *v = tide_local_get(&dkey);
    (void)arg;
    assert_non_null(v);
    assert_int_equal(*v, 1);
    tide_sleep(5);
    assert_int_equal(freed_count, 0); /* the parent replaced it: we still hold it */
    assert_int_equal(*(int *)tide_local_get(&dkey), 1);
    return 0;
}

static int main_locals(void *arg)
{
    tide_local_token tok, tok2;
    tide_task *t;
    int *one = malloc(sizeof *one), *two = malloc(sizeof *two);
    static int a, b;

    (void)arg;
    *one = 1;
    *two = 2;
    freed_count = 0;
    assert_int_equal(tide_local_set(&dkey, one), 0);
    assert_int_equal(tide_create_task(&t, local_child, NULL), 0);
    settle();
    assert_int_equal(tide_local_set_token(&dkey, two, &tok), 0);
    assert_ptr_equal(tide_local_token_old(&tok), one);
    assert_ptr_equal(tide_local_get(&dkey), two);
    assert_int_equal(tide_await(t), 0); /* the child let go of `one`; the token holds it */
    assert_int_equal(freed_count, 0);
    assert_int_equal(tide_local_reset(&dkey, &tok), 0); /* `two` is dropped */
    assert_int_equal(freed_count, 1);
    assert_ptr_equal(tide_local_get(&dkey), one);
    assert_int_equal(tide_local_reset(&dkey, &tok), -EALREADY);
    assert_null(tide_local_token_old(&tok));
    assert_int_equal(tide_local_set(&dkey, NULL), 0); /* `one` has no holder left */
    assert_int_equal(freed_count, 2);

    /* A key without destructor: tokens hold plain values. */
    assert_int_equal(tide_local_set(&pkey, &a), 0);
    assert_int_equal(tide_local_set_token(&pkey, &b, &tok2), 0);
    assert_ptr_equal(tide_local_get(&pkey), &b);
    assert_int_equal(tide_local_reset(&dkey, &tok2), -EINVAL); /* another key's token */
    assert_int_equal(tide_local_reset(&pkey, &tok2), 0);
    assert_ptr_equal(tide_local_get(&pkey), &a);
    assert_int_equal(tide_local_set_token(NULL, &b, &tok2), -EINVAL);
    assert_int_equal(tide_local_set_token(&pkey, &b, NULL), -EINVAL);
    assert_int_equal(tide_local_reset(&pkey, NULL), -EINVAL);

    /* The task's own value is freed when it is released. */
    two = malloc(sizeof *two);
    assert_int_equal(tide_local_set(&dkey, two), 0);
    return 0;
}

static void test_locals(void **state)
{
    tide_local_token tok;
    (void)state;
    assert_int_equal(tide_local_key_init_ex(&dkey, free_value), 0);
    assert_int_equal(tide_local_key_init(&pkey), 0);
    assert_int_equal(tide_local_set_token(&pkey, NULL, &tok), -EPERM);
    assert_int_equal(tide_run(main_locals, NULL), 0);
    assert_int_equal(freed_count, 3);
}

/* ------------------------------------------------------------ strerror */

static void test_strerror(void **state)
{
    (void)state;
    assert_non_null(strstr(tide_strerror(TIDE_PROC_SIGNALED(SIGKILL)), "SIGKILL"));
    assert_non_null(strstr(tide_strerror(TIDE_PROC_SIGNALED(SIGTERM)), "SIGTERM"));
    assert_non_null(strstr(tide_strerror(TIDE_PROC_SIGNALED(SIGSEGV)), "signal"));
    assert_non_null(strstr(tide_strerror(TIDE_PROC_SIGNALED(SIGRTMIN + 1)), "signal"));
    assert_null(strstr(tide_strerror(-EPERM), "outside"));
    assert_null(strstr(tide_strerror(-EPERM), "Unknown"));
    assert_null(strstr(tide_strerror(TIDE_EAI_NONAME), "Unknown"));
    assert_non_null(strstr(tide_strerror(-30000), "unknown"));
    assert_string_equal(tide_strerror(0), "success");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_at),
        cmocka_unit_test(test_sleep_ns),
        cmocka_unit_test(test_scope_cancel),
        cmocka_unit_test(test_reschedule),
        cmocka_unit_test(test_ptr_result),
        cmocka_unit_test(test_task_future),
        cmocka_unit_test(test_task_future_errors),
        cmocka_unit_test(test_future_order),
        cmocka_unit_test(test_gather_wait_futures),
        cmocka_unit_test(test_gather_cancel),
        cmocka_unit_test(test_group_cancels_owner),
        cmocka_unit_test(test_cond_wait_for),
        cmocka_unit_test(test_barrier_abort),
        cmocka_unit_test(test_locals),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
