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
int tide__uring_add(tide__poller *p, int fd, void *tag);
int tide__uring_del(tide__poller *p, int fd);
int tide__uring_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx);
/* Test hook: when non-zero, tide__uring_init fails with -tide__uring_fail_setup
 * as if io_uring_setup had (seccomp's EPERM, an old kernel's ENOSYS). */
extern int tide__uring_fail_setup;
#endif

#endif
