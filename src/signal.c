/*
 * Signals: tide_signal_wait and loop signal handlers.
 *
 * tide_signal_wait.  On Linux a signalfd: the signals are blocked in the
 * calling thread for the duration of the wait and read from the fd through
 * the poller; the program's handlers are never touched.  Elsewhere a
 * self-pipe: a handler installed for the wait writes the signal number to a
 * pipe; the previous handlers are restored when the wait ends.
 *
 * Handlers (tide_signal_handler_add).  A process-wide table has one slot per
 * signal: the loop that handles it, the user's callback, and tide's own
 * watcher (process.c watches SIGCHLD where pidfds are missing).  Each loop
 * that handles signals has a `sigloop`:
 *  - Linux: one signalfd holding the set of the loop's signals (updated
 *    with signalfd(fd, set) when a handler comes or goes).  The signals are
 *    blocked in the loop's thread; a small handler installed for each one
 *    forwards a delivery that the kernel gave to another thread (one that
 *    does not block it) to the loop's thread with tgkill, where it pends for
 *    the signalfd.  The handler also keeps a SIG_IGN disposition from
 *    dropping signals on the floor.
 *  - elsewhere: a self-pipe; the installed handler writes the signal number.
 * When the fd is readable (an fd callback, in the poll phase) the
 * deliveries are counted per signal and one loop callback is scheduled that
 * calls the handlers: user code never runs inside the poller's dispatch or
 * in signal context.  Removing a handler restores the sigaction and the
 * mask bit the program had and drops deliveries not yet dispatched.
 *
 * Blocking is counted per thread and per signal (several waits and a
 * handler may share a signal), and only signals that were not blocked
 * already are ever unblocked again.  tide__signal_child_mask gives the mask
 * without tide's additions, for the children tide spawns.
 *
 * A process-directed signal reaches the loop only if no other thread takes
 * it: tide's worker threads block every signal; threads of the program
 * should block the signals it waits for (or be started after the first
 * wait, from the loop thread, which inherits the mask).  Handlers forward
 * such deliveries themselves.
 */
#include "tide_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__) && !defined(TIDE_NO_SIGNALFD)
#define USE_SIGNALFD 1
#include <sys/signalfd.h>
#include <sys/syscall.h>
#endif

/* Internal API (used by process.c). */
TIDE__HIDDEN int tide__signal_watch(int signo, tide_cb cb, void *arg);
TIDE__HIDDEN void tide__signal_unwatch(int signo);
TIDE__HIDDEN void tide__signal_child_mask(sigset_t *mask);

static int fault_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
}

static int handleable(int sig)
{
    return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP && !fault_signal(sig);
}

/* ------------------------------------------------ counted blocking (per thread) */

static __thread sigset_t blk_ours; /* blocked by tide, were not blocked before */
static __thread int blk_init;

#ifdef USE_SIGNALFD
static __thread unsigned blk_count[NSIG];

static void block_sig(int sig)
{
    sigset_t cur, one;

    if (!blk_init) {
        sigemptyset(&blk_ours);
        blk_init = 1;
    }
    if (blk_count[sig]++ > 0)
        return;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    if (sigismember(&cur, sig) == 1)
        return; /* the program blocks it: it stays blocked after us */
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_BLOCK, &one, NULL);
    sigaddset(&blk_ours, sig);
}

static void unblock_sig(int sig)
{
    sigset_t one;

    if (blk_count[sig] == 0 || --blk_count[sig] > 0)
        return;
    if (blk_init && sigismember(&blk_ours, sig) == 1) {
        sigdelset(&blk_ours, sig);
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
}
#endif

void tide__signal_child_mask(sigset_t *mask)
{
    int sig;

    pthread_sigmask(SIG_SETMASK, NULL, mask);
    if (!blk_init)
        return;
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(&blk_ours, sig) == 1)
            sigdelset(mask, sig);
}

/* ------------------------------------------------------------ the tables */

/* A loop's signal state (loop->sig.sl): slots[] is process-wide, as signal
 * dispositions are; each loop that handles some has one of these. */
