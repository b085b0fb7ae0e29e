/*
 * Tests of the synchronisation primitives (include/tide/sync.h): Lock, Event,
 * Condition, Semaphore / BoundedSemaphore, Barrier, and task-local values.
 *
 * For every waiting primitive: FIFO service, cancellation and timeout while
 * waiting (the resource is not lost: the next waiter gets it), a waiter that
 * was handed the resource and cancelled before it ran (it returns success
 * with the resource; its next suspending call fails with -ECANCELED), and
 * misuse (NULL -> -EINVAL, outside a task -> -EPERM, ...).
 *
 * Each test runs tt_vrun(main, &state) and asserts afterwards.
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

#define NW 5 /* waiters in the FIFO tests */

/* Lets every ready task run until it blocks: each tide_sleep(0) puts the
 * caller behind the tasks that are ready now. */
static void settle(void)
{
    for (int i = 0; i < 8; i++)
        tide_sleep(0);
}

/* One waiter's record, shared by most tests below. */
typedef struct waiter {
    struct shared *s;
    int id;
    int rc;      /* what the waiting call returned */
    int rc_next; /* what the next suspending call returned */
    int rc_end;  /* tide_timeout_end, when the wait had a timeout */
    int done;    /* the task got past its wait */
    int owned;   /* it held the resource afterwards */
    int64_t timeout_ms; /* > 0: wait inside a timeout scope */
} waiter;

typedef struct shared {
    tide_lock lock;
    tide_event ev;
    tide_cond cond;
    tide_sem sem;
    tide_barrier bar;
    int order[4 * NW];
    int norder;
    int rounds;
    waiter w[NW + 2];
    tide_task *t[NW + 2];
    int rc_main[16];
    int outside[16];
} shared;

static void record(shared *s, int id)
{
    if (s->norder < (int)TT_ARRAY_LEN(s->order))
        s->order[s->norder++] = id;
}

static void spawn_waiters(shared *s, int n, tide_fn fn)
{
    for (int i = 0; i < n; i++) {
        s->w[i].s = s;
        s->w[i].id = i;
        assert_int_equal(tide_create_task(&s->t[i], fn, &s->w[i]), 0);
    }
}

/* ================================================================ lock */

/* N tasks each take the lock K times (acquire, record, yield, release): with
 * hand-over the lock goes round-robin, 0 1 2 .. N-1 0 1 2 .. */
static int lock_rr_task(void *arg)
{
    waiter *w = arg;
    for (int k = 0; k < w->s->rounds; k++) {
        int rc = tide_lock_acquire(&w->s->lock);
        if (rc < 0)
            return rc;
        record(w->s, w->id);
        tide_sleep(0);
        tide_lock_release(&w->s->lock);
    }
    return 0;
}

static int lock_fifo_main(void *arg)
{
    shared *s = arg;
    tide_lock_init(&s->lock);
    s->rounds = 3;
    spawn_waiters(s, NW, lock_rr_task);
    return tide_gather(s->t, NW, NULL);
}

static void test_lock_fifo_round_robin(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(lock_fifo_main, &s), 0);
    assert_int_equal(s.norder, 3 * NW);
    for (int i = 0; i < 3 * NW; i++)
        assert_int_equal(s.order[i], i % NW);
    assert_int_equal(tide_lock_locked(&s.lock), 0);
}

/* A waiter: acquire (maybe within a timeout), record, hold, release. */
static int lock_waiter(void *arg)
{
    waiter *w = arg;
    tide_scope sc;
    if (w->timeout_ms > 0)
        tide_timeout_begin(&sc, w->timeout_ms);
    w->rc = tide_lock_acquire(&w->s->lock);
    if (w->timeout_ms > 0)
        w->rc_end = tide_timeout_end(&sc);
    w->done = 1;
    if (w->rc == 0) {
        w->owned = tide_lock_try_acquire(&w->s->lock) == -EDEADLK; /* we are the owner */
        record(w->s, w->id);
        w->rc_next = tide_sleep(0);
        tide_lock_release(&w->s->lock);
    }
    return 0;
}

/* Three waiters, the middle one cancelled: the first and the third get the
 * lock, in that order. */
static int lock_cancel_middle_main(void *arg)
{
    shared *s = arg;
    tide_lock_init(&s->lock);
    s->rc_main[0] = tide_lock_acquire(&s->lock);
    spawn_waiters(s, 3, lock_waiter);
    settle();
    tide_cancel(s->t[1]);
    settle();
    s->rc_main[1] = s->w[1].done; /* the cancelled one left at once */
    s->rc_main[2] = s->norder;    /* nobody took the lock meanwhile */
    s->rc_main[3] = tide_lock_release(&s->lock);
    return tide_gather(s->t, 3, NULL);
}

static void test_lock_cancel_middle_waiter(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(lock_cancel_middle_main, &s), 0);
    assert_int_equal(s.rc_main[0], 0);
    assert_int_equal(s.rc_main[1], 1);
    assert_int_equal(s.rc_main[2], 0);
    assert_int_equal(s.rc_main[3], 0);
    assert_int_equal(s.w[1].rc, -ECANCELED);
    assert_int_equal(s.w[0].rc, 0);
    assert_int_equal(s.w[2].rc, 0);
    assert_int_equal(s.w[0].owned, 1);
    assert_int_equal(s.w[2].owned, 1);
    assert_int_equal(s.norder, 2);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.order[1], 2);
    assert_int_equal(tide_lock_locked(&s.lock), 0);
}

