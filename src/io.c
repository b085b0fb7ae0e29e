/*
 * Awaitable fds.
 *
 * The model is Go's netpoller: every fd is non-blocking and registered once
 * with the poller, edge-triggered, for both directions.  Each fd has a small
 * state in the loop's table (indexed by fd number) that remembers what the
 * poller last said: "readable" and "writable" bits, set by an event, cleared
 * when a syscall returns EAGAIN or makes a short transfer that proves the fd
 * is not ready any more.  So the syscall is tried first when the fd may be
 * ready, and the task waits only when it is known not to be: no EAGAIN paid
 * for after a short read, no epoll_ctl per wait.
 *
 * One fd-operation path.  Every call here (read, readv, recv, recvfrom,
 * accept, write, writev, send, sendto, sendfile, and the end of connect) is
 * an operation given to fd_run as a function that makes one attempt of the
 * syscall; fd_run (and its exported forms tide__fd_try, tide__fd_op,
 * tide__fd_op_all) tries it, waits for the poller only on EAGAIN, and keeps
 * the readiness bits right, the way Go's internal/poll/fd_unix.go runs each
 * kind of operation:
 *  - EINTR is retried at once; EAGAIN clears the bit, then the task waits
 *    for the direction's next edge and tries again.
 *  - A short positive transfer clears the bit only where it proves the fd
 *    is not ready: a short read on a byte stream (stream socket, pipe) means
 *    the kernel's buffer is drained, a short write on a pollable fd that its
 *    buffer is full, and an edge will come when that changes.  Not after a
 *    hang-up (EOF or EPIPE come next, and no edge will), not on a datagram,
 *    a tty line or a peek (the caller passes want = 0: "never infer"), and
 *    not for sendfile, whose short count may mean that the input ended
 *    (TIDE__FD_NOINFER: the next attempt tells, 0 for end of input).
 *  - A regular file (or a device the poller refuses) is always_ready: it is
 *    never registered, never waited for, and a short transfer on it says
 *    nothing.  Its O_NONBLOCK is left alone.
 * Writes write everything (like Go's Write): len, or, if an error or a
 * cancellation comes after some bytes went out, the count written so far
 * (the next call reports the error).
 *
 * One task may wait to read and one to write on each fd; a second gets
 * -EBUSY.  Instead of a task, a direction may have a callback (streams flush
 * their write buffers that way).  tide_close wakes both waiters with -EBADF
 * and unregisters the fd before closing it, so the number can be reused at
 * once without a stale event reaching the new owner; the fd's generation
 * changes, so a task woken after the close never touches the number again
 * (it returns -EBADF).  An fd closed behind tide's back (plain close())
 * must be forgotten first (tide_fd_forget).
 *
 * Every call here is a cancellation point: a cancelled task (or one past a
 * deadline) gets -ECANCELED (-ETIMEDOUT) even when the fd is ready, so a
 * relay that never blocks can still be cancelled.
 *
 * Fairness: a cooperative I/O budget (Tokio's coop budget; libuv reads at
 * most 32 times per callback).  A task whose fd always has data would never
 * suspend, and no other task would run.  So each task counts the fd
 * operations it completes without suspending (tide_task.io_streak, reset
 * by every real suspension in tide__suspend); once TIDE__IO_BUDGET of them
 * ran in a row, the next operation that would proceed without waiting first
 * yields (the task goes to the back of the ready queue, as with
 * tide_sleep(0), and the loop polls), then goes on.  An operation that
 * waits anyway does not yield first: its wait is the turn the others get.
 * A cancellation that comes during the yield is reported (-ECANCELED) and
 * the operation is not made.
 */
#include "tide_int.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_MAX_BATCH 64
/* The most one read or write moves on Linux (MAX_RW_COUNT, just under
 * 2 GiB): a transfer cut there was not short.  Other systems cut at or
 * above it, so a count of MAX_RW or more is never taken for short. */
#define MAX_RW ((size_t)0x7ffff000)

_Static_assert(TIDE__IO_BUDGET > 0 && TIDE__IO_BUDGET < 256, "io_streak is a uint8_t");

