/*
 * Awaitable fds.
 *
 * The model is Go's netpoller: every fd is non-blocking and registered once
 * with the poller, edge-triggered, for both directions.  Each fd has a small
 * state in the loop's table (indexed by fd number) that remembers what the
 * poller last said: "readable" and "writable" bits, set by an event, cleared
 * when a syscall returns EAGAIN or makes a short transfer (a short read
 * means the socket is drained; a short write that its buffer is full).  So
 * the syscall is tried first when the fd may be ready, and the task waits
 * only when it is known not to be: no EAGAIN paid for after a short read, no
 * epoll_ctl per wait.
 *
 * One task may wait to read and one to write on each fd; a second gets
 * -EBUSY.  Instead of a task, a direction may have a callback (streams flush
 * their write buffers that way).  tide_close wakes both waiters with -EBADF
 * and unregisters the fd before closing it, so the number can be reused at
 * once without a stale event reaching the new owner.  An fd closed behind
 * tide's back (plain close()) must be forgotten first (tide_fd_forget).
 *
 * Every call here is a cancellation point: a cancelled task (or one past a
 * deadline) gets -ECANCELED (-ETIMEDOUT) even when the fd is ready, so a
 * relay that never blocks can still be cancelled.
 */
#include "tide_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_MAX_BATCH 64

static void on_fd_event(tide__pollable *p, unsigned events);

/* --------------------------------------------------------- the fd table */

static tide__fd *fd_slot(tide_loop *loop, int fd)
{
    return (size_t)fd < loop->io.nfds ? loop->io.fds[fd] : NULL;
}

/* The state of fd, registering it on first use.  Returns NULL and sets *err
 * on failure. */
/* O_NONBLOCK is a flag of the open file description, shared with every
 * process that has it: setting it on an inherited tty or pipe (stdin) would
 * make the shell or the next program in a pipeline see EAGAIN.  So for
 * those, give fd a description of its own first (reopen it through /proc
 * and dup3 it over fd, as libuv does for ttys); sockets cannot be reopened,
 * and are ours anyway. */
