/*
 * Tests of sockets and name resolution (src/net.c, tide_accept/tide_connect
 * of src/io.c): TCP listen/connect on 127.0.0.1 and ::1, refused
 * connections, unknown names, getaddrinfo on the pool and its cancellation,
 * UDP, Unix sockets (paths and the abstract namespace), cancelling accept
 * and connect, misuse.  Loopback only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netdb.h>

#include "tide.h"
#include "net_util.h"

static int spawn(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task(t, fn, arg);
}

/* ------------------------------------------------------ TCP echo, port 0 */

typedef struct echo {
    const char *host; /* to listen on and connect to */
    int lfd, port, cfd, afd;
    ssize_t w, r, ew;
    char buf[32];
    int peer_family;
    int close_rc;
} echo;

static int echo_server(void *arg)
{
    echo *e = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char b[32];
    e->afd = tide_accept(e->lfd, (struct sockaddr *)&ss, &len);
    if (e->afd < 0)
        return e->afd;
    e->peer_family = ss.ss_family;
    ssize_t n = tide_read(e->afd, b, sizeof b);
    if (n > 0)
        e->ew = tide_write(e->afd, b, (size_t)n);
    tide_close(e->afd);
    return 0;
}

static int echo_main(void *arg)
{
    echo *e = arg;
    tide_task *s;
    e->lfd = tide_tcp_listen(e->host, 0, NULL);
    if (e->lfd < 0)
        return e->lfd;
    e->port = tide_sock_port(e->lfd);
    spawn(&s, echo_server, e);
    e->cfd = tide_tcp_connect(e->host, e->port);
    if (e->cfd >= 0) {
        e->w = tide_write(e->cfd, "ping over tcp", 13);
        e->r = tide_read(e->cfd, e->buf, sizeof e->buf);
        tide_close(e->cfd);
    }
    tide_await(s);
    e->close_rc = tide_close(e->lfd);
    return 0;
}

static void run_echo(const char *host, int family)
{
    int before = tt_count_fds();
    echo e;
    memset(&e, 0, sizeof e);
    e.host = host;
    TT_RUN(echo_main, &e);
    assert_true(e.port > 0 && e.port < 65536);
    assert_true(e.cfd >= 0);
    assert_int_equal(e.peer_family, family);
    assert_int_equal(e.w, 13);
    assert_int_equal(e.ew, 13);
    assert_int_equal(e.r, 13);
    assert_memory_equal(e.buf, "ping over tcp", 13);
    assert_int_equal(e.close_rc, 0);
    assert_int_equal(tt_count_fds(), before);
}

static void test_tcp_echo_v4(void **state)
{
    (void)state;
    run_echo("127.0.0.1", AF_INET);
}

static void test_tcp_echo_v6(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        print_message("no IPv6 here (socket: %s): skipped\n", strerror(errno));
        skip();
    }
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (!ok) {
        print_message("no ::1 here: skipped\n");
        skip();
    }
    run_echo("::1", AF_INET6);
}

static int localhost_main(void *arg)
{
    echo *e = arg;
    tide_task *s;
    e->lfd = tide_tcp_listen("127.0.0.1", 0, NULL);
    if (e->lfd < 0)
        return e->lfd;
    e->port = tide_sock_port(e->lfd);
    spawn(&s, echo_server, e);
    /* localhost may resolve to ::1 too: Happy Eyeballs falls over to v4 */
    e->cfd = tide_tcp_connect("localhost", e->port);
    if (e->cfd >= 0) {
        tide_write(e->cfd, "ping over tcp", 13);
        e->r = tide_read(e->cfd, e->buf, sizeof e->buf);
        tide_close(e->cfd);
    } else {
        tide_cancel(s);
    }
    tide_await(s);
    tide_close(e->lfd);
    return 0;
}

