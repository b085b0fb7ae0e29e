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
#include <sys/poll.h>
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
    /* Each deadline is taken when its timer is added: on virtual time the 40
     * are added at the same instant however slow the machine (valgrind). */
    order_log *lg = calloc(1, sizeof *lg);
    timer_setup *ts = calloc(1, sizeof *ts);
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
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
        /* each exactly on its deadline */
        assert_int_equal(lg->when[i], ts->start + ts->delay[lg->log[i]]);
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
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
    lg->loop = loop;
    rec_arg a[5];
    int64_t delays[5] = {50, 10, 40, -5, 20}; /* -5 taken as 0 */
    int64_t t0 = tide_vclock_now(loop) / 1000000;
    for (int i = 0; i < 5; i++) {
        a[i].log = lg;
        a[i].id = i;
        assert_int_equal(tide_call_later(loop, delays[i], rec_cb, &a[i], NULL), 0);
    }
    assert_int_equal(tide_loop_run(loop), 0);
    int64_t elapsed = tide_vclock_now(loop) / 1000000 - t0;
    int want[5] = {3, 1, 4, 2, 0};
    int64_t when[5] = {0, 10, 20, 40, 50};
    assert_int_equal(lg->n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(lg->log[i], want[i]);
        assert_int_equal(lg->when[i] - t0, when[i]);
    }
    assert_int_equal(elapsed, 50);
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
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
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
    assert_int_equal(lg->when[0], 10); /* 5 ms, then 5 more */
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
    /* free runs what is scheduled once (asyncio.run does too), and drops
     * what that schedules again */
    tide_loop_free(loop);
    assert_int_equal(s.count, 151);
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
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
    g_flag_ran = 0;
    tide_timer h;
    assert_int_equal(tide_call_later(loop, 10000, set_flag_cb, NULL, &h), 0);
    assert_int_equal(tide_call_later(loop, 10, stop_cb, loop, NULL), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(tide_vclock_now(loop), 10 * 1000000); /* stopped at 10 ms, not later */
    assert_int_equal(g_flag_ran, 0);
    tide_loop_free(loop);
    assert_int_equal(g_flag_ran, 0);
}

