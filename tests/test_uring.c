/*
 * Tests of the io_uring poller (src/poll_uring.c), forced with
 * TIDE_POLLER=io_uring: the backend choice and its fallback to epoll when
 * io_uring cannot be set up (simulated with a test hook), close releasing
 * the file at once, hang-up, reset, an fd closed and its number reused,
 * wake-ups from other threads, timeouts, more fds than the submission queue
 * holds, devices the poller refuses, and fork.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tide.h"
#include "poll.h"
#include "util.h"

static int uring_ok; /* the kernel lets us make a ring */

static int force_uring(void **state)
{
    (void)state;
    setenv("TIDE_POLLER", "io_uring", 1);
    tide__uring_fail_setup = 0;
    return 0;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *loop_backend(void)
{
    tide_loop *loop;
    const char *name;

    assert_int_equal(tide_loop_new(&loop), 0);
    name = tide_loop_poller(loop);
    tide_loop_free(loop);
    return name;
}

/* ------------------------------------------------------------ choosing */

static void test_choice(void **state)
{
    (void)state;
    assert_null(tide_loop_poller(NULL));
    setenv("TIDE_POLLER", "epoll", 1);
    assert_string_equal(loop_backend(), "epoll");
    unsetenv("TIDE_POLLER");
    assert_string_equal(loop_backend(), "epoll"); /* the default */
    setenv("TIDE_POLLER", "bogus", 1);
    assert_string_equal(loop_backend(), "epoll");
    setenv("TIDE_POLLER", "auto", 1);
    assert_string_equal(loop_backend(), uring_ok ? "io_uring" : "epoll");
    setenv("TIDE_POLLER", "io_uring", 1);
    assert_string_equal(loop_backend(), uring_ok ? "io_uring" : "epoll");
}

/* Echo through a socketpair: the loop works whatever backend it got. */
static int echo_main(void *arg)
{
    int sv[2];
    char buf[8];

    (void)arg;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (tide_write(sv[0], "ping", 4) != 4 || tide_read(sv[1], buf, sizeof buf) != 4)
        return -EIO;
    tide_close(sv[0]);
    if (tide_read(sv[1], buf, sizeof buf) != 0)
        return -EIO;
    tide_close(sv[1]);
    return memcmp(buf, "ping", 4) == 0 ? 7 : -EIO;
}

static void test_fallback(void **state)
{
    static const int errs[] = {EPERM, ENOSYS, ENOMEM};
    size_t i;
    int fds = tt_count_fds();

    (void)state;
    for (i = 0; i < TT_ARRAY_LEN(errs); i++) {
        tide__uring_fail_setup = errs[i];
        assert_string_equal(loop_backend(), "epoll");
        assert_int_equal(tide_run(echo_main, NULL), 7);
    }
    tide__uring_fail_setup = 0;
    assert_int_equal(tide_run(echo_main, NULL), 7);
    assert_int_equal(tt_count_fds(), fds);
}

/* A loop made on one thread and run on others (the ring fd registered by
 * the first is not the others' to use). */
typedef struct on_thread {
    tide_loop *loop;
    tide_task *t;
} on_thread;

static void *run_on_thread(void *arg)
{
    on_thread *o = arg;
    return (void *)(intptr_t)tide_loop_run_until_complete(o->loop, o->t);
}

static void test_other_threads(void **state)
{
    tide_loop *mine;
    on_thread o;
    pthread_t th;
    void *rc;

    (void)state;
    assert_int_equal(tide_loop_new(&o.loop), 0);
    assert_int_equal(tide_loop_new(&mine), 0); /* its ring registered here too */
    assert_string_equal(tide_loop_poller(o.loop), uring_ok ? "io_uring" : "epoll");
    /* the task is made here (the loop's owner until it runs elsewhere) */
    assert_int_equal(tide_create_task_ex(&o.t, o.loop, echo_main, NULL, NULL), 0);
    assert_int_equal(pthread_create(&th, NULL, run_on_thread, &o), 0);
    assert_int_equal(pthread_join(th, &rc), 0);
    assert_int_equal((intptr_t)rc, 7); /* echo_main's result; t released */
    tide_loop_free(o.loop);
    tide_loop_free(mine);
}

/* ------------------------------------------------------- fd life cycle */

/* A closed fd lets its file go at once (a poll request holds the file). */
static int close_main(void *arg)
{
    int sv[2], *peer = arg;
    char c;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    *peer = sv[1];
    /* register sv[0] and let the loop submit its poll */
    if (tide_write(sv[0], "x", 1) != 1 || tide_sleep(1) != 0)
        return -EIO;
    if (tide_read(sv[1], &c, 1) != 1) /* sv[1] registered too */
        return -EIO;
    if (tide_close(sv[0]) != 0)
        return -EIO;
    return 0;
}

static void test_close_releases(void **state)
{
    int peer = -1;
    struct pollfd pf;
    char c;

    (void)state;
    assert_string_equal(loop_backend(), uring_ok ? "io_uring" : "epoll");
    assert_int_equal(tide_run(close_main, &peer), 0);
    /* the loop is gone; peer (not closed by tide) sees EOF right away */
    pf.fd = peer;
    pf.events = POLLIN;
    assert_int_equal(poll(&pf, 1, 0), 1);
    assert_int_equal(read(peer, &c, 1), 0);
    close(peer);
}

static int close_in_run_main(void *arg)
{
    int sv[2];
    struct pollfd pf;
    char c;

    (void)arg;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (tide_write(sv[0], "x", 1) != 1 || tide_sleep(1) != 0)
        return -EIO;
    if (tide_close(sv[0]) != 0)
        return -EIO;
    /* still inside the run: the peer must see the close without the loop
     * going round again */
    pf.fd = sv[1];
    pf.events = POLLIN;
    if (poll(&pf, 1, 0) != 1 || read(sv[1], &c, 1) != 1 || read(sv[1], &c, 1) != 0)
        return -EIO;
    close(sv[1]);
    return 0;
}

static void test_close_in_run(void **state)
{
    (void)state;
    assert_int_equal(tide_run(close_in_run_main, NULL), 0);
}

typedef struct hup_ctx {
    int fd;
    int64_t delay_ms;
} hup_ctx;

static int closer(void *arg)
{
    hup_ctx *h = arg;
    tide_sleep(h->delay_ms);
    return tide_close(h->fd);
}

static int hup_main(void *arg)
{
    int sv[2];
    char buf[4];
    hup_ctx h;
    tide_task *t;
    ssize_t n;

    (void)arg;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    h.fd = sv[1];
    h.delay_ms = 20;
    if (tide_create_task(&t, closer, &h) < 0)
        return -ENOMEM;
    n = tide_read(sv[0], buf, sizeof buf); /* waits: the peer hangs up */
    if (tide_await(t) != 0)
        return -EIO;
    tide_close(sv[0]);
    return n == 0 ? 0 : -EIO;
}

static void test_hangup(void **state)
{
    (void)state;
    assert_int_equal(tide_run(hup_main, NULL), 0);
}

/* A TCP reset while a reader waits: the error edge wakes it. */
static int reset_main(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    struct linger lg = {1, 0};
    int lfd, cfd, sfd, rc = 0;
    char buf[4];
    hup_ctx h;
    tide_task *t;
    ssize_t n;

    (void)arg;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        return -errno;
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, sizeof a) < 0)
        return -errno;
    sfd = accept(lfd, NULL, NULL);
    if (sfd < 0)
        return -errno;
    setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    h.fd = sfd;
    h.delay_ms = 20;
    if (tide_create_task(&t, closer, &h) < 0)
        return -ENOMEM;
    n = tide_read(cfd, buf, sizeof buf);
    if (n != -ECONNRESET)
        rc = -EPROTO;
    if (tide_await(t) != 0)
        rc = -EIO;
    tide_close(cfd);
    close(lfd);
    return rc;
}

