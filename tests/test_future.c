/*
 * Tests of futures: results, errors, cancel, done callbacks, several
 * waiters, free with waiters, argument checks.
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
#include <unistd.h>

#include "tide.h"
#include "util.h"
#include "vrun.h"

static int g_x = 42, g_y = 43;

/* ------------------------------------------------- set, then await */

typedef struct f1 {
    int rc_new, rc_set, done_before, done_after, rc_await, rc_result;
    void *v_await, *v_result;
    int rc_set2, rc_err2, rc_cancel2;
    void *v_after_second;
    int rc_result_pending;
    void *v_untouched;
} f1;

static int set_then_await_main(void *arg)
{
    f1 *s = arg;
    tide_future *f = NULL;
    s->rc_new = tide_future_new(&f);
    if (s->rc_new != 0)
        return -1;
    s->v_untouched = &g_y;
    s->rc_result_pending = tide_future_result(f, &s->v_untouched);
    s->done_before = tide_future_done(f);
    s->rc_set = tide_future_set_result(f, &g_x);
    s->done_after = tide_future_done(f);
    s->rc_await = tide_future_await(f, &s->v_await);
    s->rc_result = tide_future_result(f, &s->v_result);
    /* second completion of any kind */
    s->rc_set2 = tide_future_set_result(f, &g_y);
    s->rc_err2 = tide_future_set_error(f, -EIO);
    s->rc_cancel2 = tide_future_cancel(f);
    tide_future_await(f, &s->v_after_second);
    tide_future_free(f);
    return 0;
}

static void test_set_result_then_await(void **state)
{
    (void)state;
    f1 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(set_then_await_main, &s), 0);
    assert_int_equal(s.rc_new, 0);
    assert_int_equal(s.rc_result_pending, -EAGAIN);
    assert_ptr_equal(s.v_untouched, &g_y);
    assert_int_equal(s.done_before, 0);
    assert_int_equal(s.rc_set, 0);
    assert_int_equal(s.done_after, 1);
    assert_int_equal(s.rc_await, 0);
    assert_ptr_equal(s.v_await, &g_x);
    assert_int_equal(s.rc_result, 0);
    assert_ptr_equal(s.v_result, &g_x);
    assert_int_equal(s.rc_set2, -EALREADY);
    assert_int_equal(s.rc_err2, -EALREADY);
    assert_int_equal(s.rc_cancel2, -EALREADY);
    assert_ptr_equal(s.v_after_second, &g_x); /* first value kept */
}

/* ------------------------------------------- await, set by another task */

typedef struct f2 {
    tide_future *f;
    int rc_await;
    void *v;
    int64_t t_set, t_woke;
    int waiter_done_before_set;
} f2;

static int f2_waiter(void *arg)
{
    f2 *s = arg;
    s->rc_await = tide_future_await(s->f, &s->v);
    s->t_woke = tide_now();
    return 0;
}

static int f2_setter(void *arg)
{
    f2 *s = arg;
    tide_sleep(20);
    s->waiter_done_before_set = s->rc_await != 12345;
    s->t_set = tide_now();
    return tide_future_set_result(s->f, &g_x);
}

static int await_then_set_main(void *arg)
{
    f2 *s = arg;
    if (tide_future_new(&s->f) != 0)
        return -1;
    tide_task *t[2];
    tide_create_task(&t[0], f2_waiter, s);
    tide_create_task(&t[1], f2_setter, s);
    int rc = tide_gather(t, 2, NULL);
    tide_future_free(s->f);
    return rc;
}

static void test_await_then_set(void **state)
{
    (void)state;
    f2 s;
    memset(&s, 0, sizeof s);
    s.rc_await = 12345;
    assert_int_equal(tt_vrun(await_then_set_main, &s), 0);
    assert_int_equal(s.waiter_done_before_set, 0);
    assert_int_equal(s.rc_await, 0);
    assert_ptr_equal(s.v, &g_x);
    assert_true(s.t_woke - s.t_set < 500);
}

