/*
 * One loop per core (include/tide/multi.h).
 *
 * A multi run is a group of N slots, one per loop and thread.  Each slot
 * has an inbox: a mutex-protected list of messages (calls, cancels,
 * replies) that other loops hand over in batches.  A loop collects what it
 * sends during a step in per-target outboxes (thread-local, no lock) and
 * flushes them at the end of the step (a deferred callback): one lock per
 * target per step.  The first batch into an empty inbox posts the slot's
 * drain node to the target's cross-thread queue (xthread.c), which wakes
 * the target only if it sleeps in its poller.
 *
 * A message lives on the caller's stack: the caller waits for the reply
 * even when cancelled (it then sends a cancel and waits on, uncancellable),
 * so the message outlives every use the other loop makes of it.  The
 * remote task is watched (tide__watch), so a reply goes back however the
 * task ends (also cancelled before it started, as at the target's
 * teardown).
 */
#define _GNU_SOURCE
#include "tide_int.h"

#include <tide/multi.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_CALL, MSG_CANCEL, MSG_REPLY, MSG_CANCEL_ACK };

typedef struct mmsg {
    struct mmsg *next;         /* in an outbox or inbox */
    uint8_t kind;              /* MSG_* of this hop */
    struct mcall *call;
} mmsg;

/* One cross-loop call, on the caller's stack. */
typedef struct mcall {
    mmsg req, cancel, reply, ack; /* the hops: call, cancel, reply, cancel's ack */
    tide_fn fn;
    void *arg;
    unsigned origin, target;
    tide_task *caller;         /* waits on the origin loop */
    int waiting;               /* the caller is suspended on this call (origin) */
    int done;                  /* the reply came (origin) */
    int cancel_sent, acked;    /* a cancel went out / its ack came back (origin) */
    int result;
    /* target side */
    tide_task *remote;         /* the task running fn; NULL once it ended */
    int cancel_req;            /* a cancel came before the task started */
    tide__watch watch;
} mcall;

typedef struct mslot {
    tide_loop *loop;           /* set before any main runs, kept until the run ends */
    int alive;                 /* under run_lock: the loop is not being freed */
    tide_task *main_task;
    int main_started;          /* slot_main runs (this loop's thread only) */
    int stop_req;              /* a stop came before main started (this loop's thread) */
    pthread_t thread;
    int started;               /* the thread was created (slots >= 1) */
    int result;
    int main_done;
    tide_event all_done;       /* set once every main returned (this loop's) */
    tide__tsnode all_done_node;
    /* inbox */
    pthread_mutex_t lock;
    mmsg *head, **tailp;
    int scheduled;             /* drain_node is posted and not yet run */
    tide__tsnode drain_node;
} mslot;

typedef struct mgroup {
    unsigned n;
    tide_fn main;
    void *arg;
    pthread_mutex_t gate_lock; /* the start gate: every loop exists */
    pthread_cond_t gate_cond;
    unsigned arrived, expected;
    int abort;                 /* atomic: a loop could not be made: run nothing */
    int inflight;              /* atomic: cross-loop calls not yet answered */
    int ndone;                 /* atomic: mains returned */
    int closing;               /* atomic: every main returned */
    int cpus[TIDE_MULTI_MAX_LOOPS];
    int ncpus;
    int pin;
    mslot *slots;
} mgroup;

/* Per thread: the group and this loop's number, its outboxes. */
typedef struct mlocal {
    mgroup *g;
    unsigned index;
    mmsg **out_head, ***out_tailp; /* per target */
    tide__deferred flush;
} mlocal;

static __thread mlocal *tls_local;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static mgroup *running_group; /* under run_lock */

void tide_multi_opts_init(tide_multi_opts *o)
{
    if (o) {
        o->loops = 0;
        o->pin = 0;
    }
}

int tide_multi_index(void)
{
    return tls_local ? (int)tls_local->index : -EPERM;
}

int tide_multi_count(void)
{
    return tls_local ? (int)tls_local->g->n : -EPERM;
}

/* ------------------------------------------------------------ delivery */

static void flush_outboxes(tide__deferred *d)
{
    mlocal *l = (mlocal *)((char *)d - offsetof(mlocal, flush));
    mgroup *g = l->g;
    unsigned i;

    for (i = 0; i < g->n; i++) {
        mslot *s;
        if (!l->out_head[i])
            continue;
        s = &g->slots[i];
        pthread_mutex_lock(&s->lock);
        *s->tailp = l->out_head[i];
        s->tailp = l->out_tailp[i];
        if (!s->scheduled) {
            s->scheduled = 1;
            tide__post(s->loop, &s->drain_node);
        }
        pthread_mutex_unlock(&s->lock);
        l->out_head[i] = NULL;
        l->out_tailp[i] = &l->out_head[i];
    }
}

