/*
 * The poller: one small contract, one file per kernel API (poll_epoll.c on
 * Linux, poll_kqueue.c on the BSDs and macOS), picked by CMake.
 *
 * Every fd is registered once, for both directions, edge-triggered: the
 * poller reports a direction when it becomes ready, and the owner keeps the
 * readiness state until a syscall returns EAGAIN.  The tag given at
 * registration comes back with each event; the owner uses it to find the fd's
 * state (and a sequence number in it to drop an event that is stale).
 *
 * The poller also owns a wake-up channel that other threads may poke
 * (tide__poller_wake is the only thread-safe function here).
 */
#ifndef TIDE_POLL_H
#define TIDE_POLL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define TIDE__EV_IN 0x1u  /* readable (or a listening socket has a connection) */
#define TIDE__EV_OUT 0x2u /* writable */
#define TIDE__EV_ERR 0x4u /* error condition: both directions should retry */
#define TIDE__EV_HUP 0x8u /* peer hung up: reads will see EOF */

#define TIDE__POLL_BATCH 256

typedef void (*tide__poll_cb)(void *ctx, void *tag, unsigned events);

struct tide__uring;

typedef struct tide__poller {
    int fd;      /* the epoll, kqueue or io_uring instance */
    int wake_rd; /* read end of the wake-up channel (eventfd or pipe) */
    int wake_wr; /* write end (the same fd for an eventfd) */
    struct tide__uring *uring; /* Linux: non-NULL when io_uring is used */
} tide__poller;

/* Makes the poller and its wake-up channel.  On Linux the backend is chosen
 * here, per poller, from the environment: TIDE_POLLER=epoll (the default),
 * io_uring or auto (io_uring when the kernel allows it); io_uring falls back
 * to epoll when the ring cannot be made (see docs/io_uring.md).  Returns 0 or
 * -errno. */
int tide__poller_init(tide__poller *p);
void tide__poller_free(tide__poller *p);
/* Registers fd for both directions, edge-triggered.  Returns 0 or -errno;
 * -EPERM means fd cannot be watched and needs not be (a regular file or a
 * directory): it was not registered, and its owner treats it as always
 * ready.  Both backends answer so for those fds (epoll by itself). */
int tide__poller_add(tide__poller *p, int fd, void *tag);
#if defined(__linux__)
/* tide__poller_add, but the poll itself is armed only by the first
 * tide__poller_watch (io_uring: an fd served by completion operations
 * needs no poll, and each wake-up of an armed one costs a completion).
 * epoll: the same as tide__poller_add, and watch does nothing. */
int tide__poller_add_lazy(tide__poller *p, int fd, void *tag);
/* Arms the poll of an fd registered lazily, if not yet armed: its first
 * report says what is ready now.  0 or -errno. */
int tide__poller_watch(tide__poller *p, int fd);
#else
static inline int tide__poller_add_lazy(tide__poller *p, int fd, void *tag)
{
    return tide__poller_add(p, fd, tag);
}
static inline int tide__poller_watch(tide__poller *p, int fd)
{
    (void)p, (void)fd;
    return 0;
}
#endif
/* Unregisters fd; call it before closing fd.  Returns 0 or -errno. */
int tide__poller_del(tide__poller *p, int fd);
/* Waits at most timeout_ns (< 0: forever; 0: just look) and calls cb once per
 * ready fd.  A wake-up is consumed here and not reported to cb.  Returns the
 * number of events given to cb, or -errno (-EINTR is reported as 0). */
int tide__poller_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx);
/* Wakes a thread blocked in tide__poller_wait; callable from any thread and
 * from a signal handler. */
void tide__poller_wake(tide__poller *p);
/* The backend's name: "epoll", "io_uring" or "kqueue". */
const char *tide__poller_name(const tide__poller *p);

#if defined(__linux__)
/* The io_uring backend (poll_uring.c), called by poll_epoll.c's functions
 * when p->uring is set.  tide__uring_init returns 0 or -errno (-ENOSYS when
 * the kernel or the headers lack what it needs). */
int tide__uring_init(tide__poller *p);
void tide__uring_free(tide__poller *p);
/* Cancels every completion operation in flight and waits for their
 * completions (no done callback runs from then on): tide_loop_free, before
 * the stacks of tasks it could not finish go. */
