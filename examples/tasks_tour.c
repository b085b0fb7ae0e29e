/*
 * tasks_tour.c -- a guided tour of tide's tasks, and a smoke test of the library.
 *
 * tide is asyncio for C: one thread runs an event loop, and the loop runs
 * many "tasks" (stackful coroutines).  Code inside a task looks like ordinary
 * blocking code -- tide_sleep(5) really waits 5 ms -- but only that task
 * waits; the loop runs the others meanwhile.
 *
 * The tour runs six short sections inside one tide_run() call:
 *
 *   1. workers    thousands of tasks that sleep and yield, gathered at the end
 *   2. timeouts   a timeout scope cutting a slow job short; tide_wait_for
 *   3. cancel     cancelling a group of sleeping tasks; a shield for cleanup
 *   4. to_thread  CPU-bound work on the worker pool while the loop keeps going
 *   5. future     one task sets a future, many tasks wait for it
 *   6. task list  a snapshot of the live tasks, taken during section 1
 *
 * Each section checks its own results.  The program prints one line per
 * check that fails (to stderr) and exits with status 1 if any did, so ctest
 * can run it ("tasks_tour --quick") as a smoke test.
 *
 * Conventions used throughout (see include/tide.h): functions return >= 0 on
 * success and a negative errno on failure (-ECANCELED, -ETIMEDOUT, ...), and
 * tide_strerror() names an error.
 */
#include <tide.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ utilities */

/* Every check goes through CHECK(): a failure is reported at once, with its
 * line number, and counted; main() turns the count into the exit status. */
