/*
 * tide: coordinating tasks: task groups, wait / as_completed, synchronisation
 * primitives, queues and task-local values.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_SYNC_H
#define TIDE_SYNC_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tide__waiter; /* private: a waiting task's node, on its own stack */

/* A FIFO of waiting tasks (private). */
typedef struct tide_waitlist {
    struct tide__waiter *head, *tail;
} tide_waitlist;

/* -------------------------------------------------------------- groups */

#define TIDE_GROUP_MAX_ERRORS 8

/*
 * A task group (asyncio.TaskGroup, Trio's nursery), kept by the caller
 * (usually on the stack of the task that owns it).  Tasks spawned into it
 * belong to it: they are released when they end and must not be awaited or
 * detached.  The first failure (a negative result other than -ECANCELED)
 * cancels the other tasks; tide_group_wait returns it.  A group on its
 * owner's stack is also a cancel scope in the owner (asyncio's TaskGroup,
 * Trio's nursery): the first failure cancels the owner's code inside the
 * group too -- a wait it is in wakes with -ECANCELED, and every suspending
 * call it makes fails with -ECANCELED (level-triggered, unless a shield
 * opened inside the group covers it) until it reaches tide_group_wait,
 * which waits for the members as usual and returns the failure.  The task
 * itself is not cancelled: past the group its calls work again.  Cancelling the task
 * in tide_group_wait (or a timeout) cancels the whole group.  Every group
 * must end with tide_group_wait: no task outlives its group.  A group on a
 * task's stack that the function holding it leaves without tide_group_wait
 * would have its tasks write into the dead frame as they end: that is
 * reported instead (when the task returns, or when a later suspension,
 * group call or member's end finds the dead group), with a line naming the
 * task on stderr, then abort().  So is tide_group_init on a group still
 * open.  A group kept elsewhere (on the heap) must stay until
 * tide_group_wait returns, and may be waited for by any task of its loop.
 */
typedef struct tide_group {
    tide_loop *loop;       /* private */
    tide_task *members;    /* private: live tasks */
    size_t live;           /* private */
    tide_task *waiter;     /* private */
    int first_error;       /* private */
    int nerrors;           /* private: failures so far */
    int errors[TIDE_GROUP_MAX_ERRORS]; /* private */
    int flags;             /* private */
    unsigned check;        /* private: tells a live group from a dead frame's */
    tide_task *owner;      /* private: the task on whose stack it lives, or NULL */
    struct tide_group *outer; /* private: the owner's next open group */
    tide_scope scope;      /* private: the owner's code inside the group */
} tide_group;

/* Makes an empty group on the current loop.  Errors: -EINVAL, -EPERM. */
TIDE_API int tide_group_init(tide_group *g);
/* Starts fn(arg) in a new task of the group (o: name, stack size; may be
 * NULL).  If t is not NULL it receives the task, borrowed: valid until the
 * task ends (tide_cancel may be used on it).  Errors: -EINVAL (NULL, or the
 * group already waited for), -ECANCELED (the group is being cancelled),
 * -ENOMEM, and those of tide_create_task_ex. */
TIDE_API int tide_group_spawn(tide_group *g, tide_fn fn, void *arg, const tide_task_opts *o,
                              tide_task **t);
/* Cancels every task of the group (they still end before tide_group_wait
 * returns).  Errors: -EINVAL. */
TIDE_API int tide_group_cancel(tide_group *g);
/* Waits until every task of the group has ended, including tasks they
 * spawned into it meanwhile.  Returns 0, the first failure, or -ECANCELED /
 * -ETIMEDOUT if the waiting task was cancelled / timed out (the group was
 * then cancelled and waited for).  Errors: -EINVAL (NULL, or already waited
 * for), -EPERM (not in a task on the group's loop), -EBUSY (another task
 * waits). */
TIDE_API int tide_group_wait(tide_group *g);
/* The failures seen so far, in the order they happened: copies at most cap
 * (and at most TIDE_GROUP_MAX_ERRORS) into errs and returns how many tasks
 * failed in all.  Errors: -EINVAL (g NULL). */
TIDE_API int tide_group_errors(const tide_group *g, int *errs, size_t cap);

/* ------------------------------------------------- wait, as_completed */

