/*
 * tide: asyncio for C.
 *
 * A single-threaded event loop runs stackful coroutines ("tasks").  Code in a
 * task reads like blocking code; every call that would block suspends only the
 * calling task while the loop runs the others.
 *
 * Conventions (see docs/design.md):
 *  - Functions returning int/ssize_t return >= 0 on success and a negative
 *    errno on failure.  tide_strerror() names an error.
 *  - Time is int64_t milliseconds on a monotonic clock (tide_now()).
 *  - Every call that can suspend must run inside a task; called from plain
 *    code it returns -EPERM.
 *  - Cancellation is level-triggered: once a task is cancelled, every
 *    suspending call it makes returns -ECANCELED until it returns.  A task that
 *    never suspends cannot be cancelled.
 *  - A suspending call whose wait needs a timer (a sleep, a wait_for, the
 *    deadline of a timeout scope) may also fail with -ENOMEM when the timer
 *    cannot be armed; it then behaves as when it is cancelled.
 */
#ifndef TIDE_H
#define TIDE_H

/*
 * The public headers compile as strict ISO C (-std=c99/-std=c11 -Wpedantic,
 * no feature-test macro) and as C++, and never define a feature-test macro
 * themselves (it would come too late if a system header was included first).
 * Each type they use comes from a POSIX header that declares it whatever the
 * feature macros say: ssize_t, off_t, pid_t, mode_t (<sys/types.h>),
 * socklen_t, struct sockaddr (<sys/socket.h>), struct iovec (<sys/uio.h>),
 * sigset_t (<sys/select.h>: glibc's <signal.h> hides it from strict ISO C,
 * <sys/select.h> must define it in every POSIX mode).  struct addrinfo is
 * only named through pointers: it is declared below, and complete only for
 * code that asks <netdb.h> for it (POSIX 2001 or later, the default).
 */
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

#if defined(__GNUC__) || defined(__clang__)
#define TIDE_API __attribute__((visibility("default")))
#else
#define TIDE_API
#endif

#define TIDE_VERSION_MAJOR 0
#define TIDE_VERSION_MINOR 1
#define TIDE_VERSION_PATCH 0

/* Default stack size of a task (bytes).  Overflow is caught by a guard page:
 * the process prints the task's name and stack size and aborts. */
#define TIDE_DEFAULT_STACK_SIZE (256 * 1024)
/* Smallest stack size accepted by tide_task_opts.stack_size. */
#define TIDE_MIN_STACK_SIZE (16 * 1024)
/* tide_task_opts.flags: TIDE_STACK_UNGUARDED asks for a small stack with no
 * guard page, carved several per page (docs/stacks.md).  Opt-in, for tasks
 * of shallow, known call depth (1M sleepers): stack_size is then 0 (meaning
 * TIDE_SMALL_STACK_DEFAULT) or in [TIDE_SMALL_STACK_MIN,
 * TIDE_SMALL_STACK_MAX], rounded up to 256 bytes.  Overflow is still
 * reported and aborts, but later: a canary at the bottom of the stack and
 * the saved stack pointer are checked each time the task switches out (and
 * when it ends), so an overflow can corrupt the neighbouring stack below
 * before it is seen.  Signal handlers that may run on such a task must use
 * SA_ONSTACK (a signal frame takes up to 12 KiB with AVX-512).
 * Sanitizer builds of tide give these stacks more room (docs/stacks.md). */
#define TIDE_STACK_UNGUARDED 0x1u
#define TIDE_SMALL_STACK_MIN 2048
#define TIDE_SMALL_STACK_DEFAULT 2048
#define TIDE_SMALL_STACK_MAX (8 * 1024)
/* Task names longer than this (including the NUL) are truncated. */
#define TIDE_TASK_NAME_MAX 32

typedef struct tide_loop tide_loop;
typedef struct tide_task tide_task;
typedef struct tide_future tide_future;

/* A task's body: returns a value >= 0 on success or a negative errno. */
typedef int (*tide_fn)(void *arg);
/* A plain callback run by the loop (call_soon, call_later, ...). */
typedef void (*tide_cb)(void *arg);
/* A future's done callback. */
typedef void (*tide_future_cb)(tide_future *f, void *arg);

/* ---------------------------------------------------------------- errors */

/* Names a negative errno (or 0), and every code of tide's own ranges: the
 * TIDE_EAI name-resolution codes, the TIDE_TLS_ERR codes and the
 * TIDE_PROC_SIGNALED statuses of process waits ("process killed by signal
 * SIGKILL (killed)").  A positive value names the same as its negative.
 * Never returns NULL; the string is static. */
TIDE_API const char *tide_strerror(int err);

/* Replaces the allocator tide uses for its own memory (task stacks come from
 * mmap).  Call it before anything else of tide.  Errors: -EINVAL. */
TIDE_API int tide_replace_allocator(void *(*malloc_fn)(size_t),
                                    void *(*realloc_fn)(void *, size_t),
                                    void *(*calloc_fn)(size_t, size_t),
                                    void (*free_fn)(void *));

/* ------------------------------------------------------------------ run */

/* asyncio.run(): makes a new loop on this thread, runs main(arg) in a task
 * until it returns, then cancels every task still alive and runs them to
 * completion, waits for worker-pool jobs the loop started, frees the loop and
 * returns main's result.  Nothing (task, stack, timer, fd) is left behind.
 * Errors: -EINVAL (main is NULL), -EBUSY (a loop already runs on this
 * thread), -ENOMEM. */
TIDE_API int tide_run(tide_fn main, void *arg);

/* Milliseconds on a monotonic clock: the running loop's clock inside a
 * loop run (see tide_loop_set_clock), CLOCK_MONOTONIC outside one. */
TIDE_API int64_t tide_now(void);
/* The same clock in nanoseconds. */
TIDE_API int64_t tide_now_ns(void);

/* ------------------------------------------------------------------ loop */

/* Makes a loop.  Errors: -EINVAL, -ENOMEM, or an errno from the poller. */
TIDE_API int tide_loop_new(tide_loop **loop);
/* Cancels and finishes every task still alive on the loop (tide_loop_stop
 * does not cut this short) and waits for its worker-pool jobs; then runs
 * the callbacks already scheduled once (a done callback set in a task's
 * last step runs), drops and frees what they schedule again and pending
 * timers, and frees the loop.  If another loop runs on this thread, the
 * tasks cannot run: they are released unfinished, and the call blocks until
 * the worker-pool jobs are back (their results are disposed of).  Must not
 * be called while the loop runs.  NULL is ignored. */
