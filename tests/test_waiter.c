/*
 * Tests of the one waiter behind tide_wait / tide_as_completed (over tasks)
 * and tide_wait_futures / _gather_futures / as_completed_futures (over
 * futures): futures.c serves both, a task through its future.  What the
 * merge could change: tasks and futures waited on together by several
 * waiters at once, a waiter cancelled or timed out (the tasks go on, the
 * watches are gone), an iterator's next as a cancellation point and its
 * -EPERM off the loop, a watched task released by another task's await,
 * and the wait kind a dump shows.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "tide.h"
#include "util.h"
#include "vrun.h"

typedef struct job {
    int64_t ms;
    int result;
} job;

static int sleeper(void *arg)
{
    job *j = arg;
    int rc = tide_sleep(j->ms);

    return rc < 0 ? rc : j->result;
}

typedef struct setter {
    tide_future *f;
    int64_t ms;
} setter;

static int set_later(void *arg)
{
    setter *s = arg;

    tide_sleep(s->ms);
    return tide_future_set_result(s->f, s);
}

typedef struct waitarg {
    tide_task **ts;
    tide_future **fs;
    size_t n;
    int mode;
    int rc;
    int64_t elapsed;
    tide_task *got[4];
} waitarg;

static int wait_tasks_fn(void *arg)
{
    waitarg *w = arg;
    int64_t t0 = tide_now();

    w->rc = tide_wait(w->ts, w->n, w->mode);
    w->elapsed = tide_now() - t0;
    return 0;
}

static int wait_futures_fn(void *arg)
{
    waitarg *w = arg;
    int64_t t0 = tide_now();

    w->rc = tide_wait_futures(w->fs, w->n, w->mode);
    w->elapsed = tide_now() - t0;
    return 0;
}

/* ------------------------------------------- tasks and futures mixed */

static int main_mixed(void *arg)
{
    job j1 = {10, 1}, j2 = {30, -EIO};
    tide_task *t[2], *wt[2], *got;
    tide_future *f, *fs[3], *gotf;
    setter s;
    waitarg wa, wb;
    tide_as_completed *ac;
    tide_future_iter *fi;
    int i;

    (void)arg;
    assert_int_equal(tide_create_task(&t[0], sleeper, &j1), 0);
    assert_int_equal(tide_create_task(&t[1], sleeper, &j2), 0);
    assert_int_equal(tide_future_new(&f), 0);
    s.f = f;
    s.ms = 20;
    assert_int_equal(tide_create_task(&wt[0], set_later, &s), 0);
    assert_int_equal(tide_task_future(t[0], &fs[0]), 0);
    fs[1] = f;
    assert_int_equal(tide_task_future(t[1], &fs[2]), 0);

    /* Two waiters over the same tasks, one through tide_wait, one through
     * the futures, and two iterators, one of each kind. */
    memset(&wa, 0, sizeof wa);
    wa.ts = t;
    wa.n = 2;
    wa.mode = TIDE_ALL_COMPLETED;
    assert_int_equal(tide_create_task(&wt[1], wait_tasks_fn, &wa), 0);
    memset(&wb, 0, sizeof wb);
    wb.fs = fs;
    wb.n = 3;
    wb.mode = TIDE_FIRST_COMPLETED;
    tide_task *wt2;
    assert_int_equal(tide_create_task(&wt2, wait_futures_fn, &wb), 0);
    assert_int_equal(tide_as_completed_new(&ac, t, 2), 0);
    assert_int_equal(tide_as_completed_futures_new(&fi, fs, 3), 0);

    /* FIRST_ERROR over the futures: the task failing at 30 ms. */
    int64_t t0 = tide_now();
    assert_int_equal(tide_wait_futures(fs, 3, TIDE_FIRST_ERROR), 3);
    tt_assert_elapsed(tide_now() - t0, 30);
    for (i = 0; i < 2; i++)
        assert_int_equal(tide_await(wt[i]), 0);
    assert_int_equal(tide_await(wt2), 0);
    assert_int_equal(wa.rc, 2);
    tt_assert_elapsed(wa.elapsed, 30);
    assert_int_equal(wb.rc, 1);
    tt_assert_elapsed(wb.elapsed, 10);

    /* The iterators give them in the order they ended: a task iterator
     * its tasks, a future iterator its futures. */
    assert_int_equal(tide_as_completed_next(ac, &got), 0);
    assert_ptr_equal(got, t[0]);
    assert_int_equal(tide_as_completed_next(ac, &got), 0);
    assert_ptr_equal(got, t[1]);
    assert_int_equal(tide_as_completed_next(ac, &got), -ENOENT);
    assert_null(got);
    for (i = 0; i < 3; i++) {
        assert_int_equal(tide_as_completed_futures_next(fi, &gotf), 0);
        assert_ptr_equal(gotf, fs[i]);
    }
    assert_int_equal(tide_as_completed_futures_next(fi, &gotf), -ENOENT);
    tide_as_completed_free(ac);
    tide_as_completed_futures_free(fi);

    /* All done now: no wait, the tasks' results are still theirs. */
    assert_int_equal(tide_wait(t, 2, TIDE_FIRST_COMPLETED), 2);
    assert_int_equal(tide_wait(t, 2, TIDE_FIRST_ERROR), 2);
    assert_int_equal(tide_await(t[0]), 1);
    assert_int_equal(tide_await(t[1]), -EIO);
    tide_future_free(f);
    return 0;
}

