/*
 * Tests of virtual time (tide_loop_set_vclock, tide_vclock_advance) and of
 * the seeded order of ready tasks (tide_loop_set_seed, TIDE_SEED).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#define MS 1000000LL

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static tide_loop *vloop(unsigned flags)
{
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_vclock(loop, flags), 0);
    return loop;
}

static tide_task *spawn(tide_loop *loop, tide_fn fn, void *arg)
{
    tide_task *t;
    tide_task_opts o = {.name = NULL, .stack_size = 64 * 1024};
    assert_int_equal(tide_create_task_ex(&t, loop, fn, arg, &o), 0);
    return t;
}

/* ------------------------------------------------------------ sleeps */

typedef struct wlog {
    int id[64];
    int64_t at[64];
    int n;
} wlog;

typedef struct sleeper {
    wlog *log;
    int id;
    int64_t ms;
    int rc;
} sleeper;

static int sleeper_fn(void *arg)
{
    sleeper *s = arg;
    s->rc = tide_sleep(s->ms);
    s->log->id[s->log->n] = s->id;
    s->log->at[s->log->n++] = tide_now_ns();
    return 0;
}

static void test_sleeps_jump_in_order(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    wlog log = {{0}, {0}, 0};
    sleeper s[4] = {{&log, 0, 3000, 1}, {&log, 1, 1000, 1}, {&log, 2, 2000, 1}, {&log, 3, 3600 * 1000, 1}};
    tide_task *t[4];
    int64_t w0 = wall_ns();

    for (int i = 0; i < 4; i++)
        t[i] = spawn(loop, sleeper_fn, &s[i]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tide_loop_run_until_complete(loop, t[i]), 0);
    assert_true(wall_ns() - w0 < 1000 * MS); /* an hour of sleeps, at once */
    assert_int_equal(log.n, 4);
    int want[4] = {1, 2, 0, 3};
    int64_t at[4] = {1000 * MS, 2000 * MS, 3000 * MS, 3600000 * MS};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(log.id[i], want[i]);
        assert_int_equal(log.at[i], at[i]); /* exactly at the deadline */
        assert_int_equal(s[i].rc, 0);
    }
    assert_int_equal(tide_vclock_now(loop), 3600000 * MS);
    tide_loop_free(loop);
}

/* ---------------------------------------------------------- timeouts */

static int scope_sleep_fn(void *arg)
{
    int64_t *at = arg;
    tide_scope sc;
    assert_int_equal(tide_timeout_begin(&sc, 50), 0);
    assert_int_equal(tide_sleep(1000), -ETIMEDOUT);
    at[0] = tide_now_ns();
    assert_int_equal(tide_timeout_end(&sc), -ETIMEDOUT);
    /* a nested scope: the earlier deadline wins */
    tide_scope outer, inner;
    assert_int_equal(tide_timeout_begin(&outer, 70), 0);
    assert_int_equal(tide_timeout_begin(&inner, 500), 0);
    assert_int_equal(tide_sleep(1000), -ETIMEDOUT);
    at[1] = tide_now_ns();
    assert_int_equal(tide_timeout_end(&inner), 0);
    assert_int_equal(tide_timeout_end(&outer), -ETIMEDOUT);
    return 0;
}

static void test_timeout_scope(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    int64_t at[2] = {0, 0};
    assert_int_equal(tide_loop_run_until_complete(loop, spawn(loop, scope_sleep_fn, at)), 0);
    assert_int_equal(at[0], 50 * MS);
    assert_int_equal(at[1], 120 * MS);
    tide_loop_free(loop);
}

static int long_sleep_fn(void *arg)
{
    int *cancelled = arg;
    int rc = tide_sleep(10000);
    if (rc == -ECANCELED)
        *cancelled = 1;
    return rc;
}

typedef struct wf_arg {
    int cancelled;
    int64_t at;
    int rc;
} wf_arg;

static int wait_for_fn(void *arg)
{
    wf_arg *a = arg;
    tide_task *c;
    assert_int_equal(tide_create_task(&c, long_sleep_fn, &a->cancelled), 0);
    a->rc = tide_wait_for(c, 100);
    a->at = tide_now_ns();
    return 0;
}