/* Queues m for loop `to`; sent at the end of this step. */
static void send_msg(mlocal *l, unsigned to, mmsg *m, int kind)
{
    m->kind = (uint8_t)kind;
    m->next = NULL;
    *l->out_tailp[to] = m;
    l->out_tailp[to] = &m->next;
    tide__defer(l->g->slots[l->index].loop, &l->flush);
}

static void reply_watch(tide__watch *w, tide_task *t)
{
    mcall *c = (mcall *)((char *)w - offsetof(mcall, watch));

    c->result = t->result;
    c->remote = NULL;
    send_msg(tls_local, c->origin, &c->reply, MSG_REPLY);
}

static int call_body(void *arg)
{
    mcall *c = arg;

    if (c->cancel_req)
        return -ECANCELED;
    return c->fn(c->arg);
}

static void on_call(mlocal *l, mcall *c)
{
    tide_task *t;
    int rc = tide_create_task_ex(&t, l->g->slots[l->index].loop, call_body, c, NULL);

    if (rc < 0) {
        c->result = rc;
        send_msg(l, c->origin, &c->reply, MSG_REPLY);
        return;
    }
    c->remote = t;
    c->watch.task = NULL;
    c->watch.fn = reply_watch;
    tide__watch_add(t, &c->watch);
    (void)tide_detach(t);
}

static void on_reply(mlocal *l, mcall *c)
{
    __atomic_sub_fetch(&l->g->inflight, 1, __ATOMIC_ACQ_REL);
    c->done = 1;
    if (c->waiting) {
        c->waiting = 0;
        tide__wake(c->caller, 0);
    }
}

/* Runs on the slot's own loop: takes the inbox in one lock. */
static void drain_inbox(void *arg)
{
    mslot *s = arg;
    mlocal *l = tls_local;
    mmsg *m, *next;

    pthread_mutex_lock(&s->lock);
    m = s->head;
    s->head = NULL;
    s->tailp = &s->head;
    s->scheduled = 0;
    pthread_mutex_unlock(&s->lock);
    for (; m; m = next) {
        mcall *c = m->call;
        next = m->next;
        switch (m->kind) {
        case MSG_CALL:
            on_call(l, c);
            break;
        case MSG_CANCEL:
            if (c->remote) {
                c->cancel_req = 1;
                (void)tide_cancel(c->remote);
            }
            /* The caller's stack holds c until it knows we are done with it. */
            send_msg(l, c->origin, &c->ack, MSG_CANCEL_ACK);
            break;
        case MSG_CANCEL_ACK:
            __atomic_sub_fetch(&l->g->inflight, 1, __ATOMIC_ACQ_REL);
            c->acked = 1;
            if (c->waiting) {
                c->waiting = 0;
                tide__wake(c->caller, 0);
            }
            break;
        default:
            on_reply(l, c);
            break;
        }
    }
}

/* ---------------------------------------------------------------- call */

static void call_unlink(void *arg)
{
    mcall *c = arg;
    c->waiting = 0;
}

int tide_multi_call(unsigned target, tide_fn fn, void *arg)
{
    mlocal *l = tls_local;
    tide_task *cur = tide_current_task();
    mcall c;
    int rc;

    if (!l || !cur || cur->loop != l->g->slots[l->index].loop)
        return -EPERM;
    if (!fn || target >= l->g->n)
        return -EINVAL;
    if (__atomic_load_n(&l->g->closing, __ATOMIC_ACQUIRE))
        return -ESHUTDOWN;
    rc = tide__cancel_check(cur, NULL);
    if (rc < 0)
        return rc;
    memset(&c, 0, sizeof c);
    c.req.call = c.cancel.call = c.reply.call = c.ack.call = &c;
    c.fn = fn;
    c.arg = arg;
    c.origin = l->index;
    c.target = target;
    c.caller = cur;
    __atomic_add_fetch(&l->g->inflight, 1, __ATOMIC_ACQ_REL);
    send_msg(l, target, &c.req, MSG_CALL);
    c.waiting = 1;
    TIDE__WAIT_ON(cur, TIDE_WAIT_CALL, &c);
    rc = tide__suspend(cur, TIDE__NEVER, call_unlink, &c, 0);
    if (c.done)
        return rc < 0 ? rc : c.result;
    /* Interrupted: cancel the remote task and wait for it to end and for
     * the target to be done with the cancel (c is on this stack). */
    __atomic_add_fetch(&l->g->inflight, 1, __ATOMIC_ACQ_REL);
    send_msg(l, target, &c.cancel, MSG_CANCEL);
    while (!c.done || !c.acked) {
        c.waiting = 1;
        TIDE__WAIT_ON(cur, TIDE_WAIT_CALL, &c);
        (void)tide__suspend(cur, TIDE__NEVER, call_unlink, &c, TIDE__WAIT_NOCANCEL);
    }
    return rc;
}