static void test_loop_run_returns_when_idle(void **state)
{
    (void)state;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
    /* empty loop: returns at once */
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(tide_vclock_now(loop), 0);
    /* with a timer: returns after it ran, exactly then */
    g_flag_ran = 0;
    assert_int_equal(tide_call_later(loop, 30, set_flag_cb, NULL, NULL), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(g_flag_ran, 1);
    assert_int_equal(tide_vclock_now(loop), 30 * 1000000);
    /* a cancelled timer is no work: no time passes for it */
    tide_timer h;
    assert_int_equal(tide_call_later(loop, 5000, set_flag_cb, NULL, &h), 0);
    assert_int_equal(tide_timer_cancel(&h), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(tide_vclock_now(loop), 30 * 1000000);
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


/* ------------------------------------------------ injected clock (wave 2) */

static int64_t g_fake_ns;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return g_fake_ns;
}

static int g_fake_fired;

static void fake_fired(void *arg)
{
    (void)arg;
    g_fake_fired = 1;
}

/* A task that moves the injected clock by 100 ms per yield: a timer of 1 s
 * fires after 10 yields, with no real waiting. */
static int fake_mover(void *arg)
{
    int i, *yields = arg;
    for (i = 0; i < 1000 && !g_fake_fired; i++) {
        g_fake_ns += 100 * 1000000LL;
        assert_int_equal(tide_sleep(0), 0);
        (*yields)++;
    }
    assert_int_equal(tide_now(), g_fake_ns / 1000000);
    return 0;
}

static void test_injected_clock(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;
    int yields = 0;

    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_clock(NULL, fake_clock, NULL), -EINVAL);
    g_fake_ns = 5 * 1000000000LL;
    g_fake_fired = 0;
    assert_int_equal(tide_loop_set_clock(loop, fake_clock, NULL), 0);
    assert_int_equal(tide_call_later(loop, 1000, fake_fired, NULL, NULL), 0);
    /* deadlines exist on this clock now: it cannot be swapped */
    assert_int_equal(tide_loop_set_clock(loop, NULL, NULL), -EBUSY);
    assert_int_equal(tide_create_task_ex(&t, loop, fake_mover, &yields, NULL), 0);
    int64_t t0 = tide_now();
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    assert_true(g_fake_fired);
    assert_true(yields >= 9 && yields <= 11);
    assert_true(tide_now() - t0 < 500); /* no real second went by */
    tide_loop_free(loop);
}

/* ------------------------------------------- closing loops and the pool */

static atomic_int g_slow_done;

static int slow_job(void *arg)
{
    (void)arg;
    usleep(100 * 1000);
    atomic_store(&g_slow_done, 1);
    return 7;
}

/* "Stop on error" in a task cancelled by tide_run's cleanup, with a pool
 * job in flight: the cleanup still waits for the job. */
static int stopper(void *arg)
{
    (void)arg;
    int rc = tide_to_thread(slow_job, NULL);
    if (rc < 0)
        tide_loop_stop(tide_loop_current());
    return rc;
}

static int main_leaves_stopper(void *arg)
{
    tide_task *t;
    (void)arg;
    assert_int_equal(tide_create_task(&t, stopper, NULL), 0);
    tide_detach(t);
    assert_int_equal(tide_sleep(10), 0); /* the job is running */
    return 3;
}

static void test_stop_during_close_waits_for_jobs(void **state)
{
    (void)state;
    atomic_store(&g_slow_done, 0);
    assert_int_equal(tide_run(main_leaves_stopper, NULL), 3);
    /* tide_run returned only once the job was back */
    assert_int_equal(atomic_load(&g_slow_done), 1);
}

static int job_then_wait(void *arg)
{
    (void)arg;
    return tide_to_thread(slow_job, NULL);
}

static void stop_loop_cb(void *arg)
{
    tide_loop_stop(arg);
}

static int free_other_loop(void *arg)
{
    tide_loop *other = arg;
    tide_loop_free(other); /* cannot run it here: must block for its job */
    assert_int_equal(atomic_load(&g_slow_done), 1);
    return 0;
}

static void test_free_loop_with_job_while_another_runs(void **state)
{
    (void)state;
    tide_loop *a;
    tide_task *t;

    atomic_store(&g_slow_done, 0);
    assert_int_equal(tide_loop_new(&a), 0);
    assert_int_equal(tide_create_task_ex(&t, a, job_then_wait, NULL, NULL), 0);
    assert_int_equal(tide_call_later(a, 10, stop_loop_cb, a, NULL), 0);
    assert_int_equal(tide_loop_run(a), 0); /* t now waits on its job */
    assert_int_equal(atomic_load(&g_slow_done), 0);
    assert_int_equal(tide_run(free_other_loop, a), 0);
}

static int g_done_cb_ran;

static void done_cb(tide_future *f, void *arg)
{
    (void)arg;
    g_done_cb_ran = 1;
    tide_future_free(f);
}

static int main_sets_future_last(void *arg)
{
    tide_future *f;
    (void)arg;
    assert_int_equal(tide_future_new(&f), 0);
    assert_int_equal(tide_future_add_done_callback(f, done_cb, NULL), 0);
    assert_int_equal(tide_future_set_result(f, NULL), 0);
    return 0; /* the callback is scheduled, not run yet */
}

/* A done callback scheduled in main's last step runs (and frees the
 * future: LeakSanitizer checks nothing is left). */
static void test_done_callback_after_main_runs(void **state)
{
    (void)state;
    g_done_cb_ran = 0;
    assert_int_equal(tide_run(main_sets_future_last, NULL), 0);
    assert_int_equal(g_done_cb_ran, 1);
}

static int g_close_resched_count;

static void atclose_cb(tide_future *f, void *arg)
{
    (void)f;
    (void)arg;
    g_close_resched_count++;
}

static void schedule_future_cb(void *arg)
{
    tide_future *f;
    (void)arg;
    /* scheduled while the loop closes: dropped, freed, never run */
    if (tide_future_new(&f) == 0) {
        tide_future_add_done_callback(f, atclose_cb, NULL);
        tide_future_set_result(f, NULL);
        tide_future_free(f); /* kept for the pending callback; the drop frees it */
    }
}

static void test_callbacks_scheduled_at_close_are_freed(void **state)
{
    (void)state;
    tide_loop *loop;
    g_close_resched_count = 0;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_call_soon(loop, schedule_future_cb, NULL), 0);
    tide_loop_free(loop); /* runs schedule_future_cb; drops atclose_cb */
    assert_int_equal(g_close_resched_count, 0);
}

