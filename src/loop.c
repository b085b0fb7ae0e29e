/*
 * The event loop.
 *
 * One iteration: take the callbacks posted from other threads, fire the
 * timers that are due, run the ready queue (only what was queued when the
 * batch began, so a task that yields cannot starve the poller), then poll
 * for I/O with a timeout up to the next timer.  The poll is skipped when
 * there is more ready work and nobody waits on an fd or another thread, so
 * a loop that only switches between tasks makes no syscall at all.
 *
 * The loop runs on the thread's own stack (its context is loop->ctx); every
 * task switches back to it when it suspends, and the loop picks the next
 * one.  Tasks and callbacks share one FIFO ready queue.
 */
#include "tide_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#ifdef TIDE__ASAN
#include <sanitizer/common_interface_defs.h>
#endif

__thread tide_loop *tide__tls_loop __attribute__((tls_model("initial-exec")));
__thread tide_loop *tide__tls_loops __attribute__((tls_model("initial-exec")));

void tide__calls_free(tide_loop *loop);
void tide__signals_loop_free(tide_loop *loop);

int64_t tide__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tide__loop_ns(tide_loop *loop)
{
    (void)loop;
    return tide__clock_ns();
}

void tide__loop_io_ref(tide_loop *loop)
{
    loop->io_waiters++;
}

void tide__loop_io_unref(tide_loop *loop)
{
    loop->io_waiters--;
}

int64_t tide__now_ns(void)
{
    tide_loop *loop = tide__tls_loop;
    return loop ? tide__loop_ns(loop) : tide__clock_ns();
}

int64_t tide_now(void)
{
    return tide__now_ns() / 1000000;
}

tide_loop *tide_loop_current(void)
{
    return tide__tls_loop;
}

void tide__runq_push(tide__runq *q, tide__runnable *r)
{
    r->next = NULL;
    *q->tailp = r;
    q->tailp = &r->next;
    q->n++;
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

/* ------------------------------------------------------------ switching */

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
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    loop = tide__calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->ready.tailp = &loop->ready.head;
    loop->ts_tailp = &loop->ts_head;
    loop->next_id = 1;
    loop->now = tide__loop_ns(loop);
    rc = pthread_mutex_init(&loop->ts_lock, NULL);
    if (rc) {
        rc = -rc;
        goto fail_loop;
    }
    rc = tide__poller_init(&loop->poller);
    if (rc < 0)
        goto fail_mutex;
    ignore_sigpipe();
    loop->next_on_thread = tide__tls_loops;
    tide__tls_loops = loop;
    *out = loop;
    return 0;

fail_mutex:
    pthread_mutex_destroy(&loop->ts_lock);
fail_loop:
    tide__free(loop);
    return rc;
}

static int all_finished(tide_loop *loop, void *arg)
{
    (void)arg;
    return loop->nundone == 0 && loop->pending_jobs == 0;
}

void tide_loop_free(tide_loop *loop)
{
    tide_task *t, *next;
    tide__tsnode *n, *nn;

    if (!loop)
        return;
    if (loop->running) {
        fputs("tide: tide_loop_free called on a running loop; ignored\n", stderr);
        return;
    }
    /* asyncio.run's ending: cancel what is left and let it finish. */
    loop->closing = 1;
    for (t = loop->tasks_head; t; t = t->next)
        if (t->state != TIDE_TASK_DONE)
            tide_cancel(t);
    if (!all_finished(loop, NULL) && tide__loop_run(loop, all_finished, NULL) < 0)
        fputs("tide: tide_loop_free: another loop runs on this thread; "
              "tasks of the freed loop could not finish\n",
              stderr);
    for (t = loop->tasks_head; t; t = next) {
        next = t->next;
        tide__task_release(t);
    }
    tide__signals_loop_free(loop); /* restore the signals the loop handled */
    pthread_mutex_lock(&loop->ts_lock);
    for (n = loop->ts_head; n; n = nn) {
        nn = n->next;
        if (n->heap)
            tide__free(n);
    }
    loop->ts_head = NULL;
    pthread_mutex_unlock(&loop->ts_lock);
    tide__heap_free(&loop->timers);
    tide__calls_free(loop);
    tide__fds_free(loop);
    tide__pool_loop_free(loop);
    tide__stacks_free(loop);
    tide__poller_free(&loop->poller);
    pthread_mutex_destroy(&loop->ts_lock);
    for (tide_loop **p = &tide__tls_loops; *p; p = &(*p)->next_on_thread) {
        if (*p == loop) {
            *p = loop->next_on_thread;
            break;
        }
    }
    tide__free(loop);
}

