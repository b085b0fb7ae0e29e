/*
 * <sys/socket.h> as the BSDs and macOS have it, approximated on top of
 * glibc's for tests/compat/bsd_check.sh (see sys/event.h here).  Outside a
 * BSD persona it is just glibc's header.
 *  - FreeBSD, DragonFly and macOS declare their sendfile(2) here, with
 *    struct sf_hdtr; their signatures differ from each other and from
 *    Linux's (<sys/sendfile.h>, which these systems do not have).
 *  - macOS has neither SOCK_NONBLOCK / SOCK_CLOEXEC (no flags in socket's
 *    type, no accept4) nor MSG_NOSIGNAL (SO_NOSIGPIPE instead): the macros
 *    are taken away so that code testing for them takes its fallback.
 */
#include_next <sys/socket.h>

#ifndef TIDE_SHIM_SYS_SOCKET_H
#define TIDE_SHIM_SYS_SOCKET_H

#if !defined(__linux__)
#if defined(__FreeBSD__) || defined(__DragonFly__) || defined(__APPLE__)
#include <sys/uio.h> /* struct iovec */
struct sf_hdtr {
    struct iovec *headers;
    int hdr_cnt;
    struct iovec *trailers;
    int trl_cnt;
};
#endif
#if defined(__FreeBSD__) || defined(__DragonFly__)
#define SF_NODISKIO 0x00000001
#define SF_NOCACHE 0x00000010
#define SF_SYNC 0x00000004
/* Sends nbytes (0: to end of file) of file fd from offset to socket s;
 * *sbytes receives the count sent, also when it fails with EAGAIN. */
int sendfile(int fd, int s, off_t offset, size_t nbytes, struct sf_hdtr *hdtr, off_t *sbytes,
             int flags);
#elif defined(__APPLE__)
/* *len: in, the count to send (0: to end of file); out, the count sent. */
int sendfile(int fd, int s, off_t offset, off_t *len, struct sf_hdtr *hdtr, int flags);
#endif

#if defined(__APPLE__)
#undef SOCK_NONBLOCK
#undef SOCK_CLOEXEC
#undef MSG_NOSIGNAL
#ifndef SO_NOSIGPIPE
#define SO_NOSIGPIPE 0x1022
#endif
#endif
#endif /* !__linux__ */

#endif /* TIDE_SHIM_SYS_SOCKET_H */
