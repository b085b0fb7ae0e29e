/*
 * Tests of subprocesses (src/process.c): pipes, exit codes, signals,
 * communicate with more than a pipe buffer each way, 100 children in
 * parallel and no zombie, env and cwd, exec errors from spawn itself,
 * feeding stdin, timeout + kill, several waiters, free without wait (and
 * 200 freed while running: one reaper thread, no zombie), the
 * child's signal state, and no fd left behind.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#define MIB (1024 * 1024)

static void opts_pipes(tide_process_opts *o, int in, int out, int err)
{
    tide_process_opts_init(o);
    o->stdin_mode = in;
    o->stdout_mode = out;
    o->stderr_mode = err;
}

/* Reads s to its end into buf (NUL-terminated); returns the length or -errno. */
static ssize_t read_all(tide_stream *s, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf + len, cap - 1 - len);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

/* No child of ours is left, not even a zombie. */
static int no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

#define RUN(fn, arg)                                                                           \
    do {                                                                                       \
        int fds_ = tt_count_fds();                                                             \
        assert_int_equal(tide_run((fn), (arg)), 0);                                            \
        assert_int_equal(tt_count_fds(), fds_);                                                \
        assert_true(no_children());                                                            \
    } while (0)

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
            return -1000 - __LINE__;                                                           \
        }                                                                                      \
    } while (0)

/* --------------------------------------------------------------- echo */

