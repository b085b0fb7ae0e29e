/*
 * Tests of small unguarded stacks (tide_task_opts.flags TIDE_STACK_UNGUARDED):
 * bad arguments are refused; such tasks run, sleep, are cancelled, are
 * dumped with their backtraces, work in debug mode and when their loop is
 * freed under them; several share a page; stacks are reused LIFO and cost
 * few mappings; what tide's own suspend paths take of them is measured (the
 * minimum size rests on it); an overflow is reported and aborts, in forked
 * children: written over the canary, suspended below it (the canary jumped),
 * and into the guard below a chunk's first stack; a signal delivered while
 * a small task runs goes on the alternate stack.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/poll.h> /* not <poll.h>: src/poll.h shadows it */
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "tide_int.h"
#include "util.h"
#include "vrun.h"

#if defined(TT_ASAN) || defined(TT_TSAN)
#define SAN 1
#else
#define SAN 0
#endif
/* The least an unguarded stack gets in a process that is not under
 * valgrind: 2 KiB, but 8 KiB in sanitizer builds and 4 KiB with the
 * ucontext switch (its task struct is 1.3 KiB). */
#if SAN
#define FLOOR_NATIVE 8192
#elif defined(TIDE_CONTEXT_UCONTEXT)
#define FLOOR_NATIVE 4096
#else
#define FLOOR_NATIVE TIDE_SMALL_STACK_MIN
#endif
/* ... and in this process (valgrind: 8 KiB) */
static size_t floor_size(void)
{
    return tt_under_valgrind() ? 8192 : FLOOR_NATIVE;
}
static int big_floor(void)
{
    return floor_size() > TIDE_SMALL_STACK_MIN;
}
#define SMALL ((int)(floor_size() > TIDE_SMALL_STACK_DEFAULT ? floor_size() : TIDE_SMALL_STACK_DEFAULT))
#define AT_LEAST(n) ((n) > floor_size() ? (size_t)(n) : floor_size())

static tide_task_opts small_opts(const char *name, size_t size)
{
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = name;
    o.stack_size = size;
    o.flags = TIDE_STACK_UNGUARDED;
    return o;
}

static int nop(void *arg)
{
    (void)arg;
    return 7;
}

/* ----------------------------------------------------------- arguments */

static size_t live_tasks(void)
{
    return (size_t)tide_task_list(NULL, NULL, 0);
}

static int args_main(void *arg)
{
    tide_task_opts o;
    tide_task *t;
    size_t before = live_tasks();
    (void)arg;

    /* unknown flags, alone or with the real one */
    tide_task_opts_init(&o);
    assert_int_equal(o.flags, 0u);
    o.flags = 0x2;
    assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), -EINVAL);
    assert_null(t);
    o.flags = TIDE_STACK_UNGUARDED | 0x80000000u;
    assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), -EINVAL);
    /* sizes out of the small range, guarded sizes included: a size that a
     * guarded stack serves is not silently made unguarded */
    static const size_t bad[] = {1,
                                 64,
                                 TIDE_SMALL_STACK_MIN - 1,
                                 TIDE_SMALL_STACK_MAX + 1,
                                 TIDE_MIN_STACK_SIZE,
                                 TIDE_DEFAULT_STACK_SIZE,
                                 SIZE_MAX};
    for (size_t i = 0; i < TT_ARRAY_LEN(bad); i++) {
        o = small_opts("bad", bad[i]);
        assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), -EINVAL);
    }
    /* without the flag, small sizes stay refused (the default is untouched) */
    tide_task_opts_init(&o);
    o.stack_size = TIDE_SMALL_STACK_DEFAULT;
    assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), -EINVAL);
    assert_int_equal(live_tasks(), before); /* nothing was left behind */

    /* good ones: 0 is the default, sizes are rounded up to 256 bytes */
    const struct {
        size_t ask, get;
    } good[] = {{0, (size_t)SMALL},
                {TIDE_SMALL_STACK_MIN, AT_LEAST(TIDE_SMALL_STACK_MIN)},
                {2500, AT_LEAST(2560)},
                {TIDE_SMALL_STACK_MAX, TIDE_SMALL_STACK_MAX}};
    for (size_t i = 0; i < TT_ARRAY_LEN(good); i++) {
        o = small_opts("good", good[i].ask);
        assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), 0);
        tide_task_info all[8];
        ssize_t n = tide_task_list(NULL, all, 8);
        assert_true(n >= 2);
        assert_ptr_equal(all[n - 1].task, t);
        assert_int_equal(all[n - 1].stack_size, good[i].get);
        assert_int_equal(tide_await(t), 7);
    }
    return 0;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(args_main, NULL), 0);
}

