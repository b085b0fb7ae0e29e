/*
 * AddressSanitizer's shadow of task stacks.
 *
 * A task's last frames never return: a finished task ends inside its last
 * switch away, and a task its loop frees while suspended (another loop runs
 * on the thread, so the freed loop cannot run it to its end) leaves every
 * frame of its wait behind.  Those frames' redzones stay poisoned in ASan's
 * shadow unless tide clears them; the next task on the pooled stack, or on a
 * new stack mapping the kernel puts at the same address, then inherits the
 * poison.  gcc's ASan prologues poison only their own redzones and trust the
 * rest of the frame's shadow to be clear, so a plain store into a local
 * there was reported (and the report itself failed a CHECK in libasan).
 *
 * Under ASan these tests read the shadow directly (__asan_region_is_poisoned),
 * so they fail whichever compiler built them; without ASan they still run
 * the same scenarios and check their results.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide_int.h"

#ifdef TIDE__ASAN
#include <sanitizer/asan_interface.h>
#endif

static atomic_int g_job_done;

static int slow_job(void *arg)
{
    volatile char *buf = arg;
    usleep(50 * 1000);
    buf[0] = 1; /* the waiting frame is still there: the loop could not free it */
    atomic_store(&g_job_done, 1);
    return 5;
}

/* Frames with redzones (an array whose address escapes), several deep, and
 * a wait on a worker-pool job at the bottom. */
static __attribute__((noinline)) int deep_wait(int depth)
{
    volatile char buf[200];

    buf[0] = (char)depth;
    if (depth > 0)
        return deep_wait(depth - 1) + buf[0] - depth;
    return tide_to_thread(slow_job, (void *)buf);
}

static int waiter(void *arg)
{
    (void)arg;
    return deep_wait(4);
}

static void stop_cb(void *arg)
{
    tide_loop_stop(arg);
}

static int free_other_loop(void *arg)
{
    tide_loop_free(arg); /* blocks for the job; the task stays unfinished */
    return atomic_load(&g_job_done) ? 0 : -1;
}

/* A frame with its own redzones that stores into its locals at once: what
 * failed under gcc's ASan when it landed on stale poison. */
static __attribute__((noinline)) int fresh_frames(int depth)
{
    volatile char big[300];
    volatile void *slots[6];

    for (int i = 0; i < 6; i++)
        slots[i] = (void *)&big[i * 8];
    big[299] = (char)depth;
    if (depth > 0)
        return fresh_frames(depth - 1) + (slots[5] != NULL) - 1;
    return big[299];
}

static int run_fresh(void *arg)
{
    (void)arg;
    return fresh_frames(6) + 40;
}

/* The regression: a loop freed with a task suspended deep in its wait. */
static void test_freed_suspended_task_leaves_no_poison(void **state)
{
    (void)state;
    tide_loop *a, *b;
    tide_task *t;
    char *lo, *top;

    atomic_store(&g_job_done, 0);
    assert_int_equal(tide_loop_new(&a), 0);
    assert_int_equal(tide_create_task_ex(&t, a, waiter, NULL, NULL), 0);
    lo = t->stack_lo;
    top = (char *)t;
    assert_int_equal(tide_call_later(a, 10, stop_cb, a, NULL), 0);
    assert_int_equal(tide_loop_run(a), 0); /* t now waits on its job */
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_WAITING);
#ifdef TIDE__ASAN
    /* The test sees the live frames' redzones, so it can see stale ones.
     * Not where detect_stack_use_after_return put the frames on ASan's fake
     * stack, nor with the ucontext switch: ASan's swapcontext interceptor
     * clears the whole task stack's shadow around every switch. */
#ifndef TIDE_CONTEXT_UCONTEXT
    if (!__asan_get_current_fake_stack())
        assert_non_null(__asan_region_is_poisoned(lo, (size_t)(top - lo)));
#endif
#endif
    assert_int_equal(tide_run(free_other_loop, a), 0);
#ifdef TIDE__ASAN
    assert_null(__asan_region_is_poisoned(lo, (size_t)(top - lo)));
