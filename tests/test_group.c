/*
 * Tests of structured concurrency (include/tide/sync.h): task groups,
 * tide_wait (FIRST_COMPLETED / FIRST_ERROR / ALL_COMPLETED, timeout),
 * as_completed (finish order; tasks already ended first) and tide_shield.
 *
 * Group cases: all succeed; one child fails (the siblings are cancelled and
 * see -ECANCELED, the group returns the error, tide_group_errors lists it);
 * several fail; the waiting parent is cancelled (every child has ended when
 * tide_group_wait returns -ECANCELED); children spawn more children into
 * the same group; a timeout scope around tide_group_wait; misuse.
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

#define NC 6

static void settle(void)
{
    for (int i = 0; i < 8; i++)
        tide_sleep(0);
}

typedef struct child {
    struct gs *s;
    int id;
    int64_t sleep_ms; /* how long it sleeps */
    int result;       /* what it returns after the sleep */
    int on_cancel;    /* what it returns if the sleep was cancelled (0: the error) */
    int rc_sleep;     /* what its sleep returned */
    int ended;
} child;

typedef struct gs {
    tide_group g;
    child c[NC + 4];
    tide_task *t[NC + 4];
    int rc[32];
    int errs[TIDE_GROUP_MAX_ERRORS + 2];
    int nended;
    int order[16];
    int norder;
    int64_t elapsed;
} gs;

static int child_fn(void *arg)
{
    child *c = arg;
    c->rc_sleep = tide_sleep(c->sleep_ms);
    c->ended = 1;
    c->s->nended++;
    if (c->rc_sleep < 0)
        return c->on_cancel ? c->on_cancel : c->rc_sleep;
    return c->result;
}

static void setup_child(gs *s, int i, int64_t ms, int result)
{
    s->c[i].s = s;
    s->c[i].id = i;
    s->c[i].sleep_ms = ms;
    s->c[i].result = result;
}

/* =============================================================== groups */

static int group_ok_main(void *arg)
{
    gs *s = arg;
    s->rc[0] = tide_group_init(&s->g);
    for (int i = 0; i < NC; i++) {
        setup_child(s, i, 5 + i, i);
        s->rc[1] |= tide_group_spawn(&s->g, child_fn, &s->c[i], NULL, &s->t[i]);
    }
    s->rc[2] = tide_group_wait(&s->g);
    s->rc[3] = s->nended;
    s->rc[4] = tide_group_errors(&s->g, s->errs, TT_ARRAY_LEN(s->errs));
    /* an empty group */
    tide_group g2;
    tide_group_init(&g2);
    s->rc[5] = tide_group_wait(&g2);
    return 0;
}

static void test_group_all_succeed(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_ok_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.rc[1], 0);
    assert_int_equal(s.rc[2], 0);
    assert_int_equal(s.rc[3], NC);
    assert_int_equal(s.rc[4], 0);
    assert_int_equal(s.rc[5], 0);
}

/* One child fails after 10 ms: the others (sleeping 1 s) are cancelled and
 * see -ECANCELED; the group returns the failure at once. */
static int group_fail_main(void *arg)
{
    gs *s = arg;
    int64_t t0 = tide_now();
    tide_group_init(&s->g);
    for (int i = 0; i < NC; i++) {
        setup_child(s, i, i == 2 ? 10 : 1000, 0);
        if (i == 2)
            s->c[i].result = -EIO;
        tide_group_spawn(&s->g, child_fn, &s->c[i], NULL, NULL);
    }
    s->rc[0] = tide_group_wait(&s->g);
    s->elapsed = tide_now() - t0;
    s->rc[1] = s->nended;
    s->rc[2] = tide_group_errors(&s->g, s->errs, TT_ARRAY_LEN(s->errs));
    s->rc[3] = tide_group_errors(&s->g, NULL, 0);
    return 0;
}

static void test_group_child_fails(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_fail_main, &s), 0);
    assert_int_equal(s.rc[0], -EIO);
    assert_int_equal(s.rc[1], NC);
    assert_int_equal(s.rc[2], 1);
    assert_int_equal(s.rc[3], 1);
    assert_int_equal(s.errs[0], -EIO);
    for (int i = 0; i < NC; i++)
        assert_int_equal(s.c[i].rc_sleep, i == 2 ? 0 : -ECANCELED);
    assert_true(s.elapsed < 500);
}