static void test_reset(void **state)
{
    (void)state;
    assert_int_equal(tide_run(reset_main, NULL), 0);
}

typedef struct writer_ctx {
    int fd;
    int64_t delay_ms;
    const char *msg;
} writer_ctx;

static int late_writer(void *arg)
{
    writer_ctx *w = arg;
    tide_sleep(w->delay_ms);
    return (int)tide_write(w->fd, w->msg, strlen(w->msg));
}

/* An fd closed while the CQ may still hold its completions, and its number
 * reused at once: the new fd gets only its own events. */
static int reuse_main(void *arg)
{
    int sv[2], sv2[2], round;
    char buf[16];
    writer_ctx w;
    tide_task *t;

    (void)arg;
    for (round = 0; round < 50; round++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            return -errno;
        /* readable edges queued for sv[0], then closed unread */
        if (tide_write(sv[1], "old", 3) != 3 || tide_wait_readable(sv[0]) != 0)
            return -EIO;
        if (tide_write(sv[1], "old", 3) != 3)
            return -EIO;
        tide_close(sv[0]);
        tide_close(sv[1]);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv2) < 0)
            return -errno;
        if (sv2[0] != sv[0] && sv2[1] != sv[0])
            return -EAGAIN; /* numbers not reused: the test means nothing */
        w.fd = sv2[1];
        w.delay_ms = round % 3;
        w.msg = "new";
        if (tide_create_task(&t, late_writer, &w) < 0)
            return -ENOMEM;
        if (tide_read(sv2[0], buf, sizeof buf) != 3 || memcmp(buf, "new", 3))
            return -EIO;
        if (tide_await(t) != 3)
            return -EIO;
        tide_close(sv2[0]);
        tide_close(sv2[1]);
    }
    return 0;
}

