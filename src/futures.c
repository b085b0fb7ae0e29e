/*
 * wait / gather / as_completed: one waiter over futures (asyncio's, which
 * take any awaitable).  A task joins through its future (tide_task_future),
 * so tide_wait and tide_as_completed over tasks are this same waiter over
 * their tasks' futures, and tasks and plain futures mix in one call.
 *
 * Each call hangs a watch on every pending future (future.c calls it from
 * the completion itself, in registration order) and suspends once; the
 * watches live in one array the call allocates.  Over tasks, the first
 * call on a task also makes its future (once: it lives as long as the
 * task).
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

/* The i-th future of a call's array: of futures, or of tasks (whose
 * futures the call made before). */
typedef tide_future *(*nth_fn)(void *arr, size_t i);

static tide_future *nth_future(void *arr, size_t i)
{
    return ((tide_future **)arr)[i];
}

static tide_future *nth_task(void *arr, size_t i)
{
    return ((tide_task **)arr)[i]->fut;
}

typedef struct fwait {
    tide_task *waiter;
    size_t n, ndone;
    int mode, failed;
} fwait;

static int f_failed(const tide_future *f)
{
    int rc = tide_future_result(f, NULL);
    return rc < 0 && rc != -ECANCELED;
}

static int f_satisfied(const fwait *c)
{
    switch (c->mode) {
    case TIDE_FIRST_COMPLETED:
        return c->ndone > 0;
    case TIDE_FIRST_ERROR:
        return c->failed || c->ndone == c->n;
    default:
        return c->ndone == c->n;
    }
}

static void fw_fn(tide__future_watch *w, tide_future *f)
{
    fwait *c = w->ctx;

    c->ndone++;
    if (f_failed(f))
        c->failed = 1;
    if (c->waiter && f_satisfied(c)) {
        tide_task *t = c->waiter;
        c->waiter = NULL;
        tide__wake(t, 0);
    }
}

static void fw_unlink(void *arg)
{
    ((fwait *)arg)->waiter = NULL;
}

static int check_mode(int mode)
{
    return mode == TIDE_FIRST_COMPLETED || mode == TIDE_FIRST_ERROR || mode == TIDE_ALL_COMPLETED
               ? 0
               : -EINVAL;
}

/* Every future valid and of cur's loop (a future listed twice is fine:
 * it counts twice). */
static int check_futures(tide_task *cur, tide_future **fs, size_t n)
{
    size_t i;

    if (!fs && n)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    for (i = 0; i < n; i++) {
        if (!fs[i])
            return -EINVAL;
        if (tide__future_loop(fs[i]) != cur->loop)
            return -EPERM;
    }
    return 0;
}

/* Every task valid, on cur's loop, listed once, with a handle that lives
 * after it ends (not a group member, not detached, not cur); then makes
 * the future of each. */
static int check_tasks(tide_task *cur, tide_task **ts, size_t n)
{
    size_t i;
    int rc = 0;

    if (!ts && n)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    for (i = 0; i < n && rc == 0; i++) {
        if (tide__task_check(ts[i]) < 0)
            rc = -EINVAL;
        else if (ts[i]->loop != cur->loop)
            rc = -EPERM;
        else if (ts[i] == cur || ts[i]->mark || ts[i]->group || ts[i]->detached)
            rc = -EINVAL; /* itself, twice (marked below), or a handle that dies
                             when the task ends */
        else
            ts[i]->mark = 1;
    }
    for (size_t j = 0; j < (rc ? i - 1 : i); j++) /* not the bad one: maybe NULL */
        ts[j]->mark = 0;
    for (i = 0; i < n && rc == 0; i++) {
        tide_future *f;
        rc = tide_task_future(ts[i], &f); /* -ENOMEM; those made stay with their tasks */
    }
    return rc;
}

/* The waiter: suspends cur until mode holds for the n futures of arr and
 * returns how many are done, or the suspension's error, or -ENOMEM. */
static int wait_all(tide_task *cur, void *arr, nth_fn nth, size_t n, int mode, int kind, int flags)
{
    tide__future_watch *ws;
    fwait c;
    size_t i;
    int rc;

    memset(&c, 0, sizeof c);
    c.n = n;
    c.mode = mode;
    for (i = 0; i < n; i++) {
        if (tide_future_done(nth(arr, i))) {
            c.ndone++;
            c.failed |= f_failed(nth(arr, i));
        }
    }
    if (n == 0 || f_satisfied(&c))
        return (int)c.ndone;
    ws = tide__calloc(n, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if (!tide_future_done(nth(arr, i))) {
            ws[i].ctx = &c;
            ws[i].fn = fw_fn;
            tide__future_watch_add(nth(arr, i), &ws[i]);
        }
    }
    c.waiter = cur;
    TIDE__WAIT_ON(cur, kind, &c);
    rc = tide__suspend(cur, TIDE__NEVER, fw_unlink, &c, flags);
    for (i = 0; i < n; i++)
        tide__future_watch_remove(&ws[i]);
    tide__free(ws);
    return rc < 0 ? rc : (int)c.ndone;
}

