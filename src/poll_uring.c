/*
 * io_uring backend (Linux), behind the same readiness contract as epoll
 * (poll.h).  Raw syscalls, no liburing: see docs/io_uring.md for why.
 *
 * How the contract maps onto the ring:
 *  - Each registered fd has one multishot IORING_OP_POLL_ADD for
 *    POLLIN|POLLOUT|POLLRDHUP.  A multishot poll posts one completion per
 *    wake-up of the file's wait queue, as epoll's EPOLLET does per edge; the
 *    owner still clears readiness only on EAGAIN.  When the kernel ends a
 *    multishot poll (a CQE without IORING_CQE_F_MORE, e.g. on CQ overflow)
 *    and the fd is still registered, it is armed again and reported as ready
 *    in both directions (readiness unknown: the owner tries first).
 *  - A completion may sit in the CQ after its fd was unregistered (and its
 *    owner's memory reused), so a CQE never carries the owner's pointer:
 *    user_data is (generation << 32 | fd) and a per-fd slot table keeps the
 *    tag and the generation; del bumps the generation and a stale CQE is
 *    dropped.
 *  - A poll request holds a reference to the file: a socket closed while its
 *    poll is armed would stay open.  So del submits IORING_OP_ASYNC_CANCEL at
 *    once (one syscall, as epoll_ctl(DEL)); the kernel has dropped the
 *    reference when io_uring_enter returns.  Adds are only queued: they go
 *    to the kernel with the next wait's io_uring_enter.
 *  - Submission and waiting are one io_uring_enter per loop iteration
 *    (to_submit + GETEVENTS + EXT_ARG with the timeout in nanoseconds); a
 *    zero timeout with nothing queued and completions already in the CQ
 *    makes no syscall at all.  The ring fd is registered
 *    (IORING_REGISTER_RING_FDS) when the kernel can, which spares the
 *    kernel an fd lookup per enter.
 *  - The wake-up channel is an eventfd read by an IORING_OP_READ on the
 *    ring, into a buffer the ring state owns: a wake-up costs the waker one
 *    write and the loop no extra syscall (the read is armed again with the
 *    next enter).
 *  - Regular files, directories and devices that epoll refuses answer
 *    -EPERM, as the contract asks: a character or block device is probed
 *    once with a small epoll instance kept for that.
 *  - After fork() the child shares the ring with its parent; free (called by
 *    the child's fork check) only unmaps and closes its copies, it never
 *    submits (a cancel would end the parent's polls).
 */
#include "poll.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int tide__uring_fail_setup;
extern volatile unsigned tide__fork_gen; /* io.c: bumped in a forked child */

#if defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#endif
#endif

#if defined(IORING_POLL_ADD_MULTI) && defined(IORING_FEAT_RSRC_TAGS) && \
    defined(IORING_ENTER_EXT_ARG) && defined(SYS_io_uring_setup)

#include <sys/poll.h>
#include <sys/socket.h>

#define SQ_ENTRIES 256u
#define CQ_ENTRIES 4096u
#define UD_WAKE UINT64_MAX        /* the eventfd read */
#define UD_IGNORE (UINT64_MAX - 1) /* the cancels */
#ifdef IORING_SQ_TASKRUN
#define SQ_MUST_ENTER (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)
#else
#define SQ_MUST_ENTER IORING_SQ_CQ_OVERFLOW
#endif
#define POLL_MASK (POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP)

typedef struct slot {
    void *tag;     /* NULL: not registered */
    uint32_t gen;  /* bumped by del */
    uint8_t armed; /* its poll was submitted (a lazy add arms on watch) */
} slot;

struct tide__uring {
    int ring_fd;
    int enter_fd;        /* ring_fd, or its registered index */
    unsigned enter_flags; /* IORING_ENTER_REGISTERED_RING or 0 */
    /* submission queue */
    unsigned *sq_khead, *sq_ktail, *sq_kflags;
    unsigned sq_mask, sq_entries, sq_tail;
    struct io_uring_sqe *sqes;
    /* completion queue */
    unsigned *cq_khead, *cq_ktail;
    unsigned cq_mask;
    struct io_uring_cqe *cqes;
    void *ring_map;
    size_t ring_len, sqes_len;
    /* the fds */
    slot *slots;
    size_t nslots;
    int probe_fd; /* epoll instance to ask about devices, or -1 */
    int wake_armed;
    uint64_t wake_buf;
    unsigned features;
    unsigned fork_gen; /* tide__fork_gen when made: else a forked child's copy */
    unsigned nops;        /* completion operations in flight */
    uint8_t ops_ok;       /* the kernel cancels by fd: completion operations on */
    uint8_t closing;      /* free drains the operations: done is not called */
    pthread_t reg_thread; /* the thread whose table holds enter_fd */
};

