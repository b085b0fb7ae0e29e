/*
 * Echo ping-pong: tide's echo server against libuv's, driven by a load client
 * of our own (raw epoll, edge-triggered) on the same scenarios:
 *
 *   1 connection x 64 B, 100 x 64 B, 1 000 x 64 B (one message in flight per
 *   connection), and 10 connections x 16 KiB messages with 4 in flight each.
 *
 * One executable, three roles chosen by argv:
 *   echo                     the driver (below);
 *   echo server-tide         tide_start_server + a handler doing
 *                            tide_stream_read / tide_stream_write / drain;
 *   echo server-tide-raw     the same server, the handler using tide_read /
 *                            tide_write on the stream's fd (the lower level);
 *   echo server-uv           the textbook libuv echo (uv_read_start, uv_write
 *                            with a request per write, freed in its callback).
 * A server listens on 127.0.0.1:0, prints its port on stdout, serves until
 * SIGTERM, then prints its rusage ("rusage USER_US SYS_US") and exits.
 *
 * The driver pins itself (the client) to CPU 1 and each server to CPU 0.  For
 * each scenario and server: start the server, connect, warm up (>= 0.25 s and
 * until every connection made a round trip), then measure over a fixed window
 * (0.8 s); each figure is the best of 3 such runs, the servers interleaved
 * (the machine may be shared and noisy):
 *  - round trips/s (a round trip: one whole message echoed back; every byte is
 *    checked against a pattern that depends on connection and message index);
 *  - the server's CPU time per round trip (/proc/PID/schedstat: user + system
 *    time on CPU, ns; /proc/PID/stat ticks if schedstat is missing);
 *  - the server's syscalls per round trip: a perf_event_open counter on the
 *    raw_syscalls:sys_enter tracepoint of the server over the same window
 *    (cheap, exact); where that is unavailable, strace -c -f -p on a short
 *    extra window (the rate drops under ptrace, the count per round trip is
 *    what matters); "n/a" if neither works.  ECHO_SYSCOUNT=strace forces
 *    strace.
 * On a 2-core machine the client usually saturates before the server, so the
 * round-trip rate says little; the server's CPU and syscalls per round trip
 * are the figures to compare.  Ratios are tide / libuv (same run).
 *
 * Aim (issue): tide at or below libuv on CPU/rt and syscalls/rt in every
 * scenario (libuv measured by the author: ~6.2 us and 2.02 syscalls
 * per round trip at 100 connections; Go: 3.15 syscalls).
 */
#include "bench.h"
#include "tide.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
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
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef TIDE_HAVE_LIBUV
#include <uv.h>
#endif

#define BACKLOG 4096
#define REPS 3 /* best of; servers interleaved */
#define WARMUP_NS (250LL * 1000000)
#define WARMUP_MAX_NS (10LL * 1000000000)
#define WINDOW_NS (800LL * 1000000)
#define STRACE_NS (500LL * 1000000)
#define SERVER_BUF 65536

/* ================================================================ servers */

static void print_rusage(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rusage %lld %lld\n", (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
           (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
    fflush(stdout);
}

/* The idiomatic tide echo: buffered stream, write + drain (backpressure). */
static int echo_stream(tide_stream *s, void *arg)
{
    char buf[SERVER_BUF];
    (void)arg;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        n = tide_stream_write(s, buf, (size_t)n);
        if (n < 0)
            return (int)n;
        int rc = tide_stream_drain(s);
        if (rc < 0)
            return rc;
    }
}