static void test_mixed(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(main_mixed, NULL), 0);
}

/* ------------------------------------ a waiter cancelled, timed out */

typedef struct acarg {
    tide_as_completed *ac;
    int rc;
    tide_task *got;
} acarg;

static int next_fn(void *arg)
{
    acarg *a = arg;

    a->rc = tide_as_completed_next(a->ac, &a->got);
    return 0;
}

static int main_cancelled(void *arg)
{
    job j = {50, 7};
    tide_task *t, *w, *n;
    tide_future *fs[1];
    tide_wait_info wi;
    tide_scope sc;
    waitarg wa;
    acarg aa;

    (void)arg;
    assert_int_equal(tide_create_task(&t, sleeper, &j), 0);
    memset(&wa, 0, sizeof wa);
    wa.ts = &t;
    wa.n = 1;
    wa.mode = TIDE_ALL_COMPLETED;
    assert_int_equal(tide_create_task(&w, wait_tasks_fn, &wa), 0);
    memset(&aa, 0, sizeof aa);
    assert_int_equal(tide_as_completed_new(&aa.ac, &t, 1), 0);
    assert_int_equal(tide_create_task(&n, next_fn, &aa), 0);
    tide_sleep(5);

    /* A dump names what each waits on: the tasks, not a future. */
    assert_int_equal(tide_task_wait_info(w, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_TASKS);
    assert_int_equal(tide_task_wait_info(n, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_TASKS);
    assert_ptr_equal(wi.object, aa.ac);

    /* Cancelling the waiters cancels neither the task nor the iterator. */
    assert_int_equal(tide_cancel(w), 0);
    assert_int_equal(tide_cancel(n), 0);
    assert_int_equal(tide_await(w), 0);
    assert_int_equal(tide_await(n), 0);
    assert_int_equal(wa.rc, -ECANCELED);
    assert_int_equal(aa.rc, -ECANCELED);
    assert_null(aa.got);
    assert_int_equal(tide_task_cancelled(t), 0);
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_WAITING);

    /* A timeout: -ETIMEDOUT from each kind of waiter, the task goes on. */
    assert_int_equal(tide_timeout_begin(&sc, 10), 0);
    assert_int_equal(tide_wait(&t, 1, TIDE_FIRST_COMPLETED), -ETIMEDOUT);
    assert_int_equal(tide_task_future(t, &fs[0]), 0);
    assert_int_equal(tide_wait_futures(fs, 1, TIDE_FIRST_COMPLETED), -ETIMEDOUT);
    assert_int_equal(tide_as_completed_next(aa.ac, &aa.got), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&sc), -ETIMEDOUT);
    assert_int_equal(tide_task_cancelled(t), 0);

    /* ... and every waiter still works: the one left behind wakes once. */
    assert_int_equal(tide_as_completed_next(aa.ac, &aa.got), 0);
    assert_ptr_equal(aa.got, t);
    assert_int_equal(tide_as_completed_next(aa.ac, &aa.got), -ENOENT);
    assert_int_equal(tide_wait(&t, 1, TIDE_ALL_COMPLETED), 1);
    tide_as_completed_free(aa.ac);
    assert_int_equal(tide_await(t), 7);
    return 0;
}

static void test_cancelled(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(main_cancelled, NULL), 0);
}

/* --------------------------- next: a cancellation point, and -EPERM */

static void next_from_callback(void *arg)
{
    (void)next_fn(arg);
}

static int main_next_rules(void *arg)
{
    job j = {0, 3};
    tide_task *t, *got = NULL;
    tide_as_completed *ac;
    tide_scope sc;
    acarg o;

    (void)arg;
    assert_int_equal(tide_create_task(&t, sleeper, &j), 0);
    assert_int_equal(tide_wait(&t, 1, TIDE_ALL_COMPLETED), 1);
    assert_int_equal(tide_as_completed_new(&ac, &t, 1), 0);

    /* The ended task is ready, yet a cancelled scope refuses it (and keeps
     * it for later), as every suspending call does. */
    assert_int_equal(tide_timeout_begin(&sc, 1000), 0);
    assert_int_equal(tide_scope_cancel(&sc), 0);
    assert_int_equal(tide_as_completed_next(ac, &got), -ECANCELED);
    assert_null(got);
    assert_int_equal(tide_timeout_end(&sc), -ECANCELED);

    /* Not in a task (a callback): -EPERM, nothing given. */
    memset(&o, 0, sizeof o);
    o.ac = ac;
    o.rc = 1;
    assert_int_equal(tide_call_soon(tide_loop_current(), next_from_callback, &o), 0);
    tide_sleep(0);
    tide_sleep(0);
    assert_int_equal(o.rc, -EPERM);
    assert_null(o.got);

    assert_int_equal(tide_as_completed_next(ac, &got), 0);
    assert_ptr_equal(got, t);
    tide_as_completed_free(ac);
    assert_int_equal(tide_await(t), 3);
    return 0;
}

