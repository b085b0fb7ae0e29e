/*
 * Misuse of the API, driven on purpose: each misuse the headers describe
 * either fails with the documented error code, or -- where it would corrupt
 * memory (a cancel scope or a task group left open by a function that
 * returned, so the loop would later read or write its dead frame) -- is
 * reported loudly: one line on stderr naming the task and what was left
 * open, then abort().  The aborting cases run in a forked child, whose
 * stderr comes back through a pipe.  And correct use, however deeply
 * nested, never trips the checks.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/poll.h> /* not <poll.h>: src/poll.h shadows it */
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"
#include "vrun.h"

#define NOINLINE __attribute__((noinline))
#define LEAKY "task 'leaky' (id 2)"

/* ------------------------------------------------ running a misuse child */

typedef struct child_out {
    int status;
    char err[8192];
} child_out;

static child_out g_out; /* static: fail_msg longjmps out of the test */

static tide_fn g_body; /* what the task 'leaky' runs */

static int leaky_main(void *arg)
{
    tide_task_opts o;
    tide_task *t;
    (void)arg;
    tide_task_opts_init(&o);
    o.name = "leaky";
    if (tide_create_task_ex(&t, NULL, g_body, NULL, &o) != 0)
        return -1;
    return tide_await(t);
}

/* Runs body in a task named 'leaky' (id 2) of tide_run in a child process;
 * collects its stderr and how it ended. */
static void run_child(tide_fn body, child_out *o)
{
    int p[2];
    pid_t pid;
    size_t len = 0;
    int64_t deadline;
    pid_t w;

    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc;
        signal(SIGABRT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        g_body = body;
        rc = tt_vrun(leaky_main, NULL);
        fprintf(stderr, "child: tide_run returned %d (no misuse reported)\n", rc);
        _exit(3);
    }
    close(p[1]);
    deadline = tide_now() + 30000;
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        int64_t left = deadline - tide_now();
        ssize_t k;
        int r;
        if (left <= 0)
            break;
        r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        k = read(p[0], o->err + len, sizeof o->err - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == sizeof o->err - 1)
            break;
    }
    o->err[len] = '\0';
    close(p[0]);
    while ((w = waitpid(pid, &o->status, WNOHANG)) == 0 && tide_now() < deadline)
        usleep(10000);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &o->status, 0);
        fail_msg("misuse child did not end; stderr: <<%s>>", o->err);
    }
}

/* 1 when ASan keeps locals on its fake stack (ASAN_OPTIONS=
 * detect_stack_use_after_return=1): then a function's scopes and groups are
 * not on the task's stack, their dead frames are ASan's to report (a
 * stack-use-after-return), and what tide sees of them is only what the
 * task's return finds. */
static int asan_fake_stacks(void)
{
#ifdef TT_ASAN
    return __asan_get_current_fake_stack() != NULL;
#else
    return 0;
#endif
}

/* The child must die of SIGABRT with every needle in its stderr.  dead: a
 * dead frame is to be noticed; with ASan's fake stacks, a report by ASan or
 * any of tide's will do. */
static void expect_abort_v(tide_fn body, int dead, const char *const *needles)
{
    child_out *o = &g_out;
    memset(o, 0, sizeof *o);
    run_child(body, o);
    print_message("child stderr: <<%s>>\n", o->err);
    if (dead && asan_fake_stacks()) {
        if (strstr(o->err, "AddressSanitizer: stack-use-after-return") ||
            (WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT && strstr(o->err, "tide: ")))
            return;
        fail_msg("neither ASan nor tide reported the dead frame: <<%s>>", o->err);
    }
    if (!WIFSIGNALED(o->status))
        fail_msg("child exited with status %d instead of aborting; stderr: <<%s>>",
                 WEXITSTATUS(o->status), o->err);
    if (WTERMSIG(o->status) != SIGABRT)
        fail_msg("child died of signal %d, not SIGABRT; stderr: <<%s>>", WTERMSIG(o->status),
                 o->err);
    for (; *needles; needles++)
        if (!strstr(o->err, *needles))
            fail_msg("no \"%s\" in the child's stderr: <<%s>>", *needles, o->err);
}