#define TIDE_FIRST_COMPLETED 1 /* when any task ends */
#define TIDE_FIRST_ERROR 2     /* when any task fails (result < 0, not -ECANCELED), or all end */
#define TIDE_ALL_COMPLETED 3   /* when every task has ended */

/* asyncio.wait: waits until the condition holds for the n tasks and returns
 * how many have ended (tide_task_get_state(t) == TIDE_TASK_DONE tells which).
 * The tasks are not released: await the ended ones for their results.
 * Errors: -EINVAL (mode unknown; also for group members, detached tasks,
 * the calling task and a task listed twice), -EPERM (not in a task, or a
 * task of another loop), -ECANCELED, -ETIMEDOUT (use a timeout scope),
 * -ENOMEM. */
TIDE_API int tide_wait(tide_task **ts, size_t n, int mode);

typedef struct tide_as_completed tide_as_completed;

/* asyncio.as_completed: an iterator over n tasks in the order they end.
 * A task released before the iterator gives it (awaited by any task, or
 * detached, meanwhile) is dropped: it is never given, so a handle it gives
 * is always live.
 * Errors: -EINVAL (also for group members and detached tasks, whose
 * handles die when they end), -EPERM, -ENOMEM. */
TIDE_API int tide_as_completed_new(tide_as_completed **it, tide_task **ts, size_t n);
/* Waits for the next task to end and stores it in *t (not released: await
 * it for its result); a cancellation point even when one has ended already
 * (as tide_as_completed_futures_next).  Returns 0, -ENOENT once every task
 * was returned or dropped, -ECANCELED, -ETIMEDOUT, -EINVAL, -EPERM (not in a task of
 * the iterator's loop), -EBUSY (another task waits in it), -EBADF (the
 * iterator was freed while we waited). */
TIDE_API int tide_as_completed_next(tide_as_completed *it, tide_task **t);
/* Frees the iterator (the tasks are untouched).  NULL is ignored. */
TIDE_API void tide_as_completed_free(tide_as_completed *it);

/* ----------------------------------------- over futures (and tasks) */

/* The same three over futures, asyncio's way of taking any awaitable: a
 * task joins through its future (tide_task_future), so tasks and plain
 * futures mix in one call.  None of them takes a task's result or releases
 * it (await, detach or group it as usual); the futures must stay alive
 * (not freed, their tasks not released) until the call returns (for the
 * iterator: until it is freed).  A future listed twice counts twice.
 *
 * asyncio.wait: waits until the condition holds (TIDE_FIRST_COMPLETED,
 * _FIRST_ERROR: a future with an error other than -ECANCELED, or all, or
 * _ALL_COMPLETED) and returns how many are done (tide_future_done tells
 * which).  Errors: -EINVAL (mode unknown, fs NULL with n > 0, a NULL
 * future), -EPERM (not in a task, or a future of another loop),
 * -ECANCELED, -ETIMEDOUT, -ENOMEM. */
TIDE_API int tide_wait_futures(tide_future **fs, size_t n, int mode);
/* asyncio.gather: waits until every future is done; results[i] (may be
 * NULL) receives what tide_future_result returns for fs[i] (a task's int
 * result, or the error) and values[i] (may be NULL) its value.  Returns 0
 * or the first error in array order.  If the caller is cancelled (or times
 * out) while waiting, every pending future is cancelled (a task's: its
 * task is), all are waited for, and -ECANCELED (-ETIMEDOUT) is returned.
 * Errors: as tide_wait_futures. */
TIDE_API int tide_gather_futures(tide_future **fs, size_t n, int *results, void **values);

typedef struct tide_future_iter tide_future_iter;

/* asyncio.as_completed over futures: an iterator giving them in the order
 * they complete (those done already first, in array order).
 * Errors: -EINVAL, -EPERM as tide_wait_futures, -ENOMEM. */
TIDE_API int tide_as_completed_futures_new(tide_future_iter **it, tide_future **fs, size_t n);
/* Waits for the next future to complete and stores it in *f.  Returns 0,
 * -ENOENT once every one was given, -ECANCELED, -ETIMEDOUT, -EINVAL (a
 * NULL argument), -EPERM (not in a task of the iterator's loop), -EBUSY
 * (another task waits in it), -EBADF (freed while we waited). */
