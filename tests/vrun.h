/*
 * tt_vrun: tide_run on virtual time, for the tests whose waits are timers.
 * The loop's clock is virtual with autojump: a sleep or a timeout of the
 * test ends as soon as everything waits, exactly on its deadline, so the
 * test is fast and its times exact (tide_now() differences are what the
 * code asked for).  Real I/O and worker-pool jobs still wait for real.
 * TT_REAL_TIME=1 in the environment runs them on the real clock instead,
 * to check that both give the same verdicts.
 */
#ifndef TIDE_TEST_VRUN_H
#define TIDE_TEST_VRUN_H

#include <stdlib.h>

#include "tide.h"

static inline int tt_real_time(void)
{
    const char *e = getenv("TT_REAL_TIME");
    return e && *e && *e != '0';
}

static inline int tt_vrun(tide_fn main_fn, void *arg)
{
    tide_task_opts o = {.name = "main", .stack_size = 0};
    tide_loop *loop;
    tide_task *t;
    int rc;

    if (tt_real_time())
        return tide_run(main_fn, arg);
    rc = tide_loop_new(&loop);
    if (rc < 0)
        return rc;
    rc = tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP);
    if (rc == 0)
        rc = tide_create_task_ex(&t, loop, main_fn, arg, &o);
    if (rc == 0)
        rc = tide_loop_run_until_complete(loop, t);
    tide_loop_free(loop);
    return rc;
}

/* An elapsed time (ms) the code asked to be want: exactly want on virtual
 * time; at least want - 1 (tide_now()'s ms truncation) on the real clock.
 * Needs <cmocka.h>. */
#define tt_assert_elapsed(got, want)                                                          \
    do {                                                                                      \
        if (tt_real_time())                                                                   \
            assert_true((got) >= (want)-1);                                                   \
        else                                                                                  \
            assert_int_equal((got), (want));                                                  \
    } while (0)

#endif
