/*
 * Tests of queues (include/tide/sync.h): FIFO, LIFO and priority order;
 * bounded queues (put_nowait -EAGAIN when full, get_nowait -EAGAIN when
 * empty); waiting getters and putters served FIFO, cancelled or timed out
 * without losing an item, handed an item and cancelled before they run;
 * task_done / join; shutdown (graceful and immediate) in every state; free
 * with waiters; misuse.
 *
 * Items are small integers stored in the pointer (ITEM(i) / VAL(p)).
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
#include <unistd.h>

#include "tide.h"
#include "util.h"
#include "vrun.h"

#define ITEM(i) ((void *)(intptr_t)(i))
#define VAL(p) ((int)(intptr_t)(p))
#define NW 4

static void settle(void)
{
    for (int i = 0; i < 8; i++)
        tide_sleep(0);
}

typedef struct qw {
    struct qs *s;
    int id;
    int item;           /* putters: what to put */
    int got;            /* getters: what they got */
    int rc, rc_next, rc_end;
    int done;
    int64_t timeout_ms;
} qw;

typedef struct qs {
    tide_queue *q;
    qw w[NW + 2];
    tide_task *t[NW + 2];
    int order[128];
    int norder;
    int rc[32];
    int freed[64];
    int nfreed;
} qs;

static void record(qs *s, int v)
{
    if (s->norder < (int)TT_ARRAY_LEN(s->order))
        s->order[s->norder++] = v;
}

static int getter(void *arg)
{
    qw *w = arg;
    void *p = ITEM(-1);
    tide_scope sc;
    if (w->timeout_ms > 0)
        tide_timeout_begin(&sc, w->timeout_ms);
    w->rc = tide_queue_get(w->s->q, &p);
    if (w->timeout_ms > 0)
        w->rc_end = tide_timeout_end(&sc);
    w->done = 1;
    if (w->rc == 0) {
        w->got = VAL(p);
        record(w->s, w->id);
    }
    w->rc_next = tide_sleep(0);
    return 0;
}

static int putter(void *arg)
{
    qw *w = arg;
    tide_scope sc;
    if (w->timeout_ms > 0)
        tide_timeout_begin(&sc, w->timeout_ms);
    w->rc = tide_queue_put(w->s->q, ITEM(w->item));
    if (w->timeout_ms > 0)
        w->rc_end = tide_timeout_end(&sc);
    w->done = 1;
    w->rc_next = tide_sleep(0);
    return 0;
}

static void spawn(qs *s, int i, tide_fn fn)
{
    s->w[i].s = s;
    s->w[i].id = i;
    assert_int_equal(tide_create_task(&s->t[i], fn, &s->w[i]), 0);
}

static int new_queue(tide_queue **q, int kind, size_t maxsize)
{
    tide_queue_opts o;
    tide_queue_opts_init(&o);
    o.kind = kind;
    o.maxsize = maxsize;
    return tide_queue_new(q, &o);
}

/* Takes every item left without waiting, recording it. */
static void drain(qs *s)
{
    void *p;
    while (tide_queue_get_nowait(s->q, &p) == 0)
        record(s, VAL(p));
}

/* ============================================================ ordering */

static int cmp_int(const void *a, const void *b)
{
    int x = VAL(a) / 100, y = VAL(b) / 100; /* priority: the hundreds */
    return (x > y) - (x < y);
}

