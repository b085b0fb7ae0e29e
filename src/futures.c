/*
 * gather / wait / as_completed over futures (asyncio's, which take any
 * awaitable).  A task joins them through its future (tide_task_future), so
 * tasks and plain futures mix in one call.
 *
 * Each call hangs a watch on every pending future (future.c calls it from
 * the completion itself, in registration order) and suspends once; the
 * watches live in one array the call allocates, the only allocation.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

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

static int wait_futures(tide_task *cur, tide_future **fs, size_t n, int mode, int flags)
{
    tide__future_watch *ws;
    fwait c;
    size_t i;
    int rc;

    memset(&c, 0, sizeof c);
    c.n = n;
    c.mode = mode;
    for (i = 0; i < n; i++) {
        if (tide_future_done(fs[i])) {
            c.ndone++;
            c.failed |= f_failed(fs[i]);
        }
    }
    if (n == 0 || f_satisfied(&c))
        return (int)c.ndone;
    ws = tide__calloc(n, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if (!tide_future_done(fs[i])) {
            ws[i].ctx = &c;
            ws[i].fn = fw_fn;
            tide__future_watch_add(fs[i], &ws[i]);
        }
    }
    c.waiter = cur;
    TIDE__WAIT_ON(cur, TIDE_WAIT_FUTURE, &c);
    rc = tide__suspend(cur, TIDE__NEVER, fw_unlink, &c, flags);
    for (i = 0; i < n; i++)
        tide__future_watch_remove(&ws[i]);
    tide__free(ws);
    return rc < 0 ? rc : (int)c.ndone;
}

int tide_wait_futures(tide_future **fs, size_t n, int mode)
{
    tide_task *cur = tide__current();
    int rc;

    if (mode != TIDE_FIRST_COMPLETED && mode != TIDE_FIRST_ERROR && mode != TIDE_ALL_COMPLETED)
        return -EINVAL;
    rc = check_futures(cur, fs, n);
    if (rc < 0)
        return rc;
    return wait_futures(cur, fs, n, mode, 0);
}

int tide_gather_futures(tide_future **fs, size_t n, int *results, void **values)
{
    tide_task *cur = tide__current();
    int rc, stop = 0, first = 0;
    size_t i;

    rc = check_futures(cur, fs, n);
    if (rc < 0)
        return rc;
    rc = wait_futures(cur, fs, n, TIDE_ALL_COMPLETED, 0);
    if (rc < 0 && rc != -ENOMEM) {
        /* Cancelled or timed out: cancel what is pending (a task's future
         * cancels its task) and wait until all are done. */
        stop = rc;
        for (i = 0; i < n; i++)
            if (!tide_future_done(fs[i]))
                (void)tide_future_cancel(fs[i]);
        rc = wait_futures(cur, fs, n, TIDE_ALL_COMPLETED, TIDE__WAIT_NOCANCEL);
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

struct tide_future_iter {
    tide_task *waiter;
    tide_loop *loop;
    size_t n, head, tail;
    tide_future **done;
    tide__future_watch *ws;
};

static void it_fn(tide__future_watch *w, tide_future *f)
{
    tide_future_iter *it = w->ctx;

    it->done[it->tail++] = f;
    if (it->waiter) {
        tide_task *t = it->waiter;
        it->waiter = NULL;
        tide__wake(t, 0);
    }
}

int tide_as_completed_futures_new(tide_future_iter **out, tide_future **fs, size_t n)
{
    tide_task *cur = tide__current();
    tide_future_iter *it;
    size_t i;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    rc = check_futures(cur, fs, n);
    if (rc < 0)
        return rc;
    it = tide__calloc(1, sizeof *it);
    if (!it)
        return -ENOMEM;
    it->n = n;
    it->loop = cur->loop;
    it->done = tide__calloc(n ? n : 1, sizeof *it->done);
    it->ws = tide__calloc(n ? n : 1, sizeof *it->ws);
    if (!it->done || !it->ws) {
        tide__free(it->done);
        tide__free(it->ws);
        tide__free(it);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if (tide_future_done(fs[i])) {
            it->done[it->tail++] = fs[i];
        } else {
            it->ws[i].ctx = it;
            it->ws[i].fn = it_fn;
            tide__future_watch_add(fs[i], &it->ws[i]);
        }
    }
    *out = it;
    return 0;
}

static void it_unlink(void *arg)
{
    ((tide_future_iter *)arg)->waiter = NULL;
}

int tide_as_completed_futures_next(tide_future_iter *it, tide_future **f)
{
    tide_task *cur = tide__current();
    int rc;

    if (!it || !f)
        return -EINVAL;
    *f = NULL;
    if (!cur || cur->loop != it->loop)
        return -EPERM;
    if (it->head == it->n)
        return -ENOENT;
    if (it->waiter)
        return -EBUSY;
    if (it->head == it->tail) {
        it->waiter = cur;
        TIDE__WAIT_ON(cur, TIDE_WAIT_FUTURE, it);
        rc = tide__suspend(cur, TIDE__NEVER, it_unlink, it, 0);
        if (rc < 0)
            return rc;
    } else if (cur->cancel_req || cur->scope) {
        rc = tide__cancel_check(cur, NULL); /* a cancellation point either way */
        if (rc < 0)
            return rc;
    }
    *f = it->done[it->head++];
    return 0;
}

void tide_as_completed_futures_free(tide_future_iter *it)
{
    size_t i;

    if (!it)
        return;
    for (i = 0; i < it->n; i++)
        tide__future_watch_remove(&it->ws[i]);
    if (it->waiter)
        tide__interrupt(it->waiter, -EBADF);
    tide__free(it->done);
    tide__free(it->ws);
    tide__free(it);
}
