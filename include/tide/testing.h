/*
 * tide: testing programs deterministically: virtual time and a seeded
 * order of the ready tasks (see docs/testing.md).
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_TESTING_H
#define TIDE_TESTING_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------- virtual time */

/* Flag of tide_loop_set_vclock: when nothing is ready and nothing but
 * timers is waited on, time jumps to the next timer at once (Trio's
 * MockClock autojump, Tokio's paused time). */
#define TIDE_VCLOCK_AUTOJUMP 0x1u

/* Gives the loop a virtual clock starting at 0 ns: every deadline, timer,
 * timeout scope and tide_now() of the loop reads it, and it moves only
 * through tide_vclock_advance or, with TIDE_VCLOCK_AUTOJUMP, when the loop
 * is blocked on timers alone: nothing ready or yielded, nothing posted by
 * another thread, no worker-pool job in flight, no task waiting on an fd, a
 * signal or a subprocess and no signal handler installed.  While any of
 * these is there, time stands still and the poll waits for real events.
 * tide_loop_set_clock (NULL or a clock of the caller's) ends it.
 * Only before the loop has tasks or timers, like tide_loop_set_clock.
 * Errors: -EINVAL (loop NULL, unknown flag), -EBUSY (running, or tasks or
 * timers exist). */
TIDE_API int tide_loop_set_vclock(tide_loop *loop, unsigned flags);

/* Moves the loop's virtual clock ns nanoseconds forward, step by step: each
 * timer due by then fires at its own deadline (tide_now() reads it), in
 * deadline order, and what the woken tasks do (new timers within the
 * stretch included) runs before time goes further.  A step is made only
 * when nothing is ready to run.  From a task of the loop the call waits
 * until the clock reached the end of the stretch (it is a cancellation
 * point: 0, -ECANCELED, -ETIMEDOUT from an enclosing scope, -ENOMEM); from
 * anywhere else on the loop's thread (plain code between runs, an embedding
 * host, a callback) it returns 0 at once and the loop's next iterations
 * make the steps (tide_loop_timeout_ms is 0 until they are made).
 * Errors: -EINVAL (loop NULL or not on virtual time, ns < 0), -EPERM (not
 * the loop's thread). */
TIDE_API int tide_vclock_advance(tide_loop *loop, int64_t ns);

/* The loop's virtual time in ns (also outside a run, where tide_now() reads
 * the real clock).  Errors: -EINVAL (loop NULL or not on virtual time). */
TIDE_API int64_t tide_vclock_now(const tide_loop *loop);

/* ----------------------------------------------------- seeded ordering */

/* Runs the loop's ready tasks and callbacks in a random order drawn from
 * seed (seed >= 0): each iteration's batch is shuffled, so a test run under
 * many seeds finds code that depends on an order tide does not promise.
 * The same seed gives the same order in every run of the same program
 * (with virtual time, the same trace).  A negative seed restores the FIFO
 * order.  The environment variable TIDE_SEED=N seeds every new loop, to
 * replay a failing seed without recompiling.  Off by default, and free when
 * off.  May be called at any time.  Errors: -EINVAL (loop NULL), -EPERM
 * (not the loop's thread). */
TIDE_API int tide_loop_set_seed(tide_loop *loop, int64_t seed);

/* The loop's seed (as set, or from TIDE_SEED), or -1 when the order is
 * FIFO.  Errors: -EINVAL (loop NULL). */
TIDE_API int64_t tide_loop_seed(const tide_loop *loop);

#ifdef __cplusplus
}
#endif

#endif