#define expect_abort(body, ...)                                                                    \
    do {                                                                                           \
        static const char *const needles_[] = {__VA_ARGS__, NULL};                                 \
        expect_abort_v(body, 0, needles_);                                                         \
    } while (0)
#define expect_dead(body, ...)                                                                     \
    do {                                                                                           \
        static const char *const needles_[] = {__VA_ARGS__, NULL};                                 \
        expect_abort_v(body, 1, needles_);                                                         \
    } while (0)

/* ------------------------------------------------------------ helpers */

static int sleeper(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg);
}

static void spawn_sleeper(tide_group *g, int64_t ms, const char *name)
{
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = name;
    assert_int_equal(tide_group_spawn(g, sleeper, (void *)(intptr_t)ms, &o, NULL), 0);
}

/* Leave a scope or group open, the way a forgotten _end on an early return
 * does.  The small ones keep the scope right under the caller's frame, where
 * the next tide call's own frames overwrite it; the padded ones put it deep
 * enough to stay intact below the stack pointer: the checks must catch both. */
NOINLINE static void leak_timeout(int64_t ms)
{
    tide_scope s;
    tide_timeout_begin(&s, ms);
}

NOINLINE static void leak_timeout_padded(int64_t ms)
{
    volatile char pad[512];
    tide_scope s;
    pad[0] = 1;
    tide_timeout_begin(&s, ms);
    pad[sizeof pad - 1] = pad[0];
}

NOINLINE static void leak_shield(void)
{
    tide_scope s;
    tide_shield_begin(&s);
}

static volatile uintptr_t g_leaked; /* where leak_group's group was */

NOINLINE static void leak_group(int64_t member_ms)
{
    tide_group g;
    tide_group_init(&g);
    spawn_sleeper(&g, member_ms, "member");
    g_leaked = (uintptr_t)&g;
}

NOINLINE static void leak_group_padded(int64_t member_ms)
{
    volatile char pad[512];
    tide_group g;
    pad[0] = 1;
    tide_group_init(&g);
    spawn_sleeper(&g, member_ms, "member");
    pad[sizeof pad - 1] = pad[0];
}

/* ====================================== the task returns with it open */

static int ret_timeout(void *arg)
{
    tide_scope s;
    (void)arg;
    tide_timeout_begin(&s, 1000);
    return 0;
}

static void test_return_with_timeout_open(void **state)
{
    (void)state;
    expect_abort(ret_timeout, LEAKY, "returned with a timeout scope still open",
                 "tide_timeout_begin without tide_timeout_end");
}

static int ret_shield(void *arg)
{
    tide_scope s;
    (void)arg;
    tide_shield_begin(&s);
    return 0;
}

static void test_return_with_shield_open(void **state)
{
    (void)state;
    expect_abort(ret_shield, LEAKY, "returned with a shield still open",
                 "tide_shield_begin without tide_shield_end");
}

static int ret_group(void *arg)
{
    tide_group g;
    (void)arg;
    tide_group_init(&g);
    spawn_sleeper(&g, 1000, "member");
    return 0;
}

static void test_return_with_group_open(void **state)
{
    (void)state;
    expect_abort(ret_group, LEAKY, "returned with a task group not waited for",
                 "tide_group_init without tide_group_wait");
}

/* Not waited for, even with no task in it (the header: every group ends
 * with tide_group_wait). */
static int ret_empty_group(void *arg)
{
    tide_group g;
    (void)arg;
    tide_group_init(&g);
    return 0;
}

static void test_return_with_empty_group_open(void **state)
{
    (void)state;
    expect_abort(ret_empty_group, LEAKY, "returned with a task group not waited for");
}