static void test_wait_for(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    wf_arg a = {0, 0, 0};
    assert_int_equal(tide_loop_run_until_complete(loop, spawn(loop, wait_for_fn, &a)), 0);
    assert_int_equal(a.rc, -ETIMEDOUT);
    assert_int_equal(a.at, 100 * MS);
    assert_int_equal(a.cancelled, 1);
    tide_loop_free(loop);
}

static int member_fn(void *arg)
{
    int *n = arg;
    int rc = tide_sleep(5000);
    if (rc == -ECANCELED)
        (*n)++;
    return rc;
}

typedef struct grp_arg {
    int cancelled;
    int64_t at;
    int rc, end;
} grp_arg;

static int group_fn(void *arg)
{
    grp_arg *a = arg;
    tide_group g;
    tide_scope sc;
    assert_int_equal(tide_group_init(&g), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tide_group_spawn(&g, member_fn, &a->cancelled, NULL, NULL), 0);
    assert_int_equal(tide_timeout_begin(&sc, 200), 0);
    a->rc = tide_group_wait(&g);
    a->at = tide_now_ns();
    a->end = tide_timeout_end(&sc);
    return 0;
}

static void test_group_timeout(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    grp_arg a = {0, 0, 0, 0};
    assert_int_equal(tide_loop_run_until_complete(loop, spawn(loop, group_fn, &a)), 0);
    assert_int_equal(a.rc, -ETIMEDOUT);
    assert_int_equal(a.end, -ETIMEDOUT);
    assert_int_equal(a.at, 200 * MS);
    assert_int_equal(a.cancelled, 3);
    tide_loop_free(loop);
}

/* queue get, lock acquire, event wait, each under a 30 ms scope */
static int lock_waiter_fn(void *arg)
{
    tide_lock *l = arg;
    tide_scope sc;
    assert_int_equal(tide_timeout_begin(&sc, 30), 0);
    int rc = tide_lock_acquire(l);
    assert_int_equal(tide_timeout_end(&sc), -ETIMEDOUT);
    return rc;
}

static int sync_timeouts_fn(void *arg)
{
    int64_t *at = arg;
    tide_queue *q;
    tide_lock l;
    tide_event e;
    tide_scope sc;
    void *item;
    tide_task *w;

    assert_int_equal(tide_queue_new(&q, NULL), 0);
    assert_int_equal(tide_timeout_begin(&sc, 30), 0);
    assert_int_equal(tide_queue_get(q, &item), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&sc), -ETIMEDOUT);
    at[0] = tide_now_ns();
    tide_queue_free(q);

    assert_int_equal(tide_lock_init(&l), 0);
    assert_int_equal(tide_lock_acquire(&l), 0);
    assert_int_equal(tide_create_task(&w, lock_waiter_fn, &l), 0);
    assert_int_equal(tide_await(w), -ETIMEDOUT);
    at[1] = tide_now_ns();
    assert_int_equal(tide_lock_release(&l), 0);

    assert_int_equal(tide_event_init(&e), 0);
    assert_int_equal(tide_timeout_begin(&sc, 30), 0);
    assert_int_equal(tide_event_wait(&e), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&sc), -ETIMEDOUT);
    at[2] = tide_now_ns();
    return 0;
}

static void test_sync_timeouts(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    int64_t at[3] = {0, 0, 0};
    assert_int_equal(tide_loop_run_until_complete(loop, spawn(loop, sync_timeouts_fn, at)), 0);
    assert_int_equal(at[0], 30 * MS);
    assert_int_equal(at[1], 60 * MS);
    assert_int_equal(at[2], 90 * MS);
    tide_loop_free(loop);
}

/* ---------------------------------------------------------- call_later */

typedef struct cl_arg {
    tide_loop *loop;
    int64_t at[4];
    int n;
} cl_arg;

static void cl_cb(void *arg)
{
    cl_arg *a = arg;
    a->at[a->n++] = tide_vclock_now(a->loop);
}