/* The lower level: tide_read / tide_write on the connection's fd. */
static int echo_raw(tide_stream *s, void *arg)
{
    char buf[SERVER_BUF];
    int fd = tide_stream_fd(s);
    (void)arg;
    for (;;) {
        ssize_t n = tide_read(fd, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        ssize_t w = tide_write(fd, buf, (size_t)n);
        if (w < n)
            return w < 0 ? (int)w : -EIO;
    }
}

static int tide_server_main(void *arg)
{
    tide_server_handler h = *(const int *)arg ? echo_raw : echo_stream;
    tide_server_opts o;
    tide_server *srv;
    sigset_t set;
    int rc;

    tide_server_opts_init(&o);
    o.backlog = BACKLOG;
    rc = tide_start_server("127.0.0.1", 0, h, NULL, &o, &srv);
    if (rc < 0) {
        fprintf(stderr, "echo server-tide: tide_start_server: %s\n", tide_strerror(rc));
        return rc;
    }
    printf("%d\n", tide_server_port(srv));
    fflush(stdout);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    rc = tide_signal_wait(&set);
    if (rc < 0)
        fprintf(stderr, "echo server-tide: tide_signal_wait: %s\n", tide_strerror(rc));
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

static int run_tide_server(int raw)
{
    sigset_t set;
    int rc;

    /* SIGTERM may come as soon as the port is out: hold it until we wait. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    rc = tide_run(tide_server_main, &raw);
    print_rusage();
    return rc < 0 ? 1 : 0;
}

#ifdef TIDE_HAVE_LIBUV
typedef struct uv_wreq {
    uv_write_t req;
    uv_buf_t buf;
} uv_wreq;

static uv_loop_t *g_uv;

static void uv_on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(size);
    buf->len = buf->base ? size : 0;
}

static void uv_on_close(uv_handle_t *h)
{
    free(h);
}

static void uv_on_written(uv_write_t *req, int status)
{
    uv_wreq *w = (uv_wreq *)req;
    (void)status;
    free(w->buf.base);
    free(w);
}

static void uv_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        uv_wreq *w = malloc(sizeof *w);
        if (w) {
            w->buf = uv_buf_init(buf->base, (unsigned)n);
            if (uv_write(&w->req, s, &w->buf, 1, uv_on_written) == 0)
                return;
            free(w);
        }
        free(buf->base);
        uv_close((uv_handle_t *)s, uv_on_close);
        return;
    }
    if (n < 0)
        uv_close((uv_handle_t *)s, uv_on_close);
    free(buf->base);
}

static void uv_on_conn(uv_stream_t *srv, int status)
{
    uv_tcp_t *c;

    if (status < 0)
        return;
    c = malloc(sizeof *c);
    if (!c)
        return;
    uv_tcp_init(g_uv, c);
    c->data = NULL;
    if (uv_accept(srv, (uv_stream_t *)c) == 0) {
        uv_tcp_nodelay(c, 1);
        uv_read_start((uv_stream_t *)c, uv_on_alloc, uv_on_read);
    } else {
        uv_close((uv_handle_t *)c, uv_on_close);
    }
}

static void uv_close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->data == (void *)1 ? NULL : uv_on_close);
}

static void uv_on_term(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_walk(sig->loop, uv_close_any, NULL);
}

static int run_uv_server(void)
{
    uv_tcp_t srv;
    uv_signal_t sig;
    struct sockaddr_in a;
    struct sockaddr_storage b;
    int len = sizeof b, rc;

    g_uv = uv_default_loop();
    uv_signal_init(g_uv, &sig);
    sig.data = (void *)1; /* not malloc'ed */
    uv_signal_start(&sig, uv_on_term, SIGTERM);
    uv_tcp_init(g_uv, &srv);
    srv.data = (void *)1;
    uv_ip4_addr("127.0.0.1", 0, &a);
    rc = uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv, BACKLOG, uv_on_conn);
    if (rc == 0)
        rc = uv_tcp_getsockname(&srv, (struct sockaddr *)&b, &len);
    if (rc) {
        fprintf(stderr, "echo server-uv: %s\n", uv_strerror(rc));
        return 1;
    }
    printf("%d\n", ntohs(((struct sockaddr_in *)&b)->sin_port));
    fflush(stdout);
    uv_run(g_uv, UV_RUN_DEFAULT);
    uv_loop_close(g_uv);
    print_rusage();
    return 0;
}
#endif

/* ================================================================ pattern */

#define PAT_SIZE 65536
#define MAX_MSG 16384
static uint8_t g_pat[PAT_SIZE + MAX_MSG];

static void pattern_init(void)
{
    uint64_t s = 0x2545F4914F6CDD1DULL;
    size_t i;
    for (i = 0; i < sizeof g_pat; i++)
        g_pat[i] = (uint8_t)(bench_rand(&s) >> 56);
}

/* Message m of connection c is g_pat[off(c, m) ...]: every message has its
 * own window into the pattern, so a lost, repeated, reordered or misrouted
 * message (or a corrupted byte) fails the comparison. */
static inline size_t pat_off(uint32_t c, uint64_t m)
{
    uint64_t h = (c + 1) * 0x9E3779B97F4A7C15ULL ^ (m + 1) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return (size_t)(h & (PAT_SIZE - 1));
}

/* ================================================================= client */

typedef struct cconn {
    int fd;
    uint32_t id;
    uint64_t smsg, rmsg; /* message being sent / received */
    size_t soff, roff;   /* bytes of it done */
} cconn;

typedef struct client {
    int ep;
    cconn *c;
    int n;
    size_t size;
    int depth;
    uint64_t rt; /* whole messages echoed back and verified */
    uint8_t rbuf[65536];
} client;

static void c_send(client *cl, cconn *c)
{
    while (c->smsg < c->rmsg + (uint64_t)cl->depth) {
        const uint8_t *p = g_pat + pat_off(c->id, c->smsg) + c->soff;
        ssize_t n = send(c->fd, p, cl->size - c->soff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            BENCH_CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "client send: %s",
                        strerror(errno));
            return;
        }
        c->soff += (size_t)n;
        if (c->soff < cl->size)
            return; /* short: the socket buffer is full, EPOLLOUT will come */
        c->smsg++;
        c->soff = 0;
    }
}

