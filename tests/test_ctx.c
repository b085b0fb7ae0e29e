/*
 * Tests of the internal context switch (src/ctx.h): callee-saved registers
 * and FP state survive many switches, each context keeps its own FP control
 * state (MXCSR / x87 control word: rounding mode), the entry function gets
 * its argument on a correctly aligned stack.
 */
#define _GNU_SOURCE
/* Keep long-lived values in callee-saved registers across the switch even
 * in Debug builds, so a switch that loses rbx/rbp/r12-r15 fails here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fenv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef __x86_64__
#include <xmmintrin.h>
#endif

#include "ctx.h"
#include "util.h"

#define STACK_SIZE (256 * 1024)
#define NSWITCH 10000

typedef struct tt_stack {
    char *map;  /* mapping, guard page first */
    size_t len;
    char *lo;   /* usable bottom */
    size_t size;
    unsigned vg_id;
} tt_stack;

static void stack_alloc(tt_stack *s, size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    s->len = size + page;
    s->map = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(s->map != MAP_FAILED);
    assert_int_equal(mprotect(s->map, page, PROT_NONE), 0);
    s->lo = s->map + page;
    s->size = size;
#ifdef TT_HAVE_VALGRIND_H
    /* tell valgrind it is a stack, so a switch to it is not taken for a
     * huge stack-pointer move */
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->lo + size);
#endif
}

static void stack_free(tt_stack *s)
{
#ifdef TT_ASAN
    /* frames that never returned leave poisoned shadow behind */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
#ifdef TT_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    munmap(s->map, s->len);
}

/* ------------------------------------------------ registers and FP values */

typedef struct side_result {
    unsigned long l[12];
    double d[8];
} side_result;

static tide__ctx g_main, g_a, g_b, g_c;

/* Computes many long and double values in a loop; with do_switch, switches
 * self -> next at every iteration, so the values must survive the switch
 * (the longs in callee-saved registers, the doubles spilled on the stack). */
__attribute__((noinline)) static void run_side(tide__ctx *self, tide__ctx *next,
                                               unsigned long seed, side_result *out,
                                               int do_switch)
{
    unsigned long l0 = seed + 1, l1 = seed * 3 + 2, l2 = seed ^ 0x5555, l3 = seed + 77,
                  l4 = seed * 11, l5 = ~seed, l6 = seed << 3, l7 = seed + 0x1234567,
                  l8 = seed * 0x9e3779b9UL, l9 = seed + 9, l10 = seed ^ 0xdeadbeefUL,
                  l11 = seed + 12345;
    double d0 = 0.5 + (double)seed, d1 = 1.25, d2 = -3.0, d3 = (double)seed * 0.125,
           d4 = 100.0, d5 = -0.75, d6 = 7.0, d7 = 1.0 + (double)seed / 1024.0;

    for (unsigned long i = 0; i < NSWITCH; i++) {
        l0 = l0 * 6364136223846793005UL + 1442695040888963407UL + i;
        l1 = (l1 ^ l0) * 3 + i;
        l2 = l2 + (l1 >> 7) + 1;
        l3 = (l3 << 1 | l3 >> 63) ^ l2;
        l4 = l4 * 5 + l3;
        l5 = l5 - l4 + i * 7;
        l6 = l6 ^ (l5 * 13);
        l7 = l7 + (l6 >> 3);
        l8 = l8 * 0x9e3779b97f4a7c15UL + l7;
        l9 = l9 + l8 + (i & 1);
        l10 = (l10 ^ l9) + 0x1234;
        l11 = l11 * 31 + l10;
        /* exact arithmetic (sums of multiples of 1/8), then one rounding op */
        d0 += (double)(i & 1023) * 0.125;
        d1 += (double)((i * 3) & 511) * 0.25;
        d2 -= (double)((i * 5) & 255) * 0.5;
        d3 += d0 > d1 ? 1.0 : -1.0;
        d4 += (double)(l0 & 7);
        d5 -= (double)(l1 & 15) * 0.125;
        d6 += (double)(i % 13);
        d7 = d7 * 1.0000001;
        if (do_switch)
            tide__ctx_switch(self, next);
    }
    out->l[0] = l0; out->l[1] = l1; out->l[2] = l2; out->l[3] = l3;
    out->l[4] = l4; out->l[5] = l5; out->l[6] = l6; out->l[7] = l7;
    out->l[8] = l8; out->l[9] = l9; out->l[10] = l10; out->l[11] = l11;
    out->d[0] = d0; out->d[1] = d1; out->d[2] = d2; out->d[3] = d3;
    out->d[4] = d4; out->d[5] = d5; out->d[6] = d6; out->d[7] = d7;
}

static side_result res_main, res_a, res_b;
static int a_finished, b_finished;

