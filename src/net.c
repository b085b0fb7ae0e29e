/*
 * Sockets and name resolution.
 *
 * getaddrinfo blocks (DNS, NSS), so it runs on the worker pool; a numeric
 * host needs no lookup and is resolved in place, which also lets plain code
 * outside a task listen on "127.0.0.1".  A cancelled lookup returns at once;
 * the late result is freed when it comes back.
 *
 * tide_tcp_connect races the resolved addresses in the manner of Happy
 * Eyeballs (RFC 8305): families interleaved (the first one given by the
 * resolver first), a new attempt every 250 ms or as soon as one fails, the
 * first connection wins and the others are cancelled and closed.
 */
#include "tide_int.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define STAGGER_NS (250 * 1000000LL)
#define ATTEMPT_STACK (64 * 1024)

/* ------------------------------------------------------------ resolving */

#ifdef TIDE__EAI_NONAME_ABS
/* tide.h's stand-in for programs that cannot see EAI_NONAME must agree. */
_Static_assert(TIDE__EAI_NONAME_ABS == (EAI_NONAME < 0 ? -EAI_NONAME : EAI_NONAME),
               "tide.h: wrong EAI_NONAME for this C library");
#endif

static int eai_to_err(int e, int sys_errno)
{
    if (e == EAI_SYSTEM)
        return sys_errno ? -sys_errno : -EIO;
    if (e == EAI_MEMORY)
        return -ENOMEM;
    return TIDE_EAI_BASE - (e < 0 ? -e : e);
}

const char *tide__eai_strerror(int err);
const char *tide__eai_strerror(int err)
{
    int e = TIDE_EAI_BASE - err;
#if EAI_NONAME < 0
    e = -e;
#endif
    return gai_strerror(e);
}

typedef struct gai_job {
    char *host, *serv;
    struct addrinfo hints;
    int has_hints;
    struct addrinfo *res;
    int rc, sys_errno;
} gai_job;

static int gai_run(void *arg)
{
    gai_job *j = arg;
    j->rc = getaddrinfo(j->host, j->serv, j->has_hints ? &j->hints : NULL, &j->res);
    j->sys_errno = j->rc == EAI_SYSTEM ? errno : 0;
    return 0;
}

static void gai_job_free(void *arg)
{
    gai_job *j = arg;
    if (j->res)
        freeaddrinfo(j->res);
    tide__free(j->host);
    tide__free(j->serv);
    tide__free(j);
}

static char *dup_str(const char *s)
{
    size_t n;
    char *d;
    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = tide__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int is_numeric_serv(const char *s)
{
    if (!s || !*s)
        return 1;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int tide_getaddrinfo(const char *host, const char *serv, const struct addrinfo *hints,
                     struct addrinfo **res)
{
    struct addrinfo h;
    gai_job *j;
    int rc;

    if (!res || (!host && !serv))
        return -EINVAL;
    *res = NULL;

    /* A numeric host (or none) and a numeric port: no lookup, no thread. */
    if (is_numeric_serv(serv)) {
        if (hints)
            h = *hints;
        else {
            memset(&h, 0, sizeof h);
            h.ai_family = AF_UNSPEC;
        }
        h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
        rc = getaddrinfo(host, serv, &h, res);
        if (rc == 0)
            return 0;
        if (rc != EAI_NONAME || !host) {
            *res = NULL;
            return eai_to_err(rc, errno);
        }
    }
    if (!tide__current())
        return -EPERM;
    j = tide__calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->host = dup_str(host);
    j->serv = dup_str(serv);
    if ((host && !j->host) || (serv && !j->serv)) {
        gai_job_free(j);
        return -ENOMEM;
    }
    if (hints) {
        j->hints = *hints;
        j->has_hints = 1;
    }
    rc = tide__to_thread(gai_run, j, gai_job_free);
    if (rc < 0)
        return rc; /* j is freed by gai_job_free, now or when it comes back */
    if (j->rc != 0) {
        rc = eai_to_err(j->rc, j->sys_errno);
        gai_job_free(j);
        return rc;
    }
    *res = j->res;
    j->res = NULL;
    gai_job_free(j);
    return 0;
}

static int resolve(const char *host, int port, int socktype, int passive,
                   struct addrinfo **res)
{
    struct addrinfo hints;
    char serv[8];

    if (port < 0 || port > 65535)
        return -EINVAL;
    snprintf(serv, sizeof serv, "%d", port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    return tide_getaddrinfo(host, serv, &hints, res);
}

/* -------------------------------------------------------------- options */

void tide_listen_opts_init(tide_listen_opts *o)
{
    if (o) {
        memset(o, 0, sizeof *o);
        o->backlog = 511;
    }
}

static int set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v) < 0 ? -errno : 0;
}

/* socket(2), non-blocking and close-on-exec: in one call where the type
 * takes the flags (Linux, the BSDs), else (macOS) with fcntl after it.
 * Returns the fd or -errno. */
/* A non-blocking, close-on-exec socket (the platform layer knows how):
 * the fd or -errno. */
static int new_socket(int domain, int type)
{
    int fd = tide__sys_socket(domain, type, 0);
    return fd < 0 ? -errno : fd;
}

/* The option that makes several sockets share a port with the kernel
 * spreading the connections among them: FreeBSD's SO_REUSEPORT only lets
 * them bind (the last one gets everything), SO_REUSEPORT_LB balances. */
#ifdef SO_REUSEPORT_LB
#define TIDE__REUSEPORT SO_REUSEPORT_LB
#else
#define TIDE__REUSEPORT SO_REUSEPORT
#endif

int tide_tcp_nodelay(int fd, int on)
{
    if (fd < 0)
        return -EBADF;
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on != 0);
}

