/*
 * Timers: a near heap for the next deadlines, and a radix heap for the far
 * ones (docs/timers.md).
 *
 * Every armed timer is in one of two parts, split at a key `w`:
 *
 * - the near heap, a 4-ary min-heap of {deadline, seq, node} by (deadline,
 *   seq), holds the keys below w.  seq counts insertions, so equal
 *   deadlines fire in the order they were armed (FIFO).  The node stores
 *   its position there (TIDE__IN_NEAR | i), so cancelling is O(log n).
 *   Its earliest entry is the earliest timer of all.
 *
 * - the far part holds the keys at w and above, in a radix heap: a base
 *   `last` (at most every key in it) and 8 levels of 256 buckets.  Bucket
 *   (L, d) holds the keys whose highest base-256 digit that differs from
 *   last's is digit L, and whose digit L is d.  Lower buckets hold lower
 *   keys.  Arming is O(1): an xor, a count of leading zeros and an append
 *   to the bucket's list.  Cancelling is O(1): an unlink.  The lists are
 *   linked by slot numbers through one dense array of slots {key, seq,
 *   node, next, prev}: moving timers between buckets reads that array, not
 *   the nodes (which live in task structs all over memory).  A node stores
 *   its slot, which does not change while it is in the far part.
 *
 * When the near heap is empty, the lowest bucket that holds timers is moved
 * into it, and w goes just past the greatest key moved.  A bucket of more
 * than TIDE__TQ_SPLIT (512) timers is first split: the start of its range
 * becomes the new base and its timers are dealt out into the buckets below
 * by their next digits (each timer only moves down, and the lowest bucket
 * is then one of the new ones).  So a timer is armed in O(1) and moved
 * about once in the dense virtual hour (from the bucket it was armed in
 * straight into the heap), and the heap holds at most a few hundred timers
 * beyond those armed below w, which keeps its sifts short.
 *
 * The near heap's array always has room for every armed timer (it grows
 * when a timer is armed, which is where -ENOMEM can come from), so moving
 * timers into it never allocates and cannot fail.
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

/* Room in the near heap for one more timer than are armed: 0 or -ENOMEM. */
static TIDE__NOINLINE int near_grow(tide__heap *h)
{
    uint32_t cap = h->vcap ? h->vcap * 2 : 64;
    tide__hent *v;

    if (cap > TIDE__IN_NEAR)
        return -ENOMEM;
    v = tide__realloc(h->v, (size_t)cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    h->v = v;
    h->vcap = cap;
    return 0;
}

static inline void near_add(tide__heap *h, int64_t deadline, uint64_t seq, tide__tnode *t)
{
    tide__hent e;

    e.deadline = deadline;
    e.seq = seq;
    e.t = t;
    sift_up(h, h->nv++, e);
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

/* ------------------------------------------------------------- far part */

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
    s[b].key++;
}

static inline void slot_put(tide__heap *h, uint32_t i)
{
    h->s[i].t = NULL;
    h->s[i].next = h->free;
    h->free = i;
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
                s[b].seq = 0;
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

    if (TIDE__UNLIKELY(h->n >= h->vcap) && near_grow(h) < 0)
        return -ENOMEM;
    if (TIDE__UNLIKELY(h->n == 0)) { /* empty: the split may go down */
        if (key < h->last)
            h->last = key;
        if (key < h->w)
            h->w = key;
    }
    if (key < h->w) {
        t->seq = h->seq++;
        near_add(h, t->deadline, t->seq, t);
        h->n++;
        return 0;
    }
    i = slot_get(h);
    if (TIDE__UNLIKELY(!i))
        return -ENOMEM;
    t->seq = h->seq;
    t->idx = i;
    h->s[i].key = key;
    h->s[i].seq = h->seq++;
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
    if (TIDE__LIKELY(i & TIDE__IN_NEAR)) {
        near_remove(h, i & ~TIDE__IN_NEAR);
        return;
    }
    prev = s[i].prev;
    next = s[i].next;
    s[prev].next = next;
    s[next].prev = prev;
    if (prev == next && next < TIDE__TQ_HEADS)
        unmark(h, next); /* it was the bucket's only timer */
    s[bucket_of(s[i].key, h->last)].key--; /* its bucket, by the invariant */
    slot_put(h, i);
}

/* Splits bucket b (L, d), L > 0: the start of its range becomes the base,
 * and its timers go to the buckets below (by their next digits), in list
 * order.  The buckets above keep their timers: the new base shares last's
 * digits above L, and d is below their digits on level L. */
static void split(tide__heap *h, uint32_t b)
{
    tide__tslot *s = h->s;
    unsigned shift = (b >> TIDE__TQ_BITS) * TIDE__TQ_BITS;
    uint64_t last = h->last >> shift >> TIDE__TQ_BITS << TIDE__TQ_BITS << shift;
    uint32_t i, next;

    last |= (uint64_t)(b & DIGITS) << shift;
    h->last = h->w = last;
    for (i = s[b].next; i != b; i = next) {
        uint32_t nb = bucket_of(s[i].key, last);
        next = s[i].next;
        link_tail(s, nb, i);
        mark(h, nb);
    }
    s[b].next = s[b].prev = b;
    s[b].key = 0;
    unmark(h, b);
}

void tide__heap_refill(tide__heap *h)
{
    tide__tslot *s = h->s;
    uint32_t limit = h->split ? h->split : TIDE__TQ_SPLIT, b, i, next, w;
    uint64_t max;

    for (;;) {
        w = (uint32_t)__builtin_ctz(h->words);
        b = w * 64 + (uint32_t)__builtin_ctzll(h->mask[w]);
        if (s[b].key <= limit || b <= DIGITS) /* level 0: one key */
            break;
        split(h, b);
    }
    for (max = 0, i = s[b].next; i != b; i = next) {
        next = s[i].next;
        if (s[i].key > max)
            max = s[i].key;
        near_add(h, deadline_of(s[i].key), s[i].seq, s[i].t);
        slot_put(h, i);
    }
    /* Every other far key is above this bucket's range, so above max: the
     * split goes just past it, and what is armed later beyond the timers
     * moved stays in the far part, however wide the bucket's range was.
     * At the top of the key space w saturates at UINT64_MAX, which the near
     * heap may then hold too; that keeps the order, since a far timer with
     * that key was armed after every near one. */
    h->w = max == UINT64_MAX ? max : max + 1;
    s[b].next = s[b].prev = b;
    s[b].key = 0;
    unmark(h, b);
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

    /* The key is read from the heap array: the node only when it fires. */
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