static void entry_a(void *arg)
{
    (void)arg;
    run_side(&g_a, &g_b, 1000, &res_a, 1);
    a_finished = 1;
    tide__ctx_switch(&g_a, &g_b); /* lets b leave its loop; never resumed */
    abort();
}

static void entry_b(void *arg)
{
    (void)arg;
    run_side(&g_b, &g_main, 2000, &res_b, 1);
    b_finished = 1;
    tide__ctx_switch(&g_b, &g_main);
    abort();
}

static void assert_side_equal(const side_result *got, const side_result *want)
{
    for (int i = 0; i < 12; i++)
        assert_true(got->l[i] == want->l[i]);
    for (int i = 0; i < 8; i++)
        assert_true(memcmp(&got->d[i], &want->d[i], sizeof(double)) == 0);
}

/* main -> a -> b -> main, NSWITCH rounds: every side's values must match a
 * run of the same computation without switches. */
static void test_registers_survive_switches(void **state)
{
    (void)state;
    side_result ref_main, ref_a, ref_b;
    run_side(NULL, NULL, 3000, &ref_main, 0);
    run_side(NULL, NULL, 1000, &ref_a, 0);
    run_side(NULL, NULL, 2000, &ref_b, 0);
    /* different seeds give different values (else the test proves little) */
    assert_true(ref_a.l[0] != ref_b.l[0]);
    assert_true(ref_a.d[0] != ref_b.d[0]);

    tt_stack sa, sb;
    stack_alloc(&sa, STACK_SIZE);
    stack_alloc(&sb, STACK_SIZE);
    tide__ctx_make(&g_a, sa.lo, sa.size, entry_a, NULL);
    tide__ctx_make(&g_b, sb.lo, sb.size, entry_b, NULL);
    a_finished = b_finished = 0;
    memset(&res_a, 0, sizeof res_a);
    memset(&res_b, 0, sizeof res_b);

    run_side(&g_main, &g_a, 3000, &res_main, 1);
    /* a and b are both suspended inside their last iteration's switch */
    assert_int_equal(a_finished, 0);
    assert_int_equal(b_finished, 0);
    tide__ctx_switch(&g_main, &g_a); /* a finishes, then b finishes */
    assert_int_equal(a_finished, 1);
    assert_int_equal(b_finished, 1);

    assert_side_equal(&res_main, &ref_main);
    assert_side_equal(&res_a, &ref_a);
    assert_side_equal(&res_b, &ref_b);
    stack_free(&sa);
    stack_free(&sb);
}

/* --------------------------------------------- entry, argument, alignment */

typedef struct entry_probe {
    void *arg_seen;
    uintptr_t frame;
    uintptr_t aligned_local;
    uintptr_t any_local;
    double sse_sum;
    int ran;
} entry_probe;

#ifdef __x86_64__
/* Uses aligned SSE loads/stores (movaps) on stack slots: faults if the
 * stack is misaligned. */
__attribute__((noinline)) static double sse_on_stack(double x)
{
    volatile __m128 v[4];
    for (int i = 0; i < 4; i++)
        v[i] = _mm_set1_ps((float)(x + i));
    __m128 acc = _mm_setzero_ps();
    for (int i = 0; i < 4; i++)
        acc = _mm_add_ps(acc, v[i]);
    float out[4];
    _mm_storeu_ps(out, acc);
    return (double)out[0] + out[1] + out[2] + out[3];
}
#else
__attribute__((noinline)) static double sse_on_stack(double x)
{
    volatile double v[4];
    for (int i = 0; i < 4; i++)
        v[i] = x + i;
    return 4.0 * (v[0] + v[1] + v[2] + v[3]);
}
#endif

static tide__ctx g_probe_ctx;

__attribute__((noinline)) static void entry_probe_fn(void *arg)
{
    entry_probe *p = arg;
    _Alignas(16) volatile char buf[32];
    volatile int local = 1;
    buf[0] = 1;
    p->arg_seen = arg;
    p->frame = (uintptr_t)__builtin_frame_address(0);
    p->aligned_local = (uintptr_t)&buf[0];
    p->any_local = (uintptr_t)&local;
    p->sse_sum = sse_on_stack(1.0);
    p->ran = 1;
    tide__ctx_switch(&g_probe_ctx, &g_main);
    abort();
}

static void run_probe(char *lo, size_t size, entry_probe *p)
{
    memset(p, 0, sizeof *p);
    tide__ctx_make(&g_probe_ctx, lo, size, entry_probe_fn, p);
    tide__ctx_switch(&g_main, &g_probe_ctx);
}