/* ------------------------------------------- run, sleep, share pages */

#define NSHARE 64

typedef struct share {
    uintptr_t page[NSHARE];
    int woke;
} share;

static int share_body(void *arg)
{
    share *s = arg;
    tide_task *me = tide_current_task();
    int i = (int)(me->id % NSHARE);
    s->page[i] = (uintptr_t)__builtin_frame_address(0) & ~(uintptr_t)4095;
    if (tide_sleep(10) != 0)
        return -1;
    s->woke++;
    return i;
}

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int share_main(void *arg)
{
    share *s = arg;
    tide_task *t[NSHARE];
    tide_task_opts o = small_opts("share", 0);
    int64_t t0 = tide_now();

    uint64_t id[NSHARE];
    for (int i = 0; i < NSHARE; i++) {
        assert_int_equal(tide_create_task_ex(&t[i], NULL, share_body, s, &o), 0);
        id[i] = t[i]->id;
    }
    for (int i = 0; i < NSHARE; i++)
        assert_int_equal(tide_await(t[i]), (int)(id[i] % NSHARE));
    assert_int_equal(tide_now() - t0, 10); /* virtual time: the sleep, exactly */
    return 0;
}

static void test_run_sleep_share_pages(void **state)
{
    (void)state;
    share s;
    memset(&s, 0, sizeof s);
    assert_int_equal(tt_vrun(share_main, &s), 0);
    assert_int_equal(s.woke, NSHARE);
    qsort(s.page, NSHARE, sizeof s.page[0], cmp_uptr);
    int pages = 1;
    for (int i = 1; i < NSHARE; i++)
        pages += s.page[i] != s.page[i - 1];
    print_message("%d tasks on %d-byte stacks ran on %d pages\n", NSHARE, SMALL, pages);
    /* 2 KiB stacks: two a page (one more for a chunk that starts mid-page) */
    assert_true(pages <= NSHARE * SMALL / 4096 + 1);
    if (!big_floor())
        assert_true(pages < NSHARE);
}

/* ----------------------------------------------------------- cancel */

static int sleep_long(void *arg)
{
    int *reached = arg;
    int rc = tide_sleep(1000000);
    (*reached)++;
    return rc;
}

static int cancel_main(void *arg)
{
    (void)arg;
    int reached = 0;
    tide_task *a, *b, *c;
    tide_task_opts o = small_opts("cancelled", 0);

    assert_int_equal(tide_create_task_ex(&a, NULL, sleep_long, &reached, &o), 0);
    assert_int_equal(tide_create_task_ex(&b, NULL, sleep_long, &reached, &o), 0);
    assert_int_equal(tide_create_task_ex(&c, NULL, sleep_long, &reached, &o), 0);
    assert_int_equal(tide_cancel(c), 0); /* before it started: it never runs */
    assert_int_equal(tide_sleep(5), 0);  /* a and b sleep */
    assert_int_equal(tide_cancel(a), 0);
    assert_int_equal(tide_await(a), -ECANCELED);
    assert_int_equal(reached, 1); /* a woke inside its sleep and returned */
    /* a timeout on the awaiting side cancels b too */
    tide_scope s;
    assert_int_equal(tide_timeout_begin(&s, 5), 0);
    assert_int_equal(tide_await(b), -ETIMEDOUT);
    assert_int_equal(tide_timeout_end(&s), -ETIMEDOUT);
    assert_int_equal(tide_await(b), -ECANCELED);
    assert_int_equal(tide_await(c), -ECANCELED);
    assert_int_equal(reached, 2);
    return 0;
}

