/*
 * Buffered streams, like asyncio's StreamReader/StreamWriter, over a
 * transport (transport.h): the fd transport (stream_fd.c) for sockets,
 * pipes and ttys, and any other that implements the vtable (TLS next).
 * Nothing here knows about fds: every byte goes through the transport's
 * non-blocking read/writev, and every wait through its wait/arm.
 *
 * Reading.  A fill reads as much as the buffer may hold (its limit, 64 KiB
 * by default) in one call, so a handler reading 8 KiB at a time from a busy
 * connection costs one syscall per 64 KiB, not per 8 KiB; a read of at
 * least that much into an empty buffer goes straight to the caller's
 * memory (no copy).  readline/readuntil look for the delimiter(s) in the
 * buffer; a line that does not fit in the limit fails with -EMSGSIZE and
 * leaves every byte buffered, so nothing is lost.  One task reads at a
 * time: a second concurrent reader gets -EBUSY (two readers would take
 * each other's bytes).
 *
 * Buffer memory.  10 000 idle connections must not each keep 64 KiB.  So a
 * buffer is held only while it holds bytes: when a read empties it, or a
 * read must wait with nothing buffered, it goes back to a per-loop pool;
 * the write queue likewise once it is flushed.  The pool (power-of-two
 * classes from 4 KiB to 1 MiB) keeps at most BUF_KEEP_BYTES per class and
 * frees the rest, so a burst does not pin memory for good (the 4 KiB class
 * keeps up to one buffer per live stream if that is more: see buf_put; a
 * stream's close frees what it let the class keep).  Getting and
 * putting a pooled buffer is a pointer swap: no allocation on the steady
 * path (the last buffer freed is the next given, still warm in the cache).
 * A buffer is sized for what the stream asks (the default read size,
 * min(limit, 64 KiB); it grows up to the limit only for a long line), and
 * only queues or put-backs beyond 1 MiB use private memory.  The cost: an
 * idle connection's next read takes a buffer from the pool again, a
 * pointer pop.  Shrinking in place (realloc) would copy and call malloc on
 * the steady path; freeing per wait would call malloc/free per round trip.
 *
 * Writing never waits.  The first tide_stream_write(v) of a task's step
 * tries the transport at once when nothing is queued (the common case, a
 * request answered by one write, costs one syscall and no copy, and its
 * errors show at once); later writes of the same step are corked: copied
 * into the queue and written together when the step ends (the task
 * suspends or yields: the scheduler's deferred-work list), so an echo loop
 * that writes each 8 KiB piece of a 64 KiB read makes two syscalls instead
 * of eight.  Past CORK_MAX queued bytes go at once.  On a transport with
 * asynchronous sends (io_uring, see "Asynchronous sends" below) even the
 * first write of a step is only queued: the step's end sends the queue as
 * one operation, with no syscall of its own.  What the transport
 * does not take is queued in a ring (appending behind a part-written queue
 * never moves bytes) that the loop flushes from the transport's callback
 * (the fd's writable event) without any task.  The ring starts at the
 * cork size and doubles, so a growing queue is copied once or twice.  Either all of a
 * write is accepted, or it fails and the error sticks: the first write
 * error (-EPIPE, -ECONNRESET, -ENOMEM when the queue cannot grow,
 * -ETIMEDOUT when the write timeout expired) drops the queue, and every
 * later write, drain, flush and close returns it.  drain waits while the
 * queue is above the high-water mark, until it falls to the low-water
 * mark: the backpressure a producer must respect to keep memory bounded.
 * One task at a time may wait in drain/flush (-EBUSY for a second).  With a
 * write timeout (the servers' default), drain, flush and the flush at close
 * give up once no byte could be written for that long: a peer that never
 * reads cannot hold a connection forever.
 *
 * Handles.  Stream structs come from a per-loop pool and go back to malloc
 * only when the loop is freed, with a magic word set to a dead value on the
 * way back: a stale handle (a second close, a read after close) reads valid
 * memory and gets -EBADF instead of a use after free, as far as C allows (a
 * struct is reused only after every other free one, FIFO).  A stream whose
 * fd was closed under it (tide_close on its number) learns it from the fd
 * transport's generation check and gets -EBADF; it never touches the fd of
 * whoever reused the number.
 *
 * A stream may be shared by a reading task and writing tasks.  close may
 * come while another task is blocked in it: that task wakes with -EBADF and
 * the struct goes back to the pool when the last user has left.
 */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define STREAM_LIVE 0x7374726du /* "strm" */
#define STREAM_DEAD 0x64656164u /* "dead": back in the pool */

#define RSIZE_MAX (64 * 1024)     /* a fill into an empty buffer asks for min(limit, this) */
#define BUF_MIN_SHIFT 12          /* the smallest pooled buffer: 4 KiB */
#define BUF_NCLASS 9              /* 4 KiB << 0..8: up to 1 MiB */
#define BUF_NOCLASS 0xffu         /* private memory, freed when emptied */
#define BUF_KEEP_BYTES (2u << 20) /* free buffers kept per class and loop */
#define STREAMS_PER_SLAB 32
#define EALREADY_MAX 16 /* a transport that keeps saying "try now" is broken */

/* Per-loop state (loop->streams.p, made on the first open). */
struct tide__streams {
    tide_stream *free_head, *free_tail; /* pooled structs, FIFO */
    tide_stream *live;                  /* open (or closing) streams */
    void **slabs;                       /* what the structs were carved from */
    size_t nslabs;
    void *bufs[BUF_NCLASS]; /* free buffers, linked through their first word */
    uint32_t nbufs[BUF_NCLASS];
    size_t nlive; /* streams on the live list */
};

static void uncork(tide__deferred *d);

/* Bytes a writer may leave corked until the end of its step. */
#define CORK_MAX ((size_t)64 * 1024)

