/*
 * The worker pool: a few threads (4 by default, TIDE_THREADPOOL_SIZE) shared
 * by every loop of the process, for work that would block the loop: CPU
 * work given to tide_to_thread, file I/O, getaddrinfo.
 *
 * A job carries the node that posts it back to its loop when done
 * (tide__post never allocates, so a finished job can always report).  The
 * waiting task is woken from the loop thread.  If the task was cancelled
 * meanwhile it has already returned -ECANCELED and cleared job->task; the
 * late result is then dropped.  The loop counts its jobs in flight and does
 * not finish (tide_run, tide_loop_free) until every one has come back, so a
 * job never posts to a freed loop.
 *
 * The workers live until the process exits; then (a destructor) the idle
 * ones end and are joined.
 */
#include "tide_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#define DEFAULT_THREADS 4
#define MAX_THREADS 128
#define JOB_CACHE 64

typedef struct tide__job {
    tide__tsnode done; /* posted to the loop when fn returned */
    struct tide__job *next; /* in the pool's queue, or the loop's cache */
    tide_fn fn;
    void *arg;
    int result;
    tide_loop *loop;
    tide_task *task;   /* the waiting task, NULL once it stopped waiting */
    void (*drop)(void *arg); /* frees arg's results when nobody waits */
} job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static job *qhead, **qtail = &qhead;
static int nthreads;   /* running workers */
static int started;    /* start_pool ran (in this process) */
static int atfork_set;
/* Ending at exit (pool_stop). */
static pthread_t workers[MAX_THREADS];
static uint8_t exited[MAX_THREADS]; /* worker i ended: join it */
static uint8_t in_job[MAX_THREADS]; /* worker i is inside a job's fn (atomic) */
static int quitting;
static pthread_cond_t exit_cond = PTHREAD_COND_INITIALIZER;

/* Workers take no asynchronous signals: those belong to the program's
 * threads.  Faults (SIGSEGV...) stay unblocked: blocking them only turns a
 * crash into a silent kill.  (The mask is set here rather than around
 * pthread_create: qemu-user hangs creating a thread with every signal
 * blocked.) */
