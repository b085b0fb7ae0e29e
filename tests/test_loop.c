/*
 * Tests of the event loop: call_soon, call_later, timer cancel, stop,
 * call_soon_threadsafe, tide_now, tide_loop_current, argument checks.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

/* ----------------------------------------------------------- call_soon */

typedef struct order_log {
    tide_loop *loop;
    int log[2048];
    int n;
    int64_t when[2048];
} order_log;

typedef struct rec_arg {
    order_log *log;
    int id;
} rec_arg;

static void rec_cb(void *arg)
{
    rec_arg *r = arg;
    r->log->when[r->log->n] = tide_now();
    r->log->log[r->log->n++] = r->id;
}

static void test_call_soon_fifo(void **state)
{
    (void)state;
    order_log *lg = calloc(1, sizeof *lg);
    rec_arg *args = calloc(1000, sizeof *args);
    tide_loop *loop = NULL;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_non_null(loop);
    lg->loop = loop;
    for (int i = 0; i < 1000; i++) {
        args[i].log = lg;
        args[i].id = i;
        assert_int_equal(tide_call_soon(loop, rec_cb, &args[i]), 0);
    }
    assert_int_equal(lg->n, 0); /* nothing runs before the loop does */
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(lg->n, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lg->log[i], i);
    tide_loop_free(loop);
    free(args);
    free(lg);
}

/* A callback scheduled from a callback runs after those already queued. */
static rec_arg g_nested_late;

static void nested_cb(void *arg)
{
    rec_arg *r = arg;
    rec_cb(arg);
    g_nested_late.log = r->log;
    g_nested_late.id = 100;
    tide_call_soon(r->log->loop, rec_cb, &g_nested_late);
}

