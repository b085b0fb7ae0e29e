/*
 * kqueue backend (FreeBSD, NetBSD, OpenBSD, DragonFly, macOS).
 *
 * Traps of the API, and what we do about them:
 *  - A kevent is an (fd, filter) pair: one fd is two registrations, EVFILT_READ
 *    and EVFILT_WRITE, and a ready fd may come back as two kevents.  We merge
 *    adjacent kevents with the same tag into one callback; kevents that are
 *    not adjacent still make two callbacks, so owners OR what they are given
 *    (they keep readiness as state anyway, so a second report is harmless).
 *  - EV_CLEAR is the edge trigger: the state is reset when the kevent is
 *    returned, and it fires again only on new activity (more data, more room,
 *    EOF).  As with epoll, the owner must consume until EAGAIN before waiting.
 *    Registration runs the filter once, so an fd that is already ready
 *    reports at once.
 *  - A change list is applied in order.  Without an event list, the first
 *    failing change stops the call (kevent returns -1 and errno, the changes
 *    before it stay applied).  With an event list, failures come back as
 *    kevents with EV_ERROR (errno in data), and so would, unless EV_RECEIPT
 *    is set, any pending events, which we would then drop.  So changes are
 *    always made with no event list: add rolls back on failure; del deletes
 *    one filter per call, so an absent filter (ENOENT) does not stop the
 *    other.  Waits pass no changes, so EV_ERROR should never come back from
 *    a wait; if it does, we report TIDE__EV_ERR and let the owner retry.
 *  - The write filter of a pipe whose reader is gone cannot be added: FreeBSD
 *    and OpenBSD fail it with EPIPE (after the read filter, first in the list,
 *    went in).  add accepts that: any write fails at once with EPIPE, so the
 *    owner never needs to wait for the write side.
 *  - EV_EOF: on the read filter, the peer shut down (reads drain what is left
 *    and then see EOF): TIDE__EV_HUP.  On the write filter, the reader is gone
 *    or our own side was shut down (shutdown(SHUT_WR)), which says nothing
 *    about reads: only TIDE__EV_OUT, the write then fails with EPIPE.  For
 *    sockets fflags holds the pending socket error (e.g. ECONNREFUSED after a
 *    failed connect), which we report as TIDE__EV_ERR.
 *  - Unlike epoll, kqueue watches the fd number in this process: close()
 *    removes its kevents (and drops the ones pending).  Owners must still call
 *    tide__poller_del before close, so that a new fd given the same number
 *    never inherits a registration, and tag their events with a sequence
 *    number as on Linux.
 *  - Regular files and directories register fine (EVFILT_READ: "not at end
 *    of file"; EVFILT_WRITE: always), but with EV_CLEAR their write filter
 *    fires once and then only on new activity on the vnode: an owner that
 *    waits after a short write (a full disk, RLIMIT_FSIZE) would wait
 *    forever.  So add refuses them with EPERM, as epoll does, and the owner
 *    treats them as always ready (the poller contract, see poll.h).
 *  - A kqueue is not inherited across fork (so a child needs a new poller),
 *    but it is across exec unless close-on-exec: kqueue1(O_CLOEXEC) on NetBSD,
 *    kqueuex(KQUEUE_CLOEXEC) on FreeBSD 14+, else kqueue() and fcntl.
 *  - udata is void * everywhere except NetBSD before 10 (intptr_t).  Both are
 *    pointer-sized, so we copy the tag in and out with memcpy, which compiles
 *    on either, and we set kevent fields by hand rather than with EV_SET.
 *  - The timeout is a timespec: no rounding needed, but a huge tv_sec may
 *    overflow a 32-bit time_t or the kernel's own conversion, or be refused
 *    (Darwin caps its timeouts at 10^8 s), so we cap it at 10^8 s (3 years);
 *    the loop just goes round.  NULL waits forever, {0, 0} just looks.
 *  - EINTR (a signal arrived) is not an error: the loop just goes round.
 *  - The wake-up channel is a non-blocking pipe (no eventfd here; EVFILT_USER
 *    is not on every version we target).  Each write to it is new activity,
 *    so it fires again even if bytes are left; the wait drains it anyway, so
 *    the pipe never fills unless ~64k wake-ups race one wait, and then the
 *    write's EAGAIN is harmless since a wake-up is pending.
 */
#include "poll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define KQ_MAX_TIMEOUT_SEC 100000000 /* 10^8 s: accepted everywhere */

_Static_assert(sizeof(((struct kevent *)0)->udata) == sizeof(void *),
               "kevent.udata must hold a pointer");

static void kev_set(struct kevent *kev, int fd, int filter, unsigned flags, void *tag)
{
    memset(kev, 0, sizeof *kev);
    kev->ident = (uintptr_t)fd;
    kev->filter = filter;
    kev->flags = flags;
    memcpy(&kev->udata, &tag, sizeof tag); /* void * or intptr_t */
}

static void *kev_tag(const struct kevent *kev)
{
    void *tag;
    memcpy(&tag, &kev->udata, sizeof tag);
    return tag;
}

