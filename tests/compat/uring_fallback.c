/*
 * Driver of cmake/check_uring_fallback.cmake: linked with src/poll_uring.c
 * compiled against headers that lack io_uring, it checks that what was
 * built is the compiled-out variant and that every entry point says so
 * with -ENOSYS (poll_epoll.c then stays on epoll).  Exit 0 when it did.
 */
#include "poll.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void no_event(void *ctx, void *tag, unsigned events)
{
    (void)ctx, (void)tag, (void)events;
}

int main(void)
{
    tide__poller p;
    int rc[4], i, bad = 0;

    memset(&p, 0, sizeof p);
    rc[0] = tide__uring_init(&p);
    rc[1] = tide__uring_add(&p, 0, &p);
    rc[2] = tide__uring_del(&p, 0);
    rc[3] = tide__uring_wait(&p, 0, no_event, NULL);
    tide__uring_free(&p);
    for (i = 0; i < 4; i++) {
        if (rc[i] != -ENOSYS) {
            fprintf(stderr, "uring_fallback: call %d returned %d, not -ENOSYS\n", i, rc[i]);
            bad = 1;
        }
    }
    return bad;
}