static void check_probe(const entry_probe *p, char *lo, size_t size)
{
    assert_int_equal(p->ran, 1);
    assert_ptr_equal(p->arg_seen, p);
    /* The frame pointer is rsp-at-entry - 8 on x86_64 (it must be 16-byte
     * aligned, since rsp % 16 == 8 at entry) and sp on aarch64. */
    assert_int_equal(p->frame % 16, 0);
    assert_int_equal(p->aligned_local % 16, 0);
    /* runs on the given stack */
    assert_true(p->any_local >= (uintptr_t)lo && p->any_local < (uintptr_t)lo + size);
    assert_true(p->frame >= (uintptr_t)lo && p->frame < (uintptr_t)lo + size);
    /* 1+2+3+4 summed over 4 lanes */
    assert_true(p->sse_sum == 40.0);
}

static void test_entry_arg_and_alignment(void **state)
{
    (void)state;
    tt_stack s;
    stack_alloc(&s, STACK_SIZE);
    entry_probe p;

    /* aligned top */
    run_probe(s.lo, s.size, &p);
    check_probe(&p, s.lo, s.size);
    /* top misaligned by 8 and by 3: aligned down by ctx_make */
    run_probe(s.lo, s.size - 8, &p);
    check_probe(&p, s.lo, s.size - 8);
    run_probe(s.lo, s.size - 3, &p);
    check_probe(&p, s.lo, s.size - 3);
    /* misaligned bottom */
    run_probe(s.lo + 8, s.size - 8, &p);
    check_probe(&p, s.lo + 8, s.size - 8);
    run_probe(s.lo + 5, s.size - 13, &p);
    check_probe(&p, s.lo + 5, s.size - 13);
    stack_free(&s);
}

/* A fresh context made on a reused stack many times: each gets its own arg. */
static tide__ctx g_seq_ctx;
static long g_seq_out[1000];

static void entry_seq(void *arg)
{
    long i = (long)(intptr_t)arg;
    g_seq_out[i] = i * i + 1;
    tide__ctx_switch(&g_seq_ctx, &g_main);
    abort();
}

static void test_many_contexts_on_reused_stack(void **state)
{
    (void)state;
    tt_stack s;
    stack_alloc(&s, 64 * 1024);
    memset(g_seq_out, 0, sizeof g_seq_out);
    for (long i = 0; i < 1000; i++) {
#ifdef TT_ASAN
        ASAN_UNPOISON_MEMORY_REGION(s.lo, s.size);
#endif
        tide__ctx_make(&g_seq_ctx, s.lo, s.size, entry_seq, (void *)(intptr_t)i);
        tide__ctx_switch(&g_main, &g_seq_ctx);
        assert_int_equal(g_seq_out[i], i * i + 1);
    }
    stack_free(&s);
}

/* Three contexts in a ring, each resumed in turn, checking a per-context
 * counter to see that the right context resumes. */
static int g_ring_log[3 * 100];
static int g_ring_n;

static void entry_ring(void *arg)
{
    int id = (int)(intptr_t)arg;
    tide__ctx *self = id == 1 ? &g_a : id == 2 ? &g_b : &g_c;
    tide__ctx *next = id == 1 ? &g_b : id == 2 ? &g_c : &g_main;
    for (int round = 0;; round++) {
        g_ring_log[g_ring_n++] = id * 1000 + round;
        tide__ctx_switch(self, next);
    }
}

static void test_ring_of_contexts(void **state)
{
    (void)state;
    tt_stack s1, s2, s3;
    stack_alloc(&s1, 64 * 1024);
    stack_alloc(&s2, 64 * 1024);
    stack_alloc(&s3, 64 * 1024);
    tide__ctx_make(&g_a, s1.lo, s1.size, entry_ring, (void *)(intptr_t)1);
    tide__ctx_make(&g_b, s2.lo, s2.size, entry_ring, (void *)(intptr_t)2);
    tide__ctx_make(&g_c, s3.lo, s3.size, entry_ring, (void *)(intptr_t)3);
    g_ring_n = 0;
    for (int r = 0; r < 100; r++)
        tide__ctx_switch(&g_main, &g_a);
    assert_int_equal(g_ring_n, 300);
    for (int r = 0; r < 100; r++)
        for (int k = 0; k < 3; k++)
            assert_int_equal(g_ring_log[r * 3 + k], (k + 1) * 1000 + r);
    stack_free(&s1);
    stack_free(&s2);
    stack_free(&s3);
}

/* ------------------------------------------------- FP control per context */

#ifdef __x86_64__
#define RC_MASK 0x6000u
#define RC_NEAREST 0x0000u
#define RC_DOWN 0x2000u
#define RC_UP 0x4000u
#define RC_ZERO 0x6000u

static unsigned g_csr_log[8];
static int g_csr_n;
static tide__ctx g_fp_ctx;

