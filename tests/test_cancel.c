/*
 * Tests of cancellation, shields and timeout scopes (level-triggered, as in
 * Trio; tide_wait_for as asyncio.wait_for).
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

#define FOREVER 1000000 /* ms */

/* ----------------------------------------------------- a sleeping task */

typedef struct child {
    int started;
    int sleep_rc;
    int cleanup;
    int64_t t_start, t_end;
    int cancelled_flag;
} child;

static int sleep_forever_child(void *arg)
{
    child *c = arg;
    c->started = 1;
    c->t_start = tide_now();
    c->sleep_rc = tide_sleep(FOREVER);
    c->t_end = tide_now();
    c->cancelled_flag = tide_task_cancelled(tide_current_task());
    c->cleanup = 1;
    return c->sleep_rc;
}

typedef struct s1 {
    child c;
    int rc_cancel, rc_cancel2, rc_await;
    int flag_before;
    int64_t t_cancel, t_awaited;
} s1;

static int cancel_sleeping_main(void *arg)
{
    s1 *s = arg;
    tide_task *t;
    tide_create_task(&t, sleep_forever_child, &s->c);
    tide_sleep(20);
    s->flag_before = tide_task_cancelled(t);
    s->t_cancel = tide_now();
    s->rc_cancel = tide_cancel(t);
    s->rc_cancel2 = tide_cancel(t); /* twice: harmless */
    s->rc_await = tide_await(t);
    s->t_awaited = tide_now();
    return 0;
}

static void test_cancel_sleeping_task(void **state)
{
    (void)state;
    s1 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cancel_sleeping_main, &s), 0);
    assert_int_equal(s.flag_before, 0);
    assert_int_equal(s.rc_cancel, 0);
    assert_int_equal(s.rc_cancel2, 0);
    assert_int_equal(s.c.started, 1);
    assert_int_equal(s.c.sleep_rc, -ECANCELED);
    assert_int_equal(s.c.cleanup, 1);
    assert_int_equal(s.c.cancelled_flag, 1);
    assert_int_equal(s.rc_await, -ECANCELED);
    assert_true(s.t_awaited - s.t_cancel < 500);
}

/* ----------------------------------------- a task awaiting another task */

typedef struct s2 {
    child inner;
    int await_rc, await_again_rc;
    int64_t t_cancel, t_await_returned;
    int inner_cancelled_seen;
} s2;

static int awaiter_fn(void *arg)
{
    s2 *s = arg;
    tide_task *inner;
    tide_create_task(&inner, sleep_forever_child, &s->inner);
    s->await_rc = tide_await(inner);
    s->t_await_returned = tide_now();
    s->inner_cancelled_seen = tide_task_cancelled(inner);
    /* not released: await it again, shielded, to release it (bounded, so
     * that a library that did not cancel it fails here instead of hanging) */
    tide_scope sh, to;
    tide_shield_begin(&sh);
    tide_timeout_begin(&to, 2000);
    s->await_again_rc = tide_await(inner);
    tide_timeout_end(&to);
    if (s->await_again_rc == -ETIMEDOUT)
        tide_detach(inner); /* tide_run cancels it at the end */
    tide_shield_end(&sh);
    return s->await_rc;
}

static int cancel_awaiter_main(void *arg)
{
    s2 *s = arg;
    tide_task *a;
    tide_create_task(&a, awaiter_fn, s);
    tide_sleep(20);
    s->t_cancel = tide_now();
    tide_cancel(a);
    return tide_await(a);
}

static void test_cancel_task_awaiting_task(void **state)
{
    (void)state;
    s2 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cancel_awaiter_main, &s), -ECANCELED);
    assert_int_equal(s.await_rc, -ECANCELED);
    assert_true(s.t_await_returned - s.t_cancel < 500);
    /* the awaited task was cancelled too */
    assert_int_equal(s.inner_cancelled_seen, 1);
    assert_int_equal(s.inner.sleep_rc, -ECANCELED);
    assert_int_equal(s.inner.cleanup, 1);
    assert_int_equal(s.await_again_rc, -ECANCELED);
}

/* ----------------------------------------------------- inside gather */

typedef struct s3 {
    child kids[3];
    int gather_rc;
    int results[3];
    ssize_t live_after_gather;
    int64_t t_cancel, t_done;
} s3;