static void on_fd_event(tide__pollable *p, unsigned events);

/* --------------------------------------------------------- the fd table */

static tide__fd *fd_slot(tide_loop *loop, int fd)
{
    return (size_t)fd < loop->io.nfds ? loop->io.fds[fd] : NULL;
}

/* The state of fd, registering it on first use.  Returns NULL and sets *err
 * on failure. */
tide__fd *tide__fd_get(tide_loop *loop, int fd, int *err)
{
    tide__fd *f;
    struct stat st;
    int fl, rc, type = 0;
    socklen_t tl = sizeof type;

    if (fd < 0) {
        *err = -EBADF;
        return NULL;
    }
    f = fd_slot(loop, fd);
    if (TIDE__LIKELY(f && f->registered))
        return f;
    if ((size_t)fd >= loop->io.nfds) {
        size_t n = loop->io.nfds ? loop->io.nfds : 64;
        tide__fd **v;
        while (n <= (size_t)fd)
            n *= 2;
        v = tide__realloc(loop->io.fds, n * sizeof *v);
        if (!v) {
            *err = -ENOMEM;
            return NULL;
        }
        memset(v + loop->io.nfds, 0, (n - loop->io.nfds) * sizeof *v);
        loop->io.fds = v;
        loop->io.nfds = n;
    }
    if (!f) {
        f = tide__calloc(1, sizeof *f);
        if (!f) {
            *err = -ENOMEM;
            return NULL;
        }
        f->p.on_event = on_fd_event;
        f->loop = loop;
        f->fd = fd;
        loop->io.fds[fd] = f;
    }
    if (fstat(fd, &st) < 0) {
        *err = -errno;
        return NULL;
    }
    f->always_ready = 0;
    f->bytestream = 0;
    f->uring = f->lazy = 0;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        /* A file is always "ready": epoll refuses it, and kqueue's read
         * filter would never fire at its end.  Never poll it, never wait,
         * and leave its description (maybe shared: "prog < file") as it is:
         * O_NONBLOCK means nothing to a file. */
        f->always_ready = 1;
    } else {
        fl = fcntl(fd, F_GETFL);
        if (fl < 0) {
            *err = -errno;
            return NULL;
        }
        if (!(fl & O_NONBLOCK)) {
            rc = tide__sys_set_nonblocking(fd, fl, &st);
            if (rc < 0) {
                *err = rc;
                return NULL;
            }
        }
        /* A short read means "drained" only on a byte stream (a stream
         * socket or a pipe): a datagram or a tty line says nothing of what
         * follows. */
        f->bytestream = S_ISFIFO(st.st_mode) ||
                        (S_ISSOCK(st.st_mode) &&
                         getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
                         type == SOCK_STREAM);
        rc = tide__io_fork_check(loop);
        if (rc < 0) {
            *err = rc;
            return NULL;
        }
        /* Stream sockets read and write through io_uring operations when
         * the poller takes them (io_uring_ops.c); their poll is armed only
         * when a task or a callback waits for readiness (tide__fd_watch). */
        f->uring = f->bytestream && S_ISSOCK(st.st_mode) && tide__poller_ops(&loop->poller);
        rc = f->uring ? tide__poller_add_lazy(&loop->poller, fd, &f->p)
                      : tide__poller_add(&loop->poller, fd, &f->p);
        f->lazy = f->uring;
        if (rc == -EAGAIN) { /* io_uring, no SQE for the poll now: armed when waited on */
            rc = tide__poller_add_lazy(&loop->poller, fd, &f->p);
            f->lazy = 1;
        }
        if (rc == -EPERM) {
            f->always_ready = 1; /* a device the poller cannot watch (/dev/null) */
            f->uring = 0;
        } else if (rc < 0) {
            f->uring = f->lazy = 0;
            *err = rc;
            return NULL;
        }
    }
    f->registered = 1;
    f->ready = TIDE__EV_IN | TIDE__EV_OUT; /* unknown: try the syscall first */
    if (TIDE__UNLIKELY(loop->dbg.on))
        tide__dbg_fd_born(loop, f); /* for the leak report at the loop's end */
    return f;
}