static int g_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            g_failures++;                                                       \
            fprintf(stderr, "tasks_tour.c:%d: CHECK FAILED: %s: ", __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* A high-resolution stopwatch for the report.  (tide_now() is the clock tide
 * uses for its deadlines; it counts whole milliseconds, which is too coarse
 * to time the fast sections.) */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A tiny deterministic random generator (xorshift32), one per task, so that
 * every run of the tour does the same work. */
static uint32_t rand_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Formats a rate like "1.23 M/s" into buf. */
static const char *rate(char *buf, size_t len, double count, double ms)
{
    double per_s = ms > 0 ? count * 1000.0 / ms : 0;
    if (per_s >= 1e6)
        snprintf(buf, len, "%.2f M/s", per_s / 1e6);
    else
        snprintf(buf, len, "%.1f k/s", per_s / 1e3);
    return buf;
}

/* The symbolic name of the errors this tour meets, for the report
 * (tide_strerror() gives a description, like strerror). */
static const char *errname(int rc)
{
    switch (rc) {
    case 0: return "0";
    case -ECANCELED: return "-ECANCELED";
    case -ETIMEDOUT: return "-ETIMEDOUT";
    case -EALREADY: return "-EALREADY";
    default: return tide_strerror(rc);
    }
}

/* Spawns fn(arg) as a task with a name and a stack size (0: the default).
 * tide_create_task(&t, fn, arg) is the short form, without options. */
static tide_task *spawn(tide_fn fn, void *arg, const char *name, size_t stack_size)
{
    tide_task_opts opts;
    tide_task *t = NULL;
    int rc;

    tide_task_opts_init(&opts);
    opts.name = name;               /* copied by tide: a stack buffer is fine */
    opts.stack_size = stack_size;
    rc = tide_create_task_ex(&t, NULL, fn, arg, &opts);
    if (rc < 0) {
        fprintf(stderr, "tasks_tour: cannot create task %s: %s\n", name, tide_strerror(rc));
        exit(1);                    /* nothing sensible to do without it */
    }
    return t;
}

/* The command line. */
struct config {
    int quick;          /* --quick: a smaller run, for ctest */
    int workers;        /* section 1: how many worker tasks */
    int sleepers;       /* section 3: how many tasks to cancel */
    int waiters;        /* section 5: how many tasks wait on the future */
    long hash_rounds;   /* section 4: size of the CPU-bound job */
};

/* ========================================================= 1. workers */

/*
 * A worker sleeps a random 1..4 ms, ROUNDS times, and after each sleep
 * yields YIELDS times with tide_sleep(0) -- "let the others run", like
 * asyncio.sleep(0).  It counts what it did and returns its step count, which
 * we check after tide_gather().
 */
enum { ROUNDS = 4, YIELDS = 8, STEPS = ROUNDS * (1 + YIELDS) };

/* Workers get small stacks: they need little, and thousands of them are
 * alive at once.  (The default is TIDE_DEFAULT_STACK_SIZE, 256 KiB.  A guard
 * page below each stack turns an overflow into a clear message, not silent
 * memory corruption.) */
#define WORKER_STACK (32 * 1024)

struct worker {
    int id;
    uint32_t rng;
    int sleeps, yields;     /* what it did */
    int64_t slept_ms;       /* how long it asked to sleep, in total */
};

static int worker_main(void *arg)
{
    struct worker *w = arg;

    for (int round = 0; round < ROUNDS; round++) {
        int ms = 1 + (int)(rand_next(&w->rng) % 4);
        int rc = tide_sleep(ms);        /* only this task waits */
        if (rc < 0)
            return rc;                  /* -ECANCELED if someone cancels us */
        w->sleeps++;
        w->slept_ms += ms;
        for (int i = 0; i < YIELDS; i++) {
            rc = tide_sleep(0);         /* yield: go to the back of the line */
            if (rc < 0)
                return rc;
            w->yields++;
        }
    }
    return w->sleeps + w->yields;       /* a result >= 0 means success */
}

/* Section 6 happens here: while the workers run, an "inspector" task takes a
 * snapshot of the task list.  It keeps the counts per state and a copy of the
 * first few entries (names are only valid while their task is alive). */
enum { SNAP_ROWS = 4 };

struct snapshot {
    int taken;
    ssize_t live;                       /* how many tasks were alive */
    ssize_t per_state[TIDE_TASK_DONE + 1];
    int rows;
    struct {
        uint64_t id;
        char name[TIDE_TASK_NAME_MAX];
        tide_task_state state;
        size_t stack_size;
    } row[SNAP_ROWS + 1];               /* the first few, and the inspector */
};

static void snap_row(struct snapshot *s, const tide_task_info *info)
{
    s->row[s->rows].id = info->id;
    snprintf(s->row[s->rows].name, sizeof s->row[0].name, "%s", info->name);
    s->row[s->rows].state = info->state;
    s->row[s->rows].stack_size = info->stack_size;
    s->rows++;
}

static int inspector_main(void *arg)
{
    struct snapshot *snap = arg;
    tide_task_info *all;
    ssize_t n;

    /* Let the workers get going: after 2 ms some sleep, some wait in line. */
    int rc = tide_sleep(2);
    if (rc < 0)
        return rc;

    /* tide_task_list(loop, out, cap) returns how many tasks are alive and
     * fills at most cap entries; cap 0 just counts.  NULL = current loop. */
    n = tide_task_list(NULL, NULL, 0);
    if (n < 0)
        return (int)n;
    all = calloc((size_t)n, sizeof *all);
    if (!all)
        return -ENOMEM;
    n = tide_task_list(NULL, all, (size_t)n);   /* no suspension in between */

    snap->live = n;
    for (ssize_t i = 0; i < n; i++) {
        snap->per_state[all[i].state]++;
        if (i < SNAP_ROWS)
            snap_row(snap, &all[i]);
        else if (all[i].task == tide_current_task())
            snap_row(snap, &all[i]);            /* show ourselves too */
    }
    snap->taken = 1;
    free(all);
    return 0;
}

/* A task that only yields, to time a task switch alone: no timers, no
 * sleeping, just "let the next task run" over and over. */
enum { STORM_TASKS = 1000, STORM_YIELDS = 200 };

static int yielder_main(void *arg)
{
    long *count = arg;
    for (int i = 0; i < STORM_YIELDS; i++) {
        int rc = tide_sleep(0);
        if (rc < 0)
            return rc;
        (*count)++;
    }
    return 0;
}

/* A trivial task, to time spawning and joining alone. */
static int trivial_main(void *arg)
{
    return (int)(intptr_t)arg;
}

struct workers_report {
    double ms;              /* spawn + run + gather of all workers */
    int ok;                 /* workers whose result checked out */
    long switches;          /* sleeps + yields done by the workers */
    int64_t slept_ms;       /* total asked-for sleep time */
    long storm_switches;    /* yields done by the yield-only tasks */
    double storm_ms;
    double spawn_ms;        /* spawn + gather of the trivial tasks */
    long spawned;           /* how many trivial tasks */
    struct snapshot snap;
};

static void section_workers(const struct config *cfg, struct workers_report *rep)
{
    int n = cfg->workers;
    struct worker *ws = calloc((size_t)n, sizeof *ws);
    size_t cap = (size_t)(n > STORM_TASKS ? n : STORM_TASKS) + 1;
    tide_task **ts = calloc(cap, sizeof *ts);
    int *results = calloc(cap, sizeof *results);
    char name[TIDE_TASK_NAME_MAX];
    double t0;
    int rc, ok = 0;

    if (!ws || !ts || !results) {
        fprintf(stderr, "tasks_tour: out of memory\n");
        exit(1);
    }

    /* Spawn the workers.  A new task does not run yet: it starts on a later
     * loop iteration, once the current task suspends. */
    t0 = now_ms();
    for (int i = 0; i < n; i++) {
        ws[i].id = i;
        ws[i].rng = 0x9e3779b9u ^ (uint32_t)(i * 2654435761u);
        if (!ws[i].rng)
            ws[i].rng = 1;
        snprintf(name, sizeof name, "worker-%d", i);
        ts[i] = spawn(worker_main, &ws[i], name, WORKER_STACK);
    }
    ts[n] = spawn(inspector_main, &rep->snap, "inspector", 0);

    /* tide_gather() waits for every task, releases them all, and fills
     * results[] with what each returned.  It returns 0 or the first failure.
     * Every task created must be awaited (or gathered, or detached) once. */
    rc = tide_gather(ts, (size_t)n + 1, results);
    rep->ms = now_ms() - t0;
    CHECK(rc == 0, "tide_gather returned %s", tide_strerror(rc));

    for (int i = 0; i < n; i++) {
        rep->switches += ws[i].sleeps + ws[i].yields;
        rep->slept_ms += ws[i].slept_ms;
        if (results[i] == STEPS && ws[i].sleeps == ROUNDS && ws[i].yields == ROUNDS * YIELDS)
            ok++;
    }
    rep->ok = ok;
    CHECK(ok == n, "%d of %d workers returned the right count", ok, n);
    CHECK(results[n] == 0, "inspector returned %s", tide_strerror(results[n]));
    /* The snapshot saw main, every worker and the inspector: none had been
     * released yet (tide_gather releases them once it has them all). */
    CHECK(rep->snap.taken && rep->snap.live == n + 2, "task list: %zd live, expected %d",
          rep->snap.live, n + 2);

    /* Task switches alone: tasks that do nothing but yield. */
    t0 = now_ms();
    for (int i = 0; i < STORM_TASKS; i++)
        ts[i] = spawn(yielder_main, &rep->storm_switches, "yielder", WORKER_STACK);
    rc = tide_gather(ts, STORM_TASKS, NULL);
    rep->storm_ms = now_ms() - t0;
    CHECK(rc == 0, "gather of the yielders: %s", tide_strerror(rc));
    CHECK(rep->storm_switches == (long)STORM_TASKS * STORM_YIELDS, "%ld yields, not %ld",
          rep->storm_switches, (long)STORM_TASKS * STORM_YIELDS);

    /* Spawning and joining alone: many tiny tasks, gathered in one go, five
     * times over.  The stacks of finished tasks are pooled and reused. */
    t0 = now_ms();
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < n; i++)
            CHECK(tide_create_task(&ts[i], trivial_main, (void *)(intptr_t)i) == 0,
                  "tide_create_task failed");
        rc = tide_gather(ts, (size_t)n, results);
        CHECK(rc == 0, "gather of trivial tasks: %s", tide_strerror(rc));
        for (int i = 0; i < n; i++)
            if (results[i] != i) {
                CHECK(results[i] == i, "trivial task %d returned %d", i, results[i]);
                break;
            }
        rep->spawned += n;
    }
    rep->spawn_ms = now_ms() - t0;

    free(ws);
    free(ts);
    free(results);
}

