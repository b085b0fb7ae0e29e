/*
 * bench/http_client: keep-alive GETs per second of tide_http_client against
 * a local server, with a hand-written blocking client doing the same
 * requests over the same kind of connection in the same run as the
 * reference.
 *
 *   http_client [REQUESTS] [CONNECTIONS]        (default 20000, 8)
 *
 * The server is a forked child: a tide server answering every request on a
 * connection (keep-alive) with a 13-byte body.  Two rounds, each the best
 * of 3 runs:
 *  - sequential: one connection, requests one after another (latency
 *    bound).  The reference: write(2) the request, read(2) until the head
 *    and the Content-Length body are in, with no parsing beyond that.
 *  - concurrent: CONNECTIONS tasks sharing one client (the pool keeps that
 *    many connections) vs CONNECTIONS blocking threads, one connection each.
 * The ratio tide / reference is what to compare across runs; the client's
 * reuse count checks that the pool really kept its connections.
 */
#define _GNU_SOURCE
#include <tide.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
                           "\r\nHello, world!";
static const char REQ_FMT[] = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n";

static int g_port;
static long g_n = 20000;
static int g_conns = 8;

/* ---------------------------------------------------------------- server */

static int srv_handler(tide_stream *s, void *arg)
{
    char head[4096];
    (void)arg;
    for (;;) {
        ssize_t n = tide_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof head);
        if (n <= 0)
            return 0;
        if (tide_stream_write(s, RESP, sizeof RESP - 1) < 0 || tide_stream_drain(s) < 0)
            return 0;
    }
}

static int srv_main(void *arg)
{
    tide_server *srv;
    int *pipefd = arg;
    int rc = tide_start_server("127.0.0.1", 0, srv_handler, NULL, NULL, &srv);
    int port;
    if (rc < 0)
        return rc;
    port = tide_server_port(srv);
    if (write(pipefd[1], &port, sizeof port) != sizeof port)
        return -EIO;
    for (;;)
        tide_sleep(1000000);
}

/* -------------------------------------------------------- blocking client */

/* n keep-alive GETs on one connection; reads each head and its
 * Content-Length body. */
static void blocking_run(long n)
{
    char req[128], buf[4096];
    int fd = bench_connect_loopback(g_port);
    size_t rl = (size_t)snprintf(req, sizeof req, REQ_FMT, g_port);
    for (long i = 0; i < n; i++) {
        size_t have = 0, need = 0;
        BENCH_CHECK(write(fd, req, rl) == (ssize_t)rl, "write");
        for (;;) {
            ssize_t r = read(fd, buf + have, sizeof buf - have);
            char *e;
            BENCH_CHECK(r > 0, "read");
            have += (size_t)r;
            if (!need && (e = memmem(buf, have, "\r\n\r\n", 4))) {
                char *cl = memmem(buf, (size_t)(e - buf), "Content-Length: ", 16);
                BENCH_CHECK(cl, "no length");
                need = (size_t)(e + 4 - buf) + (size_t)atol(cl + 16);
            }
            if (need && have >= need)
                break;
        }
        BENCH_CHECK(have == need, "extra bytes");
    }
    close(fd);
}

static void *blocking_thread(void *arg)
{
    blocking_run(*(long *)arg);
    return NULL;
}

static double blocking_concurrent(long n, int conns)
{
    pthread_t t[256];
    long per = n / conns;
    int64_t t0 = bench_ns();
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], NULL, blocking_thread, &per);
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    return (double)(per * conns) / ((double)(bench_ns() - t0) / 1e9);
}

/* ------------------------------------------------------------ tide client */

typedef struct tc_arg {
    tide_http_client *c;
    long n;
} tc_arg;