/* Timeout while waiting: -ETIMEDOUT, the waiter never owns the lock, and a
 * later release finds no ghost waiter (the lock becomes free). */
static int lock_timeout_main(void *arg)
{
    shared *s = arg;
    tide_lock_init(&s->lock);
    tide_lock_acquire(&s->lock);
    s->w[0].timeout_ms = 20;
    spawn_waiters(s, 2, lock_waiter); /* w[1] has no timeout */
    tide_sleep(60);
    s->rc_main[0] = s->w[0].done;
    s->rc_main[1] = s->w[1].done;
    tide_lock_release(&s->lock); /* goes to w[1] */
    return tide_gather(s->t, 2, NULL);
}

static void test_lock_timeout(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(lock_timeout_main, &s), 0);
    assert_int_equal(s.rc_main[0], 1);
    assert_int_equal(s.rc_main[1], 0);
    assert_int_equal(s.w[0].rc, -ETIMEDOUT);
    assert_int_equal(s.w[0].rc_end, -ETIMEDOUT);
    assert_int_equal(s.w[1].rc, 0);
    assert_int_equal(s.w[1].owned, 1);
    assert_int_equal(s.norder, 1);
    assert_int_equal(s.order[0], 1);
    assert_int_equal(tide_lock_locked(&s.lock), 0);
}

/* The lock is handed to a waiter, which is cancelled before it runs: it
 * returns 0 owning the lock, and its next suspending call is -ECANCELED. */
static int lock_handed_main(void *arg)
{
    shared *s = arg;
    tide_lock_init(&s->lock);
    tide_lock_acquire(&s->lock);
    spawn_waiters(s, 2, lock_waiter);
    settle();
    tide_lock_release(&s->lock); /* handed to w[0] (now READY) */
    s->rc_main[0] = tide_lock_try_acquire(&s->lock); /* no barging: -EBUSY */
    tide_cancel(s->t[0]);
    return tide_gather(s->t, 2, NULL);
}

static void test_lock_handed_then_cancelled(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(lock_handed_main, &s), 0);
    assert_int_equal(s.rc_main[0], -EBUSY);
    assert_int_equal(s.w[0].rc, 0);
    assert_int_equal(s.w[0].owned, 1);
    assert_int_equal(s.w[0].rc_next, -ECANCELED);
    assert_int_equal(s.w[1].rc, 0); /* its release passed the lock on */
    assert_int_equal(s.w[1].rc_next, 0);
    assert_int_equal(s.norder, 2);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.order[1], 1);
    assert_int_equal(tide_lock_locked(&s.lock), 0);
}

/* Another task may neither release nor take a lock main holds. */
static int lock_misuse_other(void *arg)
{
    shared *s = arg;
    s->rc_main[10] = tide_lock_release(&s->lock); /* held by main: -EPERM */
    s->rc_main[11] = tide_lock_try_acquire(&s->lock);
    return 0;
}

static int lock_misuse_main(void *arg)
{
    shared *s = arg;
    tide_task *t;
    s->rc_main[0] = tide_lock_init(NULL);
    s->rc_main[1] = tide_lock_acquire(NULL);
    s->rc_main[2] = tide_lock_release(NULL);
    s->rc_main[3] = tide_lock_try_acquire(NULL);
    tide_lock_init(&s->lock);
    s->rc_main[4] = tide_lock_release(&s->lock); /* not held */
    s->rc_main[5] = tide_lock_acquire(&s->lock);
    s->rc_main[6] = tide_lock_acquire(&s->lock); /* twice */
    s->rc_main[7] = tide_lock_try_acquire(&s->lock); /* held by us: -EDEADLK */
    tide_create_task(&t, lock_misuse_other, s);
    tide_await(t);
    s->rc_main[8] = tide_lock_release(&s->lock);
    s->rc_main[9] = tide_lock_locked(&s->lock) + 10 * tide_lock_locked(NULL);
    return 0;
}

static void test_lock_misuse(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(lock_misuse_main, &s), 0);
    assert_int_equal(s.rc_main[0], -EINVAL);
    assert_int_equal(s.rc_main[1], -EINVAL);
    assert_int_equal(s.rc_main[2], -EINVAL);
    assert_int_equal(s.rc_main[3], -EINVAL);
    assert_int_equal(s.rc_main[4], -EPERM);
    assert_int_equal(s.rc_main[5], 0);
    assert_int_equal(s.rc_main[6], -EDEADLK);
    assert_int_equal(s.rc_main[7], -EDEADLK);
    assert_int_equal(s.rc_main[10], -EPERM);
    assert_int_equal(s.rc_main[11], -EBUSY);
    assert_int_equal(s.rc_main[8], 0);
    assert_int_equal(s.rc_main[9], 0);

    /* outside a task */
    tide_lock l;
    tide_lock_init(&l);
    assert_int_equal(tide_lock_acquire(&l), -EPERM);
    assert_int_equal(tide_lock_try_acquire(&l), -EPERM);
    assert_int_equal(tide_lock_release(&l), -EPERM);
    assert_int_equal(tide_lock_locked(&l), 0);
}

/* =============================================================== event */

