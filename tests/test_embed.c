/*
 * Tests of the embedding API (tide_loop_fd, tide_loop_timeout_ms,
 * tide_loop_run_once) with a host loop of our own: plain poll(2) on the
 * loop's fd with the timeout tide asks for, then one tide_loop_run_once,
 * the way a GLib, Qt or libuv host drives tide.  The host counts its
 * wake-ups: one that keeps waking while tide only sleeps is busy-spinning.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/poll.h> /* not <poll.h>: src/poll.h is on the include path */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net_util.h"
#include "tide.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ the host */

typedef struct host {
    tide_loop *loop;
    long wakeups; /* poll() returns, each followed by one run_once */
} host;

/* Runs the host loop until done(arg) (checked before each sleep) or
 * limit_ms passed (a failure).  Returns the milliseconds it ran. */
static int64_t host_run(host *h, int (*done)(void *), void *arg, int64_t limit_ms)
{
    int64_t t0 = mono_ms(), end = t0 + limit_ms;

    while (!done(arg)) {
        struct pollfd pf = {.fd = tide_loop_fd(h->loop), .events = POLLIN};
        int64_t to = tide_loop_timeout_ms(h->loop), left = end - mono_ms();
        int rc;

        if (left <= 0)
            fail_msg("the host loop ran %lld ms without finishing", (long long)limit_ms);
        assert_true(pf.fd >= 0);
        assert_true(to >= -1);
        if (to < 0 || to > left)
            to = left; /* only the test's own limit: tide asked for no timer */
        rc = poll(&pf, 1, (int)to);
        assert_true(rc >= 0 || errno == EINTR);
        h->wakeups++;
        rc = tide_loop_run_once(h->loop);
        assert_true(rc == 0 || rc == 1);
    }
    return mono_ms() - t0;
}

/* -------------------------------------------------------- the tasks */

static int sleeper(void *arg)
{
    int n = *(int *)arg, i, rc;

    for (i = 0; i < n; i++)
        if ((rc = tide_sleep(100)) < 0)
            return rc;
    return n;
}

/* Echoes fd until end of file; returns the bytes echoed. */
static int echo_task(void *arg)
{
    int fd = *(int *)arg, total = 0;
    char buf[256];

    for (;;) {
        ssize_t n = tide_read(fd, buf, sizeof buf);
        if (n <= 0)
            return n < 0 ? (int)n : total;
        if (tide_write(fd, buf, (size_t)n) != n)
            return -EIO;
        total += (int)n;
    }
}

#define ROUNDS 20
#define MSG_LEN 16

/* Sends ROUNDS lines through the echo, each read back before the next,
 * with a short sleep in between; then shuts its side down. */
static int echo_client(void *arg)
{
    int fd = *(int *)arg, i;
    char out[MSG_LEN + 1], in[MSG_LEN];

    for (i = 0; i < ROUNDS; i++) {
        size_t got = 0;
        snprintf(out, sizeof out, "line %010d\n", i);
        if (tide_write(fd, out, MSG_LEN) != MSG_LEN)
            return -EIO;
        while (got < MSG_LEN) {
            ssize_t n = tide_read(fd, in + got, MSG_LEN - got);
            if (n <= 0)
                return n < 0 ? (int)n : -EPIPE;
            got += (size_t)n;
        }
        if (memcmp(in, out, MSG_LEN) != 0)
            return -EPROTO;
        if (tide_sleep(10) < 0)
            return -ECANCELED;
    }
    return tide_shutdown(fd, SHUT_WR) < 0 ? -EIO : i;
}

static int magic = 42;

static int future_waiter(void *arg)
{
    void *v = NULL;
    int rc = tide_future_await(arg, &v);
    if (rc < 0)
        return rc;
    return v == &magic ? *(int *)v : -EPROTO;
}

/* Runs on the loop's thread (posted from another one). */
static void complete_future(void *arg)
{
    assert_int_equal(tide_future_set_result(arg, &magic), 0);
}

typedef struct poster {
    tide_loop *loop;
    tide_cb cb;
    void *arg;
    int delay_ms;  /* before each post */
    int posts;     /* how many */
    int poke_fd;   /* >= 0: write a byte to it after the first post */
} poster;

static void *poster_thread(void *arg)
{
    poster *p = arg;

    for (int i = 0; i < p->posts; i++) {
        sleep_ms(p->delay_ms);
        assert_int_equal(tide_call_soon_threadsafe(p->loop, p->cb, p->arg), 0);
        if (i == 0 && p->poke_fd >= 0)
            assert_int_equal(write(p->poke_fd, "y", 1), 1);
    }
    return NULL;
}