static void test_cancel(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(cancel_main, NULL), 0);
}

/* ------------------------------------------------------------- dump */

static tide_event dump_ev;

static volatile int dump_woke;

__attribute__((noinline)) static int small_dump_body(void *arg)
{
    (void)arg;
    int rc = tide_event_wait(&dump_ev);
    dump_woke++; /* not a tail call: this frame stays on the stack */
    return rc;
}

static int dump_main(void *arg)
{
    (void)arg;
    tide_task *t[5];
    tide_task_opts o = small_opts("tiny", 0);

    tide_event_init(&dump_ev);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tide_create_task_ex(&t[i], NULL, small_dump_body, NULL, &o), 0);
    assert_int_equal(tide_sleep(1), 0);
    int mfd = memfd_create("dump", 0);
    assert_true(mfd >= 0);
    assert_int_equal(tide_loop_dump(NULL, mfd), 0);
    off_t len = lseek(mfd, 0, SEEK_END);
    char *d = malloc((size_t)len + 1);
    assert_non_null(d);
    assert_int_equal(pread(mfd, d, (size_t)len, 0), len);
    d[len] = '\0';
    close(mfd);
    if (getenv("TIDE_DUMP_PRINT"))
        fputs(d, stderr);
    assert_non_null(strstr(d, "\"tiny\""));
#ifndef TIDE_NO_FRAME_POINTERS
    assert_non_null(strstr(d, "small_dump_body")); /* the walk stayed inside the small stack */
    assert_non_null(strstr(d, "5 tasks with this stack:"));
#endif
    free(d);
    tide_event_set(&dump_ev);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tide_await(t[i]), 0);
    return 0;
}

static void test_dump(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(dump_main, NULL), 0);
}

/* ------------------------------- debug mode, and a loop freed under them */

static int debug_main(void *arg)
{
    tide_task **ts = arg;
    tide_task_opts o = small_opts("dbg", 0);
    int reached = 0;

    for (int i = 0; i < 100; i++) {
        tide_task *t;
        assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), 0);
        assert_int_equal(tide_await(t), 7);
    }
    /* left sleeping: the loop is freed with them (their stacks go with it) */
    for (int i = 0; i < 10; i++)
        assert_int_equal(tide_create_task_ex(&ts[i], NULL, sleep_long, &reached, &o), 0);
    assert_int_equal(tide_sleep(1), 0);
    return 0;
}

static void test_debug_mode_and_loop_free(void **state)
{
    (void)state;
    tide_task *ts[10];
    int maps0 = tt_count_maps();
    for (int round = 0; round < 3; round++) {
        tide_loop *loop;
        tide_task *m;
        tide_task_opts o;
        assert_int_equal(tide_loop_new(&loop), 0);
        assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
        if (round > 0)
            assert_int_equal(tide_loop_set_debug(loop, NULL), 0);
        tide_task_opts_init(&o);
        assert_int_equal(tide_create_task_ex(&m, loop, debug_main, ts, &o), 0);
        assert_int_equal(tide_loop_run_until_complete(loop, m), 0);
        tt_capture cap;
        assert_int_equal(tt_capture_begin(&cap), 0);
        tide_loop_free(loop); /* debug mode: reports the 10 never awaited */
        char *err = tt_capture_end(&cap);
        if (round > 0 && !strstr(err, "\"dbg\" was never awaited"))
            fail_msg("no leak report for the small tasks: <<%s>>", err);
        free(err);
    }
    int maps1 = tt_count_maps();
    print_message("maps %d -> %d over 3 loops\n", maps0, maps1);
    /* every chunk was unmapped (sanitizers map memory of their own) */
    assert_true(maps1 - maps0 < (SAN ? 64 : 10));
}

