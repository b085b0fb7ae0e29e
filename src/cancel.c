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
 */
#include "tide_int.h"

#include <errno.h>

int tide__cancel_check(tide_task *t, int64_t *deadline)
{
    int64_t dl = TIDE__NEVER, now;
    tide_scope *s, *end = NULL;

    for (s = t->scope; s; s = s->parent) {
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
                    s->flags |= TIDE__SCOPE_FIRED;
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

int tide__shielded(const tide_task *t)
{
    const tide_scope *s;
    for (s = t->scope; s; s = s->parent)
        if (s->flags & TIDE__SCOPE_SHIELD)
            return 1;
    return 0;
}

void tide__scope_fire(tide_task *t, int64_t when)
{
    tide_scope *s;
    for (s = t->scope; s && !(s->flags & TIDE__SCOPE_SHIELD); s = s->parent) {
        if (s->deadline <= when) {
            s->flags |= TIDE__SCOPE_FIRED;
            return;
        }
    }
}

static int scope_begin(tide_scope *s, int64_t deadline, int flags)
{
    tide_task *cur = tide__current();

    if (!s)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    s->parent = cur->scope;
    s->task = cur;
    s->deadline = deadline;
    s->flags = flags;
    cur->scope = s;
    return 0;
}

static int scope_end(tide_scope *s, int kind)
{
    tide_task *cur = tide__current();

    if (!s || !cur || cur->scope != s || s->task != cur || !(s->flags & kind))
        return -EINVAL;
    cur->scope = s->parent;
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

int tide_timeout_begin(tide_scope *s, int64_t ms)
{
    return scope_begin(s, ms_to_deadline(ms), TIDE__SCOPE_TIMEOUT);
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
    return scope_begin(s, dl, TIDE__SCOPE_TIMEOUT);
}

int tide_timeout_end(tide_scope *s)
{
    int rc = scope_end(s, TIDE__SCOPE_TIMEOUT);
    if (rc < 0)
        return rc;
    return (s->flags & TIDE__SCOPE_FIRED) ? -ETIMEDOUT : 0;
}

int tide_shield_begin(tide_scope *s)
{
    return scope_begin(s, TIDE__NEVER, TIDE__SCOPE_SHIELD);
}

int tide_shield_end(tide_scope *s)
{
    return scope_end(s, TIDE__SCOPE_SHIELD);
}
