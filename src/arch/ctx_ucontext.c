/*
 * Portable context switch on makecontext/swapcontext.  Slower than the
 * assembly (glibc's swapcontext makes a sigprocmask syscall per switch) but
 * works wherever ucontext does; build with -DTIDE_CONTEXT=ucontext.
 */
#include "../ctx.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

/* makecontext passes int arguments only: split the pointers in halves. */
static void trampoline(unsigned elo, unsigned ehi, unsigned alo, unsigned ahi)
{
    void (*entry)(void *) =
        (void (*)(void *))(uintptr_t)(((uint64_t)ehi << 32) | (uint64_t)elo);
    void *arg = (void *)(uintptr_t)(((uint64_t)ahi << 32) | (uint64_t)alo);
    entry(arg);
    abort(); /* entry never returns */
}

void tide__ctx_make(tide__ctx *c, void *lo, size_t size, void (*entry)(void *), void *arg)
{
    uint64_t e = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    char *top = (char *)(((uintptr_t)lo + size) & ~(uintptr_t)15);

    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = (size_t)(top - (char *)lo);
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))trampoline, 4, (unsigned)e, (unsigned)(e >> 32),
                (unsigned)a, (unsigned)(a >> 32));
}

void tide__ctx_switch(tide__ctx *from, tide__ctx *to)
{
    /* swapcontext restores the signal mask saved in each context; keep the
     * thread's current mask instead, as the assembly switch does, so a mask
     * set by one task (tide_signal_wait) holds for the loop too. */
    pthread_sigmask(SIG_SETMASK, NULL, &to->uc.uc_sigmask);
    swapcontext(&from->uc, &to->uc);
}
