/*
 * Helpers for the network I/O tests (header-only, everything static).
 * Plain blocking code: these build socket pairs before a loop touches them.
 */
#ifndef TIDE_TEST_NET_UTIL_H
#define TIDE_TEST_NET_UTIL_H

#include "util.h"

#include "tide.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A byte pattern with no short period (not a multiple of 256 or 4096), so a
 * lost, duplicated or reordered chunk shows. */
static inline uint8_t tt_pat(uint64_t i)
{
    return (uint8_t)(i * 131u + (i >> 9) * 7u + (i >> 17) + 1u);
}

static inline void tt_pat_fill(void *buf, uint64_t off, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = tt_pat(off + i);
}

/* -1 if buf holds the pattern from offset off, else the index of the first
 * wrong byte. */
static inline long tt_pat_check(const void *buf, uint64_t off, size_t n)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        if (p[i] != tt_pat(off + i))
            return (long)i;
    return -1;
}

static inline void tt_set_bufs(int fd, int bytes)
{
    if (bytes > 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
}

/* AF_UNIX stream socketpair, small buffers if bufsize > 0.  0 or -1. */
static inline int tt_socketpair(int sv[2], int bufsize)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    tt_set_bufs(sv[0], bufsize);
    tt_set_bufs(sv[1], bufsize);
    return 0;
}

/* A connected TCP pair over 127.0.0.1 (sv[0] the client, sv[1] the accepted
 * side), small buffers if bufsize > 0.  0 or -1. */
static inline int tt_tcp_pair(int sv[2], int bufsize)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0) {
        close(l);
        return -1;
    }
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    tt_set_bufs(sv[0], bufsize);
    tt_set_bufs(l, bufsize); /* inherited by the accepted socket */
    if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof a) != 0) {
        close(l);
        if (sv[0] >= 0)
            close(sv[0]);
        return -1;
    }
    sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    close(l);
    if (sv[1] < 0) {
        close(sv[0]);
        return -1;
    }
    tt_set_bufs(sv[1], bufsize);
    return 0;
}

/* Writes into fd (non-blocking) until the kernel says EAGAIN; returns the
 * count written. */
static inline size_t tt_fill_fd(int fd)
{
    static char junk[4096];
    size_t total = 0;
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        ssize_t n = send(fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, junk, sizeof junk);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    return total;
}

/* Makes the next close of fd send a RST (SO_LINGER {1, 0}). */
static inline void tt_linger0(int fd)
{
    struct linger lg = {1, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* CPU time (user + system) of this process, ms. */
static inline int64_t tt_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Runs fn(arg) as the main task of tide_run inside a timeout scope of ms,
 * so that a wait which never ends (a library bug) fails the test instead
 * of hanging it: when the guard expires, main's waits return -ETIMEDOUT
 * (its awaits cancel the tasks they wait for) and tide_run cancels the
 * rest. */
typedef struct tt_guard {
    tide_fn fn;
    void *arg;
    int64_t ms;
    int rc, expired;
} tt_guard;

static inline int tt_guard_main(void *a)
{
    tt_guard *g = (tt_guard *)a;
    tide_scope s;
    tide_timeout_begin(&s, g->ms);
    g->rc = g->fn(g->arg);
    g->expired = tide_timeout_end(&s) == -ETIMEDOUT;
    return g->rc;
}

static inline int tt_run_guarded(tide_fn fn, void *arg, int64_t ms, int *expired)
{
    tt_guard g = {fn, arg, ms, 0, 0};
    int rc = tide_run(tt_guard_main, &g);
    *expired = g.expired;
    return rc;
}

/* A guard against hangs, not a time limit: generous where everything runs
 * many times slower (sanitizers, valgrind, a loaded machine). */
#if defined(TT_TSAN) || defined(TT_ASAN)
#define TT_GUARD_MS 30000
#else
#define TT_GUARD_MS (tt_under_valgrind() ? 30000 : 10000)
#endif

/* tide_run(fn, arg) must return 0 within TT_GUARD_MS (see tt_run_guarded). */
#define TT_RUN(fn, arg)                                                                        \
    do {                                                                                       \
        int exp_ = 0;                                                                          \
        int rc_ = tt_run_guarded((fn), (arg), TT_GUARD_MS, &exp_);                             \
        if (exp_)                                                                              \
            print_message("%s: a wait never ended (the %d ms guard expired)\n", #fn,          \
                          (int)(TT_GUARD_MS));                                                 \
        assert_false(exp_);                                                                    \
        assert_int_equal(rc_, 0);                                                              \
    } while (0)

#endif