/* Several failures: the first is returned, all are listed in order; the
 * list is capped at TIDE_GROUP_MAX_ERRORS, the count is not.  A sibling that
 * fails while being cancelled counts too. */
static int group_many_fail_main(void *arg)
{
    gs *s = arg;
    tide_group_init(&s->g);
    setup_child(s, 0, 5, -EIO);
    setup_child(s, 1, 1000, 0);
    s->c[1].on_cancel = -EPIPE; /* fails during cleanup */
    tide_group_spawn(&s->g, child_fn, &s->c[0], NULL, NULL);
    tide_group_spawn(&s->g, child_fn, &s->c[1], NULL, NULL);
    s->rc[0] = tide_group_wait(&s->g);
    s->rc[1] = tide_group_errors(&s->g, s->errs, TT_ARRAY_LEN(s->errs));

    /* ten children that fail without ever suspending: all ten fail */
    tide_group g;
    int errs[TIDE_GROUP_MAX_ERRORS + 2];
    tide_group_init(&g);
    for (int i = 0; i < 10; i++) {
        setup_child(s, i, 0, -(100 + i)); /* tide_sleep(0): a yield */
        tide_group_spawn(&g, child_fn, &s->c[i], NULL, NULL);
    }
    s->rc[2] = tide_group_wait(&g);
    memset(errs, 0, sizeof errs);
    s->rc[3] = tide_group_errors(&g, errs, TT_ARRAY_LEN(errs));
    s->rc[4] = errs[0];
    s->rc[5] = errs[TIDE_GROUP_MAX_ERRORS - 1];
    s->rc[6] = errs[TIDE_GROUP_MAX_ERRORS];  /* not filled */
    s->rc[7] = tide_group_errors(&g, errs, 2);
    return 0;
}

static void test_group_several_failures(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_many_fail_main, &s), 0);
    assert_int_equal(s.rc[0], -EIO);
    assert_int_equal(s.rc[1], 2);
    assert_int_equal(s.errs[0], -EIO);
    assert_int_equal(s.errs[1], -EPIPE);
    /* all ten are past their yield when the first fails: cancelling a
     * task that does not suspend again cannot stop it, so all ten fail */
    assert_int_equal(s.rc[2], -100);
    assert_int_equal(s.rc[3], 10);
    assert_int_equal(s.rc[4], -100);
    assert_int_equal(s.rc[5], -(100 + TIDE_GROUP_MAX_ERRORS - 1));
    assert_int_equal(s.rc[6], 0);
    assert_int_equal(s.rc[7], s.rc[3]);
}

/* The task in tide_group_wait is cancelled: the group is cancelled, every
 * child has ended when tide_group_wait returns -ECANCELED -- even a child
 * that finishes its cleanup in a shield. */
static int shielded_child(void *arg)
{
    child *c = arg;
    tide_scope sh;
    c->rc_sleep = tide_sleep(1000);
    tide_shield_begin(&sh);
    tide_sleep(20); /* slow, uncancellable cleanup */
    tide_shield_end(&sh);
    c->ended = 1;
    c->s->nended++;
    return 0;
}

static int group_parent(void *arg)
{
    gs *s = arg;
    tide_group_init(&s->g);
    for (int i = 0; i < NC; i++) {
        setup_child(s, i, 1000, 0);
        tide_group_spawn(&s->g, i == 0 ? shielded_child : child_fn, &s->c[i], NULL, NULL);
    }
    s->rc[0] = tide_group_wait(&s->g);
    s->rc[1] = s->nended; /* all ended by now */
    s->rc[2] = tide_sleep(0); /* still cancelled */
    return s->rc[0];
}

static int group_cancel_parent_main(void *arg)
{
    gs *s = arg;
    tide_task *p;
    tide_create_task(&p, group_parent, s);
    tide_sleep(10);
    tide_cancel(p);
    s->rc[3] = tide_await(p);
    return 0;
}

static void test_group_parent_cancelled(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_cancel_parent_main, &s), 0);
    assert_int_equal(s.rc[0], -ECANCELED);
    assert_int_equal(s.rc[1], NC);
    assert_int_equal(s.rc[2], -ECANCELED);
    assert_int_equal(s.rc[3], -ECANCELED);
    for (int i = 0; i < NC; i++)
        assert_int_equal(s.c[i].rc_sleep, -ECANCELED);
}

