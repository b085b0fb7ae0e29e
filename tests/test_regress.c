/*
 * Regression tests for bugs found in review: each test is the scenario that
 * went wrong (a double release, a hang, a use after free, a wrong fd), kept
 * so it cannot come back.  Run under ASan too, which catches the memory
 * errors these scenarios used to make.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tide.h"
#include "tide_int.h"
#include "util.h"
#include "vrun.h"
#include "net_util.h"

static int sleeper(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg) < 0 ? -ECANCELED : 7;
}

/* ---------------------------------------------------------- gather owns */

/* A task given to tide_gather belongs to it for the whole gather: another
 * task trying to await or detach it is refused, not allowed to release it
 * (which used to release it twice and share its stack with a new task). */
typedef struct gown {
    tide_task *ts[2];
    int await_rc, detach_rc, gather_rc, results[2];
} gown;

static int gown_intruder(void *arg)
{
    gown *g = arg;
    g->await_rc = tide_await(g->ts[1]);
    g->detach_rc = tide_detach(g->ts[1]);
    return 0;
}

static int gown_main(void *arg)
{
    gown *g = arg;
    tide_task *in;
    tide_create_task(&g->ts[0], sleeper, (void *)(intptr_t)30);
    tide_create_task(&g->ts[1], sleeper, (void *)(intptr_t)5);
    tide_create_task(&in, gown_intruder, g);
    g->gather_rc = tide_gather(g->ts, 2, g->results);
    return tide_await(in);
}

static void test_gather_owns_its_tasks(void **state)
{
    gown g;
    (void)state;
    memset(&g, 0, sizeof g);
    assert_int_equal(tt_vrun(gown_main, &g), 0);
    assert_int_equal(g.await_rc, -EBUSY);
    assert_int_equal(g.detach_rc, -EBUSY);
    assert_int_equal(g.gather_rc, 0);
    assert_int_equal(g.results[0], 7);
    assert_int_equal(g.results[1], 7);
}

/* --------------------------------------------- as_completed freed early */

typedef struct acf {
    tide_as_completed *it;
    int next_rc;
} acf;

static int acf_waiter(void *arg)
{
    acf *a = arg;
    tide_task *t;
    a->next_rc = tide_as_completed_next(a->it, &t);
    return 0;
}

static int acf_main(void *arg)
{
    acf *a = arg;
    tide_task *t, *w;
    tide_create_task(&t, sleeper, (void *)(intptr_t)50);
    assert_int_equal(tide_as_completed_new(&a->it, &t, 1), 0);
    tide_create_task(&w, acf_waiter, a);
    tide_sleep(5);                 /* w waits in next() */
    tide_as_completed_free(a->it); /* w must wake, not touch freed memory */
    tide_await(w);
    return tide_await(t) == 7 ? 0 : -1;
}

static void test_as_completed_free_wakes_next(void **state)
{
    acf a;
    (void)state;
    memset(&a, 0, sizeof a);
    assert_int_equal(tt_vrun(acf_main, &a), 0);
    assert_int_equal(a.next_rc, -EBADF);
}

/* -------------------------------------- server closed from its handler */

typedef struct sself {
    tide_server *srv;
    int close_rc, port;
} sself;

static int sself_handler(tide_stream *s, void *arg)
{
    sself *x = arg;
    (void)s;
    x->close_rc = tide_server_close(x->srv, TIDE_SERVER_WAIT); /* would wait for itself */
    return 0;
}

static int sself_main(void *arg)
{
    sself *x = arg;
    tide_stream *c;
    assert_int_equal(tide_start_server("127.0.0.1", 0, sself_handler, x, NULL, &x->srv), 0);
    x->port = tide_server_port(x->srv);
    assert_int_equal(tide_open_connection("127.0.0.1", x->port, &c), 0);
    while (!x->close_rc)
        tide_sleep(1);
    tide_stream_close(c);
    return tide_server_close(x->srv, TIDE_SERVER_CANCEL);
}