int tide__fd_watch(tide__fd *f)
{
    return f->lazy ? tide__poller_watch(&f->loop->poller, f->fd) : 0;
}

/* ---------------------------------------------------------------- fork */

volatile unsigned tide__fork_gen;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    tide__fork_gen++;
}

static void fork_hook_install(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

/*
 * After fork() the child shares the parent's epoll instance (a kqueue is not
 * inherited at all): an epoll_ctl of the child would change the parent's
 * interest list, and the two would steal each other's edges.  So the child
 * makes a poller of its own and registers every fd again (readiness
 * unknown: try first) before its first poller call.
 */
int tide__io_fork_check(tide_loop *loop)
{
    tide__poller np;
    size_t i;
    int rc;

    if (TIDE__LIKELY(loop->io.fork_gen == tide__fork_gen))
        return 0;
    rc = tide__poller_init(&np);
    if (rc < 0)
        return rc;
    tide__poller_free(&loop->poller); /* closes the child's copies only */
    loop->poller = np;
    loop->io.fork_gen = tide__fork_gen;
    for (i = 0; i < loop->io.nfds; i++) {
        tide__fd *f = loop->io.fds[i];
        if (!f || !f->registered || f->always_ready)
            continue;
        if (tide__poller_add(&loop->poller, f->fd, &f->p) < 0) {
            f->registered = 0; /* gone in the child: re-registered on next use */
            continue;
        }
        f->uring = f->uring && tide__poller_ops(&loop->poller);
        f->ready = TIDE__EV_IN | TIDE__EV_OUT;
    }
    return 0;
}

int tide__io_init(tide_loop *loop)
{
    pthread_once(&fork_hook_once, fork_hook_install);
    loop->io.fork_gen = tide__fork_gen; /* the table grows on first use */
    return 0;
}

void tide__io_term(tide_loop *loop)
{
    size_t i;
    for (i = 0; i < loop->io.nfds; i++) {
        if (loop->io.fds[i])
            tide__free(loop->io.fds[i]->born);
        tide__free(loop->io.fds[i]);
    }
    tide__free(loop->io.fds);
    loop->io.fds = NULL;
    loop->io.nfds = 0;
}

/* ------------------------------------------------------------- waiting */

static void wake_dir(tide__fd *f, int dir, int rc)
{
    tide_task **slot = dir == TIDE__EV_IN ? &f->reader : &f->writer;
    tide__fd_cb *cb = dir == TIDE__EV_IN ? &f->on_readable : &f->on_writable;

    if (*slot) {
        tide_task *t = *slot;
        *slot = NULL;
        tide__loop_io_unref(f->loop);
        tide__wake(t, rc);
    }
    if (*cb)
        (*cb)(f, rc);
}

static void on_fd_event(tide__pollable *p, unsigned events)
{
    tide__fd *f = tide__container_of(p, tide__fd, p);

    if (events & TIDE__EV_HUP)
        f->hup = 1;
    if (events & (TIDE__EV_IN | TIDE__EV_ERR)) {
        f->ready |= TIDE__EV_IN;
        wake_dir(f, TIDE__EV_IN, 0);
    }
    if (events & (TIDE__EV_OUT | TIDE__EV_ERR)) {
        f->ready |= TIDE__EV_OUT;
        wake_dir(f, TIDE__EV_OUT, 0);
    }
}

static void unlink_reader(void *arg)
{
    tide__fd *f = arg;
    f->reader = NULL;
    tide__loop_io_unref(f->loop);
}

static void unlink_writer(void *arg)
{
    tide__fd *f = arg;
    f->writer = NULL;
    tide__loop_io_unref(f->loop);
}

static int coop_yield(tide_task *cur);

/* Waits until the poller reports dir on f.  0, -EBUSY, -EBADF (closed
 * meanwhile), -ECANCELED, -ETIMEDOUT. */
int tide__fd_wait(tide_task *cur, tide__fd *f, unsigned dir)
{
    tide_task **slot = dir == TIDE__EV_IN ? &f->reader : &f->writer;
    uint32_t gen = f->gen;
    int rc;

    for (;;) {
        if (*slot || (dir == TIDE__EV_IN ? f->op_reader : f->op_writer))
            return -EBUSY;
        if (f->always_ready)
            return 0;
        rc = tide__fd_watch(f);
        if (rc != -EAGAIN)
            break;
        /* io_uring: no SQE for the poll (the SQ is full and cannot be
         * flushed now); the loop's next wait submits what is queued. */
        rc = coop_yield(cur);
        if (rc < 0)
            return rc;
        if (f->gen != gen)
            return -EBADF;
    }
    if (rc < 0)
        return rc;
    *slot = cur;
    tide__loop_io_ref(f->loop);
    /* The object is f, as on the io_uring path (a signal wait marked f->sigwait). */
    TIDE__WAIT_ON(cur, dir == TIDE__EV_IN ? TIDE_WAIT_FD_READ : TIDE_WAIT_FD_WRITE, f);
    rc = tide__suspend(cur, TIDE__NEVER, dir == TIDE__EV_IN ? unlink_reader : unlink_writer, f,
                       0);
    /* Closed while we slept, maybe reused by now: never touch the new fd. */
    return f->gen != gen ? -EBADF : rc;
}

/* The cancellation point at the start of every call: 0, -ECANCELED or
 * -ETIMEDOUT.  Two loads when there is nothing to check. */
static inline int checkpoint(tide_task *cur)
{
    if (TIDE__UNLIKELY(cur->cancel_req || cur->scope))
        return tide__cancel_check(cur, NULL);
    return 0;
}

/* The yield of the I/O budget: cur goes to the loop's queue of yielded
 * tasks, which gets one slice per iteration after what the poll woke (so
 * a ping-pong connection beside nine busy bulk ones waits for one slice,
 * not nine).  A cancellation or a deadline that came meanwhile is
 * reported: the operation is then not made. */
static int coop_yield(tide_task *cur)
{
    cur->state = TIDE_TASK_READY;
    tide__runq_push(&cur->loop->yielded, &cur->r);
    tide__switch_to_loop(cur);
    cur->io_streak = 0;
    return checkpoint(cur);
}

int tide__io_budget(tide_task *cur)
{
    if (TIDE__UNLIKELY(tide__io_budget_spent(cur)))
        return coop_yield(cur);
    cur->io_streak++;
    return 0;
}

/* ------------------------------------------------ the fd-operation path */

ssize_t tide__fd_try(tide__fd *f, unsigned dir, tide__fd_sysfn op, void *ctx, size_t want)
{
    ssize_t n;

    if (!(f->ready & dir) && !f->always_ready)
        return -EAGAIN; /* known not ready: no syscall to learn it again */
    for (;;) {
        n = op(f->fd, ctx);
        if (TIDE__LIKELY(n >= 0))
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!f->always_ready)
                f->ready &= ~dir;
            return -EAGAIN;
        }
        return -errno;
    }
    /* A short transfer: drained (a read on a byte stream) or full (a
     * write), so the next attempt waits for an edge instead of paying for
     * an EAGAIN.  Never where no edge would come: after a hang-up, on a
     * file. */
    if (n > 0 && (size_t)n < (want < MAX_RW ? want : MAX_RW) && !f->always_ready && !f->hup &&
        (dir == TIDE__EV_OUT || f->bytestream))
        f->ready &= ~dir;
    return n;
}

