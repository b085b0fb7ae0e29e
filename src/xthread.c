/*
 * The cross-thread queue: the one way into a loop from another thread
 * (tide_call_soon_threadsafe, worker-pool results).  A mutex-protected FIFO
 * of intrusive nodes; the poster wakes the loop's poller when the queue goes
 * from empty to non-empty, and the loop takes the whole queue in one lock
 * per iteration (an atomic flag lets it skip the lock when nothing came).
 */
#include "tide_int.h"

#include <errno.h>

int tide__xthread_init(tide_loop *loop)
{
    int rc = pthread_mutex_init(&loop->xt.lock, NULL);
    if (rc)
        return -rc;
    loop->xt.head = NULL;
    loop->xt.tailp = &loop->xt.head;
    return 0;
}

void tide__xthread_term(tide_loop *loop)
{
    tide__tsnode *n, *nn;

    /* Taking the lock waits out a poster still inside tide__post. */
    pthread_mutex_lock(&loop->xt.lock);
    for (n = loop->xt.head; n; n = nn) {
        nn = n->next;
        if (n->heap)
            tide__free(n);
    }
    loop->xt.head = NULL;
    loop->xt.tailp = &loop->xt.head;
    pthread_mutex_unlock(&loop->xt.lock);
    pthread_mutex_destroy(&loop->xt.lock);
}

void tide__post(tide_loop *loop, tide__tsnode *n)
{
    int was_empty;

    n->next = NULL;
    pthread_mutex_lock(&loop->xt.lock);
    was_empty = loop->xt.head == NULL;
    *loop->xt.tailp = n;
    loop->xt.tailp = &n->next;
    __atomic_store_n(&loop->xt.pending, 1, __ATOMIC_SEQ_CST);
    /* Wake under the lock: once it is released the loop may see the node,
     * finish, and free itself with the poller (the loop's term takes the
     * lock before anything is freed).  A loop that is awake (busy in a
     * blocking run) needs no wake-up: before it sleeps it clears awake and
     * then reads pending (both seq_cst, so it sees our pending or we see
     * its awake = 0), as Seastar's cross-core queues do. */
    if (was_empty && !__atomic_load_n(&loop->xt.awake, __ATOMIC_SEQ_CST))
        tide__poller_wake(&loop->poller);
    pthread_mutex_unlock(&loop->xt.lock);
}

int tide_call_soon_threadsafe(tide_loop *loop, tide_cb cb, void *arg)
{
    tide__tsnode *n;

    if (!loop || !cb)
        return -EINVAL;
    n = tide__malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    n->cb = cb;
    n->arg = arg;
    n->heap = 1;
    tide__post(loop, n);
    return 0;
}

void tide__xthread_run(tide_loop *loop)
{
    tide__tsnode *n, *next;

    if (!tide__xthread_pending(loop))
        return;
    pthread_mutex_lock(&loop->xt.lock);
    n = loop->xt.head;
    loop->xt.head = NULL;
    loop->xt.tailp = &loop->xt.head;
    __atomic_store_n(&loop->xt.pending, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&loop->xt.lock);
    for (; n; n = next) {
        tide_cb cb = n->cb;
        void *arg = n->arg;
        next = n->next;
        if (n->heap)
            tide__free(n);
        cb(arg);
    }
}
