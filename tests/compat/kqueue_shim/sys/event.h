/*
 * A stand-in for the BSDs' <sys/event.h>, so that src/poll_kqueue.c compiles
 * on Linux (tests/compat/bsd_check.sh, the "kqueue + BSD paths" step of
 * .ci/run).  Declarations only: nothing here runs, nothing links.
 *
 * Written for tide from the kqueue(2) manual pages of FreeBSD, NetBSD,
 * OpenBSD and macOS.  The filter and flag values are the ones the systems
 * share for what tide uses; the other values only need to be distinct.
 * What differs between the systems in ways that matter to portable code is
 * modelled after the "persona" macro the check defines (__FreeBSD__,
 * __NetBSD__, __OpenBSD__, __DragonFly__, __APPLE__; none: a generic BSD):
 *  - the field types of struct kevent (NetBSD: 32-bit filter and flags, and
 *    udata an intptr_t before NetBSD 10, the version modelled here; FreeBSD
 *    12+: an ext[4] array at the end);
 *  - kevent()'s counts: size_t on NetBSD, int elsewhere;
 *  - kqueue1(flags) on NetBSD, kqueuex(KQUEUE_CLOEXEC) on FreeBSD 14+;
 *  - EVFILT_USER and EV_RECEIPT are missing on OpenBSD and NetBSD 9, so code
 *    must test for them.
 */
#ifndef TIDE_SHIM_SYS_EVENT_H
#define TIDE_SHIM_SYS_EVENT_H

#include <stdint.h>
#include <string.h> /* memset, for EV_SET */
#include <sys/types.h>
#include <time.h>

#if defined(__NetBSD__)
struct kevent {
    uintptr_t ident;
    uint32_t filter;
    uint32_t flags;
    uint32_t fflags;
    int64_t data;
    intptr_t udata;
};
#define TIDE_SHIM_KEV_UDATA(p) ((intptr_t)(p))
#elif defined(__APPLE__)
struct kevent {
    uintptr_t ident;
    int16_t filter;
    uint16_t flags;
    uint32_t fflags;
    intptr_t data;
    void *udata;
};
#define TIDE_SHIM_KEV_UDATA(p) ((void *)(p))
#else
struct kevent {
    uintptr_t ident;
    short filter;
    unsigned short flags;
    unsigned int fflags;
    int64_t data;
    void *udata;
#if defined(__FreeBSD__)
    uint64_t ext[4];
#endif
};
#define TIDE_SHIM_KEV_UDATA(p) ((void *)(p))
#endif

/* Fills *kevp; every argument is evaluated once. */
#define EV_SET(kevp, a, b, c, d, e, f)                                                        \
    do {                                                                                       \
        struct kevent *tide_shim_kev_ = (kevp);                                                \
        memset(tide_shim_kev_, 0, sizeof *tide_shim_kev_);                                     \
        tide_shim_kev_->ident = (a);                                                           \
        tide_shim_kev_->filter = (b);                                                          \
        tide_shim_kev_->flags = (c);                                                           \
        tide_shim_kev_->fflags = (d);                                                          \
        tide_shim_kev_->data = (e);                                                            \
        tide_shim_kev_->udata = TIDE_SHIM_KEV_UDATA(f);                                        \
    } while (0)

/* Filters.  NetBSD numbers them from 0 (unsigned), the others from -1 down. */
#if defined(__NetBSD__)
#define EVFILT_READ 0U
#define EVFILT_WRITE 1U
#define EVFILT_AIO 2U
#define EVFILT_VNODE 3U
#define EVFILT_PROC 4U
#define EVFILT_SIGNAL 5U
#define EVFILT_TIMER 6U
#else
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_AIO (-3)
#define EVFILT_VNODE (-4)
#define EVFILT_PROC (-5)
#define EVFILT_SIGNAL (-6)
#define EVFILT_TIMER (-7)
#if !defined(__OpenBSD__)
#define EVFILT_USER (-11)
#endif
#endif

/* Actions and flags (input). */
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#if !defined(__OpenBSD__) && !defined(__NetBSD__)
#define EV_RECEIPT 0x0040
#endif
#define EV_DISPATCH 0x0080
/* Returned. */
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

/* fflags of EVFILT_READ / EVFILT_WRITE. */
#define NOTE_LOWAT 0x0001
/* fflags of EVFILT_USER. */
#if defined(EVFILT_USER)
#define NOTE_FFNOP 0x00000000
#define NOTE_FFAND 0x40000000
#define NOTE_FFOR 0x80000000
#define NOTE_FFCOPY 0xc0000000
#define NOTE_FFCTRLMASK 0xc0000000
#define NOTE_FFLAGSMASK 0x00ffffff
#define NOTE_TRIGGER 0x01000000
#endif
/* fflags of EVFILT_VNODE. */
#define NOTE_DELETE 0x0001
#define NOTE_WRITE 0x0002
#define NOTE_EXTEND 0x0004
#define NOTE_ATTRIB 0x0008
#define NOTE_RENAME 0x0020
/* fflags of EVFILT_PROC. */
#define NOTE_EXIT 0x80000000
#define NOTE_FORK 0x40000000
#define NOTE_EXEC 0x20000000
/* fflags of EVFILT_TIMER (where units can be chosen). */
#if defined(__FreeBSD__) || defined(__APPLE__)
#define NOTE_SECONDS 0x0001
#define NOTE_MSECONDS 0x0002
#define NOTE_USECONDS 0x0004
#define NOTE_NSECONDS 0x0008
#endif

int kqueue(void);
#if defined(__NetBSD__)
int kqueue1(int flags);
int kevent(int kq, const struct kevent *changelist, size_t nchanges, struct kevent *eventlist,
           size_t nevents, const struct timespec *timeout);
#else
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);
#endif
#if defined(__FreeBSD__) && __FreeBSD__ >= 14
#define KQUEUE_CLOEXEC 0x00000001
int kqueuex(unsigned int flags);
#endif

#endif /* TIDE_SHIM_SYS_EVENT_H */
