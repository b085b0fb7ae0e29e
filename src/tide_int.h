/*
 * Private declarations shared by the files of src/.  Nothing here is part of
 * the API; internal functions are prefixed tide__ and hidden.
 */
#ifndef TIDE_INT_H
#define TIDE_INT_H

#include "tide.h"

#include "ctx.h"
#include "poll.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TIDE__HIDDEN __attribute__((visibility("hidden")))
#define TIDE__LIKELY(x) __builtin_expect(!!(x), 1)
#define TIDE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TIDE__NOINLINE __attribute__((noinline))
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

/* The raw monotonic clock, ns (clock.c). */
int64_t tide__clock_ns(void);

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
    /* Frees what run would have freed, for a node still queued when its
     * loop is torn down; NULL when there is nothing to free. */
    void (*drop)(tide_loop *loop, struct tide__runnable *r);
} tide__runnable;

typedef struct tide__runq {
    tide__runnable *head;
    tide__runnable **tailp; /* &last->next, or &head when empty */
    size_t n;
} tide__runq;

/* Work deferred to the end of the running task's step: run right after the
 * task switches back to the loop (it suspended, yielded or ended), before
 * any other task runs; and at the end of each batch, for callbacks.  A
 * stream's writes made during one step go out in one syscall this way. */
typedef struct tide__deferred {
    struct tide__deferred *next, **pprev; /* pprev NULL: not queued */
    void (*fn)(struct tide__deferred *d);
} tide__deferred;

/* ---------------------------------------------------------------- timers */

#define TIDE__NOT_IN_HEAP UINT32_MAX
#define TIDE__IN_NEAR 0x80000000u /* idx flag: the node is in the near heap */

typedef struct tide__tnode {
    int64_t deadline; /* ns on the monotonic clock */
    uint64_t seq;     /* insertion order: FIFO among equal deadlines */
    uint32_t idx;     /* its slot (radix part) or TIDE__IN_NEAR | position
                       * (near heap); TIDE__NOT_IN_HEAP when not armed */
    void (*fire)(tide_loop *loop, struct tide__tnode *n);
} tide__tnode;

/* An entry of the near heap: the key is kept beside the node pointer, so
 * that sifting compares within the array and never reads the nodes (which
 * live in task structs all over memory: a cache and TLB miss each). */
typedef struct tide__hent {
    int64_t deadline;
    uint64_t seq;
    tide__tnode *t;
} tide__hent;

/* A slot of the far part: the key (the deadline with its sign bit
 * flipped, so unsigned order is deadline order), the insertion number, the
 * node, and the links of its bucket's list.  The first TIDE__TQ_HEADS slots
 * are the lists' heads; a head's key counts the timers in its bucket. */
typedef struct tide__tslot {
    uint64_t key;
    uint64_t seq;
    tide__tnode *t;
    uint32_t next, prev;
} tide__tslot;

#define TIDE__TQ_BITS 8 /* bits of a digit: 256 buckets a level */
#define TIDE__TQ_LEVELS ((64 + TIDE__TQ_BITS - 1) / TIDE__TQ_BITS)
#define TIDE__TQ_HEADS (TIDE__TQ_LEVELS << TIDE__TQ_BITS)
#define TIDE__TQ_WORDS (TIDE__TQ_HEADS / 64) /* words of the bucket bitmap */
/* A bucket of more timers is split, not moved into the near heap whole.
 * Splitting walks the bucket's list, a dependent load per timer (a cache
 * miss once the slots outgrow the cache): 64 gave 4 % fewer instructions
 * in the dense virtual hour, but bench/timers (500 000 live) 5-15 % slower
 * than the old heap; at 512 both are level with or better than it. */
#define TIDE__TQ_SPLIT 512

/* The timers of a loop, ordered by (deadline, seq) (timer.c, docs/timers.md):
 * a near heap (4-ary, by (deadline, seq)) for the keys below `w`, and a far
 * part for the others: a radix heap on base-256 digits (bucket (L, d) holds
 * the keys whose highest digit that differs from `last` is digit L, and
 * whose digit L is d), each bucket an index-linked list of slots.  When the
 * near heap is empty, the lowest bucket is moved into it (or, when it holds
 * more than TIDE__TQ_SPLIT, split into lower buckets first). */
typedef struct tide__heap {
    tide__tslot *s;  /* slots: TIDE__TQ_HEADS list heads, then timers, free ones */
    uint32_t ns;     /* slots ever used (the high-water mark) */
    uint32_t scap;
    uint32_t free;   /* first free slot (linked by next), 0 for none */
    uint32_t words;  /* bit w: mask[w] is not 0 */
    uint64_t mask[TIDE__TQ_WORDS]; /* bit b % 64 of word b / 64: bucket b
                                    * (= L << TIDE__TQ_BITS | d) has timers */
    uint64_t last;   /* every key of the far part is >= last */
    uint64_t w;      /* near keys < w <= far keys; last <= w */
    tide__hent *v;   /* the near heap; vcap >= n, so moving needs no memory */
    uint32_t nv, vcap;
    uint32_t n;      /* timers armed, in both parts */
    uint32_t split;  /* TIDE__TQ_SPLIT, or another size (tests; 0: default) */
    uint64_t seq;
} tide__heap;

