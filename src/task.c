/*
 * Tasks: a coroutine with its own stack, plus what a future has (a result
 * and someone waiting for it).
 *
 * Life of a task: CREATED (queued to start) -> RUNNING <-> READY/WAITING ->
 * DONE -> released (by tide_await, tide_gather, tide_wait_for, or at once
 * when detached).  The task struct sits at the top of its stack, so a
 * released task's memory goes back to the stack pool with its stack.
 *
 * Suspending is: record what to undo if interrupted (unlink), arm a timer if
 * a deadline applies, switch to the loop.  Waking is: disarm the timer, push
 * on the ready queue.  Neither allocates nor makes a syscall.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

#ifdef TIDE__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define MAX_STACK_SIZE ((size_t)1 << 30)
#define TOP_RESERVE 16 /* the stack pool's free-list link lives above the task */
#define SMALL_STACK_ALIGN 256 /* unguarded stacks: sizes are multiples of this */

tide_task *tide__current(void)
{
    tide_loop *loop = tide__tls_loop;
    return loop ? loop->current : NULL;
}

tide_task *tide_current_task(void)
{
    return tide__current();
}

int tide__task_check(const tide_task *t)
{
    return t && t->magic == TIDE__TASK_MAGIC ? 0 : -EINVAL;
}

/* -------------------------------------------------------- suspend/wake */

static void task_timer_fire(tide_loop *loop, tide__tnode *n)
{
    tide_task *t = tide__container_of(n, tide_task, timer);

    (void)loop;
    if (t->wait_until <= n->deadline) {
        tide__interrupt(t, 0); /* the wait's own deadline: a sleep ended */
    } else {
        tide__scope_fire(t, n->deadline);
        tide__interrupt(t, -ETIMEDOUT);
    }
}

int tide__suspend(tide_task *t, int64_t until, void (*unlink)(void *), void *arg, int flags)
{
    int64_t deadline = TIDE__NEVER;

    /* A group left open by a frame that returned would be written into as
     * its members end: the innermost one is the likeliest (misuse.c). */
    if (TIDE__UNLIKELY(t->groups != NULL) && tide__frame_left(t, t->groups, TIDE__SP()))
        tide__misuse_group(t->groups, TIDE__MISUSE_LEFT, t, NULL);
    if (!(flags & TIDE__WAIT_NOCANCEL) && (t->scope || t->cancel_req)) {
        int rc = tide__cancel_check(t, &deadline);
        if (rc < 0) {
            if (unlink)
                unlink(arg);
            return rc;
        }
    }
    if (until < deadline)
        deadline = until;
    if (deadline != TIDE__NEVER) {
        t->timer.fire = task_timer_fire;
        if (tide__timer_add(t->loop, &t->timer, deadline) < 0) {
            if (unlink)
                unlink(arg);
            return -ENOMEM;
        }
    }
    t->wait_until = until;
    t->unlink = unlink;
    t->unlink_arg = arg;
    t->nocancel = (flags & TIDE__WAIT_NOCANCEL) != 0;
    t->io_streak = 0; /* a real suspension: the others had their turn (io.c's budget) */
    t->state = TIDE_TASK_WAITING; /* wait_kind was named by the caller, wait_since by run_task */
    tide__switch_to_loop(t);
    return t->wake_rc;
}

void tide__wake(tide_task *t, int rc)
{
    tide__timer_del(t->loop, &t->timer);
    t->unlink = NULL;
    t->wake_rc = rc;
    t->state = TIDE_TASK_READY;
    tide__runq_push(&t->loop->ready, &t->r);
}

void tide__interrupt(tide_task *t, int rc)
{
    if (t->unlink)
        t->unlink(t->unlink_arg);
    tide__wake(t, rc);
}

/* ----------------------------------------------------------- lifecycle */

static void task_finish(tide_task *t, int result)
{
    tide_task *j = t->joiner;

    t->result = result;
    t->state = TIDE_TASK_DONE;
    t->loop->tasks.nundone--;
    if (t->fut)
        tide__future_task_done(t->fut, result, t->result_ptr);
    if (j && j != TIDE__JOINER_LOOP && j->awaiting == t) {
        j->awaiting = NULL;
        tide__wake(j, 0);
    }
    while (t->watchers) {
        tide__watch *w = t->watchers;
        tide__watch_remove(w);
        w->fn(w, t);
    }
}

/* ------------------------------------------------------------- watchers */

static void watch_push(tide_task *t, tide__watch **head, tide__watch *w)
{
    w->task = t;
    w->head = head;
    w->prev = NULL;
    w->next = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
}

