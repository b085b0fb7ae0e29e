/*
 * Task spawn cost: spawn + run + join of 1 000 000 empty tasks (default
 * options, pooled stacks) inside tide_run, in two patterns:
 *  - batch: create 1000 tasks, then tide_await each; 1000 batches;
 *  - one at a time: create a task, await it; 1 000 000 times.
 * References measured in the same run:
 *  - pthread_create + pthread_join of 20 000 empty threads (ratio tide/threads);
 *  - tide_call_soon of 1 000 000 callbacks that do nothing (batches of 1000,
 *    then a tide_sleep(0) that lets them run): the floor a task is measured
 *    against, i.e. what a task costs over a plain callback.
 * Every pattern runs interleaved with the others, several times; figures are
 * the best repetition.  The first repetition also carves the pool's stacks.
 *
 * Aim (issue): >= 10 million tasks/s.  (Go 1.19 measured on this machine:
 * 0.8 M goroutines/s with GOMAXPROCS=1.)
 */
#include "bench.h"
#include "tide.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTASKS 1000000
#define BATCH 1000
#define NTHREADS 20000
#define MAX_REPS 5
#define MIN_REPS 2
#define BUDGET_NS (10LL * 1000000000) /* stop repeating after this much time */

static long g_ran;

static int empty_task(void *arg)
{
    (void)arg;
    g_ran++;
    return 0;
}

static void empty_cb(void *arg)
{
    (void)arg;
    g_ran++;
}

static void *empty_thread(void *arg)
{
    return arg;
}

/* Seconds for NTASKS tasks in batches. */
static double run_batch(void)
{
    static tide_task *ts[BATCH];
    int64_t t0 = bench_ns();
    int i, b, rc;

    g_ran = 0;
    for (b = 0; b < NTASKS / BATCH; b++) {
        for (i = 0; i < BATCH; i++) {
            rc = tide_create_task(&ts[i], empty_task, NULL);
            BENCH_CHECK(rc == 0, "tide_create_task: %s", tide_strerror(rc));
        }
        for (i = 0; i < BATCH; i++) {
            rc = tide_await(ts[i]);
            BENCH_CHECK(rc == 0, "tide_await: %s", tide_strerror(rc));
        }
    }
    BENCH_CHECK(g_ran == NTASKS, "%ld tasks ran", g_ran);
    return (double)(bench_ns() - t0) / 1e9;
}

static double run_single(void)
{
    int64_t t0 = bench_ns();
    tide_task *t;
    int i, rc;

    g_ran = 0;
    for (i = 0; i < NTASKS; i++) {
        rc = tide_create_task(&t, empty_task, NULL);
        BENCH_CHECK(rc == 0, "tide_create_task: %s", tide_strerror(rc));
        rc = tide_await(t);
        BENCH_CHECK(rc == 0, "tide_await: %s", tide_strerror(rc));
    }
    BENCH_CHECK(g_ran == NTASKS, "%ld tasks ran", g_ran);
    return (double)(bench_ns() - t0) / 1e9;
}

static double run_callbacks(void)
{
    tide_loop *loop = tide_loop_current();
    int64_t t0 = bench_ns();
    int i, b, rc;

    g_ran = 0;
    for (b = 0; b < NTASKS / BATCH; b++) {
        for (i = 0; i < BATCH; i++) {
            rc = tide_call_soon(loop, empty_cb, NULL);
            BENCH_CHECK(rc == 0, "tide_call_soon: %s", tide_strerror(rc));
        }
        rc = tide_sleep(0); /* FIFO: we resume after the batch ran */
        BENCH_CHECK(rc == 0, "tide_sleep: %s", tide_strerror(rc));
    }
    BENCH_CHECK(g_ran == NTASKS, "%ld callbacks ran", g_ran);
    return (double)(bench_ns() - t0) / 1e9;
}

/* Seconds for NTHREADS threads, created and joined one at a time. */
static double run_threads(void)
{
    int64_t t0 = bench_ns();
    pthread_t th;
    int i, rc;

    for (i = 0; i < NTHREADS; i++) {
        rc = pthread_create(&th, NULL, empty_thread, NULL);
        BENCH_CHECK(rc == 0, "pthread_create: %d", rc);
        rc = pthread_join(th, NULL);
        BENCH_CHECK(rc == 0, "pthread_join: %d", rc);
    }
    return (double)(bench_ns() - t0) / 1e9;
}

static double best_batch = 1e30, best_single = 1e30, best_cb = 1e30, best_thr = 1e30;
static int reps;

static int bench_main(void *arg)
{
    int64_t start = bench_ns();

    (void)arg;
    for (reps = 0; reps < MAX_REPS; reps++) {
        if (reps >= MIN_REPS && bench_ns() - start > BUDGET_NS)
            break;
        best_batch = bench_min(best_batch, run_batch());
        best_cb = bench_min(best_cb, run_callbacks());
        best_single = bench_min(best_single, run_single());
        best_thr = bench_min(best_thr, run_threads());
    }
    return 0;
}

int main(void)
{
    int rc = tide_run(bench_main, NULL);
    double batch, single, cb, thr;

    BENCH_CHECK(rc == 0, "tide_run: %s", tide_strerror(rc));
    batch = NTASKS / best_batch;
    single = NTASKS / best_single;
    cb = NTASKS / best_cb;
    thr = NTHREADS / best_thr;
    printf("spawn: 1M empty tasks, default stack (%d KiB, pooled), best of %d reps\n",
           TIDE_DEFAULT_STACK_SIZE / 1024, reps);
    printf("spawn: tide batch of %d (create all, await each) %6.2f M tasks/s (%5.0f ns/task)"
           " -> aim >= 10 M/s: %s\n",
           BATCH, batch / 1e6, 1e9 / batch, batch >= 10e6 ? "met" : "MISSED");
    printf("spawn: tide one at a time (create, await)        %6.2f M tasks/s (%5.0f ns/task)"
           " -> aim >= 10 M/s: %s\n",
           single / 1e6, 1e9 / single, single >= 10e6 ? "met" : "MISSED");
    printf("spawn: ref pthread_create+join (%d threads)      %6.3f M threads/s (%5.0f ns/thread)"
           " -> tide batch is %.0fx, one-at-a-time %.0fx faster\n",
           NTHREADS, thr / 1e6, 1e9 / thr, batch / thr, single / thr);
    printf("spawn: ref tide_call_soon (no-op, batch of %d)   %6.2f M callbacks/s (%5.0f ns/cb)"
           " -> task/callback cost ratio: batch %.1fx, one-at-a-time %.1fx\n",
           BATCH, cb / 1e6, 1e9 / cb, cb / batch, cb / single);
    return 0;
}
