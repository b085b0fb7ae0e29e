/*
 * Tests of task stacks: a guard-page overflow is reported (task name, stack
 * size) and aborts; so is a frame larger than the guard, which without
 * -fstack-clash-protection would jump over the guard into a neighbouring
 * stack (the neighbours are checked untouched); deep recursion within the
 * stack size works; stacks are reused and not leaked when many tasks come
 * and go.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <sys/poll.h> /* not <poll.h>: src/poll.h shadows it */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#define OVERFLOW_FLAG "--overflow-child"
#define CLASH_FLAG "--clash-child"
#define UNGUARDED_FLAG "--unguarded-child"
#define CHILD_STACK (16 * 1024)

/* -------------------------------------------------------- recursion */

__attribute__((noinline)) static int recurse(int depth, int limit)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = (char)(depth >> 8);
    if (depth >= limit)
        return 1;
    /* not a tail call: the frame stays live */
    return recurse(depth + 1, limit) + (buf[0] == (char)depth) +
           (buf[sizeof buf - 1] == (char)(depth >> 8)) - 2;
}

/* ------------------------------------------------- the overflowing child */

static int deep_fn(void *arg)
{
    (void)arg;
    return recurse(0, INT_MAX);
}

static int overflow_main(void *arg)
{
    (void)arg;
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = "deep";
    o.stack_size = CHILD_STACK;
    tide_task *t;
    if (tide_create_task_ex(&t, NULL, deep_fn, NULL, &o) != 0)
        return -1;
    return tide_await(t);
}

static int overflow_child(void)
{
    int rc = tide_run(overflow_main, NULL);
    fprintf(stderr, "child: tide_run returned %d (no overflow detected)\n", rc);
    return 3;
}

/* ------------------------------------------ the stack-clash child
 *
 * NEIGHBOURS tasks with 16 KiB stacks fill half their stack with a canary
 * and wait; then one more ('clash'), carved after them (above them in the
 * same mapping), calls a function whose frame is about 1 MiB -- far larger
 * than the guard -- sized to end in the middle of the canary of the
 * neighbour nearest 1 MiB down, and touches that far end first.  Unprobed,
 * the store jumps the guard and lands in that neighbour's stack: silent
 * corruption (what this test saw before tide was built with the flag).
 * Built with -fstack-clash-protection, the frame is touched a page at a
 * time from the top, so the first touch below the stack hits the guard and
 * tide reports the overflow.  A SIGABRT handler then checks the canaries,
 * before the process dies. */

#define NEIGHBOURS 40
#define CANARY_LEN (8 * 1024)
#define CANARY_BYTE 0xa5
#define BIG_FRAME (1 << 20)

static unsigned char *volatile g_canary[NEIGHBOURS];

static int neighbour_fn(void *arg)
{
    unsigned char buf[CANARY_LEN];
    memset(buf, CANARY_BYTE, sizeof buf);
    g_canary[(intptr_t)arg] = buf;
    tide_sleep(1000000);
    return buf[0] == CANARY_BYTE ? 0 : -1;
}

__attribute__((noinline)) static int big_frame(size_t n)
{
    volatile char big[n];
    big[0] = 1; /* the far end: the lowest address, n bytes below the frame's top */
    return big[0] + big[n - 1];
}

static int clash_fn(void *arg)
{
    char *sp = __builtin_frame_address(0), *want = sp - BIG_FRAME, *best = NULL;
    (void)arg;
    for (int i = 0; i < NEIGHBOURS; i++) {
        char *mid = (char *)g_canary[i] + CANARY_LEN / 2;
        if (mid < sp - 4 * CHILD_STACK &&
            (!best || (mid > want ? mid - want : want - mid) < (best > want ? best - want : want - best)))
            best = mid;
    }
    return big_frame(best ? (size_t)(sp - best) : BIG_FRAME);
}

static void check_canaries(int sig)
{
    char msg[96];
    int bad = -1, n;
    (void)sig;
    for (int i = 0; i < NEIGHBOURS && bad < 0; i++) {
        const unsigned char *c = g_canary[i];
        for (size_t k = 0; c && k < CANARY_LEN; k++)
            if (c[k] != CANARY_BYTE) {
                bad = i;
                break;
            }
        if (!c)
            bad = i;
    }
    if (bad < 0)
        n = snprintf(msg, sizeof msg, "child: %d neighbour canaries intact\n", NEIGHBOURS);
    else
        n = snprintf(msg, sizeof msg, "child: neighbour %d's canary CLOBBERED\n", bad);
    if (write(2, msg, (size_t)n) < 0) {
        /* nothing to do */
    }
}

static int clash_main(void *arg)
{
    (void)arg;
    tide_task_opts o;
    tide_task *t;
    tide_task_opts_init(&o);
    o.stack_size = CHILD_STACK;
    for (intptr_t i = 0; i < NEIGHBOURS; i++) {
        o.name = "neighbour";
        if (tide_create_task_ex(&t, NULL, neighbour_fn, (void *)i, &o) != 0 || tide_detach(t) != 0)
            return -1;
    }
    tide_sleep(10); /* they all fill their canaries */
    o.name = "clash";
    if (tide_create_task_ex(&t, NULL, clash_fn, NULL, &o) != 0)
        return -1;
    int rc = tide_await(t);
    check_canaries(0); /* not caught: say whether a neighbour paid for it */
    return rc;
}