static void test_call_later(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    cl_arg a = {loop, {0}, 0};
    tide_timer h;
    assert_int_equal(tide_call_later(loop, 500, cl_cb, &a, NULL), 0);
    assert_int_equal(tide_call_later(loop, 250, cl_cb, &a, NULL), 0);
    assert_int_equal(tide_call_later(loop, 400, cl_cb, &a, &h), 0);
    assert_int_equal(tide_timer_cancel(&h), 0);
    /* a clock switch is refused while timers are pending */
    assert_int_equal(tide_loop_set_vclock(loop, 0), -EBUSY);
    assert_int_equal(tide_loop_set_clock(loop, NULL, NULL), -EBUSY);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.at[0], 250 * MS);
    assert_int_equal(a.at[1], 500 * MS);
    tide_loop_free(loop);
}

/* ------------------------------------------- what keeps time from jumping */

typedef struct block_arg {
    volatile int job_done;  /* set by the worker / the writer thread */
    int seen_done;          /* what the sleeper saw when it woke */
    int64_t woke_at;
    int64_t job_back_at;    /* virtual time when the waiting task resumed */
    int fds[2];
} block_arg;

static int job_fn(void *arg)
{
    block_arg *b = arg;
    usleep(30000);
    __atomic_store_n(&b->job_done, 1, __ATOMIC_RELEASE);
    return 7;
}

static int pool_waiter_fn(void *arg)
{
    block_arg *b = arg;
    int rc = tide_to_thread(job_fn, b);
    b->job_back_at = tide_now_ns();
    return rc;
}

static int short_sleeper_fn(void *arg)
{
    block_arg *b = arg;
    assert_int_equal(tide_sleep(1), 0);
    b->seen_done = __atomic_load_n(&b->job_done, __ATOMIC_ACQUIRE);
    b->woke_at = tide_now_ns();
    return 0;
}

static void test_autojump_blocked_by_pool_job(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    block_arg b;
    memset(&b, 0, sizeof b);
    tide_task *w = spawn(loop, pool_waiter_fn, &b);
    tide_task *s = spawn(loop, short_sleeper_fn, &b);
    int64_t w0 = wall_ns();
    assert_int_equal(tide_loop_run_until_complete(loop, s), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, w), 7);
    /* the 1 ms sleep ended only after the job came back: no jump meanwhile */
    assert_int_equal(b.seen_done, 1);
    assert_int_equal(b.job_back_at, 0);
    assert_int_equal(b.woke_at, 1 * MS);
    assert_true(wall_ns() - w0 >= 25 * MS); /* the loop waited for real */
    tide_loop_free(loop);
}

static void *writer_thread(void *arg)
{
    block_arg *b = arg;
    usleep(30000);
    __atomic_store_n(&b->job_done, 1, __ATOMIC_RELEASE);
    assert_int_equal(write(b->fds[1], "x", 1), 1);
    return NULL;
}

static int fd_waiter_fn(void *arg)
{
    block_arg *b = arg;
    char c;
    ssize_t n = tide_read(b->fds[0], &c, 1);
    b->job_back_at = tide_now_ns();
    return n == 1 && c == 'x' ? 0 : -EIO;
}

static void test_autojump_blocked_by_fd_wait(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    block_arg b;
    pthread_t th;
    memset(&b, 0, sizeof b);
    assert_int_equal(pipe(b.fds), 0);
    tide_task *w = spawn(loop, fd_waiter_fn, &b);
    tide_task *s = spawn(loop, short_sleeper_fn, &b);
    assert_int_equal(pthread_create(&th, NULL, writer_thread, &b), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, s), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, w), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.seen_done, 1);
    assert_int_equal(b.job_back_at, 0);
    assert_int_equal(b.woke_at, 1 * MS);
    close(b.fds[0]);
    close(b.fds[1]);
    tide_loop_free(loop);
}

/* A tide_call_soon_threadsafe posted while the loop is busy (awake: the
 * poster skips the wake-up write, xthread.c) holds time still until it has
 * run: the task that waits for what it does, under a 1 s timeout, gets its
 * result at virtual time 0, not after a jump to the next timer (a 300 ms
 * sleep, armed before, so that nothing else is ready to hold time back),
 * and that sleep still ends on time. */
typedef struct ts_arg {
    tide_loop *loop;
    tide_future *f;
    volatile int go, posted;
    int post_rc;
    int64_t ran_at; /* virtual time when the callback ran */
} ts_arg;