static int ret_all(void *arg)
{
    tide_scope a, b;
    tide_group g1, g2;
    (void)arg;
    tide_group_init(&g1);
    tide_timeout_begin(&a, 1000);
    tide_group_init(&g2);
    spawn_sleeper(&g2, 1000, "member");
    tide_shield_begin(&b);
    return 0;
}

static void test_return_with_several_open(void **state)
{
    (void)state;
    /* innermost first */
    expect_abort(ret_all, LEAKY, "a shield still open", "a timeout scope still open",
                 "2 task groups not waited for");
}

/* ================================== a dead frame noticed on a later call */

static int dead_timeout_then_sleep(void *arg)
{
    (void)arg;
    leak_timeout(10000);
    return tide_sleep(20); /* walks the scope chain */
}

static int dead_timeout_padded_then_sleep(void *arg)
{
    (void)arg;
    leak_timeout_padded(10000);
    return tide_sleep(20);
}

/* Without the check: the dead scope's deadline makes the sleep fail with
 * -ETIMEDOUT, or its overwritten links are followed into other frames. */
static void test_dead_timeout_then_sleep(void **state)
{
    (void)state;
    expect_dead(dead_timeout_then_sleep, LEAKY,
                "a timeout scope was left open by a function that returned",
                "tide_timeout_begin without tide_timeout_end");
    expect_dead(dead_timeout_padded_then_sleep, LEAKY,
                "a timeout scope was left open by a function that returned");
}

static int dead_expired_then_yield(void *arg)
{
    (void)arg;
    leak_timeout(0); /* expired already: the next suspension would fire it */
    return tide_sleep(0);
}

static void test_dead_expired_timeout_then_yield(void **state)
{
    (void)state;
    expect_dead(dead_expired_then_yield, LEAKY, "a timeout scope was left open");
}

static int dead_shield_then_begin(void *arg)
{
    tide_scope s;
    (void)arg;
    leak_shield();
    tide_timeout_begin(&s, 1000); /* walks the chain it links to */
    tide_timeout_end(&s);
    return 0;
}

static void test_dead_shield_then_begin(void **state)
{
    (void)state;
    expect_dead(dead_shield_then_begin, LEAKY, "a shield was left open by a function that returned",
                "tide_shield_begin without tide_shield_end");
}

/* The caller ends its own scope with the leaked one still inside it: an
 * out-of-order end whose inner scope is dead. */
static int dead_inner_then_end_outer(void *arg)
{
    tide_scope outer;
    (void)arg;
    tide_timeout_begin(&outer, 1000);
    leak_timeout_padded(1000);
    tide_timeout_end(&outer);
    return 0;
}

static int dead_inner_small_then_end_outer(void *arg)
{
    tide_scope outer;
    (void)arg;
    tide_timeout_begin(&outer, 1000);
    leak_timeout(1000);
    tide_timeout_end(&outer);
    return 0;
}

static void test_dead_inner_then_end_outer(void **state)
{
    (void)state;
    expect_dead(dead_inner_then_end_outer, LEAKY, "a timeout scope was left open");
    expect_dead(dead_inner_small_then_end_outer, LEAKY, "a timeout scope was left open");
}

static int dead_group_then_sleep(void *arg)
{
    (void)arg;
    leak_group(50);
    return tide_sleep(200); /* the member ends meanwhile: it would write into the frame */
}

static int dead_group_padded_then_sleep(void *arg)
{
    (void)arg;
    leak_group_padded(50);
    return tide_sleep(200);
}

static void test_dead_group_then_sleep(void **state)
{
    (void)state;
    expect_dead(dead_group_then_sleep, LEAKY,
                "a task group was left open by a function that returned",
                "tide_group_init without tide_group_wait");
    expect_dead(dead_group_padded_then_sleep, LEAKY, "a task group was left open");
}

