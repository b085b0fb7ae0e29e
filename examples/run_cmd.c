/*
 * run_cmd: run a command with a time limit, streaming its output.
 *
 *     run_cmd [-t SECONDS] [-k SECONDS] [-p] COMMAND [ARGS...]
 *     run_cmd --self-test
 *
 * The command's stdout and stderr are copied line by line, as they arrive,
 * to run_cmd's own stdout and stderr (with -p, prefixed "out: " / "err: ").
 * After -t SECONDS (default: no limit) the command gets SIGTERM, and
 * SIGKILL if it is still alive -k SECONDS later (default 2).  Like
 * timeout(1), the command runs in a process group of its own and the
 * signals go to the whole group, so `sh -c "a; b"` stops with its
 * children.  SIGINT/SIGTERM/SIGHUP sent to run_cmd are passed on to the
 * group (tide_signal_handler_add).
 *
 * Exit status: the command's; 128+N if signal N ended it; 124 if it timed
 * out; 127 if it could not be started.
 *
 * What it shows: tide_process_spawn with pipes, one task per output stream
 * (tide_stream_readline), a timeout scope around tide_process_wait, kill
 * and grace period, signal handlers as loop callbacks.
 */
#include <tide.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run {
    const char *const *argv;
    double timeout_s; /* <= 0: none */
    double grace_s;
    int prefix;
    int quiet;        /* self-test: count lines instead of printing them */
    /* results */
    int timed_out;
    int lines[2];     /* lines seen on stdout, stderr */
    tide_process *p;
} run;

typedef struct pump {
    run *r;
    tide_stream *s;
    int which; /* 0: stdout, 1: stderr */
} pump;

static void put_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        b += w;
        n -= (size_t)w;
    }
}

/* Copies one stream, a line at a time (a line longer than the buffer goes
 * out in pieces). */
static int pump_lines(void *arg)
{
    pump *pu = arg;
    char buf[8192];
    int fd = pu->which ? 2 : 1;

    for (;;) {
        ssize_t n = tide_stream_readline(pu->s, buf, sizeof buf);
        if (n == -ENOBUFS || n == -EMSGSIZE) /* a very long line: what we have */
            n = tide_stream_read(pu->s, buf, sizeof buf);
        if (n <= 0)
            return n < 0 && n != -ECANCELED ? (int)n : 0;
        pu->r->lines[pu->which] += buf[n - 1] == '\n';
        if (pu->r->quiet)
            continue;
        if (pu->r->prefix)
            put_all(fd, pu->which ? "err: " : "out: ", 5);
        put_all(fd, buf, (size_t)n);
    }
}

static void forward_signal(void *arg)
{
    run *r = arg;
    /* The loop calls this for SIGINT, SIGTERM or SIGHUP; which one does not
     * matter much: pass a SIGTERM on (the group gets SIGKILL later if it
     * ignores it and a time limit was set). */
    if (r->p)
        tide_process_kill_group(r->p, SIGTERM);
}

/* Waits at most ms (< 0: forever).  -ETIMEDOUT when the time is up. */
static int wait_ms(tide_process *p, int64_t ms)
{
    int rc = -ETIMEDOUT;

    if (ms < 0)
        return tide_process_wait(p, NULL);
    TIDE_WITH_TIMEOUT(ms)
        rc = tide_process_wait(p, NULL);
    return rc;
}