static void test_server_close_from_handler(void **state)
{
    sself x;
    int before = tt_count_fds();
    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(sself_main, &x);
    assert_int_equal(x.close_rc, -EDEADLK);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------------------------- two stream closers */

/* Two tasks close one stream: the fd is closed once (a second close used
 * to close whatever fd had reused the number). */
typedef struct twoc {
    tide_stream *s;
    int peer, rc1, rc2, victim, victim_ok;
} twoc;

static int twoc_first(void *arg)
{
    twoc *x = arg;
    x->rc1 = tide_stream_close(x->s); /* waits: the peer does not read */
    return 0;
}

static int twoc_main(void *arg)
{
    twoc *x = arg;
    static char big[1 << 20];
    tide_task *t;
    int sv[2];
    assert_int_equal(tt_socketpair(sv, 4096), 0);
    x->peer = sv[1];
    assert_int_equal(tide_stream_open(&x->s, sv[0], NULL), 0);
    assert_int_equal(tide_stream_write(x->s, big, sizeof big), (ssize_t)sizeof big);
    tide_create_task(&t, twoc_first, x);
    tide_sleep(5);
    x->rc2 = tide_stream_close(x->s); /* the stream is already closing */
    x->victim = open("/dev/null", O_RDONLY | O_CLOEXEC); /* may reuse the number */
    tide_cancel(t);
    tide_await(t);
    x->victim_ok = fcntl(x->victim, F_GETFD) >= 0;
    close(x->victim);
    close(x->peer);
    return 0;
}

static void test_stream_closed_twice(void **state)
{
    twoc x;
    int before = tt_count_fds();
    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(twoc_main, &x);
    assert_int_equal(x.rc2, -EBADF);
    assert_int_equal(x.rc1, -ECANCELED);
    assert_true(x.victim_ok);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------- datagrams and sendfile */

/* Two datagrams queued at once: a short recv on a datagram socket must not
 * be taken for "drained" (the second recv used to hang). */
typedef struct dg {
    ssize_t n1, n2;
} dg;

static int dg_main(void *arg)
{
    dg *d = arg;
    struct sockaddr_in to;
    socklen_t len = sizeof to;
    char buf[64];
    int a = tide_udp_bind("127.0.0.1", 0), b = tide_udp_bind("127.0.0.1", 0);
    assert_true(a >= 0 && b >= 0);
    getsockname(b, (struct sockaddr *)&to, &len);
    tide_wait_writable(b); /* registered now: the arrival below is one edge */
    tide_sleep(1);
    tide_sendto(a, "one", 3, 0, (struct sockaddr *)&to, len);
    tide_sendto(a, "two", 3, 0, (struct sockaddr *)&to, len);
    tide_sleep(5); /* both arrive before the first recv */
    d->n1 = tide_recv(b, buf, sizeof buf, 0);
    d->n2 = tide_recv(b, buf, sizeof buf, 0);
    tide_close(a);
    tide_close(b);
    return 0;
}

static void test_datagrams_not_drained_by_short_recv(void **state)
{
    dg d;
    (void)state;
    memset(&d, 0, sizeof d);
    TT_RUN(dg_main, &d);
    assert_int_equal(d.n1, 3);
    assert_int_equal(d.n2, 3);
}

/* sendfile asked for more than the file holds returns what there was (it
 * used to wait forever at end of file). */
typedef struct sf {
    ssize_t n;
    char got[16];
} sf;

static int sf_main(void *arg)
{
    sf *x = arg;
    char path[] = "/tmp/tide-regress-XXXXXX";
    int fd = mkstemp(path), sv[2];
    off_t off = 0;
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "hello", 5), 5);
    assert_int_equal(tt_socketpair(sv, 0), 0);
    x->n = tide_sendfile(sv[0], fd, &off, 100);
    assert_int_equal(read(sv[1], x->got, sizeof x->got), 5);
    close(fd);
    tide_close(sv[0]);
    close(sv[1]);
    return 0;
}

static void test_sendfile_short_file(void **state)
{
    sf x;
    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(sf_main, &x);
    assert_int_equal(x.n, 5);
    assert_memory_equal(x.got, "hello", 5);
}

/* sendfile past the end of its input on a socket written to (and polled)
 * before: the registration's writable edge is long gone, so a short count
 * must not be read as "socket buffer full".  It used to wait for an edge
 * that never came, until a deadline, and then return the count. */
typedef struct sfw {
    ssize_t n, n_eof;
    int waited; /* the wait kind a suspension named: none if it never suspended */
    off_t off;
    char got[16];
    ssize_t got_n;
} sfw;

static int sfw_main(void *arg)
{
    sfw *x = arg;
    char path[] = "/tmp/tide-regress-XXXXXX", c;
    int fd = mkstemp(path), sv[2];
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "hello", 5), 5);
    assert_int_equal(tt_socketpair(sv, 0), 0);
    assert_int_equal(tide_write(sv[0], "x", 1), 1);
    assert_int_equal(read(sv[1], &c, 1), 1);
    tide_sleep(5); /* the loop polls: every edge so far is consumed */
    x->off = 0;
    /* The bug waited for an edge that never came (a hang: TT_RUN's guard).
     * Exactly: neither call suspends at all (a suspension names its wait
     * kind, scripts/check_wait_reasons.py). */
    tide_current_task()->wait_kind = TIDE_WAIT_NONE;
    x->n = tide_sendfile(sv[0], fd, &x->off, 100);
    x->n_eof = tide_sendfile(sv[0], fd, &x->off, 100); /* offset == size */
    x->waited = tide_current_task()->wait_kind;
    x->got_n = read(sv[1], x->got, sizeof x->got);
    close(fd);
    tide_close(sv[0]);
    close(sv[1]);
    return 0;
}

static void test_sendfile_past_eof_written_socket(void **state)
{
    sfw x;
    (void)state;
    memset(&x, 0, sizeof x);
    TT_RUN(sfw_main, &x);
    assert_int_equal(x.n, 5);
    assert_int_equal(x.waited, TIDE_WAIT_NONE);
    assert_int_equal(x.n_eof, 0);
    assert_int_equal(x.off, 5);
    assert_int_equal(x.got_n, 5);
    assert_memory_equal(x.got, "hello", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_owns_its_tasks),
        cmocka_unit_test(test_as_completed_free_wakes_next),
        cmocka_unit_test(test_server_close_from_handler),
        cmocka_unit_test(test_stream_closed_twice),
        cmocka_unit_test(test_datagrams_not_drained_by_short_recv),
        cmocka_unit_test(test_sendfile_short_file),
        cmocka_unit_test(test_sendfile_past_eof_written_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