static void ts_cb(void *arg)
{
    ts_arg *a = arg;
    a->ran_at = tide_vclock_now(a->loop);
    (void)tide_future_set_result(a->f, a);
}

static void *ts_poster(void *arg)
{
    ts_arg *a = arg;
    while (!__atomic_load_n(&a->go, __ATOMIC_ACQUIRE))
        usleep(100);
    a->post_rc = tide_call_soon_threadsafe(a->loop, ts_cb, a);
    __atomic_store_n(&a->posted, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int ts_sleeper_fn(void *arg)
{
    (void)arg;
    return tide_sleep(300) == 0 && tide_now() == 300 ? 0 : -EIO;
}

static int ts_main(void *arg)
{
    ts_arg *a = arg;
    pthread_t th;
    tide_task *sl;
    tide_scope sc;
    void *v = NULL;
    int rc, end;

    assert_int_equal(tide_future_new(&a->f), 0);
    assert_int_equal(tide_create_task(&sl, ts_sleeper_fn, NULL), 0);
    assert_int_equal(tide_sleep(0), 0); /* it arms its timer: nothing is ready after us */
    assert_int_equal(pthread_create(&th, NULL, ts_poster, a), 0);
    __atomic_store_n(&a->go, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&a->posted, __ATOMIC_ACQUIRE))
        usleep(100); /* busy in a task: the loop is awake */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(a->post_rc, 0);
    assert_int_equal(tide_timeout_begin(&sc, 1000), 0);
    rc = tide_future_await(a->f, &v);
    end = tide_timeout_end(&sc);
    assert_int_equal(rc, 0);
    assert_ptr_equal(v, a);
    assert_int_equal(end, 0);
    assert_int_equal(a->ran_at, 0);
    assert_int_equal(tide_now(), 0);
    tide_future_free(a->f);
    return tide_await(sl); /* and time jumps again once nothing is posted */
}

static void test_autojump_held_by_threadsafe_call(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
        ts_arg a;
        memset(&a, 0, sizeof a);
        a.loop = loop;
        a.ran_at = -1;
        tide_task *m = spawn(loop, ts_main, &a);
        assert_int_equal(tide_loop_run_until_complete(loop, m), 0);
        assert_int_equal(tide_vclock_now(loop), 300 * MS);
        tide_loop_free(loop);
    }
}

static void *kill_thread(void *arg)
{
    block_arg *b = arg;
    usleep(30000);
    __atomic_store_n(&b->job_done, 1, __ATOMIC_RELEASE);
    kill(getpid(), SIGUSR2);
    return NULL;
}

static int sig_waiter_fn(void *arg)
{
    block_arg *b = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    int rc = tide_signal_wait(&set);
    b->job_back_at = tide_now_ns();
    return rc;
}

static void test_autojump_blocked_by_signal_wait(void **state)
{
    (void)state;
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    block_arg b;
    pthread_t th;
    sigset_t one, old;
    memset(&b, 0, sizeof b);
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
#if defined(__linux__) && !defined(TIDE_NO_SIGNALFD)
    /* signalfd: blocked everywhere, the signal waits for the loop's read
     * (the thread inherits the mask) */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &one, &old), 0);
#else
    /* the self-pipe fallback catches it with a handler: leave it unblocked */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &old), 0);
#endif
    tide_task *w = spawn(loop, sig_waiter_fn, &b);
    tide_task *s = spawn(loop, short_sleeper_fn, &b);
    assert_int_equal(pthread_create(&th, NULL, kill_thread, &b), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, s), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, w), SIGUSR2);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.seen_done, 1); /* no jump while the signal was awaited */
    assert_int_equal(b.job_back_at, 0);
    assert_int_equal(b.woke_at, 1 * MS);
    tide_loop_free(loop);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

/* An advance from a task is a cancellation point; time still goes on to
 * the end of the stretch for the others. */
static int adv_victim_fn(void *arg)
{
    tide_loop *loop = arg;
    return tide_vclock_advance(loop, 1000 * MS);
}

static int adv_canceller_fn(void *arg)
{
    tide_task *victim = arg;
    tide_sleep(0);
    tide_cancel(victim);
    return 0;
}