/* ------------------------------------------ LIFO reuse and mappings */

#define MANY 20000

typedef struct many {
    tide_task **t;
    int maps_before, maps_during;
    void *lo_first, *lo_again;
} many;

static int hold(void *arg)
{
    (void)arg;
    return tide_sleep(1);
}

static int many_main(void *arg)
{
    many *m = arg;
    tide_task_opts o = small_opts("many", 0);
    tide_task *t;

    /* LIFO: the stack a task gave back is the next one handed out */
    assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), 0);
    m->lo_first = t->stack_lo;
    assert_int_equal(tide_await(t), 7);
    assert_int_equal(tide_create_task_ex(&t, NULL, nop, NULL, &o), 0);
    m->lo_again = t->stack_lo;
    assert_int_equal(tide_await(t), 7);

    m->maps_before = tt_count_maps();
    for (int i = 0; i < MANY; i++)
        assert_int_equal(tide_create_task_ex(&m->t[i], NULL, hold, NULL, &o), 0);
    assert_int_equal(tide_sleep(0), 0);
    m->maps_during = tt_count_maps();
    for (int i = 0; i < MANY; i++)
        assert_int_equal(tide_await(m->t[i]), 0);
    return 0;
}

static void test_reuse_and_mappings(void **state)
{
    (void)state;
    many m;
    memset(&m, 0, sizeof m);
    m.t = calloc(MANY, sizeof *m.t);
    assert_non_null(m.t);
    assert_int_equal(tt_vrun(many_main, &m), 0);
    assert_ptr_equal(m.lo_first, m.lo_again);
    print_message("%d small tasks alive: mappings %d -> %d\n", MANY, m.maps_before,
                  m.maps_during);
    /* 20000 stacks of 2 KiB in chunks of 4096: 5 chunks, each at most a
     * mapping and a guard (mprotect fallback).  TSan maps memory for every
     * fiber (task) it follows: not checked there. */
    if (!tt_under_tsan())
        assert_true(m.maps_during - m.maps_before <= 2 * (MANY / 4096 + 1) + (SAN ? 64 : 0));
    free(m.t);
}

/* ------------------------------- how much of the stack tide's paths take */

#define PAINT 0x5a

typedef struct depth {
    int what;
    size_t used; /* bytes from the stack's top (task struct included) to the deepest write */
} depth;

static tide_event depth_ev;

/* Paints the stack below this frame, runs a suspending call, and finds the
 * deepest byte it wrote.  Not instrumented by ASan: the paint goes where
 * frames that ended left their redzones poisoned. */
#ifdef TT_ASAN
__attribute__((no_sanitize_address))
#endif
__attribute__((noinline)) static int depth_body(void *arg)
{
    depth *d = arg;
    tide_task *me = tide_current_task();
    char *lo = (char *)me->stack_lo + TIDE__CANARY_BYTES;
    char *sp = __builtin_frame_address(0);
    volatile char *p;
    int rc = 0;

    /* below our own frame, leaving room for the stores that paint */
    for (p = sp - 256; p >= lo; p--)
        *p = PAINT;
    switch (d->what) {
    case 0:
        rc = tide_sleep(1);
        break;
    case 1:
        rc = tide_sleep(0); /* a yield */
        break;
    case 2:
        rc = tide_event_wait(&depth_ev); /* cancelled while it waits */
        break;
    case 3: {
        tide_scope s;
        tide_timeout_begin(&s, 1);
        rc = tide_event_wait(&depth_ev);
        tide_timeout_end(&s);
        break;
    }
    }
    for (p = lo; p < sp - 256 && *p == PAINT; p++)
        ;
    d->used = (size_t)((char *)me->stack_lo + me->stack_size - (char *)p);
    return rc;
}