/* ========================================================= 2. timeouts */

/*
 * A timeout scope gives every suspending call inside it a deadline: once it
 * passes, they fail with -ETIMEDOUT (asyncio.timeout(), Trio's
 * move_on_after).  Scopes nest and the earliest deadline wins.  Here a job of
 * 100 items, 5 ms each, gets an overall budget of 30 ms, and each item its
 * own (generous) 20 ms limit.
 */
enum { JOB_ITEMS = 100, ITEM_MS = 5, BUDGET_MS = 30, ITEM_LIMIT_MS = 20 };

struct timeouts_report {
    int items_done;
    int last_rc;            /* why the job stopped */
    int item_scope_rc;      /* tide_timeout_end of the item scope that was cut */
    int budget_scope_rc;    /* tide_timeout_end of the budget scope */
    double job_ms;
    int wait_for_rc;        /* tide_wait_for on a task that takes too long */
    int slow_saw;           /* what the slow task's sleep returned */
    int slow_cleaned_up;
    double wait_for_ms;
    int fast_rc;            /* tide_wait_for on a task that is quick enough */
};

/* The slow task of tide_wait_for: wants to sleep 10 s.  When it is cancelled
 * its sleep returns -ECANCELED at once, and it cleans up before returning. */
struct slow {
    int saw;
    int cleaned_up;
};