/* Children spawn grandchildren into the same group (three levels): the
 * group waits for all of them. */
typedef struct tree {
    tide_group *g;
    int depth;
    int *count;
} tree;

static tree g_nodes[64];
static int g_nnodes;

static int tree_fn(void *arg)
{
    tree *n = arg;
    tide_sleep(1 + n->depth);
    if (n->depth < 3) {
        for (int i = 0; i < 3; i++) {
            tree *c = &g_nodes[g_nnodes++];
            c->g = n->g;
            c->depth = n->depth + 1;
            c->count = n->count;
            if (tide_group_spawn(n->g, tree_fn, c, NULL, NULL) < 0)
                return -EIO;
            tide_sleep(0);
        }
    }
    tide_sleep(2);
    (*n->count)++;
    return 0;
}

static int group_nested_main(void *arg)
{
    gs *s = arg;
    int count = 0;
    g_nnodes = 0;
    tide_group_init(&s->g);
    tree *root = &g_nodes[g_nnodes++];
    root->g = &s->g;
    root->depth = 0;
    root->count = &count;
    tide_group_spawn(&s->g, tree_fn, root, NULL, NULL);
    s->rc[0] = tide_group_wait(&s->g);
    s->rc[1] = count;
    s->rc[2] = g_nnodes;
    return 0;
}

static void test_group_nested_spawn(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_nested_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.rc[2], 1 + 3 + 9 + 27);
    assert_int_equal(s.rc[1], 40);
}

/* A timeout scope around tide_group_wait: -ETIMEDOUT, the children are
 * cancelled and have ended. */
static int group_timeout_main(void *arg)
{
    gs *s = arg;
    tide_scope sc;
    int64_t t0 = tide_now();
    tide_group_init(&s->g);
    for (int i = 0; i < NC; i++) {
        setup_child(s, i, i == 0 ? 5 : 1000, 0);
        tide_group_spawn(&s->g, child_fn, &s->c[i], NULL, NULL);
    }
    tide_timeout_begin(&sc, 30);
    s->rc[0] = tide_group_wait(&s->g);
    s->rc[1] = tide_timeout_end(&sc);
    s->elapsed = tide_now() - t0;
    s->rc[2] = s->nended;
    s->rc[3] = tide_group_errors(&s->g, NULL, 0);
    return 0;
}

static void test_group_timeout(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_timeout_main, &s), 0);
    assert_int_equal(s.rc[0], -ETIMEDOUT);
    assert_int_equal(s.rc[1], -ETIMEDOUT);
    assert_int_equal(s.rc[2], NC);
    assert_int_equal(s.rc[3], 0); /* cancellation is not a failure */
    assert_int_equal(s.c[0].rc_sleep, 0);
    for (int i = 1; i < NC; i++)
        assert_int_equal(s.c[i].rc_sleep, -ECANCELED);
    tt_assert_elapsed(s.elapsed, 30);
    assert_true(s.elapsed < 500);
}

/* tide_group_cancel: everyone cancelled, the group's result is 0. */
static int group_cancel_main(void *arg)
{
    gs *s = arg;
    tide_group_init(&s->g);
    for (int i = 0; i < 3; i++) {
        setup_child(s, i, 1000, 0);
        tide_group_spawn(&s->g, child_fn, &s->c[i], NULL, &s->t[i]);
    }
    settle();
    s->rc[0] = tide_group_cancel(&s->g);
    s->rc[1] = tide_group_spawn(&s->g, child_fn, &s->c[3], NULL, NULL); /* cancelling */
    s->rc[2] = tide_group_wait(&s->g);
    s->rc[3] = s->nended;
    return 0;
}

static void test_group_cancel(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_cancel_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.rc[1], -ECANCELED);
    assert_int_equal(s.rc[2], 0);
    assert_int_equal(s.rc[3], 3);
}

/* Cancelling one member by hand (tide_cancel on the borrowed handle) is not
 * a failure: the others go on. */