static int make_nonblocking(int fd, int fl, const struct stat *st)
{
#ifdef __linux__
    int ptn;
    /* Only pipes and terminals (not a pty master: reopening /dev/ptmx makes a
     * new pty; not other devices, whose state is per open). */
    if (S_ISFIFO(st->st_mode) ||
        (S_ISCHR(st->st_mode) && isatty(fd) && ioctl(fd, TIOCGPTN, &ptn) < 0)) {
        char path[40];
        int nfd, fdfl = fcntl(fd, F_GETFD);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        nfd = open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (nfd >= 0) {
            int ok = dup3(nfd, fd, (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0) >= 0;
            close(nfd);
            if (ok)
                return 0;
        }
    }
#else
    (void)st;
#endif
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

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
    fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        *err = -errno;
        return NULL;
    }
    if (!(fl & O_NONBLOCK)) {
        rc = make_nonblocking(fd, fl, &st);
        if (rc < 0) {
            *err = rc;
            return NULL;
        }
    }
    /* A short read means "drained" only on a byte stream (a stream socket or
     * a pipe): a datagram, a tty line or a file says nothing of what follows. */
    f->bytestream = S_ISFIFO(st.st_mode) ||
                    (S_ISSOCK(st.st_mode) &&
                     getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM);
    rc = tide__io_fork_check(loop);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    rc = tide__poller_add(&loop->poller, fd, &f->p);
    if (rc == -EPERM) {
        /* A regular file or a directory: epoll cannot watch it, and it is
         * always "ready".  Remember that and never wait. */
        f->always_ready = 1;
    } else if (rc < 0) {
        *err = rc;
        return NULL;
    }
    f->registered = 1;
    f->ready = TIDE__EV_IN | TIDE__EV_OUT; /* unknown: try the syscall first */
    return f;
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
    for (i = 0; i < loop->io.nfds; i++)
        tide__free(loop->io.fds[i]);
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

/* Waits until the poller reports dir on f.  0, -EBUSY, -EBADF (closed
 * meanwhile), -ECANCELED, -ETIMEDOUT. */
int tide__fd_wait(tide_task *cur, tide__fd *f, unsigned dir)
{
    tide_task **slot = dir == TIDE__EV_IN ? &f->reader : &f->writer;
    uint32_t gen = f->gen;
    int rc;

    if (*slot)
        return -EBUSY;
    if (f->always_ready)
        return 0;
    *slot = cur;
    tide__loop_io_ref(f->loop);
    rc = tide__suspend(cur, TIDE__NEVER, dir == TIDE__EV_IN ? unlink_reader : unlink_writer, f,
                       0);
    /* Closed while we slept, maybe reused by now: never touch the new fd. */
    return f->gen != gen ? -EBADF : rc;
}

static int io_begin(int fd, tide_task **cur, tide__fd **f);

/* io_begin for a call with a buffer: a NULL one is only fine when empty. */
static int io_begin_buf(int fd, const void *buf, size_t len, tide_task **cur, tide__fd **f)
{
    if (!buf && len)
        return -EINVAL;
    return io_begin(fd, cur, f);
}

/* The common start of every call: the running task, the fd's state, and the
 * cancellation point.  Returns 0 or -errno. */
static int io_begin(int fd, tide_task **cur, tide__fd **f)
{
    int err = 0;

    *cur = tide__current();
    if (!*cur)
        return -EPERM;
    if ((*cur)->cancel_req || (*cur)->scope) {
        int rc = tide__cancel_check(*cur, NULL);
        if (rc < 0)
            return rc;
    }
    *f = tide__fd_get((*cur)->loop, fd, &err);
    return *f ? 0 : err;
}

/* Waits for dir on fd.  If the fd may be ready already (no EAGAIN since the
 * last event), asks the kernel first: the edge may have come and gone. */
static int wait_dir(int fd, unsigned dir)
{
    tide_task *cur;
    tide__fd *f;
    int rc = io_begin(fd, &cur, &f);

    if (rc < 0)
        return rc;
    if (f->ready & dir) {
        struct pollfd p = {.fd = fd, .events = dir == TIDE__EV_IN ? POLLIN : POLLOUT};
        if (poll(&p, 1, 0) > 0)
            return 0;
        f->ready &= ~dir;
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

/* The read-side loop shared by read, readv, recv, recvfrom and accept: op()
 * makes the syscall; on EAGAIN we wait for the poller, and a transfer
 * shorter than asked clears the readable bit. */
#define READ_LOOP(f, cur, want, call)                                                          \
    for (;;) {                                                                                 \
        ssize_t n_;                                                                            \
        size_t want_ = (want);                                                                 \
        if (!((f)->ready & TIDE__EV_IN)) {                                                     \
            int w_ = tide__fd_wait((cur), (f), TIDE__EV_IN);                                   \
            if (w_ < 0)                                                                        \
                return w_;                                                                     \
        }                                                                                      \
        n_ = (call);                                                                           \
        if (n_ >= 0) {                                                                         \
            if (n_ > 0 && (size_t)n_ < want_ && (f)->bytestream && !(f)->hup)                  \
                (f)->ready &= ~TIDE__EV_IN;                                                    \
            return n_;                                                                         \
        }                                                                                      \
        if (errno == EAGAIN || errno == EWOULDBLOCK)                                           \
            (f)->ready &= ~TIDE__EV_IN;                                                        \
        else if (errno != EINTR)                                                               \
            return -errno;                                                                     \
    }

ssize_t tide_read(int fd, void *buf, size_t len)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0 || len == 0)
        return rc;
    READ_LOOP(f, cur, len, read(fd, buf, len));
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    int i;
    for (i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

ssize_t tide_readv(int fd, const struct iovec *iov, int iovcnt)
{
    tide_task *cur;
    tide__fd *f;
    size_t want;
    int rc;

    if ((!iov && iovcnt) || iovcnt < 0)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    want = iov_total(iov, iovcnt);
    READ_LOOP(f, cur, want, readv(fd, iov, iovcnt));
}

ssize_t tide_recv(int fd, void *buf, size_t len, int flags)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0)
        return rc;
    /* A peek consumes nothing: it must never conclude the socket drained. */
    READ_LOOP(f, cur, (flags & MSG_PEEK) ? 0 : len, recv(fd, buf, len, flags));
}

ssize_t tide_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                      socklen_t *addrlen)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    if ((!buf && len) || (addr && !addrlen))
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    /* One datagram per call: a short one says nothing about the next. */
    READ_LOOP(f, cur, 0, recvfrom(fd, buf, len, flags, addr, addrlen));
}

int tide_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    if (addr && !addrlen)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    for (;;) {
        int c;
        if (!(f->ready & TIDE__EV_IN)) {
            rc = tide__fd_wait(cur, f, TIDE__EV_IN);
            if (rc < 0)
                return rc;
        }
        c = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            f->ready &= ~TIDE__EV_IN;
            break;
        case EINTR:
        case ECONNABORTED: /* the peer gave up before we took it: next */
        case EPROTO:
            break;
        default:
            return -errno;
        }
    }
}

/* ------------------------------------------------------------- writing */

/* Writes everything (like Go's Write): returns len, or, if an error or a
 * cancellation comes after some bytes went out, the count written so far
 * (the next call reports the error). */
#define WRITE_ALL(f, cur, len, call_with_done)                                                 \
    do {                                                                                       \
        size_t done_ = 0;                                                                      \
        while (done_ < (len)) {                                                                \
            ssize_t n_;                                                                        \
            if (!((f)->ready & TIDE__EV_OUT)) {                                                \
                int w_ = tide__fd_wait((cur), (f), TIDE__EV_OUT);                              \
                if (w_ < 0)                                                                    \
                    return done_ ? (ssize_t)done_ : w_;                                        \
            }                                                                                  \
            n_ = (call_with_done);                                                             \
            if (n_ == 0)                                                                       \
                return (ssize_t)done_; /* nothing more to send (sendfile at EOF) */           \
            if (n_ > 0) {                                                                      \
                done_ += (size_t)n_;                                                           \
                if (done_ < (len) && !(f)->always_ready)                                       \
                    (f)->ready &= ~TIDE__EV_OUT;                                               \
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {                              \
                (f)->ready &= ~TIDE__EV_OUT;                                                   \
            } else if (errno != EINTR) {                                                       \
                return done_ ? (ssize_t)done_ : -errno;                                        \
            }                                                                                  \
        }                                                                                      \
        return (ssize_t)done_;                                                                 \
    } while (0)

ssize_t tide_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0)
        return rc;
    WRITE_ALL(f, cur, len, write(fd, p + done_, len - done_));
}