static void test_reuse(void **state)
{
    (void)state;
    assert_int_equal(tide_run(reuse_main, NULL), 0);
}

/* --------------------------------------------------- wake-ups, timeouts */

static int thread_sleep(void *arg)
{
    (void)arg;
    usleep(20000);
    return 5;
}

static void on_cb(void *arg)
{
    ++*(int *)arg;
}

typedef struct poster {
    tide_loop *loop;
    int *count;
    int n;
} poster;

static void *post_thread(void *arg)
{
    poster *p = arg;
    int i;

    for (i = 0; i < p->n; i++) {
        if (tide_call_soon_threadsafe(p->loop, on_cb, p->count) != 0)
            abort();
        if (i % 16 == 0)
            usleep(200);
    }
    return NULL;
}

static int wake_main(void *arg)
{
    static int count;
    poster p;
    pthread_t th;
    int64_t t0;
    int i;

    (void)arg;
    for (i = 0; i < 5; i++) { /* the loop sleeps on the ring: a worker wakes it */
        t0 = mono_ns();
        if (tide_to_thread(thread_sleep, NULL) != 5)
            return -EIO;
        if (mono_ns() - t0 > 2000000000)
            return -ETIMEDOUT;
    }
    count = 0;
    p.loop = NULL;
    p.count = &count;
    p.n = 500;
    p.loop = tide_loop_current();
    if (pthread_create(&th, NULL, post_thread, &p) != 0)
        return -EAGAIN;
    t0 = mono_ns();
    while (count < p.n && mono_ns() - t0 < 10000000000)
        tide_sleep(1000); /* only the wake-ups end these sleeps early */
    pthread_join(th, NULL);
    tide_sleep(0);
    return count == p.n ? 0 : -EIO;
}

static void test_wakeup(void **state)
{
    (void)state;
    assert_int_equal(tide_run(wake_main, NULL), 0);
}

static int timeout_main(void *arg)
{
    int64_t t0, dt;

    (void)arg;
    t0 = mono_ns();
    if (tide_sleep_ns(1500000) != 0)
        return -EIO;
    dt = mono_ns() - t0;
    if (dt < 1500000 || dt > 500000000)
        return -ERANGE;
    t0 = mono_ns();
    if (tide_sleep(30) != 0)
        return -EIO;
    dt = mono_ns() - t0;
    if (dt < 30000000 || dt > 1000000000)
        return -ERANGE;
    return 0;
}

static void test_timeouts(void **state)
{
    (void)state;
    assert_int_equal(tide_run(timeout_main, NULL), 0);
}