static int sys_setup(unsigned entries, struct io_uring_params *prm)
{
    return (int)syscall(SYS_io_uring_setup, entries, prm);
}

static int sys_enter(struct tide__uring *u, unsigned submit, unsigned wait, unsigned flags,
                     void *arg, size_t argsz)
{
    /* A registered ring index is the registering thread's own (another
     * thread's index 0 may be another ring): elsewhere, the plain fd. */
    if (u->enter_flags && pthread_equal(pthread_self(), u->reg_thread))
        return (int)syscall(SYS_io_uring_enter, u->enter_fd, submit, wait,
                            flags | u->enter_flags, arg, argsz);
    return (int)syscall(SYS_io_uring_enter, u->ring_fd, submit, wait, flags, arg, argsz);
}

static unsigned sq_pending(struct tide__uring *u)
{
    return u->sq_tail - __atomic_load_n(u->sq_khead, __ATOMIC_ACQUIRE);
}

int tide__uring_fail_submit; /* test hook: submit() fails with -EBUSY; 2: the wait's too */

/* Gives the queued SQEs to the kernel (no wait).  0 or -errno. */
static int submit(struct tide__uring *u)
{
    unsigned n;
    int rc;

    __atomic_store_n(u->sq_ktail, u->sq_tail, __ATOMIC_RELEASE);
    if (tide__uring_fail_submit)
        return -EBUSY; /* as a CQ overflow backlog does; the loop's next wait submits */
    while ((n = sq_pending(u)) > 0) {
        rc = sys_enter(u, n, 0, 0, NULL, 0);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -errno; /* -EBUSY/-EAGAIN: the next wait reaps and retries */
        }
        if (rc == 0)
            return -EAGAIN;
    }
    return 0;
}

/* A zeroed SQE to fill, or NULL if the SQ is full and cannot be flushed. */
static struct io_uring_sqe *get_sqe(struct tide__uring *u)
{
    struct io_uring_sqe *sqe;

    if (sq_pending(u) >= u->sq_entries && submit(u) < 0)
        return NULL;
    sqe = &u->sqes[u->sq_tail & u->sq_mask];
    memset(sqe, 0, sizeof *sqe);
    u->sq_tail++;
    return sqe;
}

/* A poll's user_data is even (gen << 32 | fd << 1), an operation's is its
 * address with bit 0 set (a tide__uop is at least 4-aligned). */
static uint64_t poll_ud(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd << 1;
}

static int arm_poll(struct tide__uring *u, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    if (!sqe)
        return -EAGAIN;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->len = IORING_POLL_ADD_MULTI;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    sqe->poll32_events = (uint32_t)POLL_MASK << 16 | (uint32_t)POLL_MASK >> 16;
#else
    sqe->poll32_events = POLL_MASK;
#endif
    sqe->user_data = poll_ud(fd, u->slots[fd].gen);
    return 0;
}

static int arm_wake(tide__poller *p)
{
    struct tide__uring *u = p->uring;
    struct io_uring_sqe *sqe = get_sqe(u);

    if (!sqe)
        return -EAGAIN;
    sqe->opcode = IORING_OP_READ;
    sqe->fd = p->wake_rd;
    sqe->addr = (uint64_t)(uintptr_t)&u->wake_buf;
    sqe->len = sizeof u->wake_buf;
    sqe->off = (uint64_t)-1; /* current position: what an eventfd wants */
    sqe->user_data = UD_WAKE;
    u->wake_armed = 1;
    return 0;
}

static void unmap(struct tide__uring *u)
{
    if (u->sqes && u->sqes != MAP_FAILED)
        munmap(u->sqes, u->sqes_len);
    if (u->ring_map && u->ring_map != MAP_FAILED)
        munmap(u->ring_map, u->ring_len);
}

int tide__uring_no_ops; /* test hook: the readiness path only */

