/*
 * Tests of the timer heap (src/timer.c, docs/timers.md): the 4-ary heap of
 * (deadline, seq, node) entries, driven directly through the internal API
 * and checked against a plain model, then through the loop (tide_call_at_ns
 * on virtual time) for the order users see.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"
#include "tide_int.h"

/* A node and what the model knows of it. */
typedef struct mnode {
    tide__tnode t;
    uint64_t order; /* the model's insertion number while armed */
    int armed;
} mnode;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t key_of(int64_t d)
{
    return (uint64_t)d ^ (UINT64_C(1) << 63);
}

/* The bucket the structure must put key in, computed the plain way: the
 * highest digit (TIDE__TQ_BITS wide) in which key and last differ (0 when equal), and
 * key's digit there. */
static unsigned bucket_of(uint64_t key, uint64_t last)
{
    const unsigned bits = TIDE__TQ_BITS;
    const uint64_t digit = (UINT64_C(1) << bits) - 1;
    unsigned level = 0, l;

    for (l = 0; l < TIDE__TQ_LEVELS; l++)
        if (((key >> (bits * l)) & digit) != ((last >> (bits * l)) & digit))
            level = l;
    return (level << bits) + (unsigned)((key >> (bits * level)) & digit);
}

/* The split size the tests run with: 0 (the default, TIDE__TQ_SPLIT) or 1,
 * which splits every bucket of two timers or more down to level 0 before
 * it is moved into the near heap (each test runs both ways). */
static uint32_t g_split;

static int split_default(void **state)
{
    (void)state;
    g_split = 0;
    return 0;
}

static int split_always(void **state)
{
    (void)state;
    g_split = 1;
    return 0;
}

static int g_fail_malloc;

/* After each test, even a failed one: the plain allocator again. */
static int restore_allocator(void **state)
{
    (void)state;
    g_fail_malloc = 0;
    return tide_replace_allocator(malloc, realloc, calloc, free);
}

static void heap_init(tide__heap *h)
{
    memset(h, 0, sizeof *h);
    h->split = g_split;
}

/* Every structural promise of the structure, checked in full: the near
 * heap's order, positions and keys (all below w), and room in its array for
 * every armed timer; the far part's lists (links both ways, each slot in
 * the bucket its key and the base give, every key at least w and the base,
 * one key per level-0 bucket, the counts in the heads, the masks set
 * exactly for the buckets that hold timers, the node's slot, key and seq,
 * equal keys in arming order), the free list, and the count. */
static void check_heap(const tide__heap *h)
{
    uint32_t i, seen = 0, nfree = 0;
    unsigned b;

    assert_true(h->nv <= h->vcap);
    assert_true(h->n <= h->vcap);
    assert_true(h->last <= h->w);
    for (i = 0; i < h->nv; i++) {
        const tide__hent *e = &h->v[i];
        assert_int_equal(e->t->idx, TIDE__IN_NEAR | i);
        assert_true(e->t->deadline == e->deadline);
        assert_true(e->t->seq == e->seq);
        /* below w; at the very top, w = UINT64_MAX may equal a near key */
        assert_true(key_of(e->deadline) < h->w || h->w == UINT64_MAX);
        if (i > 0) {
            const tide__hent *p = &h->v[(i - 1) / 4];
            assert_true(p->deadline < e->deadline || (p->deadline == e->deadline && p->seq < e->seq));
        }
    }
    if (!h->s) {
        assert_int_equal(h->n, h->nv);
        assert_int_equal(h->words, 0);
        return;
    }
    assert_true(h->ns <= h->scap);
    for (b = 0; b < TIDE__TQ_HEADS; b++) {
        uint32_t prev = b, count = 0;
        int64_t lastd = INT64_MIN;
        uint64_t lastseq = 0;
        int any = h->s[b].next != b;
        assert_int_equal(!!(h->mask[b / 64] & (UINT64_C(1) << (b % 64))), any);
        if (any)
            assert_true(h->words & (UINT32_C(1) << (b / 64)));
        for (i = h->s[b].next; i != b; i = h->s[i].next) {
            const tide__tslot *e = &h->s[i];
            assert_true(i >= TIDE__TQ_HEADS && i < h->ns);
            assert_int_equal(e->prev, prev);
            assert_non_null(e->t);
            assert_int_equal(e->t->idx, i);
            assert_true(key_of(e->t->deadline) == e->key);
            assert_true(e->t->seq == e->seq);
            assert_true(e->key >= h->last);
            assert_true(e->key >= h->w);
            assert_int_equal(bucket_of(e->key, h->last), b);
            if (b < (1u << TIDE__TQ_BITS) && prev != b)
                assert_true(e->key == h->s[prev].key);
            /* equal keys in arming order within a bucket */
            if (e->t->deadline == lastd)
                assert_true(e->t->seq > lastseq);
            lastd = e->t->deadline;
            lastseq = e->t->seq;
            prev = i;
            count++;
            assert_true(++seen <= h->ns);
        }
        assert_int_equal(h->s[b].prev, prev);
        assert_true(h->s[b].key == count);
    }
    for (b = 0; b < TIDE__TQ_WORDS; b++)
        assert_int_equal(!!(h->words & (UINT32_C(1) << b)), h->mask[b] != 0);
    for (i = h->free; i; i = h->s[i].next) {
        assert_true(i >= TIDE__TQ_HEADS && i < h->ns);
        assert_null(h->s[i].t);
        assert_true(++nfree <= h->ns);
    }
    assert_int_equal(seen + h->nv, h->n);
    assert_int_equal(TIDE__TQ_HEADS + seen + nfree, h->ns);
}