void tide__watch_add(tide_task *t, tide__watch *w)
{
    watch_push(t, &t->watchers, w);
}

void tide__hold_add(tide_task *t, tide__watch *w)
{
    watch_push(t, &t->holders, w);
}

void tide__watch_remove(tide__watch *w)
{
    if (!w->task)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        *w->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->task = NULL;
    w->prev = w->next = NULL;
}

static void task_entry(void *arg)
{
    tide_task *t = arg;

#ifdef TIDE__ASAN
    __sanitizer_finish_switch_fiber(NULL, &t->loop->asan_stack_bottom,
                                    &t->loop->asan_stack_size);
#endif
    int result = t->fn(t->arg);
    /* Every scope and group the task began must have ended with it. */
    if (TIDE__UNLIKELY(t->scope != NULL || t->groups != NULL))
        tide__misuse_returned(t);
    task_finish(t, result);
    tide__switch_to_loop(t);
    abort(); /* a DONE task is never resumed */
}

static void run_task(tide_loop *loop, tide__runnable *r)
{
    tide_task *t = tide__container_of(r, tide_task, r);

    if (TIDE__UNLIKELY(t->state == TIDE_TASK_CREATED && t->cancel_req)) {
        task_finish(t, -ECANCELED); /* cancelled before it started: never runs */
        tide__task_ended(loop, t);
        return;
    }
    t->state = TIDE_TASK_RUNNING;
    loop->current = t;
#ifndef TIDE__NO_WAIT_INFO
    t->wait_since = loop->now; /* a wait it begins now began at this time (dump.c) */
#endif
    if (TIDE__LIKELY(!loop->dbg.on)) {
        tide__switch_to_task(loop, t);
    } else { /* debug mode: the step is timed and watched (debug.c) */
        tide__dbg_step_begin(loop, t);
        tide__switch_to_task(loop, t);
        tide__dbg_step_end(loop, t);
    }
    /* Back on the loop's stack: a small unguarded stack has no guard page,
     * so its canary and saved stack pointer are checked at every switch out
     * and at the end (stack.c).  Guarded tasks pay this one branch. */
    if (TIDE__UNLIKELY(t->unguarded))
        tide__stack_check_unguarded(t);
    loop->current = NULL;
    if (loop->deferred)
        tide__run_deferred(loop); /* what t's step left for its end (writes) */
    if (t->state == TIDE_TASK_DONE)
        tide__task_ended(loop, t);
}

static void report_failure(tide_task *t)
{
    if (t->result < 0 && t->result != -ECANCELED)
        tide__dbg_task_failed(t); /* the loop's exception handler (debug.c) */
}

void tide__task_ended(tide_loop *loop, tide_task *t)
{
    (void)loop;
    if (t->group) {
        tide__group_child_ended(t); /* the group releases it */
    } else if (t->detached) {
        report_failure(t);
        tide__task_release(t);
    }
}

void tide__task_release(tide_task *t)
{
    tide_loop *loop = t->loop;

    if (t->prev)
        t->prev->next = t->next;
    else
        loop->tasks.head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        loop->tasks.tail = t->prev;
    loop->tasks.n--;
    if (t->state != TIDE_TASK_DONE)
        loop->tasks.nundone--; /* only when a loop is freed with a task it could not finish */
    while (t->watchers)
        tide__watch_remove(t->watchers);
    while (t->holders) { /* before the future goes: they may look at it */
        tide__watch *w = t->holders;
        tide__watch_remove(w);
        w->fn(w, t);
    }
    if (t->fut) {
        tide__future_task_gone(t->fut);
        t->fut = NULL;
    }
    if (t->locals)
        tide__locals_release(t); /* destructors of the values nobody holds now */
    if (t->born)
        tide__dbg_born_free(t);
#ifdef TIDE__TSAN
    if (t->tsan_fiber) { /* made by its first start (loop.c) */
        __tsan_destroy_fiber(t->tsan_fiber);
        t->tsan_fiber = NULL;
    }
#endif
#ifdef TIDE__ASAN
    /* The frames between the task's last saved stack pointer and its top
     * never return (it ended inside its last switch away, or was freed
     * while suspended), so their redzones stay poisoned in ASan's shadow.
     * The next task on this stack, or on a new mapping at the same address
     * once the pool is unmapped, would inherit that poison: gcc's prologues
     * poison only their redzones and trust the rest of the frame's shadow
     * to be clear.  Clear it, as ASan's swapcontext interceptor does. */
    if (t->state != TIDE_TASK_DONE)
        tide__asan_drop_fake(t); /* else dropped by its last switch away */
    {
        char *sp = tide__ctx_sp(&t->ctx), *lo = t->stack_lo;
        if (!sp || sp < lo || sp > (char *)t)
            sp = lo;
        __asan_unpoison_memory_region(sp, (size_t)((char *)t - sp));
    }
#endif
    t->magic = TIDE__TASK_FREED;
    tide__stack_put(t->pool, t->stack_lo);
}