TIDE_API void tide_loop_free(tide_loop *loop);
/* fork() and tide: a child that goes on using a loop it inherited gets a
 * poller of its own (the parent's is never touched: no stolen readiness,
 * no registration removed), automatically before its first poll or fd
 * registration, or explicitly with this call (as libuv's uv_loop_fork).
 * Only the forking thread exists in the child: worker-pool jobs in flight
 * never come back (tasks waiting on them stay suspended until cancelled),
 * and subprocesses and signal handlers of the parent are not the child's.
 * Returns 0 (also when there was no fork), or -errno if a new poller
 * cannot be made. */
TIDE_API int tide_loop_fork(tide_loop *loop);
/* Gives the loop a clock of its own: now_ns(arg) returns monotonic
 * nanoseconds (never going back).  Every deadline, timer, timeout scope and
 * tide_now() of the loop then reads it; NULL restores the default
 * (CLOCK_MONOTONIC).  The poller's timeout is the time to the next deadline
 * on this clock, so a clock that runs slower or faster than real time makes
 * the loop sleep accordingly.  Only before the loop has tasks or timers.
 * Errors: -EINVAL (loop NULL), -EBUSY (running, or tasks or timers exist). */
TIDE_API int tide_loop_set_clock(tide_loop *loop, int64_t (*now_ns)(void *arg), void *arg);
/* Runs the loop until no work is left (no ready callback or task, no pending
 * timer, no task waiting on I/O or on the worker pool) or until
 * tide_loop_stop().  Errors: -EINVAL, -EBUSY (already running, or another
 * loop runs on this thread). */
TIDE_API int tide_loop_run(tide_loop *loop);
/* Runs the loop until tide_loop_stop(), even while nothing is scheduled
 * (asyncio's run_forever): a task waiting on a future that another thread
 * completes through tide_call_soon_threadsafe keeps it alive.
 * Errors: -EINVAL, -EBUSY. */
TIDE_API int tide_loop_run_forever(tide_loop *loop);

/* Embedding tide in another event loop (GLib, Qt, libuv...): watch
 * tide_loop_fd() for readability in the host loop, with a timer of
 * tide_loop_timeout_ms(); whenever either fires (and after anything that
 * may have scheduled work), call tide_loop_run_once(), which never blocks.
 *
 * The fd the host should poll for readability (the epoll / kqueue fd);
 * -EINVAL for NULL. */
TIDE_API int tide_loop_fd(const tide_loop *loop);
/* The name of the kernel API the loop's poller uses: "epoll" or "io_uring"
 * on Linux (chosen when the loop is made, from the environment variable
 * TIDE_POLLER=epoll|io_uring|auto; epoll is the default and the fallback
 * when io_uring cannot be set up), "kqueue" elsewhere.  NULL gives NULL. */
TIDE_API const char *tide_loop_poller(const tide_loop *loop);
/* How long the host may sleep before calling tide_loop_run_once: 0 when
 * anything is ready to run (or was posted from another thread), the
 * milliseconds to the next timer (rounded up), or -1 when nothing is timed
 * (sleep until tide_loop_fd is readable).  NULL gives 0. */
TIDE_API int64_t tide_loop_timeout_ms(tide_loop *loop);
/* Runs one iteration without blocking: what is ready, due timers, and the
 * I/O events already there.  Returns 1 if the loop still has work (call
 * again when tide_loop_fd is readable or the timeout passes), 0 if it has
 * none, -EINVAL, or -EBUSY (running, or another loop runs on this thread). */
TIDE_API int tide_loop_run_once(tide_loop *loop);
/* Runs the loop until task t (created on this loop) ends; releases t and
 * returns its result.  Errors: -EINVAL, -EBUSY, -EINTR (tide_loop_stop was
 * called before t ended; t is not released). */
TIDE_API int tide_loop_run_until_complete(tide_loop *loop, tide_task *t);
/* Makes tide_loop_run return after the current iteration. */
TIDE_API void tide_loop_stop(tide_loop *loop);
/* The loop running on this thread, or NULL. */
TIDE_API tide_loop *tide_loop_current(void);

/* Schedules cb(arg) to run on the loop's next iteration; callbacks run in
 * FIFO order.  Errors: -EINVAL (loop or cb NULL), -ENOMEM, -EPERM (called
 * on another thread than the loop's: use tide_call_soon_threadsafe).
 *
 * Thread rule: every function of tide that takes a loop, a future, a task
 * or a timer handle is for the loop's own thread (the one that made or last
 * ran it); the ones that check return -EPERM elsewhere.  The thread-safe
 * entry points say so in their names (tide_call_soon_threadsafe). */
TIDE_API int tide_call_soon(tide_loop *loop, tide_cb cb, void *arg);

/* A handle on a pending tide_call_later; a small value the caller keeps. */
typedef struct tide_timer {
    void *node;   /* private */
    uint64_t gen; /* private: tells a stale handle from a live one */
} tide_timer;

/* Runs cb(arg) after ms milliseconds (ms < 0 is taken as 0).  Timers with
 * equal deadlines run in the order they were added.  If h is not NULL it
 * receives a handle for tide_timer_cancel; the handle stays safe to use
 * (cancel is then a no-op) until the loop is freed.
 * Errors: -EINVAL, -ENOMEM, -EPERM (not the loop's thread). */
TIDE_API int tide_call_later(tide_loop *loop, int64_t ms, tide_cb cb, void *arg,
                             tide_timer *h);
/* Cancels a pending timer.  Returns 0 if it was cancelled, -EALREADY if it
 * already ran or was cancelled, -EINVAL if h is NULL or was never set,
 * -EPERM on another thread than the loop's. */
TIDE_API int tide_timer_cancel(tide_timer *h);

/* tide_call_later with a delay in nanoseconds (asyncio's call_later takes
 * fractions of a second).  Errors: as tide_call_later. */
TIDE_API int tide_call_later_ns(tide_loop *loop, int64_t ns, tide_cb cb, void *arg,
                                tide_timer *h);
/* asyncio's call_at: runs cb(arg) once the loop's clock reaches when_ms
 * (tide_now() milliseconds; a time in the past runs on the next
 * iteration).  Timers with equal deadlines run in the order they were
 * added.  Errors: as tide_call_later. */
TIDE_API int tide_call_at(tide_loop *loop, int64_t when_ms, tide_cb cb, void *arg,
                          tide_timer *h);
/* tide_call_at with an absolute time in tide_now_ns() nanoseconds.
 * Errors: as tide_call_later. */
TIDE_API int tide_call_at_ns(tide_loop *loop, int64_t when_ns, tide_cb cb, void *arg,
                             tide_timer *h);

/* Schedules cb(arg) on loop from any thread (wakes the loop if it sleeps).
 * Each call runs its callback exactly once, in order per calling thread.
 * Errors: -EINVAL, -ENOMEM. */
TIDE_API int tide_call_soon_threadsafe(tide_loop *loop, tide_cb cb, void *arg);

