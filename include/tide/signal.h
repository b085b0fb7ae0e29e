/*
 * tide: signals.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_SIGNAL_H
#define TIDE_SIGNAL_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ signals */

/* Waits for one of the signals in set and returns its number.  The signals
 * are blocked in the calling thread while it waits (Linux: signalfd).  A
 * signal that arrives while nobody waits gets its usual disposition: block
 * the signals in main (pthread_sigmask) before tide_run so none is missed.
 * A signal that has a handler (tide_signal_handler_add) goes to the handler,
 * so waiting for it is refused.
 * Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT, -EBUSY (a signal of set
 * has a handler; or, without signalfd, another task is waiting already). */
TIDE_API int tide_signal_wait(const sigset_t *set);

/*
 * loop.add_signal_handler(): from now on, every delivery of signo runs
 * cb(arg) on the current loop, as a plain callback of the loop (never in
 * signal context, so cb may do anything a loop callback may: create tasks,
 * set futures and events, call tide_loop_stop...).  One call per delivery,
 * except that the kernel merges instances of a standard signal that arrive
 * while one is still pending, and deliveries that come between two loop
 * iterations may be merged too: count nothing on signals.
 *
 * Linux: signo is blocked in the loop's thread and read from one signalfd
 * per loop (kept up to date as handlers come and go); a process-directed
 * signal that the kernel gives to another thread is forwarded to the loop's
 * thread by a small handler installed for signo.  Elsewhere a handler writes
 * the signal number to a self-pipe the loop reads (all handlers of the
 * process must then belong to one loop).  Either way the program's own
 * handler for signo is replaced while tide handles it, and the handler and
 * the thread's signal mask the program had are restored by
 * tide_signal_handler_remove and when the loop is freed.  Children spawned
 * by tide_process_spawn get the signal mask and dispositions the program
 * had, not tide's.
 *
 * One handler per signal in the whole process: replacing one takes a remove
 * first.  Must be called on a running loop's thread (in a task or a loop
 * callback).
 * Errors: -EINVAL (cb NULL, signo out of 1..NSIG-1, SIGKILL, SIGSTOP, or a
 * fault signal: SIGSEGV, SIGBUS, SIGILL, SIGFPE), -EEXIST (signo has a
 * handler already), -EPERM (no loop runs on this thread), -EBUSY (self-pipe
 * systems: handlers exist on another loop), -ENOMEM, or the errno of
 * signalfd/sigaction/pipe. */
TIDE_API int tide_signal_handler_add(int signo, tide_cb cb, void *arg);

/* Removes the handler of signo: restores the disposition and the signal
 * mask the program had for it.  Deliveries of signo that arrived but whose
 * callback has not run yet are dropped.  Call it on the thread of the loop
 * the handler was added on.
 * Errors: -EINVAL (signo out of range), -ENOENT (no handler for signo),
 * -EPERM (called on another thread than the handler's loop). */
TIDE_API int tide_signal_handler_remove(int signo);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_SIGNAL_H */
