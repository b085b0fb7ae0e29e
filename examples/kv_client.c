/*
 * kv_client.c -- a Redis (RESP2) client: a small client library (one
 * connection with pipelining, a pool of connections) and a command line
 * tool on top of it.
 *
 *   kv_client [-h HOST] [-p PORT] CMD [ARG...]     one command, redis-cli style
 *   kv_client [-h HOST] [-p PORT] --check          the "database queries" case:
 *                                                  many tasks share a pool
 *
 * HOST defaults to 127.0.0.1, PORT to 6379.  Works against redis-server
 * and against examples/kv_server.
 *
 * The library part (the kv_* functions below):
 *   - kv_conn: one connection.  kv_send queues a command and never waits,
 *     so several sends followed by as many kv_recv make a pipeline: the
 *     commands go out in one write, the replies come back in one read.
 *     Replies are parsed in place (tide_resp_parse): a reply's strings point
 *     into the connection's buffer and stay valid until the next kv_recv.
 *     A protocol error or an I/O error marks the connection broken.
 *   - kv_pool: up to N connections, opened on demand; kv_pool_acquire waits
 *     (a semaphore) while all are in use, kv_pool_release gives one back
 *     (a broken one is closed, and a new one is opened when needed), so a
 *     thousand tasks can share ten connections as asyncio code shares an
 *     aioredis pool.
 *
 * --check runs 200 tasks, each doing SET/GET/INCR/MGET/EXPIRE/TTL/DEL and
 * pipelines of 16 through a pool of 8, checks every reply and prints a
 * summary; it exits 1 on the first wrong reply.
 */
#include <tide.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ library */

#define KV_MAX_VALUES 4096 /* values of one reply (pre-order, tide_resp_parse) */

typedef struct kv_conn {
    tide_stream *s;
    char *buf;           /* received bytes; [start, len) not yet consumed */
    size_t start, len, cap;
    size_t pending;      /* replies still to receive */
    int broken;          /* an error happened: close it */
    tide_resp_value v[KV_MAX_VALUES];
    struct kv_conn *next_free; /* in its pool's idle list */
} kv_conn;

typedef struct kv_reply {
    const tide_resp_value *v; /* v[0] is the reply; arrays are followed by their elements */
    size_t n;
} kv_reply;