/* asyncio.run_coroutine_threadsafe: from any thread, runs fn(arg) in a new
 * task of loop (started from the loop's cross-thread queue, as
 * tide_call_soon_threadsafe) and hands back a handle, concurrent.futures'
 * Future, that the submitting thread waits on with a blocking call.  The
 * loop must be running (or run later: tide_loop_run_forever is the usual
 * partner) and must outlive the job: a loop freed before the job started
 * never runs it.  Errors: -EINVAL (loop, fn or cf NULL), -ENOMEM. */
typedef struct tide_cfuture tide_cfuture;
TIDE_API int tide_run_threadsafe(tide_loop *loop, tide_fn fn, void *arg, tide_cfuture **cf);
/* Blocks the calling thread (not a task: this is for other threads) until
 * the job ended, at most timeout_ms (< 0: no limit), and stores fn's
 * result in *result and the task's pointer result (tide_task_set_ptr) in
 * *ptr (either may be NULL).  A job cancelled before it started gives
 * -ECANCELED as its result.  Returns 0, -ETIMEDOUT (the job goes on: wait
 * again, or cancel it), -EINVAL (cf NULL), -EDEADLK (called on the loop's
 * own thread, which would block the loop forever). */
TIDE_API int tide_cfuture_wait(tide_cfuture *cf, int64_t timeout_ms, int *result, void **ptr);
/* 1 if the job ended, 0 if not; -EINVAL for NULL.  Any thread. */
TIDE_API int tide_cfuture_done(tide_cfuture *cf);
/* Future.cancel() from the submitting side (any thread): a job not started
 * yet never runs (its result is -ECANCELED); a running one has its task
 * cancelled (level-triggered: what fn returns then is the result).  Wait
 * for the outcome with tide_cfuture_wait.  Returns 0, -EALREADY (the job
 * ended already), -EINVAL. */
TIDE_API int tide_cfuture_cancel(tide_cfuture *cf);
/* Drops the handle (any thread).  The job is not cancelled: it runs to its
 * end and its result is dropped.  NULL is ignored. */
TIDE_API void tide_cfuture_free(tide_cfuture *cf);

/* ----------------------------------------------------------------- tasks */

typedef struct tide_task_opts {
    const char *name;  /* copied (truncated to TIDE_TASK_NAME_MAX-1); NULL: "task-<id>" */
    size_t stack_size; /* 0: TIDE_DEFAULT_STACK_SIZE; rounded up to whole pages */
    unsigned flags;    /* 0, or TIDE_STACK_UNGUARDED (see there) */
} tide_task_opts;

/* Fills *o with the defaults (no name, the default stack size, no flags).
 * NULL is ignored. */
TIDE_API void tide_task_opts_init(tide_task_opts *o);

/* asyncio.create_task(): starts fn(arg) in a new task on the current loop.
 * The task starts running on a later loop iteration.  The caller owns *t and
 * must tide_await() or tide_detach() it.
 * Errors: -EINVAL (t or fn NULL), -EPERM (no loop runs on this thread),
 * -ENOMEM. */
TIDE_API int tide_create_task(tide_task **t, tide_fn fn, void *arg);
/* Like tide_create_task, on loop (NULL: the current loop) with options.
 * Errors: as tide_create_task, -EINVAL for a stack_size that is too
 * small (< TIDE_MIN_STACK_SIZE) or too large (> 1 GiB), with
 * TIDE_STACK_UNGUARDED for one outside [TIDE_SMALL_STACK_MIN,
 * TIDE_SMALL_STACK_MAX], and for unknown flags; -EPERM on another thread
 * than the loop's. */
TIDE_API int tide_create_task_ex(tide_task **t, tide_loop *loop, tide_fn fn, void *arg,
                                 const tide_task_opts *o);

/* Waits for t to end, releases it and returns its result (what its function
 * returned, or -ECANCELED if it was cancelled before it started).  If the
 * waiting task is cancelled (or a timeout scope expires) while it waits, t is
 * cancelled too (as in asyncio), t is NOT released and the call returns
 * -ECANCELED (or -ETIMEDOUT): await or detach t again later.
 * Errors: -EINVAL (NULL, a released task, a task awaiting itself, a
 * detached task or a group member), -EBUSY (another task already awaits t),
 * -EPERM (not in a task on t's loop). */
TIDE_API int tide_await(tide_task *t);
/* Nobody will await t: it is released when it ends; if it fails (returns a
 * negative value other than -ECANCELED) a line naming it goes to stderr.
 * The handle must not be used once t may have ended.
 * Errors: -EINVAL (NULL, released, or a group member), -EBUSY (a task
 * awaits t). */
TIDE_API int tide_detach(tide_task *t);
/* tide_await for a task that hands back a pointer as well as its int
 * (tide_task_set_ptr): returns t's result and stores its pointer result in
 * *ptr (NULL if it set none, or if the call fails).  Nothing is allocated:
 * the pointer lives in the task.  Errors: as tide_await. */
TIDE_API int tide_await_ptr(tide_task *t, void **ptr);
/* Sets the pointer result of the current task (the last call wins), handed
 * to tide_await_ptr, to tide_task_ptr and to the task's future.  The int it
 * returns is its result as before.  Errors: -EPERM (not in a task). */
TIDE_API int tide_task_set_ptr(void *ptr);
/* The pointer result t has set so far (NULL if none, or t not live). */
TIDE_API void *tide_task_ptr(const tide_task *t);
/* asyncio's "a task is a future": the future of task t, made on the first
 * call (the same one afterwards).  It is done when t ends: with t's
 * pointer result as its value and t's int result (>= 0) as what
 * tide_future_await / tide_future_result return, with t's error if t
 * failed, cancelled if t ended with -ECANCELED.  Any number of tasks may
 * await it, its done callbacks are t's done callbacks, and
 * tide_future_cancel on it cancels t (it is done once t has ended).  It
 * belongs to t: tide_future_set_result / _set_error on it are -EINVAL,
 * tide_future_free on it does nothing, and it is freed when t
 * is released (tide_await, detach, group): do not use it after that.
 * Waiting on it does not take t's result: t must still be awaited,
 * detached or in a group.  Errors: -EINVAL (NULL, released task), -ENOMEM,
 * -EPERM (not t's loop thread). */
TIDE_API int tide_task_future(tide_task *t, tide_future **f);

/* Requests cancellation of t (level-triggered, see top).  A task that has not
 * started yet never runs and ends with -ECANCELED.  Cancelling twice, or a
 * task that already ended, is harmless.  Errors: -EINVAL (NULL/released),
 * -EPERM (called on another thread than the loop's: cancel it from a
 * tide_call_soon_threadsafe callback). */
TIDE_API int tide_cancel(tide_task *t);
/* The task running on this thread, or NULL outside a task. */
TIDE_API tide_task *tide_current_task(void);

