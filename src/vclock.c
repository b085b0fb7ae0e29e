/*
 * Deterministic testing: virtual time and a seeded order of the ready batch.
 *
 * Virtual time is a loop clock (see clock.c) that reads loop->vclock.now.
 * It moves in steps, made at the start of an iteration when nothing is
 * ready (tide__vclock_step, called by loop.c's iterate):
 *   - up to the target of tide_vclock_advance, one timer deadline at a
 *     time, so the timers fire in order, each at its own time, and what they
 *     wake runs before the next step;
 *   - with autojump, to the next timer when the loop is blocked on timers
 *     alone.  tide owns every source of work, so "blocked" is exact: no
 *     ready or yielded node, no deferred work, no cross-thread post, no
 *     worker-pool job in flight (pool.pending) and no io ref (a task or a
 *     callback waiting on an fd, a subprocess wait, a signal handler).
 * While a step is possible the poll timeout is 0 (and loop.c skips the poll
 * when nothing waits on the poller); otherwise the poll waits for real
 * events only: a virtual deadline never becomes a real wait.
 *
 * The shuffle: with a seed, each iteration's ready batch is taken out of the
 * queue into an array and run in a Fisher-Yates order drawn from
 * xoshiro256** (seeded through splitmix64).  Nothing but loop.c's iterate
 * takes nodes off the ready queue, so the batch may be held in an array
 * while its nodes run.  Off, it costs loop.c one predictable branch.
 */
#include "tide_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- virtual time */

static int64_t virtual_ns(void *arg)
{
    return ((const tide__vclock *)arg)->now;
}

int tide_loop_set_vclock(tide_loop *loop, unsigned flags)
{
    if (!loop || (flags & ~TIDE_VCLOCK_AUTOJUMP))
        return -EINVAL;
    if (loop->running || loop->timers.heap.n || loop->tasks.n)
        return -EBUSY; /* deadlines already taken on the old clock */
    loop->clock.now_ns = virtual_ns;
    loop->clock.arg = &loop->vclock;
    loop->vclock.now = 0;
    loop->vclock.target = 0;
    loop->vclock.autojump = (flags & TIDE_VCLOCK_AUTOJUMP) != 0;
    loop->vclock.on = 1;
    loop->now = 0;
    return 0;
}

int64_t tide_vclock_now(const tide_loop *loop)
{
    if (!loop || !loop->vclock.on)
        return -EINVAL;
    return loop->vclock.now;
}

/* Nothing to run now: a step of virtual time may be made. */
static int idle(tide_loop *loop)
{
    return !loop->ready.n && !loop->yielded.n && !loop->deferred && !tide__xthread_pending(loop);
}

/* Nothing but timers is waited on (autojump's condition, with idle). */
static int timers_only(tide_loop *loop)
{
    return !loop->io_refs && !loop->pool.pending;
}

void tide__vclock_step(tide_loop *loop)
{
    tide__vclock *vc = &loop->vclock;
    int64_t next;

    if (!idle(loop))
        return;
    next = tide__timers_next(loop);
    if (next <= vc->now)
        return; /* due already: it fires in this iteration */
    if (vc->autojump && next != TIDE__NEVER && timers_only(loop) && next > vc->target)
        vc->target = next;
    if (vc->target > vc->now)
        vc->now = next < vc->target ? next : vc->target;
}

int64_t tide__vclock_timeout(tide_loop *loop)
{
    tide__vclock *vc = &loop->vclock;
    int64_t next = tide__timers_next(loop);

    if (next <= vc->now || vc->target > vc->now || loop->deferred)
        return 0;
    if (vc->autojump && next != TIDE__NEVER && timers_only(loop))
        return 0;
    return -1;
}

int tide_vclock_advance(tide_loop *loop, int64_t ns)
{
    tide__vclock *vc;
    tide_task *cur;
    int64_t target;

    if (!loop || !loop->vclock.on || ns < 0)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    vc = &loop->vclock;
    target = ns > TIDE__NEVER / 2 - vc->now ? TIDE__NEVER / 2 : vc->now + ns;
    if (target > vc->target)
        vc->target = target;
    cur = tide__current();
    if (!cur || cur->loop != loop)
        return 0;
    /* A task: wait for the end of the stretch, on a timer there, which
     * fires after those of the stretch that were armed before it. */
    TIDE__WAIT_ON(cur, TIDE_WAIT_SLEEP, NULL);
    return tide__suspend(cur, target, NULL, NULL, 0);
}

/* ------------------------------------------------------------- shuffle */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna), written from its definition. */
static uint64_t next_u64(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* A number in [0, n), n > 0, without modulo bias (rejection). */
static size_t below(uint64_t s[4], size_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;

    do
        x = next_u64(s);
    while (x >= lim);
    return (size_t)(x % n);
}

static void seed_state(tide__shuffle *sh, int64_t seed)
{
    uint64_t x = (uint64_t)seed;
    int i;

    for (i = 0; i < 4; i++)
        sh->s[i] = splitmix64(&x);
}

int tide_loop_set_seed(tide_loop *loop, int64_t seed)
{
    if (!loop)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    if (seed < 0) {
        loop->shuffle.on = 0;
        loop->shuffle.seed = -1;
        return 0;
    }
    seed_state(&loop->shuffle, seed);
    loop->shuffle.seed = seed;
    loop->shuffle.on = 1;
    return 0;
}

int64_t tide_loop_seed(const tide_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return loop->shuffle.on ? loop->shuffle.seed : -1;
}

void tide__shuffle_init(tide_loop *loop)
{
    const char *env = getenv("TIDE_SEED");
    char *end;
    long long v;

    loop->shuffle.seed = -1;
    if (!env || !*env)
        return;
    errno = 0;
    v = strtoll(env, &end, 0);
    if (errno || *end || v < 0) {
        fprintf(stderr, "tide: TIDE_SEED=%s is not a seed (an integer >= 0); ignored\n", env);
        return;
    }
    seed_state(&loop->shuffle, (int64_t)v);
    loop->shuffle.seed = (int64_t)v;
    loop->shuffle.on = 1;
}

void tide__shuffle_term(tide_loop *loop)
{
    tide__free(loop->shuffle.v);
    loop->shuffle.v = NULL;
    loop->shuffle.cap = 0;
}

static tide__runnable *pop(tide__runq *q)
{
    tide__runnable *r = q->head;

    q->head = r->next;
    if (!q->head)
        q->tailp = &q->head;
    q->n--;
    return r;
}

void tide__shuffle_run(tide_loop *loop, size_t n)
{
    tide__shuffle *sh = &loop->shuffle;
    size_t i;

    if (n > sh->cap) {
        size_t cap = sh->cap ? sh->cap : 64;
        tide__runnable **v;

        while (cap < n)
            cap *= 2;
        v = tide__realloc(sh->v, cap * sizeof *v);
        if (!v) { /* no memory for the array: this batch runs in FIFO order */
            while (n--) {
                tide__runnable *r = pop(&loop->ready);
                r->run(loop, r);
            }
            return;
        }
        sh->v = v;
        sh->cap = cap;
    }
    for (i = 0; i < n; i++)
        sh->v[i] = pop(&loop->ready);
    for (i = n; i > 1; i--) {
        size_t j = below(sh->s, i);
        tide__runnable *r = sh->v[i - 1];
        sh->v[i - 1] = sh->v[j];
        sh->v[j] = r;
    }
    for (i = 0; i < n; i++)
        sh->v[i]->run(loop, sh->v[i]);
}
