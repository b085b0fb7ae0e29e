/*
 * Stream transports: what a buffered stream (stream.c) reads from and
 * writes to.
 *
 * A stream owns one transport and knows it only through this vtable, so
 * the same buffering, limits, backpressure and close logic serve every
 * kind of byte stream.  The fd transport (stream_fd.c: a socket, pipe or
 * tty) is the first; TLS is the next, over a socket or over any other
 * stream (its read and write then go to the inner stream's internal
 * non-blocking calls below, and its wait to the inner stream's).
 *
 * The contract:
 *  - read, writev and shutdown never wait.  When they cannot go on now they
 *    return -EAGAIN and report in *wait which direction(s) would let them
 *    go on: TIDE__WANT_IN (bytes must come from the other side) and/or
 *    TIDE__WANT_OUT (bytes must go out).  Do not assume a read waits for
 *    "readable": a TLS read may have to send first (SSL_ERROR_WANT_WRITE).
 *  - wait suspends the calling task until the reported direction(s) may let
 *    the operation go on; the stream then tries again.  It is a
 *    cancellation point like every tide wait.
 *  - arm is wait's callback form, for the stream's flush of its write queue
 *    from the loop: cb(arg, 0) once the direction(s) may let a write go on
 *    (once per arm; the stream re-arms after the next -EAGAIN), or
 *    cb(arg, rc < 0) if the transport died under the stream (its fd was
 *    closed behind its back).  Arming with wait 0 disarms.  If the
 *    direction may be ready already (an edge that came and will not come
 *    again), arm returns -EALREADY and the caller tries again at once.
 *  - close wakes a task blocked in wait (which returns -EBADF) and
 *    releases what the transport owns (the fd, if it still is the
 *    transport's: never an fd number that was closed and reused by someone
 *    else).  It may come while another task is inside wait, so it must not
 *    free the memory that wait returns to: free does that, later, once no
 *    task is inside any call of the transport.  After close the stream
 *    calls nothing but free.
 *  - A transport whose resource was closed under it (tide_close of its fd)
 *    returns -EBADF from every call from then on.
 */
#ifndef TIDE_TRANSPORT_H
#define TIDE_TRANSPORT_H

#include "tide_int.h"

#include <sys/socket.h>
#include <sys/uio.h>

#define TIDE__WANT_IN TIDE__EV_IN   /* progress needs bytes from the other side */
#define TIDE__WANT_OUT TIDE__EV_OUT /* progress needs room to send */

typedef struct tide__transport tide__transport;

/* The armed callback: rc 0 (may go on) or < 0 (the transport is dead). */
typedef void (*tide__transport_cb)(void *arg, int rc);