static int group_cancel_one_main(void *arg)
{
    gs *s = arg;
    tide_group_init(&s->g);
    for (int i = 0; i < 3; i++) {
        setup_child(s, i, i == 1 ? 1000 : 20, i);
        tide_group_spawn(&s->g, child_fn, &s->c[i], NULL, &s->t[i]);
    }
    settle();
    tide_cancel(s->t[1]);
    s->rc[0] = tide_group_wait(&s->g);
    return 0;
}

static void test_group_cancel_one_member(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_cancel_one_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.c[0].rc_sleep, 0);
    assert_int_equal(s.c[1].rc_sleep, -ECANCELED);
    assert_int_equal(s.c[2].rc_sleep, 0);
}

static int second_waiter(void *arg)
{
    gs *s = arg;
    s->rc[20] = tide_group_wait(&s->g); /* main waits already */
    return 0;
}

static int group_misuse_main(void *arg)
{
    gs *s = arg;
    tide_task *t, *w2;
    s->rc[0] = tide_group_init(NULL);
    s->rc[1] = tide_group_spawn(NULL, child_fn, NULL, NULL, NULL);
    tide_group_init(&s->g);
    s->rc[2] = tide_group_spawn(&s->g, NULL, NULL, NULL, &t);
    s->rc[3] = t == NULL;
    s->rc[4] = tide_group_wait(NULL);
    s->rc[5] = tide_group_cancel(NULL);
    s->rc[6] = tide_group_errors(NULL, NULL, 0);
    setup_child(s, 0, 20, 0);
    tide_group_spawn(&s->g, child_fn, &s->c[0], NULL, &t);
    s->rc[7] = tide_await(t);  /* a member */
    s->rc[8] = tide_detach(t); /* idem */
    s->rc[9] = tide_wait_for(t, 10);
    s->rc[10] = tide_gather(&t, 1, NULL);
    tide_create_task(&w2, second_waiter, s);
    s->rc[11] = tide_group_wait(&s->g);
    tide_await(w2);
    s->rc[12] = tide_group_spawn(&s->g, child_fn, &s->c[1], NULL, NULL); /* waited */
    s->rc[13] = tide_group_wait(&s->g);
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.stack_size = 1; /* too small */
    tide_group g2;
    tide_group_init(&g2);
    s->rc[14] = tide_group_spawn(&g2, child_fn, &s->c[1], &o, NULL);
    tide_group_wait(&g2);
    return 0;
}

static void test_group_misuse(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(group_misuse_main, &s), 0);
    assert_int_equal(s.rc[0], -EINVAL);
    assert_int_equal(s.rc[1], -EINVAL);
    assert_int_equal(s.rc[2], -EINVAL);
    assert_int_equal(s.rc[3], 1);
    assert_int_equal(s.rc[4], -EINVAL);
    assert_int_equal(s.rc[5], -EINVAL);
    assert_int_equal(s.rc[6], -EINVAL);
    assert_int_equal(s.rc[7], -EINVAL);
    assert_int_equal(s.rc[8], -EINVAL);
    assert_int_equal(s.rc[9], -EINVAL);
    assert_int_equal(s.rc[10], -EINVAL);
    assert_int_equal(s.rc[20], -EBUSY);
    assert_int_equal(s.rc[11], 0);
    assert_int_equal(s.rc[12], -EINVAL);
    assert_int_equal(s.rc[13], -EINVAL);
    assert_int_equal(s.rc[14], -EINVAL);

    tide_group g;
    assert_int_equal(tide_group_init(&g), -EPERM);
}

/* ============================================================ tide_wait */

static int ret_after(void *arg)
{
    child *c = arg;
    int rc = tide_sleep(c->sleep_ms);
    c->rc_sleep = rc;
    return rc < 0 ? rc : c->result;
}

static void spawn_plain(gs *s, int i, int64_t ms, int result)
{
    setup_child(s, i, ms, result);
    assert_int_equal(tide_create_task(&s->t[i], ret_after, &s->c[i]), 0);
}