/* "localhost" needs a lookup (on the pool); the connection must still work. */
static void test_tcp_echo_localhost_name(void **state)
{
    (void)state;
    int before = tt_count_fds();
    echo e;
    memset(&e, 0, sizeof e);
    e.host = "127.0.0.1";
    TT_RUN(localhost_main, &e);
    assert_true(e.cfd >= 0);
    assert_int_equal(e.r, 13);
    assert_memory_equal(e.buf, "ping over tcp", 13);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------- refused, unknown names */

typedef struct bad {
    int port;
    int refused, refused_name, noname, gai_noname, gai_ok, gai_family;
    int listen_bad_port, listen_neg_port, connect_bad_port, unix_long, unix_long_c, unix_empty;
    int listen_inuse;
} bad;

static int bad_main(void *arg)
{
    bad *b = arg;
    struct addrinfo *res = NULL, hints;
    b->refused = tide_tcp_connect("127.0.0.1", b->port);
    b->refused_name = tide_tcp_connect("localhost", b->port);
    int64_t t0 = tide_now();
    b->noname = tide_tcp_connect("no-such-host.invalid", 80);
    b->gai_noname = tide_getaddrinfo("no-such-host.invalid", "80", NULL, &res);
    if (tide_now() - t0 > 10000)
        b->noname = 1; /* too slow: must fail fast */
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    /* A service name goes through the pool too; a minimal system may have
     * no /etc/services (netbase), then the port number stands in. */
    b->gai_ok = tide_getaddrinfo("localhost", getservbyname("http", "tcp") ? "http" : "80",
                                 &hints, &res);
    if (b->gai_ok == 0) {
        b->gai_family = res->ai_family;
        freeaddrinfo(res);
    }
    b->listen_bad_port = tide_tcp_listen("127.0.0.1", 70000, NULL);
    b->listen_neg_port = tide_tcp_listen("127.0.0.1", -1, NULL);
    b->connect_bad_port = tide_tcp_connect("127.0.0.1", 70000);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    b->unix_long = tide_unix_listen(longp, NULL);
    b->unix_long_c = tide_unix_connect(longp);
    b->unix_empty = tide_unix_listen("", NULL);
    /* the port is bound (not listening) by the test: in use */
    b->listen_inuse = tide_tcp_listen("127.0.0.1", b->port, NULL);
    if (b->listen_inuse >= 0)
        tide_close(b->listen_inuse);
    return 0;
}

static void test_refused_and_bad_names(void **state)
{
    (void)state;
    int before = tt_count_fds();
    /* a port bound but not listening: connections are refused */
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(hold, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(hold, (struct sockaddr *)&a, &len), 0);
    bad b;
    memset(&b, 0, sizeof b);
    b.port = ntohs(a.sin_port);
    int after_hold = tt_count_fds();
    TT_RUN(bad_main, &b);
    assert_int_equal(tt_count_fds(), after_hold);
    close(hold);
    assert_int_equal(b.refused, -ECONNREFUSED);
    assert_int_equal(b.refused_name, -ECONNREFUSED);
    assert_true(TIDE_IS_EAI(b.noname));
    assert_true(TIDE_IS_EAI(b.gai_noname));
    assert_true(strlen(tide_strerror(b.noname)) > 0);
    assert_int_equal(b.gai_ok, 0);
    assert_int_equal(b.gai_family, AF_INET);
    assert_int_equal(b.listen_bad_port, -EINVAL);
    assert_int_equal(b.listen_neg_port, -EINVAL);
    assert_int_equal(b.connect_bad_port, -EINVAL);
    assert_int_equal(b.unix_long, -ENAMETOOLONG);
    assert_int_equal(b.unix_long_c, -ENAMETOOLONG);
    assert_int_equal(b.unix_empty, -EINVAL);
    assert_int_equal(b.listen_inuse, -EADDRINUSE);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------------------------- getaddrinfo cancel */

typedef struct gc {
    int busy_rc[4];
    int lookup_rc;
    struct addrinfo *res;
    int precancel_rc;
    int64_t cancel_took;
} gc;

/* The busy jobs hold the 4 workers until gc_main has cancelled the
 * lookup queued behind them (a fixed 200 ms could pass on a loaded machine
 * before the cancel came, and the lookup would then have run). */
static int busy_release;

static int sleeper_job(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&busy_release, __ATOMIC_ACQUIRE))
        usleep(1000);
    return 0;
}

static int busy_task(void *arg)
{
    return tide_to_thread(sleeper_job, arg);
}

static int lookup_task(void *arg)
{
    gc *g = arg;
    g->lookup_rc = tide_getaddrinfo("localhost", "80", NULL, &g->res);
    return 0;
}

static int precancelled_lookup(void *arg)
{
    gc *g = arg;
    struct addrinfo *res = NULL;
    tide_cancel(tide_current_task());
    g->precancel_rc = tide_getaddrinfo("localhost", "80", NULL, &res);
    if (res)
        freeaddrinfo(res);
    return 0;
}

