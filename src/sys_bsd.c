/*
 * The platform layer on the BSDs and macOS: see sys.h.
 *
 * What each system has:
 *  - accept4 and SOCK_NONBLOCK | SOCK_CLOEXEC on socket: FreeBSD 10+,
 *    DragonFly 4.4+, NetBSD 8+, OpenBSD 5.7+.  Elsewhere (macOS) the socket
 *    is made and then given its flags with fcntl: not atomic, so a fork and
 *    exec from another thread in between may leak the fd into the child.
 *  - sendfile(2): FreeBSD and DragonFly (fd, s, offset, nbytes, hdtr,
 *    &sbytes, flags) and macOS (fd, s, offset, &len, hdtr, flags), both to
 *    sockets only, both sending "until the end of the file" for a count of
 *    0 (so 0 is answered here), both reporting a partial send through the
 *    count even when they fail with EAGAIN or EINTR.  Elsewhere, and for an
 *    output that is not a socket, a pread + write copy through a small
 *    buffer on the stack.
 *  - No SIGPIPE flag on send (macOS): SO_NOSIGPIPE on every socket made or
 *    accepted here.
 *  - No reopening of a pipe or tty to get a description of its own (/dev/fd
 *    dups instead of reopening): the fd is made non-blocking in place.
 *
 * Only POSIX outside the #if blocks, so this file also builds on Linux (the
 * compile-only check of the CI).
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__FreeBSD__) || defined(__DragonFly__) || defined(__NetBSD__) || defined(__OpenBSD__)
#define HAVE_ACCEPT4 1
#endif
#if defined(__FreeBSD__) || defined(__DragonFly__)
#define HAVE_SENDFILE_BSD 1
#elif defined(__APPLE__)
#define HAVE_SENDFILE_APPLE 1
#endif

#define COPY_CHUNK 4096              /* on the calling task's stack */
#define COPY_MAX ((size_t)1 << 20)   /* per call, so one call cannot hog the loop */

#ifdef SO_NOSIGPIPE
static void no_sigpipe(int fd)
{
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
}
#else
static void no_sigpipe(int fd)
{
    (void)fd;
}
#endif

#ifndef HAVE_ACCEPT4
/* The flags accept4 or SOCK_* would have set: close-on-exec, non-blocking,
 * and no SIGPIPE where that is a socket option.  0, or -1 with errno and fd
 * closed. */
static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        goto fail;
    no_sigpipe(fd);
    return 0;
fail: {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}
}
#endif

int tide__sys_socket(int domain, int type, int protocol)
{
    int fd;

#ifdef HAVE_ACCEPT4
    fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd >= 0)
        no_sigpipe(fd);
    return fd;
#else
    fd = socket(domain, type, protocol);
    return fd < 0 || set_flags(fd) < 0 ? -1 : fd;
#endif
}

int tide__sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    int c;

#ifdef HAVE_ACCEPT4
    c = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0)
        no_sigpipe(c);
    return c;
#else
    c = accept(fd, addr, addrlen);
    return c < 0 || set_flags(c) < 0 ? -1 : c;
#endif
}

/* The portable sendfile: pread (or read, from the file position) and write
 * through a small buffer, until n bytes went, the input ended, or out_fd
 * is full.  Bytes read but not written are given back (the position moved
 * back; with an offset nothing moved).  Progress wins over an error, which
 * the next call reports, as with a partial sendfile. */
static ssize_t copy_fallback(int out_fd, int in_fd, off_t *off, size_t n)
{
    char buf[COPY_CHUNK];
    size_t done = 0;

    if (n > COPY_MAX)
        n = COPY_MAX;
    while (done < n) {
        size_t want = n - done < sizeof buf ? n - done : sizeof buf;
        ssize_t r, w;

        r = off ? pread(in_fd, buf, want, *off + (off_t)done) : read(in_fd, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0 && done == 0)
                return -1;
            break;
        }
        do
            w = write(out_fd, buf, (size_t)r);
        while (w < 0 && errno == EINTR);
        if (!off && w < r) { /* give back what did not go out */
            int err = errno;
            (void)lseek(in_fd, (off_t)(w > 0 ? w : 0) - (off_t)r, SEEK_CUR);
            errno = err;
        }
        if (w < 0) {
            if (done == 0)
                return -1;
            break;
        }
        done += (size_t)w;
        if (w < r)
            break; /* out_fd is full */
    }
    if (off)
        *off += (off_t)done;
    return (ssize_t)done;
}

#if defined(HAVE_SENDFILE_BSD) || defined(HAVE_SENDFILE_APPLE)
static ssize_t native_sendfile(int out_fd, int in_fd, off_t *off, size_t n)
{
    off_t start = off ? *off : lseek(in_fd, 0, SEEK_CUR), sent = 0;
    int rc;

    if (start < 0)
        return -1;
#ifdef HAVE_SENDFILE_BSD
    rc = sendfile(in_fd, out_fd, start, n, NULL, &sent, 0);
#else
    sent = (off_t)n;
    rc = sendfile(in_fd, out_fd, start, &sent, NULL, 0);
    if (rc < 0 && errno != EAGAIN && errno != EINTR)
        sent = 0;
#endif
    if (rc < 0 && sent <= 0)
        return -1;
    if (sent > 0) { /* a partial send counts, whatever came with it */
        if (off)
            *off = start + sent;
        else if (lseek(in_fd, start + sent, SEEK_SET) < 0)
            return -1;
    }
    return (ssize_t)sent;
}
#endif

ssize_t tide__sys_sendfile(int out_fd, int in_fd, off_t *off, size_t n)
{
    if (n == 0)
        return 0; /* the native calls read 0 as "to the end of the file" */
#if defined(HAVE_SENDFILE_BSD) || defined(HAVE_SENDFILE_APPLE)
    {
        ssize_t r = native_sendfile(out_fd, in_fd, off, n);
        if (r >= 0 || (errno != ENOTSOCK && errno != EOPNOTSUPP && errno != ENOTSUP))
            return r; /* ENOT*: not a socket, or not a file: copy by hand */
    }
#endif
    return copy_fallback(out_fd, in_fd, off, n);
}

int tide__sys_set_nonblocking(int fd, int fl, const struct stat *st)
{
    (void)st;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}
