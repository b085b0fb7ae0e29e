/*
 * Timers: a radix heap with FIFO buckets, plus a small 4-ary heap for
 * deadlines below its base (docs/timers.md).
 *
 * The radix part keeps a base, `last`, that is at most every key in it, and
 * 65 buckets: bucket 0 holds the keys equal to last, bucket b > 0 those
 * whose highest bit that differs from last is bit b-1.  Arming is O(1): an
 * xor, a count of leading zeros, and an append to that bucket's list.
 * Cancelling is O(1): an unlink.  The earliest timer is in bucket 0; when
 * that is empty, the lowest bucket that is not is scanned for its least
 * key, which becomes the new base, and its timers are dealt out again into
 * lower buckets (each timer only ever moves down, so at most 64 times, in
 * practice two or three).  The keys of the buckets above keep their
 * buckets: the new base shares their high bits with the old one.
 *
 * FIFO among equal deadlines needs no comparison of insertion numbers:
 * equal keys always share a bucket, a bucket is a list that is appended to
 * in arming order, an unlink keeps the order of the rest, and dealing a
 * bucket out walks it in order into buckets that were empty.  So in every
 * bucket, timers with equal keys sit in arming order, and bucket 0 (one
 * key) is a plain queue.
 *
 * The lists are linked by slot numbers through one dense array of slots
 * {key, node, next, prev}: walking a bucket reads that array and never the
 * nodes, which live in task structs all over memory.  A node stores its
 * slot, which never changes while it is armed, so the node is written only
 * when it is armed and disarmed.  Slots are recycled through a free list;
 * the array grows (amortized, on arming only) to the peak number armed.
 *
 * A key below the base (a deadline already in the past of the radix part,
 * e.g. one armed after the base moved to the next deadline) goes to the
 * near heap: a 4-ary min-heap by (deadline, seq).  Its keys are all below
 * last, and last moves only when the near heap is empty, so the near heap's
 * least is the least of all whenever it has any.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------ near heap */