static int echo_main(void *arg)
{
    const char *argv[] = {"echo", "hello", NULL};
    tide_process_opts o;
    tide_process *p;
    char line[64];
    int st = -1;
    (void)arg;

    opts_pipes(&o, TIDE_PROC_INHERIT, TIDE_PROC_PIPE, TIDE_PROC_INHERIT);
    CHECK(tide_process_spawn(&p, argv, &o) == 0);
    CHECK(tide_process_pid(p) > 0);
    CHECK(tide_process_stdin(p) == NULL && tide_process_stderr(p) == NULL);
    CHECK(tide_stream_readline(tide_process_stdout(p), line, sizeof line) == 6);
    CHECK(memcmp(line, "hello\n", 6) == 0);
    CHECK(tide_process_wait(p, &st) == 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(tide_process_wait(p, NULL) == 0); /* again: same answer */
    CHECK(tide_process_poll(p, NULL) == 0);
    CHECK(tide_process_kill(p, SIGTERM) == -ESRCH); /* reaped: never a stranger */
    tide_process_free(p);
    return 0;
}

static void test_echo(void **state)
{
    (void)state;
    RUN(echo_main, NULL);
}

/* ---------------------------------------------------------- exit codes */

static int exit_main(void *arg)
{
    const char *a7[] = {"sh", "-c", "exit 7", NULL};
    const char *a255[] = {"sh", "-c", "exit 255", NULL};
    const char *afalse[] = {"false", NULL};
    const char *aself[] = {"sh", "-c", "kill -KILL $$", NULL};
    tide_process *p;
    int st;
    (void)arg;

    CHECK(tide_process_spawn(&p, a7, NULL) == 0);
    CHECK(tide_process_wait(p, NULL) == 7);
    tide_process_free(p);
    CHECK(tide_process_spawn(&p, a255, NULL) == 0);
    CHECK(tide_process_wait(p, NULL) == 255);
    tide_process_free(p);
    CHECK(tide_process_spawn(&p, afalse, NULL) == 0);
    CHECK(tide_process_wait(p, NULL) == 1);
    tide_process_free(p);
    CHECK(tide_process_spawn(&p, aself, NULL) == 0);
    int rc = tide_process_wait(p, &st);
    CHECK(rc == TIDE_PROC_SIGNALED(SIGKILL));
    CHECK(TIDE_PROC_IS_SIGNALED(rc) && TIDE_PROC_TERMSIG(rc) == SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    tide_process_free(p);
    return 0;
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_false(TIDE_PROC_IS_SIGNALED(-ECANCELED));
    assert_false(TIDE_PROC_IS_SIGNALED(0));
    assert_false(TIDE_PROC_IS_SIGNALED(TIDE_EAI_NONAME));
    RUN(exit_main, NULL);
}

/* ------------------------------------------- communicate, 1 MiB each way */

static int big_main(void *arg)
{
    /* The child writes 1 MiB to stderr, then 1 MiB to stdout, and only then
     * reads stdin (1 MiB) and reports its length: reading the pipes one
     * after the other, or feeding stdin first, would deadlock. */
    const char *argv[] = {"sh", "-c",
                          "head -c 1048576 /dev/zero | tr '\\0' e >&2; "
                          "head -c 1048576 /dev/zero | tr '\\0' o; wc -c | tr -d ' '",
                          NULL};
    tide_process_opts o;
    tide_process *p;
    char *in, *out, *err;
    size_t outlen, errlen;
    (void)arg;

    in = malloc(MIB);
    memset(in, 'i', MIB);
    opts_pipes(&o, TIDE_PROC_PIPE, TIDE_PROC_PIPE, TIDE_PROC_PIPE);
    CHECK(tide_process_spawn(&p, argv, &o) == 0);
    int rc = tide_process_communicate(p, in, MIB, &out, &outlen, &err, &errlen);
    free(in);
    CHECK(rc == 0);
    CHECK(errlen == MIB);
    CHECK(outlen == MIB + strlen("1048576\n"));
    for (size_t i = 0; i < MIB; i++)
        if (err[i] != 'e' || out[i] != 'o')
            CHECK(!"wrong byte");
    CHECK(strcmp(out + MIB, "1048576\n") == 0);
    CHECK(err[errlen] == '\0');
    CHECK(tide_process_stdin(p) == NULL); /* communicate closed it */
    free(out);
    free(err);
    tide_process_free(p);
    return 0;
}

static void test_communicate_big(void **state)
{
    (void)state;
    RUN(big_main, NULL);
}

/* Output thrown away (NULL out pointers), no stdin given, stdin not read. */
static int discard_main(void *arg)
{
    const char *argv[] = {"sh", "-c", "head -c 300000 /dev/zero; echo x >&2; exit 3", NULL};
    const char *cat[] = {"sh", "-c", "exit 0", NULL};
    tide_process_opts o;
    tide_process *p;
    char *err;
    size_t errlen;
    (void)arg;

    opts_pipes(&o, TIDE_PROC_PIPE, TIDE_PROC_PIPE, TIDE_PROC_PIPE);
    CHECK(tide_process_spawn(&p, argv, &o) == 0);
    CHECK(tide_process_communicate(p, NULL, 0, NULL, NULL, &err, &errlen) == 3);
    CHECK(errlen == 2 && strcmp(err, "x\n") == 0);
    free(err);
    tide_process_free(p);

    /* A child that exits without reading 1 MiB of input: not an error. */
    char *in = calloc(1, MIB);
    CHECK(tide_process_spawn(&p, cat, &o) == 0);
    int rc = tide_process_communicate(p, in, MIB, NULL, NULL, NULL, NULL);
    free(in);
    CHECK(rc == 0);
    tide_process_free(p);

    /* Input for a child without a stdin pipe. */
    opts_pipes(&o, TIDE_PROC_DEVNULL, TIDE_PROC_PIPE, TIDE_PROC_DEVNULL);
    CHECK(tide_process_spawn(&p, cat, &o) == 0);
    CHECK(tide_process_communicate(p, "x", 1, NULL, NULL, NULL, NULL) == -EINVAL);
    CHECK(tide_process_communicate(p, NULL, 0, &err, &errlen, NULL, NULL) == 0);
    CHECK(errlen == 0 && err && err[0] == '\0');
    free(err);
    tide_process_free(p);
    return 0;
}

static void test_communicate_discard(void **state)
{
    (void)state;
    RUN(discard_main, NULL);
}

/* ------------------------------------------------------- killed by a signal */

static int kill_main(void *arg)
{
    const char *argv[] = {"sleep", "10", NULL};
    tide_process *p;
    int st;
    (void)arg;

    CHECK(tide_process_spawn(&p, argv, NULL) == 0);
    CHECK(tide_process_poll(p, NULL) == -EAGAIN);
    CHECK(tide_process_kill(p, 0) == 0);
    CHECK(tide_process_kill(p, -1) == -EINVAL);
    CHECK(tide_process_kill_group(p, SIGTERM) == -EINVAL); /* no group of its own */
    CHECK(tide_process_kill(p, SIGTERM) == 0);
    CHECK(tide_process_wait(p, &st) == TIDE_PROC_SIGNALED(SIGTERM));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    tide_process_free(p);
    return 0;
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    RUN(kill_main, NULL);
}

/* -------------------------------------------------- 100 in parallel */

#define NPAR 100

typedef struct par {
    int i, rc, waited;
} par;

static int par_one(void *arg)
{
    par *c = arg;
    char code[32];
    snprintf(code, sizeof code, "exit %d", c->i % 50);
    const char *argv[] = {"sh", "-c", code, NULL};
    tide_process *p;
    int rc = tide_process_spawn(&p, argv, NULL);
    if (rc < 0)
        return rc;
    c->rc = tide_process_wait(p, NULL);
    c->waited = 1;
    tide_process_free(p);
    return 0;
}

static int par_main(void *arg)
{
    par *cs = arg;
    tide_task *ts[NPAR];
    for (int i = 0; i < NPAR; i++) {
        cs[i].i = i;
        CHECK(tide_create_task(&ts[i], par_one, &cs[i]) == 0);
    }
    return tide_gather(ts, NPAR, NULL);
}

static void test_parallel_no_zombie(void **state)
{
    (void)state;
    static par cs[NPAR];
    RUN(par_main, cs);
    for (int i = 0; i < NPAR; i++) {
        assert_true(cs[i].waited);
        assert_int_equal(cs[i].rc, i % 50);
    }
}

/* ---------------------------------------------------------- env and cwd */

static int envcwd_main(void *arg)
{
    const char *dir = arg;
    const char *argv[] = {"sh", "-c", "echo \"$TIDE_FOO|$HOME\"; pwd -P", NULL};
    const char *env[] = {"TIDE_FOO=bar baz", NULL};
    tide_process_opts o;
    tide_process *p;
    char *out;
    size_t len;
    char want[PATH_MAX + 64];

    opts_pipes(&o, TIDE_PROC_INHERIT, TIDE_PROC_PIPE, TIDE_PROC_INHERIT);
    o.env = env;
    o.cwd = dir;
    CHECK(tide_process_spawn(&p, argv, &o) == 0);
    CHECK(tide_process_communicate(p, NULL, 0, &out, &len, NULL, NULL) == 0);
    snprintf(want, sizeof want, "bar baz|\n%s\n", dir);
    CHECK(strcmp(out, want) == 0);
    free(out);
    tide_process_free(p);

    /* Inherited environment by default. */
    const char *argv2[] = {"sh", "-c", "echo \"$TIDE_INHERITED\"", NULL};
    o.env = NULL;
    o.cwd = NULL;
    setenv("TIDE_INHERITED", "yes", 1);
    CHECK(tide_process_spawn(&p, argv2, &o) == 0);
    CHECK(tide_process_communicate(p, NULL, 0, &out, &len, NULL, NULL) == 0);
    CHECK(strcmp(out, "yes\n") == 0);
    free(out);
    tide_process_free(p);
    unsetenv("TIDE_INHERITED");
    return 0;
}

static void test_env_cwd(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tide_proc_XXXXXX";
    char real[PATH_MAX];
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, real));
    RUN(envcwd_main, real);
    rmdir(real);
}

