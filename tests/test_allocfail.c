/*
 * Allocation-failure sweep.
 *
 * A program that uses most of tide (tasks, a task group, futures with done
 * callbacks, call_soon / call_later / call_soon_threadsafe, a bounded queue,
 * a lock and an event, task-locals, tide_to_thread, and a TCP server with
 * clients exchanging lines over streams) runs under an allocator installed
 * with tide_replace_allocator that fails the Nth allocation call (malloc,
 * calloc and realloc all count; a failed realloc leaves the old block
 * alone, as C requires).  It is first run with no failure, to count the
 * allocations it makes (K); then for N = 1 .. K, each in a forked child
 * with a fresh tide_run, bounded by an alarm.  Every run must:
 *
 *  - end normally: no signal (crash, abort, sanitizer report, alarm = hang);
 *  - return 0 (the failure was absorbed: the program then checked that
 *    everything it asked for happened) or a negative errno the program got
 *    from tide: -ENOMEM, or, when the server says on stderr that it dropped
 *    a connection it could not set up, what its client then meets (see
 *    rc_allowed());
 *  - never report success for something that did not happen (a "lost"
 *    error: every call returned >= 0 but an effect is missing);
 *  - leave no live allocation and no open fd behind once tide_run returns.
 *
 * The allocator also catches double and foreign frees (a header with a
 * magic number), fills new blocks with junk (nobody may count on malloc
 * zeroing) and freed ones too, and always moves a block on realloc (a
 * caller still using the old pointer is caught).
 *
 * Two sweeps: "one" fails only the Nth call; "from" fails the Nth and every
 * later call, so the error and teardown paths that follow the first failure
 * must not need memory either.
 *
 * What outlives tide_run by design (process-lifetime state of the library),
 * none of it allocated through the replaceable allocator, so none excluded
 * from the live count: the worker pool's threads (pthread_create, started by
 * the first tide_to_thread in the process and never joined; their stacks
 * are glibc's), the pool's job queue and lock (static), the SIGSEGV/SIGBUS
 * handler installed by the first loop run (static sigaction), the stack
 * guard mode, and the task-local key counter.  test_no_failure_twice checks
 * it: two runs in one process (the second with the pool already running)
 * end with zero live blocks and make the same number of allocations.
 *
 * test_acceptor_backoff_without_memory is a targeted case the sweep cannot
 * reach with one program: the acceptor's accept and then its back-off sleep
 * both fail for memory.  test_shuffle_without_memory is another: the
 * seeded shuffle's array cannot grow (the sweep runs unseeded).  And
 * test_ws_takeover_without_memory: tide_ws_upgrade's takeover cannot put
 * the read-ahead back (test_ws_upgrade's sweep never gets there: a stream
 * buffer is always cached by then).
 *
 * The sweep covers every N up to DENSE_N, then samples the rest evenly
 * (deterministically) so that no sweep makes more than MAX_RUNS runs.
 * Environment: TIDE_ALLOCFAIL_FULL=1 sweeps every N; TIDE_ALLOCFAIL_N=k runs
 * only N = k (both modes) and shows its output; TIDE_ALLOCFAIL_VERBOSE=1
 * prints every run's outcome and where its allocation failed;
 * TIDE_ALLOCFAIL_TRACE=1 makes each run print the stack of every allocation
 * (shown with TIDE_ALLOCFAIL_N).  Stacks are offsets in the executable, for
 * addr2line -f -i -e test_allocfail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

#ifdef TT_ASAN
#define ALARM_S 20
#else
#define ALARM_S 10
#endif
#define DENSE_N 600
#define MAX_RUNS 1500
#define BT_DEPTH 10

/* ================================================== the test allocator */

#define BLK_MAGIC 0x616c6c6f63626c6bull /* "allocblk" */
#define BLK_DEAD 0x6465616462656566ull  /* "deadbeef" */

typedef struct blk {
    uint64_t magic;
    size_t size;
    uint64_t seq; /* which allocation call made it */
    struct blk *prev, *next;
    int nbt;
    void *bt[BT_DEPTH]; /* where it was made */
} blk;

/* The header keeps the user block aligned like malloc's. */
#define HDR ((sizeof(blk) + 15) & ~(size_t)15)

enum { MODE_NONE = 0, MODE_ONE, MODE_FROM };

static pthread_mutex_t a_mu = PTHREAD_MUTEX_INITIALIZER;
static blk a_live = {.prev = &a_live, .next = &a_live};
static uint64_t a_calls;               /* allocation calls so far */
static uint64_t a_fail_at, a_fail_end; /* calls [at, end] fail */
static int a_mode;
static uint64_t a_failed; /* calls that failed */
static size_t a_nlive, a_live_bytes;
static uint64_t a_sig;   /* hash of the sequence of call sites: same path? */
static int a_trace;      /* TIDE_ALLOCFAIL_TRACE: print every call's stack */
static uintptr_t a_base; /* where this executable is loaded (for addr2line) */
static int a_fail_nbt;   /* the stack of the first failed call */
static void *a_fail_bt[BT_DEPTH];

/* Counts a call made from the stack bt; 1 if it must fail.  Called with
 * a_mu held. */
static int a_decide(void *const *bt, int nbt, uint64_t *seq)
{
    uint64_t n = ++a_calls;

    *seq = n;
    for (int i = 1; i < nbt && i < 5; i++) /* the call site, not the size */
        a_sig = (a_sig ^ (uint64_t)(uintptr_t)bt[i]) * 1099511628211ull;
    if (a_trace) {
        fprintf(stderr, "allocation %" PRIu64 ":", n);
        for (int i = 1; i < nbt && i < 6; i++)
            fprintf(stderr, " %#" PRIxPTR, (uintptr_t)bt[i] - a_base - 1);
        fputc('\n', stderr);
    }
    if (a_mode == MODE_NONE || n < a_fail_at || n > a_fail_end)
        return 0;
    if (a_failed++ == 0) {
        a_fail_nbt = nbt;
        memcpy(a_fail_bt, bt, sizeof a_fail_bt);
    }
    return 1;
}

static void *a_track(blk *b, size_t size, uint64_t seq, void *const *bt, int nbt)
{
    b->magic = BLK_MAGIC;
    b->size = size;
    b->seq = seq;
    b->nbt = nbt;
    memcpy(b->bt, bt, sizeof b->bt);
    pthread_mutex_lock(&a_mu);
    b->next = a_live.next;
    b->prev = &a_live;
    a_live.next->prev = b;
    a_live.next = b;
    a_nlive++;
    a_live_bytes += size;
    pthread_mutex_unlock(&a_mu);
    return (char *)b + HDR;
}

static blk *a_untrack(void *p)
{
    blk *b = (blk *)(void *)((char *)p - HDR);

    if (b->magic != BLK_MAGIC) {
        fprintf(stderr, "allocfail: free/realloc of %p, not a live block (%s)\n", p,
                b->magic == BLK_DEAD ? "freed already" : "never allocated");
        abort();
    }
    pthread_mutex_lock(&a_mu);
    b->prev->next = b->next;
    b->next->prev = b->prev;
    a_nlive--;
    a_live_bytes -= b->size;
    pthread_mutex_unlock(&a_mu);
    b->magic = BLK_DEAD;
    return b;
}