static void entry_mxcsr(void *arg)
{
    (void)arg;
    g_csr_log[g_csr_n++] = _mm_getcsr() & RC_MASK;     /* inherited at make: nearest */
    _mm_setcsr((_mm_getcsr() & ~RC_MASK) | RC_ZERO);
    tide__ctx_switch(&g_fp_ctx, &g_main);
    g_csr_log[g_csr_n++] = _mm_getcsr() & RC_MASK;     /* own: zero */
    _mm_setcsr((_mm_getcsr() & ~RC_MASK) | RC_UP);
    tide__ctx_switch(&g_fp_ctx, &g_main);
    g_csr_log[g_csr_n++] = _mm_getcsr() & RC_MASK;     /* own: up */
    tide__ctx_switch(&g_fp_ctx, &g_main);
    abort();
}

static void test_mxcsr_per_context(void **state)
{
    (void)state;
    unsigned orig = _mm_getcsr();
    tt_stack s;
    stack_alloc(&s, 64 * 1024);
    _mm_setcsr((orig & ~RC_MASK) | RC_NEAREST);
    tide__ctx_make(&g_fp_ctx, s.lo, s.size, entry_mxcsr, NULL);
    g_csr_n = 0;

    _mm_setcsr((orig & ~RC_MASK) | RC_DOWN);
    tide__ctx_switch(&g_main, &g_fp_ctx);
    unsigned m1 = _mm_getcsr() & RC_MASK;
    tide__ctx_switch(&g_main, &g_fp_ctx);
    unsigned m2 = _mm_getcsr() & RC_MASK;
    _mm_setcsr((orig & ~RC_MASK) | RC_NEAREST);
    tide__ctx_switch(&g_main, &g_fp_ctx);
    unsigned m3 = _mm_getcsr() & RC_MASK;
    _mm_setcsr(orig);

    assert_int_equal(g_csr_n, 3);
    assert_int_equal(g_csr_log[0], RC_NEAREST);
    assert_int_equal(g_csr_log[1], RC_ZERO);
    assert_int_equal(g_csr_log[2], RC_UP);
    assert_int_equal(m1, RC_DOWN);
    assert_int_equal(m2, RC_DOWN);
    assert_int_equal(m3, RC_NEAREST);
    stack_free(&s);
}
#endif

/* fesetround in one context does not leak into the other (x87 control word
 * and MXCSR are both per context), and arithmetic follows each context's
 * own rounding mode. */
static int g_fe_log[4];
static double g_fe_val[4];
static int g_fe_n;
static tide__ctx g_fe_ctx;

__attribute__((noinline)) static double third(void)
{
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static void entry_fenv(void *arg)
{
    (void)arg;
    fesetround(FE_UPWARD);
    tide__ctx_switch(&g_fe_ctx, &g_main);
    g_fe_log[g_fe_n] = fegetround();
    g_fe_val[g_fe_n++] = third();
    tide__ctx_switch(&g_fe_ctx, &g_main);
    g_fe_log[g_fe_n] = fegetround();
    g_fe_val[g_fe_n++] = third();
    tide__ctx_switch(&g_fe_ctx, &g_main);
    abort();
}

static void test_fenv_rounding_per_context(void **state)
{
    (void)state;
    int orig = fegetround();
    tt_stack s;
    stack_alloc(&s, 64 * 1024);
    fesetround(FE_TONEAREST);
    tide__ctx_make(&g_fe_ctx, s.lo, s.size, entry_fenv, NULL);
    g_fe_n = 0;

    fesetround(FE_DOWNWARD);
    tide__ctx_switch(&g_main, &g_fe_ctx); /* ctx sets upward */
    int main1 = fegetround();
    double v_main1 = third();
    tide__ctx_switch(&g_main, &g_fe_ctx); /* ctx records its mode */
    int main2 = fegetround();
    double v_main2 = third();
    tide__ctx_switch(&g_main, &g_fe_ctx);
    fesetround(orig);

    assert_int_equal(main1, FE_DOWNWARD);
    assert_int_equal(main2, FE_DOWNWARD);
    assert_int_equal(g_fe_n, 2);
    assert_int_equal(g_fe_log[0], FE_UPWARD);
    assert_int_equal(g_fe_log[1], FE_UPWARD);
    /* the arithmetic really rounds differently (valgrind ignores the SSE
     * rounding mode for arithmetic: only the modes are checked there) */
    if (!tt_under_valgrind())
        assert_true(g_fe_val[0] > v_main1);
    assert_true(g_fe_val[0] == g_fe_val[1]);
    assert_true(v_main1 == v_main2);
    stack_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registers_survive_switches),
        cmocka_unit_test(test_entry_arg_and_alignment),
        cmocka_unit_test(test_many_contexts_on_reused_stack),
        cmocka_unit_test(test_ring_of_contexts),
#ifdef __x86_64__
        cmocka_unit_test(test_mxcsr_per_context),
#endif
        cmocka_unit_test(test_fenv_rounding_per_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