static void c_recv(client *cl, cconn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, cl->rbuf, sizeof cl->rbuf, 0);
        const uint8_t *p = cl->rbuf;
        size_t left;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            BENCH_CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "client recv: %s",
                        strerror(errno));
            return;
        }
        BENCH_CHECK(n > 0, "connection %u: the server closed it", c->id);
        left = (size_t)n;
        BENCH_CHECK(c->rmsg * cl->size + c->roff + left <= c->smsg * cl->size + c->soff,
                    "connection %u: more bytes echoed than sent", c->id);
        while (left) {
            size_t take = cl->size - c->roff;
            if (take > left)
                take = left;
            if (memcmp(p, g_pat + pat_off(c->id, c->rmsg) + c->roff, take) != 0) {
                size_t i = 0;
                while (p[i] == g_pat[pat_off(c->id, c->rmsg) + c->roff + i])
                    i++;
                BENCH_CHECK(0, "connection %u, message %llu, byte %zu: got 0x%02x, want 0x%02x",
                            c->id, (unsigned long long)c->rmsg, c->roff + i, p[i],
                            g_pat[pat_off(c->id, c->rmsg) + c->roff + i]);
            }
            p += take;
            left -= take;
            c->roff += take;
            if (c->roff == cl->size) {
                c->rmsg++;
                c->roff = 0;
                cl->rt++;
            }
        }
        c_send(cl, c);
        if ((size_t)n < sizeof cl->rbuf)
            return; /* short read: drained; edge-triggered, the next data makes an event */
    }
}