int tide__tasks_init(tide_loop *loop)
{
    loop->tasks.next_id = 1;
    return 0;
}

void tide__tasks_cancel_all(tide_loop *loop)
{
    tide_task *t;

    for (t = loop->tasks.head; t; t = t->next)
        if (t->state != TIDE_TASK_DONE)
            tide_cancel(t);
}

/* Releases every task left (those the loop could not finish included). */
void tide__tasks_term(tide_loop *loop)
{
    tide_task *t, *next;

    for (t = loop->tasks.head; t; t = next) {
        next = t->next;
        tide__task_release(t);
    }
}

void tide_task_opts_init(tide_task_opts *o)
{
    if (o) {
        o->name = NULL;
        o->stack_size = 0;
        o->flags = 0;
    }
}

int tide_create_task_ex(tide_task **out, tide_loop *loop, tide_fn fn, void *arg,
                        const tide_task_opts *o)
{
    size_t size = TIDE_DEFAULT_STACK_SIZE, page = 4096;
    tide__stack_pool *pool;
    int unguarded = 0;
    tide_task *t;
    void *lo;
    int rc;

    if (!out || !fn)
        return -EINVAL;
    *out = NULL;
    if (!loop && !(loop = tide__tls_loop))
        return -EPERM;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    if (o && o->flags) {
        if (o->flags != TIDE_STACK_UNGUARDED)
            return -EINVAL;
        size = o->stack_size ? o->stack_size : TIDE_SMALL_STACK_DEFAULT;
        if (size < TIDE_SMALL_STACK_MIN || size > TIDE_SMALL_STACK_MAX)
            return -EINVAL;
        if (size < tide__small_stack_floor())
            size = tide__small_stack_floor();
        size = (size + SMALL_STACK_ALIGN - 1) & ~(size_t)(SMALL_STACK_ALIGN - 1);
        unguarded = 1;
    } else if (o && o->stack_size) {
        if (o->stack_size < TIDE_MIN_STACK_SIZE || o->stack_size > MAX_STACK_SIZE)
            return -EINVAL;
        page = tide__stack_guard_size() / 4;
        size = (o->stack_size + page - 1) & ~(page - 1);
    }
    rc = tide__stack_get(loop, size, unguarded, &lo, &pool);
    if (rc < 0)
        return rc;

    t = (tide_task *)(((uintptr_t)lo + size - TOP_RESERVE - sizeof *t) & ~(uintptr_t)63);
    memset(t, 0, sizeof *t);
    t->r.run = run_task;
    t->r.drop = NULL;
    t->loop = loop;
    t->magic = TIDE__TASK_MAGIC;
    t->state = TIDE_TASK_CREATED;
    t->cancel_req = loop->closing; /* tasks spawned while the loop closes never run */
    t->timer.idx = TIDE__NOT_IN_HEAP;
    t->timer.fire = task_timer_fire; /* tide_scope_reschedule may arm it too */
    t->wait_until = TIDE__NEVER;
    t->stack_lo = lo;
    t->stack_size = size;
    t->unguarded = (uint8_t)unguarded;
    t->pool = pool;
    t->fn = fn;
    t->arg = arg;
    t->id = loop->tasks.next_id++;
    t->parent_id = loop->current ? loop->current->id : 0;
    if (o && o->name) {
        size_t n = strnlen(o->name, TIDE_TASK_NAME_MAX - 1);
        memcpy(t->name, o->name, n);
        t->name[n] = '\0';
    }
    tide__ctx_make(&t->ctx, lo, (size_t)((char *)t - (char *)lo), task_entry, t);
    if (loop->current && loop->current->locals && tide__locals_inherit(t, loop->current) < 0) {
        t->magic = TIDE__TASK_FREED;
        tide__stack_put(pool, lo);
        return -ENOMEM;
    }

    t->prev = loop->tasks.tail;
    if (loop->tasks.tail)
        loop->tasks.tail->next = t;
    else
        loop->tasks.head = t;
    loop->tasks.tail = t;
    loop->tasks.n++;
    loop->tasks.nundone++;
    tide__runq_push(&loop->ready, &t->r);
    if (TIDE__UNLIKELY(loop->dbg.on))
        tide__dbg_task_born(t);
    *out = t;
    return 0;
}

