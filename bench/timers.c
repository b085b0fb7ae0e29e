/*
 * Timer churn: 1 000 000 tide_call_later with pseudo-random delays in
 * [0, 100) ms, every other one cancelled (tide_timer_cancel) right after it was
 * added; then the loop runs until the remaining 500 000 fired.  Reference in
 * the same run: the same scenario, same delays, with libuv (uv_timer_init +
 * uv_timer_start, uv_timer_stop for every other one, uv_run).
 *
 * The wall time includes waiting for the last deadline (~100 ms), during
 * which the loop sleeps in epoll_wait; so the rate is computed on the
 * process's CPU time (add + cancel + fire), and wall times are shown too.
 * Best of several repetitions, tide and libuv interleaved.  Loop creation
 * and teardown are outside the timing; libuv's uv_timer_t array is allocated
 * outside it (tide allocates its nodes itself, inside).
 */
#include "bench.h"
#include "tide.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef TIDE_HAVE_LIBUV
#include <uv.h>
#endif

#define N 1000000
#define MAX_DELAY_MS 100
#define REPS 3

static int64_t *g_delay;
static long g_fired;

typedef struct fig {
    double cpu, wall; /* seconds */
} fig;

static void keep_best(fig *best, fig f)
{
    best->cpu = bench_min(best->cpu, f.cpu);
    best->wall = bench_min(best->wall, f.wall);
}

static void on_tide(void *arg)
{
    (void)arg;
    g_fired++;
}

static fig run_tide(void)
{
    tide_loop *loop;
    tide_timer h;
    int64_t w0, c0;
    fig f;
    long i;
    int rc;

    rc = tide_loop_new(&loop);
    BENCH_CHECK(rc == 0, "tide_loop_new: %s", tide_strerror(rc));
    g_fired = 0;
    w0 = bench_ns();
    c0 = bench_cpu_ns();
    for (i = 0; i < N; i++) {
        rc = tide_call_later(loop, g_delay[i], on_tide, NULL, &h);
        BENCH_CHECK(rc == 0, "tide_call_later: %s", tide_strerror(rc));
        if (i & 1) {
            rc = tide_timer_cancel(&h);
            BENCH_CHECK(rc == 0, "tide_timer_cancel: %s", tide_strerror(rc));
        }
    }
    rc = tide_loop_run(loop);
    f.cpu = (double)(bench_cpu_ns() - c0) / 1e9;
    f.wall = (double)(bench_ns() - w0) / 1e9;
    BENCH_CHECK(rc == 0, "tide_loop_run: %s", tide_strerror(rc));
    BENCH_CHECK(g_fired == N / 2, "%ld timers fired, expected %d", g_fired, N / 2);
    tide_loop_free(loop);
    return f;
}

#ifdef TIDE_HAVE_LIBUV
static uv_timer_t *g_uv;

static void on_uv(uv_timer_t *t)
{
    (void)t;
    g_fired++;
}

static fig run_uv(void)
{
    uv_loop_t loop;
    int64_t w0, c0;
    fig f;
    long i;
    int rc;

    rc = uv_loop_init(&loop);
    BENCH_CHECK(rc == 0, "uv_loop_init: %s", uv_strerror(rc));
    g_fired = 0;
    w0 = bench_ns();
    c0 = bench_cpu_ns();
    uv_update_time(&loop);
    for (i = 0; i < N; i++) {
        uv_timer_init(&loop, &g_uv[i]);
        rc = uv_timer_start(&g_uv[i], on_uv, (uint64_t)g_delay[i], 0);
        BENCH_CHECK(rc == 0, "uv_timer_start: %s", uv_strerror(rc));
        if (i & 1)
            uv_timer_stop(&g_uv[i]);
    }
    rc = uv_run(&loop, UV_RUN_DEFAULT);
    f.cpu = (double)(bench_cpu_ns() - c0) / 1e9;
    f.wall = (double)(bench_ns() - w0) / 1e9;
    BENCH_CHECK(g_fired == N / 2, "%ld timers fired, expected %d", g_fired, N / 2);
    for (i = 0; i < N; i++)
        uv_close((uv_handle_t *)&g_uv[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    BENCH_CHECK(rc == 0, "uv_loop_close: %s", uv_strerror(rc));
    return f;
}
#endif

int main(void)
{
    fig tide = {1e30, 1e30};
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    long i;
    int r;

    g_delay = malloc(N * sizeof *g_delay);
    BENCH_CHECK(g_delay != NULL, "malloc");
    for (i = 0; i < N; i++)
        g_delay[i] = (int64_t)(bench_rand(&seed) % MAX_DELAY_MS);
#ifdef TIDE_HAVE_LIBUV
    fig uv = {1e30, 1e30};
    g_uv = calloc(N, sizeof *g_uv);
    BENCH_CHECK(g_uv != NULL, "calloc");
#endif

    for (r = 0; r < REPS; r++) {
        keep_best(&tide, run_tide());
#ifdef TIDE_HAVE_LIBUV
        keep_best(&uv, run_uv());
#endif
    }

    printf("timers: %d timers, delays in [0, %d) ms, every other one cancelled at once; "
           "rate = %d timers / CPU time, best of %d\n",
           N, MAX_DELAY_MS, N, REPS);
    printf("timers: tide call_later/cancel    %6.2f M timers/s (%5.0f ns/timer; CPU %.3f s, "
           "wall %.3f s)\n",
           N / tide.cpu / 1e6, tide.cpu * 1e9 / N, tide.cpu, tide.wall);
#ifdef TIDE_HAVE_LIBUV
    printf("timers: ref libuv timer_start/stop %6.2f M timers/s (%5.0f ns/timer; CPU %.3f s, "
           "wall %.3f s) -> tide/libuv rate = %.2f\n",
           N / uv.cpu / 1e6, uv.cpu * 1e9 / N, uv.cpu, uv.wall, uv.cpu / tide.cpu);
    free(g_uv);
#else
    printf("timers: ref libuv not measured (libuv not found at configure time)\n");
#endif
    free(g_delay);
    return 0;
}
