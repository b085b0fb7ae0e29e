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
    tide__uop op;
    char buf[1];
    int rc[9], i, bad = 0;

    memset(&p, 0, sizeof p);
    memset(&op, 0, sizeof op);
    rc[0] = tide__uring_init(&p);
    rc[1] = tide__uring_add(&p, 0, &p, 0);
    rc[2] = tide__uring_del(&p, 0);
    rc[3] = tide__uring_wait(&p, 0, no_event, NULL);
    rc[4] = tide__uring_watch(&p, 0);
    rc[5] = tide__uring_recv(&p, &op, 0, buf, sizeof buf, 0);
    rc[6] = tide__uring_send(&p, &op, 0, buf, sizeof buf, 0);
    rc[7] = tide__uring_sendmsg(&p, &op, 0, buf, 0);
    rc[8] = tide__uring_cancel(&p, &op);
    tide__uring_drain(&p);
    tide__uring_free(&p);
    if (tide__poller_ops(&p) != 0) {
        fprintf(stderr, "uring_fallback: the compiled-out poller says it takes operations\n");
        bad = 1;
    }
    for (i = 0; i < 9; i++) {
        if (rc[i] != -ENOSYS) {
            fprintf(stderr, "uring_fallback: call %d returned %d, not -ENOSYS\n", i, rc[i]);
            bad = 1;
        }
    }
    return bad;
}