static void client_run_until(client *cl, int64_t deadline)
{
    struct epoll_event ev[512];

    for (;;) {
        int64_t now = bench_ns();
        int k, i;
        if (now >= deadline)
            return;
        k = epoll_wait(cl->ep, ev, 512, (int)((deadline - now + 999999) / 1000000));
        BENCH_CHECK(k >= 0 || errno == EINTR, "epoll_wait: %s", strerror(errno));
        for (i = 0; i < k; i++) {
            cconn *c = ev[i].data.ptr;
            BENCH_CHECK(!(ev[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) ||
                            (ev[i].events & EPOLLIN),
                        "connection %u: error or hang-up (events 0x%x)", c->id, ev[i].events);
            if (ev[i].events & EPOLLIN)
                c_recv(cl, c);
            if (ev[i].events & EPOLLOUT)
                c_send(cl, c);
        }
    }
}

static void client_connect(client *cl, int port, int n, size_t size, int depth)
{
    struct sockaddr_in a;
    int i, one = 1;

    memset(cl, 0, offsetof(client, rbuf));
    cl->n = n;
    cl->size = size;
    cl->depth = depth;
    cl->ep = epoll_create1(EPOLL_CLOEXEC);
    BENCH_CHECK(cl->ep >= 0, "epoll_create1: %s", strerror(errno));
    cl->c = calloc((size_t)n, sizeof *cl->c);
    BENCH_CHECK(cl->c, "out of memory");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (i = 0; i < n; i++) {
        cconn *c = &cl->c[i];
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        c->id = (uint32_t)i;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        BENCH_CHECK(c->fd >= 0, "socket: %s", strerror(errno));
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        BENCH_CHECK(connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
                    strerror(errno));
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        BENCH_CHECK(epoll_ctl(cl->ep, EPOLL_CTL_ADD, c->fd, &ev) == 0, "epoll_ctl: %s",
                    strerror(errno));
    }
}

static void client_close(client *cl)
{
    int i;
    for (i = 0; i < cl->n; i++)
        close(cl->c[i].fd);
    close(cl->ep);
    free(cl->c);
    cl->c = NULL;
}

/* ========================================================== the server process */

typedef struct server {
    pid_t pid;
    int out; /* its stdout */
} server;

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* Reads a line from the server's stdout (waiting at most ms). */
static int read_line(int fd, char *buf, size_t cap, int ms)
{
    size_t n = 0;
    int64_t end = bench_ns() + (int64_t)ms * 1000000;

    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = end - bench_ns();
        ssize_t r;
        if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) <= 0)
            break;
        r = read(fd, buf + n, 1);
        if (r <= 0)
            break;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return (int)n;
}

static int server_start(server *s, const char *role, int ncpu)
{
    char line[64];
    int p[2];

    BENCH_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    s->pid = fork();
    BENCH_CHECK(s->pid >= 0, "fork: %s", strerror(errno));
    if (s->pid == 0) {
        if (ncpu >= 2)
            pin(0);
        dup2(p[1], 1);
        execl("/proc/self/exe", "echo", role, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    s->out = p[0];
    BENCH_CHECK(read_line(s->out, line, sizeof line, 5000) > 0, "%s: no port", role);
    return atoi(line);
}

/* Stops the server; returns its CPU time as it reported it (us), or -1. */
static long long server_stop(server *s)
{
    char line[128];
    long long u = -1, sy = -1;
    int st;

    kill(s->pid, SIGTERM);
    if (read_line(s->out, line, sizeof line, 5000) > 0)
        sscanf(line, "rusage %lld %lld", &u, &sy);
    close(s->out);
    if (u < 0) {
        kill(s->pid, SIGKILL);
        fprintf(stderr, "echo: the server did not stop cleanly\n");
    }
    waitpid(s->pid, &st, 0);
    return u < 0 ? -1 : u + sy;
}

/* CPU time of the process, ns: /proc/PID/schedstat (time on CPU), else the
 * utime + stime ticks of /proc/PID/stat. */
static int64_t proc_cpu_ns(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long v;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    if ((f = fopen(path, "re"))) {
        int ok = fscanf(f, "%llu", &v) == 1;
        fclose(f);
        if (ok)
            return (int64_t)v;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "re"))) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        char *p;
        unsigned long long ut, stt;
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')'); /* fields after the command name; utime is field 14 */
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) == 2)
            return (int64_t)((ut + stt) *
                             (1000000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK)));
    }
    return -1;
}

