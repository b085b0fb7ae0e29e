/*
 * fork() inside a task: the child goes on using tide with a poller of its
 * own, and the parent's registrations and readiness are left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

/* The child: sleeps, does I/O on a new socketpair, closes the parent's
 * socket (its copy) through tide, writes a verdict to out. */
static int child_body(int shared_fd, int out)
{
    int sp[2];
    char b[8];
    if (tide_sleep(5) != 0)
        return 10;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        return 11;
    if (tide_write(sp[0], "ping", 4) != 4)
        return 12;
    if (tide_read(sp[1], b, sizeof b) != 4 || memcmp(b, "ping", 4) != 0)
        return 13;
    tide_close(sp[0]);
    tide_close(sp[1]);
    /* With a shared epoll this would remove the parent's registration. */
    if (tide_close(shared_fd) != 0)
        return 14;
    if (tide_write(out, "ok", 2) != 2)
        return 15;
    return 0;
}

static int fork_main(void *arg)
{
    int sp[2], verdict[2];
    char b[16];
    pid_t pid;
    int st;
    tide_scope s;
    (void)arg;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(pipe(verdict), 0);
    /* Register sp[0] in the parent before the fork. */
    assert_int_equal(tide_write(sp[0], "x", 1), 1);
    assert_int_equal(tide_read(sp[1], b, 1), 1);
    /* ... and known to be drained, so the next read waits for an event. */
    assert_int_equal(tide_timeout_begin(&s, 20), 0);
    assert_int_equal(tide_read(sp[0], b, 1), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&s), -ETIMEDOUT);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(verdict[0]);
        _exit(child_body(sp[0], verdict[1]));
    }
    close(verdict[1]);
    /* The parent's loop goes on: the child's verdict arrives through it. */
    assert_int_equal(tide_timeout_begin(&s, 5000), 0);
    assert_int_equal(tide_read(verdict[0], b, sizeof b), 2);
    assert_int_equal(tide_timeout_end(&s), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The parent's registration of sp[0] survived the child's close. */
    assert_int_equal(write(sp[1], "late", 4), 4);
    assert_int_equal(tide_timeout_begin(&s, 2000), 0);
    assert_int_equal(tide_read(sp[0], b, sizeof b), 4);
    assert_int_equal(tide_timeout_end(&s), 0);
    tide_close(verdict[0]);
    tide_close(sp[0]);
    tide_close(sp[1]);
    return 0;
}

static void test_fork_in_task(void **state)
{
    (void)state;
#ifdef TT_TSAN
    /* ThreadSanitizer cannot follow a fork() made on a fiber (the task's):
     * it reports the parent's next switch as a race with the forked fiber.
     * The path is covered by every other build (ASan, valgrind, qemu). */
    skip();
#endif
    assert_int_equal(tide_run(fork_main, NULL), 0);
}

static void test_loop_fork_args(void **state)
{
    (void)state;
    tide_loop *loop;
    assert_int_equal(tide_loop_fork(NULL), -EINVAL);
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_loop_fork(loop), 0); /* no fork: nothing to do */
    tide_loop_free(loop);
}

/* A task that does I/O and sleeps: registers fds with the loop's poller. */
static int io_task(void *arg)
{
    int sp[2];
    char b[4];
    (void)arg;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        return 1;
    if (tide_write(sp[0], "abc", 3) != 3 || tide_read(sp[1], b, sizeof b) != 3)
        return 2;
    if (tide_sleep(1) != 0)
        return 3;
    tide_close(sp[0]);
    tide_close(sp[1]);
    return 0;
}

static int run_io_task(tide_loop *loop)
{
    tide_task *t;
    int rc = tide_create_task_ex(&t, loop, io_task, NULL, NULL);
    if (rc < 0)
        return rc;
    return tide_loop_run_until_complete(loop, t);
}

/* The child of test_loop_fork_emfile: with no fd left, tide_loop_fork
 * fails with -EMFILE and leaves the loop as it was; once fds are free
 * again, it succeeds and the loop works. */
static int fork_emfile_child(tide_loop *loop)
{
    struct rlimit rl;
    int fds[64], n = 0, fd;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 20;
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 21;
    while ((fd = dup(0)) >= 0 && n < 64)
        fds[n++] = fd;
    if (errno != EMFILE)
        return 22;
    if (tide_loop_fork(loop) != -EMFILE)
        return 23;
    if (tide_loop_fork(loop) != -EMFILE) /* still refused, nothing half done */
        return 24;
    while (n > 0)
        close(fds[--n]);
    if (tide_loop_fork(loop) != 0)
        return 25;
    if (tide_loop_fork(loop) != 0) /* done already */
        return 26;
    if (run_io_task(loop) != 0)
        return 27;
    tide_loop_free(loop);
    return 0;
}

static void test_loop_fork_emfile(void **state)
{
    (void)state;
    tide_loop *loop;
    pid_t pid;
    int st;
#ifdef TT_TSAN
    skip(); /* see test_fork_in_task */
#endif
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(run_io_task(loop), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fork_emfile_child(loop));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(run_io_task(loop), 0); /* the parent's loop is untouched */
    tide_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_in_task),
        cmocka_unit_test(test_loop_fork_args),
        cmocka_unit_test(test_loop_fork_emfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
