/*
 * Lock cost.
 *
 *  1. Contended hand-off: N tasks (N = 2, 16) each loop
 *         tide_lock_acquire; tide_sleep(0); tide_lock_release
 *     so every release hands the lock to the next waiter (FIFO) and every
 *     acquire that finds it held suspends.  Reference, in the same run: N
 *     threads each loop pthread_mutex_lock; sched_yield(); pthread_mutex_unlock.
 *     (The mutex is not fair and threads may run in parallel on several
 *     cores; what we compare is "lock cycles per second with N contenders".)
 *  2. Uncontended: acquire + release by one task with nobody else around,
 *     against pthread_mutex_lock + unlock by one thread.
 *
 * Printed: ns per acquire/release cycle for each, and RATIO = tide / pthread
 * (< 1: tide is faster).  Each figure is the best of its repetitions;
 * bounded time, a few seconds.
 */
#include "bench.h"

#include <tide.h>

#include <pthread.h>
#include <time.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define TIDE_CYCLES 1000000L   /* contended, total over all tasks */
#define THREAD_CYCLES 100000L  /* contended, total over all threads */
#define UNCONTENDED 20000000L
#define REPS 5
#define BUDGET_NS (7LL * 1000000000LL)
#define MAXN 16

/* ------------------------------------------------------------ tide */

typedef struct tl {
    tide_lock lock;
    long per_task;
    long inside; /* tasks holding the lock: must stay <= 1 */
    long count;
} tl;

static int t_contender(void *arg)
{
    tl *x = arg;
    for (long i = 0; i < x->per_task; i++) {
        int rc = tide_lock_acquire(&x->lock);
        BENCH_CHECK(rc == 0, "tide_lock_acquire: %s", tide_strerror(rc));
        BENCH_CHECK(++x->inside == 1, "two holders");
        x->count++;
        tide_sleep(0);
        x->inside--;
        tide_lock_release(&x->lock);
    }
    return 0;
}

static int g_n;
static double g_ns;

static int tide_contended_main(void *arg)
{
    tl x;
    tide_task *t[MAXN];
    int64_t t0;
    (void)arg;

    tide_lock_init(&x.lock);
    x.per_task = TIDE_CYCLES / g_n;
    x.inside = x.count = 0;
    t0 = bench_ns();
    for (int i = 0; i < g_n; i++)
        BENCH_CHECK(tide_create_task(&t[i], t_contender, &x) == 0, "create");
    BENCH_CHECK(tide_gather(t, (size_t)g_n, NULL) == 0, "gather");
    BENCH_CHECK(x.count == x.per_task * g_n, "count %ld", x.count);
    g_ns = (double)(bench_ns() - t0) / (double)x.count;
    return 0;
}

static int tide_uncontended_main(void *arg)
{
    tide_lock l;
    int64_t t0;
    (void)arg;

    tide_lock_init(&l);
    t0 = bench_ns();
    for (long i = 0; i < UNCONTENDED; i++) {
        tide_lock_acquire(&l);
        tide_lock_release(&l);
    }
    g_ns = (double)(bench_ns() - t0) / (double)UNCONTENDED;
    BENCH_CHECK(!tide_lock_locked(&l), "still locked");
    return 0;
}

static double run_tide(tide_fn fn, int n)
{
    g_n = n;
    BENCH_CHECK(tide_run(fn, NULL) == 0, "tide_run");
    return g_ns;
}

/* --------------------------------------------------- pthread reference */

typedef struct pl {
    pthread_mutex_t mu;
    int stop;
    long count;
} pl;

static void *p_contender(void *arg)
{
    pl *x = arg;
    while (!__atomic_load_n(&x->stop, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&x->mu);
        x->count++;
        sched_yield();
        pthread_mutex_unlock(&x->mu);
    }
    return NULL;
}

/* Threads on a contended mutex can crawl on a loaded 2-core machine: run
 * for a fixed time and count, rather than for a fixed count. */
static double run_pthread_contended(int n)
{
    struct timespec window = {0, 300 * 1000000};
    pl x;
    pthread_t th[MAXN];
    int64_t t0;

    pthread_mutex_init(&x.mu, NULL);
    x.count = 0;
    x.stop = 0;
    t0 = bench_ns();
    for (int i = 0; i < n; i++)
        BENCH_CHECK(pthread_create(&th[i], NULL, p_contender, &x) == 0, "pthread_create");
    nanosleep(&window, NULL);
    __atomic_store_n(&x.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    BENCH_CHECK(x.count > 0, "count %ld", x.count);
    pthread_mutex_destroy(&x.mu);
    return (double)(bench_ns() - t0) / (double)x.count;
}

static double run_pthread_uncontended(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static volatile long sink;
    int64_t t0 = bench_ns();

    for (long i = 0; i < UNCONTENDED; i++) {
        pthread_mutex_lock(&mu);
        sink++;
        pthread_mutex_unlock(&mu);
    }
    return (double)(bench_ns() - t0) / (double)UNCONTENDED;
}

int main(void)
{
    static const int ns[] = {2, 16};
    double bt[2] = {1e30, 1e30}, bp[2] = {1e30, 1e30}, but = 1e30, bup = 1e30;
    int64_t start = bench_ns();
    int reps;

    for (reps = 0; reps < REPS; reps++) {
        if (reps >= 2 && bench_ns() - start > BUDGET_NS)
            break;
        for (int k = 0; k < 2; k++) {
            bt[k] = bench_min(bt[k], run_tide(tide_contended_main, ns[k]));
            bp[k] = bench_min(bp[k], run_pthread_contended(ns[k]));
        }
        but = bench_min(but, run_tide(tide_uncontended_main, 1));
        bup = bench_min(bup, run_pthread_uncontended());
    }
    printf("lock: best of %d\n", reps);
    printf("%-34s %12s %14s %10s\n", "case", "tide ns", "pthread ns", "RATIO");
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "contended hand-off, %d contenders", ns[k]);
        printf("%-34s %12.1f %14.1f %10.3f\n", name, bt[k], bp[k], bt[k] / bp[k]);
    }
    printf("%-34s %12.2f %14.2f %10.3f\n", "uncontended acquire+release", but, bup, but / bup);
    printf("per acquire/yield/release cycle (contended) or acquire+release (uncontended);\n"
           "RATIO = tide / pthread (lower is better for tide)\n");
    return 0;
}