static int slow_main(void *arg)
{
    struct slow *s = arg;
    char *resource = malloc(64);        /* something to clean up */

    s->saw = tide_sleep(10 * 1000);
    free(resource);                     /* runs whatever happened */
    s->cleaned_up = 1;
    return s->saw < 0 ? s->saw : 42;
}

static int quick_main(void *arg)
{
    (void)arg;
    int rc = tide_sleep(1);
    return rc < 0 ? rc : 7;
}

static void section_timeouts(struct timeouts_report *rep)
{
    tide_scope budget, item;
    struct slow slow = {0, 0};
    tide_task *t;
    double t0 = now_ms();

    /* The job, with its overall budget. */
    tide_timeout_begin(&budget, BUDGET_MS);
    for (rep->items_done = 0; rep->items_done < JOB_ITEMS; rep->items_done++) {
        int rc, end;

        tide_timeout_begin(&item, ITEM_LIMIT_MS);
        rc = tide_sleep(ITEM_MS);           /* "process one item" */
        end = tide_timeout_end(&item);      /* -ETIMEDOUT only if ITS deadline hit */
        if (rc < 0) {
            rep->last_rc = rc;
            rep->item_scope_rc = end;
            break;
        }
    }
    rep->budget_scope_rc = tide_timeout_end(&budget);
    rep->job_ms = now_ms() - t0;

    CHECK(rep->last_rc == -ETIMEDOUT, "job stopped with %s", tide_strerror(rep->last_rc));
    CHECK(rep->items_done > 0 && rep->items_done < JOB_ITEMS, "items done: %d", rep->items_done);
    CHECK(rep->item_scope_rc == 0, "item scope ended with %s (the outer budget fired, not it)",
          tide_strerror(rep->item_scope_rc));
    CHECK(rep->budget_scope_rc == -ETIMEDOUT, "budget scope ended with %s",
          tide_strerror(rep->budget_scope_rc));
    CHECK(rep->job_ms >= BUDGET_MS - 1, "the job stopped early, after %.1f ms", rep->job_ms);

    /* tide_wait_for(t, ms): wait at most ms for t.  On timeout t is
     * cancelled AND waited for (its cleanup has run when we get control
     * back), and the call returns -ETIMEDOUT.  t is released either way. */
    t = spawn(slow_main, &slow, "slow", 0);
    t0 = now_ms();
    rep->wait_for_rc = tide_wait_for(t, 20);
    rep->wait_for_ms = now_ms() - t0;
    rep->slow_saw = slow.saw;
    rep->slow_cleaned_up = slow.cleaned_up;
    CHECK(rep->wait_for_rc == -ETIMEDOUT, "wait_for returned %s", tide_strerror(rep->wait_for_rc));
    CHECK(slow.saw == -ECANCELED, "the slow task's sleep returned %s", tide_strerror(slow.saw));
    CHECK(slow.cleaned_up, "the slow task did not clean up");
    CHECK(rep->wait_for_ms < 1000, "wait_for took %.1f ms", rep->wait_for_ms);

    /* ... and a task that finishes in time just gives its result. */
    t = spawn(quick_main, NULL, "quick", 0);
    rep->fast_rc = tide_wait_for(t, 1000);
    CHECK(rep->fast_rc == 7, "wait_for on a quick task returned %d", rep->fast_rc);
}