/* Completion operations need the kernel to cancel every request on an fd
 * (IORING_ASYNC_CANCEL_FD, 5.19): a close must take the file back from a
 * recv or send in flight.  Asked once: a cancel by the ring's own fd (on
 * which nothing waits) answers -ENOENT if the kernel knows the flag,
 * -EINVAL if not. */
static void probe_ops(struct tide__uring *u)
{
    struct io_uring_sqe *sqe;
    unsigned head;
    int rc;

    u->ops_ok = 0;
    if (tide__uring_no_ops || getenv("TIDE_URING_NO_OPS"))
        return;
    sqe = get_sqe(u);
    if (!sqe)
        return;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = u->ring_fd;
    sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    sqe->user_data = UD_IGNORE;
    __atomic_store_n(u->sq_ktail, u->sq_tail, __ATOMIC_RELEASE);
    do
        rc = sys_enter(u, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    while (rc < 0 && errno == EINTR);
    head = *u->cq_khead;
    if (rc < 0 || __atomic_load_n(u->cq_ktail, __ATOMIC_ACQUIRE) == head)
        return;
    u->ops_ok = u->cqes[head & u->cq_mask].res != -EINVAL;
    __atomic_store_n(u->cq_khead, head + 1, __ATOMIC_RELEASE);
}

static int reap(tide__poller *p, tide__poll_cb cb, void *ctx);

int tide__uring_init(tide__poller *p)
{
    struct io_uring_params prm;
    struct tide__uring *u;
    size_t sq_len, cq_len;
    unsigned i, *array;
    int err;

    if (tide__uring_fail_setup)
        return -tide__uring_fail_setup;
    u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->probe_fd = -1;
    u->fork_gen = tide__fork_gen;
    memset(&prm, 0, sizeof prm);
    prm.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
#ifdef IORING_SETUP_COOP_TASKRUN
    /* 5.19: completions' task work waits for our next enter instead of
     * interrupting the loop (we reap only there anyway). */
    prm.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
#endif
    prm.cq_entries = CQ_ENTRIES;
    u->ring_fd = sys_setup(SQ_ENTRIES, &prm);
    if (u->ring_fd < 0 && errno == EINVAL) { /* before 5.19: no COOP_TASKRUN */
        memset(&prm, 0, sizeof prm);
        prm.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
        prm.cq_entries = CQ_ENTRIES;
        u->ring_fd = sys_setup(SQ_ENTRIES, &prm);
    }
    if (u->ring_fd < 0 && errno == EINVAL) { /* before 5.18: no SUBMIT_ALL */
        memset(&prm, 0, sizeof prm);
        prm.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        prm.cq_entries = CQ_ENTRIES;
        u->ring_fd = sys_setup(SQ_ENTRIES, &prm);
    }
    if (u->ring_fd < 0) {
        err = -errno;
        free(u);
        return err;
    }
    /* 5.13 (multishot poll; RSRC_TAGS came with it), EXT_ARG (5.11),
     * NODROP (5.5), SINGLE_MMAP (5.4). */
    err = -ENOSYS;
    if (!(prm.features & IORING_FEAT_RSRC_TAGS) || !(prm.features & IORING_FEAT_EXT_ARG) ||
        !(prm.features & IORING_FEAT_NODROP) || !(prm.features & IORING_FEAT_SINGLE_MMAP))
        goto fail;
    u->features = prm.features;
    sq_len = prm.sq_off.array + prm.sq_entries * sizeof(unsigned);
    cq_len = prm.cq_off.cqes + prm.cq_entries * sizeof(struct io_uring_cqe);
    u->ring_len = sq_len > cq_len ? sq_len : cq_len;
    u->ring_map = mmap(NULL, u->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       u->ring_fd, IORING_OFF_SQ_RING);
    if (u->ring_map == MAP_FAILED) {
        err = -errno;
        goto fail;
    }
    u->sqes_len = prm.sq_entries * sizeof(struct io_uring_sqe);
    u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   u->ring_fd, IORING_OFF_SQES);
    if (u->sqes == MAP_FAILED) {
        err = -errno;
        goto fail;
    }
#define RING_AT(off) ((void *)((char *)u->ring_map + (off)))
    u->sq_khead = RING_AT(prm.sq_off.head);
    u->sq_ktail = RING_AT(prm.sq_off.tail);
    u->sq_kflags = RING_AT(prm.sq_off.flags);
    u->sq_mask = *(unsigned *)RING_AT(prm.sq_off.ring_mask);
    u->sq_entries = prm.sq_entries;
    u->sq_tail = *u->sq_ktail;
    array = RING_AT(prm.sq_off.array);
    for (i = 0; i < prm.sq_entries; i++)
        array[i] = i; /* slot i of the SQE array is SQ entry i, for ever */
    u->cq_khead = RING_AT(prm.cq_off.head);
    u->cq_ktail = RING_AT(prm.cq_off.tail);
    u->cq_mask = *(unsigned *)RING_AT(prm.cq_off.ring_mask);
    u->cqes = RING_AT(prm.cq_off.cqes);
#undef RING_AT
    u->enter_fd = u->ring_fd;
#ifdef IORING_REGISTER_RING_FDS
    {
        struct io_uring_rsrc_update up;
        memset(&up, 0, sizeof up);
        up.offset = (unsigned)-1; /* any free index */
        up.data = (uint64_t)u->ring_fd;
        if (syscall(SYS_io_uring_register, u->ring_fd, IORING_REGISTER_RING_FDS, &up, 1) == 1) {
            u->enter_fd = (int)up.offset;
            u->enter_flags = IORING_ENTER_REGISTERED_RING;
            u->reg_thread = pthread_self();
        }
    }
#endif
    probe_ops(u);
    p->wake_rd = p->wake_wr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_rd < 0) {
        err = -errno;
        goto fail;
    }
    p->uring = u;
    p->fd = u->ring_fd;
    (void)arm_wake(p); /* the SQ is empty: cannot fail */
    return 0;