static inline int before(const tide__hent *a, const tide__hent *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(tide__heap *h, uint32_t i, tide__hent e)
{
    h->v[i] = e;
    e.t->idx = TIDE__IN_NEAR | i;
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
    uint32_t n = h->nv;

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

static TIDE__NOINLINE int near_push(tide__heap *h, tide__tnode *t)
{
    tide__hent e;

    if (h->nv == h->vcap) {
        uint32_t cap = h->vcap ? h->vcap * 2 : 64;
        tide__hent *v;
        if (cap > TIDE__IN_NEAR)
            return -ENOMEM;
        v = tide__realloc(h->v, (size_t)cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->vcap = cap;
    }
    t->seq = h->seq++;
    e.deadline = t->deadline;
    e.seq = t->seq;
    e.t = t;
    sift_up(h, h->nv++, e);
    return 0;
}

static void near_remove(tide__heap *h, uint32_t i)
{
    tide__hent last = h->v[--h->nv];

    if (i == h->nv)
        return;
    if (i > 0 && before(&last, &h->v[(i - 1) / 4]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

/* ----------------------------------------------------------- radix part */

#define SIGN (UINT64_C(1) << 63)

static inline uint64_t key_of(int64_t deadline)
{
    return (uint64_t)deadline ^ SIGN;
}

static inline int64_t deadline_of(uint64_t key)
{
    return (int64_t)(key ^ SIGN);
}

#define DIGITS ((UINT64_C(1) << TIDE__TQ_BITS) - 1)

/* The bucket of key (>= last): L << TIDE__TQ_BITS | d.  (x | 1: a key equal
 * to the base, or differing in bit 0 only, is on level 0 too.) */
static inline uint32_t bucket_of(uint64_t key, uint64_t last)
{
    unsigned level = (unsigned)(63 - __builtin_clzll((key ^ last) | 1)) / TIDE__TQ_BITS;
    return (level << TIDE__TQ_BITS) | (uint32_t)((key >> (level * TIDE__TQ_BITS)) & DIGITS);
}

static inline void mark(tide__heap *h, uint32_t b)
{
    h->mask[b / 64] |= UINT64_C(1) << (b % 64);
    h->words |= UINT32_C(1) << (b / 64);
}

static inline void unmark(tide__heap *h, uint32_t b)
{
    if (!(h->mask[b / 64] &= ~(UINT64_C(1) << (b % 64))))
        h->words &= ~(UINT32_C(1) << (b / 64));
}

static inline void link_tail(tide__tslot *s, uint32_t b, uint32_t i)
{
    uint32_t tail = s[b].prev;

    s[i].prev = tail;
    s[i].next = b;
    s[tail].next = i;
    s[b].prev = i;
}

/* No free slot: a fresh one, growing the array when it is full (out of
 * line: rare).  0 on -ENOMEM, with nothing changed. */
static TIDE__NOINLINE uint32_t slot_new(tide__heap *h)
{
    if (h->ns == h->scap) {
        uint32_t cap = h->scap ? h->scap * 2 : 2 * TIDE__TQ_HEADS, b;
        tide__tslot *s;
        if (cap > TIDE__IN_NEAR)
            return 0;
        s = tide__realloc(h->s, (size_t)cap * sizeof *s);
        if (!s)
            return 0;
        if (!h->scap) { /* the bucket heads: empty lists */
            for (b = 0; b < TIDE__TQ_HEADS; b++) {
                s[b].next = s[b].prev = b;
                s[b].key = 0;
                s[b].t = NULL;
            }
            h->ns = TIDE__TQ_HEADS;
        }
        h->s = s;
        h->scap = cap;
    }
    return h->ns++;
}

static inline uint32_t slot_get(tide__heap *h)
{
    uint32_t i = h->free;

    if (TIDE__UNLIKELY(!i))
        return slot_new(h);
    h->free = h->s[i].next;
    return i;
}

int tide__heap_push(tide__heap *h, tide__tnode *t)
{
    uint64_t key = key_of(t->deadline);
    uint32_t i, b;

    if (h->n == 0) { /* empty: the base may go down (never up: see above) */
        if (key < h->last)
            h->last = key;
    } else if (TIDE__UNLIKELY(key < h->last)) {
        int rc = near_push(h, t);
        if (rc == 0)
            h->n++;
        return rc;
    }
    i = slot_get(h);
    if (TIDE__UNLIKELY(!i))
        return -ENOMEM;
    t->seq = h->seq++;
    t->idx = i;
    h->s[i].key = key;
    h->s[i].t = t;
    b = bucket_of(key, h->last);
    link_tail(h->s, b, i);
    mark(h, b);
    h->n++;
    return 0;
}

void tide__heap_remove(tide__heap *h, tide__tnode *t)
{
    uint32_t i = t->idx, prev, next;
    tide__tslot *s = h->s;

    t->idx = TIDE__NOT_IN_HEAP;
    h->n--;
    if (TIDE__UNLIKELY(i & TIDE__IN_NEAR)) {
        near_remove(h, i & ~TIDE__IN_NEAR);
        return;
    }
    prev = s[i].prev;
    next = s[i].next;
    s[prev].next = next;
    s[next].prev = prev;
    if (prev == next && next < TIDE__TQ_HEADS)
        unmark(h, next); /* it was the bucket's only timer */
    s[i].t = NULL;
    s[i].next = h->free;
    h->free = i;
}

/* Level 0 is empty and the radix part is not: the lowest bucket that holds
 * timers, b, gives the new base (its least key) and is dealt out below it.
 * Out of line: the common case of tide__heap_first stays small. */
uint32_t tide__heap_redistribute(tide__heap *h, uint32_t b)
{
    tide__tslot *s = h->s;
    uint64_t min, last;
    uint32_t i = s[b].next, next;

    unmark(h, b);
    if (s[i].next == b) { /* alone: it becomes the base, on level 0 */
        uint32_t b0 = (uint32_t)(s[i].key & DIGITS);
        h->last = s[i].key;
        s[b].next = s[b].prev = b;
        s[i].next = s[i].prev = b0;
        s[b0].next = s[b0].prev = i;
        mark(h, b0);
        return b0;
    }
    for (min = s[i].key; i != b; i = s[i].next)
        if (s[i].key < min)
            min = s[i].key;
    h->last = last = min;
    for (i = s[b].next; i != b; i = next) {
        uint32_t nb = bucket_of(s[i].key, last);
        next = s[i].next;
        link_tail(s, nb, i);
        mark(h, nb);
    }
    s[b].next = s[b].prev = b;
    return (uint32_t)(min & DIGITS); /* the least key is on level 0 now */
}

void tide__heap_free(tide__heap *h)
{
    tide__free(h->s);
    tide__free(h->v);
    h->s = NULL;
    h->v = NULL;
    h->ns = h->scap = h->free = 0;
    h->nv = h->vcap = 0;
    h->n = 0;
    h->words = 0;
    memset(h->mask, 0, sizeof h->mask);
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
    int64_t dl;

    /* The key is read from the slots: the node only when it fires. */
    while ((tn = tide__heap_first(h, &dl)) && dl <= loop->now) {
        tide__heap_remove(h, tn);
        tide__loop_unref(loop);
        tn->fire(loop, tn);
    }
}

int64_t tide__timers_next(tide_loop *loop)
{
    int64_t dl;
    return tide__heap_first(&loop->timers.heap, &dl) ? dl : TIDE__NEVER;
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
