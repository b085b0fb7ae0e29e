/*
 * tide: one loop per core.  Part of the public API; include <tide.h>.
 *
 * tide_multi_run runs the same main on N loops, one per thread (loop 0 on
 * the calling thread), as N tide_run calls would.  Servers share a port by
 * listening with reuseport set (tide_server_opts.reuseport): the kernel
 * spreads the connections over the loops.  A task on one loop can run a
 * function on another loop and wait for its result (tide_multi_call).
 *
 * What may cross loops: nothing but the call's argument and result.  Every
 * tide object (task, future, stream, server, lock, queue, event, timer,
 * timeout scope) belongs to the loop that made it and is used on that
 * loop's thread only; tide refuses it elsewhere with -EPERM where it checks
 * (futures, tasks, timers, streams and the loop's calls do).  The argument
 * is the caller's memory: it stays valid while the caller waits, and the
 * caller waits for the remote function to end, even when it is cancelled.
 *
 * Cross-loop calls are batched: the calls and replies a loop makes to
 * another one during one step are handed over under one lock, and the
 * target is woken (a syscall) only when it sleeps in its poller; a busy
 * target finds the batch on its next iteration (Seastar's cross-core
 * queues).
 *
 * Shutdown: a loop whose main returned keeps serving calls from the others
 * until every main has returned; then each loop ends as tide_run does
 * (remaining tasks cancelled and finished).  tide_multi_stop cancels every
 * main at once (from any thread).
 */
#ifndef TIDE_MULTI_H
#define TIDE_MULTI_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most loops tide_multi_run accepts. */
#define TIDE_MULTI_MAX_LOOPS 256

typedef struct tide_multi_opts {
    unsigned loops; /* how many; 0: the CPUs this process may run on (sched_getaffinity) */
    int pin;        /* 1: pin loop i's thread to the i-th of those CPUs (modulo their count) */
} tide_multi_opts;

/* The defaults: loops 0 (one per allowed CPU), pin 0. */
TIDE_API void tide_multi_opts_init(tide_multi_opts *o);

/* Runs main(arg) in a task on each of N loops, each on a thread of its own
 * (loop 0 on the calling thread), and returns when all of them ended: 0 if
 * every main returned >= 0, else the result of the lowest-numbered loop
 * whose main failed.  main learns its loop's number from tide_multi_index.
 * o NULL: the defaults.  Errors (nothing runs then): -EINVAL (main NULL,
 * loops > TIDE_MULTI_MAX_LOOPS), -EBUSY (a loop already runs on this thread
 * or a multi run is going on in this process), -ENOMEM, -EAGAIN (a thread
 * could not be started). */
TIDE_API int tide_multi_run(tide_fn main, void *arg, const tide_multi_opts *o);

/* The number (0..count-1) of the loop running on this thread within the
 * current multi run; -EPERM outside one. */
TIDE_API int tide_multi_index(void);
/* How many loops the current multi run has; -EPERM outside one. */
TIDE_API int tide_multi_count(void);

/* Runs fn(arg) in a new task on loop target of the current multi run
 * (target may be the caller's own loop) and waits for it: returns fn's
 * result.  If the caller is cancelled (or its scope times out) while it
 * waits, the remote task is cancelled, the caller still waits for it to end
 * (arg stays in use until then) and the call returns -ECANCELED
 * (-ETIMEDOUT).  Errors: -EINVAL (fn NULL, target out of range), -EPERM
 * (not in a task of a multi run's loop), -ESHUTDOWN (every main has
 * returned: the loops are ending), -ENOMEM (the remote task could not be
 * made), -ECANCELED, -ETIMEDOUT, or fn's own negative result. */
TIDE_API int tide_multi_call(unsigned target, tide_fn fn, void *arg);

/* Cancels the main task of every loop of the current multi run (mains
 * that already returned are left alone; a main that has not started yet
 * still runs, cancelled: its first suspending call fails with -ECANCELED,
 * and the run ends as usual).  Callable from any thread, also
 * from outside the run (e.g. a signal-handling thread).  Returns 0, or
 * -ESRCH when no multi run is going on. */
TIDE_API int tide_multi_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_MULTI_H */
