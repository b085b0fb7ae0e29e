/*
 * Regression tests for the bugs found while chasing rare CI failures
 * (docs/flaky.md): each test is the scenario that went wrong, made
 * deterministic where the original needed a loaded machine to happen.
 * (The multi-loop stop race lives in test_multi.c with the other
 * tide_multi tests.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "tide.h"
#include "vrun.h"

/* tide_scope_reschedule on the scope of a task that waits with no deadline
 * at all (an event, no timeout armed): the reschedule arms the task's
 * timer.  A task that had never waited with a deadline before had a timer
 * with no fire function, and the loop called NULL when it expired. */
typedef struct resched {
    tide_event ev;
    tide_scope *scope;
    int wait_rc, end_rc;
    int64_t woke_at;
} resched;

static int untimed_waiter(void *arg)
{
    resched *r = arg;
    tide_scope s;
    tide_deadline_begin(&s, INT64_MAX); /* no deadline yet */
    r->scope = &s;
    r->wait_rc = tide_event_wait(&r->ev);
    r->woke_at = tide_now();
    r->scope = NULL;
    r->end_rc = tide_timeout_end(&s);
    return 0;
}

static int resched_main(void *arg)
{
    resched *r = arg;
    tide_task *t;
    int rc;
    tide_event_init(&r->ev);
    if (tide_create_task(&t, untimed_waiter, r) < 0)
        return -1;
    tide_sleep(5); /* the waiter waits on the event, no timer armed */
    if (!r->scope) {
        tide_cancel(t);
        tide_await(t);
        return -2;
    }
    rc = tide_scope_reschedule(r->scope, tide_now() + 10);
    if (rc < 0) {
        tide_cancel(t);
        tide_await(t);
        return rc;
    }
    return tide_await(t);
}

static void test_reschedule_untimed_wait(void **state)
{
    resched r;
    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(tt_vrun(resched_main, &r), 0);
    assert_int_equal(r.wait_rc, -ETIMEDOUT);
    assert_int_equal(r.end_rc, -ETIMEDOUT);
    tt_assert_elapsed(r.woke_at, 15);
}

/* The same, the deadline moved while the waiter waits in a second scope
 * nested inside the first (the timer is armed for the earliest). */
static int nested_waiter(void *arg)
{
    resched *r = arg;
    tide_scope outer, inner;
    tide_deadline_begin(&outer, INT64_MAX);
    tide_deadline_begin(&inner, INT64_MAX);
    r->scope = &outer;
    r->wait_rc = tide_event_wait(&r->ev);
    r->woke_at = tide_now();
    r->scope = NULL;
    (void)tide_timeout_end(&inner);
    r->end_rc = tide_timeout_end(&outer);
    return 0;
}

static int nested_main(void *arg)
{
    resched *r = arg;
    tide_task *t;
    int rc;
    tide_event_init(&r->ev);
    if (tide_create_task(&t, nested_waiter, r) < 0)
        return -1;
    tide_sleep(3);
    rc = r->scope ? tide_scope_reschedule(r->scope, tide_now() + 7) : -2;
    if (rc < 0) {
        tide_cancel(t);
        tide_await(t);
        return rc;
    }
    return tide_await(t);
}

static void test_reschedule_untimed_wait_nested(void **state)
{
    resched r;
    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(tt_vrun(nested_main, &r), 0);
    assert_int_equal(r.wait_rc, -ETIMEDOUT);
    assert_int_equal(r.end_rc, -ETIMEDOUT);
    tt_assert_elapsed(r.woke_at, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reschedule_untimed_wait),
        cmocka_unit_test(test_reschedule_untimed_wait_nested),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