static void *t_malloc(size_t size)
{
    void *bt[BT_DEPTH] = {0};
    int nbt = backtrace(bt, BT_DEPTH);
    uint64_t seq;
    blk *b;
    int fail;

    pthread_mutex_lock(&a_mu);
    fail = a_decide(bt, nbt, &seq);
    pthread_mutex_unlock(&a_mu);
    if (fail || size > SIZE_MAX - HDR)
        return NULL;
    b = malloc(HDR + size);
    if (!b)
        return NULL;
    memset((char *)b + HDR, 0xa5, size); /* nobody may count on zeroed memory */
    return a_track(b, size, seq, bt, nbt);
}

static void *t_calloc(size_t n, size_t size)
{
    void *bt[BT_DEPTH] = {0};
    int nbt = backtrace(bt, BT_DEPTH);
    uint64_t seq;
    blk *b;
    int fail;

    pthread_mutex_lock(&a_mu);
    fail = a_decide(bt, nbt, &seq);
    pthread_mutex_unlock(&a_mu);
    if (fail || (size && n > (SIZE_MAX - HDR) / size))
        return NULL;
    b = calloc(1, HDR + n * size);
    if (!b)
        return NULL;
    return a_track(b, n * size, seq, bt, nbt);
}

static void t_free(void *p)
{
    blk *b;

    if (!p)
        return;
    b = a_untrack(p);
    memset((char *)b + HDR, 0xdd, b->size); /* a use after free reads junk */
    free(b);
}

/* Always moves the block, so a caller still using the old pointer is caught
 * (ASan: use after free; otherwise it reads 0xdd).  A failed call leaves
 * the old block as it was. */
static void *t_realloc(void *p, size_t size)
{
    void *bt[BT_DEPTH] = {0};
    int nbt;
    uint64_t seq;
    blk *ob;
    void *np;
    int fail;

    if (!p)
        return t_malloc(size);
    ob = (blk *)(void *)((char *)p - HDR);
    if (ob->magic != BLK_MAGIC) {
        fprintf(stderr, "allocfail: realloc of %p, not a live block\n", p);
        abort();
    }
    nbt = backtrace(bt, BT_DEPTH);
    pthread_mutex_lock(&a_mu);
    fail = a_decide(bt, nbt, &seq);
    pthread_mutex_unlock(&a_mu);
    if (fail || size > SIZE_MAX - HDR)
        return NULL;
    {
        blk *b = malloc(HDR + size);
        if (!b)
            return NULL;
        memset((char *)b + HDR, 0xa5, size);
        memcpy((char *)b + HDR, p, ob->size < size ? ob->size : size);
        np = a_track(b, size, seq, bt, nbt);
    }
    t_free(p);
    return np;
}

static void a_arm(int mode, uint64_t at)
{
    pthread_mutex_lock(&a_mu);
    a_calls = 0;
    a_failed = 0;
    a_sig = 14695981039346656037ull;
    a_fail_nbt = 0;
    a_fail_at = at;
    a_fail_end = mode == MODE_ONE ? at : UINT64_MAX;
    a_mode = mode;
    pthread_mutex_unlock(&a_mu);
}

/* From inside a run: the next k calls fail. */
static void a_fail_next(uint64_t k)
{
    pthread_mutex_lock(&a_mu);
    a_fail_at = a_calls + 1;
    a_fail_end = a_calls + k;
    a_mode = MODE_ONE;
    pthread_mutex_unlock(&a_mu);
}

static void a_disarm(void)
{
    pthread_mutex_lock(&a_mu);
    a_mode = MODE_NONE;
    pthread_mutex_unlock(&a_mu);
}

/* ======================================================= the program */

#define NROUNDS 2
#define NCLIENTS 2
#define NLINES 3
#define NITEMS 6
#define NLOCKERS 2
#define NEVWAITERS 2
#define NTICKS 300 /* call_soon callbacks at once: more than one slab of nodes */
#define NFAN 80    /* tasks at once, most sleeping: the timer heap grows past 64 */
#define NFAN_QUICK 10
#define NPQ 40       /* items in the priority / LIFO queues: they grow */
#define BULK_LINES 4 /* long lines: read buffers grow, write buffers queue */
#define BULK_LEN 30000
#define LOST_RC (-EPROTO)         /* what main returns for a lost error */
#define PEER_GONE (-ECONNABORTED) /* a client met EOF before its reply */

typedef struct pool_arg {
    int n;
    long sum;
} pool_arg;

typedef struct prog {
    int round;
    tide_loop *loop;
    int err; /* the first error any call returned, 0 */
    char err_where[96];
    int lost; /* a check failed while every call had succeeded */
    char lost_what[160];
    /* callbacks of this round */
    int ncb, cb_expected, cb_never;
    tide_event cb_ev;
    tide_future *fut, *fut2; /* fut2 fails with -EXDEV */
    int fut_value_ok, fut2_seen;
    tide_group *outer;
    int nest_ok;
    tide_queue *q;
    int consumed;
    tide_lock lock;
    int in_cs, cs_done;
    tide_event ev;
    int ev_woken;
    pool_arg parg; /* outlives a cancelled tide_to_thread: global */
    int pool_ok;
    int fan_ok, pq_ok, wf_ok, ticks;
    int port;
    tide_stream *pre; /* main's connection, for client 1 */
    int clients_ok;
    int handlers_done;
    tide_local_key key;
} prog;

static prog P;

static int note_err(int rc, const char *where)
{
    if (rc < 0 && !P.err) {
        P.err = rc;
        snprintf(P.err_where, sizeof P.err_where, "%.95s", where);
    }
    return rc;
}

/* A check on an effect.  It only means a lost error if no call failed
 * before (after a failure, missing effects are expected). */
static void expect(int ok, const char *what)
{
    if (!ok && !P.err && !P.lost) {
        P.lost = 1;
        snprintf(P.lost_what, sizeof P.lost_what, "round %d: %s", P.round, what);
    }
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        int ck_rc_ = (int)(call);                                                                  \
        if (ck_rc_ < 0)                                                                            \
            return note_err(ck_rc_, #call);                                                        \
    } while (0)

/* ---- callbacks: args carry the round, so a late one of an abandoned
 * round (run or dropped by tide_loop_free) cannot be miscounted */

static void cb_count(int round)
{
    if (round != P.round)
        return;
    if (++P.ncb == P.cb_expected)
        (void)tide_event_set(&P.cb_ev);
}

static void on_soon(void *arg)
{
    cb_count((int)(intptr_t)arg);
}

static void on_later(void *arg)
{
    cb_count((int)(intptr_t)arg);
}

static void on_tick(void *arg)
{
    if ((int)(intptr_t)arg == P.round)
        P.ticks++;
    cb_count((int)(intptr_t)arg);
}

static void on_never(void *arg)
{
    if ((int)(intptr_t)arg == P.round)
        P.cb_never++;
}

static void on_done(tide_future *f, void *arg)
{
    void *v = NULL;
    int rc = tide_future_result(f, &v);

    if ((int)(intptr_t)arg != P.round)
        return;
    expect(rc == 0 && v == (void *)&P, "future done callback sees the result");
    cb_count((int)(intptr_t)arg);
}

static void on_done2(tide_future *f, void *arg)
{
    if ((int)(intptr_t)arg != P.round)
        return;
    expect(tide_future_result(f, NULL) == -EXDEV, "failed future's done callback");
    cb_count((int)(intptr_t)arg);
}

/* ---- group members */

static int producer(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= NITEMS; i++)
        CK(tide_queue_put(P.q, (void *)i));
    CK(tide_queue_join(P.q));
    expect(P.consumed == NITEMS, "queue join returned before every item was done");
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= NITEMS; i++) {
        void *v = NULL;
        CK(tide_queue_get(P.q, &v));
        expect(v == (void *)i, "queue items in order");
        if (i % 2)
            CK(tide_sleep(0));
        P.consumed++;
        CK(tide_queue_task_done(P.q));
    }
    return 0;
}