typedef enum tide_task_state {
    TIDE_TASK_CREATED = 0, /* not started yet */
    TIDE_TASK_READY,       /* runnable, waiting for its turn */
    TIDE_TASK_RUNNING,     /* the current task */
    TIDE_TASK_WAITING,     /* suspended on a timer, a future, I/O, ... */
    TIDE_TASK_DONE         /* ended, not released yet */
} tide_task_state;

/* The task's name (its option, or "task-<id>"); "?" for NULL or a
 * released task. */
TIDE_API const char *tide_task_name(const tide_task *t);
/* The task's id, unique within its loop, from 1; 0 for NULL or a released
 * task. */
TIDE_API uint64_t tide_task_id(const tide_task *t);
/* Where the task is in its life; TIDE_TASK_DONE for NULL or a released
 * task. */
TIDE_API tide_task_state tide_task_get_state(const tide_task *t);
/* 1 if cancellation was requested, else 0 (also for NULL or a released
 * task).  Never fails. */
TIDE_API int tide_task_cancelled(const tide_task *t);
/* The name of a state ("created", "ready", "running", "waiting", "done");
 * "?" for a value that is none of them. */
TIDE_API const char *tide_task_state_name(tide_task_state s);

typedef struct tide_task_info {
    const tide_task *task;
    uint64_t id;
    const char *name; /* valid while the task is */
    tide_task_state state;
    size_t stack_size;
    int cancelled;
} tide_task_info;

/* Lists the live (not yet released) tasks of loop (NULL: current loop), in
 * creation order.  Fills at most cap entries of out and returns how many
 * tasks are live (call with cap 0 to count).  Errors: -EINVAL. */
TIDE_API ssize_t tide_task_list(tide_loop *loop, tide_task_info *out, size_t cap);

/* Suspends the current task for ms milliseconds; tide_sleep(0) yields to the
 * other ready tasks (round-robin).  Returns 0, -ECANCELED, -ETIMEDOUT (a
 * timeout scope expired), -EPERM (not in a task), -EINVAL (ms < 0),
 * -ENOMEM (no room for the timer). */
TIDE_API int tide_sleep(int64_t ms);

/* tide_sleep in nanoseconds (sub-millisecond waits: the poller's timeout
 * is as fine as the system allows, epoll_pwait2 or a rounded-up ms).
 * tide_sleep_ns(0) yields as tide_sleep(0).  Errors: as tide_sleep. */
TIDE_API int tide_sleep_ns(int64_t ns);

/* Waits for all n tasks and releases them.  results (may be NULL) receives
 * each task's result.  Returns 0, or the first failure in array order.
 * If the caller is cancelled (or times out) while waiting, every task not yet
 * ended is cancelled and waited for (all are released) and the call returns
 * -ECANCELED (-ETIMEDOUT).  Errors (nothing is waited for then): -EINVAL
 * (as tide_await, or a task listed twice), -EBUSY (another task awaits one
 * of them), -EPERM. */
TIDE_API int tide_gather(tide_task **ts, size_t n, int *results);

/* Waits for t at most timeout_ms.  On timeout t is cancelled and waited for,
 * and the call returns -ETIMEDOUT.  t is always released.  If the caller is
 * cancelled meanwhile t is cancelled, waited for, and -ECANCELED returned.
 * Errors: -EINVAL, -EBUSY, -EPERM as tide_await. */
TIDE_API int tide_wait_for(tide_task *t, int64_t timeout_ms);

/* ------------------------------------------------- cancel scopes/timeouts */

/* A cancel scope, kept on the caller's stack.  Scopes nest per task and must
 * end in reverse order of their begin, in the function that began them.
 * A scope left open when that function returns would leave the task linked
 * to a dead frame (a later suspension reads it, a deadline writes into it):
 * this is reported instead -- when the task returns with a scope open, or
 * when a later scope or suspending call finds the dead one -- as a stack
 * overflow is: a line naming the task and the kind of scope on stderr, then
 * abort().  So is beginning a scope that is still open. */
typedef struct tide_scope {
    struct tide_scope *parent; /* private */
    tide_task *task;           /* private */
    int64_t deadline;          /* private: ns on the monotonic clock, INT64_MAX = none */
    int flags;                 /* private */
    unsigned check;            /* private: tells a live scope from a dead frame's */
} tide_scope;

/* Every suspending call of the current task inside the scope fails with
 * -ETIMEDOUT once ms milliseconds have passed (asyncio.timeout, Trio's
 * move_on_after).  Nested scopes: the earliest deadline wins.
 * Errors: -EINVAL (s NULL), -EPERM (not in a task). */
TIDE_API int tide_timeout_begin(tide_scope *s, int64_t ms);
/* As tide_timeout_begin with an absolute deadline in tide_now() ms. */
TIDE_API int tide_deadline_begin(tide_scope *s, int64_t deadline_ms);
/* Ends a timeout scope.  Returns -ETIMEDOUT if this scope's deadline
 * interrupted (or refused) a suspending call, -ECANCELED if its
 * tide_scope_cancel did, else 0.
 * Errors: -EINVAL (s NULL, a shield, already ended, or not the innermost
 * scope of the calling task: nothing is ended then). */
TIDE_API int tide_timeout_end(tide_scope *s);

/* tide_timeout_begin with a duration / an absolute deadline (tide_now_ns)
 * in nanoseconds.  Errors: -EINVAL, -EPERM. */
TIDE_API int tide_timeout_begin_ns(tide_scope *s, int64_t ns);
TIDE_API int tide_deadline_begin_ns(tide_scope *s, int64_t deadline_ns);
/* Trio's CancelScope.cancel(): cancels the open scope s (a timeout scope
 * or a shield) on its own: every suspending call of its task inside s
 * fails with -ECANCELED (level-triggered, until s ends), and a call waiting
 * now wakes with -ECANCELED unless a shield opened inside s covers it.  The
 * task itself is not cancelled: once s ends its calls work again, and
 * tide_timeout_end(s) returns -ECANCELED if the cancel cut a call short.
 * A shield's cancel applies inside the shield.  Any task (or callback) of
 * the loop may call it, e.g. with a scope another task shared; twice is
 * harmless.  Errors: -EINVAL (s NULL, not open: never begun or ended),
 * -EPERM (not on the loop's thread). */
TIDE_API int tide_scope_cancel(tide_scope *s);
/* 1 if tide_scope_cancel was called on the open scope s, else 0.
 * Errors: -EINVAL, -EPERM as tide_scope_cancel. */
TIDE_API int tide_scope_cancelled(const tide_scope *s);
/* asyncio's Timeout.reschedule: moves the deadline of the open timeout
 * scope s to deadline_ms (tide_now() ms; INT64_MAX: none), earlier or
 * later, also while its task waits (the wait's timer is armed again) and
 * after the old deadline fired (the scope is not marked expired any more;
 * calls after the new deadline fail again).  Errors: -EINVAL (s NULL, not
 * open, or a shield), -EPERM (not on the loop's thread). */