/* The leaked group's memory is overwritten by a later frame, which then
 * waits with that frame live: the group is not below the stack pointer, so
 * only its check word tells -- when its member ends and the loop is about
 * to write into it. */
#ifdef TT_ASAN
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

NOINLINE NO_ASAN static void scribble(void *p, size_t n)
{
    volatile unsigned char *c = p;
    while (n--)
        *c++ = 0x5a;
}

NOINLINE static int clobber_then_sleep(int64_t ms)
{
    volatile char big[4096];
    char *g = (char *)g_leaked;
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = 0x5a;
    /* Where the group's bytes fell between big's redzones (ASan), or in
     * padding, write them as a later frame's locals would be. */
    if (g < (char *)big || g + sizeof(tide_group) > (char *)big + sizeof big)
        scribble(g, sizeof(tide_group));
    int rc = tide_sleep(ms);
    return rc + big[0] + big[sizeof big - 1] - 2 * 0x5a;
}

static int dead_group_overwritten(void *arg)
{
    (void)arg;
    leak_group(20);
    return clobber_then_sleep(500);
}

static void test_dead_group_overwritten_member_ends(void **state)
{
    (void)state;
    /* The group's owner scope (the owner's code inside a group is a cancel
     * scope of its own) lies in the dead frame too: the owner's next
     * suspension finds it before the member ends. */
    expect_dead(dead_group_overwritten, LEAKY, "a task group was left open",
                "by a function that returned");
}

static int dead_group_then_init(void *arg)
{
    tide_group g;
    (void)arg;
    leak_group_padded(1000);
    tide_group_init(&g);
    tide_group_wait(&g);
    return 0;
}

static void test_dead_group_then_init(void **state)
{
    (void)state;
    expect_dead(dead_group_then_init, LEAKY, "a task group was left open");
}

/* ================================================ begun twice while open */

static int timeout_begun_twice(void *arg)
{
    tide_scope s;
    (void)arg;
    tide_timeout_begin(&s, 1000);
    tide_timeout_begin(&s, 1000); /* would link s to itself */
    tide_timeout_end(&s);
    return 0;
}

static void test_scope_begun_twice(void **state)
{
    (void)state;
    expect_abort(timeout_begun_twice, LEAKY, "a timeout scope was begun again while still open");
}

static int group_init_twice(void *arg)
{
    tide_group g;
    (void)arg;
    tide_group_init(&g);
    spawn_sleeper(&g, 1000, "member");
    tide_group_init(&g); /* the member still points at g */
    tide_group_wait(&g);
    return 0;
}

static void test_group_init_twice(void **state)
{
    (void)state;
    expect_abort(group_init_twice, LEAKY, "tide_group_init on a task group that is still open");
}

/* ================================== correct use never trips the checks */

typedef struct nest {
    int depth_seen;
    int timeouts; /* inner scopes that fired */
    int errors;
    int members;
} nest;

static nest g_nest;

static int member_with_scopes(void *arg)
{
    tide_scope a, b;
    int rc;
    (void)arg;
    tide_timeout_begin(&a, 1000);
    tide_shield_begin(&b);
    rc = tide_sleep(2);
    tide_shield_end(&b);
    if (tide_timeout_end(&a) != 0 || rc != 0)
        g_nest.errors++;
    g_nest.members++;
    return 0;
}

/* Each level: a scope (timeout or shield, alternating), a padded frame, a
 * group with a member that has scopes of its own, a sleep, the recursion,
 * and everything ended in order.  40 levels: more than the 32 scope kinds a
 * task keeps by name. */