static int locker(void *arg)
{
    int id = (int)(intptr_t)arg;

    expect(tide_local_get(&P.key) == (void *)&P, "task-local inherited");
    for (int k = 0; k < 2; k++) {
        CK(tide_lock_acquire(&P.lock));
        expect(!P.in_cs, "lock is exclusive");
        P.in_cs = 1;
        int rc = tide_sleep(id == 0 && k == 0 ? 1 : 0); /* the other waits for the lock */
        P.in_cs = 0;
        int rrc = tide_lock_release(&P.lock);
        CK(rc);
        CK(rrc);
        P.cs_done++;
    }
    return 0;
}

static int ev_waiter(void *arg)
{
    (void)arg;
    CK(tide_event_wait(&P.ev));
    P.ev_woken++;
    return 0;
}

static int ev_setter(void *arg)
{
    (void)arg;
    CK(tide_sleep(0));
    CK(tide_local_set(&P.key, NULL)); /* its own copy: the others keep theirs */
    CK(tide_event_set(&P.ev));
    return 0;
}

static int fut_waiter(void *arg)
{
    void *v = NULL;

    (void)arg;
    CK(tide_future_await(P.fut, &v));
    P.fut_value_ok = v == (void *)&P;
    return 0;
}

static int fut_setter(void *arg)
{
    (void)arg;
    CK(tide_sleep(0));
    CK(tide_future_set_result(P.fut, &P));
    CK(tide_future_set_error(P.fut2, -EXDEV));
    return 0;
}

/* Two tasks await the future that fails; each then adds a done callback
 * to it, done already: scheduled at once. */
static int fut2_waiter(void *arg)
{
    int rc = tide_future_await(P.fut2, NULL);

    if (rc != -EXDEV) {
        expect(rc < 0, "a failed future's error reaches its awaiters");
        return note_err(rc < 0 ? rc : -EPROTO, "tide_future_await(fut2)");
    }
    CK(tide_future_add_done_callback(P.fut2, on_done2, (void *)(intptr_t)P.round));
    P.fut2_seen++;
    (void)arg;
    return 0;
}

/* A nested group; its members also spawn into the outer group while it is
 * being waited for. */
static int nest_leaf(void *arg)
{
    (void)arg;
    CK(tide_sleep(0));
    return 0;
}

static int nest_child(void *arg)
{
    (void)arg;
    CK(tide_group_spawn(P.outer, nest_leaf, NULL, NULL, NULL));
    CK(tide_sleep(0));
    return 0;
}

static int nester(void *arg)
{
    tide_group inner;
    int rc = 0, grc;

    (void)arg;
    CK(tide_group_init(&inner));
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = note_err(tide_group_spawn(&inner, nest_child, NULL, NULL, NULL), "nested spawn");
    if (rc < 0)
        (void)tide_group_cancel(&inner);
    grc = tide_group_wait(&inner);
    CK(rc);
    CK(grc);
    P.nest_ok = 1;
    return 0;
}

static int pool_fn(void *arg)
{
    pool_arg *a = arg;
    long s = 0;

    for (int i = 1; i <= a->n; i++)
        s += i;
    a->sum = s;
    return 42;
}

static int pool_user(void *arg)
{
    int rc;

    (void)arg;
    P.parg.n = 1000;
    P.parg.sum = 0;
    rc = tide_to_thread(pool_fn, &P.parg);
    CK(rc);
    expect(rc == 42 && P.parg.sum == 500500, "tide_to_thread result");
    P.pool_ok = 1;
    return 0;
}

static int sleeper(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg);
}

/* Many tasks of their own (not in the group): tide_wait, as_completed,
 * tide_gather.  NFAN_QUICK of them end after a yield; the others sleep
 * long (their timers make the heap grow) until they are cancelled.  No
 * short timed sleep here, so the allocations do not depend on timing. */
static int fan_body(tide_task **ts, int *n)
{
    tide_task_opts o;
    tide_as_completed *it;
    int rc;

    tide_task_opts_init(&o);
    o.stack_size = TIDE_MIN_STACK_SIZE;
    for (*n = 0; *n < NFAN; (*n)++)
        CK(tide_create_task_ex(&ts[*n], NULL, sleeper,
                               (void *)(intptr_t)(*n < NFAN_QUICK ? 0 : 60000), &o));
    rc = tide_wait(ts, NFAN, TIDE_FIRST_COMPLETED);
    CK(rc);
    expect(rc >= 1, "tide_wait: one ended");
    CK(tide_as_completed_new(&it, ts, NFAN_QUICK));
    for (int i = 0; i < NFAN_QUICK; i++) {
        tide_task *t = NULL;
        rc = tide_as_completed_next(it, &t);
        if (rc < 0) {
            tide_as_completed_free(it);
            return note_err(rc, "tide_as_completed_next");
        }
        expect(t && tide_task_get_state(t) == TIDE_TASK_DONE, "as_completed gives an ended task");
    }
    tide_as_completed_free(it);
    return 0;
}

static int fan(void *arg)
{
    int results[NFAN];
    tide_task *ts[NFAN];
    int n = 0, rc;

    (void)arg;
    rc = fan_body(ts, &n);
    for (int i = rc < 0 ? 0 : NFAN_QUICK; i < n; i++)
        (void)tide_cancel(ts[i]);
    (void)tide_gather(ts, (size_t)n, results); /* releases them all */
    CK(rc);
    for (int i = 0; i < n; i++) {
        if (results[i] != (i < NFAN_QUICK ? 0 : -ECANCELED))
            CK(results[i] < 0 ? results[i] : -EPROTO);
    }
    P.fan_ok = 1;
    return 0;
}

static int int_cmp(const void *a, const void *b)
{
    intptr_t x = (intptr_t)a, y = (intptr_t)b;
    return x < y ? -1 : x > y;
}

/* Priority and LIFO queues that grow. */
static int pq_fill(tide_queue *pq, tide_queue *lq)
{
    for (intptr_t i = 0; i < NPQ; i++) {
        CK(tide_queue_put(pq, (void *)((i * 17) % NPQ + 1)));
        CK(tide_queue_put_nowait(lq, (void *)(i + 1)));
    }
    for (intptr_t i = 0; i < NPQ; i++) {
        void *a = NULL, *b = NULL;
        CK(tide_queue_get(pq, &a));
        CK(tide_queue_get_nowait(lq, &b));
        expect(a == (void *)(i + 1), "priority queue order");
        expect(b == (void *)(NPQ - i), "LIFO queue order");
    }
    return 0;
}

static int pq_user(void *arg)
{
    tide_queue_opts o;
    tide_queue *pq = NULL, *lq = NULL;
    int rc;

    (void)arg;
    tide_queue_opts_init(&o);
    o.kind = TIDE_QUEUE_PRIORITY;
    o.cmp = int_cmp;
    rc = tide_queue_new(&pq, &o);
    if (rc == 0) {
        o.kind = TIDE_QUEUE_LIFO;
        rc = tide_queue_new(&lq, &o);
    }
    if (rc == 0)
        rc = pq_fill(pq, lq);
    tide_queue_free(pq);
    tide_queue_free(lq);
    CK(rc);
    P.pq_ok = 1;
    return 0;
}