static int gatherer(void *arg)
{
    s3 *s = arg;
    tide_task *t[3];
    for (int i = 0; i < 3; i++)
        tide_create_task(&t[i], sleep_forever_child, &s->kids[i]);
    s->gather_rc = tide_gather(t, 3, s->results);
    s->t_done = tide_now();
    s->live_after_gather = tide_task_list(NULL, NULL, 0);
    return s->gather_rc;
}

static int cancel_gather_main(void *arg)
{
    s3 *s = arg;
    tide_task *g;
    tide_create_task(&g, gatherer, s);
    tide_sleep(20);
    s->t_cancel = tide_now();
    tide_cancel(g);
    return tide_await(g);
}

static void test_cancel_inside_gather(void **state)
{
    (void)state;
    s3 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cancel_gather_main, &s), -ECANCELED);
    assert_int_equal(s.gather_rc, -ECANCELED);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.kids[i].started, 1);
        assert_int_equal(s.kids[i].sleep_rc, -ECANCELED);
        assert_int_equal(s.kids[i].cleanup, 1); /* waited for */
    }
    assert_true(s.t_done - s.t_cancel < 500);
    /* all released: only main and the gatherer remain */
    assert_int_equal(s.live_after_gather, 2);
}

/* gather under a timeout scope: -ETIMEDOUT, children cancelled */
typedef struct s3b {
    child kids[2];
    int gather_rc, end_rc;
    int64_t t0, t1;
    ssize_t live;
} s3b;

static int gather_timeout_main(void *arg)
{
    s3b *s = arg;
    tide_task *t[2];
    for (int i = 0; i < 2; i++)
        tide_create_task(&t[i], sleep_forever_child, &s->kids[i]);
    tide_scope sc;
    s->t0 = tide_now();
    tide_timeout_begin(&sc, 30);
    s->gather_rc = tide_gather(t, 2, NULL);
    s->end_rc = tide_timeout_end(&sc);
    s->t1 = tide_now();
    s->live = tide_task_list(NULL, NULL, 0);
    return 0;
}

static void test_gather_timeout(void **state)
{
    (void)state;
    s3b s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(gather_timeout_main, &s), 0);
    assert_int_equal(s.gather_rc, -ETIMEDOUT);
    assert_int_equal(s.end_rc, -ETIMEDOUT);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.kids[i].sleep_rc, -ECANCELED);
        assert_int_equal(s.kids[i].cleanup, 1);
    }
    tt_assert_elapsed(s.t1 - s.t0, 30);
    assert_true(s.t1 - s.t0 < 1000);
    assert_int_equal(s.live, 1);
}

/* ------------------------------------------------ not started; twice; done */

typedef struct s4 {
    child c;
    int rc_await;
    int state_before;
    int rc_cancel_done, rc_await_done;
} s4;

static int ret5(void *arg)
{
    (void)arg;
    return 5;
}

static int not_started_main(void *arg)
{
    s4 *s = arg;
    tide_task *t;
    tide_create_task(&t, sleep_forever_child, &s->c);
    s->state_before = tide_task_get_state(t);
    tide_cancel(t);
    tide_cancel(t);
    s->rc_await = tide_await(t);

    /* cancelling a task that already ended is harmless, result kept */
    tide_task *d;
    tide_create_task(&d, ret5, NULL);
    tide_sleep(10);
    s->rc_cancel_done = tide_cancel(d);
    s->rc_await_done = tide_await(d);
    return 0;
}

static void test_cancel_not_started_and_done(void **state)
{
    (void)state;
    s4 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(not_started_main, &s), 0);
    assert_int_equal(s.state_before, TIDE_TASK_CREATED);
    assert_int_equal(s.c.started, 0); /* body never ran */
    assert_int_equal(s.rc_await, -ECANCELED);
    assert_int_equal(s.rc_cancel_done, 0);
    assert_int_equal(s.rc_await_done, 5);
}

/* ------------------------------------------------------ level-triggered */

static int sleep_ms_task(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg);
}

typedef struct s5 {
    int rc_first;
    int rc_sleep, rc_sleep0, rc_future, rc_await, rc_sleep_again;
    int rc_timeout_sleep;
    int64_t t_cancel, t_end;
    int ended;
} s5;

