/*
 * Task groups (structured concurrency).
 *
 * A group links its live members through the task struct (gprev/gnext), so
 * spawning into a group allocates nothing more than a task.  When a member
 * ends, the loop calls tide__group_child_ended: the first failure is kept
 * and cancels the others, the member is released, and the task waiting in
 * tide_group_wait wakes once none is left.  If that waiting task is
 * cancelled, the group is cancelled and still waited for (uncancellably):
 * no member outlives tide_group_wait.
 *
 * A group on its task's stack (the usual case) is linked on that task's
 * chain of open groups until tide_group_wait closes it.  Leaving it open
 * when its frame returns would let members write into the dead frame as
 * they end, so the task's return, its suspensions and every group call
 * check that chain (as cancel.c does scopes: a check word over the group's
 * fields, renewed at each change, and its address against the owner's
 * stack pointer), and report a dead group before anything writes into it.
 *
 * tide_wait and as_completed are futures.c's waiter over the tasks'
 * futures.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

#ifdef TIDE__ASAN
#include <sanitizer/asan_interface.h>
#endif

#define G_CANCELLING 0x1
#define G_CLOSED 0x2
#define G_SCOPE 0x4 /* the owner's scope (g->scope) is open */

/* A word over every field and the group's address, renewed (seal) after
 * each change: memory that a later frame wrote into no longer matches, so
 * nothing writes into a group that is not there any more. */
TIDE__NO_ASAN static unsigned group_hash(const tide_group *g)
{
    uint64_t h = (uint64_t)(uintptr_t)g;
    int i;

#define MIX(v) (h = (h ^ (uint64_t)(v)) * 0x9e3779b97f4a7c15u)
    MIX((uintptr_t)g->loop);
    MIX((uintptr_t)g->members);
    MIX(g->live);
    MIX((uintptr_t)g->waiter);
    MIX((uint32_t)g->first_error | (uint64_t)(uint32_t)g->nerrors << 32);
    for (i = 0; i < TIDE_GROUP_MAX_ERRORS; i += 2)
        MIX((uint32_t)g->errors[i] | (uint64_t)(uint32_t)g->errors[i + 1] << 32);
    MIX((uint32_t)g->flags);
    MIX((uintptr_t)g->owner);
    MIX((uintptr_t)g->outer);
#undef MIX
    return (unsigned)(h >> 32);
}

static void seal(tide_group *g)
{
    g->check = group_hash(g);
}

static int on_stack(const tide_task *t, const void *p)
{
    return (uintptr_t)p - (uintptr_t)t->stack_lo < (uintptr_t)t - (uintptr_t)t->stack_lo;
}

/* A local of the running task, though ASan (detect_stack_use_after_return)
 * may keep it on its fake stack rather than on the task's. */
static int local_of(const tide_task *cur, const void *p)
{
#ifdef TIDE__ASAN
    void *fake = __asan_get_current_fake_stack(), *real;
    if (fake && (real = __asan_addr_is_in_fake_stack(fake, (void *)p, NULL, NULL)))
        p = real;
#endif
    return on_stack(cur, p);
}

/* g must be a live group: its memory as init left it and, if it lives on
 * its owner's stack, not below the owner's stack pointer (sp, when the
 * owner is cur, the running task; else the owner's saved one).  member:
 * for the report, the task whose end is being recorded, or NULL. */
TIDE__NO_ASAN static void group_verify(const tide_group *g, const tide_task *cur,
                                       const void *sp, const tide_task *member)
{
    const tide_task *o;

    if (TIDE__UNLIKELY(g->check != group_hash(g)))
        tide__misuse_group(g, TIDE__MISUSE_LEFT, NULL, member);
    o = g->owner;
    if (!o)
        return;
    if (o != cur) {
        if (o->state == TIDE_TASK_RUNNING)
            return; /* its saved stack pointer is stale: nothing to compare */
        sp = tide__task_sp(o);
    }
    if (TIDE__UNLIKELY(tide__frame_left(o, g, sp)))
        tide__misuse_group(g, TIDE__MISUSE_LEFT, o, member);
}

int tide_group_init(tide_group *g)
{
    tide_task *cur = tide__current();
    const void *sp = TIDE__SP();
    const tide_group *x;
    int mine;

    if (!g)
        return -EINVAL;
    mine = cur && local_of(cur, g);
    if (mine) {
        for (x = cur->groups; x; x = x->outer) { /* the chain is short */
            if (x == g) /* members still point at it */
                tide__misuse_group(x, TIDE__MISUSE_AGAIN, cur, NULL);
            group_verify(x, cur, sp, NULL);
        }
    }
    memset(g, 0, sizeof *g);
    g->loop = tide__tls_loop;
    if (!g->loop)
        return -EPERM;
    if (mine) {
        g->owner = cur;
        g->outer = cur->groups;
        cur->groups = g;
        cur->ngroups++;
        /* The owner's code inside the group is a cancel scope of its own:
         * a member's failure cancels it (asyncio's TaskGroup, Trio's
         * nursery).  It ends when tide_group_wait starts. */
        if (tide__scope_push_group(&g->scope) == 0)
            g->flags |= G_SCOPE;
    }
    seal(g);
    return 0;
}