int tide_create_task(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task_ex(t, NULL, fn, arg, NULL);
}

/* ------------------------------------------------------------- joining */

static void unlink_awaiting(void *arg)
{
    ((tide_task *)arg)->awaiting = NULL;
}

/* Checks that cur may wait for t: 0, -EINVAL, -EBUSY or -EPERM. */
static int join_check(tide_task *cur, tide_task *t)
{
    if (tide__task_check(t) < 0)
        return -EINVAL;
    if (!cur || cur->loop != t->loop)
        return -EPERM;
    if (t == cur || t->detached || t->group)
        return -EINVAL;
    if (t->joiner)
        return -EBUSY;
    return 0;
}

/* Waits until t, which cur owns (t->joiner == cur), is DONE: 0, or why the
 * wait was interrupted (t stays owned). */
static int wait_done(tide_task *cur, tide_task *t, int flags)
{
    if (t->state == TIDE_TASK_DONE)
        return 0;
    cur->awaiting = t;
    TIDE__WAIT_ON(cur, TIDE_WAIT_TASK, t);
    return tide__suspend(cur, TIDE__NEVER, unlink_awaiting, cur, flags);
}

static int take_result(tide_task *t)
{
    int rc = t->result;
    tide__task_release(t);
    return rc;
}

/* Waits for t and takes its result.  If the wait is interrupted, t stays
 * the caller's and, unless shielded, is cancelled too (as in asyncio). */
static int join(tide_task *t, int shield, void **ptr)
{
    tide_task *cur = tide__current();
    int rc = join_check(cur, t);

    if (rc < 0)
        return rc;
    t->joiner = cur;
    rc = wait_done(cur, t, 0);
    if (rc < 0) {
        t->joiner = NULL;
        if (!shield)
            tide_cancel(t);
        return rc;
    }
    if (ptr)
        *ptr = t->result_ptr;
    return take_result(t);
}

int tide_await(tide_task *t)
{
    return join(t, 0, NULL);
}

int tide_await_ptr(tide_task *t, void **ptr)
{
    if (ptr)
        *ptr = NULL;
    return join(t, 0, ptr);
}

int tide_shield(tide_task *t)
{
    return join(t, 1, NULL);
}

int tide_task_set_ptr(void *ptr)
{
    tide_task *cur = tide__current();

    if (!cur)
        return -EPERM;
    cur->result_ptr = ptr;
    return 0;
}

void *tide_task_ptr(const tide_task *t)
{
    return tide__task_check(t) < 0 ? NULL : t->result_ptr;
}

int tide_sleep_ns(int64_t ns)
{
    tide_task *cur = tide__current();

    if (!cur)
        return -EPERM;
    if (ns < 0)
        return -EINVAL;
    if (ns == 0)
        return tide_sleep(0);
    if (ns > INT64_MAX / 2)
        ns = INT64_MAX / 2;
    TIDE__WAIT_ON(cur, TIDE_WAIT_SLEEP, NULL);
    return tide__suspend(cur, tide__loop_ns(cur->loop) + ns, NULL, NULL, 0);
}

int tide_detach(tide_task *t)
{
    if (tide__task_check(t) < 0 || t->group)
        return -EINVAL;
    if (t->joiner)
        return -EBUSY;
    t->detached = 1;
    if (t->state == TIDE_TASK_DONE) {
        report_failure(t);
        tide__task_release(t);
    }
    return 0;
}

int tide_cancel(tide_task *t)
{
    if (tide__task_check(t) < 0)
        return -EINVAL;
    if (TIDE__UNLIKELY(tide__loop_thread_check(t->loop) < 0) && !t->loop->closing)
        return -EPERM; /* another thread: tide_call_soon_threadsafe it */
    if (t->state == TIDE_TASK_DONE)
        return 0;
    t->cancel_req = 1;
    if (t->state == TIDE_TASK_WAITING && !t->nocancel && !tide__shielded(t))
        tide__interrupt(t, -ECANCELED);
    return 0;
}