static int stubborn(void *arg)
{
    s5 *s = arg;
    s->rc_first = tide_sleep(FOREVER); /* cancelled here; ignores it */
    s->rc_sleep = tide_sleep(FOREVER);
    s->rc_sleep0 = tide_sleep(0);
    tide_future *f = NULL;
    tide_future_new(&f);
    s->rc_future = tide_future_await(f, NULL);
    tide_future_free(f);
    tide_task *o;
    tide_create_task(&o, sleep_ms_task, (void *)(intptr_t)200);
    s->rc_await = tide_await(o);
    /* o is not released by the failed await: release it, shielded */
    tide_scope sh;
    tide_shield_begin(&sh);
    tide_await(o);
    tide_shield_end(&sh);
    /* cancellation wins over a timeout scope that has not expired */
    tide_scope to;
    tide_timeout_begin(&to, 10000);
    s->rc_timeout_sleep = tide_sleep(FOREVER);
    tide_timeout_end(&to);
    s->rc_sleep_again = tide_sleep(FOREVER);
    s->t_end = tide_now();
    s->ended = 1;
    return 0;
}

static int level_main(void *arg)
{
    s5 *s = arg;
    tide_task *t;
    tide_create_task(&t, stubborn, s);
    tide_sleep(20);
    s->t_cancel = tide_now();
    tide_cancel(t);
    return tide_await(t);
}

static void test_level_triggered(void **state)
{
    (void)state;
    s5 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(level_main, &s), 0);
    assert_int_equal(s.ended, 1);
    assert_int_equal(s.rc_first, -ECANCELED);
    assert_int_equal(s.rc_sleep, -ECANCELED);
    assert_int_equal(s.rc_sleep0, -ECANCELED);
    assert_int_equal(s.rc_future, -ECANCELED);
    assert_int_equal(s.rc_await, -ECANCELED);
    assert_int_equal(s.rc_timeout_sleep, -ECANCELED);
    assert_int_equal(s.rc_sleep_again, -ECANCELED);
    /* never blocked for long (the shielded await waits <= 200 ms) */
    assert_true(s.t_end - s.t_cancel < 1000);
}

/* ---------------------------------------------------------------- shield */

typedef struct s6 {
    int rc_cancelled_sleep;
    int rc_shield_begin, rc_shielded_sleep, rc_shielded_sleep0, rc_shield_end;
    int rc_after;
    int64_t shielded_ms;
    /* cancel arriving during a shielded sleep */
    int rc_inner_sleep, rc_after2, cancelled_flag;
    int64_t inner_ms;
} s6;

static int shield_task(void *arg)
{
    s6 *s = arg;
    s->rc_cancelled_sleep = tide_sleep(FOREVER);
    tide_scope sh;
    s->rc_shield_begin = tide_shield_begin(&sh);
    int64_t t0 = tide_now();
    s->rc_shielded_sleep = tide_sleep(30);
    s->shielded_ms = tide_now() - t0;
    s->rc_shielded_sleep0 = tide_sleep(0);
    s->rc_shield_end = tide_shield_end(&sh);
    s->rc_after = tide_sleep(10);
    return 0;
}

static int shield_task2(void *arg)
{
    s6 *s = arg;
    tide_scope sh;
    tide_shield_begin(&sh);
    int64_t t0 = tide_now();
    s->rc_inner_sleep = tide_sleep(100); /* cancelled after 20 ms */
    s->inner_ms = tide_now() - t0;
    s->cancelled_flag = tide_task_cancelled(tide_current_task());
    tide_shield_end(&sh);
    s->rc_after2 = tide_sleep(FOREVER);
    return 0;
}

static int shield_main(void *arg)
{
    s6 *s = arg;
    tide_task *t;
    tide_create_task(&t, shield_task, s);
    tide_sleep(10);
    tide_cancel(t);
    tide_await(t);
    tide_create_task(&t, shield_task2, s);
    tide_sleep(20);
    tide_cancel(t);
    return tide_await(t);
}