TIDE_API int tide_scope_reschedule(tide_scope *s, int64_t deadline_ms);
/* The same with the deadline in tide_now_ns() nanoseconds. */
TIDE_API int tide_scope_reschedule_ns(tide_scope *s, int64_t deadline_ns);
/* The deadline of the open scope s in tide_now() ms (INT64_MAX: none, a
 * shield's).  Errors: -EINVAL, -EPERM as tide_scope_cancel. */
TIDE_API int64_t tide_scope_deadline(const tide_scope *s);

/* A shield: inside it, cancellation of the task and the deadlines of the
 * enclosing scopes do not apply (timeouts begun inside it still do).  For
 * cleanup that must finish, like closing a connection politely.
 * Errors: -EINVAL, -EPERM.  tide_shield_end returns 0 or -EINVAL (as
 * tide_timeout_end: s NULL, a timeout scope, already ended, not the
 * innermost). */
TIDE_API int tide_shield_begin(tide_scope *s);
TIDE_API int tide_shield_end(tide_scope *s);

/* --------------------------------------------------------------- futures */

/* Makes a pending future on the current loop.  Errors: -EINVAL, -ENOMEM,
 * -EPERM (no loop runs on this thread). */
TIDE_API int tide_future_new(tide_future **f);
/* As tide_future_new, on a given loop (NULL, or another thread than the
 * loop's: -EPERM). */
TIDE_API int tide_future_new_on(tide_future **f, tide_loop *loop);
/* Frees f.  If it is still pending it is cancelled first (waiters get
 * -ECANCELED, done callbacks still run).  NULL is ignored. */
TIDE_API void tide_future_free(tide_future *f);
/* Completes f.  Errors: -EINVAL, -EALREADY (already done), -EPERM (not the
 * thread of f's loop: complete it from a tide_call_soon_threadsafe
 * callback instead). */
TIDE_API int tide_future_set_result(tide_future *f, void *value);
/* Completes f with an error: err must be a negative errno.
 * Errors: -EINVAL (NULL or err >= 0), -EALREADY, -EPERM (as set_result). */
TIDE_API int tide_future_set_error(tide_future *f, int err);
/* Cancels f (waiters get -ECANCELED).  Errors: -EINVAL, -EALREADY, -EPERM. */
TIDE_API int tide_future_cancel(tide_future *f);
/* 1 if f is done (result, error or cancelled), 0 if pending (or f is
 * NULL).  Never fails. */
TIDE_API int tide_future_done(const tide_future *f);
/* Runs cb(f, arg) from the loop (call_soon) once f is done; at once (on the
 * next iteration) if it is done already.  Errors: -EINVAL, -ENOMEM, -EPERM
 * (not the loop's thread). */
TIDE_API int tide_future_add_done_callback(tide_future *f, tide_future_cb cb, void *arg);
/* Waits for f.  Returns 0 and stores the result in *value (if value is not
 * NULL), the error given to set_error, -ECANCELED if f was cancelled or the
 * task is, -ETIMEDOUT if a timeout scope expires.  Several tasks may await
 * the same future.  Errors: -EINVAL (NULL or freed), -EPERM (not in a task
 * on f's loop, as tide_await). */
TIDE_API int tide_future_await(tide_future *f, void **value);
/* The result of a done future, as tide_future_await would return it, without
 * waiting; -EAGAIN if f is pending. */
TIDE_API int tide_future_result(const tide_future *f, void **value);

/* ------------------------------------------------------------ fds (I/O) */

/*
 * Awaitable fds.  The fd is made non-blocking and registered with the loop's
 * poller on first use (edge-triggered, once).  Each call tries the syscall
 * first and suspends only when the kernel says EAGAIN.  Every call is a
 * cancellation point: a cancelled task gets -ECANCELED (-ETIMEDOUT past a
 * scope's deadline) even when the fd is ready.  At most one task may wait to
 * read and one to write on an fd: another gets -EBUSY.  An fd used here
 * must be closed with tide_close (or tide_fd_forget before close()).
 * For a tty or a pipe the fd gets an open file description of its own first
 * (Linux), so other holders of an inherited stdin never see O_NONBLOCK.
 * A regular file (or a device the poller cannot watch, such as /dev/null)
 * is always ready: calls on it make the syscall and never wait.
 * All return -EPERM outside a task (but tide_shutdown, tide_close and
 * tide_fd_forget, which never wait), -EBADF for fd < 0, -EINVAL for a NULL
 * buffer with a non-zero length, or the syscall's -errno.
 *
 * Fairness (a cooperative I/O budget, as in Tokio): a task whose fds always
 * have data or room would never suspend and would starve every other task.
 * So after 128 calls in a row that did not suspend, the next call that
 * would not wait first yields (the task goes to the back of the ready
 * queue, as with tide_sleep(0), and the loop polls), then proceeds.  The
 * count restarts whenever the task really suspends (waiting for an fd, a
 * sleep, an await...), so a task that waits anyway never pays for it.  A
 * cancellation that comes during that yield makes the call return
 * -ECANCELED having done nothing.
 */

/* Wait until fd is readable / writable; at once if it is already. */
TIDE_API int tide_wait_readable(int fd);
TIDE_API int tide_wait_writable(int fd);

/* read(2)/readv/recv/recvfrom: return as soon as some bytes (or a datagram)
 * arrived: the count, 0 at end of file.  tide_read of 0 bytes returns 0 at
 * once. */
TIDE_API ssize_t tide_read(int fd, void *buf, size_t len);
TIDE_API ssize_t tide_readv(int fd, const struct iovec *iov, int iovcnt);
TIDE_API ssize_t tide_recv(int fd, void *buf, size_t len, int flags);
TIDE_API ssize_t tide_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                               socklen_t *addrlen);

/* write/writev/send/sendfile write everything before they return (like Go's
 * Write): len, or, when an error or cancellation comes after part of it was
 * written, the count written so far (the next call reports the error).
 * Writing to a closed peer returns -EPIPE: SIGPIPE never kills the process
 * (sends use MSG_NOSIGNAL, and a loop sets SIGPIPE to SIG_IGN if the program
 * left it at SIG_DFL, as Python does). */
TIDE_API ssize_t tide_write(int fd, const void *buf, size_t len);
TIDE_API ssize_t tide_writev(int fd, const struct iovec *iov, int iovcnt);
TIDE_API ssize_t tide_send(int fd, const void *buf, size_t len, int flags);
/* One datagram, all or nothing. */
TIDE_API ssize_t tide_sendto(int fd, const void *buf, size_t len, int flags,
                             const struct sockaddr *addr, socklen_t addrlen);