static void test_call_soon_from_callback_runs_later(void **state)
{
    (void)state;
    order_log *lg = calloc(1, sizeof *lg);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    lg->loop = loop;
    rec_arg a = {lg, 1}, b = {lg, 2}, c = {lg, 3};
    assert_int_equal(tide_call_soon(loop, nested_cb, &a), 0);
    assert_int_equal(tide_call_soon(loop, rec_cb, &b), 0);
    assert_int_equal(tide_call_soon(loop, rec_cb, &c), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(lg->n, 4);
    assert_int_equal(lg->log[0], 1);
    assert_int_equal(lg->log[1], 2);
    assert_int_equal(lg->log[2], 3);
    assert_int_equal(lg->log[3], 100);
    tide_loop_free(loop);
    free(lg);
}

/* A callback that reschedules itself does not starve the others: the
 * others run once each while the rescheduler runs once per iteration. */
typedef struct resched {
    order_log *lg;
    int left;
} resched;

static void resched_cb(void *arg)
{
    resched *r = arg;
    r->lg->log[r->lg->n++] = -1;
    if (--r->left > 0)
        tide_call_soon(r->lg->loop, resched_cb, r);
}

static void test_call_soon_reschedule_is_fair(void **state)
{
    (void)state;
    order_log *lg = calloc(1, sizeof *lg);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    lg->loop = loop;
    resched r = {lg, 3};
    rec_arg a = {lg, 1}, b = {lg, 2};
    assert_int_equal(tide_call_soon(loop, resched_cb, &r), 0);
    assert_int_equal(tide_call_soon(loop, rec_cb, &a), 0);
    assert_int_equal(tide_call_soon(loop, rec_cb, &b), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    int want[] = {-1, 1, 2, -1, -1};
    assert_int_equal(lg->n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lg->log[i], want[i]);
    tide_loop_free(loop);
    free(lg);
}

/* ---------------------------------------------------------- call_later */

typedef struct timer_setup {
    order_log *lg;
    rec_arg args[64];
    int64_t start;
    int64_t delay[64];
} timer_setup;

/* Timers scheduled from inside a callback (so the loop's cached clock is
 * the same for all): ordered by deadline, FIFO among equal deadlines. */
static void schedule_timers_cb(void *arg)
{
    timer_setup *ts = arg;
    ts->start = tide_now();
    /* ids 0..39: delays 30,10,20,10,10,20,30,0,... equal deadlines galore */
    static const int64_t pattern[] = {30, 10, 20, 10, 10, 20, 30, 0};
    for (int i = 0; i < 40; i++) {
        ts->delay[i] = pattern[i % 8];
        ts->args[i].log = ts->lg;
        ts->args[i].id = i;
        assert_int_equal(tide_call_later(ts->lg->loop, ts->delay[i], rec_cb, &ts->args[i], NULL),
                         0);
    }
}

static void test_call_later_order(void **state)
{
    (void)state;
    /* Each deadline is taken when its timer is added: the 40 must be added
     * within 10 ms for the expected order, far too little under valgrind. */
    if (tt_under_valgrind())
        skip();
    order_log *lg = calloc(1, sizeof *lg);
    timer_setup *ts = calloc(1, sizeof *ts);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    lg->loop = loop;
    ts->lg = lg;
    assert_int_equal(tide_call_soon(loop, schedule_timers_cb, ts), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(lg->n, 40);
    /* expected: stable sort of ids by delay */
    int want[40], k = 0;
    static const int64_t delays[] = {0, 10, 20, 30};
    for (int d = 0; d < 4; d++)
        for (int i = 0; i < 40; i++)
            if (ts->delay[i] == delays[d])
                want[k++] = i;
    assert_int_equal(k, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(lg->log[i], want[i]);
        /* never early (1 ms slack for the ms truncation of tide_now) */
        assert_true(lg->when[i] >= ts->start + ts->delay[lg->log[i]] - 1);
    }
    tide_loop_free(loop);
    free(ts);
    free(lg);
}

/* Timers added from plain code before the loop runs, with distinct delays. */
static void test_call_later_from_outside(void **state)
{
    (void)state;
    order_log *lg = calloc(1, sizeof *lg);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    lg->loop = loop;
    rec_arg a[5];
    int64_t delays[5] = {50, 10, 40, -5, 20}; /* -5 taken as 0 */
    int64_t t0 = tide_now();
    for (int i = 0; i < 5; i++) {
        a[i].log = lg;
        a[i].id = i;
        assert_int_equal(tide_call_later(loop, delays[i], rec_cb, &a[i], NULL), 0);
    }
    assert_int_equal(tide_loop_run(loop), 0);
    int64_t elapsed = tide_now() - t0;
    int want[5] = {3, 1, 4, 2, 0};
    assert_int_equal(lg->n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lg->log[i], want[i]);
    assert_true(elapsed >= 49);
    assert_true(elapsed < 2000);
    tide_loop_free(loop);
    free(lg);
}

static void test_timer_cancel(void **state)
{
    (void)state;
    order_log *lg = calloc(1, sizeof *lg);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    lg->loop = loop;
    rec_arg a = {lg, 1}, b = {lg, 2}, c = {lg, 3};
    tide_timer ha, hb, hc;
    memset(&ha, 0, sizeof ha);
    assert_int_equal(tide_call_later(loop, 10, rec_cb, &a, &ha), 0);
    assert_int_equal(tide_call_later(loop, 20, rec_cb, &b, &hb), 0);
    assert_int_equal(tide_call_later(loop, 0, rec_cb, &c, &hc), 0);
    assert_int_equal(tide_timer_cancel(&ha), 0);
    assert_int_equal(tide_timer_cancel(&ha), -EALREADY);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(lg->n, 2);
    assert_int_equal(lg->log[0], 3);
    assert_int_equal(lg->log[1], 2);
    /* after it ran */
    assert_int_equal(tide_timer_cancel(&hb), -EALREADY);
    assert_int_equal(tide_timer_cancel(&hc), -EALREADY);
    assert_int_equal(tide_timer_cancel(&ha), -EALREADY);
    /* bad handles */
    assert_int_equal(tide_timer_cancel(NULL), -EINVAL);
    tide_timer never;
    memset(&never, 0, sizeof never);
    assert_int_equal(tide_timer_cancel(&never), -EINVAL);
    tide_loop_free(loop);
    free(lg);
}

/* A timer cancelled by an earlier timer's callback never runs; a timer whose
 * node is reused by a later call_later keeps its handle stale. */
typedef struct cancel_ctx {
    order_log *lg;
    tide_timer victim;
    int rc;
    rec_arg victim_arg, later_arg;
    tide_timer later;
} cancel_ctx;

static void canceller_cb(void *arg)
{
    cancel_ctx *cc = arg;
    cc->rc = tide_timer_cancel(&cc->victim);
    /* reuse (probably) the freed node */
    tide_call_later(cc->lg->loop, 5, rec_cb, &cc->later_arg, &cc->later);
}

static void test_timer_cancel_from_callback(void **state)
{
    (void)state;
    order_log *lg = calloc(1, sizeof *lg);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    lg->loop = loop;
    cancel_ctx cc;
    memset(&cc, 0, sizeof cc);
    cc.lg = lg;
    cc.rc = 12345;
    cc.victim_arg = (rec_arg){lg, 7};
    cc.later_arg = (rec_arg){lg, 8};
    assert_int_equal(tide_call_later(loop, 30, rec_cb, &cc.victim_arg, &cc.victim), 0);
    assert_int_equal(tide_call_later(loop, 5, canceller_cb, &cc, NULL), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(cc.rc, 0);
    assert_int_equal(lg->n, 1);
    assert_int_equal(lg->log[0], 8);
    /* the victim's handle is stale, even if its node now served "later" */
    assert_int_equal(tide_timer_cancel(&cc.victim), -EALREADY);
    tide_loop_free(loop);
    free(lg);
}

/* ----------------------------------------------------- stop / run / free */

typedef struct spin {
    tide_loop *loop;
    int count;
    int stop_at;
} spin;

static void spin_cb(void *arg)
{
    spin *s = arg;
    s->count++;
    if (s->count == s->stop_at)
        tide_loop_stop(s->loop);
    tide_call_soon(s->loop, spin_cb, s);
}

static void test_loop_stop(void **state)
{
    (void)state;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    spin s = {loop, 0, 100};
    assert_int_equal(tide_call_soon(loop, spin_cb, &s), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(s.count, 100);
    /* the loop can run again, from where it stopped */
    s.stop_at = 150;
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(s.count, 150);
    tide_loop_free(loop); /* drops the pending callback */
    assert_int_equal(s.count, 150);
}

static int g_flag_ran;

static void set_flag_cb(void *arg)
{
    (void)arg;
    g_flag_ran = 1;
}

static void stop_cb(void *arg)
{
    tide_loop_stop(arg);
}

/* stop returns promptly even with a far timer pending; free drops it */
static void test_loop_stop_with_pending_timer(void **state)
{
    (void)state;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    g_flag_ran = 0;
    tide_timer h;
    assert_int_equal(tide_call_later(loop, 10000, set_flag_cb, NULL, &h), 0);
    assert_int_equal(tide_call_later(loop, 10, stop_cb, loop, NULL), 0);
    int64_t t0 = tide_now();
    assert_int_equal(tide_loop_run(loop), 0);
    int64_t el = tide_now() - t0;
    assert_true(el >= 9);
    assert_true(el < 2000);
    assert_int_equal(g_flag_ran, 0);
    tide_loop_free(loop);
    assert_int_equal(g_flag_ran, 0);
}

static void test_loop_run_returns_when_idle(void **state)
{
    (void)state;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    /* empty loop: returns at once */
    int64_t t0 = tide_now();
    assert_int_equal(tide_loop_run(loop), 0);
    assert_true(tide_now() - t0 < 1000);
    /* with a timer: returns after it ran */
    g_flag_ran = 0;
    t0 = tide_now();
    assert_int_equal(tide_call_later(loop, 30, set_flag_cb, NULL, NULL), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(g_flag_ran, 1);
    assert_true(tide_now() - t0 >= 29);
    /* a cancelled timer is no work */
    tide_timer h;
    assert_int_equal(tide_call_later(loop, 5000, set_flag_cb, NULL, &h), 0);
    assert_int_equal(tide_timer_cancel(&h), 0);
    t0 = tide_now();
    assert_int_equal(tide_loop_run(loop), 0);
    assert_true(tide_now() - t0 < 1000);
    tide_loop_free(loop);
}

/* ---------------------------------------------------- loop_current, busy */

typedef struct current_probe {
    tide_loop *loop, *other;
    tide_loop *seen;
    int rc_run_same, rc_run_other, rc_tide_run;
    int rc_until;
    tide_task *task_seen;
} current_probe;

static int dummy_main(void *arg)
{
    (void)arg;
    return 0;
}

static void current_cb(void *arg)
{
    current_probe *p = arg;
    p->seen = tide_loop_current();
    p->task_seen = tide_current_task();
    p->rc_run_same = tide_loop_run(p->loop);
    p->rc_run_other = tide_loop_run(p->other);
    p->rc_tide_run = tide_run(dummy_main, NULL);
}

static void test_loop_current_and_busy(void **state)
{
    (void)state;
    current_probe p;
    memset(&p, 0, sizeof p);
    assert_null(tide_loop_current());
    assert_int_equal(tide_loop_new(&p.loop), 0);
    assert_int_equal(tide_loop_new(&p.other), 0);
    assert_null(tide_loop_current()); /* made, not running */
    p.task_seen = (tide_task *)&p;
    assert_int_equal(tide_call_soon(p.loop, current_cb, &p), 0);
    assert_int_equal(tide_loop_run(p.loop), 0);
    assert_ptr_equal(p.seen, p.loop);
    assert_null(p.task_seen); /* a plain callback is not a task */
    assert_int_equal(p.rc_run_same, -EBUSY);
    assert_int_equal(p.rc_run_other, -EBUSY);
    assert_int_equal(p.rc_tide_run, -EBUSY);
    assert_null(tide_loop_current());
    tide_loop_free(p.other);
    tide_loop_free(p.loop);
}

static tide_loop *g_main_seen;

static int current_main(void *arg)
{
    (void)arg;
    g_main_seen = tide_loop_current();
    return 0;
}

static void test_loop_current_in_tide_run(void **state)
{
    (void)state;
    g_main_seen = NULL;
    assert_int_equal(tide_run(current_main, NULL), 0);
    assert_non_null(g_main_seen);
    assert_null(tide_loop_current());
}

/* ------------------------------------------------------------- threadsafe */

#define NTHREADS 4
#define PER_THREAD 10000

typedef struct ts_state {
    tide_loop *loop;
    unsigned char *count; /* per id */
    int last[NTHREADS];   /* last seq seen per thread */
    int out_of_order;
    int total;
    int failed_calls;
    int64_t deadline;
    int gave_up;
    pthread_barrier_t barrier;
} ts_state;

typedef struct ts_item {
    ts_state *st;
    int thread, seq;
} ts_item;

static ts_item *g_items;

static void ts_cb(void *arg)
{
    ts_item *it = arg;
    ts_state *st = it->st;
    st->count[it->thread * PER_THREAD + it->seq]++;
    if (it->seq <= st->last[it->thread])
        st->out_of_order++;
    st->last[it->thread] = it->seq;
    st->total++;
}

static void *ts_thread(void *arg)
{
    ts_item *first = arg;
    ts_state *st = first->st;
    pthread_barrier_wait(&st->barrier);
    for (int i = 0; i < PER_THREAD; i++)
        if (tide_call_soon_threadsafe(st->loop, ts_cb, &first[i]) != 0)
            __atomic_fetch_add(&st->failed_calls, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* keeps the loop alive until every callback arrived (or 30 s passed) */
static void keeper_cb(void *arg)
{
    ts_state *st = arg;
    if (st->total >= NTHREADS * PER_THREAD -
                         __atomic_load_n(&st->failed_calls, __ATOMIC_RELAXED))
        return;
    if (tide_now() > st->deadline) {
        st->gave_up = 1;
        return;
    }
    tide_call_later(st->loop, 1, keeper_cb, st, NULL);
}

static void test_call_soon_threadsafe_many_threads(void **state)
{
    (void)state;
    ts_state *st = calloc(1, sizeof *st);
    st->count = calloc(NTHREADS * PER_THREAD, 1);
    g_items = calloc(NTHREADS * PER_THREAD, sizeof *g_items);
    for (int t = 0; t < NTHREADS; t++) {
        st->last[t] = -1;
        for (int i = 0; i < PER_THREAD; i++)
            g_items[t * PER_THREAD + i] = (ts_item){st, t, i};
    }
    assert_int_equal(tide_loop_new(&st->loop), 0);
    st->deadline = tide_now() + 30000;
    pthread_barrier_init(&st->barrier, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, ts_thread, &g_items[t * PER_THREAD]), 0);
    assert_int_equal(tide_call_soon(st->loop, keeper_cb, st), 0);
    assert_int_equal(tide_loop_run(st->loop), 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    /* anything that arrived after the keeper saw the total runs now */
    assert_int_equal(tide_loop_run(st->loop), 0);

    assert_int_equal(st->failed_calls, 0);
    assert_int_equal(st->gave_up, 0);
    assert_int_equal(st->total, NTHREADS * PER_THREAD);
    for (int i = 0; i < NTHREADS * PER_THREAD; i++)
        if (st->count[i] != 1)
            fail_msg("callback %d ran %d times", i, st->count[i]);
    assert_int_equal(st->out_of_order, 0);
    tide_loop_free(st->loop);
    pthread_barrier_destroy(&st->barrier);
    free(g_items);
    free(st->count);
    free(st);
}

/* A loop sleeping in its poller (a far timer pending) is woken by
 * call_soon_threadsafe from another thread. */
typedef struct wake_state {
    tide_loop *loop;
    tide_timer far;
    int ran;
    int64_t ran_at;
} wake_state;

static void wake_cb(void *arg)
{
    wake_state *w = arg;
    w->ran = 1;
    w->ran_at = tide_now();
    tide_timer_cancel(&w->far);
}

static void *wake_thread(void *arg)
{
    wake_state *w = arg;
    usleep(50 * 1000);
    tide_call_soon_threadsafe(w->loop, wake_cb, w);
    return NULL;
}

static void test_call_soon_threadsafe_wakes_loop(void **state)
{
    (void)state;
    wake_state w;
    memset(&w, 0, sizeof w);
    assert_int_equal(tide_loop_new(&w.loop), 0);
    assert_int_equal(tide_call_later(w.loop, 10000, set_flag_cb, NULL, &w.far), 0);
    g_flag_ran = 0;
    pthread_t th;
    int64_t t0 = tide_now();
    assert_int_equal(pthread_create(&th, NULL, wake_thread, &w), 0);
    assert_int_equal(tide_loop_run(w.loop), 0);
    int64_t el = tide_now() - t0;
    pthread_join(th, NULL);
    assert_int_equal(w.ran, 1);
    assert_int_equal(g_flag_ran, 0);
    assert_true(el >= 40);
    assert_true(el < 3000);
    assert_true(w.ran_at - t0 < 3000);
    tide_loop_free(w.loop);
}

/* ------------------------------------------------------------------ misc */

static void test_now_monotonic(void **state)
{
    (void)state;
    int64_t prev = tide_now();
    assert_true(prev >= 0);
    for (int i = 0; i < 100000; i++) {
        int64_t t = tide_now();
        assert_true(t >= prev);
        prev = t;
    }
    int64_t a = tide_now();
    usleep(50 * 1000);
    int64_t b = tide_now();
    assert_true(b - a >= 49);
    assert_true(b - a < 5000);
}

static void noop_cb(void *arg)
{
    (void)arg;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(NULL), -EINVAL);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_call_soon(NULL, noop_cb, NULL), -EINVAL);
    assert_int_equal(tide_call_soon(loop, NULL, NULL), -EINVAL);
    tide_timer h;
    assert_int_equal(tide_call_later(NULL, 1, noop_cb, NULL, &h), -EINVAL);
    assert_int_equal(tide_call_later(loop, 1, NULL, NULL, &h), -EINVAL);
    assert_int_equal(tide_call_soon_threadsafe(NULL, noop_cb, NULL), -EINVAL);
    assert_int_equal(tide_call_soon_threadsafe(loop, NULL, NULL), -EINVAL);
    assert_int_equal(tide_loop_run(NULL), -EINVAL);
    assert_int_equal(tide_loop_run_until_complete(NULL, NULL), -EINVAL);
    assert_int_equal(tide_loop_run_until_complete(loop, NULL), -EINVAL);
    assert_int_equal(tide_timer_cancel(NULL), -EINVAL);
    tide_loop_free(NULL); /* ignored */
    /* none of the failed calls left work behind */
    g_flag_ran = 0;
    int64_t t0 = tide_now();
    assert_int_equal(tide_loop_run(loop), 0);
    assert_true(tide_now() - t0 < 1000);
    tide_loop_free(loop);
}

static void test_strerror(void **state)
{
    (void)state;
    int errs[] = {0, -EINVAL, -ECANCELED, -ETIMEDOUT, -EPERM, -EBUSY, -EALREADY, -ENOMEM,
                  -EAGAIN, -123456, 5};
    for (size_t i = 0; i < TT_ARRAY_LEN(errs); i++) {
        const char *s = tide_strerror(errs[i]);
        assert_non_null(s);
    }
    assert_true(strcmp(tide_strerror(-ECANCELED), tide_strerror(-ETIMEDOUT)) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_soon_fifo),
        cmocka_unit_test(test_call_soon_from_callback_runs_later),
        cmocka_unit_test(test_call_soon_reschedule_is_fair),
        cmocka_unit_test(test_call_later_order),
        cmocka_unit_test(test_call_later_from_outside),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_cancel_from_callback),
        cmocka_unit_test(test_loop_stop),
        cmocka_unit_test(test_loop_stop_with_pending_timer),
        cmocka_unit_test(test_loop_run_returns_when_idle),
        cmocka_unit_test(test_loop_current_and_busy),
        cmocka_unit_test(test_loop_current_in_tide_run),
        cmocka_unit_test(test_call_soon_threadsafe_many_threads),
        cmocka_unit_test(test_call_soon_threadsafe_wakes_loop),
        cmocka_unit_test(test_now_monotonic),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
