/*
 * Queues: FIFO (a ring), LIFO (a stack) and priority (a binary heap, FIFO
 * among equal items), bounded or not, with task_done/join and shutdown as
 * in asyncio 3.13.
 *
 * Items are handed over, as locks are (see sync.c): a put that finds a
 * getter waiting gives it the item directly, and a get that frees a slot
 * moves the first waiting putter's item in and wakes it.  So waiters are
 * served in order, an item is never taken by a task that arrives later, and
 * a task cancelled while waiting neither takes nor loses an item.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

typedef struct pitem {
    void *item;
    uint64_t seq;
} pitem;

struct tide_queue {
    tide_queue_opts o;
    size_t size;        /* items held */
    size_t cap;         /* allocated slots */
    size_t head;        /* FIFO: index of the first item */
    void **v;           /* FIFO ring / LIFO stack */
    pitem *h;           /* PRIORITY heap */
    uint64_t seq;
    size_t unfinished;  /* put and not yet task_done */
    int shutdown;
    tide_waitlist getters, putters, joiners;
};

void tide_queue_opts_init(tide_queue_opts *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

int tide_queue_new(tide_queue **out, const tide_queue_opts *o)
{
    tide_queue *q;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (o && (o->kind < TIDE_QUEUE_FIFO || o->kind > TIDE_QUEUE_PRIORITY ||
              (o->kind == TIDE_QUEUE_PRIORITY && !o->cmp)))
        return -EINVAL;
    if (!tide__tls_loop)
        return -EPERM;
    q = tide__calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    if (o)
        q->o = *o;
    *out = q;
    return 0;
}

/* ------------------------------------------------------------- storage */

static int grow(tide_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 16;

    if (q->o.kind == TIDE_QUEUE_PRIORITY) {
        pitem *h = tide__realloc(q->h, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        q->h = h;
    } else {
        void **v = tide__malloc(cap * sizeof *v);
        size_t i;
        if (!v)
            return -ENOMEM;
        for (i = 0; i < q->size; i++) /* unwrap the ring */
            v[i] = q->v[(q->head + i) % q->cap];
        tide__free(q->v);
        q->v = v;
        q->head = 0;
    }
    q->cap = cap;
    return 0;
}

static int before(const tide_queue *q, const pitem *a, const pitem *b)
{
    int c = q->o.cmp(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static int store(tide_queue *q, void *item)
{
    if (q->size == q->cap && grow(q) < 0)
        return -ENOMEM;
    switch (q->o.kind) {
    case TIDE_QUEUE_LIFO:
        q->v[q->size] = item;
        break;
    case TIDE_QUEUE_PRIORITY: {
        size_t i = q->size;
        pitem x = {item, q->seq++};
        while (i > 0 && before(q, &x, &q->h[(i - 1) / 2])) {
            q->h[i] = q->h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        q->h[i] = x;
        break;
    }
    default:
        q->v[(q->head + q->size) % q->cap] = item;
    }
    q->size++;
    return 0;
}

static void *take(tide_queue *q)
{
    void *item;

    q->size--;
    switch (q->o.kind) {
    case TIDE_QUEUE_LIFO:
        return q->v[q->size];
    case TIDE_QUEUE_PRIORITY: {
        pitem last = q->h[q->size];
        size_t i = 0, n = q->size;
        item = q->h[0].item;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n)
                break;
            if (c + 1 < n && before(q, &q->h[c + 1], &q->h[c]))
                c++;
            if (!before(q, &q->h[c], &last))
                break;
            q->h[i] = q->h[c];
            i = c;
        }
        if (n)
            q->h[i] = last;
        return item;
    }
    default:
        item = q->v[q->head];
        q->head = (q->head + 1) % q->cap;
        return item;
    }
}

static int full(const tide_queue *q)
{
    return q->o.maxsize && q->size >= q->o.maxsize;
}

/* -------------------------------------------------------------- put/get */

/* Puts without waiting: 0, -EAGAIN (full), -ESHUTDOWN, -ENOMEM. */
static int put_now(tide_queue *q, void *item)
{
    struct tide__waiter *g;

    if (q->shutdown)
        return -ESHUTDOWN;
    if ((g = tide__wl_pop(&q->getters))) { /* a getter waits: the queue is empty */
        g->value = item;
        q->unfinished++;
        tide__wake(g->task, 0);
        return 0;
    }
    if (full(q))
        return -EAGAIN;
    if (store(q, item) < 0)
        return -ENOMEM;
    q->unfinished++;
    return 0;
}

/* Gets without waiting: 0, -EAGAIN (empty), -ESHUTDOWN (shut down, empty). */
static int get_now(tide_queue *q, void **item)
{
    struct tide__waiter *p;

    if (!q->size)
        return q->shutdown ? -ESHUTDOWN : -EAGAIN;
    *item = take(q);
    if ((p = tide__wl_pop(&q->putters))) { /* a slot is free: move its item in */
        if (store(q, p->value) == 0) {
            q->unfinished++;
            tide__wake(p->task, 0);
        } else {
            tide__wake(p->task, -ENOMEM);
        }
    }
    return 0;
}

int tide_queue_put_nowait(tide_queue *q, void *item)
{
    return q ? put_now(q, item) : -EINVAL;
}

int tide_queue_get_nowait(tide_queue *q, void **item)
{
    return q && item ? get_now(q, item) : -EINVAL;
}

int tide_queue_put(tide_queue *q, void *item)
{
    struct tide__waiter w;
    tide_task *cur = tide__current();
    int rc;

    if (!q)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    rc = put_now(q, item);
    if (rc != -EAGAIN)
        return rc;
    w.value = item;
    TIDE__WAIT_ON(cur, TIDE_WAIT_QUEUE_PUT, q);
    return tide__wl_wait(&q->putters, &w, cur, 0); /* 0: a getter moved it in */
}

int tide_queue_get(tide_queue *q, void **item)
{
    struct tide__waiter w;
    tide_task *cur = tide__current();
    int rc;

    if (!q || !item)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    rc = get_now(q, item);
    if (rc != -EAGAIN)
        return rc;
    w.value = NULL;
    TIDE__WAIT_ON(cur, TIDE_WAIT_QUEUE_GET, q);
    rc = tide__wl_wait(&q->getters, &w, cur, 0);
    if (rc == 0)
        *item = w.value; /* handed over by a putter */
    return rc;
}

int tide_queue_task_done(tide_queue *q)
{
    if (!q || q->unfinished == 0)
        return -EINVAL;
    if (--q->unfinished == 0)
        tide__wl_wake_all(&q->joiners, 0);
    return 0;
}

int tide_queue_join(tide_queue *q)
{
    struct tide__waiter w;
    tide_task *cur = tide__current();

    if (!q)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (q->unfinished == 0)
        return 0;
    TIDE__WAIT_ON(cur, TIDE_WAIT_QUEUE_JOIN, q);
    return tide__wl_wait(&q->joiners, &w, cur, 0);
}

static void drop_items(tide_queue *q)
{
    while (q->size) {
        void *item = take(q);
        if (q->o.free_item)
            q->o.free_item(item);
        if (q->unfinished)
            q->unfinished--;
    }
}

int tide_queue_shutdown(tide_queue *q, int immediate)
{
    if (!q)
        return -EINVAL;
    q->shutdown = 1;
    if (immediate) {
        drop_items(q);
        if (q->unfinished == 0)
            tide__wl_wake_all(&q->joiners, 0);
    }
    tide__wl_wake_all(&q->putters, -ESHUTDOWN);
    if (!q->size)
        tide__wl_wake_all(&q->getters, -ESHUTDOWN);
    return 0;
}

size_t tide_queue_size(const tide_queue *q)
{
    return q ? q->size : 0;
}

void tide_queue_free(tide_queue *q)
{
    if (!q)
        return;
    tide_queue_shutdown(q, 1);
    tide__wl_wake_all(&q->getters, -ESHUTDOWN);
    tide__wl_wake_all(&q->joiners, -ESHUTDOWN);
    tide__free(q->v);
    tide__free(q->h);
    tide__free(q);
}
