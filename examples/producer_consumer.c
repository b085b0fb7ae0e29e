/*
 * producer_consumer.c -- several producers and consumers around one bounded
 * queue, with a clean shutdown.
 *
 *   producer_consumer [--quick] [--producers N] [--consumers N] [--items N]
 *
 * P producer tasks each put `items` numbered jobs into a tide_queue bounded
 * to a few slots: when the queue is full, tide_queue_put suspends the
 * producer until a consumer makes room (backpressure, no busy waiting).
 * C consumer tasks take jobs with tide_queue_get, "process" them (a yield
 * or a short sleep now and then, so producers and consumers interleave), mark each
 * one done with tide_queue_task_done and count it.
 *
 * Shutting down: main waits for the producers (a task group), then for
 * every job to be processed (tide_queue_join), then calls
 * tide_queue_shutdown(q, 0): the consumers blocked in tide_queue_get wake
 * with -ESHUTDOWN, which is their signal to return.  (The other classic way,
 * one "sentinel" item per consumer, needs no shutdown support but must know
 * how many consumers there are.)
 *
 * At the end the program checks that every job was consumed exactly once
 * and prints a summary; it exits 1 if a check fails, so ctest can run
 * "producer_consumer --quick" as a smoke test.
 */
#include <tide.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64
#define QUEUE_SLOTS 8

typedef struct app {
    int producers, consumers, items;
    tide_queue *q;
    unsigned char *seen;        /* seen[job] = how many times it was consumed */
    long consumed[MAX_WORKERS]; /* per consumer */
    long produced;
    long full_waits;            /* puts that found the queue full */
    int failures;
} app;

typedef struct worker {
    app *a;
    int id;
} worker;

/* Jobs are numbered 0 .. producers*items-1 and carried in the item pointer
 * (+1, so that no job is a NULL pointer). */
#define JOB_ITEM(n) ((void *)(uintptr_t)((n) + 1))
#define ITEM_JOB(p) ((long)(uintptr_t)(p)-1)

static int producer(void *arg)
{
    worker *w = arg;
    app *a = w->a;

    for (int i = 0; i < a->items; i++) {
        long job = (long)w->id * a->items + i;
        /* Try without waiting first, only to count how often the queue was
         * full; tide_queue_put alone would do. */
        int rc = tide_queue_put_nowait(a->q, JOB_ITEM(job));
        if (rc == -EAGAIN) {
            a->full_waits++;
            rc = tide_queue_put(a->q, JOB_ITEM(job)); /* waits for room */
        }
        if (rc < 0)
            return rc;
        a->produced++;
    }
    return 0;
}

static int consumer(void *arg)
{
    worker *w = arg;
    app *a = w->a;
    void *item;
    int rc;

    /* Until the queue is shut down (and drained): -ESHUTDOWN. */
    while ((rc = tide_queue_get(a->q, &item)) == 0) {
        long job = ITEM_JOB(item);
        if (job < 0 || job >= (long)a->producers * a->items || a->seen[job]++ != 0) {
            fprintf(stderr, "consumer %d: bad or duplicate job %ld\n", w->id, job);
            a->failures++;
        }
        a->consumed[w->id]++;
        if (job % 500 == 0)
            tide_sleep(1); /* a few jobs take a while */
        else if (job % 7 == 0)
            tide_sleep(0); /* others just let the rest run */
        tide_queue_task_done(a->q);
    }
    return rc == -ESHUTDOWN ? 0 : rc;
}

static int run(void *arg)
{
    app *a = arg;
    worker pw[MAX_WORKERS], cw[MAX_WORKERS];
    tide_group producers, consumers;
    tide_queue_opts o;
    int rc;

    tide_queue_opts_init(&o);
    o.maxsize = QUEUE_SLOTS; /* bounded: producers wait when it is full */
    if ((rc = tide_queue_new(&a->q, &o)) < 0)
        return rc;

    /* Consumers first, in a group of their own: the group makes sure none
     * outlives this function. */
    tide_group_init(&consumers);
    for (int i = 0; i < a->consumers; i++) {
        cw[i] = (worker){a, i};
        if ((rc = tide_group_spawn(&consumers, consumer, &cw[i], NULL, NULL)) < 0)
            goto out;
    }
    tide_group_init(&producers);
    for (int i = 0; i < a->producers; i++) {
        pw[i] = (worker){a, i};
        if ((rc = tide_group_spawn(&producers, producer, &pw[i], NULL, NULL)) < 0)
            break;
    }

    rc = tide_group_wait(&producers); /* every job is in the queue (or taken) */
    if (rc == 0)
        rc = tide_queue_join(a->q); /* ... and processed */
out:
    tide_queue_shutdown(a->q, 0); /* consumers wake with -ESHUTDOWN and return */
    {
        int rc2 = tide_group_wait(&consumers);
        if (rc == 0)
            rc = rc2;
    }
    tide_queue_free(a->q);
    return rc;
}

static int parse_int(const char *s, int lo, int hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "bad number '%s' (%d..%d)\n", s, lo, hi);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    app a;
    long total, sum = 0, missing = 0;
    int rc;

    memset(&a, 0, sizeof a);
    a.producers = 4;
    a.consumers = 3;
    a.items = 50000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            a.items = 2000;
        else if (!strcmp(argv[i], "--producers") && i + 1 < argc)
            a.producers = parse_int(argv[++i], 1, MAX_WORKERS);
        else if (!strcmp(argv[i], "--consumers") && i + 1 < argc)
            a.consumers = parse_int(argv[++i], 1, MAX_WORKERS);
        else if (!strcmp(argv[i], "--items") && i + 1 < argc)
            a.items = parse_int(argv[++i], 0, 10000000);
        else {
            fprintf(stderr,
                    "usage: %s [--quick] [--producers N] [--consumers N] [--items N]\n",
                    argv[0]);
            return 2;
        }
    }
    total = (long)a.producers * a.items;
    a.seen = calloc(total ? (size_t)total : 1, 1);
    if (!a.seen)
        return 1;

    rc = tide_run(run, &a);

    for (long j = 0; j < total; j++)
        missing += a.seen[j] == 0;
    printf("producer_consumer: %d producers x %d items, %d consumers, queue of %d slots\n",
           a.producers, a.items, a.consumers, QUEUE_SLOTS);
    printf("  produced %ld, puts that waited for room %ld\n", a.produced, a.full_waits);
    for (int i = 0; i < a.consumers; i++) {
        printf("  consumer %d: %ld jobs\n", i, a.consumed[i]);
        sum += a.consumed[i];
    }
    printf("  consumed %ld of %ld, missing %ld, duplicates/bad %d, result %s\n", sum, total,
           missing, a.failures, tide_strerror(rc));
    free(a.seen);

    if (rc != 0 || a.produced != total || sum != total || missing || a.failures) {
        fprintf(stderr, "producer_consumer: FAILED\n");
        return 1;
    }
    printf("  OK: every job consumed exactly once\n");
    return 0;
}
