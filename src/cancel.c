/*
 * Cancellation and cancel scopes.
 *
 * Cancellation is level-triggered (as in Trio): tide_cancel sets a flag on
 * the task, wakes it if it waits, and from then on every suspending call it
 * makes fails with -ECANCELED until it returns.  A task cannot miss a cancel
 * by ignoring one error.
 *
 * A task's scopes form a chain on its stack (innermost first).  A timeout
 * scope carries a deadline; a shield stops the walk: outside deadlines and
 * the task's cancellation do not reach past it.  Each suspension walks the
 * chain once (usually zero or one link) to find whether it must fail at once
 * and the earliest deadline that applies, for which it arms the task's
 * timer.  When that timer fires, the scope whose deadline passed is marked
 * fired, so tide_timeout_end can tell the scope that expired from one an
 * outer deadline cut short.
 *
 * A scope must end in the function that began it.  One left open when that
 * function returns is a dead link: walking it would read, and firing it
 * write, whatever frame now uses that memory.  Every walk therefore checks
 * each link it follows (verify: a check word over the scope's fields, and
 * that it does not lie below the stack pointer of the code walking), and
 * the task's return checks that no scope is left; a dead link is reported
 * and the process aborts (misuse.c).
 */
#include "tide_int.h"

#include <errno.h>

/* A word over every field of s (and its address and task), renewed when
 * the scope fires: a scope whose memory a later frame wrote into no longer
 * matches it. */
TIDE__NO_ASAN static inline unsigned scope_check(const tide_scope *s, const tide_task *t)
{
    uint64_t x = (uint64_t)(uintptr_t)s ^ ((uint64_t)(uintptr_t)s->parent << 1) ^
                 ((uint64_t)(uintptr_t)t << 2) ^ (uint64_t)s->deadline ^
                 ((uint64_t)(unsigned)s->flags << 48);
    return (unsigned)((x * 0x9e3779b97f4a7c15u) >> 32);
}

static inline void fire(tide_task *t, tide_scope *s)
{
    s->flags |= TIDE__SCOPE_FIRED;
    s->check = scope_check(s, t);
}

/* s, a link of t's chain, must be a live scope of t; sp: see tide_int.h. */
TIDE__NO_ASAN static inline void verify(tide_task *t, const tide_scope *s, const void *sp)
{
    if (TIDE__UNLIKELY(s->check != scope_check(s, t) || tide__frame_left(t, s, sp)))
        tide__misuse_scope(t, s, TIDE__MISUSE_LEFT);
}

int tide__cancel_check(tide_task *t, int64_t *deadline)
{
    const void *sp = TIDE__SP(); /* t is the running task */
    int64_t dl = TIDE__NEVER, now;
    tide_scope *s, *end = NULL;

    for (s = t->scope; s; s = s->parent) {
        verify(t, s, sp);
        if (TIDE__UNLIKELY(s->flags & TIDE__SCOPE_CANCEL)) {
            fire(t, s); /* cancelled on its own (tide_scope_cancel) */
            return -ECANCELED;
        }
        if (s->flags & TIDE__SCOPE_SHIELD) {
            end = s;
            break;
        }
        if (s->deadline < dl)
            dl = s->deadline;
    }
    if (!end && t->cancel_req)
        return -ECANCELED;
    if (dl != TIDE__NEVER) {
        /* A fresh clock: a deadline may have passed while the task ran,
         * and even a yield must then fail (Trio's checkpoint rule). */
        now = tide__loop_ns(t->loop);
        if (dl <= now) {
            for (s = t->scope; s != end; s = s->parent) {
                if (s->deadline <= now) {
                    fire(t, s);
                    break;
                }
            }
            return -ETIMEDOUT;
        }
    }
    if (deadline)
        *deadline = dl;
    return 0;
}

/* t is switched out (waiting): its saved stack pointer bounds its frames. */
int tide__shielded(const tide_task *t)
{
    const void *sp = tide__task_sp(t);
    const tide_scope *s;

    for (s = t->scope; s; s = s->parent) {
        verify((tide_task *)t, s, sp);
        if (s->flags & TIDE__SCOPE_SHIELD)
            return 1;
    }
    return 0;
}

void tide__scope_fire(tide_task *t, int64_t when)
{
    const void *sp = tide__task_sp(t); /* t waits: the timer runs on the loop */
    tide_scope *s;

    for (s = t->scope; s; s = s->parent) {
        verify(t, s, sp);
        if (s->flags & TIDE__SCOPE_SHIELD)
            return;
        if (s->deadline <= when) {
            fire(t, s);
            return;
        }
    }
}