int tide_sock_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (fd < 0)
        return -EBADF;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

/* ------------------------------------------------------------ listening */

static int bind_first(struct addrinfo *res, int socktype, const tide_listen_opts *o)
{
    struct addrinfo *ai;
    int err = -EADDRNOTAVAIL;

    for (ai = res; ai; ai = ai->ai_next) {
        int fd = new_socket(ai->ai_family, socktype);
        if (fd < 0) {
            err = fd;
            continue;
        }
        if (socktype == SOCK_STREAM)
            (void)set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        if (o && o->reuseport && (err = set_int(fd, SOL_SOCKET, TIDE__REUSEPORT, 1)) < 0) {
            close(fd);
            continue;
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            (socktype == SOCK_STREAM && listen(fd, o && o->backlog > 0 ? o->backlog : 511) < 0)) {
            err = -errno;
            close(fd);
            continue;
        }
        return fd;
    }
    return err;
}

int tide_tcp_listen(const char *host, int port, const tide_listen_opts *o)
{
    struct addrinfo *res;
    int rc = resolve(host ? host : "0.0.0.0", port, SOCK_STREAM, 1, &res);

    if (rc < 0)
        return rc;
    rc = bind_first(res, SOCK_STREAM, o);
    freeaddrinfo(res);
    return rc;
}

int tide_udp_bind(const char *host, int port)
{
    struct addrinfo *res;
    int rc = resolve(host ? host : "0.0.0.0", port, SOCK_DGRAM, 1, &res);

    if (rc < 0)
        return rc;
    rc = bind_first(res, SOCK_DGRAM, NULL);
    freeaddrinfo(res);
    return rc;
}

int tide__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n;

    if (!path || !*path)
        return -EINVAL;
    n = strlen(path);
    if (n >= sizeof sun->sun_path)
        return -ENAMETOOLONG;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
#ifdef __linux__
    if (path[0] == '@') /* Linux abstract namespace */
        sun->sun_path[0] = '\0';
#endif
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
    return 0;
}

int tide_unix_listen(const char *path, const tide_listen_opts *o)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, rc = tide__unix_addr(path, &sun, &len);

    if (rc < 0)
        return rc;
    fd = new_socket(AF_UNIX, SOCK_STREAM);
    if (fd < 0)
        return fd;
    if (bind(fd, (struct sockaddr *)&sun, len) < 0 ||
        listen(fd, o && o->backlog > 0 ? o->backlog : 511) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int tide_unix_connect(const char *path)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, rc = tide__unix_addr(path, &sun, &len);

    if (rc < 0)
        return rc;
    if (!tide__current())
        return -EPERM;
    fd = new_socket(AF_UNIX, SOCK_STREAM);
    if (fd < 0)
        return fd;
    rc = tide_connect(fd, (struct sockaddr *)&sun, len);
    if (rc < 0) {
        tide_close(fd);
        return rc;
    }
    return fd;
}

/* ----------------------------------------------------------- connecting */

static int connect_one(const struct addrinfo *ai)
{
    int fd = new_socket(ai->ai_family, SOCK_STREAM), rc;

    if (fd < 0)
        return fd;
    rc = tide_connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0) {
        tide_close(fd);
        return rc;
    }
    return fd;
}