/* ------------------------------------------------------ error, cancel */

typedef struct f3 {
    int rc_set_err, rc_await_err, rc_result_err;
    int rc_cancel, rc_await_cancel, rc_result_cancel, done_cancel, rc_cancel_again;
    int rc_err_zero, rc_err_pos, done_after_bad;
    int rc_err_null, rc_set_null, rc_cancel_null, rc_await_null, rc_new_null, rc_cb_null;
    int rc_result_null;
    int rc_waiter_err;
} f3;

static tide_future *g_f3;

static int f3_waiter(void *arg)
{
    f3 *s = arg;
    s->rc_waiter_err = tide_future_await(g_f3, NULL);
    return 0;
}

static int error_cancel_main(void *arg)
{
    f3 *s = arg;
    tide_future *f;
    /* error, with a waiter already waiting */
    tide_future_new(&f);
    g_f3 = f;
    tide_task *w;
    tide_create_task(&w, f3_waiter, s);
    tide_sleep(5);
    s->rc_set_err = tide_future_set_error(f, -EIO);
    s->rc_await_err = tide_future_await(f, NULL);
    s->rc_result_err = tide_future_result(f, NULL);
    tide_await(w);
    tide_future_free(f);

    /* cancel */
    tide_future_new(&f);
    s->rc_cancel = tide_future_cancel(f);
    s->done_cancel = tide_future_done(f);
    s->rc_await_cancel = tide_future_await(f, NULL);
    s->rc_result_cancel = tide_future_result(f, NULL);
    s->rc_cancel_again = tide_future_cancel(f);
    tide_future_free(f);

    /* bad errors leave the future pending */
    tide_future_new(&f);
    s->rc_err_zero = tide_future_set_error(f, 0);
    s->rc_err_pos = tide_future_set_error(f, 5);
    s->done_after_bad = tide_future_done(f);
    tide_future_free(f);

    s->rc_err_null = tide_future_set_error(NULL, -EIO);
    s->rc_set_null = tide_future_set_result(NULL, NULL);
    s->rc_cancel_null = tide_future_cancel(NULL);
    s->rc_await_null = tide_future_await(NULL, NULL);
    s->rc_new_null = tide_future_new(NULL);
    s->rc_cb_null = tide_future_add_done_callback(NULL, NULL, NULL);
    s->rc_result_null = tide_future_result(NULL, NULL);
    tide_future_free(NULL);
    return 0;
}

static void test_error_cancel_and_bad_args(void **state)
{
    (void)state;
    f3 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(error_cancel_main, &s), 0);
    assert_int_equal(s.rc_set_err, 0);
    assert_int_equal(s.rc_await_err, -EIO);
    assert_int_equal(s.rc_result_err, -EIO);
    assert_int_equal(s.rc_waiter_err, -EIO);
    assert_int_equal(s.rc_cancel, 0);
    assert_int_equal(s.done_cancel, 1);
    assert_int_equal(s.rc_await_cancel, -ECANCELED);
    assert_int_equal(s.rc_result_cancel, -ECANCELED);
    assert_int_equal(s.rc_cancel_again, -EALREADY);
    assert_int_equal(s.rc_err_zero, -EINVAL);
    assert_int_equal(s.rc_err_pos, -EINVAL);
    assert_int_equal(s.done_after_bad, 0);
    assert_int_equal(s.rc_err_null, -EINVAL);
    assert_int_equal(s.rc_set_null, -EINVAL);
    assert_int_equal(s.rc_cancel_null, -EINVAL);
    assert_int_equal(s.rc_await_null, -EINVAL);
    assert_int_equal(s.rc_new_null, -EINVAL);
    assert_int_equal(s.rc_cb_null, -EINVAL);
    assert_true(s.rc_result_null < 0);
}

/* -------------------------------------------------------- done callbacks */