/* sp: the frame address of the public function, so that a scope of any
 * frame its caller has left lies below it. */
static int scope_begin(tide_scope *s, int64_t deadline, int flags, const void *sp)
{
    tide_task *cur = tide__current();
    const tide_scope *x;

    if (!s)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    for (x = cur->scope; x; x = x->parent) { /* the chain is short */
        if (x == s)                          /* would make a cycle */
            tide__misuse_scope(cur, x, TIDE__MISUSE_AGAIN);
        verify(cur, x, sp);
    }
    s->parent = cur->scope;
    s->task = cur;
    s->deadline = deadline;
    s->flags = flags;
    s->check = scope_check(s, cur);
    cur->scope = s;
    cur->scope_kinds = cur->scope_kinds << 1 | ((flags & TIDE__SCOPE_SHIELD) != 0);
    cur->scope_groups = cur->scope_groups << 1 | ((flags & TIDE__SCOPE_GROUP) != 0);
    cur->nscopes++;
    return 0;
}

static int scope_end(tide_scope *s, int kind, const void *sp)
{
    tide_task *cur = tide__current();

    if (!s || !cur)
        return -EINVAL;
    if (cur->scope != s) {
        /* Ended twice, out of order, or not ours: -EINVAL, unless the scope
         * still open inside it belongs to a frame that has returned. */
        if (cur->scope)
            verify(cur, cur->scope, sp);
        return -EINVAL;
    }
    verify(cur, s, sp);
    if (!(s->flags & kind))
        return -EINVAL;
    cur->scope = s->parent;
    cur->scope_kinds >>= 1;
    cur->scope_groups >>= 1;
    cur->nscopes--;
    if (cur->scope)
        verify(cur, cur->scope, sp);
    return 0;
}

static int64_t ms_to_deadline(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms > INT64_MAX / 2000000)
        return TIDE__NEVER;
    return tide__now_ns() + ms * 1000000;
}

int tide__scope_push_group(tide_scope *s)
{
    return scope_begin(s, TIDE__NEVER, TIDE__SCOPE_GROUP, TIDE__SP());
}

static uint32_t drop_bit(uint32_t v, unsigned idx)
{
    uint32_t low = idx ? v & (((uint32_t)1 << idx) - 1) : 0;
    return low | (idx < 31 ? (v >> (idx + 1)) << idx : 0);
}

/* Groups need not nest with scopes or each other (one may be waited for
 * out of order, or by another task): the group's scope is taken off
 * wherever it is in its owner's chain. */
int tide__scope_pop_group(tide_task *t, tide_scope *s)
{
    const void *sp = t == tide__current() ? TIDE__SP() : tide__task_sp(t);
    tide_scope *x, *inner = NULL;
    unsigned idx = 0;

    for (x = t->scope; x && x != s; inner = x, x = x->parent, idx++)
        verify(t, x, sp);
    if (!x)
        return -EINVAL;
    verify(t, s, sp);
    if (inner) {
        inner->parent = s->parent;
        inner->check = scope_check(inner, t);
    } else {
        t->scope = s->parent;
    }
    if (idx < 32) {
        t->scope_kinds = drop_bit(t->scope_kinds, idx);
        t->scope_groups = drop_bit(t->scope_groups, idx);
    }
    t->nscopes--;
    return 0;
}

int tide_timeout_begin(tide_scope *s, int64_t ms)
{
    return scope_begin(s, ms_to_deadline(ms), TIDE__SCOPE_TIMEOUT, TIDE__SP());
}

int tide_deadline_begin(tide_scope *s, int64_t deadline_ms)
{
    int64_t dl;

    if (deadline_ms > INT64_MAX / 1000000)
        dl = TIDE__NEVER;
    else if (deadline_ms < 0)
        dl = 0;
    else
        dl = deadline_ms * 1000000;
    return scope_begin(s, dl, TIDE__SCOPE_TIMEOUT, TIDE__SP());
}

int tide_timeout_end(tide_scope *s)
{
    int rc = scope_end(s, TIDE__SCOPE_TIMEOUT, TIDE__SP());
    if (rc < 0)
        return rc;
    if (!(s->flags & TIDE__SCOPE_FIRED))
        return 0;
    return (s->flags & TIDE__SCOPE_CANCEL) ? -ECANCELED : -ETIMEDOUT;
}

int tide_timeout_begin_ns(tide_scope *s, int64_t ns)
{
    int64_t dl;

    if (ns < 0)
        ns = 0;
    dl = ns > INT64_MAX / 2 ? TIDE__NEVER : tide__now_ns() + ns;
    return scope_begin(s, dl, TIDE__SCOPE_TIMEOUT, TIDE__SP());
}

