/*
 * Buffered streams over an fd, like asyncio's StreamReader/StreamWriter.
 *
 * Reading: a buffer that starts at 4 KiB and doubles while reads fill it,
 * up to the stream's limit (64 KiB by default).  readline/readuntil look for
 * the delimiter in the buffer; a line that does not fit in the limit fails
 * with -EMSGSIZE and leaves every byte in the buffer, so nothing is lost.
 * Large plain reads bypass the buffer.
 *
 * Writing never waits: tide_stream_write tries the syscall at once when the
 * buffer is empty (the common case costs one write and no copy) and buffers
 * the rest, which the loop flushes from the fd's writable callback.  drain
 * waits while the buffer is above the high-water mark, until it falls to
 * the low-water mark: the backpressure a producer must respect to keep
 * memory bounded.  The first write error sticks and every later call
 * returns it.
 *
 * A stream may be shared by a reading task and writing tasks.  close may
 * come while another task is blocked in it: that task wakes with -EBADF and
 * the memory is freed when the last user has left.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define RBUF_START 4096

struct tide_stream {
    int fd;
    tide__fd *f;          /* the fd's state in its loop */
    tide_loop *loop;
    uint8_t is_socket;    /* send(MSG_NOSIGNAL) rather than write */
    uint8_t eof;          /* the peer finished sending */
    uint8_t closed;       /* tide_stream_close was called */
    unsigned users;       /* tasks inside a call that may suspend */
    /* reading: buffered bytes are rbuf[rpos, rpos + rlen) */
    char *rbuf;
    size_t rcap, rpos, rlen;
    size_t limit;
    /* writing: pending bytes are wbuf[wpos, wpos + wlen) */
    char *wbuf;
    size_t wcap, wpos, wlen;
    size_t high, low;
    int werr;             /* the first write error; sticky */
    tide_task *drainer;   /* waiting in drain or close */
    size_t drain_to;      /* wake it when wlen <= drain_to */
};

void tide_stream_opts_init(tide_stream_opts *o)
{
    if (o) {
        o->limit = 64 * 1024;
        o->high_water = 64 * 1024;
        o->low_water = 16 * 1024;
    }
}

static void flush_cb(tide__fd *f, int rc);

int tide_stream_open(tide_stream **out, int fd, const tide_stream_opts *o)
{
    tide_loop *loop = tide__tls_loop;
    tide_stream_opts d;
    tide_stream *s;
    struct stat st;
    int err = 0;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (fd < 0)
        return -EBADF;
    if (!loop)
        return -EPERM;
    tide_stream_opts_init(&d);
    if (o) {
        if (o->limit)
            d.limit = o->limit;
        if (o->high_water)
            d.high_water = o->high_water;
        d.low_water = o->low_water;
        if (d.low_water > d.high_water)
            return -EINVAL;
    }
    s = tide__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->f = tide__fd_get(loop, fd, &err);
    if (!s->f) {
        tide__free(s);
        return err;
    }
    s->fd = fd;
    s->loop = loop;
    s->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    s->limit = d.limit;
    s->high = d.high_water;
    s->low = d.low_water;
    *out = s;
    return 0;
}

int tide_stream_fd(const tide_stream *s)
{
    return s ? s->fd : -EINVAL;
}

size_t tide_stream_buffered(const tide_stream *s)
{
    return s ? s->rlen : 0;
}

size_t tide_stream_write_pending(const tide_stream *s)
{
    return s ? s->wlen : 0;
}

/* ------------------------------------------------------ users and close */

/* Every call that may suspend brackets itself with enter/leave, so a close
 * from another task frees the stream only once nobody is inside. */
static int enter(tide_stream *s, tide_task **cur)
{
    if (!s)
        return -EINVAL;
    if (s->closed)
        return -EBADF;
    *cur = tide__current();
    if (!*cur)
        return -EPERM;
    if ((*cur)->cancel_req || (*cur)->scope) {
        int rc = tide__cancel_check(*cur, NULL);
        if (rc < 0)
            return rc;
    }
    s->users++;
    return 0;
}