int tide_wait(tide_task **ts, size_t n, int mode)
{
    tide_task *cur = tide__current();
    int rc = check_mode(mode);

    if (rc == 0)
        rc = check_tasks(cur, ts, n);
    if (rc < 0)
        return rc;
    return wait_all(cur, ts, nth_task, n, mode, TIDE_WAIT_TASKS, 0);
}

int tide_wait_futures(tide_future **fs, size_t n, int mode)
{
    tide_task *cur = tide__current();
    int rc = check_mode(mode);

    if (rc == 0)
        rc = check_futures(cur, fs, n);
    if (rc < 0)
        return rc;
    return wait_all(cur, fs, nth_future, n, mode, TIDE_WAIT_FUTURE, 0);
}

int tide_gather_futures(tide_future **fs, size_t n, int *results, void **values)
{
    tide_task *cur = tide__current();
    int rc, stop = 0, first = 0;
    size_t i;

    rc = check_futures(cur, fs, n);
    if (rc < 0)
        return rc;
    rc = wait_all(cur, fs, nth_future, n, TIDE_ALL_COMPLETED, TIDE_WAIT_FUTURE, 0);
    if (rc < 0 && rc != -ENOMEM) {
        /* Cancelled or timed out: cancel what is pending (a task's future
         * cancels its task) and wait until all are done. */
        stop = rc;
        for (i = 0; i < n; i++)
            if (!tide_future_done(fs[i]))
                (void)tide_future_cancel(fs[i]);
        rc = wait_all(cur, fs, nth_future, n, TIDE_ALL_COMPLETED, TIDE_WAIT_FUTURE,
                      TIDE__WAIT_NOCANCEL);
    }
    if (rc < 0)
        return stop ? stop : rc; /* -ENOMEM: nothing was waited for */
    for (i = 0; i < n; i++) {
        void *v = NULL;
        rc = tide_future_result(fs[i], &v);
        if (results)
            results[i] = rc;
        if (values)
            values[i] = v;
        if (rc < 0 && !first)
            first = rc;
    }
    return stop ? stop : first;
}

/* ------------------------------------------------------- as_completed */

/* A watch that knows what the iterator gives for its future: the future
 * itself, or its task.  Over tasks, a hold on the task as well until the
 * task is given: a task released before (awaited or detached elsewhere) is
 * dropped, never given (its handle may be a new task's by then). */
typedef struct iwatch {
    tide__future_watch w;
    tide__watch hold;
    struct tide_future_iter *it;
    void *item;
} iwatch;

/* One iterator over futures; tide_as_completed (over tasks) is the same
 * one giving each future's task. */
struct tide_future_iter {
    tide_task *waiter; /* in next(), waiting */
    tide_loop *loop;
    int kind;             /* the wait kind, for dumps */
    size_t n, head, tail; /* done, not yet given: done[head, tail) */
    size_t gone;          /* tasks released before they were given */
    iwatch **done;
    iwatch *ws;
};

struct tide_as_completed {
    tide_future_iter it;
};

static void it_fn(tide__future_watch *w, tide_future *f)
{
    tide_future_iter *it = w->ctx;

    (void)f;
    it->done[it->tail++] = (iwatch *)w;
    if (it->waiter) {
        tide_task *t = it->waiter;
        it->waiter = NULL;
        tide__wake(t, 0);
    }
}

/* Frees the iterator (of either kind: it is the first member). */
static void it_free(tide_future_iter *it)
{
    size_t i;

    for (i = 0; i < it->n; i++) {
        tide__future_watch_remove(&it->ws[i].w);
        tide__watch_remove(&it->ws[i].hold);
    }
    if (it->waiter)
        tide__interrupt(it->waiter, -EBADF); /* a task waits in next(): not in freed memory */
    tide__free(it->done);
    tide__free(it->ws);
    tide__free(it);
}

/* A task not given yet is released: off done[] if it is there (the order
 * of the others kept), and one fewer to give. */
static void it_gone(tide__watch *h, tide_task *t)
{
    iwatch *iw = tide__container_of(h, iwatch, hold);
    tide_future_iter *it = iw->it;
    size_t i;

    (void)t;
    for (i = it->head; i < it->tail; i++) {
        if (it->done[i] == iw) {
            memmove(&it->done[i], &it->done[i + 1], (it->tail - i - 1) * sizeof *it->done);
            it->tail--;
            break;
        }
    }
    it->gone++;
}