/* sendfile(2) of count bytes from the file in_fd (at *offset if offset is
 * not NULL, advanced; else from its position, advanced) to out_fd, usually
 * a socket (where the system's sendfile takes only sockets, or there is
 * none, tide copies through a small buffer).  Past the end of the file it
 * returns at once what there was: 0 at the end. */
TIDE_API ssize_t tide_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);

/* accept(2): the new connection, non-blocking and close-on-exec (accept4
 * where there is one).  A connection the peer gave up before it was taken
 * is skipped. */
TIDE_API int tide_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
/* connect(2), waiting for the handshake.  -ECONNREFUSED, -ETIMEDOUT, ... */
TIDE_API int tide_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
/* shutdown(2); never waits.  Errors: -EBADF (fd < 0), or its -errno. */
TIDE_API int tide_shutdown(int fd, int how);
/* Wakes the tasks waiting on fd with -EBADF, unregisters it, closes it. */
TIDE_API int tide_close(int fd);
/* As tide_close without closing: tide forgets fd (call it before handing
 * fd to code that closes it with close()). */
TIDE_API int tide_fd_forget(int fd);

/* --------------------------------------------------------------- sockets */

/* Name-resolution failures (getaddrinfo's EAI_* codes) come back as
 * TIDE_EAI_BASE minus the code's magnitude; tide_strerror names them.
 * TIDE_EAI_NONAME (host or service not known) is the common one. */
#define TIDE_EAI_BASE (-10000)
/* <netdb.h> hides the EAI_* codes from strict ISO C on glibc: there the
 * known magnitude of EAI_NONAME stands in (src/net.c checks it). */
#if defined(__GLIBC__)
#define TIDE__EAI_NONAME_ABS 2 /* EAI_NONAME is -2 */
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__OpenBSD__) || defined(__DragonFly__) || defined(__BIONIC__)
#define TIDE__EAI_NONAME_ABS 8 /* EAI_NONAME is 8 */
#endif
#if defined(EAI_NONAME) || !defined(TIDE__EAI_NONAME_ABS)
#define TIDE_EAI_NONAME (TIDE_EAI_BASE - ((EAI_NONAME) < 0 ? -(EAI_NONAME) : (EAI_NONAME)))
#else
#define TIDE_EAI_NONAME (TIDE_EAI_BASE - TIDE__EAI_NONAME_ABS)
#endif
#define TIDE_IS_EAI(err) ((err) <= TIDE_EAI_BASE && (err) > TIDE_EAI_BASE - 1000)

/* getaddrinfo(3) on the worker pool (a numeric host needs no lookup and is
 * resolved in place).  Free *res with freeaddrinfo().  A cancelled lookup
 * returns -ECANCELED at once; its late result is freed for you.
 * Errors: -EINVAL, -EPERM (a lookup outside a task), -ENOMEM, a TIDE_EAI
 * code, -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res);

/* asyncio's loop.getnameinfo: getnameinfo(3) on the worker pool: the host
 * name (or numeric address with NI_NUMERICHOST) and the service of sa into
 * host / serv (either may be NULL, not both), NUL-terminated.  flags are
 * getnameinfo's NI_* flags.  A cancelled call returns -ECANCELED at once
 * (the worker's late answer is dropped).  Errors: -EINVAL (sa NULL, salen
 * 0 or too long, both outputs NULL, a zero length), -EPERM (outside a
 * task), -ENOMEM, -ENOSPC (an output too small), a TIDE_EAI code
 * (TIDE_EAI_NONAME: no name and NI_NAMEREQD), -EAFNOSUPPORT-like
 * TIDE_EAI codes for an unknown family, -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                              size_t hostlen, char *serv, size_t servlen, int flags);

typedef struct tide_listen_opts {
    int backlog;   /* listen(2) backlog; 0: 511 */
    int reuseport; /* SO_REUSEPORT: several loops (one per core) share the port */
} tide_listen_opts;

/* Fills *o with the defaults (backlog 511, no SO_REUSEPORT).  NULL is
 * ignored. */
TIDE_API void tide_listen_opts_init(tide_listen_opts *o);

/* A listening TCP socket on host:port (host NULL: "0.0.0.0"; port 0: any,
 * see tide_sock_port), SO_REUSEADDR set, non-blocking.  Returns the fd.
 * Errors: -EINVAL (port out of range), -EADDRINUSE, a TIDE_EAI code, ... */
TIDE_API int tide_tcp_listen(const char *host, int port, const tide_listen_opts *o);
/* Connects to host:port, racing the resolved addresses (IPv6 and IPv4
 * interleaved, a new attempt every 250 ms or when one fails: Happy Eyeballs,
 * RFC 8305).  Returns the connected fd (non-blocking).
 * Errors: -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, a TIDE_EAI code, ... */
TIDE_API int tide_tcp_connect(const char *host, int port);
/* A UDP socket bound to host:port (host NULL: "0.0.0.0"; port 0: any).
 * Returns the fd.  Errors: -EINVAL (port out of range), -EADDRINUSE, a
 * TIDE_EAI code, or the errno of socket/bind. */
TIDE_API int tide_udp_bind(const char *host, int port);
/* A listening / connected Unix stream socket.  On Linux a path starting
 * with '@' names the abstract namespace.  -ENAMETOOLONG for a long path;
 * connect returns -EAGAIN when the listener's backlog is full (the kernel
 * does not queue Unix connects; libuv and Go report the same). */
TIDE_API int tide_unix_listen(const char *path, const tide_listen_opts *o);
TIDE_API int tide_unix_connect(const char *path);
/* Sets TCP_NODELAY.  Errors: -EBADF (fd < 0), or the errno of setsockopt
 * (-ENOTSOCK, -EOPNOTSUPP...). */
TIDE_API int tide_tcp_nodelay(int fd, int on);
/* The local port of a bound IPv4/IPv6 socket.  Errors: -EBADF (fd < 0),
 * -EAFNOSUPPORT (not an IP socket), or the errno of getsockname. */
TIDE_API int tide_sock_port(int fd);

/* ------------------------------------------------------------ streams */

/*
 * Buffered streams, like asyncio's StreamReader + StreamWriter, over a
 * socket, pipe or tty.  Reads fill a buffer of up to the stream's limit in
 * one syscall and serve small reads from it; writes never wait (what the
 * kernel does not take at once is queued and flushed by the loop) and
 * drain is the backpressure.  A buffer is held only while it holds bytes,
 * so idle streams cost little memory.
 *
 * Every call that may suspend returns -EPERM outside a task (or in a task
 * of another loop), -EINVAL for a NULL stream, -EBADF for a stream that was
 * closed (a stale handle: tide detects it as far as C allows), or whose fd
 * was closed under it (tide_close on its number: the stream never touches
 * the fd that reused the number), and is a cancellation point: -ECANCELED,
 * -ETIMEDOUT (a scope's deadline).  One task may read at a time: a read
 * call while another task is inside one gets -EBUSY (no byte is ever given
 * twice or lost).  Read errors of the transport: -ECONNRESET, -EIO, ...
 * Write errors stick: the first one (-EPIPE, -ECONNRESET, -ENOMEM,
 * -ETIMEDOUT from the write timeout) drops what is queued and every later
 * write, drain, flush and close returns it.
 */

