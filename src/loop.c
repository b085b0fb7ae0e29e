/*
 * The event loop: a composition of module contexts and the scheduler.
 *
 * A loop is made of modules (the cross-thread queue, timers, stacks, the fd
 * table, the worker pool's bookkeeping, signals, tasks), each owning a
 * sub-struct of struct tide_loop with an init and a term function.  They are
 * listed once, in order, in the table below: tide_loop_new runs the inits in
 * order, tide_loop_free the terms in reverse.  Modules use the scheduler
 * core (ready queue, clock, refs) and never call back into this file.
 *
 * One iteration: take the callbacks posted from other threads, fire the
 * timers that are due, run the ready queue (only what was queued when the
 * batch began, so a task that yields cannot starve the poller), then poll
 * for I/O with a timeout up to the next timer.  The poll is skipped when
 * there is more ready work and nothing waits on the poller (no io ref, no
 * cross-thread post), so a loop that only switches between tasks makes no
 * syscall at all.
 *
 * Tests (vclock.c): on a virtual clock the iteration first moves time one
 * step when nothing is ready, and the poll timeout comes from virtual time's
 * rules; with a seed the batch runs in a shuffled order.  One predictable
 * branch each when off.
 *
 * tide_loop_run returns when nothing is ready and no ref is held: refs are
 * taken by whatever will make work later (an armed timer, a task waiting on
 * an fd, an armed flush, a signal handler, a worker-pool job).
 */
#include "tide_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

__thread tide_loop *tide__tls_loop __attribute__((tls_model("initial-exec")));
__thread tide_loop *tide__tls_loops __attribute__((tls_model("initial-exec")));

static int poller_init(tide_loop *loop)
{
    return tide__poller_init(&loop->poller);
}

static void poller_term(tide_loop *loop)
{
    tide__poller_free(&loop->poller);
}

/* The modules, in init order; torn down in reverse. */
static const struct module {
    const char *name;
    int (*init)(tide_loop *loop);
    void (*term)(tide_loop *loop);
} modules[] = {
    {"poller", poller_init, poller_term},
    {"xthread", tide__xthread_init, tide__xthread_term},
    {"timers", tide__timers_init, tide__timers_term},
    {"stacks", tide__stacks_init, tide__stacks_term},
    {"io", tide__io_init, tide__io_term},
    {"streams", tide__streams_init, tide__streams_term},
    {"pool", tide__pool_init, tide__pool_term},
    {"signals", tide__signals_init, tide__signals_term},
    {"tasks", tide__tasks_init, tide__tasks_term},
};
#define NMODULES (sizeof modules / sizeof modules[0])

tide_loop *tide_loop_current(void)
{
    return tide__tls_loop;
}

static tide__runnable *runq_pop(tide__runq *q)
{
    tide__runnable *r = q->head;
    if (r) {
        q->head = r->next;
        if (!q->head)
            q->tailp = &q->head;
        q->n--;
    }
    return r;
}

/* ----------------------------------------------------------- lifecycle */

/* A write to a closed pipe or socket must return -EPIPE, not kill the
 * process.  Sends use MSG_NOSIGNAL, but write(2) on a pipe has no such flag:
 * so, like Python, ignore SIGPIPE unless the program chose a handler. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int tide_loop_new(tide_loop **out)
{
    tide_loop *loop;
    size_t i;
    int rc = 0;

    if (!out)
        return -EINVAL;
    *out = NULL;
    loop = tide__calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->ready.tailp = &loop->ready.head;
    loop->yielded.tailp = &loop->yielded.head;
    loop->owner = tide__thread_self();
    loop->fork_gen = tide__fork_gen;
    tide__clock_init(loop);
    tide__shuffle_init(loop);
    for (i = 0; i < NMODULES; i++) {
        rc = modules[i].init(loop);
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        while (i-- > 0)
            modules[i].term(loop);
        tide__shuffle_term(loop);
        tide__free(loop);
        return rc;
    }
    ignore_sigpipe();
    tide__dbg_loop_new(loop); /* TIDE_DEBUG=1, gdb's list of loops (debug.c) */
    loop->next_on_thread = tide__tls_loops;
    tide__tls_loops = loop;
    *out = loop;
    return 0;
}