typedef struct race race;

typedef struct attempt {
    tide__watch w; /* counts the attempt finished however its task ends */
    race *r;
    const struct addrinfo *ai;
} attempt;

struct race {
    int winner;       /* the connected fd, or -1 */
    int last_err;     /* the error of the last attempt that failed */
    int running;      /* attempts started and not finished */
    tide_task *waiter; /* the connecting task, while it waits for news */
};

static void race_unlink(void *arg)
{
    ((race *)arg)->waiter = NULL;
}

static void race_news(race *r)
{
    if (r->waiter) {
        tide_task *w = r->waiter;
        r->waiter = NULL;
        tide__wake(w, 0);
    }
}

static int attempt_run(void *arg)
{
    attempt *a = arg;
    race *r = a->r;
    int fd = connect_one(a->ai);

    if (fd >= 0) {
        if (r->winner < 0)
            r->winner = fd;
        else
            tide_close(fd); /* lost the race */
    } else if (fd != -ECANCELED) {
        r->last_err = fd;
    }
    return 0;
}

/* An attempt's task ended: also when it was cancelled before it ran. */
static void attempt_ended(tide__watch *w, tide_task *t)
{
    race *r = ((attempt *)w)->r;

    (void)t;
    r->running--;
    race_news(r);
}

/* Interleaves address families, keeping the resolver's order within each
 * and starting with the family of the first address (RFC 8305, 4). */
static size_t interleave(struct addrinfo *res, const struct addrinfo **out, size_t cap)
{
    const struct addrinfo *ai, *a = NULL, *b = NULL;
    int fam = res->ai_family;
    size_t n = 0;

    for (ai = res; ai; ai = ai->ai_next) /* a: first family, b: the others */
        ;
    a = res;
    for (ai = res; ai && !b; ai = ai->ai_next)
        if (ai->ai_family != fam)
            b = ai;
    while ((a || b) && n < cap) {
        while (a && a->ai_family != fam)
            a = a->ai_next;
        if (a) {
            out[n++] = a;
            a = a->ai_next;
        }
        while (b && b->ai_family == fam)
            b = b->ai_next;
        if (b && n < cap) {
            out[n++] = b;
            b = b->ai_next;
        }
    }
    return n;
}

int tide_tcp_connect(const char *host, int port)
{
    const struct addrinfo *order[16];
    tide_task *tasks[16];
    attempt at[16];
    struct addrinfo *res;
    tide_task *cur = tide__current();
    tide_task_opts opts;
    race r = {.winner = -1, .last_err = -ECONNREFUSED};
    size_t n, started = 0, i;
    int rc;

    if (!host)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    rc = resolve(host, port, SOCK_STREAM, 0, &res);
    if (rc < 0)
        return rc;
    n = interleave(res, order, 16);
    if (n == 1) {
        rc = connect_one(order[0]);
        freeaddrinfo(res);
        return rc;
    }
    tide_task_opts_init(&opts);
    opts.name = "connect-attempt";
    opts.stack_size = ATTEMPT_STACK;
    rc = 0;
    while (r.winner < 0) {
        int64_t until = TIDE__NEVER;
        if (started < n) {
            at[started].r = &r;
            at[started].ai = order[started];
            rc = tide_create_task_ex(&tasks[started], NULL, attempt_run, &at[started], &opts);
            if (rc < 0)
                break;
            at[started].w.fn = attempt_ended;
            tide__watch_add(tasks[started], &at[started].w);
            started++;
            r.running++;
            if (started < n)
                until = tide__loop_ns(cur->loop) + STAGGER_NS;
        } else if (r.running == 0) {
            break; /* every attempt failed */
        }
        r.waiter = cur;
        TIDE__WAIT_ON(cur, TIDE_WAIT_CONNECT, &r);
        rc = tide__suspend(cur, until, race_unlink, &r, 0);
        if (rc < 0)
            break; /* cancelled or timed out */
    }
    for (i = 0; i < started; i++)
        tide_cancel(tasks[i]);
    (void)tide_gather(tasks, started, NULL);
    freeaddrinfo(res);
    if (r.winner >= 0) {
        if (rc < 0) { /* cancelled just as one connected: do not leak it */
            tide_close(r.winner);
            return rc;
        }
        return r.winner;
    }
    return rc < 0 ? rc : r.last_err;
}