TIDE_API int tide_as_completed_futures_next(tide_future_iter *it, tide_future **f);
/* Frees the iterator (the futures are untouched).  NULL is ignored. */
TIDE_API void tide_as_completed_futures_free(tide_future_iter *it);

/* asyncio.shield: waits for t like tide_await, but if the waiting task is
 * cancelled (or times out) t is NOT cancelled: the call returns -ECANCELED
 * (-ETIMEDOUT) and t stays the caller's, still running.
 * Errors: as tide_await. */
TIDE_API int tide_shield(tide_task *t);

/* --------------------------------------------------------------- locks */

/* Every wait below is served FIFO, obeys cancellation and timeout scopes,
 * and a task cancelled while waiting never takes the resource (and none is
 * lost: it goes to the next waiter). */

typedef struct tide_lock {
    tide_task *owner;      /* private */
    tide_waitlist waiters; /* private */
} tide_lock;

/* Makes a free lock.  Errors: -EINVAL (l NULL). */
TIDE_API int tide_lock_init(tide_lock *l);
/* Errors: -EINVAL, -EPERM, -EDEADLK (the task holds it), -ECANCELED,
 * -ETIMEDOUT. */
TIDE_API int tide_lock_acquire(tide_lock *l);
/* Takes the lock if it is free, without waiting: 0, -EBUSY (another task
 * holds it), -EDEADLK (the calling task holds it already: as
 * tide_lock_acquire, so "do I hold it?" has an answer), -EINVAL, -EPERM
 * (not in a task). */
TIDE_API int tide_lock_try_acquire(tide_lock *l);
/* Errors: -EINVAL, -EPERM (the current task does not hold it). */
TIDE_API int tide_lock_release(tide_lock *l);
/* 1 if a task holds the lock, else 0 (also for NULL).  Never fails. */
TIDE_API int tide_lock_locked(const tide_lock *l);

/* -------------------------------------------------------------- events */

typedef struct tide_event {
    int set;               /* private */
    tide_waitlist waiters; /* private */
} tide_event;

/* init, set, clear: 0, or -EINVAL (e NULL); none of them waits. */
TIDE_API int tide_event_init(tide_event *e);
/* Sets the event and wakes every waiter.  Errors: -EINVAL (e NULL). */
TIDE_API int tide_event_set(tide_event *e);
/* Clears the event: later waits wait.  Errors: -EINVAL (e NULL). */
TIDE_API int tide_event_clear(tide_event *e);
/* 1 if the event is set, else 0 (also for NULL).  Never fails. */
TIDE_API int tide_event_is_set(const tide_event *e);
/* Waits until the event is set (at once if it is).
 * Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_event_wait(tide_event *e);

/* ---------------------------------------------------------- conditions */

typedef struct tide_cond {
    tide_lock *lock;       /* private */
    tide_lock own;         /* private: the lock when none is given */
    tide_waitlist waiters; /* private */
} tide_cond;

/* A condition variable over lock (NULL: its own lock, see tide_cond_lock).
 * Errors: -EINVAL (c NULL). */
TIDE_API int tide_cond_init(tide_cond *c, tide_lock *lock);
/* The lock of the condition (NULL for c NULL). */
TIDE_API tide_lock *tide_cond_lock(tide_cond *c);
/* Releases the lock, waits for a notify, takes the lock back: the lock is
 * held again when it returns, whatever it returns.
 * Errors: -EINVAL, -EPERM (lock not held), -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_cond_wait(tide_cond *c);
/* asyncio's Condition.wait_for: with the lock held, waits (as
 * tide_cond_wait) until pred(arg) returns non-zero, checking it first and
 * after each wake-up, and returns 0 with the lock held.  A negative value
 * from pred is an error of its own: returned as it is (lock held).
 * Errors: -EINVAL (c or pred NULL), -EPERM (lock not held), -ECANCELED,
 * -ETIMEDOUT (the lock is held again in every case). */
TIDE_API int tide_cond_wait_for(tide_cond *c, int (*pred)(void *arg), void *arg);
/* Wakes up to n waiters (FIFO) / all.  The lock must be held: -EPERM. */
TIDE_API int tide_cond_notify(tide_cond *c, size_t n);
TIDE_API int tide_cond_notify_all(tide_cond *c);

/* ---------------------------------------------------------- semaphores */