/* ---------------------------------------------------------------- tests */

typedef struct tasks {
    tide_task *t[8];
    int n;
} tasks;

static int all_done(void *arg)
{
    tasks *ts = arg;
    for (int i = 0; i < ts->n; i++)
        if (tide_task_get_state(ts->t[i]) != TIDE_TASK_DONE)
            return 0;
    return 1;
}

/* Sleeps, a socketpair echo and a future completed from another thread,
 * all driven by the host alone: everything completes, and the host wakes
 * about as often as there are events, not in a spin. */
static void test_host_drives_everything(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_future *fut;
    tasks ts = {.n = 0};
    int sv[2], nsleeps = 3;
    pthread_t th;
    host h;

    assert_int_equal(tide_loop_new(&loop), 0);
    h.loop = loop;
    h.wakeups = 0;
    assert_int_equal(tt_socketpair(sv, 0), 0);
    assert_int_equal(tide_future_new_on(&fut, loop), 0);
    assert_int_equal(tide_create_task_ex(&ts.t[ts.n++], loop, sleeper, &nsleeps, NULL), 0);
    assert_int_equal(tide_create_task_ex(&ts.t[ts.n++], loop, echo_task, &sv[1], NULL), 0);
    assert_int_equal(tide_create_task_ex(&ts.t[ts.n++], loop, echo_client, &sv[0], NULL), 0);
    assert_int_equal(tide_create_task_ex(&ts.t[ts.n++], loop, future_waiter, fut, NULL), 0);
    poster p = {loop, complete_future, fut, 80, 1, -1};
    assert_int_equal(pthread_create(&th, NULL, poster_thread, &p), 0);

    int64_t ms = host_run(&h, all_done, &ts, 10000);
    assert_int_equal(pthread_join(th, NULL), 0);

    assert_int_equal(tide_loop_run_until_complete(loop, ts.t[0]), nsleeps);
    assert_int_equal(tide_loop_run_until_complete(loop, ts.t[1]), ROUNDS * MSG_LEN);
    assert_int_equal(tide_loop_run_until_complete(loop, ts.t[2]), ROUNDS);
    assert_int_equal(tide_loop_run_until_complete(loop, ts.t[3]), magic);
    /* ~300 ms: 3 + 20 timer wake-ups, a few per echo round trip, one post.
     * A spinning host makes tens of thousands. */
    print_message("host: %ld wake-ups in %lld ms\n", h.wakeups, (long long)ms);
    assert_true(ms >= 300);
    assert_true(h.wakeups <= 300);

    tide_future_free(fut);
    assert_int_equal(tide_close(sv[0]), 0);
    assert_int_equal(tide_close(sv[1]), 0);
    tide_loop_free(loop);
}

static int g_posts;

static void count_post(void *arg)
{
    (void)arg;
    g_posts++;
}

static int write_once(void *arg)
{
    return (int)tide_write(*(int *)arg, "x", 1);
}

typedef struct idle_state {
    tide_task *sleeper;
    int posts_expected;
} idle_state;

static int idle_done(void *arg)
{
    idle_state *s = arg;
    return tide_task_get_state(s->sleeper) == TIDE_TASK_DONE && g_posts == s->posts_expected;
}

/* The only timed work is one task sleeping 3 x 100 ms.  Meanwhile things
 * happen that tide takes in without any task waiting for them: posts from
 * another thread, and readiness of a registered socket nobody reads (the
 * poller's fd stays readable until tide takes such events).  The host must
 * still wake only a few times per sleep. */
static void test_host_does_not_spin_while_tasks_sleep(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *w;
    int sv[2], nsleeps = 3;
    pthread_t th;
    host h;

    assert_int_equal(tide_loop_new(&loop), 0);
    h.loop = loop;
    assert_int_equal(tt_socketpair(sv, 0), 0);

    /* Register sv[0] with the poller (a write that never waits), so its
     * readiness events arrive with no task waiting. */
    assert_int_equal(tide_create_task_ex(&w, loop, write_once, &sv[0], NULL), 0);
    h.wakeups = 0;
    host_run(&h, all_done, &(tasks){.t = {w}, .n = 1}, 5000);
    assert_int_equal(tide_loop_run_until_complete(loop, w), 1);

    idle_state s = {NULL, 2};
    g_posts = 0;
    assert_int_equal(tide_create_task_ex(&s.sleeper, loop, sleeper, &nsleeps, NULL), 0);
    poster p = {loop, count_post, NULL, 70, 2, sv[1]};
    assert_int_equal(pthread_create(&th, NULL, poster_thread, &p), 0);

    h.wakeups = 0;
    int64_t ms = host_run(&h, idle_done, &s, 5000);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, s.sleeper), nsleeps);
    assert_int_equal(g_posts, 2);

    /* 3 timers, 2 posts, 1 socket event, and a run_once or two after each
     * for what it made ready: about a dozen.  Allow 100 a second of sleep. */
    long per_s = h.wakeups * 1000 / (ms > 0 ? ms : 1);
    print_message("host: %ld wake-ups in %lld ms (%ld/s)\n", h.wakeups, (long long)ms, per_s);
    assert_true(ms >= 300);
    assert_true(per_s <= 100);

    /* Nothing left at all: tide asks for no timer and the fd is quiet. */
    struct pollfd pf = {.fd = tide_loop_fd(loop), .events = POLLIN};
    assert_int_equal(tide_loop_run_once(loop), 0);
    assert_int_equal(tide_loop_timeout_ms(loop), -1);
    assert_int_equal(poll(&pf, 1, 0), 0);

    assert_int_equal(tide_close(sv[0]), 0);
    close(sv[1]);
    tide_loop_free(loop);
}

