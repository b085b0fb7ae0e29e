/*
 * Tests of the signal handlers (tide_signal_handler_add/remove) and of
 * tide_signal_wait next to them (src/signal.c): delivery during a sleep,
 * from the loop's own process, from another thread (forwarded), the
 * callback running on the loop outside any task, the program's handler and
 * mask restored after remove and at loop free, argument checks.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

/* signalfd (Linux): handled signals are blocked in the loop's thread, so a
 * signal the program blocked itself still reaches the handler.  The
 * self-pipe fallback (-DTIDE_NO_SIGNALFD, other systems) blocks nothing. */
#if defined(__linux__) && !defined(TIDE_NO_SIGNALFD)
#define SIGNALFD 1
#else
#define SIGNALFD 0
#endif

static volatile sig_atomic_t prog_handled;

static void prog_handler(int sig)
{
    (void)sig;
    prog_handled++;
}

/* Installs prog_handler for sig; returns the previous action in *old. */
static void set_prog_handler(int sig, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prog_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, old);
}

static int is_blocked(int sig)
{
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    return sigismember(&cur, sig) == 1;
}

static void (*current_handler(int sig))(int)
{
    struct sigaction sa;
    sigaction(sig, NULL, &sa);
    return sa.sa_handler;
}

/* --------------------------------------------- callback during a sleep */

typedef struct hs {
    int calls;
    int in_task;          /* the callback ran inside a task (must not) */
    int on_loop;          /* the callback saw the loop current */
    int blocked_while;    /* SIGUSR1 blocked while handled */
    int rc_add, rc_add2, rc_rm, rc_rm2, rc_wait_busy;
    int64_t first_at, t0;
    int thread_calls;
} hs;

static void on_usr1(void *arg)
{
    hs *h = arg;
    h->calls++;
    if (tide_current_task())
        h->in_task = 1;
    if (tide_loop_current())
        h->on_loop = 1;
    if (!h->first_at)
        h->first_at = tide_now();
}

static int send_later(void *arg)
{
    (void)arg;
    tide_sleep(30);
    kill(getpid(), SIGUSR1);
    return 0;
}

/* A thread that does not block SIGUSR1 and raises it at itself: the
 * handler tide installed forwards it to the loop's thread. */
static void *raiser(void *arg)
{
    sigset_t one;
    (void)arg;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(SIGUSR1); /* thread-directed */
    return NULL;
}

static int hs_main(void *arg)
{
    hs *h = arg;
    tide_task *t;
    sigset_t set;
    pthread_t th;

    h->rc_add = tide_signal_handler_add(SIGUSR1, on_usr1, h);
    h->rc_add2 = tide_signal_handler_add(SIGUSR1, on_usr1, h);
    h->blocked_while = is_blocked(SIGUSR1);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    h->rc_wait_busy = tide_signal_wait(&set);

    h->t0 = tide_now();
    tide_create_task(&t, send_later, NULL);
    tide_sleep(150); /* the signal comes during this sleep */
    tide_await(t);

    /* from another thread that does not block it */
    int before = h->calls;
    pthread_create(&th, NULL, raiser, NULL);
    pthread_join(th, NULL);
    for (int i = 0; i < 100 && h->calls == before; i++)
        tide_sleep(10);
    h->thread_calls = h->calls - before;

    h->rc_rm = tide_signal_handler_remove(SIGUSR1);
    h->rc_rm2 = tide_signal_handler_remove(SIGUSR1);
    return 0;
}

