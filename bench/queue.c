/*
 * Queue throughput: one producer puts N items into a bounded queue, one
 * consumer gets them.
 *
 *  - tide: two tasks and a tide_queue (maxsize 1 and 128);
 *  - reference, measured in the same run: two threads and a bounded ring
 *    protected by a pthread mutex with two condition variables (not_full,
 *    not_empty), the textbook blocking queue, with the same capacities.
 *
 * Printed: ns per item for each, and RATIO = tide / pthread (< 1: tide is
 * faster).  With maxsize 1 every item is a hand-off (tide: two task
 * switches; threads: a futex wake and sleep each way); with 128 the tide
 * producer fills the queue before the consumer runs, amortising switches.
 * Runs are interleaved and each figure is the best of its repetitions.
 * Bounded time: a few seconds.
 */
#include "bench.h"

#include <tide.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TIDE_ITEMS 2000000L
#define THREAD_ITEMS 100000L
#define REPS 5
#define BUDGET_NS (7LL * 1000000000LL)

/* ------------------------------------------------------------ tide */

typedef struct tq {
    tide_queue *q;
    long n;
    long sum;
} tq;

static int t_producer(void *arg)
{
    tq *x = arg;
    for (long i = 1; i <= x->n; i++) {
        int rc = tide_queue_put(x->q, (void *)(uintptr_t)i);
        BENCH_CHECK(rc == 0, "tide_queue_put: %s", tide_strerror(rc));
    }
    return 0;
}

static int t_consumer(void *arg)
{
    tq *x = arg;
    void *p;
    for (long i = 0; i < x->n; i++) {
        int rc = tide_queue_get(x->q, &p);
        BENCH_CHECK(rc == 0, "tide_queue_get: %s", tide_strerror(rc));
        x->sum += (long)(uintptr_t)p;
    }
    return 0;
}

static size_t g_maxsize;
static double g_tide_ns;

static int tide_main(void *arg)
{
    tq x = {NULL, TIDE_ITEMS, 0};
    tide_queue_opts o;
    tide_task *t[2];
    int64_t t0;
    (void)arg;

    tide_queue_opts_init(&o);
    o.maxsize = g_maxsize;
    BENCH_CHECK(tide_queue_new(&x.q, &o) == 0, "tide_queue_new");
    t0 = bench_ns();
    tide_create_task(&t[0], t_consumer, &x);
    tide_create_task(&t[1], t_producer, &x);
    BENCH_CHECK(tide_gather(t, 2, NULL) == 0, "gather");
    g_tide_ns = (double)(bench_ns() - t0) / (double)x.n;
    BENCH_CHECK(x.sum == x.n * (x.n + 1) / 2, "sum %ld", x.sum);
    tide_queue_free(x.q);
    return 0;
}

static double run_tide(size_t maxsize)
{
    g_maxsize = maxsize;
    BENCH_CHECK(tide_run(tide_main, NULL) == 0, "tide_run");
    return g_tide_ns;
}

/* --------------------------------------------------- pthread reference */

typedef struct pq {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    void **ring;
    size_t cap, head, size;
    long n, sum;
} pq;

static void *p_producer(void *arg)
{
    pq *q = arg;
    for (long i = 1; i <= q->n; i++) {
        pthread_mutex_lock(&q->mu);
        while (q->size == q->cap)
            pthread_cond_wait(&q->not_full, &q->mu);
        q->ring[(q->head + q->size++) % q->cap] = (void *)(uintptr_t)i;
        pthread_cond_signal(&q->not_empty);
        pthread_mutex_unlock(&q->mu);
    }
    return NULL;
}

static void *p_consumer(void *arg)
{
    pq *q = arg;
    for (long i = 0; i < q->n; i++) {
        void *p;
        pthread_mutex_lock(&q->mu);
        while (q->size == 0)
            pthread_cond_wait(&q->not_empty, &q->mu);
        p = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->size--;
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->mu);
        q->sum += (long)(uintptr_t)p;
    }
    return NULL;
}

static double run_pthread(size_t cap)
{
    pq q = {.cap = cap, .n = THREAD_ITEMS};
    pthread_t a, b;
    int64_t t0;

    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.not_full, NULL);
    pthread_cond_init(&q.not_empty, NULL);
    q.ring = calloc(cap, sizeof *q.ring);
    BENCH_CHECK(q.ring, "calloc");
    t0 = bench_ns();
    BENCH_CHECK(pthread_create(&a, NULL, p_consumer, &q) == 0, "pthread_create");
    BENCH_CHECK(pthread_create(&b, NULL, p_producer, &q) == 0, "pthread_create");
    pthread_join(b, NULL);
    pthread_join(a, NULL);
    double ns = (double)(bench_ns() - t0) / (double)q.n;
    BENCH_CHECK(q.sum == q.n * (q.n + 1) / 2, "sum %ld", q.sum);
    free(q.ring);
    pthread_cond_destroy(&q.not_full);
    pthread_cond_destroy(&q.not_empty);
    pthread_mutex_destroy(&q.mu);
    return ns;
}

int main(void)
{
    static const size_t sizes[] = {1, 128};
    double best_t[2] = {1e30, 1e30}, best_p[2] = {1e30, 1e30};
    int64_t start = bench_ns();
    int reps = 0;

    for (reps = 0; reps < REPS; reps++) {
        if (reps >= 2 && bench_ns() - start > BUDGET_NS)
            break;
        for (int k = 0; k < 2; k++) {
            best_t[k] = bench_min(best_t[k], run_tide(sizes[k]));
            best_p[k] = bench_min(best_p[k], run_pthread(sizes[k]));
        }
    }
    printf("queue: 1 producer -> 1 consumer, best of %d (tide %ld items, pthread %ld items)\n",
           reps, TIDE_ITEMS, THREAD_ITEMS);
    printf("%-10s %14s %18s %10s\n", "maxsize", "tide ns/item", "pthread ns/item", "RATIO");
    for (int k = 0; k < 2; k++)
        printf("%-10zu %14.1f %18.1f %10.3f\n", sizes[k], best_t[k], best_p[k],
               best_t[k] / best_p[k]);
    printf("RATIO = tide / pthread mutex+condvar queue (lower is better for tide)\n");
    return 0;
}