typedef struct tide__transport_ops {
    const char *name;
    /* One attempt to read up to len (> 0) bytes: the count, 0 at end of
     * stream, -EAGAIN with *wait set, or -errno. */
    ssize_t (*read)(tide__transport *t, void *buf, size_t len, unsigned *wait);
    /* One attempt to write the iovecs (total > 0): the count taken (maybe
     * short), -EAGAIN with *wait set, or -errno (-EPIPE, -ECONNRESET...). */
    ssize_t (*writev)(tide__transport *t, const struct iovec *iov, int iovcnt, unsigned *wait);
    /* Suspends cur until wait (TIDE__WANT_*) may let an operation go on.
     * 0, -EBADF (dead), -EBUSY (another task waits that way), -ECANCELED,
     * -ETIMEDOUT. */
    int (*wait)(tide__transport *t, tide_task *cur, unsigned wait);
    /* Arms (wait != 0) or disarms (wait == 0) the callback.  0 or -EBADF. */
    int (*arm)(tide__transport *t, unsigned wait, tide__transport_cb cb, void *arg);
    /* Ends the write side (the peer reads EOF); the stream calls it once its
     * queue is flushed.  0, -EAGAIN with *wait (TLS close_notify), -errno. */
    int (*shutdown)(tide__transport *t, unsigned *wait);
    /* Releases the transport's resources and wakes its waiters; see above. */
    void (*close)(tide__transport *t);
    /* Frees the transport's memory (after close, once nobody is inside a
     * call).  May be NULL: the memory is not the transport's (the fd
     * transport lives in the stream). */
    void (*free)(tide__transport *t);
    /* The local (peer 0) or peer (peer 1) address, as getsockname /
     * getpeername: *len is the room in addr on entry, the address's length
     * on return.  0, -ENOTSOCK (the transport has none), -ENOTCONN, -EBADF.
     * May be NULL: no address. */
    int (*address)(tide__transport *t, int peer, struct sockaddr *addr, socklen_t *len);
    /* The fd underneath, or -ENOTSOCK / -EBADF.  May be NULL: none. */
    int (*fd)(const tide__transport *t);
    /* Reads up to len (> 0) bytes into buf, which the caller keeps until it
     * returns, waiting as long as it takes (a cancellation point): the
     * count, 0 at end of stream, -errno; -EAGAIN: not this way now, use
     * read and wait.  May be NULL.  The fd transport on an io_uring that
     * takes operations reads so, with no syscall of its own
     * (io_uring_ops.c). */
    ssize_t (*read_wait)(tide__transport *t, tide_task *cur, void *buf, size_t len);
    /* Asynchronous sends (all three NULL, or all three set).  async: send_start
     * would take a send now (the stream then queues every write and sends
     * its queue at the end of the step, instead of trying writev at once).
     * send_start queues a send of m's iovecs (1 or 2) for the loop's next
     * poll and returns at once: 0, then op->done(op) is called exactly once
     * from the loop's poll, op->res the count sent (maybe short) or -errno,
     * and until then m, its iovecs and their bytes must stay valid and
     * unchanged (the kernel reads them); -EAGAIN: not this way now (use
     * writev); -EBADF.  send_cancel asks for op's cancellation now; its
     * done still comes (-ECANCELED, or the count if it went first).  The
     * fd transport on an io_uring that takes operations sends so
     * (IORING_OP_SEND / SENDMSG). */
    int (*async)(const tide__transport *t);
    int (*send_start)(tide__transport *t, tide__uop *op, struct msghdr *m);
    void (*send_cancel)(tide__transport *t, tide__uop *op);
} tide__transport_ops;

/* Every transport starts with this (embed it first). */
struct tide__transport {
    const tide__transport_ops *ops;
};

/* ------------------------------------------------------ the fd transport */

/* Kept inside the stream struct (no allocation of its own). */
typedef struct tide__fd_transport {
    tide__transport base;
    tide_loop *loop;
    tide__fd *f; /* the fd's state in loop */
    int fd;
    uint32_t gen;          /* f->gen at open: another value means the fd was
                              closed under us (and its number maybe reused) */
    uint8_t is_socket;     /* send/sendmsg with MSG_NOSIGNAL, shutdown, addresses */
    unsigned armed;        /* directions whose fd callback is ours */
    tide__transport_cb cb; /* armed callback */
    void *cb_arg;
} tide__fd_transport;

/* Opens the fd transport over fd (registers it with loop's poller).  The
 * transport owns fd from now on.  0, -EBADF, -ENOMEM, or a poller error;
 * on failure fd is not closed. */
int tide__fd_transport_open(tide__fd_transport *t, tide_loop *loop, int fd);
/* Its ops, for a transport that works on the fd itself and waits as the fd
 * transport does (TLS on a socket: it embeds a copy of the stream's). */
extern const tide__transport_ops tide__fd_transport_ops;

/* --------------------------------------------------- internal stream calls */

/* Test hook: asynchronous sends a stream submitted (one per queue flush,
 * however many writes the queue holds). */
extern unsigned long tide__stream_async_sends;

/* Closes s without flushing (what is queued is dropped, nothing waits). */
void tide__stream_abort(tide_stream *s);
/* The bytes of buffer memory s holds now (read buffer + write queue). */
size_t tide__stream_held(const tide_stream *s);

/* Opens a stream over transport t (which the stream owns from now on: it
 * is closed and freed with the stream, and on failure here too).  Errors as
 * tide_stream_open. */
int tide__stream_open_transport(tide_stream **s, tide__transport *t, const tide_stream_opts *o);

