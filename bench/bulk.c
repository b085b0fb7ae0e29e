/*
 * Bulk echo and fairness: tide's echo servers against a hand-written epoll
 * echo server measured in the same run, driven by a load client of our own.
 *
 * How to run (after cmake --build build):
 *
 *   build/bench/bulk                  both scenarios, 2 runs of 3 s each
 *   build/bench/bulk bulk             scenario 1 only      (fair: scenario 2 only)
 *   build/bench/bulk -t 2 -n 3        2 s windows, 3 runs per server
 *   build/bench/bulk -s example       ref and examples/echo_server only (-s tide64...)
 *   build/bench/bulk -c               arrivals timed by the client (see below)
 *   cmake --build build --target bench  (or make bench): every benchmark, this one too
 *
 *   build/bench/bulk server-ref       one server alone (prints its port; SIGTERM
 *   build/bench/bulk server-tide64    stops it), and the load alone against it,
 *   build/bench/bulk client PORT bulk|fair SECONDS    e.g. to run perf on a server.
 *
 * The servers, each a separate process pinned to CPU 0 in turn (the client
 * is pinned to CPU 1):
 *   ref      a hand-written epoll echo server (server-ref below): non-blocking
 *            sockets, edge-triggered EPOLLIN|EPOLLOUT registered once, a 64 KiB
 *            buffer per connection, read until EAGAIN writing each chunk back,
 *            a short write parks the rest until the EPOLLOUT edge;
 *   example  examples/echo_server as built, launched as is: the README's
 *            handler, tide_stream_read into an 8 KiB buffer, tide_stream_write,
 *            tide_stream_drain (its path comes from CMake; TIDE_ECHO_SERVER=PATH
 *            overrides it);
 *   tide64   the same handler with a 64 KiB buffer (server-tide64 below).
 *
 * The scenarios:
 *  1. bulk: 10 connections, 16 KiB messages, 4 in flight per connection.
 *     MB/s = bytes echoed back and verified per second (1 MB = 10^6 B), and
 *     the p50/p99 latency of a message round trip: from the send of its first
 *     byte to the arrival of its last byte back.
 *     Aim (issue): example >= 0.90 x ref's MB/s, p99 <= 2 x ref's p99.
 *  2. fair: 9 connections stream at full speed (the client keeps each one's
 *     socket full of 16 KiB messages, no in-flight limit but the socket
 *     buffers, and reads and verifies the echo), while 1 connection does
 *     64-byte ping-pong (one message in flight).  The ping-pong latency
 *     p50/p99/p99.9 and the bulk connections' MB/s.
 *     Aim (issue): p99 under 2 ms for the ping-pong on tide.
 *
 * Per run: start the server, connect, warm up (0.5 s, and until every
 * connection has had a message back), measure over a fixed window (3 s),
 * stop the load and check that every timed message still comes back (a lost
 * wake-up would show there), stop the server.  The servers run in turn,
 * their order alternated between runs.  Every run is printed; a run is
 * "noisy" when the server or the client spent 10% of the window runnable but
 * waiting for its CPU (the machine is shared: another process had it), and
 * is then measured once more.  The summary takes each server's best quiet
 * run figure by figure (highest MB/s, lowest of each percentile and of the
 * CPU cost: noise only makes things worse), its best noisy ones if it had no
 * quiet run (marked ~).  Ratios are tide / ref.  Every byte is verified:
 * message m of connection c is its own window of a pseudo-random pattern, so
 * a lost, repeated, reordered, misrouted or corrupted byte stops the
 * benchmark.
 *
 * Latency is measured so that the client's own loop does not count: the send
 * time is CLOCK_REALTIME just before the send call, the arrival time is the
 * kernel's receive timestamp (SO_TIMESTAMPNS) of the last data returned by
 * the recv that completed the message (on loopback: when the server's send
 * put it on the wire; -c times arrivals when the client sees them instead,
 * which adds the client's own delays).  A message still unanswered when the
 * window closes counts with its age so far (a lower bound), so a starved
 * connection shows as such rather than as missing samples.
 *
 * The client is one thread: epoll, edge-triggered, at most one 64 KiB recv
 * and one 64 KiB sendmsg per connection per turn, so that no connection
 * delays the others.  Each run line shows, from /proc/.../schedstat over the
 * window, the server's and the client's share of a CPU ("cpu") and of the
 * window spent waiting for it ("wait"), and the server's CPU time per MB
 * echoed ("us/MB": its cost, which noise disturbs much less than MB/s).  An
 * echo client does at least the server's work per byte (plus the check), so
 * against the reference it runs near 100% too: ref's MB/s is then what one
 * client core can drive, a lower bound of the server's capacity; a server
 * whose MB/s falls short of it while at ~100% CPU with the client below is
 * the bottleneck, and us/MB says by how much.
 */