static int gc_main(void *arg)
{
    gc *g = arg;
    tide_task *busy[4], *l, *p;
    /* keep the 4 workers busy, so the lookup is surely still queued */
    for (int i = 0; i < 4; i++)
        spawn(&busy[i], busy_task, g);
    tide_sleep(10);
    spawn(&l, lookup_task, g);
    tide_sleep(10);
    int64_t t0 = tide_now();
    tide_cancel(l);
    tide_await(l);
    g->cancel_took = tide_now() - t0;
    __atomic_store_n(&busy_release, 1, __ATOMIC_RELEASE);
    spawn(&p, precancelled_lookup, g);
    tide_await(p);
    tide_gather(busy, 4, g->busy_rc);
    return 0;
}

static void test_getaddrinfo_cancel(void **state)
{
    (void)state;
    int before = tt_count_fds();
    gc g;
    memset(&g, 0, sizeof g);
    busy_release = 0;
    TT_RUN(gc_main, &g);
    /* the late result is freed by tide: ASan's leak check proves it */
    assert_int_equal(g.lookup_rc, -ECANCELED);
    assert_null(g.res);
    assert_true(g.cancel_took < 5000); /* at once: the lookup could not have run */
    assert_int_equal(g.precancel_rc, -ECANCELED);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------- cancel accept and connect */

typedef struct ac {
    int lfd, full_lfd, port;
    int pending[8];
    int npending;
    int acc_rc, conn_rc, tcp_conn_rc, timed_rc, end_rc;
    int64_t timed_took;
} ac;

static int ac_accept(void *arg)
{
    ac *a = arg;
    a->acc_rc = tide_accept(a->lfd, NULL, NULL);
    if (a->acc_rc >= 0)
        tide_close(a->acc_rc);
    return 0;
}

static int ac_connect(void *arg)
{
    ac *a = arg;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)a->port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a->conn_rc = tide_connect(fd, (struct sockaddr *)&sa, sizeof sa);
    tide_close(fd);
    return 0;
}

static int ac_tcp_connect(void *arg)
{
    ac *a = arg;
    a->tcp_conn_rc = tide_tcp_connect("127.0.0.1", a->port);
    if (a->tcp_conn_rc >= 0)
        tide_close(a->tcp_conn_rc);
    return 0;
}

static int ac_main(void *arg)
{
    ac *a = arg;
    tide_task *t[3];
    a->acc_rc = a->conn_rc = a->tcp_conn_rc = 1;
    a->lfd = tide_tcp_listen("127.0.0.1", 0, NULL);
    /* A listener that never accepts, backlog 0, its queue filled by plain
     * non-blocking connects: further handshakes stall (SYNs are dropped),
     * so a connect blocks, on loopback. */
    tide_listen_opts lo;
    tide_listen_opts_init(&lo);
    lo.backlog = 1;
    a->full_lfd = tide_tcp_listen("127.0.0.1", 0, &lo);
    a->port = tide_sock_port(a->full_lfd);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)a->port);
    for (int i = 0; i < 4; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        (void)connect(fd, (struct sockaddr *)&sa, sizeof sa);
        a->pending[a->npending++] = fd;
    }
    tide_sleep(20);
    /* it does block: a timeout scope ends it */
    {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        tide_scope sc;
        int64_t t0 = tide_now();
        tide_timeout_begin(&sc, 100);
        a->timed_rc = tide_connect(fd, (struct sockaddr *)&sa, sizeof sa);
        a->end_rc = tide_timeout_end(&sc);
        a->timed_took = tide_now() - t0;
        tide_close(fd);
    }
    spawn(&t[0], ac_accept, a);
    spawn(&t[1], ac_connect, a);
    spawn(&t[2], ac_tcp_connect, a);
    tide_sleep(50);
    for (int i = 0; i < 3; i++)
        tide_cancel(t[i]);
    tide_gather(t, 3, NULL);
    for (int i = 0; i < a->npending; i++)
        close(a->pending[i]);
    tide_close(a->lfd);
    tide_close(a->full_lfd);
    return 0;
}

static void test_cancel_accept_connect(void **state)
{
    (void)state;
    int before = tt_count_fds();
    ac a;
    memset(&a, 0, sizeof a);
    TT_RUN(ac_main, &a);
    assert_int_equal(a.timed_rc, -ETIMEDOUT);
    assert_int_equal(a.end_rc, -ETIMEDOUT);
    assert_true(a.timed_took >= 90 && a.timed_took < 2000);
    assert_int_equal(a.acc_rc, -ECANCELED);
    assert_int_equal(a.conn_rc, -ECANCELED);
    assert_int_equal(a.tcp_conn_rc, -ECANCELED);
    assert_int_equal(tt_count_fds(), before);
}