static int wait_modes_main(void *arg)
{
    gs *s = arg;
    int64_t t0;
    /* FIRST_COMPLETED */
    spawn_plain(s, 0, 200, 0);
    spawn_plain(s, 1, 10, 1);
    spawn_plain(s, 2, 300, 2);
    t0 = tide_now();
    s->rc[0] = tide_wait(s->t, 3, TIDE_FIRST_COMPLETED);
    s->rc[1] = (int)(tide_now() - t0);
    s->rc[2] = tide_task_get_state(s->t[1]) == TIDE_TASK_DONE;
    s->rc[3] = tide_task_get_state(s->t[0]) != TIDE_TASK_DONE &&
               tide_task_get_state(s->t[2]) != TIDE_TASK_DONE;
    /* again, with one already done: returns at once */
    s->rc[4] = tide_wait(s->t, 3, TIDE_FIRST_COMPLETED);
    /* ALL_COMPLETED */
    s->rc[5] = tide_wait(s->t, 3, TIDE_ALL_COMPLETED);
    s->rc[6] = (int)(tide_now() - t0);
    int res[3];
    s->rc[7] = tide_gather(s->t, 3, res);
    s->rc[8] = res[0] + 10 * res[1] + 100 * res[2];

    /* FIRST_ERROR: returns when the failing one ends */
    spawn_plain(s, 0, 5, 0);
    spawn_plain(s, 1, 20, -EIO);
    spawn_plain(s, 2, 300, 0);
    t0 = tide_now();
    s->rc[9] = tide_wait(s->t, 3, TIDE_FIRST_ERROR);
    s->rc[10] = (int)(tide_now() - t0);
    s->rc[11] = tide_task_get_state(s->t[2]) != TIDE_TASK_DONE;
    tide_cancel(s->t[2]);
    tide_gather(s->t, 3, res);
    s->rc[12] = res[1];
    /* FIRST_ERROR without an error (a cancelled task is not one): all */
    spawn_plain(s, 0, 5, 0);
    spawn_plain(s, 1, 15, 0);
    spawn_plain(s, 2, 1000, 0);
    settle();
    tide_cancel(s->t[2]);
    s->rc[13] = tide_wait(s->t, 3, TIDE_FIRST_ERROR);
    tide_gather(s->t, 3, res);
    s->rc[14] = res[2];
    return 0;
}

static void test_wait_modes(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(wait_modes_main, &s), 0);
    assert_int_equal(s.rc[0], 1);
    assert_in_range(s.rc[1], 8, 190);
    assert_int_equal(s.rc[2], 1);
    assert_int_equal(s.rc[3], 1);
    assert_int_equal(s.rc[4], 1);
    assert_int_equal(s.rc[5], 3);
    assert_true(s.rc[6] >= 295);
    assert_int_equal(s.rc[7], 0);
    assert_int_equal(s.rc[8], 210);
    assert_int_equal(s.rc[9], 2);
    assert_in_range(s.rc[10], 15, 250);
    assert_int_equal(s.rc[11], 1);
    assert_int_equal(s.rc[12], -EIO);
    assert_int_equal(s.rc[13], 3);
    assert_int_equal(s.rc[14], -ECANCELED);
}

/* A timeout scope around tide_wait: -ETIMEDOUT, the tasks go on (asyncio's
 * wait does not cancel); cancelling the waiter: -ECANCELED, idem. */
static int waiter_task(void *arg)
{
    gs *s = arg;
    s->rc[5] = tide_wait(s->t, 2, TIDE_ALL_COMPLETED);
    return 0;
}

static int wait_timeout_main(void *arg)
{
    gs *s = arg;
    tide_scope sc;
    tide_task *w;
    spawn_plain(s, 0, 5, 0);
    spawn_plain(s, 1, 200, 7);
    tide_timeout_begin(&sc, 20);
    s->rc[0] = tide_wait(s->t, 2, TIDE_ALL_COMPLETED);
    s->rc[1] = tide_timeout_end(&sc);
    s->rc[2] = tide_task_get_state(s->t[0]) == TIDE_TASK_DONE;
    s->rc[3] = tide_task_get_state(s->t[1]) == TIDE_TASK_WAITING &&
               !tide_task_cancelled(s->t[1]);
    tide_create_task(&w, waiter_task, s);
    settle();
    tide_cancel(w);
    tide_await(w);
    s->rc[4] = !tide_task_cancelled(s->t[1]);
    int res[2];
    s->rc[6] = tide_gather(s->t, 2, res);
    s->rc[7] = res[1];
    return 0;
}