ssize_t tide_send(int fd, const void *buf, size_t len, int flags)
{
    const char *p = buf;
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0)
        return rc;
    WRITE_ALL(f, cur, len, send(fd, p + done_, len - done_, flags | MSG_NOSIGNAL));
}

/* writev of everything: advances through the iovecs on a copy. */
ssize_t tide_writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct iovec local[IOV_MAX_BATCH];
    size_t total, done = 0;
    tide_task *cur;
    tide__fd *f;
    int rc, i = 0;

    if ((!iov && iovcnt) || iovcnt < 0)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    total = iov_total(iov, iovcnt);
    size_t off = 0; /* bytes of iov[i] already written */
    while (done < total) {
        ssize_t n;
        int k;

        if (!(f->ready & TIDE__EV_OUT)) {
            rc = tide__fd_wait(cur, f, TIDE__EV_OUT);
            if (rc < 0)
                return done ? (ssize_t)done : rc;
        }
        while (i < iovcnt && off == iov[i].iov_len) { /* skip empty/finished */
            i++;
            off = 0;
        }
        for (k = 0; k < IOV_MAX_BATCH && i + k < iovcnt; k++) {
            local[k].iov_base = (char *)iov[i + k].iov_base + (k == 0 ? off : 0);
            local[k].iov_len = iov[i + k].iov_len - (k == 0 ? off : 0);
        }
        n = writev(fd, local, k);
        size_t batch = iov_total(local, k);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                f->ready &= ~TIDE__EV_OUT;
            else if (errno != EINTR)
                return done ? (ssize_t)done : -errno;
            continue;
        }
        done += (size_t)n;
        if ((size_t)n < batch && !f->always_ready)
            f->ready &= ~TIDE__EV_OUT; /* the socket buffer is full */
        while (n > 0) { /* advance (i, off) by n bytes */
            size_t left = iov[i].iov_len - off;
            if ((size_t)n < left) {
                off += (size_t)n;
                n = 0;
            } else {
                n -= (ssize_t)left;
                i++;
                off = 0;
            }
        }
    }
    return (ssize_t)done;
}

ssize_t tide_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                    socklen_t addrlen)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    rc = io_begin_buf(fd, buf, len, &cur, &f);
    if (rc < 0)
        return rc;
    for (;;) { /* one datagram: all or nothing */
        ssize_t n;
        if (!(f->ready & TIDE__EV_OUT)) {
            rc = tide__fd_wait(cur, f, TIDE__EV_OUT);
            if (rc < 0)
                return rc;
        }
        n = sendto(fd, buf, len, flags | MSG_NOSIGNAL, addr, addrlen);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            f->ready &= ~TIDE__EV_OUT;
        else if (errno != EINTR)
            return -errno;
    }
}

ssize_t tide_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    tide_task *cur;
    tide__fd *f;
    int rc;

    if (in_fd < 0)
        return -EBADF;
    rc = io_begin(out_fd, &cur, &f);
    if (rc < 0)
        return rc;
    WRITE_ALL(f, cur, count, sendfile(out_fd, in_fd, offset, count - done_));
}

/* ---------------------------------------------------- connect and close */

int tide_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    tide_task *cur;
    tide__fd *f;
    int rc, err = 0;
    socklen_t elen = sizeof err;

    if (!addr)
        return -EINVAL;
    rc = io_begin(fd, &cur, &f);
    if (rc < 0)
        return rc;
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    f->ready &= ~TIDE__EV_OUT;
    for (;;) {
        rc = tide__fd_wait(cur, f, TIDE__EV_OUT);
        if (rc < 0)
            return rc; /* the caller closes the socket: the attempt ends with it */
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            return -errno;
        if (err == 0)
            break;
        if (err != EINPROGRESS && err != EALREADY)
            return -err;
    }
    return 0;
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
    if (f->on_readable)
        f->on_readable(f, -EBADF);
    if (f->on_writable)
        f->on_writable(f, -EBADF);
    if (!f->always_ready && tide__io_fork_check(loop) == 0)
        (void)tide__poller_del(&loop->poller, fd);
    f->registered = 0;
    f->always_ready = 0;
    f->hup = 0;
    f->on_readable = f->on_writable = NULL;
    f->ready = 0;
}

int tide_fd_forget(int fd)
{
    tide_loop *loop;

    if (fd < 0)
        return -EBADF;
    /* Every loop of this thread: outside a run we cannot know which one
     * registered it (usually there is one). */
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