static int tc_task(void *arg)
{
    tc_arg *a = arg;
    char url[64], buf[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", g_port);
    for (long i = 0; i < a->n; i++) {
        tide_http_resp *r;
        ssize_t n, total = 0;
        int rc = tide_http_client_request(a->c, url, NULL, &r);
        if (rc < 0)
            return rc;
        while ((n = tide_http_resp_read(r, buf, sizeof buf)) > 0)
            total += n;
        tide_http_resp_free(r);
        if (n < 0 || total != 13)
            return -EBADMSG;
    }
    return 0;
}

typedef struct tc_run {
    long n;
    int conns;
    double rps;
    uint64_t connects, reuses;
} tc_run;

static int tc_main(void *arg)
{
    tc_run *x = arg;
    tide_http_client *c;
    tide_http_client_opts o;
    tide_task *t[256];
    tc_arg a[256];
    int64_t t0;
    int rc = 0;
    tide_http_client_opts_init(&o);
    o.max_per_host = (size_t)x->conns;
    o.max_idle_per_host = (size_t)x->conns;
    if (tide_http_client_new(&c, &o) < 0)
        return -ENOMEM;
    t0 = bench_ns();
    for (int i = 0; i < x->conns; i++) {
        a[i].c = c;
        a[i].n = x->n / x->conns;
        tide_create_task(&t[i], tc_task, &a[i]);
    }
    for (int i = 0; i < x->conns; i++) {
        int r = tide_await(t[i]);
        if (r < 0)
            rc = r;
    }
    x->rps = (double)(x->n / x->conns * x->conns) / ((double)(bench_ns() - t0) / 1e9);
    x->connects = tide_http_client_connects(c);
    x->reuses = tide_http_client_reuses(c);
    tide_http_client_free(c);
    return rc;
}

static double tide_rps(long n, int conns, tc_run *out)
{
    tc_run x = {n, conns, 0, 0, 0};
    int rc = tide_run(tc_main, &x);
    BENCH_CHECK(rc == 0, "tide client: %s", tide_strerror(rc));
    *out = x;
    return x.rps;
}

int main(int argc, char **argv)
{
    int pipefd[2];
    pid_t pid;
    double tb = 0, bb = 0, tc = 0, bc = 0;
    tc_run last;

    if (argc > 1)
        g_n = atol(argv[1]);
    if (argc > 2)
        g_conns = atoi(argv[2]);
    BENCH_CHECK(g_n > 0 && g_conns > 0 && g_conns <= 256, "usage: http_client [N] [CONNS]");
    BENCH_CHECK(pipe(pipefd) == 0, "pipe");
    pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(pipefd[0]);
        _exit(tide_run(srv_main, pipefd) < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    BENCH_CHECK(read(pipefd[0], &g_port, sizeof g_port) == sizeof g_port, "server port");
    close(pipefd[0]);

    for (int rep = 0; rep < 3; rep++) {
        int64_t t0 = bench_ns();
        double r;
        blocking_run(g_n);
        r = (double)g_n / ((double)(bench_ns() - t0) / 1e9);
        bb = r > bb ? r : bb;
        r = tide_rps(g_n, 1, &last);
        tb = r > tb ? r : tb;
        BENCH_CHECK(last.connects == 1 && last.reuses == (uint64_t)g_n - 1, "pool not reused");
    }
    printf("sequential, 1 connection, %ld GETs (best of 3):\n", g_n);
    printf("  blocking read/write client  %10.0f req/s\n", bb);
    printf("  tide_http_client            %10.0f req/s   ratio %.2f\n", tb, tb / bb);

    for (int rep = 0; rep < 3; rep++) {
        double r = blocking_concurrent(g_n, g_conns);
        bc = r > bc ? r : bc;
        r = tide_rps(g_n, g_conns, &last);
        tc = r > tc ? r : tc;
        BENCH_CHECK(last.connects <= (uint64_t)g_conns, "more connections than slots");
    }
    printf("concurrent, %d connections (tide: %d tasks, one thread; reference: %d threads):\n",
           g_conns, g_conns, g_conns);
    printf("  blocking threads            %10.0f req/s\n", bc);
    printf("  tide_http_client            %10.0f req/s   ratio %.2f\n", tc, tc / bc);

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 0;
}