/* ------------------------------------------------------------ exec errors */

static int missing_main(void *arg)
{
    const char *a1[] = {"/nonexistent/tide-no-such-program", NULL};
    const char *a2[] = {"tide-no-such-program-anywhere", NULL};
    const char *a3[] = {"/", NULL}; /* a directory: EACCES */
    const char *ok[] = {"true", NULL};
    tide_process_opts o;
    tide_process *p = (tide_process *)1;
    (void)arg;

    opts_pipes(&o, TIDE_PROC_PIPE, TIDE_PROC_PIPE, TIDE_PROC_PIPE);
    CHECK(tide_process_spawn(&p, a1, &o) == -ENOENT);
    CHECK(p == NULL);
    CHECK(tide_process_spawn(&p, a2, &o) == -ENOENT);
    CHECK(tide_process_spawn(&p, a3, &o) == -EACCES);
    o.cwd = "/nonexistent/tide-dir";
    CHECK(tide_process_spawn(&p, ok, &o) == -ENOENT);
    /* argument checks */
    tide_process_opts_init(&o);
    o.stdin_mode = TIDE_PROC_STDOUT;
    CHECK(tide_process_spawn(&p, ok, &o) == -EINVAL);
    tide_process_opts_init(&o);
    o.stdout_mode = 42;
    CHECK(tide_process_spawn(&p, ok, &o) == -EINVAL);
    tide_process_opts_init(&o);
    o.flags = 0x100;
    CHECK(tide_process_spawn(&p, ok, &o) == -EINVAL);
    CHECK(tide_process_spawn(&p, NULL, NULL) == -EINVAL);
    CHECK(tide_process_spawn(NULL, ok, NULL) == -EINVAL);
    CHECK(tide_process_wait(NULL, NULL) == -EINVAL);
    CHECK(tide_process_pid(NULL) == -EINVAL);
    CHECK(tide_process_close_stdin(NULL) == -EINVAL);
    tide_process_free(NULL);
    return 0;
}