/* --------------------------------------------------------------- scale */

#define NPAIRS 300 /* more than the SQ's 256 entries: adds flush a full SQ */

static int pong(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    if (tide_read(fd, &c, 1) != 1)
        return -EIO;
    return tide_write(fd, &c, 1) == 1 ? 0 : -EIO;
}

static int many_main(void *arg)
{
    static int sv[NPAIRS][2];
    static tide_task *t[NPAIRS];
    int i, rc = 0;
    char c;

    (void)arg;
    for (i = 0; i < NPAIRS; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) < 0)
            return -errno;
        if (tide_create_task(&t[i], pong, (void *)(intptr_t)sv[i][1]) < 0)
            return -ENOMEM;
    }
    tide_sleep(1); /* every pong waits: 300 polls queued at once */
    for (i = 0; i < NPAIRS; i++)
        if (tide_write(sv[i][0], "p", 1) != 1)
            rc = -EIO;
    for (i = 0; i < NPAIRS; i++) {
        if (tide_read(sv[i][0], &c, 1) != 1 || c != 'p')
            rc = -EIO;
        if (tide_await(t[i]) != 0)
            rc = -EIO;
        tide_close(sv[i][0]);
        tide_close(sv[i][1]);
    }
    return rc;
}

static void test_many_fds(void **state)
{
    (void)state;
    assert_int_equal(tide_run(many_main, NULL), 0);
}

/* /dev/null: epoll refuses it, so does the ring backend: always ready. */
static int devnull_main(void *arg)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    char buf[4];

    (void)arg;
    if (fd < 0)
        return -errno;
    if (tide_write(fd, "abc", 3) != 3 || tide_read(fd, buf, sizeof buf) != 0)
        return -EIO;
    return tide_close(fd);
}

static void test_devnull(void **state)
{
    (void)state;
    assert_int_equal(tide_run(devnull_main, NULL), 0);
}

/* fork: the child makes a ring of its own; the parent's polls survive. */
static int fork_main(void *arg)
{
    int sv[2], st;
    char c;
    pid_t pid;

    (void)arg;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (tide_write(sv[0], "a", 1) != 1 || tide_read(sv[1], &c, 1) != 1)
        return -EIO;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* the child: its tide calls go through a new poller */
        if (tide_write(sv[1], "b", 1) != 1)
            _exit(1);
        _exit(0);
    }
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -ECHILD;
    if (tide_read(sv[0], &c, 1) != 1 || c != 'b')
        return -EIO;
    tide_close(sv[0]);
    tide_close(sv[1]);
    return 0;
}

static void test_fork(void **state)
{
    (void)state;
    assert_int_equal(tide_run(fork_main, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice),
        cmocka_unit_test_setup(test_fallback, force_uring),
        cmocka_unit_test_setup(test_other_threads, force_uring),
        cmocka_unit_test_setup(test_close_releases, force_uring),
        cmocka_unit_test_setup(test_close_in_run, force_uring),
        cmocka_unit_test_setup(test_hangup, force_uring),
        cmocka_unit_test_setup(test_reset, force_uring),
        cmocka_unit_test_setup(test_reuse, force_uring),
        cmocka_unit_test_setup(test_wakeup, force_uring),
        cmocka_unit_test_setup(test_timeouts, force_uring),
        cmocka_unit_test_setup(test_many_fds, force_uring),
        cmocka_unit_test_setup(test_devnull, force_uring),
        cmocka_unit_test_setup(test_fork, force_uring),
    };
    tide__poller p;

    /* Whether this kernel lets us have io_uring at all (seccomp, old
     * kernels): without it every test still runs, on the epoll fallback. */
    memset(&p, 0, sizeof p);
    if (tide__uring_init(&p) == 0) {
        uring_ok = 1;
        tide__uring_free(&p);
    } else {
        fprintf(stderr, "test_uring: io_uring unavailable here: testing the fallback\n");
    }
    if (getenv("TIDE_TEST_FILTER")) /* e.g. TIDE_TEST_FILTER=test_reuse */
        cmocka_set_test_filter(getenv("TIDE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