NOINLINE static int nested(int level)
{
    volatile char pad[256];
    tide_scope s;
    tide_group g;
    int rc;

    pad[0] = (char)level;
    if (level % 2)
        rc = tide_shield_begin(&s);
    else
        rc = tide_timeout_begin(&s, 5000);
    if (rc)
        g_nest.errors++;
    if (level > g_nest.depth_seen)
        g_nest.depth_seen = level;
    if (level % 8 == 0) {
        tide_group_init(&g);
        tide_group_spawn(&g, member_with_scopes, NULL, NULL, NULL);
    }
    if (tide_sleep(level % 3 == 0 ? 1 : 0) != 0)
        g_nest.errors++;
    if (level < 40 && nested(level + 1) != 0)
        g_nest.errors++;
    if (level % 8 == 0 && tide_group_wait(&g) != 0)
        g_nest.errors++;
    rc = level % 2 ? tide_shield_end(&s) : tide_timeout_end(&s);
    if (rc)
        g_nest.errors++;
    return pad[0] == (char)level ? 0 : -1;
}

/* A scope above a deep, big frame that waits: the scope stays live. */
NOINLINE static int wait_deep(int64_t ms)
{
    volatile char big[8192];
    big[0] = 1;
    big[sizeof big - 1] = 1;
    return tide_sleep(ms) + big[0] - big[sizeof big - 1];
}

NOINLINE static int inner_fires(void)
{
    tide_scope s;
    int rc;
    tide_timeout_begin(&s, 5);
    rc = wait_deep(1000); /* the timer fires while we wait deep below s */
    if (rc == -ETIMEDOUT && tide_timeout_end(&s) == -ETIMEDOUT)
        g_nest.timeouts++;
    else
        g_nest.errors++;
    return 0;
}

static int waits_in_scope(void *arg)
{
    tide_scope s;
    int rc;
    (void)arg;
    tide_timeout_begin(&s, 10000);
    rc = wait_deep(10000); /* cancelled here: tide_cancel walks our scopes */
    tide_timeout_end(&s);
    return rc;
}

/* A group waited for by another task than its owner. */
typedef struct shared_group {
    tide_group g;
    tide_event made;
} shared_group;

static int wait_other_group(void *arg)
{
    shared_group *sg = arg;
    tide_event_wait(&sg->made);
    return tide_group_wait(&sg->g);
}

static int correct_main(void *arg)
{
    tide_task *t, *w;
    tide_group *hg;
    tide_scope *hs;
    shared_group sg;
    (void)arg;

    memset(&g_nest, 0, sizeof g_nest);
    if (nested(0) != 0)
        g_nest.errors++;
    inner_fires();

    /* cancelled while waiting deep inside a scope */
    tide_create_task(&t, waits_in_scope, NULL);
    tide_sleep(5);
    tide_cancel(t);
    if (tide_await(t) != -ECANCELED)
        g_nest.errors++;

    /* a group on our stack, waited for by another task */
    tide_event_init(&sg.made);
    tide_group_init(&sg.g);
    tide_create_task(&w, wait_other_group, &sg);
    tide_group_spawn(&sg.g, member_with_scopes, NULL, NULL, NULL);
    tide_event_set(&sg.made);
    if (wait_deep(1) != 0 || tide_await(w) != 0)
        g_nest.errors++;

    /* a group and a scope on the heap (not on any stack) */
    hg = malloc(sizeof *hg);
    hs = malloc(sizeof *hs);
    tide_group_init(hg);
    tide_group_spawn(hg, member_with_scopes, NULL, NULL, NULL);
    tide_timeout_begin(hs, 1000);
    if (wait_deep(1) != 0 || tide_group_wait(hg) != 0 || tide_timeout_end(hs) != 0)
        g_nest.errors++;
    free(hg);
    free(hs);

    /* two groups ended out of order (groups need not nest) */
    tide_group g1, g2;
    tide_group_init(&g1);
    tide_group_init(&g2);
    tide_group_spawn(&g1, member_with_scopes, NULL, NULL, NULL);
    tide_group_spawn(&g2, member_with_scopes, NULL, NULL, NULL);
    if (tide_group_wait(&g1) != 0 || tide_group_wait(&g2) != 0)
        g_nest.errors++;
    /* ... and a group reused once waited for */
    tide_group_init(&g1);
    tide_group_spawn(&g1, member_with_scopes, NULL, NULL, NULL);
    if (tide_group_wait(&g1) != 0)
        g_nest.errors++;

    /* wait_for uses a scope of its own */
    tide_create_task(&t, sleeper, (void *)(intptr_t)1000);
    if (tide_wait_for(t, 5) != -ETIMEDOUT)
        g_nest.errors++;
    return 0;
}

