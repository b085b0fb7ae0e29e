/*
 * epoll backend.
 *
 * Traps of the API, and what we do about them:
 *  - epoll registers the open file description, not the fd number: an fd
 *    closed without EPOLL_CTL_DEL stays registered while a dup of it lives,
 *    and events keep arriving with the old tag.  Owners must call
 *    tide__poller_del before close (tide_close does).  No event can be in
 *    flight for a closed fd: the loop dispatches a whole batch (which only
 *    marks fds ready and queues tasks) before any task runs and closes one;
 *    a task woken before the close sees the fd's generation changed.
 *  - Edge-triggered mode reports a transition, not a level: after an event
 *    the owner must consume until EAGAIN (or know the socket is drained, as a
 *    short read tells) before it waits again, or it may wait forever.
 *  - epoll_wait's timeout is in milliseconds: we round up, so a timer never
 *    wakes the loop early into a busy spin.  A timeout that is not whole
 *    milliseconds (tide_sleep_ns, call_later_ns) goes through epoll_pwait2
 *    (Linux 5.11, nanoseconds) where the kernel has it.
 *  - EINTR (a signal arrived) is not an error: the loop just goes round.
 *  - The wake-up channel is an eventfd; each write makes an edge even while
 *    the counter is non-zero, and we drain it with one read per wake-up.
 */
#include "poll.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#if defined(__x86_64__) || defined(__aarch64__) || defined(__i386__) || defined(__arm__)
#define SYS_epoll_pwait2 441
#endif
#endif

#ifdef SYS_epoll_pwait2
static int have_pwait2 = 1; /* cleared on ENOSYS (any thread may race: harmless) */
#endif

/* TIDE_POLLER: 0 epoll (unset, empty or "epoll"), 1 io_uring, 2 auto. */
static int wanted_backend(void)
{
    const char *v = getenv("TIDE_POLLER");

    if (!v || !*v || !strcmp(v, "epoll"))
        return 0;
    if (!strcmp(v, "io_uring") || !strcmp(v, "uring"))
        return 1;
    if (!strcmp(v, "auto"))
        return 2;
    return 0; /* unknown: the default */
}

int tide__poller_init(tide__poller *p)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = p};

    p->uring = NULL;
    /* io_uring when asked for and the kernel allows it (seccomp filters
     * answer EPERM or ENOSYS to io_uring_setup): else epoll, silently. */
    if (wanted_backend() && tide__uring_init(p) == 0)
        return 0;

    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        return -errno;
    p->wake_rd = p->wake_wr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_rd < 0)
        goto fail_epoll;
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, p->wake_rd, &ev) < 0)
        goto fail_eventfd;
    return 0;

fail_eventfd: {
    int err = errno;
    close(p->wake_rd);
    errno = err;
}
fail_epoll: {
    int err = errno;
    close(p->fd);
    p->fd = p->wake_rd = p->wake_wr = -1;
    return -err;
}
}

void tide__poller_free(tide__poller *p)
{
    if (p->uring) {
        tide__uring_free(p);
        return;
    }
    if (p->wake_rd >= 0)
        close(p->wake_rd);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = p->wake_rd = p->wake_wr = -1;
}

int tide__poller_add(tide__poller *p, int fd, void *tag)
{
    if (p->uring)
        return tide__uring_add(p, fd, tag, 0);
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = tag,
    };
    return epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int tide__poller_add_lazy(tide__poller *p, int fd, void *tag)
{
    if (p->uring)
        return tide__uring_add(p, fd, tag, 1);
    return tide__poller_add(p, fd, tag);
}

int tide__poller_watch(tide__poller *p, int fd)
{
    return p->uring ? tide__uring_watch(p, fd) : 0;
}

int tide__poller_del(tide__poller *p, int fd)
{
    struct epoll_event ev = {0}; /* non-NULL for kernels before 2.6.9 */

    if (p->uring)
        return tide__uring_del(p, fd);
    return epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int tide__poller_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx)
{
    struct epoll_event evs[TIDE__POLL_BATCH];
    int timeout_ms, n, i, reported = 0;

    if (p->uring)
        return tide__uring_wait(p, timeout_ns, cb, ctx);

    if (timeout_ns < 0)
        timeout_ms = -1;
    else if (timeout_ns >= (int64_t)INT32_MAX * 1000000)
        timeout_ms = INT32_MAX;
    else
        timeout_ms = (int)((timeout_ns + 999999) / 1000000);

#ifdef SYS_epoll_pwait2
    if (timeout_ns > 0 && timeout_ns % 1000000 && timeout_ms < 1000 &&
        __atomic_load_n(&have_pwait2, __ATOMIC_RELAXED)) {
        struct timespec ts = {0, (long)timeout_ns};
        n = (int)syscall(SYS_epoll_pwait2, p->fd, evs, TIDE__POLL_BATCH, &ts, NULL, (size_t)8);
        if (n < 0 && errno == ENOSYS) {
            __atomic_store_n(&have_pwait2, 0, __ATOMIC_RELAXED);
            n = epoll_wait(p->fd, evs, TIDE__POLL_BATCH, timeout_ms);
        }
    } else
#endif
        n = epoll_wait(p->fd, evs, TIDE__POLL_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        unsigned out = 0;

        if (evs[i].data.ptr == p) {
            uint64_t v;
            ssize_t r = read(p->wake_rd, &v, sizeof v);
            (void)r; /* EAGAIN: someone else drained it; nothing to do */
            continue;
        }
        if (e & EPOLLIN)
            out |= TIDE__EV_IN;
        if (e & EPOLLOUT)
            out |= TIDE__EV_OUT;
        if (e & EPOLLERR)
            out |= TIDE__EV_ERR | TIDE__EV_IN | TIDE__EV_OUT;
        if (e & (EPOLLHUP | EPOLLRDHUP))
            out |= TIDE__EV_HUP | TIDE__EV_IN;
        if (e & EPOLLHUP)
            out |= TIDE__EV_OUT;
        cb(ctx, evs[i].data.ptr, out);
        reported++;
    }
    return reported;
}

void tide__poller_wake(tide__poller *p)
{
    uint64_t one = 1;
    int saved = errno; /* callable from a signal handler */
    ssize_t r = write(p->wake_wr, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is saturated, the loop wakes anyway */
    errno = saved;
}

const char *tide__poller_name(const tide__poller *p)
{
    return p->uring ? "io_uring" : "epoll";
}
