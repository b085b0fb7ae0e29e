/*
 * One loop per core (tide/multi.h): N loops running the same main,
 * cross-loop calls with results and errors, cancellation of a caller while
 * its call runs remotely, shutdown of every loop (tide_multi_stop), a port
 * shared through SO_REUSEPORT, and bad arguments.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#define NLOOPS 3

/* ------------------------------------------------------------ helpers */

static int ran[NLOOPS];
static int fail_line; /* first failed check inside a loop (cmocka asserts are for the main thread) */

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            __atomic_compare_exchange_n(&fail_line, &(int){0}, __LINE__, 0, __ATOMIC_SEQ_CST, \
                                        __ATOMIC_SEQ_CST);                                     \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)

/* Runs on the target loop: returns its index * 1000 + the argument. */
static int where(void *arg)
{
    int idx = tide_multi_index();
    return idx * 1000 + (int)(intptr_t)arg;
}

static int fails(void *arg)
{
    (void)arg;
    return -ENOENT;
}

static int sleeps_then(void *arg)
{
    int rc = tide_sleep(5);
    return rc < 0 ? rc : (int)(intptr_t)arg;
}

/* ------------------------------------------------------------ tests */

static int main_index(void *arg)
{
    int idx = tide_multi_index();
    (void)arg;
    CHECK(idx >= 0 && idx < NLOOPS);
    CHECK(tide_multi_count() == NLOOPS);
    __atomic_add_fetch(&ran[idx], 1, __ATOMIC_SEQ_CST);
    return idx == 1 ? 7 : 0;
}