typedef struct tide_sem {
    long value;            /* private */
    long bound;            /* private: the most value may reach (LONG_MAX: unbounded) */
    tide_waitlist waiters; /* private */
} tide_sem;

/* A semaphore with value permits; tide_bsem_init: a bounded one, whose
 * release past value is an error (as Python's BoundedSemaphore: one made
 * with value 0 has bound 0, and every release of it fails).
 * Errors: -EINVAL (s NULL or value < 0). */
TIDE_API int tide_sem_init(tide_sem *s, long value);
TIDE_API int tide_bsem_init(tide_sem *s, long value);
/* Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_sem_acquire(tide_sem *s);
/* 0, or -EBUSY if no permit is free; -EINVAL.  Never waits, so it may be
 * called outside a task. */
TIDE_API int tide_sem_try_acquire(tide_sem *s);
/* Gives a permit back (to the first waiter, if any); may be called outside
 * a task.  Errors: -EINVAL, -EOVERFLOW (a bounded semaphore released more
 * than acquired, or a count that would pass LONG_MAX). */
TIDE_API int tide_sem_release(tide_sem *s);
/* The permits free now (0 for NULL). */
TIDE_API long tide_sem_value(const tide_sem *s);

/* ------------------------------------------------------------ barriers */

typedef struct tide_barrier {
    unsigned parties;      /* private */
    unsigned count;        /* private: arrived in this round */
    int broken;            /* private: aborted (tide_barrier_abort) */
    tide_waitlist waiters; /* private */
} tide_barrier;

/* Errors: -EINVAL (parties == 0). */
TIDE_API int tide_barrier_init(tide_barrier *b, unsigned parties);
/* Waits until `parties` tasks wait, then releases them all; returns the
 * arrival index (0 .. parties-1).  A task cancelled while waiting leaves
 * the round (the others wait for another party).
 * Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT, -EPIPE (the barrier
 * is broken: aborted, or reset while the task waited; asyncio's
 * BrokenBarrierError). */
TIDE_API int tide_barrier_wait(tide_barrier *b);
/* asyncio 3.11 Barrier.abort(): puts the barrier in the broken state:
 * every task waiting in it wakes with -EPIPE, and so does every later
 * tide_barrier_wait until tide_barrier_reset.  Never waits (callable
 * outside a task).  Errors: -EINVAL (b NULL or never initialised). */
TIDE_API int tide_barrier_abort(tide_barrier *b);
/* Barrier.reset(): the tasks waiting now wake with -EPIPE, and the barrier
 * starts an empty round, not broken any more.  Errors: -EINVAL. */
TIDE_API int tide_barrier_reset(tide_barrier *b);
/* 1 if the barrier is broken, 0 if not.  Errors: -EINVAL. */
TIDE_API int tide_barrier_broken(const tide_barrier *b);
/* How many tasks wait in the current round (0 for NULL). */
TIDE_API unsigned tide_barrier_n_waiting(const tide_barrier *b);

/* -------------------------------------------------------------- queues */

typedef struct tide_queue tide_queue;

#define TIDE_QUEUE_FIFO 0
#define TIDE_QUEUE_LIFO 1
#define TIDE_QUEUE_PRIORITY 2 /* smallest first by cmp; FIFO among equals */

typedef struct tide_queue_opts {
    int kind;                               /* TIDE_QUEUE_FIFO (default), _LIFO, _PRIORITY */
    size_t maxsize;                         /* 0: unbounded; else put waits when full */
    int (*cmp)(const void *a, const void *b); /* for _PRIORITY: < 0 if a comes first */
    void (*free_item)(void *item);          /* frees items dropped by shutdown/free; may be NULL */
} tide_queue_opts;

/* Fills *o with the defaults (unbounded FIFO, no cmp, no free_item).
 * NULL is ignored. */
TIDE_API void tide_queue_opts_init(tide_queue_opts *o);
/* asyncio.Queue on the current loop (o NULL: unbounded FIFO).
 * Errors: -EINVAL (PRIORITY without cmp), -EPERM (no loop), -ENOMEM. */
TIDE_API int tide_queue_new(tide_queue **q, const tide_queue_opts *o);
/* Shuts the queue down at once (waiters wake with -ESHUTDOWN), drops the
 * items left (free_item) and frees it.  NULL is ignored. */