static void test_shield(void **state)
{
    (void)state;
    s6 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(shield_main, &s), 0);
    assert_int_equal(s.rc_cancelled_sleep, -ECANCELED);
    assert_int_equal(s.rc_shield_begin, 0);
    assert_int_equal(s.rc_shielded_sleep, 0);
    tt_assert_elapsed(s.shielded_ms, 30);
    assert_int_equal(s.rc_shielded_sleep0, 0);
    assert_int_equal(s.rc_shield_end, 0);
    assert_int_equal(s.rc_after, -ECANCELED);

    assert_int_equal(s.rc_inner_sleep, 0);
    tt_assert_elapsed(s.inner_ms, 100);
    assert_int_equal(s.cancelled_flag, 1);
    assert_int_equal(s.rc_after2, -ECANCELED);
}

/* -------------------------------------------------------------- timeouts */

typedef struct s7 {
    int rc_outer_begin, rc_inner_begin;
    int rc_sleep, rc_inner_end, rc_sleep_in_outer, rc_outer_end, rc_after;
    int rc_sleep0_after_inner;
    int64_t t_sleep;
} s7;

/* inner (50 ms) fires inside outer (1000 ms) */
static int nested_inner_fires(void *arg)
{
    s7 *s = arg;
    tide_scope outer, inner;
    int64_t t0 = tide_now();
    s->rc_outer_begin = tide_timeout_begin(&outer, 1000);
    s->rc_inner_begin = tide_timeout_begin(&inner, 50);
    s->rc_sleep = tide_sleep(FOREVER);
    s->t_sleep = tide_now() - t0;
    s->rc_inner_end = tide_timeout_end(&inner);
    s->rc_sleep_in_outer = tide_sleep(10);
    s->rc_outer_end = tide_timeout_end(&outer);
    s->rc_after = tide_sleep(1);
    return 0;
}

static void test_nested_timeout_inner_fires(void **state)
{
    (void)state;
    s7 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(nested_inner_fires, &s), 0);
    assert_int_equal(s.rc_outer_begin, 0);
    assert_int_equal(s.rc_inner_begin, 0);
    assert_int_equal(s.rc_sleep, -ETIMEDOUT);
    tt_assert_elapsed(s.t_sleep, 50);
    assert_true(s.t_sleep < 500);
    assert_int_equal(s.rc_inner_end, -ETIMEDOUT);
    assert_int_equal(s.rc_sleep_in_outer, 0);
    assert_int_equal(s.rc_outer_end, 0);
    assert_int_equal(s.rc_after, 0);
}

/* outer (50 ms) fires inside inner (1000 ms) */
static int nested_outer_fires(void *arg)
{
    s7 *s = arg;
    tide_scope outer, inner;
    int64_t t0 = tide_now();
    s->rc_outer_begin = tide_timeout_begin(&outer, 50);
    s->rc_inner_begin = tide_timeout_begin(&inner, 1000);
    s->rc_sleep = tide_sleep(FOREVER);
    s->t_sleep = tide_now() - t0;
    s->rc_inner_end = tide_timeout_end(&inner);
    s->rc_sleep0_after_inner = tide_sleep(0); /* still past the outer deadline */
    s->rc_outer_end = tide_timeout_end(&outer);
    s->rc_after = tide_sleep(1); /* the task itself is fine */
    return 0;
}

static void test_nested_timeout_outer_fires(void **state)
{
    (void)state;
    s7 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(nested_outer_fires, &s), 0);
    assert_int_equal(s.rc_sleep, -ETIMEDOUT);
    tt_assert_elapsed(s.t_sleep, 50);
    assert_true(s.t_sleep < 500);
    assert_int_equal(s.rc_inner_end, 0);
    assert_int_equal(s.rc_sleep0_after_inner, -ETIMEDOUT);
    assert_int_equal(s.rc_outer_end, -ETIMEDOUT);
    assert_int_equal(s.rc_after, 0);
}

typedef struct s8 {
    int rc_sleep, rc_end;
    int rc_spin_end;
    int rc_zero_sleep, rc_zero_end;
    int rc_deadline_sleep, rc_deadline_end;
    int64_t t_deadline;
} s8;

static int timeout_misc(void *arg)
{
    s8 *s = arg;
    tide_scope sc;
    /* no expiry */
    tide_timeout_begin(&sc, 1000);
    s->rc_sleep = tide_sleep(10);
    s->rc_end = tide_timeout_end(&sc);
    /* expired while not suspended, no suspending call afterwards: 0 */
    tide_timeout_begin(&sc, 10);
    tt_spin_ms(30);
    s->rc_spin_end = tide_timeout_end(&sc);
    /* zero timeout */
    tide_timeout_begin(&sc, 0);
    s->rc_zero_sleep = tide_sleep(10);
    s->rc_zero_end = tide_timeout_end(&sc);
    /* absolute deadline */
    int64_t t0 = tide_now();
    tide_deadline_begin(&sc, t0 + 30);
    s->rc_deadline_sleep = tide_sleep(FOREVER);
    s->t_deadline = tide_now() - t0;
    s->rc_deadline_end = tide_timeout_end(&sc);
    return 0;
}

