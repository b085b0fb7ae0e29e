/*
 * The loop's clock.
 *
 * Every deadline and every "now" of a loop is read through loop->clock, so
 * a program (or a test) can give a loop a clock of its own: a virtual clock
 * that moves only when told, a clock scaled or offset for a simulation.  The
 * default is CLOCK_MONOTONIC in nanoseconds.  Outside a loop run, tide_now()
 * reads the raw monotonic clock.
 */
#include "tide_int.h"

#include <errno.h>
#include <time.h>

int64_t tide__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t monotonic_ns(void *arg)
{
    (void)arg;
    return tide__clock_ns();
}

void tide__clock_init(tide_loop *loop)
{
    loop->clock.now_ns = monotonic_ns;
    loop->clock.arg = NULL;
    loop->now = tide__clock_ns();
}

int64_t tide__now_ns(void)
{
    tide_loop *loop = tide__tls_loop;
    return loop ? tide__loop_ns(loop) : tide__clock_ns();
}

int64_t tide_now(void)
{
    return tide__now_ns() / 1000000;
}

int64_t tide_now_ns(void)
{
    return tide__now_ns();
}

int tide_loop_set_clock(tide_loop *loop, int64_t (*now_ns)(void *arg), void *arg)
{
    if (!loop)
        return -EINVAL;
    if (loop->running || loop->timers.heap.n || loop->tasks.n)
        return -EBUSY; /* deadlines already taken on the old clock */
    loop->vclock.on = 0;
    if (now_ns) {
        loop->clock.now_ns = now_ns;
        loop->clock.arg = arg;
    } else {
        loop->clock.now_ns = monotonic_ns;
        loop->clock.arg = NULL;
    }
    loop->now = tide__loop_ns(loop);
    return 0;
}