static void test_missing_program(void **state)
{
    (void)state;
    const char *ok[] = {"true", NULL};
    tide_process *p;
    assert_int_equal(tide_process_spawn(&p, ok, NULL), -EPERM); /* no loop */
    RUN(missing_main, NULL);
}

/* ------------------------------------------------------------ stdin feeding */

static int feed_main(void *arg)
{
    const char *cat[] = {"cat", NULL};
    const char *up[] = {"tr", "a-z", "A-Z", NULL};
    tide_process_opts o;
    tide_process *p;
    char buf[256];
    char *out;
    (void)arg;

    opts_pipes(&o, TIDE_PROC_PIPE, TIDE_PROC_PIPE, TIDE_PROC_INHERIT);
    CHECK(tide_process_spawn(&p, cat, &o) == 0);
    CHECK(tide_stream_write(tide_process_stdin(p), "abc\n", 4) == 4);
    CHECK(tide_stream_readline(tide_process_stdout(p), buf, sizeof buf) == 4); /* echoed */
    CHECK(tide_stream_write(tide_process_stdin(p), "def", 3) == 3);
    CHECK(tide_process_close_stdin(p) == 0);
    CHECK(tide_process_stdin(p) == NULL);
    CHECK(tide_process_close_stdin(p) == -EBADF);
    CHECK(read_all(tide_process_stdout(p), buf, sizeof buf) == 3);
    CHECK(strcmp(buf, "def") == 0);
    CHECK(tide_process_wait(p, NULL) == 0);
    tide_process_free(p);

    CHECK(tide_process_spawn(&p, up, &o) == 0);
    CHECK(tide_process_communicate(p, "hello, tide\n", 12, &out, NULL, NULL, NULL) == 0);
    CHECK(strcmp(out, "HELLO, TIDE\n") == 0);
    free(out);
    tide_process_free(p);
    return 0;
}

static void test_stdin_feeding(void **state)
{
    (void)state;
    RUN(feed_main, NULL);
}

/* -------------------------------------------------------- stderr / devnull */

static int redirect_main(void *arg)
{
    const char *both[] = {"sh", "-c", "echo a; echo b >&2; echo c", NULL};
    const char *null_in[] = {"sh", "-c", "cat; echo done", NULL};
    tide_process_opts o;
    tide_process *p;
    char *out;
    (void)arg;

    opts_pipes(&o, TIDE_PROC_INHERIT, TIDE_PROC_PIPE, TIDE_PROC_STDOUT);
    CHECK(tide_process_spawn(&p, both, &o) == 0);
    CHECK(tide_process_stderr(p) == NULL);
    CHECK(tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL) == 0);
    CHECK(strcmp(out, "a\nb\nc\n") == 0);
    free(out);
    tide_process_free(p);

    opts_pipes(&o, TIDE_PROC_DEVNULL, TIDE_PROC_PIPE, TIDE_PROC_DEVNULL);
    CHECK(tide_process_spawn(&p, null_in, &o) == 0);
    CHECK(tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL) == 0);
    CHECK(strcmp(out, "done\n") == 0);
    free(out);
    tide_process_free(p);
    return 0;
}

static void test_redirects(void **state)
{
    (void)state;
    RUN(redirect_main, NULL);
}

/* ---------------------------------------------------------- timeout + kill */