static void test_timeout_misc(void **state)
{
    (void)state;
    s8 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(timeout_misc, &s), 0);
    assert_int_equal(s.rc_sleep, 0);
    assert_int_equal(s.rc_end, 0);
    assert_int_equal(s.rc_spin_end, 0);
    assert_int_equal(s.rc_zero_sleep, -ETIMEDOUT);
    assert_int_equal(s.rc_zero_end, -ETIMEDOUT);
    assert_int_equal(s.rc_deadline_sleep, -ETIMEDOUT);
    tt_assert_elapsed(s.t_deadline, 30);
    assert_true(s.t_deadline < 500);
    assert_int_equal(s.rc_deadline_end, -ETIMEDOUT);
}

/* A deadline that passed while the task ran without suspending refuses the
 * next suspending call, even a mere yield (tide_sleep(0)), as in Trio
 * (move_on_after + checkpoint) and asyncio (timeout() + sleep(0)). */
typedef struct s8b {
    int rc_refused_sleep0, rc_refused_end;
    int rc_zero_sleep0, rc_zero_end;
} s8b;

static int timeout_expired_running(void *arg)
{
    s8b *s = arg;
    tide_scope sc;
    tide_timeout_begin(&sc, 10);
    tt_spin_ms(30); /* the deadline passes while we run */
    s->rc_refused_sleep0 = tide_sleep(0);
    s->rc_refused_end = tide_timeout_end(&sc);
    tide_timeout_begin(&sc, 0);
    s->rc_zero_sleep0 = tide_sleep(0);
    s->rc_zero_end = tide_timeout_end(&sc);
    return 0;
}

static void test_timeout_expired_while_running(void **state)
{
    (void)state;
    s8b s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tide_run(timeout_expired_running, &s), 0); /* real time: the deadline passes while it spins */
    print_message("spin: sleep(0)=%d end=%d; timeout(0): sleep(0)=%d end=%d\n",
                  s.rc_refused_sleep0, s.rc_refused_end, s.rc_zero_sleep0, s.rc_zero_end);
    assert_int_equal(s.rc_refused_sleep0, -ETIMEDOUT);
    assert_int_equal(s.rc_refused_end, -ETIMEDOUT);
    assert_int_equal(s.rc_zero_sleep0, -ETIMEDOUT);
    assert_int_equal(s.rc_zero_end, -ETIMEDOUT);
}

/* A timeout begun inside a shield still applies; an outer timeout does not
 * reach inside a shield. */
typedef struct s9 {
    int rc_cancelled;
    int rc_in_shield_timeout, rc_to_end, rc_sh_end, rc_after;
    int64_t t_in;
    int rc_outer_shielded_sleep, rc_outer_after_shield, rc_outer_end;
    int64_t t_shielded;
} s9;

static int timeout_in_shield_task(void *arg)
{
    s9 *s = arg;
    s->rc_cancelled = tide_sleep(FOREVER);
    tide_scope sh, to;
    tide_shield_begin(&sh);
    int64_t t0 = tide_now();
    tide_timeout_begin(&to, 30);
    s->rc_in_shield_timeout = tide_sleep(FOREVER);
    s->t_in = tide_now() - t0;
    s->rc_to_end = tide_timeout_end(&to);
    s->rc_sh_end = tide_shield_end(&sh);
    s->rc_after = tide_sleep(FOREVER);
    return 0;
}

static int outer_timeout_shield_main(void *arg)
{
    s9 *s = arg;
    tide_task *t;
    tide_create_task(&t, timeout_in_shield_task, s);
    tide_sleep(10);
    tide_cancel(t);
    tide_await(t);

    tide_scope to, sh;
    tide_timeout_begin(&to, 20);
    tide_shield_begin(&sh);
    int64_t t0 = tide_now();
    s->rc_outer_shielded_sleep = tide_sleep(60);
    s->t_shielded = tide_now() - t0;
    tide_shield_end(&sh);
    s->rc_outer_after_shield = tide_sleep(0);
    s->rc_outer_end = tide_timeout_end(&to);
    return 0;
}