/* What must be over before a closing loop is torn down: every task ended
 * and every pool job back. */
static int all_finished(tide_loop *loop, void *arg)
{
    (void)arg;
    return loop->tasks.nundone == 0 && loop->pool.pending == 0;
}

static int one_pass(tide_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    return 1;
}

/* Frees what is still queued (run's work undone). */
static void drop_ready(tide_loop *loop)
{
    tide__runnable *r;

    while ((r = runq_pop(&loop->yielded)))
        tide__runq_push(&loop->ready, r);
    while ((r = runq_pop(&loop->ready)))
        if (r->drop)
            r->drop(loop, r);
}

static void ignore_io(void *ctx, void *tag, unsigned events)
{
    (void)ctx;
    (void)tag;
    (void)events;
}

/* Another loop runs on this thread, so this one cannot run: wait (blocking
 * the thread) for the worker-pool jobs to come back, disposing of their
 * results, so that no worker ever posts to freed memory. */
static void wait_jobs_blocking(tide_loop *loop)
{
    loop->pool.abandon = 1;
    while (loop->pool.pending) {
        (void)tide__poller_wait(&loop->poller, -1, ignore_io, NULL);
        tide__xthread_run(loop);
    }
}

/* The loop this thread keeps the overflow handler's set-up for (run_enter). */
static __thread const tide_loop *sig_kept;

void tide_loop_free(tide_loop *loop)
{
    size_t i;

    if (!loop)
        return;
    if (loop->running) {
        fputs("tide: tide_loop_free called on a running loop; ignored\n", stderr);
        return;
    }
    /* asyncio.run's ending: cancel what is left and let it finish. */
    loop->closing = 1;
    tide__tasks_cancel_all(loop);
    if (!all_finished(loop, NULL) && tide__loop_run(loop, all_finished, NULL) < 0) {
        if (loop->tasks.nundone)
            fputs("tide: tide_loop_free: another loop runs on this thread; "
                  "tasks of the freed loop could not finish\n",
                  stderr);
        wait_jobs_blocking(loop);
    }
    /* What was scheduled when the tasks ended (a done callback set in the
     * last step) runs once; what that schedules again is dropped, freed. */
    if (loop->ready.n && !loop->pool.abandon)
        (void)tide__loop_run(loop, one_pass, NULL);
    drop_ready(loop);
    if (TIDE__UNLIKELY(loop->dbg.on))
        tide__dbg_loop_end(loop); /* what was left behind, then the watchdog stops */
    tide__dbg_loop_free(loop);
    /* Tasks that could not finish are released below with their stacks:
     * no io_uring operation may still write into one. */
    tide__poller_drain_ops(&loop->poller);
    if (sig_kept == loop) { /* kept by tide_loop_run_once on this thread */
        sig_kept = NULL;
        tide__stack_signals_free(loop);
    }
    for (i = NMODULES; i-- > 0;)
        modules[i].term(loop);
    tide__shuffle_term(loop);
    for (tide_loop **p = &tide__tls_loops; *p; p = &(*p)->next_on_thread) {
        if (*p == loop) {
            *p = loop->next_on_thread;
            break;
        }
    }
    tide__free(loop);
}

/* ---------------------------------------------------------------- fork */

int tide_loop_fork(tide_loop *loop)
{
    int rc;

    if (!loop)
        return -EINVAL;
    if (loop->fork_gen == tide__fork_gen)
        return 0; /* not inherited through a fork (or done already) */
    rc = tide__io_fork_check(loop);
    if (rc < 0)
        return rc;
    /* The other threads did not come along: the cross-thread queue's lock
     * may have been held by one of them, and pool jobs will never return
     * (the tasks waiting on them stay suspended until cancelled). */
    pthread_mutex_init(&loop->xt.lock, NULL);
    loop->refs -= loop->pool.pending;
    loop->pool.pending = 0;
    loop->owner = tide__thread_self();
    loop->fork_gen = tide__fork_gen;
    return 0;
}

/* ------------------------------------------------------------- running */