/* =========================================================== 3. cancel */

/*
 * A group of tasks waits for something that never comes; we cancel them all.
 * Cancellation is "level-triggered": a cancelled task's sleep returns
 * -ECANCELED at once, and so does every later suspending call, until the
 * task returns -- ignoring one error cannot make it hang.
 *
 * The cleanup here must itself wait (say, to flush a buffer politely), so it
 * runs inside a shield: cancellation does not apply to calls in a shield.
 */
struct sleepers {
    int started;
    int saw_cancel;         /* their long sleep returned -ECANCELED */
    int cleanups;           /* the shielded cleanup finished normally */
    int still_cancelled;    /* after the shield, calls fail again */
};

static int sleeper_main(void *arg)
{
    struct sleepers *st = arg;
    tide_scope shield;
    int rc;

    st->started++;
    rc = tide_sleep(60 * 1000);          /* "wait for a message" */
    if (rc != -ECANCELED)
        return rc < 0 ? rc : -EPROTO;    /* nobody should ever wake us */
    st->saw_cancel++;

    tide_shield_begin(&shield);
    rc = tide_sleep(2);                  /* cleanup that suspends: works */
    tide_shield_end(&shield);
    if (rc == 0)
        st->cleanups++;

    if (tide_sleep(0) == -ECANCELED)     /* outside the shield: cancelled */
        st->still_cancelled++;
    return -ECANCELED;
}

/* Tasks cancelled before their first run never run at all. */
static int never_main(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

enum { UNSTARTED = 10 };

struct cancel_report {
    int n;
    struct sleepers st;
    int results_ecanceled;  /* tide_await returned -ECANCELED */
    double ms;              /* from cancel to all joined */
    int unstarted_ran;
    int unstarted_ecanceled;
};

static void section_cancel(const struct config *cfg, struct cancel_report *rep)
{
    int n = cfg->sleepers;
    tide_task **ts = calloc((size_t)n, sizeof *ts);
    tide_task *never[UNSTARTED];
    char name[TIDE_TASK_NAME_MAX];
    double t0;

    if (!ts) {
        fprintf(stderr, "tasks_tour: out of memory\n");
        exit(1);
    }
    rep->n = n;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "sleeper-%d", i);
        ts[i] = spawn(sleeper_main, &rep->st, name, WORKER_STACK);
    }
    tide_sleep(5);                       /* let them all start sleeping */
    CHECK(rep->st.started == n, "%d of %d sleepers started", rep->st.started, n);

    /* Cancel them all, then await each: a task that returned -ECANCELED (or
     * was cancelled before it started) yields -ECANCELED. */
    t0 = now_ms();
    for (int i = 0; i < n; i++)
        tide_cancel(ts[i]);
    for (int i = 0; i < n; i++)
        if (tide_await(ts[i]) == -ECANCELED)
            rep->results_ecanceled++;
    rep->ms = now_ms() - t0;

    CHECK(rep->results_ecanceled == n, "%d of %d awaits gave -ECANCELED",
          rep->results_ecanceled, n);
    CHECK(rep->st.saw_cancel == n, "%d of %d saw the cancel", rep->st.saw_cancel, n);
    CHECK(rep->st.cleanups == n, "%d of %d shielded cleanups finished", rep->st.cleanups, n);
    CHECK(rep->st.still_cancelled == n, "%d of %d were still cancelled after the shield",
          rep->st.still_cancelled, n);
    CHECK(rep->ms < 1000, "cancelling took %.1f ms", rep->ms);

    /* Cancel right after creating: the tasks never run. */
    for (int i = 0; i < UNSTARTED; i++) {
        CHECK(tide_create_task(&never[i], never_main, &rep->unstarted_ran) == 0, "create");
        tide_cancel(never[i]);
    }
    for (int i = 0; i < UNSTARTED; i++)
        if (tide_await(never[i]) == -ECANCELED)
            rep->unstarted_ecanceled++;
    CHECK(rep->unstarted_ran == 0, "%d cancelled-before-start tasks ran", rep->unstarted_ran);
    CHECK(rep->unstarted_ecanceled == UNSTARTED, "%d of %d gave -ECANCELED",
          rep->unstarted_ecanceled, UNSTARTED);
    free(ts);
}

