/*
 * Task stacks: carved from large mappings, guarded, pooled per loop.
 *
 * Each pool serves one stack size.  It maps chunks of up to 256 stacks at a
 * time (MAP_NORESERVE: only touched pages cost memory) and carves them
 * lazily.  Below every stack sits a guard region.  On Linux >= 6.13 the
 * guard is installed with madvise(MADV_GUARD_INSTALL), which marks page
 * table entries and does not split the mapping; elsewhere we fall back to
 * mprotect(PROT_NONE), which splits it: two mappings per stack, against
 * vm.max_map_count (65530 by default).  So the fallback keeps a budget of
 * half that limit; past it stacks are made without a guard, and we say so
 * once on stderr.
 *
 * Transparent huge pages are disabled on the chunks: a task touches a page
 * or two of its stack, and a 2 MiB huge page would multiply that by 512.
 *
 * A freed stack goes on its pool's free list (LIFO, so the next task gets a
 * warm stack); the link lives in the stack's top word, which the task struct
 * already touched.  Pools are freed with their loop.
 *
 * A task that overflows hits the guard: our SIGSEGV handler, running on an
 * alternate signal stack (the faulting stack is unusable), recognises the
 * guard of the running task, prints the task's name and stack size, and
 * aborts.  Any other fault goes to the handler the program had before.
 *
 * Unguarded pools (TIDE_STACK_UNGUARDED, 2-8 KiB) have no guard per stack:
 * slots are packed back to back, several per page, so that a task that
 * touches only the top of its stack costs a fraction of a page.  A chunk
 * has one guard, below its first slot.  The bottom TIDE__CANARY_BYTES of
 * each slot hold a canary, written when the slot is first carved; after
 * each switch out of such a task run_task calls
 * tide__stack_check_unguarded, which checks the canary and the saved stack
 * pointer on the loop's own stack and reports an overflow there.  What
 * overflowed past the canary has by then written into the top of the slot
 * below -- the neighbour's task struct -- so this is opt-in, for shallow
 * tasks (docs/stacks.md).
 */
#include "tide_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__linux__) && defined(__GLIBC__)
#include <link.h>
#include <stdlib.h>
#define TIDE__CHECK_BIND_NOW 1
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TIDE__VALGRIND 1
#endif
#endif

/* Linux 6.13's guard-page advice (older kernels refuse it with EINVAL); the
 * number means nothing elsewhere, where only mprotect guards are made. */
#if defined(__linux__) && !defined(MADV_GUARD_INSTALL)
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define GUARD_PAGES 4
#define CHUNK_TARGET (64u << 20)
#define CHUNK_MAX_SLOTS 256
/* Unguarded pools: 4096 slots of 2 KiB make an 8 MiB chunk, 245 mappings
 * (at most: adjacent ones merge) for 1M stacks. */
#define SMALL_CHUNK_MAX_SLOTS 4096
/* Each word of a canary is its stack's lo xor this ("tidecnry"), so that a
 * copy of a neighbour's canary does not pass for this one. */
#define CANARY_KEY ((uintptr_t)0x74696465636e7279ull)

typedef struct chunk {
    struct chunk *next;
    char *base;
    size_t len;
    char *first;          /* the first slot: base, or above the chunk's guard */
    int guarded;          /* every slot's guard is already installed (unguarded
                             pools: the one guard below the first slot) */
#ifdef TIDE__VALGRIND
    unsigned nvg;
    unsigned *vg;         /* only when running on valgrind: one id per slot */
#endif
} chunk;

struct tide__stack_pool {
    struct tide__stack_pool *next; /* the loop's other pools */
    size_t size;                   /* usable bytes of each stack */
    size_t slot;                   /* guard + size; size if unguarded */
    int unguarded;                 /* small stacks, packed, with canaries */
    void *free;                    /* free stacks: lo of the first */
    chunk *chunks;                 /* every mapping, for the final munmap */
    size_t carved, slots;          /* slots carved from / held by chunks->base */
};

enum { GUARD_UNKNOWN = 0, GUARD_MADVISE, GUARD_MPROTECT };
static int guard_mode;        /* atomic */
static long mprotect_budget;  /* atomic: guards the fallback may still make */
static int warned_unguarded;  /* atomic */