/* Pops the earliest node, as tide__timers_run does. */
static tide__tnode *heap_pop(tide__heap *h)
{
    tide__tnode *t = tide__heap_min(h);
    if (t)
        tide__heap_remove(h, t);
    return t;
}

/* The model's earliest armed node: least deadline, then least order. */
static mnode *model_min(mnode *m, size_t n)
{
    mnode *best = NULL;
    size_t i;

    for (i = 0; i < n; i++)
        if (m[i].armed && (!best || m[i].t.deadline < best->t.deadline ||
                           (m[i].t.deadline == best->t.deadline && m[i].order < best->order)))
            best = &m[i];
    return best;
}

static void push(tide__heap *h, mnode *x, int64_t deadline, uint64_t *order)
{
    x->t.deadline = deadline;
    assert_int_equal(tide__heap_push(h, &x->t), 0);
    x->armed = 1;
    x->order = (*order)++;
}

/* Random pushes, cancels and pops against the model, with deadlines drawn
 * from a small range (many equal) and from the extremes. */
static void test_random_against_model(void **state)
{
    enum { N = 300, OPS = 20000 };
    mnode *m = calloc(N, sizeof *m);
    tide__heap h;
    uint64_t order = 0;
    int op;

    (void)state;
    heap_init(&h);
    assert_non_null(m);
    for (op = 0; op < N; op++)
        m[op].t.idx = TIDE__NOT_IN_HEAP;
    for (op = 0; op < OPS; op++) {
        mnode *x = &m[rnd() % N];
        unsigned k = (unsigned)(rnd() % 10);

        if (!x->armed && k < 6) {
            int64_t d = (int64_t)(rnd() % 50);
            if (k == 0)
                d = INT64_MAX - (int64_t)(rnd() % 3); /* far */
            else if (k == 1)
                d = (int64_t)(rnd() % 3); /* near */
            push(&h, x, d, &order);
        } else if (x->armed && k < 8) { /* cancel, anywhere in the heap */
            tide__heap_remove(&h, &x->t);
            assert_int_equal(x->t.idx, TIDE__NOT_IN_HEAP);
            x->armed = 0;
        } else {
            mnode *want = model_min(m, N);
            tide__tnode *got = heap_pop(&h);
            if (!want) {
                assert_null(got);
            } else {
                assert_ptr_equal(got, &want->t);
                assert_int_equal(got->idx, TIDE__NOT_IN_HEAP);
                want->armed = 0;
            }
        }
        if (op % 97 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    while (model_min(m, N)) {
        mnode *want = model_min(m, N);
        assert_ptr_equal(heap_pop(&h), &want->t);
        want->armed = 0;
    }
    assert_null(heap_pop(&h));
    assert_null(tide__heap_min(&h));
    assert_int_equal(h.n, 0);
    tide__heap_free(&h);
    assert_null(h.v);
    assert_null(h.s);
    free(m);
}

/* Many equal deadlines come out in the order they went in, also when some
 * in the middle were cancelled and others re-armed (they go to the back). */
static void test_equal_deadlines_fifo(void **state)
{
    enum { N = 2000 };
    mnode *m = calloc(N, sizeof *m);
    tide__heap h;
    uint64_t order = 0;
    int i, last = -1;

    (void)state;
    heap_init(&h);
    assert_non_null(m);
    for (i = 0; i < N; i++)
        push(&h, &m[i], 42, &order);
    for (i = 1; i < N; i += 3) { /* cancel a third, then re-arm half of those */
        tide__heap_remove(&h, &m[i].t);
        m[i].armed = 0;
    }
    for (i = 1; i < N; i += 6)
        push(&h, &m[i], 42, &order);
    check_heap(&h);
    for (i = 0; i < N; i++) {
        tide__tnode *t = heap_pop(&h);
        mnode *x;
        if (!t)
            break;
        x = (mnode *)t;
        assert_true((int64_t)x->order > last);
        last = (int)x->order;
        x->armed = 0;
    }
    for (i = 0; i < N; i++)
        assert_false(m[i].armed);
    tide__heap_free(&h);
    free(m);
}

/* Arming and disarming in cycles: the array stays at the peak number armed
 * at once, however many timers went through, and the insertion numbers
 * keep counting (FIFO holds across rounds). */
static void test_cycles_reuse(void **state)
{
    enum { N = 100, ROUNDS = 500 };
    mnode m[N];
    tide__heap h;
    uint64_t order = 0;
    int r, i;

    (void)state;
    heap_init(&h);
    memset(m, 0, sizeof m);
    for (r = 0; r < ROUNDS; r++) {
        for (i = 0; i < N; i++)
            push(&h, &m[i], (int64_t)(rnd() % 1000) + r * 1000, &order);
        for (i = 0; i < N; i += 2) { /* half cancelled, half fired */
            tide__heap_remove(&h, &m[i].t);
            m[i].armed = 0;
        }
        check_heap(&h);
        while (heap_pop(&h))
            ;
    }
    assert_int_equal(h.n, 0);
    assert_true(h.ns <= TIDE__TQ_HEADS + N && h.vcap <= 2 * N);
    assert_true(h.seq == (uint64_t)N * ROUNDS);
    tide__heap_free(&h);
}

/* A deadline far out and one near, with thousands in between: growth of
 * the arrays keeps every entry, and the extremes come out first and last. */
static void test_far_and_near_growth(void **state)
{
    enum { N = 5000 };
    mnode *m = calloc(N + 2, sizeof *m);
    tide__heap h;
    uint64_t order = 0;
    int64_t prev = INT64_MIN;
    int i;

    (void)state;
    heap_init(&h);
    assert_non_null(m);
    push(&h, &m[N], INT64_MAX, &order);
    for (i = 0; i < N; i++)
        push(&h, &m[i], 1000000 + (int64_t)(rnd() % 1000000000), &order);
    push(&h, &m[N + 1], 0, &order);
    check_heap(&h);
    assert_true(h.scap + h.vcap >= N + 2);
    assert_ptr_equal(tide__heap_min(&h), &m[N + 1].t);
    for (i = 0; i < N + 2; i++) {
        tide__tnode *t = heap_pop(&h);
        assert_non_null(t);
        assert_true(t->deadline >= prev);
        prev = t->deadline;
    }
    assert_true(prev == INT64_MAX);
    tide__heap_free(&h);
    free(m);
}

/* Out of memory while growing: the push fails with -ENOMEM and leaves the
 * heap as it was; it works again once memory is back. */

static void *fail_malloc(size_t n)
{
    return g_fail_malloc ? NULL : malloc(n);
}

static void *fail_realloc(void *p, size_t n)
{
    return g_fail_malloc ? NULL : realloc(p, n);
}

static void test_grow_enomem(void **state)
{
    enum { NEAR = 100, FAR = TIDE__TQ_HEADS }; /* the first slot array holds FAR timers */
    mnode *m = calloc(NEAR + FAR + 2, sizeof *m);
    tide__heap h;
    uint64_t order = 0;
    int i;

    (void)state;
    heap_init(&h);
    assert_non_null(m);
    assert_int_equal(tide_replace_allocator(fail_malloc, fail_realloc, calloc, free), 0);
    /* the first arming needs both arrays */
    g_fail_malloc = 1;
    m[0].t.deadline = 5;
    m[0].t.idx = TIDE__NOT_IN_HEAP;
    assert_int_equal(tide__heap_push(&h, &m[0].t), -ENOMEM);
    assert_int_equal(m[0].t.idx, TIDE__NOT_IN_HEAP);
    assert_int_equal(h.n, 0);
    assert_null(tide__heap_min(&h));
    g_fail_malloc = 0;
    /* NEAR timers moved into the near heap, then FAR in the far part */
    for (i = 0; i < NEAR; i++)
        push(&h, &m[i], 10, &order);
    assert_ptr_equal(tide__heap_min(&h), &m[0].t);
    assert_int_equal(h.nv, NEAR);
    for (i = NEAR; i < NEAR + FAR; i++)
        push(&h, &m[i], 1000000000 + i, &order);
    check_heap(&h);
    /* the slot array is full (the near array has room): growing it fails */
    assert_true(h.vcap > h.n);
    g_fail_malloc = 1;
    m[NEAR + FAR].t.deadline = 2000000000;
    m[NEAR + FAR].t.idx = TIDE__NOT_IN_HEAP;
    assert_int_equal(tide__heap_push(&h, &m[NEAR + FAR].t), -ENOMEM);
    assert_int_equal(m[NEAR + FAR].t.idx, TIDE__NOT_IN_HEAP);
    assert_int_equal(h.n, NEAR + FAR);
    check_heap(&h);
    g_fail_malloc = 0;
    push(&h, &m[NEAR + FAR], 2000000000, &order);
    push(&h, &m[NEAR + FAR + 1], 7, &order); /* below w: the near heap */
    assert_true(m[NEAR + FAR + 1].t.idx & TIDE__IN_NEAR);
    check_heap(&h);
    assert_ptr_equal(heap_pop(&h), &m[NEAR + FAR + 1].t);
    for (i = 0; i < NEAR + FAR + 1; i++)
        assert_ptr_equal(heap_pop(&h), &m[i].t);
    assert_null(heap_pop(&h));
    assert_int_equal(tide_replace_allocator(malloc, realloc, calloc, free), 0);
    tide__heap_free(&h);
    free(m);
}

/* The near array grows with the number armed: when it cannot, arming fails
 * with -ENOMEM and nothing changes, whichever part the timer was for. */
static void test_near_grow_enomem(void **state)
{
    enum { N = 64 }; /* the first near array holds 64 */
    mnode m[N + 1];
    tide__heap h;
    uint64_t order = 0;
    int i;

    (void)state;
    heap_init(&h);
    memset(m, 0, sizeof m);
    assert_int_equal(tide_replace_allocator(fail_malloc, fail_realloc, calloc, free), 0);
    for (i = 0; i < N; i++)
        push(&h, &m[i], 1000 + i, &order);
    assert_int_equal(h.vcap, N);
    g_fail_malloc = 1;
    m[N].t.deadline = 5000;
    m[N].t.idx = TIDE__NOT_IN_HEAP;
    assert_int_equal(tide__heap_push(&h, &m[N].t), -ENOMEM);
    assert_int_equal(m[N].t.idx, TIDE__NOT_IN_HEAP);
    assert_ptr_equal(tide__heap_min(&h), &m[0].t); /* moved into the near heap */
    if (!g_split)
        assert_int_equal(h.nv, N);
    m[N].t.deadline = 1;
    assert_int_equal(tide__heap_push(&h, &m[N].t), -ENOMEM);
    assert_int_equal(h.n, N);
    check_heap(&h);
    g_fail_malloc = 0;
    push(&h, &m[N], 1, &order);
    assert_ptr_equal(heap_pop(&h), &m[N].t);
    for (i = 0; i < N; i++)
        assert_ptr_equal(heap_pop(&h), &m[i].t);
    assert_int_equal(tide_replace_allocator(malloc, realloc, calloc, free), 0);
    tide__heap_free(&h);
}

/* Pops everything and checks the order against want[] (indices into m). */
static void pop_expect(tide__heap *h, mnode *m, const int *want, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        tide__tnode *t = heap_pop(h);
        assert_non_null(t);
        assert_int_equal((int)((mnode *)t - m), want[i]);
        check_heap(h);
    }
    assert_null(heap_pop(h));
}

/* Keys below w go to the near heap, keys at w and above to the far part;
 * the near heap comes first, FIFO holds in both, and cancels in the near
 * heap keep it ordered. */
static void test_keys_below_w(void **state)
{
    static const int want[] = {6, 3, 5, 9, 0, 4, 7, 1, 2, 10, 11};
    mnode m[12];
    tide__heap h;
    uint64_t order = 0;

    (void)state;
    heap_init(&h);
    memset(m, 0, sizeof m);
    push(&h, &m[0], 100, &order);
    push(&h, &m[1], 200, &order);
    push(&h, &m[2], 300, &order);
    assert_ptr_equal(tide__heap_min(&h), &m[0].t); /* moved into the near heap */
    if (!g_split) {
        assert_int_equal(h.nv, 3);
        assert_true(h.w == key_of(301));
    }
    push(&h, &m[3], 50, &order);  /* below w: near heap */
    push(&h, &m[4], 100, &order); /* after m[0] */
    push(&h, &m[5], 50, &order);  /* after m[3] */
    push(&h, &m[6], -7, &order);  /* a negative deadline */
    push(&h, &m[7], 150, &order);
    push(&h, &m[8], 60, &order);
    push(&h, &m[9], 50, &order);
    push(&h, &m[10], 301, &order); /* at w: far */
    push(&h, &m[11], 400, &order);
    assert_true(m[3].t.idx & TIDE__IN_NEAR);
    if (!g_split) {
        assert_true(m[7].t.idx & TIDE__IN_NEAR);
        assert_false(m[10].t.idx & TIDE__IN_NEAR);
        assert_false(m[11].t.idx & TIDE__IN_NEAR);
    }
    check_heap(&h);
    tide__heap_remove(&h, &m[8].t); /* cancel in the near heap */
    check_heap(&h);
    {
        int64_t d;
        assert_ptr_equal(tide__heap_first(&h, &d), &m[6].t);
        assert_true(d == -7);
    }
    pop_expect(&h, m, want, 11);
    tide__heap_free(&h);
}

/* Equal keys that reach their bucket by different roads: armed while the
 * base was far below (a high bucket, then dealt out once or more), armed
 * after the base moved closer (straight into a lower bucket), and armed
 * once the key is the base itself (level 0).  They must come out in
 * arming order, with cancels among them. */
static void test_equal_keys_across_redistribution(void **state)
{
    enum { K = (1 << 30) + 12345 };
    static const int64_t steps[] = {1, 1 << 9, (1 << 17) + 3, (1 << 25) + 77, K - 1};
    static const int want[] = {0, 2, 3, 4, 6, 7};
    mnode m[8], small[5];
    tide__heap h;
    uint64_t order = 0;
    int i, k = 0;

    (void)state;
    heap_init(&h);
    memset(m, 0, sizeof m);
    memset(small, 0, sizeof small);
    push(&h, &m[k++], K, &order);
    for (i = 0; i < 5; i++) {
        /* a smaller key moves the base up to it when popped */
        push(&h, &small[i], steps[i], &order);
        if (i == 2)
            push(&h, &m[k++], K, &order); /* same key, while the base is low */
        assert_ptr_equal(heap_pop(&h), &small[i].t);
        push(&h, &m[k++], K, &order);
        check_heap(&h);
    }
    /* m[0..6] armed, some of them moved already */
    tide__heap_remove(&h, &m[1].t);
    tide__heap_remove(&h, &m[5].t);
    assert_ptr_equal(tide__heap_min(&h), &m[0].t);
    push(&h, &m[7], K, &order); /* armed now for the key at the front */
    check_heap(&h);
    pop_expect(&h, m, want, 6);
    tide__heap_free(&h);
}

/* A bucket emptied by cancels clears its bit, so the next lowest bucket is
 * found; a bucket of one timer and one of many both deal out right. */
static void test_buckets_emptied_by_cancels(void **state)
{
    enum { N = 64 };
    mnode m[3 * N];
    tide__heap h;
    uint64_t order = 0;
    int i;

    (void)state;
    heap_init(&h);
    memset(m, 0, sizeof m);
    push(&h, &m[0], 0, &order);
    assert_ptr_equal(heap_pop(&h), &m[0].t); /* base 0 */
    for (i = 0; i < N; i++) /* one high bucket: [2^40, 2^40 + N) */
        push(&h, &m[i], ((int64_t)1 << 40) + i, &order);
    for (i = 0; i < N; i++) /* a lower one: around 2^24 */
        push(&h, &m[N + i], ((int64_t)1 << 24) + 1000 * i, &order);
    push(&h, &m[2 * N], (int64_t)1 << 48, &order); /* alone, higher still */
    check_heap(&h);
    for (i = 0; i < N; i++) { /* empty the lower bucket by cancels */
        tide__heap_remove(&h, &m[N + i].t);
        check_heap(&h);
    }
    for (i = 0; i < N; i += 2) /* half of the high one too */
        tide__heap_remove(&h, &m[i].t);
    check_heap(&h);
    for (i = 1; i < N; i += 2) {
        assert_ptr_equal(heap_pop(&h), &m[i].t);
        check_heap(&h);
    }
    assert_ptr_equal(heap_pop(&h), &m[2 * N].t);
    assert_null(heap_pop(&h));
    assert_int_equal(h.words, 0);
    tide__heap_free(&h);
}

/* The whole range of keys: negative deadlines, INT64_MIN and INT64_MAX,
 * each key's bucket checked against the plain computation throughout. */
static void test_extreme_keys(void **state)
{
    static const int64_t d[] = {INT64_MAX, INT64_MIN, 0, -1, 1, INT64_MAX - 1, INT64_MIN + 1,
                                (int64_t)1 << 62, -((int64_t)1 << 62), INT64_MAX, INT64_MIN};
    enum { N = sizeof d / sizeof d[0] };
    static const int want[N] = {1, 10, 6, 8, 3, 2, 4, 7, 5, 0, 9};
    mnode m[N];
    tide__heap h;
    uint64_t order = 0;
    int i;

    (void)state;
    heap_init(&h);
    memset(m, 0, sizeof m);
    for (i = 0; i < N; i++)
        push(&h, &m[i], d[i], &order);
    check_heap(&h);
    pop_expect(&h, m, want, N);
    tide__heap_free(&h);
}

/* Through the loop: callbacks armed on virtual time fire in (deadline,
 * arming order), each at its own virtual time, with cancels in the middle
 * and a timer armed from a callback for the current instant. */
typedef struct rec {
    tide_loop *loop;
    int order[64];
    int64_t when[64];
    int n;
} rec;

static rec g_rec;
static tide_timer g_handles[16];

static void note(void *arg)
{
    int id = (int)(intptr_t)arg;
    g_rec.when[g_rec.n] = tide_vclock_now(g_rec.loop);
    g_rec.order[g_rec.n++] = id;
    if (id == 3) /* armed now for now: after those already due at this time */
        assert_int_equal(tide_call_at_ns(g_rec.loop, tide_vclock_now(g_rec.loop), note, (void *)(intptr_t)99, NULL), 0);
}

static void test_loop_order_and_cancel(void **state)
{
    static const int64_t at[12] = {30, 10, 20, 10, 50, 10, 20, 40, 30, 10, 60, 20};
    static const int want[] = {1, 3, 5, 9, 99, 2, 11, 0, 8, 7, 10};
    static const int64_t want_when[] = {10, 10, 10, 10, 10, 20, 20, 30, 30, 40, 60};
    tide_loop *loop;
    int i;

    (void)state;
    memset(&g_rec, 0, sizeof g_rec);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
    g_rec.loop = loop;
    for (i = 0; i < 12; i++)
        assert_int_equal(tide_call_at_ns(loop, at[i], note, (void *)(intptr_t)i, &g_handles[i]), 0);
    assert_int_equal(tide_timer_cancel(&g_handles[6]), 0); /* 20, in the middle */
    assert_int_equal(tide_timer_cancel(&g_handles[4]), 0); /* 50 */
    assert_int_equal(tide_timer_cancel(&g_handles[4]), -EALREADY);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(g_rec.n, (int)(sizeof want / sizeof want[0]));
    for (i = 0; i < g_rec.n; i++) {
        assert_int_equal(g_rec.order[i], want[i]);
        assert_true(g_rec.when[i] == want_when[i]);
    }
    assert_int_equal(tide_timer_cancel(&g_handles[0]), -EALREADY); /* fired */
    tide_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_against_model, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_random_against_model, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_equal_deadlines_fifo, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_equal_deadlines_fifo, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_cycles_reuse, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_cycles_reuse, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_far_and_near_growth, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_far_and_near_growth, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_grow_enomem, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_grow_enomem, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_near_grow_enomem, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_near_grow_enomem, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_keys_below_w, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_keys_below_w, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_equal_keys_across_redistribution, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_equal_keys_across_redistribution, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_buckets_emptied_by_cancels, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_buckets_emptied_by_cancels, split_always, restore_allocator),
        cmocka_unit_test_setup_teardown(test_extreme_keys, split_default, restore_allocator),
        cmocka_unit_test_setup_teardown(test_extreme_keys, split_always, restore_allocator),
        cmocka_unit_test(test_loop_order_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