static void test_correct_nesting_never_trips(void **state)
{
    (void)state;
    assert_int_equal(tt_vrun(correct_main, NULL), 0);
    assert_int_equal(g_nest.errors, 0);
    assert_int_equal(g_nest.depth_seen, 40);
    assert_int_equal(g_nest.timeouts, 1);
    assert_int_equal(g_nest.members, 6 + 5);
}

/* ==================================== misuse with a documented error */

typedef struct codes {
    int rc[64];
} codes;

static int quick(void *arg)
{
    return (int)(intptr_t)arg;
}

static int await_target(void *arg)
{
    tide_task *t = arg;
    return tide_await(t);
}

static int noop_main(void *arg)
{
    (void)arg;
    return 0;
}

static void noop_cb(void *arg)
{
    (void)arg;
}

/* Begins a scope, lets main try to end it, ends it itself. */
typedef struct foreign {
    tide_scope s;
    tide_event begun, tried;
} foreign;

static int scope_owner(void *arg)
{
    foreign *f = arg;
    tide_timeout_begin(&f->s, 10000);
    tide_event_set(&f->begun);
    tide_event_wait(&f->tried);
    return tide_timeout_end(&f->s);
}

static tide_loop *g_other_loop;
static tide_task *g_other_task;

static int codes_main(void *arg)
{
    codes *c = arg;
    tide_task *t, *a, *gm;
    tide_scope s1, s2;
    tide_group g;
    int i = 0;

    /* await: a detached task, itself, twice, a group member, another loop's */
    tide_create_task(&t, sleeper, (void *)(intptr_t)20);
    c->rc[i++] = tide_detach(t);                  /* 0 */
    c->rc[i++] = tide_await(t);                   /* -EINVAL: detached */
    c->rc[i++] = tide_await(tide_current_task()); /* -EINVAL: itself */
    tide_create_task(&t, sleeper, (void *)(intptr_t)20);
    tide_create_task(&a, await_target, t);
    tide_sleep(1);               /* a awaits t */
    c->rc[i++] = tide_await(t);  /* -EBUSY */
    c->rc[i++] = tide_detach(t); /* -EBUSY */
    c->rc[i++] = tide_await(a);  /* 0 (t's result) */
    c->rc[i++] = tide_await(a);  /* -EINVAL: released (no task made since) */
    tide_group_init(&g);
    tide_group_spawn(&g, sleeper, (void *)(intptr_t)5, NULL, &gm);
    c->rc[i++] = tide_await(gm);                                /* -EINVAL: a group member */
    c->rc[i++] = tide_detach(gm);                               /* -EINVAL */
    c->rc[i++] = tide_wait(&gm, 1, TIDE_ALL_COMPLETED);         /* -EINVAL */
    c->rc[i++] = tide_group_wait(&g);                           /* 0 */
    c->rc[i++] = tide_group_wait(&g);                           /* -EINVAL: waited for already */
    c->rc[i++] = tide_group_spawn(&g, quick, NULL, NULL, NULL); /* -EINVAL */
    c->rc[i++] = tide_await(g_other_task);                      /* -EPERM: another loop's */
    tide_future *f;
    tide_future_new_on(&f, g_other_loop);
    c->rc[i++] = tide_future_await(f, NULL); /* -EPERM: another loop's */
    tide_future_free(f);

    /* gather / wait: duplicates, itself */
    tide_task *two[2];
    tide_create_task(&two[0], quick, NULL);
    two[1] = two[0];
    c->rc[i++] = tide_gather(two, 2, NULL);             /* -EINVAL: twice */
    c->rc[i++] = tide_wait(two, 2, TIDE_ALL_COMPLETED); /* -EINVAL: twice */
    two[1] = tide_current_task();
    c->rc[i++] = tide_wait(two, 2, TIDE_ALL_COMPLETED); /* -EINVAL: itself */
    c->rc[i++] = tide_wait(two, 1, 99);                 /* -EINVAL: mode */
    c->rc[i++] = tide_await(two[0]);                    /* 0: still ours after all that */

    /* scopes: end twice, of the wrong kind, out of order (live), outside */
    tide_timeout_begin(&s1, 1000);
    c->rc[i++] = tide_shield_end(&s1);  /* -EINVAL: wrong kind */
    c->rc[i++] = tide_timeout_end(&s1); /* 0 */
    c->rc[i++] = tide_timeout_end(&s1); /* -EINVAL: twice */
    tide_timeout_begin(&s1, 1000);
    tide_shield_begin(&s2);
    c->rc[i++] = tide_timeout_end(&s1); /* -EINVAL: s2 still open inside */
    c->rc[i++] = tide_shield_end(&s2);  /* 0 */
    c->rc[i++] = tide_timeout_end(&s1); /* 0 */
    c->rc[i++] = tide_sleep(0);         /* 0: nothing left behind */
    foreign fs;
    tide_event_init(&fs.begun);
    tide_event_init(&fs.tried);
    tide_create_task(&t, scope_owner, &fs);
    tide_event_wait(&fs.begun);
    c->rc[i++] = tide_timeout_end(&fs.s); /* -EINVAL: another task's scope */
    c->rc[i++] = tide_shield_end(&fs.s);  /* -EINVAL */
    tide_event_set(&fs.tried);
    c->rc[i++] = tide_await(t); /* 0: its owner ended it */

    /* locks, semaphores, conditions, queues, barriers */
    tide_lock l;
    tide_lock_init(&l);
    c->rc[i++] = tide_lock_release(&l); /* -EPERM: not held */
    tide_lock_acquire(&l);
    c->rc[i++] = tide_lock_acquire(&l);     /* -EDEADLK */
    c->rc[i++] = tide_lock_try_acquire(&l); /* -EDEADLK */
    tide_lock_release(&l);
    tide_sem bs;
    tide_bsem_init(&bs, 1);
    c->rc[i++] = tide_sem_release(&bs); /* -EOVERFLOW */
    tide_bsem_init(&bs, 0);
    c->rc[i++] = tide_sem_release(&bs); /* -EOVERFLOW: bound 0 */
    tide_cond cv;
    tide_cond_init(&cv, NULL);
    c->rc[i++] = tide_cond_wait(&cv);      /* -EPERM: lock not held */
    c->rc[i++] = tide_cond_notify(&cv, 1); /* -EPERM */
    tide_queue *q;
    tide_queue_new(&q, NULL);
    c->rc[i++] = tide_queue_task_done(q); /* -EINVAL: nothing taken */
    tide_queue_shutdown(q, 0);
    c->rc[i++] = tide_queue_put(q, NULL); /* -ESHUTDOWN */
    tide_queue_free(q);
    tide_barrier b;
    c->rc[i++] = tide_barrier_init(&b, 0); /* -EINVAL */
    tide_event e;
    tide_event_init(&e);

    /* futures and timers: done twice */
    tide_future_new(&f);
    tide_future_set_result(f, NULL);
    c->rc[i++] = tide_future_set_result(f, NULL); /* -EALREADY */
    c->rc[i++] = tide_future_cancel(f);           /* -EALREADY */
    tide_future_free(f);
    tide_timer tm;
    tide_call_later(tide_loop_current(), 1000, noop_cb, NULL, &tm);
    c->rc[i++] = tide_timer_cancel(&tm); /* 0 */
    c->rc[i++] = tide_timer_cancel(&tm); /* -EALREADY */

    /* a loop inside a task; freeing the running loop */
    c->rc[i++] = tide_run(noop_main, NULL);  /* -EBUSY */
    c->rc[i++] = tide_loop_run(g_other_loop); /* -EBUSY */
    tt_capture cap;
    tt_capture_begin(&cap);
    tide_loop_free(tide_loop_current()); /* ignored, said on stderr */
    char *said = tt_capture_end(&cap);
    c->rc[i++] = strstr(said, "tide_loop_free called on a running loop") ? 0 : -1;
    free(said);
    c->rc[i++] = tide_sleep(1); /* 0: the loop is still there */
    c->rc[63] = i;
    return 0;
}