/* Opens a connection.  0 or a negative errno. */
static int kv_open(kv_conn **out, const char *host, int port)
{
    kv_conn *c = calloc(1, sizeof *c);
    int rc;

    if (!c)
        return -ENOMEM;
    rc = tide_open_connection(host, port, &c->s);
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void kv_close(kv_conn *c)
{
    if (!c)
        return;
    (void)tide_stream_close(c->s);
    free(c->buf);
    free(c);
}

/* Queues one command (written at once when the kernel takes it; never
 * waits).  0 or a negative errno. */
static int kv_send(kv_conn *c, size_t argc, const char *const *argv, const size_t *argl)
{
    char small[512];
    char *p = small;
    ssize_t n = tide_resp_format_command(small, sizeof small, argc, argv, argl);
    ssize_t w;

    if (n < 0)
        return (int)n;
    if ((size_t)n > sizeof small) {
        p = malloc((size_t)n);
        if (!p)
            return -ENOMEM;
        (void)tide_resp_format_command(p, (size_t)n, argc, argv, argl);
    }
    w = tide_stream_write(c->s, p, (size_t)n);
    if (p != small)
        free(p);
    if (w < 0) {
        c->broken = 1;
        return (int)w;
    }
    c->pending++;
    return 0;
}

/* kv_send of a NUL-terminated argument list (NULL last). */
static int kv_sendv(kv_conn *c, const char *const *args)
{
    size_t argl[64], argc = 0;
    while (args[argc] && argc < 64) {
        argl[argc] = strlen(args[argc]);
        argc++;
    }
    return kv_send(c, argc, args, argl);
}

/* Receives the next reply (waiting for it).  Its strings stay valid until
 * the next kv_recv on c.  0, or -EPROTO (malformed reply), -EMSGSIZE,
 * -ECONNRESET (the server closed), an I/O error, -ECANCELED, -ETIMEDOUT. */
static int kv_recv(kv_conn *c, kv_reply *r)
{
    size_t need = 0, nv = 0;

    if (!c->pending)
        return -EINVAL;
    for (;;) {
        ssize_t m, n;
        if (c->len > c->start) {
            m = tide_resp_parse(c->buf + c->start, c->len - c->start, c->v, KV_MAX_VALUES, &nv,
                                NULL, &need);
            if (m > 0) {
                r->v = c->v;
                r->n = nv;
                c->start += (size_t)m; /* the bytes stay until the next recv moves them */
                c->pending--;
                return 0;
            }
            if (m < 0) {
                c->broken = 1;
                return (int)m;
            }
        } else {
            need = 1;
        }
        /* Make room: drop what was consumed, grow to what is needed. */
        if (c->start) {
            memmove(c->buf, c->buf + c->start, c->len - c->start);
            c->len -= c->start;
            c->start = 0;
        }
        if (need < c->len + 4096)
            need = c->len + 4096;
        if (need > c->cap) {
            size_t cap = c->cap ? c->cap : 16384;
            char *p;
            while (cap < need)
                cap *= 2;
            p = realloc(c->buf, cap);
            if (!p) {
                c->broken = 1;
                return -ENOMEM;
            }
            c->buf = p;
            c->cap = cap;
        }
        n = tide_stream_read(c->s, c->buf + c->len, c->cap - c->len);
        if (n <= 0) {
            c->broken = 1;
            return n == 0 ? -ECONNRESET : (int)n;
        }
        c->len += (size_t)n;
    }
}

typedef struct kv_pool {
    const char *host;
    int port;
    tide_sem slots; /* free connection slots */
    kv_conn *idle;  /* open connections nobody uses */
    size_t open;
} kv_pool;

static int kv_pool_init(kv_pool *p, const char *host, int port, unsigned size)
{
    memset(p, 0, sizeof *p);
    p->host = host;
    p->port = port;
    return tide_sem_init(&p->slots, size);
}

/* Takes a connection (waits while all are in use; opens one if none is
 * idle).  0 or a negative errno. */
static int kv_pool_acquire(kv_pool *p, kv_conn **out)
{
    int rc = tide_sem_acquire(&p->slots);
    if (rc < 0)
        return rc;
    if (p->idle) {
        *out = p->idle;
        p->idle = p->idle->next_free;
        return 0;
    }
    rc = kv_open(out, p->host, p->port);
    if (rc < 0) {
        tide_sem_release(&p->slots);
        return rc;
    }
    p->open++;
    return 0;
}

/* Gives c back: kept for the next user, or closed if broken or if replies
 * are still owed on it (an interrupted pipeline). */
static void kv_pool_release(kv_pool *p, kv_conn *c)
{
    if (c->broken || c->pending) {
        kv_close(c);
        p->open--;
    } else {
        c->next_free = p->idle;
        p->idle = c;
    }
    tide_sem_release(&p->slots);
}

static void kv_pool_close(kv_pool *p)
{
    while (p->idle) {
        kv_conn *c = p->idle;
        p->idle = c->next_free;
        kv_close(c);
        p->open--;
    }
}

/* Prints a reply as redis-cli does (roughly). */
static void print_reply(const tide_resp_value *v, size_t *i, int indent)
{
    const tide_resp_value *x = &v[(*i)++];
    size_t k;

    switch (x->type) {
    case TIDE_RESP_SIMPLE:
        printf("%.*s\n", (int)x->len, x->str);
        break;
    case TIDE_RESP_ERROR:
        printf("(error) %.*s\n", (int)x->len, x->str);
        break;
    case TIDE_RESP_INTEGER:
        printf("(integer) %" PRId64 "\n", x->integer);
        break;
    case TIDE_RESP_BULK:
        printf("\"%.*s\"\n", (int)x->len, x->str);
        break;
    case TIDE_RESP_NIL:
    case TIDE_RESP_NIL_ARRAY:
        printf("(nil)\n");
        break;
    case TIDE_RESP_ARRAY:
        if (!x->n)
            printf("(empty array)\n");
        for (k = 0; k < x->n; k++) {
            printf("%*s%zu) ", k ? indent : 0, "", k + 1);
            print_reply(v, i, indent + 3);
        }
        break;
    }
}

/* ------------------------------------------------------------- --check */

static kv_pool pool;
static int failures;

#define EXPECT(cond, what)                                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "kv_client --check: task %d: %s\n", id, what);                   \
            failures++;                                                                       \
            rc = -EPROTO;                                                                     \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

static int is_bulk(const kv_reply *r, const char *s)
{
    return r->v[0].type == TIDE_RESP_BULK && r->v[0].len == strlen(s) &&
           memcmp(r->v[0].str, s, r->v[0].len) == 0;
}

static int is_simple(const kv_reply *r, const char *s)
{
    return r->v[0].type == TIDE_RESP_SIMPLE && r->v[0].len == strlen(s) &&
           memcmp(r->v[0].str, s, r->v[0].len) == 0;
}

static int check_task(void *arg)
{
    int id = (int)(intptr_t)arg, rc = 0, i;
    kv_conn *c = NULL;
    kv_reply r;
    char key[32], key2[32], val[32];

    snprintf(key, sizeof key, "kvc:%d", id);
    snprintf(key2, sizeof key2, "kvc:%d:n", id);
    snprintf(val, sizeof val, "v%d", id * 7);
    rc = kv_pool_acquire(&pool, &c);
    if (rc < 0) {
        fprintf(stderr, "kv_client --check: connect: %s\n", tide_strerror(rc));
        failures++;
        return rc;
    }
    /* One query at a time. */
    {
        const char *a[] = {"SET", key, val, NULL};
        kv_sendv(c, a);
        EXPECT(kv_recv(c, &r) == 0 && is_simple(&r, "OK"), "SET");
    }
    {
        const char *a[] = {"GET", key, NULL};
        kv_sendv(c, a);
        EXPECT(kv_recv(c, &r) == 0 && is_bulk(&r, val), "GET");
    }
    {
        const char *a[] = {"DEL", key2, NULL};
        kv_sendv(c, a);
        EXPECT(kv_recv(c, &r) == 0 && r.v[0].type == TIDE_RESP_INTEGER, "DEL");
    }
    /* A pipeline: 16 INCRs, then the replies. */
    for (i = 0; i < 16; i++) {
        const char *a[] = {"INCR", key2, NULL};
        kv_sendv(c, a);
    }
    for (i = 0; i < 16; i++)
        EXPECT(kv_recv(c, &r) == 0 && r.v[0].type == TIDE_RESP_INTEGER &&
                   r.v[0].integer == i + 1,
               "pipelined INCR");
    {
        const char *a[] = {"MGET", key, key2, "kvc:missing", NULL};
        kv_sendv(c, a);
        EXPECT(kv_recv(c, &r) == 0 && r.n == 4 && r.v[0].type == TIDE_RESP_ARRAY &&
                   r.v[0].n == 3 && r.v[1].len == strlen(val) && r.v[2].len == 2 &&
                   memcmp(r.v[2].str, "16", 2) == 0 && r.v[3].type == TIDE_RESP_NIL,
               "MGET");
    }
    {
        const char *a[] = {"EXPIRE", key, "100", NULL};
        const char *b[] = {"TTL", key, NULL};
        kv_sendv(c, a);
        kv_sendv(c, b);
        EXPECT(kv_recv(c, &r) == 0 && r.v[0].type == TIDE_RESP_INTEGER && r.v[0].integer == 1,
               "EXPIRE");
        EXPECT(kv_recv(c, &r) == 0 && r.v[0].type == TIDE_RESP_INTEGER &&
                   r.v[0].integer > 90 && r.v[0].integer <= 100,
               "TTL");
    }
    {
        const char *a[] = {"INCR", key, NULL}; /* not a number */
        kv_sendv(c, a);
        EXPECT(kv_recv(c, &r) == 0 && r.v[0].type == TIDE_RESP_ERROR, "INCR on a string");
    }
    {
        const char *a[] = {"DEL", key, key2, NULL};
        kv_sendv(c, a);
        EXPECT(kv_recv(c, &r) == 0 && r.v[0].type == TIDE_RESP_INTEGER && r.v[0].integer == 2,
               "DEL 2");
    }
out:
    kv_pool_release(&pool, c);
    return rc;
}

static int run_check(const char *host, int port)
{
    enum { NTASKS = 200, POOL = 8 };
    tide_task *ts[NTASKS];
    int i, rc;
    int64_t t0 = tide_now();

    rc = kv_pool_init(&pool, host, port, POOL);
    if (rc < 0)
        return rc;
    for (i = 0; i < NTASKS; i++)
        if ((rc = tide_create_task(&ts[i], check_task, (void *)(intptr_t)i)) < 0)
            return rc;
    rc = tide_gather(ts, NTASKS, NULL);
    printf("kv_client --check: %d tasks, pool of %d (%zu open), %d failures, %" PRId64 " ms\n",
           NTASKS, POOL, pool.open, failures, tide_now() - t0);
    kv_pool_close(&pool);
    return failures ? -EPROTO : rc;
}

/* -------------------------------------------------------------- main */

struct cli {
    const char *host;
    int port;
    int check;
    int argc;
    char **argv;
};

static int cli_main(void *arg)
{
    struct cli *a = arg;
    kv_conn *c;
    kv_reply r;
    size_t i = 0, argl[256];
    int rc;

    if (a->check)
        return run_check(a->host, a->port);
    if (a->argc > 256)
        return -E2BIG;
    rc = kv_open(&c, a->host, a->port);
    if (rc < 0)
        return rc;
    for (int k = 0; k < a->argc; k++)
        argl[k] = strlen(a->argv[k]);
    rc = kv_send(c, (size_t)a->argc, (const char *const *)a->argv, argl);
    if (rc == 0)
        rc = kv_recv(c, &r);
    if (rc == 0) {
        print_reply(r.v, &i, 0);
        if (r.v[0].type == TIDE_RESP_ERROR)
            rc = 1;
    }
    kv_close(c);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli a = {"127.0.0.1", 6379, 0, 0, NULL};
    int i = 1, rc;

    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "-h") && i + 1 < argc) {
            a.host = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            a.port = atoi(argv[i + 1]);
            i += 2;
        } else if (!strcmp(argv[i], "--check")) {
            a.check = 1;
            i++;
        } else {
            break;
        }
    }
    a.argc = argc - i;
    a.argv = argv + i;
    if (!a.check && a.argc == 0) {
        fprintf(stderr, "usage: kv_client [-h HOST] [-p PORT] (--check | CMD [ARG...])\n");
        return 2;
    }
    rc = tide_run(cli_main, &a);
    if (rc < 0) {
        fprintf(stderr, "kv_client: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