static void test_handler_during_sleep(void **state)
{
    (void)state;
    struct sigaction old, after;
    int fds = tt_count_fds();
    hs h;

    memset(&h, 0, sizeof h);
    set_prog_handler(SIGUSR1, &old);
    prog_handled = 0;
    assert_false(is_blocked(SIGUSR1));
    assert_int_equal(tide_run(hs_main, &h), 0);

    assert_int_equal(h.rc_add, 0);
    assert_int_equal(h.rc_add2, -EEXIST);
    assert_int_equal(h.rc_wait_busy, -EBUSY);
    assert_int_equal(h.blocked_while, SIGNALFD);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.thread_calls, 1);
    assert_false(h.in_task);
    assert_true(h.on_loop);
    assert_true(h.first_at - h.t0 >= 25);
    assert_true(h.first_at - h.t0 < 150);
    assert_int_equal(h.rc_rm, 0);
    assert_int_equal(h.rc_rm2, -ENOENT);
    assert_int_equal(prog_handled, 0); /* tide took every delivery */

    /* The program's handler and mask are back. */
    assert_false(is_blocked(SIGUSR1));
    assert_ptr_equal(current_handler(SIGUSR1), prog_handler);
    raise(SIGUSR1);
    assert_int_equal(prog_handled, 1);

    sigaction(SIGUSR1, &old, &after);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------- a signal the program blocked, SIG_IGN */

typedef struct ig {
    int calls, rc_add, rc_rm;
} ig;

static void on_usr2(void *arg)
{
    ((ig *)arg)->calls++;
}

static int ig_main(void *arg)
{
    ig *g = arg;
    g->rc_add = tide_signal_handler_add(SIGUSR2, on_usr2, g);
    kill(getpid(), SIGUSR2);
    for (int i = 0; i < 100 && !g->calls; i++)
        tide_sleep(5);
    g->rc_rm = tide_signal_handler_remove(SIGUSR2);
    return 0;
}