static int timeout_main(void *arg)
{
    const char *argv[] = {"sleep", "10", NULL};
    tide_process *p;
    tide_scope s;
    (void)arg;

    int64_t t0 = tide_now();
    CHECK(tide_process_spawn(&p, argv, NULL) == 0);
    tide_timeout_begin(&s, 100);
    int rc = tide_process_wait(p, NULL);
    CHECK(tide_timeout_end(&s) == -ETIMEDOUT);
    CHECK(rc == -ETIMEDOUT);
    CHECK(tide_now() - t0 >= 90);
    CHECK(tide_process_kill(p, SIGKILL) == 0);
    CHECK(tide_process_wait(p, NULL) == TIDE_PROC_SIGNALED(SIGKILL));
    CHECK(tide_now() - t0 < 5000);
    tide_process_free(p);

    /* communicate inside a timeout: the helpers are cancelled and waited for. */
    const char *cat[] = {"sh", "-c", "echo partial; exec sleep 10", NULL};
    tide_process_opts o;
    char *out = (char *)1;
    opts_pipes(&o, TIDE_PROC_PIPE, TIDE_PROC_PIPE, TIDE_PROC_INHERIT);
    CHECK(tide_process_spawn(&p, cat, &o) == 0);
    tide_timeout_begin(&s, 100);
    rc = tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL);
    CHECK(tide_timeout_end(&s) == -ETIMEDOUT);
    CHECK(rc == -ETIMEDOUT);
    CHECK(out != NULL && strcmp(out, "partial\n") == 0); /* what came before the timeout */
    free(out);
    CHECK(tide_process_kill(p, SIGKILL) == 0);
    CHECK(tide_process_wait(p, NULL) == TIDE_PROC_SIGNALED(SIGKILL));
    tide_process_free(p);
    return 0;
}

static void test_timeout_kill(void **state)
{
    (void)state;
    RUN(timeout_main, NULL);
}

/* ------------------------------------------------------ several waiters */

typedef struct mw {
    tide_process *p;
    int rc;
} mw;

static int mw_wait(void *arg)
{
    mw *m = arg;
    m->rc = tide_process_wait(m->p, NULL);
    return 0;
}

static int mw_main(void *arg)
{
    const char *argv[] = {"sh", "-c", "sleep 0.05; exit 9", NULL};
    tide_process *p;
    tide_task *ts[3];
    mw m[3];
    (void)arg;

    CHECK(tide_process_spawn(&p, argv, NULL) == 0);
    for (int i = 0; i < 3; i++) {
        m[i].p = p;
        m[i].rc = -1;
        CHECK(tide_create_task(&ts[i], mw_wait, &m[i]) == 0);
    }
    CHECK(tide_gather(ts, 3, NULL) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(m[i].rc == 9);
    tide_process_free(p);

    /* A waiter cancelled: the others still get the result. */
    const char *slow[] = {"sh", "-c", "sleep 0.1; exit 4", NULL};
    CHECK(tide_process_spawn(&p, slow, NULL) == 0);
    for (int i = 0; i < 2; i++) {
        m[i].p = p;
        CHECK(tide_create_task(&ts[i], mw_wait, &m[i]) == 0);
    }
    tide_sleep(10);
    tide_cancel(ts[0]);
    CHECK(tide_gather(ts, 2, NULL) == 0);
    CHECK(m[0].rc == -ECANCELED);
    CHECK(m[1].rc == 4);
    tide_process_free(p);
    return 0;
}

static void test_several_waiters(void **state)
{
    (void)state;
    RUN(mw_main, NULL);
}

/* --------------------------------------------------- free without waiting */

static int gone(pid_t pid)
{
    /* reaped (and not yet reused): the pid does not exist any more */
    return kill(pid, 0) == -1 && errno == ESRCH;
}

/* 1 once pid is a zombie (ended, not reaped), per /proc. */
static int is_zombie(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *e = strrchr(buf, ')');
    return e && e[1] == ' ' && e[2] == 'Z';
}

static int free_main(void *arg)
{
    pid_t *pids = arg;
    const char *quick[] = {"true", NULL};
    const char *slow[] = {"sleep", "0.2", NULL};
    tide_process_opts o;
    tide_process *p;

    /* Ended before the free: reaped by the free itself. */
    CHECK(tide_process_spawn(&p, quick, NULL) == 0);
    pids[0] = tide_process_pid(p);
    for (int i = 0; i < 500 && !is_zombie(pids[0]); i++)
        tide_sleep(10);
    tide_process_free(p);
    CHECK(gone(pids[0]));

    /* Still running, with pipes: reaped in the background later. */
    opts_pipes(&o, TIDE_PROC_PIPE, TIDE_PROC_PIPE, TIDE_PROC_PIPE);
    CHECK(tide_process_spawn(&p, slow, &o) == 0);
    pids[1] = tide_process_pid(p);
    CHECK(tide_stream_write(tide_process_stdin(p), "unflushed", 9) == 9);
    tide_process_free(p); /* never waits */
    return 0;
}

static void test_free_without_wait(void **state)
{
    (void)state;
    pid_t pids[2];
    int fds = tt_count_fds();
    assert_int_equal(tide_run(free_main, pids), 0);
    assert_int_equal(tt_count_fds(), fds);
    for (int i = 0; i < 300 && !gone(pids[1]); i++)
        usleep(10000);
    assert_true(gone(pids[1]));
    assert_true(no_children());
}

/* -------------------------------------- many freed while they still run */

#define NFREED 200

/* Threads of this process (entries of /proc/self/task). */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Zombie children of this process, per /proc (reaps nothing). */
static int count_zombie_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], state;
        int ppid;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strrchr(buf, ')');
        if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == (int)getpid() &&
            state == 'Z')
            n++;
    }
    closedir(d);
    return n;
}