static void test_advance_cancelled(void **state)
{
    (void)state;
    tide_loop *loop = vloop(0);
    tide_task *v = spawn(loop, adv_victim_fn, loop);
    tide_task *c = spawn(loop, adv_canceller_fn, v);
    assert_int_equal(tide_loop_run_until_complete(loop, c), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, v), -ECANCELED);
    /* the stretch asked for stays asked: the loop gets there */
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(tide_vclock_now(loop), 1000 * MS);
    tide_loop_free(loop);
}

/* ----------------------------------------------------- manual advance */

typedef struct chain_arg {
    wlog *log;
} chain_arg;

static int chain_fn(void *arg) /* sleeps 100 ms, then 50 more */
{
    wlog *log = arg;
    assert_int_equal(tide_sleep(100), 0);
    log->id[log->n] = 10;
    log->at[log->n++] = tide_now_ns();
    assert_int_equal(tide_sleep(50), 0);
    log->id[log->n] = 11;
    log->at[log->n++] = tide_now_ns();
    return 0;
}

typedef struct drv_arg {
    tide_loop *loop;
    wlog *log;
    int n_after_first, n_after_second;
    int64_t t1, t2;
} drv_arg;

static int driver_fn(void *arg)
{
    drv_arg *d = arg;
    assert_int_equal(tide_vclock_advance(d->loop, -1), -EINVAL);
    assert_int_equal(tide_vclock_advance(d->loop, 250 * MS), 0);
    d->t1 = tide_now_ns();
    d->n_after_first = d->log->n;
    assert_int_equal(tide_vclock_advance(d->loop, 100 * MS), 0);
    d->t2 = tide_now_ns();
    d->n_after_second = d->log->n;
    return 0;
}

static void test_manual_advance(void **state)
{
    (void)state;
    tide_loop *loop = vloop(0);
    wlog log = {{0}, {0}, 0};
    sleeper s[3] = {{&log, 0, 300, 1}, {&log, 1, 200, 1}, {&log, 2, 100, 1}};
    drv_arg d = {loop, &log, 0, 0, 0, 0};
    tide_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(loop, sleeper_fn, &s[i]);
    tide_task *c = spawn(loop, chain_fn, &log);
    tide_task *drv = spawn(loop, driver_fn, &d);
    assert_int_equal(tide_loop_run_until_complete(loop, drv), 0);
    assert_int_equal(d.t1, 250 * MS);
    assert_int_equal(d.t2, 350 * MS);
    /* in deadline order, each at its own time, the chain's second sleep
     * (armed inside the stretch) included */
    assert_int_equal(d.n_after_first, 4);
    assert_int_equal(d.n_after_second, 5);
    int want[5] = {2, 10, 11, 1, 0};
    int64_t at[5] = {100 * MS, 100 * MS, 150 * MS, 200 * MS, 300 * MS};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(log.id[i], want[i]);
        assert_int_equal(log.at[i], at[i]);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(tide_loop_run_until_complete(loop, t[i]), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, c), 0);
    tide_loop_free(loop);
}