static int make_kqueue(void)
{
#if defined(__NetBSD__)
    return kqueue1(O_CLOEXEC);
#elif defined(KQUEUE_CLOEXEC) /* FreeBSD 14+ */
    return kqueuex(KQUEUE_CLOEXEC);
#else
    int fd = kqueue();
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
#endif
}

static int make_pipe(int fds[2])
{
#if defined(__APPLE__) /* no pipe2 */
    int i;
    if (pipe(fds) < 0)
        return -1;
    for (i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 || fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0) {
            int err = errno;
            close(fds[0]);
            close(fds[1]);
            errno = err;
            return -1;
        }
    }
    return 0;
#else
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
#endif
}

int tide__poller_init(tide__poller *p)
{
    struct kevent kev;
    int fds[2], err;

    p->wake_rd = p->wake_wr = -1;
    p->uring = NULL;
    p->fd = make_kqueue();
    if (p->fd < 0)
        return -errno;
    if (make_pipe(fds) < 0)
        goto fail;
    p->wake_rd = fds[0];
    p->wake_wr = fds[1];
    kev_set(&kev, p->wake_rd, EVFILT_READ, EV_ADD | EV_CLEAR, p);
    if (kevent(p->fd, &kev, 1, NULL, 0, NULL) < 0)
        goto fail;
    return 0;

fail:
    err = errno;
    tide__poller_free(p);
    return -err;
}

void tide__poller_free(tide__poller *p)
{
    if (p->wake_rd >= 0)
        close(p->wake_rd);
    if (p->wake_wr >= 0)
        close(p->wake_wr);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = p->wake_rd = p->wake_wr = -1;
}

int tide__poller_add(tide__poller *p, int fd, void *tag)
{
    struct kevent ch[2];
    struct stat st;
    int err;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM; /* always ready: never registered (see the top) */
    kev_set(&ch[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR, tag);
    kev_set(&ch[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, tag);
    if (kevent(p->fd, ch, 2, NULL, 0, NULL) == 0)
        return 0;
    err = errno;
    if (err == EPIPE) /* a pipe's write end, reader gone: the read filter is in */
        return 0;
    (void)tide__poller_del(p, fd); /* the read filter may have gone in */
    return -err;
}

int tide__poller_del(tide__poller *p, int fd)
{
    static const int filters[2] = {EVFILT_READ, EVFILT_WRITE};
    int i, rc = 0;

    for (i = 0; i < 2; i++) {
        struct kevent kev;
        kev_set(&kev, fd, filters[i], EV_DELETE, NULL);
        if (kevent(p->fd, &kev, 1, NULL, 0, NULL) < 0 && errno != ENOENT && !rc)
            rc = -errno;
    }
    return rc;
}

static unsigned kev_events(const struct kevent *kev)
{
    unsigned out = 0;

    if (kev->flags & EV_ERROR)
        return TIDE__EV_ERR | TIDE__EV_IN | TIDE__EV_OUT;
    if (kev->filter == EVFILT_READ) {
        out = TIDE__EV_IN;
        if (kev->flags & EV_EOF) /* the peer shut down: reads will see EOF */
            out |= TIDE__EV_HUP;
    } else if (kev->filter == EVFILT_WRITE) {
        out = TIDE__EV_OUT;
    }
    if ((kev->flags & EV_EOF) && kev->fflags) /* a socket error */
        out |= TIDE__EV_ERR | TIDE__EV_IN | TIDE__EV_OUT;
    return out;
}

int tide__poller_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx)
{
    struct kevent evs[TIDE__POLL_BATCH];
    struct timespec ts, *tsp = NULL;
    int n, i, reported = 0;

    if (timeout_ns >= 0) {
        if (timeout_ns / 1000000000 >= KQ_MAX_TIMEOUT_SEC) {
            ts.tv_sec = KQ_MAX_TIMEOUT_SEC;
            ts.tv_nsec = 0;
        } else {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
        }
        tsp = &ts;
    }

    n = kevent(p->fd, NULL, 0, evs, TIDE__POLL_BATCH, tsp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        void *tag = kev_tag(&evs[i]);
        unsigned out;

        if (tag == p) {
            char buf[256];
            while (read(p->wake_rd, buf, sizeof buf) > 0)
                ; /* until EAGAIN */
            continue;
        }
        out = kev_events(&evs[i]);
        while (i + 1 < n && kev_tag(&evs[i + 1]) == tag) /* the fd's other filter */
            out |= kev_events(&evs[++i]);
        cb(ctx, tag, out);
        reported++;
    }
    return reported;
}

void tide__poller_wake(tide__poller *p)
{
    int err = errno; /* we may be in a signal handler */
    char one = 1;
    ssize_t r = write(p->wake_wr, &one, 1);
    (void)r; /* EAGAIN: the pipe is full, so a wake-up is pending anyway */
    errno = err;
}

const char *tide__poller_name(const tide__poller *p)
{
    (void)p;
    return "kqueue";
}