static int order_main(void *arg)
{
    qs *s = arg;
    void *p;
    /* FIFO, unbounded, wrapping the ring while it grows */
    new_queue(&s->q, TIDE_QUEUE_FIFO, 0);
    for (int i = 0; i < 10; i++)
        tide_queue_put(s->q, ITEM(i));
    for (int i = 0; i < 5; i++)
        tide_queue_get(s->q, &p), record(s, VAL(p));
    for (int i = 10; i < 50; i++)
        tide_queue_put_nowait(s->q, ITEM(i));
    s->rc[0] = (int)tide_queue_size(s->q);
    drain(s);
    tide_queue_free(s->q);
    /* LIFO */
    new_queue(&s->q, TIDE_QUEUE_LIFO, 0);
    for (int i = 0; i < 20; i++)
        tide_queue_put(s->q, ITEM(100 + i));
    drain(s);
    tide_queue_free(s->q);
    /* priority, FIFO among equals: value = prio*100 + sequence */
    tide_queue_opts o;
    tide_queue_opts_init(&o);
    o.kind = TIDE_QUEUE_PRIORITY;
    o.cmp = cmp_int;
    tide_queue_new(&s->q, &o);
    static const int prio[] = {3, 1, 2, 1, 3, 0, 2, 1, 0, 3, 2, 2, 1, 0, 3};
    int seq[4] = {0};
    for (size_t i = 0; i < TT_ARRAY_LEN(prio); i++)
        tide_queue_put(s->q, ITEM(1000 + prio[i] * 100 + seq[prio[i]]++));
    drain(s);
    tide_queue_free(s->q);
    return 0;
}

static void test_order_fifo_lifo_priority(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(order_main, &s), 0);
    assert_int_equal(s.rc[0], 45);
    assert_int_equal(s.norder, 50 + 20 + 15);
    for (int i = 0; i < 50; i++)
        assert_int_equal(s.order[i], i);
    for (int i = 0; i < 20; i++)
        assert_int_equal(s.order[50 + i], 119 - i);
    /* priority: ascending priority, and within one the order of put */
    for (int i = 71; i < 85; i++) {
        int a = s.order[i - 1] - 1000, b = s.order[i] - 1000;
        assert_true(a / 100 < b / 100 || (a / 100 == b / 100 && a % 100 + 1 == b % 100));
    }
    assert_int_equal(s.order[70], 1000);
    assert_int_equal(s.order[84], 1300 + 3);
}

/* A larger priority queue against a sort: random priorities, many equal. */
static int heap_main(void *arg)
{
    qs *s = arg;
    tide_queue_opts o;
    uint64_t x = 88172645463325252ULL;
    int last = -1, ok = 1, n = 0;
    void *p;
    tide_queue_opts_init(&o);
    o.kind = TIDE_QUEUE_PRIORITY;
    o.cmp = cmp_int;
    tide_queue_new(&s->q, &o);
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tide_queue_put(s->q, ITEM((int)(x % 50) * 100));
        if (i % 3 == 2) { /* interleave gets */
            tide_queue_get(s->q, &p);
            n++;
        }
    }
    while (tide_queue_get_nowait(s->q, &p) == 0) {
        if (VAL(p) < last)
            ok = 0;
        last = VAL(p);
        n++;
    }
    s->rc[0] = ok;
    s->rc[1] = n;
    tide_queue_free(s->q);
    return 0;
}

static void test_priority_heap(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(heap_main, &s), 0);
    assert_int_equal(s.rc[0], 1);
    assert_int_equal(s.rc[1], 2000);
}

/* ================================================= full / empty, nowait */

static int nowait_main(void *arg)
{
    qs *s = arg;
    void *p = ITEM(7);
    for (int kind = 0; kind < 2; kind++) {
        new_queue(&s->q, kind, 2);
        s->rc[kind * 8 + 0] = tide_queue_get_nowait(s->q, &p);
        s->rc[kind * 8 + 1] = tide_queue_put_nowait(s->q, ITEM(1));
        s->rc[kind * 8 + 2] = tide_queue_put_nowait(s->q, ITEM(2));
        s->rc[kind * 8 + 3] = tide_queue_put_nowait(s->q, ITEM(3)); /* full */
        s->rc[kind * 8 + 4] = (int)tide_queue_size(s->q);
        s->rc[kind * 8 + 5] = tide_queue_get_nowait(s->q, &p);
        s->rc[kind * 8 + 6] = VAL(p);
        tide_queue_free(s->q); /* with an item left */
    }
    s->rc[20] = VAL(p);
    return 0;
}