#include "bench.h"
#include "tide.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/poll.h> /* not <poll.h>: src/poll.h shadows it */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKLOG 1024
#define SRV_BUF 65536

static void die_errno(const char *what)
{
    fprintf(stderr, "bulk: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ======================================================= reference server */

typedef struct ref_conn {
    int fd;
    size_t off, len; /* buf[off, off + len) is still to be written back */
    uint8_t buf[SRV_BUF];
} ref_conn;

static void ref_close(ref_conn *c)
{
    close(c->fd);
    free(c);
}

/* Everything the connection can do now: flush what is parked, then read
 * until EAGAIN, writing each chunk back.  Edge-triggered: it stops only at
 * EAGAIN (or a short write, whose EPOLLOUT edge will bring it back). */
static void ref_io(ref_conn *c)
{
    for (;;) {
        ssize_t n;
        while (c->len) {
            n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    ref_close(c);
                return;
            }
            c->off += (size_t)n;
            c->len -= (size_t)n;
            if (c->len)
                return; /* short: the socket buffer is full */
        }
        n = read(c->fd, c->buf, sizeof c->buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ref_close(c);
            return;
        }
        if (n == 0) {
            ref_close(c);
            return;
        }
        c->off = 0;
        c->len = (size_t)n;
    }
}

static int ref_server(void)
{
    static char tag_listen, tag_signal; /* epoll data for the two non-connections */
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    struct epoll_event ev, evs[256];
    sigset_t set;
    int lfd, sfd, ep, one = 1;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || lfd < 0 || ep < 0)
        die_errno("server-ref: setup");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, BACKLOG) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        die_errno("server-ref: listen");
    ev.events = EPOLLIN;
    ev.data.ptr = &tag_listen;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &tag_signal;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);

    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1), i;
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die_errno("server-ref: epoll_wait");
        }
        for (i = 0; i < k; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_signal)
                return 0; /* SIGTERM */
            if (p == &tag_listen) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    ref_conn *c = malloc(sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->off = c->len = 0;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
                    ev.data.ptr = c;
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        ref_close(c);
                        continue;
                    }
                    ref_io(c); /* data may have come with the handshake: no edge for it */
                }
                continue;
            }
            ref_io(p);
        }
    }
}

/* ========================================================== tide server */

/* The README's handler (examples/echo_server.c), with a 64 KiB buffer. */
static int tide64_handler(tide_stream *s, void *arg)
{
    char buf[SRV_BUF];
    (void)arg;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            break;
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            break;
    }
    return 0;
}

static int tide64_main(void *arg)
{
    tide_server_opts o;
    tide_server *srv;
    sigset_t set;
    int rc;

    (void)arg;
    tide_server_opts_init(&o); /* TCP_NODELAY on, as in the example */
    o.backlog = BACKLOG;
    rc = tide_start_server("127.0.0.1", 0, tide64_handler, NULL, &o, &srv);
    if (rc < 0) {
        fprintf(stderr, "bulk server-tide64: %s\n", tide_strerror(rc));
        return 1;
    }
    printf("%d\n", tide_server_port(srv));
    fflush(stdout);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    rc = tide_signal_wait(&set);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return rc < 0 ? 1 : 0;
}

static int tide64_server(void)
{
    sigset_t set;
    int rc;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM); /* held until tide_signal_wait takes it */
    sigprocmask(SIG_BLOCK, &set, NULL);
    rc = tide_run(tide64_main, NULL);
    return rc != 0;
}

/* =============================================================== pattern */

#define PAT_SIZE 65536
#define MAX_MSG 16384
static uint8_t g_pat[PAT_SIZE + MAX_MSG];

static void pattern_init(void)
{
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    size_t i;
    for (i = 0; i < sizeof g_pat; i++)
        g_pat[i] = (uint8_t)(bench_rand(&s) >> 56);
}

/* Where message m of connection c starts in the pattern (a mix of both). */
static inline const uint8_t *msg_bytes(uint32_t c, uint64_t m)
{
    uint64_t h = ((uint64_t)c << 40) ^ (m * 0xD6E8FEB86659FD93ULL);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 29;
    return g_pat + (h % PAT_SIZE);
}

/* ================================================================ client */

#define MAX_CONNS 16
#define RING 8       /* send times kept per connection: >= messages in flight when timed */
#define IO_MAX 65536 /* per connection per turn, each way */

typedef struct conn {
    int fd;
    uint32_t id;
    int timed;           /* record its messages' latencies */
    size_t size;         /* message size */
    uint64_t depth;      /* messages in flight at most; 0: no limit but the socket's */
    uint64_t smsg, rmsg; /* message being sent / received */
    size_t soff, roff;   /* bytes of it done */
    int rd, wr;          /* readiness (edge-triggered) not yet used up */
    int stop;            /* send no new message (finish the one begun) */
    uint64_t bytes;      /* echoed and verified while recording */
    int64_t sent[RING];  /* CLOCK_REALTIME ns at the send of message m's first byte */
} conn;