/* ---------------------------------------------------------------- stop */

/* Runs on the slot's loop.  A stop that comes before slot_main started
 * must not cancel its task: a task cancelled before it starts never runs,
 * so the bookkeeping after main (ndone, all_done) would never happen and
 * every other loop would wait for this one forever.  slot_main applies the
 * stop to itself instead, and main starts cancelled. */
static void cancel_main(void *arg)
{
    mslot *s = arg;
    if (!s->main_task || s->main_done)
        return;
    if (!s->main_started)
        s->stop_req = 1;
    else
        (void)tide_cancel(s->main_task);
}

int tide_multi_stop(void)
{
    mgroup *g;
    unsigned i;
    int rc = 0;

    pthread_mutex_lock(&run_lock);
    g = running_group;
    if (g)
        for (i = 0; i < g->n; i++)
            if (g->slots[i].alive) {
                int r = tide_call_soon_threadsafe(g->slots[i].loop, cancel_main, &g->slots[i]);
                if (r < 0)
                    rc = r;
            }
    pthread_mutex_unlock(&run_lock);
    return g ? rc : -ESRCH;
}

/* ----------------------------------------------------------------- run */

static void set_all_done(void *arg)
{
    mslot *s = arg;
    (void)tide_event_set(&s->all_done);
}

/* The main of each loop: the user's main, then serve the others until
 * every main returned and no call is in flight anywhere. */
static int slot_main(void *arg)
{
    mlocal *l = arg;
    mgroup *g = l->g;
    mslot *s = &g->slots[l->index];
    tide_scope sh;
    unsigned i;
    int rc;

    s->main_started = 1;
    if (s->stop_req)
        (void)tide_cancel(tide_current_task());
    rc = g->main(g->arg);
    s->main_done = 1;
    if (__atomic_add_fetch(&g->ndone, 1, __ATOMIC_ACQ_REL) == (int)g->n) {
        __atomic_store_n(&g->closing, 1, __ATOMIC_RELEASE);
        for (i = 0; i < g->n; i++)
            tide__post(g->slots[i].loop, &g->slots[i].all_done_node);
    }
    tide_shield_begin(&sh);
    while (!tide_event_is_set(&s->all_done))
        (void)tide_event_wait(&s->all_done);
    /* Calls made before the closing still need their targets. */
    while (__atomic_load_n(&g->inflight, __ATOMIC_ACQUIRE))
        (void)tide_sleep(1);
    tide_shield_end(&sh);
    return rc;
}

/* Waits until `expected` threads arrived (expected may drop when a thread
 * could not be started). */
static void gate_arrive(mgroup *g)
{
    pthread_mutex_lock(&g->gate_lock);
    g->arrived++;
    pthread_cond_broadcast(&g->gate_cond);
    while (g->arrived < g->expected)
        pthread_cond_wait(&g->gate_cond, &g->gate_lock);
    pthread_mutex_unlock(&g->gate_lock);
}

static void *slot_thread(void *arg)
{
    mlocal *l = arg;
    mgroup *g = l->g;
    mslot *s = &g->slots[l->index];
    tide_loop *loop = NULL;
    tide_task *t = NULL;
    int rc;

    cpu_set_t saved;
    int restore = 0;

    tls_local = l;
    if (g->pin && g->ncpus > 0) {
        cpu_set_t set;
        /* Loop 0 runs on the caller's thread: give it its CPUs back after. */
        restore = l->index == 0 &&
                  pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
        CPU_ZERO(&set);
        CPU_SET(g->cpus[l->index % (unsigned)g->ncpus], &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    (void)tide_event_init(&s->all_done);
    rc = tide_loop_new(&loop);
    if (rc == 0)
        rc = tide_create_task_ex(&t, loop, slot_main, l, NULL);
    pthread_mutex_lock(&run_lock);
    s->loop = loop;
    s->alive = loop != NULL;
    s->main_task = t;
    pthread_mutex_unlock(&run_lock);
    if (rc < 0)
        __atomic_store_n(&g->abort, 1, __ATOMIC_RELEASE);
    s->result = rc;
    /* Every loop exists before any main runs (calls need their target). */
    gate_arrive(g);
    if (__atomic_load_n(&g->abort, __ATOMIC_ACQUIRE)) {
        if (t)
            (void)tide_cancel(t); /* never started: ends with -ECANCELED */
        if (t)
            (void)tide_loop_run_until_complete(loop, t);
    } else {
        s->result = tide_loop_run_until_complete(loop, t);
    }
    pthread_mutex_lock(&run_lock);
    s->alive = 0; /* tide_multi_stop posts no more (s->loop stays for replies) */
    pthread_mutex_unlock(&run_lock);
    tide_loop_free(loop);
    tls_local = NULL;
    if (restore)
        (void)pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    return NULL;
}

static int allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    int i, n = 0;

    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 1;
    for (i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &set))
            cpus[n++] = i;
    return n ? n : 1;
}