static int event_waiter(void *arg)
{
    waiter *w = arg;
    tide_scope sc;
    if (w->timeout_ms > 0)
        tide_timeout_begin(&sc, w->timeout_ms);
    w->rc = tide_event_wait(&w->s->ev);
    if (w->timeout_ms > 0)
        w->rc_end = tide_timeout_end(&sc);
    w->done = 1;
    if (w->rc == 0)
        record(w->s, w->id);
    w->rc_next = tide_sleep(0);
    return 0;
}

static int event_main(void *arg)
{
    shared *s = arg;
    tide_event_init(&s->ev);
    s->w[3].timeout_ms = 10;
    spawn_waiters(s, NW, event_waiter);
    settle();
    tide_cancel(s->t[2]);
    tide_sleep(30); /* w[3] times out */
    s->rc_main[0] = s->norder; /* nobody woke before set */
    s->rc_main[1] = tide_event_is_set(&s->ev);
    s->rc_main[2] = tide_event_set(&s->ev);
    tide_cancel(s->t[4]); /* woken, not run yet: still returns 0 */
    s->rc_main[3] = tide_event_is_set(&s->ev);
    s->rc_main[4] = tide_event_wait(&s->ev); /* already set: at once */
    tide_gather(s->t, NW, NULL);
    s->rc_main[5] = tide_event_clear(&s->ev);
    s->rc_main[6] = tide_event_is_set(&s->ev);
    tide_scope sc;
    tide_timeout_begin(&sc, 5);
    s->rc_main[7] = tide_event_wait(&s->ev); /* cleared: waits, times out */
    tide_timeout_end(&sc);
    s->rc_main[8] = tide_event_init(NULL);
    s->rc_main[9] = tide_event_set(NULL);
    s->rc_main[10] = tide_event_clear(NULL);
    s->rc_main[11] = tide_event_wait(NULL);
    s->rc_main[12] = tide_event_is_set(NULL);
    return 0;
}

static void test_event_wakes_all(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(event_main, &s), 0);
    assert_int_equal(s.rc_main[0], 0);
    assert_int_equal(s.rc_main[1], 0);
    assert_int_equal(s.rc_main[2], 0);
    assert_int_equal(s.rc_main[3], 1);
    assert_int_equal(s.rc_main[4], 0);
    assert_int_equal(s.rc_main[5], 0);
    assert_int_equal(s.rc_main[6], 0);
    assert_int_equal(s.rc_main[7], -ETIMEDOUT);
    for (int i = 8; i <= 11; i++)
        assert_int_equal(s.rc_main[i], -EINVAL);
    assert_int_equal(s.rc_main[12], 0);
    assert_int_equal(s.w[2].rc, -ECANCELED);
    assert_int_equal(s.w[3].rc, -ETIMEDOUT);
    assert_int_equal(s.w[3].rc_end, -ETIMEDOUT);
    assert_int_equal(s.w[4].rc, 0);
    assert_int_equal(s.w[4].rc_next, -ECANCELED);
    /* the others woke in the order they waited */
    assert_int_equal(s.norder, 3);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.order[1], 1);
    assert_int_equal(s.order[2], 4);

    tide_event e;
    tide_event_init(&e);
    assert_int_equal(tide_event_wait(&e), -EPERM);
    tide_event_set(&e);
    assert_int_equal(tide_event_wait(&e), -EPERM); /* outside a task, even if set */
}

/* ============================================================ condition */

static int cond_waiter(void *arg)
{
    waiter *w = arg;
    shared *s = w->s;
    tide_lock *l = tide_cond_lock(&s->cond);
    tide_scope sc;

    tide_lock_acquire(l);
    if (w->timeout_ms > 0)
        tide_timeout_begin(&sc, w->timeout_ms);
    w->rc = tide_cond_wait(&s->cond);
    if (w->timeout_ms > 0)
        w->rc_end = tide_timeout_end(&sc);
    w->done = 1;
    /* the lock is held again, whatever cond_wait returned */
    w->owned = tide_lock_try_acquire(l) == -EDEADLK;
    if (w->rc == 0)
        record(s, w->id);
    w->rc_next = tide_sleep(0);
    tide_lock_release(l);
    return 0;
}

/* notify(1) wakes the first waiter, FIFO. */
static int cond_fifo_main(void *arg)
{
    shared *s = arg;
    tide_lock *l;
    tide_cond_init(&s->cond, NULL);
    l = tide_cond_lock(&s->cond);
    spawn_waiters(s, NW, cond_waiter);
    settle();
    for (int i = 0; i < NW; i++) {
        tide_lock_acquire(l);
        s->rc_main[i] = tide_cond_notify(&s->cond, 1);
        tide_lock_release(l);
        settle();
        s->rc_main[8 + i] = s->norder;
    }
    return tide_gather(s->t, NW, NULL);
}

static void test_cond_notify_fifo(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cond_fifo_main, &s), 0);
    assert_int_equal(s.norder, NW);
    for (int i = 0; i < NW; i++) {
        assert_int_equal(s.rc_main[i], 0);
        assert_int_equal(s.rc_main[8 + i], i + 1); /* exactly one woke each time */
        assert_int_equal(s.order[i], i);
        assert_int_equal(s.w[i].rc, 0);
        assert_int_equal(s.w[i].owned, 1);
    }
}

/* notify_all, notify(n), a cancelled waiter, a timed-out waiter, a notified
 * waiter cancelled before it runs, with an external lock. */