static int g_client_clock; /* -c: arrivals timed by the client, not by the kernel */

typedef struct lat_vec {
    int64_t *v;
    size_t n, cap;
} lat_vec;

typedef struct load {
    int ep;
    conn c[MAX_CONNS];
    int n;
    int recording;
    uint64_t untimed; /* completions without a kernel timestamp (timed by the client) */
    lat_vec lat;
    uint8_t rbuf[IO_MAX];
} load;

static int64_t now_rt(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void lat_push(lat_vec *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        BENCH_CHECK(v, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ns < 0 ? 0 : ns;
}

static int window_open(const conn *c)
{
    if (c->stop)
        return c->soff > 0;
    return !c->depth || c->smsg < c->rmsg + c->depth;
}

/* One sendmsg of up to IO_MAX bytes: the rest of the current message and the
 * next ones the window allows. */
static void c_send(conn *c)
{
    struct iovec iov[8];
    struct msghdr mh;
    uint64_t m = c->smsg;
    size_t off = c->soff, total = 0, left;
    int64_t t;
    ssize_t w;
    int k = 0;

    while (k < 8 && total < IO_MAX && (c->stop ? off > 0 : !c->depth || m < c->rmsg + c->depth)) {
        size_t len = c->size - off;
        if (len > IO_MAX - total)
            len = IO_MAX - total;
        iov[k].iov_base = (void *)(msg_bytes(c->id, m) + off);
        iov[k].iov_len = len;
        total += len;
        k++;
        if (off + len < c->size)
            break;
        m++;
        off = 0;
    }
    if (!k)
        return;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)k;
    t = c->timed ? now_rt() : 0;
    do
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        BENCH_CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "connection %u: send: %s", c->id,
                    strerror(errno));
        c->wr = 0;
        return;
    }
    for (left = (size_t)w; left;) {
        size_t take = c->size - c->soff;
        if (take > left)
            take = left;
        if (c->soff == 0 && c->timed)
            c->sent[c->smsg % RING] = t;
        c->soff += take;
        left -= take;
        if (c->soff == c->size) {
            c->smsg++;
            c->soff = 0;
        }
    }
    if ((size_t)w < total)
        c->wr = 0; /* short: the socket buffer is full; EPOLLOUT will come */
}

/* The kernel's receive timestamp in a recvmsg's control data, or -1. */
static int64_t rx_stamp(struct msghdr *mh)
{
    struct cmsghdr *cm;
    for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    return -1;
}

/* One recv of up to IO_MAX bytes, verified against the messages sent. */
static void c_recv(load *l, conn *c)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) * 2];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {l->rbuf, sizeof l->rbuf};
    struct msghdr mh;
    const uint8_t *p = l->rbuf;
    int64_t ts = -1;
    ssize_t n;
    size_t left;

    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (c->timed) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
    }
    do
        n = recvmsg(c->fd, &mh, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        BENCH_CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "connection %u: recv: %s", c->id,
                    strerror(errno));
        c->rd = 0;
        return;
    }
    BENCH_CHECK(n > 0, "connection %u: the server closed it", c->id);
    left = (size_t)n;
    BENCH_CHECK(c->rmsg * c->size + c->roff + left <= c->smsg * c->size + c->soff,
                "connection %u: more bytes echoed than sent", c->id);
    while (left) {
        const uint8_t *want = msg_bytes(c->id, c->rmsg) + c->roff;
        size_t take = c->size - c->roff;
        if (take > left)
            take = left;
        if (memcmp(p, want, take) != 0) {
            size_t i = 0;
            while (p[i] == want[i])
                i++;
            BENCH_CHECK(0, "connection %u, message %llu, byte %zu: got 0x%02x, want 0x%02x", c->id,
                        (unsigned long long)c->rmsg, c->roff + i, p[i], want[i]);
        }
        p += take;
        left -= take;
        c->roff += take;
        if (c->roff == c->size) {
            if (c->timed && l->recording) {
                if (ts < 0 && (g_client_clock || (ts = rx_stamp(&mh)) < 0)) {
                    ts = now_rt();
                    l->untimed++;
                }
                lat_push(&l->lat, ts - c->sent[c->rmsg % RING]);
            }
            c->rmsg++;
            c->roff = 0;
        }
    }
    if (l->recording)
        c->bytes += (uint64_t)n;
    if ((size_t)n < sizeof l->rbuf)
        c->rd = 0; /* drained: new data will make a new edge */
}

