/*
 * 1 000 000 tasks alive at once, each sleeping 1 s (tide_sleep(1000)); main
 * spawns them all, then awaits each.  Reports the total wall time (spawn to
 * last await) and the peak RSS per task: VmHWM from /proc/self/status minus
 * the baseline before spawning, divided by 1M.  Page tables are not part of
 * RSS: VmPTE (sampled while every task sleeps) is shown apart.
 *
 * Every run is in its own forked child so that each peak RSS is its own.
 * One run each: the 1 s sleep dominates and the figures are large.
 *
 * Tide runs three times: default stacks (256 KiB), the smallest guarded
 * class (TIDE_MIN_STACK_SIZE, 16 KiB, which a task asks for in
 * tide_task_opts) and the opt-in small unguarded stacks (flags
 * TIDE_STACK_UNGUARDED, TIDE_SMALL_STACK_DEFAULT: 2 KiB, two a page).
 * References, each in the same run: libuv (1M uv_timer_t), Go (1M goroutines,
 * when `go` is on PATH; see child_go) and the kernel floor of a guarded
 * stackful design: what the spawn phase costs in memory management alone,
 * measured without tide -- one MAP_NORESERVE mapping of 1M stack slots laid
 * out as tide's (guard + stack), the guards installed 256 a syscall with
 * process_madvise(MADV_GUARD_INSTALL) as tide does, and one touched page at
 * the top of each.  On a VM a first-touch page fault can cost microseconds.
 * Minor page faults per task (getrusage) show that tide is at that floor.
 *
 * Aims (issue 12): wall time under 2x libuv's, RSS per task at most Go's.
 * SLEEPERS_ONLY=small runs tide with 16 KiB stacks alone (for profiling),
 * SLEEPERS_ONLY=unguarded the 2 KiB unguarded stacks alone.
 * docs/stacks.md says what was tried.
 */
#include "bench.h"
#include "tide.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef TIDE_HAVE_LIBUV
#include <uv.h>
#endif

#define N 1000000
#define SLEEP_MS 1000

typedef struct result {
    int ok;
    char err[240];
    double wall;        /* s: first spawn to last await (or last timer) */
    double spawn;       /* s: creating the N tasks/timers */
    long base_kib;      /* VmHWM before spawning */
    long hwm_kib;       /* VmHWM at the end */
    long pte_kib;       /* VmPTE while everything sleeps */
    long rss_mid_kib;   /* VmRSS while everything sleeps */
    long faults;        /* minor page faults from spawn to the end */
} result;

static result R;
static size_t g_stack; /* 0: default */
static unsigned g_flags; /* tide_task_opts.flags */
static long g_done;