struct tide_stream {
    uint32_t magic;     /* STREAM_LIVE until back in the pool, then STREAM_DEAD */
    uint8_t closed;     /* tide_stream_close was called: other calls get -EBADF */
    uint8_t eof;        /* the transport reported the end of the stream */
    uint8_t wshut;      /* write_eof: shut the write side once the queue is out */
    uint8_t wshut_done; /* ... and it is shut */
    uint8_t flushing;   /* the transport's callback is armed (holds an io ref) */
    uint8_t rcls, wcls; /* pool class of rbuf / wbuf (BUF_NOCLASS: private) */
    tide_loop *loop;
    tide__transport *tp;        /* &fdt or a transport of its own; NULL once closed */
    tide__transport *tp_closed; /* after close: freed (ops->free) with the stream */
    tide__fd_transport fdt;
    unsigned users;    /* tasks inside a call that may suspend */
    tide_task *reader; /* the task inside a read call, or NULL */
    /* reading: buffered bytes are rbuf[rpos, rpos + rlen); no buffer while empty */
    char *rbuf;
    size_t rcap, rpos, rlen;
    size_t limit; /* most bytes a fill buffers (the longest line) */
    size_t rsize; /* buffer a fill starts with: min(limit, RSIZE_MAX) */
    /* writing: a ring: queued bytes are wlen bytes from wbuf[wpos], wrapping
     * at wcap (so appending behind a part-written queue never moves bytes);
     * no buffer while empty */
    char *wbuf;
    size_t wcap, wpos, wlen;
    size_t high, low;
    int werr;                  /* the first write error; sticky */
    tide_task *drainer;        /* waiting in drain, flush or close */
    size_t drain_to;           /* wake it when wlen <= drain_to */
    int64_t wtimeout;          /* ns without progress after which waits for the queue fail */
    int64_t wprogress;         /* when the queue last shrank (ns; kept while wtimeout) */
    tide__transport_cb out_cb; /* tide__stream_arm: told when wlen <= low */
    void *out_arg;
    tide_stream *prev, *next; /* the live list, or (next) the free list */
    tide__deferred corked;    /* queued bytes wait for the end of the writer's step */
    /* An asynchronous send of the queue's first snd_len bytes (transport's
     * send_start: io_uring), in flight from the submission to its done:
     * see "Asynchronous sends" below. */
    uint8_t sending;  /* in flight: holds a user and an io ref */
    uint8_t wdropped; /* the queue was dropped meanwhile: the count means nothing */
    uint8_t wpcls;    /* pool class of wpin */
    char *wpin;       /* the buffer the kernel reads from, when the queue left it */
    size_t snd_len;
    tide__uop sop;
    struct msghdr smsg;
    struct iovec siov[2];
};

unsigned long tide__stream_async_sends;

void tide_stream_opts_init(tide_stream_opts *o)
{
    if (o) {
        memset(o, 0, sizeof *o);
        o->limit = 64 * 1024;
        o->high_water = 64 * 1024;
        o->low_water = 16 * 1024;
    }
}

/* ------------------------------------------------------------ the pools */

static struct tide__streams *streams_of(tide_loop *loop)
{
    if (!loop->streams.p)
        loop->streams.p = tide__calloc(1, sizeof *loop->streams.p);
    return loop->streams.p;
}

static tide_stream *stream_alloc(tide_loop *loop)
{
    struct tide__streams *ss = streams_of(loop);
    tide_stream *s;

    if (!ss)
        return NULL;
    if (!ss->free_head) {
        void **v = tide__realloc(ss->slabs, (ss->nslabs + 1) * sizeof *v);
        tide_stream *slab;
        size_t i;
        if (!v)
            return NULL;
        ss->slabs = v;
        slab = tide__malloc(STREAMS_PER_SLAB * sizeof *slab);
        if (!slab)
            return NULL;
        ss->slabs[ss->nslabs++] = slab;
        for (i = 0; i < STREAMS_PER_SLAB; i++) {
            slab[i].magic = STREAM_DEAD;
            slab[i].next = i + 1 < STREAMS_PER_SLAB ? &slab[i + 1] : NULL;
        }
        ss->free_head = slab;
        ss->free_tail = &slab[STREAMS_PER_SLAB - 1];
    }
    s = ss->free_head;
    ss->free_head = s->next;
    if (!ss->free_head)
        ss->free_tail = NULL;
    memset(s, 0, sizeof *s);
    s->magic = STREAM_LIVE;
    s->corked.fn = uncork;
    s->loop = loop;
    s->rcls = s->wcls = BUF_NOCLASS;
    s->next = ss->live;
    if (ss->live)
        ss->live->prev = s;
    ss->live = s;
    ss->nlive++;
    return s;
}

/* A buffer of at least need bytes: pooled by class up to 1 MiB, else
 * private (rounded up to a power of two, so a growing queue copies
 * O(log n) times). */
static char *buf_get(tide_loop *loop, size_t need, uint8_t *cls, size_t *cap)
{
    struct tide__streams *ss = loop->streams.p;
    unsigned k = 0;
    size_t size = (size_t)1 << BUF_MIN_SHIFT;
    char *p;

    while (size < need && k < BUF_NCLASS) {
        size <<= 1;
        k++;
    }
    if (k < BUF_NCLASS) {
        if (ss->bufs[k]) {
            p = ss->bufs[k];
            ss->bufs[k] = *(void **)p;
            ss->nbufs[k]--;
        } else {
            p = tide__malloc(size);
        }
        *cls = (uint8_t)k;
    } else {
        while (size < need) {
            if (size > SIZE_MAX / 2)
                return NULL;
            size <<= 1;
        }
        p = tide__malloc(size);
        *cls = BUF_NOCLASS;
    }
    if (p)
        *cap = size;
    return p;
}

static void buf_put(tide_loop *loop, char *p, uint8_t cls)
{
    struct tide__streams *ss = loop->streams.p;
    size_t keep;

    if (!p)
        return;
    /* The smallest class keeps one per live stream if that is more: an
     * asynchronous stream (io_uring) queues every write, so 1000 busy
     * connections each hold a small queue buffer from a step's end to its
     * send's completion, and past the pool every round trip would malloc
     * one (with brk and page faults as the heap's top grows and shrinks). */
    keep = cls == BUF_NOCLASS ? 0 : BUF_KEEP_BYTES >> (BUF_MIN_SHIFT + cls);
    if (cls == 0 && keep < ss->nlive)
        keep = ss->nlive;
    if (cls != BUF_NOCLASS && ss->nbufs[cls] < keep) {
        *(void **)p = ss->bufs[cls];
        ss->bufs[cls] = p;
        ss->nbufs[cls]++;
        return;
    }
    tide__free(p);
}

static void rbuf_release(tide_stream *s)
{
    buf_put(s->loop, s->rbuf, s->rcls);
    s->rbuf = NULL;
    s->rcap = s->rpos = s->rlen = 0;
    s->rcls = BUF_NOCLASS;
}

static void wbuf_release(tide_stream *s)
{
    if (s->sending) {
        /* The queue is dropped (an error, a close) while the kernel still
         * reads from it: the buffer is kept until the send's done. */
        if (!s->wpin) {
            s->wpin = s->wbuf;
            s->wpcls = s->wcls;
        } else {
            buf_put(s->loop, s->wbuf, s->wcls); /* the kernel reads wpin */
        }
        s->wdropped = 1;
        s->wbuf = NULL;
        s->wcap = s->wpos = s->wlen = 0;
        s->wcls = BUF_NOCLASS;
        return;
    }
    buf_put(s->loop, s->wbuf, s->wcls);
    s->wbuf = NULL;
    s->wcap = s->wpos = s->wlen = 0;
    s->wcls = BUF_NOCLASS;
}

