/*
 * Private declarations shared by the files of src/.  Nothing here is part of
 * the API; internal functions are prefixed tide__ and hidden.
 */
#ifndef TIDE_INT_H
#define TIDE_INT_H

#include "tide.h"

#include "ctx.h"
#include "poll.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TIDE__HIDDEN __attribute__((visibility("hidden")))
#define TIDE__LIKELY(x) __builtin_expect(!!(x), 1)
#define TIDE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define tide__container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define TIDE__NEVER INT64_MAX

#if defined(TIDE_ASAN) || defined(__SANITIZE_ADDRESS__)
#define TIDE__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TIDE__ASAN 1
#endif
#endif

/* ThreadSanitizer: every task is a TSan fiber (see tide__switch_to_task). */
#if defined(TIDE_TSAN) || defined(__SANITIZE_THREAD__)
#define TIDE__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TIDE__TSAN 1
#endif
#endif
#ifdef TIDE__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* ------------------------------------------------------------- allocator */

void *tide__malloc(size_t n);
void *tide__calloc(size_t n, size_t size);
void *tide__realloc(void *p, size_t n);
void tide__free(void *p);

/* ---------------------------------------------------------- ready queue */

/* Something the loop runs from its ready queue: a task to resume or a
 * callback to call.  Intrusive, so queueing never allocates. */
typedef struct tide__runnable {
    struct tide__runnable *next;
    void (*run)(tide_loop *loop, struct tide__runnable *r);
} tide__runnable;

typedef struct tide__runq {
    tide__runnable *head;
    tide__runnable **tailp; /* &last->next, or &head when empty */
    size_t n;
} tide__runq;

/* ---------------------------------------------------------------- timers */

#define TIDE__NOT_IN_HEAP UINT32_MAX

typedef struct tide__tnode {
    int64_t deadline; /* ns on the monotonic clock */
    uint64_t seq;     /* insertion order: FIFO among equal deadlines */
    uint32_t idx;     /* position in the heap, TIDE__NOT_IN_HEAP when out */
    void (*fire)(tide_loop *loop, struct tide__tnode *n);
} tide__tnode;

/* A 4-ary min-heap of timer nodes, ordered by (deadline, seq). */
typedef struct tide__heap {
    tide__tnode **v;
    uint32_t n, cap;
    uint64_t seq;
} tide__heap;

int tide__heap_push(tide__heap *h, tide__tnode *t);
void tide__heap_remove(tide__heap *h, tide__tnode *t);
void tide__heap_free(tide__heap *h);
static inline tide__tnode *tide__heap_min(const tide__heap *h)
{
    return h->n ? h->v[0] : NULL;
}

/* A callback node: call_soon, call_later, call_soon_threadsafe and the
 * loop's own deferred calls.  Pooled per loop; never returned to malloc
 * before the loop is freed, so a stale tide_timer handle stays safe. */
typedef struct tide__call {
    tide__runnable r;
    tide__tnode t;
    tide_cb cb;
    void *arg;
    uint64_t gen;   /* bumped each time the node is recycled */
    uint8_t state;  /* TIDE__CALL_* */
    tide_loop *loop;
} tide__call;

enum { TIDE__CALL_FREE = 0, TIDE__CALL_TIMER, TIDE__CALL_READY };

/* ---------------------------------------------------------------- stacks */

typedef struct tide__stack_pool tide__stack_pool;

/* Pools of stacks of one size (per loop).  A stack is [lo, lo + size); a
 * guard region sits below lo. */
int tide__stack_get(tide_loop *loop, size_t size, void **lo, tide__stack_pool **pool);
void tide__stack_put(tide__stack_pool *pool, void *lo);
void tide__stacks_free(tide_loop *loop);
size_t tide__stack_guard_size(void);
/* Installs the SIGSEGV handler and this thread's alternate signal stack. */
void tide__stack_signals_init(tide_loop *loop);
void tide__stack_signals_free(tide_loop *loop);

/* ----------------------------------------------------------------- tasks */

