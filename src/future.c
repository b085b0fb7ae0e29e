/*
 * Futures: a result that will be set later, awaited by any number of tasks,
 * with done callbacks run from the loop (as asyncio does, never from inside
 * set_result).
 *
 * A waiting task is linked into the future through a node on its own stack;
 * waking copies the outcome into that node, so a woken task never touches
 * the future again (it may be freed by then).  Done callbacks get the future
 * itself, so tide_future_free only marks it while callbacks are pending; the
 * last one frees it.
 */
#include "tide_int.h"

#include <errno.h>

enum { F_PENDING = 0, F_RESULT, F_ERROR, F_CANCELLED };

typedef struct fwaiter {
    struct fwaiter *prev, *next;
    struct tide_future *f;
    tide_task *task;
    void *value;
} fwaiter;

typedef struct fcb {
    tide__runnable r; /* queued on the loop directly: scheduling cannot fail */
    struct fcb *next;
    tide_future *f;
    tide_future_cb cb;
    void *arg;
} fcb;

struct tide_future {
    tide_loop *loop;
    int state;      /* F_* */
    int err;        /* the error of F_ERROR */
    void *value;    /* the result of F_RESULT */
    fwaiter *waiters, *wtail; /* FIFO */
    fcb *cbs;       /* callbacks not yet scheduled (in reverse order of adding) */
    unsigned pending_cbs; /* scheduled, not yet run */
    int freed;      /* tide_future_free was called */
};

int tide_future_new_on(tide_future **out, tide_loop *loop)
{
    tide_future *f;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!loop || tide__loop_thread_check(loop) < 0)
        return -EPERM;
    f = tide__calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->loop = loop;
    if (TIDE__UNLIKELY(loop->dbg.on))
        tide__dbg_future_new(loop, f); /* the leak report (debug.c) */
    *out = f;
    return 0;
}

int tide_future_new(tide_future **out)
{
    if (!out)
        return -EINVAL;
    return tide_future_new_on(out, tide__tls_loop);
}

static int outcome(const tide_future *f)
{
    switch (f->state) {
    case F_RESULT:
        return 0;
    case F_ERROR:
        return f->err;
    case F_CANCELLED:
        return -ECANCELED;
    }
    return -EAGAIN;
}

static void maybe_free(tide_future *f)
{
    if (f->freed && f->pending_cbs == 0 && !f->cbs)
        tide__free(f);
}

static void run_cb(tide_loop *loop, tide__runnable *r)
{
    fcb *c = tide__container_of(r, fcb, r);
    tide_future *f = c->f;

    (void)loop;

    c->cb(f, c->arg);
    tide__free(c);
    f->pending_cbs--;
    maybe_free(f);
}

/* The loop is torn down with the callback still queued: it never runs. */
static void drop_cb(tide_loop *loop, tide__runnable *r)
{
    fcb *c = tide__container_of(r, fcb, r);
    tide_future *f = c->f;

    (void)loop;
    tide__free(c);
    f->pending_cbs--;
    maybe_free(f);
}

/* Schedules the callbacks in the order they were added. */
static void schedule_cbs(tide_future *f)
{
    fcb *c = f->cbs, *rev = NULL, *next;

    f->cbs = NULL;
    for (; c; c = next) { /* reverse the LIFO list */
        next = c->next;
        c->next = rev;
        rev = c;
    }
    for (c = rev; c; c = next) {
        next = c->next;
        c->r.run = run_cb;
        c->r.drop = drop_cb;
        f->pending_cbs++;
        tide__runq_push(&f->loop->ready, &c->r);
    }
}

static int complete(tide_future *f, int state, void *value, int err)
{
    fwaiter *w, *next;
    int rc;

    if (!f)
        return -EINVAL;
    if (tide__loop_thread_check(f->loop) < 0)
        return -EPERM; /* another thread: tide_call_soon_threadsafe it */
    if (f->state != F_PENDING)
        return -EALREADY;
    f->state = state;
    f->value = value;
    f->err = err;
    rc = outcome(f);
    for (w = f->waiters; w; w = next) {
        next = w->next;
        w->value = value;
        w->prev = w->next = NULL;
        tide__wake(w->task, rc);
    }
    f->waiters = f->wtail = NULL;
    schedule_cbs(f);
    return 0;
}

int tide_future_set_result(tide_future *f, void *value)
{
    return complete(f, F_RESULT, value, 0);
}

int tide_future_set_error(tide_future *f, int err)
{
    if (err >= 0)
        return -EINVAL;
    return complete(f, F_ERROR, NULL, err);
}

int tide_future_cancel(tide_future *f)
{
    return complete(f, F_CANCELLED, NULL, 0);
}

int tide_future_done(const tide_future *f)
{
    return f && f->state != F_PENDING;
}

int tide_future_result(const tide_future *f, void **value)
{
    if (!f)
        return -EINVAL;
    if (TIDE__UNLIKELY(__atomic_load_n(&tide__dbg_loops, __ATOMIC_RELAXED)))
        tide__dbg_future_seen(f, 0); /* awaited: not a leak (debug.c) */
    if (f->state == F_RESULT && value)
        *value = f->value;
    return outcome(f);
}

void tide_future_free(tide_future *f)
{
    if (!f)
        return;
    if (TIDE__UNLIKELY(__atomic_load_n(&tide__dbg_loops, __ATOMIC_RELAXED)))
        tide__dbg_future_seen(f, 1); /* forgotten (debug.c) */
    if (f->state == F_PENDING)
        complete(f, F_CANCELLED, NULL, 0);
    f->freed = 1;
    maybe_free(f);
}

int tide_future_add_done_callback(tide_future *f, tide_future_cb cb, void *arg)
{
    fcb *c;

    if (!f || !cb || f->freed)
        return -EINVAL;
    if (tide__loop_thread_check(f->loop) < 0)
        return -EPERM;
    if (TIDE__UNLIKELY(__atomic_load_n(&tide__dbg_loops, __ATOMIC_RELAXED)))
        tide__dbg_future_seen(f, 0); /* awaited: not a leak (debug.c) */
    c = tide__malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->f = f;
    c->cb = cb;
    c->arg = arg;
    c->next = f->cbs;
    f->cbs = c;
    if (f->state != F_PENDING)
        schedule_cbs(f);
    return 0;
}

static void unlink_waiter(void *arg)
{
    fwaiter *w = arg;

    if (w->prev)
        w->prev->next = w->next;
    else
        w->f->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        w->f->wtail = w->prev;
}

int tide_future_await(tide_future *f, void **value)
{
    tide_task *cur = tide__current();
    fwaiter w;
    int rc;

    if (!f || f->freed)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (cur->loop != f->loop)
        return -EPERM; /* as tide_await of another loop's task */
    if (TIDE__UNLIKELY(__atomic_load_n(&tide__dbg_loops, __ATOMIC_RELAXED)))
        tide__dbg_future_seen(f, 0); /* awaited: not a leak (debug.c) */
    if (f->state != F_PENDING)
        return tide_future_result(f, value);
    w.f = f;
    w.task = cur;
    w.value = NULL;
    w.next = NULL;
    w.prev = f->wtail;
    if (f->wtail)
        f->wtail->next = &w;
    else
        f->waiters = &w;
    f->wtail = &w;
    TIDE__WAIT_ON(cur, TIDE_WAIT_FUTURE, f);
    rc = tide__suspend(cur, TIDE__NEVER, unlink_waiter, &w, 0);
    if (rc == 0 && value)
        *value = w.value;
    return rc;
}