/* Runs the load until the deadline (CLOCK_MONOTONIC ns). */
static void load_run(load *l, int64_t until)
{
    struct epoll_event ev[MAX_CONNS * 2];

    for (;;) {
        int64_t now = bench_ns();
        int busy = 0, i, k;

        if (now >= until)
            return;
        for (i = 0; i < l->n; i++) {
            conn *c = &l->c[i];
            if (c->rd)
                c_recv(l, c);
            if (c->wr && window_open(c))
                c_send(c);
            busy |= c->rd || (c->wr && window_open(c));
        }
        k = epoll_wait(l->ep, ev, MAX_CONNS * 2,
                       busy ? 0 : (int)((until - now + 999999) / 1000000));
        BENCH_CHECK(k >= 0 || errno == EINTR, "epoll_wait: %s", strerror(errno));
        for (i = 0; i < k; i++) {
            conn *c = ev[i].data.ptr;
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
                c->rd = 1; /* errors and hang-ups surface in recv */
            if (ev[i].events & EPOLLOUT)
                c->wr = 1;
        }
    }
}

/* Opens a connection (blocking connect, then non-blocking). */
static void load_add(load *l, int port, size_t size, uint64_t depth, int timed)
{
    struct sockaddr_in a;
    struct epoll_event ev;
    conn *c = &l->c[l->n];
    int one = 1, fd;

    BENCH_CHECK(l->n < MAX_CONNS && size <= MAX_MSG && (!timed || (depth && depth <= RING)),
                "bad connection parameters");
    memset(c, 0, sizeof *c);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_CHECK(fd >= 0, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BENCH_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to port %d: %s", port,
                strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (timed)
        BENCH_CHECK(setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0,
                    "SO_TIMESTAMPNS: %s", strerror(errno));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->fd = fd;
    c->id = (uint32_t)l->n;
    c->timed = timed;
    c->size = size;
    c->depth = depth;
    c->wr = 1;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    BENCH_CHECK(epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
    l->n++;
}

enum { SC_BULK, SC_FAIR, NSC };
static const char *g_sc_name[NSC] = {"bulk", "fair"};

/* The scenario's connections.  In "fair" the ping-pong one is c[0]: each
 * turn of the client serves it first. */
static void load_open(load *l, int sc, int port)
{
    int i;

    l->ep = epoll_create1(EPOLL_CLOEXEC);
    BENCH_CHECK(l->ep >= 0, "epoll_create1: %s", strerror(errno));
    l->n = 0;
    l->recording = 0;
    l->untimed = 0;
    l->lat.n = 0;
    if (sc == SC_BULK) {
        for (i = 0; i < 10; i++)
            load_add(l, port, 16384, 4, 1);
    } else {
        load_add(l, port, 64, 1, 1);
        for (i = 0; i < 9; i++)
            load_add(l, port, 16384, 0, 0);
    }
}

static void load_close(load *l)
{
    int i;
    for (i = 0; i < l->n; i++)
        close(l->c[i].fd);
    close(l->ep);
    l->n = 0;
}

/* Warm-up: at least min_ns, and until every connection had a message back
 * (at most max_ns more).  Returns 0 if one never did. */
static int load_warm(load *l, int64_t min_ns, int64_t max_ns)
{
    int64_t end = bench_ns() + min_ns + max_ns;
    int i;

    load_run(l, bench_ns() + min_ns);
    for (;;) {
        for (i = 0; i < l->n && l->c[i].rmsg > 0; i++)
            ;
        if (i == l->n)
            return 1;
        if (bench_ns() >= end)
            return 0;
        load_run(l, bench_ns() + 20000000);
    }
}

/* Messages of timed connections still unanswered: their age so far. */
static void load_censor(load *l)
{
    int64_t now = now_rt();
    int i;

    for (i = 0; i < l->n; i++) {
        conn *c = &l->c[i];
        uint64_t m;
        if (!c->timed)
            continue;
        for (m = c->rmsg; m < c->smsg || (m == c->smsg && c->soff); m++)
            lat_push(&l->lat, now - c->sent[m % RING]);
    }
}

/* Stops the load (messages begun are finished) and waits until every
 * message of the timed connections has come back: 0 if one did not within
 * max_ns (lost rather than late). */
static int load_drain(load *l, int64_t max_ns)
{
    int64_t end = bench_ns() + max_ns;
    int i;

    for (i = 0; i < l->n; i++)
        l->c[i].stop = 1;
    for (;;) {
        for (i = 0; i < l->n; i++) {
            const conn *c = &l->c[i];
            if (c->timed && (c->rmsg < c->smsg || c->soff))
                break;
        }
        if (i == l->n)
            return 1;
        if (bench_ns() >= end)
            return 0;
        load_run(l, bench_ns() + 10000000);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted vector, ms. */
static double pct_ms(const lat_vec *l, double q)
{
    size_t i;
    if (!l->n)
        return -1;
    i = (size_t)(q * (double)l->n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > l->n)
        i = l->n;
    return (double)l->v[i - 1] / 1e6;
}

/* ======================================================= server processes */

enum { SRV_REF, SRV_EXAMPLE, SRV_TIDE64, NSRV };
static const char *g_srv_name[NSRV] = {"ref", "example", "tide64"};
static const char *g_srv_desc[NSRV] = {"epoll, 64 KiB", "echo_server 8 KiB", "stream 64 KiB"};
static char g_example[PATH_MAX];
static int g_ncpu;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* examples/echo_server: TIDE_ECHO_SERVER, else the path CMake gave, else
 * <dir of this binary>/../examples/echo_server.  "" if none is executable. */
static void find_example(void)
{
    const char *env = getenv("TIDE_ECHO_SERVER");
    char self[PATH_MAX - 64];
    ssize_t n;
    char *slash;

    g_example[0] = 0;
    if (env && *env) {
        snprintf(g_example, sizeof g_example, "%s", env);
        if (access(g_example, X_OK) != 0)
            g_example[0] = 0;
        return;
    }
#ifdef BULK_ECHO_SERVER
    snprintf(g_example, sizeof g_example, "%s", BULK_ECHO_SERVER);
    if (access(g_example, X_OK) == 0)
        return;
#endif
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = 0;
    if ((slash = strrchr(self, '/')))
        *slash = 0;
    snprintf(g_example, sizeof g_example, "%s/../examples/echo_server", self);
    if (access(g_example, X_OK) != 0)
        g_example[0] = 0;
}

typedef struct server {
    pid_t pid;
    int out; /* its stdout */
} server;

static int read_line(int fd, char *buf, size_t cap, int ms)
{
    size_t n = 0;
    int64_t end = bench_ns() + (int64_t)ms * 1000000;

    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = end - bench_ns();
        if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) <= 0 || read(fd, buf + n, 1) != 1)
            break;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return (int)n;
}

/* Starts a server on CPU 0; returns its port.  Our servers print the port;
 * the example prints "echo_server: listening on 127.0.0.1:PORT (...)". */
static int server_start(server *s, int srv)
{
    char line[256], *colon;
    int p[2], port;

    BENCH_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    s->pid = fork();
    BENCH_CHECK(s->pid >= 0, "fork: %s", strerror(errno));
    if (s->pid == 0) {
        if (g_ncpu >= 2)
            pin(0);
        dup2(p[1], 1);
        signal(SIGPIPE, SIG_DFL); /* as a shell would start it */
        if (srv == SRV_EXAMPLE)
            execl(g_example, "echo_server", "127.0.0.1", "0", (char *)NULL);
        else
            execl("/proc/self/exe", "bulk", srv == SRV_REF ? "server-ref" : "server-tide64",
                  (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    s->out = p[0];
    BENCH_CHECK(read_line(s->out, line, sizeof line, 5000) > 0, "server %s: no port",
                g_srv_name[srv]);
    colon = strrchr(line, ':');
    port = atoi(colon ? colon + 1 : line);
    BENCH_CHECK(port > 0, "server %s: no port in \"%s\"", g_srv_name[srv], line);
    return port;
}

static void server_stop(server *s)
{
    char buf[512];
    int64_t end = bench_ns() + 5000LL * 1000000;
    int st;

    kill(s->pid, SIGTERM);
    /* Read its output to the end (the example prints statistics), so it never
     * blocks on, or dies of, a full or closed pipe. */
    for (;;) {
        struct pollfd p = {.fd = s->out, .events = POLLIN};
        int64_t left = end - bench_ns();
        if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) <= 0 ||
            read(s->out, buf, sizeof buf) <= 0)
            break;
    }
    close(s->out);
    /* Its stdout closes before it can be reaped: wait for that too. */
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (bench_ns() >= end) {
            fprintf(stderr, "bulk: a server did not stop within 5 s: killed\n");
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            return;
        }
        usleep(1000);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "bulk: a server exited with status 0x%x\n", st);
}

/* A schedstat file: time on CPU and time runnable but waiting for a CPU
 * (another process had it), ns; 0, or -1 if unavailable. */
static int sched_ns(const char *path, int64_t *cpu, int64_t *wait)
{
    unsigned long long a, b;
    FILE *f = fopen(path, "re");
    int ok;

    if (!f)
        return -1;
    ok = fscanf(f, "%llu %llu", &a, &b) == 2;
    fclose(f);
    if (!ok)
        return -1;
    *cpu = (int64_t)a;
    *wait = (int64_t)b;
    return 0;
}

/* ================================================================ driver */

typedef struct result {
    int ok;
    double mbs;            /* MB/s echoed (fair: the bulk connections') */
    double p50, p99, p999; /* ms: bulk: messages; fair: ping-pong */
    size_t samples;
    double srv_cpu, cli_cpu;   /* share of one CPU over the window, -1: n/a */
    double cpu_mb;             /* server CPU us per MB echoed (the MB/s counted), -1: n/a */
    double srv_wait, cli_wait; /* share of the window runnable but not running */
    uint64_t untimed;
} result;

#define NOISY 0.10 /* a run whose server or client waited for its CPU this share of it */

static int64_t g_warm_ns = 500LL * 1000000;
static int64_t g_window_ns = 3000LL * 1000000;

static result measure(load *l, int sc, int srv)
{
    server s;
    result r;
    int64_t t0, t1, s0 = 0, s1 = 0, sw0 = 0, sw1 = 0, c0 = 0, c1 = 0, cw0 = 0, cw1 = 0;
    char spath[64];
    int sok, cok;
    uint64_t bytes = 0;
    int i, port;

    memset(&r, 0, sizeof r);
    port = server_start(&s, srv);
    load_open(l, sc, port);
    if (!load_warm(l, g_warm_ns, 5000LL * 1000000))
        fprintf(stderr, "bulk: %s, %s: a connection had no echo in the warm-up\n", g_sc_name[sc],
                g_srv_name[srv]);
    for (i = 0; i < l->n; i++)
        l->c[i].bytes = 0;
    l->lat.n = 0;
    l->untimed = 0;
    l->recording = 1;
    snprintf(spath, sizeof spath, "/proc/%d/schedstat", (int)s.pid);
    sok = sched_ns(spath, &s0, &sw0) == 0;
    cok = sched_ns("/proc/thread-self/schedstat", &c0, &cw0) == 0;
    t0 = bench_ns();
    load_run(l, t0 + g_window_ns);
    t1 = bench_ns();
    cok = cok && sched_ns("/proc/thread-self/schedstat", &c1, &cw1) == 0;
    sok = sok && sched_ns(spath, &s1, &sw1) == 0;
    load_censor(l);
    l->recording = 0;
    for (i = 0; i < l->n; i++)
        if (sc == SC_BULK || !l->c[i].timed)
            bytes += l->c[i].bytes;
    if (!load_drain(l, 3000LL * 1000000))
        fprintf(stderr,
                "bulk: %s, %s: a timed message never came back, 3 s after the load stopped\n",
                g_sc_name[sc], g_srv_name[srv]);
    load_close(l);
    server_stop(&s);

    qsort(l->lat.v, l->lat.n, sizeof *l->lat.v, cmp_i64);
    r.ok = 1;
    r.mbs = (double)bytes * 1e3 / (double)(t1 - t0);
    r.p50 = pct_ms(&l->lat, 0.50);
    r.p99 = pct_ms(&l->lat, 0.99);
    r.p999 = pct_ms(&l->lat, 0.999);
    r.samples = l->lat.n;
    r.srv_cpu = sok ? (double)(s1 - s0) / (double)(t1 - t0) : -1;
    r.cpu_mb = sok && bytes ? (double)(s1 - s0) / 1e3 / ((double)bytes / 1e6) : -1;
    r.srv_wait = sok ? (double)(sw1 - sw0) / (double)(t1 - t0) : -1;
    r.cli_cpu = cok ? (double)(c1 - c0) / (double)(t1 - t0) : -1;
    r.cli_wait = cok ? (double)(cw1 - cw0) / (double)(t1 - t0) : -1;
    r.untimed = l->untimed;
    return r;
}

static int noisy(const result *r)
{
    return r->srv_wait >= NOISY || r->cli_wait >= NOISY;
}

static void merge(result *best, const result *r)
{
    if (!best->ok) {
        *best = *r;
        return;
    }
    if (r->mbs > best->mbs)
        best->mbs = r->mbs;
    if (r->p50 < best->p50)
        best->p50 = r->p50;
    if (r->p99 < best->p99)
        best->p99 = r->p99;
    if (r->p999 < best->p999)
        best->p999 = r->p999;
    if (r->cpu_mb >= 0 && (best->cpu_mb < 0 || r->cpu_mb < best->cpu_mb))
        best->cpu_mb = r->cpu_mb;
    best->samples += r->samples;
    best->untimed += r->untimed;
}

static void print_run(int srv, int rep, const result *r)
{
    printf("  run %d %-8s %7.1f MB/s  p50 %6.3f  p99 %7.3f  p99.9 %7.3f ms (%6zu)  server %3.0f%% "
           "cpu %3.0f%% wait %4.0f us/MB  client %3.0f%% %3.0f%%\n",
           rep + 1, g_srv_name[srv], r->mbs, r->p50, r->p99, r->p999, r->samples, r->srv_cpu * 100,
           r->srv_wait * 100, r->cpu_mb, r->cli_cpu * 100, r->cli_wait * 100);
    if (noisy(r))
        printf("        ^ noisy: another process had the CPU for part of the window\n");
    fflush(stdout);
}

static const char *verdict(int met)
{
    return met ? "met" : "MISSED";
}

/* all: the best of every run; quiet: of the runs that were not noisy (used
 * where there is one).  Ratios: tide / ref. */
static void summarize(int sc, const result all[NSRV], const result quiet[NSRV])
{
    result res[NSRV];
    const result *ref = &res[SRV_REF];
    int k, mixed = 0;

    for (k = 0; k < NSRV; k++) {
        res[k] = quiet[k].ok ? quiet[k] : all[k];
        mixed |= all[k].ok && !quiet[k].ok;
    }
    if (sc == SC_BULK)
        printf("%-26s|    MB/s  ratio |  p50 ms  ratio |  p99 ms  ratio | srv us/MB ratio\n",
               "bulk, best runs");
    else
        printf("%-26s| bulk MB/s ratio | ping p50 ms  ratio |  p99 ms  ratio | p99.9 ms  ratio "
               "| srv us/MB ratio\n",
               "fair, best runs");
    for (k = 0; k < NSRV; k++) {
        const result *r = &res[k];
        char mark = quiet[k].ok ? ' ' : '~';
        if (!r->ok) {
            printf("%-7s  %-17s| not run\n", g_srv_name[k], "");
            continue;
        }
        if (sc == SC_BULK)
            printf("%-7s%c %-17.17s| %7.1f %6.2f | %7.3f %6.2f | %7.3f %6.2f | %9.0f %5.2f\n",
                   g_srv_name[k], mark, g_srv_desc[k], r->mbs, r->mbs / ref->mbs, r->p50,
                   r->p50 / ref->p50, r->p99, r->p99 / ref->p99, r->cpu_mb,
                   r->cpu_mb / ref->cpu_mb);
        else
            printf("%-7s%c %-17.17s| %9.1f %5.2f | %11.3f %6.2f | %7.3f %6.2f | %8.3f %6.2f "
                   "| %9.0f %5.2f\n",
                   g_srv_name[k], mark, g_srv_desc[k], r->mbs, r->mbs / ref->mbs, r->p50,
                   r->p50 / ref->p50, r->p99, r->p99 / ref->p99, r->p999, r->p999 / ref->p999,
                   r->cpu_mb, r->cpu_mb / ref->cpu_mb);
    }
    if (mixed)
        printf("(~: no quiet run of that server, its best noisy runs are used)\n");
    for (k = SRV_EXAMPLE; k < NSRV; k++) {
        const result *r = &res[k];
        if (!r->ok || !ref->ok)
            continue;
        if (sc == SC_BULK)
            printf("SUMMARY bulk %-7s %.0f MB/s = %.2f x ref %.0f (aim >= 0.90: %s); "
                   "p99 %.2f ms = %.2f x ref %.2f (aim <= 2: %s); server CPU/MB %.2f x ref\n",
                   g_srv_name[k], r->mbs, r->mbs / ref->mbs, ref->mbs,
                   verdict(r->mbs >= 0.9 * ref->mbs), r->p99, r->p99 / ref->p99, ref->p99,
                   verdict(r->p99 <= 2 * ref->p99), r->cpu_mb / ref->cpu_mb);
        else
            printf("SUMMARY fair %-7s ping p99 %.2f ms (aim < 2 ms: %s) = %.2f x ref %.2f; "
                   "p99.9 %.2f ms = %.2f x ref %.2f; bulk %.0f MB/s = %.2f x ref %.0f\n",
                   g_srv_name[k], r->p99, verdict(r->p99 < 2), r->p99 / ref->p99, ref->p99, r->p999,
                   r->p999 / ref->p999, ref->p999, r->mbs, r->mbs / ref->mbs, ref->mbs);
    }
    if (!g_client_clock &&
        all[SRV_REF].untimed + all[SRV_EXAMPLE].untimed + all[SRV_TIDE64].untimed)
        printf("(some arrivals lacked a kernel timestamp and were timed by the client)\n");
    fflush(stdout);
}

/* The load alone against a server started by hand. */
static int run_client(int port, const char *scn, double secs, load *l)
{
    int sc = !strcmp(scn, "fair") ? SC_FAIR : SC_BULK;
    int64_t t0, t1;
    uint64_t bytes = 0;
    int i;

    BENCH_CHECK(port > 0 && secs > 0, "bad arguments");
    load_open(l, sc, port);
    for (i = 0; i < l->n; i++)
        l->c[i].bytes = 0;
    l->recording = 1;
    t0 = bench_ns();
    load_run(l, t0 + (int64_t)(secs * 1e9));
    t1 = bench_ns();
    load_censor(l);
    for (i = 0; i < l->n; i++)
        if (sc == SC_BULK || !l->c[i].timed)
            bytes += l->c[i].bytes;
    load_close(l);
    qsort(l->lat.v, l->lat.n, sizeof *l->lat.v, cmp_i64);
    printf("%s: %.1f MB/s, latency p50 %.3f p99 %.3f p99.9 %.3f ms (%zu samples), every byte "
           "verified\n",
           g_sc_name[sc], (double)bytes * 1e3 / (double)(t1 - t0), pct_ms(&l->lat, 0.5),
           pct_ms(&l->lat, 0.99), pct_ms(&l->lat, 0.999), l->lat.n);
    return 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [bulk|fair] [-t SECONDS] [-n RUNS] [-s example,tide64] [-c]\n"
            "           the benchmark (default: both scenarios, 3 s windows, 2 runs, every "
            "server;\n"
            "           -s: the tide servers to run beside ref; -c: arrivals timed by the "
            "client's\n"
            "           clock, not by the kernel's timestamps)\n"
            "       %s server-ref | server-tide64            a server alone (prints its port)\n"
            "       %s client PORT bulk|fair SECONDS          the load alone\n",
            argv0, argv0, argv0);
    return 2;
}

int main(int argc, char **argv)
{
    static load l; /* big: not on the stack */
    result res[NSC][NSRV], quiet[NSC][NSRV];
    int want[NSC] = {1, 1}, use[NSRV] = {1, 1, 1}, runs = 2, sc, rep, k, i;
    int64_t start = bench_ns();

    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "server-ref"))
        return ref_server();
    if (argc >= 2 && !strcmp(argv[1], "server-tide64"))
        return tide64_server();
    pattern_init();
    if (argc >= 2 && !strcmp(argv[1], "client")) {
        if (argc != 5)
            return usage(argv[0]);
        return run_client(atoi(argv[2]), argv[3], atof(argv[4]), &l);
    }
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "bulk") || !strcmp(argv[i], "fair")) {
            want[SC_BULK] = !strcmp(argv[i], "bulk");
            want[SC_FAIR] = !want[SC_BULK];
        } else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            double t = atof(argv[++i]);
            if (t <= 0 || t > 60)
                return usage(argv[0]);
            g_window_ns = (int64_t)(t * 1e9);
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            const char *list = argv[++i];
            use[SRV_EXAMPLE] = strstr(list, "example") != NULL;
            use[SRV_TIDE64] = strstr(list, "tide64") != NULL;
            if (!use[SRV_EXAMPLE] && !use[SRV_TIDE64])
                return usage(argv[0]);
        } else if (!strcmp(argv[i], "-c")) {
            g_client_clock = 1;
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            runs = atoi(argv[++i]);
            if (runs < 1 || runs > 20)
                return usage(argv[0]);
        } else {
            return usage(argv[0]);
        }
    }

    g_ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (g_ncpu >= 2)
        pin(1);
    find_example();
    if (!g_example[0])
        fprintf(stderr, "bulk: examples/echo_server not found (set TIDE_ECHO_SERVER=PATH): "
                        "skipping it\n");
    memset(res, 0, sizeof res);
    memset(quiet, 0, sizeof quiet);
    printf("bulk echo and fairness: servers on CPU 0 in turn, client on CPU 1%s; "
           "%.1f s windows after %.1f s warm-up, %d runs\n",
           g_ncpu >= 2 ? "" : " (1 CPU: not pinned)", g_window_ns / 1e9, g_warm_ns / 1e9, runs);
    printf("servers: ref = hand-written epoll, 64 KiB buffer; example = %s (8 KiB buffer); "
           "tide64 = the same handler, 64 KiB buffer\n",
           g_example[0] ? g_example : "examples/echo_server: not found");
    for (sc = 0; sc < NSC; sc++) {
        if (!want[sc])
            continue;
        if (sc == SC_BULK)
            printf("\n[bulk] 10 conns x 16 KiB messages x 4 in flight; latency: message round "
                   "trip\n");
        else
            printf("\n[fair] 9 conns streaming 16 KiB messages flat out + 1 conn 64 B "
                   "ping-pong; latency: ping-pong round trip; MB/s: the 9 bulk conns\n");
        fflush(stdout);
        for (rep = 0; rep < runs; rep++)
            for (k = 0; k < NSRV; k++) {
                int srv = rep % 2 ? NSRV - 1 - k : k; /* alternate the order */
                result r;
                if (!use[srv] || (srv == SRV_EXAMPLE && !g_example[0]))
                    continue;
                r = measure(&l, sc, srv);
                print_run(srv, rep, &r);
                if (noisy(&r)) { /* once more */
                    merge(&res[sc][srv], &r);
                    r = measure(&l, sc, srv);
                    print_run(srv, rep, &r);
                }
                merge(&res[sc][srv], &r);
                if (!noisy(&r))
                    merge(&quiet[sc][srv], &r);
            }
        summarize(sc, res[sc], quiet[sc]);
    }
    printf("every byte verified; total %.1f s\n", (bench_ns() - start) / 1e9);
    free(l.lat.v);
    return 0;
}
