/*
 * Switching between the loop and its tasks.
 *
 * The loop runs on the thread's own stack (its context is loop->ctx); a
 * task switches back to it whenever it suspends.  Sanitizers that follow
 * the stack (ASan) are told about every switch, so they know which stack is
 * live.
 */
#include "tide_int.h"

#ifdef TIDE__ASAN
#include <sanitizer/common_interface_defs.h>
#endif

void tide__switch_to_task(tide_loop *loop, tide_task *t)
{
#ifdef TIDE__ASAN
    __sanitizer_start_switch_fiber(&loop->asan_fake, t->stack_lo,
                                   (size_t)((char *)t - (char *)t->stack_lo));
#endif
#ifdef TIDE__TSAN
    /* TSan keeps a shadow call stack per thread: a task's frames must go on
     * a fiber of its own, or every started task leaves its frames on the
     * loop's.  The switch (flags 0) orders the two sides, as the real switch
     * does.  tide__task_release destroys the fiber with the task. */
    loop->tsan_fiber = __tsan_get_current_fiber();
    if (!t->tsan_fiber) {
        t->tsan_fiber = __tsan_create_fiber(0);
        if (t->name[0])
            __tsan_set_fiber_name(t->tsan_fiber, t->name);
    }
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    tide__ctx_switch(&loop->ctx, &t->ctx);
#ifdef TIDE__ASAN
    __sanitizer_finish_switch_fiber(loop->asan_fake, NULL, NULL);
#endif
}

void tide__switch_to_loop(tide_task *t)
{
    tide_loop *loop = t->loop;
#ifdef TIDE__ASAN
    /* A task that ended switches away for good: let ASan drop its fake stack. */
    __sanitizer_start_switch_fiber(t->state == TIDE_TASK_DONE ? NULL : &t->asan_fake,
                                   loop->asan_stack_bottom, loop->asan_stack_size);
#endif
#ifdef TIDE__TSAN
    __tsan_switch_to_fiber(loop->tsan_fiber, 0);
#endif
    tide__ctx_switch(&t->ctx, &loop->ctx);
#ifdef TIDE__ASAN
    __sanitizer_finish_switch_fiber(t->asan_fake, &loop->asan_stack_bottom,
                                    &loop->asan_stack_size);
#endif
}

#ifdef TIDE__ASAN
void tide__asan_drop_fake(tide_task *t)
{
    void *here = NULL;
    const void *bottom = NULL;
    size_t size = 0;

    if (!t->asan_fake)
        return;
    /* ASan frees a fiber's fake stack only when the fiber switches away for
     * good (a NULL save): so make t's fake stack current for a moment, as if
     * switching into t, and switch away from it for good, back to the stack
     * we are on.  The machine stack never changes; nothing runs between. */
    __sanitizer_start_switch_fiber(&here, t->stack_lo, (size_t)((char *)t - (char *)t->stack_lo));
    __sanitizer_finish_switch_fiber(t->asan_fake, &bottom, &size);
    __sanitizer_start_switch_fiber(NULL, bottom, size);
    __sanitizer_finish_switch_fiber(here, NULL, NULL);
    t->asan_fake = NULL;
}
#endif