static void test_timeout_and_shield(void **state)
{
    (void)state;
    s9 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(outer_timeout_shield_main, &s), 0);
    assert_int_equal(s.rc_cancelled, -ECANCELED);
    assert_int_equal(s.rc_in_shield_timeout, -ETIMEDOUT);
    tt_assert_elapsed(s.t_in, 30);
    assert_true(s.t_in < 500);
    assert_int_equal(s.rc_to_end, -ETIMEDOUT);
    assert_int_equal(s.rc_sh_end, 0);
    assert_int_equal(s.rc_after, -ECANCELED);

    assert_int_equal(s.rc_outer_shielded_sleep, 0);
    tt_assert_elapsed(s.t_shielded, 60);
    assert_int_equal(s.rc_outer_after_shield, -ETIMEDOUT);
    assert_int_equal(s.rc_outer_end, -ETIMEDOUT);
}

/* A timeout scope around an await: the awaited task is cancelled, not
 * released; the caller can detach it. */
typedef struct s10 {
    child c;
    int rc_await, rc_end, rc_detach;
} s10;

static int timeout_await_main(void *arg)
{
    s10 *s = arg;
    tide_task *t;
    tide_create_task(&t, sleep_forever_child, &s->c);
    tide_scope to;
    tide_timeout_begin(&to, 30);
    s->rc_await = tide_await(t);
    s->rc_end = tide_timeout_end(&to);
    s->rc_detach = tide_detach(t);
    tide_sleep(20); /* it ends, detached */
    return 0;
}

static void test_timeout_around_await(void **state)
{
    (void)state;
    s10 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(timeout_await_main, &s), 0);
    assert_int_equal(s.rc_await, -ETIMEDOUT);
    assert_int_equal(s.rc_end, -ETIMEDOUT);
    assert_int_equal(s.rc_detach, 0);
    assert_int_equal(s.c.sleep_rc, -ECANCELED);
    assert_int_equal(s.c.cleanup, 1);
}

/* -------------------------------------------------------------- wait_for */

typedef struct wf_child {
    int sleep_rc;
    int cleanup_done;
    int ms;
    int ret;
} wf_child;

static int wf_child_fn(void *arg)
{
    wf_child *c = arg;
    c->sleep_rc = tide_sleep(c->ms);
    if (c->sleep_rc == -ECANCELED) {
        /* polite cleanup that itself suspends */
        tide_scope sh;
        tide_shield_begin(&sh);
        tide_sleep(20);
        tide_shield_end(&sh);
        c->cleanup_done = 1;
        return -ECANCELED;
    }
    return c->ret;
}

typedef struct s11 {
    wf_child slow, fast, failing;
    int rc_timeout, cleanup_at_return, rc_fast, rc_failing;
    int64_t t_timeout;
    ssize_t live_after;
    int rc_null;
    /* caller cancelled while in wait_for */
    wf_child victim;
    int rc_caller;
    int victim_cleanup_at_return;
} s11;

static int wf_caller(void *arg)
{
    s11 *s = arg;
    tide_task *t;
    tide_create_task(&t, wf_child_fn, &s->victim);
    s->rc_caller = tide_wait_for(t, 10000);
    s->victim_cleanup_at_return = s->victim.cleanup_done;
    return 0;
}

static int wait_for_main(void *arg)
{
    s11 *s = arg;
    tide_task *t;
    s->slow = (wf_child){0, 0, FOREVER, 1};
    tide_create_task(&t, wf_child_fn, &s->slow);
    int64_t t0 = tide_now();
    s->rc_timeout = tide_wait_for(t, 50);
    s->t_timeout = tide_now() - t0;
    s->cleanup_at_return = s->slow.cleanup_done;

    s->fast = (wf_child){0, 0, 10, 77};
    tide_create_task(&t, wf_child_fn, &s->fast);
    s->rc_fast = tide_wait_for(t, 1000);

    s->failing = (wf_child){0, 0, 5, -EIO};
    tide_create_task(&t, wf_child_fn, &s->failing);
    s->rc_failing = tide_wait_for(t, 1000);
    s->live_after = tide_task_list(NULL, NULL, 0);
    s->rc_null = tide_wait_for(NULL, 10);

    s->victim = (wf_child){0, 0, FOREVER, 1};
    tide_task *c;
    tide_create_task(&c, wf_caller, s);
    tide_sleep(20);
    tide_cancel(c);
    tide_await(c);
    return 0;
}