#endif
    (void)lo;
    (void)top;

    /* a new loop's stack may be mapped where a's was: its frames work */
    assert_int_equal(tide_loop_new(&b), 0);
    assert_int_equal(tide_create_task_ex(&t, b, run_fresh, NULL, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(b, t), 40);
    tide_loop_free(b);
}

/* Finished tasks hand their stacks back to the pool clean, and the next
 * task on the same (LIFO-pooled) stack runs. */
static void test_finished_task_stack_reused_clean(void **state)
{
    (void)state;
    tide_loop *loop;
    tide_task *t;
    char *lo, *top;

    assert_int_equal(tide_loop_new(&loop), 0);
    assert_int_equal(tide_create_task_ex(&t, loop, run_fresh, NULL, NULL), 0);
    lo = t->stack_lo;
    top = (char *)t;
    assert_int_equal(tide_loop_run_until_complete(loop, t), 40); /* released */
#ifdef TIDE__ASAN
    assert_null(__asan_region_is_poisoned(lo, (size_t)(top - lo)));
#endif
    (void)top;
    assert_int_equal(tide_create_task_ex(&t, loop, run_fresh, NULL, NULL), 0);
    assert_ptr_equal(t->stack_lo, lo); /* the same stack, from the pool */
    assert_int_equal(tide_loop_run_until_complete(loop, t), 40);
    tide_loop_free(loop);
}

/* ----------------------------- detect_stack_use_after_return's fake stacks */

#ifdef TIDE__ASAN
extern int __asan_option_detect_stack_use_after_return; /* ASan's runtime flag */
#endif

static long vm_kib(void)
{
    char line[128];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "re");

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmSize:", 7))
            v = atol(line + 7);
    fclose(f);
    return v;
}

static int had_fake; /* the task's frames were on a fake stack */

static __attribute__((noinline)) int deep_sleep(int depth)
{
    volatile char buf[200];

    buf[0] = (char)depth;
    if (depth > 0)
        return deep_sleep(depth - 1) + buf[0] - depth;
#ifdef TIDE__ASAN
    had_fake |= __asan_get_current_fake_stack() != NULL;
#endif
    return tide_sleep(600000);
}

static int sleeper(void *arg)
{
    (void)arg;
    return deep_sleep(4);
}

static int free_loop(void *arg)
{
    tide_loop_free(arg); /* another loop (ours) runs: its task stays unfinished */
    return 0;
}

/* With detect_stack_use_after_return=1 ASan gives every task (a fiber) a
 * fake stack of its own, a few MiB, freed when the task switches away for
 * good.  A task released while suspended never does: tide frees it at the
 * release.  20 such tasks would leave some 50 MiB mapped. */
static void test_freed_suspended_task_drops_fake_stack(void **state)
{
    (void)state;
    long v0 = -1;
#ifdef TIDE__ASAN
    int saved = __asan_option_detect_stack_use_after_return;
    __asan_option_detect_stack_use_after_return = 1;
#endif
    had_fake = 0;
    for (int r = 0; r < 21; r++) {
        tide_loop *a;
        tide_task *t;
        if (r == 1)
            v0 = vm_kib(); /* after the first round's one-time mappings */
        assert_int_equal(tide_loop_new(&a), 0);
        assert_int_equal(tide_create_task_ex(&t, a, sleeper, NULL, NULL), 0);
        assert_true(tide_loop_run_once(a) >= 0);
        assert_int_equal(tide_task_get_state(t), TIDE_TASK_WAITING);
        assert_int_equal(tide_run(free_loop, a), 0);
    }
    long grew = vm_kib() - v0;
#ifdef TIDE__ASAN
    __asan_option_detect_stack_use_after_return = saved;
#endif
    print_message("fake stacks: %s; VmSize grew %ld KiB over 20 rounds\n",
                  had_fake ? "in use" : "not in use", grew);
    if (had_fake)
        assert_true(grew < 8 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freed_suspended_task_leaves_no_poison),
        cmocka_unit_test(test_finished_task_stack_reused_clean),
        cmocka_unit_test(test_freed_suspended_task_drops_fake_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