static void test_ignored_and_blocked_restored(void **state)
{
    (void)state;
    struct sigaction sa, old;
    sigset_t one;
    ig g;

    /* SIG_IGN before: handled all the same, SIG_IGN after. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGUSR2, &sa, &old);
    memset(&g, 0, sizeof g);
    assert_int_equal(tide_run(ig_main, &g), 0);
    assert_int_equal(g.rc_add, 0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.rc_rm, 0);
    assert_ptr_equal(current_handler(SIGUSR2), SIG_IGN);
    assert_false(is_blocked(SIGUSR2));

    if (!SIGNALFD) { /* a blocked signal never reaches a self-pipe handler */
        sigaction(SIGUSR2, &old, NULL);
        return;
    }
    /* Blocked by the program before: still blocked after. */
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &one, NULL);
    memset(&g, 0, sizeof g);
    assert_int_equal(tide_run(ig_main, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_true(is_blocked(SIGUSR2));
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    sigaction(SIGUSR2, &old, NULL);
}

/* ------------------------------------------------------ restored at loop free */

static void on_hup(void *arg)
{
    (*(int *)arg)++;
}

static int lf_main(void *arg)
{
    int rc = tide_signal_handler_add(SIGHUP, on_hup, arg);
    if (rc < 0)
        return rc;
    rc = tide_signal_handler_add(SIGWINCH, on_hup, arg);
    if (rc < 0)
        return rc;
    kill(getpid(), SIGHUP);
    for (int i = 0; i < 100 && !*(int *)arg; i++)
        tide_sleep(5);
    return 0; /* no remove: tide_loop_free must clean up */
}

static void test_restored_at_loop_free(void **state)
{
    (void)state;
    struct sigaction old;
    int fds = tt_count_fds(), calls = 0;

    set_prog_handler(SIGHUP, &old);
    prog_handled = 0;
    assert_int_equal(tide_run(lf_main, &calls), 0);
    assert_int_equal(calls, 1);
    assert_ptr_equal(current_handler(SIGHUP), prog_handler);
    assert_ptr_equal(current_handler(SIGWINCH), SIG_DFL);
    assert_false(is_blocked(SIGHUP));
    assert_false(is_blocked(SIGWINCH));
    assert_int_equal(tt_count_fds(), fds);
    raise(SIGHUP);
    assert_int_equal(prog_handled, 1);
    sigaction(SIGHUP, &old, NULL);
}

/* ------------------------------------------------ a callback that removes */

typedef struct rm {
    int calls;
} rm;

static void on_term_remove(void *arg)
{
    ((rm *)arg)->calls++;
    tide_signal_handler_remove(SIGTERM); /* from inside its own callback */
}

static int rm_main(void *arg)
{
    rm *r = arg;
    int rc = tide_signal_handler_add(SIGTERM, on_term_remove, r);
    if (rc < 0)
        return rc;
    kill(getpid(), SIGTERM);
    kill(getpid(), SIGTERM);
    for (int i = 0; i < 40 && !r->calls; i++)
        tide_sleep(5);
    tide_sleep(20);
    /* Add again: works, a fresh signalfd. */
    rc = tide_signal_handler_add(SIGTERM, on_term_remove, r);
    if (rc < 0)
        return rc;
    kill(getpid(), SIGTERM);
    for (int i = 0; i < 40 && r->calls < 2; i++)
        tide_sleep(5);
    return tide_signal_handler_remove(SIGTERM) == -ENOENT ? 0 : -1;
}

static void test_remove_from_callback(void **state)
{
    (void)state;
    int fds = tt_count_fds();
    rm r = {0};
    assert_int_equal(tide_run(rm_main, &r), 0);
    assert_int_equal(r.calls, 2); /* the second SIGTERM merged or dropped */
    assert_ptr_equal(current_handler(SIGTERM), SIG_DFL);
    assert_false(is_blocked(SIGTERM));
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------ tide_signal_wait during a sleep */

typedef struct ws {
    int rc;
    int64_t waited;
} ws;

static int send_usr2_later(void *arg)
{
    (void)arg;
    tide_sleep(30);
    kill(getpid(), SIGUSR2);
    return 0;
}

static int ws_main(void *arg)
{
    ws *w = arg;
    sigset_t set;
    tide_task *t;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    tide_create_task(&t, send_usr2_later, NULL);
    int64_t t0 = tide_now();
    w->rc = tide_signal_wait(&set);
    w->waited = tide_now() - t0;
    tide_await(t);
    return 0;
}

static void test_wait_during_sleep(void **state)
{
    (void)state;
    ws w = {0};
    assert_int_equal(tide_run(ws_main, &w), 0);
    assert_int_equal(w.rc, SIGUSR2);
    assert_true(w.waited >= 25);
    assert_false(is_blocked(SIGUSR2));
}

/* ------------------------------------------------------------- arguments */

static void nop(void *arg)
{
    (void)arg;
}

static int args_main(void *arg)
{
    int *bad = arg;
    static const int sigs[] = {0, -1, SIGKILL, SIGSTOP, NSIG, NSIG + 1, SIGSEGV, SIGBUS, SIGFPE,
                               SIGILL};
    for (size_t i = 0; i < TT_ARRAY_LEN(sigs); i++)
        if (tide_signal_handler_add(sigs[i], nop, NULL) != -EINVAL)
            (*bad)++;
    if (tide_signal_handler_add(SIGUSR1, NULL, NULL) != -EINVAL)
        (*bad)++;
    if (tide_signal_handler_remove(0) != -EINVAL || tide_signal_handler_remove(NSIG) != -EINVAL)
        (*bad)++;
    if (tide_signal_handler_remove(SIGUSR1) != -ENOENT)
        (*bad)++;
    return 0;
}

static void test_args(void **state)
{
    (void)state;
    int bad = 0;
    assert_int_equal(tide_signal_handler_add(SIGUSR1, nop, NULL), -EPERM); /* no loop */
    assert_int_equal(tide_run(args_main, &bad), 0);
    assert_int_equal(bad, 0);
    assert_ptr_equal(current_handler(SIGUSR1), SIG_DFL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler_during_sleep),
        cmocka_unit_test(test_ignored_and_blocked_restored),
        cmocka_unit_test(test_restored_at_loop_free),
        cmocka_unit_test(test_remove_from_callback),
        cmocka_unit_test(test_wait_during_sleep),
        cmocka_unit_test(test_args),
    };
    alarm(120); /* a hang fails the test instead of stalling ctest */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
