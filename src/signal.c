/*
 * Waiting for signals.
 *
 * On Linux a signalfd: the signals are blocked in the calling thread for the
 * duration of the wait and read from the fd through the poller; the
 * program's handlers are never touched.  Elsewhere a self-pipe: a handler
 * installed for the wait writes the signal number to a pipe; the previous
 * handlers are restored when the wait ends.
 *
 * A process-directed signal reaches the loop only if no other thread takes
 * it: tide's worker threads block every signal; threads of the program
 * should block the signals it waits for (or be started after the first
 * wait, from the loop thread, which inherits the mask).
 */
#include "tide_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/signalfd.h>

int tide_signal_wait(const sigset_t *set)
{
    struct signalfd_siginfo si;
    sigset_t old;
    int fd, rc;
    ssize_t n;

    if (!set)
        return -EINVAL;
    if (!tide__current())
        return -EPERM;
    rc = pthread_sigmask(SIG_BLOCK, set, &old);
    if (rc)
        return -rc;
    fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    n = tide_read(fd, &si, sizeof si);
    tide_close(fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (n < 0)
        return (int)n;
    if (n != (ssize_t)sizeof si)
        return -EIO;
    return (int)si.ssi_signo;
}

#else /* self-pipe */

#include <fcntl.h>

static int pipe_wr = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(pipe_wr, &b, 1);
    (void)w;
    errno = saved;
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
    if (pipe_wr >= 0)
        return -EBUSY; /* one waiter at a time in this fallback */
    if (pipe(p) < 0)
        return -errno;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    pipe_wr = p[1];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            sigaction(sig, &sa, &old[sig]);
    n = tide_read(p[0], &b, 1);
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            sigaction(sig, &old[sig], NULL);
    tide_close(p[0]);
    close(p[1]);
    pipe_wr = -1;
    rc = n == 1 ? b : n < 0 ? (int)n : -EIO;
    return rc;
}
#endif
