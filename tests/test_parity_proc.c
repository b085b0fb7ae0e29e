/*
 * Subprocess parity (issue 11): the shell form, stdin/stdout/stderr given
 * any fd (a pipeline between two children with no pump task, a file), and
 * communicate keeping the output read before a timeout cut it.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

static int main_shell(void *arg)
{
    tide_process_opts o;
    tide_process *p;
    char *out = NULL;
    size_t len = 0;

    (void)arg;
    tide_process_opts_init(&o);
    assert_int_equal(o.stdout_fd, -1);
    o.stdout_mode = TIDE_PROC_PIPE;
    assert_int_equal(tide_process_spawn_shell(&p, "echo $((6*7)) | tr 4 X; exit 3", &o), 0);
    assert_int_equal(tide_process_communicate(p, NULL, 0, &out, &len, NULL, NULL), 3);
    assert_string_equal(out, "X2\n");
    free(out);
    tide_process_free(p);
    /* A command the shell cannot find: status 127. */
    o.stdout_mode = TIDE_PROC_DEVNULL;
    o.stderr_mode = TIDE_PROC_DEVNULL;
    assert_int_equal(tide_process_spawn_shell(&p, "no-such-command-tide-xyz", &o), 0);
    assert_int_equal(tide_process_wait(p, NULL), 127);
    tide_process_free(p);
    assert_int_equal(tide_process_spawn_shell(&p, NULL, &o), -EINVAL);
    assert_null(p);
    assert_int_equal(tide_process_spawn_shell(NULL, "true", &o), -EINVAL);
    return 0;
}

static void test_shell(void **state)
{
    tide_process *p;
    (void)state;
    assert_int_equal(tide_process_spawn_shell(&p, "true", NULL), -EPERM);
    assert_int_equal(tide_run(main_shell, NULL), 0);
}

static int main_pipeline(void *arg)
{
    const char *gen[] = {"printf", "c\\na\\nb\\n", NULL};
    const char *srt[] = {"sort", NULL};
    tide_process_opts oa, ob;
    tide_process *a, *b;
    int fds[2], before, after;
    char *out = NULL;
    char path[] = "/tmp/tide_parity_XXXXXX";
    int file;

    (void)arg;
    before = tt_count_fds();
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    tide_process_opts_init(&oa);
    oa.stdout_mode = TIDE_PROC_FD;
    oa.stdout_fd = fds[1];
    tide_process_opts_init(&ob);
    ob.stdin_mode = TIDE_PROC_FD;
    ob.stdin_fd = fds[0];
    ob.stdout_mode = TIDE_PROC_PIPE;
    assert_int_equal(tide_process_spawn(&a, gen, &oa), 0);
    assert_int_equal(tide_process_spawn(&b, srt, &ob), 0);
    close(fds[0]); /* the children have their copies */
    close(fds[1]);
    assert_int_equal(tide_process_communicate(b, NULL, 0, &out, NULL, NULL, NULL), 0);
    assert_string_equal(out, "a\nb\nc\n");
    free(out);
    assert_int_equal(tide_process_wait(a, NULL), 0);
    tide_process_free(a);
    tide_process_free(b);

    /* stdout and stderr to a file. */
    file = mkstemp(path);
    assert_true(file >= 0);
    tide_process_opts_init(&oa);
    oa.stdout_mode = TIDE_PROC_FD;
    oa.stdout_fd = file;
    oa.stderr_mode = TIDE_PROC_STDOUT;
    assert_int_equal(tide_process_spawn_shell(&a, "echo out; echo err >&2", &oa), 0);
    assert_int_equal(tide_process_wait(a, NULL), 0);
    tide_process_free(a);
    {
        char buf[64] = {0};
        assert_int_equal(pread(file, buf, sizeof buf - 1, 0), 8);
        assert_string_equal(buf, "out\nerr\n");
    }
    close(file);
    unlink(path);

    /* A bad fd: -EBADF, nothing leaks. */
    tide_process_opts_init(&oa);
    oa.stdout_mode = TIDE_PROC_FD; /* stdout_fd left at -1 */
    assert_int_equal(tide_process_spawn(&a, gen, &oa), -EBADF);
    oa.stdout_fd = 1000;
    assert_int_equal(tide_process_spawn(&a, gen, &oa), -EBADF);
    oa.stdout_mode = 99;
    assert_int_equal(tide_process_spawn(&a, gen, &oa), -EINVAL);
    after = tt_count_fds();
    assert_int_equal(before, after);
    return 0;
}

static void test_pipeline(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_pipeline, NULL), 0);
}

static int main_partial(void *arg)
{
    tide_process_opts o;
    tide_process *p;
    tide_scope s;
    char *out = NULL, *err = NULL;
    size_t outlen = 9, errlen = 9;
    int rc;

    (void)arg;
    tide_process_opts_init(&o);
    o.stdout_mode = TIDE_PROC_PIPE;
    o.stderr_mode = TIDE_PROC_PIPE;
    assert_int_equal(tide_process_spawn_shell(&p, "echo so-far; exec sleep 10", &o), 0);
    tide_timeout_begin(&s, 300);
    rc = tide_process_communicate(p, NULL, 0, &out, &outlen, &err, &errlen);
    assert_int_equal(tide_timeout_end(&s), -ETIMEDOUT);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_non_null(out);
    assert_string_equal(out, "so-far\n");
    assert_int_equal(outlen, 7);
    assert_non_null(err);
    assert_string_equal(err, "");
    assert_int_equal(errlen, 0);
    free(out);
    free(err);
    assert_int_equal(tide_process_kill(p, SIGKILL), 0);
    rc = tide_process_wait(p, NULL);
    assert_int_equal(rc, TIDE_PROC_SIGNALED(SIGKILL));
    assert_non_null(strstr(tide_strerror(rc), "SIGKILL"));
    tide_process_free(p);
    return 0;
}

static void test_communicate_partial(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_partial, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_communicate_partial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