static void test_wait_timeout_and_cancel(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(wait_timeout_main, &s), 0);
    assert_int_equal(s.rc[0], -ETIMEDOUT);
    assert_int_equal(s.rc[1], -ETIMEDOUT);
    assert_int_equal(s.rc[2], 1);
    assert_int_equal(s.rc[3], 1);
    assert_int_equal(s.rc[4], 1);
    assert_int_equal(s.rc[5], -ECANCELED);
    assert_int_equal(s.rc[6], 0);
    assert_int_equal(s.rc[7], 7);
}

static int wait_misuse_main(void *arg)
{
    gs *s = arg;
    tide_task *dup[2];
    spawn_plain(s, 0, 5, 0);
    spawn_plain(s, 1, 5, 0);
    s->rc[0] = tide_wait(NULL, 2, TIDE_ALL_COMPLETED);
    s->rc[1] = tide_wait(s->t, 2, 0);
    s->rc[2] = tide_wait(s->t, 2, 99);
    dup[0] = dup[1] = s->t[0];
    s->rc[3] = tide_wait(dup, 2, TIDE_ALL_COMPLETED);
    tide_task *self = tide_current_task();
    s->rc[4] = tide_wait(&self, 1, TIDE_ALL_COMPLETED);
    s->rc[5] = tide_wait(s->t, 0, TIDE_ALL_COMPLETED);
    /* the failed checks left no mark behind: a correct call works */
    s->rc[6] = tide_wait(s->t, 2, TIDE_ALL_COMPLETED);
    tide_as_completed *it = NULL;
    s->rc[7] = tide_as_completed_new(NULL, s->t, 2);
    s->rc[8] = tide_as_completed_new(&it, dup, 2);
    s->rc[9] = tide_as_completed_next(NULL, &self);
    tide_as_completed_new(&it, s->t, 2);
    s->rc[10] = tide_as_completed_next(it, NULL);
    tide_as_completed_free(it);
    tide_as_completed_free(NULL);
    s->rc[11] = tide_shield(NULL);
    s->rc[12] = tide_shield(self);
    tide_gather(s->t, 2, NULL);
    return 0;
}

static void test_wait_misuse(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(wait_misuse_main, &s), 0);
    for (int i = 0; i <= 4; i++)
        assert_int_equal(s.rc[i], -EINVAL);
    assert_int_equal(s.rc[5], 0);
    assert_int_equal(s.rc[6], 2);
    for (int i = 7; i <= 12; i++)
        assert_int_equal(s.rc[i], -EINVAL);

    assert_int_equal(tide_wait(NULL, 0, TIDE_ALL_COMPLETED), -EPERM);
    tide_as_completed *it = NULL;
    assert_int_equal(tide_as_completed_new(&it, NULL, 0), -EPERM);
}

/* ========================================================= as_completed */

static int ac_main(void *arg)
{
    gs *s = arg;
    tide_as_completed *it;
    tide_task *t;
    /* finishing in reverse order of creation: returned in finish order */
    for (int i = 0; i < 5; i++)
        spawn_plain(s, i, 50 - 10 * i, i);
    s->rc[0] = tide_as_completed_new(&it, s->t, 5);
    for (int i = 0; i < 5; i++) {
        s->rc[1] |= tide_as_completed_next(it, &t);
        for (int j = 0; j < 5; j++)
            if (t == s->t[j])
                s->order[s->norder++] = j;
        s->rc[2] += tide_await(t); /* the result, and release */
    }
    s->rc[3] = tide_as_completed_next(it, &t);
    s->rc[4] = t == NULL;
    tide_as_completed_free(it);

    /* tasks already ended come first, in array order */
    spawn_plain(s, 0, 0, 0);
    spawn_plain(s, 1, 30, 1);
    spawn_plain(s, 2, 0, 2);
    spawn_plain(s, 3, 10, 3);
    settle(); /* t0 and t2 end */
    tide_as_completed_new(&it, s->t, 4);
    for (int i = 0; i < 4; i++) {
        tide_as_completed_next(it, &t);
        for (int j = 0; j < 4; j++)
            if (t == s->t[j])
                s->order[s->norder++] = j;
    }
    tide_as_completed_free(it);
    tide_gather(s->t, 4, NULL);

    /* a timeout in next, then next again; freeing the iterator with tasks
     * still running (they end later without touching it) */
    spawn_plain(s, 0, 40, 0);
    spawn_plain(s, 1, 10, 1);
    tide_as_completed_new(&it, s->t, 2);
    tide_scope sc;
    tide_timeout_begin(&sc, 5);
    s->rc[5] = tide_as_completed_next(it, &t);
    tide_timeout_end(&sc);
    s->rc[6] = tide_as_completed_next(it, &t);
    s->rc[7] = t == s->t[1];
    tide_as_completed_free(it);
    tide_gather(s->t, 2, NULL);
    return 0;
}

