/*
 * Execution contexts: make a context that starts a function on a given stack,
 * and switch from one context to another.
 *
 * Two implementations behind this one interface, chosen at configure time:
 *  - hand-written assembly (src/arch/ctx_x86_64.S, src/arch/ctx_aarch64.S):
 *    saves only the callee-saved registers and the FP control state
 *    (MXCSR + x87 control word on x86_64; d8-d15 on aarch64), a few ns;
 *  - ucontext (src/arch/ctx_ucontext.c, TIDE_CONTEXT_UCONTEXT): portable,
 *    but swapcontext makes a sigprocmask syscall per switch.
 */
#ifndef TIDE_CTX_H
#define TIDE_CTX_H

#include <stddef.h>

#ifdef TIDE_CONTEXT_UCONTEXT
#include <ucontext.h>
typedef struct tide__ctx {
    ucontext_t uc;
} tide__ctx;
#else
typedef struct tide__ctx {
    void *sp; /* saved stack pointer; everything else is on that stack */
} tide__ctx;
#endif

/* Prepares c so that the first switch to it calls entry(arg) on the stack
 * [lo, lo + size).  entry must never return (switch away for good instead).
 * lo + size is aligned down to 16 bytes as the ABIs require. */
void tide__ctx_make(tide__ctx *c, void *lo, size_t size, void (*entry)(void *), void *arg);

/* Saves the current context into from and resumes to.  Returns when some
 * other context switches back to from. */
void tide__ctx_switch(tide__ctx *from, tide__ctx *to);

/* The stack pointer saved in c by its last switch away, or NULL where the
 * implementation cannot tell (only a misuse check uses it). */
static inline void *tide__ctx_sp(const tide__ctx *c)
{
#ifndef TIDE_CONTEXT_UCONTEXT
    return c->sp;
#elif defined(__x86_64__) && defined(REG_RSP)
    return (void *)c->uc.uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__) && defined(__linux__)
    return (void *)c->uc.uc_mcontext.sp;
#else
    (void)c;
    return NULL;
#endif
}

#endif