/* One operation: attempts until one is not EAGAIN, waiting for dir in
 * between; with done != NULL, until want bytes went (*done counts them,
 * and op reads it to know where to go on from).  The caller made the
 * cancellation check.  gen guards every suspension: a task that comes back
 * after a close never touches the fd (number) again. */
static inline ssize_t fd_run(tide_task *cur, tide__fd *f, unsigned dir, tide__fd_sysfn op,
                             void *ctx, size_t want, size_t *done, unsigned flags)
{
    const uint32_t gen = f->gen;
    ssize_t n;
    int rc;

    for (;;) {
        if (TIDE__LIKELY((f->ready & dir) || f->always_ready)) {
            /* May proceed without waiting: the budget applies. */
            if (TIDE__UNLIKELY(tide__io_budget_spent(cur))) {
                rc = coop_yield(cur);
                if (rc == 0 && f->gen != gen)
                    rc = -EBADF;
                if (rc < 0)
                    return done && *done ? (ssize_t)*done : rc;
                continue; /* readiness may have changed meanwhile */
            }
            n = tide__fd_try(f, dir, op, ctx,
                             (flags & TIDE__FD_NOINFER) ? 0 : done ? want - *done : want);
            if (n != -EAGAIN) {
                cur->io_streak++;
                if (!done)
                    return n;
                if (n <= 0) /* an error, or nothing more to send (end of input) */
                    return *done ? (ssize_t)*done : n;
                *done += (size_t)n;
                if (*done >= want)
                    return (ssize_t)*done;
                continue;
            }
            if (f->always_ready) /* nothing to wait for: say so */
                return done && *done ? (ssize_t)*done : -EAGAIN;
        }
        rc = tide__fd_wait(cur, f, dir);
        if (rc < 0)
            return done && *done ? (ssize_t)*done : rc;
    }
}