/* ----------------------------------------------------------------- UDP */

typedef struct udp {
    int a, b, pa, pb;
    ssize_t s1, r1, s2, r2;
    int from_port, from_family;
    char buf[64], buf2[64];
    uint32_t from_addr;
    int big_rc;
} udp;

static int udp_main(void *arg)
{
    udp *u = arg;
    u->a = tide_udp_bind("127.0.0.1", 0);
    u->b = tide_udp_bind("127.0.0.1", 0);
    if (u->a < 0 || u->b < 0)
        return -1;
    u->pa = tide_sock_port(u->a);
    u->pb = tide_sock_port(u->b);
    struct sockaddr_in to, from;
    socklen_t flen = sizeof from;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)u->pb);
    /* b waits before anything is sent: recvfrom must suspend and wake */
    u->s1 = tide_sendto(u->a, "datagram-one", 12, 0, (struct sockaddr *)&to, sizeof to);
    u->s2 = tide_sendto(u->a, "two", 3, 0, (struct sockaddr *)&to, sizeof to);
    u->r1 = tide_recvfrom(u->b, u->buf, sizeof u->buf, 0, (struct sockaddr *)&from, &flen);
    u->from_port = ntohs(from.sin_port);
    u->from_family = from.sin_family;
    u->from_addr = ntohl(from.sin_addr.s_addr);
    /* datagram boundaries are kept */
    u->r2 = tide_recvfrom(u->b, u->buf2, sizeof u->buf2, 0, NULL, NULL);
    tide_close(u->a);
    tide_close(u->b);
    return 0;
}

static void test_udp_round_trip(void **state)
{
    (void)state;
    int before = tt_count_fds();
    udp u;
    memset(&u, 0, sizeof u);
    TT_RUN(udp_main, &u);
    assert_true(u.pa > 0 && u.pb > 0 && u.pa != u.pb);
    assert_int_equal(u.s1, 12);
    assert_int_equal(u.s2, 3);
    assert_int_equal(u.r1, 12);
    assert_memory_equal(u.buf, "datagram-one", 12);
    assert_int_equal(u.from_family, AF_INET);
    assert_int_equal(u.from_port, u.pa);
    assert_int_equal(u.from_addr, INADDR_LOOPBACK);
    assert_int_equal(u.r2, 3);
    assert_memory_equal(u.buf2, "two", 3);
    assert_int_equal(tt_count_fds(), before);
}

/* A recvfrom waiting for a datagram that comes later. */
typedef struct udp2 {
    int a, b, pb;
    ssize_t r;
    int64_t waited;
    char buf[8];
} udp2;

static int udp2_sender(void *arg)
{
    udp2 *u = arg;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)u->pb);
    tide_sleep(30);
    return (int)tide_sendto(u->a, "late", 4, 0, (struct sockaddr *)&to, sizeof to);
}

static int udp2_main(void *arg)
{
    udp2 *u = arg;
    tide_task *t;
    u->a = tide_udp_bind(NULL, 0);
    u->b = tide_udp_bind("127.0.0.1", 0);
    u->pb = tide_sock_port(u->b);
    spawn(&t, udp2_sender, u);
    int64_t t0 = tide_now();
    u->r = tide_recvfrom(u->b, u->buf, sizeof u->buf, 0, NULL, NULL);
    u->waited = tide_now() - t0;
    tide_await(t);
    tide_close(u->a);
    tide_close(u->b);
    return 0;
}