int tide_sleep(int64_t ms)
{
    tide_task *cur = tide__current();
    int rc;

    if (!cur)
        return -EPERM;
    if (ms < 0)
        return -EINVAL;
    if (ms == 0) {
        if (cur->scope || cur->cancel_req) {
            rc = tide__cancel_check(cur, NULL);
            if (rc < 0)
                return rc;
        }
        cur->state = TIDE_TASK_READY;
        tide__runq_push(&cur->loop->ready, &cur->r);
        tide__switch_to_loop(cur);
        return 0;
    }
    if (ms > INT64_MAX / 2000000)
        ms = INT64_MAX / 2000000;
    TIDE__WAIT_ON(cur, TIDE_WAIT_SLEEP, NULL);
    return tide__suspend(cur, tide__loop_ns(cur->loop) + ms * 1000000, NULL, NULL, 0);
}

int tide_gather(tide_task **ts, size_t n, int *results)
{
    tide_task *cur = tide__current();
    int first = 0, stop = 0, rc;
    size_t i, j;

    if (n == 0)
        return cur ? 0 : -EPERM;
    if (!ts)
        return -EINVAL;
    /* Validate in one pass and take ownership of every task (joiner = cur)
     * for the whole gather, which also catches duplicates: nobody else may
     * await or detach them meanwhile. */
    for (i = 0, rc = 0; i < n && rc == 0; i++) {
        rc = join_check(cur, ts[i]);
        if (rc == -EBUSY && ts[i]->joiner == cur)
            rc = -EINVAL; /* the same task twice */
        if (rc == 0)
            ts[i]->joiner = cur;
    }
    if (rc < 0) {
        for (j = 0; j + 1 < i; j++)
            ts[j]->joiner = NULL;
        return rc;
    }
    for (i = 0; i < n; i++) {
        if (!stop) {
            rc = wait_done(cur, ts[i], 0);
            if (rc < 0) {
                stop = rc;
                for (j = i; j < n; j++)
                    tide_cancel(ts[j]);
            }
        }
        if (stop)
            (void)wait_done(cur, ts[i], TIDE__WAIT_NOCANCEL);
        rc = take_result(ts[i]);
        if (results)
            results[i] = rc;
        if (rc < 0 && !first)
            first = rc;
    }
    return stop ? stop : first;
}

int tide_wait_for(tide_task *t, int64_t timeout_ms)
{
    tide_task *cur = tide__current();
    tide_scope s;
    int rc = join_check(cur, t), end;

    if (rc < 0)
        return rc;
    t->joiner = cur;
    tide_timeout_begin(&s, timeout_ms < 0 ? 0 : timeout_ms);
    rc = wait_done(cur, t, 0);
    if (rc < 0) {
        tide_cancel(t);
        (void)wait_done(cur, t, TIDE__WAIT_NOCANCEL);
    }
    end = tide_timeout_end(&s);
    if (rc < 0) {
        tide__task_release(t);
        return end == -ETIMEDOUT ? -ETIMEDOUT : rc;
    }
    return take_result(t);
}

/* ---------------------------------------------------------- inspection */

const char *tide_task_name(const tide_task *t)
{
    tide_task *m = (tide_task *)t;

    if (tide__task_check(t) < 0)
        return "?";
    if (!m->name[0])
        snprintf(m->name, sizeof m->name, "task-%llu", (unsigned long long)m->id);
    return m->name;
}

uint64_t tide_task_id(const tide_task *t)
{
    return tide__task_check(t) < 0 ? 0 : t->id;
}

tide_task_state tide_task_get_state(const tide_task *t)
{
    return tide__task_check(t) < 0 ? TIDE_TASK_DONE : (tide_task_state)t->state;
}

int tide_task_cancelled(const tide_task *t)
{
    return tide__task_check(t) < 0 ? 0 : t->cancel_req;
}

const char *tide_task_state_name(tide_task_state s)
{
    switch (s) {
    case TIDE_TASK_CREATED:
        return "created";
    case TIDE_TASK_READY:
        return "ready";
    case TIDE_TASK_RUNNING:
        return "running";
    case TIDE_TASK_WAITING:
        return "waiting";
    case TIDE_TASK_DONE:
        return "done";
    }
    return "?";
}

ssize_t tide_task_list(tide_loop *loop, tide_task_info *out, size_t cap)
{
    tide_task *t;
    size_t i = 0;

    if (!loop && !(loop = tide__tls_loop))
        return -EINVAL;
    if (cap && !out)
        return -EINVAL;
    for (t = loop->tasks.head; t && i < cap; t = t->next, i++) {
        out[i].task = t;
        out[i].id = t->id;
        out[i].name = tide_task_name(t);
        out[i].state = (tide_task_state)t->state;
        out[i].stack_size = t->stack_size;
        out[i].cancelled = t->cancel_req;
    }
    return (ssize_t)loop->tasks.n;
}
