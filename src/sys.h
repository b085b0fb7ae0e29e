/*
 * The platform layer: the few system calls whose form differs between
 * kernels, behind one small interface.  One implementation per family,
 * picked by CMake as it picks the poller: sys_linux.c on Linux and Android,
 * sys_bsd.c on the BSDs and macOS (which has a portable fallback for what
 * a system lacks, so it also compiles on anything POSIX).
 *
 * Each call is one attempt, like the syscall it wraps: it returns what the
 * syscall returns (>= 0, or -1 with errno set) and never waits, so io.c can
 * run it through its one fd-operation path (tide__fd_op).
 */
#ifndef TIDE_SYS_H
#define TIDE_SYS_H

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Flags for send(2) that keep SIGPIPE away.  Where MSG_NOSIGNAL is missing
 * (macOS), the sockets tide makes or accepts get SO_NOSIGPIPE instead, and a
 * loop ignores SIGPIPE anyway (see loop.c). */
#ifdef MSG_NOSIGNAL
#define TIDE__MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define TIDE__MSG_NOSIGNAL 0
#endif

/* socket(2) for a socket that is non-blocking and close-on-exec from the
 * start (atomically where the kernel can). */
int tide__sys_socket(int domain, int type, int protocol);

/* accept(2) of one connection, non-blocking and close-on-exec (atomically
 * where the kernel can).  ECONNABORTED and EPROTO (a peer that gave up
 * before we took it) are reported like any error: the caller tries again. */
int tide__sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);

/* One attempt of sendfile: up to n bytes of the file in_fd, from *off if off
 * is not NULL (and *off advanced by the count), else from in_fd's position
 * (advanced), to out_fd.  Returns the count (0: end of the input, or n was
 * 0), or -1 with errno (EAGAIN: out_fd is full and nothing was sent).  A
 * count below n says nothing about out_fd: the input may have ended. */
ssize_t tide__sys_sendfile(int out_fd, int in_fd, off_t *off, size_t n);

/* Makes fd non-blocking.  fl is its F_GETFL flags and st its fstat.  Where
 * the system allows, a pipe or a terminal first gets an open file
 * description of its own (O_NONBLOCK belongs to the description, shared
 * with whoever else holds it: an inherited stdin must stay blocking for the
 * shell).  Returns 0 or -errno. */
int tide__sys_set_nonblocking(int fd, int fl, const struct stat *st);

#endif
