/*
 * Servers, like asyncio.start_server: a task accepts connections and runs
 * the handler in a new task per connection, over a stream.
 *
 * Accept survives running out of fds (EMFILE, ENFILE) and memory: it backs
 * off (10 ms doubling to 100 ms) and tries again, so the CPU stays idle, the
 * listener stays open, and service resumes as soon as fds are freed.  The
 * pending connection waits in the kernel's backlog meanwhile.
 *
 * A limit on concurrent connections makes the acceptor wait for a slot
 * before it accepts more; the kernel's backlog holds the rest.
 *
 * Each connection's stream gets the server's write timeout (30 s by
 * default): a peer that stops reading cannot hold its connection (and its
 * queued bytes) forever, neither in drain nor in the flush at close.
 *
 * A Unix server replaces a stale socket file (one that refuses
 * connections: its server is gone) and removes its own when it closes, if
 * the file is still the one it made.
 *
 * Closing stops the acceptor and closes the listening socket; it then waits
 * for the connection tasks to finish, or cancels them first (graceful vs
 * immediate shutdown).  Connection tasks belong to the server: their
 * results are not reported, and none outlives tide_server_close.
 */
#include "tide_int.h"
#include "sys.h"
#include "transport.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 100

typedef struct conn {
    tide__watch w;         /* tells us when the task ends, however it ends */
    struct conn *prev, *next;
    tide_server *srv;
    tide_task *task;
    tide_stream *stream;   /* NULL once closed */
} conn;

struct tide_server {
    tide_loop *loop;
    int fd;                 /* listening socket, -1 once closed */
    tide_server_handler handler;
    void *arg;
    tide_server_opts opts;
    tide_task *acceptor;
    conn *conns;            /* live connections */
    size_t nconns;
    tide_task *slot_waiter; /* the acceptor, waiting under the limit */
    tide_task *closer;      /* tide_server_close, waiting for nconns == 0 */
    uint8_t closing;
    char *unix_path;        /* a Unix server's socket file, removed at close */
    dev_t unix_dev;         /* ... if it is still this one */
    ino_t unix_ino;
    tide__server_hooks hooks; /* a step before the handler (TLS), or zeros */
};

void tide_server_opts_init(tide_server_opts *o)
{
    if (o) {
        memset(o, 0, sizeof *o);
        o->nodelay = 1;
        o->write_timeout_ms = 30000;
    }
}

static void wake_slot(tide_task **slot)
{
    if (*slot) {
        tide_task *t = *slot;
        *slot = NULL;
        tide__wake(t, 0);
    }
}

static int conn_main(void *arg)
{
    conn *c = arg;
    tide_server *srv = c->srv;

    if (!srv->hooks.conn_start || srv->hooks.conn_start(c->stream, srv->hooks.arg) >= 0)
        (void)srv->handler(c->stream, srv->arg);
    if (c->stream) /* NULL: the handler took it over (tide__server_forget) */
        (void)tide_stream_close(c->stream); /* flushes, in the task */
    c->stream = NULL;
    return 0;
}

/* The connection's task ended: also when it was cancelled before it ran
 * (the loop closing), so the bookkeeping cannot live in conn_main. */
static void conn_ended(tide__watch *w, tide_task *t)
{
    conn *c = (conn *)w;
    tide_server *srv = c->srv;

    (void)t;
    if (c->stream)
        (void)tide_stream_close(c->stream); /* never ran: nothing to flush */
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    tide__free(c);
    wake_slot(&srv->slot_waiter);
    if (srv->nconns == 0)
        wake_slot(&srv->closer);
}

/* Starts a connection task for fd; fd is the connection's from here on,
 * closed on failure too. */
static int start_conn(tide_server *srv, int fd)
{
    tide_task_opts to;
    tide_stream_opts so;
    conn *c;
    int rc;

    c = tide__calloc(1, sizeof *c);
    if (!c) {
        tide_close(fd);
        return -ENOMEM;
    }
    if (srv->opts.nodelay && !srv->unix_path)
        (void)tide_tcp_nodelay(fd, 1);
    if (srv->opts.stream.limit)
        so = srv->opts.stream;
    else
        tide_stream_opts_init(&so);
    if (srv->opts.write_timeout_ms)
        so.write_timeout_ms = srv->opts.write_timeout_ms;
    else
        so.write_timeout_ms = srv->opts.stream.write_timeout_ms;
    rc = tide_stream_open(&c->stream, fd, &so);
    if (rc < 0) {
        tide_close(fd);
        tide__free(c);
        return rc;
    }
    c->srv = srv;
    tide_task_opts_init(&to);
    to.name = "conn";
    to.stack_size = srv->opts.stack_size;
    rc = tide_create_task_ex(&c->task, srv->loop, conn_main, c, &to);
    if (rc < 0) {
        tide_stream_close(c->stream);
        tide__free(c);
        return rc;
    }
    tide_detach(c->task);
    c->w.fn = conn_ended;
    tide__watch_add(c->task, &c->w);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    return 0;
}