/* Arms t at t->deadline: 0, or -ENOMEM (then nothing changed). */
int tide__heap_push(tide__heap *h, tide__tnode *t);
/* Disarms t, which must be armed. */
void tide__heap_remove(tide__heap *h, tide__tnode *t);
void tide__heap_free(tide__heap *h);
/* The near heap is empty and the far part is not: moves the lowest
 * bucket's timers into the near heap (timer.c). */
void tide__heap_refill(tide__heap *h);

/* The earliest timer and its deadline (*deadline), or NULL when none.  It
 * may move timers from the far part to the near heap, so it takes the heap
 * writable. */
static inline tide__tnode *tide__heap_first(tide__heap *h, int64_t *deadline)
{
    if (TIDE__UNLIKELY(!h->nv)) {
        if (!h->n)
            return NULL;
        tide__heap_refill(h);
    }
    *deadline = h->v[0].deadline;
    return h->v[0].t;
}

static inline tide__tnode *tide__heap_min(tide__heap *h)
{
    int64_t d;
    return tide__heap_first(h, &d);
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
 * guard region sits below lo, unless unguarded (TIDE_STACK_UNGUARDED): then
 * the stack's bottom TIDE__CANARY_BYTES hold a canary and the stack of the
 * neighbour below lies right under it. */
int tide__stack_get(tide_loop *loop, size_t size, int unguarded, void **lo,
                    tide__stack_pool **pool);
void tide__stack_put(tide__stack_pool *pool, void *lo);
size_t tide__stack_guard_size(void);
/* Guards made from now on are mappings of their own (mprotect), so that a
 * core file made by gdb's gcore keeps the task stacks (debug mode). */
void tide__stack_guards_dumpable(void);
/* Installs the SIGSEGV handler and this thread's alternate signal stack. */
void tide__stack_signals_init(tide_loop *loop);
void tide__stack_signals_free(tide_loop *loop);
#define TIDE__CANARY_BYTES 64
/* After an unguarded task t switched out (or ended): aborts with a report
 * if its saved stack pointer is in or below the canary or the canary was
 * written.  run_task calls it for such tasks only. */
void tide__stack_check_unguarded(tide_task *t);
/* The least size an unguarded stack gets in this build or under valgrind
 * (TIDE_SMALL_STACK_MIN otherwise). */
size_t tide__small_stack_floor(void);

/* ----------------------------------------------------------------- tasks */

#define TIDE__TASK_MAGIC 0x74696465u /* "tide": live */
#define TIDE__TASK_FREED 0xdeadbeefu   /* released: its stack is back in the pool */

/* Scope flags. */
#define TIDE__SCOPE_SHIELD 0x1
#define TIDE__SCOPE_FIRED 0x2
#define TIDE__SCOPE_TIMEOUT 0x4
#define TIDE__SCOPE_CANCEL 0x8 /* tide_scope_cancel: calls inside fail with -ECANCELED */
#define TIDE__SCOPE_GROUP 0x10 /* a task group's scope in its owner (group.c) */
/* The owner's scope of a group on its stack: begun by tide_group_init, ended
 * by tide_group_wait (cancel.c). */
int tide__scope_push_group(tide_scope *s);
int tide__scope_pop_group(tide_task *t, tide_scope *s);

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
    uint8_t io_streak;   /* fd operations done since the task last suspended: at
                            TIDE__IO_BUDGET the next one yields first (io.c) */
    uint8_t wait_kind;   /* tide_wait_kind of the current suspension (TIDE__WAIT_ON),
                            TIDE_WAIT_NONE when the site named none (dump.c) */
    uint8_t unguarded;   /* its stack is small, without a guard (TIDE_STACK_UNGUARDED) */
    int64_t io_t0;       /* raw clock at the streak's first operation (io.c) */
    int result;          /* fn's return value, once DONE */
    void *result_ptr;    /* the pointer result (tide_task_set_ptr), NULL by default */
    tide_future *fut;    /* the task's future (tide_task_future), made on demand */
    int wake_rc;         /* what the current suspension returns */
    tide_scope *scope;   /* innermost cancel scope, or NULL */
    tide_group *groups;  /* innermost open group on this task's stack, or NULL */
    uint32_t scope_kinds; /* bit i set: the i-th innermost scope is a shield */
    uint32_t scope_groups; /* bit i set: the i-th innermost scope is a group's (group.c) */
    uint16_t nscopes;    /* open scopes (links of the scope chain) */
    uint16_t ngroups;    /* open groups on this task's stack (links of groups) */
    tide__tnode timer;   /* armed while waiting with a deadline */
    int64_t wait_until;  /* the wait's own deadline (sleep), TIDE__NEVER */
    void (*unlink)(void *arg); /* detaches a waiting task from what it waits on */
    void *unlink_arg;
    tide_task *joiner;   /* who will take the result (await, gather, ...), or
                            TIDE__JOINER_LOOP (run_until_complete) */
    tide_task *awaiting; /* the task this one is suspended waiting for */
    tide_task *prev, *next; /* loop's list of live tasks, creation order */
    const void *wait_obj; /* what the current suspension waits on (dump.c) */
    int64_t wait_since;  /* loop->now of the step that suspended, ns (run_task) */
    struct tide__dbg_born *born; /* debug mode: where the task was created, or NULL */
    uint64_t parent_id;  /* id of the task that created it, 0 if none */
    struct tide__watch *watchers; /* told when the task ends (tide_wait...) */
    struct tide__watch *holders;  /* told when the task is released (as_completed) */
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

/* Something told when a task ends (tide_watch_add: tide_wait, the server's
 * connections), or when it is released (tide__hold_add: an as_completed
 * iterator, which must not give a released task). */
typedef struct tide__watch {
    struct tide__watch *prev, *next;
    struct tide__watch **head; /* the task's list it is on */
    tide_task *task; /* watched; NULL once it ended or was released */
    void (*fn)(struct tide__watch *w, tide_task *t);
} tide__watch;

void tide__watch_add(tide_task *t, tide__watch *w);
void tide__hold_add(tide_task *t, tide__watch *w);
void tide__watch_remove(tide__watch *w); /* either kind; one removed already is fine */

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

/* Futures and tasks (future.c).  A watch is told (fn called from the
 * completion itself, in registration order) when its future is done. */
typedef struct tide__fnode {
    struct tide__fnode *prev, *next;
    int kind;
} tide__fnode;
typedef struct tide__future_watch {
    tide__fnode node;
    tide_future *f; /* NULL once told or removed */
    void (*fn)(struct tide__future_watch *w, tide_future *f);
    void *ctx;
} tide__future_watch;
void tide__future_watch_add(tide_future *f, tide__future_watch *w);
void tide__future_watch_remove(tide__future_watch *w);
/* The task of a future made by tide_task_future ended / was released. */
void tide__future_task_done(tide_future *f, int result, void *ptr);
void tide__future_task_gone(tide_future *f);
tide_loop *tide__future_loop(const tide_future *f);

/* Group and task-local hooks of task.c. */
void tide__group_child_ended(tide_task *t);
int tide__locals_inherit(tide_task *child, const tide_task *parent);
void tide__locals_release(tide_task *t);

#define TIDE__JOINER_LOOP ((tide_task *)(uintptr_t)1)

/* Names what the running task t is about to wait on, for dumps (Go's
 * gopark reason): put one of these right before every tide__suspend (the
 * kind is not cleared after a wait: a suspension that named none would show
 * the previous one's; ctest's wait_reasons, scripts/check_wait_reasons.py,
 * fails on a tide__suspend or tide__wl_wait with neither before it in its
 * function).  kind is a tide_wait_kind (include/tide/debug.h).
 * TIDE__WAIT_ON stores the kind and the awaited object (two stores);
 * TIDE__WAIT_KIND only the kind, for waits whose object the dump finds from
 * the suspension's unlink argument (tide__wait_object in dump.c: the
 * waitlist waits of sync.c, whose waiter's list lies inside the lock /
 * event / condition / semaphore).  The
 * time is the step's (run_task stamps wait_since with loop->now, which only
 * changes between steps).  -DTIDE__NO_WAIT_INFO compiles all of it out: for
 * measuring its cost only (bench/wait_cost.sh); dumps then show no reasons. */
#ifndef TIDE__NO_WAIT_INFO
#define TIDE__WAIT_ON(t, kind, obj) \
    ((t)->wait_kind = (uint8_t)(kind), (t)->wait_obj = (const void *)(obj))
#define TIDE__WAIT_KIND(t, kind) ((void)((t)->wait_kind = (uint8_t)(kind)))
#else
#define TIDE__WAIT_ON(t, kind, obj) ((void)(t), (void)(obj))
#define TIDE__WAIT_KIND(t, kind) ((void)(t))
#endif
/* The object a waiting task's suspension waits on, as TIDE__WAIT_ON would
 * have stored it; NULL when the suspension's unlink function is not the
 * one its kind implies (a kind left by an earlier wait: dump.c shows no
 * reason then, rather than read a wrong object). */
const void *tide__wait_object(const tide_task *t);
/* Whether fn is the unlink function of a waitlist wait (sync.c): what
 * tide__wait_object checks.  (An fd wait, readiness or io_uring, records
 * its tide__fd with TIDE__WAIT_ON.) */
int tide__is_wl_unlink(void (*fn)(void *));

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
/* 1 if a shield covers the task's current position (t is WAITING). */
int tide__shielded(const tide_task *t);
/* Marks the scope whose deadline expired at now as fired. */
void tide__scope_fire(tide_task *t, int64_t now);

/* ------------------------------------------------ misuse detection (misuse.c)
 *
 * Cancel scopes and groups live on their task's stack, which grows down: one
 * that lies on the stack below the stack pointer of the task's running code
 * belongs to a frame that has returned.  tide__frame_left is that test (a
 * subtraction and an unsigned compare), made where scopes and groups are
 * already walked; sp is the frame address of a tide function the task runs
 * (TIDE__SP()), or the saved stack pointer of a switched-out task
 * (tide__task_sp).  Besides, each scope and group carries a check word over
 * its links, so one whose memory later frames overwrote is caught too.  What
 * is caught is reported like a stack overflow: a line naming the task on
 * stderr, then abort(). */
#define TIDE__SP() __builtin_frame_address(0)
/* The checks read a dead scope or group on purpose (is it still what we
 * wrote?), often where live frames now keep their redzones: under ASan
 * they are not instrumented, so tide's report comes out, not ASan's. */
#ifdef TIDE__ASAN
#define TIDE__NO_ASAN __attribute__((no_sanitize_address))
#else
#define TIDE__NO_ASAN
#endif
static inline int tide__frame_left(const tide_task *t, const void *obj, const void *sp)
{
    uintptr_t lo = (uintptr_t)t->stack_lo;
    return (uintptr_t)obj - lo < (uintptr_t)sp - lo;
}
/* The saved stack pointer of a task that is switched out (not RUNNING);
 * its stack_lo (nothing lies below it) where the context cannot tell. */
static inline const void *tide__task_sp(const tide_task *t)
{
    const void *sp = tide__ctx_sp(&t->ctx);
    return sp ? sp : t->stack_lo;
}
#define TIDE__MISUSE_LEFT 1  /* left open by a frame that returned (or overwritten) */
#define TIDE__MISUSE_AGAIN 2 /* begun / initialised again while still open */
/* t returned from its function with scopes or groups still open. */
__attribute__((noreturn, cold)) void tide__misuse_returned(tide_task *t);
/* s, a link of t's scope chain, is dead (LEFT) or is being begun again. */
__attribute__((noreturn, cold)) void tide__misuse_scope(tide_task *t, const tide_scope *s,
                                                        int why);
/* g is dead or is being initialised again; owner: the task it belongs to,
 * or NULL to find it from g's address (g's fields may be garbage); member:
 * the task whose end noticed it, or NULL. */
__attribute__((noreturn, cold)) void tide__misuse_group(const tide_group *g, int why,
                                                        const tide_task *owner,
                                                        const tide_task *member);

/* The running task of this thread, or NULL. */
tide_task *tide__current(void);
/* Validates a task handle: 0 or -EINVAL. */
int tide__task_check(const tide_task *t);
/* Called by the loop after a task it resumed switched back as DONE. */
void tide__task_ended(tide_loop *loop, tide_task *t);
void tide__task_release(tide_task *t);
/* tide_loop_free: cancels every task not DONE. */
void tide__tasks_cancel_all(tide_loop *loop);

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
    uint8_t uring;         /* a stream socket on an io_uring poller that takes
                              completion operations (io_uring_ops.c) */
    uint8_t lazy;          /* registered lazily: tide__fd_watch arms its poll
                              (uring, or an io_uring SQ full at registration) */
    uint32_t gen;          /* bumped when forgotten (closed): stale waiters see it */
    tide_task *reader;     /* the task waiting to read, or NULL */
    tide_task *writer;     /* the task waiting to write, or NULL */
    const void *sigwait;   /* tide_signal_wait's sigset_t while it reads this fd (dump.c) */
    struct tide__dbg_born *born; /* debug mode: where it was registered, or NULL */
    tide_task *op_reader;  /* the task whose io_uring recv is in flight, or NULL */
    tide_task *op_writer;  /* the task whose io_uring send is in flight, or NULL */
    tide__fd_cb on_readable; /* or a callback instead of a task */
    tide__fd_cb on_writable;
    void *cb_arg;          /* for the callbacks' owner */
};