static int cond_all_main(void *arg)
{
    shared *s = arg;
    tide_lock_init(&s->lock);
    tide_cond_init(&s->cond, &s->lock);
    s->rc_main[0] = tide_cond_lock(&s->cond) == &s->lock;
    s->w[4].timeout_ms = 10;
    spawn_waiters(s, NW, cond_waiter);
    settle();
    tide_cancel(s->t[1]);
    tide_sleep(30); /* w[4] times out */
    /* both got the lock back and left */
    s->rc_main[1] = s->w[1].done + s->w[4].done;
    tide_lock_acquire(&s->lock);
    s->rc_main[2] = tide_cond_notify(&s->cond, 2); /* w[0], w[2] */
    tide_cancel(s->t[2]); /* notified, not yet run: returns 0 all the same */
    tide_lock_release(&s->lock);
    settle();
    tide_lock_acquire(&s->lock);
    s->rc_main[3] = tide_cond_notify_all(&s->cond); /* w[3] */
    s->rc_main[4] = tide_cond_notify_all(&s->cond); /* nobody left: fine */
    tide_lock_release(&s->lock);
    return tide_gather(s->t, NW, NULL);
}

static void test_cond_notify_all_cancel_timeout(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cond_all_main, &s), 0);
    assert_int_equal(s.rc_main[0], 1);
    assert_int_equal(s.rc_main[1], 2);
    assert_int_equal(s.rc_main[2], 0);
    assert_int_equal(s.rc_main[3], 0);
    assert_int_equal(s.rc_main[4], 0);
    assert_int_equal(s.w[1].rc, -ECANCELED);
    assert_int_equal(s.w[1].owned, 1);
    assert_int_equal(s.w[4].rc, -ETIMEDOUT);
    assert_int_equal(s.w[4].rc_end, -ETIMEDOUT);
    assert_int_equal(s.w[4].owned, 1);
    assert_int_equal(s.w[2].rc, 0);
    assert_int_equal(s.w[2].owned, 1);
    assert_int_equal(s.w[2].rc_next, -ECANCELED);
    assert_int_equal(s.norder, 3);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.order[1], 2);
    assert_int_equal(s.order[2], 3);
    assert_int_equal(tide_lock_locked(&s.lock), 0);
}

/* A waiter cancelled while it waits for the lock back (after a notify) still
 * returns holding the lock. */
static int cond_relock_main(void *arg)
{
    shared *s = arg;
    tide_cond_init(&s->cond, NULL);
    tide_lock *l = tide_cond_lock(&s->cond);
    spawn_waiters(s, 1, cond_waiter);
    settle();
    tide_lock_acquire(l);
    tide_cond_notify(&s->cond, 1);
    settle(); /* w[0] now waits for the lock */
    tide_cancel(s->t[0]);
    settle();
    s->rc_main[0] = s->w[0].done; /* still waiting for the lock */
    tide_lock_release(l);
    return tide_await(s->t[0]);
}

static void test_cond_cancel_while_relocking(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cond_relock_main, &s), 0);
    assert_int_equal(s.rc_main[0], 0);
    assert_int_equal(s.w[0].done, 1);
    assert_int_equal(s.w[0].rc, 0); /* it was notified before the cancel */
    assert_int_equal(s.w[0].owned, 1);
    assert_int_equal(s.w[0].rc_next, -ECANCELED);
}

static int cond_misuse_other(void *arg)
{
    shared *s = arg;
    s->rc_main[8] = tide_cond_wait(&s->cond);      /* lock held by main */
    s->rc_main[9] = tide_cond_notify(&s->cond, 1); /* idem */
    return 0;
}

static int cond_misuse_main(void *arg)
{
    shared *s = arg;
    tide_task *t;
    s->rc_main[0] = tide_cond_init(NULL, NULL);
    s->rc_main[1] = tide_cond_wait(NULL);
    s->rc_main[2] = tide_cond_notify(NULL, 1);
    s->rc_main[3] = tide_cond_notify_all(NULL);
    s->rc_main[4] = tide_cond_lock(NULL) == NULL;
    tide_cond_init(&s->cond, NULL);
    s->rc_main[5] = tide_cond_wait(&s->cond); /* without the lock */
    s->rc_main[6] = tide_cond_notify(&s->cond, 1);
    s->rc_main[7] = tide_cond_notify_all(&s->cond);
    tide_lock_acquire(tide_cond_lock(&s->cond));
    tide_create_task(&t, cond_misuse_other, s);
    tide_await(t);
    tide_lock_release(tide_cond_lock(&s->cond));
    return 0;
}

static void test_cond_misuse(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(cond_misuse_main, &s), 0);
    for (int i = 0; i <= 3; i++)
        assert_int_equal(s.rc_main[i], -EINVAL);
    assert_int_equal(s.rc_main[4], 1);
    for (int i = 5; i <= 9; i++)
        assert_int_equal(s.rc_main[i], -EPERM);

    tide_cond c;
    tide_cond_init(&c, NULL);
    assert_int_equal(tide_cond_wait(&c), -EPERM);
    assert_int_equal(tide_cond_notify(&c, 1), -EPERM);
}

/* ============================================================ semaphore */

static int sem_waiter(void *arg)
{
    waiter *w = arg;
    tide_scope sc;
    if (w->timeout_ms > 0)
        tide_timeout_begin(&sc, w->timeout_ms);
    w->rc = tide_sem_acquire(&w->s->sem);
    if (w->timeout_ms > 0)
        w->rc_end = tide_timeout_end(&sc);
    w->done = 1;
    if (w->rc == 0) {
        record(w->s, w->id);
        w->rc_next = tide_sleep(0);
    }
    return 0;
}