static void unlink_slot(void *arg)
{
    *(tide_task **)arg = NULL;
}

/* Sleeps ms; only yields if no timer can be had (out of memory), so that
 * only cancellation ends the acceptor. */
static int backoff_sleep(int ms)
{
    int rc = tide_sleep(ms);
    return rc == -ENOMEM ? tide_sleep(0) : rc;
}

static int acceptor_main(void *arg)
{
    tide_server *srv = arg;
    tide_task *cur = tide__current();
    int backoff = BACKOFF_MIN_MS, rc;

    while (!srv->closing) {
        if (srv->opts.max_connections && srv->nconns >= srv->opts.max_connections) {
            srv->slot_waiter = cur;
            TIDE__WAIT_ON(cur, TIDE_WAIT_SERVER, srv);
            rc = tide__suspend(cur, TIDE__NEVER, unlink_slot, &srv->slot_waiter, 0);
            if (rc < 0)
                break;
            continue;
        }
        int fd = tide_accept(srv->fd, NULL, NULL);
        if (fd >= 0) {
            backoff = BACKOFF_MIN_MS;
            rc = start_conn(srv, fd); /* out of memory: that one is dropped */
            if (rc < 0) /* nobody else can learn of it */
                fprintf(stderr, "tide: server on port %d dropped a connection: %s\n",
                        tide_sock_port(srv->fd), tide_strerror(rc));
            continue;
        }
        switch (fd) {
        case -EMFILE:
        case -ENFILE:
        case -ENOBUFS:
        case -ENOMEM:
            /* Out of fds or memory: leave the connection in the backlog and
             * try again later; no spinning, the listener stays. */
            rc = backoff_sleep(backoff);
            if (rc < 0)
                return 0;
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            break;
        case -ECANCELED:
        case -ETIMEDOUT:
        case -EBADF:
            return 0;
        default: /* a network error on one connection (EPERM from a firewall...) */
            if (backoff_sleep(BACKOFF_MIN_MS) < 0)
                return 0;
            break;
        }
    }
    return 0;
}

static int check_opts(const tide_server_opts *o)
{
    if (o && ((o->stream.limit && o->stream.low_water > o->stream.high_water) ||
              o->write_timeout_ms < 0 || o->stream.write_timeout_ms < 0))
        return -EINVAL;
    return 0;
}

/* The server over listening socket fd (closed on failure): srv->opts and
 * the Unix fields are set. */