/* tide_wait_for: a quick task's result, a slow one's timeout. */
static int quick(void *arg)
{
    (void)arg;
    CK(tide_sleep(0));
    return 7;
}

static int wf_user(void *arg)
{
    tide_task *t;
    int rc;

    (void)arg;
    CK(tide_create_task(&t, quick, NULL));
    rc = tide_wait_for(t, 10000);
    CK(rc);
    expect(rc == 7, "tide_wait_for result");
    CK(tide_create_task(&t, sleeper, (void *)(intptr_t)10000));
    rc = tide_wait_for(t, 2);
    if (rc != -ETIMEDOUT)
        CK(rc);
    expect(rc == -ETIMEDOUT, "tide_wait_for times out");
    P.wf_ok = 1;
    return 0;
}

/* ---- the server and its clients */

static int handler(tide_stream *s, void *arg)
{
    char line[BULK_LEN + 64];

    (void)arg;
    for (;;) {
        ssize_t n = tide_stream_readline(s, line, sizeof line);
        if (n == 0)
            break; /* the client is done */
        if (n < 0)
            return note_err((int)n, "handler: tide_stream_readline");
        for (ssize_t i = 0; i < n; i++)
            line[i] = (char)toupper((unsigned char)line[i]);
        if (n > 1 && line[0] == 'B')
            CK(tide_sleep(0)); /* let the bulk client's writes queue up */
        ssize_t w = tide_stream_write(s, line, (size_t)n);
        if (w < 0)
            return note_err((int)w, "handler: tide_stream_write");
        expect(w == n, "tide_stream_write wrote everything it returned");
        CK(tide_stream_drain(s));
    }
    P.handlers_done++;
    return 0;
}

/* Reads the reply to a line of len bytes three ways: readline,
 * readexactly, readline under a timeout scope.  0 at EOF. */
static ssize_t read_reply(tide_stream *s, int how, char *in, size_t cap, size_t len)
{
    tide_scope sc;
    ssize_t n;
    int end;

    if (how == 0)
        return tide_stream_readline(s, in, cap);
    if (how == 1)
        return tide_stream_readexactly(s, in, len);
    CK(tide_timeout_begin(&sc, 10000));
    n = tide_stream_readline(s, in, cap);
    end = tide_timeout_end(&sc);
    return n < 0 ? n : end < 0 ? end : n;
}

static int client_talk(tide_stream *s, int id)
{
    char out[64], want[64], in[128];

    for (int i = 0; i < NLINES; i++) {
        int len =
            snprintf(out, sizeof out, "hello %d from client %d of round %d\n", i, id, P.round);
        ssize_t w = tide_stream_write(s, out, (size_t)len);
        if (w < 0)
            return note_err((int)w, "client: tide_stream_write");
        expect(w == len, "tide_stream_write wrote everything it returned");
        CK(i == 1 ? tide_stream_flush(s) : tide_stream_drain(s));
        ssize_t n = read_reply(s, i % 3, in, sizeof in, (size_t)len);
        if (n < 0)
            return note_err((int)n, "client: reading the reply");
        if (n < len && (i % 3 == 1 || n == 0)) /* the server dropped us */
            return note_err(PEER_GONE, "client: EOF before the reply");
        for (int k = 0; k < len; k++)
            want[k] = (char)toupper((unsigned char)out[k]);
        expect(n == len && memcmp(in, want, (size_t)len) == 0, "the echoed line");
    }
    return 0;
}

static int client(void *arg)
{
    tide_stream *s;
    int rc, crc;

    if (arg) { /* client 1 talks over the connection main made */
        CK(client_talk(P.pre, 1));
        P.clients_ok++;
        return 0;
    }
    CK(tide_open_connection("127.0.0.1", P.port, &s));
    rc = client_talk(s, 0);
    crc = tide_stream_close(s);
    CK(rc);
    CK(crc);
    P.clients_ok++;
    return 0;
}

/* Long lines, all written before the first is read back: the read buffers
 * grow to hold them, and with a small socket send buffer the writes queue
 * in the stream and drain waits. */
static char bulk_out[2 * BULK_LEN], bulk_in[BULK_LEN + 64];

static int bulk_talk(tide_stream *s)
{
    int sz = 4096;

    CK(setsockopt(tide_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz) < 0 ? -errno : 0);
    memset(bulk_out, 'b', sizeof bulk_out);
    bulk_out[BULK_LEN - 1] = bulk_out[2 * BULK_LEN - 1] = '\n';
    /* Two lines in one call (the kernel takes part, the stream queues the
     * rest), then one line per call (queued behind). */
    for (int i = 0; i < BULK_LINES; i += i ? 1 : 2) {
        size_t len = i ? BULK_LEN : 2 * BULK_LEN;
        ssize_t w = tide_stream_write(s, i ? bulk_out + BULK_LEN : bulk_out, len);
        if (w < 0)
            return note_err((int)w, "bulk: tide_stream_write");
        expect(w == (ssize_t)len, "tide_stream_write wrote everything it returned");
    }
    CK(tide_stream_drain(s));
    for (int i = 0; i < BULK_LINES; i++) {
        ssize_t n = tide_stream_readline(s, bulk_in, sizeof bulk_in);
        if (n < 0)
            return note_err((int)n, "bulk: tide_stream_readline");
        if (n == 0)
            return note_err(PEER_GONE, "bulk: EOF before the reply");
        expect(n == BULK_LEN && bulk_in[0] == 'B' && bulk_in[BULK_LEN - 2] == 'B',
               "the echoed long line");
    }
    return 0;
}

static int bulk_client(void *arg)
{
    tide_stream *s;
    int rc, crc;

    (void)arg;
    CK(tide_open_connection("127.0.0.1", P.port, &s));
    rc = bulk_talk(s);
    crc = tide_stream_close(s);
    CK(rc);
    CK(crc);
    P.clients_ok++;
    return 0;
}

/* Detached, waiting for an event nobody sets: tide_run's ending cancels
 * it.  One per round, so the loop is freed with tasks still alive. */
static tide_event never_ev;

static int background(void *arg)
{
    (void)arg;
    return tide_event_wait(&never_ev) == -ECANCELED ? 0 : -EPROTO;
}

/* ---- one round */

static int spawn_all(tide_group *g)
{
    static const struct {
        tide_fn fn;
        int n;
        size_t stack;
    } members[] = {
        {producer, 1, 0},
        {consumer, 1, 64 * 1024},
        {locker, NLOCKERS, 32 * 1024},
        {ev_waiter, NEVWAITERS, 0},
        {ev_setter, 1, 0},
        {fut_waiter, 1, 0},
        {fut_setter, 1, 0},
        {pool_user, 1, 0},
        {client, NCLIENTS, 128 * 1024},
        {bulk_client, 1, 0},
        {fan, 1, 0},
        {pq_user, 1, 0},
        {wf_user, 1, 0},
        {fut2_waiter, 2, 0},
        {nester, 1, 0},
    };
    for (size_t m = 0; m < sizeof members / sizeof members[0]; m++) {
        for (int i = 0; i < members[m].n; i++) {
            tide_task_opts o;
            tide_task_opts_init(&o);
            o.stack_size = members[m].stack;
            CK(tide_group_spawn(g, members[m].fn, (void *)(intptr_t)i, &o, NULL));
        }
    }
    return 0;
}

