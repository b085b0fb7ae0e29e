/*
 * Tests of the worker pool: tide_to_thread.
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

/* ---------------------------------------------------------- basic result */

typedef struct job {
    pthread_t ran_on;
    int ret;
    int usleep_us;
    int calls;
    int finished;          /* atomic */
    int hold;              /* the job waits until release is set */
    int release;           /* atomic */
    int64_t t_finished;
    tide_loop *loop_seen;
    tide_task *task_seen;
} job;

static int job_fn(void *arg)
{
    job *j = arg;
    j->ran_on = pthread_self();
    j->loop_seen = tide_loop_current();
    j->task_seen = tide_current_task();
    __atomic_fetch_add(&j->calls, 1, __ATOMIC_RELAXED);
    if (j->usleep_us)
        usleep((useconds_t)j->usleep_us);
    while (j->hold && !__atomic_load_n(&j->release, __ATOMIC_ACQUIRE))
        usleep(1000);
    j->t_finished = tide_now();
    __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
    return j->ret;
}

typedef struct p1 {
    job a, b;
    int rc_a, rc_b, rc_null;
    pthread_t loop_thread;
} p1;

static int basic_main(void *arg)
{
    p1 *s = arg;
    s->loop_thread = pthread_self();
    s->a.ret = 42;
    s->a.loop_seen = (tide_loop *)s;
    s->a.task_seen = (tide_task *)s;
    s->rc_a = tide_to_thread(job_fn, &s->a);
    s->b.ret = -EIO;
    s->b.usleep_us = 10000;
    s->rc_b = tide_to_thread(job_fn, &s->b);
    s->rc_null = tide_to_thread(NULL, NULL);
    return 0;
}

static void test_to_thread_result(void **state)
{
    (void)state;
    p1 *s = calloc(1, sizeof *s);
    assert_int_equal(tide_run(basic_main, s), 0);
    assert_int_equal(s->rc_a, 42);
    assert_int_equal(s->rc_b, -EIO);
    assert_int_equal(s->rc_null, -EINVAL);
    assert_int_equal(s->a.calls, 1);
    assert_int_equal(s->b.calls, 1);
    assert_false(pthread_equal(s->a.ran_on, s->loop_thread));
    assert_false(pthread_equal(s->b.ran_on, s->loop_thread));
    /* a worker thread runs no loop and no task */
    assert_null(s->a.loop_seen);
    assert_null(s->a.task_seen);
    free(s);
}

/* ----------------------------------------------------- many concurrent */

#define NJOBS 100

static int g_running, g_max_running;

static int conc_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    int now = __atomic_add_fetch(&g_running, 1, __ATOMIC_SEQ_CST);
    int m = __atomic_load_n(&g_max_running, __ATOMIC_SEQ_CST);
    while (now > m && !__atomic_compare_exchange_n(&g_max_running, &m, now, 0, __ATOMIC_SEQ_CST,
                                                   __ATOMIC_SEQ_CST))
        ;
    usleep(2000);
    __atomic_sub_fetch(&g_running, 1, __ATOMIC_SEQ_CST);
    return i * 2;
}

static int conc_task(void *arg)
{
    return tide_to_thread(conc_fn, arg);
}

typedef struct p2 {
    int results[NJOBS];
    int rc;
    int64_t elapsed;
} p2;

static int conc_main(void *arg)
{
    p2 *s = arg;
    tide_task *t[NJOBS];
    int64_t t0 = tide_now();
    for (int i = 0; i < NJOBS; i++)
        tide_create_task(&t[i], conc_task, (void *)(intptr_t)i);
    s->rc = tide_gather(t, NJOBS, s->results);
    s->elapsed = tide_now() - t0;
    return 0;
}

static void test_many_concurrent(void **state)
{
    (void)state;
    p2 s;
    memset(&s, 0, sizeof s);
    g_running = g_max_running = 0;
    assert_int_equal(tide_run(conc_main, &s), 0);
    assert_int_equal(s.rc, 0);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(s.results[i], i * 2);
    /* the jobs ran in parallel on the pool, never more than its size */
    const char *env = getenv("TIDE_THREADPOOL_SIZE");
    int size = env ? atoi(env) : 4;
    assert_true(g_max_running >= 2 || size == 1);
    assert_true(g_max_running <= size);
}

/* ---------------------------------------- cancel while waiting in a job */

typedef struct p3 {
    job *j; /* outlives tide_run: fn may still run after the task gave up */
    int rc;
    int64_t t_call, t_returned, t_cancel;
    int finished_when_returned;
} p3;

static int slow_caller(void *arg)
{
    p3 *s = arg;
    s->t_call = tide_now();
    s->rc = tide_to_thread(job_fn, s->j);
    s->t_returned = tide_now();
    s->finished_when_returned = __atomic_load_n(&s->j->finished, __ATOMIC_ACQUIRE);
    return s->rc;
}