static int start(tide_server *srv, int fd, tide_server_handler handler, void *arg,
                 tide_server **out)
{
    tide_task_opts to;
    int rc;

    srv->fd = fd;
    srv->loop = tide__tls_loop;
    srv->handler = handler;
    srv->arg = arg;
    tide_task_opts_init(&to);
    to.name = "acceptor";
    to.stack_size = 64 * 1024;
    rc = tide_create_task_ex(&srv->acceptor, srv->loop, acceptor_main, srv, &to);
    if (rc < 0) {
        tide_close(srv->fd);
        tide__free(srv->unix_path);
        tide__free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

static tide_server *server_new(const tide_server_opts *o, tide_listen_opts *lo)
{
    tide_server *srv = tide__calloc(1, sizeof *srv);

    if (!srv)
        return NULL;
    if (o)
        srv->opts = *o;
    else
        tide_server_opts_init(&srv->opts);
    tide_listen_opts_init(lo);
    if (srv->opts.backlog > 0)
        lo->backlog = srv->opts.backlog;
    lo->reuseport = srv->opts.reuseport;
    return srv;
}

int tide_start_server(const char *host, int port, tide_server_handler handler, void *arg,
                      const tide_server_opts *o, tide_server **out)
{
    tide_listen_opts lo;
    tide_server *srv;
    int fd, rc;

    if (!out || !handler)
        return -EINVAL;
    *out = NULL;
    rc = check_opts(o);
    if (rc < 0)
        return rc;
    if (!tide__tls_loop)
        return -EPERM;
    srv = server_new(o, &lo);
    if (!srv)
        return -ENOMEM;
    fd = tide_tcp_listen(host ? host : "127.0.0.1", port, &lo);
    if (fd < 0) {
        tide__free(srv);
        return fd;
    }
    return start(srv, fd, handler, arg, out);
}

/* Someone listens at path (a connect is not refused). */
static int unix_alive(const char *path)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, rc, alive;

    if (tide__unix_addr(path, &sun, &len) < 0)
        return 1;
    fd = tide__sys_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 1;
    rc = connect(fd, (struct sockaddr *)&sun, len);
    alive = rc == 0 || (errno != ECONNREFUSED && errno != ENOENT);
    close(fd);
    return alive;
}

int tide_start_unix_server(const char *path, tide_server_handler handler, void *arg,
                           const tide_server_opts *o, tide_server **out)
{
    tide_listen_opts lo;
    tide_server *srv;
    struct stat st;
    size_t n;
    int fd, rc;

    if (!out || !handler || !path || !*path)
        return -EINVAL;
    *out = NULL;
    rc = check_opts(o);
    if (rc < 0)
        return rc;
    if (!tide__tls_loop)
        return -EPERM;
    srv = server_new(o, &lo);
    if (!srv)
        return -ENOMEM;
    lo.reuseport = 0;
    fd = tide_unix_listen(path, &lo);
    if (fd == -EADDRINUSE && path[0] != '@' && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        !unix_alive(path)) {
        /* A stale socket file: its server is gone.  Take the path over. */
        (void)unlink(path);
        fd = tide_unix_listen(path, &lo);
    }
    if (fd < 0) {
        tide__free(srv);
        return fd;
    }
    if (path[0] != '@') {
        n = strlen(path) + 1;
        srv->unix_path = tide__malloc(n);
        if (!srv->unix_path || stat(path, &st) < 0) {
            rc = srv->unix_path ? -errno : -ENOMEM;
            (void)unlink(path);
            tide_close(fd);
            tide__free(srv->unix_path);
            tide__free(srv);
            return rc;
        }
        memcpy(srv->unix_path, path, n);
        srv->unix_dev = st.st_dev;
        srv->unix_ino = st.st_ino;
    } else {
        /* Abstract: nothing to remove; mark it a Unix server all the same. */
        srv->unix_path = tide__calloc(1, 1);
        if (!srv->unix_path) {
            tide_close(fd);
            tide__free(srv);
            return -ENOMEM;
        }
    }
    return start(srv, fd, handler, arg, out);
}

int tide_server_port(const tide_server *srv)
{
    if (!srv || srv->fd < 0)
        return -EINVAL;
    return tide_sock_port(srv->fd);
}

size_t tide_server_connections(const tide_server *srv)
{
    return srv ? srv->nconns : 0;
}

static void cancel_conns(tide_server *srv)
{
    conn *c;
    for (c = srv->conns; c; c = c->next)
        tide_cancel(c->task);
}

int tide_server_close(tide_server *srv, int how)
{
    tide_task *cur = tide__current();
    int rc = 0;

    if (!srv || (how != TIDE_SERVER_WAIT && how != TIDE_SERVER_CANCEL))
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (srv->closing)
        return -EALREADY;
    for (conn *c = srv->conns; c; c = c->next)
        if (c->task == cur)
            return -EDEADLK; /* a handler cannot wait for itself */
    srv->closing = 1;
    /* Stop accepting.  The acceptor ends at its next suspension. */
    tide_cancel(srv->acceptor);
    {
        tide_scope sh;
        tide_shield_begin(&sh);
        (void)tide_await(srv->acceptor);
        tide_shield_end(&sh);
    }
    tide_close(srv->fd);
    srv->fd = -1;
    if (srv->unix_path && srv->unix_path[0]) {
        struct stat st;
        if (stat(srv->unix_path, &st) == 0 && st.st_dev == srv->unix_dev &&
            st.st_ino == srv->unix_ino)
            (void)unlink(srv->unix_path); /* still ours */
    }
    if (how == TIDE_SERVER_CANCEL)
        cancel_conns(srv);
    while (srv->nconns) {
        int w;
        srv->closer = cur;
        TIDE__WAIT_ON(cur, TIDE_WAIT_SERVER, srv);
        w = tide__suspend(cur, TIDE__NEVER, unlink_slot, &srv->closer,
                          rc < 0 ? TIDE__WAIT_NOCANCEL : 0);
        if (w < 0 && rc == 0) {
            /* Cancelled (or timed out) while waiting gracefully: cancel the
             * connections and wait for them; none may outlive the server. */
            rc = w;
            cancel_conns(srv);
        }
    }
    if (srv->hooks.free)
        srv->hooks.free(srv->hooks.arg);
    tide__free(srv->unix_path);
    tide__free(srv);
    return rc;
}

/* The server's connection tasks have not run yet when start returns (they
 * run once the caller suspends), so the hooks can be set afterwards. */
static int hooked(int rc, const tide__server_hooks *hooks, tide_server **out)
{
    if (rc < 0) {
        if (hooks && hooks->free)
            hooks->free(hooks->arg);
        return rc;
    }
    if (hooks)
        (*out)->hooks = *hooks;
    return 0;
}

int tide__start_server_hooked(const char *host, int port, tide_server_handler handler, void *arg,
                              const tide_server_opts *o, const tide__server_hooks *hooks,
                              tide_server **out)
{
    return hooked(tide_start_server(host, port, handler, arg, o, out), hooks, out);
}

int tide__start_unix_server_hooked(const char *path, tide_server_handler handler, void *arg,
                                   const tide_server_opts *o, const tide__server_hooks *hooks,
                                   tide_server **out)
{
    return hooked(tide_start_unix_server(path, handler, arg, o, out), hooks, out);
}

void tide__server_forget(tide_server *srv, tide_stream *s)
{
    for (conn *c = srv->conns; c; c = c->next)
        if (c->stream == s) {
            c->stream = NULL;
            return;
        }
}
