/*
 * The streams' buffer pool gives memory back.  Its smallest class (4 KiB)
 * keeps up to one free buffer per live stream (an io_uring stream queues
 * every write in one), more than its usual 2 MiB: once those streams are
 * closed, the surplus must be freed, not kept for the loop's life.  Its
 * own program: it counts tide's live 4 KiB allocations through
 * tide_replace_allocator, which must be in place before tide allocates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tide.h"
#include "util.h"
#include "net_util.h"

#define HDR 16
#define NSTREAMS 1200          /* more than the 512 4 KiB buffers the pool keeps */
#define POOL_KEEP_4K 512       /* stream.c: BUF_KEEP_BYTES / 4 KiB */

static long live4k; /* tide's live allocations of exactly 4 KiB (pooled buffers) */

static void *cnt_malloc(size_t n)
{
    size_t *h = malloc(n + HDR);
    if (!h)
        return NULL;
    h[0] = n;
    live4k += n == 4096;
    return (char *)h + HDR;
}

static void *cnt_calloc(size_t a, size_t b)
{
    void *p;
    if (b && a > SIZE_MAX / b)
        return NULL;
    p = cnt_malloc(a * b);
    if (p)
        memset(p, 0, a * b);
    return p;
}

static void *cnt_realloc(void *q, size_t n)
{
    size_t *h, old;
    if (!q)
        return cnt_malloc(n);
    h = (size_t *)((char *)q - HDR);
    old = h[0];
    h = realloc(h, n + HDR);
    if (!h)
        return NULL;
    live4k -= old == 4096;
    h[0] = n;
    live4k += n == 4096;
    return (char *)h + HDR;
}

static void cnt_free(void *q)
{
    size_t *h;
    if (!q)
        return;
    h = (size_t *)((char *)q - HDR);
    live4k -= h[0] == 4096;
    free(h);
}

typedef struct pool_run {
    long before, held, after;
    int bad;
} pool_run;

typedef struct one {
    tide_stream *s;
    int sv[2];
} one;

static int read_line(void *arg)
{
    one *o = arg;
    char b[8];
    /* "a" is there, the end of the line not yet: the stream holds its
     * 4 KiB read buffer (limit 4 KiB: the smallest class) while it waits. */
    return tide_stream_readline(o->s, b, sizeof b) == 2 && b[0] == 'a' && b[1] == '\n' ? 0 : -1;
}

static int pool_main(void *arg)
{
    pool_run *r = arg;
    static one os[NSTREAMS];
    static tide_task *ts[NSTREAMS];
    tide_stream_opts so;
    int i;

    tide_stream_opts_init(&so);
    so.limit = 4096;
    r->before = live4k;
    for (i = 0; i < NSTREAMS; i++) {
        if (tt_socketpair(os[i].sv, 0) < 0 || tide_stream_open(&os[i].s, os[i].sv[0], &so) < 0)
            return -1;
        if (write(os[i].sv[1], "a", 1) != 1 || tide_create_task(&ts[i], read_line, &os[i]) < 0)
            return -2;
    }
    if (tide_sleep(0) < 0) /* every reader holds its buffer now */
        return -3;
    r->held = live4k - r->before;
    for (i = 0; i < NSTREAMS; i++)
        if (write(os[i].sv[1], "\n", 1) != 1)
            return -4;
    for (i = 0; i < NSTREAMS; i++) /* each buffer goes back to the pool */
        r->bad += tide_await(ts[i]) != 0;
    for (i = 0; i < NSTREAMS; i++) {
        r->bad += tide_stream_close(os[i].s) != 0;
        close(os[i].sv[1]);
    }
    r->after = live4k - r->before; /* what the pool still keeps */
    return 0;
}

static void test_pool_surplus_freed_with_streams(void **state)
{
    struct rlimit rl;
    pool_run r;

    (void)state;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * NSTREAMS + 64) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 2 * NSTREAMS + 64)
            skip(); /* not enough fds for this many socketpairs */
    }
    memset(&r, 0, sizeof r);
    assert_int_equal(tide_run(pool_main, &r), 0);
    assert_int_equal(r.bad, 0);
    assert_true(r.held >= NSTREAMS); /* the streams held one each */
    assert_true(r.after <= POOL_KEEP_4K); /* the surplus went with the streams */
    assert_int_equal(live4k, 0);          /* and the loop's end freed the rest */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_surplus_freed_with_streams),
    };

    if (tide_replace_allocator(cnt_malloc, cnt_realloc, cnt_calloc, cnt_free) != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