typedef struct tide_stream tide_stream;

typedef struct tide_stream_opts {
    size_t limit;      /* read buffer limit: the longest line readline accepts; 0: 64 KiB */
    size_t high_water; /* drain waits while more than this is queued; 0: 64 KiB */
    size_t low_water;  /* ... until no more than this is (16 KiB by default) */
    int64_t write_timeout_ms; /* drain, flush and the flush at close fail with
                                 -ETIMEDOUT (sticky) once no byte could be written
                                 for this long; 0: no timeout (the default) */
} tide_stream_opts;

/* Fills *o with the defaults (limit and high water 64 KiB, low water
 * 16 KiB, no write timeout).  NULL is ignored. */
TIDE_API void tide_stream_opts_init(tide_stream_opts *o);

/* A buffered stream over fd (a socket, pipe, tty...).  The stream owns fd
 * from now on: closing the stream closes it.  Errors: -EINVAL (s NULL,
 * low_water > high_water, write_timeout_ms < 0), -EBADF, -EPERM (no loop
 * runs on this thread), -ENOMEM. */
TIDE_API int tide_stream_open(tide_stream **s, int fd, const tide_stream_opts *o);
/* Connects to host:port (tide_tcp_connect, TCP_NODELAY on) and opens a
 * stream over the connection. */
TIDE_API int tide_open_connection(const char *host, int port, tide_stream **s);
/* The stream's fd.  Errors: -EINVAL, -EBADF. */
TIDE_API int tide_stream_fd(const tide_stream *s);
/* Bytes read and not yet consumed; bytes queued to write, counting those of
 * an io_uring send still in flight (0 for a closed stream). */
TIDE_API size_t tide_stream_buffered(const tide_stream *s);
TIDE_API size_t tide_stream_write_pending(const tide_stream *s);
/* 1 if the peer finished sending and every byte was consumed (asyncio's
 * at_eof: a read has seen the end), 0 if not.  Errors: -EINVAL, -EBADF. */
TIDE_API int tide_stream_at_eof(const tide_stream *s);
/* The address of the other end / of this end of the stream's connection,
 * as getpeername / getsockname: *len is the room in addr on entry and the
 * address's length on return (a struct sockaddr_storage fits any).
 * Errors: -EINVAL (a NULL argument), -EBADF, -ENOTSOCK (not a socket: a
 * pipe, a tty), -ENOTCONN. */
TIDE_API int tide_stream_peer_addr(const tide_stream *s, struct sockaddr *addr, socklen_t *len);
TIDE_API int tide_stream_local_addr(const tide_stream *s, struct sockaddr *addr, socklen_t *len);

/* Reads up to n bytes: the count, 0 at end of file (EOF is never an error).
 * Errors: see above; -EINVAL (buf NULL with n > 0). */
TIDE_API ssize_t tide_stream_read(tide_stream *s, void *buf, size_t n);
/* Reads exactly n bytes: n, or fewer if end of file came first (the bytes
 * before it are in buf).  On an error nothing read is lost: the bytes go
 * back to the stream's buffer.  Errors: as tide_stream_read. */
TIDE_API ssize_t tide_stream_readexactly(tide_stream *s, void *buf, size_t n);
/* Reads until end of file (asyncio's read(-1)) into a new buffer: the
 * length, with *out a malloc'd copy of the bytes plus a NUL (free it with
 * free()), 0 and an empty string at EOF.  With max > 0, stops after max
 * bytes (the rest stays in the stream; tide_stream_at_eof tells whether the
 * end came).  On an error *out is NULL and nothing read is lost: the bytes
 * go back to the stream's buffer.  Errors: as tide_stream_read; -EINVAL
 * (out NULL), -ENOMEM. */
TIDE_API ssize_t tide_stream_read_all(tide_stream *s, char **out, size_t max);
/* Reads up to and including the delimiter into buf: the length.  At end of
 * file, the last unterminated piece (0 once nothing is left).  Fails, with
 * every byte kept in the stream, with -EMSGSIZE if no delimiter comes
 * within the stream's limit, or -ENOBUFS if the piece is longer than cap.
 * Errors: as tide_stream_read; -EINVAL (delim NULL or dlen 0, buf NULL
 * with cap > 0). */
TIDE_API ssize_t tide_stream_readuntil(tide_stream *s, const void *delim, size_t dlen, void *buf,
                                       size_t cap);
/* A delimiter for tide_stream_readuntil_any. */
typedef struct tide_stream_delim {
    const void *data;
    size_t len; /* > 0 */
} tide_stream_delim;
/* tide_stream_readuntil with several delimiters: reads the shortest piece
 * that ends with any of them (asyncio's readuntil with a tuple) and sets
 * *which (if not NULL) to the index of the delimiter that ended it (of
 * those ending at the same byte, the longest: "\r\n" rather than "\n"), or
 * -1 for the unterminated piece at end of file.  Errors: as
 * tide_stream_readuntil; -EINVAL (no delimiters, one NULL or empty). */
TIDE_API ssize_t tide_stream_readuntil_any(tide_stream *s, const tide_stream_delim *delims,
                                           size_t ndelims, void *buf, size_t cap, int *which);
/* tide_stream_readuntil with "\n". */
TIDE_API ssize_t tide_stream_readline(tide_stream *s, char *buf, size_t cap);

/* Queues n bytes (written at once when nothing is queued and the kernel
 * takes them); never waits.  On a stream socket of a loop on the io_uring
 * poller with completion operations (docs/io_uring.md, stage 3) nothing is
 * written at once: what the task's step queued goes out as one send
 * through the ring when the step ends, and an error of that send shows on
 * the next call.  Returns n: all of them are accepted, or an
 * error is returned, which sticks (never a short count).  Follow with
 * tide_stream_drain to respect backpressure.  Errors: -EINVAL (buf NULL
 * with n > 0), -EBADF, -EPIPE (after tide_stream_write_eof), the stream's
 * write error (-EPIPE, -ECONNRESET...), -ENOMEM (the queue could not grow:
 * sticky, since part of the bytes may have gone out). */
TIDE_API ssize_t tide_stream_write(tide_stream *s, const void *buf, size_t n);
/* tide_stream_write of several buffers (asyncio's writelines), in one
 * syscall (or ring send) when nothing is queued: their total, or an error as
 * tide_stream_write.  Errors: also -EINVAL (iov NULL with iovcnt > 0,
 * iovcnt < 0, a NULL buffer with a length, a total over SSIZE_MAX). */