static void destroy(tide_stream *s)
{
    tide__free(s->rbuf);
    tide__free(s->wbuf);
    tide__free(s);
}

static ssize_t leave(tide_stream *s, ssize_t rc)
{
    if (--s->users == 0 && s->closed)
        destroy(s);
    return rc;
}

/* --------------------------------------------------------------- reading */

/* Reads more into the buffer (growing it up to the limit).  Returns the
 * count (0 at EOF) or -errno; -EMSGSIZE if the buffer is full at the limit. */
static ssize_t fill(tide_stream *s)
{
    ssize_t n;
    size_t room;

    if (s->rpos && s->rpos + s->rlen == s->rcap) { /* no room at the end: compact */
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
    }
    if (s->rlen == s->rcap) {
        size_t cap = s->rcap ? s->rcap * 2 : RBUF_START;
        char *b;
        if (s->rcap >= s->limit)
            return -EMSGSIZE;
        if (cap > s->limit)
            cap = s->limit;
        if (s->rpos) {
            memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
            s->rpos = 0;
        }
        b = tide__realloc(s->rbuf, cap);
        if (!b)
            return -ENOMEM;
        s->rbuf = b;
        s->rcap = cap;
    }
    room = s->rcap - s->rpos - s->rlen;
    n = tide_read(s->fd, s->rbuf + s->rpos + s->rlen, room);
    if (n > 0) {
        s->rlen += (size_t)n;
        if ((size_t)n == room && s->rcap < s->limit) { /* reads fill it: grow */
            size_t cap = s->rcap * 2 > s->limit ? s->limit : s->rcap * 2;
            char *b = tide__realloc(s->rbuf, cap);
            if (b) {
                s->rbuf = b;
                s->rcap = cap;
            }
        }
    } else if (n == 0) {
        s->eof = 1;
    }
    return n;
}

static size_t take(tide_stream *s, void *buf, size_t n)
{
    if (n > s->rlen)
        n = s->rlen;
    if (n == 0)
        return 0;
    memcpy(buf, s->rbuf + s->rpos, n);
    s->rpos += n;
    s->rlen -= n;
    if (!s->rlen)
        s->rpos = 0;
    return n;
}

ssize_t tide_stream_read(tide_stream *s, void *buf, size_t n)
{
    tide_task *cur;
    ssize_t rc = enter(s, &cur);

    if (rc < 0)
        return rc;
    if (!buf && n) {
        rc = -EINVAL;
    } else if (n == 0) {
        rc = 0;
    } else if (s->rlen) {
        rc = (ssize_t)take(s, buf, n);
    } else if (s->eof) {
        rc = 0;
    } else if (n >= RBUF_START) { /* big read: no copy */
        rc = tide_read(s->fd, buf, n);
        if (rc == 0)
            s->eof = 1;
    } else {
        rc = fill(s);
        if (rc > 0)
            rc = (ssize_t)take(s, buf, n);
    }
    return leave(s, rc);
}

ssize_t tide_stream_readexactly(tide_stream *s, void *buf, size_t n)
{
    tide_task *cur;
    ssize_t rc = enter(s, &cur);
    size_t got;

    if (rc < 0)
        return rc;
    if (!buf && n)
        return leave(s, -EINVAL);
    got = take(s, buf, n);
    while (got < n && !s->eof) {
        rc = tide_read(s->fd, (char *)buf + got, n - got);
        if (rc < 0) {
            /* Keep what arrived: put it back so a retry loses nothing. */
            if (got && !s->closed) {
                size_t need = got + s->rlen;
                if (need > s->rcap) {
                    char *b = tide__realloc(s->rbuf, need);
                    if (!b)
                        return leave(s, rc);
                    s->rbuf = b;
                    s->rcap = need;
                }
                memmove(s->rbuf + got, s->rbuf + s->rpos, s->rlen);
                memcpy(s->rbuf, buf, got);
                s->rpos = 0;
                s->rlen += got;
            }
            return leave(s, rc);
        }
        if (rc == 0)
            s->eof = 1;
        got += (size_t)rc;
    }
    return leave(s, (ssize_t)got);
}

