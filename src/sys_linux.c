/*
 * The platform layer on Linux (and Android): see sys.h.
 *
 * Everything here is the direct syscall: SOCK_NONBLOCK | SOCK_CLOEXEC on
 * socket and accept4, sendfile(2) from <sys/sendfile.h> (which takes any
 * output fd since 2.6.33, not only sockets), and the reopen through
 * /proc/self/fd that gives a pipe or a tty a description of its own.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

int tide__sys_socket(int domain, int type, int protocol)
{
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

int tide__sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

ssize_t tide__sys_sendfile(int out_fd, int in_fd, off_t *off, size_t n)
{
    return sendfile(out_fd, in_fd, off, n);
}

/* O_NONBLOCK is a flag of the open file description, shared with every
 * process that has it: setting it on an inherited tty or pipe (stdin) would
 * make the shell or the next program in a pipeline see EAGAIN.  So for
 * those, give fd a description of its own first (reopen it through /proc
 * and dup3 it over fd, as libuv does for ttys); sockets cannot be reopened,
 * and are ours anyway. */
int tide__sys_set_nonblocking(int fd, int fl, const struct stat *st)
{
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
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}