static void test_wait_for(void **state)
{
    (void)state;
    s11 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(wait_for_main, &s), 0);
    assert_int_equal(s.rc_timeout, -ETIMEDOUT);
    assert_int_equal(s.slow.sleep_rc, -ECANCELED);
    assert_int_equal(s.cleanup_at_return, 1); /* waited for the cleanup */
    tt_assert_elapsed(s.t_timeout, 70); /* the 50 ms timeout, then the 20 ms shielded cleanup waited for */
    assert_true(s.t_timeout < 1000);
    assert_int_equal(s.rc_fast, 77);
    assert_int_equal(s.fast.sleep_rc, 0);
    assert_int_equal(s.rc_failing, -EIO);
    assert_int_equal(s.live_after, 1); /* all released */
    assert_int_equal(s.rc_null, -EINVAL);
    assert_int_equal(s.rc_caller, -ECANCELED);
    assert_int_equal(s.victim.sleep_rc, -ECANCELED);
    assert_int_equal(s.victim_cleanup_at_return, 1);
}

/* ---------------------------------------------------------------- misuse */

typedef struct s12 {
    int rc_end_outer_first, rc_end_inner, rc_end_outer;
    int rc_end_null, rc_begin_null, rc_shield_null;
    int rc_shield_end_wrong, rc_shield_end, rc_to_end;
    int rc_sleep_neg;
} s12;

static int misuse_main(void *arg)
{
    s12 *s = arg;
    tide_scope outer, inner;
    tide_timeout_begin(&outer, 1000);
    tide_timeout_begin(&inner, 1000);
    s->rc_end_outer_first = tide_timeout_end(&outer);
    s->rc_end_inner = tide_timeout_end(&inner);
    s->rc_end_outer = tide_timeout_end(&outer);
    s->rc_end_null = tide_timeout_end(NULL);
    s->rc_begin_null = tide_timeout_begin(NULL, 10);
    s->rc_shield_null = tide_shield_begin(NULL);

    tide_scope sh, to;
    tide_shield_begin(&sh);
    tide_timeout_begin(&to, 1000);
    s->rc_shield_end_wrong = tide_shield_end(&sh);
    s->rc_to_end = tide_timeout_end(&to);
    s->rc_shield_end = tide_shield_end(&sh);
    s->rc_sleep_neg = tide_sleep(-1);
    return 0;
}

static void test_scope_misuse(void **state)
{
    (void)state;
    s12 s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(misuse_main, &s), 0);
    assert_int_equal(s.rc_end_outer_first, -EINVAL);
    assert_int_equal(s.rc_end_inner, 0);
    assert_int_equal(s.rc_end_outer, 0);
    assert_int_equal(s.rc_end_null, -EINVAL);
    assert_int_equal(s.rc_begin_null, -EINVAL);
    assert_int_equal(s.rc_shield_null, -EINVAL);
    assert_int_equal(s.rc_shield_end_wrong, -EINVAL);
    assert_int_equal(s.rc_to_end, 0);
    assert_int_equal(s.rc_shield_end, 0);
    assert_int_equal(s.rc_sleep_neg, -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_sleeping_task),
        cmocka_unit_test(test_cancel_task_awaiting_task),
        cmocka_unit_test(test_cancel_inside_gather),
        cmocka_unit_test(test_gather_timeout),
        cmocka_unit_test(test_cancel_not_started_and_done),
        cmocka_unit_test(test_level_triggered),
        cmocka_unit_test(test_shield),
        cmocka_unit_test(test_nested_timeout_inner_fires),
        cmocka_unit_test(test_nested_timeout_outer_fires),
        cmocka_unit_test(test_timeout_misc),
        cmocka_unit_test(test_timeout_expired_while_running),
        cmocka_unit_test(test_timeout_and_shield),
        cmocka_unit_test(test_timeout_around_await),
        cmocka_unit_test(test_wait_for),
        cmocka_unit_test(test_scope_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