typedef struct f4 {
    tide_future *f;
    int log[8];
    int n;
    int sync_after_set;     /* callbacks run synchronously by set? */
    int sync_after_add;     /* by add on a done future? */
    int after_yield;
    int wrong_future;
    int rc_add[4];
    int rc_cb_fn_null;
} f4;

typedef struct cb_arg {
    f4 *s;
    int id;
} cb_arg;

static void done_cb(tide_future *f, void *arg)
{
    cb_arg *a = arg;
    if (f != a->s->f)
        a->s->wrong_future++;
    a->s->log[a->s->n++] = a->id;
}

static int done_cb_main(void *arg)
{
    f4 *s = arg;
    tide_future_new(&s->f);
    static cb_arg a[4];
    for (int i = 0; i < 4; i++)
        a[i] = (cb_arg){s, i + 1};
    s->rc_add[0] = tide_future_add_done_callback(s->f, done_cb, &a[0]);
    s->rc_add[1] = tide_future_add_done_callback(s->f, done_cb, &a[1]);
    s->rc_add[2] = tide_future_add_done_callback(s->f, done_cb, &a[2]);
    s->rc_cb_fn_null = tide_future_add_done_callback(s->f, NULL, NULL);
    tide_future_set_result(s->f, &g_x);
    s->sync_after_set = s->n;
    tide_sleep(0);
    tide_sleep(0);
    s->after_yield = s->n;
    /* added after completion: runs on a later iteration */
    s->rc_add[3] = tide_future_add_done_callback(s->f, done_cb, &a[3]);
    s->sync_after_add = s->n;
    tide_sleep(0);
    tide_sleep(0);
    tide_future_free(s->f);
    return 0;
}

static void test_done_callbacks(void **state)
{
    (void)state;
    f4 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(done_cb_main, &s), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.rc_add[i], 0);
    assert_int_equal(s.rc_cb_fn_null, -EINVAL);
    assert_int_equal(s.sync_after_set, 0);
    assert_int_equal(s.after_yield, 3);
    assert_int_equal(s.sync_after_add, 3);
    assert_int_equal(s.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.log[i], i + 1); /* registration order */
    assert_int_equal(s.wrong_future, 0);
}

/* ------------------------------------------------------ several waiters */

typedef struct f5 {
    tide_future *f;
    int rc[5];
    void *v[5];
    int woke;
} f5;

typedef struct w_arg {
    f5 *s;
    int i;
} w_arg;

static int f5_waiter(void *arg)
{
    w_arg *a = arg;
    a->s->rc[a->i] = tide_future_await(a->s->f, &a->s->v[a->i]);
    a->s->woke++;
    return 0;
}

static int many_waiters_main(void *arg)
{
    f5 *s = arg;
    tide_future_new(&s->f);
    w_arg a[5];
    tide_task *t[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (w_arg){s, i};
        tide_create_task(&t[i], f5_waiter, &a[i]);
    }
    tide_sleep(10);
    if (s->woke != 0)
        return -1;
    tide_future_set_result(s->f, &g_y);
    int rc = tide_gather(t, 5, NULL);
    tide_future_free(s->f);
    return rc;
}

static void test_several_waiters(void **state)
{
    (void)state;
    f5 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(many_waiters_main, &s), 0);
    assert_int_equal(s.woke, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s.rc[i], 0);
        assert_ptr_equal(s.v[i], &g_y);
    }
}

/* ------------------------------------------------ free with waiters */

typedef struct f6 {
    tide_future *f;
    int rc[3];
    int woke;
    int cb_ran;
} f6;

typedef struct w6 {
    f6 *s;
    int i;
} w6;

static int f6_waiter(void *arg)
{
    w6 *a = arg;
    a->s->rc[a->i] = tide_future_await(a->s->f, NULL);
    a->s->woke++;
    return 0;
}

static void f6_cb(tide_future *f, void *arg)
{
    (void)f; /* may be freed already: not touched */
    ((f6 *)arg)->cb_ran++;
}

