/*
 * tide: seeing inside a running program -- task dumps, debug mode, loop
 * metrics, the handler of detached task failures.
 * Part of the public API; include <tide.h>.  See docs/debugging.md.
 */
#ifndef TIDE_DEBUG_H
#define TIDE_DEBUG_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a suspended task waits on (Go's gopark reasons). */
typedef enum tide_wait_kind {
    TIDE_WAIT_NONE = 0,     /* not waiting, or a wait that named no reason */
    TIDE_WAIT_SLEEP,        /* tide_sleep: a timer */
    TIDE_WAIT_FD_READ,      /* an fd to become readable */
    TIDE_WAIT_FD_WRITE,     /* an fd to become writable */
    TIDE_WAIT_LOCK,         /* a tide_lock */
    TIDE_WAIT_EVENT,        /* a tide_event */
    TIDE_WAIT_COND,         /* a tide_cond */
    TIDE_WAIT_SEM,          /* a tide_sem */
    TIDE_WAIT_BARRIER,      /* a tide_barrier */
    TIDE_WAIT_QUEUE_PUT,    /* room in a full tide_queue */
    TIDE_WAIT_QUEUE_GET,    /* an item of an empty tide_queue */
    TIDE_WAIT_QUEUE_JOIN,   /* tide_queue_join */
    TIDE_WAIT_FUTURE,       /* a tide_future */
    TIDE_WAIT_TASK,         /* another task to end (await, gather, wait_for) */
    TIDE_WAIT_GROUP,        /* a task group's members */
    TIDE_WAIT_TASKS,        /* tide_wait / tide_as_completed */
    TIDE_WAIT_POOL,         /* a job on the worker pool (tide_to_thread, files, DNS) */
    TIDE_WAIT_PROCESS,      /* a subprocess to exit */
    TIDE_WAIT_SIGNAL,       /* a signal */
    TIDE_WAIT_STREAM_DRAIN, /* a stream's write buffer to drain */
    TIDE_WAIT_SERVER,       /* a server's connection slot or its close */
    TIDE_WAIT_CONNECT,      /* a connection race (happy eyeballs) */
    TIDE_WAIT_CALL,         /* tide_multi_call: a call run on another loop */
    TIDE_WAIT__COUNT
} tide_wait_kind;

/* The name of a wait kind ("sleep", "fd-read", "lock", ...); "?" when out
 * of range. */
TIDE_API const char *tide_wait_kind_name(tide_wait_kind k);

/* What a task waits on now: kind, the awaited object's address (a tide_lock,
 * a tide_task...; for fds, NULL and fd set), the fd (-1 if none), and since
 * when (tide_now() milliseconds).  kind is TIDE_WAIT_NONE when the task is
 * not waiting.  Errors: -EINVAL (t or out NULL, t not a live task). */
typedef struct tide_wait_info {
    tide_wait_kind kind;
    const void *object;
    int fd;
    int64_t since_ms;
} tide_wait_info;
TIDE_API int tide_task_wait_info(const tide_task *t, tide_wait_info *out);

/*
 * Writes a dump of every live task of loop (NULL: the running loop) to fd:
 * id, name, state, what it waits on (fd and peer address, timer and time
 * left, the primitive's address...) and for how long, its innermost cancel
 * scope (deadline, cancelled, shielded), its parent (joiner) and group, and
 * the native backtrace of its suspended stack (function+offset and the
 * module+offset addr2line takes).  Tasks with identical stacks are grouped
 * under one stack with a count, like Go's goroutine dumps.  Never switches
 * into a task; call it from the loop's thread (a task, a callback, or
 * between runs).  Frames are found by walking frame pointers: code built
 * with -fomit-frame-pointer shows fewer frames (tide itself is built with
 * frame pointers).
 * Returns 0, or -EINVAL (no loop), -EPERM (another thread's loop), -ENOMEM,
 * or the -errno of a failed write(2).
 */
TIDE_API int tide_loop_dump(tide_loop *loop, int fd);

/* ------------------------------------------------------------ metrics */

typedef struct tide_loop_metrics {
    uint64_t iterations;      /* loop iterations */
    uint64_t events;          /* fd events the poller delivered */
    uint64_t steps;           /* task steps run (debug mode only: 0 else) */
    int64_t idle_ns;          /* time blocked in the poller (debug mode only) */
    int64_t busy_ns;          /* time running tasks and callbacks (debug mode only) */
    int64_t longest_step_ns;  /* the longest task step (debug mode only) */
    uint64_t longest_step_task; /* id of the task that made it */
    uint64_t slow_steps;      /* steps longer than the slow-step threshold (debug mode) */
    uint64_t tasks_created;   /* tasks created on the loop, ever */
    uint64_t tasks_live;      /* tasks not released */
} tide_loop_metrics;

/* Fills *m with loop's counters (NULL loop: the running one).  Iterations,
 * events and tasks are always counted; the timings only in debug mode.
 * Errors: -EINVAL (no loop, m NULL). */
TIDE_API int tide_loop_get_metrics(tide_loop *loop, tide_loop_metrics *m);

/* ---------------------------------------------------- exception handler */

/* Called on the loop's thread when a detached task ends with an error
 * other than -ECANCELED (asyncio's loop.set_exception_handler).  t is still
 * valid during the call (name, id); it is released right after. */
typedef void (*tide_exception_handler)(tide_loop *loop, tide_task *t, int err, void *arg);

/* Sets loop's handler of detached task failures (NULL: back to the default,
 * a line on stderr).  Errors: -EINVAL (loop NULL), -EPERM (not the loop's
 * thread). */
TIDE_API int tide_loop_set_exception_handler(tide_loop *loop, tide_exception_handler h,
                                             void *arg);

/* ---------------------------------------------------------- debug mode */

typedef struct tide_debug_opts {
    int64_t slow_step_ms; /* report steps longer than this while they run (default 100;
                             0: no watchdog) */
    int dump_signal;      /* a signal that dumps every task to report_fd (default
                             SIGQUIT; 0: none) */
    int report_fd;        /* where reports go (default 2, stderr) */
    int watchdog_signal;  /* the signal the watchdog sends the stuck loop thread to
                             take its backtrace (default SIGURG) */
} tide_debug_opts;

/* Fills o with the defaults above. */
TIDE_API void tide_debug_opts_init(tide_debug_opts *o);

/*
 * Turns debug mode on for loop (o NULL: the defaults), as TIDE_DEBUG=1 in
 * the environment does for every new loop:
 *  - a watchdog thread reports, with its backtrace taken while it is still
 *    stuck, any task step that runs longer than slow_step_ms;
 *  - dump_signal dumps every task (tide_loop_dump) while the loop runs;
 *  - tasks and futures remember where they were created, and when the
 *    loop is freed, tasks never awaited nor detached, futures never
 *    awaited (nor read, nor given a callback) and fds still registered are
 *    reported;
 *  - the timings of tide_loop_metrics are kept.
 * Off by default, and free when off.  Call it on the loop's thread, while
 * the loop is not running.
 * Errors: -EINVAL (loop NULL, negative slow_step_ms, bad signal numbers),
 * -EPERM (another thread's loop), -EBUSY (the loop is running, or debug
 * mode is on already), -ENOMEM, -EAGAIN (the watchdog thread could not
 * start).
 */
TIDE_API int tide_loop_set_debug(tide_loop *loop, const tide_debug_opts *o);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_DEBUG_H */