static int run_command(void *arg)
{
    static const int fwd[] = {SIGINT, SIGTERM, SIGHUP};
    run *r = arg;
    tide_process_opts o;
    tide_task *readers[2];
    pump pumps[2];
    size_t nreaders = 0, i;
    int rc;

    tide_process_opts_init(&o);
    o.stdout_mode = TIDE_PROC_PIPE;
    o.stderr_mode = TIDE_PROC_PIPE;
    o.flags = TIDE_PROC_NEW_PGROUP;
    rc = tide_process_spawn(&r->p, r->argv, &o);
    if (rc < 0) {
        if (!r->quiet)
            fprintf(stderr, "run_cmd: %s: %s\n", r->argv[0], tide_strerror(rc));
        return 127;
    }
    for (i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        tide_signal_handler_add(fwd[i], forward_signal, r); /* best effort */

    for (i = 0; i < 2; i++) {
        pumps[i].r = r;
        pumps[i].which = (int)i;
        pumps[i].s = i == 0 ? tide_process_stdout(r->p) : tide_process_stderr(r->p);
        if (tide_create_task(&readers[nreaders], pump_lines, &pumps[i]) == 0)
            nreaders++;
    }

    rc = wait_ms(r->p, r->timeout_s > 0 ? (int64_t)(r->timeout_s * 1000) : -1);
    if (rc == -ETIMEDOUT) {
        r->timed_out = 1;
        if (!r->quiet)
            fprintf(stderr, "run_cmd: timed out after %g s: SIGTERM\n", r->timeout_s);
        tide_process_kill_group(r->p, SIGTERM);
        rc = wait_ms(r->p, (int64_t)(r->grace_s * 1000));
        if (rc == -ETIMEDOUT) {
            if (!r->quiet)
                fprintf(stderr, "run_cmd: still alive after %g s: SIGKILL\n", r->grace_s);
            tide_process_kill_group(r->p, SIGKILL);
            rc = tide_process_wait(r->p, NULL);
        }
        /* whatever of the group is left dies with the group */
        tide_process_kill_group(r->p, SIGKILL);
    }

    /* The output that is still in the pipes; something that escaped the
     * group may keep them open: give it a second, then stop reading. */
    TIDE_WITH_TIMEOUT(1000)
        tide_gather(readers, nreaders, NULL);

    for (i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        tide_signal_handler_remove(fwd[i]);
    tide_process_free(r->p);
    r->p = NULL;

    if (r->timed_out)
        return 124;
    if (TIDE_PROC_IS_SIGNALED(rc))
        return 128 + TIDE_PROC_TERMSIG(rc);
    if (rc < 0) {
        fprintf(stderr, "run_cmd: wait: %s\n", tide_strerror(rc));
        return 125;
    }
    return rc;
}

/* ------------------------------------------------------------ self-test */

static int check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    return ok ? 0 : 1;
}

static int self_test(void)
{
    const char *hi[] = {"sh", "-c", "echo hi; echo err >&2; echo more; exit 3", NULL};
    const char *slow[] = {"sh", "-c", "echo started; sleep 30; echo never", NULL};
    const char *stubborn[] = {"sh", "-c", "trap '' TERM; echo stubborn; sleep 30", NULL};
    const char *missing[] = {"run-cmd-no-such-program", NULL};
    int fails = 0, rc;
    int64_t t0;
    run r;

    memset(&r, 0, sizeof r);
    r.argv = hi;
    r.timeout_s = 5;
    r.grace_s = 1;
    r.quiet = 1;
    rc = tide_run(run_command, &r);
    fails += check(rc == 3 && r.lines[0] == 2 && r.lines[1] == 1,
                   "output streamed, exit status passed on");

    memset(&r, 0, sizeof r);
    r.argv = slow;
    r.timeout_s = 0.3;
    r.grace_s = 2;
    r.quiet = 1;
    t0 = tide_now();
    rc = tide_run(run_command, &r);
    fails += check(rc == 124 && r.timed_out && r.lines[0] == 1 && tide_now() - t0 < 3000,
                   "timeout: SIGTERM to the group, status 124");

    memset(&r, 0, sizeof r);
    r.argv = stubborn;
    r.timeout_s = 0.3;
    r.grace_s = 0.3;
    r.quiet = 1;
    t0 = tide_now();
    rc = tide_run(run_command, &r);
    fails += check(rc == 124 && r.lines[0] == 1 && tide_now() - t0 < 3000,
                   "SIGTERM ignored: SIGKILL after the grace period");

    memset(&r, 0, sizeof r);
    r.argv = missing;
    r.quiet = 1;
    rc = tide_run(run_command, &r);
    fails += check(rc == 127, "missing program: 127");

    return fails ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: run_cmd [-t SECONDS] [-k SECONDS] [-p] COMMAND [ARGS...]\n"
                    "       run_cmd --self-test\n");
    exit(2);
}

int main(int argc, char **argv)
{
    run r;
    int i = 1;

    memset(&r, 0, sizeof r);
    r.grace_s = 2;
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
        return self_test();
    while (i < argc && argv[i][0] == '-') {
        char *end;
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "-p") == 0) {
            r.prefix = 1;
            i++;
            continue;
        }
        if ((strcmp(argv[i], "-t") != 0 && strcmp(argv[i], "-k") != 0) || i + 1 >= argc)
            usage();
        double v = strtod(argv[i + 1], &end);
        if (*end || v < 0)
            usage();
        if (argv[i][1] == 't')
            r.timeout_s = v;
        else
            r.grace_s = v;
        i += 2;
    }
    if (i >= argc)
        usage();
    r.argv = (const char *const *)argv + i;
    return tide_run(run_command, &r);
}