void tide__uring_drain(tide__poller *p);
int tide__uring_add(tide__poller *p, int fd, void *tag, int lazy);
int tide__uring_watch(tide__poller *p, int fd);
int tide__uring_del(tide__poller *p, int fd);
int tide__uring_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx);
#endif

/*
 * Completion operations (io_uring only; docs/io_uring.md, "Stage 2").  An
 * operation is a recv or send the kernel performs on a buffer the caller
 * keeps valid, and owns, until done(op) is called from tide__poller_wait
 * (op->res: the count, 0 at EOF, or -errno).  The tide__uop lives wherever
 * the buffer's owner lives (a waiting task's stack, a stream): the kernel
 * only echoes its address.  Submissions are queued and go to the kernel
 * with the next wait's io_uring_enter.  tide__poller_ops says whether the
 * poller takes them (an io_uring with async cancel by fd).
 */
typedef struct tide__uop tide__uop;
struct tide__uop {
    void (*done)(tide__uop *op); /* called once, from tide__poller_wait */
    int32_t res;
    uint8_t inflight; /* submitted, its completion not yet seen */
};
#if defined(__linux__)
int tide__poller_ops(const tide__poller *p);
/* Queues a recv (flags: MSG_*) into buf, or a send (MSG_NOSIGNAL added) of
 * buf.  0 or -errno (-EAGAIN: the SQ is full and could not be flushed;
 * -ECHILD: a forked child's copy of the ring): then nothing was queued. */
int tide__uring_recv(tide__poller *p, tide__uop *op, int fd, void *buf, size_t len, int flags);
int tide__uring_send(tide__poller *p, tide__uop *op, int fd, const void *buf, size_t len,
                     int flags);
/* Queues a sendmsg of m (which must stay valid until done). */
int tide__uring_sendmsg(tide__poller *p, tide__uop *op, int fd, const void *m, int flags);
/* Asks the kernel, now (one io_uring_enter), to cancel op; its completion
 * still comes (-ECANCELED, or the result if it had finished).  0 or -errno. */
int tide__uring_cancel(tide__poller *p, tide__uop *op);
static inline void tide__poller_drain_ops(tide__poller *p)
{
    if (p->uring)
        tide__uring_drain(p);
}
#else /* no io_uring: the readiness path is the only one */
static inline int tide__poller_ops(const tide__poller *p)
{
    (void)p;
    return 0;
}
static inline int tide__uring_recv(tide__poller *p, tide__uop *op, int fd, void *buf, size_t len,
                                   int flags)
{
    (void)p, (void)op, (void)fd, (void)buf, (void)len, (void)flags;
    return -ENOSYS;
}
static inline int tide__uring_send(tide__poller *p, tide__uop *op, int fd, const void *buf,
                                   size_t len, int flags)
{
    (void)p, (void)op, (void)fd, (void)buf, (void)len, (void)flags;
    return -ENOSYS;
}
static inline int tide__uring_sendmsg(tide__poller *p, tide__uop *op, int fd, const void *m,
                                      int flags)
{
    (void)p, (void)op, (void)fd, (void)m, (void)flags;
    return -ENOSYS;
}
static inline int tide__uring_cancel(tide__poller *p, tide__uop *op)
{
    (void)p, (void)op;
    return -ENOSYS;
}
static inline void tide__poller_drain_ops(tide__poller *p)
{
    (void)p;
}
#endif

#if defined(__linux__)
/* Test hook: when non-zero, tide__uring_init fails with -tide__uring_fail_setup
 * as if io_uring_setup had (seccomp's EPERM, an old kernel's ENOSYS). */
extern int tide__uring_fail_setup;
/* Test hook: when non-zero, rings made from then on take no completion
 * operations (the readiness path only, as on a kernel before 5.19); so does
 * TIDE_URING_NO_OPS=1 in the environment. */
extern int tide__uring_no_ops;
/* Test hook: when non-zero, the submits made outside the loop's wait fail
 * (-EBUSY, as io_uring_enter's with a CQ overflow backlog), so a full SQ
 * cannot be flushed until the loop's next wait enters with it; at 2 the
 * loop's wait submits nothing either (SQEs stay queued until it is reset). */
extern int tide__uring_fail_submit;
#endif

#endif