static int sem_fifo_main(void *arg)
{
    shared *s = arg;
    tide_sem_init(&s->sem, 0);
    spawn_waiters(s, NW, sem_waiter);
    settle();
    for (int i = 0; i < NW; i++)
        s->rc_main[i] = tide_sem_release(&s->sem);
    s->rc_main[8] = (int)tide_sem_value(&s->sem); /* handed over, not counted */
    s->rc_main[9] = tide_sem_try_acquire(&s->sem);
    return tide_gather(s->t, NW, NULL);
}

static void test_sem_fifo(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(sem_fifo_main, &s), 0);
    assert_int_equal(s.rc_main[8], 0);
    assert_int_equal(s.rc_main[9], -EBUSY);
    assert_int_equal(s.norder, NW);
    for (int i = 0; i < NW; i++) {
        assert_int_equal(s.rc_main[i], 0);
        assert_int_equal(s.order[i], i);
    }
    assert_int_equal(tide_sem_value(&s.sem), 0);
}

/* Three waiters, the middle one cancelled, a fourth with a timeout; two
 * releases go to the first and the third; a handed-over permit whose waiter
 * is cancelled before it runs is still taken. */
static int sem_cancel_main(void *arg)
{
    shared *s = arg;
    tide_sem_init(&s->sem, 1);
    s->rc_main[0] = tide_sem_acquire(&s->sem);
    s->w[3].timeout_ms = 10;
    spawn_waiters(s, 4, sem_waiter);
    settle();
    tide_cancel(s->t[1]);
    tide_sleep(30); /* w[3] times out */
    s->rc_main[1] = (int)tide_sem_value(&s->sem);
    s->rc_main[2] = tide_sem_release(&s->sem); /* -> w[0] */
    s->rc_main[3] = tide_sem_release(&s->sem); /* -> w[2] */
    tide_cancel(s->t[2]); /* handed, not run yet */
    s->rc_main[4] = (int)tide_sem_value(&s->sem);
    tide_gather(s->t, 4, NULL);
    s->rc_main[5] = tide_sem_release(&s->sem); /* no waiter: counted */
    s->rc_main[6] = (int)tide_sem_value(&s->sem);
    return 0;
}

static void test_sem_cancel_timeout_handed(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(sem_cancel_main, &s), 0);
    assert_int_equal(s.rc_main[0], 0);
    assert_int_equal(s.rc_main[1], 0);
    assert_int_equal(s.rc_main[2], 0);
    assert_int_equal(s.rc_main[3], 0);
    assert_int_equal(s.rc_main[4], 0);
    assert_int_equal(s.rc_main[5], 0);
    assert_int_equal(s.rc_main[6], 1);
    assert_int_equal(s.w[1].rc, -ECANCELED);
    assert_int_equal(s.w[3].rc, -ETIMEDOUT);
    assert_int_equal(s.w[3].rc_end, -ETIMEDOUT);
    assert_int_equal(s.w[0].rc, 0);
    assert_int_equal(s.w[2].rc, 0);
    assert_int_equal(s.w[2].rc_next, -ECANCELED);
    assert_int_equal(s.norder, 2);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.order[1], 2);
}

/* No barging: with a waiter queued, a fresh acquire queues behind it even
 * if a permit is counted. */
static int sem_bsem_main(void *arg)
{
    shared *s = arg;
    tide_sem b;
    s->rc_main[0] = tide_bsem_init(&b, 2);
    s->rc_main[1] = tide_sem_release(&b); /* over the bound */
    s->rc_main[2] = (int)tide_sem_value(&b);
    s->rc_main[3] = tide_sem_acquire(&b);
    s->rc_main[4] = tide_sem_try_acquire(&b);
    s->rc_main[5] = tide_sem_try_acquire(&b); /* none left */
    s->rc_main[6] = tide_sem_release(&b);
    s->rc_main[7] = tide_sem_release(&b);
    s->rc_main[8] = tide_sem_release(&b); /* one too many */
    s->rc_main[9] = (int)tide_sem_value(&b);
    /* bounded 1 with a waiter: release hands over, the next release overflows
     * only once the permit is back */
    tide_bsem_init(&s->sem, 1);
    tide_sem_acquire(&s->sem);
    spawn_waiters(s, 1, sem_waiter);
    settle();
    s->rc_main[10] = tide_sem_release(&s->sem); /* handed to w[0] */
    tide_await(s->t[0]);
    s->rc_main[11] = tide_sem_release(&s->sem); /* w[0]'s permit back */
    s->rc_main[12] = tide_sem_release(&s->sem); /* overflow */
    s->rc_main[13] = (int)tide_sem_value(&s->sem);
    return 0;
}

static void test_bsem_overflow(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(sem_bsem_main, &s), 0);
    assert_int_equal(s.rc_main[0], 0);
    assert_int_equal(s.rc_main[1], -EOVERFLOW);
    assert_int_equal(s.rc_main[2], 2);
    assert_int_equal(s.rc_main[3], 0);
    assert_int_equal(s.rc_main[4], 0);
    assert_int_equal(s.rc_main[5], -EBUSY);
    assert_int_equal(s.rc_main[6], 0);
    assert_int_equal(s.rc_main[7], 0);
    assert_int_equal(s.rc_main[8], -EOVERFLOW);
    assert_int_equal(s.rc_main[9], 2);
    assert_int_equal(s.rc_main[10], 0);
    assert_int_equal(s.w[0].rc, 0);
    assert_int_equal(s.rc_main[11], 0);
    assert_int_equal(s.rc_main[12], -EOVERFLOW);
    assert_int_equal(s.rc_main[13], 1);
}