/* ------------------------------------------------------ counting syscalls */

static long tracepoint_id(void)
{
    static const char *paths[] = {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                                  "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
    size_t i;
    for (i = 0; i < sizeof paths / sizeof *paths; i++) {
        FILE *f = fopen(paths[i], "re");
        long id;
        if (f) {
            int ok = fscanf(f, "%ld", &id) == 1;
            fclose(f);
            if (ok)
                return id;
        }
    }
    return -1;
}

/* A disabled counter of pid's syscalls, or -1. */
static int syscall_counter(pid_t pid)
{
    struct perf_event_attr a;
    long id = tracepoint_id();
    const char *force = getenv("ECHO_SYSCOUNT");

    if (id < 0 || (force && !strcmp(force, "strace")))
        return -1;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_TRACEPOINT;
    a.size = sizeof a;
    a.config = (uint64_t)id;
    a.disabled = 1;
    return (int)syscall(SYS_perf_event_open, &a, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static int traced(pid_t pid)
{
    char path[64], line[256];
    int t = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "re")))
        return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "TracerPid:", 10)) {
            t = atoi(line + 10) != 0;
            break;
        }
    fclose(f);
    return t;
}

/* strace -c -f -p on a short window of load: syscalls per round trip, or -1. */
static double strace_window(client *cl, pid_t pid)
{
    char file[] = "/tmp/tide-echo-strace-XXXXXX", pidarg[16], line[256];
    long long calls = -1;
    uint64_t rt0;
    int64_t end;
    pid_t st;
    FILE *f;
    int fd = mkstemp(file), status;

    if (fd < 0)
        return -1;
    close(fd);
    snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
    st = fork();
    if (st == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execlp("strace", "strace", "-c", "-f", "-q", "-o", file, "-p", pidarg, (char *)NULL);
        _exit(127);
    }
    /* Keep the load going while strace attaches. */
    end = bench_ns() + 3000LL * 1000000;
    while (!traced(pid) && bench_ns() < end) {
        if (waitpid(st, &status, WNOHANG) == st) { /* strace failed */
            unlink(file);
            return -1;
        }
        client_run_until(cl, bench_ns() + 5000000);
    }
    if (!traced(pid)) {
        kill(st, SIGKILL);
        waitpid(st, &status, 0);
        unlink(file);
        return -1;
    }
    rt0 = cl->rt;
    client_run_until(cl, bench_ns() + STRACE_NS);
    rt0 = cl->rt - rt0;
    kill(st, SIGINT);
    /* strace detaches and writes its summary; the server must keep running. */
    end = bench_ns() + 5000LL * 1000000;
    while (waitpid(st, &status, WNOHANG) == 0 && bench_ns() < end)
        client_run_until(cl, bench_ns() + 5000000);
    if ((f = fopen(file, "re"))) {
        while (fgets(line, sizeof line, f)) {
            char *tok[8];
            int k = 0;
            char *save, *t = strtok_r(line, " \t\n", &save);
            while (t && k < 8) {
                tok[k++] = t;
                t = strtok_r(NULL, " \t\n", &save);
            }
            if (k >= 5 && !strcmp(tok[k - 1], "total"))
                calls = atoll(tok[3]);
        }
        fclose(f);
    }
    unlink(file);
    return calls < 0 || !rt0 ? -1 : (double)calls / (double)rt0;
}

/* ================================================================ driver */

typedef struct scenario {
    const char *name;
    int conns;
    size_t size;
    int depth;
} scenario;

static const scenario g_scen[] = {
    {"1 conn x 64 B", 1, 64, 1},
    {"100 conns x 64 B", 100, 64, 1},
    {"1000 conns x 64 B", 1000, 64, 1},
    {"10 conns x 16 KiB x4", 10, 16384, 4},
};
#define NSCEN (sizeof g_scen / sizeof *g_scen)