static size_t page_size(void)
{
    static size_t ps; /* atomic: loops on several threads may ask first */
    size_t v = __atomic_load_n(&ps, __ATOMIC_RELAXED);

    if (!v) {
        long r = sysconf(_SC_PAGESIZE);
        v = r > 0 ? (size_t)r : 4096;
        __atomic_store_n(&ps, v, __ATOMIC_RELAXED);
    }
    return v;
}

size_t tide__stack_guard_size(void)
{
    return GUARD_PAGES * page_size();
}

static void **link_of(tide__stack_pool *p, void *lo)
{
    return (void **)((char *)lo + p->size - sizeof(void *));
}

static void init_budget(void)
{
    long max = 65530; /* Linux's default vm.max_map_count */
#ifdef __linux__
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 65530;
        fclose(f);
    }
#endif
    __atomic_store_n(&mprotect_budget, max / 4, __ATOMIC_RELAXED); /* 2 maps a guard */
}

/* Whether the guard just installed at g really faults.  Some layers accept
 * advice they do not know and ignore it (qemu-user returns 0 for
 * MADV_GUARD_INSTALL): make the kernel read the page for us; a real guard
 * gives EFAULT, no fault. */
static int guard_works(char *g)
{
    int p[2], ok;

    if (pipe(p) < 0)
        return 0;
    ok = write(p[1], g, 1) < 0 && errno == EFAULT;
    close(p[0]);
    close(p[1]);
    return ok;
}

/* Debug mode (debug.c): guards made from now on use mprotect, whose guards
 * are mappings of their own.  gdb's gcore reads a mapping whole and drops
 * one that holds a madvise guard, task stacks included. */
void tide__stack_guards_dumpable(void)
{
    if (__atomic_load_n(&guard_mode, __ATOMIC_RELAXED) != GUARD_MPROTECT) {
        init_budget();
        __atomic_store_n(&guard_mode, GUARD_MPROTECT, __ATOMIC_RELAXED);
    }
}

/* madvise(MADV_GUARD_INSTALL) where the advice exists (Linux); else -1. */
static int madvise_guard(char *g, size_t len)
{
#ifdef MADV_GUARD_INSTALL
    return madvise(g, len, MADV_GUARD_INSTALL);
#else
    (void)g;
    (void)len;
    errno = EINVAL;
    return -1;
#endif
}

/* Makes [g, g + len) inaccessible.  Returns 0 or -1 (no guard possible). */
static int install_guard(char *g, size_t len)
{
    int mode = __atomic_load_n(&guard_mode, __ATOMIC_RELAXED);

    if (mode != GUARD_MPROTECT) {
        if (madvise_guard(g, len) == 0) {
            if (mode == GUARD_MADVISE)
                return 0;
            if (guard_works(g)) {
                __atomic_store_n(&guard_mode, GUARD_MADVISE, __ATOMIC_RELAXED);
                return 0;
            }
        }
        if (mode == GUARD_MADVISE)
            goto unguarded; /* it worked before: a real failure (ENOMEM) */
        init_budget();
        __atomic_store_n(&guard_mode, GUARD_MPROTECT, __ATOMIC_RELAXED);
    }
    if (__atomic_sub_fetch(&mprotect_budget, 1, __ATOMIC_RELAXED) >= 0 &&
        mprotect(g, len, PROT_NONE) == 0)
        return 0;
unguarded:
    if (!__atomic_exchange_n(&warned_unguarded, 1, __ATOMIC_RELAXED))
        fputs("tide: warning: out of memory mappings for stack guard pages "
              "(vm.max_map_count); further task stacks have no guard page\n",
              stderr);
    return -1;
}

#ifdef TIDE__CHECK_BIND_NOW
/* Whether the object loaded at info resolves its symbols at load time
 * (linked with -z now). */
static int object_binds_now(const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Dyn) *d;
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        for (d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
             d->d_tag != DT_NULL; d++)
            if (d->d_tag == DT_BIND_NOW || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_BIND_NOW)) ||
                (d->d_tag == DT_FLAGS_1 && (d->d_un.d_val & DF_1_NOW)))
                return 1;
        return 0;
    }
    return 1; /* no dynamic section: nothing is bound lazily */
}

