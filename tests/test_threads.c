/*
 * Several loops on several threads at once, all started together in a fresh
 * process, so that tide's process-wide state (the worker pool, the stack
 * pools' page size and guard mode, the signal table, the orphan reaper, the
 * file fast path's switch, task-local keys) is first touched by several
 * threads at the same time.  Run under ThreadSanitizer in CI: any data race
 * on that state is reported there; elsewhere it checks the results.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#define NTHREADS 4

typedef struct worker {
    int idx;
    int signo;               /* a signal of this thread's loop alone */
    pthread_barrier_t *start;
    char path[64];
    int rc;                  /* tide_run's */
    int line;                /* first failed check, 0 if none */
    int to_thread_sum;
    int signals_seen, signals_sent;
    long tasks_done;
    tide_local_key key;      /* made by each thread (the key ids are global) */
} worker;

#define CHECK(w, cond)                                                                         \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            if (!(w)->line)                                                                    \
                (w)->line = __LINE__;                                                          \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)

static int square(void *arg)
{
    intptr_t v = (intptr_t)arg;
    return (int)(v * v);
}

static int small_task(void *arg)
{
    worker *w = arg;
    if (tide_local_set(&w->key, w) != 0)
        return -3;
    if (tide_sleep(0) != 0 || tide_sleep(1) != 0)
        return -1;
    if (tide_local_get(&w->key) != w)
        return -2;
    w->tasks_done++;
    return 0;
}

static void on_sig(void *arg)
{
    ((worker *)arg)->signals_seen++;
}

static int thread_main(void *arg)
{
    worker *w = arg;
    tide_task *ts[32];
    tide_task_opts o;
    int i, rc;

    CHECK(w, tide_local_key_init(&w->key) == 0);
    /* tasks of several stack sizes (each size a pool of its own) */
    tide_task_opts_init(&o);
    for (i = 0; i < 32; i++) {
        o.stack_size = (size_t)(16 + 16 * (i % 4)) * 1024;
        CHECK(w, tide_create_task_ex(&ts[i], NULL, small_task, w, &o) == 0);
    }
    CHECK(w, tide_gather(ts, 32, NULL) == 0);

    /* the worker pool */
    for (i = 1; i <= 20; i++) {
        rc = tide_to_thread(square, (void *)(intptr_t)i);
        CHECK(w, rc == i * i);
        w->to_thread_sum += rc;
    }

    /* files (pool and the inline fast path) */
    {
        char buf[4096], back[4096];
        int fd;
        memset(buf, 'a' + w->idx, sizeof buf);
        fd = tide_file_open(w->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK(w, fd >= 0);
        CHECK(w, tide_file_write(fd, buf, sizeof buf) == (ssize_t)sizeof buf);
        CHECK(w, tide_file_pread(fd, back, sizeof back, 0) == (ssize_t)sizeof back);
        CHECK(w, memcmp(buf, back, sizeof buf) == 0);
        CHECK(w, tide_file_close(fd) == 0);
        CHECK(w, tide_file_unlink(w->path) == 0);
    }

    /* subprocesses: one waited for, one freed while it runs (the reaper) */
    {
        const char *quick[] = {"true", NULL}, *slow[] = {"sleep", "0.1", NULL};
        tide_process *p;
        CHECK(w, tide_process_spawn(&p, quick, NULL) == 0);
        CHECK(w, tide_process_wait(p, NULL) == 0);
        tide_process_free(p);
        CHECK(w, tide_process_spawn(&p, slow, NULL) == 0);
        tide_process_free(p);
    }

    /* a signal handler of this loop, the signal sent to the process (so
     * that another thread may get it and forward it) */
    rc = tide_signal_handler_add(w->signo, on_sig, w);
    if (rc == -EBUSY) { /* the self-pipe fallback: one loop handles signals */
        w->signals_seen = 1;
        return 0;
    }
    CHECK(w, rc == 0);
    /* Under TSan a signal that lands on a thread while it runs a task is
     * queued on that task's TSan fiber and handled only when the fiber next
     * enters libc; a task that ends first takes it along (seen about once in
     * 15 runs).  So there, and only there, it is sent again until it comes. */
    for (int sent = 0; !w->signals_seen && sent < (tt_under_tsan() ? 10 : 1); sent++) {
        CHECK(w, kill(getpid(), w->signo) == 0);
        w->signals_sent++;
        for (i = 0; i < (tt_under_tsan() ? 100 : 500) && !w->signals_seen; i++)
            tide_sleep(2);
    }
    CHECK(w, w->signals_seen >= 1 && w->signals_seen <= w->signals_sent);
    CHECK(w, tide_signal_handler_remove(w->signo) == 0);
    return 0;
}

static void *thread_fn(void *arg)
{
    worker *w = arg;
    sigset_t none;

    /* The test's threads take what signals come their way: tide forwards a
     * delivery meant for another loop. */
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    pthread_barrier_wait(w->start);
    w->rc = tide_run(thread_main, w);
    return NULL;
}

static void run_round(void)
{
    pthread_barrier_t start;
    pthread_t th[NTHREADS];
    worker ws[NTHREADS];
    int i;

    pthread_barrier_init(&start, NULL, NTHREADS);
    memset(ws, 0, sizeof ws);
    for (i = 0; i < NTHREADS; i++) {
        ws[i].idx = i;
        ws[i].signo = SIGRTMIN + 2 + i;
        ws[i].start = &start;
        snprintf(ws[i].path, sizeof ws[i].path, "/tmp/tide-threads-%d-%d", (int)getpid(), i);
        assert_int_equal(pthread_create(&th[i], NULL, thread_fn, &ws[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (i = 0; i < NTHREADS; i++) {
        if (ws[i].line)
            fprintf(stderr, "thread %d: check at line %d failed\n", i, ws[i].line);
        assert_int_equal(ws[i].line, 0);
        assert_int_equal(ws[i].rc, 0);
        assert_int_equal(ws[i].tasks_done, 32);
        assert_int_equal(ws[i].to_thread_sum, 2870); /* 1 + 4 + ... + 400 */
        assert_true(ws[i].signals_seen >= 1);
    }
}

static void test_loops_on_threads(void **state)
{
    (void)state;
    for (int r = 0; r < 3; r++)
        run_round();
    /* the freed children are reaped in the background */
    for (int i = 0; i < 300; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD)
            return;
        usleep(10000);
    }
    /* (under a sanitizer, a report starts a symbolizer: a child too) */
    fail_msg("children left behind");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loops_on_threads),
    };
    /* The process-directed signals must not hit the main thread, which runs
     * no loop: block them here (the test's threads unblock them). */
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < NTHREADS; i++)
        sigaddset(&set, SIGRTMIN + 2 + i);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    alarm(120);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