static int depth_main(void *arg)
{
    depth *d = arg;
    tide_task_opts o = small_opts("depth", TIDE_SMALL_STACK_MAX);
    for (int w = 0; w < 4; w++) {
        tide_task *t;
        d[w].what = w;
        assert_int_equal(tide_create_task_ex(&t, NULL, depth_body, &d[w], &o), 0);
        if (w == 2) {
            assert_int_equal(tide_sleep(1), 0);
            assert_int_equal(tide_cancel(t), 0);
        }
        int rc = tide_await(t);
        assert_int_equal(rc, w == 2 ? -ECANCELED : w == 3 ? -ETIMEDOUT : 0);
    }
    return 0;
}

static void test_depth_of_tide_paths(void **state)
{
    (void)state;
    static const char *names[4] = {"sleep", "yield", "cancelled wait", "timed-out wait"};
    if (tt_under_valgrind())
        skip(); /* it paints and reads below the stack pointer, on purpose */
    for (int dbg = 0; dbg < 2; dbg++) {
        depth d[4];
        tide_loop *loop;
        tide_task *m;
        tide_task_opts o;
        memset(d, 0, sizeof d);
        tide_event_init(&depth_ev);
        assert_int_equal(tide_loop_new(&loop), 0);
        assert_int_equal(tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP), 0);
        if (dbg)
            assert_int_equal(tide_loop_set_debug(loop, NULL), 0);
        tide_task_opts_init(&o);
        assert_int_equal(tide_create_task_ex(&m, loop, depth_main, d, &o), 0);
        assert_int_equal(tide_loop_run_until_complete(loop, m), 0);
        tide_loop_free(loop);
        for (int w = 0; w < 4; w++) {
            print_message("%s%s: %zu bytes of an unguarded stack used, from its top "
                          "(task struct %zu)\n",
                          names[w], dbg ? " (debug mode)" : "", d[w].used, sizeof(tide_task));
            /* what TIDE_SMALL_STACK_MIN rests on: the struct, the canary,
             * these paths and room left for the task's own frames
             * (docs/stacks.md) */
            if (!SAN)
                assert_true(d[w].used + TIDE__CANARY_BYTES + 768 <= floor_size());
            assert_true(d[w].used + TIDE__CANARY_BYTES <= (size_t)SMALL);
        }
    }
}

/* ------------------------------------------------ the overflowing children */

#define CANARY_FLAG "--canary-child"
#define JUMP_FLAG "--jump-child"
#define GUARD_FLAG "--guard-child"
#define WATCHDOG_FLAG "--watchdog-child"
#define SIGWAIT_FLAG "--sigwait-child"

static volatile size_t sink;

/* Writes the n bytes below its caller's frame: the canary and what lies
 * below it, the neighbour's top. */
__attribute__((noinline)) static void write_down(size_t n)
{
    char buf[n];
    memset(buf, 0x11, n);
    __asm__ volatile("" : : "r"(buf) : "memory"); /* the writes stay */
    sink += (size_t)buf[n / 2];
}

/* Reserves n bytes it does not write, and suspends below them. */
__attribute__((noinline)) static int sleep_below(size_t n)
{
    char buf[n];
    buf[n - 1] = 1; /* the top of the frame only: the canary stays whole */
    __asm__ volatile("" : : "r"(buf) : "memory"); /* buf escapes: clang keeps it */
    int rc = tide_sleep(0);
    sink += (size_t)buf[n - 1];
    return rc;
}

static int canary_body(void *arg)
{
    tide_task *me = tide_current_task();
    char *sp = __builtin_frame_address(0);
    size_t to_lo = (size_t)(sp - (char *)me->stack_lo);
    if ((intptr_t)arg == 0)
        write_down(to_lo + 32); /* returns: the stack pointer is back up */
    else
        sleep_below(to_lo + 512); /* sleeps 512 bytes below its stack */
    tide_sleep(0);             /* the switch out that checks */
    return 0;
}

static int neighbour(void *arg)
{
    (void)arg;
    return tide_sleep(1000);
}