TIDE_API void tide_queue_free(tide_queue *q);
/* Adds an item, waiting while the queue is full.  Errors: -EINVAL, -EPERM,
 * -ESHUTDOWN, -ECANCELED, -ETIMEDOUT, -ENOMEM. */
TIDE_API int tide_queue_put(tide_queue *q, void *item);
/* Takes an item, waiting while the queue is empty.  Errors: -EINVAL,
 * -EPERM, -ESHUTDOWN (shut down and empty), -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_queue_get(tide_queue *q, void **item);
/* Without waiting (so also outside a task): -EAGAIN when full / empty;
 * -EINVAL, -ESHUTDOWN and (put) -ENOMEM as above. */
TIDE_API int tide_queue_put_nowait(tide_queue *q, void *item);
TIDE_API int tide_queue_get_nowait(tide_queue *q, void **item);
/* One item taken earlier is processed.  Errors: -EINVAL (called more
 * times than items were put). */
TIDE_API int tide_queue_task_done(tide_queue *q);
/* Waits until every item put was taken and marked done.
 * Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT, -ESHUTDOWN (the queue
 * was freed meanwhile). */
TIDE_API int tide_queue_join(tide_queue *q);
/* asyncio 3.13: from now on put fails with -ESHUTDOWN; get returns the
 * items left, then -ESHUTDOWN.  immediate: also drop the items left (and
 * count them done), so get fails at once.  Waiting putters (and, when
 * empty, getters) wake with -ESHUTDOWN.  Errors: -EINVAL (q NULL). */
TIDE_API int tide_queue_shutdown(tide_queue *q, int immediate);
/* How many items the queue holds (0 for NULL). */
TIDE_API size_t tide_queue_size(const tide_queue *q);

/* -------------------------------------------------------- task-locals */

/* A key for a task-local value (like contextvars): each task has its own
 * value, and a new task starts with a copy of its creator's values. */
typedef struct tide_local_key {
    unsigned id; /* private */
} tide_local_key;

/* Makes a key, once (keys are process-wide).  Errors: -EINVAL, -ENOSPC
 * (more than 1024 keys). */
TIDE_API int tide_local_key_init(tide_local_key *k);
/* Sets the current task's value.  Errors: -EINVAL, -EPERM, -ENOMEM. */
TIDE_API int tide_local_set(const tide_local_key *k, void *value);
/* The current task's value; NULL if unset or outside a task. */
TIDE_API void *tide_local_get(const tide_local_key *k);

/* A key whose values are freed by dtor(value) once no task holds them any
 * more: a value set is held by the task that set it and by every task
 * created (directly or not) while it was that task's value, and by a
 * token; it is released when replaced (set again), reset away, or when
 * the task is released.  dtor runs on the loop thread, never for NULL.
 * Errors: as tide_local_key_init.  (tide_local_set on such a key may also
 * fail with -ENOMEM: the value is then not taken.) */
TIDE_API int tide_local_key_init_ex(tide_local_key *k, void (*dtor)(void *value));

/* contextvars' Token: what tide_local_set_token replaced (private). */
typedef struct tide_local_token {
    unsigned id; /* private */
    void *task;  /* private: the task that made it */
    void *old;   /* private: the value it replaced */
    int used;    /* private */
} tide_local_token;

/* ContextVar.set() with its Token: sets the current task's value and
 * records the one it replaced in tok, for tide_local_reset.
 * Errors: -EINVAL (k or tok NULL, k not initialised), -EPERM (outside a
 * task), -ENOMEM. */
TIDE_API int tide_local_set_token(const tide_local_key *k, void *value, tide_local_token *tok);
/* ContextVar.reset(token): gives the key back the value tok recorded (the
 * value set since is released).  Errors: -EINVAL (NULL, a token of another
 * key, or made by another task), -EPERM (outside a task), -EALREADY (the
 * token was used already).  A token is meant to be reset: one never reset
 * keeps holding its old value (with a destructor key, that value is then
 * never freed). */
TIDE_API int tide_local_reset(const tide_local_key *k, tide_local_token *tok);
/* Token.old_value: the value tok recorded (NULL: unset, or used). */
TIDE_API void *tide_local_token_old(const tide_local_token *tok);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_SYNC_H */