/* A bounded semaphore made with value 0 has bound 0 (it used to be taken
 * for "no bound": a release then succeeded and the value became 1).  Every
 * release fails, even with a waiter queued: it would pass the bound. */
static int bsem_zero_main(void *arg)
{
    shared *s = arg;
    s->rc_main[0] = tide_bsem_init(&s->sem, 0);
    s->rc_main[1] = tide_sem_release(&s->sem);
    s->rc_main[2] = (int)tide_sem_value(&s->sem);
    s->rc_main[3] = tide_sem_try_acquire(&s->sem);
    s->w[0].timeout_ms = 20;
    spawn_waiters(s, 1, sem_waiter);
    settle();
    s->rc_main[4] = tide_sem_release(&s->sem); /* not handed to w[0] either */
    s->rc_main[5] = tide_await(s->t[0]);
    s->rc_main[6] = (int)tide_sem_value(&s->sem);
    /* a plain semaphore at 0 still counts up */
    tide_sem plain;
    tide_sem_init(&plain, 0);
    s->rc_main[7] = tide_sem_release(&plain);
    s->rc_main[8] = (int)tide_sem_value(&plain);
    return 0;
}

static void test_bsem_zero_bound(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(bsem_zero_main, &s), 0);
    assert_int_equal(s.rc_main[0], 0);
    assert_int_equal(s.rc_main[1], -EOVERFLOW);
    assert_int_equal(s.rc_main[2], 0);
    assert_int_equal(s.rc_main[3], -EBUSY);
    assert_int_equal(s.rc_main[4], -EOVERFLOW);
    assert_int_equal(s.rc_main[5], 0);
    assert_int_equal(s.w[0].rc, -ETIMEDOUT); /* never got a permit */
    assert_int_equal(s.rc_main[6], 0);
    assert_int_equal(s.rc_main[7], 0);
    assert_int_equal(s.rc_main[8], 1);
}

static int sem_misuse_main(void *arg)
{
    shared *s = arg;
    tide_sem x;
    s->rc_main[0] = tide_sem_init(NULL, 1);
    s->rc_main[1] = tide_sem_init(&x, -1);
    s->rc_main[2] = tide_bsem_init(&x, -1);
    s->rc_main[3] = tide_sem_acquire(NULL);
    s->rc_main[4] = tide_sem_try_acquire(NULL);
    s->rc_main[5] = tide_sem_release(NULL);
    s->rc_main[6] = (int)tide_sem_value(NULL);
    /* an unbounded semaphore counts past its initial value */
    tide_sem_init(&x, 0);
    for (int i = 0; i < 3; i++)
        tide_sem_release(&x);
    s->rc_main[7] = (int)tide_sem_value(&x);
    /* a cancelled task that would have to wait fails at once */
    tide_sem_init(&x, 0);
    tide_cancel(tide_current_task());
    s->rc_main[8] = tide_sem_acquire(&x);
    return 0;
}

static void test_sem_misuse(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    tt_vrun(sem_misuse_main, &s);
    for (int i = 0; i <= 5; i++)
        assert_int_equal(s.rc_main[i], -EINVAL);
    assert_int_equal(s.rc_main[6], 0);
    assert_int_equal(s.rc_main[7], 3);
    assert_int_equal(s.rc_main[8], -ECANCELED);

    tide_sem x;
    tide_sem_init(&x, 1);
    assert_int_equal(tide_sem_acquire(&x), -EPERM);
    assert_int_equal(tide_sem_value(&x), 1);
}

/* ============================================================== barrier */

static int barrier_waiter(void *arg)
{
    waiter *w = arg;
    tide_scope sc;
    for (int k = 0; k < (w->s->rounds ? w->s->rounds : 1); k++) {
        if (w->timeout_ms > 0)
            tide_timeout_begin(&sc, w->timeout_ms);
        w->rc = tide_barrier_wait(&w->s->bar);
        if (w->timeout_ms > 0)
            w->rc_end = tide_timeout_end(&sc);
        if (w->rc < 0)
            break;
        record(w->s, w->rc); /* the arrival index */
    }
    w->done = 1;
    return 0;
}

/* Three parties, three rounds: each round releases all three, with the
 * arrival indexes 0, 1, 2. */
static int barrier_rounds_main(void *arg)
{
    shared *s = arg;
    tide_barrier_init(&s->bar, 3);
    s->rounds = 3;
    spawn_waiters(s, 3, barrier_waiter);
    return tide_gather(s->t, 3, NULL);
}

static void test_barrier_rounds(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(barrier_rounds_main, &s), 0);
    assert_int_equal(s.norder, 9);
    for (int r = 0; r < 3; r++) {
        int seen = 0;
        for (int i = 0; i < 3; i++)
            seen |= 1 << s.order[3 * r + i];
        assert_int_equal(seen, 7);
    }
}

/* A cancelled party leaves; the others are released when another party
 * arrives. */