static void test_udp_wait(void **state)
{
    (void)state;
    int before = tt_count_fds();
    udp2 u;
    memset(&u, 0, sizeof u);
    TT_RUN(udp2_main, &u);
    assert_int_equal(u.r, 4);
    assert_memory_equal(u.buf, "late", 4);
    assert_true(u.waited >= 20);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------------------- Unix */

typedef struct ux {
    char path[108];
    int lfd, cfd, afd;
    ssize_t w, r, ew;
    char buf[32];
    int port_rc;
} ux;

static int ux_server(void *arg)
{
    ux *u = arg;
    char b[32];
    u->afd = tide_accept(u->lfd, NULL, NULL);
    if (u->afd < 0)
        return 0;
    ssize_t n = tide_read(u->afd, b, sizeof b);
    if (n > 0)
        u->ew = tide_write(u->afd, b, (size_t)n);
    tide_close(u->afd);
    return 0;
}

static int ux_main(void *arg)
{
    ux *u = arg;
    tide_task *s;
    u->lfd = tide_unix_listen(u->path, NULL);
    if (u->lfd < 0)
        return u->lfd;
    u->port_rc = tide_sock_port(u->lfd);
    spawn(&s, ux_server, u);
    u->cfd = tide_unix_connect(u->path);
    if (u->cfd >= 0) {
        u->w = tide_write(u->cfd, "unix hello", 10);
        u->r = tide_read(u->cfd, u->buf, sizeof u->buf);
        tide_close(u->cfd);
    } else {
        tide_cancel(s);
    }
    tide_await(s);
    tide_close(u->lfd);
    return 0;
}

static void run_unix(const char *path)
{
    int before = tt_count_fds();
    ux u;
    memset(&u, 0, sizeof u);
    snprintf(u.path, sizeof u.path, "%s", path);
    TT_RUN(ux_main, &u);
    assert_true(u.cfd >= 0);
    assert_int_equal(u.w, 10);
    assert_int_equal(u.ew, 10);
    assert_int_equal(u.r, 10);
    assert_memory_equal(u.buf, "unix hello", 10);
    assert_int_equal(u.port_rc, -EAFNOSUPPORT);
    assert_int_equal(tt_count_fds(), before);
}

static void test_unix_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/tide_unix_XXXXXX";
    char path[108];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sock", dir);
    run_unix(path);
    unlink(path);
    rmdir(dir);
}

static void test_unix_abstract(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "@tide-test-%d", (int)getpid());
    run_unix(path);
    /* nothing on the file system */
    assert_int_equal(access(path, F_OK), -1);
}

typedef struct uxr {
    int rc_missing;
    char path[108];
} uxr;

static int uxr_main(void *arg)
{
    uxr *u = arg;
    u->rc_missing = tide_unix_connect(u->path);
    return 0;
}

static void test_unix_connect_missing(void **state)
{
    (void)state;
    int before = tt_count_fds();
    uxr u;
    snprintf(u.path, sizeof u.path, "/tmp/tide-no-such-socket-%d", (int)getpid());
    TT_RUN(uxr_main, &u);
    assert_int_equal(u.rc_missing, -ENOENT);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------------------- misuse */

static void test_misuse_outside_task(void **state)
{
    (void)state;
    int before = tt_count_fds();
    struct addrinfo *res = NULL;
    /* a numeric lookup needs no task */
    assert_int_equal(tide_getaddrinfo("127.0.0.1", "80", NULL, &res), 0);
    assert_non_null(res);
    freeaddrinfo(res);
    res = NULL;
    /* a real lookup does */
    assert_int_equal(tide_getaddrinfo("localhost", "80", NULL, &res), -EPERM);
    assert_null(res);
    assert_int_equal(tide_getaddrinfo(NULL, NULL, NULL, &res), -EINVAL);
    assert_int_equal(tide_getaddrinfo("127.0.0.1", "80", NULL, NULL), -EINVAL);
    assert_int_equal(tide_tcp_connect("127.0.0.1", 80), -EPERM);
    assert_int_equal(tide_unix_connect("/tmp/x"), -EPERM);
    assert_int_equal(tide_tcp_listen("127.0.0.1", 70000, NULL), -EINVAL);
    assert_int_equal(tide_sock_port(-1), -EBADF);
    assert_int_equal(tide_tcp_nodelay(-1, 1), -EBADF);
    /* listening on a numeric address works outside a task */
    int fd = tide_tcp_listen("127.0.0.1", 0, NULL);
    assert_true(fd >= 0);
    assert_true(tide_sock_port(fd) > 0);
    assert_int_equal(tide_tcp_nodelay(fd, 1), 0);
    close(fd);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_echo_v4),
        cmocka_unit_test(test_tcp_echo_v6),
        cmocka_unit_test(test_tcp_echo_localhost_name),
        cmocka_unit_test(test_refused_and_bad_names),
        cmocka_unit_test(test_getaddrinfo_cancel),
        cmocka_unit_test(test_cancel_accept_connect),
        cmocka_unit_test(test_udp_round_trip),
        cmocka_unit_test(test_udp_wait),
        cmocka_unit_test(test_unix_path),
        cmocka_unit_test(test_unix_abstract),
        cmocka_unit_test(test_unix_connect_missing),
        cmocka_unit_test(test_misuse_outside_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