ssize_t tide_stream_readuntil(tide_stream *s, const void *delim, size_t dlen, void *buf, size_t cap)
{
    tide_task *cur;
    ssize_t rc = enter(s, &cur);
    size_t scan = 0;

    if (rc < 0)
        return rc;
    if (!delim || !dlen || (!buf && cap))
        return leave(s, -EINVAL);
    for (;;) {
        if (s->rlen >= dlen + scan) {
            const char *p = memmem(s->rbuf + s->rpos + scan, s->rlen - scan, delim, dlen);
            if (p) {
                size_t total = (size_t)(p - (s->rbuf + s->rpos)) + dlen;
                if (total > cap)
                    return leave(s, -ENOBUFS);
                return leave(s, (ssize_t)take(s, buf, total));
            }
            scan = s->rlen - dlen + 1; /* do not search these bytes again */
        }
        if (s->eof) { /* the last, unterminated piece; 0 when nothing is left */
            if (s->rlen > cap)
                return leave(s, -ENOBUFS);
            return leave(s, (ssize_t)take(s, buf, s->rlen));
        }
        rc = fill(s);
        if (rc < 0)
            return leave(s, rc);
    }
}

ssize_t tide_stream_readline(tide_stream *s, char *buf, size_t cap)
{
    return tide_stream_readuntil(s, "\n", 1, buf, cap);
}

/* --------------------------------------------------------------- writing */

static ssize_t raw_write(tide_stream *s, const void *p, size_t n)
{
    ssize_t w;
    do
        w = s->is_socket ? send(s->fd, p, n, MSG_NOSIGNAL) : write(s->fd, p, n);
    while (w < 0 && errno == EINTR);
    return w;
}

static void wake_drainer(tide_stream *s)
{
    if (s->drainer && (s->wlen <= s->drain_to || s->werr)) {
        tide_task *t = s->drainer;
        s->drainer = NULL;
        tide__wake(t, 0);
    }
}

/* While bytes are queued the stream's flush callback is armed, and counts
 * as I/O the loop waits for (tide_loop_run does not return, the poller is
 * not skipped). */
static void set_flushing(tide_stream *s, int on)
{
    if (on && !s->f->on_writable) {
        s->f->on_writable = flush_cb;
        s->f->cb_arg = s;
        tide__loop_io_ref(s->loop);
    } else if (!on && s->f->on_writable == flush_cb) {
        s->f->on_writable = NULL;
        tide__loop_io_unref(s->loop);
    }
}

/* Writes from the buffer until it is empty or the kernel's is full. */
static void flush(tide_stream *s)
{
    if (s->wlen && !s->werr) {
        ssize_t w = raw_write(s, s->wbuf + s->wpos, s->wlen);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                s->f->ready &= ~TIDE__EV_OUT;
            else
                s->werr = -errno;
        } else {
            s->wpos += (size_t)w;
            s->wlen -= (size_t)w;
            if (s->wlen)
                s->f->ready &= ~TIDE__EV_OUT; /* short: the socket buffer is full */
        }
    }
    if (!s->wlen || s->werr) {
        s->wpos = s->wlen = 0;
        set_flushing(s, 0);
    }
    wake_drainer(s);
}

static void flush_cb(tide__fd *f, int rc)
{
    tide_stream *s = f->cb_arg;

    if (rc < 0) { /* the fd was closed under us */
        if (!s->werr)
            s->werr = rc;
        s->wpos = s->wlen = 0;
        set_flushing(s, 0);
        wake_drainer(s);
        return;
    }
    flush(s);
}