tide__fd *tide__fd_get(tide_loop *loop, int fd, int *err);
/* Completion-based recv and send on f (f->uring set), io_uring_ops.c: the
 * task waits for the completion and the kernel never owns buf after they
 * return.  The count (a send: everything, or what went before an error or
 * a cancellation), 0 at EOF, -errno; -EAGAIN: not done, use the readiness
 * path (the send's *done says how far it got). */
ssize_t tide__uring_read(tide_task *cur, tide__fd *f, void *buf, size_t len, int flags);
ssize_t tide__uring_write(tide_task *cur, tide__fd *f, const void *buf, size_t len, int flags,
                          size_t *done);
void tide__fd_forget(tide_loop *loop, int fd);
int tide__fd_wait(tide_task *cur, tide__fd *f, unsigned dir);
/* Before waiting for f's readiness by other means than tide__fd_wait (a
 * callback): arms its poll if it was registered without one (f->uring).
 * 0 or -errno. */
int tide__fd_watch(tide__fd *f);

/*
 * The one fd-operation path (io.c).  An operation is a function making one
 * attempt of a syscall on fd; these try it, wait only on EAGAIN, and keep
 * f's readiness bits right.  A short positive transfer clears dir's bit
 * when it proves the fd is not ready (a read on a byte stream: drained; a
 * write: buffer full), never after a hang-up or on an always_ready fd
 * (regular files and devices the poller refuses, which never wait).
 */