ssize_t tide__fd_op(tide_task *cur, tide__fd *f, unsigned dir, tide__fd_sysfn op, void *ctx,
                    size_t want)
{
    int rc = checkpoint(cur);

    if (rc < 0)
        return rc;
    return fd_run(cur, f, dir, op, ctx, want, NULL, 0);
}

ssize_t tide__fd_op_all(tide_task *cur, tide__fd *f, unsigned dir, tide__fd_sysfn op, void *ctx,
                        size_t want, size_t *done, unsigned flags)
{
    int rc = checkpoint(cur);

    if (rc < 0)
        return rc;
    if (*done >= want)
        return (ssize_t)*done;
    return fd_run(cur, f, dir, op, ctx, want, done, flags);
}

/* ----------------------------------------------------- starting a call */

/* The common start of every call: the running task, the cancellation
 * point, and the fd's state.  Returns 0 or -errno. */
static int io_begin(int fd, tide_task **cur, tide__fd **f)
{
    int err = 0, rc;

    *cur = tide__current();
    if (!*cur)
        return -EPERM;
    rc = checkpoint(*cur);
    if (rc < 0)
        return rc;
    *f = tide__fd_get((*cur)->loop, fd, &err);
    return *f ? 0 : err;
}

/* io_begin for a call with a buffer: a NULL one is only fine when empty. */
static int io_begin_buf(int fd, const void *buf, size_t len, tide_task **cur, tide__fd **f)
{
    if (!buf && len)
        return -EINVAL;
    return io_begin(fd, cur, f);
}

/* Waits for dir on fd.  If the fd may be ready already (no EAGAIN since the
 * last event), asks the kernel first: the edge may have come and gone.  A
 * wait that ends at once counts against the I/O budget like an operation. */
static int wait_dir(int fd, unsigned dir)
{
    tide_task *cur;
    tide__fd *f;
    uint32_t gen;
    int rc = io_begin(fd, &cur, &f);

    if (rc < 0)
        return rc;
    gen = f->gen;
    if (f->always_ready || (f->ready & dir)) {
        if (TIDE__UNLIKELY(tide__io_budget_spent(cur))) {
            rc = coop_yield(cur);
            if (rc < 0)
                return rc;
            if (f->gen != gen)
                return -EBADF;
        }
        if (f->always_ready) {
            cur->io_streak++;
            return 0;
        }
        if (f->ready & dir) {
            struct pollfd p = {.fd = fd, .events = dir == TIDE__EV_IN ? POLLIN : POLLOUT};
            if (poll(&p, 1, 0) > 0) {
                cur->io_streak++;
                return 0;
            }
            f->ready &= ~dir;
        }
    }
    return tide__fd_wait(cur, f, dir);
}

int tide_wait_readable(int fd)
{
    return wait_dir(fd, TIDE__EV_IN);
}

int tide_wait_writable(int fd)
{
    return wait_dir(fd, TIDE__EV_OUT);
}

