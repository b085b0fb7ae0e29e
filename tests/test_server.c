/*
 * Tests of tide_start_server / tide_server_close (src/server.c): echo with
 * port 0, graceful and cancelling close, max_connections, a caller
 * cancelled during a graceful close, EMFILE during accept (in a child
 * process), 10 000 concurrent connections (the clients in a child process
 * when RLIMIT_NOFILE is too small for both sides), misuse.  Loopback only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"
#include "net_util.h"

static int spawn(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task(t, fn, arg);
}

/* Connects to 127.0.0.1:port and opens a stream. */
static int client(int port, tide_stream **s)
{
    return tide_open_connection("127.0.0.1", port, s);
}

/* Echoes lines until EOF or an error; returns why it ended. */
static int echo_handler(tide_stream *s, void *arg)
{
    char buf[256];
    (void)arg;
    for (;;) {
        ssize_t n = tide_stream_readline(s, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            return -EIO;
    }
}

/* ------------------------------------------------------- echo, port 0 */

typedef struct basic {
    int port, port_after;
    int start_rc, close_rc;
    size_t conns_peak, conns_after;
    int ok;
} basic;

static int basic_main(void *arg)
{
    basic *b = arg;
    tide_server *srv;
    tide_stream *c[3];
    char buf[64];
    b->start_rc = tide_start_server(NULL, 0, echo_handler, NULL, NULL, &srv);
    if (b->start_rc < 0)
        return 0;
    b->port = tide_server_port(srv);
    b->ok = 1;
    for (int i = 0; i < 3; i++)
        if (client(b->port, &c[i]) < 0)
            b->ok = 0;
    for (int round = 0; round < 3 && b->ok; round++)
        for (int i = 0; i < 3; i++) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "client %d round %d\n", i, round);
            tide_stream_write(c[i], msg, (size_t)n);
            if (tide_stream_readline(c[i], buf, sizeof buf) != n || memcmp(buf, msg, (size_t)n))
                b->ok = 0;
        }
    b->conns_peak = tide_server_connections(srv);
    for (int i = 0; i < 3; i++)
        tide_stream_close(c[i]);
    for (int i = 0; i < 100 && tide_server_connections(srv); i++)
        tide_sleep(2);
    b->conns_after = tide_server_connections(srv);
    b->close_rc = tide_server_close(srv, TIDE_SERVER_WAIT);
    return 0;
}