static int round_body(tide_group *g, tide_server **srv)
{
    void *r = (void *)(intptr_t)P.round;
    tide_queue_opts qo;
    tide_server_opts so;
    tide_timer h;
    tide_task *cur = tide_current_task();
    tide_task_info info;

    CK(tide_group_init(g));
    CK(tide_future_new(&P.fut));
    CK(tide_future_new_on(&P.fut2, P.loop));
    CK(tide_future_add_done_callback(P.fut, on_done, r));
    CK(tide_future_add_done_callback(P.fut, on_done, r));
    CK(tide_call_soon(P.loop, on_soon, r));
    CK(tide_call_later(P.loop, 1, on_later, r, NULL));
    CK(tide_call_later(P.loop, 60000, on_never, r, &h));
    CK(tide_timer_cancel(&h));
    CK(tide_call_soon_threadsafe(P.loop, on_soon, r));
    for (int i = 0; i < NTICKS; i++)
        CK(tide_call_soon(P.loop, on_tick, r));
    tide_queue_opts_init(&qo);
    qo.maxsize = 2;
    CK(tide_queue_new(&P.q, &qo));
    CK(tide_lock_init(&P.lock));
    CK(tide_event_init(&P.ev));
    CK(tide_local_set(&P.key, &P));
    {
        tide_task *bg;
        CK(tide_create_task(&bg, background, NULL));
        CK(tide_detach(bg));
    }
    tide_server_opts_init(&so);
    so.max_connections = 2; /* three at once: the acceptor waits for a slot */
    CK(tide_start_server("127.0.0.1", 0, handler, NULL, &so, srv));
    CK(P.port = tide_server_port(*srv));
    expect(tide_task_list(NULL, &info, 1) >= 1 && info.task == cur, "the main task is listed");
    /* "localhost" needs a lookup, on the pool: done here, while the other
     * tasks wait, so the order of allocations does not depend on when the
     * lookup comes back. */
    CK(tide_open_connection("localhost", P.port, &P.pre));
    return spawn_all(g);
}

static int run_round(void)
{
    tide_group g = {0};
    tide_server *srv = NULL;
    int rc, grc;

    P.ncb = P.cb_never = P.fut_value_ok = P.consumed = 0;
    P.in_cs = P.cs_done = P.ev_woken = P.pool_ok = 0;
    P.clients_ok = P.handlers_done = 0;
    P.fan_ok = P.pq_ok = P.wf_ok = P.ticks = 0;
    /* 2 done callbacks, call_soon, call_later, threadsafe, the ticks, 2 on
     * fut2 */
    P.cb_expected = 5 + NTICKS + 2;
    P.fut = P.fut2 = NULL;
    P.fut2_seen = P.nest_ok = 0;
    P.outer = &g;
    P.q = NULL;
    P.pre = NULL;
    (void)tide_event_init(&P.cb_ev);

    rc = round_body(&g, &srv);
    if (g.loop) { /* every group ends with tide_group_wait */
        if (rc < 0)
            (void)tide_group_cancel(&g);
        grc = tide_group_wait(&g);
        if (grc < 0 && rc == 0)
            rc = note_err(grc, "tide_group_wait");
    }
    if (P.pre) {
        int crc = tide_stream_close(P.pre);
        if (crc < 0 && rc == 0)
            rc = note_err(crc, "tide_stream_close(main's)");
    }
    if (srv) {
        int src = tide_server_close(srv, rc < 0 ? TIDE_SERVER_CANCEL : TIDE_SERVER_WAIT);
        if (src < 0 && rc == 0)
            rc = note_err(src, "tide_server_close");
    }
    if (rc == 0) {
        /* Every callback was scheduled without error: each must run. */
        tide_scope sc;
        int brc = tide_timeout_begin(&sc, 5000);
        int wrc = brc < 0 ? brc : tide_event_wait(&P.cb_ev);
        int trc = brc < 0 ? brc : tide_timeout_end(&sc);
        if (wrc < 0 && trc == -ETIMEDOUT)
            expect(0, "every scheduled callback ran");
        else if (wrc < 0)
            rc = note_err(wrc, "tide_event_wait(callbacks)");
    }
    if (rc == 0) {
        expect(P.ncb == P.cb_expected && P.cb_never == 0, "callback counts");
        expect(P.fut_value_ok, "future value");
        expect(P.consumed == NITEMS, "queue items consumed");
        expect(P.cs_done == 2 * NLOCKERS, "lock sections");
        expect(P.ev_woken == NEVWAITERS, "event waiters woken");
        expect(P.pool_ok, "tide_to_thread ran");
        expect(P.clients_ok == NCLIENTS + 1 && P.handlers_done == NCLIENTS + 1,
               "every client served");
        expect(P.ticks == NTICKS, "every tick ran");
        expect(P.fan_ok && P.pq_ok && P.wf_ok, "fan, queues, wait_for");
        expect(P.fut2_seen == 2 && P.nest_ok, "failed future, nested group");
        expect(tide_queue_size(P.q) == 0, "queue empty");
    }
    tide_queue_free(P.q);
    tide_future_free(P.fut);
    tide_future_free(P.fut2);
    P.outer = NULL;
    return rc;
}

static int prog_main(void *arg)
{
    int rc = 0;

    (void)arg;
    P.loop = tide_loop_current();
    for (P.round = 1; P.round <= NROUNDS && rc == 0; P.round++)
        rc = run_round();
    P.round = 0;
    if (P.err)
        return P.err;
    return P.lost ? LOST_RC : rc;
}

/* ============================================ acceptor out of memory */

/* The acceptor's first accept fails for memory (the listening fd's entry
 * in the fd table) and so does the timer of its back-off sleep (the timer
 * heap is full: 64 sleeping tasks): it must go on accepting, not end as if
 * cancelled and leave the server deaf. */
#define BO_SLEEPERS 64

static int bo_sleeper(void *arg)
{
    (void)arg;
    return tide_sleep(60000) == -ECANCELED ? 0 : -EPROTO;
}

static int bo_talk(tide_server *srv, int *failed)
{
    tide_stream *s;
    tide_scope sc;
    char line[64];
    ssize_t n;
    int rc, crc;

    a_fail_next(2);
    rc = tide_sleep(0); /* the acceptor runs */
    pthread_mutex_lock(&a_mu);
    *failed = (int)a_failed;
    pthread_mutex_unlock(&a_mu);
    a_disarm();
    CK(rc);
    CK(tide_open_connection("127.0.0.1", tide_server_port(srv), &s));
    n = tide_stream_write(s, "ping\n", 5);
    rc = n < 0 ? (int)n : tide_stream_drain(s);
    if (rc == 0) {
        rc = tide_timeout_begin(&sc, 3000);
        n = rc < 0 ? rc : tide_stream_readline(s, line, sizeof line);
        if (rc == 0)
            rc = tide_timeout_end(&sc);
        if (rc == 0)
            rc = n < 0 ? (int)n : n == 5 && memcmp(line, "PING\n", 5) == 0 ? 0 : -EPROTO;
    }
    crc = tide_stream_close(s);
    CK(rc);
    return crc;
}