static int cancel_job_main(void *arg)
{
    p3 *s = arg;
    tide_task *t;
    tide_create_task(&t, slow_caller, s);
    tide_sleep(20);
    s->t_cancel = tide_now();
    tide_cancel(t);
    int rc = tide_await(t);
    /* the job ends only now: the caller surely returned before it did */
    __atomic_store_n(&s->j->release, 1, __ATOMIC_RELEASE);
    return rc;
}

static void test_cancel_while_in_thread(void **state)
{
    (void)state;
    p3 s;
    memset(&s, 0, sizeof s);
    s.j = calloc(1, sizeof *s.j);
    s.j->hold = 1; /* until main released it, after the caller returned */
    s.j->usleep_us = 30 * 1000;
    s.j->ret = 7;
    assert_int_equal(tide_run(cancel_job_main, &s), -ECANCELED);
    assert_int_equal(s.rc, -ECANCELED);
    /* returned at once, before the job ended (a job of a fixed 300 ms and
     * "returned within 100 ms" raced with the scheduler of a loaded machine) */
    assert_int_equal(s.finished_when_returned, 0);
    assert_true(s.t_returned >= s.t_cancel);
    /* tide_run waited for the job the loop started */
    assert_int_equal(__atomic_load_n(&s.j->finished, __ATOMIC_ACQUIRE), 1);
    assert_int_equal(s.j->calls, 1);
    free(s.j);
}

/* ------------------------------------------------------ timeout scope */

typedef struct p4 {
    job *j;
    int rc, rc_end;
    int finished_at_return;
    int64_t elapsed;
} p4;

/* The job runs until main releases it, after the timeout returned: the
 * wait ended before the job did, whatever the machine's load (a job of a
 * fixed 200 ms and "returned within 150 ms" was a race with the scheduler). */
static int timeout_job_main(void *arg)
{
    p4 *s = arg;
    tide_scope sc;
    int64_t t0 = tide_now();
    tide_timeout_begin(&sc, 30);
    s->rc = tide_to_thread(job_fn, s->j);
    s->elapsed = tide_now() - t0;
    s->finished_at_return = __atomic_load_n(&s->j->finished, __ATOMIC_ACQUIRE);
    s->rc_end = tide_timeout_end(&sc);
    __atomic_store_n(&s->j->release, 1, __ATOMIC_RELEASE);
    return 0;
}

static void test_timeout_around_to_thread(void **state)
{
    (void)state;
    p4 s;
    memset(&s, 0, sizeof s);
    s.j = calloc(1, sizeof *s.j);
    s.j->hold = 1;
    assert_int_equal(tide_run(timeout_job_main, &s), 0);
    assert_int_equal(s.rc, -ETIMEDOUT);
    assert_int_equal(s.rc_end, -ETIMEDOUT);
    assert_true(s.elapsed >= 29);
    assert_int_equal(s.finished_at_return, 0);
    assert_int_equal(__atomic_load_n(&s.j->finished, __ATOMIC_ACQUIRE), 1);
    free(s.j);
}

/* ------------------------- a job keeps tide_loop_run alive until it ends */

typedef struct p5 {
    job j;
    int rc;
    int after;
} p5;

static int detached_job_task(void *arg)
{
    p5 *s = arg;
    s->rc = tide_to_thread(job_fn, &s->j);
    s->after = 1;
    return 0;
}

static void test_loop_run_waits_for_job(void **state)
{
    (void)state;
    p5 s;
    memset(&s, 0, sizeof s);
    s.j.usleep_us = 50 * 1000;
    s.j.ret = 3;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    tide_task *t;
    assert_int_equal(tide_create_task_ex(&t, loop, detached_job_task, &s, NULL), 0);
    assert_int_equal(tide_detach(t), 0);
    int64_t t0 = tide_now();
    assert_int_equal(tide_loop_run(loop), 0);
    assert_true(tide_now() - t0 >= 45);
    assert_int_equal(s.after, 1);
    assert_int_equal(s.rc, 3);
    tide_loop_free(loop);
}

/* ----------------------------- several tide_runs, each using the pool */

static int reuse_main(void *arg)
{
    job *j = arg;
    j->ret = 11;
    return tide_to_thread(job_fn, j);
}

static void test_pool_across_runs(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        job j;
        memset(&j, 0, sizeof j);
        assert_int_equal(tide_run(reuse_main, &j), 11);
        assert_int_equal(j.calls, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_thread_result),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_cancel_while_in_thread),
        cmocka_unit_test(test_timeout_around_to_thread),
        cmocka_unit_test(test_loop_run_waits_for_job),
        cmocka_unit_test(test_pool_across_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
