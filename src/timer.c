/*
 * Timers: a 4-ary min-heap of intrusive nodes keyed by (deadline, seq).
 *
 * A 4-ary heap is shallower than a binary one (log4 n levels) and its four
 * children share a cache line or two, which pays off with the 10^5-10^6
 * timers of a busy server.  seq makes timers with equal deadlines fire in
 * the order they were added.  Every node knows its index, so cancelling is
 * O(log n) with no search.  Each entry keeps its key beside the node
 * pointer, so comparisons read the array alone; a variant that also kept
 * the index out of the nodes (a dense side table) was measured and lost:
 * more instructions, and the nodes a sift moves are the next to fire,
 * whose lines are wanted soon anyway (docs/timers.md).
 */
#include "tide_int.h"

#include <errno.h>

static inline int before(const tide__hent *a, const tide__hent *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(tide__heap *h, uint32_t i, tide__hent e)
{
    h->v[i] = e;
    e.t->idx = i;
}

static void sift_up(tide__heap *h, uint32_t i, tide__hent e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!before(&e, &h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, e);
}

/* The smaller of two entries by index (the order is total: no two entries
 * share an insertion number). */
static inline uint32_t least(const tide__hent *v, uint32_t a, uint32_t b)
{
    return before(&v[b], &v[a]) ? b : a;
}

static void sift_down(tide__heap *h, uint32_t i, tide__hent e)
{
    tide__hent *v = h->v;
    uint32_t n = h->n;

    for (;;) {
        uint32_t c = 4 * i + 1, best, k;
        if (c >= n)
            break;
        if (c + 3 < n) { /* four children: a tournament, three comparisons */
            best = least(v, least(v, c, c + 1), least(v, c + 2, c + 3));
        } else {
            best = c;
            for (k = c + 1; k < n; k++)
                best = least(v, best, k);
        }
        if (!before(&v[best], &e))
            break;
        place(h, i, v[best]);
        i = best;
    }
    place(h, i, e);
}

int tide__heap_push(tide__heap *h, tide__tnode *t)
{
    tide__hent e;

    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        tide__hent *v = tide__realloc(h->v, (size_t)cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->seq = h->seq++;
    e.deadline = t->deadline;
    e.seq = t->seq;
    e.t = t;
    sift_up(h, h->n++, e);
    return 0;
}

void tide__heap_remove(tide__heap *h, tide__tnode *t)
{
    uint32_t i = t->idx;
    tide__hent last;

    t->idx = TIDE__NOT_IN_HEAP;
    last = h->v[--h->n];
    if (last.t == t)
        return;
    if (i > 0 && before(&last, &h->v[(i - 1) / 4]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

void tide__heap_free(tide__heap *h)
{
    tide__free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

/* An armed timer keeps its loop alive: one ref per node in the heap. */
int tide__timer_add(tide_loop *loop, tide__tnode *n, int64_t deadline)
{
    int rc;

    n->deadline = deadline;
    rc = tide__heap_push(&loop->timers.heap, n);
    if (rc == 0)
        tide__loop_ref(loop);
    return rc;
}

void tide__timer_del(tide_loop *loop, tide__tnode *n)
{
    if (n->idx != TIDE__NOT_IN_HEAP) {
        tide__heap_remove(&loop->timers.heap, n);
        tide__loop_unref(loop);
    }
}

void tide__timers_run(tide_loop *loop)
{
    tide__heap *h = &loop->timers.heap;
    tide__tnode *tn;

    /* The key is read from the array: the node only when it fires. */
    while (h->n && h->v[0].deadline <= loop->now) {
        tn = h->v[0].t;
        tide__heap_remove(h, tn);
        tide__loop_unref(loop);
        tn->fire(loop, tn);
    }
}

int64_t tide__timers_next(tide_loop *loop)
{
    const tide__heap *h = &loop->timers.heap;
    return h->n ? h->v[0].deadline : TIDE__NEVER;
}

int tide__timers_init(tide_loop *loop)
{
    (void)loop; /* all zero: an empty heap, no call slabs */
    return 0;
}

/* ------------------------------------------------------ callback nodes */

#define CALLS_PER_SLAB 256

static tide__call *call_get(tide_loop *loop)
{
    tide__call *c = loop->timers.call_free;

    if (TIDE__UNLIKELY(!c)) {
        void **slabs;
        tide__call *slab;
        size_t i;

        slabs = tide__realloc(loop->timers.call_slabs, (loop->timers.ncall_slabs + 1) * sizeof *slabs);
        if (!slabs)
            return NULL;
        loop->timers.call_slabs = slabs;
        slab = tide__calloc(CALLS_PER_SLAB, sizeof *slab);
        if (!slab)
            return NULL;
        slabs[loop->timers.ncall_slabs++] = slab;
        for (i = 0; i < CALLS_PER_SLAB; i++) {
            slab[i].loop = loop;
            slab[i].t.idx = TIDE__NOT_IN_HEAP;
            slab[i].r.next = i + 1 < CALLS_PER_SLAB ? &slab[i + 1].r : NULL;
        }
        c = slab;
    }
    loop->timers.call_free = (tide__call *)c->r.next;
    return c;
}

static void call_put(tide_loop *loop, tide__call *c)
{
    c->gen++;
    c->state = TIDE__CALL_FREE;
    c->cb = NULL;
    c->r.next = (tide__runnable *)loop->timers.call_free;
    loop->timers.call_free = c;
}

void tide__timers_term(tide_loop *loop)
{
    size_t i;

    tide__heap_free(&loop->timers.heap);
    for (i = 0; i < loop->timers.ncall_slabs; i++)
        tide__free(loop->timers.call_slabs[i]);
    tide__free(loop->timers.call_slabs);
    loop->timers.call_slabs = NULL;
    loop->timers.ncall_slabs = 0;
    loop->timers.call_free = NULL;
}

static void call_run(tide_loop *loop, tide__runnable *r)
{
    tide__call *c = tide__container_of(r, tide__call, r);
    tide_cb cb = c->cb;
    void *arg = c->arg;

    call_put(loop, c); /* first: cb may schedule more and reuse the node */
    if (cb)
        cb(arg);
}

static void call_fire(tide_loop *loop, tide__tnode *n)
{
    tide__call *c = tide__container_of(n, tide__call, t);
    c->state = TIDE__CALL_READY;
    tide__runq_push(&loop->ready, &c->r);
}

int tide_call_soon(tide_loop *loop, tide_cb cb, void *arg)
{
    tide__call *c;

    if (!loop || !cb)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM; /* another thread: tide_call_soon_threadsafe */
    c = call_get(loop);
    if (!c)
        return -ENOMEM;
    c->cb = cb;
    c->arg = arg;
    c->state = TIDE__CALL_READY;
    c->r.run = call_run;
    c->r.drop = NULL;
    tide__runq_push(&loop->ready, &c->r);
    return 0;
}

/* The one timer path: cb(arg) at deadline ns on the loop's clock. */
static int call_at_ns(tide_loop *loop, int64_t deadline, tide_cb cb, void *arg, tide_timer *h)
{
    tide__call *c;

    c = call_get(loop);
    if (!c)
        return -ENOMEM;
    c->cb = cb;
    c->arg = arg;
    c->r.run = call_run;
    c->r.drop = NULL;
    c->t.fire = call_fire;
    if (tide__timer_add(loop, &c->t, deadline) < 0) {
        call_put(loop, c);
        return -ENOMEM;
    }
    c->state = TIDE__CALL_TIMER;
    if (h) {
        h->node = c;
        h->gen = c->gen;
    }
    return 0;
}

#define FAR_NS (INT64_MAX / 2) /* ~146 years: far enough to mean never */

int tide_call_later_ns(tide_loop *loop, int64_t ns, tide_cb cb, void *arg, tide_timer *h)
{
    int64_t now;

    if (!loop || !cb)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    if (ns < 0)
        ns = 0;
    if (ns > FAR_NS)
        ns = FAR_NS;
    now = tide__loop_ns(loop);
    return call_at_ns(loop, now + ns, cb, arg, h);
}

int tide_call_later(tide_loop *loop, int64_t ms, tide_cb cb, void *arg, tide_timer *h)
{
    if (ms > FAR_NS / 1000000)
        ms = FAR_NS / 1000000;
    return tide_call_later_ns(loop, ms < 0 ? 0 : ms * 1000000, cb, arg, h);
}

int tide_call_at_ns(tide_loop *loop, int64_t when_ns, tide_cb cb, void *arg, tide_timer *h)
{
    if (!loop || !cb)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    if (when_ns < 0)
        when_ns = 0; /* in the past: runs on the next iteration */
    return call_at_ns(loop, when_ns, cb, arg, h);
}

int tide_call_at(tide_loop *loop, int64_t when_ms, tide_cb cb, void *arg, tide_timer *h)
{
    if (when_ms > INT64_MAX / 1000000)
        when_ms = INT64_MAX / 1000000;
    return tide_call_at_ns(loop, when_ms < 0 ? 0 : when_ms * 1000000, cb, arg, h);
}

int tide_timer_cancel(tide_timer *h)
{
    tide__call *c;

    if (!h || !h->node)
        return -EINVAL;
    c = h->node;
    if (tide__loop_thread_check(c->loop) < 0)
        return -EPERM;
    if (c->gen != h->gen || c->state == TIDE__CALL_FREE || !c->cb)
        return -EALREADY;
    if (c->state == TIDE__CALL_TIMER) {
        tide__timer_del(c->loop, &c->t);
        call_put(c->loop, c);
    } else {
        c->cb = NULL; /* already in the ready queue: it runs as a no-op */
    }
    return 0;
}
