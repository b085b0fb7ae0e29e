/*
 * Debug mode: a stall watchdog, a dump signal, creation backtraces and the
 * report of what a loop left behind; loop metrics; the handler of detached
 * task failures; the process's list of loops (gdb's `tide tasks`).
 *
 * Off by default and free when off: the loop and task.c test one pointer
 * (loop->dbg.on) around each step and each poll, nothing else.
 *
 * The watchdog is a thread per debug loop.  Each task step stamps its start
 * (an atomic store of the raw clock) and clears it at its end; the watchdog
 * wakes every slow_step/4 and, when a stamp is older than the threshold,
 * sends watchdog_signal to the loop's thread.  The handler, on the stuck
 * thread, walks the frame pointers from the interrupted registers (only
 * loads within the task's stack: async-signal-safe) and hands the frames
 * back; the watchdog names them and writes the report while the step is
 * still running, as Seastar's stall detector does.
 *
 * The dump signal's handler only bumps a counter; each watchdog sees it
 * within its period and posts a dump to its loop (call_soon_threadsafe), so
 * the dump runs on the loop's thread between steps, never in signal context.
 */
#include "tide_int.h"

#include <semaphore.h>
#if defined(__FreeBSD__) || defined(__DragonFly__)
#include <pthread_np.h>
#endif
#include <signal.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "dump.h"

#define BORN_FRAMES 12
#define BT_FRAMES 48

struct tide__dbg_born {
    uint32_t n;
    uintptr_t pcs[BORN_FRAMES];
};

struct tide__dbg {
    tide_debug_opts o;
    tide_loop *loop;
    int64_t slow_ns;
    /* shared with the watchdog (atomics) */
    int64_t step_t0;       /* raw clock at the running step's start, 0 between steps */
    uint64_t step_seq;     /* steps begun */
    pthread_t loop_thread; /* the thread running the step */
    int want_bt, bt_done;
    uint64_t reported_seq; /* the step the watchdog reported */
    int quit;
    /* written by the signal handler, read by the watchdog after bt_done */
    uintptr_t bt[BT_FRAMES];
    size_t nbt;
    uint64_t bt_id;
    char bt_name[TIDE_TASK_NAME_MAX];
    /* the watchdog */
    pthread_t wd;
    sem_t sem;
    unsigned dump_seen;
    /* metrics (loop thread) */
    int64_t cur_t0, poll_t0;
    uint64_t steps, slow_steps, longest_id;
    int64_t idle_ns, busy_ns, longest_ns;
    /* the loop thread's stack, for creation backtraces outside tasks */
    pthread_t bounds_thread;
    uintptr_t tlo, thi;
    /* futures made and not freed, for the leak report */
    struct dbg_future *futs;
    size_t nfuts, capfuts;
};

struct dbg_future {
    const void *f;
    int taken; /* awaited, given a done callback or read */
    struct tide__dbg_born born;
};

