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

/* What is registered on a pending future, in registration order: a
 * waiting task (a node on its stack), a done callback (heap), or an
 * internal watch (tide_future_wait's, on its caller's stack). */
typedef tide__fnode fnode; /* kind: N_* */

enum { N_WAITER = 0, N_CB, N_WATCH };

typedef struct fwaiter {
    fnode n;
    struct tide_future *f;
    tide_task *task;
    void *value;
} fwaiter;

typedef struct fcb {
    fnode n;
    tide__runnable r; /* queued on the loop directly: scheduling cannot fail */
    tide_future *f;
    tide_future_cb cb;
    void *arg;
} fcb;

struct tide_future {
    tide_loop *loop;
    int state;      /* F_* */
    int err;        /* the error of F_ERROR */
    void *value;    /* the result of F_RESULT */
    int code;       /* what a result returns (>= 0): a task's int result */
    fnode *head, *tail; /* waiters, callbacks and watches, FIFO */
    unsigned pending_cbs; /* scheduled, not yet run */
    int freed;      /* tide_future_free was called */
    tide_task *task; /* the pending task whose future this is, or NULL */
    int taskowned;  /* made by tide_task_future: freed with its task */
};

tide_loop *tide__future_loop(const tide_future *f)
{
    return f->loop;
}

static void node_push(tide_future *f, fnode *n, int kind)
{
    n->kind = kind;
    n->next = NULL;
    n->prev = f->tail;
    if (f->tail)
        f->tail->next = n;
    else
        f->head = n;
    f->tail = n;
}

static void node_unlink(tide_future *f, fnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        f->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        f->tail = n->prev;
    n->prev = n->next = NULL;
}

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
        return f->code;
    case F_ERROR:
        return f->err;
    case F_CANCELLED:
        return -ECANCELED;
    }
    return -EAGAIN;
}

static void maybe_free(tide_future *f)
{
    if (f->freed && f->pending_cbs == 0 && !f->head)
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

static void schedule_cb(tide_future *f, fcb *c)
{
    c->r.run = run_cb;
    c->r.drop = drop_cb;
    f->pending_cbs++;
    tide__runq_push(&f->loop->ready, &c->r);
}

/* Runs what was registered, in registration order: waiters and callbacks
 * go to the ready queue in that order (asyncio's waking order). */
static void complete_nodes(tide_future *f)
{
    int rc = outcome(f);
    fnode *n;

    while ((n = f->head)) {
        node_unlink(f, n);
        if (n->kind == N_WAITER) {
            fwaiter *w = (fwaiter *)n;
            w->value = f->value;
            tide__wake(w->task, rc);
        } else if (n->kind == N_CB) {
            schedule_cb(f, tide__container_of(n, fcb, n));
        } else {
            tide__future_watch *w = tide__container_of(n, tide__future_watch, node);
            w->f = NULL;
            w->fn(w, f);
        }
    }
}

static int complete_code(tide_future *f, int state, void *value, int err, int code)
{
    if (!f)
        return -EINVAL;
    if (tide__loop_thread_check(f->loop) < 0)
        return -EPERM; /* another thread: tide_call_soon_threadsafe it */
    if (f->state != F_PENDING)
        return -EALREADY;
    f->state = state;
    f->value = value;
    f->err = err;
    f->code = code;
    complete_nodes(f);
    return 0;
}

static int complete(tide_future *f, int state, void *value, int err)
{
    return complete_code(f, state, value, err, 0);
}

void tide__future_task_done(tide_future *f, int result, void *ptr)
{
    f->task = NULL;
    if (result >= 0)
        complete_code(f, F_RESULT, ptr, 0, result);
    else if (result == -ECANCELED)
        complete(f, F_CANCELLED, NULL, 0);
    else
        complete(f, F_ERROR, NULL, result);
}

void tide__future_task_gone(tide_future *f)
{
    fnode *n;

    f->task = NULL;
    f->taskowned = 0;
    if (f->state == F_PENDING) {
        /* Only when a loop is freed with tasks it could not finish: what
         * waits for them is being released too; nothing is woken. */
        f->state = F_CANCELLED;
        while ((n = f->head)) {
            node_unlink(f, n);
            if (n->kind == N_CB)
                tide__free(tide__container_of(n, fcb, n));
            else if (n->kind == N_WATCH)
                tide__container_of(n, tide__future_watch, node)->f = NULL;
        }
    }
    tide_future_free(f);
}

int tide_task_future(tide_task *t, tide_future **out)
{
    tide_future *f;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (tide__task_check(t) < 0)
        return -EINVAL;
    if (!t->fut) {
        rc = tide_future_new_on(&f, t->loop);
        if (rc < 0)
            return rc;
        f->taskowned = 1;
        if (t->state == TIDE_TASK_DONE) {
            tide__future_task_done(f, t->result, t->result_ptr);
        } else {
            f->task = t;
        }
        t->fut = f;
    } else if (tide__loop_thread_check(t->loop) < 0) {
        return -EPERM;
    }
    *out = t->fut;
    return 0;
}

void tide__future_watch_add(tide_future *f, tide__future_watch *w)
{
    w->f = f;
    node_push(f, &w->node, N_WATCH);
}

void tide__future_watch_remove(tide__future_watch *w)
{
    if (w->f) {
        node_unlink(w->f, &w->node);
        w->f = NULL;
    }
}

int tide_future_set_result(tide_future *f, void *value)
{
    if (f && f->taskowned)
        return -EINVAL; /* a task's future: its task completes it */
    return complete(f, F_RESULT, value, 0);
}

int tide_future_set_error(tide_future *f, int err)
{
    if (err >= 0 || (f && f->taskowned))
        return -EINVAL;
    return complete(f, F_ERROR, NULL, err);
}

int tide_future_cancel(tide_future *f)
{
    if (f && f->task && f->state == F_PENDING) {
        /* A task's future: cancelling it cancels the task (asyncio's
         * Task.cancel); the future is done when the task has ended. */
        if (tide__loop_thread_check(f->loop) < 0)
            return -EPERM;
        return tide_cancel(f->task);
    }
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
    if (!f || f->taskowned)
        return; /* a task's future goes with its task */
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
    if (f->state != F_PENDING)
        schedule_cb(f, c);
    else
        node_push(f, &c->n, N_CB);
    return 0;
}

static void unlink_waiter(void *arg)
{
    fwaiter *w = arg;

    node_unlink(w->f, &w->n);
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
    node_push(f, &w.n, N_WAITER);
    TIDE__WAIT_ON(cur, TIDE_WAIT_FUTURE, f);
    rc = tide__suspend(cur, TIDE__NEVER, unlink_waiter, &w, 0);
    if (rc >= 0 && value)
        *value = w.value;
    return rc;
}
