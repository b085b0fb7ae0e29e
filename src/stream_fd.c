/*
 * The fd transport: a stream over a socket, a pipe or a tty (see
 * transport.h for the contract).
 *
 * Readiness is the fd layer's (io.c): the fd's "may be readable / writable"
 * bits are tried first and cleared on EAGAIN or on a short transfer, so a
 * stream pays no EAGAIN after a short read and waits only when the fd is
 * known not to be ready.  The rules, which fd_try keeps exactly as io.c's
 * helper does:
 *  - a short read clears "readable" only on a byte stream (a stream socket
 *    or a pipe) that has not hung up: a datagram, a tty line or a file says
 *    nothing of what follows, and after a hang-up the next read must reach
 *    EOF instead of waiting for an edge that never comes;
 *  - a short write clears "writable" (the socket buffer is full), but never
 *    on a regular file, which the poller cannot watch: it never waits for an
 *    edge, and a short write on it is tried again at once.
 *
 * The fd may be closed under the stream (tide_close of its number, or
 * tide_fd_forget): the fd layer then bumps the state's generation.  Every
 * call here compares it with the one seen at open and fails with -EBADF on
 * a mismatch, so a stale stream never reads, writes or closes the fd of
 * whoever got the number next.
 */
#include "sys.h"
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static inline tide__fd_transport *fdt(tide__transport *t)
{
    return (tide__fd_transport *)t;
}

/* The fd is still the one we opened (not closed and maybe reused). */
static inline int alive(const tide__fd_transport *t)
{
    return t->f->gen == t->gen;
}

/* ------------------------------------------- one attempt, and the wait */

/* One attempt is io.c's tide__fd_try (the one fd-operation path: readiness
 * bits, short transfers, files that never wait); the stream's
 * try-then-wait loop over its transport is what tide__fd_op is for a plain
 * fd. */

/* Waits for dir on f unless the fd may be ready already (its bit is set: the
 * caller should try again) or is a file (never waits).  0, -EBADF (closed
 * meanwhile), -EBUSY, -ECANCELED, -ETIMEDOUT. */
static int fd_wait(tide_task *cur, tide__fd *f, unsigned dir)
{
    if ((f->ready & dir) || f->always_ready)
        return 0;
    return tide__fd_wait(cur, f, dir);
}

/* ------------------------------------------------------------ syscalls */

typedef struct rd_ctx {
    void *buf;
    size_t len;
} rd_ctx;

static ssize_t sys_read(int fd, void *ctx)
{
    rd_ctx *c = ctx;
    return read(fd, c->buf, c->len);
}

typedef struct wr_ctx {
    const struct iovec *iov;
    int iovcnt;
} wr_ctx;

static ssize_t sys_writev(int fd, void *ctx)
{
    wr_ctx *c = ctx;
    return c->iovcnt == 1 ? write(fd, c->iov[0].iov_base, c->iov[0].iov_len)
                          : writev(fd, c->iov, c->iovcnt);
}

/* Sockets: MSG_NOSIGNAL, so a closed peer is -EPIPE, never SIGPIPE. */
static ssize_t sys_send(int fd, void *ctx)
{
    wr_ctx *c = ctx;
    struct msghdr m = {0};

    if (c->iovcnt == 1)
        return send(fd, c->iov[0].iov_base, c->iov[0].iov_len, TIDE__MSG_NOSIGNAL);
    m.msg_iov = (struct iovec *)c->iov;
    m.msg_iovlen = (size_t)c->iovcnt;
    return sendmsg(fd, &m, TIDE__MSG_NOSIGNAL);
}

/* ------------------------------------------------------------ the ops */

static ssize_t fdt_read(tide__transport *tp, void *buf, size_t len, unsigned *wait)
{
    tide__fd_transport *t = fdt(tp);
    rd_ctx c = {buf, len};
    ssize_t n;

    if (!alive(t))
        return -EBADF;
    n = tide__fd_try(t->f, TIDE__EV_IN, sys_read, &c, len);
    if (n == -EAGAIN)
        *wait = TIDE__WANT_IN;
    return n;
}