static int barrier_cancel_main(void *arg)
{
    shared *s = arg;
    tide_barrier_init(&s->bar, 3);
    spawn_waiters(s, 2, barrier_waiter); /* A, B */
    settle();
    tide_cancel(s->t[1]); /* B leaves */
    settle();
    s->rc_main[0] = s->w[0].done + 10 * s->w[1].done;
    s->w[2].s = s;
    s->w[2].id = 2;
    tide_create_task(&s->t[2], barrier_waiter, &s->w[2]); /* C */
    settle();
    s->rc_main[1] = s->w[0].done + s->w[2].done; /* A, C: only two of three */
    s->rc_main[2] = tide_barrier_wait(&s->bar); /* main is the third */
    settle();
    /* a task already cancelled does not arrive at all */
    tide_barrier_init(&s->bar, 2);
    s->w[3].s = s;
    s->w[3].id = 3;
    tide_create_task(&s->t[3], barrier_waiter, &s->w[3]);
    tide_cancel(s->t[3]); /* before it starts: never runs */
    tide_cancel(tide_current_task());
    s->rc_main[3] = tide_barrier_wait(&s->bar);
    return tide_gather(s->t, 4, NULL);
}

static void test_barrier_cancelled_party(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    tt_vrun(barrier_cancel_main, &s);
    assert_int_equal(s.rc_main[0], 10);
    assert_int_equal(s.rc_main[1], 0);
    assert_int_equal(s.w[1].rc, -ECANCELED);
    assert_int_equal(s.w[0].rc, 0);
    assert_int_equal(s.w[2].rc, 1);
    assert_int_equal(s.rc_main[2], 2);
    assert_int_equal(s.w[0].done + s.w[2].done, 2);
    assert_int_equal(s.rc_main[3], -ECANCELED);
    assert_int_equal(s.bar.count, 0); /* the cancelled caller did not arrive */
}

/* Timeout while waiting: the party leaves the round, as when cancelled. */
static int barrier_timeout_main(void *arg)
{
    shared *s = arg;
    tide_barrier_init(&s->bar, 2);
    s->w[0].timeout_ms = 10;
    spawn_waiters(s, 1, barrier_waiter);
    tide_sleep(30);
    s->rc_main[0] = s->w[0].done;
    s->rc_main[3] = s->w[0].rc;
    tide_await(s->t[0]);
    memset(&s->w[0], 0, sizeof s->w[0]);
    spawn_waiters(s, 1, barrier_waiter); /* w[0] again, without a timeout */
    settle();
    s->rc_main[1] = s->w[0].done;
    s->rc_main[2] = tide_barrier_wait(&s->bar);
    return tide_await(s->t[0]);
}

static void test_barrier_timeout(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(barrier_timeout_main, &s), 0);
    assert_int_equal(s.rc_main[0], 1);
    assert_int_equal(s.rc_main[3], -ETIMEDOUT);
    assert_int_equal(s.rc_main[1], 0);
    assert_int_equal(s.rc_main[2], 1);
    assert_int_equal(s.w[0].rc, 0);
}

/* Arrival indexes stay distinct (0 .. parties-1) after a party left the
 * round: parties 4; A, B, C arrive, A is cancelled, D and E arrive.
 * KNOWN BUG (reported): src/sync.c gives the index at arrival (count++) and
 * barrier_leave only decrements count, so C and D both get index 2.  Skipped
 * unless built with -DTIDE_TEST_KNOWN_BUGS; drop the skip once fixed. */
static int barrier_index_main(void *arg)
{
    shared *s = arg;
    tide_barrier_init(&s->bar, 4);
    spawn_waiters(s, 3, barrier_waiter);
    settle();
    tide_cancel(s->t[0]);
    settle();
    for (int i = 3; i < 5; i++) {
        s->w[i].s = s;
        s->w[i].id = i;
        tide_create_task(&s->t[i], barrier_waiter, &s->w[i]);
    }
    return tide_gather(s->t, 5, NULL);
}

static void test_barrier_indexes_distinct_after_leave(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(barrier_index_main, &s), 0);
    assert_int_equal(s.w[0].rc, -ECANCELED);
    assert_int_equal(s.norder, 4);
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        assert_in_range(s.order[i], 0, 3);
        seen |= 1 << s.order[i];
    }
    assert_int_equal(seen, 15);
}

static int barrier_misuse_main(void *arg)
{
    shared *s = arg;
    tide_barrier b;
    s->rc_main[0] = tide_barrier_init(NULL, 2);
    s->rc_main[1] = tide_barrier_init(&b, 0);
    s->rc_main[2] = tide_barrier_wait(NULL);
    tide_barrier_init(&b, 1);
    s->rc_main[3] = tide_barrier_wait(&b); /* one party: through at once */
    s->rc_main[4] = tide_barrier_wait(&b);
    return 0;
}

static void test_barrier_misuse(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(barrier_misuse_main, &s), 0);
    assert_int_equal(s.rc_main[0], -EINVAL);
    assert_int_equal(s.rc_main[1], -EINVAL);
    assert_int_equal(s.rc_main[2], -EINVAL);
    assert_int_equal(s.rc_main[3], 0);
    assert_int_equal(s.rc_main[4], 0);

    tide_barrier b;
    tide_barrier_init(&b, 2);
    assert_int_equal(tide_barrier_wait(&b), -EPERM);
}

/* ========================================================== task-locals */