/* Back to the pool: the handle is stale from here on. */
static void destroy(tide_stream *s)
{
    struct tide__streams *ss = s->loop->streams.p;

    tide__defer_cancel(&s->corked);
    /* A send is never in flight here (it holds a user), except when the
     * loop is freed: its poller drained every operation before. */
    s->sending = 0;
    buf_put(s->loop, s->wpin, s->wpcls);
    s->wpin = NULL;
    if (s->tp_closed && s->tp_closed->ops->free)
        s->tp_closed->ops->free(s->tp_closed); /* nobody is inside it now */
    rbuf_release(s);
    wbuf_release(s);
    ss->nlive--;
    /* The smallest class kept one buffer per live stream (buf_put): what
     * that kept beyond the usual share goes with the stream, so a crowd of
     * closed connections does not pin its buffers for the loop's life. */
    while (ss->nbufs[0] > ss->nlive && ss->nbufs[0] > (BUF_KEEP_BYTES >> BUF_MIN_SHIFT)) {
        void *p = ss->bufs[0];
        ss->bufs[0] = *(void **)p;
        ss->nbufs[0]--;
        tide__free(p);
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        ss->live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->magic = STREAM_DEAD;
    s->prev = s->next = NULL;
    if (ss->free_tail)
        ss->free_tail->next = s;
    else
        ss->free_head = s;
    ss->free_tail = s;
}

static void disarm_flush(tide_stream *s);

int tide__streams_init(tide_loop *loop)
{
    loop->streams.p = NULL; /* made on the first open */
    return 0;
}

/* The loop is being freed (its tasks are done): close what is still open
 * (without flushing: nothing can wait now), then give everything back. */
void tide__streams_term(tide_loop *loop)
{
    struct tide__streams *ss = loop->streams.p;
    size_t i;

    if (!ss)
        return;
    while (ss->live) {
        tide_stream *s = ss->live;
        disarm_flush(s);
        if (s->tp) {
            s->tp_closed = s->tp;
            s->tp = NULL;
            s->tp_closed->ops->close(s->tp_closed);
        }
        s->closed = 1;
        destroy(s);
    }
    for (i = 0; i < BUF_NCLASS; i++)
        while (ss->bufs[i]) {
            void *p = ss->bufs[i];
            ss->bufs[i] = *(void **)p;
            tide__free(p);
        }
    for (i = 0; i < ss->nslabs; i++)
        tide__free(ss->slabs[i]);
    tide__free(ss->slabs);
    tide__free(ss);
    loop->streams.p = NULL;
}

/* -------------------------------------------------------------- opening */

static int check_opts(const tide_stream_opts *o, tide_stream_opts *d)
{
    tide_stream_opts_init(d);
    if (o) {
        if (o->limit)
            d->limit = o->limit;
        if (o->high_water)
            d->high_water = o->high_water;
        d->low_water = o->low_water;
        d->write_timeout_ms = o->write_timeout_ms;
        if (d->low_water > d->high_water || o->write_timeout_ms < 0 ||
            o->write_timeout_ms > INT64_MAX / 1000000)
            return -EINVAL;
    }
    return 0;
}

static void apply_opts(tide_stream *s, const tide_stream_opts *d)
{
    s->limit = d->limit;
    s->rsize = d->limit < RSIZE_MAX ? d->limit : RSIZE_MAX;
    s->high = d->high_water;
    s->low = d->low_water;
    s->wtimeout = d->write_timeout_ms * 1000000;
}

int tide_stream_open(tide_stream **out, int fd, const tide_stream_opts *o)
{
    tide_loop *loop = tide__tls_loop;
    tide_stream_opts d;
    tide_stream *s;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (fd < 0)
        return -EBADF;
    if (!loop)
        return -EPERM;
    rc = check_opts(o, &d);
    if (rc < 0)
        return rc;
    s = stream_alloc(loop);
    if (!s)
        return -ENOMEM;
    rc = tide__fd_transport_open(&s->fdt, loop, fd);
    if (rc < 0) {
        destroy(s);
        return rc;
    }
    s->tp = &s->fdt.base;
    apply_opts(s, &d);
    *out = s;
    return 0;
}

int tide__stream_open_transport(tide_stream **out, tide__transport *t, const tide_stream_opts *o)
{
    tide_loop *loop = tide__tls_loop;
    tide_stream_opts d;
    tide_stream *s;
    int rc;

    if (out)
        *out = NULL;
    rc = !out || !t ? -EINVAL : !loop ? -EPERM : check_opts(o, &d);
    s = rc < 0 ? NULL : stream_alloc(loop);
    if (!s) {
        if (t) {
            t->ops->close(t);
            if (t->ops->free)
                t->ops->free(t);
        }
        return rc < 0 ? rc : -ENOMEM;
    }
    s->tp = t;
    apply_opts(s, &d);
    *out = s;
    return 0;
}

/* A live, open handle. */
static inline int check(const tide_stream *s)
{
    if (!s)
        return -EINVAL;
    return s->magic == STREAM_LIVE && !s->closed ? 0 : -EBADF;
}

int tide_stream_fd(const tide_stream *s)
{
    int rc = check(s);
    if (rc < 0)
        return rc;
    return s->tp->ops->fd ? s->tp->ops->fd(s->tp) : -ENOTSOCK;
}

size_t tide_stream_buffered(const tide_stream *s)
{
    return check(s) == 0 ? s->rlen : 0;
}

size_t tide_stream_write_pending(const tide_stream *s)
{
    return check(s) == 0 ? s->wlen : 0;
}

int tide_stream_at_eof(const tide_stream *s)
{
    int rc = check(s);
    return rc < 0 ? rc : s->eof && s->rlen == 0;
}

static int address(const tide_stream *s, int peer, struct sockaddr *addr, socklen_t *len)
{
    int rc = check(s);

    if (rc < 0)
        return rc;
    if (!addr || !len)
        return -EINVAL;
    if (!s->tp->ops->address)
        return -ENOTSOCK;
    return s->tp->ops->address(s->tp, peer, addr, len);
}

int tide_stream_peer_addr(const tide_stream *s, struct sockaddr *addr, socklen_t *len)
{
    return address(s, 1, addr, len);
}

int tide_stream_local_addr(const tide_stream *s, struct sockaddr *addr, socklen_t *len)
{
    return address(s, 0, addr, len);
}

/* ------------------------------------------------------ users and close */

/* Every call that may suspend brackets itself with enter/leave, so a close
 * from another task frees the stream only once nobody is inside.  A read
 * call also takes the reader's place (one at a time). */
static int enter(tide_stream *s, tide_task **cur, int reading)
{
    int rc = check(s);

    if (rc < 0)
        return rc;
    *cur = tide__current();
    if (!*cur || (*cur)->loop != s->loop)
        return -EPERM;
    if (reading && s->reader)
        return -EBUSY;
    if ((*cur)->cancel_req || (*cur)->scope) {
        rc = tide__cancel_check(*cur, NULL);
        if (rc < 0)
            return rc;
    }
    s->users++;
    if (reading) {
        s->reader = *cur;
        /* Fairness: a reader whose bytes are always there (buffered or in
         * the kernel) yields now and then, as a plain fd reader does. */
        rc = tide__io_budget(*cur);
        if (rc == 0 && s->closed)
            rc = -EBADF;
        if (rc < 0) {
            s->reader = NULL;
            if (--s->users == 0 && s->closed)
                destroy(s);
            return rc;
        }
    }
    return 0;
}

static ssize_t leave(tide_stream *s, ssize_t rc, int reading)
{
    if (reading) {
        s->reader = NULL;
        if (!s->rlen)
            rbuf_release(s); /* idle: no buffer held */
    }
    if (--s->users == 0 && s->closed)
        destroy(s);
    return rc;
}

/* The transport's wait; a close meanwhile makes it -EBADF (the transport is
 * gone even if the wait itself ended well). */
static int tp_wait(tide_stream *s, tide_task *cur, unsigned wait)
{
    int rc = s->tp->ops->wait(s->tp, cur, wait);
    return s->closed ? -EBADF : rc;
}

/* --------------------------------------------------------------- reading */

/* Makes room at the end of the read buffer (which starts at rbuf from here
 * on): 0, -EMSGSIZE (limit bytes are buffered), -ENOMEM. */
static int rbuf_prepare(tide_stream *s)
{
    uint8_t cls;
    size_t cap;
    char *b;

    if (s->rlen >= s->limit)
        return -EMSGSIZE;
    if (!s->rbuf) {
        s->rbuf = buf_get(s->loop, s->rsize, &s->rcls, &s->rcap);
        s->rpos = s->rlen = 0;
        if (!s->rbuf) {
            s->rcap = 0;
            s->rcls = BUF_NOCLASS;
            return -ENOMEM;
        }
        return 0;
    }
    if (s->rpos) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
    }
    if (s->rlen < s->rcap)
        return 0;
    /* Full below the limit (a long line): grow. */
    b = buf_get(s->loop, s->rcap * 2 < s->limit ? s->rcap * 2 : s->limit, &cls, &cap);
    if (!b)
        return -ENOMEM;
    memcpy(b, s->rbuf, s->rlen);
    buf_put(s->loop, s->rbuf, s->rcls);
    s->rbuf = b;
    s->rcap = cap;
    s->rcls = cls;
    return 0;
}