static int canary_main(void *arg)
{
    tide_task *n[4], *t;
    tide_task_opts o = small_opts("nb", 0);
    /* neighbours first: the overflowing stack is not its chunk's first */
    for (int i = 0; i < 4; i++)
        if (tide_create_task_ex(&n[i], NULL, neighbour, NULL, &o) != 0)
            return -1;
    o.name = "shallow";
    if (tide_create_task_ex(&t, NULL, canary_body, arg, &o) != 0)
        return -1;
    return tide_await(t);
}

static int canary_child(void)
{
    int rc = tide_run(canary_main, (void *)0);
    fprintf(stderr, "child: tide_run returned %d (no overflow detected)\n", rc);
    return 3;
}

static int jump_child(void)
{
    int rc = tide_run(canary_main, (void *)1);
    fprintf(stderr, "child: tide_run returned %d (no overflow detected)\n", rc);
    return 3;
}

__attribute__((noinline)) static int recurse(int depth, int limit)
{
    volatile char buf[256];
    buf[0] = (char)depth;
    if (depth >= limit)
        return 0;
    return recurse(depth + 1, limit) + buf[0];
}

static int deep(void *arg)
{
    (void)arg;
    return recurse(0, INT_MAX);
}

static int guard_main(void *arg)
{
    (void)arg;
    tide_task *t;
    tide_task_opts o = small_opts("first", 0);
    /* the first stack of the loop's first small chunk: the guard is below */
    if (tide_create_task_ex(&t, NULL, deep, NULL, &o) != 0)
        return -1;
    return tide_await(t);
}

static int guard_child(void)
{
    int rc = tide_run(guard_main, NULL);
    fprintf(stderr, "child: tide_run returned %d (no overflow detected)\n", rc);
    return 3;
}

/* ------------------------------- a signal while a small task runs
 *
 * Debug mode's watchdog signals the loop thread while a step is slow, to
 * take its backtrace: the signal frame (up to 11.7 KiB here with AVX-512)
 * must go on the alternate stack (SA_ONSTACK), not on the 2 KiB stack of
 * the running task, the first of its chunk, right above the chunk's guard. */

static int spinner(void *arg)
{
    (void)arg;
    tt_spin_ms(300); /* a slow step: the watchdog fires while it runs */
    return 0;
}

static int watchdog_child(void)
{
    tide_loop *loop;
    tide_task *t;
    tide_debug_opts d;
    tide_task_opts o = small_opts("spinner", 0);

    if (tide_loop_new(&loop) != 0)
        return 4;
    tide_debug_opts_init(&d);
    d.slow_step_ms = 20;
    if (tide_loop_set_debug(loop, &d) != 0)
        return 5;
    if (tide_create_task_ex(&t, loop, spinner, NULL, &o) != 0)
        return 6;
    if (tide_loop_run_until_complete(loop, t) != 0)
        return 7;
    tide_loop_free(loop);
    return 0;
}

/* tide_signal_wait's handler (the self-pipe build, -DTIDE_NO_SIGNALFD and
 * other systems; signalfd blocks the signal instead) when the signal comes
 * while a small task runs: the first of its chunk raises it. */

static int sig_waiter(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    *(int *)arg = tide_signal_wait(&set);
    return 0;
}

static int raiser(void *arg)
{
    (void)arg;
    return raise(SIGUSR2);
}

static int sigwait_main(void *arg)
{
    int *got = arg;
    tide_task *w, *r;
    tide_task_opts o = small_opts("raiser", 0);

    if (tide_create_task(&w, sig_waiter, got) != 0 || tide_sleep(0) != 0)
        return -1; /* the waiter waits in tide_signal_wait now */
    if (tide_create_task_ex(&r, NULL, raiser, NULL, &o) != 0 || tide_await(r) != 0)
        return -2;
    return tide_await(w);
}

static int sigwait_child(void)
{
    int got = 0, rc;

    alarm(10); /* a handler on the small stack hangs in its fault (seen): fail instead */
    rc = tide_run(sigwait_main, &got);
    if (rc != 0 || got != SIGUSR2) {
        fprintf(stderr, "child: tide_run %d, tide_signal_wait %d\n", rc, got);
        return 8;
    }
    return 0;
}