static int backoff_main(void *arg)
{
    tide_task *ts[BO_SLEEPERS];
    tide_server *srv = NULL;
    int n, rc = 0, failed = 0;

    (void)arg;
    for (n = 0; n < BO_SLEEPERS && rc == 0; n++)
        rc = tide_create_task(&ts[n], bo_sleeper, NULL);
    if (rc < 0)
        n--;
    if (rc == 0)
        rc = tide_sleep(0); /* they arm their timers: the heap is full */
    if (rc == 0)
        rc = tide_start_server("127.0.0.1", 0, handler, NULL, NULL, &srv);
    if (rc == 0)
        rc = bo_talk(srv, &failed);
    if (srv) {
        int src = tide_server_close(srv, TIDE_SERVER_CANCEL);
        if (rc == 0)
            rc = src;
    }
    for (int i = 0; i < n; i++)
        (void)tide_cancel(ts[i]);
    int grc = tide_gather(ts, (size_t)n, NULL);
    if (rc == 0)
        rc = grc;
    if (rc == 0 && failed != 2)
        rc = -ENOENT; /* the scenario did not happen: the test needs updating */
    return rc;
}

/* ============================== a WebSocket upgrade's takeover out of memory */

/* tide_ws_upgrade takes the connection over from the HTTP server, which
 * puts back the bytes it read past the head (here a byte sent in the same
 * write): the stream needs a buffer for them.  The client is a raw fd and
 * the server's stream read the head straight into the server's buffer, so
 * no stream buffer is cached and the put-back allocates.  When that fails
 * the upgrade returns -ENOMEM and leaves the exchange as it was: the
 * handler can still answer, and the client gets that answer, not a 101. */
#define WSN_REQ                                                                                 \
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"             \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"         \
    "X"

typedef struct wsn {
    int upgrade_rc, ws_null, respond_rc;
    uint64_t failed;
} wsn;

static int wsn_handler(tide_http_exchange *x, void *arg)
{
    static const tide_http_header ct = {"Content-Type", 12, "text/plain", 10};
    wsn *w = arg;
    tide_ws *ws = (tide_ws *)(void *)w; /* must be set to NULL */

    a_fail_next(1); /* the put-back's buffer: the upgrade's first allocation */
    w->upgrade_rc = tide_ws_upgrade(x, NULL, &ws);
    pthread_mutex_lock(&a_mu);
    w->failed = a_failed;
    pthread_mutex_unlock(&a_mu);
    a_disarm();
    w->ws_null = ws == NULL;
    if (w->upgrade_rc == 0)
        return tide_ws_close(ws, TIDE_WS_CLOSE_NORMAL, NULL);
    /* Not taken over: still the server's exchange. */
    w->respond_rc = tide_http_respond(x, 503, &ct, 1, "later", 5);
    return 0;
}

static int wsnomem_main(void *arg)
{
    struct sockaddr_in a;
    tide_http_server *srv;
    wsn w = {1, 0, 1, 0};
    char buf[512];
    size_t got = 0;
    ssize_t n;
    int fd, rc, crc;

    (void)arg;
    CK(tide_http_serve("127.0.0.1", 0, wsn_handler, &w, NULL, &srv));
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)tide_http_server_port(srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    rc = fd < 0 ? -errno : tide_connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc == 0) {
        n = tide_write(fd, WSN_REQ, sizeof WSN_REQ - 1);
        rc = n < 0 ? (int)n : 0;
    }
    while (rc == 0 && got < sizeof buf - 1) { /* until the server closes */
        n = tide_read(fd, buf + got, sizeof buf - 1 - got);
        if (n < 0)
            rc = (int)n;
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\nlater"))
            break;
    }
    buf[got] = 0;
    if (fd >= 0)
        tide_close(fd);
    crc = tide_http_server_close(srv, TIDE_SERVER_CANCEL);
    CK(rc);
    CK(crc);
    if (w.failed != 1 || w.upgrade_rc != -ENOMEM)
        return -ENOENT; /* the scenario did not happen: the test needs updating */
    if (!w.ws_null || w.respond_rc != 0 || strncmp(buf, "HTTP/1.1 503", 12) != 0 ||
        !strstr(buf, "\r\n\r\nlater"))
        return -EPROTO;
    return 0;
}

/* ================================ the seeded shuffle out of memory */

/* With a seed, a batch of ready nodes larger than the shuffle's array
 * grows it (vclock.c); the sweep's program runs unseeded and never gets
 * there.  When that realloc fails, the batch must still run, all of it,
 * once each, in FIFO order; the next batch, with memory back, is
 * shuffled. */
#define SH_N 100

static int sh_order[2 * SH_N], sh_count;

static int sh_task(void *arg)
{
    sh_order[sh_count++] = (int)(intptr_t)arg;
    return 0;
}

/* Runs SH_N tasks numbered from base as one ready batch (with main last),
 * the shuffle's allocation failing when fail is set; *failed: how many
 * allocations failed. */
static int sh_batch(int base, int fail, int *failed)
{
    tide_task *ts[SH_N];
    int i, rc = 0;

    for (i = 0; i < SH_N && rc == 0; i++)
        rc = tide_create_task(&ts[i], sh_task, (void *)(intptr_t)(base + i));
    if (rc < 0) {
        i--;
    } else {
        if (fail)
            a_fail_next(1);
        rc = tide_sleep(0); /* the batch: the SH_N tasks, then main */
        pthread_mutex_lock(&a_mu);
        *failed = (int)a_failed;
        pthread_mutex_unlock(&a_mu);
        a_disarm();
    }
    int grc = tide_gather(ts, (size_t)i, NULL);
    return rc < 0 ? rc : grc;
}

static int shuffle_main(void *arg)
{
    int i, failed = 0, fifo = 1, seen[SH_N] = {0};

    (void)arg;
    sh_count = 0;
    CK(tide_loop_set_seed(tide_loop_current(), 7));
    CK(sh_batch(0, 1, &failed));
    if (failed != 1 || sh_count != SH_N)
        return -ENOENT; /* the scenario did not happen: the test needs updating */
    for (i = 0; i < SH_N; i++)
        if (sh_order[i] != i)
            return -EPROTO; /* not FIFO: then the array was there */
    CK(sh_batch(SH_N, 0, &failed));
    if (sh_count != 2 * SH_N)
        return -EPROTO;
    for (i = SH_N; i < 2 * SH_N; i++) {
        int k = sh_order[i] - SH_N;
        if (k < 0 || k >= SH_N || seen[k]++)
            return -EPROTO; /* lost or ran twice */
        fifo &= k == i - SH_N;
    }
    return fifo ? -EPROTO : 0; /* the seed shuffles 100 nodes */
}

/* ============================================================ the runs */

typedef struct result {
    int completed; /* the child wrote this */
    int rc;        /* tide_run's result */
    int lost;
    char lost_what[160];
    char err_where[96];
    uint64_t calls, failed, sig;
    size_t nlive, live_bytes;
    uint64_t leak_seq[4];
    size_t leak_size[4];
    int fd_delta;
    int fail_nbt;
    void *fail_bt[BT_DEPTH];
    int leak_nbt;
    void *leak_bt[BT_DEPTH];
    /* test_no_failure_twice: the second run in the same process */
    int rc2;
    uint64_t calls2;
    size_t nlive2;
} result;

