/*
 * Completion-based recv and send for tasks (the io_uring backend's stage 2,
 * docs/io_uring.md).
 *
 * On a stream socket whose loop polls with an io_uring that takes
 * operations (f->uring), tide_read / tide_recv / tide_write / tide_send and
 * the fd transport's reads do not make a read or write syscall: the task
 * queues an IORING_OP_RECV or IORING_OP_SEND on its own buffer and waits;
 * the loop's next io_uring_enter submits it together with everything else
 * queued and waits for completions, so a round trip costs no syscall of its
 * own (one enter serves every connection that was served in the
 * iteration).
 *
 * The rule: a buffer on a task's stack is never owned by the kernel after
 * the task returned from the call.  The operation (a uop_wait, on the
 * task's stack beside the buffer) is in flight from the queueing to its
 * completion, and the task does not leave uop_run before the completion
 * came:
 *  - a cancellation, a deadline or a close (tide_close wakes the waiters
 *    with -EBADF) interrupts the wait; the interruption (uop_unlink) asks
 *    the kernel to cancel the operation, now, and the task waits again,
 *    uninterruptibly (TIDE__WAIT_NOCANCEL), until the completion comes: the
 *    cancelled one (-ECANCELED), or the result if it had finished first;
 *  - a recv that finished despite the cancellation returns its bytes (they
 *    were taken from the socket: dropping them would lose data); the
 *    cancellation stays requested and the next call reports it;
 *  - the loop cannot be torn down under a waiting task: tide_loop_free
 *    cancels the tasks and runs them to their end (each through the wait
 *    above), and the ring's free cancels and reaps whatever is still in
 *    flight before unmapping (poll_uring.c), should a task be released
 *    unfinished.
 * The uop_wait is the only state, on the stack: nothing is allocated per
 * operation.
 *
 * One task reads and one writes on an fd at a time, as on the readiness
 * path (f->op_reader / f->op_writer hold the task while its operation is in
 * flight, apart from the readiness waiters, whom poll events wake; a second
 * gets -EBUSY).
 */
#include "tide_int.h"

#include <errno.h>
#include <sys/socket.h>

typedef struct uop_wait {
    tide__uop u;
    tide_task *task; /* woken by the completion; NULL while interrupted */
    tide__fd *f;
    unsigned dir;
    uint8_t linked; /* f's reader / writer slot holds the task */
    size_t len;     /* asked for: a short recv means drained */
    uint32_t gen;   /* f->gen when queued: the fd's, not a later owner's */
} uop_wait;

static void unlink_slot(uop_wait *w)
{
    if (w->linked) {
        if (w->dir == TIDE__EV_IN)
            w->f->op_reader = NULL;
        else
            w->f->op_writer = NULL;
        w->linked = 0;
    }
}

static void uop_done(tide__uop *u)
{
    uop_wait *w = tide__container_of(u, uop_wait, u);
    tide_task *t = w->task;

    /* Readiness changes here, in completion order: a poll report of new
     * bytes that comes after this completion must win over it. */
    if (w->f->gen != w->gen)
        ; /* closed since: the state is a new owner's now */
    else if (u->res == -EAGAIN)
        w->f->ready &= ~w->dir;
    else if (w->dir == TIDE__EV_IN && u->res > 0 && (size_t)u->res < w->len && !w->f->hup)
        w->f->ready &= ~TIDE__EV_IN;
    unlink_slot(w);
    tide__loop_io_unref(w->f->loop);
    if (t) {
        w->task = NULL;
        tide__wake(t, 0);
    }
}

/* The wait was interrupted (cancel, deadline, close): the task will run
 * before the completion, which must then not wake it. */
static void uop_unlink(void *arg)
{
    uop_wait *w = arg;

    unlink_slot(w);
    w->task = NULL;
    (void)tide__uring_cancel(&w->f->loop->poller, &w->u);
}

/* Waits for w's queued operation to complete.  Its result, or the
 * interruption's error if it transferred nothing. */
static ssize_t uop_run(tide_task *cur, uop_wait *w)
{
    int kind = w->dir == TIDE__EV_IN ? TIDE_WAIT_FD_READ : TIDE_WAIT_FD_WRITE;
    int rc;

    if (w->dir == TIDE__EV_IN)
        w->f->op_reader = cur;
    else
        w->f->op_writer = cur;
    w->linked = 1;
    w->task = cur;
    tide__loop_io_ref(w->f->loop);
    TIDE__WAIT_ON(cur, kind, w->f);
    rc = tide__suspend(cur, TIDE__NEVER, uop_unlink, w, 0);
    while (w->u.inflight) { /* interrupted: the kernel still has the buffer */
        w->task = cur;
        /* The same fd; the dump tells this wait by its nocancel. */
        TIDE__WAIT_ON(cur, kind, w->f);
        (void)tide__suspend(cur, TIDE__NEVER, NULL, NULL, TIDE__WAIT_NOCANCEL);
    }
    cur->io_streak++; /* an operation done, as the readiness path counts */
    if (rc < 0 && w->u.res <= 0)
        return rc;
    return w->u.res;
}

ssize_t tide__uring_read(tide_task *cur, tide__fd *f, void *buf, size_t len, int flags)
{
    uop_wait w = {.u = {.done = uop_done}, .f = f, .dir = TIDE__EV_IN, .len = len,
                  .gen = f->gen};
    const uint32_t gen = f->gen;
    ssize_t n;

    if (f->reader || f->op_reader)
        return -EBUSY;
    if (tide__uring_recv(&f->loop->poller, &w.u, f->fd, buf, len, flags) < 0)
        return -EAGAIN; /* the SQ is full: the readiness path this time */
    n = uop_run(cur, &w);
    if (f->gen != gen)
        return -EBADF; /* closed meanwhile: maybe reused by now */
    return n; /* -EAGAIN: the readiness path (the bit was cleared) */
}

ssize_t tide__uring_write(tide_task *cur, tide__fd *f, const void *buf, size_t len, int flags,
                          size_t *done)
{
    const uint32_t gen = f->gen;
    const char *p = buf;

    while (*done < len) {
        uop_wait w = {.u = {.done = uop_done}, .f = f, .dir = TIDE__EV_OUT, .gen = gen};
        ssize_t n;
        int rc;

        if (f->writer || f->op_writer)
            return *done ? (ssize_t)*done : -EBUSY;
        if (tide__uring_send(&f->loop->poller, &w.u, f->fd, p + *done, len - *done, flags) < 0)
            return -EAGAIN; /* the rest through the readiness path */
        n = uop_run(cur, &w);
        if (f->gen != gen)
            return *done ? (ssize_t)*done : -EBADF;
        if (n == -EAGAIN)
            return -EAGAIN; /* the bit was cleared */
        if (n <= 0)
            return *done ? (ssize_t)*done : n == 0 ? -EIO : n;
        *done += (size_t)n;
        if (*done < len) { /* a short send: a cancellation point between parts */
            rc = cur->cancel_req || cur->scope ? tide__cancel_check(cur, NULL) : 0;
            if (rc < 0)
                return (ssize_t)*done;
        }
    }
    return (ssize_t)*done;
}