typedef struct tide__sigloop {
    tide_loop *loop;
    pthread_t thread;       /* the loop's thread (where the signals are blocked) */
    int fd;                 /* the signalfd, or the self-pipe's read end */
    unsigned nsigs;         /* signals handled on this loop */
    unsigned pending[NSIG]; /* deliveries read, not dispatched yet */
    uint8_t queued;         /* a dispatch call is scheduled */
    uint8_t running;        /* dispatch is calling handlers */
    uint8_t dead;           /* closed: free it when dispatch is done */
} sigloop;

typedef struct slot {
    sigloop *sl;            /* the loop handling the signal, or NULL */
    tide_cb cb;             /* the user's handler */
    void *arg;
    tide_cb icb;            /* tide's own watcher */
    void *iarg;
    struct sigaction old;   /* the program's disposition, restored after */
} slot;

static slot slots[NSIG];
static unsigned nsigloops; /* loops with a sigloop (lock held) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#ifdef USE_SIGNALFD
/* The loop thread to forward to.  Atomic: written under the lock, read by
 * on_signal on whatever thread the signal lands. */
static pid_t fwd_tid[NSIG];

static void on_signal(int sig)
{
    int saved = errno;
    pid_t tid = __atomic_load_n(&fwd_tid[sig], __ATOMIC_RELAXED);
    if (tid > 0)
        syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)sig);
    errno = saved;
}
#else
/* A self-pipe's write end, as the handlers see it on whatever thread the
 * signal lands.  Taking it back (sigpipe_close) waits until no handler still
 * holds the number: a handler that read it just before could otherwise
 * write its byte after the close, into whatever file got the number next. */
typedef struct sigpipe {
    int fd;    /* atomic: the write end, or -1 */
    int users; /* atomic: handlers between reading fd and done with it */
} sigpipe;

static void sigpipe_write(sigpipe *sp, int sig)
{
    int saved = errno, fd;
    unsigned char b = (unsigned char)sig;

    __atomic_add_fetch(&sp->users, 1, __ATOMIC_SEQ_CST);
    fd = __atomic_load_n(&sp->fd, __ATOMIC_SEQ_CST);
    if (fd >= 0) {
        ssize_t w = write(fd, &b, 1); /* full pipe: the delivery merges */
        (void)w;
    }
    __atomic_sub_fetch(&sp->users, 1, __ATOMIC_SEQ_CST);
    errno = saved;
}

static void sigpipe_open(sigpipe *sp, int fd)
{
    __atomic_store_n(&sp->fd, fd, __ATOMIC_SEQ_CST);
}

/* Called once the handlers are gone, so none can start anew with the fd;
 * one still running (on another thread) ends in a write. */
static void sigpipe_close(sigpipe *sp)
{
    int fd = __atomic_exchange_n(&sp->fd, -1, __ATOMIC_SEQ_CST);

    while (__atomic_load_n(&sp->users, __ATOMIC_SEQ_CST) > 0)
        sched_yield();
    if (fd >= 0)
        close(fd);
}

/* Makes a pipe for signal bytes: both ends close-on-exec, the write end
 * non-blocking.  Returns 0 or -errno. */
static int sigpipe_make(int p[2])
{
    if (pipe(p) < 0)
        return -errno;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    return 0;
}

static sigpipe sp = {-1, 0}; /* the handlers' self-pipe */

static void on_signal(int sig)
{
    sigpipe_write(&sp, sig);
}
#endif

/* tide_signal_wait reads fd: a dump shows its reader waiting on "signal"
 * and set, not on "fd-read" (dump.c).  set NULL unmarks it.  Registers fd
 * (tide_read would); out of memory leaves the wait shown as an fd read. */
static void mark_sigwait(int fd, const sigset_t *set)
{
    int err;
    tide__fd *f = tide__fd_get(tide__current()->loop, fd, &err);

    if (f)
        f->sigwait = set;
}

/* Unregisters fd from loop (which need not be running) and closes it. */
static void close_on(tide_loop *loop, int fd)
{
    tide__fd_forget(loop, fd); /* our callbacks ignore the -EBADF it gives them */
    close(fd);
}

static void dispatch(void *arg);