static void test_nowait_full_empty(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(nowait_main, &s), 0);
    for (int kind = 0; kind < 2; kind++) {
        assert_int_equal(s.rc[kind * 8 + 0], -EAGAIN);
        assert_int_equal(s.rc[kind * 8 + 1], 0);
        assert_int_equal(s.rc[kind * 8 + 2], 0);
        assert_int_equal(s.rc[kind * 8 + 3], -EAGAIN);
        assert_int_equal(s.rc[kind * 8 + 4], 2);
        assert_int_equal(s.rc[kind * 8 + 5], 0);
    }
    assert_int_equal(s.rc[6], 1);  /* FIFO */
    assert_int_equal(s.rc[14], 2); /* LIFO */
}

/* ===================================================== getters, FIFO */

/* Getters waiting on an empty queue are served in order; the middle one is
 * cancelled, another times out: their items go to the next getters. */
static int getters_main(void *arg)
{
    qs *s = arg;
    new_queue(&s->q, TIDE_QUEUE_FIFO, 0);
    s->w[3].timeout_ms = 10;
    for (int i = 0; i < NW; i++)
        spawn(s, i, getter);
    settle();
    tide_cancel(s->t[1]);
    tide_sleep(30); /* w[3] times out */
    s->rc[0] = s->w[1].done + s->w[3].done;
    s->rc[1] = tide_queue_put(s->q, ITEM(10)); /* -> w[0] */
    s->rc[2] = tide_queue_put_nowait(s->q, ITEM(20)); /* -> w[2] */
    s->rc[3] = (int)tide_queue_size(s->q); /* handed over, not stored */
    tide_cancel(s->t[2]); /* handed, not run yet: still gets its item */
    tide_gather(s->t, NW, NULL);
    s->rc[4] = (int)tide_queue_size(s->q);
    /* each item taken is still counted unfinished */
    s->rc[5] = tide_queue_task_done(s->q);
    s->rc[6] = tide_queue_task_done(s->q);
    s->rc[7] = tide_queue_task_done(s->q); /* one too many */
    tide_queue_free(s->q);
    return 0;
}

static void test_getters_fifo_cancel_timeout(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(getters_main, &s), 0);
    assert_int_equal(s.rc[0], 2);
    assert_int_equal(s.rc[1], 0);
    assert_int_equal(s.rc[2], 0);
    assert_int_equal(s.rc[3], 0);
    assert_int_equal(s.rc[4], 0);
    assert_int_equal(s.rc[5], 0);
    assert_int_equal(s.rc[6], 0);
    assert_int_equal(s.rc[7], -EINVAL);
    assert_int_equal(s.w[1].rc, -ECANCELED);
    assert_int_equal(s.w[3].rc, -ETIMEDOUT);
    assert_int_equal(s.w[3].rc_end, -ETIMEDOUT);
    assert_int_equal(s.w[0].rc, 0);
    assert_int_equal(s.w[0].got, 10);
    assert_int_equal(s.w[2].rc, 0);
    assert_int_equal(s.w[2].got, 20);
    assert_int_equal(s.w[2].rc_next, -ECANCELED);
    assert_int_equal(s.w[0].rc_next, 0);
    assert_int_equal(s.norder, 2);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.order[1], 2);
}

/* ===================================================== putters, FIFO */

/* Putters waiting on a full queue (maxsize 1) get in in order; the middle
 * one is cancelled, another times out: their items never appear, and
 * nothing else is lost. */