static int free_pending_main(void *arg)
{
    f6 *s = arg;
    tide_future_new(&s->f);
    tide_future_add_done_callback(s->f, f6_cb, s);
    w6 a[3];
    tide_task *t[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (w6){s, i};
        tide_create_task(&t[i], f6_waiter, &a[i]);
    }
    tide_sleep(10);
    tide_future_free(s->f);
    s->f = NULL;
    int rc = tide_gather(t, 3, NULL);
    tide_sleep(0);
    tide_sleep(0);
    return rc;
}

static void test_free_pending_wakes_waiters(void **state)
{
    (void)state;
    f6 s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 3; i++)
        s.rc[i] = 12345;
    assert_int_equal(tt_vrun(free_pending_main, &s), 0);
    assert_int_equal(s.woke, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s.rc[i], -ECANCELED);
    assert_int_equal(s.cb_ran, 1);
}

/* --------------------------------------------- timeout while awaiting */

typedef struct f7 {
    int rc_await, rc_end, done_after, rc_set_later, rc_await_later;
    void *v;
} f7;

static int timeout_future_main(void *arg)
{
    f7 *s = arg;
    tide_future *f;
    tide_future_new(&f);
    tide_scope sc;
    tide_timeout_begin(&sc, 20);
    s->rc_await = tide_future_await(f, NULL);
    s->rc_end = tide_timeout_end(&sc);
    s->done_after = tide_future_done(f); /* the timeout hit the waiter only */
    s->rc_set_later = tide_future_set_result(f, &g_x);
    s->rc_await_later = tide_future_await(f, &s->v);
    tide_future_free(f);
    return 0;
}

static void test_timeout_while_awaiting(void **state)
{
    (void)state;
    f7 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(timeout_future_main, &s), 0);
    assert_int_equal(s.rc_await, -ETIMEDOUT);
    assert_int_equal(s.rc_end, -ETIMEDOUT);
    assert_int_equal(s.done_after, 0);
    assert_int_equal(s.rc_set_later, 0);
    assert_int_equal(s.rc_await_later, 0);
    assert_ptr_equal(s.v, &g_x);
}

/* ------------------------------------------------- futures on a loop */

static int g_cb_on_loop;

static void loop_cb(tide_future *f, void *arg)
{
    (void)arg;
    void *v = NULL;
    if (tide_future_result(f, &v) == 0 && v == &g_x)
        g_cb_on_loop++;
}

static void test_future_outside_task(void **state)
{
    (void)state;
    tide_future *f = NULL;
    assert_int_equal(tide_future_new(&f), -EPERM); /* no loop runs */
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_future_new_on(&f, loop), 0);
    assert_int_equal(tide_future_new_on(NULL, loop), -EINVAL);
    assert_int_equal(tide_future_add_done_callback(f, loop_cb, NULL), 0);
    /* awaiting needs a task */
    assert_int_equal(tide_future_await(f, NULL), -EPERM);
    g_cb_on_loop = 0;
    assert_int_equal(tide_future_set_result(f, &g_x), 0);
    assert_int_equal(g_cb_on_loop, 0);
    assert_int_equal(tide_loop_run(loop), 0); /* runs the callback */
    assert_int_equal(g_cb_on_loop, 1);
    void *v = NULL;
    assert_int_equal(tide_future_result(f, &v), 0);
    assert_ptr_equal(v, &g_x);
    tide_future_free(f);
    tide_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_result_then_await),
        cmocka_unit_test(test_await_then_set),
        cmocka_unit_test(test_error_cancel_and_bad_args),
        cmocka_unit_test(test_done_callbacks),
        cmocka_unit_test(test_several_waiters),
        cmocka_unit_test(test_free_pending_wakes_waiters),
        cmocka_unit_test(test_timeout_while_awaiting),
        cmocka_unit_test(test_future_outside_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