TIDE_API ssize_t tide_stream_writev(tide_stream *s, const struct iovec *iov, int iovcnt);
/* Half-close (asyncio's write_eof): once everything queued is written, the
 * write side is shut (the peer reads EOF); reading goes on.  Never waits
 * (tide_stream_flush waits for it); a second call does nothing.  Later
 * writes fail with -EPIPE.  Returns 0, or the stream's write error, which
 * the shutdown's own error (-ENOTSOCK for a pipe or tty, -ENOTCONN) joins
 * and sticks.  Errors: -EINVAL, -EBADF. */
TIDE_API int tide_stream_write_eof(tide_stream *s);
/* If more than the high-water mark is queued, waits until no more than the
 * low-water mark is.  0, the write error, -ETIMEDOUT (the write timeout:
 * sticky; or a scope's deadline), -ECANCELED, -EBUSY (another task waits in
 * drain or flush of s). */
TIDE_API int tide_stream_drain(tide_stream *s);
/* Waits until everything queued is written.  Errors: as tide_stream_drain. */
TIDE_API int tide_stream_flush(tide_stream *s);
/* Flushes what is queued (waiting, within the task's cancel scopes and the
 * write timeout), closes the fd and releases the stream: the handle is
 * stale from here on (another call with it gets -EBADF).  A task blocked in
 * another call on s wakes with -EBADF.  Returns 0, or the write error / why
 * the flush was cut short (-ECANCELED, -ETIMEDOUT; -EAGAIN outside a task,
 * where only what the kernel takes at once is written, and an io_uring send
 * in flight is cancelled: the peer gets a prefix); the stream is
 * closed in every case.  Errors: -EINVAL, -EBADF (closed already). */
TIDE_API int tide_stream_close(tide_stream *s);

/* ------------------------------------------------------------ servers */

typedef struct tide_server tide_server;

/* Runs in a task of its own for each connection.  The server closes the
 * stream when the handler returns (the handler must not close it). */
typedef int (*tide_server_handler)(tide_stream *s, void *arg);

typedef struct tide_server_opts {
    int backlog;            /* 0: 511 */
    int reuseport;          /* SO_REUSEPORT (TCP) */
    int nodelay;            /* TCP_NODELAY on accepted sockets (default 1) */
    size_t max_connections; /* 0: no limit; at the limit, accept waits */
    size_t stack_size;      /* of connection tasks; 0: the default */
    tide_stream_opts stream; /* for the connections' streams (limit 0: defaults) */
    int64_t write_timeout_ms; /* each connection's write timeout (see
                                 tide_stream_opts): a peer that does not read for
                                 this long is dropped, at drain or flush or at the
                                 close after the handler returned.  Default 30 000
                                 (tide_server_opts_init); 0: none (or what
                                 stream.write_timeout_ms says) */
} tide_server_opts;

/* The defaults: backlog 511, nodelay 1, write_timeout_ms 30 000, the rest
 * 0. */
TIDE_API void tide_server_opts_init(tide_server_opts *o);

/* asyncio.start_server: listens on host:port (host NULL: 127.0.0.1; port
 * 0: any, see tide_server_port) and runs handler(stream, arg) in a new task
 * per connection.  Errors: as tide_tcp_listen, -EINVAL, -EPERM, -ENOMEM. */
TIDE_API int tide_start_server(const char *host, int port, tide_server_handler handler, void *arg,
                               const tide_server_opts *o, tide_server **srv);
/* asyncio.start_unix_server: the same on a Unix stream socket at path (on
 * Linux, a path starting with '@' names the abstract namespace).  A stale
 * socket file (one nobody listens on any more) is replaced; the file is
 * removed when the server closes.  reuseport and nodelay do not apply.
 * Errors: -EINVAL, -ENAMETOOLONG, -EADDRINUSE (a server listens there, or
 * the path is not a socket), -EPERM, -ENOMEM, bind/listen errors. */
TIDE_API int tide_start_unix_server(const char *path, tide_server_handler handler, void *arg,
                                    const tide_server_opts *o, tide_server **srv);
/* The port of a TCP server.  Errors: -EINVAL, -EAFNOSUPPORT (a Unix
 * server). */
TIDE_API int tide_server_port(const tide_server *srv);
/* How many connections the server has open now (0 for NULL). */
TIDE_API size_t tide_server_connections(const tide_server *srv);

#define TIDE_SERVER_WAIT 0   /* let the connection handlers finish */
#define TIDE_SERVER_CANCEL 1 /* cancel them, then wait for them */

/* Stops accepting, closes the listening socket, waits for the connection
 * tasks (cancelling them first with TIDE_SERVER_CANCEL) and frees srv.  If
 * the caller is cancelled during a graceful wait, the connections are
 * cancelled and still waited for, and the error returned.
 * Errors: -EINVAL, -EPERM, -EALREADY, -EDEADLK (called from one of the
 * server's own connection handlers). */
TIDE_API int tide_server_close(tide_server *srv, int how);

/* ----------------------------------------------------------- worker pool */

/* asyncio.to_thread(): runs fn(arg) on a worker thread while the current
 * task waits, and returns fn's result.  The pool has 4 threads by default
 * (environment TIDE_THREADPOOL_SIZE, 1..128), started on first use.
 * If the task is cancelled while it waits the call returns -ECANCELED at once;
 * fn still runs to its end on the worker and its result is dropped, so arg
 * must stay valid until fn returns (ownership passes to fn).  A task already
 * cancelled when it calls gets -ECANCELED and fn is not run.
 * Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT, -ENOMEM, -EAGAIN
 * (no worker thread could be started). */
TIDE_API int tide_to_thread(tide_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

/* The rest of the API, by topic. */
#include "tide/sync.h"    /* task groups, wait/as_completed, locks, events, queues, task-locals */
#include "tide/signal.h"  /* signals */
#include "tide/fs.h"      /* files, on the worker pool */
#include "tide/process.h" /* subprocesses */
#include "tide/http.h"    /* HTTP/1.1 heads and chunked bodies, parsed in place */
#include "tide/testing.h" /* virtual time and seeded ordering, for tests */
#include "tide/ws.h"      /* WebSocket (RFC 6455) */
#include "tide/guard.h"   /* "async with": TIDE_WITH_TIMEOUT, _LOCK, _GROUP... blocks */
#include "tide/resp.h"    /* RESP2 (Redis protocol), parsed in place */
#include "tide/multi.h"   /* one loop per core, cross-loop calls */
#include "tide/debug.h"   /* task dumps, debug mode, loop metrics, exception handler */

#endif /* TIDE_H */