/* 1 if this process has no child at all, running or zombie.  waitid with
 * WNOWAIT only looks: it never reaps a child that someone else owns. */
static int no_child_peek(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD;
}

typedef struct freed {
    pid_t pids[NFREED];
    int running_at_free; /* still running when their handle was freed */
    int threads_before, threads_max;
} freed;

static int free_many_main(void *arg)
{
    freed *fm = arg;
    const char *argv[] = {"sleep", "30", NULL}; /* ended by the test (SIGKILL) */
    tide_process *p[NFREED];

    for (int i = 0; i < NFREED; i++) {
        CHECK(tide_process_spawn(&p[i], argv, NULL) == 0);
        fm->pids[i] = tide_process_pid(p[i]);
    }
    for (int i = 0; i < NFREED; i++) {
        if (tide_process_poll(p[i], NULL) == -EAGAIN)
            fm->running_at_free++;
        tide_process_free(p[i]);
        int n = count_threads();
        if (n > fm->threads_max)
            fm->threads_max = n;
    }
    return 0;
}

/* 200 handles freed while their children run: one reaper thread for them
 * all (not one each), and no zombie once they ended.  The children sleep
 * long and the test kills them once every handle is gone (their pids stay
 * theirs until reaped), so it does not depend on how fast spawning is. */
static void test_free_many_running(void **state)
{
    (void)state;
    freed fm;
    int fds = tt_count_fds(), i, left;

    memset(&fm, 0, sizeof fm);
    assert_true(no_child_peek());
    fm.threads_before = fm.threads_max = count_threads();
    assert_true(fm.threads_before > 0);
    assert_int_equal(tide_run(free_many_main, &fm), 0);
    assert_int_equal(tt_count_fds(), fds); /* the reaper holds no fd */
    usleep(50000); /* the reaper polls them a few times */
    for (i = 0; i < NFREED; i++)
        kill(fm.pids[i], SIGKILL);
    /* Until they end: the thread count stays where it was, plus the reaper. */
    for (i = 0; i < 1500; i++) {
        int n = count_threads();
        if (n > fm.threads_max)
            fm.threads_max = n;
        left = 0;
        for (int j = 0; j < NFREED; j++)
            left += !gone(fm.pids[j]);
        if (!left)
            break;
        usleep(10000);
    }
    print_message("%d of %d still running when freed; threads %d -> at most %d; "
                  "all reaped %d ms after the kill\n",
                  fm.running_at_free, NFREED, fm.threads_before, fm.threads_max, i * 10);
    assert_int_equal(fm.running_at_free, NFREED);
    assert_true(fm.threads_max <= fm.threads_before + 1);
    assert_int_equal(left, 0);
    assert_int_equal(count_zombie_children(), 0);
    assert_true(no_child_peek());
    /* With nothing left to reap the reaper goes away. */
    for (i = 0; i < 300 && count_threads() > fm.threads_before; i++)
        usleep(10000);
    assert_true(count_threads() <= fm.threads_before); /* (qemu may end a thread of its own) */
}

/* Freeing a process wakes the tasks waiting for it with -EBADF. */
static int leftover_waiter(void *arg)
{
    tide_process *p = arg;
    return tide_process_wait(p, NULL);
}