static int object_holds(const struct dl_phdr_info *info, uintptr_t a)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        uintptr_t lo = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
        if (info->dlpi_phdr[i].p_type == PT_LOAD && a - lo < info->dlpi_phdr[i].p_memsz)
            return 1;
    }
    return 0;
}

/* Counts the objects that matter (the program, and the one tide is in) that
 * bind lazily. */
static int count_lazy(struct dl_phdr_info *info, size_t size, void *arg)
{
    int *lazy = arg;

    (void)size;
    if ((info->dlpi_name[0] == '\0' || object_holds(info, (uintptr_t)&tide__stack_get)) &&
        !object_binds_now(info))
        (*lazy)++;
    return 0;
}
#endif

/* The first call of a function of a shared library resolves it, lazily,
 * on the caller's stack: glibc's resolver saves the vector registers there
 * (about 2.5 KiB with AVX-512), more than a small unguarded stack holds.
 * Say so once, when the first unguarded pool is made in a program that is
 * not linked with -z now (nor run with LD_BIND_NOW). */
static void warn_lazy_binding(void)
{
#ifdef TIDE__CHECK_BIND_NOW
    static int checked; /* atomic */
    const char *env;
    int lazy = 0;

    if (__atomic_exchange_n(&checked, 1, __ATOMIC_RELAXED))
        return;
    env = getenv("LD_BIND_NOW");
    if (env && *env)
        return;
    dl_iterate_phdr(count_lazy, &lazy);
    if (lazy)
        fputs("tide: warning: TIDE_STACK_UNGUARDED tasks in a program that binds symbols "
              "lazily: a task's first call of a shared-library function can overflow its "
              "small stack; link with -Wl,-z,now (docs/stacks.md)\n",
              stderr);
#endif
}

static tide__stack_pool *pool_for(tide_loop *loop, size_t size, int unguarded)
{
    tide__stack_pool *p;

    for (p = loop->stacks.pools; p; p = p->next)
        if (p->size == size && p->unguarded == unguarded)
            return p;
    p = tide__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (unguarded)
        warn_lazy_binding();
    p->size = size;
    p->unguarded = unguarded;
    p->slot = unguarded ? size : size + tide__stack_guard_size();
    p->next = loop->stacks.pools;
    loop->stacks.pools = p;
    return p;
}

/* Installs the guards of all n slots of a new chunk in one syscall:
 * process_madvise takes a vector of ranges (Linux >= 6.13 accepts
 * MADV_GUARD_INSTALL there), where madvise takes one: a million stacks then
 * cost four thousand syscalls instead of a million.  Only once the single
 * madvise has been seen to work; 0 if it cannot, and each slot gets its
 * guard when carved. */
static int batch_guards(char *base, size_t n, size_t slot)
{
#if defined(__linux__) && defined(SYS_process_madvise) && defined(SYS_pidfd_open)
    struct iovec iov[CHUNK_MAX_SLOTS];
    size_t i, g = tide__stack_guard_size();
    int pidfd;
    long r;

    if (n < 2 || __atomic_load_n(&guard_mode, __ATOMIC_RELAXED) != GUARD_MADVISE)
        return 0;
    for (i = 0; i < n; i++) {
        iov[i].iov_base = base + i * slot;
        iov[i].iov_len = g;
    }
    pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd < 0)
        return 0;
    r = syscall(SYS_process_madvise, pidfd, iov, n, MADV_GUARD_INSTALL, 0);
    close(pidfd);
    return r == (long)(n * g);
#else
    (void)base;
    (void)n;
    (void)slot;
    return 0;
#endif
}