/* ======================================================== 4. to_thread */

/*
 * CPU-bound work would block the loop: no other task could run until it is
 * done.  tide_to_thread(fn, arg) runs fn on a worker thread while only the
 * calling task waits.  To show it, a "ticker" task ticks every millisecond,
 * and we count its ticks while the work runs -- first on the worker pool,
 * then (to compare) directly on the loop's thread.
 */
struct hash_job {
    long rounds;
    uint64_t result;
};

/* Runs on a worker thread: must not call tide functions that suspend. */
static int hash_main(void *arg)
{
    struct hash_job *job = arg;
    uint64_t h = 14695981039346656037ull;          /* FNV-1a, over a counter */

    for (long i = 0; i < job->rounds; i++) {
        h ^= (uint64_t)i & 0xff;
        h *= 1099511628211ull;
        h ^= (uint64_t)i >> 8;
        h *= 1099511628211ull;
    }
    job->result = h;
    return 0;
}

static int ticker_main(void *arg)
{
    long *ticks = arg;
    while (tide_sleep(1) == 0)           /* until cancelled */
        (*ticks)++;
    return 0;
}

struct thread_report {
    uint64_t checksum;
    double pool_ms;
    long pool_ticks;        /* ticks while the worker pool did the job */
    double loop_ms;
    long loop_ticks;        /* ticks while the loop's thread did it */
};

static void section_to_thread(const struct config *cfg, struct thread_report *rep)
{
    struct hash_job on_pool = {cfg->hash_rounds, 0}, on_loop = {cfg->hash_rounds, 0};
    long ticks = 0, before;
    tide_task *ticker = spawn(ticker_main, &ticks, "ticker", 0);
    double t0;
    int rc;

    tide_sleep(2);                       /* the ticker is up and ticking */

    before = ticks;
    t0 = now_ms();
    rc = tide_to_thread(hash_main, &on_pool);   /* we wait; the ticker runs */
    rep->pool_ms = now_ms() - t0;
    rep->pool_ticks = ticks - before;
    CHECK(rc == 0, "tide_to_thread returned %s", tide_strerror(rc));

    before = ticks;
    t0 = now_ms();
    hash_main(&on_loop);                 /* blocks the loop: nothing else runs */
    rep->loop_ms = now_ms() - t0;
    rep->loop_ticks = ticks - before;

    tide_cancel(ticker);
    rc = tide_await(ticker);
    CHECK(rc == 0, "the ticker returned %s", tide_strerror(rc));

    rep->checksum = on_pool.result;
    CHECK(on_pool.result == on_loop.result, "checksums differ: %016" PRIx64 " vs %016" PRIx64,
          on_pool.result, on_loop.result);
    CHECK(rep->pool_ticks > 0, "the ticker did not tick during tide_to_thread (%.1f ms)",
          rep->pool_ms);
    CHECK(rep->loop_ticks == 0, "the ticker ticked while the loop was blocked?");
}

/* =========================================================== 5. future */

/*
 * A future is a value that will be ready later.  One task sets it; any
 * number of tasks can wait for it with tide_future_await, and done callbacks
 * run (from the loop) once it completes.
 */
struct future_demo {
    tide_future *f;
    int answer;             /* the value; the future carries a pointer to it */
    int got;                /* waiters that received it */
    int callbacks;          /* done callback runs */
};

static int producer_main(void *arg)
{
    struct future_demo *d = arg;
    int rc = tide_sleep(5);             /* "compute" the answer */
    if (rc < 0)
        return rc;
    d->answer = 42;
    return tide_future_set_result(d->f, &d->answer);
}

static int waiter_main(void *arg)
{
    struct future_demo *d = arg;
    void *value = NULL;
    int rc = tide_future_await(d->f, &value);  /* all waiters wake together */
    if (rc < 0)
        return rc;
    if (value == &d->answer && *(int *)value == 42)
        d->got++;
    return 0;
}

static void on_done(tide_future *f, void *arg)
{
    (void)f;
    ((struct future_demo *)arg)->callbacks++;
}

struct future_report {
    int waiters, got, callbacks, again_rc, result_rc;
    double ms;
};

