/*
 * tide: "async with" in C: blocks that cannot forget their cleanup.
 * Part of the public API; include <tide.h>.
 *
 *     int rc;
 *     TIDE_WITH_LOCK(&lock, rc) {          // async with lock:
 *         ... the lock is held here ...
 *         if (done) break;                 //   break and continue leave the block
 *     }                                    // released here, whatever happened
 *     TIDE_WITH_TIMEOUT_RC(500, rc) {      // async with asyncio.timeout(0.5):
 *         n = tide_stream_read(s, buf, sizeof buf);
 *     }
 *     if (rc == -ETIMEDOUT) ...
 *
 * Each macro opens a block (a for statement run at most once): the
 * resource is taken before the body and given back after it, when the body
 * ends, on `break` and on `continue` (which also just leave the block).
 * If taking it fails (a lock acquire cancelled, a group that cannot start)
 * the body does not run and rc holds the error.
 *
 * The rule for `return` (and goto out of the block): with gcc and clang
 * (TIDE_GUARD_CLEANUP is 1) the guard is a variable with
 * __attribute__((cleanup)), so return, goto and break all end it, as
 * Python's `with` does: returning from inside TIDE_WITH_LOCK releases the
 * lock, from inside TIDE_WITH_GROUP waits for the group first.  Other
 * compilers have no such hook: there a return inside the block skips the
 * cleanup.  tide detects it for timeouts, shields and groups (the scope or
 * group left open is reported and the process aborts, see tide_scope) but
 * cannot for a lock or a semaphore (it stays taken), so code meant for
 * them must leave these blocks with break only.  Two guards on one source
 * line are not allowed (their hidden variables are named by the line);
 * nesting on separate lines is fine.
 */
#ifndef TIDE_GUARD_H
#define TIDE_GUARD_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A guard's state (private: use the macros). */
typedef struct tide_guard {
    int kind;        /* private */
    int entered;     /* private: taken, to be given back */
    int *rc;         /* private: where the outcome goes, or NULL */
    void *obj;       /* private: the lock, semaphore, group, stream */
    tide_scope scope; /* private: timeout and shield guards */
} tide_guard;

/* The guard steps, called by the macros: each enter returns 1 if the body
 * runs (the resource is taken) and 0 if it must be skipped, with the
 * error in *rc (when rc is not NULL).  tide_guard_exit gives the resource
 * back once (a second call does nothing) and stores the outcome in *rc:
 * tide_timeout_end's (0, -ETIMEDOUT, -ECANCELED), tide_group_wait's,
 * tide_stream_close's, 0 for a lock or a semaphore (or the release error).
 * The errors of each enter are those of the call it makes:
 * tide_timeout_begin, tide_shield_begin, tide_lock_acquire,
 * tide_sem_acquire, tide_group_init; -EINVAL for a NULL guard or object. */
TIDE_API int tide_guard_timeout(tide_guard *g, int64_t ms, int *rc);
TIDE_API int tide_guard_shield(tide_guard *g, int *rc);
/* (struct tags: this header may be read while tide/sync.h is still being
 * read, before its typedefs.) */
struct tide_lock;
struct tide_sem;
struct tide_group;
TIDE_API int tide_guard_lock(tide_guard *g, struct tide_lock *l, int *rc);
TIDE_API int tide_guard_sem(tide_guard *g, struct tide_sem *s, int *rc);
TIDE_API int tide_guard_group(tide_guard *g, struct tide_group *grp, int *rc);
TIDE_API int tide_guard_stream(tide_guard *g, tide_stream *s, int *rc);
TIDE_API void tide_guard_exit(tide_guard *g);

#if defined(__GNUC__) || defined(__clang__)
#define TIDE_GUARD_CLEANUP 1
#define TIDE__GUARD_ATTR __attribute__((cleanup(tide_guard_exit)))
#else
#define TIDE_GUARD_CLEANUP 0
#define TIDE__GUARD_ATTR
#endif

#define TIDE__GCAT2(a, b) a##b
#define TIDE__GCAT(a, b) TIDE__GCAT2(a, b)
#define TIDE__GV TIDE__GCAT(tide__guard_, __LINE__)
#define TIDE__GP TIDE__GCAT(tide__guardp_, __LINE__)
#define TIDE__GK TIDE__GCAT(tide__guardk_, __LINE__)

/* The block: the outer for runs tide_guard_exit when the body ends; the
 * inner one makes break and continue leave the body into the outer's
 * step (and, with the cleanup attribute, any way out runs it too). */
#define TIDE__GUARD_BLOCK(enter)                                                            \
    for (tide_guard TIDE__GV TIDE__GUARD_ATTR = {0, 0, 0, 0, {0, 0, 0, 0, 0}},              \
                             *TIDE__GP = (enter) ? &TIDE__GV : (tide_guard *)0;             \
         TIDE__GP; tide_guard_exit(TIDE__GP), TIDE__GP = (tide_guard *)0)                   \
        for (int TIDE__GK = 0; !TIDE__GK; TIDE__GK = 1)

/* asyncio.timeout(ms): the body runs in a timeout scope of ms ms. */
#define TIDE_WITH_TIMEOUT(ms) TIDE__GUARD_BLOCK(tide_guard_timeout(&TIDE__GV, (ms), (int *)0))
/* The same, with tide_timeout_end's result (or the begin's error) in rc. */
#define TIDE_WITH_TIMEOUT_RC(ms, rc) \
    TIDE__GUARD_BLOCK(tide_guard_timeout(&TIDE__GV, (ms), &(rc)))
/* A shield around the body (cancellation and outer deadlines wait). */
#define TIDE_WITH_SHIELD() TIDE__GUARD_BLOCK(tide_guard_shield(&TIDE__GV, (int *)0))
/* async with lock: acquired before, released after; rc: the acquire's
 * error (body skipped) or 0. */
#define TIDE_WITH_LOCK(l, rc) TIDE__GUARD_BLOCK(tide_guard_lock(&TIDE__GV, (l), &(rc)))
/* async with semaphore. */
#define TIDE_WITH_SEM(s, rc) TIDE__GUARD_BLOCK(tide_guard_sem(&TIDE__GV, (s), &(rc)))
/* async with TaskGroup(): g is initialised before the body (spawn into it
 * there) and waited for after it; rc: tide_group_wait's result. */
#define TIDE_WITH_GROUP(g, rc) TIDE__GUARD_BLOCK(tide_guard_group(&TIDE__GV, (g), &(rc)))
/* A stream closed at the end of the block (async with writer): rc gets
 * tide_stream_close's result. */
#define TIDE_WITH_STREAM(s, rc) TIDE__GUARD_BLOCK(tide_guard_stream(&TIDE__GV, (s), &(rc)))

/* Cleanup helpers for variables (gcc and clang only):
 *     tide_stream *s TIDE_AUTO_STREAM = NULL;  // tide_stream_close at scope exit
 * The pointed-to value may be NULL (or -1 for an fd): nothing is done. */
TIDE_API void tide_auto_stream_close(tide_stream **s);
TIDE_API void tide_auto_future_free(tide_future **f);
TIDE_API void tide_auto_fd_close(int *fd);
#if TIDE_GUARD_CLEANUP
#define TIDE_AUTO_STREAM __attribute__((cleanup(tide_auto_stream_close)))
#define TIDE_AUTO_FUTURE __attribute__((cleanup(tide_auto_future_free)))
#define TIDE_AUTO_FD __attribute__((cleanup(tide_auto_fd_close)))
#endif

#ifdef __cplusplus
}
#endif

#endif /* TIDE_GUARD_H */