/* Runs this test program again with flag (without exec: child() in the
 * fork); returns its stderr (malloc'd) once it ended, and its wait status
 * in *status. */
static char *run_self_status(const char *flag, int (*child)(void), int *status);

static void test_signal_while_small_task_runs(void **state)
{
    (void)state;
    if (tt_under_valgrind())
        skip(); /* a 300 ms step under valgrind proves nothing more */
    int status;
    char *out = run_self_status(WATCHDOG_FLAG, watchdog_child, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child: status 0x%x: <<%s>>", status, out);
    /* the watchdog did signal the thread while the small task ran */
    if (!strstr(out, "spinner"))
        fail_msg("no slow-step report naming the task: <<%s>>", out);
    free(out);
}

static void test_signal_wait_while_small_task_runs(void **state)
{
    (void)state;
    int status;
    char *out = run_self_status(SIGWAIT_FLAG, sigwait_child, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child: status 0x%x: <<%s>>", status, out);
    free(out);
}

/* As run_self_status, and checks that the child died of SIGABRT. */
static char *run_self(const char *flag, int (*child)(void))
{
    int status;
    char *out = run_self_status(flag, child, &status);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with status %d, not by a signal: <<%s>>", WEXITSTATUS(status),
                 out);
    if (WTERMSIG(status) != SIGABRT)
        fail_msg("child died of signal %d, not SIGABRT: <<%s>>", WTERMSIG(status), out);
    return out;
}

static char *run_self_status(const char *flag, int (*child)(void), int *status)
{
    char *out = tt_run_self(flag, child, NULL, status);

    assert_non_null(out);
    print_message("child stderr: <<%s>>\n", out);
    return out;
}

static void expect_report(const char *out, const char *name)
{
    char want[128];
    snprintf(want, sizeof want,
             "tide: stack overflow (unguarded small stack) in task '%s' (id ", name);
    if (!strstr(out, want))
        fail_msg("no '%s' in <<%s>>", want, out);
    /* the child is not under valgrind (exec), so 2 KiB there, but for
     * sanitizer builds */
    snprintf(want, sizeof want, "stack size %d bytes", FLOOR_NATIVE);
    if (!strstr(out, want) && !(tt_under_valgrind() && strstr(out, "stack size 8192 bytes")))
        fail_msg("no '%s' in <<%s>>", want, out);
}

static void test_overflow_over_canary(void **state)
{
    (void)state;
    char *out = run_self(CANARY_FLAG, canary_child);
    expect_report(out, "shallow");
    free(out);
}

static void test_overflow_jumping_canary(void **state)
{
    (void)state;
    char *out = run_self(JUMP_FLAG, jump_child);
    expect_report(out, "shallow");
    free(out);
}

static void test_overflow_into_chunk_guard(void **state)
{
    (void)state;
    char *out = run_self(GUARD_FLAG, guard_child);
    expect_report(out, "first");
    free(out);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], CANARY_FLAG) == 0)
        return canary_child();
    if (argc > 1 && strcmp(argv[1], JUMP_FLAG) == 0)
        return jump_child();
    if (argc > 1 && strcmp(argv[1], GUARD_FLAG) == 0)
        return guard_child();
    if (argc > 1 && strcmp(argv[1], WATCHDOG_FLAG) == 0)
        return watchdog_child();
    if (argc > 1 && strcmp(argv[1], SIGWAIT_FLAG) == 0)
        return sigwait_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_run_sleep_share_pages),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_debug_mode_and_loop_free),
        cmocka_unit_test(test_reuse_and_mappings),
        cmocka_unit_test(test_depth_of_tide_paths),
        cmocka_unit_test(test_overflow_over_canary),
        cmocka_unit_test(test_overflow_jumping_canary),
        cmocka_unit_test(test_overflow_into_chunk_guard),
        cmocka_unit_test(test_signal_while_small_task_runs),
        cmocka_unit_test(test_signal_wait_while_small_task_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