static int putters_main(void *arg)
{
    qs *s = arg;
    void *p;
    for (int kind = 0; kind < 2; kind++) {
        int base = kind * 10;
        new_queue(&s->q, kind, 1);
        tide_queue_put(s->q, ITEM(base + 9));
        memset(s->w, 0, sizeof s->w);
        s->w[3].timeout_ms = 10;
        for (int i = 0; i < NW; i++) {
            s->w[i].item = base + i;
            spawn(s, i, putter);
        }
        settle();
        tide_cancel(s->t[1]);
        tide_sleep(30); /* w[3] times out */
        s->rc[base + 0] = s->w[1].done + s->w[3].done;
        s->rc[base + 1] = tide_queue_put_nowait(s->q, ITEM(99)); /* still full */
        /* each get moves the first waiting putter's item in */
        tide_queue_get(s->q, &p);
        record(s, VAL(p));
        tide_cancel(s->t[0]); /* its item is in: its put returns 0 */
        tide_queue_get(s->q, &p);
        record(s, VAL(p));
        s->rc[base + 2] = (int)tide_queue_size(s->q); /* w[2]'s item */
        tide_queue_get(s->q, &p);
        record(s, VAL(p));
        s->rc[base + 3] = (int)tide_queue_size(s->q);
        s->rc[base + 4] = tide_queue_get_nowait(s->q, &p);
        tide_gather(s->t, NW, NULL);
        for (int i = 0; i < NW; i++)
            s->rc[base + 5 + i] = s->w[i].rc;
        s->rc[20 + kind] = s->w[0].rc_next;
        tide_queue_free(s->q);
    }
    return 0;
}

static void test_putters_fifo_cancel_timeout(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(putters_main, &s), 0);
    for (int kind = 0; kind < 2; kind++) {
        int base = kind * 10;
        assert_int_equal(s.rc[base + 0], 2);
        assert_int_equal(s.rc[base + 1], -EAGAIN);
        assert_int_equal(s.rc[base + 2], 1);
        assert_int_equal(s.rc[base + 3], 0);
        assert_int_equal(s.rc[base + 4], -EAGAIN);
        assert_int_equal(s.rc[base + 5], 0);
        assert_int_equal(s.rc[base + 6], -ECANCELED);
        assert_int_equal(s.rc[base + 7], 0);
        assert_int_equal(s.rc[base + 8], -ETIMEDOUT);
        assert_int_equal(s.rc[20 + kind], -ECANCELED);
    }
    /* the items, in order, with nothing lost: 9, 0, 2 (FIFO and LIFO alike,
     * as each queue holds one item at a time) */
    assert_int_equal(s.norder, 6);
    static const int want[] = {9, 0, 2, 19, 10, 12};
    for (int i = 0; i < 6; i++)
        assert_int_equal(s.order[i], want[i]);
}

/* ======================================================= task_done/join */

typedef struct jw {
    tide_queue *q;
    int rc;
    int64_t t_end;
    int processed_at_end;
    int processed;
} jw;

static int joiner(void *arg)
{
    jw *j = arg;
    j->rc = tide_queue_join(j->q);
    j->t_end = tide_now();
    j->processed_at_end = j->processed;
    return 0;
}

static int worker(void *arg)
{
    jw *j = arg;
    void *p;
    while (tide_queue_get(j->q, &p) == 0) {
        tide_sleep(2);
        j->processed++;
        tide_queue_task_done(j->q);
    }
    return 0;
}

static int join_main(void *arg)
{
    qs *s = arg;
    jw j;
    tide_task *tj, *tw, *tj2;
    memset(&j, 0, sizeof j);
    new_queue(&s->q, TIDE_QUEUE_FIFO, 2);
    j.q = s->q;
    s->rc[0] = tide_queue_join(s->q); /* nothing put: at once */
    s->rc[1] = tide_queue_task_done(s->q); /* nothing put */
    tide_create_task(&tj, joiner, &j);
    tide_create_task(&tw, worker, &j);
    for (int i = 0; i < 5; i++)
        tide_queue_put(s->q, ITEM(i));
    tide_create_task(&tj2, joiner, &j); /* a second joiner */
    s->rc[2] = tide_queue_join(s->q);
    s->rc[3] = j.processed;
    tide_await(tj);
    tide_await(tj2);
    s->rc[4] = j.rc;
    s->rc[5] = j.processed_at_end;
    /* join cancelled / timed out (no worker left to take the item) */
    tide_cancel(tw);
    tide_await(tw);
    tide_queue_put(s->q, ITEM(1));
    tide_scope sc;
    tide_timeout_begin(&sc, 10);
    s->rc[6] = tide_queue_join(s->q);
    s->rc[7] = tide_timeout_end(&sc);
    tide_create_task(&tj, joiner, &j);
    settle();
    tide_cancel(tj);
    tide_await(tj);
    s->rc[8] = j.rc;
    tide_queue_free(s->q);
    return 0;
}