static void test_as_completed(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(ac_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.rc[1], 0);
    assert_int_equal(s.rc[2], 0 + 1 + 2 + 3 + 4);
    assert_int_equal(s.rc[3], -ENOENT);
    assert_int_equal(s.rc[4], 1);
    assert_int_equal(s.norder, 9);
    static const int want[] = {4, 3, 2, 1, 0, 0, 2, 3, 1};
    for (int i = 0; i < 9; i++)
        assert_int_equal(s.order[i], want[i]);
    assert_int_equal(s.rc[5], -ETIMEDOUT);
    assert_int_equal(s.rc[6], 0);
    assert_int_equal(s.rc[7], 1);
}

/* ============================================================== shield */

typedef struct sh {
    tide_task *work;
    int rc_shield, rc_after;
    int work_state_seen;
} sh;

static int shield_caller(void *arg)
{
    sh *x = arg;
    x->rc_shield = tide_shield(x->work);
    x->work_state_seen = tide_task_get_state(x->work);
    return 0;
}

static int shield_timeout_caller(void *arg)
{
    sh *x = arg;
    tide_scope sc;
    tide_timeout_begin(&sc, 10);
    x->rc_shield = tide_shield(x->work);
    tide_timeout_end(&sc);
    return 0;
}

static int shield_main(void *arg)
{
    gs *s = arg;
    sh x, y;
    tide_task *c;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    /* the caller is cancelled: -ECANCELED, the work goes on */
    spawn_plain(s, 0, 200, 7);
    x.work = s->t[0];
    tide_create_task(&c, shield_caller, &x);
    tide_sleep(10);
    tide_cancel(c);
    tide_await(c);
    s->rc[0] = x.rc_shield;
    s->rc[1] = x.work_state_seen == TIDE_TASK_WAITING;
    s->rc[2] = tide_task_cancelled(x.work);
    s->rc[3] = tide_await(x.work); /* later: its result */
    s->rc[4] = s->c[0].rc_sleep;
    /* a timeout: -ETIMEDOUT, the work goes on */
    spawn_plain(s, 1, 200, 8);
    y.work = s->t[1];
    tide_create_task(&c, shield_timeout_caller, &y);
    tide_await(c);
    s->rc[5] = y.rc_shield;
    s->rc[6] = tide_shield(y.work); /* wait again, through the shield */
    /* not interrupted: the result, and the task is released */
    spawn_plain(s, 2, 5, 9);
    s->rc[7] = tide_shield(s->t[2]);
    s->rc[8] = tide_shield(s->t[2]); /* released */
    return 0;
}

static void test_shield(void **state)
{
    (void)state;
    gs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(shield_main, &s), 0);
    assert_int_equal(s.rc[0], -ECANCELED);
    assert_int_equal(s.rc[1], 1);
    assert_int_equal(s.rc[2], 0);
    assert_int_equal(s.rc[3], 7);
    assert_int_equal(s.rc[4], 0);
    assert_int_equal(s.rc[5], -ETIMEDOUT);
    assert_int_equal(s.rc[6], 8);
    assert_int_equal(s.rc[7], 9);
    assert_int_equal(s.rc[8], -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_all_succeed),
        cmocka_unit_test(test_group_child_fails),
        cmocka_unit_test(test_group_several_failures),
        cmocka_unit_test(test_group_parent_cancelled),
        cmocka_unit_test(test_group_nested_spawn),
        cmocka_unit_test(test_group_timeout),
        cmocka_unit_test(test_group_cancel),
        cmocka_unit_test(test_group_cancel_one_member),
        cmocka_unit_test(test_group_misuse),
        cmocka_unit_test(test_wait_modes),
        cmocka_unit_test(test_wait_timeout_and_cancel),
        cmocka_unit_test(test_wait_misuse),
        cmocka_unit_test(test_as_completed),
        cmocka_unit_test(test_shield),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