/* The fd operations a task may make in a row without suspending before the
 * next one first yields (a cooperative budget, as Tokio's). */
#define TIDE__IO_BUDGET 128
/* One operation of a layer above the fds (a stream call served from its
 * buffer counts too): after TIDE__IO_BUDGET in a row without suspending,
 * yields first.  0, or -ECANCELED / -ETIMEDOUT that came during the yield. */
int tide__io_budget(tide_task *cur);

/* The budget is also time: a streak longer than this (checked every 8
 * operations, timed from the 8th) yields too, so big transfers (64 KiB reads
 * served 8 KiB at a time) cannot hold the loop for milliseconds under the
 * count.  Short streaks (most steps: a read and a write) never read the clock. */
#define TIDE__IO_SLICE_NS 100000

/* 1 when cur's streak of ready operations must yield before the next. */
static inline int tide__io_budget_spent(tide_task *cur)
{
    unsigned n = cur->io_streak;
    if (TIDE__UNLIKELY(n >= TIDE__IO_BUDGET))
        return 1;
    if (TIDE__LIKELY((n & 7) != 0 || n == 0))
        return 0;
    if (n == 8) {
        cur->io_t0 = tide__clock_ns();
        return 0;
    }
    return tide__clock_ns() - cur->io_t0 > TIDE__IO_SLICE_NS;
}
/* One attempt of an fd operation: returns >= 0 or -1 with errno set. */
typedef ssize_t (*tide__fd_sysfn)(int fd, void *ctx);
/* Tries op once without waiting: n >= 0, -EAGAIN (readiness bit for dir cleared), or -errno.
 * want: bytes asked (a short transfer on a byte stream clears the bit; 0 = never infer). EINTR
 * retried.  With dir's bit already clear, -EAGAIN without a syscall (an always_ready fd is
 * always tried).  No budget, no cancellation check. */