static void test_task_done_join(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(join_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.rc[1], -EINVAL);
    assert_int_equal(s.rc[2], 0);
    assert_int_equal(s.rc[3], 5);
    assert_int_equal(s.rc[4], 0);
    assert_int_equal(s.rc[5], 5);
    assert_int_equal(s.rc[6], -ETIMEDOUT);
    assert_int_equal(s.rc[7], -ETIMEDOUT);
    assert_int_equal(s.rc[8], -ECANCELED);
}

/* ============================================================ shutdown */

static void free_item(void *p)
{
    (void)p;
}

static qs *g_qs;

static void count_free(void *p)
{
    g_qs->freed[g_qs->nfreed++] = VAL(p);
}

/* Graceful: put fails, get drains then fails, waiting putters woken with
 * -ESHUTDOWN; later getters on the drained queue fail at once. */
static int shutdown_main(void *arg)
{
    qs *s = arg;
    void *p;
    new_queue(&s->q, TIDE_QUEUE_FIFO, 2);
    tide_queue_put(s->q, ITEM(1));
    tide_queue_put(s->q, ITEM(2));
    s->w[0].item = 3;
    s->w[1].item = 4;
    spawn(s, 0, putter);
    spawn(s, 1, putter);
    settle();
    s->rc[0] = tide_queue_shutdown(s->q, 0);
    s->rc[1] = tide_queue_put(s->q, ITEM(5));
    s->rc[2] = tide_queue_put_nowait(s->q, ITEM(5));
    s->rc[3] = tide_queue_get(s->q, &p);
    s->rc[4] = VAL(p);
    s->rc[5] = tide_queue_get_nowait(s->q, &p);
    s->rc[6] = VAL(p);
    s->rc[7] = tide_queue_get(s->q, &p);
    s->rc[8] = tide_queue_get_nowait(s->q, &p);
    tide_gather(s->t, 2, NULL);
    s->rc[9] = s->w[0].rc;
    s->rc[10] = s->w[1].rc;
    s->rc[11] = tide_queue_shutdown(s->q, 0); /* twice: harmless */
    /* join still counts the two items taken but not marked done */
    tide_scope sc;
    tide_timeout_begin(&sc, 5);
    s->rc[12] = tide_queue_join(s->q);
    tide_timeout_end(&sc);
    tide_queue_task_done(s->q);
    tide_queue_task_done(s->q);
    s->rc[13] = tide_queue_join(s->q);
    tide_queue_free(s->q);

    /* waiting getters on an empty queue wake with -ESHUTDOWN */
    new_queue(&s->q, TIDE_QUEUE_LIFO, 0);
    memset(s->w, 0, sizeof s->w);
    spawn(s, 0, getter);
    spawn(s, 1, getter);
    settle();
    tide_queue_shutdown(s->q, 0);
    tide_gather(s->t, 2, NULL);
    s->rc[14] = s->w[0].rc;
    s->rc[15] = s->w[1].rc;
    tide_queue_free(s->q);
    return 0;
}

static void test_shutdown_graceful(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(shutdown_main, &s), 0);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.rc[1], -ESHUTDOWN);
    assert_int_equal(s.rc[2], -ESHUTDOWN);
    assert_int_equal(s.rc[3], 0);
    assert_int_equal(s.rc[4], 1);
    assert_int_equal(s.rc[5], 0);
    assert_int_equal(s.rc[6], 2);
    assert_int_equal(s.rc[7], -ESHUTDOWN);
    assert_int_equal(s.rc[8], -ESHUTDOWN);
    assert_int_equal(s.rc[9], -ESHUTDOWN);
    assert_int_equal(s.rc[10], -ESHUTDOWN);
    assert_int_equal(s.rc[11], 0);
    assert_int_equal(s.rc[12], -ETIMEDOUT);
    assert_int_equal(s.rc[13], 0);
    assert_int_equal(s.rc[14], -ESHUTDOWN);
    assert_int_equal(s.rc[15], -ESHUTDOWN);
}