/* --------------------------------------- loop-thread-only calls (misuse) */

typedef struct foreign {
    tide_loop *loop;
    tide_future *fut;
    int rc_soon, rc_later, rc_set, rc_cb, rc_task, rc_new, rc_cancel;
} foreign;

static void never_cb(void *arg)
{
    (void)arg;
    fail_msg("a callback scheduled from a foreign thread ran");
}

static void never_fcb(tide_future *f, void *arg)
{
    (void)f;
    (void)arg;
}

static int never_task(void *arg)
{
    (void)arg;
    return 0;
}

static void *foreign_thread(void *arg)
{
    foreign *fo = arg;
    tide_task *t;
    tide_future *f2;
    tide_timer h = {0};
    fo->rc_soon = tide_call_soon(fo->loop, never_cb, NULL);
    fo->rc_later = tide_call_later(fo->loop, 1, never_cb, NULL, &h);
    fo->rc_set = tide_future_set_result(fo->fut, NULL);
    fo->rc_cancel = tide_future_cancel(fo->fut);
    fo->rc_cb = tide_future_add_done_callback(fo->fut, never_fcb, NULL);
    fo->rc_task = tide_create_task_ex(&t, fo->loop, never_task, NULL, NULL);
    fo->rc_new = tide_future_new_on(&f2, fo->loop);
    return NULL;
}

static int join_fn(void *arg)
{
    return pthread_join(*(pthread_t *)arg, NULL) == 0 ? 0 : -1;
}

/* A tide_to_thread function runs on a worker: not in a task, not on the
 * loop's thread. */
static int in_worker(void *arg)
{
    tide_loop *loop = arg;
    if (tide_loop_current() != NULL || tide_sleep(1) != -EPERM)
        return -1;
    return tide_call_soon(loop, never_cb, NULL) == -EPERM ? 0 : -2;
}

static int foreign_main(void *arg)
{
    foreign *fo = arg;
    pthread_t th;
    fo->loop = tide_loop_current();
    assert_int_equal(tide_future_new(&fo->fut), 0);
    assert_int_equal(pthread_create(&th, NULL, foreign_thread, fo), 0);
    /* the loop keeps running meanwhile: the join blocks a pool worker */
    assert_int_equal(tide_to_thread(join_fn, &th), 0);
    assert_int_equal(tide_future_done(fo->fut), 0); /* untouched */
    tide_future_free(fo->fut);
    assert_int_equal(tide_to_thread(in_worker, fo->loop), 0);
    return 0;
}

static void test_foreign_thread_calls_refused(void **state)
{
    (void)state;
    foreign fo;
    memset(&fo, 0, sizeof fo);
    assert_int_equal(tide_run(foreign_main, &fo), 0);
    assert_int_equal(fo.rc_soon, -EPERM);
    assert_int_equal(fo.rc_later, -EPERM);
    assert_int_equal(fo.rc_set, -EPERM);
    assert_int_equal(fo.rc_cancel, -EPERM);
    assert_int_equal(fo.rc_cb, -EPERM);
    assert_int_equal(fo.rc_task, -EPERM);
    assert_int_equal(fo.rc_new, -EPERM);
}

/* ------------------------------------------ run_forever and embedding */

typedef struct fwd {
    tide_loop *loop;
    tide_future *fut;
} fwd;

static void complete_and_stop(void *arg)
{
    fwd *w = arg;
    tide_future_set_result(w->fut, (void *)(intptr_t)42);
}

static void *later_thread(void *arg)
{
    fwd *w = arg;
    usleep(50 * 1000);
    tide_call_soon_threadsafe(w->loop, complete_and_stop, w);
    return NULL;
}

