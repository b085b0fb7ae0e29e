/*
 * The cost of the wait-reason bookkeeping (docs/debugging.md, "Cost"), as a
 * workload whose instruction count load cannot change.  bench/wait_cost.sh
 * runs it under valgrind (callgrind counts every user-space instruction,
 * exactly) in builds with and without the bookkeeping and with and without
 * frame pointers, with two round counts, and prints instructions per round
 * trip and the ratios.  Run alone it prints ns per round trip (noisy).
 *
 *   wait_cost switch N        two tasks hand a tide_event back and forth N
 *                             times: a scheduler-level round trip (two
 *                             suspensions, two wakes, two loop steps);
 *   wait_cost yield N         one task yields N times (a step without a wait);
 *   wait_cost client PORT N   N ping-pongs of 64 bytes with an echo server
 *                             (bench/echo server-tide) on 127.0.0.1:PORT,
 *                             blocking sockets, then exits.
 * WAIT_COST_UNGUARDED=1 gives the two tasks of `switch` small unguarded
 * stacks (TIDE_STACK_UNGUARDED): what their canary check costs per switch.
 */
#include "bench.h"

#include <tide.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long g_rounds;
static tide_event g_ping, g_pong;

static int pinger(void *arg)
{
    (void)arg;
    for (long i = 0; i < g_rounds; i++) {
        tide_event_set(&g_ping);
        BENCH_CHECK(tide_event_wait(&g_pong) == 0, "wait pong");
        tide_event_clear(&g_pong);
    }
    return 0;
}

static int ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < g_rounds; i++) {
        BENCH_CHECK(tide_event_wait(&g_ping) == 0, "wait ping");
        tide_event_clear(&g_ping);
        tide_event_set(&g_pong);
    }
    return 0;
}

static int switch_main(void *arg)
{
    tide_task *t[2];
    tide_task_opts o;
    const char *e = getenv("WAIT_COST_UNGUARDED");
    (void)arg;
    tide_task_opts_init(&o);
    if (e && *e == '1')
        o.flags = TIDE_STACK_UNGUARDED;
    tide_event_init(&g_ping);
    tide_event_init(&g_pong);
    BENCH_CHECK(tide_create_task_ex(&t[1], NULL, ponger, NULL, &o) == 0, "create");
    BENCH_CHECK(tide_create_task_ex(&t[0], NULL, pinger, NULL, &o) == 0, "create");
    BENCH_CHECK(tide_gather(t, 2, NULL) == 0, "gather");
    return 0;
}

static int yield_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < g_rounds; i++)
        BENCH_CHECK(tide_sleep(0) == 0, "yield");
    return 0;
}

static int client(int port, long n)
{
    char buf[64], got[64];
    int fd = bench_connect_loopback(port);

    for (long i = 0; i < n; i++) {
        size_t off = 0;
        memset(buf, 'a' + (int)(i % 26), sizeof buf);
        BENCH_CHECK(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf, "write");
        while (off < sizeof got) {
            ssize_t r = read(fd, got + off, sizeof got - off);
            BENCH_CHECK(r > 0, "read");
            off += (size_t)r;
        }
        BENCH_CHECK(!memcmp(buf, got, sizeof buf), "echo mismatch");
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t t0;
    int rc;

    if (argc == 4 && !strcmp(argv[1], "client"))
        return client(atoi(argv[2]), atol(argv[3]));
    if (argc != 3 || (strcmp(argv[1], "switch") && strcmp(argv[1], "yield"))) {
        fprintf(stderr, "usage: %s switch|yield N | client PORT N\n", argv[0]);
        return 2;
    }
    g_rounds = atol(argv[2]);
    t0 = bench_ns();
    rc = tide_run(!strcmp(argv[1], "switch") ? switch_main : yield_main, NULL);
    BENCH_CHECK(rc == 0, "tide_run: %d", rc);
    printf("%s: %ld rounds, %.1f ns/round (wall clock; bench/wait_cost.sh counts "
           "instructions)\n",
           argv[1], g_rounds, (double)(bench_ns() - t0) / (double)(g_rounds ? g_rounds : 1));
    return 0;
}