/* ------------------------------------------------------ cross-thread */

void tide__post(tide_loop *loop, tide__tsnode *n)
{
    int was_empty;

    n->next = NULL;
    pthread_mutex_lock(&loop->ts_lock);
    was_empty = loop->ts_head == NULL;
    *loop->ts_tailp = n;
    loop->ts_tailp = &n->next;
    __atomic_store_n(&loop->ts_pending, 1, __ATOMIC_RELEASE);
    /* Wake under the lock: once it is released the loop may see the node,
     * finish, and free itself with the poller (tide_loop_free takes the
     * lock before it frees anything). */
    if (was_empty)
        tide__poller_wake(&loop->poller);
    pthread_mutex_unlock(&loop->ts_lock);
}

int tide_call_soon_threadsafe(tide_loop *loop, tide_cb cb, void *arg)
{
    tide__tsnode *n;

    if (!loop || !cb)
        return -EINVAL;
    n = tide__malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    n->cb = cb;
    n->arg = arg;
    n->heap = 1;
    tide__post(loop, n);
    return 0;
}

static void run_posted(tide_loop *loop)
{
    tide__tsnode *n, *next;

    if (!__atomic_load_n(&loop->ts_pending, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&loop->ts_lock);
    n = loop->ts_head;
    loop->ts_head = NULL;
    loop->ts_tailp = &loop->ts_head;
    __atomic_store_n(&loop->ts_pending, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&loop->ts_lock);
    for (; n; n = next) {
        tide_cb cb = n->cb;
        void *arg = n->arg;
        next = n->next;
        if (n->heap)
            tide__free(n);
        cb(arg);
    }
}

/* ------------------------------------------------------------- running */

static void on_io(void *ctx, void *tag, unsigned events)
{
    tide__pollable *p = tag;
    (void)ctx;
    p->on_event(p, events);
}

static int has_work(const tide_loop *loop)
{
    return loop->ready.n || loop->timers.n || loop->io_waiters || loop->pending_jobs ||
           __atomic_load_n(&loop->ts_pending, __ATOMIC_ACQUIRE);
}

int tide__loop_run(tide_loop *loop, int (*done)(tide_loop *, void *), void *arg)
{
    if (loop->running || tide__tls_loop)
        return -EBUSY;
    tide__tls_loop = loop;
    loop->running = 1;
    loop->stop = 0;
    tide__stack_signals_init(loop);

    for (;;) {
        tide__tnode *tn;
        size_t batch;
        int64_t timeout;

        loop->now = tide__loop_ns(loop);
        run_posted(loop);
        while ((tn = tide__heap_min(&loop->timers)) && tn->deadline <= loop->now) {
            tide__heap_remove(&loop->timers, tn);
            tn->fire(loop, tn);
        }
        for (batch = loop->ready.n; batch > 0; batch--) {
            tide__runnable *r = runq_pop(&loop->ready);
            r->run(loop, r);
        }
        if (loop->stop || (done ? done(loop, arg) : !has_work(loop)))
            break;

        if (loop->ready.n) {
            timeout = 0;
        } else if ((tn = tide__heap_min(&loop->timers))) {
            timeout = tn->deadline - tide__loop_ns(loop);
            if (timeout < 0)
                timeout = 0;
        } else {
            timeout = -1;
        }
        if (timeout == 0 && !loop->io_waiters &&
            !__atomic_load_n(&loop->ts_pending, __ATOMIC_ACQUIRE))
            continue;
        (void)tide__poller_wait(&loop->poller, timeout, on_io, loop);
    }

    tide__stack_signals_free(loop);
    loop->running = 0;
    tide__tls_loop = NULL;
    return 0;
}

int tide_loop_run(tide_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return tide__loop_run(loop, NULL, NULL);
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