static int await_then_stop(void *arg)
{
    fwd *w = arg;
    void *v = NULL;
    int rc = tide_future_await(w->fut, &v);
    tide_loop_stop(w->loop);
    return rc == 0 ? (int)(intptr_t)v : rc;
}

static void test_run_forever(void **state)
{
    (void)state;
    fwd w;
    tide_task *t;
    pthread_t th;

    assert_int_equal(tide_loop_run_forever(NULL), -EINVAL);
    assert_int_equal(tide_loop_new(&w.loop), 0);
    assert_int_equal(tide_future_new_on(&w.fut, w.loop), 0);
    assert_int_equal(tide_create_task_ex(&t, w.loop, await_then_stop, &w, NULL), 0);
    /* tide_loop_run would return at once: nothing holds the loop alive */
    assert_int_equal(pthread_create(&th, NULL, later_thread, &w), 0);
    assert_int_equal(tide_loop_run_forever(w.loop), 0);
    pthread_join(th, NULL);
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_DONE);
    assert_int_equal(tide_loop_run_until_complete(w.loop, t), 42);
    tide_future_free(w.fut);
    tide_loop_free(w.loop);
}

static int g_embed_fired;

static void embed_cb(void *arg)
{
    (void)arg;
    g_embed_fired++;
}

static int pipe_reader(void *arg)
{
    int fd = *(int *)arg;
    char b[8];
    return (int)tide_read(fd, b, sizeof b);
}

static void test_embedding(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;
    int p[2], spins = 0;
    struct pollfd pf;

    assert_int_equal(tide_loop_fd(NULL), -EINVAL);
    assert_int_equal(tide_loop_run_once(NULL), -EINVAL);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_true(tide_loop_fd(loop) >= 0);
    assert_int_equal(tide_loop_timeout_ms(loop), -1); /* nothing at all */
    assert_int_equal(tide_loop_run_once(loop), 0);

    /* ready work: never "sleep" */
    g_embed_fired = 0;
    assert_int_equal(tide_call_soon(loop, embed_cb, NULL), 0);
    assert_int_equal(tide_loop_timeout_ms(loop), 0);
    assert_int_equal(tide_loop_run_once(loop), 0);
    assert_int_equal(g_embed_fired, 1);

    /* a timer: the timeout counts down to it */
    assert_int_equal(tide_call_later(loop, 30, embed_cb, NULL, NULL), 0);
    int64_t to = tide_loop_timeout_ms(loop);
    assert_true(to > 0 && to <= 30);
    while (g_embed_fired < 2 && spins++ < 100) {
        pf.fd = tide_loop_fd(loop);
        pf.events = POLLIN;
        (void)poll(&pf, 1, (int)tide_loop_timeout_ms(loop));
        (void)tide_loop_run_once(loop);
    }
    assert_int_equal(g_embed_fired, 2);

    /* an fd: the host sees the loop fd readable when the pipe is */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, pipe_reader, &p[0], NULL), 0);
    assert_int_equal(tide_loop_run_once(loop), 1); /* t waits on the pipe */
    assert_int_equal(tide_loop_timeout_ms(loop), -1);
    pf.fd = tide_loop_fd(loop);
    pf.events = POLLIN;
    assert_int_equal(poll(&pf, 1, 0), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    assert_int_equal(poll(&pf, 1, 1000), 1);
    spins = 0;
    while (tide_task_get_state(t) != TIDE_TASK_DONE && spins++ < 10)
        (void)tide_loop_run_once(loop);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 3);
    tide_close(p[0]);
    close(p[1]);
    tide_loop_free(loop);
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
        cmocka_unit_test(test_injected_clock),
        cmocka_unit_test(test_stop_during_close_waits_for_jobs),
        cmocka_unit_test(test_free_loop_with_job_while_another_runs),
        cmocka_unit_test(test_done_callback_after_main_runs),
        cmocka_unit_test(test_callbacks_scheduled_at_close_are_freed),
        cmocka_unit_test(test_foreign_thread_calls_refused),
        cmocka_unit_test(test_run_forever),
        cmocka_unit_test(test_embedding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