/* ------------------------------------------------------------- reading */

/* The attempts of each call: one syscall each, on a context on the
 * caller's stack. */
typedef struct rd_ctx {
    void *buf;
    size_t len;
    int flags;
    struct sockaddr *addr;
    socklen_t *addrlen;
} rd_ctx;

static ssize_t read_op(int fd, void *arg)
{
    rd_ctx *c = arg;
    return read(fd, c->buf, c->len);
}

static ssize_t recv_op(int fd, void *arg)
{
    rd_ctx *c = arg;
    return recv(fd, c->buf, c->len, c->flags);
}

static ssize_t recvfrom_op(int fd, void *arg)
{
    rd_ctx *c = arg;
    return recvfrom(fd, c->buf, c->len, c->flags, c->addr, c->addrlen);
}

typedef struct rv_ctx {
    const struct iovec *iov;
    int iovcnt;
} rv_ctx;

static ssize_t readv_op(int fd, void *arg)
{
    rv_ctx *c = arg;
    return readv(fd, c->iov, c->iovcnt);
}

static ssize_t accept_op(int fd, void *arg)
{
    rd_ctx *c = arg;
    int s;

    /* A peer that gave up before we took it: take the next one. */
    do
        s = tide__sys_accept(fd, c->addr, c->addrlen);
    while (s < 0 && (errno == ECONNABORTED || errno == EPROTO));
    return s;
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    int i;
    for (i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

ssize_t tide_read(int fd, void *buf, size_t len)
{
    rd_ctx c = {.buf = buf, .len = len};
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0 || len == 0)
        return rc;
    if (f->uring) {
        ssize_t n = tide__uring_read(cur, f, buf, len, 0);
        if (n != -EAGAIN)
            return n;
    }
    return fd_run(cur, f, TIDE__EV_IN, read_op, &c, len, NULL, 0);
}

ssize_t tide_readv(int fd, const struct iovec *iov, int iovcnt)
{
    rv_ctx c = {.iov = iov, .iovcnt = iovcnt};
    tide_task *cur;
    tide__fd *f;
    int rc;

    if ((!iov && iovcnt) || iovcnt < 0)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    return fd_run(cur, f, TIDE__EV_IN, readv_op, &c, iov_total(iov, iovcnt), NULL, 0);
}

ssize_t tide_recv(int fd, void *buf, size_t len, int flags)
{
    rd_ctx c = {.buf = buf, .len = len, .flags = flags};
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0)
        return rc;
    if (f->uring && len > 0 && !(flags & (MSG_PEEK | MSG_DONTWAIT))) {
        ssize_t n = tide__uring_read(cur, f, buf, len, flags);
        if (n != -EAGAIN)
            return n;
    }
    /* A peek consumes nothing: it must never conclude the socket drained. */
    return fd_run(cur, f, TIDE__EV_IN, recv_op, &c, (flags & MSG_PEEK) ? 0 : len, NULL, 0);
}

ssize_t tide_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                      socklen_t *addrlen)
{
    rd_ctx c = {.buf = buf, .len = len, .flags = flags, .addr = addr, .addrlen = addrlen};
    tide_task *cur;
    tide__fd *f;
    int rc;

    if ((!buf && len) || (addr && !addrlen))
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    /* One datagram per call: a short one says nothing about the next. */
    return fd_run(cur, f, TIDE__EV_IN, recvfrom_op, &c, 0, NULL, 0);
}

int tide_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    rd_ctx c = {.addr = addr, .addrlen = addrlen};
    tide_task *cur;
    tide__fd *f;
    int rc;

    if (addr && !addrlen)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    /* One connection per call: taking one says nothing about the backlog. */
    return (int)fd_run(cur, f, TIDE__EV_IN, accept_op, &c, 0, NULL, 0);
}

/* ------------------------------------------------------------- writing */

/* A write of everything: op goes on from done, which fd_run advances. */
typedef struct wr_ctx {
    const char *p;
    size_t len;
    size_t done;
    int flags;
    const struct sockaddr *addr;
    socklen_t addrlen;
} wr_ctx;