/* Immediate: items dropped through free_item (and counted done, so join
 * returns), get fails at once, waiting putters and joiners woken. */
static int shutdown_now_main(void *arg)
{
    qs *s = arg;
    tide_queue_opts o;
    jw j;
    tide_task *tj;
    void *p;
    tide_queue_opts_init(&o);
    o.maxsize = 3;
    o.free_item = count_free;
    tide_queue_new(&s->q, &o);
    memset(&j, 0, sizeof j);
    j.q = s->q;
    for (int i = 1; i <= 3; i++)
        tide_queue_put(s->q, ITEM(i));
    s->w[0].item = 4;
    spawn(s, 0, putter);
    tide_create_task(&tj, joiner, &j);
    settle();
    s->rc[0] = j.t_end == 0; /* the joiner waits */
    s->rc[1] = tide_queue_shutdown(s->q, 1);
    s->rc[2] = (int)tide_queue_size(s->q);
    s->rc[3] = tide_queue_get_nowait(s->q, &p);
    s->rc[4] = tide_queue_get(s->q, &p);
    s->rc[5] = tide_queue_put(s->q, ITEM(5));
    tide_await(tj);
    tide_await(s->t[0]);
    s->rc[6] = j.rc;
    s->rc[7] = s->w[0].rc;
    s->rc[8] = tide_queue_join(s->q);
    tide_queue_free(s->q);

    /* immediate shutdown of an empty queue with a waiting getter */
    new_queue(&s->q, TIDE_QUEUE_FIFO, 0);
    memset(s->w, 0, sizeof s->w);
    spawn(s, 0, getter);
    settle();
    tide_queue_shutdown(s->q, 1);
    tide_await(s->t[0]);
    s->rc[9] = s->w[0].rc;
    tide_queue_free(s->q);
    return 0;
}

static void test_shutdown_immediate(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    g_qs = &s;
    assert_int_equal(tt_vrun(shutdown_now_main, &s), 0);
    assert_int_equal(s.rc[0], 1);
    assert_int_equal(s.rc[1], 0);
    assert_int_equal(s.rc[2], 0);
    assert_int_equal(s.rc[3], -ESHUTDOWN);
    assert_int_equal(s.rc[4], -ESHUTDOWN);
    assert_int_equal(s.rc[5], -ESHUTDOWN);
    assert_int_equal(s.rc[6], 0);
    assert_int_equal(s.rc[7], -ESHUTDOWN);
    assert_int_equal(s.rc[8], 0);
    assert_int_equal(s.rc[9], -ESHUTDOWN);
    assert_int_equal(s.nfreed, 3); /* not the waiting putter's item: it is its own */
    for (int i = 0; i < 3; i++)
        assert_int_equal(s.freed[i], i + 1);
}

/* tide_queue_free with waiting getters, putters and joiners: they all wake
 * with -ESHUTDOWN and never touch the freed queue (ASan checks). */
static int free_waiters_main(void *arg)
{
    qs *s = arg;
    jw j;
    tide_task *tj;
    tide_queue_opts o;
    tide_queue_opts_init(&o);
    o.free_item = free_item;
    o.maxsize = 1;
    /* getters */
    tide_queue_new(&s->q, &o);
    spawn(s, 0, getter);
    spawn(s, 1, getter);
    settle();
    tide_queue_free(s->q);
    tide_gather(s->t, 2, NULL);
    s->rc[0] = s->w[0].rc;
    s->rc[1] = s->w[1].rc;
    /* putters and a joiner */
    tide_queue_new(&s->q, &o);
    tide_queue_put(s->q, ITEM(1));
    tide_queue_get(s->q, &(void *){0}); /* taken, not done: join waits */
    tide_queue_put(s->q, ITEM(2));
    memset(&j, 0, sizeof j);
    j.q = s->q;
    spawn(s, 0, putter);
    tide_create_task(&tj, joiner, &j);
    settle();
    tide_queue_free(s->q);
    tide_await(s->t[0]);
    tide_await(tj);
    s->rc[2] = s->w[0].rc;
    s->rc[3] = j.rc;
    return 0;
}