static int leftover_main(void *arg)
{
    const char *slow[] = {"sleep", "0.2", NULL};
    tide_process *p;
    tide_task *t;
    (void)arg;
    CHECK(tide_process_spawn(&p, slow, NULL) == 0);
    CHECK(tide_create_task(&t, leftover_waiter, p) == 0);
    tide_sleep(10);
    tide_process_free(p);
    CHECK(tide_await(t) == -EBADF);
    return 0;
}

static void test_free_wakes_waiters(void **state)
{
    (void)state;
    int fds = tt_count_fds();
    assert_int_equal(tide_run(leftover_main, NULL), 0);
    assert_int_equal(tt_count_fds(), fds);
    for (int i = 0; i < 300 && !no_children(); i++)
        usleep(10000);
    assert_true(no_children());
}

/* --------------------------------------------------- the child's signals */

static int sigstate_main(void *arg)
{
    const char *argv[] = {"sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL};
    tide_process_opts o;
    tide_process *p;
    char *out;
    (void)arg;

    /* tide blocks SIGUSR1 for a handler, and the loop ignores SIGPIPE. */
    CHECK(tide_signal_handler_add(SIGUSR1, (tide_cb)free, NULL) == 0);
    opts_pipes(&o, TIDE_PROC_INHERIT, TIDE_PROC_PIPE, TIDE_PROC_INHERIT);
    CHECK(tide_process_spawn(&p, argv, &o) == 0);
    CHECK(tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL) == 0);
    tide_process_free(p);
    tide_signal_handler_remove(SIGUSR1);
    unsigned long long blk = ~0ull, ign = ~0ull;
    char *b = strstr(out, "SigBlk:"), *i = strstr(out, "SigIgn:");
    if (b)
        blk = strtoull(b + 7, NULL, 16);
    if (i)
        ign = strtoull(i + 7, NULL, 16);
    free(out);
    CHECK(!(blk & (1ull << (SIGUSR1 - 1))));
    CHECK(!(ign & (1ull << (SIGPIPE - 1))));
    return 0;
}

static void test_child_signal_state(void **state)
{
    (void)state;
    if (access("/proc/self/status", R_OK) != 0)
        skip();
    RUN(sigstate_main, NULL);
}

/* ------------------------------------------------------- process group */

static int group_main(void *arg)
{
    const char *argv[] = {"sh", "-c", "sleep 10 & sleep 10; exit 0", NULL};
    tide_process_opts o;
    tide_process *p;
    (void)arg;

    tide_process_opts_init(&o);
    o.flags = TIDE_PROC_NEW_PGROUP;
    CHECK(tide_process_spawn(&p, argv, &o) == 0);
    tide_sleep(50);
    CHECK(getpgid(tide_process_pid(p)) == tide_process_pid(p));
    CHECK(tide_process_kill_group(p, SIGKILL) == 0);
    CHECK(tide_process_wait(p, NULL) == TIDE_PROC_SIGNALED(SIGKILL));
    tide_process_free(p);
    return 0;
}

static void test_process_group(void **state)
{
    (void)state;
    RUN(group_main, NULL);
}

/* ------------------------------------------------------- inside tide_loop_run */

static int lr_task(void *arg)
{
    const char *argv[] = {"sh", "-c", "sleep 0.05; exit 5", NULL};
    tide_process *p;
    int rc = tide_process_spawn(&p, argv, NULL);
    if (rc < 0)
        return rc;
    *(int *)arg = tide_process_wait(p, NULL);
    tide_process_free(p);
    return 0;
}

static void test_loop_run_keeps_waiting(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;
    int code = -1;
    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, lr_task, &code, NULL), 0);
    assert_int_equal(tide_detach(t), 0);
    /* Only a task waiting for a child is left: the loop must not stop. */
    assert_int_equal(tide_loop_run(loop), 0);
    assert_int_equal(code, 5);
    tide_loop_free(loop);
    assert_true(no_children());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_communicate_big),
        cmocka_unit_test(test_communicate_discard),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_parallel_no_zombie),
        cmocka_unit_test(test_env_cwd),
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_stdin_feeding),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_timeout_kill),
        cmocka_unit_test(test_several_waiters),
        cmocka_unit_test(test_free_without_wait),
        cmocka_unit_test(test_free_many_running),
        cmocka_unit_test(test_free_wakes_waiters),
        cmocka_unit_test(test_child_signal_state),
        cmocka_unit_test(test_process_group),
        cmocka_unit_test(test_loop_run_keeps_waiting),
    };
    alarm(300); /* a hang fails the test instead of stalling ctest */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