static ssize_t write_op(int fd, void *arg)
{
    wr_ctx *c = arg;
    return write(fd, c->p + c->done, c->len - c->done);
}

static ssize_t send_op(int fd, void *arg)
{
    wr_ctx *c = arg;
    return send(fd, c->p + c->done, c->len - c->done, c->flags | TIDE__MSG_NOSIGNAL);
}

static ssize_t sendto_op(int fd, void *arg)
{
    wr_ctx *c = arg;
    return sendto(fd, c->p, c->len, c->flags | TIDE__MSG_NOSIGNAL, c->addr, c->addrlen);
}

ssize_t tide_write(int fd, const void *buf, size_t len)
{
    wr_ctx c = {.p = buf, .len = len};
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0 || len == 0)
        return rc;
    if (f->uring) {
        ssize_t n = tide__uring_write(cur, f, buf, len, 0, &c.done);
        if (n != -EAGAIN)
            return n;
    }
    return fd_run(cur, f, TIDE__EV_OUT, write_op, &c, len, &c.done, 0);
}

ssize_t tide_send(int fd, const void *buf, size_t len, int flags)
{
    wr_ctx c = {.p = buf, .len = len, .flags = flags};
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0 || len == 0)
        return rc;
    if (f->uring && !(flags & MSG_DONTWAIT)) {
        ssize_t n = tide__uring_write(cur, f, buf, len, flags, &c.done);
        if (n != -EAGAIN)
            return n;
    }
    return fd_run(cur, f, TIDE__EV_OUT, send_op, &c, len, &c.done, 0);
}

ssize_t tide_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                    socklen_t addrlen)
{
    wr_ctx c = {.p = buf, .len = len, .flags = flags, .addr = addr, .addrlen = addrlen};
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0)
        return rc;
    /* One datagram: all or nothing (an empty one is a datagram too). */
    return fd_run(cur, f, TIDE__EV_OUT, sendto_op, &c, 0, NULL, 0);
}

/* writev of a batch of at most IOV_MAX_BATCH iovecs, copied so that the
 * caller's array is never changed and advanced in place as it goes out. */
typedef struct wv_ctx {
    struct iovec v[IOV_MAX_BATCH];
    int first, n;
    size_t done; /* advanced by fd_run */
    size_t seen; /* the part of done that first/v account for */
} wv_ctx;

static ssize_t writev_op(int fd, void *arg)
{
    wv_ctx *c = arg;
    size_t adv = c->done - c->seen;

    c->seen = c->done;
    while (adv > 0) { /* skip what the last attempt wrote */
        struct iovec *v = &c->v[c->first];
        if (adv < v->iov_len) {
            v->iov_base = (char *)v->iov_base + adv;
            v->iov_len -= adv;
            adv = 0;
        } else {
            adv -= v->iov_len;
            c->first++;
        }
    }
    return writev(fd, c->v + c->first, c->n - c->first);
}

ssize_t tide_writev(int fd, const struct iovec *iov, int iovcnt)
{
    wv_ctx c;
    size_t total = 0;
    tide_task *cur;
    tide__fd *f;
    int rc, i = 0;

    if ((!iov && iovcnt) || iovcnt < 0)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    /* Batch after batch; each is one operation that writes it all. */
    while (i < iovcnt) {
        size_t want = 0;
        ssize_t n;

        c.first = 0;
        c.done = c.seen = 0;
        for (c.n = 0; c.n < IOV_MAX_BATCH && i < iovcnt; c.n++, i++) {
            c.v[c.n] = iov[i];
            want += iov[i].iov_len;
        }
        if (want == 0)
            continue;
        n = fd_run(cur, f, TIDE__EV_OUT, writev_op, &c, want, &c.done, 0);
        if (n < 0)
            return total ? (ssize_t)total : n;
        total += (size_t)n;
        if ((size_t)n < want)
            break; /* an error after part of it: the count so far */
    }
    return (ssize_t)total;
}

typedef struct sf_ctx {
    int in_fd;
    off_t *offset;
    size_t count;
    size_t done; /* advanced by fd_run */
} sf_ctx;