/* The fd is readable: count the deliveries, schedule dispatch. */
static void on_readable(tide__fd *f, int rc)
{
    sigloop *sl = f->cb_arg;
    int any = 0;

    if (rc < 0)
        return;
    for (;;) {
#ifdef USE_SIGNALFD
        struct signalfd_siginfo si[16];
        ssize_t n = read(sl->fd, si, sizeof si), i;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (i = 0; i < n / (ssize_t)sizeof si[0]; i++)
            if (si[i].ssi_signo > 0 && si[i].ssi_signo < NSIG) {
                sl->pending[si[i].ssi_signo]++;
                any = 1;
            }
#else
        unsigned char b[64];
        ssize_t n = read(sl->fd, b, sizeof b), i;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (i = 0; i < n; i++)
            if (b[i] > 0 && b[i] < NSIG) {
                sl->pending[b[i]]++;
                any = 1;
            }
#endif
    }
    if (any && !sl->queued && !sl->running) {
        sl->queued = 1;
        if (tide_call_soon(sl->loop, dispatch, sl) < 0) {
            sl->queued = 0;
            dispatch(sl); /* no memory for a call node: run them now */
        }
    }
}

static void sigloop_free_or_defer(sigloop *sl)
{
    if (sl->queued || sl->running)
        sl->dead = 1;
    else
        tide__free(sl);
}

/* Calls the handlers, once per delivery counted. */
static void dispatch(void *arg)
{
    sigloop *sl = arg;
    int sig;

    sl->queued = 0;
    sl->running = 1;
    for (sig = 1; sig < NSIG && !sl->dead; sig++) {
        while (sl->pending[sig] && !sl->dead) {
            tide_cb cb, icb;
            void *a, *ia;

            sl->pending[sig]--;
            pthread_mutex_lock(&lock);
            if (slots[sig].sl != sl) {
                pthread_mutex_unlock(&lock);
                sl->pending[sig] = 0;
                break;
            }
            cb = slots[sig].cb;
            a = slots[sig].arg;
            icb = slots[sig].icb;
            ia = slots[sig].iarg;
            pthread_mutex_unlock(&lock);
            if (icb)
                icb(ia);
            if (cb && !sl->dead)
                cb(a);
        }
    }
    sl->running = 0;
    if (sl->dead)
        tide__free(sl);
}


#ifdef USE_SIGNALFD
static void loop_set(const sigloop *sl, sigset_t *set)
{
    int sig;
    sigemptyset(set);
    for (sig = 1; sig < NSIG; sig++)
        if (slots[sig].sl == sl)
            sigaddset(set, sig);
}
#endif

/* The sigloop of loop, made if needed (lock held). */
static int sigloop_get(tide_loop *loop, int sig, sigloop **out)
{
    sigloop *sl = loop->sig.sl;
    tide__fd *f;
    int fd, err = 0;

    if (sl) {
        *out = sl;
        return 0;
    }
#ifdef USE_SIGNALFD
    {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
            return -errno;
    }
#else
    {
        int p[2];
        (void)sig;
        if (nsigloops)
            return -EBUSY; /* one self-pipe: one loop handles the process's signals */
        if ((err = sigpipe_make(p)) < 0)
            return err;
        fd = p[0];
        sigpipe_open(&sp, p[1]);
    }
#endif
    sl = tide__calloc(1, sizeof *sl);
    if (!sl) {
        err = -ENOMEM;
        goto fail;
    }
    f = tide__fd_get(loop, fd, &err);
    if (!f)
        goto fail;
    f->on_readable = on_readable;
    f->cb_arg = sl;
    sl->loop = loop;
    sl->thread = pthread_self();
    sl->fd = fd;
    loop->sig.sl = sl;
    nsigloops++;
    *out = sl;
    return 0;

fail:
    tide__free(sl);
    close_on(loop, fd);
#ifndef USE_SIGNALFD
    sigpipe_close(&sp);
#endif
    return err;
}

/* Closes sl's fd and unlinks it.  final: the loop is being freed and will
 * never run the scheduled dispatch. */
static void sigloop_close(sigloop *sl, int final)
{
    sl->loop->sig.sl = NULL;
    nsigloops--;
    close_on(sl->loop, sl->fd);
#ifndef USE_SIGNALFD
    sigpipe_close(&sp); /* the last handler is gone (slot_release) */
#endif
    if (final) {
        sl->queued = 0;
        sl->running = 0;
    }
    sigloop_free_or_defer(sl);
}