static tide_local_key g_key_a, g_key_b;
static int g_va = 1, g_vb = 2, g_vc = 3, g_vd = 4;

typedef struct locals {
    void *child_a_start, *child_b_start, *child_a_after, *grand_a;
    void *parent_a_after, *parent_b_after;
    void *late_child_a;
    void *bare_child_a;
    int rc_set, rc_set_null, rc_set_bad, rc_set_unset_key;
    void *get_null, *get_bad;
    tide_event go;
} locals;

static int grandchild(void *arg)
{
    locals *l = arg;
    l->grand_a = tide_local_get(&g_key_a);
    return 0;
}

static int child_locals(void *arg)
{
    locals *l = arg;
    tide_task *g;
    l->child_a_start = tide_local_get(&g_key_a);
    l->child_b_start = tide_local_get(&g_key_b);
    tide_local_set(&g_key_a, &g_vc); /* the parent does not see this */
    tide_create_task(&g, grandchild, l);
    tide_await(g);
    tide_event_wait(&l->go); /* the parent changes its value meanwhile */
    l->child_a_after = tide_local_get(&g_key_a);
    return 0;
}

static int late_child(void *arg)
{
    locals *l = arg;
    l->late_child_a = tide_local_get(&g_key_a);
    return 0;
}

static int bare_child(void *arg)
{
    locals *l = arg;
    l->bare_child_a = tide_local_get(&g_key_a);
    return 0;
}

static int bare_parent(void *arg)
{
    tide_task *t;
    tide_create_task(&t, bare_child, arg);
    return tide_await(t);
}

static int locals_main(void *arg)
{
    locals *l = arg;
    tide_task *t, *t2, *t3;
    tide_local_key unset = {0};

    tide_event_init(&l->go);
    /* a task without values spawns one without values */
    tide_create_task(&t3, bare_parent, l);
    tide_await(t3);
    l->rc_set = tide_local_set(&g_key_a, &g_va);
    tide_local_set(&g_key_b, &g_vb);
    tide_create_task(&t, child_locals, l);
    settle(); /* the child changes its copy */
    l->parent_a_after = tide_local_get(&g_key_a);
    tide_local_set(&g_key_a, &g_vd); /* the child does not see this */
    tide_local_set(&g_key_b, NULL);
    l->parent_b_after = tide_local_get(&g_key_b);
    tide_event_set(&l->go);
    tide_create_task(&t2, late_child, l);
    tide_await(t);
    tide_await(t2);
    l->rc_set_null = tide_local_set(NULL, &g_va);
    l->rc_set_bad = tide_local_set(&unset, &g_va);
    l->get_null = tide_local_get(NULL);
    l->get_bad = tide_local_get(&unset);
    return 0;
}

static void test_task_locals(void **state)
{
    (void)state;
    locals l;
    memset(&l, 0, sizeof l);
    assert_int_equal(tide_local_key_init(&g_key_a), 0);
    assert_int_equal(tide_local_key_init(&g_key_b), 0);
    assert_int_equal(tide_local_key_init(NULL), -EINVAL);
    assert_int_not_equal(g_key_a.id, g_key_b.id);
    assert_int_equal(tt_vrun(locals_main, &l), 0);
    assert_null(l.bare_child_a);
    assert_int_equal(l.rc_set, 0);
    assert_ptr_equal(l.child_a_start, &g_va);
    assert_ptr_equal(l.child_b_start, &g_vb);
    assert_ptr_equal(l.grand_a, &g_vc);      /* the grandchild copies the child */
    assert_ptr_equal(l.parent_a_after, &g_va); /* child's change not seen */
    assert_ptr_equal(l.child_a_after, &g_vc);  /* parent's change not seen */
    assert_null(l.parent_b_after);
    assert_ptr_equal(l.late_child_a, &g_vd);
    assert_int_equal(l.rc_set_null, -EINVAL);
    assert_int_equal(l.rc_set_bad, -EINVAL);
    assert_null(l.get_null);
    assert_null(l.get_bad);

    /* outside a task */
    assert_null(tide_local_get(&g_key_a));
    assert_int_equal(tide_local_set(&g_key_a, &g_va), -EPERM);
    assert_null(tide_local_get(&g_key_a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_fifo_round_robin),
        cmocka_unit_test(test_lock_cancel_middle_waiter),
        cmocka_unit_test(test_lock_timeout),
        cmocka_unit_test(test_lock_handed_then_cancelled),
        cmocka_unit_test(test_lock_misuse),
        cmocka_unit_test(test_event_wakes_all),
        cmocka_unit_test(test_cond_notify_fifo),
        cmocka_unit_test(test_cond_notify_all_cancel_timeout),
        cmocka_unit_test(test_cond_cancel_while_relocking),
        cmocka_unit_test(test_cond_misuse),
        cmocka_unit_test(test_sem_fifo),
        cmocka_unit_test(test_sem_cancel_timeout_handed),
        cmocka_unit_test(test_bsem_overflow),
        cmocka_unit_test(test_bsem_zero_bound),
        cmocka_unit_test(test_sem_misuse),
        cmocka_unit_test(test_barrier_rounds),
        cmocka_unit_test(test_barrier_cancelled_party),
        cmocka_unit_test(test_barrier_timeout),
        cmocka_unit_test(test_barrier_indexes_distinct_after_leave),
        cmocka_unit_test(test_barrier_misuse),
        cmocka_unit_test(test_task_locals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
