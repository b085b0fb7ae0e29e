/*
 * asyncio.run_coroutine_threadsafe: another thread submits fn(arg) to a
 * loop and waits for its result with a blocking call (concurrent.futures'
 * Future).
 *
 * The handle is shared by the submitting thread and the loop: a mutex and
 * a condition variable (CLOCK_MONOTONIC) guard its state, and a count of
 * two holders (the submitter's handle, the loop side until the task has
 * reported) says when it is freed.  Posting to the loop uses nodes embedded
 * in the handle, so only the submission allocates.
 */
#include "tide_int.h"

#include <errno.h>
#include <time.h>

enum { CF_QUEUED = 0, CF_RUNNING, CF_DONE };

struct tide_cfuture {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;         /* under mu */
    int state;        /* CF_*, under mu */
    int result;
    void *ptr;
    int cancel_req;   /* the submitter asked for cancellation */
    int cancel_posted; /* cancel_node is queued on the loop (once) */
    tide_loop *loop;
    tide_task *task;  /* loop thread only: the running task */
    tide_fn fn;
    void *arg;
    tide__tsnode start_node, cancel_node;
};

static void cf_unref(tide_cfuture *cf)
{
    int last;

    pthread_mutex_lock(&cf->mu);
    last = --cf->refs == 0;
    pthread_mutex_unlock(&cf->mu);
    if (last) {
        pthread_cond_destroy(&cf->cv);
        pthread_mutex_destroy(&cf->mu);
        tide__free(cf);
    }
}

static void cf_finish(tide_cfuture *cf, int result, void *ptr)
{
    pthread_mutex_lock(&cf->mu);
    cf->result = result;
    cf->ptr = ptr;
    cf->state = CF_DONE;
    cf->task = NULL;
    pthread_cond_broadcast(&cf->cv);
    pthread_mutex_unlock(&cf->mu);
    cf_unref(cf); /* the loop side's hold */
}

static int cf_runner(void *arg)
{
    tide_cfuture *cf = arg;
    int rc = cf->fn(cf->arg);
    cf_finish(cf, rc, tide_task_ptr(tide_current_task()));
    return 0; /* the result went to the handle: nothing for the detach log */
}

static void cf_start(void *arg)
{
    tide_cfuture *cf = arg;
    tide_task *t;
    int rc, cancelled;

    pthread_mutex_lock(&cf->mu);
    cancelled = cf->cancel_req;
    if (!cancelled)
        cf->state = CF_RUNNING;
    pthread_mutex_unlock(&cf->mu);
    if (cancelled) {
        cf_finish(cf, -ECANCELED, NULL);
        return;
    }
    rc = tide_create_task_ex(&t, cf->loop, cf_runner, cf, NULL);
    if (rc < 0) {
        cf_finish(cf, rc, NULL);
        return;
    }
    cf->task = t;
    tide_detach(t);
}

static void cf_cancel_cb(void *arg)
{
    tide_cfuture *cf = arg;
    int running;

    pthread_mutex_lock(&cf->mu);
    running = cf->state == CF_RUNNING && cf->task;
    pthread_mutex_unlock(&cf->mu);
    /* The task reports (and clears cf->task) only on this thread, so it is
     * alive here if it was above. */
    if (running)
        tide_cancel(cf->task);
    cf_unref(cf); /* the hold taken for this node */
}

int tide_run_threadsafe(tide_loop *loop, tide_fn fn, void *arg, tide_cfuture **out)
{
    pthread_condattr_t ca;
    tide_cfuture *cf;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!loop || !fn)
        return -EINVAL;
    cf = tide__calloc(1, sizeof *cf);
    if (!cf)
        return -ENOMEM;
    if (pthread_mutex_init(&cf->mu, NULL) != 0) {
        tide__free(cf);
        return -ENOMEM;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&cf->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&cf->mu);
        tide__free(cf);
        return -ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    cf->refs = 2;
    cf->loop = loop;
    cf->fn = fn;
    cf->arg = arg;
    cf->start_node.cb = cf_start;
    cf->start_node.arg = cf;
    cf->start_node.heap = 0;
    *out = cf;
    tide__post(loop, &cf->start_node);
    return 0;
}

int tide_cfuture_wait(tide_cfuture *cf, int64_t timeout_ms, int *result, void **ptr)
{
    struct timespec ts;
    int rc = 0;

    if (!cf)
        return -EINVAL;
    if (tide__tls_loop == cf->loop)
        return -EDEADLK; /* the loop's own thread would block the loop */
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(timeout_ms / 1000);
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&cf->mu);
    while (cf->state != CF_DONE && rc == 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&cf->cv, &cf->mu);
        else if (pthread_cond_timedwait(&cf->cv, &cf->mu, &ts) == ETIMEDOUT)
            rc = cf->state == CF_DONE ? 0 : -ETIMEDOUT;
    }
    if (rc == 0) {
        if (result)
            *result = cf->result;
        if (ptr)
            *ptr = cf->ptr;
    }
    pthread_mutex_unlock(&cf->mu);
    return rc;
}

int tide_cfuture_done(tide_cfuture *cf)
{
    int done;

    if (!cf)
        return -EINVAL;
    pthread_mutex_lock(&cf->mu);
    done = cf->state == CF_DONE;
    pthread_mutex_unlock(&cf->mu);
    return done;
}

int tide_cfuture_cancel(tide_cfuture *cf)
{
    int post = 0;

    if (!cf)
        return -EINVAL;
    pthread_mutex_lock(&cf->mu);
    if (cf->state == CF_DONE) {
        pthread_mutex_unlock(&cf->mu);
        return -EALREADY;
    }
    cf->cancel_req = 1;
    if (cf->state == CF_RUNNING && !cf->cancel_posted) {
        cf->cancel_posted = 1;
        cf->refs++; /* held by the queued node */
        post = 1;
    }
    pthread_mutex_unlock(&cf->mu);
    if (post) {
        cf->cancel_node.cb = cf_cancel_cb;
        cf->cancel_node.arg = cf;
        cf->cancel_node.heap = 0;
        tide__post(cf->loop, &cf->cancel_node);
    }
    return 0;
}

void tide_cfuture_free(tide_cfuture *cf)
{
    if (cf)
        cf_unref(cf);
}