/* tide_loop_run_once is refused while the loop runs (from inside a task);
 * the fd is that of the loop's poller and stays the same. */
static int run_once_inside(void *arg)
{
    return tide_loop_run_once(arg);
}

static int tick_fn(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 50; i++) {
        (*n)++;
        tide_sleep(0);
    }
    return 0;
}

static void *thread_run_once(void *arg)
{
    tide_loop *loop = arg;
    stack_t st;
    int rc = tide_loop_run_once(loop); /* another thread: its own set-up, kept there */
    if (rc < 0 || sigaltstack(NULL, &st) != 0 || (st.ss_flags & SS_DISABLE))
        return (void *)1;
    return NULL;
}

/* An embedder calls tide_loop_run_once once per iteration of its own loop:
 * the overflow handler's alternate signal stack is set up at the first call
 * and kept (not mapped and unmapped each call), then taken down when the
 * loop is freed. */
static void test_run_once_keeps_the_signal_stack(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;
    stack_t st, first;
    int n = 0, calls = 0;

    assert_int_equal(sigaltstack(NULL, &st), 0);
    if (!(st.ss_flags & SS_DISABLE)) {
        /* ASan and TSan install their own: tide then uses it and maps none */
        print_message("this thread has an alternate signal stack already (a sanitizer's): "
                      "tide maps none, nothing to check\n");
        return;
    }
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, tick_fn, &n, NULL), 0);
    assert_int_equal(tide_loop_run_once(loop), 1);
    assert_int_equal(sigaltstack(NULL, &first), 0);
    assert_false(first.ss_flags & SS_DISABLE); /* kept after the call returned */
    while (tide_loop_run_once(loop) > 0 && calls < 1000) {
        calls++;
        assert_int_equal(sigaltstack(NULL, &st), 0);
        assert_false(st.ss_flags & SS_DISABLE);
        assert_ptr_equal(st.ss_sp, first.ss_sp); /* the same one, not remapped */
    }
    assert_int_equal(n, 50);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    /* A full run in between neither takes it down nor maps another. */
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(sigaltstack(NULL, &st), 0);
    assert_ptr_equal(st.ss_sp, first.ss_sp);
    /* Run once from another thread: that thread sets up its own (and keeps
     * it: the loop is not freed there); this one's stays until the loop is
     * freed here. */
    pthread_t th;
    void *res = (void *)2;
    assert_int_equal(pthread_create(&th, NULL, thread_run_once, loop), 0);
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res);
    tide_loop_free(loop);
    assert_int_equal(sigaltstack(NULL, &st), 0);
    assert_true(st.ss_flags & SS_DISABLE); /* freed on the thread that kept it */
}

static void test_run_once_inside_a_task_is_refused(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;

    assert_int_equal(tide_loop_new(&loop), 0);
    int fd = tide_loop_fd(loop);
    assert_int_equal(tide_create_task_ex(&t, loop, run_once_inside, loop, NULL), 0);
    assert_int_equal(tide_loop_timeout_ms(loop), 0); /* the task is ready */
    assert_int_equal(tide_loop_run_once(loop), 0);
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_DONE);
    assert_int_equal(tide_loop_run_until_complete(loop, t), -EBUSY);
    assert_int_equal(tide_loop_fd(loop), fd);
    tide_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_drives_everything),
        cmocka_unit_test(test_host_does_not_spin_while_tasks_sleep),
        cmocka_unit_test(test_run_once_inside_a_task_is_refused),
        cmocka_unit_test(test_run_once_keeps_the_signal_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