static int new_chunk(tide__stack_pool *p)
{
    size_t slots = CHUNK_TARGET / p->slot, max = p->unguarded ? SMALL_CHUNK_MAX_SLOTS
                                                              : CHUNK_MAX_SLOTS;
    size_t below = p->unguarded ? tide__stack_guard_size() : 0;
    chunk *c;

    if (slots < 1)
        slots = 1;
    if (slots > max)
        slots = max;
    c = tide__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
#ifdef TIDE__VALGRIND
    if (RUNNING_ON_VALGRIND) {
        c->vg = tide__calloc(slots, sizeof *c->vg);
        if (!c->vg) {
            tide__free(c);
            return -ENOMEM;
        }
    }
#endif
    c->len = below + slots * p->slot;
    c->base = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (c->base == MAP_FAILED) {
#ifdef TIDE__VALGRIND
        tide__free(c->vg);
#endif
        tide__free(c);
        return -ENOMEM;
    }
#ifdef MADV_NOHUGEPAGE
    (void)madvise(c->base, c->len, MADV_NOHUGEPAGE);
#endif
    c->first = c->base + below;
    if (p->unguarded) /* one guard below the first slot: it has no neighbour there */
        c->guarded = install_guard(c->base, below) == 0;
    else
        c->guarded = batch_guards(c->base, slots, p->slot);
    c->next = p->chunks;
    p->chunks = c;
    p->carved = 0;
    p->slots = slots;
    return 0;
}

int tide__stack_get(tide_loop *loop, size_t size, int unguarded, void **lo,
                    tide__stack_pool **pool)
{
    tide__stack_pool *p = loop->stacks.pools;
    char *slot;

    if (!p || p->size != size || p->unguarded != unguarded) {
        p = pool_for(loop, size, unguarded);
        if (!p)
            return -ENOMEM;
    }
    if (TIDE__LIKELY(p->free != NULL)) {
        *lo = p->free;
        p->free = *link_of(p, p->free);
        *pool = p;
        return 0;
    }
    if (!p->chunks || p->carved == p->slots) {
        int rc = new_chunk(p);
        if (rc < 0)
            return rc;
    }
    slot = p->chunks->first + p->carved++ * p->slot;
    if (p->unguarded) {
        uintptr_t *w = (uintptr_t *)slot;
        for (size_t i = 0; i < TIDE__CANARY_BYTES / sizeof *w; i++)
            w[i] = (uintptr_t)slot ^ CANARY_KEY;
        *lo = slot;
    } else {
        if (!p->chunks->guarded)
            (void)install_guard(slot, tide__stack_guard_size());
        *lo = slot + tide__stack_guard_size();
    }
#ifdef TIDE__VALGRIND
    if (p->chunks->vg)
        p->chunks->vg[p->chunks->nvg++] = VALGRIND_STACK_REGISTER(*lo, (char *)*lo + p->size);
#endif
    *pool = p;
    return 0;
}

void tide__stack_put(tide__stack_pool *p, void *lo)
{
    *link_of(p, lo) = p->free;
    p->free = lo;
}

int tide__stacks_init(tide_loop *loop)
{
    (void)loop; /* pools are made on first use, per stack size */
    return 0;
}

void tide__stacks_term(tide_loop *loop)
{
    tide__stack_pool *p, *pn;
    chunk *c, *cn;

    for (p = loop->stacks.pools; p; p = pn) {
        pn = p->next;
        for (c = p->chunks; c; c = cn) {
            cn = c->next;
#ifdef TIDE__VALGRIND
            for (unsigned i = 0; i < c->nvg; i++)
                VALGRIND_STACK_DEREGISTER(c->vg[i]);
            tide__free(c->vg);
#endif
            munmap(c->base, c->len);
            tide__free(c);
        }
        tide__free(p);
    }
    loop->stacks.pools = NULL;
}

/* --------------------------------------------------- overflow reporting */

static struct sigaction old_segv, old_bus;
static __thread void *alt_mem;
static __thread size_t alt_len;
static __thread int alt_refs;

static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static void put(char *buf, size_t *len, size_t cap, const char *s, size_t n)
{
    if (*len + n > cap)
        n = cap - *len;
    memcpy(buf + *len, s, n);
    *len += n;
}

static void report_overflow(tide_task *t)
{
    char buf[256], num[24];
    size_t len = 0;
    const char *name = t->name;
    ssize_t w;

    if (t->unguarded)
        put(buf, &len, sizeof buf, "tide: stack overflow (unguarded small stack) in task '", 54);
    else
        put(buf, &len, sizeof buf, "tide: stack overflow in task '", 30);
    if (name[0])
        put(buf, &len, sizeof buf, name, strnlen(name, TIDE_TASK_NAME_MAX));
    else {
        put(buf, &len, sizeof buf, "task-", 5);
        put(buf, &len, sizeof buf, num, fmt_u64(num, t->id));
    }
    put(buf, &len, sizeof buf, "' (id ", 6);
    put(buf, &len, sizeof buf, num, fmt_u64(num, t->id));
    put(buf, &len, sizeof buf, "): stack size ", 14);
    put(buf, &len, sizeof buf, num, fmt_u64(num, t->stack_size));
    put(buf, &len, sizeof buf, " bytes; give it a larger tide_task_opts.stack_size\n", 51);
    w = write(2, buf, len);
    (void)w;
}