ssize_t tide__fd_try(tide__fd *f, unsigned dir, tide__fd_sysfn op, void *ctx, size_t want);
/* Tries, waits for dir on EAGAIN, tries again: the blocking form, a cancellation point.
 * Returns what op returned (>= 0) or -errno: -ECANCELED/-ETIMEDOUT, -EBUSY (another task
 * waits for dir), -EBADF (closed meanwhile), -EAGAIN from an always_ready fd (nothing to
 * wait for).  Counts against the task's I/O budget (it may yield first). */
ssize_t tide__fd_op(tide_task *cur, tide__fd *f, unsigned dir, tide__fd_sysfn op, void *ctx,
                    size_t want);
/* Flags of tide__fd_op_all. */
#define TIDE__FD_NOINFER 0x1u /* a short transfer says nothing (sendfile: the input ended?) */
/* tide__fd_op until want bytes went (write everything): *done counts them and op reads it to
 * go on from there.  Returns want, or the count so far (< want) when an error, a
 * cancellation or a 0 from op (nothing more) comes after some progress, else the error. */
ssize_t tide__fd_op_all(tide_task *cur, tide__fd *f, unsigned dir, tide__fd_sysfn op, void *ctx,
                        size_t want, size_t *done, unsigned flags);

/* Fills a Unix socket address for path ('@': Linux abstract); 0, -EINVAL,
 * -ENAMETOOLONG (net.c). */
struct sockaddr_un;
int tide__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len);


/* A node of the cross-thread queue (call_soon_threadsafe). */
typedef struct tide__tsnode {
    struct tide__tsnode *next;
    tide_cb cb;
    void *arg;
    uint8_t heap; /* allocated by call_soon_threadsafe: freed after running */
} tide__tsnode;

/*
 * The loop is a composition of module contexts.  Each module owns one
 * sub-struct below and a pair tide__<module>_init / _term, run from one
 * ordered table in loop.c (init in order, term in reverse).  A module touches
 * only its own sub-struct and the scheduler core (ready queue, clock, refs);
 * loop.c calls the modules, never the other way round.
 */