int tide_deadline_begin_ns(tide_scope *s, int64_t deadline_ns)
{
    return scope_begin(s, deadline_ns < 0 ? 0 : deadline_ns, TIDE__SCOPE_TIMEOUT, TIDE__SP());
}

/* The task whose open scope s is (s found on its chain, every link
 * checked), or NULL: s NULL, never begun, ended, or its task released. */
static tide_task *scope_owner(tide_scope *s, int *err)
{
    tide_task *t;
    const tide_scope *x;
    const void *sp;

    *err = -EINVAL;
    if (!s || tide__task_check(s->task) < 0)
        return NULL;
    t = s->task;
    if (tide__loop_thread_check(t->loop) < 0) {
        *err = -EPERM;
        return NULL;
    }
    sp = t == tide__current() ? TIDE__SP() : tide__task_sp(t);
    for (x = t->scope; x; x = x->parent) {
        verify(t, x, sp);
        if (x == s)
            return t;
    }
    return NULL;
}

/* 1 if nothing between t's innermost scope and s (exclusive) is a shield:
 * what happens to s reaches t's current wait. */
static int reaches(const tide_task *t, const tide_scope *s)
{
    const tide_scope *x;

    for (x = t->scope; x && x != s; x = x->parent)
        if (x->flags & TIDE__SCOPE_SHIELD)
            return 0;
    return 1;
}

int tide_scope_cancel(tide_scope *s)
{
    int err;
    tide_task *t = scope_owner(s, &err);

    if (!t)
        return err;
    if (s->flags & TIDE__SCOPE_CANCEL)
        return 0; /* twice is harmless */
    s->flags |= TIDE__SCOPE_CANCEL;
    s->check = scope_check(s, t);
    if (t->state == TIDE_TASK_WAITING && !t->nocancel && reaches(t, s)) {
        fire(t, s);
        tide__interrupt(t, -ECANCELED);
    }
    return 0;
}

int tide_scope_cancelled(const tide_scope *s)
{
    int err;
    tide_task *t = scope_owner((tide_scope *)s, &err);

    if (!t)
        return err;
    return (s->flags & TIDE__SCOPE_CANCEL) != 0;
}

int tide_scope_reschedule_ns(tide_scope *s, int64_t deadline_ns)
{
    int err;
    tide_task *t = scope_owner(s, &err);
    int64_t dl = TIDE__NEVER;
    const tide_scope *x;

    if (!t)
        return err;
    if (!(s->flags & TIDE__SCOPE_TIMEOUT))
        return -EINVAL; /* a shield has no deadline */
    if (deadline_ns < 0)
        deadline_ns = 0;
    s->deadline = deadline_ns;
    s->flags &= ~TIDE__SCOPE_FIRED;
    s->check = scope_check(s, t);
    if (t->state != TIDE_TASK_WAITING || t->nocancel)
        return 0; /* its next suspension reads the new deadline */
    /* The task waits: its timer is armed for the earliest deadline that
     * applies (or its wait's own end); arm it again for the new one. */
    for (x = t->scope; x; x = x->parent) {
        if (x->flags & TIDE__SCOPE_SHIELD)
            break;
        if (x->deadline < dl)
            dl = x->deadline;
    }
    if (t->wait_until < dl)
        dl = t->wait_until;
    tide__timer_del(t->loop, &t->timer);
    if (dl != TIDE__NEVER && tide__timer_add(t->loop, &t->timer, dl) < 0)
        tide__interrupt(t, -ENOMEM); /* as a wait whose timer cannot be armed */
    return 0;
}

int tide_scope_reschedule(tide_scope *s, int64_t deadline_ms)
{
    if (deadline_ms > INT64_MAX / 1000000)
        return tide_scope_reschedule_ns(s, TIDE__NEVER);
    return tide_scope_reschedule_ns(s, deadline_ms < 0 ? 0 : deadline_ms * 1000000);
}

int64_t tide_scope_deadline(const tide_scope *s)
{
    int err;
    tide_task *t = scope_owner((tide_scope *)s, &err);

    if (!t)
        return err;
    return s->deadline == TIDE__NEVER ? INT64_MAX : s->deadline / 1000000;
}

int tide_shield_begin(tide_scope *s)
{
    return scope_begin(s, TIDE__NEVER, TIDE__SCOPE_SHIELD, TIDE__SP());
}

int tide_shield_end(tide_scope *s)
{
    return scope_end(s, TIDE__SCOPE_SHIELD, TIDE__SP());
}