static void block_signals(void)
{
    static const int sync_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
    sigset_t set;
    size_t i;

    sigfillset(&set);
    for (i = 0; i < sizeof sync_sigs / sizeof sync_sigs[0]; i++)
        sigdelset(&set, sync_sigs[i]);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *worker(void *arg)
{
    int idx = (int)(intptr_t)arg;

    block_signals();
    pthread_mutex_lock(&lock);
    for (;;) {
        job *j;

        while (!qhead && !quitting)
            pthread_cond_wait(&cond, &lock);
        if (quitting)
            break;
        j = qhead;
        qhead = j->next;
        if (!qhead)
            qtail = &qhead;
        __atomic_store_n(&in_job[idx], 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&lock);

        j->result = j->fn(j->arg);
        /* Cleared before the result is posted: once the loop has seen the
         * result, pool_stop waits for this worker and joins it. */
        __atomic_store_n(&in_job[idx], 0, __ATOMIC_RELEASE);
        tide__post(j->loop, &j->done); /* j belongs to the loop from here */
        pthread_mutex_lock(&lock);
    }
    exited[idx] = 1;
    pthread_cond_broadcast(&exit_cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* At exit (or when a shared libtide is unloaded): the idle workers end and
 * are joined, so that none is left running tide's code or holding thread
 * memory (that valgrind would report as lost).  A worker busy with a job is
 * not waited for (the job may block for any time): it ends after it. */
__attribute__((destructor)) static void pool_stop(void)
{
    pthread_t join[MAX_THREADS];
    struct timespec until;
    int i, n = 0, want;

    pthread_mutex_lock(&lock);
    if (!started || nthreads == 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    quitting = 1;
    pthread_cond_broadcast(&cond);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    /* Every worker not inside a job ends now; that includes one that has
     * just posted its result and not yet taken the lock again (counting
     * only the idle ones missed it, and left it unjoined). */
    for (;;) {
        want = 0; /* workers still to end */
        for (i = 0; i < nthreads; i++)
            if (!exited[i] && !__atomic_load_n(&in_job[i], __ATOMIC_ACQUIRE))
                want++;
        if (want == 0 ||
            pthread_cond_timedwait(&exit_cond, &lock, &until) != 0)
            break;
    }
    for (i = 0; i < nthreads; i++)
        if (exited[i])
            join[n++] = workers[i];
    pthread_mutex_unlock(&lock);
    for (i = 0; i < n; i++)
        pthread_join(join[i], NULL);
}

/* The child of a fork has none of the workers: start afresh if it asks. */
static void after_fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&cond, NULL);
    pthread_cond_init(&exit_cond, NULL);
    qhead = NULL;
    qtail = &qhead;
    nthreads = 0;
    started = 0;
    quitting = 0;
    memset(exited, 0, sizeof exited);
    memset(in_job, 0, sizeof in_job);
}

static int pool_size(void)
{
    const char *s = getenv("TIDE_THREADPOOL_SIZE");
    long n;
    char *end;

    if (!s || !*s)
        return DEFAULT_THREADS;
    n = strtol(s, &end, 10);
    if (*end || n < 1)
        return DEFAULT_THREADS;
    return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* Starts the workers once.  Returns 0, or -EAGAIN if none could start. */
static int start_pool(void)
{
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!started) {
        int i, want = pool_size();
        pthread_attr_t attr;

        started = 1;
        if (!atfork_set) {
            pthread_atfork(NULL, NULL, after_fork_child);
            atfork_set = 1;
        }
        pthread_attr_init(&attr); /* joinable: pool_stop joins them at exit */
        for (i = 0; i < want; i++)
            if (pthread_create(&workers[nthreads], &attr, worker,
                               (void *)(intptr_t)nthreads) == 0)
                nthreads++;
        pthread_attr_destroy(&attr);
    }
    if (nthreads == 0)
        rc = -EAGAIN;
    pthread_mutex_unlock(&lock);
    return rc;
}

static void job_done(void *arg)
{
    job *j = arg;

    j->loop->pool.pending--;
    tide__loop_unref(j->loop);
    if (j->task && !j->loop->pool.abandon)
        tide__wake(j->task, j->result);
    else if (j->drop)
        j->drop(j->arg);
    /* Keep a few for the next calls: a busy file reader makes one job per
     * read, and jobs only come and go on the loop's thread. */
    if (j->loop->pool.ncache < JOB_CACHE) {
        j->next = j->loop->pool.cache;
        j->loop->pool.cache = j;
        j->loop->pool.ncache++;
    } else {
        tide__free(j);
    }
}

int tide__pool_init(tide_loop *loop)
{
    (void)loop; /* no job yet, an empty cache */
    return 0;
}

void tide__pool_term(tide_loop *loop)
{
    while (loop->pool.cache) {
        job *j = loop->pool.cache;
        loop->pool.cache = j->next;
        tide__free(j);
    }
    loop->pool.ncache = 0;
}

static void abandon(void *arg)
{
    ((job *)arg)->task = NULL;
}

int tide_to_thread(tide_fn fn, void *arg)
{
    return tide__to_thread(fn, arg, NULL);
}

int tide__to_thread(tide_fn fn, void *arg, void (*drop)(void *))
{
    tide_task *cur = tide__current();
    job *j;
    int rc;

    if (!fn)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (cur->scope || cur->cancel_req) {
        rc = tide__cancel_check(cur, NULL);
        if (rc < 0)
            goto not_run; /* already cancelled: fn is not run */
    }
    rc = start_pool();
    if (rc < 0)
        goto not_run;
    if ((j = cur->loop->pool.cache)) {
        cur->loop->pool.cache = j->next;
        cur->loop->pool.ncache--;
        memset(j, 0, sizeof *j);
    } else {
        j = tide__calloc(1, sizeof *j);
    }
    if (!j) {
        rc = -ENOMEM;
        goto not_run;
    }
    j->done.cb = job_done;
    j->done.arg = j;
    j->fn = fn;
    j->arg = arg;
    j->loop = cur->loop;
    j->task = cur;
    j->drop = drop;
    cur->loop->pool.pending++;
    tide__loop_ref(cur->loop);

    pthread_mutex_lock(&lock);
    *qtail = j;
    qtail = &j->next;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);

    TIDE__WAIT_ON(cur, TIDE_WAIT_POOL, j);
    return tide__suspend(cur, TIDE__NEVER, abandon, j, 0);

not_run:
    if (drop)
        drop(arg);
    return rc;
}
