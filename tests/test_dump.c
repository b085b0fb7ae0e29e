/*
 * Task dumps and debug mode: the dump's content for every wait kind (names,
 * reasons, frames of the test's own functions, grouping), 10 000 tasks in
 * under 50 ms, the wait info call, and debug mode's reports (a slow step
 * caught while stuck, leaks at the loop's end, the dump signal), the
 * exception handler and the metrics.
 */
#include "util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tide.h"
#include "tide_int.h"
#include "poll.h"

/* Reads all of a memfd back (malloc'd, NUL-terminated). */
static char *slurp(int fd)
{
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
    buf[len] = '\0';
    return buf;
}

/* The line of the dump that starts with `task <id> "name"`. */
static const char *task_line(const char *dump, const char *name)
{
    char key[96];
    const char *p = dump;
    snprintf(key, sizeof key, "\"%s\" ", name);
    while ((p = strstr(p, key))) {
        const char *ls = p;
        while (ls > dump && ls[-1] != '\n')
            ls--;
        if (strstr(ls, "task ") && strstr(ls, "task ") < p)
            return ls;
        p++;
    }
    return NULL;
}

static void expect_line(const char *dump, const char *name, const char *what)
{
    const char *l = task_line(dump, name);
    if (!l)
        fail_msg("no line for task %s in:\n%s", name, dump);
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    char *line = strndup(l, n);
    if (!strstr(line, what))
        fail_msg("task %s: '%s' not in: %s", name, what, line);
    free(line);
}

/* --------------------------------------------------- one task per wait kind */

/* Built with TIDE_FRAME_POINTERS=OFF the backtraces are cut short: the
 * frame names are not checked there (the wait reasons still are). */
#ifdef TIDE_NO_FRAME_POINTERS
#define FRAMES 0
#else
#define FRAMES 1
#endif

static struct {
    tide_lock lock, cond_lock;
    tide_event ev;
    tide_cond cond;
    tide_sem sem;
    tide_barrier bar;
    tide_queue *qfull, *qempty;
    tide_future *fut;
    tide_task *sleeper2;
    int sp[2];
    int pool_pipe[2];
    int tcp_fd;
    tide_process *proc;
} S;

static volatile int sink;

static __attribute__((noinline)) int body_sleep(void *a)
{
    (void)a;
    sink += tide_sleep(60000);
    return 0;
}
static __attribute__((noinline)) int body_lock(void *a)
{
    (void)a;
    int rc = tide_lock_acquire(&S.lock);
    if (rc == 0)
        tide_lock_release(&S.lock);
    sink += rc;
    return 0;
}
static __attribute__((noinline)) int body_event(void *a)
{
    (void)a;
    sink += tide_event_wait(&S.ev);
    return 0;
}
static __attribute__((noinline)) int body_cond(void *a)
{
    (void)a;
    if (tide_lock_acquire(&S.cond_lock) == 0) {
        sink += tide_cond_wait(&S.cond);
        if (tide_lock_locked(&S.cond_lock))
            tide_lock_release(&S.cond_lock);
    }
    return 0;
}
static __attribute__((noinline)) int body_sem(void *a)
{
    (void)a;
    sink += tide_sem_acquire(&S.sem);
    return 0;
}
static __attribute__((noinline)) int body_barrier(void *a)
{
    (void)a;
    sink += tide_barrier_wait(&S.bar);
    return 0;
}
static __attribute__((noinline)) int body_qput(void *a)
{
    (void)a;
    sink += tide_queue_put(S.qfull, &S);
    return 0;
}
static __attribute__((noinline)) int body_qget(void *a)
{
    void *item;
    (void)a;
    sink += tide_queue_get(S.qempty, &item);
    return 0;
}
static __attribute__((noinline)) int body_future(void *a)
{
    void *v;
    (void)a;
    sink += tide_future_await(S.fut, &v);
    return 0;
}
static __attribute__((noinline)) int body_await(void *a)
{
    (void)a;
    sink += tide_await(S.sleeper2);
    return 0;
}
static __attribute__((noinline)) int body_member(void *a)
{
    (void)a;
    sink += tide_sleep(60000);
    return 0;
}
static __attribute__((noinline)) int body_group(void *a)
{
    tide_group g;
    tide_task_opts o;
    (void)a;
    tide_group_init(&g);
    tide_task_opts_init(&o);
    o.name = "member";
    tide_group_spawn(&g, body_member, NULL, &o, NULL);
    sink += tide_group_wait(&g);
    return 0;
}
static int pool_job(void *a)
{
    char c;
    (void)a;
    return (int)read(S.pool_pipe[0], &c, 1);
}
static __attribute__((noinline)) int body_pool(void *a)
{
    (void)a;
    sink += tide_to_thread(pool_job, NULL);
    return 0;
}
static __attribute__((noinline)) int body_fdread(void *a)
{
    char c;
    (void)a;
    sink += (int)tide_read(S.sp[0], &c, 1);
    return 0;
}
static __attribute__((noinline)) int body_tcp(void *a)
{
    char c;
    (void)a;
    sink += (int)tide_read(S.tcp_fd, &c, 1);
    return 0;
}
static __attribute__((noinline)) int body_signal(void *a)
{
    sigset_t set;
    (void)a;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sink += tide_signal_wait(&set);
    return 0;
}
static __attribute__((noinline)) int body_process(void *a)
{
    int st;
    (void)a;
    sink += tide_process_wait(S.proc, &st);
    return 0;
}
static __attribute__((noinline)) int body_scoped(void *a)
{
    tide_scope s;
    (void)a;
    tide_timeout_begin(&s, 50000);
    sink += tide_sleep(60000);
    tide_timeout_end(&s);
    return 0;
}