static void collect_leaks(result *r)
{
    int i = 0;

    pthread_mutex_lock(&a_mu);
    r->nlive = a_nlive;
    r->live_bytes = a_live_bytes;
    for (blk *b = a_live.prev; b != &a_live && i < 4; b = b->prev, i++) {
        r->leak_seq[i] = b->seq;
        r->leak_size[i] = b->size;
        if (i == 0) {
            r->leak_nbt = b->nbt;
            memcpy(r->leak_bt, b->bt, sizeof r->leak_bt);
        }
    }
    pthread_mutex_unlock(&a_mu);
}

/* One run, in this (child) process. */
static void run_once(tide_fn prog, int mode, uint64_t at, result *r)
{
    int fds0 = tt_count_fds();

    memset(&P, 0, sizeof P);
    (void)tide_event_init(&never_ev);
    if (tide_local_key_init(&P.key) < 0)
        abort();
    a_arm(mode, at);
    r->rc = tide_run(prog, NULL);
    a_disarm();
    r->calls = a_calls;
    r->failed = a_failed;
    r->sig = a_sig;
    r->fail_nbt = a_fail_nbt;
    memcpy(r->fail_bt, a_fail_bt, sizeof r->fail_bt);
    r->lost = P.lost;
    memcpy(r->lost_what, P.lost_what, sizeof r->lost_what);
    memcpy(r->err_where, P.err_where, sizeof r->err_where);
    collect_leaks(r);
    r->fd_delta = tt_count_fds() - fds0;
}

/* The fault handlers the process started with (the sanitizers'), saved
 * before cmocka installs its own. */
static const int fault_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT};
static struct sigaction fault_sa[sizeof fault_sigs / sizeof fault_sigs[0]];

static void save_signals(void)
{
    for (size_t i = 0; i < sizeof fault_sigs / sizeof fault_sigs[0]; i++)
        sigaction(fault_sigs[i], NULL, &fault_sa[i]);
}

static void restore_signals(void)
{
    for (size_t i = 0; i < sizeof fault_sigs / sizeof fault_sigs[0]; i++)
        sigaction(fault_sigs[i], &fault_sa[i], NULL);
}

/* Runs one N in a child.  Returns 0 and fills *r, or the wait status of a
 * child that did not end normally (crash, abort, sanitizer, alarm), with
 * its stderr in errbuf. */