static void section_future(const struct config *cfg, struct future_report *rep)
{
    struct future_demo d = {NULL, 0, 0, 0};
    int n = cfg->waiters;
    tide_task **ts = calloc((size_t)n + 1, sizeof *ts);
    void *value = NULL;
    double t0 = now_ms();
    int rc;

    if (!ts || tide_future_new(&d.f) < 0) {
        fprintf(stderr, "tasks_tour: cannot make a future\n");
        exit(1);
    }
    tide_future_add_done_callback(d.f, on_done, &d);
    for (int i = 0; i < n; i++)
        ts[i] = spawn(waiter_main, &d, "waiter", WORKER_STACK);
    ts[n] = spawn(producer_main, &d, "producer", 0);

    rc = tide_gather(ts, (size_t)n + 1, NULL);
    CHECK(rc == 0, "gather of the future's waiters: %s", tide_strerror(rc));
    tide_sleep(0);                      /* callbacks run on the next iteration */
    rep->ms = now_ms() - t0;

    /* A future completes once; afterwards its result can be read without
     * waiting. */
    rep->again_rc = tide_future_set_result(d.f, NULL);
    rep->result_rc = tide_future_result(d.f, &value);
    tide_future_free(d.f);

    rep->waiters = n;
    rep->got = d.got;
    rep->callbacks = d.callbacks;
    CHECK(d.got == n, "%d of %d waiters got the answer", d.got, n);
    CHECK(d.callbacks == 1, "the done callback ran %d times", d.callbacks);
    CHECK(rep->again_rc == -EALREADY, "setting it twice gave %s", tide_strerror(rep->again_rc));
    CHECK(rep->result_rc == 0 && value == &d.answer, "tide_future_result gave %s",
          tide_strerror(rep->result_rc));
    free(ts);
}

/* ============================================================ the tour */

struct report {
    struct workers_report workers;
    struct timeouts_report timeouts;
    struct cancel_report cancel;
    struct thread_report thread;
    struct future_report future;
    ssize_t left_over;      /* live tasks at the end, besides main */
    double total_ms;
};

struct run {
    const struct config *cfg;
    struct report rep;
};

/* The first task: tide_run() makes a loop, runs this in a task until it
 * returns, and gives back its result. */
static int tour_main(void *arg)
{
    struct run *run = arg;
    double t0 = now_ms();

    section_workers(run->cfg, &run->rep.workers);
    section_timeouts(&run->rep.timeouts);
    section_cancel(run->cfg, &run->rep.cancel);
    section_to_thread(run->cfg, &run->rep.thread);
    section_future(run->cfg, &run->rep.future);

    /* Every task was awaited: only this one should be left. */
    run->rep.left_over = tide_task_list(NULL, NULL, 0) - 1;
    CHECK(run->rep.left_over == 0, "%zd tasks left over", run->rep.left_over);
    run->rep.total_ms = now_ms() - t0;
    return 0;
}