fail:
    unmap(u);
    close(u->ring_fd);
    free(u);
    p->uring = NULL;
    p->fd = p->wake_rd = p->wake_wr = -1;
    return err;
}

/* Operations in flight write into buffers their owners are about to
 * free (a task released by a loop that could not finish it): cancel them
 * all and wait for every completion (the kernel's ring teardown is
 * asynchronous: closing the ring alone would not be enough).  No done
 * callback runs from then on. */
void tide__uring_drain(tide__poller *p)
{
    struct tide__uring *u = p->uring;

    if (u && u->nops && u->fork_gen == tide__fork_gen) {
        struct io_uring_sqe *sqe = get_sqe(u);
        int tries = 0;
        u->closing = 1;
        if (sqe) {
            sqe->opcode = IORING_OP_ASYNC_CANCEL;
            sqe->fd = -1;
            sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
            sqe->user_data = UD_IGNORE;
        }
        while (u->nops && tries++ < 1000) {
            struct __kernel_timespec ts = {0, 10000000};
            struct io_uring_getevents_arg arg;
            memset(&arg, 0, sizeof arg);
            arg.ts = (uint64_t)(uintptr_t)&ts;
            __atomic_store_n(u->sq_ktail, u->sq_tail, __ATOMIC_RELEASE);
            (void)sys_enter(u, sq_pending(u), 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                            &arg, sizeof arg);
            (void)reap(p, NULL, NULL);
        }
    }
}

void tide__uring_free(tide__poller *p)
{
    struct tide__uring *u = p->uring;

    if (!u)
        return;
    tide__uring_drain(p); /* normally done by tide_loop_free already */
    /* Closing the ring cancels what is in flight; the wake read's buffer is
     * freed after that (a cancelled read copies nothing).  A registered ring
     * index is dropped with its thread's table (or on the thread's exit). */
#ifdef IORING_UNREGISTER_RING_FDS
    if (u->enter_flags && u->fork_gen == tide__fork_gen &&
        pthread_equal(pthread_self(), u->reg_thread)) {
        struct io_uring_rsrc_update up;
        memset(&up, 0, sizeof up);
        up.offset = (unsigned)u->enter_fd;
        (void)syscall(SYS_io_uring_register, u->ring_fd, IORING_UNREGISTER_RING_FDS, &up, 1);
    }
#endif
    unmap(u);
    close(u->ring_fd);
    if (u->probe_fd >= 0)
        close(u->probe_fd);
    if (p->wake_rd >= 0)
        close(p->wake_rd);
    free(u->slots);
    free(u);
    p->uring = NULL;
    p->fd = p->wake_rd = p->wake_wr = -1;
}