static int run_child(tide_fn prog, int mode, uint64_t at, int twice, result *r, char *errbuf,
                     size_t errcap)
{
    int p[2], status;
    FILE *err = tmpfile();
    pid_t pid;
    ssize_t got = 0;

    assert_non_null(err);
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        result res;
        memset(&res, 0, sizeof res);
        close(p[0]);
        dup2(fileno(err), 2);
        restore_signals(); /* a crash must kill the child, not longjmp into cmocka */
        alarm(ALARM_S);
        run_once(prog, mode, at, &res);
        if (twice) {
            result r2;
            memset(&r2, 0, sizeof r2);
            run_once(prog, mode, at, &r2);
            res.rc2 = r2.rc;
            res.calls2 = r2.calls;
            res.nlive2 = r2.nlive;
        }
        res.completed = 1;
        if (write(p[1], &res, sizeof res) != (ssize_t)sizeof res)
            _exit(3);
        _exit(0); /* no atexit work (LeakSanitizer) in each child */
    }
    close(p[1]);
    memset(r, 0, sizeof *r);
    while (got < (ssize_t)sizeof *r) {
        ssize_t n = read(p[0], (char *)r + got, sizeof *r - (size_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += n;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    errbuf[0] = '\0';
    rewind(err);
    size_t n = fread(errbuf, 1, errcap - 1, err);
    errbuf[n] = '\0';
    fclose(err);
    if (got == (ssize_t)sizeof *r && r->completed && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return status ? status : -1;
}

/* Errors a run may end with when N failed.  -ENOMEM is what tide must
 * report.  The server's acceptor drops a connection it cannot set up
 * (start_conn out of memory), by design, and says so on stderr: its client
 * then meets EOF (PEER_GONE), -ECONNRESET or -EPIPE. */
static int rc_allowed(int rc, const char *errbuf)
{
    if (rc == 0 || rc == -ENOMEM)
        return 1;
    return (rc == PEER_GONE || rc == -ECONNRESET || rc == -EPIPE) &&
           strstr(errbuf, "dropped a connection: Cannot allocate memory");
}

static void print_bt(const char *what, void *const *bt, int n)
{
    uintptr_t base = a_base;

    fprintf(stderr, "    %s (addr2line -f -i -e test_allocfail):", what);
    for (int i = 1; i < n; i++)
        fprintf(stderr, " %#" PRIxPTR, (uintptr_t)bt[i] - base - 1);
    fputc('\n', stderr);
}

static const char *mode_name(int mode)
{
    return mode == MODE_ONE ? "one" : "from";
}

/* Checks one run's outcome; prints and returns 1 if it failed. */
static int judge(int mode, uint64_t n, int st, const result *r, const char *errbuf, int verbose)
{
    char why[256] = "";

    if (st) {
        if (st == -1)
            snprintf(why, sizeof why, "child died without a result");
        else if (WIFSIGNALED(st))
            snprintf(why, sizeof why, "%s (signal %d)%s",
                     WTERMSIG(st) == SIGALRM ? "hang" : "crash", WTERMSIG(st),
                     WTERMSIG(st) == SIGALRM ? ": alarm" : "");
        else
            snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(st));
    } else if (r->lost) {
        snprintf(why, sizeof why, "lost error: %s", r->lost_what);
    } else if (!rc_allowed(r->rc, errbuf)) {
        snprintf(why, sizeof why, "wrong error %d (%s) from %s", r->rc, tide_strerror(r->rc),
                 r->err_where[0] ? r->err_where : "?");
    } else if (r->nlive) {
        snprintf(why, sizeof why,
                 "leak: %zu blocks (%zu bytes) live, oldest: call %" PRIu64 " of %zu bytes",
                 r->nlive, r->live_bytes, r->leak_seq[0], r->leak_size[0]);
    } else if (r->fd_delta) {
        snprintf(why, sizeof why, "%d fds leaked", r->fd_delta);
    }
    if (!why[0]) {
        if (verbose)
            fprintf(stderr, "  [%s N=%" PRIu64 "] ok: rc %d (%s)%s%s, %" PRIu64 " calls\n",
                    mode_name(mode), n, r->rc, tide_strerror(r->rc),
                    r->err_where[0] ? " from " : "", r->err_where, r->calls);
        if (verbose && r->fail_nbt)
            print_bt("failed allocation", r->fail_bt, r->fail_nbt);
        return 0;
    }
    fprintf(stderr, "  [%s N=%" PRIu64 "] FAIL: %s\n", mode_name(mode), n, why);
    if (!st) {
        fprintf(stderr, "    rc %d (%s) first from %s\n", r->rc, tide_strerror(r->rc),
                r->err_where[0] ? r->err_where : "-");
        if (r->fail_nbt)
            print_bt("failed allocation", r->fail_bt, r->fail_nbt);
        if (r->nlive && r->leak_nbt)
            print_bt("leaked block made at", r->leak_bt, r->leak_nbt);
    }
    if (errbuf[0])
        fprintf(stderr, "    stderr: %.3000s\n", errbuf);
    return 1;
}

/* ============================================================== tests */

static char errbuf[1 << 17];

static void install_allocator(void)
{
    static int done;
    if (!done) {
        assert_int_equal(tide_replace_allocator(t_malloc, t_realloc, t_calloc, t_free), 0);
        done = 1;
    }
}

/* The allocator itself: a failed realloc keeps the old block. */
static void test_allocator(void **state)
{
    (void)state;
    a_arm(MODE_ONE, 2);
    char *p = t_malloc(10);
    assert_non_null(p);
    memcpy(p, "abcdefghi", 10);
    assert_null(t_realloc(p, 100)); /* call 2 fails */
    assert_string_equal(p, "abcdefghi");
    p = t_realloc(p, 100);
    assert_non_null(p);
    assert_string_equal(p, "abcdefghi");
    assert_null(t_calloc((size_t)1 << 62, 8));
    t_free(p);
    a_disarm();
    assert_int_equal(a_nlive, 0);
    assert_int_equal(a_calls, 4);
}

static uint64_t g_total;

/* No failure: everything works, nothing is left; a second run in the same
 * process (pool started, signal handler installed) makes as many
 * allocations and leaves nothing either. */
static void test_no_failure_twice(void **state)
{
    result r;
    int st;

    (void)state;
    install_allocator();
    st = run_child(prog_main, MODE_NONE, 0, 1, &r, errbuf, sizeof errbuf);
    if (judge(MODE_ONE, 0, st, &r, errbuf, 0))
        fail();
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.nlive, 0);
    assert_int_equal(r.rc2, 0);
    assert_int_equal(r.nlive2, 0);
    fprintf(stderr,
            "allocfail: %" PRIu64 " allocations per run (second run in the same "
            "process: %" PRIu64 ")\n",
            r.calls, r.calls2);
    assert_true(r.calls > 0);
}

/* The allocation count of a run without failure, a few times: the sweep
 * goes up to the largest. */
static uint64_t count_allocations(void)
{
    uint64_t lo = UINT64_MAX, hi = 0, sig = 0;
    int same = 1;

    for (int i = 0; i < 3; i++) {
        result r;
        int st = run_child(prog_main, MODE_NONE, 0, 0, &r, errbuf, sizeof errbuf);
        if (judge(MODE_ONE, 0, st, &r, errbuf, 0))
            fail();
        assert_int_equal(r.rc, 0);
        if (r.calls < lo)
            lo = r.calls;
        if (r.calls > hi)
            hi = r.calls;
        if (i && r.sig != sig)
            same = 0;
        sig = r.sig;
    }
    fprintf(stderr, "allocfail: %" PRIu64 "..%" PRIu64 " allocations per run, %s sequence\n", lo,
            hi, same ? "the same" : "a varying");
    return hi;
}

static int sweep(int mode, uint64_t total)
{
    const char *only = getenv("TIDE_ALLOCFAIL_N");
    const char *full = getenv("TIDE_ALLOCFAIL_FULL");
    const char *verb = getenv("TIDE_ALLOCFAIL_VERBOSE");
    int verbose = verb && *verb && *verb != '0';
    uint64_t n, step = 1, runs = 0, failures = 0, absorbed = 0, notreached = 0;
    uint64_t first = 1, last = total;
    struct timespec t0, t1;
    int rcs[8] = {0}, nrc[8] = {0}, nkinds = 0;

    if (only && *only) {
        first = last = strtoull(only, NULL, 10);
        verbose = 1;
    } else if (!(full && *full && *full != '0') && total > DENSE_N) {
        /* every N up to DENSE_N, then evenly spaced */
        step = (total - DENSE_N + (MAX_RUNS - DENSE_N) - 1) / (MAX_RUNS - DENSE_N);
        if (step < 1)
            step = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (n = first; n <= last; n += (n < DENSE_N ? 1 : step)) {
        result r;
        struct timespec r0, r1;
        clock_gettime(CLOCK_MONOTONIC, &r0);
        int st = run_child(prog_main, mode, n, 0, &r, errbuf, sizeof errbuf);
        clock_gettime(CLOCK_MONOTONIC, &r1);
        if (verbose)
            fprintf(stderr, "  [%s N=%" PRIu64 "] %.1f ms\n", mode_name(mode), n,
                    (double)(r1.tv_sec - r0.tv_sec) * 1e3 +
                        (double)(r1.tv_nsec - r0.tv_nsec) / 1e6);
        runs++;
        if (judge(mode, n, st, &r, errbuf, verbose)) {
            failures++;
            continue;
        }
        if (!r.failed)
            notreached++;
        else if (r.rc == 0)
            absorbed++;
        int k;
        for (k = 0; k < nkinds && rcs[k] != r.rc; k++)
            ;
        if (k == nkinds && nkinds < 8)
            rcs[nkinds++] = r.rc;
        if (k < 8)
            nrc[k]++;
        if (only && *only && errbuf[0])
            fprintf(stderr, "    stderr: %s\n", errbuf);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr,
            "allocfail: mode %s: %" PRIu64 " runs (N=%" PRIu64 "..%" PRIu64 ", step %" PRIu64
            " past %d) in %.1f s: %" PRIu64 " failed, %" PRIu64 " absorbed (rc 0), %" PRIu64
            " past the last allocation; results:",
            mode_name(mode), runs, first, last, step, DENSE_N,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, failures,
            absorbed, notreached);
    for (int k = 0; k < nkinds; k++)
        fprintf(stderr, " %d (%s) x%d", rcs[k], tide_strerror(rcs[k]), nrc[k]);
    fputc('\n', stderr);
    return (int)failures;
}

/* A targeted case: prog, which arms its own failures, in a child; it must
 * end well, return 0 and leave nothing behind. */
static void run_targeted(tide_fn prog, const char *what)
{
    result r;
    int st;

    install_allocator();
    st = run_child(prog, MODE_NONE, 0, 0, &r, errbuf, sizeof errbuf);
    if (judge(MODE_ONE, 0, st, &r, errbuf, 0))
        fail();
    if (r.rc != 0)
        fprintf(stderr, "%s: %d (%s)\n%s", what, r.rc, tide_strerror(r.rc), errbuf);
    assert_int_equal(r.rc, 0);
}

static void test_acceptor_backoff_without_memory(void **state)
{
    (void)state;
    run_targeted(backoff_main, "backoff");
}

static void test_shuffle_without_memory(void **state)
{
    (void)state;
    run_targeted(shuffle_main, "shuffle");
}

static void test_ws_takeover_without_memory(void **state)
{
    (void)state;
    run_targeted(wsnomem_main, "ws takeover");
}

static void test_sweep_one(void **state)
{
    (void)state;
    install_allocator();
    if (!g_total)
        g_total = count_allocations();
    assert_int_equal(sweep(MODE_ONE, g_total), 0);
}

static void test_sweep_from(void **state)
{
    (void)state;
    install_allocator();
    if (!g_total)
        g_total = count_allocations();
    assert_int_equal(sweep(MODE_FROM, g_total), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_no_failure_twice),
        cmocka_unit_test(test_acceptor_backoff_without_memory),
        cmocka_unit_test(test_shuffle_without_memory),
        cmocka_unit_test(test_ws_takeover_without_memory),
        cmocka_unit_test(test_sweep_one),
        cmocka_unit_test(test_sweep_from),
    };
    extern char __executable_start; /* the linker's: where the executable is loaded */
    const char *trace = getenv("TIDE_ALLOCFAIL_TRACE");

    a_base = (uintptr_t)&__executable_start;
    a_trace = trace && *trace && *trace != '0';
    signal(SIGPIPE, SIG_IGN);
    save_signals();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