/* A layer working on s outside the stream's own calls (TLS's handshake)
 * counts as a user, so a close from another task frees s (and the layer)
 * only once it has left: hold before, release after (s may be gone then). */
void tide__stream_hold(tide_stream *s);
void tide__stream_release(tide_stream *s);

/* The stream's transport (NULL if s is not a live, open stream). */
tide__transport *tide__stream_transport(const tide_stream *s);

/* Builds the layer that replaces a stream's transport: over fdt (the
 * stream's fd transport, copied: the layer works on the fd itself) or over
 * inner (a new stream that took the old transport and the bytes read ahead;
 * on failure the caller must not touch it).  0 and *out, or -errno. */
typedef int (*tide__stream_layer_fn)(void *arg, const tide__fd_transport *fdt, tide_stream *inner,
                                     tide__transport **out);
/* Puts a layer (TLS: start_tls) in place of s's transport; the handle stays
 * the same.  make gets the fd transport when s is on one and read nothing
 * ahead, else a new inner stream over s's old transport holding what s had
 * buffered (the layer reads those bytes first).  s must be idle: nothing
 * queued to write, no task inside it.  On failure s is unchanged.
 * 0, -EBADF, -EBUSY, s's write error, or make's error. */
int tide__stream_layer(tide_stream *s, tide__stream_layer_fn make, void *arg);

/* What a transport layered on a stream (TLS over any stream) uses.  None
 * waits: they return -EAGAIN with *wait set and the layer's wait calls
 * tide__stream_wait. */

/* Buffered bytes, or one read attempt of the transport: n, 0 at EOF,
 * -EAGAIN (+ *wait), -errno. */
ssize_t tide__stream_read_nowait(tide_stream *s, void *buf, size_t n, unsigned *wait);
/* Queues the bytes unless more than the high-water mark is queued already
 * (-EAGAIN, *wait = TIDE__WANT_OUT): n or -errno. */
ssize_t tide__stream_writev_nowait(tide_stream *s, const struct iovec *iov, int iovcnt,
                                   unsigned *wait);
/* Waits until what *_nowait reported may go on: for TIDE__WANT_IN, bytes
 * buffered or EOF; for TIDE__WANT_OUT, the queue at or below the low-water
 * mark.  0 or -errno. */
int tide__stream_wait(tide_stream *s, tide_task *cur, unsigned wait);
/* Arms cb(arg, rc) for the moment wait may go on (0) or the stream failed
 * (rc < 0), once; wait 0 disarms.  Only TIDE__WANT_OUT can be armed (the
 * inner queue fell to the low-water mark): a stream reads only when asked.
 * 0, -EALREADY (it may go on now, or the stream failed: try again),
 * -EOPNOTSUPP (TIDE__WANT_IN), -EBADF. */
int tide__stream_arm(tide_stream *s, unsigned wait, tide__transport_cb cb, void *arg);

/* ------------------------------------------- servers with a setup step */

/* A server whose connections pass through a step before the handler (TLS:
 * the handshake): conn_start(stream, arg) runs first in the connection's
 * task; < 0 closes the connection without calling the handler.  free(arg)
 * runs when the server is closed, or at once if starting it fails. */
typedef struct tide__server_hooks {
    int (*conn_start)(tide_stream *s, void *arg);
    void (*free)(void *arg);
    void *arg;
} tide__server_hooks;

/* tide_start_server / tide_start_unix_server with hooks (copied).  Errors
 * as those. */
int tide__start_server_hooked(const char *host, int port, tide_server_handler handler, void *arg,
                              const tide_server_opts *o, const tide__server_hooks *hooks,
                              tide_server **out);
int tide__start_unix_server_hooked(const char *path, tide_server_handler handler, void *arg,
                                   const tide_server_opts *o, const tide__server_hooks *hooks,
                                   tide_server **out);

/* The server no longer closes s (a connection of srv's) when its handler
 * returns: the handler took it over and closes it itself. */
void tide__server_forget(tide_server *srv, tide_stream *s);

/* Puts n bytes back in front of s's buffered ones (what a layer read ahead
 * and hands back).  0, -ENOMEM, -EINVAL, -EBADF. */
int tide__stream_unread(tide_stream *s, const void *p, size_t n);

#endif