/* The clock (clock.c).  now_ns(arg) is monotonic ns; tests may inject one. */
typedef struct tide__clock {
    int64_t (*now_ns)(void *arg);
    void *arg;
} tide__clock;

/* The virtual clock (vclock.c): time that moves only when a test advances
 * it, or, with autojump, to the next timer when everything else waits. */
typedef struct tide__vclock {
    int64_t now;            /* virtual ns */
    int64_t target;         /* tide_vclock_advance asked to go up to here */
    uint8_t on;             /* the loop's clock is this one */
    uint8_t autojump;
} tide__vclock;

/* The seeded shuffle of the ready batch (vclock.c). */
typedef struct tide__shuffle {
    uint64_t s[4];          /* xoshiro256** state */
    int64_t seed;           /* the seed last set */
    uint8_t on;
    tide__runnable **v;     /* the batch being run, grown as needed */
    size_t cap;
} tide__shuffle;

/* Timers and pooled callback nodes (timer.c). */
typedef struct tide__timers {
    tide__heap heap;
    tide__call *call_free;  /* free callback nodes */
    void **call_slabs;
    size_t ncall_slabs;
} tide__timers;

/* Tasks (task.c). */
typedef struct tide__tasks {
    tide_task *head, *tail; /* live tasks, creation order */
    size_t n;               /* live tasks (not released) */
    size_t nundone;         /* live tasks not DONE */
    uint64_t next_id;
} tide__tasks;

/* The fd table (io.c). */
typedef struct tide__io {
    tide__fd **fds;         /* fd states, indexed by fd number */
    size_t nfds;
    unsigned fork_gen;      /* tide__fork_gen when the poller was made */
} tide__io;

/* Worker-pool bookkeeping of this loop (pool.c). */
typedef struct tide__pool {
    uint32_t pending;       /* jobs whose result will come back */
    uint8_t abandon;        /* the loop is freed with tasks it could not
                               finish: returning jobs are disposed of */
    struct tide__job *cache; /* finished jobs kept for reuse */
    uint32_t ncache;
} tide__pool;

/* Stacks (stack.c). */
typedef struct tide__stacks {
    tide__stack_pool *pools;
    void *altstack;         /* our sigaltstack for this thread, or NULL */
    size_t altstack_size;
} tide__stacks;

/* The cross-thread queue (xthread.c). */
typedef struct tide__xthread {
    pthread_mutex_t lock;
    tide__tsnode *head, **tailp;
    int pending;            /* atomic: the queue is not empty */
    int awake;              /* atomic: 1 while a blocking run is busy and will look at
                               pending before it sleeps: posters skip the wake-up
                               syscall (0 when not running or embedded: always wake) */
} tide__xthread;

/* Streams (stream.c): pooled structs and buffers, made on the first open. */
typedef struct tide__streams_ctx {
    struct tide__streams *p; /* NULL until a stream is opened */
} tide__streams_ctx;

/* Signals handled by this loop (signal.c): its signalfd / self-pipe state. */
typedef struct tide__signals {
    struct tide__sigloop *sl; /* NULL until a handler is added */
} tide__signals;

/* Debug mode, metrics and the exception handler (debug.c, dump.c). */
typedef struct tide__debug {
    struct tide__dbg *on;   /* debug mode's state; NULL when off (the hot paths
                               test only this) */
    uint64_t iterations;    /* always counted: one add per iteration */
    uint64_t events;        /* fd events delivered */
    tide_exception_handler exc; /* detached task failures, or NULL: stderr */
    void *exc_arg;
    tide_loop *gprev, *gnext; /* every loop of the process (gdb's tide tasks) */
} tide__debug;

/* Debug-mode hooks, each called only when loop->dbg.on is set. */
void tide__dbg_step_begin(tide_loop *loop, tide_task *t);
void tide__dbg_step_end(tide_loop *loop, tide_task *t);
void tide__dbg_poll_begin(tide_loop *loop);
void tide__dbg_poll_end(tide_loop *loop);
void tide__dbg_task_born(tide_task *t);
void tide__dbg_born_free(tide_task *t);
/* Debug mode: records where f is being registered with loop (f->born,
 * reused on re-registration; freed by tide__fd_forget and at the loop's
 * end).  Out of memory leaves f->born NULL: a report without the site. */
void tide__dbg_fd_born(tide_loop *loop, tide__fd *f);
/* Debug mode's leak report of futures never awaited: f was made; f was
 * awaited, given a callback or read (freed 0), or freed (freed 1).  The
 * latter need no loop (f's may be freed already): they look f up in every
 * debug loop of the calling thread, and only when tide__dbg_loops > 0. */
