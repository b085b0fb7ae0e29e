/*
 * Timers: a 4-ary min-heap keyed by (deadline, seq), kept in dense arrays.
 *
 * The heap array holds 16-byte entries (deadline, slot): four siblings fill
 * one cache line, and a comparison reads the array alone unless the two
 * deadlines are equal (then the insertion numbers in the side table decide,
 * so equal deadlines fire in the order they were armed).  A slot is the
 * node's handle while it is armed: slots[slot] names the node, pos[slot] is
 * the entry's index in the heap array, and the node keeps its slot.  A sift
 * rewrites pos[] (4 bytes an entry) and never the nodes, which live in task
 * structs on pages of their own: the old heap wrote each moved entry's
 * index into its node, a cache and TLB miss per level (docs/timers.md has
 * the measurements).  Cancelling is O(log n) with no search.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

static inline int before(const tide__heap *h, const tide__hent *a, const tide__hent *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return h->slots[a->slot].seq < h->slots[b->slot].seq;
}

static inline void place(tide__heap *h, uint32_t i, tide__hent e)
{
    h->v[i] = e;
    h->pos[e.slot] = i;
}

static void sift_up(tide__heap *h, uint32_t i, tide__hent e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!before(h, &e, &h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, e);
}

/* The smaller of two entries by index (the order is total: no two slots
 * share an insertion number). */
static inline uint32_t least(const tide__heap *h, uint32_t a, uint32_t b)
{
    return before(h, &h->v[b], &h->v[a]) ? b : a;
}

static void sift_down(tide__heap *h, uint32_t i, tide__hent e)
{
    tide__hent *v = h->v;
    uint32_t *pos = h->pos;
    uint32_t n = h->n;

    for (;;) {
        uint32_t c = 4 * i + 1, best, k;
        if (c >= n)
            break;
        if (c + 3 < n) { /* four children: a tournament, one cache line */
            best = least(h, least(h, c, c + 1), least(h, c + 2, c + 3));
        } else {
            best = c;
            for (k = c + 1; k < n; k++)
                best = least(h, best, k);
        }
        if (!before(h, &v[best], &e))
            break;
        v[i] = v[best];
        pos[v[i].slot] = i;
        i = best;
    }
    v[i] = e;
    pos[e.slot] = i;
}

/* Grows the three arrays together, in one allocation.  The four children
 * of entry i are v[4i+1 .. 4i+4]: with v + 1 on a 64-byte boundary, each
 * group of siblings is one cache line. */
static int grow(tide__heap *h)
{
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    char *mem;
    uintptr_t a;
    tide__hent *v;
    tide__hslot *slots;
    uint32_t *pos;

    if (h->cap >= UINT32_MAX / 4)
        return -ENOMEM; /* a slot must stay below TIDE__NOT_IN_HEAP */
    mem = tide__malloc(64 + (size_t)cap * (sizeof *v + sizeof *slots + sizeof *pos));
    if (!mem)
        return -ENOMEM;
    a = ((uintptr_t)mem + sizeof *v + 63) & ~(uintptr_t)63;
    v = (tide__hent *)(a - sizeof *v);
    slots = (tide__hslot *)(v + cap);
    pos = (uint32_t *)(slots + cap);
    if (h->n)
        memcpy(v, h->v, (size_t)h->n * sizeof *v);
    if (h->nslots) {
        memcpy(slots, h->slots, (size_t)h->nslots * sizeof *slots);
        memcpy(pos, h->pos, (size_t)h->nslots * sizeof *pos);
    }
    tide__free(h->mem);
    h->mem = mem;
    h->v = v;
    h->slots = slots;
    h->pos = pos;
    h->cap = cap;
    return 0;
}

int tide__heap_push(tide__heap *h, tide__tnode *t)
{
    tide__hent e;
    uint32_t slot;

    if (h->n == h->cap && grow(h) < 0)
        return -ENOMEM;
    if (h->free) { /* n < cap, and every slot in use has an entry: one is free */
        slot = h->free - 1;
        h->free = h->pos[slot];
    } else {
        slot = h->nslots++;
    }
    h->slots[slot].t = t;
    h->slots[slot].seq = h->seq++;
    t->idx = slot;
    e.deadline = t->deadline;
    e.slot = slot;
    e.unused = 0;
    sift_up(h, h->n++, e);
    return 0;
}

/* Takes the entry at index i out of the heap; its slot is freed. */
static void remove_at(tide__heap *h, uint32_t i)
{
    uint32_t slot = h->v[i].slot;
    tide__hent last;

    h->slots[slot].t->idx = TIDE__NOT_IN_HEAP;
    last = h->v[--h->n];
    if (i != h->n) {
        if (i > 0 && before(h, &last, &h->v[(i - 1) / 4]))
            sift_up(h, i, last);
        else
            sift_down(h, i, last);
    }
    h->pos[slot] = h->free;
    h->free = slot + 1;
}

void tide__heap_remove(tide__heap *h, tide__tnode *t)
{
    remove_at(h, h->pos[t->idx]);
}

tide__tnode *tide__heap_pop(tide__heap *h)
{
    tide__tnode *t;

    if (!h->n)
        return NULL;
    t = h->slots[h->v[0].slot].t;
    remove_at(h, 0);
    return t;
}

void tide__heap_free(tide__heap *h)
{
    tide__free(h->mem);
    memset(h, 0, sizeof *h);
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

    /* The key is in the array: a node is read only to fire it. */
    while (h->n && h->v[0].deadline <= loop->now) {
        tn = tide__heap_pop(h);
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
