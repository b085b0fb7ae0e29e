/*
 * Synchronisation primitives: Lock, Event, Condition, Semaphore (bounded
 * too), Barrier; and the wait list they share.
 *
 * Fairness and no lost resource, by hand-over: a release does not put the
 * resource back for anyone to grab, it gives it to the first waiter and
 * wakes it.  The woken task is then READY, no longer WAITING, so a
 * cancellation arriving before it runs cannot interrupt it: it returns with
 * the resource, and the next suspending call sees the cancellation.  A
 * waiter interrupted while still WAITING is simply taken off the list; it
 * never held anything.  So no task is skipped, none barges in ahead of
 * waiters, and a cancelled waiter neither takes nor loses a permit.
 *
 * Waiter nodes live on the waiting tasks' stacks: waiting allocates nothing.
 */
#include "tide_int.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ------------------------------------------------------------ wait list */

void tide__wl_push(tide_waitlist *l, struct tide__waiter *w, tide_task *t)
{
    w->task = t;
    w->list = l;
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

static void wl_remove(struct tide__waiter *w)
{
    tide_waitlist *l = w->list;

    if (!l)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->list = NULL;
    w->prev = w->next = NULL;
}

struct tide__waiter *tide__wl_pop(tide_waitlist *l)
{
    struct tide__waiter *w = l->head;
    if (w)
        wl_remove(w);
    return w;
}

static void unlink_waiter(void *arg)
{
    wl_remove(arg);
}

int tide__is_wl_unlink(void (*fn)(void *))
{
    return fn == unlink_waiter;
}

int tide__wl_wait(tide_waitlist *l, struct tide__waiter *w, tide_task *t, int flags)
{
    tide__wl_push(l, w, t);
    return tide__suspend(t, TIDE__NEVER, unlink_waiter, w, flags);
}

int tide__wl_wake_one(tide_waitlist *l, int rc)
{
    struct tide__waiter *w = tide__wl_pop(l);
    if (!w)
        return 0;
    tide__wake(w->task, rc);
    return 1;
}

void tide__wl_wake_all(tide_waitlist *l, int rc)
{
    while (tide__wl_wake_one(l, rc))
        ;
}

/* A waiting primitive needs a task on the loop that... any loop: the
 * primitives are plain memory, used from one loop's tasks. */
static tide_task *need_task(int *rc)
{
    tide_task *cur = tide__current();
    *rc = cur ? 0 : -EPERM;
    return cur;
}

/* ----------------------------------------------------------------- lock */

int tide_lock_init(tide_lock *l)
{
    if (!l)
        return -EINVAL;
    memset(l, 0, sizeof *l);
    return 0;
}

static int lock_acquire(tide_lock *l, int flags)
{
    struct tide__waiter w;
    tide_task *cur;
    int rc;

    if (!l)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (l->owner == cur)
        return -EDEADLK;
    if (!l->owner) {
        l->owner = cur;
        return 0;
    }
    /* On success the releaser made us the owner before waking us. */
    TIDE__WAIT_KIND(cur, TIDE_WAIT_LOCK); /* the object: the waiter's list */
    return tide__wl_wait(&l->waiters, &w, cur, flags);
}

int tide_lock_acquire(tide_lock *l)
{
    return lock_acquire(l, 0);
}

int tide_lock_try_acquire(tide_lock *l)
{
    tide_task *cur;
    int rc;

    if (!l)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (l->owner)
        return l->owner == cur ? -EDEADLK : -EBUSY;
    l->owner = cur;
    return 0;
}

int tide_lock_release(tide_lock *l)
{
    struct tide__waiter *w;

    if (!l)
        return -EINVAL;
    if (!l->owner || l->owner != tide__current())
        return -EPERM;
    w = tide__wl_pop(&l->waiters);
    l->owner = w ? w->task : NULL; /* hand-over */
    if (w)
        tide__wake(w->task, 0);
    return 0;
}

int tide_lock_locked(const tide_lock *l)
{
    return l && l->owner != NULL;
}

/* ---------------------------------------------------------------- event */

int tide_event_init(tide_event *e)
{
    if (!e)
        return -EINVAL;
    memset(e, 0, sizeof *e);
    return 0;
}

int tide_event_set(tide_event *e)
{
    if (!e)
        return -EINVAL;
    e->set = 1;
    tide__wl_wake_all(&e->waiters, 0);
    return 0;
}

int tide_event_clear(tide_event *e)
{
    if (!e)
        return -EINVAL;
    e->set = 0;
    return 0;
}

int tide_event_is_set(const tide_event *e)
{
    return e && e->set;
}

int tide_event_wait(tide_event *e)
{
    struct tide__waiter w;
    tide_task *cur;
    int rc;

    if (!e)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (e->set)
        return 0;
    TIDE__WAIT_KIND(cur, TIDE_WAIT_EVENT); /* the object: the waiter's list */
    return tide__wl_wait(&e->waiters, &w, cur, 0);
}

/* ------------------------------------------------------------ condition */

int tide_cond_init(tide_cond *c, tide_lock *lock)
{
    if (!c)
        return -EINVAL;
    memset(c, 0, sizeof *c);
    c->lock = lock ? lock : &c->own;
    return 0;
}

tide_lock *tide_cond_lock(tide_cond *c)
{
    return c ? c->lock : NULL;
}

int tide_cond_wait(tide_cond *c)
{
    struct tide__waiter w;
    tide_task *cur;
    int rc, rc2;

    if (!c)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (c->lock->owner != cur)
        return -EPERM;
    tide_lock_release(c->lock);
    TIDE__WAIT_KIND(cur, TIDE_WAIT_COND); /* the object: the waiter's list */
    rc = tide__wl_wait(&c->waiters, &w, cur, 0);
    /* Take the lock back whatever happened, cancelled or not. */
    rc2 = lock_acquire(c->lock, TIDE__WAIT_NOCANCEL);
    return rc < 0 ? rc : rc2;
}

int tide_cond_notify(tide_cond *c, size_t n)
{
    if (!c)
        return -EINVAL;
    if (c->lock->owner != tide__current() || !c->lock->owner)
        return -EPERM;
    while (n-- > 0 && tide__wl_wake_one(&c->waiters, 0))
        ;
    return 0;
}

int tide_cond_notify_all(tide_cond *c)
{
    return tide_cond_notify(c, (size_t)-1);
}

/* ------------------------------------------------------------ semaphore */

int tide_sem_init(tide_sem *s, long value)
{
    if (!s || value < 0)
        return -EINVAL;
    memset(s, 0, sizeof *s);
    s->value = value;
    s->bound = LONG_MAX; /* unbounded: only the count's range limits it */
    return 0;
}

int tide_bsem_init(tide_sem *s, long value)
{
    int rc = tide_sem_init(s, value);
    if (rc == 0)
        s->bound = value;
    return rc;
}

int tide_sem_acquire(tide_sem *s)
{
    struct tide__waiter w;
    tide_task *cur;
    int rc;

    if (!s)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (s->value > 0 && !s->waiters.head) { /* no barging past waiters */
        s->value--;
        return 0;
    }
    TIDE__WAIT_KIND(cur, TIDE_WAIT_SEM); /* the object: the waiter's list */
    return tide__wl_wait(&s->waiters, &w, cur, 0); /* the permit is handed over */
}

int tide_sem_try_acquire(tide_sem *s)
{
    if (!s)
        return -EINVAL;
    if (s->value > 0 && !s->waiters.head) {
        s->value--;
        return 0;
    }
    return -EBUSY;
}

int tide_sem_release(tide_sem *s)
{
    if (!s)
        return -EINVAL;
    /* Checked first: with waiters queued the value is 0 (permits are handed
     * over), so this only refuses a bound of 0, which nothing may pass. */
    if (s->value >= s->bound)
        return -EOVERFLOW;
    if (tide__wl_wake_one(&s->waiters, 0))
        return 0; /* handed to the first waiter */
    s->value++;
    return 0;
}

long tide_sem_value(const tide_sem *s)
{
    return s ? s->value : 0;
}

/* -------------------------------------------------------------- barrier */

int tide_barrier_init(tide_barrier *b, unsigned parties)
{
    if (!b || parties == 0)
        return -EINVAL;
    memset(b, 0, sizeof *b);
    b->parties = parties;
    return 0;
}

static void barrier_leave(void *arg)
{
    struct tide__waiter *w = arg;
    tide_barrier *b = tide__container_of(w->list, tide_barrier, waiters);

    wl_remove(w);
    b->count--; /* a cancelled party leaves the round */
}

int tide_barrier_wait(tide_barrier *b)
{
    struct tide__waiter w;
    tide_task *cur;
    int rc;

    if (!b || !b->parties)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (b->broken)
        return -EPIPE;
    if (cur->cancel_req || cur->scope) { /* do not arrive if we cannot wait */
        rc = tide__cancel_check(cur, NULL);
        if (rc < 0)
            return rc;
    }
    /* Indexes are given when the round is released, in arrival order: a
     * party that left (cancelled) leaves no hole and no duplicate. */
    if (++b->count == b->parties) { /* the last one: release the round */
        struct tide__waiter *x;
        long i = 0;
        b->count = 0;
        while ((x = tide__wl_pop(&b->waiters))) {
            x->n = i++;
            tide__wake(x->task, 0);
        }
        return (int)i;
    }
    tide__wl_push(&b->waiters, &w, cur);
    TIDE__WAIT_ON(cur, TIDE_WAIT_BARRIER, b);
    rc = tide__suspend(cur, TIDE__NEVER, barrier_leave, &w, 0);
    return rc < 0 ? rc : (int)w.n;
}

int tide_barrier_abort(tide_barrier *b)
{
    if (!b || !b->parties)
        return -EINVAL;
    b->broken = 1;
    b->count = 0;
    tide__wl_wake_all(&b->waiters, -EPIPE);
    return 0;
}

int tide_barrier_reset(tide_barrier *b)
{
    if (!b || !b->parties)
        return -EINVAL;
    b->count = 0;
    tide__wl_wake_all(&b->waiters, -EPIPE); /* as asyncio: waiters see it broken */
    b->broken = 0;
    return 0;
}

int tide_barrier_broken(const tide_barrier *b)
{
    if (!b || !b->parties)
        return -EINVAL;
    return b->broken;
}

unsigned tide_barrier_n_waiting(const tide_barrier *b)
{
    return b ? b->count : 0;
}

/* ---------------------------------------------------------- wait_for */

int tide_cond_wait_for(tide_cond *c, int (*pred)(void *arg), void *arg)
{
    int rc;

    tide_task *cur;

    if (!c || !pred)
        return -EINVAL;
    cur = need_task(&rc);
    if (!cur)
        return rc;
    if (c->lock->owner != cur)
        return -EPERM;
    for (;;) {
        rc = pred(arg);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        rc = tide_cond_wait(c);
        if (rc < 0)
            return rc;
    }
}