#define TIDE__TASK_MAGIC 0x74696465u /* "tide": live */
#define TIDE__TASK_FREED 0xdeadbeefu   /* released: its stack is back in the pool */

/* Scope flags. */
#define TIDE__SCOPE_SHIELD 0x1
#define TIDE__SCOPE_FIRED 0x2
#define TIDE__SCOPE_TIMEOUT 0x4

/*
 * A task lives at the top of its own stack, so spawning allocates nothing
 * but a pooled stack, and the task's bookkeeping shares the stack's first
 * touched page.
 */
struct tide_task {
    tide__runnable r;    /* in loop->ready while READY */
    tide__ctx ctx;       /* saved context while not RUNNING */
    tide_loop *loop;     /* the loop the task belongs to, for life */
    uint32_t magic;      /* TIDE__TASK_MAGIC while live, _FREED after release */
    uint8_t state;       /* tide_task_state */
    uint8_t cancel_req;  /* tide_cancel was called: level-triggered */
    uint8_t detached;    /* released when it ends; failures logged */
    uint8_t nocancel;    /* > 0: the current wait ignores cancellation */
    uint8_t mark;        /* scratch bit for duplicate checks (always 0 between calls) */
    int result;          /* fn's return value, once DONE */
    int wake_rc;         /* what the current suspension returns */
    tide_scope *scope;   /* innermost cancel scope, or NULL */
    tide__tnode timer;   /* armed while waiting with a deadline */
    int64_t wait_until;  /* the wait's own deadline (sleep), TIDE__NEVER */
    void (*unlink)(void *arg); /* detaches a waiting task from what it waits on */
    void *unlink_arg;
    tide_task *joiner;   /* who will take the result (await, gather, ...), or
                            TIDE__JOINER_LOOP (run_until_complete) */
    tide_task *awaiting; /* the task this one is suspended waiting for */
    tide_task *prev, *next; /* loop's list of live tasks, creation order */
    struct tide__watch *watchers; /* told when the task ends (tide_wait...) */
    tide_group *group;   /* the group the task belongs to, or NULL */
    tide_task *gprev, *gnext; /* the group's live members */
    void **locals;       /* task-local values, indexed by key id */
    unsigned nlocals;
    void *stack_lo;      /* usable stack is [stack_lo, this task struct) */
    size_t stack_size;   /* the whole stack, task struct included */
    tide__stack_pool *pool;
    tide_fn fn;
    void *arg;
    uint64_t id;
#ifdef TIDE__ASAN
    void *asan_fake;     /* ASan's fake stack while switched out */
#endif
#ifdef TIDE__TSAN
    void *tsan_fiber;    /* TSan's fiber: made at the first start, destroyed on release */
#endif
    char name[TIDE_TASK_NAME_MAX]; /* "" until named: "task-<id>" made on demand */
};

/* Something told when a task ends (tide_wait, as_completed). */
typedef struct tide__watch {
    struct tide__watch *prev, *next;
    tide_task *task; /* watched; NULL once it ended or was released */
    void (*fn)(struct tide__watch *w, tide_task *t);
} tide__watch;

void tide__watch_add(tide_task *t, tide__watch *w);
void tide__watch_remove(tide__watch *w);

/* A task waiting in a tide_waitlist (sync.c, queue.c), on its own stack. */
struct tide__waiter {
    struct tide__waiter *prev, *next;
    tide_waitlist *list; /* NULL once taken off it */
    tide_task *task;
    void *value;         /* what is handed over (a queue item) */
    long n;              /* what is handed over (an index) */
};

void tide__wl_push(tide_waitlist *l, struct tide__waiter *w, tide_task *t);
struct tide__waiter *tide__wl_pop(tide_waitlist *l);
/* Suspends on the list (w pushed, taken off on interruption). */
int tide__wl_wait(tide_waitlist *l, struct tide__waiter *w, tide_task *t, int flags);
/* Pops the first waiter and wakes it with rc; 0 if the list was empty. */
int tide__wl_wake_one(tide_waitlist *l, int rc);
void tide__wl_wake_all(tide_waitlist *l, int rc);

