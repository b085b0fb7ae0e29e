/*
 * Context switch cost: tide's switch (tide__ctx_switch, src/ctx.h) between two
 * contexts ping-ponging, against glibc's swapcontext and, when available,
 * Boost.Context's jump_fcontext -- all measured in this run.
 *
 * One "switch" is one direction (main -> coroutine or back); a round trip is
 * two.  The fast variants run interleaved (tide, boost, tide, boost, ...) so
 * that noise from other processes hits both alike; each figure is the best
 * of its repetitions.
 *
 * Aim (issue): <= 3 ns/switch on x86_64, and no slower than jump_fcontext.
 * Built with -DTIDE_CONTEXT=ucontext, tide__ctx_switch *is* swapcontext.
 */
#include "bench.h"
#include "ctx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#define FAST_SWITCHES 10000000L /* per repetition, tide asm and boost */
#define SLOW_SWITCHES 1000000L  /* per repetition, swapcontext */
#define FAST_REPS 7
#define SLOW_REPS 3
#define STACK_SIZE (64 * 1024)

#ifdef TIDE_CONTEXT_UCONTEXT
#define VARIANT "ucontext (TIDE_CONTEXT_UCONTEXT: tide__ctx_switch is swapcontext)"
#define TIDE_SWITCHES SLOW_SWITCHES
#else
#define VARIANT "asm"
#define TIDE_SWITCHES FAST_SWITCHES
#endif

static void *stack_alloc(void)
{
    void *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(p != MAP_FAILED, "mmap");
    return p;
}

/* ------------------------------------------------------------ tide */

static tide__ctx t_main, t_co;
static volatile long t_count;

static void t_entry(void *arg)
{
    (void)arg;
    for (;;) {
        t_count++;
        tide__ctx_switch(&t_co, &t_main);
    }
}

static double bench_tide(long switches)
{
    long i, rounds = switches / 2;
    int64_t t0, t1;

    t_count = 0;
    t0 = bench_ns();
    for (i = 0; i < rounds; i++)
        tide__ctx_switch(&t_main, &t_co);
    t1 = bench_ns();
    BENCH_CHECK(t_count == rounds, "coroutine ran %ld times, expected %ld", t_count, rounds);
    return (double)(t1 - t0) / (double)(2 * rounds);
}

/* ------------------------------------------------------ swapcontext */

static ucontext_t u_main, u_co;
static volatile long u_count;

static void u_entry(void)
{
    for (;;) {
        u_count++;
        swapcontext(&u_co, &u_main);
    }
}

static double bench_ucontext(long switches)
{
    long i, rounds = switches / 2;
    int64_t t0, t1;

    u_count = 0;
    t0 = bench_ns();
    for (i = 0; i < rounds; i++)
        swapcontext(&u_main, &u_co);
    t1 = bench_ns();
    BENCH_CHECK(u_count == rounds, "coroutine ran %ld times, expected %ld", u_count, rounds);
    return (double)(t1 - t0) / (double)(2 * rounds);
}

/* ------------------------------------------------- Boost.Context */

#ifdef TIDE_HAVE_BOOST_CONTEXT
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static fcontext_t b_co;
static volatile long b_count;

static void b_entry(transfer_t t)
{
    for (;;) {
        b_count++;
        t = jump_fcontext(t.fctx, NULL);
    }
}

static double bench_boost(long switches)
{
    long i, rounds = switches / 2;
    int64_t t0, t1;
    fcontext_t c = b_co;

    b_count = 0;
    t0 = bench_ns();
    for (i = 0; i < rounds; i++)
        c = jump_fcontext(c, NULL).fctx;
    t1 = bench_ns();
    b_co = c;
    BENCH_CHECK(b_count == rounds, "coroutine ran %ld times, expected %ld", b_count, rounds);
    return (double)(t1 - t0) / (double)(2 * rounds);
}
#endif

/* Out of line: getcontext returns twice, which would clobber main's locals. */
static __attribute__((noinline)) void ucontext_init(void)
{
    char *us = stack_alloc();

    getcontext(&u_co);
    u_co.uc_stack.ss_sp = us;
    u_co.uc_stack.ss_size = STACK_SIZE;
    u_co.uc_link = NULL;
    makecontext(&u_co, u_entry, 0);
}

int main(void)
{
    double tide = 1e30, uc = 1e30;
    int r;
    char *ts = stack_alloc();

    tide__ctx_make(&t_co, ts, STACK_SIZE, t_entry, NULL);
    ucontext_init();
#ifdef TIDE_HAVE_BOOST_CONTEXT
    double boost = 1e30;
    char *bs = stack_alloc();
    b_co = make_fcontext(bs + STACK_SIZE, STACK_SIZE, b_entry);
    /* warm up */
    (void)bench_boost(100000);
#endif
    (void)bench_tide(100000);
    (void)bench_ucontext(10000);

    for (r = 0; r < FAST_REPS; r++) {
        tide = bench_min(tide, bench_tide(TIDE_SWITCHES));
#ifdef TIDE_HAVE_BOOST_CONTEXT
        boost = bench_min(boost, bench_boost(FAST_SWITCHES));
#endif
        if (r < SLOW_REPS)
            uc = bench_min(uc, bench_ucontext(SLOW_SWITCHES));
    }

    printf("ctx_switch: variant %s, ns per one-way switch, best of %d reps\n", VARIANT,
           FAST_REPS);
    printf("ctx_switch: tide__ctx_switch  %7.2f ns/switch (%ld switches/rep)\n", tide,
           (long)TIDE_SWITCHES);
    printf("ctx_switch: swapcontext       %7.2f ns/switch (%ld switches/rep, best of %d) "
           "-> tide/swapcontext = %.3f (%.1fx faster)\n",
           uc, SLOW_SWITCHES, SLOW_REPS, tide / uc, uc / tide);
#ifdef TIDE_HAVE_BOOST_CONTEXT
    printf("ctx_switch: jump_fcontext     %7.2f ns/switch (%ld switches/rep) "
           "-> tide/jump_fcontext = %.2f (aim <= 1.0: %s)\n",
           boost, FAST_SWITCHES, tide / boost,
           tide <= boost ? "met" : tide <= boost * 1.05 ? "met within 5% noise" : "MISSED");
#else
    printf("ctx_switch: jump_fcontext     not measured (Boost.Context not found)\n");
#endif
#if defined(__x86_64__)
    printf("ctx_switch: aim <= 3 ns/switch on x86_64: %s\n", tide <= 3.0 ? "met" : "MISSED");
#endif
    return 0;
}