static const struct kind {
    const char *name;
    tide_fn fn;
    const char *expect;
} kinds[] = {
    {"sleeper", body_sleep, "waiting on sleep (59"},
    {"locker", body_lock, "waiting on lock 0x"},
    {"eventer", body_event, "waiting on event 0x"},
    {"conder", body_cond, "waiting on condition 0x"},
    {"semer", body_sem, "waiting on semaphore 0x"},
    {"barrierer", body_barrier, "waiting on barrier 0x"},
    {"putter", body_qput, "waiting on queue-put 0x"},
    {"getter", body_qget, "waiting on queue-get 0x"},
    {"futurer", body_future, "waiting on future 0x"},
    {"awaiter", body_await, "waiting on task "},
    {"grouper", body_group, "waiting on group 0x"},
    {"pooler", body_pool, "waiting on pool-job 0x"},
    {"fdreader", body_fdread, "waiting on fd-read fd "},
    {"tcpreader", body_tcp, "(peer 127.0.0.1:"},
    {"signaller", body_signal, "waiting on signal 12"},
    {"processer", body_process, "waiting on process 0x"},
    {"scoped", body_scoped, ", scope deadline in 49"},
};

#define NKINDS (sizeof kinds / sizeof kinds[0])
#define NSAME 5

static const char *const body_names[NKINDS] = {
    "body_sleep",  "body_lock",   "body_event",  "body_cond",   "body_sem",  "body_barrier",
    "body_qput",   "body_qget",   "body_future", "body_await",  "body_group", "body_pool",
    "body_fdread", "body_tcp",    "body_signal", "body_process", "body_scoped",
};