/* Group and task-local hooks of task.c. */
void tide__group_child_ended(tide_task *t);
int tide__locals_inherit(tide_task *child, const tide_task *parent);

#define TIDE__JOINER_LOOP ((tide_task *)(uintptr_t)1)

/* Flags of tide__suspend. */
#define TIDE__WAIT_NOCANCEL 0x1 /* neither cancellation nor deadlines interrupt */

/*
 * Suspends the running task t until tide__wake(t, rc) and returns rc.
 * Before suspending, applies the task's cancel state: if it is cancelled or
 * a deadline of its scopes has passed, calls unlink(arg) (if set) and
 * returns -ECANCELED / -ETIMEDOUT at once.  until is the wait's own deadline
 * (a sleep's end, TIDE__NEVER for none): reaching it wakes the task with 0.
 * While suspended, tide_cancel or a scope deadline calls unlink(arg) and
 * wakes the task with the error.
 */
int tide__suspend(tide_task *t, int64_t until, void (*unlink)(void *), void *arg, int flags);
/* Wakes a WAITING task: it returns rc from tide__suspend. */
void tide__wake(tide_task *t, int rc);
/* Like tide__wake, after unlinking the task from what it waits on. */
void tide__interrupt(tide_task *t, int rc);
/* The cancel state of the running task t: 0, -ECANCELED or -ETIMEDOUT.
 * *deadline (if not NULL) receives the earliest deadline that applies. */
int tide__cancel_check(tide_task *t, int64_t *deadline);
/* 1 if a shield covers the task's current position. */
int tide__shielded(const tide_task *t);
/* Marks the scope whose deadline expired at now as fired. */
void tide__scope_fire(tide_task *t, int64_t now);

/* The running task of this thread, or NULL. */
tide_task *tide__current(void);
/* Validates a task handle: 0 or -EINVAL. */
int tide__task_check(const tide_task *t);
/* Called by the loop after a task it resumed switched back as DONE. */
void tide__task_ended(tide_loop *loop, tide_task *t);
void tide__task_release(tide_task *t);

/* ------------------------------------------------------------------ loop */

/* What a poller tag points to: the owner of a registered fd. */
typedef struct tide__pollable {
    void (*on_event)(struct tide__pollable *p, unsigned events);
} tide__pollable;

/* An fd's state in its loop (see io.c). */
typedef struct tide__fd tide__fd;
typedef void (*tide__fd_cb)(tide__fd *f, int rc);
struct tide__fd {
    tide__pollable p;      /* the poller's tag */
    tide_loop *loop;
    int fd;
    uint8_t registered;    /* known to the poller (and made non-blocking) */
    uint8_t always_ready;  /* a regular file: the poller refused it */
    uint8_t hup;           /* the poller reported a hang-up */
    uint8_t ready;         /* TIDE__EV_IN/OUT: may be ready (no EAGAIN since) */
    uint8_t bytestream;    /* stream socket or pipe: a short read means drained */
    uint32_t gen;          /* bumped when forgotten (closed): stale waiters see it */
    tide_task *reader;     /* the task waiting to read, or NULL */
    tide_task *writer;     /* the task waiting to write, or NULL */
    tide__fd_cb on_readable; /* or a callback instead of a task */
    tide__fd_cb on_writable;
    void *cb_arg;          /* for the callbacks' owner */
};

tide__fd *tide__fd_get(tide_loop *loop, int fd, int *err);
void tide__fd_forget(tide_loop *loop, int fd);
int tide__fd_wait(tide_task *cur, tide__fd *f, unsigned dir);
void tide__fds_free(tide_loop *loop);

/* A node of the cross-thread queue (call_soon_threadsafe). */
typedef struct tide__tsnode {
    struct tide__tsnode *next;
    tide_cb cb;
    void *arg;
    uint8_t heap; /* allocated by call_soon_threadsafe: freed after running */
} tide__tsnode;