static int clash_child(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = check_canaries; /* returns: abort() then kills us anyway */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
    int rc = tide_run(clash_main, NULL);
    fprintf(stderr, "child: tide_run returned %d (the big frame went unnoticed)\n", rc);
    return 3;
}

/* Runs this test program again with flag (or, without exec, child() in the
 * fork; tt_run_self); its stderr goes to out.  The child must die of SIGABRT. */
static void run_self(const char *flag, int (*child)(void), char *out, size_t cap, int *status)
{
    char *text = tt_run_self(flag, child, NULL, status);

    assert_non_null(text);
    snprintf(out, cap, "%s", text);
    free(text);
    print_message("child stderr: <<%s>>\n", out);
    if (!WIFSIGNALED(*status))
        fail_msg("child exited with status %d instead of dying by a signal; stderr: <<%s>>",
                 WEXITSTATUS(*status), out);
    if (WTERMSIG(*status) != SIGABRT)
        fail_msg("child died of signal %d, not SIGABRT; stderr: <<%s>>", WTERMSIG(*status), out);
}

static void test_overflow_is_reported(void **state)
{
    (void)state;
    char out[8192];
    int status;
    run_self(OVERFLOW_FLAG, overflow_child, out, sizeof out, &status);
    assert_non_null(strcasestr(out, "stack overflow"));
    assert_non_null(strstr(out, "deep"));
    /* the stack size, in bytes or KiB */
    int has_size = strstr(out, "16384") != NULL || strcasestr(out, "16 KiB") != NULL ||
                   strcasestr(out, "16KiB") != NULL || strcasestr(out, "16 KB") != NULL ||
                   strcasestr(out, "16K") != NULL;
    assert_true(has_size);
}

static void test_stack_clash_is_reported(void **state)
{
    (void)state;
    char out[8192];
    int status;
    run_self(CLASH_FLAG, clash_child, out, sizeof out, &status);
    assert_non_null(strstr(out, "tide: stack overflow in task 'clash'"));
    assert_non_null(strstr(out, "stack size 16384 bytes"));
    if (!strstr(out, "neighbour canaries intact"))
        fail_msg("a neighbour's stack was written: <<%s>>", out);
}

/* -------------------------------------------------- deep but within */

typedef struct within {
    int r64, r256, r_big_local;
} within;

static int rec_task(void *arg)
{
    int limit = (int)(intptr_t)arg;
    int r = recurse(0, limit);
    tide_sleep(0); /* suspend with a deep stack behind us... */
    return r + recurse(0, limit); /* ...and again after resuming */
}

static int big_local(void *arg)
{
    size_t n = (size_t)(intptr_t)arg;
    char buf[n];
    memset(buf, 1, n);
    tide_sleep(1);
    long s = 0;
    for (size_t i = 0; i < n; i += 97)
        s += buf[i];
    return s > 0 ? 1 : -1;
}

static int within_main(void *arg)
{
    within *w = arg;
    tide_task_opts o;
    tide_task_opts_init(&o);
    tide_task *t[3];
    o.stack_size = 64 * 1024;
    tide_create_task_ex(&t[0], NULL, rec_task, (void *)(intptr_t)24, &o); /* ~26 KiB */
    o.stack_size = 0;                                                       /* default */
    tide_create_task_ex(&t[1], NULL, rec_task, (void *)(intptr_t)150, &o); /* ~160 KiB */
    o.stack_size = 64 * 1024;
    tide_create_task_ex(&t[2], NULL, big_local, (void *)(intptr_t)(40 * 1024), &o);
    w->r64 = tide_await(t[0]);
    w->r256 = tide_await(t[1]);
    w->r_big_local = tide_await(t[2]);
    return 0;
}

static void test_deep_recursion_within_stack(void **state)
{
    (void)state;
    within w;
    memset(&w, 0, sizeof w);
    assert_int_equal(tide_run(within_main, &w), 0);
    assert_int_equal(w.r64, 2);
    assert_int_equal(w.r256, 2);
    assert_int_equal(w.r_big_local, 1);
}

/* ----------------------------------------------------- stack reuse */

#define ROUNDS 10
#define PER_ROUND 1000

typedef struct reuse {
    uintptr_t first[PER_ROUND];
    int nfirst;
    int reused;
    int counter;
    int maps_after[ROUNDS];
    int gather_rc;
    int64_t elapsed;
    int round;
} reuse;

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int reuse_task(void *arg)
{
    reuse *r = arg;
    /* the page of the stack this task runs on */
    uintptr_t page = (uintptr_t)__builtin_frame_address(0) & ~(uintptr_t)4095;
    if (r->round == 0) {
        r->first[r->nfirst++] = page;
    } else if (bsearch(&page, r->first, (size_t)r->nfirst, sizeof page, cmp_uptr)) {
        r->reused++;
    }
    tide_sleep(0);
    r->counter++;
    return 0;
}