/* Embedding: run_once and timeout_ms with virtual time. */
static void test_embed_run_once(void **state)
{
    (void)state;
    tide_loop *loop = vloop(0);
    wlog log = {{0}, {0}, 0};
    sleeper s = {&log, 0, 100, 1};
    tide_task *t = spawn(loop, sleeper_fn, &s);
    int i;

    assert_int_equal(tide_loop_timeout_ms(loop), 0); /* the task is ready */
    assert_int_equal(tide_loop_run_once(loop), 1);   /* it started and sleeps */
    assert_int_equal(tide_loop_timeout_ms(loop), -1); /* manual: nothing moves time */
    assert_int_equal(tide_loop_run_once(loop), 1);
    assert_int_equal(log.n, 0);
    assert_int_equal(tide_vclock_advance(loop, 40 * MS), 0); /* outside a task: at once */
    assert_int_equal(tide_loop_timeout_ms(loop), 0);
    assert_int_equal(tide_loop_run_once(loop), 1);
    assert_int_equal(tide_vclock_now(loop), 40 * MS);
    assert_int_equal(tide_loop_timeout_ms(loop), -1);
    assert_int_equal(tide_vclock_advance(loop, 100 * MS), 0);
    for (i = 0; i < 10 && log.n == 0; i++) {
        assert_int_equal(tide_loop_timeout_ms(loop), 0);
        (void)tide_loop_run_once(loop);
    }
    assert_int_equal(log.n, 1);
    assert_int_equal(log.at[0], 100 * MS);
    for (i = 0; i < 10 && tide_vclock_now(loop) < 140 * MS; i++)
        (void)tide_loop_run_once(loop);
    assert_int_equal(tide_vclock_now(loop), 140 * MS);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    tide_loop_free(loop);

    /* autojump: timeout 0 whenever a jump can be made */
    loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    log.n = 0;
    s.ms = 5000;
    t = spawn(loop, sleeper_fn, &s);
    assert_int_equal(tide_loop_run_once(loop), 1);
    for (i = 0; i < 10 && log.n == 0; i++) {
        assert_int_equal(tide_loop_timeout_ms(loop), 0);
        (void)tide_loop_run_once(loop);
    }
    assert_int_equal(log.n, 1);
    assert_int_equal(log.at[0], 5000 * MS);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    tide_loop_free(loop);
}

/* ------------------------------------------------------- bad arguments */

static int nop_fn(void *arg)
{
    (void)arg;
    return 0;
}

static void *advance_thread(void *arg)
{
    return (void *)(intptr_t)tide_vclock_advance(arg, MS);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tide_loop *loop;
    void *rv;
    pthread_t th;

    assert_int_equal(tide_loop_set_vclock(NULL, 0), -EINVAL);
    assert_int_equal(tide_vclock_advance(NULL, 1), -EINVAL);
    assert_int_equal(tide_vclock_now(NULL), -EINVAL);
    assert_int_equal(tide_loop_set_seed(NULL, 1), -EINVAL);
    assert_int_equal(tide_loop_seed(NULL), -EINVAL);

    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_vclock(loop, 0x80), -EINVAL);
    assert_int_equal(tide_vclock_advance(loop, 1), -EINVAL); /* real clock */
    assert_int_equal(tide_vclock_now(loop), -EINVAL);
    assert_int_equal(tide_loop_set_vclock(loop, 0), 0);
    assert_int_equal(tide_vclock_now(loop), 0);
    assert_int_equal(tide_vclock_advance(loop, -5), -EINVAL);
    assert_int_equal(pthread_create(&th, NULL, advance_thread, loop), 0);
    assert_int_equal(pthread_join(th, &rv), 0);
    assert_int_equal((int)(intptr_t)rv, -EPERM);
    /* a huge advance saturates, never overflows */
    assert_int_equal(tide_vclock_advance(loop, INT64_MAX), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_true(tide_vclock_now(loop) > 0);
    /* back to the real clock, then virtual again */
    assert_int_equal(tide_loop_set_clock(loop, NULL, NULL), 0);
    assert_int_equal(tide_vclock_now(loop), -EINVAL);
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
    assert_int_equal(tide_vclock_now(loop), 0);
    /* refused while a task exists */
    tide_task *t = spawn(loop, nop_fn, NULL);
    assert_int_equal(tide_loop_set_vclock(loop, 0), -EBUSY);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    assert_int_equal(tide_loop_set_vclock(loop, 0), 0);
    tide_loop_free(loop);
}

/* -------------------------------------------------- seeded scheduling */

#define NTRACE 16

typedef struct trace {
    char buf[8192];
    size_t len;
    tide_lock lock;
} trace;

typedef struct tracer {
    trace *tr;
    int id;
} tracer;

static void trace_add(trace *tr, const char *what, int id, int k)
{
    int n = snprintf(tr->buf + tr->len, sizeof tr->buf - tr->len, "%s%d.%d@%lld ", what, id, k,
                     (long long)(tide_now_ns() / MS));
    assert_true(n > 0 && (size_t)n < sizeof tr->buf - tr->len);
    tr->len += (size_t)n;
}

static void trace_cb(void *arg)
{
    tracer *t = arg;
    trace_add(t->tr, "cb", t->id, 0);
}