static void test_next_rules(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(main_next_rules, NULL), 0);
}

/* ------------------------- a watched task released by another's await */

static int await_fn(void *arg)
{
    return tide_await(arg);
}

static int main_released(void *arg)
{
    job j1 = {5, 1}, j2 = {20, 2};
    tide_task *t[2], *a;
    tide_as_completed *ac;
    tide_task *got;

    (void)arg;
    assert_int_equal(tide_create_task(&t[0], sleeper, &j1), 0);
    assert_int_equal(tide_create_task(&t[1], sleeper, &j2), 0);
    assert_int_equal(tide_as_completed_new(&ac, t, 2), 0);
    /* a takes t[0]'s result and releases it (with its future) as soon as
     * it ends; the waiters watching it were told first.  tide_wait looks
     * at no task after it wakes: it only counts. */
    assert_int_equal(tide_create_task(&a, await_fn, t[0]), 0);
    assert_int_equal(tide_wait(t, 2, TIDE_FIRST_COMPLETED), 1);
    assert_int_equal(tide_await(a), 1);
    /* The iterator drops the released t[0]: its handle is dead (and its
     * memory may be a new task's already). */
    assert_int_equal(tide_as_completed_next(ac, &got), 0);
    assert_ptr_equal(got, t[1]);
    assert_int_equal(tide_as_completed_next(ac, &got), -ENOENT);
    assert_null(got);
    tide_as_completed_free(ac);
    assert_int_equal(tide_await(t[1]), 2);
    return 0;
}

static void test_released(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(main_released, NULL), 0);
}

/* Waits for t to end (a watch ahead of the iterator's), then releases it:
 * it runs before the task the iterator woke for t. */
static int wait_then_await(void *arg)
{
    tide_task *t = arg;
    int rc = tide_wait(&t, 1, TIDE_ALL_COMPLETED);

    return rc < 0 ? rc : tide_await(t);
}

/* Every way a user can release a task the iterator has not given yet:
 * another task awaits it after the iterator woke for it, it is detached,
 * the iterating task awaits it itself.  None is given; the others are, in
 * order, and a task given is the caller's to release (the iterator does
 * not count it again). */
static int main_released_ways(void *arg)
{
    job j[4] = {{5, 1}, {20, 2}, {10, 3}, {30, 4}};
    tide_task *t[4], *a, *fresh, *got = NULL;
    tide_as_completed *ac;
    int64_t t0 = tide_now();
    int i;

    (void)arg;
    for (i = 0; i < 4; i++)
        assert_int_equal(tide_create_task(&t[i], sleeper, &j[i]), 0);
    assert_int_equal(tide_create_task(&a, wait_then_await, t[0]), 0);
    tide_sleep(0); /* a watches t[0] first */
    assert_int_equal(tide_as_completed_new(&ac, t, 4), 0);
    assert_int_equal(tide_detach(t[2]), 0);

    /* t[0] ends at 5: the iterator is told (and wakes us), but a runs
     * first and releases it; we wait on.  t[2] ends at 10, detached: it
     * is released as it ends.  t[1] at 20 is the first given. */
    assert_int_equal(tide_as_completed_next(ac, &got), 0);
    assert_ptr_equal(got, t[1]);
    tt_assert_elapsed(tide_now() - t0, 20);
    assert_int_equal(tide_await(a), 1);
    assert_int_equal(tide_await(got), 2); /* given, then released: fine */
    /* A task made now may take a released one's stack, hence its handle. */
    assert_int_equal(tide_create_task(&fresh, sleeper, &j[0]), 0);
    assert_int_equal(tide_await(t[3]), 4); /* released by us before given */
    assert_int_equal(tide_as_completed_next(ac, &got), -ENOENT);
    assert_null(got);
    tide_as_completed_free(ac);
    assert_int_equal(tide_await(fresh), 1);
    return 0;
}

static void test_released_ways(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(main_released_ways, NULL), 0);
}

/* The iterator freed after its tasks were released (and before). */
static int main_free_after_release(void *arg)
{
    job j = {5, 7};
    tide_task *t[2];
    tide_as_completed *ac, *ac2;

    (void)arg;
    assert_int_equal(tide_create_task(&t[0], sleeper, &j), 0);
    assert_int_equal(tide_create_task(&t[1], sleeper, &j), 0);
    assert_int_equal(tide_as_completed_new(&ac, t, 2), 0);
    assert_int_equal(tide_as_completed_new(&ac2, t, 2), 0); /* two iterators hold them */
    assert_int_equal(tide_await(t[0]), 7);
    tide_as_completed_free(ac2);
    assert_int_equal(tide_await(t[1]), 7);
    tide_as_completed_free(ac);
    return 0;
}

static void test_free_after_release(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(main_free_after_release, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_cancelled),
        cmocka_unit_test(test_next_rules),
        cmocka_unit_test(test_released),
        cmocka_unit_test(test_released_ways),
        cmocka_unit_test(test_free_after_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