static int reuse_main(void *arg)
{
    reuse *r = arg;
    tide_task **t = calloc(PER_ROUND, sizeof *t);
    int64_t t0 = tide_now();
    for (r->round = 0; r->round < ROUNDS; r->round++) {
        for (int i = 0; i < PER_ROUND; i++)
            if (tide_create_task(&t[i], reuse_task, r) != 0)
                return -1;
        int rc = tide_gather(t, PER_ROUND, NULL);
        if (rc != 0)
            r->gather_rc = rc;
        if (r->round == 0)
            qsort(r->first, (size_t)r->nfirst, sizeof r->first[0], cmp_uptr);
        r->maps_after[r->round] = tt_count_maps();
    }
    r->elapsed = tide_now() - t0;
    free(t);
    return 0;
}

static void test_stacks_reused(void **state)
{
    (void)state;
    reuse *r = calloc(1, sizeof *r);
    assert_int_equal(tide_run(reuse_main, r), 0);
    assert_int_equal(r->gather_rc, 0);
    assert_int_equal(r->counter, ROUNDS * PER_ROUND);
    assert_int_equal(r->nfirst, PER_ROUND);
    /* later rounds run on the stacks of the first */
    assert_true(r->reused > 0);
    print_message("reused %d of %d; maps %d -> %d; %lld ms\n", r->reused,
                  (ROUNDS - 1) * PER_ROUND, r->maps_after[1], r->maps_after[ROUNDS - 1],
                  (long long)r->elapsed);
    /* no mappings leaked round after round (a leak of 1000 stacks would add
     * at least 1000 mappings per round) */
    assert_true(r->maps_after[ROUNDS - 1] - r->maps_after[1] < 200);
    if (!tt_under_valgrind())
        assert_true(r->elapsed < 10000);

    /* nor across runs */
    int maps0 = tt_count_maps();
    for (int i = 0; i < 3; i++) {
        memset(r, 0, sizeof *r);
        assert_int_equal(tide_run(reuse_main, r), 0);
    }
    int maps1 = tt_count_maps();
    print_message("maps across runs: %d -> %d\n", maps0, maps1);
    assert_true(maps1 - maps0 < 200);
    free(r);
}

/* ------------------------------- lazy binding and unguarded stacks
 *
 * This program is linked without -z now: the first TIDE_STACK_UNGUARDED
 * task made in it gets one warning on stderr (a lazily bound first call can
 * overflow such a stack); run with LD_BIND_NOW it gets none. */

#define LAZY_WARNING "tide: warning: TIDE_STACK_UNGUARDED tasks in a program that binds symbols lazily"

static int ret5(void *arg)
{
    (void)arg;
    return 5;
}

static int unguarded_main(void *arg)
{
    tide_task_opts o;
    tide_task *t;
    (void)arg;
    tide_task_opts_init(&o);
    o.flags = TIDE_STACK_UNGUARDED;
    if (tide_create_task_ex(&t, NULL, ret5, NULL, &o) != 0)
        return -1;
    return tide_await(t);
}

static int unguarded_child(void)
{
    return tide_run(unguarded_main, NULL) == 5 ? 0 : 1;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_lazy_binding_warning(void **state)
{
    (void)state;
    tt_capture c;
    assert_int_equal(tt_capture_begin(&c), 0);
    int r1 = tide_run(unguarded_main, NULL);
    int r2 = tide_run(unguarded_main, NULL); /* a second loop: not said again */
    char *err = tt_capture_end(&c);
    print_message("stderr: <<%s>>\n", err);
    assert_int_equal(r1, 5);
    assert_int_equal(r2, 5);
    if (getenv("LD_BIND_NOW") && *getenv("LD_BIND_NOW"))
        assert_int_equal(count_of(err, LAZY_WARNING), 0);
    else
        assert_int_equal(count_of(err, LAZY_WARNING), 1);
    free(err);

    /* with LD_BIND_NOW: no warning (status 3: this binary cannot exec
     * itself here, e.g. qemu-user without binfmt_misc) */
    int status;
    char *out = tt_run_self(UNGUARDED_FLAG, NULL, "LD_BIND_NOW=1", &status);
    assert_non_null(out);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 3) {
        print_message("cannot exec this test again here (an emulator without binfmt_misc?); "
                      "the LD_BIND_NOW half is not run\n");
        free(out);
        return;
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    if (strstr(out, LAZY_WARNING))
        fail_msg("warned under LD_BIND_NOW: <<%s>>", out);
    free(out);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], OVERFLOW_FLAG) == 0)
        return overflow_child();
    if (argc > 1 && strcmp(argv[1], CLASH_FLAG) == 0)
        return clash_child();
    if (argc > 1 && strcmp(argv[1], UNGUARDED_FLAG) == 0)
        return unguarded_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_is_reported),
        cmocka_unit_test(test_stack_clash_is_reported),
        cmocka_unit_test(test_deep_recursion_within_stack),
        cmocka_unit_test(test_stacks_reused),
        cmocka_unit_test(test_lazy_binding_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