static long minflt(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

/* ------------------------------------------------------------------ tide */

static int sleeper(void *arg)
{
    int rc = tide_sleep(SLEEP_MS);
    (void)arg;
    g_done++;
    return rc;
}

static int tide_main(void *arg)
{
    tide_task **ts = malloc(N * sizeof *ts);
    tide_task_opts o;
    int64_t t0 = *(int64_t *)arg;
    long i, n;
    int rc;

    if (!ts) {
        snprintf(R.err, sizeof R.err, "malloc of the task array failed");
        return -ENOMEM;
    }
    tide_task_opts_init(&o);
    o.stack_size = g_stack;
    o.flags = g_flags;
    for (n = 0; n < N; n++) {
        rc = tide_create_task_ex(&ts[n], NULL, sleeper, NULL, &o);
        if (rc < 0) {
            snprintf(R.err, sizeof R.err,
                     "tide_create_task_ex failed at task %ld of %d: %s (VmSize %ld KiB)", n, N,
                     tide_strerror(rc), bench_status_kib("VmSize"));
            break;
        }
    }
    R.spawn = (double)(bench_ns() - t0) / 1e9;
    /* Every task starts (and goes to sleep) before this sleep ends, unless
     * starting them takes over 0.5 s, in which case we wake after they did. */
    tide_sleep(SLEEP_MS / 2);
    R.pte_kib = bench_status_kib("VmPTE");
    R.rss_mid_kib = bench_status_kib("VmRSS");
    for (i = 0; i < n; i++) {
        rc = tide_await(ts[i]);
        if (rc < 0 && !R.err[0])
            snprintf(R.err, sizeof R.err, "task %ld returned %s", i, tide_strerror(rc));
    }
    R.wall = (double)(bench_ns() - t0) / 1e9;
    R.faults = minflt() - R.faults;
    free(ts);
    return n == N && !R.err[0] ? 0 : -1;
}

static void child_tide(void)
{
    int64_t t0;
    int rc;

    R.base_kib = bench_status_kib("VmHWM");
    R.faults = minflt();
    t0 = bench_ns();
    rc = tide_run(tide_main, &t0);
    R.hwm_kib = bench_status_kib("VmHWM");
    if (rc == 0 && g_done != N)
        snprintf(R.err, sizeof R.err, "%ld of %d tasks finished", g_done, N);
    R.ok = rc == 0 && !R.err[0];
    if (rc < 0 && !R.err[0])
        snprintf(R.err, sizeof R.err, "tide_run: %s", tide_strerror(rc));
}

/* ----------------------------------------------------------------- libuv */

#ifdef TIDE_HAVE_LIBUV
static void on_timer(uv_timer_t *h)
{
    (void)h;
    g_done++;
}

static void child_uv(void)
{
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t *tm;
    int64_t t0;
    long i;
    int rc;

    R.base_kib = bench_status_kib("VmHWM");
    R.faults = minflt();
    t0 = bench_ns();
    tm = malloc(N * sizeof *tm);
    if (!tm) {
        snprintf(R.err, sizeof R.err, "malloc of %d uv_timer_t failed", N);
        return;
    }
    uv_update_time(loop);
    for (i = 0; i < N; i++) {
        uv_timer_init(loop, &tm[i]);
        rc = uv_timer_start(&tm[i], on_timer, SLEEP_MS, 0);
        if (rc < 0) {
            snprintf(R.err, sizeof R.err, "uv_timer_start: %s", uv_strerror(rc));
            return;
        }
    }
    R.spawn = (double)(bench_ns() - t0) / 1e9;
    R.pte_kib = bench_status_kib("VmPTE");
    R.rss_mid_kib = bench_status_kib("VmRSS");
    uv_run(loop, UV_RUN_DEFAULT);
    R.wall = (double)(bench_ns() - t0) / 1e9;
    R.faults = minflt() - R.faults;
    R.hwm_kib = bench_status_kib("VmHWM");
    if (g_done != N)
        snprintf(R.err, sizeof R.err, "%ld of %d timers fired", g_done, N);
    R.ok = !R.err[0];
}
#endif

/* ----------------------------------------------------- kernel floor */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static void child_floor(void)
{
    size_t guard = 4 * (size_t)sysconf(_SC_PAGESIZE);
    size_t slot = (g_stack ? g_stack : TIDE_DEFAULT_STACK_SIZE) + guard;
    struct iovec iov[256];
    int64_t t0;
    char *p;
    long i, j, k, guards = 0;
    int pidfd;

    R.base_kib = bench_status_kib("VmHWM");
    R.faults = minflt();
    t0 = bench_ns();
    pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    p = mmap(NULL, N * slot, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED || pidfd < 0) {
        snprintf(R.err, sizeof R.err, "mmap of %zu GiB or pidfd_open: %s", (N * slot) >> 30,
                 strerror(errno));
        return;
    }
    (void)madvise(p, N * slot, MADV_NOHUGEPAGE);
    for (i = 0; i < N; i += k) {
        k = N - i < 256 ? N - i : 256; /* as tide does: 256 guards a syscall */
        for (j = 0; j < k; j++) {
            iov[j].iov_base = p + (i + j) * slot;
            iov[j].iov_len = guard;
        }
        if (syscall(SYS_process_madvise, pidfd, iov, k, MADV_GUARD_INSTALL, 0) ==
            (long)(k * guard))
            guards += k;
        for (j = 0; j < k; j++)
            p[(i + j) * slot + slot - 64] = 1; /* the top page: where a task keeps its struct */
    }
    R.spawn = R.wall = (double)(bench_ns() - t0) / 1e9;
    R.faults = minflt() - R.faults;
    R.pte_kib = bench_status_kib("VmPTE");
    R.hwm_kib = bench_status_kib("VmHWM");
    close(pidfd);
    if (guards != N)
        snprintf(R.err, sizeof R.err, "MADV_GUARD_INSTALL worked for %ld of %d slots", guards, N);
    R.ok = !R.err[0];
}

/* ----------------------------------------------------------------- Go */

/* 1M goroutines each time.Sleep(1 s), joined by a WaitGroup.  As tide's
 * tasks (which first run when main sleeps), they start sleeping only once
 * all are spawned (a closed channel releases them): else, on a slow spawn,
 * early ones exit and their stacks are reused before the last is made, and
 * fewer than 1M are alive at once.  GOMAXPROCS is Go's default.  Measured as
 * the C children are (VmHWM before and after, VmPTE half-way, minor faults
 * from getrusage).  Built with the `go` on PATH in a temporary directory. */
static const char go_src[] =
    "package main\n"
    "import (\"bufio\"; \"fmt\"; \"os\"; \"strconv\"; \"strings\"; \"sync\"; \"syscall\"; \"time\")\n"
    "func kib(key string) int64 {\n"
    "  f, err := os.Open(\"/proc/self/status\"); if err != nil { return -1 }\n"
    "  defer f.Close(); s := bufio.NewScanner(f)\n"
    "  for s.Scan() { l := s.Text(); if strings.HasPrefix(l, key+\":\") {\n"
    "    v, _ := strconv.ParseInt(strings.Fields(l[len(key)+1:])[0], 10, 64); return v } }\n"
    "  return -1 }\n"
    "func flt() int64 { var ru syscall.Rusage; syscall.Getrusage(0, &ru); return ru.Minflt }\n"
    "func main() {\n"
    "  n, _ := strconv.Atoi(os.Args[1]); base := kib(\"VmHWM\"); f0 := flt(); t0 := time.Now()\n"
    "  var wg sync.WaitGroup; wg.Add(n); start := make(chan struct{})\n"
    "  for i := 0; i < n; i++ { go func() { <-start; time.Sleep(time.Second); wg.Done() }() }\n"
    "  spawn := time.Since(t0).Seconds(); close(start); time.Sleep(500 * time.Millisecond)\n"
    "  pte := kib(\"VmPTE\"); rss := kib(\"VmRSS\"); wg.Wait(); wall := time.Since(t0).Seconds()\n"
    "  fmt.Printf(\"%f %f %d %d %d %d %d\\n\", wall, spawn, base, kib(\"VmHWM\"), pte, rss, flt()-f0)\n"
    "}\n";

static void child_go(void)
{
    char dir[] = "/tmp/tide-sleepers-go-XXXXXX", cmd[512], line[256];
    FILE *f;
    int rc;

    if (system("command -v go >/dev/null 2>&1") != 0) {
        snprintf(R.err, sizeof R.err, "go not on PATH (Debian: apt-get install golang-go)");
        return;
    }
    if (!mkdtemp(dir)) {
        snprintf(R.err, sizeof R.err, "mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(cmd, sizeof cmd, "%s/main.go", dir);
    f = fopen(cmd, "w");
    if (!f || fputs(go_src, f) < 0 || fclose(f) != 0) {
        snprintf(R.err, sizeof R.err, "writing %s/main.go failed", dir);
        goto out;
    }
    snprintf(cmd, sizeof cmd,
             "cd %s && GOCACHE=%s/cache GO111MODULE=off go build -o sl main.go >build.log 2>&1",
             dir, dir);
    if (system(cmd) != 0) {
        snprintf(R.err, sizeof R.err, "go build failed (see %s/build.log)", dir);
        return; /* kept for the log */
    }
    snprintf(cmd, sizeof cmd, "%s/sl %d", dir, N);
    f = popen(cmd, "r");
    if (!f) {
        snprintf(R.err, sizeof R.err, "popen: %s", strerror(errno));
        goto out;
    }
    if (!fgets(line, sizeof line, f) ||
        sscanf(line, "%lf %lf %ld %ld %ld %ld %ld", &R.wall, &R.spawn, &R.base_kib, &R.hwm_kib,
               &R.pte_kib, &R.rss_mid_kib, &R.faults) != 7)
        snprintf(R.err, sizeof R.err, "unexpected output from the Go program");
    rc = pclose(f);
    if (rc != 0 && !R.err[0])
        snprintf(R.err, sizeof R.err, "the Go program failed (status %d)", rc);
    R.ok = !R.err[0];
out:
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    rc = system(cmd);
    (void)rc;
}

/* ------------------------------------------------------------- harness */

/* Runs fn in a child process; its result comes back through a pipe. */
static result in_child(void (*fn)(void))
{
    result r;
    int fd[2], status;
    pid_t pid;
    ssize_t got = 0, k;

    memset(&r, 0, sizeof r);
    BENCH_CHECK(pipe(fd) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    BENCH_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        ssize_t w;
        close(fd[0]);
        fn();
        w = write(fd[1], &R, sizeof R);
        _exit(w == (ssize_t)sizeof R ? 0 : 1);
    }
    close(fd[1]);
    while (got < (ssize_t)sizeof r && (k = read(fd[0], (char *)&r + got, sizeof r - got)) > 0)
        got += k;
    close(fd[0]);
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof r) {
        memset(&r, 0, sizeof r);
        if (WIFSIGNALED(status))
            snprintf(r.err, sizeof r.err, "child killed by signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        else
            snprintf(r.err, sizeof r.err, "child exited with status %d and no result",
                     WEXITSTATUS(status));
    }
    return r;
}

static double per_kib(const result *r)
{
    return (double)(r->hwm_kib - r->base_kib) / N;
}

static void show(const char *name, const result *r, const result *uv, const result *go)
{
    if (!r->ok) {
        printf("sleepers: %-24s FAILED: %s\n", name, r->err);
        return;
    }
    printf("sleepers: %-24s wall %5.2f s (spawn %4.2f s), peak RSS %5.2f KiB/task "
           "(+ page tables %4.2f), %4.2f faults/task",
           name, r->wall, r->spawn, per_kib(r), (double)r->pte_kib / N, (double)r->faults / N);
    if (uv && uv->ok)
        printf(" -> vs libuv: time x%.2f", r->wall / uv->wall);
    if (go && go->ok)
        printf("; vs Go: time x%.2f, RSS x%.2f", r->wall / go->wall, per_kib(r) / per_kib(go));
    printf("\n");
}

static void show_floor(const char *name, const result *fl, const result *td)
{
    if (!fl->ok) {
        printf("sleepers: %-24s FAILED: %s\n", name, fl->err);
        return;
    }
    printf("sleepers: %-24s %5.2f s for 1M x (batched guard + 1 page fault), %.2f us each", name,
           fl->wall, fl->wall * 1e6 / N);
    if (td->ok)
        printf(" -> tide spawn / floor = %.2f", td->spawn / fl->wall);
    printf("\n");
}

static void run_tide_default(void)
{
    g_stack = 0;
    child_tide();
}

static void run_tide_small(void)
{
    g_stack = TIDE_MIN_STACK_SIZE;
    child_tide();
}

static void run_tide_unguarded(void)
{
    g_stack = 0;
    g_flags = TIDE_STACK_UNGUARDED;
    child_tide();
}

static void run_floor_default(void)
{
    g_stack = 0;
    child_floor();
}

static void run_floor_small(void)
{
    g_stack = TIDE_MIN_STACK_SIZE;
    child_floor();
}

int main(void)
{
    result td, ts, tu, uv, go, fd, fs;
    const char *only = getenv("SLEEPERS_ONLY"); /* "small": tide with 16 KiB stacks alone */

    if (only && strcmp(only, "small") == 0) {
        ts = in_child(run_tide_small);
        show("tide (16 KiB stacks)", &ts, NULL, NULL);
        return ts.ok ? 0 : 1;
    }
    if (only && strcmp(only, "unguarded") == 0) {
        tu = in_child(run_tide_unguarded);
        show("tide (2 KiB unguarded)", &tu, NULL, NULL);
        return tu.ok ? 0 : 1;
    }
    memset(&uv, 0, sizeof uv);
    td = in_child(run_tide_default);
    fd = in_child(run_floor_default);
    ts = in_child(run_tide_small);
    fs = in_child(run_floor_small);
    tu = in_child(run_tide_unguarded);
#ifdef TIDE_HAVE_LIBUV
    uv = in_child(child_uv);
#else
    snprintf(uv.err, sizeof uv.err, "libuv not found at configure time");
#endif
    go = in_child(child_go);

    printf("sleepers: %d tasks each tide_sleep(%d) at once; 1 run each, separate processes\n",
           N, SLEEP_MS);
    show("tide (256 KiB stacks)", &td, &uv, &go);
    show("tide (16 KiB stacks)", &ts, &uv, &go);
    show("tide (2 KiB unguarded)", &tu, &uv, &go);
    if (uv.ok)
        show("ref libuv uv_timer_t", &uv, NULL, &go);
    else
        printf("sleepers: %-24s not measured: %s\n", "ref libuv uv_timer_t", uv.err);
    if (go.ok)
        show("ref Go goroutines", &go, &uv, NULL);
    else
        printf("sleepers: %-24s not measured: %s\n", "ref Go goroutines", go.err);
    show_floor("ref floor (256 KiB)", &fd, &td);
    show_floor("ref floor (16 KiB)", &fs, &ts);
    if (ts.ok && uv.ok)
        printf("sleepers: aims (16 KiB stacks): time < 2x libuv: %s (x%.2f)", 
               ts.wall < 2.0 * uv.wall ? "met" : "MISSED", ts.wall / uv.wall);
    if (ts.ok && go.ok)
        printf("; RSS <= Go's: %s (x%.2f)", per_kib(&ts) <= per_kib(&go) ? "met" : "MISSED",
               per_kib(&ts) / per_kib(&go));
    printf("\n");
    if (tu.ok && uv.ok)
        printf("sleepers: aims (2 KiB unguarded): time < 2x libuv: %s (x%.2f)",
               tu.wall < 2.0 * uv.wall ? "met" : "MISSED", tu.wall / uv.wall);
    if (tu.ok && go.ok)
        printf("; RSS <= Go's: %s (x%.2f)", per_kib(&tu) <= per_kib(&go) ? "met" : "MISSED",
               per_kib(&tu) / per_kib(&go));
    printf("\n");
    return td.ok && ts.ok && tu.ok ? 0 : 1;
}