static void test_runs_n_loops(void **state)
{
    tide_multi_opts o;
    (void)state;
    memset(ran, 0, sizeof ran);
    fail_line = 0;
    tide_multi_opts_init(&o);
    o.loops = NLOOPS;
    assert_int_equal(tide_multi_run(main_index, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
    for (int i = 0; i < NLOOPS; i++)
        assert_int_equal(ran[i], 1);
    /* Outside a run. */
    assert_int_equal(tide_multi_index(), -EPERM);
    assert_int_equal(tide_multi_count(), -EPERM);
}

static int main_fail_on_2(void *arg)
{
    (void)arg;
    return tide_multi_index() == 2 ? -EIO : tide_multi_index() == 1 ? -ENOSPC : 0;
}

static void test_first_failure_by_index(void **state)
{
    tide_multi_opts o;
    (void)state;
    tide_multi_opts_init(&o);
    o.loops = NLOOPS;
    assert_int_equal(tide_multi_run(main_fail_on_2, NULL, &o), -ENOSPC);
}

static void test_default_is_allowed_cpus(void **state)
{
    (void)state;
    memset(ran, 0, sizeof ran);
    fail_line = 0;
    /* NULL options: one loop per allowed CPU (this machine's count may be
     * less than NLOOPS; main_index checks the count, so only count here). */
    assert_int_equal(tide_multi_run(where, NULL, NULL), 0);
}

static int main_calls(void *arg)
{
    int idx = tide_multi_index(), n = tide_multi_count();
    (void)arg;
    for (int round = 0; round < 50; round++) {
        for (int t = 0; t < n; t++) {
            int rc = tide_multi_call((unsigned)t, where, (void *)(intptr_t)(round + idx));
            CHECK(rc == t * 1000 + round + idx);
        }
    }
    CHECK(tide_multi_call((unsigned)((idx + 1) % n), fails, NULL) == -ENOENT);
    CHECK(tide_multi_call((unsigned)n, where, NULL) == -EINVAL);
    CHECK(tide_multi_call(0, NULL, NULL) == -EINVAL);
    return 0;
}

static void test_calls(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    tide_multi_opts_init(&o);
    o.loops = NLOOPS;
    assert_int_equal(tide_multi_run(main_calls, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
}

/* Many tasks per loop calling at once: the calls of one step go in one
 * batch. */
static int caller_task(void *arg)
{
    int target = (int)(intptr_t)arg;
    for (int i = 0; i < 20; i++) {
        int rc = tide_multi_call((unsigned)target, sleeps_then, (void *)(intptr_t)i);
        CHECK(rc == i);
    }
    return 0;
}

static int main_many(void *arg)
{
    tide_task *ts[16];
    int n = tide_multi_count(), idx = tide_multi_index();
    (void)arg;
    for (int i = 0; i < 16; i++)
        CHECK(tide_create_task(&ts[i], caller_task, (void *)(intptr_t)((idx + 1 + i) % n)) == 0);
    CHECK(tide_gather(ts, 16, NULL) == 0);
    return 0;
}

static void test_many_concurrent_calls(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    tide_multi_opts_init(&o);
    o.loops = 2;
    assert_int_equal(tide_multi_run(main_many, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
}

/* A caller cancelled while its call runs on another loop: the remote task
 * is cancelled, the caller gets -ETIMEDOUT after it ended.  The caller's
 * deadline is armed only once the remote task runs: armed before, it could
 * expire (a loaded machine, a sanitizer) before loop 1 took the call, and
 * the remote task would then be cancelled before it started, which is
 * right but not what this test is about. */
static int remote_started, remote_cancelled;

static int long_remote(void *arg)
{
    int rc;
    (void)arg;
    __atomic_store_n(&remote_started, 1, __ATOMIC_SEQ_CST);
    rc = tide_sleep(10000);
    if (rc == -ECANCELED)
        __atomic_store_n(&remote_cancelled, 1, __ATOMIC_SEQ_CST);
    return rc;
}

typedef struct cancel_caller {
    tide_scope *scope;
    int rc, remote_ended_first;
} cancel_caller;

static int timed_caller(void *arg)
{
    cancel_caller *cc = arg;
    tide_scope s;
    tide_deadline_begin(&s, INT64_MAX); /* main sets the deadline */
    cc->scope = &s;
    cc->rc = tide_multi_call(1, long_remote, NULL);
    cc->remote_ended_first = __atomic_load_n(&remote_cancelled, __ATOMIC_SEQ_CST);
    cc->scope = NULL;
    tide_timeout_end(&s);
    return 0;
}

static int main_cancel(void *arg)
{
    cancel_caller cc = {NULL, 0, 0};
    tide_task *t;
    int64_t t0;
    int started, rs_rc = -1, aw;
    (void)arg;
    if (tide_multi_index() != 0)
        return 0;
    CHECK(tide_create_task(&t, timed_caller, &cc) == 0);
    t0 = tide_now();
    while (!(started = __atomic_load_n(&remote_started, __ATOMIC_SEQ_CST)) &&
           tide_now() - t0 < 20000)
        tide_sleep(1);
    t0 = tide_now();
    if (started && cc.scope)
        rs_rc = tide_scope_reschedule(cc.scope, t0 + 50);
    if (rs_rc != 0)
        tide_cancel(t); /* the checks below fail; t must not outlive cc */
    aw = tide_await(t);
    CHECK(started == 1);
    CHECK(rs_rc == 0);
    CHECK(aw == 0);
    CHECK(cc.rc == -ETIMEDOUT);
    CHECK(tide_now() - t0 >= 49);
    CHECK(cc.remote_ended_first == 1);
    /* Already cancelled: refused at once. */
    tide_cancel(tide_current_task());
    CHECK(tide_multi_call(1, where, NULL) == -ECANCELED);
    return 0;
}

static void test_cancel_caller(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    remote_started = remote_cancelled = 0;
    tide_multi_opts_init(&o);
    o.loops = 2;
    assert_int_equal(tide_multi_run(main_cancel, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
}

/* tide_multi_stop cancels every main; a loop whose main returned early
 * still answers calls until the others are done. */
static int main_stop(void *arg)
{
    tide_event never;
    int idx = tide_multi_index(), rc;
    (void)arg;
    if (idx == 2)
        return 0; /* returns at once, still serves calls */
    if (idx == 1) {
        CHECK(tide_sleep(20) == 0);
        CHECK(tide_multi_call(2, where, (void *)5) == 2005);
        CHECK(tide_multi_stop() == 0);
    }
    tide_event_init(&never);
    rc = tide_event_wait(&never);
    CHECK(rc == -ECANCELED);
    return 0;
}

static void test_stop(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    assert_int_equal(tide_multi_stop(), -ESRCH);
    tide_multi_opts_init(&o);
    o.loops = NLOOPS;
    assert_int_equal(tide_multi_run(main_stop, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
}

/* A stop that reaches a loop before its main started (loop 0 stops at
 * once; the other threads have not run yet): that main still runs, starts
 * cancelled, and the run ends.  It used to cancel the loop's task before it
 * started, so the main never ran, never counted as returned, and every
 * other loop waited for it forever. */
static int early_started[8], early_cancelled[8];

static int main_stop_at_once(void *arg)
{
    int idx = tide_multi_index();
    (void)arg;
    __atomic_add_fetch(&early_started[idx], 1, __ATOMIC_SEQ_CST);
    if (idx == 0)
        CHECK(tide_multi_stop() == 0);
    CHECK(tide_sleep(100000) == -ECANCELED);
    __atomic_add_fetch(&early_cancelled[idx], 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void test_stop_before_mains_start(void **state)
{
    tide_multi_opts o;
    int runs = tt_under_valgrind() ? 3 : 20;
    (void)state;
    fail_line = 0;
    memset(early_started, 0, sizeof early_started);
    memset(early_cancelled, 0, sizeof early_cancelled);
    tide_multi_opts_init(&o);
    o.loops = 8;
    for (int r = 0; r < runs; r++)
        assert_int_equal(tide_multi_run(main_stop_at_once, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(early_started[i], runs);
        assert_int_equal(early_cancelled[i], runs);
    }
}

/* After every main returned, calls are refused. */
static int late_result = 1;

static int late_caller(void *arg)
{
    (void)arg;
    /* Runs while the loop ends (its main returned): every main is done. */
    tide_sleep(30);
    late_result = tide_multi_call(0, where, NULL);
    return 0;
}

static int main_late(void *arg)
{
    tide_task *t;
    (void)arg;
    if (tide_multi_index() == 1) {
        CHECK(tide_create_task(&t, late_caller, NULL) == 0);
        CHECK(tide_detach(t) == 0);
    }
    return 0;
}

static void test_shutdown_refuses_calls(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    late_result = 1;
    tide_multi_opts_init(&o);
    o.loops = 2;
    assert_int_equal(tide_multi_run(main_late, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
    /* The late task was cancelled at the loop's end (its sleep returned
     * -ECANCELED) and then refused, or ran after the close: either way
     * never a call into a finished loop. */
    if (late_result != -ESHUTDOWN) fprintf(stderr, "late %d\n", late_result);
    assert_true(late_result == -ESHUTDOWN);
}

/* Servers of every loop share one port (reuseport).  Loop 0 connects only
 * once every loop listens (a fixed sleep is no promise on a loaded machine:
 * loop 0 could then stop a loop that had not yet started its server). */
static int shared_port, listening;
static int echo_once(tide_stream *s, void *arg)
{
    char c;
    (void)arg;
    if (tide_stream_read(s, &c, 1) == 1) {
        c = (char)('0' + tide_multi_index());
        tide_stream_write(s, &c, 1);
        tide_stream_flush(s);
    }
    return 0;
}

static int reuseport_body(void)
{
    tide_server_opts so;
    tide_server *srv;
    int idx = tide_multi_index(), rc;
    tide_server_opts_init(&so);
    so.reuseport = 1;
    if (idx == 0) {
        CHECK(tide_start_server("127.0.0.1", 0, echo_once, NULL, &so, &srv) == 0);
        __atomic_store_n(&shared_port, tide_server_port(srv), __ATOMIC_SEQ_CST);
    } else {
        while (!__atomic_load_n(&shared_port, __ATOMIC_SEQ_CST))
            CHECK(tide_sleep(1) == 0);
        CHECK(tide_start_server("127.0.0.1", shared_port, echo_once, NULL, &so, &srv) == 0);
    }
    __atomic_add_fetch(&listening, 1, __ATOMIC_SEQ_CST);
    /* Loop 0 connects a few times; every answer names a loop. */
    if (idx == 0) {
        while (__atomic_load_n(&listening, __ATOMIC_SEQ_CST) < tide_multi_count())
            CHECK(tide_sleep(1) == 0);
        for (int i = 0; i < 8; i++) {
            tide_stream *c;
            char x = 'x';
            CHECK(tide_open_connection("127.0.0.1", shared_port, &c) == 0);
            CHECK(tide_stream_write(c, &x, 1) == 1);
            CHECK(tide_stream_read(c, &x, 1) == 1);
            CHECK(x >= '0' && x < '0' + tide_multi_count());
            tide_stream_close(c);
        }
        CHECK(tide_multi_stop() == 0);
    }
    rc = tide_sleep(100000);
    CHECK(rc == -ECANCELED);
    {
        tide_scope sh;
        tide_shield_begin(&sh);
        rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
        tide_shield_end(&sh);
    }
    CHECK(rc == 0);
    return 0;
}

/* A failed check stops the others too: they would wait forever. */
static int main_reuseport(void *arg)
{
    int rc = reuseport_body();
    (void)arg;
    if (rc < 0)
        (void)tide_multi_stop();
    return rc;
}

static void test_reuseport(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    shared_port = listening = 0;
    tide_multi_opts_init(&o);
    o.loops = 2;
    o.pin = 1;
    {
        cpu_set_t before, after;
        assert_int_equal(sched_getaffinity(0, sizeof before, &before), 0);
        assert_int_equal(tide_multi_run(main_reuseport, NULL, &o), 0);
        assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
        assert_true(CPU_EQUAL(&before, &after)); /* the caller's thread is unpinned again */
    }
    assert_int_equal(fail_line, 0);
}

/* Objects of one loop are refused on another: only the message crosses. */
static int touch_foreign(void *arg)
{
    tide_future *f = arg;
    CHECK(tide_future_set_result(f, (void *)1) == -EPERM);
    return 5;
}

static int main_foreign(void *arg)
{
    tide_future *f;
    int rc;
    (void)arg;
    if (tide_multi_index() != 0)
        return 0;
    CHECK(tide_future_new(&f) == 0);
    rc = tide_multi_call(1, touch_foreign, f);
    CHECK(rc == 5);
    CHECK(tide_future_set_result(f, (void *)2) == 0); /* at home it works */
    tide_future_free(f);
    return 0;
}

static void test_foreign_objects_refused(void **state)
{
    tide_multi_opts o;
    (void)state;
    fail_line = 0;
    tide_multi_opts_init(&o);
    o.loops = 2;
    assert_int_equal(tide_multi_run(main_foreign, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
}

/* Bad arguments and misuse. */
static int inner_run(void *arg)
{
    (void)arg;
    /* Not from inside a loop. */
    CHECK(tide_multi_run(where, NULL, NULL) == -EBUSY);
    return 0;
}

static int plain_task_call(void *arg)
{
    (void)arg;
    /* In a loop of tide_run, not a multi run. */
    return tide_multi_call(0, where, NULL);
}

static void test_bad_args(void **state)
{
    tide_multi_opts o;
    (void)state;
    assert_int_equal(tide_multi_run(NULL, NULL, NULL), -EINVAL);
    tide_multi_opts_init(&o);
    o.loops = TIDE_MULTI_MAX_LOOPS + 1;
    assert_int_equal(tide_multi_run(where, NULL, &o), -EINVAL);
    assert_int_equal(tide_multi_call(0, where, NULL), -EPERM);
    assert_int_equal(tide_run(plain_task_call, NULL), -EPERM);
    fail_line = 0;
    o.loops = 1;
    assert_int_equal(tide_multi_run(inner_run, NULL, &o), 0);
    assert_int_equal(fail_line, 0);
    tide_multi_opts_init(NULL); /* ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_n_loops),
        cmocka_unit_test(test_first_failure_by_index),
        cmocka_unit_test(test_default_is_allowed_cpus),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_many_concurrent_calls),
        cmocka_unit_test(test_cancel_caller),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stop_before_mains_start),
        cmocka_unit_test(test_shutdown_refuses_calls),
        cmocka_unit_test(test_reuseport),
        cmocka_unit_test(test_foreign_objects_refused),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