static void test_server_echo_port0(void **state)
{
    (void)state;
    int before = tt_count_fds();
    basic b;
    memset(&b, 0, sizeof b);
    TT_RUN(basic_main, &b);
    assert_int_equal(b.start_rc, 0);
    assert_true(b.port > 0 && b.port < 65536);
    assert_int_equal(b.ok, 1);
    assert_int_equal(b.conns_peak, 3);
    assert_int_equal(b.conns_after, 0);
    assert_int_equal(b.close_rc, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------- graceful and cancelling close */

typedef struct gs {
    int port, close_rc, handlers_done, handler_rc[4], nh;
    int sleep_ms;                /* how long a handler that got a line sleeps */
    int64_t sleep_t0, close_end; /* when the (first) sleep began, the close returned */
    int64_t close_took;
    int done_at_close;
    ssize_t client_read;
    char buf[16];
    int refused_after;
} gs;

static int slow_handler(tide_stream *s, void *arg)
{
    gs *g = arg;
    char buf[64];
    int idx = g->nh++;
    ssize_t n = tide_stream_readline(s, buf, sizeof buf);
    if (n <= 0) {
        g->handler_rc[idx] = (int)n;
        return (int)n;
    }
    if (idx == 0)
        g->sleep_t0 = tide_now();
    int rc = tide_sleep(g->sleep_ms);
    g->handler_rc[idx] = rc;
    if (rc == 0) {
        tide_stream_write(s, "done\n", 5);
        g->handlers_done++;
    }
    return rc;
}

static int gs_wait_main(void *arg)
{
    gs *g = arg;
    tide_server *srv;
    tide_stream *c;
    if (tide_start_server("127.0.0.1", 0, slow_handler, g, NULL, &srv) < 0)
        return -1;
    g->port = tide_server_port(srv);
    client(g->port, &c);
    tide_stream_write(c, "go\n", 3);
    while (g->nh == 0)
        tide_sleep(1);
    int64_t t0 = tide_now();
    g->close_rc = tide_server_close(srv, TIDE_SERVER_WAIT);
    g->close_end = tide_now();
    g->close_took = g->close_end - t0;
    g->done_at_close = g->handlers_done;
    g->client_read = tide_stream_readline(c, g->buf, sizeof g->buf);
    tide_stream_close(c);
    /* the listener is gone */
    int fd = tide_tcp_connect("127.0.0.1", g->port);
    g->refused_after = fd;
    if (fd >= 0)
        tide_close(fd);
    return 0;
}

static void test_server_close_wait(void **state)
{
    (void)state;
    int before = tt_count_fds();
    gs g;
    memset(&g, 0, sizeof g);
    g.sleep_ms = 100;
    TT_RUN(gs_wait_main, &g);
    assert_int_equal(g.close_rc, 0);
    assert_int_equal(g.done_at_close, 1);
    assert_int_equal(g.handler_rc[0], 0);
    /* the close waited for the handler's sleep to end (measured from the
     * sleep's start: the close's own start may come late on a loaded
     * machine, so its duration says nothing) */
    assert_true(g.close_end >= g.sleep_t0 + g.sleep_ms - 1);
    assert_int_equal(g.client_read, 5);
    assert_memory_equal(g.buf, "done\n", 5);
    assert_int_equal(g.refused_after, -ECONNREFUSED);
    assert_int_equal(tt_count_fds(), before);
}

static int gs_cancel_main(void *arg)
{
    gs *g = arg;
    tide_server *srv;
    tide_stream *c[2];
    if (tide_start_server("127.0.0.1", 0, slow_handler, g, NULL, &srv) < 0)
        return -1;
    g->port = tide_server_port(srv);
    client(g->port, &c[0]);
    client(g->port, &c[1]);
    tide_stream_write(c[0], "go\n", 3); /* handler 0 sleeps, handler 1 reads */
    while (g->nh < 2)
        tide_sleep(1);
    tide_sleep(5);
    int64_t t0 = tide_now();
    g->close_rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
    g->close_took = tide_now() - t0;
    g->done_at_close = g->handlers_done;
    /* the connections were closed by the server: EOF */
    g->client_read = tide_stream_readline(c[0], g->buf, sizeof g->buf);
    tide_stream_close(c[0]);
    tide_stream_close(c[1]);
    return 0;
}

static void test_server_close_cancel(void **state)
{
    (void)state;
    int before = tt_count_fds();
    gs g;
    memset(&g, 0, sizeof g);
    /* Longer than the TT_RUN guard: a close that waited for it fails the
     * test.  (It slept 100 ms, which a loaded machine could let pass
     * before the close came: the handler then ended on its own.) */
    g.sleep_ms = 600000;
    TT_RUN(gs_cancel_main, &g);
    assert_int_equal(g.close_rc, 0);
    assert_int_equal(g.nh, 2);
    assert_int_equal(g.handler_rc[0], -ECANCELED);
    assert_int_equal(g.handler_rc[1], -ECANCELED);
    assert_int_equal(g.done_at_close, 0);
    assert_true(g.close_took < 5000); /* it did not wait for the handler */
    assert_int_equal(g.client_read, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* A caller cancelled while it waits gracefully: handlers are cancelled and
 * still waited for; a second close meanwhile gets -EALREADY. */
typedef struct gcc {
    tide_server *srv;
    int close_rc, second_rc, nh, handler_rc;
    int handler_ended_before_return;
    int ended;
} gcc;

static int blocking_handler(tide_stream *s, void *arg)
{
    gcc *g = arg;
    char buf[16];
    g->nh++;
    g->handler_rc = (int)tide_stream_readline(s, buf, sizeof buf);
    g->ended = 1;
    return 0;
}

static int gcc_closer(void *arg)
{
    gcc *g = arg;
    g->close_rc = tide_server_close(g->srv, TIDE_SERVER_WAIT);
    g->handler_ended_before_return = g->ended;
    return 0;
}

static int gcc_main(void *arg)
{
    gcc *g = arg;
    tide_stream *c;
    tide_task *t;
    if (tide_start_server("127.0.0.1", 0, blocking_handler, g, NULL, &g->srv) < 0)
        return -1;
    client(tide_server_port(g->srv), &c);
    while (g->nh == 0)
        tide_sleep(1);
    spawn(&t, gcc_closer, g);
    tide_sleep(20);
    g->second_rc = tide_server_close(g->srv, TIDE_SERVER_WAIT);
    tide_cancel(t);
    tide_await(t);
    tide_stream_close(c);
    return 0;
}

static void test_server_close_caller_cancelled(void **state)
{
    (void)state;
    int before = tt_count_fds();
    gcc g;
    memset(&g, 0, sizeof g);
    TT_RUN(gcc_main, &g);
    assert_int_equal(g.second_rc, -EALREADY);
    assert_int_equal(g.close_rc, -ECANCELED);
    assert_int_equal(g.handler_rc, -ECANCELED);
    assert_int_equal(g.handler_ended_before_return, 1);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------ max_connections */

typedef struct mc {
    int ok12, third_early, third_end, third_late;
    size_t max_seen;
    char buf[32];
    tide_server *srv;
    int stop;
} mc;

static int mc_watch(void *arg)
{
    mc *m = arg;
    while (!m->stop) {
        size_t n = tide_server_connections(m->srv);
        if (n > m->max_seen)
            m->max_seen = n;
        if (tide_sleep(1) < 0)
            break;
    }
    return 0;
}

static int mc_main(void *arg)
{
    mc *m = arg;
    tide_server_opts o;
    tide_stream *c[3];
    tide_task *w;
    char buf[32];
    tide_server_opts_init(&o);
    o.max_connections = 2;
    if (tide_start_server("127.0.0.1", 0, echo_handler, NULL, &o, &m->srv) < 0)
        return -1;
    int port = tide_server_port(m->srv);
    spawn(&w, mc_watch, m);
    client(port, &c[0]);
    client(port, &c[1]);
    m->ok12 = 1;
    for (int i = 0; i < 2; i++) {
        tide_stream_write(c[i], "hi\n", 3);
        if (tide_stream_readline(c[i], buf, sizeof buf) != 3)
            m->ok12 = 0;
    }
    /* the third connects (the kernel's backlog) but is not served */
    client(port, &c[2]);
    tide_stream_write(c[2], "third\n", 6);
    tide_scope sc;
    tide_timeout_begin(&sc, 200);
    m->third_early = (int)tide_stream_readline(c[2], m->buf, sizeof m->buf);
    m->third_end = tide_timeout_end(&sc);
    /* one of the two leaves: the third is served, its line not lost */
    tide_stream_close(c[0]);
    tide_timeout_begin(&sc, 3000);
    m->third_late = (int)tide_stream_readline(c[2], m->buf, sizeof m->buf);
    tide_timeout_end(&sc);
    tide_stream_close(c[1]);
    tide_stream_close(c[2]);
    m->stop = 1;
    tide_await(w);
    tide_server_close(m->srv, TIDE_SERVER_WAIT);
    return 0;
}

static void test_server_max_connections(void **state)
{
    (void)state;
    int before = tt_count_fds();
    mc m;
    memset(&m, 0, sizeof m);
    TT_RUN(mc_main, &m);
    assert_int_equal(m.ok12, 1);
    assert_int_equal(m.third_early, -ETIMEDOUT);
    assert_int_equal(m.third_end, -ETIMEDOUT);
    assert_int_equal(m.third_late, 6);
    assert_memory_equal(m.buf, "third\n", 6);
    assert_int_equal(m.max_seen, 2);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------ EMFILE */

typedef struct em {
    int ticks_during, accepted_before_free;
    int64_t iters, wall_ms;
    int echo_rc;
    char buf[16];
    int exhausted, fail;
    tide_server *srv;
    int stop;
    int ticks;
} em;

static int em_ticker(void *arg)
{
    em *e = arg;
    while (!e->stop)
        if (tide_sleep(10) < 0)
            break;
        else
            e->ticks++;
    return 0;
}

static int em_main(void *arg)
{
    em *e = arg;
    tide_task *tk;
    int hog[256], nhog = 0;
    if (tide_start_server("127.0.0.1", 0, echo_handler, NULL, NULL, &e->srv) < 0)
        return -1;
    int port = tide_server_port(e->srv);
    spawn(&tk, em_ticker, e);
    /* the client's socket exists before fds run out */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    while (nhog < 256) {
        int fd = dup(0);
        if (fd < 0)
            break;
        hog[nhog++] = fd;
    }
    e->exhausted = errno == EMFILE;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (tide_connect(c, (struct sockaddr *)&sa, sizeof sa) < 0)
        e->fail = 1;
    tide_write(c, "hello\n", 6);
    /* 300 ms out of fds (virtual time, autojump): the loop stays
     * responsive and idle.  An acceptor that retried without sleeping
     * would keep a task ready, so time would stand still and the sleep
     * never end (the child's alarm); one that slept too little would show
     * in the count of loop iterations. */
    int t0 = e->ticks;
    tide_loop_metrics m0, m1;
    int64_t w0 = tide_now();
    tide_loop_get_metrics(NULL, &m0);
    tide_sleep(300);
    tide_loop_get_metrics(NULL, &m1);
    e->iters = (int64_t)(m1.iterations - m0.iterations);
    e->wall_ms = tide_now() - w0;
    e->ticks_during = e->ticks - t0;
    e->accepted_before_free = (int)tide_server_connections(e->srv);
    /* fds come back: the pending client is served once the acceptor's
     * back-off (at most 100 ms) ends; we wait on an fd, where virtual time
     * stands still, so move it on by hand. */
    while (nhog)
        close(hog[--nhog]);
    tide_vclock_advance(tide_loop_current(), 200 * 1000000LL);
    tide_scope sc;
    tide_timeout_begin(&sc, 3000);
    size_t got = 0;
    while (got < 6) {
        ssize_t n = tide_read(c, e->buf + got, sizeof e->buf - got);
        if (n <= 0) {
            e->echo_rc = (int)n;
            break;
        }
        got += (size_t)n;
    }
    if (got == 6)
        e->echo_rc = 6;
    tide_timeout_end(&sc);
    tide_close(c);
    /* The server first: while its acceptor waits on the listener, virtual
     * time stands still and the ticker's sleep would never end. */
    tide_server_close(e->srv, TIDE_SERVER_CANCEL);
    e->stop = 1;
    tide_await(tk);
    return 0;
}

static void test_server_emfile(void **state)
{
    (void)state;
    /* valgrind emulates RLIMIT_NOFILE: the kernel still accepts the pending
     * connection, then valgrind closes the new fd and returns EMFILE, so the
     * client sees its connection dropped.  Nothing to test there. */
    if (tt_under_valgrind())
        skip();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        alarm(30);
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        em e;
        memset(&e, 0, sizeof e);
        tide_loop *loop;
        tide_task *mt;
        int rc = tide_loop_new(&loop);
        if (rc == 0)
            rc = tide_loop_set_vclock(loop, TIDE_VCLOCK_AUTOJUMP);
        if (rc == 0)
            rc = tide_create_task_ex(&mt, loop, em_main, &e, NULL);
        if (rc == 0)
            rc = tide_loop_run_until_complete(loop, mt);
        tide_loop_free(loop);
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "rc=%d exhausted=%d fail=%d ticks=%d accepted=%d iterations=%lld "
                         "virtual=%lldms echo=%d",
                         rc, e.exhausted, e.fail, e.ticks_during, e.accepted_before_free,
                         (long long)e.iters, (long long)e.wall_ms, e.echo_rc);
        (void)!write(p[1], msg, (size_t)n);
        /* 29 or 30 ticks of 10 ms (the phase) and the acceptor's back-off
         * retries (10, 20, 40, 80, 100 ms...), most on a tick's iteration:
         * 30 iterations, the same every run; a 1 ms back-off would make
         * 300. */
        int bad = rc != 0 || !e.exhausted || e.fail || e.ticks_during < 29 ||
                  e.ticks_during > 30 || e.wall_ms != 300 ||
                  e.iters > 60 || e.accepted_before_free != 0 || e.echo_rc != 6 ||
                  memcmp(e.buf, "hello\n", 6) != 0;
        _exit(bad ? 1 : 0);
    }
    close(p[1]);
    char msg[257] = {0};
    ssize_t n = 0, k;
    while ((k = read(p[0], msg + n, sizeof msg - 1 - (size_t)n)) > 0)
        n += k;
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    print_message("emfile child: %s\n", msg);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ------------------------------------------ 10 000 concurrent connections */

#define MSGS 3

typedef struct many {
    int n, port;
    int connected, done, failures, first_fail;
    tide_future *go;
    size_t peak;
    int close_rc;
    int up_fd, down_fd; /* two-process mode (the client side): the pipes */
    int pipe_err;
} many;

typedef struct cli {
    many *m;
    int id;
} cli;

static int many_client(void *arg)
{
    cli *c = arg;
    many *m = c->m;
    tide_stream *s;
    char msg[64], buf[64];
    int rc = client(m->port, &s);
    if (rc < 0) {
        m->failures++;
        if (!m->first_fail)
            m->first_fail = rc;
        m->connected++;
        return 0;
    }
    m->connected++;
    tide_future_await(m->go, NULL); /* all connected at once */
    for (int k = 0; k < MSGS; k++) {
        int len = snprintf(msg, sizeof msg, "client %d message %d %s\n", c->id, k,
                           k == 1 ? "with some padding to vary lengths" : "");
        if (tide_stream_write(s, msg, (size_t)len) != len ||
            tide_stream_readline(s, buf, sizeof buf) != len || memcmp(buf, msg, (size_t)len)) {
            m->failures++;
            if (!m->first_fail)
                m->first_fail = -EIO;
            break;
        }
    }
    tide_stream_close(s);
    m->done++;
    return 0;
}

static int many_main(void *arg)
{
    many *m = arg;
    tide_server *srv;
    tide_server_opts o;
    tide_task_opts to;
    tide_task **ts = calloc((size_t)m->n, sizeof *ts);
    cli *cs = calloc((size_t)m->n, sizeof *cs);
    tide_server_opts_init(&o);
    o.backlog = 4096;
    o.stack_size = 32 * 1024;
    if (tide_start_server("127.0.0.1", 0, echo_handler, NULL, &o, &srv) < 0)
        return -1;
    m->port = tide_server_port(srv);
    tide_future_new(&m->go);
    tide_task_opts_init(&to);
    to.stack_size = 32 * 1024;
    for (int i = 0; i < m->n; i++) {
        cs[i].m = m;
        cs[i].id = i;
        tide_create_task_ex(&ts[i], NULL, many_client, &cs[i], &to);
        if ((i & 255) == 255)
            tide_sleep(1); /* let the acceptor keep up with the backlog */
    }
    tide_scope sc;
    tide_timeout_begin(&sc, 30000);
    while (m->connected < m->n)
        if (tide_sleep(5) < 0)
            break;
    while (tide_server_connections(srv) < (size_t)(m->n - m->failures))
        if (tide_sleep(5) < 0)
            break;
    m->peak = tide_server_connections(srv);
    tide_future_set_result(m->go, NULL);
    tide_gather(ts, (size_t)m->n, NULL);
    tide_timeout_end(&sc);
    m->close_rc = tide_server_close(srv, TIDE_SERVER_WAIT);
    tide_future_free(m->go);
    free(ts);
    free(cs);
    return 0;
}

/* --- the same with the two sides in two processes (small RLIMIT_NOFILE) ---
 *
 * When one process cannot hold 2 fds per connection, the test forks: the
 * child runs the n clients (its own tide_run), the parent the server (its
 * own tide_run).  The protocol over two pipes:
 *
 *   parent -> child (down): the port (int), later the "go" byte 'g'
 *   child -> parent (up):   how many clients connected (int), once every
 *                           client has connected; at the end a many_report
 *
 * The clients connect, then all wait for "go" before they send anything
 * and close nothing, so when the parent sees as many server connections as
 * the child reported, that is the peak: none can have ended yet. */

typedef struct many_report {
    int run_rc, n, connected, done, failures, first_fail, pipe_err;
} many_report;

/* Reads or writes exactly len bytes on a pipe within a task: 0, or a
 * negative errno (-EPIPE for an early end of file). */
static int pipe_io(int fd, void *buf, size_t len, int out)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = out ? tide_write(fd, (char *)buf + got, len - got)
                        : tide_read(fd, (char *)buf + got, len - got);
        if (k < 0)
            return (int)k;
        if (k == 0)
            return -EPIPE;
        got += (size_t)k;
    }
    return 0;
}

/* The child's main task: n clients against the parent's server. */
static int many_clients_main(void *arg)
{
    many *m = arg;
    tide_task_opts to;
    tide_task **ts = calloc((size_t)m->n, sizeof *ts);
    cli *cs = calloc((size_t)m->n, sizeof *cs);
    if (!ts || !cs || tide_future_new(&m->go) < 0) {
        free(ts);
        free(cs);
        return -ENOMEM;
    }
    tide_task_opts_init(&to);
    to.stack_size = 32 * 1024;
    tide_scope sc;
    tide_timeout_begin(&sc, 40000);
    for (int i = 0; i < m->n; i++) {
        cs[i].m = m;
        cs[i].id = i;
        if (tide_create_task_ex(&ts[i], NULL, many_client, &cs[i], &to) < 0) {
            m->n = i; /* reported: the parent's checks fail */
            break;
        }
        if ((i & 255) == 255)
            tide_sleep(1); /* let the server's acceptor keep up with the backlog */
    }
    while (m->connected < m->n)
        if (tide_sleep(5) < 0)
            break;
    /* every client is connected (or failed) and waits for "go" */
    int ok = m->connected - m->failures;
    char go = 0;
    int rc = pipe_io(m->up_fd, &ok, sizeof ok, 1);
    if (rc == 0)
        rc = pipe_io(m->down_fd, &go, 1, 0);
    if (rc == 0 && go != 'g')
        rc = -EPROTO;
    m->pipe_err = rc;
    if (rc == 0)
        tide_future_set_result(m->go, NULL);
    else
        for (int i = 0; i < m->n; i++)
            tide_cancel(ts[i]);
    tide_gather(ts, (size_t)m->n, NULL);
    tide_timeout_end(&sc);
    tide_future_free(m->go);
    free(ts);
    free(cs);
    return 0;
}

/* Runs in the child: never returns, never touches cmocka. */
static void many_child(int n, int up_fd, int down_fd)
{
    struct rlimit rl;
    many m;
    many_report rep;
    alarm(90); /* the last resort if the parent vanished without closing the pipes */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(3);
    memset(&m, 0, sizeof m);
    m.n = n;
    m.up_fd = up_fd;
    m.down_fd = down_fd;
    /* blocks until the parent's server listens (EOF if it failed to start) */
    size_t got = 0;
    while (got < sizeof m.port) {
        ssize_t k = read(down_fd, (char *)&m.port + got, sizeof m.port - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(4);
        got += (size_t)k;
    }
    memset(&rep, 0, sizeof rep);
    rep.run_rc = tide_run(many_clients_main, &m);
    rep.n = m.n;
    rep.connected = m.connected;
    rep.done = m.done;
    rep.failures = m.failures;
    rep.first_fail = m.first_fail;
    rep.pipe_err = m.pipe_err;
    /* a few bytes into an (almost) empty pipe: written at once even though
     * the loop left the fd non-blocking */
    ssize_t w = write(up_fd, &rep, sizeof rep);
    int bad = w != (ssize_t)sizeof rep || rep.run_rc != 0 || rep.n != n || rep.connected != n ||
              rep.done != n || rep.failures != 0 || rep.first_fail != 0 || rep.pipe_err != 0;
    _exit(bad ? 1 : 0);
}

typedef struct srvside {
    int n, up_fd, down_fd;
    pid_t pid;
    int start_rc, port_rc, ready_rc, go_rc, report_rc, close_rc;
    int ready;         /* clients the child saw connected */
    size_t peak;       /* server connections once they all were */
    int reaped, status, killed, timed_out;
    int64_t connect_ms, total_ms;
    many_report rep;
} srvside;

/* The parent's main task: the server. */
static int many_server_main(void *arg)
{
    srvside *p = arg;
    tide_server *srv;
    tide_server_opts o;
    int64_t t0 = tide_now();
    tide_server_opts_init(&o);
    o.backlog = 4096;
    o.stack_size = 32 * 1024;
    p->start_rc = tide_start_server("127.0.0.1", 0, echo_handler, NULL, &o, &srv);
    if (p->start_rc < 0)
        return 0; /* the caller closes the pipe: the child reads EOF and exits */
    int port = tide_server_port(srv);
    tide_scope sc;
    tide_timeout_begin(&sc, 60000);
    p->port_rc = pipe_io(p->down_fd, &port, sizeof port, 1);
    if (p->port_rc == 0)
        p->ready_rc = pipe_io(p->up_fd, &p->ready, sizeof p->ready, 0);
    if (p->port_rc == 0 && p->ready_rc == 0) {
        /* the clients are connected and idle: wait for the acceptor to
         * catch up with them, and that is the peak */
        while (tide_server_connections(srv) < (size_t)p->ready)
            if (tide_sleep(5) < 0)
                break;
        p->peak = tide_server_connections(srv);
        p->connect_ms = tide_now() - t0;
        p->go_rc = pipe_io(p->down_fd, "g", 1, 1);
    }
    for (;;) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid || (r < 0 && errno != EINTR)) {
            p->reaped = r == p->pid;
            break;
        }
        if (tide_sleep(10) < 0)
            break;
    }
    if (p->reaped)
        p->report_rc = pipe_io(p->up_fd, &p->rep, sizeof p->rep, 0);
    p->timed_out = tide_timeout_end(&sc) == -ETIMEDOUT;
    if (!p->reaped) {
        /* the child hangs: end it so that its connections close */
        kill(p->pid, SIGKILL);
        p->killed = 1;
        p->reaped = waitpid(p->pid, &p->status, 0) == p->pid;
    }
    tide_timeout_begin(&sc, 10000);
    p->close_rc = tide_server_close(srv, TIDE_SERVER_WAIT);
    tide_timeout_end(&sc);
    p->total_ms = tide_now() - t0;
    return 0;
}

static void many_two_processes(int n)
{
    struct rlimit rl, saved;
    getrlimit(RLIMIT_NOFILE, &saved);
    rl = saved;
    rl.rlim_cur = rl.rlim_max; /* the server's n connections, inherited by the child too */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int before = tt_count_fds();
    int up[2], down[2];
    assert_int_equal(pipe2(up, O_CLOEXEC), 0);
    assert_int_equal(pipe2(down, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        many_child(n, up[1], down[0]); /* does not return */
        _exit(5);
    }
    close(up[1]);
    close(down[0]);
    srvside p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.pid = pid;
    p.up_fd = up[0];
    p.down_fd = down[1];
    int run_rc = tide_run(many_server_main, &p);
    /* the loop is gone: plain close() (and, if the server never started,
     * this EOF tells the waiting child to give up) */
    close(up[0]);
    close(down[1]);
    if (!p.reaped) {
        kill(pid, SIGKILL);
        p.killed = 1;
        p.reaped = waitpid(pid, &p.status, 0) == pid;
    }
    setrlimit(RLIMIT_NOFILE, &saved);
    print_message("%d connections (server and clients in two processes): all connected after "
                  "%lld ms, %lld ms in all\n",
                  n, (long long)p.connect_ms, (long long)p.total_ms);
    print_message("server: run=%d start=%d port=%d ready=%d(%d) peak=%zu go=%d report=%d "
                  "close=%d timed_out=%d killed=%d\n",
                  run_rc, p.start_rc, p.port_rc, p.ready_rc, p.ready, p.peak, p.go_rc,
                  p.report_rc, p.close_rc, p.timed_out, p.killed);
    print_message("clients: exit=%d run=%d n=%d connected=%d done=%d failures=%d first_fail=%d "
                  "pipe=%d\n",
                  WIFEXITED(p.status) ? WEXITSTATUS(p.status)
                                      : WIFSIGNALED(p.status) ? -WTERMSIG(p.status) : -1000,
                  p.rep.run_rc, p.rep.n, p.rep.connected, p.rep.done, p.rep.failures,
                  p.rep.first_fail, p.rep.pipe_err);
    assert_int_equal(run_rc, 0);
    assert_true(p.reaped);
    assert_false(p.killed);
    assert_false(p.timed_out);
    assert_int_equal(p.start_rc, 0);
    assert_int_equal(p.port_rc, 0);
    assert_int_equal(p.ready_rc, 0);
    assert_int_equal(p.ready, n);
    assert_int_equal(p.peak, (size_t)n);
    assert_int_equal(p.go_rc, 0);
    assert_true(WIFEXITED(p.status));
    assert_int_equal(WEXITSTATUS(p.status), 0);
    assert_int_equal(p.report_rc, 0);
    assert_int_equal(p.rep.run_rc, 0);
    assert_int_equal(p.rep.n, n);
    assert_int_equal(p.rep.first_fail, 0);
    assert_int_equal(p.rep.failures, 0);
    assert_int_equal(p.rep.connected, n);
    assert_int_equal(p.rep.done, n);
    assert_int_equal(p.rep.pipe_err, 0);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(tt_count_fds(), before);
}

static void test_server_10k_connections(void **state)
{
    (void)state;
    struct rlimit rl, saved;
    getrlimit(RLIMIT_NOFILE, &saved);
    rl = saved;
    int n = 10000;
    if (tt_under_valgrind())
        n = 500;
    /* one process needs two fds per connection (client and server side) */
    rlim_t need = 2 * (rlim_t)n + 200;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        if (rl.rlim_max < (rlim_t)n + 200) {
            print_message("RLIMIT_NOFILE hard limit %llu < %d: skipped\n",
                          (unsigned long long)rl.rlim_max, n + 200);
            skip();
        }
        print_message("RLIMIT_NOFILE hard limit %llu < %llu: the clients run in a child process\n",
                      (unsigned long long)rl.rlim_max, (unsigned long long)need);
        many_two_processes(n);
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int before = tt_count_fds();
    many m;
    memset(&m, 0, sizeof m);
    m.n = n;
    int64_t t0 = tide_now();
    assert_int_equal(tide_run(many_main, &m), 0);
    int64_t took = tide_now() - t0;
    print_message("%d connections: %lld ms\n", n, (long long)took);
    setrlimit(RLIMIT_NOFILE, &saved);
    assert_int_equal(m.first_fail, 0);
    assert_int_equal(m.failures, 0);
    assert_int_equal(m.connected, n);
    assert_int_equal(m.done, n);
    assert_int_equal(m.peak, (size_t)n);
    assert_int_equal(m.close_rc, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------- write timeout: dropped */

typedef struct wt {
    int port, handler_rc, nh, drain_rc;
    size_t conns_during, conns_after;
    int64_t dropped_ms;
    int64_t default_ms;
    int close_mode; /* 0: drain in the handler; 1: no drain, the close flushes */
} wt;

/* Answers every line with 64 KiB, like a server whose client pipelines
 * requests and never reads the responses. */
static int big_answer_handler(tide_stream *s, void *arg)
{
    wt *w = arg;
    static char resp[64 * 1024];
    char line[64];
    w->nh++;
    for (;;) {
        ssize_t n = tide_stream_readline(s, line, sizeof line);
        if (n <= 0) {
            w->handler_rc = (int)n;
            return 0;
        }
        if (tide_stream_write(s, resp, sizeof resp) < 0)
            break;
        if (w->close_mode) {
            /* Pending counts an asynchronous send in flight (io_uring)
             * until it completes: let it, to see what the kernel refused. */
            if (tide_stream_write_pending(s) > 0)
                tide_sleep(1);
            if (tide_stream_write_pending(s) > 256 * 1024)
                return 0; /* leave it to the close */
            continue;
        }
        w->drain_rc = tide_stream_drain(s);
        if (w->drain_rc < 0)
            break;
    }
    w->handler_rc = w->drain_rc;
    return 0;
}

static int wt_main(void *arg)
{
    wt *w = arg;
    tide_server_opts o;
    tide_server *srv;
    tide_server_opts_init(&o);
    w->default_ms = o.write_timeout_ms;
    o.write_timeout_ms = 150;
    if (tide_start_server("127.0.0.1", 0, big_answer_handler, w, &o, &srv) < 0)
        return -1;
    /* a raw client with small buffers that sends and never reads */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    tt_set_bufs(c, 4096);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)tide_server_port(srv));
    tide_connect(c, (struct sockaddr *)&sa, sizeof sa);
    int64_t t0 = tide_now();
    for (int i = 0; i < 100; i++)
        if (tide_write(c, "GET\n", 4) < 0)
            break;
    tide_sleep(50);
    w->conns_during = tide_server_connections(srv);
    while (tide_server_connections(srv) && tide_now() - t0 < 3000)
        tide_sleep(5);
    w->dropped_ms = tide_now() - t0;
    w->conns_after = tide_server_connections(srv);
    tide_close(c);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

static void run_wt(int close_mode)
{
    int before = tt_count_fds();
    wt w;
    memset(&w, 0, sizeof w);
    w.close_mode = close_mode;
    TT_RUN(wt_main, &w);
    assert_int_equal(w.default_ms, 30000);
    assert_int_equal(w.nh, 1);
    assert_int_equal(w.conns_during, 1);
    assert_int_equal(w.conns_after, 0); /* dropped while the client still holds it */
    assert_true(w.dropped_ms >= 140 && w.dropped_ms < 2500);
    if (!close_mode)
        assert_int_equal(w.handler_rc, -ETIMEDOUT);
    assert_int_equal(tt_count_fds(), before);
}

static void test_server_write_timeout_drain(void **state)
{
    (void)state;
    run_wt(0);
}

static void test_server_write_timeout_close(void **state)
{
    (void)state;
    run_wt(1);
}

/* ------------------------------------------------------- Unix server */

typedef struct us {
    char dir[64], path[128], file[128], abstract[64];
    int start_rc, port_rc, line_ok, family, second_rc, gone_after, stale_rc, stale_ok,
        notsock_rc, abstract_rc, abstract_ok, null_rc, long_rc;
} us;

static int us_echo_once(const char *path)
{
    tide_stream *s;
    char buf[32];
    int fd = tide_unix_connect(path), ok;
    if (fd < 0)
        return 0;
    if (tide_stream_open(&s, fd, NULL) < 0) {
        tide_close(fd);
        return 0;
    }
    tide_stream_write(s, "over unix\n", 10);
    ok = tide_stream_readline(s, buf, sizeof buf) == 10 && !memcmp(buf, "over unix\n", 10);
    tide_stream_close(s);
    return ok;
}

static int family_handler(tide_stream *s, void *arg)
{
    us *u = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (tide_stream_local_addr(s, (struct sockaddr *)&ss, &len) == 0)
        u->family = ss.ss_family;
    return echo_handler(s, NULL);
}

static int us_main(void *arg)
{
    us *u = arg;
    tide_server *srv, *srv2;
    struct stat st;
    u->start_rc = tide_start_unix_server(u->path, family_handler, u, NULL, &srv);
    if (u->start_rc < 0)
        return 0;
    u->port_rc = tide_server_port(srv);
    u->line_ok = us_echo_once(u->path);
    /* a server listens there: not replaced */
    u->second_rc = tide_start_unix_server(u->path, echo_handler, NULL, NULL, &srv2);
    if (u->second_rc == 0)
        tide_server_close(srv2, TIDE_SERVER_CANCEL);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    u->gone_after = stat(u->path, &st) < 0 && errno == ENOENT;

    /* a stale socket file (bound, then its owner went away) is replaced */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, u->path);
    bind(fd, (struct sockaddr *)&sun, sizeof sun);
    close(fd);
    u->stale_rc = tide_start_unix_server(u->path, echo_handler, NULL, NULL, &srv);
    if (u->stale_rc == 0) {
        u->stale_ok = us_echo_once(u->path);
        tide_server_close(srv, TIDE_SERVER_CANCEL);
    }
    /* a file that is not a socket is never removed */
    int f = open(u->file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(f);
    u->notsock_rc = tide_start_unix_server(u->file, echo_handler, NULL, NULL, &srv);
    if (u->notsock_rc == 0)
        tide_server_close(srv, TIDE_SERVER_CANCEL);
    unlink(u->file);
    /* Linux's abstract namespace */
    u->abstract_rc = tide_start_unix_server(u->abstract, echo_handler, NULL, NULL, &srv);
    if (u->abstract_rc == 0) {
        u->abstract_ok = us_echo_once(u->abstract);
        tide_server_close(srv, TIDE_SERVER_CANCEL);
    }
    u->null_rc = tide_start_unix_server(NULL, echo_handler, NULL, NULL, &srv);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    u->long_rc = tide_start_unix_server(longp, echo_handler, NULL, NULL, &srv);
    return 0;
}

static void test_server_unix(void **state)
{
    (void)state;
    int before = tt_count_fds();
    us u;
    memset(&u, 0, sizeof u);
    strcpy(u.dir, "/tmp/tide-unix-XXXXXX");
    assert_non_null(mkdtemp(u.dir));
    snprintf(u.path, sizeof u.path, "%s/sock", u.dir);
    snprintf(u.file, sizeof u.file, "%s/file", u.dir);
    snprintf(u.abstract, sizeof u.abstract, "@tide-test-%d", (int)getpid());
    TT_RUN(us_main, &u);
    rmdir(u.dir);
    assert_int_equal(u.start_rc, 0);
    assert_int_equal(u.port_rc, -EAFNOSUPPORT);
    assert_true(u.line_ok);
    assert_int_equal(u.family, AF_UNIX);
    assert_int_equal(u.second_rc, -EADDRINUSE);
    assert_true(u.gone_after);
    assert_int_equal(u.stale_rc, 0);
    assert_true(u.stale_ok);
    assert_int_equal(u.notsock_rc, -EADDRINUSE);
    assert_int_equal(u.abstract_rc, 0);
    assert_true(u.abstract_ok);
    assert_int_equal(u.null_rc, -EINVAL);
    assert_int_equal(u.long_rc, -ENAMETOOLONG);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------------------------- misuse */

typedef struct smu {
    int null_handler, null_out, bad_port, close_null, close_how, port_null, cb_close;
    tide_server *srv;
    size_t conns_null;
} smu;

static void smu_cb(void *arg)
{
    smu *m = arg;
    m->cb_close = tide_server_close(m->srv, TIDE_SERVER_WAIT); /* not in a task */
}

static int smu_main(void *arg)
{
    smu *m = arg;
    tide_server *srv;
    m->null_handler = tide_start_server(NULL, 0, NULL, NULL, NULL, &srv);
    m->null_out = tide_start_server(NULL, 0, echo_handler, NULL, NULL, NULL);
    m->bad_port = tide_start_server(NULL, 70000, echo_handler, NULL, NULL, &srv);
    m->close_null = tide_server_close(NULL, TIDE_SERVER_WAIT);
    m->port_null = tide_server_port(NULL);
    m->conns_null = tide_server_connections(NULL);
    if (tide_start_server(NULL, 0, echo_handler, NULL, NULL, &m->srv) < 0)
        return -1;
    m->close_how = tide_server_close(m->srv, 7);
    tide_call_soon(tide_loop_current(), smu_cb, m);
    tide_sleep(1);
    tide_server_close(m->srv, TIDE_SERVER_WAIT);
    return 0;
}

static void test_server_misuse(void **state)
{
    (void)state;
    int before = tt_count_fds();
    tide_server *srv = (tide_server *)&before;
    assert_int_equal(tide_start_server(NULL, 0, echo_handler, NULL, NULL, &srv), -EPERM);
    assert_null(srv);
    smu m;
    memset(&m, 0, sizeof m);
    TT_RUN(smu_main, &m);
    assert_int_equal(m.null_handler, -EINVAL);
    assert_int_equal(m.null_out, -EINVAL);
    assert_int_equal(m.bad_port, -EINVAL);
    assert_int_equal(m.close_null, -EINVAL);
    assert_int_equal(m.port_null, -EINVAL);
    assert_int_equal(m.conns_null, 0);
    assert_int_equal(m.close_how, -EINVAL);
    assert_int_equal(m.cb_close, -EPERM);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_echo_port0),
        cmocka_unit_test(test_server_close_wait),
        cmocka_unit_test(test_server_close_cancel),
        cmocka_unit_test(test_server_close_caller_cancelled),
        cmocka_unit_test(test_server_max_connections),
        cmocka_unit_test(test_server_emfile),
        cmocka_unit_test(test_server_10k_connections),
        cmocka_unit_test(test_server_write_timeout_drain),
        cmocka_unit_test(test_server_write_timeout_close),
        cmocka_unit_test(test_server_unix),
        cmocka_unit_test(test_server_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