enum { SRV_TIDE, SRV_UV, SRV_RAW, NSRV };
static const char *g_role[NSRV] = {"server-tide", "server-uv", "server-tide-raw"};
/* ECHO_POLLERS=1: tide's io_uring poller against its epoll poller instead
 * (the stream server and the raw server on io_uring, the reference column
 * the stream server on epoll; the servers are started with TIDE_POLLER). */
static int g_pollers;

typedef struct result {
    int ok;
    double rate;   /* round trips/s */
    double cpu_us; /* server CPU us per round trip */
    double sys;    /* server syscalls per round trip, < 0: n/a */
} result;

static const char *g_sysmethod = "n/a";

/* One run.  Without a perf counter, syscalls are counted with strace only if
 * use_strace (on the first repetition: it takes time). */
static result measure(const scenario *sc, int srv, int ncpu, int use_strace, client *cl)
{
    server s;
    result r = {0};
    int64_t t0, t1, c0, c1, w_end;
    uint64_t rt0, rt1;
    int i, port, cnt;

    port = server_start(&s, g_role[srv], ncpu);
    client_connect(cl, port, sc->conns, sc->size, sc->depth);
    for (i = 0; i < cl->n; i++)
        c_send(cl, &cl->c[i]);
    /* Warm-up: at least WARMUP_NS, and until every connection made a round trip. */
    w_end = bench_ns() + WARMUP_MAX_NS;
    client_run_until(cl, bench_ns() + WARMUP_NS);
    for (;;) {
        for (i = 0; i < cl->n && cl->c[i].rmsg > 0; i++)
            ;
        if (i == cl->n)
            break;
        BENCH_CHECK(bench_ns() < w_end, "%s, %s: connection %d never echoed", sc->name, g_role[srv],
                    i);
        client_run_until(cl, bench_ns() + 50000000);
    }

    cnt = syscall_counter(s.pid);
    if (cnt >= 0) {
        ioctl(cnt, PERF_EVENT_IOC_RESET, 0);
        ioctl(cnt, PERF_EVENT_IOC_ENABLE, 0);
    }
    c0 = proc_cpu_ns(s.pid);
    rt0 = cl->rt;
    t0 = bench_ns();
    client_run_until(cl, t0 + WINDOW_NS);
    t1 = bench_ns();
    rt1 = cl->rt;
    c1 = proc_cpu_ns(s.pid);
    if (cnt >= 0) {
        uint64_t v = 0;
        ioctl(cnt, PERF_EVENT_IOC_DISABLE, 0);
        if (read(cnt, &v, sizeof v) == (ssize_t)sizeof v && rt1 > rt0) {
            r.sys = (double)v / (double)(rt1 - rt0);
            g_sysmethod = "perf_event_open(raw_syscalls:sys_enter) over the window";
        } else {
            r.sys = -1;
        }
        close(cnt);
    } else if (!use_strace) {
        r.sys = -1;
    } else {
        r.sys = strace_window(cl, s.pid);
        if (r.sys >= 0)
            g_sysmethod = "strace -c -f -p over a separate 0.5 s window";
    }
    BENCH_CHECK(rt1 > rt0, "%s, %s: no round trip in the window", sc->name, g_role[srv]);
    r.rate = (double)(rt1 - rt0) * 1e9 / (double)(t1 - t0);
    r.cpu_us = c0 >= 0 && c1 >= 0 ? (double)(c1 - c0) / 1e3 / (double)(rt1 - rt0) : -1;
    r.ok = 1;
    client_close(cl);
    server_stop(&s);
    return r;
}

static void fmt_rate(char *b, size_t n, double v)
{
    if (v >= 1e6)
        snprintf(b, n, "%.2fM", v / 1e6);
    else
        snprintf(b, n, "%.1fk", v / 1e3);
}