static void test_documented_error_codes(void **state)
{
    (void)state;
    static const int want[] = {
        0,         -EINVAL,    -EINVAL,    -EBUSY,    -EBUSY,  0,       -EINVAL,    -EINVAL,
        -EINVAL,   -EINVAL,    0,          -EINVAL,   -EINVAL, -EPERM,  -EPERM,     -EINVAL,
        -EINVAL,   -EINVAL,    -EINVAL,    0,         -EINVAL, 0,       -EINVAL,    -EINVAL,
        0,         0,          0,          -EINVAL,   -EINVAL, 0,       -EPERM,     -EDEADLK,
        -EDEADLK,  -EOVERFLOW, -EOVERFLOW, -EPERM,    -EPERM,  -EINVAL, -ESHUTDOWN, -EINVAL,
        -EALREADY, -EALREADY,  0,          -EALREADY, -EBUSY,  -EBUSY,  0,          0,
    };
    codes *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(tide_loop_new(&g_other_loop), 0);
    assert_int_equal(tide_create_task_ex(&g_other_task, g_other_loop, quick, (void *)7, NULL), 0);
    assert_int_equal(tt_vrun(codes_main, c), 0);
    assert_int_equal(c->rc[63], (int)TT_ARRAY_LEN(want));
    for (size_t i = 0; i < TT_ARRAY_LEN(want); i++)
        if (c->rc[i] != want[i])
            fail_msg("call %zu returned %d (%s), expected %d (%s)", i, c->rc[i],
                     tide_strerror(c->rc[i]), want[i], tide_strerror(want[i]));
    /* the other loop's task is still there, and runs */
    assert_int_equal(tide_loop_run_until_complete(g_other_loop, g_other_task), 7);
    tide_loop_free(g_other_loop);
    free(c);

    /* outside a task */
    tide_scope s;
    tide_group g;
    assert_int_equal(tide_timeout_begin(&s, 10), -EPERM);
    assert_int_equal(tide_shield_begin(&s), -EPERM);
    assert_int_equal(tide_timeout_end(&s), -EINVAL);
    assert_int_equal(tide_group_init(&g), -EPERM);
    assert_int_equal(tide_sleep(1), -EPERM);
    assert_int_equal(tide_await(NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_return_with_timeout_open),
        cmocka_unit_test(test_return_with_shield_open),
        cmocka_unit_test(test_return_with_group_open),
        cmocka_unit_test(test_return_with_empty_group_open),
        cmocka_unit_test(test_return_with_several_open),
        cmocka_unit_test(test_dead_timeout_then_sleep),
        cmocka_unit_test(test_dead_expired_timeout_then_yield),
        cmocka_unit_test(test_dead_shield_then_begin),
        cmocka_unit_test(test_dead_inner_then_end_outer),
        cmocka_unit_test(test_dead_group_then_sleep),
        cmocka_unit_test(test_dead_group_overwritten_member_ends),
        cmocka_unit_test(test_dead_group_then_init),
        cmocka_unit_test(test_scope_begun_twice),
        cmocka_unit_test(test_group_init_twice),
        cmocka_unit_test(test_correct_nesting_never_trips),
        cmocka_unit_test(test_documented_error_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