/* Reads once more into the buffer, waiting as long as needed: the count
 * (> 0), 0 at EOF, or -errno (-EMSGSIZE: limit bytes buffered already). */
static ssize_t fill(tide_stream *s, tide_task *cur)
{
    for (;;) {
        unsigned wait = 0;
        size_t room;
        ssize_t n;
        int rc;

        if (s->eof)
            return 0;
        rc = rbuf_prepare(s);
        if (rc < 0)
            return rc;
        room = (s->rcap < s->limit ? s->rcap : s->limit) - s->rlen;
        n = s->tp->ops->read(s->tp, s->rbuf + s->rlen, room, &wait);
        if (n > 0) {
            s->rlen += (size_t)n;
            return n;
        }
        if (!s->rlen)
            rbuf_release(s); /* nothing to keep while we wait */
        if (n == 0) {
            s->eof = 1;
            return 0;
        }
        if (n != -EAGAIN)
            return n;
        rc = tp_wait(s, cur, wait);
        if (rc < 0)
            return rc;
    }
}

/* Reads into buf directly (no copy), waiting as long as needed.  A
 * transport that can wait inside its read (io_uring: the kernel fills buf
 * while the task waits) does so; fill does not, as it would hold a read
 * buffer per idle connection while it waits. */
static ssize_t read_direct(tide_stream *s, tide_task *cur, void *buf, size_t n)
{
    if (s->tp->ops->read_wait) {
        ssize_t r = s->tp->ops->read_wait(s->tp, cur, buf, n);
        if (r != -EAGAIN) {
            if (s->closed)
                return -EBADF;
            if (r == 0)
                s->eof = 1;
            return r;
        }
    }
    for (;;) {
        unsigned wait = 0;
        ssize_t r = s->tp->ops->read(s->tp, buf, n, &wait);
        int rc;

        if (r == 0)
            s->eof = 1;
        if (r != -EAGAIN)
            return r;
        rc = tp_wait(s, cur, wait);
        if (rc < 0)
            return rc;
    }
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

/* Puts n bytes back in front of the buffered ones (an interrupted call
 * gives back what it read, so a retry loses nothing).  0 or -ENOMEM. */
static int unread(tide_stream *s, const void *p, size_t n)
{
    uint8_t cls;
    size_t cap;
    char *b;

    if (!n)
        return 0;
    if (s->rbuf && s->rpos >= n) {
        s->rpos -= n;
    } else if (s->rbuf && s->rcap - s->rlen >= n) {
        memmove(s->rbuf + n, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
    } else {
        b = buf_get(s->loop, n + s->rlen, &cls, &cap);
        if (!b)
            return -ENOMEM;
        if (s->rlen)
            memcpy(b + n, s->rbuf + s->rpos, s->rlen);
        buf_put(s->loop, s->rbuf, s->rcls);
        s->rbuf = b;
        s->rcap = cap;
        s->rcls = cls;
        s->rpos = 0;
    }
    memcpy(s->rbuf + s->rpos, p, n);
    s->rlen += n;
    return 0;
}

int tide__stream_unread(tide_stream *s, const void *p, size_t n)
{
    int rc = check(s);

    if (rc < 0)
        return rc;
    if (!p && n)
        return -EINVAL;
    return unread(s, p, n);
}

ssize_t tide_stream_read(tide_stream *s, void *buf, size_t n)
{
    tide_task *cur;
    ssize_t rc = enter(s, &cur, 1);

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
    } else if (n >= s->rsize) { /* at least a fill: straight into buf */
        rc = read_direct(s, cur, buf, n);
    } else {
        rc = fill(s, cur);
        if (rc > 0)
            rc = (ssize_t)take(s, buf, n);
    }
    return leave(s, rc, 1);
}

ssize_t tide_stream_readexactly(tide_stream *s, void *buf, size_t n)
{
    tide_task *cur;
    ssize_t rc = enter(s, &cur, 1);
    size_t got;

    if (rc < 0)
        return rc;
    if (!buf && n)
        return leave(s, -EINVAL, 1);
    got = take(s, buf, n);
    while (got < n && !s->eof) {
        /* The buffer is empty here.  A big rest goes straight into buf;
         * a small one through the buffer, which reads ahead. */
        if (n - got >= s->rsize) {
            rc = read_direct(s, cur, (char *)buf + got, n - got);
            if (rc > 0)
                got += (size_t)rc;
        } else {
            rc = fill(s, cur);
            if (rc > 0)
                got += take(s, (char *)buf + got, n - got);
        }
        if (rc < 0) {
            /* Keep what arrived: a retry loses nothing.  (On -ENOMEM here
             * the bytes are lost; the error says so.) */
            if (!s->closed && unread(s, buf, got) < 0)
                rc = -ENOMEM;
            return leave(s, rc, 1);
        }
    }
    return leave(s, (ssize_t)got, 1);
}

/* The earliest end of a delimiter in the buffered bytes, searching those
 * not searched before (matches ending after byte `done`).  *which is the
 * delimiter, the longest of those ending there.  0 if none. */
static size_t find_delim(const tide_stream *s, const tide_stream_delim *d, size_t nd, size_t maxlen,
                         size_t done, int *which)
{
    const char *data = s->rbuf + s->rpos;
    size_t start = done >= maxlen ? done - maxlen + 1 : 0, best = 0, i;

    for (i = 0; i < nd; i++) {
        const char *p;
        size_t end;
        if (d[i].len > s->rlen - start)
            continue;
        p = memmem(data + start, s->rlen - start, d[i].data, d[i].len);
        if (!p)
            continue;
        end = (size_t)(p - data) + d[i].len;
        if (!best || end < best || (end == best && d[i].len > d[*which].len)) {
            best = end;
            *which = (int)i;
        }
    }
    return best;
}

ssize_t tide_stream_readuntil_any(tide_stream *s, const tide_stream_delim *delims, size_t ndelims,
                                  void *buf, size_t cap, int *which)
{
    tide_task *cur;
    ssize_t rc = enter(s, &cur, 1);
    size_t done = 0, maxlen = 0, i;
    int w = -1;

    if (rc < 0)
        return rc;
    if (which)
        *which = -1;
    if (!delims || !ndelims || ndelims > INT_MAX || (!buf && cap))
        return leave(s, -EINVAL, 1);
    for (i = 0; i < ndelims; i++) {
        if (!delims[i].data || !delims[i].len)
            return leave(s, -EINVAL, 1);
        if (delims[i].len > maxlen)
            maxlen = delims[i].len;
    }
    for (;;) {
        size_t end = s->rlen ? find_delim(s, delims, ndelims, maxlen, done, &w) : 0;
        if (end) {
            if (end > cap)
                return leave(s, -ENOBUFS, 1);
            if (which)
                *which = w;
            return leave(s, (ssize_t)take(s, buf, end), 1);
        }
        done = s->rlen; /* no delimiter ends in these bytes */
        if (s->eof) {   /* the last, unterminated piece; 0 when nothing is left */
            if (s->rlen > cap)
                return leave(s, -ENOBUFS, 1);
            return leave(s, (ssize_t)take(s, buf, s->rlen), 1);
        }
        rc = fill(s, cur);
        if (rc < 0)
            return leave(s, rc, 1);
    }
}

ssize_t tide_stream_readuntil(tide_stream *s, const void *delim, size_t dlen, void *buf, size_t cap)
{
    tide_stream_delim d = {delim, dlen};
    return tide_stream_readuntil_any(s, &d, 1, buf, cap, NULL);
}

ssize_t tide_stream_readline(tide_stream *s, char *buf, size_t cap)
{
    return tide_stream_readuntil(s, "\n", 1, buf, cap);
}

ssize_t tide_stream_read_all(tide_stream *s, char **out, size_t max)
{
    tide_task *cur;
    ssize_t rc;
    size_t len = 0, cap = 0;
    char *b = NULL;

    if (out)
        *out = NULL;
    rc = enter(s, &cur, 1);
    if (rc < 0)
        return rc;
    if (!out)
        return leave(s, -EINVAL, 1);
    while ((!max || len < max) && (s->rlen || !s->eof)) {
        /* Room for what is buffered (or for a read of rsize) and the NUL. */
        size_t want = s->rlen ? s->rlen : s->rsize, room;
        if (max && want > max - len)
            want = max - len;
        if (cap - len < want + 1) {
            size_t ncap = cap ? cap : 4096;
            char *nb;
            while (ncap - len < want + 1) {
                if (ncap > SIZE_MAX / 2) {
                    rc = -ENOMEM;
                    goto fail;
                }
                ncap *= 2;
            }
            nb = realloc(b, ncap); /* the caller's memory: plain malloc */
            if (!nb) {
                rc = -ENOMEM;
                goto fail;
            }
            b = nb;
            cap = ncap;
        }
        room = cap - len - 1;
        if (max && room > max - len)
            room = max - len;
        if (s->rlen) {
            len += take(s, b + len, room);
        } else {
            rc = read_direct(s, cur, b + len, room);
            if (rc < 0)
                goto fail;
            len += (size_t)rc;
        }
    }
    if (!b && !(b = malloc(1)))
        return leave(s, -ENOMEM, 1); /* nothing was read */
    b[len] = '\0';
    *out = b;
    return leave(s, (ssize_t)len, 1);

fail:
    /* Give back what was read, so a retry loses nothing. */
    if (!s->closed && unread(s, b, len) < 0)
        rc = -ENOMEM;
    free(b);
    return leave(s, rc, 1);
}

/* --------------------------------------------------------------- writing */

static void flush_cb(void *arg, int rc);

static void wake_drainer(tide_stream *s)
{
    if (s->drainer && (s->wlen <= s->drain_to || s->werr)) {
        tide_task *t = s->drainer;
        s->drainer = NULL;
        tide__wake(t, 1); /* 1: the mark was reached (0 is the wait's deadline) */
    }
    if (s->out_cb && (s->wlen <= s->low || s->werr)) {
        tide__transport_cb cb = s->out_cb;
        s->out_cb = NULL;
        cb(s->out_arg, s->werr);
    }
}

/* While the transport's callback is armed for the queue, it counts as I/O
 * the loop waits for (tide_loop_run does not return, the poller is not
 * skipped).  0, -EALREADY (may go on now: try again), -EBADF. */
static int arm_flush(tide_stream *s, unsigned wait)
{
    int rc = s->tp->ops->arm(s->tp, wait, flush_cb, s);

    if (rc == 0 && !s->flushing) {
        s->flushing = 1;
        tide__loop_io_ref(s->loop);
    }
    return rc;
}

static void disarm_flush(tide_stream *s)
{
    if (s->flushing) {
        s->flushing = 0;
        if (s->tp)
            (void)s->tp->ops->arm(s->tp, 0, NULL, NULL);
        tide__loop_io_unref(s->loop);
    }
}

/* The first write error: it sticks, and the queue is dropped. */
static void write_failed(tide_stream *s, int err)
{
    if (!s->werr)
        s->werr = err;
    if (s->sending && s->tp)
        s->tp->ops->send_cancel(s->tp, &s->sop); /* its done frees the bytes */
    wbuf_release(s);
}

/*
 * Asynchronous sends.  On a transport that has them (the fd transport of a
 * stream socket on an io_uring that takes operations: transport's async),
 * writes are only queued, and the end of the writer's step submits the
 * whole queue as one send (IORING_OP_SEND, or SENDMSG over the ring's two
 * pieces) that goes to the kernel with the loop's next io_uring_enter: no
 * syscall of its own.  The op (sop, smsg, siov) is the stream's, not a
 * task's, so its lifetime is kept here:
 *  - the bytes in flight stay in the queue (wlen counts them) until the
 *    done says how many went: a short send is sent on from where it
 *    stopped, together with what was queued meanwhile; nothing is written
 *    around a send in flight (flush does nothing while sending), so the
 *    peer never sees bytes out of order or twice;
 *  - the queue's buffer never moves or goes under the kernel: a ring that
 *    must grow while sending, or a queue dropped (write error, close,
 *    abort), leaves its buffer in wpin, freed at the done;
 *  - a send in flight counts as a user of the stream (the struct is not
 *    given back to the pool before the done) and holds an io ref (the loop
 *    runs on until it completes);
 *  - a close in a task waits for the queue as before (wait_flushed: the
 *    dones wake it); a close cut short (cancel, write timeout), outside a
 *    task or an abort drops the queue and closes the transport, which
 *    cancels the send by fd: its done frees the bytes and the struct;
 *  - tide_loop_free drains the ring's operations (a done is then not
 *    called) before the streams' module frees the structs and buffers.
 * A done with -EAGAIN (or 0) goes on through the readiness path (writev and
 * the armed callback); an error sticks as every write error does
 * (-ECANCELED, the fd closed under the stream, is -EBADF).
 */
static void send_done(tide__uop *u);

/* Sends are asynchronous only while the stream's loop runs on this thread:
 * its next io_uring_enter submits them.  Outside a run (a program writing
 * and closing after tide_loop_run returned) nothing would submit the send
 * and the close would drop its bytes, so those writes go out by a syscall
 * now, as on epoll. */
static int in_loop(const tide_stream *s)
{
    return s->loop->running && tide__tls_loop == s->loop;
}

/* Submits the queue as one asynchronous send.  0, or < 0: not this way. */
static int send_queue(tide_stream *s)
{
    size_t first = s->wcap - s->wpos < s->wlen ? s->wcap - s->wpos : s->wlen;
    int rc;

    s->siov[0].iov_base = s->wbuf + s->wpos;
    s->siov[0].iov_len = first;
    s->siov[1].iov_base = s->wbuf;
    s->siov[1].iov_len = s->wlen - first;
    memset(&s->smsg, 0, sizeof s->smsg);
    s->smsg.msg_iov = s->siov;
    s->smsg.msg_iovlen = s->siov[1].iov_len ? 2 : 1;
    s->sop.done = send_done;
    rc = s->tp->ops->send_start(s->tp, &s->sop, &s->smsg);
    if (rc < 0)
        return rc;
    s->sending = 1;
    s->snd_len = s->wlen;
    s->users++;
    tide__loop_io_ref(s->loop);
    tide__stream_async_sends++;
    return 0;
}

/* Writes from the queue until it is empty or the transport is full (then
 * arms the callback); shuts the write side once empty if write_eof asked.
 * With async, a transport that has asynchronous sends gets the queue as
 * one (see above).  Never while a send is in flight: its done goes on. */
static void flush(tide_stream *s, int async)
{
    int armed = 0, again = 0;

    if (s->sending)
        return;
    if (async && s->wlen && !s->werr && !s->flushing && s->tp->ops->send_start &&
        in_loop(s) && send_queue(s) == 0)
        return;
    while (!s->werr) {
        unsigned wait = 0;
        int rc;

        if (s->wlen) {
            struct iovec v[2];
            size_t first = s->wcap - s->wpos < s->wlen ? s->wcap - s->wpos : s->wlen;
            ssize_t n;
            v[0].iov_base = s->wbuf + s->wpos;
            v[0].iov_len = first;
            v[1].iov_base = s->wbuf;
            v[1].iov_len = s->wlen - first;
            n = s->tp->ops->writev(s->tp, v, v[1].iov_len ? 2 : 1, &wait);
            if (n > 0) {
                s->wpos = (s->wpos + (size_t)n) % s->wcap;
                s->wlen -= (size_t)n;
                if (s->wtimeout)
                    s->wprogress = tide__loop_ns(s->loop);
                if (!s->wlen)
                    wbuf_release(s);
                continue;
            }
            rc = n == 0 ? -EAGAIN : (int)n; /* took nothing: as if full */
        } else if (s->wshut && !s->wshut_done) {
            rc = s->tp->ops->shutdown(s->tp, &wait);
            if (rc == 0) {
                s->wshut_done = 1;
                break;
            }
        } else {
            break;
        }
        if (rc != -EAGAIN) {
            write_failed(s, rc);
            break;
        }
        if (!wait)
            wait = TIDE__WANT_OUT;
        rc = arm_flush(s, wait);
        if (rc == 0) {
            armed = 1;
            break;
        }
        if (rc != -EALREADY || ++again > EALREADY_MAX) {
            write_failed(s, rc == -EALREADY ? -EIO : rc);
            break;
        }
    }
    if (!armed)
        disarm_flush(s);
    wake_drainer(s);
}

static void send_done(tide__uop *u)
{
    tide_stream *s = tide__container_of(u, tide_stream, sop);
    int res = u->res;

    s->sending = 0;
    tide__loop_io_unref(s->loop);
    buf_put(s->loop, s->wpin, s->wpcls);
    s->wpin = NULL;
    if (s->wdropped) {
        s->wdropped = 0; /* the queue is gone: its error or close says so */
    } else if (res > 0) {
        size_t n = (size_t)res < s->snd_len ? (size_t)res : s->snd_len;
        s->wpos = (s->wpos + n) % s->wcap;
        s->wlen -= n;
        if (s->wtimeout)
            s->wprogress = tide__loop_ns(s->loop);
        if (!s->wlen)
            wbuf_release(s);
    } else if (res < 0 && res != -EAGAIN) {
        write_failed(s, res == -ECANCELED ? -EBADF : res);
    }
    if (s->tp && !s->werr)
        /* The rest (a short send, what was queued meanwhile, the shutdown
         * of write_eof) goes on; after -EAGAIN or 0, by readiness. */
        flush(s, res > 0);
    wake_drainer(s); /* the queue fell to a waiter's mark, or failed */
    if (--s->users == 0 && s->closed)
        destroy(s);
}

/* The end of the writer's step: what it queued goes out in one write. */
static void uncork(tide__deferred *d)
{
    tide_stream *s = tide__container_of(d, tide_stream, corked);

    if (!s->flushing && s->tp)
        flush(s, 1);
}

static void flush_cb(void *arg, int rc)
{
    tide_stream *s = arg;

    if (rc < 0) { /* the transport died under us (its fd was closed) */
        disarm_flush(s);
        write_failed(s, rc);
        wake_drainer(s);
        return;
    }
    flush(s, 0);
}

/* Appends n bytes to the ring (wbuf_reserve made room). */
static void ring_put(tide_stream *s, const char *p, size_t n)
{
    size_t end = (s->wpos + s->wlen) % s->wcap, first = s->wcap - end < n ? s->wcap - end : n;

    memcpy(s->wbuf + end, p, first);
    memcpy(s->wbuf, p + first, n - first);
    s->wlen += n;
}

/* Room for extra more queued bytes; small: start at the size asked (an
 * asynchronous transport queues every write, most of them small).  0 or
 * -ENOMEM. */
static int wbuf_reserve(tide_stream *s, size_t extra, int small)
{
    size_t need = s->wlen + extra, cap, want;
    uint8_t cls;
    char *b;

    if (need < extra)
        return -ENOMEM;
    if (s->wbuf && need <= s->wcap)
        return 0; /* the ring has room */
    /* Start at the cork size and double: a queue that builds up 8 KiB at a
     * time is copied into a bigger buffer once or twice, not at every
     * power of two on the way. */
    want = need < CORK_MAX && !small ? CORK_MAX : need;
    if (s->wbuf && want < 2 * s->wcap)
        want = 2 * s->wcap;
    b = buf_get(s->loop, want, &cls, &cap);
    if (!b)
        return -ENOMEM;
    if (s->wlen) { /* unwrap into the bigger buffer */
        size_t first = s->wcap - s->wpos < s->wlen ? s->wcap - s->wpos : s->wlen;
        memcpy(b, s->wbuf + s->wpos, first);
        memcpy(b + first, s->wbuf, s->wlen - first);
    }
    if (s->sending && !s->wpin) { /* the kernel reads the old one: kept until the done */
        s->wpin = s->wbuf;
        s->wpcls = s->wcls;
    } else {
        buf_put(s->loop, s->wbuf, s->wcls);
    }
    s->wbuf = b;
    s->wcap = cap;
    s->wcls = cls;
    s->wpos = 0;
    return 0;
}

/* The total of iov, or -EINVAL (a NULL base with a length, an overflow). */
static ssize_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    int i;

    if ((!iov && iovcnt) || iovcnt < 0)
        return -EINVAL;
    for (i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return -EINVAL;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

ssize_t tide_stream_writev(tide_stream *s, const struct iovec *iov, int iovcnt)
{
    ssize_t total;
    size_t done = 0, skip;
    int i, rc, async;

    if (!s)
        return -EINVAL;
    total = iov_total(iov, iovcnt);
    if (total < 0)
        return total;
    rc = check(s);
    if (rc < 0)
        return rc;
    if (s->werr)
        return s->werr;
    if (s->wshut)
        return -EPIPE;
    if (total == 0)
        return 0;
    /* The first write of a step goes out at once (no added latency, and
     * its errors show now); the next ones of the same step are corked until
     * the step ends (the task suspends or yields) and go out together: an
     * echo loop that writes each 8 KiB piece of a 64 KiB read makes two
     * syscalls, not eight.  Past CORK_MAX queued, bytes go at once. */
    /* An asynchronous transport takes the queue at the end of the step. */
    async = s->tp->ops->async && s->tp->ops->async(s->tp) && in_loop(s);
    if (!s->wlen && s->corked.pprev && (size_t)total <= CORK_MAX)
        goto queue;
    if (!s->wlen && !async) { /* nothing queued: try now (no syscall if known full) */
        unsigned wait = 0;
        ssize_t n = s->tp->ops->writev(s->tp, iov, iovcnt, &wait);
        if (n == total) {
            if (s->loop->running && tide__tls_loop == s->loop)
                tide__defer(s->loop, &s->corked); /* this step has written */
            return total;
        }
        if (n < 0 && n != -EAGAIN) {
            write_failed(s, (int)n);
            return n;
        }
        done = n > 0 ? (size_t)n : 0;
    }
queue:
    /* Queue the rest: all of it, or fail for good (no hole in the data). */
    rc = wbuf_reserve(s, (size_t)total - done, async);
    if (rc < 0) {
        write_failed(s, rc);
        disarm_flush(s);
        wake_drainer(s);
        return rc;
    }
    skip = done;
    for (i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        ring_put(s, (const char *)iov[i].iov_base + skip, len - skip);
        skip = 0;
    }
    if (s->flushing || s->sending)
        return total; /* the armed callback, or the send's done, takes it */
    if (s->corked.pprev && s->wlen <= CORK_MAX)
        return total; /* corked: out at the end of the step */
    if (async && s->wlen <= CORK_MAX) {
        tide__defer(s->loop, &s->corked); /* one send for the whole step */
        return total;
    }
    tide__defer_cancel(&s->corked);
    flush(s, 1); /* arms the callback (or writes on, for a file), or sends */
    return total;
}

ssize_t tide_stream_write(tide_stream *s, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};

    if (n > (size_t)SSIZE_MAX)
        return -EINVAL;
    return tide_stream_writev(s, &v, 1);
}

int tide_stream_write_eof(tide_stream *s)
{
    int rc = check(s);

    if (rc < 0)
        return rc;
    if (s->werr)
        return s->werr;
    if (!s->wshut) {
        s->wshut = 1;
        if (!s->flushing)
            flush(s, 1); /* nothing queued: shut it now */
    }
    return s->werr;
}

static void unlink_drainer(void *arg)
{
    ((tide_stream *)arg)->drainer = NULL;
}

/* Waits until at most `to` bytes are queued.  0, the write error,
 * -ETIMEDOUT (the write timeout: sticky), -EBUSY, -ECANCELED, -ETIMEDOUT
 * (a scope), -EBADF (closed meanwhile). */
static int wait_flushed(tide_stream *s, tide_task *cur, size_t to)
{
    int64_t start = s->wtimeout ? tide__loop_ns(s->loop) : 0;

    if (s->drainer)
        return -EBUSY;
    for (;;) {
        int64_t until = TIDE__NEVER;
        int rc;

        if (s->wtimeout) {
            /* Give up once no byte went out for wtimeout. */
            int64_t base = s->wprogress > start ? s->wprogress : start;
            until = base + s->wtimeout;
            if (until <= tide__loop_ns(s->loop)) {
                write_failed(s, -ETIMEDOUT);
                disarm_flush(s);
                wake_drainer(s);
                return -ETIMEDOUT;
            }
        }
        s->drainer = cur;
        s->drain_to = to;
        TIDE__WAIT_ON(cur, TIDE_WAIT_STREAM_DRAIN, s);
        rc = tide__suspend(cur, until, unlink_drainer, s, 0);
        if (rc < 0)
            return rc;
        if (s->werr)
            return s->werr;
        if (rc > 0 || s->wlen <= to)
            return 0; /* the queue fell to the mark (maybe refilled since) */
        /* our own deadline passed: the loop above decides */
    }
}

int tide_stream_drain(tide_stream *s)
{
    tide_task *cur;
    int rc = enter(s, &cur, 0);

    if (rc < 0)
        return rc;
    if (s->werr)
        rc = s->werr;
    else if (s->wlen > s->high)
        rc = wait_flushed(s, cur, s->low);
    return (int)leave(s, rc, 0);
}

int tide_stream_flush(tide_stream *s)
{
    tide_task *cur;
    int rc = enter(s, &cur, 0);

    if (rc < 0)
        return rc;
    if (s->werr)
        rc = s->werr;
    else if (s->wlen)
        rc = wait_flushed(s, cur, 0);
    return (int)leave(s, rc, 0);
}

int tide_stream_close(tide_stream *s)
{
    tide_task *cur = tide__current();
    tide__transport *tp;
    int rc = check(s);

    if (rc < 0)
        return rc;
    s->closed = 1;    /* from now on every other call fails with -EBADF */
    if (s->drainer) { /* another task waits in drain: it is over for it */
        tide_task *t = s->drainer;
        s->drainer = NULL;
        tide__wake(t, -EBADF);
    }
    if (s->out_cb) { /* a transport layered on s */
        tide__transport_cb cb = s->out_cb;
        s->out_cb = NULL;
        cb(s->out_arg, -EBADF);
    }
    if (s->wlen && !s->werr) {
        if (cur && cur->loop == s->loop) {
            s->users++;
            rc = wait_flushed(s, cur, 0); /* a cancel or a timeout cuts it short */
            s->users--;
        } else {
            flush(s, 0); /* outside a task: what the transport takes now */
            if (s->wlen)
                rc = -EAGAIN; /* the rest is dropped */
        }
    } else if (s->werr) {
        rc = s->werr;
    }
    disarm_flush(s);
    wbuf_release(s);
    /* Tasks blocked in the transport's wait wake with -EBADF; its memory
     * goes when the last of them has left (destroy). */
    tp = s->tp;
    s->tp = NULL;
    s->tp_closed = tp;
    tp->ops->close(tp);
    if (s->users == 0)
        destroy(s);
    return rc;
}

size_t tide__stream_held(const tide_stream *s)
{
    return check(s) == 0 ? s->rcap + s->wcap : 0;
}

void tide__stream_abort(tide_stream *s)
{
    if (check(s) < 0)
        return;
    disarm_flush(s);
    wbuf_release(s);
    (void)tide_stream_close(s);
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

/* ------------------------------------ streams as bytes for a transport */

ssize_t tide__stream_read_nowait(tide_stream *s, void *buf, size_t n, unsigned *wait)
{
    unsigned w = 0;
    ssize_t r;
    int rc = check(s);

    if (rc < 0)
        return rc;
    if (s->rlen)
        return (ssize_t)take(s, buf, n);
    if (s->eof || !n)
        return 0;
    rc = rbuf_prepare(s);
    if (rc < 0)
        return rc;
    r = s->tp->ops->read(s->tp, s->rbuf, s->rcap < s->limit ? s->rcap : s->limit, &w);
    if (r > 0) {
        s->rlen = (size_t)r;
        return (ssize_t)take(s, buf, n);
    }
    rbuf_release(s);
    if (r == 0)
        s->eof = 1;
    if (r == -EAGAIN)
        *wait = TIDE__WANT_IN; /* whatever the transport under us needs:
                                  tide__stream_wait sees to it */
    return r;
}

ssize_t tide__stream_writev_nowait(tide_stream *s, const struct iovec *iov, int iovcnt,
                                   unsigned *wait)
{
    int rc = check(s);

    if (rc < 0)
        return rc;
    if (!s->werr && s->wlen > s->high) {
        *wait = TIDE__WANT_OUT;
        return -EAGAIN;
    }
    return tide_stream_writev(s, iov, iovcnt);
}

int tide__stream_wait(tide_stream *s, tide_task *cur, unsigned wait)
{
    int rc;

    (void)cur;
    if (wait & TIDE__WANT_IN) {
        rc = enter(s, &cur, 1);
        if (rc < 0)
            return rc;
        if (!s->rlen && !s->eof) {
            ssize_t n = fill(s, cur);
            rc = n < 0 ? (int)n : 0;
        }
        return (int)leave(s, rc, 1);
    }
    rc = enter(s, &cur, 0);
    if (rc < 0)
        return rc;
    if (s->werr)
        rc = s->werr;
    else if (s->wlen > s->low)
        rc = wait_flushed(s, cur, s->low);
    return (int)leave(s, rc, 0);
}

int tide__stream_arm(tide_stream *s, unsigned wait, tide__transport_cb cb, void *arg)
{
    int rc = check(s);

    if (rc < 0)
        return rc;
    s->out_cb = NULL;
    if (!wait)
        return 0;
    if (wait & TIDE__WANT_IN)
        return -EOPNOTSUPP;
    if (s->werr || s->wlen <= s->low)
        return -EALREADY;
    s->out_cb = cb;
    s->out_arg = arg;
    return 0;
}

/* ---------------------------------------------- layers (TLS: start_tls) */

void tide__stream_hold(tide_stream *s)
{
    s->users++;
}

void tide__stream_release(tide_stream *s)
{
    if (--s->users == 0 && s->closed)
        destroy(s);
}

tide__transport *tide__stream_transport(const tide_stream *s)
{
    return check(s) == 0 ? s->tp : NULL;
}

int tide__stream_layer(tide_stream *s, tide__stream_layer_fn make, void *arg)
{
    tide__transport *t = NULL;
    tide_stream *in;
    int rc = check(s);

    if (rc < 0)
        return rc;
    if (s->werr)
        return s->werr;
    if (s->users || s->reader || s->drainer || s->wlen || s->flushing || s->out_cb || s->wshut)
        return -EBUSY;
    if (s->tp == &s->fdt.base && !s->rlen && !s->eof) {
        /* The layer works on the fd itself (its own copy of the fd
         * transport; ours is not used again). */
        rc = make(arg, &s->fdt, NULL, &t);
        if (rc < 0)
            return rc;
        s->tp = t;
        return 0;
    }
    /* A new inner stream takes the transport and what was read ahead. */
    in = stream_alloc(s->loop);
    if (!in)
        return -ENOMEM;
    if (s->tp == &s->fdt.base) {
        in->fdt = s->fdt; /* nothing is armed: a plain copy */
        in->tp = &in->fdt.base;
    } else {
        in->tp = s->tp;
    }
    in->limit = s->limit;
    in->rsize = s->rsize;
    in->high = s->high;
    in->low = s->low;
    in->wtimeout = s->wtimeout;
    in->eof = s->eof;
    in->rbuf = s->rbuf;
    in->rcap = s->rcap;
    in->rpos = s->rpos;
    in->rlen = s->rlen;
    in->rcls = s->rcls;
    s->rbuf = NULL;
    s->rcap = s->rpos = s->rlen = 0;
    s->rcls = BUF_NOCLASS;
    rc = make(arg, NULL, in, &t);
    if (rc < 0) {
        /* Undo: the transport and the bytes go back to s. */
        s->rbuf = in->rbuf;
        s->rcap = in->rcap;
        s->rpos = in->rpos;
        s->rlen = in->rlen;
        s->rcls = in->rcls;
        in->rbuf = NULL;
        in->rcap = in->rpos = in->rlen = 0;
        in->rcls = BUF_NOCLASS;
        in->tp = NULL;
        in->closed = 1;
        destroy(in);
        return rc;
    }
    s->tp = t;
    s->eof = 0;
    return 0;
}