void tide__dbg_future_new(tide_loop *loop, const void *f);
void tide__dbg_future_seen(const void *f, int freed);
extern int tide__dbg_loops; /* loops in debug mode, process-wide */
/* tide_loop_new / tide_loop_free (always): TIDE_DEBUG, the loop registry;
 * at the end, debug mode's leak report. */
void tide__dbg_loop_new(tide_loop *loop);
void tide__dbg_loop_end(tide_loop *loop);
void tide__dbg_loop_free(tide_loop *loop);
/* A detached task failed: the loop's handler, or a line on stderr. */
void tide__dbg_task_failed(tide_task *t);

struct tide_loop {
    /* the scheduler core: what every module may use */
    tide__ctx ctx;          /* the scheduler's context (the thread's stack) */
    tide_task *current;     /* the task running now, or NULL */
    tide__runq ready;       /* tasks and callbacks to run, FIFO */
    tide__runq yielded;     /* tasks that used up their I/O budget: one runs per
                               iteration, after what the poll woke, so a task
                               whose sockets are always ready costs the others
                               one slice of latency, not one per such task */
    tide__deferred *deferred; /* run at the end of the current step */
    int64_t now;            /* ns, cached once per iteration */
    tide__clock clock;
    tide__vclock vclock;    /* virtual time, when clock is it */
    tide__shuffle shuffle;  /* seeded order of the ready batch, when on */
    uint32_t refs;          /* things that keep the loop alive (armed timers,
                               io refs, pool jobs): tide_loop_run goes on
                               while refs > 0 or anything is ready */
    uint32_t io_refs;       /* the part of refs that only the poller can end:
                               while > 0 the poll is never skipped */
    uint8_t running;        /* inside tide_loop_run */
    uint8_t stop;           /* tide_loop_stop was called */
    uint8_t closing;        /* tide_loop_free: new tasks start cancelled, stop
                               is ignored until everything finished */
    tide_loop *next_on_thread; /* the thread's loops (tide__tls_loops) */
    unsigned fork_gen;      /* tide__fork_gen the loop was made or forked in */
    uint8_t sig_run;        /* this run set up the overflow handler's signal
                               stack and takes it down at its end (loop.c) */
    const void *owner;      /* the thread that made or last ran the loop
                               (tide__thread_self): loop-thread-only calls
                               from any other get -EPERM */
    tide__poller poller;

    /* the modules, in init order */
    tide__xthread xt;
    tide__timers timers;
    tide__stacks stacks;
    tide__io io;
    tide__streams_ctx streams;
    tide__pool pool;
    tide__signals sig;
    tide__tasks tasks;
    tide__debug dbg;

#ifdef TIDE__ASAN
    void *asan_fake;
    const void *asan_stack_bottom;
    size_t asan_stack_size;
#endif
#ifdef TIDE__TSAN
    void *tsan_fiber;       /* TSan's fiber of the thread running the loop */
#endif
};

/* Module init/term pairs, run by loop.c's table. */
int tide__xthread_init(tide_loop *loop);
void tide__xthread_term(tide_loop *loop);
int tide__timers_init(tide_loop *loop);
void tide__timers_term(tide_loop *loop);
int tide__stacks_init(tide_loop *loop);
void tide__stacks_term(tide_loop *loop);
int tide__io_init(tide_loop *loop);
void tide__io_term(tide_loop *loop);
int tide__streams_init(tide_loop *loop);
/* Closes the streams still open (their fds too) and frees the pools. */
void tide__streams_term(tide_loop *loop);
int tide__pool_init(tide_loop *loop);
void tide__pool_term(tide_loop *loop);
int tide__signals_init(tide_loop *loop);
void tide__signals_term(tide_loop *loop);
int tide__tasks_init(tide_loop *loop);
void tide__tasks_term(tide_loop *loop);

/* Bumped in the child of every fork() (io.c installs the hook): a loop
 * whose generation differs was inherited through a fork. */
extern volatile unsigned tide__fork_gen;
/* In a forked child: gives the loop a poller of its own and registers its
 * fds there again, before anything could touch the parent's.  Cheap when
 * there was no fork.  Returns 0 or -errno. */
int tide__io_fork_check(tide_loop *loop);

/* Runs the callbacks posted from other threads (xthread.c). */
void tide__xthread_run(tide_loop *loop);
static inline int tide__xthread_pending(tide_loop *loop)
{
    return __atomic_load_n(&loop->xt.pending, __ATOMIC_ACQUIRE);
}

/* The loop running on this thread. */
extern __thread tide_loop *tide__tls_loop __attribute__((tls_model("initial-exec")));
/* Every loop made on this thread and not freed. */
extern __thread tide_loop *tide__tls_loops __attribute__((tls_model("initial-exec")));

/* This thread's identity, for one-compare thread checks: the address of a
 * thread-local variable differs on every thread. */
static inline const void *tide__thread_self(void)
{
    return &tide__tls_loops;
}