static void fmt_num(char *b, size_t n, double v, int ok)
{
    if (!ok || v < 0)
        snprintf(b, n, "n/a");
    else
        snprintf(b, n, "%.2f", v);
}

static void fmt_ratio(char *b, size_t n, double x, double y, int ok)
{
    if (!ok || x < 0 || y <= 0)
        snprintf(b, n, "n/a");
    else
        snprintf(b, n, "%.2f", x / y);
}

static void print_row(const char *name, const result *a, const result *b)
{
    char ra[16], rb[16], rr[16], ca[16], cb[16], cr[16], sa[16], sb[16], sr[16];

    fmt_rate(ra, sizeof ra, a->rate);
    if (b->ok)
        fmt_rate(rb, sizeof rb, b->rate);
    else
        snprintf(rb, sizeof rb, "n/a");
    fmt_ratio(rr, sizeof rr, a->rate, b->rate, b->ok);
    fmt_num(ca, sizeof ca, a->cpu_us, 1);
    fmt_num(cb, sizeof cb, b->cpu_us, b->ok);
    fmt_ratio(cr, sizeof cr, a->cpu_us, b->cpu_us, b->ok);
    fmt_num(sa, sizeof sa, a->sys, 1);
    fmt_num(sb, sizeof sb, b->sys, b->ok);
    fmt_ratio(sr, sizeof sr, a->sys, b->sys, b->ok);
    printf("%-22s|%8s %8s %5s |%6s %6s %5s |%6s %6s %5s\n", name, ra, rb, rr, ca, cb, cr, sa, sb,
           sr);
}

/* The load client alone, against a server started by hand (for perf/strace). */
static int run_client(int port, int conns, size_t size, int depth, double secs, client *cl)
{
    int64_t t0;
    int i;

    BENCH_CHECK(port > 0 && conns > 0 && size > 0 && size <= MAX_MSG && depth > 0 && secs > 0,
                "bad arguments");
    pattern_init();
    client_connect(cl, port, conns, size, depth);
    for (i = 0; i < cl->n; i++)
        c_send(cl, &cl->c[i]);
    t0 = bench_ns();
    client_run_until(cl, t0 + (int64_t)(secs * 1e9));
    printf("%llu round trips, %.0f/s, every byte verified\n", (unsigned long long)cl->rt,
           (double)cl->rt * 1e9 / (double)(bench_ns() - t0));
    client_close(cl);
    return 0;
}