static int tracer_fn(void *arg)
{
    tracer *t = arg;
    for (int k = 0; k < 6; k++) {
        trace_add(t->tr, "t", t->id, k);
        if (k % 3 == 0) {
            assert_int_equal(tide_sleep(0), 0);
        } else if (k % 3 == 1) {
            assert_int_equal(tide_sleep((t->id * 7 + k) % 3), 0);
        } else {
            assert_int_equal(tide_lock_acquire(&t->tr->lock), 0);
            assert_int_equal(tide_sleep(0), 0);
            trace_add(t->tr, "l", t->id, k);
            assert_int_equal(tide_lock_release(&t->tr->lock), 0);
            assert_int_equal(tide_call_soon(tide_loop_current(), trace_cb, t), 0);
        }
    }
    return 0;
}

/* Runs the traced workload on a new loop (seed < 0: none set; env: what
 * TIDE_SEED gave is kept). */
static void run_trace(trace *tr, int64_t seed, int set)
{
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    tracer tc[NTRACE];
    tide_task *t[NTRACE];
    memset(tr, 0, sizeof *tr);
    assert_int_equal(tide_lock_init(&tr->lock), 0);
    if (set)
        assert_int_equal(tide_loop_set_seed(loop, seed), 0);
    assert_int_equal(tide_loop_seed(loop), seed < 0 ? -1 : seed);
    for (int i = 0; i < NTRACE; i++) {
        tc[i].tr = tr;
        tc[i].id = i;
        t[i] = spawn(loop, tracer_fn, &tc[i]);
    }
    for (int i = 0; i < NTRACE; i++)
        assert_int_equal(tide_loop_run_until_complete(loop, t[i]), 0);
    tide_loop_free(loop);
}

static void test_seed_same_trace(void **state)
{
    (void)state;
    static trace first, again, fifo, other;
    int runs = tt_under_valgrind() ? 20 : 100;

    unsetenv("TIDE_SEED");
    run_trace(&first, 42, 1);
    for (int i = 1; i < runs; i++) {
        run_trace(&again, 42, 1);
        assert_int_equal(again.len, first.len);
        assert_memory_equal(again.buf, first.buf, first.len); /* byte-identical */
    }
    run_trace(&fifo, -1, 0);
    assert_true(fifo.len != first.len || memcmp(fifo.buf, first.buf, first.len) != 0);
    /* the FIFO order is itself deterministic */
    run_trace(&again, -1, 1);
    assert_int_equal(again.len, fifo.len);
    assert_memory_equal(again.buf, fifo.buf, fifo.len);
    /* other seeds give other orders (all ten distinct from seed 42) */
    for (int64_t sd = 0; sd < 10; sd++) {
        run_trace(&other, sd, 1);
        assert_true(other.len != first.len || memcmp(other.buf, first.buf, first.len) != 0);
    }
}

static void test_seed_env(void **state)
{
    (void)state;
    static trace want, got;
    tide_loop *loop;

    unsetenv("TIDE_SEED");
    run_trace(&want, 7, 1);
    assert_int_equal(setenv("TIDE_SEED", "7", 1), 0);
    run_trace(&got, 7, 0); /* seeded by the environment */
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.buf, want.buf, want.len);

    assert_int_equal(setenv("TIDE_SEED", "seven", 1), 0); /* refused: FIFO */
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_seed(loop), -1);
    tide_loop_free(loop);
    assert_int_equal(setenv("TIDE_SEED", "-3", 1), 0);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_seed(loop), -1);
    assert_int_equal(tide_loop_set_seed(loop, 9), 0);
    assert_int_equal(tide_loop_seed(loop), 9);
    assert_int_equal(tide_loop_set_seed(loop, -1), 0);
    assert_int_equal(tide_loop_seed(loop), -1);
    tide_loop_free(loop);
    unsetenv("TIDE_SEED");
}

/* ------------------------------------ an hour across 10 000 tasks, fast */

typedef struct hour {
    tide_queue *q;
    tide_lock lock;
    tide_event never;
    long timeouts;
    long done;
} hour;

static hour H;

static int hour_child(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg);
}