static void on_io(void *ctx, void *tag, unsigned events)
{
    tide__pollable *p = tag;
    ((tide_loop *)ctx)->dbg.events++;
    p->on_event(p, events);
}

static int has_work(tide_loop *loop)
{
    return loop->ready.n || loop->yielded.n || loop->refs || tide__xthread_pending(loop);
}

/* The poll timeout in ns: 0 when work is ready, -1 when nothing is timed. */
static int64_t poll_timeout(tide_loop *loop)
{
    int64_t next;

    if (loop->ready.n || loop->yielded.n || tide__xthread_pending(loop))
        return 0;
    if (TIDE__UNLIKELY(loop->vclock.on))
        return tide__vclock_timeout(loop);
    if ((next = tide__timers_next(loop)) == TIDE__NEVER)
        return -1;
    next -= tide__loop_ns(loop);
    return next < 0 ? 0 : next;
}

/* One iteration.  may_block: poll with the timeout up to the next timer
 * (else just look).  Returns 1 when the run should end. */
static int iterate(tide_loop *loop, int (*done)(tide_loop *, void *), void *arg, int may_block)
{
    size_t batch, yielded;
    int64_t timeout;

    if (TIDE__UNLIKELY(loop->fork_gen != tide__fork_gen))
        (void)tide_loop_fork(loop);
    if (TIDE__UNLIKELY(loop->vclock.on))
        tide__vclock_step(loop);
    loop->now = tide__loop_ns(loop);
    loop->dbg.iterations++;
    tide__xthread_run(loop);
    tide__timers_run(loop);
    yielded = loop->yielded.n; /* those yielded before this batch */
    if (TIDE__UNLIKELY(loop->shuffle.on)) {
        tide__shuffle_run(loop, loop->ready.n);
    } else {
        for (batch = loop->ready.n; batch > 0; batch--) {
            tide__runnable *r = runq_pop(&loop->ready);
            r->run(loop, r);
        }
    }
    if (yielded) { /* one slice of a task over its I/O budget */
        tide__runnable *r = runq_pop(&loop->yielded);
        r->run(loop, r);
    }
    tide__run_deferred(loop); /* what callbacks left */
    /* A closing loop runs until everything finished, whatever stop says:
     * "stop on error" in a cancelled task must not cut its cleanup. */
    if ((loop->stop && !loop->closing) || (done ? done(loop, arg) : !has_work(loop)))
        return 1;
    /* A blocking run may skip a poll that could bring nothing it waits
     * for.  tide_loop_run_once never does: its host sleeps on the poller's
     * fd, which stays readable until the events queued there (a wake-up
     * from another thread, readiness of an fd nobody waits on) are taken,
     * so skipping would make the host spin. */
    timeout = may_block ? poll_timeout(loop) : 0;
    if (may_block && timeout == 0 && !loop->io_refs && !tide__xthread_pending(loop))
        return 0;
    if (may_block && timeout != 0) {
        /* Going to sleep: from here posters must wake us (xthread.c). */
        __atomic_store_n(&loop->xt.awake, 0, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&loop->xt.pending, __ATOMIC_SEQ_CST))
            timeout = 0;
    }
    if (TIDE__UNLIKELY(loop->dbg.on))
        tide__dbg_poll_begin(loop);
    (void)tide__poller_wait(&loop->poller, timeout, on_io, loop);
    if (TIDE__UNLIKELY(loop->dbg.on))
        tide__dbg_poll_end(loop);
    if (may_block)
        __atomic_store_n(&loop->xt.awake, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* The overflow handler and the alternate signal stack are set up for a run
 * and taken down after it (a handful of syscalls).  An embedder calls
 * tide_loop_run_once once per iteration of its own loop, so for it the
 * thread keeps them from the first call until that loop is freed on this
 * thread (sig_kept: the loop this thread keeps them for; one at a time).  A
 * SIGSEGV handler the program installs after that first call is then not
 * chained (a plain run checks at every start).  A loop freed on another
 * thread leaves this one its 64 KiB until it exits.  sig_kept is declared
 * above tide_loop_free. */

static int run_enter(tide_loop *loop, int once)
{
    if (loop->running || tide__tls_loop)
        return -EBUSY;
    tide__tls_loop = loop;
    loop->owner = tide__thread_self();
    loop->running = 1;
    if (sig_kept != loop) {
        tide__stack_signals_init(loop);
        if (once && !sig_kept)
            sig_kept = loop; /* this reference stays until tide_loop_free */
        else
            loop->sig_run = 1; /* taken back by run_leave */
    }
    return 0;
}

static void run_leave(tide_loop *loop)
{
    if (loop->sig_run) {
        loop->sig_run = 0;
        tide__stack_signals_free(loop);
    }
    loop->running = 0;
    tide__tls_loop = NULL;
}

int tide__loop_run(tide_loop *loop, int (*done)(tide_loop *, void *), void *arg)
{
    int rc = run_enter(loop, 0);

    if (rc < 0)
        return rc;
    loop->stop = 0;
    __atomic_store_n(&loop->xt.awake, 1, __ATOMIC_SEQ_CST);
    while (!iterate(loop, done, arg, 1))
        ;
    __atomic_store_n(&loop->xt.awake, 0, __ATOMIC_SEQ_CST);
    run_leave(loop);
    return 0;
}

int tide_loop_run(tide_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return tide__loop_run(loop, NULL, NULL);
}

static int never_done(tide_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    return 0;
}

int tide_loop_run_forever(tide_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return tide__loop_run(loop, never_done, NULL);
}

/* ----------------------------------------------------------- embedding */

int tide_loop_run_once(tide_loop *loop)
{
    int rc;

    if (!loop)
        return -EINVAL;
    rc = run_enter(loop, 1);
    if (rc < 0)
        return rc;
    (void)iterate(loop, never_done, NULL, 0);
    rc = has_work(loop) && !loop->stop;
    loop->stop = 0;
    run_leave(loop);
    return rc;
}

int tide_loop_fd(const tide_loop *loop)
{
    return loop ? loop->poller.fd : -EINVAL;
}

const char *tide_loop_poller(const tide_loop *loop)
{
    return loop ? tide__poller_name(&loop->poller) : NULL;
}

int64_t tide_loop_timeout_ms(tide_loop *loop)
{
    int64_t ns;

    if (!loop)
        return 0;
    if (TIDE__UNLIKELY(loop->fork_gen != tide__fork_gen))
        (void)tide_loop_fork(loop);
    ns = poll_timeout(loop);
    if (ns < 0)
        return -1;
    return (ns + 999999) / 1000000; /* rounded up: never wake early into a spin */
}

void tide_loop_stop(tide_loop *loop)
{
    if (loop)
        loop->stop = 1;
}

static int task_is_done(tide_loop *loop, void *arg)
{
    (void)loop;
    return ((tide_task *)arg)->state == TIDE_TASK_DONE;
}

int tide_loop_run_until_complete(tide_loop *loop, tide_task *t)
{
    int rc;

    if (!loop || tide__task_check(t) < 0 || t->loop != loop || t->detached || t->group)
        return -EINVAL;
    if (t->joiner)
        return -EBUSY;
    if (t->state != TIDE_TASK_DONE) {
        t->joiner = TIDE__JOINER_LOOP; /* ours: nobody may await or detach it */
        rc = tide__loop_run(loop, task_is_done, t);
        if (t->state != TIDE_TASK_DONE) {
            t->joiner = NULL;
            return rc < 0 ? rc : -EINTR; /* tide_loop_stop before t ended */
        }
    }
    rc = t->result;
    tide__task_release(t);
    return rc;
}

int tide_run(tide_fn main, void *arg)
{
    tide_task_opts o = {.name = "main", .stack_size = 0};
    tide_loop *loop;
    tide_task *t;
    int rc;

    if (!main)
        return -EINVAL;
    if (tide__tls_loop)
        return -EBUSY;
    rc = tide_loop_new(&loop);
    if (rc < 0)
        return rc;
    rc = tide_create_task_ex(&t, loop, main, arg, &o);
    if (rc == 0)
        rc = tide_loop_run_until_complete(loop, t);
    tide_loop_free(loop);
    return rc;
}