/* What epoll would answer for a device: 0 (pollable) or -EPERM. */
static int probe_device(struct tide__uring *u, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};

    if (u->probe_fd < 0) {
        u->probe_fd = epoll_create1(EPOLL_CLOEXEC);
        if (u->probe_fd < 0)
            return -errno;
    }
    if (epoll_ctl(u->probe_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    (void)epoll_ctl(u->probe_fd, EPOLL_CTL_DEL, fd, &ev);
    return 0;
}

int tide__uring_add(tide__poller *p, int fd, void *tag, int lazy)
{
    struct tide__uring *u = p->uring;
    struct stat st;
    int rc;

    if (u->fork_gen != tide__fork_gen)
        return -ECHILD; /* the parent's ring (io.c gives the child its own first) */
    if (fd < 0 || !tag)
        return fd < 0 ? -EBADF : -EINVAL;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        rc = probe_device(u, fd);
        if (rc < 0)
            return rc;
    }
    if ((size_t)fd >= u->nslots) {
        size_t n = u->nslots ? u->nslots : 64;
        slot *ns;
        while (n <= (size_t)fd)
            n *= 2;
        ns = realloc(u->slots, n * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        memset(ns + u->nslots, 0, (n - u->nslots) * sizeof *ns);
        u->slots = ns;
        u->nslots = n;
    }
    if (u->slots[fd].tag)
        return -EEXIST;
    u->slots[fd].tag = tag;
    u->slots[fd].armed = 0;
    if (lazy)
        return 0;
    rc = arm_poll(u, fd);
    if (rc < 0) {
        u->slots[fd].tag = NULL;
        return rc;
    }
    u->slots[fd].armed = 1;
    return 0;
}

int tide__uring_watch(tide__poller *p, int fd)
{
    struct tide__uring *u = p->uring;
    int rc;

    if (fd < 0 || (size_t)fd >= u->nslots || !u->slots[fd].tag)
        return -ENOENT;
    if (u->slots[fd].armed)
        return 0;
    if (u->fork_gen != tide__fork_gen)
        return -ECHILD;
    rc = arm_poll(u, fd);
    if (rc == 0)
        u->slots[fd].armed = 1;
    return rc;
}

int tide__uring_del(tide__poller *p, int fd)
{
    struct tide__uring *u = p->uring;
    struct io_uring_sqe *sqe;
    uint64_t ud;

    if (fd < 0)
        return -EBADF;
    if (u->fork_gen != tide__fork_gen)
        return -ECHILD;
    if ((size_t)fd >= u->nslots || !u->slots[fd].tag)
        return -ENOENT;
    ud = poll_ud(fd, u->slots[fd].gen);
    u->slots[fd].tag = NULL;
    u->slots[fd].gen++;
    sqe = get_sqe(u);
    if (!sqe)
        return -EAGAIN;
    /* ASYNC_CANCEL, not POLL_REMOVE: a remove finding the poll busy (its
     * wake-up being run) fails with -EALREADY and leaves it armed, holding
     * the file; a cancel marks it and the kernel ends it in any state. */
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = ud;
    sqe->user_data = UD_IGNORE;
    if (u->ops_ok) {
        /* Every request on fd: the poll and the operations in flight (the
         * queued ones are submitted first, in this same enter), each of
         * which holds the file too. */
        sqe->fd = fd;
        sqe->addr = 0;
        sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    }
#ifdef IOSQE_CQE_SKIP_SUCCESS
    if (u->features & IORING_FEAT_CQE_SKIP)
        sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
#endif
    return submit(u); /* now: the poll holds the file open until removed */
}

/* ------------------------------------------------ completion operations */

int tide__poller_ops(const tide__poller *p)
{
    return p->uring && p->uring->ops_ok && p->uring->fork_gen == tide__fork_gen;
}

static struct io_uring_sqe *op_sqe(tide__poller *p, tide__uop *op, int opcode, int fd)
{
    struct tide__uring *u = p->uring;
    struct io_uring_sqe *sqe;

    if (!u || u->fork_gen != tide__fork_gen)
        return NULL;
    sqe = get_sqe(u);
    if (!sqe)
        return NULL;
    sqe->opcode = (uint8_t)opcode;
    sqe->fd = fd;
    sqe->user_data = (uint64_t)(uintptr_t)op | 1;
    op->inflight = 1;
    op->res = 0;
    u->nops++;
    return sqe;
}

static int op_err(const tide__poller *p)
{
    return p->uring && p->uring->fork_gen != tide__fork_gen ? -ECHILD : -EAGAIN;
}

int tide__uring_recv(tide__poller *p, tide__uop *op, int fd, void *buf, size_t len, int flags)
{
    struct io_uring_sqe *sqe = op_sqe(p, op, IORING_OP_RECV, fd);

    if (!sqe)
        return op_err(p);
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = len > 0x7ffff000u ? 0x7ffff000u : (uint32_t)len;
    sqe->msg_flags = (uint32_t)flags;
    return 0;
}

int tide__uring_send(tide__poller *p, tide__uop *op, int fd, const void *buf, size_t len,
                     int flags)
{
    struct io_uring_sqe *sqe = op_sqe(p, op, IORING_OP_SEND, fd);

    if (!sqe)
        return op_err(p);
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = len > 0x7ffff000u ? 0x7ffff000u : (uint32_t)len;
    sqe->msg_flags = (uint32_t)flags | MSG_NOSIGNAL;
    return 0;
}

int tide__uring_sendmsg(tide__poller *p, tide__uop *op, int fd, const void *m, int flags)
{
    struct io_uring_sqe *sqe = op_sqe(p, op, IORING_OP_SENDMSG, fd);

    if (!sqe)
        return op_err(p);
    sqe->addr = (uint64_t)(uintptr_t)m;
    sqe->len = 1;
    sqe->msg_flags = (uint32_t)flags | MSG_NOSIGNAL;
    return 0;
}

int tide__uring_cancel(tide__poller *p, tide__uop *op)
{
    struct tide__uring *u = p->uring;
    struct io_uring_sqe *sqe;

    if (!u || !op->inflight)
        return 0;
    if (u->fork_gen != tide__fork_gen)
        return -ECHILD;
    sqe = get_sqe(u);
    if (!sqe)
        return -EAGAIN;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = (uint64_t)(uintptr_t)op | 1;
    sqe->user_data = UD_IGNORE;
#ifdef IOSQE_CQE_SKIP_SUCCESS
    if (u->features & IORING_FEAT_CQE_SKIP)
        sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
#endif
    return submit(u);
}

static unsigned to_events(uint32_t e)
{
    unsigned out = 0;

    if (e & POLLIN)
        out |= TIDE__EV_IN;
    if (e & POLLOUT)
        out |= TIDE__EV_OUT;
    if (e & POLLERR)
        out |= TIDE__EV_ERR | TIDE__EV_IN | TIDE__EV_OUT;
    if (e & (POLLHUP | POLLRDHUP))
        out |= TIDE__EV_HUP | TIDE__EV_IN;
    if (e & POLLHUP)
        out |= TIDE__EV_OUT;
    return out;
}

/* Takes every completion in the CQ; returns how many were given to cb. */
static int reap(tide__poller *p, tide__poll_cb cb, void *ctx)
{
    struct tide__uring *u = p->uring;
    unsigned head = *u->cq_khead;
    unsigned tail = __atomic_load_n(u->cq_ktail, __ATOMIC_ACQUIRE);
    int reported = 0;

    for (; head != tail; head++) {
        const struct io_uring_cqe *cqe = &u->cqes[head & u->cq_mask];
        uint64_t ud = cqe->user_data;
        int32_t res = cqe->res;
        unsigned more = cqe->flags & IORING_CQE_F_MORE;
        int fd;
        slot *s;

        if (ud == UD_WAKE) {
            u->wake_armed = 0; /* read again below, before the next enter */
            continue;
        }
        if (ud == UD_IGNORE)
            continue;
        if (ud & 1) { /* a completion operation: one shot, its owner told */
            tide__uop *op = (tide__uop *)(uintptr_t)(ud & ~(uint64_t)1);
            op->inflight = 0;
            op->res = res;
            u->nops--;
            if (!u->closing)
                op->done(op);
            reported++;
            continue;
        }
        fd = (int)((uint32_t)ud >> 1);
        if ((size_t)fd >= u->nslots)
            continue;
        s = &u->slots[fd];
        if (!s->tag || s->gen != (uint32_t)(ud >> 32))
            continue; /* unregistered since: stale */
        if (!more) {
            /* The kernel ended this poll: arm it again, and as no edge can
             * be known to have been seen, say both directions may be ready.
             * An error other than a cancel (the fd is gone: closed without
             * del) is reported as one, and the fd is left unwatched: the
             * owner's next syscall tells what happened. */
            if (res < 0 && res != -ECANCELED)
                res = POLLERR;
            else if (arm_poll(u, fd) < 0)
                res = POLLERR; /* cannot watch it any more: let ops retry */
            else
                res = (res < 0 ? 0 : res) | POLLIN | POLLOUT;
        }
        if (cb)
            cb(ctx, s->tag, to_events((uint32_t)res));
        reported++;
    }
    __atomic_store_n(u->cq_khead, head, __ATOMIC_RELEASE);
    if (!u->wake_armed && !u->closing)
        (void)arm_wake(p);
    return reported;
}

int tide__uring_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx)
{
    struct tide__uring *u = p->uring;
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    unsigned pending, wait_nr, flags;
    int reported, rc, ready;

    /* A forked child must not touch the ring it shares with its parent:
     * its CQEs are the parent's.  The loop gives the child a poller of its
     * own at the start of its next iteration (tide_loop_fork). */
    if (u->fork_gen != tide__fork_gen)
        return 0;
    /* Completions already there: take them without waiting. */
    ready = __atomic_load_n(u->cq_ktail, __ATOMIC_ACQUIRE) != *u->cq_khead;
    __atomic_store_n(u->sq_ktail, u->sq_tail, __ATOMIC_RELEASE);
    pending = tide__uring_fail_submit > 1 ? 0 : sq_pending(u);
    if (ready || timeout_ns == 0) {
        /* Only when no completion waits as task work for an enter to run
         * it (COOP_TASKRUN sets IORING_SQ_TASKRUN then). */
        if (!pending && !(__atomic_load_n(u->sq_kflags, __ATOMIC_RELAXED) & SQ_MUST_ENTER))
            return reap(p, cb, ctx);
        wait_nr = 0;
    } else {
        wait_nr = 1;
    }
    memset(&arg, 0, sizeof arg);
    if (wait_nr && timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        arg.ts = (uint64_t)(uintptr_t)&ts;
    }
    flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    rc = sys_enter(u, pending, wait_nr, flags, &arg, sizeof arg);
    if (rc < 0 && errno != ETIME && errno != EINTR && errno != EBUSY && errno != EAGAIN)
        return -errno;
    reported = reap(p, cb, ctx);
    return reported;
}