/* Ends the owner's scope of g (at tide_group_wait, whoever waits). */
static int end_owner_scope(tide_group *g)
{
    int rc;

    if (!(g->flags & G_SCOPE))
        return 0;
    rc = tide__scope_pop_group(g->owner, &g->scope);
    if (rc == 0) {
        g->flags &= ~G_SCOPE;
        seal(g);
    }
    return rc;
}

/* Takes the closed group g off its owner's chain. */
static void group_unlink(tide_group *g, const tide_task *cur, const void *sp)
{
    tide_task *o = g->owner;
    tide_group **pp = &o->groups, *x;

    while ((x = *pp) != g) {
        if (!x) /* not linked: nothing else could have taken it off */
            tide__misuse_group(g, TIDE__MISUSE_LEFT, o, NULL);
        group_verify(x, cur, sp, NULL);
        pp = &x->outer;
    }
    *pp = g->outer;
    if (pp != &o->groups) /* x's outer link changed */
        seal(tide__container_of(pp, tide_group, outer));
    o->ngroups--;
    g->owner = NULL;
    g->outer = NULL;
    seal(g);
}

static void cancel_members(tide_group *g)
{
    tide_task *t;

    g->flags |= G_CANCELLING;
    seal(g);
    for (t = g->members; t; t = t->gnext)
        tide_cancel(t);
}

int tide_group_cancel(tide_group *g)
{
    if (!g || !g->loop)
        return -EINVAL;
    group_verify(g, tide__current(), TIDE__SP(), NULL);
    cancel_members(g);
    return 0;
}

int tide_group_spawn(tide_group *g, tide_fn fn, void *arg, const tide_task_opts *o,
                     tide_task **out)
{
    tide_task *t;
    int rc;

    if (out)
        *out = NULL;
    if (!g || !g->loop || !fn || (g->flags & G_CLOSED))
        return -EINVAL;
    group_verify(g, tide__current(), TIDE__SP(), NULL);
    if (g->flags & G_CANCELLING)
        return -ECANCELED;
    rc = tide_create_task_ex(&t, g->loop, fn, arg, o);
    if (rc < 0)
        return rc;
    t->group = g;
    t->gprev = NULL;
    t->gnext = g->members;
    if (g->members)
        g->members->gprev = t;
    g->members = t;
    g->live++;
    seal(g);
    if (out)
        *out = t;
    return 0;
}

void tide__group_child_ended(tide_task *t)
{
    tide_group *g = t->group;
    int r = t->result;

    /* Before writing into g: is it still there?  (Runs on the loop.) */
    group_verify(g, NULL, NULL, t);
    if (TIDE__UNLIKELY(g->live == 0 || (t->gprev ? t->gprev->gnext != t : g->members != t)))
        tide__misuse_group(g, TIDE__MISUSE_LEFT, g->owner, t);

    if (t->gprev)
        t->gprev->gnext = t->gnext;
    else
        g->members = t->gnext;
    if (t->gnext)
        t->gnext->gprev = t->gprev;
    g->live--;
    tide__task_release(t);

    if (r < 0 && r != -ECANCELED) {
        if (g->nerrors < TIDE_GROUP_MAX_ERRORS)
            g->errors[g->nerrors] = r;
        g->nerrors++;
        if (!g->first_error) {
            g->first_error = r;
            cancel_members(g);
            /* ... and the owner's code inside the group, where it is now
             * (a wait wakes with -ECANCELED) and from now on until it
             * reaches tide_group_wait (level-triggered). */
            if (g->flags & G_SCOPE)
                (void)tide_scope_cancel(&g->scope);
        }
    }
    if (g->live == 0 && g->waiter) {
        tide_task *w = g->waiter;
        g->waiter = NULL;
        tide__wake(w, 0);
    }
    seal(g);
}

static void unlink_group_waiter(void *arg)
{
    tide_group *g = arg;

    g->waiter = NULL;
    seal(g);
}

int tide_group_wait(tide_group *g)
{
    tide_task *cur = tide__current();
    int interrupted = 0;

    if (!g || !g->loop || (g->flags & G_CLOSED))
        return -EINVAL;
    if (!cur || cur->loop != g->loop)
        return -EPERM;
    group_verify(g, cur, TIDE__SP(), NULL);
    if (g->waiter)
        return -EBUSY;
    (void)end_owner_scope(g);
    while (g->live) {
        int rc;
        g->waiter = cur;
        seal(g);
        TIDE__WAIT_ON(cur, TIDE_WAIT_GROUP, g);
        rc = tide__suspend(cur, TIDE__NEVER, unlink_group_waiter, g,
                           interrupted ? TIDE__WAIT_NOCANCEL : 0);
        if (rc < 0 && !interrupted) {
            interrupted = rc; /* cancelled or timed out: so is the group */
            cancel_members(g);
        }
    }
    g->flags |= G_CLOSED;
    if (g->owner)
        group_unlink(g, cur, TIDE__SP()); /* seals it */
    else
        seal(g);
    return interrupted ? interrupted : g->first_error;
}

int tide_group_errors(const tide_group *g, int *errs, size_t cap)
{
    size_t i, n;

    if (!g)
        return -EINVAL;
    n = (size_t)g->nerrors < TIDE_GROUP_MAX_ERRORS ? (size_t)g->nerrors : TIDE_GROUP_MAX_ERRORS;
    for (i = 0; i < n && i < cap && errs; i++)
        errs[i] = g->errors[i];
    return g->nerrors;
}