/* 0 if the caller runs on loop's thread, else -EPERM. */
static inline int tide__loop_thread_check(const tide_loop *loop)
{
    return TIDE__LIKELY(loop->owner == tide__thread_self()) ? 0 : -EPERM;
}

/* Queues d (once) to run at the end of the current step. */
static inline void tide__defer(tide_loop *loop, tide__deferred *d)
{
    if (!d->pprev) {
        d->next = loop->deferred;
        if (d->next)
            d->next->pprev = &d->next;
        loop->deferred = d;
        d->pprev = &loop->deferred;
    }
}

static inline void tide__defer_cancel(tide__deferred *d)
{
    if (d->pprev) {
        *d->pprev = d->next;
        if (d->next)
            d->next->pprev = d->pprev;
        d->pprev = NULL;
        d->next = NULL;
    }
}

static inline void tide__run_deferred(tide_loop *loop)
{
    tide__deferred *d;

    while ((d = loop->deferred)) {
        tide__defer_cancel(d);
        d->fn(d);
    }
}

/* Keep-alive references (see struct tide_loop). */
static inline void tide__loop_ref(tide_loop *loop)
{
    loop->refs++;
}
static inline void tide__loop_unref(tide_loop *loop)
{
    loop->refs--;
}

/* tide_to_thread, with drop(arg) called exactly once if the task does not
 * take fn's result: on the loop thread when the result comes back after the
 * task gave up (cancelled), or before returning if fn was never queued.  It
 * frees arg and what fn made. */
int tide__to_thread(tide_fn fn, void *arg, void (*drop)(void *));


/* The raw monotonic clock, ns.  Only the default loop clock uses it: every
 * deadline and every "now" goes through tide__loop_ns(loop). */
int64_t tide__clock_ns(void);
/* The loop's clock, ns (injectable per loop: tide_loop_set_clock). */
static inline int64_t tide__loop_ns(tide_loop *loop)
{
    return loop->clock.now_ns(loop->clock.arg);
}
/* Sets the default clock of a new loop. */
void tide__clock_init(tide_loop *loop);
/* Virtual time (vclock.c): at the start of an iteration with nothing ready,
 * moves the virtual clock one step (to the next timer, at most to the
 * advance target; with autojump, to the next timer when nothing but timers
 * is waited on). */
void tide__vclock_step(tide_loop *loop);
/* The poll timeout (ns) of a loop on virtual time with nothing ready: 0 when
 * a step can be made, else -1 (wait for real events only). */
int64_t tide__vclock_timeout(tide_loop *loop);
/* The seeded shuffle (vclock.c): TIDE_SEED applied to a new loop; runs the
 * first n nodes of the ready queue in a seeded random order; frees. */
void tide__shuffle_init(tide_loop *loop);
void tide__shuffle_run(tide_loop *loop, size_t n);
void tide__shuffle_term(tide_loop *loop);
/* The running loop's clock, or the raw clock outside a run (tide_now). */
int64_t tide__now_ns(void);

/* Keep-alive references: something that will make work for the loop later
 * through the poller (a task waiting on an fd, an armed flush callback, a
 * signal handler, a process wait).  tide_loop_run keeps going while any is
 * held, and never skips the poll. */
static inline void tide__loop_io_ref(tide_loop *loop)
{
    loop->refs++;
    loop->io_refs++;
}
static inline void tide__loop_io_unref(tide_loop *loop)
{
    loop->refs--;
    loop->io_refs--;
}

static inline void tide__runq_push(tide__runq *q, tide__runnable *r)
{
    r->next = NULL;
    *q->tailp = r;
    q->tailp = &r->next;
    q->n++;
}
/* Adds a task timer (or any node) to the loop's heap.  Returns 0/-ENOMEM. */
int tide__timer_add(tide_loop *loop, tide__tnode *n, int64_t deadline);
void tide__timer_del(tide_loop *loop, tide__tnode *n);
/* Fires the timers due at loop->now. */
void tide__timers_run(tide_loop *loop);
/* The earliest deadline, or TIDE__NEVER. */
int64_t tide__timers_next(tide_loop *loop);
/* Posts a node to the loop from any thread (never allocates). */
void tide__post(tide_loop *loop, tide__tsnode *n);
/* Runs the loop until done() says so (or, for NULL, until no work is left). */
int tide__loop_run(tide_loop *loop, int (*done)(tide_loop *, void *), void *arg);

/* Switches from the loop to task t and back. */
void tide__switch_to_task(tide_loop *loop, tide_task *t);
/* Switches from the running task t to its loop. */
void tide__switch_to_loop(tide_task *t);
#ifdef TIDE__ASAN
/* A task released while suspended never switches away for good: frees the
 * fake stack ASan keeps for it (detect_stack_use_after_return=1). */
void tide__asan_drop_fake(tide_task *t);
#endif

#endif