ssize_t tide_stream_write(tide_stream *s, const void *buf, size_t n)
{
    const char *p = buf;
    size_t done = 0;

    if (!s || (!buf && n))
        return -EINVAL;
    if (s->closed)
        return -EBADF;
    if (s->werr)
        return s->werr;
    if (n == 0)
        return 0;
    if (!s->wlen && (s->f->ready & TIDE__EV_OUT)) { /* nothing queued: try now */
        ssize_t w = raw_write(s, p, n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return s->werr = -errno;
            s->f->ready &= ~TIDE__EV_OUT;
        } else {
            done = (size_t)w;
            if (done == n)
                return (ssize_t)n;
            s->f->ready &= ~TIDE__EV_OUT;
        }
    }
    /* Queue the rest. */
    if (s->wpos + s->wlen + (n - done) > s->wcap) {
        if (s->wpos) {
            memmove(s->wbuf, s->wbuf + s->wpos, s->wlen);
            s->wpos = 0;
        }
        if (s->wlen + (n - done) > s->wcap) {
            size_t cap = s->wcap ? s->wcap : 4096;
            char *b;
            while (cap < s->wlen + (n - done))
                cap *= 2;
            b = tide__realloc(s->wbuf, cap);
            if (!b) /* part went out: the stream is broken, say so (sticky) */
                return done ? (s->werr = -ENOMEM) : -ENOMEM;
            s->wbuf = b;
            s->wcap = cap;
        }
    }
    memcpy(s->wbuf + s->wpos + s->wlen, p + done, n - done);
    s->wlen += n - done;
    set_flushing(s, 1);
    if (s->f->ready & TIDE__EV_OUT) /* ready already: no edge will come */
        flush(s);
    return (ssize_t)n;
}

static void unlink_drainer(void *arg)
{
    ((tide_stream *)arg)->drainer = NULL;
}

/* Waits until at most `to` bytes are pending.  0 or -errno. */
static int wait_flushed(tide_stream *s, tide_task *cur, size_t to)
{
    int rc;

    if (s->drainer)
        return -EBUSY;
    s->drainer = cur;
    s->drain_to = to;
    rc = tide__suspend(cur, TIDE__NEVER, unlink_drainer, s, 0);
    return rc < 0 ? rc : s->werr;
}

int tide_stream_drain(tide_stream *s)
{
    tide_task *cur;
    int rc = enter(s, &cur);

    if (rc < 0)
        return rc;
    if (s->werr)
        rc = s->werr;
    else if (s->wlen > s->high)
        rc = wait_flushed(s, cur, s->low);
    return (int)leave(s, rc);
}

int tide_stream_flush(tide_stream *s)
{
    tide_task *cur;
    int rc = enter(s, &cur);

    if (rc < 0)
        return rc;
    if (s->werr)
        rc = s->werr;
    else if (s->wlen)
        rc = wait_flushed(s, cur, 0);
    return (int)leave(s, rc);
}

int tide_stream_close(tide_stream *s)
{
    tide_task *cur = tide__current();
    int rc = 0;

    if (!s)
        return -EINVAL;
    if (s->closed)
        return -EBADF;
    s->closed = 1; /* from now on every other call fails with -EBADF */
    if (s->drainer) { /* another task waits in drain: it is over for it */
        tide_task *t = s->drainer;
        s->drainer = NULL;
        tide__wake(t, -EBADF);
    }
    if (s->wlen && !s->werr) {
        if (cur && cur->loop == s->loop) {
            s->users++;
            rc = wait_flushed(s, cur, 0); /* a cancel or timeout cuts it short */
            s->users--;
        } else {
            flush(s); /* outside a task: what the kernel takes now */
            if (s->wlen)
                rc = -EAGAIN; /* the rest is dropped */
        }
    } else if (s->werr) {
        rc = s->werr;
    }
    set_flushing(s, 0);
    /* Forget through the stream's own loop (right even outside a run), then
     * close: tasks blocked in reads wake with -EBADF. */
    tide__fd_forget(s->loop, s->fd);
    close(s->fd);
    if (s->users == 0)
        destroy(s);
    return rc;
}

int tide_open_connection(const char *host, int port, tide_stream **out)
{
    int fd, rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    fd = tide_tcp_connect(host, port);
    if (fd < 0)
        return fd;
    (void)tide_tcp_nodelay(fd, 1);
    rc = tide_stream_open(out, fd, NULL);
    if (rc < 0)
        tide_close(fd);
    return rc;
}