#else /* headers without what the backend needs */

int tide__uring_no_ops;
int tide__uring_fail_submit;
int tide__poller_ops(const tide__poller *p)
{
    (void)p;
    return 0;
}
int tide__uring_recv(tide__poller *p, tide__uop *op, int fd, void *buf, size_t len, int flags)
{
    (void)p, (void)op, (void)fd, (void)buf, (void)len, (void)flags;
    return -ENOSYS;
}
int tide__uring_send(tide__poller *p, tide__uop *op, int fd, const void *buf, size_t len,
                     int flags)
{
    (void)p, (void)op, (void)fd, (void)buf, (void)len, (void)flags;
    return -ENOSYS;
}
int tide__uring_sendmsg(tide__poller *p, tide__uop *op, int fd, const void *m, int flags)
{
    (void)p, (void)op, (void)fd, (void)m, (void)flags;
    return -ENOSYS;
}
int tide__uring_cancel(tide__poller *p, tide__uop *op)
{
    (void)p, (void)op;
    return -ENOSYS;
}

int tide__uring_init(tide__poller *p)
{
    (void)p;
    return -ENOSYS;
}
void tide__uring_free(tide__poller *p)
{
    (void)p;
}
void tide__uring_drain(tide__poller *p)
{
    (void)p;
}
int tide__uring_add(tide__poller *p, int fd, void *tag, int lazy)
{
    (void)p, (void)fd, (void)tag, (void)lazy;
    return -ENOSYS;
}
int tide__uring_watch(tide__poller *p, int fd)
{
    (void)p, (void)fd;
    return -ENOSYS;
}
int tide__uring_del(tide__poller *p, int fd)
{
    (void)p, (void)fd;
    return -ENOSYS;
}
int tide__uring_wait(tide__poller *p, int64_t timeout_ns, tide__poll_cb cb, void *ctx)
{
    (void)p, (void)timeout_ns, (void)cb, (void)ctx;
    return -ENOSYS;
}

#endif