static int hour_fn(void *arg)
{
    int id = (int)(intptr_t)arg;
    int64_t end = 3600 * 1000;
    int k = 0;
    tide_scope sc;
    void *item;

    while (tide_now() < end) {
        int64_t d = 1000 + (id * 7919 + k * 104729) % 600000; /* 1 s .. 10 min */
        switch (k++ % 5) {
        case 0:
            assert_int_equal(tide_sleep(d), 0);
            break;
        case 1: {
            tide_task *c;
            assert_int_equal(tide_create_task(&c, hour_child, (void *)(intptr_t)(d * 2)), 0);
            if (tide_wait_for(c, d) == -ETIMEDOUT)
                H.timeouts++;
            break;
        }
        case 2:
            assert_int_equal(tide_timeout_begin(&sc, d), 0);
            if (tide_queue_get(H.q, &item) == -ETIMEDOUT)
                H.timeouts++;
            (void)tide_timeout_end(&sc);
            break;
        case 3:
            assert_int_equal(tide_timeout_begin(&sc, d), 0);
            if (tide_event_wait(&H.never) == -ETIMEDOUT)
                H.timeouts++;
            (void)tide_timeout_end(&sc);
            break;
        default:
            assert_int_equal(tide_timeout_begin(&sc, d), 0);
            if (tide_lock_acquire(&H.lock) == 0) {
                (void)tide_sleep(d / 2);
                assert_int_equal(tide_lock_release(&H.lock), 0);
            } else {
                H.timeouts++;
            }
            (void)tide_timeout_end(&sc);
            break;
        }
    }
    H.done++;
    return 0;
}

static int make_queue_fn(void *arg)
{
    (void)arg;
    return tide_queue_new(&H.q, NULL);
}

static void test_hour_of_timeouts(void **state)
{
    (void)state;
    /* fewer under valgrind (slow) and TSan (a fiber mapping per live task) */
    int n = tt_under_valgrind() ? 500 : tt_under_tsan() ? 2000 : 10000;
#ifdef TT_ASAN
    n = 2000; /* ASan: every stack switch is annotated */
#endif
    tide_loop *loop = vloop(TIDE_VCLOCK_AUTOJUMP);
    tide_task_opts o = {.name = NULL, .stack_size = TIDE_MIN_STACK_SIZE};
    tide_task *t;

    memset(&H, 0, sizeof H);
    assert_int_equal(tide_loop_run_until_complete(loop, spawn(loop, make_queue_fn, NULL)), 0);
    assert_int_equal(tide_lock_init(&H.lock), 0);
    assert_int_equal(tide_event_init(&H.never), 0);
    int64_t w0 = wall_ns();
    for (int i = 0; i < n; i++) {
        assert_int_equal(tide_create_task_ex(&t, loop, hour_fn, (void *)(intptr_t)i, &o), 0);
        assert_int_equal(tide_detach(t), 0);
    }
    assert_int_equal(tide_loop_run(loop), 0);
    int64_t wall = wall_ns() - w0;
    assert_int_equal(H.done, n);
    assert_true(H.timeouts > n);
    assert_true(tide_vclock_now(loop) >= 3600000 * MS);
    fprintf(stderr, "vclock: %d tasks, %.1f min of virtual time, %ld timeouts, in %.1f ms of wall time\n",
            n, tide_vclock_now(loop) / 6e10, H.timeouts, wall / 1e6);
    tide_queue_free(H.q);
    tide_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleeps_jump_in_order),
        cmocka_unit_test(test_timeout_scope),
        cmocka_unit_test(test_wait_for),
        cmocka_unit_test(test_group_timeout),
        cmocka_unit_test(test_sync_timeouts),
        cmocka_unit_test(test_call_later),
        cmocka_unit_test(test_autojump_blocked_by_pool_job),
        cmocka_unit_test(test_autojump_blocked_by_fd_wait),
        cmocka_unit_test(test_autojump_held_by_threadsafe_call),
        cmocka_unit_test(test_autojump_blocked_by_signal_wait),
        cmocka_unit_test(test_advance_cancelled),
        cmocka_unit_test(test_manual_advance),
        cmocka_unit_test(test_embed_run_once),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_seed_same_trace),
        cmocka_unit_test(test_seed_env),
        cmocka_unit_test(test_hour_of_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