/* The one-screen report.  Every number in it was checked by now. */
static void print_report(const struct config *cfg, const struct report *r)
{
    const struct workers_report *w = &r->workers;
    const struct timeouts_report *t = &r->timeouts;
    const struct cancel_report *c = &r->cancel;
    const struct thread_report *th = &r->thread;
    const struct future_report *f = &r->future;
    const struct snapshot *s = &w->snap;
    char buf[32];

    printf("tide %d.%d.%d tasks tour%s: %d workers, %d sleepers, %d waiters\n\n",
           TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR, TIDE_VERSION_PATCH,
           cfg->quick ? " --quick" : "", cfg->workers, cfg->sleepers, cfg->waiters);

    printf("1 workers   %d tasks x (%d sleeps of 1-4 ms + %d yields), gathered: %d ok\n",
           cfg->workers, ROUNDS, ROUNDS * YIELDS, w->ok);
    printf("            their sleeps add up to %.1f s, done in %.1f ms of wall time\n",
           w->slept_ms / 1000.0, w->ms);
    printf("            %7ld sleeps+yields %12s\n", w->switches,
           rate(buf, sizeof buf, (double)w->switches, w->ms));
    printf("            %7ld yields alone  %12s   (%d tasks x %d yields)\n", w->storm_switches,
           rate(buf, sizeof buf, (double)w->storm_switches, w->storm_ms), STORM_TASKS,
           STORM_YIELDS);
    printf("            %7ld spawn+join    %12s   (trivial tasks, gathered)\n", w->spawned,
           rate(buf, sizeof buf, (double)w->spawned, w->spawn_ms));

    printf("2 timeouts  %d ms budget, %d items of %d ms: %d done, then %s at %.1f ms\n",
           BUDGET_MS, JOB_ITEMS, ITEM_MS, t->items_done, errname(t->last_rc), t->job_ms);
    printf("            scopes end: item %s (not its deadline), budget %s\n",
           errname(t->item_scope_rc), errname(t->budget_scope_rc));
    printf("            wait_for(slow, 20 ms): %s after %.1f ms\n", errname(t->wait_for_rc),
           t->wait_for_ms);
    printf("            slow task saw %s, cleaned up: %s; wait_for(quick): %d\n",
           errname(t->slow_saw), t->slow_cleaned_up ? "yes" : "NO", t->fast_rc);

    printf("3 cancel    %d sleepers cancelled: %d x %s from tide_await, in %.1f ms\n", c->n,
           c->results_ecanceled, errname(-ECANCELED), c->ms);
    printf("            %d shielded cleanups finished; %d cancelled again after the shield\n",
           c->st.cleanups, c->st.still_cancelled);
    printf("            %d tasks cancelled before starting: %d ran, %d x %s\n", UNSTARTED,
           c->unstarted_ran, c->unstarted_ecanceled, errname(-ECANCELED));

    printf("4 to_thread checksum %016" PRIx64 " on the pool: %5.1f ms, %3ld ticks meanwhile\n",
           th->checksum, th->pool_ms, th->pool_ticks);
    printf("            same work on the loop's thread:        %5.1f ms, %3ld ticks (blocked)\n",
           th->loop_ms, th->loop_ticks);

    printf("5 future    %d of %d waiters got the value set by the producer, in %.1f ms\n",
           f->got, f->waiters, f->ms);
    printf("            done callback ran %d time; setting it again: %s\n", f->callbacks,
           errname(f->again_rc));

    printf("6 tasks     %zd live at 2 ms into section 1: %zd running, %zd ready, "
           "%zd waiting\n", s->live, s->per_state[TIDE_TASK_RUNNING],
           s->per_state[TIDE_TASK_READY], s->per_state[TIDE_TASK_WAITING]);
    for (int i = 0; i < s->rows; i++) {
        if (i == SNAP_ROWS)
            printf("              ...\n");
        printf("              #%-6" PRIu64 " %-12s %-8s stack %zu KiB\n", s->row[i].id,
               s->row[i].name, tide_task_state_name(s->row[i].state),
               s->row[i].stack_size / 1024);
    }

    printf("\ntotal %.1f ms, %zd tasks left over: ", r->total_ms, r->left_over);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tasks_tour [--quick] [--tasks N] [--help]\n"
            "  A tour of tide: thousands of tasks sleeping, yielding and gathered;\n"
            "  timeouts, cancellation, the worker pool and futures.  Checks its own\n"
            "  results: exit status 0 only if every check passed.\n"
            "  --quick    a smaller, faster run (2000 workers), as ctest runs it\n"
            "  --tasks N  number of worker tasks (default 10000)\n");
}

int main(int argc, char **argv)
{
    struct config cfg = {0, 10000, 1000, 100, 40L * 1000 * 1000};
    struct run run;
    int tasks = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            cfg.quick = 1;
        } else if (!strcmp(argv[i], "--tasks") && i + 1 < argc) {
            tasks = atoi(argv[++i]);
            if (tasks < 1 || tasks > 1000000) {
                fprintf(stderr, "tasks_tour: --tasks must be between 1 and 1000000\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tasks_tour: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (cfg.quick) {
        cfg.workers = 2000;
        cfg.sleepers = 200;
        cfg.hash_rounds = 10L * 1000 * 1000;
    }
    if (tasks)
        cfg.workers = tasks;

    memset(&run, 0, sizeof run);
    run.cfg = &cfg;

    /* asyncio.run(): everything happens inside this call. */
    rc = tide_run(tour_main, &run);
    CHECK(rc == 0, "tide_run returned %s", tide_strerror(rc));

    print_report(&cfg, &run.rep);
    if (g_failures) {
        printf("%d CHECK(S) FAILED (see above)\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