/* Sanitizers' instrumentation and runtimes, and valgrind's replacements of
 * malloc and friends (tide__timer_add may realloc on the task's stack), take
 * more stack than the ~1 KiB a sleeping task needs in a plain build
 * (docs/stacks.md): their unguarded stacks get 8 KiB; the ucontext build's
 * get 4 KiB. */
size_t tide__small_stack_floor(void)
{
#if defined(TIDE__ASAN) || defined(TIDE__TSAN)
    return 8 * 1024;
#else
#ifdef TIDE__VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 8 * 1024;
#endif
#ifdef TIDE_CONTEXT_UCONTEXT
    return 4 * 1024; /* the task struct holds a ucontext_t: 1336 bytes, not 376 */
#else
    return TIDE_SMALL_STACK_MIN;
#endif
#endif
}

/* Reads what overflowing frames may have left poisoned in ASan's shadow. */
TIDE__NO_ASAN void tide__stack_check_unguarded(tide_task *t)
{
    const uintptr_t *w = t->stack_lo, v = (uintptr_t)w ^ CANARY_KEY;
    const char *sp = tide__ctx_sp(&t->ctx);
    uintptr_t bad = sp && sp < (const char *)t->stack_lo + TIDE__CANARY_BYTES;

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
#endif
    for (size_t i = 0; i < TIDE__CANARY_BYTES / sizeof *w; i++)
        bad |= w[i] ^ v;
    if (TIDE__UNLIKELY(bad != 0)) {
        report_overflow(t);
        abort();
    }
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    tide_loop *loop = tide__tls_loop;
    tide_task *t = loop ? loop->current : NULL;
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;

    if (t) {
        uintptr_t a = (uintptr_t)si->si_addr, lo = (uintptr_t)t->stack_lo;
        if (a < lo && a >= lo - tide__stack_guard_size()) {
            report_overflow(t);
            abort();
        }
    }
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uctx);
    } else if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
        signal(sig, SIG_DFL); /* the fault repeats and ends the process */
    } else {
        old->sa_handler(sig);
    }
}

/* Installs on_fault for SIGSEGV and SIGBUS unless it is there already,
 * keeping what was there to chain to.  Checked each time a loop starts, so a
 * handler installed later by the program (or a test framework) is chained
 * rather than left to hide an overflow. */
static void install_handler(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static const int sigs[2] = {SIGSEGV, SIGBUS};
    struct sigaction sa, cur;
    int i;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    pthread_mutex_lock(&mu);
    for (i = 0; i < 2; i++) {
        if (sigaction(sigs[i], NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == on_fault)
            continue;
        sigaction(sigs[i], &sa, sigs[i] == SIGSEGV ? &old_segv : &old_bus);
    }
    pthread_mutex_unlock(&mu);
}

void tide__stack_signals_init(tide_loop *loop)
{
    stack_t cur;

    (void)loop;
    install_handler();
    if (alt_refs++ > 0)
        return;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the program has its own: use it */
    alt_len = 64 * 1024;
    alt_mem = mmap(NULL, alt_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt_mem == MAP_FAILED) {
        alt_mem = NULL;
        return;
    }
    cur.ss_sp = alt_mem;
    cur.ss_size = alt_len;
    cur.ss_flags = 0;
    if (sigaltstack(&cur, NULL) < 0) {
        munmap(alt_mem, alt_len);
        alt_mem = NULL;
    }
}

void tide__stack_signals_free(tide_loop *loop)
{
    stack_t off = {.ss_flags = SS_DISABLE};

    (void)loop;
    if (alt_refs == 0 || --alt_refs > 0 || !alt_mem)
        return;
    if (sigaltstack(&off, NULL) == 0) {
        munmap(alt_mem, alt_len);
        alt_mem = NULL;
    }
}