int main(int argc, char **argv)
{
    static client cl; /* big: not on the stack */
    result res[NSCEN][NSRV];
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int64_t start = bench_ns();
    size_t i;
    int k, rep;

    if (argc >= 2) {
        if (!strcmp(argv[1], "server-tide"))
            return run_tide_server(0);
        if (!strcmp(argv[1], "server-tide-raw"))
            return run_tide_server(1);
        if (!strcmp(argv[1], "server-tide-epoll") || !strcmp(argv[1], "server-tide-uring") ||
            !strcmp(argv[1], "server-tide-raw-uring")) {
            setenv("TIDE_POLLER", strstr(argv[1], "uring") ? "io_uring" : "epoll", 1);
            return run_tide_server(strstr(argv[1], "raw") != NULL);
        }
#ifdef TIDE_HAVE_LIBUV
        if (!strcmp(argv[1], "server-uv"))
            return run_uv_server();
#endif
        if (!strcmp(argv[1], "client") && argc == 7)
            return run_client(atoi(argv[2]), atoi(argv[3]), (size_t)atol(argv[4]), atoi(argv[5]),
                              atof(argv[6]), &cl);
        fprintf(stderr,
                "usage: %s [server-tide|server-tide-raw"
#ifdef TIDE_HAVE_LIBUV
                "|server-uv"
#endif
                "]  (servers print their port)\n"
                "       %s client PORT CONNS SIZE DEPTH SECONDS  (load alone, for "
                "profiling a server)\n",
                argv[0], argv[0]);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max; /* 1000 connections; the servers inherit it */
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    pattern_init();
    if (ncpu >= 2)
        pin(1);
    if (getenv("ECHO_POLLERS") && !strcmp(getenv("ECHO_POLLERS"), "1")) {
        g_pollers = 1;
        g_role[SRV_TIDE] = "server-tide-uring";
        g_role[SRV_UV] = "server-tide-epoll";
        g_role[SRV_RAW] = "server-tide-raw-uring";
    }
    memset(res, 0, sizeof res);

    printf("echo ping-pong: server on CPU 0, client on CPU 1%s; best of %d runs of %.1f s\n",
           ncpu >= 2 ? "" : " (1 CPU: not pinned)", REPS, WINDOW_NS / 1e9);
    fflush(stdout);
    for (i = 0; i < NSCEN; i++)
        for (rep = 0; rep < REPS; rep++)
            for (k = 0; k < NSRV; k++) {
                int srv = rep % 2 ? NSRV - 1 - k : k; /* alternate the order */
                result r;
#ifndef TIDE_HAVE_LIBUV
                if (srv == SRV_UV && !g_pollers)
                    continue;
#endif
                r = measure(&g_scen[i], srv, ncpu, rep == 0, &cl);
                if (!res[i][srv].ok) {
                    res[i][srv] = r;
                    continue;
                }
                res[i][srv].rate = res[i][srv].rate > r.rate ? res[i][srv].rate : r.rate;
                if (r.cpu_us >= 0 && (res[i][srv].cpu_us < 0 || r.cpu_us < res[i][srv].cpu_us))
                    res[i][srv].cpu_us = r.cpu_us;
                if (r.sys >= 0 && (res[i][srv].sys < 0 || r.sys < res[i][srv].sys))
                    res[i][srv].sys = r.sys;
            }

    if (g_pollers) {
        printf("syscalls counted with %s; ratios: io_uring / epoll\n", g_sysmethod);
        printf("%-22s|%8s %8s %5s |%6s %6s %5s |%6s %6s %5s\n", "tide stream, pollers", "uring",
               "epoll", "ratio", "uring", "epoll", "ratio", "uring", "epoll", "ratio");
        for (i = 0; i < NSCEN; i++)
            print_row(g_scen[i].name, &res[i][SRV_TIDE], &res[i][SRV_UV]);
        printf("%-22s|%8s %8s %5s |%6s %6s %5s |%6s %6s %5s\n", "raw on uring vs epoll", "raw",
               "epoll", "ratio", "raw", "epoll", "ratio", "raw", "epoll", "ratio");
        for (i = 0; i < NSCEN; i++)
            print_row(g_scen[i].name, &res[i][SRV_RAW], &res[i][SRV_UV]);
        printf("every byte verified; total %.1f s\n", (bench_ns() - start) / 1e9);
        return 0;
    }
    printf("syscalls counted with %s; ratios: tide / libuv\n", g_sysmethod);
    printf("%-22s| %-23s| %-20s| %-20s\n", "", "round trips/s", "server CPU us/rt",
           "server syscalls/rt");
    printf("%-22s|%8s %8s %5s |%6s %6s %5s |%6s %6s %5s\n", "tide (stream) vs libuv", "tide",
           "libuv", "ratio", "tide", "libuv", "ratio", "tide", "libuv", "ratio");
    for (i = 0; i < NSCEN; i++)
        print_row(g_scen[i].name, &res[i][SRV_TIDE], &res[i][SRV_UV]);
    printf("%-22s|%8s %8s %5s |%6s %6s %5s |%6s %6s %5s\n", "tide_read/tide_write", "raw", "libuv",
           "ratio", "raw", "libuv", "ratio", "raw", "libuv", "ratio");
    for (i = 0; i < NSCEN; i++)
        print_row(g_scen[i].name, &res[i][SRV_RAW], &res[i][SRV_UV]);
    printf("every byte verified; total %.1f s\n", (bench_ns() - start) / 1e9);
    return 0;
}