/* An iterator of size bytes (a tide_future_iter first) over the n futures
 * of arr (tasks: of the tasks of arr, and it gives the tasks); NULL: no
 * memory. */
static tide_future_iter *it_new(size_t size, tide_task *cur, void *arr, size_t n, int tasks)
{
    nth_fn nth = tasks ? nth_task : nth_future;
    tide_future_iter *it = tide__calloc(1, size);
    size_t i;

    if (!it)
        return NULL;
    it->n = n;
    it->loop = cur->loop;
    it->kind = tasks ? TIDE_WAIT_TASKS : TIDE_WAIT_FUTURE;
    it->done = tide__calloc(n ? n : 1, sizeof *it->done);
    it->ws = tide__calloc(n ? n : 1, sizeof *it->ws);
    if (!it->done || !it->ws) {
        it->n = 0; /* no watch yet */
        it_free(it);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        tide_future *f = nth(arr, i);
        it->ws[i].item = tasks ? (void *)((tide_task **)arr)[i] : (void *)f;
        it->ws[i].it = it;
        if (tasks) {
            it->ws[i].hold.fn = it_gone;
            tide__hold_add(((tide_task **)arr)[i], &it->ws[i].hold);
        }
        if (tide_future_done(f)) {
            it->done[it->tail++] = &it->ws[i]; /* done before: in array order */
        } else {
            it->ws[i].w.ctx = it;
            it->ws[i].w.fn = it_fn;
            tide__future_watch_add(f, &it->ws[i].w);
        }
    }
    return it;
}

static void it_unlink(void *arg)
{
    ((tide_future_iter *)arg)->waiter = NULL;
}

/* The next item, or NULL with *rc the error; a task given is no longer
 * held. */
static void *it_next(tide_future_iter *it, int *rc)
{
    tide_task *cur = tide__current();
    iwatch *iw;

    *rc = 0;
    if (!cur || cur->loop != it->loop) {
        *rc = -EPERM;
        return NULL;
    }
    if (it->head < it->tail && (cur->cancel_req || cur->scope))
        *rc = tide__cancel_check(cur, NULL); /* a cancellation point either way */
    /* Until one is there: one that ended may be released (dropped) by
     * another task before we run again. */
    while (*rc == 0 && it->head == it->tail) {
        if (it->head == it->n - it->gone)
            *rc = -ENOENT;
        else if (it->waiter)
            *rc = -EBUSY;
        else {
            it->waiter = cur;
            TIDE__WAIT_ON(cur, it->kind, it);
            *rc = tide__suspend(cur, TIDE__NEVER, it_unlink, it, 0);
        }
    }
    if (*rc < 0)
        return NULL;
    iw = it->done[it->head++];
    tide__watch_remove(&iw->hold); /* given: the caller's to await (not held over futures) */
    return iw->item;
}

/* The checks and the iterator of either kind's _new. */
static int it_make(tide_future_iter **out, size_t size, void *arr, size_t n, int tasks)
{
    tide_task *cur = tide__current();
    int rc = tasks ? check_tasks(cur, arr, n) : check_futures(cur, arr, n);

    if (rc < 0)
        return rc;
    *out = it_new(size, cur, arr, n, tasks);
    return *out ? 0 : -ENOMEM;
}

int tide_as_completed_futures_new(tide_future_iter **out, tide_future **fs, size_t n)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    return it_make(out, sizeof **out, fs, n, 0);
}

int tide_as_completed_futures_next(tide_future_iter *it, tide_future **f)
{
    int rc;

    if (!it || !f)
        return -EINVAL;
    *f = it_next(it, &rc);
    return rc;
}

void tide_as_completed_futures_free(tide_future_iter *it)
{
    if (it)
        it_free(it);
}

/* ------------------------------------------- as_completed over tasks */

int tide_as_completed_new(tide_as_completed **out, tide_task **ts, size_t n)
{
    tide_future_iter *it = NULL;
    int rc;

    if (!out)
        return -EINVAL;
    rc = it_make(&it, sizeof **out, ts, n, 1);
    *out = (tide_as_completed *)(void *)it;
    return rc;
}

int tide_as_completed_next(tide_as_completed *ac, tide_task **t)
{
    int rc;

    if (!ac || !t)
        return -EINVAL;
    *t = it_next(&ac->it, &rc);
    return rc;
}

void tide_as_completed_free(tide_as_completed *ac)
{
    if (ac)
        it_free(&ac->it);
}
