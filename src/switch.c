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
    tide__ctx_switch(&t->ctx, &loop->ctx);
#ifdef TIDE__ASAN
    __sanitizer_finish_switch_fiber(t->asan_fake, &loop->asan_stack_bottom,
                                    &loop->asan_stack_size);
#endif
}