struct tide_loop {
    tide__ctx ctx;          /* the scheduler's context (the thread's stack) */
    tide_task *current;     /* the task running now, or NULL */
    tide__runq ready;       /* tasks and callbacks to run, FIFO */
    tide__heap timers;
    int64_t now;            /* ns, cached once per iteration */
    tide__poller poller;
    uint32_t io_waiters;    /* tasks suspended on fd readiness */
    tide__fd **fds;         /* fd states, indexed by fd number */
    size_t nfds;
    uint32_t pending_jobs;  /* worker-pool jobs whose result will come back */
    struct tide__job *job_cache; /* finished jobs kept for reuse (pool.c) */
    uint32_t njob_cache;
    uint8_t running;        /* inside tide_loop_run */
    uint8_t stop;           /* tide_loop_stop was called */
    uint8_t closing;        /* tide_loop_free: new tasks start cancelled */
    tide_loop *next_on_thread; /* the thread's loops (tide__tls_loops) */

    /* live tasks, creation order */
    tide_task *tasks_head, *tasks_tail;
    size_t ntasks;          /* live tasks (not released) */
    size_t nundone;         /* live tasks not DONE */
    uint64_t next_id;

    /* pooled callback nodes */
    tide__call *call_free;
    void **call_slabs;
    size_t ncall_slabs;

    /* stacks */
    tide__stack_pool *stack_pools;
    void *altstack;         /* our sigaltstack for this thread, or NULL */
    size_t altstack_size;

    /* cross-thread queue */
    pthread_mutex_t ts_lock;
    tide__tsnode *ts_head, **ts_tailp;
    int ts_pending;         /* atomic: the queue is not empty */

#ifdef TIDE__ASAN
    void *asan_fake;
    const void *asan_stack_bottom;
    size_t asan_stack_size;
#endif
#ifdef TIDE__TSAN
    void *tsan_fiber;       /* TSan's fiber of the thread running the loop */
#endif
};

/* tide_to_thread, with drop(arg) called exactly once if the task does not
 * take fn's result: on the loop thread when the result comes back after the
 * task gave up (cancelled), or before returning if fn was never queued.  It
 * frees arg and what fn made. */
int tide__to_thread(tide_fn fn, void *arg, void (*drop)(void *));
void tide__pool_loop_free(tide_loop *loop);

/* The loop running on this thread. */
extern __thread tide_loop *tide__tls_loop __attribute__((tls_model("initial-exec")));
/* Every loop made on this thread and not freed. */
extern __thread tide_loop *tide__tls_loops __attribute__((tls_model("initial-exec")));

/* The raw monotonic clock, ns.  Only the default loop clock uses it: every
 * deadline and every "now" goes through tide__loop_ns(loop). */
int64_t tide__clock_ns(void);
/* The loop's clock, ns (injectable per loop). */
int64_t tide__loop_ns(tide_loop *loop);
/* The running loop's clock, or the raw clock outside a run (tide_now). */
int64_t tide__now_ns(void);

/* Keep-alive references: something that will make work for the loop later
 * through the poller (a task waiting on an fd, an armed flush callback, a
 * signal handler, a process wait).  tide_loop_run keeps going while any is
 * held, and never skips the poll. */
void tide__loop_io_ref(tide_loop *loop);
void tide__loop_io_unref(tide_loop *loop);

void tide__runq_push(tide__runq *q, tide__runnable *r);
/* Adds a task timer (or any node) to the loop's heap.  Returns 0/-ENOMEM. */
int tide__timer_add(tide_loop *loop, tide__tnode *n, int64_t deadline);
void tide__timer_del(tide_loop *loop, tide__tnode *n);
/* Posts a node to the loop from any thread (never allocates). */
void tide__post(tide_loop *loop, tide__tsnode *n);
/* Runs the loop until done() says so (or, for NULL, until no work is left). */
int tide__loop_run(tide_loop *loop, int (*done)(tide_loop *, void *), void *arg);

/* Switches from the loop to task t and back. */
void tide__switch_to_task(tide_loop *loop, tide_task *t);
/* Switches from the running task t to its loop. */
void tide__switch_to_loop(tide_task *t);

#endif