static int dump_main(void *arg)
{
    tide_task *ts[NKINDS + NSAME + 1];
    tide_task_opts o;
    size_t i, n = 0;
    int lfd, afd, rc;
    char *dump;
    (void)arg;

    memset(&S, 0, sizeof S);
    tide_lock_init(&S.lock);
    tide_lock_init(&S.cond_lock);
    tide_event_init(&S.ev);
    tide_cond_init(&S.cond, &S.cond_lock);
    tide_sem_init(&S.sem, 0);
    tide_barrier_init(&S.bar, 2);
    tide_queue_opts qo;
    tide_queue_opts_init(&qo);
    qo.maxsize = 1;
    assert_int_equal(tide_queue_new(&S.qfull, &qo), 0);
    assert_int_equal(tide_queue_put_nowait(S.qfull, &S), 0);
    assert_int_equal(tide_queue_new(&S.qempty, NULL), 0);
    assert_int_equal(tide_future_new(&S.fut), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, S.sp), 0);
    assert_int_equal(pipe(S.pool_pipe), 0);
    lfd = tide_tcp_listen("127.0.0.1", 0, NULL);
    assert_true(lfd >= 0);
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
    S.tcp_fd = tide_tcp_connect("127.0.0.1", ntohs(sin.sin_port));
    assert_true(S.tcp_fd >= 0);
    afd = tide_accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    const char *argv[] = {"sleep", "30", NULL};
    assert_int_equal(tide_process_spawn(&S.proc, argv, NULL), 0);
    assert_int_equal(tide_lock_acquire(&S.lock), 0);

    int64_t t0 = tide_now();
    tide_task_opts_init(&o);
    o.name = "sleeper2";
    assert_int_equal(tide_create_task_ex(&S.sleeper2, NULL, body_sleep, NULL, &o), 0);
    for (i = 0; i < NKINDS; i++) {
        o.name = kinds[i].name;
        assert_int_equal(tide_create_task_ex(&ts[n++], NULL, kinds[i].fn, NULL, &o), 0);
    }
    for (i = 0; i < NSAME; i++) {
        o.name = "same";
        assert_int_equal(tide_create_task_ex(&ts[n++], NULL, body_event, NULL, &o), 0);
    }
    assert_int_equal(tide_sleep(50), 0); /* everything blocks; the pool job starts */

    int mfd = memfd_create("dump", 0);
    assert_true(mfd >= 0);
    assert_int_equal(tide_loop_dump(NULL, mfd), 0);
    dump = slurp(mfd);
    close(mfd);
    for (i = 0; i < NKINDS; i++)
        expect_line(dump, kinds[i].name, kinds[i].expect);
    for (i = 0; i < NKINDS; i++)
        if (FRAMES && !strstr(dump, body_names[i]))
            fail_msg("no frame of %s in:\n%s", body_names[i], dump);
    expect_line(dump, "sleeper2", "awaited by task");
    expect_line(dump, "member", "in group 0x");
    expect_line(dump, "fdreader", "(unix peer)");
    /* the main task is running: its own frames come from the live stack */
    assert_true(!FRAMES || strstr(dump, "dump_main"));
    /* the event waiters with the same stack are grouped (5 + "eventer") */
    assert_true(!FRAMES || strstr(dump, "6 tasks with this stack:"));
    if (getenv("TIDE_DUMP_PRINT"))
        fputs(dump, stderr);
    free(dump);

    /* wait info */
    tide_wait_info wi;
    assert_int_equal(tide_task_wait_info(ts[1], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_LOCK);
    assert_ptr_equal(wi.object, &S.lock);
    /* since when: the step in which it suspended (after t0, before the
     * 50 ms sleep above ended) */
    assert_true(wi.since_ms >= t0);
    assert_true(wi.since_ms < tide_now());
    /* the waitlist waits of sync.c find their object from the waiter */
    assert_int_equal(tide_task_wait_info(ts[2], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_EVENT);
    assert_ptr_equal(wi.object, &S.ev);
    assert_int_equal(wi.fd, -1);
    assert_int_equal(tide_task_wait_info(ts[3], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_COND);
    assert_ptr_equal(wi.object, &S.cond);
    assert_int_equal(tide_task_wait_info(ts[4], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_SEM);
    assert_ptr_equal(wi.object, &S.sem);
    assert_int_equal(tide_task_wait_info(ts[7], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_QUEUE_GET);
    assert_ptr_equal(wi.object, S.qempty);
    assert_int_equal(tide_task_wait_info(ts[12], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_FD_READ);
    assert_int_equal(wi.fd, S.sp[0]);
    assert_null(wi.object);
    /* a signal wait reads an fd, and says "signal" with its set */
    assert_int_equal(tide_task_wait_info(ts[14], &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_SIGNAL);
    assert_int_equal(wi.fd, -1);
    assert_non_null(wi.object);
    assert_int_equal(sigismember((const sigset_t *)wi.object, SIGUSR2), 1);
    assert_int_equal(tide_task_wait_info(tide_current_task(), &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_NONE);
    assert_int_equal(tide_task_wait_info(NULL, &wi), -EINVAL);
    assert_int_equal(tide_task_wait_info(ts[0], NULL), -EINVAL);
    assert_string_equal(tide_wait_kind_name(TIDE_WAIT_SEM), "semaphore");
    assert_string_equal(tide_wait_kind_name((tide_wait_kind)999), "?");
    assert_int_equal(tide_loop_dump(NULL, -1), -EINVAL);

    /* tear down: everything is cancelled and awaited, but for the pool
     * job's task: its job is let finish (a cancelled tide_to_thread returns
     * at once while the worker may still be in read(), and closing the
     * pipe under it is a race that TSan reports) */
    assert_int_equal(write(S.pool_pipe[1], "x", 1), 1);
    for (i = 0; i < n; i++)
        if (i >= NKINDS || kinds[i].fn != body_pool)
            tide_cancel(ts[i]);
    tide_process_kill(S.proc, SIGKILL);
    for (i = 0; i < n; i++)
        (void)tide_await(ts[i]);
    tide_cancel(S.sleeper2);
    (void)tide_await(S.sleeper2);
    int st;
    (void)tide_process_wait(S.proc, &st);
    tide_process_free(S.proc);
    tide_lock_release(&S.lock);
    tide_future_free(S.fut);
    tide_queue_free(S.qfull);
    tide_queue_free(S.qempty);
    tide_close(S.sp[0]);
    close(S.sp[1]);
    close(S.pool_pipe[0]);
    close(S.pool_pipe[1]);
    tide_close(S.tcp_fd);
    tide_close(afd);
    rc = tide_close(lfd);
    return rc;
}

static void test_dump_wait_kinds(void **state)
{
    (void)state;
    int fds = tt_count_fds();
    assert_int_equal(tide_run(dump_main, NULL), 0);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------------------- 10 000 tasks, timed */

static tide_event big_ev;

static __attribute__((noinline)) int big_body(void *a)
{
    (void)a;
    sink += tide_event_wait(&big_ev);
    return 0;
}

static int big_main(void *arg)
{
    size_t n = tt_under_valgrind() || tt_under_tsan() ? 1000 : 10000, i; /* TSan: fibers count as threads */
    tide_task **ts = calloc(n, sizeof *ts);
    tide_task_opts o;
    (void)arg;
    assert_non_null(ts);
    tide_event_init(&big_ev);
    tide_task_opts_init(&o);
    o.stack_size = TIDE_MIN_STACK_SIZE;
    for (i = 0; i < n; i++)
        assert_int_equal(tide_create_task_ex(&ts[i], NULL, big_body, NULL, &o), 0);
    assert_int_equal(tide_sleep(1), 0);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    int mfd = memfd_create("dump", 0);
    assert_int_equal(tide_loop_dump(NULL, mfd), 0); /* warm: symbol tables */
    char *d = slurp(mfd);
    char want[64];
    snprintf(want, sizeof want, "%zu tasks with this stack:", n);
    assert_true(!FRAMES || strstr(d, want));
    free(d);
    close(mfd);
    /* CPU time of this thread, best of 3: what the dump costs, not how long
     * a loaded machine kept us off the CPU. */
    int64_t best = INT64_MAX;
    for (int rep = 0; rep < 3; rep++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        assert_int_equal(tide_loop_dump(NULL, fd), 0);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        int64_t dt = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
        if (dt < best)
            best = dt;
    }
    close(fd);
    fprintf(stderr, "dump of %zu tasks: %.1f ms of CPU\n", n, best / 1e6);
    /* The aim holds natively; emulators (qemu-aarch64 in CI), valgrind and
     * sanitizers only print the figure. */
#if !defined(TT_ASAN) && !defined(TT_TSAN) && defined(__x86_64__)
    if (!tt_under_valgrind() && !getenv("TIDE_TEST_SLOW"))
        assert_true(best < 50 * 1000000LL);
#endif
    tide_event_set(&big_ev);
    for (i = 0; i < n; i++)
        assert_int_equal(tide_await(ts[i]), 0);
    free(ts);
    return 0;
}

static void test_dump_10k(void **state)
{
    (void)state;
    assert_int_equal(tide_run(big_main, NULL), 0);
}

/* ------------------------------------------------------------- debug mode */

static __attribute__((noinline)) void stuck_in_busy_work(int64_t ms)
{
    int64_t end = tide__clock_ns() + ms * 1000000;
    while (tide__clock_ns() < end) {
        for (volatile int i = 0; i < 20000; i++)
            ;
#ifdef TT_TSAN
        usleep(100); /* TSan delivers signals only inside interceptors */
#endif
    }
}

static __attribute__((noinline)) int slow_body(void *a)
{
    (void)a;
    stuck_in_busy_work(400);
    sink += tide_sleep(0);
    return 0;
}

static int leaked_body(void *a)
{
    (void)a;
    return 7;
}

static int failing_body(void *a)
{
    (void)a;
    return -EIO;
}

static int exc_calls, exc_err;
static uint64_t exc_id;
static void on_exc(tide_loop *loop, tide_task *t, int err, void *arg)
{
    assert_non_null(loop);
    assert_ptr_equal(arg, &exc_calls);
    exc_calls++;
    exc_err = err;
    exc_id = tide_task_id(t);
}

static __attribute__((noinline)) void make_leak(tide_loop *loop)
{
    tide_task *t;
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = "forgotten";
    assert_int_equal(tide_create_task_ex(&t, loop, leaked_body, NULL, &o), 0);
}

static void test_debug_mode(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t, *f;
    tide_debug_opts o;
    tide_loop_metrics m;
    int mfd = memfd_create("report", 0);
    int sp[2];

    assert_true(mfd >= 0);
    assert_int_equal(tide_loop_new(&loop), 0);
    tide_debug_opts_init(&o);
    assert_int_equal(o.slow_step_ms, 100);
    o.report_fd = mfd;
    o.slow_step_ms = -1;
    assert_int_equal(tide_loop_set_debug(loop, &o), -EINVAL);
    o.slow_step_ms = 100;
    o.watchdog_signal = SIGKILL;
    assert_int_equal(tide_loop_set_debug(loop, &o), -EINVAL);
    o.watchdog_signal = SIGURG;
    assert_int_equal(tide_loop_set_debug(NULL, &o), -EINVAL);
    assert_int_equal(tide_loop_set_debug(loop, &o), 0);
    assert_int_equal(tide_loop_set_debug(loop, &o), -EBUSY);
    assert_int_equal(tide_loop_set_exception_handler(NULL, on_exc, NULL), -EINVAL);
    assert_int_equal(tide_loop_set_exception_handler(loop, on_exc, &exc_calls), 0);

    tide_task_opts to;
    tide_task_opts_init(&to);
    to.name = "slowpoke";
    assert_int_equal(tide_create_task_ex(&t, loop, slow_body, NULL, &to), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    /* the exception handler instead of stderr */
    assert_int_equal(tide_create_task_ex(&f, loop, failing_body, NULL, NULL), 0);
    assert_int_equal(tide_detach(f), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(exc_calls, 1);
    assert_int_equal(exc_err, -EIO);
    assert_true(exc_id > 0);

    assert_int_equal(tide_loop_get_metrics(loop, &m), 0);
    assert_true(m.iterations > 0);
    assert_true(m.steps >= 2);
    assert_true(m.longest_step_ns >= 400 * 1000000LL);
    assert_int_equal(m.longest_step_task, 1);
    assert_true(m.slow_steps >= 1);
    assert_true(m.busy_ns >= m.longest_step_ns);
    assert_int_equal(m.tasks_created, 2);
    assert_int_equal(tide_loop_get_metrics(loop, NULL), -EINVAL);

    /* leaks at the end: a task nobody awaited, a future nobody awaited
     * (one awaited, one freed: not reported) */
    make_leak(loop);
    tide_future *lost, *seen, *gone;
    assert_int_equal(tide_future_new_on(&lost, loop), 0);
    assert_int_equal(tide_future_new_on(&seen, loop), 0);
    assert_int_equal(tide_future_new_on(&gone, loop), 0);
    tide_future_set_result(seen, NULL);
    assert_int_equal(tide_future_result(seen, NULL), 0);
    tide_future_free(gone);
    tide_future_set_result(lost, NULL); /* done: freeing it later needs no loop */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(tide_loop_run(loop), 0);
    tide_loop_free(loop);
    /* the leaked fd was registered only if a task touched it: do it here */
    close(sp[0]);
    close(sp[1]);

    char *r = slurp(mfd);
    close(mfd);
    if (getenv("TIDE_DUMP_PRINT"))
        fputs(r, stderr);
    /* caught while still stuck, with the stuck function in its stack */
    const char *stall = strstr(r, "tide: slow step: task 1 \"slowpoke\" has run for");
    if (!stall)
        fail_msg("no stall report in:\n%s", r);
#ifndef TT_TSAN /* there the handler runs inside usleep: libc's frames only */
    assert_true(!FRAMES || strstr(stall, "stuck_in_busy_work"));
    assert_true(!FRAMES || strstr(stall, "slow_body"));
#endif
    const char *leak = strstr(r, "tide: leak: task 3 \"forgotten\" was never awaited nor detached");
    if (!leak)
        fail_msg("no leak report in:\n%s", r);
    assert_true(!FRAMES || strstr(leak, "make_leak"));
    char want[64];
    snprintf(want, sizeof want, "tide: leak: future %p was never awaited", (void *)lost);
    const char *fl = strstr(r, want);
    if (!fl)
        fail_msg("no future leak report in:\n%s", r);
    assert_true(!FRAMES || strstr(fl, "test_debug_mode"));
    snprintf(want, sizeof want, "future %p", (void *)seen);
    assert_null(strstr(r, want));
    free(r);
    tide_future_free(lost);
    tide_future_free(seen);
}

/* Successive waits of one task: each shows its own kind, object and time,
 * never the previous one's (the kind is not cleared after a wait). */
static tide_sem seq_sem;
static tide_future *seq_fut;
static int seq_sp[2];
static int seq_body(void *a)
{
    char c;
    (void)a;
    sink += tide_sem_acquire(&seq_sem);
    sink += tide_future_await(seq_fut, NULL);
    sink += (int)tide_read(seq_sp[0], &c, 1);
    return 0;
}

static int seq_main(void *arg)
{
    tide_task *t;
    tide_wait_info wi;
    int64_t t1, since;
    (void)arg;

    tide_sem_init(&seq_sem, 0);
    assert_int_equal(tide_future_new(&seq_fut), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, seq_sp), 0);
    assert_int_equal(tide_create_task(&t, seq_body, NULL), 0);
    assert_int_equal(tide_task_wait_info(t, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_NONE); /* not started */
    assert_int_equal(tide_sleep(0), 0);
    assert_int_equal(tide_task_wait_info(t, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_SEM);
    assert_ptr_equal(wi.object, &seq_sem);
    assert_int_equal(tide_sem_release(&seq_sem), 0);
    assert_int_equal(tide_task_wait_info(t, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_NONE); /* woken: ready, not waiting */
    assert_int_equal(tide_sleep(5), 0); /* t suspends on the future meanwhile */
    t1 = tide_now();
    assert_int_equal(tide_task_wait_info(t, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_FUTURE);
    assert_ptr_equal(wi.object, seq_fut);
    since = wi.since_ms;
    assert_true(since < t1); /* it began before our 5 ms sleep ended */
    /* A kind that does not match the suspension (as a suspending call that
     * named no reason would leave from an earlier wait) is shown as none,
     * never used to read a wrong object: for the kinds whose object the
     * dump finds from the unlink argument.  fd waits record their tide__fd
     * (TIDE__WAIT_ON, as the other kinds): scripts/check_wait_reasons.py
     * sees that no suspension leaves a kind unnamed. */
    static const uint8_t wrong[] = {TIDE_WAIT_LOCK, TIDE_WAIT_EVENT, TIDE_WAIT_COND,
                                    TIDE_WAIT_SEM};
    for (size_t k = 0; k < sizeof wrong; k++) {
        t->wait_kind = wrong[k];
        assert_int_equal(tide_task_wait_info(t, &wi), 0);
        assert_int_equal(wi.kind, TIDE_WAIT_NONE);
        int mfd = memfd_create("stale", 0);
        assert_true(mfd >= 0);
        assert_int_equal(tide_loop_dump(NULL, mfd), 0);
        char *d = slurp(mfd);
        close(mfd);
        assert_non_null(strstr(d, "waiting on none"));
        free(d);
    }
    t->wait_kind = TIDE_WAIT_FUTURE;
    assert_int_equal(tide_future_set_result(seq_fut, NULL), 0);
    assert_int_equal(tide_sleep(5), 0); /* t suspends on the read meanwhile */
    assert_int_equal(tide_task_wait_info(t, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_FD_READ);
    assert_int_equal(wi.fd, seq_sp[0]);
    assert_null(wi.object);
    assert_true(wi.since_ms >= t1); /* the new wait's time, not the future's */
    assert_int_equal(write(seq_sp[1], "x", 1), 1);
    assert_int_equal(tide_await(t), 0);
    tide_future_free(seq_fut);
    tide_close(seq_sp[0]);
    close(seq_sp[1]);
    return 0;
}

static void test_dump_wait_sequence(void **state)
{
    (void)state;
    assert_int_equal(tide_run(seq_main, NULL), 0);
}

/* io_uring: a reader cancelled while its recv is in the kernel waits,
 * uncancellably, for the recv's completion (io_uring_ops.c): the dump says
 * so, with the fd, not "none". */
static int ucancel_sp[2];
static __attribute__((noinline)) int ucancel_body(void *a)
{
    char c;
    (void)a;
    return (int)tide_read(ucancel_sp[0], &c, 1);
}

static int ucancel_main(void *arg)
{
    tide_task *t;
    tide_wait_info wi;
    char *d, want[64];
    int mfd, *uring = arg;
    (void)arg;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ucancel_sp), 0);
    assert_int_equal(tide_create_task(&t, ucancel_body, NULL), 0);
    assert_int_equal(tide_sleep(1), 0); /* its recv is in flight */
    tide__fd *f = tide_loop_current()->io.fds[ucancel_sp[0]];
    *uring = f->op_reader == t;
    if (!*uring) { /* no completion operations here: nothing to see */
        tide_cancel(t);
        assert_int_equal(tide_await(t), -ECANCELED);
        goto out;
    }
    /* The cancel stays queued (the hook): t runs before the kernel has
     * ended its recv, and waits for that completion. */
    tide__uring_fail_submit = 2;
    assert_int_equal(tide_cancel(t), 0);
    assert_int_equal(tide_sleep(0), 0);
    assert_int_equal(tide_sleep(0), 0); /* t ran: it waits for the completion now */
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_WAITING);
    assert_int_equal(tide_task_wait_info(t, &wi), 0);
    assert_int_equal(wi.kind, TIDE_WAIT_FD_READ);
    assert_int_equal(wi.fd, ucancel_sp[0]);
    mfd = memfd_create("ucancel", 0);
    assert_true(mfd >= 0);
    assert_int_equal(tide_loop_dump(NULL, mfd), 0);
    d = slurp(mfd);
    close(mfd);
    snprintf(want, sizeof want, "on fd-read fd %d", ucancel_sp[0]);
    expect_line(d, tide_task_name(t), want);
    expect_line(d, tide_task_name(t), "(io_uring completion after cancel)");
    free(d);
    tide__uring_fail_submit = 0; /* the cancel goes: the recv ends, and t */
    assert_int_equal(tide_await(t), -ECANCELED);
out:
    tide_close(ucancel_sp[0]);
    close(ucancel_sp[1]);
    return 0;
}

static void test_dump_uring_cancel(void **state)
{
    int uring = 0;
    (void)state;
    setenv("TIDE_POLLER", "io_uring", 1);
    assert_int_equal(tide_run(ucancel_main, &uring), 0);
    unsetenv("TIDE_POLLER");
    if (!uring)
        print_message("io_uring completion operations unavailable: not shown\n");
}

/* An fd a task left registered is reported at the end, with where it was
 * registered. */
static int fdleak_sp[2];
static __attribute__((noinline)) int fdleak_body(void *a)
{
    char c;
    (void)a;
    tide_scope s;
    tide_timeout_begin(&s, 1);
    sink += (int)tide_read(fdleak_sp[0], &c, 1);
    tide_timeout_end(&s);
    sink += (int)tide_write(fdleak_sp[1], "x", 1); /* registered, then closed: */
    return tide_close(fdleak_sp[1]);              /* its backtrace freed (ASan) */
}

static void test_debug_fd_leak(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_debug_opts o;
    tide_task *t;
    int mfd = memfd_create("report", 0);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fdleak_sp), 0);
    assert_int_equal(tide_loop_new(&loop), 0);
    tide_debug_opts_init(&o);
    o.report_fd = mfd;
    assert_int_equal(tide_loop_set_debug(loop, &o), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, fdleak_body, NULL, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    tide_loop_free(loop);
    char *r = slurp(mfd);
    char want[96];
    snprintf(want, sizeof want, "tide: leak: fd %d is still registered", fdleak_sp[0]);
    if (getenv("TIDE_DUMP_PRINT"))
        fputs(r, stderr);
    const char *fr = strstr(r, want);
    if (!fr)
        fail_msg("no fd leak report in:\n%s", r);
    assert_non_null(strstr(fr, "registered at:"));
    if (FRAMES && !strstr(fr, "fdleak_body"))
        fail_msg("the fd's report does not name fdleak_body:\n%s", r);
    /* the other end was closed with tide_close: not reported */
    snprintf(want, sizeof want, "tide: leak: fd %d ", fdleak_sp[1]);
    assert_null(strstr(r, want));
    assert_null(strstr(r, "never awaited"));
    free(r);
    close(mfd);
    close(fdleak_sp[0]);
}

/* The dump signal dumps every task while the loop runs. */
static __attribute__((noinline)) int sig_body(void *a)
{
    (void)a;
    sink += tide_sleep(10000);
    return 0;
}

static int sig_main(void *arg)
{
    int mfd = *(int *)arg, i;
    tide_task *t;
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = "dumped-by-signal";
    assert_int_equal(tide_create_task_ex(&t, NULL, sig_body, NULL, &o), 0);
    assert_int_equal(tide_sleep(5), 0);
    kill(getpid(), SIGUSR1);
    for (i = 0; i < 400 && lseek(mfd, 0, SEEK_END) == 0; i++)
        assert_int_equal(tide_sleep(5), 0);
    tide_cancel(t);
    (void)tide_await(t);
    return 0;
}

static void test_debug_dump_signal(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_debug_opts o;
    tide_task *t;
    int mfd = memfd_create("report", 0);

    assert_int_equal(tide_loop_new(&loop), 0);
    tide_debug_opts_init(&o);
    o.report_fd = mfd;
    o.dump_signal = SIGUSR1;
    o.slow_step_ms = 0;
    assert_int_equal(tide_loop_set_debug(loop, &o), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, sig_main, &mfd, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    tide_loop_free(loop);
    char *r = slurp(mfd);
    const char *l = strstr(r, "\"dumped-by-signal\" waiting on sleep");
    if (!l)
        fail_msg("no dump in:\n%s", r);
    assert_true(!FRAMES || strstr(r, "sig_body"));
    free(r);
    close(mfd);
    /* the handler is gone with the last debug loop */
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    assert_true(sa.sa_handler == SIG_DFL);
}

/* Metrics without debug mode: counts, no timings. */
static int idle_main(void *arg)
{
    (void)arg;
    return tide_sleep(2);
}

static void test_metrics_plain(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;
    tide_loop_metrics m;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, idle_main, NULL, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 0);
    assert_int_equal(tide_loop_get_metrics(loop, &m), 0);
    assert_true(m.iterations >= 2);
    assert_int_equal(m.tasks_created, 1);
    assert_int_equal(m.tasks_live, 0);
    assert_int_equal(m.steps, 0);
    assert_int_equal(m.idle_ns, 0);
    tide_loop_free(loop);
    assert_int_equal(tide_loop_get_metrics(NULL, &m), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_wait_kinds), cmocka_unit_test(test_dump_wait_sequence),
        cmocka_unit_test(test_dump_uring_cancel),  cmocka_unit_test(test_dump_10k),
        cmocka_unit_test(test_debug_mode),       cmocka_unit_test(test_debug_fd_leak),
        cmocka_unit_test(test_debug_dump_signal), cmocka_unit_test(test_metrics_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