static ssize_t fdt_writev(tide__transport *tp, const struct iovec *iov, int iovcnt, unsigned *wait)
{
    tide__fd_transport *t = fdt(tp);
    wr_ctx c;
    size_t want = 0;
    ssize_t n;
    int i;

    if (!alive(t))
        return -EBADF;
    if (iovcnt > IOV_MAX)
        iovcnt = IOV_MAX; /* the rest stays queued for the next attempt */
    for (i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    c.iov = iov;
    c.iovcnt = iovcnt;
    n = tide__fd_try(t->f, TIDE__EV_OUT, t->is_socket ? sys_send : sys_writev, &c, want);
    if (n == -EAGAIN || n == 0) {
        *wait = TIDE__WANT_OUT;
        n = -EAGAIN; /* 0 of a non-empty write: try again when writable */
    }
    return n;
}

static int fdt_wait(tide__transport *tp, tide_task *cur, unsigned wait)
{
    tide__fd_transport *t = fdt(tp);

    if (!alive(t))
        return -EBADF;
    /* One direction at a time: a transport reports only one (TLS: wants
     * read or wants write).  If both come, "out" first: sending is what
     * lets the peer answer. */
    return fd_wait(cur, t->f, (wait & TIDE__WANT_OUT) ? TIDE__EV_OUT : TIDE__EV_IN);
}

static void fdt_disarm(tide__fd_transport *t)
{
    tide__fd *f = t->f;

    if (alive(t)) { /* a new owner's callbacks are not ours to clear */
        if (t->armed & TIDE__WANT_IN)
            f->on_readable = NULL;
        if (t->armed & TIDE__WANT_OUT)
            f->on_writable = NULL;
    }
    t->armed = 0;
}

/* The fd layer's callbacks: one shot, both directions disarmed first. */
static void fdt_fire(tide__fd *f, int rc)
{
    tide__fd_transport *t = f->cb_arg;
    tide__transport_cb cb = t->cb;

    fdt_disarm(t);
    t->cb = NULL;
    if (cb)
        cb(t->cb_arg, rc);
}

static int fdt_arm(tide__transport *tp, unsigned wait, tide__transport_cb cb, void *arg)
{
    tide__fd_transport *t = fdt(tp);
    tide__fd *f = t->f;

    fdt_disarm(t);
    t->cb = NULL;
    if (!wait)
        return 0;
    if (!alive(t))
        return -EBADF;
    /* The edge came already (or never comes, for a file): try again now. */
    if ((f->ready & wait) || f->always_ready)
        return -EALREADY;
    if (tide__fd_watch(f) < 0)
        return -EBADF;
    t->cb = cb;
    t->cb_arg = arg;
    f->cb_arg = t;
    if (wait & TIDE__WANT_IN)
        f->on_readable = fdt_fire;
    if (wait & TIDE__WANT_OUT)
        f->on_writable = fdt_fire;
    t->armed = wait & (TIDE__WANT_IN | TIDE__WANT_OUT);
    return 0;
}

static int fdt_shutdown(tide__transport *tp, unsigned *wait)
{
    tide__fd_transport *t = fdt(tp);

    (void)wait;
    if (!alive(t))
        return -EBADF;
    if (!t->is_socket)
        return -ENOTSOCK;
    return shutdown(t->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void fdt_close(tide__transport *tp)
{
    tide__fd_transport *t = fdt(tp);

    fdt_disarm(t);
    t->cb = NULL;
    if (!alive(t))
        return; /* closed under us: the number may be someone else's now */
    /* Forget through our own loop (right even outside a run), then close:
     * a task blocked on the fd wakes with -EBADF. */
    tide__fd_forget(t->loop, t->fd);
    close(t->fd);
}

static int fdt_address(tide__transport *tp, int peer, struct sockaddr *addr, socklen_t *len)
{
    tide__fd_transport *t = fdt(tp);
    int rc;

    if (!alive(t))
        return -EBADF;
    if (!t->is_socket)
        return -ENOTSOCK;
    rc = peer ? getpeername(t->fd, addr, len) : getsockname(t->fd, addr, len);
    return rc < 0 ? -errno : 0;
}

static int fdt_fd(const tide__transport *tp)
{
    const tide__fd_transport *t = (const tide__fd_transport *)tp;
    return alive(t) ? t->fd : -EBADF;
}

static ssize_t fdt_read_wait(tide__transport *tp, tide_task *cur, void *buf, size_t len)
{
    tide__fd_transport *t = fdt(tp);
    ssize_t n;

    if (!alive(t))
        return -EBADF;
    if (!t->f->uring)
        return -EAGAIN;
    n = tide__uring_read(cur, t->f, buf, len, 0);
    return alive(t) || n == -EAGAIN ? n : -EBADF;
}

/* A stream socket on an io_uring that takes operations (f->uring): the
 * stream's queue goes out by IORING_OP_SEND / SENDMSG, no syscall of its
 * own (io_uring_ops.c's send, but asynchronous: the op and the bytes are
 * the stream's, see stream.c's "Asynchronous sends"). */
static int fdt_async(const tide__transport *tp)
{
    const tide__fd_transport *t = (const tide__fd_transport *)tp;
    return alive(t) && t->f->uring && t->is_socket;
}

static int fdt_send_start(tide__transport *tp, tide__uop *op, struct msghdr *m)
{
    tide__fd_transport *t = fdt(tp);
    tide__poller *p = &t->loop->poller;
    int rc;

    if (!alive(t))
        return -EBADF;
    if (!t->f->uring || !t->is_socket)
        return -EAGAIN;
    if (m->msg_iovlen == 1)
        rc = tide__uring_send(p, op, t->fd, m->msg_iov[0].iov_base, m->msg_iov[0].iov_len, 0);
    else
        rc = tide__uring_sendmsg(p, op, t->fd, m, 0);
    return rc < 0 ? -EAGAIN : 0; /* SQ full, a forked child's ring: readiness */
}

static void fdt_send_cancel(tide__transport *tp, tide__uop *op)
{
    tide__fd_transport *t = fdt(tp);
    (void)tide__uring_cancel(&t->loop->poller, op);
}

const tide__transport_ops tide__fd_transport_ops = {
    .name = "fd",
    .read = fdt_read,
    .writev = fdt_writev,
    .wait = fdt_wait,
    .arm = fdt_arm,
    .shutdown = fdt_shutdown,
    .close = fdt_close,
    .free = NULL, /* lives in the stream */
    .address = fdt_address,
    .fd = fdt_fd,
    .read_wait = fdt_read_wait,
    .async = fdt_async,
    .send_start = fdt_send_start,
    .send_cancel = fdt_send_cancel,
};

int tide__fd_transport_open(tide__fd_transport *t, tide_loop *loop, int fd)
{
    struct stat st;
    int err = 0;

    if (fd < 0)
        return -EBADF;
    t->base.ops = &tide__fd_transport_ops;
    t->loop = loop;
    t->fd = fd;
    t->f = tide__fd_get(loop, fd, &err);
    if (!t->f)
        return err;
    t->gen = t->f->gen;
    t->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    t->armed = 0;
    t->cb = NULL;
    t->cb_arg = NULL;
    return 0;
}