int tide_multi_run(tide_fn main, void *arg, const tide_multi_opts *o)
{
    tide_multi_opts opts;
    mgroup *g;
    mlocal *locals = NULL;
    unsigned n, i, j;
    int rc = 0;

    if (!main)
        return -EINVAL;
    tide_multi_opts_init(&opts);
    if (o)
        opts = *o;
    if (opts.loops > TIDE_MULTI_MAX_LOOPS)
        return -EINVAL;
    if (tide_loop_current() || tls_local)
        return -EBUSY;
    g = tide__calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->ncpus = allowed_cpus(g->cpus, TIDE_MULTI_MAX_LOOPS);
    n = opts.loops ? opts.loops : (unsigned)g->ncpus;
    g->n = n;
    g->main = main;
    g->arg = arg;
    g->pin = opts.pin;
    g->expected = n;
    g->slots = tide__calloc(n, sizeof *g->slots);
    locals = tide__calloc(n, sizeof *locals);
    if (!g->slots || !locals) {
        rc = -ENOMEM;
        goto out_free;
    }
    for (i = 0; i < n; i++) {
        mslot *s = &g->slots[i];
        mlocal *l = &locals[i];
        l->g = g;
        l->index = i;
        l->out_head = tide__calloc(n, sizeof *l->out_head);
        l->out_tailp = tide__calloc(n, sizeof *l->out_tailp);
        if (!l->out_head || !l->out_tailp) {
            rc = -ENOMEM;
            goto out_free;
        }
        for (j = 0; j < n; j++)
            l->out_tailp[j] = &l->out_head[j];
        l->flush.fn = flush_outboxes;
        s->tailp = &s->head;
        s->drain_node.cb = drain_inbox;
        s->drain_node.arg = s;
        s->all_done_node.cb = set_all_done;
        s->all_done_node.arg = s;
    }
    pthread_mutex_lock(&run_lock);
    if (running_group) {
        pthread_mutex_unlock(&run_lock);
        rc = -EBUSY;
        goto out_free;
    }
    running_group = g;
    pthread_mutex_unlock(&run_lock);
    pthread_mutex_init(&g->gate_lock, NULL);
    pthread_cond_init(&g->gate_cond, NULL);
    for (i = 0; i < n; i++)
        pthread_mutex_init(&g->slots[i].lock, NULL);
    for (i = 1; i < n; i++) {
        if (pthread_create(&g->slots[i].thread, NULL, slot_thread, &locals[i]) != 0) {
            /* Run nothing: the started threads are released by a lower
             * count and see abort. */
            pthread_mutex_lock(&g->gate_lock);
            g->abort = 1;
            g->expected = i;
            pthread_cond_broadcast(&g->gate_cond);
            pthread_mutex_unlock(&g->gate_lock);
            rc = -EAGAIN;
            break;
        }
        g->slots[i].started = 1;
    }
    slot_thread(&locals[0]);
    for (i = 1; i < n; i++)
        if (g->slots[i].started)
            pthread_join(g->slots[i].thread, NULL);
    if (!rc)
        for (i = 0; i < n; i++)
            if (g->slots[i].result < 0) {
                rc = g->slots[i].result;
                break;
            }
    pthread_mutex_lock(&run_lock);
    running_group = NULL;
    pthread_mutex_unlock(&run_lock);
    for (i = 0; i < n; i++)
        pthread_mutex_destroy(&g->slots[i].lock);
    pthread_cond_destroy(&g->gate_cond);
    pthread_mutex_destroy(&g->gate_lock);
out_free:
    if (locals)
        for (i = 0; i < n; i++) {
            tide__free(locals[i].out_head);
            tide__free(locals[i].out_tailp);
        }
    tide__free(locals);
    if (g->slots)
        tide__free(g->slots);
    tide__free(g);
    return rc;
}