/* ------------------------------------------------------ loops of the process */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* Every loop of the process (not static: gdb's tools/tide-gdb.py reads it). */
TIDE__HIDDEN tide_loop *tide__all_loops;

static int env_debug(void)
{
    const char *e = getenv("TIDE_DEBUG");
    return e && e[0] && strcmp(e, "0") != 0;
}

void tide__dbg_loop_new(tide_loop *loop)
{
    pthread_mutex_lock(&reg_lock);
    loop->dbg.gnext = tide__all_loops;
    if (tide__all_loops)
        tide__all_loops->dbg.gprev = loop;
    tide__all_loops = loop;
    pthread_mutex_unlock(&reg_lock);
    if (env_debug() && tide_loop_set_debug(loop, NULL) < 0)
        fputs("tide: TIDE_DEBUG: debug mode could not start\n", stderr);
}

/* ------------------------------------------------------- exception handler */

int tide_loop_set_exception_handler(tide_loop *loop, tide_exception_handler h, void *arg)
{
    if (!loop)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    loop->dbg.exc = h;
    loop->dbg.exc_arg = arg;
    return 0;
}

void tide__dbg_task_failed(tide_task *t)
{
    tide_loop *loop = t->loop;

    if (loop->dbg.exc)
        loop->dbg.exc(loop, t, t->result, loop->dbg.exc_arg);
    else
        fprintf(stderr, "tide: detached task '%s' (id %llu) failed: %s\n", tide_task_name(t),
                (unsigned long long)t->id, tide_strerror(t->result));
}

/* ----------------------------------------------------------------- metrics */

int tide_loop_get_metrics(tide_loop *loop, tide_loop_metrics *m)
{
    const struct tide__dbg *d;

    if (!loop && !(loop = tide__tls_loop))
        return -EINVAL;
    if (!m)
        return -EINVAL;
    memset(m, 0, sizeof *m);
    m->iterations = loop->dbg.iterations;
    m->events = loop->dbg.events;
    m->tasks_created = loop->tasks.next_id - 1;
    m->tasks_live = loop->tasks.n;
    if ((d = loop->dbg.on)) {
        m->steps = d->steps;
        m->idle_ns = d->idle_ns;
        m->busy_ns = d->busy_ns;
        m->longest_step_ns = d->longest_ns;
        m->longest_step_task = d->longest_id;
        m->slow_steps = d->slow_steps;
    }
    return 0;
}

/* --------------------------------------------------------- the step hooks */

void tide__dbg_step_begin(tide_loop *loop, tide_task *t)
{
    struct tide__dbg *d = loop->dbg.on;
    int64_t now = tide__clock_ns();

    (void)t;
    d->cur_t0 = now;
    __atomic_store_n(&d->loop_thread, pthread_self(), __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->step_seq, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&d->step_t0, now, __ATOMIC_RELEASE);
}

void tide__dbg_step_end(tide_loop *loop, tide_task *t)
{
    struct tide__dbg *d = loop->dbg.on;
    int64_t dt = tide__clock_ns() - d->cur_t0;

    __atomic_store_n(&d->step_t0, 0, __ATOMIC_RELEASE);
    d->steps++;
    d->busy_ns += dt;
    if (dt > d->longest_ns) {
        d->longest_ns = dt;
        d->longest_id = t->id;
    }
    if (d->slow_ns && dt >= d->slow_ns) {
        d->slow_steps++;
        /* Too short for the watchdog to catch it running: say so afterwards. */
        if (__atomic_load_n(&d->reported_seq, __ATOMIC_ACQUIRE) !=
            __atomic_load_n(&d->step_seq, __ATOMIC_RELAXED))
            dprintf(d->o.report_fd,
                    "tide: slow step: task %llu \"%s\" ran %lld ms without suspending\n",
                    (unsigned long long)t->id, tide_task_name(t), (long long)(dt / 1000000));
    }
}

void tide__dbg_poll_begin(tide_loop *loop)
{
    loop->dbg.on->poll_t0 = tide__clock_ns();
}

void tide__dbg_poll_end(tide_loop *loop)
{
    struct tide__dbg *d = loop->dbg.on;
    d->idle_ns += tide__clock_ns() - d->poll_t0;
}

/* ---------------------------------------------------- creation backtraces */

static void thread_bounds(struct tide__dbg *d)
{
    pthread_attr_t a;
    void *lo;
    size_t size;

    if (d->thi && pthread_equal(d->bounds_thread, pthread_self()))
        return;
    d->tlo = d->thi = 0;
#if defined(__APPLE__)
    (void)a;
    lo = pthread_get_stackaddr_np(pthread_self()); /* the top: stacks grow down */
    size = pthread_get_stacksize_np(pthread_self());
    d->thi = (uintptr_t)lo;
    d->tlo = (uintptr_t)lo - size;
#elif defined(__linux__) || defined(__FreeBSD__) || defined(__DragonFly__) || defined(__NetBSD__)
#if defined(__linux__)
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
#else
    if (pthread_attr_init(&a) == 0 && pthread_attr_get_np(pthread_self(), &a) == 0) {
#endif
        if (pthread_attr_getstack(&a, &lo, &size) == 0) {
            d->tlo = (uintptr_t)lo;
            d->thi = (uintptr_t)lo + size;
        }
        pthread_attr_destroy(&a);
    }
#else /* OpenBSD: no attribute query; creation backtraces stop at the first frame */
    (void)a;
    (void)lo;
    (void)size;
#endif
    d->bounds_thread = pthread_self();
}

void tide__dbg_task_born(tide_task *t)
{
    struct tide__dbg *d = t->loop->dbg.on;
    struct tide__dbg_born *b = tide__malloc(sizeof *b);
    tide_task *cur = t->loop->current;
    uintptr_t lo, hi;

    if (!b)
        return; /* a report without its creation site, not a failure */
    if (cur) {
        lo = (uintptr_t)cur->stack_lo;
        hi = (uintptr_t)cur;
    } else {
        thread_bounds(d);
        lo = d->tlo;
        hi = d->thi;
    }
    b->n = (uint32_t)tide__fp_walk(0, (uintptr_t)__builtin_frame_address(0), lo, hi, b->pcs,
                                   BORN_FRAMES);
    t->born = b;
}

static void capture_here(struct tide__dbg *d, tide_loop *loop, struct tide__dbg_born *b)
{
    tide_task *cur = loop->current;
    uintptr_t lo, hi;

    if (cur) {
        lo = (uintptr_t)cur->stack_lo;
        hi = (uintptr_t)cur;
    } else {
        thread_bounds(d);
        lo = d->tlo;
        hi = d->thi;
    }
    b->n = (uint32_t)tide__fp_walk(0, (uintptr_t)__builtin_frame_address(0), lo, hi, b->pcs,
                                   BORN_FRAMES);
}

void tide__dbg_future_new(tide_loop *loop, const void *f)
{
    struct tide__dbg *d = loop->dbg.on;

    if (d->nfuts == d->capfuts) {
        size_t cap = d->capfuts ? 2 * d->capfuts : 64;
        struct dbg_future *v = tide__realloc(d->futs, cap * sizeof *v);
        if (!v)
            return; /* untracked: never reported, never a failure */
        d->futs = v;
        d->capfuts = cap;
    }
    d->futs[d->nfuts].f = f;
    d->futs[d->nfuts].taken = 0;
    capture_here(d, loop, &d->futs[d->nfuts].born);
    d->nfuts++;
}

int tide__dbg_loops; /* atomic; changed under reg_lock */

void tide__dbg_future_seen(const void *f, int freed)
{
    tide_loop *l;
    size_t i;

    pthread_mutex_lock(&reg_lock);
    for (l = tide__all_loops; l; l = l->dbg.gnext) {
        struct tide__dbg *d = l->dbg.on;
        if (!d || l->owner != tide__thread_self())
            continue; /* futures are used on their loop's thread */
        for (i = d->nfuts; i-- > 0;) /* the newest first: they are used first */
            if (d->futs[i].f == f) {
                if (freed)
                    d->futs[i] = d->futs[--d->nfuts];
                else
                    d->futs[i].taken = 1;
                pthread_mutex_unlock(&reg_lock);
                return;
            }
    }
    pthread_mutex_unlock(&reg_lock);
}

void tide__dbg_fd_born(tide_loop *loop, tide__fd *f)
{
    if (!f->born)
        f->born = tide__malloc(sizeof *f->born);
    if (f->born)
        capture_here(loop->dbg.on, loop, f->born);
}

void tide__dbg_born_free(tide_task *t)
{
    tide__free(t->born);
    t->born = NULL;
}

/* ---------------------------------------------------------------- signals */

static unsigned dump_gen;   /* bumped by the dump signal's handler */
static int nsig_users;      /* debug loops (under reg_lock) */
static struct sigaction old_wd, old_dump;
static int wd_signo, dump_signo;

static void on_dump_signal(int sig)
{
    (void)sig;
    __atomic_add_fetch(&dump_gen, 1, __ATOMIC_RELAXED);
}

static void on_wd_signal(int sig, siginfo_t *si, void *ucv)
{
    tide_loop *loop = tide__tls_loop;
    struct tide__dbg *d = loop ? loop->dbg.on : NULL;
    const ucontext_t *uc = ucv;
    uintptr_t pc = 0, fp = 0, lo, hi;
    tide_task *t;
    int saved = errno;

    (void)sig;
    (void)si;
    if (!d || !__atomic_load_n(&d->want_bt, __ATOMIC_ACQUIRE))
        return;
#if defined(__x86_64__) && defined(REG_RIP)
    pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__) && defined(__linux__)
    pc = (uintptr_t)uc->uc_mcontext.pc;
    fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
    (void)uc;
#endif
    t = loop->current;
    if (t) {
        lo = (uintptr_t)t->stack_lo;
        hi = (uintptr_t)t;
        d->bt_id = t->id;
        memcpy(d->bt_name, t->name, sizeof d->bt_name);
    } else {
        lo = d->tlo;
        hi = d->thi;
        d->bt_id = 0;
        d->bt_name[0] = '\0';
    }
    d->nbt = pc ? tide__fp_walk(pc, fp, lo, hi, d->bt, BT_FRAMES) : 0;
    __atomic_store_n(&d->want_bt, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->bt_done, 1, __ATOMIC_RELEASE);
    errno = saved;
}