static ssize_t sendfile_op(int fd, void *arg)
{
    sf_ctx *c = arg;
    return tide__sys_sendfile(fd, c->in_fd, c->offset, c->count - c->done);
}

ssize_t tide_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    sf_ctx c = {.in_fd = in_fd, .offset = offset, .count = count};
    tide_task *cur;
    tide__fd *f;
    int rc;

    if (in_fd < 0)
        return -EBADF;
    rc = io_begin(out_fd, &cur, &f);
    if (rc < 0 || count == 0)
        return rc;
    /* A short count may mean the end of the input, not a full socket: the
     * next attempt tells (0: the end; EAGAIN: full). */
    return fd_run(cur, f, TIDE__EV_OUT, sendfile_op, &c, count, &c.done, TIDE__FD_NOINFER);
}

/* ---------------------------------------------------- connect and close */

/* The end of a connect in progress: the socket's pending error, or EAGAIN
 * while the handshake goes on. */
static ssize_t connect_done_op(int fd, void *arg)
{
    int err = 0;
    socklen_t elen = sizeof err;

    (void)arg;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return -1;
    if (err == 0)
        return 0;
    errno = err == EINPROGRESS || err == EALREADY ? EAGAIN : err;
    return -1;
}

int tide_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    if (!addr)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    /* connect(2) starts the attempt (an EAGAIN from it, a Unix listener's
     * full backlog, is an error: no edge of this socket would end it)... */
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    /* ...and its end is an fd operation: writable once the handshake is
     * over.  Cancelled, the caller closes the socket, which ends the
     * attempt. */
    f->ready &= ~TIDE__EV_OUT;
    return (int)fd_run(cur, f, TIDE__EV_OUT, connect_done_op, NULL, 0, NULL, 0);
}

int tide_shutdown(int fd, int how)
{
    if (fd < 0)
        return -EBADF;
    return shutdown(fd, how) < 0 ? -errno : 0;
}

void tide__fd_forget(tide_loop *loop, int fd)
{
    tide__fd *f = fd_slot(loop, fd);

    if (!f || !f->registered)
        return;
    f->gen++;
    if (f->reader)
        tide__interrupt(f->reader, -EBADF);
    if (f->writer)
        tide__interrupt(f->writer, -EBADF);
    /* An operation in flight: its wait ends, the cancel is asked now (the
     * poller's del below cancels by fd too), the task waits on for the
     * completion. */
    if (f->op_reader)
        tide__interrupt(f->op_reader, -EBADF);
    if (f->op_writer)
        tide__interrupt(f->op_writer, -EBADF);
    if (f->on_readable)
        f->on_readable(f, -EBADF);
    if (f->on_writable)
        f->on_writable(f, -EBADF);
    if (!f->always_ready && tide__io_fork_check(loop) == 0)
        (void)tide__poller_del(&loop->poller, fd);
    f->registered = 0;
    f->always_ready = 0;
    f->uring = f->lazy = 0;
    f->hup = 0;
    f->on_readable = f->on_writable = NULL;
    f->ready = 0;
    f->sigwait = NULL;
    if (TIDE__UNLIKELY(f->born != NULL)) {
        tide__free(f->born);
        f->born = NULL;
    }
}

int tide_fd_forget(int fd)
{
    tide_loop *loop;

    if (fd < 0)
        return -EBADF;
    /* The running loop (which may have been made on another thread, so not
     * be on this thread's list: an io_uring poll or operation would hold
     * the file open), then every loop of this thread: outside a run we
     * cannot know which one registered it (usually there is one).  A
     * second forget of the same fd is a no-op. */
    if (tide__tls_loop)
        tide__fd_forget(tide__tls_loop, fd);
    for (loop = tide__tls_loops; loop; loop = loop->next_on_thread)
        tide__fd_forget(loop, fd);
    return 0;
}

int tide_close(int fd)
{
    int rc;

    if (fd < 0)
        return -EBADF;
    tide_fd_forget(fd);
    rc = close(fd);
    /* Linux closes the fd even when close reports EINTR: never retry. */
    return rc < 0 && errno != EINTR ? -errno : 0;
}