static void test_free_with_waiters(void **state)
{
    (void)state;
    qs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(free_waiters_main, &s), 0);
    assert_int_equal(s.rc[0], -ESHUTDOWN);
    assert_int_equal(s.rc[1], -ESHUTDOWN);
    assert_int_equal(s.rc[2], -ESHUTDOWN);
    assert_int_equal(s.rc[3], -ESHUTDOWN);
}

/* ============================================================== misuse */

static tide_queue *g_leftover;

static int misuse_main(void *arg)
{
    qs *s = arg;
    tide_queue_opts o;
    tide_queue *q = NULL;
    void *p;
    s->rc[0] = tide_queue_new(NULL, NULL);
    tide_queue_opts_init(&o);
    o.kind = TIDE_QUEUE_PRIORITY; /* without cmp */
    s->rc[1] = tide_queue_new(&q, &o);
    s->rc[2] = q == NULL;
    o.kind = 7;
    s->rc[3] = tide_queue_new(&q, &o);
    s->rc[4] = tide_queue_put(NULL, ITEM(1));
    s->rc[5] = tide_queue_get(NULL, &p);
    s->rc[6] = tide_queue_put_nowait(NULL, ITEM(1));
    s->rc[7] = tide_queue_get_nowait(NULL, &p);
    s->rc[8] = tide_queue_task_done(NULL);
    s->rc[9] = tide_queue_join(NULL);
    s->rc[10] = tide_queue_shutdown(NULL, 0);
    s->rc[11] = (int)tide_queue_size(NULL);
    tide_queue_free(NULL);
    s->rc[12] = tide_queue_new(&q, NULL); /* unbounded FIFO */
    s->rc[13] = tide_queue_get(q, NULL);
    s->rc[14] = tide_queue_get_nowait(q, NULL);
    tide_queue_put(q, ITEM(5));
    g_leftover = q; /* used outside the loop below */
    tide_queue_opts_init(NULL);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    qs s;
    void *p = NULL;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(misuse_main, &s), 0);
    assert_int_equal(s.rc[0], -EINVAL);
    assert_int_equal(s.rc[1], -EINVAL);
    assert_int_equal(s.rc[2], 1);
    assert_int_equal(s.rc[3], -EINVAL);
    for (int i = 4; i <= 10; i++)
        assert_int_equal(s.rc[i], -EINVAL);
    assert_int_equal(s.rc[11], 0);
    assert_int_equal(s.rc[12], 0);
    assert_int_equal(s.rc[13], -EINVAL);
    assert_int_equal(s.rc[14], -EINVAL);

    /* outside a task (and outside a loop) */
    tide_queue *q = NULL;
    assert_int_equal(tide_queue_new(&q, NULL), -EPERM);
    assert_null(q);
    assert_int_equal(tide_queue_put(g_leftover, ITEM(1)), -EPERM);
    assert_int_equal(tide_queue_get(g_leftover, &p), -EPERM);
    assert_int_equal(tide_queue_join(g_leftover), -EPERM);
    /* the non-waiting calls need no task */
    assert_int_equal(tide_queue_get_nowait(g_leftover, &p), 0);
    assert_int_equal(VAL(p), 5);
    assert_int_equal(tide_queue_put_nowait(g_leftover, ITEM(6)), 0);
    assert_int_equal(tide_queue_size(g_leftover), 1);
    tide_queue_free(g_leftover);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_fifo_lifo_priority),
        cmocka_unit_test(test_priority_heap),
        cmocka_unit_test(test_nowait_full_empty),
        cmocka_unit_test(test_getters_fifo_cancel_timeout),
        cmocka_unit_test(test_putters_fifo_cancel_timeout),
        cmocka_unit_test(test_task_done_join),
        cmocka_unit_test(test_shutdown_graceful),
        cmocka_unit_test(test_shutdown_immediate),
        cmocka_unit_test(test_free_with_waiters),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