static int signals_use(const tide_debug_opts *o)
{
    struct sigaction sa;
    int rc = 0;

    pthread_mutex_lock(&reg_lock);
    if (nsig_users == 0) {
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        /* SA_ONSTACK: a signal frame would overflow a small unguarded stack. */
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sa.sa_sigaction = on_wd_signal;
        if (sigaction(o->watchdog_signal, &sa, &old_wd) < 0) {
            rc = -errno;
            goto out;
        }
        wd_signo = o->watchdog_signal;
        dump_signo = o->dump_signal;
        if (dump_signo) {
            memset(&sa, 0, sizeof sa);
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART | SA_ONSTACK;
            sa.sa_handler = on_dump_signal;
            if (sigaction(dump_signo, &sa, &old_dump) < 0) {
                rc = -errno;
                sigaction(wd_signo, &old_wd, NULL);
                goto out;
            }
        }
    } else if (o->watchdog_signal != wd_signo || o->dump_signal != dump_signo) {
        rc = -EBUSY; /* the handlers are process-wide: one choice at a time */
        goto out;
    }
    nsig_users++;
out:
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

static void signals_unuse(void)
{
    pthread_mutex_lock(&reg_lock);
    if (--nsig_users == 0) {
        sigaction(wd_signo, &old_wd, NULL);
        if (dump_signo)
            sigaction(dump_signo, &old_dump, NULL);
    }
    pthread_mutex_unlock(&reg_lock);
}

/* --------------------------------------------------------------- watchdog */

static void dump_cb(void *arg)
{
    struct tide__dbg *d = arg;
    (void)tide_loop_dump(d->loop, d->o.report_fd);
}

static void report_stall(struct tide__dbg *d, int64_t ran_ns)
{
    tide__outbuf *b = tide__malloc(sizeof *b);

    if (!b)
        return;
    b->fd = d->o.report_fd;
    b->n = 0;
    b->err = 0;
    if (d->bt_id)
        tide__ob_printf(b,
                        "tide: slow step: task %llu \"%s\" has run for %lld ms without "
                        "suspending (threshold %lld ms); its stack now:\n",
                        (unsigned long long)d->bt_id,
                        d->bt_name[0] ? d->bt_name : "(unnamed)", (long long)(ran_ns / 1000000),
                        (long long)d->o.slow_step_ms);
    else
        tide__ob_printf(b, "tide: slow step: the loop has run a callback for %lld ms; its stack now:\n",
                        (long long)(ran_ns / 1000000));
    tide__sym_lock();
    tide__ob_frames(b, d->bt, d->nbt);
    tide__sym_unlock();
    tide__ob_flush(b);
    tide__free(b);
}

static void *watchdog(void *arg)
{
    struct tide__dbg *d = arg;
    int64_t period = d->slow_ns ? d->slow_ns / 4 : 50000000;

    if (period < 1000000)
        period = 1000000;
    if (period > 50000000)
        period = 50000000;
    while (!__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE)) {
        struct timespec ts;
        unsigned gen;
        int64_t t0;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)period;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        (void)sem_timedwait(&d->sem, &ts);
        if (__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
            break;
        gen = __atomic_load_n(&dump_gen, __ATOMIC_RELAXED);
        if (gen != d->dump_seen) {
            d->dump_seen = gen;
            (void)tide_call_soon_threadsafe(d->loop, dump_cb, d);
        }
        t0 = __atomic_load_n(&d->step_t0, __ATOMIC_ACQUIRE);
        if (d->slow_ns && t0) {
            uint64_t seq = __atomic_load_n(&d->step_seq, __ATOMIC_RELAXED);
            int64_t ran = tide__clock_ns() - t0;
            if (ran >= d->slow_ns && seq != __atomic_load_n(&d->reported_seq, __ATOMIC_RELAXED)) {
                int i;
                __atomic_store_n(&d->reported_seq, seq, __ATOMIC_RELEASE);
                __atomic_store_n(&d->bt_done, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&d->want_bt, 1, __ATOMIC_RELEASE);
                pthread_kill(__atomic_load_n(&d->loop_thread, __ATOMIC_RELAXED),
                             d->o.watchdog_signal);
                for (i = 0; i < 500 && !__atomic_load_n(&d->bt_done, __ATOMIC_ACQUIRE); i++) {
                    struct timespec ms = {0, 1000000};
                    nanosleep(&ms, NULL);
                }
                if (__atomic_load_n(&d->bt_done, __ATOMIC_ACQUIRE))
                    report_stall(d, ran);
                else
                    __atomic_store_n(&d->want_bt, 0, __ATOMIC_RELAXED);
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ debug mode */

void tide_debug_opts_init(tide_debug_opts *o)
{
    if (o) {
        o->slow_step_ms = 100;
        o->dump_signal = SIGQUIT;
        o->report_fd = 2;
        o->watchdog_signal = SIGURG;
    }
}

int tide_loop_set_debug(tide_loop *loop, const tide_debug_opts *opts)
{
    tide_debug_opts o;
    struct tide__dbg *d;
    sigset_t all, old;
    int rc;

    if (!loop)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    if (opts)
        o = *opts;
    else
        tide_debug_opts_init(&o);
    if (o.slow_step_ms < 0 || o.report_fd < 0 || o.dump_signal < 0 || o.dump_signal >= NSIG ||
        o.watchdog_signal <= 0 || o.watchdog_signal >= NSIG || o.watchdog_signal == SIGKILL ||
        o.watchdog_signal == SIGSTOP || o.dump_signal == SIGKILL || o.dump_signal == SIGSTOP ||
        o.dump_signal == o.watchdog_signal)
        return -EINVAL;
    if (loop->running || loop->dbg.on)
        return -EBUSY;
    d = tide__calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->o = o;
    d->loop = loop;
    d->slow_ns = o.slow_step_ms * 1000000;
    d->loop_thread = pthread_self();
    d->dump_seen = __atomic_load_n(&dump_gen, __ATOMIC_RELAXED);
    thread_bounds(d);
    if (sem_init(&d->sem, 0, 0) < 0) {
        rc = -errno;
        goto fail_sem;
    }
    rc = signals_use(&o);
    if (rc < 0)
        goto fail_sig;
    /* The watchdog takes no signal: process signals go to the program's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&d->wd, NULL, watchdog, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        rc = -EAGAIN;
        goto fail_thread;
    }
    pthread_mutex_lock(&reg_lock);
    loop->dbg.on = d;
    __atomic_add_fetch(&tide__dbg_loops, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&reg_lock);
    tide__stack_guards_dumpable(); /* gcore keeps task stacks (stack.c) */
    return 0;
fail_thread:
    signals_unuse();
fail_sig:
    sem_destroy(&d->sem);
fail_sem:
    tide__free(d);
    return rc;
}

/* The report of what the loop leaves behind, then debug mode's end. */
void tide__dbg_loop_end(tide_loop *loop)
{
    struct tide__dbg *d = loop->dbg.on;
    tide__outbuf *b = tide__malloc(sizeof *b);
    tide_task *t;
    size_t i;

    if (b) {
        b->fd = d->o.report_fd;
        b->n = 0;
        b->err = 0;
        tide__sym_lock();
        for (t = loop->tasks.head; t; t = t->next) {
            /* Everything finished: what is still listed nobody took. */
            tide__ob_printf(b, "tide: leak: task %llu \"%s\" was never awaited nor detached "
                               "(state %s, result %d); created at:\n",
                            (unsigned long long)t->id, tide_task_name(t),
                            tide_task_state_name((tide_task_state)t->state), t->result);
            if (t->born)
                tide__ob_frames(b, t->born->pcs, t->born->n);
        }
        for (i = 0; i < d->nfuts; i++) {
            if (d->futs[i].taken)
                continue;
            tide__ob_printf(b, "tide: leak: future %p was never awaited (nor freed); created at:\n",
                            d->futs[i].f);
            tide__ob_frames(b, d->futs[i].born.pcs, d->futs[i].born.n);
        }
        for (i = 0; i < loop->io.nfds; i++) {
            const tide__fd *f = loop->io.fds[i];
            if (!f || !f->registered)
                continue;
            tide__ob_printf(b, "tide: leak: fd %d is still registered with the loop "
                               "(never tide_close'd)%s\n",
                            f->fd, f->born ? "; registered at:" : "");
            if (f->born)
                tide__ob_frames(b, f->born->pcs, f->born->n);
        }
        tide__sym_unlock();
        tide__ob_flush(b);
        tide__free(b);
    }
    __atomic_store_n(&d->quit, 1, __ATOMIC_RELEASE);
    sem_post(&d->sem);
    pthread_join(d->wd, NULL);
    signals_unuse();
    sem_destroy(&d->sem);
    pthread_mutex_lock(&reg_lock);
    loop->dbg.on = NULL;
    __atomic_sub_fetch(&tide__dbg_loops, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&reg_lock);
    tide__free(d->futs);
    tide__free(d);
}

void tide__dbg_loop_free(tide_loop *loop)
{
    pthread_mutex_lock(&reg_lock);
    if (loop->dbg.gprev)
        loop->dbg.gprev->dbg.gnext = loop->dbg.gnext;
    else if (tide__all_loops == loop)
        tide__all_loops = loop->dbg.gnext;
    if (loop->dbg.gnext)
        loop->dbg.gnext->dbg.gprev = loop->dbg.gprev;
    pthread_mutex_unlock(&reg_lock);
}