/* Starts handling sig on loop (lock held, the slot is free). */
static int slot_take(int sig, tide_loop *loop)
{
    struct sigaction sa;
    sigloop *sl = NULL;
    int rc = sigloop_get(loop, sig, &sl);

    if (rc < 0)
        return rc;
#ifdef USE_SIGNALFD
    block_sig(sig);
    /* Where to forward a delivery that lands on another thread: set before
     * the handler exists, so none is dropped in between. */
    __atomic_store_n(&fwd_tid[sig], (pid_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
#endif
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    /* SA_ONSTACK: on the thread's alternate stack (stack.c), not on a task's
     * small unguarded stack, which a signal frame (up to 12 KiB) overflows. */
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    if (sigaction(sig, &sa, &slots[sig].old) < 0) {
        rc = -errno;
#ifdef USE_SIGNALFD
        __atomic_store_n(&fwd_tid[sig], 0, __ATOMIC_RELAXED);
        unblock_sig(sig);
#endif
        if (sl->nsigs == 0)
            sigloop_close(sl, 0);
        return rc;
    }
    slots[sig].sl = sl;
    sl->nsigs++;
#ifdef USE_SIGNALFD
    {
        sigset_t set;
        loop_set(sl, &set);
        signalfd(sl->fd, &set, 0);
    }
#endif
    return 0;
}

/* Stops handling sig (lock held; neither cb nor icb is set any more). */
static void slot_release(int sig, int final)
{
    sigloop *sl = slots[sig].sl;

    if (!sl)
        return;
#ifdef USE_SIGNALFD
    __atomic_store_n(&fwd_tid[sig], 0, __ATOMIC_RELAXED);
#endif
    sigaction(sig, &slots[sig].old, NULL);
    slots[sig].sl = NULL;
    sl->pending[sig] = 0;
#ifdef USE_SIGNALFD
    {
        /* Drop deliveries still pending for the signalfd: unblocked, they
         * would get the restored disposition (maybe killing us). */
        struct timespec zero = {0, 0};
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        while (sigtimedwait(&one, NULL, &zero) == sig)
            ;
        unblock_sig(sig);
    }
#endif
    if (--sl->nsigs == 0) {
        sigloop_close(sl, final);
    } else {
#ifdef USE_SIGNALFD
        sigset_t set;
        loop_set(sl, &set);
        signalfd(sl->fd, &set, 0);
#endif
    }
}

/* Adds cb (user == 1) or the internal watcher (user == 0) for sig. */
static int handler_add(int sig, tide_cb cb, void *arg, int user)
{
    tide_loop *loop = tide__tls_loop;
    slot *s;
    int rc = 0;

    if (!cb || !handleable(sig))
        return -EINVAL;
    if (!loop)
        return -EPERM;
    s = &slots[sig];
    pthread_mutex_lock(&lock);
    if (user ? s->cb != NULL : s->icb != NULL)
        rc = -EEXIST;
    else if (s->sl && s->sl->loop != loop)
        rc = -EBUSY;
    else if (!s->sl)
        rc = slot_take(sig, loop);
    if (rc == 0) {
        if (user) {
            s->cb = cb;
            s->arg = arg;
            tide__loop_io_ref(loop); /* like a libuv signal handle: keeps tide_loop_run going */
        } else {
            s->icb = cb;
            s->iarg = arg;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int handler_remove(int sig, int user)
{
    slot *s;
    int rc = 0;

    if (sig <= 0 || sig >= NSIG)
        return -EINVAL;
    s = &slots[sig];
    pthread_mutex_lock(&lock);
    if (!s->sl || !(user ? s->cb : s->icb)) {
        rc = -ENOENT;
    } else if (!pthread_equal(s->sl->thread, pthread_self())) {
        rc = -EPERM;
    } else {
        if (user) {
            s->cb = NULL;
            s->arg = NULL;
            tide__loop_io_unref(s->sl->loop);
        } else {
            s->icb = NULL;
            s->iarg = NULL;
        }
        if (!s->cb && !s->icb)
            slot_release(sig, 0);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int tide_signal_handler_add(int signo, tide_cb cb, void *arg)
{
    return handler_add(signo, cb, arg, 1);
}

int tide_signal_handler_remove(int signo)
{
    return handler_remove(signo, 1);
}

int tide__signal_watch(int signo, tide_cb cb, void *arg)
{
    return handler_add(signo, cb, arg, 0);
}

void tide__signal_unwatch(int signo)
{
    (void)handler_remove(signo, 0);
}

int tide__signals_init(tide_loop *loop)
{
    loop->sig.sl = NULL; /* made when the first handler is added */
    return 0;
}

/* Run by tide_loop_free once the loop's tasks are done: restores every
 * signal the loop handled. */
void tide__signals_term(tide_loop *loop)
{
    int sig;

    pthread_mutex_lock(&lock);
    for (sig = 1; sig < NSIG; sig++) {
        if (slots[sig].sl && slots[sig].sl->loop == loop) {
            slots[sig].cb = slots[sig].icb = NULL;
            slots[sig].arg = slots[sig].iarg = NULL;
            slot_release(sig, 1);
        }
    }
    pthread_mutex_unlock(&lock);
}

/* 1 if a signal of set has a user handler. */
static int set_has_handler(const sigset_t *set)
{
    int sig, busy = 0;

    pthread_mutex_lock(&lock);
    for (sig = 1; sig < NSIG && !busy; sig++)
        busy = slots[sig].cb && sigismember(set, sig) == 1;
    pthread_mutex_unlock(&lock);
    return busy;
}

/* --------------------------------------------------------- tide_signal_wait */

#ifdef USE_SIGNALFD

int tide_signal_wait(const sigset_t *set)
{
    struct signalfd_siginfo si;
    int fd, rc, sig;
    ssize_t n;

    if (!set)
        return -EINVAL;
    if (!tide__current())
        return -EPERM;
    if (set_has_handler(set))
        return -EBUSY;
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            block_sig(sig);
    fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        n = rc;
    } else {
        mark_sigwait(fd, set); /* shown as "signal", not "fd-read" (dump.c) */
        n = tide_read(fd, &si, sizeof si);
        mark_sigwait(fd, NULL);
        tide_close(fd);
    }
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            unblock_sig(sig);
    if (n < 0)
        return (int)n;
    if (n != (ssize_t)sizeof si)
        return -EIO;
    return (int)si.ssi_signo;
}

#else /* self-pipe */

static sigpipe wait_sp = {-1, 0}; /* the waiter's pipe */
static int wait_claimed;            /* atomic: one waiter at a time */

static void on_wait_signal(int sig)
{
    sigpipe_write(&wait_sp, sig);
}

int tide_signal_wait(const sigset_t *set)
{
    struct sigaction sa, old[NSIG];
    unsigned char b;
    int p[2], sig, rc;
    ssize_t n;

    if (!set)
        return -EINVAL;
    if (!tide__current())
        return -EPERM;
    if (set_has_handler(set))
        return -EBUSY;
    if (__atomic_exchange_n(&wait_claimed, 1, __ATOMIC_ACQUIRE))
        return -EBUSY; /* one waiter at a time in this fallback */
    if ((rc = sigpipe_make(p)) < 0) {
        __atomic_store_n(&wait_claimed, 0, __ATOMIC_RELEASE);
        return rc;
    }
    sigpipe_open(&wait_sp, p[1]);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wait_signal;
    sa.sa_flags = SA_ONSTACK; /* as slot_take's: not on a small unguarded stack */
    sigemptyset(&sa.sa_mask);
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            sigaction(sig, &sa, &old[sig]);
    mark_sigwait(p[0], set); /* shown as "signal", not "fd-read" (dump.c) */
    n = tide_read(p[0], &b, 1);
    mark_sigwait(p[0], NULL);
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            sigaction(sig, &old[sig], NULL);
    tide_close(p[0]);
    sigpipe_close(&wait_sp);
    __atomic_store_n(&wait_claimed, 0, __ATOMIC_RELEASE);
    rc = n == 1 ? b : n < 0 ? (int)n : -EIO;
    return rc;
}
#endif
